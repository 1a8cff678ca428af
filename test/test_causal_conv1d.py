import pytest
import torch
import torch.nn.functional as F

from espnet_mamba.ops import causal_conv1d, causal_conv1d_step


@pytest.fixture(autouse=True, params=["torch", "cpu"])
def backend(request, monkeypatch):
    """Every test here runs on the PyTorch path and on the compiled CPU kernels."""
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", request.param)
    return request.param


def direct_conv(x, weight, bias, history=None):
    """y[t] = sum_k w[k] * x[t - (W-1) + k], reading `history` before t=0."""
    batch, dim, length = x.shape
    width = weight.shape[1]
    if history is None:
        history = torch.zeros(batch, dim, width - 1)
    full = torch.cat([history, x], -1)
    y = torch.zeros(batch, dim, length)
    for t in range(length):
        for k in range(width):
            y[:, :, t] += weight[:, k] * full[:, :, t + k]
    return y + bias[:, None]


def test_matches_direct_sum_and_continues_from_state():
    x, w, b = torch.randn(2, 3, 11), torch.randn(3, 4), torch.randn(3)
    assert torch.allclose(causal_conv1d(x, w, b), direct_conv(x, w, b), atol=1e-6)
    y1, state = causal_conv1d(x[..., :6], w, b, return_final_state=True)
    y2 = causal_conv1d(x[..., 6:], w, b, initial_state=state)
    assert torch.allclose(torch.cat([y1, y2], -1), direct_conv(x, w, b), atol=1e-6)
    assert torch.allclose(causal_conv1d(x, w, b, "silu"), F.silu(direct_conv(x, w, b)), atol=1e-6)


def test_step_equals_full_sequence():
    x, w, b = torch.randn(2, 3, 9), torch.randn(3, 4), torch.randn(3)
    state = torch.zeros(2, 3, 4)
    steps = torch.stack([causal_conv1d_step(x[..., t], state, w, b, "silu") for t in range(9)], -1)
    assert torch.allclose(steps, causal_conv1d(x, w, b, "silu"), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'x' must be 3-D"):
        causal_conv1d(torch.randn(3, 9), torch.randn(3, 4))
    with pytest.raises(ValueError, match="'weight' must be"):
        causal_conv1d(torch.randn(1, 3, 9), torch.randn(2, 4))
    with pytest.raises(ValueError, match="'initial_state' has shape"):
        causal_conv1d(torch.randn(1, 3, 9), torch.randn(3, 4), initial_state=torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="'activation'"):
        causal_conv1d(torch.randn(1, 3, 9), torch.randn(3, 4), activation="relu")

"""The scan against a plain sequential loop written here (not against itself)."""

import pytest
import torch
import torch.nn.functional as F

from espnet_mamba.ops import selective_scan, selective_state_step
from espnet_mamba.ops.selective_scan_torch import LOG_DECAY_FLOOR


@pytest.fixture(autouse=True, params=["torch", "cpu"])
def backend(request, monkeypatch):
    """Every test here runs on the PyTorch path and on the compiled CPU kernels."""
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", request.param)
    return request.param


def sequential_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                    initial_state=None):
    """Obviously-correct reference: one time step at a time, float64."""
    u, delta, A = u.double(), delta.double(), A.double()
    B, C = B.double(), C.double()
    if delta_bias is not None:
        delta = delta + delta_bias.double()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    h = (torch.zeros(batch, dim, A.shape[1], dtype=torch.float64) if initial_state is None
         else initial_state.double().clone())

    def at(m, t):  # B or C at step t as (batch, dim, N)
        if m.dim() == 2:
            return m.expand(batch, dim, -1)
        if m.dim() == 3:
            return m[:, None, :, t].expand(batch, dim, -1)
        return m[..., t].repeat_interleave(dim // m.shape[1], dim=1)

    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + delta[:, :, t, None] * at(B, t) * u[:, :, t, None]
        ys.append((h * at(C, t)).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y, h


def make(batch, dim, length, n, bc="variable", groups=2, dtype=torch.float32):
    u = torch.randn(batch, dim, length, dtype=dtype)
    delta = torch.rand(batch, dim, length, dtype=dtype) * 0.5 + 0.01  # positive step sizes
    A = -torch.rand(dim, n, dtype=dtype) * 3 - 0.1
    shape = {"invariant": (dim, n), "variable": (batch, n, length),
             "grouped": (batch, groups, n, length)}[bc]
    return u, delta, A, torch.randn(*shape, dtype=dtype), torch.randn(*shape, dtype=dtype)


@pytest.mark.parametrize("length", [1, 7, 37, 101])
@pytest.mark.parametrize("bc", ["invariant", "variable", "grouped"])
@pytest.mark.parametrize("extras", [False, True])
def test_matches_sequential_fp32(length, bc, extras):
    u, delta, A, B, C = make(2, 6, length, 5, bc)
    kw = {}
    if extras:
        kw = dict(D=torch.randn(6), z=torch.randn(2, 6, length), delta_bias=torch.randn(6),
                  delta_softplus=True, initial_state=torch.randn(2, 6, 5))
    y, last = selective_scan(u, delta, A, B, C, return_last_state=True, chunk=16, **kw)
    y_ref, last_ref = sequential_scan(u, delta, A, B, C, **kw)
    assert y.dtype == torch.float32 and y.shape == (2, 6, length)
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(last.double(), last_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 16, 64])
def test_chunk_size_does_not_change_result(chunk):
    u, delta, A, B, C = make(3, 4, 45, 4)
    y = selective_scan(u, delta, A, B, C, delta_softplus=True, chunk=chunk)
    y_ref, _ = sequential_scan(u, delta, A, B, C, delta_softplus=True)
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bc", ["invariant", "variable", "grouped"])
def test_gradients_gradcheck_float64(bc):
    u, delta, A, B, C = make(2, 4, 11, 3, bc, dtype=torch.float64)
    D = torch.randn(4, dtype=torch.float64)
    z = torch.randn(2, 4, 11, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    h0 = torch.randn(2, 4, 3, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (u, delta, A, B, C, D, z, bias, h0)]

    def f(u, delta, A, B, C, D, z, bias, h0):
        return selective_scan(u, delta, A, B, C, D, z, bias, True, h0, return_last_state=True, chunk=4)

    assert torch.autograd.gradcheck(f, inputs)


def test_gradients_match_sequential_reference():
    u, delta, A, B, C = make(2, 5, 30, 4)
    leaves = [t.clone().double().requires_grad_() for t in (u, delta, A, B, C)]
    ours = [t.clone().float().requires_grad_() for t in (u, delta, A, B, C)]
    weight = torch.randn(2, 5, 30, dtype=torch.float64)
    (sequential_scan(*leaves, delta_softplus=True)[0] * weight).sum().backward()
    (selective_scan(*ours, delta_softplus=True, chunk=8).double() * weight).sum().backward()
    for ref, got in zip(leaves, ours):
        assert torch.allclose(got.grad.double(), ref.grad, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_accumulates_in_fp32():
    u, delta, A, B, C = make(2, 8, 300, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = selective_scan(u.bfloat16(), delta.bfloat16(), A, B.bfloat16(), C.bfloat16(),
                           delta_softplus=True)
    assert y.dtype == torch.bfloat16
    y_ref, _ = sequential_scan(u.bfloat16(), delta.bfloat16(), A, B.bfloat16(), C.bfloat16(),
                               delta_softplus=True)
    err = (y.double() - y_ref).abs().max() / y_ref.abs().max()
    assert err < 1e-2  # only the final bf16 rounding, not 300 steps of bf16 accumulation


def test_decay_floor_avoids_denormals_without_changing_result():
    u, delta, A, B, C = make(1, 4, 20, 4)
    delta = delta.abs() * 100  # decays far below exp(LOG_DECAY_FLOOR)
    assert (delta[..., None] * A[None, :, None, :]).min() < LOG_DECAY_FLOOR
    y = selective_scan(u, delta, A, B, C)
    y_ref, _ = sequential_scan(u, delta, A, B, C)
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)


def test_growing_scan_is_an_error_not_inf():
    u, delta, A, B, C = make(1, 2, 200, 2)
    with pytest.raises(FloatingPointError, match="overflowed"):
        selective_scan(u, delta * 10, -A * 10, B, C)


def test_state_step_equals_scan():
    u, delta, A, B, C = make(2, 6, 12, 5)
    D, z, bias = torch.randn(6), torch.randn(2, 6, 12), torch.randn(6)
    y_ref, last_ref = sequential_scan(u, delta, A, B, C, D, z, bias, True)
    state = torch.zeros(2, 6, 5)
    for t in range(12):
        y_t, state = selective_state_step(state, u[..., t], delta[..., t], A, B[..., t], C[..., t],
                                          D, z[..., t], bias, True)
        assert torch.allclose(y_t.double(), y_ref[..., t], atol=1e-5, rtol=1e-5)
    assert torch.allclose(state.double(), last_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (dict(u=torch.randn(2, 6)), "'u' must be a 3-D tensor"),
    (dict(delta=torch.randn(2, 6, 9)), "'delta' has shape (2, 6, 9), expected (2, 6, 10)"),
    (dict(A=torch.randn(5, 4)), "'A' must have shape (D=6, N)"),
    (dict(B=torch.randn(2, 4, 9)), "'B' has shape (2, 4, 9), expected (2, 4, 10)"),
    (dict(C=torch.randn(2, 4, 4, 10)), "'C' has 4 groups, which must divide D=6"),
    (dict(D=torch.randn(7)), "'D' has shape (7,), expected (6,)"),
    (dict(initial_state=torch.randn(2, 6, 3)), "'initial_state' has shape (2, 6, 3)"),
])
def test_bad_shapes_name_the_argument(bad, message):
    args = dict(zip(("u", "delta", "A", "B", "C"), make(2, 6, 10, 4)))
    args.update(bad)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        selective_scan(**args)


@pytest.mark.parametrize("name", ["u", "delta", "B", "C"])
def test_non_finite_input_names_the_argument(name):
    args = dict(zip(("u", "delta", "A", "B", "C"), make(2, 6, 10, 4)))
    args[name] = args[name].clone()
    args[name][0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=f"'{name}' contains NaN or Inf"):
        selective_scan(**args)


def test_backend_selection(monkeypatch):
    args = make(1, 2, 5, 2)
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", "cuda")
    with pytest.raises(RuntimeError, match="backend 'cuda' was forced"):
        selective_scan(*args)
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", "fast")
    with pytest.raises(ValueError, match="ESPNET_MAMBA_BACKEND='fast'"):
        selective_scan(*args)
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", "torch")
    y = selective_scan(*args)
    assert torch.allclose(y, selective_scan(*args, backend="auto"))

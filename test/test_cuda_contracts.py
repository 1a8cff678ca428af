"""The CUDA dispatch of espnet_mamba.ops against stand-ins that enforce the kernels'
contracts (test/cuda_kernel_standins.py): runs on every commit, no GPU needed."""

import sys

import pytest
import torch

import cuda_kernel_standins as standins
from espnet_mamba.nn import BidirectionalMamba, Mamba
from espnet_mamba.ops import backend, causal_conv1d, causal_conv1d_step, selective_scan


@pytest.fixture
def kernels(monkeypatch):
    standins.install(monkeypatch)
    yield standins.CALLS
    backend.import_kernel.cache_clear()  # forget the stand-ins once sys.modules is restored


def reference(module, *args):
    """The same module on the PyTorch path, outside the stand-ins."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(backend.BACKEND_ENV, "torch")
        return module(*args)


def test_mamba_forward_backward_through_the_kernels(kernels):
    mixer = Mamba(32)
    x = torch.randn(2, 9, 32, requires_grad=True)
    lengths = torch.tensor([9, 6])
    y = mixer(x, lengths)
    y.square().sum().backward()
    assert "selective_scan_fn" in kernels and "causal_conv1d_fn" in kernels
    assert torch.allclose(y, reference(mixer, x, lengths), atol=1e-5)


def test_bidirectional_under_bf16_autocast_meets_the_dtype_contract(kernels):
    mixer = BidirectionalMamba(32)
    x = torch.randn(2, 9, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(x, torch.tensor([9, 5]))
        y.float().sum().backward()
    assert kernels.count("selective_scan_fn") == 2
    assert torch.isfinite(y).all()


def test_float64_and_wide_kernels_go_to_pytorch(kernels):
    mixer = Mamba(16).double()
    x = torch.randn(1, 7, 16, dtype=torch.float64)
    y = mixer(x)
    assert kernels == []  # fp64 is outside both kernels' dtypes
    assert torch.allclose(y, reference(mixer, x))
    weight = torch.randn(16, 5)
    causal_conv1d(torch.randn(1, 16, 8), weight)  # width 5: outside 2-4
    assert "causal_conv1d_fn" not in kernels


def test_channel_last_input_the_kernel_cannot_take_is_made_contiguous(kernels):
    w, b = torch.randn(12, 4), torch.randn(12)
    x = torch.randn(2, 7, 12).transpose(1, 2)  # channel-last, 12 channels: not a multiple of 8
    y = causal_conv1d(x, w, b, "silu")
    assert kernels == ["causal_conv1d_fn"]
    assert torch.allclose(y, reference(lambda: causal_conv1d(x, w, b, "silu")), atol=1e-6)
    with pytest.raises(standins.ContractError, match="divisible by 8"):
        standins.causal_conv1d_fn(x, w, b, activation="silu")


def test_recurrent_step_state_in_the_inputs_dtype(kernels):
    mixer = Mamba(16)
    state = mixer.allocate_state(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = mixer.step(torch.randn(2, 16), state)
    assert "causal_conv1d_update" in kernels
    assert torch.isfinite(y).all()
    x_t = torch.randn(2, 16)
    conv_state = torch.zeros(2, 16, 4, dtype=torch.float32)
    causal_conv1d_step(x_t.bfloat16(), conv_state, torch.randn(16, 4), torch.randn(16), "silu")
    with pytest.raises(standins.ContractError, match="conv_state"):
        standins.causal_conv1d_update(x_t.bfloat16(), conv_state, torch.randn(16, 4))


def test_last_state_gradient_is_not_dropped(kernels):
    u, delta = torch.randn(1, 4, 6, requires_grad=True), torch.rand(1, 4, 6)
    A, B = -torch.rand(4, 3), torch.randn(1, 3, 6)
    y, last = selective_scan(u, delta, A, B, B, return_last_state=True)
    assert kernels == []  # the kernel's backward would ignore `last`'s gradient
    last.sum().backward()
    assert u.grad.abs().sum() > 0
    with torch.no_grad():
        selective_scan(u, delta, A, B, B, return_last_state=True)
    assert kernels == ["selective_scan_fn"]


def test_the_standins_reject_what_the_kernels_reject():
    u = torch.randn(1, 4, 6)
    with pytest.raises(standins.ContractError, match="u dtype"):
        standins.selective_scan_fn(u.double(), u.double(), -torch.rand(4, 3), torch.randn(1, 3, 6),
                                   torch.randn(1, 3, 6))
    with pytest.raises(standins.ContractError, match="B torch.float32 != u torch.bfloat16"):
        standins.selective_scan_fn(u.bfloat16(), u.bfloat16(), -torch.rand(4, 3),
                                   torch.randn(1, 3, 6), torch.randn(1, 3, 6).bfloat16())
    with pytest.raises(standins.ContractError, match="width between 2 and 4"):
        standins.causal_conv1d_fn(u, torch.randn(4, 5))
    with pytest.raises(standins.ContractError, match="bias"):
        standins.causal_conv1d_fn(u, torch.randn(4, 3), torch.randn(4).double())


def test_a_kernel_module_without_its_extension_is_not_available(kernels, monkeypatch):
    monkeypatch.setitem(sys.modules, "selective_scan_cuda", None)  # import now fails
    backend.import_kernel.cache_clear()
    kernel, error = backend.selective_scan_kernel()
    assert kernel is None and "selective_scan_cuda is not built" in error
    u = torch.randn(1, 4, 6)
    selective_scan(u, u.abs(), -torch.rand(4, 3), torch.randn(1, 3, 6), torch.randn(1, 3, 6))
    assert "selective_scan_fn" not in kernels
    monkeypatch.setenv(backend.BACKEND_ENV, "cuda")
    with pytest.raises(RuntimeError, match="backend 'cuda' was forced.*not built"):
        selective_scan(u, u.abs(), -torch.rand(4, 3), torch.randn(1, 3, 6), torch.randn(1, 3, 6))

"""GPU checks: kernels vs the PyTorch path, and checkpoint interchange with mamba_ssm.

Run with `pytest -m gpu` on a machine with CUDA and kernels built by
`tools/install.sh --cuda`. Skipped without a GPU (conftest) or without the kernels.
"""

import pytest
import torch

from espnet_mamba.nn import Mamba
from espnet_mamba.ops import backend, selective_scan

pytestmark = pytest.mark.gpu


def needs_kernel():
    if backend.selective_scan_kernel()[0] is None:
        pytest.skip("mamba-ssm kernels not importable: " + backend.selective_scan_kernel()[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_matches_torch_path(dtype):
    needs_kernel()
    g = torch.Generator(device="cpu").manual_seed(0)
    b, d, length, n = 2, 64, 333, 16
    u = torch.randn(b, d, length, generator=g).cuda().to(dtype)
    delta = (torch.rand(b, d, length, generator=g) * 0.1).cuda().to(dtype)
    A = (-torch.rand(d, n, generator=g) - 0.5).cuda()
    B = torch.randn(b, n, length, generator=g).cuda().to(dtype)
    C = torch.randn(b, n, length, generator=g).cuda().to(dtype)
    D = torch.randn(d, generator=g).cuda()
    z = torch.randn(b, d, length, generator=g).cuda().to(dtype)
    args = (u, delta, A, B, C, D, z)
    y_k = selective_scan(*args, delta_softplus=True, backend="cuda")
    y_t = selective_scan(*args, delta_softplus=True, backend="torch")
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    assert torch.allclose(y_k.float(), y_t.float(), atol=tol, rtol=tol)


def test_state_dict_loads_into_mamba_ssm_and_gives_same_output(monkeypatch):
    needs_kernel()
    from mamba_ssm.modules.mamba_simple import Mamba as MambaSSM

    ours = Mamba(64).cuda()
    theirs = MambaSSM(64).cuda()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 100, 64, device="cuda")
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4, rtol=1e-3)
        ours_torch = Mamba(64).cuda()
        ours_torch.load_state_dict(theirs.state_dict())
        monkeypatch.setenv("ESPNET_MAMBA_BACKEND", "torch")
        assert torch.allclose(ours_torch(x), theirs(x), atol=1e-4, rtol=1e-3)


def test_torch_path_runs_on_cuda_without_kernels(monkeypatch):
    m = Mamba(32).cuda()
    x = torch.randn(2, 50, 32, device="cuda")
    monkeypatch.setenv("ESPNET_MAMBA_BACKEND", "torch")
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()

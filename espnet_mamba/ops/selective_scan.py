"""selective_scan: one call, the mamba-ssm CUDA kernel, the compiled CPU kernel or PyTorch.

Shapes and semantics follow ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``
(real A only), plus an optional initial state:

    u, delta, z        (batch, D, L)
    A                  (D, N)            negative for a stable (decaying) scan
    B, C               (D, N) time-invariant, (batch, N, L), or (batch, G, N, L)
    D, delta_bias      (D,)
    initial_state      (batch, D, N)
    returns y          (batch, D, L) in u's dtype, and the (batch, D, N) fp32
                       last state when return_last_state=True
"""

import math
import os
from typing import Optional

import torch

from espnet_mamba.ops import backend as _backend
from espnet_mamba.ops.selective_scan_torch import DEFAULT_CHUNK, selective_scan_torch
from espnet_mamba.ops.selective_scan_torch import selective_state_step as _state_step_torch

CHECK_FINITE_ENV = "ESPNET_MAMBA_CHECK_FINITE"


def _fail(name: str, problem: str):
    raise ValueError(f"selective_scan: argument '{name}' {problem}")


def _expect_shape(name, t, shape):
    if t is None:
        return
    if not isinstance(t, torch.Tensor):
        _fail(name, f"must be a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        _fail(name, f"has shape {tuple(t.shape)}, expected {tuple(shape)}")


def _check_finite_enabled(u: torch.Tensor) -> bool:
    """On by default for CPU tensors; on CUDA it costs a sync, so opt-in there."""
    flag = os.environ.get(CHECK_FINITE_ENV)
    if flag is not None:
        return flag not in ("0", "false", "False", "")
    return not u.is_cuda


def _check_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state):
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        _fail("u", f"must be a 3-D tensor (batch, D, L), got "
                   f"{tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__}")
    batch, dim, length = u.shape
    if length == 0:
        _fail("u", "has length 0 along time (dim 2): nothing to scan")
    if not isinstance(A, torch.Tensor) or A.dim() != 2 or A.shape[0] != dim:
        _fail("A", f"must have shape (D={dim}, N), got "
                   f"{tuple(A.shape) if isinstance(A, torch.Tensor) else type(A).__name__}")
    if A.is_complex():
        _fail("A", "is complex; only real A is supported")
    n = A.shape[1]
    _expect_shape("delta", delta, (batch, dim, length))
    for name, m in (("B", B), ("C", C)):
        if not isinstance(m, torch.Tensor):
            _fail(name, f"must be a torch.Tensor, got {type(m).__name__}")
        if m.dim() == 2:
            _expect_shape(name, m, (dim, n))
        elif m.dim() == 3:
            _expect_shape(name, m, (batch, n, length))
        elif m.dim() == 4:
            groups = m.shape[1]
            if groups < 1 or dim % groups:
                _fail(name, f"has {groups} groups, which must divide D={dim}")
            _expect_shape(name, m, (batch, groups, n, length))
        else:
            _fail(name, f"must be 2-D (D, N), 3-D (batch, N, L) or 4-D (batch, G, N, L), "
                        f"got shape {tuple(m.shape)}")
    if B.dim() == 4 and C.dim() == 4 and B.shape[1] != C.shape[1]:
        _fail("C", f"has {C.shape[1]} groups but B has {B.shape[1]}")
    _expect_shape("D", D, (dim,))
    _expect_shape("z", z, (batch, dim, length))
    _expect_shape("delta_bias", delta_bias, (dim,))
    _expect_shape("initial_state", initial_state, (batch, dim, n))


def _check_finite(y, named_inputs):
    """NaN/Inf in any input reaches the output, so one cheap sum over y screens them all;
    only a non-finite sum pays for a pass over each input to name the culprit."""
    if math.isfinite(float(y.detach().sum())):  # a Python float: a quarter of bool(torch.isfinite(...))'s cost
        return
    for name, t in named_inputs:
        if t is not None and not bool(torch.isfinite(t).all()):
            _fail(name, "contains NaN or Inf values")
    if not bool(torch.isfinite(y).all()):
        raise FloatingPointError("selective_scan: the output overflowed although every input is "
                                 "finite (is A positive, making the scan grow without bound?)")


def _with_groups(m: torch.Tensor) -> torch.Tensor:
    return m.unsqueeze(1) if m.dim() == 3 else m


# mamba-ssm's selective_scan_cuda contract: u, delta, z (and time-varying B, C) in one
# of these dtypes, A, D, delta_bias and time-invariant B, C in fp32, d_state <= 256
CUDA_SCAN_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
CUDA_MAX_STATE = 256


def _cuda_unsupported(u, A, initial_state, return_last_state, tensors) -> Optional[str]:
    if u.dtype not in CUDA_SCAN_DTYPES:
        return f"{u.dtype} inputs (it takes fp32, fp16, bf16)"
    if A.shape[1] > CUDA_MAX_STATE:
        return f"d_state={A.shape[1]} (at most {CUDA_MAX_STATE})"
    if initial_state is not None:
        return "initial_state"
    # mamba-ssm's backward ignores the last state's gradient: such a call goes to PyTorch
    # rather than silently training with part of its gradient missing
    if return_last_state and torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in tensors):
        return "the gradient of the returned last state"
    return None


def _cuda_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    """The kernel call with its dtype contract met (under autocast the inputs can differ)."""
    kernel, _ = _backend.selective_scan_kernel()

    def same_as_u(t):
        return None if t is None else t.to(u.dtype)

    def matrix(m):  # time-varying in u's dtype, time-invariant in fp32 like A
        return m.float() if m.dim() == 2 else same_as_u(m).contiguous()

    return kernel(u, same_as_u(delta), A.float(), matrix(B), matrix(C),
                  D=None if D is None else D.float(), z=same_as_u(z),
                  delta_bias=None if delta_bias is None else delta_bias.float(),
                  delta_softplus=delta_softplus, return_last_state=return_last_state)


def _cpu_unsupported(d_state: int) -> Optional[str]:
    from espnet_mamba.ops.cpu_kernels import MAX_STATE

    return f"d_state={d_state} (at most {MAX_STATE})" if d_state > MAX_STATE else None


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False,
                   backend: Optional[str] = None, chunk: Optional[int] = None):
    """Selective scan ``h[t] = exp(delta A) h[t-1] + delta B u; y = C h + D u``, gated by silu(z).

    ``backend``: "auto" (default, or $ESPNET_MAMBA_BACKEND), "torch", "cpu" or "cuda".
    ``chunk``: time steps per block of the PyTorch path / between the compiled
    kernel's backward checkpoints (each path's default when None).
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state)
    which = _backend.choose(
        "selective_scan", u, backend, cuda_kernel=_backend.selective_scan_kernel(),
        cuda_unsupported=_cuda_unsupported(u, A, initial_state, return_last_state,
                                           (u, delta, A, B, C, D, z, delta_bias)),
        cpu_unsupported=_cpu_unsupported(A.shape[1]))
    if which == "cuda":
        out = _cuda_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    elif which == "cpu":
        from espnet_mamba.ops.selective_scan_cpu import selective_scan_cpu

        kw = {} if chunk is None else {"chunk": chunk}
        out = selective_scan_cpu(u, delta, A, _with_groups(B), _with_groups(C), D=D, z=z,
                                 delta_bias=delta_bias, delta_softplus=delta_softplus,
                                 initial_state=initial_state,
                                 return_last_state=return_last_state, **kw)
    else:
        out = selective_scan_torch(u, delta, A, _with_groups(B), _with_groups(C), D=D, z=z,
                                   delta_bias=delta_bias, delta_softplus=delta_softplus,
                                   initial_state=initial_state,
                                   return_last_state=return_last_state,
                                   chunk=DEFAULT_CHUNK if chunk is None else chunk)
    if _check_finite_enabled(u):
        _check_finite(out[0] if return_last_state else out,
                      (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D), ("z", z),
                       ("delta_bias", delta_bias), ("initial_state", initial_state)))
    return out


def selective_state_step(state: torch.Tensor, u_t, delta_t, A, B_t, C_t, D=None, z_t=None,
                         delta_bias=None, delta_softplus=True, backend: Optional[str] = None):
    """One recurrent step, O(1) in the sequence length; ``state`` (b, D, N) is updated in place.

    u_t, delta_t, z_t (b, D); B_t, C_t (b, N). Returns y_t (b, D) in u_t's dtype and the state.
    The compiled CPU kernel runs the whole step in one call (beam search calls this per token).
    """
    fits = state.dtype in (torch.float32, torch.float64) and state.is_contiguous()
    which = _backend.choose("selective_state_step", state, backend,
                            cpu_unsupported=_cpu_unsupported(state.shape[-1]) or (
                                None if fits else
                                f"a {state.dtype} or non-contiguous state (fp32/fp64, contiguous)"))
    if which == "cpu":
        from espnet_mamba.ops.selective_scan_cpu import selective_state_step_cpu

        return selective_state_step_cpu(state, u_t, delta_t, A, B_t, C_t, D, z_t, delta_bias,
                                        delta_softplus)
    return _state_step_torch(state, u_t, delta_t, A, B_t, C_t, D, z_t, delta_bias, delta_softplus)

"""Stand-ins for the CUDA kernels that enforce their contracts on CPU tensors.

mamba-ssm 2.3.2's ``selective_scan_cuda`` (through ``selective_scan_fn``) and
causal-conv1d 1.7's ``causal_conv1d_fn`` / ``causal_conv1d_update`` reject
calls that break their argument contracts (dtypes, shapes, strides, width).
These stand-ins check the same conditions, raise as the kernels would, and
compute the result with a plain reference, so that the CUDA dispatch of
``espnet_mamba.ops`` runs in CI without a GPU. ``install(monkeypatch)`` puts
them in ``sys.modules`` and makes the dispatcher treat CPU tensors as CUDA
tensors. Every call is recorded in ``CALLS``.
"""

import sys
import types

import torch
import torch.nn.functional as F

from espnet_mamba.ops import backend
from espnet_mamba.ops.selective_scan_torch import selective_scan_torch

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
CALLS = []


class ContractError(RuntimeError):
    """What the real extension raises (a c10::Error, seen as RuntimeError)."""


def _check(condition, message):
    if not condition:
        raise ContractError(message)


def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                      return_last_state=False):
    CALLS.append("selective_scan_fn")
    # what mamba-ssm's Python wrapper does before the extension
    u = u if u.stride(-1) == 1 else u.contiguous()
    delta = delta if delta.stride(-1) == 1 else delta.contiguous()
    z = None if z is None or z.stride(-1) == 1 else z.contiguous()
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    # the extension's checks
    batch, dim, length = u.shape
    _check(u.dtype in KERNEL_DTYPES, f"selective_scan: u dtype {u.dtype}")
    _check(A.dtype == torch.float32, f"selective_scan: A must be fp32, got {A.dtype}")
    _check(delta.dtype == u.dtype, f"selective_scan: delta {delta.dtype} != u {u.dtype}")
    _check(tuple(A.shape) == (dim, A.shape[1]) and A.shape[1] <= 256, "selective_scan: A shape")
    for name, m in (("B", B), ("C", C)):
        if m.dim() == 2:
            _check(m.dtype == torch.float32, f"selective_scan: time-invariant {name} must be fp32")
            _check(tuple(m.shape) == tuple(A.shape), f"selective_scan: {name} shape")
        else:
            _check(m.dtype == u.dtype, f"selective_scan: {name} {m.dtype} != u {u.dtype}")
            _check(m.shape[0] == batch and m.shape[2:] == (A.shape[1], length),
                   f"selective_scan: {name} shape {tuple(m.shape)}")
            _check(m.stride(-1) == 1, f"selective_scan: {name} must have stride 1 over time")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None:
            _check(v.dtype == torch.float32, f"selective_scan: {name} must be fp32, got {v.dtype}")
            _check(tuple(v.shape) == (dim,) and v.stride(-1) == 1, f"selective_scan: {name} shape")
    if z is not None:
        _check(z.dtype == u.dtype and tuple(z.shape) == tuple(u.shape), "selective_scan: z")
    y, last = selective_scan_torch(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias,
                                   delta_softplus=delta_softplus, return_last_state=True)
    # the extension's backward ignores the last state's gradient
    return (y, last.detach()) if return_last_state else y


def _check_conv_inputs(x, weight, bias):
    _check(x.dtype in KERNEL_DTYPES, f"causal_conv1d: x dtype {x.dtype}")
    _check(weight.dtype in KERNEL_DTYPES, f"causal_conv1d: weight dtype {weight.dtype}")
    width = weight.shape[-1]
    _check(2 <= width <= 4, "causal_conv1d only supports width between 2 and 4")
    _check(tuple(weight.shape) == (x.shape[1], width), "causal_conv1d: weight shape")
    if bias is not None:
        _check(bias.dtype == weight.dtype, f"causal_conv1d: bias {bias.dtype} != weight {weight.dtype}")
        _check(bias.stride(-1) == 1 and tuple(bias.shape) == (x.shape[1],), "causal_conv1d: bias")


def causal_conv1d_fn(x, weight, bias=None, seq_idx=None, initial_states=None,
                     return_final_states=False, final_states_out=None, activation=None):
    CALLS.append("causal_conv1d_fn")
    _check_conv_inputs(x, weight, bias)
    _check(activation in (None, "silu", "swish"), f"causal_conv1d: activation {activation!r}")
    _check(x.stride(2) == 1 or x.stride(1) == 1, "causal_conv1d: x needs stride 1 over time or channels")
    if x.stride(1) == 1 and x.stride(2) > 1:
        _check(x.shape[1] % 8 == 0, "causal_conv1d only supports channel dimension divisible by 8")
        _check(x.stride(2) % 8 == 0 and x.stride(0) % 8 == 0,
               "causal_conv1d with channel last layout requires strides multiples of 8")
    _check(initial_states is None and not return_final_states, "stand-in: states not modelled")
    width = weight.shape[1]
    y = F.conv1d(F.pad(x.float(), (width - 1, 0)), weight.float().unsqueeze(1),
                 None if bias is None else bias.float(), groups=x.shape[1])
    return (F.silu(y) if activation else y).to(x.dtype)


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None,
                         cache_seqlens=None, conv_state_indices=None):
    CALLS.append("causal_conv1d_update")
    _check(x.dim() == 2, "stand-in: x (batch, dim) only")
    _check_conv_inputs(x.unsqueeze(-1), weight, bias)
    _check(conv_state.dtype == x.dtype, f"causal_conv1d_update: conv_state {conv_state.dtype} != x {x.dtype}")
    _check(tuple(conv_state.shape[:2]) == tuple(x.shape) and conv_state.shape[2] >= weight.shape[1] - 1,
           "causal_conv1d_update: conv_state shape")
    conv_state.copy_(torch.cat([conv_state[..., 1:], x.unsqueeze(-1)], -1))
    width = weight.shape[1]
    y = (conv_state[..., -width:].float() * weight.float()).sum(-1)
    if bias is not None:
        y = y + bias.float()
    return (F.silu(y) if activation else y).to(x.dtype)


def install(monkeypatch):
    """Make ``espnet_mamba.ops`` see these kernels and treat CPU tensors as CUDA ones."""
    CALLS.clear()
    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = selective_scan_fn
    conv = types.ModuleType("causal_conv1d")
    conv.causal_conv1d_fn = causal_conv1d_fn
    conv.causal_conv1d_update = causal_conv1d_update
    for name, module in (("mamba_ssm", types.ModuleType("mamba_ssm")),
                         ("mamba_ssm.ops", types.ModuleType("mamba_ssm.ops")),
                         ("mamba_ssm.ops.selective_scan_interface", interface),
                         ("selective_scan_cuda", types.ModuleType("selective_scan_cuda")),
                         ("causal_conv1d", conv),
                         ("causal_conv1d_cuda", types.ModuleType("causal_conv1d_cuda"))):
        monkeypatch.setitem(sys.modules, name, module)
    backend.import_kernel.cache_clear()
    monkeypatch.setattr(backend, "device_type", lambda tensor: "cuda")
    monkeypatch.setenv(backend.BACKEND_ENV, "auto")

"""Depthwise causal conv1d on the compiled CPU kernels (``csrc/mamba_cpu.c``).

Same arguments and results as the PyTorch path in ``causal_conv1d.py``:

    x              (batch, D, L)    any strides; y comes back in x's layout
    weight         (D, W)
    bias           (D,)
    initial_state  (batch, D, W-1)  the inputs before x[..., 0] (zeros if None)
"""

from typing import Optional

import torch

from espnet_mamba.ops import cpu_kernels as _k
from espnet_mamba.ops.selective_scan_cpu import _channel_last_like, needs_grad, no_autocast


def _args(x, weight, bias, initial, silu) -> _k.ConvArgs:
    a = _k.ConvArgs()
    a.x, a.weight, a.bias, a.initial = map(_k.ptr, (x, weight, bias, initial))
    a.batch, a.dim, a.len = x.shape
    a.width, a.silu = weight.shape[1], int(silu)
    a.s_x = _k.strides3(x)
    return a


def _threads(x: torch.Tensor, weight: torch.Tensor) -> int:
    return _k.threads_for(x.numel() * weight.shape[1], _k.blocks(x.shape[0], x.shape[1], 1))


def _conv_forward(x, weight, bias, initial, silu) -> torch.Tensor:
    y = _channel_last_like(x, x.dtype)
    a = _args(x, weight, bias, initial, silu)
    a.y, a.s_y = y.data_ptr(), _k.strides3(y)
    _k.library(x.dtype).conv_fwd(a, _threads(x, weight))
    return y


class CompiledCausalConv1d(torch.autograd.Function):
    """y = [silu](causal depthwise conv(x)); inputs already in the compute dtype."""

    @staticmethod
    def forward(ctx, x, weight, bias, initial, silu):
        y = _conv_forward(x, weight, bias, initial, silu)
        ctx.save_for_backward(x, weight, bias, initial)
        ctx.silu = silu
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, bias, initial = ctx.saved_tensors
        threads = _threads(x, weight)
        grad_x = _channel_last_like(x, x.dtype)
        grad_w = x.new_zeros((threads,) + tuple(weight.shape))
        grad_b = None if bias is None else x.new_zeros(threads, weight.shape[0])
        grad_init = None if initial is None else torch.empty_like(initial)
        a = _args(x, weight, bias, initial, ctx.silu)
        a.grad_y, a.grad_x = grad_y.data_ptr(), grad_x.data_ptr()
        a.grad_weight, a.grad_bias, a.grad_initial = map(_k.ptr, (grad_w, grad_b, grad_init))
        a.s_gy, a.s_gx = _k.strides3(grad_y), _k.strides3(grad_x)
        _k.library(x.dtype).conv_bwd(a, threads)
        return (grad_x, grad_w.sum(0), None if grad_b is None else grad_b.sum(0), grad_init, None)


def causal_conv1d_cpu(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                      silu: bool, initial_state: Optional[torch.Tensor] = None) -> torch.Tensor:
    dtype_in = x.dtype
    work = torch.float64 if dtype_in == torch.float64 else torch.float32
    with no_autocast():
        args = (x.to(work), weight.to(work).contiguous(), None if bias is None else bias.to(work),
                None if initial_state is None else initial_state.to(work).contiguous())
        if needs_grad(*args):
            y = CompiledCausalConv1d.apply(*args, bool(silu))
        else:
            y = _conv_forward(*args, bool(silu))
    return y.to(dtype_in)


def causal_conv1d_step_cpu(x_t: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor,
                           bias: Optional[torch.Tensor], silu: bool) -> torch.Tensor:
    """x_t (batch, D); conv_state (batch, D, W) contiguous, weight's dtype, updated in place."""
    work = conv_state.dtype
    x = x_t.to(work)
    x = x if x.stride(-1) == 1 else x.contiguous()
    y = torch.empty(x.shape, dtype=work)
    # kept in locals: the kernel reads their memory through raw pointers
    w = weight.to(work).contiguous()
    b = None if bias is None else bias.to(work).contiguous()
    a = _args(x.unsqueeze(-1), w, b, conv_state, silu)
    a.y, a.s_x, a.s_y = y.data_ptr(), _k._Strides3(x.stride(0), 1, 0), _k._Strides3(y.stride(0), 1, 0)
    _k.library(work).conv_step(a, _k.threads_for(conv_state.numel(), x.shape[0] * x.shape[1]))
    return y.to(x_t.dtype)

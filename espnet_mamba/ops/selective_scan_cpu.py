"""Selective scan on the compiled CPU kernels (``csrc/mamba_cpu.c``).

Same arguments and results as :func:`selective_scan_torch.selective_scan_torch`,
which stays the reference; ``ops/backend.py`` chooses between them. One fused
pass per (batch, channel) row, threads over rows:

    u, delta, z        (batch, D, L)   any strides (Mamba's are channel-last)
    A                  (D, N)
    B, C               (D, N), or (batch, G, N, L) read with unit stride over N
    D, delta_bias      (D,)
    initial_state      (batch, D, N)
    returns y          (batch, D, L) in u's dtype and memory layout, and the
                       (batch, D, N) last state in the compute dtype

Computes in fp32 (fp64 for fp64 inputs); bf16/fp16 inputs are converted and
the result converted back. Training keeps one state checkpoint per ``chunk``
steps, (batch, D, L/chunk, N), and the backward recomputes each chunk from it.
"""

import contextlib
from typing import Optional

import torch

from espnet_mamba.ops import cpu_kernels as _k


def _channel_last(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(batch, D, L) with unit stride over D: the kernel loads LANES channels at once."""
    if t is None or t.stride(1) == 1:
        return t
    return t.transpose(1, 2).contiguous().transpose(1, 2)


def _channel_last_like(u: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An empty (batch, D, L) tensor laid out like u: Mamba's next op wants (batch, L, D)."""
    batch, dim, length = u.shape
    if u.stride(1) == 1 and dim > 1:
        return u.new_empty(batch, length, dim, dtype=dtype).transpose(1, 2)
    return u.new_empty(batch, dim, length, dtype=dtype)


def _bc_layout(m: torch.Tensor) -> torch.Tensor:
    """(batch, G, N, L) with unit stride over N (a no-op for Mamba's x_proj output)."""
    if m.dim() == 2:
        return m.contiguous()
    if m.stride(2) != 1:
        m = m.transpose(2, 3).contiguous().transpose(2, 3)
    return m


def _bc_strides(m: torch.Tensor):
    return _k.strides3(None) if m.dim() == 2 else _k._Strides3(m.stride(0), m.stride(1), m.stride(3))


def _args(u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk) -> _k.ScanArgs:
    batch, dim, length = u.shape
    a = _k.ScanArgs()
    a.u, a.delta, a.A, a.B, a.C = map(_k.ptr, (u, delta, A, B, C))
    a.D, a.z, a.delta_bias, a.h0 = map(_k.ptr, (D, z, delta_bias, h0))
    a.batch, a.dim, a.len, a.nstate = batch, dim, length, A.shape[1]
    a.groups = B.shape[1] if B.dim() == 4 else (C.shape[1] if C.dim() == 4 else 1)
    a.chunk, a.softplus = chunk, int(softplus)
    a.B_varies, a.C_varies = int(B.dim() == 4), int(C.dim() == 4)
    a.s_u, a.s_delta, a.s_z = _k.strides3(u), _k.strides3(delta), _k.strides3(z)
    a.s_B, a.s_C = _bc_strides(B), _bc_strides(C)
    return a


def _scan_forward(u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk, training):
    """The forward kernel: (y, last_state, checkpoints or None); inputs in the compute dtype
    and layout. With ``training`` the state is kept every ``chunk`` steps for the backward."""
    batch, dim, length = u.shape
    y = _channel_last_like(u, u.dtype)
    last = u.new_empty(batch, dim, A.shape[1])
    ckpt = (u.new_empty(batch, dim, -(-length // chunk), A.shape[1]) if training else None)
    a = _args(u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk)
    a.y, a.last, a.ckpt, a.s_y = y.data_ptr(), last.data_ptr(), _k.ptr(ckpt), _k.strides3(y)
    _k.library(u.dtype).scan_fwd(a, _k.threads_for(u.numel() * A.shape[1],
                                                      _k.blocks(batch, dim, a.groups)))
    return y, last, ckpt


def needs_grad(*tensors) -> bool:
    """Would autograd record a call on these tensors? If not, the kernels are called
    directly: autograd.Function's bookkeeping costs more than a short chunk's scan."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def no_autocast():
    """Autocast off around the casts to the compute dtype (a no-op context when it is off:
    entering torch.autocast costs as much as a one-frame streaming step's scan)."""
    if torch.is_autocast_enabled("cpu"):
        return torch.autocast(device_type="cpu", enabled=False)
    return contextlib.nullcontext()


class CompiledSelectiveScan(torch.autograd.Function):
    """(y, last_state) = scan(...); all inputs already in the compute dtype and layout."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk):
        ctx.set_materialize_grads(False)
        training = any(ctx.needs_input_grad)
        y, last, ckpt = _scan_forward(u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk, training)
        if training:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, h0, ckpt)
            ctx.softplus, ctx.chunk = softplus, chunk
        return y, last

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        u, delta, A, B, C, D, z, delta_bias, h0, ckpt = ctx.saved_tensors
        if grad_y is None:
            grad_y = torch.zeros_like(u)
        batch, dim, length = u.shape
        n = A.shape[1]
        a = _args(u, delta, A, B, C, D, z, delta_bias, h0, ctx.softplus, ctx.chunk)
        threads = _k.threads_for(u.numel() * n, _k.blocks(batch, dim, a.groups))
        grad_u, grad_delta = _channel_last_like(u, u.dtype), _channel_last_like(u, u.dtype)
        grad_z = None if z is None else _channel_last_like(u, u.dtype)
        grad_h0 = None if h0 is None else torch.empty_like(h0)
        # per-thread buffers for the gradients that sum over rows of several threads
        per_thread = dict(A=u.new_zeros(threads, dim, n), D=u.new_zeros(threads, dim),
                          bias=u.new_zeros(threads, dim))
        for name, m in (("B", B), ("C", C)):  # time-varying: one slot per channel lane too
            shape = (m.shape[0], m.shape[1], length, n, _k.LANES) if m.dim() == 4 else (dim, n)
            per_thread[name] = u.new_zeros((threads,) + shape)
        a.ckpt, a.grad_y = ckpt.data_ptr(), grad_y.data_ptr()
        grad_last = None if grad_last is None else grad_last.to(u.dtype).contiguous()
        a.grad_last = _k.ptr(grad_last)
        a.grad_u, a.grad_delta, a.grad_z, a.grad_h0 = map(_k.ptr, (grad_u, grad_delta, grad_z, grad_h0))
        a.grad_A, a.grad_B, a.grad_C = (per_thread[k].data_ptr() for k in ("A", "B", "C"))
        a.grad_D, a.grad_bias = per_thread["D"].data_ptr(), per_thread["bias"].data_ptr()
        a.s_gy, a.s_gu, a.s_gdelta = _k.strides3(grad_y), _k.strides3(grad_u), _k.strides3(grad_delta)
        a.s_gz = _k.strides3(grad_z)
        _k.library(u.dtype).scan_bwd(a, threads)

        def total(name, like):
            g = per_thread[name]
            if like.dim() == 4:  # (threads, batch, G, L, N, lanes) -> (batch, G, N, L)
                return g.sum((0, 5)).transpose(2, 3)
            return g.sum(0).reshape(like.shape)

        return (grad_u, grad_delta, total("A", A), total("B", B), total("C", C),
                None if D is None else total("D", D), grad_z,
                None if delta_bias is None else total("bias", delta_bias), grad_h0, None, None)


def selective_scan_cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       initial_state=None, return_last_state=False, chunk: int = _k.DEFAULT_CHUNK):
    """Compiled selective scan; arguments as :func:`espnet_mamba.ops.selective_scan`.

    B and C arrive as (D, N) or (batch, G, N, L) (the dispatcher adds G=1).
    """
    dtype_in = u.dtype
    work = torch.float64 if dtype_in == torch.float64 else torch.float32
    chunk = max(1, min(int(chunk), _k.MAX_CHUNK))
    with no_autocast():
        def cast(t: Optional[torch.Tensor]):
            return None if t is None else t.to(work)

        args = (_channel_last(cast(u)), _channel_last(cast(delta)), cast(A).contiguous(),
                _bc_layout(cast(B)), _bc_layout(cast(C)), cast(D), _channel_last(cast(z)),
                cast(delta_bias), None if initial_state is None else cast(initial_state).contiguous())
        if needs_grad(*args):
            y, last = CompiledSelectiveScan.apply(*args, bool(delta_softplus), chunk)
        else:
            y, last, _ = _scan_forward(*args, bool(delta_softplus), chunk, training=False)
    y = y.to(dtype_in)
    return (y, last) if return_last_state else y


def selective_state_step_cpu(state: torch.Tensor, u_t, delta_t, A, B_t, C_t, D=None, z_t=None,
                             delta_bias=None, delta_softplus=True):
    """One recurrent step in place, as :func:`selective_scan_torch.selective_state_step`.

    state (b, D, N) contiguous fp32/fp64; u_t, delta_t, z_t (b, D); B_t, C_t (b, N).
    """
    work, out_dtype = state.dtype, u_t.dtype

    def rows(t):  # (b, X) with unit stride over X, in the state's dtype
        if t is None:
            return None
        t = t.to(work)
        return t if t.stride(-1) == 1 else t.contiguous()

    u_t, delta_t, B_t, C_t, z_t = map(rows, (u_t, delta_t, B_t, C_t, z_t))
    A_, D_, bias_ = (None if t is None else t.to(work).contiguous() for t in (A, D, delta_bias))
    y = torch.empty(state.shape[0], state.shape[1], dtype=work)
    a = _k.StepArgs()
    a.state, a.u, a.delta, a.A, a.B, a.C = map(_k.ptr, (state, u_t, delta_t, A_, B_t, C_t))
    a.D, a.z, a.delta_bias, a.y = map(_k.ptr, (D_, z_t, bias_, y))
    a.batch, a.dim, a.nstate, a.softplus = state.shape[0], state.shape[1], state.shape[2], int(delta_softplus)
    a.s_u, a.s_delta, a.s_B, a.s_C, a.s_y = (t.stride(0) for t in (u_t, delta_t, B_t, C_t, y))
    a.s_z = 0 if z_t is None else z_t.stride(0)
    _k.library(work).state_step(a, _k.threads_for(state.numel(), _k.blocks(*state.shape[:2], 1)))
    return y.to(out_dtype), state

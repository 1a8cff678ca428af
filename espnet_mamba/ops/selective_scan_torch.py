"""Selective scan in plain PyTorch: fast on CPU, exact, any device.

Recurrence, per batch b, channel d and state n:

    h[t] = exp(delta[t] * A) * h[t-1] + delta[t] * B[t] * u[t]
    y[t] = sum_n C[t] * h[t]

Why this formulation (measured with ``python -m espnet_mamba.benchmark scan``):
the scan is memory-bound, so the fastest exact method is the work-optimal
sequential recurrence with as little per-step overhead as possible. Time is
cut into chunks of ``chunk`` steps; for each chunk the decays and inputs are
computed in one vectorised op into *reused, contiguous, time-major* buffers
(``(K, batch, groups, d_per_group, d_state)``), then one in-place ``addcmul_``
per step runs the recurrence, and one batched matmul contracts with C. Parallel
(Hillis-Steele) and log-space formulations do more memory passes and were
slower on a 2-core CPU; non-contiguous buffers were 6x slower per step.

Gradients come from a hand-written backward (a reverse scan of the same shape)
that recomputes the states chunk by chunk from the chunk-start states saved in
the forward, so training memory is O(L/chunk * D * N), not O(L * D * N).

Numerics: everything is computed in fp32 (or fp64 if the inputs are fp64).
Log-decays are floored at ``LOG_DECAY_FLOOR`` (exp(-60) ~ 1e-26): decays
below it change the result by less than 1e-26 of the state, and without the
floor they produce denormal floats, which x86 CPUs process ~10x slower.
"""

from typing import Optional, Tuple

import torch

LOG_DECAY_FLOOR = -60.0
DEFAULT_CHUNK = 16


def _time_major(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(batch, D, L) -> contiguous (L, batch, G, D/G, 1)."""
    batch, dim, length = x.shape
    return x.permute(2, 0, 1).reshape(length, batch, groups, dim // groups, 1)


def _input_matrix_layout(m: torch.Tensor, groups: int, dim: int, as_column: bool) -> torch.Tensor:
    """B or C to a layout that broadcasts against (L, batch, G, D/G, N) states.

    (D, N) time-invariant -> (1, 1, G, D/G, N).
    (batch, G, N, L) time-varying -> (L, batch, G, 1, N), or (L, batch, G, N, 1)
    when ``as_column`` (for the C contraction as a batched matmul).
    """
    if m.dim() == 2:
        return m.reshape(1, 1, groups, dim // groups, m.shape[-1])
    t = m.permute(3, 0, 1, 2)  # L, batch, G, N
    return (t.unsqueeze(-1) if as_column else t.unsqueeze(-2)).contiguous()


class _ScanSetup:
    """Inputs rearranged once into time-major layout, shared by forward and backward."""

    def __init__(self, u, delta, A, B, C, chunk):
        self.batch, self.dim, self.length = u.shape
        self.d_state = A.shape[1]
        self.groups = B.shape[1] if B.dim() == 4 else 1
        g = self.groups
        self.chunk = chunk
        self.dt = _time_major(delta, g)                     # L, b, G, Dg, 1
        self.du = _time_major(delta * u, g)                 # L, b, G, Dg, 1
        self.A = A.reshape(g, self.dim // g, self.d_state)  # G, Dg, N
        self.B_varies = B.dim() == 4
        self.C_varies = C.dim() == 4
        self.B = _input_matrix_layout(B, g, self.dim, as_column=False)
        self.C = _input_matrix_layout(C, g, self.dim, as_column=self.C_varies)
        self.state_shape = (self.batch, g, self.dim // g, self.d_state)
        # the floor costs a pass per chunk; skip it when no decay can reach it
        # (delta >= 0 and A <= 0 in any real Mamba, so max|delta| * max|A| bounds |delta*A|)
        self.needs_floor = bool(delta.abs().max() * A.abs().max() >= -LOG_DECAY_FLOOR)

    def bounds(self):
        return [(s, min(self.length, s + self.chunk)) for s in range(0, self.length, self.chunk)]

    def step_input(self, s, e, out):
        """delta * B * u for steps s..e into ``out`` (K, b, G, Dg, N)."""
        Bm = self.B[s:e] if self.B_varies else self.B
        return torch.mul(self.du[s:e], Bm, out=out)

    def log_decay(self, s, e, out):
        """delta * A for steps s..e, floored, into ``out``."""
        torch.mul(self.dt[s:e], self.A, out=out)
        return out.clamp_(min=LOG_DECAY_FLOOR) if self.needs_floor else out

    def run_chunk(self, s, e, h, decay_buf, state_buf):
        """States h[s..e-1] into state_buf given h[s-1]; returns (decay, states)."""
        k = e - s
        decay = self.log_decay(s, e, decay_buf[:k]).exp_()
        states = self.step_input(s, e, state_buf[:k])
        # unbind once: K views for the price of one call instead of 3K indexing ops
        step_states, step_decays = states.unbind(0), decay.unbind(0)
        step_states[0].addcmul_(step_decays[0], h)
        for prev, cur, dec in zip(step_states, step_states[1:], step_decays[1:]):
            cur.addcmul_(dec, prev)
        return decay, states

    def contract_C(self, s, e, states, out):
        """out (K, b, G, Dg) = sum_n C * h for steps s..e."""
        if self.C_varies:  # one batched mat-vec written straight into the output
            n, dg = self.d_state, self.dim // self.groups
            torch.bmm(states.view(-1, dg, n), self.C[s:e].view(-1, n, 1), out=out.view(-1, dg, 1))
        else:
            torch.sum(states * self.C, dim=-1, out=out)
        return out


class ChunkedSelectiveScan(torch.autograd.Function):
    """y, last_state = scan(u, delta, A, B, C, h0). delta is already biased/softplused."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0, chunk):
        setup = _ScanSetup(u, delta, A, B, C, chunk)
        k = min(chunk, setup.length)
        decay_buf = u.new_empty((k,) + setup.state_shape)
        # two state buffers used in turn, so the previous chunk's last state (h) stays
        # valid while the next chunk is written: no per-chunk copy of h
        state_bufs = (u.new_empty((k,) + setup.state_shape), u.new_empty((k,) + setup.state_shape))
        y = u.new_empty(setup.length, setup.batch, setup.groups, setup.dim // setup.groups)
        h = u.new_zeros(setup.state_shape) if h0 is None else h0.reshape(setup.state_shape)
        # chunk-start states let backward recompute each chunk; not kept for inference
        keep = any(ctx.needs_input_grad)
        starts = []
        for index, (s, e) in enumerate(setup.bounds()):
            if keep:
                starts.append(h.clone())
            _, states = setup.run_chunk(s, e, h, decay_buf, state_bufs[index % 2])
            setup.contract_C(s, e, states, out=y[s:e])
            h = states[e - s - 1]
        if keep:
            ctx.save_for_backward(u, delta, A, B, C, torch.stack(starts))
        ctx.chunk = chunk
        ctx.has_h0 = h0 is not None
        # a (batch, D, L) view of time-major memory: callers transpose to (batch, L, D)
        # next, so a copy here would be a wasted transpose
        y = y.reshape(setup.length, setup.batch, setup.dim).permute(1, 2, 0)
        return y, h.reshape(setup.batch, setup.dim, setup.d_state).clone()

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        u, delta, A, B, C, starts = ctx.saved_tensors
        setup = _ScanSetup(u, delta, A, B, C, ctx.chunk)
        g, dg, n = setup.groups, setup.dim // setup.groups, setup.d_state
        k = min(ctx.chunk, setup.length)
        decay_buf = u.new_empty((k,) + setup.state_shape)
        state_buf = u.new_empty((k,) + setup.state_shape)
        grad_state_buf = u.new_empty((k,) + setup.state_shape)
        gy = _time_major(grad_y.to(u.dtype), g)                        # L, b, G, Dg, 1
        g_dt = torch.zeros_like(setup.dt)
        g_du = torch.zeros_like(setup.du)
        g_A = torch.zeros_like(setup.A)
        g_B = torch.zeros_like(setup.B)
        g_C = torch.zeros_like(setup.C)
        # gradient w.r.t. the state that the *next* chunk starts from
        carry = (torch.zeros(setup.state_shape, dtype=u.dtype, device=u.device)
                 if grad_last is None else grad_last.reshape(setup.state_shape).to(u.dtype))
        for index, (s, e) in reversed(list(enumerate(setup.bounds()))):
            klen = e - s
            h_start = starts[index]
            decay, states = setup.run_chunk(s, e, h_start, decay_buf, state_buf)
            # dL/dh[t] = C[t] * gy[t] + decay[t+1] * dL/dh[t+1]
            C_row = setup.C[s:e].transpose(-1, -2) if setup.C_varies else setup.C
            gh = torch.mul(gy[s:e], C_row, out=grad_state_buf[:klen])
            gh[klen - 1].add_(carry)
            step_grads, step_decays = gh.unbind(0), decay.unbind(0)
            for t in range(klen - 2, -1, -1):
                step_grads[t].addcmul_(step_decays[t + 1], step_grads[t + 1])
            carry = decay[0] * gh[0]
            # C: y = sum_n C h
            if setup.C_varies:  # sum over Dg as a batched (1 x Dg) @ (Dg x N): no full-size temporary
                g_C[s:e] = torch.matmul(gy[s:e].transpose(-1, -2), states).transpose(-1, -2)
            else:
                g_C += (states * gy[s:e]).sum((0, 1))
            # decay = exp(clamp(delta * A)): d/d(delta*A) = gh * h[t-1] * decay
            prev = torch.cat([h_start.unsqueeze(0), states[:-1]]) if klen > 1 else h_start.unsqueeze(0)
            g_log = gh * prev * decay
            if setup.needs_floor:  # clamped decays pass no gradient
                g_log.masked_fill_(setup.log_decay(s, e, torch.empty_like(decay)) <= LOG_DECAY_FLOOR, 0.0)
            g_dt[s:e] = (g_log * setup.A).sum(-1, keepdim=True)
            g_A += (g_log * setup.dt[s:e]).sum((0, 1))
            # input = (delta*u) * B
            Bm = setup.B[s:e] if setup.B_varies else setup.B
            g_du[s:e] = torch.matmul(gh, Bm.transpose(-1, -2)) if setup.B_varies else (gh * Bm).sum(-1, keepdim=True)
            if setup.B_varies:
                g_B[s:e] = torch.matmul(setup.du[s:e].transpose(-1, -2), gh)
            else:
                g_B += (gh * setup.du[s:e]).sum((0, 1))
        batch, dim, length = u.shape

        def back(x):  # (L, b, G, Dg, 1) -> (b, D, L)
            return x.reshape(length, batch, dim).permute(1, 2, 0)

        g_du = back(g_du)
        grad_u = g_du * delta
        grad_delta = back(g_dt) + g_du * u
        grad_B = g_B.squeeze(-2).permute(1, 2, 3, 0) if setup.B_varies else g_B.reshape(B.shape)
        grad_C = g_C.squeeze(-1).permute(1, 2, 3, 0) if setup.C_varies else g_C.reshape(C.shape)
        grad_h0 = carry.reshape(batch, dim, n) if ctx.has_h0 else None
        return grad_u, grad_delta, g_A.reshape(A.shape), grad_B, grad_C, grad_h0, None


def selective_scan_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                         delta_softplus=False, initial_state=None,
                         return_last_state=False, chunk: int = DEFAULT_CHUNK):
    """PyTorch selective scan; arguments as :func:`espnet_mamba.ops.selective_scan`.

    B and C arrive as (D, N) or (batch, G, N, L) (the dispatcher adds G=1).
    Computes in fp32 (fp64 stays fp64) with autocast off; returns ``u.dtype``.
    """
    dtype_in = u.dtype
    work = torch.float64 if dtype_in == torch.float64 else torch.float32
    with torch.autocast(device_type=u.device.type, enabled=False):
        u_ = u.to(work)
        delta_ = delta.to(work)
        if delta_bias is not None:
            delta_ = delta_ + delta_bias.to(work)[:, None]
        if delta_softplus:
            delta_ = torch.nn.functional.softplus(delta_)
        h0 = None if initial_state is None else initial_state.to(work)
        y, last = ChunkedSelectiveScan.apply(u_, delta_, A.to(work), B.to(work), C.to(work), h0, chunk)
        if D is not None:
            y = y + u_ * D.to(work)[:, None]
        if z is not None:
            y = y * torch.nn.functional.silu(z.to(work))
    y = y.to(dtype_in)
    return (y, last) if return_last_state else y


def selective_state_step(state: torch.Tensor, u_t, delta_t, A, B_t, C_t, D=None, z_t=None,
                         delta_bias=None, delta_softplus=True) -> Tuple[torch.Tensor, torch.Tensor]:
    """One recurrent step: O(1) in the sequence length.

    state (b, D, N) is updated in place; u_t, delta_t, z_t (b, D); B_t, C_t (b, N).
    Returns y_t (b, D) in u_t's dtype and the state.
    """
    work = state.dtype
    dt = delta_t.to(work)
    if delta_bias is not None:
        dt = dt + delta_bias.to(work)
    if delta_softplus:
        dt = torch.nn.functional.softplus(dt)
    decay = torch.exp((dt.unsqueeze(-1) * A.to(work)).clamp_(min=LOG_DECAY_FLOOR))
    state.mul_(decay).add_((dt * u_t.to(work)).unsqueeze(-1) * B_t.to(work).unsqueeze(1))
    y = torch.einsum("bdn,bn->bd", state, C_t.to(work))
    if D is not None:
        y = y + u_t.to(work) * D.to(work)
    if z_t is not None:
        y = y * torch.nn.functional.silu(z_t.to(work))
    return y.to(u_t.dtype), state

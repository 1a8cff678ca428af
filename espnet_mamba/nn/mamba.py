"""Mamba mixer whose parameters are exactly mamba_ssm.modules.mamba_simple.Mamba's.

Same names, shapes and initialisation (in_proj, conv1d, x_proj, dt_proj,
A_log, D, out_proj; d_state 16, d_conv 4, expand 2, dt_rank ceil(d_model/16)),
so a checkpoint trained on a GPU with the kernels loads here and vice versa.
The ops it calls pick the CUDA kernels or PyTorch (see espnet_mamba.ops.backend).
"""

import math
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_mamba.nn.lengths import Padding, padding
from espnet_mamba.ops import causal_conv1d, causal_conv1d_step, selective_scan, selective_state_step


def linear_parameters(linear: nn.Module) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(weight, bias) of a Linear as float tensors, also after ``torch.ao.quantization.quantize_dynamic``
    (ESPnet's ``--quantize_asr_model``) has replaced it: there ``weight()`` and ``bias()`` are
    methods and the weight is int8, so it is dequantized (the rounding stays)."""
    weight, bias = linear.weight, linear.bias
    if callable(weight):
        weight = weight().dequantize()
    if callable(bias):
        bias = bias()
    return weight, bias


class MambaState(NamedTuple):
    """Recurrent state of one Mamba mixer, as in mamba-ssm's inference cache."""
    conv: torch.Tensor  # (batch, d_inner, d_conv): the d_conv most recent conv inputs
    ssm: torch.Tensor   # (batch, d_inner, d_state), fp32

    def index_select(self, index: torch.Tensor) -> "MambaState":
        """Rows of the batch (beam search keeps the surviving hypotheses)."""
        return MambaState(self.conv.index_select(0, index), self.ssm.index_select(0, index))


class Mamba(nn.Module):
    """Selective state-space mixer: (batch, L, d_model) -> (batch, L, d_model).

    Args:
        d_model: input/output feature size.
        d_state: SSM state size N per channel.
        d_conv: width of the causal depthwise convolution.
        expand: inner width = expand * d_model.
        dt_rank: rank of the delta projection; "auto" = ceil(d_model / 16).
        dt_min, dt_max: range of the initial time steps (log-uniform).
        dt_init: "random" or "constant" initialisation of dt_proj.weight.
        dt_scale, dt_init_floor: scale of dt_proj.weight init; smallest initial dt.
        conv_bias: bias in the depthwise convolution.
        bias: bias in in_proj and out_proj.
        layer_idx: position in the stack (kept for mamba-ssm compatibility).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: Union[int, str] = "auto", dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4,
                 conv_bias: bool = True, bias: bool = False, layer_idx: Optional[int] = None):
        super().__init__()
        if dt_init not in ("random", "constant"):
            raise ValueError(f"Mamba: dt_init={dt_init!r}, expected 'random' or 'constant'")
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.layer_idx = layer_idx

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=conv_bias)
        self.activation = "silu"
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self._init_dt(dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        # S4D-real initialisation: A = -[1, 2, ..., N] for every channel
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def _init_dt(self, dt_init, dt_scale, dt_min, dt_max, dt_init_floor):
        std = self.dt_rank ** -0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=dt_init_floor)
        # bias = softplus^-1(dt), so that softplus(bias) starts at dt
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True

    def _conv_weight(self) -> torch.Tensor:
        return self.conv1d.weight.squeeze(1)  # (d_inner, d_conv)

    def _ssm_inputs(self, x: torch.Tensor):
        """x (batch, d_inner, L) -> delta (batch, d_inner, L), B, C (batch, N, L)."""
        x_dbl = self.x_proj(x.transpose(1, 2))                              # batch, L, R+2N
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, linear_parameters(self.dt_proj)[0]).transpose(1, 2)  # batch, d_inner, L
        return delta, B.transpose(1, 2), C.transpose(1, 2)

    def forward(self, hidden: torch.Tensor, lengths: Union[torch.Tensor, Padding, None] = None,
                initial_state: Optional[MambaState] = None, return_state: bool = False):
        """hidden (batch, L, d_model); lengths (batch,) of real frames, padding on the right,
        or the :class:`Padding` an encoder built for all its layers.

        Padded frames never change what real frames see (the scan is causal and
        padding comes last); their outputs are zero. With ``return_state`` the
        state after the last *real* frame of each sequence is returned too.
        """
        if hidden.dim() != 3 or hidden.shape[-1] != self.d_model:
            raise ValueError(f"Mamba: argument 'hidden' must be (batch, L, d_model={self.d_model}), "
                             f"got {tuple(hidden.shape)}")
        batch, length, _ = hidden.shape
        pad = padding(lengths, batch, length)
        xz = self.in_proj(hidden).transpose(1, 2)                           # batch, 2*d_inner, L
        x, z = xz.chunk(2, dim=1)
        if return_state and pad is not None:
            # padded frames must not move the state: zero their input and their step size
            mask = pad.valid[:, None, :]
            x = x * mask
        conv_history = None if initial_state is None else initial_state.conv[..., 1:]
        conv_out = causal_conv1d(x, self._conv_weight(), self.conv1d.bias, self.activation,
                                 initial_state=conv_history, return_final_state=False)
        delta, B, C = self._ssm_inputs(conv_out)
        A = -torch.exp(self.A_log.float())
        delta_bias = linear_parameters(self.dt_proj)[1].float()
        if return_state and pad is not None:
            # softplus(-1e4 + bias) == 0: a zero step keeps the state exactly (decay 1, input 0)
            delta = delta.masked_fill(~mask, -1e4)
        scanned = selective_scan(conv_out, delta, A, B, C, self.D.float(), z=z,
                                 delta_bias=delta_bias, delta_softplus=True,
                                 initial_state=None if initial_state is None else initial_state.ssm,
                                 return_last_state=return_state)
        y, last = scanned if return_state else (scanned, None)
        out = self.out_proj(y.transpose(1, 2))
        if pad is not None:
            out = out * pad.valid[:, :, None].to(out.dtype)
        if not return_state:
            return out
        return out, MambaState(self._final_conv_state(x, None if pad is None else pad.lengths,
                                                      initial_state), last)

    def _final_conv_state(self, x, lengths, initial_state):
        """The d_conv most recent conv inputs before each sequence's end."""
        batch, d_inner, length = x.shape
        if lengths is None and length >= self.d_conv:   # every sequence ends at L (a streaming chunk)
            return x[..., length - self.d_conv:].contiguous()
        history = (x.new_zeros(batch, d_inner, self.d_conv) if initial_state is None
                   else initial_state.conv.to(x.dtype))
        full = torch.cat([history, x], dim=-1)                              # batch, d_inner, W+L
        ends = (torch.full((batch,), length, device=x.device) if lengths is None else lengths)
        index = ends[:, None] + torch.arange(self.d_conv, device=x.device)[None, :]  # batch, W
        return torch.gather(full, 2, index[:, None, :].expand(batch, d_inner, self.d_conv))

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """The dtype in_proj's output (the conv input) has on ``device``: the autocast dtype
        while autocast is on there, else the weights' (fp32 for a dynamically quantized in_proj)."""
        weight = linear_parameters(self.in_proj)[0]
        if (weight.dtype != torch.float64 and weight.is_floating_point()
                and torch.is_autocast_enabled(device.type)):
            return torch.get_autocast_dtype(device.type)
        return weight.dtype

    def allocate_state(self, batch: int, device=None, dtype=None) -> MambaState:
        """Zero state for ``step``. The conv state holds conv inputs, so it takes the dtype
        they will have (``dtype``, or by default :meth:`compute_dtype`); the SSM state is
        fp32 (fp64 for a model in fp64)."""
        device = torch.device(device) if device is not None else self.A_log.device
        dtype = dtype or self.compute_dtype(device)
        ssm_dtype = torch.promote_types(self.A_log.dtype, torch.float32)
        return MambaState(torch.zeros(batch, self.d_inner, self.d_conv, device=device, dtype=dtype),
                          torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=ssm_dtype))

    def step(self, hidden_t: torch.Tensor, state: MambaState) -> Tuple[torch.Tensor, MambaState]:
        """One token: hidden_t (batch, d_model) -> (batch, d_model). O(1) in the prefix length.

        The state is updated in place and also returned; use the returned one: a conv
        state whose dtype differs from the conv input's (a state allocated outside
        autocast, used under it) is replaced by a converted copy, as the CUDA update
        kernel needs one dtype for both.
        """
        if hidden_t.dim() != 2 or hidden_t.shape[-1] != self.d_model:
            raise ValueError(f"Mamba.step: argument 'hidden_t' must be (batch, d_model={self.d_model}), "
                             f"got {tuple(hidden_t.shape)}")
        x, z = self.in_proj(hidden_t).chunk(2, dim=-1)                      # batch, d_inner
        if state.conv.dtype != x.dtype:
            state = MambaState(state.conv.to(x.dtype), state.ssm)
        x = causal_conv1d_step(x, state.conv, self._conv_weight(), self.conv1d.bias, self.activation)
        x_dbl = self.x_proj(x)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt_weight, dt_bias = linear_parameters(self.dt_proj)
        delta = F.linear(dt, dt_weight)
        y, _ = selective_state_step(state.ssm, x, delta, -torch.exp(self.A_log.float()), B, C,
                                    self.D.float(), z_t=z, delta_bias=dt_bias.float(),
                                    delta_softplus=True)
        return self.out_proj(y), state

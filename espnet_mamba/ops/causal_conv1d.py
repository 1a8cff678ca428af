"""Causal depthwise conv1d: the causal-conv1d kernel on CUDA, F.conv1d otherwise.

    x              (batch, D, L)
    weight         (D, W)           one W-tap filter per channel
    bias           (D,)
    initial_state  (batch, D, W-1)  the W-1 inputs before x[..., 0] (zeros if None)
    returns y      (batch, D, L), and with return_final_state the last W-1 inputs

The recurrent form keeps mamba-ssm's state layout ``conv_state (batch, D, W)``:
the W most recent inputs, oldest first.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from espnet_mamba.ops import backend as _backend

ACTIVATIONS = (None, "silu", "swish")


def _activate(y: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    if activation not in ACTIVATIONS:
        raise ValueError(f"causal_conv1d: argument 'activation' is {activation!r}, "
                         f"expected one of {ACTIVATIONS}")
    return F.silu(y) if activation else y


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                  activation: Optional[str] = None, initial_state: Optional[torch.Tensor] = None,
                  return_final_state: bool = False, backend: Optional[str] = None):
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: argument 'x' must be 3-D (batch, D, L), got {tuple(x.shape)}")
    batch, dim, length = x.shape
    if weight.dim() != 2 or weight.shape[0] != dim:
        raise ValueError(f"causal_conv1d: argument 'weight' must be (D={dim}, W), got {tuple(weight.shape)}")
    width = weight.shape[1]
    if initial_state is not None and tuple(initial_state.shape) != (batch, dim, width - 1):
        raise ValueError(f"causal_conv1d: argument 'initial_state' has shape {tuple(initial_state.shape)}, "
                         f"expected {(batch, dim, width - 1)}")
    _activate(x[:0], activation)  # validates the name
    which = _backend.choose("causal_conv1d", _backend.causal_conv1d_kernel(), x, backend,
                            unsupported="initial_state/return_final_state"
                            if initial_state is not None or return_final_state else None)
    if which == "cuda":
        kernel, _ = _backend.causal_conv1d_kernel()
        return kernel(x, weight, bias, activation=activation)
    history = initial_state if initial_state is not None else x.new_zeros(batch, dim, width - 1)
    padded = torch.cat([history.to(x.dtype), x], dim=-1)           # batch, D, W-1+L
    y = _activate(F.conv1d(padded, weight.unsqueeze(1), bias, groups=dim), activation)
    if return_final_state:
        return y, padded[..., padded.shape[-1] - (width - 1):]
    return y


def causal_conv1d_step(x_t: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor,
                       bias: Optional[torch.Tensor] = None, activation: Optional[str] = None,
                       backend: Optional[str] = None) -> torch.Tensor:
    """One step: x_t (batch, D); conv_state (batch, D, W) is updated in place. Returns (batch, D)."""
    which = _backend.choose("causal_conv1d_step", _backend.causal_conv1d_update_kernel(), x_t, backend)
    if which == "cuda":
        kernel, _ = _backend.causal_conv1d_update_kernel()
        return kernel(x_t, conv_state, weight, bias, activation)
    conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
    conv_state[:, :, -1] = x_t
    y = (conv_state * weight).sum(-1)
    if bias is not None:
        y = y + bias
    return _activate(y, activation).to(x_t.dtype)

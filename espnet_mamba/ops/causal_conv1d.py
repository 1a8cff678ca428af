"""Causal depthwise conv1d: the causal-conv1d kernel on CUDA, the compiled kernel
on a CPU, F.conv1d otherwise.

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
    which = _backend.choose("causal_conv1d", x, backend, cuda_kernel=_backend.causal_conv1d_kernel(),
                            cuda_unsupported=_cuda_conv_unsupported(x, weight, initial_state,
                                                                    return_final_state))
    if which == "cuda":
        kernel, _ = _backend.causal_conv1d_kernel()
        return kernel(_cuda_conv_layout(x), weight, None if bias is None else bias.to(weight.dtype),
                      activation=activation)
    if which == "cpu":
        from espnet_mamba.ops.causal_conv1d_cpu import causal_conv1d_cpu

        y = causal_conv1d_cpu(x, weight, bias, activation is not None, initial_state)
        if not return_final_state:
            return y
        return y, _last_inputs(x, initial_state, width)
    history = initial_state if initial_state is not None else x.new_zeros(batch, dim, width - 1)
    padded = torch.cat([history.to(x.dtype), x], dim=-1)           # batch, D, W-1+L
    y = _activate(F.conv1d(padded, weight.unsqueeze(1), bias, groups=dim), activation)
    if return_final_state:
        return y, padded[..., padded.shape[-1] - (width - 1):]
    return y


# causal-conv1d 1.7's contract: x and weight in fp32/fp16/bf16, bias in the weight's
# dtype, width 2-4; a channel-last x (stride 1 over channels) needs channels and the
# batch and time strides divisible by 8; the update's state in x's dtype
CUDA_CONV_WIDTHS = (2, 3, 4)
CUDA_CONV_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _cuda_conv_unsupported(x, weight, initial_state, return_final_state) -> Optional[str]:
    width = weight.shape[1]
    if x.dtype not in CUDA_CONV_DTYPES or weight.dtype not in CUDA_CONV_DTYPES:
        return f"{x.dtype} input / {weight.dtype} weight (it takes fp32, fp16, bf16)"
    if width not in CUDA_CONV_WIDTHS:
        return f"kernel width {width} (it takes {CUDA_CONV_WIDTHS})"
    if initial_state is not None or return_final_state:
        return "initial_state/return_final_state"
    return None


def _cuda_conv_layout(x: torch.Tensor) -> torch.Tensor:
    """x as the kernel accepts it: time-contiguous, or channel-last with multiples of 8."""
    if x.stride(2) == 1:
        return x
    if x.stride(1) == 1 and x.shape[1] % 8 == 0 and x.stride(0) % 8 == 0 and x.stride(2) % 8 == 0:
        return x
    return x.contiguous()


def _last_inputs(x: torch.Tensor, initial_state: Optional[torch.Tensor], width: int) -> torch.Tensor:
    """The width-1 inputs before the end of x (reaching into initial_state if x is short)."""
    keep = width - 1
    if x.shape[-1] >= keep:
        return x[..., x.shape[-1] - keep:]
    history = initial_state if initial_state is not None else x.new_zeros(x.shape[0], x.shape[1], keep)
    return torch.cat([history.to(x.dtype), x], dim=-1)[..., -keep:]


def causal_conv1d_step(x_t: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor,
                       bias: Optional[torch.Tensor] = None, activation: Optional[str] = None,
                       backend: Optional[str] = None) -> torch.Tensor:
    """One step: x_t (batch, D); conv_state (batch, D, W) is updated in place. Returns (batch, D)."""
    _activate(x_t[:0], activation)
    width = weight.shape[1]
    fits = conv_state.dtype in (torch.float32, torch.float64) and conv_state.is_contiguous()
    which = _backend.choose(
        "causal_conv1d_step", x_t, backend, cuda_kernel=_backend.causal_conv1d_update_kernel(),
        cuda_unsupported=_cuda_conv_unsupported(conv_state, weight, None, False),
        cpu_unsupported=None if fits else f"a {conv_state.dtype} or non-contiguous conv state")
    if which == "cuda":
        kernel, _ = _backend.causal_conv1d_update_kernel()
        # the kernel wants the state in x's dtype, the bias in the weight's
        return kernel(x_t.to(conv_state.dtype), conv_state, weight,
                      None if bias is None else bias.to(weight.dtype), activation).to(x_t.dtype)
    if which == "cpu":
        from espnet_mamba.ops.causal_conv1d_cpu import causal_conv1d_step_cpu

        return causal_conv1d_step_cpu(x_t, conv_state, weight, bias, activation is not None)
    conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
    conv_state[:, :, -1] = x_t
    y = (conv_state * weight).sum(-1)
    if bias is not None:
        y = y + bias
    return _activate(y, activation).to(x_t.dtype)

"""Pre-norm residual block: x + dropout(mixer(RMSNorm(x)))."""

from typing import Optional

import torch
import torch.nn as nn

from espnet_mamba.nn.bidirectional import COMBINE_MODES, BidirectionalMamba
from espnet_mamba.nn.mamba import Mamba

DIRECTIONS = ("none",) + COMBINE_MODES


def build_mixer(d_model: int, bidirectional: str = "none", share_input_projection: bool = False,
                **mamba_kwargs) -> nn.Module:
    """A causal Mamba (bidirectional="none") or a BidirectionalMamba combining by add/mean/concat."""
    if bidirectional not in DIRECTIONS:
        raise ValueError(f"bidirectional={bidirectional!r}, expected one of {DIRECTIONS}")
    if bidirectional == "none":
        return Mamba(d_model, **mamba_kwargs)
    return BidirectionalMamba(d_model, combine=bidirectional,
                              share_input_projection=share_input_projection, **mamba_kwargs)


def norm_in_weight_dtype(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """norm(x) with x cast to the norm's weight dtype (a residual stream kept in fp32 meets
    a norm converted to fp16/bf16/fp64); a norm without weight takes x as it is."""
    weight = getattr(norm, "weight", None)
    if isinstance(weight, torch.Tensor) and x.dtype != weight.dtype:
        x = x.to(weight.dtype)
    return norm(x)


class MambaBlock(nn.Module):
    """RMSNorm -> mixer -> dropout -> residual add.

    Args:
        d_model: feature size.
        mixer: a module mapping (x, lengths) -> same shape (Mamba or BidirectionalMamba).
        norm_eps: RMSNorm epsilon.
        dropout_rate: dropout on the mixer output.
        residual_in_fp32: keep the residual stream in at least fp32 (fp16/bf16 inputs
            are promoted, fp64 stays fp64); the block then returns that dtype.

    The norm reads the residual stream cast to the norm weight's dtype (as
    mamba-ssm's Block does), so an fp32 residual from the previous block feeds
    a model converted to fp16 or fp64 (``asr_inference --dtype``).
    """

    def __init__(self, d_model: int, mixer: nn.Module, norm_eps: float = 1e-5,
                 dropout_rate: float = 0.0, residual_in_fp32: bool = False):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.mixer = mixer
        self.dropout = nn.Dropout(dropout_rate)
        self.residual_in_fp32 = residual_in_fp32

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.dropout(self.mixer(norm_in_weight_dtype(self.norm, x), lengths))
        if self.residual_in_fp32:
            wide = torch.promote_types(x.dtype, torch.float32)
            return x.to(wide) + out.to(wide)
        return x + out.to(x.dtype)

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


class MambaBlock(nn.Module):
    """RMSNorm -> mixer -> dropout -> residual add.

    Args:
        d_model: feature size.
        mixer: a module mapping (x, lengths) -> same shape (Mamba or BidirectionalMamba).
        norm_eps: RMSNorm epsilon.
        dropout_rate: dropout on the mixer output.
        residual_in_fp32: keep the residual stream in fp32 under mixed precision
            (the block then returns fp32).
    """

    def __init__(self, d_model: int, mixer: nn.Module, norm_eps: float = 1e-5,
                 dropout_rate: float = 0.0, residual_in_fp32: bool = False):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.mixer = mixer
        self.dropout = nn.Dropout(dropout_rate)
        self.residual_in_fp32 = residual_in_fp32

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.dropout(self.mixer(self.norm(x), lengths))
        if self.residual_in_fp32:
            return x.float() + out.float()
        return x + out.to(x.dtype)

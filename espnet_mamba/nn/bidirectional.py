"""Bidirectional Mamba: a forward scan and a backward scan over each utterance.

The backward direction reverses each sequence *within its own length*, so
padding stays after the real frames in both directions and an utterance gives
the same output whatever else is in the batch (public Vision-Mamba-style ASR
code flips the whole padded batch and leaks padding into the backward state).
"""

from typing import Union

import torch
import torch.nn as nn

from espnet_mamba.nn.lengths import Padding, padding, reverse_within_lengths
from espnet_mamba.nn.mamba import Mamba

COMBINE_MODES = ("add", "mean", "concat")


class BidirectionalMamba(nn.Module):
    """Two Mamba mixers, one per direction, combined per frame.

    Args:
        d_model: input/output feature size.
        combine: "add" (sum), "mean" (average) or "concat" (concatenate, then a
            linear projection back to d_model). Sums are accumulated in fp32:
            two fp16 directions can overflow when added in fp16.
        share_input_projection: one in_proj for both directions (fewer parameters).
        **mamba_kwargs: passed to each :class:`Mamba` (d_state, d_conv, expand, ...).
    """

    def __init__(self, d_model: int, combine: str = "add", share_input_projection: bool = False,
                 **mamba_kwargs):
        super().__init__()
        if combine not in COMBINE_MODES:
            raise ValueError(f"BidirectionalMamba: combine={combine!r}, expected one of {COMBINE_MODES}")
        self.combine = combine
        self.forward_mixer = Mamba(d_model, **mamba_kwargs)
        self.backward_mixer = Mamba(d_model, **mamba_kwargs)
        if share_input_projection:
            self.backward_mixer.in_proj = self.forward_mixer.in_proj
        self.merge = nn.Linear(2 * d_model, d_model) if combine == "concat" else None

    def forward(self, hidden: torch.Tensor, lengths: Union[torch.Tensor, Padding, None] = None
                ) -> torch.Tensor:
        """hidden (batch, L, d_model) -> (batch, L, d_model); lengths (batch,), a Padding or None."""
        pad = padding(lengths, hidden.shape[0], hidden.shape[1])
        # a sequence reversed within its length keeps its padding last: the same mask serves both
        lengths = None if pad is None else pad.lengths
        ahead = self.forward_mixer(hidden, pad)
        behind = reverse_within_lengths(
            self.backward_mixer(reverse_within_lengths(hidden, lengths), pad), lengths)
        if self.combine == "concat":
            merged = self.merge(torch.cat([ahead, behind], dim=-1))
            if pad is not None:  # the projection's bias would make padding non-zero
                merged = merged * pad.valid[:, :, None].to(merged.dtype)
            return merged
        total = ahead.float() + behind.float()
        if self.combine == "mean":
            total = total * 0.5
        return total.to(ahead.dtype)

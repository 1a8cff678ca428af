"""Mamba mixers (causal, bidirectional), the residual blocks built from them, padding helpers."""

from espnet_mamba.nn.bidirectional import BidirectionalMamba
from espnet_mamba.nn.blocks import ConMambaBlock, MambaBlock, MambaDecoderBlock, build_mixer
from espnet_mamba.nn.lengths import Padding, padding, reverse_within_lengths, valid_mask
from espnet_mamba.nn.mamba import Mamba, MambaState

__all__ = ["Mamba", "MambaState", "BidirectionalMamba", "MambaBlock", "ConMambaBlock",
           "MambaDecoderBlock", "build_mixer", "Padding", "padding", "reverse_within_lengths",
           "valid_mask"]

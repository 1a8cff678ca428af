"""Mamba mixer, bidirectional wrapper and residual blocks."""

from espnet_mamba.nn.bidirectional import BidirectionalMamba
from espnet_mamba.nn.block import MambaBlock, build_mixer
from espnet_mamba.nn.lengths import reverse_within_lengths, valid_mask
from espnet_mamba.nn.mamba import Mamba, MambaState

__all__ = ["Mamba", "MambaState", "BidirectionalMamba", "MambaBlock", "build_mixer",
           "reverse_within_lengths", "valid_mask"]

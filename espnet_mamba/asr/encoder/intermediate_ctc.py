"""ESPnet's intermediate CTC and self-conditioning, for both Mamba encoders (and streaming).

ESPnet's ASR model reads ``interctc_layer_idx``, ``interctc_use_conditioning``
and ``conditioning_layer`` (which it sets) off the encoder, and expects the
encoder output in the shapes :meth:`IntermediateCTC.finish` returns.
"""

from typing import List, Optional

import torch

from espnet_mamba.nn.blocks import norm_in_weight_dtype
from espnet_mamba.nn.lengths import Padding


def set_interctc_attributes(encoder: torch.nn.Module, interctc_layer_idx: List[int],
                            interctc_use_conditioning: bool, num_blocks: int) -> None:
    for idx in interctc_layer_idx:
        if not 0 < idx < num_blocks:
            raise ValueError(f"encoder_conf: interctc_layer_idx contains {idx}; layers are "
                             f"numbered 1..{num_blocks - 1} (the last layer is the main CTC)")
    encoder.interctc_layer_idx = list(interctc_layer_idx)
    encoder.interctc_use_conditioning = interctc_use_conditioning
    encoder.conditioning_layer = None  # set by ESPnetASRModel when conditioning is on


class IntermediateCTC:
    """Collects one encoder forward's intermediate outputs block by block.

    The encoder output is a tuple (output, list) in two cases, never mixed:

    * ``return_all_hs``: (output, [hidden after layer 1, ..., after layer N]), plain
      tensors before the final norm (what ESPnet's SSL and S2ST models read, and what
      ESPnet's encoders return without intermediate CTC);
    * otherwise, with interctc_layer_idx set: (output, [(layer, normed hidden), ...]),
      as ESPnet's conformer returns it for intermediate CTC.

    Self-conditioning (interctc_use_conditioning) is applied in both cases, so
    ``return_all_hs`` never changes the output.
    """

    def __init__(self, encoder: torch.nn.Module, ctc: Optional[torch.nn.Module], return_all_hs: bool = False):
        self.encoder, self.ctc, self.return_all_hs = encoder, ctc, return_all_hs
        self.all_hidden, self.interctc = [], []

    def after_block(self, index: int, xs: torch.Tensor, pad: Optional[Padding] = None) -> torch.Tensor:
        """Record block ``index``'s (1-based) output xs; returns it, self-conditioned where due."""
        encoder = self.encoder
        if self.return_all_hs:
            self.all_hidden.append(xs)
        if index not in encoder.interctc_layer_idx:
            return xs
        hidden = norm_in_weight_dtype(encoder.after_norm, xs)
        self.interctc.append((index, hidden))
        if not encoder.interctc_use_conditioning:
            return xs
        if self.ctc is None or encoder.conditioning_layer is None:
            raise ValueError("encoder_conf: interctc_use_conditioning needs the model "
                             "to pass its CTC (use ESPnet's ASR model with interctc_weight > 0)")
        xs = xs + encoder.conditioning_layer(self.ctc.softmax(hidden))
        return xs if pad is None else xs.masked_fill(pad.pad, 0.0)

    def finish(self, xs: torch.Tensor, pad: Padding):
        """The final norm, padded frames zeroed, in ESPnet's encoder return format."""
        xs = norm_in_weight_dtype(self.encoder.after_norm, xs).masked_fill(pad.pad, 0.0)
        intermediate = self.all_hidden if self.return_all_hs else self.interctc
        if intermediate:
            return (xs, intermediate), pad.lengths, None
        return xs, pad.lengths, None

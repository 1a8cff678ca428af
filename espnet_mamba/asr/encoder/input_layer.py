"""The input layer both Mamba encoders put in front of their blocks (``encoder_conf.input_layer``)."""

from typing import Optional, Tuple

import torch

from espnet_mamba.asr.espnet_compat import SUBSAMPLING, apply_subsampling, build_subsampling, is_subsampling
from espnet_mamba.nn.lengths import Padding, padding

INPUT_LAYERS = tuple(SUBSAMPLING) + ("linear", "none")


def build_input_layer(input_layer: Optional[str], input_size: int, output_size: int,
                      dropout_rate: float) -> Optional[torch.nn.Module]:
    """ESPnet's subsampling ("conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8") without
    positional encoding, "linear" (Linear, LayerNorm, Dropout, ReLU), or "none"/None."""
    name = "none" if input_layer is None else input_layer
    if name in SUBSAMPLING:
        return build_subsampling(name, input_size, output_size, dropout_rate)
    if name == "linear":
        return torch.nn.Sequential(torch.nn.Linear(input_size, output_size),
                                   torch.nn.LayerNorm(output_size), torch.nn.Dropout(dropout_rate),
                                   torch.nn.ReLU())
    if name == "none":
        if input_size != output_size:
            raise ValueError(f"encoder_conf: input_layer: none needs input_size == output_size, "
                             f"got {input_size} and {output_size}; use input_layer: linear")
        return None
    raise ValueError(f"encoder_conf: unknown input_layer {input_layer!r}; expected one of {INPUT_LAYERS}")


def embed(layer: Optional[torch.nn.Module], xs_pad: torch.Tensor, ilens: torch.Tensor
          ) -> Tuple[torch.Tensor, Padding]:
    """Run the input layer on (batch, T, input_size) features with their lengths (batch,).

    The one place an encoder forward checks lengths (see ``nn.lengths.padding``: no host
    sync on CUDA) and builds the padding mask that all its blocks share. Padded frames of
    the output are zero.
    """
    padding(ilens, xs_pad.size(0), xs_pad.size(1), name="ilens")
    if layer is None:
        xs, lengths = xs_pad, ilens
    elif is_subsampling(layer):
        xs, lengths = apply_subsampling(layer, xs_pad, ilens)
    else:
        xs, lengths = layer(xs_pad), ilens
    lengths = lengths.to(xs.device)
    pad = padding(lengths, xs.size(0), xs.size(1), check=False)
    return xs.masked_fill(pad.pad, 0.0), pad

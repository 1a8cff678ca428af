"""What the Mamba encoders share: ESPnet's input layers, lengths, intermediate CTC."""

from typing import List, Optional, Tuple

import torch

from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet_mamba.asr.espnet_compat import (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
    check_short_utt,
    make_pad_mask,
)
from espnet_mamba.nn.block import norm_in_weight_dtype

SUBSAMPLING = {
    "conv2d": Conv2dSubsampling,    # 4x
    "conv2d1": Conv2dSubsampling1,  # 1x
    "conv2d2": Conv2dSubsampling2,  # 2x
    "conv2d6": Conv2dSubsampling6,  # 6x
    "conv2d8": Conv2dSubsampling8,  # 8x
}
INPUT_LAYERS = tuple(SUBSAMPLING) + ("linear", "none")


def build_input_layer(input_layer: Optional[str], input_size: int, output_size: int,
                      dropout_rate: float) -> Optional[torch.nn.Module]:
    """ESPnet's subsampling, without positional encoding: a Mamba scan knows the order.

    ESPnet's Conv2dSubsampling* appends a positional encoding module; passing a
    Dropout in its place keeps the layer and its parameter names unchanged.
    """
    name = "none" if input_layer is None else input_layer
    if name in SUBSAMPLING:
        return SUBSAMPLING[name](input_size, output_size, dropout_rate,
                                 pos_enc=torch.nn.Dropout(dropout_rate))
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


def subsampled_lengths(embed: torch.nn.Module, ilens: torch.Tensor) -> torch.Tensor:
    """Frames each utterance really has after the subsampling convolutions.

    ESPnet's Conv2dSubsampling derives lengths by striding a mask, which for a
    padded utterance can count one extra frame computed partly from padding
    (71 frames -> 18 in a batch, 17 alone). A backward scan would start from
    that frame, so we use the convolution arithmetic instead.
    """
    lengths = ilens.clone()
    for conv in embed.modules():
        if isinstance(conv, torch.nn.Conv2d):
            k, s, p, d = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
            lengths = torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


class MambaEncoderBase(AbsEncoder):
    """Subclasses set ``self.embed``, ``self.encoders`` (layers taking (x, lengths)) and
    ``self.after_norm``; this class runs them with ESPnet's encoder contract."""

    def __init__(self, output_size: int, interctc_layer_idx: List[int],
                 interctc_use_conditioning: bool, num_blocks: int):
        super().__init__()
        self._output_size = output_size
        for idx in interctc_layer_idx:
            if not 0 < idx < num_blocks:
                raise ValueError(f"encoder_conf: interctc_layer_idx contains {idx}; layers are "
                                 f"numbered 1..{num_blocks - 1} (the last layer is the main CTC)")
        self.interctc_layer_idx = list(interctc_layer_idx)
        self.interctc_use_conditioning = interctc_use_conditioning
        self.conditioning_layer = None  # set by ESPnetASRModel when conditioning is on

    def output_size(self) -> int:
        return self._output_size

    def _subsample(self, xs_pad: torch.Tensor, ilens: torch.Tensor):
        if self.embed is None:
            return xs_pad, ilens
        if isinstance(self.embed, tuple(SUBSAMPLING.values())):
            too_short, limit = check_short_utt(self.embed, xs_pad.size(1))
            if too_short:
                raise TooShortUttError(
                    f"has {xs_pad.size(1)} frames and is too short for subsampling "
                    f"(it needs more than {limit} frames), return empty results",
                    xs_pad.size(1), limit)
            masks = (~make_pad_mask(ilens, maxlen=xs_pad.size(1))[:, None, :]).to(xs_pad.device)
            xs_pad, _ = self.embed(xs_pad, masks)
            lengths = subsampled_lengths(self.embed, ilens)
            return xs_pad[:, : int(lengths.max())], lengths
        return self.embed(xs_pad), ilens

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None,
                ctc: Optional[CTC] = None, return_all_hs: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """xs_pad (batch, T, input_size), ilens (batch,) -> (batch, T', output_size), olens, None.

        The first element is a tuple (output, list) in two cases, never mixed:

        * ``return_all_hs``: (output, [hidden after layer 1, ..., after layer N]), plain
          tensors before the final norm (what ESPnet's SSL and S2ST models read, and what
          ESPnet's encoders return without intermediate CTC);
        * otherwise, with interctc_layer_idx set: (output, [(layer, normed hidden), ...]),
          as ESPnet's conformer returns it for intermediate CTC.

        Self-conditioning (interctc_use_conditioning) is applied in both cases, so
        ``return_all_hs`` never changes the output.
        """
        xs, lengths = self._subsample(xs_pad, ilens)
        lengths = lengths.to(xs.device)
        pad = make_pad_mask(lengths, maxlen=xs.size(1)).to(xs.device)[:, :, None]
        xs = xs.masked_fill(pad, 0.0)
        all_hidden, interctc = [], []
        for index, layer in enumerate(self.encoders, start=1):
            xs = layer(xs, lengths)
            if return_all_hs:
                all_hidden.append(xs)
            if index in self.interctc_layer_idx:
                hidden = norm_in_weight_dtype(self.after_norm, xs)
                interctc.append((index, hidden))
                if self.interctc_use_conditioning:
                    if ctc is None or self.conditioning_layer is None:
                        raise ValueError("encoder_conf: interctc_use_conditioning needs the model "
                                         "to pass its CTC (use ESPnet's ASR model with interctc_weight > 0)")
                    xs = xs + self.conditioning_layer(ctc.softmax(hidden))
                    xs = xs.masked_fill(pad, 0.0)
        xs = norm_in_weight_dtype(self.after_norm, xs).masked_fill(pad, 0.0)
        intermediate = all_hidden if return_all_hs else interctc
        if intermediate:
            return (xs, intermediate), lengths, None
        return xs, lengths, None

"""Everything this package takes from ESPnet, and the adapters that reach into ESPnet's modules.

The one place to update when ESPnet moves or changes a module. Other modules
import ESPnet names from here, never from ``espnet``/``espnet2`` directly.

* ESPnet's git master moved ``espnet/nets/...`` to ``espnet2/legacy/nets/...``;
  released versions (202511) still have the old place: :func:`_load` tries the new one first.
* Names that import ``espnet2.tasks`` or ``espnet2.bin`` (``ASRTask``, ``Speech2Text``, ...)
  are resolved when first used (``_LAZY``): ``espnet2.tasks.asr`` imports every ESPnet
  model (seconds), and importing it runs our registration, which imports this module.
* Adapters, each relying on named internals of one ESPnet module:
  :func:`build_subsampling` / :func:`apply_subsampling` (Conv2dSubsampling*'s
  positional-encoding slot and short-utterance check), :class:`MaskedConvolutionModule`
  (ConvolutionModule's submodules), :class:`CrossAttention` (MultiHeadedAttention's
  ``linear_*``, ``h``, ``d_k``, ``q_norm``/``k_norm``, ``forward_attention``).
"""

import importlib
import math
from typing import Optional, Tuple

import torch

from espnet2.asr.ctc import CTC  # noqa: F401
from espnet2.asr.decoder.abs_decoder import AbsDecoder  # noqa: F401
from espnet2.asr.encoder.abs_encoder import AbsEncoder  # noqa: F401
from espnet2.asr.espnet_model import ESPnetASRModel  # noqa: F401
from espnet2.asr.frontend.default import DefaultFrontend  # noqa: F401
from espnet2.layers.global_mvn import GlobalMVN  # noqa: F401


def _load(path: str, *names):
    errors = []
    for root in ("espnet2.legacy.nets", "espnet.nets"):
        try:
            module = importlib.import_module(f"{root}.{path}")
            return [getattr(module, n) for n in names]
        except (ImportError, AttributeError) as exc:
            errors.append(f"{root}.{path}: {exc}")
    raise ImportError("cannot import " + ", ".join(names) + " from ESPnet (" + "; ".join(errors) + ")")


(BatchScorerInterface,) = _load("scorer_interface", "BatchScorerInterface")
(get_activation,) = _load("pytorch_backend.nets_utils", "get_activation")
(MultiHeadedAttention,) = _load("pytorch_backend.transformer.attention", "MultiHeadedAttention")
(PositionwiseFeedForward,) = _load("pytorch_backend.transformer.positionwise_feed_forward",
                                   "PositionwiseFeedForward")
(LayerNorm,) = _load("pytorch_backend.transformer.layer_norm", "LayerNorm")
(ConvolutionModule,) = _load("pytorch_backend.conformer.convolution", "ConvolutionModule")
(Conv2dSubsampling, Conv2dSubsampling1, Conv2dSubsampling2, Conv2dSubsampling6, Conv2dSubsampling8,
 TooShortUttError, check_short_utt) = _load(
    "pytorch_backend.transformer.subsampling", "Conv2dSubsampling", "Conv2dSubsampling1",
    "Conv2dSubsampling2", "Conv2dSubsampling6", "Conv2dSubsampling8", "TooShortUttError",
    "check_short_utt")
(BeamSearch, Hypothesis) = _load("beam_search", "BeamSearch", "Hypothesis")
(BatchBeamSearch,) = _load("batch_beam_search", "BatchBeamSearch")
(CTCPrefixScorer,) = _load("scorers.ctc", "CTCPrefixScorer")
(LengthBonus,) = _load("scorers.length_bonus", "LengthBonus")

# name -> candidate modules, newest ESPnet first; imported on first use (see the docstring)
_LAZY = {
    "ASRTask": ("espnet2.tasks.asr",),
    "LMTask": ("espnet2.tasks.lm",),
    "Speech2Text": ("espnet2.bin.asr_inference",),
    "Speech2TextStreaming": ("espnet2.bin.asr_inference_streaming",),
    "asr_inference_main": ("espnet2.bin.asr_inference:main",),
    "asr_train_main": ("espnet2.bin.asr_train:main",),
    "streaming_inference_parser": ("espnet2.bin.asr_inference_streaming:get_parser",),
    "build_tokenizer": ("espnet2.text.build_tokenizer",),
    "TokenIDConverter": ("espnet2.text.token_id_converter",),
    "DatadirWriter": ("espnet2.fileio.datadir_writer",),
    "set_all_random_seed": ("espnet2.torch_utils.set_all_random_seed",),
    "str2bool": ("espnet2.utils.types",),
    "yaml_no_alias_safe_dump": ("espnet2.utils.yaml_no_alias_safe_dump",),
    "unpack": ("espnet2.main_funcs.pack_funcs",),
    "get_commandline_args": ("espnet2.legacy.utils.cli_utils", "espnet.utils.cli_utils"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    errors = []
    for candidate in _LAZY[name]:
        module, _, attr = candidate.partition(":")
        try:
            value = getattr(importlib.import_module(module), attr or name)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        globals()[name] = value
        return value
    raise ImportError(f"cannot import {name} from ESPnet ({'; '.join(errors)})")


# ---- input layer: ESPnet's Conv2dSubsampling* ----

SUBSAMPLING = {
    "conv2d": Conv2dSubsampling,    # 4x
    "conv2d1": Conv2dSubsampling1,  # 1x
    "conv2d2": Conv2dSubsampling2,  # 2x
    "conv2d6": Conv2dSubsampling6,  # 6x
    "conv2d8": Conv2dSubsampling8,  # 8x
}


def build_subsampling(name: str, input_size: int, output_size: int, dropout_rate: float) -> torch.nn.Module:
    """ESPnet's Conv2dSubsampling* without positional encoding: a Mamba scan knows the order.

    Its last argument is the positional-encoding module it appends; a Dropout in that slot
    keeps the layer and its parameter names unchanged.
    """
    return SUBSAMPLING[name](input_size, output_size, dropout_rate, pos_enc=torch.nn.Dropout(dropout_rate))


def is_subsampling(module: Optional[torch.nn.Module]) -> bool:
    return isinstance(module, tuple(SUBSAMPLING.values()))


def apply_subsampling(embed: torch.nn.Module, xs: torch.Tensor, ilens: torch.Tensor
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run a Conv2dSubsampling* on a right-padded batch: (output, frames each utterance has).

    Raises ESPnet's TooShortUttError as its encoders do. The mask ESPnet's layer derives is
    not used (so none is passed): striding a mask can count one extra frame computed partly
    from padding (71 frames -> 18 in a batch, 17 alone), and a backward scan would start
    there; :func:`subsampled_lengths` uses the convolution arithmetic instead.
    """
    too_short, limit = check_short_utt(embed, xs.size(1))
    if too_short:
        raise TooShortUttError(
            f"has {xs.size(1)} frames and is too short for subsampling "
            f"(it needs more than {limit} frames), return empty results",
            xs.size(1), limit)
    xs, _ = embed(xs, None)
    lengths = subsampled_lengths(embed, ilens)
    return xs[:, : int(lengths.max())], lengths


def subsampled_lengths(embed: torch.nn.Module, ilens: torch.Tensor) -> torch.Tensor:
    """Frames each utterance really has after the subsampling convolutions."""
    lengths = ilens.clone()
    for conv in embed.modules():
        if isinstance(conv, torch.nn.Conv2d):
            k, s, p, d = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
            lengths = torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


# ---- ConMamba's convolution module ----

class MaskedConvolutionModule(ConvolutionModule):
    """ESPnet's conformer ConvolutionModule (same parameters) whose depthwise convolution
    never reads padding, optionally causal.

    ESPnet's forward does not mask, so an utterance's last frames would read what its
    neighbours in the batch left in the padding. ``causal``: the depthwise conv reads the
    current and the kernel-1 previous frames (left zero padding) instead of a centred
    window, which makes the module streamable (:meth:`forward_chunk`).
    """

    def __init__(self, channels: int, kernel_size: int, activation: torch.nn.Module, causal: bool = False):
        super().__init__(channels, kernel_size, activation)
        self.causal = causal
        if causal:
            self.depthwise_conv.padding = (0,)

    def forward(self, x: torch.Tensor, pad: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (batch, T, C); pad (batch, T, 1) True on padded frames, or None."""
        h = torch.nn.functional.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)  # batch, C, T
        if pad is not None:
            h = h.masked_fill(pad.transpose(1, 2), 0.0)
        if self.causal:
            h = torch.nn.functional.pad(h, (self._history_size(), 0))
        return self._after_depthwise(self.depthwise_conv(h))

    def forward_chunk(self, x: torch.Tensor, history: Optional[torch.Tensor]):
        """Causal module on the next chunk x (batch, T, C) of a stream; history (batch, C,
        (kernel-1)*dilation) holds the previous depthwise inputs (None at the start).
        Returns (output, new history)."""
        h = torch.nn.functional.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        if history is None:
            history = h.new_zeros(h.shape[0], h.shape[1], self._history_size())
        full = torch.cat([history, h], dim=-1)
        conv = self.depthwise_conv
        y = torch.nn.functional.conv1d(full, conv.weight, conv.bias, stride=1, padding=0,
                                       dilation=conv.dilation, groups=conv.groups)
        return self._after_depthwise(y), full[..., full.shape[-1] - history.shape[-1]:]

    def _history_size(self) -> int:
        conv = self.depthwise_conv
        return conv.dilation[0] * (conv.kernel_size[0] - 1)

    def _after_depthwise(self, h: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv2(self.activation(self.norm(h))).transpose(1, 2)


# ---- the Mamba decoder's cross-attention ----

class CrossAttention(MultiHeadedAttention):
    """ESPnet's MultiHeadedAttention (same parameters) used with keys/values projected once.

    A beam-search step attends to the same encoder output as every step before it:
    :meth:`project_memory` computes its keys/values once per utterance, :meth:`attend`
    runs the attention of new queries over them.
    """

    def project_memory(self, memory: torch.Tensor):
        """Encoder output (batch, T, d) -> keys, values (batch, heads, T, d_k).

        An encoder output in another float dtype than the decoder's (fp16 encoder, fp32
        decoder) is cast to the decoder's; under autocast the projections cast it anyway.
        """
        batch = memory.size(0)
        weight = self.linear_k.weight
        if isinstance(weight, torch.Tensor) and weight.is_floating_point() and memory.dtype != weight.dtype:
            memory = memory.to(weight.dtype)
        k = self.linear_k(memory).view(batch, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(memory).view(batch, -1, self.h, self.d_k).transpose(1, 2)
        return self.k_norm(k), v

    def attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: Optional[torch.Tensor]) -> torch.Tensor:
        """query (batch, L, d) over projected keys/values -> (batch, L, d)."""
        batch = query.size(0)
        q = self.q_norm(self.linear_q(query).view(batch, -1, self.h, self.d_k).transpose(1, 2))
        scores = torch.matmul(q, keys.transpose(-2, -1)) / math.sqrt(self.d_k)
        return self.forward_attention(values, scores, mask)

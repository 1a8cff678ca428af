"""ESPnet's layers, imported from wherever this ESPnet version keeps them.

ESPnet's git master moved ``espnet/nets/...`` to ``espnet2/legacy/nets/...``;
released versions (202511) still have the old place. Try the new one first.
"""

import importlib


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
make_pad_mask, get_activation = _load("pytorch_backend.nets_utils", "make_pad_mask", "get_activation")
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
(BeamSearch,) = _load("beam_search", "BeamSearch")
(BatchBeamSearch,) = _load("batch_beam_search", "BatchBeamSearch")
(CTCPrefixScorer,) = _load("scorers.ctc", "CTCPrefixScorer")

"""Streaming recognition: a causal Mamba encoder fed chunk by chunk, every state carried.

:class:`StreamingEncoder` takes audio in chunks of any size (one sample up to
minutes) and returns the encoder frames each chunk completes. Its output
equals the offline encoder's (``ESPnetASRModel.encode`` on the whole
utterance) up to float rounding, because every stage keeps exactly the state
the next chunk needs:

* front end (ESPnet's ``DefaultFrontend``): the STFT frames whose window reaches
  past the samples received so far wait; the samples they overlap are kept.
  With ``center: true`` (ESPnet's default) the first frames read a reflection
  of the first ``n_fft/2`` samples and the last frames a reflection of the last
  ones, as ``torch.stft`` does offline: the last frames are computed when the
  stream ends (``is_final``), from the tail of samples kept for that;
* feature normalisation: ``global_mvn`` is per frame and streams;
  ``utterance_mvn`` needs the whole utterance's statistics and is refused;
* input layer: ESPnet's ``Conv2dSubsampling*`` keeps the feature frames the
  next output frame reads (receptive field R, stride S: output j reads input
  frames S*j .. S*j+R-1); ``linear``/``none`` are per frame;
* each Mamba mixer: its conv state (last ``d_conv`` inputs) and SSM state,
  through ``Mamba.forward(initial_state=..., return_state=True)``;
* ConMamba with ``cnn_module_causal: true``: the depthwise convolution's last
  ``kernel-1`` inputs. Its BatchNorm uses running statistics outside training
  (a per-channel affine map, per frame), the LayerNorms are per frame, so
  normalisation streams exactly; in training BatchNorm still normalises with
  the batch's statistics (all frames of the batch), as ESPnet's conformer does;
* self-conditioned intermediate CTC and the final norm are per frame.

A bidirectional model (``bidirectional: add|mean|concat``) or a ConMamba with
the non-causal convolution reads future frames: it is refused with an error
saying what to change.
"""

import copy
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from espnet_mamba.asr.encoder import ConMambaEncoder, MambaEncoder
from espnet_mamba.asr.encoder.intermediate_ctc import IntermediateCTC
from espnet_mamba.asr.espnet_compat import (
    DefaultFrontend,
    GlobalMVN,
    Hypothesis,
    TooShortUttError,
    is_subsampling,
)
from espnet_mamba.nn.blocks import ConMambaBlock, MambaBlock, norm_in_weight_dtype
from espnet_mamba.nn.mamba import Mamba, MambaState


class NotStreamableError(ValueError):
    """The model reads future context (or whole-utterance statistics) and cannot stream."""


def _conv2d_context(embed: torch.nn.Module) -> Tuple[int, int]:
    """(receptive field R, stride S) along time of a stack of unpadded Conv2d layers."""
    field, stride = 1, 1
    for conv in embed.modules():
        if isinstance(conv, torch.nn.Conv2d):
            if conv.padding[0] != 0:
                raise NotStreamableError(f"input layer {type(embed).__name__}: a time-padded Conv2d "
                                         f"cannot stream")
            field += (conv.dilation[0] * (conv.kernel_size[0] - 1)) * stride
            stride *= conv.stride[0]
    return field, stride


class _FrontendStream:
    """ESPnet's DefaultFrontend (STFT -> power -> log-mel), fed sample chunks."""

    def __init__(self, frontend: torch.nn.Module):
        if not isinstance(frontend, DefaultFrontend):
            raise NotStreamableError(
                f"streaming supports ESPnet's default front end (frontend: default), "
                f"not {type(frontend).__name__}")
        if frontend.stft is None:
            raise NotStreamableError("streaming needs frontend_conf apply_stft: true (audio in)")
        inner = getattr(frontend, "frontend", None)
        if inner is not None and (getattr(inner, "use_wpe", False) or getattr(inner, "use_beamformer", False)):
            raise NotStreamableError("streaming does not support the WPE/beamformer front end")
        self.frontend = frontend
        stft = frontend.stft
        self.n_fft, self.hop = stft.n_fft, stft.hop_length
        self.pad = stft.n_fft // 2 if stft.center else 0
        self.stft = copy.copy(stft)          # same window and sizes; frames cut here
        self.stft.center = False
        self.reset()

    def reset(self):
        self.buf = None            # samples kept, in padded coordinates from self.start
        self.start = 0
        self.received = 0          # real samples so far
        self.next_frame = 0
        self.left_done = self.pad == 0

    def __call__(self, chunk: torch.Tensor, is_final: bool) -> torch.Tensor:
        """chunk (samples,) -> log-mel frames (1, frames, n_mels) completed by it."""
        self.buf = chunk if self.buf is None else torch.cat([self.buf, chunk])
        self.received += chunk.numel()
        if not self.left_done:
            if self.received < self.pad + 1:
                if is_final:
                    raise TooShortUttError(
                        f"has {self.received} samples; the front end needs at least "
                        f"{self.pad + 1} (n_fft/2 + 1) for its reflect padding",
                        self.received, self.pad + 1)
                return self.buf.new_zeros(1, 0, self.frontend.output_size())
            self.buf = torch.cat([self.buf[1:self.pad + 1].flip(0), self.buf])
            self.left_done = True
        available = self.pad + self.received                  # padded samples present
        if is_final and self.pad:
            last = self.pad + self.received - self.start      # end of real samples in buf
            self.buf = torch.cat([self.buf, self.buf[last - 1 - self.pad:last - 1].flip(0)])
            available += self.pad
        if is_final and available < self.n_fft:
            raise TooShortUttError(f"has {self.received} samples, fewer than n_fft={self.n_fft}",
                                   self.received, self.n_fft)
        frames = (available - self.n_fft) // self.hop + 1 if available >= self.n_fft else 0
        feats = self.buf.new_zeros(1, 0, self.frontend.output_size())
        if frames > self.next_frame:
            begin = self.next_frame * self.hop - self.start
            end = (frames - 1) * self.hop + self.n_fft - self.start
            segment = self.buf[begin:end][None]
            spec, lens = self.stft(segment, segment.new_full((1,), segment.shape[1], dtype=torch.long))
            power = spec[..., 0] ** 2 + spec[..., 1] ** 2
            feats, _ = self.frontend.logmel(power, lens)
            self.next_frame = frames
        # keep what later frames overlap, and the last n_fft/2 + 1 samples for the end's reflection
        keep_from = self.next_frame * self.hop
        if self.pad:
            keep_from = min(keep_from, self.received - 1)
        keep_from = max(keep_from, self.start)
        self.buf = self.buf[keep_from - self.start:]
        self.start = keep_from
        return feats


class _SubsamplingStream:
    """The encoder's input layer (ESPnet Conv2dSubsampling*, linear, or none) on frame chunks."""

    def __init__(self, embed: Optional[torch.nn.Module]):
        self.embed = embed
        self.is_conv = is_subsampling(embed)
        if self.is_conv:
            self.field, self.stride = _conv2d_context(embed)
        else:
            self.field, self.stride = 1, 1
        self.reset()

    def reset(self):
        self.buf = None
        self.produced = 0
        self.received = 0

    def __call__(self, feats: torch.Tensor, is_final: bool) -> torch.Tensor:
        """feats (1, T, D) -> (1, T', d_model)."""
        self.received += feats.shape[1]
        self.buf = feats if self.buf is None else torch.cat([self.buf, feats], dim=1)
        n = (self.buf.shape[1] - self.field) // self.stride + 1 if self.buf.shape[1] >= self.field else 0
        if is_final and self.produced + n == 0:
            raise TooShortUttError(
                f"has {self.received} frames and is too short for subsampling "
                f"(it needs at least {self.field} frames), return empty results",
                self.received, self.field)
        if n == 0:
            return None
        used = self.buf[:, : self.stride * (n - 1) + self.field]
        self.buf = self.buf[:, self.stride * n:]
        self.produced += n
        if self.embed is None:
            return used
        if self.is_conv:
            return self.embed(used, None)[0]
        return self.embed(used)


def check_streamable(asr_model: torch.nn.Module) -> None:
    """Raise :class:`NotStreamableError` (what to change) unless the model can stream exactly."""
    encoder = asr_model.encoder
    if not isinstance(encoder, (MambaEncoder, ConMambaEncoder)):
        raise NotStreamableError(
            f"streaming needs encoder: mamba or conmamba, got {type(encoder).__name__} "
            f"(ESPnet's own streaming decoder is espnet2.bin.asr_inference_streaming, for "
            f"contextual_block_* encoders)")
    for index, layer in enumerate(encoder.encoders, start=1):
        mixer = getattr(layer, "mixer", None)
        if not isinstance(mixer, Mamba):
            raise NotStreamableError(
                f"encoder layer {index} has a {type(mixer).__name__} mixer: a bidirectional encoder "
                f"reads the whole utterance and cannot stream; train with encoder_conf "
                f"bidirectional: none")
        if isinstance(layer, ConMambaBlock):
            if layer.conv_module is not None and not getattr(layer.conv_module, "causal", False):
                raise NotStreamableError(
                    f"encoder layer {index}: the ConMamba convolution module is centred (it reads "
                    f"future frames); train with encoder_conf cnn_module_causal: true, or "
                    f"use_cnn_module: false")
        elif not isinstance(layer, MambaBlock):
            raise NotStreamableError(f"encoder layer {index} is a {type(layer).__name__}, not streamable")
    normalize = asr_model.normalize
    if normalize is not None and not isinstance(normalize, GlobalMVN):
        raise NotStreamableError(
            f"normalize: {type(normalize).__name__} cannot stream: utterance_mvn needs the mean and "
            f"variance of the whole utterance before its first frame. Train with normalize: "
            f"global_mvn (statistics from the training set, applied per frame)")
    for name in ("preencoder", "postencoder"):
        if getattr(asr_model, name, None) is not None:
            raise NotStreamableError(f"streaming does not support a {name}")
    if asr_model.frontend is not None:
        _FrontendStream(asr_model.frontend)  # raises for front ends that cannot stream


class StreamingEncoder:
    """Front end + normalisation + causal encoder of an ESPnet ASR model, chunk by chunk.

    Args:
        asr_model: an ``ESPnetASRModel`` (``model: espnet_mamba`` or ESPnet's own) whose
            encoder is ``mamba``/``conmamba`` with ``bidirectional: none`` (and for ConMamba
            ``cnn_module_causal: true``), ``normalize`` ``global_mvn`` or none. Put it in
            eval mode (dropout off) for outputs equal to offline decoding's.

    ``encoder(chunk, is_final)``: chunk is a 1-D array of samples (or, for a model
    without front end, (frames, feat_dim) features); returns the new encoder frames
    (1, n, d_model), n >= 0. After ``is_final=True`` the state is reset for the next stream.
    """

    def __init__(self, asr_model: torch.nn.Module):
        check_streamable(asr_model)
        self.model = asr_model
        self.encoder = asr_model.encoder
        self.frontend = _FrontendStream(asr_model.frontend) if asr_model.frontend is not None else None
        self.subsampling = _SubsamplingStream(self.encoder.embed)
        self.reset()

    def reset(self):
        if self.frontend is not None:
            self.frontend.reset()
        self.subsampling.reset()
        self.layer_states: List = [None] * len(self.encoder.encoders)
        self.frames_out = 0
        self.samples_in = 0

    def state_numel(self) -> int:
        """Values held between chunks (samples, feature frames, layer states): bounded by the
        model's context, independent of how long the stream has run."""
        held = [self.subsampling.buf]
        if self.frontend is not None:
            held.append(self.frontend.buf)
        for state in self.layer_states:
            if isinstance(state, MambaState):
                held += [state.conv, state.ssm]
            elif state is not None:          # ConMamba: (MambaState, conv history)
                held += [state[0].conv, state[0].ssm, state[1]]
        return sum(t.numel() for t in held if t is not None)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _as_tensor(self, chunk) -> torch.Tensor:
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(np.ascontiguousarray(chunk))
        if not isinstance(chunk, torch.Tensor):
            chunk = torch.as_tensor(chunk)
        want = 1 if self.frontend is not None else 2
        if self.frontend is not None and chunk.dim() == 2 and chunk.shape[1] == 1:
            chunk = chunk[:, 0]
        if chunk.dim() != want:
            what = "(samples,) of one channel" if want == 1 else "(frames, feat_dim) features"
            raise ValueError(f"speech chunk must be {what}, got shape {tuple(chunk.shape)}")
        if not chunk.is_floating_point():
            if chunk.dtype == torch.int16:
                chunk = chunk.float() / 32768.0
            else:
                raise ValueError(f"speech chunk must be float samples (or int16), got {chunk.dtype}")
        if chunk.numel() and not bool(torch.isfinite(chunk).all()):
            bad = int((~torch.isfinite(chunk)).sum())
            raise ValueError(f"speech chunk has {bad} NaN/Inf value(s) of {chunk.numel()}; "
                             f"the stream state is unchanged (drop or repair the chunk)")
        return chunk.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def __call__(self, chunk, is_final: bool = False) -> torch.Tensor:
        try:
            return self._step(self._as_tensor(chunk), is_final)
        except Exception:
            if is_final:
                self.reset()
            raise

    def _step(self, chunk: torch.Tensor, is_final: bool) -> torch.Tensor:
        d_model = self.encoder.output_size()
        if self.frontend is not None:
            self.samples_in += chunk.numel()
            feats = self.frontend(chunk, is_final)
        else:
            feats = chunk[None]
        if self.model.normalize is not None and feats.shape[1]:
            feats, _ = self.model.normalize(feats, feats.new_full((1,), feats.shape[1], dtype=torch.long))
        xs = self.subsampling(feats, is_final)
        if xs is None or xs.shape[1] == 0:
            out = chunk.new_zeros(1, 0, d_model)
        else:
            out = self._layers(xs)
        if is_final:
            self.reset()
        return out

    def _layers(self, xs: torch.Tensor) -> torch.Tensor:
        encoder = self.encoder
        conditioning = IntermediateCTC(encoder, self.model.ctc)
        for index, layer in enumerate(encoder.encoders, start=1):
            xs, self.layer_states[index - 1] = layer.forward_chunk(xs, self.layer_states[index - 1])
            xs = conditioning.after_block(index, xs)
        self.frames_out += xs.shape[1]
        return norm_in_weight_dtype(encoder.after_norm, xs)


class Speech2TextStreaming:
    """Streaming speech recognition with the interface of ESPnet's
    ``espnet2.bin.asr_inference_streaming.Speech2TextStreaming``.

    ``speech2text(chunk, is_final)`` returns, after every chunk, the n-best list
    ``[(text, token, token_int, Hypothesis), ...]`` of a frame-synchronous CTC prefix
    beam search over the encoder frames so far (partial results; empty before the
    first encoder frame). At ``is_final=True`` the final result is, with
    ``final_search``:

    * ``beam`` (default): joint CTC/attention beam search over the whole stream's
      encoder output (ESPnet's BatchBeamSearch with the decoder, CTC prefix scorer,
      length bonus and LM, the same weights), i.e. what offline decoding of the same
      causal model gives. The partial results stay the CTC prefix search's.
    * ``rescore``: the CTC n-best (``beam_size`` prefixes) rescored with the attention
      decoder (teacher forcing: one decoder call for the whole n-best) and, if given,
      the language model. Cheaper at the end of the stream, but only as good as the
      CTC n-best: one demo-trained causal Mamba gave 45.2 % WER on the demo's test
      voices with ``rescore`` and 11.5 % with ``beam`` (23.7 % and 1.9 % on valid)::

        score = ctc_weight * log p_ctc(y) + (1 - ctc_weight) * log p_att(y, eos)
                + lm_weight * log p_lm(y, eos) + penalty * (len(y) + 1)

    then the stream state is reset. ``ctc_weight: 1.0`` (or a model without decoder)
    gives the CTC prefix beam search result alone.

    Arguments are ESPnet's; ``maxlenratio`` and ``minlenratio`` apply to the final
    beam search; ``disable_repetition_detection``, ``decoder_text_length_limit`` and
    ``encoded_feat_length_limit`` belong to ESPnet's block-wise search and are
    accepted and ignored.
    ``token_beam``: tokens per frame that may extend a prefix (default beam_size;
    0 for all). ``exact_ctc_rescoring`` (default): at the end, the n-best's CTC scores
    are recomputed exactly (``torch.nn.functional.ctc_loss`` over all frames), as
    ESPnet's label-synchronous prefix scorer computes them; the frame-synchronous
    beam's own scores miss the alignments it pruned, which can reorder near-equal
    candidates (a repeated token with a narrow beam). Rescoring keeps the encoder
    output (T x d_model) until the end, as the attention decoder does; with
    ``ctc_weight: 1.0`` and ``exact_ctc_rescoring: false`` memory stays constant in
    the stream's length. The model must be streamable (see :class:`StreamingEncoder`).
    """

    def __init__(self, asr_train_config, asr_model_file=None, lm_train_config=None, lm_file=None,
                 token_type: Optional[str] = None, bpemodel: Optional[str] = None, device: str = "cpu",
                 maxlenratio: float = 0.0, minlenratio: float = 0.0, batch_size: int = 1,
                 dtype: str = "float32", beam_size: int = 20, ctc_weight: float = 0.5,
                 lm_weight: float = 1.0, penalty: float = 0.0, nbest: int = 1,
                 normalize_length: bool = False, disable_repetition_detection: bool = False,
                 decoder_text_length_limit: int = 0, encoded_feat_length_limit: int = 0,
                 token_beam: Optional[int] = None, exact_ctc_rescoring: bool = True,
                 final_search: str = "beam"):
        from espnet_mamba.asr.ctc_prefix_search import CTCPrefixBeamSearch
        from espnet_mamba.asr.espnet_compat import ASRTask, TokenIDConverter, build_tokenizer

        if final_search not in ("beam", "rescore"):
            raise ValueError(f"final_search must be 'beam' or 'rescore', got {final_search!r}")
        if batch_size != 1:
            raise NotImplementedError("streaming decodes one stream at a time (batch_size 1)")
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        asr_model, asr_train_args = ASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        asr_model.to(dtype=getattr(torch, dtype)).eval()
        if getattr(asr_model, "ctc", None) is None:
            raise NotStreamableError("streaming decoding runs a CTC prefix search: the model has no CTC "
                                     "branch (trained with model_conf ctc_weight: 0.0)")
        self.encoder = StreamingEncoder(asr_model)
        self.lm = None
        if lm_train_config is not None:
            from espnet_mamba.asr.espnet_compat import LMTask

            lm, _ = LMTask.build_model_from_file(lm_train_config, lm_file, device)
            self.lm = lm.to(dtype=getattr(torch, dtype)).eval()
        if asr_model.decoder is None and ctc_weight < 1.0:
            ctc_weight = 1.0   # CTC-only model: nothing to rescore with
        self.asr_model = asr_model
        self.asr_train_args = asr_train_args
        self.ctc_weight, self.lm_weight, self.penalty = ctc_weight, lm_weight, penalty
        self.nbest, self.normalize_length = nbest, normalize_length
        self.maxlenratio, self.minlenratio = maxlenratio, minlenratio
        self.device, self.dtype = device, dtype
        self.beam_size = beam_size
        self.exact_ctc_rescoring = exact_ctc_rescoring
        self.final_search = final_search
        self._beam_search = None   # built at the first final beam search
        token_beam = beam_size if token_beam is None else (None if token_beam == 0 else token_beam)
        special = {asr_model.sos, asr_model.eos} - {asr_model.blank_id}
        self.search = CTCPrefixBeamSearch(beam_size, blank=asr_model.blank_id, excluded=sorted(special),
                                          token_beam=token_beam)
        token_list = asr_model.token_list
        if token_type is None:
            token_type = asr_train_args.token_type
        if bpemodel is None:
            bpemodel = asr_train_args.bpemodel
        if token_type is None or (token_type == "bpe" and bpemodel is None):
            self.tokenizer = None
        elif token_type == "bpe":
            self.tokenizer = build_tokenizer(token_type=token_type, bpemodel=bpemodel)
        else:
            self.tokenizer = build_tokenizer(token_type=token_type)
        self.converter = TokenIDConverter(token_list=token_list)
        self.reset()

    @property
    def keeps_encoder_output(self) -> bool:
        """The attention decoder reads the whole utterance's encoder output at the end."""
        return self.ctc_weight < 1.0 or self.exact_ctc_rescoring

    def reset(self):
        self.encoder.reset()
        self.search.reset()
        self.encoded: List[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self, speech: Union[torch.Tensor, np.ndarray], is_final: bool = True):
        try:
            enc = self.encoder(speech, is_final=is_final)
            if enc.shape[1]:
                self.search(self.asr_model.ctc.log_softmax(enc)[0])
                if self.keeps_encoder_output:
                    self.encoded.append(enc)
            if not is_final:
                if self.search.frames == 0:
                    return []
                return self.assemble_hyps(self._partial())
            if self.final_search == "beam" and self.ctc_weight < 1.0:
                return self.assemble_hyps(self._final_beam_search())
            return self.assemble_hyps(self._rescore())
        finally:
            if is_final:
                self.reset()

    def _hypothesis(self, tokens, score, scores):
        model = self.asr_model
        yseq = torch.tensor([model.sos] + list(tokens) + [model.eos], dtype=torch.long)
        return Hypothesis(yseq=yseq, score=score, scores=scores, states={})

    def _partial(self):
        return [self._hypothesis(tokens, score, {"ctc": score})
                for tokens, score in self.search.nbest(self.nbest)]

    def _rescore(self):
        candidates = self.search.nbest()
        n = len(candidates)
        ctc = torch.tensor([score for _, score in candidates], dtype=torch.float64)
        lengths = torch.tensor([len(tokens) for tokens, _ in candidates])
        att = torch.zeros(n, dtype=torch.float64)
        lm = torch.zeros(n, dtype=torch.float64)
        if self.keeps_encoder_output:
            enc = torch.cat(self.encoded, dim=1)
            if self.exact_ctc_rescoring:
                ctc = self._exact_ctc(candidates, enc)
            if self.ctc_weight < 1.0:
                att = self._teacher_forced(candidates, enc)
        if self.lm is not None:
            lm = self._lm_scores(candidates)
        total = self.ctc_weight * ctc + (1 - self.ctc_weight) * att + self.lm_weight * lm \
            + self.penalty * (lengths + 1).to(torch.float64)
        if self.normalize_length:
            order = sorted(range(n), key=lambda i: float(total[i]) / (int(lengths[i]) + 2), reverse=True)
        else:
            order = sorted(range(n), key=lambda i: float(total[i]), reverse=True)
        hyps = []
        for i in order[: self.nbest]:
            scores = {"ctc": float(ctc[i])}
            if self.ctc_weight < 1.0:
                scores["decoder"] = float(att[i])
            if self.lm is not None:
                scores["lm"] = float(lm[i])
            scores["length_bonus"] = float(lengths[i] + 1)
            hyps.append(self._hypothesis(candidates[i][0], float(total[i]), scores))
        return hyps

    def _final_beam_search(self):
        """Offline joint CTC/attention decoding of the stream's encoder output."""
        from espnet_mamba.asr.espnet_compat import BatchBeamSearch, CTCPrefixScorer, LengthBonus

        if not self.encoded:
            return []
        model = self.asr_model
        if self._beam_search is None:
            vocabulary = len(model.token_list)
            scorers = dict(decoder=model.decoder, ctc=CTCPrefixScorer(ctc=model.ctc, eos=model.eos),
                           length_bonus=LengthBonus(vocabulary))
            weights = dict(decoder=1.0 - self.ctc_weight, ctc=self.ctc_weight, length_bonus=self.penalty)
            if self.lm is not None:
                scorers["lm"], weights["lm"] = self.lm.lm, self.lm_weight
            self._beam_search = BatchBeamSearch(
                scorers=scorers, weights=weights, beam_size=self.beam_size, vocab_size=vocabulary,
                sos=model.sos, eos=model.eos, token_list=model.token_list, pre_beam_score_key="full",
                normalize_length=self.normalize_length,
            ).to(device=self.encoder.device, dtype=getattr(torch, self.dtype)).eval()
        enc = torch.cat(self.encoded, dim=1)[0]
        return self._beam_search(x=enc, maxlenratio=self.maxlenratio, minlenratio=self.minlenratio)

    def _padded(self, candidates, first: Optional[int], fill: int):
        rows = [([first] if first is not None else []) + list(tokens) for tokens, _ in candidates]
        width = max(1, max(len(r) for r in rows))
        ys = torch.full((len(rows), width), fill, dtype=torch.long)
        for i, r in enumerate(rows):
            ys[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return ys.to(self.encoder.device), torch.tensor([len(r) for r in rows], device=self.encoder.device)

    def _exact_ctc(self, candidates, enc: torch.Tensor) -> torch.Tensor:
        """log p_ctc(y | all frames) of each candidate (sum over all alignments).

        ctc_loss reads only the blank's and the target tokens' columns, so each candidate gets
        its own small vocabulary (blank, then its distinct tokens; equal tokens stay equal, as a
        repeated token needs a blank between): T x n x (U+1) values instead of T x n x V.
        """
        logp = self.asr_model.ctc.log_softmax(enc)[0].double().cpu()           # T, V
        n, frames = len(candidates), logp.shape[0]
        vocabularies = [sorted(set(tokens)) for tokens, _ in candidates]
        compact = logp.new_zeros(frames, n, 1 + max(len(v) for v in vocabularies))
        targets = []
        for i, ((tokens, _), vocabulary) in enumerate(zip(candidates, vocabularies)):
            compact[:, i, 0] = logp[:, self.asr_model.blank_id]
            compact[:, i, 1:1 + len(vocabulary)] = logp[:, vocabulary]
            index = {token: j + 1 for j, token in enumerate(vocabulary)}
            targets.append(torch.tensor([index[t] for t in tokens], dtype=torch.long))
        targets = torch.cat(targets)
        nll = F.ctc_loss(compact, targets, torch.full((n,), frames, dtype=torch.long),
                         torch.tensor([len(t) for t, _ in candidates], dtype=torch.long),
                         blank=0, reduction="none", zero_infinity=False)
        return -nll

    def _teacher_forced(self, candidates, enc: torch.Tensor) -> torch.Tensor:
        """log p_att(y_1..y_U, eos | encoder output) of each candidate, one decoder call."""
        model = self.asr_model
        n = len(candidates)
        ys_in, in_lens = self._padded(candidates, model.sos, model.eos)
        ys_out = torch.full_like(ys_in, model.ignore_id)
        for i, (tokens, _) in enumerate(candidates):
            ys_out[i, : len(tokens) + 1] = torch.tensor(list(tokens) + [model.eos])
        hs = enc.expand(n, -1, -1)
        hlens = torch.full((n,), enc.shape[1], dtype=torch.long, device=enc.device)
        logits, _ = model.decoder(hs, hlens, ys_in, in_lens)[:2]
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, ys_out.clamp(min=0)[..., None])[..., 0]
        return picked.masked_fill(ys_out == model.ignore_id, 0.0).sum(-1).double().cpu()

    def _lm_scores(self, candidates) -> torch.Tensor:
        """log p_lm(y_1..y_U, eos) through ESPnet's LM ``nll`` (it adds sos/eos itself)."""
        ys, lens = self._padded(candidates, None, 0)
        nll, _ = self.lm.nll(ys, lens)
        return -nll.sum(-1).double().cpu()

    def assemble_hyps(self, hyps):
        """[(text, token, token_int, Hypothesis)] as ESPnet's Speech2TextStreaming returns them."""
        results = []
        for hyp in hyps[: self.nbest]:
            token_int = [t for t in hyp.yseq[1:-1].tolist() if t != self.asr_model.blank_id]
            token = self.converter.ids2tokens(token_int)
            text = self.tokenizer.tokens2text(token) if self.tokenizer is not None else None
            results.append((text, token, token_int, hyp))
        return results

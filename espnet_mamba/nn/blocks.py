"""The residual blocks the encoders and the decoder stack: all block types live here.

* :class:`MambaBlock`        ``encoder: mamba``     x + dropout(mixer(RMSNorm(x)))
* :class:`ConMambaBlock`     ``encoder: conmamba``  a Conformer block whose self-attention is a mixer
* :class:`MambaDecoderBlock` ``decoder: mamba``     causal Mamba, cross-attention to the audio, FFN

A mixer is a :class:`~espnet_mamba.nn.mamba.Mamba` (causal) or a
:class:`~espnet_mamba.nn.bidirectional.BidirectionalMamba` (:func:`build_mixer`).
The ESPnet modules a block holds (feed-forward, convolution module, attention)
are built by the caller (``espnet_mamba.asr``) and handed in, so this layer
does not import ESPnet. Every block takes ``forward(x, lengths)`` with
``lengths`` a (batch,) tensor or the :class:`~espnet_mamba.nn.lengths.Padding`
built once per encoder/decoder forward; the encoder blocks also run on a
stream chunk by chunk (``forward_chunk``), the decoder block token by token (``step``).
"""

from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from espnet_mamba.nn.bidirectional import COMBINE_MODES, BidirectionalMamba
from espnet_mamba.nn.lengths import Padding, padding
from espnet_mamba.nn.mamba import Mamba, MambaState

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


def norm_in_weight_dtype(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """norm(x) with x cast to the norm's weight dtype (a residual stream kept in fp32 meets
    a norm converted to fp16/bf16/fp64); a norm without weight takes x as it is."""
    weight = getattr(norm, "weight", None)
    if isinstance(weight, torch.Tensor) and x.dtype != weight.dtype:
        x = x.to(weight.dtype)
    return norm(x)


Lengths = Union[torch.Tensor, Padding, None]


class MambaBlock(nn.Module):
    """RMSNorm -> mixer -> dropout -> residual add.

    Args:
        d_model: feature size.
        mixer: a module mapping (x, lengths) -> same shape (Mamba or BidirectionalMamba).
        norm_eps: RMSNorm epsilon.
        dropout_rate: dropout on the mixer output.
        residual_in_fp32: keep the residual stream in at least fp32 (fp16/bf16 inputs
            are promoted, fp64 stays fp64); the block then returns that dtype.

    The norm reads the residual stream cast to the norm weight's dtype (as
    mamba-ssm's Block does), so an fp32 residual from the previous block feeds
    a model converted to fp16 or fp64 (``asr_inference --dtype``).
    """

    def __init__(self, d_model: int, mixer: nn.Module, norm_eps: float = 1e-5,
                 dropout_rate: float = 0.0, residual_in_fp32: bool = False):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.mixer = mixer
        self.dropout = nn.Dropout(dropout_rate)
        self.residual_in_fp32 = residual_in_fp32

    def forward(self, x: torch.Tensor, lengths: Lengths = None) -> torch.Tensor:
        return self._residual(x, self.mixer(norm_in_weight_dtype(self.norm, x), lengths))

    def forward_chunk(self, x: torch.Tensor, state: Optional[MambaState]):
        """The next chunk (batch, T, d_model) of a stream, from the state the previous chunk
        left (None at the start): (output, new state). Needs a causal (Mamba) mixer."""
        out, state = self.mixer(norm_in_weight_dtype(self.norm, x), None, initial_state=state,
                                return_state=True)
        return self._residual(x, out), state

    def _residual(self, x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        out = self.dropout(mixed)
        if self.residual_in_fp32:
            wide = torch.promote_types(x.dtype, torch.float32)
            return x.to(wide) + out.to(wide)
        return x + out.to(x.dtype)


class ConMambaBlock(nn.Module):
    """Macaron Conformer block with a Mamba mixer in place of self-attention::

        x = x + 1/2 FFN(LN(x))         (feed_forward_macaron; without it the FFN below is a full step)
        x = x + mixer(LN(x))
        x = x + Conv(LN(x))            (conv_module, padded frames zeroed before its depthwise conv)
        x = x + 1/2 FFN(LN(x))
        x = LN(x)                      (only with conv_module, as ESPnet's conformer)

    Args:
        size: feature size.
        mixer: Mamba or BidirectionalMamba.
        feed_forward, feed_forward_macaron: position-wise feed-forward modules, or None.
        conv_module: a convolution module with ``forward(x, pad)`` (pad (batch, T, 1) True on
            padded frames) and ``forward_chunk(x, history)``, or None.
        dropout_rate: dropout on every residual branch.
        norm: builds each layer norm from the feature size.
    """

    def __init__(self, size: int, mixer: nn.Module, feed_forward: Optional[nn.Module],
                 feed_forward_macaron: Optional[nn.Module], conv_module: Optional[nn.Module],
                 dropout_rate: float, norm: Callable[[int], nn.Module]):
        super().__init__()
        self.mixer = mixer
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.conv_module = conv_module
        self.norm_mixer = norm(size)
        self.norm_ff = norm(size) if feed_forward is not None else None
        self.norm_ff_macaron = norm(size) if feed_forward_macaron is not None else None
        self.norm_conv = norm(size) if conv_module is not None else None
        self.norm_final = norm(size) if conv_module is not None else None
        self.dropout = nn.Dropout(dropout_rate)
        self.ff_scale = 0.5 if feed_forward_macaron is not None else 1.0

    def forward(self, x: torch.Tensor, lengths: Lengths) -> torch.Tensor:
        pad = padding(lengths, x.size(0), x.size(1))
        x = self._macaron(x)
        x = x + self.dropout(self.mixer(self.norm_mixer(x), pad)).to(x.dtype)
        if self.conv_module is not None:
            x = x + self.dropout(self.conv_module(self.norm_conv(x), None if pad is None else pad.pad))
        return self._feed_forward(x)

    def forward_chunk(self, x: torch.Tensor, state):
        """The next chunk of a stream; state = (mixer state, conv module history) or None.
        Needs a causal mixer and a causal convolution module."""
        mixer_state, history = state if state is not None else (None, None)
        x = self._macaron(x)
        out, mixer_state = self.mixer(self.norm_mixer(x), None, initial_state=mixer_state,
                                      return_state=True)
        x = x + self.dropout(out).to(x.dtype)
        if self.conv_module is not None:
            out, history = self.conv_module.forward_chunk(self.norm_conv(x), history)
            x = x + self.dropout(out)
        return self._feed_forward(x), (mixer_state, history)

    def _macaron(self, x: torch.Tensor) -> torch.Tensor:
        if self.feed_forward_macaron is None:
            return x
        return x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feed_forward is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        if self.norm_final is not None:
            x = self.norm_final(x)
        return x


class MambaDecoderBlock(nn.Module):
    """Pre-norm decoder block::

        x = x + Mamba(RMSNorm(x))                      causal scan over the token prefix
        x = x + CrossAttention(RMSNorm(x), encoder)    Samba-ASR's "cross-connection"
        x = x + FFN(RMSNorm(x))

    Args:
        size: feature size.
        mixer: a causal Mamba.
        src_attn: cross-attention with ``attend(query, keys, values, mask)`` over keys/values
            it projected beforehand (``project_memory``), once per utterance.
        feed_forward: position-wise feed-forward module.
        dropout_rate: dropout on every residual branch (teacher forcing only).
        norm_eps: RMSNorm epsilon.
    """

    def __init__(self, size: int, mixer: Mamba, src_attn: nn.Module, feed_forward: nn.Module,
                 dropout_rate: float, norm_eps: float):
        super().__init__()
        # registration order kept (norms between the modules): it is the parameters' order
        self.norm_mixer = nn.RMSNorm(size, eps=norm_eps)
        self.mixer = mixer
        self.norm_src = nn.RMSNorm(size, eps=norm_eps)
        self.src_attn = src_attn
        self.norm_ff = nn.RMSNorm(size, eps=norm_eps)
        self.feed_forward = feed_forward
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x, lengths: Lengths, memory_kv, memory_mask):
        """x (batch, L, d) teacher-forced tokens; memory_mask (batch, 1, T)."""
        x = x + self.dropout(self.mixer(self.norm_mixer(x), lengths))
        x = x + self.dropout(self.src_attn.attend(self.norm_src(x), *memory_kv, memory_mask))
        return x + self.dropout(self.feed_forward(self.norm_ff(x)))

    def step(self, x_t, state: MambaState, memory_kv, memory_mask):
        """x_t (batch, d) one token per hypothesis; the state is updated in place."""
        h, state = self.mixer.step(self.norm_mixer(x_t), state)
        x = x_t + h
        x = x + self.src_attn.attend(self.norm_src(x)[:, None], *memory_kv, memory_mask)[:, 0]
        return x + self.feed_forward(self.norm_ff(x)), state

"""decoder: mamba -- causal Mamba over the text, cross-attention to the audio.

Each layer (pre-norm, residual):
    x = x + Mamba(RMSNorm(x))                      causal scan over the token prefix
    x = x + CrossAttention(RMSNorm(x), encoder)    Samba-ASR's "cross-connection"
    x = x + FFN(RMSNorm(x))

In beam search every hypothesis carries, per layer, the Mamba state (conv +
SSM, fixed size) and a reference to the encoder keys/values, projected once
per utterance. A new token therefore costs O(1) in the hypothesis length;
ESPnet's Transformer decoder re-attends over its whole prefix at every step.
"""

from typing import Any, List, NamedTuple, Tuple

import torch
from typeguard import typechecked

from espnet_mamba.asr.conf_keys import checked_conf
from espnet_mamba.asr.espnet_compat import (
    AbsDecoder,
    BatchScorerInterface,
    CrossAttention,
    PositionwiseFeedForward,
)
from espnet_mamba.nn.blocks import MambaDecoderBlock
from espnet_mamba.nn.lengths import padding, valid_mask
from espnet_mamba.nn.mamba import Mamba, MambaState


class EncoderMemory(NamedTuple):
    """Encoder keys/values of every layer, the encoder output (T, d) they were projected
    from (held, so that its storage is not reused) and that tensor's key at the time."""
    source: torch.Tensor
    key: tuple
    kv: List[Tuple[torch.Tensor, torch.Tensor]]  # per layer, (1, heads, T, d_k) each


def _tensor_key(t: torch.Tensor):
    """Identifies a tensor's data: storage address, layout, dtype, device and in-place version.

    Equal keys mean equal data as long as a reference to one of the tensors is held (the
    address cannot be reused meanwhile); ``_version`` changes on every in-place write.
    Tensors made under ``torch.inference_mode`` have no version counter: an in-place write
    to one of those between two calls goes unseen (ESPnet's searches never do that).
    """
    version = None if t.is_inference() else t._version
    return (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device, version)


class DecoderState(NamedTuple):
    """One hypothesis: per-layer Mamba state (no batch dim), the encoder keys/values it
    attends to (shared by all hypotheses of an utterance) and how many of its tokens the
    Mamba state has consumed."""
    layers: List[MambaState]
    memory: EncoderMemory
    consumed: int = 0


@checked_conf("decoder_conf")
class MambaDecoder(AbsDecoder, BatchScorerInterface):
    """Mamba decoder for ESPnet ASR. Every argument except the first two is a ``decoder_conf`` key.

    Args:
        vocab_size: number of output tokens (set by ESPnet).
        encoder_output_size: encoder dimension, also this decoder's width (set by ESPnet).
        attention_heads: heads of the cross-attention to the encoder output.
        linear_units: hidden units of each feed-forward module.
        num_blocks: number of decoder layers.
        dropout_rate: dropout on the embedding and every residual branch.
        src_attention_dropout_rate: dropout on the cross-attention weights.
        d_state, d_conv, expand: Mamba mixer sizes.
        norm_eps: RMSNorm epsilon.
    """

    @typechecked
    def __init__(self, vocab_size: int, encoder_output_size: int, attention_heads: int = 4,
                 linear_units: int = 2048, num_blocks: int = 6, dropout_rate: float = 0.1,
                 src_attention_dropout_rate: float = 0.1, d_state: int = 16, d_conv: int = 4,
                 expand: int = 2, norm_eps: float = 1e-5):
        super().__init__()
        if encoder_output_size % attention_heads:
            raise ValueError(f"decoder_conf: attention_heads={attention_heads} must divide the "
                             f"encoder output size {encoder_output_size}")
        size = encoder_output_size
        self.embed = torch.nn.Embedding(vocab_size, size)
        self.embed_dropout = torch.nn.Dropout(dropout_rate)
        # the submodules are built in the order their random initialisations were always drawn
        self.decoders = torch.nn.ModuleList([
            MambaDecoderBlock(size,
                              Mamba(size, d_state=d_state, d_conv=d_conv, expand=expand, layer_idx=i),
                              CrossAttention(attention_heads, size, src_attention_dropout_rate),
                              PositionwiseFeedForward(size, linear_units, dropout_rate),
                              dropout_rate, norm_eps)
            for i in range(num_blocks)
        ])
        self.after_norm = torch.nn.RMSNorm(size, eps=norm_eps)
        self.output_layer = torch.nn.Linear(size, vocab_size)

    def forward(self, hs_pad: torch.Tensor, hlens: torch.Tensor, ys_in_pad: torch.Tensor,
                ys_in_lens: torch.Tensor, return_hs: bool = False):
        """Teacher forcing: (batch, T, d) audio, (batch, L) tokens -> logits (batch, L, vocab), lengths."""
        memory_mask = valid_mask(hlens, hs_pad.size(1))[:, None, :].to(hs_pad.device)
        # checked and masked once for all layers (the encoder checked hlens)
        tokens = padding(ys_in_lens, ys_in_pad.size(0), ys_in_pad.size(1), "ys_in_lens")
        x = self.embed_dropout(self.embed(ys_in_pad))
        for layer in self.decoders:
            x = layer(x, tokens, layer.src_attn.project_memory(hs_pad), memory_mask)
        hidden = self.after_norm(x)
        logits = self.output_layer(hidden)
        if return_hs:
            return (logits, hidden), ys_in_lens
        return logits, ys_in_lens

    # ---- beam search (ESPnet BatchScorerInterface) ----

    def _memory(self, x: torch.Tensor) -> EncoderMemory:
        """Project one utterance's encoder output x (T, d) to every layer's keys/values."""
        return EncoderMemory(x, _tensor_key(x),
                             [layer.src_attn.project_memory(x.unsqueeze(0)) for layer in self.decoders])

    def init_state(self, x: torch.Tensor) -> DecoderState:
        """x (T, d): project the encoder output once; empty recurrent state.

        The conv state takes the dtype the mixers will compute in (the decoder's own
        dtype, or the autocast dtype when autocast is on), not the encoder output's.
        """
        return DecoderState(self._empty_layer_states(x.device), self._memory(x), 0)

    def _empty_layer_states(self, device) -> List[MambaState]:
        states = []
        for layer in self.decoders:
            state = layer.mixer.allocate_state(1, device=device)
            states.append(MambaState(state.conv[0], state.ssm[0]))
        return states

    def batch_init_state(self, x: torch.Tensor) -> DecoderState:
        return self.init_state(x)

    def score(self, ys: torch.Tensor, state: DecoderState, x: torch.Tensor, return_hs: bool = False):
        """ESPnet's ScorerInterface: ys (prefix,), x (T, d) -> logp (vocab,)[, hidden (d,)], state."""
        out, states = self.batch_score(ys.unsqueeze(0), [state], x.unsqueeze(0), return_hs=return_hs)
        if return_hs:
            logp, hidden = out
            return logp.squeeze(0), hidden.squeeze(0), states[0]
        return out.squeeze(0), states[0]

    def _memories_for(self, states: List[DecoderState], xs: torch.Tensor) -> List[EncoderMemory]:
        """The keys/values each hypothesis attends to: from xs[i], reusing a state's cached
        projection while xs[i] is the tensor it was computed from, projecting anew when it
        is not (ESPnet's BatchBeamSearchOnline passes a longer encoder output as blocks
        arrive). Rows that are the same tensor (``x.expand(n, ...)``) are projected once."""
        cached = {s.memory.key: s.memory for s in states if s.memory is not None}
        memories = []
        for i in range(xs.size(0)):
            key = _tensor_key(xs[i])
            if key not in cached:
                cached[key] = self._memory(xs[i])
            memories.append(cached[key])
        return memories

    def batch_score(self, ys: torch.Tensor, states: List[Any], xs: torch.Tensor,
                    return_hs: bool = False):
        """Score the next token of each hypothesis.

        ys (n, prefix); states: one DecoderState per hypothesis, or None for an empty
        one; xs (n, T, d), the encoder output each hypothesis attends to. The tokens of ys
        that a state has not consumed yet are fed through it, so the first call feeds a
        whole ``hyp_primer`` and every later call one token. States that have consumed
        unequal numbers of tokens, or as many as ys has or more, are restarted and the
        whole prefix is fed (ESPnet's online search resets states to None or cuts tokens
        off a hypothesis). Returns
        log-probabilities (n, vocab) (with ``return_hs`` also the final hidden states
        (n, d)) and the new per-hypothesis states (fresh tensors: hypotheses that share a
        parent never share a state).
        """
        n, prefix = ys.shape
        if len(states) != n or xs.size(0) != n:
            raise ValueError(f"MambaDecoder.batch_score: {n} hypotheses in ys but {len(states)} "
                             f"states and {xs.size(0)} encoder outputs in xs")
        consumed = {0 if s is None else s.consumed for s in states}
        start = consumed.pop() if len(consumed) == 1 else prefix
        if start >= prefix:
            # states of unequal progress, or ahead of ys (ESPnet's online search can cut
            # tokens off a hypothesis and keep its state): a Mamba state cannot rewind,
            # so feed the whole prefix through fresh states
            start = 0
            states = [None] * n
        states = [DecoderState(self._empty_layer_states(xs.device), None, 0) if s is None else s
                  for s in states]
        memories = self._memories_for(states, xs)
        if all(m is memories[0] for m in memories):
            memory_kv = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in memories[0].kv]
        else:
            memory_kv = [(torch.cat([m.kv[i][0] for m in memories]),
                          torch.cat([m.kv[i][1] for m in memories])) for i in range(len(self.decoders))]
        layer_states = [MambaState(torch.stack([s.layers[index].conv for s in states]),
                                   torch.stack([s.layers[index].ssm for s in states]))
                        for index in range(len(self.decoders))]
        for t in range(start, prefix):
            x = self.embed(ys[:, t])
            for index, layer in enumerate(self.decoders):
                x, layer_states[index] = layer.step(x, layer_states[index], memory_kv[index], None)
        hidden = self.after_norm(x)
        logp = torch.log_softmax(self.output_layer(hidden), dim=-1)
        new_states = [DecoderState([MambaState(s.conv[i], s.ssm[i]) for s in layer_states],
                                   memories[i], prefix) for i in range(n)]
        if return_hs:
            return (logp, hidden), new_states
        return logp, new_states

"""Our encoders and decoder against the conventions of ESPnet's own search and encoders
(issue 31, findings 5, 7, 10, 11). References are teacher-forced decoder runs and
ESPnet's own encoders, never the code under test."""

from pathlib import Path

import pytest
import torch

import espnet_mamba  # noqa: F401  (registers)
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.transformer_encoder import TransformerEncoder
from espnet2.tasks.asr import ASRTask
from espnet_mamba.asr.decoder import MambaDecoder
from espnet_mamba.asr.encoder import ConMambaEncoder, MambaEncoder
from espnet_mamba.asr.espnet_compat import BatchBeamSearch, BeamSearch, CrossAttention, _load

(BatchBeamSearchOnline,) = _load("batch_beam_search_online", "BatchBeamSearchOnline")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "test" / "configs"
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
SOS = EOS = len(TOKENS) - 1


def _decoder(sharpen=1.0):
    torch.manual_seed(0)
    dec = MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=2,
                       dropout_rate=0.0, src_attention_dropout_rate=0.0).eval()
    with torch.no_grad():
        dec.output_layer.weight.mul_(sharpen)
    return dec


def teacher_forced_logp(dec, memory: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """memory (T, d), ys (L,) -> log p(next token | ys[:t+1], memory) for t < L: (L, vocab)."""
    with torch.no_grad():
        logits, _ = dec(memory[None], torch.tensor([memory.size(0)]), ys[None], torch.tensor([ys.numel()]))
    return torch.log_softmax(logits[0].double(), dim=-1)


def teacher_forced_hidden(dec, memory, ys):
    with torch.no_grad():
        (_, hidden), _ = dec(memory[None], torch.tensor([memory.size(0)]), ys[None],
                             torch.tensor([ys.numel()]), return_hs=True)
    return hidden[0]


def _search(cls, dec, x, primer=None, **kwargs):
    search = cls(scorers=dict(decoder=dec), weights=dict(decoder=1.0), beam_size=3, vocab_size=len(TOKENS),
                 sos=SOS, eos=EOS, token_list=TOKENS, pre_beam_score_key="full", **kwargs)
    if primer is not None:
        search.set_hyp_primer(primer)
    return search


# ---- finding 5: hyp_primer, return_hs ----

PRIMER = [SOS, 3, 4, 3]


def test_multi_token_primer_is_fed_whole():
    dec = _decoder()
    x = torch.randn(15, 32)
    ref = teacher_forced_logp(dec, x, torch.tensor(PRIMER))[-1]
    with torch.no_grad():
        logp, states = dec.batch_score(torch.tensor([PRIMER]), [dec.batch_init_state(x)], x[None])
        logp1, state = dec.score(torch.tensor(PRIMER), dec.init_state(x), x)
        # and the next token continues from the whole primer
        ys = torch.tensor(PRIMER + [5])
        logp2, _ = dec.batch_score(ys[None], states, x[None])
    assert torch.allclose(logp[0].double(), ref, atol=1e-5)
    assert torch.allclose(logp1.double(), ref, atol=1e-5)
    assert torch.allclose(logp2[0].double(), teacher_forced_logp(dec, x, ys)[-1], atol=1e-5)


@pytest.mark.parametrize("cls", [BeamSearch, BatchBeamSearch], ids=["BeamSearch", "BatchBeamSearch"])
def test_beam_search_with_primer_scores_like_teacher_forcing(cls):
    dec = _decoder(sharpen=4.0)
    x = torch.randn(15, 32)
    maxlen = 7  # int(0.5 * 15): at the last step ESPnet appends <eos> to each running hyp, unscored
    with torch.no_grad():
        hyps = _search(cls, dec, x, primer=PRIMER)(x=x, maxlenratio=0.5, minlenratio=0.0)
    assert hyps
    for hyp in hyps:
        yseq = hyp.yseq.tolist()
        assert yseq[:len(PRIMER)] == PRIMER
        scored = len(yseq) - 1 if len(yseq) == len(PRIMER) + maxlen + 1 else len(yseq)
        logp = teacher_forced_logp(dec, x, hyp.yseq[:-1])
        expected = sum(float(logp[t - 1, yseq[t]]) for t in range(len(PRIMER), scored))
        assert abs(float(hyp.score) - expected) < 1e-4, (yseq, float(hyp.score), expected)


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference_mode"])
def test_batch_beam_search_equals_beam_search(mode):
    dec = _decoder(sharpen=4.0)
    with mode():
        x = torch.randn(15, 32)
        plain = _search(BeamSearch, dec, x)(x=x, maxlenratio=0.5, minlenratio=0.0)
        batched = _search(BatchBeamSearch, dec, x)(x=x, maxlenratio=0.5, minlenratio=0.0)
    assert [h.yseq.tolist() for h in plain] == [h.yseq.tolist() for h in batched] and plain
    assert all(abs(float(a.score) - float(b.score)) < 1e-4 for a, b in zip(plain, batched))


@pytest.mark.parametrize("cls", [BeamSearch, BatchBeamSearch], ids=["BeamSearch", "BatchBeamSearch"])
def test_beam_search_return_hs(cls):
    """ESPnet's BeamSearch calls score(ys, state, x, return_hs=True) and keeps one hidden
    vector per step in each hypothesis."""
    dec = _decoder(sharpen=4.0)
    x = torch.randn(15, 32)
    with torch.no_grad():
        hyps = _search(cls, dec, x, return_hs=True)(x=x, maxlenratio=0.5, minlenratio=0.0)
    best = hyps[0]
    hidden = teacher_forced_hidden(dec, x, best.yseq[:-1])
    assert len(best.hs) == len(best.yseq) - 1
    assert torch.allclose(torch.stack([h.reshape(-1) for h in best.hs]), hidden, atol=1e-5)
    with torch.no_grad():
        logp, h, _ = dec.score(best.yseq[:2], dec.init_state(x), x, return_hs=True)
    assert h.shape == (32,) and torch.allclose(h, hidden[1], atol=1e-5)


# ---- finding 11: batch_score attends to xs ----

def test_batch_score_attends_to_the_xs_it_is_given():
    dec = _decoder()
    x = torch.randn(30, 32)
    ys = torch.tensor([[SOS, 3, 4]])
    with torch.no_grad():
        states = [dec.batch_init_state(x[:10])]  # the first block only
        for t in range(1, 4):
            logp, states = dec.batch_score(ys[:, :t], states, x[None])  # then the whole utterance
            assert torch.allclose(logp[0].double(), teacher_forced_logp(dec, x, ys[0, :t])[-1], atol=1e-5)


def test_batch_score_projects_the_encoder_output_once_per_tensor(monkeypatch):
    dec = _decoder()
    calls = []
    project = CrossAttention.project_memory
    monkeypatch.setattr(CrossAttention, "project_memory",
                        lambda attn, m: calls.append(m.shape) or project(attn, m))
    x = torch.randn(12, 32)
    with torch.no_grad():
        states = [dec.batch_init_state(x)]
        assert len(calls) == 2  # one per layer
        ys = torch.tensor([[SOS]])
        for t in range(3):  # beam-search style: x.expand(n, ...) each step, n changing
            n = len(states)
            logp, states = dec.batch_score(ys, states, x.expand(n, -1, -1))
            ys = torch.cat([ys, ys], 0)
            ys = torch.cat([ys, torch.tensor([[3], [4]] * (ys.size(0) // 2))], 1)
            states = states + states
        assert len(calls) == 2
        x.mul_(2.0)  # written in place: the cached keys/values are stale
        logp, _ = dec.batch_score(ys[:1], states[:1], x[None])
        assert len(calls) == 4
        fresh, _ = dec.batch_score(ys[:1], states[:1], x.clone()[None])  # another tensor: projected anew
    assert len(calls) == 6
    assert torch.equal(logp, fresh)


def test_batch_beam_search_online_sees_later_blocks(monkeypatch):
    """ESPnet's block-wise online search: every score the decoder gives equals the
    teacher-forced score on the encoder output the search passed with it.

    One decoder layer, so that the recurrent state depends on the tokens alone (the
    mixer comes before the cross-attention) and only the newest token's attention reads
    the encoder output. With more layers, earlier tokens keep what they saw when they
    were fed, as in the cache of ESPnet's Transformer decoder. (ESPnet's own block_size=0
    path fails in 202511: process_one_block() is called with one argument too few.)
    """
    torch.manual_seed(0)
    dec = MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=1,
                       dropout_rate=0.0, src_attention_dropout_rate=0.0).eval()
    with torch.no_grad():
        dec.output_layer.weight.mul_(2.0)
    x = torch.randn(40, 32)
    calls = []
    batch_score = dec.batch_score

    def spy(ys, states, xs, *args, **kwargs):
        out = batch_score(ys, states, xs, *args, **kwargs)
        calls.append((ys.clone(), xs[0].clone(), out[0].clone()))
        return out

    monkeypatch.setattr(dec, "batch_score", spy)
    search = _search(BatchBeamSearchOnline, dec, x, block_size=8, hop_size=4, look_ahead=2,
                     disable_repetition_detection=True)
    search.set_hyp_primer([SOS])
    with torch.no_grad():
        for start in range(0, 40, 10):  # the encoder output arrives in four pieces
            hyps = search(x=x[start:start + 10], maxlenratio=0.0, minlenratio=0.0, is_final=start == 30)
    assert hyps
    lengths = {int(xs.size(0)) for _, xs, _ in calls}
    assert len(lengths) >= 2 and max(lengths) == 40, lengths
    for ys, xs, logp in calls:
        for i in range(ys.size(0)):
            ref = teacher_forced_logp(dec, xs, ys[i])[-1]
            assert torch.allclose(logp[i].double(), ref, atol=1e-5), (ys[i].tolist(), xs.size(0))


# ---- finding 7: return_all_hs with interctc_layer_idx ----

@pytest.mark.parametrize("encoder", [
    lambda **kw: MambaEncoder(20, output_size=32, num_blocks=3, dropout_rate=0.0, **kw),
    lambda **kw: ConMambaEncoder(20, output_size=32, num_blocks=3, linear_units=64, cnn_module_kernel=7,
                                 dropout_rate=0.0, **kw),
], ids=["mamba", "conmamba"])
@pytest.mark.parametrize("conditioning", [False, True])
def test_return_all_hs_and_interctc_never_mix(encoder, conditioning):
    torch.manual_seed(0)
    enc = encoder(interctc_layer_idx=[1, 2], interctc_use_conditioning=conditioning).eval()
    ctc = CTC(len(TOKENS), 32)
    if conditioning:
        enc.conditioning_layer = torch.nn.Linear(len(TOKENS), 32)
    xs, ilens = torch.randn(2, 60, 20), torch.tensor([60, 41])
    # ESPnet's own encoder without intermediate CTC: return_all_hs gives one plain tensor per layer
    espnet = TransformerEncoder(20, output_size=32, num_blocks=3)
    (_, espnet_all), _, _ = espnet(xs, ilens, return_all_hs=True)
    with torch.no_grad():
        (out, inter), olens, _ = enc(xs, ilens, ctc=ctc)
        (out_all, all_hs), olens_all, _ = enc(xs, ilens, ctc=ctc, return_all_hs=True)
    assert [layer for layer, _ in inter] == [1, 2]
    assert all(isinstance(h, torch.Tensor) for h in all_hs)
    assert len(all_hs) == len(espnet_all) == 3
    assert all(h.shape == out.shape for h in all_hs)
    assert torch.equal(out, out_all) and torch.equal(olens, olens_all)  # the flag changes nothing else
    # interctc hidden states are the final norm of the corresponding layer outputs
    for (layer, hidden), raw in zip(inter, all_hs[:2]):
        assert torch.allclose(hidden, enc.after_norm(raw), atol=1e-6)


# ---- finding 10: input_layer: null ----

def _config_with(tmp_path, replace):
    text = (CONFIGS / "mamba_mamba.yaml").read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    args = ASRTask.get_parser().parse_args(["--config", str(path)])
    args.token_list = TOKENS
    return args


def test_input_layer_null_in_yaml_means_no_input_layer(tmp_path):
    args = _config_with(tmp_path, [("    input_layer: conv2d\n", "    input_layer: null\n"),
                                   ("    n_mels: 20\n", "    n_mels: 32\n")])
    assert args.encoder_conf["input_layer"] is None
    model = ASRTask.build_model(args)
    assert model.encoder.embed is None
    assert not any(name.startswith("encoder.embed") for name, _ in model.named_parameters())
    speech, lengths = torch.randn(2, 4000), torch.tensor([4000, 3000])
    text, text_lengths = torch.tensor([[3, 4], [5, -1]]), torch.tensor([2, 1])
    loss, _, _ = model(speech, lengths, text, text_lengths)
    assert torch.isfinite(loss)
    with torch.no_grad():  # no subsampling: one encoder frame per feature frame (hop 80, centred)
        _, enc_lens = model.encode(speech, lengths)
    assert enc_lens.tolist() == [4000 // 80 + 1, 3000 // 80 + 1]


def test_input_layer_null_with_a_size_mismatch_says_what_to_do(tmp_path):
    args = _config_with(tmp_path, [("    input_layer: conv2d\n", "    input_layer: null\n")])
    with pytest.raises(ValueError, match="input_layer: none needs input_size == output_size, got 20 and 32"):
        ASRTask.build_model(args)
    enc = ConMambaEncoder(32, output_size=32, num_blocks=1, linear_units=64, cnn_module_kernel=7,
                          input_layer=None)
    assert enc.embed is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_batch_beam_search_online_sim_with_ctc(dtype, monkeypatch):
    """ESPnet's simulated streaming search (blocks of 4 encoder frames, hop 2, look-ahead 1)
    with the CTC prefix scorer: it runs in both dtypes and the decoder is handed, and
    attends to, every longer encoder prefix up to the whole utterance."""
    from espnet.nets.scorers.ctc import CTCPrefixScorer

    (BatchBeamSearchOnlineSim,) = _load("batch_beam_search_online_sim", "BatchBeamSearchOnlineSim")
    torch.manual_seed(0)
    dec = MambaDecoder(len(TOKENS), 8, attention_heads=2, linear_units=10, num_blocks=2)
    ctc = CTC(odim=len(TOKENS), encoder_output_size=8).to(dtype)
    search = BatchBeamSearchOnlineSim(beam_size=3, vocab_size=len(TOKENS),
                                      weights={"decoder": 0.7, "ctc": 0.3},
                                      scorers={"decoder": dec, "ctc": CTCPrefixScorer(ctc=ctc, eos=EOS)},
                                      token_list=TOKENS, sos=SOS, eos=EOS, pre_beam_score_key="full")
    search.set_block_size(4)
    search.set_hop_size(2)
    search.set_look_ahead(1)
    search.to(dtype=dtype)
    seen = []
    memory = dec._memory
    monkeypatch.setattr(dec, "_memory", lambda x: seen.append(x.size(0)) or memory(x))
    enc = torch.randn(10, 8, dtype=dtype)
    with torch.no_grad():
        hyps = search(x=enc, maxlenratio=0.0, minlenratio=0.0)
    assert hyps and all(h.yseq[0] == SOS and torch.isfinite(h.score) for h in hyps)
    assert len(set(seen)) > 1 and max(seen) == 10, seen  # projected once per new prefix, the last whole

"""Our encoders, decoder and model inside ESPnet's ASR task (fast, in-process)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import espnet_mamba  # noqa: F401  (registers)
from espnet2.tasks.asr import ASRTask, decoder_choices, encoder_choices, model_choices
from espnet_mamba import registry
from espnet_mamba.asr.ctc_greedy import ctc_greedy_search
from espnet_mamba.asr.decoder import MambaDecoder
from espnet_mamba.asr.encoder import ConMambaEncoder, MambaEncoder
from espnet_mamba.asr.espnet_compat import BatchBeamSearch, BeamSearch, CTCPrefixScorer
from espnet_mamba.asr.model import MambaASRModel

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "test" / "configs"
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]


def build(config: Path, **overrides):
    args = ASRTask.get_parser().parse_args(["--config", str(config)])
    args.token_list = TOKENS
    for key, value in overrides.items():
        setattr(args, key, value)
    return ASRTask.build_model(args)


def batch():
    speech = torch.randn(3, 9000)
    speech_lengths = torch.tensor([9000, 7000, 4000])
    text = torch.tensor([[3, 2, 4, 2, 5], [4, 2, 3, -1, -1], [5, -1, -1, -1, -1]])
    return speech, speech_lengths, text, torch.tensor([5, 3, 1])


def test_registered_names():
    assert encoder_choices.get_class("mamba") is MambaEncoder
    assert encoder_choices.get_class("conmamba") is ConMambaEncoder
    assert decoder_choices.get_class("mamba") is MambaDecoder
    assert model_choices.get_class("espnet_mamba") is MambaASRModel
    registry.register()  # idempotent
    assert encoder_choices.get_class("mamba") is MambaEncoder


def test_import_registers_lazily_in_a_fresh_process():
    code = ("import sys, espnet_mamba; assert 'espnet2.tasks.asr' not in sys.modules; "
            "from espnet2.tasks.asr import encoder_choices as e; print(e.get_class('conmamba').__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().endswith("ConMambaEncoder"), out.stderr[-2000:]


@pytest.mark.parametrize("config", ["mamba_mamba.yaml", "conmamba_transformer.yaml"])
def test_build_from_yaml_forward_backward(config, capsys):
    model = build(CONFIGS / config)
    loss, stats, _ = model(*batch())
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with capsys.disabled():
        print(f"\n{config}: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters, "
              f"loss {float(loss):.3f}")
    if config == "mamba_mamba.yaml":
        assert isinstance(model, MambaASRModel) and "loss_interctc_layer1" in stats


def test_unknown_encoder_key_names_the_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text((CONFIGS / "mamba_mamba.yaml").read_text().replace(
        "    d_state: 8\n", "    d_state: 8\n    d_sate: 8\n", 1))
    with pytest.raises(ValueError, match="encoder_conf: unknown key 'd_sate' for MambaEncoder"):
        build(cfg)


def test_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="unknown input_layer 'conv3d'"):
        MambaEncoder(20, input_layer="conv3d")
    with pytest.raises(ValueError, match="interctc_layer_idx contains 4"):
        MambaEncoder(20, num_blocks=4, interctc_layer_idx=[4])
    with pytest.raises(ValueError, match="cnn_module_kernel must be odd"):
        ConMambaEncoder(20, cnn_module_kernel=8)
    with pytest.raises(ValueError, match="attention_heads=5 must divide"):
        MambaDecoder(10, 32, attention_heads=5)
    with pytest.raises(ValueError, match="decoder_conf: unknown key 'heads'"):
        MambaDecoder(10, 32, heads=4)


@pytest.mark.parametrize("encoder", [
    lambda: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="none"),
    lambda: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="add"),
    lambda: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="concat", input_layer="conv2d6"),
    lambda: ConMambaEncoder(20, output_size=32, num_blocks=2, linear_units=64, cnn_module_kernel=7),
], ids=["mamba", "bimamba-add", "bimamba-concat-conv2d6", "conmamba"])
def test_encoder_padding_invariance(encoder):
    enc = encoder().eval()
    xs = torch.randn(3, 90, 20)
    ilens = torch.tensor([90, 71, 33])
    xs[1, 71:] = 5.0  # padding content must not matter
    with torch.no_grad():
        out, olens, _ = enc(xs, ilens)
        for b in range(3):
            alone, alone_len, _ = enc(xs[b:b + 1, :ilens[b]], ilens[b:b + 1])
            assert int(olens[b]) == int(alone_len[0]) == alone.shape[1]
            assert torch.allclose(out[b, :olens[b]], alone[0], atol=1e-5)
            assert torch.all(out[b, olens[b]:] == 0)


def test_decoder_incremental_scores_equal_teacher_forcing():
    torch.manual_seed(0)
    dec = MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=2).eval()
    memory = torch.randn(2, 17, 32)
    memory_lens = torch.tensor([17, 11])
    ys = torch.tensor([[6, 3, 2, 4, 5, 3, 2], [6, 5, 5, 3, 2, 4, 4]])
    with torch.no_grad():
        logits, _ = dec(memory, memory_lens, ys, torch.tensor([7, 7]))
        reference = torch.log_softmax(logits, dim=-1)
        for b in range(2):
            x = memory[b, :memory_lens[b]]
            states = [dec.batch_init_state(x)]
            for t in range(ys.size(1)):
                logp, states = dec.batch_score(ys[b:b + 1, :t + 1], states, x.unsqueeze(0))
                assert torch.allclose(logp[0], reference[b, t], atol=1e-5)
            state = dec.init_state(x)
            for t in range(ys.size(1)):
                logp1, state = dec.score(ys[b, :t + 1], state, x)
                assert torch.allclose(logp1, reference[b, t], atol=1e-5)


def test_batch_score_does_not_modify_parent_states():
    dec = MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=1).eval()
    x = torch.randn(9, 32)
    parent = dec.init_state(x)
    _, first = dec.batch_score(torch.tensor([[6]]), [parent], x[None])
    snapshot = [t.clone() for t in (first[0].layers[0].conv, first[0].layers[0].ssm)]
    dec.batch_score(torch.tensor([[6, 3], [6, 4]]), [first[0], first[0]], x[None].expand(2, -1, -1))
    assert torch.equal(first[0].layers[0].conv, snapshot[0])
    assert torch.equal(first[0].layers[0].ssm, snapshot[1])


def _beam(search_cls, model, enc, ctc_weight):
    scorers = dict(decoder=model.decoder)
    weights = dict(decoder=1.0 - ctc_weight)
    if ctc_weight:
        scorers["ctc"] = CTCPrefixScorer(ctc=model.ctc, eos=model.eos)
        weights["ctc"] = ctc_weight
    search = search_cls(scorers=scorers, weights=weights, beam_size=3, vocab_size=len(TOKENS),
                        sos=model.sos, eos=model.eos, token_list=TOKENS, pre_beam_score_key="full")
    return [(h.yseq.tolist(), float(h.score)) for h in search(x=enc, maxlenratio=0.0, minlenratio=0.0)]


def test_beam_search_and_batch_beam_search_agree():
    torch.manual_seed(0)
    model = build(CONFIGS / "mamba_mamba.yaml").eval()
    speech, lengths, _, _ = batch()
    with torch.no_grad():
        enc, _ = model.encode(speech[:1], lengths[:1])
        enc = (enc[0] if isinstance(enc, tuple) else enc)[0]
        # attention decoder alone: the whole n-best list is identical
        plain = _beam(BeamSearch, model, enc, ctc_weight=0.0)
        batched = _beam(BatchBeamSearch, model, enc, ctc_weight=0.0)
        assert [y for y, _ in plain] == [y for y, _ in batched] and plain
        assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(plain, batched))
        # joint CTC/attention: ESPnet's two searches pre-beam the CTC prefix scorer
        # differently, so only the best hypothesis is comparable (ESPnet's own
        # Transformer decoder shows the same divergence further down the n-best list)
        plain = _beam(BeamSearch, model, enc, ctc_weight=0.3)
        batched = _beam(BatchBeamSearch, model, enc, ctc_weight=0.3)
        assert plain[0][0] == batched[0][0] and abs(plain[0][1] - batched[0][1]) < 1e-4


def test_ctc_greedy_search():
    model = build(CONFIGS / "conmamba_transformer.yaml").eval()
    speech, lengths, _, _ = batch()
    hyps = ctc_greedy_search(model, speech, lengths)
    assert len(hyps) == 3 and all(0 not in h for h in hyps)
    with torch.no_grad():
        enc, enc_lens = model.encode(speech, lengths)
        best = model.ctc.argmax(enc)
    ids = [i for i in torch.unique_consecutive(best[2, :enc_lens[2]]).tolist() if i != 0]
    assert hyps[2] == ids


def test_validation_cer_ctc_ignores_padded_frames():
    model = build(CONFIGS / "mamba_mamba.yaml").eval()
    assert isinstance(model, MambaASRModel)
    lo = model.ctc.ctc_lo  # feature 0 -> <blank>, feature 1 -> "a"; an all-zero (padded) frame -> "b" by the bias
    with torch.no_grad():
        lo.weight.zero_(), lo.bias.zero_()
        lo.weight[0, 0] = lo.weight[3, 1] = 10.0
        lo.bias[4] = 1.0
    enc = torch.zeros(2, 6, lo.in_features)
    for b, t in [(0, 0), (0, 2), (0, 3), (0, 5), (1, 0), (1, 2)]:
        enc[b, t, 0] = 1.0
    enc[0, 1, 1] = enc[0, 4, 1] = enc[1, 1, 1] = 1.0      # greedy: "a a" and "a", frames 3-5 of utt 1 padded
    enc_lens, ys, ys_lens = torch.tensor([6, 3]), torch.tensor([[3, 3], [3, -1]]), torch.tensor([2, 1])
    assert model._calc_ctc_loss(enc, enc_lens, ys, ys_lens)[1] == 0.0
    # ESPnet's own statistic reads "b" off the padding of utterance 1
    assert MambaASRModel.__mro__[1]._calc_ctc_loss(model, enc, enc_lens, ys, ys_lens)[1] > 0.0


def test_nonfinite_loss_guard(monkeypatch):
    model = build(CONFIGS / "mamba_mamba.yaml", model_conf={"ctc_weight": 0.3, "nonfinite_loss_patience": 2})
    model.train()
    parent = MambaASRModel.__mro__[1]
    monkeypatch.setattr(parent, "forward", lambda self, *a, **k: (
        torch.tensor(float("nan")), {"loss": torch.tensor(float("nan"))}, torch.tensor(3)))
    model(*batch())
    with pytest.raises(FloatingPointError, match="2 training batches in a row had a NaN/Inf loss"):
        model(*batch())


@pytest.mark.parametrize("entry, espnet_flag", [("asr_train", "--encoder_conf"),
                                                 ("asr_inference", "--asr_train_config")])
def test_entry_points_take_espnets_arguments(entry, espnet_flag):
    out = subprocess.run([sys.executable, "-m", f"espnet_mamba.bin.{entry}", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert espnet_flag in out.stdout
    if entry == "asr_train":  # our names are among the choices ESPnet's parser offers
        assert "conmamba" in out.stdout and "espnet_mamba" in out.stdout

"""Streaming decoding (Speech2TextStreaming, CTCPrefixBeamSearch) against independent references:
ESPnet's offline Speech2Text (label-synchronous beam search with ESPnet's CTCPrefixScorer),
torch's ctc_loss (exact sum over alignments) and ESPnet's decoder ScorerInterface stepped
token by token."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_streaming import _one_thread, causal_config, fixed, random_sizes, speech  # noqa: F401
from transcribe_model import build_random_model

FS = 16000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decode")
    exp = build_random_model(tmp / "exp", config=causal_config(tmp), blank_bias=2.0)
    state = torch.load(exp / "valid.acc.ave.pth")
    state["ctc.ctc_lo.weight"] *= 8      # a random but confident CTC: posteriors far from uniform
    state["ctc.ctc_lo.bias"] *= 3
    torch.save(state, exp / "valid.acc.ave.pth")
    return exp


def streaming(exp, **kwargs):
    from espnet_mamba.asr.streaming import Speech2TextStreaming

    return Speech2TextStreaming(exp / "config.yaml", exp / "valid.acc.ave.pth", **kwargs)


def run(s2t, x, sizes):
    """All results: one list per chunk."""
    out, pos = [], 0
    for i, n in enumerate(sizes):
        out.append(s2t(x[pos:pos + n], is_final=i == len(sizes) - 1))
        pos += n
    return out


def offline_logp(model, x):
    with torch.no_grad():
        enc, _ = model.encode(x[None], torch.tensor([x.numel()]))
        enc = enc[0] if isinstance(enc, tuple) else enc
        return model.ctc.log_softmax(enc)[0].double(), enc


def exact_ctc(logp, tokens):
    return -float(F.ctc_loss(logp[:, None], torch.tensor([tokens], dtype=torch.long).reshape(1, -1),
                             torch.tensor([logp.shape[0]]), torch.tensor([len(tokens)]),
                             reduction="sum"))


@pytest.mark.parametrize("seconds,seed", [(1.5, 1), (2.2, 2), (0.8, 3)])
def test_final_ctc_hypothesis_equals_espnet_offline_ctc_search(exp, seconds, seed):
    """ctc_weight 1.0: the stream's final n-best equals ESPnet's offline Speech2Text with
    ctc_weight 1.0 (its CTCPrefixScorer), tokens and scores, for several chunkings."""
    from espnet2.bin.asr_inference import Speech2Text

    x = speech(seconds, seed=seed)
    ref = Speech2Text(exp / "config.yaml", exp / "valid.acc.ave.pth", ctc_weight=1.0, beam_size=6,
                      nbest=3)(x)
    ref = ref[0] if isinstance(ref, tuple) else ref
    s2t = streaming(exp, ctc_weight=1.0, beam_size=6, nbest=3)
    for sizes in (fixed(x.numel(), 2560), fixed(x.numel(), 10240), random_sizes(x.numel(), seed)):
        got = run(s2t, x, sizes)[-1]
        assert [r[2] for r in got] == [r[2] for r in ref]
        assert [r[1] for r in got] == [r[1] for r in ref]
        for g, r in zip(got, ref):
            assert abs(g[3].score - float(r[3].score)) < 1e-3


def test_scores_are_exact_ctc_probabilities(exp):
    """With a beam that keeps every alignment's mass, the search's own prefix probabilities
    equal ctc_loss's; the final n-best with exact rescoring too."""
    from espnet_mamba.asr.ctc_prefix_search import CTCPrefixBeamSearch

    s2t = streaming(exp, ctc_weight=1.0, beam_size=6, nbest=6)
    x = speech(1.3, seed=4)
    logp, _ = offline_logp(s2t.asr_model, x)
    search = CTCPrefixBeamSearch(200, blank=0, excluded=[s2t.asr_model.eos])
    search(logp)
    nbest = search.nbest(6)
    assert len({len(t) for t, _ in nbest}) > 1          # different hypotheses, not one repeated
    for tokens, score in nbest:
        assert abs(score - exact_ctc(logp, tokens)) < 1e-4
    for _, _, token_int, hyp in run(s2t, x, fixed(x.numel(), 4000))[-1]:
        assert abs(hyp.score - exact_ctc(logp, token_int)) < 1e-4
    # the compact per-candidate vocabulary of the final rescoring: repeats, returns, empty
    _, enc = offline_logp(s2t.asr_model, x)
    candidates = [([3, 4, 3, 3, 5, 5], 0.0), ([], 0.0), ([5], 0.0), ([4, 4, 4], 0.0), ([2, 1, 2], 0.0)]
    got = s2t._exact_ctc(candidates, enc)
    assert torch.allclose(got, torch.tensor([exact_ctc(logp, t) for t, _ in candidates], dtype=got.dtype),
                          atol=1e-6)


def test_partial_results_after_every_chunk(exp):
    """A partial n-best after every chunk that completed an encoder frame; it equals the prefix
    search over the offline encoder's first frames (the encoder is causal)."""
    from espnet_mamba.asr.ctc_prefix_search import CTCPrefixBeamSearch

    s2t = streaming(exp, ctc_weight=1.0, beam_size=4, nbest=2, exact_ctc_rescoring=False)
    x = speech(2.0, seed=5)
    logp, _ = offline_logp(s2t.asr_model, x)
    sizes = fixed(x.numel(), 2560)
    results = run(s2t, x, sizes)
    frames, pos = 0, 0
    for i, (n, res) in enumerate(zip(sizes, results)):
        pos += n
        if i == len(sizes) - 1:
            frames = logp.shape[0]
        else:
            feats = (pos + 128 - 256) // 80 + 1        # n_fft 256, hop 80, centre padding
            frames = max(0, ((feats - 7) // 4 + 1) if feats >= 7 else 0)
        if frames == 0:
            assert res == []
            continue
        search = CTCPrefixBeamSearch(4, blank=0, excluded=[s2t.asr_model.eos], token_beam=4)
        search(logp[:frames])
        ref = search.nbest(2)
        assert [r[2] for r in res] == [t for t, _ in ref], i
        assert all(abs(r[3].score - s) < 1e-3 for r, (_, s) in zip(res, ref))


@pytest.mark.parametrize("seconds,seed", [(1.5, 11), (2.2, 12)])
def test_final_beam_search_equals_espnet_offline_joint_decoding(exp, seconds, seed):
    """final_search beam (the default), ctc_weight 0.3: the stream's final n-best equals ESPnet's
    offline Speech2Text (joint CTC/attention beam search) on the same causal model, tokens and
    scores, for several chunkings; the partial results before it are the CTC prefix search's."""
    from espnet2.bin.asr_inference import Speech2Text

    x = speech(seconds, seed=seed)
    options = dict(ctc_weight=0.3, beam_size=4, nbest=3, penalty=0.2)
    ref = Speech2Text(exp / "config.yaml", exp / "valid.acc.ave.pth", **options)(x)
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert len(ref) == 3 and all(r[2] for r in ref)     # three non-empty hypotheses to compare
    s2t = streaming(exp, **options)
    for sizes in (fixed(x.numel(), 2560), random_sizes(x.numel(), seed)):
        results = run(s2t, x, sizes)
        got = results[-1]
        assert [r[2] for r in got] == [r[2] for r in ref]
        for g, r in zip(got, ref):
            assert abs(g[3].score - float(r[3].score)) < 1e-3
        assert all(set(r[3].scores) == {"ctc"} for res in results[:-1] for r in res)


def test_joint_rescoring_scores(exp):
    """final_search rescore, ctc_weight 0.3: each final hypothesis' score = 0.3 exact CTC + 0.7
    attention decoder (ESPnet's ScorerInterface: init_state/score stepped token by token) +
    penalty (len+1), and the list is sorted by it."""
    s2t = streaming(exp, ctc_weight=0.3, beam_size=5, nbest=5, penalty=0.5, final_search="rescore")
    model = s2t.asr_model
    x = speech(1.6, seed=6)
    logp, enc = offline_logp(model, x)
    results = run(s2t, x, random_sizes(x.numel(), 6))[-1]
    assert len(results) >= 2
    scores = []
    for _, _, token_int, hyp in results:
        state, ys, att = model.decoder.init_state(enc[0]), [model.sos], 0.0
        with torch.no_grad():
            for token in token_int + [model.eos]:
                step, state = model.decoder.score(torch.tensor(ys), state, enc[0])
                att += float(step[token])
                ys.append(token)
        want = 0.3 * exact_ctc(logp, token_int) + 0.7 * att + 0.5 * (len(token_int) + 1)
        assert abs(hyp.score - want) < 1e-3
        assert abs(hyp.scores["decoder"] - att) < 1e-3
        scores.append(hyp.score)
    assert scores == sorted(scores, reverse=True)


def test_bad_input_and_reuse(exp):
    from espnet_mamba.asr.espnet_compat import TooShortUttError

    s2t = streaming(exp, ctc_weight=0.5, beam_size=3)
    with pytest.raises(TooShortUttError):
        s2t(np.zeros(0, dtype=np.float32), is_final=True)
    x = speech(1.0, seed=7)
    s2t(x[:8000], is_final=False)
    bad = x[8000:].clone()
    bad[5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        s2t(bad, is_final=True)
    # after a failed final call the next stream starts clean
    assert run(s2t, x, fixed(x.numel(), 3000))[-1][0][2] == run(s2t, x, [x.numel()])[-1][0][2]
    with pytest.raises(ValueError, match="final_search"):
        streaming(exp, final_search="attention")


def test_bidirectional_model_is_refused(tmp_path):
    from espnet_mamba.asr.streaming import NotStreamableError

    exp = build_random_model(tmp_path / "exp")         # bidirectional: add
    with pytest.raises(NotStreamableError, match="bidirectional"):
        streaming(exp)


def test_cli_writes_what_speech2text_streaming_returns(exp, tmp_path):
    """python -m espnet_mamba.bin.asr_inference_streaming with ESPnet's arguments."""
    import soundfile

    from espnet_mamba.bin.asr_inference_streaming import chunk_bounds, main

    assert chunk_bounds(10, 4) == [(0, 4, False), (4, 8, False), (8, 10, True)]
    assert chunk_bounds(8, 4) == [(0, 4, False), (4, 8, True)]
    assert chunk_bounds(3, 0) == [(0, 3, True)]
    lines, want = [], {}
    s2t = streaming(exp, ctc_weight=0.3, beam_size=3)
    for i, seconds in enumerate([1.1, 0.7, 0.005]):
        x = speech(seconds, seed=10 + i).numpy().astype(np.float32)
        soundfile.write(tmp_path / f"u{i}.wav", x, FS, subtype="FLOAT")
        lines.append(f"u{i} {tmp_path / f'u{i}.wav'}")
        if i < 2:
            want[f"u{i}"] = " ".join(map(str, run(s2t, torch.from_numpy(x), fixed(x.size, 2560))[-1][0][2]))
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    main(["--output_dir", str(out), "--asr_train_config", str(exp / "config.yaml"),
          "--asr_model_file", str(exp / "valid.acc.ave.pth"),
          "--data_path_and_name_and_type", f"{tmp_path / 'wav.scp'},speech,sound",
          "--sim_chunk_length", "2560", "--beam_size", "3", "--ctc_weight", "0.3"])
    got = dict((line.split(" ", 1) + [""])[:2] for line in
               (out / "1best_recog/token_int").read_text().splitlines())
    assert {k: v.strip() for k, v in got.items()} == {**want, "u2": ""}   # u2: too short, empty
    latency = (out / "streaming/latency").read_text().split("\n")[0].split()
    assert latency[0] == "u0" and int(latency[4]) == 7                    # 17600 samples: 7 chunks
    assert (out / "streaming/rtf").exists() and (out / "1best_recog/text").exists()
    chunk_ms = (out / "streaming/chunk_ms").read_text().splitlines()[0].split()
    assert chunk_ms[0] == "u0" and len(chunk_ms) == 1 + 6                  # all but the last chunk
    final_ms = (out / "streaming/final_ms").read_text().splitlines()[0].split()
    assert final_ms[0] == "u0" and len(final_ms) == 2


@pytest.mark.slow
def test_recipe_stage_12_decodes_as_a_stream(exp, tmp_path):
    """asr.sh --use_streaming true: stage 12 runs asr_inference_streaming with 160 ms chunks."""
    import os
    import shutil
    import subprocess

    import soundfile

    from transcribe_model import ROOT

    recipe = tmp_path / "egs2" / "x" / "asr1"
    (recipe / "conf").mkdir(parents=True)
    for name in ("asr.sh", "utils", "path.sh", "cmd.sh"):
        (recipe / name).symlink_to(ROOT / "egs2/TEMPLATE/asr1" / name)
    (recipe / "conf" / "train.yaml").write_text((exp / "config.yaml").read_text())
    (recipe / "conf" / "decode.yaml").write_text("beam_size: 3\nctc_weight: 0.3\nlm_weight: 0.0\n")
    model_dir = recipe / "exp" / "asr_train_char"
    model_dir.mkdir(parents=True)
    shutil.copy(exp / "config.yaml", model_dir / "config.yaml")
    shutil.copy(exp / "valid.acc.ave.pth", model_dir / "valid.acc.ave.pth")
    data = recipe / "dump" / "raw" / "test"
    data.mkdir(parents=True)
    s2t = streaming(exp, ctc_weight=0.3, beam_size=3)
    scp, num, want = [], [], []
    for i, seconds in enumerate([1.0, 1.4]):
        x = speech(seconds, seed=20 + i).numpy().astype(np.float32)
        soundfile.write(data / f"u{i}.wav", x, FS, subtype="FLOAT")
        scp.append(f"u{i} {data / f'u{i}.wav'}")
        num.append(f"u{i} {x.size}")
        want.append(f"u{i} " + " ".join(map(str, run(s2t, torch.from_numpy(x), fixed(x.size, 2560))[-1][0][2])))
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "utt2num_samples").write_text("\n".join(num) + "\n")
    out = subprocess.run(
        ["bash", "asr.sh", "--stage", "12", "--stop-stage", "12", "--train_set", "train", "--valid_set", "valid",
         "--test_sets", "test", "--token_type", "char", "--asr_config", "conf/train.yaml",
         "--inference_config", "conf/decode.yaml", "--inference_nj", "1", "--use_streaming", "true"],
        cwd=recipe, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    dec = model_dir / "decode_decode_valid.acc.ave_streaming160ms" / "test"
    log = (dec / "logdir" / "asr_inference.1.log").read_text()
    assert "espnet_mamba.bin.asr_inference_streaming" in log and "--sim_chunk_length 2560" in log
    assert [line.strip() for line in (dec / "token_int").read_text().splitlines()] == want
    assert len((dec / "streaming_latency").read_text().splitlines()) == 2
    assert len((dec / "streaming_chunk_ms").read_text().splitlines()) == 2
    assert len((dec / "streaming_final_ms").read_text().splitlines()) == 2
    bad = subprocess.run(["bash", "asr.sh", "--stage", "12", "--stop-stage", "12", "--train_set", "t",
                          "--valid_set", "v", "--asr_config", "conf/train.yaml", "--use_streaming", "yes"],
                         cwd=recipe, capture_output=True, text=True)
    assert bad.returncode != 0 and "--use_streaming must be true or false" in bad.stderr


def test_language_model_scores(exp, tmp_path):
    """lm_train_config: lm_weight x log p_lm(y, eos), checked against ESPnet's LM as a scorer
    (SequentialRNNLM.score stepped token by token)."""
    from espnet2.tasks.lm import LMTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    (tmp_path / "lm.yaml").write_text("lm: seq_rnn\nlm_conf:\n    unit: 16\n    nlayers: 1\n")
    args = LMTask.get_parser().parse_args(["--config", str(tmp_path / "lm.yaml"), "--token_list",
                                           str(exp / "tokens.txt"), "--token_type", "char",
                                           "--output_dir", str(tmp_path)])
    torch.manual_seed(3)
    lm = LMTask.build_model(args).eval()
    torch.save(lm.state_dict(), tmp_path / "lm.pth")
    with (tmp_path / "lm_config.yaml").open("w") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    s2t = streaming(exp, ctc_weight=1.0, beam_size=4, nbest=4, lm_train_config=tmp_path / "lm_config.yaml",
                    lm_file=tmp_path / "lm.pth", lm_weight=0.7)
    x = speech(1.2, seed=8)
    logp, _ = offline_logp(s2t.asr_model, x)
    results = run(s2t, x, fixed(x.numel(), 2560))[-1]
    assert len(results) == 4
    sos = eos = s2t.asr_model.eos
    for _, _, token_int, hyp in results:
        state, ys, total = None, [sos], 0.0
        with torch.no_grad():
            for token in token_int + [eos]:
                step, state = lm.lm.score(torch.tensor(ys), state, None)
                total += float(step[token])
                ys.append(token)
        assert abs(hyp.scores["lm"] - total) < 1e-4
        assert abs(hyp.score - (exact_ctc(logp, token_int) + 0.7 * total)) < 1e-3


def test_cli_decodes_espnet_contextual_block_models_with_espnet(tmp_path):
    """A contextual_block_transformer model goes to ESPnet's own Speech2TextStreaming, same loop:
    the CLI's hypothesis equals that class driven with the same chunks."""
    import soundfile
    import yaml
    from espnet2.bin.asr_inference_streaming import Speech2TextStreaming as ESPnetStreaming

    from espnet_mamba.benchmark.models import write_random_model
    from espnet_mamba.bin.asr_inference_streaming import main

    from espnet_mamba.recipe.config import merge

    config = yaml.safe_load(merge(ROOT / "egs2/synth_commands/asr1/conf/train_schedule.yaml",
                                  ROOT / "conf/tuning/demo/train_asr_contextual_block_transformer.yaml"))
    config["encoder_conf"].update(output_size=32, linear_units=64, num_blocks=1, attention_heads=2)
    config["decoder_conf"].update(linear_units=64, num_blocks=1, attention_heads=2)
    exp = write_random_model(tmp_path / "cbt", config)
    x = speech(1.5, seed=30).numpy().astype(np.float32)
    soundfile.write(tmp_path / "a.wav", x, FS, subtype="FLOAT")
    (tmp_path / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\n")
    main(["--output_dir", str(tmp_path / "out"), "--asr_train_config", str(exp / "config.yaml"),
          "--asr_model_file", str(exp / "model.pth"), "--data_path_and_name_and_type",
          f"{tmp_path / 'wav.scp'},speech,sound", "--sim_chunk_length", "2560", "--beam_size", "2"])
    ref = ESPnetStreaming(str(exp / "config.yaml"), str(exp / "model.pth"), beam_size=2)
    want = run(ref, torch.from_numpy(x), fixed(x.size, 2560))[-1][0][2]
    got = (tmp_path / "out/1best_recog/token_int").read_text().split()[1:]
    assert got == [str(t) for t in want]
    assert (tmp_path / "out/streaming/latency").read_text().split()[4] == "10"   # 24000 samples


def test_ctc_only_decoding_keeps_no_encoder_output(exp):
    """ctc_weight 1.0 without exact rescoring: nothing grows with the stream but the committed
    tokens; the beam's own prefixes stay short (the part every hypothesis shares is committed)."""
    s2t = streaming(exp, ctc_weight=1.0, beam_size=4, exact_ctc_rescoring=False)
    assert not s2t.keeps_encoder_output
    x = speech(12.0, seed=14)
    longest = 0
    for begin in range(0, x.numel(), 2560):
        s2t(x[begin:begin + 2560], is_final=False)
        assert s2t.encoded == []
        longest = max(longest, max(len(p) for p in s2t.search.beam))
    total = len(s2t.search.committed) + max(len(p) for p in s2t.search.beam)
    assert total > 3 * longest, (total, longest)
    assert s2t(x[:0], is_final=True)                       # an empty final chunk ends the stream

"""Long-form decoding: windows, cuts at CTC blank runs, CTC word times (hand-made posteriors),
and the whole path end to end on a tiny random model."""

import numpy as np
import pytest
import soundfile

from espnet_mamba.longform import (blank_runs, ctc_word_times, group_words, split_at_pauses, token_spans,
                                   window_plan)


# ---- windows ---------------------------------------------------------------------------------

def test_equal_windows_encode_little_twice():
    """5 minutes in 120 s windows, 10 s overlap: three windows of 320/3 s (320 s encoded, not the
    360 s of two full windows and a third pushed back to the end)."""
    plan = window_plan(300, 120, 10)
    assert [(w.start, w.end) for w in plan] == [(0, 107), (96, 203), (193, 300)]
    assert sum(w.end - w.start for w in plan) == 321


def test_short_input_is_one_window():
    assert window_plan(100, 1000, 100) == [window_plan(100, 1000, 100)[0]]
    w = window_plan(100, 1000, 100)[0]
    assert (w.start, w.end, w.keep_start, w.keep_end) == (0, 100, 0, 100)


@pytest.mark.parametrize("n,window,overlap", [(1000, 300, 50), (1001, 300, 0), (10_000, 1234, 321), (301, 300, 100),
                                               (300 * 16, 120 * 16, 10 * 16), (3600 * 16, 120 * 16, 10 * 16)])
def test_windows_cover_and_kept_parts_tile(n, window, overlap):
    plan = window_plan(n, window, overlap)
    assert plan[0].start == 0 and plan[-1].end == n
    length = plan[0].end - plan[0].start
    assert length <= window and all(w.end - w.start == length for w in plan)   # equal, none too long
    assert all(a.end - b.start >= overlap for a, b in zip(plan, plan[1:]))      # overlaps at least asked
    # the fewest windows: one fewer, even at full length, could not cover n with these overlaps
    assert len(plan) - 1 < 1 or (len(plan) - 1) * window - (len(plan) - 2) * overlap < n
    assert plan[0].keep_start == 0 and plan[-1].keep_end == n
    for a, b in zip(plan, plan[1:]):
        assert a.keep_end == b.keep_start                      # kept parts tile [0, n)
        assert b.start < a.end or overlap == 0                 # neighbours overlap
        assert a.start <= a.keep_start < a.keep_end <= a.end   # a window keeps only what it saw
    # away from the recording's ends, a kept frame has context on both sides
    for w in plan[1:-1]:
        assert w.keep_start - w.start >= overlap // 2 - 1 and w.end - w.keep_end >= overlap // 2 - 1


# ---- cuts at blank runs ---------------------------------------------------------------------------

def blanks(spec):
    """'_' blank frame, 'x' token frame."""
    return np.array([c == "_" for c in spec])


def test_blank_runs():
    assert blank_runs(blanks("__xx_x___")) == [(0, 2), (4, 5), (6, 9)]
    assert blank_runs(blanks("xxx")) == []


def test_every_long_pause_is_a_cut_in_its_middle():
    #                 0         1         2         3
    #                 0123456789012345678901234567890123
    spec = blanks("__xxxx______xxx_xx____xxxxx__")
    segs = split_at_pauses(spec, max_frames=100, pause_frames=4)
    # runs of >= 4 blanks: [6, 12) -> cut 9, [18, 22) -> cut 20; the 1-frame gap at 15 and the
    # leading/trailing runs are not cuts
    assert segs == [(0, 9), (9, 20), (20, len(spec))]


def test_a_piece_too_long_is_cut_at_its_longest_pause():
    spec = blanks("xxxx_xxxx___xxxx__xxxx")
    segs = split_at_pauses(spec, max_frames=12, pause_frames=10)
    # no pause reaches 10 frames; the piece (22) > 12 is cut at the longest run [9, 12) -> 10,
    # then [10, 22) = 12 fits
    assert segs == [(0, 10), (10, 22)]
    segs = split_at_pauses(spec, max_frames=6, pause_frames=10)
    assert all(b - a <= 6 for a, b in segs)
    assert [a for a, _ in segs][1:3] == [4, 10]   # longest runs first: 10, then the 1-frame run at 4


def test_no_blank_at_all_is_cut_at_max_frames():
    segs = split_at_pauses(blanks("x" * 25), max_frames=10, pause_frames=3)
    assert segs == [(0, 10), (10, 20), (20, 25)]


@pytest.mark.parametrize("seed", range(5))
def test_random_posteriors_tile_and_respect_the_limit(seed):
    rng = np.random.default_rng(seed)
    spec = rng.random(3000) < 0.8
    segs = split_at_pauses(spec, max_frames=97, pause_frames=6)
    assert segs[0][0] == 0 and segs[-1][1] == 3000
    assert all(a < b and b - a <= 97 for a, b in segs)
    assert all(s[1] == t[0] for s, t in zip(segs, segs[1:]))
    # every cut lies inside a blank run (there are blanks in every 97 frames here)
    assert all(spec[a] or spec[a - 1] for a, _ in segs[1:])


def test_nothing_to_split():
    assert split_at_pauses(np.zeros(0, bool), 10, 3) == []
    assert split_at_pauses(blanks("__x__"), 10, 1) == [(0, 5)]   # edge runs are not cuts


# ---- token spans, words, CTC word times -----------------------------------------------------------

def test_token_spans_separate_repeats_only_after_a_blank():
    #            0  1  2  3  4  5  6  7  8
    ali = [0, 3, 3, 0, 3, 4, 4, 0, 0]
    assert token_spans(ali, blank=0) == [(3, 1, 3), (3, 4, 5), (4, 5, 7)]


def test_group_words_char_and_bpe():
    detok = lambda toks: "".join(t.replace("\u2581", " ") for t in toks)  # noqa: E731
    spans = [(i, i + 1) for i in range(6)]
    assert group_words(["a", "b", "<space>", "c", "<space>", "a"], spans, detok) == [
        ("ab", 0, 2), ("c", 3, 4), ("a", 5, 6)]
    assert group_words(["\u2581he", "llo", "\u2581wor", "ld", "\u2581x", "y"], spans, detok) == [
        ("hello", 0, 2), ("world", 2, 4), ("xy", 4, 6)]
    assert group_words(["go", "home"], spans[:2], " ".join, each_token_a_word=True) == [
        ("go", 0, 1), ("home", 1, 2)]


def peaky(T, V, peaks, blank=0):
    """(T, V) log-posteriors: blank everywhere except token ``v`` at the frames of ``peaks``."""
    lp = np.full((T, V), np.log(0.01 / (V - 1)))
    lp[:, blank] = np.log(0.99)
    for t, v in peaks:
        lp[t, :] = np.log(0.01 / (V - 1))
        lp[t, v] = np.log(0.99)
    return lp


def test_ctc_word_times_from_hand_made_posteriors():
    tokens = ["<blank>", "<unk>", "<space>", "a", "b", "c"]
    # "ab c" : a at 10-11, b at 14, <space> at 20, c at 30-32, 40 ms frames, offset 2 s
    peaks = [(10, 3), (11, 3), (14, 4), (20, 2), (30, 5), (31, 5), (32, 5)]
    lp = peaky(50, 6, peaks)
    ids = [3, 4, 2, 5]
    words = ctc_word_times(lp, ids, [tokens[i] for i in ids], "".join, frame_seconds=0.04, offset=2.0)
    assert [w for w, _, _ in words] == ["ab", "c"]
    assert words[0][1:] == pytest.approx((2.0 + 0.40, 2.0 + 0.60))
    assert words[1][1:] == pytest.approx((2.0 + 1.20, 2.0 + 1.32))


def test_ctc_word_times_repeated_token_and_too_few_frames():
    lp = peaky(10, 5, [(2, 3), (5, 3)])
    words = ctc_word_times(lp, [3, 3], ["a", "a"], "".join, frame_seconds=0.1)
    assert words == [("aa", pytest.approx(0.2), pytest.approx(0.6))]
    assert ctc_word_times(peaky(2, 5, []), [3, 3], ["a", "a"], "".join) is None   # needs 3 frames
    assert ctc_word_times(lp, [], [], "".join) == []


# ---- end to end on a tiny random model ------------------------------------------------------------

FS = 16000


def bursts(n_bursts, seed=0, burst_s=0.6, pause_s=0.8):
    """Noise bursts separated by silence; returns samples and (start, end) of each burst in s."""
    rng = np.random.default_rng(seed)
    out, spans, t = [np.zeros(int(pause_s * FS), np.float32)], [], pause_s
    for _ in range(n_bursts):
        b = (0.3 * rng.standard_normal(int(burst_s * FS))).astype(np.float32)
        out += [b, np.zeros(int(pause_s * FS), np.float32)]
        spans.append((t, t + burst_s))
        t += burst_s + pause_s
    return np.concatenate(out), spans


@pytest.fixture(scope="module")
def speechy_model(tmp_path_factory):
    """A random model whose CTC says blank in silence and a token in noise bursts."""
    import torch

    from transcribe_model import build_random_model
    from espnet_mamba.transcribe import Transcriber

    exp = build_random_model(tmp_path_factory.mktemp("m") / "exp", seed=1)
    t = Transcriber(exp, device="cpu", beam_size=2, ctc_weight=0.3, report=lambda *a: None)
    # CTC reads one direction of the encoder output: silence one side (blank), noise the other ("a")
    sil = t._encode(np.zeros(2 * FS, np.float32))
    noise = t._encode((0.3 * np.random.default_rng(5).standard_normal(2 * FS)).astype(np.float32))
    d = noise.mean(0) - sil.mean(0)
    d = d / d.norm()
    thr = float(((sil @ d).max() + (noise @ d).min()) / 2)
    assert float((sil @ d).max()) < float((noise @ d).min()), "random encoder does not separate them"
    with torch.no_grad():
        lo = t.model.ctc.ctc_lo
        lo.weight.zero_()
        lo.bias.fill_(-10.0)
        lo.bias[t.model.blank_id] = 0.0
        lo.weight[3] = 20 * d
        lo.bias[3] = -20 * thr
    return t


def test_long_recording_is_cut_at_pauses_and_each_segment_is_speech2text(speechy_model, tmp_path):
    import torch

    t = speechy_model
    x, spans = bursts(6)
    f = tmp_path / "long.wav"
    soundfile.write(f, x, FS, subtype="FLOAT")
    t.max_segment_s, t.pause_s = 2.5, 0.4
    r = t.transcribe_file(f)
    assert r.ok and r.duration == pytest.approx(len(x) / FS, abs=1e-3)
    assert len(r.segments) >= 2
    for s, u in zip(r.segments, r.segments[1:]):
        assert s.end <= u.start + 1e-6
    for seg in r.segments:
        assert seg.end - seg.start <= 2.5 + 0.05
        # each segment is what Speech2Text says of its samples alone
        piece = x[int(round(seg.start * FS)):int(round(seg.end * FS))]
        hyp = t.s2t(torch.tensor(piece))
        hyp = hyp[0] if isinstance(hyp, tuple) else hyp
        assert seg.text == hyp[0][0]
        for w in seg.words or []:
            assert seg.start - 1e-6 <= w.start < w.end <= seg.end + 0.05
    # cuts fall in the silences between bursts, not inside one
    for seg in r.segments[1:]:
        assert not any(a + 0.05 < seg.start < b - 0.05 for a, b in spans), (seg.start, spans)
    assert r.text == " ".join(s.text for s in r.segments if s.text)


def test_windowed_first_pass_and_shared_encoder_output(speechy_model, tmp_path):
    t = speechy_model
    x, _ = bursts(8, seed=3)
    t.max_segment_s, t.pause_s = 2.5, 0.4
    t.window_s, t.window_overlap_s = 4.0, 1.0
    try:
        times, is_blank, _ = t._first_pass(x)
        whole = t._encode(x)
        # the windows give as many frames as encoding the whole recording, in time order
        assert abs(len(times) - whole.shape[0]) <= 2
        assert times[-1] == pytest.approx(len(x) / FS, abs=2 * t.frame_shift())
        assert np.all(np.diff(times) > 0)
        t.reencode = False
        r = t.transcribe_samples(x, "x")
        assert len(r.segments) >= 2 and all(s.end - s.start <= 2.55 for s in r.segments)
    finally:
        t.window_s, t.window_overlap_s, t.reencode = 30.0, 5.0, True


def test_word_times_find_the_bursts(speechy_model, tmp_path):
    """CTC-only decoding of the calibrated model says "a" once per burst: each word's time
    from the CTC alignment lies on its burst (within 0.1 s), in ctm and srt too."""
    from espnet_mamba.transcribe import format_results

    t = speechy_model
    x, spans = bursts(5, seed=7, burst_s=0.5, pause_s=0.7)
    f = tmp_path / "bursts.wav"
    soundfile.write(f, x, FS, subtype="FLOAT")
    weights = dict(t.s2t.beam_search.weights)
    t.s2t.beam_search.weights.update(ctc=1.0, decoder=0.0)
    t.max_segment_s, t.pause_s = 2.0, 0.3
    try:
        r = t.transcribe_file(f)
    finally:
        t.s2t.beam_search.weights.update(weights)
    words = [w for s in r.segments for w in s.words]
    assert [w.word for w in words] == ["a"] * 5, r.text
    for w, (a, b) in zip(words, spans):
        assert abs(w.start - a) < 0.1 and abs(w.end - b) < 0.1, (w, a, b)
    ctm = format_results([r], "ctm").splitlines()
    assert len(ctm) == 5 and ctm[0].startswith("bursts 1 ")
    assert format_results([r], "srt").count(" --> ") == 5


def test_benchmark_longform_smoke(capsys, monkeypatch):
    """python -m espnet_mamba.benchmark longform, shrunk to seconds: runs, prints a row per model."""
    import espnet_mamba.benchmark.longform as lf
    from espnet_mamba.benchmark.__main__ import main

    monkeypatch.setattr(lf, "cap_cpu_memory", lambda: 0.0)  # the cap would outlive the test in pytest

    main(["longform", "--minutes", "0.05", "--models", "mamba", "transformer", "--scale", "0.1",
          "--window_s", "1.5", "--window_overlap_s", "0.5", "--max_segment_s", "1", "--json"])
    import json

    out = capsys.readouterr().out
    rows = json.loads(out[out.index("["):])
    assert [r["model"] for r in rows] == ["mamba", "transformer"]
    for r in rows:
        assert r["whole_s"] > 0 and r["longform_s"] > 0 and r["segments"] >= 2


# ---- a trained model: long-form against utterance by utterance (slow: trains for minutes) -----------

@pytest.mark.slow
def test_trained_model_long_form_matches_utterance_by_utterance(tmp_path):
    """Train the tone corpus (with leading/trailing silence, as real recordings have), join its 30
    test utterances with 0.6 s pauses into one ~50 s recording and decode it long-form: the WER is
    within 3 words of decoding the utterances one by one, the cut finds every utterance, and the
    word times put each utterance's first word within 0.2 s of where its tone starts."""
    import jiwer

    from cli_pipeline import ROOT as CLI_ROOT, collect_stats, make_corpus, run, train_args
    from espnet_mamba.transcribe import Transcriber

    root = make_corpus(tmp_path, n_train=60, n_valid=8, n_test=30, seed=0)
    rng = np.random.default_rng(1)
    for wav in sorted((root / "data").glob("*/wav/*.wav")):
        x, fs = soundfile.read(wav, dtype="float32")
        pads = [(0.01 * rng.standard_normal(int(rng.uniform(0.1, 0.5) * fs))).astype(np.float32) for _ in "ab"]
        soundfile.write(wav, np.concatenate([pads[0], x, pads[1]]), fs)
    config = CLI_ROOT / "test/configs/mamba_mamba.yaml"
    stats = collect_stats(root, config)
    run(train_args(root, config, stats, root / "exp", max_epoch=15), cwd=root, log=root / "train.log")

    t = Transcriber(root / "exp", model_file=root / "exp/valid.acc.best.pth", device="cpu", beam_size=4,
                    ctc_weight=0.3, report=lambda *a: None)
    d = root / "data" / "test"
    text = dict(line.split(maxsplit=1) for line in (d / "text").read_text().splitlines())
    refs, hyps, pieces, starts = [], [], [np.zeros(int(0.6 * FS), np.float32)], []
    pos = len(pieces[0])
    for line in (d / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        x, _ = soundfile.read(path, dtype="float32")
        refs.append(text[utt])
        hyps.append(t.transcribe_samples(x, utt).text)
        starts.append((pos + int(np.argmax(np.abs(x) > 0.1))) / FS)
        pieces += [x, np.zeros(int(0.6 * FS), np.float32)]
        pos += len(x) + int(0.6 * FS)
    one_by_one = jiwer.process_words(" ".join(refs), " ".join(hyps))
    r = t.transcribe_samples(np.concatenate(pieces), "joined")
    long_form = jiwer.process_words(" ".join(refs), r.text)
    errors = lambda m: m.substitutions + m.deletions + m.insertions  # noqa: E731
    # a guard, not the claim (that is the long-form comparison below): a model that ignores the
    # audio and says one of the three words gets about two thirds of them wrong. The same 15-epoch
    # training gave 10 errors in one CI run and fewer elsewhere, so the guard is not the place to
    # ask for a good model
    n_words = sum(len(x.split()) for x in refs)
    assert errors(one_by_one) <= 0.25 * n_words, f"the model did not learn: {errors(one_by_one)} errors"
    assert errors(long_form) <= errors(one_by_one) + 3, (r.text, " ".join(refs))
    assert len(r.segments) == 30
    words = [w for s in r.segments for w in s.words]
    first = [min((w.start for w in words if w.start >= s - 0.3), default=1e9) for s in starts]
    assert sum(abs(f - s) <= 0.2 for f, s in zip(first, starts)) >= 28

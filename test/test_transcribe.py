"""espnet_mamba.transcribe and espnet_mamba.audio: files in, text out; every bad input named and skipped.

The model is tiny and random (test/transcribe_model.py); correctness is
checked against independent references: ESPnet's Speech2Text on the same
samples, numpy/scipy for what the audio should be after conversion.
"""

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from transcribe_model import ROOT, build_random_model, pack_model

FS = 16000


def tones(seconds=1.0, fs=FS, seed=0, amp=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    x = amp * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Unpacked models and rewritten configs go to a cache: keep the tests' out of ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("model") / "exp", blank_bias=1.0)


@pytest.fixture(scope="module")
def transcriber(exp):
    from espnet_mamba.transcribe import Transcriber

    messages = []
    t = Transcriber(exp, device="cpu", beam_size=2, ctc_weight=0.3,
                    report=lambda level, msg: messages.append((level, msg)))
    t.messages = messages
    return t


@pytest.fixture(scope="module")
def s2t(exp):
    import espnet_mamba  # noqa: F401
    from espnet2.bin.asr_inference import Speech2Text

    return Speech2Text(str(exp / "config.yaml"), str(exp / "valid.acc.ave.pth"), device="cpu",
                       beam_size=2, ctc_weight=0.3, lm_weight=0.0, nbest=1)


def reference_text(s2t, samples):
    import torch

    out = s2t(torch.tensor(samples, dtype=torch.float32))
    if isinstance(out, tuple):  # (n-best, intermediate CTC) with interctc
        out = out[0]
    return out[0][0]


# ---- the good path ------------------------------------------------------------------------------

def test_file_equals_speech2text_on_the_same_samples(transcriber, s2t, tmp_path):
    x = tones(1.2)
    f = tmp_path / "a.wav"
    soundfile.write(f, x, FS, subtype="FLOAT")
    r = transcriber.transcribe_file(f)
    assert r.ok and r.notes == []
    assert r.text == reference_text(s2t, x)
    assert r.duration == pytest.approx(1.2)
    assert len(r.segments) == 1 and r.segments[0].start == 0.0


def test_int16_file_equals_speech2text_on_its_samples(transcriber, s2t, tmp_path):
    f = tmp_path / "a16.wav"
    soundfile.write(f, tones(0.9, seed=3), FS, subtype="PCM_16")
    samples = np.frombuffer(wave.open(str(f)).readframes(10 ** 9), dtype="<i2").astype(np.float32) / 32768
    assert transcriber.transcribe_file(f).text == reference_text(s2t, samples)


def test_other_models_too(tmp_path):
    """Any ESPnet ASR model: ConMamba encoder + ESPnet's Transformer decoder, long-form included."""
    import espnet_mamba  # noqa: F401
    from espnet2.bin.asr_inference import Speech2Text
    from espnet_mamba.transcribe import Transcriber

    exp = build_random_model(tmp_path / "exp", config=ROOT / "test/configs/conmamba_transformer.yaml",
                             blank_bias=2.0)
    s2t = Speech2Text(str(exp / "config.yaml"), str(exp / "valid.acc.ave.pth"), device="cpu", beam_size=2,
                      ctc_weight=0.3, lm_weight=0.0, nbest=1)
    t = Transcriber(exp, device="cpu", beam_size=2, ctc_weight=0.3, max_segment_s=1.0,
                    report=lambda *a: None)
    x = tones(0.9, seed=13)
    soundfile.write(tmp_path / "a.wav", x, FS, subtype="FLOAT")
    assert t.transcribe_file(tmp_path / "a.wav").text == reference_text(s2t, x)
    y = np.concatenate([tones(0.9, seed=i) for i in range(3)])
    r = t.transcribe_samples(y, "long")
    assert r.ok and all(s.end - s.start <= 1.0 + 0.05 for s in r.segments)


def test_packed_model_gives_the_same_text_as_the_exp_dir(exp, transcriber, tmp_path):
    from espnet_mamba.transcribe import Transcriber

    packed = pack_model(exp, tmp_path / "asr_model.zip")
    f = tmp_path / "a.wav"
    soundfile.write(f, tones(1.0, seed=1), FS)
    t = Transcriber(packed, device="cpu", beam_size=2, ctc_weight=0.3, report=lambda *a: None)
    assert t.transcribe_file(f).text == transcriber.transcribe_file(f).text


def test_exp_dir_of_a_recipe_works_from_any_directory(tmp_path, monkeypatch):
    """A recipe's config.yaml names its statistics relative to the recipe directory."""
    from espnet_mamba.transcribe import Transcriber

    recipe = tmp_path / "recipe"
    stats = recipe / "exp" / "asr_stats" / "feats_stats.npz"
    stats.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(stats, count=np.array(1000.0), sum=rng.standard_normal(20) * 1000,
             sum_square=np.full(20, 4000.0))
    monkeypatch.chdir(recipe)
    exp = build_random_model(recipe / "exp" / "asr_x", stats_file="exp/asr_stats/feats_stats.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    soundfile.write(elsewhere / "a.wav", tones(1.0), FS)
    in_recipe = Transcriber(exp, device="cpu", beam_size=2, report=lambda *a: None).transcribe_file(
        elsewhere / "a.wav")
    # packed in the recipe directory as stage 14 does (statistics as an option), used elsewhere
    from espnet2.main_funcs.pack_funcs import pack

    pack(files={"asr_model_file": "exp/asr_x/valid.acc.ave.pth"},
         yaml_files={"asr_train_config": "exp/asr_x/config.yaml"}, outpath="exp/asr_x/asr_model.zip",
         option=["exp/asr_stats/feats_stats.npz"])
    monkeypatch.chdir(elsewhere)
    t = Transcriber(exp, device="cpu", beam_size=2, report=lambda *a: None)
    assert t.transcribe_file("a.wav").text == in_recipe.text
    packed = Transcriber(recipe / "exp/asr_x/asr_model.zip", device="cpu", beam_size=2, report=lambda *a: None)
    assert packed.transcribe_file("a.wav").text == in_recipe.text


def test_model_errors_are_one_line(tmp_path):
    from espnet_mamba.transcribe import ModelError, Transcriber

    with pytest.raises(ModelError, match="no such model"):
        Transcriber(tmp_path / "nothing")
    (tmp_path / "exp").mkdir()
    with pytest.raises(ModelError, match="no config.yaml"):
        Transcriber(tmp_path / "exp")
    (tmp_path / "bad.zip").write_text("not a zip")
    with pytest.raises(ModelError, match="not a packed ESPnet model"):
        Transcriber(tmp_path / "bad.zip")


# ---- bad and unusual inputs, one test each ---------------------------------------------------------

def run_one(transcriber, path):
    from espnet_mamba.transcribe import transcribe

    transcriber.messages.clear()
    results = transcribe([path], transcriber)
    assert len(results) == 1
    return results[0]


def assert_error(r, path, *words):
    assert not r.ok and r.text is None
    assert "\n" not in r.error and r.error.startswith(str(path))
    for w in words:
        assert w in r.error, r.error


def test_empty_file(transcriber, tmp_path):
    f = tmp_path / "empty.wav"
    f.write_bytes(b"")
    assert_error(run_one(transcriber, f), f, "empty file")


def test_zero_samples(transcriber, tmp_path):
    f = tmp_path / "zero.wav"
    soundfile.write(f, np.zeros(0, np.float32), FS)
    assert_error(run_one(transcriber, f), f, "no samples")


def test_too_short_for_the_model(transcriber, tmp_path):
    f = tmp_path / "short.wav"
    soundfile.write(f, tones(0.001), FS)
    r = run_one(transcriber, f)
    assert_error(r, f, "too short", "the model needs at least")
    n = transcriber.min_samples()
    assert 16 < n < FS
    ok = tmp_path / "just.wav"
    soundfile.write(ok, tones(1.0)[:n], FS)
    assert run_one(transcriber, ok).ok


def _resampled_reference(x, fs_in, fs_out):
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(fs_in, fs_out)
    return resample_poly(x.astype(np.float64), fs_out // g, fs_in // g)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_rates_are_resampled_and_said_once(transcriber, s2t, tmp_path, rate):
    from espnet_mamba.audio import load_audio
    from espnet_mamba.transcribe import transcribe

    x = tones(1.0, fs=rate, seed=2)
    files = []
    for i in range(2):
        files.append(tmp_path / f"r{i}.wav")
        soundfile.write(files[-1], x, rate, subtype="FLOAT")
    transcriber.messages.clear()
    transcriber._said.clear()
    results = transcribe(files, transcriber)
    assert all(r.ok for r in results)
    said = [m for _, m in transcriber.messages if f"{rate} Hz audio is resampled to the model's 16000 Hz" in m]
    assert len(said) == 1 and "said once" in said[0]
    assert any("resampled" in n for n in results[0].notes)
    if rate < FS:
        assert any("nothing above 4000 Hz" in m for _, m in transcriber.messages)
    # the samples are what an independent resampler gives (edges aside), and the text is
    # Speech2Text's on those samples
    got = load_audio(files[0], fs=FS).samples
    ref = _resampled_reference(x, rate, FS)
    assert abs(len(got) - len(ref)) <= 1
    n = min(len(got), len(ref))
    assert np.max(np.abs(got[200:n - 200] - ref[200:n - 200])) < 2e-2
    assert results[0].text == reference_text(s2t, got)
    assert results[0].duration == pytest.approx(1.0, abs=1e-3)


def test_stereo_is_downmixed_and_said(transcriber, s2t, tmp_path):
    left, right = tones(1.0, seed=4), np.zeros(FS, np.float32)
    f = tmp_path / "stereo.wav"
    soundfile.write(f, np.stack([left, right], axis=1), FS, subtype="FLOAT")
    r = run_one(transcriber, f)
    assert r.ok
    assert any("2-channel audio is downmixed to mono" in n for n in r.notes)
    assert r.text == reference_text(s2t, (left + right) / 2)


def test_24_bit(transcriber, s2t, tmp_path):
    x = tones(1.0, seed=5)
    f = tmp_path / "pcm24.wav"
    soundfile.write(f, x, FS, subtype="PCM_24")
    raw = np.frombuffer(wave.open(str(f)).readframes(10 ** 9), dtype=np.uint8).reshape(-1, 3)
    ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16))
    ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
    samples = (ints / float(1 << 23)).astype(np.float32)
    assert np.max(np.abs(samples - x)) < 1e-6
    r = run_one(transcriber, f)
    assert r.ok and r.notes == []
    assert r.text == reference_text(s2t, samples)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_integer_and_float_sample_type(transcriber, s2t, tmp_path, subtype):
    from espnet_mamba.audio import load_audio

    x = tones(0.8, seed=11)
    f = tmp_path / f"{subtype}.wav"
    soundfile.write(f, x, FS, subtype=subtype)
    r = run_one(transcriber, f)
    assert r.ok and r.notes == []
    got = load_audio(f, fs=FS).samples
    assert np.max(np.abs(got - x)) <= (1 / 64 if subtype == "PCM_U8" else 1e-4)   # quantisation only
    assert r.text == reference_text(s2t, got)


@pytest.mark.parametrize("name,fmt,subtype", [("a.flac", "FLAC", "PCM_16"), ("a.ogg", "OGG", "VORBIS"),
                                              ("a.sph", "NIST", "PCM_16"), ("a.aiff", "AIFF", "PCM_16")])
def test_containers(transcriber, tmp_path, name, fmt, subtype):
    x = tones(0.8, seed=12)
    f = tmp_path / name
    soundfile.write(f, x, FS, format=fmt, subtype=subtype)
    r = run_one(transcriber, f)
    assert r.ok and r.duration == pytest.approx(0.8, abs=0.01)


def test_mp3_without_mpeg_support_says_so(transcriber, tmp_path):
    if "MPEG" in soundfile.available_formats():
        pytest.skip("this libsndfile reads MP3")
    f = tmp_path / "a.mp3"
    f.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(200))
    assert_error(run_one(transcriber, f), f, "MP3 is not supported by this libsndfile")


def test_truncated_header(transcriber, tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, tones(1.0), FS, subtype="PCM_16")
    f = tmp_path / "cut.wav"
    f.write_bytes(good.read_bytes()[:30])
    assert_error(run_one(transcriber, f), f, "not a readable audio file")


def test_truncated_data_is_transcribed_with_a_warning(transcriber, tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, tones(1.0), FS, subtype="PCM_16")
    f = tmp_path / "cut.wav"
    f.write_bytes(good.read_bytes()[:44 + 2 * 12000])
    r = run_one(transcriber, f)
    assert r.ok and r.duration == pytest.approx(0.75)
    assert any("truncated" in n for n in r.notes)
    assert ("warning", r.notes[0]) in transcriber.messages


def test_text_file_named_wav(transcriber, tmp_path):
    f = tmp_path / "notes.wav"
    f.write_text("this is not audio\n" * 20)
    assert_error(run_one(transcriber, f), f, "not a readable audio file")


def test_nan_samples(transcriber, tmp_path):
    x = tones(1.0)
    x[4000:4010] = np.nan
    f = tmp_path / "nan.wav"
    soundfile.write(f, x, FS, subtype="FLOAT")
    assert_error(run_one(transcriber, f), f, "10 NaN/Inf samples", "first at 0.250 s")


def test_inf_samples(transcriber, tmp_path):
    x = tones(1.0)
    x[100] = np.inf
    f = tmp_path / "inf.flac"
    soundfile.write(f.with_suffix(".wav"), x, FS, subtype="DOUBLE")
    assert_error(run_one(transcriber, f.with_suffix(".wav")), f.with_suffix(".wav"), "1 NaN/Inf sample ")


def test_clipped_audio_is_transcribed_with_a_warning(transcriber, s2t, tmp_path):
    x = np.clip(tones(1.0) * 10, -1, 1)
    f = tmp_path / "clipped.wav"
    soundfile.write(f, x, FS, subtype="PCM_16")
    r = run_one(transcriber, f)
    assert r.ok
    assert any("clipped" in n for n in r.notes)
    assert any(level == "warning" and "clipped" in m for level, m in transcriber.messages)


def test_float_beyond_full_scale_is_said(transcriber, tmp_path):
    f = tmp_path / "loud.wav"
    soundfile.write(f, tones(1.0) * 3000, FS, subtype="FLOAT")
    r = run_one(transcriber, f)
    assert r.ok and any("beyond full scale" in n for n in r.notes)


def test_missing_path(transcriber, tmp_path):
    f = tmp_path / "nope.wav"
    assert_error(run_one(transcriber, f), f, "no such file")


def test_directory_with_good_and_bad_files(transcriber, s2t, tmp_path):
    from espnet_mamba.transcribe import transcribe

    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    soundfile.write(d / "a.wav", tones(1.0, seed=7), FS)
    soundfile.write(d / "sub" / "b.flac", tones(1.1, seed=8), FS)
    (d / "broken.wav").write_text("garbage")
    soundfile.write(d / "nan.wav", np.full(FS, np.nan, np.float32), FS, subtype="FLOAT")
    (d / "README.txt").write_text("not audio, not an audio extension: not looked at")
    results = transcribe([d, tmp_path / "missing.flac"], transcriber)
    by = {Path(r.path).name: r for r in results}
    assert set(by) == {"a.wav", "b.flac", "broken.wav", "nan.wav", "missing.flac"}
    assert by["a.wav"].ok and by["b.flac"].ok
    assert by["a.wav"].text == reference_text(s2t, soundfile.read(d / "a.wav", dtype="float32")[0])
    assert not by["broken.wav"].ok and not by["nan.wav"].ok and not by["missing.flac"].ok
    errors = [m for level, m in transcriber.messages if level == "error"]
    assert len(errors) >= 3


def test_main_in_process(exp, tmp_path, capsys):
    from espnet_mamba.transcribe import main

    soundfile.write(tmp_path / "good.wav", tones(1.0, seed=9), FS)
    (tmp_path / "bad.wav").write_text("garbage")
    args = ["--model", str(exp), "--beam_size", "2", "--device", "cpu", "--no_progress"]
    assert main(args + [str(tmp_path / "good.wav"), str(tmp_path / "bad.wav"), "--output", "ctm"]) == 1
    out = capsys.readouterr()
    assert "bad.wav: not a readable audio file" in out.err and "1 of 2 input(s) failed" in out.err
    assert all(line.startswith("good 1 ") for line in out.out.splitlines())
    assert main(args + [str(tmp_path / "good.wav")]) == 0
    assert main(["--model", str(tmp_path / "none"), str(tmp_path / "good.wav")]) == 2
    assert main(args + ["--window_s", "30", "--window_overlap_s", "30", str(tmp_path / "good.wav")]) == 2
    assert "window_overlap_s (30.0) must be in [0, window_s (30.0))" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_exit_status_and_no_traceback(exp, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    soundfile.write(d / "good.wav", tones(1.0, seed=9), FS)
    (d / "bad.wav").write_text("garbage")
    (d / "empty.wav").write_bytes(b"")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "espnet_mamba.transcribe", "--model", str(exp), "--beam_size", "2",
           "--device", "cpu"]
    out = subprocess.run(cmd + [str(d), str(tmp_path / "missing.wav"), "--output", "json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert any("bad.wav: not a readable audio file" in e for e in errors)
    assert any("empty.wav: empty file" in e for e in errors)
    assert any("missing.wav: no such file" in e for e in errors)
    assert "3 of 4 input(s) failed" in out.stderr
    rows = {Path(r["path"]).name: r for r in json.loads(out.stdout)}
    assert rows["good.wav"]["error"] is None and isinstance(rows["good.wav"]["text"], str)
    # all good: exit 0, one file prints its text alone
    ok = subprocess.run(cmd + [str(d / "good.wav")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert ok.stdout == rows["good.wav"]["text"] + "\n"
    # an unusable model: one line, exit 2
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "nomodel"), str(d / "good.wav")], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no such model" in bad.stderr


# ---- output formats ------------------------------------------------------------------------------

def test_output_formats_from_word_times():
    from espnet_mamba.transcribe import Result, Segment, Word, format_results

    r = Result(path="/x/talk.wav", text="a bb c", duration=9.0, segments=[
        Segment(0.0, 4.0, "a bb", [Word("a", 0.5, 0.8), Word("bb", 1.0, 1.6)]),
        Segment(4.0, 9.0, "c", [Word("c", 7.25, 7.5)])])
    bad = Result(path="/x/bad.wav", error="/x/bad.wav: empty file (0 bytes)")
    assert format_results([r, bad], "text") == "/x/talk.wav\ta bb c\n"
    assert format_results([r], "text", single=True) == "a bb c\n"
    assert format_results([r, bad], "ctm").splitlines() == [
        "talk 1 0.500 0.300 a", "talk 1 1.000 0.600 bb", "talk 1 7.250 0.250 c"]
    srt = format_results([r], "srt")
    # a gap over 1 s starts a new caption
    assert srt == ("1\n00:00:00,500 --> 00:00:01,600\na bb\n\n"
                   "2\n00:00:07,250 --> 00:00:07,500\nc\n\n")
    rows = json.loads(format_results([r, bad], "json"))
    assert rows[0]["segments"][1]["words"][0] == {"word": "c", "start": 7.25, "end": 7.5}
    assert rows[1]["error"].startswith("/x/bad.wav")


def test_sample_checks_in_blocks_agree_with_whole_array(monkeypatch):
    import espnet_mamba.audio as audio

    x = np.clip(tones(2.0) * 4, -1, 1)[:, None]
    whole = [n.kind for n in audio.check_samples("x.wav", x, FS)]
    monkeypatch.setattr(audio, "CHECK_BLOCK", 1000)
    assert [n.kind for n in audio.check_samples("x.wav", x, FS)] == whole == ["clipped"]
    x[25_000, 0] = np.nan
    x[31_000, 0] = -np.inf
    with pytest.raises(audio.AudioError, match=r"2 NaN/Inf samples \(first at 1.562 s\)"):
        audio.check_samples("x.wav", x, FS)


def test_file_read_in_blocks_equals_the_whole_file(tmp_path, monkeypatch):
    import espnet_mamba.audio as audio

    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal((10_007, 3))).astype(np.float32)
    f = tmp_path / "three.flac"
    soundfile.write(f, x, FS, subtype="PCM_24")
    whole, _ = soundfile.read(f, dtype="float32")
    monkeypatch.setattr(audio, "CHECK_BLOCK", 1000)
    a = audio.load_audio(f)
    assert a.channels == 3 and a.samples.shape == (10_007,)
    np.testing.assert_allclose(a.samples, whole.mean(axis=1), atol=1e-7)
    assert [n.kind for n in a.notes] == ["downmixed"]

"""Stage 3 (espnet_mamba.recipe.data_dir format): every recording read once, every bad one reported
together (utterance, file, problem), --skip_bad_utts moving them to removed_utts."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_mamba.recipe.data_dir import DataError, filter_dir, format_dir, main, read_table

ROOT = Path(__file__).resolve().parents[1]
FS = 16000


def sine(seconds, fs=FS, f=440.0):
    t = np.arange(int(seconds * fs)) / fs
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def make_dir(root: Path, entries, segments=None):
    """entries: {utt_or_rec: wav.scp value}; a Kaldi dir with text and utt2spk."""
    d = root / "data" / "set"
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
    utts = list(segments) if segments else list(entries)
    if segments:
        (d / "segments").write_text("".join(f"{u} {r} {s} {e}\n" for u, (r, s, e) in segments.items()))
    (d / "text").write_text("".join(f"{u} a b\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u in utts))
    return d


@pytest.fixture
def mixed(tmp_path):
    """Good and bad recordings: what each should become."""
    w = tmp_path / "wav"
    w.mkdir()
    soundfile.write(w / "good.wav", sine(0.5), FS, subtype="PCM_16")
    soundfile.write(w / "r8k.wav", sine(0.5, fs=8000), 8000, subtype="PCM_16")
    soundfile.write(w / "p24.flac", sine(0.4), FS, subtype="PCM_24")
    soundfile.write(w / "stereo.wav", np.stack([sine(0.5), sine(0.5)], 1), FS)
    x = sine(0.5)
    x[1000] = np.nan
    soundfile.write(w / "nan.wav", x, FS, subtype="FLOAT")
    (w / "empty.wav").write_bytes(b"")
    soundfile.write(w / "zero.wav", np.zeros(0, np.float32), FS)
    (w / "text.wav").write_text("not audio at all\n" * 10)
    entries = {
        "u01_good": w / "good.wav",
        "u02_r8k": w / "r8k.wav",
        "u03_p24": w / "p24.flac",
        "u04_pipe": f"cat {w / 'good.wav'} |",
        "u05_stereo": w / "stereo.wav",
        "u06_nan": w / "nan.wav",
        "u07_empty": w / "empty.wav",
        "u08_zero": w / "zero.wav",
        "u09_text": w / "text.wav",
        "u10_missing": w / "missing.wav",
        "u11_badpipe": "false |",
    }
    problems = {"u05_stereo": "2 channels", "u06_nan": "1 NaN/Inf samples (first at 0.062 s)",
                "u07_empty": "empty file", "u08_zero": "no samples", "u09_text": "not a readable audio file",
                "u10_missing": "no such file", "u11_badpipe": "command failed"}
    return make_dir(tmp_path, entries), problems


def test_all_problems_are_reported_together(mixed, tmp_path):
    src, problems = mixed
    with pytest.raises(DataError) as e:
        format_dir(src, tmp_path / "dump", FS, nj=1)
    msg = str(e.value)
    assert f"7 of 11 utterances have unusable audio" in msg
    lines = {line.split()[0]: line for line in msg.splitlines() if line.startswith("  u")}
    assert set(lines) == set(problems)
    for utt, problem in problems.items():
        assert problem in lines[utt], lines[utt]
    assert "--skip_bad_utts true" in msg
    assert not (tmp_path / "dump" / "wav.scp").exists()


def test_skip_bad_utts_moves_them_to_removed_utts(mixed, tmp_path):
    src, problems = mixed
    dst = tmp_path / "dump"
    got = format_dir(src, dst, FS, nj=1, skip_bad_utts=True)
    assert {u for u, _, _ in got} == set(problems)
    removed = read_table(dst / "removed_utts")
    assert set(removed) == set(problems)
    assert all(problems[u] in removed[u] for u in removed)
    wav = read_table(dst / "wav.scp")
    assert sorted(wav) == ["u01_good", "u02_r8k", "u03_p24", "u04_pipe"]
    for name in ("text", "utt2spk", "utt2num_samples"):
        assert sorted(read_table(dst / name)) == sorted(wav)
    # a good 16 kHz mono file is referenced in place; the others are written at 16 kHz
    assert wav["u01_good"] == str(src.parent.parent / "wav" / "good.wav")
    n = read_table(dst / "utt2num_samples")
    for utt, seconds in (("u01_good", 0.5), ("u02_r8k", 0.5), ("u03_p24", 0.4), ("u04_pipe", 0.5)):
        x, rate = soundfile.read(wav[utt])
        assert rate == FS and x.ndim == 1 and len(x) == int(n[utt]) == int(seconds * FS)
    # the written 8 kHz file: the same tone, resampled (independent reference: the analytic sine)
    x, _ = soundfile.read(wav["u02_r8k"])
    assert np.max(np.abs(x[400:-400] - sine(0.5)[400:-400])) < 0.01


def test_parallel_jobs_give_the_same_dump(mixed, tmp_path):
    src, _ = mixed
    format_dir(src, tmp_path / "a", FS, nj=1, skip_bad_utts=True)
    format_dir(src, tmp_path / "b", FS, nj=3, skip_bad_utts=True)
    for name in ("removed_utts", "utt2num_samples", "text"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_each_recording_is_read_once_and_segments_are_checked_alone(tmp_path, monkeypatch):
    import espnet_mamba.recipe.data_dir as dd

    x = sine(3.0)
    x[int(1.5 * FS)] = np.inf
    soundfile.write(tmp_path / "rec.wav", x, FS, subtype="FLOAT")
    src = make_dir(tmp_path, {"rec": tmp_path / "rec.wav"},
                   segments={"s1": ("rec", 0.0, 1.0), "s2": ("rec", 1.0, 2.0), "s3": ("rec", 2.0, 3.0),
                             "s4": ("rec", 4.0, 5.0)})
    reads = []
    real = dd.read_audio
    monkeypatch.setattr(dd, "read_audio", lambda p: reads.append(p) or real(p))
    problems = format_dir(src, tmp_path / "dump", FS, skip_bad_utts=True)
    assert len(reads) == 1
    assert [(u, p.split(" (")[0]) for u, _, p in problems] == [("s2", "1 NaN/Inf samples"),
                                                                ("s4", "segment 4.0-5.0 s is empty")]
    assert sorted(read_table(tmp_path / "dump" / "wav.scp")) == ["s1", "s3"]


def test_no_resample_makes_a_wrong_rate_a_problem(tmp_path):
    soundfile.write(tmp_path / "a.wav", sine(0.5, fs=8000), 8000)
    src = make_dir(tmp_path, {"a": tmp_path / "a.wav"})
    with pytest.raises(DataError, match="8000 Hz, the recipe expects --fs 16000"):
        format_dir(src, tmp_path / "dump", FS, allow_resample=False)


def test_any_channel_count_when_asked(tmp_path):
    soundfile.write(tmp_path / "s.wav", np.stack([sine(0.5), np.zeros(FS // 2, np.float32)], 1), FS)
    src = make_dir(tmp_path, {"s": tmp_path / "s.wav"})
    format_dir(src, tmp_path / "dump", FS, channels=None)
    x, _ = soundfile.read(read_table(tmp_path / "dump" / "wav.scp")["s"])
    assert np.max(np.abs(x - sine(0.5) / 2)) < 1e-3   # the mean of the two channels


def test_filter_keeps_the_utterances_format_removed(mixed, tmp_path):
    src, problems = mixed
    org = tmp_path / "org"
    format_dir(src, org, FS, skip_bad_utts=True)
    newly = filter_dir(org, tmp_path / "final", FS, min_sec=0.45, max_sec=20)
    assert set(newly) == {"u03_p24"}   # 0.4 s < 0.45 s
    removed = read_table(tmp_path / "final" / "removed_utts")
    assert set(removed) == set(problems) | {"u03_p24"}


def test_command_line(mixed, tmp_path, capsys):
    src, problems = mixed
    assert main(["format", str(src), str(tmp_path / "d1"), "--fs", "16000", "--nj", "2"]) == 1
    err = capsys.readouterr().err
    assert "ERROR: " in err and all(u in err for u in problems)
    assert main(["format", str(src), str(tmp_path / "d2"), "--fs", "16000", "--skip_bad_utts", "true"]) == 0
    err = capsys.readouterr().err
    assert "WARNING:" in err and "removed_utts" in err and "resampled 8000 Hz -> 16000 Hz (1 recording)" in err


def test_asr_sh_stage_3_skip_bad_utts(tmp_path):
    template = ROOT / "egs2" / "TEMPLATE" / "asr1"
    recipe = tmp_path / "egs2" / "x" / "asr1"
    recipe.mkdir(parents=True)
    for name in ("asr.sh", "utils", "path.sh", "cmd.sh"):
        (recipe / name).symlink_to(template / name)
    (recipe / "data").mkdir()
    for s in ("train", "valid"):
        d = recipe / "data" / s
        d.mkdir()
        soundfile.write(d / "ok.wav", sine(0.5), FS)
        (d / "bad.wav").write_text("oops")
        (d / "wav.scp").write_text(f"ok {d / 'ok.wav'}\nbad {d / 'bad.wav'}\n")
        (d / "text").write_text("ok a\nbad b\n")
        (d / "utt2spk").write_text("ok s\nbad s\n")
    args = ["bash", "asr.sh", "--train_set", "train", "--valid_set", "valid", "--stage", "3",
            "--stop_stage", "4", "--nj", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(args, cwd=recipe, capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "bad" in out.stderr and "not a readable audio file" in out.stderr
    out = subprocess.run(args + ["--skip_bad_utts", "true"], cwd=recipe, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_table(recipe / "dump/raw/train/wav.scp").keys() == {"ok"}
    assert "bad" in read_table(recipe / "dump/raw/train/removed_utts")

"""FSDD connected-digit data preparation, on a stand-in corpus of tones (fast).

Each stand-in "recording" of digit d is a tone at 300 + 100*d Hz, so the test can
read an utterance back independently: split it at its pauses by energy and name
each segment's digit from its dominant frequency.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_mamba.recipe.corpora import fsdd
from espnet_mamba.recipe.data_dir import read_table, validate

SPEAKERS = ["ann", "bob", "cat", "dan", "eve"]
WORD_OF = {w: i for i, w in enumerate(fsdd.DIGIT_WORDS)}


def tone(digit: int, take: int, fs=8000) -> np.ndarray:
    t = np.arange(int(fs * (0.25 + 0.01 * take))) / fs
    return (0.3 * np.sin(2 * np.pi * (300 + 100 * digit) * t) * np.hanning(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd")
    rec = root / "recordings"
    rec.mkdir()
    for spk in SPEAKERS:
        for d in range(10):
            for take in range(8):
                soundfile.write(rec / f"{d}_{spk}_{take}.wav", tone(d, take), 8000, subtype="PCM_16")
    (rec / "README.txt").write_text("not a recording")
    return root


def build(corpus, out, **kw):
    args = dict(train_speakers=["ann", "bob", "cat"], test_speakers=["dan", "eve"], n_train=12, n_dev=6,
                n_test=5, dev_takes=2, seed=3)
    args.update(kw)
    fsdd.build(corpus, out, **args)


def segments(audio: np.ndarray, fs: int):
    """Voiced stretches: 10 ms frames well above the noise floor, split at gaps >= 40 ms."""
    frames = audio[: audio.size // 160 * 160].reshape(-1, 160)
    voiced = np.sqrt((frames ** 2).mean(1)) > 0.1 * np.sqrt((frames ** 2).mean(1)).max()
    out, start, gap = [], None, 0
    for i, v in enumerate(voiced):
        if v:
            start = i if start is None else start
            gap = 0
        elif start is not None:
            gap += 1
            if gap >= 4:
                out.append(audio[start * 160:(i - gap + 1) * 160])
                start, gap = None, 0
    if start is not None:
        out.append(audio[start * 160:])
    return out


def dominant_digit(segment: np.ndarray, fs: int) -> int:
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size), n=fs))
    return int(round((np.argmax(spectrum) - 300) / 100))


def test_utterances_say_their_transcript_at_16k(corpus, tmp_path):
    build(corpus, tmp_path, augment=False)
    for name in ("train", "dev", "test_dan", "test_eve"):
        tables = validate(tmp_path / name)
        for utt, text in tables["text"].items():
            words = text.split()
            assert 2 <= len(words) <= 7 and all(w in WORD_OF for w in words)
            audio, fs = soundfile.read(tables["wav.scp"][utt])
            assert fs == 16000
            heard = [dominant_digit(s, fs) for s in segments(audio, fs)]
            assert heard == [WORD_OF[w] for w in words], (utt, text)


def test_splits_are_speaker_and_recording_disjoint(corpus, tmp_path):
    build(corpus, tmp_path)
    spk = {name: set(read_table(tmp_path / name / "utt2spk").values())
           for name in ("train", "dev", "test_dan", "test_eve")}
    assert spk["train"] == spk["dev"] == {"ann", "bob", "cat"}
    assert spk["test_dan"] == {"dan"} and spk["test_eve"] == {"eve"}
    assert len(read_table(tmp_path / "train" / "text")) == 12
    assert len(read_table(tmp_path / "test_eve" / "text")) == 5


def test_dev_uses_only_held_back_takes(corpus, tmp_path, monkeypatch):
    used = {"train": set(), "dev": set()}
    real_get = fsdd.RecordingCache.get
    current = {}

    def spy(self, path, speed=1.0):
        used[current["split"]].add(int(path.stem.split("_")[2]))
        return real_get(self, path, speed)

    real_write = fsdd.write_set

    def track(out, name, rows):
        real_write(out, name, rows)
        current["split"] = "dev" if name == "train" else "other"
        used.setdefault("other", set())

    current["split"] = "train"
    monkeypatch.setattr(fsdd.RecordingCache, "get", spy)
    monkeypatch.setattr(fsdd, "write_set", track)
    build(corpus, tmp_path, test_speakers=["dan"])
    assert used["train"] and min(used["train"]) >= 2
    assert used["dev"] and max(used["dev"]) < 2


def test_same_seed_same_data_and_augmentation_changes_train_only(corpus, tmp_path):
    build(corpus, tmp_path / "a")
    build(corpus, tmp_path / "b")
    build(corpus, tmp_path / "c", augment=False)
    for name in ("train", "dev", "test_dan"):
        a, b, c = (read_table(tmp_path / x / name / "wav.scp") for x in "abc")
        for utt in a:
            wa, wb, wc = (soundfile.read(t[utt])[0] for t in (a, b, c))
            assert np.array_equal(wa, wb)
            if name != "train":
                assert np.array_equal(wa, wc)
        assert read_table(tmp_path / "a" / name / "text") == read_table(tmp_path / "c" / name / "text")
    lengths = {x: [soundfile.info(p).frames for p in read_table(tmp_path / x / "train" / "wav.scp").values()]
               for x in "ac"}
    assert lengths["a"] != lengths["c"]  # speed perturbation changed durations


def test_clear_errors(corpus, tmp_path):
    with pytest.raises(fsdd.FsddError, match="Free Spoken Digit Dataset"):
        fsdd.build(tmp_path / "nowhere", tmp_path / "out", ["ann"], ["dan"], 1, 1, 1)
    with pytest.raises(fsdd.FsddError, match="'zed'.*speakers there: ann, bob, cat, dan, eve"):
        build(corpus, tmp_path / "out", train_speakers=["ann", "zed"])
    with pytest.raises(fsdd.FsddError, match="both"):
        build(corpus, tmp_path / "out", test_speakers=["ann"])
    with pytest.raises(fsdd.FsddError, match="no takes of .* left"):
        build(corpus, tmp_path / "out", dev_takes=8)
    bad = tmp_path / "bad"
    (bad / "recordings").mkdir(parents=True)
    for d in range(10):
        soundfile.write(bad / "recordings" / f"{d}_ann_0.wav", tone(d, 0), 8000)
        soundfile.write(bad / "recordings" / f"{d}_ann_1.wav", tone(d, 1), 8000)
        soundfile.write(bad / "recordings" / f"{d}_dan_0.wav", tone(d, 0), 8000)
    soundfile.write(bad / "recordings" / "3_dan_0.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(fsdd.FsddError, match="3_dan_0.wav is empty, silent"):
        fsdd.build(bad, tmp_path / "out2", ["ann"], ["dan"], 1, 1, 30, dev_takes=1)


def test_command_line_reports_errors_without_traceback(tmp_path, capsys):
    assert fsdd.main(["--fsdd_dir", str(tmp_path), "--out", str(tmp_path / "data")]) == 1
    assert "recordings does not exist" in capsys.readouterr().err
    assert fsdd.main(["--fsdd_dir", str(tmp_path), "--speed_factors", "0.9,fast"]) == 1
    assert "--speed_factors '0.9,fast': expected numbers" in capsys.readouterr().err
    assert fsdd.main(["--fsdd_dir", str(tmp_path), "--speed_factors", "0,1"]) == 1
    assert "expected positive numbers" in capsys.readouterr().err


def test_speed_factors_from_the_command_line(corpus, tmp_path):
    """Only factor 1.25 allowed: every training utterance is shorter than unperturbed, dev is untouched."""
    common = ["--fsdd_dir", str(corpus), "--train_speakers", "ann,bob,cat", "--test_speakers", "dan",
              "--n_train", "6", "--n_dev", "3", "--n_test", "3", "--dev_takes", "2"]
    assert fsdd.main(common + ["--out", str(tmp_path / "fast"), "--speed_factors", "1.25"]) == 0
    assert fsdd.main(common + ["--out", str(tmp_path / "plain"), "--augment", "false"]) == 0
    for name in ("train", "dev"):
        fast, plain = ({u: soundfile.info(p).frames for u, p in read_table(tmp_path / x / name / "wav.scp").items()}
                       for x in ("fast", "plain"))
        for utt in plain:
            if name == "dev":
                assert fast[utt] == plain[utt]
            else:  # pauses are not stretched: the digits shrink by 1.25, the whole utterance by less
                assert fast[utt] < plain[utt]


def test_word_token_list(tmp_path):
    from espnet_mamba.recipe import tokens

    text = tmp_path / "text"
    text.write_text("u1 three one four\nu2 one five\n")
    assert tokens.main(["--text", str(text), "--token_type", "word", "--out_dir", str(tmp_path / "tok")]) == 0
    listed = (tmp_path / "tok" / "tokens.txt").read_text().split()
    # ESPnet's order: <blank>, <unk>, words by frequency ("one" twice), <sos/eos>
    assert listed[:3] == ["<blank>", "<unk>", "one"] and listed[-1] == "<sos/eos>"
    assert sorted(listed[3:-1]) == ["five", "four", "three"]


def test_clip_onset_drops_only_a_bounded_start_of_some_recordings():
    import random

    audio = np.arange(8000, dtype=np.float32)  # 0.5 s at 16 kHz, every sample distinct
    draws = random.Random(1)
    cuts = []
    for _ in range(400):
        out = fsdd.clip_onset(audio, 80.0, draws)
        cut = audio.size - out.size
        assert np.array_equal(out, audio[cut:])  # a suffix: nothing but the start is touched
        assert 0 <= cut <= 80 * 16
        cuts.append(cut)
    clipped = sum(c > 0 for c in cuts)
    assert 150 < clipped < 250  # about ONSET_CLIP_SHARE of the calls
    assert max(cuts) > 60 * 16  # the whole 0..80 ms range is used
    short = np.arange(1000, dtype=np.float32)  # 62 ms: the cap of 30% of the recording applies
    assert all(fsdd.clip_onset(short, 80.0, draws).size >= 700 for _ in range(50))
    assert fsdd.clip_onset(audio, 0.0, draws) is audio


def test_onset_clipping_shortens_training_digits_only_and_off_changes_nothing(corpus, tmp_path):
    """Speed fixed at 1.0 so lengths compare: clipping removes between 0 and 80 ms per digit from train;
    dev and test are byte-identical, and --onset_clip_ms 0 reproduces the default data exactly."""
    build(corpus, tmp_path / "plain", speed_factors=(1.0,))
    build(corpus, tmp_path / "zero", speed_factors=(1.0,), onset_clip_ms=0.0)
    build(corpus, tmp_path / "clip", speed_factors=(1.0,), onset_clip_ms=80.0)
    shorter = 0
    for name in ("train", "dev", "test_dan"):
        text = read_table(tmp_path / "plain" / name / "text")
        scp = {x: read_table(tmp_path / x / name / "wav.scp") for x in ("plain", "zero", "clip")}
        for utt, words in text.items():
            plain, zero, clip = (soundfile.read(scp[x][utt])[0] for x in ("plain", "zero", "clip"))
            assert np.array_equal(plain, zero)
            if name != "train":
                assert np.array_equal(plain, clip)
                continue
            lost = plain.size - clip.size
            assert 0 <= lost <= len(words.split()) * 80 * 16
            shorter += lost > 0
    assert shorter > 6  # most of the 12 training utterances have at least one clipped digit
    with pytest.raises(fsdd.FsddError, match="--onset_clip_ms must be >= 0"):
        build(corpus, tmp_path / "bad", onset_clip_ms=-5.0)

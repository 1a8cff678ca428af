"""Synthesizer voices as extra FSDD training speakers (--n_synthetic).

The fsdd tests use a fake synthesizer that "speaks" digit d as a tone at
300 + 100*d Hz between stretches of silence, so an utterance can be read back
independently, as in test_fsdd_data.py. One test runs the real espeak-ng.
"""

import shutil

import numpy as np
import pytest
import soundfile

from espnet_mamba.recipe.corpora import fsdd, synthetic_digits
from espnet_mamba.recipe.data_dir import read_table, validate
from test_fsdd_data import WORD_OF, corpus, dominant_digit, segments  # noqa: F401 - corpus is a fixture

SYNTH_FS = 22050  # espeak-ng's output rate


@pytest.fixture
def few_voices(monkeypatch):
    monkeypatch.setattr(synthetic_digits, "ACCENTS", ["en-us", "en-gb"])
    monkeypatch.setattr(synthetic_digits, "VARIANTS", ["m1", "f2"])


@pytest.fixture
def tone_synthesizer(monkeypatch, few_voices):
    calls = []

    def fake(speaker, text, path, rate, pitch=None):
        calls.append((speaker, text, rate, pitch))
        t = np.arange(int(SYNTH_FS * 0.3)) / SYNTH_FS
        word = 0.3 * np.sin(2 * np.pi * (300 + 100 * WORD_OF[text]) * t) * np.hanning(t.size)
        silence = np.zeros(int(SYNTH_FS * 0.2))
        soundfile.write(str(path), np.concatenate([silence, word, silence]), SYNTH_FS, subtype="PCM_16")

    monkeypatch.setattr(synthetic_digits, "synthesize", fake)
    monkeypatch.setattr(synthetic_digits, "missing_synthesizers", lambda *programs: None)
    return calls


def build(corpus, out, **kw):  # noqa: F811 - corpus is the fixture's value
    args = dict(train_speakers=["ann", "bob", "cat"], test_speakers=["dan"], n_train=9, n_dev=4, n_test=4,
                dev_takes=2, seed=3)
    args.update(kw)
    fsdd.build(corpus, out, **args)


def test_every_voice_says_every_digit_once_trimmed_at_8k(tmp_path, tone_synthesizer):
    pool = synthetic_digits.synthesize_digits(tmp_path, seed=0)
    assert sorted(pool) == list(range(10)) and all(len(paths) == 4 for paths in pool.values())
    assert {(s, t) for s, t, _, _ in tone_synthesizer} == {
        (f"espeak:{v}", w) for v in ("en-us+m1", "en-us+f2", "en-gb+m1", "en-gb+f2") for w in WORD_OF}
    # each voice keeps one pitch and rate for all its digits; the draws stay inside their ranges
    per_voice = {}
    for speaker, _, rate, pitch in tone_synthesizer:
        per_voice.setdefault(speaker, set()).add((rate, pitch))
        assert synthetic_digits.RATE_WPM[0] <= rate <= synthetic_digits.RATE_WPM[1]
        assert synthetic_digits.PITCH[0] <= pitch <= synthetic_digits.PITCH[1]
    assert all(len(draws) == 1 for draws in per_voice.values())
    for digit, paths in pool.items():
        for path in paths:
            audio, fs = soundfile.read(path)
            assert fs == 8000
            # 0.2 s of silence on each side is cut down to the 10 ms / 20 ms margins
            assert 0.3 <= audio.size / fs <= 0.3 + 0.03 + 0.005
            assert dominant_digit(audio, fs) == digit


def test_voices_are_seeded():
    assert synthetic_digits.voices(0) == synthetic_digits.voices(0) != synthetic_digits.voices(1)
    assert len(synthetic_digits.voices(0)) == len(synthetic_digits.ACCENTS) * len(synthetic_digits.VARIANTS)


def test_n_synthetic_adds_training_utterances_and_changes_nothing_else(corpus, tmp_path,  # noqa: F811
                                                                      tone_synthesizer):
    build(corpus, tmp_path / "real")
    build(corpus, tmp_path / "plus", n_synthetic=5, augment=False)
    build(corpus, tmp_path / "plus_aug", n_synthetic=5)
    for name in ("train", "dev", "test_dan"):
        real, plus = (read_table(tmp_path / x / name / "wav.scp") for x in ("real", "plus_aug"))
        extra = set(plus) - set(real)
        assert len(extra) == (5 if name == "train" else 0)
        for utt in real:  # the real utterances are the same, sample for sample
            assert np.array_equal(soundfile.read(real[utt])[0], soundfile.read(plus[utt])[0])
    tables = validate(tmp_path / "plus" / "train")
    synthetic = {u: t for u, t in tables["text"].items() if tables["utt2spk"][u] == "synthetic"}
    assert len(synthetic) == 5
    for utt, text in synthetic.items():
        audio, fs = soundfile.read(tables["wav.scp"][utt])
        assert fs == 16000
        assert [dominant_digit(s, fs) for s in segments(audio, fs)] == [WORD_OF[w] for w in text.split()]


def test_bad_n_synthetic_and_missing_espeak_are_named(corpus, tmp_path, monkeypatch):  # noqa: F811
    with pytest.raises(fsdd.FsddError, match="--n_synthetic must be >= 0"):
        build(corpus, tmp_path / "neg", n_synthetic=-1)
    monkeypatch.setattr(shutil, "which", lambda program: None)
    with pytest.raises(fsdd.FsddError, match="--n_synthetic 3: .*espeak-ng not found.*apt-get install espeak-ng"):
        build(corpus, tmp_path / "none", n_synthetic=3)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (tools/install.sh installs it)")
def test_espeak_ng_voices_differ_and_are_trimmed(tmp_path, few_voices):
    pool = synthetic_digits.synthesize_digits(tmp_path, seed=0)
    for paths in pool.values():
        audios = [soundfile.read(p)[0] for p in paths]
        for audio in audios:
            assert 0.15 < audio.size / 8000 < 1.5
            level = 0.02 * np.abs(audio).max()
            assert np.abs(audio[:160]).max() > level / 4  # speech within the first 20 ms: silence was trimmed
        assert len({a.tobytes() for a in audios}) == len(audios)  # four voices, four different recordings

"""Connected-digit utterances from the Free Spoken Digit Dataset, speaker-disjoint.

    python -m espnet_mamba.recipe.corpora.fsdd --fsdd_dir ../shared/data/fsdd --out data \
        --train_speakers jackson,nicolas,yweweler --test_speakers george,lucas

FSDD holds isolated digits, ``recordings/{digit}_{speaker}_{take}.wav`` (8 kHz,
mono, 16-bit). An utterance here is 2-7 digits of ONE speaker joined with short
random pauses ("three one four"), resampled to 16 kHz. Everything is drawn
from seeded generators, one per split, so a rerun writes identical data and
the test sets do not depend on the size or augmentation of the training set.

Splits (Kaldi data dirs under OUT, audio under OUT/wav):
  train        train speakers, takes >= --dev_takes (FSDD's own train convention)
  dev          train speakers, takes <  --dev_takes (recordings never seen in train)
  test_<spk>   one set per test speaker, all of their takes (speakers never seen)

Every recording is scaled to the same RMS level first (the speakers' levels
differ by 7x in peak) and every utterance gets a faint noise floor, so pauses
are not digital silence. Training utterances are augmented (--augment true):
a per-utterance speed factor (tempo and pitch, like Kaldi's speed perturbation,
a stand-in for unseen voices), a random gain and, for half of them, white
noise at a random SNR. Optionally (--onset_clip_ms N) half of the digits in a
training utterance lose a random 0..N ms of their start: FSDD's recordings are
trimmed automatically, and for some speakers the trimming cuts off a weak
initial consonant (george's "two" starts at its vowel), so a model must not
depend on the burst alone. Dev and test are never augmented.

Optionally (--n_synthetic N) the training set gets N more utterances spoken by
synthesizer voices (espeak-ng English accents x voice variants,
`synthetic_digits.py`), augmented like the real ones: three real voices are too
few for a model to learn how much vowels vary between speakers. The digits of
one such utterance may come from different voices (the voices form one pseudo
speaker, "synthetic"). The real training utterances, dev and test are the same
with or without them.
"""

import argparse
import random
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

from espnet_mamba.audio import resample
from espnet_mamba.recipe.cli import run_reporting
from espnet_mamba.recipe.corpora.synthetic_digits import DIGIT_WORDS, SynthesisError, synthesize_digits
from espnet_mamba.recipe.data_dir import write_spk2utt, write_table

FILE_NAME = re.compile(r"^([0-9])_([A-Za-z0-9]+)_([0-9]+)\.wav$")
HOW_TO_GET = ("The Free Spoken Digit Dataset is public (CC BY-SA 4.0): "
              "https://github.com/Jakobovski/free-spoken-digit-dataset or Zenodo DOI 10.5281/zenodo.1342401. "
              "Download it and pass the folder that holds recordings/ with --fsdd_dir.")
OUT_FS = 16000
TARGET_RMS = 0.05         # about -26 dBFS
PAUSE = (0.05, 0.25)      # seconds between digits
EDGE_PAUSE = (0.05, 0.2)  # seconds before the first and after the last digit
NOISE_FLOOR_DB = -50.0    # faint floor relative to TARGET_RMS, present in every set
ONSET_CLIP_SHARE = 0.5    # share of training digits whose start is clipped when --onset_clip_ms > 0
ONSET_CLIP_MAX_FRACTION = 0.3  # never clip more than this fraction of a recording


class FsddError(Exception):
    pass


def index_recordings(fsdd_dir: Path) -> Dict[str, Dict[int, Dict[int, Path]]]:
    """speaker -> digit -> take -> path."""
    rec_dir = fsdd_dir / "recordings"
    if not rec_dir.is_dir():
        raise FsddError(f"{rec_dir} does not exist. {HOW_TO_GET}")
    table = defaultdict(lambda: defaultdict(dict))
    for path in sorted(rec_dir.iterdir()):
        m = FILE_NAME.match(path.name)
        if m:
            table[m.group(2)][int(m.group(1))][int(m.group(3))] = path
    if not table:
        raise FsddError(f"{rec_dir} holds no files named {{digit}}_{{speaker}}_{{take}}.wav. {HOW_TO_GET}")
    return table


class RecordingCache:
    """Loads, level-normalizes and resamples each recording once per speed factor."""

    def __init__(self):
        self._cache: Dict[Tuple[Path, float], np.ndarray] = {}

    def get(self, path: Path, speed: float = 1.0) -> np.ndarray:
        key = (path, speed)
        if key not in self._cache:
            try:
                audio, fs = soundfile.read(str(path), dtype="float32", always_2d=True)
            except Exception as exc:  # noqa: BLE001 - soundfile raises several types
                raise FsddError(f"cannot decode {path}: {exc}") from None
            audio = audio[:, 0]
            rms = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
            if audio.size == 0 or not np.isfinite(audio).all() or rms == 0.0:
                raise FsddError(f"{path} is empty, silent or holds NaN/Inf samples")
            audio = audio * (TARGET_RMS / rms)
            # played `speed` times faster: read as if recorded at fs*speed, then resample to 16 kHz
            self._cache[key] = resample(audio, int(round(fs * speed)), OUT_FS)
        return self._cache[key]


def clip_onset(audio: np.ndarray, max_ms: float, augment: random.Random) -> np.ndarray:
    """Drops a random 0..max_ms from the start of one recording, as an over-eager silence trimmer
    would, for ONSET_CLIP_SHARE of the calls; the vowel (the last 1 - ONSET_CLIP_MAX_FRACTION) stays."""
    if max_ms <= 0 or augment.random() >= ONSET_CLIP_SHARE:
        return audio
    cut = int(augment.uniform(0.0, max_ms) / 1000 * OUT_FS)
    return audio[min(cut, int(audio.size * ONSET_CLIP_MAX_FRACTION)):]


def make_utterance(rng: random.Random, pool: Dict[int, List[Path]], cache: RecordingCache,
                   min_digits: int, max_digits: int, augment: Optional[random.Random],
                   speed_factors: List[float], snr_range: Tuple[float, float],
                   onset_clip_ms: float = 0.0) -> Tuple[np.ndarray, List[int]]:
    """`rng` draws digits, takes and pauses; `augment` (a separate generator, or None) the
    perturbations, so switching augmentation off keeps the same digit sequences."""
    digits = [rng.randrange(10) for _ in range(rng.randint(min_digits, max_digits))]
    speed = augment.choice(speed_factors) if augment else 1.0
    pieces = [np.zeros(int(rng.uniform(*EDGE_PAUSE) * OUT_FS), np.float32)]
    for i, d in enumerate(digits):
        recording = cache.get(rng.choice(pool[d]), speed)
        pieces.append(clip_onset(recording, onset_clip_ms, augment) if augment else recording)
        gap = EDGE_PAUSE if i == len(digits) - 1 else PAUSE
        pieces.append(np.zeros(int(rng.uniform(*gap) * OUT_FS), np.float32))
    audio = np.concatenate(pieces)
    nprng = np.random.default_rng(rng.randrange(2 ** 32))
    audio = audio + nprng.standard_normal(audio.size).astype(np.float32) * (
        TARGET_RMS * 10 ** (NOISE_FLOOR_DB / 20))
    if augment:
        if augment.random() < 0.5:
            snr = augment.uniform(*snr_range)
            noise = np.random.default_rng(augment.randrange(2 ** 32)).standard_normal(audio.size)
            audio = audio + noise.astype(np.float32) * (TARGET_RMS * 10 ** (-snr / 20))
        audio = audio * 10 ** (augment.uniform(-10.0, 6.0) / 20)
    peak = float(np.abs(audio).max())
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    return audio, digits


def write_set(out: Path, name: str, rows: List[Tuple[str, np.ndarray, List[int], str]]):
    wav_dir = out / "wav" / name
    wav_dir.mkdir(parents=True, exist_ok=True)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    wav_scp, text, utt2spk = {}, {}, {}
    for utt, audio, digits, spk in rows:
        path = (wav_dir / f"{utt}.wav").resolve()
        soundfile.write(str(path), audio, OUT_FS, subtype="PCM_16")
        wav_scp[utt], text[utt], utt2spk[utt] = str(path), " ".join(DIGIT_WORDS[x] for x in digits), spk
    write_table(d / "wav.scp", wav_scp)
    write_table(d / "text", text)
    write_table(d / "utt2spk", utt2spk)
    write_spk2utt(d, utt2spk)
    seconds = sum(a.size for _, a, _, _ in rows) / OUT_FS
    print(f"{name}: {len(rows)} utterances, {seconds / 60:.1f} min, speakers: {', '.join(sorted(set(utt2spk.values())))}")


def build(fsdd_dir: Path, out: Path, train_speakers: List[str], test_speakers: List[str], n_train: int,
          n_dev: int, n_test: int, dev_takes: int = 5, min_digits: int = 2, max_digits: int = 7,
          seed: int = 0, augment: bool = True, speed_factors=(0.9, 0.95, 1.0, 1.05, 1.1),
          snr_range=(10.0, 30.0), onset_clip_ms: float = 0.0, n_synthetic: int = 0):
    table = index_recordings(fsdd_dir)
    for spk in train_speakers + test_speakers:
        if spk not in table:
            raise FsddError(f"speaker {spk!r} has no recordings in {fsdd_dir / 'recordings'}; "
                            f"speakers there: {', '.join(sorted(table))}")
        missing = [DIGIT_WORDS[d] for d in range(10) if not table[spk][d]]
        if missing:
            raise FsddError(f"speaker {spk!r} has no recordings of {', '.join(missing)} in {fsdd_dir}")
    overlap = set(train_speakers) & set(test_speakers)
    if overlap:
        raise FsddError(f"speakers {', '.join(sorted(overlap))} are in both --train_speakers and --test_speakers")
    if n_synthetic < 0:
        raise FsddError(f"--n_synthetic must be >= 0, got {n_synthetic}")
    if onset_clip_ms < 0:
        raise FsddError(f"--onset_clip_ms must be >= 0, got {onset_clip_ms}")
    if not 1 <= min_digits <= max_digits:
        raise FsddError(f"need 1 <= --min_digits <= --max_digits, got {min_digits} and {max_digits}")

    def pool(spk, keep):
        p = {d: [path for take, path in sorted(takes.items()) if keep(take)] for d, takes in table[spk].items()}
        empty = [DIGIT_WORDS[d] for d, paths in p.items() if not paths]
        if empty:
            raise FsddError(f"speaker {spk!r}: no takes of {', '.join(empty)} left for this split "
                            f"(--dev_takes {dev_takes})")
        return p

    splits = [("train", train_speakers, n_train, lambda t: t >= dev_takes, augment),
              ("dev", train_speakers, n_dev, lambda t: t < dev_takes, False)]
    splits += [(f"test_{spk}", [spk], n_test, lambda t: True, False) for spk in test_speakers]
    cache = RecordingCache()
    for name, speakers, count, keep, aug in splits:
        # one generator per split: a test set does not change with --n_train or --augment
        rng = random.Random(f"{seed}-{name}")
        aug_rng = random.Random(f"{seed}-{name}-augment") if aug else None
        pools = {spk: pool(spk, keep) for spk in speakers}
        rows = []
        for i in range(count):
            spk = speakers[i % len(speakers)]
            audio, digits = make_utterance(rng, pools[spk], cache, min_digits, max_digits, aug_rng,
                                           list(speed_factors), snr_range, onset_clip_ms)
            rows.append((f"{spk}-{name}-{i:05d}", audio, digits, spk))
        if name == "train" and n_synthetic:
            rows += synthetic_rows(out, n_synthetic, seed, cache, min_digits, max_digits, aug,
                                   list(speed_factors), snr_range, onset_clip_ms)
        write_set(out, name, rows)


def synthetic_rows(out: Path, count: int, seed: int, cache: RecordingCache, min_digits: int, max_digits: int,
                   aug: bool, *perturbation) -> List[Tuple[str, np.ndarray, List[int], str]]:
    """`count` training utterances from synthesizer voices (written under out/synthetic_digits), drawn
    from generators of their own so that the real training utterances do not change."""
    try:
        pool = synthesize_digits(out / "synthetic_digits", seed)
    except SynthesisError as exc:
        raise FsddError(f"--n_synthetic {count}: {exc}") from None
    rng = random.Random(f"{seed}-train-synthetic")
    aug_rng = random.Random(f"{seed}-train-synthetic-augment") if aug else None
    rows = []
    for i in range(count):
        audio, digits = make_utterance(rng, pool, cache, min_digits, max_digits, aug_rng, *perturbation)
        rows.append((f"synthetic-train-{i:05d}", audio, digits, "synthetic"))
    return rows


def speaker_list(arg: str) -> List[str]:
    return arg.replace(",", " ").split()


def speed_list(arg: str) -> List[float]:
    try:
        factors = [float(x) for x in speaker_list(arg)]
    except ValueError:
        raise FsddError(f"--speed_factors {arg!r}: expected numbers such as 0.9,1.0,1.1") from None
    if not factors or min(factors) <= 0:
        raise FsddError(f"--speed_factors {arg!r}: expected positive numbers such as 0.9,1.0,1.1")
    return factors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fsdd_dir", type=Path, required=True, help="folder holding FSDD's recordings/")
    p.add_argument("--out", type=Path, default=Path("data"))
    p.add_argument("--train_speakers", default="jackson,nicolas,yweweler", help="comma- or space-separated")
    p.add_argument("--test_speakers", default="george,lucas", help="comma- or space-separated")
    p.add_argument("--n_train", type=int, default=1300, help="training utterances")
    p.add_argument("--n_dev", type=int, default=150, help="dev utterances")
    p.add_argument("--n_test", type=int, default=150, help="test utterances per test speaker")
    p.add_argument("--dev_takes", type=int, default=5, help="takes 0..N-1 of train speakers go to dev")
    p.add_argument("--min_digits", type=int, default=2)
    p.add_argument("--max_digits", type=int, default=7)
    p.add_argument("--augment", default="true", choices=["true", "false"])
    p.add_argument("--speed_factors", default="0.9,0.95,1.0,1.05,1.1",
                   help="comma- or space-separated; one is drawn per training utterance")
    p.add_argument("--onset_clip_ms", type=float, default=0.0,
                   help="clip a random 0..N ms off the start of half of the training digits (0: off)")
    p.add_argument("--n_synthetic", type=int, default=0,
                   help="extra training utterances spoken by espeak-ng voices (0: off; needs espeak-ng)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    return run_reporting(lambda: build(
        a.fsdd_dir, a.out, speaker_list(a.train_speakers), speaker_list(a.test_speakers), a.n_train, a.n_dev,
        a.n_test, a.dev_takes, a.min_digits, a.max_digits, a.seed, a.augment == "true",
        speed_list(a.speed_factors), onset_clip_ms=a.onset_clip_ms, n_synthetic=a.n_synthetic), (FsddError,))


if __name__ == "__main__":
    sys.exit(main())

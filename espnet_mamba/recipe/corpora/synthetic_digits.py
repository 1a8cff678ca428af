"""Isolated English digits from synthesizer voices, as a stand-in for the speakers FSDD lacks.

FSDD's training split has three real voices; a model trained on them mishears a
fourth speaker's vowels. Synthesizer voices are cheap extra "speakers": every
espeak-ng English accent x voice variant, each with its own pitch and speaking
rate. They are written like FSDD recordings (trimmed, 8 kHz, so nothing lies
above 4 kHz that the real recordings lack) and used only for training: dev and
test stay real speech.

    synthesize_digits(Path("data/synthetic_digits"), seed=0)  # -> {digit: [path, ...]}
"""

import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile

from espnet_mamba.audio import resample
from espnet_mamba.recipe.corpora.synth_commands import missing_synthesizers, synthesize

DIGIT_WORDS = "zero one two three four five six seven eight nine".split()   # the words for digits 0-9
# English accents only: the voices add speaker variety without borrowing another language's spelling rules
ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "Andy", "adam", "john", "paul", "edward"]
PITCH = (25, 75)          # espeak-ng's 0-99 scale, drawn once per voice
RATE_WPM = (130, 190)     # speaking rate, drawn once per voice
RECORDING_FS = 8000       # FSDD's rate
TRIM_LEVEL = 0.02         # of the peak: where a trimmed recording starts and ends
TRIM_MARGIN_S = (0.01, 0.02)  # kept before the first and after the last sample above TRIM_LEVEL


class SynthesisError(Exception):
    pass


def voices(seed: int) -> List[tuple]:
    """(espeak voice, pitch, rate) for every accent x variant; pitch and rate seeded."""
    rng = random.Random(f"{seed}-synthetic-voices")
    return [(f"{accent}+{variant}", rng.randint(*PITCH), rng.randint(*RATE_WPM))
            for accent in ACCENTS for variant in VARIANTS]


def trim(audio: np.ndarray, fs: int) -> np.ndarray:
    """Cuts the leading and trailing silence espeak-ng adds, as FSDD's recordings are cut."""
    loud = np.flatnonzero(np.abs(audio) > TRIM_LEVEL * np.abs(audio).max())
    return audio[max(loud[0] - int(TRIM_MARGIN_S[0] * fs), 0): loud[-1] + int(TRIM_MARGIN_S[1] * fs)]


def synthesize_digits(out_dir: Path, seed: int = 0, nj: int = 2) -> Dict[int, List[Path]]:
    """Writes out_dir/{digit}_synthetic_{voice index}.wav for every voice and digit; returns digit -> paths."""
    problem = missing_synthesizers("espeak-ng")
    if problem:
        raise SynthesisError(f"synthetic training voices need espeak-ng: {problem}")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(v, d) for v in enumerate(voices(seed)) for d in range(10)]

    def one(job):
        (index, (voice, pitch, rate)), digit = job
        path = out_dir / f"{digit}_synthetic_{index}.wav"
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            synthesize(f"espeak:{voice}", DIGIT_WORDS[digit], raw, rate, pitch)
            audio, fs = soundfile.read(str(raw), dtype="float32")
        if audio.ndim != 1 or not np.abs(audio).max() > 0:
            raise SynthesisError(f"espeak-ng voice {voice!r} produced silence for {DIGIT_WORDS[digit]!r}")
        soundfile.write(str(path), resample(trim(audio, fs), fs, RECORDING_FS), RECORDING_FS, subtype="PCM_16")
        return digit, path

    pool: Dict[int, List[Path]] = {d: [] for d in range(10)}
    with ThreadPoolExecutor(max(1, nj)) as workers:
        for digit, path in workers.map(one, jobs):
            pool[digit].append(path)
    return pool

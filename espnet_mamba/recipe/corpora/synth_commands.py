"""A spoken-commands corpus synthesized on this machine with espeak-ng and flite.

    python -m espnet_mamba.recipe.corpora.synth_commands --out data --n_train 600 --n_valid 60 --n_test 120

Sentences come from a small command grammar ("turn on the red light in the
kitchen", "set a timer for seven minutes", ...), drawn with a fixed seed.
Speakers are synthesizer voices: espeak-ng accents x voice variants at random
speaking rates, and flite's voices. Train and valid use one set of speakers;
test uses held-out speakers (voices never heard in training). Writes Kaldi
data dirs OUT/{train,valid,test} with 16-bit WAV files under OUT/wav/.
"""

import argparse
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from espnet_mamba.recipe.data_dir import write_spk2utt, write_table

TRAIN_SPEAKERS = ["espeak:en-us+m1", "espeak:en-us+f2", "espeak:en-gb+m3", "espeak:en-gb+f1",
                  "espeak:en-gb-x-rp+m4", "espeak:en-gb-x-gbclan+f3", "espeak:en-us+m7",
                  "espeak:en-gb-x-gbcwmd+m2", "flite:kal", "flite:awb", "flite:rms"]
TEST_SPEAKERS = ["espeak:en-gb-scotland+m5", "espeak:en-us+f4", "flite:slt"]

NUMBERS = "one two three four five six seven eight nine ten twenty thirty".split()
COLORS = "red green blue white yellow purple".split()
DEVICES = "light lamp fan heater radio television".split()
ROOMS = "kitchen bedroom bathroom garage office hallway".split()
GRAMMAR = [
    lambda r: f"turn {r.choice(['on', 'off'])} the {r.choice(COLORS)} {r.choice(DEVICES)} in the {r.choice(ROOMS)}",
    lambda r: f"set a timer for {r.choice(NUMBERS)} {r.choice(['minutes', 'seconds', 'hours'])}",
    lambda r: f"play some {r.choice(['music', 'jazz', 'news', 'rain sounds'])} in the {r.choice(ROOMS)}",
    lambda r: f"what is the temperature in the {r.choice(ROOMS)}",
    lambda r: f"dim the {r.choice(DEVICES)} to {r.choice(NUMBERS)} percent",
    lambda r: f"open the {r.choice(['door', 'window', 'blinds'])} in the {r.choice(ROOMS)}",
    lambda r: f"remind me to call {r.choice(['mom', 'alex', 'the doctor', 'sam'])} at {r.choice(NUMBERS)}",
]


def sentences(n: int, rng: random.Random):
    return [rng.choice(GRAMMAR)(rng) for _ in range(n)]


def missing_synthesizers(*programs: str) -> Optional[str]:
    """None when every program is on PATH, else a message saying how to install the missing ones."""
    missing = [t for t in programs if shutil.which(t) is None]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not found. Install with 'sudo apt-get install {' '.join(missing)}' "
            f"(tools/install.sh does this when run as root).")


def synthesize(speaker: str, text: str, path: Path, rate: int, pitch: Optional[int] = None):
    """Writes `text` spoken by `speaker` ("espeak:VOICE" or "flite:VOICE") to the WAV file `path`;
    `rate` in words per minute and `pitch` (0-99, espeak-ng only; None: the voice's own) set the delivery."""
    engine, voice = speaker.split(":")
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(path), text]
        if pitch is not None:
            cmd[3:3] = ["-p", str(pitch)]
    else:
        cmd = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0 or not path.exists() or path.stat().st_size <= 44:
        raise RuntimeError(f"{engine} failed for voice {voice!r}: {out.stderr.strip()[-300:]}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("data"))
    p.add_argument("--n_train", type=int, default=600)
    p.add_argument("--n_valid", type=int, default=60)
    p.add_argument("--n_test", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2)
    a = p.parse_args(argv)
    problem = missing_synthesizers("espeak-ng", "flite")
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    rng = random.Random(a.seed)
    jobs, tables = [], {}
    for name, count, speakers in (("train", a.n_train, TRAIN_SPEAKERS), ("valid", a.n_valid, TRAIN_SPEAKERS),
                                  ("test", a.n_test, TEST_SPEAKERS)):
        wav_dir = a.out / "wav" / name
        wav_dir.mkdir(parents=True, exist_ok=True)
        rows = tables[name] = []
        for i, text in enumerate(sentences(count, rng)):
            speaker = speakers[i % len(speakers)]
            spk = speaker.replace(":", "-").replace("+", "-")
            utt = f"{spk}-{name}{i:05d}"
            path = (wav_dir / f"{utt}.wav").resolve()
            jobs.append((speaker, text, path, rng.randint(130, 190)))
            rows.append((utt, str(path), text, spk))
    with ThreadPoolExecutor(max(1, a.nj)) as pool:
        list(pool.map(lambda job: synthesize(*job), jobs))
    for name, rows in tables.items():
        d = a.out / name
        d.mkdir(parents=True, exist_ok=True)
        write_table(d / "wav.scp", {u: w for u, w, _, _ in rows})
        write_table(d / "text", {u: t for u, _, t, _ in rows})
        utt2spk = {u: s for u, _, _, s in rows}
        write_table(d / "utt2spk", utt2spk)
        write_spk2utt(d, utt2spk)
        print(f"{name}: {len(rows)} utterances, speakers: {', '.join(sorted(set(utt2spk.values())))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

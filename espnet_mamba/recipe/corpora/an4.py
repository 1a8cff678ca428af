"""CMU AN4 (census database): download, verify, Kaldi data dirs in ESPnet's an4 convention.

    python -m espnet_mamba.recipe.corpora.an4 download --dest downloads [--url URL] [--sha256 HEX]
    python -m espnet_mamba.recipe.corpora.an4 prepare --an4_root downloads/an4 --data_dir data

download: ``an4_sphere.tar.gz`` from CMU with the resumable fetch the LibriSpeech recipe
uses (``corpora.download``), extracted once into DEST/an4. CMU publishes no checksum for
the archive, so integrity is checked on the content: tar verifies gzip's CRC-32 and length
while extracting (a corrupt archive is deleted, with an error saying to rerun), and
``prepare`` checks every SPHERE file against its own header (sample rate, channel count,
sample count, ``sample_checksum``). ``--sha256`` pins the archive's digest in addition (the
digest of the downloaded file is printed so that it can be pinned; one third-party script
records sha256 a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12 for NVIDIA's
mirror of the archive, not confirmed against CMU's file here, so not enforced).

prepare: ESPnet's egs2/an4 convention, so that results compare with its published numbers:
``<s>``/``</s>`` removed, words upper-case, utterance id ``speaker-prefix-suffix`` made from
the transcription's ``(prefix-speaker-suffix)``, utt2spk the speaker, sorted by utterance
id; data/train (948), data/train_dev = its first 100 utterances, data/train_nodev = the other
848, data/test (130, 10 speakers not in train). wav.scp points at the .sph files: libsndfile
reads NIST SPHERE (no sph2pipe), and so does sox for speed perturbation.
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile

from espnet_mamba.recipe.cli import run_reporting
from espnet_mamba.recipe.corpora.download import CorpusError, digest, download_file, extract_once
from espnet_mamba.recipe.data_dir import write_spk2utt, write_table

URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"
SPLITS = {"train": "an4_clstk", "test": "an4test_clstk"}   # transcription name -> wav folder
N_DEV = 100          # ESPnet's an4 recipe: the first 100 training utterances are train_dev
FS = 16000


def parse_line(line: str) -> Tuple[str, str, str, str]:
    """'<s> WORDS </s> (an251-fash-b)' -> (utt id 'fash-an251-b', 'WORDS', speaker 'fash', 'an251-fash-b')."""
    line = line.strip()
    if not line.endswith(")") or "(" not in line:
        raise ValueError(f"expected '<s> WORDS </s> (ID)', got {line!r}")
    words, source = line[:-1].rsplit("(", 1)
    parts = source.split("-")
    if len(parts) != 3:
        raise ValueError(f"utterance id {source!r} is not PREFIX-SPEAKER-SUFFIX")
    prefix, speaker, suffix = parts
    tokens = [w for w in words.split() if w not in ("<s>", "</s>")]
    return f"{speaker}-{prefix}-{suffix}", " ".join(tokens).upper(), speaker, source


def read_sphere_header(path: Path) -> Dict[str, str]:
    """The NIST SPHERE header's fields as strings ('sample_rate': '16000', ...)."""
    with path.open("rb") as f:
        head = f.read(1024)
    lines = head.decode("ascii", errors="replace").split("\n")
    if not lines or lines[0].strip() != "NIST_1A":
        raise CorpusError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    fields = {}
    for line in lines[2:]:
        line = line.strip()
        if line == "end_head":
            break
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2]
    return fields


def check_sphere(path: Path) -> int:
    """Decode a SPHERE file with libsndfile and check it against its header; returns the sample count."""
    header = read_sphere_header(path)
    try:
        x, fs = soundfile.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        raise CorpusError(f"{path}: libsndfile cannot decode it ({str(exc).strip()})") from None
    problems = []
    if fs != FS or header.get("sample_rate", str(FS)) != str(FS):
        problems.append(f"sample rate {fs} Hz (header {header.get('sample_rate')}), expected {FS}")
    if x.shape[1] != 1:
        problems.append(f"{x.shape[1]} channels, expected 1")
    if "sample_count" in header and int(header["sample_count"]) != x.shape[0]:
        problems.append(f"{x.shape[0]} samples decoded, header says {header['sample_count']}")
    if "sample_checksum" in header and x.shape[1] == 1:
        checksum = int(x[:, 0].astype(np.int64).sum() % 65536)
        if checksum != int(header["sample_checksum"]):
            problems.append(f"sample checksum {checksum}, header says {header['sample_checksum']}")
    if problems:
        raise CorpusError(f"{path}: {'; '.join(problems)}: the file is corrupt; delete the corpus "
                          f"folder and rerun stage 1 to extract it again")
    return x.shape[0]


def _check_root(an4_root: Path):
    needed = [an4_root / "etc" / f"an4_{s}.transcription" for s in SPLITS] + \
             [an4_root / "wav" / folder for folder in SPLITS.values()]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise CorpusError(f"{an4_root} is not an AN4 corpus folder: {', '.join(missing)} not found. "
                          f"Pass --an4_root the folder extracted from an4_sphere.tar.gz (the one that "
                          f"holds etc/ and wav/), or leave --an4_root out to download it from {URL}")


def read_split(an4_root: Path, split: str, verify_audio: bool = True) -> Dict[str, Dict[str, str]]:
    """{'wav.scp': {...}, 'text': {...}, 'utt2spk': {...}} of one AN4 split (train or test)."""
    transcription = an4_root / "etc" / f"an4_{split}.transcription"
    wav, text, utt2spk = {}, {}, {}
    for n, line in enumerate(transcription.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            utt, words, speaker, source = parse_line(line)
        except ValueError as exc:
            raise CorpusError(f"{transcription}:{n}: {exc}") from None
        sph = an4_root / "wav" / SPLITS[split] / speaker / f"{source}.sph"
        if not sph.is_file():
            raise CorpusError(f"missing audio {sph} (listed in {transcription}:{n}): the corpus is "
                              f"incomplete; extract an4_sphere.tar.gz again")
        if utt in wav:
            raise CorpusError(f"{transcription}:{n}: utterance {source} appears twice")
        if not words:
            raise CorpusError(f"{transcription}:{n}: empty transcript for {source}")
        if verify_audio:
            check_sphere(sph)
        wav[utt], text[utt], utt2spk[utt] = str(sph.resolve()), words, speaker
    if not wav:
        raise CorpusError(f"{transcription} lists no utterances")
    return {"wav.scp": wav, "text": text, "utt2spk": utt2spk}


def write_dir(d: Path, tables: Dict[str, Dict[str, str]], keys: List[str]):
    d.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_table(d / name, {k: table[k] for k in keys})
    write_spk2utt(d, {k: tables["utt2spk"][k] for k in keys})


def prepare(an4_root: Path, data_dir: Path, n_dev: int = N_DEV, verify_audio: bool = True,
            max_words: int = 0):
    """Write data_dir/{train,train_nodev,train_dev,test}. ``max_words`` > 0 keeps only utterances of
    at most that many words in train_nodev, train_dev and test, after the split (a reduced corpus
    for quick end-to-end checks: 1 keeps the 95 + 9 + 8 one-word commands such as YES, STOP)."""
    _check_root(an4_root)
    train = read_split(an4_root, "train", verify_audio)
    test = read_split(an4_root, "test", verify_audio)
    shared = set(train["utt2spk"].values()) & set(test["utt2spk"].values())
    if shared:
        raise CorpusError(f"speakers {sorted(shared)} are in both train and test: not the AN4 split")
    utts = sorted(train["wav.scp"])          # Kaldi order (byte order of the ids), as ESPnet sorts
    if not 0 < n_dev < len(utts):
        raise CorpusError(f"--n_dev {n_dev}: must be between 1 and {len(utts) - 1}")
    def short(tables, keys):
        return [k for k in keys if max_words <= 0 or len(tables["text"][k].split()) <= max_words]

    write_dir(data_dir / "train", train, utts)
    write_dir(data_dir / "train_dev", train, short(train, utts[:n_dev]))
    write_dir(data_dir / "train_nodev", train, short(train, utts[n_dev:]))
    write_dir(data_dir / "test", test, short(test, sorted(test["wav.scp"])))
    for name, tables in (("train_nodev", train), ("train_dev", train), ("test", test)):
        keys = (data_dir / name / "wav.scp").read_text().splitlines()
        spk = {tables["utt2spk"][k.split()[0]] for k in keys}
        print(f"an4 {name}: {len(keys)} utterances, {len(spk)} speakers -> {data_dir / name}")


def download(dest: Path, url: str = URL, sha256: str = "") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = download_file(url, dest / "an4_sphere.tar.gz", sha256.lower() or None, algorithm="sha256")
    try:
        extract_once(archive, dest, dest / "an4" / ".extracted")
    except CorpusError as exc:
        archive.unlink()
        raise CorpusError(f"{exc}\nThe archive is corrupt (gzip CRC or length check failed); it was "
                          f"deleted, rerun to fetch it again") from None
    print(f"an4: {archive} (sha256 {digest(archive, 'sha256')}) extracted under {dest / 'an4'}")
    return dest / "an4"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download")
    d.add_argument("--dest", type=Path, required=True)
    d.add_argument("--url", default=URL)
    d.add_argument("--sha256", default="", help="expected SHA-256 of the archive (default: not pinned)")
    pr = sub.add_parser("prepare")
    pr.add_argument("--an4_root", type=Path, required=True, help="folder holding etc/ and wav/")
    pr.add_argument("--data_dir", type=Path, default=Path("data"))
    pr.add_argument("--n_dev", type=int, default=N_DEV)
    pr.add_argument("--max_words", type=int, default=0,
                    help="keep only utterances of at most N words in train_nodev/train_dev/test (0: all)")
    pr.add_argument("--verify_audio", choices=("true", "false"), default="true",
                    help="decode every SPHERE file and check it against its header (a few seconds)")
    a = p.parse_args(argv)
    actions = {"download": lambda: download(a.dest, a.url, a.sha256),
               "prepare": lambda: prepare(a.an4_root, a.data_dir, a.n_dev, a.verify_audio == "true", a.max_words)}
    return run_reporting(actions[a.cmd], (CorpusError,))


if __name__ == "__main__":
    sys.exit(main())

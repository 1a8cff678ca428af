"""LibriSpeech (OpenSLR resource 12; Mini LibriSpeech, resource 31): download, verify, extract,
Kaldi data dirs.

    python -m espnet_mamba.recipe.corpora.librispeech download --parts dev-clean ... --dest downloads
    python -m espnet_mamba.recipe.corpora.librispeech prepare  --corpus downloads/LibriSpeech \
        --parts dev-clean ... --data_dir data

download: each PART.tar.gz is fetched from --base_url with HTTP range requests,
so an interrupted download resumes where it stopped (a .part file is kept);
the MD5 is checked against the mirror's md5sum.txt; a mismatch deletes the
file and stops with an error; extraction writes a marker only when tar
finished, so a half-extracted part is extracted again (helpers shared with the
other corpora in corpora.download).
prepare: data/<part with underscores>/{wav.scp,text,utt2spk,spk2utt} on the
.flac files (ESPnet reads FLAC directly). A missing transcript or audio file
is an error naming it.
"""

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List

from espnet_mamba.recipe.cli import run_reporting
from espnet_mamba.recipe.corpora.download import CorpusError, download_file, extract_once, md5  # noqa: F401
from espnet_mamba.recipe.data_dir import write_spk2utt, write_table

BASE_URL = "https://www.openslr.org/resources/12"
PARTS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
         "test-clean", "test-other")
# Mini LibriSpeech (OpenSLR resource 31): same layout, prepared the same way
MINI_PARTS = ("train-clean-5", "dev-clean-2")


def _check_parts(parts: List[str]):
    unknown = [p for p in parts if p not in PARTS + MINI_PARTS]
    if unknown:
        raise CorpusError(f"unknown LibriSpeech part {unknown[0]!r}; expected some of "
                          f"{', '.join(PARTS + MINI_PARTS)}")


def fetch_checksums(base_url: str) -> Dict[str, str]:
    url = f"{base_url}/md5sum.txt"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise CorpusError(f"cannot fetch checksums {url}: {exc}. Check the network or --base_url; "
                          f"or download the archives yourself and pass --librispeech_dir") from None
    return {line.split()[1]: line.split()[0] for line in text.splitlines() if len(line.split()) == 2}


def extract(archive: Path, dest: Path, part: str):
    extract_once(archive, dest, dest / "LibriSpeech" / f".{part}.extracted")


def download(parts: List[str], dest: Path, base_url: str):
    _check_parts(parts)
    dest.mkdir(parents=True, exist_ok=True)
    checksums = fetch_checksums(base_url)
    for part in parts:
        name = f"{part}.tar.gz"
        if name not in checksums:
            raise CorpusError(f"{base_url}/md5sum.txt has no entry for {name}")
        archive = download_file(f"{base_url}/{name}", dest / name, checksums[name])
        extract(archive, dest, part)
        print(f"{part}: downloaded, verified and extracted under {dest / 'LibriSpeech'}")


def prepare(corpus: Path, parts: List[str], data_dir: Path):
    _check_parts(parts)
    for part in parts:
        src = corpus / part
        if not src.is_dir():
            raise CorpusError(f"{src} not found: download it (stage 1 without --librispeech_dir) or "
                              f"point --librispeech_dir at the folder that contains {part}/")
        wav, text, utt2spk = {}, {}, {}
        chapters = sorted(p for p in src.glob("*/*") if p.is_dir())
        if not chapters:
            raise CorpusError(f"{src} has no speaker/chapter folders: is the extraction complete?")
        for chapter in chapters:
            spk, chap = chapter.parent.name, chapter.name
            trans = chapter / f"{spk}-{chap}.trans.txt"
            if not trans.is_file():
                raise CorpusError(f"missing transcript {trans}: the corpus is incomplete; delete "
                                  f"{src} and rerun stage 1 to extract it again")
            for line in trans.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                utt, words = line.split(maxsplit=1)
                flac = chapter / f"{utt}.flac"
                if not flac.is_file():
                    raise CorpusError(f"missing audio {flac} (listed in {trans}): the corpus is "
                                      f"incomplete; delete {src} and rerun stage 1")
                wav[utt] = str(flac.resolve())
                text[utt] = words
                utt2spk[utt] = f"{spk}-{chap}"
        out = data_dir / part.replace("-", "_")
        out.mkdir(parents=True, exist_ok=True)
        for name, table in (("wav.scp", wav), ("text", text), ("utt2spk", utt2spk)):
            write_table(out / name, table)
        write_spk2utt(out, utt2spk)
        print(f"{part}: {len(wav)} utterances -> {out}")


def combine(sources: List[Path], dest: Path):
    """Kaldi combine_data: concatenate data dirs (e.g. train_960, dev)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        lines = []
        for src in sources:
            lines += (src / name).read_text(encoding="utf-8").splitlines()
        (dest / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download")
    d.add_argument("--parts", nargs="+", required=True)
    d.add_argument("--dest", type=Path, required=True)
    d.add_argument("--base_url", default=BASE_URL)
    pr = sub.add_parser("prepare")
    pr.add_argument("--corpus", type=Path, required=True, help="folder holding dev-clean/ etc.")
    pr.add_argument("--parts", nargs="+", required=True)
    pr.add_argument("--data_dir", type=Path, default=Path("data"))
    c = sub.add_parser("combine")
    c.add_argument("dest", type=Path)
    c.add_argument("sources", type=Path, nargs="+")
    a = p.parse_args(argv)
    actions = {"download": lambda: download(a.parts, a.dest, a.base_url),
               "prepare": lambda: prepare(a.corpus, a.parts, a.data_dir),
               "combine": lambda: combine(a.sources, a.dest)}
    return run_reporting(actions[a.cmd], (CorpusError,))


if __name__ == "__main__":
    sys.exit(main())

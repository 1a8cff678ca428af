"""Mini LibriSpeech: a speaker-disjoint train/dev/test split of a prepared LibriSpeech part.

    python -m espnet_mamba.recipe.corpora.mini_librispeech split --src data/train_clean_5 \
        --speakers_txt LibriSpeech/SPEAKERS.TXT --data_dir data [--n_test_per_sex 2] [--n_dev_per_sex 1]

The part itself is prepared by the LibriSpeech recipe's own code (``espnet_mamba.recipe.
corpora.librispeech prepare``, FLAC + .trans.txt); this only divides its speakers, by a fixed rule
made before any model was trained: within each sex (SPEAKERS.TXT), speakers by numeric ID,
highest first; the first ``n_test_per_sex`` go to test, the next ``n_dev_per_sex`` to dev,
the rest to train. So test and dev hold as many women as men and no speaker is in two
splits. Writes data/{train,dev,test} and data/local/speaker_split.txt (split, speaker, sex,
utterances).
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List

from espnet_mamba.recipe.cli import run_reporting
from espnet_mamba.recipe.corpora.download import CorpusError
from espnet_mamba.recipe.data_dir import read_table, write_spk2utt, write_table

SPLITS = ("train", "dev", "test")


def read_sexes(speakers_txt: Path) -> Dict[str, str]:
    """{speaker id: 'F' or 'M'} from LibriSpeech's SPEAKERS.TXT ('ID | SEX | SUBSET | MINUTES | NAME')."""
    if not speakers_txt.is_file():
        raise CorpusError(f"{speakers_txt} not found: the speaker split needs LibriSpeech's SPEAKERS.TXT "
                          f"(it is in the LibriSpeech folder of every part's archive)")
    sexes = {}
    for line in speakers_txt.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[1] in ("F", "M"):
            sexes[fields[0]] = fields[1]
    return sexes


def split_speakers(speakers: List[str], sexes: Dict[str, str], n_test_per_sex: int = 2,
                   n_dev_per_sex: int = 1) -> Dict[str, List[str]]:
    unknown = sorted(s for s in speakers if s not in sexes)
    if unknown:
        raise CorpusError(f"speakers {unknown} are not in SPEAKERS.TXT")
    out = {s: [] for s in SPLITS}
    for sex in ("F", "M"):
        ranked = sorted((s for s in speakers if sexes[s] == sex), key=int, reverse=True)
        if len(ranked) <= n_test_per_sex + n_dev_per_sex:
            raise CorpusError(f"only {len(ranked)} speakers of sex {sex}: need more than "
                              f"{n_test_per_sex} (test) + {n_dev_per_sex} (dev) to leave some for training")
        out["test"] += ranked[:n_test_per_sex]
        out["dev"] += ranked[n_test_per_sex:n_test_per_sex + n_dev_per_sex]
        out["train"] += ranked[n_test_per_sex + n_dev_per_sex:]
    return {k: sorted(v, key=int) for k, v in out.items()}


def split(src: Path, speakers_txt: Path, data_dir: Path, n_test_per_sex: int = 2,
          n_dev_per_sex: int = 1) -> Dict[str, List[str]]:
    tables = {name: read_table(src / name) for name in ("wav.scp", "text", "utt2spk")}
    speaker_of = {utt: utt.split("-")[0] for utt in tables["wav.scp"]}
    sexes = read_sexes(speakers_txt)
    chosen = split_speakers(sorted(set(speaker_of.values())), sexes, n_test_per_sex, n_dev_per_sex)
    rows = []
    for name in SPLITS:
        keys = sorted(u for u, s in speaker_of.items() if s in chosen[name])
        d = data_dir / name
        d.mkdir(parents=True, exist_ok=True)
        for table_name, table in tables.items():
            write_table(d / table_name, {k: table[k] for k in keys})
        write_spk2utt(d, {k: tables["utt2spk"][k] for k in keys})
        for spk in chosen[name]:
            rows.append(f"{name} {spk} {sexes[spk]} {sum(1 for s in speaker_of.values() if s == spk)}")
        print(f"mini_librispeech {name}: {len(keys)} utterances, speakers "
              f"{' '.join(f'{s}({sexes[s]})' for s in chosen[name])} -> {d}")
    (data_dir / "local").mkdir(parents=True, exist_ok=True)
    (data_dir / "local" / "speaker_split.txt").write_text("\n".join(rows) + "\n")
    return chosen


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("--src", type=Path, required=True, help="prepared data dir of the part")
    s.add_argument("--speakers_txt", type=Path, required=True)
    s.add_argument("--data_dir", type=Path, default=Path("data"))
    s.add_argument("--n_test_per_sex", type=int, default=2)
    s.add_argument("--n_dev_per_sex", type=int, default=1)
    a = p.parse_args(argv)
    return run_reporting(lambda: split(a.src, a.speakers_txt, a.data_dir, a.n_test_per_sex, a.n_dev_per_sex),
                         (CorpusError,))


if __name__ == "__main__":
    sys.exit(main())

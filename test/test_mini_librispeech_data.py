"""The Mini LibriSpeech recipe's data preparation on the shared corpus (fast): the LibriSpeech
recipe's data path on train-clean-5, then the speaker split named in the recipe's README.

Needs ../shared/data/mini_librispeech beside the project (or MINI_LIBRISPEECH_DIR, the folder
holding train-clean-5/ and SPEAKERS.TXT); skipped with a message otherwise.
"""

import os
from pathlib import Path

import pytest
import soundfile

from cli_pipeline import copy_recipe
from cli_pipeline import local_data as data_sh

from espnet_mamba.recipe.corpora import mini_librispeech
from espnet_mamba.recipe.corpora.download import CorpusError
from espnet_mamba.recipe.data_dir import read_table, validate

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs2" / "mini_librispeech" / "asr1"
CORPUS = Path(os.environ.get("MINI_LIBRISPEECH_DIR",
                             ROOT.parent / "shared" / "data" / "mini_librispeech" / "LibriSpeech"))
# the split the rule gives on the shared 16 speakers (README.md names the same ones)
EXPECTED = {"train": ["19", "32", "118", "226", "332", "669", "1737", "1867", "1898", "1970"],
            "dev": ["3526", "6848"], "test": ["4680", "6272", "7312", "8629"]}

pytestmark = pytest.mark.skipif(not (CORPUS / "train-clean-5").is_dir(),
                                reason=f"Mini LibriSpeech not found at {CORPUS} (set MINI_LIBRISPEECH_DIR)")


def recipe_copy(tmp: Path) -> Path:
    return copy_recipe(tmp, "mini_librispeech")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    r = recipe_copy(tmp_path_factory.mktemp("mini"))
    out = data_sh(r, "--librispeech_dir", str(CORPUS))
    assert out.returncode == 0, out.stdout + out.stderr
    return r / "data"


def test_speaker_disjoint_split_balanced_by_sex(prepared):
    sexes = mini_librispeech.read_sexes(CORPUS / "SPEAKERS.TXT")
    spk = {}
    for name in ("train", "dev", "test"):
        validate(prepared / name)
        spk[name] = sorted({u.split("-")[0] for u in read_table(prepared / name / "wav.scp")}, key=int)
    assert spk == EXPECTED
    assert not (set(spk["train"]) & set(spk["dev"]) or set(spk["train"]) & set(spk["test"])
                or set(spk["dev"]) & set(spk["test"]))
    for name in ("dev", "test"):
        assert sum(sexes[s] == "F" for s in spk[name]) == sum(sexes[s] == "M" for s in spk[name])
    n = {name: len(read_table(prepared / name / "wav.scp")) for name in ("train", "dev", "test")}
    assert n == {"train": 456, "dev": 96, "test": 185} and sum(n.values()) == 737
    readme = (RECIPE / "README.md").read_text()
    for name, speakers in EXPECTED.items():
        assert all(s in readme for s in speakers)


def test_texts_and_audio_come_from_the_librispeech_path(prepared):
    text = read_table(prepared / "test" / "text")
    wav = read_table(prepared / "test" / "wav.scp")
    utt = sorted(text)[0]
    spk, chap, _ = utt.split("-")
    trans = (CORPUS / "train-clean-5" / spk / chap / f"{spk}-{chap}.trans.txt").read_text().splitlines()
    assert f"{utt} {text[utt]}" in trans
    assert wav[utt].endswith(f"{utt}.flac")
    info = soundfile.info(wav[utt])
    assert info.samplerate == 16000 and info.channels == 1
    assert read_table(prepared / "test" / "utt2spk")[utt] == f"{spk}-{chap}"


def test_the_rule_does_not_depend_on_listing_order():
    sexes = mini_librispeech.read_sexes(CORPUS / "SPEAKERS.TXT")
    speakers = [s for split in EXPECTED.values() for s in split]
    assert mini_librispeech.split_speakers(list(reversed(speakers)), sexes) == EXPECTED
    with pytest.raises(CorpusError, match="only 6 speakers of sex M"):
        mini_librispeech.split_speakers(speakers, sexes, n_test_per_sex=4, n_dev_per_sex=2)


def test_missing_speakers_txt_and_corpus_are_clear_errors(tmp_path):
    r = recipe_copy(tmp_path)
    fake = tmp_path / "LibriSpeech"
    fake.mkdir()
    (fake / "train-clean-5").symlink_to(CORPUS / "train-clean-5")
    out = data_sh(r, "--librispeech_dir", str(fake))
    assert out.returncode != 0 and f"{fake}/SPEAKERS.TXT not found" in out.stderr
    out = data_sh(r, "--librispeech_dir", str(tmp_path / "nowhere"))
    assert out.returncode != 0 and "train-clean-5 not found" in out.stderr

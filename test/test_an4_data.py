"""The AN4 recipe's data preparation (egs2/an4/asr1/local/data.sh) on the shared corpus, its
download path against a mirror on 127.0.0.1, its run.sh and its configs (fast: seconds each).

Needs the CMU AN4 corpus at ../shared/data/an4 beside the project (or AN4_ROOT); the tests that
read it are skipped with a message otherwise.
"""

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cli_pipeline import copy_recipe
from cli_pipeline import local_data as data_sh

from espnet_mamba.recipe.corpora import an4
from espnet_mamba.recipe.data_dir import read_table, validate

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "asr1"
RECIPE = ROOT / "egs2" / "an4" / "asr1"
AN4 = Path(os.environ.get("AN4_ROOT", ROOT.parent / "shared" / "data" / "an4"))
needs_an4 = pytest.mark.skipif(not (AN4 / "etc" / "an4_train.transcription").is_file(),
                               reason=f"AN4 not found at {AN4} (set AN4_ROOT to run this test)")


def recipe_copy(tmp: Path) -> Path:
    return copy_recipe(tmp, "an4")


def speakers(d: Path):
    return set(read_table(d / "utt2spk").values())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if not (AN4 / "etc" / "an4_train.transcription").is_file():
        pytest.skip(f"AN4 not found at {AN4} (set AN4_ROOT to run this test)")
    r = recipe_copy(tmp_path_factory.mktemp("an4"))
    out = data_sh(r, "--an4_root", str(AN4))
    assert out.returncode == 0, out.stdout + out.stderr
    return r / "data"


def test_espnet_split_counts_and_speakers(prepared):
    for name in ("train", "train_nodev", "train_dev", "test"):
        validate(prepared / name)
    n = {name: len(read_table(prepared / name / "wav.scp"))
         for name in ("train", "train_nodev", "train_dev", "test")}
    assert n == {"train": 948, "train_nodev": 848, "train_dev": 100, "test": 130}
    train = read_table(prepared / "train" / "wav.scp")
    # ESPnet's train_dev: the first 100 utterances of the sorted training set; train_nodev the rest
    assert sorted(read_table(prepared / "train_dev" / "wav.scp")) == sorted(train)[:100]
    assert sorted(read_table(prepared / "train_nodev" / "wav.scp")) == sorted(train)[100:]
    assert len(speakers(prepared / "train")) == 74 and len(speakers(prepared / "test")) == 10
    assert not speakers(prepared / "train") & speakers(prepared / "test")
    # every utterance id starts with its speaker (Kaldi's sorting rule)
    for name in ("train", "test"):
        assert all(u.startswith(s + "-") for u, s in read_table(prepared / name / "utt2spk").items())


def test_texts_follow_espnets_normalisation(prepared):
    train = read_table(prepared / "train" / "text")
    test = read_table(prepared / "test" / "text")
    # '<s> U M N Y H SIX </s> (an255-fash-b)' -> 'fash-an255-b U M N Y H SIX'
    assert train["fash-an255-b"] == "U M N Y H SIX"
    assert train["fash-an251-b"] == "YES"
    assert test["fcaw-an406-b"] == "RUBOUT G M E F THREE NINE"
    for text in list(train.values()) + list(test.values()):
        assert text and text == text.upper() and "<s>" not in text and "</s>" not in text
        assert "(" not in text and "  " not in text


def test_sphere_is_decoded_at_16k_without_sph2pipe(prepared):
    from espnet2.fileio.sound_scp import SoundScpReader

    wav = read_table(prepared / "test" / "wav.scp")
    assert all(p.endswith(".sph") and Path(p).is_file() for p in wav.values())
    path = Path(wav["fcaw-an406-b"])
    header = an4.read_sphere_header(path)
    assert header["sample_rate"] == "16000" and header["channel_count"] == "1"
    n = an4.check_sphere(path)       # decoded samples match the header's count and checksum
    assert n == int(header["sample_count"])
    # what training reads: ESPnet's own loader on the data dir
    fs, x = SoundScpReader(str(prepared / "test" / "wav.scp"), dtype="float32")["fcaw-an406-b"]
    assert fs == 16000 and x.ndim == 1 and x.shape[0] == n and 0.01 < np.abs(x).max() <= 1.0


def test_one_word_subset(tmp_path):
    if not (AN4 / "etc" / "an4_train.transcription").is_file():
        pytest.skip(f"AN4 not found at {AN4}")
    an4.prepare(AN4, tmp_path, verify_audio=False, max_words=1)
    n = {name: len(read_table(tmp_path / name / "text")) for name in ("train_nodev", "train_dev", "test")}
    assert n == {"train_nodev": 95, "train_dev": 9, "test": 8}
    assert all(len(t.split()) == 1 for t in read_table(tmp_path / "test" / "text").values())


def test_bad_an4_root_is_a_clear_error(tmp_path):
    r = recipe_copy(tmp_path)
    out = data_sh(r, "--an4_root", str(tmp_path / "nowhere"))
    assert out.returncode != 0
    assert f"{tmp_path / 'nowhere'} is not an AN4 corpus folder" in out.stderr
    assert "/etc/an4_train.transcription" in out.stderr and "not found" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (r / "data" / "train" / "wav.scp").exists()


@needs_an4
def test_missing_and_corrupt_audio_are_named(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    missing = corpus / "wav/an4_clstk/fash/an253-fash-b.sph"
    missing.unlink()
    with pytest.raises(an4.CorpusError, match=f"missing audio {missing}"):
        an4.prepare(corpus, tmp_path / "data", n_dev=1)
    corpus = tiny_corpus(tmp_path / "corpus2")
    bad = corpus / "wav/an4_clstk/fash/an251-fash-b.sph"
    raw = bytearray(bad.read_bytes())
    raw[2000:2010] = bytes(10)       # ten sample bytes zeroed: the header's checksum no longer holds
    bad.write_bytes(bytes(raw))
    with pytest.raises(an4.CorpusError, match="sample checksum .* header says"):
        an4.prepare(corpus, tmp_path / "data2", n_dev=1)


# ---- download ------------------------------------------------------------------------------

TRAIN_IDS = ["an251-fash-b", "an253-fash-b", "an254-fash-b"]
TEST_IDS = ["an406-fcaw-b"]


def tiny_corpus(dest: Path) -> Path:
    """An AN4-shaped folder holding 3 training and 1 test utterance copied from the real corpus."""
    lines = {s: (AN4 / "etc" / f"an4_{s}.transcription").read_text().splitlines() for s in ("train", "test")}
    for split, ids in (("train", TRAIN_IDS), ("test", TEST_IDS)):
        (dest / "etc").mkdir(parents=True, exist_ok=True)
        keep = [line for line in lines[split] if line.split("(")[-1].rstrip(")") in ids]
        (dest / "etc" / f"an4_{split}.transcription").write_text("\n".join(keep) + "\n")
        for source in ids:
            spk = source.split("-")[1]
            wav = dest / "wav" / an4.SPLITS[split] / spk
            wav.mkdir(parents=True, exist_ok=True)
            shutil.copy(AN4 / "wav" / an4.SPLITS[split] / spk / f"{source}.sph", wav)
    return dest


def tiny_archive(tmp: Path) -> bytes:
    corpus = tiny_corpus(tmp / "src" / "an4")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(corpus, arcname="an4")
    return buf.getvalue()


@needs_an4
def test_download_resumes_extracts_and_prepares(tmp_path):
    from test_librispeech_data import Mirror

    archive = tiny_archive(tmp_path)
    mirror = Mirror({"an4_sphere.tar.gz": archive}, truncate_first={"an4_sphere.tar.gz"})
    try:
        r = recipe_copy(tmp_path / "run")
        out = data_sh(r, "--url", f"{mirror.url}/an4_sphere.tar.gz", "--n_dev", "1")
        assert out.returncode == 0, out.stdout + out.stderr
        ranges = [rng for name, rng in mirror.requests if name == "an4_sphere.tar.gz"]
        assert ranges[0] is None and ranges[1].startswith("bytes=")   # resumed, not restarted
        assert "interrupted" in out.stderr and "sha256 " in out.stdout
        assert (r / "downloads" / "an4" / "etc" / "an4_train.transcription").is_file()
        assert read_table(r / "data" / "train_dev" / "text") == {"fash-an251-b": "YES"}
        assert read_table(r / "data" / "test" / "text") == {"fcaw-an406-b": "RUBOUT G M E F THREE NINE"}
        # rerun: the verified archive and its extraction are kept, nothing is fetched again
        before = len(mirror.requests)
        assert data_sh(r, "--url", f"{mirror.url}/an4_sphere.tar.gz", "--n_dev", "1").returncode == 0
        assert len(mirror.requests) == before
    finally:
        mirror.close()


@needs_an4
def test_corrupt_or_unpinned_download_is_deleted_with_an_error(tmp_path):
    import hashlib

    from test_librispeech_data import Mirror

    archive = tiny_archive(tmp_path)
    mirror = Mirror({"an4_sphere.tar.gz": archive}, corrupt={"an4_sphere.tar.gz"})
    try:
        r = recipe_copy(tmp_path / "run")
        out = data_sh(r, "--url", f"{mirror.url}/an4_sphere.tar.gz", "--n_dev", "1")
        assert out.returncode != 0
        assert "archive is corrupt" in out.stderr and "rerun to fetch it again" in out.stderr
        assert not list((r / "downloads").glob("an4_sphere.tar.gz*"))
    finally:
        mirror.close()
    mirror = Mirror({"an4_sphere.tar.gz": archive})
    try:
        r = recipe_copy(tmp_path / "run2")
        out = data_sh(r, "--url", f"{mirror.url}/an4_sphere.tar.gz", "--sha256", "0" * 64)
        assert out.returncode != 0
        assert f"checksum mismatch (sha256 {hashlib.sha256(archive).hexdigest()}" in out.stderr
        assert not list((r / "downloads").glob("an4_sphere.tar.gz*"))
    finally:
        mirror.close()


# ---- run.sh and configs -----------------------------------------------------------------------

RECORDER = """#!/usr/bin/env bash
line=""
while [ $# -gt 0 ]; do line+="${1#--}=${2}|"; shift 2; done
echo "${line}" >> calls.log
"""


@pytest.mark.parametrize("recipe,sets,nbpe", [("an4", ("train_nodev", "train_dev", "train_dev test"), "30"),
                                               ("mini_librispeech", ("train", "dev", "dev test"), "300")])
def test_run_sh_trains_every_model_on_the_recipes_sets(tmp_path, recipe, sets, nbpe):
    r = copy_recipe(tmp_path, recipe)
    (r / "asr.sh").unlink()
    (r / "asr.sh").write_text(RECORDER)
    (r / "asr.sh").chmod(0o755)
    out = subprocess.run(["bash", "run.sh", "--stage", "12", "--stop_stage", "12", "--seeds", "0 1"],
                         cwd=r, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    calls = [dict(kv.split("=", 1) for kv in line.strip("|").split("|"))
             for line in (r / "calls.log").read_text().splitlines()]
    assert [c["asr_tag"] for c in calls] == [f"train_asr_{m}_bpe{nbpe}{s}" for s in ("", "_seed1")
                                             for m in ("mamba", "conmamba", "transformer", "conformer")]
    assert [c["asr_args"].split() for c in calls][-1] == ["--seed", "1"]
    for c in calls:
        assert (c["train_set"], c["valid_set"], c["test_sets"]) == sets
        assert (c["token_type"], c["nbpe"], c["speed_perturb_factors"]) == ("bpe", nbpe, "0.9 1.0 1.1")
        assert c["asr_config"] == "conf/train_schedule.yaml" and (r / c["asr_config"]).is_file()
        model = c["asr_tag"].split("_")[2]
        assert c["asr_model_config"] == f"../../../conf/tuning/m/train_asr_{model}.yaml"
        assert (r / c["asr_model_config"]).resolve() == ROOT / "conf" / "tuning" / "m" / f"train_asr_{model}.yaml"


@pytest.mark.parametrize("recipe", ["an4", "mini_librispeech"])
def test_configs_are_matched_in_size_and_share_the_schedule(recipe):
    from espnet_mamba.recipe.model_size import count

    # one schedule for every model (the recipe's conf/train_schedule.yaml): only the zoo's model differs
    schedule = ROOT / "egs2" / recipe / "asr1" / "conf" / "train_schedule.yaml"
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(27)] + ["<sos/eos>"]
    zoo = sorted((ROOT / "conf" / "tuning" / "m").glob("train_asr_*.yaml"))
    sizes = {c.stem: count(c, tokens, schedule) for c in zoo}
    assert set(sizes) == {f"train_asr_{m}" for m in ("mamba", "conmamba", "transformer", "conformer")}
    totals = [s["total"] for s in sizes.values()]
    encoders = [s["encoder"] for s in sizes.values()]
    assert max(totals) / min(totals) < 1.1 and max(encoders) / min(encoders) < 1.05, sizes


@pytest.mark.parametrize("recipe", ["an4", "mini_librispeech"])
def test_recipe_is_wired_to_the_engine(recipe):
    r = ROOT / "egs2" / recipe / "asr1"
    for name in ("asr.sh", "run_models.sh", "utils", "path.sh", "cmd.sh"):
        assert (r / name).resolve() == (TEMPLATE / name).resolve()
    assert os.access(r / "run.sh", os.X_OK) and os.access(r / "local" / "data.sh", os.X_OK)
    assert len((r / "README.md").read_text().splitlines()) <= 150

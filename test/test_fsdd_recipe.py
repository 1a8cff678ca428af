"""The FSDD real-speech recipe, reduced to its Mamba model (slow).

Proves learning from real human speech: the Mamba model must recognize connected
digits of a speaker it never heard at under 30% WER. Needs the Free Spoken Digit
Dataset at ../shared/data/fsdd beside the project (or FSDD_DIR); skipped with a
message otherwise.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from cli_pipeline import copy_recipe

ROOT = Path(__file__).resolve().parents[1]
FSDD = Path(os.environ.get("FSDD_DIR", ROOT.parent / "shared" / "data" / "fsdd"))
# the CI budget: 2 cores, under 10 minutes for this test. Only the Mamba model is trained: the
# recipe's several-model path (sizes, comparison table) is what test_demo_recipe.py runs with two.
REDUCED = {"n_train": 800, "n_dev": 40, "n_test": 40, "max_epoch": 5}

pytestmark = pytest.mark.slow


def wer(exp: Path, test_set: str) -> float:
    summary = exp / "decode_decode_asr_valid.acc.ave" / test_set / "score_wer" / "summary.json"
    return json.loads(summary.read_text())["Err"]


def test_reduced_recipe_learns_unseen_speakers(tmp_path):
    if not (FSDD / "recordings").is_dir():
        pytest.skip(f"Free Spoken Digit Dataset not found at {FSDD} (set FSDD_DIR to run this test)")
    r = copy_recipe(tmp_path, "fsdd_digits")
    data_opts = (f"--fsdd_dir {FSDD} --n_train {REDUCED['n_train']} --n_dev {REDUCED['n_dev']} "
                 f"--n_test {REDUCED['n_test']}")
    out = subprocess.run(["bash", "run.sh", "--models", "mamba", "--max_epoch",
                          str(REDUCED["max_epoch"]), "--local_data_opts", data_opts, "--stop_stage", "13"],
                         cwd=r, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert "conf/tuning/s/train_asr_mamba.yaml" in out.stdout.split("Stage 1:")[0]  # sizes printed first
    rates = {"mamba": {spk: wer(r / "exp" / "asr_train_asr_mamba_word", f"test_{spk}")
                       for spk in ("george", "lucas")}}
    print(f"\nFSDD reduced run, WER % on unseen speakers: {rates}")
    # speakers are disjoint: none of the test speakers is in train or dev
    for split in ("train", "dev"):
        speakers = {line.split()[1] for line in (r / "data" / split / "utt2spk").read_text().splitlines()}
        assert speakers == {"jackson", "nicolas", "yweweler"}
    assert min(rates["mamba"].values()) < 30.0, rates
    assert (r / "exp" / "comparison.md").read_text().count("test_george") >= 1

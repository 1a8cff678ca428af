"""The FSDD recipe's run.sh options, with the stage engine replaced by a stub that records its calls."""

import subprocess
from pathlib import Path

from cli_pipeline import copy_recipe

RECORDER = """#!/usr/bin/env bash
# stands in for asr.sh: one line per call, its options as KEY=VALUE
line=""
while [ $# -gt 0 ]; do line+="${1#--}=${2}|"; shift 2; done
echo "${line}" >> calls.log
"""


def run_with_recorder(tmp_path: Path, *args: str):
    r = copy_recipe(tmp_path, "fsdd_digits")
    (r / "asr.sh").unlink()
    (r / "asr.sh").write_text(RECORDER)
    (r / "asr.sh").chmod(0o755)
    # stage 12 only: no model-size printout, no comparison table, only the per-model calls
    out = subprocess.run(["bash", "run.sh", "--stage", "12", "--stop_stage", "12", *args],
                         cwd=r, capture_output=True, text=True)
    calls = []
    if (r / "calls.log").exists():
        calls = [dict(kv.split("=", 1) for kv in line.strip("|").split("|"))
                 for line in (r / "calls.log").read_text().splitlines()]
    return out, calls


def test_one_run_per_model_and_seed_each_in_its_own_exp_dir(tmp_path):
    out, calls = run_with_recorder(tmp_path, "--models", "mamba conmamba", "--seeds", "0 2", "--max_epoch", "3")
    assert out.returncode == 0, out.stderr
    zoo = "../../../conf/tuning/s"
    assert [(c["asr_model_config"], c["asr_tag"], c["asr_args"]) for c in calls] == [
        (f"{zoo}/train_asr_mamba.yaml", "train_asr_mamba_word", "--max_epoch 3 --seed 0"),
        (f"{zoo}/train_asr_conmamba.yaml", "train_asr_conmamba_word", "--max_epoch 3 --seed 0"),
        (f"{zoo}/train_asr_mamba.yaml", "train_asr_mamba_word_seed2", "--max_epoch 3 --seed 2"),
        (f"{zoo}/train_asr_conmamba.yaml", "train_asr_conmamba_word_seed2", "--max_epoch 3 --seed 2"),
    ]
    for c in calls:
        assert c["asr_config"] == "conf/train_schedule.yaml" and c["test_sets"] == "test_george test_lucas"
        assert c["local_data_opts"] == "--test_speakers george,lucas "   # stage 1's fingerprint as before
        assert (c["token_type"], c["feats_normalize"]) == ("word", "utterance_mvn")


def test_default_is_seed_0_in_the_plain_exp_dir(tmp_path):
    out, calls = run_with_recorder(tmp_path, "--models", "transformer")
    assert out.returncode == 0, out.stderr
    assert [(c["asr_tag"], c["asr_args"].split()) for c in calls] == [("train_asr_transformer_word", ["--seed", "0"])]


def test_bad_seed_is_refused_before_any_stage_runs(tmp_path):
    out, calls = run_with_recorder(tmp_path, "--seeds", "0 one")
    assert out.returncode != 0
    assert "--seeds '0 one': 'one' is not a non-negative integer" in out.stderr
    assert calls == []

"""cmd_backend=slurm for real: the demo's stages 10-13 through a one-node Slurm cluster
started on this machine (slow; skipped with the reason where Slurm cannot start)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_pipeline import copy_recipe
from slurm_cluster import Cluster, Unavailable

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                 reason="espeak-ng/flite not installed (tools/install.sh installs them)")]


@pytest.fixture
def slurm(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as why:
        pytest.skip(f"Slurm cannot start here: {why}")
    yield cluster
    cluster.stop()


def test_sbatch_runs_a_job_and_waits(slurm, tmp_path):
    out = subprocess.run(["bash", str(ROOT / "egs2/TEMPLATE/asr1/utils/slurm.pl"), "JOB=1:2",
                          str(tmp_path / "job.JOB.log"), "echo", "job", "JOB", "of", "$SLURM_JOB_ID"],
                         env={**slurm.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for job in (1, 2):
        text = (tmp_path / f"job.{job}.log").read_text()
        assert f"job {job} of" in text
    assert slurm.jobs_completed() == 2


def test_demo_stages_10_to_13_through_slurm(slurm, tmp_path):
    r = copy_recipe(tmp_path, "synth_commands")
    small = ["--n_train", "24", "--n_valid", "6", "--n_test", "6", "--max_epoch", "1",
             "--models", "mamba"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prep = subprocess.run(["bash", "run.sh", "--stop_stage", "5", *small], cwd=r, env=env,
                          capture_output=True, text=True)
    assert prep.returncode == 0, (prep.stdout + prep.stderr)[-4000:]
    out = subprocess.run(["bash", "run.sh", "--stage", "10", "--stop_stage", "13", *small], cwd=r,
                         env={**slurm.env, "PYTHONPATH": str(ROOT), "cmd_backend": "slurm"},
                         capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    exp = r / "exp" / "asr_train_asr_mamba_char"
    assert "|decode" in (exp / "RESULTS.md").read_text()
    # stats (--nj 2), training (ESPnet's launcher, through slurm.pl), decoding (--inference_nj 2)
    assert slurm.jobs_completed() >= 5

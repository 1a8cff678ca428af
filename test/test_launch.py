import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def launch(args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "espnet_mamba.recipe.launch", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_local_jobs_logs_and_failure_report(tmp_path):
    ok = launch(["JOB=1:3", str(tmp_path / "ok.JOB.log"), "echo", "job JOB"])
    assert ok.returncode == 0
    for j in (1, 2, 3):
        log = (tmp_path / f"ok.{j}.log").read_text()
        assert f"job {j}" in log and "# Ended (code 0)" in log and "max_rss_mb=" in log
    bad = launch(["JOB=1:4", str(tmp_path / "bad.JOB.log"), "echo oops-JOB; exit $((JOB % 2))"])
    assert bad.returncode == 1
    assert "2 of 4 jobs failed (first: job 1, exit 1)" in bad.stderr and "oops-1" in bad.stderr


def test_local_jobs_share_the_cpus(tmp_path):
    """Jobs that run at once get OMP_NUM_THREADS = CPUs // jobs (>= 1, <= a set OMP_NUM_THREADS);
    one job keeps the caller's setting."""
    cpus = len(os.sched_getaffinity(0))
    out = launch(["JOB=1:2", str(tmp_path / "t.JOB.log"), "echo threads=$OMP_NUM_THREADS"],
                 env={"OMP_NUM_THREADS": "64"})
    assert out.returncode == 0
    for j in (1, 2):
        assert f"threads={max(1, cpus // 2)}" in (tmp_path / f"t.{j}.log").read_text()
    launch(["JOB=1:2", str(tmp_path / "u.JOB.log"), "echo threads=$OMP_NUM_THREADS"], env={"OMP_NUM_THREADS": "1"})
    assert "threads=1" in (tmp_path / "u.1.log").read_text()
    launch(["JOB=1:1", str(tmp_path / "v.JOB.log"), "echo threads=$OMP_NUM_THREADS"], env={"OMP_NUM_THREADS": "7"})
    assert "threads=7" in (tmp_path / "v.1.log").read_text()


def test_slurm_backend_submits_one_blocking_sbatch_per_job(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "sbatch_calls"
    # stand-in sbatch: records its options, runs the job script from stdin into --output
    (bindir / "sbatch").write_text(f"""#!/usr/bin/env bash
echo "$@" >> {calls}
out=""; for a in "$@"; do case $a in --output=*) out=${{a#--output=}};; esac; done
bash /dev/stdin > "$out" 2>&1
""")
    (bindir / "sbatch").chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    out = launch(["--backend", "slurm", "--gpu", "2", "--mem", "8G", "--num_nodes", "2", "JOB=1:2",
                  str(tmp_path / "s.JOB.log"), "echo", "hello", "JOB"], env=env)
    assert out.returncode == 0, out.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and all("--wait" in line and "--gres=gpu:2" in line and "--mem=8G" in line
                                   and "--nodes=2" in line for line in lines)
    assert "hello 2" in (tmp_path / "s.2.log").read_text()
    failing = launch(["--backend", "slurm", str(tmp_path / "f.log"), "exit 3"], env=env)
    assert failing.returncode == 1 and "1 of 1 jobs failed" in failing.stderr


def test_espnet_launcher_accepts_our_run_pl(tmp_path):
    """espnet2.bin.launch calls `utils/run.pl --gpu N LOG cmd...` for single-node training."""
    template = ROOT / "egs2" / "TEMPLATE" / "asr1"
    out = subprocess.run([sys.executable, "-m", "espnet2.bin.launch", "--cmd", "utils/run.pl",
                          "--log", str(tmp_path / "train.log"), "--ngpu", "0", "--",
                          "echo", "training"], cwd=template, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    log = (tmp_path / "train.log").read_text()
    assert "training --ngpu 0 --multiprocessing_distributed" in log

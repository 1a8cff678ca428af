"""Run a command as N jobs, Kaldi's run.pl / slurm.pl interface.

    launch.py --backend local|slurm [--gpu N] [--num_threads N] [--num_nodes N] [--mem M]
              [--max_jobs_run N] [JOB=1:N] LOGFILE COMMAND...

"JOB" in LOGFILE and COMMAND is replaced by the job number. Every job writes
its own log (command, start, end, exit code). The launcher exits non-zero if
any job fails, and prints which ones and the tail of the first failed log.

local: jobs run on this machine, at most --max_jobs_run at a time (default:
the number of CPUs). Jobs that run at once share the CPUs this process may use:
each gets OMP_NUM_THREADS/MKL_NUM_THREADS = CPUs // jobs at once (at least 1, at
most an OMP_NUM_THREADS already set). Two decoding jobs with two threads each on
two cores spend their time waiting for each other: the demo's decoding RTF was
1.58 that way and 0.64 with one thread per job. slurm: each job is an `sbatch --wait` submission
(--gres=gpu:N, --cpus-per-task, --nodes, --mem), so the call still blocks
until all jobs end. ESPnet's espnet2.bin.launch calls us as utils/run.pl or
utils/slurm.pl (it picks the multi-node code path by that file name).
"""

import argparse
import datetime
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")


def parse(argv: List[str]):
    p = argparse.ArgumentParser(prog="launch.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["local", "slurm"], default="local")
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--num_threads", type=int, default=1)
    p.add_argument("--num_nodes", type=int, default=1)
    p.add_argument("--mem", default=None, help="memory per job for Slurm, e.g. 8G")
    p.add_argument("--max_jobs_run", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sbatch_opts", default="", help="extra sbatch options, e.g. '-p gpu'")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    rest = list(a.rest)
    var, first, last = None, 1, 1
    if rest and JOB_RANGE.match(rest[0]):
        var, first, last = JOB_RANGE.match(rest.pop(0)).groups()
        first, last = int(first), int(last)
        if last < first:
            p.error(f"empty job range {var}={first}:{last}")
    if len(rest) < 2:
        p.error("expected [JOB=1:N] LOGFILE COMMAND...")
    a.var, a.first, a.last = var, first, last
    a.log, a.command = rest[0], rest[1:]
    return a


def _substitute(text: str, var: Optional[str], job: int) -> str:
    return text if var is None else re.sub(rf"\b{re.escape(var)}\b", str(job), text)


def _command_string(words: List[str]) -> str:
    # a single argument is taken as a shell command line (Kaldi style: "cmd1 | cmd2")
    return words[0] if len(words) == 1 else " ".join(shlex.quote(w) for w in words)


def threads_per_job(concurrent: int) -> int:
    """CPUs this process may use, shared among ``concurrent`` jobs; never more than a set OMP_NUM_THREADS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cpus // max(1, concurrent))
    try:
        return max(1, min(share, int(os.environ["OMP_NUM_THREADS"])))
    except (KeyError, ValueError):
        return share


def run_local(command: str, log: Path, threads: Optional[int] = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    env = None
    if threads is not None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with log.open("w", encoding="utf-8") as f:
        f.write(f"# {command}\n# Started at {datetime.datetime.now():%c}\n#\n")
        f.flush()
        proc = subprocess.Popen(["bash", "-c", command], stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this job's own peak memory, not the launcher's
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        f.write(f"# Accounting: time={time.time() - start:.2f} max_rss_mb={usage.ru_maxrss / 1024:.1f}\n"
                f"# Ended (code {code}) at {datetime.datetime.now():%c}, elapsed time "
                f"{int(time.time() - start)} seconds\n")
    return code


def run_slurm(command: str, log: Path, a) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    sbatch = ["sbatch", "--wait", "--parsable", f"--output={log}", f"--nodes={a.num_nodes}",
              f"--cpus-per-task={a.num_threads}", "--ntasks-per-node=1"]
    if a.gpu > 0:
        sbatch.append(f"--gres=gpu:{a.gpu}")
    if a.mem:
        sbatch.append(f"--mem={a.mem}")
    sbatch += shlex.split(a.sbatch_opts)
    script = f"#!/bin/bash\necho '# {command}'\nset -o pipefail\n{command}\n"
    try:
        return subprocess.run(sbatch, input=script, text=True).returncode
    except FileNotFoundError:
        print("launch.py: --backend slurm needs sbatch on PATH (is this a Slurm login node?)",
              file=sys.stderr)
        return 127


def main(argv=None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    jobs = list(range(a.first, a.last + 1))
    command = _command_string(a.command)

    workers = len(jobs) if a.backend == "slurm" else max(1, min(a.max_jobs_run, len(jobs)))
    threads = threads_per_job(workers) if workers > 1 else None   # one job keeps the caller's setting

    def one(job):
        cmd, log = _substitute(command, a.var, job), Path(_substitute(a.log, a.var, job))
        code = run_slurm(cmd, log, a) if a.backend == "slurm" else run_local(cmd, log, threads)
        return job, log, code

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, jobs))
    failed = [(job, log, code) for job, log, code in results if code != 0]
    if failed:
        job, log, code = failed[0]
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:] if log.exists() else []
        print(f"launch.py: {len(failed)} of {len(jobs)} jobs failed (first: job {job}, exit {code}); "
              f"log {log}:\n" + "\n".join("    " + line for line in tail), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

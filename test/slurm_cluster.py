"""A one-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd
on 127.0.0.1 with a configuration written to a temporary directory.

Needs Debian's slurm-wlm and munge (.ci/run installs them) and root (the daemons
run as the current user, which Slurm requires to be root to start jobs as
others; tests only submit as that user). ``start`` returns the environment
in which sbatch/srun/sinfo talk to it, or raises ``Unavailable`` with the reason.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo")


class Unavailable(RuntimeError):
    """Slurm cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("MemTotal:"))


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.procs = []
        self.env = None

    def _log_tail(self) -> str:
        tails = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                tails.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-8:]))
        return "\n".join(tails)

    def start(self, timeout: float = 60.0) -> dict:
        missing = [d for d in DAEMONS if shutil.which(d) is None]
        if missing:
            raise Unavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
        if os.geteuid() != 0:
            raise Unavailable("slurmd must run as root to start jobs")
        r = self.root
        (r / "state").mkdir(parents=True)
        (r / "spool").mkdir()
        r.chmod(0o700)
        key = r / "munge.key"
        subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        sock = r / "munge.sock"
        subprocess.run(["munged", "--force", f"--key-file={key}", f"--socket={sock}",
                        f"--pid-file={r / 'munged.pid'}", f"--log-file={r / 'munged.log'}",
                        f"--seed-file={r / 'munge.seed'}"], check=True, capture_output=True)
        conf = r / "slurm.conf"
        conf.write_text("\n".join([
            "ClusterName=espnetmambatest",
            "SlurmctldHost=localhost(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={sock}",
            f"StateSaveLocation={r / 'state'}", f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}", f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'slurmctld.log'}", f"SlurmdLogFile={r / 'slurmd.log'}",
            # no cgroups, no accounting daemon: what a container allows
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "MpiDefault=none",
            "ReturnToService=2",
            f"NodeName=localnode NodeAddr=127.0.0.1 NodeHostname={socket.gethostname()} "
            f"CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN",
            "PartitionName=debug Nodes=localnode Default=YES MaxTime=INFINITE State=UP", ""]))
        self.env = {**os.environ, "SLURM_CONF": str(conf)}
        for cmd in (["slurmctld", "-D", "-i"], ["slurmd", "-D", "-N", "localnode"]):
            self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True,
                                 text=True)
            if out.stdout.strip() == "idle":
                return self.env
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.5)
        self.stop()
        raise Unavailable(f"the Slurm node did not become idle within {timeout:.0f} s\n"
                          + self._log_tail())

    def jobs_completed(self) -> int:
        """Jobs slurmctld saw finish (its log has one '... JobId=N done' line each)."""
        log = self.root / "slurmctld.log"
        if not log.exists():
            return 0
        return len(re.findall(r"_job_complete: JobId=\d+ done", log.read_text()))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs = []
        pid_file = self.root / "munged.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass

"""ESPnet's trainer with DDP on a CPU (gloo, two processes started the way an external
launcher starts them), one epoch of the tiny test corpus: both ranks end with the same
parameters, and they differ from the initial ones (issue 31)."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from cli_pipeline import ROOT, collect_stats, make_corpus, train_args

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_ddp_epoch_keeps_ranks_identical(tmp_path):
    root = make_corpus(tmp_path / "corpus", n_train=16, n_valid=4)
    stats = collect_stats(root, ROOT / "test/configs/mamba_mamba.yaml")
    exp, out = tmp_path / "exp", tmp_path / "params"
    out.mkdir()
    args = [str(a) for a in train_args(root, ROOT / "test/configs/mamba_mamba.yaml", stats, exp, max_epoch=1)[1:]]
    args += ["--dist_backend", "gloo", "--multiprocessing_distributed", "false"]
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2")
    procs = [subprocess.Popen([sys.executable, str(ROOT / "test/ddp_espnet_worker.py"), str(out), *args],
                              cwd=root, env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(2)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=600)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail("a DDP rank hung for 600 s")
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-4000:]
    # ESPnet prefixes rank 0's log lines with host:rank/world_size (other ranks log warnings only)
    assert ":0/2] " in logs[0] and "The training was finished at 1 epochs" in logs[0], logs[0][-3000:]
    rank0, rank1 = torch.load(out / "rank0.pth"), torch.load(out / "rank1.pth")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # what the worker saved is what ESPnet's rank 0 saved as the epoch's model
    saved = torch.load(exp / "1epoch.pth")
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)

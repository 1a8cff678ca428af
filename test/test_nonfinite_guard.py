"""The non-finite-loss guard (issue 31, finding 6): the same on a CPU as on a GPU, and the
same decision on every DDP rank."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import espnet_mamba  # noqa: F401  (registers)
from espnet2.tasks.asr import ASRTask
from espnet_mamba.ops.selective_scan import CHECK_FINITE_ENV

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]


def _model(patience=2):
    torch.manual_seed(0)
    args = ASRTask.get_parser().parse_args(["--config", str(ROOT / "test/configs/mamba_mamba.yaml")])
    args.token_list = TOKENS
    args.model_conf = dict(args.model_conf, nonfinite_loss_patience=patience)
    return ASRTask.build_model(args)


def _batch(nan=False):
    speech = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    if nan:
        speech[1, 50] = float("nan")
    return speech, torch.tensor([4000, 3000]), torch.tensor([[3, 4], [5, -1]]), torch.tensor([2, 1])


@pytest.mark.parametrize("env", [None, "0"], ids=["cpu-default", "gpu-default"])
def test_nan_in_training_counts_towards_patience_on_every_device(env, monkeypatch):
    """On a CPU the scan's own check used to raise at the first NaN; on a GPU (where it is
    off by default, like ESPNET_MAMBA_CHECK_FINITE=0 here) the guard counted. Now both count."""
    if env is None:
        monkeypatch.delenv(CHECK_FINITE_ENV, raising=False)
    else:
        monkeypatch.setenv(CHECK_FINITE_ENV, env)
    model = _model(patience=2).train()
    loss, stats, _ = model(*_batch(nan=True))
    assert not torch.isfinite(loss) and model._nonfinite_in_a_row == 1
    loss, _, _ = model(*_batch())  # a good batch resets the count
    assert torch.isfinite(loss) and model._nonfinite_in_a_row == 0
    model(*_batch(nan=True))
    with pytest.raises(FloatingPointError, match="2 training batches in a row had a NaN/Inf loss"):
        model(*_batch(nan=True))
    assert os.environ.get(CHECK_FINITE_ENV) == env  # the guard put the environment back


def test_outside_training_the_scan_still_names_the_nan(monkeypatch):
    monkeypatch.delenv(CHECK_FINITE_ENV, raising=False)
    model = _model().eval()
    with torch.no_grad(), pytest.raises(ValueError, match="contains NaN or Inf"):
        model(*_batch(nan=True))


def test_an_explicit_check_finite_setting_is_respected_in_training(monkeypatch):
    monkeypatch.setenv(CHECK_FINITE_ENV, "1")
    model = _model().train()
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        model(*_batch(nan=True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ranks(tmp_path, nan_rank, world=2, timeout=240):
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(ROOT / "test/ddp_guard_worker.py"), str(rank), str(world),
                               str(port), str(tmp_path), str(nan_rank)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(world)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"a DDP rank hung for {timeout} s (the guard must stop every rank together)")
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-3000:]
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(world)]


def test_ddp_nan_on_one_rank_stops_every_rank_with_the_same_error(tmp_path):
    """Two gloo ranks on a CPU; rank 1's data turns NaN. Before, rank 1 alone raised and
    rank 0 waited in the next all-reduce (with NCCL until its timeout)."""
    results = _run_ranks(tmp_path, nan_rank=1)
    assert [r["stopped_at"] for r in results] == [2, 2]
    assert all("2 training batches in a row had a NaN/Inf loss on rank 1 " in r["error"] for r in results)
    common = [r["error"].split(" (last on this rank")[0] for r in results]  # then each rank's own losses
    assert common[0] == common[1]
    # the NaN gradients reached both ranks through DDP's all-reduce; both skipped the step alike
    assert results[0]["checksum"] == results[1]["checksum"]


def test_ddp_without_nan_trains_identically_on_both_ranks(tmp_path):
    results = _run_ranks(tmp_path, nan_rank=-1)
    assert [r["stopped_at"] for r in results] == [None, None]
    assert results[0]["checksum"] == results[1]["checksum"]

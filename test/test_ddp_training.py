"""ESPnet's trainer with DDP on a CPU (gloo, two processes started the way an external
launcher starts them, RANK / WORLD_SIZE in the environment), on the tiny tone corpus
(issue 31): one epoch leaves both ranks with the same parameters; a NaN utterance that
reaches one rank stops both with the same error instead of leaving one waiting."""

import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from cli_pipeline import ROOT, collect_stats, make_corpus, train_args

pytestmark = pytest.mark.slow
CONFIG = ROOT / "test/configs/mamba_mamba.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_corpus(tmp_path_factory.mktemp("corpus"), n_train=16, n_valid=4)
    return root, collect_stats(root, CONFIG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_two_ranks(root, stats, exp, out, extra=(), timeout=600):
    """Both ranks' exit status and output; rank 0's log lines carry ESPnet's host:0/2 prefix."""
    args = [str(a) for a in train_args(root, CONFIG, stats, exp, max_epoch=1)[1:]]
    args += ["--dist_backend", "gloo", "--multiprocessing_distributed", "false", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               WORLD_SIZE="2")
    procs = [subprocess.Popen([sys.executable, str(ROOT / "test/ddp_espnet_worker.py"), str(out), *args],
                              cwd=root, env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(2)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"a DDP rank hung for {timeout} s")
    return [proc.returncode for proc in procs], logs


def test_two_rank_ddp_epoch_keeps_ranks_identical(corpus, tmp_path):
    root, stats = corpus
    exp, out = tmp_path / "exp", tmp_path / "params"
    out.mkdir()
    codes, logs = _train_two_ranks(root, stats, exp, out)
    for code, log in zip(codes, logs):
        assert code == 0, log[-4000:]
    # ESPnet prefixes rank 0's log lines with host:rank/world_size (other ranks log warnings only)
    assert ":0/2] " in logs[0] and "The training was finished at 1 epochs" in logs[0], logs[0][-3000:]
    rank0, rank1 = torch.load(out / "rank0.pth"), torch.load(out / "rank1.pth")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # what the worker saved is what ESPnet's rank 0 saved as the epoch's model
    saved = torch.load(exp / "1epoch.pth")
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)


def test_nan_utterance_on_one_rank_stops_both_ranks_alike(corpus, tmp_path):
    root, stats = corpus
    wav_scp = (root / "data/train/wav.scp").read_text().splitlines()
    nan_wav = tmp_path / "nan.wav"
    wave, fs = soundfile.read(wav_scp[5].split()[1], dtype="float32")
    wave[100:200] = np.nan
    soundfile.write(nan_wav, wave, fs, subtype="FLOAT")
    data = tmp_path / "corpus"
    (data / "data").mkdir(parents=True)
    os.symlink(root / "tokens.txt", data / "tokens.txt")
    for name in ("train", "valid"):
        (data / "data" / name).mkdir()
        for f in ("text", "utt2spk", "wav.scp"):
            text = (root / "data" / name / f).read_text()
            if name == "train" and f == "wav.scp":
                key = wav_scp[5].split()[0]
                text = text.replace(wav_scp[5], f"{key} {nan_wav}")
            (data / "data" / name / f).write_text(text)
    exp, out = tmp_path / "exp", tmp_path / "params"
    out.mkdir()
    codes, logs = _train_two_ranks(data, stats, exp, out,
                                   extra=["--model_conf", "nonfinite_loss_patience=1"])
    assert codes[0] != 0 and codes[1] != 0, "\n".join(log[-2000:] for log in logs)
    errors = [re.findall(r"FloatingPointError: (1 training batches in a row had a NaN/Inf loss on rank \d)",
                         log) for log in logs]
    assert errors[0] and errors[0] == errors[1], "\n".join(log[-3000:] for log in logs)
    assert "Connection closed by peer" not in logs[0] + logs[1]

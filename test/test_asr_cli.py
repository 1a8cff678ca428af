"""End to end through ESPnet's real command lines on generated audio (slow: minutes).

collect stats -> train -> decode (joint CTC/attention beam search) ->
Speech2Text in-process -> pack -> Speech2Text from the packed model, for
two models that differ only in their YAML encoder/decoder keys; and a
training run killed after epoch 1 that resumes at epoch 2.
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_pipeline import ROOT, collect_stats, decode, make_corpus, run, train_args

CONFIGS = ROOT / "test" / "configs"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_corpus(tmp_path_factory.mktemp("corpus"))
    # statistics depend only on the frontend, which both configs share
    return root, collect_stats(root, CONFIGS / "mamba_mamba.yaml")


def best_text(speech2text, wav):
    out = speech2text(torch.tensor(wav, dtype=torch.float32))
    if isinstance(out, tuple):  # (n-best, intermediate CTC results) when interctc is on
        out = out[0]
    return out[0][0]


def _differing_keys(a: Path, b: Path):
    import yaml

    ya, yb = yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text())
    return {k for k in set(ya) | set(yb) if ya.get(k) != yb.get(k)}


def test_configs_differ_only_in_model_keys():
    assert _differing_keys(CONFIGS / "mamba_mamba.yaml", CONFIGS / "conmamba_transformer.yaml") <= {
        "encoder", "encoder_conf", "decoder", "decoder_conf", "model", "model_conf"}


@pytest.mark.parametrize("config", ["mamba_mamba.yaml", "conmamba_transformer.yaml"])
def test_train_decode_pack_speech2text(corpus, config, tmp_path):
    root, stats = corpus
    exp = tmp_path / "exp"
    run(train_args(root, CONFIGS / config, stats, exp, max_epoch=2), cwd=root, log=tmp_path / "train.log")
    assert (exp / "2epoch.pth").exists() and (exp / "valid.acc.best.pth").exists()

    hyps = decode(root, exp, "valid.acc.best.pth", tmp_path / "decode")
    keys = [line.split()[0] for line in (root / "data/valid/wav.scp").read_text().splitlines()]
    assert sorted(hyps) == sorted(keys)

    # in-process Speech2Text, once espnet_mamba is imported
    import espnet_mamba  # noqa: F401
    import soundfile
    from espnet2.bin.asr_inference import Speech2Text

    wav, _ = soundfile.read(str(root / "data/valid/wav" / f"{keys[0]}.wav"))
    s2t = Speech2Text(str(exp / "config.yaml"), str(exp / "valid.acc.best.pth"), device="cpu",
                      beam_size=2, ctc_weight=0.3, nbest=1)
    text = best_text(s2t, wav)
    assert text == hyps[keys[0]]

    # packed model, unpacked and loaded the way a user receives it
    packed = tmp_path / "model.zip"
    run(["espnet2.bin.pack", "asr", "--asr_train_config", exp / "config.yaml",
         "--asr_model_file", exp / "valid.acc.best.pth", "--option", stats / "train/feats_stats.npz",
         "--outpath", packed], cwd=root)
    from espnet2.main_funcs.pack_funcs import unpack

    files = unpack(str(packed), str(tmp_path / "unpacked"))
    s2t_packed = Speech2Text(files["asr_train_config"], files["asr_model_file"], device="cpu",
                             beam_size=2, ctc_weight=0.3, nbest=1)
    assert best_text(s2t_packed, wav) == text


def test_resume_after_kill_continues_from_next_epoch(corpus, tmp_path):
    root, stats = corpus
    exp = tmp_path / "exp"
    args = train_args(root, CONFIGS / "mamba_mamba.yaml", stats, exp, max_epoch=3)
    env_path = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", *map(str, args)], cwd=root,
                            env={**__import__("os").environ, "PYTHONPATH": env_path},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (exp / "1epoch.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (exp / "1epoch.pth").exists() and not (exp / "3epoch.pth").exists()
    log = tmp_path / "resumed.log"
    run(args, cwd=root, log=log)
    text = log.read_text()
    started = [int(m) for m in re.findall(r"(\d+)/3epoch started", text)]
    assert started and started[0] >= 2 and 1 not in started, started
    assert (exp / "3epoch.pth").exists()

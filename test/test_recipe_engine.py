"""The stage engine (egs2/TEMPLATE/asr1/asr.sh) end to end on a generated corpus (slow)."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "asr1"


def make_recipe(tmp: Path) -> Path:
    recipe = tmp / "egs2" / "tones" / "asr1"
    (recipe / "local").mkdir(parents=True)
    (recipe / "conf").mkdir()
    for name in ("asr.sh", "utils", "path.sh", "cmd.sh"):
        (recipe / name).symlink_to(TEMPLATE / name)
    (recipe / "local" / "data.sh").write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f"python3 -c \"import sys; sys.path.insert(0, '{ROOT / 'test'}'); from pathlib import Path; "
        "from cli_pipeline import make_corpus; make_corpus(Path('.'), n_train=12, n_valid=4, n_test=4)\"\n")
    (recipe / "local" / "data.sh").chmod(0o755)
    (recipe / "conf" / "train.yaml").write_text((ROOT / "test/configs/mamba_mamba.yaml").read_text())
    (recipe / "conf" / "decode.yaml").write_text("beam_size: 2\nctc_weight: 0.3\nlm_weight: 0.0\n")
    return recipe


def run_engine(recipe: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["bash", "asr.sh", "--train_set", "train", "--valid_set", "valid", "--test_sets", "test",
            "--token_type", "char", "--nj", "2", "--inference_nj", "2",
            "--asr_config", "conf/train.yaml", "--inference_config", "conf/decode.yaml",
            "--inference_asr_model", "valid.acc.best.pth",
            "--asr_args", "--max_epoch 1 --num_workers 0 --batch_size 4", *extra]
    return subprocess.run(args, cwd=recipe, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_all_stages_then_rerun_is_a_no_op(tmp_path):
    recipe = make_recipe(tmp_path)
    out = run_engine(recipe)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    for stage in (1, 2, 3, 4, 5, 10, 11, 12, 13, 14):
        assert f"Stage {stage}:" in out.stdout, stage
    exp = recipe / "exp" / "asr_train_char"
    results = (exp / "RESULTS.md").read_text()
    assert "### WER" in results and "decode_decode_valid.acc.best/test|4|" in results
    hyp = (exp / "decode_decode_valid.acc.best" / "test" / "text").read_text().splitlines()
    assert len(hyp) == 4
    assert "REF:" in (exp / "decode_decode_valid.acc.best/test/score_wer/result.txt").read_text()
    assert (exp / "asr_model.zip").stat().st_size > 0
    # a finished run, rerun from stage 3 to 5 and 10: every stage reports it is complete
    again = run_engine(recipe, "--stage", "3", "--stop-stage", "10")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("is complete, skipping") >= 6
    # decoding is complete only for the options it ran with: the same config skips, a changed one decodes again
    same = run_engine(recipe, "--stage", "12", "--stop-stage", "12")
    assert same.returncode == 0 and "decode_decode_valid.acc.best/test is complete, skipping" in same.stdout
    (recipe / "conf" / "decode.yaml").write_text("beam_size: 3\nctc_weight: 0.3\nlm_weight: 0.0\n")
    changed = run_engine(recipe, "--stage", "12", "--stop-stage", "12")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "was decoded with another model or other options; decoding again" in changed.stdout
    assert len((exp / "decode_decode_valid.acc.best" / "test" / "text").read_text().splitlines()) == 4
    # the scores belonged to the old decoding: they go with it, not stay to be read as the new one's
    assert not (exp / "decode_decode_valid.acc.best" / "test" / "score_wer").exists()
    # new data (stage 1 with other options) makes every derived stage stale: nothing is skipped
    redo = run_engine(recipe, "--stop-stage", "5", "--local_data_opts", "--other_options 1")
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "Stage 1: data preparation" in redo.stdout and "is complete" not in redo.stdout
    # the finished model was trained on the old data: stage 11 refuses to resume it instead of returning it
    stale = run_engine(recipe, "--stage", "10", "--stop-stage", "11")
    assert stale.returncode != 0
    assert "exp/asr_train_char holds a training (checkpoint.pth) of other data" in stale.stderr
    assert "mv exp/asr_train_char exp/asr_train_char.old" in stale.stderr


def test_unknown_option_and_missing_data_are_clear_errors(tmp_path):
    recipe = make_recipe(tmp_path)
    out = run_engine(recipe, "--stgae", "3")
    assert out.returncode != 0 and "unknown option --stgae" in out.stderr
    out = run_engine(recipe, "--stage", "3", "--stop-stage", "3")
    assert out.returncode != 0
    assert "data/train: data directory does not exist" in out.stderr + out.stdout


@pytest.mark.slow
def test_training_killed_mid_way_resumes_with_stage_11(tmp_path):
    import re
    import signal
    import time

    recipe = make_recipe(tmp_path)
    args = ["bash", "asr.sh", "--train_set", "train", "--valid_set", "valid", "--test_sets", "test",
            "--token_type", "char", "--nj", "2", "--asr_config", "conf/train.yaml",
            "--asr_args", "--max_epoch 3 --num_workers 0 --batch_size 4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args + ["--stop-stage", "11"], cwd=recipe, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exp = recipe / "exp" / "asr_train_char"
    deadline = time.time() + 600
    while not (exp / "1epoch.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, as a lost node or Ctrl-C would
    proc.wait()
    assert (exp / "1epoch.pth").exists() and not (exp / "3epoch.pth").exists()
    out = subprocess.run(args + ["--stage", "11", "--stop-stage", "11"], cwd=recipe, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    started = [int(n) for n in re.findall(r"(\d+)/3epoch started", (exp / "train.log").read_text())]
    assert started and min(started) >= 2, started
    assert (exp / "3epoch.pth").exists()


def test_espnet_option_names_and_unsupported_lm_stages(tmp_path):
    recipe = make_recipe(tmp_path)
    # ESPnet's LM options and stages are refused by name, not ignored
    for extra in (["--use_lm", "true"], ["--lm_config", "conf/lm.yaml"], ["--use_ngram", "true"],
                  ["--stage", "6", "--stop_stage", "8"]):
        out = run_engine(recipe, *extra)
        assert out.returncode != 0 and "not supported yet" in out.stderr, (extra, out.stderr[-500:])
    # --use_lm false (as ESPnet recipes pass it) and an LM option inside a value are fine; 16k is 16000
    out = run_engine(recipe, "--use_lm", "false", "--inference_args", "--lm_weight 0", "--fs", "16k",
                     "--stage", "2", "--stop_stage", "2")
    assert out.returncode == 0 and "Stage 2: no --speed_perturb_factors" in out.stdout, out.stderr[-1000:]
    out = run_engine(recipe, "--fs", "16kHz", "--stage", "2", "--stop_stage", "2")
    assert out.returncode != 0 and "--fs 16kHz: expected a rate in Hz (16000) or kHz (16k)" in out.stderr
    # the old name is gone, ESPnet's is the one
    out = run_engine(recipe, "--inference_model", "valid.acc.best.pth")
    assert out.returncode != 0 and "unknown option --inference_model" in out.stderr


def test_zoo_model_and_schedule_are_merged_for_training(tmp_path):
    recipe = make_recipe(tmp_path)
    config = yaml.safe_load((recipe / "conf" / "train.yaml").read_text())
    model_keys = ("model", "encoder", "encoder_conf", "decoder", "decoder_conf")
    (recipe / "conf" / "schedule.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items()
                                                                   if k not in model_keys}))
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({k: config[k] for k in model_keys if k in config}))
    # stage 10 fails without data, after the merged config was written where training reads it
    out = run_engine(recipe, "--asr_config", "conf/schedule.yaml", "--asr_model_config", str(tmp_path / "zoo.yaml"),
                     "--stage", "10", "--stop_stage", "10")
    merged = recipe / "exp" / "asr_zoo_char" / "train_config.yaml"
    assert merged.is_file(), out.stderr[-2000:]
    assert yaml.safe_load(merged.read_text()) == config

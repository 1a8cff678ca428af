"""The offline demo recipe (egs2/synth_commands) end to end at reduced size (slow)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile
import torch
from cli_pipeline import copy_recipe

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                 reason="espeak-ng/flite not installed (tools/install.sh installs them)")]


def test_demo_runs_every_stage_for_both_models(tmp_path):
    r = copy_recipe(tmp_path, "synth_commands")
    small = ["--n_train", "40", "--n_valid", "8", "--n_test", "8", "--max_epoch", "1"]
    out = subprocess.run(["bash", "run.sh", *small], cwd=r, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    for model in ("mamba", "transformer"):
        exp = r / "exp" / f"asr_train_asr_{model}_char"
        for stage in (1, 3, 4, 5, 10, 11, 12, 13, 14):
            assert f"Stage {stage}:" in out.stdout
        results = (exp / "RESULTS.md").read_text()
        wer_rows = [line for line in results.split("### WER")[1].split("### CER")[0].splitlines()
                    if line.startswith("|decode")]
        assert len(wer_rows) == 1 and wer_rows[0].split("|")[2] == "8"  # 8 test sentences scored
        assert (exp / "asr_model.zip").stat().st_size > 0
    table = (r / "exp" / "comparison.md").read_text()
    assert "asr_train_asr_mamba_char" in table and "asr_train_asr_transformer_char" in table
    assert (r / "exp" / "comparison.png").stat().st_size > 0
    # the second model found the shared stages complete
    assert out.stdout.count("is complete") >= 6

    # the packed Mamba model, unpacked and decoded the way a user receives it
    import espnet_mamba  # noqa: F401
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    files = unpack(str(r / "exp/asr_train_asr_mamba_char/asr_model.zip"), str(tmp_path / "unpacked"))
    s2t = Speech2Text(files["asr_train_config"], files["asr_model_file"], device="cpu", beam_size=2)
    wav_path = (r / "dump/raw/test/wav.scp").read_text().split()[1]
    wav, fs = soundfile.read(wav_path)
    assert fs == 16000
    result = s2t(torch.tensor(wav, dtype=torch.float32))
    result = result[0] if isinstance(result, tuple) else result
    assert isinstance(result[0][0], str)

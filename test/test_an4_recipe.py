"""The AN4 recipe end to end, reduced (slow: a few minutes on 2 cores).

run.sh, stages 1-14, on AN4's one-word utterances (``--max_words 1``: 95 training commands such
as YES / STOP / REPEAT, x3 speed perturbation; 9 train_dev and 8 test utterances, the test ones
from speakers never heard in training) with a tiny Mamba encoder + Mamba decoder. A handful of
utterances for 1-2 epochs teaches no model anything, so the corpus is the one-word subset and
the tiny model sees it for MAX_EPOCH epochs (18 updates each). One run on the shared 2-core CPU:
about 7 minutes (training 4.7 min); 15 of the 17 words right (11.8 % WER; that run's stage 13
was cut short by a concurrent edit of asr.sh, so the WER was computed from its stage-12 output).

The WER bound: an empty or random output scores >= 100 %; a model that ignores the audio can at
best say the same word every time, and the best such word scores BLIND % on these references
(computed below: 70.6 % on the 17 words of train_dev + test). WER < 50 % therefore needs a model
that uses the audio (the SPHERE reading, features, encoder, decoder and scoring all working).
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from espnet_mamba.recipe.data_dir import read_table

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "asr1"
RECIPE = ROOT / "egs2" / "an4" / "asr1"
AN4 = Path(os.environ.get("AN4_ROOT", ROOT.parent / "shared" / "data" / "an4"))
MAX_EPOCH = 12
BOUND = 50.0

pytestmark = pytest.mark.slow

SCHEDULE = """# the schedule of the tiny model of the reduced end-to-end test
batch_type: folded
batch_size: 16
max_epoch: 12
num_workers: 0
num_att_plot: 0
patience: none
seed: 0
best_model_criterion:
-   - valid
    - acc
    - max
keep_nbest_models: 3
optim: adam
optim_conf:
    lr: 0.003
scheduler: warmuplr
scheduler_conf:
    warmup_steps: 100
frontend_conf:
    n_fft: 512
    win_length: 400
    hop_length: 160
    n_mels: 40
model_conf:
    ctc_weight: 0.5
    lsm_weight: 0.1
"""
TINY = """# a tiny model for the reduced end-to-end test only
model: espnet_mamba
encoder: mamba
encoder_conf:
    output_size: 64
    num_blocks: 2
    bidirectional: add
    dropout_rate: 0.1
    input_layer: conv2d
decoder: mamba
decoder_conf:
    attention_heads: 4
    linear_units: 128
    num_blocks: 1
    dropout_rate: 0.1
    src_attention_dropout_rate: 0.1
"""
DECODE = "beam_size: 4\nctc_weight: 0.5\nlm_weight: 0.0\n"


def best_constant_wer(refs):
    """WER of the best audio-blind output: the same single word for every utterance."""
    words = {w for r in refs for w in r.split()}
    n = sum(len(r.split()) for r in refs)
    # every reference is one word here: a fixed word w is right where r == w, a substitution elsewhere
    return 100.0 * min(sum(1 for r in refs if r != w) for w in words) / n


def test_reduced_an4_recipe_learns_from_the_audio(tmp_path):
    if not (AN4 / "etc" / "an4_train.transcription").is_file():
        pytest.skip(f"AN4 not found at {AN4} (set AN4_ROOT to run this test)")
    r = tmp_path / "egs2" / "an4" / "asr1"
    r.mkdir(parents=True)
    for name in ("asr.sh", "run_models.sh", "utils", "path.sh", "cmd.sh"):
        (r / name).symlink_to(TEMPLATE / name)
    for name in ("run.sh", "local"):
        (r / name).symlink_to(RECIPE / name)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "train_asr_tiny.yaml").write_text(TINY)
    (conf / "train_schedule.yaml").write_text(SCHEDULE)
    (conf / "decode_ci.yaml").write_text(DECODE)
    start = time.time()
    out = subprocess.run(["bash", "run.sh", "--models", "tiny", "--model_dir", str(conf),
                          "--asr_config", str(conf / "train_schedule.yaml"),
                          "--inference_config", str(conf / "decode_ci.yaml"), "--max_epoch", str(MAX_EPOCH),
                          "--local_data_opts", f"--an4_root {AN4} --max_words 1"],
                         cwd=r, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.time() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    for stage in (1, 2, 3, 4, 5, 10, 11, 12, 13, 14):
        assert f"Stage {stage}:" in out.stdout
    assert len(read_table(r / "dump/raw/train_nodev_sp/wav.scp")) == 3 * 95
    exp = r / "exp" / "asr_train_asr_tiny_bpe30"
    counts, refs = [], []
    for test_set in ("train_dev", "test"):
        summary = exp / "decode_decode_ci_valid.acc.ave" / test_set / "score_wer" / "summary.json"
        counts.append(json.loads(summary.read_text())["counts"])
        refs += list(read_table(r / "dump/raw" / test_set / "text").values())
    assert len(refs) == 17
    errors = sum(c["sub"] + c["dele"] + c["ins"] for c in counts)
    words = sum(c["wrd"] for c in counts)
    wer = 100.0 * errors / words
    blind = best_constant_wer(refs)
    print(f"\nreduced AN4 run ({took:.0f} s): WER {wer:.1f} % over {words} words "
          f"(bound {BOUND}; best audio-blind output {blind:.1f} %)")
    assert blind > BOUND + 10          # the bound is out of reach without the audio
    assert wer < BOUND, (wer, (exp / "decode_decode_ci_valid.acc.ave" / "test" / "score_wer" / "result.txt")
                         .read_text()[-2000:])
    assert (r / "exp" / "comparison.md").read_text().count("asr_train_asr_tiny_bpe30") >= 1
    assert (exp / "asr_model.zip").stat().st_size > 0

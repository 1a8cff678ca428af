"""The demo's streaming configs: a causal Mamba model and ESPnet's contextual block Transformer
baseline, matched in size; the Mamba one is accepted by the streaming encoder, the baseline
has what ESPnet's own streaming decoder asserts."""

from pathlib import Path

import espnet_mamba  # noqa: F401
from espnet2.tasks.asr import ASRTask

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = ROOT / "egs2" / "synth_commands" / "asr1" / "conf" / "train_schedule.yaml"
ZOO = ROOT / "conf" / "tuning" / "demo"
TOKENS = ["<blank>", "<unk>"] + [f"t{i}" for i in range(30)] + ["<sos/eos>"]


def build(name):
    """The demo's model ``name`` on the demo's schedule, as asr.sh --asr_model_config assembles it."""
    import tempfile

    from espnet_mamba.recipe.config import merged_file

    with tempfile.TemporaryDirectory() as tmp:
        config = merged_file(SCHEDULE, ZOO / name, Path(tmp))
        args = ASRTask.get_parser().parse_args(["--config", str(config), "--normalize", "none"])
    args.token_list = TOKENS
    return ASRTask.build_model(args), args


def params(module) -> float:
    return sum(p.numel() for p in module.parameters())


def test_streaming_configs_build_match_in_size_and_stream():
    from espnet2.asr.encoder.contextual_block_transformer_encoder import ContextualBlockTransformerEncoder

    from espnet_mamba.asr.streaming import StreamingEncoder

    mamba, _ = build("train_asr_mamba_streaming.yaml")
    block, block_args = build("train_asr_contextual_block_transformer.yaml")
    offline, _ = build("train_asr_mamba.yaml")
    StreamingEncoder(mamba.eval())                          # raises if anything cannot stream
    assert isinstance(block.encoder, ContextualBlockTransformerEncoder)
    assert {"block_size", "hop_size", "look_ahead"} <= set(block_args.encoder_conf)
    for other in (block, offline):
        assert abs(params(mamba.encoder) / params(other.encoder) - 1) < 0.05
        assert abs(params(mamba) / params(other) - 1) < 0.05
    # only the model differs from the offline demo: one schedule (test_recipe_configs checks that the
    # zoo's files hold models only)


def test_compare_table_adds_streaming_columns(tmp_path):
    """compare reads stage 12's streaming_chunk_ms (asr.sh --use_streaming true): pooled p50/p95
    over every chunk but the last of every utterance, the last chunks' median apart
    (streaming_final_ms), compute-only RTF over all; tables without streaming stay as they were."""
    from test_compare import make_exp

    from espnet_mamba import compare

    stream = make_exp(tmp_path, "asr_mamba_streaming", 20.0)
    test = stream / "decode_x" / "test"
    # 22 chunks: 1..20 ms plus two slow ones; audio 100 s; compute 210 + 500 + 900 ms
    (test / "streaming_chunk_ms").write_text(
        "u1 " + " ".join(str(v) for v in range(1, 11)) + " 500\n"
        "u2 " + " ".join(str(v) for v in range(11, 21)) + " 900\n")
    (test / "streaming_final_ms").write_text("u1 40\nu2 60\n")
    offline = make_exp(tmp_path, "asr_mamba", 15.0)
    stats = compare.streaming_stats(test)
    assert stats["stream_p50_ms"] in (11.0, 12.0) and stats["stream_p95_ms"] == 500.0
    assert stats["stream_final_p50_ms"] == 60.0
    assert abs(stats["stream_rtf"] - (210 + 1400 + 100) / 1000 / 100) < 1e-9
    table = compare.markdown([compare.summarise(stream), compare.summarise(offline)])
    assert "chunk p50 ms | chunk p95 ms | final chunk ms | stream RTF |" in table
    assert "| 0.500 | 11.0 | 500.0 | 60.0 | 0.017 |" in table or "| 0.500 | 12.0 | 500.0 | 60.0 | 0.017 |" in table
    assert table.splitlines()[-1].endswith("| 0.500 | - | - | - | - |")
    assert "chunk p50" not in compare.markdown([compare.summarise(offline)])


def test_demo_run_sh_decodes_streaming_models_as_streams(tmp_path):
    """run.sh --streaming_models: those models go through asr.sh (by run_models.sh) with
    --use_streaming true, the others without it (asr.sh's default, false); --seeds repeats
    every model with its seed (asr.sh replaced by a stub that records its arguments)."""
    import os
    import shutil
    import subprocess

    demo = ROOT / "egs2" / "synth_commands" / "asr1"
    (tmp_path / "conf").symlink_to(ROOT / "conf")  # the zoo, where run.sh's ../../../conf finds it
    recipe = tmp_path / "egs2" / "synth_commands" / "asr1"
    recipe.mkdir(parents=True)
    for script in ("run.sh", "run_models.sh"):
        shutil.copy(demo / script, recipe / script)
    (recipe / "utils").mkdir()
    (recipe / "utils" / "parse_options.sh").symlink_to(demo / "utils" / "parse_options.sh")
    (recipe / "asr.sh").write_text('#!/usr/bin/env bash\necho "$*" >> calls.txt\n')
    (recipe / "asr.sh").chmod(0o755)
    out = subprocess.run(["bash", "run.sh", "--stage", "12", "--stop_stage", "12", "--models", "mamba",
                          "--streaming_models", "mamba_streaming contextual_block_transformer",
                          "--seeds", "0 1"],
                         cwd=recipe, capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    calls = (recipe / "calls.txt").read_text().splitlines()
    models = ["mamba", "mamba_streaming", "contextual_block_transformer"]
    assert len(calls) == 6
    for i, call in enumerate(calls):
        model, seed = models[i % 3], i // 3
        assert f"--asr_config conf/train_schedule.yaml --asr_model_config ../../../conf/tuning/demo/" \
               f"train_asr_{model}.yaml" in call
        assert ("--use_streaming true" in call) == (model != "mamba")
        suffix = "" if model == "mamba" else "_streaming160ms"   # asr.sh's name for a streamed decoding
        assert f"--inference_tag decode_decode_asr_valid.acc.ave{suffix} " in call
        assert f"--max_epoch 10 --seed {seed}" in call and "--stage 12 --stop_stage 12" in call
        assert f"--asr_tag train_asr_{model}_char{'_seed1' if seed else ''} " in call
        assert (ZOO / f"train_asr_{model}.yaml").exists()

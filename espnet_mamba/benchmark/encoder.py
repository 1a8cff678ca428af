"""Encoder time and peak memory versus audio length, Mamba vs ESPnet baselines.

Inference (no grad), batch 1, 80-dim features at 100 frames/s (10 ms hop),
conv2d 4x subsampling in every model. Sizes are chosen so that every encoder
has ~30M parameters (printed). Ratios are to ESPnet's transformer, measured
in the same process.
"""

import argparse
import json

import torch

from espnet_mamba.benchmark.memory import cap_cpu_memory, is_out_of_memory, peak_memory_mb
from espnet_mamba.benchmark.timing import format_table, median_seconds

FRAMES_PER_SECOND = 100
FEATURE_DIM = 80

# ~31-33M parameters each at d_model 512 (7.4M of it is the shared conv2d subsampling design)
ENCODERS = {
    "mamba": ("espnet_mamba.asr.encoder:MambaEncoder",
              dict(output_size=512, num_blocks=7, bidirectional="add", dropout_rate=0.0)),
    "conmamba": ("espnet_mamba.asr.encoder:ConMambaEncoder",
                 dict(output_size=512, linear_units=1024, num_blocks=4, bidirectional="add",
                      dropout_rate=0.0)),
    "transformer": ("espnet2.asr.encoder.transformer_encoder:TransformerEncoder",
                    dict(output_size=512, attention_heads=8, linear_units=1536, num_blocks=9,
                         dropout_rate=0.0, attention_dropout_rate=0.0, positional_dropout_rate=0.0)),
    "conformer": ("espnet2.asr.encoder.conformer_encoder:ConformerEncoder",
                  dict(output_size=512, attention_heads=8, linear_units=1024, num_blocks=6,
                       cnn_module_kernel=31, macaron_style=True, pos_enc_layer_type="rel_pos",
                       selfattention_layer_type="rel_selfattn", use_cnn_module=True,
                       dropout_rate=0.0, attention_dropout_rate=0.0, positional_dropout_rate=0.0)),
}


def build(name: str, scale: float = 1.0):
    """scale < 1 shrinks width and depth (tests); the benchmark uses 1.0."""
    import importlib


    path, conf = ENCODERS[name]
    module, cls = path.split(":")
    conf = dict(conf)
    if scale != 1.0:
        conf["output_size"] = max(32, int(conf["output_size"] * scale) // 32 * 32)
        conf["num_blocks"] = max(1, int(conf["num_blocks"] * scale))
        if "linear_units" in conf:
            conf["linear_units"] = max(32, int(conf["linear_units"] * scale))
        if "attention_heads" in conf:
            conf["attention_heads"] = 4
    if name in ("transformer", "conformer"):
        conf["use_flash_attn"] = False  # not installed on CPU; keeps ESPnet from trying
    return getattr(importlib.import_module(module), cls)(FEATURE_DIM, **conf).eval()


def run(seconds=(10, 30, 60, 120, 300), names=tuple(ENCODERS), device="cpu", repeats=1, scale=1.0):
    device = torch.device(device)
    models = {n: build(n, scale).to(device) for n in names}
    if device.type == "cpu":
        cap_cpu_memory()
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()}
    rows = []
    for sec in seconds:
        frames = int(sec * FRAMES_PER_SECOND)
        feats = torch.randn(1, frames, FEATURE_DIM, device=device)
        lens = torch.tensor([frames], device=device)
        base = None
        for n, model in models.items():
            row = {"audio_s": sec, "encoder": n, "params_M": params[n] / 1e6}
            try:
                with torch.no_grad():
                    call = lambda: model(feats, lens)  # noqa: E731
                    _, mem = peak_memory_mb(call, device)
                    t = median_seconds(call, device, repeats=repeats, warmup=0 if sec >= 60 else 1)
                row.update(time_s=t, peak_mem_MB=mem, rtf=t / sec)
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                row.update(time_s="OOM", peak_mem_MB="OOM", rtf="OOM")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            if n == "transformer":
                base = row
            rows.append(row)
        for row in rows[-len(models):]:
            if base is not None and isinstance(row["time_s"], float) and isinstance(base["time_s"], float):
                row["speedup_vs_transformer"] = base["time_s"] / row["time_s"]
                row["mem_vs_transformer"] = row["peak_mem_MB"] / max(base["peak_mem_MB"], 1e-9)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m espnet_mamba.benchmark encoder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 60, 120, 300])
    p.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="shrink models (for quick checks)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows = run(a.seconds, a.encoders, a.device, a.repeats, a.scale)
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"encoder inference, batch 1, {a.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; ratios vs ESPnet transformer in this run")
    headers = ["audio_s", "encoder", "params_M", "time_s", "rtf", "peak_mem_MB",
               "speedup_vs_transformer", "mem_vs_transformer"]
    print(format_table(headers, [[r.get(h, "") for h in headers] for r in rows]))

"""Encoder time and peak memory versus audio length, Mamba vs ESPnet baselines.

Inference (no grad), batch 1, 80-dim features at 100 frames/s (10 ms hop),
conv2d 4x subsampling in every model. Sizes are chosen so that every encoder
has ~30M parameters (printed). Ratios are to ESPnet's transformer, measured
in the same process.
"""

import torch

from espnet_mamba.benchmark.memory import cap_cpu_memory, is_out_of_memory, peak_memory_mb
from espnet_mamba.benchmark.models import ENCODERS, FEATURE_DIM, build
from espnet_mamba.benchmark.timing import command_parser, median_seconds, print_rows

FRAMES_PER_SECOND = 100


def run(seconds=(10, 30, 60, 120, 300), names=tuple(ENCODERS), device="cpu", repeats=1, scale=1.0):
    device = torch.device(device)
    models = {n: build(ENCODERS, n, FEATURE_DIM, scale=scale).to(device) for n in names}
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
    p = command_parser("encoder", __doc__)
    p.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 60, 120, 300])
    p.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="shrink models (for quick checks)")
    a = p.parse_args(argv)
    print_rows(run(a.seconds, a.encoders, a.device, a.repeats, a.scale), a.json,
               f"encoder inference, batch 1, {a.device}, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads; ratios vs ESPnet transformer in this run",
               ["audio_s", "encoder", "params_M", "time_s", "rtf", "peak_mem_MB",
                "speedup_vs_transformer", "mem_vs_transformer"])

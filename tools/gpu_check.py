"""The measurements of tools/gpu_check.sh, written as JSON and Markdown.

    tools/venv/bin/python tools/gpu_check.py --out DIR [--device cuda] [--quick]

1. device: name, memory, memory bandwidth (from the memory clock and bus width
   when torch reports them, and a measured device-to-device copy).
2. scan: the selective scan forward and backward, mamba-ssm kernel and PyTorch
   path, at Mamba-sized inputs (bf16): time, compulsory bytes (every input read
   once, every output written once) and achieved GB/s, as a share of the
   bandwidth. Target: the kernel at >= 50 %.
3. train_step: one encoder training step (forward + backward, bf16 autocast,
   ESPnet's CTC loss) of Mamba, ESPnet's Conformer and Transformer at ~30M
   parameters, 10 / 30 / 60 s utterances, batch 8 (``benchmark train``'s models).
   Target: Mamba faster than the Conformer at 30 s and beyond.
4. beam_step: one ``batch_score`` call (beam 10, 20 s of encoder output) of the
   Mamba decoder and ESPnet's Transformer decoder at hypothesis lengths 10,
   100, 300 (``benchmark decoder``'s models).
5. demo_training: 200 training steps of the demo's Mamba model
   (conf/tuning/demo/train_asr_mamba.yaml on egs2/synth_commands' schedule) on generated tone
   "letters" under bf16 and under fp16 (GradScaler) autocast. Target: every
   loss finite, and the loss falls.

``--quick`` shrinks every size (a smoke run; on a CPU it checks the script).
Exit status 0 when every target is met, 1 when one is missed.
"""

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from espnet_mamba.benchmark.timing import median_seconds, sync  # noqa: E402

DEMO_SCHEDULE = ROOT / "egs2/synth_commands/asr1/conf/train_schedule.yaml"
DEMO_MODEL = ROOT / "conf/tuning/demo/train_asr_mamba.yaml"
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
TONES_HZ = {"a": 440.0, "b": 660.0, "c": 990.0}


def median_time(fn, device, repeats=5, warmup=2):
    """The benchmarks' timer, with more repeats: GPU timings are short and noisy."""
    return median_seconds(fn, device, repeats=repeats, warmup=warmup)


# ---- 1. device ----

def device_info(device, quick):
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_GiB=props.total_memory / 2 ** 30,
                    capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
        clock_khz = getattr(props, "memory_clock_rate", None)
        bus_bits = getattr(props, "memory_bus_width", None)
        if clock_khz and bus_bits:  # double data rate
            info["bandwidth_spec_GBs"] = 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    else:
        info["name"] = platform.processor() or platform.machine()
    n = (64 if quick else 1024) * 2 ** 20 // 4  # fp32 elements: 64 MiB quick, 1 GiB otherwise
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), device)
    info["bandwidth_copy_GBs"] = 2 * src.numel() * 4 / t / 1e9  # read + write
    info["bandwidth_reference_GBs"] = max(info.get("bandwidth_spec_GBs", 0.0), info["bandwidth_copy_GBs"])
    return info


# ---- 2. scan ----

def scan_inputs(batch, d_inner, d_state, length, device, dtype):
    g = torch.Generator().manual_seed(0)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g)).to(device=device, dtype=dtype)

    u, z = rand(batch, d_inner, length), rand(batch, d_inner, length)
    dt = torch.exp(torch.rand(batch, d_inner, length, generator=g) * (math.log(0.1) - math.log(1e-3))
                   + math.log(1e-3))
    delta = torch.log(torch.expm1(dt)).to(device=device, dtype=dtype)  # softplus^-1: Mamba-like steps
    A = -torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(d_inner, 1)
    B, C = rand(batch, d_state, length), rand(batch, d_state, length)
    D = torch.ones(d_inner, device=device)
    return dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z)


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def scan_rows(device, quick, bandwidth):
    from espnet_mamba.ops import backend as ops_backend
    from espnet_mamba.ops import selective_scan

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    backends = ["torch"]
    kernel, why = ops_backend.selective_scan_kernel()
    if device.type == "cuda" and kernel is not None:
        backends.insert(0, "cuda")
    shapes = [(2, 64, 16, 256)] if quick else [(8, 1536, 16, 2048), (8, 1536, 16, 8192)]
    rows = []
    for batch, d_inner, d_state, length in shapes:
        x = scan_inputs(batch, d_inner, d_state, length, device, dtype)
        grads_of = ("u", "delta", "B", "C", "z")
        for name in backends:
            if name == "torch" and device.type == "cuda" and length > shapes[0][3]:
                continue  # the PyTorch path steps through time: one size tells enough
            def forward(inputs):
                return selective_scan(inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"],
                                      inputs["D"], z=inputs["z"], delta_softplus=True, backend=name)

            with torch.no_grad():
                t_fwd = median_time(lambda: forward(x), device)
                y = forward(x)
            leaves = {k: (v.detach().clone().requires_grad_() if k in grads_of else v) for k, v in x.items()}
            dy = torch.randn_like(y)

            def train():
                for k in grads_of:
                    leaves[k].grad = None
                forward(leaves).backward(dy)

            t_train = median_time(train, device)
            t_bwd = max(t_train - t_fwd, 1e-9)
            fwd_bytes = _nbytes([x[k] for k in ("u", "delta", "B", "C", "z")]) + _nbytes([y])
            bwd_bytes = 2 * _nbytes([x[k] for k in grads_of]) + _nbytes([dy])  # read inputs + dy, write grads
            row = {"backend": "mamba-ssm kernel" if name == "cuda" else "PyTorch", "dtype": str(dtype)[6:],
                   "batch": batch, "d_inner": d_inner, "d_state": d_state, "L": length,
                   "fwd_ms": 1e3 * t_fwd, "bwd_ms": 1e3 * t_bwd,
                   "fwd_GBs": fwd_bytes / t_fwd / 1e9, "bwd_GBs": bwd_bytes / t_bwd / 1e9}
            row["fwd_pct_bw"] = 100 * row["fwd_GBs"] / bandwidth
            row["bwd_pct_bw"] = 100 * row["bwd_GBs"] / bandwidth
            rows.append(row)
    note = None if "cuda" in backends else f"mamba-ssm kernel not measured: {why or 'not on a CUDA device'}"
    return rows, note


# ---- 3. encoder training step ----

def train_step_rows(device, quick):
    from espnet_mamba.benchmark import train as bench_train

    seconds = (1.0,) if quick else (10.0, 30.0, 60.0)
    rows = []
    for sec in seconds:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            rows += bench_train.run(seconds=sec, batch=2 if quick else 8,
                                    names=("mamba", "conformer", "transformer"), device=str(device),
                                    repeats=1 if quick else 3, scale=0.1 if quick else 1.0)
    return rows


# ---- 4. beam-search step ----

def beam_step_rows(device, quick):
    from espnet_mamba.benchmark import decoder as bench_decoder
    from espnet_mamba.benchmark.models import DECODERS, build

    lengths = (2, 5) if quick else (10, 100, 300)
    beam = 10
    frames = 50 if quick else 500  # 20 s at 40 ms per encoder frame
    rows = []
    for name in ("mamba", "transformer"):
        dec = build(DECODERS, name, bench_decoder.VOCAB, bench_decoder.ENCODER_DIM,
                    scale=0.1 if quick else 1.0).to(device)
        vocab = bench_decoder.decoder_vocab(dec)
        x = torch.randn(frames, bench_decoder.ENCODER_DIM, device=device)
        xs = x.unsqueeze(0).expand(beam, -1, -1)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            states = [dec.batch_init_state(x) for _ in range(beam)]
            ys = torch.full((beam, 1), vocab - 1, dtype=torch.long, device=device)
            for length in range(1, max(lengths) + 1):
                if length in lengths:
                    t = median_time(lambda: dec.batch_score(ys, states, xs), device, repeats=5, warmup=1)
                    rows.append({"decoder": name, "hyp_len": length, "beam": beam, "ms_per_step": 1e3 * t})
                _, states = dec.batch_score(ys, states, xs)
                nxt = torch.randint(1, vocab - 1, (beam, 1), generator=g).to(device)
                ys = torch.cat([ys, nxt], dim=1)
    return rows


# ---- 5. demo training under bf16 and fp16 ----

def tone_batch(batch, generator, fs=16000):
    """Utterances of 2-4 tone 'letters' (a, b, c) with their character targets."""
    waves, texts = [], []
    for _ in range(batch):
        count = int(torch.randint(2, 5, (1,), generator=generator))
        letters = [("a", "b", "c")[int(i)] for i in torch.randint(0, 3, (count,), generator=generator)]
        t = torch.arange(int(0.15 * fs)) / fs
        parts = []
        for c in letters:
            parts += [0.3 * torch.sin(2 * math.pi * TONES_HZ[c] * t), torch.zeros(int(0.05 * fs))]
        wave = torch.cat(parts)
        waves.append(wave + 0.01 * torch.randn(len(wave), generator=generator))
        texts.append([TOKENS.index("<space>" if c == " " else c) for c in " ".join(letters)])  # "a b c"
    lens = torch.tensor([len(w) for w in waves])
    speech = torch.zeros(batch, int(lens.max()))
    for i, w in enumerate(waves):
        speech[i, :len(w)] = w
    text_lens = torch.tensor([len(t) for t in texts])
    text = torch.full((batch, int(text_lens.max())), -1, dtype=torch.long)
    for i, t in enumerate(texts):
        text[i, :len(t)] = torch.tensor(t)
    return speech, lens, text, text_lens


def demo_training_rows(device, quick):
    from espnet_mamba.asr.espnet_compat import ASRTask
    from espnet_mamba.recipe.config import merged_file

    steps = 3 if quick else 200
    dtypes = [torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    rows = []
    for dtype in dtypes:
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            config = merged_file(DEMO_SCHEDULE, DEMO_MODEL, Path(tmp))
            args = ASRTask.get_parser().parse_args(["--config", str(config)])
        args.token_list = TOKENS
        model = ASRTask.build_model(args).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        generator = torch.Generator().manual_seed(0)
        losses, nonfinite, error = [], 0, None
        start = time.perf_counter()
        for _ in range(steps):
            batch = [t.to(device) for t in tone_batch(8, generator)]
            try:
                with torch.autocast(device.type, dtype=dtype):
                    loss, _, _ = model(*batch)
            except FloatingPointError as exc:  # the model's non-finite-loss guard
                error = str(exc)
                break
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
            value = float(loss.detach())
            nonfinite += not math.isfinite(value)
            losses.append(value)
        sync(device)
        head, tail = losses[:10], losses[-10:]
        rows.append({"dtype": str(dtype)[6:], "steps": len(losses), "nonfinite_losses": nonfinite,
                     "first10_mean": statistics.fmean(head) if head else float("nan"),
                     "last10_mean": statistics.fmean(tail) if tail else float("nan"),
                     "seconds": time.perf_counter() - start, "error": error})
    return rows


# ---- report ----

def markdown_table(rows, columns=None):
    if not rows:
        return "(none)\n"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def targets(report, quick):
    out = []
    kernel = [r for r in report["scan"] if r["backend"] == "mamba-ssm kernel"]
    if kernel:
        best = max(min(r["fwd_pct_bw"], r["bwd_pct_bw"]) for r in kernel)
        out.append(("scan kernel >= 50 % of memory bandwidth (forward and backward, best size)",
                    best >= 50, f"{best:.0f} %"))
    else:
        out.append(("scan kernel >= 50 % of memory bandwidth", False, report.get("scan_note") or "not run"))
    step = {(r["encoder"], r["audio_s"]): r["step_s"] for r in report["train_step"]}
    for sec in sorted({s for _, s in step}):
        if sec >= 30 or quick:
            mamba, conformer = step.get(("mamba", sec)), step.get(("conformer", sec))
            if isinstance(mamba, float) and isinstance(conformer, float):
                out.append((f"Mamba encoder training step faster than Conformer at {sec:g} s",
                            mamba < conformer, f"{mamba:.3f} s vs {conformer:.3f} s"))
    for r in report["demo_training"]:
        ok = r["error"] is None and r["nonfinite_losses"] == 0 and r["last10_mean"] < r["first10_mean"]
        out.append((f"demo training under {r['dtype']}: every loss finite and falling", ok,
                    r["error"] or f"{r['nonfinite_losses']} non-finite; loss {r['first10_mean']:.2f} -> "
                                  f"{r['last10_mean']:.2f}"))
    return [{"target": t, "met": bool(ok), "value": v} for t, ok, v in out]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="directory for gpu_check.json and gpu_check.md")
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of this script")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check.py: torch sees no CUDA device; use --device cpu --quick for a smoke run",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report, timings = {}, {}
    sections = [("device", lambda: device_info(device, args.quick)),
                ("scan", lambda: scan_rows(device, args.quick, report["device"]["bandwidth_reference_GBs"])),
                ("train_step", lambda: train_step_rows(device, args.quick)),
                ("beam_step", lambda: beam_step_rows(device, args.quick)),
                ("demo_training", lambda: demo_training_rows(device, args.quick))]
    for name, fn in sections:
        start = time.perf_counter()
        print(f"gpu_check.py: {name} ...", flush=True)
        result = fn()
        if name == "scan":
            result, report["scan_note"] = result
        report[name] = result
        timings[name] = time.perf_counter() - start
    report["section_seconds"] = timings
    report["targets"] = targets(report, args.quick)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")

    info = report["device"]
    title = f"# GPU check: {info.get('name')} ({info['device']}), torch {info['torch']}"
    title += (f", CUDA {info['cuda']}" if info.get("cuda") else "") + ("  (--quick)" if args.quick else "")
    md = [title, "",
          "Memory bandwidth: " + (f"{info['bandwidth_spec_GBs']:.0f} GB/s from clock x bus width, "
                                  if "bandwidth_spec_GBs" in info else "")
          + f"{info['bandwidth_copy_GBs']:.0f} GB/s measured copy; percentages below are of "
            f"{info['bandwidth_reference_GBs']:.0f} GB/s.", "",
          "## Targets", "", markdown_table(report["targets"]),
          "## Selective scan (compulsory bytes: inputs read once, outputs written once)", "",
          markdown_table(report["scan"]) + (f"\n{report['scan_note']}\n" if report["scan_note"] else ""),
          "## Encoder training step, bf16 autocast, batch 8 (forward + backward, CTC)", "",
          markdown_table(report["train_step"]),
          "## Beam-search step (batch_score, beam 10, 20 s of encoder output)", "",
          markdown_table(report["beam_step"]),
          "## Demo model, 200 training steps under autocast", "", markdown_table(report["demo_training"]),
          "Section times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), ""]
    (args.out / "gpu_check.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if all(t["met"] for t in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())

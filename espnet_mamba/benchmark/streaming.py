"""Streaming recognition cost: compute time per chunk and peak memory versus stream length.

A random causal ASR model (by default the demo's Mamba model, egs2/synth_commands,
with ``bidirectional: none``; ``--config`` for another training YAML) decodes a
synthetic recording (speech-like noise bursts between pauses, 16 kHz) through
``espnet_mamba.asr.streaming.Speech2TextStreaming``:

* latency: for each chunk size (``--chunk_ms``, default 40 160 640), the compute
  time of every non-final chunk (front end, encoder with carried state, CTC
  prefix search, partial hypothesis): p50, p95, max, and the real-time factor of
  the whole stream including the final rescoring;
* memory: peak memory, added and of the whole process, while decoding a ``--minutes``
  long stream (default 1 and 30) in 160 ms chunks (the shortest recording repeated to the
  length: a live source holds no more than its chunk), in the constant-memory configuration
  (CTC prefix search only: ``ctc_weight 1.0``, no exact CTC rescoring) and, with
  ``--rescoring``, also keeping the encoder output for attention rescoring
  (memory then grows with the stream: T x d_model floats).

    python -m espnet_mamba.benchmark streaming [--chunk_ms 40 160 640] [--minutes 1 30] [--json]
"""

import json
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from espnet_mamba.benchmark.longform import synthetic_recording
from espnet_mamba.benchmark.memory import peak_memory_detail
from espnet_mamba.benchmark.models import FS, write_random_model
from espnet_mamba.benchmark.timing import command_parser, format_table

# the demo's model (conf/tuning/demo/train_asr_mamba.yaml), causal
DEMO_MODEL = dict(
    frontend_conf=dict(n_fft=512, win_length=400, hop_length=160, n_mels=40),
    model="espnet_mamba", model_conf=dict(ctc_weight=0.3, lsm_weight=0.1),
    encoder="mamba", encoder_conf=dict(output_size=144, num_blocks=5, bidirectional="none",
                                       dropout_rate=0.0, input_layer="conv2d"),
    decoder="mamba", decoder_conf=dict(attention_heads=4, linear_units=576, num_blocks=2, dropout_rate=0.0,
                                       src_attention_dropout_rate=0.0))


def _stream(s2t, x: np.ndarray, chunk: int, total: Optional[int] = None):
    """Decode ``total`` samples (default len(x)) of x, repeated as often as needed, in chunks;
    compute seconds of each non-final chunk, total seconds, final result. Repeating a short x
    keeps the input's own memory out of a long stream's measurement, as a live source would."""
    total = len(x) if total is None else total
    times = []
    start_all = time.perf_counter()
    bounds = list(range(0, total, chunk))
    result = None
    for i, b in enumerate(bounds):
        final = i == len(bounds) - 1
        n, at = min(chunk, total - b), b % len(x)
        piece = x[at:at + n] if at + n <= len(x) else np.take(x, np.arange(b, b + n) % len(x))
        start = time.perf_counter()
        result = s2t(piece, is_final=final)
        if not final:
            times.append(time.perf_counter() - start)
    return times, time.perf_counter() - start_all, result


def run(chunk_ms=(40, 160, 640), latency_seconds=30.0, minutes=(1, 30), config=None, device="cpu",
        beam_size=4, ctc_weight=0.3, rescoring=False):
    from espnet_mamba.asr.streaming import Speech2TextStreaming

    config = config or DEMO_MODEL
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exp = write_random_model(Path(tmp) / "model", config)

        def make(**kw):
            return Speech2TextStreaming(exp / "config.yaml", exp / "model.pth", device=device,
                                        beam_size=beam_size, lm_weight=0.0, **kw)

        s2t = make(ctc_weight=ctc_weight)
        params = sum(p.numel() for p in s2t.asr_model.encoder.parameters()) / 1e6
        x = synthetic_recording(latency_seconds)
        _stream(s2t, x[: FS // 2], FS // 10)                    # warm-up
        for ms in chunk_ms:
            times, total, _ = _stream(s2t, x, FS * ms // 1000)
            t = np.array(times) * 1000 if times else np.zeros(1)
            rows.append(dict(kind="latency", chunk_ms=ms, stream_s=latency_seconds, chunks=len(times) + 1,
                             p50_ms=float(np.percentile(t, 50)), p95_ms=float(np.percentile(t, 95)),
                             max_ms=float(t.max()), rtf=total / latency_seconds,
                             encoder_params_m=round(params, 2)))
        modes = [("ctc only", dict(ctc_weight=1.0, exact_ctc_rescoring=False))]
        if rescoring:
            modes.append(("ctc + attention rescoring", dict(ctc_weight=ctc_weight)))
        for label, kw in modes:
            s2t = make(**kw)
            x = synthetic_recording(min(minutes) * 60, seed=1)
            for m in minutes:
                (times, total, result), mem, process_peak = peak_memory_detail(
                    lambda: _stream(s2t, x, FS * 160 // 1000, total=int(m * 60 * FS)), torch.device(device))
                rows.append(dict(kind="memory", mode=label, minutes=m, chunk_ms=160, peak_mb=mem,
                                 process_peak_mb=process_peak, tokens=len(result[0][2]) if result else 0,
                                 rtf=total / (m * 60), p95_ms=float(np.percentile(np.array(times) * 1000, 95))
                                 if times else 0.0))
    return rows


def main(argv=None):
    p = command_parser("streaming", __doc__, device="cpu")
    p.add_argument("--chunk_ms", type=int, nargs="+", default=[40, 160, 640])
    p.add_argument("--latency_seconds", type=float, default=30.0, help="stream length for the latency rows")
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 30], help="stream lengths for memory")
    p.add_argument("--config", type=Path, default=None,
                   help="a training YAML of a causal model (default: the demo's Mamba model, causal)")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--ctc_weight", type=float, default=0.3)
    p.add_argument("--rescoring", action="store_true",
                   help="memory rows also with attention rescoring (keeps the encoder output)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    config = None
    if a.config is not None:
        import yaml

        config = yaml.safe_load(a.config.read_text())
    rows = run(a.chunk_ms, a.latency_seconds, a.minutes, config, a.device, a.beam, a.ctc_weight, a.rescoring)
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    lat = [r for r in rows if r["kind"] == "latency"]
    mem = [r for r in rows if r["kind"] == "memory"]
    print(f"compute per chunk ({lat[0]['stream_s']:.0f} s stream, encoder {lat[0]['encoder_params_m']}M "
          f"parameters, {torch.get_num_threads()} threads)")
    print(format_table(["chunk ms", "chunks", "p50 ms", "p95 ms", "max ms", "RTF"],
                       [[r["chunk_ms"], r["chunks"], r["p50_ms"], r["p95_ms"], r["max_ms"], r["rtf"]] for r in lat]))
    print("\npeak memory while decoding a stream (160 ms chunks): added by the stream, and of the whole "
          "process;\ntokens: length of the returned transcript (it grows with the stream, as its text must)")
    print(format_table(["mode", "minutes", "added MiB", "process MiB", "tokens", "RTF", "p95 ms"],
                       [[r["mode"], r["minutes"], r["peak_mb"], r["process_peak_mb"], r["tokens"], r["rtf"],
                         r["p95_ms"]] for r in mem]))
    for label in dict.fromkeys(r["mode"] for r in mem):
        rows_mode = sorted((r for r in mem if r["mode"] == label), key=lambda r: r["minutes"])
        if len(rows_mode) > 1:
            first, last = rows_mode[0], rows_mode[-1]
            print(f"{label}: {last['minutes']:g} min / {first['minutes']:g} min: process peak "
                  f"{last['process_peak_mb'] / first['process_peak_mb']:.3f}x, added "
                  f"{last['peak_mb'] / max(first['peak_mb'], 1e-9):.2f}x")


if __name__ == "__main__":
    main()

"""Long-form transcription cost versus recording length, Mamba vs ESPnet's Transformer and Conformer.

Each model is a whole ESPnet ASR model (front end, encoder, CTC, decoder;
random weights, ~30M-parameter encoders from ``benchmark encoder``) run on the
same synthetic recording: speech-like noise bursts between pauses, 16 kHz.
Two ways to encode it are timed, with their peak memory:

* ``whole``: the recording encoded in one call (what ``Speech2Text`` does
  with a long file): attention's memory grows with the square of the length,
  so the baselines run out of memory (printed as OOM, not fatal);
* ``longform``: ``espnet_mamba.transcribe``'s first pass: the encoder over
  overlapping windows (``--window_s``), the CTC blank decisions, and the cut
  into decoder-sized segments at blank runs; memory bounded by the window.

``--decode`` also runs the beam search over every segment (the whole
transcription); with random weights its hypotheses are noise, and it is slow
on a CPU.

    python -m espnet_mamba.benchmark longform [--minutes 1 10 30 60] [--models mamba transformer conformer]
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from espnet_mamba.benchmark.memory import cap_cpu_memory, is_out_of_memory, peak_memory_mb
from espnet_mamba.benchmark.models import ENCODERS, FS, scaled, write_random_model
from espnet_mamba.benchmark.timing import command_parser, print_rows

# the whole models' decoders (YAML names; not ``benchmark decoder``'s sizes)
DECODERS = {
    "mamba": ("mamba", dict(attention_heads=4, linear_units=1024, num_blocks=4, dropout_rate=0.0,
                            src_attention_dropout_rate=0.0)),
    "transformer": ("transformer", dict(attention_heads=4, linear_units=1024, num_blocks=4, dropout_rate=0.0,
                                        positional_dropout_rate=0.0, self_attention_dropout_rate=0.0,
                                        src_attention_dropout_rate=0.0, use_flash_attn=False)),
}
MODELS = {"mamba": ("mamba", "mamba"), "conmamba": ("conmamba", "mamba"),
          "transformer": ("transformer", "transformer"), "conformer": ("conformer", "transformer")}


def synthetic_recording(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts of 0.3-3 s between pauses of 0.2-1.5 s (float32, 16 kHz)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = np.zeros(n, dtype=np.float32)
    t = 0
    while t < n:
        t += int(rng.uniform(0.2, 1.5) * FS)
        burst = int(rng.uniform(0.3, 3.0) * FS)
        end = min(n, t + burst)
        if end > t:
            x[t:end] = 0.1 * rng.standard_normal(end - t).astype(np.float32)
        t = end
    return x


def build_model(name: str, workdir: Path, scale: float = 1.0):
    """A Speech2Text of a random whole ASR model (encoder from ``benchmark encoder``'s table)."""
    from espnet_mamba.asr.espnet_compat import Speech2Text

    enc_name, dec_name = MODELS[name]
    enc_conf = scaled(ENCODERS[enc_name][1], scale)
    dec_conf = scaled(DECODERS[dec_name][1], scale)
    enc_conf["input_layer"] = "conv2d"
    config = dict(encoder=enc_name, encoder_conf=enc_conf, decoder=dec_name, decoder_conf=dec_conf,
                  model="espnet_mamba" if enc_name in ("mamba", "conmamba") else "espnet",
                  model_conf=dict(ctc_weight=0.3), frontend_conf=dict(n_fft=512, hop_length=160, n_mels=80))
    d = write_random_model(workdir / name, config)
    return Speech2Text(str(d / "config.yaml"), str(d / "model.pth"), beam_size=4, ctc_weight=0.3,
                       lm_weight=0.0, nbest=1, maxlenratio=0.0)


def _measure(fn, device):
    start = time.perf_counter()
    try:
        out, mem = peak_memory_mb(fn, device)
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        return None, "OOM", "OOM"
    return out, time.perf_counter() - start, mem


def run(minutes=(1, 10, 30, 60), names=("mamba", "transformer", "conformer"), device="cpu", scale=1.0,
        window_s=120.0, overlap_s=10.0, max_segment_s=20.0, decode=False):
    from espnet_mamba.transcribe import Transcriber

    device = torch.device(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        transcribers = {}
        for n in names:
            s2t = build_model(n, Path(tmp), scale)
            s2t.asr_model.to(device)
            t = Transcriber(s2t, device=str(device), max_segment_s=max_segment_s, window_s=window_s,
                            window_overlap_s=overlap_s, report=lambda *a: None)
            t.frame_shift()
            transcribers[n] = t
        if device.type == "cpu":
            cap_cpu_memory()
        params = {n: sum(p.numel() for p in t.model.encoder.parameters()) / 1e6 for n, t in transcribers.items()}
        for m in minutes:
            x = synthetic_recording(m * 60)
            for n, t in transcribers.items():
                row = {"minutes": m, "model": n, "encoder_params_M": params[n]}
                with torch.no_grad():
                    _, secs, mem = _measure(lambda: t._encode(x), device)
                row.update(whole_s=secs, whole_mem_MB=mem)

                def first_pass():
                    times, is_blank, _ = t._first_pass(x)
                    from espnet_mamba.longform import split_at_pauses

                    fs_ = t.frame_shift()
                    return split_at_pauses(is_blank, int(max_segment_s / fs_), max(1, int(t.pause_s / fs_)))

                segs, secs, mem = _measure(first_pass, device)
                row.update(longform_s=secs, longform_mem_MB=mem,
                           rtf=secs / (m * 60) if isinstance(secs, float) else "OOM",
                           segments=len(segs) if segs is not None else "OOM")
                if decode:
                    _, secs, mem = _measure(lambda: t.transcribe_samples(x, "bench"), device)
                    row.update(decode_s=secs, decode_mem_MB=mem)
                rows.append(row)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return rows


def main(argv=None):
    p = command_parser("longform", __doc__)
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30, 60])
    p.add_argument("--models", nargs="+", default=["mamba", "transformer", "conformer"], choices=list(MODELS))
    p.add_argument("--scale", type=float, default=1.0, help="shrink models (for quick checks)")
    p.add_argument("--window_s", type=float, default=120.0)
    p.add_argument("--window_overlap_s", type=float, default=10.0)
    p.add_argument("--max_segment_s", type=float, default=20.0)
    p.add_argument("--decode", action="store_true", help="also beam-search every segment (slow)")
    a = p.parse_args(argv)
    rows = run(a.minutes, a.models, a.device, a.scale, a.window_s, a.window_overlap_s, a.max_segment_s, a.decode)
    print_rows(rows, a.json,
               f"long-form, batch 1, {a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
               f"whole = one encoder call over the recording, longform = windows of {a.window_s:g} s "
               f"+ CTC cut into <= {a.max_segment_s:g} s segments",
               ["minutes", "model", "encoder_params_M", "whole_s", "whole_mem_MB", "longform_s",
                "longform_mem_MB", "rtf", "segments"] + (["decode_s", "decode_mem_MB"] if a.decode else []))


if __name__ == "__main__":
    main()

"""Smoke test of python -m espnet_mamba.benchmark streaming on a tiny model (no numbers asserted
beyond their shape: timings on shared CPUs mean nothing)."""

import json
import subprocess
import sys

from transcribe_model import ROOT

TINY = """
frontend_conf: {n_fft: 256, hop_length: 80, n_mels: 20}
model: espnet_mamba
model_conf: {ctc_weight: 0.3}
encoder: mamba
encoder_conf: {output_size: 32, num_blocks: 2, d_state: 8, bidirectional: none, dropout_rate: 0.0}
decoder: mamba
decoder_conf: {attention_heads: 4, linear_units: 64, num_blocks: 1, dropout_rate: 0.0}
"""


def test_streaming_benchmark_smoke(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    out = subprocess.run([sys.executable, "-m", "espnet_mamba.benchmark", "streaming", "--config",
                          str(tmp_path / "tiny.yaml"), "--chunk_ms", "40", "160", "--latency_seconds", "1",
                          "--minutes", "0.01", "0.02", "--rescoring", "--json"],
                         capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout[out.stdout.index("[\n"):])   # ESPnet prints a flash-attn notice first
    latency = [r for r in rows if r["kind"] == "latency"]
    assert [r["chunk_ms"] for r in latency] == [40, 160]
    assert [r["chunks"] for r in latency] == [25, 7]                  # 1 s in 40 ms / 160 ms chunks
    assert all(0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"] for r in latency)
    memory = [r for r in rows if r["kind"] == "memory"]
    assert [(r["mode"], r["minutes"]) for r in memory] == [
        ("ctc only", 0.01), ("ctc only", 0.02),
        ("ctc + attention rescoring", 0.01), ("ctc + attention rescoring", 0.02)]
    assert all(r["peak_mb"] >= 0 and r["rtf"] > 0 for r in memory)
    # the whole process holds at least the model and torch, and the rise is part of it
    assert all(r["process_peak_mb"] > max(r["peak_mb"], 50) for r in memory)
    assert all(isinstance(r["tokens"], int) and r["tokens"] >= 0 for r in memory)


def test_streaming_benchmark_is_a_command():
    from espnet_mamba.benchmark.__main__ import COMMANDS

    assert COMMANDS["streaming"] == "espnet_mamba.benchmark.streaming"


def test_long_stream_repeats_the_recording_chunk_by_chunk():
    """The memory rows stream a short recording repeated to the length: the chunks handed to the
    decoder are exactly the recording tiled (numpy's resize repeats cyclically), the last is final."""
    import numpy as np

    from espnet_mamba.benchmark.streaming import _stream

    seen = []

    def fake_s2t(piece, is_final):
        seen.append((piece.copy(), is_final))
        return [("", [], list(range(3)), None)]

    x = np.arange(7, dtype=np.float32)
    _, _, result = _stream(fake_s2t, x, chunk=3, total=20)
    np.testing.assert_array_equal(np.concatenate([p for p, _ in seen]), np.resize(x, 20))
    assert [len(p) for p, _ in seen] == [3, 3, 3, 3, 3, 3, 2]
    assert [f for _, f in seen] == [False] * 6 + [True]
    _stream(fake_s2t, x, chunk=4)              # default: x once
    assert np.concatenate([p for p, _ in seen[7:]]).tolist() == x.tolist()

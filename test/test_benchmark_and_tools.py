import json
import os
import subprocess
import sys

from espnet_mamba.benchmark import scan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_scan_benchmark_rows_are_measured_and_accurate():
    rows = scan.run(lengths=(40, 70), batch=1, d_inner=8, d_state=4, repeats=1)
    assert [r["T"] for r in rows] == [40, 70]
    for r in rows:
        for key in ("torch_s", "cpu_s", "sequential_s", "train_torch_s", "train_cpu_s",
                    "train_sequential_s", "peak_GFLOP/s"):
            assert r[key] > 0, key
        assert abs(r["cpu_vs_seq"] - r["sequential_s"] / r["cpu_s"]) < 1e-9
        assert abs(r["cpu_vs_torch"] - r["torch_s"] / r["cpu_s"]) < 1e-9
        assert abs(r["train_cpu_vs_seq"] - r["train_sequential_s"] / r["train_cpu_s"]) < 1e-9
        assert abs(r["pct_of_peak"] - 100 * r["GFLOP/s"] / r["peak_GFLOP/s"]) < 1e-9
        assert r["max_abs_err"] < 1e-4


def test_benchmark_cli_json():
    out = subprocess.run([sys.executable, "-m", "espnet_mamba.benchmark", "scan", "--lengths", "30",
                          "--batch", "1", "--d_inner", "8", "--repeats", "1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    rows = json.loads(out.stdout)
    assert rows[0]["T"] == 30 and "cpu_vs_seq" in rows[0] and "train_cpu_vs_torch" in rows[0]


def test_benchmark_cli_rejects_unknown_command():
    out = subprocess.run([sys.executable, "-m", "espnet_mamba.benchmark", "nope"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "usage" in out.stderr


def test_check_install_reports_backend():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check_install.py")],
                         capture_output=True, text=True, cwd=ROOT)
    assert "backend used" in out.stdout, out.stdout + out.stderr
    assert "espnet_mamba" in out.stdout
    assert out.returncode == 0, out.stdout + out.stderr


def test_install_script_parses_and_documents_options():
    subprocess.run(["bash", "-n", os.path.join(ROOT, "tools", "install.sh")], check=True)
    out = subprocess.run(["bash", os.path.join(ROOT, "tools", "install.sh"), "--help"],
                         capture_output=True, text=True, check=True)
    assert "--cuda" in out.stdout
    bad = subprocess.run(["bash", os.path.join(ROOT, "tools", "install.sh"), "--frobnicate"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown option '--frobnicate'" in bad.stderr


def test_encoder_benchmark_rows():
    from espnet_mamba.benchmark import encoder

    rows = encoder.run(seconds=(1, 2), scale=0.1)
    assert [(r["audio_s"], r["encoder"]) for r in rows][:4] == [
        (1, "mamba"), (1, "conmamba"), (1, "transformer"), (1, "conformer")]
    for r in rows:
        assert r["time_s"] > 0 and r["params_M"] > 0 and r["peak_mem_MB"] >= 0
        assert abs(r["rtf"] - r["time_s"] / r["audio_s"]) < 1e-12
    assert all(r["speedup_vs_transformer"] == 1 for r in rows if r["encoder"] == "transformer")


def test_decoder_benchmark_rows():
    from espnet_mamba.benchmark import decoder

    rows = decoder.run(lengths=(2, 6), beam=2, encoder_seconds=1, scale=0.2, vocab=40, encoder_dim=32)
    assert [(r["decoder"], r["hyp_len"]) for r in rows] == [
        ("mamba", 2), ("mamba", 6), ("transformer", 2), ("transformer", 6)]
    assert all(r["ms_per_step"] > 0 for r in rows)
    assert rows[0]["vs_first_length"] == 1.0


def test_out_of_memory_is_recognised():
    from espnet_mamba.benchmark.memory import is_out_of_memory

    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: "
                                         "can't allocate memory: you tried to allocate 7200000000 bytes"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_train_benchmark_rows():
    from espnet_mamba.benchmark import train

    rows = train.run(seconds=1, batch=2, scale=0.1)
    assert [r["encoder"] for r in rows] == ["mamba", "transformer", "conformer"]
    for r in rows:
        assert r["step_s"] > 0 and r["params_M"] > 0 and r["peak_mem_MB"] >= 0
    base = rows[1]["step_s"]
    assert all(abs(r["speedup_vs_transformer"] - base / r["step_s"]) < 1e-9 for r in rows)

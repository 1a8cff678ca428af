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
        assert r["torch_scan_s"] > 0 and r["sequential_s"] > 0
        assert abs(r["speedup"] - r["sequential_s"] / r["torch_scan_s"]) < 1e-9
        assert r["max_abs_err"] < 1e-4


def test_benchmark_cli_json():
    out = subprocess.run([sys.executable, "-m", "espnet_mamba.benchmark", "scan", "--lengths", "30",
                          "--batch", "1", "--d_inner", "8", "--repeats", "1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    rows = json.loads(out.stdout)
    assert rows[0]["T"] == 30 and "speedup" in rows[0]


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

"""LibriSpeech local/data.sh against a LibriSpeech-shaped mirror on 127.0.0.1."""

import hashlib
import http.server
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "asr1"
TRANSCRIPTS = {
    "dev-clean": {"1272-128104-0000": "MISTER QUILTER IS THE APOSTLE",
                  "1272-128104-0001": "NOR IS MISTER QUILTER'S MANNER"},
    "test-clean": {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW"},
}


def make_archive(part: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        by_chapter = {}
        for utt, words in TRANSCRIPTS[part].items():
            spk, chap, _ = utt.split("-")
            by_chapter.setdefault((spk, chap), []).append((utt, words))
            audio = io.BytesIO()
            t = np.arange(8000) / 16000
            soundfile.write(audio, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000, format="FLAC")
            _add(tar, f"LibriSpeech/{part}/{spk}/{chap}/{utt}.flac", audio.getvalue())
        for (spk, chap), lines in by_chapter.items():
            _add(tar, f"LibriSpeech/{part}/{spk}/{chap}/{spk}-{chap}.trans.txt",
                 "".join(f"{u} {w}\n" for u, w in lines).encode())
    return buf.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


class Mirror:
    """Serves archives + md5sum.txt with HTTP range support; can cut or corrupt a file."""

    def __init__(self, files, truncate_first=(), corrupt=()):
        self.files, self.truncate_first, self.corrupt = files, set(truncate_first), set(corrupt)
        self.requests = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append((name, self.headers.get("Range")))
                if name not in mirror.files:
                    self.send_error(404)
                    return
                data = mirror.files[name]
                if name in mirror.corrupt:
                    data = data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in mirror.truncate_first and not rng:
                    mirror.truncate_first.discard(name)
                    self.wfile.write(body[: len(body) // 2])  # then drop the connection
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/resources/12"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def mirror_files():
    files = {f"{p}.tar.gz": make_archive(p) for p in TRANSCRIPTS}
    files["md5sum.txt"] = "".join(f"{hashlib.md5(d).hexdigest()} {n}\n" for n, d in files.items()).encode()
    return files


def recipe(tmp: Path) -> Path:
    r = tmp / "egs2" / "librispeech" / "asr1"
    (r / "local").mkdir(parents=True)
    for name in ("utils", "path.sh"):
        (r / name).symlink_to(TEMPLATE / name)
    src = ROOT / "egs2" / "librispeech" / "asr1" / "local" / "data.sh"
    (r / "local" / "data.sh").write_text(src.read_text())
    (r / "local" / "data.sh").chmod(0o755)
    return r


def data_sh(r: Path, *args):
    return subprocess.run(["bash", "local/data.sh", "--parts", "dev-clean test-clean", *args], cwd=r,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_download_resumes_verifies_and_prepares(tmp_path):
    mirror = Mirror(mirror_files(), truncate_first={"dev-clean.tar.gz"})
    try:
        r = recipe(tmp_path)
        out = data_sh(r, "--base_url", mirror.url)
        assert out.returncode == 0, out.stdout + out.stderr
        # the cut download was resumed with a range request, not restarted
        ranges = [rng for name, rng in mirror.requests if name == "dev-clean.tar.gz"]
        assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
        assert "interrupted" in out.stderr
        wav = (r / "data/dev_clean/wav.scp").read_text().splitlines()
        assert [line.split()[0] for line in wav] == ["1272-128104-0000", "1272-128104-0001"]
        assert all(line.split()[1].endswith(".flac") and Path(line.split()[1]).is_file() for line in wav)
        assert (r / "data/dev_clean/text").read_text().splitlines()[0] == \
            "1272-128104-0000 MISTER QUILTER IS THE APOSTLE"
        assert (r / "data/dev_clean/utt2spk").read_text().startswith("1272-128104-0000 1272-128104\n")
        assert (r / "data/test_clean/spk2utt").read_text() == "1089-134686 1089-134686-0000\n"
        # rerun: archives verified and kept, nothing downloaded again
        before = len(mirror.requests)
        assert data_sh(r, "--base_url", mirror.url).returncode == 0
        assert [n for n, _ in mirror.requests[before:]] == ["md5sum.txt"]
    finally:
        mirror.close()


def test_corrupt_download_is_detected_and_deleted(tmp_path):
    mirror = Mirror(mirror_files(), corrupt={"test-clean.tar.gz"})
    try:
        r = recipe(tmp_path)
        out = data_sh(r, "--base_url", mirror.url)
        assert out.returncode != 0
        assert "test-clean.tar.gz: checksum mismatch" in out.stderr
        assert not list((r / "downloads").glob("test-clean.tar.gz*"))
    finally:
        mirror.close()


def test_incomplete_existing_corpus_names_the_missing_file(tmp_path):
    corpus = tmp_path / "corpus"
    for part in TRANSCRIPTS:
        with tarfile.open(fileobj=io.BytesIO(make_archive(part)), mode="r:gz") as tar:
            tar.extractall(corpus)
    missing = corpus / "LibriSpeech/dev-clean/1272/128104/1272-128104-0001.flac"
    missing.unlink()
    out = data_sh(recipe(tmp_path), "--librispeech_dir", str(corpus / "LibriSpeech"))
    assert out.returncode != 0
    assert f"missing audio {missing}" in out.stderr


@pytest.mark.parametrize("recipe_name", ["librispeech", "librispeech_100"])
def test_recipes_are_wired_to_the_engine(recipe_name):
    r = ROOT / "egs2" / recipe_name / "asr1"
    for name in ("asr.sh", "utils", "path.sh", "cmd.sh"):
        assert (r / name).resolve() == (TEMPLATE / name).resolve()
    out = subprocess.run(["bash", "asr.sh", "--help"], cwd=r, capture_output=True, text=True)
    assert out.returncode == 0 and "--train_set" in out.stdout


def test_librispeech_100_data_sh_delegates_with_its_own_defaults(tmp_path):
    mirror = Mirror(mirror_files())
    try:
        recipe(tmp_path)  # the 960 h recipe it delegates to
        r = tmp_path / "egs2" / "librispeech_100" / "asr1"
        (r / "local").mkdir(parents=True)
        for name in ("utils", "path.sh"):
            (r / name).symlink_to(TEMPLATE / name)
        src = ROOT / "egs2" / "librispeech_100" / "asr1" / "local" / "data.sh"
        (r / "local" / "data.sh").write_text(src.read_text())
        out = data_sh(r, "--base_url", mirror.url)  # --parts given last overrides the 100 h list
        assert out.returncode == 0, out.stdout + out.stderr
        assert (r / "data/dev_clean/wav.scp").exists() and (r / "data/test_clean/text").exists()
        assert not (r / "data/train_960").exists()
    finally:
        mirror.close()

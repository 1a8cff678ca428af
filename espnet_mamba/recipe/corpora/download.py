"""Shared by the corpus builders that download: resumable HTTP fetch, checksum, extract once.

``download_file`` fetches with HTTP range requests, so an interrupted download resumes where
it stopped (a ``.part`` file is kept); with an expected digest the file is checked and a
mismatch deletes it and stops with an error. ``extract_once`` writes a marker only when tar
finished, so a half-extracted archive is extracted again.
"""

import hashlib
import http.client
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional


class CorpusError(Exception):
    """A problem the user must act on; the command line prints it as 'ERROR: ...' and exits 1."""


def digest(path: Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def md5(path: Path) -> str:
    return digest(path, "md5")


def download_file(url: str, dest: Path, expected: Optional[str], retries: int = 5,
                  algorithm: str = "md5") -> Path:
    """Fetch url to dest, resuming from dest.part; verify the digest (``algorithm``) when one is given.

    ``expected=None``: no published digest to compare with; the caller checks the content instead.
    """
    if dest.exists():
        if expected is None or digest(dest, algorithm) == expected:
            return dest
        dest.unlink()  # a stale or corrupt archive from an earlier run
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                if have and r.status != 206:  # server ignored the range: start over
                    have = 0
                length = r.headers.get("Content-Length")
                with part.open("ab" if have else "wb") as f:
                    while True:
                        block = r.read(1 << 20)
                        if not block:
                            break
                        f.write(block)
                # urllib returns a body cut short by a dropped connection without an error
                if length is not None and part.stat().st_size < have + int(length):
                    raise ConnectionError(f"connection closed after {part.stat().st_size - have} "
                                          f"of {length} bytes")
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # asked past the end: the .part is already complete
                break
            raise CorpusError(f"downloading {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            got = part.stat().st_size if part.exists() else 0
            print(f"download {dest.name}: interrupted at {got} bytes ({exc}); "
                  f"resuming (attempt {attempt}/{retries})", file=sys.stderr)
            if attempt == retries:
                raise CorpusError(f"downloading {url} failed {retries} times; rerun to resume "
                                  f"from {got} bytes") from None
            time.sleep(min(2 ** attempt, 30) * 0.1)
    if expected is not None:
        actual = digest(part, algorithm)
        if actual != expected:
            part.unlink()
            raise CorpusError(f"{dest.name}: checksum mismatch ({algorithm} {actual}, expected {expected}); "
                              f"the corrupt download was deleted, rerun to fetch it again")
    part.rename(dest)
    return dest


def extract_once(archive: Path, dest: Path, marker: Path):
    """tar -xzf archive -C dest unless marker exists; the marker is written only after tar succeeded.

    A gzip archive carries a CRC-32 and the length of its content, which tar checks while
    extracting: a truncated or corrupted download fails here with tar's message.
    """
    if marker.exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], capture_output=True, text=True)
    if out.returncode != 0:
        raise CorpusError(f"extracting {archive} failed: {out.stderr.strip()[-500:]}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()

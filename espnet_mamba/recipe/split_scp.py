"""Split a Kaldi scp/text file into N contiguous, nearly equal parts (like split_scp.pl).

    python -m espnet_mamba.recipe.split_scp IN OUT.1 OUT.2 ... OUT.N
"""

import sys
from pathlib import Path


def split(src: Path, outputs):
    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < len(outputs):
        raise SystemExit(f"split_scp: {src} has {len(lines)} lines, fewer than {len(outputs)} parts")
    n = len(outputs)
    for i, out in enumerate(outputs):
        part = lines[i * len(lines) // n:(i + 1) * len(lines) // n]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(part) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    split(Path(sys.argv[1]), sys.argv[2:])

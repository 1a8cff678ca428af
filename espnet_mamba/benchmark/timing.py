"""What the benchmarks share: median wall time, tables, the command line."""

import argparse
import json
import statistics
import time
from typing import Callable, List, Optional, Sequence

import torch


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int = 3,
                   warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_table(headers: Sequence[str], rows: List[Sequence]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.2e}"
    return str(v)


def command_parser(command: str, doc: str, device: Optional[str] = "auto") -> argparse.ArgumentParser:
    """``python -m espnet_mamba.benchmark <command>``'s parser with --json and --device
    (default ``device``; "auto": cuda when there is one; None: no such option)."""
    p = argparse.ArgumentParser(prog=f"python -m espnet_mamba.benchmark {command}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if device is not None:
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        p.add_argument("--device", default=auto if device == "auto" else device)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    return p


def print_rows(rows: List[dict], as_json: bool, title: str, headers: Sequence[str]) -> None:
    """The rows as JSON, or the title over a table of ``headers``."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(title)
    print(format_table(headers, [[r.get(h, "") for h in headers] for r in rows]))

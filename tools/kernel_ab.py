#!/usr/bin/env python
"""A/B timing of the compiled CPU scan kernel, both sides in one process, alternated.

    tools/venv/bin/python tools/kernel_ab.py --rev HEAD~1        # that revision's mamba_cpu.c vs the working tree's
    tools/venv/bin/python tools/kernel_ab.py --own_threads       # PyTorch's OpenMP pool vs threads of our own

On a noisy VM two processes timed minutes apart can differ by 30 %; alternating the two
builds (or the two thread modes) round by round in one process, and keeping each side's
best time, is what makes a 10-20 % change visible. Prints one line per pass (forward,
forward + backward) with both times and their ratio.
"""

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from espnet_mamba.ops import cpu_kernels, selective_scan  # noqa: E402


def build_revision(rev: str, workdir: Path):
    """mamba_cpu.c as of git revision ``rev``, built with the working tree's flags (fp32)."""
    source = workdir / "mamba_cpu_ab.c"
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:espnet_mamba/ops/csrc/mamba_cpu.c"],
                          capture_output=True, text=True, check=True).stdout
    source.write_text(text)
    target = workdir / "mamba_cpu_ab.so"
    cpu_kernels._build(cpu_kernels.compiler(), cpu_kernels.BASE_FLAGS + ["-march=native"], [], target,
                       source=source)
    lib = ctypes.CDLL(str(target))
    if hasattr(lib, "use_openmp_pool"):
        return cpu_kernels._bind(lib)
    # a revision from before the pool: bind what it has
    for name, args in (("scan_fwd", cpu_kernels.ScanArgs), ("scan_bwd", cpu_kernels.ScanArgs)):
        getattr(lib, name).argtypes = [ctypes.POINTER(args), ctypes.c_int]
    return lib


def passes(batch: int, dim: int, length: int, d_state: int):
    g = torch.Generator().manual_seed(0)

    def channel_last(scale=1.0, positive=False):  # (batch, D, L) with unit stride over D
        t = torch.rand(batch, length, dim, generator=g) if positive else torch.randn(batch, length, dim, generator=g)
        return (t * scale).transpose(1, 2)

    u, delta, z = channel_last(), channel_last(scale=0.5, positive=True), channel_last()
    A = -torch.exp(torch.randn(dim, d_state, generator=g) * 0.5)
    B = torch.randn(batch, length, d_state, generator=g).transpose(1, 2)
    C = torch.randn(batch, length, d_state, generator=g).transpose(1, 2)
    D, bias = torch.ones(dim), torch.zeros(dim)
    leaves = [t.clone().requires_grad_() for t in (u, delta, A, B, C, z)]

    def forward():
        with torch.no_grad():
            selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, backend="cpu")

    def forward_backward():
        y = selective_scan(*leaves[:5], D, z=leaves[5], delta_bias=bias, delta_softplus=True, backend="cpu")
        y.sum().backward()

    return {"forward": forward, "forward+backward": forward_backward}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rev", help="git revision whose kernel source is side A")
    mode.add_argument("--own_threads", action="store_true",
                      help="side A: threads of our own; side B: PyTorch's OpenMP pool")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--d_state", type=int, default=16)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    libs, error = cpu_kernels.load()
    if libs is None:
        sys.exit(f"kernel_ab: the compiled CPU kernels are not available: {error}")
    working = libs[torch.float32]
    pool = cpu_kernels.openmp_parallel_address()
    with tempfile.TemporaryDirectory() as tmp:
        if args.rev:
            names, other = (args.rev, "working tree"), build_revision(args.rev, Path(tmp))
        else:
            if not pool:
                sys.exit("kernel_ab: PyTorch has no OpenMP pool here; nothing to compare")
            names, other = ("own threads", "openmp pool"), working

        def select(side: int):
            if args.rev:
                libs[torch.float32] = other if side == 0 else working
            else:
                working.use_openmp_pool(None if side == 0 else pool)

        best, fns = {}, passes(args.batch, args.dim, args.length, args.d_state)
        try:
            for _ in range(args.rounds):
                for side in (0, 1):
                    select(side)
                    for what, fn in fns.items():
                        fn()  # warm-up
                        for _ in range(4):
                            start = time.perf_counter()
                            fn()
                            elapsed = time.perf_counter() - start
                            best[what, side] = min(best.get((what, side), elapsed), elapsed)
        finally:
            libs[torch.float32] = working
            if pool:
                working.use_openmp_pool(pool)
    print(f"scan kernel A/B, batch {args.batch}, d_inner {args.dim}, T={args.length}, "
          f"d_state {args.d_state}, {args.threads} threads, best of {4 * args.rounds}")
    for what in ("forward", "forward+backward"):
        a, b = best[what, 0], best[what, 1]
        print(f"{what:17s} {names[0]}: {a * 1e3:7.2f} ms   {names[1]}: {b * 1e3:7.2f} ms   "
              f"A/B {a / b:.2f}x")


if __name__ == "__main__":
    main()

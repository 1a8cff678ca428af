#!/usr/bin/env python
"""A/B timing of one Mamba training step with the CPU kernels on PyTorch's OpenMP pool
versus on another OpenMP runtime loaded in the same process, alternated in one process.

    tools/venv/bin/python tools/openmp_pool_ab.py [--seconds 3 --batch 16 --scale 0.5]

ESPnet imports librosa, librosa imports scikit-learn, and scikit-learn brings a libgomp
of its own. Until 2026-12-08 ``cpu_kernels.openmp_parallel_address`` took the first
libgomp in /proc/self/maps by name, which in a training process was scikit-learn's: the
kernels then ran on a second pool whose workers spun against PyTorch's. This script loads
that second runtime (scikit-learn's OpenMP helper), then times the ``benchmark train``
step of the Mamba encoder with the kernels on each pool, round by round, best time per side.
"""

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from espnet_mamba.asr.espnet_compat import CTC  # noqa: E402
from espnet_mamba.benchmark.models import ENCODERS, FEATURE_DIM, build  # noqa: E402
from espnet_mamba.benchmark.train import VOCAB, make_batch  # noqa: E402
from espnet_mamba.ops import cpu_kernels  # noqa: E402


def foreign_openmp_address(own: int):
    """GOMP_parallel of an OpenMP runtime other than PyTorch's, loading scikit-learn's."""
    import sklearn.utils._openmp_helpers  # noqa: F401 - maps scikit-learn's libgomp

    for path in sorted(cpu_kernels._loaded_libraries()):
        if os.path.basename(path).startswith(("libgomp", "libiomp", "libomp")):
            address = ctypes.cast(ctypes.CDLL(path).GOMP_parallel, ctypes.c_void_p).value
            if address != own:
                return path, address
    return None, None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--scale", type=float, default=0.5, help="model size, as benchmark train --scale")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    lib = cpu_kernels.library(torch.float32)
    own = cpu_kernels.openmp_parallel_address()
    if not own:
        sys.exit("openmp_pool_ab: PyTorch has no OpenMP pool here; nothing to compare")
    foreign_path, foreign = foreign_openmp_address(own)
    if not foreign:
        sys.exit("openmp_pool_ab: no second OpenMP runtime could be loaded (scikit-learn's)")

    torch.manual_seed(0)
    encoder = build(ENCODERS, "mamba", FEATURE_DIM, scale=args.scale).train()
    ctc = CTC(VOCAB, encoder.output_size())
    feats, lens, targets, target_lens = make_batch(args.batch, args.seconds, "cpu")

    def step():
        encoder.zero_grad(set_to_none=True)
        ctc.zero_grad(set_to_none=True)
        out, out_lens, _ = encoder(feats, lens)
        ctc(out, out_lens, targets, target_lens).backward()

    sides = {"PyTorch's pool": own, os.path.basename(foreign_path): foreign}
    best = {}
    try:
        for _ in range(args.rounds):
            for name, address in sides.items():
                lib.use_openmp_pool(address)
                step()  # warm-up: the other pool's workers go back to sleep
                for _ in range(2):
                    start = time.perf_counter()
                    step()
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    finally:
        lib.use_openmp_pool(own)
    (a_name, a), (b_name, b) = best.items()
    print(f"Mamba encoder training step, batch {args.batch} x {args.seconds:g} s, scale {args.scale:g}, "
          f"{torch.get_num_threads()} threads, best of {2 * args.rounds}")
    print(f"kernels on {a_name}: {a:.3f} s   on {b_name}: {b:.3f} s   ratio {b / a:.2f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Print what espnet-mamba finds installed, which scan backend runs and why.

Exit status 1 when something the package needs is missing.
"""

import importlib
import shutil
import sys


def version(module: str):
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - report any import failure
        return None, f"{type(exc).__name__}: {exc}"
    return getattr(mod, "__version__", "installed"), None


def main() -> int:
    problems = []
    print(f"python            {sys.version.split()[0]} ({sys.executable})")
    required = ["torch", "torchaudio", "espnet", "sentencepiece", "kaldiio", "soundfile", "jiwer",
                "tensorboard", "espnet_mamba"]
    for module in required:
        ver, err = version(module)
        print(f"{module:<17} {ver or 'MISSING: ' + err}")
        if ver is None:
            problems.append(module)
    for module in ("mamba_ssm", "causal_conv1d"):
        ver, err = version(module)
        print(f"{module:<17} {ver or 'not available (optional CUDA kernels): ' + err.splitlines()[0]}")
    for tool in ("sox", "espeak-ng", "flite"):
        path = shutil.which(tool)
        print(f"{tool:<17} {path or 'not found (needed by the synthetic demo recipe)'}")
    if "torch" not in problems:
        from espnet_mamba.ops import backend

        info = backend.describe()
        print(f"cuda available    {info['cuda_available']}")
        print(f"scan kernel       {info['selective_scan_kernel'].splitlines()[0]}")
        print(f"conv kernel       {info['causal_conv1d_kernel'].splitlines()[0]}")
        print(f"cpu kernels       {info['cpu_kernels'].splitlines()[0]}")
        import torch

        from espnet_mamba.ops import cpu_kernels

        pool = cpu_kernels.openmp_parallel_address()
        print(f"cpu kernel pool   {torch.get_num_threads()} threads on "
              f"{cpu_kernels.library_containing(pool) if pool else 'threads of their own (no OpenMP in torch)'}")
        print(f"backend request   {info['requested']} (set {backend.BACKEND_ENV}=auto|torch|cpu|cuda)")
        print(f"backend used      {info['default']}")
    if problems:
        print(f"\nMISSING: {', '.join(problems)}. Run tools/install.sh.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

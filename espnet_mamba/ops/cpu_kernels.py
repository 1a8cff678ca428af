"""Build and load the compiled CPU kernels (``csrc/mamba_cpu.c``).

Why C through ctypes, not numba or a torch C++ extension (measured on the
project's 2-core AMD EPYC VM with AVX-512, 2026-12):

* numba 0.68 (installed with ESPnet through librosa), the same algorithm
  (16-channel blocks, ``prange`` over blocks, fastmath), forward scan at
  batch 4, d_inner 512, d_state 16, T=2000, 2 threads, in one process:
  1077 ms against 276 ms for this kernel (its ``math.exp`` stays a scalar
  call per element), plus 6.7 s of compilation in every new process unless
  numba's cache works; its default threading layer keeps a pool alive that a
  forked child (DataLoader workers, ESPnet's launcher) cannot use.
* ``torch.utils.cpp_extension`` was not tried: it compiles against the torch
  headers and needs ninja and a C++ compiler. This file is plain C that
  needs nothing from torch: both builds (fp32, fp64) took 1.5 s with gcc 12,
  once per machine.
* speed comes from the loop shape: 16 neighbouring channels are computed
  side by side, so the state of each d_state index is one AVX-512 vector and
  ``exp(delta A)`` our own polynomial that the compiler vectorises;
  softplus/silu are vectorised the same way (see the C file's comments).
* threads: ``torch.get_num_threads()`` of them, taken from PyTorch's own
  OpenMP pool (the ``GOMP_parallel`` that libtorch_cpu resolves to: not another
  libgomp in the process, such as scikit-learn's, whose pool would compete with it).
  The first version started threads of its own in each call; but PyTorch's
  workers spin for milliseconds after every op, so they shared the two cores
  with ours: two threads ran 1.1x one (forward scan between PyTorch ops, batch 4,
  d_inner 512, T=500). In a forked child (DataLoader workers), where libgomp's
  pool hangs, and where PyTorch has no OpenMP runtime, each call starts and joins
  threads of its own, as before.

The shared libraries go to ``$ESPNET_MAMBA_CACHE`` or
``$XDG_CACHE_HOME/espnet_mamba`` (default ``~/.cache/espnet_mamba``), falling
back to the temp directory when that is not writable: site-packages may be
read-only. The file name carries a hash of the source, the compiler, its flags
and the CPU's feature flags (``-march=native``), so a home directory shared by
machines of different CPUs gets one build per CPU kind.
"""

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Tuple

import torch

logger = logging.getLogger("espnet_mamba")

SOURCE = Path(__file__).with_name("csrc") / "mamba_cpu.c"
CACHE_ENV = "ESPNET_MAMBA_CACHE"
MAX_CHUNK = 64           # the C source's MAX_CHUNK: steps between backward checkpoints
MAX_STATE = 256          # the C source's MAX_STATE: largest d_state
LANES = 16               # the C source's LANES: channels per vector block
DEFAULT_CHUNK = 32
# -fno-trapping-math, -fno-math-errno, -ffp-contract=fast: without them gcc 12 keeps the
# lane loops' selects (clamps, softplus' branches) and its multiply-adds scalar on an AVX2
# CPU (Zen 3): 12.6 ns per state element on one core, 1.5 ns with them (forward scan, batch 4,
# d_inner 512, T=500). None of them changes what the C code computes but the rounding of a
# fused multiply-add; NaN and Inf keep their meaning (no -ffast-math, no -ffinite-math-only)
BASE_FLAGS = ["-O3", "-std=c11", "-fPIC", "-shared", "-fopenmp-simd",
              "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=fast"]
# rows of work below which starting a thread costs more than it saves (~20 us each)
MIN_ELEMENTS_PER_THREAD = 1 << 15


class _Strides3(ctypes.Array):
    _type_ = ctypes.c_int64
    _length_ = 3


_P = ctypes.c_void_p
_I = ctypes.c_int64


class ScanArgs(ctypes.Structure):
    """Mirror of ``scan_args`` in mamba_cpu.c (same order, same types)."""
    _fields_ = ([(n, _P) for n in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0",
                                   "y", "last", "ckpt", "grad_y", "grad_last", "grad_u",
                                   "grad_delta", "grad_z", "grad_h0", "grad_A", "grad_B",
                                   "grad_C", "grad_D", "grad_bias")]
                + [(n, _I) for n in ("batch", "dim", "len", "nstate", "groups", "chunk",
                                     "softplus", "B_varies", "C_varies")]
                + [(n, _Strides3) for n in ("s_u", "s_delta", "s_z", "s_y", "s_B", "s_C",
                                            "s_gy", "s_gu", "s_gdelta", "s_gz")])


class StepArgs(ctypes.Structure):
    """Mirror of ``step_args``."""
    _fields_ = ([(n, _P) for n in ("state", "u", "delta", "A", "B", "C", "D", "z", "delta_bias",
                                   "y")]
                + [(n, _I) for n in ("batch", "dim", "nstate", "softplus", "s_u", "s_delta",
                                     "s_z", "s_y", "s_B", "s_C")])


class ConvArgs(ctypes.Structure):
    """Mirror of ``conv_args``."""
    _fields_ = ([(n, _P) for n in ("x", "weight", "bias", "initial", "y", "grad_y", "grad_x",
                                   "grad_weight", "grad_bias", "grad_initial")]
                + [(n, _I) for n in ("batch", "dim", "len", "width", "silu")]
                + [(n, _Strides3) for n in ("s_x", "s_y", "s_gy", "s_gx")])


def compiler() -> str:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"


def cache_dir() -> Path:
    """A writable directory for the built libraries (see the module docstring)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        candidates = [Path(configured)]
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        candidates = [Path(xdg) / "espnet_mamba"]
    candidates.append(Path(tempfile.gettempdir()) / f"espnet_mamba-{os.getuid()}")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=path, delete=True)
            probe.close()
            return path
        except OSError:
            continue
    raise OSError(f"no writable cache directory for the compiled kernels (tried "
                  f"{', '.join(map(str, candidates))}); set {CACHE_ENV}")


def _cpu_flags() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return os.uname().machine


def _compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _build(cc: str, flags, variant_flags, target: Path, source: Path = SOURCE):
    """Compile to a temporary name, then rename: concurrent builds never see half a file."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    cmd = [cc, *flags, *variant_flags, str(source), "-o", str(tmp), "-lm", "-lpthread"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"compiling the CPU kernels failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    os.replace(tmp, target)


@functools.lru_cache(maxsize=None)
def load() -> Tuple[Optional[dict], Optional[str]]:
    """({torch.float32: lib, torch.float64: lib}, None), or (None, why not)."""
    cc = compiler()
    if shutil.which(cc) is None and not os.path.isfile(cc):
        return None, f"no C compiler found (looked for $CC, cc, gcc); install gcc"
    try:
        source = SOURCE.read_bytes()
        libs = {}
        for native in (True, False):  # -march=native first; a compiler without it: portable
            flags = BASE_FLAGS + (["-march=native"] if native else [])
            key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(),
                                             _compiler_version(cc).encode(),
                                             _cpu_flags().encode()])).hexdigest()[:16]
            try:
                for dtype, variant in ((torch.float32, []), (torch.float64, ["-DREAL_IS_DOUBLE"])):
                    name = f"mamba_cpu_{'f64' if variant else 'f32'}_{key}.so"
                    target = cache_dir() / name
                    if not target.exists():
                        logger.info("compiling the CPU kernels into %s (once per machine)", target)
                        _build(cc, flags, variant, target)
                    libs[dtype] = _bind(ctypes.CDLL(str(target)))
                break
            except RuntimeError:
                if not native:
                    raise
        return libs, None
    except Exception as exc:  # noqa: BLE001 - any failure means "use the PyTorch path"
        return None, f"{type(exc).__name__}: {exc}"


def _mappings():
    """The fields of each line of /proc/self/maps that maps a file (Linux), or none."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return [f for f in (line.split() for line in maps) if len(f) > 5 and "/" in f[-1]]
    except OSError:
        return []


def _loaded_libraries():
    """Paths of the shared libraries mapped into this process."""
    return {f[-1] for f in _mappings()}


def library_containing(address: int) -> Optional[str]:
    """The path of the mapped file that holds ``address`` (for check_install and the tests)."""
    for f in _mappings():
        start, end = (int(x, 16) for x in f[0].split("-"))
        if start <= address < end:
            return f[-1]
    return None


@functools.lru_cache(maxsize=None)
def openmp_parallel_address() -> Optional[int]:
    """Address of the ``GOMP_parallel`` that PyTorch itself calls, None when it has no
    OpenMP runtime.

    A process can hold several OpenMP runtimes: ESPnet imports librosa, which imports
    scikit-learn, which brings a libgomp of its own. Its pool is not PyTorch's: with it,
    our kernels' workers and PyTorch's spin against each other after every op (on the
    2-core VM: 3 busy threads, ~35 % of a Mamba training step's CPU time inside the two
    libgomps' wait loops). So the symbol is looked up through libtorch_cpu's handle,
    which searches libtorch_cpu and the libraries it was linked against, in that order;
    a torch without a separate libtorch_cpu: a runtime under torch's directory, then any.
    """
    if not torch.backends.openmp.is_available():
        return None
    libraries, torch_dir = _loaded_libraries(), os.path.dirname(torch.__file__)
    torch_cpu = sorted(p for p in libraries if os.path.basename(p).startswith("libtorch_cpu."))
    runtimes = sorted((p for p in libraries
                       if os.path.basename(p).startswith(("libgomp", "libiomp", "libomp"))),
                      key=lambda p: (not p.startswith(torch_dir), p))
    for path in torch_cpu + runtimes:
        try:
            return ctypes.cast(ctypes.CDLL(path).GOMP_parallel, ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
    return None


def _bind(lib):
    for name, args in (("scan_fwd", ScanArgs), ("scan_bwd", ScanArgs), ("state_step", StepArgs),
                       ("conv_fwd", ConvArgs), ("conv_bwd", ConvArgs), ("conv_step", ConvArgs)):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.POINTER(args), ctypes.c_int]
        fn.restype = None
    lib.use_openmp_pool.argtypes = [ctypes.c_void_p]
    lib.use_openmp_pool.restype = None
    pool = openmp_parallel_address()
    if pool:
        lib.use_openmp_pool(pool)
    return lib


def library(dtype: torch.dtype):
    libs, error = load()
    if libs is None:
        raise RuntimeError(f"the compiled CPU kernels are not available: {error}")
    return libs[dtype]


def blocks(batch: int, dim: int, groups: int) -> int:
    """How many LANES-channel blocks the scan kernels split the work into."""
    return batch * groups * -(-(dim // groups) // LANES)


def threads_for(elements: int, units: int) -> int:
    """torch's intra-op thread count, fewer when the work is too small to share
    or has fewer ``units`` (blocks, rows) than threads."""
    return max(1, min(torch.get_num_threads(), units, elements // MIN_ELEMENTS_PER_THREAD))


def ptr(t: Optional[torch.Tensor]):
    return None if t is None else t.data_ptr()


def strides3(t: Optional[torch.Tensor]):
    return _Strides3(*t.stride()) if t is not None else _Strides3(0, 0, 0)

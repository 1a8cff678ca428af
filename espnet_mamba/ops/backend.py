"""Which implementation runs: CUDA kernels, compiled CPU kernels, or PyTorch.

One dispatch point for every op in this package. The choice is

* ``ESPNET_MAMBA_BACKEND=torch``: always the pure-PyTorch path (the reference);
* ``ESPNET_MAMBA_BACKEND=cuda``: the mamba-ssm / causal-conv1d kernels; an
  error if they are missing or the tensors are not on a GPU (use it to make
  sure a GPU run is really fast);
* ``ESPNET_MAMBA_BACKEND=cpu``: the compiled CPU kernels (``cpu_kernels.py``);
  an error if they cannot be built or the tensors are not on the CPU;
* unset or ``auto``: the CUDA kernels for CUDA tensors when they import, the
  compiled kernels for CPU tensors when they build, PyTorch otherwise.

A ``backend=`` argument to an op overrides the environment. The decision and
its reason are logged once per (op, backend, reason), not on every call.
"""

import functools
import importlib
import logging
import os
from typing import Optional, Tuple

import torch

logger = logging.getLogger("espnet_mamba")

BACKEND_ENV = "ESPNET_MAMBA_BACKEND"
BACKENDS = ("auto", "torch", "cpu", "cuda")

_logged = set()


@functools.lru_cache(maxsize=None)
def import_kernel(module: str, attr: str):
    """Return ``module.attr`` or the ImportError text if it cannot be imported.

    mamba-ssm cannot even be imported on a machine without CUDA (its modules
    do a bare ``import selective_scan_cuda``), so any exception counts as
    "not available".
    """
    try:
        return getattr(importlib.import_module(module), attr), None
    except Exception as exc:  # noqa: BLE001 - any failure means "no kernel"
        return None, f"{type(exc).__name__}: {exc}"


def _kernel_with_extension(module: str, attr: str, extension: str):
    """``module.attr`` only if the compiled extension behind it loads too.

    mamba-ssm's main branch imports ``selective_scan_cuda`` lazily: its Python
    function then imports fine and fails at the first call without the build.
    """
    kernel, error = import_kernel(module, attr)
    if kernel is None:
        return kernel, error
    ext, ext_error = import_kernel(extension, "__name__")
    return (kernel, None) if ext is not None else (None, f"{extension} is not built ({ext_error})")


def selective_scan_kernel():
    return _kernel_with_extension("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn",
                                  "selective_scan_cuda")


def causal_conv1d_kernel():
    return _kernel_with_extension("causal_conv1d", "causal_conv1d_fn", "causal_conv1d_cuda")


def causal_conv1d_update_kernel():
    return _kernel_with_extension("causal_conv1d", "causal_conv1d_update", "causal_conv1d_cuda")


def cpu_kernels():
    """(libraries, None) or (None, why the compiled CPU kernels are not available)."""
    from espnet_mamba.ops import cpu_kernels as _cpu

    return _cpu.load()


def requested_backend(backend: Optional[str] = None) -> str:
    name = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name not in BACKENDS:
        source = "backend argument" if backend else f"environment variable {BACKEND_ENV}"
        raise ValueError(f"{source}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def device_type(tensor: torch.Tensor) -> str:
    """Where a tensor lives, as the dispatch sees it (the kernel-contract tests
    replace this to send CPU tensors through the CUDA branch to stand-in kernels)."""
    return tensor.device.type


def choose(op: str, tensor: torch.Tensor, backend: Optional[str] = None,
           cuda_kernel: Optional[Tuple] = None, cuda_unsupported: Optional[str] = None,
           cpu_unsupported: Optional[str] = None) -> str:
    """Return "cuda", "cpu" or "torch" for one call of ``op`` and log the choice once.

    ``cuda_kernel`` is the (kernel, import error) of the op's CUDA kernel (None:
    the op has none). ``*_unsupported`` names what the call asks that the
    kernel cannot do (an initial state, a width), which sends "auto" to PyTorch.
    """
    want = requested_backend(backend)
    if want == "torch":
        return _log(op, "torch", "forced by " + (f"backend={backend!r}" if backend else BACKEND_ENV))
    device = device_type(tensor)
    native = device if device in ("cuda", "cpu") else None  # the compiled kernel for this device
    problems = []
    if want != "auto" and want != native:
        problems.append(f"tensors are on {device}, not {want}")
    elif native == "cuda":
        kernel, error = cuda_kernel if cuda_kernel is not None else (None, "the op has no CUDA kernel")
        if kernel is None:
            problems.append(f"kernel not importable ({error})")
        if cuda_unsupported:
            problems.append(f"the kernel does not support {cuda_unsupported}")
    elif native == "cpu":
        libs, error = cpu_kernels()
        if libs is None:
            problems.append(f"compiled CPU kernels not available ({error})")
        if cpu_unsupported:
            problems.append(f"the compiled kernel does not support {cpu_unsupported}")
    else:
        problems.append(f"no compiled kernel for {device} tensors")
    if not problems:
        return _log(op, native, "compiled kernel available for " + device + " tensors")
    if want != "auto":
        fix = ("Build the kernels with `tools/install.sh --cuda`" if want == "cuda"
               else "Install a C compiler (gcc) or set CC")
        raise RuntimeError(f"{op}: backend {want!r} was forced but " + "; ".join(problems)
                           + f". {fix}, or unset {BACKEND_ENV}.")
    return _log(op, "torch", "; ".join(problems))


def _log(op: str, name: str, reason: str) -> str:
    key = (op, name, reason)
    if key not in _logged:
        _logged.add(key)
        logger.info("%s: using the %s implementation (%s)", op, name, reason)
    return name


def describe() -> dict:
    """What check_install prints: kernel availability and the default choice."""
    scan, scan_err = selective_scan_kernel()
    conv, conv_err = causal_conv1d_kernel()
    cpu, cpu_err = cpu_kernels()
    cuda = torch.cuda.is_available()
    want = requested_backend()
    cpu_choice = ("compiled CPU kernels" if cpu is not None
                  else f"torch (compiled CPU kernels not available: {cpu_err})")
    cuda_choice = ("cuda kernels" if scan is not None and cuda
                   else "torch (" + ("no CUDA device" if not cuda else "mamba-ssm kernel not importable") + ")")
    if want == "torch":
        default = f"torch (forced by {BACKEND_ENV}=torch)"
    else:
        default = f"CPU tensors: {cpu_choice}; CUDA tensors: {cuda_choice}"
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "requested": want,
        "selective_scan_kernel": "available" if scan is not None else f"missing: {scan_err}",
        "causal_conv1d_kernel": "available" if conv is not None else f"missing: {conv_err}",
        "cpu_kernels": "available" if cpu is not None else f"missing: {cpu_err}",
        "default": default,
    }

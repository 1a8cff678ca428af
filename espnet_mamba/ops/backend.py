"""Which implementation runs: the mamba-ssm / causal-conv1d CUDA kernels or PyTorch.

One dispatch point for every op in this package. The choice is

* ``ESPNET_MAMBA_BACKEND=torch``: always the pure-PyTorch path;
* ``ESPNET_MAMBA_BACKEND=cuda``: the kernels; an error if they are missing or
  the tensors are not on a GPU (use it to make sure a GPU run is really fast);
* unset or ``auto``: the kernels when they import and the tensors are on CUDA,
  PyTorch otherwise.

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
BACKENDS = ("auto", "torch", "cuda")

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


def selective_scan_kernel():
    return import_kernel("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn")


def causal_conv1d_kernel():
    return import_kernel("causal_conv1d", "causal_conv1d_fn")


def causal_conv1d_update_kernel():
    return import_kernel("causal_conv1d", "causal_conv1d_update")


def requested_backend(backend: Optional[str] = None) -> str:
    name = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name not in BACKENDS:
        source = "backend argument" if backend else f"environment variable {BACKEND_ENV}"
        raise ValueError(f"{source}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def choose(op: str, kernel_status: Tuple, tensor: torch.Tensor,
           backend: Optional[str] = None, unsupported: Optional[str] = None) -> str:
    """Return "cuda" or "torch" for one call of ``op`` and log the choice once.

    ``unsupported`` names an argument the kernel cannot take (e.g. an initial
    state), which sends an "auto" call to PyTorch.
    """
    want = requested_backend(backend)
    kernel, import_error = kernel_status
    if want == "torch":
        return _log(op, "torch", "forced by " + (f"backend={backend!r}" if backend else BACKEND_ENV))
    problems = []
    if kernel is None:
        problems.append(f"kernel not importable ({import_error})")
    if not tensor.is_cuda:
        problems.append(f"tensors are on {tensor.device.type}, not cuda")
    if unsupported:
        problems.append(f"the kernel does not support {unsupported}")
    if not problems:
        return _log(op, "cuda", "kernel imported and tensors on cuda")
    if want == "cuda":
        raise RuntimeError(f"{op}: backend 'cuda' was forced but " + "; ".join(problems)
                           + ". Build the kernels with `tools/install.sh --cuda` or unset "
                           + BACKEND_ENV + ".")
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
    cuda = torch.cuda.is_available()
    want = requested_backend()
    if want == "torch":
        default = f"torch (forced by {BACKEND_ENV}=torch)"
    elif scan is not None and cuda:
        default = "cuda kernels for CUDA tensors, torch for CPU tensors"
    else:
        why = []
        if scan is None:
            why.append("mamba-ssm kernel not importable")
        if not cuda:
            why.append("no CUDA device")
        default = "torch (" + "; ".join(why) + ")"
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "requested": want,
        "selective_scan_kernel": "available" if scan is not None else f"missing: {scan_err}",
        "causal_conv1d_kernel": "available" if conv is not None else f"missing: {conv_err}",
        "default": default,
    }

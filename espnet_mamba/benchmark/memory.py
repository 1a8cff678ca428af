"""Peak memory of one call: CUDA allocator stats on a GPU, sampled RSS on a CPU.

PyTorch's CPU allocator keeps no peak statistic, so on a CPU a thread samples
the process's resident set size every millisecond while the call runs and
reports the rise over the level before it (after returning freed heap to the
OS, so earlier runs do not hide this one's growth).
"""

import ctypes
import os
import threading
import time
from typing import Callable, Tuple

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _trim_heap():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the baseline is then a little high, never too low
        pass


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> Tuple[object, float]:
    """Run fn once; return (its result, peak extra memory in MiB)."""
    out, rise, _ = peak_memory_detail(fn, device)
    return out, rise


def peak_memory_detail(fn: Callable[[], object], device: torch.device) -> Tuple[object, float, float]:
    """Run fn once; return (its result, peak extra memory, peak of the whole process) in MiB. The
    whole process (model, libraries and all) is the resident set on a CPU, allocated memory on a GPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return out, (peak - before) / 2 ** 20, peak / 2 ** 20
    _trim_heap()
    baseline = _rss_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = fn()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    return out, (peak[0] - baseline) / 2 ** 20, peak[0] / 2 ** 20


def cap_cpu_memory(fraction: float = 0.8) -> float:
    """Limit this process's address space to what is now mapped plus ``fraction`` of the
    available RAM, so that a model too large for the machine raises a catchable
    allocation error instead of being killed by the kernel. Returns the headroom in GiB."""
    import resource

    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * _PAGE
    headroom = int(fraction * available)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom, resource.RLIM_INFINITY))
    return headroom / 2 ** 30


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text

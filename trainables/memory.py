"""Peak memory of a training run (the process's, and the GPU's where there is one), giving
memory back between the runs a process holds, a cap on what a run may allocate, and running out
of memory told apart from other failures.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
from pathlib import Path

import torch


def reset_peak_memory() -> None:
    """Start counting this process's peak memory (and the GPU's) from now."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak resident size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def release_memory() -> None:
    """Give the memory a finished run freed back to the operating system. Tune runs trial
    after trial in the same process; without this, the process keeps the last trial's peak
    while it waits for the next (MiniLM on SST-2: 1.2 GB held, 0.67 GB after)."""
    gc.collect()  # the Trainer, the model and the optimizer refer to each other
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory_mb() -> dict[str, float]:
    """The process's peak resident memory since `reset_peak_memory`, and the GPU's when
    there is one."""
    peaks: dict[str, float] = {}
    try:
        status = Path("/proc/self/status").read_text()
        kilobytes = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
    except (OSError, StopIteration, ValueError):
        kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # since the start
    peaks["peak_memory_mb"] = round(kilobytes / 1024, 1)
    if torch.cuda.is_available():
        peaks["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peaks


_HOST_MESSAGES = ("can't allocate memory", "cannot allocate memory", "out of memory")


class OutOfMemoryRunError(RuntimeError):
    """A run ran out of device or host memory: an answer about its configuration (too big a
    batch, too long a row for this device), not a crash to retry."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says that memory ran out: CUDA's, or the host's (Python's
    ``MemoryError``, PyTorch's CPU allocator)."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and any(
        text in str(error).lower() for text in _HOST_MESSAGES
    )


def cap_memory(gigabytes: float) -> None:
    """Let this process allocate at most about ``gigabytes`` more than it holds now
    (``RLIMIT_DATA``: its heap and private writable mappings, which PyTorch's tensors on the
    host are), so that a run that needs more fails alone, with an error it can report,
    instead of the node's out-of-memory killer taking other runs down with it. The cap stays
    for the rest of the process; a later, larger cap raises it again."""
    held = _data_bytes()
    if held is None:
        return
    limit = held + int(gigabytes * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _data_bytes() -> int | None:
    """The process's data segment and private writable mappings now (VmData)."""
    try:
        status = Path("/proc/self/status").read_text()
        return 1024 * next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmData:")
        )
    except (OSError, StopIteration, ValueError):
        return None

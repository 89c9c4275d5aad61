"""How many threads the in-process models use.

Both llama.cpp and OpenBLAS (NumPy's BLAS) park their worker threads in spin
loops between steps. When they ask for more cores than are free, with the
event loop, other requests or other processes competing, a step that should
take microseconds waits for scheduler quanta: measured on 2 shared cores,
a 30-token llama.cpp prompt took 0.2 s with one thread and 3-4 s with two,
and a MiniLM batch of 240 sentences 2.6 s with one BLAS thread and 20-37 s
with two. So the default is half the cores, never all of them.
"""

from __future__ import annotations

import ctypes
import os

# OpenBLAS builds name their setter differently (NumPy >= 2 wheels ship scipy-openblas).
_OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(configured: int | None) -> int:
    """`threads` from the config, else half the available cores (at least one)."""
    if configured:
        return configured
    return max(1, available_cores() // 2)


def limit_blas_threads(threads: int) -> bool:
    """Cap OpenBLAS's thread pool, process-wide (it has no per-call setting).

    Returns False when no OpenBLAS is loaded (another BLAS: use its
    environment variable, e.g. MKL_NUM_THREADS).
    """
    import numpy  # noqa: F401  (loads the BLAS library we look for)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return False
    found = False
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                found = True
                break
    return found

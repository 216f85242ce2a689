"""The benchmark protocol shared by ``benches/bench_*.py`` and ``benches/run_all.py``.

A bench module exposes ``run(quick: bool) -> list[dict]``: it measures, and returns one
*record* per measured rate (it may also print, as its ``main`` does). ``quick=True`` is a smoke
run on tiny sizes that exercises every code path in seconds; its timings mean nothing. A record
is a flat dict built by :func:`record`:

=========== ======== =====================================================================
key         type     meaning
=========== ======== =====================================================================
bench       str      the module, e.g. ``"simulate"`` for ``bench_simulate.py``
case        str      what was measured, human-readable (``"fused, poisson 1e9"``)
stage       str      ``end-to-end``, ``extract``, ``fft``, ``noise``, ``detector``, ``write``,
                     ``grouping``, ``knn``, ``sampling``... (one of :data:`STAGES`)
variant     str      ``ptyfast`` or a baseline: ``numpy`` (NumPy/SciPy equivalent),
                     ``tensorflow`` (``ptyfast.tf_reference``), ``ptychopinn-style``
                     (the reference's per-patch algorithm), ``dask``...
N           int|None pattern side in pixels
threads     int|None threads the variant used (ptyfast: rayon threads; NumPy/SciPy: FFT workers)
n           int      work items timed (patterns, samples, points)
unit        str      unit of ``rate``: ``patterns/s``, ``samples/s``, ``points/s``, ``groups/s``
rate        float    ``n / seconds``
seconds     float    the timing (best of ``repeats``)
repeats     int      how many runs the best was taken of
params      dict     anything else (photons, object size, peak bytes, notes)
=========== ======== =====================================================================

``run_all.py`` adds the machine description (:func:`machine`) and writes one JSON file.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

SCHEMA_VERSION = 1
STAGES = (
    "end-to-end",
    "extract",
    "fft",
    "noise",
    "detector",
    "write",
    "grouping",
    "knn",
)
VARIANTS = ("ptyfast", "numpy", "tensorflow", "ptychopinn-style", "dask")
KEYS = {
    "bench": str,
    "case": str,
    "stage": str,
    "variant": str,
    "N": (int, type(None)),
    "threads": (int, type(None)),
    "n": int,
    "unit": str,
    "rate": float,
    "seconds": float,
    "repeats": int,
    "params": dict,
}


def record(
    bench: str,
    case: str,
    *,
    stage: str,
    variant: str,
    n: int,
    seconds: float,
    N: int | None = None,
    threads: int | None = None,
    unit: str = "patterns/s",
    repeats: int = 1,
    **params: Any,
) -> dict[str, Any]:
    """One measured rate in the shared schema (see the module docstring)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    seconds = float(seconds)
    return {
        "bench": bench,
        "case": case,
        "stage": stage,
        "variant": variant,
        "N": None if N is None else int(N),
        "threads": None if threads is None else int(threads),
        "n": int(n),
        "unit": unit,
        "rate": float(n) / seconds if seconds > 0 else float("inf"),
        "seconds": seconds,
        "repeats": int(repeats),
        "params": params,
    }


def check_record(r: Any) -> list[str]:
    """Problems with a record (an empty list when it follows the schema)."""
    if not isinstance(r, dict):
        return [f"record must be a dict, got {type(r).__name__}"]
    errs = [f"missing key {k!r}" for k in KEYS if k not in r]
    errs += [f"unknown key {k!r}" for k in r if k not in KEYS]
    for k, t in KEYS.items():
        if k in r and (not isinstance(r[k], t) or isinstance(r[k], bool)):
            errs.append(f"{k} must be {t}, got {type(r[k]).__name__}")
    if not errs:
        if r["stage"] not in STAGES:
            errs.append(f"stage {r['stage']!r} not in {STAGES}")
        if r["variant"] not in VARIANTS:
            errs.append(f"variant {r['variant']!r} not in {VARIANTS}")
        if not r["seconds"] > 0 or not r["rate"] > 0 or r["n"] < 1:
            errs.append(f"seconds, rate and n must be positive, got {r}")
    return errs


def best_of(fn: Callable[[], Any], repeats: int, clock: Callable[[], float] = time.perf_counter):
    """Best (smallest) time of ``repeats`` calls of ``fn``, in seconds."""
    return best_of_each([fn], max(1, repeats), clock)[0]


def best_of_each(
    fns: Iterable[Callable[[], Any]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Best time of each of ``fns``, in seconds, the functions timed in turn, repeat by repeat,
    so that a change of machine load hits every variant alike and their ratios stay
    meaningful."""
    calls = list(fns)
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, fn in enumerate(calls):
            t = clock()
            fn()
            best[i] = min(best[i], clock() - t)
    return best


# --------------------------------------------------------------------------- the machine


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What ran the benchmarks: CPU, cores, memory, OS, versions, SIMD level, threads."""
    import numpy as np

    from ptyfast import __version__, _kernels

    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), []
    )
    mem = next(
        (
            int(ln.split()[1]) * 1024
            for ln in _read("/proc/meminfo").splitlines()
            if ln.startswith("MemTotal:")
        ),
        None,
    )
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count()
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "cpus_available": affinity,
        "cpu_flags_simd": sorted(
            f
            for f in flags
            if f in {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"}
        ),
        "memory_bytes": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
        "ptyfast": __version__,
        "git_commit": commit,
        "simd_level": _kernels.simd_level(),
        "ptyfast_threads": _kernels.num_threads(),
        "env": {
            k: os.environ[k]
            for k in ("RAYON_NUM_THREADS", "PTYFAST_SIMD", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE")
            if k in os.environ
        },
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter (``benches/`` on the path); parse its last stdout
    line as JSON. Used where a measurement needs its own process (thread count, peak RSS)."""
    here = os.path.dirname(os.path.abspath(__file__))
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, full_env.get("PYTHONPATH")]))
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env
    )
    if res.returncode:
        raise RuntimeError(f"benchmark child failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])

"""Nongrid simulation throughput and streaming memory.

Prints patterns/s of ``generate_simulated_data`` (N = 64, Poisson on) against a vectorised
NumPy/SciPy equivalent run in the same process (bilinear sub-pixel patches, ``scipy.fft`` with
all workers, ``numpy`` Poisson), and the peak resident memory of the streaming CLI.

    python benches/bench_nongrid.py [--quick] [--stream-n 1000000]

``run(quick)`` returns the records (``benches/_harness.py``); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.fft
from _harness import record

from ptyfast import _kernels
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.datagen.objects import sim_object_image
from ptyfast.nongrid_simulation import generate_simulated_data, random_positions
from ptyfast.probe import get_default_probe


def numpy_equivalent(obj, probe, n, buffer, nphotons, rng, chunk=2048):
    """Vectorised NumPy/SciPy nongrid simulation (same physics), chunked to bound memory."""
    N = probe.shape[0]
    x, y, _ = random_positions(n, *obj.shape, buffer, 42)
    h = N // 2
    r = np.arange(N, dtype=np.float32)
    padded = np.pad(obj, 1)
    out = np.empty((n, N, N), np.float32)

    def patches(xs, ys):
        sx = xs[:, None].astype(np.float32) + r[None, :] - h + 1  # +1 for the pad
        sy = ys[:, None].astype(np.float32) + r[None, :] - h + 1
        x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        wx, wy = (sx - x0)[:, None, :], (sy - y0)[:, :, None]
        x0 = np.clip(x0, 0, padded.shape[1] - 2)
        y0 = np.clip(y0, 0, padded.shape[0] - 2)
        Y0, X0 = y0[:, :, None], x0[:, None, :]
        return (
            padded[Y0, X0] * (1 - wy) * (1 - wx)
            + padded[Y0, X0 + 1] * (1 - wy) * wx
            + padded[Y0 + 1, X0] * wy * (1 - wx)
            + padded[Y0 + 1, X0 + 1] * wy * wx
        )

    energy = np.empty(n)
    for a in range(0, n, chunk):
        energy[a : a + chunk] = np.sum(
            np.abs(patches(x[a : a + chunk], y[a : a + chunk]) * probe) ** 2, axis=(1, 2)
        )
    s = np.sqrt(nphotons / energy.mean())
    for a in range(0, n, chunk):
        field = patches(x[a : a + chunk], y[a : a + chunk]) * probe * s
        amp = np.abs(scipy.fft.fftshift(scipy.fft.fft2(field, workers=-1), axes=(1, 2))) / N
        out[a : a + chunk] = np.sqrt(rng.poisson(amp.astype(np.float64) ** 2)) / s
    return out


def bench_inmemory(quick: bool, smoke: bool = False) -> list[dict]:
    N = 32 if smoke else 64
    probe = get_default_probe(N).astype(np.complex64)
    threads = _kernels.num_threads()
    print(f"generate_simulated_data, N = {N}, Poisson on, 1e9 photons, {threads} threads")
    print(f"{'object':>8} {'n':>8} {'ptyfast/s':>12} {'numpy/s':>10} {'ratio':>7}")
    records = []
    for size in (128,) if smoke else (256, 1024):
        obj = sim_object_image(size, data_source="lines", seed=1)
        for n in (300,) if smoke else (10_000,) if quick else (10_000, 100_000):
            cfg = TrainingConfig(model=ModelConfig(N=N), n_groups=n, nphotons=1e9)
            t = time.perf_counter()
            generate_simulated_data(cfg, obj, probe, 20.0, return_patches=False, seed=0)
            t_fast = time.perf_counter() - t
            m = min(n, 10_000)  # the baseline's rate is flat in n; time a slice of it
            t = time.perf_counter()
            numpy_equivalent(obj, probe, m, 20.0, 1e9, np.random.default_rng(0))
            t_slow = time.perf_counter() - t
            fast, slow = n / t_fast, m / t_slow
            print(f"{size:>7}² {n:>8} {fast:>12,.0f} {slow:>10,.0f} {fast / slow:>6.1f}×")
            case = f"generate_simulated_data, object {size}², n = {n}"
            common = dict(stage="end-to-end", N=N, object_size=size, photons=1e9, buffer=20.0)
            records.append(
                record(
                    "nongrid",
                    case,
                    variant="ptyfast",
                    n=n,
                    seconds=t_fast,
                    threads=threads,
                    **common,
                )
            )
            records.append(
                record(
                    "nongrid",
                    case,
                    variant="numpy",
                    n=m,
                    seconds=t_slow,
                    threads=os.cpu_count(),
                    **common,
                )
            )
    return records


def bench_streaming(n: int, N: int = 64) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("PTYFAST_BENCH_DIR")) as d:
        out = os.path.join(d, "stream.npz")
        code = (
            "from ptyfast import cli; "
            f"cli.main(['simulate', '-o', {out!r}, '-n', '{n}', '--N', '{N}', "
            "'--no-progress', '-q']); "
            # VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak
            "print([ln.split()[1] for ln in open('/proc/self/status') "
            "if ln.startswith('VmHWM')][0])"
        )
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        dt = time.perf_counter() - t
        peak_mb = int(res.stdout.strip().splitlines()[-1]) / 1024
        size_gb = os.path.getsize(out) / 1e9
    print(
        f"streaming CLI: {n:,} patterns of {N}² in {dt:.1f} s ({n / dt:,.0f}/s), "
        f"file {size_gb:.2f} GB, peak RSS {peak_mb:,.0f} MB"
    )
    return record(
        "nongrid",
        f"streaming CLI to NPZ, n = {n}",
        stage="end-to-end",
        variant="ptyfast",
        N=N,
        n=n,
        seconds=dt,
        threads=_kernels.num_threads(),
        file_bytes=int(size_gb * 1e9),
        peak_rss_bytes=int(peak_mb * 2**20),
        note="whole command in a fresh process",
    )


def run(quick: bool = False, stream_n: int | None = None) -> list[dict]:
    """Measure; ``quick``: a smoke run on tiny sizes (timings meaningless)."""
    records = bench_inmemory(False, smoke=quick)
    for n in ((1000,) if quick else (10_000, 100_000)) if stream_n is None else (stream_n,):
        records.append(bench_streaming(n, 32 if quick else 64))
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    ap.add_argument("--stream-n", type=int, default=None, help="patterns for the streaming run")
    a = ap.parse_args()
    run(a.quick, a.stream_n)

"""Throughput against the thread count: ptyfast's fused simulation and the NumPy/SciPy
equivalent, N = 64, Poisson at 1e9 photons, 20,000 random sub-pixel positions on a 512²
random complex object (the set-up of ``bench_simulate.py``).

rayon reads its thread count once per process, so each thread count runs in a fresh process
with ``RAYON_NUM_THREADS=t``; the baseline in the same process uses ``scipy.fft.fft2(workers=t)``
(its Poisson sampling is single-threaded, as NumPy's is). Thread counts: 1, 2, 4, ... up to the
CPUs this process may use, and that number itself.

    python benches/bench_threads.py [--quick]
"""

from __future__ import annotations

import argparse
import os

from _harness import record, run_python

CHILD = r"""
import json, sys
import numpy as np
from functools import partial
from _harness import best_of
from bench_simulate import default_probe, numpy_simulate
from ptyfast import _kernels as K
N, m, reps, t = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(0)
side = 512
obj = (rng.random((side, side)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (side, side))))
obj = obj.astype(np.complex64)
probe = default_probe(N)
pos = rng.uniform(N / 2, side - N / 2, (m, 2))
scale = float(np.sqrt(1e9 / K.illuminated_energy(obj, pos, probe).mean()))
kw = dict(scale=scale, poisson=True, seed=3, divide_by_scale=True)
K.simulate(obj, pos[:500], probe, **kw)
ours = best_of(partial(K.simulate, obj, pos, probe, **kw), reps)
theirs = best_of(partial(numpy_simulate, obj, pos, probe, scale, 3, True, workers=t), 1)
print(json.dumps({"ptyfast": ours, "numpy": theirs, "threads": K.num_threads()}))
"""


def thread_counts() -> list[int]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    counts, t = [], 1
    while t < cpus:
        counts.append(t)
        t *= 2
    return [*counts, cpus]


def run(quick: bool = False) -> list[dict]:
    """Measure; two records per thread count. ``quick``: a smoke run on tiny sizes."""
    N, m, reps = (32, 200, 1) if quick else (64, 20_000, 5)
    records = []
    print(f"fused simulation vs threads, N = {N}, {m} patterns, Poisson 1e9, best of {reps}")
    print(f"{'threads':>7} {'ptyfast/s':>11} {'numpy/s':>10} {'ratio':>6}")
    for t in thread_counts():
        out = run_python(
            CHILD, str(N), str(m), str(reps), str(t), env={"RAYON_NUM_THREADS": str(t)}
        )
        assert out["threads"] == t, f"asked for {t} threads, the pool has {out['threads']}"
        common = dict(stage="end-to-end", N=N, n=m, threads=t, photons=1e9, object="512x512")
        ours = record(
            "threads",
            f"fused, {t} threads",
            variant="ptyfast",
            seconds=out["ptyfast"],
            repeats=reps,
            **common,
        )
        theirs = record(
            "threads",
            f"fused, {t} threads",
            variant="numpy",
            seconds=out["numpy"],
            repeats=1,
            **common,
        )
        records += [ours, theirs]
        print(
            f"{t:>7} {ours['rate']:>11,.0f} {theirs['rate']:>10,.0f} "
            f"{ours['rate'] / theirs['rate']:>5.1f}×"
        )
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    run(ap.parse_args().quick)

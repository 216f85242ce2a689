"""Grouping benchmarks: ptyfast against a SciPy/NumPy implementation of the reference.

Prints one table. Every row runs both sides in this process (peak memory in fresh
subprocesses) on the same inputs and checks that they agree.

(a) group selection alone (``nn_indices``): 10**6 random points, K = 7, gridsize 2,
    nsamples = points; the reference algorithm with ``cKDTree(workers=-1)``.
(b) the whole ``group_dataset`` (selection, diffraction, X_full, Y from a stored Y) on 10**5
    points, N = 32, gridsize 2; peak memory (VmHWM above the inputs) against the returned arrays.
(c) k-NN alone: 10**6 points, k = 8, self-queries, against ``cKDTree(workers=-1)`` build + query.

Usage: ``python benches/bench_grouping.py [--quick] [--points-a N] [--points-b N] [--groups-b N]``;
``run(quick)`` returns the records (``benches/_harness.py``); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _harness import record
from scipy.spatial import cKDTree

from ptyfast import _kernels
from ptyfast import grouping as G

# --------------------------------------------------------------------------- baselines


def ref_select(x, y, nsamples, K, C, seed):
    """The reference's sample-then-group with a seeded RandomState (random sampling path)."""
    rs = np.random.RandomState(seed)
    n = len(x)
    m = min(nsamples, n)
    seeds = rs.choice(np.arange(n), m, replace=False) if m < n else np.arange(n)
    if C == 1:
        return seeds.reshape(-1, 1)
    pts = np.column_stack([x, y])
    _, hits = cKDTree(pts).query(pts[seeds], k=min(K + 1, n), workers=-1)
    groups = np.zeros((m, C), dtype=np.int32)
    for i in range(m):
        h = hits[i]
        nb = h[1 : K + 1] if len(h) > K else h[:K]
        avail = np.concatenate([[seeds[i]], nb]) if len(nb) < C else nb
        groups[i] = rs.choice(avail, C, replace=len(avail) < C)
    return groups


def ref_group_dataset(x, y, diff3d, Y, N, K, nsamples, seed, gridsize):
    """The reference's dataset formatting (views where it returns views)."""
    nn = ref_select(x, y, nsamples, K, gridsize**2, seed)
    diffraction = np.transpose(diff3d[nn], [0, 2, 3, 1])
    coords_nn = np.transpose(np.array([x[nn], y[nn]]), [1, 0, 2])[:, None]
    offsets = np.mean(coords_nn, axis=3)[..., None]
    relative = -1 * (coords_nn - offsets)
    y4d = np.transpose(Y[nn], [0, 2, 3, 1])
    f = np.float32(
        np.sqrt((N / 2) ** 2 / np.mean(np.sum(diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    )
    x_full = f * diffraction.astype(np.float32)
    return {
        "diffraction": diffraction,
        "Y": y4d,
        "coords_offsets": offsets,
        "coords_relative": relative,
        "coords_start_offsets": offsets.copy(),
        "coords_start_relative": relative.copy(),
        "coords_nn": coords_nn,
        "coords_start_nn": coords_nn.copy(),
        "nn_indices": nn,
        "X_full": x_full,
    }


# --------------------------------------------------------------------------- inputs


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * 2.0  # ~4 px^2 per point, like a dense scan
    return rng.uniform(0, side, n), rng.uniform(0, side, n)


def dataset_b(n, N):
    rng = np.random.default_rng(1)
    x, y = points(n, 1)
    d = rng.random((n, N, N), dtype=np.float32)
    Y = np.empty((n, N, N), np.complex64)
    Y.real = rng.random((n, N, N), dtype=np.float32)
    Y.imag = 1.0
    return x, y, d, Y


# --------------------------------------------------------------------------- memory child


def _status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(which, n, groups, N):
    """Runs one side of (b) in a fresh process; prints JSON with peak and output bytes."""
    x, y, d, Y = dataset_b(n, N)
    _kernels.num_threads()  # start the pool before measuring
    rss0 = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    t = time.perf_counter()
    if which == "ours":
        out = G.group_dataset(x, y, x, y, d, N=N, K=7, nsamples=groups, seed=0, gridsize=2, Y=Y)
    else:
        out = ref_group_dataset(x, y, d, Y, N, 7, groups, 0, 2)
    dt = time.perf_counter() - t
    peak = _status("VmHWM") - rss0
    out_bytes = sum(v.nbytes for v in out.values() if isinstance(v, np.ndarray))
    print(json.dumps({"peak": peak, "out": out_bytes, "time": dt}))


def run_child(which, n, groups, N):
    cmd = [sys.executable, __file__, "--child", which, "--points-b", str(n)]
    cmd += ["--groups-b", str(groups), "--n", str(N)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


class Timing(float):
    """Best wall-clock seconds, carrying the process CPU seconds of that run as ``cpu`` and the
    number of runs it is the best of as ``repeats``."""

    cpu: float
    repeats: int


def best_of(f, repeat):
    best, out = None, None
    for _ in range(repeat):
        out = None  # free the previous result first
        c, t = time.process_time(), time.perf_counter()
        out = f()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        if best is None or wall < best:
            best = Timing(wall)
            best.cpu = cpu
    best.repeats = repeat
    return best, out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points-a", type=int, default=10**6)
    ap.add_argument("--points-b", type=int, default=10**5)
    ap.add_argument("--groups-b", type=int, default=25_000)
    ap.add_argument("--points-c", type=int, default=10**6)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="abc", help="which benchmarks to run, e.g. 'ab'")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repeat")
    ap.add_argument("--child", choices=["ours", "ref"])
    return ap


QUICK = [
    "--points-a",
    "3000",
    "--points-b",
    "2000",
    "--groups-b",
    "500",
    "--points-c",
    "3000",
    "--n",
    "16",
    "--repeat",
    "1",
]


def run(quick: bool = False, argv: list[str] | None = None) -> list[dict]:
    """Measure; one record per (benchmark, side). ``quick``: a smoke run on tiny sizes."""
    a = parser().parse_args((QUICK if quick else []) + (argv or []))
    rows = []
    threads = _kernels.num_threads()
    print(f"ptyfast threads: {threads}  cpus: {os.cpu_count()}")
    print(f"load average before the run: {os.getloadavg()[0]:.1f}")

    if "a" in a.only:
        rows.append(bench_a(a) + ("grouping", a.points_a, "points/s", {"K": 7, "C": 4}))
    if "b" in a.only:
        rows.append(
            bench_b(a)
            + ("grouping", a.groups_b, "groups/s", {"points": a.points_b, "K": 7, "C": 4})
        )
    if "c" in a.only:
        rows.append(bench_c(a) + ("knn", a.points_c, "points/s", {"k": 8}))
    head = (
        f"{'benchmark':<46} {'ptyfast s':>10} {'(cpu s)':>8} {'scipy/numpy s':>14} {'(cpu s)':>8}"
    )
    print(f"{head} {'speedup':>8}  notes")
    records = []
    for name, to, tr, note, stage, n, unit, params in rows:
        print(
            f"{name:<46} {to:>10.3f} {to.cpu:>8.2f} {tr:>14.3f} {tr.cpu:>8.2f}"
            f" {tr / to:>7.1f}x  {note}"
        )
        N = a.n if stage == "grouping" and "group_dataset" in name else None
        for variant, t, th, reps in (
            ("ptyfast", to, threads, a.repeat),
            ("numpy", tr, os.cpu_count(), tr.repeats),
        ):
            records.append(
                record(
                    "grouping",
                    name,
                    stage=stage,
                    variant=variant,
                    N=N,
                    n=n,
                    seconds=float(t),
                    threads=th,
                    unit=unit,
                    repeats=reps,
                    cpu_seconds=t.cpu,
                    note=note,
                    **params,
                )
            )
    print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    return records


def main():
    a = parser().parse_args()
    if a.child:
        child(a.child, a.points_b, a.groups_b, a.n)
        return
    run(a.quick, [x for x in sys.argv[1:] if x != "--quick"])


def bench_a(a):
    """(a) group selection alone."""
    x, y = points(a.points_a)
    t_ours, ours = best_of(
        lambda: G.generate_groups_efficiently(x, y, a.points_a, 7, 4, seed=0), a.repeat
    )
    t_ref, ref = best_of(lambda: ref_select(x, y, a.points_a, 7, 4, 0), 1)
    assert ours.dtype == ref.dtype and np.array_equal(ours, ref), "selection differs"
    return (f"(a) nn_indices, {a.points_a:.0e} pts, K=7, C=4", t_ours, t_ref, "")


def bench_b(a):
    """(b) whole group_dataset, timed in-process, memory in subprocesses."""
    n, N, B = a.points_b, a.n, a.groups_b
    xb, yb, d, Y = dataset_b(n, N)
    t_ours, ours = best_of(
        lambda: G.group_dataset(xb, yb, xb, yb, d, N=N, K=7, nsamples=B, seed=0, gridsize=2, Y=Y),
        a.repeat,
    )
    t_ref, ref = best_of(lambda: ref_group_dataset(xb, yb, d, Y, N, 7, B, 0, 2), a.repeat)
    for key in ["nn_indices", "diffraction", "X_full", "Y", "coords_relative"]:
        assert np.array_equal(ours[key], ref[key]), key
    del ours, ref
    mo, mr = run_child("ours", n, B, N), run_child("ref", n, B, N)
    note = (
        f"peak/out: ours {mo['peak'] / 2**20:.0f}/{mo['out'] / 2**20:.0f} MiB"
        f" = {mo['peak'] / mo['out']:.2f}x; numpy {mr['peak'] / 2**20:.0f} MiB"
    )
    return (f"(b) group_dataset, {n:.0e} pts, B={B}, N={N}, C=4", t_ours, t_ref, note)


def bench_c(a):
    """(c) k-NN alone."""
    pts = np.column_stack(points(a.points_c, 2))
    t_ours, (oi, _) = best_of(lambda: _kernels.knn(pts, pts, 8), a.repeat)
    t_ref, (_, ri) = best_of(lambda: cKDTree(pts).query(pts, k=8, workers=-1), a.repeat)
    assert np.array_equal(oi, ri), "knn differs"
    return (f"(c) knn build+query, {a.points_c:.0e} pts, k=8", t_ours, t_ref, "")


if __name__ == "__main__":
    main()

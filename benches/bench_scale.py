"""Scale (issue 13): the whole simulation calls against their fused kernel, per thread count;
fresh vs reused output buffers; the NumPy/SciPy equivalent with as many FFT workers; and
ptyfast.distributed on 1 vs 2 local Dask workers.

Per thread count ``t`` (1, 2, ... up to the CPUs this process may use; a fresh process each,
``RAYON_NUM_THREADS=t``) and ``N`` = 64/128/256, patterns/s of

* ``kernel``: ``_kernels.simulate`` (the fused pass: patches, FFT, Poisson, division, patches
  kept, per-pattern energies: the call ``RawData.from_simulation`` makes), fresh outputs, and
  ``kernel reused``: the same into reused buffers (``out=``, ``out_patches=``: no first touch
  of fresh memory);
* ``from_simulation`` / ``from_simulation reused``: the whole ``RawData.from_simulation`` call
  (positions → the intensity scale's energy pass → kernel → ``norm_Y_I`` → ``RawData``), fresh
  outputs / into an earlier result's buffers (``out=previous``);
* ``acquire`` / ``acquire reused``: the model's kernel call over all patterns (fresh / ``out=``)
  and ``ptyfast.simulate`` / ``ptyfast.simulate reused``: the whole call (provenance, the
  kernel into one output), fresh / ``out=``;
* ``grid kernel`` / ``grid kernel reused`` and ``mk_simdata`` / ``mk_simdata reused``: the
  grid path's fused kernel ``_kernels.simulate_grid`` (patches sampled from the objects,
  normalised, ground truth ``Y_I``/``Y_phi`` written, FFT, Poisson: the call ``mk_simdata``
  makes once ``norm_Y_I`` and the scale are known), fresh outputs / into reused buffers
  (``out=``), and the whole ``diffsim.mk_simdata`` call (given objects ``YY_I``/``YY_phi``,
  ``gridsize = 2``; about as many patterns as the other cases; its two read-only passes for
  ``norm_Y_I`` and the scale, then the kernel), fresh outputs / into an earlier result's
  arrays (``out=previous``). Both make the same three output stacks (``X``, ``Y_I``,
  ``Y_phi``);
* ``illuminate_groups`` / ``illuminate_groups reused``: the illumination alone on
  pre-extracted patches (restored before each repeat, untimed), ``X`` only; the column
  ``÷ill`` gives ``mk_simdata reused`` ÷ ``illuminate_groups reused``, the whole call against
  a kernel that makes one stack of its three;
* ``numpy``: the NumPy/SciPy equivalent (bilinear gather, ``scipy.fft.fft2(workers=t)``,
  ``Generator.poisson``, division, energies for ``norm_Y_I``), one repeat.

The ratios compare like with like: a whole call fresh ÷ its kernel fresh, reused ÷ reused.

Dask (``N = 64``): ``ptyfast.distributed.simulate`` into a Zarr store on a LocalCluster of 1 and
of 2 worker processes, one kernel thread each; efficiency = rate₂ / (2 · rate₁). The cluster's
start is not timed; the store's writing is. Not in ``--quick`` runs (``tests/test_distributed.py``
exercises that path).

    python benches/bench_scale.py [--quick] [--no-dask] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _harness import record, run_python

CHILD = r"""
import json, sys, time
import numpy as np, scipy.fft
import ptyfast
from ptyfast import _kernels as K, probes, scans
from ptyfast.raw_data import RawData
from bench_simulate import default_probe, numpy_patches

N, m, reps, t = (int(a) for a in sys.argv[1:5])

def numpy_simulate(obj, pos, probe, scale, seed, workers):
    n, batch = probe.shape[0], 256
    rng = np.random.default_rng(seed)
    pad = n + 2
    objp = np.pad(obj, pad)
    sprobe = (probe * np.float32(scale)).astype(np.complex64)
    out = np.empty((len(pos), n, n), np.float32)
    Y = np.empty((len(pos), n, n), np.complex64)
    e = np.empty(len(pos))
    for a in range(0, len(pos), batch):
        b = min(a + batch, len(pos))
        Y[a:b] = numpy_patches(objp, pad, pos[a:b], n)
        f = scipy.fft.fft2(Y[a:b] * sprobe, workers=workers)
        amp = np.abs(np.fft.fftshift(f, axes=(1, 2))) / np.float32(n)
        amp = np.sqrt(rng.poisson(amp.astype(np.float64) ** 2)).astype(np.float32)
        out[a:b] = amp / np.float32(scale)
        e[a:b] = (out[a:b].astype(np.float64) ** 2).sum(axis=(1, 2))
    return out, Y, float(np.sqrt(1e9 / e.mean()))

rng = np.random.default_rng(0)
side = max(256, 4 * N)
obj = (rng.uniform(0.5, 1, (side, side)) * np.exp(1j * rng.uniform(-1, 1, (side, side))))
obj = obj.astype(np.complex64)
probe = default_probe(N)
pos = rng.uniform(N, side - N, (m, 2))
x, y = pos[:, 0].copy(), pos[:, 1].copy()
scale = float(np.sqrt(1e9 / K.illuminated_energy(obj, pos, probe).mean()))
kw = dict(scale=scale, poisson=True, seed=3, divide_by_scale=True, return_patches=True)
kw["return_energies"] = True  # the call from_simulation makes (energies from the same pass)
K.simulate(obj, pos[:50], probe, **kw)
out = np.empty((m, N, N), np.float32)
outp = np.empty((m, N, N), np.complex64)
c = (side - 1) / 2 + 0.5
e = ptyfast.Experiment(obj, probe, scans.custom(x - c, y - c), ptyfast.Detector(), 1e9)
buf = np.empty((m, N, N), np.float32)
buf2 = np.empty((m, N, N), np.float32)
acq = dict(scale=e.intensity_scale, detector=e._detector_args, seed=3)
prev = RawData.from_simulation(x, y, probe, obj, nphotons=1e9, seed=3)
# The grid path: about m patterns of gridsize 2 (C = 4) from one object of the same side.
from ptyfast import diffsim
g1 = max(2, int((m / 4) ** 0.5))
outer = 2 * max(1, (side - N - 4) // (g1 - 1))
yy_i = rng.uniform(0.5, 1, (1, side, side, 1))
yy_phi = rng.uniform(-1, 1, (1, side, side, 1))
mk = dict(YY_I=yy_i, YY_phi=yy_phi, N=N, gridsize=2, offset=4, nphotons=1e9, seed=3)
d = diffsim.mk_simdata(1, side, probe, outer, dict_fmt=True, **mk)
m_grid = d["X"].shape[0] * 4
yi0 = diffsim._flat_to_channel(d["I_pre_probe"][..., 0], 4)
yphi0 = diffsim._flat_to_channel(d["phi_pre_probe"][..., 0], 4)
yi = np.empty_like(yi0)
xg = np.empty_like(yi0)
images = (yy_i[..., 0] + 1j * yy_phi[..., 0]).astype(np.complex64)
pos_g = diffsim.grid_positions(side, outer, N=N, gridsize=2, offset=4).reshape(-1, 2)
gk = (images, pos_g, N, 4, probe, d["norm_Y_I"], d["intensity_scale"])
gkw = dict(seed=3, check_finite=False)
outs_g = tuple(np.empty_like(yi0) for _ in range(3))
prev_mk = diffsim.mk_simdata(1, side, probe, outer, **mk)
ig = dict(seed=3, check_finite=False, overwrite_amplitude=True)
cases = {
    "kernel": lambda: K.simulate(obj, pos, probe, **kw),
    "kernel reused": lambda: K.simulate(obj, pos, probe, out=out, out_patches=outp, **kw),
    "from_simulation": lambda: RawData.from_simulation(x, y, probe, obj, nphotons=1e9, seed=3),
    "from_simulation reused": lambda: RawData.from_simulation(
        x, y, probe, obj, nphotons=1e9, seed=3, out=prev
    ),
    "acquire": lambda: K.acquire(e.object, e.positions_true, e.probe, **acq),
    "acquire reused": lambda: K.acquire(e.object, e.positions_true, e.probe, out=buf, **acq),
    "ptyfast.simulate": lambda: ptyfast.simulate(e, seed=3),
    "ptyfast.simulate reused": lambda: ptyfast.simulate(e, seed=3, out=buf2),
    "grid kernel": lambda: K.simulate_grid(*gk, **gkw),
    "grid kernel reused": lambda: K.simulate_grid(*gk, out=outs_g, **gkw),
    "illuminate_groups": lambda: K.illuminate_groups(yi, yphi0, probe, d["intensity_scale"], **ig),
    "illuminate_groups reused": lambda: K.illuminate_groups(
        yi, yphi0, probe, d["intensity_scale"], out=xg, **ig
    ),
    "mk_simdata": lambda: diffsim.mk_simdata(1, side, probe, outer, **mk),
    "mk_simdata reused": lambda: diffsim.mk_simdata(1, side, probe, outer, out=prev_mk, **mk),
}
restore = lambda: np.copyto(yi, yi0)  # untimed: the patches the kernel overwrites
setup = {"illuminate_groups": restore, "illuminate_groups reused": restore}
grid_cases = ("grid kernel", "illuminate_groups", "mk_simdata")
count = {k: m_grid for k in cases if k.startswith(grid_cases)}
for k, f in cases.items():
    setup.get(k, lambda: None)()
    f()  # warm; the reused buffers are touched here
# Round robin, best of `reps` per case, wall clock and process CPU time: on a shared machine
# one case's wall clock swings with the others' load; CPU time much less.
# System CPU time (page faults: the kernel zeroing and mapping fresh memory) of each case's
# run with the least CPU time, to show how much of a fresh-output case is first touch.
import resource
def sys_seconds():
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime
wall = {k: float("inf") for k in cases}
cpu = dict(wall)
system = dict(wall)
for _ in range(reps):
    for k, f in cases.items():
        setup.get(k, lambda: None)()
        t0, c0, s0 = time.perf_counter(), time.process_time(), sys_seconds()
        f()
        wall[k] = min(wall[k], time.perf_counter() - t0)
        c = time.process_time() - c0
        if c < cpu[k]:
            cpu[k], system[k] = c, sys_seconds() - s0
t0, c0 = time.perf_counter(), time.process_time()
numpy_simulate(obj, pos, probe, scale, 3, t)
wall["numpy"], cpu["numpy"] = time.perf_counter() - t0, time.process_time() - c0
res = {"threads": K.num_threads(), "wall": wall, "cpu": cpu, "sys": system, "count": count}
print(json.dumps(res))
"""

DASK_CHILD = r"""
import json, os, sys, tempfile, time
import numpy as np
import ptyfast, ptyfast.distributed as D
from ptyfast.model.experiment import simulate_to
from ptyfast import objects, probes, scans

def main():
    m, shard = int(sys.argv[1]), int(sys.argv[2])
    e = ptyfast.Experiment(objects.dead_leaves(512, seed=1), probes.disk(64),
                           scans.random_uniform(m, 300.0, 300.0, seed=2), ptyfast.Detector(), 1e9)
    res = {}
    d = tempfile.mkdtemp()
    t0 = time.perf_counter()
    simulate_to(e, os.path.join(d, "one.zarr"), seed=3)
    res["single"] = time.perf_counter() - t0
    for w in (1, 2):
        with D.local_client(w, threads=1) as client:
            D.simulate(e, os.path.join(d, f"warm{w}.zarr"), seed=3, client=client, shard_size=shard)
            t0 = time.perf_counter()
            D.simulate(e, os.path.join(d, f"w{w}.zarr"), seed=3, client=client, shard_size=shard)
            res[str(w)] = time.perf_counter() - t0
    print(json.dumps(res))

if __name__ == "__main__":
    main()
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


SIZES = {64: 6000, 128: 2000, 256: 500}


def run(quick: bool = False, dask: bool = True, threads: list[int] | None = None) -> list[dict]:
    """Measure; records per thread count and N, then the Dask pair."""
    records: list[dict] = []
    sizes = {32: 200} if quick else SIZES
    reps = 1 if quick else 5
    print(
        f"whole calls vs their fused kernel (patterns/s), Poisson 1e9, best of {reps} (wall "
        f"clock; cpu: patterns per CPU-second of the process); ratios like for like: fresh "
        f"÷ fresh (f), reused ÷ reused (r)"
    )
    head = (
        f"{'t':>2} {'N':>4} {'':>4} | {'kernel':>7} {'reused':>7} {'from_sim':>8} {'reused':>7} "
        f"{'f':>4} {'r':>4} | {'acquire':>7} {'reused':>7} {'simulate':>8} {'reused':>7} "
        f"{'f':>4} {'r':>4} | {'grid_k':>7} {'reused':>7} {'mk_sim':>7} {'reused':>7} "
        f"{'f':>4} {'r':>4} {'÷ill':>4} | {'numpy':>6} {'×np':>5}"
    )
    print(head)
    for t in threads or thread_counts():
        for N, m in sizes.items():
            r = run_python(
                CHILD, str(N), str(m), str(reps), str(t), env={"RAYON_NUM_THREADS": str(t)}
            )
            assert r["threads"] == t
            wall, cpu, count = r["wall"], r["cpu"], r["count"]
            for case, seconds in wall.items():
                variant = "numpy" if case == "numpy" else "ptyfast"
                records.append(
                    record(
                        "scale",
                        case,
                        stage="end-to-end",
                        variant=variant,
                        n=count.get(case, m),
                        seconds=seconds,
                        N=N,
                        threads=t,
                        repeats=1 if variant == "numpy" else reps,
                        photons=1e9,
                        cpu_seconds=cpu[case],
                    )
                )
            for label, sec in (("wall", wall), ("cpu", cpu)):
                v = {k: count.get(k, m) / x for k, x in sec.items()}

                def ratio(whole: str, kernel: str, v: dict[str, float] = v) -> str:
                    return f"{v[whole] / v[kernel]:>4.2f}"

                print(
                    f"{t:>2} {N:>4} {label:>4} | {v['kernel']:>7,.0f} {v['kernel reused']:>7,.0f} "
                    f"{v['from_simulation']:>8,.0f} {v['from_simulation reused']:>7,.0f} "
                    f"{ratio('from_simulation', 'kernel')} "
                    f"{ratio('from_simulation reused', 'kernel reused')} | "
                    f"{v['acquire']:>7,.0f} {v['acquire reused']:>7,.0f} "
                    f"{v['ptyfast.simulate']:>8,.0f} {v['ptyfast.simulate reused']:>7,.0f} "
                    f"{ratio('ptyfast.simulate', 'acquire')} "
                    f"{ratio('ptyfast.simulate reused', 'acquire reused')} | "
                    f"{v['grid kernel']:>7,.0f} {v['grid kernel reused']:>7,.0f} "
                    f"{v['mk_simdata']:>7,.0f} {v['mk_simdata reused']:>7,.0f} "
                    f"{ratio('mk_simdata', 'grid kernel')} "
                    f"{ratio('mk_simdata reused', 'grid kernel reused')} "
                    f"{ratio('mk_simdata reused', 'illuminate_groups reused')} | "
                    f"{v['numpy']:>6,.0f} "
                    f"{v['from_simulation'] / v['numpy']:>5.1f}",
                    flush=True,
                )
            grid = ("grid kernel", "illuminate_groups", "mk_simdata")
            print(
                "   of the cpu column, system time (fresh memory's first touch), ms: "
                + ", ".join(
                    f"{case} {1e3 * r['sys'][case]:.0f}"
                    for case in (f"{k}{suffix}" for k in grid for suffix in ("", " reused"))
                ),
                flush=True,
            )
    if dask and not quick:  # tests/test_distributed.py exercises this path
        m, shard = 16_000, 1000
        r = run_python(DASK_CHILD, str(m), str(shard), env={"RAYON_NUM_THREADS": "1"})
        one, two = m / r["1"], m / r["2"]
        for w, s in (("1", r["1"]), ("2", r["2"])):
            records.append(
                record(
                    "scale",
                    f"dask, {w} worker(s)",
                    stage="end-to-end",
                    variant="dask",
                    n=m,
                    seconds=s,
                    N=64,
                    threads=int(w),
                    workers=int(w),
                    threads_per_worker=1,
                    shard_size=shard,
                )
            )
        records.append(
            record(
                "scale",
                "simulate_to zarr, one process",
                stage="end-to-end",
                variant="ptyfast",
                n=m,
                seconds=r["single"],
                N=64,
                threads=1,
            )
        )
        print(
            f"dask N = 64, {m} patterns, shards of {shard}: 1 worker {one:,.0f}/s, 2 workers "
            f"{two:,.0f}/s, efficiency {two / (2 * one):.2f} (single process simulate_to "
            f"{m / r['single']:,.0f}/s, 1 thread)"
        )
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask measurement")
    ap.add_argument("--threads", help="comma-separated thread counts (default: 1, 2, 4, ... all)")
    a = ap.parse_args()
    counts = [int(v) for v in a.threads.split(",")] if a.threads else None
    with tempfile.TemporaryDirectory():
        run(a.quick, not a.no_dask, counts)

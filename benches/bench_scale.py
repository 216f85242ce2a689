"""Scale (issue 13): the whole simulation calls against their fused kernel, per thread count;
fresh vs reused output buffers; the NumPy/SciPy equivalent with as many FFT workers; and
ptyfast.distributed on 1 vs 2 local Dask workers.

Per thread count ``t`` (1, 2, ... up to the CPUs this process may use; a fresh process each,
``RAYON_NUM_THREADS=t``) and ``N`` = 64/128/256, patterns/s of

* ``kernel``: ``_kernels.simulate`` (the fused pass: patches, FFT, Poisson, division, patches
  kept, per-pattern energies: the call ``RawData.from_simulation`` makes), fresh outputs, and
  ``kernel reused``: the same into reused buffers (``out=``, ``out_patches=``: no first touch
  of fresh memory);
* ``from_simulation``: the whole ``RawData.from_simulation`` call (positions → the intensity
  scale's energy pass → kernel → ``norm_Y_I`` → ``RawData``), fresh outputs;
* ``acquire`` / ``ptyfast.simulate``: the model's kernel call over all patterns (fresh) and the
  whole ``ptyfast.simulate`` call (provenance, chunks into one output);
* ``numpy``: the NumPy/SciPy equivalent (bilinear gather, ``scipy.fft.fft2(workers=t)``,
  ``Generator.poisson``, division, energies for ``norm_Y_I``), one repeat.

Dask (``N = 64``): ``ptyfast.distributed.simulate`` into a Zarr store on a LocalCluster of 1 and
of 2 worker processes, one kernel thread each; efficiency = rate₂ / (2 · rate₁). The cluster's
start is not timed; the store's writing is. Not in ``--quick`` runs (``tests/test_distributed.py``
exercises that path).

    python benches/bench_scale.py [--quick] [--no-dask]
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
acq = dict(scale=e.intensity_scale, detector=e._detector_args, seed=3)
cases = {
    "kernel": lambda: K.simulate(obj, pos, probe, **kw),
    "kernel reused": lambda: K.simulate(obj, pos, probe, out=out, out_patches=outp, **kw),
    "from_simulation": lambda: RawData.from_simulation(x, y, probe, obj, nphotons=1e9, seed=3),
    "acquire": lambda: K.acquire(e.object, e.positions_true, e.probe, **acq),
    "acquire reused": lambda: K.acquire(e.object, e.positions_true, e.probe, out=buf, **acq),
    "ptyfast.simulate": lambda: ptyfast.simulate(e, seed=3),
}
for f in cases.values():
    f()  # warm; the reused buffers are touched here
# Round robin, best of `reps` per case, wall clock and process CPU time: on a shared machine
# one case's wall clock swings with the others' load; CPU time much less.
wall = {k: float("inf") for k in cases}
cpu = dict(wall)
for _ in range(reps):
    for k, f in cases.items():
        t0, c0 = time.perf_counter(), time.process_time()
        f()
        wall[k] = min(wall[k], time.perf_counter() - t0)
        cpu[k] = min(cpu[k], time.process_time() - c0)
t0, c0 = time.perf_counter(), time.process_time()
numpy_simulate(obj, pos, probe, scale, 3, t)
wall["numpy"], cpu["numpy"] = time.perf_counter() - t0, time.process_time() - c0
res = {"threads": K.num_threads(), "wall": wall, "cpu": cpu}
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


def run(quick: bool = False, dask: bool = True) -> list[dict]:
    """Measure; records per thread count and N, then the Dask pair."""
    records: list[dict] = []
    sizes = {32: 200} if quick else SIZES
    reps = 1 if quick else 5
    print(
        f"whole calls vs the fused kernel (patterns/s), Poisson 1e9, best of {reps} (wall "
        f"clock; cpu: patterns per CPU-second of the process)"
    )
    head = (
        f"{'t':>2} {'N':>4} {'':>4} {'kernel':>8} {'reused':>8} {'from_sim':>8} {'ratio':>5} "
        f"{'acquire':>8} {'reused':>8} {'simulate':>8} {'ratio':>5} {'numpy':>7} {'×np':>5}"
    )
    print(head)
    for t in thread_counts():
        for N, m in sizes.items():
            r = run_python(
                CHILD, str(N), str(m), str(reps), str(t), env={"RAYON_NUM_THREADS": str(t)}
            )
            assert r["threads"] == t
            wall, cpu = r["wall"], r["cpu"]
            for case, seconds in wall.items():
                variant = "numpy" if case == "numpy" else "ptyfast"
                records.append(
                    record(
                        "scale",
                        case,
                        stage="end-to-end",
                        variant=variant,
                        n=m,
                        seconds=seconds,
                        N=N,
                        threads=t,
                        repeats=1 if variant == "numpy" else reps,
                        photons=1e9,
                        cpu_seconds=cpu[case],
                    )
                )
            for label, sec in (("wall", wall), ("cpu", cpu)):
                rate = {k: m / v for k, v in sec.items()}
                print(
                    f"{t:>2} {N:>4} {label:>4} {rate['kernel']:>8,.0f} "
                    f"{rate['kernel reused']:>8,.0f} {rate['from_simulation']:>8,.0f} "
                    f"{rate['from_simulation'] / rate['kernel']:>5.2f} {rate['acquire']:>8,.0f} "
                    f"{rate['acquire reused']:>8,.0f} {rate['ptyfast.simulate']:>8,.0f} "
                    f"{rate['ptyfast.simulate'] / rate['acquire']:>5.2f} {rate['numpy']:>7,.0f} "
                    f"{rate['from_simulation'] / rate['numpy']:>5.1f}"
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
    a = ap.parse_args()
    with tempfile.TemporaryDirectory():
        run(a.quick, not a.no_dask)

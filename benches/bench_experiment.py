"""``ptyfast.simulate`` against the acquisition kernel alone, N = 64/128/256, 1 and 4 modes.

Run as ``python benches/bench_experiment.py`` (``--quick`` for a smoke run on tiny sizes);
``run(quick)`` returns the records (``benches/_harness.py``). For each size and mode count:

* ``acquire kernel``: one ``_kernels.acquire`` call on the placed true positions with the
  experiment's intensity scale (ideal detector), into a fresh output: the work itself;
* ``simulate``: ``ptyfast.simulate(experiment, seed=...)``: the same patterns in one kernel
  call, plus the provenance record (hashes of the object and probe) and the Dataset;
* ``Experiment + simulate``: also building the experiment (validation, placement, the
  intensity scale's FFT-free energy pass over every pattern and mode).

The ratio simulate / kernel is the overhead of the API (target: close to 1). Both sides write
fresh outputs on every run; best of several runs.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from _harness import best_of, record

import ptyfast
from ptyfast import _kernels as K
from ptyfast import probes, scans


def run(quick: bool = False) -> list[dict]:
    """Measure; one record per (N, modes, case). ``quick``: a smoke run on tiny sizes."""
    sizes = [(64, 4000), (128, 1000), (256, 250)]
    if quick:
        sizes = [(64, 40), (128, 12), (256, 4)]
    reps = 1 if quick else 5
    side = 512
    rng = np.random.default_rng(0)
    obj = (rng.random((side, side)) * np.exp(1j * rng.uniform(-1, 1, (side, side)))).astype(
        np.complex64
    )
    threads = K.num_threads()
    print(
        f"ptyfast simulate vs the acquisition kernel: {threads} kernel threads, "
        f"{side}x{side} object, ideal detector, 1e9 photons, best of {reps}"
    )
    records = []
    rows = []
    for n, m in sizes:
        for p in (1, 4):
            probe = probes.gaussian(n, n / 8)
            if p > 1:
                probe = probes.modes(probe, p, decay=0.6)
            scan = scans.random_uniform(m, side - n - 4, seed=1)

            def build(probe=probe, scan=scan):
                return ptyfast.Experiment(obj, probe, scan, None, 1e9)

            e = build()
            pos = np.array(e.positions_true)
            modes = np.array(e.probe)
            kernel = partial(K.acquire, obj, pos, modes, scale=e.intensity_scale, seed=3)
            sim = partial(ptyfast.simulate, e, seed=3)

            def full(build=build):
                return ptyfast.simulate(build(), seed=3)

            kernel()  # warm-up: thread pool, FFT plans
            assert np.array_equal(kernel().readings, sim().diffraction)
            t_k = best_of(kernel, reps)
            t_s = best_of(sim, reps)
            t_f = best_of(full, reps)
            for case, t in (
                ("acquire kernel", t_k),
                ("simulate", t_s),
                ("Experiment + simulate", t_f),
            ):
                records.append(
                    record(
                        "experiment",
                        f"{case}, {p} mode{'s' if p > 1 else ''}",
                        stage="end-to-end",
                        variant="ptyfast",
                        n=m,
                        seconds=t,
                        N=n,
                        threads=threads,
                        repeats=reps,
                        modes=p,
                        object=f"{side}x{side}",
                        photons=1e9,
                    )
                )
            rows.append((n, p, m, m / t_k, m / t_s, m / t_f))
    print(
        f"{'N':>4} {'P':>2} {'M':>6} {'kernel/s':>10} {'simulate/s':>11} {'+Experiment/s':>14} "
        f"{'sim/kernel':>10} {'full/kernel':>11}"
    )
    for n, p, m, rk, rs, rf in rows:
        print(
            f"{n:>4} {p:>2} {m:>6} {rk:>10.0f} {rs:>11.0f} {rf:>14.0f} {rs / rk:>10.2f} "
            f"{rf / rk:>11.2f}"
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repeat")
    args = ap.parse_args()
    run(args.quick)


if __name__ == "__main__":
    main()

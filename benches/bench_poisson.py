"""Exact Poisson observation: ptyfast against NumPy, in one run.

Prints ns per sample and samples/s for ``ptyfast._kernels.observe_amplitudes`` (which samples
``sqrt(Poisson(A**2))``) on both noise streams (``version="v1"``, the original bits, and
``"v2"``, README "Noise streams") and for NumPy's ``Generator.poisson`` /
``RandomState.poisson`` on the same rates (NumPy timed on the rate array alone, without the
square and square root, which favours NumPy slightly). ptyfast runs once with
``RAYON_NUM_THREADS=1`` (in a subprocess, since rayon reads the variable once) and once with the
thread count of the environment (``all``, v2). Within each process the variants are timed in
turn, repeat by repeat, so that a change of machine load hits them alike.

Workloads: realistic far-field patterns, ``|fftshift(fft2(probe * patch))| / N`` for a smooth
disk probe and random smooth complex object patches, scaled to 1e6 and 1e9 photons per 64x64
pattern; and flat rates 0.01, 1, 10, 1e3, 1e6.

Timing is the best of ``--repeat`` runs of wall-clock time; on a shared machine,
``--timer cpu`` uses the process CPU time instead (robust to time slicing; meaningful for the
single-thread columns only, since all threads together burn more CPU time than wall time; BLAS
is kept on one thread so that its idle workers add nothing). On a machine whose cores are
shared (hyperthreads), CPU time still grows with the neighbours' load: state the load.

Usage: ``PYTHONPATH=python python benches/bench_poisson.py [--patterns 2000] [--repeat 3]
[--timer wall|cpu] [--runs 1]`` (``--runs`` repeats the whole comparison, NumPy included, and
prints each run, for a loaded machine.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Process CPU time (``--timer cpu``) counts every thread of the process, and idle BLAS worker
# threads that spin-wait would be counted with the sampler: keep BLAS on one thread (set
# before NumPy loads it; the variable is inherited by the single-thread child).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import _harness  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from ptyfast import _kernels  # noqa: E402

N = 64
FLAT_RATES = (0.01, 1.0, 10.0, 1e3, 1e6)
VERSIONS = ("v1", "v2")


def realistic_amplitudes(n_patterns: int, photons: float, seed: int = 0) -> np.ndarray:
    """``(n_patterns, N, N)`` float32 far-field amplitudes with ``photons`` expected counts each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:N, :N] - N / 2
    probe = 0.5 * (1 - np.tanh((np.hypot(xx, yy) - N / 4) / 3.0))
    shape = (n_patterns, N, N)
    phase = gaussian_filter(rng.normal(size=shape), (0, 2, 2))
    phase /= phase.std()
    mag = gaussian_filter(rng.uniform(size=shape), (0, 2, 2))
    mag = 0.5 + (mag - mag.min()) / np.ptp(mag)
    field = probe * mag * np.exp(1j * phase)
    amp = np.abs(np.fft.fftshift(np.fft.fft2(field), axes=(1, 2))) / N
    amp *= np.sqrt(photons / np.mean(np.sum(amp**2, axis=(1, 2))))
    return amp.astype(np.float32)


def workloads(n_patterns: int) -> list[tuple[str, np.ndarray]]:
    cases = [
        ("pattern 1e6 ph", realistic_amplitudes(n_patterns, 1e6)),
        ("pattern 1e9 ph", realistic_amplitudes(n_patterns, 1e9)),
    ]
    n_flat = max(1, n_patterns // 4)
    for r in FLAT_RATES:
        cases.append((f"flat {r:g}", np.full((n_flat, N, N), np.sqrt(r), np.float32)))
    return cases


TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_of(fn, repeat: int, timer: str = "wall") -> float:
    return best_of_each([fn], repeat, timer)[0]


def best_of_each(fns: list, repeat: int, timer: str = "wall") -> list[float]:
    """Best time of each function over ``repeat`` rounds, the functions run in turn."""
    return _harness.best_of_each(fns, repeat, TIMERS[timer])


def time_ptyfast(n_patterns: int, repeat: int, timer: str) -> dict[str, dict[str, float]]:
    """Seconds per sample of ``observe_amplitudes`` for every workload and stream."""
    out = {}
    for name, amp in workloads(n_patterns):
        for v in VERSIONS:
            _kernels.observe_amplitudes(amp[:2], 0, version=v)  # warm the pool and the tables
        runs = [lambda a=amp, v=v: _kernels.observe_amplitudes(a, 1, version=v) for v in VERSIONS]
        times = best_of_each(runs, repeat, timer)
        out[name] = {v: t / amp.size for v, t in zip(VERSIONS, times, strict=True)}
    return out


def ptyfast_in_subprocess(n_patterns: int, repeat: int, threads: int, timer: str) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        f"--patterns={n_patterns}",
        f"--repeat={repeat}",
        f"--timer={timer}",
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", type=int, default=2000, help="realistic patterns per case")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--timer", choices=sorted(TIMERS), default="wall", help="clock to use")
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole comparison")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(time_ptyfast(args.patterns, args.repeat, args.timer)))
        return
    for run in range(args.runs):
        if args.runs > 1:
            print(f"== run {run + 1} of {args.runs}")
        compare(args)


def compare(args: argparse.Namespace) -> None:
    single = ptyfast_in_subprocess(args.patterns, args.repeat, 1, args.timer)
    threads = _kernels.num_threads()
    multi = time_ptyfast(args.patterns, args.repeat, "wall")

    gen = np.random.default_rng(0)
    legacy = np.random.RandomState(0)
    print(f"ptyfast vs NumPy {np.__version__}: exact Poisson, N = {N}, best of {args.repeat}")
    print(
        f"ns/sample (lower is better); NumPy and 1thr by {args.timer} time, 'all' (v2) by wall "
        f"time on {threads} threads (RAYON_NUM_THREADS or cores)"
    )
    head = (
        f"{'workload':<16}{'samples':>10}{'np.Gen':>9}{'np.RS':>9}{'v1 1thr':>9}"
        f"{'v2 1thr':>9}{'Gen/v1':>8}{'Gen/v2':>8}{'v2 all':>9}{'Msamp/s all':>13}"
    )
    print(head)
    print("-" * len(head))
    for name, amp in workloads(args.patterns):
        rates = amp.astype(np.float64) ** 2
        t_gen, t_rs = (
            t / rates.size
            for t in best_of_each(
                [lambda r=rates: gen.poisson(r), lambda r=rates: legacy.poisson(r)],
                args.repeat,
                args.timer,
            )
        )
        t1, t2, tn = single[name]["v1"], single[name]["v2"], multi[name]["v2"]
        print(
            f"{name:<16}{rates.size:>10}{t_gen * 1e9:>9.2f}{t_rs * 1e9:>9.2f}{t1 * 1e9:>9.2f}"
            f"{t2 * 1e9:>9.2f}{t_gen / t1:>8.2f}{t_gen / t2:>8.2f}{tn * 1e9:>9.2f}"
            f"{1e-6 / tn:>13.1f}"
        )


if __name__ == "__main__":
    main()


def run(quick: bool = False) -> list[dict]:
    """The protocol of ``benches/_harness.py`` (``run_all.py``): stage ``noise``, unit
    samples/s, ``ns_per_sample`` in ``params``. Per workload: NumPy's ``Generator.poisson``
    (case = the workload; RandomState's time in ``params``) and ptyfast on one thread for each
    stream (``"v1"``, the default, under the same case, so the two compare), then on every
    thread (``..., all threads``)."""

    patterns, repeat = (8, 1) if quick else (2000, 3)
    single = ptyfast_in_subprocess(patterns, repeat, 1, "wall")
    multi = time_ptyfast(patterns, repeat, "wall")
    threads = _kernels.num_threads()
    gen, legacy = np.random.default_rng(0), np.random.RandomState(0)
    records = []
    for name, amp in workloads(patterns):
        rates = amp.astype(np.float64) ** 2
        t_gen, t_rs = best_of_each(
            [lambda r=rates: gen.poisson(r), lambda r=rates: legacy.poisson(r)], repeat
        )
        rows = [("numpy", name, 1, t_gen, {"randomstate_ns_per_sample": t_rs / rates.size * 1e9})]
        for v, per_sample in single[name].items():
            rows.append(
                ("ptyfast", name if v == "v1" else f"{name}, stream {v}", 1,
                 per_sample * rates.size, {"stream": v})
            )  # fmt: skip
        for v, per_sample in multi[name].items():
            rows.append(
                ("ptyfast", f"{name}, stream {v}, all threads", threads,
                 per_sample * rates.size, {"stream": v})
            )  # fmt: skip
        for variant, case, th, seconds, params in rows:
            r = _harness.record(
                "poisson", case, stage="noise", variant=variant, N=N, threads=th,
                n=rates.size, seconds=seconds, unit="samples/s", repeats=repeat,
                ns_per_sample=seconds / rates.size * 1e9, **params,
            )  # fmt: skip
            records.append(r)
            print(
                f"{case:<36} {variant:<8} {th:>2} thr {r['params']['ns_per_sample']:8.2f} ns/sample"
            )
    return records

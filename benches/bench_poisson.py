"""Exact Poisson observation: ptyfast against NumPy, in one run.

Prints ns per sample and samples/s for ``ptyfast._kernels.observe_amplitudes`` (which samples
``sqrt(Poisson(A**2))``) and for NumPy's ``Generator.poisson`` / ``RandomState.poisson`` on the
same rates (NumPy timed on the rate array alone, without the square and square root, which
favours NumPy slightly). ptyfast runs once with ``RAYON_NUM_THREADS=1`` (in a subprocess, since
rayon reads the variable once) and once with the thread count of the environment.

Workloads: realistic far-field patterns, ``|fftshift(fft2(probe * patch))| / N`` for a smooth
disk probe and random smooth complex object patches, scaled to 1e6 and 1e9 photons per 64x64
pattern; and flat rates 0.01, 1, 10, 1e3, 1e6.

Timing is the best of ``--repeat`` runs of wall-clock time; on a shared machine,
``--timer cpu`` uses the process CPU time instead (robust to time slicing; meaningful for the
single-thread columns only, since all threads together burn more CPU time than wall time).

Usage: ``PYTHONPATH=python python benches/bench_poisson.py [--patterns 2000] [--repeat 3]
[--timer wall|cpu]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from ptyfast import _kernels

N = 64
FLAT_RATES = (0.01, 1.0, 10.0, 1e3, 1e6)


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
    clock = TIMERS[timer]
    best = np.inf
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def time_ptyfast(n_patterns: int, repeat: int, timer: str) -> dict[str, float]:
    """Seconds per sample of ``observe_amplitudes`` for every workload."""
    out = {}
    for name, amp in workloads(n_patterns):
        _kernels.observe_amplitudes(amp[:2], 0)  # warm the thread pool
        run = lambda a=amp: _kernels.observe_amplitudes(a, 1)  # noqa: E731
        out[name] = best_of(run, repeat, timer) / amp.size
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
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(time_ptyfast(args.patterns, args.repeat, args.timer)))
        return

    single = ptyfast_in_subprocess(args.patterns, args.repeat, 1, args.timer)
    threads = _kernels.num_threads()
    multi = time_ptyfast(args.patterns, args.repeat, "wall")

    gen = np.random.default_rng(0)
    legacy = np.random.RandomState(0)
    print(f"ptyfast vs NumPy {np.__version__}: exact Poisson, N = {N}, best of {args.repeat}")
    print(
        f"ns/sample (lower is better); NumPy and 1thr by {args.timer} time, 'all' by wall "
        f"time on {threads} threads (RAYON_NUM_THREADS or cores)"
    )
    head = (
        f"{'workload':<16}{'samples':>10}{'np.Gen':>9}{'np.RS':>9}"
        f"{'pf 1thr':>9}{'Gen/1thr':>10}{'pf all':>9}{'Gen/all':>9}{'Msamp/s all':>13}"
    )
    print(head)
    print("-" * len(head))
    for name, amp in workloads(args.patterns):
        rates = amp.astype(np.float64) ** 2
        t_gen = best_of(lambda r=rates: gen.poisson(r), args.repeat, args.timer) / rates.size
        t_rs = best_of(lambda r=rates: legacy.poisson(r), args.repeat, args.timer) / rates.size
        t1, tn = single[name], multi[name]
        print(
            f"{name:<16}{rates.size:>10}{t_gen * 1e9:>9.2f}{t_rs * 1e9:>9.2f}"
            f"{t1 * 1e9:>9.2f}{t_gen / t1:>10.2f}{tn * 1e9:>9.2f}{t_gen / tn:>9.2f}"
            f"{1e-6 / tn:>13.1f}"
        )


if __name__ == "__main__":
    main()

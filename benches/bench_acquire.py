"""Throughput of the acquisition pipeline and its detector stage, with baselines in the same run.

Run as ``python benches/bench_acquire.py`` (``--quick`` for a smoke run). Three tables:

1. **Pipeline** (``_kernels.acquire``, ideal detector: exact Poisson counts at 1e9 photons per
   pattern) for N = 64, 128, 256 with 1 and 4 incoherent probe modes, against today's fused
   kernel (``_kernels.simulate``, one mode, the same bits) and a NumPy/SciPy equivalent
   (vectorised bilinear patches, ``scipy.fft.fft2(workers=-1)`` per mode, incoherent sum,
   ``Generator.poisson``). Also the cost of each extra mode against the FFT stage alone
   (``_kernels.diffract``): P modes should cost about P times the FFT part only.
2. **Detector presets end to end** at N = 64 (1 mode, 1e9 photons): Poisson-only (the ideal
   detector) against an EIGER-like stage (QE, dead time, Poisson, module gaps, beamstop, bad
   pixels, uint32) and an integrating one (QE, Poisson, dark counts, gain, offset, read noise,
   full well, bad pixels, uint16), with and without a PSF.
3. **Detector stage alone** (``_kernels.detect`` on precomputed expected photons) for the same
   detectors, against the same stage written with NumPy's ``Generator``.

Outputs are fresh arrays on every run on both sides; ptyfast is timed best of several runs,
and in tables 2 and 3 the detectors are timed in turn, repeat by repeat (``best_in_turn``),
so that a change of load between variants does not enter their ratios.
``--clock cpu`` times process CPU seconds instead of wall seconds (patterns per CPU-second):
steadier on a shared machine, and fair to both sides, since each uses every core it is given.

``run(quick)`` (the protocol of ``benches/_harness.py``, for ``run_all.py``) returns one
record per rate: table 1 as ``end-to-end`` (case ``pipeline, P mode(s)``), table 2 as
``end-to-end`` (case ``detector <name>, end to end``), table 3 as stage ``detector`` (case
``detector <name>``, with ``ns_per_pixel``), all at the same N as ``bench_stages``' N = 64
(N = 32 in quick mode, which ``bench_stages`` also covers).
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
import scipy.fft
from _harness import best_of, best_of_each, record

import ptyfast
from ptyfast import _kernels as K

CLOCK = time.perf_counter


def batch(n: int, p: int) -> int:
    """Patterns per NumPy batch: ~4M complex values, large enough to vectorise."""
    return max(8, (1 << 22) // (p * n * n))


def best_in_turn(runs: dict, repeats: int) -> dict:
    """Each of ``runs`` (name -> callable) called once to warm up, then its best time with the
    runs timed in turn, repeat by repeat (``_harness.best_of_each``)."""
    for fn in runs.values():
        fn()
    return dict(zip(runs, best_of_each(runs.values(), repeats, CLOCK), strict=True))


def modes(n: int, p: int) -> np.ndarray:
    """A disk-like probe and ``p − 1`` weaker, distinct modes; unit total intensity."""
    yy, xx = (np.mgrid[:n, :n] - n / 2) / (n / 8)
    r = np.hypot(xx, yy)
    base = 1 / (1 + np.exp((r - 1.0) * 6))
    shapes = [np.ones_like(r), xx, yy, xx * yy]
    m = np.stack([base * shapes[k % 4] * 0.6**k for k in range(p)]).astype(np.complex64)
    return (m / np.sqrt((np.abs(m) ** 2).sum())).astype(np.complex64)


def numpy_patches(objp: np.ndarray, pad: int, pos: np.ndarray, n: int) -> np.ndarray:
    """Vectorised bilinear gather (float32 arithmetic) from an object zero-padded by ``pad``."""
    wp = objp.shape[1]
    flat = objp.ravel()
    p = pos.astype(np.float32)
    idx = np.arange(n, dtype=np.float32)
    sx, sy = idx + p[:, 0:1], idx + p[:, 1:2]
    x0, y0 = np.floor(sx), np.floor(sy)
    wx, wy = (sx - x0)[:, None, :], (sy - y0)[:, :, None]
    ix = x0.astype(np.intp) - n // 2 + pad
    iy = y0.astype(np.intp) - n // 2 + pad
    base = iy[:, :, None] * wp + ix[:, None, :]
    one = np.float32(1)
    return (
        ((one - wx) * (one - wy)) * flat[base]
        + (wx * (one - wy)) * flat[base + 1]
        + ((one - wx) * wy) * flat[base + wp]
        + (wx * wy) * flat[base + wp + 1]
    )


def numpy_acquire(obj, pos, m, scale, seed):
    n = m.shape[-1]
    rng = np.random.default_rng(seed)
    pad = n + 2
    objp = np.pad(obj, pad)
    sm = (m * np.float32(scale)).astype(np.complex64)
    out = np.empty((len(pos), n, n), np.float32)
    step = batch(n, len(m))
    for a in range(0, len(pos), step):
        b = min(a + step, len(pos))
        field = numpy_patches(objp, pad, pos[a:b], n)[:, None] * sm[None]
        f = scipy.fft.fft2(field, workers=-1)
        lam = (np.abs(np.fft.fftshift(f, axes=(-2, -1))) ** 2).sum(axis=1) / n**2
        out[a:b] = rng.poisson(lam)
    return out


def numpy_detector(lam, det: ptyfast.Detector, seed):
    """The detector stage with NumPy (no PSF): shadow, QE, dead time, Poisson, dark, gain,
    offset, read noise, saturation, quantisation, mask."""
    rng = np.random.default_rng(seed)
    n = lam.shape[-1]
    codes = det.pixel_map(n)
    lam = lam * ((codes & (K.PIXEL_BEAMSTOP | K.PIXEL_GAP)) == 0)
    lam = det.qe * lam
    if det.dead_time_s:
        lam = lam / (1 + lam * (det.dead_time_s / det.exposure_s))
    c = rng.poisson(lam).astype(np.float64)
    if det.dark:
        c += rng.poisson(det.dark, c.shape)
    v = det.gain * c + det.offset
    if det.read_noise:
        v += det.read_noise * rng.standard_normal(v.shape)
    if det.full_well is not None:
        np.minimum(v, det.full_well, out=v)
    if det.dtype.startswith("uint"):
        v = np.clip(np.rint(v), 0, np.iinfo(det.dtype).max)
    out = v.astype(det.dtype)
    out[:, (codes & (K.PIXEL_GAP | K.PIXEL_DEAD)) != 0] = 0
    return out


def detectors(n: int) -> dict[str, ptyfast.Detector]:
    eiger = ptyfast.Detector.eiger(
        "4M",
        qe=0.9,
        beam_px=(512 + 38 + n // 2 - 5, 514),  # a module row gap crosses the pattern
        beamstop_radius_px=2.0,
        dead_fraction=1e-3,
        hot_fraction=1e-3,
        bad_pixel_seed=0,
        dead_time_s=1e-7,
        exposure_s=1e-3,
    )
    integ = ptyfast.Detector.integrating(qe=0.8, dead_fraction=1e-3, bad_pixel_seed=0)
    return {
        "Poisson only (ideal)": ptyfast.Detector.ideal(),
        "EIGER-like": eiger,
        "integrating": integ,
        "integrating + PSF 1 px": ptyfast.Detector.integrating(
            qe=0.8, dead_fraction=1e-3, bad_pixel_seed=0, psf_sigma_px=1.0
        ),
    }


def run(quick: bool = False, clock: str = "wall") -> list[dict]:
    """Measure and print the three tables; one record per rate (see the module docstring)."""
    global CLOCK
    CLOCK = time.process_time if clock == "cpu" else time.perf_counter
    per = "CPU-second" if clock == "cpu" else "second"
    reps = 1 if quick else 5
    sizes = [(32, 200), (64, 100)] if quick else [(64, 8000), (128, 2000), (256, 500)]
    if not quick:
        np.ones(2 << 30, np.uint8).sum()  # touch memory once (fresh VMs fault slowly)
    threads, workers = K.num_threads(), os.cpu_count()
    records: list[dict] = []

    def add(case, stage, variant, n, m, seconds, repeats, th=None, **params):
        # ptyfast: its rayon threads; NumPy/SciPy: the FFT workers (-1: every CPU)
        th = th or (threads if variant == "ptyfast" else workers)
        records.append(
            record(
                "acquire", case, stage=stage, variant=variant, N=n, n=m, seconds=seconds,
                threads=th, repeats=repeats, photons=1e9, clock=clock, **params,
            )
        )  # fmt: skip

    rng = np.random.default_rng(0)
    side = 512
    obj = rng.random((side, side)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (side, side)))
    obj = obj.astype(np.complex64)
    print(
        f"ptyfast acquisition benchmark: {os.cpu_count()} CPUs, {threads} kernel threads, "
        f"SIMD {K.simd_level()}, {side}x{side} object, 1e9 photons per pattern; ptyfast best of "
        f"{reps}, NumPy best of 1; {clock} clock (patterns per {per})"
    )

    print("\n1. pipeline (ideal detector), patterns/s")
    print(
        f"{'N':>4} {'M':>6} {'P':>2}  {'acquire':>9} {'simulate':>9} {'numpy':>8}"
        f"  {'vs simulate':>11} {'vs numpy':>8}"
    )
    extra = []
    for n, m in sizes:
        pos = rng.uniform(n / 2, side - n / 2, (m, 2))
        for p in (1, 4):
            mm = modes(n, p)
            patches = K.extract_patches(obj, pos[:200], n)
            energy = (np.abs(mm[None] * patches[:, None]) ** 2).sum(axis=(1, 2, 3)).mean()
            scale = float(np.sqrt(1e9 / energy))
            run_acq = partial(K.acquire, obj, pos, mm, scale=scale, seed=3)
            run_acq()  # warm up
            t_acq = best_of(run_acq, reps, CLOCK)
            case = f"pipeline, {p} mode{'s' if p > 1 else ''}"
            add(case, "end-to-end", "ptyfast", n, m, t_acq, reps, modes=p)
            t_sim = np.nan
            if p == 1:
                sim = partial(K.simulate, obj, pos, mm[0], scale=scale, seed=3)
                sim()
                t_sim = best_of(sim, reps, CLOCK)
                add(f"{case}, fused simulate", "end-to-end", "ptyfast", n, m, t_sim, reps)
            t_np = best_of(partial(numpy_acquire, obj, pos, mm, scale, 3), 1, CLOCK)
            add(case, "end-to-end", "numpy", n, m, t_np, 1, modes=p)
            vs_sim = f"{t_sim / t_acq:10.2f}x" if p == 1 else f"{'':>11}"
            print(
                f"{n:>4} {m:>6} {p:>2}  {m / t_acq:9.0f} {m / t_sim:9.0f} {m / t_np:8.0f}"
                f"  {vs_sim} {t_np / t_acq:7.1f}x"
            )
            clean = partial(K.acquire, obj, pos, mm, scale=scale, detector={"poisson": False})
            extra.append((n, m, p, best_of(clean, reps, CLOCK)))
        allp = K.extract_patches(obj, pos, n)
        t_fft = best_of(partial(K.diffract, allp, modes(n, 1)[0], 2.0), reps, CLOCK)
        del allp
        (_, _, _, t1), (_, _, _, t4) = extra[-2:]
        print(
            f"     per extra mode (noise-free): {(t4 - t1) / 3 / m * 1e6:.1f} us/pattern; "
            f"FFT stage alone (diffract): {t_fft / m * 1e6:.1f} us/pattern; "
            f"ratio {(t4 - t1) / 3 / t_fft:.2f}"
        )

    n, m = (32, 200) if quick else (64, 8000)
    pos = rng.uniform(n / 2, side - n / 2, (m, 2))
    mm = modes(n, 1)
    patches = K.extract_patches(obj, pos[:200], n)
    scale = float(np.sqrt(1e9 / (np.abs(mm[0] * patches) ** 2).sum(axis=(1, 2)).mean()))
    dets = detectors(n)
    print(f"\n2. detector presets end to end, N = {n}, M = {m}, patterns/s (ratio to Poisson only)")
    runs = {
        name: partial(K.acquire, obj, pos, mm, scale=scale, detector=det, seed=5)
        for name, det in dets.items()
    }
    det_reps = 1 if quick else 9  # interleaved: more repeats are cheap and steady the ratios
    times = best_in_turn(runs, det_reps)
    base = times[next(iter(times))]
    for name, t in times.items():
        add(f"detector {name}, end to end", "end-to-end", "ptyfast", n, m, t, det_reps)
        print(f"   {name:<24} {m / t:9.0f}/s  {t / base:5.2f}x")

    lam = K.acquire(obj, pos, mm, scale=scale, detector={"poisson": False, "dtype": "float64"})
    lam = lam.readings
    print(f"\n3. detector stage alone on {m} patterns of {n}x{n}, ns/pixel (ratio to Poisson only)")
    print(f"   {'':<24} {'ptyfast':>8} {'ratio':>6} {'numpy':>8} {'vs numpy':>8}")
    px = lam.size
    runs = {name: partial(K.detect, lam, detector=det, seed=5) for name, det in dets.items()}
    times = best_in_turn(runs, det_reps)
    base = times[next(iter(times))]
    for name, det in dets.items():
        t = times[name]
        add(f"detector {name}", "detector", "ptyfast", n, m, t, det_reps, ns_per_pixel=t / px * 1e9)
        t_np = np.nan
        if det.psf_sigma_px == 0:
            t_np = best_of(partial(numpy_detector, lam, det, 5), 1, CLOCK)
            ns = t_np / px * 1e9  # NumPy's Generator: one thread
            add(f"detector {name}", "detector", "numpy", n, m, t_np, 1, th=1, ns_per_pixel=ns)
        print(
            f"   {name:<24} {t / px * 1e9:8.2f} {t / base:5.2f}x {t_np / px * 1e9:8.2f}"
            f" {t_np / t:7.1f}x"
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few patterns, one repeat")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what to time")
    args = ap.parse_args()
    run(args.quick, args.clock)


if __name__ == "__main__":
    main()

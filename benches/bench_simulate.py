"""Throughput of the fused simulation against the best vectorised NumPy/SciPy equivalent.

Run as ``python benches/bench_simulate.py`` (``--quick`` for a smoke run on tiny sizes);
``run(quick)`` returns the records (``benches/_harness.py``). Prints patterns/s
and ratios for N = 64 and 128 on a 512² random complex object with the default-recipe probe,
random sub-pixel positions, and Poisson noise off and at 1e6 and 1e9 photons per pattern
(``scale = sqrt(nphotons / mean illuminated energy)``). Both sides compute the reference's
stored ``X = sqrt(Poisson(A²)) / scale`` (or ``A / scale`` without noise) into fresh output
arrays on every run: ptyfast allocates its result per call, the NumPy side allocates its
output array per run and fills it batch by batch. Also times the FFT stage alone
(``ptyfast.diffract`` against ``scipy.fft.fft2(workers=-1)`` + ``fftshift`` + ``abs``).
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
from _harness import best_of, record

from ptyfast import _kernels as K

BATCH = 512  # patterns per NumPy batch: large enough to vectorise, small enough for cache


def default_probe(n: int) -> np.ndarray:
    """The reference's default-probe recipe, written out (``get_default_probe(n)``)."""
    w = scipy.signal.windows.gaussian(n, std=n / (0.7 * np.pi**2), sym=True)
    w = w / w.max()
    mask = (np.outer(w, w) > 0.5).astype(np.float64)
    return (scipy.ndimage.gaussian_filter(mask, sigma=1) + 1e-9).astype(np.complex64)


def numpy_patches(objp: np.ndarray, pad: int, pos: np.ndarray, n: int) -> np.ndarray:
    """Vectorised bilinear gather (float32 arithmetic) from an object zero-padded by ``pad``."""
    wp = objp.shape[1]
    flat = objp.ravel()
    p = pos.astype(np.float32)
    idx = np.arange(n, dtype=np.float32)
    sx = idx + p[:, 0:1]
    sy = idx + p[:, 1:2]
    x0, y0 = np.floor(sx), np.floor(sy)
    wx = (sx - x0)[:, None, :]
    wy = (sy - y0)[:, :, None]
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


def numpy_simulate(obj, pos, probe, scale, seed, poisson, workers=-1):
    n = probe.shape[0]
    rng = np.random.default_rng(seed)
    pad = n + 2
    objp = np.pad(obj, pad)
    sprobe = (probe * np.float32(scale)).astype(np.complex64)
    out = np.empty((len(pos), n, n), np.float32)
    for a in range(0, len(pos), BATCH):
        b = min(a + BATCH, len(pos))
        field = numpy_patches(objp, pad, pos[a:b], n) * sprobe
        amp = np.abs(np.fft.fftshift(scipy.fft.fft2(field, workers=workers), axes=(1, 2)))
        amp /= np.float32(n)
        if poisson:
            amp = np.sqrt(rng.poisson(amp.astype(np.float64) ** 2)).astype(np.float32)
        out[a:b] = amp / np.float32(scale)
    return out


def scipy_fft_only(patches, probe, scale, workers=-1):
    n = probe.shape[0]
    out = np.empty(patches.shape, np.float32)
    sprobe = (probe * np.float32(scale)).astype(np.complex64)
    for a in range(0, len(patches), BATCH):
        f = scipy.fft.fft2(patches[a : a + BATCH] * sprobe, workers=workers)
        out[a : a + BATCH] = np.abs(np.fft.fftshift(f, axes=(1, 2))) / np.float32(n)
    return out


def run(quick: bool = False) -> list[dict]:
    """Measure; one record per (N, case, variant). ``quick``: a smoke run on tiny sizes."""
    sizes = [(64, 20_000), (128, 5_000)]
    if quick:
        sizes = [(64, 200), (128, 50)]
    reps = 1 if quick else 7  # ptyfast runs are short: best of several damps noise
    if not quick:
        # On a fresh VM the first touch of memory is slow (host-side faults, ~ms per 2 MiB
        # page) whoever allocates it; touch a few GiB once so both sides see warm memory.
        np.ones(4 << 30, np.uint8).sum()

    rng = np.random.default_rng(0)
    side = 512
    obj = rng.random((side, side)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (side, side)))
    obj = obj.astype(np.complex64)
    threads, workers = K.num_threads(), os.cpu_count()
    print(
        f"ptyfast simulate benchmark: {os.cpu_count()} CPUs, {threads} kernel threads, "
        f"{side}x{side} object; outputs are fresh arrays on every run (both sides); "
        f"ptyfast best of {reps}, NumPy best of 1 (fused) / {reps} (FFT)"
    )
    stub_noted = False
    records = []

    def add(n, m, what, stage, t_ours, t_np, reps_np, **params):
        common = dict(stage=stage, N=n, n=m, object=f"{side}x{side}", **params)
        records.append(
            record(
                "simulate",
                what,
                variant="ptyfast",
                seconds=t_ours,
                threads=threads,
                repeats=reps,
                **common,
            )
        )
        records.append(
            record(
                "simulate",
                what,
                variant="numpy",
                seconds=t_np,
                threads=workers,
                repeats=reps_np,
                **common,
            )
        )

    for n, m in sizes:
        probe = default_probe(n)
        pos = rng.uniform(n / 2, side - n / 2, (m, 2))
        energy = K.illuminated_energy(obj, pos, probe).mean()
        clean, _ = K.simulate(obj, pos[:50], probe, poisson=False, divide_by_scale=True)
        ref = numpy_simulate(obj, pos[:50], probe, 1.0, None, False)
        err = np.max(np.abs(clean - ref)) / ref.max()
        assert err < 1e-5, f"NumPy baseline disagrees with ptyfast (N={n}): {err}"
        # Warm up both sides (thread pools, FFT plans, allocator) outside the timings.
        K.simulate(obj, pos[:2000], probe, poisson=False)
        numpy_simulate(obj, pos[: 2 * BATCH], probe, 1.0, None, False)
        for label, nph in [("off", None), ("1e6", 1e6), ("1e9", 1e9)]:
            scale = 1.0 if nph is None else float(np.sqrt(nph / energy))
            poisson = nph is not None
            if poisson and not stub_noted:
                a, _ = K.simulate(obj, pos[:20], probe, scale=scale, seed=1)
                b, _ = K.simulate(obj, pos[:20], probe, scale=scale, poisson=False)
                if np.array_equal(a, b):
                    print("note: this build's Poisson sampler is a no-op stub; 'poisson' rows")
                    print("      time ptyfast without noise against NumPy with noise")
                stub_noted = True

            kw = dict(scale=scale, poisson=poisson, seed=3, divide_by_scale=True)
            t_ours = best_of(partial(K.simulate, obj, pos, probe, **kw), reps)
            t_np = best_of(partial(numpy_simulate, obj, pos, probe, scale, 3, poisson), 1)
            add(n, m, f"fused, poisson {label}", "end-to-end", t_ours, t_np, 1, photons=nph)
        patches = K.extract_patches(obj, pos, n)
        t_ours = best_of(partial(K.diffract, patches, probe, 2.0), reps)
        t_np = best_of(partial(scipy_fft_only, patches, probe, 2.0), reps)
        add(n, m, "FFT stage only", "fft", t_ours, t_np, reps)
        del patches
    print(f"{'N':>4} {'M':>7}  {'what':<22} {'ptyfast/s':>11} {'numpy/s':>10} {'ratio':>7}")
    for ours, theirs in zip(records[::2], records[1::2], strict=True):
        print(
            f"{ours['N']:>4} {ours['n']:>7}  {ours['case']:<22} {ours['rate']:>11.0f} "
            f"{theirs['rate']:>10.0f} {ours['rate'] / theirs['rate']:>6.1f}x"
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repeat")
    args = ap.parse_args()
    run(args.quick)


if __name__ == "__main__":
    main()

"""Per-stage throughput against N, with the baselines run in the same process.

For N = 32, 64, 128, 256 (a 512² random complex object, random sub-pixel positions, the
default-probe recipe, 1e9 photons per pattern), times each stage of the simulation on its own
and the whole fused call, for ptyfast and for each baseline that has the stage:

* ``extract``: bilinear patches. ptyfast ``extract_patches``; NumPy vectorised gather
  (``bench_simulate.numpy_patches``); *ptychopinn-style*: the reference's nongrid algorithm
  (``get_image_patches``), which translates the whole zero-padded object once per patch
  (bilinear, TensorFlow, ``tf_reference``'s translation) and crops ``N x N``.
* ``fft``: ``|fftshift(fft2(probe * patch))| / N``. ptyfast ``diffract``; SciPy
  ``fft2(workers=-1)``; TensorFlow ``tf_reference.diffract``.
* ``noise``: ``sqrt(Poisson(A**2))`` at 1e9 photons per pattern. ptyfast
  ``observe_amplitudes``; NumPy ``Generator.poisson``; TensorFlow
  ``tf_reference.observe_amplitude``.
* ``write``: the float32 patterns into an uncompressed NPZ member. ptyfast's streaming
  writer (``_npz.NpzStreamWriter``, chunked, atomic); NumPy ``np.savez``. Page cache, not disk,
  on most machines: it measures the copy and the system calls.
* ``end-to-end``: the fused call (``_kernels.simulate``, Poisson on) against
  ``bench_simulate.numpy_simulate`` and the TensorFlow path (ptychopinn-style extraction, TF
  diffraction, TF noise) on a few patterns.

The per-pattern TensorFlow paths are slow, so they run on fewer patterns (``n`` in each
record). ``--no-tf`` skips them. Every stage is checked against ptyfast before it is timed
(the ptychopinn-style extraction at integer positions, where both copy pixels exactly).

    python benches/bench_stages.py [--quick] [--no-tf]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from functools import partial

import numpy as np
from _harness import best_of, record
from bench_simulate import default_probe, numpy_patches, numpy_simulate, scipy_fft_only

from ptyfast import _kernels as K
from ptyfast._npz import NpzStreamWriter

SIDE = 512
PHOTONS = 1e9
CHUNK = 2048  # patterns per chunk of the streaming writer (the CLI's default)


def patterns_for(N: int, quick: bool) -> int:
    """About the same work per N: 8000 patterns at N = 64."""
    return 64 if quick else max(200, int(8000 * (64 / N) ** 2))


def tf_patches(obj, pos, N):
    """The reference's nongrid extraction: pad by N//2, translate the padded object by the
    negated position (bilinear), crop the top-left N x N. One translation per patch.

    ``out[r, c] = padded[r + y, c + x] = obj[y + r - N//2, x + c - N//2]``."""
    import tensorflow as tf

    from ptyfast.tf_reference import _translate

    h = N // 2
    padded = tf.convert_to_tensor(np.pad(obj, h)[None, :, :, None])
    out = np.empty((len(pos), N, N), np.complex64)
    for i, (x, y) in enumerate(pos):
        shift = tf.constant([[-x, -y]], tf.float32)
        out[i] = _translate(padded, shift)[0, :N, :N, 0].numpy()
    return out


def tf_observe(amp, seed):
    from ptyfast import tf_reference

    return tf_reference.observe_amplitude(amp, seed)


def tf_diffract(field):
    from ptyfast import tf_reference

    return tf_reference.diffract(field[..., None])[..., 0]


def numpy_noise(gen, amp):
    return np.sqrt(gen.poisson(amp.astype(np.float64) ** 2))


def npz_stream(path, arr):
    with NpzStreamWriter(path) as w, w.stream("diff3d", arr.shape, arr.dtype) as s:
        for a in range(0, len(arr), CHUNK):
            s.append(arr[a : a + CHUNK])


def run(quick: bool = False, use_tf: bool | None = None) -> list[dict]:
    """Measure; one record per (N, stage, variant). ``quick``: a smoke run, no TensorFlow."""
    use_tf = (not quick) if use_tf is None else use_tf
    sizes = (16, 32) if quick else (32, 64, 128, 256)
    reps = 1 if quick else 3
    threads, workers = K.num_threads(), os.cpu_count()
    rng = np.random.default_rng(0)
    obj = rng.random((SIDE, SIDE)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (SIDE, SIDE)))
    obj = obj.astype(np.complex64)
    records: list[dict] = []
    tmp = tempfile.mkdtemp(dir=os.environ.get("PTYFAST_BENCH_DIR"))
    print(
        f"stages: {threads} ptyfast threads, SciPy workers {workers}, object {SIDE}², "
        f"{PHOTONS:g} photons, best of {reps}"
    )
    print(f"{'N':>4} {'stage':<11} {'variant':<17} {'n':>6} {'patterns/s':>12} {'ptyfast ×':>9}")

    def add(N, stage, variant, n, seconds, repeats, **params):
        th = threads if variant == "ptyfast" else workers if variant == "numpy" else None
        r = record(
            "stages",
            f"{stage}, N = {N}",
            stage=stage,
            variant=variant,
            N=N,
            n=n,
            seconds=seconds,
            threads=th,
            repeats=repeats,
            object=f"{SIDE}x{SIDE}",
            photons=PHOTONS,
            **params,
        )
        records.append(r)
        base = next(
            (
                q["rate"]
                for q in records
                if q["N"] == N and q["stage"] == stage and q["variant"] == "ptyfast"
            ),
            float("nan"),
        )
        print(
            f"{N:>4} {stage:<11} {variant:<17} {n:>6} {r['rate']:>12,.0f} {base / r['rate']:>8.1f}×"
        )

    for N in sizes:
        m = patterns_for(N, quick)
        m_tf = 8 if quick else max(20, m // 40)
        probe = default_probe(N)
        pos = rng.uniform(N / 2, SIDE - N / 2, (m, 2))
        energy = float(K.illuminated_energy(obj, pos, probe).mean())
        scale = float(np.sqrt(PHOTONS / energy))

        # extract
        ours = K.extract_patches(obj, pos, N)
        ref = numpy_patches(np.pad(obj, N + 2), N + 2, pos[:50], N)
        assert np.allclose(ours[:50], ref, atol=1e-5), "NumPy extraction disagrees"
        add(
            N, "extract", "ptyfast", m, best_of(partial(K.extract_patches, obj, pos, N), reps), reps
        )
        add(
            N,
            "extract",
            "numpy",
            m,
            best_of(partial(numpy_patches, np.pad(obj, N + 2), N + 2, pos, N), reps),
            reps,
        )
        if use_tf:
            ipos = np.round(pos[:m_tf])
            assert np.allclose(
                tf_patches(obj, ipos[:3], N), K.extract_patches(obj, ipos[:3], N), atol=1e-6
            ), "ptychopinn-style extraction disagrees"
            add(
                N,
                "extract",
                "ptychopinn-style",
                m_tf,
                best_of(partial(tf_patches, obj, pos[:m_tf], N), 1),
                1,
                note="TensorFlow, one whole-object translation per patch",
            )

        # fft
        add(N, "fft", "ptyfast", m, best_of(partial(K.diffract, ours, probe, scale), reps), reps)
        add(N, "fft", "numpy", m, best_of(partial(scipy_fft_only, ours, probe, scale), reps), reps)
        field = ours * (probe * np.float32(scale)).astype(np.complex64)
        if use_tf:
            assert np.allclose(
                tf_diffract(field[:4]), K.diffract(ours[:4], probe, scale), rtol=1e-4, atol=1e-3
            ), "TF diffraction disagrees"
            add(N, "fft", "tensorflow", m, best_of(partial(tf_diffract, field), reps), reps)
        del field

        # noise
        amp = K.diffract(ours, probe, scale)
        add(N, "noise", "ptyfast", m, best_of(partial(K.observe_amplitudes, amp, 1), reps), reps)
        gen = np.random.default_rng(1)
        add(
            N,
            "noise",
            "numpy",
            m,
            best_of(partial(numpy_noise, gen, amp), reps),
            reps,
        )
        if use_tf:
            add(N, "noise", "tensorflow", m, best_of(partial(tf_observe, amp, 1), reps), reps)

        # write
        noisy = K.observe_amplitudes(amp, 1)
        path = os.path.join(tmp, "w.npz")
        add(
            N,
            "write",
            "ptyfast",
            m,
            best_of(partial(npz_stream, path, noisy), reps),
            reps,
            bytes=int(noisy.nbytes),
        )
        add(
            N,
            "write",
            "numpy",
            m,
            best_of(partial(np.savez, path, diff3d=noisy), reps),
            reps,
            bytes=int(noisy.nbytes),
        )
        os.unlink(path)
        del ours, amp, noisy

        # end-to-end
        kw = dict(scale=scale, poisson=True, seed=3, divide_by_scale=True)
        K.simulate(obj, pos[: min(m, 500)], probe, **kw)  # warm up
        add(
            N,
            "end-to-end",
            "ptyfast",
            m,
            best_of(partial(K.simulate, obj, pos, probe, **kw), reps),
            reps,
        )
        add(
            N,
            "end-to-end",
            "numpy",
            m,
            best_of(partial(numpy_simulate, obj, pos, probe, scale, 3, True), 1),
            1,
        )
        if use_tf:

            def tf_path(p=pos[:m_tf], N=N, probe=probe, scale=scale):
                f = tf_patches(obj, p, N) * (probe * np.float32(scale)).astype(np.complex64)
                return tf_observe(tf_diffract(f), 3) / np.float32(scale)

            add(
                N,
                "end-to-end",
                "tensorflow",
                m_tf,
                best_of(tf_path, 2),  # the first run traces TF's functions for this batch
                2,
                note="ptychopinn-style extraction + TF diffraction + TF noise",
            )
    os.rmdir(tmp)
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, no TF")
    ap.add_argument("--no-tf", action="store_true", help="skip the TensorFlow baselines")
    a = ap.parse_args()
    run(a.quick, False if a.no_tf else None)

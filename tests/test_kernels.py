"""The compiled kernels behind ``ptyfast._kernels`` against independent NumPy computations.

Patch extraction is checked against a vectorised NumPy sampler written from the reference's
described arithmetic (float32 coordinates, ``floor``, float32 weights, zero outside);
diffraction against ``numpy.fft``; the fused simulation against the separate kernels. Every
error path names its argument, inputs are never modified, and noisy output does not depend on
the thread count or on chunking.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ptyfast
from ptyfast import _kernels as K

# --------------------------------------------------------------------------- references


def numpy_patches(obj: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """Bilinear patches with the reference's float32 arithmetic, summed left to right."""
    obj = np.asarray(obj, np.complex64)
    h, w = obj.shape
    p = np.asarray(positions, np.float64).astype(np.float32)
    idx = np.arange(n, dtype=np.float32)
    sx = idx[None, :] + p[:, 0:1]  # (M, n), float32: padded-frame source columns
    sy = idx[None, :] + p[:, 1:2]
    x0, y0 = np.floor(sx), np.floor(sy)
    wx, wy = sx - x0, sy - y0
    ix = x0.astype(np.int64) - n // 2  # object column of the left corners
    iy = y0.astype(np.int64) - n // 2
    one = np.float32(1)
    wx, wy = wx[:, None, :], wy[:, :, None]
    weights = [(one - wx) * (one - wy), wx * (one - wy), (one - wx) * wy, wx * wy]
    re = np.zeros((len(p), n, n), np.float32)
    im = np.zeros((len(p), n, n), np.float32)
    for wk, (dy, dx) in zip(weights, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        r = iy[:, :, None] + dy
        c = ix[:, None, :] + dx
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        v = np.where(inside, obj[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)], 0)
        re = re + wk * v.real.astype(np.float32)
        im = im + wk * v.imag.astype(np.float32)
    return (re + 1j * im).astype(np.complex64)


def numpy_diffract(patches: np.ndarray, probe: np.ndarray, scale: float) -> np.ndarray:
    n = probe.shape[0]
    field = scale * probe.astype(np.complex128) * patches.astype(np.complex128)
    return np.abs(np.fft.fftshift(np.fft.fft2(field), axes=(-2, -1))) / n


def random_complex(rng: np.random.Generator, shape) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def disk_probe(n: int) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - n / 2
    return np.where(np.hypot(yy, xx) < n / 4, 1.0, 0.1).astype(np.complex64)


# --------------------------------------------------------------------------- extract_patches


def delta(h=256, w=256, row=100, col=150):
    o = np.zeros((h, w), np.complex64)
    o[row, col] = 1
    return o


def test_delta_lands_at_patch_centre():
    p = K.extract_patches(delta(), [[150.0, 100.0]], 64)
    assert p.shape == (1, 64, 64) and p.dtype == np.complex64
    assert p[0, 32, 32] == 1 and np.count_nonzero(p) == 1


def test_reference_bilinear_example():
    p = K.extract_patches(delta(), [[150.25, 100.5]], 64)[0]
    want = {(31, 31): 0.125, (31, 32): 0.375, (32, 31): 0.125, (32, 32): 0.375}
    for (r, c), v in want.items():
        assert p[r, c] == v
    assert np.count_nonzero(p) == 4


def test_half_pixel_at_both_edges_of_a_ones_object():
    ones = np.ones((256, 256))
    p = K.extract_patches(ones, [[0.5, 128.0], [255.5, 128.0]], 64)
    assert p[0, 32, 31] == 0.5 and p[0, 32, 30] == 0 and p[0, 32, 32] == 1
    assert p[1, 32, 32] == 0.5 and p[1, 32, 33] == 0 and p[1, 32, 31] == 1


@pytest.mark.parametrize("n", [8, 9, 16, 33])
def test_extract_matches_numpy_sampler(n):
    rng = np.random.default_rng(n)
    obj = random_complex(rng, (50, 70)) * 3
    # Sub-pixel positions across the object, its edges and beyond.
    pos = np.column_stack([rng.uniform(-n, 70 + n, 300), rng.uniform(-n, 50 + n, 300)])
    pos[:20] = np.round(pos[:20])  # some integer positions
    pos[20:40, 0] = rng.choice([0.0, 69.0, -0.5, 69.5, 0.25], 20)  # on the edges
    got = K.extract_patches(obj, pos, n)
    want = numpy_patches(obj, pos, n)
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(obj))


def test_extract_large_coordinates_keep_float32_arithmetic():
    # At ~3000 px the float32 coordinate carries ~2e-4 px of rounding; the sampler must
    # reproduce it, not an exact float64 interpolation.
    rng = np.random.default_rng(1)
    obj = random_complex(rng, (64, 3100))
    pos = np.column_stack([rng.uniform(3000, 3050, 50), rng.uniform(20, 40, 50)])
    # Just below a power of two, f32(c) + f32(x) rounds up for some c: a source index skips.
    below = [np.nextafter(np.float32(v), np.float32(0)) for v in (256, 512, 2048, 1024)]
    pos[:4, 0] = below
    pos[4, 1] = np.nextafter(np.float32(32), np.float32(0))
    got = K.extract_patches(obj, pos, 16)
    assert np.max(np.abs(got - numpy_patches(obj, pos, 16))) <= 1e-5 * np.max(np.abs(obj))


def test_extract_accepts_real_and_strided_objects():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 80))
    strided = base[:, ::2]  # float64, not contiguous
    pos = rng.uniform(0, 40, (10, 2))
    got = K.extract_patches(strided, pos, 8)
    assert np.max(np.abs(got - numpy_patches(strided, pos, 8))) <= 1e-5 * np.abs(base).max()


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    n=st.integers(1, 10),
    data=st.data(),
)
def test_integer_positions_slice_the_zero_padded_object(h, w, n, data):
    rng = np.random.default_rng(h * 100 + w)
    obj = random_complex(rng, (h, w))
    xs = data.draw(st.lists(st.integers(-n - 2, w + n + 2), min_size=1, max_size=5))
    ys = data.draw(st.lists(st.integers(-n - 2, h + n + 2), min_size=len(xs), max_size=len(xs)))
    pos = np.column_stack([xs, ys]).astype(np.float64)
    got = K.extract_patches(obj, pos, n)
    pad = 2 * n + 4
    padded = np.pad(obj, pad)
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        r0, c0 = y - n // 2 + pad, x - n // 2 + pad
        np.testing.assert_array_equal(got[k], padded[r0 : r0 + n, c0 : c0 + n])


# --------------------------------------------------------------------------- diffract


@pytest.mark.parametrize("n", [64, 63, 17])
def test_diffract_matches_numpy_fft(n):
    rng = np.random.default_rng(n)
    patches = random_complex(rng, (6, n, n))
    probe = random_complex(rng, (n, n))
    got = K.diffract(patches, probe, 2.5)
    assert got.dtype == np.float32 and got.shape == (6, n, n)
    want = numpy_diffract(patches, probe, 2.5)
    assert np.max(np.abs(got - want)) <= 1e-5 * want.max()


@pytest.mark.parametrize("n", [2, 3, 8, 9])
def test_zero_frequency_lands_at_n_over_two(n):
    a = K.diffract(np.ones((1, n, n), np.complex64), np.ones((n, n)), 1.0)[0]
    assert a[n // 2, n // 2] == pytest.approx(n, rel=1e-6)
    a[n // 2, n // 2] = 0
    assert np.max(a) < 1e-5


def test_diffract_default_scale_and_parseval():
    rng = np.random.default_rng(3)
    patches = random_complex(rng, (4, 32, 32))
    probe = disk_probe(32)
    a = K.diffract(patches, probe)
    energy = np.sum(np.abs(probe * patches.astype(np.complex128)) ** 2, axis=(1, 2))
    np.testing.assert_allclose(np.sum(a.astype(np.float64) ** 2, axis=(1, 2)), energy, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 24), seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_parseval_for_random_fields(n, seed, scale):
    rng = np.random.default_rng(seed)
    patches = random_complex(rng, (2, n, n))
    probe = random_complex(rng, (n, n))
    a = K.diffract(patches, probe, scale).astype(np.float64)
    field = np.float32(scale) * probe.astype(np.complex128) * patches
    want = np.sum(np.abs(field) ** 2, axis=(1, 2))
    np.testing.assert_allclose(np.sum(a**2, axis=(1, 2)), want, rtol=2e-5)


# --------------------------------------------------------------------------- illuminated_energy


def test_illuminated_energy_matches_numpy():
    rng = np.random.default_rng(4)
    obj = random_complex(rng, (80, 90))
    probe = random_complex(rng, (16, 16))
    pos = np.column_stack([rng.uniform(-5, 95, 50), rng.uniform(-5, 85, 50)])
    got = K.illuminated_energy(obj, pos, probe)
    assert got.dtype == np.float64 and got.shape == (50,)
    patches = numpy_patches(obj, pos, 16).astype(np.complex128)
    want = np.sum(np.abs(probe * patches) ** 2, axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_illuminated_energy_is_the_diffraction_energy():
    rng = np.random.default_rng(5)
    obj = random_complex(rng, (64, 64))
    probe = disk_probe(16)
    pos = rng.uniform(8, 56, (20, 2))
    e = K.illuminated_energy(obj, pos, probe)
    a, _ = K.simulate(obj, pos, probe, poisson=False)
    np.testing.assert_allclose(np.sum(a.astype(np.float64) ** 2, axis=(1, 2)), e, rtol=1e-5)


# --------------------------------------------------------------------------- simulate


@pytest.mark.parametrize("n", [16, 17])
@pytest.mark.parametrize("m", [3, 40])  # few patterns: the object is sampled untransposed
def test_simulate_without_noise_equals_the_separate_kernels(n, m):
    rng = np.random.default_rng(n)
    obj = random_complex(rng, (60, 50))
    probe = random_complex(rng, (n, n))
    pos = np.column_stack([rng.uniform(-4, 54, m), rng.uniform(-4, 64, m)])
    amps, patches = K.simulate(obj, pos, probe, scale=3.0, poisson=False, return_patches=True)
    want_patches = K.extract_patches(obj, pos, n)
    np.testing.assert_array_equal(patches, want_patches)
    np.testing.assert_array_equal(amps, K.diffract(want_patches, probe, 3.0))
    assert amps.dtype == np.float32 and patches.dtype == np.complex64


def test_simulate_divide_by_scale_and_no_patches():
    rng = np.random.default_rng(6)
    obj = random_complex(rng, (40, 40))
    probe = disk_probe(8)
    pos = rng.uniform(0, 40, (10, 2))
    a, none = K.simulate(obj, pos, probe, scale=7.5, poisson=False)
    x, _ = K.simulate(obj, pos, probe, scale=7.5, poisson=False, divide_by_scale=True)
    assert none is None
    np.testing.assert_array_equal(x, a / np.float32(7.5))
    # Noise-free X is independent of the scale, up to rounding.
    x1, _ = K.simulate(obj, pos, probe, scale=1.0, poisson=False, divide_by_scale=True)
    np.testing.assert_allclose(x, x1, rtol=1e-5, atol=1e-6 * x1.max())


# --------------------------------------------------------------------------- errors


OBJ = np.ones((32, 32), np.complex64)
POS = np.array([[16.0, 16.0], [10.5, 20.25]])
PROBE = np.ones((8, 8), np.complex64)
PATCHES = np.ones((2, 8, 8), np.complex64)

BAD_CALLS = [
    # extract_patches
    ("obj", TypeError, lambda: K.extract_patches(np.array([["a"]]), POS, 8)),
    ("obj", ValueError, lambda: K.extract_patches(np.ones(5), POS, 8)),
    ("obj", ValueError, lambda: K.extract_patches(np.ones((2, 3, 4)), POS, 8)),
    ("obj", ValueError, lambda: K.extract_patches(np.zeros((0, 5)), POS, 8)),
    ("obj", ValueError, lambda: K.extract_patches(np.full((4, 4), np.nan), POS, 8)),
    ("positions", ValueError, lambda: K.extract_patches(OBJ, np.ones((3, 3)), 8)),
    ("positions", ValueError, lambda: K.extract_patches(OBJ, np.ones(2), 8)),
    ("positions", ValueError, lambda: K.extract_patches(OBJ, np.zeros((0, 2)), 8)),
    ("positions", ValueError, lambda: K.extract_patches(OBJ, [[np.nan, 1.0]], 8)),
    ("positions", ValueError, lambda: K.extract_patches(OBJ, [[np.inf, 1.0]], 8)),
    ("positions", TypeError, lambda: K.extract_patches(OBJ, POS + 1j, 8)),
    ("N", ValueError, lambda: K.extract_patches(OBJ, POS, 0)),
    ("N", TypeError, lambda: K.extract_patches(OBJ, POS, 8.5)),
    # diffract
    ("patches", ValueError, lambda: K.diffract(np.ones((8, 8), np.complex64), PROBE)),
    ("patches", ValueError, lambda: K.diffract(np.ones((2, 8, 7), np.complex64), PROBE)),
    ("patches", ValueError, lambda: K.diffract(np.ones((0, 8, 8), np.complex64), PROBE)),
    ("patches", ValueError, lambda: K.diffract(np.full((1, 8, 8), np.nan), PROBE)),
    ("patches", TypeError, lambda: K.diffract(np.array([[["x"]]]), PROBE)),
    ("probe", ValueError, lambda: K.diffract(PATCHES, np.ones((9, 9)))),
    ("probe", ValueError, lambda: K.diffract(PATCHES, np.ones((8, 7)))),
    ("probe", ValueError, lambda: K.diffract(np.ones((1, 1, 1)), np.ones((1, 1)))),
    ("probe", ValueError, lambda: K.diffract(PATCHES, np.full((8, 8), np.inf))),
    ("scale", ValueError, lambda: K.diffract(PATCHES, PROBE, 0.0)),
    ("scale", ValueError, lambda: K.diffract(PATCHES, PROBE, -2.0)),
    ("scale", ValueError, lambda: K.diffract(PATCHES, PROBE, np.nan)),
    ("scale", ValueError, lambda: K.diffract(PATCHES, PROBE, np.inf)),
    ("scale", TypeError, lambda: K.diffract(PATCHES, PROBE, "big")),
    # illuminated_energy
    ("obj", ValueError, lambda: K.illuminated_energy(np.ones(4), POS, PROBE)),
    ("positions", ValueError, lambda: K.illuminated_energy(OBJ, np.ones((2, 1)), PROBE)),
    ("positions", ValueError, lambda: K.illuminated_energy(OBJ, [[1.0, np.nan]], PROBE)),
    ("probe", ValueError, lambda: K.illuminated_energy(OBJ, POS, np.ones((8, 6)))),
    ("probe", ValueError, lambda: K.illuminated_energy(OBJ, POS, np.ones((1, 1)))),
    ("probe", ValueError, lambda: K.illuminated_energy(OBJ, POS, np.ones((0, 0)))),
    # simulate
    ("obj", ValueError, lambda: K.simulate(np.ones((0, 4)), POS, PROBE)),
    ("obj", TypeError, lambda: K.simulate(None, POS, PROBE)),
    ("positions", ValueError, lambda: K.simulate(OBJ, np.ones((2, 2, 2)), PROBE)),
    ("positions", ValueError, lambda: K.simulate(OBJ, [[1.0, -np.inf]], PROBE)),
    ("positions", ValueError, lambda: K.simulate(OBJ, np.zeros((0, 2)), PROBE)),
    ("probe", ValueError, lambda: K.simulate(OBJ, POS, np.ones((8, 9)))),
    ("probe", ValueError, lambda: K.simulate(OBJ, POS, np.ones(8))),
    ("scale", ValueError, lambda: K.simulate(OBJ, POS, PROBE, scale=0)),
    ("scale", ValueError, lambda: K.simulate(OBJ, POS, PROBE, scale=-1e-3)),
    ("scale", ValueError, lambda: K.simulate(OBJ, POS, PROBE, scale=float("nan"))),
    ("seed", TypeError, lambda: K.simulate(OBJ, POS, PROBE, seed=1.5)),
    ("seed", ValueError, lambda: K.simulate(OBJ, POS, PROBE, seed=-1)),
    ("first_index", ValueError, lambda: K.simulate(OBJ, POS, PROBE, first_index=-1)),
]


@pytest.mark.parametrize(
    ("name", "exc", "call"), BAD_CALLS, ids=[f"{i}-{c[0]}" for i, c in enumerate(BAD_CALLS)]
)
def test_bad_input_raises_naming_the_argument(name, exc, call):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value).startswith(name + " "), str(info.value)


def test_core_errors_are_ptyfast_errors():
    # Bypassing the validating layer, the core still refuses (and never panics).
    from ptyfast import _core

    with pytest.raises(ptyfast.PtyfastError, match="positions"):
        _core.extract_patches(OBJ, np.zeros((0, 2)), 8)
    with pytest.raises(ptyfast.PtyfastError, match="probe"):
        _core.diffract(PATCHES, np.ones((4, 4), np.complex64), 1.0)
    with pytest.raises(ptyfast.PtyfastError, match="scale"):
        _core.diffract(PATCHES, PROBE, -1.0)
    with pytest.raises(ptyfast.PtyfastError, match="positions"):
        _core.simulate(OBJ, np.array([[np.nan, 0.0]]), PROBE, 1.0, None, 0, False, False)
    with pytest.raises(ptyfast.PtyfastError, match="first_index"):
        _core.simulate(OBJ, POS, PROBE, 1.0, 3, 2**64 - 1, False, False)
    with pytest.raises(ptyfast.PtyfastError, match="obj"):
        _core.illuminated_energy(np.zeros((3, 0), np.complex64), POS, PROBE)


# --------------------------------------------------------------------------- purity


def test_inputs_are_not_modified():
    rng = np.random.default_rng(7)
    inputs = {
        "obj": random_complex(rng, (40, 40)),
        "obj64": rng.standard_normal((40, 40)),
        "pos": rng.uniform(-2, 42, (12, 2)),
        "probe": random_complex(rng, (8, 8)),
        "patches": random_complex(rng, (12, 8, 8)),
    }
    copies = {k: v.copy() for k, v in inputs.items()}
    i = inputs
    K.extract_patches(i["obj"], i["pos"], 8)
    K.extract_patches(i["obj64"], i["pos"], 8)
    K.diffract(i["patches"], i["probe"], 2.0)
    K.illuminated_energy(i["obj"], i["pos"], i["probe"])
    K.simulate(i["obj"], i["pos"], i["probe"], scale=2.0, seed=1, return_patches=True)
    K.simulate(i["obj64"], i["pos"], i["probe"], poisson=False, divide_by_scale=True)
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, copies[k], err_msg=k)


def test_outputs_are_fresh_writable_arrays():
    a, p = K.simulate(OBJ, POS, PROBE, poisson=False, return_patches=True)
    for arr in (a, p, K.extract_patches(OBJ, POS, 8), K.diffract(PATCHES, PROBE)):
        assert arr.flags.c_contiguous and arr.flags.writeable
    assert not np.shares_memory(p, OBJ)


# --------------------------------------------------------------------------- determinism


RUN_SIMULATE = textwrap.dedent(
    """
    import sys, numpy as np
    from ptyfast import _kernels as K
    d = np.load(sys.argv[1])
    a, _ = K.simulate(d["obj"], d["pos"], d["probe"], scale=float(d["scale"]), poisson=True,
                      seed=7, divide_by_scale=True)
    np.save(sys.argv[2], a)
    print(K.num_threads())
    """
)


def _dataset(m=64, n=16):
    rng = np.random.default_rng(8)
    obj = random_complex(rng, (96, 96))
    pos = rng.uniform(8, 88, (m, 2))
    return obj, pos, disk_probe(n), 40.0


def test_noise_is_bit_identical_for_any_thread_count(tmp_path: Path):
    obj, pos, probe, scale = _dataset()
    np.savez(tmp_path / "in.npz", obj=obj, pos=pos, probe=probe, scale=scale)
    src = str(Path(ptyfast.__file__).resolve().parents[1])
    outs, threads = [], []
    for n_threads in ("1", None):
        env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("RAYON_NUM_THREADS", None)
        if n_threads:
            env["RAYON_NUM_THREADS"] = n_threads
        out = tmp_path / f"out{n_threads}.npy"
        res = subprocess.run(
            [sys.executable, "-c", RUN_SIMULATE, str(tmp_path / "in.npz"), str(out)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        threads.append(int(res.stdout.split()[-1]))
        outs.append(np.load(out))
    assert threads[0] == 1
    assert outs[0].tobytes() == outs[1].tobytes()
    here, _ = K.simulate(obj, pos, probe, scale=scale, seed=7, divide_by_scale=True)
    assert here.tobytes() == outs[0].tobytes()


def test_noise_is_applied_and_follows_the_seed():
    obj, pos, probe, scale = _dataset()
    clean, _ = K.simulate(obj, pos, probe, scale=scale, poisson=False)
    a, _ = K.simulate(obj, pos, probe, scale=scale, seed=7)
    b, _ = K.simulate(obj, pos, probe, scale=scale, seed=8)
    assert not np.array_equal(a, clean)
    assert not np.array_equal(a, b)
    counts = a.astype(np.float64) ** 2
    # Each amplitude is the square root of an integer count.
    np.testing.assert_allclose(np.sqrt(np.round(counts)), a, rtol=1e-6)
    rel = abs(counts.sum() - (clean.astype(np.float64) ** 2).sum()) / counts.sum()
    assert rel < 0.01  # ~1e5 expected counts in all


def test_chunked_simulation_equals_one_call():
    obj, pos, probe, scale = _dataset(m=50)
    whole, _ = K.simulate(obj, pos, probe, scale=scale, seed=7)
    parts = [
        K.simulate(obj, pos[a:b], probe, scale=scale, seed=7, first_index=a)[0]
        for a, b in [(0, 1), (1, 17), (17, 50)]
    ]
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    again, _ = K.simulate(obj, pos, probe, scale=scale, seed=7)
    assert again.tobytes() == whole.tobytes()

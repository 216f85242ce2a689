"""The TensorFlow reference of the grid path against independent NumPy computations.

Everything expected here is computed with plain NumPy slicing, a float64 bilinear sampler
and ``numpy.fft`` from the reference's behaviour (``ptyfast.tf_reference``'s docstring),
never with TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ptyfast import tf_reference as tr  # noqa: E402

pytestmark = pytest.mark.tf


# --------------------------------------------------------------------------- NumPy helpers


def np_region_origins(size, N, g, offset, outer_offset):
    big_n = N + (g - 1) * offset
    stride = outer_offset // 2
    g1 = (size - big_n) // stride + 1
    return [(r * stride, c * stride) for r in range(g1) for c in range(g1)], big_n


def np_grid_patches(yy, N, g, offset, outer_offset):
    """(n * G1**2, N, N, C) by slicing; channel c = (row c // g, col c % g)."""
    n, size = yy.shape[0], yy.shape[1]
    origins, _ = np_region_origins(size, N, g, offset, outer_offset)
    out = np.empty((n * len(origins), N, N, g * g), yy.dtype)
    b = 0
    for k in range(n):
        for r0, c0 in origins:
            for c in range(g * g):
                i, j = divmod(c, g)
                rr, cc = r0 + i * offset, c0 + j * offset
                out[b, :, :, c] = yy[k, rr : rr + N, cc : cc + N, 0]
            b += 1
    return out


def np_bilinear(region, rows, cols):
    """float64 bilinear samples of ``region`` at (rows, cols) grids; corners outside -> 0."""
    h, w = region.shape
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    wr = rows - r0
    wc = cols - c0
    out = np.zeros(rows.shape)
    for dr, fr in ((0, 1 - wr), (1, wr)):
        for dc, fc in ((0, 1 - wc), (1, wc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            vals = np.where(ok, region[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)], 0.0)
            out += fr * fc * vals
    return out


def np_amplitude(psi):
    """|fftshift(fft2(psi))| / N over axes (1, 2), float64."""
    n = psi.shape[1]
    return np.abs(np.fft.fftshift(np.fft.fft2(psi, axes=(1, 2)), axes=(1, 2))) / n


def gaussian_probe(N, phase=True):
    y, x = np.mgrid[:N, :N] - N / 2
    amp = np.exp(-(x**2 + y**2) / (2 * (N / 6) ** 2))
    return amp * np.exp(1j * 0.3 * x / N) if phase else amp


def smooth_object(rng, n, size):
    yy = rng.uniform(0.5, 2.0, (n, size, size, 1))
    k = np.ones(5) / 5
    for ax in (1, 2):
        yy = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), ax, yy)
    return yy + 0.2


def channel_to_flat(a):
    b, h, w, c = a.shape
    return a.transpose(0, 3, 1, 2).reshape(b * c, h, w, 1)


# --------------------------------------------------------------------------- coordinates


def test_region_counts():
    assert tr.n_regions_per_axis(392, 8, N=64, gridsize=2, offset=4) == 82
    assert tr.n_regions_per_axis(392, 8, N=128, gridsize=2, offset=4) == 66
    assert tr.n_regions_per_axis(392, 20, N=64, gridsize=2, offset=4) == 33
    assert tr.n_regions_per_axis(128, 16, N=64, gridsize=2, offset=4) == 8
    with pytest.raises(ValueError, match="size must be >= bigN"):
        tr.n_regions_per_axis(67, 8, N=64, gridsize=2, offset=4)
    with pytest.raises(ValueError, match="outer_offset"):
        tr.n_regions_per_axis(100, 1, N=64, gridsize=1, offset=4)


def test_coords_section6_example():
    off = tr.extract_coords(128, 2, 16, N=64, gridsize=2, offset=4)
    assert off.dtype == np.float32 and off.shape == (2 * 8 * 8, 1, 2, 4)
    want = np.array([[2, -2, 2, -2], [2, 2, -2, -2]], np.float32)  # [x; y] per channel
    assert np.array_equal(off[:, 0], np.broadcast_to(want, (128, 2, 4)))


def test_coords_brief_size_n64():
    off = tr.extract_coords(392, 1, 8, N=64, gridsize=2, offset=4)
    assert off.shape == (82 * 82, 1, 2, 4)
    assert np.array_equal(off[-1, 0], [[2, -2, 2, -2], [2, 2, -2, -2]])


@pytest.mark.parametrize(("N", "g", "offset"), [(16, 3, 3), (16, 1, 4), (10, 2, 5)])
def test_coords_are_region_minus_patch_centre(N, g, offset):
    size, outer = 41, 6
    off = tr.extract_coords(size, 1, outer, N=N, gridsize=g, offset=offset)
    origins, big_n = np_region_origins(size, N, g, offset, outer)
    want = np.empty((len(origins), 1, 2, g * g))
    for b, (r0, c0) in enumerate(origins):
        for c in range(g * g):
            i, j = divmod(c, g)
            want[b, 0, 0, c] = (c0 + (big_n - 1) / 2) - (c0 + j * offset + (N - 1) / 2)
            want[b, 0, 1, c] = (r0 + (big_n - 1) / 2) - (r0 + i * offset + (N - 1) / 2)
    np.testing.assert_allclose(off, want, atol=1e-5)


def test_coords_global_patch_major():
    N, g, offset, size, outer, n = 8, 2, 2, 20, 4, 3
    ix, iy = tr.extract_coords(size, n, outer, N=N, gridsize=g, offset=offset, coord_type="global")
    origins, _ = np_region_origins(size, N, g, offset, outer)
    assert ix.shape == iy.shape == (n * len(origins), 1, 1, 4)
    for row in range(ix.shape[0]):
        r0, c0 = origins[row // n]  # each region's row repeated n times consecutively
        for c in range(4):
            i, j = divmod(c, g)
            assert ix[row, 0, 0, c] == c0 + j * offset + (N - 1) / 2
            assert iy[row, 0, 0, c] == r0 + i * offset + (N - 1) / 2
    with pytest.raises(ValueError, match="coord_type"):
        tr.extract_coords(size, 1, outer, N=N, gridsize=g, offset=offset, coord_type="x")


# --------------------------------------------------------------------------- patches


def test_ramp_section6():
    size = 128
    ramp = np.arange(size * size, dtype=np.float64).reshape(1, size, size, 1)
    p = tr.extract_grid_patches(ramp, 16, N=64, gridsize=2, offset=4)
    flat = channel_to_flat(p)
    top_left = [divmod(int(v), size) for v in flat[:6, 0, 0, 0]]
    assert top_left == [(0, 0), (0, 4), (4, 0), (4, 4), (0, 8), (0, 12)]


@pytest.mark.parametrize(("g", "offset"), [(1, 4), (2, 4), (3, 3)])
def test_grid_patches_equal_slicing(g, offset):
    rng = np.random.default_rng(g)
    N, size, outer = 32, 90, 12
    yy = rng.normal(size=(2, size, size, 1))
    got = tr.extract_grid_patches(yy, outer, N=N, gridsize=g, offset=offset)
    want = np_grid_patches(yy, N, g, offset, outer)
    g1 = tr.n_regions_per_axis(size, outer, N=N, gridsize=g, offset=offset)
    assert got.shape == want.shape == (2 * g1 * g1, N, N, g * g)
    if g == 1:  # regular-grid path: exact float64 copies
        assert got.dtype == np.float64 and np.array_equal(got, want)
    else:  # translated by integer offsets in float32: exact float32 copies
        assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))


def test_grid_patches_complex():
    rng = np.random.default_rng(5)
    yy = rng.normal(size=(1, 60, 60, 1)) + 1j * rng.normal(size=(1, 60, 60, 1))
    got = tr.extract_grid_patches(yy, 8, N=16, gridsize=2, offset=4)
    assert got.dtype == np.complex64
    assert np.array_equal(got, np_grid_patches(yy, 16, 2, 4, 8).astype(np.complex64))


def test_jitter_is_bilinear_with_zero_fill():
    rng = np.random.default_rng(7)
    N, g, offset, size, outer = 12, 2, 4, 36, 8
    yy = rng.uniform(0.5, 1.5, (1, size, size, 1))
    nominal = tr.extract_coords(size, 1, outer, N=N, gridsize=g, offset=offset)
    jitter = rng.uniform(-2.5, 2.5, nominal.shape).astype(np.float32)
    got = tr.extract_grid_patches(yy, outer, N=N, gridsize=g, offset=offset, jitter=jitter)
    origins, big_n = np_region_origins(size, N, g, offset, outer)
    clip = (big_n - N) // 2
    true = nominal.astype(np.float64) + jitter
    rows, cols = np.mgrid[:N, :N].astype(np.float64)
    n_zero = 0
    for b, (r0, c0) in enumerate(origins):
        region = yy[0, r0 : r0 + big_n, c0 : c0 + big_n, 0]
        for c in range(g * g):
            tx, ty = true[b, 0, 0, c], true[b, 0, 1, c]
            want = np_bilinear(region, rows + clip - ty, cols + clip - tx)
            np.testing.assert_allclose(got[b, :, :, c], want, atol=2e-5)
            n_zero += int(np.sum(want == 0))
    assert n_zero > 0  # pixels from outside the region came in as zeros


def test_jitter_gridsize1_zero_border():
    yy = np.arange(1.0, 1 + 20 * 20).reshape(1, 20, 20, 1)
    nominal = tr.extract_coords(20, 1, 8, N=16, gridsize=1, offset=4)
    jitter = np.zeros_like(nominal)
    jitter[:, 0, 0, 0] = 1.0  # true x offset +1: the patch samples column c - 1
    got = tr.extract_grid_patches(yy, 8, N=16, gridsize=1, offset=4, jitter=jitter)
    want = np_grid_patches(yy, 16, 1, 4, 8)
    assert got.dtype == np.float32
    assert np.all(got[:, :, 0, 0] == 0)
    assert np.array_equal(got[:, :, 1:, 0], want[:, :, :-1, 0].astype(np.float32))


def test_odd_crop_with_translation_raises():
    with pytest.raises(ValueError, match="even"):
        tr.extract_grid_patches(np.ones((1, 40, 40, 1)), 8, N=16, gridsize=2, offset=3)


def test_patch_input_validation():
    with pytest.raises(ValueError, match=r"YY must have shape \(n, size, size, 1\)"):
        tr.extract_grid_patches(np.ones((1, 40, 41, 1)), 8, N=16, gridsize=2, offset=4)
    with pytest.raises(ValueError, match="finite"):
        tr.extract_grid_patches(np.full((1, 40, 40, 1), np.nan), 8, N=16, gridsize=2, offset=4)
    with pytest.raises(ValueError, match="jitter must have shape"):
        tr.extract_grid_patches(
            np.ones((1, 40, 40, 1)), 8, N=16, gridsize=2, offset=4, jitter=np.zeros((3, 1, 2, 4))
        )


# --------------------------------------------------------------------------- diffraction


def test_diffract_matches_numpy_and_parseval():
    rng = np.random.default_rng(11)
    psi = (rng.normal(size=(3, 32, 32, 1)) + 1j * rng.normal(size=(3, 32, 32, 1))).astype(
        np.complex64
    )
    a = tr.diffract(psi)
    assert a.dtype == np.float32 and a.shape == psi.shape
    want = np_amplitude(psi.astype(np.complex128))
    np.testing.assert_allclose(a, want, rtol=2e-5, atol=1e-5 * want.max())
    np.testing.assert_allclose(
        np.sum(a.astype(np.float64) ** 2, axis=(1, 2, 3)),
        np.sum(np.abs(psi.astype(np.complex128)) ** 2, axis=(1, 2, 3)),
        rtol=1e-5,
    )
    dc = tr.diffract(np.full((1, 16, 16, 1), 2.0, np.complex64))
    assert dc[0, 8, 8, 0] == pytest.approx(32.0) and np.sum(dc > 1e-4) == 1


def test_scale_nphotons_formula():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(5, 16, 16, 4)).astype(np.float32)
    want = np.sqrt(1e6 / np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2))))
    got = tr.scale_nphotons(x, 1e6)
    assert isinstance(got, np.float32) and got == pytest.approx(want, rel=1e-6)
    assert isinstance(tr.scale_nphotons(x.astype(np.float64), 1e6), np.float64)
    with pytest.raises(ValueError, match="nphotons"):
        tr.scale_nphotons(x, 0.0)


def test_dummy_phi_formula():
    y = np.random.default_rng(2).uniform(1, 3, (2, 10, 10, 1))
    want = np.pi * np.tanh((y - y.max() / 2) / (3 * y.mean()))
    got = tr.dummy_phi(y)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_illuminate_noise_free():
    rng = np.random.default_rng(4)
    N = 32
    y_i = rng.uniform(0.2, 1.0, (6, N, N, 1)).astype(np.float32)
    y_phi = rng.uniform(-1, 1, (6, N, N, 1)).astype(np.float32)
    probe = gaussian_probe(N)
    X, YI, Yphi, s = tr.illuminate_and_diffract(y_i, y_phi, probe, nphotons=1e7, poisson=False)
    obj = y_i.astype(np.float64) * np.exp(1j * y_phi)
    s_want = np.sqrt(1e7 / np.mean(np.sum((y_i * np.abs(probe)[..., None]) ** 2, axis=(1, 2))))
    assert isinstance(s, np.float32) and s == pytest.approx(s_want, rel=1e-5)
    want = np_amplitude(obj * probe[..., None])
    assert X.dtype == np.float32 and X.shape == (6, N, N, 1)
    np.testing.assert_allclose(X, want, atol=1e-5 * want.max())
    np.testing.assert_allclose(YI, y_i * np.abs(probe)[..., None], rtol=1e-5, atol=1e-7)
    assert YI.dtype == np.float32
    assert np.array_equal(Yphi, y_phi)  # the pre-probe phase, unchanged
    X2, _, _, s2 = tr.illuminate_and_diffract(y_i, y_phi, probe, nphotons=1e3, poisson=False)
    assert s2 != s
    np.testing.assert_allclose(X2, X, rtol=1e-5, atol=1e-6 * want.max())  # independent of s


def test_illuminate_validation():
    y = np.ones((2, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match=r"probe must be \(N, N\) = \(8, 8\), got \(8, 7\)"):
        tr.illuminate_and_diffract(y, y, np.ones((8, 7)), nphotons=1.0)
    with pytest.raises(ValueError, match="Y_phi must have shape"):
        tr.illuminate_and_diffract(y, y[:1], np.ones((8, 8)), nphotons=1.0)
    with pytest.raises(ValueError, match="intensity_scale"):
        tr.illuminate_and_diffract(y, y, np.ones((8, 8)), nphotons=1.0, intensity_scale=-1.0)
    with pytest.raises(ValueError, match="intensity_scale must be positive"):
        tr.illuminate_and_diffract(0 * y, y, np.ones((8, 8)), nphotons=1.0)


# --------------------------------------------------------------------------- Poisson


def test_poisson_statistics():
    lam = 7.3
    a = np.full((50, 64, 64), np.sqrt(lam), np.float32)
    obs = tr.observe_amplitude(a, seed=123)
    counts = obs.astype(np.float64) ** 2
    assert obs.dtype == np.float32
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)
    m = counts.size
    assert abs(counts.mean() - lam) < 5 * np.sqrt(lam / m)
    assert abs(counts.var() - lam) < 0.05 * lam
    assert np.array_equal(obs, tr.observe_amplitude(a, seed=123))
    assert not np.array_equal(obs, tr.observe_amplitude(a, seed=124))
    assert not np.array_equal(obs, tr.observe_amplitude(a, seed=123, stream=1))
    assert np.all(tr.observe_amplitude(np.zeros((4, 4), np.float32), seed=0) == 0)
    with pytest.raises(ValueError, match="non-negative"):
        tr.observe_amplitude(-a, seed=0)


def test_mk_simdata_poisson_mean_counts():
    rng = np.random.default_rng(8)
    yy = smooth_object(rng, 1, 80)
    nph = 1e4
    d = tr.mk_simdata(
        yy, None, gaussian_probe(32), 8, N=32, gridsize=2, offset=4, nphotons=nph, seed=9
    )
    s = np.float64(d["intensity_scale"])
    counts = (d["X"].astype(np.float64) * s) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)
    totals = counts.sum(axis=(1, 2)).ravel()
    assert abs(totals.mean() - nph) < 5 * np.sqrt(nph / totals.size)
    again = tr.mk_simdata(
        yy, None, gaussian_probe(32), 8, N=32, gridsize=2, offset=4, nphotons=nph, seed=9
    )
    assert np.array_equal(again["X"], d["X"])


# --------------------------------------------------------------------------- mk_simdata


def expected_simdata(yy_i, yy_phi, probe, outer, N, g, offset, nphotons):
    """The grid pipeline, noise-free, from NumPy slices (float64)."""
    pi = np_grid_patches(yy_i, N, g, offset, outer)
    pphi = np_grid_patches(yy_phi, N, g, offset, outer)
    norm = np.mean(pi.max(axis=(1, 2, 3)))
    pi = pi / norm
    pa = np.abs(probe)[None, :, :, None]
    s = np.sqrt(nphotons / np.mean(np.sum((pi * pa) ** 2, axis=(1, 2))))
    X = np.empty(pi.shape)
    for c in range(g * g):
        psi = pi[..., c] * np.exp(1j * pphi[..., c]) * probe[None]
        X[..., c] = np_amplitude(psi[..., None])[..., 0]
    return {"X": X, "Y_I": pi * pa, "Y_phi": pphi, "s": s, "norm": norm}


def test_mk_simdata_noise_free_gridsize2():
    rng = np.random.default_rng(21)
    N, g, offset, outer, size = 32, 2, 4, 12, 76
    yy_i = smooth_object(rng, 2, size)
    yy_phi = rng.uniform(-0.5, 0.5, yy_i.shape)
    probe = gaussian_probe(N)
    d = tr.mk_simdata(
        yy_i, yy_phi, probe, outer, N=N, gridsize=g, offset=offset, nphotons=1e8, poisson=False
    )
    e = expected_simdata(yy_i, yy_phi, probe, outer, N, g, offset, 1e8)
    g1 = tr.n_regions_per_axis(size, outer, N=N, gridsize=g, offset=offset)
    assert d["X"].shape == d["Y_I"].shape == d["Y_phi"].shape == (2 * g1 * g1, N, N, 4)
    np.testing.assert_allclose(d["X"], e["X"], atol=2e-5 * e["X"].max())
    np.testing.assert_allclose(d["Y_I"], e["Y_I"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d["Y_phi"], e["Y_phi"], rtol=1e-6, atol=1e-7)
    assert d["norm_Y_I"] == pytest.approx(e["norm"], rel=1e-6)
    assert d["intensity_scale"] == pytest.approx(e["s"], rel=1e-5)
    nominal, true = d["coords"]
    assert np.array_equal(nominal, true) and nominal.shape == (2 * g1 * g1, 1, 2, 4)
    want_full = (yy_i * np.exp(1j * yy_phi)).astype(np.complex64)  # not normalised
    np.testing.assert_allclose(d["YY_full"], want_full, rtol=1e-6, atol=1e-6)
    assert d["YY_full"].dtype == np.complex64
    np.testing.assert_allclose(
        d["I_pre_probe"], channel_to_flat(e["Y_I"] / np.abs(probe)[None, :, :, None]), rtol=1e-5
    )


def test_mk_simdata_n128_noise_free():
    rng = np.random.default_rng(22)
    N, g, offset, outer, size = 128, 2, 4, 8, 140
    yy_i = smooth_object(rng, 1, size)
    probe = gaussian_probe(N, phase=False)
    d = tr.mk_simdata(
        yy_i, None, probe, outer, N=N, gridsize=g, offset=offset, nphotons=1e9, poisson=False
    )
    e = expected_simdata(yy_i, np.zeros_like(yy_i), probe, outer, N, g, offset, 1e9)
    assert d["X"].shape == (9, N, N, 4)
    np.testing.assert_allclose(d["X"], e["X"], atol=2e-5 * e["X"].max())
    assert d["intensity_scale"] == pytest.approx(e["s"], rel=1e-5)
    assert np.all(d["Y_phi"] == 0)


def test_mk_simdata_set_phi():
    rng = np.random.default_rng(23)
    N, g, offset, outer, size = 16, 2, 4, 8, 40
    yy_i = smooth_object(rng, 2, size)
    d = tr.mk_simdata(
        yy_i, None, np.ones((N, N)), outer, N=N, gridsize=g, offset=offset, nphotons=1e6,
        poisson=False, set_phi=True,
    )  # fmt: skip
    phi = np.pi * np.tanh((yy_i - yy_i.max() / 2) / (3 * yy_i.mean()))  # global max, mean
    np.testing.assert_allclose(d["Y_phi"], np_grid_patches(phi, N, g, offset, outer), atol=2e-6)
    np.testing.assert_allclose(np.angle(d["YY_full"]), phi[..., :], atol=2e-6)
    e = expected_simdata(yy_i, phi, np.ones((N, N)), outer, N, g, offset, 1e6)
    np.testing.assert_allclose(d["X"], e["X"], atol=2e-5 * e["X"].max())


@pytest.mark.parametrize(
    ("g", "obj_dtype", "x_dt", "phi_dt", "s_dt"),
    [
        (2, np.float64, np.float32, np.float32, np.float32),
        (1, np.float64, np.float64, np.float64, np.float64),
        (1, np.float32, np.float32, np.float32, np.float32),
    ],
)
def test_mk_simdata_dtypes(g, obj_dtype, x_dt, phi_dt, s_dt):
    yy = smooth_object(np.random.default_rng(1), 1, 40).astype(obj_dtype)
    d = tr.mk_simdata(yy, None, np.ones((16, 16)), 8, N=16, gridsize=g, offset=4, nphotons=1e5)
    assert d["X"].dtype == x_dt
    assert d["Y_I"].dtype == np.float32
    assert d["Y_phi"].dtype == phi_dt
    assert type(d["intensity_scale"]) is s_dt
    assert type(d["norm_Y_I"]) is s_dt
    assert d["coords"][0].dtype == d["coords"][1].dtype == np.float32
    assert d["YY_full"].dtype == np.complex64


def test_mk_simdata_given_intensity_scale():
    yy = smooth_object(np.random.default_rng(2), 1, 40)
    kw = dict(N=16, gridsize=2, offset=4, nphotons=1e5, poisson=False)
    ref = tr.mk_simdata(yy, None, gaussian_probe(16), 8, **kw)
    d = tr.mk_simdata(yy, None, gaussian_probe(16), 8, intensity_scale=3.5, **kw)
    assert d["intensity_scale"] == 3.5 and d["X"].dtype == np.float32
    np.testing.assert_allclose(d["X"], ref["X"], rtol=1e-5, atol=1e-6 * ref["X"].max())
    d64 = tr.mk_simdata(yy, None, gaussian_probe(16), 8, intensity_scale=np.float64(3.5), **kw)
    assert d64["X"].dtype == np.float64  # NumPy promotion, as in the reference


def test_mk_simdata_jitter():
    yy = smooth_object(np.random.default_rng(3), 1, 60)
    kw = dict(N=16, gridsize=2, offset=4, nphotons=1e5, poisson=False)
    d = tr.mk_simdata(yy, None, np.ones((16, 16)), 8, jitter_scale=0.5, seed=4, **kw)
    nominal, true = d["coords"]
    dev = (true - nominal).ravel()
    assert abs(dev.std() - 0.5) < 0.05 and abs(dev.mean()) < 0.05
    assert np.array_equal(nominal, tr.extract_coords(60, 1, 8, N=16, gridsize=2, offset=4))
    again = tr.mk_simdata(yy, None, np.ones((16, 16)), 8, jitter_scale=0.5, seed=4, **kw)
    assert np.array_equal(again["coords"][1], true) and np.array_equal(again["X"], d["X"])
    # The patches are the bilinear samples at the true offsets.
    norm = d["norm_Y_I"]
    pre = tr.extract_grid_patches(yy, 8, N=16, gridsize=2, offset=4, jitter=true - nominal)
    np.testing.assert_allclose(d["I_pre_probe"], channel_to_flat(pre / norm), rtol=1e-6)
    zero = tr.mk_simdata(yy, None, np.ones((16, 16)), 8, jitter_scale=0.0, seed=4, **kw)
    assert np.array_equal(zero["coords"][0], zero["coords"][1])


def test_mk_simdata_validation():
    yy = np.ones((1, 40, 40, 1))
    kw = dict(N=16, gridsize=2, offset=4, nphotons=1e5)
    with pytest.raises(ValueError, match=r"probe must be \(N, N\) = \(16, 16\)"):
        tr.mk_simdata(yy, None, np.ones((8, 8)), 8, **kw)
    with pytest.raises(ValueError, match="YY_phi must have shape"):
        tr.mk_simdata(yy, np.ones((1, 40, 40, 2)), np.ones((16, 16)), 8, **kw)
    with pytest.raises(TypeError, match="YY_I must be real"):
        tr.mk_simdata(yy + 0j, None, np.ones((16, 16)), 8, **kw)
    with pytest.raises(ValueError, match="nphotons"):
        tr.mk_simdata(yy, None, np.ones((16, 16)), 8, N=16, gridsize=2, offset=4, nphotons=-1)
    with pytest.raises(ValueError, match="jitter_scale"):
        tr.mk_simdata(yy, None, np.ones((16, 16)), 8, jitter_scale=-1.0, **kw)

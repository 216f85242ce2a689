"""Numerical-extremes audit of the simulation paths, against NumPy computations written here.

Every expected value is computed in this file from the documented conventions (README
"Conventions", docs/conventions.md), never through a ptyfast helper other than the function
under test:

* the patch ``patch[r, c] = bilinear(object, row = y + r − N//2, col = x + c − N//2)``, zero
  outside the object, with the coordinate ``f32(c) + f32(x)`` formed in float32 as the
  reference's translation does (:func:`patch_f32`);
* the far field ``|fftshift(fft2(probe · patch))|² / N²`` in complex128 (:func:`far_field`);
* the intensity scale ``s² = photons / mean_i Σ_k Σ |P_k · patch_i|²`` and the placement
  ``x = u + (W − 1)/2 + δ``, ``δ = N//2 − (N − 1)/2``;
* the detector laws of ``ptyfast.model.detector``'s table (QE, gain, dead time, PSF as
  SciPy's ``gaussian_filter(mode='constant')``, beamstop, saturation).

The extremes: pattern sizes 2, 3, odd, 512 and 1024; probes touching the object's edge and
positions at ``.5``; doses from 1e-6 to 1e30 photons per pattern (float32 and float64
readings, counts above 2**24, saturation of uint32); zero objects and probes (named errors,
never NaN); amplitudes from 1e-30 to 1e19 (the dose sets the scale), 1e30 refused; phases of
1e4 rad; 20 probe modes with powers down to 1e-38; detectors with QE 1e-9, gains 1e-30 to
1e36, full wells at the dtype's limit, PSF wider than the pattern, a beamstop of radius N/2,
dead time equal to the exposure, all pixels bad; one scan position, repeated positions, the
margin's edges, and objects so wide that the float32 sampling coordinates lose integers
(the model now refuses them; the PtychoPINN-compatible path keeps the reference's float32
result, which is computed here).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.ndimage

import ptyfast
from ptyfast import Detector, diffsim, probes, scans
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.raw_data import RawData

F32 = np.float32


# --------------------------------------------------------------------------- references


def patch_f32(obj: np.ndarray, x: float, y: float, n: int) -> np.ndarray:
    """The documented bilinear patch, coordinates ``f32(i) + f32(x)`` rounded to float32,
    corners outside the object reading zero; values in complex128."""
    obj = np.asarray(obj, np.complex128)
    h, w = obj.shape
    idx = np.arange(n, dtype=np.float32)
    sx = (idx + F32(x)).astype(np.float32)
    sy = (idx + F32(y)).astype(np.float32)
    x0, y0 = np.floor(sx), np.floor(sy)
    wx = (sx - x0).astype(np.float64)
    wy = (sy - y0).astype(np.float64)
    c0 = x0.astype(np.int64) - n // 2
    r0 = y0.astype(np.int64) - n // 2
    out = np.zeros((n, n), np.complex128)
    for dr in (0, 1):
        for dc in (0, 1):
            rr = (r0 + dr)[:, None]
            cc = (c0 + dc)[None, :]
            weight = (wy if dr else 1 - wy)[:, None] * (wx if dc else 1 - wx)[None, :]
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            values = obj[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)]
            out += weight * np.where(inside, values, 0)
    return out


def far_field(probe: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """``|fftshift(fft2(probe · patch))|² / N²`` in float64 (no shift before the FFT)."""
    n = probe.shape[-1]
    exit_wave = np.asarray(probe, np.complex128) * patch
    return np.abs(np.fft.fftshift(np.fft.fft2(exit_wave))) ** 2 / n**2


def expected_photons(obj, modes, positions, photons) -> np.ndarray:
    """``λ_i = s² Σ_k far_field(P_k, patch_i)`` with ``s² = photons / mean_i energy_i``."""
    modes = np.asarray(modes).reshape(-1, *np.shape(modes)[-2:])
    n = modes.shape[-1]
    intensity = np.stack(
        [
            sum(far_field(m, patch_f32(obj, x, y, n)) for m in modes)
            for x, y in np.asarray(positions)
        ]
    )
    energies = np.stack(
        [
            sum(float(np.sum(np.abs(m * patch_f32(obj, x, y, n)) ** 2)) for m in modes)
            for x, y in np.asarray(positions)
        ]
    )
    return photons * intensity / energies.mean()


def placed(u, v, shape, n) -> np.ndarray:
    """README placement: ``(x, y) = (u + (W − 1)/2 + δ, v + (H − 1)/2 + δ)``."""
    h, w = shape
    d = n // 2 - (n - 1) / 2
    return np.column_stack(
        [np.asarray(u, float) + (w - 1) / 2 + d, np.asarray(v, float) + (h - 1) / 2 + d]
    )


def margin(shape, n) -> tuple[float, float, float, float]:
    """Relative ``(u_lo, u_hi, v_lo, v_hi)`` of the patches that touch the object's edges."""
    h, w = shape
    d = n // 2 - (n - 1) / 2
    cx, cy = (w - 1) / 2 + d, (h - 1) / 2 + d
    return n // 2 - cx, w - n + n // 2 - cx, n // 2 - cy, h - n + n // 2 - cy


def random_object(rng, h, w, phase=3.0) -> np.ndarray:
    amp = 0.5 + rng.random((h, w))
    return (amp * np.exp(1j * rng.uniform(-phase, phase, (h, w)))).astype(np.complex64)


def random_probe(rng, n) -> np.ndarray:
    return (rng.random((n, n)) + 1j * rng.random((n, n)) - 0.3).astype(np.complex64)


def exact(det: Detector | None = None) -> Detector:
    return det if det is not None else Detector(poisson=False, dtype="float64")


def simulate(obj, probe, u, v, photons=1e6, det=None, patches=False):
    e = ptyfast.Experiment(obj, probe, scans.custom(list(u), list(v)), exact(det), photons)
    return e, ptyfast.simulate(e, seed=0, patches=patches)


# --------------------------------------------------------------------------- pattern sizes


@pytest.mark.parametrize("n", [2, 3, 15, 16, 33, 512, pytest.param(1024, marks=pytest.mark.slow)])
def test_model_patterns_match_numpy_at_every_size_and_edge(n):
    rng = np.random.default_rng(n)
    shape = (n + 5, n + 6) if n < 512 else (n + 2, n + 3)
    obj = random_object(rng, *shape)
    probe = random_probe(rng, n)
    u_lo, u_hi, v_lo, v_hi = margin(shape, n)
    # The four corners of the margin (patches touching the edges), .5 and generic sub-pixels.
    u = [u_lo, u_hi, u_lo, u_hi, 0.5, 0.37]
    v = [v_lo, v_hi, v_hi, v_lo, -0.5, 0.5 * (v_lo + v_hi) - 0.81]
    if n >= 512:
        u, v = u[:2] + u[4:5], v[:2] + v[4:5]
    e, ds = simulate(obj, probe, u, v)
    np.testing.assert_array_equal(e.positions_true, placed(u, v, shape, n))
    lam = expected_photons(obj, probe, e.positions_true, 1e6)
    d = ds.diffraction
    assert np.isfinite(d).all()
    # float32 patches, products and FFTs against complex128: measured <= 2e-6 of the peak.
    np.testing.assert_allclose(d, lam, rtol=0, atol=2e-5 * lam.max())
    np.testing.assert_allclose(d.sum(axis=(1, 2)).mean(), 1e6, rtol=1e-5)
    # The zero frequency sits at [N//2, N//2] for a flat patch and a flat probe.
    flat = np.ones(shape, np.complex64)
    _, ds = simulate(flat, np.ones((n, n), np.complex64), [0.0], [0.0])
    assert np.unravel_index(np.argmax(ds.diffraction[0]), (n, n)) == (n // 2, n // 2)
    assert ds.diffraction[0, n // 2, n // 2] == pytest.approx(1e6, rel=1e-5)


@pytest.mark.parametrize("n, b", [(2, 4), (3, 4), (15, 4), (33, 2), (512, 2), (1024, 1)])
def test_illuminate_and_diffract_matches_numpy_at_every_size(n, b):
    rng = np.random.default_rng(100 + n)
    yi = (0.5 + rng.random((b, n, n, 1))).astype(np.float32)
    yp = rng.uniform(-3, 3, (b, n, n, 1)).astype(np.float32)
    probe = random_probe(rng, n)
    X, Y_I, _, s = diffsim.illuminate_and_diffract(
        yi, yp, probe, nphotons=1e6, gridsize=1, poisson=False
    )
    o = yi[..., 0].astype(np.float64) * np.exp(1j * yp[..., 0].astype(np.float64))
    amp = np.sqrt(np.stack([far_field(probe, p) for p in o]))
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X[..., 0], amp, rtol=0, atol=1e-6 * amp.max())
    np.testing.assert_allclose(Y_I[..., 0], np.abs(o * probe), rtol=2e-6, atol=1e-7)
    energy = (np.abs(o * probe) ** 2).sum(axis=(1, 2))
    assert float(s) == pytest.approx(np.sqrt(1e6 / energy.mean()), rel=1e-6)


@pytest.mark.parametrize("n, g", [(2, 2), (3, 2), (15, 3)])
def test_illuminate_and_diffract_channels_with_a_zero_pattern(n, g):
    rng = np.random.default_rng(150 + n)
    c = g * g
    yi = (0.5 + rng.random((2 * c, n, n, 1))).astype(np.float32)
    yp = rng.uniform(-3, 3, (2 * c, n, n, 1)).astype(np.float32)
    yi[1] = 0  # one dark patch: a zero pattern, not NaN, and no share of the scale
    probe = random_probe(rng, n)
    X, _, _, s = diffsim.illuminate_and_diffract(
        yi, yp, probe, nphotons=1e6, gridsize=g, poisson=False
    )
    assert X.shape == (2, n, n, c)
    o = yi[..., 0].astype(np.float64) * np.exp(1j * yp[..., 0].astype(np.float64))
    amp = np.sqrt(np.stack([far_field(probe, p) for p in o]))
    flat = np.moveaxis(X, -1, 1).reshape(2 * c, n, n)  # flat pattern b*C + c
    np.testing.assert_allclose(flat, amp, rtol=0, atol=1e-6 * amp.max())
    assert not flat[1].any()
    energy = (np.abs(o * probe) ** 2).sum(axis=(1, 2))
    assert float(s) == pytest.approx(np.sqrt(1e6 / energy.mean()), rel=1e-6)


@pytest.mark.parametrize("n", [2, 3, 15, 33])
def test_from_simulation_matches_numpy_at_edges_half_pixels_and_outside(n):
    rng = np.random.default_rng(200 + n)
    h = w = 2 * n + 3
    obj = random_object(rng, h, w)
    probe = random_probe(rng, n)
    # On the edges, at .5, straddling the border, beyond the last pixel, fully outside.
    x = np.array([n // 2, w - n + n // 2, n // 2 + 0.5, 0.0, w - 1.0, w / 2 + 0.25, -n - 3.0])
    y = np.array([n // 2, h - n + n // 2, n // 2 + 0.5, 0.0, h - 1.0, h / 2 - 0.75, 3.0])
    raw = RawData.from_simulation(x, y, probe, obj, nphotons=1e6, poisson=False, seed=0)
    patches = np.stack([patch_f32(obj, a, b, n) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(raw.Y[..., 0], patches, rtol=0, atol=1e-6)
    amp = np.sqrt(np.stack([far_field(probe, p) for p in patches]))
    assert np.isfinite(raw.diff3d).all()
    np.testing.assert_allclose(raw.diff3d, amp, rtol=0, atol=1e-6 * amp.max())
    assert not raw.diff3d[-1].any()  # fully outside: a zero pattern, not NaN
    energy = (amp**2).sum(axis=(1, 2))
    assert raw.intensity_scale == pytest.approx(np.sqrt(1e6 / energy.mean()), rel=1e-6)
    # An exact .5 position weighs both neighbours by one half.
    half = patch_f32(obj, n // 2 + 0.5, n // 2 + 0.5, n)
    r = c = n // 2
    corner = obj[r : r + 2, c : c + 2].astype(np.complex128).mean()
    assert half[n // 2, n // 2] == pytest.approx(corner, abs=1e-7)


@pytest.mark.parametrize("n", [2, 3, 15, 16])
def test_generate_simulated_data_noise_free_matches_numpy(n):
    rng = np.random.default_rng(300 + n)
    obj = random_object(rng, 3 * n, 3 * n + 1)
    probe = random_probe(rng, n)
    cfg = TrainingConfig(model=ModelConfig(N=n, gridsize=1), n_groups=5, nphotons=1e5)
    raw = generate_simulated_data(cfg, obj, probe, n / 2, False, seed=3, poisson=False)
    x, y = raw.xcoords, raw.ycoords
    assert (x >= n / 2).all() and (x < 3 * n + 1 - n / 2).all()
    assert (y >= n / 2).all() and (y < 3 * n - n / 2).all()
    patches = np.stack([patch_f32(obj, a, b, n) for a, b in zip(x, y, strict=True)])
    amp = np.sqrt(np.stack([far_field(probe, p) for p in patches]))
    np.testing.assert_allclose(raw.diff3d, amp, rtol=0, atol=1e-6 * amp.max())
    energy = (amp**2).sum(axis=(1, 2))
    assert raw.intensity_scale == pytest.approx(np.sqrt(1e5 / energy.mean()), rel=1e-6)


# --------------------------------------------------------------------------- photon counts


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    obj = random_object(rng, 40, 40)
    probe = probes.gaussian(16, 3.0)
    u, v = [0.0, 1.5, -2.25], [0.0, -1.0, 0.5]
    lam1 = expected_photons(obj, probe, placed(u, v, obj.shape, 16), 1.0)
    return obj, probe, u, v, lam1


@pytest.mark.parametrize("photons", [1e-6, 1.0, 1e12, 1e16, 1e30])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_noise_free_readings_follow_the_dose_at_extreme_doses(scene, photons, dtype):
    obj, probe, u, v, lam1 = scene
    _, ds = simulate(obj, probe, u, v, photons, Detector(poisson=False, dtype=dtype))
    d = ds.diffraction.astype(np.float64)
    assert ds.diffraction.dtype == np.dtype(dtype) and np.isfinite(d).all()
    np.testing.assert_allclose(d, photons * lam1, rtol=0, atol=2e-6 * photons * lam1.max())
    assert d.sum(axis=(1, 2)).mean() == pytest.approx(photons, rel=1e-5)


def test_poisson_at_tiny_doses_gives_integers_and_mostly_zeros(scene):
    obj, probe, u, v, _ = scene
    _, ds = simulate(obj, probe, u, v, 1e-6, Detector())
    assert not ds.diffraction.any()  # P(any count) ~ 3e-6
    _, ds = simulate(obj, probe, u * 30, v * 30, 1.0, Detector(dtype="float64"))
    d = ds.diffraction
    assert np.isfinite(d).all() and (d >= 0).all() and np.array_equal(d, np.floor(d))
    assert (d == 0).mean() > 0.99 and 0 < d.sum() < 400  # 90 patterns of ~1 photon
    # The compatible path: no 0/0 in sqrt(counts)/s at 1e-6 photons, s stays finite.
    rng = np.random.default_rng(8)
    yi = (0.5 + rng.random((4, 8, 8, 1))).astype(np.float32)
    yp = rng.uniform(-3, 3, (4, 8, 8, 1)).astype(np.float32)
    X, _, _, s = diffsim.illuminate_and_diffract(
        yi, yp, np.ones((8, 8), np.complex64), nphotons=1e-6, gridsize=1, seed=1
    )
    assert np.isfinite(X).all() and not X.any()
    energy = (yi[..., 0].astype(np.float64) ** 2).sum(axis=(1, 2)).mean()
    assert float(s) == pytest.approx(np.sqrt(1e-6 / energy), rel=1e-6)


@pytest.mark.parametrize("photons", [1e12, 1e16, 1e30])
def test_poisson_at_huge_doses_stays_within_shot_noise(scene, photons):
    obj, probe, u, v, lam1 = scene
    lam = photons * lam1
    for dtype in ("float64", "float32"):
        _, ds = simulate(obj, probe, u, v, photons, Detector(dtype=dtype))
        d = ds.diffraction.astype(np.float64)
        assert np.isfinite(d).all()
        # Counts far above 2**24: six standard deviations, plus the float32 rounding of λ in
        # the kernel (the noise-free test's 2e-6 of the peak) and of float32 readings.
        tol = 6 * np.sqrt(lam) + 2e-6 * lam + 2e-6 * lam.max()
        assert (np.abs(d - lam) <= tol).all()
        assert d.max() > 2**24
        z = (d - lam) / np.sqrt(lam)
        if dtype == "float64" and photons <= 1e12:
            # Beyond ~1e13 photons per pixel the float32 rounding of λ (6e-8 relative) is as
            # large as the shot noise (1/sqrt(λ)), so only here is the law itself testable.
            assert np.array_equal(d, np.floor(d))
            assert abs(z.mean()) < 0.3 and 0.8 < z.std() < 1.2
    # uint32 readings saturate at 2**32 − 1 where the counts exceed it, never wrap.
    _, ds = simulate(obj, probe, u, v, photons, Detector(dtype="uint32"))
    big = lam > 2**32 + 6 * np.sqrt(lam)
    assert big.any() and (ds.diffraction[big] == 2**32 - 1).all()


def test_zero_energy_is_a_named_error_never_nan():
    n = 8
    obj = np.ones((24, 24), np.complex64)
    probe = np.ones((n, n), np.complex64)
    with pytest.raises(ValueError, match="object must not be zero under every scan position"):
        simulate(np.zeros((24, 24), np.complex64), probe, [0.0], [0.0])
    with pytest.raises(ValueError, match="probe must not be zero everywhere"):
        simulate(obj, np.zeros((n, n), np.complex64), [0.0], [0.0])
    # Non-zero object, but zero under every scan position.
    lit = np.zeros((24, 24), np.complex64)
    lit[0, 0] = 1
    with pytest.raises(ValueError, match="object must not be zero under every scan position"):
        simulate(lit, probe, [0.0, 1.0], [0.0, 0.0])
    # Zero under one position only: that pattern is zero, the others carry the dose.
    lit = np.ones((24, 24), np.complex64)
    lit[:12, :12] = 0
    e, ds = simulate(lit, probe, [-7.5, 4.0], [-7.5, 4.0])
    assert not ds.diffraction[0].any() and np.isfinite(ds.diffraction).all()
    assert ds.diffraction[1].sum() == pytest.approx(2e6, rel=1e-5)
    # The compatible paths refuse a zero illuminated energy before any FFT, naming the
    # arguments (the message named none of them).
    zeros = np.zeros((2, n, n, 1), np.float32)
    with pytest.raises(ValueError, match=r"Y_I times \|probe\| has zero energy"):
        diffsim.illuminate_and_diffract(zeros, zeros, probe, nphotons=1e6, gridsize=1)
    ones = np.ones_like(zeros)
    with pytest.raises(ValueError, match=r"Y_I times \|probe\| has zero energy"):
        diffsim.illuminate_and_diffract(ones, zeros, 0 * probe, nphotons=1e6, gridsize=1)
    # Explicitly scaled, zero patches are a documented result: zero patterns.
    X, *_ = diffsim.illuminate_and_diffract(
        zeros, zeros, probe, intensity_scale=2.0, gridsize=1, poisson=True, seed=0
    )
    assert np.isfinite(X).all() and not X.any()
    grid = dict(N=n, gridsize=1, nphotons=1e6, poisson=False, seed=1, dict_fmt=True)
    with pytest.raises(ValueError, match="probe has zero energy on every grid patch of YY_I"):
        diffsim.mk_simdata(1, 24, 0 * probe, 8, YY_I=np.ones((1, 24, 24, 1), np.float32), **grid)
    named = "objectGuess under probeGuess has zero energy at every one of the 2 positions"
    with pytest.raises(ValueError, match=named):
        RawData.from_simulation(
            np.array([-100.0, 200.0]), np.zeros(2), probe, obj, nphotons=1e6, seed=0
        )
    with pytest.raises(ValueError, match=named):
        RawData.from_simulation(np.array([9.0, 12.0]), np.full(2, 9.0), 0 * probe, obj, seed=0)
    cfg = TrainingConfig(model=ModelConfig(N=n, gridsize=1), n_groups=3, nphotons=1e5)
    with pytest.raises(ValueError, match="objectGuess under probeGuess has zero energy"):
        generate_simulated_data(cfg, 0 * obj, probe, 4.0, False, seed=1)


@pytest.mark.parametrize("amp", [1e-30, 1e-15, 1e15, 1e19])
def test_object_and_probe_amplitudes_do_not_change_the_photons(scene, amp):
    obj, probe, u, v, lam1 = scene
    scaled = (obj.astype(np.complex128) * amp).astype(np.complex64)
    _, ds = simulate(scaled, probe, u, v, 1e6)
    assert np.isfinite(ds.diffraction).all()
    np.testing.assert_allclose(ds.diffraction, 1e6 * lam1, rtol=0, atol=2e-6 * 1e6 * lam1.max())
    weak = (probe.astype(np.complex128) * amp).astype(np.complex64)
    _, ds = simulate(obj, weak, u, v, 1e6)
    np.testing.assert_allclose(ds.diffraction, 1e6 * lam1, rtol=0, atol=2e-6 * 1e6 * lam1.max())


def test_amplitudes_beyond_float32_squares_are_refused(scene):
    obj, probe, u, v, _ = scene
    with pytest.raises(ValueError, match=r"obj and probe values must keep \|probe \* obj\|\*\*2"):
        simulate((obj * F32(1e30)).astype(np.complex64), probe, u, v)
    yi = np.full((1, 4, 4, 1), 1e30, np.float32)
    # X = A / s is A's own scale: 1e30 amplitudes with nphotons = 1e6 fit float32.
    X, *_ = diffsim.illuminate_and_diffract(
        yi,
        np.zeros_like(yi),
        np.ones((4, 4), np.complex64),
        nphotons=1e6,
        gridsize=1,
        poisson=False,
    )
    assert X[0, 2, 2, 0] == pytest.approx(4e30, rel=1e-6) and np.isfinite(X).all()


def test_large_phases_match_numpy(scene):
    _, probe, u, v, _ = scene
    rng = np.random.default_rng(9)
    obj = np.exp(1j * 1e4 * rng.random((40, 40))).astype(np.complex64)
    _, ds = simulate(obj, probe, u, v, 1e6)
    lam = expected_photons(obj, probe, placed(u, v, obj.shape, 16), 1e6)
    np.testing.assert_allclose(ds.diffraction, lam, rtol=0, atol=2e-6 * lam.max())


# --------------------------------------------------------------------------- probe modes


@pytest.mark.parametrize("kw", [{"decay": 0.01}, {"decay": 0.05, "method": "random", "seed": 3}])
def test_twenty_modes_with_tiny_powers_sum_incoherently(kw):
    n = 24
    m = probes.modes(probes.gaussian(n, 4.0), 20, **kw)
    power = (np.abs(m.astype(np.complex128)) ** 2).sum(axis=(1, 2))
    q = kw["decay"]
    w = q ** np.arange(20) / np.sum(q ** np.arange(20))
    np.testing.assert_allclose(power, w, rtol=1e-5)  # down to 1e-38 (decay 0.01)
    assert power.sum() == pytest.approx(1.0, abs=1e-6) and np.isfinite(m).all()
    rng = np.random.default_rng(10)
    obj = random_object(rng, 60, 60)
    u, v = [0.0, 1.5], [0.25, -2.0]
    _, ds = simulate(obj, m, u, v, 1e8)
    lam = expected_photons(obj, m, placed(u, v, obj.shape, n), 1e8)
    np.testing.assert_allclose(ds.diffraction, lam, rtol=0, atol=2e-6 * lam.max())


def test_mode_stacks_must_carry_unit_total_power():
    m = probes.modes(probes.gaussian(16, 3.0), 3)
    obj = np.ones((32, 32), np.complex64)
    simulate(obj, (m * F32(np.sqrt(1 + 5e-5))).astype(np.complex64), [0.0], [0.0])
    with pytest.raises(ValueError, match="probe modes must have unit total intensity"):
        simulate(obj, (m * F32(np.sqrt(1 + 2e-4))).astype(np.complex64), [0.0], [0.0])


# --------------------------------------------------------------------------- detector


def test_qe_and_gain_at_extremes_follow_the_affine_law(scene):
    obj, probe, u, v, lam1 = scene
    lam = 1e6 * lam1
    for det, expect in [
        (Detector(poisson=False, dtype="float64", qe=1e-9), 1e-9 * lam),
        (Detector(poisson=False, dtype="float64", gain=1e-30), 1e-30 * lam),
        (Detector(poisson=False, dtype="float64", gain=1e30), 1e30 * lam),
    ]:
        _, ds = simulate(obj, probe, u, v, 1e6, det)
        np.testing.assert_allclose(ds.diffraction, expect, rtol=0, atol=2e-6 * expect.max())
    # Float32 readings beyond float32.max read float32.max, never inf.
    _, ds = simulate(obj, probe, u, v, 1e6, Detector(poisson=False, gain=1e36))
    f32max = np.finfo(np.float32).max
    over = 1e36 * lam > f32max
    assert over.any() and (~over).any() and np.isfinite(ds.diffraction).all()
    assert (ds.diffraction[over] == f32max).all()
    np.testing.assert_allclose(ds.diffraction[~over], 1e36 * lam[~over], rtol=0, atol=2e-6 * f32max)


def test_full_well_at_the_dtype_limit(scene):
    obj, probe, u, v, lam1 = scene
    lam = 1e12 * lam1
    det = Detector(poisson=False, dtype="uint32", full_well=float(2**32 - 1))
    _, ds = simulate(obj, probe, u, v, 1e12, det)
    expect = np.minimum(np.round(lam), 2**32 - 1)
    assert ((lam > 2**32) & (ds.diffraction == 2**32 - 1)).any()
    small = lam < 2**32 - 1e5
    np.testing.assert_allclose(ds.diffraction[small], expect[small], rtol=0, atol=2e-6 * lam.max())
    with pytest.raises(ValueError, match="dtype 'uint32' cannot hold full_well"):
        Detector(dtype="uint32", full_well=float(2**32))


@pytest.mark.parametrize("sigma", [16.0, 40.0])
def test_psf_wider_than_the_pattern_is_scipys_constant_mode_filter(scene, sigma):
    obj, probe, u, v, lam1 = scene
    lam = 1e6 * lam1
    _, ds = simulate(
        obj, probe, u, v, 1e6, Detector(poisson=False, dtype="float64", psf_sigma_px=sigma)
    )
    radius = np.floor(4 * sigma + 0.5)
    expect = np.stack(
        [
            scipy.ndimage.gaussian_filter(p, sigma, mode="constant", truncate=radius / sigma)
            for p in lam
        ]
    )
    np.testing.assert_allclose(ds.diffraction, expect, rtol=1e-6)
    assert ds.diffraction.sum() < lam.sum()  # photons spread off the pattern are lost


def test_beamstop_of_radius_half_n_and_beyond(scene):
    obj, probe, u, v, lam1 = scene
    n = 16
    e, ds = simulate(
        obj, probe, u, v, 1e6, Detector(poisson=False, dtype="float64", beamstop_radius_px=n / 2)
    )
    rr, cc = np.mgrid[:n, :n]
    stopped = (rr - n // 2) ** 2 + (cc - n // 2) ** 2 < (n / 2) ** 2
    np.testing.assert_array_equal(e.mask, ~stopped)
    assert not ds.diffraction[:, stopped].any()
    lam = 1e6 * lam1
    np.testing.assert_allclose(
        ds.diffraction[:, ~stopped], lam[:, ~stopped], rtol=0, atol=2e-6 * lam.max()
    )
    with pytest.raises(ValueError, match="beamstop_radius_px must be <= N/2 = 8"):
        simulate(obj, probe, u, v, 1e6, Detector(beamstop_radius_px=n / 2 + 0.1))


@pytest.mark.parametrize("tau", [1.0, 1.0 - 1e-12, 1e6])
def test_dead_time_near_and_beyond_the_exposure(scene, tau):
    obj, probe, u, v, lam1 = scene
    lam = 0.5 * 1e6 * lam1
    det = Detector(poisson=False, dtype="float64", qe=0.5, dead_time_s=tau, exposure_s=1.0)
    _, ds = simulate(obj, probe, u, v, 1e6, det)
    expect = lam / (1 + lam * tau)
    np.testing.assert_allclose(ds.diffraction, expect, rtol=0, atol=2e-6 * expect.max())
    assert (ds.diffraction < 1.0 / tau).all()  # a counter's rate never passes 1/τ


def test_all_pixels_bad_is_a_named_error(scene):
    obj, probe, u, v, _ = scene
    n = 16
    for det in [
        Detector(dead_fraction=1.0, bad_pixel_seed=1),
        Detector(dead_pixels=np.ones((n, n), bool)),
        Detector(hot_fraction=1.0, bad_pixel_seed=1, dtype="uint16"),
        Detector(dead_fraction=0.5, hot_fraction=0.5, bad_pixel_seed=1, dtype="uint16"),
    ]:
        with pytest.raises(ValueError, match="must keep at least one valid pixel"):
            simulate(obj, probe, u, v, 1e6, det)


# --------------------------------------------------------------------------- scans


def test_one_position_and_repeated_positions(scene):
    obj, probe, _, _, _ = scene
    for scan in (scans.raster(1, 1, 5.0), scans.fermat_spiral(1, 3.0)):
        e = ptyfast.Experiment(obj, probe, scan, exact(), 1e6)
        ds = ptyfast.simulate(e, seed=0)
        lam = expected_photons(obj, probe, e.positions_true, 1e6)
        np.testing.assert_array_equal(e.positions_true, placed([0.0], [0.0], obj.shape, 16))
        np.testing.assert_allclose(ds.diffraction, lam, rtol=0, atol=2e-6 * lam.max())
        assert ds.diffraction[0].sum() == pytest.approx(1e6, rel=1e-5)
    _, ds = simulate(obj, probe, [0.3, 0.3], [-0.2, -0.2], 1e6)
    np.testing.assert_array_equal(ds.diffraction[0], ds.diffraction[1])
    assert ds.diffraction[0].sum() == pytest.approx(1e6, rel=1e-5)


@pytest.mark.parametrize("n, shape", [(16, (40, 40)), (15, (40, 41)), (2, (5, 6)), (3, (3, 3))])
def test_margin_edges_are_allowed_and_one_micro_pixel_beyond_is_refused(n, shape):
    rng = np.random.default_rng(11)
    obj = random_object(rng, *shape)
    probe = random_probe(rng, n)
    u_lo, u_hi, v_lo, v_hi = margin(shape, n)
    u, v = [u_lo, u_hi, u_lo, u_hi], [v_lo, v_hi, v_hi, v_lo]
    e, ds = simulate(obj, probe, u, v, 1e6, patches=True)
    x, y = e.positions_true.T
    assert (x.min(), x.max(), y.min(), y.max()) == (
        n // 2,
        shape[1] - n + n // 2,
        n // 2,
        shape[0] - n + n // 2,
    )
    # Patches at the edges copy whole pixels: the object's corner blocks.
    h, w = shape
    np.testing.assert_array_equal(ds.patches[0], obj[:n, :n])
    np.testing.assert_array_equal(ds.patches[1], obj[h - n :, w - n :])
    lam = expected_photons(obj, probe, e.positions_true, 1e6)
    np.testing.assert_allclose(ds.diffraction, lam, rtol=0, atol=2e-6 * lam.max())
    with pytest.raises(ValueError, match="scan leaves the object"):
        simulate(obj, probe, [u_hi + 1e-6], [v_lo], 1e6)
    with pytest.raises(ValueError, match="scan leaves the object"):
        simulate(obj, probe, [u_lo], [v_lo - 1e-6], 1e6)


def test_half_pixel_positions_average_the_two_neighbours():
    rng = np.random.default_rng(12)
    obj = random_object(rng, 24, 25)
    n = 8
    # W = 25, H = 24, N = 8: cx = 12.5, cy = 12, so these land on (12.5, 12), (13, 11.5), (12.5,
    # 12.5).
    u, v = [0.0, 0.5, 0.0], [0.0, -0.5, 0.5]
    e, ds = simulate(obj, np.ones((n, n), np.complex64), u, v, patches=True)
    np.testing.assert_array_equal(e.positions_true, [[12.5, 12.0], [13.0, 11.5], [12.5, 12.5]])
    o = obj.astype(np.complex128)

    def block(x0: int, y0: int) -> np.ndarray:
        return o[y0 - n // 2 : y0 + n // 2, x0 - n // 2 : x0 + n // 2]

    # A .5 coordinate weighs the two neighbours by exactly one half each.
    np.testing.assert_allclose(ds.patches[0], (block(12, 12) + block(13, 12)) / 2, atol=2e-7)
    np.testing.assert_allclose(ds.patches[1], (block(13, 11) + block(13, 12)) / 2, atol=2e-7)
    four = (block(12, 12) + block(13, 12) + block(12, 13) + block(13, 13)) / 4
    np.testing.assert_allclose(ds.patches[2], four, atol=2e-7)


@pytest.mark.slow
def test_wide_objects_and_the_float32_sampling_coordinate():
    # The compatible path keeps the reference's float32 coordinates: sub-pixel positions near
    # 2**22 are rounded to float32 before the bilinear weights are formed.
    w = 2**22
    obj = np.ones((4, w), np.complex64)
    obj[:, ::2] = 2
    obj[:, ::3] += 1j
    x = np.array([w - 3.0, w - 3.5, w - 2.75, 1e6 + 0.5, 3e6 + 0.3, 2**21 + 0.75])
    probe = np.ones((4, 4), np.complex64)
    raw = RawData.from_simulation(
        x, np.full(x.size, 2.0), probe, obj, nphotons=1e6, poisson=False, seed=0
    )
    for i, xi in enumerate(x):
        np.testing.assert_allclose(raw.Y[i, ..., 0], patch_f32(obj, xi, 2.0, 4), rtol=0, atol=1e-6)
    del raw, obj
    # The model: at a side of 2**24 the last integer position still copies pixels exactly...
    n = 2
    side = 2**24 - n // 2 + 1
    obj = np.zeros((n, side), np.complex64)
    obj[:, -3:] = [1, 2, 3]
    cx = (side - 1) / 2 + 0.5
    e, ds = simulate(
        obj, np.ones((n, n), np.complex64), [side - 1 - cx, side - 2 - cx], [0.0, 0.0], patches=True
    )
    np.testing.assert_array_equal(ds.patches[0], obj[:, -2:])
    np.testing.assert_array_equal(ds.patches[1], obj[:, -3:-1])
    del e, ds
    # ...one more column and float32 could no longer tell columns apart: refused, naming it.
    wider = np.zeros((n, side + 1), np.complex64)
    del obj
    with pytest.raises(
        ValueError, match=r"object must have sides of at most 2\*\*24 - N//2 \+ 1 = 16777216"
    ):
        ptyfast.Experiment(
            wider, np.ones((n, n), np.complex64), scans.custom([0.0], [0.0]), None, 1e6
        )


def test_psf_narrower_than_float64_squares_is_refused_not_nan(scene):
    obj, probe, u, v, lam1 = scene
    # Down to where σ² is still a positive float64, a vanishing PSF leaves λ as it is.
    for sigma in (1e-3, 1e-100, 1.6e-162):
        det = Detector(poisson=False, dtype="float64", psf_sigma_px=sigma)
        _, ds = simulate(obj, probe, u, v, 1e6, det)
        np.testing.assert_allclose(ds.diffraction, 1e6 * lam1, rtol=0, atol=2e-6 * 1e6 * lam1.max())
    # Below, exp(−d²/2σ²) was 0/0 at the centre: every reading NaN, clamped to float max.
    for sigma in (1e-200, 5e-324):
        with pytest.raises(ValueError, match="psf_sigma_px must be 0 or at least 1.6e-162"):
            Detector(psf_sigma_px=sigma)
        with pytest.raises(ValueError, match="psf_sigma_px must be 0 or at least 1.6e-162"):
            ptyfast._kernels.detect(
                np.ones((1, 4, 4)), detector={"psf_sigma_px": sigma, "poisson": False}, seed=0
            )


def test_doses_beyond_float32_are_refused_naming_the_dose(scene):
    obj, probe, u, v, _ = scene
    with pytest.raises(ValueError, match=r"photons = 1e\+38 would overflow the float32 far field"):
        simulate(obj, probe, u, v, 1e38)
    with pytest.raises(ValueError, match=r"photons = 1e-300 gives an intensity scale"):
        simulate(obj, probe, u, v, 1e-300)
    yi = np.ones((2, 8, 8, 1), np.float32)
    for nph in (1e300, 1e-300):
        with pytest.raises(ValueError, match=re.escape(f"nphotons = {nph!r}")):
            diffsim.illuminate_and_diffract(
                yi, np.zeros_like(yi), np.ones((8, 8), np.complex64), nphotons=nph, gridsize=1
            )


def test_compatible_poisson_beyond_2_63_counts_per_pixel():
    # 1e30 photons on 64 pixels: ~1.6e28 counts per pixel, beyond int64; (s·X)² are the counts.
    rng = np.random.default_rng(13)
    yi = (0.5 + rng.random((3, 8, 8, 1))).astype(np.float32)
    yp = rng.uniform(-3, 3, (3, 8, 8, 1)).astype(np.float32)
    probe = np.ones((8, 8), np.complex64)
    X, _, _, s = diffsim.illuminate_and_diffract(
        yi, yp, probe, nphotons=1e30, gridsize=1, poisson=True, seed=4
    )
    o = yi[..., 0].astype(np.float64) * np.exp(1j * yp[..., 0].astype(np.float64))
    lam = float(s) ** 2 * np.stack([far_field(probe, p) for p in o])
    counts = (float(s) * X[..., 0].astype(np.float64)) ** 2
    assert np.isfinite(counts).all() and counts.max() > 2.0**63
    # Shot noise (1e14) is far below the float32 rounding of the amplitudes (~1e-7 relative).
    np.testing.assert_allclose(counts, lam, rtol=0, atol=1e-6 * lam.max())
    assert counts.sum(axis=(1, 2)).mean() == pytest.approx(1e30, rel=1e-5)


def test_a_mode_stack_within_the_tolerance_still_delivers_the_dose():
    m = probes.modes(probes.gaussian(16, 3.0), 3)
    off = (m * F32(np.sqrt(1 + 5e-5))).astype(np.complex64)
    rng = np.random.default_rng(14)
    obj = random_object(rng, 32, 32)
    u, v = [0.0, 2.5], [0.0, -1.5]
    _, ds = simulate(obj, off, u, v, 1e6)
    lam = expected_photons(obj, off, placed(u, v, obj.shape, 16), 1e6)
    np.testing.assert_allclose(ds.diffraction, lam, rtol=0, atol=2e-6 * lam.max())
    assert ds.diffraction.sum(axis=(1, 2)).mean() == pytest.approx(1e6, rel=1e-5)


def test_scan_errors_far_beyond_the_object_are_refused_not_wrapped():
    obj = np.ones((64, 64), np.complex64)
    probe = probes.gaussian(16, 3.0)
    for scan in (
        scans.raster(2, 2, 3.0).jitter(1e300, seed=1),
        scans.raster(2, 2, 3.0).drift(random_walk_px=1e308, seed=1),
        scans.custom([1e300], [0.0]),
    ):
        with pytest.raises(ValueError, match="scan leaves the object"):
            ptyfast.Experiment(obj, probe, scan, None, 1e6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hot_pixels_at_a_full_well_of_the_dtype_maximum(scene, dtype):
    obj, probe, u, v, lam1 = scene
    top = float(np.finfo(dtype).max)
    det = Detector(poisson=False, dtype=dtype, full_well=top, hot_fraction=0.25, bad_pixel_seed=3)
    e, ds = simulate(obj, probe, u, v, 1e6, det)
    # The documented draw: hot where dead_fraction <= u < dead_fraction + hot_fraction.
    hot = np.random.Generator(np.random.PCG64(3)).random((16, 16)) < 0.25
    np.testing.assert_array_equal(e.mask, ~hot)
    assert (ds.diffraction[:, hot] == np.dtype(dtype).type(top)).all()
    lam = 1e6 * lam1
    good = ds.diffraction[:, ~hot].astype(np.float64)
    np.testing.assert_allclose(good, lam[:, ~hot], rtol=0, atol=2e-6 * lam.max())

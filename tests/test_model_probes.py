"""ptyfast.probes: each builder against an independent computation.

Measured agreement (this file's sizes, float64 references, complex64 results):

* zone-plate focus vs the analytic Airy pattern (and the annulus formula): 2e-8 relative L2;
  first zero at 1.2197·λf/D to 0.1 % (1.22 rounded);
* ``fresnel_zone_plate(defocus_m=d)`` (Hankel quadrature with a quadratic pupil phase) vs
  ``propagate(fresnel_zone_plate(0), d)`` (band-limited angular spectrum): 3 % in the same
  N × N window (the focus' Airy tails outside the window are missing from the propagated
  field) and 2e-6 when the focus is computed on a 4× larger window and cropped;
* Gaussian beam width after ``propagate`` vs ``w0·sqrt(1 + (z/zR)²)``: 4e-8 relative; the
  whole field (curvature and Gouy phase) 7e-8 relative L2; energy conserved to 5e-8;
* Zernike polynomials orthonormal on the unit disk to 1e-13; zernike focus first zero at
  1.22/aperture pixels to 0.2 %; a Z4 term vs ``propagate`` by the equivalent distance 3e-3.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from scipy import special
from scipy.ndimage import gaussian_filter
from scipy.signal.windows import gaussian as gaussian_window

import ptyfast
import ptyfast.model.probes as probes_module
from ptyfast import Geometry, probes
from ptyfast.probe import get_default_probe


def geometry(N: int, k: int = 1) -> Geometry:
    """8 keV, 2 m, 75 µm pixels: Δx ≈ 32 nm at N = 64 (k: k× the window, same Δx)."""
    return Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6 / k, N=k * N)


def power(p) -> float:
    p = np.asarray(p, dtype=np.complex128)
    return float(np.sum(np.abs(p) ** 2))


def centred(N: int) -> np.ndarray:
    c = np.arange(N) - (N - 1) / 2
    return np.hypot(c[None, :], c[:, None])


# --------------------------------------------------------------------------- aliases


def test_module_aliases_are_one_module():
    import ptyfast.model.probes as model_probes
    import ptyfast.probes as alias
    from ptyfast.probes import disk

    assert ptyfast.probes is model_probes is alias
    assert disk is model_probes.disk


# --------------------------------------------------------------------------- simple shapes


def reference_disk(N: int, scale: float = 0.7) -> np.ndarray:
    """The default-probe recipe written out here (scipy window, mask, blur)."""
    w = gaussian_window(N, std=N / (scale * np.pi**2), sym=True)
    w = w / w.max()
    return gaussian_filter((np.outer(w, w) > 0.5).astype(float), 1) + 1e-9


@pytest.mark.parametrize("N", [16, 64, 65])
def test_disk_is_the_default_probe_normalised(N):
    raw = probes.disk_profile(N)
    assert np.array_equal(raw, reference_disk(N))
    assert np.array_equal(raw, get_default_probe(N, scale=0.7))
    p = probes.disk(N)
    assert p.dtype == np.complex64 and p.shape == (N, N)
    expected = (raw / math.sqrt(np.sum(raw**2))).astype(np.complex64)
    assert np.array_equal(p, expected)


def test_gaussian_formula_and_super_gaussian_family():
    N, sigma = 48, 5.5
    r = centred(N)
    ref = np.exp(-(r**2) / (2 * sigma**2))
    ref /= np.sqrt(np.sum(ref**2))
    np.testing.assert_allclose(probes.gaussian(N, sigma), ref, rtol=0, atol=1e-7)
    np.testing.assert_allclose(probes.super_gaussian(N, sigma, order=1), ref, atol=1e-7)
    sg = probes.super_gaussian(N, 10.0, order=6)
    ref6 = np.exp(-0.5 * (r / 10.0) ** 12)
    ref6 /= np.sqrt(np.sum(ref6**2))
    np.testing.assert_allclose(sg, ref6, atol=1e-7)
    # amplitude e^{-1/2} of the centre at r = R for every order
    N = 65
    for order in (1.0, 3.0, 8.0):
        p = np.abs(probes.super_gaussian(N, 10.0, order=order))
        assert p[32, 42] / p[32, 32] == pytest.approx(math.exp(-0.5), rel=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda N: probes.disk(N),
        lambda N: probes.gaussian(N, 3.0),
        lambda N: probes.super_gaussian(N, 5.0),
        lambda N: probes.zernike(N, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]),
        lambda N: probes.zernike(N, [0, 0, 0, 0.7], plane="pupil", aperture=0.5),
        lambda N: probes.fresnel_zone_plate(
            geometry(N), 100e-6, 2 * geometry(N).object_pixel_m, 0.3, 2e-3
        ),
    ],
)
@pytest.mark.parametrize("N", [32, 33])
def test_unit_power_and_centred_on_the_array_centre(make, N):
    """Radially symmetric probes are symmetric about (N − 1)/2 for even and odd N."""
    p = make(N)
    assert p.dtype == np.complex64 and p.shape == (N, N)
    assert power(p) == pytest.approx(1.0, abs=1e-6)
    a = np.abs(p.astype(np.complex128))
    np.testing.assert_allclose(a, a[::-1, ::-1], atol=1e-6 * a.max())
    np.testing.assert_allclose(a, a.T, atol=1e-6 * a.max())


def test_normalize_keeps_relative_mode_powers():
    stack = np.stack([np.ones((8, 8)), 2 * np.ones((8, 8))])
    out = probes.normalize(stack)
    assert out.dtype == np.complex64 and power(out) == pytest.approx(1.0, abs=1e-7)
    assert power(out[1]) / power(out[0]) == pytest.approx(4.0, rel=1e-6)


# --------------------------------------------------------------------------- zone plate


def airy_field(N: int, g: Geometry, D: float, f: float, eps: float = 0.0) -> np.ndarray:
    """Analytic focus of an annular lens: [2J1(v)/v − ε² 2J1(εv)/(εv)]·exp(iπr²/(λf))."""
    lam = g.wavelength_m
    r = centred(N) * g.object_pixel_m
    v = np.pi * D * r / (lam * f)
    safe = np.where(v == 0, 1.0, v)
    airy = np.where(v == 0, 1.0, 2 * special.j1(safe) / safe)
    if eps:
        inner = np.where(v == 0, 1.0, 2 * special.j1(eps * safe) / (eps * safe))
        airy = airy - eps**2 * inner
    field = airy * np.exp(1j * np.pi * r**2 / (lam * f))
    return field / np.sqrt(np.sum(np.abs(field) ** 2))


@pytest.mark.parametrize("eps", [0.0, 0.4])
def test_zone_plate_focus_is_the_airy_pattern(eps):
    N = 65
    g = geometry(N)
    D, dr = 160e-6, 5 * g.object_pixel_m
    f = D * dr / g.wavelength_m
    p = probes.fresnel_zone_plate(g, D, dr, central_stop=eps)
    ref = airy_field(N, g, D, f, eps)
    assert np.linalg.norm(p - ref) < 1e-6  # measured 2e-8 to 3e-8


def test_zone_plate_first_zero_at_the_airy_radius():
    N = 129
    g = geometry(N)
    D, dr = 160e-6, 20 * g.object_pixel_m
    lam = g.wavelength_m
    f = D * dr / lam
    p = probes.fresnel_zone_plate(g, D, dr)
    x = np.arange(65) * g.object_pixel_m
    row = p[64, 64:].astype(np.complex128) * np.exp(-1j * np.pi * x**2 / (lam * f))
    row = row.real / row[0].real  # real Airy amplitude once the curvature is removed
    k = int(np.nonzero(np.sign(row[:-1]) != np.sign(row[1:]))[0][0])
    r0 = x[k] + (x[k + 1] - x[k]) * row[k] / (row[k] - row[k + 1])
    exact = special.jn_zeros(1, 1)[0] / np.pi * lam * f / D  # 1.2197 λf/D
    assert r0 / exact == pytest.approx(1.0, abs=2e-3)
    assert r0 / (1.22 * lam * f / D) == pytest.approx(1.0, abs=3e-3)


def test_zone_plate_quadrature_converged(monkeypatch):
    g = geometry(64)
    args = (g, 160e-6, 2 * g.object_pixel_m, 0.3, 400e-6)
    p = probes.fresnel_zone_plate(*args)
    monkeypatch.setattr(probes_module, "_FZP_NODES", 24)
    assert np.abs(p - probes.fresnel_zone_plate(*args)).max() < 1e-6


def test_zone_plate_defocus_equals_propagated_focus():
    """Two independent computations: Hankel quadrature with the defocus in the pupil, and the
    band-limited angular spectrum of the focus."""
    N = 64
    g = geometry(N)
    D, dr, eps = 160e-6, 2 * g.object_pixel_m, 0.3
    f = D * dr / g.wavelength_m
    d = 16 * g.object_pixel_m * f / D  # geometric beam diameter 16 pixels
    a = probes.fresnel_zone_plate(g, D, dr, eps, defocus_m=d)
    same = probes.propagate(probes.fresnel_zone_plate(g, D, dr, eps), d, g).astype(complex)
    same /= np.linalg.norm(same)
    assert np.linalg.norm(a - same) < 0.06  # measured 3.4e-2: the focus' tails are cut
    big = geometry(N, 4)
    assert big.object_pixel_m == pytest.approx(g.object_pixel_m, rel=1e-12)
    wide = probes.propagate(probes.fresnel_zone_plate(big, D, dr, eps), d, big)
    crop = wide[96:160, 96:160].astype(complex)
    crop /= np.linalg.norm(crop)
    assert np.linalg.norm(a - crop) < 2e-5  # measured 2.3e-6
    # and downstream vs upstream differ (the sign of d matters)
    b = probes.fresnel_zone_plate(g, D, dr, eps, defocus_m=-d)
    assert np.linalg.norm(a - b) > 0.1


# --------------------------------------------------------------------------- propagation


def test_propagation_follows_the_gaussian_beam():
    N, sigma = 128, 4.0
    g = geometry(N)
    dx, lam = g.object_pixel_m, g.wavelength_m
    w0 = math.sqrt(2) * sigma * dx  # 1/e² intensity radius of |P| ∝ exp(−r²/2σ²)
    zr = math.pi * w0**2 / lam
    c = (np.arange(N) - (N - 1) / 2) * dx
    X, Y = np.meshgrid(c, c)
    p0 = probes.gaussian(N, sigma)
    for m in (0.5, 1.0, 2.0, 3.0):
        z = m * zr
        p = probes.propagate(p0, z, g).astype(np.complex128)
        intensity = np.abs(p) ** 2
        energy = intensity.sum()
        assert energy == pytest.approx(1.0, abs=1e-6)
        intensity /= energy
        wz = w0 * math.sqrt(1 + (z / zr) ** 2)
        wx = 2 * math.sqrt(np.sum(intensity * X**2))
        wy = 2 * math.sqrt(np.sum(intensity * Y**2))
        assert wx / wz == pytest.approx(1.0, abs=1e-6)  # measured 4e-8
        assert wy / wz == pytest.approx(1.0, abs=1e-6)
        # the whole field: amplitude, curvature 1/R(z) and Gouy phase
        R = z * (1 + (zr / z) ** 2)
        r2 = X**2 + Y**2
        ref = (w0 / wz) * np.exp(-r2 / wz**2 + 1j * (np.pi * r2 / (lam * R) - math.atan(z / zr)))
        ref /= np.linalg.norm(ref)
        assert np.linalg.norm(p / math.sqrt(energy) - ref) < 1e-6  # measured 7e-8


def test_propagation_energy_round_trip_and_stacks():
    N = 64
    g = geometry(N)
    p0 = probes.gaussian(N, 3.0)
    zr = math.pi * (math.sqrt(2) * 3.0 * g.object_pixel_m) ** 2 / g.wavelength_m
    fwd = probes.propagate(p0, 2 * zr, g)
    assert power(fwd) == pytest.approx(1.0, abs=1e-6)
    back = probes.propagate(fwd, -2 * zr, g)
    assert np.abs(back - p0).max() < 1e-6
    # a beam that leaves the window loses energy, never gains it
    far = probes.propagate(p0, 40 * zr, g)
    assert 0.05 < power(far) < 0.9
    # stacks: each mode as alone; d = 0 copies
    stack = np.stack([p0, probes.disk(N)])
    out = probes.propagate(stack, zr, g)
    assert out.shape == (2, N, N) and out.dtype == np.complex64
    assert np.array_equal(out[1], probes.propagate(stack[1], zr, g))
    assert np.array_equal(probes.propagate(stack, 0.0, g), stack.astype(np.complex64))


def test_astronomical_distances_keep_the_zero_frequency_only():
    # Beyond |d| ~ 1e154 windows the band limit's square overflows (an OverflowError before);
    # the band has long held only the zero frequency, so the result equals a far but finite
    # propagation's, and is finite.
    g = geometry(32)
    p0 = probes.gaussian(32, 3.0)
    far = probes.propagate(p0, 1e140, g)
    for d in (1e300, -1e300):
        out = probes.propagate(p0, d, g)
        assert np.isfinite(out.view(np.float32)).all()
        assert np.array_equal(out, far)
    # The zero frequency alone: a uniform field, the padded window's mean.
    mean = np.pad(p0.astype(np.complex128), 16).mean()
    assert np.allclose(far, mean, rtol=1e-5, atol=0) and 0 < power(far) < 0.01
    # Where 2π·d itself overflows, the transfer function cannot be formed: a ValueError.
    with pytest.raises(ValueError, match="distance_m is too large"):
        probes.propagate(p0, 1.7e308, g)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"energy_eV": 1e-300}, "wavelength_m = 1.2.*e\\+294 .* must be within"),
        ({"detector_pixel_m": 1e300}, "object_pixel_m = .*e-3.. .* must be within"),
        ({"distance_m": 1e-300}, "object_pixel_m = .* must be within"),
    ],
)
def test_geometry_refuses_lengths_float64_cannot_square(kw, match):
    # Before, propagation with such a geometry raised OverflowError or returned NaN.
    args = {"energy_eV": 8000.0, "distance_m": 2.0, "detector_pixel_m": 75e-6, "N": 32} | kw
    with pytest.raises(ValueError, match=match):
        Geometry(**args)


# --------------------------------------------------------------------------- Zernike

NOLL = {  # Noll (1976), Table 1: j -> (n, m), m < 0 for the sine terms
    1: (0, 0), 2: (1, 1), 3: (1, -1), 4: (2, 0), 5: (2, -2), 6: (2, 2), 7: (3, -1),
    8: (3, 1), 9: (3, -3), 10: (3, 3), 11: (4, 0), 12: (4, 2), 13: (4, -2), 14: (4, 4),
    15: (4, -4), 16: (5, 1), 17: (5, -1), 18: (5, 3), 19: (5, -3), 20: (5, 5), 21: (5, -5),
    22: (6, 0),
}  # fmt: skip


def test_noll_indices():
    assert {j: probes.noll_to_nm(j) for j in NOLL} == NOLL


def test_zernike_explicit_polynomials():
    rho = np.linspace(0, 1, 7)[:, None]
    th = np.linspace(0, 2 * np.pi, 5)[None, :]
    expect = {
        4: math.sqrt(3) * (2 * rho**2 - 1) + 0 * th,
        5: math.sqrt(6) * rho**2 * np.sin(2 * th),
        8: math.sqrt(8) * (3 * rho**3 - 2 * rho) * np.cos(th),
        11: math.sqrt(5) * (6 * rho**4 - 6 * rho**2 + 1) + 0 * th,
        12: math.sqrt(10) * (4 * rho**4 - 3 * rho**2) * np.cos(2 * th),
    }
    for j, ref in expect.items():
        np.testing.assert_allclose(probes.zernike_polynomial(j, rho, th), ref, atol=1e-12)


def test_zernike_orthonormal_on_the_unit_disk():
    """Gauss–Legendre in ρ (exact for these polynomials) and the trapezoid in θ."""
    x, w = np.polynomial.legendre.leggauss(20)
    rho, wr = (x + 1) / 2, w / 2
    th = np.arange(64) * 2 * np.pi / 64
    R, T = np.meshgrid(rho, th, indexing="ij")
    weight = (wr * rho)[:, None] * (2 * np.pi / 64) / np.pi
    Z = np.stack([probes.zernike_polynomial(j, R, T) for j in range(1, 23)])
    gram = np.einsum("aij,bij,ij->ab", Z, Z, weight)
    assert np.abs(gram - np.eye(22)).max() < 1e-12


def test_zernike_focus_is_the_airy_pattern():
    N, ap = 129, 0.1
    p = probes.zernike(N, [0.0], aperture=ap)
    row = p[64, 64:].astype(np.complex128)
    assert np.abs(row.imag).max() < 1e-6 * np.abs(row).max()
    row = row.real / row[0].real
    k = int(np.nonzero(np.sign(row[:-1]) != np.sign(row[1:]))[0][0])
    r0 = k + row[k] / (row[k] - row[k + 1])
    assert r0 * ap / 1.2197 == pytest.approx(1.0, abs=1e-2)  # measured 0.2 %


def test_zernike_defocus_term_equals_propagation():
    N, ap, c4 = 64, 0.25, 0.5
    g, big = geometry(N), geometry(N, 4)
    nu_max = ap / (2 * g.object_pixel_m)
    d = -2 * math.sqrt(3) * c4 / (math.pi * g.wavelength_m * nu_max**2)
    a = probes.zernike(N, [0, 0, 0, c4], aperture=ap).astype(complex)
    a *= np.exp(1j * math.sqrt(3) * c4)  # the piston of Z4
    wide = probes.propagate(probes.zernike(4 * N, [0.0], aperture=ap), d, big)
    crop = wide[96:160, 96:160].astype(complex)
    crop /= np.linalg.norm(crop)
    assert np.linalg.norm(a - crop) < 2e-2  # measured 3.4e-3 (pupil edge sampling)


def test_zernike_pupil_plane_phase():
    N, ap = 64, 0.5
    c = [0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.8]
    p = probes.zernike(N, c, aperture=ap, plane="pupil").astype(np.complex128)
    u = np.arange(N) - (N - 1) / 2
    radius = ap * N / 2
    rho = np.hypot(u[None, :], u[:, None]) / radius
    th = np.arctan2(u[:, None], u[None, :])
    inner = rho < 1 - 1 / radius
    phase = 0.3 * math.sqrt(3) * (2 * rho**2 - 1) + 0.8 * math.sqrt(8) * (
        3 * rho**3 - 2 * rho
    ) * np.cos(th)
    ref = np.exp(1j * phase)
    ratio = p[inner] / ref[inner]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert np.all(p[rho > 1 + 1 / radius] == 0)


def test_random_zernike_coefficients():
    c = probes.random_zernike_coefficients(seed=11, rms_rad=0.7)
    assert c.shape == (15,) and np.all(c[:3] == 0)
    assert math.sqrt(np.sum(c**2)) == pytest.approx(0.7, rel=1e-12)
    draws = np.random.Generator(np.random.PCG64(11)).standard_normal(12)
    np.testing.assert_allclose(c[3:], draws * 0.7 / np.linalg.norm(draws), rtol=1e-14)
    assert np.array_equal(probes.zernike(32, seed=11, rms_rad=0.7), probes.zernike(32, c))
    assert not np.array_equal(probes.zernike(32, seed=12), probes.zernike(32, seed=11))


# --------------------------------------------------------------------------- modes


def gram(m):
    m = m.astype(np.complex128)
    return np.einsum("aij,bij->ab", m.conj(), m)


@pytest.mark.parametrize("method,seed", [("hermite", None), ("random", 4)])
def test_modes_orthogonal_with_power_weights(method, seed):
    primary = probes.disk(48)
    w = [0.55, 0.2, 0.1, 0.1, 0.05]
    m = probes.modes(primary, 5, weights=w, method=method, seed=seed)
    assert m.shape == (5, 48, 48) and m.dtype == np.complex64
    G = gram(m)
    np.testing.assert_allclose(np.diag(G).real, w, atol=1e-6)
    assert np.abs(G - np.diag(np.diag(G))).max() < 1e-6
    np.testing.assert_allclose(m[0], primary * math.sqrt(0.55), atol=1e-6)


def test_hermite_modes_of_a_gaussian_are_hermite_gaussians():
    N, s = 64, 5.0
    m = probes.modes(probes.gaussian(N, s), 3, decay=0.5).astype(np.complex128)
    np.testing.assert_allclose(np.sum(np.abs(m) ** 2, axis=(1, 2)), [4 / 7, 2 / 7, 1 / 7])
    c = np.arange(N) - (N - 1) / 2
    X, Y = np.meshgrid(c, c)
    g = np.exp(-(X**2 + Y**2) / (2 * s**2))
    for k, hg in ((1, X * g), (2, Y * g)):
        overlap = abs(np.vdot(hg, m[k])) / (np.linalg.norm(hg) * np.linalg.norm(m[k]))
        assert overlap == pytest.approx(1.0, abs=1e-9)


def test_random_modes_reproducible():
    p = probes.gaussian(32, 4.0)
    a = probes.modes(p, 3, method="random", seed=9)
    assert np.array_equal(a, probes.modes(p, 3, method="random", seed=9))
    assert not np.array_equal(a, probes.modes(p, 3, method="random", seed=10))


def test_single_mode_is_the_normalised_primary():
    p = 3 * probes.gaussian(16, 2.0)
    m = probes.modes(p, 1)
    assert m.shape == (1, 16, 16)
    np.testing.assert_allclose(m[0], p / 3, atol=1e-7)


# --------------------------------------------------------------------------- load


def test_load_npz_keys_and_shapes(tmp_path):
    p = probes.gaussian(16, 3.0) * 5
    f1 = tmp_path / "a.npz"
    np.savez(f1, probeGuess=p[..., None], other=np.zeros(3))
    np.testing.assert_allclose(probes.load(f1), p / 5, atol=1e-7)
    stack = np.stack([p, 0.5 * p])
    f2 = tmp_path / "b.npz"
    np.savez(f2, probe=stack)
    out = probes.load(str(f2))
    assert out.shape == (2, 16, 16) and power(out) == pytest.approx(1.0, abs=1e-6)
    assert power(out[0]) / power(out[1]) == pytest.approx(4.0, rel=1e-5)
    np.savez(tmp_path / "c.npz", mine=p)
    assert probes.load(tmp_path / "c.npz", key="mine").shape == (16, 16)


@pytest.mark.parametrize(
    "path,shape",
    [
        ("probe", (2, 16, 16)),
        ("probe", (1, 2, 16, 16)),  # ptychodus: (OPR, modes, H, W)
        ("entry_1/instrument_1/source_1/probe", (16, 16)),
        ("entry_1/instrument_1/detector_1/probe", (3, 16, 16)),
        ("entry_1/probe", (16, 16)),
    ],
)
def test_load_hdf5_locations(tmp_path, path, shape):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    f = tmp_path / "p.h5"
    with h5py.File(f, "w") as h5:
        h5[path] = data
    out = probes.load(f)
    expect = data.reshape(data.shape[-3:] if len(shape) == 4 else shape)
    expect = expect / math.sqrt(power(expect))
    np.testing.assert_allclose(out, expect, atol=1e-6)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        probes.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "none.npz", objectGuess=np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"none\.npz.*probeGuess.*probe.*objectGuess"):
        probes.load(tmp_path / "none.npz")
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(ValueError, match="neither an NPZ nor an HDF5"):
        probes.load(tmp_path / "text.txt")
    np.savez(tmp_path / "nan.npz", probe=np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match=r"nan\.npz.*finite"):
        probes.load(tmp_path / "nan.npz")
    np.savez(tmp_path / "zero.npz", probe=np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"zero\.npz.*zero"):
        probes.load(tmp_path / "zero.npz")
    np.savez(tmp_path / "rect.npz", probe=np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"rect\.npz.*\(4, 5\)"):
        probes.load(tmp_path / "rect.npz")
    with h5py.File(tmp_path / "opr.h5", "w") as h5:
        h5["probe"] = np.ones((2, 1, 4, 4))
    with pytest.raises(ValueError, match="orthogonal-probe-relaxation"):
        probes.load(tmp_path / "opr.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5["something"] = np.ones(3)
    with pytest.raises(ValueError, match=r"empty\.h5.*no probe dataset"):
        probes.load(tmp_path / "empty.h5")
    with pytest.raises(TypeError, match="path"):
        probes.load(3)


# --------------------------------------------------------------------------- validation

G64 = geometry(64)
DX = G64.object_pixel_m


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: probes.disk(1), ValueError, "N must be >= 2"),
        (lambda: probes.disk(probes.MAX_N + 1), ValueError, "N must be <= 8192"),
        (lambda: probes.disk(64.0), TypeError, "N must be an integer"),
        (lambda: probes.disk(64, scale=0), ValueError, "scale"),
        (lambda: probes.gaussian(64, 0.0), ValueError, "sigma_px must be a positive"),
        (lambda: probes.gaussian(64, float("nan")), ValueError, "sigma_px must be finite"),
        (lambda: probes.gaussian(64, "3"), TypeError, "sigma_px must be a real"),
        (lambda: probes.super_gaussian(64, 5.0, order=-1), ValueError, "order"),
        (lambda: probes.super_gaussian(64, -5.0), ValueError, "radius_px"),
        (lambda: probes.fresnel_zone_plate("g", 1e-4, 1e-7), TypeError, "geometry"),
        (lambda: probes.fresnel_zone_plate(G64, -1e-4, 1e-7), ValueError, "diameter_m"),
        (lambda: probes.fresnel_zone_plate(G64, 1e-4, DX / 2), ValueError, "outer_zone_m"),
        (lambda: probes.fresnel_zone_plate(G64, 1e-4, 1e-7, 1.0), ValueError, "central_stop"),
        (lambda: probes.fresnel_zone_plate(G64, 1e-4, 1e-7, -0.1), ValueError, "central_stop"),
        (
            lambda: probes.fresnel_zone_plate(G64, 1e-4, 1e-7, defocus_m=float("inf")),
            ValueError,
            "defocus_m must be finite",
        ),
        (lambda: probes.fresnel_zone_plate(G64, 1e-4, 1e-7, 0, -1.0), ValueError, "defocus_m"),
        (lambda: probes.zernike(64, [0.0], aperture=0.0), ValueError, "aperture"),
        (lambda: probes.zernike(64, [0.0], aperture=1.5), ValueError, "aperture"),
        (lambda: probes.zernike(64, [np.nan]), ValueError, "coefficients must be finite"),
        (lambda: probes.zernike(64, [[0.0]]), TypeError, "coefficients must be a 1-D"),
        (lambda: probes.zernike(64, np.zeros(232)), ValueError, "1 to 231"),
        (lambda: probes.zernike(64, [0.0], seed=1), ValueError, "not both"),
        (lambda: probes.zernike(64, [0.0], plane="image"), ValueError, "plane must be one"),
        (lambda: probes.random_zernike_coefficients(rms_rad=-1), ValueError, "rms_rad"),
        (lambda: probes.random_zernike_coefficients(min_noll=5, max_noll=4), ValueError, "max"),
        (lambda: probes.noll_to_nm(0), ValueError, "j must be >= 1"),
        (lambda: probes.propagate(np.ones((64, 64)), 1e-3, "g"), TypeError, "geometry"),
        (lambda: probes.propagate(np.ones((32, 32)), 1e-3, G64), ValueError, "N = 32"),
        (lambda: probes.propagate(np.ones((64, 64)), np.nan, G64), ValueError, "distance_m"),
        (
            lambda: probes.propagate(np.full((64, 64), np.inf), 1e-3, G64),
            ValueError,
            "probe must be finite",
        ),
        (lambda: probes.propagate(np.ones((2, 2, 64, 64)), 1.0, G64), ValueError, "probe must"),
        (lambda: probes.propagate("probe", 1.0, G64), TypeError, "probe must be"),
        (lambda: probes.modes(np.ones((8, 8)), 0), ValueError, "n must be >= 1"),
        (lambda: probes.modes(np.ones((2, 8, 8)), 2), ValueError, "primary must be one mode"),
        (lambda: probes.modes(np.zeros((8, 8)), 2), ValueError, "primary has zero"),
        (lambda: probes.modes(np.ones((8, 8)), 2, weights=[1.2, -0.2]), ValueError, ">= 0"),
        (lambda: probes.modes(np.ones((8, 8)), 2, weights=[0.5, 0.4]), ValueError, "sum to 1"),
        (lambda: probes.modes(np.ones((8, 8)), 2, weights=[1.0]), ValueError, "n = 2 entries"),
        (lambda: probes.modes(np.ones((8, 8)), 2, weights=[0, 1.0]), ValueError, r"weights\[0\]"),
        (
            lambda: probes.modes(np.ones((8, 8)), 2, weights=[0.5, 0.5], decay=0.5),
            ValueError,
            "not both",
        ),
        (lambda: probes.modes(np.ones((8, 8)), 2, decay=1.5), ValueError, "decay"),
        (lambda: probes.modes(np.ones((8, 8)), 2, seed=1), ValueError, "method='random'"),
        (lambda: probes.modes(np.ones((8, 8)), 2, method="svd"), ValueError, "method"),
        (
            lambda: probes.modes(np.pad(np.ones((1, 1)), 3), 2),
            ValueError,
            "linearly dependent",
        ),
        (lambda: probes.normalize(np.zeros((4, 4))), ValueError, "zero"),
        (lambda: probes.normalize(np.ones(4)), ValueError, r"\(N, N\) or \(P, N, N\)"),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_inputs_are_not_modified():
    p = probes.gaussian(64, 3.0)
    keep = p.copy()
    probes.propagate(p, 1e-4, G64)
    probes.modes(p, 3)
    probes.normalize(p)
    assert np.array_equal(p, keep)


def test_geometry_json_round_trip_gives_the_same_zone_plate():
    g2 = Geometry.from_dict(json.loads(json.dumps(G64.to_dict())))
    a = probes.fresnel_zone_plate(G64, 100e-6, 80e-9, 0.3, 100e-6)
    assert np.array_equal(a, probes.fresnel_zone_plate(g2, 100e-6, 80e-9, 0.3, 100e-6))


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "builder,params,operations",
    [
        ("disk", {"N": 32}, []),
        ("gaussian", {"N": 32, "sigma_px": 3.0}, [{"op": "modes", "n": 2, "decay": 0.3}]),
        ("super_gaussian", {"N": 32, "radius_px": np.float64(6.0), "order": 3}, []),
        (
            "fresnel_zone_plate",
            {"geometry": G64, "diameter_m": 100e-6, "outer_zone_m": 2 * DX, "defocus_m": 1e-3},
            [{"op": "modes", "n": 3, "method": "random", "seed": None}],
        ),
        ("zernike", {"N": 32, "aperture": 0.3}, []),
        ("zernike", {"N": 64, "coefficients": np.array([0, 0, 0, 0.4])}, []),
        (
            "zernike",
            {"N": 64, "plane": "pupil", "seed": np.random.default_rng(2)},
            [{"op": "propagate", "distance_m": 2e-3, "geometry": G64}],
        ),
    ],
)
def test_probe_recipe_round_trip(builder, params, operations):
    r = probes.recipe(builder, operations=operations, **params)
    r2 = json.loads(json.dumps(r))
    assert r2 == r and r["format"] == "ptyfast.probe" and r["version"] == 1
    p = probes.build(r2)
    assert np.array_equal(p, probes.build(r))
    assert power(p) == pytest.approx(1.0, abs=1e-6)
    # the same as calling the builder and operations by hand with the recorded values
    kwargs = {k: v for k, v in r["params"].items()}
    if "geometry" in kwargs:
        kwargs["geometry"] = Geometry.from_dict(kwargs["geometry"])
    by_hand = getattr(probes, builder)(**kwargs)
    for op in r["operations"]:
        kw = {k: v for k, v in op.items() if k != "op"}
        if op["op"] == "propagate":
            by_hand = probes.propagate(by_hand, kw["distance_m"], G64)
        else:
            by_hand = probes.modes(by_hand, **kw)
    assert np.array_equal(p, probes.normalize(by_hand))


def test_probe_recipe_records_fresh_seeds():
    a = probes.recipe("zernike", N=32)
    b = probes.recipe("zernike", N=32)
    assert isinstance(a["params"]["seed"], int) and a["params"]["seed"] != b["params"]["seed"]
    assert np.array_equal(probes.build(a), probes.zernike(32, seed=a["params"]["seed"]))
    assert probes.recipe("zernike", N=32, coefficients=[0.0, 1.0])["params"]["seed"] is None
    m = probes.recipe("disk", N=16, operations=[{"op": "modes", "n": 2, "method": "random"}])
    assert isinstance(m["operations"][0]["seed"], int)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: probes.recipe("load", path="x.npz"), "builder must be one of"),
        (lambda: probes.recipe("gaussian", N=8), r"missing parameters \['sigma_px'\]"),
        (lambda: probes.recipe("disk", N=8, sigma_px=1.0), r"unknown parameters \['sigma_px'\]"),
        (lambda: probes.recipe("disk", N=8, operations=[{"op": "blur"}]), "must be one of"),
        (
            lambda: probes.recipe("disk", N=8, operations=[{"op": "modes"}]),
            r"missing parameters \['n'\]",
        ),
        (lambda: probes.build({"format": "ptyfast.probe"}), "keys"),
        (lambda: probes.build({**probes.recipe("disk", N=8), "version": 0}), "version"),
        (lambda: probes.build({**probes.recipe("disk", N=8), "builder": "x"}), "builder"),
        (
            lambda: probes.build({**probes.recipe("zernike", N=8), "params": {"N": 8}}),
            "params",
        ),
        (
            lambda: probes.build(
                {**probes.recipe("zernike", N=8), "params": {**_zernike_params(), "seed": None}}
            ),
            "recorded integer",
        ),
        (
            lambda: probes.build(
                {**probes.recipe("disk", N=8), "operations": [{"op": "propagate"}]}
            ),
            "must have the keys",
        ),
        (lambda: probes.build(None), "dict"),
    ],
)
def test_probe_recipe_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _zernike_params():
    return probes.recipe("zernike", N=8, seed=1)["params"]


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(probes_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20 and result.failed == 0


def test_readme_model_example_runs():
    """The README's model example (the first python block after its heading) runs."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### The physical model: probes, scans, objects", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["probe"].shape == (3, 128, 128)
    assert namespace["nominal"].shape == (400, 2)


@pytest.mark.parametrize("N", [1, 2, 63, 64, 128])
@pytest.mark.parametrize("scale", [0.7, 0.35, 1.3])
def test_disk_window_is_scipys_gaussian_window(N, scale):
    w = gaussian_window(N, std=N / (scale * np.pi**2), sym=True)
    w = w / w.max()
    assert np.array_equal(probes_module._lowpass_window(N, scale), w)


@pytest.mark.parametrize("scale", [1e10, 1e300])
def test_disk_refuses_a_scale_that_leaves_it_empty(scale):
    # PtychoPINN returns a flat 1e-9 array here (its window is 0/0 = NaN): refused instead.
    with pytest.raises(ValueError, match="leaves the disk of an N = 8 probe empty"):
        probes_module.disk_profile(8, scale=scale)
    with pytest.raises(ValueError, match="scale = "):
        get_default_probe(8, fmt="np", scale=scale)

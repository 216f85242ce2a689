"""Physics audit: the model layer against computations written here from first principles.

Each test computes the physics independently (NumPy sums and FFTs, or an analytic result),
never through a ptyfast helper other than the functions under test (the detector tests take
the expected photons ``λ`` from a noise-free simulation, itself checked against NumPy in
``tests/test_acquisition.py``):

* ``test_wavelength_and_object_pixel_follow_hc_over_e``: ``λ = hc/E`` with
  ``hc = 1.23984198 keV·nm`` and ``Δx = λz/(NΔ)`` at several energies.
* ``test_a_grating_diffracts_into_the_pixel_of_its_spatial_frequency``: an object grating of
  ``k`` periods per window, under a flat probe, sends every photon of the simulated pattern to
  pixel ``N//2 + k`` (``+x`` phase ramp → ``+column``, ``y`` → row), which lies at the
  grating-equation angle ``λ/p`` on the detector.
* ``test_far_field_shift_translation_and_friedel_symmetry``: for a generic complex probe
  and object, a phase ramp ``exp(2πi(kx·x + ky·y)/N)`` on the object rolls the pattern by
  ``(ky, kx)``; moving the object and the scan position together leaves the pattern
  unchanged; a real exit wave gives ``I(q) = I(−q)`` about ``[N//2, N//2]`` (odd and even
  ``N``).
* ``test_scan_centre_sits_on_the_object_centre``: a scan position ``(0, 0)`` sees a patch
  point-symmetric about the probe's centre ``(N − 1)/2`` for an object symmetric about its own
  centre, for every parity of ``N``, ``H`` and ``W`` (bilinear sampling included), and a
  one-pixel offset of the object breaks it.
* ``test_gaussian_probe_intensity_moments``: ``|P|²`` of ``gaussian(σ)`` has per-axis
  standard deviation ``σ/√2`` and unit sum, as its docstring says.
* ``test_plane_wave_through_a_pinhole_has_the_fresnel_on_axis_field``: ``propagate`` of a
  uniformly lit circular aperture of radius ``a`` gives the exact paraxial on-axis field
  ``1 − exp(iπ a²/(λz))`` (sign of the propagator included).
* ``test_a_tilted_beam_walks_off_along_its_direction``: ``propagate`` of a Gaussian with a
  phase tilt ``exp(2πi ν·x)`` moves its centroid by ``d·λν/√(1 − λ²ν²)``, along ``+x``
  (columns) and ``+y`` (rows) as the signs of ``ν`` say.
* ``test_zone_plate_defocus_against_a_direct_fresnel_sum``: ``fresnel_zone_plate`` out of focus
  against a direct 2-D Fresnel sum over the lens pupil (no Hankel transform, no FFT), phase
  included.
* ``test_zone_plate_far_field_is_its_annular_pupil``: a defocused zone plate on a flat
  object lights the annulus of radius ``z·λ/(2Δr)`` on the detector (``N·Δx/(2Δr)`` pixels),
  inner radius ``ε`` times that.
* ``test_zernike_focus_against_a_direct_pupil_integral``: the aberrated focus (coma,
  astigmatism, spherical) against a direct DFT of a finely sampled pupil, odd and even ``N``;
  the transposed (x ↔ y) reference is far off, so orientation is pinned.
* ``test_zernike_far_field_is_its_pupil``: on a flat object the pattern of an aberrated
  ``zernike`` focus is the uniformly lit pupil disk of radius ``aperture·N/2`` detector
  pixels (``aperture`` = NA as a fraction of the grid's ``λ/(2Δx)``).
* ``test_pupil_edge_weights_and_disk_area``: the area-weighted edge of ``zernike``'s disk
  against a supersampled exact area fraction (within 0.05 per pixel) and ``πR²`` (within
  ``0.15/R``), as its docstring now states.
* ``test_hermite_modes_follow_an_off_centre_primary``: the first two Hermite modes of a
  Gaussian away from the array centre are ``(x − x0)·g`` and ``(y − y0)·g``.
* ``test_grf_power_spectrum_follows_its_index``: the mean ``|FFT|²`` of the ``grf`` family's
  Gaussian random field falls as ``k**index`` (``-0.4``, and ``-2`` as a control).
* ``test_detector_psf_spreads_only_the_photons_that_reach_a_sensor``: with a beamstop,
  module gaps, QE, PSF, gain and offset, the readings are
  ``gain·G_σ ⊛ (qe·λ·[not stopped, not gap]) + offset`` and gap pixels read 0.
* ``test_read_noise_is_gaussian_and_dark_counts_are_poisson``: the distributions' shapes,
  not only their mean and variance (Kolmogorov–Smirnov and kurtosis for the read noise, a
  χ² goodness of fit for the dark counts), and no correlation between neighbouring pixels or
  consecutive patterns.
* ``test_detector_stages_apply_in_the_documented_order``: QE, then dead time, then PSF, then
  dark counts, gain and offset (dead time before QE differs by far more than the tolerance),
  and ``readings_to_photons`` undoes the affine part.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats

import ptyfast
from ptyfast import Detector, Geometry, probes, scans
from ptyfast import _kernels as K

HC_KEV_NM = 1.23984198  # h·c in keV·nm (CODATA 2018, 9 significant digits)


def geometry(n: int) -> Geometry:
    return Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=n)


def noise_free(obj: np.ndarray, probe: np.ndarray, g: Geometry | None = None) -> np.ndarray:
    """The expected photons of one pattern at the object's centre (float64 readings)."""
    e = ptyfast.Experiment(
        obj,
        probe,
        scans.custom([0.0], [0.0]),
        Detector(poisson=False, dtype="float64"),
        1e6,
        g,
    )
    return ptyfast.simulate(e, seed=0).diffraction[0]


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("energy_kev", [0.5, 6.2, 8.0, 17.5])
def test_wavelength_and_object_pixel_follow_hc_over_e(energy_kev):
    g = Geometry(energy_eV=energy_kev * 1e3, distance_m=3.5, detector_pixel_m=172e-6, N=200)
    lam = HC_KEV_NM / energy_kev * 1e-9  # metres
    # hc is quoted to 9 digits here (rounding error < 4e-9 relative); measured 3.5e-9.
    assert g.wavelength_m == pytest.approx(lam, rel=1e-8)
    assert g.object_pixel_m == pytest.approx(lam * 3.5 / (200 * 172e-6), rel=1e-8)


def test_a_grating_diffracts_into_the_pixel_of_its_spatial_frequency():
    n, kx, ky = 32, 5, -3
    g = geometry(n)
    yy, xx = np.mgrid[: 3 * n, : 3 * n]
    # A phase grating of kx periods per window along x and ky along y.
    obj = np.exp(2j * np.pi * (kx * xx + ky * yy) / n).astype(np.complex64)
    intensity = noise_free(obj, np.ones((n, n), np.complex64), g)
    row, col = np.unravel_index(np.argmax(intensity), intensity.shape)
    assert (row, col) == (n // 2 + ky, n // 2 + kx)
    # The patch is exactly periodic on the window: all photons in one pixel (float32 FFT
    # rounding leaves ~1e-7 of them elsewhere).
    assert intensity[row, col] / intensity.sum() > 1 - 1e-5
    # Grating equation: period p = N·Δx/k diffracts at λ/p, i.e. z·λ/p metres off axis.
    period = n * g.object_pixel_m / kx
    off_axis = (col - n // 2) * g.detector_pixel_m
    assert off_axis == pytest.approx(g.distance_m * g.wavelength_m / period, rel=1e-12)


def _patterns(obj: np.ndarray, probe: np.ndarray, xy: list[tuple[float, float]]) -> np.ndarray:
    """Expected photons (float64) at the given scan positions, relative to the centre."""
    x, y = zip(*xy, strict=True)
    det = Detector(poisson=False, dtype="float64")
    e = ptyfast.Experiment(obj, probe, scans.custom(list(x), list(y)), det, 1e6)
    return ptyfast.simulate(e, seed=0).diffraction


@pytest.mark.parametrize("n", [16, 15])
def test_far_field_shift_translation_and_friedel_symmetry(n):
    rng = np.random.default_rng(n)
    h = w = 3 * n
    obj = (0.5 + rng.random((h, w))) * np.exp(1j * rng.uniform(-2, 2, (h, w)))
    probe = probes.zernike(n, [0, 0.3, -0.2, 0.5, 0.4, 0.0, 0.6], aperture=0.6)
    base = _patterns(obj.astype(np.complex64), probe, [(0.0, 0.0), (3.0, -2.0)])
    tol = 1e-5 * base.max()  # float32 exit waves and FFTs: measured ~1e-7 relative
    # Fourier shift theorem, with the +x = column and +y = row conventions.
    kx, ky = 3, -2
    yy, xx = np.mgrid[:h, :w]
    ramp = np.exp(2j * np.pi * (kx * xx + ky * yy) / n)
    shifted = _patterns((obj * ramp).astype(np.complex64), probe, [(0.0, 0.0), (3.0, -2.0)])
    np.testing.assert_allclose(shifted, np.roll(base, (ky, kx), axis=(1, 2)), atol=tol)
    # Translation: the object moved by (+3, −2) pixels and the scan with it (one position
    # each, so that both have the same illuminated energy and intensity scale).
    moved = np.roll(obj, (-2, 3), axis=(0, 1)).astype(np.complex64)
    alone = _patterns(obj.astype(np.complex64), probe, [(0.0, 0.0)])[0]
    np.testing.assert_allclose(_patterns(moved, probe, [(3.0, -2.0)])[0], alone, atol=tol)
    # Friedel: a real exit wave (real probe, real object) has I(q) = I(−q).
    real = _patterns(obj.real.astype(np.complex64), probes.gaussian(n, 2.5), [(0.5, 0.0)])[0]
    lo = 1 - n % 2  # even N: row and column 0 have no partner
    core = real[lo:, lo:]
    np.testing.assert_allclose(core, core[::-1, ::-1], atol=1e-5 * real.max())
    assert np.abs(base[0][lo:, lo:] - base[0][lo:, lo:][::-1, ::-1]).max() > 0.01 * base.max()


@pytest.mark.parametrize("n, h, w", [(16, 64, 64), (16, 61, 63), (15, 64, 63), (15, 61, 61)])
def test_scan_centre_sits_on_the_object_centre(n, h, w):
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    # A bump without any symmetry but the point reflection about ((W − 1)/2, (H − 1)/2).
    u, v = xx - (w - 1) / 2, yy - (h - 1) / 2
    obj = (np.exp(-(u**2 + 2 * v**2 + u * v) / 40) * (1 + 0.2j * np.cos(u + 3 * v))).astype(
        np.complex64
    )
    e = ptyfast.Experiment(obj, probes.gaussian(n, 3.0), scans.custom([0.0], [0.0]), None, 1e6)
    patch = ptyfast.simulate(e, seed=0, patches=True).patches[0].astype(np.complex128)
    # Bilinear weights of a symmetric grid are symmetric: float32 rounding only.
    np.testing.assert_allclose(patch, patch[::-1, ::-1], atol=2e-6)
    shifted = np.roll(obj, 1, axis=1)  # the object's centre one pixel to the right
    e = ptyfast.Experiment(shifted, probes.gaussian(n, 3.0), scans.custom([0.0], [0.0]), None, 1e6)
    patch = ptyfast.simulate(e, seed=0, patches=True).patches[0]
    assert np.abs(patch - patch[::-1, ::-1]).max() > 0.05


# --------------------------------------------------------------------------- probes


def test_gaussian_probe_intensity_moments():
    n, sigma = 96, 7.0
    p = probes.gaussian(n, sigma).astype(np.complex128)
    intensity = np.abs(p) ** 2
    assert intensity.sum() == pytest.approx(1.0, abs=1e-6)  # float32 rounding of P
    c = np.arange(n) - (n - 1) / 2
    for marginal in (intensity.sum(axis=0), intensity.sum(axis=1)):
        assert np.sum(marginal * c) == pytest.approx(0.0, abs=1e-5)
        sd = math.sqrt(np.sum(marginal * c**2) / marginal.sum())
        # Tails beyond ±48 px hold exp(-47²/49) ~ 1e-20: the sampled moment is exact to
        # discretisation (Euler–Maclaurin, negligible for σ = 7 px).
        assert sd == pytest.approx(sigma / math.sqrt(2), rel=1e-6)


def test_plane_wave_through_a_pinhole_has_the_fresnel_on_axis_field():
    n, aperture = 255, 0.25  # odd N: a pixel on the axis
    g = geometry(n)
    lam = g.wavelength_m
    a = aperture * n / 2 * g.object_pixel_m  # radius 31.9 pixels
    pinhole = probes.zernike(n, [0.0], aperture=aperture, plane="pupil").astype(np.complex128)
    pinhole /= pinhole[n // 2, n // 2]  # unit plane wave inside the aperture
    for fresnel in (0.5, 1.0, 1.5):
        z = a * a / (lam * fresnel)
        u = probes.propagate(pinhole, z, g)[n // 2, n // 2]
        # Paraxial on-axis field of a circular aperture: 1 − exp(iπ a²/(λz)). A reversed
        # propagator would give the conjugate (1 ∓ i at F = 1/2, 3/2). The pixelated edge of
        # the disk and the band limit leave ~0.5 %; measured 6e-4 to 4.4e-3.
        want = 1 - np.exp(1j * np.pi * fresnel)
        assert abs(u - want) < 0.02, (fresnel, u, want)


def test_a_tilted_beam_walks_off_along_its_direction():
    n = 128
    g = geometry(n)
    dx, lam = g.object_pixel_m, g.wavelength_m
    c = np.arange(n) - (n - 1) / 2
    xx, yy = np.meshgrid(c, c)  # xx varies along columns, yy along rows
    nu_x, nu_y = 0.1 / dx, -0.05 / dx  # spatial frequencies in 1/m
    tilted = probes.gaussian(n, 4.0) * np.exp(2j * np.pi * (nu_x * xx + nu_y * yy) * dx)
    d = 10 * dx / (lam * nu_x)  # about one Rayleigh length: the beam stays in the window
    intensity = np.abs(probes.propagate(tilted, d, g).astype(np.complex128)) ** 2
    intensity /= intensity.sum()
    # Group direction of the plane wave ν: sin θ = λ|ν| (the root differs from 1 by 1e-7).
    walk = d * lam / math.sqrt(1 - lam**2 * (nu_x**2 + nu_y**2)) / dx
    # Measured 4e-7 pixels from 10 and −5 pixels.
    assert np.sum(intensity * xx) == pytest.approx(walk * nu_x, abs=1e-4)
    assert np.sum(intensity * yy) == pytest.approx(walk * nu_y, abs=1e-4)


def test_zone_plate_defocus_against_a_direct_fresnel_sum():
    n = 64
    g = geometry(n)
    lam, dx = g.wavelength_m, g.object_pixel_m
    diameter, zone, eps = 40e-6, 2 * dx, 0.3
    f = diameter * zone / lam
    d = 16 * dx * f / diameter  # geometric beam 16 pixels across
    probe = probes.fresnel_zone_plate(g, diameter, zone, eps, defocus_m=d).astype(np.complex128)
    # First principles: a thin lens (phase −π ρ²/(λf)) on the annular pupil, then the Fresnel
    # convolution exp(iπ |x − ξ|²/(λz)) to z = f + d, summed on a 700² grid over the pupil.
    z, r = f + d, diameter / 2
    m = 700
    s = ((np.arange(m) + 0.5) / m * 2 - 1) * r
    xi, eta = np.meshgrid(s, s)
    rho2 = xi**2 + eta**2
    lens = np.where((rho2 <= r * r) & (rho2 >= (eps * r) ** 2), 1.0, 0.0)
    lens = lens * np.exp(-1j * np.pi * rho2 / (lam * f))
    c = (np.arange(n) - (n - 1) / 2) * dx
    rows = np.array([40] * 12 + list(range(20, 44, 2)))
    cols = np.array(list(range(20, 44, 2)) + [30] * 12)
    ref = np.array(
        [
            np.sum(lens * np.exp(1j * np.pi * ((c[j] - xi) ** 2 + (c[i] - eta) ** 2) / (lam * z)))
            for i, j in zip(rows, cols, strict=True)
        ]
    )
    got = probe[rows, cols]
    scale = np.vdot(ref, got) / np.vdot(ref, ref)  # ptyfast normalises: a positive factor
    # Residual from the staircase pupil edge of the 700² grid: measured 4.4e-4 (1200²: 3.8e-4).
    assert np.linalg.norm(got - scale * ref) / np.linalg.norm(got) < 3e-3
    # The documented prefactor f/z is real and positive: no stray global phase (measured
    # 1.3e-4 rad).
    assert abs(np.angle(scale)) < 3e-3


def test_zone_plate_far_field_is_its_annular_pupil():
    n = 128
    g = geometry(n)
    dx, lam = g.object_pixel_m, g.wavelength_m
    diameter, zone, eps = 100e-6, 4 * dx, 0.4
    f = diameter * zone / lam
    probe = probes.fresnel_zone_plate(g, diameter, zone, eps, defocus_m=40 * dx * f / diameter)
    intensity = noise_free(np.ones((n, n), np.complex64), probe, g)
    # The zone plate's outer cone, NA = λ/(2Δr), lands at z·NA on the detector.
    q_out = g.distance_m * lam / (2 * zone) / g.detector_pixel_m
    assert q_out == pytest.approx(n * dx / (2 * zone), rel=1e-12)  # 16 pixels here
    yy, xx = np.mgrid[:n, :n] - n // 2
    q = np.hypot(yy, xx)
    total = intensity.sum()
    # Edge diffraction of the finite window blurs each edge by about a pixel: measured
    # 0.9986 inside the annulus widened by one pixel, 3e-4 beyond q_out + 2, 1.3e-4 inside
    # ε·q_out − 2.
    assert intensity[(q >= eps * q_out - 1) & (q <= q_out + 1)].sum() / total > 0.995
    assert intensity[q > q_out + 2].sum() / total < 2e-3
    assert intensity[q < eps * q_out - 2].sum() / total < 2e-3


def _zernike_reference(n: int, aperture: float, terms: dict[int, float], m: int = 600):
    """``U(x) = ∫_disk exp(iΣ c_j Z_j) exp(2πi ν·x) d²ν`` by a direct DFT over an ``m²``
    midpoint grid of the pupil (radius ``aperture/2`` cycles per pixel), ``x`` from
    ``(n − 1)/2``; rows are ``y``, columns ``x``; unit norm."""
    nu_max = aperture / 2
    s = ((np.arange(m) + 0.5) / m * 2 - 1) * nu_max
    vx, vy = np.meshgrid(s, s)
    rho, th = np.hypot(vx, vy) / nu_max, np.arctan2(vy, vx)
    explicit = {  # Noll-normalised, written out (Noll 1976, Table 1)
        5: math.sqrt(6) * rho**2 * np.sin(2 * th),
        8: math.sqrt(8) * (3 * rho**3 - 2 * rho) * np.cos(th),
        11: math.sqrt(5) * (6 * rho**4 - 6 * rho**2 + 1),
    }
    phase = sum(cj * explicit[j] for j, cj in terms.items())
    pupil = np.where(rho <= 1, np.exp(1j * phase), 0.0)
    x = np.arange(n) - (n - 1) / 2
    e = np.exp(2j * np.pi * np.outer(x, s))  # (n, m)
    u = e @ pupil @ e.T  # u[y, x] = Σ_{νy, νx} e[y, νy] pupil[νy, νx] e[x, νx]
    return u / np.linalg.norm(u)


@pytest.mark.parametrize("n", [32, 33])
def test_zernike_focus_against_a_direct_pupil_integral(n):
    aperture, terms = 0.3, {5: 0.7, 8: 1.5, 11: 0.5}
    coefficients = np.zeros(11)
    for j, cj in terms.items():
        coefficients[j - 1] = cj
    p = probes.zernike(n, coefficients, aperture=aperture).astype(np.complex128)
    ref = _zernike_reference(n, aperture, terms)
    overlap = np.vdot(ref, p)
    # ptyfast samples the pupil 4x finer than 1/N with area-weighted edge pixels: measured
    # 1.2e-2 (N = 32) and 9.7e-3 (N = 33), falling to 8e-4 at 16x oversampling.
    assert np.linalg.norm(p - overlap * ref) < 0.03
    assert abs(np.angle(overlap)) < 1e-2  # no global phase either (measured 3e-4)
    # Power of the test: the same aberrations with x and y swapped are far away.
    swapped = ref.T
    assert np.linalg.norm(p - np.vdot(swapped, p) * swapped) > 0.3


def test_zernike_far_field_is_its_pupil():
    n, aperture = 64, 0.5
    probe = probes.zernike(n, [0, 0, 0, 0, 0.8, 0, 1.0], aperture=aperture)
    intensity = noise_free(np.ones((n, n), np.complex64), probe)
    yy, xx = np.mgrid[:n, :n] - n // 2
    q = np.hypot(yy, xx)
    radius = aperture * n / 2  # 16 detector pixels
    total = intensity.sum()
    # The N x N crop of the focus blurs the pupil's edge by about a pixel and rings inside:
    # measured 0.9993 within radius + 1, 3.6e-4 beyond radius + 2, 2.5 % RMS inside.
    assert intensity[q <= radius + 1].sum() / total > 0.995
    assert intensity[q > radius + 2].sum() / total < 2e-3
    inner = intensity[q < radius - 3]
    assert inner.std() / inner.mean() < 0.06  # aberrations change the phase only


def test_pupil_edge_weights_and_disk_area():
    # Weights: |P| / max|P| of an unaberrated pupil-plane disk (1 inside).
    def weights(n: int, aperture: float) -> np.ndarray:
        p = np.abs(probes.zernike(n, [0.0], aperture=aperture, plane="pupil").astype(complex))
        return p / p.max()

    for n in (40, 41):  # the disk centred on a pixel corner, then on a pixel centre
        for radius in np.linspace(1.5, 20.0, 38):
            area = weights(n, 2 * radius / n).sum()
            # Measured worst: 0.087/R at R = 2, 0.047/R for R > 4 (0.11/R at R = 1.25).
            assert abs(area / (math.pi * radius**2) - 1) < 0.15 / radius, (n, radius)
    n, radius = 41, 10.25
    w = weights(n, 2 * radius / n)
    u = np.arange(n) - (n - 1) / 2
    sub = (np.arange(100) + 0.5) / 100 - 0.5  # 100 x 100 samples per pixel
    ys = (u[:, None] + sub[None, :]) ** 2  # (n, 100) squared row coordinates
    inside = (ys[:, None, :, None] + ys[None, :, None, :]) <= radius**2
    exact = inside.mean(axis=(2, 3))
    # A 45° edge is the worst case of the linear ramp (1 − (½ + √2/2 − ¼) = 0.043); the
    # supersampled fraction is itself good to about 0.01: measured 0.036.
    assert np.abs(w - exact).max() < 0.06
    assert np.abs(w - exact).max() > 0.02  # the ramp is not the exact area (doc corrected)


def test_hermite_modes_follow_an_off_centre_primary():
    n, x0, y0, s = 64, 40.3, 25.0, 4.0
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s * s))
    m = probes.modes(g, 3, decay=0.5).astype(np.complex128)
    for k, hg in ((1, (xx - x0) * g), (2, (yy - y0) * g)):
        overlap = abs(np.vdot(hg, m[k])) / (np.linalg.norm(hg) * np.linalg.norm(m[k]))
        # Exact in exact arithmetic; complex64 rounding of the modes: measured 1 − 2e-16.
        assert overlap == pytest.approx(1.0, abs=1e-9), k


# --------------------------------------------------------------------------- objects


@pytest.mark.parametrize("index", [-0.4, -2.0])
def test_grf_power_spectrum_follows_its_index(index):
    from ptyfast.datagen.grf import gaussian_random_field

    n, realisations = 64, 300
    rs = np.random.RandomState(1)
    power = np.zeros((n, n))
    for _ in range(realisations):
        power += np.abs(np.fft.fft2(gaussian_random_field(n, index=index, rng=rs))) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    band = (k > 0) & (k < 0.5)  # inside the Nyquist circle, without k = 0 (zero power)
    slope = np.polyfit(np.log(k[band]), np.log(power[band]), 1)[0]
    # The fitted slope's standard deviation over seeds is 0.0069 at 100 realisations
    # (measured over 10 seeds), so about 0.004 here: 0.03 is over 7 sigma.
    assert slope == pytest.approx(index, abs=0.03)


# --------------------------------------------------------------------------- detector


def test_detector_psf_spreads_only_the_photons_that_reach_a_sensor():
    n, sigma, qe, gain, offset = 32, 1.2, 0.8, 2.0, 7.0
    yy, xx = np.mgrid[:60, :60]
    obj = (1 + 0.5 * np.sin(xx / 3.0) * np.cos(yy / 5.0)).astype(np.complex64)
    py, px = (np.mgrid[:n, :n] - n / 2) / (n / 5)
    probe = (np.exp(-(px**2 + py**2) / 2) * np.exp(0.4j * px)).astype(np.complex64)
    lam = noise_free(obj, probe)
    det = Detector(
        poisson=False,
        dtype="float64",
        psf_sigma_px=sigma,
        qe=qe,
        gain=gain,
        offset=offset,
        beamstop_radius_px=3.0,
        module_px=(20, 30),
        gap_px=(3, 4),
        n_modules=(2, 2),
        beam_px=(25, 36),
    )
    e = ptyfast.Experiment(obj, probe, scans.custom([0.0], [0.0]), det, 1e6)
    got = ptyfast.simulate(e, seed=0).diffraction[0]
    # Independent masks: the stop around [N//2, N//2]; the gaps of the tiled sensor.
    r, c = np.mgrid[:n, :n] - n // 2
    stop = np.hypot(r, c) < 3.0
    rows, cols = r + 25, c + 36  # detector pixel of each pattern pixel
    sensor = (
        (rows >= 0) & (rows < 43) & (rows % 23 < 20) & (cols >= 0) & (cols < 64) & (cols % 34 < 30)
    )
    assert stop.sum() == 25 and (~sensor).sum() > 100
    detected = qe * lam * (~stop & sensor)
    want = gain * scipy.ndimage.gaussian_filter(detected, sigma, mode="constant", truncate=4.0)
    want = np.where(sensor, want + offset, 0.0)
    # Same float64 operations in another order: measured 3e-14 absolute.
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # The stop's pixels read the counts the PSF spreads into them, not just the offset.
    assert (got[stop & sensor] > offset + 1e-3).all()


def test_detector_stages_apply_in_the_documented_order():
    n, qe, tau, t, sigma, dark, gain, offset = 16, 0.5, 2e-6, 1e-3, 0.9, 0.3, 1.5, 3.0
    yy, xx = np.mgrid[:40, :40]
    obj = (1 + 0.5 * np.sin(xx / 3.0) * np.cos(yy / 5.0)).astype(np.complex64)
    probe = probes.gaussian(n, 3.0)
    lam = noise_free(obj, probe) * 4.0  # a brighter dose: dead time matters
    e = ptyfast.Experiment(
        obj,
        probe,
        scans.custom([0.0], [0.0]),
        Detector(
            poisson=False,
            dtype="float64",
            qe=qe,
            dead_time_s=tau,
            exposure_s=t,
            psf_sigma_px=sigma,
            dark=dark,
            gain=gain,
            offset=offset,
        ),
        4e6,
    )
    got = ptyfast.simulate(e, seed=0).diffraction[0]
    assert (qe * lam * tau / t).max() > 1  # the counter is far from linear at the centre

    def blur(a: np.ndarray) -> np.ndarray:
        return scipy.ndimage.gaussian_filter(a, sigma, mode="constant", truncate=4.0)

    detected = qe * lam / (1 + qe * lam * tau / t)  # QE thins the photons the counter sees
    want = gain * (blur(detected) + dark) + offset
    # Float64 throughout; measured 1e-13 absolute on readings up to ~1e3.
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    wrong = gain * (blur(qe * lam / (1 + lam * tau / t)) + dark) + offset  # dead time first
    assert np.abs(got - wrong).max() > 1.0
    np.testing.assert_allclose(e.detector.readings_to_photons(got), blur(detected), atol=1e-9)


def test_read_noise_is_gaussian_and_dark_counts_are_poisson():
    m, n = 50, 64  # 204,800 pixels
    none = np.zeros((m, n, n))
    rn = 2.0
    z = K.detect(none, detector=Detector(read_noise=rn, dtype="float64"), seed=1)[0] / rn
    k = z.size
    # Each check fails by chance with probability below 1e-6 (fixed seed: never, in fact).
    assert scipy.stats.kstest(z.ravel(), "norm").pvalue > 1e-6
    # Excess kurtosis: standard error sqrt(24/k) = 0.011; a uniform law of the same variance
    # has -1.2, a sum of 12 uniforms -0.1.
    assert abs(scipy.stats.kurtosis(z.ravel())) < 5 * math.sqrt(24 / k)
    for a, b in ((z[:, :, :-1], z[:, :, 1:]), (z[:-1], z[1:])):  # pixel and pattern neighbours
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < 5 / math.sqrt(a.size), r
    dark = 0.7
    d = K.detect(none, detector=Detector(dark=dark, dtype="float64"), seed=2)[0].ravel()
    assert np.array_equal(d, np.round(d)) and d.min() >= 0
    observed = np.array([np.sum(d == v) for v in range(5)] + [np.sum(d >= 5)])
    pmf = scipy.stats.poisson.pmf(np.arange(5), dark)
    expected = k * np.append(pmf, 1 - pmf.sum())  # the last bin holds 142 expected counts
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-6

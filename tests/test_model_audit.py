"""Audit of the model layer's builders: probes, scans, objects, experiment, dataset.

Each test checks a builder against an independent computation written here (NumPy, an
analytic law) or a claim of its docstring or guide that the other model tests do not pin:
the disk's diameter law, the super-Gaussian's edge value, the zone plate's geometric
out-of-focus beam (size, central-stop shadow, wavefront curvature and its sign), the focus
shift of a Zernike tilt (sign and axis), the Fermat spiral's density, the concentric rings'
arcs and order, the families' value ranges, where a scan point lands in a patch (``x`` =
column), the seed contract of every seeded builder (a ``Generator`` gives exactly one draw,
the drawn integer is what the recipe records), and argument checks found missing by the audit
(each failed before its fix).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

import ptyfast
from ptyfast import Geometry, objects, probes, scans

# --------------------------------------------------------------------------- probes


@pytest.mark.parametrize(("N", "scale"), [(64, 0.7), (128, 0.7), (96, 0.5), (50, 1.1)])
def test_disk_is_the_lattice_disk_of_the_documented_diameter(N, scale):
    # The mask is the pixels within the diameter 2·σ·√(2 ln 2), σ = N/(scale·π²), of the
    # centre (N − 1)/2: w(x)·w(y) > 1/2 with a Gaussian w.
    sigma = N / (scale * math.pi**2)
    radius = sigma * math.sqrt(2.0 * math.log(2.0))
    k = np.arange(N) - (N - 1) / 2.0
    inside = np.hypot(k[None, :], k[:, None]) < radius
    profile = probes.disk_profile(N, scale=scale)
    # The documented recipe on that disk: a σ = 1 blur (reflecting edges), plus 1e-9.
    np.testing.assert_allclose(
        profile, gaussian_filter(inside.astype(float), 1.0, mode="reflect") + 1e-9, rtol=1e-12
    )
    if (N, scale) == (64, 0.7):
        assert inside.sum() == 376  # the docstring's counts
    if (N, scale) == (128, 0.7):
        assert inside.sum() == 1500
    if scale == 0.7:
        assert 2 * radius / N == pytest.approx(0.34, abs=0.005)  # "about 0.34 N"
    p = probes.disk(N, scale=scale).astype(np.complex128)
    np.testing.assert_allclose(np.abs(p), profile / np.sqrt(np.sum(profile**2)), rtol=1e-6)


@pytest.mark.parametrize("order", [0.5, 1.0, 2.0, 4.0, 10.0])
def test_super_gaussian_is_exp_minus_half_at_its_radius_for_every_order(order):
    N, R = 41, 12.0  # odd N: pixel 20 is the centre, r = 0 exactly
    p = np.abs(probes.super_gaussian(N, R, order=order).astype(np.complex128))
    k = np.arange(N) - 20.0
    r = np.hypot(k[None, :], k[:, None])
    want = np.exp(-0.5 * (r / R) ** (2 * order))
    np.testing.assert_allclose(p / p[20, 20], want, rtol=2e-6, atol=1e-7)
    for row, col in ((20, 32), (32, 20), (20, 8), (8, 20)):  # r = R on both axes
        assert p[row, col] / p[20, 20] == pytest.approx(math.exp(-0.5), rel=1e-6)


def _zone_plate_beam(central_stop, defocus_m):
    g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=256)
    diameter, zone = 40e-6, 60e-9
    f = diameter * zone / g.wavelength_m
    p = probes.fresnel_zone_plate(
        g, diameter, zone, central_stop=central_stop, defocus_m=defocus_m
    ).astype(np.complex128)
    x = (np.arange(g.N) - (g.N - 1) / 2.0) * g.object_pixel_m
    return g, p, x, diameter * abs(defocus_m) / (2.0 * f)


@pytest.mark.parametrize("defocus_m", [1e-3, -1e-3])
def test_zone_plate_out_of_focus_is_its_geometric_annulus_with_the_right_curvature(defocus_m):
    # Far from focus (Fresnel number ~10) the beam is the geometric shadow of the annular
    # pupil: radius D·|d|/(2f), a dark disk of radius ε·D·|d|/(2f) behind the central stop,
    # and a spherical wavefront centred on the focus: phase +π r²/(λ d), converging
    # (negative curvature) upstream of the focus, d < 0, diverging downstream
    # (the module's exp(i(kz − ωt)) convention).
    eps = 0.5
    g, p, x, r_geo = _zone_plate_beam(eps, defocus_m)
    intensity = np.abs(p) ** 2
    r = np.hypot(x[None, :], x[:, None])
    assert intensity.sum() == pytest.approx(1.0, rel=1e-5)
    assert intensity[r <= 1.1 * r_geo].sum() > 0.93
    # Without the stop this inner disk would hold ~(0.8·ε)² = 16 % of the power.
    assert intensity[r < 0.8 * eps * r_geo].sum() < 0.05
    row = p[g.N // 2]  # y = Δx/2: the curvature along x is the same
    lit = (np.abs(x) < 0.8 * r_geo) & (np.abs(x) > 1.2 * eps * r_geo)
    coeff = np.polyfit(x[lit], np.unwrap(np.angle(row))[lit], 2)[0]
    assert coeff == pytest.approx(math.pi / (g.wavelength_m * defocus_m), rel=0.03)


@pytest.mark.parametrize(("j", "axis"), [(2, 1), (3, 0)])
@pytest.mark.parametrize("shift", [4, -3])
def test_zernike_tilt_moves_the_focus_along_its_axis_by_the_paraxial_amount(j, axis, shift):
    # Pupil phase c·Z_2 = 2c·ν_x/ν_max: U(x) = ∫ P(ν) exp(2πi ν·x) dν becomes U0(x + s) with
    # s = 2c/(π·aperture) pixels (ν_max = aperture/(2Δx)), towards −x for c > 0. Z_2 is
    # the x (column) tilt, Z_3 the y (row) tilt: theta runs from x towards y.
    N, ap = 64, 0.25
    c = np.zeros(3)
    c[j - 1] = shift * math.pi * ap / 2.0
    tilted = probes.zernike(N, c, aperture=ap).astype(np.complex128)
    focus = probes.zernike(N, [0.0], aperture=ap).astype(np.complex128)
    s = abs(shift)
    lo, hi = (slice(None, -s), slice(s, None)) if shift > 0 else (slice(s, None), slice(None, -s))
    a = tilted[:, lo] if axis == 1 else tilted[lo, :]
    b = focus[:, hi] if axis == 1 else focus[hi, :]
    overlap = abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert overlap > 1 - 1e-9
    # And not along the other axis.
    other = focus[hi, :] if axis == 1 else focus[:, hi]
    wrong = tilted[lo, :] if axis == 1 else tilted[:, lo]
    assert abs(np.vdot(wrong, other)) / (np.linalg.norm(wrong) * np.linalg.norm(other)) < 0.9


def test_zernike_pupil_refuses_an_aperture_that_covers_no_pixel():
    # Even N: the nearest pixel centres are √2/2 from the disk's centre; the edge weight
    # clip(R + ½ − r, 0, 1) is zero there for R <= (√2 − 1)/2.
    for N in (16, 64):
        limit = (math.sqrt(2.0) - 1.0) / N
        with pytest.raises(ValueError, match=r"aperture must be > .* plane='pupil'.*got 1e-06"):
            probes.zernike(N, [0.0], aperture=1e-6, plane="pupil")
        with pytest.raises(ValueError, match="aperture"):
            probes.zernike(N, [0.0], aperture=limit * (1 - 1e-9), plane="pupil")
        p = probes.zernike(N, [0.0], aperture=limit * (1 + 1e-6), plane="pupil")
        lit = np.flatnonzero(np.abs(p) > 0)
        c = N // 2
        assert sorted(lit.tolist()) == sorted(
            [(c - 1) * N + c - 1, (c - 1) * N + c, c * N + c - 1, c * N + c]
        )
    # Odd N has a pixel at the centre: any aperture keeps it.
    assert np.count_nonzero(probes.zernike(15, [0.0], aperture=1e-6, plane="pupil")) == 1
    # In focus the pupil is sampled on a grid with a zero frequency: tiny apertures work.
    assert np.all(np.isfinite(probes.zernike(16, [0.0], aperture=1e-6)))


@pytest.mark.parametrize(
    ("rms", "exc"), [(math.nan, ValueError), (-1.0, ValueError), ("1", TypeError)]
)
def test_zernike_checks_rms_rad_with_explicit_coefficients_too(rms, exc):
    with pytest.raises(exc, match="rms_rad"):
        probes.zernike(16, [0.0, 0.1], rms_rad=rms)


def test_zernike_gives_a_generator_its_state_back_when_it_fails():
    g = np.random.default_rng(3)
    before = g.bit_generator.state
    with pytest.raises(ValueError, match="non-finite"):
        probes.zernike(16, seed=g, rms_rad=1e308)  # the phase overflows after the draw
    assert g.bit_generator.state == before


def test_modes_beyond_the_primary_support_are_refused_naming_n_before_drawing():
    point = np.zeros((8, 8))
    point[3, 4] = 1.0
    for method, seed in (("hermite", None), ("random", np.random.default_rng(7))):
        state = None if seed is None else seed.bit_generator.state
        with pytest.raises(ValueError, match=r"n must be <= .* primary \(1\), got 2"):
            probes.modes(point, 2, method=method, seed=seed)
        if seed is not None:
            assert seed.bit_generator.state == state  # nothing drawn
    with pytest.raises(ValueError, match=r"n must be <= .* primary \(4\), got 5"):
        probes.modes(np.ones((2, 2)), 5)
    # n = N² modes of a full primary exist (an orthonormal basis of the grid); the random
    # candidates find them (the monomials of 'hermite' do not: x² is constant on 2 × 2).
    m = probes.modes(np.ones((2, 2)), 4, decay=1.0, method="random", seed=1)
    m = m.astype(np.complex128)
    gram = np.einsum("iyx,jyx->ij", m.conj(), m)
    np.testing.assert_allclose(gram, np.eye(4) / 4, atol=1e-6)
    # A support that allows fewer modes than its pixels (a row: y·primary vanishes) still
    # fails late, and the message names n.
    row = np.zeros((8, 8))
    row[4, 1:7] = 1.0
    with pytest.raises(ValueError, match=r"n = 3 modes cannot be built"):
        probes.modes(row, 3)


def test_propagate_never_gains_power_and_distance_zero_is_a_copy():
    g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
    wide, narrow = probes.gaussian(32, 7.0), probes.gaussian(32, 1.5)
    for probe in (wide, narrow):
        for d in (1e-6, 1e-4, -3e-4, 1e-2, 0.05, -1.0):
            out = probes.propagate(probe, d, g).astype(np.complex128)
            assert float(np.sum(np.abs(out) ** 2)) <= 1.0 + 1e-6
    # Rayleigh range π·w0²/λ ≈ 1.5 mm (w0 = √2·σ·Δx): at 50 mm the beam is ~9 µm wide, more
    # than twice the 4 µm window, and what left the window is lost.
    far = probes.propagate(narrow, 0.05, g).astype(np.complex128)
    assert float(np.sum(np.abs(far) ** 2)) < 0.25
    same = probes.propagate(wide, 0.0, g)
    np.testing.assert_array_equal(same, wide)
    assert not np.may_share_memory(same, wide)


# --------------------------------------------------------------------------- scans


@pytest.mark.parametrize("n", [400, 3000])
def test_fermat_spiral_density_and_neighbour_distance(n):
    step = 2.5
    s = scans.fermat_spiral(n, step).nominal
    r = np.hypot(s[:, 0], s[:, 1])
    assert r.max() == pytest.approx(step * math.sqrt(n - 1), rel=1e-12)
    # Uniform density: the disk of radius R holds R²/step² positions (area π·step² each).
    for frac in (0.25, 0.5, 0.9):
        R = frac * r.max()
        assert np.sum(r <= R) == pytest.approx((R / step) ** 2, abs=1.5)
    # Successive angles differ by the golden angle π(3 − √5).
    dtheta = np.diff(np.arctan2(s[1:, 1], s[1:, 0])) % (2 * math.pi)
    np.testing.assert_allclose(dtheta, math.pi * (3 - math.sqrt(5)), atol=1e-9)
    # "about 1.7·step_px" between nearest neighbours, uniform over the pattern.
    d, _ = cKDTree(s).query(s, k=2)
    nn = d[2:, 1] / step  # position 0 and 1 are the closest pair
    assert nn.mean() == pytest.approx(1.7, abs=0.05)
    assert nn.min() > 1.3 and nn.max() < 1.85


@pytest.mark.parametrize(("n_rings", "n_first"), [(3, 6), (4, 5), (2, 1)])
def test_concentric_rings_arcs_and_counter_clockwise_order(n_rings, n_first):
    step = 1.5
    s = scans.concentric(n_rings, step, n_first=n_first).nominal
    assert len(s) == 1 + n_first * n_rings * (n_rings + 1) // 2
    np.testing.assert_array_equal(s[0], [0.0, 0.0])
    start = 1
    for j in range(1, n_rings + 1):
        ring = s[start : start + n_first * j]
        start += n_first * j
        np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), j * step, rtol=1e-12)
        assert ring[0, 0] == pytest.approx(j * step) and ring[0, 1] == pytest.approx(0.0)
        phi = np.unwrap(np.arctan2(ring[:, 1], ring[:, 0]))
        # Arc length between neighbours 2π·step/n_first on every ring, from +x towards +y.
        np.testing.assert_allclose(np.diff(phi) * j * step, 2 * math.pi * step / n_first)
    assert start == len(s)


def test_raster_records_a_numpy_step_y_as_json():
    s = scans.raster(2, 3, 2.0, step_y_px=np.float32(2.5))
    rec = json.loads(json.dumps(s.to_dict()))
    assert rec["params"]["step_y_px"] == 2.5
    t = scans.Scan.from_dict(rec)
    np.testing.assert_array_equal(t.nominal, s.nominal)
    np.testing.assert_array_equal(np.unique(s.nominal[:, 1]), [-1.25, 1.25])
    # And through an experiment's provenance (it is JSON).
    e = ptyfast.Experiment(np.ones((24, 24)), probes.gaussian(8, 2.0), s, photons=1e3)
    ds = ptyfast.simulate(e, seed=1)
    assert json.loads(json.dumps(ds.provenance))


def test_probe_recipes_record_numpy_scalars_inside_lists_as_json():
    r = probes.recipe(
        "zernike",
        N=16,
        coefficients=[np.float32(0.0), np.float32(0.25)],
        operations=[{"op": "modes", "n": 2, "weights": [np.float32(0.75), np.float32(0.25)]}],
    )
    back = json.loads(json.dumps(r))
    assert back["params"]["coefficients"] == [0.0, 0.25]
    assert back["operations"][0]["weights"] == [0.75, 0.25]
    np.testing.assert_array_equal(probes.build(back), probes.build(r))
    e = ptyfast.Experiment(np.ones((24, 24)), r, scans.raster(2, 2, 2.0), photons=1e3)
    assert json.loads(json.dumps(ptyfast.simulate(e, seed=1).provenance))


@pytest.mark.parametrize(("h", "w", "N"), [(48, 40, 16), (47, 41, 15)])
def test_a_scan_point_is_patch_pixel_n_over_2_with_x_the_column(h, w, N):
    # Integer absolute positions: the patch is the object's slice, exactly, whose pixel
    # (N//2, N//2) is object[y, x] (Dataset's docstring), x along columns, y along rows.
    rng = np.random.default_rng(0)
    obj = (rng.random((h, w)) + 0.5) * np.exp(1j * rng.random((h, w)))
    rel_x = [0.0, 5.0, 0.0, -3.0, 7.0]
    rel_y = [0.0, 0.0, 6.0, -4.0, 2.0]
    e = ptyfast.Experiment(obj, probes.gaussian(N, 3.0), scans.custom(rel_x, rel_y), photons=1e4)
    ds = ptyfast.simulate(e, seed=0, patches=True)
    delta = 0.5 if N % 2 == 0 else 0.0  # δ = N//2 − (N − 1)/2
    cx, cy = (w - 1) / 2 + delta, (h - 1) / 2 + delta
    np.testing.assert_array_equal(ds.positions_true, np.c_[np.add(rel_x, cx), np.add(rel_y, cy)])
    for i, (x, y) in enumerate(ds.positions_true.astype(int)):
        want = obj[y - N // 2 : y - N // 2 + N, x - N // 2 : x - N // 2 + N]
        np.testing.assert_allclose(ds.patches[i], want, rtol=1e-6, atol=1e-7)
        assert ds.patches[i][N // 2, N // 2] == pytest.approx(obj[y, x], rel=1e-6)


def test_true_positions_pushed_out_by_errors_are_refused_naming_them():
    obj = np.ones((32, 32))
    inside = scans.raster(2, 2, 4.0)
    ptyfast.Experiment(obj, probes.gaussian(8, 2.0), inside, photons=1e3)
    for moved in (inside.affine(np.eye(2), offset_px=(15.0, 0.0)), inside.drift((0.0, 4.0))):
        with pytest.raises(ValueError, match=r"scan leaves the object: true position"):
            ptyfast.Experiment(obj, probes.gaussian(8, 2.0), moved, photons=1e3)


# --------------------------------------------------------------------------- objects


@pytest.mark.parametrize("family", ["lines", "grf", "points", "dead_leaves"])
def test_families_map_their_texture_to_the_documented_ranges(family):
    a, p = (0.9, 0.3), (-0.4, 1.1)
    o = getattr(objects, family)((40, 56), seed=3, amplitude=a, phase=p).astype(np.complex128)
    amp, ph = np.abs(o), np.angle(o)
    t_amp = (amp - a[0]) / (a[1] - a[0])
    t_ph = (ph - p[0]) / (p[1] - p[0])
    # One texture behind both (the linear mapping), within [0, 1].
    np.testing.assert_allclose(t_amp, t_ph, atol=2e-6)
    assert t_amp.min() >= -1e-6 and t_amp.max() <= 1 + 1e-6
    if family == "dead_leaves":
        # Gray levels used as is: uniform in [0, 1), piecewise constant over the leaves.
        assert 0.0 < t_amp.mean() < 1.0 and len(np.unique(o)) < o.size / 4
    else:
        # Min-max normalised: both ends are reached.
        assert t_amp.min() == pytest.approx(0.0, abs=1e-6)
        assert t_amp.max() == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- seeds


def _first_draw(g, bits):
    return int(g.integers(0, 2**bits, dtype=np.uint64))


SEEDED = {
    "random_uniform": (
        64,
        lambda s: scans.random_uniform(30, 10.0, seed=s),
        lambda out: out.to_dict()["params"]["seed"],
    ),
    "jitter": (
        64,
        lambda s: scans.raster(3, 3, 2.0).jitter(0.5, seed=s),
        lambda out: out.to_dict()["errors"][0]["seed"],
    ),
    "drift": (
        64,
        lambda s: scans.raster(3, 3, 2.0).drift(random_walk_px=0.3, seed=s),
        lambda out: out.to_dict()["errors"][0]["seed"],
    ),
    "lines": (32, lambda s: objects.lines(16, seed=s, n_lines=20), None),
    "grf": (32, lambda s: objects.grf(16, seed=s), None),
    "points": (32, lambda s: objects.points(16, seed=s), None),
    "dead_leaves": (64, lambda s: objects.dead_leaves(16, seed=s), None),
    "random_zernike_coefficients": (
        64,
        lambda s: probes.random_zernike_coefficients(seed=s),
        None,
    ),
    "zernike": (64, lambda s: probes.zernike(16, seed=s), None),
    "modes": (
        64,
        lambda s: probes.modes(probes.gaussian(16, 3.0), 3, method="random", seed=s),
        None,
    ),
}


def _same(a, b):
    if isinstance(a, scans.Scan):
        return np.array_equal(a.true, b.true) and np.array_equal(a.nominal, b.nominal)
    return np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_a_generator_gives_one_draw_which_is_the_integer_seed_recorded(name):
    bits, build, recorded = SEEDED[name]
    g = np.random.default_rng(2024)
    twin = np.random.default_rng(2024)
    out = build(g)
    seed = _first_draw(twin, bits)
    # Exactly one draw: g and twin are in the same state now.
    assert g.bit_generator.state == twin.bit_generator.state
    assert _same(out, build(seed))
    assert _same(build(seed), build(seed))  # an int reproduces bit for bit
    if recorded is not None:
        assert recorded(out) == seed
        assert _same(scans.Scan.from_dict(json.loads(json.dumps(out.to_dict()))), out)
    # seed=None draws fresh entropy: two calls differ.
    assert not _same(build(None), build(None))


@pytest.mark.parametrize(
    ("family", "params", "bits"),
    [
        ("lines", {"n_lines": 20}, 32),
        ("grf", {}, 32),
        ("points", {}, 32),
        ("dead_leaves", {}, 64),
    ],
)
def test_object_recipes_record_the_draw_of_a_generator(family, params, bits):
    g, twin = np.random.default_rng(5), np.random.default_rng(5)
    r = objects.recipe(family, shape=16, seed=g, **params)
    assert r["params"]["seed"] == _first_draw(twin, bits)
    assert g.bit_generator.state == twin.bit_generator.state
    np.testing.assert_array_equal(
        objects.build(json.loads(json.dumps(r))),
        getattr(objects, family)(16, seed=r["params"]["seed"], **params),
    )
    fresh = objects.recipe(family, shape=16, seed=None, **params)["params"]["seed"]
    assert isinstance(fresh, int) and 0 <= fresh < 2**bits


def test_probe_recipes_record_the_draws_of_generators():
    g, twin = np.random.default_rng(9), np.random.default_rng(9)
    r = probes.recipe(
        "zernike",
        N=16,
        seed=g,
        operations=[{"op": "modes", "n": 2, "method": "random", "seed": g}],
    )
    assert r["params"]["seed"] == _first_draw(twin, 64)
    assert r["operations"][0]["seed"] == _first_draw(twin, 64)
    assert g.bit_generator.state == twin.bit_generator.state
    want = probes.modes(
        probes.zernike(16, seed=r["params"]["seed"]),
        2,
        method="random",
        seed=r["operations"][0]["seed"],
    )
    np.testing.assert_array_equal(probes.build(json.loads(json.dumps(r))), probes.normalize(want))


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    ("family", "params", "exc", "word"),
    [
        ("dead_leaves", {"alpha": math.nan}, ValueError, "alpha"),
        ("dead_leaves", {"radius_min_px": 0.1}, ValueError, "radius_min_px"),
        ("dead_leaves", {"radius_max_px": 1.0}, ValueError, "radius_max_px"),
        ("points", {"sigma_px": 17.0}, ValueError, "sigma_px"),
        ("lines", {"n_lines": True}, TypeError, "n_lines"),
        ("lines", {"shape": objects.MAX_SIDE // 2 + 1}, ValueError, r"shape\[0\]"),
        ("grf", {"phase": (0.0, math.inf)}, ValueError, r"phase\[1\]"),
    ],
)
def test_object_recipes_refuse_what_the_family_refuses_before_drawing(family, params, exc, word):
    # "Raises ... a parameter the family rejects": at once, not when the recipe is built, and
    # before the seed is resolved (a Generator keeps its state).
    kwargs = {"shape": 16, **params}
    with pytest.raises(exc, match=word):
        getattr(objects, family)(**kwargs, seed=1)
    g = np.random.default_rng(4)
    state = g.bit_generator.state
    with pytest.raises(exc, match=word):
        objects.recipe(family, seed=g, **kwargs)
    assert g.bit_generator.state == state


def test_probe_recipes_refuse_seeds_that_nothing_draws_before_resolving_any():
    g = np.random.default_rng(8)
    state = g.bit_generator.state
    with pytest.raises(ValueError, match="coefficients or seed"):
        probes.recipe("zernike", N=16, coefficients=[0.0, 0.1], seed=g)
    with pytest.raises(ValueError, match=r"operations\[0\] \(modes\): seed is used only"):
        probes.recipe(
            "gaussian", N=16, sigma_px=3.0, operations=[{"op": "modes", "n": 2, "seed": g}]
        )
    with pytest.raises(ValueError, match=r"operations\[1\]\['op'\]"):
        probes.recipe("zernike", N=16, seed=g, operations=[{"op": "modes", "n": 2}, {"op": "x"}])
    assert g.bit_generator.state == state


def test_scan_errors_give_a_generator_its_state_back_when_positions_overflow():
    big = scans.custom([1.7e308] * 20, [0.0] * 20)
    g = np.random.default_rng(6)
    state = g.bit_generator.state
    with pytest.raises(ValueError, match="overflow float64"):
        big.jitter(1e308, seed=g)
    with pytest.raises(ValueError, match="overflow float64"):
        big.drift(random_walk_px=1e308, seed=g)
    assert g.bit_generator.state == state
    # A call that succeeds takes exactly one draw, as documented.
    twin = np.random.default_rng(6)
    s = scans.raster(2, 2, 1.0).jitter(0.1, seed=g)
    assert s.errors[0]["seed"] == int(twin.integers(0, 2**64, dtype=np.uint64))
    assert g.bit_generator.state == twin.bit_generator.state


def _numpy_scalar_scans():
    f32, i64 = np.float32, np.int64
    built = [
        scans.raster(i64(2), i64(3), f32(2.0), snake=np.bool_(True), step_y_px=f32(1.5)),
        scans.hexagonal(i64(2), i64(2), f32(2.0), snake=np.bool_(False)),
        scans.fermat_spiral(i64(5), f32(1.5)),
        scans.concentric(i64(1), f32(2.0), n_first=i64(4)),
        scans.lissajous(i64(6), f32(3.0), f32(2.0), freq_x=i64(2), freq_y=i64(1), phase=f32(0.3)),
        scans.random_uniform(i64(4), f32(4.0), f32(3.0), seed=np.uint64(5)),
        scans.custom(
            np.arange(3, dtype=np.float32),
            np.arange(3, dtype=np.int16),
            true_x=np.arange(3, dtype=np.float32),
            true_y=np.zeros(3, np.float16),
        ),
    ]
    return [
        s.jitter(f32(0.1), seed=i64(3))
        .drift((f32(0.1), i64(0)), random_walk_px=f32(0.1), seed=np.uint32(4))
        .affine(np.eye(2, dtype=np.float32), offset_px=(f32(0.5), i64(1)))
        for s in built
    ]


def test_numpy_scalars_everywhere_give_json_provenance_that_replays_bit_for_bit():
    # NumPy scalars (float32, int64, unsigned seeds) are numbers to every builder; what is
    # recorded must be plain JSON (provenance is written with allow_nan=False) and rebuild
    # the same bits.
    f32, i64 = np.float32, np.int64
    snake = _numpy_scalar_scans()[0]
    assert snake.nominal[:3, 0].tolist() == [-2.0, 0.0, 2.0]
    assert snake.nominal[3:6, 0].tolist() == [2.0, 0.0, -2.0]  # the odd row reversed
    for s in _numpy_scalar_scans():
        rec = json.loads(json.dumps(s.to_dict(), allow_nan=False))
        t = scans.Scan.from_dict(rec)
        np.testing.assert_array_equal(t.true, s.true)
        np.testing.assert_array_equal(t.nominal, s.nominal)
    g = Geometry(
        energy_eV=f32(8000.0), distance_m=f32(2.0), detector_pixel_m=np.float64(75e-6), N=i64(16)
    )
    cases = [
        (
            objects.recipe(
                "lines",
                shape=(i64(32), i64(30)),
                n_lines=i64(10),
                seed=np.uint32(1),
                amplitude=(f32(1), f32(0.5)),
                phase=np.array([0, 1], np.float32),
            ),
            probes.recipe(
                "fresnel_zone_plate",
                geometry=g,
                diameter_m=f32(20e-6),
                outer_zone_m=f32(300e-9),
                central_stop=f32(0.2),
                defocus_m=f32(1e-5),
            ),
            g,
        ),
        (
            objects.recipe("points", shape=i64(32), sigma_px=f32(1.5), seed=i64(1)),
            probes.recipe(
                "zernike",
                N=i64(16),
                coefficients=[f32(0.0), f32(0.2)],
                aperture=f32(0.3),
                operations=[{"op": "modes", "n": i64(2), "weights": [f32(0.75), f32(0.25)]}],
            ),
            None,
        ),
        (
            objects.recipe(
                "dead_leaves",
                shape=i64(32),
                radius_min_px=f32(1.0),
                radius_max_px=i64(5),
                alpha=f32(2.5),
                seed=i64(2),
                amplitude=None,
            ),
            probes.recipe(
                "zernike",
                N=i64(16),
                plane="pupil",
                seed=i64(3),
                rms_rad=f32(0.5),
                operations=[
                    {"op": "propagate", "distance_m": f32(1e-6), "geometry": g},
                    {
                        "op": "modes",
                        "n": i64(2),
                        "decay": f32(0.5),
                        "method": "random",
                        "seed": np.uint64(9),
                    },
                ],
            ),
            g,
        ),
    ]
    for obj, probe, geometry in cases:
        e = ptyfast.Experiment(
            obj, probe, _numpy_scalar_scans()[0], photons=f32(1e4), geometry=geometry
        )
        ds = ptyfast.simulate(e, seed=np.uint64(3))
        record = json.loads(json.dumps(ds.provenance, allow_nan=False))
        again = ptyfast.replay(record)
        np.testing.assert_array_equal(again.diffraction, ds.diffraction)
        np.testing.assert_array_equal(again.positions_true, ds.positions_true)


@pytest.mark.parametrize("seed", [0, 3])
def test_random_zernike_rms_rad_is_the_rms_phase_over_the_pupil(seed):
    # "with Noll normalisation that is the RMS phase over the pupil, piston excluded": the
    # phase of the pupil-plane probe over the fully lit pixels has mean 0 and RMS rms_rad
    # (the edge pixels, where |Z_j| is largest, are left out: slightly below).
    p = probes.zernike(256, seed=seed, rms_rad=0.3, aperture=0.9, plane="pupil")
    a = np.abs(p.astype(np.complex128))
    lit = a >= a.max() * (1 - 1e-6)
    assert lit.sum() == pytest.approx(math.pi * (0.9 * 128 - 0.5) ** 2, rel=0.01)
    phase = np.angle(p[lit])
    assert abs(float(phase.mean())) < 0.01
    assert float(np.sqrt(np.mean(phase**2))) == pytest.approx(0.3, rel=0.03)

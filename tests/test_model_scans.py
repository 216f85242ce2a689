"""ptyfast.scans: scan geometry, position errors, recipes and placement.

Each builder is checked against positions computed here independently (loops, lattice
facts); jitter and drift statistics within 5σ of their estimators (fixed seeds); recipes
through JSON rebuild scans bit for bit.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

import ptyfast
from ptyfast import Geometry, scans
from ptyfast.scans import Scan


def test_module_aliases_are_one_module():
    import ptyfast.model.scans as model_scans
    import ptyfast.scans as alias
    from ptyfast.scans import raster

    assert ptyfast.scans is model_scans is alias and raster is model_scans.raster


# --------------------------------------------------------------------------- builders


@pytest.mark.parametrize("snake", [False, True])
def test_raster_steps_and_order(snake):
    rows, cols, step, step_y = 4, 5, 3.0, 2.5
    s = scans.raster(rows, cols, step, snake=snake, step_y_px=step_y)
    expect = []
    for r in range(rows):
        cs = range(cols - 1, -1, -1) if (snake and r % 2) else range(cols)
        for c in cs:
            expect.append(((c - 2) * step, (r - 1.5) * step_y))
    assert np.array_equal(s.nominal, np.array(expect))
    assert np.array_equal(s.true, s.nominal)
    d = np.diff(s.nominal, axis=0)
    along = d[np.abs(d[:, 1]) == 0]
    assert np.all(np.abs(along[:, 0]) == step)
    assert np.allclose(s.nominal.mean(axis=0), 0)
    if snake:  # consecutive positions are always neighbours: no fly-back
        assert np.all(np.hypot(*d.T) <= max(step, step_y))


def test_hexagonal_spacing():
    step = 2.0
    s = scans.hexagonal(6, 7, step)
    p = s.nominal
    dist, idx = cKDTree(p).query(p, k=7)
    assert np.allclose(dist[:, 1], step)  # every nearest neighbour at step
    interior = (np.abs(p[:, 0]) < 4) & (np.abs(p[:, 1]) < 3)
    assert interior.sum() >= 6
    assert np.allclose(dist[interior, 1:7], step)  # six of them inside
    lo, hi = p.min(axis=0), p.max(axis=0)
    assert np.allclose(lo + hi, 0)  # bounding box centred
    rows = np.unique(np.round(p[:, 1], 9))
    assert np.allclose(np.diff(rows), step * math.sqrt(3) / 2)


def test_fermat_spiral_radii_and_angles():
    n, step = 200, 1.5
    s = scans.fermat_spiral(n, step)
    x, y = s.nominal.T
    k = np.arange(n)
    np.testing.assert_allclose(np.hypot(x, y), step * np.sqrt(k), rtol=1e-12, atol=1e-12)
    golden = math.pi * (3 - math.sqrt(5))
    dtheta = np.angle(np.exp(1j * (np.arctan2(y[2:], x[2:]) - np.arctan2(y[1:-1], x[1:-1]))))
    np.testing.assert_allclose(dtheta, golden, atol=1e-9)
    # area per point π·step²: the disk of radius r_k holds k points
    r = np.hypot(x, y)
    assert np.sum(r < step * math.sqrt(100) - 1e-9) == 100


def test_concentric_rings():
    s = scans.concentric(3, 4.0, n_first=5)
    assert len(s) == 1 + 5 * (1 + 2 + 3)
    r = np.hypot(*s.nominal.T)
    assert r[0] == 0
    start = 1
    for j in (1, 2, 3):
        ring = s.nominal[start : start + 5 * j]
        np.testing.assert_allclose(np.hypot(*ring.T), 4.0 * j, rtol=1e-12)
        gaps = np.hypot(*np.diff(np.vstack([ring, ring[:1]]), axis=0).T)
        np.testing.assert_allclose(gaps, 2 * 4.0 * j * math.sin(math.pi / (5 * j)), rtol=1e-9)
        start += 5 * j


def test_lissajous_formula():
    s = scans.lissajous(50, 10.0, 6.0, freq_x=3, freq_y=4, phase=0.3)
    t = 2 * np.pi * np.arange(50) / 50
    np.testing.assert_allclose(s.nominal[:, 0], 10 * np.sin(3 * t + 0.3), atol=1e-12)
    np.testing.assert_allclose(s.nominal[:, 1], 6 * np.sin(4 * t), atol=1e-12)


def test_random_uniform_statistics_and_draw_order():
    n, w, h = 4000, 30.0, 12.0
    s = scans.random_uniform(n, w, h, seed=5)
    x, y = s.nominal.T
    assert np.all(np.abs(x) <= w / 2) and np.all(np.abs(y) <= h / 2)
    for v, width in ((x, w), (y, h)):
        sd = width / math.sqrt(12)
        assert abs(v.mean()) < 5 * sd / math.sqrt(n)
        # sd of the sample std: σ·sqrt((κ − 1)/(4n)), kurtosis κ = 1.8 for a uniform
        assert abs(v.std() - sd) < 5 * sd * math.sqrt(0.8 / (4 * n))
    rng = np.random.Generator(np.random.PCG64(5))
    assert np.array_equal(x, rng.uniform(-w / 2, w / 2, n))
    assert np.array_equal(y, rng.uniform(-h / 2, h / 2, n))


def test_custom_positions_and_true_positions():
    s = scans.custom([0.0, 1.5, -2.0], [1.0, 2.0, 3.0])
    assert s.nominal.tolist() == [[0.0, 1.0], [1.5, 2.0], [-2.0, 3.0]]
    t = scans.custom([0, 1], [0, 1], true_x=[0.1, 1.1], true_y=[0.0, 0.9])
    assert t.true.tolist() == [[0.1, 0.0], [1.1, 0.9]] and t.nominal.tolist() == [[0, 0], [1, 1]]
    u = Scan(np.array([[1.0, 2.0]]), np.array([[1.5, 2.0]]))
    assert u.builder == "custom" and u.true.tolist() == [[1.5, 2.0]]


# --------------------------------------------------------------------------- errors


def test_jitter_statistics_nominal_unchanged():
    base = scans.raster(50, 80, 2.0)
    sigma = 0.4
    s = base.jitter(sigma, seed=123)
    assert np.array_equal(s.nominal, base.nominal)
    d = (s.true - s.nominal).ravel()
    n = d.size
    assert abs(d.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(d.std() - sigma) < 5 * sigma / math.sqrt(2 * n)
    expect = np.random.Generator(np.random.PCG64(123)).normal(0, sigma, (4000, 2))
    assert np.array_equal(s.true, base.nominal + expect)
    assert s.errors == ({"op": "jitter", "sigma_px": sigma, "seed": 123},)


def test_drift_linear_and_random_walk():
    base = scans.fermat_spiral(3000, 1.0)
    s = base.drift((0.01, -0.02))
    k = np.arange(3000)
    np.testing.assert_allclose(s.true - s.nominal, np.stack([0.01 * k, -0.02 * k], 1), atol=1e-12)
    walk = 0.05
    t = base.drift((0.0, 0.0), random_walk_px=walk, seed=8)
    w = t.true - t.nominal
    assert np.all(w[0] == 0)
    steps = np.diff(w, axis=0).ravel()
    n = steps.size
    assert abs(steps.mean()) < 5 * walk / math.sqrt(n)
    assert abs(steps.std() - walk) < 5 * walk / math.sqrt(2 * n)
    assert np.array_equal(t.nominal, base.nominal)


def test_affine_and_composition():
    base = scans.raster(3, 3, 5.0)
    theta = 0.1
    A = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    s = base.jitter(0.2, seed=1).affine(A, offset_px=(0.5, -1.0))
    j = base.jitter(0.2, seed=1).true
    expect = np.einsum("ij,mj->mi", np.array(A), j) + [0.5, -1.0]
    np.testing.assert_allclose(s.true, expect, atol=1e-12)
    assert np.array_equal(s.nominal, base.nominal)
    assert [e["op"] for e in s.errors] == ["jitter", "affine"]
    assert "jitter, affine" in repr(s)


def test_scans_are_immutable():
    s = scans.raster(2, 2, 1.0)
    with pytest.raises(ValueError):
        s.true[0, 0] = 5.0
    with pytest.raises(ValueError):
        s.nominal[0, 0] = 5.0
    with pytest.raises(AttributeError):
        s.extra = 1
    x = np.array([0.0, 1.0])
    c = scans.custom(x, x)
    x[0] = 9.0
    assert c.nominal[0, 0] == 0.0


def test_metres():
    g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=64)
    s = scans.raster(2, 2, 10.0).drift((1.0, 0.0))
    assert np.array_equal(s.nominal_m(g), s.nominal * g.object_pixel_m)
    assert np.array_equal(s.true_m(g), s.true * g.object_pixel_m)
    with pytest.raises(TypeError, match="geometry"):
        s.true_m(1.0)


# --------------------------------------------------------------------------- recipes


RECIPES = [
    lambda: scans.raster(3, 4, 2.5, snake=True),
    lambda: scans.raster(2, 2, 1.0, step_y_px=3.0),
    lambda: scans.hexagonal(3, 3, 2.0, snake=True),
    lambda: scans.fermat_spiral(40, 1.7),
    lambda: scans.concentric(2, 3.0, n_first=7),
    lambda: scans.lissajous(30, 5.0, freq_x=5, freq_y=4, phase=0.1),
    lambda: scans.random_uniform(25, 10.0, 4.0, seed=None),
    lambda: scans.random_uniform(25, 10.0, seed=np.random.default_rng(3)),
    lambda: scans.custom(np.linspace(-1, 1, 7) / 3, np.arange(7) * 0.1),
    lambda: scans.custom([0.1, 0.2], [0.3, 0.4], true_x=[0.0, 1 / 3], true_y=[2 / 3, 0.0]),
    lambda: Scan(np.array([[1 / 7, -2 / 3]])),
]


@pytest.mark.parametrize("make", RECIPES)
def test_recipe_round_trip_bit_for_bit(make):
    s = make().jitter(0.3).drift((0.01, 0.02), random_walk_px=0.1).affine([[1.01, 0.003], [0, 1]])
    s = s.drift((1e-3, 0.0))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["format"] == "ptyfast.scan" and d["version"] == 1
    assert all(isinstance(e.get("seed"), (int, type(None))) for e in d["errors"])
    t = Scan.from_dict(d)
    assert np.array_equal(t.nominal, s.nominal) and np.array_equal(t.true, s.true)
    assert t.to_dict() == s.to_dict()


def test_fresh_seeds_are_recorded():
    a = scans.raster(2, 2, 1.0).jitter(1.0)
    b = scans.raster(2, 2, 1.0).jitter(1.0)
    assert not np.array_equal(a.true, b.true)
    seed = a.errors[0]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**64
    assert np.array_equal(scans.raster(2, 2, 1.0).jitter(1.0, seed=seed).true, a.true)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(builder="spiral"), "builder"),
        (lambda d: d.pop("errors"), "keys"),
        (lambda d: d["params"].pop("rows"), r"missing \['rows'\]"),
        (lambda d: d["params"].update(extra=1), r"unknown \['extra'\]"),
        (lambda d: d["params"].update(rows=0), "rows must be >= 1"),
        (lambda d: d["errors"].append({"op": "shake"}), "op"),
        (lambda d: d["errors"].append({"op": "jitter", "sigma_px": 1.0, "seed": None}), "seed"),
        (lambda d: d["errors"].append({"op": "jitter", "sigma_px": 1.0}), "missing"),
        (lambda: None, "dict"),
    ],
)
def test_from_dict_errors(mutate, match):
    if mutate.__code__.co_argcount == 0:
        with pytest.raises(ValueError, match=match):
            Scan.from_dict([1, 2])
        return
    d = scans.raster(2, 3, 1.0).to_dict()
    mutate(d)
    with pytest.raises(ValueError, match=match):
        Scan.from_dict(d)


# --------------------------------------------------------------------------- placement


@pytest.mark.parametrize("N", [16, 15])
def test_placement_formula(N):
    H, W = 60, 80
    s = scans.raster(2, 3, 4.0)
    nominal, true = s.placed((H, W), N)
    delta = N // 2 - (N - 1) / 2
    expect = s.nominal + [(W - 1) / 2 + delta, (H - 1) / 2 + delta]
    assert np.array_equal(nominal, expect) and np.array_equal(true, expect)
    # the probe centre (N−1)/2 of the relative origin lands on the object centre
    origin = scans.custom([0.0], [0.0]).placed((H, W), N)[1][0]
    assert origin[0] - N // 2 + (N - 1) / 2 == (W - 1) / 2
    assert origin[1] - N // 2 + (N - 1) / 2 == (H - 1) / 2
    moved = scans.custom([0.0], [0.0]).placed((H, W), N, center=(20.0, 30.0))[1][0]
    assert moved.tolist() == [20.0 + delta, 30.0 + delta]


def test_placement_limits_are_the_patch_inside_the_object():
    H = W = 64
    N = 16
    lo, hi = N // 2, W - N + N // 2
    cx = scans.placement_offset((H, W), N)[0]
    ok = scans.custom([lo - cx, hi - cx], [0.0, 0.0])
    nominal, _ = ok.placed((H, W), N)
    cols = nominal[:, 0:1] + np.arange(N) - N // 2
    assert cols.min() == 0 and cols.max() == W - 1
    bad = scans.custom([hi - cx + 0.01], [0.0])
    with pytest.raises(ValueError, match=r"true position 0 at \(x, y\) = \(56\.01"):
        bad.placed((H, W), N)
    drifted = scans.raster(1, 3, 20.0).drift((5.0, 0.0))
    with pytest.raises(ValueError, match="true position 2"):
        drifted.placed((H, W), N)
    off_nominal = scans.custom([hi - cx + 1.0], [0.0], true_x=[0.0], true_y=[0.0])
    with pytest.raises(ValueError, match="nominal position 0"):
        off_nominal.placed((H, W), N)


@pytest.mark.parametrize(
    "args,exc,match",
    [
        (((64, 64), 65), ValueError, "N must be <= the object's smaller side 64"),
        (((64,), 16), TypeError, "object_shape"),
        (((64, 0), 16), ValueError, r"object_shape\[1\]"),
        (((64, 64), 0), ValueError, "N must be >= 1"),
        (((64, 64), 16, (np.nan, 1.0)), ValueError, r"center\[0\]"),
    ],
)
def test_placement_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        if len(args) == 3:
            scans.raster(1, 1, 1.0).placed(args[0], args[1], center=args[2])
        else:
            scans.raster(1, 1, 1.0).placed(*args)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: scans.raster(0, 3, 1.0), ValueError, "rows must be >= 1"),
        (lambda: scans.raster(3, 3.0, 1.0), TypeError, "cols must be an integer"),
        (lambda: scans.raster(3, 3, -1.0), ValueError, "step_px must be a positive"),
        (lambda: scans.raster(3, 3, 1.0, snake=1), TypeError, "snake must be a bool"),
        (lambda: scans.raster(3, 3, 1.0, step_y_px=0), ValueError, "step_y_px"),
        (lambda: scans.raster(10**5, 10**5, 1.0), ValueError, "rows \\* cols"),
        (lambda: scans.hexagonal(2, 2, np.inf), ValueError, "step_px must be finite"),
        (lambda: scans.fermat_spiral(0, 1.0), ValueError, "n must be >= 1"),
        (lambda: scans.fermat_spiral(10, "1"), TypeError, "step_px must be a real"),
        (lambda: scans.concentric(-1, 1.0), ValueError, "n_rings must be >= 0"),
        (lambda: scans.concentric(2, 1.0, n_first=0), ValueError, "n_first"),
        (lambda: scans.lissajous(10, 0.0), ValueError, "amplitude_x_px"),
        (lambda: scans.lissajous(10, 1.0, freq_x=0), ValueError, "freq_x"),
        (lambda: scans.lissajous(10, 1.0, phase=np.nan), ValueError, "phase must be finite"),
        (lambda: scans.random_uniform(10, 1.0, seed=-1), ValueError, "seed"),
        (lambda: scans.random_uniform(10, 1.0, seed=1.5), TypeError, "seed"),
        (lambda: scans.random_uniform(10, 1.0, seed=np.random.RandomState(1)), TypeError, "seed"),
        (lambda: scans.custom([0.0, 1.0], [0.0]), ValueError, "same length"),
        (lambda: scans.custom([np.nan], [0.0]), ValueError, "x must be finite"),
        (lambda: scans.custom([[0.0]], [0.0]), ValueError, "x must be 1-D"),
        (lambda: scans.custom(["a"], [0.0]), TypeError, "x must be a real"),
        (lambda: scans.custom([0.0], [0.0], true_x=[0.0]), ValueError, "both true_x"),
        (lambda: scans.custom([0.0], [0.0], true_x=[0, 1], true_y=[0, 1]), ValueError, "length"),
        (lambda: Scan(np.zeros((3, 3))), ValueError, r"nominal must be \(M, 2\)"),
        (lambda: Scan(np.zeros((3, 2)), np.zeros((2, 2))), ValueError, "true must have"),
        (lambda: scans.raster(2, 2, 1.0).jitter(-1.0), ValueError, "sigma_px must be >= 0"),
        (lambda: scans.raster(2, 2, 1.0).drift((np.nan, 0)), ValueError, r"velocity_px\[0\]"),
        (lambda: scans.raster(2, 2, 1.0).drift(1.0), TypeError, "velocity_px must be a pair"),
        (lambda: scans.raster(2, 2, 1.0).drift(random_walk_px=-1), ValueError, "random_walk"),
        (lambda: scans.raster(2, 2, 1.0).drift((0, 0), seed=3), ValueError, "random_walk_px > 0"),
        (lambda: scans.raster(2, 2, 1.0).affine(np.eye(3)), TypeError, r"\(2, 2\)"),
        (lambda: scans.raster(2, 2, 1.0).affine([[np.inf, 0], [0, 1]]), ValueError, "finite"),
        (lambda: scans.raster(2, 2, 1.0).affine(np.eye(2), offset_px=(0,)), TypeError, "offset"),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_docstring_examples_run():
    import doctest

    import ptyfast.model.scans as module

    result = doctest.testmod(module)
    assert result.attempted > 10 and result.failed == 0


def test_pickle_keeps_positions_and_immutability():
    import pickle

    s = scans.hexagonal(3, 3, 2.0).jitter(0.2, seed=4)
    t = pickle.loads(pickle.dumps(s))
    assert np.array_equal(t.true, s.true) and np.array_equal(t.nominal, s.nominal)
    assert t.to_dict() == s.to_dict()
    assert not t.true.flags.writeable and not t.nominal.flags.writeable

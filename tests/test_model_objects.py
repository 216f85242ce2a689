"""ptyfast.objects: PtychoPINN's families bit for bit, the mapping, dead leaves, recipes.

The dead-leaves texture is checked against two analytic facts: its radii follow the power
law (Kolmogorov–Smirnov against the exact CDF) and the probability that two pixels at
distance d show the same leaf is E[L(r, d)] / E[2πr² − L(r, d)] (L: the lens area of two
discs); measured within 1σ of its estimator over 12 images, asserted within 5σ.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

import ptyfast
from ptyfast import _kernels, objects
from ptyfast.datagen import mk_grf, mk_lines_img, mk_points, sim_object_image
from ptyfast.model import _textures

RAW = {"amplitude": None, "phase": (0.0, 0.0)}


def test_module_aliases_are_one_module():
    import ptyfast.model.objects as model_objects
    import ptyfast.objects as alias
    from ptyfast.objects import dead_leaves

    assert ptyfast.objects is model_objects is alias and dead_leaves is model_objects.dead_leaves


# --------------------------------------------------------------------------- PtychoPINN recipes


@pytest.mark.parametrize("family", ["lines", "grf", "points"])
@pytest.mark.parametrize("seed", [0, 7])
def test_raw_families_are_ptychopinn_objects(family, seed):
    """amplitude=None, zero phase: diffsim.sim_object_image bit for bit (whose own tests
    re-derive the reference's draws from NumPy's global RNG)."""
    o = getattr(objects, family)(64, seed=seed, **RAW)
    assert o.dtype == np.complex64 and o.shape == (64, 64)
    assert np.array_equal(o, sim_object_image(64, data_source=family, seed=seed))


def test_datagen_generators_delegate_to_the_model():
    rs = np.random.RandomState
    assert np.array_equal(mk_lines_img(48, nlines=12, rng=3), _textures.lines_image(48, 12, rs(3)))
    assert np.array_equal(mk_grf(32, rng=4), _textures.grf_image(32, rs(4)))
    assert np.array_equal(mk_points(32, rng=5), _textures.points_image(32, 1, rs(5)))


@pytest.mark.parametrize("size", [2, 79, 80, 81, 97, 160])
@pytest.mark.parametrize("seed", [0, 5])
def test_lines_object_is_the_crop_of_the_whole_canvas(size, seed):
    """lines_object blurs only the crop and the kernels' reach around it (from size 80 on):
    the recipe's whole 2·size canvas, blurred in three channels and cropped, bit for bit."""
    half = size // 2
    whole = _textures.lines_image(2 * size, 400, np.random.RandomState(seed))
    want = whole[half : half + size, half : half + size, :1]
    got = _textures.lines_object(size, 400, np.random.RandomState(seed))
    assert got.shape == (size, size, 1) and got.dtype == np.float64
    assert np.array_equal(got, want)


def test_mapping_is_linear_in_the_normalised_texture():
    o = objects.lines(64, seed=1).astype(np.complex128)
    raw = objects.lines(64, seed=1, **RAW).real.astype(np.float64)
    t = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(np.abs(o), 1.0 - 0.5 * t, atol=1e-6)
    np.testing.assert_allclose(np.angle(o), (math.pi / 2) * t, atol=1e-6)
    assert np.abs(o).min() == pytest.approx(0.5, abs=1e-6)
    assert np.abs(o).max() == pytest.approx(1.0, abs=1e-6)
    p = objects.points(32, seed=2, amplitude=(0.2, 0.9), phase=(-1.0, 1.0)).astype(complex)
    assert np.abs(p).min() == pytest.approx(0.2, abs=1e-6)
    assert np.angle(p).max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("family", ["lines", "grf", "points"])
def test_non_square_is_the_centre_crop(family):
    make = getattr(objects, family)
    square = make(40, seed=3, **RAW)
    rect = make((30, 40), seed=3, **RAW)
    assert np.array_equal(rect, square[5:35, :])
    assert make((40, 31), seed=3, **RAW).shape == (40, 31)


def test_grf_odd_sizes_use_the_next_even_grid():
    assert np.array_equal(objects.grf(33, seed=2, **RAW), objects.grf(34, seed=2, **RAW)[:33, :33])


# --------------------------------------------------------------------------- dead leaves


def test_power_law_radii_follow_their_cdf():
    u = np.random.Generator(np.random.PCG64(0)).random(20000)
    for alpha, lo, hi in ((3.0, 2.0, 30.0), (1.0, 1.0, 10.0), (0.0, 1.0, 5.0)):
        r = _textures.power_law_radii(u, lo, hi, alpha)
        assert r.min() >= lo and r.max() <= hi

        def cdf(x, alpha=alpha, lo=lo, hi=hi):
            x = np.clip(x, lo, hi)
            if alpha == 1.0:
                return np.log(x / lo) / np.log(hi / lo)
            e = 1 - alpha
            return (x**e - lo**e) / (hi**e - lo**e)

        assert stats.kstest(r, cdf).pvalue > 1e-3


def lens(r: float, d: float) -> float:
    if d >= 2 * r:
        return 0.0
    return 2 * r * r * math.acos(d / (2 * r)) - 0.5 * d * math.sqrt(4 * r * r - d * d)


def same_leaf_probability(d: float, lo: float, hi: float, alpha: float) -> float:
    z = integrate.quad(lambda r: r**-alpha, lo, hi)[0]
    brk = [d / 2] if lo < d / 2 < hi else None
    e_lens = integrate.quad(lambda r: lens(r, d) * r**-alpha, lo, hi, points=brk)[0] / z
    e_area = integrate.quad(lambda r: math.pi * r * r * r**-alpha, lo, hi)[0] / z
    return e_lens / (2 * e_area - e_lens)


def test_dead_leaves_two_point_statistics():
    lo, hi, alpha = 2.0, 16.0, 3.0
    ds = (1, 2, 4, 8, 16)
    est = {d: [] for d in ds}
    for seed in range(12):
        o = objects.dead_leaves(96, radius_min_px=lo, radius_max_px=hi, seed=seed, **RAW)
        t = o.real
        for d in ds:
            pairs = np.concatenate([(t[:, d:] == t[:, :-d]).ravel(), (t[d:] == t[:-d]).ravel()])
            est[d].append(np.mean(pairs))
    for d in ds:
        e = np.array(est[d])
        se = e.std(ddof=1) / math.sqrt(e.size)
        assert abs(e.mean() - same_leaf_probability(d, lo, hi, alpha)) < 5 * se + 1e-3


def test_dead_leaves_covers_every_pixel_with_uniform_levels():
    o = objects.dead_leaves((50, 70), seed=3, **RAW)
    t = o.real.astype(np.float64)
    assert np.all(np.isfinite(t)) and t.min() >= 0 and t.max() < 1
    assert np.all(o.imag == 0)
    levels = np.unique(t)
    assert 10 < levels.size  # many visible leaves
    # the mapping uses the gray levels as they are (no min-max stretch)
    m = objects.dead_leaves((50, 70), seed=3).astype(np.complex128)
    np.testing.assert_allclose(np.abs(m), 1 - 0.5 * t, atol=1e-6)


def test_dead_leaves_draws_come_from_pcg64():
    """The first leaf drawn lies on top: its disc shows its own gray level."""
    h = w = 40
    lo, hi = 5.0, 10.0
    o = objects.dead_leaves(h, radius_min_px=lo, radius_max_px=hi, seed=21, **RAW)
    rng = np.random.Generator(np.random.PCG64(21))
    b = _textures.DEAD_LEAVES_BATCH
    cx = rng.uniform(-hi, w - 1 + hi, b)
    cy = rng.uniform(-hi, h - 1 + hi, b)
    r = _textures.power_law_radii(rng.random(b), lo, hi, 3.0)
    v = rng.random(b)
    yy, xx = np.mgrid[0:h, 0:w]

    def disc(i):
        return (xx - cx[i]) ** 2 + (yy - cy[i]) ** 2 <= r[i] ** 2

    top = next(i for i in range(b) if disc(i).any())
    assert np.all(o.real[disc(top)] == np.float32(v[top]))


def _dead_leaves_numpy(shape, radius_min, radius_max, alpha, rng):
    """The dead-leaves recipe painted leaf by leaf in NumPy (the draws as the module's)."""
    h, w = shape
    out, uncovered = np.full((h, w), np.nan), np.ones((h, w), dtype=bool)
    remaining, drawn, pad = h * w, 0, radius_max
    while True:
        b = _textures.DEAD_LEAVES_BATCH
        cx = rng.uniform(-pad, (w - 1) + pad, b)
        cy = rng.uniform(-pad, (h - 1) + pad, b)
        radii = _textures.power_law_radii(rng.random(b), radius_min, radius_max, alpha)
        values = rng.random(b)
        for i in range(b):
            r = radii[i]
            c0, c1 = max(0, math.ceil(cx[i] - r)), min(w - 1, math.floor(cx[i] + r))
            r0, r1 = max(0, math.ceil(cy[i] - r)), min(h - 1, math.floor(cy[i] + r))
            if c0 > c1 or r0 > r1:
                continue
            yy = np.arange(r0, r1 + 1, dtype=np.float64)[:, None] - cy[i]
            xx = np.arange(c0, c1 + 1, dtype=np.float64)[None, :] - cx[i]
            free = uncovered[r0 : r1 + 1, c0 : c1 + 1]
            hit = ((xx * xx + yy * yy) <= r * r) & free
            out[r0 : r1 + 1, c0 : c1 + 1][hit] = values[i]
            free[hit] = False
            remaining -= int(np.count_nonzero(hit))
            if not remaining:
                return out, drawn + i + 1
        drawn += b


@pytest.mark.parametrize(
    "shape,lo,hi,alpha,seed",
    [
        ((1, 1), 0.5, 0.5, 3.0, 0),
        ((37, 53), 1.0, 9.0, 3.0, 1),
        ((64, 64), 0.5, 40.0, 2.0, 2),
        ((20, 90), 3.0, 3.0, 0.0, 3),
        ((96, 96), 2.0, 24.0, 3.0, 4),
    ],
)
def test_dead_leaves_paint_as_numpy(shape, lo, hi, alpha, seed):
    """The compiled painter gives the NumPy formulation's image and leaf count, bit for bit
    (several batches at the smallest radii)."""
    got = _textures.dead_leaves_image(shape, lo, hi, alpha, np.random.default_rng(seed))
    want = _dead_leaves_numpy(shape, lo, hi, alpha, np.random.default_rng(seed))
    assert got[1] == want[1]
    assert np.array_equal(got[0], want[0]) and np.isfinite(got[0]).all()


def test_paint_leaves_refuses_bad_batches_and_leaves_inputs_unmodified():
    out, unc = np.zeros((4, 5)), np.ones((4, 5), bool)
    one = np.ones(1)
    cases = [
        (dict(out=np.zeros((4, 5), np.float32)), ValueError, "out must be a writeable"),
        (dict(out=np.zeros(20)), TypeError, "out must be a 2-D"),
        (dict(uncovered=np.ones((5, 4), bool)), ValueError, "uncovered must be"),
        (dict(uncovered=out), ValueError, "uncovered must be"),
        (dict(cy=np.ones(2)), ValueError, "cy must have the length of cx"),
        (dict(radii=-one), ValueError, "radii must be >= 0"),
        (dict(cx=np.array([np.nan])), ValueError, "cx must be finite"),
        (dict(values=np.array([np.inf])), ValueError, "values must be finite"),
        (dict(remaining=21), ValueError, "remaining must be <= H.W = 20"),
        (dict(remaining=-1), ValueError, "remaining"),
        (dict(cx=out[0, :1]), ValueError, "out must not share memory"),
        (dict(values=unc.reshape(-1)[:8].view(np.float64)), ValueError, "uncovered must not share"),
    ]
    for change, exc, msg in cases:
        args = dict(out=out, uncovered=unc, cx=one, cy=one, radii=one, values=one, remaining=20)
        args.update(change)
        with pytest.raises(exc, match=msg):
            _kernels.paint_leaves(**args)
        assert (out == 0).all() and unc.all()


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "family,params",
    [
        ("lines", {"shape": (40, 48), "n_lines": 50}),
        ("grf", {"shape": 32, "amplitude": None, "phase": (0.0, 0.0)}),
        ("points", {"shape": 32, "sigma_px": 2.0, "amplitude": (0.9, 0.1)}),
        ("dead_leaves", {"shape": (30, 20), "radius_min_px": 1.0, "alpha": 2.5}),
    ],
)
@pytest.mark.parametrize("seed", [None, 5, "generator"])
def test_recipe_round_trip(family, params, seed):
    s = np.random.default_rng(1) if seed == "generator" else seed
    r = objects.recipe(family, seed=s, **params)
    assert r["format"] == "ptyfast.object" and r["family"] == family
    assert isinstance(r["params"]["seed"], int)
    if seed == 5:
        assert r["params"]["seed"] == 5
    r2 = json.loads(json.dumps(r))
    a = objects.build(r2)
    kwargs = {**params, "seed": r["params"]["seed"]}
    assert np.array_equal(a, getattr(objects, family)(**kwargs))
    assert np.array_equal(a, objects.build(r))


def test_recipe_defaults_are_explicit():
    r = objects.recipe("dead_leaves", shape=64, seed=1)
    assert r["params"] == {
        "shape": [64, 64],
        "radius_min_px": 2.0,
        "radius_max_px": None,
        "alpha": 3.0,
        "seed": 1,
        "amplitude": [1.0, 0.5],
        "phase": [0.0, math.pi / 2],
    }


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: objects.recipe("stars", shape=4), "family must be one of"),
        (
            lambda: objects.recipe("grf", shape=4, n_lines=3),
            r"unknown grf parameters \['n_lines'\]",
        ),
        (lambda: objects.recipe("grf"), "needs shape"),
        (lambda: objects.build({"format": "x"}), "keys"),
        (
            lambda: objects.build({**objects.recipe("grf", shape=8, seed=1), "version": 9}),
            "version",
        ),
        (lambda: objects.build([]), "dict"),
    ],
)
def test_recipe_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_build_refuses_unrecorded_seeds_and_unknown_keys():
    r = objects.recipe("points", shape=8, seed=1)
    r["params"]["seed"] = None
    with pytest.raises(ValueError, match="must be a recorded integer, got None"):
        objects.build(r)
    r = objects.recipe("points", shape=8, seed=1)
    r["params"]["colour"] = "red"
    with pytest.raises(ValueError, match="must have the keys"):
        objects.build(r)
    r = objects.recipe("points", shape=8, seed=1)
    r["family"] = "clouds"
    with pytest.raises(ValueError, match="family"):
        objects.build(r)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: objects.lines(0), ValueError, r"shape\[0\] must be >= 1"),
        (lambda: objects.lines(objects.MAX_SIDE), ValueError, r"shape\[0\] must be <= 4096"),
        (lambda: objects.grf(objects.MAX_SIDE + 1), ValueError, r"shape\[0\] must be <= 8192"),
        (lambda: objects.grf((3, 4, 5)), TypeError, "shape must be an int or"),
        (lambda: objects.grf(8.0), TypeError, "shape must be an int or"),
        (lambda: objects.lines(8, n_lines=-1), ValueError, "n_lines must be >= 0"),
        (lambda: objects.points(8, sigma_px=-1.0), ValueError, "sigma_px must be >= 0"),
        (lambda: objects.points(8, seed=2**32), ValueError, "seed"),
        (lambda: objects.points(8, seed="1"), TypeError, "seed"),
        (lambda: objects.grf(8, amplitude=(-0.1, 1.0)), ValueError, r"amplitude\[0\]"),
        (lambda: objects.grf(8, amplitude=0.5), TypeError, "amplitude must be a pair"),
        (lambda: objects.grf(8, phase=(0.0, np.nan)), ValueError, r"phase\[1\] must be finite"),
        (lambda: objects.dead_leaves(8, radius_min_px=0.1), ValueError, "radius_min_px"),
        (
            lambda: objects.dead_leaves(8, radius_min_px=3.0, radius_max_px=2.0),
            ValueError,
            "radius_max_px must be >= 3.0",
        ),
        (lambda: objects.dead_leaves(8, alpha=-1.0), ValueError, "alpha must be >= 0"),
        (lambda: objects.dead_leaves(8, seed=-1), ValueError, "seed"),
        (lambda: objects.texture_to_object(np.full((2, 2), 2.0)), ValueError, "within"),
        (lambda: objects.texture_to_object(np.ones((2, 2)), amplitude=None), ValueError, "raw"),
        # Values a complex64 object cannot hold, and a phase ramp that overflows (NaN before).
        (lambda: objects.grf(8, amplitude=(0.0, 1e39)), ValueError, r"amplitude\[1\] must be <="),
        (
            lambda: objects.dead_leaves(8, phase=(-1e308, 1e308)),
            ValueError,
            r"phase\[1\] - phase\[0\] must be finite",
        ),
        (
            lambda: objects.texture_to_object(
                np.ones((2, 2)), amplitude=None, raw=np.full((2, 2), 1e39)
            ),
            ValueError,
            "raw must be .* within float32",
        ),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_extreme_mappings_stay_finite():
    # Just inside the bounds the objects are finite, without NumPy warnings.
    t = np.linspace(0.0, 1.0, 9).reshape(3, 3)
    f32 = float(np.finfo(np.float32).max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kw in (
            {"amplitude": (0.0, f32)},
            {"amplitude": (f32, f32)},
            {"phase": (-8e307, 8e307)},
            {"amplitude": None, "raw": np.full((3, 3), f32)},
        ):
            assert np.isfinite(objects.texture_to_object(t, **kw).view(np.float32)).all(), kw


def test_docstring_examples_run():
    import doctest

    import ptyfast.model.objects as module

    result = doctest.testmod(module)
    assert result.attempted > 10 and result.failed == 0

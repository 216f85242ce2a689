"""Object generators: exact re-derivations (lines, points), GRF statistics, dispatch.

The re-derivations below follow the reference's object recipes and draw, like the reference,
from NumPy's *global* RNG after ``np.random.seed(seed)`` (the ``global_rng`` fixture
restores the global state afterwards); ptyfast must give the same arrays from a private
``RandomState`` without touching the global one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from ptyfast import params
from ptyfast.datagen import (
    SUPPORTED_SOURCES,
    gaussian_random_field,
    line,
    mk_grf,
    mk_lines_img,
    mk_points,
    randones,
    sim_object_image,
    sim_object_stack,
)
from ptyfast.datagen._rng import legacy_random_state


@pytest.fixture(autouse=True)
def _fresh_params():
    params.reset()
    yield
    params.reset()


@pytest.fixture
def global_rng():
    """NumPy's global legacy RNG (the reference's source), restored after the test."""
    rng = np.random
    state = rng.get_state()
    yield rng
    rng.set_state(state)


def _same_state(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


# --------------------------------------------------------------------------- Bresenham


def bresenham_loop(r0: int, c0: int, r1: int, c1: int):
    """Step-by-step integer Bresenham (skimage.draw.line's algorithm)."""
    r, c = r0, c0
    dr, dc = abs(r1 - r0), abs(c1 - c0)
    sr = 1 if r1 - r > 0 else -1
    sc = 1 if c1 - c > 0 else -1
    steep = dr > dc
    if steep:
        r, c, dr, dc, sr, sc = c, r, dc, dr, sc, sr
    d = 2 * dr - dc
    rr, cc = [], []
    for _ in range(dc):
        rr.append(c if steep else r)
        cc.append(r if steep else c)
        while d >= 0:
            r += sr
            d -= 2 * dc
        c += sc
        d += 2 * dr
    rr.append(r1)
    cc.append(c1)
    return np.array(rr, dtype=np.intp), np.array(cc, dtype=np.intp)


def _skimage_line():
    draw = pytest.importorskip("skimage.draw")
    return draw.line


def test_line_small_cases():
    assert [a.tolist() for a in line(0, 0, 0, 0)] == [[0], [0]]
    assert [a.tolist() for a in line(0, 0, 1, 3)] == [[0, 0, 1, 1], [0, 1, 2, 3]]
    assert [a.tolist() for a in line(3, 0, 0, 0)] == [[3, 2, 1, 0], [0, 0, 0, 0]]
    assert [a.tolist() for a in line(0, 4, 2, 0)] == [[0, 1, 1, 2, 2], [4, 3, 2, 1, 0]]
    rr, cc = line(5, 5, 5, 9)
    assert rr.dtype == np.intp and cc.dtype == np.intp


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 800), min_size=4, max_size=4))
def test_line_equals_stepwise_bresenham(pts):
    r0, c0, r1, c1 = pts
    rr, cc = line(r0, c0, r1, c1)
    lr, lc = bresenham_loop(r0, c0, r1, c1)
    assert np.array_equal(rr, lr) and np.array_equal(cc, lc)
    n = max(abs(r1 - r0), abs(c1 - c0)) + 1
    assert len(rr) == n
    assert (rr[0], cc[0], rr[-1], cc[-1]) == (r0, c0, r1, c1)
    steps = np.abs(np.diff(np.stack([rr, cc]), axis=1))
    assert np.all(steps.max(axis=0, initial=1) == 1)


def test_line_equals_skimage_exhaustive():
    skline = _skimage_line()
    coords = range(9)
    for r0 in coords:
        for c0 in coords:
            for r1 in coords:
                for c1 in coords:
                    a, b = skline(r0, c0, r1, c1), line(r0, c0, r1, c1)
                    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_line_equals_skimage_random():
    skline = _skimage_line()
    rs = np.random.RandomState(7)
    for r0, c0, r1, c1 in rs.randint(0, 1000, size=(3000, 4)):
        a, b = skline(r0, c0, r1, c1), line(r0, c0, r1, c1)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# --------------------------------------------------------------------------- lines


def reference_lines(rand, N: int, nlines: int, draw_line) -> np.ndarray:
    """The lines recipe, drawing from ``rand`` (the global RNG, seeded by the caller)."""
    image = np.zeros((N, N))
    for _ in range(nlines):
        r0, c0, r1, c1 = (int(N * rand.uniform()) for _ in range(4))
        rr, cc = draw_line(r0, c0, r1, c1)
        image[rr, cc] = 1
    stack = np.repeat(image[:, :, None], 3, axis=2)
    return (
        gaussian_filter(stack, 1) + 2 * gaussian_filter(stack, 5) + 5 * gaussian_filter(stack, 10)
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 42, 2**32 - 1])
@pytest.mark.parametrize(("N", "nlines"), [(64, 10), (100, 50), (33, 3)])
def test_lines_equal_reference(global_rng, seed, N, nlines):
    global_rng.seed(seed)
    ref = reference_lines(global_rng, N, nlines, bresenham_loop)
    out = mk_lines_img(N, nlines, rng=seed)
    assert out.shape == (N, N, 3) and out.dtype == np.float64
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("seed", [0, 3])
def test_lines_equal_reference_with_skimage(global_rng, seed):
    skline = _skimage_line()
    global_rng.seed(seed)
    ref = reference_lines(global_rng, 128, 100, skline)
    assert np.array_equal(mk_lines_img(128, 100, rng=seed), ref)


def test_lines_channels_and_range():
    img = mk_lines_img(64, 10, rng=0)
    scale = img.max()
    np.testing.assert_allclose(
        img[..., 1], img[..., 0], rtol=0, atol=4 * np.finfo(float).eps * scale
    )
    np.testing.assert_allclose(
        img[..., 2], img[..., 0], rtol=0, atol=4 * np.finfo(float).eps * scale
    )
    assert img.min() > 0  # the wide σ=10 term leaves no zero background
    assert mk_lines_img(16, 0, rng=0).max() == 0


def test_lines_defaults_and_size_alias():
    assert mk_lines_img(rng=1).shape == (64, 64, 3)
    assert np.array_equal(mk_lines_img(size=48, nlines=5, rng=1), mk_lines_img(48, 5, rng=1))
    with pytest.raises(ValueError, match="N or size"):
        mk_lines_img(32, size=48)
    for bad in (0, -5, 32.0, True):
        with pytest.raises(ValueError, match="N"):
            mk_lines_img(bad)
    with pytest.raises(ValueError, match="nlines"):
        mk_lines_img(32, -1)


# --------------------------------------------------------------------------- points


def reference_points(rand, N: int, sigma: float = 1) -> np.ndarray:
    """The points recipe from the global RNG; counts via bincount instead of np.add.at."""
    indices = rand.choice(N * N, int(N * N * 0.1))
    counts = np.bincount(indices, minlength=N * N).reshape(N, N).astype(np.float64)
    img = gaussian_filter(counts, sigma)
    img = img + gaussian_filter(img, 10 * sigma) * 5
    return img[:, :, None]


@pytest.mark.parametrize("seed", [0, 1, 5, 123456])
@pytest.mark.parametrize("N", [64, 65, 128])
def test_points_equal_reference(global_rng, seed, N):
    global_rng.seed(seed)
    ref = reference_points(global_rng, N)
    out = mk_points(N, rng=seed)
    assert out.shape == (N, N, 1) and out.dtype == np.float64
    assert np.array_equal(out, ref)


def test_points_sigma_and_ignored_pct(global_rng):
    global_rng.seed(4)
    assert np.array_equal(mk_points(64, sigma=2, rng=4), reference_points(global_rng, 64, sigma=2))
    assert np.array_equal(mk_points(64, pct=0.9, rng=4), mk_points(64, rng=4))
    with pytest.raises(ValueError, match="sigma"):
        mk_points(64, sigma=-1)


def test_points_range_fact():
    img = mk_points(64, rng=0)
    assert round(float(img.min()), 3) == 0.296
    assert round(float(img.max()), 3) == 1.192


def test_randones_counts():
    counts = randones(64, rng=0)
    assert counts.sum() == int(64 * 64 * 0.1)
    assert counts.max() >= 2  # drawn with replacement
    assert np.all(counts == np.rint(counts)) and counts.min() == 0
    assert np.array_equal(randones(64, 0.5, rng=0), counts)


# --------------------------------------------------------------------------- rng contract


GENERATORS = [
    ("lines", lambda r: mk_lines_img(32, 5, rng=r)),
    ("points", lambda r: mk_points(32, rng=r)),
    ("grf", lambda r: mk_grf(32, rng=r)),
    ("object", lambda r: sim_object_image(32, data_source="lines", seed=r)),
    ("stack", lambda r: sim_object_stack(2, 32, data_source="points", seed=r)),
]


@pytest.mark.parametrize(("name", "make"), GENERATORS)
def test_global_state_untouched(global_rng, name, make):
    global_rng.seed(99)
    before = global_rng.get_state()
    make(0)
    make(None)
    make(np.random.default_rng(1))
    make(np.random.RandomState(2))
    assert _same_state(before, global_rng.get_state())


@pytest.mark.parametrize(("name", "make"), GENERATORS)
def test_seed_types(name, make):
    a = make(7)
    assert np.array_equal(a, make(7))
    assert np.array_equal(a, make(np.int64(7)))
    assert np.array_equal(a, make(np.random.RandomState(7)))
    assert not np.array_equal(a, make(8))
    # A Generator seeds a RandomState with one 32-bit draw.
    drawn = int(np.random.default_rng(5).integers(0, 2**32, dtype=np.uint64))
    assert np.array_equal(make(np.random.default_rng(5)), make(drawn))
    # A RandomState is advanced: two calls give different objects.
    rs = np.random.RandomState(7)
    assert np.array_equal(make(rs), a)
    assert not np.array_equal(make(rs), a)
    # None: fresh entropy.
    assert not np.array_equal(make(None), make(None))


@pytest.mark.parametrize("bad", [1.5, "0", True, [1]])
def test_bad_rng_type(bad):
    with pytest.raises(TypeError):
        legacy_random_state(bad)
    with pytest.raises(TypeError, match="seed"):
        sim_object_image(32, data_source="points", seed=bad)


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_bad_rng_value(bad):
    with pytest.raises(ValueError, match=r"2\*\*32"):
        mk_points(16, rng=bad)


# --------------------------------------------------------------------------- grf


def radial_slope(n: int, seeds) -> float:
    power = 0.0
    for s in seeds:
        f = gaussian_random_field(n, rng=s)
        power = power + np.abs(np.fft.fft2(f)) ** 2
    k = np.fft.fftfreq(n) * n
    kk = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
    profile = np.bincount(kk.ravel(), power.ravel()) / np.bincount(kk.ravel())
    ks = np.arange(len(profile))
    sel = (ks >= 2) & (ks <= n // 2 - 2)
    return float(np.polyfit(np.log(ks[sel]), np.log(profile[sel]), 1)[0])


def test_grf_field_spectrum_follows_power_law():
    assert radial_slope(128, range(30)) == pytest.approx(-0.4, abs=0.06)
    assert radial_slope(64, range(40)) == pytest.approx(-0.4, abs=0.08)


def test_grf_field_is_real_zero_mean():
    f = gaussian_random_field(64, rng=3)
    assert f.shape == (64, 64) and f.dtype == np.float64
    assert abs(f.mean()) < 1e-10 * np.abs(f).max()  # P(0) = 0
    assert gaussian_random_field(33, rng=3).shape == (33, 33)
    with pytest.raises(ValueError):
        gaussian_random_field(1)


@pytest.mark.parametrize("N", [64, 128, 256])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grf_range_and_smoothness(N, seed):
    g = mk_grf(N, rng=seed)
    assert g.shape == (N, N, 1) and g.dtype == np.float64
    g = g[..., 0]
    assert 0 <= g.min() < g.max() <= 1
    # Smooth on the pixel scale: neighbour differences well below white noise (~1.13 std).
    for axis in (0, 1):
        assert np.abs(np.diff(g, axis=axis)).mean() < 0.6 * g.std()


def test_grf_pipeline_rederived():
    # min-max normalise, bilinear resample corner-aligned to 2x (separable np.interp), σ=1.
    N, seed = 64, 11
    field = gaussian_random_field(N // 2, rng=seed)
    field = (field - field.min()) / (field.max() - field.min())
    q = np.linspace(0, N // 2 - 1, N)
    grid = np.arange(N // 2)
    rows = np.array([np.interp(q, grid, row) for row in field])
    both = np.array([np.interp(q, grid, col) for col in rows.T]).T
    expected = gaussian_filter(both, 1)
    np.testing.assert_allclose(mk_grf(N, rng=seed)[..., 0], expected, rtol=0, atol=1e-12)


def test_grf_reproducible_and_size_errors():
    assert np.array_equal(mk_grf(64, rng=4), mk_grf(64, rng=4))
    assert not np.array_equal(mk_grf(64, rng=4), mk_grf(64, rng=5))
    for bad in (63, 2, 0, -4, 64.0):
        with pytest.raises(ValueError, match="even"):
            mk_grf(bad)


def test_grf_matches_powerbox_09_when_available(global_rng):
    pbox = pytest.importorskip("powerbox")
    if not pbox.__version__.startswith("0."):
        pytest.skip("the reference recipe needs powerbox < 1.0")
    for n, seed in [(32, 0), (33, 1), (64, 2)]:
        global_rng.seed(seed)
        ref = pbox.PowerBox(n, lambda k: k**-0.4, dim=2, boxlength=100.0).delta_x()
        np.testing.assert_allclose(gaussian_random_field(n, rng=seed), ref, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("size", [64, 65, 32])
@pytest.mark.parametrize("seed", [0, 9])
def test_sim_object_image_lines(global_rng, size, seed):
    obj = sim_object_image(size, data_source="lines", seed=seed)
    assert obj.shape == (size, size) and obj.dtype == np.complex64
    assert np.all(obj.imag == 0)
    global_rng.seed(seed)
    canvas = reference_lines(global_rng, 2 * size, 400, bresenham_loop)
    # The reference slices [size//2 : -size//2], which has length size for odd size too.
    expected = canvas[size // 2 : -size // 2, size // 2 : -size // 2, 0]
    assert expected.shape == (size, size)
    assert np.array_equal(obj, expected.astype(np.complex64))


def test_sim_object_image_lines_range():
    amp = np.abs(sim_object_image(256, data_source="lines", seed=0))
    assert 1.0 < amp.min() and amp.max() < 7.0


def test_sim_object_image_dispatch():
    pts = sim_object_image(64, data_source="points", seed=3)
    assert np.array_equal(pts, mk_points(64, rng=3)[..., 0].astype(np.complex64))
    grf = sim_object_image(64, data_source="grf", seed=3)
    assert np.array_equal(grf, mk_grf(64, rng=3)[..., 0].astype(np.complex64))
    assert pts.dtype == grf.dtype == np.complex64
    assert sim_object_image(64, "test", data_source="points", seed=3).shape == (64, 64)


def test_sim_object_image_reads_params():
    with pytest.raises(ValueError, match="generic") as info:
        sim_object_image(64, seed=0)
    for source in SUPPORTED_SOURCES:
        assert repr(source) in str(info.value)
    with params.override(data_source="points"):
        assert np.array_equal(
            sim_object_image(64, seed=1), sim_object_image(64, data_source="points", seed=1)
        )
    # The explicit argument wins over params.
    with params.override(data_source="grf"):
        assert np.array_equal(
            sim_object_image(64, data_source="points", seed=1),
            sim_object_image(64, data_source="points", seed=1),
        )


def test_guide_grf_example():
    from ptyfast.params import params as p

    p.set("data_source", "grf")
    obj = sim_object_image(size=256, which="train")
    assert obj.shape == (256, 256) and obj.dtype == np.complex64


@pytest.mark.parametrize(
    "source", ["generic", "experimental", "xpp", "testimg", "testimg_reverse", "V", "foo"]
)
def test_unsupported_sources(source):
    with pytest.raises(ValueError, match="supported") as info:
        sim_object_image(32, data_source=source)
    assert "'lines'" in str(info.value)
    with pytest.raises(ValueError, match="supported"):
        sim_object_stack(1, 32, data_source=source)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0, "data_source": "lines"}, "size"),
        ({"size": 32.0, "data_source": "lines"}, "size"),
        ({"size": 33, "data_source": "grf"}, "even"),
        ({"size": 32, "which": "validation", "data_source": "lines"}, "which"),
    ],
)
def test_sim_object_image_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sim_object_image(**kwargs)


@pytest.mark.parametrize("source", ["lines", "points", "grf"])
def test_sim_object_stack_successive_draws(global_rng, source):
    n, size, seed = 3, 32, 5
    stack = sim_object_stack(n, size, data_source=source, seed=seed)
    assert stack.shape == (n, size, size, 1) and stack.dtype == np.float64
    rs = np.random.RandomState(seed)
    for i in range(n):
        one = sim_object_image(size, data_source=source, seed=rs)
        assert np.array_equal(one, stack[i, :, :, 0].astype(np.complex64))
    assert not np.array_equal(stack[0], stack[1])
    assert np.array_equal(
        stack[0, :, :, 0].astype(np.complex64),
        sim_object_image(size, data_source=source, seed=seed),
    )


def test_sim_object_stack_equals_reference_loop(global_rng):
    n, size, seed = 2, 40, 1
    global_rng.seed(seed)
    half = size // 2
    expected = np.array(
        [
            reference_lines(global_rng, 2 * size, 400, bresenham_loop)[
                half : half + size, half : half + size, :1
            ]
            for _ in range(n)
        ]
    )
    with params.override(data_source="lines"):
        assert np.array_equal(sim_object_stack(n, size, seed=seed), expected)
    global_rng.seed(seed)
    expected = np.array([reference_points(global_rng, size) for _ in range(n)])
    assert np.array_equal(sim_object_stack(n, size, data_source="points", seed=seed), expected)


def test_sim_object_stack_errors():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must"):
            sim_object_stack(bad, 32, data_source="points")

"""k-NN kernel against scipy's cKDTree and a brute-force ordering with exact ties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from ptyfast import _kernels


def brute(points, queries, k):
    d2 = ((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    idx = np.lexsort((np.broadcast_to(np.arange(len(points)), d2.shape), d2), axis=-1)[:, :k]
    return idx, np.sqrt(np.take_along_axis(d2, idx, axis=1))


@pytest.mark.parametrize(
    ("m", "k"), [(m, k) for m in [1, 2, 10, 1000, 20_000] for k in [1, 2, 5, 8] if k <= m]
)
def test_matches_ckdtree(m, k):
    rng = np.random.default_rng(m * 10 + k)
    pts = rng.uniform(0, 200, size=(m, 2))
    qs = np.concatenate([pts[: min(m, 500)], rng.uniform(-20, 220, size=(500, 2))])
    idx, dist = _kernels.knn(pts, qs, k)
    d_ref, i_ref = cKDTree(pts).query(qs, k=k)
    i_ref = np.asarray(i_ref).reshape(len(qs), k)
    d_ref = np.asarray(d_ref).reshape(len(qs), k)
    assert idx.dtype == np.int64 and dist.dtype == np.float64
    assert idx.shape == dist.shape == (len(qs), k)
    np.testing.assert_array_equal(idx, i_ref)
    np.testing.assert_array_equal(dist, d_ref)


def test_self_query_returns_self_first():
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 50, size=(3000, 2))
    idx, dist = _kernels.knn(pts, pts, 8)
    np.testing.assert_array_equal(idx[:, 0], np.arange(3000))
    assert np.all(dist[:, 0] == 0)
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 9, 12, 13, 21, 25])
def test_grid_ties_ordered_by_index(k):
    # A raster has many exactly tied distances; ties must come in ascending index order.
    gx, gy = np.meshgrid(np.arange(30.0), np.arange(20.0))
    pts = np.column_stack([gx.ravel(), gy.ravel()]) * 1.5
    qs = np.concatenate([pts, pts[::7] + 0.75])
    idx, dist = _kernels.knn(pts, qs, k)
    bi, bd = brute(pts, qs, k)
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_array_equal(dist, bd)


def test_duplicates():
    pts = np.concatenate([np.ones((300, 2)), np.random.default_rng(0).uniform(0, 5, (200, 2))])
    qs = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    for k in [1, 10, 299, 300, 301, 500]:
        idx, dist = _kernels.knn(pts, qs, k)
        bi, bd = brute(pts, qs, k)
        np.testing.assert_array_equal(idx, bi)
        np.testing.assert_array_equal(dist, bd)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
        min_size=1,
        max_size=60,
    ),
    st.tuples(st.integers(-6, 6), st.integers(-6, 6)),
    st.integers(1, 60),
)
def test_property_exact_order_on_small_integer_lattices(points, query, k):
    # Integer coordinates make ties (and duplicates) frequent.
    pts = np.array(points, dtype=np.float64) * 0.5
    k = min(k, len(pts))
    qs = np.array([query], dtype=np.float64) * 0.5
    idx, dist = _kernels.knn(pts, qs, k)
    bi, bd = brute(pts, qs, k)
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_array_equal(dist, bd)


def test_thread_count_independent():
    rng = np.random.default_rng(5)
    pts = rng.uniform(0, 100, (5000, 2))
    a = _kernels.knn(pts, pts, 6)
    b = _kernels.knn(pts, pts[::-1].copy(), 6)
    np.testing.assert_array_equal(a[0], b[0][::-1])


@pytest.mark.parametrize(
    ("points", "queries", "k", "exc", "match"),
    [
        (np.zeros((3, 2)), np.zeros((1, 2)), 0, ValueError, "k must be >= 1"),
        (np.zeros((3, 2)), np.zeros((1, 2)), 4, ValueError, "k must be <="),
        (np.zeros((3, 3)), np.zeros((1, 2)), 1, ValueError, "points must have shape"),
        (np.zeros((3, 2)), np.zeros((1, 3)), 1, ValueError, "queries must have shape"),
        (np.array([[0.0, np.nan], [1, 1]]), np.zeros((1, 2)), 1, ValueError, "finite"),
        (np.zeros((3, 2)), np.array([[np.inf, 0.0]]), 1, ValueError, "finite"),
        (np.zeros((0, 2)), np.zeros((1, 2)), 1, ValueError, "empty"),
        (np.zeros((3, 2)), np.zeros((1, 2)), 1.5, TypeError, "integer"),
    ],
)
def test_errors(points, queries, k, exc, match):
    with pytest.raises(exc, match=match):
        _kernels.knn(points, queries, k)

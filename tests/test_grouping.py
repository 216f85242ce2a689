"""Grouping: ptyfast against an independent NumPy/SciPy implementation of the reference.

The reference (PtychoPINN ``RawData``, ``docs/guides/grouping.md``) seeds NumPy's legacy global
RNG and uses ``cKDTree``; ``ref_efficient`` / ``ref_oversampling`` below re-implement that
algorithm from its description with ``np.random.RandomState`` and ``cKDTree``. Random real
positions have distinct neighbour distances, so indices must agree exactly.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from ptyfast import grouping as G

# --------------------------------------------------------------------------- reference model


def _neighbours(tree, pts, seeds, K):
    n = len(pts)
    _, nb = tree.query(pts[np.asarray(seeds)], k=min(K + 1, n))
    return np.asarray(nb).reshape(len(seeds), -1)


def ref_efficient(x, y, nsamples, K, C, seed, seed_indices=None):
    """Sample-then-group with an explicit RandomState in place of the global one."""
    n = len(x)
    if n < C or K < C:
        raise ValueError("n < C or K < C")
    if seed_indices is not None:
        rs = np.random.RandomState(0)  # forced seed 0 for sequential sampling
        seeds = np.asarray(seed_indices)[: min(len(seed_indices), n)]
    else:
        rs = np.random.RandomState(seed)
        m = min(nsamples, n)
        seeds = rs.choice(np.arange(n), m, replace=False) if m < n else np.arange(n)
    if C == 1:
        return seeds.reshape(-1, 1)
    pts = np.column_stack([x, y])
    hits = _neighbours(cKDTree(pts), pts, seeds, K)
    groups = np.zeros((len(seeds), C), dtype=np.int32)
    for i, s in enumerate(seeds):
        h = hits[i]
        nb = h[1 : K + 1] if len(h) > K else h[:K]
        avail = np.concatenate([[s], nb]) if len(nb) < C else nb
        groups[i] = rs.choice(avail, C, replace=len(avail) < C)
    return groups


def ref_oversampling(x, y, nsamples, K, C, seed, seed_indices=None):
    """K-choose-C oversampling with an explicit RandomState."""
    rs = np.random.RandomState(seed)
    n = len(x)
    if n < C or K < C:
        raise ValueError("n < C or K < C")
    per_seed = 1 if C == 1 else math.comb(K, C)
    min_seeds = max(1, -(-nsamples // per_seed))
    n_seeds = min(2 * min_seeds, n)
    if seed_indices is not None and len(seed_indices) >= min_seeds:
        seeds = np.asarray(seed_indices)[:n_seeds]
    elif n_seeds < n:
        seeds = rs.choice(np.arange(n), n_seeds, replace=False)
    else:
        seeds = np.arange(n)
    if C == 1:
        return rs.choice(seeds, nsamples, replace=nsamples > len(seeds)).reshape(-1, 1)
    pts = np.column_stack([x, y])
    tree = cKDTree(pts)
    pool: list[tuple] = []
    for s in seeds:
        h = _neighbours(tree, pts, [s], K)[0]
        if len(h) > K:
            nb = h[1 : K + 1]
        elif len(h) > 1:
            nb = h[1:]
        else:
            nb = h
        avail = np.concatenate([[s], nb]) if len(nb) < C else nb[:K]
        for combo in itertools.combinations(avail, C):
            pool.append(combo)
            if len(pool) >= 2 * nsamples:
                break
        if len(pool) >= 2 * nsamples:
            break
    arr = np.array(pool)
    sel = rs.choice(len(arr), nsamples, replace=nsamples > len(arr))
    return arr[sel]


def ref_mode(x, y, nsamples, K, C, seed, sequential, pool=None):
    """The reference's choice between the standard and the oversampling path."""
    n = len(x)
    si = np.arange(min(nsamples, n)) if sequential else None
    if nsamples > n and C > 1:
        return ref_oversampling(x, y, nsamples, pool or K, C, seed, si)
    return ref_efficient(x, y, nsamples, K, C, seed, si)


def positions(n, seed=0, extent=200.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(10, extent, n), rng.uniform(10, extent, n)


def bilinear(obj, x, y, n):
    """Plain NumPy bilinear sampler: patch[r, c] = obj(row y + r - n//2, col x + c - n//2)."""
    h, w = obj.shape
    sy = y + np.arange(n)[:, None] - n // 2 + np.zeros((1, n))
    sx = x + np.arange(n)[None, :] - n // 2 + np.zeros((n, 1))
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    wy, wx = sy - y0, sx - x0

    def at(r, c):
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        return np.where(ok, obj[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)], 0)

    return (
        (1 - wy) * (1 - wx) * at(y0, x0)
        + (1 - wy) * wx * at(y0, x0 + 1)
        + wy * (1 - wx) * at(y0 + 1, x0)
        + wy * wx * at(y0 + 1, x0 + 1)
    )


# --------------------------------------------------------------------------- nn_indices parity


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31, 2**32 - 1])
@pytest.mark.parametrize("gridsize", [1, 2, 3])
@pytest.mark.parametrize("nsamples", [1, 37, 299, 300, 1000])
def test_efficient_matches_reference(seed, gridsize, nsamples):
    x, y = positions(300, seed=seed % 1000)
    C = gridsize**2
    for K in sorted({C, C + 1, 7, 12}):
        if K < C:
            continue
        got = G.generate_groups_efficiently(x, y, nsamples, K, C, seed=seed)
        want = ref_efficient(x, y, nsamples, K, C, seed)
        assert got.dtype == want.dtype == (np.int64 if C == 1 else np.int32)
        np.testing.assert_array_equal(got, want, err_msg=f"K={K} C={C}")


@pytest.mark.parametrize("gridsize", [1, 2, 3])
@pytest.mark.parametrize("nsamples", [1, 50, 120, 500])
def test_sequential_matches_reference(gridsize, nsamples):
    x, y = positions(120, seed=4)
    C = gridsize**2
    si = np.arange(min(nsamples, 120))
    # The seed argument is ignored: the reference forces np.random.seed(0).
    for seed in [None, 5]:
        got = G.generate_groups_efficiently(x, y, nsamples, 9, C, seed=seed, seed_indices=si)
        np.testing.assert_array_equal(got, ref_efficient(x, y, nsamples, 9, C, 5, si))


@pytest.mark.parametrize("n", [4, 5, 7, 8, 9])
@pytest.mark.parametrize("K", [4, 6, 8, 12])
def test_small_datasets_include_self(n, K):
    # n <= K: the query returns all n points and self stays in the candidates.
    x, y = positions(n, seed=n * K)
    for seed in [0, 3]:
        for nsamples in [1, n - 1, n]:
            got = G.generate_groups_efficiently(x, y, nsamples, K, 4, seed=seed)
            np.testing.assert_array_equal(got, ref_efficient(x, y, nsamples, K, 4, seed))


@pytest.mark.parametrize("seed", [0, 17, 2**32 - 1])
@pytest.mark.parametrize(
    ("n", "nsamples", "K", "C"),
    [
        (50, 51, 4, 4),
        (50, 200, 6, 4),
        (50, 1000, 7, 4),
        (30, 5000, 10, 9),
        (5, 12, 4, 4),  # pool exhausted: sampling with replacement
        (6, 40, 8, 4),  # n <= K on the oversampling path
        (4, 9, 4, 4),
        (200, 250, 5, 4),
        (20, 30, 3, 1),  # C == 1 branch (not reachable from group_dataset)
        (20, 5, 3, 1),
    ],
)
def test_oversampling_matches_reference(seed, n, nsamples, K, C):
    x, y = positions(n, seed=n + K)
    got = G.generate_groups_with_oversampling(x, y, nsamples, K, C, seed=seed)
    want = ref_oversampling(x, y, nsamples, K, C, seed)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_si", [0, 3, 10, 60])
def test_oversampling_with_seed_indices(n_si):
    x, y = positions(60, seed=8)
    si = np.arange(n_si)
    for nsamples in [61, 100, 400]:
        got = G.generate_groups_with_oversampling(x, y, nsamples, 5, 4, seed=2, seed_indices=si)
        np.testing.assert_array_equal(got, ref_oversampling(x, y, nsamples, 5, 4, 2, si))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 80),
    nsamples=st.integers(1, 200),
    gridsize=st.integers(1, 3),
    extra_k=st.integers(0, 6),
    seed=st.integers(0, 2**32 - 1),
    sequential=st.booleans(),
)
def test_property_modes_match_reference(n, nsamples, gridsize, extra_k, seed, sequential):
    C = gridsize**2
    K = C + extra_k
    x, y = positions(n, seed=seed % 997)
    if n < C:
        with pytest.raises(ValueError):
            G.generate_groups_efficiently(x, y, nsamples, K, C, seed=seed)
        return
    d = np.ones((n, 2, 2), np.float32)  # any non-zero patterns (zeros cannot be normalised)
    out = G.group_dataset(
        x,
        y,
        x,
        y,
        d,
        N=2,
        K=K,
        nsamples=nsamples,
        seed=seed,
        sequential_sampling=sequential,
        gridsize=gridsize,
        enable_oversampling=True,
    )
    want = ref_mode(x, y, nsamples, K, C, seed, sequential)
    assert out["nn_indices"].dtype == want.dtype
    np.testing.assert_array_equal(out["nn_indices"], want)


def test_groups_are_distinct_neighbours_excluding_seed():
    x, y = positions(2000, seed=3)
    pts = np.column_stack([x, y])
    K, C = 7, 4
    g = G.generate_groups_efficiently(x, y, 2000, K, C, seed=9)  # m == n: seed i is point i
    _, nb = cKDTree(pts).query(pts, k=K + 1)
    for i, row in enumerate(g):
        assert len(set(row)) == C
        assert i not in row
        assert set(row) <= set(nb[i, 1:])


def test_seed_none_uses_fresh_entropy_and_leaves_numpy_global_state_alone():
    x, y = positions(400, seed=1)
    state = np.random.get_state()  # noqa: NPY002
    a = G.generate_groups_efficiently(x, y, 100, 7, 4)
    b = G.generate_groups_efficiently(x, y, 100, 7, 4)
    after = np.random.get_state()  # noqa: NPY002
    assert not np.array_equal(a, b)
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2] == after[2]


def test_generator_seed_is_reproducible():
    x, y = positions(400, seed=1)
    a = G.generate_groups_efficiently(x, y, 100, 7, 4, seed=np.random.default_rng(5))
    b = G.generate_groups_efficiently(x, y, 100, 7, 4, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- coordinates


def test_get_relative_coords():
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 100, (20, 1, 2, 4))
    off, rel = G.get_relative_coords(c)
    assert off.shape == (20, 1, 2, 1) and rel.shape == (20, 1, 2, 4)
    assert off.dtype == rel.dtype == np.float64
    np.testing.assert_array_equal(off, np.mean(c, axis=3)[..., None])
    np.testing.assert_array_equal(rel, -1 * (c - np.mean(c, axis=3)[..., None]))
    with pytest.raises(ValueError, match="4-D"):
        G.get_relative_coords(c[0])


def _dataset(n=300, N=16, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x, y = positions(n, seed=seed, extent=100.0)
    xs, ys = x + rng.normal(0, 0.5, n), y + rng.normal(0, 0.5, n)
    d = (rng.random((n, N, N)) * 3).astype(dtype)
    return x, y, xs, ys, d


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_group_dataset_arrays(gridsize):
    N = 16
    x, y, xs, ys, d = _dataset(N=N)
    si = np.arange(5, 300, 3)
    out = G.group_dataset(
        x, y, xs, ys, d, N=N, K=10, nsamples=120, seed=7, gridsize=gridsize, sample_indices=si
    )
    C = gridsize**2
    nn = out["nn_indices"]
    np.testing.assert_array_equal(nn, ref_efficient(x, y, 120, 10, C, 7))
    assert list(out) == [
        "diffraction",
        "Y",
        "coords_offsets",
        "coords_relative",
        "coords_start_offsets",
        "coords_start_relative",
        "coords_nn",
        "coords_start_nn",
        "nn_indices",
        "objectGuess",
        "sample_indices",
        "X_full",
        "seed",
    ]
    assert out["seed"] == 7
    dif = np.transpose(d[nn], [0, 2, 3, 1])
    assert out["diffraction"].dtype == np.float32
    np.testing.assert_array_equal(out["diffraction"], dif)
    cnn = np.transpose(np.array([x[nn], y[nn]]), [1, 0, 2])[:, None]
    np.testing.assert_array_equal(out["coords_nn"], cnn)
    np.testing.assert_array_equal(out["coords_offsets"], np.mean(cnn, axis=3)[..., None])
    np.testing.assert_array_equal(out["coords_relative"], -(cnn - np.mean(cnn, axis=3)[..., None]))
    csn = np.transpose(np.array([xs[nn], ys[nn]]), [1, 0, 2])[:, None]
    np.testing.assert_array_equal(out["coords_start_nn"], csn)
    np.testing.assert_array_equal(out["coords_start_offsets"], np.mean(csn, axis=3)[..., None])
    np.testing.assert_array_equal(
        out["coords_start_relative"], -(csn - np.mean(csn, axis=3)[..., None])
    )
    # X_full: the reference normalisation, bit for bit, and mean energy (N/2)^2.
    f = np.float32(np.sqrt((N / 2) ** 2 / np.mean(np.sum(dif.astype(np.float64) ** 2, (1, 2)))))
    assert out["X_full"].dtype == np.float32
    np.testing.assert_array_equal(out["X_full"], f * dif.astype(np.float32))
    energy = np.mean(np.sum(out["X_full"].astype(np.float64) ** 2, axis=(1, 2)))
    assert energy == pytest.approx((N / 2) ** 2, rel=1e-5)
    np.testing.assert_array_equal(out["sample_indices"], si)
    assert out["sample_indices"] is not si
    assert out["Y"] is None and out["objectGuess"] is None


def test_group_dataset_float64_diffraction_and_no_start_coords():
    x, y, _, _, d = _dataset(dtype=np.float64)
    out = G.group_dataset(x, y, None, None, d, N=16, K=6, nsamples=50, seed=1, gridsize=2)
    nn = out["nn_indices"]
    dif = np.transpose(d[nn], [0, 2, 3, 1])
    assert out["diffraction"].dtype == np.float64
    np.testing.assert_array_equal(out["diffraction"], dif)
    f = np.float32(np.sqrt(64 / np.mean(np.sum(dif**2, axis=(1, 2)))))
    np.testing.assert_array_equal(out["X_full"], f * dif.astype(np.float32))
    assert out["coords_start_nn"] is None
    assert out["coords_start_offsets"] is None and out["coords_start_relative"] is None
    assert "sample_indices" not in out


def test_normalize_data():
    rng = np.random.default_rng(2)
    d = rng.random((40, 8, 8, 4)).astype(np.float32)
    x = G.normalize_data({"diffraction": d}, 8)
    f = np.float32(np.sqrt(16 / np.mean(np.sum(d.astype(np.float64) ** 2, axis=(1, 2)))))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, f * d)
    assert np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2))) == pytest.approx(16, 1e-6)
    with pytest.raises(ValueError, match="diffraction"):
        G.normalize_data({}, 8)
    with pytest.raises(TypeError, match="real"):
        G.normalize_data({"diffraction": d.astype(np.complex64)}, 8)


def test_group_dataset_oversampling_and_sequential():
    x, y, xs, ys, d = _dataset(n=40)
    out = G.group_dataset(
        x, y, xs, ys, d, N=16, K=4, nsamples=100, seed=3, gridsize=2,
        enable_oversampling=True, neighbor_pool_size=6,
    )  # fmt: skip
    np.testing.assert_array_equal(out["nn_indices"], ref_oversampling(x, y, 100, 6, 4, 3))
    assert out["nn_indices"].dtype == np.int64
    assert out["X_full"].shape == (100, 16, 16, 4)
    out = G.group_dataset(
        x, y, xs, ys, d, N=16, K=5, nsamples=25, gridsize=2, sequential_sampling=True
    )
    np.testing.assert_array_equal(out["nn_indices"], ref_efficient(x, y, 25, 5, 4, 0, range(25)))


@pytest.mark.parametrize("y_ndim", [3, 4])
def test_group_dataset_stored_y(y_ndim):
    x, y, xs, ys, d = _dataset(n=100)
    rng = np.random.default_rng(1)
    Y = (rng.random((100, 16, 16)) + 1j * rng.random((100, 16, 16))).astype(np.complex64)
    Yin = Y[..., None] if y_ndim == 4 else Y
    obj = np.ones((120, 120), np.complex64)  # ignored: stored Y wins
    out = G.group_dataset(
        x, y, xs, ys, d, N=16, K=6, nsamples=30, seed=2, gridsize=2, Y=Yin, objectGuess=obj
    )
    nn = out["nn_indices"]
    np.testing.assert_array_equal(out["Y"], np.transpose(Y[nn], [0, 2, 3, 1]))
    assert out["Y"].dtype == np.complex64 and out["Y"].shape == (30, 16, 16, 4)
    assert out["objectGuess"] is obj


@pytest.mark.parametrize("gridsize", [1, 2])
def test_group_dataset_y_from_object_is_reflected(gridsize):
    N = 16
    x, y, xs, ys, d = _dataset(n=150, N=N)
    rng = np.random.default_rng(3)
    obj = (rng.random((130, 130)) + 1j * rng.random((130, 130))).astype(np.complex64)
    out = G.group_dataset(
        x, y, xs, ys, d, N=N, K=6, nsamples=20, seed=4, gridsize=gridsize, objectGuess=obj
    )
    Yp = out["Y"]
    assert isinstance(Yp, np.ndarray) and Yp.dtype == np.complex64
    assert Yp.shape == (20, N, N, gridsize**2)
    cnn, mean = out["coords_nn"], out["coords_offsets"]
    pos = (2 * mean - cnn).astype(np.float32).astype(np.float64)  # reflected through centroid
    for b in range(20):
        for c in range(gridsize**2):
            want = bilinear(obj, pos[b, 0, 0, c], pos[b, 0, 1, c], N)
            np.testing.assert_allclose(Yp[b, :, :, c], want, atol=2e-5)
            if gridsize > 1:
                direct = bilinear(obj, cnn[b, 0, 0, c], cnn[b, 0, 1, c], N)
                assert not np.allclose(Yp[b, :, :, c], direct, atol=1e-3)


def test_get_image_patches():
    rng = np.random.default_rng(6)
    obj = (rng.random((60, 70)) - 0.5 + 1j * rng.random((60, 70))).astype(np.complex64)
    go = rng.uniform(-5, 75, (7, 1, 2, 1))
    lo = rng.normal(0, 3, (7, 1, 2, 4))
    p = G.get_image_patches(obj, go, lo, 12, 2)
    assert p.shape == (7, 12, 12, 4) and p.dtype == np.complex64
    o = (go + lo).astype(np.float32).astype(np.float64)
    for b in range(7):
        for c in range(4):
            want = bilinear(obj, o[b, 0, 0, c], o[b, 0, 1, c], 12)
            np.testing.assert_allclose(p[b, :, :, c], want, atol=2e-5)
    # A delta sampled at an integer position lands on pixel (N//2, N//2).
    delta = np.zeros((40, 40), np.complex64)
    delta[10, 25] = 1
    one = G.get_image_patches(delta, np.array([[[[25.0], [10.0]]]]), np.zeros((1, 1, 2, 1)), 8, 1)
    assert one[0, 4, 4, 0] == 1 and np.count_nonzero(one) == 1


def _numpy_extract_patches(obj, positions, N):
    obj = np.asarray(obj, np.complex64)
    pos = np.asarray(positions, np.float64)
    return np.stack([bilinear(obj, px, py, N) for px, py in pos]).astype(np.complex64)


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_patch_layout_and_reflection_with_a_numpy_kernel(monkeypatch, gridsize):
    # Channel layout, float32 rounding and the reflection quirk, independent of the Rust
    # patch kernel (replaced here by a NumPy sampler).
    calls = []

    def fake(obj, positions, N):
        calls.append(len(positions))
        return _numpy_extract_patches(obj, positions, N)

    monkeypatch.setattr(G._kernels, "extract_patches", fake)
    monkeypatch.setattr(G, "_CHUNK_BYTES", 3 * 8 * 8 * 8 * gridsize**2)  # force chunking
    N, C = 8, gridsize**2
    x, y, xs, ys, d = _dataset(n=60, N=N)
    rng = np.random.default_rng(gridsize)
    obj = (rng.random((110, 110)) + 1j * rng.random((110, 110))).astype(np.complex64)
    out = G.group_dataset(
        x, y, xs, ys, d, N=N, K=9, nsamples=10, seed=1, gridsize=gridsize, objectGuess=obj
    )
    Yp = out["Y"]
    assert Yp.shape == (10, N, N, C) and Yp.dtype == np.complex64
    if C > 1:
        assert len(calls) > 1  # chunked
    cnn, mean = out["coords_nn"], out["coords_offsets"]
    pos = (mean + out["coords_relative"]).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(pos, 2 * mean - cnn, rtol=0, atol=1e-4)
    for b in range(10):
        for c in range(C):
            want = bilinear(obj, pos[b, 0, 0, c], pos[b, 0, 1, c], N).astype(np.complex64)
            np.testing.assert_array_equal(Yp[b, :, :, c], want)


def test_get_image_patches_errors():
    obj = np.ones((10, 10), np.complex64)
    go = np.zeros((2, 1, 2, 1))
    with pytest.raises(ValueError, match="local_offsets"):
        G.get_image_patches(obj, go, np.zeros((2, 1, 2, 1)), 4, 2)
    with pytest.raises(ValueError, match="global_offsets"):
        G.get_image_patches(obj, np.zeros((2, 2, 1)), np.zeros((2, 1, 2, 1)), 4, 1)
    with pytest.raises(ValueError, match="finite"):
        G.get_image_patches(obj, go + np.nan, np.zeros((2, 1, 2, 1)), 4, 1)
    with pytest.raises(ValueError, match="N"):
        G.get_image_patches(obj, go, np.zeros((2, 1, 2, 1)), 0, 1)


# --------------------------------------------------------------------------- errors


def _call(**kw):
    x, y, xs, ys, d = _dataset(n=20, N=8)
    args = {"xcoords": x, "ycoords": y, "xcoords_start": xs, "ycoords_start": ys, "diff3d": d}
    opts = {"N": 8, "K": 4, "nsamples": 10, "seed": 0, "gridsize": 2}
    for key in list(kw):
        (args if key in args else opts)[key] = kw.pop(key)
    return G.group_dataset(*args.values(), **opts)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"nsamples": 21}, ValueError, "enable_oversampling"),
        ({"nsamples": 21, "enable_oversampling": True, "K": 3}, ValueError, "neighbor_pool_size"),
        (
            {"nsamples": 21, "enable_oversampling": True, "neighbor_pool_size": 3},
            ValueError,
            "neighbor_pool_size",
        ),
        ({"K": 3}, ValueError, "K=3 must be >= C=4"),
        ({"gridsize": 5}, ValueError, "at least C = 25 points"),
        ({"nsamples": 0}, ValueError, "nsamples must be >= 1"),
        ({"nsamples": 2.5}, TypeError, "nsamples must be an integer"),
        ({"N": 16}, ValueError, "diff3d must be"),
        ({"diff3d": np.zeros((19, 8, 8), np.float32)}, ValueError, "diff3d must be"),
        ({"diff3d": np.zeros((20, 8, 8), np.complex64)}, TypeError, "real"),
        ({"diff3d": np.full((20, 8, 8), np.nan, np.float32)}, ValueError, "finite"),
        ({"diff3d": np.full((20, 8, 8), np.inf)}, ValueError, "finite"),
        ({"ycoords": np.zeros(19)}, ValueError, "ycoords must have the shape"),
        ({"xcoords": np.full(20, np.nan)}, ValueError, "xcoords must be finite"),
        ({"ycoords": np.r_[np.zeros(19), np.inf]}, ValueError, "ycoords must be finite"),
        ({"xcoords_start": np.zeros(19), "ycoords_start": np.zeros(19)}, ValueError, "start"),
        ({"xcoords_start": None}, ValueError, "both"),
        ({"seed": -1}, ValueError, "seed must be between"),
        ({"seed": 2**32}, ValueError, "seed must be between"),
        ({"seed": 1.0}, TypeError, "seed must be"),
        ({"Y": np.zeros((19, 8, 8))}, ValueError, "Y must be"),
        ({"Y": np.zeros((20, 8, 8, 2))}, ValueError, "Y must be"),
        ({"gridsize": 0}, ValueError, "gridsize"),
    ],
)
def test_group_dataset_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        _call(**kw)


def test_group_selection_errors():
    x, y = positions(10)
    with pytest.raises(ValueError, match="at least C"):
        G.generate_groups_efficiently(x[:3], y[:3], 1, 4, 4, seed=0)
    with pytest.raises(ValueError, match="K=3 must be >= C=4"):
        G.generate_groups_with_oversampling(x, y, 50, 3, 4, seed=0)
    with pytest.raises(ValueError, match="seed_indices"):
        G.generate_groups_efficiently(x, y, 5, 4, 4, seed=0, seed_indices=[0, 10])
    with pytest.raises(ValueError, match="seed_indices"):
        G.generate_groups_efficiently(x, y, 5, 4, 4, seed=0, seed_indices=[-1])
    with pytest.raises(ValueError, match="C must be >= 1"):
        G.generate_groups_efficiently(x, y, 5, 4, 0, seed=0)


_THREAD_SCRIPT = """
import hashlib, sys
import numpy as np
from ptyfast import grouping as G
rng = np.random.default_rng(0)
x, y = rng.uniform(0, 300, (2, 20000))
d = rng.random((20000, 8, 8), dtype=np.float32)
Y = d.astype(np.complex64)
h = hashlib.sha256()
out = G.group_dataset(x, y, x, y, d, N=8, K=7, nsamples=5000, seed=3, gridsize=2, Y=Y)
for key in ["nn_indices", "diffraction", "X_full", "Y", "coords_relative"]:
    h.update(np.ascontiguousarray(out[key]).tobytes())
over = G.generate_groups_with_oversampling(x[:500], y[:500], 4000, 6, 4, seed=1)
h.update(over.tobytes())
print(h.hexdigest())
"""


def test_results_do_not_depend_on_the_thread_count():
    digests = set()
    for threads in ["1", "3"]:
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        res = subprocess.run(
            [sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        digests.add(res.stdout.strip())
    assert len(digests) == 1

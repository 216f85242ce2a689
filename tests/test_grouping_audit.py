"""Audit of the grouping / loader data path against independent NumPy computations.

The neighbour searches here are brute force (every distance, ordered by ``(distance, index)``
with ``np.lexsort``), the group draws replay NumPy's legacy ``RandomState`` as the reference
does, patches are cut by plain slicing, and normalisation is the reference's formula written
out in NumPy. The layouts are the adversarial ones for a k-d tree: lattices (exact distance
ties), collinear scans, coincident positions and ``K`` beyond the number of points.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from ptyfast import _kernels, loader
from ptyfast import grouping as G

# --------------------------------------------------------------------------- brute-force model


def brute_neighbours(x, y, i, k):
    """The ``k`` nearest points of point ``i``: squared distances as cKDTree computes them
    (``dx*dx + dy*dy`` in float64), exact ties by ascending index."""
    d2 = (x[i] - x) * (x[i] - x) + (y[i] - y) * (y[i] - y)
    return np.lexsort((np.arange(x.size), d2))[:k]


def ref_standard(x, y, nsamples, K, C, seed, seed_indices=None):
    """The reference's sample-then-group draws over brute-force neighbour lists."""
    n = x.size
    if seed_indices is not None:
        rs = np.random.RandomState(0)
        seeds = np.asarray(seed_indices)[:n]
    else:
        rs = np.random.RandomState(seed)
        m = min(nsamples, n)
        seeds = rs.choice(np.arange(n), m, replace=False) if m < n else np.arange(n)
    if C == 1:
        return seeds[:, None].astype(np.int64)
    out = np.zeros((len(seeds), C), np.int32)
    for row, s in enumerate(seeds):
        hits = brute_neighbours(x, y, s, min(K + 1, n))
        nb = hits[1 : K + 1] if hits.size > K else hits[:K]
        avail = np.concatenate([[s], nb]) if nb.size < C else nb
        out[row] = rs.choice(avail, C, replace=avail.size < C)
    return out


def ref_oversampling(x, y, nsamples, K, C, seed):
    """The reference's K-choose-C pool, built in full, over brute-force neighbour lists."""
    rs = np.random.RandomState(seed)
    n = x.size
    min_seeds = max(1, -(-nsamples // math.comb(K, C)))
    n_seeds = min(2 * min_seeds, n)
    seeds = rs.choice(np.arange(n), n_seeds, replace=False) if n_seeds < n else np.arange(n)
    pool: list[tuple[int, ...]] = []
    for s in seeds:
        hits = brute_neighbours(x, y, s, min(K + 1, n))
        nb = hits[1 : K + 1] if hits.size > 1 else hits
        avail = np.concatenate([[s], nb]) if nb.size < C else nb[:K]
        for combo in itertools.combinations(avail.tolist(), C):
            pool.append(combo)
            if len(pool) >= 2 * nsamples:
                break
        if len(pool) >= 2 * nsamples:
            break
    arr = np.array(pool)
    return arr[rs.choice(len(arr), nsamples, replace=nsamples > len(arr))]


def _lattice():
    gx, gy = np.meshgrid(np.arange(6.0), np.arange(5.0))
    return gx.ravel(), gy.ravel()


def _collinear():
    return np.arange(14.0), np.full(14, 3.0)


def _duplicates():
    base_x, base_y = np.array([0.0, 1.0, 1.0, 4.0, 2.0]), np.array([0.0, 0.0, 2.0, 1.0, 5.0])
    return np.repeat(base_x, 3), np.repeat(base_y, 3)


def _diagonal_ties():
    # Points at equal distance on both sides of every interior point, and a coincident pair.
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 3.0])
    return t, 2.0 * t


LAYOUTS = {
    "lattice": _lattice,
    "collinear": _collinear,
    "duplicates": _duplicates,
    "diagonal": _diagonal_ties,
}


# --------------------------------------------------------------------------- neighbour sets


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_neighbor_indices_equal_brute_force_with_ties_and_large_k(layout):
    x, y = LAYOUTS[layout]()
    n = x.size
    for K in (0, 3, 8, n - 1, n + 4):
        got = G.get_neighbor_indices(x, y, K=K)
        width = K + 1
        want = np.full((n, width), n, np.int64)  # n marks a missing neighbour (cKDTree)
        for i in range(n):
            hits = brute_neighbours(x, y, i, min(width, n))
            want[i, : hits.size] = hits
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want, err_msg=f"{layout} K={K}")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_standard_groups_with_ties_equal_the_reference_draws(layout, gridsize):
    x, y = LAYOUTS[layout]()
    n, c = x.size, gridsize * gridsize
    for K, nsamples, seed in [(c, 1, 0), (max(c, 4), n // 2, 7), (c + 2, n, 3), (n + 3, 5, 11)]:
        got = G.generate_groups_efficiently(x, y, nsamples, K, c, seed=seed)
        want = ref_standard(x, y, nsamples, K, c, seed)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"K={K} nsamples={nsamples}")
    if c == 1:  # more groups than points: every point once, in natural order, no draw
        np.testing.assert_array_equal(
            G.generate_groups_efficiently(x, y, 3 * n, 4, 1, seed=5), np.arange(n)[:, None]
        )
    seq = G.generate_groups_efficiently(x, y, 4, c + 1, c, seed=99, seed_indices=np.arange(4))
    np.testing.assert_array_equal(seq, ref_standard(x, y, 4, c + 1, c, 0, np.arange(4)))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("gridsize", [2, 3])
def test_oversampled_groups_with_ties_equal_the_reference_pool(layout, gridsize):
    x, y = LAYOUTS[layout]()
    c = gridsize * gridsize
    for K, nsamples, seed in [(c, 3 * x.size, 1), (c + 2, 2 * x.size + 1, 4)]:
        got = G.generate_groups_with_oversampling(x, y, nsamples, K, c, seed=seed)
        want = ref_oversampling(x, y, nsamples, K, c, seed)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want, err_msg=f"K={K} nsamples={nsamples}")


# --------------------------------------------------------------------------- grouped arrays


def test_group_coordinates_diffraction_and_patches_follow_nn_indices():
    rng = np.random.default_rng(8)
    N, H, W = 8, 70, 90
    # Even integer positions: every group sum is even, so the reflected positions
    # 2 * centroid - coord of gridsize 2 are integers and patches are plain slices.
    x = 2.0 * rng.integers(N, (W - N) // 2, 60)
    y = 2.0 * rng.integers(N, (H - N) // 2, 60)
    xs, ys = x + 0.25, y - 0.5  # distinct start coordinates
    d = rng.random((60, N, N), dtype=np.float32)
    obj = (rng.random((H, W)) + 1j * rng.random((H, W))).astype(np.complex64)
    for g in (1, 2):
        c = g * g
        out = G.group_dataset(
            x, y, xs, ys, d, N=N, K=6, nsamples=25, seed=4, gridsize=g, objectGuess=obj
        )
        nn = out["nn_indices"]
        assert nn.shape == (25, c)
        np.testing.assert_array_equal(out["coords_nn"][:, 0, 0, :], x[nn])  # x = column
        np.testing.assert_array_equal(out["coords_nn"][:, 0, 1, :], y[nn])  # y = row
        np.testing.assert_array_equal(out["coords_start_nn"][:, 0, 0, :], xs[nn])
        np.testing.assert_array_equal(out["coords_start_nn"][:, 0, 1, :], ys[nn])
        for key, px, py in (("", x, y), ("start_", xs, ys)):
            cx, cy = px[nn].mean(axis=1), py[nn].mean(axis=1)
            np.testing.assert_allclose(out[f"coords_{key}offsets"][:, 0, 0, 0], cx, rtol=1e-15)
            np.testing.assert_allclose(out[f"coords_{key}offsets"][:, 0, 1, 0], cy, rtol=1e-15)
            np.testing.assert_allclose(
                out[f"coords_{key}relative"][:, 0, 0, :], -(px[nn] - cx[:, None]), atol=1e-12
            )
            np.testing.assert_allclose(
                out[f"coords_{key}relative"][:, 0, 1, :], -(py[nn] - cy[:, None]), atol=1e-12
            )
        np.testing.assert_array_equal(out["diffraction"], np.moveaxis(d[nn], 1, 3))
        for b in range(nn.shape[0]):
            for ch in range(c):
                rx = int(round(2 * x[nn[b]].mean() - x[nn[b, ch]]))
                ry = int(round(2 * y[nn[b]].mean() - y[nn[b, ch]]))
                want = obj[ry - N // 2 : ry + N // 2, rx - N // 2 : rx + N // 2]
                np.testing.assert_array_equal(out["Y"][b, :, :, ch], want)


def _numpy_normalize(grouped, N):
    e = np.sum(grouped.astype(np.float64) ** 2, axis=(1, 2))
    f = np.float32(np.sqrt((N / 2) ** 2 / np.mean(e)))
    return f * grouped.astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_x_full_is_the_reference_normalisation_bit_for_bit(dtype):
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0, 50, (2, 90))
    N = 8
    for trial in range(6):
        scale = 10.0 ** rng.uniform(-3, 3) if dtype != np.uint16 else 60000.0
        d = (rng.random((90, N, N)) * scale).astype(dtype)
        out = G.group_dataset(x, y, x, y, d, N=N, K=5, nsamples=40, seed=trial, gridsize=2)
        grouped = np.moveaxis(d[out["nn_indices"]], 1, 3)
        assert out["diffraction"].dtype == dtype
        np.testing.assert_array_equal(out["diffraction"], grouped)
        assert out["X_full"].dtype == np.float32
        np.testing.assert_array_equal(out["X_full"], _numpy_normalize(grouped, N))
        np.testing.assert_array_equal(
            G.normalize_data({"diffraction": grouped}, N), _numpy_normalize(grouped, N)
        )


def test_patches_of_an_object_smaller_than_the_patch_are_zero_padded():
    obj = np.arange(1, 10, dtype=np.float64).reshape(3, 3).astype(np.complex64)
    N = 8
    go = np.array([[[[1.0], [1.0]]], [[[1e6], [-1e6]]]])  # centred; far outside
    p = G.get_image_patches(obj, go, np.zeros((2, 1, 2, 1)), N, 1)
    want = np.zeros((N, N), np.complex64)
    want[N // 2 - 1 : N // 2 + 2, N // 2 - 1 : N // 2 + 2] = obj
    np.testing.assert_array_equal(p[0, :, :, 0], want)
    np.testing.assert_array_equal(p[1], 0)


# --------------------------------------------------------------------------- splits


def test_load_split_partitions_every_per_group_array():
    rng = np.random.default_rng(5)
    n, N = 80, 8
    x, y = rng.uniform(10, 40, (2, n))
    d = rng.random((n, N, N), dtype=np.float32) * 3
    obj = (rng.random((60, 60)) + 1j).astype(np.complex64)
    dset = G.group_dataset(
        x, y, x, y, d, N=N, K=6, nsamples=30, seed=0, gridsize=2, objectGuess=obj
    )
    probe = np.ones((N, N), np.complex64)
    frac = 0.7
    n_train = int(30 * frac)  # the reference's int(len * frac): 20, not 21
    parts = {
        w: loader.load(lambda: (dset, frac), probe, w, True, nphotons=1e6)
        for w in ("train", "test")
    }
    assert len(parts["train"]) == n_train and len(parts["test"]) == 30 - n_train
    pairs = [
        ("_X_np", "X_full", np.float32),
        ("_coords_nominal_np", "coords_start_relative", np.float32),
        ("nn_indices", "nn_indices", None),
        ("global_offsets", "coords_offsets", None),
        ("local_offsets", "coords_relative", None),
    ]
    for attr, key, dt in pairs:
        whole = dset[key] if dt is None else dset[key].astype(dt)
        joined = np.concatenate([getattr(parts["train"], attr), getattr(parts["test"], attr)])
        np.testing.assert_array_equal(joined, whole, err_msg=attr)
    np.testing.assert_array_equal(
        np.concatenate([parts["train"]._Y_I_np, parts["test"]._Y_I_np]),
        np.abs(dset["Y"]).astype(np.float32),
    )
    for w, rows in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        e = np.sum(dset["diffraction"][rows].astype(np.float64) ** 2, axis=(1, 2)).mean()
        got = parts[w].dataset_intensity_stats["batch_mean_sum_intensity"]
        assert got == pytest.approx(e, rel=1e-12)


# --------------------------------------------------------------------------- determinism

_THREAD_SCRIPT = """
import hashlib
import numpy as np
from ptyfast import _kernels
from ptyfast import grouping as G
rng = np.random.default_rng(0)
h = hashlib.sha256()
x, y = rng.uniform(0, 120, (2, 3000))
gx, gy = np.meshgrid(np.arange(40.0), np.arange(40.0))
lx = np.concatenate([gx.ravel(), gx.ravel()[:50]])
ly = np.concatenate([gy.ravel(), gy.ravel()[:50]])
d = rng.random((3000, 8, 8)).astype(np.float64)
obj = (rng.random((140, 140)) + 1j * rng.random((140, 140))).astype(np.complex64)
out = G.group_dataset(x, y, x, y, d, N=8, K=12, nsamples=900, seed=5, gridsize=3, objectGuess=obj)
for key in ["nn_indices", "diffraction", "X_full", "Y", "coords_relative"]:
    h.update(np.ascontiguousarray(out[key]).tobytes())
h.update(G.generate_groups_efficiently(lx, ly, 1200, 8, 4, seed=9).tobytes())
h.update(G.generate_groups_with_oversampling(lx, ly, 5000, 8, 4, seed=2).tobytes())
h.update(G.get_neighbor_indices(lx, ly, K=9).tobytes())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_groups_patches_and_ties_do_not_depend_on_the_thread_count():
    digests = set()
    for threads in ("1", "2", "5"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        res = subprocess.run(
            [sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        digests.add(res.stdout.strip())
    assert len(digests) == 1


def _digest(out):
    h = hashlib.sha256()
    for key in ("nn_indices", "diffraction", "X_full", "Y", "coords_offsets"):
        h.update(np.ascontiguousarray(out[key]).tobytes())
    return h.hexdigest()


def test_same_seed_same_groups_whatever_the_call_order():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 60, (2, 150))
    d = rng.random((150, 8, 8), dtype=np.float32)
    obj = np.ones((80, 80), np.complex64)

    def call(seed, g=2):
        return G.group_dataset(
            x, y, x, y, d, N=8, K=6, nsamples=40, seed=seed, gridsize=g, objectGuess=obj
        )

    first = _digest(call(3))
    call(4)
    G.generate_groups_with_oversampling(x, y, 500, 6, 4, seed=3)
    np.random.seed(123)  # NumPy's global stream is not consulted
    np.random.random(17)
    assert _digest(call(3)) == first
    assert _digest(call(4)) != first


# --------------------------------------------------------------------------- inputs untouched


def _frozen_strided(a):
    """A read-only, non-contiguous view holding ``a``'s values."""
    a = np.asarray(a)
    big = np.zeros(a.shape + (2,), a.dtype)
    big[..., 1] = a
    v = big[..., 1]
    v.flags.writeable = False
    return v


def test_functions_leave_read_only_and_strided_inputs_untouched():
    rng = np.random.default_rng(9)
    n, N = 50, 8
    x = _frozen_strided(rng.uniform(10, 50, n))
    y = _frozen_strided(rng.uniform(10, 50, n))
    d = _frozen_strided(rng.random((n, N, N), dtype=np.float32))
    d64 = _frozen_strided(rng.random((n, N, N)))
    obj = _frozen_strided((rng.random((70, 70)) + 1j * rng.random((70, 70))).astype(np.complex64))
    Y = _frozen_strided(rng.random((n, N, N)).astype(np.complex64))
    ins = {"x": x, "y": y, "d": d, "d64": d64, "obj": obj, "Y": Y}
    assert not any(a.flags.c_contiguous for a in ins.values())
    before = {k: (a.copy(), a.strides) for k, a in ins.items()}

    outs = [
        G.group_dataset(x, y, x, y, d, N=N, K=6, nsamples=20, seed=1, gridsize=2, objectGuess=obj),
        G.group_dataset(x, y, x, y, d64, N=N, K=10, nsamples=20, seed=1, gridsize=3, Y=Y),
        G.group_dataset(
            x, y, x, y, d, N=N, K=6, nsamples=80, seed=1, gridsize=2, enable_oversampling=True
        ),
    ]
    G.get_neighbor_indices(x, y, K=60)
    G.generate_groups_efficiently(x, y, 20, 6, 4, seed=0)
    G.generate_groups_with_oversampling(x, y, 90, 6, 4, seed=0)
    coords = _frozen_strided(outs[0]["coords_nn"])
    coords_copy = coords.copy()
    off, rel = G.get_relative_coords(coords)
    G.get_image_patches(obj, _frozen_strided(off), _frozen_strided(rel), N, 2)
    diff = _frozen_strided(outs[1]["diffraction"])
    diff_copy = diff.copy()
    G.normalize_data({"diffraction": diff}, N)
    for out in outs:
        snapshot = {k: np.array(v) for k, v in out.items() if isinstance(v, np.ndarray)}
        loader.load(
            lambda out=out: (out, 0.5), np.ones((N, N), np.complex64), "test", True, nphotons=1e6
        )
        for k, v in snapshot.items():
            np.testing.assert_array_equal(out[k], v, err_msg=k)
    for k, a in ins.items():
        np.testing.assert_array_equal(a, before[k][0], err_msg=k)
        assert a.strides == before[k][1] and not a.flags.writeable
    np.testing.assert_array_equal(coords, coords_copy)
    np.testing.assert_array_equal(diff, diff_copy)


# --------------------------------------------------------------------------- hostile inputs


def _raw_grouped():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 30, (2, 20))
    return x, y, rng.random((20, 8, 8), dtype=np.float32)


def _group(**kw):
    x, y, d = _raw_grouped()
    args = dict(N=8, K=4, nsamples=5, seed=0, gridsize=2)
    args.update(kw)
    return G.group_dataset(x, y, x, y, d, **args)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: G.normalize_data(None, 8), TypeError, r"dset must be a dict .* got NoneType"),
        (
            lambda: G.normalize_data(np.ones((2, 8, 8, 1), np.float32), 8),
            TypeError,
            r"dset must be a dict .* got ndarray",
        ),
        (
            lambda: G.get_relative_coords(np.zeros((3, 1, 2, 0))),
            ValueError,
            r"coords_nn must hold C >= 1 members per group, got shape \(3, 1, 2, 0\)",
        ),
        (
            lambda: _group(Y=np.full((20, 8, 8), "a")),
            TypeError,
            r"Y must hold numeric ground-truth patches, got dtype <U1",
        ),
        (lambda: loader.split_tensor(5, 0.5, "train"), TypeError, r"tensor must be .* got int"),
        (
            lambda: loader.split_tensor(None, 0.5, "test"),
            TypeError,
            r"tensor must be .* got NoneType",
        ),
        (
            lambda: loader.split_data(np.arange(10), np.arange(5), np.arange(10), 0.5, "test"),
            ValueError,
            r"coords_nominal must have the length of X_full \(10\), got 5",
        ),
        (
            lambda: loader.split_data(np.arange(4), np.arange(4), 3.0, 0.5, "train"),
            TypeError,
            r"coords_true must be .* got float",
        ),
    ],
    ids=[
        "normalize_data-None",
        "normalize_data-array",
        "get_relative_coords-no-members",
        "group_dataset-string-Y",
        "split_tensor-scalar",
        "split_tensor-None",
        "split_data-lengths",
        "split_data-scalar",
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"xcoords": [np.nan, 1.0]}, ValueError, "xcoords must be finite"),
        ({"ycoords": [1.0, np.inf]}, ValueError, "ycoords must be finite"),
        ({"xcoords": []}, ValueError, "xcoords"),
        ({"ycoords": [1.0]}, ValueError, r"ycoords must have the shape of xcoords \(2,\)"),
        ({"xcoords": [[0.0, 1.0]]}, ValueError, "xcoords must be 1-D"),
        ({"xcoords": ["a", "b"]}, TypeError, "xcoords"),
        ({"K": -2}, ValueError, "K must be >= 0, got -2"),
        ({"K": 2.0}, TypeError, "K must be an integer"),
    ],
)
def test_get_neighbor_indices_hostile(kw, exc, match):
    args = {"xcoords": [0.0, 1.0], "ycoords": [0.0, 0.0], "K": 1}
    args.update(kw)
    with pytest.raises(exc, match=match):
        G.get_neighbor_indices(args["xcoords"], args["ycoords"], K=args["K"])


def test_hostile_counts_and_huge_k_in_the_grouping():
    x, y, d = _raw_grouped()
    for kw, exc, match in [
        ({"nsamples": -1}, ValueError, "nsamples must be >= 1, got -1"),
        ({"K": 0}, ValueError, "K must be >= 1, got 0"),
        ({"gridsize": -2}, ValueError, "gridsize must be >= 1"),
        ({"nsamples": 50}, ValueError, "OVERSAMPLING-001"),
        ({"objectGuess": np.full((30, 30), np.nan)}, ValueError, "finite"),
    ]:
        with pytest.raises(exc, match=match):
            _group(**kw)
    # K beyond the number of points: every point is a candidate (self included), as the
    # reference's k = min(K + 1, n) query gives.
    out = _group(K=10**6, nsamples=6)
    np.testing.assert_array_equal(out["nn_indices"], ref_standard(x, y, 6, 10**6, 4, 0))


@pytest.mark.parametrize("flag", ["poisson", "return_energies"])
@pytest.mark.parametrize("value", ["no", "False", None, 2])
def test_simulate_raw_refuses_non_bool_flags(flag, value):
    from ptyfast.raw_data import simulate_raw

    obj = np.ones((24, 24), np.complex64)
    probe = np.ones((8, 8), np.complex64)
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got"):
        simulate_raw([12.0], [12.0], probe, obj, nphotons=1e6, seed=0, **{flag: value})


# --------------------------------------------------------------------------- memory


def test_integer_diffraction_is_grouped_without_a_full_size_temporary():
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 3000
    x, y = rng.uniform(0, 100, (2, n))
    d = rng.integers(0, 60000, (n, 32, 32)).astype(np.uint16)
    tracemalloc.start()
    try:
        out = G.group_dataset(x, y, x, y, d, N=32, K=4, nsamples=10, seed=0, gridsize=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out["diffraction"][..., 0], d[out["nn_indices"][:, 0]])
    # The finiteness check of integers allocated a bool array of d.size bytes (d.nbytes / 2).
    assert peak < d.nbytes / 8, (peak, d.nbytes)


def test_float_diffraction_finiteness_is_checked_in_every_block(monkeypatch):
    monkeypatch.setattr(G, "_CHUNK_BYTES", 8 * 8 * 3)  # three patterns per block
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 30, (2, 20))
    d = rng.standard_normal((20, 8, 8))  # negative values: the blockwise path
    G.group_dataset(x, y, x, y, d, N=8, K=4, nsamples=5, seed=0, gridsize=1)
    for i, bad in ((19, np.nan), (10, -np.inf), (0, np.inf)):
        e = d.copy()
        e[i, 3, 4] = bad
        with pytest.raises(ValueError, match="diff3d must be finite"):
            G.group_dataset(x, y, x, y, e, N=8, K=4, nsamples=5, seed=0, gridsize=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, np.float32(-np.inf)])
def test_container_refuses_a_non_finite_norm_y_i(bad):
    X = np.ones((3, 8, 8, 1), np.float32)
    coords = np.zeros((3, 1, 2, 1), np.float32)
    with pytest.raises(ValueError, match="norm_Y_I must be finite, got"):
        loader.PtychoDataContainer(
            X, X, 0 * X, bad, None, coords, coords, None, None, None, np.ones((8, 8))
        )


@pytest.mark.slow
def test_oversampling_with_k_near_n_is_sized_by_the_seeds_it_queries():
    """K = n − 1: one seed's neighbours hold every group, and the kernel queries only the
    seeds whose combinations fill the pool. The memory estimate counted 2·nsamples neighbour
    rows of K + 1 (80 GB here) and refused the call as beyond the memory."""
    n, nsamples, c = 100_000, 50_000, 4
    assert _kernels.oversampled_bytes(nsamples, n - 1, c, n) < 64 * 2**20
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    groups = _kernels.oversample_groups(x, y, nsamples, n - 1, c, 7)
    assert groups.shape == (nsamples, c)
    assert groups.min() >= 0 and groups.max() < n
    assert all(len(set(g)) == c for g in groups[:1000].tolist())  # distinct members


def test_boolean_coordinates_and_seed_indices_are_refused_not_read_as_0_and_1():
    """A mask passed by mistake (``seed_indices=mask``, ``xcoords=valid``) was read as the
    indices/coordinates 0 and 1; RawData already refused boolean coordinates."""
    x = np.arange(12, dtype=float)
    y = np.zeros(12)
    with pytest.raises(TypeError, match="xcoords must be a numeric \\(not boolean\\) array"):
        G.get_neighbor_indices(x > 3, y, K=3)
    with pytest.raises(TypeError, match="ycoords must be a numeric \\(not boolean\\)"):
        _kernels.sample_then_group(x, y > 0, 4, 3, 2, 0)
    with pytest.raises(TypeError, match="seed_indices must be a numeric \\(not boolean\\)"):
        _kernels.sample_then_group(x, y, 4, 3, 2, 0, [True, False, True, True])
    with pytest.raises(TypeError, match="seed_indices must be a numeric \\(not boolean\\)"):
        _kernels.oversample_groups(x, y, 4, 3, 2, 0, np.ones(4, bool))
    # integer indices and coordinates still work
    assert _kernels.sample_then_group(x, y, 4, 3, 2, 0, [1, 0, 2, 3]).shape == (4, 2)


def test_a_container_refuses_negative_neighbour_indices():
    from ptyfast.loader import PtychoDataContainer

    b, n, c = 3, 4, 1
    args = dict(
        X=np.ones((b, n, n, c), np.float32),
        Y_I=np.ones((b, n, n, c), np.float32),
        Y_phi=np.zeros((b, n, n, c), np.float32),
        norm_Y_I=1.0,
        YY_full=None,
        coords_nominal=np.zeros((b, 1, 2, c)),
        coords_true=np.zeros((b, 1, 2, c)),
        nn_indices=np.array([[0], [1], [-1]]),
        global_offsets=np.zeros((b, 1, 2, 1)),
        local_offsets=np.zeros((b, 1, 2, c)),
        probeGuess=np.ones((n, n), np.complex64),
    )
    with pytest.raises(
        ValueError, match="nn_indices must be indices >= 0 into the raw positions, got -1"
    ):
        PtychoDataContainer(**args)
    args["nn_indices"] = np.array([[0], [1], [2]])
    assert PtychoDataContainer(**args).nn_indices.min() == 0

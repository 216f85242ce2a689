"""Neighbour grouping of scan positions into solution regions (PtychoPINN's RawData grouping).

The array-level functions behind ``RawData.generate_grouped_data``: pick seed positions, group
each with ``C = gridsize**2`` of its ``K`` nearest neighbours, and assemble the grouped
dataset dictionary (grouped diffraction, normalised ``X_full``, group coordinates, ground-truth
patches). They take every setting explicitly and read no global state.

Reproducibility
---------------
The reference draws from NumPy's *legacy global* generator after ``np.random.seed(seed)``. The
Rust core replays that stream bit-exactly, so for an integer ``seed`` in ``[0, 2**32)`` the
group indices equal the reference's for the same ``seed`` (where neighbour distances are
distinct; exactly tied distances are ordered by point index, see :func:`ptyfast._kernels.knn`).
``seed=None`` draws fresh OS entropy (the reference would continue NumPy's global state, which
ptyfast never touches); a :class:`numpy.random.Generator` gives one draw from it.

Conventions
-----------
Coordinates are object pixels, ``x`` = column, ``y`` = row. Grouped arrays are
``(B, N, N, C)`` with group member ``c`` in channel ``c`` (for patch-grid data channel ``c``
sits at ``(row, col) = (c // gridsize, c % gridsize)``). Coordinate arrays are
``(B, 1, 2, C)`` with ``[..., 0, :]`` = x and ``[..., 1, :]`` = y.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _kernels
from ._kernels import as_array, as_complex_image

__all__ = [
    "OVERSAMPLING_FINDING",
    "get_neighbor_indices",
    "get_relative_coords",
    "normalize_data",
    "get_image_patches",
    "generate_groups_efficiently",
    "generate_groups_with_oversampling",
    "group_dataset",
]

logger = logging.getLogger(__name__)

SeedLike = int | np.integer | np.random.Generator | None

#: Largest temporary (bytes) the chunked gathers allocate beyond their outputs.
_CHUNK_BYTES = 64 * 2**20

#: The reference's finding id for its oversampling guards; the errors of those guards carry it
#: so that code (and PtychoPINN's tests) matching on it keep working.
OVERSAMPLING_FINDING = "OVERSAMPLING-001"


# --------------------------------------------------------------------------- helpers


def _coords(
    xcoords: Any, ycoords: Any, names: tuple[str, str] = ("xcoords", "ycoords")
) -> tuple[np.ndarray, np.ndarray]:
    kw: dict[str, Any] = {"ndim": 1, "allow_complex": False, "nonempty": False}
    x = as_array(names[0], xcoords, np.float64, allow_bool=False, **kw)
    y = as_array(names[1], ycoords, np.float64, allow_bool=False, **kw)
    if x.shape != y.shape:
        raise ValueError(f"{names[1]} must have the shape of {names[0]} {x.shape}, got {y.shape}")
    if x.size == 0:
        raise ValueError(f"{names[0]} must hold at least one position, got shape {x.shape}")
    _kernels.check_coordinate_range(names[0], x)
    _kernels.check_coordinate_range(names[1], y)
    return x, y


def _check_group_sizes(n: int, k: int, c: int) -> None:
    """The reference's two grouping preconditions, with the facts its messages give."""
    if n < c:
        raise ValueError(
            f"xcoords must hold at least C = {c} points (one group needs C distinct points, "
            f"C = gridsize**2), got {n}"
        )
    if k < c:
        raise ValueError(
            f"K={k} must be >= C={c}: each group takes C = gridsize**2 of the K nearest "
            f"neighbours (got K={k}, C={c}); raise K or lower gridsize"
        )


def _gather_channels(arr: np.ndarray, nn: np.ndarray) -> np.ndarray:
    """``arr[nn]`` as ``(B, H, W, C)`` (``arr`` is ``(M, H, W)``): in parallel for float32 and
    complex64, else filled chunk by chunk so the only full-size allocation is the result."""
    if arr.dtype == np.float32:
        return _kernels.gather_groups(arr, nn)
    if arr.dtype == np.complex64:
        return _kernels.gather_groups_complex(arr, nn)
    b, c = nn.shape
    out = np.empty((b, arr.shape[1], arr.shape[2], c), dtype=arr.dtype)
    per = max(1, _CHUNK_BYTES // max(1, c * arr[0].nbytes))
    for b0 in range(0, b, per):
        out[b0 : b0 + per] = np.transpose(arr[nn[b0 : b0 + per]], (0, 2, 3, 1))
    return out


def _all_finite(d: np.ndarray) -> bool:
    """Whether every value of ``d`` (``(M, ...)``) is finite, without a temporary the size of
    ``d``: integers always are; floats are checked block by block along the first axis."""
    if d.dtype.kind in "biu" or _kernels._finite_nonnegative_floats(d):
        return True
    per = max(1, _CHUNK_BYTES // max(1, d[0].size if d.ndim > 1 else 1))
    return all(bool(np.all(np.isfinite(d[i : i + per]))) for i in range(0, d.shape[0], per))


def _group_energies(d: np.ndarray) -> np.ndarray:
    """``sum_{h,w} d.astype(float64)**2`` per (group, channel) of a ``(B, N, N, C)`` array."""
    b = d.shape[0]
    out = np.empty((b, d.shape[3]), dtype=np.float64)
    per = max(1, _CHUNK_BYTES // max(1, 8 * int(np.prod(d.shape[1:]))))
    for b0 in range(0, b, per):
        x = d[b0 : b0 + per].astype(np.float64)
        out[b0 : b0 + per] = np.sum(x**2, axis=(1, 2))
    return out


# --------------------------------------------------------------------------- public API


def get_relative_coords(coords_nn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Group centroids and member offsets relative to them.

    Parameters
    ----------
    coords_nn : array_like, (B, 1, 2, C)
        Member coordinates of each group, ``[:, 0, 0, :]`` = x, ``[:, 0, 1, :]`` = y (pixels).

    Returns
    -------
    coords_offsets : numpy.ndarray, (B, 1, 2, 1)
        The centroid ``mean over C`` of each group.
    coords_relative : numpy.ndarray, (B, 1, 2, C)
        ``-(coords_nn - coords_offsets)``: note the minus sign (the reference's
        ``local_offset_sign = -1``); ``coords_offsets + coords_relative`` is the member position
        reflected through the centroid. Both keep the input's floating dtype (float64 for
        float64 input).

    Raises
    ------
    ValueError
        If ``coords_nn`` is not 4-D, has no members (``C == 0``), is not finite, or so large
        that its mean overflows (the reference returns NaN for both).
    TypeError
        If ``coords_nn`` is not a real numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[[[0.0, 2.0], [0.0, 4.0]]]])          # one group of two points
    >>> off, rel = get_relative_coords(c)
    >>> off[0, 0, :, 0], rel[0, 0, 0]
    (array([1., 2.]), array([ 1., -1.]))
    """
    c = _kernels._to_numpy("coords_nn", coords_nn)
    if c.dtype.kind not in "iuf":
        raise TypeError(f"coords_nn must hold real coordinates, got dtype {c.dtype}")
    if c.ndim != 4:
        raise ValueError(f"coords_nn must be 4-D (B, 1, 2, C), got shape {c.shape}")
    if c.shape[3] == 0:
        # The centroid of no members is undefined (NumPy's mean gives NaN and a warning).
        raise ValueError(f"coords_nn must hold C >= 1 members per group, got shape {c.shape}")
    if c.dtype.kind == "f" and not np.all(np.isfinite(c)):
        raise ValueError("coords_nn must be finite, got NaN or inf values")
    with np.errstate(over="ignore", invalid="ignore"):
        offsets = np.mean(c, axis=3)[..., None]
        relative = -(c - offsets)
    if relative.dtype.kind == "f" and not (
        np.all(np.isfinite(offsets)) and np.all(np.isfinite(relative))
    ):
        raise ValueError(
            f"coords_nn must stay within its dtype {c.dtype} when averaged, got values up to "
            f"{float(np.max(np.abs(c))):.4g}"
        )
    return offsets, relative


def get_neighbor_indices(xcoords: Any, ycoords: Any, K: int = 3) -> np.ndarray:
    """Each point's ``K + 1`` nearest points, the point itself included (reference helper).

    The reference's ``raw_data.get_neighbor_indices``: a k-d tree query of every point with
    ``k = K + 1``.

    Parameters
    ----------
    xcoords, ycoords : array_like, (n,)
        Scan positions in pixels (``x`` = column, ``y`` = row); finite, within ``±1e150``.
    K : int, default 3
        Neighbours per point besides the point itself (``>= 0``).

    Returns
    -------
    numpy.ndarray, int64, (n, K + 1)
        Row ``i`` lists point indices by increasing distance from point ``i``, exact ties by
        index, so column 0 is ``i`` itself unless another point coincides with it and has a
        lower index. When ``K + 1 > n`` the columns past ``n`` hold ``n``, the marker of a
        missing neighbour that the reference's ``scipy.spatial.cKDTree.query`` returns.

    Raises
    ------
    ValueError
        Coordinates of different lengths, empty, not finite or beyond ``±1e150``; ``K < 0``;
        an output too large for the available memory.
    TypeError
        Non-numeric or complex coordinates; ``K`` not an integer.

    Examples
    --------
    >>> get_neighbor_indices([0.0, 1.0, 5.0], [0.0, 0.0, 0.0], K=1).tolist()
    [[0, 1], [1, 0], [2, 1]]
    >>> get_neighbor_indices([0.0, 1.0], [0.0, 0.0], K=2).tolist()
    [[0, 1, 2], [1, 0, 2]]
    """
    x, y = _coords(xcoords, ycoords)
    k = _kernels._positive_int("K", K, minimum=0)
    n = x.size
    width = k + 1
    _kernels.require_memory(f"get_neighbor_indices: {n} points x K+1 = {width}", n * width * 8)
    pts = np.column_stack([x, y])
    idx, _ = _kernels.knn(pts, pts, min(width, n))
    if width <= n:
        return idx
    out = np.full((n, width), n, dtype=np.int64)
    out[:, :n] = idx
    return out


def normalize_data(dset: dict[str, Any], N: int) -> np.ndarray:
    """Scale grouped diffraction to a mean per-pattern energy of ``(N/2)**2``.

    The reference's ``raw_data.normalize_data``: ``f * diffraction.astype(float32)`` with
    ``f = float32(sqrt((N/2)**2 / mean_{b,c} sum_{h,w} diffraction**2))``, the sums taken in
    float64 and the mean over groups *and* channels.

    Parameters
    ----------
    dset : dict
        Must hold ``'diffraction'``, a real ``(B, N, N, C)`` array of amplitudes.
    N : int
        Patch size (the normalisation target is ``(N/2)**2``).

    Returns
    -------
    numpy.ndarray, float32, (B, N, N, C)
        The normalised amplitudes.

    Raises
    ------
    ValueError
        If the diffraction is not 4-D, empty, not finite, or zero everywhere (the reference
        divides by zero there and returns NaN), holds float64 values beyond float32 (the
        reference's cast gives inf there); ``N < 1``; the output does not fit in memory.
    TypeError
        If ``dset`` is not a dict, the diffraction is complex or not numeric, or ``N`` is not
        an integer.

    Examples
    --------
    >>> import numpy as np
    >>> d = {"diffraction": np.ones((3, 8, 8, 1), np.float32)}
    >>> x = normalize_data(d, 8)
    >>> float(np.mean(np.sum(x**2, axis=(1, 2))))
    16.0
    """
    n = _kernels._positive_int("N", N)
    if not isinstance(dset, Mapping):
        raise TypeError(
            "dset must be a dict holding a 'diffraction' array, got " + type(dset).__name__
        )
    if "diffraction" not in dset:
        raise ValueError("dset must hold a 'diffraction' array, got keys " + repr(list(dset)))
    d = _kernels._to_numpy("dset['diffraction']", dset["diffraction"])
    if d.dtype.kind not in "biuf":
        raise TypeError(f"dset['diffraction'] must be real, got dtype {d.dtype}")
    if d.ndim != 4 or d.size == 0:
        raise ValueError(f"dset['diffraction'] must be non-empty (B, N, N, C), got {d.shape}")
    return _normalized(d, n, "dset['diffraction']")


def _normalized(d: np.ndarray, n: int, name: str) -> np.ndarray:
    """``normalize_data`` of a real ``(B, N, N, C)`` array; errors name ``name``."""
    with np.errstate(over="ignore"):
        energies = _group_energies(d)
    if not np.all(np.isfinite(energies)):
        if d.dtype.kind == "f" and np.all(np.isfinite(d)):
            raise ValueError(
                f"{name} has values up to {_kernels._max_abs(d):.4g} whose squared sums overflow "
                "float64; the normalised float32 patterns could not hold them either"
            )
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    # The result is f * diffraction.astype(float32): a float64 value beyond float32 would
    # become inf there (the reference returns inf/NaN patterns silently).
    if d.dtype.itemsize > 4 and d.dtype.kind == "f":
        _kernels.check_fits(name, d, np.float32)
    f = _kernels._normalization_factor(float(np.mean(energies)), n, name)
    _kernels.require_memory(
        f"normalize_data: {d.shape[0]} groups of {d.shape[3]} float32 patterns",
        d.size * 4 * (2 if d.dtype != np.float32 else 1),
    )
    return f * d.astype(np.float32, copy=False)


def get_image_patches(
    gt_image: Any,
    global_offsets: Any,
    local_offsets: Any,
    N: int | None = None,
    gridsize: int | None = None,
) -> np.ndarray:
    """Object patches at ``global_offsets + local_offsets`` in channel format.

    The reference's ``raw_data.get_image_patches``. The combined offsets are rounded to float32
    (as the reference casts them) and patch ``(b, c)`` is
    ``patch[r, s] = bilinear(gt_image, row = y + r - N//2, col = x + s - N//2)``, zero outside
    the object, with ``(x, y) = (o[b, 0, 0, c], o[b, 0, 1, c])``, ``o = global + local``.

    Parameters
    ----------
    gt_image : array_like, (H, W), complex or real
        The object (converted to complex64; a trailing unit axis is dropped).
    global_offsets : array_like, (B, 1, 2, 1)
        Group positions (pixels, ``[..., 0, :]`` = x, ``[..., 1, :]`` = y).
    local_offsets : array_like, (B, 1, 2, C)
        Per-channel offsets added to ``global_offsets``; ``C = gridsize**2``.
    N : int, optional
        Patch size; ``None`` reads ``ptyfast.params.cfg['N']``, as the reference does.
    gridsize : int, optional
        Channels per group are ``gridsize**2``; ``None`` reads ``ptyfast.params.cfg['gridsize']``.

    Returns
    -------
    numpy.ndarray, complex64, (B, N, N, C)
        The patches (the reference returns the same values as a ``tf.Tensor``).

    Raises
    ------
    ValueError
        On shape mismatches, non-finite offsets or ``N``/``gridsize`` below 1.

    Examples
    --------
    >>> import numpy as np
    >>> obj = np.zeros((64, 64), np.complex64); obj[20, 30] = 1
    >>> g = np.array([[[[30.0], [20.0]]]])                 # x = 30, y = 20
    >>> p = get_image_patches(obj, g, np.zeros((1, 1, 2, 1)), 8, 1)
    >>> p.shape, complex(p[0, 4, 4, 0])
    ((1, 8, 8, 1), (1+0j))
    """
    obj = as_complex_image("gt_image", gt_image)
    if N is None or gridsize is None:
        from . import params

        N = params.cfg["N"] if N is None else N
        gridsize = params.cfg["gridsize"] if gridsize is None else gridsize
    n = _kernels._positive_int("N", N)
    g = _kernels._positive_int("gridsize", gridsize)
    c = g * g
    go = as_array("global_offsets", global_offsets, np.float64, ndim=4, allow_complex=False)
    b = go.shape[0]
    go = as_array("global_offsets", go, np.float64, shape=(b, 1, 2, 1), allow_complex=False)
    lo = as_array(
        "local_offsets", local_offsets, np.float64, shape=(b, 1, 2, c), allow_complex=False
    )
    with np.errstate(over="ignore"):
        offsets = (go + lo).astype(np.float32)
    if not np.all(np.isfinite(offsets)):
        raise ValueError(
            "global_offsets + local_offsets must fit float32 (the reference rounds them), got "
            "values beyond 3.4e38"
        )
    _kernels.require_memory(
        f"get_image_patches: {b} groups of C = {c} complex64 patches of N = {n}",
        b * c * n * n * 8,
    )
    # Flattened b-major, c-minor; columns [x, y].
    pos = np.ascontiguousarray(offsets[:, 0].transpose(0, 2, 1).reshape(b * c, 2), np.float64)
    if c == 1:
        return _kernels.extract_patches(obj, pos, n).reshape(b, n, n, 1)
    out = np.empty((b, n, n, c), dtype=np.complex64)
    per = max(1, _CHUNK_BYTES // (c * n * n * 8))
    for b0 in range(0, b, per):
        b1 = min(b, b0 + per)
        p = _kernels.extract_patches(obj, pos[b0 * c : b1 * c], n)
        out[b0:b1] = p.reshape(b1 - b0, c, n, n).transpose(0, 2, 3, 1)
    return out


def generate_groups_efficiently(
    xcoords: Any,
    ycoords: Any,
    nsamples: int,
    K: int,
    C: int,
    seed: SeedLike = None,
    seed_indices: Any = None,
) -> np.ndarray:
    """Standard "sample-then-group" selection (the reference's ``_generate_groups_efficiently``).

    1. Seeds: ``seed_indices[:n]`` when given, and then the stream is seeded with **0** whatever
       ``seed`` is (the reference forces ``np.random.seed(0)`` for sequential sampling).
       Otherwise ``m = min(nsamples, n)`` seeds: ``choice(arange(n), m, replace=False)`` (random
       order) when ``m < n``, else ``arange(n)`` with no draw (also when ``nsamples > n``, which
       logs a warning).
    2. ``C == 1``: each seed is its own group; no neighbour search.
    3. ``C > 1``: per seed, in order, its ``K`` nearest neighbours *excluding itself* (all ``n``
       points, self included, when ``n <= K``), then ``choice(neighbours, C, replace=False)``.

    Parameters
    ----------
    xcoords, ycoords : array_like, (n,)
        Scan positions in pixels (x = column, y = row); finite.
    nsamples : int
        Number of groups wanted (>= 1); at most ``n`` are produced.
    K : int
        Neighbours considered per seed (``K >= C``).
    C : int
        Group size, ``gridsize**2``.
    seed : int, numpy.random.Generator or None
        ``np.random.seed`` value of the reference (``[0, 2**32)``); ``None`` uses fresh entropy.
    seed_indices : array_like of int, optional
        Fixed seeds (sequential sampling).

    Returns
    -------
    numpy.ndarray, (n_seeds, C)
        Point indices; int32 for ``C > 1``, int64 for ``C == 1`` (the reference's dtypes).

    Raises
    ------
    ValueError
        If ``n < C`` or ``K < C``; non-finite or mismatched coordinates; ``seed_indices`` out of
        range; ``seed`` outside ``[0, 2**32)``; counts below 1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(0, 100, (2, 50))
    >>> generate_groups_efficiently(x, y, 10, 7, 4, seed=1).shape
    (10, 4)
    """
    x, y = _coords(xcoords, ycoords)
    ns = _kernels._positive_int("nsamples", nsamples)
    k = _kernels._positive_int("K", K)
    c = _kernels._positive_int("C", C)
    n = x.size
    _check_group_sizes(n, k, c)
    if seed_indices is None:
        s = _kernels.legacy_seed(seed)
        if ns > n:
            logger.warning("requested %d groups but only %d points: using all points", ns, n)
    else:
        s = 0
    groups = _kernels.sample_then_group(x, y, ns, k, c, s, seed_indices)
    logger.info("grouped %d seeds of %d points (K=%d, C=%d)", groups.shape[0], n, k, c)
    return groups if c == 1 else groups.astype(np.int32)


def generate_groups_with_oversampling(
    xcoords: Any,
    ycoords: Any,
    nsamples: int,
    K: int,
    C: int,
    seed: SeedLike = None,
    seed_indices: Any = None,
) -> np.ndarray:
    """K-choose-C oversampling (the reference's ``_generate_groups_with_oversampling``).

    More groups than points: with ``M = comb(K, C)`` (1 for ``C == 1``),
    ``min_seeds = ceil(nsamples / M)`` and ``n_seeds = min(2 * min_seeds, n)``, the seeds are the
    first ``n_seeds`` of ``seed_indices`` if it holds at least ``min_seeds`` entries, else
    ``choice(arange(n), n_seeds, replace=False)`` when ``n_seeds < n``, else ``arange(n)``. The
    stream is seeded with ``seed`` in every case (unlike the standard path).

    * ``C == 1``: ``choice(seeds, nsamples, replace=nsamples > len(seeds))``.
    * ``C > 1``: a pool of every ``C``-combination of each seed's ``K`` nearest neighbours (self
      excluded), seed after seed in ``itertools.combinations`` order, stopping once it holds
      ``2 * nsamples``; the result is ``pool[choice(len(pool), nsamples,
      replace=nsamples > len(pool))]``. (The pool is never built: selected rows are un-ranked.)

    Parameters
    ----------
    xcoords, ycoords : array_like, (n,)
        Scan positions in pixels; finite.
    nsamples : int
        Number of groups (>= 1).
    K : int
        Neighbour pool size per seed (``K >= C``).
    C : int
        Group size, ``gridsize**2``.
    seed : int, numpy.random.Generator or None
        ``np.random.seed`` value of the reference; ``None`` uses fresh entropy.
    seed_indices : array_like of int, optional
        Preferred seeds (sequential sampling).

    Returns
    -------
    numpy.ndarray, int64, (nsamples, C)
        Point indices (int64, as the reference builds them with ``np.array``).

    Raises
    ------
    ValueError
        If ``n < C`` or ``K < C``, and on the input errors of
        :func:`generate_groups_efficiently`.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.random.default_rng(0).uniform(0, 100, (2, 20))
    >>> generate_groups_with_oversampling(x, y, 100, 6, 4, seed=3).shape
    (100, 4)
    """
    x, y = _coords(xcoords, ycoords)
    ns = _kernels._positive_int("nsamples", nsamples)
    k = _kernels._positive_int("K", K)
    c = _kernels._positive_int("C", C)
    _check_group_sizes(x.size, k, c)
    groups = _kernels.oversample_groups(x, y, ns, k, c, _kernels.legacy_seed(seed), seed_indices)
    logger.info(
        "oversampled %d groups from %d points (K=%d, C=%d, %d combinations per seed)",
        ns,
        x.size,
        k,
        c,
        math.comb(k, c),
    )
    return groups


def group_dataset(
    xcoords: Any,
    ycoords: Any,
    xcoords_start: Any,
    ycoords_start: Any,
    diff3d: Any,
    *,
    N: int,
    K: int = 4,
    nsamples: int = 1,
    seed: SeedLike = None,
    sequential_sampling: bool = False,
    gridsize: int,
    enable_oversampling: bool = False,
    neighbor_pool_size: int | None = None,
    Y: Any = None,
    objectGuess: Any = None,
    sample_indices: Any = None,
) -> dict[str, Any]:
    """Group scan positions and assemble the grouped dataset (``RawData.generate_grouped_data``).

    Mode selection, as the reference: with ``C = gridsize**2`` and ``n`` points, oversampling is
    needed iff ``nsamples > n and C > 1``; it then requires ``enable_oversampling`` and
    ``(neighbor_pool_size or K) >= C`` and uses :func:`generate_groups_with_oversampling` with
    that pool size. Otherwise :func:`generate_groups_efficiently` with ``K``. Sequential sampling
    uses ``seed_indices = arange(min(nsamples, n))``.

    Parameters
    ----------
    xcoords, ycoords : array_like, (n,)
        Scan positions (pixels, x = column, y = row); finite.
    xcoords_start, ycoords_start : array_like, (n,) or None
        Start positions; both ``None`` gives ``None`` start coordinates.
    diff3d : array_like, real, (n, N, N)
        Diffraction amplitudes, one pattern per position. float32 takes the parallel path.
    N : int
        Patch size; must equal ``diff3d.shape[1:]``.
    K : int
        Neighbours per seed (default 4).
    nsamples : int
        Number of groups (default 1).
    seed : int, numpy.random.Generator or None
        ``np.random.seed`` value of the reference (``[0, 2**32)``); ``None``: fresh entropy.
    sequential_sampling : bool
        Seeds are the first ``nsamples`` points (the standard path then draws from seed 0).
    gridsize : int
        Group side; ``C = gridsize**2`` patterns per group.
    enable_oversampling : bool
        Allow K-choose-C oversampling when ``nsamples > n`` and ``C > 1``.
    neighbor_pool_size : int, optional
        Neighbour pool for oversampling (default ``K``).
    Y : array_like, (n, N, N) or (n, N, N, 1), optional
        Stored ground-truth patches; takes precedence over ``objectGuess``.
    objectGuess : array_like, (H, W), optional
        Object from which ground-truth patches are cut when ``Y`` is absent.
    sample_indices : array_like, optional
        Copied into the result when given.

    Returns
    -------
    dict
        * ``diffraction``: ``(B, N, N, C)``, ``diff3d[nn_indices]`` in diff3d's dtype.
        * ``Y``: stored ``Y[nn_indices]`` as ``(B, N, N, C)`` (dtype kept); else complex64
          patches of ``objectGuess`` at ``coords_offsets + coords_relative``; else ``None``.
          **Reflection quirk** (kept from the reference): for ``C > 1`` channel ``c`` is cut at
          ``2 * centroid - coord_c``, the member's position reflected through the group
          centroid, not at the member's own position (for ``C == 1`` they coincide).
        * ``coords_offsets`` ``(B, 1, 2, 1)``, ``coords_relative`` ``(B, 1, 2, C)``,
          ``coords_nn`` ``(B, 1, 2, C)``: float64, see :func:`get_relative_coords`.
        * ``coords_start_offsets``, ``coords_start_relative``, ``coords_start_nn``: the same from
          the start coordinates, or ``None``.
        * ``nn_indices``: ``(B, C)``, int32 for ``C > 1`` on the standard path, int64 for
          ``C == 1`` and for oversampling.
        * ``objectGuess``: passed through.
        * ``sample_indices``: a copy, only when given.
        * ``X_full``: float32, :func:`normalize_data` of the diffraction (mean per-pattern
          energy ``(N/2)**2``).
        * ``seed``: the integer seed the group draws used (``seed`` resolved: fresh entropy
          for ``None``, one draw from a ``Generator``; 0 for sequential sampling, which the
          reference forces), so every grouping can be replayed. Not in the reference's dict.

    Raises
    ------
    ValueError
        Oversampling needed but not enabled, or pool smaller than ``C`` (both messages carry
        the reference's finding id ``OVERSAMPLING-001``); ``n < C`` or ``K < C`` (``"K=3 must
        be >= C=5 ..."``); coordinate arrays of different lengths, non-finite or beyond
        ``±1e150``; ``diff3d`` not ``(n, N, N)``, not finite or zero in every selected pattern;
        ``Y`` of the wrong length; counts below 1; ``seed`` outside ``[0, 2**32)``; outputs
        larger than the available memory (checked before anything is allocated).
    TypeError
        Non-integer counts, complex ``diff3d``, non-numeric ``Y`` (e.g. strings).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(20, 80, (2, 100))
    >>> d = rng.random((100, 16, 16), dtype=np.float32)
    >>> out = group_dataset(x, y, x, y, d, N=16, K=6, nsamples=30, seed=0, gridsize=2)
    >>> out["X_full"].shape, out["nn_indices"].dtype
    ((30, 16, 16, 4), dtype('int32'))
    """
    x, y = _coords(xcoords, ycoords)
    n_pts = x.size
    if (xcoords_start is None) != (ycoords_start is None):
        raise ValueError("xcoords_start and ycoords_start must both be arrays or both be None")
    starts: tuple[np.ndarray, np.ndarray] | None = None
    if xcoords_start is not None:
        xs, ys = _coords(xcoords_start, ycoords_start, ("xcoords_start", "ycoords_start"))
        if xs.shape != x.shape:
            raise ValueError(
                f"xcoords_start must have the shape of xcoords {x.shape}, got {xs.shape}"
            )
        starts = (xs, ys)
    n = _kernels._positive_int("N", N)
    d = _kernels._to_numpy("diff3d", diff3d)
    if d.dtype.kind not in "biuf":
        raise TypeError(f"diff3d must be a real array, got dtype {d.dtype}")
    if d.shape != (n_pts, n, n):
        raise ValueError(
            f"diff3d must be (n, N, N) = ({n_pts}, {n}, {n}) (one pattern per coordinate), "
            f"got {d.shape}"
        )
    k = _kernels._positive_int("K", K)
    ns = _kernels._positive_int("nsamples", nsamples)
    g = _kernels._positive_int("gridsize", gridsize)
    pool = (
        None
        if neighbor_pool_size is None
        else _kernels._positive_int("neighbor_pool_size", neighbor_pool_size)
    )
    sequential_sampling = _kernels._flag("sequential_sampling", sequential_sampling)
    enable_oversampling = _kernels._flag("enable_oversampling", enable_oversampling)
    c = g * g
    if Y is not None:
        Y = _kernels._to_numpy("Y", Y)
        if Y.dtype.kind not in "biufc":
            raise TypeError(f"Y must hold numeric ground-truth patches, got dtype {Y.dtype}")
        if Y.ndim not in (3, 4) or Y.shape[0] != n_pts or (Y.ndim == 4 and Y.shape[3] != 1):
            raise ValueError(f"Y must be ({n_pts}, H, W) or ({n_pts}, H, W, 1), got {Y.shape}")

    effective_k = pool if pool is not None else k
    needs_oversampling = ns > n_pts and c > 1
    if needs_oversampling:
        if not enable_oversampling:
            raise ValueError(
                f"nsamples={ns} groups exceed the {n_pts} scan positions (gridsize={g}, C={c}): "
                f"that needs K-choose-C oversampling, which must be asked for explicitly "
                f"({OVERSAMPLING_FINDING}); pass enable_oversampling=True (with "
                f"neighbor_pool_size >= C={c}) or ask for nsamples <= {n_pts}"
            )
        if effective_k < c:
            raise ValueError(
                f"K-choose-C oversampling needs neighbor_pool_size >= C (C = gridsize**2 = {c}), "
                f"got neighbor_pool_size={effective_k} ({OVERSAMPLING_FINDING})"
            )
    _check_group_sizes(n_pts, effective_k if needs_oversampling else k, c)
    b = ns if needs_oversampling else min(ns, n_pts)
    _kernels.require_memory(
        f"generate_grouped_data: nsamples={ns} groups of C={c} patterns of N={n}",
        _grouped_bytes(b, c, n, n_pts, d, Y, objectGuess, starts is not None)
        + (_kernels.oversampled_bytes(ns, effective_k, c, n_pts) if needs_oversampling else 0),
    )
    if sequential_sampling and not needs_oversampling:
        used_seed = 0  # the reference forces np.random.seed(0) for sequential sampling
    else:
        used_seed = _kernels.legacy_seed(seed)
    seed_indices = np.arange(min(ns, n_pts)) if sequential_sampling else None
    if needs_oversampling:
        logger.info("using K-choose-C oversampling: %d groups from %d points", ns, n_pts)
        nn = generate_groups_with_oversampling(x, y, ns, effective_k, c, used_seed, seed_indices)
    else:
        nn = generate_groups_efficiently(x, y, ns, k, c, used_seed, seed_indices)

    x_full: np.ndarray | None = None
    if d.dtype == np.float32:
        diffraction, x_full, _ = _kernels.group_diffraction(d, nn, n)
    else:
        if not _all_finite(d):
            raise ValueError("diff3d must be finite, got NaN or inf values")
        diffraction = _gather_channels(d, nn)

    coords_nn = np.stack([x[nn], y[nn]], axis=1)[:, None]
    coords_offsets, coords_relative = get_relative_coords(coords_nn)
    coords_start_nn: np.ndarray | None = None
    coords_start_offsets: np.ndarray | None = None
    coords_start_relative: np.ndarray | None = None
    if starts is not None:
        coords_start_nn = np.stack([starts[0][nn], starts[1][nn]], axis=1)[:, None]
        coords_start_offsets, coords_start_relative = get_relative_coords(coords_start_nn)

    if Y is not None:
        logger.info("using the stored Y patches")
        y4d = _gather_channels(Y[..., 0] if Y.ndim == 4 else Y, nn)
    elif objectGuess is not None:
        logger.info("cutting Y patches from objectGuess (reflected positions for C > 1)")
        y4d = get_image_patches(objectGuess, coords_offsets, coords_relative, n, g)
    else:
        y4d = None

    dset: dict[str, Any] = {
        "diffraction": diffraction,
        "Y": y4d,
        "coords_offsets": coords_offsets,
        "coords_relative": coords_relative,
        "coords_start_offsets": coords_start_offsets,
        "coords_start_relative": coords_start_relative,
        "coords_nn": coords_nn,
        "coords_start_nn": coords_start_nn,
        "nn_indices": nn,
        "objectGuess": objectGuess,
    }
    if sample_indices is not None:
        dset["sample_indices"] = np.array(sample_indices, copy=True)
    dset["X_full"] = x_full if x_full is not None else _normalized(diffraction, n, "diff3d")
    dset["seed"] = used_seed
    return dset


def _grouped_bytes(
    b: int, c: int, n: int, n_pts: int, d: np.ndarray, Y: Any, objectGuess: Any, starts: bool
) -> int:
    """Bytes of the arrays :func:`group_dataset` returns for ``b`` groups of ``c`` patterns."""
    pattern = n * n
    total = b * c * pattern * (d.itemsize + 4)  # diffraction (input dtype) and X_full
    if Y is not None:
        total += b * c * int(np.prod(Y.shape[1:3])) * Y.itemsize
    elif objectGuess is not None:
        total += b * c * pattern * 8
    total += b * c * 8 + (2 if starts else 1) * 3 * b * 2 * c * 8  # nn_indices, coordinates
    return total + 16 * b * min(c, n_pts)

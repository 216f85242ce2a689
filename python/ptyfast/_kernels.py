"""The one validating layer over the compiled kernels (``ptyfast._core``).

Every public function here checks and coerces its arguments (dtype, contiguity, shape,
finiteness, ranges) and raises :class:`ValueError` / :class:`TypeError` naming the argument,
the expected and the received value *before* any Rust code runs. Inputs are never modified:
arrays that already have the right dtype and layout are passed as read-only views, everything
else is copied.

Conventions are those of the README ("Conventions"): coordinates in object pixels with
``x`` = column and ``y`` = row, position ``(x, y)`` sampled at patch pixel ``(N//2, N//2)``,
far-field amplitude ``|fftshift(fft2(scale * probe * patch))| / N``, amplitudes (not
intensities), one random stream per pattern derived from ``(seed, pattern index)``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from ._core import PtyfastError

__all__ = [
    "PtyfastError",
    "as_array",
    "as_complex_image",
    "as_positions",
    "resolve_seed",
    "extract_patches",
    "diffract",
    "observe_amplitudes",
    "poisson_counts",
    "illuminated_energy",
    "simulate",
    "knn",
    "sample_then_group",
    "oversample_groups",
    "gather_groups",
    "num_threads",
]

SeedLike = int | np.integer | np.random.Generator | np.random.RandomState | None


# --------------------------------------------------------------------------- coercion helpers


def _to_numpy(name: str, a: Any) -> np.ndarray:
    """NumPy view of ``a``; TensorFlow tensors (anything with ``.numpy()``) are converted."""
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    return arr


def as_array(
    name: str,
    a: Any,
    dtype: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    finite: bool = True,
    allow_complex: bool = True,
    nonnegative: bool = False,
    nonempty: bool = True,
) -> np.ndarray:
    """Checked, C-contiguous array of ``dtype``; copies only when needed.

    ``shape`` entries that are ``None`` match any size. Real input is accepted where ``dtype``
    is complex; complex input where ``dtype`` is real raises unless ``allow_complex``.
    """
    arr = _to_numpy(name, a)
    kind = arr.dtype.kind
    if kind not in "biufc":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    target = np.dtype(dtype)
    if kind == "c" and target.kind != "c" and not allow_complex:
        raise TypeError(f"{name} must be real ({target}), got complex dtype {arr.dtype}")
    if target.kind in "iu" and kind not in "biu":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype} with fractions")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if shape is not None:
        ok = arr.ndim == len(shape) and all(
            s is None or s == d for s, d in zip(shape, arr.shape, strict=False)
        )
        if not ok:
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if finite and kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    if nonnegative and arr.size and np.min(arr.real) < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {np.min(arr.real)}")
    return np.ascontiguousarray(arr, dtype=target)


def as_complex_image(name: str, a: Any, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A 2-D complex64 array (real input converted); a trailing unit channel is dropped."""
    arr = _to_numpy(name, a)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if shape is not None:
        return as_array(name, arr, np.complex64, shape=shape)
    return as_array(name, arr, np.complex64, ndim=2)


def as_positions(name: str, a: Any) -> np.ndarray:
    """``(M, 2)`` float64 positions, columns ``x`` (column) and ``y`` (row)."""
    return as_array(name, a, np.float64, shape=(None, 2), allow_complex=False)


def _positive_int(name: str, v: Any, *, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    if int(v) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def _positive_float(name: str, v: Any) -> float:
    if hasattr(v, "numpy"):
        v = v.numpy()
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a positive number, got {type(v).__name__}") from exc
    if not np.isfinite(f) or f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {f}")
    return f


def resolve_seed(seed: SeedLike, name: str = "seed") -> int:
    """A 64-bit integer seed from ``seed``.

    ``None`` draws fresh OS entropy; an integer is used as is (it must be in ``[0, 2**64)``);
    a :class:`numpy.random.Generator` or ``RandomState`` gives one draw from it (advancing it).
    """
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, np.random.RandomState):
        return int(seed.randint(0, 2**63, dtype=np.int64))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, numpy.random.Generator or None, got {type(seed).__name__}"
        )
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return int(seed)


def _check_probe(probe: Any, n: int | None = None, name: str = "probe") -> np.ndarray:
    p = as_complex_image(name, probe)
    if p.shape[0] != p.shape[1]:
        raise ValueError(f"{name} must be square (N, N), got {p.shape}")
    if n is not None and p.shape[0] != n:
        raise ValueError(f"{name} must be (N, N) = ({n}, {n}), got {p.shape}")
    if p.shape[0] < 2:
        raise ValueError(f"{name} must be at least (2, 2), got {p.shape}")
    return p


# --------------------------------------------------------------------------- kernels


def extract_patches(obj: Any, positions: Any, N: int) -> np.ndarray:
    """Bilinear sub-pixel patches of ``obj`` centred on ``positions``.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object; converted to complex64.
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels (``x`` = column, ``y`` = row).
    N : int
        Patch size.

    Returns
    -------
    numpy.ndarray, complex64, (M, N, N)
        ``patch[r, c] = bilinear(obj, row = y + r - N//2, col = x + c - N//2)``, zero outside.
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    n = _positive_int("N", N)
    return _core.extract_patches(o, p, n)


def diffract(patches: Any, probe: Any, scale: float = 1.0) -> np.ndarray:
    """Far-field amplitudes ``|fftshift(fft2(scale * probe * patch))| / N`` (float32, (M, N, N))."""
    pa = as_array("patches", patches, np.complex64, ndim=3)
    if pa.shape[1] != pa.shape[2]:
        raise ValueError(f"patches must be (M, N, N), got {pa.shape}")
    pr = _check_probe(probe, pa.shape[1])
    return _core.diffract(pa, pr, np.float32(_positive_float("scale", scale)))


def observe_amplitudes(
    amplitudes: Any, seed: SeedLike = None, *, first_index: int = 0
) -> np.ndarray:
    """Noisy amplitudes ``sqrt(Poisson(amplitudes**2))``, sampled exactly.

    Each amplitude ``A`` is replaced by ``sqrt(K)`` with ``K`` drawn from the exact Poisson
    law of rate ``A**2`` (photon counts; no normal approximation at any rate, from 0 to beyond
    1e9 counts per pixel); zero amplitudes stay exactly 0. Pattern ``i`` draws from its own
    random stream ``(seed, first_index + i)``, so the result does not depend on the number of
    threads or on how a dataset is split into calls. Amplitudes, not intensities, as
    everywhere in ptyfast (README, "Conventions").

    Parameters
    ----------
    amplitudes : array_like, (M, N, N) or any (M, H, W), real
        Noise-free amplitudes, finite and non-negative; converted to float32 (C order).
    seed : int, numpy.random.Generator, numpy.random.RandomState or None
        Randomness: an integer in ``[0, 2**64)`` is used as is, a generator gives one draw
        (advancing it), None draws fresh OS entropy.
    first_index : int, keyword-only
        Stream index of the first pattern (``>= 0``); pattern ``i`` uses ``first_index + i``.

    Returns
    -------
    numpy.ndarray, float32, same shape
        ``sqrt(K)`` rounded to float32 (its square is an integer within float32 precision).
        The input is not modified.

    Raises
    ------
    ValueError
        Amplitudes not 3-D, empty, negative, NaN or infinite; a seed or first_index out of
        range.
    TypeError
        Complex or non-numeric amplitudes; a seed or first_index of the wrong type.

    Examples
    --------
    >>> a = np.full((2, 4, 4), 10.0, np.float32)     # 100 expected photons per pixel
    >>> noisy = observe_amplitudes(a, seed=0)
    >>> noisy.shape, noisy.dtype
    ((2, 4, 4), dtype('float32'))
    >>> counts = np.round(noisy.astype(np.float64) ** 2)  # the photon counts
    >>> bool(np.all(noisy == np.sqrt(counts).astype(np.float32)))
    True
    """
    a = as_array(
        "amplitudes", amplitudes, np.float32, ndim=3, allow_complex=False, nonnegative=True
    )
    s = resolve_seed(seed)
    fi = _positive_int("first_index", first_index, minimum=0)
    return _core.poisson_amplitudes(a, s, fi)


def poisson_counts(rates: Any, seed: SeedLike = None, *, stream: int = 0) -> np.ndarray:
    """Exact Poisson counts for a vector of rates, all drawn from one stream.

    The sampler of :func:`observe_amplitudes`, exposed on rates (expected counts) for tests
    and statistics; the rates are consumed in blocks from stream ``(seed, stream)``.

    Parameters
    ----------
    rates : array_like, (n,), real
        Expected counts, finite and non-negative; converted to float64.
    seed : int, numpy.random.Generator, numpy.random.RandomState or None
        As in :func:`observe_amplitudes`.
    stream : int, keyword-only
        Stream index (``>= 0``), as a pattern index would be.

    Returns
    -------
    numpy.ndarray, float64, (n,)
        Integer-valued counts (rounded to the nearest float64 above 2**53); 0 where the rate
        is 0.

    Raises
    ------
    ValueError
        Rates not 1-D, empty, negative, NaN or infinite; seed or stream out of range.
    TypeError
        Complex or non-numeric rates; seed or stream of the wrong type.

    Examples
    --------
    >>> k = poisson_counts(np.full(100_000, 3.5), seed=1)
    >>> bool(abs(k.mean() - 3.5) < 0.05)
    True
    """
    r = as_array("rates", rates, np.float64, ndim=1, allow_complex=False, nonnegative=True)
    return _core.poisson_counts(r, resolve_seed(seed), _positive_int("stream", stream, minimum=0))


def illuminated_energy(obj: Any, positions: Any, probe: Any) -> np.ndarray:
    """Per-pattern ``sum |probe * patch|**2`` (float64, (M,)), without an FFT."""
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    pr = _check_probe(probe)
    return _core.illuminated_energy(o, p, pr)


def simulate(
    obj: Any,
    positions: Any,
    probe: Any,
    *,
    scale: float = 1.0,
    poisson: bool = True,
    seed: SeedLike = None,
    first_index: int = 0,
    divide_by_scale: bool = False,
    return_patches: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fused simulation: patch → probe → FFT → optional Poisson noise, one pass per pattern.

    Returns ``(amplitudes, patches)``: float32 ``(M, N, N)`` amplitudes of
    ``scale * probe * patch`` (observed as ``sqrt(Poisson(A**2))`` when ``poisson``; divided
    by ``scale`` when ``divide_by_scale``) and the complex64 pre-probe patches, or ``None``.
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    pr = _check_probe(probe)
    sc = np.float32(_positive_float("scale", scale))
    s = resolve_seed(seed) if poisson else None
    fi = _positive_int("first_index", first_index, minimum=0)
    return _core.simulate(o, p, pr, sc, s, fi, bool(divide_by_scale), bool(return_patches))


def knn(points: Any, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``points`` of each query: ``(indices int64 (Q, k), distances (Q, k))``,
    ordered by distance, ties by index."""
    p = as_positions("points", points)
    q = as_positions("queries", queries)
    kk = _positive_int("k", k)
    if kk > p.shape[0]:
        raise ValueError(f"k must be <= the number of points ({p.shape[0]}), got {kk}")
    return _core.knn(p, q, kk)


def _coords_1d(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xs = as_array("xcoords", x, np.float64, ndim=1, allow_complex=False)
    ys = as_array("ycoords", y, np.float64, ndim=1, allow_complex=False)
    if xs.shape != ys.shape:
        raise ValueError(f"ycoords must have the shape of xcoords {xs.shape}, got {ys.shape}")
    return xs, ys


def _seed_indices(seed_indices: Any, n: int) -> np.ndarray | None:
    if seed_indices is None:
        return None
    si = as_array("seed_indices", seed_indices, np.int64, ndim=1, nonempty=False)
    if si.size and (si.min() < 0 or si.max() >= n):
        raise ValueError(f"seed_indices must lie in [0, {n}), got range [{si.min()}, {si.max()}]")
    return si


def sample_then_group(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference "sample-then-group" selection; ``(n_seeds, C)`` int64 point indices."""
    xs, ys = _coords_1d(x, y)
    return _core.sample_then_group(
        xs,
        ys,
        _positive_int("nsamples", nsamples),
        _positive_int("K", K),
        _positive_int("C", C),
        _seed32(seed),
        _seed_indices(seed_indices, xs.size),
    )


def oversample_groups(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference K-choose-C oversampling; ``(nsamples, C)`` int64 point indices."""
    xs, ys = _coords_1d(x, y)
    return _core.oversample_groups(
        xs,
        ys,
        _positive_int("nsamples", nsamples),
        _positive_int("K", K),
        _positive_int("C", C),
        _seed32(seed),
        _seed_indices(seed_indices, xs.size),
    )


def _seed32(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    return int(seed)


def gather_groups(diff3d: Any, groups: Any) -> np.ndarray:
    """``diff3d[groups]`` rearranged to ``(B, N, N, C)`` float32."""
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    return _core.gather_groups(d, g)


def num_threads() -> int:
    """Worker threads of the kernels (``RAYON_NUM_THREADS``, else one per core)."""
    return int(_core.num_threads())

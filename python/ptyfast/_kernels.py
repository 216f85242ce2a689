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
    "from_tensor",
    "legacy_random_state",
    "legacy_seed",
    "channel_energies",
    "extract_grid_patches",
    "illuminate_groups",
    "PtyfastError",
    "as_array",
    "as_complex_image",
    "as_positions",
    "resolve_seed",
    "extract_patches",
    "diffract",
    "observe_amplitudes",
    "poisson_counts",
    "POISSON_STREAMS",
    "illuminated_energy",
    "simulate",
    "knn",
    "sample_then_group",
    "oversample_groups",
    "gather_groups",
    "num_threads",
    "simd_level",
    "gather_groups_scaled",
    "pattern_energies",
    "legacy_permutation",
    "legacy_choice",
    "legacy_uniform",
    "legacy_raw",
    "group_diffraction",
    "gather_groups_complex",
]

SeedLike = int | np.integer | np.random.Generator | np.random.RandomState | None

#: Names of the Poisson noise streams, oldest first (README, "Noise streams").
POISSON_STREAMS = ("v1", "v2")


# --------------------------------------------------------------------------- coercion helpers


def from_tensor(a: Any) -> Any:
    """A TensorFlow tensor (anything with ``.numpy()``) as NumPy; anything else unchanged."""
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray | np.generic):
        return a.numpy()
    return a


def _to_numpy(name: str, a: Any) -> np.ndarray:
    """NumPy view of ``a``; TensorFlow tensors (anything with ``.numpy()``) are converted."""
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    a = from_tensor(a)
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
    v = from_tensor(v)
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
    if isinstance(seed, np.random.RandomState):
        return int(seed.randint(0, 2**63, dtype=np.int64))
    return _integer_seed(seed, 64, name)


def _integer_seed(seed: Any, bits: int, name: str) -> int:
    """An integer seed in ``[0, 2**bits)``: fresh OS entropy for ``None``, one draw from a
    ``Generator`` (advancing it), an int as is."""
    if seed is None:
        dtype = np.uint64 if bits == 64 else np.uint32
        return int(np.random.SeedSequence().generate_state(1, dtype)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**bits, dtype=np.uint64))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, numpy.random.Generator or None, got {type(seed).__name__}"
        )
    if not 0 <= int(seed) < 2**bits:
        raise ValueError(f"{name} must be between 0 and 2**{bits} - 1, got {seed}")
    return int(seed)


def legacy_seed(seed: Any, name: str = "seed") -> int:
    """A 32-bit seed for NumPy's legacy MT19937 stream, as ``np.random.seed`` accepts it.

    An int in ``[0, 2**32)`` is used as is; a ``Generator`` gives one draw (advancing it);
    ``None`` draws fresh OS entropy (NumPy's global state is never read).
    """
    return _integer_seed(seed, 32, name)


def legacy_random_state(seed: Any, name: str = "seed") -> np.random.RandomState:
    """A private legacy ``RandomState``: ``seed`` as in :func:`legacy_seed`, or a
    ``RandomState`` used as is (and advanced). Its draws equal the reference's after
    ``np.random.seed(seed)``."""
    if isinstance(seed, np.random.RandomState):
        return seed
    if seed is not None and not isinstance(seed, (np.random.Generator, numbers.Integral)):
        raise TypeError(
            f"{name} must be an int, numpy.random.RandomState, numpy.random.Generator or "
            f"None, got {type(seed).__name__}"
        )
    return np.random.RandomState(legacy_seed(seed, name))


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
        The object; converted to complex64. A trailing unit channel ``(H, W, 1)`` is dropped.
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels (``x`` = column, ``y`` = row); finite.
    N : int
        Patch size, at least 1.

    Returns
    -------
    numpy.ndarray, complex64, (M, N, N)
        ``patch[r, c] = bilinear(obj, row = y + r - N//2, col = x + c - N//2)``: the position
        is sampled at patch pixel ``(N//2, N//2)``. Corners outside the object contribute
        zero. Coordinates and weights are computed in float32 exactly as the reference does
        (``sx = float32(c) + float32(x)``, ``floor``, weights ``(1-wx)(1-wy)``, ...), so
        integer positions give exact pixel copies.

    Raises
    ------
    TypeError
        If an argument is not numeric (or ``positions`` is complex, ``N`` not an integer).
    ValueError
        If a shape is wrong, an array is empty, or a value is NaN or infinite.

    Examples
    --------
    >>> obj = np.zeros((256, 256)); obj[100, 150] = 1
    >>> p = extract_patches(obj, [[150.25, 100.5]], 64)
    >>> p[0, 31:33, 31:33].real
    array([[0.125, 0.375],
           [0.125, 0.375]], dtype=float32)
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    n = _positive_int("N", N)
    return _core.extract_patches(o, p, n)


def diffract(patches: Any, probe: Any, scale: float = 1.0) -> np.ndarray:
    """Far-field amplitudes of ``scale * probe * patch``.

    Parameters
    ----------
    patches : array_like, (M, N, N), complex
        Object patches (e.g. from :func:`extract_patches`); converted to complex64.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination; ``N >= 2`` (any size: odd and prime sizes work).
    scale : float, optional
        Positive factor applied to the field (the reference's intensity scale).

    Returns
    -------
    numpy.ndarray, float32, (M, N, N)
        ``|fftshift(fft2(scale * probe * patch))| / N`` (README "Conventions"): no shift
        before the FFT, zero frequency at ``[N//2, N//2]``, unitary, so
        ``sum(A**2) == sum(|scale * probe * patch|**2)``.

    Raises
    ------
    TypeError
        If an argument is not numeric.
    ValueError
        If ``patches`` is not a non-empty ``(M, N, N)`` stack, ``probe`` is not ``(N, N)``
        with ``N >= 2``, a value is not finite, or ``scale`` is not positive.

    Examples
    --------
    >>> a = diffract(np.ones((1, 4, 4)), np.ones((4, 4)))
    >>> float(a[0, 2, 2]), float(a.sum())
    (4.0, 4.0)
    """
    pa = as_array("patches", patches, np.complex64, ndim=3)
    if pa.shape[1] != pa.shape[2]:
        raise ValueError(f"patches must be (M, N, N), got {pa.shape}")
    pr = _check_probe(probe, pa.shape[1])
    return _core.diffract(pa, pr, np.float32(_positive_float("scale", scale)))


def _poisson_stream(version: Any) -> str:
    """Validates a Poisson noise stream name (README, "Noise streams")."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a str, one of {POISSON_STREAMS}, got {version!r}")
    if version not in POISSON_STREAMS:
        raise ValueError(f"version must be one of {POISSON_STREAMS}, got {version!r}")
    return version


def observe_amplitudes(
    amplitudes: Any, seed: SeedLike = None, *, first_index: int = 0, version: str = "v1"
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
    version : {"v1", "v2"}, keyword-only
        The Poisson noise stream (README, "Noise streams"): ``"v1"`` (default) gives the bits
        ptyfast has always given for a seed; ``"v2"`` is faster and samples the same law with
        other draws.

    Returns
    -------
    numpy.ndarray, float32, same shape
        ``sqrt(K)`` rounded to float32 (its square is an integer within float32 precision).
        The input is not modified.

    Raises
    ------
    ValueError
        Amplitudes not 3-D, empty, negative, NaN or infinite; a seed or first_index out of
        range; an unknown version.
    TypeError
        Complex or non-numeric amplitudes; a seed, first_index or version of the wrong type.

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
    return _core.poisson_amplitudes(a, s, fi, _poisson_stream(version))


def poisson_counts(
    rates: Any, seed: SeedLike = None, *, stream: int = 0, version: str = "v1"
) -> np.ndarray:
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
    version : {"v1", "v2"}, keyword-only
        The Poisson noise stream, as in :func:`observe_amplitudes`.

    Returns
    -------
    numpy.ndarray, float64, (n,)
        Integer-valued counts (rounded to the nearest float64 above 2**53); 0 where the rate
        is 0.

    Raises
    ------
    ValueError
        Rates not 1-D, empty, negative, NaN or infinite; seed or stream out of range; an
        unknown version.
    TypeError
        Complex or non-numeric rates; seed, stream or version of the wrong type.

    Examples
    --------
    >>> k = poisson_counts(np.full(100_000, 3.5), seed=1)
    >>> bool(abs(k.mean() - 3.5) < 0.05)
    True
    """
    r = as_array("rates", rates, np.float64, ndim=1, allow_complex=False, nonnegative=True)
    s = resolve_seed(seed)
    index = _positive_int("stream", stream, minimum=0)
    return _core.poisson_counts(r, s, index, _poisson_stream(version))


def illuminated_energy(obj: Any, positions: Any, probe: Any) -> np.ndarray:
    """Per-pattern illuminated energy ``sum |probe * patch|**2``, without an FFT.

    By Parseval this is the total of the squared far-field amplitudes at ``scale = 1``; the
    reference's intensity scale is ``sqrt(nphotons / mean(illuminated_energy(...)))``.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object (converted to complex64).
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels, as for :func:`extract_patches`.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination, ``N >= 2``; its size is the patch size.

    Returns
    -------
    numpy.ndarray, float64, (M,)
        The products are formed in complex64 and their squared moduli summed in float64, in a
        fixed order: results do not depend on the thread count.

    Raises
    ------
    TypeError
        If an argument is not numeric.
    ValueError
        If a shape is wrong, an array is empty or a value is not finite.

    Examples
    --------
    >>> illuminated_energy(np.ones((32, 32)), [[16, 16]], np.ones((8, 8)))
    array([64.])
    """
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
    """Fused simulation: patch, probe, FFT and optional Poisson noise, one pass per pattern.

    Each pattern is computed in one pass on a worker thread, straight into the preallocated
    output; the noise-free result equals ``diffract(extract_patches(obj, positions, N), probe,
    scale)`` bit for bit.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object (converted to complex64).
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels, as for :func:`extract_patches`.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination, ``N >= 2``; its size is the patch size.
    scale : float, optional
        Positive intensity scale applied to the field.
    poisson : bool, optional
        Observe each amplitude as ``sqrt(Poisson(A**2))``.
    seed : int, numpy.random.Generator or None, optional
        Noise seed (see :func:`resolve_seed`). Pattern ``i`` draws from its own stream
        ``(seed, first_index + i)``: the output does not depend on the thread count.
    first_index : int, optional
        Index of the first pattern in the whole dataset, so a dataset simulated in chunks
        equals one call.
    divide_by_scale : bool, optional
        Divide the (noisy) amplitudes by ``scale``: the reference's stored ``X``.
    return_patches : bool, optional
        Also return the complex64 object patches (before the probe).

    Returns
    -------
    amplitudes : numpy.ndarray, float32, (M, N, N)
        ``|fftshift(fft2(scale * probe * patch))| / N`` (README "Conventions"), observed and
        divided as asked.
    patches : numpy.ndarray, complex64, (M, N, N), or None
        The patches, when ``return_patches``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a shape is wrong, an array is empty, a value is not finite, ``scale`` is not
        positive, or ``seed`` / ``first_index`` is out of range.

    Examples
    --------
    >>> obj = np.ones((64, 64))
    >>> a, _ = simulate(obj, [[32, 32]], np.ones((8, 8)), scale=2.0, poisson=False)
    >>> float(a[0, 4, 4])
    16.0
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


def _grouping_args(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: Any, seed_indices: Any
) -> tuple[Any, ...]:
    xs, ys = _coords_1d(x, y)
    return (
        xs,
        ys,
        _positive_int("nsamples", nsamples),
        _positive_int("K", K),
        _positive_int("C", C),
        legacy_seed(seed),
        _seed_indices(seed_indices, xs.size),
    )


def sample_then_group(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference "sample-then-group" selection; ``(n_seeds, C)`` int64 point indices."""
    return _core.sample_then_group(*_grouping_args(x, y, nsamples, K, C, seed, seed_indices))


def oversample_groups(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference K-choose-C oversampling; ``(nsamples, C)`` int64 point indices."""
    return _core.oversample_groups(*_grouping_args(x, y, nsamples, K, C, seed, seed_indices))


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


def simd_level() -> str:
    """Instruction set of the hot loops: ``'baseline'``, ``'avx2'`` or ``'avx512'``.

    The widest the processor supports, capped by ``PTYFAST_SIMD`` (read once per process).
    Results are bit-identical at every level; only speed differs.
    """
    return str(_core.simd_level())


def gather_groups_scaled(diff3d: Any, groups: Any, scale: float) -> np.ndarray:
    """``float32(scale) * diff3d[groups]`` rearranged to ``(B, N, N, C)`` float32.

    The multiply is one float32 operation per value, bit-identical to NumPy's
    ``np.float32(scale) * diff3d[groups].transpose(0, 2, 3, 1)``.
    """
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    f = np.float32(scale)
    if np.isnan(f):
        raise ValueError(f"scale must not be NaN, got {scale}")
    return _core.gather_groups_scaled(d, g, float(f))


def pattern_energies(diff3d: Any) -> np.ndarray:
    """Per-pattern energy ``sum_{h,w} diff3d[m]**2`` (float64, (M,)), summed in float64 in
    row-major order (fixed, thread-count independent)."""
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    return _core.pattern_energies(d)


def legacy_permutation(seed: int, n: int) -> np.ndarray:
    """``numpy.random.RandomState(seed).permutation(n)`` replayed by the core (int64)."""
    return _core.legacy_permutation(legacy_seed(seed), _positive_int("n", n, minimum=0))


def legacy_choice(seed: int, n: int, size: int, *, replace: bool = True) -> np.ndarray:
    """``numpy.random.RandomState(seed).choice(n, size, replace=replace)`` replayed by the core."""
    nn = _positive_int("n", n, minimum=0)
    sz = _positive_int("size", size, minimum=0)
    if nn == 0 and sz > 0:
        raise ValueError("n must be >= 1 when size > 0, got 0")
    if not replace and sz > nn:
        raise ValueError(f"size must be <= n ({nn}) without replacement, got {sz}")
    return _core.legacy_choice(legacy_seed(seed), nn, sz, bool(replace))


def legacy_uniform(seed: int, size: int) -> np.ndarray:
    """``numpy.random.RandomState(seed).random_sample(size)`` replayed by the core."""
    return _core.legacy_uniform(legacy_seed(seed), _positive_int("size", size, minimum=0))


def legacy_raw(seed: int, size: int) -> np.ndarray:
    """The first ``size`` raw 32-bit MT19937 outputs of ``RandomState(seed)`` (uint32)."""
    return _core.legacy_raw(legacy_seed(seed), _positive_int("size", size, minimum=0))


def group_diffraction(
    diff3d: Any, groups: Any, N: int
) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """Grouped diffraction and its normalised copy, validated once.

    Parameters
    ----------
    diff3d : array_like, float32, (M, N, N)
        Amplitudes, one pattern per scan position.
    groups : array_like, int, (B, C)
        Pattern indices of each group.
    N : int
        Patch size used in the normalisation target ``(N/2)**2``.

    Returns
    -------
    diffraction : numpy.ndarray, float32, (B, N, N, C)
        ``diff3d[groups]`` with the group members as channels.
    X_full : numpy.ndarray, float32, (B, N, N, C)
        ``f * diffraction`` with
        ``f = float32(sqrt((N/2)**2 / mean_{b,c} sum_{h,w} diffraction**2))``, energies summed
        in float64 (the reference's ``raw_data.normalize_data``).
    f : numpy.float32
        The scale factor (``inf`` when every selected pattern is zero, as in the reference).
    """
    # Finiteness is checked on the per-pattern energies (a float32 value squared cannot overflow
    # float64, so an energy is finite iff its pattern is), saving a pass over diff3d.
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False, finite=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    n = _positive_int("N", N)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    energies = _core.pattern_energies(d)
    if not np.all(np.isfinite(energies)):
        raise ValueError("diff3d must be finite, got NaN or inf values")
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.float32(np.sqrt((n / 2) ** 2 / np.mean(energies[g])))
    diffraction, x_full = _core.gather_groups_normalized(d, g, float(f))
    return diffraction, x_full, f


def gather_groups_complex(patches: Any, groups: Any) -> np.ndarray:
    """``patches[groups]`` rearranged to ``(B, N, N, C)`` complex64 (``patches`` is
    ``(M, N, N)``, converted to complex64); values are copied as they are, NaN included."""
    p = as_array("patches", patches, np.complex64, ndim=3, finite=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= p.shape[0]:
        raise ValueError(f"groups must index [0, {p.shape[0]}), got [{g.min()}, {g.max()}]")
    return _core.gather_groups_complex(p, g)


def extract_grid_patches(
    image: Any,
    positions: Any,
    N: int,
    C: int,
    *,
    out: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bilinear patches of a complex ``image`` in channel format.

    ``positions`` is ``(B*C, 2)``; flat position ``b*C + c`` fills channel ``c`` of group ``b``
    (sampling as :func:`extract_patches`). Returns the real and imaginary parts, each float32
    ``(B, N, N, C)``: an image ``amplitude + 1j*phase`` gives the amplitude and phase patches,
    each interpolated separately as the reference does. With ``out=(re, im)`` (writeable,
    C-contiguous float32 arrays of that shape) the patches are written there and ``out`` is
    returned; ``im`` may be ``None`` (real parts only, for an object without phase).
    """
    im = as_complex_image("image", image)
    p = as_positions("positions", positions)
    n = _positive_int("N", N)
    c = _positive_int("C", C)
    if p.shape[0] % c:
        raise ValueError(f"positions must have a multiple of C = {c} rows, got {p.shape[0]}")
    if out is None:
        return _core.extract_grid_patches(im, p, n, c)
    shape = (p.shape[0] // c, n, n, c)
    if len(out) != 2:
        raise ValueError(f"out must be a pair (re, im), got {len(out)} items")
    for name, o in zip(("out[0]", "out[1]"), out, strict=True):
        if name == "out[1]" and o is None:
            continue
        if not (
            isinstance(o, np.ndarray)
            and o.dtype == np.float32
            and o.shape == shape
            and o.flags.c_contiguous
            and o.flags.writeable
        ):
            got = f"{getattr(o, 'dtype', type(o).__name__)} {getattr(o, 'shape', '')}"
            raise ValueError(
                f"{name} must be a writeable C-contiguous float32 {shape} array, got {got}"
            )
    _core.extract_grid_patches_into(im, p, out[0], out[1])
    return out


def illuminate_groups(
    amplitude: Any,
    phase: Any,
    probe: Any,
    scale: float,
    *,
    poisson: bool = True,
    seed: SeedLike = None,
    first_index: int = 0,
    check_finite: bool = True,
    overwrite_amplitude: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Illuminate and diffract channel-format patches (the grid path of the README).

    For flat pattern ``i = b*C + c`` with ``O = amplitude * exp(1j * phase)`` (``phase=None``
    is zero, without a buffer): returns
    ``X = sqrt(Poisson(A**2)) / scale`` (``A / scale`` without noise), ``A`` the far field of
    ``scale * probe * O``, pattern ``i`` on stream ``(seed, first_index + i)``, and the
    post-probe amplitude ``|O * probe|``; both float32 ``(B, N, N, C)``.

    ``overwrite_amplitude=True`` (like SciPy's ``overwrite_x``) writes the post-probe
    amplitude into ``amplitude`` itself when it is a writeable C-contiguous float32 array,
    sparing a batch-sized allocation; otherwise ``amplitude`` is never modified.
    ``check_finite=False`` skips the finiteness scan for arrays a kernel just produced from
    checked input.
    """
    a = as_array("Y_I", amplitude, np.float32, ndim=4, allow_complex=False, finite=check_finite)
    ph = None
    if phase is not None:
        ph = as_array(
            "Y_phi", phase, np.float32, shape=a.shape, allow_complex=False, finite=check_finite
        )
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"Y_I must be (B, N, N, C), got {a.shape}")
    pr = _check_probe(probe, a.shape[1])
    sc = np.float32(_positive_float("scale", scale))
    s = resolve_seed(seed) if poisson else None
    fi = _positive_int("first_index", first_index, minimum=0)
    if not (overwrite_amplitude and a is amplitude and a.flags.writeable):
        a = a.copy()
    x = _core.illuminate_groups(a, ph, pr, sc, s, fi)
    return x, a


def channel_energies(amplitude: Any, probe: Any, *, check_finite: bool = True) -> np.ndarray:
    """Per-pattern ``sum (amplitude * |probe|)**2`` of channel-format ``(B, N, N, C)``
    amplitudes: float64 ``(B*C,)`` in flat order ``b*C + c``."""
    a = as_array("Y_I", amplitude, np.float32, ndim=4, allow_complex=False, finite=check_finite)
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"Y_I must be (B, N, N, C), got {a.shape}")
    return _core.channel_energies(a, _check_probe(probe, a.shape[1]))

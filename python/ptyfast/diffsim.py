"""Grid-mode simulation and the forward model (the drop-in for ``ptycho.diffsim``).

:func:`mk_simdata` reproduces the reference's grid pipeline (``docs/guides/grid.md``): a regular
grid of "solution regions" of size ``bigN = N + (gridsize - 1) * offset`` with stride
``outer_offset // 2``, ``gridsize**2`` inner patches per region at spacing ``offset``
(channel ``c`` at ``(row, col) = (c // gridsize, c % gridsize)``), patches normalised by
``norm_Y_I``, illuminated, diffracted and observed with Poisson noise. Patch extraction, the
FFT and the noise run in the Rust kernels, in bounded chunks. Nothing here reads global state
except the documented fallbacks to :mod:`ptyfast.params` when an argument is ``None``; no
disk memoisation, no global RNG: objects, jitter and noise all derive from ``seed``.

Conventions: README, "Conventions". Outputs are NumPy arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from . import _kernels
from .datagen.lines import mk_lines_img
from .datagen.objects import sim_object_image, sim_object_stack
from .intensity import _default_nphotons, count_photons, scale_nphotons, simulation_scale

__all__ = [
    "add_position_jitter",
    "count_photons",
    "diffract_obj",
    "dummy_phi",
    "extract_coords",
    "grid_positions",
    "illuminate_and_diffract",
    "mk_lines_img",
    "mk_simdata",
    "observe_amplitude",
    "pad_and_diffract",
    "scale_nphotons",
    "sim_object_image",
]


def _cfg(name: str, value: Any) -> Any:
    if value is not None:
        return value
    from . import params

    return params.cfg[name]


# --------------------------------------------------------------------------- forward model


def observe_amplitude(amplitude: Any, *, seed: _kernels.SeedLike = None) -> np.ndarray:
    """Observed amplitude ``sqrt(Poisson(amplitude**2))`` (float32, same shape).

    The first axis indexes patterns; pattern ``i`` draws from stream ``(seed, i)``.

    Raises
    ------
    ValueError
        If ``amplitude`` is 0-d (a scalar has no pattern axis: pass ``[a]`` for one value),
        empty, negative, NaN or infinite.
    TypeError
        If ``amplitude`` is not a real numeric array.
    """
    # Checked before as_array, whose contiguous copy turns a 0-d array into shape (1,).
    if _kernels._to_numpy("amplitude", amplitude).ndim < 1:
        raise ValueError(
            f"amplitude must have a pattern axis (at least 1-D), got a 0-d value {amplitude!r}"
        )
    a = _kernels.as_array(
        "amplitude",
        amplitude,
        np.float32,
        allow_complex=False,
        nonnegative=True,
    )
    flat = a.reshape(a.shape[0], 1, -1)
    return _kernels.observe_amplitudes(flat, seed).reshape(a.shape)


def pad_and_diffract(input: Any, h: int, w: int, pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Far-field amplitude of ``input`` (B, h', w', 1): ``|fftshift(fft2(x))| / sqrt(h*w)``.

    As the reference: with ``pad`` the input is first zero-padded by ``h//4``, ``w//4`` on
    each side (the data path never pads), and the intensity is divided by the ``h·w`` given,
    not by the size transformed: unitary when ``h, w`` are the array's size (the data path),
    ``sqrt(h'w'/hw)`` times that otherwise (1.5 for ``h = w = 8`` padded to 12). Returns
    ``(padded_input, amplitude)``, float32 amplitude of shape (B, h', w', 1).

    Raises
    ------
    ValueError
        ``input`` not (B, h', w', 1) with square patterns of at least 2 x 2 (after padding),
        not finite, or large enough to overflow the float32 far field; ``h`` or ``w`` below 1.
    TypeError
        ``input`` not numeric; ``h``, ``w`` not integers; ``pad`` not a bool.
    """
    x = _kernels.as_array("input", input, np.complex64, ndim=4)
    if x.shape[-1] != 1:
        raise ValueError(f"input must be (B, h, w, 1), got shape {x.shape}")
    hh = _kernels._positive_int("h", h)
    ww = _kernels._positive_int("w", w)
    if _kernels._flag("pad", pad):
        ph, pw = hh // 4, ww // 4
        _kernels.require_memory(
            f"pad_and_diffract: {x.shape[0]} padded patterns",
            x.shape[0] * (x.shape[1] + 2 * ph) * (x.shape[2] + 2 * pw) * 12,
        )
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"input must be square after padding, got shape {x.shape}")
    if x.shape[1] < 2:
        raise ValueError(f"input patterns must be at least 2 x 2, got shape {x.shape}")
    # The kernel divides by the size transformed; the reference by the h·w given.
    size = x.shape[1]
    scale = 1.0 if hh * ww == size * size else size / math.sqrt(hh * ww)
    bound = (_kernels._max_abs(x) * scale * size * size) ** 2
    if not bound <= _kernels._F32_SQUARE_LIMIT:
        raise ValueError(
            f"input values up to {_kernels._max_abs(x):.4g} would overflow the float32 far "
            f"field: (max|input| * h' * w' * {scale:.4g})**2 = {bound:.3g} exceeds "
            "float32.max / 2"
        )
    ones = np.ones(x.shape[1:3], np.complex64)
    amp = _kernels.diffract(x[..., 0], ones, scale)
    return x, amp[..., None]


def diffract_obj(
    sample: Any, draw_poisson: bool = True, *, seed: _kernels.SeedLike = None
) -> np.ndarray:
    """Diffract exit waves ``sample`` (B, N, N, 1): amplitude, observed with Poisson noise
    when ``draw_poisson``. float32 (B, N, N, 1).

    Unitary for the patterns' own ``N`` (``|fftshift(fft2(x))| / N``); the reference divides
    by ``cfg['N']`` instead, which agrees on its data path (patterns of size ``cfg['N']``) and
    scales patterns of any other size by ``N / cfg['N']`` (COMPATIBILITY.md).
    """
    x = _kernels.as_array("sample", sample, np.complex64, ndim=4)
    if x.shape[-1] != 1 or x.shape[1] != x.shape[2]:
        raise ValueError(f"sample must be (B, N, N, 1), got shape {x.shape}")
    _, amp = pad_and_diffract(x, x.shape[1], x.shape[2], pad=False)
    if _kernels._flag("draw_poisson", draw_poisson):
        amp = observe_amplitude(amp, seed=seed)
    return amp


def dummy_phi(Y_I: Any) -> np.ndarray:
    """Synthetic phase ``pi * tanh((Y_I - max(Y_I)/2) / (3 * mean(Y_I)))`` (float32).

    ``max`` and ``mean`` run over the whole array, as the reference's.

    Raises
    ------
    ValueError
        ``Y_I`` empty, not finite, or with a mean that is not positive (an all-zero object:
        the reference returns NaN there).
    TypeError
        ``Y_I`` complex or not numeric.
    """
    y = _kernels.as_array("Y_I", Y_I, np.float64, allow_complex=False)
    mean = float(y.mean())
    if not mean > 0:
        raise ValueError(
            f"Y_I must have a positive mean (dummy_phi divides by 3 * mean(Y_I)), got {mean}"
        )
    return (math.pi * np.tanh((y - y.max() / 2) / (3 * mean))).astype(np.float32)


def _flat_to_channel(a: np.ndarray, c: int) -> np.ndarray:
    bc, n1, n2 = a.shape[:3]
    if bc % c:
        raise ValueError(f"{bc} patterns do not divide into groups of gridsize**2 = {c}")
    return np.moveaxis(a.reshape(bc // c, c, n1, n2), 1, 3).copy()


def illuminate_and_diffract(
    Y_I: Any,
    Y_phi: Any,
    probe: Any,
    intensity_scale: float | None = None,
    *,
    nphotons: float | None = None,
    gridsize: int | None = None,
    poisson: bool = True,
    seed: _kernels.SeedLike = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """Illuminate flat object patches with ``probe`` and diffract (the reference's forward model).

    Parameters
    ----------
    Y_I, Y_phi : array_like, (B', N, N, 1)
        Amplitude and phase of the object patches (flat format).
    probe : array_like, (N, N) or (N, N, 1)
    intensity_scale : float, optional
        ``s``; default ``sqrt(nphotons / mean_i sum (Y_I_i * |probe|)**2)``.
    nphotons, gridsize : optional
        Default to ``ptyfast.params.cfg``.
    poisson : bool
        Observe with Poisson noise (pattern ``i`` on stream ``(seed, i)``).
    seed : int, numpy.random.Generator, numpy.random.RandomState or None, keyword-only
        The noise's randomness, as :func:`observe_amplitude` takes it (None: fresh OS
        entropy).

    Returns
    -------
    X, Y_I, Y_phi : numpy.ndarray, float32, (B'/C, N, N, C)
        ``X = A_obs / s`` with ``A = |fftshift(fft2(s * O * P))| / N``; ``Y_I = |O * P|``
        (after the probe); ``Y_phi`` unchanged (the pre-probe phase, as the reference).
    s : numpy.float32

    Raises
    ------
    ValueError
        Shapes inconsistent (``Y_I`` not flat ``(B', N, N, 1)``, ``B'`` not a multiple of
        ``gridsize**2``, ``probe`` not ``(N, N)``), values not finite, ``nphotons`` or
        ``intensity_scale`` not positive, or so large that the scaled far field would overflow
        float32 (named, with the largest value that fits), before any FFT runs.
    TypeError
        Non-numeric or complex ``Y_I``/``Y_phi``; ``nphotons``/``intensity_scale`` not a real
        number.
    """
    yi = _kernels.as_array("Y_I", Y_I, np.float32, ndim=4, allow_complex=False)
    yp = _kernels.as_array("Y_phi", Y_phi, np.float32, shape=yi.shape, allow_complex=False)
    if yi.shape[-1] != 1 or yi.shape[1] != yi.shape[2]:
        raise ValueError(f"Y_I must be flat (B, N, N, 1), got shape {yi.shape}")
    N = yi.shape[1]
    pr = _kernels.as_complex_image("probe", probe, shape=(N, N))
    g = _kernels._positive_int("gridsize", _cfg("gridsize", gridsize), minimum=1)
    C = g * g
    if yi.shape[0] % C:
        raise ValueError(
            f"Y_I must hold a multiple of gridsize**2 = {C} patterns, got {yi.shape[0]}"
        )
    poisson = _kernels._flag("poisson", poisson)
    if intensity_scale is None:
        nph = _default_nphotons(nphotons)
        name, value, limit = "nphotons", nph if nphotons is None else nphotons, "photons"
    else:
        s = np.float32(_kernels._positive_float("intensity_scale", intensity_scale))
        name, value, limit = "intensity_scale", intensity_scale, "scale"
    _kernels.require_memory(
        f"illuminate_and_diffract: {yi.shape[0]} patterns of N = {N}", yi.nbytes * 4
    )
    Y_I_ch = _flat_to_channel(yi[..., 0], C)
    Y_phi_ch = _flat_to_channel(yp[..., 0], C)
    if intensity_scale is None:
        energies = _energies(Y_I_ch, pr)
        if not float(np.max(energies)) > 0:
            raise ValueError(
                f"Y_I times |probe| has zero energy in every one of the {yi.shape[0]} patches "
                "(Y_I or probe is zero): the intensity scale for nphotons is undefined; pass "
                "intensity_scale to simulate such patches"
            )
        s = simulation_scale(energies, nph)
    _kernels.check_field_range(
        float(s),
        _kernels._max_abs(yi),
        float(np.sum(np.abs(pr))),
        name=name,
        value=value,
        limit_of=limit,
    )
    X, Y_I_post = _illuminate_groups(Y_I_ch, Y_phi_ch, pr, s, poisson, seed)
    return X, Y_I_post, Y_phi_ch, s


def _energies(Y_I: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Per-pattern ``sum (Y_I * |probe|)**2`` (float64, flat order) of channel-format Y_I."""
    return _kernels.channel_energies(Y_I, probe, check_finite=False)


def _illuminate_groups(
    Y_I: np.ndarray,
    Y_phi: np.ndarray | None,
    probe: np.ndarray,
    s: np.float32,
    poisson: bool,
    seed: _kernels.SeedLike,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, |O * P|)`` of channel-format patches in one Rust pass; flat pattern ``b*C + c``
    draws noise stream ``(seed, b*C + c)``; ``X`` into ``out`` when given."""
    # The patches come from a kernel fed checked input (no second finiteness scan) and are
    # ours to reuse: Y_I's buffer receives the post-probe amplitude.
    return _kernels.illuminate_groups(
        Y_I,
        Y_phi,
        probe,
        s,
        poisson=poisson,
        seed=seed,
        check_finite=False,
        overwrite_amplitude=True,
        out=out,
    )


def _reused_outputs(
    out: Any, shape: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(X, Y_I, Y_phi)`` of an earlier :func:`mk_simdata` result ``out`` (tuple or dict),
    checked to be distinct writeable C-contiguous float32 arrays of ``shape``; None for None."""
    if out is None:
        return None
    if isinstance(out, dict):
        missing = [k for k in ("X", "Y_I", "Y_phi") if k not in out]
        if missing:
            raise ValueError(
                f"out must be an earlier mk_simdata result (tuple or dict with X, Y_I, Y_phi), "
                f"got a dict without {', '.join(missing)}"
            )
        arrays = (out["X"], out["Y_I"], out["Y_phi"])
    elif isinstance(out, (tuple, list)) and len(out) >= 3:
        arrays = (out[0], out[1], out[2])
    else:
        raise TypeError(
            f"out must be an earlier mk_simdata result (tuple or dict with X, Y_I, Y_phi), "
            f"got {type(out).__name__}"
        )
    checked: list[np.ndarray] = []
    for name, a in zip(("out X", "out Y_I", "out Y_phi"), arrays, strict=True):
        checked.append(_kernels._out_buffer(name, a, np.float32, shape, tuple(checked)))
    return checked[0], checked[1], checked[2]


# --------------------------------------------------------------------------- grid geometry


def _geometry(
    size: int, outer_offset: int, N: int, gridsize: int, offset: int
) -> tuple[int, int, int]:
    size = _kernels._positive_int("size", size, minimum=1)
    outer_offset = _kernels._positive_int("outer_offset", outer_offset, minimum=2)
    N = _kernels._positive_int("N", N, minimum=2)
    gridsize = _kernels._positive_int("gridsize", gridsize, minimum=1)
    offset = _kernels._positive_int("offset", offset, minimum=0)
    big_n = N + (gridsize - 1) * offset
    stride = outer_offset // 2
    if big_n > size:
        raise ValueError(
            f"size must be >= bigN = N + (gridsize - 1) * offset = {big_n}, got {size}"
        )
    return big_n, stride, (size - big_n) // stride + 1


def grid_positions(
    size: int, outer_offset: int, *, N: int, gridsize: int, offset: int
) -> np.ndarray:
    """Scan positions of the grid, ``(G1**2, C, 2)`` float64 ``(x, y)`` patch centres.

    Region ``r = i * G1 + j`` (row ``i`` along y) has its top-left corner at
    ``(i, j) * (outer_offset // 2)``; its channel ``c`` patch starts ``offset * (c // g, c % g)``
    further and is sampled at ``(x, y) = (left + N//2, top + N//2)``.
    """
    big_n, stride, g1 = _geometry(size, outer_offset, N, gridsize, offset)
    del big_n
    # Python ints from here on (NumPy integer scalars of small dtypes would overflow).
    N = _kernels._positive_int("N", N, minimum=2)
    gridsize = _kernels._positive_int("gridsize", gridsize, minimum=1)
    offset = _kernels._positive_int("offset", offset, minimum=0)
    _kernels.require_memory(
        f"grid_positions: {g1 * g1} regions of C = {gridsize**2} positions",
        64 * g1 * g1 * gridsize**2,
    )
    ii, jj = np.meshgrid(np.arange(g1), np.arange(g1), indexing="ij")
    c = np.arange(gridsize * gridsize)
    top = ii.reshape(-1, 1) * stride + (c // gridsize) * offset + N // 2
    left = jj.reshape(-1, 1) * stride + (c % gridsize) * offset + N // 2
    return np.stack([left, top], axis=-1).astype(np.float64)


def extract_coords(
    size: int,
    repeats: int = 1,
    coord_type: str = "offsets",
    outer_offset: int | None = None,
    *,
    N: int | None = None,
    gridsize: int | None = None,
    offset: int | None = None,
) -> Any:
    """Nominal grid coordinates in channel format (reference ``diffsim.extract_coords``).

    ``coord_type='offsets'``: float32 ``(repeats * G1**2, 1, 2, C)``, region centre minus
    patch centre, ``[x, y]`` on axis 2. ``'global'``: ``(ix, iy)``, each float32
    ``(G1**2 * repeats, 1, 1, C)`` patch-centre coordinates (mean pixel index), every region
    repeated ``repeats`` times consecutively (patch-major, as the reference).
    """
    if outer_offset is None:
        raise ValueError("outer_offset must be given, got None")
    N = _kernels._positive_int("N", _cfg("N", N), minimum=2)
    g = _kernels._positive_int("gridsize", _cfg("gridsize", gridsize), minimum=1)
    off = _kernels._positive_int("offset", _cfg("offset", offset), minimum=0)
    repeats = _kernels._positive_int("repeats", repeats, minimum=1)
    big_n, stride, g1 = _geometry(size, outer_offset, N, g, off)
    _kernels.require_memory(
        f"extract_coords: repeats={repeats} x {g1 * g1} regions of C = {g * g} coordinates",
        repeats * g1 * g1 * g * g * 8 * 2 + 64 * g1 * g1 * g * g,
    )
    c = np.arange(g * g)
    if coord_type == "offsets":
        dx = (big_n - 1) / 2 - ((c % g) * off + (N - 1) / 2)
        dy = (big_n - 1) / 2 - ((c // g) * off + (N - 1) / 2)
        one = np.stack([dx, dy])[None, None].astype(np.float32)  # (1, 1, 2, C)
        return np.repeat(one, repeats * g1 * g1, axis=0)
    if coord_type == "global":
        pos = grid_positions(size, outer_offset, N=N, gridsize=g, offset=off)
        centre = pos - N // 2 + (N - 1) / 2
        ix = np.repeat(centre[:, :, 0], repeats, axis=0)[:, None, None, :].astype(np.float32)
        iy = np.repeat(centre[:, :, 1], repeats, axis=0)[:, None, None, :].astype(np.float32)
        return ix, iy
    raise ValueError(f"coord_type must be 'offsets' or 'global', got {coord_type!r}")


def _jitter_seed(seed: Any) -> Any:
    """``seed`` checked for ``numpy.random.default_rng``: ``None``, a ``Generator``, a
    non-negative integer or a non-empty sequence of them (NumPy's own messages name
    nothing)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    items = seed if isinstance(seed, list | tuple) else [seed]
    if isinstance(seed, list | tuple) and not seed:
        raise ValueError("seed must be a non-negative integer or a non-empty sequence of them")
    for v in items:
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
            raise TypeError(
                "seed must be a non-negative integer, a sequence of them, a "
                f"numpy.random.Generator or None, got {type(v).__name__} {v!r}"
            )
        if v < 0:
            raise ValueError(f"seed must be a non-negative integer, got {v}")
    return seed


def add_position_jitter(coords: Any, jitter_scale: float, *, seed: Any = None) -> np.ndarray:
    """``coords + jitter_scale * normal(coords.shape)`` (float32), drawn from
    ``numpy.random.default_rng(seed)`` (``seed`` may also be a ``Generator``).

    Raises
    ------
    ValueError
        If ``coords`` are not finite, ``jitter_scale`` is negative, not finite or beyond
        float32, ``seed`` is negative, or a jittered coordinate overflows float32.
    TypeError
        If ``seed`` is not an integer (or a sequence of integers), ``Generator`` or ``None``,
        or ``jitter_scale`` is not a real number.
    """
    c = _kernels.as_array("coords", coords, np.float32, allow_complex=False, nonempty=False)
    js = _kernels._real_number("jitter_scale", jitter_scale, "a finite number >= 0")
    if js < 0 or js > float(np.finfo(np.float32).max):
        raise ValueError(f"jitter_scale must be a finite float32 number >= 0, got {js}")
    jitter_scale = js
    seed = _jitter_seed(seed)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        out = (
            c + np.float32(jitter_scale) * rng.standard_normal(c.shape).astype(np.float32)
        ).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"coords + jitter_scale * normal overflows float32 (jitter_scale={jitter_scale}, "
            f"largest |coords| {float(np.max(np.abs(c))):.4g}); reduce jitter_scale"
        )
    return out


# --------------------------------------------------------------------------- mk_simdata


def _all_off_object(pos: np.ndarray, N: int, size: int) -> bool:
    """True when every patch centred at ``pos`` (``(M, 2)`` ``x, y``) lies wholly outside the
    ``size x size`` object, with a margin of one pixel for the interpolation."""
    lo = pos - N // 2  # the patches' first sample
    hi = lo + (N - 1)  # their last
    off = np.any((hi < -1.0) | (lo > size), axis=1)
    return bool(np.all(off))


_F = TypeVar("_F", bound=Callable[..., Any])


def _n_alias(fn: _F) -> _F:
    """Accept the reference's name ``n`` for ``mk_simdata``'s first argument ``nimgs``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "n" in kwargs:
            if args or "nimgs" in kwargs:
                raise TypeError(
                    "mk_simdata() got the number of objects twice: n (the reference's name) "
                    "and nimgs"
                )
            kwargs["nimgs"] = kwargs.pop("n")
        return fn(*args, **kwargs)

    return cast(_F, wrapper)


@_n_alias
def mk_simdata(
    nimgs: int,
    size: int,
    probe: Any,
    outer_offset: int,
    intensity_scale: float | None = None,
    YY_I: Any = None,
    YY_phi: Any = None,
    dict_fmt: bool = False,
    which: str = "train",
    *,
    seed: Any = None,
    poisson: bool = True,
    noise_seed: Any = None,
    jitter_scale: float | None = None,
    N: int | None = None,
    gridsize: int | None = None,
    offset: int | None = None,
    nphotons: float | None = None,
    data_source: str | None = None,
    set_phi: bool | None = None,
    out: Any = None,
) -> Any:
    """Simulate a grid-mode dataset (reference ``diffsim.mk_simdata``).

    Parameters
    ----------
    nimgs : int
        Number of objects (each contributes ``G1**2`` groups); also accepted under the
        reference's name, ``n=``.
    size : int
        Object side in pixels.
    probe : array_like, (N, N)
        Probe, real or complex.
    outer_offset : int
        Nominal stride between groups; the grid stride is ``outer_offset // 2``.
    intensity_scale : float, optional
        Reuse a scale (e.g. the training set's for a test set); default: computed.
    YY_I, YY_phi : array_like, (nimgs, size, size, 1), optional
        Object amplitudes and phases; default: ``nimgs`` objects of ``data_source``.
    dict_fmt : bool
        Return a dict with everything (see Returns).
    which : str
        Passed to the object generator (``'train'``/``'test'``).
    seed : int, numpy.random.Generator or None
        Seeds the objects (an int gives the reference's objects after ``np.random.seed``),
        the jitter and the Poisson noise.
    poisson : bool
        Observe with Poisson noise.
    noise_seed : int, numpy.random.Generator or None
        Seed of the noise alone (``[0, 2**64)``), overriding the one ``seed`` implies: with
        ``seed=seeds['objects']`` (or ``seeds['jitter']``) and ``noise_seed=seeds['noise']``
        of an earlier ``dict_fmt=True`` result, that dataset is made again bit for bit, also
        one made with ``seed=None``.
    jitter_scale : float, optional
        Standard deviation (pixels) of Gaussian jitter of the true positions.
    N, gridsize, offset, nphotons, data_source, set_phi : optional
        Default to ``ptyfast.params.cfg`` (the guide's set-up).
    out : tuple or dict, optional
        An earlier result of this function (the tuple, or the dict of ``dict_fmt=True``) whose
        ``X``, ``Y_I`` and ``Y_phi`` arrays receive this call's instead of new arrays (they
        must have this call's shape; the result holds the same arrays). For callers that
        simulate repeatedly: no first touch of fresh memory, the same bits as without ``out``.

    Returns
    -------
    (X, Y_I, Y_phi, coords) or dict
        float32 ``(B, N, N, C)`` arrays with ``B = nimgs * G1**2``, ``C = gridsize**2``;
        ``coords`` the nominal offsets ``(B, 1, 2, C)``. With ``dict_fmt``: keys ``X``,
        ``Y_I``, ``Y_phi``, ``intensity_scale``, ``norm_Y_I``, ``coords`` (nominal, true),
        ``YY_full`` (complex64 ``(nimgs, size, size, 1)``), ``I_pre_probe`` and
        ``phi_pre_probe`` (normalised pre-probe patches, flat ``(B*C, N, N, 1)``) and
        ``seeds``: the integer seeds used for the ``objects`` (``None`` when ``YY_I`` was
        given), the ``jitter`` and the ``noise`` (``None`` when not drawn); with
        ``seed=None`` these are the fresh draws, so any dataset can be replayed (``seed`` and
        ``noise_seed`` above).

    Raises
    ------
    ValueError
        Before anything runs: inconsistent sizes (``size < bigN``, probe not ``(N, N)``),
        counts below their minimum, ``nphotons``/``intensity_scale``/``jitter_scale`` out of
        range, or outputs larger than the available memory (the message gives the bytes
        needed and available; e.g. ``nimgs=10**12``). Before the grid passes: a given
        ``YY_I`` with NaN or inf, or a ``jitter_scale`` so large that it moves every patch
        off the object (``jitter_scale=1e30``). After the first pass: ``norm_Y_I``, the mean
        of the grid regions' largest amplitudes, is not positive (``YY_I`` zero or negative
        under every region). Before the FFT pass:
        ``nphotons`` or ``intensity_scale`` so large that the scaled far field would overflow
        float32 (the reference returns NaN there), naming the argument and the largest value
        that fits.
        ``out`` that is not an earlier result of this shape (arrays of another shape or dtype,
        read-only, strided, or sharing memory with each other or with the objects).
    TypeError
        Arguments of the wrong type (``N=2.5``, ``nphotons="1e6"``, ``dict_fmt="yes"``,
        ``set_phi="no"``).

    Examples
    --------
    >>> from ptyfast.probe import get_default_probe
    >>> X, Y_I, Y_phi, coords = mk_simdata(1, 80, get_default_probe(32), 16, N=32,
    ...     gridsize=2, offset=4, nphotons=1e9, data_source='lines', seed=0)
    >>> X.shape, coords.shape
    ((36, 32, 32, 4), (36, 1, 2, 4))
    """
    n = _kernels._positive_int("nimgs", nimgs, minimum=1)
    size = _kernels._positive_int("size", size, minimum=1)
    outer_offset = _kernels._positive_int("outer_offset", outer_offset, minimum=2)
    N = _kernels._positive_int("N", _cfg("N", N), minimum=2)
    g = _kernels._positive_int("gridsize", _cfg("gridsize", gridsize), minimum=1)
    off = _kernels._positive_int("offset", _cfg("offset", offset), minimum=0)
    nph = _default_nphotons(nphotons)
    C = g * g
    pr = _kernels.as_complex_image("probe", probe)
    if pr.shape != (N, N):
        raise ValueError(f"probe must be (N, N) = ({N}, {N}), got {pr.shape}")
    big_n, stride, g1 = _geometry(size, outer_offset, N, g, off)
    user_scale = intensity_scale
    if intensity_scale is not None:
        intensity_scale = _kernels._positive_float("intensity_scale", intensity_scale)
    if jitter_scale is not None:
        js = _kernels._real_number("jitter_scale", jitter_scale, "a finite number >= 0")
        if js < 0:
            raise ValueError(f"jitter_scale must be a finite number >= 0, got {js}")
    dict_fmt = _kernels._flag("dict_fmt", dict_fmt)
    poisson = _kernels._flag("poisson", poisson)
    set_phi = _kernels._flag("set_phi", _cfg("set_phi", set_phi))
    with_phase = YY_phi is not None or (YY_I is None and set_phi)
    # Everything this call allocates, estimated before any of it is: the objects (float64
    # amplitude and phase, as the reference stacks them, and the complex64 stack the kernels
    # read), the patch arrays X, Y_I and Y_phi
    # (float32, B x N x N x C each), positions, and with dict_fmt the flat pre-probe copies
    # and the complex object stack.
    B = n * g1 * g1
    reuse = _reused_outputs(out, (B, N, N, C))
    per_object = size * size * 8 * (2 if with_phase else 1)
    patterns = B * C * N * N * 4 * ((5 if dict_fmt else 3) - (3 if reuse else 0))
    _kernels.require_memory(
        f"mk_simdata: nimgs={n} objects of {size} x {size}, {B} groups of C={C} patterns of N={N}",
        n * per_object
        + n * size * size * 8  # the objects, and their complex64 stack
        + patterns
        + B * C * 40
        + (n * size * size * 8 if dict_fmt else 0),
    )
    noise_given = None if noise_seed is None else _kernels.resolve_seed(noise_seed, "noise_seed")
    root = _kernels.legacy_seed(seed)
    # Noise: noise_seed when given; else from the seed when one is given (the documented
    # stream), else fresh entropy, drawn here so that it can be recorded (dict_fmt's 'seeds').
    if noise_given is not None:
        noise_seed = noise_given
    else:
        noise_seed = root if seed is not None else _kernels.resolve_seed(None)

    YY_I_given = YY_I is not None
    if YY_I is None:
        YY_I = sim_object_stack(
            n, size, data_source=_cfg("data_source", data_source), seed=root, which=which
        )
    yy_i = _kernels.as_array(
        "YY_I",
        YY_I,
        np.float64,
        shape=(n, size, size, 1),
        allow_complex=False,
    )
    if YY_phi is None and set_phi:
        YY_phi = dummy_phi(yy_i)
    yy_phi = None
    if YY_phi is not None:
        yy_phi = _kernels.as_array(
            "YY_phi",
            YY_phi,
            np.float64,
            shape=(n, size, size, 1),
            allow_complex=False,
        )

    # The kernels sample the objects in float32: finite float64 values beyond its range would
    # become inf there, and NaN patterns.
    _kernels.check_fits("YY_I", yy_i, np.float32)
    if yy_phi is not None:
        _kernels.check_fits("YY_phi", yy_phi, np.float32)

    coords = extract_coords(size, n, "offsets", outer_offset, N=N, gridsize=g, offset=off)
    true_coords = coords
    pos = grid_positions(size, outer_offset, N=N, gridsize=g, offset=off)  # (G1², C, 2)
    pos = np.broadcast_to(pos, (n,) + pos.shape)  # object-major
    if jitter_scale is not None:
        true_coords = add_position_jitter(coords, jitter_scale, seed=[root, 1])
        jitter = (true_coords - coords).reshape(n, g1 * g1, 2, C).transpose(0, 1, 3, 2)
        pos = pos - jitter.astype(np.float64)  # a larger offset samples closer to the region origin
    B = n * g1 * g1
    pos_flat = np.ascontiguousarray(pos.reshape(n * g1 * g1 * C, 2))
    if jitter_scale is not None and _all_off_object(pos_flat, N, size):
        raise ValueError(
            f"jitter_scale={jitter_scale!r} moves every patch off the {size} x {size} object "
            f"(N={N}), so every patch would be zero and norm_Y_I undefined; use a jitter "
            "smaller than the object"
        )

    if reuse is not None:
        given = (yy_i, pr) if yy_phi is None else (yy_i, yy_phi, pr)
        for name, a in zip(("out X", "out Y_I", "out Y_phi"), reuse, strict=True):
            if any(np.may_share_memory(a, x) for x in given):
                raise ValueError(f"{name} must not share memory with the objects or the probe")

    # The objects as one complex64 stack, amplitude + 1j*phase (the sampler interpolates the
    # real and imaginary parts separately, exactly as the reference translates amplitude and
    # phase); the grid kernel's three passes read it (group b samples object b // G1**2).
    images = np.empty((n, size, size), np.complex64)
    for k in range(n):
        images[k] = yy_i[k, :, :, 0] + 1j * (0.0 if yy_phi is None else yy_phi[k, :, :, 0])
    # Pass 1: each group's largest pre-probe amplitude, for norm_Y_I (NumPy's mean of them).
    maxima = _kernels.grid_maxima(images, pos_flat, N, C, check_finite=False)
    norm_y_i = np.float32(maxima.mean(dtype=np.float64))
    if not norm_y_i > 0:
        raise ValueError(
            f"norm_Y_I, the mean of the largest amplitude of YY_I each grid region samples, is "
            f"{float(norm_y_i)!r}: YY_I is zero or negative under the grid, so the patches "
            "cannot be normalised"
        )
    # Pass 2 (when the scale is computed): the energies of the normalised patches.
    if intensity_scale is None:
        energies = _kernels.grid_energies(images, pos_flat, N, C, pr, norm_y_i, check_finite=False)
        if not float(np.max(energies)) > 0:
            raise ValueError(
                "probe has zero energy on every grid patch of YY_I (the probe is zero where "
                "the patches are not): the intensity scale for nphotons is undefined; pass "
                "intensity_scale to simulate such patches"
            )
        s = simulation_scale(energies, nph)
    else:
        s = np.float32(intensity_scale)
    # Before the FFT pass: the scaled far field must fit float32 (else NaN/inf would come out
    # silently). Patches interpolate the objects, so max|patch| <= max|YY_I| / norm_Y_I.
    _kernels.check_field_range(
        float(s),
        _kernels._max_abs(yy_i) / float(norm_y_i),
        float(np.sum(np.abs(pr))),
        name="nphotons" if intensity_scale is None else "intensity_scale",
        value=(nph if nphotons is None else nphotons) if intensity_scale is None else user_scale,
        limit_of="photons" if intensity_scale is None else "scale",
    )
    # Pass 3, the fused kernel: each group sampled once more, and while it is in cache its
    # ground truth (Y_I, Y_phi, the flat pre-probe copies of dict_fmt) and its patterns X are
    # written; nothing batch-sized is read back. Without a phase, Y_phi is zeros that are
    # never written (fresh: its pages stay untouched until read).
    if reuse is None:
        outs = (
            np.empty((B, N, N, C), np.float32),
            np.empty((B, N, N, C), np.float32),
            None if yy_phi is None else np.empty((B, N, N, C), np.float32),
        )
    else:
        X_out, Y_I_out, Y_phi_out = reuse
        # Zero phase: only when the earlier result had one. An earlier zero Y_phi's pages may
        # never have been touched; filling them would be a slow serial first touch.
        if yy_phi is None and Y_phi_out.any():
            Y_phi_out.fill(0.0)
        outs = (X_out, Y_I_out, None if yy_phi is None else Y_phi_out)
    X, Y_I, phase, pre_i, pre_phi = _kernels.simulate_grid(
        images,
        pos_flat,
        N,
        C,
        pr,
        norm_y_i,
        s,
        with_phase=yy_phi is not None,
        poisson=poisson,
        seed=noise_seed,
        pre_probe=dict_fmt,
        out=outs,
        check_finite=False,
    )
    if phase is not None:
        Y_phi = phase
    elif reuse is not None:
        Y_phi = reuse[2]
    else:
        Y_phi = np.zeros((B, N, N, C), np.float32)
    out: dict[str, Any] = {}
    if dict_fmt:
        out["I_pre_probe"] = pre_i
        out["phi_pre_probe"] = (
            np.zeros((B * C, N, N, 1), np.float32) if pre_phi is None else pre_phi
        )
    if not dict_fmt:
        return X, Y_I, Y_phi, coords
    phi_full = np.zeros_like(yy_i) if yy_phi is None else yy_phi
    out.update(
        X=X,
        Y_I=Y_I,
        Y_phi=Y_phi,
        intensity_scale=s,
        norm_Y_I=norm_y_i,
        coords=(coords, true_coords),
        YY_full=(yy_i * np.exp(1j * phi_full)).astype(np.complex64),
        seeds={
            "objects": root if YY_I_given is False else None,
            "jitter": root if jitter_scale is not None else None,
            "noise": noise_seed if poisson else None,
        },
    )
    return out

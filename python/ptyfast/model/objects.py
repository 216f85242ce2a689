"""Object (sample) families: ``ptyfast.objects``.

Every family makes a real **texture** ``t`` on the object grid and maps it to a complex64
transmission function with one documented linear mapping::

    amplitude = a0 + (a1 − a0)·t        (amplitude=(a0, a1), default (1.0, 0.5))
    phase     = p0 + (p1 − p0)·t        (phase=(p0, p1) in radians, default (0, π/2))
    object    = amplitude · exp(i·phase)

with ``t`` in [0, 1] read as the local amount of material (``t = 0``: empty, fully
transmitting by default; ``t = 1``: half the amplitude and a π/2 phase shift by default). Each
pair may be decreasing or constant. ``amplitude=None`` uses the family's *raw* texture as the
amplitude, unnormalised: with ``phase=(0, 0)`` the ``lines``/``grf``/``points`` objects are
then PtychoPINN's (``diffsim.sim_object_image``) bit for bit for the same integer seed.

==================  =====================================================================
family              texture ``t`` and its randomness
==================  =====================================================================
:func:`lines`       PtychoPINN's ``'lines'``: 400 random segments blurred at three scales
                    on a ``2S`` canvas, centre crop; min-max normalised. Legacy MT19937.
:func:`grf`         PtychoPINN's ``'grf'``: smoothed power-law Gaussian random field
                    (``k^−0.4``), in [0, 1]; min-max normalised. Legacy MT19937.
:func:`points`      PtychoPINN's ``'points'``: blurred random point counts; min-max
                    normalised. Legacy MT19937.
:func:`dead_leaves` occluding discs with power-law radii (``p(r) ∝ r^−α``), each of a
                    uniform gray level in [0, 1) used as is. PCG64.
==================  =====================================================================

The PtychoPINN recipes are square: a non-square ``(H, W)`` is the centre crop of the
``S × S`` texture, ``S = max(H, W)`` (rounded up to even for ``grf``), so a square shape
gives exactly the reference's image. They draw from NumPy's legacy ``RandomState(seed)`` with
a 32-bit seed (as the reference after ``np.random.seed(seed)``); ``dead_leaves`` draws from
``Generator(PCG64(seed))`` with a 64-bit seed.

**Provenance.** :func:`recipe` returns the JSON-serialisable description of one object
(family, every parameter, the seed resolved to the recorded integer) and :func:`build` makes
the object from it; ``build(recipe(family, **p))`` equals ``family(**p)`` for an integer seed.
A builder called with ``seed=None`` draws fresh entropy that only :func:`recipe` records.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _args, _textures

__all__ = [
    "FAMILIES",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "MAX_SIDE",
    "lines",
    "grf",
    "points",
    "dead_leaves",
    "texture_to_object",
    "recipe",
    "build",
]

#: ``format`` field of an object recipe.
RECIPE_FORMAT = "ptyfast.object"
#: Version of the recipe layout and of the families' arithmetic.
RECIPE_VERSION = 1
#: Largest object side (``lines`` works on a ``2S`` canvas and allows half of it).
MAX_SIDE = 8192

#: Largest dead-leaves exponent: ``r**(1 − alpha)`` must stay a normal float64 for radii up
#: to ``4·MAX_SIDE``.
_MAX_ALPHA = 50.0
_DEFAULT_AMPLITUDE = (1.0, 0.5)
_DEFAULT_PHASE = (0.0, math.pi / 2)
#: Largest amplitude a complex64 object holds.
_F32_MAX = float(np.finfo(np.float32).max)


def _shape(shape: Any, max_side: int = MAX_SIDE) -> tuple[int, int]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape, shape)
    if _args.length(shape) != 2:
        raise TypeError(f"shape must be an int or (H, W), got {shape!r}")
    h = _args.integer("shape[0]", shape[0], minimum=1, maximum=max_side)
    w = _args.integer("shape[1]", shape[1], minimum=1, maximum=max_side)
    return h, w


def _mapping(amplitude: Any, phase: Any) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    amp = None
    if amplitude is not None:
        amp = _args.pair("amplitude", amplitude, nonnegative=True, maximum=_F32_MAX)
    ph = _args.pair("phase", phase)
    if not math.isfinite(ph[1] - ph[0]):
        raise ValueError(f"phase[1] - phase[0] must be finite, got {ph[1]} - {ph[0]}")
    return amp, ph


def _crop(square: np.ndarray, h: int, w: int) -> np.ndarray:
    s = square.shape[0]
    r0, c0 = (s - h) // 2, (s - w) // 2
    return square[r0 : r0 + h, c0 : c0 + w]


def _normalised(t: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(t)), float(np.max(t))
    if hi > lo:
        return (t - lo) / (hi - lo)
    return np.zeros_like(t)


def texture_to_object(
    t: Any,
    *,
    amplitude: Any = _DEFAULT_AMPLITUDE,
    phase: Any = _DEFAULT_PHASE,
    raw: Any = None,
) -> np.ndarray:
    """The families' mapping from a texture ``t`` in [0, 1] to a complex object.

    ``amplitude = a0 + (a1 − a0)·t`` (or ``raw`` when ``amplitude`` is None),
    ``phase = p0 + (p1 − p0)·t``, object ``= amplitude·exp(i·phase)`` rounded once to
    complex64.

    Parameters
    ----------
    t : array_like, (H, W)
        Texture, finite, in [0, 1].
    amplitude : (float, float) or None, default (1.0, 0.5)
        ``(a0, a1)``, each ``>= 0`` and within float32; None uses ``raw``.
    phase : (float, float), default (0, π/2)
        ``(p0, p1)`` in radians (``p1 − p0`` finite).
    raw : array_like, (H, W), optional
        Amplitude used as is when ``amplitude`` is None (``>= 0``, within float32).

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    TypeError, ValueError
        Bad ranges, shapes, or a texture outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> o = texture_to_object(np.array([[0.0, 1.0]]))
    >>> [round(float(v), 6) for v in np.abs(o[0])], [round(float(v), 6) for v in np.angle(o[0])]
    ([1.0, 0.5], [0.0, 1.570796])
    """
    amp, ph = _mapping(amplitude, phase)
    tt = _args.real_array("t", t)
    if tt.ndim != 2 or tt.size == 0 or tt.min() < 0 or tt.max() > 1:
        raise ValueError(
            f"t must be a finite (H, W) texture within [0, 1], got shape {tt.shape}"
            + (f" and range [{tt.min()}, {tt.max()}]" if tt.size else "")
        )
    if amp is None:
        if raw is None:
            raise ValueError("amplitude=None needs raw (the amplitude to use as is)")
        a = _args.real_array("raw", raw)
        if a.shape != tt.shape or a.min() < 0 or a.max() > _F32_MAX:
            raise ValueError(
                f"raw must be a finite, non-negative {tt.shape} array within float32 (a complex64 "
                f"object), got shape {a.shape} and range [{a.min()}, {a.max()}]"
            )
    else:
        a = amp[0] + (amp[1] - amp[0]) * tt
    p = ph[0] + (ph[1] - ph[0]) * tt
    return (a * np.exp(1j * p)).astype(np.complex64)


def _finish(texture: np.ndarray, amplitude: Any, phase: Any, normalise: bool) -> np.ndarray:
    t = _normalised(texture) if normalise else texture
    raw = texture if amplitude is None else None
    return texture_to_object(t, amplitude=amplitude, phase=phase, raw=raw)


# --------------------------------------------------------------------------- families


def _lines_args(shape: Any, n_lines: Any) -> tuple[tuple[int, int], int]:
    return _shape(shape, MAX_SIDE // 2), _args.integer(
        "n_lines", n_lines, minimum=0, maximum=10_000_000
    )


def lines(
    shape: Any,
    *,
    n_lines: int = 400,
    seed: Any = None,
    amplitude: Any = _DEFAULT_AMPLITUDE,
    phase: Any = _DEFAULT_PHASE,
) -> np.ndarray:
    """PtychoPINN's ``'lines'`` object: random blurred line segments.

    The texture is PtychoPINN's: ``n_lines`` Bresenham segments with end points
    ``int(2S·uniform())`` on a ``2S × 2S`` canvas, ``G1 + 2·G5 + 5·G10`` (Gaussian blurs of
    σ = 1, 5, 10 pixels), centre crop ``[S//2 : S//2 + S]``; ``t`` is its min-max
    normalisation (see the module's mapping).

    Parameters
    ----------
    shape : int or (int, int)
        ``S`` or ``(H, W)``, sides ``1 ..`` :data:`MAX_SIDE` ``/ 2``.
    n_lines : int, default 400
        Number of segments, ``>= 0``.
    seed : int, numpy.random.Generator or None
        Resolved to a 32-bit integer for ``RandomState`` (an int in ``[0, 2**32)`` is used as
        is: the reference's image after ``np.random.seed(seed)``).
    amplitude, phase
        The mapping (module docstring); ``amplitude=None``: the raw texture (about
        [1.4, 5.7] for ``S = 256``).

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> o = lines(64, seed=0)
    >>> o.shape, o.dtype
    ((64, 64), dtype('complex64'))
    """
    (h, w), n = _lines_args(shape, n_lines)
    _mapping(amplitude, phase)
    rs = np.random.RandomState(_args.legacy_seed_int(seed))
    s = max(h, w)
    texture = _crop(_textures.lines_object(s, n, rs)[:, :, 0], h, w)
    return _finish(texture, amplitude, phase, normalise=True)


def grf(
    shape: Any,
    *,
    seed: Any = None,
    amplitude: Any = _DEFAULT_AMPLITUDE,
    phase: Any = _DEFAULT_PHASE,
) -> np.ndarray:
    """PtychoPINN's ``'grf'`` object: a smoothed power-law Gaussian random field.

    The texture is PtychoPINN's ``mk_grf`` on an ``S × S`` grid (``S = max(H, W)`` rounded up
    to even, ``>= 4``): a real field with power spectrum ``k^−0.4`` on an ``S/2`` grid,
    min-max normalised, resampled to ``S`` and blurred with σ = 1 pixel; ``t`` is its min-max
    normalisation.

    Parameters
    ----------
    shape : int or (int, int)
        ``S`` or ``(H, W)``, sides ``1 ..`` :data:`MAX_SIDE`.
    seed : int, numpy.random.Generator or None
        As for :func:`lines`.
    amplitude, phase
        The mapping; ``amplitude=None``: the raw texture (in [0, 1]).

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> grf((32, 48), seed=1).shape
    (32, 48)
    """
    h, w = _shape(shape)
    _mapping(amplitude, phase)
    rs = np.random.RandomState(_args.legacy_seed_int(seed))
    s = max(h, w, 4)
    s += s % 2
    texture = _crop(_textures.grf_image(s, rs)[:, :, 0], h, w)
    return _finish(texture, amplitude, phase, normalise=True)


def _points_args(shape: Any, sigma_px: Any) -> tuple[tuple[int, int], float]:
    h, w = _shape(shape)
    return (h, w), _args.real("sigma_px", sigma_px, nonnegative=True, maximum=float(max(h, w)))


def points(
    shape: Any,
    *,
    sigma_px: float = 1.0,
    seed: Any = None,
    amplitude: Any = _DEFAULT_AMPLITUDE,
    phase: Any = _DEFAULT_PHASE,
) -> np.ndarray:
    """PtychoPINN's ``'points'`` object: random point counts blurred twice.

    The texture is PtychoPINN's ``mk_points``: ``int(0.1·S²)`` pixel hits with replacement,
    ``img = G_σ(counts)``, ``img + 5·G_10σ(img)``; ``t`` is its min-max normalisation.

    Parameters
    ----------
    shape : int or (int, int)
        ``S`` or ``(H, W)``, sides ``1 ..`` :data:`MAX_SIDE`.
    sigma_px : float, default 1.0
        ``σ`` in pixels, ``0 <= σ <= max(H, W)`` (a wider blur only flattens the image).
    seed : int, numpy.random.Generator or None
        As for :func:`lines`.
    amplitude, phase
        The mapping; ``amplitude=None``: the raw texture.

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> points(32, seed=2).dtype
    dtype('complex64')
    """
    (h, w), sigma = _points_args(shape, sigma_px)
    _mapping(amplitude, phase)
    rs = np.random.RandomState(_args.legacy_seed_int(seed))
    s = max(h, w)
    texture = _crop(_textures.points_image(s, sigma, rs)[:, :, 0], h, w)
    return _finish(texture, amplitude, phase, normalise=True)


def _dead_leaves_args(
    shape: Any, radius_min_px: Any, radius_max_px: Any, alpha: Any
) -> tuple[tuple[int, int], float, float, float]:
    h, w = _shape(shape)
    # Leaves are centred within radius_max_px of the image: far larger radii would make
    # almost every leaf miss it (an endless loop), so radii stop at 4 image sides.
    r_cap = 4.0 * max(h, w)
    r_min = _args.real("radius_min_px", radius_min_px, minimum=0.5, maximum=r_cap)
    default_max = max(r_min, min(h, w) / 4.0)
    r_max = (
        default_max
        if radius_max_px is None
        else _args.real("radius_max_px", radius_max_px, minimum=r_min, maximum=r_cap)
    )
    a = _args.real("alpha", alpha, nonnegative=True, maximum=_MAX_ALPHA)
    return (h, w), r_min, r_max, a


def dead_leaves(
    shape: Any,
    *,
    radius_min_px: float = 2.0,
    radius_max_px: float | None = None,
    alpha: float = 3.0,
    seed: Any = None,
    amplitude: Any = _DEFAULT_AMPLITUDE,
    phase: Any = _DEFAULT_PHASE,
) -> np.ndarray:
    """Dead leaves: a pile of occluding discs with power-law radii (no image files needed).

    Discs ("leaves") fall on the object; each pixel shows the top-most leaf covering its
    centre. Leaf centres are uniform (over the object dilated by ``radius_max_px``), radii
    independent with density ``p(r) ∝ r^−α`` on ``[radius_min_px, radius_max_px]`` (α = 3
    gives the scale invariance of natural images), gray levels uniform in [0, 1) and used as
    ``t`` without normalisation. The image is an exact sample of the stationary model
    (leaves are drawn top-down until every pixel is covered). Two pixels at distance ``d``
    show the same leaf with probability ``E[L(r, d)] / E[2πr² − L(r, d)]``, ``L`` the area of
    the lens where two discs of radius ``r`` at distance ``d`` overlap.

    Parameters
    ----------
    shape : int or (int, int)
        ``S`` or ``(H, W)``, sides ``1 ..`` :data:`MAX_SIDE`.
    radius_min_px : float, default 2.0
        Smallest radius in pixels, ``0.5 <= radius_min_px <= 4·max(H, W)``.
    radius_max_px : float, optional
        Largest radius, ``radius_min_px <= radius_max_px <= 4·max(H, W)``; default
        ``max(radius_min_px, min(H, W)/4)``.
    alpha : float, default 3.0
        Power-law exponent, ``0 <= alpha <= 50`` (larger ones underflow the radii).
    seed : int, numpy.random.Generator or None
        Resolved to a 64-bit integer for ``Generator(PCG64(seed))``.
    amplitude, phase
        The mapping; ``amplitude=None`` uses the gray levels as amplitude.

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> o = dead_leaves((48, 64), seed=5)
    >>> o.shape, o.dtype
    ((48, 64), dtype('complex64'))
    """
    (h, w), r_min, r_max, a = _dead_leaves_args(shape, radius_min_px, radius_max_px, alpha)
    _mapping(amplitude, phase)
    rng = _args.generator(_args.seed_int(seed))
    texture, _ = _textures.dead_leaves_image((h, w), r_min, r_max, a, rng)
    return _finish(texture, amplitude, phase, normalise=False)


# --------------------------------------------------------------------------- recipes

_FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    "lines": lines,
    "grf": grf,
    "points": points,
    "dead_leaves": dead_leaves,
}
_PARAMS: dict[str, tuple[str, ...]] = {
    "lines": ("shape", "n_lines", "seed", "amplitude", "phase"),
    "grf": ("shape", "seed", "amplitude", "phase"),
    "points": ("shape", "sigma_px", "seed", "amplitude", "phase"),
    "dead_leaves": (
        "shape",
        "radius_min_px",
        "radius_max_px",
        "alpha",
        "seed",
        "amplitude",
        "phase",
    ),
}
_LEGACY = ("lines", "grf", "points")
#: The object families, by name.
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)


def _defaults(family: str) -> dict[str, Any]:
    import inspect

    sig = inspect.signature(_FAMILIES[family])
    return {
        k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty
    }


def recipe(family: str, **params: Any) -> dict[str, Any]:
    """The recorded description of one object: family, every parameter, the resolved seed.

    Parameters
    ----------
    family : {'lines', 'grf', 'points', 'dead_leaves'}
        The family.
    **params
        The family's arguments (``shape`` required); omitted ones take their defaults,
        ``seed`` (default None: fresh entropy) is resolved to the integer the family uses
        (32-bit for the PtychoPINN families, 64-bit for ``dead_leaves``).

    Returns
    -------
    dict
        JSON-serialisable: ``{"format": "ptyfast.object", "version": 1, "family": ...,
        "params": {...}}`` with ``shape`` as ``[H, W]`` and pairs as lists.

    Raises
    ------
    TypeError, ValueError
        Unknown family or parameter, or a parameter the family rejects (checked here, before
        the seed is resolved: a ``Generator`` passed as ``seed`` is then left as it was).

    Examples
    --------
    >>> r = recipe("dead_leaves", shape=32, seed=9)
    >>> r["params"]["shape"], r["params"]["seed"], r["params"]["alpha"]
    ([32, 32], 9, 3.0)
    >>> import numpy as np
    >>> bool(np.array_equal(build(r), dead_leaves(32, seed=9)))
    True
    """
    _args.choice("family", family, FAMILIES)
    unknown = sorted(set(params) - set(_PARAMS[family]))
    if unknown:
        raise ValueError(f"unknown {family} parameters {unknown}; expected {list(_PARAMS[family])}")
    if "shape" not in params:
        raise ValueError(f"{family} recipe needs shape")
    p = {**_defaults(family), **params}
    # Every parameter is checked as the family checks it, before the seed is resolved (a
    # Generator is then not advanced by a recipe that is refused).
    if family == "lines":
        (h, w), _ = _lines_args(p["shape"], p["n_lines"])
    elif family == "points":
        (h, w), _ = _points_args(p["shape"], p["sigma_px"])
    elif family == "dead_leaves":
        (h, w), *_ = _dead_leaves_args(
            p["shape"], p["radius_min_px"], p["radius_max_px"], p["alpha"]
        )
    else:
        h, w = _shape(p["shape"])
    amp, ph = _mapping(p["amplitude"], p["phase"])
    p["shape"] = [h, w]
    if family in _LEGACY:
        p["seed"] = _args.legacy_seed_int(p["seed"])
    else:
        p["seed"] = _args.seed_int(p["seed"])
    p["amplitude"] = None if amp is None else list(amp)
    p["phase"] = list(ph)
    for k, v in p.items():
        if isinstance(v, (np.integer, np.floating)):
            p[k] = v.item()
    out = {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, "family": family, "params": p}
    _checked(out)
    return out


def build(recipe: dict[str, Any]) -> np.ndarray:
    """Make the object a :func:`recipe` describes (bit for bit the same every time).

    Parameters
    ----------
    recipe : dict
        As returned by :func:`recipe` (possibly through JSON); its seed must be an integer.

    Returns
    -------
    numpy.ndarray, (H, W), complex64

    Raises
    ------
    ValueError
        Not an object recipe, another version, an unknown family, missing or unknown
        parameters, a seed that is not a recorded integer, or values the family rejects.

    Examples
    --------
    >>> build(recipe("grf", shape=16, seed=0)).shape
    (16, 16)
    """
    family, params = _checked(recipe)
    kwargs = copy.deepcopy(params)
    kwargs["shape"] = tuple(kwargs["shape"])
    return _FAMILIES[family](**kwargs)


def _checked(recipe: Any) -> tuple[str, dict[str, Any]]:
    """The family and parameters of a well-formed recipe (else ``ValueError``)."""
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe must be a dict, got {type(recipe).__name__}")
    want = {"format", "version", "family", "params"}
    if set(recipe) != want:
        raise ValueError(f"recipe must have the keys {sorted(want)}, got {sorted(recipe)}")
    if recipe["format"] != RECIPE_FORMAT:
        raise ValueError(f"recipe['format'] must be {RECIPE_FORMAT!r}, got {recipe['format']!r}")
    if recipe["version"] != RECIPE_VERSION:
        raise ValueError(
            f"recipe['version'] must be {RECIPE_VERSION} (this ptyfast's object recipes), got "
            f"{recipe['version']!r}"
        )
    family = recipe["family"]
    _args.choice("recipe['family']", family, FAMILIES)
    params = recipe["params"]
    if not isinstance(params, dict) or set(params) != set(_PARAMS[family]):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"recipe['params'] for {family} must have the keys {list(_PARAMS[family])}, got {got}"
        )
    seed = params["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"recipe['params']['seed'] must be a recorded integer, got {seed!r}")
    return family, params

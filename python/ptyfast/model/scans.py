"""Scan patterns with position errors: ``ptyfast.scans``.

A :class:`Scan` holds two ``(M, 2)`` float64 arrays of positions ``(x, y)`` in object pixels
(``x`` = column, ``y`` = row, README "Conventions"), **relative to the scan centre**:

* ``nominal``: where the scan was commanded to go (what a reconstruction is told);
* ``true``: where the sample really was (what the simulation uses).

Builders (:func:`raster`, :func:`hexagonal`, :func:`fermat_spiral`, :func:`concentric`,
:func:`lissajous`, :func:`random_uniform`, :func:`custom`) make scans whose true positions
equal the nominal ones; the error methods (:meth:`Scan.jitter`, :meth:`Scan.drift`,
:meth:`Scan.affine`) return a new scan whose ``true`` positions moved and whose ``nominal``
ones did not. Errors compose in the order applied.

A scan knows how it was made: :meth:`Scan.to_dict` is a JSON-serialisable recipe (builder,
parameters, the chain of errors each with its resolved integer seed; custom positions
embedded) and :meth:`Scan.from_dict` rebuilds the scan from it bit for bit.

**Placement** (README "Conventions"): an experiment puts the scan centre on the object's
centre. A relative position ``(u, v)`` becomes the absolute ``(x, y) = (u + cx, v + cy)``
with ``cx = (W − 1)/2 + δ``, ``cy = (H − 1)/2 + δ`` and ``δ = N//2 − (N − 1)/2`` (½ for even
``N``, 0 for odd), so that a probe symmetric about its array centre ``(N − 1)/2`` is centred on
the object's array centre. :meth:`Scan.placed` does this and checks that every patch lies
inside the object.

Random draws (``random_uniform``, ``jitter``, ``drift``) come from
``numpy.random.Generator(PCG64(seed))``; ``seed=None`` draws fresh OS entropy, which is
resolved to an integer first and recorded in the recipe.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _kernels
from . import _args
from .geometry import Geometry

__all__ = [
    "Scan",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "MAX_POSITIONS",
    "raster",
    "hexagonal",
    "fermat_spiral",
    "concentric",
    "lissajous",
    "random_uniform",
    "custom",
    "placement_offset",
]

#: ``format`` field of a scan recipe.
RECIPE_FORMAT = "ptyfast.scan"
#: Version of the recipe layout (and of the builders' arithmetic): a recipe of another
#: version is refused rather than rebuilt differently.
RECIPE_VERSION = 1
#: Largest number of positions a builder makes (checked before allocating).
MAX_POSITIONS = 100_000_000

#: The golden angle ``π (3 − √5)`` in radians (Fermat spiral).
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def _quiet(fn: Callable[..., Scan]) -> Callable[..., Scan]:
    """Run ``fn`` without NumPy's overflow warnings: an overflow is reported by
    :meth:`Scan._make` as a ValueError naming the parameters, not as a stray warning."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Scan:
        with np.errstate(over="ignore", invalid="ignore"):
            return fn(*args, **kwargs)

    return wrapper


#: Peak bytes per position while a builder runs (coordinates, index grids, the nominal and
#: true arrays and their temporaries; 48-72 measured), checked against the available memory.
_BUILD_BYTES_PER_POSITION = 80


def _count(name: str, v: Any) -> int:
    n = _args.integer(name, v, minimum=1, maximum=MAX_POSITIONS)
    _kernels.require_memory(f"{name} = {n} scan positions", _BUILD_BYTES_PER_POSITION * n)
    return n


def _short(params: dict[str, Any]) -> str:
    """The parameters for a message, long position lists elided."""
    return repr(
        {
            k: (f"<{len(v)} values>" if isinstance(v, list) and len(v) > 4 else v)
            for k, v in params.items()
        }
    )


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True, order="C")
    a.flags.writeable = False
    return a


def _positions(name: str, a: Any) -> np.ndarray:
    arr = _args.asarray(name, a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must be (M, 2) with M >= 1, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return arr


def _vector(name: str, a: Any) -> np.ndarray:
    arr = _args.asarray(name, a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name} must be 1-D with at least one value, got shape {arr.shape}")
    if arr.size > MAX_POSITIONS:
        raise ValueError(f"{name} must have at most {MAX_POSITIONS} values, got {arr.size}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return arr


class Scan:
    """Nominal and true scan positions, relative to the scan centre, with their recipe.

    Make scans with the builders of this module (``raster``, ``fermat_spiral``, ...) or
    :meth:`from_dict`; ``Scan(nominal, true)`` wraps explicit arrays (as :func:`custom`).
    A scan is immutable: its arrays are read-only and the error methods return new scans.

    Parameters
    ----------
    nominal : array_like, (M, 2)
        Commanded positions ``(x, y)`` in object pixels, relative to the scan centre.
    true : array_like, (M, 2), optional
        Actual positions; default: the nominal ones.

    Attributes
    ----------
    nominal, true : numpy.ndarray, (M, 2), float64, read-only
        Positions ``(x, y)`` in object pixels relative to the scan centre.

    Raises
    ------
    TypeError, ValueError
        Arrays of the wrong type or shape, or not finite.

    Examples
    --------
    >>> from ptyfast import scans
    >>> s = scans.raster(3, 4, 5.0, snake=True).jitter(0.5, seed=1)
    >>> s.nominal.shape, bool((s.true != s.nominal).all())
    ((12, 2), True)
    >>> t = scans.Scan.from_dict(s.to_dict())
    >>> bool((t.true == s.true).all())
    True
    """

    __slots__ = ("_nominal", "_true", "_recipe")

    def __init__(self, nominal: Any, true: Any = None) -> None:
        nom = _positions("nominal", nominal)
        tru = nom if true is None else _positions("true", true)
        if tru.shape != nom.shape:
            raise ValueError(f"true must have the shape of nominal {nom.shape}, got {tru.shape}")
        recipe: dict[str, Any] = {
            "builder": "custom",
            "params": {
                "x": nom[:, 0].tolist(),
                "y": nom[:, 1].tolist(),
                "true_x": None if true is None else tru[:, 0].tolist(),
                "true_y": None if true is None else tru[:, 1].tolist(),
            },
            "errors": [],
        }
        self._set(nom, tru, recipe)

    def _set(self, nominal: np.ndarray, true: np.ndarray, recipe: dict[str, Any]) -> None:
        self._nominal = _readonly(nominal)
        self._true = self._nominal if true is nominal else _readonly(true)
        self._recipe = recipe

    @classmethod
    def _make(cls, nominal: np.ndarray, true: np.ndarray, recipe: dict[str, Any]) -> Scan:
        # Finite parameters can still overflow float64 (step_px=1e308 times an index):
        # refuse rather than hand out inf/NaN positions, naming the recipe's parameters.
        for what, arr in (("nominal", nominal), ("true", true)):
            if not np.all(np.isfinite(arr)):
                errors = recipe.get("errors") or []
                raise ValueError(
                    f"the scan's {what} positions overflow float64: {recipe['builder']} with "
                    f"parameters {_short(recipe['params'])}"
                    + (f" and error operations {errors}" if errors else "")
                    + " give non-finite positions; use smaller steps, amplitudes or errors"
                )
        scan = cls.__new__(cls)
        scan._set(nominal, true, recipe)
        return scan

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle through _make so that the arrays come back read-only.
        return (_restore, (np.array(self._nominal), np.array(self._true), self._recipe))

    # ------------------------------------------------------------------ facts

    @property
    def nominal(self) -> np.ndarray:
        """Commanded positions ``(M, 2)`` ``(x, y)`` in object pixels (read-only)."""
        return self._nominal

    @property
    def true(self) -> np.ndarray:
        """Actual positions ``(M, 2)`` ``(x, y)`` in object pixels (read-only)."""
        return self._true

    @property
    def n_positions(self) -> int:
        """``M``, the number of scan positions."""
        return int(self._nominal.shape[0])

    def __len__(self) -> int:
        return self.n_positions

    @property
    def builder(self) -> str:
        """Name of the builder that made the nominal positions."""
        return str(self._recipe["builder"])

    @property
    def errors(self) -> tuple[dict[str, Any], ...]:
        """The error operations applied, in order, each with its parameters and seed."""
        return tuple(copy.deepcopy(e) for e in self._recipe["errors"])

    def __repr__(self) -> str:
        ops = ", ".join(e["op"] for e in self._recipe["errors"]) or "none"
        return f"Scan({self.builder}, M={self.n_positions}, errors: {ops})"

    def nominal_m(self, geometry: Geometry) -> np.ndarray:
        """Nominal positions in metres: ``nominal · geometry.object_pixel_m``.

        Parameters
        ----------
        geometry : Geometry

        Returns
        -------
        numpy.ndarray, (M, 2), float64
            ``(x, y)`` in metres, relative to the scan centre.
        """
        return self._nominal * _pixel_m(geometry)

    def true_m(self, geometry: Geometry) -> np.ndarray:
        """True positions in metres: ``true · geometry.object_pixel_m`` (see :meth:`nominal_m`)."""
        return self._true * _pixel_m(geometry)

    # ------------------------------------------------------------------ errors

    def _with_error(self, true: np.ndarray, op: dict[str, Any]) -> Scan:
        recipe = copy.deepcopy(self._recipe)
        recipe["errors"].append(op)
        return Scan._make(self._nominal, true, recipe)

    @_quiet
    def jitter(self, sigma_px: float, *, seed: Any = None) -> Scan:
        """Independent Gaussian position errors.

        ``true += ξ`` with ``ξ`` an ``(M, 2)`` array of independent normals of standard
        deviation ``sigma_px`` per coordinate, drawn as
        ``Generator(PCG64(seed)).normal(0, sigma_px, (M, 2))``.

        Parameters
        ----------
        sigma_px : float
            Standard deviation in object pixels, ``>= 0``.
        seed : int, numpy.random.Generator or None
            Resolved to an integer and recorded (``None``: fresh entropy; a ``Generator``
            gives one draw, and gets its state back if the call fails).

        Returns
        -------
        Scan
            Same nominal positions, moved true ones.

        Raises
        ------
        TypeError, ValueError
            ``sigma_px`` negative or not finite, or a bad seed.

        Examples
        --------
        >>> s = raster(2, 2, 10.0).jitter(0.3, seed=7)
        >>> s.errors[0]["op"], s.errors[0]["seed"]
        ('jitter', 7)
        """
        sigma = _args.real("sigma_px", sigma_px, nonnegative=True) + 0.0  # -0.0 → 0.0
        # Positions that overflow are refused after the draw: a Generator gets its state back.
        with _args.seed_kept_on_error(seed):
            s = _args.seed_int(seed)
            shift = _args.generator(s).normal(0.0, sigma, size=self._true.shape)
            op = {"op": "jitter", "sigma_px": sigma, "seed": s}
            return self._with_error(self._true + shift, op)

    @_quiet
    def drift(
        self,
        velocity_px: Any = (0.0, 0.0),
        *,
        random_walk_px: float = 0.0,
        seed: Any = None,
    ) -> Scan:
        """Slow drift of the sample along the scan order.

        Position ``k`` (``k = 0 .. M−1``, in scan order) moves by ``v·k + W_k``: a linear
        drift of ``velocity_px = (vx, vy)`` pixels per position plus a Gaussian random walk
        ``W_0 = 0``, ``W_k = Σ_{i=1..k} ξ_i`` with independent steps ``ξ_i`` of standard
        deviation ``random_walk_px`` per coordinate (``(M − 1, 2)`` normals from
        ``Generator(PCG64(seed))``, drawn only when ``random_walk_px > 0``).

        Parameters
        ----------
        velocity_px : (float, float), default (0, 0)
            Linear drift per position, object pixels.
        random_walk_px : float, default 0.0
            Random-walk step, object pixels, ``>= 0``.
        seed : int, numpy.random.Generator or None
            For the random walk only (giving a seed with ``random_walk_px = 0`` raises).

        Returns
        -------
        Scan

        Raises
        ------
        TypeError, ValueError
            Non-finite or negative values, a seed without a random walk.

        Examples
        --------
        >>> s = raster(1, 3, 10.0).drift((0.5, 0.0))
        >>> (s.true - s.nominal)[:, 0].tolist()
        [0.0, 0.5, 1.0]
        """
        vx, vy = _args.pair("velocity_px", velocity_px)
        walk = _args.real("random_walk_px", random_walk_px, nonnegative=True)
        k = np.arange(self.n_positions, dtype=np.float64)
        shift = np.stack([vx * k, vy * k], axis=1)
        op: dict[str, Any] = {"op": "drift", "velocity_px": [vx, vy], "random_walk_px": walk}
        if seed is not None and walk == 0:
            raise ValueError("seed is used only with random_walk_px > 0")
        # Positions that overflow are refused after the draw: a Generator gets its state back.
        with _args.seed_kept_on_error(seed):
            if walk > 0:
                s = _args.seed_int(seed)
                steps = _args.generator(s).normal(0.0, walk, size=(self.n_positions - 1, 2))
                shift[1:] += np.cumsum(steps, axis=0)
                op["seed"] = s
            else:
                op["seed"] = None
            return self._with_error(self._true + shift, op)

    @_quiet
    def affine(self, matrix: Any, *, offset_px: Any = (0.0, 0.0)) -> Scan:
        """A linear stage error about the scan centre: ``true ← A·true + b``.

        For each position, ``[x', y'] = A @ [x, y] + offset_px``: e.g. a rotation by ``θ``
        (``A = [[cos θ, −sin θ], [sin θ, cos θ]]``), a scale calibration error
        (``A = diag(1 + εx, 1 + εy)``) or a shear.

        Parameters
        ----------
        matrix : array_like, (2, 2)
            ``A``, finite.
        offset_px : (float, float), default (0, 0)
            ``b`` in object pixels.

        Returns
        -------
        Scan

        Raises
        ------
        TypeError, ValueError
            ``matrix`` not a finite 2 × 2 real array, ``offset_px`` not a finite pair.

        Examples
        --------
        >>> s = raster(1, 2, 10.0).affine([[1.01, 0.0], [0.0, 1.0]])
        >>> s.true[:, 0].tolist()
        [-5.05, 5.05]
        """
        a = _args.asarray("matrix", matrix)
        if a.dtype.kind not in "biuf" or a.shape != (2, 2):
            raise TypeError(
                f"matrix must be a real (2, 2) array, got {a.dtype} with shape {a.shape}"
            )
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("matrix must be finite, got NaN or inf values")
        bx, by = _args.pair("offset_px", offset_px)
        t = self._true
        x = a[0, 0] * t[:, 0] + a[0, 1] * t[:, 1] + bx
        y = a[1, 0] * t[:, 0] + a[1, 1] * t[:, 1] + by
        op = {"op": "affine", "matrix": a.tolist(), "offset_px": [bx, by]}
        return self._with_error(np.stack([x, y], axis=1), op)

    # ------------------------------------------------------------------ placement

    def placed(
        self, object_shape: Any, N: int, *, center: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Absolute positions in an object, checked to keep every patch inside it.

        ``(x, y) = (u, v) + (cx, cy)`` with ``(cx, cy)`` from :func:`placement_offset`. Every
        ``N × N`` patch at a true or nominal position must lie within the object:
        ``N//2 <= x <= W − N + N//2`` and ``N//2 <= y <= H − N + N//2`` (to 1e-9 pixel).

        Parameters
        ----------
        object_shape : (int, int)
            Object shape ``(H, W)`` in pixels.
        N : int
            Patch (probe) size, ``1 <= N <= min(H, W)``.
        center : (float, float), optional
            Where the probe centre of the scan centre lands, ``(x, y)`` in object pixels;
            default the object's centre ``((W − 1)/2, (H − 1)/2)``.

        Returns
        -------
        nominal, true : numpy.ndarray, (M, 2), float64
            Absolute positions ``(x, y)`` in object pixels, as the kernels take them.

        Raises
        ------
        TypeError, ValueError
            Bad shape or ``N`` (a probe larger than the object), or a position whose patch
            leaves the object (the message names it).

        Examples
        --------
        >>> nominal, true = raster(2, 2, 10.0).placed((64, 64), 16)
        >>> nominal.tolist()
        [[27.0, 27.0], [37.0, 27.0], [27.0, 37.0], [37.0, 37.0]]
        """
        ox, oy = placement_offset(object_shape, N, center=center)
        h, w = int(object_shape[0]), int(object_shape[1])
        half = N // 2
        lo_x, hi_x = half, w - N + half
        lo_y, hi_y = half, h - N + half
        out = []
        for name, rel in (("true", self._true), ("nominal", self._nominal)):
            absolute = rel + np.array([ox, oy])
            x, y = absolute[:, 0], absolute[:, 1]
            tol = 1e-9
            bad = (x < lo_x - tol) | (x > hi_x + tol) | (y < lo_y - tol) | (y > hi_y + tol)
            if np.any(bad):
                i = int(np.argmax(bad))
                raise ValueError(
                    f"scan leaves the object: {name} position {i} at (x, y) = "
                    f"({x[i]:.6g}, {y[i]:.6g}) (relative ({rel[i, 0]:.6g}, {rel[i, 1]:.6g})) "
                    f"puts its {N}x{N} patch outside the {h}x{w} object; x must be within "
                    f"[{lo_x}, {hi_x}] and y within [{lo_y}, {hi_y}]"
                )
            out.append(absolute)
        true_abs, nominal_abs = out
        return nominal_abs, true_abs

    # ------------------------------------------------------------------ recipe

    def to_dict(self) -> dict[str, Any]:
        """The recipe: a JSON-serialisable dict that :meth:`from_dict` rebuilds bit for bit.

        Keys: ``format`` (``"ptyfast.scan"``), ``version``, ``builder`` (the builder's
        name), ``params`` (its arguments; custom positions as lists of floats), ``errors``
        (the error operations in order, each ``{"op": ..., parameters, "seed": int or
        None}``).

        Returns
        -------
        dict
        """
        out = {"format": RECIPE_FORMAT, "version": RECIPE_VERSION}
        out.update(copy.deepcopy(self._recipe))
        return out

    @classmethod
    def from_dict(cls, recipe: dict[str, Any]) -> Scan:
        """Rebuild a scan from :meth:`to_dict`'s recipe (bit for bit).

        Parameters
        ----------
        recipe : dict
            As written by :meth:`to_dict` (possibly through JSON).

        Returns
        -------
        Scan

        Raises
        ------
        ValueError
            Not a scan recipe, another version, an unknown builder or operation, missing or
            unknown parameters (named), or parameters the builder rejects.
        """
        if not isinstance(recipe, dict):
            raise ValueError(f"recipe must be a dict, got {type(recipe).__name__}")
        want = {"format", "version", "builder", "params", "errors"}
        if set(recipe) != want:
            raise ValueError(f"recipe must have the keys {sorted(want)}, got {sorted(recipe)}")
        if recipe["format"] != RECIPE_FORMAT:
            raise ValueError(
                f"recipe['format'] must be {RECIPE_FORMAT!r}, got {recipe['format']!r}"
            )
        if recipe["version"] != RECIPE_VERSION:
            raise ValueError(
                f"recipe['version'] must be {RECIPE_VERSION} (this ptyfast's scan recipes), "
                f"got {recipe['version']!r}"
            )
        name = recipe["builder"]
        _args.choice("recipe['builder']", name, tuple(sorted(_BUILDERS)))
        params = recipe["params"]
        if not isinstance(params, dict):
            raise ValueError(f"recipe['params'] must be a dict, got {type(params).__name__}")
        scan = _BUILDERS[name](**_checked_params(f"{name} params", params, _PARAMS[name]))
        errors = recipe["errors"]
        if not isinstance(errors, list):
            raise ValueError(f"recipe['errors'] must be a list, got {type(errors).__name__}")
        for i, op in enumerate(errors):
            if not isinstance(op, dict) or not _args.one_of(op.get("op"), _OPS):
                got = op.get("op") if isinstance(op, dict) else op
                raise ValueError(
                    f"recipe['errors'][{i}]['op'] must be one of {sorted(_OPS)}, got {got!r}"
                )
            kind = op["op"]
            kwargs = {k: v for k, v in op.items() if k != "op"}
            kwargs = _checked_params(f"errors[{i}] ({kind})", kwargs, _OPS[kind])
            if kind == "jitter":
                scan = scan.jitter(kwargs["sigma_px"], seed=kwargs["seed"])
            elif kind == "drift":
                scan = scan.drift(
                    kwargs["velocity_px"],
                    random_walk_px=kwargs["random_walk_px"],
                    seed=kwargs["seed"],
                )
            else:
                scan = scan.affine(kwargs["matrix"], offset_px=kwargs["offset_px"])
        return scan


def _restore(nominal: np.ndarray, true: np.ndarray, recipe: dict[str, Any]) -> Scan:
    same = np.array_equal(nominal, true)
    return Scan._make(nominal, nominal if same else true, recipe)


def _checked_params(where: str, params: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    if set(params) != set(keys):
        missing = sorted(set(keys) - set(params))
        unknown = sorted(set(params) - set(keys))
        raise ValueError(f"{where}: missing {missing}, unknown {unknown}; expected {list(keys)}")
    if "seed" in params:
        s = params["seed"]
        # A recipe must not draw fresh entropy: every seed it uses is a recorded integer
        # (drift records None when it has no random walk).
        optional = "random_walk_px" in params and params["random_walk_px"] == 0
        if not (optional and s is None) and (isinstance(s, bool) or not isinstance(s, int)):
            raise ValueError(f"{where}: seed must be a recorded integer, got {s!r}")
    return dict(params)


def _pixel_m(geometry: Geometry) -> float:
    if not isinstance(geometry, Geometry):
        raise TypeError(f"geometry must be a ptyfast.Geometry, got {type(geometry).__name__}")
    return geometry.object_pixel_m


def placement_offset(object_shape: Any, N: int, *, center: Any = None) -> tuple[float, float]:
    """The shift ``(cx, cy)`` that places relative scan positions in an object.

    ``cx = center_x + δ``, ``cy = center_y + δ`` with ``δ = N//2 − (N − 1)/2`` and the
    default centre ``((W − 1)/2, (H − 1)/2)``: the probe centre (array centre ``(N − 1)/2``)
    of the relative position ``(0, 0)`` lands on ``center``.

    Parameters
    ----------
    object_shape : (int, int)
        ``(H, W)`` in pixels, each ``>= 1``.
    N : int
        Patch (probe) size, ``1 <= N <= min(H, W)``.
    center : (float, float), optional
        ``(x, y)`` in object pixels, finite.

    Returns
    -------
    (float, float)
        ``(cx, cy)``.

    Raises
    ------
    TypeError, ValueError
        Bad ``object_shape``, ``N`` larger than the object, non-finite ``center``.

    Examples
    --------
    >>> placement_offset((64, 64), 16)
    (32.0, 32.0)
    >>> placement_offset((64, 64), 15)
    (31.5, 31.5)
    """
    if _args.length(object_shape) != 2:
        raise TypeError(f"object_shape must be (H, W), got {object_shape!r}")
    h = _args.integer("object_shape[0]", object_shape[0], minimum=1)
    w = _args.integer("object_shape[1]", object_shape[1], minimum=1)
    n = _args.integer("N", N, minimum=1)
    if n > min(h, w):
        raise ValueError(
            f"N must be <= the object's smaller side {min(h, w)} (object {h}x{w}), got {n}"
        )
    delta = n // 2 - (n - 1) / 2.0
    if center is None:
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    else:
        cx, cy = _args.pair("center", center)
    return cx + delta, cy + delta


# --------------------------------------------------------------------------- builders


def _scan(builder: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Scan:
    pos = np.stack([x, y], axis=1).astype(np.float64)
    return Scan._make(pos, pos, {"builder": builder, "params": params, "errors": []})


def _flag(name: str, v: Any) -> bool:
    """``v`` as a Python ``bool`` (NumPy's ``bool_`` too, so that the recipe is JSON)."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    return bool(v)


def _grid_order(rows: int, cols: int, snake: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of each position, row by row (odd rows reversed if snake)."""
    r = np.repeat(np.arange(rows), cols)
    c = np.tile(np.arange(cols), rows)
    if snake:
        odd = r % 2 == 1
        c = np.where(odd, cols - 1 - c, c)
    return r, c


@_quiet
def raster(
    rows: int, cols: int, step_px: float, *, snake: bool = False, step_y_px: float | None = None
) -> Scan:
    """Rectangular grid, row by row.

    Position ``(r, c)`` is at ``x = (c − (cols − 1)/2)·step_px``,
    ``y = (r − (rows − 1)/2)·step_y_px``; the scan goes along ``x`` first (row ``r = 0``
    first). With ``snake=True`` odd rows are traversed backwards (a boustrophedon: the stage
    never flies back).

    Parameters
    ----------
    rows, cols : int
        Grid size, each ``>= 1``, ``rows·cols <=`` :data:`MAX_POSITIONS`.
    step_px : float
        Step along ``x`` in object pixels, ``> 0``.
    snake : bool, default False
        Reverse the odd rows.
    step_y_px : float, optional
        Step along ``y``; default ``step_px``.

    Returns
    -------
    Scan
        ``rows·cols`` positions centred on ``(0, 0)``.

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> raster(2, 3, 1.0, snake=True).nominal[:, 0].tolist()
    [-1.0, 0.0, 1.0, 1.0, 0.0, -1.0]
    """
    rows = _count("rows", rows)
    cols = _count("cols", cols)
    _count("rows * cols", rows * cols)
    step = _args.real("step_px", step_px, positive=True)
    step_y = step if step_y_px is None else _args.real("step_y_px", step_y_px, positive=True)
    snake = _flag("snake", snake)
    r, c = _grid_order(rows, cols, snake)
    x = (c - (cols - 1) / 2.0) * step
    y = (r - (rows - 1) / 2.0) * step_y
    # The checked float, not the argument (a NumPy scalar is not JSON): None stays None.
    params = {
        "rows": rows,
        "cols": cols,
        "step_px": step,
        "snake": snake,
        "step_y_px": None if step_y_px is None else step_y,
    }
    return _scan("raster", params, x, y)


@_quiet
def hexagonal(rows: int, cols: int, step_px: float, *, snake: bool = False) -> Scan:
    """Hexagonal (triangular-lattice) grid: every position has its neighbours at ``step_px``.

    Row ``r`` lies at ``y = r·step·√3/2`` and its ``cols`` positions at ``x = c·step``, shifted
    by ``step/2`` on odd rows; the whole pattern is then shifted so that its bounding box is
    centred on ``(0, 0)``. Order as :func:`raster` (``snake`` reverses odd rows).

    Parameters
    ----------
    rows, cols : int
        Grid size, each ``>= 1``.
    step_px : float
        Nearest-neighbour distance in object pixels, ``> 0``.
    snake : bool, default False
        Reverse the odd rows.

    Returns
    -------
    Scan

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> s = hexagonal(2, 2, 2.0)
    >>> s.nominal.round(4).tolist()
    [[-1.5, -0.866], [0.5, -0.866], [-0.5, 0.866], [1.5, 0.866]]
    """
    rows = _count("rows", rows)
    cols = _count("cols", cols)
    _count("rows * cols", rows * cols)
    step = _args.real("step_px", step_px, positive=True)
    snake = _flag("snake", snake)
    r, c = _grid_order(rows, cols, snake)
    x = c * step + np.where(r % 2 == 1, step / 2.0, 0.0)
    y = r * (step * math.sqrt(3.0) / 2.0)
    x_extent = (cols - 1) * step + (step / 2.0 if rows > 1 else 0.0)
    x = x - x_extent / 2.0
    y = y - (rows - 1) * (step * math.sqrt(3.0) / 2.0) / 2.0
    return _scan("hexagonal", {"rows": rows, "cols": cols, "step_px": step, "snake": snake}, x, y)


@_quiet
def fermat_spiral(n: int, step_px: float) -> Scan:
    """Fermat (sunflower) spiral: ``r_k = step_px·√k``, ``θ_k = k·π(3 − √5)``.

    Position ``k = 0 .. n−1`` is at ``(r_k cos θ_k, r_k sin θ_k)`` (``k = 0`` at the centre).
    Each position occupies on average the area ``π·step_px²`` (the disk of radius ``r_k``
    holds ``k`` positions), so the nearest-neighbour distance is about ``1.7·step_px`` and
    uniform over the pattern, which has radius ``step_px·√(n − 1)``.

    Parameters
    ----------
    n : int
        Number of positions, ``>= 1``.
    step_px : float
        Radial scale in object pixels, ``> 0``.

    Returns
    -------
    Scan

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> import numpy as np
    >>> s = fermat_spiral(5, 2.0)
    >>> np.hypot(*s.nominal.T).round(6).tolist()
    [0.0, 2.0, 2.828427, 3.464102, 4.0]
    """
    n = _count("n", n)
    step = _args.real("step_px", step_px, positive=True)
    k = np.arange(n, dtype=np.float64)
    r = step * np.sqrt(k)
    theta = k * GOLDEN_ANGLE
    return _scan("fermat_spiral", {"n": n, "step_px": step}, r * np.cos(theta), r * np.sin(theta))


@_quiet
def concentric(n_rings: int, step_px: float, *, n_first: int = 6) -> Scan:
    """Concentric circles: the centre, then ring ``j = 1 .. n_rings`` of radius ``j·step_px``
    with ``n_first·j`` equally spaced positions starting on the ``+x`` axis.

    The spacing along every ring is ``2π·step_px / n_first`` (≈ ``step_px`` for the default
    6). ``1 + n_first·n_rings·(n_rings + 1)/2`` positions, ring by ring, counter-clockwise
    (from ``+x`` towards ``+y``).

    Parameters
    ----------
    n_rings : int
        Number of rings, ``>= 0`` (0: the centre only).
    step_px : float
        Ring spacing in object pixels, ``> 0``.
    n_first : int, default 6
        Positions on the first ring, ``>= 1``.

    Returns
    -------
    Scan

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> len(concentric(2, 1.0))
    19
    """
    n_rings = _args.integer("n_rings", n_rings, minimum=0, maximum=100_000)
    step = _args.real("step_px", step_px, positive=True)
    n_first = _args.integer("n_first", n_first, minimum=1)
    _count(
        "positions (1 + n_first·n_rings·(n_rings + 1)/2)",
        1 + n_first * n_rings * (n_rings + 1) // 2,
    )
    xs = [np.zeros(1)]
    ys = [np.zeros(1)]
    for j in range(1, n_rings + 1):
        m = n_first * j
        phi = 2.0 * math.pi * np.arange(m, dtype=np.float64) / m
        xs.append(j * step * np.cos(phi))
        ys.append(j * step * np.sin(phi))
    params = {"n_rings": n_rings, "step_px": step, "n_first": n_first}
    return _scan("concentric", params, np.concatenate(xs), np.concatenate(ys))


@_quiet
def lissajous(
    n: int,
    amplitude_x_px: float,
    amplitude_y_px: float | None = None,
    *,
    freq_x: int = 3,
    freq_y: int = 2,
    phase: float = math.pi / 2,
) -> Scan:
    """Lissajous curve sampled at ``n`` equal time steps (a continuous fly-scan path).

    ``t_k = 2π k/n``, ``x_k = A_x sin(freq_x·t_k + phase)``, ``y_k = A_y sin(freq_y·t_k)``,
    ``k = 0 .. n−1``: one period of the closed curve (integer frequencies), centred on
    ``(0, 0)``, filling ``[−A_x, A_x] × [−A_y, A_y]``.

    Parameters
    ----------
    n : int
        Number of positions, ``>= 1``.
    amplitude_x_px : float
        ``A_x`` in object pixels, ``> 0``.
    amplitude_y_px : float, optional
        ``A_y``; default ``A_x``.
    freq_x, freq_y : int, default 3 and 2
        Angular frequencies, ``>= 1``.
    phase : float, default π/2
        Phase of ``x`` in radians, finite.

    Returns
    -------
    Scan

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> s = lissajous(4, 10.0, freq_x=1, freq_y=1)
    >>> s.nominal.round(6).tolist()
    [[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [-0.0, -10.0]]
    """
    n = _count("n", n)
    ax = _args.real("amplitude_x_px", amplitude_x_px, positive=True)
    ay = (
        ax
        if amplitude_y_px is None
        else _args.real("amplitude_y_px", amplitude_y_px, positive=True)
    )
    fx = _args.integer("freq_x", freq_x, minimum=1)
    fy = _args.integer("freq_y", freq_y, minimum=1)
    ph = _args.real("phase", phase)
    t = 2.0 * math.pi * np.arange(n, dtype=np.float64) / n
    params = {
        "n": n,
        "amplitude_x_px": ax,
        "amplitude_y_px": amplitude_y_px if amplitude_y_px is None else ay,
        "freq_x": fx,
        "freq_y": fy,
        "phase": ph,
    }
    return _scan("lissajous", params, ax * np.sin(fx * t + ph), ay * np.sin(fy * t))


@_quiet
def random_uniform(
    n: int, width_px: float, height_px: float | None = None, *, seed: Any = None
) -> Scan:
    """Independent uniform positions in a ``width × height`` rectangle centred on ``(0, 0)``.

    ``x = rng.uniform(−w/2, w/2, n)`` then ``y = rng.uniform(−h/2, h/2, n)`` with
    ``rng = Generator(PCG64(seed))``.

    Parameters
    ----------
    n : int
        Number of positions, ``>= 1``.
    width_px : float
        ``w`` in object pixels, ``> 0``.
    height_px : float, optional
        ``h``; default ``w``.
    seed : int, numpy.random.Generator or None
        Resolved to an integer and recorded (``None``: fresh entropy).

    Returns
    -------
    Scan

    Raises
    ------
    TypeError, ValueError
        An argument out of range or a bad seed.

    Examples
    --------
    >>> s = random_uniform(100, 20.0, seed=3)
    >>> bool((abs(s.nominal) <= 10.0).all()), s.to_dict()["params"]["seed"]
    (True, 3)
    """
    n = _count("n", n)
    w = _args.real("width_px", width_px, positive=True)
    h = w if height_px is None else _args.real("height_px", height_px, positive=True)
    s = _args.seed_int(seed)
    rng = _args.generator(s)
    x = rng.uniform(-w / 2.0, w / 2.0, n)
    y = rng.uniform(-h / 2.0, h / 2.0, n)
    params = {"n": n, "width_px": w, "height_px": height_px if height_px is None else h, "seed": s}
    return _scan("random_uniform", params, x, y)


@_quiet
def custom(x: Any, y: Any, *, true_x: Any = None, true_y: Any = None) -> Scan:
    """Explicit positions, relative to the scan centre (taken as given, not re-centred).

    Parameters
    ----------
    x, y : array_like, (M,)
        Nominal positions in object pixels, finite.
    true_x, true_y : array_like, (M,), optional
        Actual positions (e.g. encoder readings); both or neither. Default: the nominal ones.

    Returns
    -------
    Scan
        The positions are embedded in the recipe (as lists of floats, exact through JSON).

    Raises
    ------
    TypeError, ValueError
        Arrays not 1-D, not finite, of different lengths, or only one of ``true_x``/``true_y``.

    Examples
    --------
    >>> custom([0.0, 1.5], [0.0, -2.0]).nominal.tolist()
    [[0.0, 0.0], [1.5, -2.0]]
    """
    xs = _vector("x", x)
    ys = _vector("y", y)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    if (true_x is None) != (true_y is None):
        raise ValueError("give both true_x and true_y, or neither")
    nominal = np.stack([xs, ys], axis=1)
    params: dict[str, Any] = {"x": xs.tolist(), "y": ys.tolist(), "true_x": None, "true_y": None}
    if true_x is None:
        return Scan._make(nominal, nominal, {"builder": "custom", "params": params, "errors": []})
    tx = _vector("true_x", true_x)
    ty = _vector("true_y", true_y)
    if tx.shape != xs.shape or ty.shape != xs.shape:
        raise ValueError(
            f"true_x and true_y must have the length of x ({xs.size}), got {tx.size} and {ty.size}"
        )
    params["true_x"], params["true_y"] = tx.tolist(), ty.tolist()
    true = np.stack([tx, ty], axis=1)
    return Scan._make(nominal, true, {"builder": "custom", "params": params, "errors": []})


_BUILDERS: dict[str, Callable[..., Scan]] = {
    "raster": raster,
    "hexagonal": hexagonal,
    "fermat_spiral": fermat_spiral,
    "concentric": concentric,
    "lissajous": lissajous,
    "random_uniform": random_uniform,
    "custom": custom,
}
_PARAMS: dict[str, tuple[str, ...]] = {
    "raster": ("rows", "cols", "step_px", "snake", "step_y_px"),
    "hexagonal": ("rows", "cols", "step_px", "snake"),
    "fermat_spiral": ("n", "step_px"),
    "concentric": ("n_rings", "step_px", "n_first"),
    "lissajous": ("n", "amplitude_x_px", "amplitude_y_px", "freq_x", "freq_y", "phase"),
    "random_uniform": ("n", "width_px", "height_px", "seed"),
    "custom": ("x", "y", "true_x", "true_y"),
}
_OPS: dict[str, tuple[str, ...]] = {
    "jitter": ("sigma_px", "seed"),
    "drift": ("velocity_px", "random_walk_px", "seed"),
    "affine": ("matrix", "offset_px"),
}

"""Synthetic objects by data source (the reference's ``diffsim.sim_object_image``).

Supported sources and what one object of side ``size`` is:

* ``'lines'``: :func:`~ptyfast.datagen.lines.mk_lines_img` with 400 lines on a ``2*size``
  canvas, centre crop ``[size//2 : size//2 + size]`` on both axes, channel 0;
* ``'grf'``: :func:`~ptyfast.datagen.grf.mk_grf` (``size`` even);
* ``'points'``: :func:`~ptyfast.datagen.points.mk_points`.

The other values ``ptyfast.params`` accepts (``'generic'``, ``'experimental'``, ``'xpp'``,
``'testimg'``, ``'diagonals'``, ``'V'``) raise :class:`ValueError`. Objects are amplitudes
with zero phase.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import params
from ..model import _textures
from ._rng import RngLike, legacy_random_state

__all__ = ["SUPPORTED_SOURCES", "sim_object_image", "sim_object_stack"]

#: Data sources that can be simulated.
SUPPORTED_SOURCES: tuple[str, ...] = ("lines", "grf", "points")


def _check_size(size: Any) -> int:
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return int(size)


def _resolve_source(data_source: str | None) -> str:
    if data_source is None:
        data_source = params.get("data_source")
    if data_source not in SUPPORTED_SOURCES:
        raise ValueError(
            f"data_source {data_source!r} cannot be simulated; supported: "
            f"{list(SUPPORTED_SOURCES)} (set it with the data_source argument or "
            f"params.set('data_source', ...))"
        )
    return data_source


def _object_amplitude(size: int, source: str, rs: np.random.RandomState) -> np.ndarray:
    """One (size, size, 1) float64 amplitude, drawing from ``rs``."""
    if source == "lines":
        return _textures.lines_object(size, 400, rs)
    if source == "grf":
        return _textures.grf_image(size, rs)
    return _textures.points_image(size, 1, rs)


def _check_which(which: Any) -> None:
    if which not in ("train", "test"):
        raise ValueError(f"which must be 'train' or 'test', got {which!r}")


def _check_grf_size(source: str, size: int) -> None:
    if source == "grf" and (size % 2 or size < 4):
        raise ValueError(f"size must be even and >= 4 for data_source 'grf', got {size}")


def sim_object_image(
    size: int,
    which: str = "train",
    *,
    data_source: str | None = None,
    seed: RngLike = None,
) -> np.ndarray:
    """One synthetic object as a complex image with zero phase.

    Parameters
    ----------
    size : int
        Object side length in pixels (``'grf'``: even, ``>= 4``).
    which : {'train', 'test'}, default 'train'
        Accepted for compatibility; none of the supported sources depends on it.
    data_source : {'lines', 'grf', 'points'}, optional
        Object family; ``None`` reads ``params.cfg['data_source']`` (whose default,
        ``'generic'``, cannot be simulated).
    seed : int, numpy.random.RandomState, numpy.random.Generator or None
        Randomness. An int (or a ``RandomState`` seeded with it) gives the object the
        reference draws after ``np.random.seed(int)`` (``'lines'`` and ``'points'`` exactly);
        a ``Generator`` seeds a ``RandomState`` with one 32-bit draw; ``None`` uses fresh
        entropy. NumPy's global state is never used.

    Returns
    -------
    numpy.ndarray, (size, size), complex64
        Amplitude (the reference's float64 object, rounded to float32) with zero phase.
        ``'lines'`` is not normalised (about [1.4, 5.7] for size 256); ``'grf'`` lies in
        [0, 1].

    Raises
    ------
    ValueError
        If ``size`` is invalid, ``which`` is not ``'train'``/``'test'``, or the data source is
        not one of :data:`SUPPORTED_SOURCES` (the message lists them).

    See Also
    --------
    sim_object_stack : the float64 (n, size, size, 1) amplitude stack of the grid pipeline.

    Examples
    --------
    >>> from ptyfast.datagen.objects import sim_object_image
    >>> obj = sim_object_image(256, data_source='lines', seed=0)
    >>> obj.shape, obj.dtype
    ((256, 256), dtype('complex64'))
    """
    size = _check_size(size)
    _check_which(which)
    source = _resolve_source(data_source)
    _check_grf_size(source, size)
    rs = legacy_random_state(seed, "seed")
    amplitude = _object_amplitude(size, source, rs)
    return amplitude[:, :, 0].astype(np.complex64)


def sim_object_stack(
    n: int,
    size: int,
    *,
    data_source: str | None = None,
    seed: RngLike = None,
    which: str = "train",
) -> np.ndarray:
    """``n`` synthetic amplitude objects, as the grid pipeline (``mk_simdata``) stacks them.

    The objects are ``n`` successive draws from one ``RandomState``, as the reference's loop
    over the global RNG makes them: with an int ``seed`` the stack equals the reference's
    after ``np.random.seed(seed)`` (``'lines'``, ``'points'``).

    Parameters
    ----------
    n : int
        Number of objects, ``>= 1``.
    size : int
        Object side length in pixels (``'grf'``: even, ``>= 4``).
    data_source : {'lines', 'grf', 'points'}, optional
        ``None`` reads ``params.cfg['data_source']``.
    seed : int, numpy.random.RandomState, numpy.random.Generator or None
        As for :func:`sim_object_image`.
    which : {'train', 'test'}, default 'train'
        Accepted for compatibility.

    Returns
    -------
    numpy.ndarray, (n, size, size, 1), float64
        Amplitudes (zero phase implied).

    Raises
    ------
    ValueError
        As :func:`sim_object_image`, or if ``n`` is not a positive integer.

    Examples
    --------
    >>> from ptyfast.datagen.objects import sim_object_stack
    >>> sim_object_stack(2, 64, data_source='points', seed=1).shape
    (2, 64, 64, 1)
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    size = _check_size(size)
    _check_which(which)
    source = _resolve_source(data_source)
    _check_grf_size(source, size)
    rs = legacy_random_state(seed, "seed")
    return np.array([_object_amplitude(size, source, rs) for _ in range(int(n))])

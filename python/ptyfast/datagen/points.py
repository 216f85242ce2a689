"""The reference's "points" object: random point counts blurred twice.

``randones`` draws ``int(N*N*0.1)`` flat indices with replacement
(``RandomState.choice(N*N, num)``) and accumulates them with ``np.add.at``, so repeated
indices give counts >= 2. :func:`mk_points` blurs the counts with ``sigma`` and adds five
times a ``10*sigma`` blur of the *blurred* image: ``img = G_s(c); img = img + 5*G_10s(img)``.
The recipe is implemented once, in ``ptyfast.model._textures`` (shared with
``ptyfast.objects.points``); this module keeps the reference's names and argument checks.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..model import _textures
from ._rng import RngLike, legacy_random_state

__all__ = ["randones", "mk_points"]


def _check_n(N: Any) -> int:
    if not isinstance(N, numbers.Integral) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    return int(N)


def randones(N: int, pct: float = 0.1, *, rng: RngLike = None) -> np.ndarray:
    """Counts of ``int(N*N*0.1)`` random pixel hits (with replacement).

    Parameters
    ----------
    N : int
        Image side length.
    pct : float
        Ignored: the reference always uses 0.1.
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        See :func:`ptyfast.datagen.lines.mk_lines_img`.

    Returns
    -------
    numpy.ndarray, (N, N), float64
        Non-negative integer counts summing to ``int(N*N*0.1)``.
    """
    N = _check_n(N)
    return _textures.random_point_counts(N, legacy_random_state(rng))


def mk_points(N: int, sigma: float = 1, pct: float = 0.15, *, rng: RngLike = None) -> np.ndarray:
    """Image of random blurred points (the reference's ``datagen.points.mk_points``).

    Parameters
    ----------
    N : int
        Image side length in pixels.
    sigma : float, default 1
        Blur of the counts, in pixels; the second blur is ``10*sigma``.
    pct : float, default 0.15
        Ignored, as in the reference (the hit fraction is always 0.1).
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        An int (or a ``RandomState`` seeded with it) reproduces the reference after
        ``np.random.seed(int)``; NumPy's global state is never used.

    Returns
    -------
    numpy.ndarray, (N, N, 1), float64
        For N=64 and ``rng=0`` the range is about [0.296, 1.192].

    Raises
    ------
    ValueError
        If ``N`` is not a positive integer or ``sigma`` is negative or not finite.

    Examples
    --------
    >>> from ptyfast.datagen.points import mk_points
    >>> img = mk_points(64, rng=0)
    >>> img.shape, round(float(img.min()), 3), round(float(img.max()), 3)
    ((64, 64, 1), 0.296, 1.192)
    """
    N = _check_n(N)
    if (
        not isinstance(sigma, numbers.Real)
        or isinstance(sigma, bool)
        or not np.isfinite(sigma)
        or sigma < 0
    ):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    return _textures.points_image(N, sigma, legacy_random_state(rng))

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

from .. import _kernels
from ..model import _textures
from ._rng import RngLike, legacy_random_state

__all__ = ["randones", "mk_points"]


def _check_n(N: Any) -> int:
    if not isinstance(N, numbers.Integral) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    # The (N, N) counts, the int64 indices of N*N/10 hits, the two blurs and a temporary.
    _kernels.require_memory(f"N={int(N)}: (N, N) float64 point images", 40 * int(N) ** 2)
    return int(N)


def _check_pct(pct: Any) -> None:
    """``pct`` is ignored (as in the reference, which always uses 0.1), but a value that is
    not a fraction is a mistake worth reporting rather than silently ignoring."""
    if _kernels._real_number("pct", pct, "a fraction in [0, 1]") < 0 or pct > 1:
        raise ValueError(f"pct must be a fraction in [0, 1], got {pct!r}")


def randones(N: int, pct: float = 0.1, *, rng: RngLike = None) -> np.ndarray:
    """Counts of ``int(N*N*0.1)`` random pixel hits (with replacement).

    Parameters
    ----------
    N : int
        Image side length.
    pct : float
        Ignored: the reference always uses 0.1. Must still be a fraction in [0, 1].
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        See :func:`ptyfast.datagen.lines.mk_lines_img`.

    Returns
    -------
    numpy.ndarray, (N, N), float64
        Non-negative integer counts summing to ``int(N*N*0.1)``.

    Raises
    ------
    ValueError
        If ``N`` is not a positive integer (or too large for the memory), or ``pct`` is not
        in [0, 1] (NaN included).
    TypeError
        If ``pct`` is not a real number.
    """
    N = _check_n(N)
    _check_pct(pct)
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
        Ignored, as in the reference (the hit fraction is always 0.1); must still be a
        fraction in [0, 1].
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
        If ``N`` is not a positive integer, ``sigma`` is negative or not finite, ``pct`` is
        not in [0, 1], or the images or the blur kernel (``80 * sigma + 1`` samples for the
        ``10*sigma`` blur) need more memory than is available (``sigma=1e300``).
    TypeError
        If ``pct`` is not a real number.

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
    _check_pct(pct)
    # scipy's gaussian_filter builds a kernel of 2 * int(4 * 10 * sigma + 0.5) + 1 float64
    # samples (and temporaries of that size) for the second blur.
    taps = 2 * int(40 * float(sigma) + 0.5) + 1
    _kernels.require_memory(
        f"mk_points: sigma={sigma!r}, a Gaussian kernel of 80 * sigma + 1 samples", 32 * taps
    )
    return _textures.points_image(N, sigma, legacy_random_state(rng))

"""The reference's "lines" object: random Bresenham segments blurred at three scales.

For each of ``nlines`` segments four integers are drawn in the order ``r0, c0, r1, c1``,
each as ``int(N * rng.uniform())``; the pixels of ``skimage.draw.line(r0, c0, r1, c1)``
(reproduced here by :func:`line`) are set to 1 in a zero (N, N) image. The image is copied
into three identical channels and the result is ``G1 + 2*G5 + 5*G10`` with
``Gs = scipy.ndimage.gaussian_filter(stack, sigma=s)`` over the whole (N, N, 3) stack,
exactly as the reference does. Nothing is normalised. The recipe is implemented once, in
``ptyfast.model._textures`` (shared with ``ptyfast.objects.lines``); this module keeps the
reference's names and argument checks.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import _kernels
from ..model import _textures
from ._rng import RngLike, legacy_random_state

__all__ = ["line", "mk_rand", "mk_lines_img"]


def line(r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of the Bresenham segment from ``(r0, c0)`` to ``(r1, c1)``, ends included.

    Same pixels and order as ``skimage.draw.line`` (implemented once, in
    ``ptyfast.model._textures.bresenham_line``).

    Parameters
    ----------
    r0, c0, r1, c1 : int
        Row and column of the start and end points.

    Returns
    -------
    rr, cc : numpy.ndarray of numpy.intp
        Row and column indices, ``max(|r1 - r0|, |c1 - c0|) + 1`` of each.

    Raises
    ------
    TypeError
        If a coordinate is not an integer (``2.5``, ``"3"``, ``True``), as
        ``skimage.draw.line`` refuses it.
    ValueError
        If the segment is longer than the memory can hold (``line(0, 0, 10**12, 10**12)``).

    Examples
    --------
    >>> from ptyfast.datagen.lines import line
    >>> rr, cc = line(0, 0, 1, 3)
    >>> rr.tolist(), cc.tolist()
    ([0, 0, 1, 1], [0, 1, 2, 3])
    """
    ends = (r0, c0, r1, c1)
    for name, v in zip(("r0", "c0", "r1", "c1"), ends, strict=True):
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"{name} must be an integer pixel coordinate, got {type(v).__name__} {v!r}"
            )
    r0, c0, r1, c1 = (int(v) for v in ends)
    # Two index arrays of the segment's length and four int64 temporaries of its length.
    length = max(abs(r1 - r0), abs(c1 - c0)) + 1
    _kernels.require_memory(
        f"line({r0}, {c0}, {r1}, {c1}): a segment of {length} pixels", 48 * length
    )
    return _textures.bresenham_line(r0, c0, r1, c1)


def mk_rand(N: int, rng: Any = None) -> int:
    """``int(N * rng.uniform())`` from a legacy ``RandomState`` (see :func:`mk_lines_img`):
    a pixel index in ``[0, N)``.

    Raises
    ------
    TypeError
        If ``N`` is not an integer, or ``rng`` has an unsupported type.
    ValueError
        If ``N < 1`` (no pixel to pick).
    """
    N = _kernels._positive_int("N", N)
    return int(N * legacy_random_state(rng).uniform())


#: Most segments :func:`mk_lines_img` draws: each is drawn in a Python loop (about 10 µs),
#: so 10**7 take minutes; more would run for hours (``nlines=10**12``: for ever). The model's
#: ``ptyfast.objects.lines`` has the same bound on ``n_lines``.
MAX_NLINES = 10_000_000

#: Bytes per pixel of :func:`mk_lines_img`: the canvas, the (N, N, 3) stack, its three
#: blurs, the blend and its temporaries (float64).
_LINES_BYTES_PER_PIXEL = 8 * (1 + 3 * 6)


def mk_lines_img(
    N: int | None = None,
    nlines: int = 10,
    *,
    rng: RngLike = None,
    size: int | None = None,
) -> np.ndarray:
    """Image of random blurred line segments (the reference's ``mk_lines_img``).

    Parameters
    ----------
    N : int, default 64
        Image side length in pixels.
    nlines : int, default 10
        Number of segments (``sim_object_image`` uses 400 on a ``2*size`` canvas).
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Randomness. An int (or a ``RandomState`` seeded with it) gives exactly the
        reference's image after ``np.random.seed(int)``; a ``Generator`` seeds a
        ``RandomState`` with one 32-bit draw; ``None`` uses fresh entropy. NumPy's global
        state is never used.
    size : int, optional
        Alias of ``N`` (the seed guide writes ``mk_lines_img(size=392, nlines=400)``).

    Returns
    -------
    numpy.ndarray, (N, N, 3), float64
        ``G1 + 2*G5 + 5*G10`` of the binary line image (three identical channels up to
        about 1 ulp). Values are not normalised; the σ=10 term makes the background non-zero.

    Raises
    ------
    ValueError
        If ``N`` (or ``size``) is not a positive integer, both are given and differ,
        ``nlines`` is negative or above :data:`MAX_NLINES` (10**7, which takes minutes), or
        the image and its blurs need more memory than is available (``N=30000``: 137 GB).
    TypeError
        If ``rng`` has an unsupported type.

    Examples
    --------
    >>> from ptyfast.datagen.lines import mk_lines_img
    >>> img = mk_lines_img(64, nlines=10, rng=0)
    >>> img.shape, img.dtype
    ((64, 64, 3), dtype('float64'))
    """
    if size is not None:
        if N is not None and N != size:
            raise ValueError(f"give N or size, not both (N={N!r}, size={size!r})")
        N = size
    if N is None:
        N = 64
    if not isinstance(N, numbers.Integral) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    if not isinstance(nlines, numbers.Integral) or isinstance(nlines, bool) or nlines < 0:
        raise ValueError(f"nlines must be a non-negative integer, got {nlines!r}")
    if nlines > MAX_NLINES:
        raise ValueError(
            f"nlines must be <= {MAX_NLINES} (each segment is drawn in a Python loop; more "
            f"would take hours), got {nlines}"
        )
    _kernels.require_memory(
        f"mk_lines_img: N={int(N)}, an (N, N, 3) float64 image and its blurs",
        _LINES_BYTES_PER_PIXEL * int(N) ** 2,
    )
    return _textures.lines_image(int(N), int(nlines), legacy_random_state(rng))

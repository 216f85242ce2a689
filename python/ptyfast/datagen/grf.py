"""The reference's "grf" object: a smoothed power-law Gaussian random field.

Recipe (the reference's ``datagen.grf.mk_grf``, which uses powerbox 0.9):

1. ``boxsize = N // 2`` (N must be even). A real Gaussian random field with power spectrum
   ``P(k) = k**-0.4`` (``P(0) = 0``) on a ``boxsize**2`` grid of physical side 100:
   standard-normal magnitudes and uniform phases are drawn on an odd grid (``boxsize + 1``
   for even ``boxsize``), made Hermitian (``m' = (m + m_reversed)/sqrt(2)``,
   ``phi' = (phi - phi_reversed)/2 + pi``), cropped, multiplied by ``sqrt(P(|k|))`` on the
   centred k-grid and inverse transformed with powerbox's conventions (``ifftn``, then
   ``ifftshift``, then the phase ramp of a box whose left edge is at ``-L/2``); the real part
   is kept.
2. Min-max normalisation to [0, 1].
3. Linear resampling to ``N x N`` at ``linspace(0, boxsize - 1, N)`` on both axes
   (corner-aligned, :class:`scipy.interpolate.RegularGridInterpolator`).
4. ``scipy.ndimage.gaussian_filter(sigma=1)``. (The reference defines a 0.4 "mainland"
   threshold but never applies it.)

No powerbox dependency: step 1 is written here with NumPy, drawing the normals and then the
uniforms from a private ``RandomState`` in the same order as powerbox 0.9 draws them from
the global one, with the same floating-point operations. With an int seed the result was
found bit-identical to the reference after ``np.random.seed(seed)`` (powerbox 0.9.0 on its
NumPy FFT backend, i.e. without pyFFTW); the contract, though, is statistical equivalence
(range, smoothness, spectrum), since a different FFT library may change the last bits.

The recipe is implemented once, in ``ptyfast.model._textures`` (shared with
``ptyfast.objects.grf``); this module keeps the reference's names and argument checks.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _kernels
from ..model import _textures
from ._rng import RngLike, legacy_random_state

__all__ = ["gaussian_random_field", "mk_grf"]

_BOXLENGTH = 100.0
_INDEXLAW = -0.4


def gaussian_random_field(
    n: int,
    *,
    index: float = _INDEXLAW,
    boxlength: float = _BOXLENGTH,
    rng: RngLike = None,
) -> np.ndarray:
    """Real Gaussian random field with power spectrum ``k**index`` on an ``n x n`` grid.

    Parameters
    ----------
    n : int
        Grid side, ``>= 2``.
    index : float, default -0.4
        Spectral index; the power at angular wavenumber ``k`` (in 1/length) is
        ``k**index / boxlength**2`` and the ``k = 0`` mode is zero (zero-mean field).
    boxlength : float, default 100.0
        Physical side of the grid (only sets the units of ``k``).
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Randomness: ``(n+1)**2`` (even ``n``) or ``n**2`` (odd ``n``) standard normals, then
        as many uniforms.

    Returns
    -------
    numpy.ndarray, (n, n), float64
        The field (not normalised).

    Raises
    ------
    ValueError
        If ``n < 2``, or the field needs more memory than is available.
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    _kernels.require_memory(
        f"gaussian_random_field: n={int(n)}, (n + 1)**2 float64 and complex arrays",
        8 * 12 * (int(n) + 1) ** 2,
    )
    return _textures.gaussian_random_field(
        int(n), legacy_random_state(rng), index=index, boxlength=boxlength
    )


def mk_grf(N: int, *, rng: RngLike = None) -> np.ndarray:
    """Smoothed Gaussian-random-field object (the reference's ``datagen.grf.mk_grf``).

    Parameters
    ----------
    N : int
        Output side length in pixels; even and ``>= 4`` (the field lives on an ``N//2`` grid).
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Randomness (see :func:`ptyfast.datagen.lines.mk_lines_img`); the same seed gives the
        same image. NumPy's global state is never used.

    Returns
    -------
    numpy.ndarray, (N, N, 1), float64
        Within [0, 1] (min-max normalised before resampling and blurring), smooth on the scale
        of a few pixels.

    Raises
    ------
    ValueError
        If ``N`` is odd or smaller than 4, or the field and its resampling need more memory
        than is available (``N=10**6``).

    Examples
    --------
    >>> from ptyfast.datagen.grf import mk_grf
    >>> img = mk_grf(64, rng=0)
    >>> img.shape, bool(img.min() >= 0 and img.max() <= 1)
    ((64, 64, 1), True)
    """
    if not isinstance(N, numbers.Integral) or isinstance(N, bool) or N < 4 or N % 2:
        raise ValueError(f"N must be an even integer >= 4, got {N!r}")
    # The field on the (N/2 + 1)**2 grid (normals, uniforms, complex modes, k, FFT: about 12
    # float64 arrays) and the resampling to N x N (query grids, points, result, blur: ~8).
    n = int(N)
    _kernels.require_memory(
        f"mk_grf: N={n}, a Gaussian random field resampled to (N, N) float64",
        8 * (12 * (n // 2 + 1) ** 2 + 8 * n * n),
    )
    return _textures.grf_image(n, legacy_random_state(rng))

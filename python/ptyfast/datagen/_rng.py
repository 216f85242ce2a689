"""Random-state coercion for the object generators.

The reference generators draw from NumPy's legacy global ``RandomState`` (MT19937). To
reproduce their output without touching global state, every generator here draws from a
private :class:`numpy.random.RandomState` obtained by :func:`legacy_random_state`.
"""

from __future__ import annotations

import numpy as np

from .._kernels import legacy_random_state as _legacy_random_state

__all__ = ["RngLike", "legacy_random_state"]

RngLike = int | np.integer | np.random.RandomState | np.random.Generator | None


def legacy_random_state(rng: RngLike, name: str = "rng") -> np.random.RandomState:
    """A legacy ``RandomState`` to draw from.

    Parameters
    ----------
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        * int in ``[0, 2**32)``: ``RandomState(rng)``, so the draws equal the reference's
          after ``np.random.seed(rng)``;
        * ``RandomState``: used as is (and advanced), like the reference's ``rng=`` argument;
        * ``Generator``: one 32-bit integer is drawn from it (advancing it) and seeds a new
          ``RandomState``;
        * ``None``: a ``RandomState`` seeded from fresh OS entropy (the global state is
          neither read nor advanced).
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.random.RandomState

    Raises
    ------
    TypeError
        For any other type (including ``bool``).
    ValueError
        For an integer outside ``[0, 2**32)``.
    """
    return _legacy_random_state(rng, name)

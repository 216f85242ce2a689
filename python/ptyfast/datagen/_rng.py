"""Random-state coercion for the object generators.

The reference generators draw from NumPy's legacy global ``RandomState`` (MT19937). To
reproduce their output without touching global state, every generator here draws from a
private :class:`numpy.random.RandomState` obtained by :func:`legacy_random_state`.
"""

from __future__ import annotations

import numbers

import numpy as np

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
    if rng is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(rng, np.random.RandomState):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.RandomState(int(rng.integers(0, 2**32, dtype=np.uint64)))
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, numpy.random.RandomState, numpy.random.Generator or "
            f"None, got {type(rng).__name__}"
        )
    if not 0 <= int(rng) < 2**32:
        raise ValueError(f"{name} must be in [0, 2**32), got {rng}")
    return np.random.RandomState(int(rng))

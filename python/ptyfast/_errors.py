"""``ptyfast.PtyfastError``, defined in Python so that it pickles.

The compiled kernels raise this class (the binding imports it from here), so an error raised in
a worker process crosses back to its parent (``multiprocessing``, ``concurrent.futures``, Dask)
as itself. Its public name is ``ptyfast.PtyfastError``; ``__module__`` says so, which is where
pickle looks it up.
"""

from __future__ import annotations

__all__ = ["PtyfastError"]


class PtyfastError(ValueError):
    """Raised when a ptyfast kernel rejects its input (a ``ValueError``).

    The message names the argument, what was expected and what was received, e.g.
    ``positions must be a non-empty (M, 2) array, got (0, 2)``.

    Examples
    --------
    >>> import pickle, ptyfast
    >>> err = pickle.loads(pickle.dumps(ptyfast.PtyfastError("scale must be > 0, got -1")))
    >>> type(err) is ptyfast.PtyfastError, str(err)
    (True, 'scale must be > 0, got -1')
    """


PtyfastError.__module__ = "ptyfast"

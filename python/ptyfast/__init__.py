"""ptyfast: fast, faithful, reproducible ptychography dataset simulation.

A drop-in for the data-generation entry points of PtychoPINN (``ptycho.`` → ``ptyfast.``)
with a parallel Rust core. See the README for the conventions every function follows.

Note: the kernels run on a rayon thread pool, which does not survive ``fork``. Use the
``spawn`` or ``forkserver`` start method for multiprocessing after ptyfast has run a kernel.
"""

from ._core import PtyfastError, __version__

__all__ = ["PtyfastError", "__version__"]

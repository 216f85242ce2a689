"""Synthetic object generators (``ptycho.datagen`` and ``ptycho.diffsim`` compatible).

Every generator takes a ``rng``/``seed`` argument (int, ``RandomState``, ``Generator`` or
None) and draws from a private legacy ``RandomState``: an int seed reproduces the reference,
which draws from NumPy's global RNG after ``np.random.seed``, without touching global state.
"""

from .grf import gaussian_random_field, mk_grf
from .lines import line, mk_lines_img
from .objects import SUPPORTED_SOURCES, sim_object_image, sim_object_stack
from .points import mk_points, randones

__all__ = [
    "SUPPORTED_SOURCES",
    "gaussian_random_field",
    "line",
    "mk_grf",
    "mk_lines_img",
    "mk_points",
    "randones",
    "sim_object_image",
    "sim_object_stack",
]

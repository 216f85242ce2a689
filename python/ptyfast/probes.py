"""``ptyfast.probes``: an alias of :mod:`ptyfast.model.probes`.

This file only makes ``import ptyfast.probes`` work: it replaces itself in ``sys.modules`` by
the model's module, so ``ptyfast.probes``, ``import ptyfast.probes`` and
``from ptyfast.probes import ...`` all give the one module object ``ptyfast.model.probes``,
whatever the import order. The star import is for static analysers.
"""

import sys

from .model import probes as _model
from .model.probes import *  # noqa: F403

sys.modules[__name__] = _model

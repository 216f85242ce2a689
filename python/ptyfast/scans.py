"""``ptyfast.scans``: an alias of :mod:`ptyfast.model.scans`.

This file only makes ``import ptyfast.scans`` work: it replaces itself in ``sys.modules`` by
the model's module, so ``ptyfast.scans``, ``import ptyfast.scans`` and
``from ptyfast.scans import ...`` all give the one module object ``ptyfast.model.scans``,
whatever the import order. The star import is for static analysers.
"""

import sys

from .model import scans as _model
from .model.scans import *  # noqa: F403

sys.modules[__name__] = _model

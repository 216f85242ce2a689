"""``ptyfast.objects``: an alias of :mod:`ptyfast.model.objects`.

This file only makes ``import ptyfast.objects`` work: it replaces itself in ``sys.modules`` by
the model's module, so ``ptyfast.objects``, ``import ptyfast.objects`` and
``from ptyfast.objects import ...`` all give the one module object ``ptyfast.model.objects``,
whatever the import order. The star import is for static analysers.
"""

import sys

from .model import objects as _model
from .model.objects import *  # noqa: F403

sys.modules[__name__] = _model

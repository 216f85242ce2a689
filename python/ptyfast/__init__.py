"""ptyfast: fast, faithful, reproducible ptychography dataset simulation.

Two layers share this package:

* the drop-in for the data-generation entry points of PtychoPINN (``ptycho.`` → ``ptyfast.``:
  ``diffsim``, ``nongrid_simulation``, ``raw_data``, ``loader``, ``probe``, ...), and
* ptyfast's own physical model (:mod:`ptyfast.model`: ``Geometry``, ``probes``, ``scans``,
  ``Detector``, ``Experiment`` → :func:`simulate` → ``Dataset``), with its formats
  (:mod:`ptyfast.io`).

See the README for the conventions every function follows. The model's names are imported on
first use, so ``import ptyfast`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core import __version__
from ._errors import PtyfastError

# public name -> (module relative to this package, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Geometry": (".model.geometry", "Geometry"),
    "Dataset": (".model.dataset", "Dataset"),
    "probes": (".model.probes", None),
    "scans": (".model.scans", None),
    "objects": (".model.objects", None),
    "Detector": (".model.detector", "Detector"),
    "open": (".io", "open"),
    "io": (".io", None),
    "Experiment": (".model.experiment", "Experiment"),
    "simulate": (".model.experiment", "simulate"),
    "simulate_to": (".model.experiment", "simulate_to"),
    "replay": (".model.provenance", "replay"),
    "Campaign": (".model.campaign", "Campaign"),
    "distributed": (".distributed", None),
}

__all__ = ["PtyfastError", "__version__", *_LAZY]

if TYPE_CHECKING:  # the lazy names, for type checkers (at run time __getattr__ imports them)
    from . import distributed as distributed
    from . import io as io
    from .io import open as open  # noqa: A004 - ptyfast.open, the one reader
    from .model import objects as objects
    from .model import probes as probes
    from .model import scans as scans
    from .model.campaign import Campaign as Campaign
    from .model.dataset import Dataset as Dataset
    from .model.detector import Detector as Detector
    from .model.experiment import Experiment as Experiment
    from .model.experiment import simulate as simulate
    from .model.experiment import simulate_to as simulate_to
    from .model.geometry import Geometry as Geometry
    from .model.provenance import replay as replay


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ptyfast' has no attribute {name!r}") from None
    mod = importlib.import_module(module, __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

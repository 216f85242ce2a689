"""Progress over every phase of a run: one tqdm line per phase, on stderr.

A run (``ptyfast simulate``, :class:`ptyfast.Experiment` with ``progress=True``,
:func:`ptyfast.simulate`) goes through phases of very different costs: building the object,
the intensity pass (an FFT-free pass over every position), the simulation (streamed to the
writer chunk by chunk: ``simulate+write``), the patches pass, and finishing the file (the
archive's directory, ``fsync``, the atomic rename). Each phase gets its own bar, left on the
screen when done, so a user sees where the time goes::

    object        : 100%|██████████| 1/1 [00:00<00:00, 12.3step/s]
    intensity     : 100%|██████████| 10000/10000 [00:00<00:00, 1.2Mpattern/s]
    simulate+write: 100%|██████████| 10000/10000 [00:00<00:00, 41.5kpattern/s]
    finish        : 100%|██████████| 1/1 [00:00<00:00, 80.1step/s]

Disabled, a phase costs nothing and tqdm is not imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["Phases", "PHASE_WIDTH"]

#: Width of a phase's label (the longest built-in one is ``simulate+write``).
PHASE_WIDTH = 14


class _Silent:
    """A bar that shows nothing (progress disabled)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass


_SILENT = _Silent()


class Phases:
    """Progress bars for the phases of one run (one bar per phase, when ``enabled``).

    Parameters
    ----------
    enabled : bool
        Show the bars (on ``sys.stderr``); ``False``: every phase is silent.

    Examples
    --------
    >>> phases = Phases(False)
    >>> with phases("intensity", total=10, unit="pattern") as bar:
    ...     bar.update(10)
    """

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        # A user's ``progress`` argument arrives here: only booleans (and 0/1), not "no".
        flag = isinstance(enabled, bool | np.bool_) or (type(enabled) is int and enabled in (0, 1))
        if not flag:
            raise TypeError(
                f"progress must be True or False, got {type(enabled).__name__} {enabled!r}"
            )
        self.enabled = bool(enabled)

    @contextmanager
    def __call__(self, name: str, total: int | None = 1, unit: str = "step") -> Iterator[Any]:
        """A bar for the phase ``name`` of ``total`` ``unit``\\ s (``update(n)`` advances it)."""
        if not self.enabled:
            yield _SILENT
            return
        from tqdm import tqdm

        with tqdm(
            total=total, desc=f"{name:<{PHASE_WIDTH}}", unit=unit, smoothing=0.1, leave=True
        ) as bar:
            yield bar

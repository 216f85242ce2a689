"""What tests/test_distributed.py and tests/test_distributed_audit.py share: the experiment,
the module's cluster (the ``client`` fixture), the bit-for-bit comparison, the shard markers
and the worker plugin that holds shards.

Imported only by those modules, after their ``pytest.importorskip("distributed")``: this
module imports ``distributed`` itself (its plugin subclasses ``distributed.WorkerPlugin``),
and pytest never collects it (no ``test_`` prefix), so tests/ still collects without Dask.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import cloudpickle  # a dependency of distributed
import distributed
import numpy as np
import pytest

import ptyfast
import ptyfast.distributed as D
from ptyfast import objects, probes, scans

# The plugin below (and the functions it calls) travel to the workers by value: the workers
# cannot import this file.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def experiment(
    n: int = 37,
    detector=None,
    modes: int = 1,
    *,
    object_px: int = 48,
    photons: float = 1e4,
) -> ptyfast.Experiment:
    """``n`` jittered Fermat-spiral positions over a dead-leaves object of ``object_px``², a
    16-pixel Gaussian probe of ``modes`` modes (decay 0.5), ``detector`` (default: read noise
    0.5, QE 0.9)."""
    probe = probes.gaussian(16, 3.0)
    if modes > 1:
        probe = probes.modes(probe, modes, decay=0.5)
    return ptyfast.Experiment(
        objects.dead_leaves(object_px, seed=1),
        probe,
        scans.fermat_spiral(n, 1.5).jitter(0.3, seed=2),
        detector if detector is not None else ptyfast.Detector(read_noise=0.5, qe=0.9),
        photons,
    )


@pytest.fixture(scope="module", name="client")
def client_fixture():
    """``client``: a local cluster of 2 worker processes (1 thread each), one per test module
    that imports this fixture."""
    with D.local_client(2, threads=1) as c:
        yield c


def assert_same(ds, ref) -> None:
    """The whole dataset, bit for bit (dtype included), and its provenance."""
    assert ds.diffraction.dtype == ref.diffraction.dtype
    assert ds.diffraction.shape == ref.diffraction.shape
    assert ds.diffraction.tobytes() == ref.diffraction.tobytes()
    np.testing.assert_array_equal(ds.diffraction, ref.diffraction, strict=True)
    for name in ("positions_true", "positions_nominal", "probe", "object", "mask"):
        np.testing.assert_array_equal(getattr(ds, name), getattr(ref, name), strict=True)
    assert ds.provenance == ref.provenance
    assert ds.intensity_scale == ref.intensity_scale and ds.photons == ref.photons
    if ref.patches is None:
        assert ds.patches is None
    else:
        assert ds.patches.tobytes() == ref.patches.tobytes()
        np.testing.assert_array_equal(ds.patches, ref.patches, strict=True)


def markers(store: Path) -> list[str]:
    """The shard markers in every partial store of ``store`` (one per recipe)."""
    out: list[str] = []
    for q in D.partials(store):
        with contextlib.suppress(OSError):
            out += [p.name for p in (q / D.PROGRESS_DIR / "done").iterdir()]
    return sorted(out)


class Hold(distributed.WorkerPlugin):
    """Holds a worker before it executes a shard while ``hold`` exists and at least
    ``after`` shards of ``store`` are done; with ``log``, then appends the shard's key to
    that file (every shard that starts executing)."""

    def __init__(self, store: str, hold: str, after: int, log: str | None = None) -> None:
        self.store, self.hold, self.after, self.log = store, hold, after, log

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "shard" not in str(key):
            return
        while os.path.exists(self.hold) and len(markers(Path(self.store))) >= self.after:
            time.sleep(0.01)
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(str(key) + "\n")

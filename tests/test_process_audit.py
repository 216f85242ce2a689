"""Gaps found by an audit of interruption safety.

* A signal arriving while a multi-file output (the ptychodus product + diffraction pair) is
  being moved into place: a real ``SIGINT`` is raised right after the first file of the pair
  is committed; afterwards the pair on disk must come from one write (both old, or both new,
  or neither for a new pair), never a new diffraction file beside the old product or with no
  product at all.
* Ctrl-C while zarr's I/O thread writes a block: no hidden store may be left behind.
"""

from __future__ import annotations

import hashlib
import os
import signal

import pytest

import ptyfast
from ptyfast import _atomic, objects, probes, scans
from ptyfast.io import diffraction_path

pytest.importorskip("h5py")

posix_only = pytest.mark.skipif(
    os.name != "posix" or not hasattr(signal, "pthread_sigmask"), reason="POSIX signals"
)


def _experiment(seed: int) -> ptyfast.Experiment:
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=16)
    return ptyfast.Experiment(
        objects.dead_leaves(48, seed=seed),
        probes.gaussian(16, 3.0),
        scans.raster(4, 4, 2.0),
        ptyfast.Detector.eiger(),
        photons=1e6,
        geometry=g,
    )


def _digest(path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@posix_only
@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("unnamed", [False, True], ids=["named", "unnamed"])
def test_sigint_between_the_two_files_of_a_ptychodus_pair_keeps_the_pair_whole(
    tmp_path, monkeypatch, overwrite, unnamed
):
    product = tmp_path / "run.ptychodus.h5"
    diffraction = diffraction_path(product)
    old = (None, None)
    if overwrite:
        ptyfast.simulate_to(_experiment(2), product, seed=1)
        old = (_digest(product), _digest(diffraction))
    # the reference result of the interrupted write, written elsewhere
    ref = tmp_path / "ref" / "run.ptychodus.h5"
    ptyfast.simulate_to(_experiment(3), ref, seed=7)
    new = (_digest(ref), _digest(diffraction_path(ref)))

    commit = "replace" if overwrite else "link"
    original = getattr(_atomic._Directory, commit)
    calls = []

    def commit_then_sigint(self, src, name):
        original(self, src, name)
        if name == diffraction.name and not calls:  # the first file of the pair is in place
            calls.append(name)
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, as a user would send it

    monkeypatch.setattr(_atomic._Directory, commit, commit_then_sigint)
    if not unnamed:  # the named temporary files used where O_TMPFILE is missing
        monkeypatch.setattr(_atomic._Directory, "open_unnamed", lambda self: None)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ptyfast.simulate_to(_experiment(3), product, seed=7, overwrite=overwrite)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == [diffraction.name]
    got = (_digest(product), _digest(diffraction))
    assert got in {old, new}, f"a mixed pair: product new {got[0] == new[0]}, patterns new"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "ref") == sorted(
        [product.name, diffraction.name] if got != (None, None) else []
    )


@posix_only
def test_sigint_during_a_zarr_block_write_leaves_no_hidden_store_behind(tmp_path, monkeypatch):
    """zarr writes a block's chunks on its own I/O thread while the caller waits; Ctrl-C ends
    the wait, not the writes. A chunk written after the writer's cleanup removed its hidden
    store (``.<name>...ptyfast-tmp``) used to recreate it and leave it behind."""
    zarr = pytest.importorskip("zarr")
    import threading

    from zarr.storage import LocalStore

    original = LocalStore.set
    written = threading.Event()

    async def slow_chunk_set(self, key, value):
        if key.startswith("diffraction/c") and not written.is_set():
            # Ctrl-C while this chunk is being written, delivered (as a terminal's often is)
            # to the main thread, which waits on zarr's I/O thread
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            await __import__("asyncio").sleep(0.2)  # the write takes a while
            await original(self, key, value)
            written.set()
            return
        await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", slow_chunk_set)
    assert zarr.__version__
    out = tmp_path / "out"
    out.mkdir()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ptyfast.simulate_to(_experiment(3), out / "run.zarr", seed=7)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert written.wait(5.0), "the chunk write never finished"
    assert sorted(p.name for p in out.iterdir()) == []

"""Zarr v3 store (a directory ``*.zarr``): ptyfast's own full-fidelity, chunked layout.

Every array carries ``dimension_names``, so ``xarray.open_zarr(path)`` gives a labelled
``xarray.Dataset``; ``zarr.open_group(path)`` gives the arrays. Patterns are chunked by
pattern blocks (about 4 MiB per chunk, one file each; written whole, never read back and
rewritten) and, with ``compress=True``, compressed with zstd.

==================== ================================= ========= ==============================
array                dims                              dtype     content
==================== ================================= ========= ==============================
``diffraction``      (pattern, detector_y, detector_x) detector  the readings exactly (float32
                                                       dtype     photon counts for the ideal
                                                                 detector, integer counts,
                                                                 ADU); zero frequency at
                                                                 ``[N//2, N//2]``, not shifted
                                                                 back; intensities
``mask``             (detector_y, detector_x)          bool      ``True`` = valid pixel
``positions_true``,  (pattern, xy)                     float64   ``(x, y)`` object pixels, x =
``positions_nominal``                                            column, sampled at patch pixel
                                                                 ``N//2`` (README)
``probe``            (mode, probe_y, probe_x)          complex64 incoherent modes
``object``           (object_y, object_x)              complex64
``patches``          (pattern, probe_y, probe_x)       complex64 object patches, when stored
==================== ================================= ========= ==============================

Group attributes: ``ptyfast`` (the header: format version, ``photons``, ``intensity_scale``,
``geometry``, ``detector``, dtype), ``provenance`` (the dataset's provenance dict) and
``conventions`` (these rules in words). Metadata is consolidated for xarray.

Crash safety: a directory cannot be written atomically, so the store is written into a
hidden sibling and renamed into place when complete (:mod:`ptyfast.io._dirstore`: swapped
atomically with ``renameat2`` when replacing on Linux; leftovers of dead writers removed on
the next write). zarr writes a block's chunks on its own thread while the caller waits, so
Ctrl-C (``SIGTERM``, ``SIGHUP``) is held off until the block is written and raised then: an
interrupted writer leaves no hidden store behind. Readers: ``zarr`` ≥ 3, ``xarray``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import HeldSignals
from .._kernels import _flag
from ._common import (
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    _array,
    check_finite,
    dumps,
    loads,
    require,
    require_fits,
)
from ._dirstore import atomic_directory

__all__ = [
    "ZarrReader",
    "ZarrWriter",
    "ZSTD_LEVEL",
    "is_store",
    "chunk_rows",
    "create_store",
    "write_region",
    "finish_store",
]

#: zstd level with ``compress=True``.
ZSTD_LEVEL = 3
#: Target size of one chunk of patterns (4 MiB: few files to fsync, cheap partial reads).
CHUNK_BYTES = 1 << 22

_DIMS = {
    "diffraction": ("pattern", "detector_y", "detector_x"),
    "mask": ("detector_y", "detector_x"),
    "positions_true": ("pattern", "xy"),
    "positions_nominal": ("pattern", "xy"),
    "probe": ("mode", "probe_y", "probe_x"),
    "object": ("object_y", "object_x"),
    "patches": ("pattern", "probe_y", "probe_x"),
}

_CONVENTIONS = {
    "diffraction": "detector readings, zero frequency at [N//2, N//2], not fftshifted back",
    "positions": "(x, y) object pixels, x = column, y = row, sampled at patch pixel N//2",
    "far_field": "A = |fftshift(FFT2(probe * patch))| / N, A^2 summed over the probe modes",
    "units": (
        "expected photons per pixel reaching the detector = (intensity_scale * A)^2; probe as "
        "simulated: a stack of modes has sum over modes of |P|^2 = 1, one mode any norm (the "
        "dose is in intensity_scale); photons: mean per pattern before QE"
    ),
}


def is_store(path: Path) -> bool:
    """Whether ``path`` is a Zarr v3 group directory (``zarr.json`` with a group node)."""
    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("node_type") == "group"
    except (OSError, ValueError, AttributeError):
        return False


class ZarrWriter(BlockWriter):
    """Streaming writer of the Zarr v3 store (module docstring)."""

    format = "zarr"

    def _open(self, stack: contextlib.ExitStack) -> None:
        tmp = stack.enter_context(atomic_directory(self.path, overwrite=self.overwrite))
        self._tmp = tmp
        with HeldSignals():  # see _write (opening r+ creates the directory if it is missing)
            self._rows = create_store(tmp, self.header, compress=self.compress)
            root = require("zarr").open_group(store=os.fspath(tmp), mode="r+")
            self._diffraction = root["diffraction"]
            self._patches = root["patches"] if self.header.patches else None
        self._pending: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._pending_start = 0

    def _write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None) -> None:
        """Write whole chunks only; the tail (less than a chunk) waits for the next block."""
        stop = start + diffraction.shape[0]
        if self._pending:
            self._pending.append((diffraction, patches))
            d = np.concatenate([b[0] for b in self._pending])
            p = None if patches is None else np.concatenate([b[1] for b in self._pending])
            first, self._pending = self._pending_start, []
        else:
            d, p, first = diffraction, patches, start
        end = stop if stop == self.header.n_patterns else stop - stop % self._rows
        if end > first:
            # zarr writes the chunks on its own I/O thread while this one waits: Ctrl-C would
            # end the wait, not the writes, and a chunk written after the cleanup removed the
            # hidden store would recreate it. Ctrl-C is held off until the block is written
            # (then raised, and the cleanup finds nothing in flight).
            with HeldSignals():
                try:
                    self._diffraction[first:end] = d[: end - first]
                    if p is not None:
                        assert self._patches is not None
                        self._patches[first:end] = p[: end - first]
                except BaseException:
                    _settle()  # the chunks still in flight would outlive the cleanup
                    raise
        if end < stop:  # copies: the caller may reuse its buffers
            k = max(end, first) - first
            self._pending = [(d[k:].copy(), None if p is None else p[k:].copy())]
            self._pending_start = first + k

    def _finish(self) -> None:
        with HeldSignals():  # see _write
            finish_store(self._tmp)


def _settle(timeout: float = 30.0) -> None:
    """Wait (up to ``timeout`` seconds) for the chunk writes zarr still runs on its I/O loop.

    When one chunk of a write fails (``ENOSPC``), zarr raises at once while the write's
    other chunks go on; a cleanup that removed the hidden store then would see them
    recreate it. Called before such an error propagates. Does nothing when zarr's loop is
    not running."""
    try:
        from zarr.core import sync as zsync

        loop = zsync.loop[0]
    except (ImportError, AttributeError, IndexError):  # pragma: no cover - other zarr
        return
    if loop is None or not loop.is_running():
        return

    async def others() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(others(), loop).result(timeout + 1.0)


def chunk_rows(header: Header) -> int:
    """Patterns per chunk of a store for ``header``: about :data:`CHUNK_BYTES` of the widest
    pattern array (one length for ``diffraction`` and ``patches``, so blocks regroup into
    whole chunks of both)."""
    if not isinstance(header, Header):
        raise TypeError(f"header must be a ptyfast.io.Header, got {type(header).__name__}")
    n = header.N
    widest = 8 if header.patches else header.dtype.itemsize
    return max(1, min(header.n_patterns, CHUNK_BYTES // (n * n * widest)))


def create_store(
    directory: str | os.PathLike[str], header: Header, *, compress: bool, rows: int | None = None
) -> int:
    """Lay out a store for ``header`` in the empty directory ``directory``.

    Writes the group attributes and every array but the patterns, and declares the pattern
    arrays (``diffraction``, and ``patches`` when the header says so) chunked by
    :func:`chunk_rows` patterns; :func:`write_region` fills them (from any process, any
    order), :func:`finish_store` completes the store. :class:`ZarrWriter` and
    :func:`ptyfast.distributed.simulate` lay stores out through here, so both give one
    layout. ``rows`` overrides the chunk length (a distributed run with small shards).
    ``compress`` is ``True``/``False`` (``numpy.bool_``, 0, 1; anything else is a
    ``TypeError``). Returns the chunk length in patterns.
    """
    compress = _flag("compress", compress)
    if not isinstance(header, Header):
        raise TypeError(f"header must be a ptyfast.io.Header, got {type(header).__name__}")
    if rows is not None:  # before the directory is touched
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral):
            raise TypeError(f"rows must be a positive integer, got {type(rows).__name__} {rows!r}")
        if rows < 1:
            raise ValueError(f"rows must be a positive integer, got {rows!r}")
        rows = int(rows)
    zarr = require("zarr")
    from zarr.codecs import ZstdCodec

    h = header
    root = zarr.open_group(store=os.fspath(directory), mode="w", zarr_format=3)
    root.attrs.update(
        {
            "ptyfast": h.meta(),
            "provenance": loads(dumps(h.provenance), where="provenance"),
            "conventions": _CONVENTIONS,
        }
    )
    comp: Any = (ZstdCodec(level=ZSTD_LEVEL),) if compress else None
    m, n = h.n_patterns, h.N

    def array(name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]) -> Any:
        return root.create_array(
            name,
            shape=shape,
            dtype=np.dtype(dtype),
            chunks=chunks,
            compressors=comp,
            dimension_names=_DIMS[name],
            # chunk files c.0.0.0 side by side, not one directory level per axis
            chunk_key_encoding={"name": "default", "separator": "."},
        )

    if rows is None:
        rows = chunk_rows(h)
    array("diffraction", (m, n, n), h.dtype, (rows, n, n))
    if h.patches:
        array("patches", (m, n, n), np.complex64, (rows, n, n))
    for name in ("mask", "positions_true", "positions_nominal", "probe", "object"):
        value = np.ascontiguousarray(getattr(h, name))
        array(name, value.shape, value.dtype, value.shape)[...] = value
    return rows


def write_region(
    directory: str | os.PathLike[str],
    start: int,
    diffraction: np.ndarray,
    patches: np.ndarray | None = None,
) -> list[Path]:
    """Write patterns ``start : start + len(diffraction)`` into a store laid out by
    :func:`create_store`, as whole chunks: ``start`` a multiple of the chunk length and the
    end one too or the last pattern (so that concurrent writers never share a chunk file).

    Returns the chunk files of the region (those that exist: zarr stores no chunk that holds
    only zeros), for a caller that makes them durable (``fsync``) before recording the region
    as done.

    Raises
    ------
    TypeError
        ``start`` not an integer; ``diffraction`` or ``patches`` not a numpy array of a real
        (complex64 for ``patches``) dtype.
    ValueError
        A region not aligned with the chunks, past the end, or of the wrong shape or dtype;
        ``patches`` missing where the store keeps them, given where it does not, or not of
        ``diffraction``'s shape; NaN or inf in floating ``diffraction`` or in ``patches``
        (before anything is written).
    """
    if isinstance(start, bool) or not isinstance(start, numbers.Integral):
        raise TypeError(f"start must be an integer, got {type(start).__name__} {start!r}")
    start = int(start)
    _array("diffraction", diffraction, "fiu", (None, None, None))
    if patches is not None:
        _array("patches", patches, "c", diffraction.shape)
        if patches.dtype != np.complex64:
            raise TypeError(f"patches must be complex64, got {patches.dtype}")
    zarr = require("zarr")
    where = Path(directory)
    root = zarr.open_group(store=os.fspath(where), mode="r+")
    d = root["diffraction"]
    m, rows = d.shape[0], d.chunks[0]
    b = int(diffraction.shape[0]) if np.ndim(diffraction) == 3 else -1
    stop = start + b
    if b < 1 or start % rows or stop > m or (stop % rows and stop != m):
        raise ValueError(
            f"region must be whole chunks of {rows} patterns within 0..{m}, got {start}..{stop}"
        )
    if diffraction.shape[1:] != d.shape[1:] or diffraction.dtype != d.dtype:
        raise ValueError(
            f"diffraction must be {d.dtype} (B, {d.shape[1]}, {d.shape[2]}), got "
            f"{diffraction.dtype} {diffraction.shape}"
        )
    has_patches = "patches" in root
    if has_patches != (patches is not None):
        raise ValueError(
            "patches must be given exactly when the store keeps them "
            f"({'it does' if has_patches else 'it does not'})"
        )
    check_finite("diffraction", diffraction, start)
    if patches is not None:
        check_finite("patches", np.asarray(patches), start)
    d[start:stop] = diffraction
    names = ["diffraction"]
    if patches is not None:
        root["patches"][start:stop] = patches
        names.append("patches")
    files = [
        where / name / f"c.{k}.0.0"
        for name in names
        for k in range(start // rows, -(-stop // rows))
    ]
    return [f for f in files if f.exists()]


def finish_store(directory: str | os.PathLike[str]) -> None:
    """Complete a store laid out by :func:`create_store` (consolidated metadata for xarray)."""
    zarr = require("zarr")
    # xarray opens consolidated stores without a fallback warning; zarr warns that
    # consolidation is not (yet) in the v3 spec, which is known and harmless here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", module="zarr")
        zarr.consolidate_metadata(os.fspath(directory))


class ZarrReader(BlockReader):
    """Reader of :class:`ZarrWriter`'s stores."""

    format = "zarr"

    def __init__(self, path: Path) -> None:
        zarr = require("zarr")
        super().__init__(path)
        where = os.fspath(path)
        try:
            root = zarr.open_group(store=where, mode="r")
        except Exception as exc:  # zarr raises several types for a bad store
            raise FormatError(f"{where} is not a readable Zarr v3 group: {exc}") from None
        attrs = root.attrs.asdict()
        if "ptyfast" not in attrs:
            raise FormatError(f"{where}: group attribute 'ptyfast' is missing; not a ptyfast store")

        def get(name: str) -> Any:
            try:
                return root[name]
            except KeyError:
                raise FormatError(f"{where}: array {name!r} is missing") from None

        def whole(name: str) -> np.ndarray:
            a = get(name)
            require_fits(where, f"array {name!r}", a.shape, a.dtype)
            return np.asarray(a[...])

        arrays = {
            k: whole(k) for k in ("mask", "positions_true", "positions_nominal", "probe", "object")
        }
        self.header = Header.from_meta(
            attrs["ptyfast"], arrays, attrs.get("provenance", {}), where=f"{where}: attrs.ptyfast"
        )
        h = self.header
        self._d = get("diffraction")
        self.compressed = bool(self._d.compressors)
        if self._d.shape != (h.n_patterns, h.N, h.N) or self._d.dtype != h.dtype:
            raise FormatError(
                f"{where}: array 'diffraction' must be {h.dtype} {(h.n_patterns, h.N, h.N)}, "
                f"got {self._d.dtype} {self._d.shape}"
            )
        self._p = get("patches") if h.patches else None

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        d = np.asarray(self._d[start:stop])
        p = None if self._p is None else np.asarray(self._p[start:stop])
        return d, p

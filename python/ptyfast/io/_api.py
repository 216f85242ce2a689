"""The entry points: ``save``, ``writer``, ``open``, ``reader``, ``detect``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._atomic import check_path
from .._kernels import _flag
from ..model.dataset import Dataset
from ._common import (
    CORRUPT,
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    format_from_path,
    unreadable,
)

__all__ = ["detect", "open", "reader", "save", "writer"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _writer_class(fmt: str) -> type[BlockWriter]:
    if fmt == "npz":
        from .npz import NpzWriter

        return NpzWriter
    if fmt == "ptychodus":
        from .ptychodus import PtychodusWriter

        return PtychodusWriter
    if fmt == "cxi":
        from .cxi import CxiWriter

        return CxiWriter
    from .zarr import ZarrWriter

    return ZarrWriter


def writer(
    path: str | os.PathLike[str],
    header: Header | Dataset,
    *,
    format: str | None = None,  # noqa: A002 - the documented keyword
    compress: bool = False,
    overwrite: bool = False,
    **options: Any,
) -> BlockWriter:
    """A streaming writer: the header now, the patterns block by block, the file at the end.

    Use it as a context manager. Nothing appears at ``path`` until the block ends without
    an exception after every pattern was written; then the file (or the ptychodus pair, or
    the Zarr directory) appears in one step. Memory is one block plus small per-format
    buffers.

    Parameters
    ----------
    path : str or os.PathLike
        Output path; the format follows from its extension (:data:`EXTENSIONS`) unless
        ``format`` is given. Bytes paths are refused.
    header : Header or Dataset
        Everything but the patterns (a :class:`~ptyfast.Dataset` gives its own header).
    format : {"npz", "ptychodus", "cxi", "zarr"}, optional
        Override the extension.
    compress : bool
        Deflate (NPZ, HDF5 gzip + shuffle) or zstd (Zarr). Like every flag of
        :mod:`ptyfast.io`: ``True``/``False``, ``numpy.bool_`` or 0/1; anything else
        (``"no"``, ``None``, 2) is a ``TypeError``.
    overwrite : bool
        Replace an existing target; otherwise an existing target is an error raised before
        anything is written. A flag, as ``compress``.
    **options
        Format options: ``raw_data=True`` (ptychodus: add PtychoPINN's ``/raw_data``).

    Returns
    -------
    BlockWriter
        Call ``w.write(start, diffraction, patches=None)`` (blocks) inside the block.

    Raises
    ------
    TypeError
        ``path`` not a ``str`` or ``os.PathLike``; a flag not a bool; ``header`` of another
        type.
    ValueError
        ``path`` with a NUL character, a name longer than the file system allows or under a
        file (all checked before any file is touched); unknown extension or format,
        existing target, a format needing a geometry (or an intensity scale) the header
        lacks; bad blocks, NaN or inf included (see ``BlockWriter.write``).
    OSError
        The file system refused (permissions, space); the message names ``path``.
    ImportError
        h5py / zarr missing (the message names the ptyfast extra to install).

    Examples
    --------
    >>> import numpy as np, tempfile, os, ptyfast
    >>> from ptyfast.io import Header, writer
    >>> pos = np.full((4, 2), 10.0)
    >>> h = Header(n_patterns=4, dtype=np.float32, mask=np.ones((8, 8), bool),
    ...            positions_nominal=pos, positions_true=pos,
    ...            probe=np.ones((1, 8, 8), np.complex64) / 8,
    ...            object=np.ones((24, 24), np.complex64), intensity_scale=1.0)
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> with writer(path, h) as w:
    ...     w.write(0, np.ones((3, 8, 8), np.float32))
    ...     w.write(3, np.zeros((1, 8, 8), np.float32))
    >>> ptyfast.open(path).diffraction.sum()
    np.float32(192.0)
    """
    path = check_path(path)
    compress = _flag("compress", compress)
    overwrite = _flag("overwrite", overwrite)
    fmt = format_from_path(path, format)
    if isinstance(header, Dataset):
        header = Header.from_dataset(header)
    return _writer_class(fmt)(path, header, compress=compress, overwrite=overwrite, **options)


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,  # noqa: A002 - the documented keyword
    compress: bool = False,
    overwrite: bool = False,
    **options: Any,
) -> list[Path]:
    """Write ``dataset`` to ``path`` (format from the extension unless given).

    Streams through :func:`writer` in blocks of about 16 MiB, so the file never needs a
    second copy of the patterns in memory, and appears atomically. ``Dataset.save``
    delegates here.

    Parameters
    ----------
    dataset : Dataset
    path : str or os.PathLike
        ``*.npz``, ``*.ptychodus.h5`` (``*.h5``, ``*.hdf5``), ``*.cxi`` or ``*.zarr``.
    format, compress, overwrite, **options
        As for :func:`writer` (``compress`` and ``overwrite`` must be bools: ``"no"`` is a
        ``TypeError``, not ``True``).

    Returns
    -------
    list of pathlib.Path
        The files written (two for the ptychodus pair).

    Raises
    ------
    ValueError, TypeError, OSError, ImportError
        As for :func:`writer`; every argument is checked before any file is touched.

    Examples
    --------
    >>> ds.save("run.ptychodus.h5")            # doctest: +SKIP
    >>> ptyfast.io.save(ds, "run.zarr", compress=True)  # doctest: +SKIP
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a ptyfast.Dataset, got {type(dataset).__name__}")
    w = writer(path, dataset, format=format, compress=compress, overwrite=overwrite, **options)
    h = w.header
    step = h.block_size()
    with w:
        for start in range(0, h.n_patterns, step):
            stop = min(h.n_patterns, start + step)
            patches = None if dataset.patches is None else dataset.patches[start:stop]
            w.write(start, dataset.diffraction[start:stop], patches)
    return w.paths


def detect(path: str | os.PathLike[str]) -> str:
    """The format of an existing file or store, from its content (not its name).

    NPZ: a zip archive; Zarr: a directory with a v3 group ``zarr.json``; HDF5 files: CXI when
    they have ``/cxi_version`` or ``/entry_1``, ptychodus when they have a product's
    ``probe_position_x_m`` or a diffraction file's ``patterns`` and ``bad_pixels``.

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike`` (bytes included).
    ValueError
        ``path`` contains a NUL character or cannot name a file (a name too long).
    FileNotFoundError
        ``path`` does not exist.
    FormatError (ValueError)
        It exists but is none of these (the message says what was found).
    """
    p = Path(check_path(path))
    where = os.fspath(p)
    try:
        exists = p.exists()
    except OSError as exc:  # ENAMETOOLONG and the like: no file can have this path
        raise ValueError(f"path {where!r} cannot name a file: {exc.strerror or exc}") from None
    if not exists:
        raise FileNotFoundError(f"{where}: no such file or directory")
    if p.is_dir():
        from .zarr import is_store

        if is_store(p):
            return "zarr"
        raise FormatError(f"{where} is a directory without a Zarr v3 group (zarr.json)")
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise FormatError(f"{where} cannot be read: {exc}") from None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    if head == _HDF5_MAGIC:
        from ._common import require

        h5py = require("h5py")
        try:
            with h5py.File(p, "r") as f:
                keys = set(f.keys())
        except (OSError, RuntimeError) as exc:  # RuntimeError: a corrupt link table
            raise FormatError(f"{where} is not a readable HDF5 file: {exc}") from None
        if "cxi_version" in keys or "entry_1" in keys:
            return "cxi"
        if "probe_position_x_m" in keys or {"patterns", "bad_pixels"} <= keys:
            return "ptychodus"
        raise FormatError(
            f"{where} is HDF5 but neither CXI (no /cxi_version or /entry_1) nor a ptychodus "
            f"product (no probe_position_x_m) or diffraction file (no patterns, bad_pixels)"
        )
    raise FormatError(
        f"{where} is not a ptyfast dataset: neither NPZ (zip), HDF5 (ptychodus, CXI) nor a "
        f"Zarr store (first bytes {head!r})"
    )


def reader(path: str | os.PathLike[str]) -> BlockReader:
    """A reader: ``.header`` at once, ``.read(start, stop)`` / ``.blocks()`` for the patterns.

    The format is detected from the content (:func:`detect`). Close it (or use it as a
    context manager) when done.

    Raises
    ------
    TypeError, ValueError, FileNotFoundError, FormatError
        As for :func:`detect`, or a field the format needs is missing or malformed (the
        message names the file and the field).
    """
    p = Path(check_path(path))
    fmt = detect(p)
    try:
        if fmt == "npz":
            from .npz import NpzReader

            return NpzReader(p)
        if fmt == "ptychodus":
            from .ptychodus import PtychodusReader

            return PtychodusReader(p)
        if fmt == "cxi":
            from .cxi import CxiReader

            return CxiReader(p)
        from .zarr import ZarrReader

        return ZarrReader(p)
    except (FormatError, FileNotFoundError):  # FormatError is a ValueError, this an OSError
        raise
    except CORRUPT as exc:
        raise unreadable(os.fspath(p), fmt, exc) from None


def open(path: str | os.PathLike[str]) -> Dataset:  # noqa: A001 - ptyfast.open is the API
    """Read a dataset written by any ptyfast writer (format detected from the content).

    Every field comes back exactly as written: ``diffraction`` (dtype and bits), positions,
    probe, object, mask, provenance, geometry, detector, photons, intensity scale, patches.
    Files of the same formats written by other tools are read as far as they go (see each
    format module).

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz``, a ptychodus product (or its diffraction file), a ``.cxi`` file or a
        ``.zarr`` store (bytes paths are refused).

    Returns
    -------
    Dataset

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    ValueError
        ``path`` contains a NUL character or cannot name a file.
    FileNotFoundError, FormatError (ValueError)
        Missing path; unknown or malformed content (the message names the file and field).

    Examples
    --------
    >>> ds = ptyfast.open("run.ptychodus.h5")   # doctest: +SKIP
    """
    path = check_path(path)
    with reader(path) as r:
        try:
            return r.read_all()
        except FormatError:
            raise
        except CORRUPT as exc:  # fields that decode but do not make a valid dataset
            raise unreadable(path, f"{r.format} dataset", exc) from None

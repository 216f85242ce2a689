"""Atomic, streaming NPZ writing and tolerant NPZ reading.

An ``.npz`` file is a zip archive of ``.npy`` members. :class:`NpzStreamWriter` writes members
uncompressed and lets a large member (e.g. ``diff3d`` of a million patterns) be appended
chunk by chunk, so peak memory stays bounded by one chunk. The archive is written through
:func:`ptyfast._atomic.atomic_output`: it appears at its path only when complete, and an
interrupted or killed run leaves neither a partial file nor a temporary one. No member is ever
pickled (object arrays are refused).
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npformat

from ._atomic import atomic_output

METADATA_KEY = "_metadata"


class NpzStreamWriter:
    """Write an ``.npz`` archive atomically, streaming large members.

    Use as a context manager; the file appears at ``path`` only if the block exits without an
    exception (see :func:`ptyfast._atomic.atomic_output`).

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The archive to create. A file object (anything with ``write``) is written directly,
        from its current position, without the atomic guarantees.
    overwrite : bool
        Replace an existing file at ``path``; ``False`` raises ``ValueError`` on entering.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> with NpzStreamWriter(path) as w:
    ...     w.write("x", np.arange(3.0))
    ...     with w.stream("big", (4, 2), np.float32) as s:
    ...         s.append(np.zeros((2, 2), np.float32))
    ...         s.append(np.ones((2, 2), np.float32))
    >>> np.load(path)["big"].sum()
    np.float32(4.0)
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, *, overwrite: bool = True) -> None:
        self._file_object: BinaryIO | None = path if hasattr(path, "write") else None  # type: ignore[assignment]
        self.path = None if self._file_object is not None else Path(path)  # type: ignore[arg-type]
        self._overwrite = overwrite
        self._stack = contextlib.ExitStack()
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> NpzStreamWriter:
        with self._stack as stack:
            if self._file_object is not None:
                f = self._file_object
            else:
                assert self.path is not None
                f = stack.enter_context(atomic_output(self.path, overwrite=self._overwrite)).file
            self._zip = zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._zip is not None
        zf, self._zip = self._zip, None
        if exc_type is None:
            with self._stack:  # an error writing the central directory discards the file too
                zf.close()
        else:
            zf.fp = None  # no central directory into a discarded file (nor from ZipFile.__del__)
            self._stack.__exit__(exc_type, exc, tb)  # discards the file; the error propagates
        return None

    def write(self, key: str, array: Any) -> None:
        """Write a whole member ``key`` (no pickled objects)."""
        arr = np.asanyarray(array)
        if arr.dtype.hasobject:
            raise TypeError(f"{key} must be a numeric or string array, got dtype {arr.dtype}")
        assert self._zip is not None
        with self._zip.open(key + ".npy", "w", force_zip64=True) as f:
            npformat.write_array(f, np.asarray(arr, order="C"), allow_pickle=False)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Write ``metadata`` as JSON under the ``_metadata`` key (the reference's layout)."""
        self.write(METADATA_KEY, np.array(json.dumps(metadata, default=_json_default)))

    def stream(self, key: str, shape: tuple[int, ...], dtype: Any) -> _MemberStream:
        """Open member ``key`` of known final ``shape``; fill it with ``append`` in order."""
        assert self._zip is not None
        return _MemberStream(self._zip, key, tuple(int(s) for s in shape), np.dtype(dtype))


class _MemberStream:
    def __init__(self, zf: zipfile.ZipFile, key: str, shape: tuple[int, ...], dtype: np.dtype):
        self.key, self.shape, self.dtype = key, shape, dtype
        self._rows = 0
        self._f: BinaryIO = zf.open(key + ".npy", "w", force_zip64=True)  # type: ignore[assignment]
        header = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        npformat.write_array_header_2_0(self._f, header)

    def __enter__(self) -> _MemberStream:
        return self

    def append(self, chunk: Any) -> None:
        c = np.ascontiguousarray(chunk, dtype=self.dtype)
        if c.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"chunk for {self.key} must have shape (*, {self.shape[1:]}), got {c.shape}"
            )
        if self._rows + c.shape[0] > self.shape[0]:
            raise ValueError(
                f"too many rows for {self.key}: {self._rows + c.shape[0]} > {self.shape[0]}"
            )
        self._f.write(c.reshape(-1).view(np.uint8))  # no copy
        self._rows += c.shape[0]

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._f.close()
        if exc_type is None and self._rows != self.shape[0]:
            raise ValueError(f"{self.key}: wrote {self._rows} rows, declared {self.shape[0]}")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def save_npz(
    path: str | os.PathLike[str] | BinaryIO,
    arrays: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = True,
) -> None:
    """Atomically write ``arrays`` (``None`` values are skipped) and optional metadata.

    ``path`` may also be a binary file object, written directly (see :class:`NpzStreamWriter`).
    """
    with NpzStreamWriter(path, overwrite=overwrite) as w:
        for key, value in arrays.items():
            if value is not None:
                w.write(key, value)
        if metadata is not None:
            w.write_metadata(metadata)


def load_npz(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray | None], dict[str, Any] | None]:
    """Load every member of an ``.npz`` without unpickling.

    Pickled object members (the reference stores a missing ``objectGuess`` as an object array
    holding ``None``) are returned as ``None``. Returns ``(arrays, metadata)``.
    """
    out: dict[str, np.ndarray | None] = {}
    metadata = None
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            try:
                value = data[key]
            except ValueError:  # object array: never unpickle untrusted files
                out[key] = None
                continue
            if key == METADATA_KEY:
                try:
                    metadata = json.loads(str(value.reshape(-1)[0]) if value.size else "")
                except json.JSONDecodeError:
                    metadata = None
                continue
            out[key] = value
    return out, metadata

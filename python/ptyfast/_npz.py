"""Atomic, streaming NPZ writing and tolerant NPZ reading.

An ``.npz`` file is a zip archive of ``.npy`` members. :class:`NpzStreamWriter` writes members
uncompressed and lets a large member (e.g. ``diff3d`` of a million patterns) be appended
chunk by chunk, so peak memory stays bounded by one chunk. Everything is written to a
temporary file in the destination directory and moved into place with :func:`os.replace`
only when the archive is complete: an interrupted run leaves no partial file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npformat

METADATA_KEY = "_metadata"


class NpzStreamWriter:
    """Write an ``.npz`` archive atomically, streaming large members.

    Use as a context manager; the file appears at ``path`` only if the block exits without an
    exception.

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

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._tmp: str | None = None
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> NpzStreamWriter:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        directory.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._zip is not None and self._tmp is not None
        try:
            self._zip.close()
        finally:
            if exc_type is None:
                # mkstemp creates the file private (0600); give it the mode a plain open()
                # would have, so datasets in shared directories stay readable.
                os.chmod(self._tmp, _new_file_mode())
                os.replace(self._tmp, self.path)
            else:
                try:
                    os.unlink(self._tmp)
                except FileNotFoundError:
                    pass

    def write(self, key: str, array: Any) -> None:
        """Write a whole member ``key`` (no pickled objects)."""
        arr = np.asanyarray(array)
        if arr.dtype == object:
            raise TypeError(f"{key} must be a numeric array, got dtype object")
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
        self._f.write(c.tobytes())
        self._rows += c.shape[0]

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._f.close()
        if exc_type is None and self._rows != self.shape[0]:
            raise ValueError(f"{self.key}: wrote {self._rows} rows, declared {self.shape[0]}")


def _new_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open(path, 'w')`` gives a new file."""
    try:
        with open("/proc/self/status") as f:  # Linux >= 4.7: read without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return 0o666 & ~mask


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def save_npz(
    path: str | os.PathLike[str], arrays: dict[str, Any], metadata: dict[str, Any] | None = None
) -> None:
    """Atomically write ``arrays`` (``None`` values are skipped) and optional metadata."""
    with NpzStreamWriter(path) as w:
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

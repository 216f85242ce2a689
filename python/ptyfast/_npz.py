"""Atomic, streaming NPZ writing and strict, memory-bounded NPZ reading.

An ``.npz`` file is a zip archive of ``.npy`` members. :class:`NpzStreamWriter` writes members
uncompressed and lets a large member (e.g. ``diff3d`` of a million patterns) be appended
chunk by chunk, so peak memory stays bounded by one chunk. The archive is written through
:func:`ptyfast._atomic.atomic_output`: it appears at its path only when complete, and an
interrupted or killed run leaves neither a partial file nor a temporary one. No member is ever
pickled (object arrays are refused).
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from ._atomic import atomic_output, check_path
from ._kernels import _flag

METADATA_KEY = "_metadata"

logger = logging.getLogger(__name__)

#: ``schema_version`` of PtychoPINN's ``MetadataManager`` that :func:`metadata_record` follows.
METADATA_SCHEMA_VERSION = "1.0.0"
#: Flat keys that PtychoPINN keeps under ``physics_parameters``.
_PHYSICS_KEYS = ("nphotons", "N", "gridsize", "intensity_scale")
_NESTED_KEYS = (
    "schema_version",
    "creation_info",
    "physics_parameters",
    "additional_parameters",
    "data_transformations",
)


def metadata_record(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` in the schema PtychoPINN's ``MetadataManager`` reads, keeping every key.

    The flat keys ptyfast records (``nphotons``, ``intensity_scale``, ``seed``, ``generator``,
    ...) stay at the top level, as readers of earlier ptyfast files expect, and are also
    arranged as the reference arranges them: ``schema_version``, ``creation_info``
    (``script``), ``physics_parameters`` (``nphotons``, ``N``, ``gridsize``,
    ``intensity_scale`` when known), ``additional_parameters`` (the rest) and
    ``data_transformations``. So ``MetadataManager.get_nphotons`` reads the photon count of a
    ptyfast file instead of falling back to its 1e9 default. Nested entries already present
    (a record read back and written again) are kept and updated, not nested twice. No
    timestamp or host name is written: the same inputs give the same file.

    Examples
    --------
    >>> r = metadata_record({"nphotons": 1e6, "seed": 3, "generator": "ptyfast 0.1.0"})
    >>> r["physics_parameters"], r["additional_parameters"], r["nphotons"]
    ({'nphotons': 1000000.0}, {'seed': 3}, 1000000.0)
    """
    flat = {k: v for k, v in metadata.items() if k not in _NESTED_KEYS}
    record: dict[str, Any] = dict(flat)
    record["schema_version"] = metadata.get("schema_version", METADATA_SCHEMA_VERSION)
    creation = dict(metadata.get("creation_info") or {})
    if "generator" in flat:
        creation.setdefault("script", flat["generator"])
    record["creation_info"] = creation
    physics = dict(metadata.get("physics_parameters") or {})
    physics.update({k: flat[k] for k in _PHYSICS_KEYS if flat.get(k) is not None})
    record["physics_parameters"] = physics
    extra = dict(metadata.get("additional_parameters") or {})
    extra.update({k: v for k, v in flat.items() if k not in _PHYSICS_KEYS and k != "generator"})
    record["additional_parameters"] = extra
    record["data_transformations"] = list(metadata.get("data_transformations") or [])
    return record


class NpzStreamWriter:
    """Write an ``.npz`` archive atomically, streaming large members.

    Use as a context manager; the file appears at ``path`` only if the block exits without an
    exception (see :func:`ptyfast._atomic.atomic_output`).

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The archive to create. A file object (anything with ``write``) is written directly,
        from its current position, without the atomic guarantees. Bytes paths are refused
        (``TypeError``).
    overwrite : bool
        Replace an existing file at ``path``; ``False`` raises ``ValueError`` on entering.
        ``True``/``False``, ``numpy.bool_``, 0 or 1; anything else is a ``TypeError``.

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
        self.path = None if self._file_object is not None else Path(check_path(path))
        self._overwrite = _flag("overwrite", overwrite)
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

    ``path`` may also be a binary file object, written directly (see :class:`NpzStreamWriter`);
    ``overwrite`` is a bool (``True``/``False``, ``numpy.bool_``, 0, 1).
    """
    with NpzStreamWriter(path, overwrite=overwrite) as w:
        for key, value in arrays.items():
            if value is not None:
                w.write(key, value)
        if metadata is not None:
            w.write_metadata(metadata)


# --------------------------------------------------------------------------- reading

#: Members declaring more than this many bytes must not expand more than
#: :data:`MAX_COMPRESSION_RATIO` times their compressed size (a decompression bomb otherwise).
RATIO_CHECK_MIN_BYTES = 64 * 2**20
#: Largest accepted ratio of a large compressed member's declared size to its stored size.
#: Real data (noisy diffraction, objects, coordinates) compresses far less; only near-constant
#: data reaches deflate's ceiling of ~1000:1, which is what a small file expanding to gigabytes
#: is made of. Rewrite such data uncompressed (``numpy.savez``) to read it.
MAX_COMPRESSION_RATIO = 100
#: Largest ``.npy`` header accepted (NumPy's own default limit).
MAX_HEADER_BYTES = 10_000
#: Bytes read per ``readinto`` call: bounds the temporary copies while a member is read.
_READ_CHUNK = 16 * 2**20

_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    ValueError,
    SyntaxError,
    TypeError,
    struct.error,
    UnicodeDecodeError,
    MemoryError,
    OverflowError,
    KeyError,
)


class NpyHeader(NamedTuple):
    """A member's declared layout: ``shape``, ``dtype``, ``fortran_order``, the header length
    in bytes and the data bytes it declares."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    header_bytes: int
    data_bytes: int


class NpzReader:
    """Strict, memory-bounded reader of an ``.npz`` archive; never unpickles.

    * An archive that is not a zip file, or is truncated (no central directory), is a
      ``ValueError`` naming the file.
    * A member is read only when asked for (:meth:`read`). Its ``.npy`` header is parsed
      without NumPy's private helpers; the declared data size must equal what the archive says
      the member holds, compressed members may not expand more than
      :data:`MAX_COMPRESSION_RATIO` times once larger than :data:`RATIO_CHECK_MIN_BYTES`, and
      the declared size must fit in memory (:func:`ptyfast._kernels.require_memory`), all
      *before* the array is allocated. The data is then read in bounded pieces straight into
      the array, and the zip CRC is checked. Any failure is a ``ValueError`` naming the file
      and the key; a member that is present is never silently skipped.
    * Members holding Python objects (pickles) are reported by :meth:`is_pickled` and refused
      by :meth:`read`: they are never unpickled.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> np.savez_compressed(path, x=np.arange(4.0))
    >>> with NpzReader(path) as r:
    ...     r.keys, r.header("x").shape, r.read("x").sum()
    (['x'], (4,), np.float64(6.0))
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except _READ_ERRORS as exc:
            raise ValueError(
                f"{self.path} is not a readable .npz archive (a zip of .npy members): {exc}"
            ) from None
        # Only .npy members are arrays; anything else in the zip is not read.
        self._members = {n[:-4]: n for n in self._zip.namelist() if n.endswith(".npy")}
        self._headers: dict[str, NpyHeader] = {}

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    @property
    def keys(self) -> list[str]:
        """Member names, without the ``.npy`` suffix, in archive order."""
        return list(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def _fail(self, key: str, why: str) -> ValueError:
        return ValueError(f"{self.path}: member {key!r} is unreadable: {why}")

    def header(self, key: str) -> NpyHeader:
        """The declared shape, dtype and sizes of member ``key`` (nothing allocated).

        Raises
        ------
        KeyError
            No such member (test with ``key in reader``).
        ValueError
            A header that is not a valid ``.npy`` header, or whose declared data size differs
            from the size the archive records for the member.
        """
        if key in self._headers:
            return self._headers[key]
        name = self._members[key]
        info = self._zip.getinfo(name)
        try:
            with self._zip.open(name) as f:
                h = _parse_npy_header(f, info.file_size)
        except ValueError as exc:
            raise self._fail(key, str(exc)) from None
        except _READ_ERRORS as exc:
            raise self._fail(key, f"{type(exc).__name__}: {exc}") from None
        if not h.dtype.hasobject and h.header_bytes + h.data_bytes != info.file_size:
            raise self._fail(
                key,
                f"its header declares shape {h.shape} of {h.dtype} ({h.data_bytes} bytes of "
                f"data) but the archive holds {info.file_size - h.header_bytes} data bytes "
                "(truncated or corrupt)",
            )
        self._headers[key] = h
        return h

    def is_pickled(self, key: str) -> bool:
        """Whether member ``key`` holds Python objects (a pickle, never loaded)."""
        return bool(self.header(key).dtype.hasobject)

    def read(self, key: str) -> np.ndarray:
        """Member ``key`` as an array, read with bounded memory (see the class docs).

        Raises
        ------
        KeyError
            No such member.
        ValueError
            Unreadable, truncated, corrupt (CRC), pickled, a possible decompression bomb, or
            larger than the available memory; the message names the file and the key.
        """
        from ._kernels import require_memory

        h = self.header(key)
        if h.dtype.hasobject:
            raise self._fail(
                key, "it holds Python objects (a pickle); ptyfast never unpickles files"
            )
        name = self._members[key]
        info = self._zip.getinfo(name)
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > RATIO_CHECK_MIN_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * max(1, info.compress_size)
        ):
            raise self._fail(
                key,
                f"it would expand from {info.compress_size} to {info.file_size} bytes "
                f"({info.file_size / max(1, info.compress_size):.0f}:1, more than "
                f"{MAX_COMPRESSION_RATIO}:1): refused as a possible decompression bomb; store "
                "it uncompressed (numpy.savez) to read it",
            )
        require_memory(f"{self.path}: member {key!r} of shape {h.shape} {h.dtype}", h.data_bytes)
        count = math.prod(h.shape)
        flat = np.empty(count, dtype=h.dtype)
        try:
            with self._zip.open(name) as f:
                f.read(h.header_bytes)
                view = memoryview(flat.view(np.uint8)) if h.data_bytes else memoryview(b"")
                pos = 0
                while pos < h.data_bytes:
                    got = f.readinto(view[pos : pos + _READ_CHUNK])
                    if not got:
                        raise EOFError(f"the data ends after {pos} of {h.data_bytes} bytes")
                    pos += got
                if f.read(1):
                    raise ValueError("data continues past the declared shape")
        except _READ_ERRORS as exc:
            raise self._fail(key, f"{type(exc).__name__}: {exc}") from None
        if h.fortran_order:
            return flat.reshape(h.shape[::-1]).transpose()
        return flat.reshape(h.shape)


def _parse_npy_header(f: BinaryIO, member_size: int) -> NpyHeader:
    """Parse the ``.npy`` header at the start of ``f`` (versions 1.0, 2.0 and 3.0)."""
    magic = f.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        raise ValueError("it is not an .npy array (bad magic string)")
    version = (magic[6], magic[7])
    if version == (1, 0):
        size_bytes, encoding = 2, "latin1"
    elif version in ((2, 0), (3, 0)):
        size_bytes, encoding = 4, "latin1" if version == (2, 0) else "utf8"
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    raw_len = f.read(size_bytes)
    if len(raw_len) != size_bytes:
        raise ValueError("the header is truncated")
    hlen = struct.unpack("<H" if size_bytes == 2 else "<I", raw_len)[0]
    if hlen > MAX_HEADER_BYTES:
        raise ValueError(f"its header of {hlen} bytes exceeds {MAX_HEADER_BYTES}")
    text = f.read(hlen)
    if len(text) != hlen:
        raise ValueError("the header is truncated")
    d = ast.literal_eval(text.decode(encoding))
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"the header is not an .npy header dict: {text[:80]!r}")
    shape, fortran = d["shape"], d["fortran_order"]
    if not (
        isinstance(shape, tuple)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape)
    ):
        raise ValueError(f"its header declares an invalid shape {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"its header declares an invalid fortran_order {fortran!r}")
    dtype = npformat.descr_to_dtype(d["descr"])
    data_bytes = math.prod(shape) * dtype.itemsize
    header_bytes = 8 + size_bytes + hlen
    del member_size
    return NpyHeader(tuple(shape), dtype, fortran, header_bytes, data_bytes)


def read_metadata(reader: NpzReader) -> dict[str, Any] | None:
    """The JSON ``_metadata`` of an archive, ``None`` when absent or pickled.

    The reference's ``MetadataManager`` stores the JSON inside a pickled object array; it is not
    unpickled (ptyfast never loads pickles), so such metadata reads as ``None``.

    Raises
    ------
    ValueError
        A ``_metadata`` member that is not a string or not a JSON object (naming the file).
    """
    if METADATA_KEY not in reader:
        return None
    if reader.is_pickled(METADATA_KEY):
        logger.info("%s: _metadata is pickled (PtychoPINN's writer); ignored", reader.path)
        return None
    value = reader.read(METADATA_KEY)
    if value.dtype.kind not in "US" or value.size != 1:
        raise reader._fail(METADATA_KEY, f"expected a JSON string, got {value.dtype} {value.shape}")
    text = value.reshape(-1)[0]
    try:
        meta = json.loads(text.decode() if isinstance(text, bytes) else str(text))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise reader._fail(METADATA_KEY, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise reader._fail(METADATA_KEY, f"expected a JSON object, got {type(meta).__name__}")
    return meta


def load_npz(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray | None], dict[str, Any] | None]:
    """Load every member of an ``.npz`` strictly (:class:`NpzReader`), without unpickling.

    Pickled object members (the reference stores a missing ``objectGuess`` as an object array
    holding ``None``) are returned as ``None``; a member that is present but unreadable is a
    ``ValueError`` naming the file and the key. Returns ``(arrays, metadata)``; ``metadata`` is
    the JSON ``_metadata`` (see :func:`read_metadata`).
    """
    out: dict[str, np.ndarray | None] = {}
    with NpzReader(path) as r:
        metadata = read_metadata(r)
        for key in r.keys:
            if key == METADATA_KEY:
                continue
            out[key] = None if r.is_pickled(key) else r.read(key)
    return out, metadata

"""HDF5 helpers shared by the ptychodus and CXI formats (h5py imported by the callers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import FormatError, Header, dumps, loads, readings_are_photons, require_fits

#: Target size of one compressed chunk (patterns per chunk follow from it).
CHUNK_BYTES = 1 << 20
#: gzip (deflate) level with ``compress=True``: every HDF5 build reads it, unlike lzf.
GZIP_LEVEL = 1


def create(
    h5py: Any, group: Any, name: str, shape: tuple[int, ...], dtype: Any, compress: bool
) -> Any:
    """An empty dataset filled later in pattern blocks (chunked by patterns when compressed)."""
    dtype = np.dtype(dtype)
    if not compress:
        return group.create_dataset(name, shape=shape, dtype=dtype)
    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    rows = max(1, min(shape[0], CHUNK_BYTES // max(row, 1)))
    return group.create_dataset(
        name,
        shape=shape,
        dtype=dtype,
        chunks=(rows, *shape[1:]),
        compression="gzip",
        compression_opts=GZIP_LEVEL,
        shuffle=True,
    )


def write_text(h5py: Any, group: Any, name: str, text: str) -> None:
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


def read(group: Any, name: str, where: str) -> Any:
    """``group[name][()]`` or a :class:`FormatError` naming the file and field."""
    try:
        item = group[name]
    except KeyError:
        raise FormatError(f"{where}: field {group.name.rstrip('/')}/{name} is missing") from None
    if not hasattr(item, "shape"):
        raise FormatError(f"{where}: {item.name} must be a dataset, got a group")
    require_fits(where, f"field {item.name}", item.shape, item.dtype)
    return item[()]


def attr(obj: Any, name: str, where: str) -> Any:
    try:
        return obj.attrs[name]
    except KeyError:
        raise FormatError(f"{where}: attribute {obj.name}@{name} is missing") from None


def write_ptyfast(
    h5py: Any, group: Any, header: Header, *, compress: bool, **attrs: Any
) -> dict[str, Any]:
    """The ``ptyfast`` group: exact pixel positions, mask, JSON blocks; returns the datasets
    filled block by block (``readings`` when the tool data are not the readings, ``patches``).
    """
    h = header
    g = group.create_group("ptyfast")
    g.attrs["format"] = "ptyfast"
    g.attrs["layout_version"] = h.meta()["layout_version"]
    for k, v in attrs.items():
        g.attrs[k] = v
    write_text(h5py, g, "meta", dumps(h.meta()))
    write_text(h5py, g, "provenance", dumps(h.provenance))
    g.create_dataset("positions_true", data=h.positions_true.astype(np.float64))
    g.create_dataset("positions_nominal", data=h.positions_nominal.astype(np.float64))
    g.create_dataset("mask", data=h.mask)
    g["positions_true"].attrs["units"] = "object pixels (x, y), sampled at patch pixel N//2"
    out: dict[str, Any] = {}
    m, n = h.n_patterns, h.N
    if not readings_are_photons(h.detector):
        out["readings"] = create(h5py, g, "readings", (m, n, n), h.dtype, compress)
    if h.patches:
        out["patches"] = create(h5py, g, "patches", (m, n, n), np.complex64, compress)
    return out


def read_ptyfast(g: Any, arrays: dict[str, Any], where: str) -> Header:
    """The header from a ``ptyfast`` group; ``arrays`` supplies probe and object."""
    meta = loads(read(g, "meta", where), where=f"{where}: {g.name}/meta")
    provenance = loads(read(g, "provenance", where), where=f"{where}: {g.name}/provenance")
    full = {
        **arrays,
        "positions_true": read(g, "positions_true", where),
        "positions_nominal": read(g, "positions_nominal", where),
        "mask": read(g, "mask", where),
    }
    return Header.from_meta(meta, full, provenance, where=f"{where}: {g.name}")


def probe_array(probe: np.ndarray) -> np.ndarray:
    """The probe as tools store it: ``(N, N)`` for one mode, ``(P, N, N)`` for several."""
    return probe[0] if probe.shape[0] == 1 else probe


def probe_from(a: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 4 and a.shape[0] == 1:  # ptychodus' (coherent, incoherent, y, x)
        a = a[0]
    if a.ndim != 3:
        raise FormatError(f"{where}: probe must be (N, N) or (P, N, N), got {a.shape}")
    return a.astype(np.complex64, copy=False)


def object_from(a: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise FormatError(f"{where}: object must be (H, W) (one layer), got {a.shape}")
    return a.astype(np.complex64, copy=False)

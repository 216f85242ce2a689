"""PtychoPINN raw NPZ: ``RawData.from_file``'s layout, plus the exact readings.

A zip archive of ``.npy`` members (stored, or deflated with ``compress=True``), written
through :func:`ptyfast._atomic.atomic_output` and streamed member by member: the readings go
straight into the archive, the amplitudes (and patches) into anonymous spool files in the
target's directory that are copied in after the last block, so memory stays at one block.

============== ==================== ============ ===============================================
key            shape                dtype        content
============== ==================== ============ ===============================================
``diff3d``     (M, N, N)            float32      PtychoPINN amplitudes ``sqrt(photons) / s``
                                                 (``s`` = ``intensity_scale``; photons =
                                                 ``detector.readings_to_photons(readings)``);
                                                 zero frequency at ``[N//2, N//2]`` (not
                                                 shifted back), rows = detector y
``readings``   (M, N, N)            detector's   the detector's readings exactly as simulated
                                                 (float32 photon counts for the ideal
                                                 detector, integer counts for counting ones);
                                                 not named ``diffraction``, which PtychoPINN's
                                                 data contract reserves for amplitudes
``xcoords``,   (M,)                 float64      true positions in object pixels, ``x`` =
``ycoords``                                      column, ``y`` = row, sampled at patch pixel
                                                 ``N//2`` (README, "Coordinates"); ``+``
                                                 moves the probe along the object's axes
``xcoords_     (M,)                 float64      nominal (commanded) positions, same frame
start``, ...
``probeGuess`` (N, N)               complex64    the first probe mode
``probe_       (P, N, N)            complex64    all modes, only when ``P > 1``
modes``
``objectGuess`` (H, W)              complex64    the object
``scan_index`` (M,)                 int64        zeros (one scan)
``mask``       (N, N)               bool         ``True`` = valid pixel
``Y``          (M, N, N, 1)         complex64    object patches, when the dataset has them
``detector_    ()                   float64      ``geometry.distance_m``, ``energy_eV``,
distance_m``,                                    ``detector_pixel_m`` (metres, eV), when the
``photon_                                        dataset has a geometry: the scalars ptychodus'
energy_eV``,                                     ``SLAC_NPZ`` plugin reads (without them it
``detector_                                      assumes 0.75 m, 8 keV, 75 µm)
pixel_size_m``
``_metadata``  ()                   str          JSON: ``nphotons``, ``intensity_scale`` (as
                                                 ``RawData.to_file``) and a ``ptyfast`` block
                                                 (provenance, geometry, detector, photons)
============== ==================== ============ ===============================================

Readers: :meth:`ptyfast.raw_data.RawData.from_file` and PtychoPINN's (``diff3d``,
``xcoords``, ``probeGuess``, ... ; extra keys are ignored), ``numpy.load``, ptychodus'
PtychoPINN NPZ conventions. ptychodus 1.7's ``SLAC_NPZ`` product plugin reads the geometry
scalars, ``probeGuess`` (the first mode only) and the **nominal** ``xcoords_start`` scaled
by the object pixel, about the object's corner (no object pixel size or centre: it cannot
place them on the object); its diffraction plugin wants a ``diffraction`` key (amplitudes,
pattern axis last), which this file does not have: use the ``.ptychodus.h5`` pair for
ptychodus. :func:`ptyfast.open` reads the exact readings back; a PtychoPINN
NPZ without ``readings`` (not written by ptyfast) is read as photons ``(diff3d · s)²`` with
``s`` from its ``_metadata`` (1 when absent), every pixel valid unless a ``bad_pixels``
member (``True`` = bad) says otherwise. ptychodus' own PtychoPINN export
(``save_ptychopinn_training_data``) writes ``bad_pixels`` (read as the mask), but puts the
pattern **intensities** in ``diff3d`` (read as amplitudes, so squared) and pixel positions of
the probe array's centre (``x − δ``, ``δ`` = ½ for even ``N``); neither can be told from the
file: take such ``diff3d`` as photons (``sqrt`` it) and add ``δ`` before using it as PtychoPINN
data.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npformat

from .._atomic import atomic_output
from ._common import (
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    amplitudes,
    dumps,
    finite_or_none,
    loads,
    need_intensity_scale,
)

__all__ = ["NpzReader", "NpzWriter", "COMPRESS_LEVEL"]

#: Deflate level with ``compress=True``: level 1 is 2-4x faster than zlib's default 6 and
#: within 10-30 % of its size on photon-count data (benches/bench_formats.py).
COMPRESS_LEVEL = 1

_METADATA = "_metadata"
_COPY_BYTES = 1 << 20


def _npy_header(f: IO[bytes], shape: tuple[int, ...], dtype: np.dtype) -> None:
    header = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    npformat.write_array_header_2_0(f, header)


class NpzWriter(BlockWriter):
    """Streaming writer of the PtychoPINN raw NPZ (module docstring)."""

    format = "npz"

    def _open(self, stack: contextlib.ExitStack) -> None:
        h = self.header
        s = need_intensity_scale(h, self.path, "diff3d amplitudes")
        self._s = s
        target = stack.enter_context(atomic_output(self.path, overwrite=self.overwrite))
        zf = zipfile.ZipFile(
            target.file,
            "w",
            compression=zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED,
            compresslevel=COMPRESS_LEVEL if self.compress else None,
            allowZip64=True,
        )
        stack.callback(zf.close)
        self._zip = zf
        m, n = h.n_patterns, h.N
        pt, pn = h.positions_true, h.positions_nominal
        small = {
            "xcoords": np.ascontiguousarray(pt[:, 0], dtype=np.float64),
            "ycoords": np.ascontiguousarray(pt[:, 1], dtype=np.float64),
            "xcoords_start": np.ascontiguousarray(pn[:, 0], dtype=np.float64),
            "ycoords_start": np.ascontiguousarray(pn[:, 1], dtype=np.float64),
            "probeGuess": h.probe[0],
            "objectGuess": h.object,
            "scan_index": np.zeros(m, dtype=np.int64),
            "mask": h.mask,
        }
        if h.n_modes > 1:
            small["probe_modes"] = h.probe
        if h.geometry is not None:  # what ptychodus' SLAC_NPZ plugin reads (else: defaults)
            g = h.geometry
            small["detector_distance_m"] = np.float64(g.distance_m)
            small["photon_energy_eV"] = np.float64(g.energy_eV)
            small["detector_pixel_size_m"] = np.float64(g.detector_pixel_m)
        meta = {
            "nphotons": finite_or_none(h.photons),
            "intensity_scale": float(s),
            "generator": f"ptyfast {h.meta()['ptyfast_version']}",
            "ptyfast": {**h.meta(), "provenance": h.provenance},
        }
        for key, value in small.items():
            a = np.asarray(value)  # ascontiguousarray would make a scalar (1,)
            self._member(key, a if a.ndim == 0 else np.ascontiguousarray(a))
        self._member(_METADATA, np.array(dumps(meta)))
        directory = self.path.parent if str(self.path.parent) else Path(".")
        self._spool_a = stack.enter_context(tempfile.TemporaryFile(dir=directory))
        self._spool_y = (
            stack.enter_context(tempfile.TemporaryFile(dir=directory)) if h.patches else None
        )
        self._readings = zf.open("readings.npy", "w", force_zip64=True)
        stack.callback(self._readings.close)
        _npy_header(self._readings, (m, n, n), h.dtype)

    def _member(self, key: str, arr: np.ndarray) -> None:
        with self._zip.open(key + ".npy", "w", force_zip64=True) as f:
            npformat.write_array(f, arr, allow_pickle=False)

    def _write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None) -> None:
        self._readings.write(diffraction.data)
        a = amplitudes(diffraction, self.header.detector, self._s)
        self._spool_a.write(a.data)
        if patches is not None:
            assert self._spool_y is not None
            self._spool_y.write(patches.data)

    def _copy(self, key: str, spool: IO[bytes], shape: tuple[int, ...], dtype: Any) -> None:
        spool.seek(0)
        with self._zip.open(key + ".npy", "w", force_zip64=True) as f:
            _npy_header(f, shape, np.dtype(dtype))
            shutil.copyfileobj(spool, f, _COPY_BYTES)

    def _finish(self) -> None:
        m, n = self.header.n_patterns, self.header.N
        self._readings.close()
        self._copy("diff3d", self._spool_a, (m, n, n), np.float32)
        if self._spool_y is not None:
            self._copy("Y", self._spool_y, (m, n, n, 1), np.complex64)


#: What reading a damaged zip member raises (CRC, inflate, short stream, I/O, a header
#: naming an unsupported zip version or compression).
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


class _Member:
    """One ``.npy`` member read in row blocks (seekable; deflated members decompress)."""

    def __init__(self, zf: zipfile.ZipFile, key: str, where: str) -> None:
        self.where = f"{where}: member {key!r}"
        try:
            self._f = zf.open(key + ".npy")
        except (*_CORRUPT, KeyError) as exc:
            raise FormatError(f"{self.where} cannot be opened: {exc}") from None
        try:
            version = npformat.read_magic(self._f)
            reader = {
                (1, 0): npformat.read_array_header_1_0,
                (2, 0): npformat.read_array_header_2_0,
            }.get(version)
            if reader is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = reader(self._f)
        except (ValueError, *_CORRUPT) as exc:
            self._f.close()
            raise FormatError(f"{self.where} is not a readable .npy array: {exc}") from None
        if fortran or dtype.hasobject or len(shape) < 1:
            self._f.close()
            raise FormatError(f"{self.where} must be a C-ordered numeric array of rank >= 1")
        self.shape, self.dtype = tuple(shape), dtype
        # One handle per member: a seek and the reads after it go together (a reader shared
        # by threads read other rows, or saw the member as corrupt).
        self._lock = threading.Lock()
        self.offset = self._f.tell()
        self.row = math.prod(self.shape[1:]) * dtype.itemsize
        # The declared shape must be what the member holds: checked before any read, so a
        # corrupt header can neither allocate a huge buffer nor pass short data off as whole.
        declared = math.prod(self.shape) * dtype.itemsize
        held = zf.getinfo(key + ".npy").file_size - self.offset
        if declared != held:
            self._f.close()
            raise FormatError(
                f"{self.where} declares {dtype} {self.shape} ({declared} bytes) but holds "
                f"{held} bytes: the file is corrupt or truncated"
            )

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, read straight into the array returned, in pieces of
        :data:`_COPY_BYTES` (never a second copy of the rows)."""
        want = (stop - start) * self.row
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        view = out.reshape(-1).view(np.uint8).data if want else memoryview(b"")
        pos = 0
        try:
            with self._lock:
                self._f.seek(self.offset + start * self.row)
                while pos < want:
                    got = self._f.readinto(view[pos : pos + _COPY_BYTES])  # type: ignore[attr-defined]
                    if not got:
                        break
                    pos += got
        except _CORRUPT as exc:
            raise FormatError(f"{self.where} is corrupt: {exc}") from None
        if pos != want:
            raise FormatError(f"{self.where} is truncated ({pos} of {want} bytes)")
        return out

    def close(self) -> None:
        self._f.close()


class NpzReader(BlockReader):
    """Reader of :class:`NpzWriter`'s files and of PtychoPINN raw NPZ files."""

    format = "npz"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        where = os.fspath(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
            raise FormatError(f"{where} is not a readable NPZ (zip) archive: {exc}") from None
        try:
            self._init(where)
        except BaseException:
            self._zip.close()
            raise

    def _array(self, key: str, where: str) -> np.ndarray | None:
        if key + ".npy" not in self._names:
            return None
        m = _Member(self._zip, key, where)
        try:
            return m.read(0, m.shape[0]) if m.shape else None
        finally:
            m.close()

    def _need(self, key: str, where: str) -> np.ndarray:
        a = self._array(key, where)
        if a is None:
            raise FormatError(f"{where}: required member {key!r} is missing")
        return a

    def _init(self, where: str) -> None:
        self._names = set(self._zip.namelist())
        self.compressed = any(i.compress_type != zipfile.ZIP_STORED for i in self._zip.infolist())
        meta: dict[str, Any] = {}
        if _METADATA + ".npy" in self._names:
            try:
                with self._zip.open(_METADATA + ".npy") as f:
                    text = npformat.read_array(f, allow_pickle=False)
            except ValueError as exc:
                if "allow_pickle" not in str(exc):  # a pickled foreign record is skipped
                    raise FormatError(
                        f"{where}: member '_metadata' is not a readable .npy array: {exc}"
                    ) from None
                text = None
            except _CORRUPT as exc:
                raise FormatError(f"{where}: member '_metadata' is corrupt: {exc}") from None
            if text is not None:
                parsed = loads(text, where=f"{where}: member '_metadata'")
                meta = parsed if isinstance(parsed, dict) else {}
        block = meta.get("ptyfast")
        self._patches: _Member | None = None
        if isinstance(block, dict) and "readings.npy" in self._names:
            self._init_ptyfast(where, block)
        else:
            self._init_foreign(where, meta)

    def _init_ptyfast(self, where: str, block: dict[str, Any]) -> None:
        pt = np.column_stack([self._need("xcoords", where), self._need("ycoords", where)])
        pn = np.column_stack(
            [self._need("xcoords_start", where), self._need("ycoords_start", where)]
        )
        probe = self._array("probe_modes", where)
        if probe is None:
            probe = self._need("probeGuess", where)[None]
        arrays = {
            "positions_true": pt.astype(np.float64),
            "positions_nominal": pn.astype(np.float64),
            "probe": probe,
            "object": self._need("objectGuess", where),
            "mask": self._need("mask", where),
        }
        self.header = Header.from_meta(
            block, arrays, block.get("provenance", {}), where=f"{where}: _metadata.ptyfast"
        )
        self._readings = _Member(self._zip, "readings", where)
        h = self.header
        if self._readings.shape != (h.n_patterns, h.N, h.N) or self._readings.dtype != h.dtype:
            raise FormatError(
                f"{where}: member 'readings' must be {h.dtype} {(h.n_patterns, h.N, h.N)}, "
                f"got {self._readings.dtype} {self._readings.shape}"
            )
        self._scale: float | None = None
        if h.patches:
            self._patches = _Member(self._zip, "Y", where)
            if self._patches.shape != (h.n_patterns, h.N, h.N, 1):
                raise FormatError(
                    f"{where}: member 'Y' must be {(h.n_patterns, h.N, h.N, 1)}, "
                    f"got {self._patches.shape}"
                )

    def _init_foreign(self, where: str, meta: dict[str, Any]) -> None:
        key = "diff3d" if "diff3d.npy" in self._names else "diffraction"
        if key + ".npy" not in self._names:
            raise FormatError(
                f"{where}: required member 'diff3d' (or 'diffraction') is missing; not a "
                f"PtychoPINN raw NPZ"
            )
        x, y = self._need("xcoords", where), self._need("ycoords", where)
        xs = self._array("xcoords_start", where)
        ys = self._array("ycoords_start", where)
        probe = self._need("probeGuess", where)
        obj = self._array("objectGuess", where)
        if obj is None:
            raise FormatError(f"{where}: member 'objectGuess' is missing (a Dataset needs one)")
        self._readings = _Member(self._zip, key, where)
        m = self._readings.shape[0]
        if len(self._readings.shape) != 3:
            raise FormatError(
                f"{where}: member {key!r} must be (M, N, N), got {self._readings.shape}"
            )
        n = self._readings.shape[1]
        s = meta.get("intensity_scale")
        self._scale = float(s) if isinstance(s, int | float) and s > 0 else 1.0
        nph = meta.get("nphotons")
        probe = probe[None] if probe.ndim == 2 else probe
        mask = np.ones((n, n), dtype=bool)
        bad = self._array("bad_pixels", where)  # ptychodus' export: True = bad
        if bad is not None:
            if bad.shape != (n, n):
                raise FormatError(f"{where}: member 'bad_pixels' must be {(n, n)}, got {bad.shape}")
            if bad.dtype.kind not in "bui" or not np.isin(bad, (0, 1)).all():
                raise FormatError(
                    f"{where}: member 'bad_pixels' must hold booleans (or 0/1 integers), got "
                    f"{bad.dtype}"
                    + ("" if bad.dtype.kind not in "bui" else " values other than 0/1")
                )
            mask = ~bad.astype(bool)
        try:
            self.header = Header(
                n_patterns=m,
                dtype=np.dtype(np.float32),
                mask=mask,
                positions_true=np.column_stack([x, y]).astype(np.float64),
                positions_nominal=np.column_stack(
                    [x if xs is None else xs, y if ys is None else ys]
                ).astype(np.float64),
                probe=probe.astype(np.complex64),
                object=obj.astype(np.complex64),
                provenance={
                    "source": "PtychoPINN raw NPZ",
                    "file": os.path.basename(where),
                    "metadata": meta,
                },
                photons=float(nph) if isinstance(nph, int | float) else float("nan"),
                intensity_scale=float(s) if isinstance(s, int | float) else float("nan"),
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: {exc}") from None

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        d = self._readings.read(start, stop)
        if self._scale is not None:  # PtychoPINN amplitudes -> photon counts, in place and in
            # pieces (float64 temporaries of _COPY_BYTES, not of the whole block)
            out = d if d.dtype == np.float32 else np.empty(d.shape, np.float32)
            rows = max(1, _COPY_BYTES // max(1, 8 * math.prod(d.shape[1:])))
            for a in range(0, d.shape[0], rows):
                t = d[a : a + rows].astype(np.float64)
                t *= self._scale
                np.square(t, out=t)
                out[a : a + rows] = t
            d = out
        p = None
        if self._patches is not None:
            p = self._patches.read(start, stop)[..., 0]
        return d, p

    def close(self) -> None:
        for m in (getattr(self, "_readings", None), getattr(self, "_patches", None)):
            if m is not None:
                m.close()
        self._zip.close()

"""CXI 1.6 / NeXus ``NXcxi_ptycho`` HDF5 (``.cxi``).

One file: ``/cxi_version`` = 160 and ``/entry_1`` (``definition`` = ``"NXcxi_ptycho"``), SI
units throughout (energies in joules), every node carrying its ``NX_class``.

=========================================== ============== ====================================
path (under ``/entry_1``)                   shape, dtype   content
=========================================== ============== ====================================
``instrument_1/source_1/energy``            () float64     photon energy in **J**
                                                           (``energy_eV · e``), @units "J"
``instrument_1/beam_1/incident_beam_energy``               the same; ``energy`` too
``instrument_1/detector_1/data``            (M, N, N)      photon counts (the readings for
                                                           the ideal detector, else float32
                                                           photon estimates); rows =
                                                           detector y, zero frequency at
                                                           ``[N//2, N//2]`` (as measured, not
                                                           fftshifted back); intensities
``instrument_1/detector_1/distance``        () float64     metres
``instrument_1/detector_1/x_pixel_size``,   () float64     metres
``y_pixel_size``
``instrument_1/detector_1/basis_vectors``   (2, 3) f64     pixel steps in metres, slow axis
                                                           first: rows ``(0, Δ, 0)`` (+y),
                                                           columns ``(Δ, 0, 0)`` (+x)
``instrument_1/detector_1/beam_center_x``,  () float64     ``(N//2) · pixel``, metres
``beam_center_y``
``instrument_1/detector_1/mask``            (N, N) uint32  CXI pixel mask: ``0x1`` = invalid
                                                           (every pixel not in ``mask``), with
                                                           why: hot ``0x4``, dead ``0x8``,
                                                           beamstop (shadowed) ``0x10``, gap
                                                           (missing) ``0x200``; read back:
                                                           any of :data:`PIXEL_EXCLUDED`
``instrument_1/detector_1/translation``     (M, 3) f64     **sample** translation in metres
                                                           ``(−x_m, −y_m, 0)`` (below)
``instrument_1/detector_1/data_1``          link           → ``detector_1/data``
``sample_1/geometry_1/translation``         link           → ``detector_1/translation``
``sample_1/transformations/x``, ``y``       (M,) float64   sample motor positions ``−x_m``,
                                                           ``−y_m``
``data_1/data``, ``data_1/translation``     links          CXI's canonical paths
``data`` (NXdata, @signal = "data",         links          ``data``, ``x``, ``y``
@axes = ["x", ".", "."],
@x_indices = @y_indices = 0)
``image_1/data`` (probe)                    (N, N) or      probe modes (c64), ``image_size``
                                            (P, N, N)      in metres
``image_2/data`` (object)                   (H, W) c64     object, ``image_size`` in metres
``ptychodus/``                              scalars        pixel sizes, object centre (0, 0),
                                                           ``probe_position_indexes``,
                                                           ``probe_photon_count`` = ``photons``
                                                           (when known; read back as it),
                                                           ``exposure_time_s`` (the detector's,
                                                           when it has one)
``ptyfast/``                                group          exact pixel positions, mask,
                                                           provenance, header JSON,
                                                           ``patches``, ``readings``
=========================================== ============== ====================================

**Positions and sign.** As in the ptychodus product, ``x_m = (x − δ − (W−1)/2) · Δ`` and
``y_m = (y − δ − (H−1)/2) · Δ`` (``δ = N//2 − (N−1)/2``, ``Δ`` the object pixel) is where
the probe array's centre ``(N−1)/2`` sits relative to the object array's centre. CXI records
how the **sample** moved, the opposite of the probe's move across it: ``translation = (−x_m,
−y_m, 0)``. cdtools (``get_ptycho_translations`` negates) reads back ``(x_m, y_m)``;
**ptychodus 1.7's CXI reader takes ``translation`` as the probe position without negating**,
so in ptychodus a ptyfast CXI file is point-mirrored about the object centre: use the
``.ptychodus.h5`` pair for ptychodus (tested both ways in ``tests/test_io_readers.py``).
The detector's ``basis_vectors`` put rows along +y and columns along +x, the frame of the
translations; a reader that maps translations to pixels through that basis (cdtools) and
found none would take its default (cdtools: columns along −x, rows along −y) and see the scan
point-mirrored too, reconstructing the twin ``conj(O(−r))`` (``tests/test_format_audit.py``).

Readers: h5py/NeXus tools (structure tested against ``NXcxi_ptycho``), ptychodus' ``CXI``
diffraction and product plugins (patterns, mask, energy, distance, pixel sizes, probe, object
exactly; positions mirrored as above), cdtools, PyNX-style CXI loaders. Needs
``dataset.geometry``.
"""

from __future__ import annotations

import contextlib
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._atomic import atomic_output
from ..model.detector import PIXEL_CODES
from ..model.geometry import Geometry
from . import _h5
from ._common import (
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    exposure_s,
    format_photons,
    metres_to_positions,
    need_geometry,
    photons_dtype,
    positions_to_metres,
    readings_are_photons,
    require,
    require_fits,
    tool_data_attrs,
)

__all__ = [
    "CxiReader",
    "CxiWriter",
    "CXI_VERSION",
    "ELECTRON_CHARGE_C",
    "PIXEL_IS_INVALID",
    "PIXEL_EXCLUDED",
]

#: CXI file-format version 1.6, stored as 160.
CXI_VERSION = 160
#: Elementary charge (exact): joules per electronvolt.
ELECTRON_CHARGE_C = 1.602176634e-19
#: CXI mask bit of an invalid pixel (CXI 1.6, Table 7).
PIXEL_IS_INVALID = 0x1
#: CXI mask bits that exclude a pixel when reading another tool's file: invalid, saturated,
#: hot, dead, shadowed, to be ignored, bad, missing (the CXI pixel-mask bits of Maia 2012
#: that cheetah collects as "in mask", less the hit finder's peak mask 0x20).
PIXEL_EXCLUDED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x40 | 0x80 | 0x200


def _group(parent: Any, name: str, nx_class: str) -> Any:
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _value(h5py: Any, group: Any, name: str, value: Any, units: str | None = None) -> Any:
    if isinstance(value, str):
        ds = group.create_dataset(name, data=value, dtype=h5py.string_dtype("utf-8"))
    else:
        ds = group.create_dataset(name, data=value)
    if units is not None:
        ds.attrs["units"] = units
    return ds


class CxiWriter(BlockWriter):
    """Streaming writer of the CXI / NXcxi_ptycho file (module docstring)."""

    format = "cxi"

    def _open(self, stack: contextlib.ExitStack) -> None:
        h5py = require("h5py")
        h = self.header
        g = need_geometry(h, "CXI", self.path)
        target = stack.enter_context(atomic_output(self.path, overwrite=self.overwrite))
        # the file object, not .path: HDF5 resolves links and cannot create a file through
        # /proc/self/fd/N (what atomic_output gives on Linux for its unnamed file)
        f = h5py.File(target.file, "w")
        stack.callback(f.close)
        m, n = h.n_patterns, h.N
        px, dp = g.object_pixel_m, g.detector_pixel_m
        energy_j = g.energy_eV * ELECTRON_CHARGE_C
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()

        f.create_dataset("cxi_version", data=np.int64(CXI_VERSION))
        f.create_dataset("number_of_entries", data=np.int64(1))
        e = _group(f, "entry_1", "NXentry")
        _value(h5py, e, "definition", "NXcxi_ptycho")
        title = h.provenance.get("name")
        _value(h5py, e, "title", title if isinstance(title, str) else f"ptyfast {self.path.stem}")
        _value(h5py, e, "start_time", now)
        _value(h5py, e, "program_name", f"ptyfast {__version__}")

        ins = _group(e, "instrument_1", "NXinstrument")
        src = _group(ins, "source_1", "NXsource")
        _value(h5py, src, "name", "ptyfast simulation")
        _value(h5py, src, "energy", energy_j, "J")
        _value(h5py, src, "probe", "x-ray")
        _value(h5py, src, "type", "Synchrotron X-ray Source")
        beam = _group(ins, "beam_1", "NXbeam")
        _value(h5py, beam, "energy", energy_j, "J")
        _value(h5py, beam, "incident_beam_energy", energy_j, "J")
        _value(h5py, beam, "incident_energy_spread", 0.0, "J")

        det = _group(ins, "detector_1", "NXdetector")
        det.attrs["signal"] = "data"
        det.attrs["axes"] = "translation:y:x"
        self._data = _h5.create(h5py, det, "data", (m, n, n), photons_dtype(h), self.compress)
        self._data.attrs["axes"] = "translation:y:x"
        for k, v in tool_data_attrs(h).items():
            self._data.attrs[k] = v
        det["data_1"] = self._data
        _value(h5py, det, "distance", g.distance_m, "m")
        _value(h5py, det, "x_pixel_size", dp, "m")
        _value(h5py, det, "y_pixel_size", dp, "m")
        # rows along +y, columns along +x (slow axis first): the frame of the translations;
        # without it CXI readers that use a basis (cdtools) assume columns along -x
        _value(h5py, det, "basis_vectors", np.array([[0.0, dp, 0.0], [dp, 0.0, 0.0]]), "m")
        _value(h5py, det, "beam_center_x", (n // 2) * dp, "m")
        _value(h5py, det, "beam_center_y", (n // 2) * dp, "m")
        det.create_dataset("mask", data=_cxi_mask(h))
        tr = _group(det, "transformations", "NXtransformations")
        _value(h5py, tr, "vector", np.array([0.0, 0.0, 1.0]))
        x_m, y_m = positions_to_metres(h.positions_true, n, h.object.shape, px)
        translation = np.column_stack([-x_m, -y_m, np.zeros(m)])
        t = _value(h5py, det, "translation", translation, "m")
        t.attrs["axes"] = "translation:x:y:z"
        t.attrs["interpretation"] = "image"
        t.attrs["ptyfast_sign"] = (
            "sample translation = -(probe position): probe array centre (N-1)/2 at "
            "(x_m, y_m) = -translation[:, :2] relative to the object array centre"
        )

        sample = _group(e, "sample_1", "NXsample")
        _value(h5py, sample, "name", "ptyfast object")
        geom = _group(sample, "geometry_1", "NXcollection")
        geom["translation"] = t
        st = _group(sample, "transformations", "NXtransformations")
        sx = _value(h5py, st, "x", -x_m, "m")
        sy = _value(h5py, st, "y", -y_m, "m")
        sx.attrs["vector"] = np.array([1.0, 0.0, 0.0])
        sy.attrs["vector"] = np.array([0.0, 1.0, 0.0])
        for ds in (sx, sy):
            ds.attrs["transformation_type"] = "translation"
            ds.attrs["depends_on"] = "."

        d1 = _group(e, "data_1", "NXcollection")
        d1["data"] = self._data
        d1["translation"] = t
        nxd = _group(e, "data", "NXdata")
        nxd.attrs["signal"] = "data"
        nxd.attrs["axes"] = np.array(["x", ".", "."], dtype=h5py.string_dtype())
        nxd["data"] = self._data
        nxd["x"] = sx
        nxd["y"] = sy
        nxd.attrs["x_indices"] = np.int64(0)  # NeXus: attributes of the group, integers
        nxd.attrs["y_indices"] = np.int64(0)

        for name, arr, axes, kind in (
            ("image_1", _h5.probe_array(h.probe), "mode:y:x", "probe"),
            ("image_2", h.object, "y:x", "object"),
        ):
            img = _group(e, name, "NXdata")
            ds = img.create_dataset("data", data=arr)
            ds.attrs["axes"] = axes if arr.ndim == 3 or kind == "object" else "y:x"
            _value(h5py, img, "data_type", kind)
            _value(h5py, img, "data_space", "real")
            size = np.array([arr.shape[-1] * px, arr.shape[-2] * px, 0.0])
            _value(h5py, img, "image_size", size, "m")
        src["illumination"] = e["image_1/data"]

        pt = _group(e, "ptychodus", "NXcollection")
        for key, value in (
            ("probe_pixel_width_m", px),
            ("probe_pixel_height_m", px),
            ("object_pixel_width_m", px),
            ("object_pixel_height_m", px),
            ("object_center_x_m", 0.0),
            ("object_center_y_m", 0.0),
        ):
            _value(h5py, pt, key, value)
        pt.create_dataset("probe_position_indexes", data=np.arange(m, dtype=np.int64))
        if np.isfinite(h.photons):
            _value(h5py, pt, "probe_photon_count", h.photons)
        if (t_exp := exposure_s(h.detector)) > 0:
            _value(h5py, pt, "exposure_time_s", t_exp)
        self._extra = _h5.write_ptyfast(h5py, e, h, compress=self.compress)

    def _write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None) -> None:
        stop = start + diffraction.shape[0]
        self._data[start:stop] = format_photons(diffraction, self.header.detector)
        if "readings" in self._extra:
            self._extra["readings"][start:stop] = diffraction
        if patches is not None:
            self._extra["patches"][start:stop] = patches


#: CXI bits (Maia 2012) saying why a pixel of a ptyfast detector is invalid.
_CXI_BITS = {"hot": 0x4, "dead": 0x8, "beamstop": 0x10, "gap": 0x200}


def _cxi_mask(h: Header) -> np.ndarray:
    """The CXI pixel mask: ``0x1`` on every invalid pixel (``~h.mask``), with the bit for
    why (hot, dead, shadowed by the beamstop, missing in a gap) from the detector's map."""
    mask = np.where(h.mask, 0, PIXEL_IS_INVALID).astype(np.uint32)
    pixel_map = getattr(h.detector, "pixel_map", None)
    if pixel_map is not None:
        codes = pixel_map(h.N)
        for name, bit in _CXI_BITS.items():
            mask[((codes & PIXEL_CODES[name]) != 0) & ~h.mask] |= bit
    return mask


def _scalar(f: Any, path: str, where: str) -> float:
    v = _h5.read(f, path, where)
    try:
        return float(np.asarray(v).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise FormatError(f"{where}: {path} must be a number, got {v!r}") from None


class CxiReader(BlockReader):
    """Reader of :class:`CxiWriter`'s files (and of plain CXI ptychography files)."""

    format = "cxi"

    def __init__(self, path: Path) -> None:
        h5py = require("h5py")
        super().__init__(path)
        where = os.fspath(path)
        try:
            self._f = h5py.File(path, "r")
        except OSError as exc:
            raise FormatError(f"{where} is not a readable HDF5 file: {exc}") from None
        try:
            self._init(where)
        except BaseException:
            self._f.close()
            raise

    def _init(self, where: str) -> None:
        f = self._f
        if "entry_1" not in f:
            raise FormatError(f"{where}: group /entry_1 is missing; not a CXI file")
        e = f["entry_1"]
        data = e.get("data_1/data") or e.get("instrument_1/detector_1/data")
        if data is None or getattr(data, "ndim", 0) != 3:
            raise FormatError(f"{where}: field /entry_1/data_1/data (M, N, N) is missing")
        self.compressed = data.compression is not None
        arrays = {
            "probe": _h5.probe_from(_h5.read(e, "image_1/data", where), where),
            "object": _h5.object_from(_h5.read(e, "image_2/data", where), where),
        }
        self._data, self._patches = data, None
        if "ptyfast" in e:
            g = e["ptyfast"]
            self.header = _h5.read_ptyfast(g, arrays, where)
            h = self.header
            if not readings_are_photons(h.detector):
                self._data = g.get("readings")
                if self._data is None:
                    raise FormatError(f"{where}: field /entry_1/ptyfast/readings is missing")
            if h.patches:
                self._patches = g.get("patches")
                if self._patches is None:
                    raise FormatError(f"{where}: field /entry_1/ptyfast/patches is missing")
        else:
            self.header = self._foreign(e, data, arrays, where)
        h = self.header
        want = (h.n_patterns, h.N, h.N)
        if self._data.shape != want or self._data.dtype != h.dtype:
            raise FormatError(
                f"{where}: data must be {h.dtype} {want}, got {self._data.dtype} {self._data.shape}"
            )

    def _foreign(self, e: Any, data: Any, arrays: dict[str, Any], where: str) -> Header:
        """A CXI file not written by ptyfast: sample translations → probe positions."""
        m, n, _ = data.shape
        t = e.get("data_1/translation") or e.get("sample_1/geometry_1/translation")
        if t is None:
            raise FormatError(f"{where}: field /entry_1/data_1/translation is missing")
        if getattr(t, "shape", None) is not None:
            require_fits(where, "field translation", t.shape, np.float64)
        t = np.asarray(t[()], dtype=np.float64)
        if t.shape != (m, 3):
            raise FormatError(f"{where}: translation must be (M, 3) = ({m}, 3), got {t.shape}")
        det = "instrument_1/detector_1/"
        pix = _scalar(e, det + "x_pixel_size", where)
        try:
            geometry = Geometry(
                energy_eV=_scalar(e, "instrument_1/source_1/energy", where) / ELECTRON_CHARGE_C,
                distance_m=_scalar(e, det + "distance", where),
                detector_pixel_m=pix,
                N=n,
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: {exc}") from None
        px = geometry.object_pixel_m
        pos = metres_to_positions(-t[:, 0], -t[:, 1], n, arrays["object"].shape, (px, px))
        mask = np.ones((n, n), dtype=bool)
        if det + "mask" in e:
            mask = (np.asarray(_h5.read(e, det + "mask", where)) & PIXEL_EXCLUDED) == 0
        photons = float("nan")  # ptychodus' extension (what ptyfast writes there: photons)
        if "ptychodus/probe_photon_count" in e:
            count = _scalar(e, "ptychodus/probe_photon_count", where)
            photons = count if math.isfinite(count) and count > 0 else photons
        try:
            return Header(
                n_patterns=m,
                dtype=data.dtype,
                mask=mask,
                positions_nominal=pos,
                positions_true=pos.copy(),
                probe=arrays["probe"],
                object=arrays["object"],
                provenance={"source": "CXI file", "file": os.path.basename(where)},
                geometry=geometry,
                photons=photons,
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: {exc}") from None

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        d = np.asarray(self._data[start:stop])
        p = None if self._patches is None else np.asarray(self._patches[start:stop])
        return d, p

    def close(self) -> None:
        self._f.close()

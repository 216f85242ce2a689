"""ptychodus product HDF5 plus the diffraction file ptychodus reads beside it.

Written for a path ending in ``.ptychodus.h5`` (or ``.h5``, ``.hdf5``): the **product**
there, and the **diffraction file** beside it with the ending replaced by
``.diffraction.h5`` (``run.ptychodus.h5`` → ``run.diffraction.h5``). They are ptychodus'
standard pair (its ``product.h5`` / ``diffraction.h5``: ``ptychodus.api.io.load_product``,
``load_diffraction_data``; the ``HDF5`` product plugin). Each file appears atomically; the
diffraction file is moved into place first, so a product never lacks its patterns. Both are
synced before either moves, and Ctrl-C (``SIGTERM``, ``SIGHUP``) is held off between the two
moves: an interrupted write leaves one whole pair, old or new (or none), never half of each.

**Product** (``ptychodus.api.io.save_product``'s layout):

=============================== ============== ==============================================
field                           shape, dtype   content
=============================== ============== ==============================================
``@name``, ``@comments``        str            provenance ``name`` (else the file stem); how
                                               positions are placed
``@detector_object_distance_m`` float          ``geometry.distance_m``
``@photon_energy_eV``           float          ``geometry.energy_eV`` (also the legacy
(``@probe_energy_eV``)                         ``probe_energy_eV`` older readers use)
``@probe_photon_count``         float          ``photons`` (0 when unknown)
``@exposure_time_s``            float          ``detector.exposure_s`` (0 when unknown)
``@tilt_angle_deg`` & co.       float          0 (not simulated)
``probe_position_indexes``      (M,) int64     ``0 .. M−1``: ptychodus pairs positions with
                                               patterns **by index** (equal indexes are
                                               averaged, so PtychoPINN's all-zero
                                               ``scan_index`` would collapse the scan)
``probe_position_x_m``,         (M,) float64   true positions in metres: the probe array's
``probe_position_y_m``                         centre ``(N−1)/2`` lands there; ``+x`` =
                                               object columns, ``+y`` = rows
``probe`` @pixel_width_m,       (N, N) or      the probe (modes on the first axis);
@pixel_height_m                 (P, N, N) c64  pixel = ``geometry.object_pixel_m``
``object`` @center_x_m = 0,     (H, W) c64     the object; its array centre ``((W−1)/2,
@center_y_m = 0, @pixel_*_m                    (H−1)/2)`` is the origin of the positions
``object_layer_spacing_m``,     (0,)           empty (one layer, no history)
``loss_*``
``ptyfast/``                    group          exact pixel positions (true and nominal),
                                               mask, provenance and the header as JSON,
                                               ``patches``, ``readings`` (when the patterns
                                               are photon estimates, not the readings)
``raw_data/`` (``raw_data=True``) group        PtychoPINN's bundle: ``diffraction``
                                               (amplitudes ``sqrt(photons)/s``, "NHW"),
                                               ``xcoords``/``ycoords`` (pixels),
                                               ``scan_index``, ``probeGuess``/``objectGuess``
                                               (links), ``_metadata``
=============================== ============== ==============================================

**Dose and probe scale.** ``@probe_photon_count`` is ptyfast's ``photons``: the mean
number of photons per pattern reaching the detector (PtychoPINN's ``nphotons``), i.e.
``s² · mean_i Σ_k Σ |P_k · patch_i|²`` with ``s`` = ``intensity_scale``. ptychodus reads it as
the probe's total intensity (its probe builder rescales a new probe to it, its pty-chi
backend sets ``probe_power`` from it), which is ``s² · Σ_k Σ |P_k|²``: the same number
when the object transmits fully under the probe (``|O| = 1``, a phase object), larger by
the inverse mean transmission ``|O|²`` under the probe otherwise. ptychodus' own estimate
(the brightest pattern's total counts) has the same bias. The ``probe`` is stored as
simulated, not in photons (a stack of modes has unit total intensity; one mode any norm):
``s · probe`` is the probe in √photons for a unitary FFT, and ptychodus' Fresnel forward
model scales the patterns differently again (tested up to that one global factor).

The positions, as the issue asks, mean the same physical point in both tools. With
``δ = N//2 − (N−1)/2`` (½ for even ``N``):
``x_m = (x − δ − (W−1)/2) · Δ`` and ``y_m = (y − δ − (H−1)/2) · Δ``, so ptychodus' own
mapping ``(x_m − center_x_m)/Δ + (W−1)/2`` gives the ptychodus pixel ``x − δ``, whose
``(N−1)/2``-centred window is ptyfast's ``N//2``-sampled patch (tested with ptychodus'
``ObjectGeometry`` and ``BarycentricArrayInterpolator``). PtychoPINN's exporter leaves
``center_x_m = 0`` with pixel positions × Δ, which moves every position by half the object,
and ignores the half pixel.

**Diffraction file** (``ptychodus.api.io.save_diffraction_data``'s layout):

========================= ================ =================================================
``patterns``              (M, N, N)        photon counts (the readings for the ideal
@detector_pixel_width_m,                   detector, else float32 photon estimates
@detector_pixel_height_m                   ``readings_to_photons``); zero frequency at
                                           ``[N//2, N//2]``, intensities, not amplitudes
``indexes``               (M,) int64       ``0 .. M−1``
``bad_pixels``            (N, N) bool      ``~mask`` (``True`` = bad)
========================= ================ =================================================

Options: ``raw_data=True`` adds PtychoPINN's ``/raw_data`` bundle to the product (it
duplicates the patterns as amplitudes: twice the size; a bool: ``True``/``False``,
``numpy.bool_``, 0 or 1). Needs ``dataset.geometry``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._atomic import HeldSignals, atomic_output, file_lock, hidden_sibling
from .._kernels import _flag
from ..model.geometry import Geometry
from . import _h5
from ._common import (
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    amplitudes,
    dumps,
    exposure_s,
    finite_or_none,
    format_photons,
    half_pixel,
    metres_to_positions,
    need_geometry,
    need_intensity_scale,
    photons_dtype,
    positions_to_metres,
    ptychodus_paths,
    readings_are_photons,
    require,
    tool_data_attrs,
)

__all__ = ["PtychodusReader", "PtychodusWriter", "diffraction_path"]


def diffraction_path(path: str | os.PathLike[str]) -> Path:
    """The diffraction file written beside the product ``path`` (``*.diffraction.h5``)."""
    return ptychodus_paths(path)[1]


class PtychodusWriter(BlockWriter):
    """Streaming writer of the ptychodus product + diffraction pair (module docstring)."""

    format = "ptychodus"

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        raw = _flag("raw_data", options.pop("raw_data", False))
        super()._check_options(options)
        return {"raw_data": raw}

    @property
    def paths(self) -> list[Path]:
        return list(ptychodus_paths(self.path))

    def _open(self, stack: contextlib.ExitStack) -> None:
        h5py = require("h5py")
        h = self.header
        g = need_geometry(h, "ptychodus", self.path)
        raw = self.options["raw_data"]
        s = need_intensity_scale(h, self.path, "raw_data/diffraction amplitudes") if raw else 1.0
        self._s = s
        product, diffraction = ptychodus_paths(self.path)
        held = HeldSignals()
        stack.callback(held.release)  # exits last: a Ctrl-C held off is raised here
        # The pair's lock, taken before the two moves and released after both (the stack
        # exits in reverse): another writer of the same pair (a thread or a process) moves its
        # two files before or after, never between, so the pair on disk is one writer's.
        moving = contextlib.ExitStack()
        stack.callback(moving.close)
        pt = stack.enter_context(atomic_output(product, overwrite=self.overwrite))
        dt = stack.enter_context(atomic_output(diffraction, overwrite=self.overwrite))

        def before_commit(exc_type: Any, exc: Any, tb: Any) -> bool:
            """On success, once both files are closed: sync both (interruptible), then hold
            off Ctrl-C and take the pair's lock while the two are moved into place one after
            the other, so the pair on disk is never half old, half new (or a diffraction file
            without its product), nor half another writer's."""
            if exc_type is None:
                for t in (pt, dt):
                    t.file.flush()
                    os.fsync(t.file.fileno())
                held.hold()
                lock = hidden_sibling(product, ".ptyfast-lock")  # a name within the limit
                moving.enter_context(file_lock(lock, wait=True))
            return False

        stack.push(before_commit)
        pf = h5py.File(pt.file, "w")  # file objects: HDF5 cannot use /proc/self/fd paths
        stack.callback(pf.close)
        df = h5py.File(dt.file, "w")
        stack.callback(df.close)
        m, n = h.n_patterns, h.N
        self._photons = not readings_are_photons(h.detector)

        # diffraction file
        self._patterns = _h5.create(
            h5py, df, "patterns", (m, n, n), photons_dtype(h), self.compress
        )
        self._patterns.attrs["detector_pixel_width_m"] = g.detector_pixel_m
        self._patterns.attrs["detector_pixel_height_m"] = g.detector_pixel_m
        for k, v in tool_data_attrs(h).items():
            self._patterns.attrs[k] = v
        df.create_dataset("indexes", data=np.arange(m, dtype=np.int64))
        df.create_dataset("bad_pixels", data=~h.mask)

        # product
        px = g.object_pixel_m
        name = h.provenance.get("name")
        pf.attrs["name"] = name if isinstance(name, str) else product.name.split(".")[0]
        d = half_pixel(n)
        pf.attrs["comments"] = (
            f"simulated by ptyfast {__version__}; patterns in {diffraction.name}; positions "
            f"place the probe array centre (N-1)/2 on the object, whose array centre is at "
            f"(0, 0) m; ptyfast pixel position = ptychodus pixel + {d:g}"
        )
        pf.attrs["detector_object_distance_m"] = g.distance_m
        pf.attrs["photon_energy_eV"] = g.energy_eV
        pf.attrs["probe_energy_eV"] = g.energy_eV
        pf.attrs["probe_photon_count"] = finite_or_none(h.photons) or 0.0
        pf.attrs["exposure_time_s"] = exposure_s(h.detector)
        for key in (
            "mass_attenuation_m2_per_kg",
            "tomography_angle_deg",
            "focus_object_distance_m",
            "tilt_angle_deg",
        ):
            pf.attrs[key] = 0.0
        pf.attrs["far_field"] = True
        x_m, y_m = positions_to_metres(h.positions_true, n, h.object.shape, px)
        pf.create_dataset("probe_position_indexes", data=np.arange(m, dtype=np.int64))
        pf.create_dataset("probe_position_x_m", data=x_m)
        pf.create_dataset("probe_position_y_m", data=y_m)
        probe = pf.create_dataset("probe", data=_h5.probe_array(h.probe))
        probe.attrs["pixel_width_m"] = px
        probe.attrs["pixel_height_m"] = px
        obj = pf.create_dataset("object", data=h.object)
        obj.attrs["center_x_m"] = 0.0
        obj.attrs["center_y_m"] = 0.0
        obj.attrs["pixel_width_m"] = px
        obj.attrs["pixel_height_m"] = px
        pf.create_dataset("object_layer_spacing_m", data=np.zeros(0, dtype=np.float64))
        pf.create_dataset("loss_epochs", data=np.zeros(0, dtype=np.int64))
        pf.create_dataset("loss_values", data=np.zeros(0, dtype=np.float64))
        self._extra = _h5.write_ptyfast(
            h5py, pf, h, compress=self.compress, diffraction_file=diffraction.name
        )
        self._raw = None
        if raw:
            pf.attrs["bundle_version"] = "1.0"
            pf.attrs["contains_raw_data"] = 1
            rd = pf.create_group("raw_data")
            self._raw = _h5.create(h5py, rd, "diffraction", (m, n, n), np.float32, self.compress)
            self._raw.attrs["axis_canonical"] = "NHW"
            self._raw.attrs["original_axis_order"] = "NHW"
            rd.create_dataset("xcoords", data=h.positions_true[:, 0].astype(np.float64))
            rd.create_dataset("ycoords", data=h.positions_true[:, 1].astype(np.float64))
            rd.create_dataset("scan_index", data=np.zeros(m, dtype=np.int64))
            if h.n_modes == 1:
                rd["probeGuess"] = probe
            else:
                rd.create_dataset("probeGuess", data=h.probe[0])
            rd["objectGuess"] = obj
            _h5.write_text(
                h5py,
                rd,
                "_metadata",
                dumps({"nphotons": finite_or_none(h.photons), "intensity_scale": s}),
            )

    def _write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None) -> None:
        stop = start + diffraction.shape[0]
        det = self.header.detector
        self._patterns[start:stop] = format_photons(diffraction, det)
        if "readings" in self._extra:
            self._extra["readings"][start:stop] = diffraction
        if patches is not None:
            self._extra["patches"][start:stop] = patches
        if self._raw is not None:
            self._raw[start:stop] = amplitudes(diffraction, det, self._s)


def _product_for(diffraction: Path) -> Path | None:
    name = diffraction.name
    if not name.endswith(".diffraction.h5"):
        return None
    stem = name[: -len(".diffraction.h5")]
    for suffix in (".ptychodus.h5", ".ptychodus.hdf5", ".h5", ".hdf5"):
        p = diffraction.with_name(stem + suffix)
        if p.is_file():
            return p
    return None


class PtychodusReader(BlockReader):
    """Reader of the pair (from either file's path; the other is found beside it)."""

    format = "ptychodus"

    def __init__(self, path: Path) -> None:
        h5py = require("h5py")
        super().__init__(path)
        self._files: list[Any] = []
        try:
            self._init(h5py, path)
        except BaseException:
            self.close()
            raise

    def _open(self, h5py: Any, path: Path) -> Any:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise FormatError(f"{os.fspath(path)} is not a readable HDF5 file: {exc}") from None
        self._files.append(f)
        return f

    def _init(self, h5py: Any, path: Path) -> None:
        f = self._open(h5py, path)
        if "probe_position_x_m" not in f:
            if "patterns" in f and "bad_pixels" in f:
                product = _product_for(path)
                if product is None:
                    raise FormatError(
                        f"{os.fspath(path)} is a ptychodus diffraction file; its product "
                        f"(*.ptychodus.h5 beside it) is missing: open the product instead"
                    )
                f.close()
                self._files.clear()
                path = product
                f = self._open(h5py, path)
            else:
                raise FormatError(f"{os.fspath(path)}: field probe_position_x_m is missing")
        pw = os.fspath(path)
        rel = f["ptyfast"].attrs.get("diffraction_file") if "ptyfast" in f else None
        if isinstance(rel, bytes):
            rel = rel.decode()
        dpath = path.with_name(rel) if isinstance(rel, str) else ptychodus_paths(path)[1]
        if not dpath.is_file():
            raise FormatError(f"{pw}: its diffraction file {os.fspath(dpath)} is missing")
        df = self._open(h5py, dpath)
        dw = os.fspath(dpath)
        self.path, self.paths = path, [path, dpath]
        patterns = df.get("patterns")
        if patterns is None or getattr(patterns, "ndim", 0) != 3:
            raise FormatError(f"{dw}: field patterns (M, N, N) is missing")
        self.compressed = patterns.compression is not None
        arrays = {
            "probe": _h5.probe_from(_h5.read(f, "probe", pw), pw),
            "object": _h5.object_from(_h5.read(f, "object", pw), pw),
        }
        self._patches = None
        self._data = patterns
        if "ptyfast" in f:
            g = f["ptyfast"]
            self.header = _h5.read_ptyfast(g, arrays, pw)
            h = self.header
            if not readings_are_photons(h.detector):
                self._data = g.get("readings")
                if self._data is None:
                    raise FormatError(f"{pw}: field /ptyfast/readings is missing")
            if h.patches:
                self._patches = g.get("patches")
                if self._patches is None:
                    raise FormatError(f"{pw}: field /ptyfast/patches is missing")
        else:
            self.header = self._foreign(f, df, patterns, arrays, pw, dw)
        h = self.header
        want = (h.n_patterns, h.N, h.N)
        if self._data.shape != want or self._data.dtype != h.dtype:
            raise FormatError(
                f"{dw}: patterns must be {h.dtype} {want}, got {self._data.dtype} "
                f"{self._data.shape}"
            )

    def _foreign(
        self, f: Any, df: Any, patterns: Any, arrays: dict[str, Any], pw: str, dw: str
    ) -> Header:
        """A product not written by ptyfast: positions from metres, geometry from attributes."""
        m, n, n2 = patterns.shape
        idx_p = np.asarray(_h5.read(f, "probe_position_indexes", pw))
        idx_d = np.asarray(_h5.read(df, "indexes", dw))
        if idx_p.shape != (m,) or not np.array_equal(idx_p, idx_d):
            raise FormatError(
                f"{pw}: probe_position_indexes must list the diffraction file's indexes in "
                f"the same order ({m} patterns) for ptyfast to pair them"
            )
        obj = f["object"]
        energy = f.attrs.get("photon_energy_eV", f.attrs.get("probe_energy_eV"))
        if energy is None:
            raise FormatError(f"{pw}: attribute @photon_energy_eV is missing")
        pix = float(_h5.attr(patterns, "detector_pixel_width_m", dw))
        try:
            geometry = Geometry(
                energy_eV=float(energy),
                distance_m=float(_h5.attr(f, "detector_object_distance_m", pw)),
                detector_pixel_m=pix,
                N=n,
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{pw}: {exc}") from None
        pos = metres_to_positions(
            _h5.read(f, "probe_position_x_m", pw),
            _h5.read(f, "probe_position_y_m", pw),
            n,
            arrays["object"].shape,
            (float(_h5.attr(obj, "pixel_width_m", pw)), float(_h5.attr(obj, "pixel_height_m", pw))),
            (float(_h5.attr(obj, "center_x_m", pw)), float(_h5.attr(obj, "center_y_m", pw))),
        )
        photons = float(f.attrs.get("probe_photon_count", 0.0))
        try:
            return Header(
                n_patterns=m,
                dtype=patterns.dtype,
                mask=~np.asarray(_h5.read(df, "bad_pixels", dw), dtype=bool),
                positions_nominal=pos,
                positions_true=pos.copy(),
                probe=arrays["probe"],
                object=arrays["object"],
                provenance={
                    "source": "ptychodus product",
                    "files": [os.path.basename(pw), os.path.basename(dw)],
                },
                geometry=geometry,
                photons=photons if photons > 0 else float("nan"),
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{pw}: {exc}") from None

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        d = np.asarray(self._data[start:stop])
        p = None if self._patches is None else np.asarray(self._patches[start:stop])
        return d, p

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

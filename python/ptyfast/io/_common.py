"""What every format shares: the header, extensions, conversions, placement, block writing.

Nothing here imports h5py or zarr; the format modules import them inside functions.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import numbers
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from .. import __version__
from .._atomic import check_output_path, check_path, naming_path
from .._kernels import _flag, require_memory
from ..model.dataset import Dataset
from ..model.geometry import Geometry

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FormatError",
    "Header",
    "amplitudes",
    "format_from_path",
]

_F32_MAX = float(np.finfo(np.float32).max)

#: Format names, in the order the docs list them.
FORMATS: tuple[str, ...] = ("npz", "ptychodus", "cxi", "zarr")

#: Path endings and the format each selects (longest match first).
EXTENSIONS: tuple[tuple[str, str], ...] = (
    (".ptychodus.h5", "ptychodus"),
    (".ptychodus.hdf5", "ptychodus"),
    (".npz", "npz"),
    (".h5", "ptychodus"),
    (".hdf5", "ptychodus"),
    (".cxi", "cxi"),
    (".zarr", "zarr"),
)

#: Version of the ``ptyfast`` block every format carries (bumped on incompatible changes).
LAYOUT_VERSION = 1

#: Patterns per block when a caller does not choose (``convert``, ``save``): about 16 MiB.
BLOCK_BYTES = 1 << 24


class FormatError(ValueError):
    """A file cannot be written or read as asked; the message names the file and the field."""


#: What h5py, zarr, zipfile and NumPy raise on corrupt content (a :class:`FormatError`, itself
#: a ``ValueError``, is let through by the readers before they catch these).
CORRUPT = (OSError, RuntimeError, KeyError, EOFError, ValueError)


def require_fits(where: str, name: str, shape: tuple[int, ...], dtype: Any) -> None:
    """Refuse to read an array the file declares as ``shape`` of ``dtype`` when it cannot
    fit in the available memory (:func:`ptyfast._kernels.require_memory`), before anything
    is allocated: a :class:`FormatError` naming the file (``where``) and the field."""
    nbytes = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    try:
        require_memory(f"{where}: {name} {tuple(shape)} {np.dtype(dtype)}", nbytes)
    except ValueError as exc:
        raise FormatError(str(exc)) from None


def unreadable(where: str, what: str, exc: BaseException) -> FormatError:
    """The :class:`FormatError` for corrupt content that a library rejected with ``exc``."""
    return FormatError(f"{where}: corrupt or unreadable {what} ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------------------- extensions


def format_from_path(path: str | os.PathLike[str], format: str | None = None) -> str:  # noqa: A002
    """The format a path selects: ``format`` when given, else from the extension.

    Parameters
    ----------
    path : str or os.PathLike
        Output path.
    format : {"npz", "ptychodus", "cxi", "zarr"} or None
        Explicit choice (overrides the extension).

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike`` (bytes included).
    ValueError
        ``format`` is not a known format, or ``path`` has no known extension (the message
        lists the known ones), or contains a NUL character.

    Examples
    --------
    >>> format_from_path("run.ptychodus.h5"), format_from_path("run.zarr/")
    ('ptychodus', 'zarr')
    >>> format_from_path("run.dat", "npz")
    'npz'
    """
    path = check_path(path)
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}")
        return format
    name = path.rstrip("/" + os.sep).lower()
    for suffix, fmt in EXTENSIONS:
        if name.endswith(suffix):
            return fmt
    known = ", ".join(f"{s} ({f})" for s, f in EXTENSIONS)
    raise ValueError(
        f"cannot tell the format of {path!r} from its extension; known: {known}; "
        f"or pass format= (--format) one of {list(FORMATS)}"
    )


def ptychodus_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(product, diffraction)`` paths of a ptychodus pair written for ``path``.

    The diffraction file is the product's name with its ``.ptychodus.h5`` (or ``.h5``,
    ``.hdf5``) ending replaced by ``.diffraction.h5``: ``run.ptychodus.h5`` →
    ``run.diffraction.h5``.
    """
    p = Path(path)
    name = p.name
    for suffix in (".ptychodus.h5", ".ptychodus.hdf5", ".h5", ".hdf5"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p, p.with_name(name + ".diffraction.h5")


# ---------------------------------------------------------------------------- lazy imports

_EXTRAS = {"h5py": "hdf5", "zarr": "zarr", "xarray": "zarr"}


def require(module: str) -> ModuleType:
    """Import an optional dependency, or say which ptyfast extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module, module)
        raise ImportError(
            f"this format needs the optional package {module!r}: "
            f"pip install 'ptyfast[{extra}]' (or pip install {module})"
        ) from exc


# ---------------------------------------------------------------------------- JSON


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return os.fspath(o)
    raise TypeError(f"provenance value of type {type(o).__name__} is not JSON-serialisable")


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` (NumPy scalars and arrays become numbers and lists)."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def loads(text: Any, *, where: str) -> Any:
    """Parse JSON text (``str`` or ``bytes``); errors name ``where``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if isinstance(text, np.ndarray):
        text = str(text.reshape(-1)[0]) if text.size else ""
    try:
        return json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where} is not valid JSON: {exc}") from None


def finite_or_none(v: float) -> float | None:
    """``v`` when finite, else ``None`` (JSON has no NaN)."""
    return float(v) if math.isfinite(v) else None


def float_or_nan(v: Any) -> float:
    """Inverse of :func:`finite_or_none`."""
    return float("nan") if v is None else float(v)


# ---------------------------------------------------------------------------- detector


def detector_dict(detector: Any) -> dict[str, Any] | None:
    """The detector's ``to_dict()`` (a dict is kept as it is; ``None`` stays ``None``)."""
    if detector is None or isinstance(detector, dict):
        return detector
    to_dict = getattr(detector, "to_dict", None)
    if to_dict is None:
        raise TypeError(
            f"dataset.detector must have to_dict() (a ptyfast.Detector), got "
            f"{type(detector).__name__}"
        )
    d = to_dict()
    if not isinstance(d, dict):
        raise TypeError(f"detector.to_dict() must return a dict, got {type(d).__name__}")
    return d


def detector_from_dict(d: dict[str, Any] | None) -> Any:
    """A ``ptyfast.Detector`` rebuilt from its dict; the dict itself when the class is absent."""
    if d is None:
        return None
    try:
        module = importlib.import_module("ptyfast.model.detector")
    except ImportError:
        return dict(d)
    cls = getattr(module, "Detector", None)
    return dict(d) if cls is None else cls.from_dict(d)


def readings_are_photons(detector: Any) -> bool:
    """Whether the readings are photon counts as they stand (no conversion needed).

    ``True`` without a detector and for the ideal one (``Detector.is_ideal``: photon counts,
    no gain, offset, noise or quantisation of its own); otherwise ``False``, and formats whose
    readers expect photon counts store ``readings_to_photons(readings)`` beside the exact
    readings.
    """
    if detector is None or isinstance(detector, dict):
        return True
    return bool(getattr(detector, "is_ideal", False))


def readings_to_photons(readings: np.ndarray, detector: Any) -> np.ndarray:
    """The detected-photon estimate of ``readings`` (the readings themselves without a detector)."""
    if readings_are_photons(detector):
        return readings
    return np.asarray(detector.readings_to_photons(readings))


def format_photons(readings: np.ndarray, detector: Any) -> np.ndarray:
    """:func:`readings_to_photons` for a format that stores them in :func:`photons_dtype`:
    converted photons must fit float32.

    Raises
    ------
    ValueError
        Converted photons beyond the float32 range (a gain far below 1 ADU per photon).
    """
    photons = readings_to_photons(readings, detector)
    if photons is not readings and photons.size:
        top = float(np.abs(photons).max())
        if top > _F32_MAX:
            raise ValueError(
                f"readings must convert to photons within float32 (the format stores photon "
                f"counts as float32, <= {_F32_MAX:.6g}), got photons up to {top:.6g} (detector "
                f"gain {detector.gain:g})"
            )
    return photons


def exposure_s(detector: Any) -> float:
    """The detector's exposure time in seconds (``Detector.exposure_s``), 0 when unknown."""
    v = getattr(detector, "exposure_s", None)
    if v is None and isinstance(detector, dict):
        v = detector.get("exposure_s")
    return float(v) if isinstance(v, int | float) and math.isfinite(v) and v > 0 else 0.0


def photons_dtype(header: Header) -> np.dtype:
    """The dtype of :func:`readings_to_photons` for this header (float32 for a conversion)."""
    return header.dtype if readings_are_photons(header.detector) else np.dtype(np.float32)


def amplitudes(readings: np.ndarray, detector: Any, intensity_scale: float) -> np.ndarray:
    """PtychoPINN's ``diff3d``: ``sqrt(photons) / s`` in float32 (README, "Units").

    ``photons = readings_to_photons(readings)`` (negative estimates count as 0). The square
    root is taken in float64 and rounded to float32 (for integer counts below 2**24 this is
    the float32 square root), then divided by ``float32(s)`` in float32: exactly what the
    fused kernel stores with ``divide_by_scale=True``, so an ideal-detector dataset gives
    ``RawData.from_simulation``'s ``diff3d`` bit for bit. ``detector`` (a
    :class:`~ptyfast.Detector`; None: the ``readings`` are photon counts) converts the
    readings; ``s = intensity_scale``, a positive finite real number.

    Raises
    ------
    TypeError, ValueError
        ``readings`` not a real array, or larger than the available memory (before any
        allocation); ``intensity_scale`` not a real number, or not positive and finite;
        amplitudes beyond float32.
    """
    if isinstance(intensity_scale, bool) or not isinstance(intensity_scale, numbers.Real):
        raise TypeError(
            "intensity_scale must be a positive finite real number, got "
            f"{type(intensity_scale).__name__} {intensity_scale!r}"
        )
    try:
        s = float(intensity_scale)
    except OverflowError:  # an integer beyond float64
        s = math.inf
    if not (math.isfinite(s) and s > 0):
        raise ValueError(
            f"intensity_scale must be a positive finite real number, got {intensity_scale!r}"
        )
    readings = np.asarray(readings)
    if readings.dtype.kind not in "biuf":
        raise TypeError(f"readings must be a real array, got dtype {readings.dtype}")
    # the float64 working copy and the float32 result, refused before either is made
    require_memory(f"readings: shape {readings.shape} as amplitudes", readings.size * 12)
    photons = readings_to_photons(readings, detector).astype(np.float64)  # a copy: in place
    # Negative estimates count as 0, but -inf is no reading: kept, its root is NaN, refused below.
    np.maximum(photons, 0.0, out=photons, where=photons != -math.inf)
    with np.errstate(invalid="ignore"):
        np.sqrt(photons, out=photons)
    with np.errstate(over="ignore"):
        a = photons.astype(np.float32)
        a /= np.float32(intensity_scale)
    if not np.isfinite(a).all():
        bad = np.isnan(photons)
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), bad.shape)
            raise ValueError(
                f"readings must be finite to convert to amplitudes, got "
                f"{readings[i]!r} at index {tuple(int(k) for k in i)}"
            )
        raise ValueError(
            f"readings must convert to amplitudes within float32, sqrt(photons)/intensity_scale, "
            f"got sqrt(photons) up to {photons.max():.6g} with intensity_scale "
            f"{intensity_scale!r} (detector gain {getattr(detector, 'gain', 1.0):g})"
        )
    return a


# ---------------------------------------------------------------------------- placement


def half_pixel(n: int) -> float:
    """``δ = N//2 − (N − 1)/2``: ½ for even ``N``, 0 for odd (CONTRACTS, "Placement")."""
    return n // 2 - (n - 1) / 2


def positions_to_metres(
    positions: np.ndarray, n: int, object_shape: tuple[int, int], pixel_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """ptyfast positions (object pixels) → ``(x_m, y_m)`` of the probe array's centre.

    ptyfast samples position ``(x, y)`` at patch pixel ``N//2``; ptychodus, pty-chi and CXI
    readers put the probe array's centre ``(N − 1)/2`` at a position, and the object array's
    centre ``((W − 1)/2, (H − 1)/2)`` at the object's centre (here the origin). So
    ``x_m = (x − δ − (W − 1)/2) · Δ`` and ``y_m = (y − δ − (H − 1)/2) · Δ``.
    """
    h, w = object_shape
    d = half_pixel(n)
    x = (positions[:, 0] - d - (w - 1) / 2) * pixel_m
    y = (positions[:, 1] - d - (h - 1) / 2) * pixel_m
    return x, y


def metres_to_positions(
    x_m: np.ndarray,
    y_m: np.ndarray,
    n: int,
    object_shape: tuple[int, int],
    pixel_m: tuple[float, float],
    centre_m: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Inverse of :func:`positions_to_metres` (``pixel_m`` = (width, height), centre in m)."""
    h, w = object_shape
    d = half_pixel(n)
    x = (np.asarray(x_m, np.float64) - centre_m[0]) / pixel_m[0] + (w - 1) / 2 + d
    y = (np.asarray(y_m, np.float64) - centre_m[1]) / pixel_m[1] + (h - 1) / 2 + d
    return np.column_stack([x, y])


# ---------------------------------------------------------------------------- header


def _array(name: str, a: Any, kinds: str, shape: tuple[int | None, ...]) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind not in kinds:
        raise TypeError(f"{name} must have a dtype of kind {kinds!r}, got {a.dtype}")
    if a.ndim != len(shape) or any(
        s is not None and s != t for s, t in zip(shape, a.shape, strict=True)
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    return a


@dataclass(eq=False)
class Header:
    """Everything of a :class:`~ptyfast.Dataset` but its ``diffraction`` and ``patches``.

    A streaming writer (:func:`ptyfast.io.writer`) takes a header first and the patterns
    block by block after; a reader (:func:`ptyfast.io.reader`) gives the header at once and
    the patterns on request. Fields mean what the ``Dataset`` fields of the same names mean.

    Attributes
    ----------
    n_patterns : int
        ``M >= 1``.
    dtype : numpy.dtype
        The readings' dtype (the detector's): ``float32`` photon counts for the ideal
        detector, unsigned integers for counting detectors.
    mask : numpy.ndarray, bool, (N, N)
        ``True`` where a pixel is valid.
    positions_nominal, positions_true : numpy.ndarray, float64, (M, 2)
        ``(x, y)`` in object pixels (README, "Coordinates").
    probe : numpy.ndarray, complex64, (P, N, N)
    object : numpy.ndarray, complex64, (H, W)
    provenance : dict
    geometry : Geometry or None
    detector : ptyfast.Detector, dict or None
    photons, intensity_scale : float
    patches : bool
        Whether the blocks carry object patches (``Dataset.patches``): ``True``/``False``
        (``numpy.bool_``, 0 and 1 too; anything else is a ``TypeError``).
    """

    n_patterns: int
    dtype: np.dtype
    mask: np.ndarray
    positions_nominal: np.ndarray
    positions_true: np.ndarray
    probe: np.ndarray
    object: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    geometry: Geometry | None = None
    detector: Any = None
    photons: float = float("nan")
    intensity_scale: float = float("nan")
    patches: bool = False

    def __post_init__(self) -> None:
        m = self.n_patterns
        if isinstance(m, bool) or not isinstance(m, numbers.Integral):
            raise TypeError(f"n_patterns must be a positive integer, got {type(m).__name__} {m!r}")
        if m < 1:
            raise ValueError(f"n_patterns must be a positive integer, got {m!r}")
        self.n_patterns = int(m)
        try:
            self.dtype = np.dtype(self.dtype)
        except TypeError:
            raise TypeError(f"dtype must be a NumPy dtype, got {self.dtype!r}") from None
        if self.dtype.kind not in "fiu" or self.dtype.byteorder == ">":
            raise TypeError(
                f"dtype must be a native real numeric dtype (float32, uint16, ...), got "
                f"{self.dtype}"
            )
        pr = _array("probe", self.probe, "c", (None, None, None))
        n = pr.shape[1]
        if pr.shape[2] != n or pr.shape[0] < 1 or n < 2:
            raise ValueError(f"probe must be (P, N, N) with P >= 1, N >= 2, got {pr.shape}")
        _array("mask", self.mask, "b", (n, n))
        for name in ("positions_nominal", "positions_true"):
            p = _array(name, getattr(self, name), "f", (m, 2))
            if not np.all(np.isfinite(p)):
                raise ValueError(f"{name} must be finite, got NaN or inf values")
        _array("object", self.object, "c", (None, None))
        if not isinstance(self.provenance, dict):
            raise TypeError(f"provenance must be a dict, got {type(self.provenance).__name__}")
        if self.geometry is not None:
            if not isinstance(self.geometry, Geometry):
                raise TypeError(
                    f"geometry must be a ptyfast.Geometry or None, got "
                    f"{type(self.geometry).__name__}"
                )
            if self.geometry.N != n:
                raise ValueError(
                    f"geometry.N must equal the pattern size {n}, got {self.geometry.N}"
                )
        for name in ("photons", "intensity_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
            setattr(self, name, float(v))
        self.patches = _flag("patches", self.patches)

    @property
    def N(self) -> int:  # noqa: N802 - the field's usual name
        """Pattern size ``N``."""
        return int(self.probe.shape[1])

    @property
    def n_modes(self) -> int:
        """Number of incoherent probe modes ``P``."""
        return int(self.probe.shape[0])

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Header:
        """The header of ``dataset`` (arrays shared, not copied)."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a ptyfast.Dataset, got {type(dataset).__name__}")
        return cls(
            n_patterns=dataset.n_patterns,
            dtype=dataset.diffraction.dtype,
            mask=dataset.mask,
            positions_nominal=dataset.positions_nominal,
            positions_true=dataset.positions_true,
            probe=dataset.probe,
            object=dataset.object,
            provenance=dataset.provenance,
            geometry=dataset.geometry,
            detector=dataset.detector,
            photons=dataset.photons,
            intensity_scale=dataset.intensity_scale,
            patches=dataset.patches is not None,
        )

    def to_dataset(self, diffraction: np.ndarray, patches: np.ndarray | None) -> Dataset:
        """A :class:`~ptyfast.Dataset` of this header with its patterns (and ``patches``, or
        None)."""
        return Dataset(
            diffraction=diffraction,
            mask=self.mask,
            positions_nominal=self.positions_nominal,
            positions_true=self.positions_true,
            probe=self.probe,
            object=self.object,
            provenance=self.provenance,
            geometry=self.geometry,
            detector=self.detector,
            photons=self.photons,
            intensity_scale=self.intensity_scale,
            patches=patches,
        )

    @property
    def pattern_bytes(self) -> int:
        """Bytes of one pattern's blocks: its readings and, if kept, its complex64 patch."""
        return self.N * self.N * (self.dtype.itemsize + (8 if self.patches else 0))

    def block_size(self) -> int:
        """Patterns per block of about :data:`BLOCK_BYTES` (diffraction and patches)."""
        return max(1, min(self.n_patterns, BLOCK_BYTES // self.pattern_bytes))

    def meta(self) -> dict[str, Any]:
        """The JSON block every format stores (what the arrays cannot say)."""
        return {
            "format": "ptyfast",
            "layout_version": LAYOUT_VERSION,
            "ptyfast_version": __version__,
            "n_patterns": self.n_patterns,
            "N": self.N,
            "readings_dtype": self.dtype.str,
            "photons": finite_or_none(self.photons),
            "intensity_scale": finite_or_none(self.intensity_scale),
            "geometry": None if self.geometry is None else self.geometry.to_dict(),
            "detector": detector_dict(self.detector),
            "patches": self.patches,
        }

    @classmethod
    def from_meta(cls, meta: Any, arrays: dict[str, Any], provenance: Any, *, where: str) -> Header:
        """Rebuild a header from :meth:`meta`, the ``arrays`` (name -> array) and the
        ``provenance`` record; errors name ``where``."""
        if not isinstance(meta, dict) or meta.get("format") != "ptyfast":
            raise FormatError(f"{where}: the ptyfast block is missing or not a ptyfast block")
        version = meta.get("layout_version")
        if not isinstance(version, int) or version > LAYOUT_VERSION:
            raise FormatError(
                f"{where}: ptyfast layout version {version!r} is newer than this ptyfast "
                f"({__version__}) reads (<= {LAYOUT_VERSION}); upgrade ptyfast"
            )
        if not isinstance(provenance, dict):
            raise FormatError(f"{where}: provenance must be a JSON object, got {provenance!r}")
        try:
            g = meta.get("geometry")
            return cls(
                n_patterns=meta["n_patterns"],
                dtype=np.dtype(meta["readings_dtype"]),
                mask=arrays["mask"],
                positions_nominal=arrays["positions_nominal"],
                positions_true=arrays["positions_true"],
                probe=arrays["probe"],
                object=arrays["object"],
                provenance=provenance,
                geometry=None if g is None else Geometry.from_dict(g),
                detector=detector_from_dict(meta.get("detector")),
                photons=float_or_nan(meta.get("photons")),
                intensity_scale=float_or_nan(meta.get("intensity_scale")),
                patches=bool(meta.get("patches", False)),
            )
        except KeyError as exc:
            raise FormatError(f"{where}: field {exc.args[0]!r} is missing") from None
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: {exc}") from None


def need_geometry(header: Header, fmt: str, path: Path) -> Geometry:
    """The geometry, or a :class:`FormatError` saying which fields ``fmt`` needs."""
    if header.geometry is None:
        raise FormatError(
            f"{fmt} output {os.fspath(path)!r} stores positions and pixel sizes in metres and "
            f"needs dataset.geometry (energy_eV, distance_m, detector_pixel_m); it is None: "
            f"simulate with a ptyfast.Geometry, or write .npz/.zarr which work in pixels"
        )
    return header.geometry


def need_intensity_scale(header: Header, path: Path, what: str) -> float:
    s = header.intensity_scale
    if not (math.isfinite(s) and s > 0):
        raise FormatError(
            f"{what} in {os.fspath(path)!r} are sqrt(photons) / intensity_scale and need a "
            f"positive finite dataset.intensity_scale, got {s!r}"
        )
    return s


# ---------------------------------------------------------------------------- block writer


def check_finite(name: str, block: np.ndarray, start: int) -> None:
    """``ValueError`` unless every value of a floating or complex pattern block is finite.

    One pass without a temporary (a NaN or inf anywhere makes the sum non-finite); only a
    non-finite sum (a NaN, an inf, or an overflow of huge finite values) pays for a second
    pass that finds the first offender. Integer blocks are always finite.
    """
    if block.dtype.kind not in "fc" or block.size == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(block.sum()):
            return
    bad = ~np.isfinite(block)
    if not bad.any():  # the sum overflowed; every value is finite
        return
    i, *pixel = (int(k) for k in np.unravel_index(int(np.argmax(bad)), bad.shape))
    last = start + block.shape[0] - 1
    raise ValueError(
        f"{name} block at patterns {start}..{last} must be finite, got "
        f"{block[(i, *pixel)]} at pattern {start + i} pixel {tuple(pixel)}"
    )


def _check_start(start: Any, written: int) -> int:
    if isinstance(start, bool) or not isinstance(start, numbers.Integral):
        raise TypeError(f"start must be an integer, got {type(start).__name__}")
    if int(start) != written:
        raise ValueError(
            f"start must be {written} (blocks are written in order, each after the last), "
            f"got {start}"
        )
    return int(start)


class BlockWriter:
    """Base of the streaming writers: block checks and the all-or-nothing commit.

    Subclasses implement ``_open(stack)`` (create the atomic targets, write the header),
    ``_write(start, diffraction, patches)`` and ``_finish()`` (what goes after the last
    block). Everything entered on ``stack`` is closed in reverse order: with the exception
    on failure (temporary files removed), normally on success (files moved into place).

    The constructor checks every argument and touches no file: ``path`` (a ``str`` or
    ``os.PathLike``, no NUL, names within the file system's limit, not under a file),
    ``header``, ``compress`` and ``overwrite`` (``True``/``False``, ``numpy.bool_``, 0 or 1;
    anything else, ``"no"`` included, is a ``TypeError``) and ``**options`` (the format's
    own options, e.g. ptychodus' ``raw_data``; an option the format does not take is a
    ``TypeError``). An ``OSError`` while writing names ``path`` (not only a temporary file).
    The format writers inherit this constructor.
    """

    format = ""

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: Header,
        *,
        compress: bool = False,
        overwrite: bool = False,
        **options: Any,
    ) -> None:
        self.path = Path(check_path(path))
        if not isinstance(header, Header):
            raise TypeError(f"header must be a ptyfast.io.Header, got {type(header).__name__}")
        self.header = header
        self.compress = _flag("compress", compress)
        self.overwrite = _flag("overwrite", overwrite)
        self.options = self._check_options(options)
        check_output_path(self.path, also=tuple(self.paths))
        self.written = 0
        self._stack: contextlib.ExitStack | None = None

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        if options:
            raise TypeError(
                f"{self.format} writer takes no option(s) {sorted(options)}; "
                f"see ptyfast.io.{self.format}"
            )
        return options

    @property
    def paths(self) -> list[Path]:
        """The file(s) this writer creates."""
        return [self.path]

    def __enter__(self) -> BlockWriter:
        stack = contextlib.ExitStack()
        try:
            self._open(stack)
        except BaseException as exc:
            stack.__exit__(*sys.exc_info())
            if isinstance(exc, OSError):
                raise naming_path(exc, self.path) from exc
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None
        if exc_type is not None:
            stack.__exit__(exc_type, exc, tb)
            return
        try:
            if self.written != self.header.n_patterns:
                raise ValueError(
                    f"{os.fspath(self.path)}: {self.written} of {self.header.n_patterns} "
                    f"patterns written; nothing was saved"
                )
            self._finish()
        except BaseException as exc:
            if not stack.__exit__(*sys.exc_info()):
                if isinstance(exc, OSError):
                    raise naming_path(exc, self.path) from exc
                raise
            return  # pragma: no cover - a context manager never swallows these
        try:
            stack.__exit__(None, None, None)
        except OSError as exc:
            raise naming_path(exc, self.path) from exc

    def write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None = None) -> None:
        """Write patterns ``start : start + len(diffraction)``.

        Parameters
        ----------
        start : int
            Index of the block's first pattern; blocks come in order (``start`` equals the
            number of patterns written so far).
        diffraction : numpy.ndarray, (B, N, N), the header's dtype
            Readings of patterns ``start .. start + B − 1``.
        patches : numpy.ndarray, complex64, (B, N, N), optional
            Their object patches; required when the header says ``patches=True``, refused
            otherwise.

        Raises
        ------
        ValueError, TypeError
            A block out of order, past the end, of the wrong shape or dtype, or (floating
            readings, patches) holding NaN or inf; raised before any of the block is
            written, for every format.
        OSError
            Writing failed (the message names the writer's ``path``).
        """
        if self._stack is None:
            raise ValueError("write() is only possible inside the writer's with-block")
        h = self.header
        start = _check_start(start, self.written)
        d = _array("diffraction", diffraction, "fiu", (None, h.N, h.N))
        if d.dtype != h.dtype:
            raise TypeError(f"diffraction must have the header's dtype {h.dtype}, got {d.dtype}")
        b = d.shape[0]
        if start + b > h.n_patterns:
            raise ValueError(
                f"diffraction block of {b} patterns at {start} runs past n_patterns = "
                f"{h.n_patterns}"
            )
        if h.patches:
            if patches is None:
                raise ValueError("patches must be given for every block (header.patches=True)")
            p = _array("patches", patches, "c", (b, h.N, h.N))
            if p.dtype != np.complex64:
                raise TypeError(f"patches must be complex64, got {p.dtype}")
            patches = np.ascontiguousarray(p)
        elif patches is not None:
            raise ValueError("patches given but the header says patches=False")
        check_finite("diffraction", d, start)
        if patches is not None:
            check_finite("patches", patches, start)
        if b:
            try:
                self._write(start, np.ascontiguousarray(d), patches)
            except OSError as exc:
                raise naming_path(exc, self.path) from exc
        self.written += b

    # subclass hooks -----------------------------------------------------------------
    def _open(self, stack: contextlib.ExitStack) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, start: int, diffraction: np.ndarray, patches: np.ndarray | None) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _finish(self) -> None:
        pass


class BlockReader:
    """Base of the readers: a header now, pattern blocks on request."""

    format = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: Header
        self.paths: list[Path] = [path]
        self.compressed = False

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the file(s) (also done on leaving a ``with`` block)."""

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Patterns (and patches, when stored) ``start:stop`` (integers, ``0 <= start <= stop
        <= n_patterns``)."""
        for name, v in (("start", start), ("stop", stop)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
        start, stop = int(start), int(stop)
        m = self.header.n_patterns
        if not (0 <= start <= stop <= m):
            raise ValueError(f"need 0 <= start <= stop <= {m}, got start={start}, stop={stop}")
        per = self.header.pattern_bytes
        require_fits(os.fspath(self.path), f"patterns {start}:{stop}", (stop - start, per), "u1")
        try:
            return self._read(start, stop)
        except FormatError:
            raise
        except CORRUPT as exc:
            raise unreadable(os.fspath(self.path), f"patterns {start}:{stop}", exc) from None

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError  # pragma: no cover - abstract

    def blocks(
        self, size: int | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """``(start, diffraction, patches)`` for consecutive blocks of ``size`` patterns
        (a positive integer; ``None``: about :data:`BLOCK_BYTES` per block)."""
        if size is None:
            size = self.header.block_size()
        elif isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(
                f"size must be a positive integer or None, got {type(size).__name__} {size!r}"
            )
        elif size < 1:
            raise ValueError(f"size must be a positive integer or None, got {size!r}")
        size = int(size)
        for start in range(0, self.header.n_patterns, size):
            d, p = self.read(start, min(self.header.n_patterns, start + size))
            yield start, d, p

    def read_all(self) -> Dataset:
        """The whole :class:`~ptyfast.Dataset` (every pattern, in memory)."""
        d, p = self.read(0, self.header.n_patterns)
        return self.header.to_dataset(d, p)


def tool_data_attrs(header: Header) -> dict[str, str]:
    """What the tool-facing pattern array holds, as attributes."""
    if readings_are_photons(header.detector):
        return {"units": "photons", "ptyfast_content": "detector readings (photon counts)"}
    return {
        "units": "photons",
        "ptyfast_content": "readings_to_photons(readings); exact readings in the ptyfast group",
    }

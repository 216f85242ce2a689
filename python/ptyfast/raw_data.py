"""``RawData``: ungrouped scan data (positions, diffraction, probe, object) and its grouping.

The drop-in for ``ptycho.raw_data``. A ``RawData`` holds ``M`` scan positions and their
diffraction amplitudes; :meth:`RawData.generate_grouped_data` turns it into the grouped
dictionary the loader consumes. Conventions (README, "Conventions"): coordinates in object
pixels, ``x`` = column, ``y`` = row; ``diff3d`` holds amplitudes, not intensities.

Unlike the reference, nothing here prints, reads global state (except the documented
``gridsize``/``nphotons`` fallbacks to :mod:`ptyfast.params` when an argument is ``None``) or
touches NumPy's global random state.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _kernels
from ._npz import NpzReader, metadata_record, read_metadata, save_npz
from .grouping import (
    generate_groups_efficiently,
    generate_groups_with_oversampling,
    get_image_patches,
    get_neighbor_indices,
    get_relative_coords,
    group_dataset,
    normalize_data,
)
from .intensity import _default_nphotons, scale_from_energies, scale_nphotons, simulation_scale
from .model import _args

__all__ = [
    "RawData",
    "get_image_patches",
    "get_neighbor_indices",
    "get_relative_coords",
    "key_coords_offsets",
    "key_coords_relative",
    "local_offset_sign",
    "normalize_data",
    "simulate_raw",
]

logger = logging.getLogger(__name__)

#: Sign of the member offsets in ``coords_relative = sign * (coords_nn - centroid)`` (the
#: reference's constant; see :func:`get_relative_coords`).
local_offset_sign = -1
#: Keys of the grouped dict the loader takes its coordinates from (the reference's names).
key_coords_offsets = "coords_start_offsets"
key_coords_relative = "coords_start_relative"

_REQUIRED_KEYS = ("xcoords", "ycoords", "diff3d", "probeGuess")


def _array(name: str, a: Any, kinds: str, what: str) -> np.ndarray:
    """``a`` as a NumPy array (tensors converted, no copy) whose dtype kind is in ``kinds``."""
    if a is None:
        raise TypeError(f"{name} must be {what}, got None")
    # A ragged or too deeply nested list: a TypeError naming the argument, not NumPy's.
    arr = _args.asarray(name, _kernels.from_tensor(a))
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must be {what}, got dtype {arr.dtype}")
    return arr


def _finite(name: str, arr: np.ndarray) -> None:
    # One integer pass (no temporary) for finite non-negative float arrays (amplitudes),
    # the exact check otherwise.
    if _kernels._finite_nonnegative_floats(arr):
        return
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")


def _check_input_file(name: str, path: Any) -> str:
    """``path`` (str or os.PathLike) of an existing file to read, as a string.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    ValueError
        If ``path`` is empty or names a directory.
    FileNotFoundError
        If nothing exists at ``path``; the message names the argument and the path.
    """
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{name} must be a path (str or os.PathLike), got {type(path).__name__}"
        ) from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if p == "":
        raise ValueError(f"{name} must name a file, got an empty path ''")
    if os.path.isdir(p):
        raise ValueError(f"{name} must name a file, got the directory {p!r}")
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, f"{name}: no such file", p)
    return p


def _coords(name: str, a: Any) -> np.ndarray:
    arr = _array(name, a, "iuf", "a 1-D array of real coordinates")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    _finite(name, arr)
    return arr


def _drop_unit_channel(a: Any) -> Any:
    """An ``(H, W, 1)`` image as ``(H, W)`` (a view), anything else as given."""
    arr = np.asarray(_kernels.from_tensor(a))
    return arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr


def _norm_y_i(v: Any) -> Any:
    """A finite real scalar ``norm_Y_I`` (kept as given), else a ``TypeError`` (or a
    ``ValueError`` for NaN or inf)."""
    a = _args.asarray("norm_Y_I", v)
    if a.ndim != 0 or a.dtype.kind not in "iuf":
        raise TypeError(f"norm_Y_I must be a real scalar, got {type(v).__name__} {v!r}")
    if a.dtype.kind == "f" and not np.isfinite(a):
        raise ValueError(f"norm_Y_I must be finite, got {v!r}")
    return v


def intensity_scale_of(obj: Any, positions: Any, probe: Any, nphotons: float) -> np.float32:
    """The simulation's intensity scale ``s = sqrt(nphotons / mean_i sum |probe * patch_i|**2)``.

    The per-pattern energies come from the Rust kernel (no FFT); the mean is a float64 NumPy
    reduction over them in index order, so ``s`` does not depend on threads or chunking.
    """
    return simulation_scale(_kernels.illuminated_energy(obj, positions, probe), nphotons)


def simulate_raw(
    xcoords: Any,
    ycoords: Any,
    probeGuess: Any,
    objectGuess: Any,
    *,
    nphotons: float,
    poisson: bool = True,
    seed: _kernels.SeedLike = None,
    out: RawData | None = None,
    return_energies: bool = False,
) -> Any:
    """Simulate diffraction at explicit positions; the engine behind ``RawData.from_simulation``.

    Returns ``(diff3d, Y, s)``: float32 ``(M, N, N)`` amplitudes divided by the intensity scale
    ``s`` (the reference's stored ``X``), complex64 ``(M, N, N, 1)`` pre-probe object patches,
    and ``s`` (float32); with ``return_energies`` a fourth item, each pattern's energy
    ``Σ diff3d[i]**2`` (float64, from the kernel's pass: :func:`ptyfast._kernels.simulate`).
    ``out``, a ``RawData`` of ``M`` patterns of this ``N`` from an earlier call, lends its
    ``diff3d`` and ``Y`` buffers (overwritten) instead of fresh ones.

    Everything is checked before the simulation runs: the inputs, the memory the outputs need
    (:func:`ptyfast._kernels.require_memory`) and, once ``s`` is known (a cheap pass without
    FFTs), that ``nphotons`` keeps the scaled far field within float32
    (:func:`ptyfast._kernels.check_field_range`): an error names ``nphotons`` and the largest
    value that fits instead of returning NaN. ``poisson`` and ``return_energies`` must be
    bools (``TypeError`` otherwise: the string ``"no"`` is not ``False``).
    """
    x = _coords("xcoords", xcoords)
    y = _coords("ycoords", ycoords)
    if x.shape != y.shape:
        raise ValueError(f"ycoords must have the shape of xcoords {x.shape}, got {y.shape}")
    if x.size == 0:
        raise ValueError("xcoords must hold at least one position, got 0")
    nph = _kernels._positive_float("nphotons", nphotons)
    # A truthy string ("no", "False") would otherwise switch the noise on silently.
    poisson = _kernels._flag("poisson", poisson)
    return_energies = _kernels._flag("return_energies", return_energies)
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape[0] != probe.shape[1] or probe.shape[0] < 2:
        raise ValueError(f"probeGuess must be square (N, N) with N >= 2, got {probe.shape}")
    seed_value = _kernels.resolve_seed(seed) if poisson else None
    m, n = x.size, probe.shape[0]
    buffers = _out_buffers(out, m, n)
    _kernels.require_memory(
        f"simulation of {m} positions at N = {n} (diff3d float32 and Y complex64)",
        m * (48 if buffers else n * n * 12 + 48),
    )
    positions = np.empty((m, 2), np.float64)
    positions[:, 0], positions[:, 1] = x, y  # finite (checked above)
    # Each check over the object runs once: its dtype and finiteness above, max|object| here
    # (for the energies' and the far field's float32 range).
    max_obj = _kernels._max_abs(obj)
    energies = _kernels._illuminated_energy_checked(obj, positions, probe, max_obj)
    if not float(np.max(energies)) > 0:
        raise ValueError(
            f"objectGuess under probeGuess has zero energy at every one of the {m} positions "
            f"(xcoords, ycoords): the object is zero there, the positions lie off the "
            f"{obj.shape[0]} x {obj.shape[1]} object, or the probe is zero; the intensity "
            "scale for nphotons is undefined"
        )
    s = simulation_scale(energies, nph)
    _kernels.check_field_range(
        float(s),
        max_obj,
        float(np.sum(np.abs(probe))),
        name="nphotons",
        value=nphotons,
        limit_of="photons",
    )
    # One pass writes the amplitudes, the patches and the energies (no pass over them after;
    # a non-finite pattern shows in its energy). The inputs are checked: straight to the
    # kernel's buffer path.
    diff3d, patches, energies = _kernels._simulate_into(
        obj,
        positions,
        probe,
        np.float32(s),
        seed_value,
        0,
        True,
        True,
        buffers[0] if buffers else None,
        buffers[1] if buffers else None,
        None,
    )
    assert patches is not None
    result = (diff3d, patches[..., None], s)
    return (*result, energies) if return_energies else result


def _out_buffers(out: Any, m: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``diff3d`` and ``Y`` buffers an earlier ``RawData`` lends (checked), or None."""
    if out is None:
        return None
    if not isinstance(out, RawData):
        raise TypeError(
            f"out must be a RawData from an earlier simulation, got {type(out).__name__}"
        )
    want = f"a RawData of {m} patterns of {n} x {n} (float32 diff3d, complex64 Y)"
    d, y = out.diff3d, out.Y
    if (
        y is None
        or d.shape != (m, n, n)
        or d.dtype != np.float32
        or y.shape != (m, n, n, 1)
        or y.dtype != np.complex64
    ):
        got = f"diff3d {d.dtype} {d.shape}, Y {None if y is None else (y.dtype, y.shape)}"
        raise ValueError(f"out must be {want}, got {got}")
    return d, y[..., 0]


def _check_declared_shapes(r: NpzReader, path: str, diff_key: str, optional: list[str]) -> None:
    """Shapes declared by the members' headers agree, before any of them is read."""
    shape = {k: r.header(k).shape for k in ("xcoords", "ycoords", diff_key, "probeGuess")}
    shape.update({k: r.header(k).shape for k in optional})
    m = shape["xcoords"]
    if len(m) != 1:
        raise ValueError(f"{path}: xcoords must be 1-D, got shape {m}")
    for key in ("ycoords", "xcoords_start", "ycoords_start", "scan_index"):
        if key in shape and shape[key] != m:
            raise ValueError(f"{path}: {key} must have the shape of xcoords {m}, got {shape[key]}")
    d = shape[diff_key]
    if len(d) != 3 or d[0] != m[0] or d[1] != d[2]:
        raise ValueError(
            f"{path}: {diff_key} must be (M, N, N) with M = {m[0]} (one pattern per position), "
            f"got shape {d}"
        )
    if shape["probeGuess"] != d[1:]:
        raise ValueError(f"{path}: probeGuess must be (N, N) = {d[1:]}, got {shape['probeGuess']}")
    if "Y" in shape and (len(shape["Y"]) not in (3, 4) or shape["Y"][0] != m[0]):
        raise ValueError(f"{path}: Y must be ({m[0]}, H, W[, 1]), got {shape['Y']}")


def _metadata_mismatches(metadata: dict[str, Any], config: Any) -> list[str]:
    """Mismatches of ``nphotons``, ``N``, ``gridsize`` between file metadata and a config."""
    physics = dict(metadata.get("physics_parameters") or {})
    for key in ("nphotons", "N", "gridsize"):
        if key not in physics and key in metadata:
            physics[key] = metadata[key]
    model = getattr(config, "model", None)
    current = {
        "nphotons": getattr(config, "nphotons", None),
        "N": getattr(model, "N", None),
        "gridsize": getattr(model, "gridsize", None),
    }
    out = []
    for key, want in current.items():
        have = physics.get(key)
        if have is None or want is None:
            continue
        if (abs(float(have) - float(want)) > 1e-9) if key == "nphotons" else have != want:
            out.append(f"{key} mismatch: dataset={have}, config={want}")
    return out


class RawData:
    """Ungrouped ptychography scan data.

    Parameters
    ----------
    xcoords, ycoords : array_like, (M,)
        Scan positions in object pixels (``x`` = column, ``y`` = row).
    xcoords_start, ycoords_start : array_like, (M,), or None
        Nominal ("start") positions; equal to ``xcoords``/``ycoords`` for simulated data.
        ``None`` (both) means the positions themselves, as ``from_file`` defaults them.
    diff3d : array_like, (M, N, N)
        Diffraction amplitudes (float32; legacy uint16 intensities are accepted as stored).
    probeGuess : array_like, (N, N)
        The probe, real or complex, the size of the patterns.
    scan_index : array_like, (M,)
        Integer scan index per position (integer dtype, or floats holding integers).
    objectGuess : array_like, (H, W), optional
        The full object, real or complex, finite.
    Y : array_like, (M, H, W) or (M, H, W, 1), optional
        Ground-truth object patches (numeric).
    norm_Y_I : float, optional
        ``scale_nphotons(diff3d)`` as the reference records it (a real scalar).
    metadata : dict, optional
        Free-form metadata, stored under ``_metadata`` by :meth:`to_file`.

    Raises
    ------
    ValueError
        On inconsistent shapes: coordinate arrays of different shapes, ``diff3d`` not
        ``(M, N, N)`` with ``M`` the number of positions, ``probeGuess`` not ``(N, N)``,
        ``scan_index`` not 1-D of length ``M`` or not integral, ``objectGuess`` not 2-D, ``Y``
        not ``(M, H, W[, 1])``; non-finite (NaN or inf) coordinates, ``diff3d``, probe,
        object, ``Y`` or ``norm_Y_I``; only one of the start coordinates given.
    TypeError
        A required array is ``None`` or of a non-numeric dtype (strings, objects; complex
        coordinates or ``diff3d``), or a ragged nested list; ``norm_Y_I`` not a real scalar;
        ``metadata`` not a dict.

    Notes
    -----
    Arrays are stored as given (no copy); ptyfast never modifies them. ``intensity_scale`` is
    set by :meth:`from_simulation` (the reference computes and discards it).

    Examples
    --------
    >>> import numpy as np
    >>> from ptyfast.raw_data import RawData
    >>> n, N = 10, 8
    >>> raw = RawData.from_coords_without_pc(
    ...     np.linspace(10, 20, n), np.linspace(10, 20, n),
    ...     np.ones((n, N, N), np.float32), np.ones((N, N), np.complex64),
    ...     scan_index=np.zeros(n, dtype=int))
    >>> raw.diff3d.shape
    (10, 8, 8)
    """

    def __init__(
        self,
        xcoords: Any,
        ycoords: Any,
        xcoords_start: Any,
        ycoords_start: Any,
        diff3d: Any,
        probeGuess: Any,
        scan_index: Any,
        objectGuess: Any = None,
        Y: Any = None,
        norm_Y_I: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.xcoords: np.ndarray = _coords("xcoords", xcoords)
        self.ycoords: np.ndarray = _coords("ycoords", ycoords)
        if (xcoords_start is None) != (ycoords_start is None):
            raise ValueError("xcoords_start and ycoords_start must both be arrays or both None")
        # Without start coordinates the start positions are the positions (as from_file and
        # the reference's data contract default them), so grouped data always has them.
        self.xcoords_start: np.ndarray = (
            self.xcoords if xcoords_start is None else _coords("xcoords_start", xcoords_start)
        )
        self.ycoords_start: np.ndarray = (
            self.ycoords if ycoords_start is None else _coords("ycoords_start", ycoords_start)
        )
        n = self.xcoords.shape
        for name, arr in (
            ("ycoords", self.ycoords),
            ("xcoords_start", self.xcoords_start),
            ("ycoords_start", self.ycoords_start),
        ):
            if arr.shape != n:
                raise ValueError(f"{name} must have the shape of xcoords {n}, got {arr.shape}")
        m = n[0]
        d = _array("diff3d", diff3d, "iuf", "real amplitudes (float32; legacy uint16 counts)")
        if d.ndim != 3 or d.shape[1] != d.shape[2]:
            raise ValueError(f"diff3d must be (M, N, N), got shape {d.shape}")
        if d.shape[0] != m:
            raise ValueError(f"diff3d must hold one pattern per position ({m}), got {d.shape[0]}")
        _finite("diff3d", d)
        self.diff3d: np.ndarray = d
        N = d.shape[1]
        p = _array("probeGuess", probeGuess, "iufc", "a numeric (N, N) probe")
        if p.shape != (N, N):
            raise ValueError(
                f"probeGuess must be (N, N) = ({N}, {N}) like the diffraction patterns, "
                f"got shape {p.shape}"
            )
        _finite("probeGuess", p)
        self.probeGuess: np.ndarray = p
        si = _array("scan_index", scan_index, "iuf", "a 1-D integer array")
        if si.shape != n:
            raise ValueError(f"scan_index must be 1-D of length {m}, got shape {si.shape}")
        if si.dtype.kind == "f" and not np.all(np.isfinite(si) & (si == np.round(si))):
            raise ValueError("scan_index must hold integers, got fractions or NaN")
        self.scan_index: np.ndarray = si
        self.objectGuess: np.ndarray | None = None
        if objectGuess is not None:
            o = _array("objectGuess", objectGuess, "iufc", "a numeric (H, W) object")
            if o.ndim != 2 or o.size == 0:
                raise ValueError(f"objectGuess must be a non-empty (H, W) array, got {o.shape}")
            _finite("objectGuess", o)
            self.objectGuess = o
        self.Y: np.ndarray | None = None
        if Y is not None:
            y = _array("Y", Y, "iufc", "numeric ground-truth patches")
            if y.ndim not in (3, 4) or y.shape[0] != m or (y.ndim == 4 and y.shape[3] != 1):
                raise ValueError(f"Y must be ({m}, H, W) or ({m}, H, W, 1), got {y.shape}")
            _finite("Y", y)
            self.Y = y
        self.norm_Y_I = _kernels.from_tensor(norm_Y_I)
        if self.norm_Y_I is not None:
            self.norm_Y_I = _norm_y_i(self.norm_Y_I)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.intensity_scale: float | None = None
        self.sample_indices: np.ndarray | None = None
        self.subsample_seed: int | None = None

    # ------------------------------------------------------------------ constructors

    @staticmethod
    def from_coords_without_pc(
        xcoords: Any,
        ycoords: Any,
        diff3d: Any,
        probeGuess: Any,
        scan_index: Any,
        objectGuess: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> RawData:
        """``RawData`` whose start coordinates equal ``xcoords``/``ycoords``.

        See :class:`RawData` for the parameters.
        """
        return RawData(
            xcoords,
            ycoords,
            xcoords,
            ycoords,
            diff3d,
            probeGuess,
            scan_index,
            objectGuess,
            metadata=metadata,
        )

    @staticmethod
    def from_simulation(
        xcoords: Any,
        ycoords: Any,
        probeGuess: Any,
        objectGuess: Any,
        scan_index: Any = None,
        *,
        nphotons: float | None = None,
        poisson: bool = True,
        seed: _kernels.SeedLike = None,
        out: RawData | None = None,
    ) -> RawData:
        """Simulate diffraction from ``objectGuess`` at explicit positions.

        Parameters
        ----------
        xcoords, ycoords : array_like, (M,)
            Scan positions in object pixels; any ``M >= 1``.
        probeGuess : array_like, (N, N)
            Probe, real or complex.
        objectGuess : array_like, (H, W)
            Object, real or complex.
        scan_index : array_like, (M,), optional
            Defaults to int64 zeros.
        nphotons : float, optional
            Mean photons per pattern; ``None`` uses ``ptyfast.params.cfg['nphotons']``.
        poisson : bool
            Draw Poisson noise (default) or return noise-free amplitudes.
        seed : int, numpy.random.Generator or None
            Seed of the Poisson noise (pattern ``i`` uses stream ``(seed, i)``). ``None`` draws
            fresh OS entropy; the integer actually used is recorded as ``metadata['seed']``,
            so ``from_simulation(..., seed=raw.metadata['seed'])`` reproduces ``raw``.
        out : RawData, optional
            A ``RawData`` of ``M`` patterns of this ``N`` from an earlier call, for callers
            that simulate repeatedly: its ``diff3d`` and ``Y`` buffers are reused (and
            overwritten; the result shares them) instead of fresh memory, whose first touch is
            slow on virtual machines. The result does not depend on it.

        Returns
        -------
        RawData
            ``diff3d`` float32 ``(M, N, N)``: amplitudes divided by the intensity scale ``s``;
            ``Y`` complex64 ``(M, N, N, 1)``: pre-probe object patches; ``norm_Y_I``:
            ``scale_nphotons(diff3d)`` (from the energies the simulation pass computes, no
            pass over ``diff3d``); ``intensity_scale``: ``s``; start coordinates equal
            to the coordinates; ``metadata``: ``nphotons``, ``intensity_scale``, ``poisson``,
            ``seed`` (the noise seed used, ``None`` without noise) and ``N``.

        Raises
        ------
        ValueError
            Inconsistent or non-finite positions, probe or object; ``nphotons`` not positive
            and finite, or so large that the scaled far field would overflow float32 (the
            message gives the largest value that fits); outputs larger than the available
            memory. All checked before the simulation runs.
        TypeError
            Non-numeric arrays, ``nphotons`` not a real number (strings such as ``"1e6"``
            are refused), a seed of the wrong type, ``poisson`` not a bool (``"no"``).

        Notes
        -----
        Works for any gridsize and for a single position (the reference refuses gridsize > 1
        and breaks on ``M = 1``): simulation is per position, grouping comes later.
        """
        nph = _default_nphotons(nphotons)
        poisson = _kernels._flag("poisson", poisson)
        x = _coords("xcoords", xcoords)
        y = _coords("ycoords", ycoords)
        if scan_index is None:
            scan_index = np.zeros(x.shape[0], dtype=np.int64)
        si = _array("scan_index", scan_index, "iuf", "a 1-D integer array")
        if si.shape != x.shape:
            raise ValueError(f"scan_index must be 1-D of length {x.size}, got shape {si.shape}")
        # The seed is resolved (fresh entropy drawn for None) before anything runs, so that the
        # one actually used can be recorded.
        seed_value = _kernels.resolve_seed(seed) if poisson else None
        diff3d, Y, s, energies = simulate_raw(
            x,
            y,
            probeGuess,
            objectGuess,
            nphotons=nph,
            poisson=poisson,
            seed=seed_value,
            out=out,
            return_energies=True,
        )
        raw = RawData(
            x,
            y,
            x,
            y,
            diff3d,
            _drop_unit_channel(probeGuess),
            si,
            None,
            # scale_nphotons(diff3d) bit for bit, from the kernel's energies.
            norm_Y_I=scale_from_energies(energies, nphotons=nph),
        )
        # simulate_raw checked the object (2-D, non-empty, finite as complex64, hence finite
        # as given), and Y holds its patches (M, N, N, 1): no second pass over either.
        raw.objectGuess = _drop_unit_channel(objectGuess)
        raw.Y = Y
        raw.intensity_scale = float(s)
        raw.metadata = {
            "nphotons": nph,
            "intensity_scale": float(s),
            "poisson": bool(poisson),
            "seed": seed_value,
            "N": int(diff3d.shape[1]),
        }
        return raw

    @staticmethod
    def from_dataset(dataset: Any) -> RawData:
        """PtychoPINN's view of a :class:`ptyfast.Dataset` (``Dataset.to_raw_data``).

        ``diff3d`` holds amplitudes divided by the intensity scale, ``sqrt(photons) / s``, with
        ``photons = dataset.detector.readings_to_photons(readings)`` (the readings themselves
        for the ideal detector; detected photons, after QE, otherwise; 0 in masked pixels):
        :func:`ptyfast.io.amplitudes`, the conversion every format uses. ``xcoords``/
        ``ycoords`` are the true positions, ``*_start`` the nominal ones; ``probeGuess`` is the
        first probe mode (with ``P > 1`` modes the patterns hold the incoherent sum of all of
        them, which one ``probeGuess`` cannot express: ``metadata['n_modes']`` says so);
        ``objectGuess`` the object; ``Y`` the patches ``(M, N, N, 1)`` when the dataset has
        them; ``norm_Y_I`` and ``intensity_scale`` as :meth:`from_simulation` sets them.

        For the ideal detector, one mode and the same noise seed this equals
        ``from_simulation(x, y, probe, object, nphotons=photons, seed=seed)`` bit for bit as
        long as the float32 readings hold the counts exactly (every pixel below 2**24 =
        16,777,216 photons; ``Detector(dtype="float64")`` readings hold any count).

        Raises
        ------
        TypeError
            ``dataset`` is not a ``ptyfast.Dataset``.
        ValueError
            Its intensity scale is not positive and finite.
        """
        from .io import amplitudes
        from .model.dataset import Dataset

        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a ptyfast.Dataset, got {type(dataset).__name__}")
        s = float(dataset.intensity_scale)
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"dataset.intensity_scale must be positive and finite, got {s}")
        diff3d = amplitudes(dataset.diffraction, dataset.detector, s)
        pt, pn = dataset.positions_true, dataset.positions_nominal
        m = dataset.n_patterns
        raw = RawData(
            np.ascontiguousarray(pt[:, 0]),
            np.ascontiguousarray(pt[:, 1]),
            np.ascontiguousarray(pn[:, 0]),
            np.ascontiguousarray(pn[:, 1]),
            diff3d,
            dataset.probe[0],
            np.zeros(m, dtype=np.int64),
            dataset.object,
            Y=None if dataset.patches is None else dataset.patches[..., None],
            norm_Y_I=scale_nphotons(diff3d, nphotons=dataset.photons),
        )
        raw.intensity_scale = s
        sim = dataset.provenance.get("simulation", {})
        raw.metadata = {
            "nphotons": float(dataset.photons),
            "intensity_scale": s,
            "poisson": bool(getattr(dataset.detector, "poisson", True)),
            "seed": sim.get("seed"),
            "N": dataset.N,
            "n_modes": dataset.n_modes,
            "source": "ptyfast.Dataset",
        }
        return raw

    @staticmethod
    def from_file(
        train_data_file_path: str | os.PathLike[str],
        validate_config: bool = False,
        current_config: Any = None,
    ) -> RawData:
        """Load a raw NPZ (data contract: README, "NPZ files"), strictly.

        Required keys: ``xcoords``, ``ycoords``, ``diff3d`` (or ``diffraction``), ``probeGuess``.
        Optional: ``xcoords_start``/``ycoords_start`` (default: the coordinates), ``scan_index``
        (default: int64 zeros), ``objectGuess``, ``Y``, ``_metadata`` (JSON).

        Reading is strict and memory-bounded (:class:`ptyfast._npz.NpzReader`): only these
        members are read; every declared shape is checked against the others and against the
        available memory before anything is allocated; a member that is present but unreadable
        (corrupt, truncated, a decompression bomb) is an error naming the file and the key,
        never replaced by a default. Pickles are never loaded: an optional member stored as a
        pickled object array (the reference writes a missing ``objectGuess`` as a pickled
        ``None``) reads as absent; a required one is an error.

        Parameters
        ----------
        train_data_file_path : str or os.PathLike
            The ``.npz`` file.
        validate_config : bool, default False
            Compare ``nphotons``, ``N`` and ``gridsize`` of the file's metadata with
            ``current_config`` and log a warning for each mismatch (as the reference does).
        current_config : TrainingConfig, optional
            The configuration to compare with.

        Returns
        -------
        RawData
            With ``metadata`` from ``_metadata`` and ``intensity_scale`` from it when recorded.

        Raises
        ------
        ValueError
            An empty path or a directory; not an ``.npz`` archive, truncated; a required key
            missing or pickled; any member read unreadable; inconsistent shapes; wrong dtypes;
            non-finite values; larger than the memory available; invalid ``_metadata``.
        FileNotFoundError
            No file at the path (the message names ``train_data_file_path`` and the path).
        TypeError
            ``train_data_file_path`` not a str or os.PathLike; ``validate_config`` not a bool.
        OSError
            The file cannot be opened otherwise (e.g. ``PermissionError``).
        """
        validate_config = _kernels._flag("validate_config", validate_config)
        path = _check_input_file("train_data_file_path", train_data_file_path)
        with NpzReader(path) as r:
            diff_key = "diffraction" if "diffraction" in r and "diff3d" not in r else "diff3d"
            required = ("xcoords", "ycoords", diff_key, "probeGuess")
            missing = [k for k in required if k not in r]
            if missing:
                raise ValueError(
                    f"{path} is missing required key(s) {missing}; a raw NPZ needs "
                    f"{list(_REQUIRED_KEYS)} ('diffraction' is accepted for 'diff3d')"
                )
            for key in required:
                if r.is_pickled(key):
                    raise ValueError(
                        f"{path}: required member {key!r} is a pickled object array; "
                        "ptyfast never unpickles files"
                    )
            optional = [
                k
                for k in ("xcoords_start", "ycoords_start", "scan_index", "objectGuess", "Y")
                if k in r and not r.is_pickled(k)
            ]
            _check_declared_shapes(r, path, diff_key, optional)
            metadata = read_metadata(r)
            arrays = {k: r.read(k) for k in (*required, *optional)}
        for key in ("xcoords", "ycoords", "xcoords_start", "ycoords_start"):
            v = arrays.get(key)
            if v is not None and v.dtype.kind not in "iuf":
                raise ValueError(f"{path}: {key} must be real numbers (float64), got {v.dtype}")
        d = arrays[diff_key]
        if d.dtype.kind not in "iuf":
            raise ValueError(
                f"{path}: diff3d must be real amplitudes (float32) or uint16 counts, got "
                f"dtype {d.dtype}"
            )
        p = arrays["probeGuess"]
        if p.dtype.kind not in "fc":
            raise ValueError(f"{path}: probeGuess must be complex64 (or real), got {p.dtype}")
        x, y = arrays["xcoords"], arrays["ycoords"]
        xs, ys = arrays.get("xcoords_start"), arrays.get("ycoords_start")
        if (xs is None) != (ys is None):
            xs = ys = None  # one start array alone is not a start position; as the reference
            logger.warning("%s: only one of xcoords_start/ycoords_start; using the positions", path)
        scan_index = arrays.get("scan_index")
        if scan_index is None:
            scan_index = np.zeros(x.shape[0], dtype=np.int64)
        try:
            raw = RawData(
                x,
                y,
                xs,
                ys,
                d,
                p,
                scan_index,
                arrays.get("objectGuess"),
                Y=arrays.get("Y"),
                metadata=metadata,
            )
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{path}: {exc}") from None
        if metadata:
            scale = metadata.get("intensity_scale")
            if scale is None:
                scale = (metadata.get("physics_parameters") or {}).get("intensity_scale")
            if scale is not None:
                try:
                    raw.intensity_scale = _kernels._positive_float("intensity_scale", scale)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{path}: _metadata {exc}") from None
        if validate_config and metadata and current_config is not None:
            for warning in _metadata_mismatches(metadata, current_config):
                logger.warning("Parameter mismatch: %s", warning)
        return raw

    @staticmethod
    def from_files(
        train_data_file_path: str | os.PathLike[str], test_data_file_path: str | os.PathLike[str]
    ) -> tuple[RawData, RawData]:
        """``(from_file(train), from_file(test))``, as the reference's helper.

        Raises
        ------
        ValueError, OSError
            As :meth:`from_file`, for either file.
        """
        return RawData.from_file(train_data_file_path), RawData.from_file(test_data_file_path)

    def to_file(self, file_path: str | os.PathLike[str]) -> None:
        """Write the raw NPZ atomically (temporary file + rename).

        Keys: ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start``, ``diff3d``,
        ``probeGuess``, ``scan_index``, ``objectGuess`` (omitted when ``None``), ``Y`` (when
        present) and ``_metadata`` (JSON, when there is any): the recorded keys (``nphotons``,
        ``intensity_scale``, ``seed``, ...) at the top level, and arranged in the schema of
        PtychoPINN's ``MetadataManager`` (``physics_parameters.nphotons`` ...; see
        :func:`ptyfast._npz.metadata_record`), so PtychoPINN reads the real photon count.
        """
        metadata = dict(self.metadata)
        if self.intensity_scale is not None:
            metadata["intensity_scale"] = float(self.intensity_scale)
        save_npz(
            file_path,
            {
                "xcoords": self.xcoords,
                "ycoords": self.ycoords,
                "xcoords_start": self.xcoords_start,
                "ycoords_start": self.ycoords_start,
                "diff3d": self.diff3d,
                "probeGuess": self.probeGuess,
                "objectGuess": self.objectGuess,
                "scan_index": self.scan_index,
                "Y": self.Y,
            },
            metadata_record(metadata) if metadata else None,
        )

    # ------------------------------------------------------------------ grouping

    def generate_grouped_data(
        self,
        N: int,
        K: int = 4,
        nsamples: int = 1,
        dataset_path: str | None = None,
        seed: int | None = None,
        sequential_sampling: bool = False,
        gridsize: int | None = None,
        enable_oversampling: bool = False,
        neighbor_pool_size: int | None = None,
    ) -> dict[str, Any]:
        """Group positions into sets of ``gridsize**2`` neighbours.

        See :func:`ptyfast.grouping.group_dataset` for the parameters and the returned dict.

        ``gridsize=None`` falls back to ``ptyfast.params.cfg['gridsize']`` as the reference
        does. ``dataset_path`` is accepted for compatibility and unused.
        """
        del dataset_path
        if gridsize is None:
            from . import params

            gridsize = params.cfg["gridsize"]
        return group_dataset(
            self.xcoords,
            self.ycoords,
            self.xcoords_start,
            self.ycoords_start,
            self.diff3d,
            N=N,
            K=K,
            nsamples=nsamples,
            seed=seed,
            sequential_sampling=sequential_sampling,
            gridsize=gridsize,
            enable_oversampling=enable_oversampling,
            neighbor_pool_size=neighbor_pool_size,
            Y=self.Y,
            objectGuess=self.objectGuess,
            sample_indices=self.sample_indices,
        )

    def _generate_groups_efficiently(
        self, nsamples: int, K: int, C: int, seed: int | None = None, seed_indices: Any = None
    ) -> np.ndarray:
        """Reference "sample-then-group" selection: ``(n_seeds, C)`` indices."""
        return generate_groups_efficiently(
            self.xcoords, self.ycoords, nsamples, K, C, seed=seed, seed_indices=seed_indices
        )

    def _generate_groups_with_oversampling(
        self, nsamples: int, K: int, C: int, seed: int | None = None, seed_indices: Any = None
    ) -> np.ndarray:
        """Reference K-choose-C oversampling: ``(nsamples, C)`` indices."""
        return generate_groups_with_oversampling(
            self.xcoords, self.ycoords, nsamples, K, C, seed=seed, seed_indices=seed_indices
        )

    def __len__(self) -> int:
        return int(self.xcoords.shape[0])

    def __repr__(self) -> str:
        def shape(a: Any) -> str:
            return "None" if a is None else f"{tuple(a.shape)} {a.dtype}"

        return (
            f"RawData(n={len(self)}, diff3d={shape(self.diff3d)}, "
            f"probeGuess={shape(self.probeGuess)}, objectGuess={shape(self.objectGuess)}, "
            f"Y={shape(self.Y)}, intensity_scale={self.intensity_scale})"
        )

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

import logging
import os
from typing import Any

import numpy as np

from . import _kernels
from ._npz import load_npz, save_npz
from .grouping import (
    generate_groups_efficiently,
    generate_groups_with_oversampling,
    get_image_patches,
    get_relative_coords,
    group_dataset,
    normalize_data,
)
from .intensity import _default_nphotons, scale_nphotons, simulation_scale

__all__ = [
    "RawData",
    "get_image_patches",
    "get_relative_coords",
    "normalize_data",
    "simulate_raw",
]

logger = logging.getLogger(__name__)

_REQUIRED_KEYS = ("xcoords", "ycoords", "diff3d", "probeGuess")


def _optional_array(a: Any) -> np.ndarray | None:
    """``a`` as a NumPy array (TensorFlow tensors converted, no copy otherwise), or ``None``."""
    return None if a is None else np.asarray(_kernels.from_tensor(a))


def _coords(name: str, a: Any) -> np.ndarray:
    arr = _kernels.from_tensor(a)
    if arr is None:
        raise TypeError(f"{name} must be a 1-D array, got None")
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return arr


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
) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """Simulate diffraction at explicit positions; the engine behind ``RawData.from_simulation``.

    Returns ``(diff3d, Y, s)``: float32 ``(M, N, N)`` amplitudes divided by the intensity scale
    ``s`` (the reference's stored ``X``), complex64 ``(M, N, N, 1)`` pre-probe object patches,
    and ``s`` (float32).
    """
    x = _coords("xcoords", xcoords)
    y = _coords("ycoords", ycoords)
    if x.shape != y.shape:
        raise ValueError(f"ycoords must have the shape of xcoords {x.shape}, got {y.shape}")
    if x.size == 0:
        raise ValueError("xcoords must hold at least one position, got 0")
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape[0] != probe.shape[1] or probe.shape[0] < 2:
        raise ValueError(f"probeGuess must be square (N, N) with N >= 2, got {probe.shape}")
    positions = np.column_stack([x, y]).astype(np.float64)
    s = intensity_scale_of(obj, positions, probe, nphotons)
    seed_value = _kernels.resolve_seed(seed) if poisson else None
    diff3d, patches = _kernels.simulate(
        obj,
        positions,
        probe,
        scale=s,
        poisson=poisson,
        seed=seed_value,
        divide_by_scale=True,
        return_patches=True,
    )
    assert patches is not None
    return diff3d, patches[..., None], s


class RawData:
    """Ungrouped ptychography scan data.

    Parameters
    ----------
    xcoords, ycoords : array_like, (M,)
        Scan positions in object pixels (``x`` = column, ``y`` = row).
    xcoords_start, ycoords_start : array_like, (M,)
        Nominal ("start") positions; equal to ``xcoords``/``ycoords`` for simulated data.
    diff3d : array_like, (M, N, N)
        Diffraction amplitudes (float32; legacy uint16 intensities are accepted as stored).
    probeGuess : array_like, (N, N)
        The probe, real or complex.
    scan_index : array_like, (M,)
        Integer scan index per position.
    objectGuess : array_like, (H, W), optional
        The full object.
    Y : array_like, (M, N, N) or (M, N, N, 1), optional
        Ground-truth object patches.
    norm_Y_I : float, optional
        ``scale_nphotons(diff3d)`` as the reference records it.
    metadata : dict, optional
        Free-form metadata, stored under ``_metadata`` by :meth:`to_file`.

    Raises
    ------
    ValueError
        On inconsistent shapes: coordinate arrays of different shapes, ``diff3d`` not
        ``(M, N, N)`` with ``M`` the number of positions, ``probeGuess`` not 2-D,
        ``scan_index`` not 1-D of length ``M``, ``objectGuess`` not 2-D, non-finite coordinates.

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
        self.xcoords = _coords("xcoords", xcoords)
        self.ycoords = _coords("ycoords", ycoords)
        self.xcoords_start = (
            None if xcoords_start is None else _coords("xcoords_start", xcoords_start)
        )
        self.ycoords_start = (
            None if ycoords_start is None else _coords("ycoords_start", ycoords_start)
        )
        n = self.xcoords.shape
        for name, arr in (
            ("ycoords", self.ycoords),
            ("xcoords_start", self.xcoords_start),
            ("ycoords_start", self.ycoords_start),
        ):
            if arr is not None and arr.shape != n:
                raise ValueError(f"{name} must have the shape of xcoords {n}, got {arr.shape}")
        m = n[0]
        self.diff3d = _optional_array(diff3d)
        if self.diff3d is not None:
            d = self.diff3d
            if d.ndim != 3 or d.shape[1] != d.shape[2]:
                raise ValueError(f"diff3d must be (M, N, N), got shape {d.shape}")
            if d.shape[0] != m:
                raise ValueError(
                    f"diff3d must hold one pattern per position ({m}), got {d.shape[0]}"
                )
            if d.dtype.kind not in "iuf":
                raise TypeError(f"diff3d must hold real amplitudes, got dtype {d.dtype}")
        self.probeGuess = _optional_array(probeGuess)
        if self.probeGuess is not None and self.probeGuess.ndim != 2:
            raise ValueError(f"probeGuess must be 2-D (N, N), got shape {self.probeGuess.shape}")
        self.scan_index = _optional_array(scan_index)
        if self.scan_index is not None and self.scan_index.shape != n:
            raise ValueError(
                f"scan_index must be 1-D of length {m}, got shape {self.scan_index.shape}"
            )
        self.objectGuess = _optional_array(objectGuess)
        if self.objectGuess is not None and self.objectGuess.ndim != 2:
            raise ValueError(f"objectGuess must be 2-D (H, W), got shape {self.objectGuess.shape}")
        self.Y = _optional_array(Y)
        self.norm_Y_I = _kernels.from_tensor(norm_Y_I)
        self.metadata = dict(metadata) if metadata else {}
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
            Seed of the Poisson noise (pattern ``i`` uses stream ``(seed, i)``).

        Returns
        -------
        RawData
            ``diff3d`` float32 ``(M, N, N)``: amplitudes divided by the intensity scale ``s``;
            ``Y`` complex64 ``(M, N, N, 1)``: pre-probe object patches; ``norm_Y_I``:
            ``scale_nphotons(diff3d)``; ``intensity_scale``: ``s``; start coordinates equal
            to the coordinates.

        Notes
        -----
        Works for any gridsize and for a single position (the reference refuses gridsize > 1
        and breaks on ``M = 1``): simulation is per position, grouping comes later.
        """
        nph = _default_nphotons(nphotons)
        diff3d, Y, s = simulate_raw(
            xcoords, ycoords, probeGuess, objectGuess, nphotons=nph, poisson=poisson, seed=seed
        )
        x = _coords("xcoords", xcoords)
        y = _coords("ycoords", ycoords)
        if scan_index is None:
            scan_index = np.zeros(x.shape[0], dtype=np.int64)
        raw = RawData(
            x,
            y,
            x,
            y,
            diff3d,
            probeGuess,
            scan_index,
            objectGuess,
            Y=Y,
            norm_Y_I=scale_nphotons(diff3d, nphotons=nph),
        )
        raw.intensity_scale = float(s)
        raw.metadata = {"nphotons": nph, "intensity_scale": float(s), "poisson": bool(poisson)}
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
    def from_file(train_data_file_path: str | os.PathLike[str]) -> RawData:
        """Load a raw NPZ (data contract: README, "NPZ files").

        Required keys: ``xcoords``, ``ycoords``, ``diff3d`` (or ``diffraction``), ``probeGuess``.
        Optional: ``xcoords_start``/``ycoords_start`` (default: the coordinates), ``scan_index``
        (default: int64 zeros), ``objectGuess``, ``Y``, ``_metadata`` (JSON).

        Raises
        ------
        ValueError
            If a required key is missing or an array has the wrong rank or dtype.
        """
        arrays, metadata = load_npz(train_data_file_path)
        if "diff3d" not in arrays and "diffraction" in arrays:
            arrays["diff3d"] = arrays["diffraction"]
        missing = [k for k in _REQUIRED_KEYS if arrays.get(k) is None]
        if missing:
            raise ValueError(
                f"{os.fspath(train_data_file_path)} is missing required key(s) {missing}; "
                f"a raw NPZ needs {list(_REQUIRED_KEYS)} ('diffraction' is accepted for 'diff3d')"
            )
        x = arrays["xcoords"]
        y = arrays["ycoords"]
        assert x is not None and y is not None
        for key in ("xcoords", "ycoords", "xcoords_start", "ycoords_start"):
            v = arrays.get(key)
            if v is not None and v.dtype.kind not in "iuf":
                raise ValueError(f"{key} must be real numbers (float64), got dtype {v.dtype}")
        d = arrays["diff3d"]
        assert d is not None
        if d.dtype.kind not in "iuf":
            raise ValueError(
                f"diff3d must be real amplitudes (float32) or uint16 counts, got dtype {d.dtype}"
            )
        p = arrays["probeGuess"]
        assert p is not None
        if p.dtype.kind not in "fc":
            raise ValueError(f"probeGuess must be complex64 (or real), got dtype {p.dtype}")
        xs = arrays.get("xcoords_start")
        ys = arrays.get("ycoords_start")
        scan_index = arrays.get("scan_index")
        if scan_index is None:
            scan_index = np.zeros(x.shape[0], dtype=np.int64)
        raw = RawData(
            x,
            y,
            x if xs is None else xs,
            y if ys is None else ys,
            d,
            p,
            scan_index,
            arrays.get("objectGuess"),
            Y=arrays.get("Y"),
            metadata=metadata,
        )
        if metadata and "intensity_scale" in metadata:
            raw.intensity_scale = float(metadata["intensity_scale"])
        return raw

    def to_file(self, file_path: str | os.PathLike[str]) -> None:
        """Write the raw NPZ atomically (temporary file + rename).

        Keys: ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start``, ``diff3d``,
        ``probeGuess``, ``scan_index``, ``objectGuess`` (omitted when ``None``), ``Y`` (when
        present) and ``_metadata`` (JSON, when there is any).
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
            metadata or None,
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
        if self.diff3d is None:
            raise ValueError("diff3d must be set to group data, got None")
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

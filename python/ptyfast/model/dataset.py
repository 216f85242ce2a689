"""``Dataset``: what a simulation (or a file) holds, in one place.

A :class:`Dataset` is the output of :func:`ptyfast.simulate` and of :func:`ptyfast.open`.
Array conventions are the README's: patterns ``(M, N, N)`` with the zero frequency at
``[N//2, N//2]``; positions ``(M, 2)`` as ``(x, y)`` in object pixels (``x`` = column,
``y`` = row), the scan point sampled at patch pixel ``(N//2, N//2)``.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import Geometry

if TYPE_CHECKING:  # pragma: no cover
    from ..raw_data import RawData

__all__ = ["Dataset"]


def _check(name: str, a: Any, kinds: str, ndim: int) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind not in kinds:
        raise TypeError(f"{name} must have a dtype of kind {kinds!r}, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


@dataclass(eq=False)
class Dataset:
    """A simulated (or loaded) ptychography dataset.

    Attributes
    ----------
    diffraction : numpy.ndarray, (M, N, N)
        The detector's readings in the detector's dtype (``float32`` photon counts for the
        ideal detector; ADU or integer counts for others), zero frequency at
        ``[N//2, N//2]``. Not fftshifted back, not square-rooted: readings, not amplitudes.
    mask : numpy.ndarray, bool, (N, N)
        ``True`` where a pixel is valid (not in a gap, under the beamstop or bad).
    positions_nominal, positions_true : numpy.ndarray, float64, (M, 2)
        Commanded and actual scan positions ``(x, y)`` in object pixels. The simulation used
        ``positions_true``.
    probe : numpy.ndarray, complex64, (P, N, N)
        The illumination's ``P >= 1`` incoherent modes, ``Σ_k Σ |probe[k]|² = 1`` for built
        probes (the photon count is set by ``photons``, not by the probe's norm).
    object : numpy.ndarray, complex64, (H, W)
        The object (transmission function).
    provenance : dict
        JSON-serialisable record of everything needed to regenerate the data bit for bit
        (:func:`ptyfast.replay`): ptyfast version, every parameter, every seed.
    geometry : Geometry or None
        Physical geometry, when the experiment had one (positions and pixels in metres).
    detector : ptyfast.Detector or None
        The detector that produced ``diffraction`` (knows what the readings mean).
    photons : float
        Mean photons per pattern reaching the detector (before QE), as simulated (a real
        number; NaN, the default, when not known).
    intensity_scale : float
        ``s = sqrt(photons / mean_i Σ_k Σ |probe_k · patch_i|²)``: the field factor that turns
        the unit-norm probe into photons (PtychoPINN's intensity scale); NaN, the default,
        when not known.
    patches : numpy.ndarray, complex64, (M, N, N), or None
        Object patches at the true positions (before the probe), when asked for.
    """

    diffraction: np.ndarray
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
    patches: np.ndarray | None = None

    def __post_init__(self) -> None:
        d = _check("diffraction", self.diffraction, "fiu", 3)
        m, n, n2 = d.shape
        if n != n2:
            raise ValueError(f"diffraction must be (M, N, N), got {d.shape}")
        mask = _check("mask", self.mask, "b", 2)
        if mask.shape != (n, n):
            raise ValueError(f"mask must be (N, N) = ({n}, {n}), got {mask.shape}")
        for name in ("positions_nominal", "positions_true"):
            p = _check(name, getattr(self, name), "f", 2)
            if p.shape != (m, 2):
                raise ValueError(f"{name} must be (M, 2) = ({m}, 2), got {p.shape}")
        pr = _check("probe", self.probe, "c", 3)
        if pr.shape[1:] != (n, n) or pr.shape[0] < 1:
            raise ValueError(f"probe must be (P, N, N) = (P, {n}, {n}), got {pr.shape}")
        _check("object", self.object, "c", 2)
        if self.patches is not None:
            pa = _check("patches", self.patches, "c", 3)
            if pa.shape != d.shape:
                raise ValueError(f"patches must be (M, N, N) = {d.shape}, got {pa.shape}")
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
        if not isinstance(self.provenance, dict):
            raise TypeError(f"provenance must be a dict, got {type(self.provenance).__name__}")
        if self.detector is not None:
            from .detector import Detector  # (detector imports nothing of this module)

            if not isinstance(self.detector, Detector):
                raise TypeError(
                    "detector must be a ptyfast.Detector or None (what the readings mean), "
                    f"got {type(self.detector).__name__}"
                )
        for name in ("photons", "intensity_scale"):  # NaN (the default): not known
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")

    # ------------------------------------------------------------------ shape facts

    @property
    def n_patterns(self) -> int:
        """``M``, the number of patterns."""
        return int(self.diffraction.shape[0])

    @property
    def N(self) -> int:  # noqa: N802 - the field's usual name
        """Pattern size ``N``."""
        return int(self.diffraction.shape[1])

    @property
    def n_modes(self) -> int:
        """Number of incoherent probe modes ``P``."""
        return int(self.probe.shape[0])

    def __len__(self) -> int:
        return self.n_patterns

    def __repr__(self) -> str:
        return (
            f"Dataset(M={self.n_patterns}, N={self.N}, modes={self.n_modes}, "
            f"diffraction={self.diffraction.dtype}, object={self.object.shape}, "
            f"photons={self.photons:g}, geometry={'yes' if self.geometry else 'no'})"
        )

    # ------------------------------------------------------------------ conversions

    def to_raw_data(self) -> RawData:
        """A PtychoPINN :class:`~ptyfast.raw_data.RawData` (see ``RawData.from_dataset``)."""
        from ..raw_data import RawData

        return RawData.from_dataset(self)

    def preview(
        self, path: str | os.PathLike[str], *, overwrite: bool = False, **options: Any
    ) -> Any:
        """Write the preview figure (PNG, PDF or SVG by extension): :func:`ptyfast.plotting.preview`
        (``overwrite`` a flag; ``options``: ``n_patterns``, ``name``, ``dpi``); returns the
        path."""
        from .. import plotting

        return plotting.preview(self, path, overwrite=overwrite, **options)

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,  # noqa: A002 - the documented keyword
        compress: bool = False,
        overwrite: bool = False,
    ) -> None:
        """Write the dataset: :func:`ptyfast.io.save` (``format`` from the extension unless
        given; ``compress`` and ``overwrite`` flags); see :mod:`ptyfast.io`."""
        from .. import io

        io.save(self, path, format=format, compress=compress, overwrite=overwrite)

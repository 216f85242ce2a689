"""Physical geometry of a far-field (Fraunhofer) ptychography experiment.

Without a :class:`Geometry` ptyfast works in pixels: positions in object pixels, patterns in
detector pixels. With one, every pixel has a size in metres:

* wavelength ``λ = h·c / E`` (``E`` the photon energy in eV, CODATA 2018 exact constants);
* object (sample-plane) pixel ``Δx = λ·z / (N·Δ)`` for a detector of ``N × N`` pixels of
  pitch ``Δ`` at distance ``z`` from the sample (the reciprocal of the detector's angular
  extent: one detector pixel is one Fourier sample ``1/(N·Δx)`` of the exit wave).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Geometry", "PLANCK_EV_S", "SPEED_OF_LIGHT_M_S", "HC_EV_M"]

#: Planck constant in eV·s (exact since the 2019 SI redefinition: h / e).
PLANCK_EV_S = 6.62607015e-34 / 1.602176634e-19
#: Speed of light in m/s (exact).
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: ``h·c`` in eV·m (≈ 1.23984e-6): ``λ[m] = HC_EV_M / E[eV]``.
HC_EV_M = PLANCK_EV_S * SPEED_OF_LIGHT_M_S


def _positive(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return f


#: Range of the derived lengths (wavelength, object pixel), in metres.
_DERIVED_MIN, _DERIVED_MAX = 1e-150, 1e150


@dataclass(frozen=True)
class Geometry:
    """Photon energy, sample–detector distance, detector pixel pitch and pattern size.

    Parameters
    ----------
    energy_eV : float
        Photon energy in electronvolts (> 0).
    distance_m : float
        Sample-to-detector distance in metres (> 0).
    detector_pixel_m : float
        Detector pixel pitch in metres (> 0; square pixels).
    N : int
        Pattern (and probe) size in pixels, ``>= 2``.

    Raises
    ------
    TypeError
        A parameter is not a real number (``N``: not an integer).
    ValueError
        A parameter is not positive and finite, or ``N < 2``; the wavelength or the object
        pixel size outside ``[1e-150, 1e150]`` m (where their squares and reciprocals would
        leave float64).

    Examples
    --------
    >>> g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=128)
    >>> round(g.wavelength_m * 1e10, 4)  # Å
    1.5498
    >>> round(g.object_pixel_m * 1e9, 2)  # nm
    32.29
    """

    energy_eV: float
    distance_m: float
    detector_pixel_m: float
    N: int

    def __post_init__(self) -> None:
        for name in ("energy_eV", "distance_m", "detector_pixel_m"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        n = self.N
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"N must be an integer, got {type(n).__name__} {n!r}")
        if int(n) < 2:
            raise ValueError(f"N must be >= 2, got {n}")
        object.__setattr__(self, "N", int(n))
        # Probe propagation squares and inverts these: keep both within float64.
        for name, v in (
            ("wavelength_m", self.wavelength_m),
            ("object_pixel_m", self.object_pixel_m),
        ):
            if not _DERIVED_MIN <= v <= _DERIVED_MAX:
                raise ValueError(
                    f"{name} = {v:g} (derived from energy_eV={self.energy_eV!r}, distance_m="
                    f"{self.distance_m!r}, detector_pixel_m={self.detector_pixel_m!r}, N={self.N})"
                    f" must be within [{_DERIVED_MIN:g}, {_DERIVED_MAX:g}] m"
                )

    @property
    def wavelength_m(self) -> float:
        """Wavelength ``λ = h·c / E`` in metres."""
        return HC_EV_M / self.energy_eV

    @property
    def object_pixel_m(self) -> float:
        """Object (sample-plane) pixel size ``λ·z / (N·Δ)`` in metres."""
        return self.wavelength_m * self.distance_m / (self.N * self.detector_pixel_m)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-serialisable dict (``Geometry(**d)`` rebuilds it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Geometry:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``ValueError``."""
        want = {"energy_eV", "distance_m", "detector_pixel_m", "N"}
        if not isinstance(d, dict) or set(d) != want:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"geometry must be a dict with keys {sorted(want)}, got {got}")
        return cls(**d)

"""``Detector``: what a pixel detector makes of the photons reaching it.

A :class:`Detector` reads like a data sheet. The simulation hands it, per pattern ``i`` and
pixel ``q``, the expected number of photons reaching the detector plane
``λ_iq = Σ_k A_ikq²`` (README "Conventions"), and the Rust detector stage turns it into
readings, in this order (``_kernels.acquire``; all draws exact and keyed, below):

==========================  ==================================================  ====================
parameter                   what it models, and how                             units
==========================  ==================================================  ====================
``beamstop_radius_px``      the beamstop's shadow: pixels whose centre lies     pixels
                            closer than ``r`` to the zero frequency
                            ``[N//2, N//2]`` receive no photons; they still
                            read dark counts, offset and read noise (and
                            counts the PSF spreads in). Masked.
``module_px``, ``gap_px``,  a modular detector: modules of ``module_px =        pixels
``n_modules``, ``beam_px``  (rows, cols)`` separated by gaps of ``gap_px``;
                            ``n_modules = (rows, cols)`` bounds the detector
                            (None: unbounded tiling). Gap pixels (and pixels
                            beyond the detector) have no sensor: no photon is
                            detected, they read 0. Masked.
``qe``                      quantum efficiency: ``λ ← qe·λ`` (a binomial        fraction in (0, 1]
                            thinning of Poisson photons: counts stay Poisson)
``dead_time_s``,            a non-paralyzable counter with dead time ``τ``      seconds
``exposure_s``              over an exposure ``T``: mean counts
                            ``λ ← λ / (1 + λ·τ/T)`` (the variance is kept
                            Poisson; the sub-Poisson narrowing of a real
                            counter is not modelled)
``poisson``                 shot noise: detected counts ``c ~ Poisson(λ)``      –
                            (exact at every rate); ``False``: ``c = λ`` and
                            dark counts at their mean
``poisson_stream``          the exact Poisson stream, keyed by ``(seed,         –
                            pattern)``: ``"v1"`` (default, today's bits) or
                            ``"v2"`` (faster; README, "Noise streams")
``psf_sigma_px``            point spread of the detected counts (charge         pixels
                            sharing, scintillator blur): ``c ← G_σ ⊛ c``,
                            ``G_σ ∝ exp(−d²/2σ²)`` separable, truncated at
                            ``⌊4σ + ½⌋`` pixels, normalised; zero outside the
                            pattern (SciPy's ``gaussian_filter``,
                            ``mode='constant'``)
``dark``                    dark (thermal) counts per pixel and frame:          counts/pixel/frame
                            ``d ~ Poisson(dark)``, added after the PSF
``gain``                    conversion to ADU: ``v = gain·(c + d) + offset``    ADU per count
``offset``                  the ADC pedestal                                    ADU
``read_noise``              readout noise: ``v ← v + read_noise·z``,            ADU rms
                            ``z ~ N(0, 1)`` (every draw has ``|z| < 16``;
                            float readings need ``read_noise <=`` their
                            largest value / 16)
``full_well``               saturation: ``v ← min(v, full_well)`` (None: the    ADU
                            dtype's range)
``dtype``, ``overflow``     the readings' format: ``float32``/``float64``       –
                            keep ``v`` (rounded to the type; beyond its
                            range, its largest value); ``uint8`` /
                            ``uint16`` / ``uint32`` round half to even, read
                            0 below 0, and above the type's maximum saturate
                            (``overflow='saturate'``, a counter with overflow
                            protection, an ADC at full scale) or keep the
                            count modulo ``2**bits`` (``'wrap'``, a counter
                            that rolls over, e.g. EIGER2's 8-bit mode)
``dead_pixels``,            dead pixels: detected photons (spread by the PSF)   –, fraction
``dead_fraction``           but the pixel reads 0. Masked.
``hot_pixels``,             hot pixels: read the saturation level               –, fraction
``hot_fraction``            (``full_well``, else the dtype's maximum). Masked.
``bad_pixel_seed``          draws of the fractions: ``u = Generator(PCG64(      –
                            seed)).random((N, N))``, dead where
                            ``u < dead_fraction``, hot where
                            ``dead_fraction <= u < dead_fraction +
                            hot_fraction`` (drawn per pattern size ``N``)
``pixel_m``                 pixel pitch (metadata: for a ``Geometry``)          metres
``name``                    a label (the preset's name, e.g. ``eiger2-4M``);    –
                            recorded, no effect on the readings
==========================  ==================================================  ====================

So a valid pixel reads ``min(gain·(c + d) + offset + read_noise·z, full_well)`` quantised to
the dtype; its mean is ``gain·(λ' + dark) + offset``, where ``λ'`` is the mean of the detected
counts: after the beamstop, the QE and the dead time, which acts on the detected photons,
``λ' = qe·λ/(1 + qe·λ·τ/T)`` (``qe·λ`` without dead time), then spread by the PSF. Below
saturation and without PSF its variance is ``gain²·(λ' + dark) + read_noise²`` (plus ``1/12``
for integer rounding when the spread is wide). :meth:`Detector.readings_to_photons` inverts
the affine part.

**Randomness.** Pattern ``i``'s shot noise comes from the ``poisson_stream`` stream
``(seed, i)`` (``"v1"`` by default, today's), so the ideal detector (:meth:`Detector.ideal`)
keeps today's bits; the dark counts and the read noise
come from their own streams ``(stage_seed(seed, k), i)`` (Rust ``detector`` module docs).
Adding a stage never moves another's draws, and every stage draws for every pixel, masked or
not.

**Where the gaps fall.** The ``N × N`` pattern is a crop of the detector centred on the beam:
pattern pixel ``(r, c)`` is detector pixel ``(beam_px[0] + r − N//2, beam_px[1] + c − N//2)``
(zero frequency on ``beam_px``). Detector rows ``R`` with ``R mod (module_px[0] + gap_px[0])
>= module_px[0]`` are gap rows (likewise columns), and with ``n_modules`` every pixel outside
``[0, n·module + (n − 1)·gap)`` is off the detector. By default ``beam_px`` is the centre
pixel ``(module//2)`` of the module nearest the detector's centre (module row
``(n_rows − 1)//2``, column ``(n_cols − 1)//2``), where beamlines put the direct beam for
ptychography: then a crop smaller than a module has no gaps. Pass ``beam_px`` to place the
gaps, e.g. ``beam_px=(module_px[0] + gap_px[0] // 2, ...)`` puts the beam in a gap.

Presets: :meth:`Detector.ideal`, :meth:`Detector.eiger`, :meth:`Detector.pilatus`,
:meth:`Detector.integrating`, :meth:`Detector.preset`.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .. import _kernels
from . import _args

#: Every standard normal of the read-noise stage is below this in magnitude.
Z_MAX = _kernels.Z_MAX

__all__ = ["Detector", "PIXEL_CODES"]


#: Pixel-map flags (:meth:`Detector.pixel_map`): a pixel's code is the OR of its flags.
PIXEL_CODES = {
    "valid": _kernels.PIXEL_VALID,
    "beamstop": _kernels.PIXEL_BEAMSTOP,
    "gap": _kernels.PIXEL_GAP,
    "dead": _kernels.PIXEL_DEAD,
    "hot": _kernels.PIXEL_HOT,
}

_FORMAT = "ptyfast.Detector"
_VERSION = 1

# Module geometries (rows × columns of pixels, gaps between module rows × columns) and
# module counts (rows × columns) of the vendors' detector families: DECTRIS data sheets, as
# tabulated by pyFAI (e.g. EIGER X 4M 2167 × 2070 = 4·514 + 3·37 by 2·1030 + 10; EIGER2 X 4M
# 2162 × 2068; PILATUS 6M 2527 × 2463 = 12·195 + 11·17 by 5·487 + 4·7).
_EIGER = {
    1: {"module_px": (514, 1030), "gap_px": (37, 10)},
    2: {"module_px": (512, 1028), "gap_px": (38, 12)},
}
_EIGER_SIZES = {"500K": (1, 1), "1M": (2, 1), "4M": (4, 2), "9M": (6, 3), "16M": (8, 4)}
_PILATUS = {"module_px": (195, 487), "gap_px": (17, 7)}
_PILATUS_SIZES = {"100K": (1, 1), "300K": (3, 1), "1M": (5, 2), "2M": (8, 3), "6M": (12, 5)}


class _PresetTypeError(TypeError, ValueError):
    """A preset argument of the wrong type (``generation=True``, ``size=4``): a ``TypeError``,
    and a ``ValueError`` as well, which these were until 2026-12-03 (callers' ``except
    ValueError`` keep working; NumPy's ``AxisError`` is a ``ValueError`` and an ``IndexError``
    for the same reason)."""


def _preset_choice(name: str, v: Any, options: Any, kind: type) -> None:
    """``v`` must be a ``kind`` (bools refused) among ``options``: ``TypeError`` naming
    ``name`` for another type, ``ValueError`` for another value."""
    if isinstance(v, bool) or not isinstance(v, kind):
        raise _PresetTypeError(
            f"{name} must be one of {sorted(options)}, got {type(v).__name__} {v!r}"
        )
    if v not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {v!r}")


def _real(name: str, v: Any, *, minimum: float | None = None, above: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {v!r}")
    if above is not None and f <= above:
        raise ValueError(f"{name} must be > {above:g}, got {v!r}")
    return f


def _int_pair(name: str, v: Any, *, minimum: int) -> tuple[int, int]:
    ok = isinstance(v, (tuple, list)) and len(v) == 2
    ok = ok and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in v)
    if not ok:
        raise TypeError(f"{name} must be a pair of integers (rows, cols), got {v!r}")
    a, b = int(v[0]), int(v[1])
    if a < minimum or b < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both axes, got {v!r}")
    if max(abs(a), abs(b)) > _MAX_PIXELS:
        raise ValueError(f"{name} must be at most {_MAX_PIXELS} pixels in magnitude, got {v!r}")
    return a, b


#: Largest pixel count or offset of a detector's geometry (beyond any real detector; keeps
#: the arithmetic on them within int64).
_MAX_PIXELS = 1 << 24


def pixel_table(name: str, v: Any) -> np.ndarray:
    """The ``(N, N)`` bool map of a recorded ``{"shape": [N, N], "pixels": [[row, col], ...]}``
    table (:meth:`Detector.to_dict`, recipes), checked before anything is allocated."""
    if not isinstance(v, dict) or set(v) != {"shape", "pixels"}:
        got = sorted(v) if isinstance(v, dict) else type(v).__name__
        raise ValueError(f"{name} must be a table {{shape, pixels}}, got {got}")
    shape, pixels = v["shape"], v["pixels"]
    if not isinstance(shape, list | tuple) or len(shape) != 2:
        raise TypeError(f"{name}.shape must be [N, N], got {shape!r}")
    n = shape[0]
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or shape[1] != n:
        raise ValueError(f"{name}.shape must be [N, N] with an integer N >= 2, got {shape!r}")
    _kernels.require_memory(f"{name}.shape = [{n}, {n}] bool map", n * n)
    ok = isinstance(pixels, list | tuple) and all(
        isinstance(q, list | tuple)
        and len(q) == 2
        and all(isinstance(c, int) and not isinstance(c, bool) for c in q)
        for q in pixels
    )
    if not ok:
        raise TypeError(
            f"{name}.pixels must be a list of [row, col] integer pairs, got {pixels!r:.80}"
        )
    outside = [q for q in pixels if not (0 <= q[0] < n and 0 <= q[1] < n)]
    if outside:
        raise ValueError(
            f"{name}.pixels must be within 0..{n - 1} (shape [{n}, {n}]), got {outside[0]!r}"
        )
    a = np.zeros((n, n), bool)
    if len(pixels):
        idx = np.asarray(pixels, np.int64).reshape(-1, 2)
        a[idx[:, 0], idx[:, 1]] = True
    return a


def _bool_map(name: str, v: Any) -> np.ndarray | None:
    if v is None:
        return None
    a = _args.asarray(name, v)
    if a.dtype != bool:
        raise TypeError(f"{name} must be a square (N, N) bool array, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(
            f"{name} must be a square (N, N) bool array with N >= 2, got {a.dtype} {a.shape}"
        )
    a = a.copy()
    a.flags.writeable = False
    return a


@dataclass(frozen=True, kw_only=True, eq=False)
class Detector:
    """A pixel detector: counting statistics, gain, noise, saturation, geometry and defects.

    Every parameter is keyword-only and validated here; the module docstring's table says
    what each models, with its formula and units. ``Detector()`` is the ideal detector.

    Parameters
    ----------
    poisson : bool
        Exact Poisson shot noise on the detected (and dark) counts; False: expected counts.
    poisson_stream : str
        The exact Poisson stream: ``"v1"`` (the default; today's bits, the ideal detector's)
        or ``"v2"`` (the faster stream of ``observe_amplitudes(version="v2")``; README,
        "Noise streams (stability policy)"). Both sample the exact Poisson law; the name is
        recorded in provenance and a replay uses it.
    qe : float
        Quantum efficiency in (0, 1].
    gain : float
        ADU per detected count (> 0).
    offset : float
        ADU added to every reading (>= 0).
    read_noise : float
        Read noise, ADU rms (>= 0).
    dark : float
        Mean dark counts per pixel per frame (>= 0).
    psf_sigma_px : float
        Gaussian point spread of the detected counts, pixels: 0 (none) or from 1.6e-162 (its
        square must be a positive float64) to 1e4.
    full_well : float or None
        Saturation level of the readings, ADU (> offset; the dtype must hold it).
    dtype : str
        ``"float32"``, ``"float64"``, ``"uint8"``, ``"uint16"`` or ``"uint32"``.
    overflow : str
        Integer readings above the dtype's maximum: ``"saturate"`` or ``"wrap"``.
    beamstop_radius_px : float
        Beamstop shadow radius around the zero frequency, pixels (>= 0; <= N/2 for a
        pattern of size N).
    module_px : (int, int) or None
        Module size (rows, cols) in pixels; None: a gapless, unbounded sensor.
    gap_px : (int, int)
        Gap widths between module rows and between module columns, pixels (each smaller
        than the module).
    n_modules : (int, int) or None
        Modules in (rows, cols): the detector's extent (None: unbounded tiling).
    beam_px : (int, int) or None
        Detector pixel (row, col) of the zero frequency; default in the module docstring.
    dead_pixels, hot_pixels : (N, N) bool array or None
        Explicit dead / hot pixels of an ``N × N`` pattern (binds the detector to that N).
    dead_fraction, hot_fraction : float
        Fractions of pixels drawn dead / hot (each in [0, 1], sum <= 1).
    bad_pixel_seed : int, numpy.random.Generator or None
        Seed of those draws; resolved to an int (recorded) when a fraction is non-zero.
    dead_time_s, exposure_s : float or None
        Counter dead time and exposure time, seconds (given together; exposure > 0).
    pixel_m : float or None
        Pixel pitch in metres (metadata).
    name : str
        A label (the preset's name).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range, naming it (negative noise, full well
        below the offset, gain <= 0, gaps as wide as a module, a dtype that cannot hold the
        full well, ...).

    Examples
    --------
    >>> det = Detector(qe=0.8, gain=10.0, offset=100.0, read_noise=3.0, dtype="uint16",
    ...                full_well=60000.0)
    >>> bool(det.mask(64).all()), det.is_ideal
    (True, False)
    >>> Detector.from_dict(det.to_dict()) == det
    True
    """

    poisson: bool = True
    poisson_stream: str = "v1"
    qe: float = 1.0
    gain: float = 1.0
    offset: float = 0.0
    read_noise: float = 0.0
    dark: float = 0.0
    psf_sigma_px: float = 0.0
    full_well: float | None = None
    dtype: str = "float32"
    overflow: str = "saturate"
    beamstop_radius_px: float = 0.0
    module_px: tuple[int, int] | None = None
    gap_px: tuple[int, int] = (0, 0)
    n_modules: tuple[int, int] | None = None
    beam_px: tuple[int, int] | None = None
    dead_pixels: np.ndarray | None = field(default=None, repr=False)
    hot_pixels: np.ndarray | None = field(default=None, repr=False)
    dead_fraction: float = 0.0
    hot_fraction: float = 0.0
    bad_pixel_seed: Any = None
    dead_time_s: float | None = None
    exposure_s: float | None = None
    pixel_m: float | None = None
    name: str = "custom"

    _PRESETS: ClassVar[tuple[str, ...]] = ("ideal", "eiger", "pilatus", "integrating")

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if not isinstance(self.poisson, bool | np.bool_):
            raise TypeError(f"poisson must be a bool, got {type(self.poisson).__name__}")
        put("poisson", bool(self.poisson))
        _args.choice("poisson_stream", self.poisson_stream, _kernels.POISSON_STREAMS)
        put("qe", _real("qe", self.qe, above=0.0))
        if self.qe > 1:
            raise ValueError(f"qe must be in (0, 1], got {self.qe!r}")
        put("gain", _real("gain", self.gain, above=0.0))
        for name in ("offset", "read_noise", "dark", "psf_sigma_px", "beamstop_radius_px"):
            put(name, _real(name, getattr(self, name), minimum=0.0))
        if self.psf_sigma_px > 1e4:
            raise ValueError(f"psf_sigma_px must be <= 1e4, got {self.psf_sigma_px!r}")
        _kernels.check_psf_sigma(self.psf_sigma_px)
        _args.choice("dtype", self.dtype, _kernels.READING_DTYPES)
        _args.choice("overflow", self.overflow, ("saturate", "wrap"))
        top = _kernels._reading_max(self.dtype)
        if self.full_well is not None:
            put("full_well", _real("full_well", self.full_well))
            if self.full_well <= self.offset:
                raise ValueError(
                    f"full_well must be above offset ({self.offset:g} ADU), got {self.full_well!r}"
                )
            if self.full_well > top:
                raise ValueError(
                    f"dtype {self.dtype!r} cannot hold full_well = {self.full_well:g} ADU "
                    f"(largest reading {top:g})"
                )
        elif self.offset > top:
            raise ValueError(
                f"offset must be <= the largest {self.dtype} reading ({top:g}), got {self.offset!r}"
            )
        if np.dtype(self.dtype).kind == "f" and self.read_noise > top / Z_MAX:
            # Float readings keep negative values, so read_noise·z must fit them (|z| < Z_MAX).
            raise ValueError(
                f"read_noise must be <= {top / Z_MAX:g} ADU for {self.dtype} readings (the largest "
                f"reading / {Z_MAX:g}), got {self.read_noise!r}"
            )
        # Geometry.
        if self.module_px is not None:
            put("module_px", _int_pair("module_px", self.module_px, minimum=1))
        put("gap_px", _int_pair("gap_px", self.gap_px, minimum=0))
        if self.module_px is None:
            if self.gap_px != (0, 0) or self.n_modules is not None:
                raise ValueError(
                    f"gap_px and n_modules need module_px, got gap_px={self.gap_px}, "
                    f"n_modules={self.n_modules}"
                )
        else:
            for k, axis in enumerate(("rows", "columns")):
                if self.gap_px[k] >= self.module_px[k]:
                    raise ValueError(
                        f"gap_px must be narrower than the module ({self.module_px}) along "
                        f"the {axis}, got {self.gap_px}"
                    )
        if self.n_modules is not None:
            put("n_modules", _int_pair("n_modules", self.n_modules, minimum=1))
        if self.beam_px is not None:
            put("beam_px", _int_pair("beam_px", self.beam_px, minimum=-(2**62)))
            if self.module_px is None:
                raise ValueError(f"beam_px needs module_px, got beam_px={self.beam_px}")
            ext = self.extent_px
            if ext is not None and not (
                0 <= self.beam_px[0] < ext[0] and 0 <= self.beam_px[1] < ext[1]
            ):
                raise ValueError(
                    f"beam_px must lie on the detector of {ext[0]} x {ext[1]} pixels, got "
                    f"{self.beam_px}"
                )
        # Defects.
        dp = _bool_map("dead_pixels", self.dead_pixels)
        hp = _bool_map("hot_pixels", self.hot_pixels)
        if dp is not None and hp is not None and dp.shape != hp.shape:
            raise ValueError(
                f"hot_pixels must have the shape of dead_pixels {dp.shape}, got {hp.shape}"
            )
        put("dead_pixels", dp)
        put("hot_pixels", hp)
        for name in ("dead_fraction", "hot_fraction"):
            f = _real(name, getattr(self, name), minimum=0.0)
            if f > 1:
                raise ValueError(f"{name} must be in [0, 1], got {f!r}")
            put(name, f)
        if self.dead_fraction + self.hot_fraction > 1:
            raise ValueError(
                f"dead_fraction + hot_fraction must be <= 1, got "
                f"{self.dead_fraction + self.hot_fraction!r}"
            )
        if self.bad_pixel_seed is not None or self.dead_fraction > 0 or self.hot_fraction > 0:
            # None draws fresh entropy, recorded as an int.
            put("bad_pixel_seed", _kernels.resolve_seed(self.bad_pixel_seed, "bad_pixel_seed"))
        hot_possible = (hp is not None and bool(hp.any())) or self.hot_fraction > 0
        if hot_possible and self.full_well is None and self.dtype.startswith("float"):
            raise ValueError(
                f"hot_pixels / hot_fraction need a full_well with dtype {self.dtype!r} (a hot "
                f"pixel reads the saturation level), got full_well=None"
            )
        # Count rate.
        if (self.dead_time_s is None) != (self.exposure_s is None):
            raise ValueError(
                f"dead_time_s and exposure_s must be given together, got dead_time_s="
                f"{self.dead_time_s!r}, exposure_s={self.exposure_s!r}"
            )
        if self.dead_time_s is not None:
            put("dead_time_s", _real("dead_time_s", self.dead_time_s, minimum=0.0))
            put("exposure_s", _real("exposure_s", self.exposure_s, above=0.0))
            if not math.isfinite(float(self.dead_time_s) / float(self.exposure_s or 0.0)):
                raise ValueError(
                    f"dead_time_s / exposure_s must be finite, got {self.dead_time_s!r} / "
                    f"{self.exposure_s!r}"
                )
        if self.pixel_m is not None:
            put("pixel_m", _real("pixel_m", self.pixel_m, above=0.0))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    # ------------------------------------------------------------------ presets

    @classmethod
    def ideal(cls) -> Detector:
        """Exact Poisson photon counting, float32 counts, every pixel valid: today's bits.

        With one probe mode, ``sqrt(readings)`` is the noisy amplitude of
        ``RawData.from_simulation`` / ``_kernels.simulate`` for the same seed, bit for bit
        (counts below 2**24; float32 cannot hold larger counts exactly).
        """
        return cls(name="ideal")

    @classmethod
    def eiger(cls, size: str = "4M", *, generation: int = 2, **overrides: Any) -> Detector:
        """A DECTRIS EIGER (``generation=1``) or EIGER2 (2) X photon-counting detector.

        Module geometry from the data sheets: EIGER 514 × 1030 pixel modules with gaps of
        37 (between module rows) and 10 (between module columns) pixels, EIGER2 512 × 1028
        with 38 and 12; 75 µm pixels; ``size`` sets the module array (``"500K"`` 1 × 1,
        ``"1M"`` 2 × 1, ``"4M"`` 4 × 2, ``"9M"`` 6 × 3, ``"16M"`` 8 × 4 modules, rows ×
        columns). Photon counting: exact Poisson counts, no read noise, no dark counts,
        gain 1; readings ``uint32``, saturating: auto-summation extends the 12-bit (EIGER) or
        16-bit (EIGER2) counter of each frame to 32 bits. The chip boundaries inside a module
        are not masked. ``overrides`` sets any other parameter (``qe`` for your energy,
        ``beam_px``, ``beamstop_radius_px``, ``dead_time_s``/``exposure_s``, ...). The EIGER2
        8-bit readout mode, whose counters roll over above 255 counts, is
        ``dtype="uint8", overflow="wrap"``.

        Raises
        ------
        TypeError
            ``size`` not a string, ``generation`` not an integer (a bool included).
        ValueError
            Unknown ``size`` or ``generation``.
        """
        _preset_choice("generation", generation, tuple(_EIGER), numbers.Integral)
        _preset_choice("size", size, tuple(_EIGER_SIZES), str)
        base = {
            **_EIGER[generation],
            "n_modules": _EIGER_SIZES[size],
            "pixel_m": 75e-6,
            "dtype": "uint32",
            "name": f"eiger{'2' if generation == 2 else ''}-{size}",
        }
        return cls._with(base, overrides)

    @classmethod
    def pilatus(cls, size: str = "1M", **overrides: Any) -> Detector:
        """A DECTRIS PILATUS photon-counting detector.

        195 × 487 pixel modules with gaps of 17 (between module rows) and 7 (between module
        columns) pixels, 172 µm pixels (data sheet); ``size``: ``"100K"`` 1 × 1, ``"300K"``
        3 × 1, ``"1M"`` 5 × 2, ``"2M"`` 8 × 3, ``"6M"`` 12 × 5 modules. Photon counting: exact
        Poisson counts, no read noise or dark current; 20-bit counters, so readings
        ``uint32`` saturating at ``full_well = 2**20 - 1`` counts. ``overrides`` as in
        :meth:`eiger`.

        Raises
        ------
        TypeError
            ``size`` not a string.
        ValueError
            Unknown ``size``.
        """
        _preset_choice("size", size, tuple(_PILATUS_SIZES), str)
        base = {
            **_PILATUS,
            "n_modules": _PILATUS_SIZES[size],
            "pixel_m": 172e-6,
            "dtype": "uint32",
            "full_well": float(2**20 - 1),
            "name": f"pilatus-{size}",
        }
        return cls._with(base, overrides)

    @classmethod
    def integrating(cls, **overrides: Any) -> Detector:
        """A generic integrating (CCD/CMOS-like) detector.

        Defaults of typical magnitude, to be set from your camera's data sheet: ``gain=10``
        ADU per detected photon, ``offset=100`` ADU, ``read_noise=3`` ADU rms, ``dark=0.05``
        counts per pixel per frame, ``full_well=65000`` ADU, ``uint16`` readings
        (saturating), exact Poisson shot noise, no gaps. ``overrides`` sets any parameter
        of :class:`Detector` (these included).
        """
        base = {
            "gain": 10.0,
            "offset": 100.0,
            "read_noise": 3.0,
            "dark": 0.05,
            "full_well": 65000.0,
            "dtype": "uint16",
            "name": "integrating",
        }
        return cls._with(base, overrides)

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> Detector:
        """The preset called ``name`` (``"ideal"``, ``"eiger"``, ``"pilatus"``,
        ``"integrating"``) with ``kwargs`` passed on.

        Raises
        ------
        TypeError
            ``name`` not a string.
        ValueError
            Unknown preset name.
        """
        if not isinstance(name, str):
            raise _PresetTypeError(
                f"name must be a preset among {list(cls._PRESETS)}, got "
                f"{type(name).__name__} {name!r}"
            )
        if not _args.one_of(name, cls._PRESETS):
            raise ValueError(f"name must be a preset among {list(cls._PRESETS)}, got {name!r}")
        if name == "ideal":
            return cls._with({"name": "ideal"}, kwargs)
        return getattr(cls, name)(**kwargs)

    @classmethod
    def _with(cls, base: dict[str, Any], overrides: dict[str, Any]) -> Detector:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown Detector parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**{**base, **overrides})

    # ------------------------------------------------------------------ facts

    @property
    def is_ideal(self) -> bool:
        """Whether readings are today's: exact Poisson counts on stream ``v1``, float32, no
        gain, offset, noise, PSF, saturation, dead time, geometry or defects."""
        return (
            self.poisson
            and self.poisson_stream == "v1"
            and self.qe == 1.0
            and self.gain == 1.0
            and self.offset == 0.0
            and self.read_noise == 0.0
            and self.dark == 0.0
            and self.psf_sigma_px == 0.0
            and self.full_well is None
            and self.dtype == "float32"
            and self.beamstop_radius_px == 0.0
            and self.module_px is None
            and self.dead_pixels is None
            and self.hot_pixels is None
            and self.dead_fraction == 0.0
            and self.hot_fraction == 0.0
            and self.dead_time_s is None
        )

    @property
    def extent_px(self) -> tuple[int, int] | None:
        """The detector's size (rows, cols) in pixels when ``n_modules`` bounds it."""
        if self.module_px is None or self.n_modules is None:
            return None
        return tuple(  # type: ignore[return-value]
            n * m + (n - 1) * g
            for n, m, g in zip(self.n_modules, self.module_px, self.gap_px, strict=True)
        )

    @property
    def beam(self) -> tuple[int, int] | None:
        """The detector pixel of the zero frequency: ``beam_px``, or the default (module
        docstring); None without modules."""
        if self.module_px is None:
            return None
        if self.beam_px is not None:
            return self.beam_px
        n = self.n_modules or (1, 1)
        return tuple(  # type: ignore[return-value]
            ((k - 1) // 2) * (m + g) + m // 2
            for k, m, g in zip(n, self.module_px, self.gap_px, strict=True)
        )

    @property
    def saturation(self) -> float:
        """The largest reading: ``full_well``, else the dtype's maximum."""
        return self.full_well if self.full_well is not None else _kernels._reading_max(self.dtype)

    def _check_n(self, N: int) -> int:  # noqa: N803 - the pattern size's usual name
        if isinstance(N, bool) or not isinstance(N, numbers.Integral):
            raise TypeError(f"N must be an integer >= 2, got {type(N).__name__} {N!r}")
        if int(N) < 2:
            raise ValueError(f"N must be an integer >= 2, got {N!r}")
        n = int(N)
        # The pixel map, its defect masks and the uniforms of the bad-pixel draw.
        _kernels.require_memory(f"the detector's N={n} x {n} pixel map", n * n * 12)
        for name in ("dead_pixels", "hot_pixels"):
            a = getattr(self, name)
            if a is not None and a.shape != (n, n):
                raise ValueError(
                    f"{name} describes {a.shape[0]} x {a.shape[1]} patterns, got N = {n}"
                )
        if self.beamstop_radius_px > n / 2:
            raise ValueError(
                f"beamstop_radius_px must be <= N/2 = {n / 2:g} for {n} x {n} patterns (a "
                f"beamstop larger than the pattern), got {self.beamstop_radius_px!r}"
            )
        return n

    def pixel_map(self, N: int) -> np.ndarray:  # noqa: N803
        """What each pixel of an ``N × N`` pattern is: uint8, the OR of the flags
        :data:`PIXEL_CODES` that apply (``valid`` 0, ``beamstop`` 1, ``gap`` 2, ``dead`` 4,
        ``hot`` 8). Beamstop and gap: no photons arrive; gap and
        dead: the pixel reads 0; hot: it reads the saturation level unless also dead or in a
        gap.

        Raises
        ------
        TypeError
            ``N`` not an integer (bools included).
        ValueError
            ``N`` < 2; explicit defect maps of another size; a beamstop wider than the
            pattern; no valid pixel left (e.g. a gap wider than the pattern).
        """
        n = self._check_n(N)
        codes = np.zeros((n, n), np.uint8)
        h = n // 2
        if self.beamstop_radius_px > 0:
            yy, xx = np.mgrid[:n, :n] - h
            codes[np.hypot(yy, xx) < self.beamstop_radius_px] |= _kernels.PIXEL_BEAMSTOP
        hot = np.zeros((n, n), bool) if self.hot_pixels is None else self.hot_pixels.copy()
        dead = np.zeros((n, n), bool) if self.dead_pixels is None else self.dead_pixels.copy()
        if self.dead_fraction > 0 or self.hot_fraction > 0:
            u = np.random.Generator(np.random.PCG64(self.bad_pixel_seed)).random((n, n))
            dead |= u < self.dead_fraction
            hot |= (u >= self.dead_fraction) & (u < self.dead_fraction + self.hot_fraction)
        codes[hot] |= _kernels.PIXEL_HOT
        codes[dead] |= _kernels.PIXEL_DEAD
        beam = self.beam
        if self.module_px is not None and beam is not None:
            sensor = []
            ext = self.extent_px
            for k in range(2):
                d = np.arange(n, dtype=np.int64) + (beam[k] - h)
                on = (d % (self.module_px[k] + self.gap_px[k])) < self.module_px[k]
                if ext is not None:
                    on &= (d >= 0) & (d < ext[k])
                sensor.append(on)
            codes[~(sensor[0][:, None] & sensor[1][None, :])] |= _kernels.PIXEL_GAP
        if not np.any(codes == _kernels.PIXEL_VALID):
            raise ValueError(
                f"the {n} x {n} pattern must keep at least one valid pixel (gaps, beamstop and "
                f"bad pixels cover it all), got none"
            )
        codes.flags.writeable = False
        return codes

    def mask(self, N: int) -> np.ndarray:  # noqa: N803
        """``(N, N)`` bool: True where a pixel of an ``N × N`` pattern is valid (not in a gap
        or off the detector, not under the beamstop, not dead or hot). See the module
        docstring for where the gaps fall.

        Raises
        ------
        TypeError, ValueError
            As :meth:`pixel_map`.
        """
        return self.pixel_map(N) == _kernels.PIXEL_VALID

    def kernel_args(self, N: int) -> dict[str, Any]:  # noqa: N803
        """The settings of the Rust detector stage for ``N × N`` patterns (what
        ``_kernels.acquire(detector=...)`` takes)."""
        px = self.pixel_map(N)
        dt = 0.0
        if self.dead_time_s is not None and self.exposure_s is not None:
            dt = self.dead_time_s / self.exposure_s
        return {
            "poisson": self.poisson,
            "poisson_stream": self.poisson_stream,
            "qe": self.qe,
            "gain": self.gain,
            "offset": self.offset,
            "read_noise": self.read_noise,
            "dark": self.dark,
            "psf_sigma_px": self.psf_sigma_px,
            "full_well": self.full_well,
            "dtype": self.dtype,
            "overflow": self.overflow,
            "dead_time_fraction": dt,
            "pixels": px if np.any(px) else None,
        }

    # ------------------------------------------------------------------ meaning of readings

    def readings_to_photons(
        self, readings: Any, *, clip_negative: bool = True, masked_value: float = 0.0
    ) -> np.ndarray:
        """The estimate of detected photons per pixel: ``(readings − offset)/gain − dark``.

        What the readings mean, for conversions to amplitudes (``sqrt``) and to formats. For
        the ideal detector it returns the counts exactly (as float64), so
        ``sqrt(photons).astype(float32)`` is today's noisy amplitude. Detected photons are
        after QE (divide by ``qe`` for photons reaching the detector); the PSF, dead time and
        saturation are not undone (saturated pixels stay at their clip level).

        Parameters
        ----------
        readings : array_like, (..., N, N)
            Readings of this detector (any real dtype).
        clip_negative : bool, keyword-only
            Replace negative estimates (read noise below the offset) by 0.
        masked_value : float, keyword-only
            Value of masked pixels (:meth:`mask`).

        Returns
        -------
        numpy.ndarray, float64, same shape

        Raises
        ------
        ValueError, TypeError
            ``readings`` not real, not at least 2-D with square trailing axes, or not finite;
            photons beyond the float64 range (a gain near the smallest double).
        """
        if not isinstance(clip_negative, bool | np.bool_):
            raise TypeError(f"clip_negative must be a bool, got {type(clip_negative).__name__}")
        if isinstance(masked_value, bool) or not isinstance(masked_value, numbers.Real):
            raise TypeError(
                f"masked_value must be a real number (NaN allowed: it marks masked pixels), "
                f"got {type(masked_value).__name__} {masked_value!r}"
            )
        fill = float(masked_value)
        r = _kernels.as_array("readings", readings, np.float64, allow_complex=False)
        if r.ndim < 2 or r.shape[-1] != r.shape[-2]:
            raise ValueError(f"readings must be (..., N, N), got shape {r.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            photons = (r - self.offset) / self.gain - self.dark
        if r.size and not np.isfinite(photons).all():
            raise ValueError(
                f"readings must convert to finite photons, (reading − offset)/gain − dark, got "
                f"readings up to {np.abs(r).max():g} ADU with offset {self.offset:g}, gain "
                f"{self.gain:g} and dark {self.dark:g}, beyond the float64 range"
            )
        if clip_negative:
            np.maximum(photons, 0.0, out=photons)
        mask = self.mask(r.shape[-1])
        if not mask.all():
            photons[..., ~mask] = fill
        return photons

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record of every parameter (seeds as ints); exact round trip
        through :meth:`from_dict`."""
        d: dict[str, Any] = {"format": _FORMAT, "version": _VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = {"shape": list(v.shape), "pixels": np.argwhere(v).tolist()}
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Detector:
        """The detector :meth:`to_dict` recorded.

        Raises
        ------
        ValueError
            Not a detector record, or of an unknown version; invalid parameters.
        TypeError
            Unknown parameters.
        """
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ValueError(f"d must be a {_FORMAT} record (to_dict), got {d!r:.80}")
        v = d.get("version")
        if isinstance(v, bool) or v != _VERSION:
            raise ValueError(f"d must have version {_VERSION}, got {d.get('version')!r}")
        kw = {k: v for k, v in d.items() if k not in ("format", "version")}
        for name in ("dead_pixels", "hot_pixels"):
            v = kw.get(name)
            if isinstance(v, dict):
                kw[name] = pixel_table(name, v)
        for name in ("module_px", "gap_px", "n_modules", "beam_px"):
            if isinstance(kw.get(name), list):
                kw[name] = tuple(kw[name])
        return cls._with({}, kw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detector):
            return NotImplemented
        return json.dumps(self.to_dict()) == json.dumps(other.to_dict())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                parts.append(f"{f.name}=<{int(v.sum())} of {v.shape[0]}x{v.shape[1]}>")
            elif f.default is not v and v != f.default:
                parts.append(f"{f.name}={v!r}")
        return f"Detector({', '.join(parts)})"

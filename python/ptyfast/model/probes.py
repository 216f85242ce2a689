"""Probe (illumination) builders: ``ptyfast.probes``.

Every builder returns a ``complex64`` array, ``(N, N)`` for one coherent mode or ``(P, N, N)``
for ``P`` incoherent modes (modes on the first axis), normalised to unit total intensity
``Σ_k Σ |P_k|² = 1`` (the photon count of an experiment is set by its ``photons``, not by the
probe's norm). The arithmetic is done in float64 and rounded once at the end.

Conventions (README "Conventions"): axis 0 is the row (``y``), axis 1 the column (``x``);
probes are centred on the array centre ``(N − 1)/2`` in both axes (between two pixels for even
``N``), which the placement of scans relies on (``ptyfast.scans``). Fields follow the
``exp(i(kz − ωt))`` convention: a converging wave has the phase ``−π r²/(λ f)``, propagation
by ``d > 0`` (downstream) multiplies the angular spectrum by ``exp(2πi d (√(1/λ² − ν²) − 1/λ))``
(the carrier ``exp(ikd)`` is dropped everywhere). The angular spectrum of a field ``U`` is
``A(ν) = Σ_x U(x) exp(−2πi ν·x)``, so ``U(x) = ∫ A(ν) exp(2πi ν·x) dν``.

=========================  ============================================================
builder                    what it is
=========================  ============================================================
:func:`disk`               PtychoPINN's default probe (blurred disk), bit for bit
:func:`gaussian`           Gaussian amplitude, flat phase
:func:`super_gaussian`     flat-top ``exp(−½ (r/R)^(2p))``, flat phase
:func:`fresnel_zone_plate` first-order focus of a zone plate (annular pupil), defocus
:func:`zernike`            aberrated circular pupil (Noll-indexed Zernike phase), in focus
                           or in the pupil plane
:func:`propagate`          band-limited angular-spectrum propagation (Matsushima 2009)
:func:`modes`              orthogonal incoherent modes with given powers, first = primary
:func:`load`               an experimental probe from NPZ or HDF5 (modes kept)
:func:`recipe`             a JSON-serialisable description of a probe (builder,
                           parameters, operations, resolved seeds)
:func:`build`              the probe a recipe describes
=========================  ============================================================

Functions taking a ``seed`` draw from ``numpy.random.Generator(PCG64(seed))``; an integer
seed reproduces the draw bit for bit. ``seed=None`` draws fresh OS entropy, which a bare
builder call cannot report: go through :func:`recipe` (which resolves every seed it will use
to the recorded integer) and :func:`build` when the draw must be recorded.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib import format as npformat
from scipy import special
from scipy.ndimage import gaussian_filter

from .._kernels import require_memory
from . import _args
from .geometry import Geometry

__all__ = [
    "MAX_N",
    "MAX_NOLL",
    "disk",
    "disk_profile",
    "gaussian",
    "super_gaussian",
    "fresnel_zone_plate",
    "noll_to_nm",
    "zernike_polynomial",
    "random_zernike_coefficients",
    "zernike",
    "propagate",
    "modes",
    "load",
    "normalize",
    "recipe",
    "build",
]

#: Largest probe side accepted (checked before anything is allocated).
MAX_N = 8192
#: Most incoherent modes :func:`modes` makes.
MAX_MODES = 64
#: Largest Noll index :func:`noll_to_nm` accepts (radial degree about 1400).
MAX_NOLL = 1_000_000
#: Largest Noll index :func:`zernike_polynomial` evaluates (radial degree 60: its integer
#: coefficients still fit float64).
_MAX_POLYNOMIAL_NOLL = 1891


# --------------------------------------------------------------------------- helpers


def _check_N(N: Any, name: str = "N") -> int:  # noqa: N802 - the field's usual name
    return _args.integer(name, N, minimum=2, maximum=MAX_N)


def _coords(N: int) -> np.ndarray:
    """Pixel coordinates relative to the array centre ``(N − 1)/2``."""
    return np.arange(N, dtype=np.float64) - (N - 1) / 2.0


def _radius(N: int) -> np.ndarray:
    c = _coords(N)
    return np.hypot(c[None, :], c[:, None])


def _as_probe_stack(name: str, probe: Any) -> tuple[np.ndarray, bool]:
    """``(P, N, N)`` complex128 copy of a probe or mode stack, and whether it was 2-D."""
    if probe is None or isinstance(probe, (str, bytes)):
        raise TypeError(f"{name} must be a complex array (N, N) or (P, N, N), got {probe!r}")
    arr = _args.asarray(name, probe)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be (N, N) or (P, N, N), got shape {arr.shape}")
    single = arr.ndim == 2
    stack = arr[None] if single else arr
    p, n, n2 = stack.shape
    if n != n2 or n < 2 or p < 1:
        raise ValueError(f"{name} must be (N, N) or (P, N, N) with N >= 2, got {arr.shape}")
    if n > MAX_N:
        raise ValueError(f"{name} must be at most {MAX_N} x {MAX_N}, got {arr.shape}")
    stack = stack.astype(np.complex128)
    if not np.all(np.isfinite(stack)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return stack, single


def _power(stack: np.ndarray) -> float:
    return float(np.sum(stack.real**2 + stack.imag**2))


def _finish(field: np.ndarray, name: str = "probe") -> np.ndarray:
    """``field / sqrt(Σ|field|²)`` as complex64; zero or non-finite power raises.

    ``name`` is the call with its arguments (``"gaussian(N=16, sigma_px=5e-324)"``), so the
    message names the arguments that made the field vanish or overflow."""
    with np.errstate(all="ignore"):
        power = _power(field)
    if not math.isfinite(power) or power <= 0.0:
        raise ValueError(
            f"{name} has zero (or non-finite) total intensity {power}: an argument is out of "
            f"the representable range"
        )
    return (field / math.sqrt(power)).astype(np.complex64)


def normalize(probe: Any) -> np.ndarray:
    """Scale a probe (or mode stack) to unit total intensity ``Σ_k Σ |P_k|² = 1``.

    Parameters
    ----------
    probe : array_like, (N, N) or (P, N, N), real or complex
        Finite, with non-zero total intensity.

    Returns
    -------
    numpy.ndarray, complex64, same shape
        The probe divided by ``sqrt(Σ|P|²)`` (computed in float64). Relative powers of the
        modes are kept.

    Raises
    ------
    TypeError
        Not a numeric array.
    ValueError
        Wrong shape, non-finite values or zero power.

    Examples
    --------
    >>> import numpy as np
    >>> p = normalize(np.ones((4, 4)))
    >>> float(np.sum(np.abs(p) ** 2))
    1.0
    """
    stack, single = _as_probe_stack("probe", probe)
    out = _finish(stack)
    return out[0] if single else out


# --------------------------------------------------------------------------- simple shapes


def disk_profile(N: int, *, scale: float = 0.7) -> np.ndarray:
    """PtychoPINN's default probe, unnormalised, as the recipe computes it (float64).

    1. ``w = scipy.signal.windows.gaussian(N, std=N / (scale·π²), sym=True)``, divided by its
       maximum;
    2. the mask ``outer(w, w) > 0.5`` (376 pixels for ``N = 64``, 1500 for ``N = 128``);
    3. ``scipy.ndimage.gaussian_filter(mask, sigma=1)`` (mode ``'reflect'``), then ``+ 1e-9``.

    ``ptyfast.probe.get_default_probe`` returns exactly this array.

    Parameters
    ----------
    N : int
        Probe side in pixels, ``1 <= N <=`` :data:`MAX_N`.
    scale : float, default 0.7
        Window scale (PtychoPINN's ``default_probe_scale``), finite and ``> 0``.

    Returns
    -------
    numpy.ndarray, (N, N), float64
        About 1 inside the disk, ``1e-9`` far outside; symmetric about ``(N − 1)/2``.

    Raises
    ------
    TypeError, ValueError
        ``N`` or ``scale`` out of range, or a ``scale`` so large that the disk is empty.

    Examples
    --------
    >>> p = disk_profile(64)
    >>> p.shape, p.dtype
    ((64, 64), dtype('float64'))
    """
    N = _args.integer("N", N, minimum=1, maximum=MAX_N)
    scale = _args.real("scale", scale, positive=True)
    window = _lowpass_window(N, scale)
    mask = np.einsum("i,j->ij", window, window) > 0.5
    if not mask.any():
        raise ValueError(
            f"scale = {scale!r} leaves the disk of an N = {N} probe empty (no pixel of the "
            f"window product exceeds 0.5); use a smaller scale (the default is 0.7)"
        )
    return gaussian_filter(mask.astype(float), 1) + 1e-9


def _lowpass_window(N: int, scale: float) -> np.ndarray:
    """The 1-D window of :func:`disk_profile` (``ptyfast.probe.get_lowpass_filter``).

    ``scipy.signal.windows.gaussian(N, std=N/(scale·π²), sym=True)`` with the same float
    operations (tested bit for bit against it; ``scipy.signal`` itself is slow to import),
    divided by its maximum.
    """
    if N <= 1:
        return np.ones(N, dtype=np.float64)
    std = N / (scale * np.pi**2)
    n = np.arange(0, N, dtype=np.float64) - (N - 1.0) / 2.0
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        window = np.exp(-(n**2) / (2 * std * std))
        window /= window.max()  # NaN when every sample underflows: the disk is then empty
    return window


def disk(N: int, *, scale: float = 0.7) -> np.ndarray:
    """PtychoPINN's default (blurred-disk) probe, normalised.

    Parameters
    ----------
    N : int
        Probe side in pixels, ``2 <= N <=`` :data:`MAX_N`.
    scale : float, default 0.7
        Window scale; the disk's diameter is ``2·σ·√(2 ln 2)`` with ``σ = N/(scale·π²)``,
        about ``0.34 N`` at the default.

    Returns
    -------
    numpy.ndarray, (N, N), complex64
        :func:`disk_profile` divided by its norm (``Σ|P|² = 1``), zero phase.

    Raises
    ------
    TypeError, ValueError
        ``N`` or ``scale`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> p = disk(64)
    >>> p.dtype, round(float(np.sum(np.abs(p) ** 2)), 6)
    (dtype('complex64'), 1.0)
    """
    N = _check_N(N)
    return _finish(
        disk_profile(N, scale=scale).astype(np.complex128), f"disk(N={N}, scale={scale!r})"
    )


def gaussian(N: int, sigma_px: float) -> np.ndarray:
    """Gaussian probe with a flat phase: ``|P| ∝ exp(−r² / (2σ²))``.

    ``σ`` is the standard deviation of the *amplitude* profile; the intensity
    ``|P|² ∝ exp(−r²/σ²)`` has the 1/e² radius (Gaussian-beam waist) ``w0 = √2·σ`` and the
    per-axis standard deviation ``σ/√2``.

    Parameters
    ----------
    N : int
        Probe side in pixels, ``2 <= N <=`` :data:`MAX_N`.
    sigma_px : float
        ``σ`` in pixels, finite and ``> 0``.

    Returns
    -------
    numpy.ndarray, (N, N), complex64
        Centred on ``(N − 1)/2``, ``Σ|P|² = 1``.

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> p = gaussian(32, 4.0)
    >>> p.shape, bool(abs(p[15, 15]) == abs(p[16, 16]))
    ((32, 32), True)
    """
    N = _check_N(N)
    sigma = _args.real("sigma_px", sigma_px, positive=True)
    r = _radius(N)
    with np.errstate(all="ignore"):  # a tiny sigma underflows to zero: _finish names it
        field = np.exp(-(r * r) / (2.0 * sigma * sigma))
    return _finish(field.astype(np.complex128), f"gaussian(N={N}, sigma_px={sigma!r})")


def super_gaussian(N: int, radius_px: float, *, order: float = 4.0) -> np.ndarray:
    """Flat-top probe ``|P| ∝ exp(−½ (r/R)^(2p))`` with a flat phase.

    ``order = 1`` is :func:`gaussian` with ``sigma_px = R``; larger orders approach a
    uniformly lit disk of radius ``R`` (the amplitude is ``e^{−1/2}`` at ``r = R`` for every
    order).

    Parameters
    ----------
    N : int
        Probe side in pixels, ``2 <= N <=`` :data:`MAX_N`.
    radius_px : float
        ``R`` in pixels, finite and ``> 0``.
    order : float, default 4.0
        ``p``, finite and ``> 0``.

    Returns
    -------
    numpy.ndarray, (N, N), complex64
        Centred on ``(N − 1)/2``, ``Σ|P|² = 1``.

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> import numpy as np
    >>> np.allclose(super_gaussian(32, 5.0, order=1), gaussian(32, 5.0))
    True
    """
    N = _check_N(N)
    radius = _args.real("radius_px", radius_px, positive=True)
    p = _args.real("order", order, positive=True)
    r = _radius(N)
    with np.errstate(all="ignore"):  # a tiny radius underflows to zero: _finish names it
        field = np.exp(-0.5 * (r / radius) ** (2.0 * p))
    return _finish(
        field.astype(np.complex128), f"super_gaussian(N={N}, radius_px={radius!r}, order={p!r})"
    )


# --------------------------------------------------------------------------- zone plate


def fresnel_zone_plate(
    geometry: Geometry,
    diameter_m: float,
    outer_zone_m: float,
    central_stop: float = 0.0,
    defocus_m: float = 0.0,
) -> np.ndarray:
    """The first-order focus of a Fresnel zone plate, in or out of focus.

    The zone plate of diameter ``D`` and outermost zone width ``Δr`` acts, in its first
    diffraction order, as a thin lens of focal length ``f = D·Δr/λ`` over an annular pupil
    (radii ``ε·D/2`` to ``D/2``, ``ε`` = ``central_stop``); the other orders are taken as
    removed by the central stop and an order-sorting aperture. The field at distance
    ``z = f + d`` behind the zone plate (``d`` = ``defocus_m``; ``d > 0`` downstream of the
    focus) is the Fresnel integral of the pupil, written as a Hankel transform and evaluated
    by composite Gauss–Legendre quadrature in ``ρ`` (no FFT, so it is not periodic)::

        U(r) = (f/z)·exp(iπ r²/(λz)) · ∫ 2πρ exp(iπ ρ² (1/z − 1/f)/λ) J0(2π ρ r/(λz)) dρ

    The defocus is the exact paraxial one (the quadratic pupil phase and the ``λz`` scaling
    of the Fresnel integral), independent of :func:`propagate`. In focus the amplitude is
    the Airy pattern of the annulus, first zero at ``1.22·λf/D = 1.22·Δr`` without a stop.
    Samples are point values at the pixel centres, ``r`` measured from ``(N − 1)/2`` in units
    of ``geometry.object_pixel_m``; the window is not enlarged: choose ``N·Δx`` larger than
    the beam (geometric diameter ``D·|d|/f`` out of focus).

    Parameters
    ----------
    geometry : Geometry
        Wavelength ``λ``, object pixel ``Δx`` and ``N``.
    diameter_m : float
        Zone-plate diameter ``D`` in metres, ``> 0``.
    outer_zone_m : float
        Outermost zone width ``Δr`` in metres, ``>= Δx`` (the focus' spatial frequencies
        reach ``1/(2Δr)``, which the grid must sample: ``Δr < Δx`` would alias).
    central_stop : float, default 0.0
        Diameter of the central stop as a fraction of ``D``, ``0 <= ε < 1``.
    defocus_m : float, default 0.0
        Distance ``d`` of the sample plane from the focus in metres, positive downstream;
        ``d > −f``.

    Returns
    -------
    numpy.ndarray, (N, N), complex64
        The field, ``Σ|P|² = 1``.

    Raises
    ------
    TypeError
        ``geometry`` is not a :class:`~ptyfast.Geometry` or a number is not real.
    ValueError
        A parameter out of range (named in the message).

    Examples
    --------
    >>> from ptyfast import Geometry
    >>> g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=128)
    >>> round(g.object_pixel_m * 1e9, 2)  # nm, below the 50 nm outer zone
    32.29
    >>> p = fresnel_zone_plate(g, 160e-6, 50e-9, central_stop=0.3, defocus_m=500e-6)
    >>> p.shape, p.dtype
    ((128, 128), dtype('complex64'))
    """
    if not isinstance(geometry, Geometry):
        raise TypeError(f"geometry must be a ptyfast.Geometry, got {type(geometry).__name__}")
    diameter = _args.real("diameter_m", diameter_m, positive=True)
    zone = _args.real("outer_zone_m", outer_zone_m, positive=True)
    eps = _args.real("central_stop", central_stop, nonnegative=True, below=1.0)
    d = _args.real("defocus_m", defocus_m)
    lam, dx, N = geometry.wavelength_m, geometry.object_pixel_m, _check_N(geometry.N, "geometry.N")
    if zone < dx:
        raise ValueError(
            f"outer_zone_m must be >= geometry.object_pixel_m = {dx:.6g} m (the focus would "
            f"be under-sampled), got {zone}"
        )
    f = diameter * zone / lam
    if not (math.isfinite(f) and f > 0.0):
        raise ValueError(
            f"diameter_m * outer_zone_m / wavelength (the focal length) must be a positive "
            f"finite number, got diameter_m={diameter!r}, outer_zone_m={zone!r}: f = {f!r}"
        )
    if d <= -f:
        raise ValueError(f"defocus_m must be > -f = {-f:.6g} m (the focal length D·Δr/λ), got {d}")
    z = f + d
    R = diameter / 2.0

    # Unique radii: 4 r²/Δx² = (2i − N + 1)² + (2j − N + 1)² is an integer.
    k = 2 * np.arange(N, dtype=np.int64) - (N - 1)
    r4 = k[:, None] ** 2 + k[None, :] ** 2
    uniq, inverse = np.unique(r4, return_inverse=True)
    r = np.sqrt(uniq.astype(np.float64)) * (dx / 2.0)

    # Composite Gauss–Legendre in ρ over [εR, R]: panels short enough that neither the Bessel
    # nor the defocus phase turns by more than π/2 within one (10 nodes each).
    rho_lo = eps * R
    a = (1.0 / z - 1.0 / f) / lam  # defocus: exp(iπ a ρ²)
    beta = 2.0 * math.pi * float(r[-1]) / (lam * z)  # largest J0 frequency in ρ
    rate = beta + 2.0 * math.pi * abs(a) * R  # largest phase rate in ρ
    panels = (R - rho_lo) * rate / (math.pi / 2)
    if not math.isfinite(panels) or panels > _FZP_MAX_PANELS:
        raise ValueError(
            f"diameter_m={diameter!r} with outer_zone_m={zone!r} and defocus_m={d!r} needs "
            f"{panels:.3g} quadrature panels (at most {_FZP_MAX_PANELS:.0e}): the zone plate "
            f"is too large for this geometry"
        )
    n_panels = max(4, int(math.ceil(panels)))
    x, w = np.polynomial.legendre.leggauss(_FZP_NODES)
    edges = np.linspace(rho_lo, R, n_panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    rho = ((edges[:-1, None] + edges[1:, None]) * 0.5 + half * x[None, :]).ravel()
    weights = (half * w[None, :]).ravel()
    pupil = weights * 2.0 * math.pi * rho * np.exp(1j * math.pi * a * rho * rho)
    radial = np.empty(r.shape, dtype=np.complex128)
    chunk = max(1, 4_000_000 // rho.size)
    for lo in range(0, r.size, chunk):
        arg = (2.0 * math.pi / (lam * z)) * np.outer(r[lo : lo + chunk], rho)
        radial[lo : lo + chunk] = special.j0(arg) @ pupil
    radial *= (f / z) * np.exp(1j * math.pi * r * r / (lam * z))
    field = radial[inverse].reshape(N, N)
    return _finish(
        field,
        f"fresnel_zone_plate(diameter_m={diameter!r}, outer_zone_m={zone!r}, "
        f"central_stop={eps!r}, defocus_m={d!r})",
    )


#: Gauss–Legendre nodes per panel of :func:`fresnel_zone_plate`'s quadrature.
_FZP_NODES = 10
#: Most quadrature panels (about four per zone): beyond this the plate is refused.
_FZP_MAX_PANELS = 1e7


# --------------------------------------------------------------------------- Zernike


def noll_to_nm(j: int) -> tuple[int, int]:
    """Radial degree ``n`` and azimuthal frequency ``m`` of the Noll index ``j``.

    Noll (1976): ``j`` counts from 1 (piston) by increasing ``n``, then ``|m|``; for
    ``m ≠ 0`` the even ``j`` is the cosine term (``m > 0``), the odd ``j`` the sine term
    (``m < 0``).

    Parameters
    ----------
    j : int
        Noll index, ``1 <= j <= MAX_NOLL`` (10⁶).

    Returns
    -------
    (int, int)
        ``(n, m)``.

    Raises
    ------
    TypeError, ValueError
        ``j`` is not an integer ``>= 1``.

    Examples
    --------
    >>> [noll_to_nm(j) for j in (1, 2, 3, 4, 5, 6, 11)]
    [(0, 0), (1, 1), (1, -1), (2, 0), (2, -2), (2, 2), (4, 0)]
    """
    j = _args.integer("j", j, minimum=1, maximum=MAX_NOLL)
    n = max(0, (math.isqrt(8 * j) - 3) // 2)  # then step up to the degree holding j
    while (n + 1) * (n + 2) // 2 < j:
        n += 1
    first = n * (n + 1) // 2 + 1  # Noll index of the first term of degree n
    jj = first
    for am in range(n % 2, n + 1, 2):
        if am == 0:
            if jj == j:
                return n, 0
            jj += 1
            continue
        for cand in (jj, jj + 1):
            if cand == j:
                return n, am if cand % 2 == 0 else -am
        jj += 2
    raise AssertionError("unreachable: Noll enumeration")  # pragma: no cover


def zernike_polynomial(j: int, rho: Any, theta: Any) -> np.ndarray:
    """Noll-normalised Zernike polynomial ``Z_j(ρ, θ)``.

    ``Z_j = √(n+1)·R_n^0(ρ)`` for ``m = 0``, ``√(2(n+1))·R_n^|m|(ρ)·cos(mθ)`` for ``m > 0``
    and ``…·sin(|m|θ)`` for ``m < 0``, so that ``(1/π) ∫_disk Z_i Z_j dA = δ_ij``.

    Parameters
    ----------
    j : int
        Noll index, ``1 <= j <= 1891`` (radial degree ``n <= 60``).
    rho, theta : array_like
        Polar coordinates (radius in units of the disk radius; angle in radians from the
        ``x`` axis towards ``y``). Values with ``ρ > 1`` are evaluated as polynomials.

    Returns
    -------
    numpy.ndarray, float64, broadcast shape of ``rho`` and ``theta``

    Raises
    ------
    TypeError, ValueError
        ``j`` is not an integer in range; ``rho`` or ``theta`` is not a finite real array,
        they do not broadcast, or ``Z_j`` overflows float64 (huge ``rho``).

    Examples
    --------
    >>> float(zernike_polynomial(4, 1.0, 0.0))  # defocus √3 (2ρ² − 1)
    1.7320508075688772
    """
    j = _args.integer("j", j, minimum=1, maximum=_MAX_POLYNOMIAL_NOLL)
    n, m = noll_to_nm(j)
    rho = _args.real_array("rho", rho)
    theta = _args.real_array("theta", theta)
    try:
        shape = np.broadcast_shapes(rho.shape, theta.shape)
    except ValueError:
        raise ValueError(
            f"rho and theta must broadcast together, got shapes {rho.shape} and {theta.shape}"
        ) from None
    require_memory(
        f"zernike_polynomial on rho {rho.shape} x theta {theta.shape}", 3 * 8 * math.prod(shape)
    )
    am = abs(m)
    with np.errstate(all="ignore"):  # an overflow is refused below, by name
        radial = np.zeros(shape, dtype=np.float64)
        for k in range((n - am) // 2 + 1):
            c = (-1) ** k * math.factorial(n - k)
            c //= math.factorial(k)
            c //= math.factorial((n + am) // 2 - k)
            c //= math.factorial((n - am) // 2 - k)
            radial = radial + c * rho ** (n - 2 * k)
        if m == 0:
            out = math.sqrt(n + 1) * radial
        else:
            angular = np.cos(am * theta) if m > 0 else np.sin(am * theta)
            out = math.sqrt(2 * (n + 1)) * radial * angular
    if not np.all(np.isfinite(out)):
        big = float(np.max(np.abs(rho)))
        raise ValueError(f"rho is too large: Z_{j} overflows float64 at |rho| = {big!r}")
    return out


def random_zernike_coefficients(
    *, seed: Any = None, rms_rad: float = 1.0, min_noll: int = 4, max_noll: int = 15
) -> np.ndarray:
    """Random aberration coefficients with a given total RMS wavefront phase.

    Standard normals are drawn for the Noll terms ``min_noll..max_noll`` (in that order) from
    ``Generator(PCG64(seed))`` and scaled so that ``sqrt(Σ c_j²) = rms_rad`` exactly (with
    Noll normalisation that is the RMS phase over the pupil, piston excluded).

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        An int gives the same coefficients every time; ``None`` fresh entropy.
    rms_rad : float, default 1.0
        Total RMS phase in radians, ``>= 0``.
    min_noll, max_noll : int, default 4 and 15
        First and last Noll index drawn, ``1 <= min_noll <= max_noll <= 231``. The default
        skips piston and tilts (which only shift the probe) and stops at spherical.

    Returns
    -------
    numpy.ndarray, (max_noll,), float64
        ``c[j − 1]`` multiplies ``Z_j``; the terms below ``min_noll`` are zero.

    Raises
    ------
    TypeError, ValueError
        An argument out of range.

    Examples
    --------
    >>> import numpy as np
    >>> c = random_zernike_coefficients(seed=1, rms_rad=0.5)
    >>> c.shape, round(float(np.sqrt(np.sum(c ** 2))), 12)
    ((15,), 0.5)
    """
    rms = _args.real("rms_rad", rms_rad, nonnegative=True)
    lo = _args.integer("min_noll", min_noll, minimum=1, maximum=231)
    hi = _args.integer("max_noll", max_noll, minimum=lo, maximum=231)
    rng = _args.generator(_args.seed_int(seed))
    draws = rng.standard_normal(hi - lo + 1)
    out = np.zeros(hi, dtype=np.float64)
    norm = float(np.sqrt(np.sum(draws * draws)))
    if norm > 0:
        out[lo - 1 :] = draws * (rms / norm)
    return out


def _check_coefficients(coefficients: Any) -> np.ndarray:
    c = _args.asarray("coefficients", coefficients)
    if c.dtype.kind not in "biuf" or c.ndim != 1:
        raise TypeError(
            f"coefficients must be a 1-D real array (c[j-1] multiplies Z_j), got "
            f"{c.dtype} with shape {c.shape}"
        )
    if c.size == 0 or c.size > 231:
        raise ValueError(f"coefficients must have 1 to 231 terms, got {c.size}")
    c = c.astype(np.float64)
    if not np.all(np.isfinite(c)):
        raise ValueError("coefficients must be finite, got NaN or inf values")
    return c


def zernike(
    N: int,
    coefficients: Any = None,
    *,
    aperture: float = 0.25,
    plane: str = "focus",
    seed: Any = None,
    rms_rad: float = 1.0,
) -> np.ndarray:
    """A circular pupil with a Zernike wavefront, as a probe in focus or in the pupil.

    The pupil is ``P(ρ, θ) = circ(ρ) · exp(i Σ_j c_j Z_j(ρ, θ))`` with the Noll-normalised
    polynomials of :func:`zernike_polynomial` and the coefficients ``c_j`` in **radians of
    wavefront phase** (``c_j = 2π·W_j/λ`` for an optical path ``W_j``; the RMS phase error is
    ``sqrt(Σ_{j≥2} c_j²)``).

    * ``plane='focus'`` (default): the pupil is the angular spectrum of the probe, a disk of
      radius ``ν_max = aperture/(2Δx)`` (``aperture`` is the numerical aperture as a fraction
      of the grid's, ``λ/(2Δx)``); the probe is the focal field
      ``U(x) = ∫ P(ν) exp(2πi ν·x) dν``, ``x`` from ``(N − 1)/2``, computed by an inverse FFT
      on a 4× larger grid (pupil sampled 4× finer than ``1/(NΔx)``, periodic images 4 windows
      away; for ``N > 2048`` on the probe's own grid) of which the central ``N × N`` pixels
      are kept. Without aberrations it is the Airy
      pattern, first zero at ``1.22/aperture`` pixels; ``Z_4`` (defocus) with coefficient
      ``c_4`` equals, to paraxial order and up to the piston ``−√3·c_4``, :func:`propagate` by
      ``d = −2√3·c_4 / (π λ ν_max²)``.
    * ``plane='pupil'``: the probe is the pupil itself on the object grid, a disk of radius
      ``aperture·N/2`` pixels centred on ``(N − 1)/2`` (an aberrated aperture).

    The disk's edge pixels are weighted by ``clip(R + ½ − r, 0, 1)`` (``r`` the distance of
    the pixel's centre from the disk's, ``R`` the radius in pixels of the grid the pupil is
    sampled on): the fraction of the pixel inside the disk where the edge runs along a pixel
    axis, within 0.05 of it where the edge runs diagonally. The disk's area is then ``πR²``
    to a relative ``0.15/R`` (measured: 0.9 % at ``R = 4``, under 0.05 % for ``R >= 32``;
    in focus ``R = 2·aperture·N`` on the 4× grid).

    Parameters
    ----------
    N : int
        Probe side in pixels, ``2 <= N <=`` :data:`MAX_N`.
    coefficients : array_like, (J,), optional
        ``coefficients[j − 1]`` multiplies ``Z_j`` (``J <= 231``). ``None``: random, from
        :func:`random_zernike_coefficients` with ``seed`` and ``rms_rad``.
    aperture : float, default 0.25
        Pupil radius as a fraction of ``N/2``, ``0 < aperture <= 1``.
    plane : {'focus', 'pupil'}, default 'focus'
        Where the probe is taken (see above).
    seed : int, numpy.random.Generator or None
        Only when ``coefficients`` is None (giving both raises). A ``Generator`` gives one
        draw (advancing it, except when the call fails: then it is left as it was).
    rms_rad : float, default 1.0
        RMS phase of the random coefficients, radians.

    Returns
    -------
    numpy.ndarray, (N, N), complex64
        ``Σ|P|² = 1``.

    Raises
    ------
    TypeError, ValueError
        An argument out of range (``rms_rad`` is checked with explicit coefficients too), both
        ``coefficients`` and ``seed`` given, or, with ``plane='pupil'``, an ``aperture`` so
        small that the disk covers no pixel centre (``aperture·N/2 <= (√2 − 1)/2`` pixels for
        an even ``N``).

    Examples
    --------
    >>> import numpy as np
    >>> coma = np.zeros(8); coma[7] = 1.0  # Z_8, x coma, 1 rad
    >>> zernike(64, coma, aperture=0.2).shape
    (64, 64)
    """
    N = _check_N(N)
    ap = _args.real("aperture", aperture, positive=True, maximum=1.0)
    plane = _args.choice("plane", plane, ("focus", "pupil"))
    # Checked even with explicit coefficients (which do not use it): a bad value is an error.
    _args.real("rms_rad", rms_rad, nonnegative=True)
    if plane == "pupil":
        # The pupil plane has no pixel at its centre for even N: the nearest pixel centres are
        # √2/2 away, and a disk whose edge weight clip(R + ½ − r, 0, 1) vanishes there is empty.
        r0 = 0.0 if N % 2 else math.sqrt(0.5)
        if ap * N / 2.0 + 0.5 - r0 <= 0.0:
            raise ValueError(
                f"aperture must be > {2.0 * (r0 - 0.5) / N:.6g} for plane='pupil' with N = {N} "
                f"(the disk of radius aperture·N/2 pixels covers no pixel), got {ap!r}"
            )
    if coefficients is None:
        # A phase beyond float64 (a huge rms_rad) is refused after the draw: a Generator
        # passed as seed then gets its state back.
        with _args.seed_kept_on_error(seed):
            c = random_zernike_coefficients(seed=seed, rms_rad=rms_rad)
            return _zernike_field(N, ap, plane, c, rms_rad)
    if seed is not None:
        raise ValueError("give coefficients or seed, not both (seed draws coefficients)")
    return _zernike_field(N, ap, plane, _check_coefficients(coefficients), rms_rad)


def _zernike_field(N: int, ap: float, plane: str, c: np.ndarray, rms_rad: Any) -> np.ndarray:
    """The probe of :func:`zernike` for checked arguments and coefficients ``c``."""
    where = f"zernike(N={N}, aperture={ap!r}, rms_rad={rms_rad!r}, coefficients={c.tolist()})"
    if plane == "pupil":
        return _finish(_zernike_pupil(_coords(N), ap * N / 2.0, c), where)
    # Focus: U(x) = Σ_ν P(ν) exp(2πi ν·(x − c)/M), c = (M − 1)/2, by the inverse FFT on a
    # grid M ≈ 4N (the same parity as N) whose central N × N pixels are kept: the pupil is
    # sampled 4× finer and the field's periodic images are 4 windows away.
    pad = ((_ZERNIKE_OVERSAMPLING - 1) * N) // 2 if N <= MAX_N // _ZERNIKE_OVERSAMPLING else 0
    M = N + 2 * pad
    u = np.arange(M, dtype=np.float64) - M // 2  # integer frequencies, 0 at M // 2
    pupil = _zernike_pupil(u, ap * M / 2.0, c)
    ramp = np.exp(-2j * np.pi * u * ((M - 1) / 2.0) / M)
    field = np.fft.ifft2(np.fft.ifftshift(pupil * ramp[:, None] * ramp[None, :]))
    return _finish(field[pad : pad + N, pad : pad + N], where)


#: Pupil sampling of :func:`zernike` in focus, relative to the probe grid.
_ZERNIKE_OVERSAMPLING = 4


def _zernike_pupil(u: np.ndarray, radius: float, c: np.ndarray) -> np.ndarray:
    """``circ · exp(i Σ c_j Z_j)`` on the grid ``u × u`` (pixels), disk of ``radius`` pixels;
    edge pixels weighted by ``clip(radius + ½ − r, 0, 1)`` (the pixel's area inside for an
    edge along a pixel axis, within 0.05 of it otherwise: :func:`zernike`)."""
    r = np.hypot(u[None, :], u[:, None])
    weight = np.clip(radius + 0.5 - r, 0.0, 1.0)
    if not np.any(weight > 0):  # pragma: no cover - zernike checks the pupil plane's size
        raise ValueError("the pupil covers no pixel")
    with np.errstate(all="ignore"):  # outside the pupil rho is never used: 0 there
        rho = np.where(weight > 0, r / radius, 0.0)
    theta = np.arctan2(u[:, None], u[None, :])
    phase = np.zeros(r.shape, dtype=np.float64)
    with np.errstate(all="ignore"):  # a huge phase gives NaN: _finish refuses it by name
        for j, cj in enumerate(c, start=1):
            if cj != 0.0:
                phase += cj * zernike_polynomial(j, rho, theta)
        return np.where(weight > 0, weight * np.exp(1j * phase), 0.0)


# --------------------------------------------------------------------------- propagation


def propagate(probe: Any, distance_m: float, geometry: Geometry) -> np.ndarray:
    """Propagate a probe (or each mode of a stack) by ``distance_m`` in free space.

    Band-limited angular spectrum (Matsushima & Shimobaba, Opt. Express 17, 19662, 2009):
    the field is zero-padded to ``2N × 2N`` (so the propagation is not periodic: what leaves
    the window is lost), its spectrum multiplied by
    ``H(ν) = exp(2πi d (√(1/λ² − |ν|²) − 1/λ))`` (evanescent waves removed, the carrier
    ``exp(2πi d/λ)`` dropped) inside the band ``|ν_x|, |ν_y| <= 1 / (λ √((d/(N Δx))² + 1))``
    that the padded grid samples without aliasing the transfer function, and cropped back.
    ``d > 0`` is downstream. The result is **not** renormalised: its total intensity is the
    input's less what left the window or the band.

    Parameters
    ----------
    probe : array_like, (N, N) or (P, N, N)
        Field(s), finite; ``N`` must equal ``geometry.N``.
    distance_m : float
        Propagation distance ``d`` in metres (any finite value; 0 returns a copy).
    geometry : Geometry
        Wavelength ``λ`` and pixel size ``Δx`` of the field.

    Returns
    -------
    numpy.ndarray, complex64, the shape of ``probe``

    Raises
    ------
    TypeError, ValueError
        Wrong types or shapes, non-finite values, ``N`` different from ``geometry.N``.

    Examples
    --------
    >>> import numpy as np
    >>> from ptyfast import Geometry
    >>> g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=64)
    >>> p = propagate(gaussian(64, 3.0), 50e-6, g)
    >>> p.shape, round(float(np.sum(np.abs(p) ** 2)), 4)
    ((64, 64), 1.0)
    """
    if not isinstance(geometry, Geometry):
        raise TypeError(f"geometry must be a ptyfast.Geometry, got {type(geometry).__name__}")
    d = _args.real("distance_m", distance_m)
    stack, single = _as_probe_stack("probe", probe)
    N = stack.shape[-1]
    if N != geometry.N:
        raise ValueError(f"probe must be (N, N) with N = geometry.N = {geometry.N}, got N = {N}")
    if d == 0.0:
        out = stack.astype(np.complex64)
        return out[0] if single else out
    lam, dx = geometry.wavelength_m, geometry.object_pixel_m
    M = 2 * N
    nu = np.fft.fftfreq(M, d=dx)
    nu2 = nu[:, None] ** 2 + nu[None, :] ** 2
    inv_lam2 = 1.0 / (lam * lam)
    propagating = nu2 < inv_lam2
    # √(1/λ² − ν²) − 1/λ without cancellation.
    kz = -nu2 / (1.0 / lam + np.sqrt(np.where(propagating, inv_lam2 - nu2, 0.0)))
    try:
        limit = 1.0 / (lam * math.sqrt((d / (N * dx)) ** 2 + 1.0))
    except OverflowError:  # |d| beyond ~1e154 windows: the band keeps the zero frequency only
        limit = 0.0
    band = (np.abs(nu)[:, None] <= limit) & (np.abs(nu)[None, :] <= limit) & propagating
    with np.errstate(all="ignore"):
        H = np.where(band, np.exp(2j * np.pi * d * kz), 0.0)
    if not np.all(np.isfinite(H)):
        raise ValueError(
            f"distance_m is too large to propagate in float64 (the transfer function "
            f"overflows), got {d!r}"
        )
    out = np.empty(stack.shape, dtype=np.complex64)
    padded = np.zeros((M, M), dtype=np.complex128)
    lo = N // 2
    for i, mode in enumerate(stack):
        padded[:] = 0.0
        padded[lo : lo + N, lo : lo + N] = mode
        prop = np.fft.ifft2(np.fft.fft2(padded) * H)
        out[i] = prop[lo : lo + N, lo : lo + N]
    return out[0] if single else out


# --------------------------------------------------------------------------- modes


def _mode_weights(n: int, weights: Any, decay: Any) -> np.ndarray:
    if weights is not None and decay is not None:
        raise ValueError("give weights or decay, not both")
    if weights is not None:
        w = _args.asarray("weights", weights)
        if w.dtype.kind not in "biuf" or w.ndim != 1:
            raise TypeError(f"weights must be a 1-D real array, got {w.dtype} {w.shape}")
        if w.size != n:
            raise ValueError(f"weights must have n = {n} entries, got {w.size}")
        w = w.astype(np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite, got NaN or inf values")
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0, got {w.tolist()}")
        if w[0] <= 0:
            raise ValueError(f"weights[0] (the primary's power) must be > 0, got {w[0]}")
        total = float(np.sum(w))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1 (within 1e-6), got sum {total!r}")
        return w / total
    q = 0.5 if decay is None else _args.real("decay", decay, positive=True, maximum=1.0)
    w = q ** np.arange(n, dtype=np.float64)
    return w / np.sum(w)


def _orthonormal_modes(primary: np.ndarray, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """Modified Gram–Schmidt (two passes) of ``candidates`` against ``primary`` and each
    other; every result has unit norm (a dependent candidate raises, naming ``n``)."""
    basis = [primary / math.sqrt(_power(primary))]
    for k, cand in enumerate(candidates, start=1):
        v = cand.copy()
        start = math.sqrt(_power(v))
        for _ in range(2):
            for b in basis:
                v -= np.vdot(b, v) * b
        norm = math.sqrt(_power(v))
        if not math.isfinite(norm) or norm <= 1e-6 * max(start, 1e-300):
            raise ValueError(
                f"n = {len(candidates) + 1} modes cannot be built from this primary: mode {k}'s "
                f"candidate is linearly dependent on the previous modes (the primary's "
                f"{int(np.count_nonzero(primary))} non-zero pixels or their layout allow "
                f"fewer modes)"
            )
        basis.append(v / norm)
    return basis


def modes(
    primary: Any,
    n: int,
    *,
    weights: Any = None,
    decay: float | None = None,
    method: str = "hermite",
    seed: Any = None,
) -> np.ndarray:
    """Orthogonal incoherent probe modes, the first one the primary.

    Candidates for the modes ``1..n−1`` are the primary multiplied by functions of position,
    made orthonormal to the primary and to each other by (twice-applied) modified
    Gram–Schmidt, then scaled so that mode ``k`` carries the power ``weights[k]``:

    * ``method='hermite'`` (deterministic): the monomials ``x^a y^b`` of increasing total
      degree (``x, y, x², xy, y², x³, …``) in coordinates centred on the primary's intensity
      centroid and scaled by its RMS radius; for a Gaussian primary these are the
      Hermite–Gaussian modes.
    * ``method='random'``: complex Gaussian white noise (real, then imaginary part, mode by
      mode, from ``Generator(PCG64(seed))``), smoothed with a Gaussian of the primary's RMS
      radius / 2.

    Parameters
    ----------
    primary : array_like, (N, N)
        The dominant mode (any norm, finite, non-zero).
    n : int
        Number of modes, ``1 <= n <= 64``.
    weights : array_like, (n,), optional
        Mode powers, ``>= 0`` with ``weights[0] > 0``, summing to 1 (within 1e-6; then scaled
        to an exact sum).
    decay : float, optional
        Geometric powers ``w_k ∝ decay**k``, ``0 < decay <= 1``. Neither ``weights`` nor
        ``decay``: ``decay = 0.5``. Giving both raises.
    method : {'hermite', 'random'}, default 'hermite'
        How the candidates are made (see above).
    seed : int, numpy.random.Generator or None
        ``method='random'`` only. A ``Generator`` gives one draw (advancing it, except when
        the call fails: then it is left as it was).

    Returns
    -------
    numpy.ndarray, (n, N, N), complex64
        ``⟨P_i, P_j⟩ = δ_ij·w_i`` (to float32 rounding); ``P_0 ∝ primary``.

    Raises
    ------
    TypeError, ValueError
        Invalid arguments; weights negative or not summing to 1; ``n`` larger than the
        number of non-zero pixels of ``primary`` (checked first), or a candidate linearly
        dependent on the previous modes (a primary whose support allows fewer modes; the
        message names ``n``).

    Examples
    --------
    >>> import numpy as np
    >>> m = modes(gaussian(64, 6.0), 3, weights=[0.7, 0.2, 0.1])
    >>> m.shape, [round(float(w), 5) for w in np.sum(np.abs(m) ** 2, axis=(1, 2))]
    ((3, 64, 64), [0.7, 0.2, 0.1])
    """
    stack, single = _as_probe_stack("primary", primary)
    if not single:
        raise ValueError(f"primary must be one mode (N, N), got shape {np.shape(primary)}")
    p0 = stack[0]
    n = _args.integer("n", n, minimum=1, maximum=MAX_MODES)
    method = _args.choice("method", method, ("hermite", "random"))
    if method == "hermite" and seed is not None:
        raise ValueError("seed is used only with method='random'")
    w = _mode_weights(n, weights, decay)
    power = _power(p0)
    if not math.isfinite(power) or power <= 0:
        raise ValueError(f"primary has zero (or non-finite) total intensity: {power}")
    # Every mode is the primary times a function of position: the modes span at most the
    # primary's support, so n orthogonal ones need n non-zero pixels (checked before drawing).
    support = int(np.count_nonzero(p0))
    if n > support:
        raise ValueError(
            f"n must be <= the number of non-zero pixels of primary ({support}), got {n}: "
            f"modes are the primary times functions of position, so more would be linearly "
            f"dependent"
        )
    with _args.seed_kept_on_error(seed):
        return _make_modes(p0, n, w, method, seed, power)


def _make_modes(
    p0: np.ndarray, n: int, w: np.ndarray, method: str, seed: Any, power: float
) -> np.ndarray:
    """The body of :func:`modes`, its arguments checked."""
    N = p0.shape[0]
    intensity = (p0.real**2 + p0.imag**2) / power
    c = np.arange(N, dtype=np.float64)
    cy = float(np.sum(intensity.sum(axis=1) * c))
    cx = float(np.sum(intensity.sum(axis=0) * c))
    y = c[:, None] - cy
    x = c[None, :] - cx
    rms = math.sqrt(max(float(np.sum(intensity * (x * x + y * y))), 1e-12))
    candidates: list[np.ndarray] = []
    if method == "hermite":
        xs, ys = x / rms, y / rms
        degree = 1
        while len(candidates) < n - 1:
            for a in range(degree, -1, -1):
                if len(candidates) == n - 1:
                    break
                candidates.append(p0 * (xs**a) * (ys ** (degree - a)))
            degree += 1
    else:
        rng = _args.generator(_args.seed_int(seed))
        for _ in range(n - 1):
            noise = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
            smooth = gaussian_filter(noise.real, rms / 2) + 1j * gaussian_filter(
                noise.imag, rms / 2
            )
            candidates.append(p0 * smooth)
    basis = _orthonormal_modes(p0, candidates)
    out = np.stack([b * math.sqrt(wk) for b, wk in zip(basis, w, strict=True)])
    return out.astype(np.complex64)


# --------------------------------------------------------------------------- loading

#: HDF5 datasets searched by :func:`load`, in order.
HDF5_PROBE_PATHS: tuple[str, ...] = (
    "probe",
    "entry_1/instrument_1/source_1/probe",
    "entry_1/instrument_1/detector_1/probe",
    "entry_1/probe",
)
#: NPZ keys searched by :func:`load`, in order.
NPZ_PROBE_KEYS: tuple[str, ...] = ("probeGuess", "probe")


def _probe_from_array(arr: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "biufc":
        raise ValueError(f"{where} must be numeric, got dtype {a.dtype}")
    shape = a.shape
    if a.ndim == 3 and a.shape[-1] == 1 and a.shape[0] == a.shape[1]:
        a = a[..., 0]  # PtychoPINN's (N, N, 1)
    while a.ndim == 4 and a.shape[0] == 1:
        a = a[0]  # ptychodus' OPR axis of length 1
    if a.ndim == 4:
        raise ValueError(
            f"{where} has shape {shape}: only one orthogonal-probe-relaxation mode "
            f"(leading axis 1) is supported"
        )
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{where} must be (N, N), (N, N, 1) or (P, N, N), got {shape}")
    try:
        stack, single = _as_probe_stack(where, a)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    out = _finish(stack, where)
    return out[0] if single else out


def load(path: str | os.PathLike[str], *, key: str | None = None) -> np.ndarray:
    """An experimental probe from an NPZ or HDF5 file, normalised, modes kept.

    NPZ (``.npz``): the first of the keys ``probeGuess`` (PtychoPINN), ``probe``. HDF5 (any
    other file; ``h5py`` is imported only here): the first of the datasets ``probe``
    (ptychodus product files, plain files), ``entry_1/instrument_1/source_1/probe``,
    ``entry_1/instrument_1/detector_1/probe``, ``entry_1/probe`` (CXI). ``key`` names the
    array or dataset instead. Accepted shapes: ``(N, N)``, ``(N, N, 1)``, ``(P, N, N)`` and
    ``(1, P, N, N)`` (ptychodus with one OPR mode).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    key : str, optional
        NPZ key or HDF5 dataset path to read.

    Returns
    -------
    numpy.ndarray, complex64, (N, N) or (P, N, N)
        ``Σ_k Σ |P_k|² = 1``; the modes' relative powers are kept.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is neither NPZ nor HDF5, has no probe under the searched keys (the message
        names the file and the keys), or the probe has a bad shape, non-finite values or
        zero power.
    ImportError
        An HDF5 file and no ``h5py``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "p.npz")
    >>> np.savez(f, probeGuess=np.ones((8, 8), np.complex64))
    >>> load(f).shape
    (8, 8)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, got {type(key).__name__}")
    fspath = os.fspath(path)
    if not os.path.exists(fspath):
        raise FileNotFoundError(f"probe file {fspath!r} does not exist")
    if os.path.isdir(fspath):
        raise ValueError(f"path must be a probe file (NPZ or HDF5), got the directory {fspath!r}")
    if zipfile.is_zipfile(fspath):
        try:
            return _load_npz(fspath, key)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            KeyError,
            NotImplementedError,
        ) as exc:
            raise ValueError(f"{fspath!r} is a damaged NPZ file: {exc}") from None
    with open(fspath, "rb") as fh:
        magic = fh.read(8)
    if magic != b"\x89HDF\r\n\x1a\n":
        raise ValueError(f"{fspath!r} is neither an NPZ nor an HDF5 file")
    try:
        return _load_h5(fspath, key)
    except (OSError, KeyError, RuntimeError) as exc:  # h5py's errors on a damaged file
        raise ValueError(f"{fspath!r} is a damaged HDF5 file: {exc}") from None


def _load_npz(fspath: str, key: str | None) -> np.ndarray:
    with zipfile.ZipFile(fspath) as zf, np.load(fspath, allow_pickle=False) as data:
        keys = (key,) if key is not None else NPZ_PROBE_KEYS
        for k in keys:
            if k in data.files:
                # The declared shape is checked before NumPy allocates it.
                with zf.open(k + ".npy") as f:
                    version = npformat.read_magic(f)
                    if version not in ((1, 0), (2, 0)):
                        raise ValueError(f"{fspath!r}[{k!r}] has .npy version {version}")
                    header = (
                        npformat.read_array_header_1_0
                        if version == (1, 0)
                        else npformat.read_array_header_2_0
                    )
                    shape = header(f)[0]
                if len(shape) not in (2, 3, 4) or any(n > MAX_N for n in shape[-2:]):
                    raise ValueError(
                        f"{fspath!r}[{k!r}] must be (N, N), (P, N, N) or (1, P, N, N) with "
                        f"N <= {MAX_N}, got {shape}"
                    )
                require_memory(f"the probe {fspath!r}[{k!r}] {shape}", 16 * math.prod(shape))
                return _probe_from_array(data[k], f"{fspath!r}[{k!r}]")
        raise ValueError(
            f"{fspath!r} has no probe: looked for keys {list(keys)}, found {data.files}"
        )


def _load_h5(fspath: str, key: str | None) -> np.ndarray:
    import h5py

    with h5py.File(fspath, "r") as h5:
        paths = (key,) if key is not None else HDF5_PROBE_PATHS
        for p in paths:
            obj = h5.get(p)
            if isinstance(obj, h5py.Dataset):
                shape = obj.shape
                if len(shape) not in (2, 3, 4) or any(s > MAX_N for s in shape[-2:]):
                    raise ValueError(
                        f"{fspath!r}[{p!r}] must be (N, N), (P, N, N) or (1, P, N, N) with "
                        f"N <= {MAX_N}, got {shape}"
                    )
                require_memory(f"the probe {fspath!r}[{p!r}] {shape}", 16 * math.prod(shape))
                return _probe_from_array(obj[()], f"{fspath!r}[{p!r}]")
        raise ValueError(f"{fspath!r} has no probe dataset: looked for {list(paths)}")


# --------------------------------------------------------------------------- recipes

#: ``format`` field of a probe recipe.
RECIPE_FORMAT = "ptyfast.probe"
#: Version of the recipe layout and of the builders' arithmetic.
RECIPE_VERSION = 1

_BUILDERS: dict[str, Callable[..., np.ndarray]] = {
    "disk": disk,
    "gaussian": gaussian,
    "super_gaussian": super_gaussian,
    "fresnel_zone_plate": fresnel_zone_plate,
    "zernike": zernike,
}
_OPERATIONS: dict[str, Callable[..., np.ndarray]] = {"propagate": propagate, "modes": modes}


def _jsonable(name: str, v: Any) -> Any:
    """Geometry as its dict, arrays, tuples and lists as lists, NumPy scalars as Python ones
    (also inside lists: ``weights=[np.float32(0.7), ...]``)."""
    if isinstance(v, Geometry):
        return v.to_dict()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (tuple, list)):
        return [_jsonable(name, x) for x in v]
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


def _complete(
    where: str, fn: Callable[..., Any], given: dict[str, Any], skip: tuple[str, ...]
) -> dict[str, Any]:
    sig = _args.parameters(where, fn, given, skip)
    return {k: _jsonable(k, given.get(k, d)) for k, d in sig.items()}


def recipe(builder: str, *, operations: Any = (), **params: Any) -> dict[str, Any]:
    """The recorded description of a probe: builder, parameters, then operations.

    Parameters
    ----------
    builder : {'disk', 'gaussian', 'super_gaussian', 'fresnel_zone_plate', 'zernike'}
        The builder (:func:`load` has no recipe: a probe read from a file is recorded as its
        array).
    operations : sequence of dict, optional
        Applied in order to the built probe: ``{"op": "propagate", "distance_m": d,
        "geometry": g}`` (:func:`propagate`) or ``{"op": "modes", "n": n, ...}``
        (:func:`modes`, with its keyword arguments).
    **params
        The builder's arguments; omitted ones take their defaults. A ``Geometry`` is stored
        as its dict, arrays as lists. Seeds that will be used (``zernike`` without
        coefficients, ``modes`` with ``method='random'``) are resolved to the recorded
        integers (``None``: fresh entropy, recorded).

    Returns
    -------
    dict
        JSON-serialisable ``{"format": "ptyfast.probe", "version": 1, "builder": ...,
        "params": {...}, "operations": [...]}``; :func:`build` makes the probe from it.

    Raises
    ------
    ValueError
        Unknown builder, operation or parameter, a missing required parameter, a bad seed, or
        a seed where none is drawn (``zernike`` with ``coefficients``, ``modes`` without
        ``method='random'``), all before any seed is resolved. The other values are checked
        by :func:`build` (an :class:`~ptyfast.Experiment` builds its recipes at once).

    Examples
    --------
    >>> from ptyfast import Geometry
    >>> g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=64)
    >>> r = recipe("zernike", N=64, aperture=0.2,
    ...            operations=[{"op": "propagate", "distance_m": 1e-4, "geometry": g},
    ...                        {"op": "modes", "n": 3, "decay": 0.6}])
    >>> isinstance(r["params"]["seed"], int), build(r).shape
    (True, (3, 64, 64))
    """
    _args.choice("builder", builder, tuple(sorted(_BUILDERS)))
    p = _complete(builder, _BUILDERS[builder], params, ())
    if builder == "zernike" and p["coefficients"] is not None and p["seed"] is not None:
        # As zernike refuses it: a recipe that cannot be built (a Generator is not even JSON).
        raise ValueError("give coefficients or seed, not both (seed draws coefficients)")
    if isinstance(operations, (dict, str)) or not hasattr(operations, "__iter__"):
        raise TypeError(f"operations must be a sequence of dicts, got {operations!r}")
    ops = []
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not _args.one_of(op.get("op"), _OPERATIONS):
            got = op.get("op") if isinstance(op, dict) else op
            raise ValueError(
                f"operations[{i}]['op'] must be one of {sorted(_OPERATIONS)}, got {got!r}"
            )
        kind = op["op"]
        given = {k: v for k, v in op.items() if k != "op"}
        skip = ("probe",) if kind == "propagate" else ("primary",)
        q = {"op": kind, **_complete(f"operations[{i}] ({kind})", _OPERATIONS[kind], given, skip)}
        if kind == "modes" and q["method"] != "random" and q["seed"] is not None:
            raise ValueError(
                f"operations[{i}] (modes): seed is used only with method='random', got "
                f"method={q['method']!r} and seed={q['seed']!r}"
            )
        ops.append(q)
    # Seeds are resolved once the recipe's layout is checked (a Generator is not advanced by
    # a refused recipe): the builder's first, then the operations' in order.
    if builder == "zernike" and p["coefficients"] is None:
        p["seed"] = _args.seed_int(p["seed"])
    for q in ops:
        if q["op"] == "modes" and q["method"] == "random":
            q["seed"] = _args.seed_int(q["seed"])
    return {
        "format": RECIPE_FORMAT,
        "version": RECIPE_VERSION,
        "builder": builder,
        "params": p,
        "operations": ops,
    }


def build(recipe: dict[str, Any]) -> np.ndarray:
    """Make the probe a :func:`recipe` describes, bit for bit the same every time.

    The builder's probe goes through the operations in order; the result is normalised to
    unit total intensity at the end (a propagation may have lost what left the window).

    Parameters
    ----------
    recipe : dict
        As returned by :func:`recipe` (possibly through JSON).

    Returns
    -------
    numpy.ndarray, complex64, (N, N) or (P, N, N)

    Raises
    ------
    ValueError
        Not a probe recipe, another version, unknown or missing keys, a seed that is not a
        recorded integer, or values the builders reject.

    Examples
    --------
    >>> build(recipe("gaussian", N=32, sigma_px=4.0)).shape
    (32, 32)
    """
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe must be a dict, got {type(recipe).__name__}")
    want = {"format", "version", "builder", "params", "operations"}
    if set(recipe) != want:
        raise ValueError(f"recipe must have the keys {sorted(want)}, got {sorted(recipe)}")
    if recipe["format"] != RECIPE_FORMAT:
        raise ValueError(f"recipe['format'] must be {RECIPE_FORMAT!r}, got {recipe['format']!r}")
    if recipe["version"] != RECIPE_VERSION:
        raise ValueError(
            f"recipe['version'] must be {RECIPE_VERSION} (this ptyfast's probe recipes), got "
            f"{recipe['version']!r}"
        )
    name = recipe["builder"]
    _args.choice("recipe['builder']", name, tuple(sorted(_BUILDERS)))
    params = recipe["params"]
    names = list(_args.signature_params(_BUILDERS[name]))
    if not isinstance(params, dict) or set(params) != set(names):
        raise ValueError(f"recipe['params'] must have the keys of {name}: {names}")
    kwargs = dict(params)
    if "geometry" in kwargs:
        kwargs["geometry"] = Geometry.from_dict(kwargs["geometry"])
    if name == "zernike" and kwargs["coefficients"] is None:
        _recorded_seed("recipe['params']['seed']", kwargs["seed"])
    probe = _BUILDERS[name](**kwargs)
    operations = recipe["operations"]
    if not isinstance(operations, list):
        raise ValueError(f"recipe['operations'] must be a list, got {type(operations).__name__}")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not _args.one_of(op.get("op"), _OPERATIONS):
            raise ValueError(
                f"recipe['operations'][{i}]['op'] must be one of {sorted(_OPERATIONS)}"
            )
        kind = op["op"]
        skip = ("probe",) if kind == "propagate" else ("primary",)
        keys = set(_args.signature_params(_OPERATIONS[kind], skip))
        kw = {k: v for k, v in op.items() if k != "op"}
        if set(kw) != keys:
            raise ValueError(
                f"recipe['operations'][{i}] ({kind}) must have the keys {sorted(keys)}, got "
                f"{sorted(kw)}"
            )
        if kind == "propagate":
            probe = propagate(probe, kw["distance_m"], Geometry.from_dict(kw["geometry"]))
        else:
            if kw["method"] == "random":
                _recorded_seed(f"recipe['operations'][{i}]['seed']", kw["seed"])
            if probe.ndim != 2:
                raise ValueError(f"recipe['operations'][{i}]: modes of a mode stack")
            probe = modes(probe, **kw)
    return normalize(probe)


def _recorded_seed(where: str, seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{where} must be a recorded integer, got {seed!r}")

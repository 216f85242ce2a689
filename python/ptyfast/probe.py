"""Default probe and probe normalisation, compatible with ``ptycho.probe``.

:func:`get_default_probe` reproduces the reference's idealised disk probe bit for bit (the
recipe lives in the model, :func:`ptyfast.probes.disk_profile`; ``ptyfast.probes.disk`` is its
normalised complex form):

1. ``w = gaussian(N, std=N / (scale * pi**2), sym=True)`` (``scipy.signal.windows``),
   divided by its maximum;
2. the mask ``outer(w, w) > 0.5`` (376 pixels for N=64, 1500 for N=128 at scale 0.7);
3. ``scipy.ndimage.gaussian_filter(mask, sigma=1)`` (mode ``'reflect'``, truncate 4),
   then ``+ 1e-9``.

The probe is real and has no phase. :func:`normalize_probe` is the pure form of the
reference's ``set_probe`` scaling; :func:`set_probe`, :func:`get_probe`,
:func:`set_default_probe` and :func:`set_probe_guess` are thin shims over
:data:`ptyfast.params.cfg` for legacy code. Unlike the reference they store NumPy arrays,
not TensorFlow tensors.

Conventions (shapes, axes) are those of the README.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np

from . import _kernels, params
from ._kernels import from_tensor
from .model import _args
from .model import probes as _probes

__all__ = [
    "get_default_probe",
    "get_lowpass_filter",
    "get_probe_mask_real",
    "get_squared_distance",
    "normalize_probe",
    "set_probe",
    "get_probe",
    "set_default_probe",
    "set_probe_guess",
    "to_np",
]

logger = logging.getLogger(__name__)


def _check_n(N: Any, name: str = "N") -> int:
    if not isinstance(N, numbers.Integral) or isinstance(N, bool):
        raise TypeError(f"{name} must be a positive integer, got {type(N).__name__} {N!r}")
    if N < 1:
        raise ValueError(f"{name} must be a positive integer, got {N!r}")
    # The probe helpers make a few float64 (N, N) arrays: refuse sizes beyond the memory.
    _kernels.require_memory(f"{name}={int(N)}: (N, N) float64 probe arrays", 32 * int(N) ** 2)
    return int(N)


def _check_positive(name: str, v: Any) -> None:
    """Refuses ``v`` unless it is a finite real number > 0 (``TypeError`` for a string, bool
    or other non-number; ``ValueError`` otherwise, also for an integer beyond float64). The
    caller keeps ``v`` itself: a NumPy float32 scale computes in float32, as in the
    reference."""
    if _kernels._real_number(name, v, "a finite number > 0") <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


def get_lowpass_filter(scale: float, N: int) -> np.ndarray:
    """The 1-D window of the default probe.

    Parameters
    ----------
    scale : float
        Probe scale (``default_probe_scale``); the window's standard deviation is
        ``N / (scale * pi**2)`` samples.
    N : int
        Window length.

    Returns
    -------
    numpy.ndarray, (N,), float64
        Symmetric Gaussian window divided by its maximum.

    Raises
    ------
    TypeError
        If ``scale`` is not a real number or ``N`` not an integer.
    ValueError
        If ``scale`` is not finite and > 0, ``N < 1``, or ``scale`` is so large that every
        sample of the window underflows to 0 (the reference returns NaN there).
    """
    _check_positive("scale", scale)
    N = _check_n(N)
    window = _probes._lowpass_window(N, scale)
    if not np.all(np.isfinite(window)):
        raise ValueError(
            f"scale={scale!r} is too large for N={N}: every sample of the window underflows "
            "to 0 (the window would be NaN)"
        )
    return window


def get_default_probe(N: int, fmt: str = "np", *, scale: float | None = None) -> Any:
    """The reference's default (idealised disk) probe.

    Parameters
    ----------
    N : int
        Probe side length in pixels (the patch size).
    fmt : {'np', 'tf'}, default 'np'
        ``'np'``: a real float64 NumPy array (N, N). ``'tf'``: a complex64 TensorFlow tensor
        (N, N, 1) with zero imaginary part (needs TensorFlow, imported only here). The
        reference's default is ``'tf'``.
    scale : float, optional
        Window scale; ``None`` reads ``params.cfg['default_probe_scale']`` (0.7 by default).

    Returns
    -------
    numpy.ndarray or tensorflow.Tensor
        The probe: ``gaussian_filter(outer(w, w) > 0.5, 1) + 1e-9``, amplitude about 1 inside
        the disk.

    Raises
    ------
    ValueError
        If ``N < 1``, ``scale`` is not a finite positive number (including an integer too
        large for float64), or ``fmt`` is neither ``'np'`` nor ``'tf'``.
    TypeError
        If ``N`` is not an integer (``"8"``, ``8.0``, ``True``) or ``scale`` not a real
        number (``"0.7"``, ``True``).
    ImportError
        If ``fmt='tf'`` and TensorFlow is not installed.

    Examples
    --------
    >>> from ptyfast.probe import get_default_probe
    >>> probe = get_default_probe(64, fmt='np')
    >>> probe.shape, probe.dtype
    ((64, 64), dtype('float64'))
    """
    N = _check_n(N)
    if fmt not in ("np", "tf"):
        raise ValueError(f"Invalid format specified: fmt must be 'np' or 'tf', got {fmt!r}")
    if scale is None:
        scale = params.get("default_probe_scale")
    _check_positive("scale", scale)
    probe = _probes.disk_profile(N, scale=scale)
    if fmt == "np":
        return probe
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(
            "get_default_probe(fmt='tf') needs TensorFlow (pip install 'ptyfast[tf]'); "
            "use fmt='np' for a NumPy array"
        ) from exc
    return tf.convert_to_tensor(probe, tf.complex64)[..., None]


def get_squared_distance(N: int) -> np.ndarray:
    """Distance of each pixel from the centre, ``sqrt(x**2 + y**2)``.

    Despite the (reference) name this is the distance, not its square. Coordinates are
    ``arange(N) - N // 2 + 0.5`` on both axes.

    Parameters
    ----------
    N : int

    Returns
    -------
    numpy.ndarray, (N, N), float64
    """
    N = _check_n(N)
    centred = np.arange(N) - N // 2 + 0.5
    x, y = np.meshgrid(centred, centred)
    return np.sqrt(x * x + y * y)


def get_probe_mask_real(N: int) -> np.ndarray:
    """Boolean disk ``distance < N // 4`` used by the probe normalisation.

    Parameters
    ----------
    N : int

    Returns
    -------
    numpy.ndarray, (N, N, 1), bool
    """
    return (get_squared_distance(N) < N // 4)[..., None]


def _as_numpy(a: Any, name: str) -> np.ndarray:
    # A ragged or too deeply nested list: a TypeError naming the argument, not NumPy's.
    arr = _args.asarray(name, from_tensor(a))
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def normalize_probe(probe: Any, *, probe_scale: float, N: int | None = None) -> np.ndarray:
    """Scale a probe as the reference's ``set_probe`` does, without global state.

    ``norm = probe_scale * mean(|mask * probe|)`` with ``mask = distance < N // 4``
    (:func:`get_probe_mask_real`), the mean taken over all ``N**2`` pixels; the result is
    ``probe / norm``.

    Parameters
    ----------
    probe : array_like or tensorflow.Tensor, (N, N), (N, N, 1) or (N, N, 1, 1)
        Real or complex probe. A 4-D probe is reduced to 3-D (the reference keeps it 4-D and
        then broadcasts the mask wrongly; see COMPATIBILITY.md).
    probe_scale : float
        ``> 0``; the reference reads ``params.cfg['probe_scale']`` (10.0 by default, 4.0 via
        ``ModelConfig``).
    N : int, optional
        Mask size; must equal the probe's side. ``None`` uses the probe's side. (The
        reference takes ``params.cfg['N']`` and fails when they differ.)

    Returns
    -------
    numpy.ndarray
        ``probe / norm``, same shape as the input (after 4-D → 3-D) and same dtype for
        float32/float64/complex64/complex128 input (integers become float64).

    Raises
    ------
    ValueError
        If the shape is not one of the above, ``N`` differs from the probe's side,
        ``probe_scale`` is not a finite positive number, or the masked probe is zero or not
        finite.
    TypeError
        If ``probe`` is not a numeric array (a ragged nested list, strings), ``N`` is not an
        integer or ``probe_scale`` not a real number.

    Notes
    -----
    The magnitude (``hypot``) and the division are done in the probe's precision, as
    TensorFlow does them; the mean is accumulated in float64 and rounded to that precision,
    where TensorFlow's float32 ``reduce_mean`` may round differently in the last bit
    (relative 1e-7).

    Examples
    --------
    >>> import numpy as np
    >>> from ptyfast.probe import get_default_probe, normalize_probe
    >>> p = normalize_probe(get_default_probe(64).astype(np.complex64)[..., None],
    ...                     probe_scale=4.0)
    >>> p.shape, p.dtype
    ((64, 64, 1), dtype('complex64'))
    """
    arr = _as_numpy(probe, "probe")
    if arr.ndim == 4:
        if arr.shape[2:] != (1, 1):
            raise ValueError(f"probe must be (N, N, 1, 1) when 4-D, got {arr.shape}")
        logger.info("coercing probe shape to 3d")
        arr = arr[:, :, :, 0]
    if arr.ndim not in (2, 3) or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"probe must be (N, N), (N, N, 1) or (N, N, 1, 1), got {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] != 1:
        raise ValueError(f"probe must be (N, N, 1) when 3-D, got {arr.shape}")
    n = arr.shape[0]
    if N is not None and _check_n(N) != n:
        raise ValueError(f"probe must be (N, N) = ({N}, {N}), got {arr.shape}")
    _check_positive("probe_scale", probe_scale)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating)):
        arr = arr.astype(np.float64)
    real_dtype = np.finfo(arr.dtype).dtype
    mask = get_probe_mask_real(n)[:, :, 0]
    plane = arr if arr.ndim == 2 else arr[:, :, 0]
    tamped = np.where(mask, plane, 0)
    # TensorFlow's complex abs is hypot(re, im); NumPy's complex abs can differ by an ulp.
    magnitude = np.hypot(tamped.real, tamped.imag) if np.iscomplexobj(tamped) else np.abs(tamped)
    mean = real_dtype.type(np.mean(magnitude, dtype=np.float64))
    norm = real_dtype.type(probe_scale) * mean
    if not np.isfinite(norm) or norm <= 0:
        raise ValueError(f"probe is zero (or not finite) inside the mask; norm = {norm}")
    if not np.iscomplexobj(arr):
        return arr / norm
    # Dividing the parts by the real norm (not by a complex norm) matches TensorFlow.
    out = np.empty_like(arr)
    out.real = arr.real / norm
    out.imag = arr.imag / norm
    return out


def set_probe(probe: Any) -> None:
    """Normalise ``probe`` with ``params.cfg`` and store it as ``params.cfg['probe']``.

    Legacy shim: ``N`` and ``probe_scale`` come from :mod:`ptyfast.params`; see
    :func:`normalize_probe` for the arithmetic.

    Parameters
    ----------
    probe : array_like or tensorflow.Tensor, (N, N, 1) or (N, N, 1, 1)
        ``N`` must equal ``params.get('N')``.

    Raises
    ------
    ValueError
        As :func:`normalize_probe`; also for a 2-D probe (the reference requires 3-D or 4-D).
    TypeError
        As :func:`normalize_probe` (e.g. a ragged nested list).
    """
    arr = _as_numpy(probe, "probe")
    if arr.ndim not in (3, 4):
        raise ValueError(f"probe must be (N, N, 1) or (N, N, 1, 1), got {arr.shape}")
    normalized = normalize_probe(arr, probe_scale=params.get("probe_scale"), N=params.get("N"))
    params.set("probe", normalized)


def get_probe(params_: Any = None) -> np.ndarray:
    """The probe stored by :func:`set_probe`.

    Parameters
    ----------
    params_ : module or object with ``get``, optional
        Where to read ``'probe'`` from (the reference passes the ``params`` module);
        ``None`` uses :mod:`ptyfast.params`.

    Returns
    -------
    numpy.ndarray, (N, N, 1)

    Raises
    ------
    KeyError
        If no probe has been set.
    ValueError
        If the stored probe is not 3-D.
    """
    source = params if params_ is None else params_
    probe = source.get("probe")
    if len(probe.shape) != 3:
        raise ValueError(f"stored probe must be (N, N, 1), got {tuple(probe.shape)}")
    return probe


def to_np(probe: Any) -> np.ndarray:
    """The (N, N) NumPy plane of an (N, N, 1) probe."""
    if len(probe.shape) != 3:
        raise ValueError(f"probe must be (N, N, 1), got {tuple(probe.shape)}")
    return np.array(probe[:, :, 0])


def set_default_probe() -> None:
    """Store the normalised default probe of size ``params.get('N')`` (legacy shim)."""
    probe = get_default_probe(params.get("N"), fmt="np").astype(np.complex64)[..., None]
    set_probe(probe)


def set_probe_guess(X_train: Any = None, probe_guess: Any = None) -> np.ndarray:
    """Store a given probe guess, normalised (legacy shim).

    Parameters
    ----------
    X_train : None
        Estimating the probe from diffraction data is not supported (the reference's
        estimate path fails under NumPy 2; see COMPATIBILITY.md).
    probe_guess : array_like, (N, N) or (N, N, 1)
        The probe; converted to complex64.

    Returns
    -------
    numpy.ndarray, (N, N, 1), complex64
        The probe guess before normalisation (as the reference returns it).

    Raises
    ------
    NotImplementedError
        If ``probe_guess`` is None.
    ValueError
        If ``probe_guess`` is not 2-D or 3-D.
    """
    if probe_guess is None:
        raise NotImplementedError(
            "set_probe_guess without probe_guess (estimating the probe from X_train) is not "
            "supported; pass probe_guess"
        )
    guess = _as_numpy(probe_guess, "probe_guess")
    if guess.ndim not in (2, 3):
        raise ValueError("probe_guess must have 2 or 3 dimensions")
    if guess.ndim == 2:
        guess = guess[..., None]
    guess = guess.astype(np.complex64)
    set_probe(guess)
    return guess

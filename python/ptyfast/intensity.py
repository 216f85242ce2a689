"""Photon counts and the intensity scale, as pure functions.

Every function here takes its inputs explicitly; only the legacy default of ``nphotons``
(``None``) falls back to ``ptyfast.params.cfg['nphotons']``, the compatibility shim.

Units. The simulator stores *unit-scale* far-field amplitudes (``RawData.diff3d``, the ``X``
of ``mk_simdata``): ``X = |fftshift(fft2(O·P))| / N`` (see the README's conventions), which
is the photon-count amplitude divided by the intensity scale ``s``. The network is fed the
photon-count amplitude ``X·s``. By Parseval, ``Σ_hw X² = Σ_hw |O·P|²``, so for noise-free
simulated data the mean per-pattern energy ``E`` of ``X`` gives back exactly the scale the
simulation used, ``s = sqrt(nphotons / E)``.

The one reduction rule. ``E`` is the mean over samples **and channels** of the per-pattern
energy ``Σ_hw X²``, accumulated in float64 in a fixed order (bit-reproducible). This is how
``scale_nphotons``, ``normalize_data`` and the simulation's intensity scale average; the
reference's ``compute_dataset_intensity_stats`` summed the channels instead, giving
``988.21/√C`` for gridsize > 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._kernels import _flag, _max_abs, _positive_float, _positive_int, _real_number, _to_numpy

__all__ = [
    "count_photons",
    "scale_nphotons",
    "compute_dataset_intensity_stats",
    "calculate_intensity_scale",
    "SPEC_REFERENCE",
    "MIN_BATCH_MEAN",
]

#: The ``spec_reference`` entry of the statistics dict, as the reference writes it (a path in
#: PtychoPINN's repository, kept for compatibility; ptyfast states the invariant in README
#: "Conventions", Units).
SPEC_REFERENCE = "specs/spec-ptycho-core.md §Normalization Invariants"

#: Statistics with a mean energy at or below this are ignored by ``calculate_intensity_scale``.
MIN_BATCH_MEAN = 1e-12

# Samples per float64 block: bounds the temporary copies for large datasets without changing
# the result (each pattern's energy is reduced on its own contiguous row).
_BLOCK_ELEMENTS = 1 << 22
_F32_MAX = float(np.finfo(np.float32).max)


def _real_array(name: str, x: Any, *, min_ndim: int = 3) -> np.ndarray:
    arr = _to_numpy(name, x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real amplitudes, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must be at least {min_ndim}-D (batch, N, N, ...), got {arr.shape}"
        )
    return arr


def _pattern_energies(arr: np.ndarray) -> np.ndarray:
    """``Σ_hw arr²`` per (sample, trailing index), float64, shape ``(M, R)``.

    Each pattern is copied to a contiguous float64 row and reduced by NumPy's pairwise
    summation, so the result does not depend on the input's layout or on the block size.
    """
    m, h, w = arr.shape[:3]
    rest = int(np.prod(arr.shape[3:], dtype=np.int64))
    out = np.empty((m, rest), dtype=np.float64)
    step = max(1, _BLOCK_ELEMENTS // max(1, h * w * rest))
    for i in range(0, m, step):
        block = arr[i : i + step].reshape(-1, h * w, rest)
        # Always a private copy: it is squared in place.
        rows = np.array(np.swapaxes(block, 1, 2), dtype=np.float64, order="C", copy=True)
        with np.errstate(over="ignore"):
            np.square(rows, out=rows)
            out[i : i + step] = rows.sum(axis=-1)
    return out


def _nonfinite_energy(name: str, arr: np.ndarray) -> ValueError:
    """The error for energies that are not finite: NaN/inf input, or finite amplitudes whose
    squared sums overflow float64 (named as such)."""
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)):
        return ValueError(
            f"{name} has values up to {_max_abs(arr):.4g} whose squared sums overflow float64"
        )
    return ValueError(f"{name} must be finite, got NaN or inf values")


def _mean_energy(name: str, arr: np.ndarray) -> float:
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    energies = _pattern_energies(arr)
    if not np.all(np.isfinite(energies)):
        raise _nonfinite_energy(name, arr)
    return float(np.mean(energies.ravel()))


def _result_dtype(arr: np.ndarray) -> np.dtype:
    return arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)


def simulation_scale(energies: Any, nphotons: float) -> np.float32:
    """The simulation's intensity scale ``s = sqrt(nphotons / mean(energies))`` (float32).

    ``energies`` are the per-pattern illuminated energies ``sum |probe * patch|**2`` (float64,
    reduced here in index order, so ``s`` does not depend on threads or chunking).

    Raises
    ------
    ValueError
        If ``nphotons`` is not positive and finite, every pattern has zero energy, or ``s``
        is beyond float32.
    """
    nph = _positive_float("nphotons", nphotons)
    mean = float(np.mean(energies))
    if not mean > 0:
        raise ValueError(
            "the illuminated object has zero energy at every scan position; "
            "the intensity scale is undefined"
        )
    s = float(np.sqrt(nph / mean))
    if not s <= _F32_MAX:
        raise ValueError(
            f"nphotons = {nph!r} over a mean illuminated energy of {mean:.4g} gives an intensity "
            f"scale s = sqrt(nphotons / energy) = {s:.4g}, beyond float32 (<= {_F32_MAX:.4g})"
        )
    return np.float32(s)


def _default_nphotons(nphotons: Any) -> float:
    if nphotons is None:
        from . import params  # the legacy shim; imported only when asked for its default

        nphotons = params.cfg["nphotons"]
    return _positive_float("nphotons", nphotons)


def count_photons(x: Any) -> np.ndarray:
    """Per-pattern energy ``Σ_hw x²``.

    Parameters
    ----------
    x : array_like or tf.Tensor, (B, N, N) or (B, N, N, C, ...)
        Real diffraction amplitudes (conventions: README). Axes 1 and 2 are summed.

    Returns
    -------
    numpy.ndarray, (B,) or (B, C, ...)
        The sums, accumulated in float64 and returned in ``x``'s floating dtype (float64 for
        integer input), as the reference's dtype follows its input.

    Raises
    ------
    TypeError
        If ``x`` is not a real numeric array.
    ValueError
        If ``x`` has fewer than 3 dimensions, is not finite, or has energies beyond its dtype
        (float32 amplitudes above ~1e19).

    Examples
    --------
    >>> import numpy as np
    >>> count_photons(np.ones((2, 4, 4, 3), np.float32)).tolist()
    [[16.0, 16.0, 16.0], [16.0, 16.0, 16.0]]
    """
    arr = _real_array("x", x)
    e = _pattern_energies(arr).reshape(arr.shape[:1] + arr.shape[3:])
    dtype = _result_dtype(arr)
    if e.size and not np.all(np.isfinite(e)):
        raise _nonfinite_energy("x", arr)
    limit = float(np.finfo(dtype).max)
    if e.size and float(e.max()) > limit:
        raise ValueError(
            f"x has pattern energies up to {float(e.max()):.4g}, beyond its dtype {dtype} "
            f"(max {limit:.4g}); pass float64 amplitudes"
        )
    return e.astype(dtype, copy=False)


def scale_nphotons(x: Any, *, nphotons: float | None = None) -> np.floating:
    """The scale that brings the mean pattern energy of ``x`` to ``nphotons``.

    ``sqrt(nphotons / mean(count_photons(x)))``, the mean running over the batch and every
    channel (the rule of this module's docstring).

    Parameters
    ----------
    x : array_like or tf.Tensor, (B, N, N) or (B, N, N, C)
        Real diffraction amplitudes.
    nphotons : float, optional
        Target mean photon count per pattern. ``None`` reads ``ptyfast.params.cfg['nphotons']``
        (legacy default 1e9).

    Returns
    -------
    numpy.floating
        In ``x``'s floating dtype (float32 for float32 input), like the reference's TF scalar.
        For ``normalize_data`` output (mean energy ``(N/2)²``) this is ``sqrt(nphotons)/(N/2)``,
        988.21 for N=64 and 1e9.

    Raises
    ------
    TypeError
        If ``x`` is not a real numeric array.
    ValueError
        If ``x`` is not at least 3-D, is empty, holds non-finite values or has zero energy,
        ``nphotons`` is not a positive finite number, or the scale does not fit ``x``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full((4, 64, 64, 1), 0.5, np.float32)  # energy (64/2)**2 per pattern
    >>> round(float(scale_nphotons(x, nphotons=1e9)), 2)
    988.21
    """
    n = _default_nphotons(nphotons)
    arr = _real_array("x", x)
    return _scale_of_mean(_mean_energy("x", arr), n, nphotons, _result_dtype(arr))


def _scale_of_mean(e: float, n: float, nphotons: Any, dtype: np.dtype) -> np.floating:
    if e <= 0.0:
        raise ValueError("x has zero energy; the photon scale is undefined")
    value = math.sqrt(n / e)
    if not value <= float(np.finfo(dtype).max):
        raise ValueError(
            f"nphotons = {nphotons if nphotons is not None else n!r} gives a photon scale "
            f"sqrt(nphotons / energy) = {value:.4g}, beyond x's dtype {dtype}"
        )
    return dtype.type(value)


def scale_from_energies(energies: np.ndarray, *, nphotons: float) -> np.float32:
    """:func:`scale_nphotons` of float32 patterns from their per-pattern energies.

    ``energies`` are ``Σ_hw x²`` of each pattern, float64 in NumPy's summation order, as the
    simulation kernel returns them from the pass that writes the patterns
    (``_kernels.simulate(..., return_energies=True)``): the result equals
    ``scale_nphotons(x, nphotons=nphotons)`` bit for bit without a pass over ``x``, and the
    same errors are raised (non-finite patterns, zero energy, a scale beyond float32).
    """
    n = _default_nphotons(nphotons)
    e = np.asarray(energies, np.float64).ravel()
    if e.size == 0:
        raise ValueError("x must not be empty, got 0 patterns")
    if not np.all(np.isfinite(e)):
        raise ValueError("x must be finite, got NaN or inf values")
    return _scale_of_mean(float(np.mean(e)), n, nphotons, np.dtype(np.float32))


def compute_dataset_intensity_stats(
    X: Any, *, intensity_scale: float | None = None, is_normalized: bool = False
) -> dict[str, Any]:
    """Dataset intensity statistics for the dataset-derived intensity scale.

    ``batch_mean_sum_intensity`` is the mean **per-pattern** energy
    ``E = mean over samples and channels of Σ_hw X²`` (float64, fixed order), the same
    channel mean as :func:`scale_nphotons` and the simulation's intensity scale.

    **One rule.** ``E`` is always the energy of the amplitudes a container stores: the
    simulator's amplitude divided by the intensity scale, ``X = A_obs / s`` (diffsim's
    normalisation; ``|F(O·P)|/N`` without noise). ``RawData.diff3d``, a grouped dict's
    ``diffraction`` and ``mk_simdata``'s ``X`` are all in these units, so
    ``sqrt(nphotons / E)`` (:func:`calculate_intensity_scale`) is the ``s`` the simulation
    used: exactly without noise, to ~1/sqrt(total counts) with it.

    * ``is_normalized=False``: raw stored amplitudes (``RawData.diff3d``).
    * ``is_normalized=True`` with ``intensity_scale=s``: data normalised by ``s`` the diffsim
      way, as the guide passes ``mk_simdata``'s ``X``. ``X = A_obs / s`` is already in the
      units above, so ``E`` is used as it is and ``s`` is recorded (``intensity_scale`` in the
      result). The reference instead divides ``E`` by ``s²`` (right only for photon-count data
      ``X·s``, which gives the guide's call ``s²``); multiplying by ``s²`` would give the
      photon count itself and a scale of 1. COMPATIBILITY.md has the details. Photon-count
      amplitudes ``A_obs`` are passed as ``A_obs / s``.

    Energy-normalised data (``X_full`` from ``normalize_data``, mean energy ``(N/2)²``) carries
    no scale information: its statistics make :func:`calculate_intensity_scale` return the
    closed form ``sqrt(nphotons)/(N/2)``. Compute statistics from the raw ``diffraction``.

    Parameters
    ----------
    X : array_like or tf.Tensor, (M, N, N) or (M, N, N, C)
        Real diffraction amplitudes (not intensities).
    intensity_scale : float, optional
        The scale ``X`` was divided by; required when ``is_normalized``, ignored otherwise
        (as in the reference).
    is_normalized : bool, default False
        Whether ``X`` was normalised by ``intensity_scale`` (``X = A_obs / s``).

    Returns
    -------
    dict
        ``batch_mean_sum_intensity`` (float, ``E``), ``n_samples`` (int, ``M``),
        ``spec_reference`` (str, as the reference), ``channel_reduction`` (``'mean'``) and,
        with ``is_normalized``, ``intensity_scale`` (float, the recorded ``s``).

    Raises
    ------
    TypeError
        If ``X`` is not a real numeric array.
    ValueError
        If ``X`` is not 3-D or 4-D, is empty or not finite; if ``is_normalized`` without
        ``intensity_scale``, or ``intensity_scale`` is not a positive finite number.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.full((10, 8, 8, 4), 0.5, np.float32)
    >>> compute_dataset_intensity_stats(X)["batch_mean_sum_intensity"]
    16.0
    >>> stats = compute_dataset_intensity_stats(X, intensity_scale=2.0, is_normalized=True)
    >>> stats["batch_mean_sum_intensity"], stats["intensity_scale"]
    (16.0, 2.0)
    """
    arr = _real_array("X", X, min_ndim=0)
    if arr.ndim not in (3, 4):
        raise ValueError(f"X must be (M, N, N) or (M, N, N, C), got shape {arr.shape}")
    scale = None
    if _flag("is_normalized", is_normalized):
        if intensity_scale is None:
            raise ValueError("intensity_scale must be provided when is_normalized=True")
        scale = _positive_float("intensity_scale", intensity_scale)
    stats: dict[str, Any] = {
        "batch_mean_sum_intensity": _mean_energy("X", arr),
        "n_samples": int(arr.shape[0]),
        "spec_reference": SPEC_REFERENCE,
        "channel_reduction": "mean",
    }
    if scale is not None:
        stats["intensity_scale"] = scale
    return stats


def calculate_intensity_scale(
    container_or_stats: Any, *, nphotons: float | None = None, N: int | None = None
) -> float:
    """The intensity scale ``s``: dataset-derived when statistics exist, else closed form.

    With statistics whose ``batch_mean_sum_intensity`` ``E`` exceeds ``1e-12`` (a
    container's ``dataset_intensity_stats`` or a dict from
    :func:`compute_dataset_intensity_stats`), returns ``sqrt(nphotons / E)``; for noise-free
    simulated data this is exactly the ``s`` the simulation used. Otherwise returns the closed
    form ``sqrt(nphotons) / (N/2)`` (988.21 for N=64 and 1e9), which is also what statistics of
    energy-normalised ``X_full`` give.

    Parameters
    ----------
    container_or_stats : PtychoDataContainer, dict or None
        A container (its ``dataset_intensity_stats`` and ``X`` are read) or a statistics dict.
    nphotons : float, optional
        Mean photon count per pattern; ``None`` reads ``ptyfast.params.cfg['nphotons']``.
    N : int, optional
        Patch size for the closed form; default: ``X.shape[1]`` of the container.

    Returns
    -------
    float
        Statistics without ``batch_mean_sum_intensity`` (or ``None``), or with a mean of at
        most ``1e-12``, give the closed form (the reference's fallback).

    Raises
    ------
    TypeError
        If ``container_or_stats`` is neither a mapping, a container nor None; the mean energy
        is not a real number; ``N`` is not an integer (``2.5``, ``True``, ``"64"``);
        ``nphotons`` is not a real number (``"1e6"``).
    ValueError
        If the mean energy is NaN, infinite or negative (the reference silently returned 0 or
        the closed form); the closed form is needed and ``N`` is unknown or below 1;
        ``nphotons`` is not a positive finite number.

    Examples
    --------
    >>> round(calculate_intensity_scale(None, nphotons=1e9, N=64), 4)
    988.2118
    >>> calculate_intensity_scale({"batch_mean_sum_intensity": 4.0}, nphotons=100.0)
    5.0
    """
    n_ph = _default_nphotons(nphotons)
    if container_or_stats is None or isinstance(container_or_stats, Mapping):
        stats = container_or_stats
        x = None
    elif hasattr(container_or_stats, "dataset_intensity_stats"):
        stats = container_or_stats.dataset_intensity_stats
        x = getattr(container_or_stats, "_X_np", None)
    else:
        raise TypeError(
            "container_or_stats must be a PtychoDataContainer, a statistics dict or None, "
            f"got {type(container_or_stats).__name__}"
        )
    if stats is not None:
        if not isinstance(stats, Mapping):
            raise TypeError(
                "dataset_intensity_stats must be a dict from compute_dataset_intensity_stats, "
                f"got {type(stats).__name__}"
            )
        raw = stats.get("batch_mean_sum_intensity")
        if raw is not None:
            e = _real_number("batch_mean_sum_intensity", raw, "a finite mean pattern energy >= 0")
            if e < 0:
                raise ValueError(
                    f"batch_mean_sum_intensity must be a finite mean pattern energy >= 0, got {e}"
                )
            if e > MIN_BATCH_MEAN:
                return math.sqrt(n_ph / e)
    if N is None:
        if x is None or np.ndim(x) < 2:
            raise ValueError(
                "N is required for the closed-form intensity scale (no statistics and no data "
                "to read it from), got None"
            )
        N = int(np.shape(x)[1])
    n = _positive_int("N", N)
    return math.sqrt(n_ph) / (n / 2.0)

"""Nongrid simulation: random scan positions, one diffraction pattern per position.

The drop-in for ``ptycho.nongrid_simulation``. :func:`generate_simulated_data` draws random
positions exactly as the reference does (NumPy's legacy ``RandomState`` seeded with 42 by
default, ``x`` drawn before ``y``) but from a private generator, reads and changes no global
state, and runs the physics in the Rust kernels.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _kernels
from .raw_data import RawData

__all__ = [
    "generate_simulated_data",
    "load_probe_object",
    "random_positions",
    "simulate_from_npz",
]


def _n_positions(config: Any) -> int:
    n = getattr(config, "n_groups", None)
    if n is None:
        n = getattr(config, "n_images", None)
    if n is None:
        raise ValueError("config must set n_groups or n_images, got both None")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"config.n_groups must be a positive integer, got {n!r}")
    return int(n)


def random_positions(
    n: int, height: int, width: int, buffer: float, seed: Any = 42
) -> tuple[np.ndarray, np.ndarray, float]:
    """Uniform random scan positions as the reference draws them.

    ``buffer`` is clamped to ``min(height, width)/2 - 1``; then ``x`` is drawn first, uniform in
    ``[buffer, width - buffer)``, then ``y`` in ``[buffer, height - buffer)``, from
    ``numpy.random.RandomState(seed)`` (bit-identical to the reference after
    ``np.random.seed(seed)``; NumPy's global state is not touched). ``seed`` may also be a
    ``RandomState`` (used as is), a ``Generator`` (a 32-bit seed is drawn from it) or ``None``
    (fresh entropy). Returns ``(x, y, buffer_used)``.
    """
    if not np.isfinite(buffer) or buffer < 0:
        raise ValueError(f"buffer must be a finite number >= 0, got {buffer}")
    buf = min(float(buffer), min(height, width) / 2 - 1)
    if buf < 0 or width - 2 * buf <= 0 or height - 2 * buf <= 0:
        raise ValueError(
            f"objectGuess of shape ({height}, {width}) leaves no room for scan positions "
            f"with buffer {buffer}"
        )
    rs = _kernels.legacy_random_state(seed)
    x = rs.uniform(buf, width - buf, n)
    y = rs.uniform(buf, height - buf, n)
    return x, y, buf


def generate_simulated_data(
    config: Any,
    objectGuess: Any,
    probeGuess: Any,
    buffer: float,
    return_patches: bool = True,
    *,
    seed: Any = 42,
    poisson: bool = True,
) -> RawData | tuple[RawData, np.ndarray]:
    """Simulate ``config.n_groups`` diffraction patterns at random positions.

    Parameters
    ----------
    config : TrainingConfig
        Uses ``n_groups`` (falling back to ``n_images``), ``nphotons`` and ``model.N``.
    objectGuess : array_like, (H, W)
        The object (complex; a real array is taken as zero phase).
    probeGuess : array_like, (N, N)
        The probe, real or complex; ``N`` must equal ``config.model.N``.
    buffer : float
        Minimum distance of positions from the object edges, in pixels (clamped to
        ``min(H, W)/2 - 1`` as the reference does).
    return_patches : bool
        Return ``(raw, raw.Y)`` (the reference's default) or only ``raw``.
    seed : int, numpy.random.RandomState, numpy.random.Generator or None
        Seeds the positions (default 42: the reference's positions) and the Poisson noise.
    poisson : bool
        Draw Poisson noise (default) or return noise-free amplitudes.

    Returns
    -------
    RawData or (RawData, numpy.ndarray)
        ``diff3d`` float32 ``(n, N, N)`` (amplitude divided by the intensity scale),
        ``xcoords``/``ycoords`` float64, ``Y`` complex64 ``(n, N, N, 1)`` pre-probe patches,
        ``intensity_scale`` the scale used.

    Raises
    ------
    ValueError
        Object not 2-D, probe not ``(N, N)`` with ``N = config.model.N``, no room for
        positions, non-positive ``nphotons`` or counts, non-finite inputs.

    Examples
    --------
    >>> from ptyfast.config import TrainingConfig, ModelConfig
    >>> from ptyfast.probe import get_default_probe
    >>> from ptyfast.diffsim import sim_object_image
    >>> config = TrainingConfig(model=ModelConfig(N=32), n_groups=100, nphotons=1e6)
    >>> raw, Y = generate_simulated_data(
    ...     config, sim_object_image(128, data_source='lines', seed=1),
    ...     get_default_probe(32), buffer=20.0)
    >>> raw.diff3d.shape, Y.shape
    ((100, 32, 32), (100, 32, 32, 1))
    """
    n = _n_positions(config)
    N = int(config.model.N)
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape != (N, N):
        raise ValueError(
            f"probeGuess must be (N, N) = ({N}, {N}) (config.model.N), got {probe.shape}"
        )
    nphotons = float(config.nphotons)
    if not np.isfinite(nphotons) or nphotons <= 0:
        raise ValueError(f"config.nphotons must be a positive finite number, got {config.nphotons}")
    height, width = obj.shape
    if not isinstance(seed, np.random.RandomState):
        seed = _kernels.legacy_seed(seed)
    rs = _kernels.legacy_random_state(seed)
    x, y, _ = random_positions(n, height, width, buffer, rs)
    noise_seed = int(seed) if not isinstance(seed, np.random.RandomState) else rs.randint(0, 2**31)
    raw = RawData.from_simulation(
        x,
        y,
        probe,
        obj,
        np.zeros(n, dtype=np.int64),
        nphotons=nphotons,
        poisson=poisson,
        seed=noise_seed,
    )
    raw.metadata.update({"seed": noise_seed, "buffer": float(buffer)})
    if return_patches:
        return raw, raw.Y
    return raw


def load_probe_object(file_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Load ``objectGuess`` and ``probeGuess`` (both 2-D, complex) from an NPZ file.

    Raises
    ------
    ValueError
        If a key is missing or an array is not 2-D complex.
    """
    with np.load(file_path, allow_pickle=False) as data:
        missing = [k for k in ("objectGuess", "probeGuess") if k not in data.files]
        if missing:
            raise ValueError(
                f"{os.fspath(file_path)} must contain 'objectGuess' and 'probeGuess'; "
                f"missing {missing}"
            )
        obj = data["objectGuess"]
        probe = data["probeGuess"]
    for name, a in (("objectGuess", obj), ("probeGuess", probe)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
        if not np.iscomplexobj(a):
            raise ValueError(f"{name} must be complex-valued, got dtype {a.dtype}")
    return obj, probe


def simulate_from_npz(
    config: Any,
    file_path: str | os.PathLike[str],
    buffer: float | None = None,
    return_patches: bool = True,
    *,
    seed: Any = 42,
    poisson: bool = True,
) -> RawData | tuple[RawData, np.ndarray]:
    """Load object and probe from ``file_path`` and run :func:`generate_simulated_data`.

    ``buffer=None`` uses ``0.35 * min(objectGuess.shape)`` as the reference does.
    """
    obj, probe = load_probe_object(file_path)
    if buffer is None:
        buffer = min(obj.shape) * 0.35
    return generate_simulated_data(
        config, obj, probe, buffer, return_patches=return_patches, seed=seed, poisson=poisson
    )

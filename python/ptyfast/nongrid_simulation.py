"""Nongrid simulation: random scan positions, one diffraction pattern per position.

The drop-in for ``ptycho.nongrid_simulation``. :func:`generate_simulated_data` draws random
positions exactly as the reference does (NumPy's legacy ``RandomState`` seeded with 42 by
default, ``x`` drawn before ``y``) but from a private generator, reads and changes no global
state, and runs the physics in the Rust kernels. Unlike the reference, which reseeds NumPy
with 42 for everything, the noise comes from fresh entropy unless a ``seed`` is given, and
every seed used is recorded in ``RawData.metadata``.
"""

from __future__ import annotations

import os
from typing import Any, Literal, overload

import numpy as np

from . import _kernels
from ._npz import NpzReader
from .raw_data import RawData, _check_input_file

__all__ = [
    "REFERENCE_POSITION_SEED",
    "generate_simulated_data",
    "load_probe_object",
    "random_positions",
    "simulate_from_npz",
]


def _n_positions(config: Any) -> int:
    n = getattr(config, "n_groups", None)
    name = "config.n_groups"
    if n is None:
        n = getattr(config, "n_images", None)
        name = "config.n_images"
    if n is None:
        raise ValueError("config must set n_groups or n_images, got both None")
    return _kernels._positive_int(name, n)


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

    Raises
    ------
    ValueError
        ``n``, ``height`` or ``width`` below 1, ``buffer`` negative or not finite, no room left
        for positions, or ``n`` positions too many for the available memory.
    TypeError
        Non-integer counts, a non-numeric ``buffer``, a seed of the wrong type.
    """
    n = _kernels._positive_int("n", n)
    height = _kernels._positive_int("height", height)
    width = _kernels._positive_int("width", width)
    b = _kernels._real_number("buffer", buffer, "a finite number >= 0")
    if b < 0:
        raise ValueError(f"buffer must be a finite number >= 0, got {b}")
    buf = min(b, min(height, width) / 2 - 1)
    if buf < 0 or width - 2 * buf <= 0 or height - 2 * buf <= 0:
        raise ValueError(
            f"objectGuess of shape ({height}, {width}) leaves no room for scan positions "
            f"with buffer {buffer}"
        )
    _kernels.require_memory(f"random_positions: n={n} positions (x, y float64)", 16 * n)
    rs = _kernels.legacy_random_state(seed)
    x = rs.uniform(buf, width - buf, n)
    y = rs.uniform(buf, height - buf, n)
    return x, y, buf


#: Seed of the reference's scan positions (``generate_simulated_data`` calls
#: ``np.random.seed(42)``); used when no ``seed`` is given.
REFERENCE_POSITION_SEED = 42


@overload
def generate_simulated_data(
    config: Any,
    objectGuess: Any,
    probeGuess: Any,
    buffer: float,
    return_patches: Literal[True] = ...,
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> tuple[RawData, np.ndarray]: ...


@overload
def generate_simulated_data(
    config: Any,
    objectGuess: Any,
    probeGuess: Any,
    buffer: float,
    return_patches: Literal[False],
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> RawData: ...


@overload
def generate_simulated_data(
    config: Any,
    objectGuess: Any,
    probeGuess: Any,
    buffer: float,
    return_patches: bool = ...,
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> RawData | tuple[RawData, np.ndarray]: ...


def generate_simulated_data(
    config: Any,
    objectGuess: Any,
    probeGuess: Any,
    buffer: float,
    return_patches: bool = True,
    *,
    seed: Any = None,
    poisson: bool = True,
    noise_seed: Any = None,
    out: RawData | None = None,
) -> RawData | tuple[RawData, np.ndarray]:
    """Simulate ``config.n_groups`` diffraction patterns at random positions.

    Parameters
    ----------
    config : TrainingConfig
        Uses ``n_groups`` (falling back to ``n_images``), ``nphotons``, ``model.N`` and
        ``model.gridsize`` (recorded only: simulation is per position).
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
        ``None`` (default): the reference's positions (``RandomState(42)``) and Poisson noise
        from fresh OS entropy, so two calls differ in their noise as the reference's do. An
        int (or a ``Generator``, which gives one 32-bit draw) seeds both the positions and the
        noise (``ptyfast simulate --seed`` gives the same dataset); a ``RandomState`` draws the
        positions and then the noise seed. Every seed used is recorded in ``raw.metadata``.
    poisson : bool
        Draw Poisson noise (default) or return noise-free amplitudes.
    noise_seed : int, numpy.random.Generator or None
        Seed of the noise alone (``[0, 2**64)``), overriding the one ``seed`` implies: with
        ``seed=raw.metadata['position_seed']`` and ``noise_seed=raw.metadata['seed']`` any
        dataset made without a ``RandomState`` is reproduced bit for bit.
    out : RawData, optional
        An earlier result of the same size whose ``diff3d`` and ``Y`` buffers are reused
        (overwritten), for callers that simulate repeatedly (``RawData.from_simulation``).

    Returns
    -------
    RawData or (RawData, numpy.ndarray)
        ``diff3d`` float32 ``(n, N, N)`` (amplitude divided by the intensity scale),
        ``xcoords``/``ycoords`` float64, ``Y`` complex64 ``(n, N, N, 1)`` pre-probe patches,
        ``intensity_scale`` the scale used, ``metadata`` with ``nphotons``,
        ``intensity_scale``, ``N``, ``gridsize``, ``buffer``, ``seed`` (the noise seed used;
        ``None`` without noise), ``position_seed`` (``None`` for a ``RandomState``) and
        ``poisson``.

    Raises
    ------
    ValueError
        Before anything is simulated: object not 2-D, probe not ``(N, N)`` with
        ``N = config.model.N``, no room for positions, ``nphotons`` or counts not positive,
        non-finite inputs, outputs larger than the available memory (e.g. ``n_groups=10**9``:
        the bytes needed and available are given), and ``nphotons`` so large that the scaled
        far field would overflow float32 (named, with the largest value that fits).
    TypeError
        Arguments of the wrong type (``nphotons="1e6"``, ``n_groups=2.5``, a seed string).

    Examples
    --------
    >>> from ptyfast.config import TrainingConfig, ModelConfig
    >>> from ptyfast.probe import get_default_probe
    >>> from ptyfast.diffsim import sim_object_image
    >>> config = TrainingConfig(model=ModelConfig(N=32), n_groups=100, nphotons=1e6)
    >>> raw, Y = generate_simulated_data(
    ...     config, sim_object_image(128, data_source='lines', seed=1),
    ...     get_default_probe(32), buffer=20.0)
    >>> raw.diff3d.shape, Y.shape, raw.metadata["position_seed"]
    ((100, 32, 32), (100, 32, 32, 1), 42)
    """
    n = _n_positions(config)
    N = _kernels._positive_int("config.model.N", config.model.N, minimum=2)
    nphotons = _kernels._positive_float("config.nphotons", config.nphotons)
    return_patches = _kernels._flag("return_patches", return_patches)
    poisson = _kernels._flag("poisson", poisson)
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape != (N, N):
        raise ValueError(
            f"probeGuess must be (N, N) = ({N}, {N}) (config.model.N), got {probe.shape}"
        )
    _kernels.require_memory(
        f"generate_simulated_data: n_groups={n} patterns of N={N} (diff3d float32, Y complex64)",
        n * (N * N * 12 + 64),
    )
    height, width = obj.shape
    given = None if noise_seed is None else _kernels.resolve_seed(noise_seed, "noise_seed")
    position_seed: int | None
    if seed is None:
        position_seed = REFERENCE_POSITION_SEED
        rs = _kernels.legacy_random_state(position_seed)
    elif isinstance(seed, np.random.RandomState):
        position_seed, rs = None, seed
    else:
        position_seed = _kernels.legacy_seed(seed)
        rs = _kernels.legacy_random_state(position_seed)
    x, y, _ = random_positions(n, height, width, buffer, rs)
    if given is not None:
        noise = given
    elif seed is None:
        noise = _kernels.resolve_seed(None)  # fresh entropy, recorded below
    elif position_seed is None:
        noise = int(rs.randint(0, 2**31))  # the RandomState's next draw, after the positions
    else:
        noise = position_seed  # one seed for both: the CLI's --seed gives the same data
    raw = RawData.from_simulation(
        x,
        y,
        probe,
        obj,
        np.zeros(n, dtype=np.int64),
        nphotons=nphotons,
        poisson=poisson,
        seed=noise,
        out=out,
    )
    gridsize = getattr(getattr(config, "model", None), "gridsize", None)
    raw.metadata.update(
        {
            "seed": noise if poisson else None,
            "position_seed": position_seed,
            "buffer": float(buffer),
            "N": N,
            **({"gridsize": int(gridsize)} if isinstance(gridsize, int | np.integer) else {}),
        }
    )
    if return_patches:
        assert raw.Y is not None
        return raw, raw.Y
    return raw


def load_probe_object(file_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Load ``objectGuess`` and ``probeGuess`` (both 2-D, complex) from an NPZ file.

    Read strictly and with bounded memory (:class:`ptyfast._npz.NpzReader`): only the two
    members are read, pickles never.

    Raises
    ------
    ValueError
        If ``file_path`` is empty or a directory, the file is not a readable ``.npz``, a key
        is missing, pickled or unreadable, or an array is not 2-D complex, not finite, or too
        large for the available memory.
    FileNotFoundError
        If no file exists at ``file_path`` (the message names the argument and the path).
    OSError
        If the file cannot be opened otherwise.
    """
    path = _check_input_file("file_path", file_path)
    with NpzReader(path) as r:
        missing = [k for k in ("objectGuess", "probeGuess") if k not in r]
        if missing:
            raise ValueError(
                f"{path} must contain 'objectGuess' and 'probeGuess'; missing {missing}"
            )
        for key in ("objectGuess", "probeGuess"):
            h = r.header(key)
            if h.dtype.hasobject:
                raise ValueError(f"{path}: {key} is a pickled object array (never unpickled)")
            if len(h.shape) != 2:
                raise ValueError(f"{path}: {key} must be 2-D, got shape {h.shape}")
            if h.dtype.kind != "c":
                raise ValueError(f"{path}: {key} must be complex-valued, got dtype {h.dtype}")
        obj = r.read("objectGuess")
        probe = r.read("probeGuess")
    for name, a in (("objectGuess", obj), ("probeGuess", probe)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: {name} must be finite, got NaN or inf values")
    return obj, probe


@overload
def simulate_from_npz(
    config: Any,
    file_path: str | os.PathLike[str],
    buffer: float | None = ...,
    return_patches: Literal[True] = ...,
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> tuple[RawData, np.ndarray]: ...


@overload
def simulate_from_npz(
    config: Any,
    file_path: str | os.PathLike[str],
    buffer: float | None,
    return_patches: Literal[False],
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> RawData: ...


@overload
def simulate_from_npz(
    config: Any,
    file_path: str | os.PathLike[str],
    buffer: float | None = ...,
    return_patches: bool = ...,
    *,
    seed: Any = ...,
    poisson: bool = ...,
    noise_seed: Any = ...,
    out: RawData | None = ...,
) -> RawData | tuple[RawData, np.ndarray]: ...


def simulate_from_npz(
    config: Any,
    file_path: str | os.PathLike[str],
    buffer: float | None = None,
    return_patches: bool = True,
    *,
    seed: Any = None,
    poisson: bool = True,
    noise_seed: Any = None,
) -> RawData | tuple[RawData, np.ndarray]:
    """Load object and probe from ``file_path`` and run :func:`generate_simulated_data`.

    ``buffer=None`` uses ``0.35 * min(objectGuess.shape)`` as the reference does; ``seed`` and
    ``noise_seed`` as in :func:`generate_simulated_data`.
    """
    obj, probe = load_probe_object(file_path)
    if buffer is None:
        buffer = min(obj.shape) * 0.35
    return generate_simulated_data(
        config,
        obj,
        probe,
        buffer,
        return_patches=return_patches,
        seed=seed,
        poisson=poisson,
        noise_seed=noise_seed,
    )

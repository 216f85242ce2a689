"""Type stubs of the compiled kernels. Call them through ``ptyfast._kernels``, which validates."""

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "PtyfastError",
    "__version__",
    "interpreter_exiting",
    "extract_patches",
    "diffract",
    "poisson_amplitudes",
    "poisson_counts",
    "illuminated_energy",
    "simulate",
    "simulate_into",
    "acquire",
    "detect",
    "knn",
    "sample_then_group",
    "oversample_groups",
    "gather_groups",
    "num_threads",
    "gather_groups_scaled",
    "pattern_energies",
    "gather_groups_normalized",
    "gather_groups_complex",
    "legacy_permutation",
    "legacy_choice",
    "legacy_uniform",
    "legacy_raw",
    "paint_leaves",
    "extract_grid_patches",
    "extract_grid_patches_into",
    "illuminate_groups",
    "channel_energies",
    "grid_maxima",
    "grid_energies",
    "simulate_grid",
    "simd_level",
]

__version__: str

from ._errors import PtyfastError as PtyfastError

def extract_patches(
    object: npt.NDArray[np.complex64], positions: npt.NDArray[np.float64], n: int
) -> npt.NDArray[np.complex64]: ...
def diffract(
    patches: npt.NDArray[np.complex64], probe: npt.NDArray[np.complex64], scale: float
) -> npt.NDArray[np.float32]: ...
def poisson_amplitudes(
    amplitudes: npt.NDArray[np.float32], seed: int, first_index: int, version: str = "v1"
) -> npt.NDArray[np.float32]: ...
def poisson_counts(
    rates: npt.NDArray[np.float64], seed: int, stream: int, version: str = "v1"
) -> npt.NDArray[np.float64]: ...
def illuminated_energy(
    object: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    probe: npt.NDArray[np.complex64],
) -> npt.NDArray[np.float64]: ...
def simulate(
    object: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    probe: npt.NDArray[np.complex64],
    scale: float,
    seed: int | None,
    first_index: int,
    divide_by_scale: bool,
    return_patches: bool,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.complex64] | None]: ...
def simulate_into(
    object: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    probe: npt.NDArray[np.complex64],
    scale: float,
    seed: int | None,
    first_index: int,
    divide_by_scale: bool,
    amplitudes: npt.NDArray[np.float32],
    patches: npt.NDArray[np.complex64] | None,
    energies: npt.NDArray[np.float64] | None,
) -> None: ...

_Readings = (
    npt.NDArray[np.float32]
    | npt.NDArray[np.float64]
    | npt.NDArray[np.uint8]
    | npt.NDArray[np.uint16]
    | npt.NDArray[np.uint32]
)

def acquire(
    object: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    modes: npt.NDArray[np.complex64],
    scale: float,
    seed: int,
    first_index: int,
    detector: dict[str, Any],
    pixels: npt.NDArray[np.uint8] | None,
    readings: _Readings,
    patches: npt.NDArray[np.complex64] | None,
    stats: npt.NDArray[np.float64] | None,
) -> None: ...
def detect(
    expected: npt.NDArray[np.float64],
    seed: int,
    first_index: int,
    detector: dict[str, Any],
    pixels: npt.NDArray[np.uint8] | None,
    readings: _Readings,
    stats: npt.NDArray[np.float64] | None,
) -> None: ...
def knn(
    points: npt.NDArray[np.float64], queries: npt.NDArray[np.float64], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
def sample_then_group(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    nsamples: int,
    k: int,
    c: int,
    seed: int,
    seed_indices: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int64]: ...
def oversample_groups(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    nsamples: int,
    k: int,
    c: int,
    seed: int,
    seed_indices: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int64]: ...
def gather_groups(
    diff3d: npt.NDArray[np.float32], groups: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]: ...
def num_threads() -> int: ...
def gather_groups_scaled(
    diff3d: npt.NDArray[np.float32], groups: npt.NDArray[np.int64], scale: float
) -> npt.NDArray[np.float32]: ...
def gather_groups_normalized(
    diff3d: npt.NDArray[np.float32], groups: npt.NDArray[np.int64], scale: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def gather_groups_complex(
    patches: npt.NDArray[np.complex64], groups: npt.NDArray[np.int64]
) -> npt.NDArray[np.complex64]: ...
def pattern_energies(diff3d: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]: ...
def legacy_permutation(seed: int, n: int) -> npt.NDArray[np.int64]: ...
def legacy_choice(seed: int, n: int, size: int, replace: bool) -> npt.NDArray[np.int64]: ...
def legacy_uniform(seed: int, size: int) -> npt.NDArray[np.float64]: ...
def legacy_raw(seed: int, size: int) -> npt.NDArray[np.uint32]: ...
def interpreter_exiting() -> None: ...
def paint_leaves(
    out: npt.NDArray[np.float64],
    uncovered: npt.NDArray[np.bool_],
    cx: npt.NDArray[np.float64],
    cy: npt.NDArray[np.float64],
    radii: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    remaining: int,
) -> tuple[int, int | None]: ...
def extract_grid_patches(
    image: npt.NDArray[np.complex64], positions: npt.NDArray[np.float64], n: int, c: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def extract_grid_patches_into(
    image: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    out_re: npt.NDArray[np.float32],
    out_im: npt.NDArray[np.float32] | None,
) -> None: ...
def illuminate_groups(
    amplitude: npt.NDArray[np.float32],
    phase: npt.NDArray[np.float32] | None,
    probe: npt.NDArray[np.complex64],
    scale: float,
    seed: int | None,
    first_index: int,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def channel_energies(
    amplitude: npt.NDArray[np.float32], probe: npt.NDArray[np.complex64]
) -> npt.NDArray[np.float64]: ...
def grid_maxima(
    images: npt.NDArray[np.complex64], positions: npt.NDArray[np.float64], n: int, c: int
) -> npt.NDArray[np.float32]: ...
def grid_energies(
    images: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    n: int,
    c: int,
    probe: npt.NDArray[np.complex64],
    divisor: float,
) -> npt.NDArray[np.float64]: ...
def simulate_grid(
    images: npt.NDArray[np.complex64],
    positions: npt.NDArray[np.float64],
    probe: npt.NDArray[np.complex64],
    divisor: float,
    scale: float,
    seed: int | None,
    first_index: int,
    x: npt.NDArray[np.float32],
    amplitude: npt.NDArray[np.float32],
    phase: npt.NDArray[np.float32] | None = None,
    pre_amplitude: npt.NDArray[np.float32] | None = None,
    pre_phase: npt.NDArray[np.float32] | None = None,
) -> None: ...
def simd_level() -> str: ...

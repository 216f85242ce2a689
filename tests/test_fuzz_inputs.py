"""Fuzzing every public entry point of the PtychoPINN-compatible layer and of ``_kernels``.

Each target starts from a small valid call; hypothesis then replaces some arguments by hostile
values (wrong types, strings, objects, NaN/inf/huge/negative numbers, other dtypes, other
shapes, empty arrays, poisoned elements) and checks the three promises of issue 9:

* the only exceptions are ``ValueError`` and ``TypeError`` (``PtyfastError`` is a
  ``ValueError``): no crash, panic, ``ZeroDivisionError``, ``KeyError``, ``OverflowError``, ...;
* inputs are never modified;
* with finite inputs, every floating output is finite (no silent NaN or inf).

Integers are drawn from values that either fit easily or exceed any machine's memory, so no
example allocates much; examples are derandomized (the same every run, never flaky) and few
per target, which bounds the whole module to about a minute on the 2-core CI machines.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptyfast import _kernels, diffsim, grouping, intensity, loader, nongrid_simulation
from ptyfast.datagen.objects import sim_object_image
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData, simulate_raw

FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_R = np.random.default_rng(7)

# --------------------------------------------------------------------------- hostile values

# Integers that fit easily, or that no machine can hold (2**40 elements and beyond).
INTS = [-(2**63), -7, -1, 0, 1, 2, 3, 5, 2**40, 2**63 - 1, 2**63, 2**64, 10**30]
FLOATS = [
    np.nan,
    np.inf,
    -np.inf,
    -1.0,
    -0.0,
    0.0,
    5e-324,
    1e-300,
    0.5,
    2.5,
    1e38,
    3.5e38,
    1e300,
    1.7e308,
]
DTYPES = [
    np.bool_,
    np.int8,
    np.uint16,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    ">f8",
    np.complex64,
    np.complex128,
    object,
    "U3",
]
POISON = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e38, -3e38, 1e300, -1.7e308, 1e-310]


class _Odd:
    """An arbitrary object with no numeric meaning."""


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(INTS),
        st.sampled_from(FLOATS),
        st.sampled_from(
            [None, True, False, "64", "1e6", "", b"1", 1 + 2j, [1, 2], (1,), {"a": 1}, _Odd()]
        ),
        st.sampled_from([np.int64(3), np.float32(np.nan), np.uint8(255), np.array(2.0)]),
    )


def random_arrays() -> st.SearchStrategy[np.ndarray]:
    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        ndim = draw(st.integers(0, 4))
        shape = tuple(draw(st.integers(0, 4)) for _ in range(ndim))
        dtype = draw(st.sampled_from(DTYPES))
        base = _R.normal(size=shape) * draw(st.sampled_from([1.0, 1e-30, 1e30]))
        if dtype == "U3":
            return base.astype("U3")
        with np.errstate(all="ignore"):  # 1e30 overflows the small dtypes on purpose
            return np.asarray(base).astype(dtype)

    return build()


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` itself, or a hostile variant of it."""
    how = draw(st.sampled_from(["scalar", "array", "dtype", "shape", "poison", "zeros", "empty"]))
    arr = value if isinstance(value, np.ndarray) else None
    if how == "scalar" or (arr is None and how != "array"):
        return draw(scalars())
    if how == "array" or arr is None:
        return draw(random_arrays())
    if how == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
        with np.errstate(all="ignore"):
            return arr.astype(dtype) if dtype != "U3" else arr.astype("U3")
    if how == "shape":
        op = draw(st.sampled_from(["ravel", "newaxis", "drop", "transpose", "cut", "scalar"]))
        if op == "ravel":
            return arr.ravel()
        if op == "newaxis":
            return arr[None]
        if op == "drop" and arr.ndim:
            return arr[..., 0]
        if op == "transpose":
            return arr.T
        if op == "cut" and arr.ndim and arr.shape[-1] > 1:
            return arr[..., :-1]
        return arr.reshape(-1)[:1].reshape(()) if arr.size else arr
    if how == "poison" and arr.size:
        out = arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64, copy=True)
        out.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(POISON))
        return out.astype(arr.dtype) if draw(st.booleans()) and arr.dtype.kind in "fc" else out
    if how == "zeros":
        return np.zeros_like(arr)
    return arr[:0] if arr.ndim else arr


# --------------------------------------------------------------------------- checks


def _walk_arrays(obj: Any, seen: set[int] | None = None) -> list[np.ndarray]:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, np.generic | float | complex):
        return [np.asarray(obj)]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _walk_arrays(v, seen)]
    if isinstance(obj, tuple | list):
        return [a for v in obj for a in _walk_arrays(v, seen)]
    if isinstance(obj, RawData | loader.PtychoDataContainer):
        return [a for v in vars(obj).values() for a in _walk_arrays(v, seen)]
    return []


def _all_finite(obj: Any) -> bool:
    for a in _walk_arrays(obj):
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            return False
    return True


def _snapshot(obj: Any) -> Any:
    """A deep copy that records arrays by value (dtype, shape, bytes)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return ("obj", obj.shape, [id(v) for v in obj.ravel()])
        return (obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(_snapshot(v) for v in obj)
    if isinstance(obj, RawData):
        return {k: _snapshot(v) for k, v in vars(obj).items()}
    if obj is None or isinstance(obj, int | float | complex | str | bytes | np.generic):
        return ("value", type(obj), repr(obj))
    return ("identity", id(obj))  # other objects: the same object must come back


def check_call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    before = _snapshot(kwargs)
    finite_inputs = _all_finite(kwargs) and all(
        not isinstance(v, float) or np.isfinite(v) for v in kwargs.values()
    )
    try:
        out = fn(**kwargs)
    except (ValueError, TypeError):
        out = None
    else:
        if finite_inputs:
            assert _all_finite(out), f"non-finite output from {fn.__name__}"
    assert _snapshot(kwargs) == before, f"{fn.__name__} modified its input"


# --------------------------------------------------------------------------- targets


def _paint_fresh(out: Any, uncovered: Any, **kw: Any) -> Any:
    """``_kernels.paint_leaves`` paints its first two arguments by design: on copies here
    (copies of arrays keep their dtype, shape and values), so the rest is checked as input."""

    def fresh(a: Any) -> Any:
        return a.copy() if isinstance(a, np.ndarray) else a

    return _kernels.paint_leaves(fresh(out), fresh(uncovered), **kw)


def c64(*shape: int) -> np.ndarray:
    return (_R.random(shape) + 0.5 + 0.2j * _R.random(shape)).astype(np.complex64)


def f32(*shape: int) -> np.ndarray:
    return (_R.random(shape) + 0.1).astype(np.float32)


def xy(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    return _R.uniform(10, 30, n), _R.uniform(10, 30, n)


def _raw(n: int = 10, N: int = 4) -> RawData:
    x, y = xy(n)
    return RawData(x, y, x, y, f32(n, N, N), c64(N, N), np.zeros(n, np.int64), c64(40, 40))


def _grouped() -> dict[str, Any]:
    return _raw().generate_grouped_data(4, K=4, nsamples=5, gridsize=2, seed=1)


def _config(**kw: Any) -> Any:
    model = types.SimpleNamespace(N=kw.pop("N", 8), gridsize=kw.pop("gridsize", 1))
    return types.SimpleNamespace(n_groups=kw.pop("n_groups", 4), n_images=None, model=model, **kw)


def _grid_scan() -> dict:
    """The scan arguments of the fused grid kernels: 2 objects, 4 groups of C = 2."""
    return dict(images=c64(2, 12, 12), positions=_R.uniform(-2, 12, (8, 2)), N=4, C=2)


TARGETS: dict[str, tuple[Callable[..., Any], Callable[[], dict[str, Any]]]] = {
    # _kernels
    "extract_patches": (
        _kernels.extract_patches,
        lambda: dict(obj=c64(12, 12), positions=_R.uniform(0, 12, (3, 2)), N=4),
    ),
    "diffract": (
        _kernels.diffract,
        lambda: dict(patches=c64(2, 4, 4), probe=c64(4, 4), scale=1.5),
    ),
    "observe_amplitudes": (
        _kernels.observe_amplitudes,
        lambda: dict(amplitudes=f32(2, 4, 4), seed=1, first_index=3),
    ),
    "poisson_counts": (
        _kernels.poisson_counts,
        lambda: dict(rates=_R.uniform(0, 50, 6), seed=1, stream=2),
    ),
    "illuminated_energy": (
        _kernels.illuminated_energy,
        lambda: dict(obj=c64(12, 12), positions=_R.uniform(0, 12, (3, 2)), probe=c64(4, 4)),
    ),
    "simulate": (
        _kernels.simulate,
        lambda: dict(
            obj=c64(12, 12),
            positions=_R.uniform(0, 12, (3, 2)),
            probe=c64(4, 4),
            scale=2.0,
            poisson=True,
            seed=1,
            first_index=0,
            divide_by_scale=True,
            return_patches=True,
        ),
    ),
    "acquire": (
        _kernels.acquire,
        lambda: dict(
            obj=c64(12, 12),
            positions=_R.uniform(0, 12, (3, 2)),
            probe=c64(2, 4, 4),
            scale=2.0,
            detector={"qe": 0.8, "read_noise": 1.5, "offset": 10.0, "dtype": "uint16"},
            seed=1,
            first_index=2,
            return_patches=True,
            return_stats=True,
        ),
    ),
    "acquire_plan": (
        _kernels.acquire_plan,
        lambda: dict(
            obj=c64(12, 12),
            probe=c64(2, 4, 4),
            scale=2.0,
            detector={"qe": 0.8, "read_noise": 1.5, "offset": 10.0, "dtype": "uint16"},
        ),
    ),
    "AcquirePlan": (
        # A valid plan called with fuzzed per-call arguments.
        lambda **kw: _kernels.acquire_plan(
            c64(12, 12), c64(2, 4, 4), scale=2.0, detector={"read_noise": 1.5}
        )(**kw),
        lambda: dict(
            positions=_R.uniform(0, 12, (3, 2)),
            seed=1,
            first_index=2,
            return_patches=True,
            return_stats=True,
        ),
    ),
    "detect": (
        _kernels.detect,
        lambda: dict(
            expected=_R.uniform(0, 40, (2, 4, 4)),
            detector={"gain": 2.0, "dark": 0.5, "psf_sigma_px": 0.7, "full_well": 500.0},
            seed=3,
            first_index=1,
            return_stats=True,
        ),
    ),
    "detector_settings": (
        _kernels.detector_settings,
        lambda: dict(detector={"qe": 0.5, "overflow": "wrap", "dtype": "uint32"}, N=4),
    ),
    "knn": (
        _kernels.knn,
        lambda: dict(points=_R.uniform(0, 9, (6, 2)), queries=_R.uniform(0, 9, (3, 2)), k=2),
    ),
    "sample_then_group": (
        _kernels.sample_then_group,
        lambda: dict(zip("xy", xy(), strict=True), nsamples=4, K=4, C=2, seed=1),
    ),
    "oversample_groups": (
        _kernels.oversample_groups,
        lambda: dict(zip("xy", xy(), strict=True), nsamples=15, K=4, C=2, seed=1),
    ),
    "gather_groups": (
        _kernels.gather_groups,
        lambda: dict(diff3d=f32(6, 4, 4), groups=np.array([[0, 5], [2, 2], [1, 3]])),
    ),
    "gather_groups_scaled": (
        _kernels.gather_groups_scaled,
        lambda: dict(diff3d=f32(6, 4, 4), groups=np.array([[0, 5], [2, 2]]), scale=0.5),
    ),
    "gather_groups_complex": (
        _kernels.gather_groups_complex,
        lambda: dict(patches=c64(6, 4, 4), groups=np.array([[0, 5], [2, 2]])),
    ),
    "pattern_energies": (_kernels.pattern_energies, lambda: dict(diff3d=f32(3, 4, 4))),
    "group_diffraction": (
        _kernels.group_diffraction,
        lambda: dict(diff3d=f32(6, 4, 4), groups=np.array([[0, 5], [2, 2]]), N=4),
    ),
    "legacy_permutation": (_kernels.legacy_permutation, lambda: dict(seed=1, n=5)),
    "legacy_choice": (
        _kernels.legacy_choice,
        lambda: dict(seed=1, n=5, size=3, replace=False),
    ),
    "legacy_uniform": (_kernels.legacy_uniform, lambda: dict(seed=1, size=4)),
    "legacy_raw": (_kernels.legacy_raw, lambda: dict(seed=1, size=4)),
    "paint_leaves": (
        _paint_fresh,
        lambda: dict(
            out=np.zeros((4, 5)),
            uncovered=np.ones((4, 5), bool),
            cx=_R.uniform(0, 4, 3),
            cy=_R.uniform(0, 3, 3),
            radii=_R.uniform(0, 2, 3),
            values=_R.random(3),
            remaining=20,
        ),
    ),
    "extract_grid_patches": (
        _kernels.extract_grid_patches,
        lambda: dict(image=c64(12, 12), positions=_R.uniform(0, 12, (4, 2)), N=4, C=2),
    ),
    "illuminate_groups": (
        _kernels.illuminate_groups,
        lambda: dict(
            amplitude=f32(2, 4, 4, 2), phase=f32(2, 4, 4, 2), probe=c64(4, 4), scale=1.0, seed=1
        ),
    ),
    "grid_maxima": (_kernels.grid_maxima, lambda: _grid_scan()),
    "grid_energies": (
        _kernels.grid_energies,
        lambda: dict(_grid_scan(), probe=c64(4, 4), divisor=1.5),
    ),
    "simulate_grid": (
        _kernels.simulate_grid,
        lambda: dict(_grid_scan(), probe=c64(4, 4), divisor=1.5, scale=2.0, seed=1),
    ),
    "channel_energies": (
        _kernels.channel_energies,
        lambda: dict(amplitude=f32(2, 4, 4, 2), probe=c64(4, 4)),
    ),
    "resolve_seed": (_kernels.resolve_seed, lambda: dict(seed=5)),
    "legacy_random_state": (_kernels.legacy_random_state, lambda: dict(seed=5)),
    "require_memory": (_kernels.require_memory, lambda: dict(what="x", nbytes=8)),
    # grouping / raw_data
    "get_relative_coords": (
        grouping.get_relative_coords,
        lambda: dict(coords_nn=_R.uniform(0, 9, (3, 1, 2, 2))),
    ),
    "normalize_data": (
        grouping.normalize_data,
        lambda: dict(dset={"diffraction": f32(3, 4, 4, 2)}, N=4),
    ),
    "get_image_patches": (
        grouping.get_image_patches,
        lambda: dict(
            gt_image=c64(16, 16),
            global_offsets=_R.uniform(4, 12, (2, 1, 2, 1)),
            local_offsets=_R.uniform(-2, 2, (2, 1, 2, 4)),
            N=4,
            gridsize=2,
        ),
    ),
    "generate_groups_efficiently": (
        grouping.generate_groups_efficiently,
        lambda: dict(zip(("xcoords", "ycoords"), xy(), strict=True), nsamples=4, K=4, C=2, seed=1),
    ),
    "generate_groups_with_oversampling": (
        grouping.generate_groups_with_oversampling,
        lambda: dict(zip(("xcoords", "ycoords"), xy(), strict=True), nsamples=15, K=4, C=2, seed=1),
    ),
    "get_neighbor_indices": (
        grouping.get_neighbor_indices,
        lambda: dict(zip(("xcoords", "ycoords"), xy(), strict=True), K=3),
    ),
    "group_dataset": (
        grouping.group_dataset,
        lambda: dict(
            **dict(
                zip(
                    ("xcoords", "ycoords", "xcoords_start", "ycoords_start"),
                    xy() + xy(),
                    strict=True,
                )
            ),
            diff3d=f32(10, 4, 4),
            N=4,
            K=4,
            nsamples=12,
            seed=1,
            sequential_sampling=False,
            gridsize=2,
            enable_oversampling=True,
            neighbor_pool_size=5,
            Y=c64(10, 4, 4, 1),
            objectGuess=None,
        ),
    ),
    "RawData": (
        RawData,
        lambda: dict(
            **dict(
                zip(
                    ("xcoords", "ycoords", "xcoords_start", "ycoords_start"),
                    xy() + xy(),
                    strict=True,
                )
            ),
            diff3d=f32(10, 4, 4),
            probeGuess=c64(4, 4),
            scan_index=np.zeros(10, np.int64),
            objectGuess=c64(20, 20),
            Y=c64(10, 4, 4, 1),
            norm_Y_I=1.0,
            metadata={"a": 1},
        ),
    ),
    "RawData.from_coords_without_pc": (
        RawData.from_coords_without_pc,
        lambda: dict(
            **dict(zip(("xcoords", "ycoords"), xy(), strict=True)),
            diff3d=f32(10, 4, 4),
            probeGuess=c64(4, 4),
            scan_index=np.zeros(10, np.int64),
            objectGuess=c64(20, 20),
        ),
    ),
    "RawData.from_simulation": (
        RawData.from_simulation,
        lambda: dict(
            **dict(zip(("xcoords", "ycoords"), xy(4), strict=True)),
            probeGuess=c64(4, 4),
            objectGuess=c64(40, 40),
            scan_index=np.arange(4),
            nphotons=1e4,
            poisson=True,
            seed=1,
        ),
    ),
    "simulate_raw": (
        simulate_raw,
        lambda: dict(
            **dict(zip(("xcoords", "ycoords"), xy(4), strict=True)),
            probeGuess=c64(4, 4),
            objectGuess=c64(40, 40),
            nphotons=1e4,
            seed=1,
        ),
    ),
    "RawData.generate_grouped_data": (
        lambda **kw: _raw().generate_grouped_data(**kw),
        lambda: dict(
            N=4,
            K=4,
            nsamples=12,
            seed=1,
            gridsize=2,
            enable_oversampling=True,
            neighbor_pool_size=4,
            sequential_sampling=False,
        ),  # fmt: skip
    ),
    # intensity
    "count_photons": (intensity.count_photons, lambda: dict(x=f32(2, 4, 4, 2))),
    "scale_nphotons": (intensity.scale_nphotons, lambda: dict(x=f32(2, 4, 4), nphotons=1e6)),
    "compute_dataset_intensity_stats": (
        intensity.compute_dataset_intensity_stats,
        lambda: dict(X=f32(2, 4, 4, 2), intensity_scale=3.0, is_normalized=True),
    ),
    "calculate_intensity_scale": (
        intensity.calculate_intensity_scale,
        lambda: dict(container_or_stats={"batch_mean_sum_intensity": 4.0}, nphotons=1e6, N=4),
    ),
    # diffsim
    "observe_amplitude": (diffsim.observe_amplitude, lambda: dict(amplitude=f32(2, 4, 4), seed=1)),
    "pad_and_diffract": (
        diffsim.pad_and_diffract,
        lambda: dict(input=c64(2, 4, 4, 1), h=4, w=4, pad=True),
    ),
    "diffract_obj": (
        diffsim.diffract_obj,
        lambda: dict(sample=c64(2, 4, 4, 1), draw_poisson=True, seed=1),
    ),
    "dummy_phi": (diffsim.dummy_phi, lambda: dict(Y_I=f32(2, 6, 6, 1))),
    "illuminate_and_diffract": (
        diffsim.illuminate_and_diffract,
        lambda: dict(
            Y_I=f32(4, 4, 4, 1),
            Y_phi=f32(4, 4, 4, 1),
            probe=c64(4, 4),
            intensity_scale=None,
            nphotons=1e4,
            gridsize=2,
            seed=1,
        ),
    ),
    "extract_coords": (
        diffsim.extract_coords,
        lambda: dict(
            size=24, repeats=2, coord_type="offsets", outer_offset=8, N=8, gridsize=2, offset=2
        ),
    ),  # fmt: skip
    "grid_positions": (
        diffsim.grid_positions,
        lambda: dict(size=24, outer_offset=8, N=8, gridsize=2, offset=2),
    ),
    "add_position_jitter": (
        diffsim.add_position_jitter,
        lambda: dict(coords=_R.uniform(-2, 2, (3, 1, 2, 4)), jitter_scale=0.5, seed=1),
    ),
    "mk_simdata": (
        diffsim.mk_simdata,
        lambda: dict(
            nimgs=1,
            size=24,
            probe=c64(8, 8),
            outer_offset=8,
            intensity_scale=None,
            YY_I=None,
            YY_phi=None,
            dict_fmt=True,
            seed=1,
            jitter_scale=0.3,
            N=8,
            gridsize=2,
            offset=2,
            nphotons=1e4,
            data_source="lines",
            set_phi=True,
        ),
    ),  # fmt: skip
    # loader
    "PtychoDataContainer": (
        loader.PtychoDataContainer,
        lambda: dict(
            X=f32(3, 4, 4, 2),
            Y_I=f32(3, 4, 4, 2),
            Y_phi=f32(3, 4, 4, 2),
            norm_Y_I=1.0,
            YY_full=None,
            coords_nominal=f32(3, 1, 2, 2),
            coords_true=f32(3, 1, 2, 2),
            nn_indices=np.zeros((3, 2), np.int64),
            global_offsets=f32(3, 1, 2, 1),
            local_offsets=f32(3, 1, 2, 2),
            probeGuess=c64(4, 4),
        ),
    ),  # fmt: skip
    "load": (
        lambda dset, **kw: loader.load(lambda: dset, **kw),
        lambda: dict(
            dset=_grouped(), probeGuess=c64(4, 4), which=None, create_split=False, nphotons=1e6
        ),
    ),  # fmt: skip
    # nongrid
    "random_positions": (
        nongrid_simulation.random_positions,
        lambda: dict(n=5, height=30, width=40, buffer=5.0, seed=1),
    ),
    "generate_simulated_data": (
        lambda n_groups, N, nphotons, **kw: nongrid_simulation.generate_simulated_data(
            _config(n_groups=n_groups, N=N, nphotons=nphotons), **kw
        ),
        lambda: dict(
            n_groups=4,
            N=8,
            nphotons=1e4,
            objectGuess=c64(40, 40),
            probeGuess=c64(8, 8),
            buffer=5.0,
            return_patches=True,
            seed=1,
            poisson=True,
        ),
    ),  # fmt: skip
    # the guide's helpers the simulation layer builds on
    "get_default_probe": (get_default_probe, lambda: dict(N=8, fmt="np", scale=0.7)),
    "sim_object_image": (
        sim_object_image,
        lambda: dict(size=16, data_source="lines", seed=1),
    ),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
@FUZZ
@given(data=st.data())
def test_fuzz_entry_point(name: str, data: st.DataObject) -> None:
    fn, baseline = TARGETS[name]
    kwargs = baseline()
    keys = sorted(kwargs)
    # mostly one argument replaced, sometimes two, sometimes none (the valid call itself)
    chosen = data.draw(st.lists(st.sampled_from(keys), max_size=2, unique=True), label="replace")
    for key in chosen:
        kwargs[key] = data.draw(mutated(kwargs[key]), label=key)
    check_call(fn, kwargs)


def test_every_public_entry_point_is_fuzzed():
    """New public functions of these modules must get a fuzz target."""
    covered = {name.split(".")[-1] for name in TARGETS}
    for module, ignored in (
        (_kernels, {"from_tensor", "legacy_seed", "as_array", "as_complex_image", "as_positions",
                    "num_threads", "simd_level", "available_memory", "check_field_range",
                    "check_coordinate_range", "check_fits", "oversampled_bytes", "MAX_COORDINATE",
                    "PtyfastError", "Acquired", "ACQUIRE_STATS", "READING_DTYPES",
                    "POISSON_STREAMS"}),
        (grouping, {"OVERSAMPLING_FINDING"}),
        (intensity, {"SPEC_REFERENCE", "MIN_BATCH_MEAN"}),
        (diffsim, {"mk_lines_img", "sim_object_image", "scale_nphotons", "count_photons"}),
        (loader, {"split_data", "split_tensor", "compute_dataset_intensity_stats",
                  "calculate_intensity_scale", "scale_nphotons", "count_photons"}),
        (nongrid_simulation, {"load_probe_object", "simulate_from_npz",
                              "REFERENCE_POSITION_SEED"}),
    ):  # fmt: skip
        missing = set(module.__all__) - covered - ignored
        assert not missing, f"{module.__name__}: no fuzz target for {sorted(missing)}"


# --------------------------------------------------------------------------- files


def _valid_npz_bytes(compressed: bool) -> bytes:
    import io

    x, y = xy(6)
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(
        buf,
        xcoords=x,
        ycoords=y,
        xcoords_start=x,
        ycoords_start=y,
        diff3d=f32(6, 4, 4),
        probeGuess=c64(4, 4),
        scan_index=np.arange(6),
        objectGuess=c64(12, 12),
        Y=c64(6, 4, 4, 1),
        _metadata=np.array('{"nphotons": 1000.0, "intensity_scale": 2.0}'),
    )
    return buf.getvalue()


_NPZ = {c: _valid_npz_bytes(c) for c in (False, True)}


@FUZZ
@given(
    compressed=st.booleans(),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=0, max_size=4
    ),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    tail=st.binary(max_size=8),
)
def test_fuzz_corrupt_files(tmp_path_factory, compressed, edits, cut, tail):
    """Byte flips, truncations and trailing garbage in a raw NPZ: from_file returns a valid
    RawData or raises ValueError/TypeError, never anything else (BadZipFile, EOFError, zlib,
    struct, unpickling...)."""
    data = bytearray(_NPZ[compressed])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    data += tail
    path = tmp_path_factory.mktemp("npz") / "raw.npz"
    path.write_bytes(bytes(data))
    try:
        raw = RawData.from_file(path)
    except (ValueError, TypeError):
        return
    assert raw.diff3d.shape[0] == raw.xcoords.shape[0]

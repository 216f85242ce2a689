"""Input hardening (issue 9, classes 1-7 and 12): every user error is a ValueError/TypeError
that names the argument, raised before any work or large allocation; no abort, panic or silent
non-finite output; strict file reading; every seed recorded."""

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptyfast import PtyfastError, _kernels, _npz, diffsim, grouping, intensity, loader
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.nongrid_simulation import generate_simulated_data, load_probe_object
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData

RNG = np.random.default_rng(1234)


def _raw(n=30, N=8, x=None, diff3d=None):
    x = np.linspace(10, 50, n) if x is None else x
    y = np.sin(np.arange(n)) * 20 + 30
    d = RNG.random((n, N, N), dtype=np.float32) if diff3d is None else diff3d
    return RawData.from_coords_without_pc(
        x, y, d, np.ones((N, N), np.complex64), np.zeros(n, np.int64)
    )


def _config(n=5, N=16, nphotons=1e3):
    return TrainingConfig(model=ModelConfig(N=N), n_groups=n, nphotons=nphotons)


def _lines(size=48):
    return diffsim.sim_object_image(size, data_source="lines", seed=3)


# ---------------------------------------------------------------- class 1: allocations


def test_require_memory_reports_bytes_needed_and_available():
    _kernels.require_memory("a small buffer", 1024)  # fits
    avail, source = _kernels.available_memory()
    assert avail is not None and avail > 0
    if os.path.exists("/proc/meminfo"):
        assert source in ("MemAvailable", "cgroup memory.max")
    need = 4 * avail + 12345
    with pytest.raises(ValueError) as e:
        _kernels.require_memory("nsamples=7 groups", need)
    msg = str(e.value)
    assert msg.startswith(f"nsamples=7 groups needs {need} bytes")
    got = int(re.search(r"only (\d+) bytes", msg).group(1))
    assert 0 < got < need
    with pytest.raises(ValueError, match="more than any machine can address"):
        _kernels.require_memory("x", 2**70)
    with pytest.raises(TypeError, match="nbytes"):
        _kernels.require_memory("x", 1.5)


def test_small_allocations_skip_the_memory_reading(monkeypatch):
    reads = []

    def scarce():
        reads.append(1)
        return 1000, "MemAvailable"

    monkeypatch.setattr(_kernels, "available_memory", scarce)
    _kernels.require_memory("one small pattern", _kernels.SMALL_ALLOCATION)
    assert reads == []
    with pytest.raises(ValueError, match=r"needs 1048577 bytes .* only 1000 bytes"):
        _kernels.require_memory("one byte more", _kernels.SMALL_ALLOCATION + 1)
    assert reads == [1]


def test_available_memory_is_meminfo_on_linux():
    if not os.path.exists("/proc/meminfo"):
        pytest.skip("no /proc/meminfo on this platform")
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    total = int(fields["MemTotal"].split()[0]) * 1024
    avail, _ = _kernels.available_memory()
    assert 0 < avail <= total  # MemAvailable (or a cgroup limit below it) never exceeds RAM


@pytest.mark.parametrize("nsamples", [10**12, 2**62, 2**63 - 1])
def test_oversampling_counts_beyond_memory_are_refused_before_allocating(nsamples):
    # Issue 9: 10**12 aborted the interpreter (SIGABRT), 2**62 raised a PanicException.
    with pytest.raises(ValueError, match=r"nsamples=\d+ groups of C=4 .* needs \d+ bytes"):
        _raw().generate_grouped_data(
            N=8, K=6, nsamples=nsamples, gridsize=2, enable_oversampling=True, seed=0
        )


def test_huge_counts_beyond_int64_are_argument_errors():
    with pytest.raises(ValueError, match="nsamples must be <= 9223372036854775807"):
        _raw().generate_grouped_data(N=8, K=6, nsamples=2**64, gridsize=2, seed=0)
    # Without oversampling (C == 1) groups are capped at the number of points: any count works.
    out = _raw().generate_grouped_data(N=8, K=6, nsamples=2**62, gridsize=1, seed=0)
    assert out["X_full"].shape == (30, 8, 8, 1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: _kernels.legacy_choice(0, 10, 2**62), "legacy_choice: size"),
        (lambda: _kernels.legacy_permutation(0, 2**62), "legacy_permutation: n"),
        (lambda: _kernels.legacy_uniform(0, 2**61), "legacy_uniform: size"),
        (lambda: _kernels.legacy_raw(0, 2**61), "legacy_raw: size"),
        (lambda: _kernels.extract_patches(np.ones((4, 4)), [[1, 1]], 2**31), "extract_patches"),
        (lambda: _kernels.knn(np.zeros((3, 2)), np.zeros((2, 2)), 2**62), "k must be <="),
        (lambda: grouping.get_neighbor_indices([0.0, 1.0], [0.0, 1.0], K=2**61), r"K\+1 = "),
        (
            lambda: _kernels.simulate(np.ones((8, 8)), np.zeros((10**6, 2)), np.ones((256, 256))),
            "simulate: 1000000 patterns of N = 256 needs",
        ),
    ],
)
def test_kernel_sizes_are_checked_before_allocating(call, match):
    with pytest.raises(ValueError, match=match):
        call()


_OBJ = np.ones((32, 32), np.complex64)
_POS = [[16.0, 16.0]]
_PROBE = np.ones((8, 8), np.complex64)
_EXPECTED = np.full((1, 4, 4), 100.0)
_ARGS = (_OBJ, _POS, _PROBE)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda v: _kernels.simulate(*_ARGS, seed=1, return_patches=v), "return_patches"),
        (lambda v: _kernels.simulate(_OBJ, _POS, _PROBE, seed=1, poisson=v), "poisson"),
        (lambda v: _kernels.simulate(_OBJ, _POS, _PROBE, divide_by_scale=v), "divide_by_scale"),
        (lambda v: _kernels.acquire(*_ARGS, seed=1, return_patches=v), "return_patches"),
        (lambda v: _kernels.acquire(_OBJ, _POS, _PROBE, seed=1, return_stats=v), "return_stats"),
        (lambda v: _kernels.detect(_EXPECTED, seed=1, return_stats=v), "return_stats"),
        (lambda v: _kernels.legacy_choice(0, 10, 2, replace=v), "replace"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("value", ["no", "False", 2, None, np.array([1, 0])])
def test_flags_take_only_booleans(call, name, value):
    """A truthy object ("no", 2) once silently picked the True branch."""
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        call(value)
    call(np.bool_(True))  # NumPy booleans and 0/1 stay accepted
    call(0)


@pytest.mark.parametrize(
    "values, dtype, match",
    [
        (np.full((4, 4), 256), np.uint8, r"x must hold integers in \[0, 255\] \(uint8\), got 256"),
        (np.full((4, 4), -1), np.uint8, r"got -1"),
        (np.full((4, 4), 256.0), np.uint8, r"got 256"),
        (np.array([2**40], np.int64), np.int32, r"x must hold integers in .*got 1099511627776"),
        (np.array([2**64 - 1], np.uint64), np.int64, "got 18446744073709551615"),
    ],
)  # fmt: skip
def test_integer_arrays_are_not_wrapped_by_the_cast(values, dtype, match):
    with pytest.raises(ValueError, match=match):
        _kernels.as_array("x", values, dtype)
    ok = _kernels.as_array("x", np.array([0, 7, 255]), np.uint8)
    assert ok.dtype == np.uint8 and ok.tolist() == [0, 7, 255]


def test_pixel_flags_beyond_a_byte_are_refused_not_wrapped():
    # 256 would have read as 0 (a valid pixel) and 258 as 2 (a gap).
    for flag in (256, 258):
        px = np.full((4, 4), flag)
        with pytest.raises(ValueError, match="pixels must hold integers in"):
            _kernels.detect(_EXPECTED, detector={"pixels": px, "poisson": False}, seed=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: _kernels.detect(np.broadcast_to(1.0, (2**40, 2, 2)), seed=1),
        lambda: _kernels.observe_amplitudes(np.broadcast_to(np.float32(1), (2**40, 2, 2)), seed=1),
        lambda: _kernels.acquire(_OBJ, np.broadcast_to(16.0, (2**40, 2)), _PROBE, seed=1),
    ],
)
def test_huge_broadcast_views_are_refused_by_size_before_any_pass(call):
    """The finiteness checks once made a full-size temporary first (a MemoryError of TiBs)."""
    with pytest.raises(ValueError, match="needs .* bytes"):
        call()


def test_statistics_that_overflow_float64_are_refused_not_returned_as_inf():
    with pytest.raises(ValueError, match="expected must be <= .* photons per pixel with stats"):
        _kernels.detect(np.full((1, 4, 4), 1e308), seed=1, return_stats=True)
    readings, stats = _kernels.detect(np.full((1, 4, 4), 1e308), seed=1)  # no totals asked
    assert stats is None and np.isfinite(readings).all()
    huge_gain = {"gain": 1e308, "dtype": "float64"}
    with pytest.raises(ValueError, match=r"stats\['readings'\] of pattern 0 overflows float64"):
        _kernels.detect(_EXPECTED, detector=huge_gain, seed=1, return_stats=True)
    _, stats = _kernels.detect(_EXPECTED, seed=1, return_stats=True)
    assert np.isfinite(stats["photons"]).all() and stats["photons"][0] == 1600.0


def test_detector_mappings_are_checked_here_with_short_messages():
    with pytest.raises(ValueError, match=r"read_noise must be <= 2\.12676e\+37 ADU") as info:
        _kernels.detect(_EXPECTED, detector={"read_noise": 1e308}, seed=1)
    assert len(str(info.value)) < 200  # not the Rust error's 309-digit number
    with pytest.raises(TypeError, match="dtype must be one of .* got NoneType None"):
        _kernels.detect(_EXPECTED, detector={"dtype": None}, seed=1)
    with pytest.raises(ValueError, match="dtype must be one of .* got 'int8'"):
        _kernels.detect(_EXPECTED, detector={"dtype": "int8"}, seed=1)


# ---------------------------------------------------------------- class 2: coordinates


def test_knn_is_exact_up_to_the_coordinate_limit_and_refuses_beyond():
    pts = RNG.uniform(-1, 1, (200, 2))
    for scale in (1.0, 1e100, 5e149):  # exact (scaled) results right up to the limit
        idx, dist = _kernels.knn(pts * scale, pts[:20] * scale, 5)
        d_ref, i_ref = cKDTree(pts * scale).query(pts[:20] * scale, k=5)
        np.testing.assert_array_equal(idx, i_ref)
        np.testing.assert_allclose(dist, d_ref, rtol=1e-12)
    for big in (1.1e150, 1e154, 1e300):
        bad = pts.copy()
        bad[7, 1] = -big
        with pytest.raises(
            ValueError, match=r"points must lie within \+-1e\+150 .* index \(7, 1\)"
        ):
            _kernels.knn(bad, pts, 3)
        with pytest.raises(ValueError, match="queries must lie within"):
            _kernels.knn(pts, bad, 3)


@pytest.mark.parametrize("big", [1e154, 1e200])
def test_grouping_refuses_overflowing_coordinates(big):
    x = np.linspace(0, 1, 30)
    x[29] = big
    raw = _raw(x=x)
    with pytest.raises(ValueError, match="xcoords must lie within"):
        raw.generate_grouped_data(N=8, K=4, nsamples=5, gridsize=2, seed=0)
    with pytest.raises(ValueError, match="xcoords must lie within"):
        grouping.get_neighbor_indices(x, np.zeros(30))
    with pytest.raises(ValueError, match="ycoords must lie within"):
        grouping.generate_groups_with_oversampling(np.zeros(30), x, 100, 6, 4, seed=0)


# ---------------------------------------------------------------- class 3: non-finite output


def test_mk_simdata_refuses_photon_counts_that_overflow_float32_and_names_them():
    probe = get_default_probe(16)
    kw = dict(N=16, gridsize=1, offset=4, data_source="lines", seed=0)
    with pytest.raises(ValueError, match=r"^nphotons = 1e\+38 would overflow") as e:
        diffsim.mk_simdata(1, 40, probe, 16, nphotons=1e38, **kw)
    largest = float(re.search(r"at most nphotons = (\S+) fits", str(e.value)).group(1))
    # The bound is sufficient: just below the largest allowed value every output is finite.
    X, Y_I, Y_phi, _ = diffsim.mk_simdata(1, 40, probe, 16, nphotons=0.99 * largest, **kw)
    assert all(np.isfinite(a).all() for a in (X, Y_I, Y_phi))
    with pytest.raises(ValueError, match=r"^intensity_scale = 1e\+20 would overflow"):
        diffsim.mk_simdata(1, 40, probe, 16, intensity_scale=1e20, nphotons=1e6, **kw)
    with pytest.raises(ValueError, match=r"^nphotons = 1e-300 gives an intensity scale"):
        diffsim.mk_simdata(1, 40, probe, 16, nphotons=1e-300, **kw)


@pytest.mark.parametrize(
    "call",
    [
        lambda nph: generate_simulated_data(
            _config(nphotons=nph), _lines(), get_default_probe(16), 5.0
        ),
        lambda nph: RawData.from_simulation(
            [20.0, 25.5], [20.0, 30.0], get_default_probe(16), _lines(), nphotons=nph, seed=0
        ),
        lambda nph: diffsim.illuminate_and_diffract(
            np.ones((4, 16, 16, 1), np.float32),
            np.zeros((4, 16, 16, 1), np.float32),
            get_default_probe(16),
            nphotons=nph,
            gridsize=1,
            seed=0,
        ),
    ],
)
def test_nongrid_paths_refuse_overflowing_nphotons_and_the_bound_is_sufficient(call):
    with pytest.raises(ValueError, match=r"^nphotons = 1e\+38 would overflow the float32") as e:
        call(1e38)
    largest = float(re.search(r"at most nphotons = (\S+) fits", str(e.value)).group(1))
    out = call(0.99 * largest)
    arrays = out if isinstance(out, tuple) else (out,)
    for a in arrays:
        a = getattr(a, "diff3d", a)
        assert np.isfinite(np.asarray(a)).all()


def test_kernel_scales_are_range_checked():
    obj, probe = np.ones((32, 32)), np.ones((8, 8))
    with pytest.raises(ValueError, match=r"^scale = 1e\+30 would overflow"):
        _kernels.simulate(obj, [[16, 16]], probe, scale=1e30, seed=0)
    with pytest.raises(ValueError, match=r"^scale = 1e\+30 would overflow"):
        _kernels.diffract(np.ones((1, 8, 8)), probe, 1e30)
    with pytest.raises(ValueError, match=r"^scale = 1e\+30 would overflow"):
        _kernels.illuminate_groups(np.ones((1, 8, 8, 1)), None, probe, 1e30, seed=0)
    with pytest.raises(ValueError, match="obj must fit complex64"):
        _kernels.simulate(np.full((32, 32), 1e300), [[16, 16]], probe, seed=0)
    with pytest.raises(ValueError, match="obj and probe values"):
        _kernels.illuminated_energy(np.full((32, 32), 1e30), [[16, 16]], np.full((8, 8), 1e30))


# ---------------------------------------------------------------- class 4: exception types


def test_all_zero_data_is_a_value_error_not_zero_division():
    with pytest.raises(ValueError, match=r"dset\['diffraction'\] is zero in every selected"):
        grouping.normalize_data({"diffraction": np.zeros((2, 8, 8, 1))}, 8)
    with pytest.raises(ValueError, match="diff3d is zero in every selected pattern"):
        _raw(diff3d=np.zeros((30, 8, 8), np.float32)).generate_grouped_data(
            N=8, K=4, nsamples=5, gridsize=1, seed=0
        )
    with pytest.raises(ValueError, match="diff3d is zero"):  # other dtypes: same rule
        _raw(diff3d=np.zeros((30, 8, 8), np.uint16)).generate_grouped_data(
            N=8, K=4, nsamples=5, gridsize=1, seed=0
        )


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1.0, "16.0", True])
def test_calculate_intensity_scale_rejects_bad_statistics(bad):
    exc = TypeError if isinstance(bad, str | bool) else ValueError
    with pytest.raises(exc, match="batch_mean_sum_intensity must be"):
        intensity.calculate_intensity_scale({"batch_mean_sum_intensity": bad}, nphotons=1e9, N=64)


def test_calculate_intensity_scale_documented_fallbacks():
    closed = np.sqrt(1e9) / 32
    for stats in (None, {}, {"batch_mean_sum_intensity": None}, {"batch_mean_sum_intensity": 0}):
        assert intensity.calculate_intensity_scale(stats, nphotons=1e9, N=64) == closed
    assert intensity.calculate_intensity_scale({"batch_mean_sum_intensity": 4}, nphotons=1e2) == 5


@pytest.mark.parametrize(
    "N, exc",
    [(2.5, TypeError), (True, TypeError), ("64", TypeError), (64.0, TypeError), (0, ValueError)],
)
def test_calculate_intensity_scale_n_must_be_an_integer(N, exc):
    with pytest.raises(exc, match="^N must be"):
        intensity.calculate_intensity_scale(None, nphotons=1e9, N=N)


@pytest.mark.parametrize(
    "value, exc, match",
    [
        ("1e6", TypeError, "got str '1e6'"),
        (b"1e6", TypeError, "got bytes"),
        (True, TypeError, "got bool True"),
        (1e6 + 0j, TypeError, "got complex"),
        (10**400, ValueError, "got an integer too large for float64"),
        (float("nan"), ValueError, "got nan"),
        (-1.0, ValueError, "got -1.0"),
    ],
)
def test_photon_counts_must_be_real_numbers(value, exc, match):
    x = np.ones((2, 4, 4), np.float32)
    with pytest.raises(exc, match=f"^nphotons must be a positive finite number, {match}"):
        intensity.scale_nphotons(x, nphotons=value)
    with pytest.raises(exc, match="^nphotons must be"):
        RawData.from_simulation([20.0], [20.0], np.ones((8, 8)), np.ones((40, 40)), nphotons=value)
    with pytest.raises(exc, match="nphotons must be"):
        diffsim.mk_simdata(
            1, 40, np.ones((16, 16)), 16, N=16, gridsize=1, offset=4, nphotons=value,
            data_source="lines", seed=0,
        )  # fmt: skip


def test_numpy_and_tensor_scalars_are_still_accepted():
    x = np.ones((2, 4, 4), np.float32)
    ref = intensity.scale_nphotons(x, nphotons=1e6)
    for v in (np.float32(1e6), np.int64(10**6), np.array(1e6), 10**6):
        assert intensity.scale_nphotons(x, nphotons=v) == ref
    assert intensity.calculate_intensity_scale(None, nphotons=1e9, N=np.int32(64)) > 0


def test_load_reports_missing_keys_as_value_errors():
    with pytest.raises(ValueError, match=r"must hold \['coords_start_relative"):
        loader.load(lambda: {"X_full": np.ones((2, 4, 4, 1))}, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"must hold \['X_full'\]"):
        loader.load(lambda: {"coords_start_relative": np.zeros((2, 1, 2, 1))}, np.ones((4, 4)))
    with pytest.raises(TypeError, match="cb must return the grouped dict"):
        loader.load(lambda: [1, 2], np.ones((4, 4)))
    with pytest.raises(TypeError, match="cb must be a callable"):
        loader.load({"X_full": 1}, np.ones((4, 4)))


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"enable_oversampling": "yes"}, "enable_oversampling"),
        ({"sequential_sampling": None}, "sequential_sampling"),
        ({"K": 4.0}, "K"),
        ({"N": "8"}, "N"),
        ({"gridsize": np.float64(2)}, "gridsize"),
        ({"neighbor_pool_size": 2.5}, "neighbor_pool_size"),
    ],
)
def test_grouping_arguments_of_the_wrong_type(kw, name):
    args = dict(N=8, K=4, nsamples=5, gridsize=1, seed=0) | kw
    with pytest.raises(TypeError, match=f"^{name} must be"):
        _raw().generate_grouped_data(**args)


def test_grouping_messages_carry_the_reference_facts():
    raw = _raw(n=100)
    with pytest.raises(ValueError, match="K=3 must be >= C=5"):
        raw._generate_groups_efficiently(nsamples=10, K=3, C=5, seed=0)
    with pytest.raises(ValueError) as e:
        raw.generate_grouped_data(8, K=7, nsamples=200, gridsize=2, seed=0)
    assert "OVERSAMPLING-001" in str(e.value) and "enable_oversampling" in str(e.value)
    with pytest.raises(ValueError) as e:
        raw.generate_grouped_data(
            8, K=4, nsamples=200, gridsize=2, seed=0, enable_oversampling=True,
            neighbor_pool_size=3,
        )  # fmt: skip
    assert "neighbor_pool_size >= C" in str(e.value) and "OVERSAMPLING-001" in str(e.value)


# ---------------------------------------------------------------- class 5: constructors


@pytest.mark.parametrize(
    "change, exc, match",
    [
        ({"probeGuess": np.ones((3, 5))}, ValueError, r"probeGuess must be \(N, N\) = \(8, 8\)"),
        ({"probeGuess": np.ones((8, 8)).astype(object)}, TypeError, "probeGuess must be"),
        ({"probeGuess": np.full((8, 8), np.nan)}, ValueError, "probeGuess must be finite"),
        ({"probeGuess": None}, TypeError, "probeGuess must be"),
        ({"diff3d": np.ones((12, 8, 8)).astype(object)}, TypeError, "diff3d must be"),
        ({"diff3d": None}, TypeError, "diff3d must be"),
        ({"diff3d": np.full((12, 8, 8), "a")}, TypeError, "diff3d must be"),
        ({"xcoords": np.zeros(12).astype(object)}, TypeError, "xcoords must be"),
        ({"xcoords": np.zeros(12) + 0j}, TypeError, "xcoords must be"),
        ({"scan_index": np.zeros(12).astype(object)}, TypeError, "scan_index must be"),
        ({"scan_index": np.full(12, 0.5)}, ValueError, "scan_index must hold integers"),
        ({"scan_index": None}, TypeError, "scan_index must be"),
        ({"objectGuess": np.ones((4, 4)).astype(object)}, TypeError, "objectGuess must be"),
        ({"objectGuess": np.full((4, 4), np.inf)}, ValueError, "objectGuess must be finite"),
        ({"Y": np.ones((11, 8, 8))}, ValueError, r"Y must be \(12, H, W\)"),
        ({"Y": np.ones((12, 8, 8)).astype(object)}, TypeError, "Y must be"),
        ({"norm_Y_I": "1.0"}, TypeError, "norm_Y_I must be a real scalar"),
        ({"norm_Y_I": np.ones(3)}, TypeError, "norm_Y_I must be a real scalar"),
        ({"metadata": [("a", 1)]}, TypeError, "metadata must be a dict"),
        ({"ycoords_start": None}, ValueError, "both"),
    ],
)
def test_rawdata_constructor_validates_every_argument(change, exc, match):
    n, N = 12, 8
    args = (
        dict(
            xcoords=np.arange(n, dtype=float),
            ycoords=np.arange(n, dtype=float),
            xcoords_start=np.arange(n, dtype=float),
            ycoords_start=np.arange(n, dtype=float),
            diff3d=np.ones((n, N, N), np.float32),
            probeGuess=np.ones((N, N), np.complex64),
            scan_index=np.zeros(n, np.int64),
        )
        | change
    )
    with pytest.raises(exc, match=match):
        RawData(**args)


def test_from_coords_without_pc_checks_the_probe_against_the_patterns():
    # Issue 9: a (3, 5) probe beside (30, 8, 8) patterns was accepted.
    with pytest.raises(ValueError, match=r"probeGuess must be \(N, N\) = \(8, 8\) .* \(3, 5\)"):
        RawData.from_coords_without_pc(
            np.arange(30.0), np.arange(30.0), np.ones((30, 8, 8), np.float32),
            np.ones((3, 5)), np.zeros(30, int),
        )  # fmt: skip


def test_rawdata_without_start_coordinates_uses_the_positions():
    raw = _raw()
    r = RawData(raw.xcoords, raw.ycoords, None, None, raw.diff3d, raw.probeGuess, raw.scan_index)
    assert r.xcoords_start is r.xcoords and r.ycoords_start is r.ycoords
    d = r.generate_grouped_data(N=8, K=4, nsamples=5, gridsize=2, seed=0)
    c = loader.load(lambda: d, raw.probeGuess)
    assert np.isfinite(c.coords).all()  # was NaN: load read the missing start coordinates
    np.testing.assert_array_equal(c.coords, d["coords_relative"].astype(np.float32))
    # grouped data built without start coordinates: load falls back to coords_relative
    g = grouping.group_dataset(
        raw.xcoords, raw.ycoords, None, None, raw.diff3d, N=8, K=4, nsamples=5, seed=0,
        gridsize=1,
    )  # fmt: skip
    assert g["coords_start_relative"] is None
    c = loader.load(lambda: g, raw.probeGuess)
    np.testing.assert_array_equal(c.coords, g["coords_relative"].astype(np.float32))


def _container(**change):
    B, N, C = 3, 4, 4
    args = (
        dict(
            X=np.ones((B, N, N, C), np.float32),
            Y_I=None,
            Y_phi=None,
            norm_Y_I=1.0,
            YY_full=None,
            coords_nominal=np.zeros((B, 1, 2, C)),
            coords_true=np.zeros((B, 1, 2, C)),
            nn_indices=np.zeros((B, C), np.int64),
            global_offsets=np.zeros((B, 1, 2, 1)),
            local_offsets=np.zeros((B, 1, 2, C)),
            probeGuess=np.ones((N, N), np.complex64),
        )
        | change
    )
    return loader.PtychoDataContainer(**args)


@pytest.mark.parametrize(
    "change, exc, match",
    [
        ({"X": "abc"}, TypeError, "X must be real amplitudes"),
        ({"X": np.ones(5)}, ValueError, r"X must be \(B, N, N, C\)"),
        ({"X": np.ones((3, 4, 4, 4)) * 1j}, TypeError, "X must be real amplitudes"),
        ({"X": np.full((3, 4, 4, 4), np.nan)}, ValueError, "X must be finite"),
        (
            {"coords_nominal": np.zeros((2, 1, 2, 4))},
            ValueError,
            r"coords_nominal must have shape \(3, 1, 2, 4\)",
        ),
        ({"coords_true": np.zeros((3, 2, 4))}, ValueError, "coords_true must have shape"),
        ({"coords_true": np.zeros((3, 1, 2, 4)) + 1j}, TypeError, "coords_true must be"),
        ({"Y_I": np.ones((3, 4, 4, 4)) + 0j}, TypeError, "Y_I must be"),
        ({"Y_phi": np.ones((3, 4, 4, 2))}, ValueError, "Y_phi must have the shape of X"),
        ({"nn_indices": np.zeros((3, 4))}, TypeError, "nn_indices must be integer"),
        ({"nn_indices": np.zeros((2, 4), int)}, ValueError, "nn_indices must have shape"),
        ({"global_offsets": np.zeros((4, 1, 2, 1))}, ValueError, "global_offsets must have shape"),
        ({"probeGuess": np.ones(4)}, ValueError, "probeGuess must be"),
        ({"probeGuess": "p"}, TypeError, "probeGuess must be"),
        ({"norm_Y_I": "x"}, TypeError, "norm_Y_I must be a real scalar"),
    ],
)
def test_container_constructor_validates(change, exc, match):
    with pytest.raises(exc, match=match):
        _container(**change)


def test_load_validates_the_grouped_arrays():
    d = _raw().generate_grouped_data(N=8, K=4, nsamples=5, gridsize=1, seed=0)
    probe = np.ones((8, 8), np.complex64)
    for key, value, exc, match in [
        ("X_full", d["X_full"][..., 0], ValueError, r"X_full'\] must be \(B, N, N, C\)"),
        ("X_full", "abc", TypeError, r"X_full'\] must be real"),
        ("X_full", d["X_full"] * np.nan, ValueError, "must be finite"),
        ("coords_start_relative", np.zeros((4, 1, 2, 1)), ValueError, "must have shape"),
        ("Y", np.ones((5, 8, 8, 2)), ValueError, "Channel mismatch"),
        ("nn_indices", np.zeros((6, 1), int), ValueError, "nn_indices'\\] must have shape"),
    ]:
        bad = dict(d) | {key: value}
        with pytest.raises(exc, match=match):
            loader.load(lambda bad=bad: bad, probe)
    with pytest.raises(ValueError, match="split of 5 groups with train_frac=0.0 is empty"):
        loader.load(lambda: (d, 0.0), probe, "train", True)
    with pytest.raises(TypeError, match="train_frac must be"):
        loader.load(lambda: (d, "0.5"), probe, "train", True)
    with pytest.raises(TypeError, match="create_split must be True or False"):
        loader.load(lambda: d, probe, "train", "no")


# ---------------------------------------------------------------- class 6: up-front sizes


def test_mk_simdata_refuses_impossible_sizes_before_any_work():
    with pytest.raises(ValueError, match=r"^mk_simdata: nimgs=1000000000000 objects .* needs"):
        diffsim.mk_simdata(
            10**12, 392, get_default_probe(64), 8, N=64, gridsize=2, offset=4, nphotons=1e9,
            data_source="lines", seed=0,
        )  # fmt: skip


def test_generate_simulated_data_refuses_impossible_sizes_before_drawing():
    with pytest.raises(ValueError, match=r"^generate_simulated_data: n_groups=1000000000 .* needs"):
        generate_simulated_data(_config(n=10**9, N=64), _lines(96), get_default_probe(64), 5.0)


# ---------------------------------------------------------------- class 7: files


def _write_raw(path, **extra):
    n, N = 6, 8
    arrays = (
        dict(
            xcoords=np.arange(n, dtype=float),
            ycoords=np.arange(n, dtype=float),
            xcoords_start=np.arange(n, dtype=float),
            ycoords_start=np.arange(n, dtype=float),
            diff3d=np.ones((n, N, N), np.float32),
            probeGuess=np.ones((N, N), np.complex64),
            scan_index=np.arange(n),
            objectGuess=np.ones((20, 20), np.complex64),
            Y=np.ones((n, N, N, 1), np.complex64),
        )
        | extra
    )
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def _corrupt_member(path, key):
    """Flip bytes inside the stored data of ``key`` (an uncompressed member)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(key + ".npy")
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
        data_start = info.header_offset + 30 + name_len + extra_len
        f.seek(data_start + info.file_size - 4)
        f.write(b"\xde\xad\xbe\xef")


@pytest.mark.parametrize(
    "key", ["xcoords_start", "scan_index", "Y", "objectGuess", "diff3d", "xcoords", "probeGuess"]
)
def test_a_corrupt_member_is_an_error_naming_file_and_key(tmp_path, key):
    path = tmp_path / "raw.npz"
    _write_raw(path)
    _corrupt_member(path, key)
    with pytest.raises(ValueError, match=rf"raw.npz: member '{key}' is unreadable: .*CRC"):
        RawData.from_file(path)


def test_truncated_and_foreign_files_are_value_errors(tmp_path):
    path = tmp_path / "raw.npz"
    _write_raw(path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.npz"):
            RawData.from_file(bad)
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match="is not a readable .npz archive"):
        RawData.from_file(npy)
    with pytest.raises(FileNotFoundError):
        RawData.from_file(tmp_path / "missing.npz")


def test_declared_shapes_are_checked_before_allocating(tmp_path):
    # A header declaring 10**13 values over a few stored bytes: refused from the header alone.
    path = tmp_path / "huge.npz"
    _write_raw(path)
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**13,)}
    with zipfile.ZipFile(path, "a") as z, z.open("xcoords_big.npy", "w") as f:
        np.lib.format.write_array_header_2_0(f, header)
        f.write(b"\0" * 64)
    with _npz.NpzReader(path) as r, pytest.raises(ValueError, match="declares shape"):
        r.read("xcoords_big")
    # Shapes that disagree with each other are refused before the big members are read.
    bad = tmp_path / "mismatch.npz"
    _write_raw(bad, diff3d=np.ones((5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"diff3d must be \(M, N, N\) with M = 6"):
        RawData.from_file(bad)


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_npz, "RATIO_CHECK_MIN_BYTES", 1 << 20)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(
        path, xcoords=np.zeros(4), ycoords=np.zeros(4), diff3d=np.zeros((4, 256, 256), np.float32),
        probeGuess=np.ones((256, 256), np.complex64),
    )  # fmt: skip
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("diff3d.npy")
    assert info.file_size > 100 * info.compress_size  # deflate packs zeros ~1000:1
    with pytest.raises(ValueError, match=r"member 'diff3d' .* decompression bomb"):
        RawData.from_file(path)
    # Ordinary compressed data (ratio far below the limit) reads fine.
    ok = tmp_path / "ok.npz"
    np.savez_compressed(
        ok, xcoords=np.zeros(4), ycoords=np.zeros(4),
        diff3d=RNG.random((4, 256, 256), dtype=np.float32), probeGuess=np.ones((256, 256)),
    )  # fmt: skip
    assert RawData.from_file(ok).diff3d.shape == (4, 256, 256)


class _Boom:
    """Unpickling this would create a file: proof that pickles are never loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickles_are_never_loaded(tmp_path):
    marker = tmp_path / "unpickled"
    evil = np.empty((), dtype=object)
    evil[()] = _Boom(str(marker))
    path = tmp_path / "evil.npz"
    _write_raw(path, objectGuess=evil)
    raw = RawData.from_file(path)  # the pickled optional member reads as absent
    assert raw.objectGuess is None and not marker.exists()
    _write_raw(path, probeGuess=evil)
    with pytest.raises(ValueError, match="required member 'probeGuess' is a pickled object"):
        RawData.from_file(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match="pickled"):
        load_probe_object(path)
    assert not marker.exists()


def test_layouts_numpy_writes_are_read_exactly(tmp_path):
    f_order = np.asfortranarray(RNG.random((6, 8, 8)).astype(np.float32))
    big_endian = np.arange(6, dtype=">f8")
    path = tmp_path / "layouts.npz"
    _write_raw(path, diff3d=f_order, xcoords=big_endian)
    raw = RawData.from_file(path)
    np.testing.assert_array_equal(raw.diff3d, f_order)
    np.testing.assert_array_equal(raw.xcoords, big_endian)


def test_metadata_must_be_json(tmp_path):
    path = tmp_path / "meta.npz"
    _write_raw(path, _metadata=np.array("{not json"))
    with pytest.raises(
        ValueError, match=r"meta.npz: member '_metadata' is unreadable: not valid JSON"
    ):
        RawData.from_file(path)
    _write_raw(path, _metadata=np.array(json.dumps({"intensity_scale": "big"})))
    with pytest.raises(ValueError, match="meta.npz: _metadata intensity_scale must be"):
        RawData.from_file(path)


def test_load_probe_object_is_strict(tmp_path):
    path = tmp_path / "op.npz"
    np.savez(
        path, objectGuess=np.ones((20, 20), np.complex64), probeGuess=np.ones((8, 8), np.complex64)
    )
    _corrupt_member(path, "probeGuess")
    with pytest.raises(ValueError, match="member 'probeGuess' is unreadable"):
        load_probe_object(path)


# ---------------------------------------------------------------- class 12: seeds


def test_from_simulation_records_the_seed_it_drew():
    args = ([20.0, 25.5, 30.25], [20.0, 30.0, 22.0], get_default_probe(16), _lines())
    a = RawData.from_simulation(*args, nphotons=1e3)
    b = RawData.from_simulation(*args, nphotons=1e3)
    assert isinstance(a.metadata["seed"], int) and a.metadata["seed"] != b.metadata["seed"]
    again = RawData.from_simulation(*args, nphotons=1e3, seed=a.metadata["seed"])
    np.testing.assert_array_equal(again.diff3d, a.diff3d)
    assert RawData.from_simulation(*args, nphotons=1e3, poisson=False).metadata["seed"] is None


def test_generate_simulated_data_keeps_reference_positions_and_draws_fresh_noise():
    cfg, obj, probe = _config(n=20, nphotons=1e3), _lines(), get_default_probe(16)
    a = generate_simulated_data(cfg, obj, probe, 5.0, return_patches=False)
    b = generate_simulated_data(cfg, obj, probe, 5.0, return_patches=False)
    rs = np.random.RandomState(42)
    np.testing.assert_array_equal(a.xcoords, rs.uniform(5.0, 48 - 5.0, 20))
    np.testing.assert_array_equal(a.xcoords, b.xcoords)
    assert not np.array_equal(a.diff3d, b.diff3d)  # the reference's noise differs between calls
    assert a.metadata["position_seed"] == 42 and a.metadata["seed"] != b.metadata["seed"]
    replay = generate_simulated_data(
        cfg, obj, probe, 5.0, return_patches=False, seed=a.metadata["position_seed"],
        noise_seed=a.metadata["seed"],
    )  # fmt: skip
    np.testing.assert_array_equal(replay.diff3d, a.diff3d)
    # An explicit seed seeds positions and noise, as the CLI's --seed does.
    c = generate_simulated_data(cfg, obj, probe, 5.0, return_patches=False, seed=9)
    assert c.metadata["seed"] == 9 and c.metadata["position_seed"] == 9


def test_mk_simdata_and_grouping_record_their_seeds():
    kw = dict(N=16, gridsize=2, offset=4, nphotons=1e4, data_source="lines", jitter_scale=0.5)
    out = diffsim.mk_simdata(1, 48, get_default_probe(16), 16, dict_fmt=True, **kw)
    seeds = out["seeds"]
    again = diffsim.mk_simdata(
        1, 48, get_default_probe(16), 16, dict_fmt=True, seed=seeds["objects"], **kw
    )
    assert again["seeds"]["objects"] == seeds["objects"]
    np.testing.assert_array_equal(again["Y_I"], out["Y_I"])  # same objects and jitter
    d = _raw().generate_grouped_data(N=8, K=6, nsamples=10, gridsize=2)
    e = _raw().generate_grouped_data(N=8, K=6, nsamples=10, gridsize=2, seed=d["seed"])
    np.testing.assert_array_equal(d["nn_indices"], e["nn_indices"])
    s = _raw().generate_grouped_data(N=8, K=6, nsamples=10, gridsize=2, sequential_sampling=True)
    assert s["seed"] == 0  # the reference forces seed 0 for sequential sampling


def test_ptyfast_error_is_a_value_error():
    assert issubclass(PtyfastError, ValueError)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "value, ok",
    [
        (0.0, True),
        (-0.0, True),  # non-negative: left to the exact checks by the one-pass test
        (5e-45, True),  # a denormal (float32) / tiny normal (float64)
        (1e30, True),
        (-5e-45, False),
        (-1.0, False),
        (np.nan, False),
        (-np.nan, False),
        (np.inf, False),
        (-np.inf, False),
    ],
)
@pytest.mark.parametrize("layout", ["c", "strided"])
def test_finite_nonnegative_check_agrees_with_the_exact_definition(dtype, value, ok, layout):
    # as_array's one-pass bit test for finite, non-negative float arrays must accept and
    # refuse exactly what np.isfinite and >= 0 do, wherever the value sits.
    base = np.linspace(0.0, 3.0, 2 * 5 * 6).astype(dtype).reshape(2, 5, 6)
    for where in [(0, 0, 0), (1, 4, 5), (1, 2, 3)]:
        a = base.copy()
        a[where] = value
        if layout == "strided":
            a = np.stack([a, a], axis=-1)[..., 0]
        before = a.copy()
        want = bool(np.all(np.isfinite(a)) and np.all(a >= 0))
        assert want is ok
        if ok:
            out = _kernels.as_array("x", a, dtype, ndim=3, nonnegative=True)
            assert np.array_equal(out, a) and out.flags.c_contiguous
        else:
            with pytest.raises(ValueError, match="^x must be"):
                _kernels.as_array("x", a, dtype, ndim=3, nonnegative=True)
        assert np.array_equal(a, before, equal_nan=True)


def test_moduli_beyond_float32_are_named_not_given_a_zero_limit():
    huge = np.full((8, 8), 3e38 + 3e38j, np.complex64)  # finite parts, modulus beyond float32
    with pytest.raises(ValueError, match=r"moduli of the object or probe overflow") as info:
        _kernels.acquire(_OBJ, _POS, huge, seed=1)
    assert "at most" not in str(info.value)  # once: "at most scale = 0 fits"


@pytest.mark.skipif(np.finfo(np.longdouble).max <= 1e308, reason="no extended precision")
def test_values_beyond_float64_say_so():
    with pytest.raises(ValueError, match="got a value of magnitude beyond the float64 range"):
        _kernels.detect(np.full((1, 4, 4), np.longdouble("1e400")), seed=1)


def test_an_address_space_limit_lowers_the_memory_available():
    """Under ``ulimit -v`` (RLIMIT_AS) an output that the machine holds but the process may
    not map was a MemoryError from NumPy; it is now refused first, naming the limit."""
    code = (
        "import resource, numpy as np\n"
        "resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, 12 * 2**30))\n"
        "from ptyfast import _kernels as K\n"
        "print(K.available_memory()[1])\n"
        "try:\n"
        "    K.acquire(np.ones((32, 32)), np.broadcast_to(16.0, (2**26, 2)), np.ones((8, 8)))\n"
        "except ValueError as e:\n"
        "    print('refused', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "address-space limit RLIMIT_AS" or "MemAvailable" in lines[0]
    assert lines[1].startswith("refused positions: 67108864 patterns of 8 x 8 needs"), lines

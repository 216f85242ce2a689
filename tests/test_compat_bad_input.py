"""Bad input to the PtychoPINN-compatible layer: refused early, with the argument named.

Each test is one finding of an adversarial audit (hangs, raw MemoryError/NumPy messages,
truthy flags, silent NaN, wrong exception types); valid input is covered elsewhere
(test_ptychopinn_compat.py and friends check it bit for bit).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptyfast import config, diffsim, loader, params, probe
from ptyfast import nongrid_simulation as ng
from ptyfast.datagen import grf, lines, points
from ptyfast.raw_data import RawData


@pytest.fixture(autouse=True)
def _restore_params():
    with params.override():
        yield


def _raw_args(n: int = 4, N: int = 8):
    x = np.arange(n, dtype=np.float64) + 10
    return x, x.copy(), np.ones((n, N, N), np.float32), np.ones((N, N), np.complex64)


def _grouped(N: int = 8, n: int = 6):
    x, y, d, pg = _raw_args(n, N)
    raw = RawData.from_coords_without_pc(x, y, d, pg, np.zeros(n, int))
    return raw.generate_grouped_data(N, K=2, nsamples=n, gridsize=1, seed=0)


# ------------------------------------------------------------------ 1, 2: sizes and hangs


def test_mk_lines_img_huge_nlines_refused_at_once():
    with pytest.raises(ValueError, match="nlines"):
        diffsim.mk_lines_img(16, 10**12)


@pytest.mark.parametrize("N", [10**6, 10**9])
def test_mk_lines_img_huge_N_refused_by_memory(N):
    with pytest.raises(ValueError, match=f"N={N}"):
        diffsim.mk_lines_img(N)


def test_mk_grf_huge_N_refused_by_memory():
    with pytest.raises(ValueError, match="N=1000000"):
        grf.mk_grf(10**6)


def test_line_huge_segment_refused_by_memory():
    with pytest.raises(ValueError, match="line"):
        lines.line(0, 0, 10**12, 10**12)


def test_mk_points_huge_sigma_refused_by_memory():
    with pytest.raises(ValueError, match="sigma"):
        points.mk_points(16, sigma=1e300)


# ------------------------------------------------------------------ 3: flags


def test_mk_simdata_set_phi_must_be_bool():
    with pytest.raises(TypeError, match="set_phi"):
        diffsim.mk_simdata(
            1, 16, probe.get_default_probe(8), 4, N=8, gridsize=1, offset=4, nphotons=1e6,
            data_source="lines", seed=0, set_phi="no",
        )  # fmt: skip


def test_from_simulation_poisson_must_be_bool():
    x = np.array([20.0, 24.0])
    with pytest.raises(TypeError, match="poisson"):
        RawData.from_simulation(
            x, x, np.ones((8, 8)), np.ones((48, 48)), nphotons=1e6, poisson="no"
        )


def test_from_file_validate_config_must_be_bool(tmp_path):
    with pytest.raises(TypeError, match="validate_config"):
        RawData.from_file(tmp_path / "x.npz", validate_config="yes")


# ------------------------------------------------------------------ 4: probe size in load


def test_load_refuses_probe_of_other_N():
    g = _grouped(N=8)
    with pytest.raises(ValueError, match=r"probeGuess must be \(N, N\) = \(8, 8\)"):
        loader.load(lambda: g, np.ones((4, 4)), nphotons=1e6)
    assert len(loader.load(lambda: g, np.ones((8, 8)), nphotons=1e6)) == 6


# ------------------------------------------------------------------ 5: splits


@pytest.mark.parametrize("frac", [-0.5, 1.5, 10**23, math.nan, math.inf])
def test_split_data_fraction_range(frac):
    a = np.arange(10)
    with pytest.raises(ValueError, match="train_frac"):
        loader.split_data(a, a, a, frac, "train")


@pytest.mark.parametrize("frac", ["0.5", None, True])
def test_split_data_fraction_type(frac):
    a = np.arange(10)
    with pytest.raises(TypeError, match="train_frac"):
        loader.split_data(a, a, a, frac, "train")


@pytest.mark.parametrize("which", ["tarin", None, "TEST"])
def test_split_which(which):
    with pytest.raises(ValueError, match="which"):
        loader.split_tensor(list(range(10)), 0.5, which)
    a = np.arange(10)
    with pytest.raises(ValueError, match="which"):
        loader.split_data(a, a, a, 0.5, which)


def test_split_valid_unchanged():
    a = np.arange(10)
    assert loader.split_tensor(list(range(10)), 0.5, "train") == [0, 1, 2, 3, 4]
    assert loader.split_data(a, a, a, 0.75, "test")[0].tolist() == [7, 8, 9]
    assert loader.split_data(a, a, a, 0, "train")[0].tolist() == []


# ------------------------------------------------------------------ 6: non-finite values


def test_rawdata_refuses_nan_diff3d_and_y():
    x, y, d, pg = _raw_args()
    with pytest.raises(ValueError, match="diff3d"):
        RawData.from_coords_without_pc(x, y, np.full_like(d, np.nan), pg, np.zeros(4, int))
    with pytest.raises(ValueError, match="Y must be finite"):
        RawData(x, y, x, y, d, pg, np.zeros(4, int), Y=np.full((4, 8, 8), np.nan))
    with pytest.raises(ValueError, match="norm_Y_I"):
        RawData(x, y, x, y, d, pg, np.zeros(4, int), norm_Y_I=math.nan)


def test_lowpass_filter_refuses_nan_scale():
    with pytest.raises(ValueError, match="scale"):
        probe.get_lowpass_filter(float("nan"), 8)
    with pytest.raises(ValueError, match="scale"):
        probe.get_lowpass_filter(1e300, 8)  # every sample underflows: NaN window
    assert probe.get_lowpass_filter(0.7, 8).shape == (8,)


def test_position_jitter_overflow_refused():
    with pytest.raises(ValueError, match="jitter_scale"):
        diffsim.add_position_jitter(np.full((2, 2), 3e38, np.float32), 3e38, seed=0)


# ------------------------------------------------------------------ 7: datagen values


@pytest.mark.parametrize("pct", [1.5, -1, math.nan])
def test_points_pct_must_be_fraction(pct):
    with pytest.raises(ValueError, match="pct"):
        points.randones(8, pct)
    with pytest.raises(ValueError, match="pct"):
        points.mk_points(16, pct=pct)


def test_points_pct_type():
    with pytest.raises(TypeError, match="pct"):
        points.mk_points(16, pct="0.1")


def test_mk_rand_needs_positive_N():
    with pytest.raises(ValueError, match="N"):
        lines.mk_rand(0)
    with pytest.raises(TypeError, match="N"):
        lines.mk_rand(2.5)
    assert 0 <= lines.mk_rand(8, rng=0) < 8


@pytest.mark.parametrize("args", [(0, 0, 2.5, 3), (0, "1", 2, 3), (True, 0, 2, 3)])
def test_line_needs_integer_pixels(args):
    with pytest.raises(TypeError, match="integer pixel coordinate"):
        lines.line(*args)


def test_line_valid_unchanged():
    rr, cc = lines.line(np.int64(0), 0, 1, 3)
    assert rr.tolist() == [0, 0, 1, 1] and cc.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------ 8: 0-d amplitude


def test_observe_amplitude_needs_pattern_axis():
    with pytest.raises(ValueError, match="pattern axis"):
        diffsim.observe_amplitude(3.0, seed=0)
    assert diffsim.observe_amplitude([3.0], seed=0).shape == (1,)


# ------------------------------------------------------------------ 9, 10: numbers


@pytest.mark.parametrize(
    "call",
    [
        lambda: params.set("nphotons", 10**400),
        lambda: params.set("sim_jitter_scale", 10**400),
        lambda: config.ModelConfig(probe_scale=10**400),
        lambda: probe.get_default_probe(8, scale=10**400),
    ],
)
def test_huge_integers_are_value_errors(call):
    with pytest.raises(ValueError, match="too large"):
        call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: params.set("N", "64"), "N"),
        (lambda: params.set("gridsize", True), "gridsize"),
        (lambda: config.ModelConfig(object_big="no"), "object_big"),
        (lambda: probe.get_default_probe("8"), "N"),
        (lambda: params.set(5, 1), "key"),
    ],
)
def test_wrong_types_are_type_errors(call, name):
    with pytest.raises(TypeError, match=name):
        call()


# ------------------------------------------------------------------ 11: ragged lists


def test_ragged_lists_name_the_argument():
    x, y, d, pg = _raw_args()
    si = np.zeros(4, int)
    with pytest.raises(TypeError, match="xcoords"):
        RawData([1.0, [2.0, 3.0]], y, None, None, d, pg, si)
    with pytest.raises(TypeError, match="diff3d"):
        RawData(x, y, x, y, [[[1.0]], [[1.0, 2.0]]], pg, si)
    with pytest.raises(TypeError, match="norm_Y_I"):
        RawData(x, y, x, y, d, pg, si, norm_Y_I=[1.0, [2.0]])
    with pytest.raises(TypeError, match="probe"):
        probe.normalize_probe([[1, 2], [3]], probe_scale=4.0)
    with pytest.raises(TypeError, match="probe"):
        probe.set_probe([[1, 2], [3]])
    deep: list = [1.0]
    for _ in range(70):
        deep = [deep]
    with pytest.raises(TypeError, match="probe"):
        probe.normalize_probe(deep, probe_scale=4.0)


# ------------------------------------------------------------------ 12: seeds


@pytest.mark.parametrize(("seed", "exc"), [("x", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_position_jitter_seed_named(seed, exc):
    with pytest.raises(exc, match="seed"):
        diffsim.add_position_jitter(np.zeros((2, 2)), 1.0, seed=seed)


def test_position_jitter_valid_seeds_unchanged():
    c = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    for seed in ([3, 1], 7, np.random.default_rng(7)):
        rng = np.random.default_rng(7 if not isinstance(seed, list) else seed)
        normal = rng.standard_normal((4, 2)).astype(np.float32)
        want = (c + np.float32(1.5) * normal).astype(np.float32)
        assert np.array_equal(diffsim.add_position_jitter(c, 1.5, seed=seed), want)


# ------------------------------------------------------------------ 13: mk_simdata causes


def _simdata(**kw):
    return diffsim.mk_simdata(
        1, 16, probe.get_default_probe(8), 4, N=8, gridsize=1, offset=4, nphotons=1e6,
        data_source="lines", seed=0, **kw,
    )  # fmt: skip


def test_mk_simdata_non_positive_norm_names_its_cause():
    """Once "YY_I is zero at every grid patch" for a negative YY_I. Mixed signs still run,
    as in the reference (its norm, the mean of the regions' maxima, stays positive)."""
    with pytest.raises(ValueError, match=r"norm_Y_I, .* is -1\.0: YY_I is zero or negative"):
        _simdata(YY_I=-np.ones((1, 16, 16, 1)))
    mixed = np.ones((1, 16, 16, 1))
    mixed[:, ::2] = -1.0
    assert np.isfinite(_simdata(YY_I=mixed)[0]).all()


def test_mk_simdata_huge_jitter_named():
    with pytest.raises(ValueError, match="jitter_scale=1e\\+30 moves every patch off"):
        _simdata(jitter_scale=1e30)
    assert _simdata(jitter_scale=1.0)[0].shape == (25, 8, 8, 1)


# ------------------------------------------------------------------ 14: paths


@pytest.mark.parametrize(
    ("fn", "name"),
    [(RawData.from_file, "train_data_file_path"), (ng.load_probe_object, "file_path")],
)
def test_input_paths(tmp_path, fn, name):
    with pytest.raises(ValueError, match=f"{name} must name a file, got an empty path"):
        fn("")
    with pytest.raises(ValueError, match=f"{name} must name a file, got the directory"):
        fn(tmp_path)
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match=f"{name}: no such file") as info:
        fn(missing)
    assert str(missing) in str(info.value)

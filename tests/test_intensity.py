"""ptyfast.intensity: photon counts, dataset statistics and the intensity scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _loader_sim import install_params, normalize_data, simulate, to_channels
from hypothesis import given, settings
from hypothesis import strategies as st

from ptyfast import intensity
from ptyfast.intensity import (
    calculate_intensity_scale,
    compute_dataset_intensity_stats,
    count_photons,
    scale_nphotons,
)

CLOSED_64 = math.sqrt(1e9) / 32  # 988.2118


def test_closed_form_constant():
    assert CLOSED_64 == pytest.approx(988.2118, abs=1e-4)


# --------------------------------------------------------------------------- count_photons


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 8, 8, 4), (2, 6, 6, 2, 3)])
def test_count_photons_matches_numpy(shape):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    got = count_photons(x)
    assert got.shape == shape[:1] + shape[3:]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.sum(x.astype(np.float64) ** 2, axis=(1, 2)), rtol=1e-7)


def test_count_photons_dtype_follows_input():
    assert count_photons(np.ones((1, 4, 4))).dtype == np.float64
    assert count_photons(np.ones((1, 4, 4), np.uint16)).dtype == np.float64
    assert count_photons(np.full((1, 4, 4), 300, np.uint16))[0] == 16 * 300**2  # no overflow


def test_count_photons_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3-D"):
        count_photons(np.ones((4, 4)))
    with pytest.raises(TypeError, match="real"):
        count_photons(np.ones((1, 4, 4), np.complex64))


# --------------------------------------------------------------------------- scale_nphotons


def test_scale_nphotons_averages_batch_and_channels():
    x = np.random.default_rng(1).random((5, 16, 16, 4), dtype=np.float32)
    want = math.sqrt(1e6 / np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2))))
    got = scale_nphotons(x, nphotons=1e6)
    assert isinstance(got, np.float32)
    assert float(got) == pytest.approx(want, rel=1e-7)
    # channels are averaged, not summed: a flat (B·C, N, N) view gives the same scale
    flat = np.moveaxis(x, -1, 1).reshape(20, 16, 16)
    assert scale_nphotons(flat, nphotons=1e6) == got


def test_scale_nphotons_on_normalized_data_is_closed_form():
    X, *_ = simulate(8, 64, 1e9)
    for C in (1, 4):
        x_full = normalize_data(to_channels(X, C), 64)
        assert float(scale_nphotons(x_full, nphotons=1e9)) == pytest.approx(CLOSED_64, rel=1e-6)


def test_scale_nphotons_float64_input():
    assert isinstance(scale_nphotons(np.ones((2, 4, 4)), nphotons=64.0), np.float64)
    assert scale_nphotons(np.ones((2, 4, 4)), nphotons=64.0) == 2.0


def test_scale_nphotons_reads_params_default(monkeypatch):
    install_params(monkeypatch, 400.0)
    assert scale_nphotons(np.ones((2, 4, 4), np.float32)) == np.float32(5.0)


def test_scale_nphotons_errors():
    with pytest.raises(ValueError, match="zero energy"):
        scale_nphotons(np.zeros((2, 4, 4)), nphotons=1.0)
    with pytest.raises(ValueError, match="nphotons"):
        scale_nphotons(np.ones((2, 4, 4)), nphotons=-1.0)
    with pytest.raises(ValueError, match="empty"):
        scale_nphotons(np.ones((0, 4, 4)), nphotons=1.0)
    with pytest.raises(ValueError, match="finite"):
        scale_nphotons(np.full((2, 4, 4), np.inf), nphotons=1.0)


# --------------------------------------------------------------------------- statistics


def test_stats_dict_keys_and_values():
    X = np.full((10, 8, 8, 4), 0.5, np.float32)
    stats = compute_dataset_intensity_stats(X)
    assert stats == {
        "batch_mean_sum_intensity": 16.0,
        "n_samples": 10,
        "spec_reference": "specs/spec-ptycho-core.md §Normalization Invariants",
        "channel_reduction": "mean",
    }
    assert type(stats["batch_mean_sum_intensity"]) is float


def test_stats_channels_are_averaged():
    rng = np.random.default_rng(2)
    X = rng.random((6, 8, 8, 4), dtype=np.float32)
    e = compute_dataset_intensity_stats(X)["batch_mean_sum_intensity"]
    flat = np.moveaxis(X, -1, 1).reshape(24, 8, 8)
    assert compute_dataset_intensity_stats(flat)["batch_mean_sum_intensity"] == pytest.approx(
        e, rel=1e-14
    )
    assert e == pytest.approx(np.mean(np.sum(X.astype(np.float64) ** 2, axis=(1, 2))), rel=1e-14)


@pytest.mark.parametrize("shape", [(8, 8), (2, 8, 8, 1, 1)])
def test_stats_rank_errors(shape):
    with pytest.raises(ValueError, match=r"\(M, N, N\) or \(M, N, N, C\)"):
        compute_dataset_intensity_stats(np.ones(shape))


def test_stats_normalized_needs_scale():
    with pytest.raises(ValueError, match="intensity_scale must be provided"):
        compute_dataset_intensity_stats(np.ones((2, 4, 4)), is_normalized=True)
    with pytest.raises(ValueError, match="intensity_scale"):
        compute_dataset_intensity_stats(np.ones((2, 4, 4)), is_normalized=True, intensity_scale=0.0)


def test_stats_scale_ignored_unless_normalized():
    # as the reference: intensity_scale alone does not change the statistic
    a = compute_dataset_intensity_stats(np.ones((2, 4, 4)), intensity_scale=3.0)
    assert a["batch_mean_sum_intensity"] == 16.0


def test_stats_options_are_keyword_only():
    with pytest.raises(TypeError):
        compute_dataset_intensity_stats(np.ones((2, 4, 4)), True, 2.0)


def test_stats_bit_reproducible_across_layout_and_blocks(monkeypatch):
    X = np.random.default_rng(3).random((37, 16, 16, 4), dtype=np.float32) * 1e3
    ref = compute_dataset_intensity_stats(X)["batch_mean_sum_intensity"]
    assert compute_dataset_intensity_stats(np.asfortranarray(X))["batch_mean_sum_intensity"] == ref
    monkeypatch.setattr(intensity, "_BLOCK_ELEMENTS", 16 * 16 * 4 * 3)
    assert compute_dataset_intensity_stats(X)["batch_mean_sum_intensity"] == ref
    assert compute_dataset_intensity_stats(X[::-1])["batch_mean_sum_intensity"] == pytest.approx(
        ref, rel=1e-14
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 8, 8, 1), (3, 8, 8, 2)])
def test_no_input_modified(shape, dtype):
    X = np.random.default_rng(4).random(shape).astype(dtype)
    before = X.copy()
    compute_dataset_intensity_stats(X, intensity_scale=2.0, is_normalized=True)
    compute_dataset_intensity_stats(X)
    count_photons(X)
    scale_nphotons(X, nphotons=1.0)
    np.testing.assert_array_equal(X, before)


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e4),
    C=st.sampled_from([1, 4, 9]),
    seed=st.integers(0, 2**16),
)
def test_normalized_stats_keep_the_stored_energy_and_record_the_scale(scale, C, seed):
    X = np.random.default_rng(seed).random((4, 8, 8, C)) + 0.1
    raw = compute_dataset_intensity_stats(X)
    normed = compute_dataset_intensity_stats(X, intensity_scale=scale, is_normalized=True)
    assert normed["batch_mean_sum_intensity"] == raw["batch_mean_sum_intensity"]
    assert normed["intensity_scale"] == scale
    assert "intensity_scale" not in raw


# --------------------------------------------------------------------------- recovery of s


@pytest.mark.parametrize("gridsize", [1, 2])
def test_derived_scale_recovers_simulation_scale(gridsize):
    C = gridsize**2
    X, s, *_ = simulate(16, 32, 1e9)
    Xc = to_channels(X, C)
    raw = compute_dataset_intensity_stats(Xc, is_normalized=False)
    assert calculate_intensity_scale(raw, nphotons=1e9) == pytest.approx(s, rel=1e-6)
    # the guide's call for data normalised by s (X = A_obs / s)
    normed = compute_dataset_intensity_stats(Xc, intensity_scale=s, is_normalized=True)
    assert calculate_intensity_scale(normed, nphotons=1e9) == pytest.approx(s, rel=1e-6)
    # 3-D input of the same patterns gives the same scale
    flat = compute_dataset_intensity_stats(X)
    assert calculate_intensity_scale(flat, nphotons=1e9) == pytest.approx(s, rel=1e-6)
    # Why neither s² conversion is right for such data: dividing (the reference) gives s²,
    # multiplying gives 1 (the photon count is nphotons by construction).
    e = normed["batch_mean_sum_intensity"]
    assert math.sqrt(1e9 / (e / s**2)) == pytest.approx(s**2, rel=1e-6)
    assert math.sqrt(1e9 / (e * s**2)) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("gridsize", [1, 2])
@pytest.mark.parametrize("poisson", [False, True])
def test_derived_scale_recovers_mk_simdata_scale(gridsize, poisson):
    """mk_simdata's X passed as the guide does (its intensity_scale, is_normalized=True)."""
    from ptyfast.diffsim import mk_simdata
    from ptyfast.probe import get_default_probe

    d = mk_simdata(
        1,
        96,
        get_default_probe(32),
        8,
        dict_fmt=True,
        seed=3,
        poisson=poisson,
        N=32,
        gridsize=gridsize,
        offset=4,
        nphotons=1e7,
        data_source="lines",
    )
    X, s = d["X"], float(d["intensity_scale"])
    assert X.shape[-1] == gridsize**2
    stats = compute_dataset_intensity_stats(X, intensity_scale=s, is_normalized=True)
    # noise-free: exact up to float32 X; with noise: the total count of ~1e9 photons
    rel = 1e-5 if not poisson else 1e-3
    assert calculate_intensity_scale(stats, nphotons=1e7) == pytest.approx(s, rel=rel)
    raw = compute_dataset_intensity_stats(X)
    assert calculate_intensity_scale(raw, nphotons=1e7) == pytest.approx(s, rel=rel)


def test_derived_scale_with_poisson_noise_is_close():
    X, s, *_ = simulate(64, 32, 1e6, poisson=True)
    stats = compute_dataset_intensity_stats(to_channels(X, 4))
    assert calculate_intensity_scale(stats, nphotons=1e6) == pytest.approx(s, rel=1e-3)


@pytest.mark.parametrize("C", [1, 4])
def test_x_full_statistics_give_the_closed_form(C):
    X, s, *_ = simulate(16, 64, 1e9)
    x_full = normalize_data(to_channels(X, C), 64)
    stats = compute_dataset_intensity_stats(x_full)
    assert stats["batch_mean_sum_intensity"] == pytest.approx(32.0**2, rel=1e-6)
    assert calculate_intensity_scale(stats, nphotons=1e9) == pytest.approx(CLOSED_64, rel=1e-6)
    assert calculate_intensity_scale(stats, nphotons=1e9) != pytest.approx(s, rel=1e-2)


# ----------------------------------------------------------------------- calculate_intensity_scale


def test_calculate_closed_form_fallbacks():
    assert calculate_intensity_scale(None, nphotons=1e9, N=64) == pytest.approx(
        CLOSED_64, rel=1e-15
    )
    tiny = {"batch_mean_sum_intensity": 1e-13}
    assert calculate_intensity_scale(tiny, nphotons=1e9, N=64) == pytest.approx(
        CLOSED_64, rel=1e-15
    )
    assert calculate_intensity_scale({}, nphotons=1e9, N=64) == pytest.approx(CLOSED_64, rel=1e-15)
    with pytest.raises(ValueError, match="N is required"):
        calculate_intensity_scale(tiny, nphotons=1e9)
    with pytest.raises(TypeError, match="container_or_stats"):
        calculate_intensity_scale(3.0, nphotons=1e9)


def test_calculate_reads_params_default(monkeypatch):
    install_params(monkeypatch, 1e9)
    assert calculate_intensity_scale(None, N=64) == pytest.approx(CLOSED_64)
    assert calculate_intensity_scale({"batch_mean_sum_intensity": 1e9 / 4}) == pytest.approx(2.0)


def test_calculate_from_tf_tensor_statistics():
    tf = pytest.importorskip("tensorflow")
    X, s, *_ = simulate(8, 32, 1e9)
    stats = compute_dataset_intensity_stats(tf.convert_to_tensor(to_channels(X, 4)))
    assert calculate_intensity_scale(stats, nphotons=1e9) == pytest.approx(s, rel=1e-6)
    assert scale_nphotons(tf.constant(X), nphotons=1e9) == scale_nphotons(X, nphotons=1e9)
    np.testing.assert_array_equal(count_photons(tf.constant(X)), count_photons(X))


def test_simulation_scale_beyond_float32_is_refused():
    # sqrt(1e18 / 1e-60) = 1e39 would round to inf in float32.
    with pytest.raises(ValueError, match=r"nphotons = 1e\+18 .* s = .* = 1e\+39, beyond float32"):
        intensity.simulation_scale(np.array([1e-60, 1e-60]), 1e18)
    # Just inside float32 the scale is the float32 rounding of the float64 one.
    s = intensity.simulation_scale(np.array([1e-60]), 1e16)
    assert s == np.float32(1e38) and np.isfinite(s)

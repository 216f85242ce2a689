"""Nongrid simulation: reference positions, physics against NumPy, errors, no global state."""

import numpy as np
import pytest
from _reference import bilinear_patches, far_field

from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.nongrid_simulation import (
    generate_simulated_data,
    load_probe_object,
    random_positions,
    simulate_from_npz,
)
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData


def _obj(H=100, W=120, seed=0):
    rng = np.random.default_rng(seed)
    return (1 + rng.random((H, W)) * np.exp(1j * rng.random((H, W)))).astype(np.complex64)


def _config(n=50, N=32, nphotons=1e6, gridsize=1):
    return TrainingConfig(model=ModelConfig(N=N, gridsize=gridsize), n_groups=n, nphotons=nphotons)


def test_positions_are_the_reference_draws_and_global_state_untouched():
    state = np.random.get_state()
    obj, probe = _obj(), get_default_probe(32)
    raw, Y = generate_simulated_data(_config(), obj, probe, buffer=20.0)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3], strict=True))
    rs = np.random.RandomState(42)  # the reference seeds the global RNG with 42
    np.testing.assert_array_equal(raw.xcoords, rs.uniform(20.0, 120 - 20.0, 50))  # x first
    np.testing.assert_array_equal(raw.ycoords, rs.uniform(20.0, 100 - 20.0, 50))
    assert raw.xcoords.dtype == np.float64
    assert raw.scan_index.dtype == np.int64 and not raw.scan_index.any()
    assert Y is raw.Y and Y.shape == (50, 32, 32, 1) and Y.dtype == np.complex64


def test_buffer_is_clamped_like_the_reference():
    x, y, buf = random_positions(1000, 40, 60, 100.0, seed=1)
    assert buf == 40 / 2 - 1
    assert x.min() >= buf and x.max() < 60 - buf and y.min() >= buf and y.max() < 40 - buf


def test_noise_free_amplitudes_match_numpy():
    obj, probe = _obj(), get_default_probe(32).astype(np.complex64)
    raw = generate_simulated_data(
        _config(n=30), obj, probe, 16.0, return_patches=False, poisson=False
    )
    assert isinstance(raw, RawData)
    patches = bilinear_patches(obj, np.column_stack([raw.xcoords, raw.ycoords]), 32)
    expected = far_field(patches * probe)
    np.testing.assert_allclose(raw.diff3d, expected, atol=2e-5 * expected.max())
    energy = np.sum(np.abs(patches * probe) ** 2, axis=(1, 2))
    assert raw.intensity_scale == pytest.approx(np.sqrt(1e6 / energy.mean()), rel=1e-5)


def test_same_seed_same_data_different_seed_different():
    obj, probe = _obj(), get_default_probe(32)
    a = generate_simulated_data(_config(), obj, probe, 20.0, return_patches=False, seed=5)
    b = generate_simulated_data(_config(), obj, probe, 20.0, return_patches=False, seed=5)
    c = generate_simulated_data(_config(), obj, probe, 20.0, return_patches=False, seed=6)
    np.testing.assert_array_equal(a.diff3d, b.diff3d)
    assert not np.array_equal(a.diff3d, c.diff3d)
    assert not np.array_equal(a.xcoords, c.xcoords)


def test_gridsize_above_one_is_supported():
    raw, _ = generate_simulated_data(_config(gridsize=2), _obj(), get_default_probe(32), 20.0)
    grouped = raw.generate_grouped_data(32, K=6, nsamples=10, gridsize=2, seed=1)
    assert grouped["diffraction"].shape == (10, 32, 32, 4)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(probeGuess=np.ones((16, 16))), ValueError, "config.model.N"),
        (dict(objectGuess=np.ones((3, 100, 100))), ValueError, "objectGuess"),
        (dict(objectGuess=np.full((100, 100), np.nan)), ValueError, "finite"),
        (dict(buffer=-1.0), ValueError, "buffer"),
        (dict(objectGuess=np.ones((1, 1), np.complex64)), ValueError, "no room"),
    ],
)
def test_errors_name_the_argument(kwargs, exc, match):
    args = dict(config=_config(), objectGuess=_obj(), probeGuess=get_default_probe(32), buffer=10.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        generate_simulated_data(**args)


def test_missing_counts_rejected():
    cfg = _config()
    cfg.n_groups = None
    cfg.n_images = None
    with pytest.raises(ValueError, match="n_groups"):
        generate_simulated_data(cfg, _obj(), get_default_probe(32), 10.0)


def test_simulate_from_npz_and_load_probe_object(tmp_path):
    obj, probe = _obj(), get_default_probe(32).astype(np.complex64)
    path = tmp_path / "op.npz"
    np.savez(path, objectGuess=obj, probeGuess=probe)
    o, p = load_probe_object(path)
    np.testing.assert_array_equal(o, obj)
    raw = simulate_from_npz(_config(n=10), path, return_patches=False, seed=4)
    direct = generate_simulated_data(
        _config(n=10), obj, probe, min(obj.shape) * 0.35, return_patches=False, seed=4
    )
    np.testing.assert_array_equal(raw.diff3d, direct.diff3d)
    bad = tmp_path / "bad.npz"
    np.savez(bad, objectGuess=np.abs(obj), probeGuess=probe)
    with pytest.raises(ValueError, match="complex"):
        load_probe_object(bad)
    np.savez(bad, objectGuess=obj)
    with pytest.raises(ValueError, match="probeGuess"):
        load_probe_object(bad)

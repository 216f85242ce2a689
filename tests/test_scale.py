"""One machine (issue 13): statistics out of the simulation pass, caller-provided buffers.

The per-pattern energies come out of the same parallel pass that writes the patterns; they are
checked here against NumPy's own reduction of the written output, bit for bit, and the scale
derived from them against ``intensity.scale_nphotons`` of that output.
"""

from __future__ import annotations

import numpy as np
import pytest

from ptyfast import _kernels
from ptyfast.intensity import scale_nphotons


def _inputs(m: int = 40, n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    obj = (rng.uniform(0.5, 1.0, (64, 72)) * np.exp(1j * rng.uniform(-1, 1, (64, 72)))).astype(
        np.complex64
    )
    pos = np.column_stack([rng.uniform(8, 60, m), rng.uniform(8, 52, m)])
    yy, xx = np.mgrid[:n, :n] - n / 2
    probe = np.exp(-(xx**2 + yy**2) / (0.1 * n * n)).astype(np.complex64)
    return obj, pos, probe


@pytest.mark.parametrize("n", [8, 16, 33])
@pytest.mark.parametrize("poisson", [False, True])
def test_energies_equal_numpys_reduction_of_the_written_patterns(n, poisson):
    obj, pos, probe = _inputs(n=n)
    kw = dict(scale=37.0, poisson=poisson, seed=3, divide_by_scale=True)
    plain, _ = _kernels.simulate(obj, pos, probe, **kw)
    amps, patches, energies = _kernels.simulate(
        obj, pos, probe, return_energies=True, return_patches=True, **kw
    )
    np.testing.assert_array_equal(amps, plain)
    want = (amps.astype(np.float64) ** 2).reshape(len(pos), -1).sum(axis=1)
    np.testing.assert_array_equal(energies, want)
    # The scale PtychoPINN records as norm_Y_I, from M numbers instead of the whole output.
    assert np.float32(np.sqrt(1e6 / np.mean(energies))) == scale_nphotons(amps, nphotons=1e6)
    np.testing.assert_array_equal(patches, _kernels.extract_patches(obj, pos, n), strict=True)


def test_out_buffers_reused_give_the_bits_of_fresh_outputs():
    obj, pos, probe = _inputs()
    kw = dict(scale=5.0, poisson=True, seed=11, divide_by_scale=True, return_patches=True)
    fresh = _kernels.simulate(obj, pos, probe, **kw)
    out = np.full((40, 16, 16), np.nan, np.float32)
    out_p = np.full((40, 16, 16), np.nan, np.complex64)
    out_e = np.full(40, np.nan)
    for _ in range(2):  # the second call overwrites the first one's results
        a, p, e = _kernels.simulate(
            obj, pos, probe, out=out, out_patches=out_p, out_energies=out_e, **kw
        )
        assert a is out and p is out_p and e is out_e
        np.testing.assert_array_equal(out, fresh[0])
        np.testing.assert_array_equal(out_p, fresh[1])
    # Chunks of one dataset into slices of one buffer, each at its first_index.
    whole = np.empty_like(out)
    for a0, b0 in [(0, 7), (7, 30), (30, 40)]:
        _kernels.simulate(
            obj,
            pos[a0:b0],
            probe,
            out=whole[a0:b0],
            first_index=a0,
            **kw | {"return_patches": False},
        )
    np.testing.assert_array_equal(whole, fresh[0])


def test_out_buffers_are_checked_before_any_work():
    obj, pos, probe = _inputs()
    good = np.zeros((40, 16, 16), np.float32)
    bad = {
        "out": [
            np.zeros((40, 16, 16), np.float64),
            np.zeros((39, 16, 16), np.float32),
            np.zeros((40, 16, 32), np.float32)[:, :, ::2],
            np.zeros((40, 16, 16), np.float32).copy(),
        ],
        "out_energies": [np.zeros(41), np.zeros(40, np.float32)],
    }
    bad["out"][3].flags.writeable = False
    for name, arrays in bad.items():
        for a in arrays:
            before = a.copy()
            with pytest.raises(ValueError, match=name):
                _kernels.simulate(obj, pos, probe, **{name: a})
            np.testing.assert_array_equal(a, before)
    with pytest.raises(ValueError, match="out_patches must be"):
        _kernels.simulate(obj, pos, probe, out=good, out_patches=np.zeros((40, 16, 16)))
    with pytest.raises(TypeError, match="out must be"):
        _kernels.simulate(obj, pos, probe, out=[[0.0]])
    with pytest.raises(ValueError, match="share memory"):
        _kernels.simulate(
            obj, pos, probe, out=good, out_energies=good.reshape(-1)[:80].view(np.float64)
        )


def test_energies_mark_non_finite_patterns():
    # The kernel itself (below the validating layer, which refuses NaN input): a NaN in the
    # object reaches only the patterns whose patch covers it, and only their energies.
    from ptyfast import _core

    obj, pos, probe = _inputs(m=6)
    obj = obj.copy()
    obj[40, 40] = np.nan
    pos[0] = (40.0, 40.0)  # covers the NaN
    pos[1:] = (12.0, 12.0)  # far from it
    amps = np.empty((6, 16, 16), np.float32)
    e = np.empty(6)
    _core.simulate_into(obj, pos, probe, np.float32(2.0), None, 0, False, amps, None, e)
    assert np.isnan(e[0]) and np.isnan(amps[0]).any()
    assert np.all(np.isfinite(e[1:])) and np.all(np.isfinite(amps[1:]))


def test_from_simulation_norm_and_reused_buffers():
    from ptyfast.raw_data import RawData

    obj, pos, probe = _inputs(m=30)
    x, y = pos[:, 0], pos[:, 1]
    raw = RawData.from_simulation(x, y, probe, obj, nphotons=1e5, seed=4)
    assert raw.norm_Y_I == scale_nphotons(raw.diff3d, nphotons=1e5)
    assert raw.norm_Y_I.dtype == np.float32
    again = RawData.from_simulation(x, y, probe, obj, nphotons=1e5, seed=4, out=raw)
    assert again.diff3d is raw.diff3d and np.shares_memory(again.Y, raw.Y)
    fresh = RawData.from_simulation(x, y, probe, obj, nphotons=1e5, seed=4)
    np.testing.assert_array_equal(again.diff3d, fresh.diff3d, strict=True)
    np.testing.assert_array_equal(again.Y, fresh.Y, strict=True)
    assert again.norm_Y_I == fresh.norm_Y_I and again.intensity_scale == fresh.intensity_scale
    other = RawData.from_simulation(x[:5], y[:5], probe, obj, nphotons=1e5, seed=4)
    with pytest.raises(ValueError, match="out must be a RawData of 30 patterns"):
        RawData.from_simulation(x, y, probe, obj, nphotons=1e5, seed=4, out=other)
    with pytest.raises(TypeError, match="out must be a RawData"):
        RawData.from_simulation(x, y, probe, obj, nphotons=1e5, seed=4, out=raw.diff3d)


def test_generate_simulated_data_reuses_buffers():
    from ptyfast.config import ModelConfig, TrainingConfig
    from ptyfast.nongrid_simulation import generate_simulated_data

    obj, _, probe = _inputs()
    config = TrainingConfig(model=ModelConfig(N=16), n_groups=50, nphotons=1e6)
    first, y1 = generate_simulated_data(config, obj, probe, 10.0, seed=3)
    want = (first.diff3d.copy(), y1.copy(), first.norm_Y_I)
    second, y2 = generate_simulated_data(config, obj, probe, 10.0, seed=3, out=first)
    assert second.diff3d is first.diff3d
    np.testing.assert_array_equal(second.diff3d, want[0], strict=True)
    np.testing.assert_array_equal(y2, want[1], strict=True)
    assert second.norm_Y_I == want[2] == scale_nphotons(second.diff3d, nphotons=1e6)


def test_scale_from_energies_errors_as_scale_nphotons():
    from ptyfast.intensity import scale_from_energies

    with pytest.raises(ValueError, match="zero energy"):
        scale_from_energies(np.zeros(3), nphotons=1e6)
    with pytest.raises(ValueError, match="finite"):
        scale_from_energies(np.array([1.0, np.nan]), nphotons=1e6)
    with pytest.raises(ValueError, match="zero energy"):
        scale_nphotons(np.zeros((3, 4, 4), np.float32), nphotons=1e6)


def test_model_simulate_into_reused_buffers():
    import ptyfast
    from ptyfast import objects, probes, scans

    e = ptyfast.Experiment(
        objects.dead_leaves(64, seed=1),
        probes.gaussian(16, 3.0),
        scans.fermat_spiral(40, 2.0),
        ptyfast.Detector(dtype="uint16"),
        1e4,
    )
    ref = ptyfast.simulate(e, seed=5, patches=True)
    buf = np.full((40, 16, 16), 7, np.uint16)
    pbuf = np.zeros((40, 16, 16), np.complex64)
    ds = ptyfast.simulate(e, seed=5, patches=True, out=buf, out_patches=pbuf, chunk_size=7)
    assert ds.diffraction is buf and ds.patches is pbuf
    np.testing.assert_array_equal(buf, ref.diffraction, strict=True)
    np.testing.assert_array_equal(pbuf, ref.patches, strict=True)
    with pytest.raises(ValueError, match="out must be"):
        ptyfast.simulate(e, seed=5, out=np.zeros((40, 16, 16), np.float32))
    with pytest.raises(ValueError, match="out_patches must be None"):
        ptyfast.simulate(e, seed=5, out_patches=pbuf)

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

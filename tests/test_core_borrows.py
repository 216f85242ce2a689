"""The binding never panics on an array it cannot borrow.

``ptyfast._kernels`` refuses read-only outputs and overlapping buffers before it calls into
``ptyfast._core``. The binding must not panic either when called directly (or by two threads
sharing an array): rust-numpy's own argument extraction panics (``PanicException``) on a
read-only array passed where the kernel writes, or on two arguments that share memory. Every
``_core`` function with a writeable argument is called here with both, and must raise a
``ValueError`` whose note names the argument, leaving the arrays untouched.
"""

import numpy as np
import pytest

from ptyfast import _core, _kernels

N = 8
OBJ = np.ones((32, 32), np.complex64)
POS = np.full((2, 2), 12.0)
PROBE = np.ones((N, N), np.complex64)
LEAF = np.array([1.0])


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _det():
    return _kernels._core_detector(_kernels.detector_settings(None, N))


def _calls():
    """(name, the argument expected to be refused, call) for each way to get it wrong."""
    amps = np.zeros((2, N, N), np.float32)
    grid_re = np.zeros((1, N, N, 4), np.float32)
    img = np.ones((1, 32, 32), np.complex64)
    gpos = np.full((4, 2), 12.0)
    out = np.zeros((N, N))
    unc = np.ones((N, N), bool)
    det, pixels = _det()
    expected = np.full((2, N, N), 3.0)
    readings = np.zeros((2, N, N), np.float32)
    yield (
        "simulate_into read-only output",
        "amplitudes",
        lambda: _core.simulate_into(
            OBJ, POS, PROBE, np.float32(1), None, 0, False, _readonly(amps), None, None
        ),
    )
    yield (
        "simulate_into energies inside amplitudes",
        "energies",
        lambda: _core.simulate_into(
            OBJ, POS, PROBE, np.float32(1), None, 0, False, amps, None,
            amps.reshape(-1).view(np.float64)[:2],
        ),
    )
    yield (
        "extract_grid_patches_into read-only output",
        "out_re",
        lambda: _core.extract_grid_patches_into(OBJ, gpos, _readonly(grid_re), None),
    )
    yield (
        "extract_grid_patches_into both outputs one array",
        "out_im",
        lambda: _core.extract_grid_patches_into(OBJ, gpos, grid_re, grid_re),
    )
    yield (
        "illuminate_groups read-only amplitude",
        "amplitude",
        lambda: _core.illuminate_groups(_readonly(grid_re), None, PROBE, 1.0, None, 0),
    )
    yield (
        "illuminate_groups phase is the amplitude",
        "phase",
        lambda: _core.illuminate_groups(grid_re, grid_re, PROBE, 1.0, None, 0),
    )
    yield (
        "simulate_grid read-only X",
        "x",
        lambda: _core.simulate_grid(
            img, gpos, PROBE, np.float32(1), np.float32(1), None, 0,
            _readonly(grid_re), np.zeros_like(grid_re),
        ),
    )
    yield (
        "simulate_grid Y_I is X",
        "amplitude",
        lambda: _core.simulate_grid(
            img, gpos, PROBE, np.float32(1), np.float32(1), None, 0, grid_re, grid_re
        ),
    )
    yield (
        "acquire stats inside the readings",
        "stats",
        lambda: _core.acquire(
            OBJ, POS, PROBE[None], np.float32(1), 1, 0, det, pixels, readings, None,
            readings.reshape(-1).view(np.float64)[:8].reshape(2, 4),
        ),
    )
    yield (
        "detect read-only readings",
        "readings",
        lambda: _core.detect(expected, 1, 0, det, pixels, _readonly(readings), None),
    )
    yield (
        "detect expected inside the stats",
        "stats",
        lambda: _core.detect(
            expected, 1, 0, det, pixels, readings, expected.reshape(-1)[:8].reshape(2, 4)
        ),
    )
    yield (
        "paint_leaves read-only image",
        "out",
        lambda: _core.paint_leaves(_readonly(out), unc, LEAF, LEAF, LEAF, LEAF, 1),
    )
    yield (
        "paint_leaves leaf inside the image",
        "cx",
        lambda: _core.paint_leaves(out, unc, out.reshape(-1)[:1], LEAF, LEAF, LEAF, 1),
    )


CASES = list(_calls())


@pytest.mark.parametrize("name,arg,call", CASES, ids=[c[0] for c in CASES])
def test_unborrowable_array_is_a_value_error_naming_it(name, arg, call):
    with pytest.raises(ValueError, match="read-only|shares memory") as info:
        call()
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert f"'{arg}'" in notes, (name, notes)


def test_refused_call_leaves_its_arrays_untouched():
    amps = np.full((2, N, N), 7.0, np.float32)
    energies = amps.reshape(-1).view(np.float64)[:2]
    before = amps.copy()
    with pytest.raises(ValueError):
        _core.simulate_into(OBJ, POS, PROBE, np.float32(1), None, 0, False, amps, None, energies)
    np.testing.assert_array_equal(amps, before)


def test_the_same_arrays_work_when_they_can_be_borrowed():
    # The refusals above are about the borrow, not the arguments: the same call succeeds
    # with separate, writeable buffers.
    amps = np.zeros((2, N, N), np.float32)
    energies = np.zeros(2)
    _core.simulate_into(OBJ, POS, PROBE, np.float32(1), None, 0, False, amps, None, energies)
    assert amps.max() > 0 and np.all(energies > 0)

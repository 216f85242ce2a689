"""The binding ``ptyfast._core`` never panics or aborts, whatever it is called with.

Borrows. ``ptyfast._kernels`` refuses read-only outputs and overlapping buffers before it calls into
``ptyfast._core``. The binding must not panic either when called directly (or by two threads
sharing an array): rust-numpy's own argument extraction panics (``PanicException``) on a
read-only array passed where the kernel writes, or on two arguments that share memory. Every
``_core`` function with a writeable argument is called here with both, and must raise a
``ValueError`` whose note names the argument (Python >= 3.11; older exceptions take no
notes), leaving the arrays untouched.

Everything else. A mutation fuzz calls every ``_core`` function with a valid template whose
arguments are replaced, one at a time, by wrong shapes (empty, size 1, extra or missing axes,
strided views), non-finite or huge values and extreme integers (up to ``2**64 - 1``): each call
either works or raises ``ValueError``/``TypeError``/``OverflowError`` (a ``PanicException``
is a ``BaseException`` and fails the test; an abort kills the run). This found the legacy
generator's test hooks aborting on a size that cannot be allocated.
"""

import sys

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
            OBJ,
            POS,
            PROBE,
            np.float32(1),
            None,
            0,
            False,
            amps,
            None,
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
        "illuminate_groups read-only out",
        "out",
        lambda: _core.illuminate_groups(grid_re, None, PROBE, 1.0, None, 0, _readonly(grid_re)),
    )
    yield (
        "illuminate_groups out is the amplitude",
        "out",
        lambda: _core.illuminate_groups(grid_re, None, PROBE, 1.0, None, 0, grid_re),
    )
    yield (
        "simulate_grid read-only X",
        "x",
        lambda: _core.simulate_grid(
            img,
            gpos,
            PROBE,
            np.float32(1),
            np.float32(1),
            None,
            0,
            _readonly(grid_re),
            np.zeros_like(grid_re),
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
            OBJ,
            POS,
            PROBE[None],
            np.float32(1),
            1,
            0,
            det,
            pixels,
            readings,
            None,
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
    with pytest.raises(ValueError, match="read-only|shares memory|writeable") as info:
        call()
    # The argument is named by the message (an array borrowed in the body), or by the note
    # PyO3 adds to a failed argument (Python >= 3.11: older exceptions take no notes).
    said = " ".join([str(info.value), *getattr(info.value, "__notes__", [])])
    if sys.version_info >= (3, 11) or said.startswith(f"{arg} "):
        assert f"'{arg}'" in said or said.startswith(f"{arg} "), (name, said)


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


# ------------------------------------------------------------------ mutation fuzz of _core

C64, F32, F64, I64 = np.complex64, np.float32, np.float64, np.int64


def _full(shape, dtype, fill=1.0):
    return np.full(shape, fill, dtype)


def _templates():
    """A valid call of every ``_core`` function (fresh arrays on every call)."""
    det, pixels = _det()
    r = np.random.default_rng(0)
    obj, pos, probe = _full((32, 32), C64), _full((3, 2), F64, 12.0), _full((N, N), C64)
    gpos, grid = _full((4, 2), F64, 12.0), lambda: _full((1, N, N, 4), F32, 0.0)
    return {
        "extract_patches": lambda: [obj, pos, N],
        "diffract": lambda: [_full((3, N, N), C64), probe, 1.0],
        "poisson_amplitudes": lambda: [_full((3, N, N), F32, 2.0), 1, 0, "v2"],
        "poisson_counts": lambda: [_full((10,), F64, 3.0), 1, 0, "v1"],
        "illuminated_energy": lambda: [obj, pos, probe],
        "simulate": lambda: [obj, pos, probe, 1.0, 1, 0, False, True],
        "simulate_into": lambda: [
            obj, pos, probe, 1.0, 1, 0, False,
            _full((3, N, N), F32, 0), _full((3, N, N), C64, 0), _full((3,), F64, 0),
        ],
        "acquire": lambda: [
            obj, pos, probe[None], 1.0, 1, 0, dict(det), pixels,
            _full((3, N, N), F32, 0), None, _full((3, 5), F64, 0),
        ],
        "detect": lambda: [
            _full((3, N, N), F64, 3.0), 1, 0, dict(det), pixels,
            _full((3, N, N), F32, 0), _full((3, 5), F64, 0),
        ],
        "knn": lambda: [r.random((20, 2)), r.random((5, 2)), 3],
        "sample_then_group": lambda: [r.random(20), r.random(20), 5, 4, 2, 1, None],
        "oversample_groups": lambda: [r.random(20), r.random(20), 5, 4, 2, 1, None],
        "gather_groups": lambda: [_full((5, N, N), F32), _full((3, 2), I64, 1)],
        "gather_groups_scaled": lambda: [_full((5, N, N), F32), _full((3, 2), I64, 1), 2.0],
        "gather_groups_normalized": lambda: [_full((5, N, N), F32), _full((3, 2), I64, 1), 2.0],
        "gather_groups_complex": lambda: [_full((5, N, N), C64), _full((3, 2), I64, 1)],
        "pattern_energies": lambda: [_full((5, N, N), F32)],
        "legacy_permutation": lambda: [1, 10],
        "legacy_choice": lambda: [1, 10, 3, False],
        "legacy_uniform": lambda: [1, 10],
        "legacy_raw": lambda: [1, 10],
        "paint_leaves": lambda: [
            _full((N, N), F64, 0), _full((N, N), bool, True), _full((2,), F64, 3),
            _full((2,), F64, 3), _full((2,), F64, 2), _full((2,), F64, 0.5), N * N,
        ],
        "extract_grid_patches": lambda: [obj, gpos, N, 4],
        "extract_grid_patches_into": lambda: [obj, gpos, grid(), grid()],
        "illuminate_groups": lambda: [grid() + 1, grid() + 1, probe, 1.0, 1, 0, None],
        "channel_energies": lambda: [grid() + 1, probe],
        "grid_maxima": lambda: [obj[None], gpos, N, 4],
        "grid_energies": lambda: [obj[None], gpos, N, 4, probe, 1.0],
        "simulate_grid": lambda: [
            obj[None], gpos, probe, 1.0, 1.0, 1, 0, grid(), grid(), grid(),
            _full((4, N, N, 1), F32, 0), _full((4, N, N, 1), F32, 0),
        ],
    }  # fmt: skip


# Counts from 2**47 up cannot be allocated anywhere: 2**47 bytes fill a 64-bit process's
# whole address space, so the allocation fails even where the kernel overcommits memory
# (smaller huge counts could be mapped there, then filled until the machine runs out).
SCALARS = [0, 1, 2, 3, 7, 2**47, 2**62, 2**64 - 1, -1, -7, -(2**47), -(2**62)]
SCALARS += [0.0, -0.0, 1e-300, 1e30, 3e38, 1e300, float("nan"), float("inf"), -1.0]


def _array_mutants(a):
    out = []
    for ax in range(a.ndim):
        for size in (0, 1, 2, 3, 5, 33):
            shape = list(a.shape)
            shape[ax] = size
            out.append(np.full(shape, a.flat[0], a.dtype))
    out += [a.reshape(-1), a[None]]
    if a.ndim >= 2:
        out += [np.ascontiguousarray(a.swapaxes(0, 1)), a.swapaxes(0, 1)]
    if a.shape[0] > 1:
        out.append(a[::2])
    if a.dtype.kind in "fc":
        out += [np.full(a.shape, v, a.dtype) for v in (np.nan, np.inf, -1.0, 1e30, 0.0, 3e38)]
    if a.dtype.kind == "i":
        out += [np.full(a.shape, v, a.dtype) for v in (-1, 10**6, 2**62, -(2**62))]
    return out


TEMPLATES = _templates()


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_core_function_never_panics(name):
    fn = getattr(_core, name)
    make = TEMPLATES[name]
    fn(*make())  # the template itself is a valid call
    refused = 0
    for i, arg in enumerate(make()):
        if isinstance(arg, np.ndarray):
            mutants = _array_mutants(arg)
        elif isinstance(arg, bool):
            mutants = [not arg]
        elif isinstance(arg, int | float):
            mutants = SCALARS
        else:
            continue
        for m in mutants:
            args = make()
            args[i] = m
            try:
                fn(*args)
            except (ValueError, TypeError, OverflowError):
                refused += 1
    assert refused > 0  # the fuzz reached the refusals, not only valid calls

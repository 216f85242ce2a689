"""Argument checks of the detector presets and of ``Dataset`` (tidy-up audit, 2026-12-03).

A preset argument of the wrong type is a ``TypeError`` naming it (``generation=True`` was a
``ValueError``, as if ``True`` were an unknown generation); it stays a ``ValueError`` as well,
which callers caught before. A wrong value is a ``ValueError`` as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from ptyfast import Dataset, Detector


@pytest.mark.parametrize(
    ("call", "name", "got"),
    [
        (lambda: Detector.eiger(generation=True), "generation", "bool True"),
        (lambda: Detector.eiger(generation=False), "generation", "bool False"),
        (lambda: Detector.eiger(generation=2.0), "generation", "float 2.0"),
        (lambda: Detector.eiger(generation="2"), "generation", "str '2'"),
        (lambda: Detector.eiger(4), "size", "int 4"),
        (lambda: Detector.eiger(size=True), "size", "bool True"),
        (lambda: Detector.pilatus(1), "size", "int 1"),
        (lambda: Detector.pilatus(size=None), "size", "NoneType None"),
        (lambda: Detector.preset(True), "name", "bool True"),
        (lambda: Detector.preset(np.array(["eiger"])), "name", "ndarray"),
        (lambda: Detector.preset("eiger", generation=True), "generation", "bool True"),
    ],
)
def test_a_preset_argument_of_the_wrong_type_is_a_type_error_naming_it(call, name, got):
    with pytest.raises(TypeError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{name} must be ") and got in message, message
    assert isinstance(info.value, ValueError)  # what it was: `except ValueError` still works


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: Detector.eiger(generation=3), "generation"),
        (lambda: Detector.eiger(generation=0), "generation"),
        (lambda: Detector.eiger("5M"), "size"),
        (lambda: Detector.pilatus("4M"), "size"),
        (lambda: Detector.preset("medipix"), "name"),
    ],
)
def test_a_preset_argument_of_the_right_type_and_a_wrong_value_is_a_value_error(call, name):
    with pytest.raises(ValueError, match=f"^{name} must be ") as info:
        call()
    assert not isinstance(info.value, TypeError)


def test_numpy_integers_and_strings_are_preset_arguments_like_python_ones():
    for generation in (1, 2):
        ref = Detector.eiger("1M", generation=generation)
        got = Detector.eiger(np.str_("1M"), generation=np.int64(generation))
        assert got.to_dict() == ref.to_dict()
    assert Detector.pilatus(np.str_("2M")).to_dict() == Detector.pilatus("2M").to_dict()
    assert Detector.preset(np.str_("ideal")).to_dict() == Detector.ideal().to_dict()


def _dataset(diffraction: np.ndarray) -> Dataset:
    m, n, _ = diffraction.shape
    pos = np.zeros((m, 2))
    return Dataset(
        diffraction=diffraction,
        mask=np.ones((n, n), bool),
        positions_nominal=pos,
        positions_true=pos.copy(),
        probe=np.ones((1, n, n), np.complex64),
        object=np.ones((2 * n, 2 * n), np.complex64),
    )


def test_finite_and_integer_readings_make_a_dataset():
    huge = np.full((2, 4, 4), np.finfo(np.float32).max, np.float32)  # its sum overflows
    assert _dataset(huge).diffraction is huge
    assert _dataset(np.zeros((2, 4, 4), np.uint32)).n_patterns == 2


@pytest.mark.xfail(
    strict=True,
    reason="not changed: ptyfast.open of a foreign file (PtychoPINN's raw NPZ, a CXI or "
    "ptychodus file of another tool) builds its Dataset through this constructor from the "
    "file's readings, NaN included (masked pixels), and opens today; refusing NaN here would "
    "make such files unreadable, so the readers need their own policy first",
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_readings_are_refused_naming_diffraction(bad):
    d = np.ones((3, 4, 4), np.float32)
    d[1, 2, 3] = bad
    kept = d.copy()
    with pytest.raises(ValueError, match="diffraction"):
        _dataset(d)
    np.testing.assert_array_equal(d, kept)

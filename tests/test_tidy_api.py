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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_readings_are_kept_as_read_and_refused_by_every_conversion(bad, tmp_path):
    """A Dataset holds readings as a file gave them (ptyfast.open of a foreign file builds it
    through this constructor, and such files may hold NaN at masked pixels), so it does not
    refuse them; nothing that turns readings into other data lets them through silently."""
    d = np.ones((3, 4, 4), np.float32)
    d[1, 2, 3] = bad
    kept = d.copy()
    ds = _dataset(d)
    assert ds.diffraction is d
    ds.intensity_scale, ds.photons = 2.0, 1e4
    with pytest.raises(ValueError, match="readings"):
        ds.to_raw_data()
    with pytest.raises(ValueError, match="must be finite"):
        ds.save(tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()
    np.testing.assert_array_equal(d, kept)

"""Bad input to ptyfast.io: refused before any file is touched, naming the argument.

Flags accept only bools (``overwrite="no"`` must not replace a file); blocks with NaN or inf
are refused by every writer before any of them is written; invalid paths are a
``ValueError`` naming ``path``, and an OS failure names the user's path, not a temporary
file; path types (``None``, numbers, bytes) and NUL characters are refused up front.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from _io_data import EXT, formats, needs_zarr, random_dataset

import ptyfast
from ptyfast import io
from ptyfast._atomic import atomic_output
from ptyfast._npz import NpzStreamWriter, save_npz
from ptyfast.io import _commands
from ptyfast.io._dirstore import atomic_directory, clean_stale

NOT_BOOLS = ["False", "no", 2, None, 0.0]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (names and SHA-256 of the contents), hidden ones included."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            out[os.fspath(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _small_experiment() -> ptyfast.Experiment:
    return ptyfast.Experiment(
        ptyfast.objects.grf(48, seed=1),
        ptyfast.probes.gaussian(8, 2.0),
        ptyfast.scans.raster(2, 2, 4.0),
        ptyfast.Detector.ideal(),
        1e4,
    )


# ---------------------------------------------------------------------------- 1. flags


@pytest.mark.parametrize("fmt", formats())
@pytest.mark.parametrize("value", NOT_BOOLS)
def test_overwrite_must_be_a_bool_and_the_old_file_is_kept(tmp_path, fmt, value):
    path = tmp_path / f"d.{EXT[fmt]}"
    io.save(random_dataset(1), path)
    before = _snapshot(tmp_path)
    want = rf"overwrite must be True or False, got {type(value).__name__} {value!r}"
    with pytest.raises(TypeError, match=want):
        io.save(random_dataset(2), path, overwrite=value)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        random_dataset(2).save(path, overwrite=value)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        io.writer(path, random_dataset(2), overwrite=value)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt", formats())
@pytest.mark.parametrize("value", ["no", 2, None])
def test_compress_must_be_a_bool_and_nothing_is_created(tmp_path, fmt, value):
    with pytest.raises(TypeError, match=r"compress must be True or False, got "):
        io.save(random_dataset(3), tmp_path / f"d.{EXT[fmt]}", compress=value)
    assert os.listdir(tmp_path) == []


def test_flags_take_numpy_bools_and_0_1(tmp_path):
    path = tmp_path / "d.npz"
    io.save(random_dataset(4), path, compress=np.bool_(True), overwrite=0)
    io.save(random_dataset(5), path, compress=0, overwrite=np.True_)
    assert ptyfast.open(path).diffraction.tobytes() == random_dataset(5).diffraction.tobytes()


def test_every_io_flag_is_checked(tmp_path):
    ds = random_dataset(6)
    h = io.Header.from_dataset(ds)
    with pytest.raises(TypeError, match="patches must be True or False, got str 'yes'"):
        io.Header(**{**h.__dict__, "patches": "yes"})
    pytest.importorskip("h5py")
    with pytest.raises(TypeError, match="raw_data must be True or False, got int 2"):
        io.save(ds, tmp_path / "d.ptychodus.h5", raw_data=2)
    src = tmp_path / "src.npz"
    io.save(ds, src)
    with pytest.raises(TypeError, match="progress must be True or False, got str 'no'"):
        _commands.convert_file(src, tmp_path / "out.npz", progress="no")
    with pytest.raises(TypeError, match="compress must be True or False, got str 'no'"):
        _commands.convert_file(src, tmp_path / "out.npz", compress="no")
    with pytest.raises(TypeError, match="stats must be True or False, got str 'no'"):
        _commands.info_text(src, stats="no")
    with pytest.raises(TypeError, match=r"block must be a positive integer or None, got str"):
        _commands.convert_file(src, tmp_path / "out.npz", block="4")
    with pytest.raises(ValueError, match=r"block must be a positive integer or None, got 0"):
        _commands.convert_file(src, tmp_path / "out.npz", block=0)
    with io.reader(src) as r, pytest.raises(ValueError, match="size must be a positive"):
        next(r.blocks(-1))
    assert sorted(os.listdir(tmp_path)) == ["src.npz"]


def test_low_level_writers_check_overwrite(tmp_path):
    path = tmp_path / "keep.npz"
    path.write_bytes(b"keep")
    with pytest.raises(TypeError, match="overwrite must be True or False, got str 'no'"):
        save_npz(path, {"x": np.zeros(2)}, overwrite="no")
    with pytest.raises(TypeError, match="overwrite must be True or False, got str 'no'"):
        NpzStreamWriter(path, overwrite="no")
    with (
        pytest.raises(TypeError, match="overwrite must be True or False, got str 'no'"),
        atomic_output(path, overwrite="no"),
    ):
        pass  # pragma: no cover - never entered
    with (
        pytest.raises(TypeError, match="overwrite must be True or False, got str 'no'"),
        atomic_directory(tmp_path / "s.zarr", overwrite="no"),
    ):
        pass  # pragma: no cover - never entered
    assert path.read_bytes() == b"keep"
    assert os.listdir(tmp_path) == ["keep.npz"]


@needs_zarr
def test_create_store_checks_compress(tmp_path):
    h = io.Header.from_dataset(random_dataset(7))
    with pytest.raises(TypeError, match="compress must be True or False, got str 'no'"):
        io.zarr.create_store(tmp_path, h, compress="no")
    assert os.listdir(tmp_path) == []


@needs_zarr
@pytest.mark.parametrize(
    ("rows", "exc"), [("x", TypeError), (2.0, TypeError), (True, TypeError), (0, ValueError)]
)
def test_create_store_checks_rows_before_touching_the_directory(tmp_path, rows, exc):
    """``rows`` was checked after the store's group was created (and a string was a
    ValueError); a wrong type is a TypeError, and nothing is written either way."""
    h = io.Header.from_dataset(random_dataset(7))
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(exc, match="rows must be a positive integer"):
        io.zarr.create_store(tmp_path, h, compress=False, rows=rows)
    assert os.listdir(tmp_path) == ["keep.txt"]
    assert io.zarr.create_store(tmp_path / "s", h, compress=False, rows=np.int64(3)) == 3


def test_simulate_to_checks_flags_before_simulating(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"keep")
    e = _small_experiment()
    with pytest.raises(TypeError, match="overwrite must be True or False, got str 'no'"):
        ptyfast.simulate_to(e, path, seed=1, overwrite="no")
    with pytest.raises(TypeError, match="compress must be True or False, got int 2"):
        ptyfast.simulate_to(e, tmp_path / "new.npz", seed=1, compress=2)
    assert path.read_bytes() == b"keep"
    assert os.listdir(tmp_path) == ["d.npz"]


# ---------------------------------------------------------------------------- 2. NaN / inf


@pytest.mark.parametrize("fmt", formats())
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_writer_refuses_non_finite_readings_and_leaves_nothing(tmp_path, fmt, bad):
    ds = random_dataset(8)
    d = ds.diffraction.copy()
    d[3, 2, 1] = bad
    kept = d.copy()
    path = tmp_path / f"d.{EXT[fmt]}"
    want = (
        rf"diffraction block at patterns 2\.\.6 must be finite, got {bad} at pattern 3 "
        rf"pixel \(2, 1\)"
    )
    with pytest.raises(ValueError, match=want), io.writer(path, ds) as w:
        w.write(0, d[:2])
        w.write(2, d[2:])
    assert os.listdir(tmp_path) == []
    np.testing.assert_array_equal(d, kept)  # the caller's block is untouched


@pytest.mark.parametrize("fmt", formats())
def test_non_finite_block_keeps_the_old_file(tmp_path, fmt):
    path = tmp_path / f"d.{EXT[fmt]}"
    io.save(random_dataset(9), path)
    before = _snapshot(tmp_path)
    ds = random_dataset(10)
    with pytest.raises(ValueError, match="must be finite, got nan at pattern 0"):
        with io.writer(path, ds, overwrite=True) as w:
            w.write(0, np.full_like(ds.diffraction, np.nan))
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt", formats())
def test_writer_refuses_non_finite_patches(tmp_path, fmt):
    ds = random_dataset(11, patches=True)
    p = ds.patches.copy()
    p[4, 0, 5] = complex(0.0, np.inf)
    with pytest.raises(ValueError, match=r"patches block at patterns 0\.\.6 .* pattern 4 pixel"):
        with io.writer(tmp_path / f"d.{EXT[fmt]}", ds) as w:
            w.write(0, ds.diffraction, p)
    assert os.listdir(tmp_path) == []


def test_huge_finite_readings_are_not_mistaken_for_inf(tmp_path):
    ds = random_dataset(12, geometry=False)
    ds.diffraction[:] = np.finfo(np.float32).max / 4  # their float32 sum overflows
    ds.save(tmp_path / "d.npz")
    assert np.isfinite(ptyfast.open(tmp_path / "d.npz").diffraction).all()


def test_integer_readings_need_no_check(tmp_path):
    ds = random_dataset(13, dtype=np.uint16)
    ds.save(tmp_path / "d.npz")
    assert ptyfast.open(tmp_path / "d.npz").diffraction.dtype == np.uint16


@needs_zarr
def test_write_region_refuses_non_finite_blocks(tmp_path):
    ds = random_dataset(14)
    store = tmp_path / "s"
    store.mkdir()
    io.zarr.create_store(store, io.Header.from_dataset(ds), compress=False)
    d = ds.diffraction.copy()
    d[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"diffraction block at patterns 0\.\.6 must be finite"):
        io.zarr.write_region(store, 0, d)
    assert not list((store / "diffraction").glob("c.*"))


# ---------------------------------------------------------------------------- 3. invalid paths


@pytest.mark.parametrize("fmt", formats())
def test_too_long_name_is_a_value_error_naming_path(tmp_path, fmt):
    path = tmp_path / ("a" * 300 + "." + EXT[fmt])
    with pytest.raises(ValueError, match=r"path must have names of at most \d+ bytes"):
        io.save(random_dataset(15), path)
    with pytest.raises(ValueError, match=r"path must have names of at most \d+ bytes"):
        io.writer(path, random_dataset(15))
    assert os.listdir(tmp_path) == []


def test_too_long_ptychodus_diffraction_name_is_refused_up_front(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / ("a" * 250 + ".h5")  # fits; its .diffraction.h5 sibling does not
    with pytest.raises(ValueError, match=r"at most \d+ bytes.*diffraction\.h5"):
        io.save(random_dataset(16), path)
    assert os.listdir(tmp_path) == []


@needs_zarr
def test_long_zarr_name_still_writes(tmp_path):
    path = tmp_path / ("z" * 245 + ".zarr")  # its hidden sibling's name would not fit
    ds = random_dataset(17)
    io.save(ds, path)
    assert os.listdir(tmp_path) == [path.name]
    assert ptyfast.open(path).diffraction.tobytes() == ds.diffraction.tobytes()
    assert clean_stale(path) == []


@pytest.mark.parametrize("fmt", formats())
@pytest.mark.parametrize("below", ["x", "sub/x"])
def test_parent_that_is_a_file_is_a_value_error(tmp_path, fmt, below):
    (tmp_path / "f").write_bytes(b"keep")
    path = tmp_path / "f" / f"{below}.{EXT[fmt]}"
    with pytest.raises(
        ValueError, match=r"path must lie in a directory, got .* where .*/f' is a file"
    ):
        io.save(random_dataset(18), path)
    assert os.listdir(tmp_path) == ["f"]
    assert (tmp_path / "f").read_bytes() == b"keep"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("fmt", formats())
def test_os_errors_name_the_users_path(fmt):
    path = f"/proc/ptyfast-no-such-dir-test.{EXT[fmt]}"
    with pytest.raises(OSError) as e:
        io.save(random_dataset(19), path)
    assert path in str(e.value)
    assert e.value.filename == path
    assert e.value.errno is not None


def test_simulate_to_checks_the_path_before_simulating(tmp_path):
    (tmp_path / "f").write_bytes(b"keep")
    e = _small_experiment()
    with pytest.raises(ValueError, match="where .*/f' is a file"):
        ptyfast.simulate_to(e, tmp_path / "f" / "d.npz", seed=1)
    with pytest.raises(ValueError, match="path must have names of at most"):
        ptyfast.simulate_to(e, tmp_path / ("a" * 300 + ".npz"), seed=1)
    assert os.listdir(tmp_path) == ["f"]


def test_reading_an_impossible_path(tmp_path):
    with pytest.raises(ValueError, match="cannot name a file"):
        ptyfast.open(tmp_path / ("a" * 300 + ".npz"))
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="no such file"):
        ptyfast.open(tmp_path / "f" / "d.npz")


# ---------------------------------------------------------------------------- 4. path types


class _BytesPath:
    def __fspath__(self) -> bytes:
        return b"d.npz"


def _entry_points(tmp_path: Path) -> dict:
    ds = random_dataset(20)
    src = tmp_path / "src.npz"
    return {
        "save": lambda p: io.save(ds, p),
        "Dataset.save": lambda p: ds.save(p),
        "writer": lambda p: io.writer(p, ds),
        "open": lambda p: ptyfast.open(p),
        "reader": lambda p: io.reader(p),
        "detect": lambda p: io.detect(p),
        "format_from_path": lambda p: io.format_from_path(p),
        "info_text": lambda p: _commands.info_text(p),
        "simulate_to": lambda p: ptyfast.simulate_to(_small_experiment(), p, seed=1),
        "convert_file src": lambda p: _commands.convert_file(p, tmp_path / "o.npz"),
        "convert_file dst": lambda p: _commands.convert_file(src, p),
    }


ENTRY_POINTS = list(_entry_points(Path(".")))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("value", "got"),
    [
        (None, "NoneType None"),
        (5, "int 5"),
        (b"d.npz", "bytes b'd.npz'"),
        (_BytesPath(), r"_BytesPath .* \(naming bytes b'd.npz'\)"),
    ],
)
def test_path_types_are_refused_naming_the_argument(tmp_path, entry, value, got):
    call = _entry_points(tmp_path)[entry]
    name = {"convert_file src": "src", "convert_file dst": "dst"}.get(entry, "path")
    with pytest.raises(TypeError, match=rf"^{name} must be a str or os\.PathLike, got {got}"):
        call(value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_nul_in_a_path_is_refused_naming_the_argument(tmp_path, entry):
    call = _entry_points(tmp_path)[entry]
    name = {"convert_file src": "src", "convert_file dst": "dst"}.get(entry, "path")
    with pytest.raises(ValueError, match=rf"^{name} must not contain a NUL character"):
        call(os.fspath(tmp_path / "a\0b.npz"))
    assert os.listdir(tmp_path) == []

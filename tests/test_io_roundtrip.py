"""Every writer round-trips through ptyfast.open bit for bit (issue 12)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from _io_data import EXT, assert_same, formats, random_dataset

import ptyfast
from ptyfast import io


@pytest.mark.parametrize("fmt", formats())
@pytest.mark.parametrize(
    ("dtype", "modes", "patches", "compress"),
    [
        (np.float32, 1, False, False),
        (np.uint16, 3, True, True),
        (np.uint32, 1, True, False),
        (np.float64, 2, False, True),
        (np.uint8, 2, True, True),
    ],
)
def test_exact_round_trip(tmp_path, fmt, dtype, modes, patches, compress):
    ds = random_dataset(3, dtype=dtype, modes=modes, patches=patches)
    path = tmp_path / f"d.{EXT[fmt]}"
    written = io.save(ds, path, compress=compress)
    assert all(p.exists() for p in written)
    back = ptyfast.open(path)
    assert_same(ds, back)
    with io.reader(path) as r:
        assert r.format == fmt
        assert r.compressed == compress


@pytest.mark.parametrize("fmt", formats("npz", "zarr"))
def test_pixel_formats_need_no_geometry(tmp_path, fmt):
    ds = random_dataset(4, geometry=False)
    ds.photons = float("nan")
    path = tmp_path / f"d.{EXT[fmt]}"
    ds.save(path)
    assert_same(ds, ptyfast.open(path))


@pytest.mark.parametrize("fmt", formats())
def test_streaming_in_uneven_blocks_equals_save(tmp_path, fmt, monkeypatch):
    monkeypatch.setattr(io.zarr, "CHUNK_BYTES", 3 * 8 * 8 * 8)  # zarr: chunks of 3 patterns
    ds = random_dataset(5, m=11, patches=True)
    one, many = tmp_path / f"one.{EXT[fmt]}", tmp_path / f"many.{EXT[fmt]}"
    ds.save(one)
    with io.writer(many, ds) as w:
        for start, stop in ((0, 1), (1, 5), (5, 5), (5, 6), (6, 11)):
            w.write(start, ds.diffraction[start:stop], ds.patches[start:stop])
    assert_same(ptyfast.open(one), ptyfast.open(many))
    with io.reader(many) as r:
        blocks = list(r.blocks(4))
    assert [b[0] for b in blocks] == [0, 4, 8]
    assert np.array_equal(np.concatenate([b[1] for b in blocks]), ds.diffraction)


@pytest.mark.parametrize("fmt", formats())
def test_format_comes_from_the_content_not_the_name(tmp_path, fmt):
    ds = random_dataset(6)
    path = tmp_path / f"d.{EXT[fmt]}"
    io.save(ds, path)
    if fmt == "ptychodus":  # the pair keeps its names; the diffraction file leads to it
        renamed = tmp_path / "d.diffraction.h5"
    else:
        renamed = tmp_path / "renamed.data"
        shutil.move(path, renamed)
    assert io.detect(renamed) == fmt
    assert_same(ds, ptyfast.open(renamed))


@pytest.mark.parametrize("fmt", formats())
def test_explicit_format_overrides_the_extension(tmp_path, fmt):
    ds = random_dataset(7)
    path = tmp_path / "d.whatever"
    io.save(ds, path, format=fmt)
    assert io.detect(path) == fmt
    assert_same(ds, ptyfast.open(path))


def test_extensions_select_formats():
    cases = {
        "a.npz": "npz",
        "a.ptychodus.h5": "ptychodus",
        "A.PTYCHODUS.HDF5": "ptychodus",
        "a.h5": "ptychodus",
        "a.hdf5": "ptychodus",
        "a.cxi": "cxi",
        "a.zarr": "zarr",
        "a.zarr/": "zarr",
    }
    for path, fmt in cases.items():
        assert io.format_from_path(path) == fmt
    assert io.format_from_path("a.cxi", "zarr") == "zarr"
    assert io.diffraction_path("dir/run.ptychodus.h5") == type(io.diffraction_path("x"))(
        "dir/run.diffraction.h5"
    )


def test_top_level_names():
    assert ptyfast.open is io.open
    assert ptyfast.io is io
    assert "open" in dir(ptyfast) and "io" in dir(ptyfast)


def test_import_ptyfast_io_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, ptyfast, ptyfast.io; "
        "print(','.join(m for m in ('h5py', 'zarr', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_save_leaves_its_input_unchanged(tmp_path):
    ds = random_dataset(8, patches=True)
    before = {k: getattr(ds, k).copy() for k in ("diffraction", "positions_true", "probe")}
    io.save(ds, tmp_path / "d.cxi")
    for k, v in before.items():
        assert np.array_equal(getattr(ds, k), v)
    assert os.listdir(tmp_path) == ["d.cxi"]


@pytest.mark.parametrize("fmt", formats("ptychodus", "cxi"))
@pytest.mark.parametrize("n", [8, 9])
def test_files_of_other_tools_are_read_from_their_own_fields(tmp_path, fmt, n):
    """Without the ptyfast group (a file another tool wrote): metres back to pixels."""
    import h5py

    ds = random_dataset(9, n=n, dtype=np.uint32)
    path = tmp_path / f"d.{EXT[fmt]}"
    io.save(ds, path)
    with h5py.File(path, "r+") as f:
        del f["ptyfast" if fmt == "ptychodus" else "entry_1/ptyfast"]
    back = ptyfast.open(path)
    for k in ("diffraction", "mask", "probe", "object"):
        assert getattr(back, k).tobytes() == getattr(ds, k).tobytes(), k
    assert np.allclose(back.positions_true, ds.positions_true, rtol=0, atol=1e-9)
    assert back.geometry.N == n
    assert back.geometry.distance_m == ds.geometry.distance_m
    assert back.geometry.detector_pixel_m == ds.geometry.detector_pixel_m
    assert back.geometry.energy_eV == pytest.approx(ds.geometry.energy_eV, rel=1e-15)
    if fmt == "ptychodus":
        assert back.photons == ds.photons
        with h5py.File(path, "r+") as f:
            del f["probe_position_y_m"]
        with pytest.raises(io.FormatError, match=r"d.ptychodus.h5: field /probe_position_y_m"):
            ptyfast.open(path)

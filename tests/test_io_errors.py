"""Errors name the file and the field; nothing partial is ever left behind (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from _io_data import EXT, formats, needs_zarr, random_dataset

import ptyfast
from ptyfast import io
from ptyfast.io._dirstore import _host


def _listing(path) -> list[str]:
    return sorted(os.listdir(path))


def test_unknown_extension_lists_the_known_ones(tmp_path):
    ds = random_dataset(0)
    with pytest.raises(ValueError, match="cannot tell the format") as e:
        io.save(ds, tmp_path / "d.tiff")
    for ext in (".npz", ".ptychodus.h5", ".h5", ".cxi", ".zarr"):
        assert ext in str(e.value)
    with pytest.raises(ValueError, match=r"format must be one of .* got 'tiff'"):
        io.save(ds, tmp_path / "d.npz", format="tiff")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("fmt", formats("ptychodus", "cxi"))
def test_formats_in_metres_need_a_geometry_and_say_which_fields(tmp_path, fmt):
    ds = random_dataset(1, geometry=False)
    with pytest.raises(ValueError, match=r"energy_eV, distance_m, detector_pixel_m"):
        io.save(ds, tmp_path / f"d.{EXT[fmt]}")
    assert _listing(tmp_path) == []


def test_npz_needs_an_intensity_scale(tmp_path):
    ds = random_dataset(2)
    ds.intensity_scale = float("nan")
    with pytest.raises(ValueError, match=r"diff3d amplitudes .*intensity_scale, got nan"):
        ds.save(tmp_path / "d.npz")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("fmt", formats())
def test_existing_target_needs_overwrite(tmp_path, fmt):
    a, b = random_dataset(3), random_dataset(4)
    path = tmp_path / f"d.{EXT[fmt]}"
    a.save(path)
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        b.save(path)
    assert _listing(tmp_path) == before
    assert ptyfast.open(path).diffraction.tobytes() == a.diffraction.tobytes()
    b.save(path, overwrite=True)
    assert _listing(tmp_path) == before
    assert ptyfast.open(path).diffraction.tobytes() == b.diffraction.tobytes()


def test_ptychodus_refuses_when_only_the_diffraction_file_exists(tmp_path):
    (tmp_path / "d.diffraction.h5").write_bytes(b"not mine")
    with pytest.raises(ValueError, match=r"d\.diffraction\.h5' exists"):
        random_dataset(5).save(tmp_path / "d.ptychodus.h5")
    assert _listing(tmp_path) == ["d.diffraction.h5"]
    assert (tmp_path / "d.diffraction.h5").read_bytes() == b"not mine"


class Boom(Exception):
    pass


@pytest.mark.parametrize("fmt", formats())
def test_failure_mid_stream_leaves_nothing(tmp_path, fmt):
    ds = random_dataset(6, m=9, patches=True)
    with pytest.raises(Boom):
        with io.writer(tmp_path / f"d.{EXT[fmt]}", ds, compress=True) as w:
            w.write(0, ds.diffraction[:4], ds.patches[:4])
            raise Boom
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("fmt", formats("ptychodus", "cxi"))
def test_photons_beyond_float32_are_refused_and_leave_nothing(tmp_path, fmt):
    # These formats store photon counts as float32: readings of ~50 ADU at 1e-40 ADU per
    # photon are ~5e41 photons, which float32 cannot hold (it would store inf).
    ds = random_dataset(10)
    ds.detector = ptyfast.Detector(gain=1e-40)
    with pytest.raises(ValueError, match=r"photons within float32 .* got photons up to .*e\+4"):
        ds.save(tmp_path / f"d.{EXT[fmt]}")
    assert _listing(tmp_path) == []
    # Within float32 the same readings are written, and read back as photons.
    ds.detector = ptyfast.Detector(gain=1e-30)
    ds.save(tmp_path / f"d.{EXT[fmt]}")
    assert _listing(tmp_path) != []


def test_amplitudes_beyond_float32_are_refused_and_leave_nothing(tmp_path):
    # diff3d = sqrt(photons)/intensity_scale in float32: ~7/1e-38 would be stored as inf.
    ds = random_dataset(11)
    ds.intensity_scale = 1e-38
    with pytest.raises(ValueError, match=r"amplitudes within float32.*intensity_scale 1e-38"):
        ds.save(tmp_path / "d.npz")
    assert _listing(tmp_path) == []
    with pytest.raises(ValueError, match=r"amplitudes within float32"):
        ds.to_raw_data()
    ds.intensity_scale = 1e-30
    ds.save(tmp_path / "d.npz")
    assert np.isfinite(np.load(tmp_path / "d.npz")["diff3d"]).all()


@pytest.mark.parametrize("fmt", formats("ptychodus", "cxi"))
def test_corrupt_hdf5_content_is_a_format_error(tmp_path, fmt):
    # Before, h5py's and the codecs' own exceptions (OSError, RuntimeError, KeyError,
    # UnicodeDecodeError) escaped from ptyfast.open for corrupt files.
    ds = random_dataset(12)
    # 1. A compressed chunk of the patterns overwritten: the gzip filter fails on read.
    path = tmp_path / f"a.{EXT[fmt]}"
    ds.save(path, compress=True)
    name = "entry_1/data_1/data" if fmt == "cxi" else "patterns"

    def holds_patterns(p):  # the ptychodus pair keeps them in its diffraction file
        with h5py.File(p, "r") as f:
            return name in f

    data_file = next(p for p in sorted(tmp_path.glob("a*")) if holds_patterns(p))
    with h5py.File(data_file, "r") as f:
        chunk = f[name].id.get_chunk_info(0)
    with open(data_file, "r+b") as fh:
        fh.seek(chunk.byte_offset)
        fh.write(b"\xff" * min(64, chunk.size))
    with pytest.raises(io.FormatError, match=r"corrupt or unreadable patterns 0:.*OSError"):
        ptyfast.open(path)
    # 2. Metadata that is not UTF-8.
    path = tmp_path / f"b.{EXT[fmt]}"
    ds.save(path)
    group = "entry_1/ptyfast" if fmt == "cxi" else "ptyfast"
    with h5py.File(path, "r+") as f:
        g = f[group]
        del g["meta"]
        g.create_dataset("meta", data=b'{"a": "\xff"}', dtype=h5py.string_dtype("utf-8"))
    with pytest.raises(io.FormatError, match=r"corrupt or unreadable .*UnicodeDecodeError"):
        ptyfast.open(path)


@pytest.mark.parametrize("fmt", formats())
def test_incomplete_stream_is_an_error_and_leaves_nothing(tmp_path, fmt):
    ds = random_dataset(7, m=9)
    with pytest.raises(ValueError, match="4 of 9 patterns written; nothing was saved"):
        with io.writer(tmp_path / f"d.{EXT[fmt]}", ds) as w:
            w.write(0, ds.diffraction[:4])
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("fmt", formats("npz", "zarr"))
def test_bad_blocks_are_refused(tmp_path, fmt):
    ds = random_dataset(8, m=6, patches=True)
    d, p = ds.diffraction, ds.patches
    cases = [
        ((1, d[:2], p[:2]), ValueError, r"start must be 0"),
        ((0, d[:2].astype(np.float64), p[:2]), TypeError, r"header's dtype float32, got float64"),
        ((0, d[:2, :4], p[:2]), ValueError, r"diffraction must have shape \(\*, 8, 8\)"),
        ((0, np.concatenate([d, d]), np.concatenate([p, p])), ValueError, r"runs past"),
        ((0, d[:2], None), ValueError, r"patches must be given"),
        ((0, d[:2], p[:2].astype(np.complex128)), TypeError, r"patches must be complex64"),
        (("0", d[:2], p[:2]), TypeError, r"start must be an integer"),
    ]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            with io.writer(tmp_path / f"d.{EXT[fmt]}", ds) as w:
                w.write(*args)
        assert _listing(tmp_path) == []
    w = io.writer(tmp_path / f"d.{EXT[fmt]}", ds)
    with pytest.raises(ValueError, match="inside the writer's with-block"):
        w.write(0, d, p)
    no_patches = random_dataset(8, m=6)
    with pytest.raises(ValueError, match="header says patches=False"):
        with io.writer(tmp_path / f"d.{EXT[fmt]}", no_patches) as w:
            w.write(0, no_patches.diffraction, p)
    assert _listing(tmp_path) == []


def test_options_are_checked(tmp_path):
    ds = random_dataset(9)
    with pytest.raises(TypeError, match=r"npz writer takes no option\(s\) \['raw_data'\]"):
        io.save(ds, tmp_path / "d.npz", raw_data=True)
    with pytest.raises(TypeError, match="raw_data must be True or False, got str 'yes'"):
        io.save(ds, tmp_path / "d.ptychodus.h5", raw_data="yes")
    with pytest.raises(TypeError, match="dataset must be a ptyfast.Dataset, got dict"):
        io.save({}, tmp_path / "d.npz")
    assert _listing(tmp_path) == []


def test_header_validation_names_the_argument():
    ds = random_dataset(10)
    h = io.Header.from_dataset(ds)
    with pytest.raises(ValueError, match=r"n_patterns must be a positive integer, got 0"):
        io.Header(**{**vars(h), "n_patterns": 0})
    with pytest.raises(ValueError, match=r"positions_true must have shape \(7, 2\), got \(6, 2\)"):
        io.Header(**{**vars(h), "positions_true": ds.positions_true[:6]})
    with pytest.raises(TypeError, match=r"dtype must be a native real numeric dtype"):
        io.Header(**{**vars(h), "dtype": np.complex64})
    bad = ds.positions_true.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="positions_true must be finite"):
        io.Header(**{**vars(h), "positions_true": bad})


# ---------------------------------------------------------------------------- reading


def test_missing_and_foreign_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz: no such file"):
        ptyfast.open(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello world, not a dataset")
    with pytest.raises(io.FormatError, match=r"junk\.npz is not a ptyfast dataset"):
        ptyfast.open(junk)
    (tmp_path / "dir.zarr").mkdir()
    with pytest.raises(io.FormatError, match=r"dir\.zarr is a directory without a Zarr v3"):
        ptyfast.open(tmp_path / "dir.zarr")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(io.FormatError, match=r"other\.h5 is HDF5 but neither CXI"):
        ptyfast.open(tmp_path / "other.h5")


def test_truncated_npz(tmp_path):
    path = tmp_path / "d.npz"
    random_dataset(11).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(io.FormatError, match=r"d\.npz is not a readable NPZ"):
        ptyfast.open(path)


def test_npz_missing_member_named(tmp_path):
    np.savez(tmp_path / "p.npz", xcoords=np.zeros(3), ycoords=np.zeros(3))
    with pytest.raises(io.FormatError, match=r"p\.npz: required member 'diff3d'"):
        ptyfast.open(tmp_path / "p.npz")


@pytest.mark.parametrize(
    ("fmt", "node", "msg"),
    [
        ("ptychodus", "object", r"field /object is missing"),
        ("ptychodus", "ptyfast/mask", r"field /ptyfast/mask is missing"),
        ("cxi", "entry_1/image_2", r"field /entry_1/image_2/data is missing"),
        ("cxi", "entry_1/ptyfast/meta", r"field /entry_1/ptyfast/meta is missing"),
    ],
)
def test_hdf5_missing_field_named(tmp_path, fmt, node, msg):
    path = tmp_path / f"d.{EXT[fmt]}"
    random_dataset(12).save(path)
    with h5py.File(path, "r+") as f:
        del f[node]
    with pytest.raises(io.FormatError, match=msg) as e:
        ptyfast.open(path)
    assert os.fspath(path) in str(e.value)


def test_ptychodus_pair_needs_both_files(tmp_path):
    product, diffraction = io.save(random_dataset(13), tmp_path / "d.ptychodus.h5")
    moved = tmp_path / "elsewhere.h5"
    diffraction.rename(moved)
    with pytest.raises(
        io.FormatError, match=r"its diffraction file .*d\.diffraction\.h5 is missing"
    ):
        ptyfast.open(product)
    moved.rename(diffraction)
    product.rename(tmp_path / "x.bin")
    with pytest.raises(io.FormatError, match="product .* is missing: open the product"):
        ptyfast.open(diffraction)


@needs_zarr
def test_newer_layout_is_refused(tmp_path):
    path = tmp_path / "d.zarr"
    random_dataset(14).save(path)
    import zarr

    g = zarr.open_group(path, mode="r+")
    meta = dict(g.attrs["ptyfast"])
    meta["layout_version"] = 99
    g.attrs["ptyfast"] = meta
    with pytest.raises(io.FormatError, match=r"layout version 99 is newer"):
        ptyfast.open(path)


@needs_zarr
def test_zarr_cleans_stale_siblings_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = tmp_path / f".d.zarr.{_host()}.{pid}.0bad.ptyfast-tmp"
    live = tmp_path / f".d.zarr.{_host()}.{os.getpid()}.0ok0.ptyfast-tmp"
    other_host = tmp_path / f".d.zarr.elsewhere.{pid}.beef.ptyfast-tmp"
    for p in (stale, live, other_host):
        (p / "sub").mkdir(parents=True)
    random_dataset(15).save(tmp_path / "d.zarr")
    assert _listing(tmp_path) == sorted([live.name, other_host.name, "d.zarr"])


@needs_zarr
def test_target_that_is_a_file_or_directory(tmp_path):
    (tmp_path / "f.zarr").write_text("x")
    with pytest.raises(ValueError, match=r"f\.zarr' exists and is a file"):
        random_dataset(16).save(tmp_path / "f.zarr", overwrite=True)
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError, match=r"d\.npz' is a directory"):
        random_dataset(16).save(tmp_path / "d.npz", overwrite=True)


@pytest.mark.parametrize(
    ("fmt", "module", "extra"), [("cxi", "h5py", "hdf5"), ("zarr", "zarr", "zarr")]
)
def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch, fmt, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ImportError, match=rf"pip install 'ptyfast\[{extra}\]'"):
        random_dataset(17).save(tmp_path / f"d.{EXT[fmt]}")
    assert _listing(tmp_path) == []

"""``ptyfast info`` and ``ptyfast convert`` (the handlers cli.py wires in)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from _io_data import assert_same, needs_zarr, random_dataset, simulated_dataset

import ptyfast
from ptyfast.io._commands import add_output_options, add_subcommands, convert_file, info_text


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptyfast")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


def test_info_describes_the_file(tmp_path, capsys):
    ds = random_dataset(3, modes=2, patches=True)
    ds.save(tmp_path / "d.ptychodus.h5", compress=True)
    assert _run(["info", str(tmp_path / "d.diffraction.h5")]) == 0
    out = capsys.readouterr().out
    assert "d.ptychodus.h5 (+ " in out and "d.diffraction.h5" in out
    assert "ptychodus (compressed)" in out
    assert "M = 7, N = 8, readings float32" in out
    assert "2 mode(s) (2, 8, 8) complex64" in out
    assert f"{int(ds.mask.sum())} of 64 pixels valid" in out
    assert "1234.5 per pattern" in out and "intensity scale 3.25" in out
    assert "8000 eV" in out and "distance 2 m" in out and "detector pixel 75 µm" in out
    assert "seeds seed=3" in out and "name random 3" in out
    assert "patches     stored" in out or "patches  stored" in out.replace("   ", "  ")


def test_info_lists_a_simulations_seeds_once(tmp_path):
    """A simulated dataset's seed line is its provenance summary: the noise seed included,
    each seed once (walking the whole record repeated them and missed the noise)."""
    e = ptyfast.Experiment(
        ptyfast.objects.recipe("dead_leaves", shape=48, seed=2),
        ptyfast.probes.disk(16),
        ptyfast.scans.raster(3, 3, 5.0).jitter(0.3, seed=1),
        ptyfast.Detector(dead_fraction=0.05, bad_pixel_seed=4),
        photons=1e4,
    )
    ptyfast.simulate_to(e, tmp_path / "d.npz", seed=9)
    line = next(x for x in info_text(tmp_path / "d.npz").splitlines() if "seeds " in x)
    want = "noise=9, object.recipe.params.seed=2, scan.errors[0].seed=1, detector.bad_pixel_seed=4"
    assert f"seeds {want};" in line
    assert line.count("=2") == 1
    # The detector line names what differs from Detector(): the bad pixels here.
    det = next(x for x in info_text(tmp_path / "d.npz").splitlines() if x.startswith("detector"))
    assert "custom: " in det and "dead_fraction=0.05" in det and "bad_pixel_seed=4" in det
    assert "format=" not in det and "qe=" not in det


@needs_zarr
def test_info_stats_measures_the_patterns(tmp_path):
    ds = simulated_dataset(seed=2)
    ds.save(tmp_path / "d.zarr")
    text = info_text(tmp_path / "d.zarr", stats=True)
    sums = ds.diffraction.sum(axis=(1, 2), dtype=np.float64)
    assert f"mean {sums.mean():.6g}, min {sums.min():.6g}, max {sums.max():.6g}" in text
    assert f"brightest pixel {ds.diffraction.max():.6g}" in text


@needs_zarr
def test_convert_chain_is_exact(tmp_path, capsys):
    ds = random_dataset(5, dtype=np.uint16, patches=True)
    ds.save(tmp_path / "a.npz")
    chain = ["a.npz", "b.zarr", "c.cxi", "d.ptychodus.h5", "e.npz"]
    for src, dst in zip(chain, chain[1:], strict=False):
        assert _run(["convert", str(tmp_path / src), str(tmp_path / dst), "--compress"]) == 0
    assert "wrote " in capsys.readouterr().out
    assert_same(ds, ptyfast.open(tmp_path / "e.npz"))


def test_convert_options_and_errors(tmp_path):
    ds = random_dataset(6)
    ds.save(tmp_path / "a.npz")
    assert _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "b.bin"), "--format", "cxi",
                 "-q"]) == 0  # fmt: skip
    assert ptyfast.io.detect(tmp_path / "b.bin") == "cxi"
    with pytest.raises(ValueError, match="exists; pass overwrite"):
        _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "b.bin"), "--format", "cxi"])
    assert _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "b.bin"), "--format", "npz",
                 "--overwrite", "-q"]) == 0  # fmt: skip
    assert ptyfast.io.detect(tmp_path / "b.bin") == "npz"
    with pytest.raises(ValueError, match="exists and is a file, expected a store"):
        _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "b.bin"), "--format", "zarr",
              "--overwrite"])  # fmt: skip
    with pytest.raises(ValueError, match="cannot tell the format"):
        _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "c.tiff")])
    with pytest.raises(ValueError, match="same path"):
        convert_file(tmp_path / "a.npz", tmp_path / "a.npz", overwrite=True)
    with pytest.raises(TypeError, match="npz writer takes no option"):
        _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "d.npz"), "--raw-data"])
    assert _run(["convert", str(tmp_path / "a.npz"), str(tmp_path / "p.h5"), "--raw-data",
                 "-q"]) == 0  # fmt: skip
    import h5py

    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert "raw_data" in f
    with pytest.raises(FileNotFoundError):
        _run(["info", str(tmp_path / "missing.npz")])


def test_output_options_for_other_commands():
    p = argparse.ArgumentParser()
    p.add_argument("-o")
    add_output_options(p)
    a = p.parse_args(["-o", "x.cxi", "--format", "zarr", "--compress", "--overwrite"])
    assert (a.format, a.compress, a.overwrite) == ("zarr", True, True)
    assert ptyfast.io.format_from_path(a.o, a.format) == "zarr"
    with pytest.raises(SystemExit):
        p.parse_args(["--format", "tiff"])

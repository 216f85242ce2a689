"""Memory and disk bounds of the streaming paths (audit of "memory is bounded" and "refused
before any work").

Each test asserts a structural property: a run (or a read) that cannot fit the disk or the
memory is refused with a ``ValueError`` before any pattern is simulated, any file appears or
the large array is allocated; the dry run refuses what the run refuses and sizes what it
writes; readers and the dry run's calibration hold a bounded multiple of what they return
(``tracemalloc``); a failed Zarr write leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
from collections import namedtuple

import numpy as np
import pytest

import ptyfast
from ptyfast import _dryrun, _kernels, cli, objects, probes, scans
from ptyfast.model import experiment as experiment_mod

_Usage = namedtuple("_Usage", "total used free")


def _experiment(m: int = 64, n: int = 16, geometry: bool = False) -> ptyfast.Experiment:
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=n)
    return ptyfast.Experiment(
        objects.dead_leaves(64, seed=2),
        probes.gaussian(n, 3.0),
        scans.fermat_spiral(m, min(1.0, 20.0 / m**0.5)),
        ptyfast.Detector.ideal(),
        photons=1e6,
        geometry=g if geometry else None,
    )


def _no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pattern was simulated before the resources were checked")

    monkeypatch.setattr(experiment_mod, "_acquire", boom)


def _tiny_disk(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    real = shutil.disk_usage

    def usage(path: object) -> object:
        u = real(path)
        return _Usage(u.total, u.used, free)

    monkeypatch.setattr(_dryrun.shutil, "disk_usage", usage)


@pytest.mark.parametrize("ext", ["npz", "zarr"])
def test_simulate_to_refuses_an_output_larger_than_the_free_disk(tmp_path, monkeypatch, ext):
    if ext == "zarr":
        pytest.importorskip("zarr")
    e = _experiment()
    _tiny_disk(monkeypatch, 10_000)  # 64 patterns of 16 x 16 float32 take 64 KiB
    _no_simulation(monkeypatch)
    path = tmp_path / f"out.{ext}"
    with pytest.raises(ValueError, match=r"needs .* but only .* free"):
        ptyfast.simulate_to(e, path, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_simulate_to_refuses_a_run_larger_than_the_memory(tmp_path, monkeypatch):
    e = _experiment()
    _small_memory(monkeypatch, 2**16)
    monkeypatch.setattr(_kernels, "SMALL_ALLOCATION", 0)
    _no_simulation(monkeypatch)
    with pytest.raises(ValueError, match=r"simulating 64 patterns .*\(test limit\)"):
        ptyfast.simulate_to(e, tmp_path / "out.npz", seed=1)
    assert list(tmp_path.iterdir()) == []


def test_simulate_to_still_writes_when_the_disk_suffices(tmp_path, monkeypatch):
    e = _experiment()
    _tiny_disk(monkeypatch, 10 * 2**20)
    ptyfast.simulate_to(e, tmp_path / "out.npz", seed=1)
    back = ptyfast.open(tmp_path / "out.npz").diffraction
    assert np.array_equal(back, ptyfast.simulate(e, seed=1).diffraction)


def test_model_cli_refuses_a_dataset_larger_than_the_free_disk(tmp_path, monkeypatch, capsys):
    _tiny_disk(monkeypatch, 10_000)
    _no_simulation(monkeypatch)
    out = tmp_path / "d.npz"
    rc = cli.main(["simulate", "-n", "64", "--N", "16", "--object-size", "64",
                   "--detector", "ideal", "-o", str(out), "-q"])  # fmt: skip
    assert rc == 2
    assert "free" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["cxi", "ptychodus.h5"])
def test_dry_run_refuses_a_metre_format_without_geometry(tmp_path, capsys, ext):
    pytest.importorskip("h5py")
    args = ["simulate", "-n", "32", "--N", "16", "--object-size", "64", "--detector", "ideal",
            "-o", str(tmp_path / f"d.{ext}"), "-q"]  # fmt: skip
    assert cli.main(args) == 2
    run_err = capsys.readouterr().err
    assert cli.main([*args, "--dry-run"]) == 2
    dry_err = capsys.readouterr().err
    assert "needs dataset.geometry" in run_err
    assert "needs dataset.geometry" in dry_err
    assert list(tmp_path.iterdir()) == []


def _dataset_file(tmp_path, ext: str, m: int = 8):
    ds = ptyfast.simulate(_experiment(m=m, geometry=True), seed=3)
    path = tmp_path / f"d.{ext}"
    ptyfast.io.save(ds, path)
    return path


def _small_memory(monkeypatch: pytest.MonkeyPatch, nbytes: int) -> None:
    monkeypatch.setattr(_kernels, "available_memory", lambda: (nbytes, "test limit"))


@pytest.mark.parametrize(("ext", "field"), [("cxi", "entry_1/image_2/data"),
                                            ("ptychodus.h5", "object")])  # fmt: skip
def test_hdf5_readers_refuse_a_declared_array_beyond_the_memory(tmp_path, monkeypatch, ext, field):
    h5py = pytest.importorskip("h5py")
    path = _dataset_file(tmp_path, ext)
    with h5py.File(path, "r+") as f:  # a 64 MiB object declared, no byte of it stored
        del f[field]
        f.create_dataset(field, shape=(4096, 2048), dtype="complex64", chunks=(256, 256))
    _small_memory(monkeypatch, 16 * 2**20)
    with pytest.raises(ptyfast.io.FormatError, match=r"\(4096, 2048\) complex64 needs .*"):
        ptyfast.io.reader(path)


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_zarr_reader_refuses_a_declared_array_beyond_the_memory(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    path = _dataset_file(tmp_path, "zarr")
    root = zarr.open_group(store=str(path), mode="r+")
    del root["object"]
    root.create_array("object", shape=(4096, 2048), dtype="complex64", chunks=(256, 256))
    zarr.consolidate_metadata(str(path))
    _small_memory(monkeypatch, 16 * 2**20)
    with pytest.raises(ptyfast.io.FormatError, match=r"'object' \(4096, 2048\) complex64 needs"):
        ptyfast.io.reader(path)


@pytest.mark.parametrize("ext", ["npz", "cxi", "zarr"])
def test_open_checks_the_patterns_against_the_memory_blocks_do_not(tmp_path, monkeypatch, ext):
    pytest.importorskip("zarr" if ext == "zarr" else "numpy")
    if ext == "cxi":
        pytest.importorskip("h5py")
    path = _dataset_file(tmp_path, ext, m=4096)  # 4 MiB of 16 x 16 float32 patterns
    _small_memory(monkeypatch, 3 * 2**20)
    monkeypatch.setattr(_kernels, "SMALL_ALLOCATION", 2**16)
    with pytest.raises(ptyfast.io.FormatError, match=r"patterns 0:4096 .* needs 4194304 bytes"):
        ptyfast.open(path)
    with ptyfast.io.reader(path) as r:  # block by block, the same file reads
        assert sum(d.shape[0] for _, d, _ in r.blocks(512)) == 4096


@pytest.mark.parametrize("patches", [False, True])
def test_dry_run_size_of_a_zarr_store_covers_its_padded_last_chunk(tmp_path, monkeypatch, patches):
    pytest.importorskip("zarr")
    monkeypatch.setattr(ptyfast.io.zarr, "CHUNK_BYTES", 1 << 18)  # 256 or 128 patterns a chunk
    e = _experiment(m=600)
    path = tmp_path / "d.zarr"
    ptyfast.simulate_to(e, path, seed=1, patches=patches)
    written = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    predicted = _dryrun.model_outputs(
        path, "zarr", m=600, n=16, n_modes=1, object_shape=(64, 64),
        dtype=np.dtype(np.float32), readings_are_photons=True, patches=patches,
        provenance_bytes=len(json.dumps(ptyfast.open(path).provenance)),
    ).nbytes  # fmt: skip
    assert written <= predicted < 1.2 * written


def _open_peak(path) -> tuple[int, int]:
    import tracemalloc

    tracemalloc.start()
    try:
        ds = ptyfast.open(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, ds.diffraction.nbytes


def test_open_npz_holds_the_patterns_once(tmp_path):
    path = _dataset_file(tmp_path, "npz", m=16384)  # 16 MiB of readings
    ptyfast.open(path)  # imports, caches
    peak, data = _open_peak(path)
    assert peak < 1.25 * data + 2 * 2**20, f"peak {peak / data:.2f}x the {data} bytes of patterns"


def test_open_ptychopinn_npz_converts_without_whole_float64_copies(tmp_path):
    ds = ptyfast.simulate(_experiment(m=16384), seed=3)
    path = tmp_path / "raw.npz"
    raw = ds.to_raw_data()
    np.savez(path, diff3d=raw.diff3d, xcoords=raw.xcoords, ycoords=raw.ycoords,
             probeGuess=raw.probeGuess, objectGuess=raw.objectGuess)  # fmt: skip
    ptyfast.open(path)
    peak, data = _open_peak(path)
    assert peak < 1.25 * data + 2 * 2**20, f"peak {peak / data:.2f}x the {data} bytes of patterns"


def test_distributed_refuses_a_store_larger_than_the_free_disk(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("zarr")
    import ptyfast.distributed as D

    e = _experiment()
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as client:

        def submit(*args: object, **kwargs: object) -> None:
            raise AssertionError("a shard was submitted before the disk was checked")

        monkeypatch.setattr(client, "submit", submit)
        _tiny_disk(monkeypatch, 10_000)
        with pytest.raises(ValueError, match=r"needs .* more .* but only .* free"):
            D.simulate(e, tmp_path / "d.zarr", seed=1, client=client)
    assert list(tmp_path.iterdir()) == []  # no partial store left behind


def test_simulate_in_memory_checks_the_available_memory_not_the_installed(monkeypatch):
    e = _experiment()
    _small_memory(monkeypatch, 2**15)  # as ulimit -v or a cgroup would leave
    monkeypatch.setattr(_kernels, "SMALL_ALLOCATION", 0)
    _no_simulation(monkeypatch)
    with pytest.raises(ValueError, match=r"fits in memory.*\(test limit\).*simulate_to"):
        ptyfast.simulate(e, seed=1)


def test_zarr_write_failing_mid_block_leaves_no_hidden_store(tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    local = pytest.importorskip("zarr.storage._local")
    import errno
    import time

    real = local._put

    def put(path, value, exclusive=False):  # chunk 0 fails at once; the others land later
        if path.parent.name == "diffraction" and path.name.startswith("c."):
            if path.name == "c.0.0.0":
                raise OSError(errno.ENOSPC, "No space left on device")
            time.sleep(0.2)
        return real(path, value, exclusive=exclusive)

    monkeypatch.setattr(ptyfast.io.zarr, "CHUNK_BYTES", 1 << 12)  # 4 patterns a chunk
    monkeypatch.setattr(local, "_put", put)
    with pytest.raises(OSError, match="No space"):
        ptyfast.simulate_to(_experiment(m=32), tmp_path / "d.zarr", seed=1)
    time.sleep(0.5)  # any write still in flight has landed by now
    assert list(tmp_path.iterdir()) == []


def _campaign(n_experiments: int = 4) -> ptyfast.Campaign:
    spec = {
        "object": {"family": "dead_leaves", "shape": 64},
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": 3.0},
        "scan": {"builder": "fermat_spiral", "n": 400, "step_px": 1.0},
    }
    return ptyfast.Campaign(spec, n_experiments=n_experiments, seed=3, name="t")


def test_campaign_refuses_files_that_do_not_fit_together_before_the_first(tmp_path, monkeypatch):
    c = _campaign()
    _tiny_disk(monkeypatch, 2 * 2**20)  # each file (~0.5 MB) fits, the four (~2.1 MB) do not
    with pytest.raises(ValueError, match=r"campaign 't': its 4 files need .* but only"):
        c.simulate_to(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_campaign_cli_refuses_files_that_do_not_fit_together(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[campaign]\nname = "t"\nn_experiments = 4\nseed = 3\n'
        '[object]\nfamily = "dead_leaves"\nshape = 64\n'
        '[probe]\nbuilder = "gaussian"\nN = 16\nsigma_px = 3.0\n'
        '[scan]\nbuilder = "fermat_spiral"\nn = 400\nstep_px = 1.0\n'
    )
    _tiny_disk(monkeypatch, 2 * 2**20)
    assert cli.main(["simulate", "--recipe", str(recipe), "-o", f"{tmp_path}/out/", "-q"]) == 2
    assert "its 4 files need" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("builder", "args"),
    [
        ("fermat_spiral", (100_000, 1.0)),
        ("raster", (400, 250, 1.0)),
        ("random_uniform", (100_000, 50.0, 50.0)),
        ("lissajous", (100_000, 50.0, 50.0)),
    ],
)
def test_scan_builders_check_the_memory_before_building(monkeypatch, builder, args):
    _small_memory(monkeypatch, 2**21)  # 100,000 positions take ~5-7 MiB to build
    with pytest.raises(ValueError, match=r"scan positions needs .*\(test limit\)"):
        getattr(scans, builder)(*args)


@pytest.mark.parametrize("model", [False, True])
def test_dry_run_calibrates_through_a_bounded_ring(tmp_path, monkeypatch, capsys, model):
    import tracemalloc

    monkeypatch.setattr(_dryrun, "CALIBRATION_BYTES", 1 << 20, raising=False)
    args = ["simulate", "-n", "600", "--N", "64", "--object-size", "128", "--patches",
            "--chunk-size", "8", "-o", str(tmp_path / "d.npz"), "--dry-run", "-q"]  # fmt: skip
    if model:
        args += ["--detector", "ideal"]
    assert cli.main(args) == 0  # imports, caches
    tracemalloc.start()
    try:
        assert cli.main(args) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    held = 512 * 64 * 64 * 12  # 24 MiB: the 512 calibration patterns and patches at once
    assert peak < held / 2, f"the dry run held {peak / 2**20:.1f} MiB"
    assert "512 calibration patterns" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_convert_refuses_an_output_larger_than_the_free_disk(tmp_path, monkeypatch):
    from ptyfast.io._commands import convert_file

    src = _dataset_file(tmp_path, "npz", m=64)
    _tiny_disk(monkeypatch, 10_000)
    with pytest.raises(ValueError, match=r"dst .* needs .* but only .* free"):
        convert_file(src, tmp_path / "copy.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]

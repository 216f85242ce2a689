"""The ``ptyfast simulate`` command: end to end, streaming equivalence, atomic output."""

import os
import subprocess
import sys

import numpy as np
import pytest

from ptyfast import _kernels, cli
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.datagen.objects import sim_object_image
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData

ARGS = [
    "simulate",
    "-n",
    "300",
    "--N",
    "32",
    "--object-size",
    "96",
    "--buffer",
    "16",
    "--nphotons",
    "1e6",
    "--seed",
    "7",
    "--no-progress",
    "-q",
]


def test_simulate_end_to_end_with_preview(tmp_path):
    out, png = tmp_path / "d.npz", tmp_path / "p.png"
    assert cli.main(ARGS + ["-o", str(out), "--chunk-size", "64", "--preview", str(png)]) == 0
    raw = RawData.from_file(out)
    assert raw.diff3d.shape == (300, 32, 32) and raw.diff3d.dtype == np.float32
    assert raw.probeGuess.dtype == np.complex64 and raw.objectGuess.shape == (96, 96)
    assert raw.intensity_scale > 0 and raw.metadata["seed"] == 7
    # identical to the in-memory pipeline with the same object, probe, buffer and seed
    obj = sim_object_image(96, data_source="lines", seed=7)
    probe = get_default_probe(32, scale=0.7)
    cfg = TrainingConfig(model=ModelConfig(N=32), n_groups=300, nphotons=1e6)
    ref = generate_simulated_data(cfg, obj, probe, 16.0, return_patches=False, seed=7)
    np.testing.assert_array_equal(raw.xcoords, ref.xcoords)
    np.testing.assert_array_equal(raw.diff3d, ref.diff3d)
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.std() > 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "p.png"]


def test_chunk_size_and_threads_do_not_change_output(tmp_path):
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    cli.main(ARGS + ["-o", str(a), "--chunk-size", "1000"])
    cli.main(ARGS + ["-o", str(b), "--chunk-size", "7"])
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "ptyfast", *ARGS, "-o", str(c)], check=True, env=env)
    da, db, dc = (RawData.from_file(p).diff3d for p in (a, b, c))
    np.testing.assert_array_equal(da, db)
    np.testing.assert_array_equal(da, dc)


def test_patches_option_stores_ground_truth(tmp_path):
    out = tmp_path / "y.npz"
    cli.main(ARGS + ["-o", str(out), "--patches", "--chunk-size", "50", "--no-poisson"])
    raw = RawData.from_file(out)
    expected = _kernels.extract_patches(
        raw.objectGuess, np.column_stack([raw.xcoords, raw.ycoords]), 32
    )
    np.testing.assert_array_equal(raw.Y[..., 0], expected)


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = _kernels.simulate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_kernels, "simulate", flaky)
    out = tmp_path / "x.npz"
    assert cli.main(ARGS + ["-o", str(out), "--chunk-size", "64"]) == 130
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [["-n", "0"], ["--nphotons", "-1"], ["--chunk-size", "0"]])
def test_bad_arguments_exit_2(tmp_path, bad, capsys):
    assert cli.main(ARGS + ["-o", str(tmp_path / "z.npz")] + bad) == 2
    assert "ptyfast: error" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_input_npz(tmp_path):
    obj = sim_object_image(80, data_source="points", seed=1)
    probe = get_default_probe(16).astype(np.complex64)
    src = tmp_path / "src.npz"
    np.savez(src, objectGuess=obj, probeGuess=probe)
    out = tmp_path / "o.npz"
    assert (
        cli.main(
            ["simulate", "--input", str(src), "-n", "20", "-o", str(out), "-q", "--buffer", "10"]
        )
        == 0
    )
    raw = RawData.from_file(out)
    np.testing.assert_array_equal(raw.probeGuess, probe)
    assert raw.diff3d.shape == (20, 16, 16)


def test_output_file_gets_the_umask_mode_not_mkstemps(tmp_path):
    import stat

    from ptyfast._npz import save_npz

    old = os.umask(0o027)
    try:
        save_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.npz").stat().st_mode)
    assert mode == 0o640
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(3))

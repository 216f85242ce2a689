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
    real = _kernels._simulate_into  # what the CLI calls per chunk

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_kernels, "_simulate_into", flaky)
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


# --------------------------------------------------------------------------- user errors


def _run(argv, capsys):
    """``cli.main`` in-process: (exit status, stderr); argparse's exits included."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _inputs(tmp_path):
    d = tmp_path / "inputs"
    d.mkdir()
    (d / "corrupt.npz").write_bytes(os.urandom(300))
    good = d / "good.npz"
    np.savez(good, objectGuess=np.ones((40, 40), np.complex64), probeGuess=np.ones((8, 8)))
    (d / "truncated.npz").write_bytes(good.read_bytes()[:200])
    np.savez(d / "nokeys.npz", x=np.zeros(3))
    (d / "exists.npz").write_bytes(b"keep me")
    (d / "afile").write_bytes(b"")
    return d


BAD = {
    "N=1": ["--N", "1"],
    "N<0": ["--N", "-5"],
    "N not int": ["--N", "x"],
    "object-size 0": ["--object-size", "0"],
    "n=1e9": ["-n", "1000000000"],
    "huge N": ["--N", "1000000"],
    "huge object": ["--object-size", "10000000"],
    "nphotons nan": ["--nphotons", "nan"],
    "nphotons inf": ["--nphotons", "inf"],
    "buffer<0": ["--buffer", "-1"],
    "seed<0": ["--seed", "-1"],
    "unknown option": ["--bogus"],
    "missing input": ["--input", "{d}/missing.npz"],
    "corrupt input": ["--input", "{d}/corrupt.npz"],
    "truncated input": ["--input", "{d}/truncated.npz"],
    "input without keys": ["--input", "{d}/nokeys.npz"],
    "preview format": ["--preview", "{d}/p.gif"],
    "existing output": ["-o", "{d}/exists.npz"],
    "output under a file": ["-o", "{d}/afile/x.npz"],
    "preview is output": ["-o", "{d}/o.npz", "--preview", "{d}/o.npz"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_user_error_is_one_line_and_exit_2(tmp_path, case, capsys):
    d = _inputs(tmp_path)
    before = sorted(os.listdir(d))
    argv = [a.format(d=d) for a in BAD[case]]
    if "-o" not in argv:
        argv = ["-o", str(d / "out.npz"), *argv]
    code, err = _run(ARGS[:-2] + argv, capsys)  # ARGS without -q: warnings would show
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ptyfast"), err
    assert "Traceback" not in err
    assert sorted(os.listdir(d)) == before  # nothing written, nothing left
    assert (d / "exists.npz").read_bytes() == b"keep me"


def test_too_big_datasets_are_refused_with_sizes(tmp_path, capsys):
    code, err = _run(ARGS + ["-o", str(tmp_path / "x.npz"), "-n", "1000000000"], capsys)
    assert code == 2
    assert "are free on" in err or "MemAvailable" in err
    assert "GB" in err or "TB" in err


def test_output_directory_and_overwrite(tmp_path, capsys):
    assert cli.main(ARGS + ["-o", f"{tmp_path}/new/"]) == 0  # a path ending in '/'
    made = tmp_path / "new" / cli.DEFAULT_OUTPUT_NAME
    assert made.is_file()
    first = made.read_bytes()
    # an existing directory, without the slash: the same file, refused without --overwrite
    code, err = _run(ARGS + ["-o", str(tmp_path / "new"), "--seed", "8"], capsys)
    assert code == 2 and "--overwrite" in err
    assert made.read_bytes() == first
    assert cli.main(ARGS + ["-o", str(tmp_path / "new"), "--seed", "8", "--overwrite"]) == 0
    assert made.read_bytes() != first
    assert sorted(os.listdir(tmp_path / "new")) == [cli.DEFAULT_OUTPUT_NAME]


def test_geometry_warnings(tmp_path, caplog):
    base = [a for a in ARGS if a != "-q"]
    i = base.index("--buffer")
    base = base[:i] + base[i + 2 :]
    cases = {
        "smaller than the": ["--object-size", "24", "--buffer", "4"],
        "clamped to 47": ["--buffer", "60"],
        "reach outside": ["--buffer", "4"],
    }
    for k, (expected, extra) in enumerate(cases.items()):
        caplog.clear()
        with caplog.at_level("WARNING", logger="ptyfast"):
            assert cli.main(base + extra + ["-o", str(tmp_path / f"{k}.npz")]) == 0
        assert any(expected in r.getMessage() for r in caplog.records), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="ptyfast"):  # the default buffer, ceil(N/2)
        assert cli.main(base + ["-o", str(tmp_path / "d.npz")]) == 0
    assert not caplog.records, caplog.text


def test_help_states_defaults_and_units(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 10000)" in text and "(default: 2048)" in text
    assert "in object pixels" in text and "ceil(N/2)" in text
    assert "(default: None)" not in text and "(default: False)" not in text

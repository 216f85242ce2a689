"""The command line explains itself: ``--preview`` (``ptyfast.plotting``), ``--dry-run``,
progress over every phase, help texts with the real defaults, ``--buffer``, ``-o DIR/`` and
``--overwrite`` on both simulation paths.

Every check reads back what was written (the image's bytes, the files, the printed estimate)
and compares it with an independent computation (the in-memory simulation, the detector's
formula, the real file sizes).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import _dryrun, cli, plotting, probes, scans
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.datagen.objects import sim_object_image
from ptyfast.model import _commands, experiment
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.probe import get_default_probe

PLAIN = ["simulate", "-n", "60", "--N", "16", "--object-size", "48", "--nphotons", "1e5"]
PLAIN += ["--seed", "3", "--no-progress"]
MODEL = [*PLAIN, "--object", "dead_leaves", "--detector", "integrating"]
MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse (--help)
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _small_dataset(detector: ptyfast.Detector | None = None) -> ptyfast.Dataset:
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=16)
    e = ptyfast.Experiment(
        ptyfast.objects.dead_leaves(48, seed=1),
        probes.modes(probes.gaussian(16, 3.0), 2, decay=0.5),
        scans.fermat_spiral(20, 1.5).jitter(0.3, seed=2),
        detector or ptyfast.Detector.integrating(beamstop_radius_px=1.5, dead_fraction=0.02),
        photons=1e5,
        geometry=g,
    )
    return ptyfast.simulate(e, seed=4)


# --------------------------------------------------------------------------- preview


def test_preview_formats_follow_the_extension(tmp_path):
    ds = _small_dataset()
    for fmt in ("pdf", "svg"):  # PNG: the command-line tests below
        path = plotting.preview(ds, tmp_path / f"p.{fmt.upper()}", dpi=40)
        head = path.read_bytes()[:400]
        assert head.startswith(MAGIC[fmt]) if fmt in MAGIC else b"<svg" in head, fmt
    with pytest.raises(ValueError, match="exists"):
        ds.preview(tmp_path / "p.PDF")  # no overwrite, refused before drawing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.PDF", "p.SVG"]


def test_preview_data_shows_detected_photons_and_the_readings(tmp_path):
    ds = _small_dataset()
    d = plotting.PreviewData.from_dataset(ds, n_patterns=2)
    det = ds.detector
    # photons = (readings - offset)/gain - dark, clipped at 0; NaN where masked
    readings = ds.diffraction[:2].astype(np.float64)
    expect = np.maximum((readings - det.offset) / det.gain - det.dark, 0)
    expect[:, ~ds.mask] = np.nan
    np.testing.assert_array_equal(d.photons_patterns, expect)
    np.testing.assert_array_equal(d.readings, ds.diffraction[0])
    assert d.readings_unit == "reading (ADU, uint16)"
    assert d.seed == 4 and d.n_patterns == 20 and d.N == 16
    assert np.count_nonzero(d.pixel_map) == np.count_nonzero(~ds.mask)
    # The experiment's preview simulates its first patterns: the dataset's bits.
    e_prev = plotting.PreviewData.from_experiment(_experiment_of(ds), 4, n_patterns=2)
    np.testing.assert_array_equal(e_prev.readings, ds.diffraction[0])
    title = plotting._title(d)
    assert "20 patterns of 16×16" in title and "seed 4" in title and "2 probe modes" in title
    assert "E = 8 keV" in title and "1e5 photons/pattern" in title


def _experiment_of(ds: ptyfast.Dataset) -> ptyfast.Experiment:
    from ptyfast.model import provenance

    return provenance.experiment_from(ds.provenance, object=ds.object, probe=ds.probe)


def test_gif_is_refused_before_any_work(tmp_path, capsys):
    for argv in (PLAIN, MODEL):
        out = tmp_path / "d.npz"
        code, _, err = _run([*argv, "-o", str(out), "--preview", str(tmp_path / "p.gif")], capsys)
        assert code == 2 and "expected .png, .pdf or .svg, got .gif" in err
        assert list(tmp_path.iterdir()) == []
    # from Python: refused before matplotlib is even imported (blocked here)
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import numpy as np, ptyfast, ptyfast.plotting as pl\n"
        "from ptyfast import probes, scans\n"
        "e = ptyfast.Experiment(np.ones((32, 32)), probes.disk(8), scans.raster(2, 2, 3.0))\n"
        "ds = ptyfast.simulate(e, seed=1)\n"
        "try:\n    pl.preview(ds, 'x.gif')\nexcept ValueError as exc:\n    print('refused', exc)\n"
        "try:\n    pl.figure(ds)\nexcept ImportError as exc:\n    print('import', exc)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "refused preview 'x.gif'" in res.stdout
    assert "pip install 'ptyfast[plot]'" in res.stdout
    assert not (tmp_path / "x.gif").exists()


def test_the_cli_imports_no_matplotlib():
    code = (
        "import sys, ptyfast.cli, ptyfast.plotting, ptyfast._dryrun, ptyfast._progress\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "assert 'tqdm' not in sys.modules, 'tqdm imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plain_preview_shows_the_counts_of_the_simulation(tmp_path):
    out, png = tmp_path / "d.npz", tmp_path / "p.png"
    assert cli.main([*PLAIN, "-q", "-o", str(out), "--preview", str(png)]) == 0
    assert png.read_bytes()[:4] == MAGIC["png"]
    obj = sim_object_image(48, data_source="lines", seed=3)
    probe = get_default_probe(16, scale=0.7).astype(np.complex64)
    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=60, nphotons=1e5)
    ref = generate_simulated_data(cfg, obj, probe, 8.0, return_patches=False, seed=3)
    s = float(ref.intensity_scale)
    summary = {
        "xcoords": ref.xcoords,
        "ycoords": ref.ycoords,
        "intensity_scale": s,
        "patterns": ref.diff3d[:3],
        "N": 16,
        "seed": 3,
        "nphotons": 1e5,
    }
    d = cli.preview_data(np.asarray(obj, np.complex64), probe, summary)
    counts = (s * ref.diff3d[:3].astype(np.float64)) ** 2
    np.testing.assert_array_equal(d.photons_patterns, counts)
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3 * counts.max() ** 0.5)


# --------------------------------------------------------------------------- dry run


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dry_run_plain_prints_the_estimates_and_writes_nothing(tmp_path, capsys):
    before = _listing(tmp_path)
    argv = [*PLAIN, "-o", f"{tmp_path}/new/", "--patches", "--preview", str(tmp_path / "p.png")]
    code, out, _ = _run([*argv, "--dry-run"], capsys)
    assert code == 0, out
    assert _listing(tmp_path) == before  # not even the directory
    size = cli.estimate_output_bytes(60, 16, (48, 48), store_patches=True)
    assert f"new/{cli.DEFAULT_OUTPUT_NAME} (npz): {_dryrun.human(size)}" in out
    assert "diff3d: (60 × 16 × 16) float32" in out and "Y: (60 × 16 × 16 × 1) complex64" in out
    assert re.search(r"disk +needs .* free (on|here)", out) and "fits" in out
    assert "peak memory   about" in out
    assert re.search(r"simulation +[<\d][^\n]*60 patterns, measured", out), out
    for phase in ("object", "intensity", "patches Y", "writing"):
        assert re.search(rf"\n +{re.escape(phase)} +[\d<]", out), (phase, out)
    # the real run writes the size the dry run announced (an upper bound: 64 kB of headers)
    assert cli.main([*argv, "-q"]) == 0
    actual = (tmp_path / "new" / cli.DEFAULT_OUTPUT_NAME).stat().st_size
    assert actual <= size <= actual + (1 << 16)
    # an existing output without --overwrite, or a run too big: refused, exit status 2
    code, _, err = _run([*PLAIN, "-o", f"{tmp_path}/new/", "--dry-run"], capsys)
    assert code == 2 and "--overwrite" in err
    big = [*PLAIN, "-o", str(tmp_path / "x.npz"), "-n", str(10**12), "--dry-run"]
    code, out, err = _run(big, capsys)
    assert code == 2 and "the run would be refused" in err and "does NOT fit" in out
    assert not (tmp_path / "x.npz").exists()


def test_dry_run_model_estimates_sizes_of_every_format_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("zarr")
    pytest.importorskip("h5py")
    geo = ["--energy-eV", "8000", "--distance-m", "2", "--detector-pixel-m", "75e-6"]
    for name in ("a.npz", "a.zarr", "a.cxi", "a.ptychodus.h5"):
        out = tmp_path / name
        argv = [*MODEL, *geo, "--patches", "-o", str(out)]
        before = _listing(tmp_path)
        code, text, _ = _run([*argv, "--dry-run"], capsys)
        assert code == 0 and _listing(tmp_path) == before
        assert "60 patterns of 16×16, 1 probe mode, detector integrating (uint16)" in text
        m = re.search(r"\): ([\d.]+) (kB|MB)\n", text)
        assert m is not None, text
        estimate = float(m.group(1)) * {"kB": 1e3, "MB": 1e6}[m.group(2)]
        assert cli.main([*argv, "-q"]) == 0
        actual = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
        # within 2 % and the 64 kB allowance for headers (this dataset is tiny)
        assert abs(actual - estimate) <= 0.02 * actual + (1 << 16), (name, actual, estimate)
        for p in list(tmp_path.iterdir()):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def test_dry_run_campaign_plans_every_experiment_and_writes_nothing(tmp_path, capsys):
    assert cli.main(["recipe", "--example", "-o", str(tmp_path / "r.toml")]) == 0
    text = (tmp_path / "r.toml").read_text()
    text = text.replace("n = 200", "n = 12").replace("shape = [256, 256]", "shape = [128, 128]")
    (tmp_path / "r.toml").write_text(text)
    before = _listing(tmp_path)
    code, out, _ = _run(
        ["simulate", "--recipe", str(tmp_path / "r.toml"), "-o", f"{tmp_path}/c/", "--dry-run"],
        capsys,
    )
    assert code == 0 and _listing(tmp_path) == before
    for i in range(4):
        assert f"c/example-0000{i}.npz (npz)" in out
    assert "total         4 files" in out and "kind" in out


# --------------------------------------------------------------------------- progress


def test_progress_covers_every_phase_on_both_paths(tmp_path, capsys):
    png = tmp_path / "p.png"
    argv = [a for a in PLAIN if a != "--no-progress"] + ["--progress", "--patches", "-q"]
    assert cli.main([*argv, "-o", str(tmp_path / "a.npz"), "--preview", str(png)]) == 0
    err = capsys.readouterr().err
    for phase in ("object", "intensity", "simulate+write", "patches", "finish", "preview"):
        assert re.search(rf"{re.escape(phase)} *: 100%", err), (phase, err)
    argv = [a for a in MODEL if a != "--no-progress"] + ["--progress", "-q"]
    assert cli.main([*argv, "-o", str(tmp_path / "b.npz")]) == 0
    err = capsys.readouterr().err
    for phase in ("object", "probe", "intensity", "simulate+write", "finish"):
        assert re.search(rf"{re.escape(phase)} *: 100%", err), (phase, err)
    assert cli.main([*argv, "-o", str(tmp_path / "c.npz")]) == 0  # quiet: nothing on stdout
    assert capsys.readouterr().out == ""


def test_intensity_pass_in_pieces_changes_no_bit(tmp_path, monkeypatch, capsys):
    e_args = (
        ptyfast.objects.recipe("grf", shape=64, seed=1),
        probes.modes(probes.gaussian(16, 3.0), 3, decay=0.5),
        scans.random_uniform(50, 30.0, seed=3),
    )
    whole = ptyfast.Experiment(*e_args).intensity_scale
    monkeypatch.setattr(experiment, "_PASS_PIXELS", 7 * 16 * 16)  # pieces of 7 patterns
    pieces = ptyfast.Experiment(*e_args, progress=True)
    assert "intensity     : 100%" in capsys.readouterr().err
    assert pieces.intensity_scale == whole
    monkeypatch.setattr(cli, "_PASS_PIXELS", 7 * 16 * 16)
    out = tmp_path / "d.npz"
    assert cli.main([*PLAIN, "-q", "-o", str(out)]) == 0
    obj = sim_object_image(48, data_source="lines", seed=3)
    probe = get_default_probe(16, scale=0.7)
    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=60, nphotons=1e5)
    ref = generate_simulated_data(cfg, obj, probe, 8.0, return_patches=False, seed=3)
    from ptyfast.raw_data import RawData

    np.testing.assert_array_equal(RawData.from_file(out).diff3d, ref.diff3d)


# --------------------------------------------------------------------------- help and defaults

# Options without a default value: nothing is used unless they are given.
_NO_DEFAULT = {
    "input",
    "preview",
    "recipe",
    "probe_param",
    "scan_param",
    "detector_param",
    "object_param",
    "energy_eV",
    "distance_m",
    "detector_pixel_m",
}


def test_help_states_every_default(capsys):
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["simulate"]
    code, text, _ = _run(["simulate", "--help"], capsys)
    flat = " ".join(text.split())
    assert code == 0
    for action in sub._actions:
        if action.dest in ("help",) or action.nargs == 0:
            continue
        helptext = " ".join((action.help or "").split())
        assert helptext and helptext in flat, action.dest
        if action.default is not None:
            assert f"{helptext} (default: {action.default})" in flat, action.dest
        elif action.dest not in _NO_DEFAULT:
            assert "default" in helptext, f"--{action.dest}: the help must state the default"
    assert "in object pixels" in flat  # the buffer's unit


def test_the_stated_defaults_are_the_real_ones(tmp_path):
    args = cli._parser().parse_args(["simulate", "--jitter-px", "0"])  # any model option
    doc = _commands._doc_from_options(args)
    assert doc["experiment"] == {"photons": 1e9, "seed": 42, "patches": False}
    assert doc["probe"] == {"builder": "disk", "N": 64}  # --probe disk, --modes 1, in focus
    assert doc["scan"]["builder"] == "random_uniform" and doc["scan"]["n"] == 10_000
    assert "detector" not in doc  # ideal
    assert doc["object"] == {"family": "lines", "shape": 256}
    assert args.chunk_size == 2048 and args.output == cli.DEFAULT_OUTPUT_NAME
    # the plain path's buffer default: ceil(N/2) (every patch inside)
    plain = cli._parser().parse_args(["simulate"])
    assert plain.buffer is None and plain.progress is None
    out = cli.simulate_to_file(
        tmp_path / "d.npz",
        np.ones((40, 40), np.complex64),
        np.ones((15, 15), np.complex64),
        n_images=5,
        overwrite=True,
    )
    assert out["buffer"] == math.ceil(15 / 2)


# --------------------------------------------------------------------------- buffer, -o, overwrite


def test_buffer_on_the_model_path(tmp_path, capsys):
    out = tmp_path / "b.npz"
    assert cli.main([*MODEL, "-q", "-o", str(out), "--buffer", "12"]) == 0
    x, y = ptyfast.open(out).positions_nominal.T
    # random positions within [buffer, W - buffer] as on the plain path (placement δ = ½)
    assert x.min() >= 12 and x.max() <= 48 - 12 and y.min() >= 12 and y.max() <= 48 - 12
    assert x.max() - x.min() > 18  # spread over the allowed width of 24
    for extra, message in (
        (["--buffer", "3"], "scan leaves the object"),  # patches reach outside: an error here
        (["--buffer", "24"], "--buffer must leave room for the random scan"),
        (["--buffer", "8", "--scan", "raster", "--scan-param", "rows=2"], "--buffer sets"),
        (["--object-size", "12"], "must be larger than the probe"),
    ):
        code, _, err = _run([*MODEL, "-o", str(tmp_path / "e.npz"), *extra], capsys)
        assert code == 2 and message in err, (extra, err)
    assert not (tmp_path / "e.npz").exists()


def test_output_directory_and_overwrite_on_the_model_path(tmp_path, capsys):
    made = tmp_path / "new" / "ptyfast_simulation.npz"
    assert cli.main([*MODEL, "-q", "-o", f"{tmp_path}/new/"]) == 0
    first = made.read_bytes()
    code, _, err = _run([*MODEL, "-o", str(tmp_path / "new"), "--seed", "9"], capsys)
    assert code == 2 and "--overwrite" in err and made.read_bytes() == first
    assert cli.main([*MODEL, "-q", "-o", str(tmp_path / "new"), "--seed", "9", "--overwrite"]) == 0
    assert made.read_bytes() != first
    assert sorted(os.listdir(tmp_path / "new")) == ["ptyfast_simulation.npz"]


@pytest.mark.parametrize("fmt", ["npz", "zarr"])
def test_peak_memory_estimate_bounds_the_measured_peak(tmp_path, fmt):
    """The dry run's peak memory is an upper estimate of the arrays a run allocates (NumPy's
    allocations, which tracemalloc sees; the Rust kernels' per-thread scratch is small)."""
    import tracemalloc

    if fmt == "zarr":
        pytest.importorskip("zarr")
    for patches in (False, True):
        tracemalloc.start()
        try:
            e = ptyfast.Experiment(
                ptyfast.objects.recipe("dead_leaves", shape=160, seed=1),
                probes.recipe("gaussian", N=32, sigma_px=4.0, operations=[{"op": "modes", "n": 2}]),
                scans.random_uniform(1500, 100.0, seed=1),
                ptyfast.Detector.integrating(),
                1e5,
            )
            out = tmp_path / f"m{int(patches)}.{fmt}"
            experiment.simulate_to(e, out, seed=1, patches=patches, chunk_size=512)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        est = _dryrun.model_peak_memory(
            m=1500, n=32, n_modes=2, object_shape=(160, 160), itemsize=2, chunk=512,
            patches=patches, fmt=fmt,
        )  # fmt: skip
        assert peak <= est <= 6 * peak, (fmt, patches, peak, est)
    if fmt != "npz":
        return
    tracemalloc.start()  # PtychoPINN's path
    try:
        cli.simulate_to_file(
            tmp_path / "p.npz", sim_object_image(160, data_source="lines", seed=1),
            get_default_probe(32), n_images=1500, chunk_size=512, store_patches=True,
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = cli.estimate_peak_memory(1500, 32, (160, 160), chunk_size=512, store_patches=True)
    assert peak <= est <= 6 * peak, ("plain", peak, est)


@pytest.mark.parametrize("value", ["no", "False", 2, None])
def test_preview_overwrite_takes_only_booleans(tmp_path, value):
    """``overwrite="no"`` once replaced an existing figure."""
    e = ptyfast.Experiment(np.ones((64, 64)), probes.disk(16), scans.raster(2, 2, 5.0))
    ds = ptyfast.simulate(e, seed=1)
    target = tmp_path / "p.png"
    target.write_bytes(b"keep")
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        plotting.preview(ds, target, overwrite=value)
    assert target.read_bytes() == b"keep"

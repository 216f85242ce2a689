"""The model on the command line: ``ptyfast simulate`` with model options or ``--recipe``,
``ptyfast recipe --example`` / ``--from``.

Outputs are compared with the Python API (the same recipe simulated in process) bit for bit;
errors are one line with exit status 2 and leave no file.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import ptyfast
from ptyfast.cli import main
from ptyfast.model import recipes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SMALL = ["-n", "30", "--N", "16", "--object-size", "64", "--nphotons", "1e5", "-q"]


def test_simulate_with_model_options_equals_the_api(tmp_path, capsys):
    out = tmp_path / "a.npz"
    argv = [
        "simulate",
        "-o",
        str(out),
        *SMALL,
        "--object",
        "dead_leaves",
        "--probe",
        "gaussian",
        "--probe-param",
        "sigma_px=3.5",
        "--modes",
        "2",
        "--scan",
        "fermat_spiral",
        "--step-px",
        "1.5",
        "--jitter-px",
        "0.3",
        "--drift-px",
        "0.01,-0.02",
        "--detector",
        "integrating",
        "--detector-param",
        "beamstop_radius_px=1.5",
        "--seed",
        "5",
        "--patches",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out == ""
    ds = ptyfast.open(out)
    assert ds.diffraction.dtype == np.uint16 and ds.n_modes == 2 and ds.patches is not None
    assert not ds.mask.all()
    doc = tomllib.loads(recipes.from_provenance(ds))
    assert doc["experiment"]["seed"] == 5 and doc["probe"]["sigma_px"] == 3.5
    again = recipes.plan(doc).simulate()
    np.testing.assert_array_equal(again.diffraction, ds.diffraction)
    np.testing.assert_array_equal(again.patches, ds.patches)
    np.testing.assert_array_equal(ds.positions_true, again.positions_true)
    assert again.provenance["experiment"] == ds.provenance["experiment"]


def test_recipe_from_a_dataset_regenerates_it_through_the_cli(tmp_path):
    a, toml, b = tmp_path / "a.zarr", tmp_path / "a.toml", tmp_path / "b.npz"
    pytest.importorskip("zarr")
    argv = ["simulate", "-o", str(a), *SMALL, "--scan", "raster", "--scan-param", "rows=5"]
    argv += ["--scan-param", "cols=6", "--step-px", "3", "--energy-eV", "8000"]
    argv += ["--distance-m", "2", "--detector-pixel-m", "75e-6", "--detector", "eiger"]
    assert main(argv) == 0
    assert main(["recipe", "--from", str(a), "-o", str(toml)]) == 0
    assert main(["simulate", "--recipe", str(toml), "-o", str(b), "-q"]) == 0
    da, db = ptyfast.open(a), ptyfast.open(b)
    assert da.geometry == db.geometry and da.geometry is not None
    np.testing.assert_array_equal(da.diffraction, db.diffraction)
    assert da.provenance == db.provenance


def test_recipe_example_is_printed_and_a_campaign_goes_to_a_directory(tmp_path, capsys):
    assert main(["recipe", "--example"]) == 0
    text = capsys.readouterr().out
    doc = tomllib.loads(text)
    # A small version of the template: two experiments, few positions.
    doc["campaign"]["n_experiments"] = 2
    doc["scan"]["n"] = 12
    doc["object"]["shape"] = [128, 128]
    path = tmp_path / "c.toml"
    path.write_text(recipes.dumps(doc))
    out = tmp_path / "out"
    preview = tmp_path / "p.png"
    rc = main(["simulate", "--recipe", str(path), "-o", f"{out}/", "--preview", str(preview)])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("campaign 'example': 2 experiments")
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["example-00000.npz", "example-00001.npz"]
    assert preview.stat().st_size > 1000
    c = ptyfast.Campaign.from_dict(doc)
    for i, f in enumerate(files):
        np.testing.assert_array_equal(ptyfast.open(f).diffraction, c.simulate(i).diffraction)
    # The whole campaign back from one of its files.
    assert main(["recipe", "--from", str(files[1]), "--campaign"]) == 0
    back = ptyfast.Campaign.from_dict(tomllib.loads(capsys.readouterr().out))
    assert back.to_dict() == c.to_dict()
    # Running it again without --overwrite is refused before anything is written.
    before = [f.stat().st_mtime_ns for f in files]
    assert main(["simulate", "--recipe", str(path), "-o", f"{out}/"]) == 2
    assert "exists" in capsys.readouterr().err
    assert [f.stat().st_mtime_ns for f in files] == before


def test_input_arrays_are_recorded_by_reference_and_replayable(tmp_path):
    rng = np.random.default_rng(0)
    obj = (1 + rng.random((64, 64))).astype(np.complex64)
    probe = ptyfast.probes.gaussian(16, 3.0)
    inp = tmp_path / "in.npz"
    np.savez(inp, objectGuess=obj, probeGuess=probe)
    out = tmp_path / "d.npz"
    argv = ["simulate", "-o", str(out), "--input", str(inp), "-n", "20", "-q"]
    assert main([*argv, "--jitter-px", "0.2", "--nphotons", "1e4"]) == 0
    ds = ptyfast.open(out)
    np.testing.assert_array_equal(ds.object, obj)
    assert_equal = np.testing.assert_array_equal
    assert_equal(ptyfast.replay(ds).diffraction, ds.diffraction)
    toml = tmp_path / "r.toml"
    assert main(["recipe", "--from", str(out), "-o", str(toml)]) == 0
    again = tmp_path / "again.npz"
    assert main(["simulate", "--recipe", str(toml), "-o", str(again), "--input", str(inp)]) == 0
    assert_equal(ptyfast.open(again).diffraction, ds.diffraction)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--probe-param", "sigma_px"], "--probe-param must be KEY=VALUE"),
        (["--energy-eV", "8000"], "--energy-eV, --distance-m and --detector-pixel-m go together"),
        (
            ["--probe", "fresnel_zone_plate"],
            r"fresnel_zone_plate needs a geometry.*\(on the command line: \[geometry\] is "
            r"--energy-eV, --distance-m and --detector-pixel-m; \[probe\] is --probe, ",
        ),
        # A recipe error from the options says which options set the section it names.
        (
            ["--probe", "gaussian"],
            r"\[probe\]: gaussian: missing parameters \['sigma_px'\] \(on the command line: "
            r"\[probe\] is --probe, --probe-param KEY=VALUE",
        ),
        (["--jitter-px", "nan"], "--jitter-px must be finite"),
        (["--drift-px", "1"], "--drift-px must be VX,VY"),
        (["--modes", "0"], r"--modes must be an integer in \[1, 64\]"),
        (["--nphotons", "0", "--modes", "2"], "--nphotons must be a positive finite number"),
        (["--detector-param", "qe=2"], r"\[detector\]: qe must be in"),
        (["--object-size", "10", "--object", "dead_leaves"], "must be larger than the probe"),
        (["--scan", "raster", "--scan-param", "rows=3"], r"\[scan\]"),
        (["--scan", "fermat_spiral", "--step-px", "40"], "scan leaves the object"),
    ],
)
def test_errors_are_one_line_with_exit_2_and_no_file(tmp_path, capsys, argv, message):
    out = tmp_path / "e.npz"
    rc = main(["simulate", "-o", str(out), "-n", "20", "--N", "16", "--object-size", "64", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("ptyfast: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "no such recipe file"),
        (["--probe", "disk"], r"--recipe takes the whole experiment.*--probe"),
        # options with defaults: given ones are refused, not silently ignored
        (["-n", "20"], r"drop \['--n-images'\]"),
        (["--N", "16", "--seed", "3"], r"drop \['--N', '--seed'\]"),
        (["--nphotons", "1e6", "--object", "grf"], r"--nphotons.*--object"),
        (["--object-size", "64", "--patches", "--no-poisson"], r"--object-size.*--no-poisson"),
        (["--mode-decay", "0.3"], r"--mode-decay"),
    ],
)
def test_recipe_refuses_options_it_would_ignore(tmp_path, capsys, argv, message):
    out = tmp_path / "e.npz"
    rc = main(["simulate", "--recipe", str(tmp_path / "missing.toml"), "-o", str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ptyfast: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_mode_decay_needs_modes(tmp_path, capsys):
    out = tmp_path / "e.npz"
    base = ["simulate", "-o", str(out), "-n", "8", "--N", "16", "--object-size", "64", "-q"]
    assert main([*base, "--mode-decay", "0.3"]) == 2
    assert "--mode-decay applies only with --modes > 1" in capsys.readouterr().err
    assert not out.exists()
    assert main([*base, "--mode-decay", "0.3", "--modes", "2"]) == 0
    assert ptyfast.open(out).probe.shape == (2, 16, 16)


def test_jitter_off_the_default_scan_says_how_to_leave_room(tmp_path, capsys):
    # The default random scan fills the object less N/2 on each side, so a jitter of 2 px
    # takes some of 30 positions past the edge: the error says which option leaves room.
    out = tmp_path / "j.npz"
    base = ["simulate", "-o", str(out), "-n", "30", "--object-size", "96", "--seed", "1", "-q"]
    assert main([*base, "--jitter-px", "2"]) == 2
    err = capsys.readouterr().err
    assert "scan leaves the object" in err and "leave room with --buffer" in err
    assert err.count("\n") == 1 and not out.exists()
    assert main([*base, "--jitter-px", "2", "--buffer", "43"]) == 0
    assert ptyfast.open(out).n_patterns == 30


def test_recipe_command_errors(tmp_path, capsys):
    bad = tmp_path / "x.toml"
    bad.write_text("x = 1\n")
    assert main(["recipe", "--from", str(bad)]) == 2
    assert "not a ptyfast dataset" in capsys.readouterr().err
    assert main(["recipe", "--example", "--campaign"]) == 2
    assert "--campaign goes with --from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["recipe"])  # one of --example / --from is required


def test_recipe_from_a_compatible_layer_file_says_it_holds_no_recipe(tmp_path, capsys):
    """A file of the PtychoPINN-compatible simulation has a provenance of another kind: the
    error says so (it was "provenance['schema'] must be 'ptyfast.provenance' ... got None")."""
    out = tmp_path / "c.npz"
    assert main(["simulate", "-o", str(out), "-n", "8", "--N", "16", "-q"]) == 0
    assert main(["recipe", "--from", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "holds no recipe" in err and "'PtychoPINN raw NPZ' record" in err
    # The same words from the API, where the record is checked.
    with pytest.raises(ValueError, match="'PtychoPINN raw NPZ' record.*holds no recipe"):
        ptyfast.replay(ptyfast.open(out).provenance)


def test_preview_is_checked_before_any_work(tmp_path, capsys):
    out = tmp_path / "d.npz"
    base = ["simulate", "-o", str(out), *SMALL, "--object", "dead_leaves"]
    assert main([*base, "--preview", str(tmp_path / "p.gif")]) == 2
    assert "expected .png, .pdf or .svg" in capsys.readouterr().err
    existing = tmp_path / "p.png"
    existing.write_bytes(b"old")
    assert main([*base, "--preview", str(existing)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert not out.exists() and existing.read_bytes() == b"old"
    assert main([*base, "--preview", str(existing), "--overwrite"]) == 0
    assert out.exists() and existing.read_bytes()[:4] == b"\x89PNG"


def _small_campaign_recipe(capsys) -> dict:
    assert main(["recipe", "--example"]) == 0
    doc = tomllib.loads(capsys.readouterr().out)
    doc["campaign"]["n_experiments"] = 1
    doc["scan"]["n"] = 4
    doc["object"]["shape"] = [128, 128]
    return doc


@pytest.mark.parametrize(
    "change, message",
    [
        # once wrote example-00000.npz next to the output directory, not inside it
        (lambda d: d["campaign"].update(name="../escaped"), r"name must be usable in a file name"),
        (lambda d: d["campaign"].update(name="a/b"), r"contains '/'"),
        # once "'int' object is not iterable"
        (lambda d: d["scan"].update(errors=5), r"scan\.errors must be a list of tables"),
    ],
)
def test_recipe_values_that_broke_the_run_are_one_line_errors(tmp_path, capsys, change, message):
    doc = _small_campaign_recipe(capsys)
    change(doc)
    path = tmp_path / "r.toml"
    path.write_text(recipes.dumps(doc))
    out = tmp_path / "sub" / "out"
    rc = main(["simulate", "--recipe", str(path), "-o", f"{out}/"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ptyfast: error: ") and err.count("\n") == 1, err
    assert __import__("re").search(message, err), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["r.toml"]


def test_a_recipe_nested_too_deeply_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "r.toml"
    path.write_text("x = " + "[" * 600 + "]" * 600 + "\n")
    rc = main(["simulate", "--recipe", str(path), "-o", str(tmp_path / "e.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nested too deeply" in err, err[:500]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["simulate", "-o", ""], "--output"),
        (["simulate", "--input", ""], "--input"),
        (["simulate", "--preview", ""], "--preview"),
        (["simulate", "--scheduler", " "], "--scheduler"),
        (["recipe", "--example", "-o", ""], "--output"),
    ],
)
def test_empty_option_values_are_errors_not_defaults(tmp_path, capsys, monkeypatch, argv, option):
    """Each once fell back silently (the built-in object, ./ptyfast_simulation.npz, a local
    run, no preview, stdout)."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"ptyfast: error: {option} must not be empty, got {argv[-1]!r}\n"
    assert not list(tmp_path.iterdir())


def test_a_zarr_output_is_a_store_never_a_directory_to_write_into(tmp_path, capsys):
    base = ["simulate", "-n", "8", "--N", "16", "--object-size", "48", "-q"]
    store = tmp_path / "st.zarr"
    # The plain form writes NPZ: a .zarr (.h5, .cxi) name is refused, not given an NPZ.
    assert main([*base, "-o", str(store)]) == 2
    assert "this form of simulate writes PtychoPINN's NPZ" in capsys.readouterr().err
    assert not store.exists()
    pytest.importorskip("zarr")
    assert main([*base, "-o", str(store), "--detector", "ideal"]) == 0
    before = sorted(p.name for p in store.iterdir())
    # An existing store was taken for a directory: ptyfast_simulation.npz went inside it.
    assert main([*base, "-o", str(store), "--detector", "ideal"]) == 2
    assert "exists; pass overwrite=True" in capsys.readouterr().err
    assert main([*base, "-o", str(store), "--detector", "ideal", "--seed", "5", "--overwrite"]) == 0
    assert sorted(p.name for p in store.iterdir()) == before
    assert ptyfast.open(store).provenance["simulation"]["seed"] == 5


def test_input_object_with_a_built_probe(tmp_path, capsys):
    """``--input`` with ``--probe``: the file's object, the built probe (once refused)."""
    plain = tmp_path / "plain.npz"
    assert (
        main(["simulate", "-n", "8", "--N", "16", "--object-size", "48", "-q", "-o", str(plain)])
        == 0
    )
    out = tmp_path / "e.npz"
    argv = ["simulate", "--N", "8", "-n", "8", "-q", "--input", str(plain), "-o", str(out)]
    assert main([*argv, "--probe", "gaussian", "--probe-param", "sigma_px=2"]) == 0
    ds = ptyfast.open(out)
    assert ds.probe.shape == (1, 8, 8)
    assert ds.provenance["experiment"]["probe"]["recipe"]["builder"] == "gaussian"
    np.testing.assert_array_equal(ds.object, ptyfast.open(plain).object)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--modes", "100000"], r"--modes must be an integer in \[1, 64\], got 100000"),
        (["--modes", "2", "--mode-decay", "1e300"], r"--mode-decay must be in \(0, 1\]"),
    ],
)
def test_mode_options_are_named_in_their_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "e.npz"
    assert main(["simulate", "-n", "8", "--N", "16", "-q", "-o", str(out), *argv]) == 2
    assert __import__("re").search(message, capsys.readouterr().err)
    assert not out.exists()

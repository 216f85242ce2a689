"""The documentation's checkable claims that no other test pins, checked against the code.

``test_docs_snippets.py`` runs the pages' code and command lines, ``test_api_audit.py`` the
docstrings against the signatures, ``test_examples.py`` the example scripts. This file checks
what those do not: the README's two set-up commands against the Makefile, the migration
guide's import table, links and file names, numbers the pages state (published benchmark
figures against ``docs/benchmarks/results.json``, a geometry's pixel size, the CLI's defaults),
the comments of the README's model block, the progress phases the CLI guide lists, and the
rows of COMPATIBILITY.md that no other test pins. Every expectation is computed here
(NumPy, the parsed page, the parsed Makefile), not taken from the code under test.

The pages are read from the checkout named by ``PTYFAST_SOURCE_TREE`` when it is set (the
installed-wheel run copies only the pages, not the Makefile), else from beside this folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_docs_snippets import _section as _snippet_section

import ptyfast

ROOT = Path(os.environ.get("PTYFAST_SOURCE_TREE") or Path(__file__).resolve().parents[1])
PACKAGE = Path(ptyfast.__file__).resolve().parent


def _read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def _section(text: str, name: str) -> str:
    """The README's snippet section ``name`` (as the snippets test reads them)."""
    return _snippet_section(text, name, "README.md")


# --------------------------------------------------------------------------- README ↔ Makefile


def _makefile() -> dict[str, dict[str, Any]]:
    """Each target: its prerequisites, recipe lines and ``## help`` text."""
    targets: dict[str, dict[str, Any]] = {}
    current = None
    for line in _read("Makefile").splitlines():
        m = re.match(r"^([a-z][\w-]*):(?!=)\s*([^#]*?)\s*(?:## (.*))?$", line)
        if m:
            current = targets[m[1]] = {"deps": m[2].split(), "recipe": [], "help": m[3]}
        elif line.startswith("\t") and current is not None:
            current["recipe"].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


def _setup_commands() -> list[tuple[str, str]]:
    """The README's set-up block: (command, its comment with continuation lines)."""
    body = _section(_read("README.md"), "setup")
    m = re.search(r"```sh\n(.*?)```", body, re.S)
    assert m is not None
    out: list[tuple[str, str]] = []
    for line in m[1].splitlines():
        code, _, comment = line.partition("#")
        if code.strip():
            out.append((code.strip(), comment.strip()))
        elif out:  # a comment continuing the previous command's
            out[-1] = (out[-1][0], out[-1][1] + " " + comment.strip())
    return out


def test_readme_set_up_is_exactly_make_demo_and_make_test() -> None:
    commands = [c for c, _ in _setup_commands()]
    assert commands == ["make demo", "make test"], commands
    targets = _makefile()
    assert {"demo", "test"} <= set(targets)
    # "Two commands, each working alone on a fresh machine (they create .venv/ ...)": each
    # reaches the rule that creates the virtual environment, $(PY).
    make = _read("Makefile")
    assert "$(PY)" in targets["demo"]["deps"]
    assert "$(VENV)/.wheel-tools" in targets["wheel"]["deps"]
    assert re.search(r"^\$\(VENV\)/\.wheel-tools: \| \$\(PY\)$", make, re.M)
    assert re.search(r"^\$\(PY\):\n\t\$\(PYTHON\) -m venv \$\(VENV\)$", make, re.M)
    assert "test-wheel" in targets["test"]["deps"] and "wheel" in targets["test-wheel"]["deps"]


def test_make_demo_does_what_the_readme_says() -> None:
    """``make demo``: "build, then simulate a dataset on built-in defaults → out/demo.npz +
    out/demo.png"."""
    comment = dict(_setup_commands())["make demo"]
    promised = re.findall(r"out/[\w.]+", comment)
    assert len(promised) == 2 and promised[0].endswith(".npz"), comment  # a dataset, a picture
    recipe = _makefile()["demo"]["recipe"]
    assert any("maturin develop" in line for line in recipe), recipe  # "build"
    runs = [shlex.split(line) for line in recipe if "ptyfast simulate" in line]
    assert len(runs) == 1, recipe
    argv = runs[0][runs[0].index("simulate") :]
    from ptyfast.cli import _parser

    args = _parser().parse_args(argv)
    assert [args.output, args.preview] == promised
    # "on built-in defaults": nothing but where to write is set
    defaults = _parser().parse_args(["simulate"])
    changed = {k for k, v in vars(args).items() if vars(defaults).get(k) != v}
    assert changed == {"output", "preview", "overwrite"}, changed


def test_make_test_runs_what_the_readme_lists() -> None:
    """``make test``: "cargo test, clippy, rustfmt, the Rust docs; build the wheel, install it
    in a fresh venv, then ruff, stubtest and pytest (incl. TensorFlow, Dask) against it; the
    docs site (strict); the wheel again on the other CPythons found"."""
    comment = dict(_setup_commands())["make test"]
    targets = _makefile()

    def recipe(name: str, seen: set[str] | None = None) -> str:
        """The target's recipe lines and those of every target it depends on."""
        seen = set() if seen is None else seen
        if name in seen or name not in targets:
            return ""
        seen.add(name)
        t = targets[name]
        return "\n".join([*(recipe(d, seen) for d in t["deps"]), *t["recipe"]])

    everything = recipe("test")
    installed = _read(".ci/test_installed.sh")
    for word, evidence in [
        ("cargo test", "cargo test"),
        ("clippy", "cargo clippy"),
        ("rustfmt", "cargo fmt --all --check"),
        ("the Rust docs", "cargo doc"),
        ("build the wheel", "maturin build"),
        ("ruff", "ruff check"),
        ("the docs site (strict)", "mkdocs build --strict"),
        ("other CPythons", "test_pythons.sh"),
    ]:
        assert word in comment, word
        assert evidence in everything, (word, evidence)
    # "install it in a fresh venv, then ... stubtest and pytest ... against it"
    assert ".ci/test_installed.sh" in everything
    assert "venv --clear" in installed and "mypy.stubtest" in installed
    assert "-m pytest" in installed
    # "(incl. TensorFlow, Dask)": the wheel is installed with the test extra, which has both
    assert "[test" in recipe("test-wheel")
    extras = _read("pyproject.toml").split("[project.optional-dependencies]")[1]
    test_extra = re.search(r"^test = \[(.*?)^\]", extras, re.S | re.M)
    assert test_extra is not None
    listed = re.findall(r"^\s*[\"']([\w.-]+)", test_extra[1], re.M)
    assert "tensorflow-cpu" in listed and "dask" in listed, listed


def test_other_make_targets_the_pages_name() -> None:
    """``make help`` lists every ``make X`` a page names; ``make docs`` builds into ``site/``;
    ``make wheel`` into ``dist/``."""
    targets = _makefile()
    named = set()
    for page in ("README.md", "docs/getting-started.md", "docs/benchmarks.md"):
        named |= set(re.findall(r"`make ([a-z][\w-]*)`", _read(page)))
    assert {"help", "bench", "docs", "wheel"} <= named
    for name in named:
        assert name in targets and targets[name]["help"], name  # listed by `make help`
    assert re.search(r"^site_dir:\s*site\s*$", _read("mkdocs.yml"), re.M)
    assert "mkdocs build --strict" in "\n".join(targets["docs"]["recipe"])
    assert any(
        "--out dist" in line or '--out "$(abspath dist)"' in line
        for line in targets["wheel"]["recipe"]
    )
    assert "benches/run_all.py" in "\n".join(targets["bench"]["recipe"])


# --------------------------------------------------------------------------- migration guide


def _migration_rows() -> list[tuple[str, str, str]]:
    """(PtychoPINN import, ptyfast import, the rest of the cell) of the guide's table."""
    rows = []
    for line in _read("docs/migrating.md").splitlines():
        m = re.match(r"^\| `(from ptycho[^`]*|import ptycho[^`]*)` \| `([^`]*)`(.*)\|$", line)
        if m:
            rows.append((m[1], m[2], m[3].strip()))
    return rows


def _imported(statement: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(statement, ns)
    ns.pop("__builtins__")
    return ns


def test_migration_table_is_one_word() -> None:
    """Each row of "Migrating from PtychoPINN" imports, and is the PtychoPINN line with
    ``ptycho`` → ``ptyfast``, or names the same objects under a path that also works."""
    rows = _migration_rows()
    assert len(rows) >= 7, rows
    for reference, ours, note in rows:
        got = _imported(ours)
        assert got, ours
        renamed = re.sub(r"\bptycho\b", "ptyfast", reference)
        if renamed != ours:
            assert "both paths work" in note, (reference, ours)
        same = _imported(renamed)  # the one-word change itself works
        assert same.keys() == got.keys() and all(same[k] is got[k] for k in got), renamed


def test_migration_guide_signatures_take_the_guides_calls() -> None:
    """The guide's calls that the migration page promises keep working bind to the
    signatures (PtychoPINN's positional order), and the params shim has get/set/cfg."""
    import inspect

    from ptyfast import params as p
    from ptyfast.config import ModelConfig, TrainingConfig
    from ptyfast.diffsim import mk_simdata
    from ptyfast.loader import load
    from ptyfast.nongrid_simulation import generate_simulated_data

    inspect.signature(generate_simulated_data).bind("config", "obj", "probe", 20.0)
    inspect.signature(mk_simdata).bind(2, 392, "probe", 8, None, None, None, False, "train")
    inspect.signature(load).bind("cb", "probe", "train", True)
    assert all(callable(getattr(p, name)) for name in ("get", "set")) and isinstance(p.cfg, dict)
    TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=10)
    # "`generate_simulated_data` returns `(raw, Y)` by default" and "`mk_simdata` returns the
    # guide's 4-tuple" are run by test_guide_examples.py.


# --------------------------------------------------------------------------- links and names

LINKED_PAGES = ["README.md", "COMPATIBILITY.md", "examples/README.md"] + [
    p.relative_to(ROOT).as_posix()
    for p in sorted((ROOT / "docs").rglob("*.md"))
    if "figures" not in p.parts  # drawn by docs/gen_figures.py
]
# A fragment that only exists inside another page: its links are relative to that page.
INCLUDED_IN = {"docs/benchmarks/results.md": "docs/benchmarks.md"}
# A repository path in inline code: a top-level folder, then a file name with a suffix.
REPO_PATH = re.compile(
    r"`((?:python|rust|tests|benches|examples|docs|\.ci)/[\w./-]*\.(?:py|md|json|toml|rs|sh|pyi))`"
)


@pytest.mark.parametrize("page", LINKED_PAGES)
def test_relative_links_resolve(page: str) -> None:
    """Every relative Markdown link of the page names a file that exists (mkdocs checks the
    site's own pages; the README, COMPATIBILITY.md and examples/README.md are read on GitHub
    and on PyPI too)."""
    text = _read(page)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:|#", target) or "figures/" in target:
            continue  # an address, an anchor, or a figure docs/gen_figures.py draws
        path = target.split("#")[0]
        if not (ROOT / INCLUDED_IN.get(page, page)).parent.joinpath(path).exists():
            broken.append(target)
    assert not broken, broken


@pytest.mark.parametrize("page", LINKED_PAGES)
def test_files_named_in_inline_code_exist(page: str) -> None:
    """``tests/test_x.py``, ``benches/run_all.py``, ``python/ptyfast/_kernels.py`` ... named in
    a page exist (the package's files in the installed package)."""
    missing = []
    for rel in REPO_PATH.findall(_read(page)):
        if rel.startswith("python/ptyfast/"):
            where = PACKAGE / rel.removeprefix("python/ptyfast/")
        else:
            where = ROOT / rel
        if not where.exists():
            missing.append(rel)
    assert not missing, missing


# --------------------------------------------------------------------------- numbers stated


def test_readme_model_block_does_what_its_comments_say() -> None:
    """The README's model block: ``Δx ≈ 32 nm``, ``(3, 128, 128), Σ|P|² = 1``,
    ``complex64 (512, 512)``, positions placed in the object, a scan recipe that rebuilds."""
    block = re.search(r"```python\n(.*?)```", _section(_read("README.md"), "model"), re.S)
    assert block is not None
    ns: dict[str, Any] = {}
    exec(compile(block[1], "README.md model block", "exec"), ns)
    text = block[1]
    nm = float(re.search(r"Δx ≈ (\d+) nm", text)[1])  # type: ignore[index]
    wavelength = 6.62607015e-34 * 299792458.0 / (8000.0 * 1.602176634e-19)
    dx = wavelength * 2.0 / (128 * 75e-6)  # λ z / (N Δ), the conventions page's formula
    assert round(dx * 1e9) == nm
    assert ns["g"].object_pixel_m == pytest.approx(dx, rel=1e-9)
    probe, obj = ns["probe"], ns["obj"]
    assert probe.shape == (3, 128, 128)
    assert np.sum(np.abs(probe.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-5)
    assert obj.dtype == np.complex64 and obj.shape == (512, 512)
    nominal, true = ns["nominal"], ns["true"]
    assert nominal.shape == true.shape == (400, 2)
    assert json.loads(json.dumps(ns["recipe"])) == ns["recipe"]  # "JSON"
    rebuilt = ptyfast.scans.Scan.from_dict(ns["recipe"])
    assert np.array_equal(rebuilt.true, ns["scan"].true)


def test_detector_guide_photon_estimate() -> None:
    """Detectors guide: ``readings_to_photons`` is ``(readings − offset)/gain − dark``, with 0
    at masked pixels, negative estimates (read noise below the offset) clipped to 0."""
    from ptyfast import objects, probes, scans

    det = ptyfast.Detector.integrating(beamstop_radius_px=2.0)
    e = ptyfast.Experiment(
        objects.dead_leaves(64, seed=2),
        probes.gaussian(16, 3.0),
        scans.raster(4, 4, 3.0),
        det,
        photons=1e5,
    )
    ds = ptyfast.simulate(e, seed=7)
    r = ds.diffraction.astype(np.float64)
    expected = np.maximum((r - det.offset) / det.gain - det.dark, 0.0)
    expected[:, ~ds.mask] = 0.0
    assert (r < det.offset).any() and (~ds.mask).any()  # both rules are exercised
    assert np.array_equal(det.readings_to_photons(ds.diffraction), expected)
    text = " ".join(_read("docs/guides/detectors.md").split())
    assert "`(readings − offset)/gain − dark`" in text
    assert "negative estimates" in text and "clipped to 0" in text
    # "the integrating detector's bright centre clips at its full well (65,000 ADU)"
    well = re.search(r"full well \(([\d,]+) ADU\)", text)
    assert well is not None and float(well[1].replace(",", "")) == det.full_well
    # "by default the beam sits in the middle of a module, so a crop smaller than a module has
    # no gap"
    assert "a crop smaller than a module has no gap" in text
    for preset in (ptyfast.Detector.eiger(), ptyfast.Detector.pilatus()):
        rows, cols = preset.module_px
        small = preset.pixel_map(min(rows, cols) - 1)
        assert not (small & 2).any(), preset.name  # PIXEL_CODES: gap = 2
        big = preset.pixel_map(2 * min(rows, cols))
        assert (big & 2).any(), preset.name  # larger than a module: the gaps show


def test_nongrid_default_seed_as_the_pages_say() -> None:
    """Without ``seed``: the reference's positions (``RandomState(42)``, x before y, within the
    buffer) and fresh noise, both seeds recorded."""
    from ptyfast.config import ModelConfig, TrainingConfig
    from ptyfast.diffsim import sim_object_image
    from ptyfast.nongrid_simulation import generate_simulated_data
    from ptyfast.probe import get_default_probe

    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=30, nphotons=1e6)
    obj = sim_object_image(64, data_source="lines", seed=1)
    a = generate_simulated_data(cfg, obj, get_default_probe(16), 10.0, return_patches=False)
    b = generate_simulated_data(cfg, obj, get_default_probe(16), 10.0, return_patches=False)
    rs = np.random.RandomState(42)
    x, y = rs.uniform(10.0, 54.0, 30), rs.uniform(10.0, 54.0, 30)
    assert np.array_equal(a.xcoords, x) and np.array_equal(a.ycoords, y)
    assert a.metadata["position_seed"] == 42 and a.metadata["seed"] != b.metadata["seed"]
    assert not np.array_equal(a.diff3d, b.diff3d)
    text = " ".join(_read("docs/guides/nongrid.md").split())
    assert "The default `seed=42`" not in text  # the default is None: fresh noise
    assert "`RandomState(42)`" in text


# --------------------------------------------------------------------------- benchmarks


def _results() -> dict[str, Any]:
    return json.loads(_read("docs/benchmarks/results.json"))


def _rate(results: dict[str, Any], bench: str, case: str, variant: str = "ptyfast") -> dict:
    found = [
        r
        for r in results["records"]
        if r["bench"] == bench and r["case"] == case and r["variant"] == variant
    ]
    assert len(found) == 1, (bench, case, variant, len(found))
    return found[0]


def test_results_json_shape_as_the_benchmarks_page_draws_it() -> None:
    """The ``text`` block of "Reproducing and extending" lists the keys of results.json."""
    page = _read("docs/benchmarks.md")
    block = re.search(r'```text\n(\{ "schema_version".*?)```', page, re.S)
    assert block is not None
    text = block[1]

    def keys_of(name: str) -> set[str]:
        m = re.search(rf'"{name}": \[?\s*\{{(.*?)\}}', text, re.S)
        assert m is not None, name
        return set(re.findall(r'"(\w+)"', m[1]))

    results = _results()
    top = set(re.findall(r'"(\w+)":', text))
    assert top == set(results), (top, set(results))
    assert keys_of("machine") == set(results["machine"])
    for name in ("benches", "records"):
        documented = keys_of(name)
        for entry in results[name]:
            assert set(entry) == documented, (name, set(entry) ^ documented)


def test_published_run_figures_are_those_of_results_json() -> None:
    """The published run's figures in the README, COMPATIBILITY.md and the benchmarks page are
    those of the committed results.json (rerunning ``make bench`` must update them)."""
    results = _results()
    readme = " ".join(_read("README.md").split())
    compat = " ".join(_read("COMPATIBILITY.md").split())
    bench_page = " ".join(_read("docs/benchmarks.md").split())
    start = results["started_utc"]  # 2026-12-02T13:24:56+00:00 → "2026-12-02 13:25 UTC"
    stamp = np.datetime64(start[:19]) + np.timedelta64(30, "s")
    when = str(stamp)[:16].replace("T", " ") + " UTC"
    assert f"published run (`make bench`, {when}" in readme
    assert f"published run of {when}" in compat
    assert f"({when}, commit {results['machine']['git_commit']})" in bench_page
    assert f"{round(results['duration_s'] / 60)}-minute `make bench` run" in bench_page

    def ns(case: str, variant: str = "ptyfast") -> float:
        return float(_rate(results, "poisson", case, variant)["params"]["ns_per_sample"])

    v1 = (ns("pattern 1e6 ph"), ns("pattern 1e9 ph"))
    v2 = (ns("pattern 1e6 ph, stream v2"), ns("pattern 1e9 ph, stream v2"))
    npy = (ns("pattern 1e6 ph", "numpy"), ns("pattern 1e9 ph", "numpy"))
    f2 = "{:.2f} / {:.2f} ns".format
    assert f"noise stream v1 (default) {f2(*v1)}, v2 {f2(*v2)} per sample" in readme
    speed = " / ".join(f"{n / t:.1f}×" for n, t in zip(npy, v1, strict=True))
    speed2 = " / ".join(f"{n / t:.1f}×" for n, t in zip(npy, v2, strict=True))
    assert f"{speed} and {speed2} NumPy's speed" in readme
    numpy_ns = "{:.1f} / {:.1f} ns in the published run".format(*npy)
    assert f"`numpy.random.Generator.poisson` {numpy_ns}" in readme
    npy1 = "{:.1f} / {:.1f} ns".format(*npy)
    assert f"v2 {f2(*v2)} against v1 {f2(*v1)} per sample, NumPy {npy1}" in compat
    gain = [round(100 * (a - b) / a) for a, b in zip(v1, v2, strict=True)]
    assert f"faster on one thread by {gain[0]} % (1e6 photons) and {gain[1]} % (1e9)" in compat
    # Dask workers and the thread scaling of the fused kernel
    one = _rate(results, "scale", "dask, 1 worker(s)", "dask")["rate"]
    two = _rate(results, "scale", "dask, 2 worker(s)", "dask")["rate"]
    eff = two / (2 * one)
    assert f"1 worker {one:,.0f}/s" in readme
    assert f"2 workers {round(two, -2):,.0f}/s, efficiency {eff:.2f}" in readme
    assert f"The Dask efficiency on 2 cores ({eff:.2f} here)" in bench_page
    t1 = _rate(results, "threads", "fused, 1 threads")["rate"]
    t2 = _rate(results, "threads", "fused, 2 threads")["rate"]
    assert f"goes from {t1:,.0f} to {t2:,.0f} patterns/s from 1 to 2 threads" in bench_page


# --------------------------------------------------------------------------- command line


def _main(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``ptyfast.cli.main(argv)`` in ``cwd``, its output captured, its logging set-up undone."""
    from ptyfast import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(argv)
    finally:
        os.chdir(here)
        root.handlers[:] = handlers
        root.setLevel(level)
    return rc, out.getvalue(), err.getvalue()


def test_cli_defaults_the_pages_state() -> None:
    """CLI guide: "On the defaults (10,000 patterns of 64 × 64)"; README: ``-o runs/`` writes
    ``runs/ptyfast_simulation.npz``."""
    from ptyfast.cli import _parser

    text = " ".join(_read("docs/guides/cli.md").split())
    m = re.search(r"On the defaults \(([\d,]+) patterns of (\d+) × (\d+)\)", text)
    assert m is not None
    args = _parser().parse_args(["simulate"])
    assert args.n_images == int(m[1].replace(",", "")) and args.N == int(m[2]) == int(m[3])
    assert "runs/ptyfast_simulation.npz" in _read("README.md")
    assert args.output == "ptyfast_simulation.npz"


def test_progress_phases_are_those_the_cli_guide_lists(tmp_path: Path) -> None:
    """CLI guide, "Progress": one bar per phase, named ``object`` (and ``probe``),
    ``intensity``, ``simulate+write``, ``patches``, ``finish`` and ``preview``."""
    text = " ".join(_read("docs/guides/cli.md").split())
    para = re.search(r"## Progress (.*?) ## ", text)  # to the next section
    assert para is not None
    listed = re.findall(r"`([a-z+]+)`(?: \(and `([a-z]+)`\))?[ .]", para[1])
    names = {n for pair in listed for n in pair if n}
    phases = {"object", "probe", "intensity", "simulate+write", "patches", "finish", "preview"}
    assert phases <= names
    # PtychoPINN's path, with --patches; then the model's path (a probe is built)
    seen = set()
    for extra in (["--patches"], ["--probe", "gaussian", "--probe-param", "sigma_px=3"]):
        argv = ["simulate", "-n", "40", "--N", "16", "--object-size", "64", "--progress"]
        rc, _, err = _main([*argv, *extra, "-o", f"p{len(seen)}.npz"], tmp_path)
        assert rc == 0, err
        seen |= {n for n in names if re.search(rf"(^|\r|\n){re.escape(n)} *:", err)}
    # every listed phase but the preview's (matplotlib, optional) and those of campaigns and
    # dry runs shows its bar here; those are the phases their code names
    others = {"preview", "check", "calibration", "plan+calibrate"}
    assert seen == names - others, (names, seen)
    import inspect

    from ptyfast import _dryrun
    from ptyfast.model import campaign

    code = inspect.getsource(_dryrun) + inspect.getsource(campaign)
    for name in others - {"preview"}:
        assert re.search(rf'\(\s*"{re.escape(name)}"', code), name


# --------------------------------------------------------------------------- COMPATIBILITY.md


def _compat_row(area: str) -> str:
    """The row of COMPATIBILITY.md whose first cell starts with ``area``."""
    rows = [r for r in _read("COMPATIBILITY.md").splitlines() if r.startswith(f"| {area}")]
    assert len(rows) == 1, (area, rows)
    return rows[0]


def _small_nongrid() -> tuple[Any, Any]:
    from ptyfast.config import ModelConfig, TrainingConfig
    from ptyfast.diffsim import sim_object_image
    from ptyfast.nongrid_simulation import generate_simulated_data
    from ptyfast.probe import get_default_probe

    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=40, nphotons=1e6)
    obj = sim_object_image(64, data_source="lines", seed=1)
    return generate_simulated_data(cfg, obj, get_default_probe(16), 10.0, seed=3)


def test_no_printing_and_no_memoisation(capfd: pytest.CaptureFixture[str], tmp_path: Path):
    """Rows "Printing" (``logging`` only) and "Disk memoisation of ``mk_simdata``" (none): the
    guide's whole workflow, grid and nongrid, writes nothing to stdout/stderr (Rust's
    included) and no file in the working directory."""
    assert "`logging` only" in _compat_row("Printing")
    assert "none; determinism comes from `seed`" in _compat_row("Disk memoisation")
    from ptyfast.diffsim import mk_simdata
    from ptyfast.loader import load
    from ptyfast.probe import get_default_probe

    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        capfd.readouterr()
        raw, _ = _small_nongrid()
        grouped = raw.generate_grouped_data(N=16, K=4, nsamples=20, gridsize=2, seed=0)
        container = load(lambda: grouped, raw.probeGuess, nphotons=1e6)
        repr(container)
        a, b = (
            mk_simdata(
                1,
                40,
                get_default_probe(16),
                8,
                N=16,
                gridsize=2,
                offset=4,
                nphotons=1e6,
                data_source="lines",
                seed=seed,
            )
            for seed in (0, 1)
        )
        assert capfd.readouterr() == ("", "")
    finally:
        os.chdir(here)
    assert list(tmp_path.iterdir()) == []  # no ./memoized_data
    assert not np.array_equal(a[0], b[0])  # another seed, other data: nothing cached


def test_to_file_same_inputs_same_file(tmp_path: Path) -> None:
    """Row "``_metadata`` written by ``RawData.to_file``": the reference's schema without a
    timestamp or host name, so the same data gives the same file, byte for byte; README:
    ``_metadata`` holds the photon count, intensity scale and seeds (and, from
    ``ptyfast simulate``, the generator)."""
    import socket

    row = _compat_row("`_metadata` written by `RawData.to_file`")
    assert "no timestamp or host name" in row and "same inputs, same file" in row
    raw, _ = _small_nongrid()
    raw.to_file(tmp_path / "a.npz")
    raw.to_file(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    meta = str(np.load(tmp_path / "a.npz", allow_pickle=False)["_metadata"])
    assert socket.gethostname() not in meta
    md = json.loads(meta)
    assert md["physics_parameters"]["nphotons"] == 1e6  # the reference's schema
    assert {"nphotons", "intensity_scale", "seed", "position_seed"} <= set(md)
    rc, _, err = _main(
        ["simulate", "-n", "20", "--N", "16", "--object-size", "64", "-q", "-o", "c.npz"], tmp_path
    )
    assert rc == 0, err
    md = json.loads(str(np.load(tmp_path / "c.npz", allow_pickle=False)["_metadata"]))
    assert md["generator"] == f"ptyfast {ptyfast.__version__}"
    assert {"nphotons", "intensity_scale", "seed"} <= set(md)
    npz = " ".join(_section(_read("README.md"), "npz").split())
    assert "photon count, intensity scale, seeds; `ptyfast simulate` adds the generator" in npz


# --------------------------------------------------------------------------- names in the pages

AUDITED = ["README.md", "COMPATIBILITY.md", "docs/conventions.md", "docs/migrating.md"] + [
    "docs/benchmarks.md",
    "docs/index.md",
    "docs/examples.md",
    "docs/getting-started.md",
    *(
        f"docs/guides/{g}.md"
        for g in (
            "formats",
            "cli",
            "provenance",
            "grid",
            "grouping",
            "loader",
            "nongrid",
            "campaigns",
            "dask",
            "detectors",
        )
    ),
]
# How a page abbreviates a name → where it lives.
HEADS = {
    "ptyfast": "ptyfast",
    "Dataset": "ptyfast.Dataset",
    "Detector": "ptyfast.Detector",
    "Campaign": "ptyfast.Campaign",
    "Experiment": "ptyfast.Experiment",
    "Geometry": "ptyfast.Geometry",
    "Scan": "ptyfast.scans.Scan",
    "RawData": "ptyfast.raw_data.RawData",
    "PtychoDataContainer": "ptyfast.loader.PtychoDataContainer",
    "io": "ptyfast.io",
    "cxi": "ptyfast.io.cxi",
    "scans": "ptyfast.scans",
    "probes": "ptyfast.probes",
    "objects": "ptyfast.objects",
    "diffsim": "ptyfast.diffsim",
    "grouping": "ptyfast.grouping",
    "loader": "ptyfast.loader",
    "intensity": "ptyfast.intensity",
    "_kernels": "ptyfast._kernels",
}
# Schema names that read like modules.
NOT_NAMES = {"ptyfast.provenance"}


def _resolves(dotted: str, instances: dict[str, Any]) -> bool:
    import importlib

    if dotted == "ptyfast.tf_reference":  # importing it imports TensorFlow (optional, slow)
        return (PACKAGE / "tf_reference.py").is_file()
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for j, attr in enumerate(parts[i:]):
            if not hasattr(obj, attr):
                # an instance attribute (RawData.diff3d): look on an instance
                owner = ".".join(parts[: i + j])
                return owner in instances and hasattr(instances[owner], attr)
            obj = getattr(obj, attr)
        return True
    return False


def test_dotted_names_in_the_pages_exist() -> None:
    """``Campaign.check``, ``ptyfast.io.zarr.create_store``, ``cxi.PIXEL_EXCLUDED``,
    ``Detector.pixel_map``, ``ptyfast.cli.simulate_to_file`` ... exist as written."""
    from ptyfast import objects, probes, scans

    raw, _ = _small_nongrid()
    ds = ptyfast.simulate(
        ptyfast.Experiment(
            objects.dead_leaves(32, seed=1),
            probes.gaussian(8, 2.0),
            scans.raster(2, 2, 2.0),
            ptyfast.Detector.ideal(),
            photons=1e4,
        ),
        seed=0,
    )
    instances = {"ptyfast.raw_data.RawData": raw, "ptyfast.Dataset": ds}
    checked, missing = 0, []
    for page in AUDITED:
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", _read(page)):
            if "/" in span or span in NOT_NAMES:
                continue  # a file path, a schema name
            for m in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)+)", span):
                if m[1] not in HEADS:
                    continue
                checked += 1
                if not _resolves(HEADS[m[1]] + m[2], instances):
                    missing.append(f"{page}: {m[0]}")
    assert checked > 100
    assert not missing, missing


# --------------------------------------------------------------------------- format layouts


def _table(doc: str) -> list[str]:
    """The body lines of the docstring's first RST table."""
    lines = doc.splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"^=+( +=+)+\s*$", line)]
    assert len(rules) >= 3, "no table"
    return lines[rules[1] + 1 : rules[2]]


def _layout_names(doc: str) -> list[list[str]]:
    """The ````names```` of each row's first column in the docstring's first RST table."""
    lines = doc.splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"^=+( +=+)+\s*$", line)]
    assert len(rules) >= 3, "no table"
    width = len(lines[rules[0]].split()[0])
    rows: list[str] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        cell = line[:width]
        if cell.strip() and not cell.startswith(" "):
            rows.append(cell)
        elif cell.strip() and rows:
            rows[-1] += " " + cell
    return [re.findall(r"``([^`]+)``", row) for row in rows]


@pytest.fixture(scope="module")
def dataset_with_everything() -> Any:
    from ptyfast import objects, probes, scans

    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=16)
    e = ptyfast.Experiment(
        objects.dead_leaves(64, seed=2),
        probes.modes(probes.gaussian(16, 3.0), 2),
        scans.raster(3, 3, 3.0),
        ptyfast.Detector.eiger(),
        photons=1e5,
        geometry=g,
    )
    return ptyfast.simulate(e, seed=7, patches=True)


def test_cxi_layout_as_its_module_documents(dataset_with_everything: Any, tmp_path: Path):
    """Every path of ``ptyfast.io.cxi``'s table is in a file it writes."""
    h5py = pytest.importorskip("h5py")
    from ptyfast.io import cxi

    path = tmp_path / "d.cxi"
    ptyfast.io.save(dataset_with_everything, path)
    missing, checked = [], 0
    with h5py.File(path, "r") as f:
        root = f["entry_1"]
        assert f["cxi_version"][()] == 160
        parent = ""  # a bare name (``y_pixel_size``) is a sibling of the path before it
        for names in _layout_names(cxi.__doc__ or ""):
            for name in names:
                full = name.rstrip("/")
                if "/" in full:
                    parent = full.rsplit("/", 1)[0]
                elif parent and f"{parent}/{full}" in root:
                    full = f"{parent}/{full}"
                checked += 1
                if full not in root:
                    missing.append(full)
    assert checked >= 20 and not missing, missing


def test_ptychodus_layout_as_its_module_documents(
    dataset_with_everything: Any, tmp_path: Path
) -> None:
    """Every field of ``ptyfast.io.ptychodus``'s product table is in the product it writes
    (``raw_data/`` with ``raw_data=True``), attributes (``@x``) on the file's root."""
    h5py = pytest.importorskip("h5py")
    from ptyfast.io import ptychodus

    path = tmp_path / "d.ptychodus.h5"
    ptyfast.io.save(dataset_with_everything, path, raw_data=True)
    missing, checked = [], 0
    with h5py.File(path, "r") as f:
        for names in _layout_names(ptychodus.__doc__ or ""):
            for name in names:
                if "*" in name or not re.fullmatch(r"@?[\w/]+", name):
                    continue  # a family (``loss_*``) or a value, not a name
                checked += 1
                if name.startswith("@"):
                    found = name[1:] in f.attrs
                else:
                    found = name.rstrip("/") in f
                if not found:
                    missing.append(name)
        assert (tmp_path / "d.diffraction.h5").is_file()
    assert checked >= 12 and not missing, missing


def test_zarr_layout_as_its_module_documents(dataset_with_everything: Any, tmp_path: Path):
    """Every array of ``ptyfast.io.zarr``'s table, with the dimension names and dtype it
    states, and the group attributes it names."""
    zarr = pytest.importorskip("zarr")
    from ptyfast.io import zarr as zmod

    path = tmp_path / "d.zarr"
    ptyfast.io.save(dataset_with_everything, path)
    doc = zmod.__doc__ or ""
    group = zarr.open_group(str(path), mode="r")
    rows = 0
    for line in _table(doc):
        m = re.match(r"^``(\w+)``,?\s+(\([\w, ]+\))?\s*(\w+)?", line)
        if not m:
            continue
        rows += 1
        assert m[1] in group, m[1]
        if m[2]:
            dims = tuple(d.strip() for d in m[2].strip("()").split(","))
            arr = group[m[1]]
            got = tuple(arr.metadata.dimension_names or ())
            assert got == dims or dims == ("pattern", "xy") and got[0] == "pattern", (m[1], got)
        if m[3] in {"bool", "float64", "complex64"}:
            assert group[m[1]].dtype == np.dtype(m[3]), m[1]
    assert rows >= 6
    assert {"ptyfast", "provenance", "conventions"} <= set(group.attrs)


def test_readme_layout_names_every_module() -> None:
    """README "Layout": the core crate's public modules, the model's and the formats' modules
    are each named, and each name exists."""
    text = _read("README.md").split("## Layout", 1)[1]
    core = text.split("`rust/ptyfast-py`")[0]
    named_core = set(re.findall(r"`(\w+)`", core))
    lib = _read("rust/ptyfast-core/src/lib.rs")
    public = set(re.findall(r"^pub mod (\w+);", lib, re.M))
    assert public and public == named_core, public ^ named_core
    model = re.search(r"`python/ptyfast/model/` \(([^)]*)\)", " ".join(text.split()))
    assert model is not None
    named_model = set(re.findall(r"`(\w+)`", model[1].split(";")[0]))
    files = {p.stem for p in (PACKAGE / "model").glob("*.py") if not p.stem.startswith("_")}
    assert named_model == files, named_model ^ files
    formats = re.search(r"`ptyfast.io` \(the formats: ([^)]*)\)", " ".join(text.split()))
    assert formats is not None
    named_io = set(re.findall(r"`(\w+)`", formats[1]))
    io_files = {p.stem for p in (PACKAGE / "io").glob("*.py") if not p.stem.startswith("_")}
    assert named_io == io_files, named_io ^ io_files


UNPICKLED: list[str] = []


def _unpickled() -> dict[str, Any]:
    UNPICKLED.append("loaded")  # what unpickling the member below would run
    return {"physics_parameters": {"nphotons": 1.0}}


class _Trap:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _unpickled, ()


def test_pickled_members_of_reference_files_read_as_absent(tmp_path: Path) -> None:
    """Rows "Pickled ``objectGuess=None`` in NPZ" and "``_metadata`` written by PtychoPINN's
    ``MetadataManager``": such members are never unpickled; they read as absent (``None``,
    and empty ``metadata``, as for a file without ``_metadata``)."""
    from ptyfast.raw_data import RawData

    assert "read with empty `metadata` (`{}`" in " ".join(
        _compat_row("`_metadata` written by PtychoPINN's `MetadataManager`").split()
    )
    UNPICKLED.clear()
    raw, _ = _small_nongrid()
    path = tmp_path / "reference.npz"
    np.savez(  # the reference's writer: object arrays are pickled
        path,
        xcoords=raw.xcoords,
        ycoords=raw.ycoords,
        xcoords_start=raw.xcoords_start,
        ycoords_start=raw.ycoords_start,
        diff3d=raw.diff3d,
        probeGuess=raw.probeGuess,
        scan_index=raw.scan_index,
        objectGuess=np.array(_Trap(), dtype=object),
        _metadata=np.array(_Trap(), dtype=object),
    )
    back = RawData.from_file(path)
    assert UNPICKLED == []
    assert back.objectGuess is None and back.metadata == {}
    assert np.array_equal(back.diff3d, raw.diff3d) and np.array_equal(back.xcoords, raw.xcoords)
    with np.load(path, allow_pickle=True) as z:  # the trap works: loading would run it
        z["_metadata"]
    assert UNPICKLED == ["loaded"]


def test_loader_probe_of_another_size_is_refused_as_the_row_quotes() -> None:
    """Row "``loader.load`` probe": "probeGuess must be (N, N) = (8, 8) like the diffraction
    patterns" (also ``PtychoDataContainer``)."""
    from ptyfast.loader import PtychoDataContainer, load

    quoted = re.search(
        r'"(probeGuess must be \(N, N\) = \((\d+), \2\) [^"]*)"', _compat_row("`loader.load` probe")
    )
    assert quoted is not None
    raw, _ = _small_nongrid()
    grouped = raw.generate_grouped_data(N=16, K=4, nsamples=10, gridsize=1, seed=0)
    wrong = np.ones((8, 8), np.complex64)
    expected = quoted[1].replace(f"({quoted[2]}, {quoted[2]})", "(16, 16)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        load(lambda: grouped, wrong)
    c = load(lambda: grouped, raw.probeGuess)
    with pytest.raises(ValueError, match=re.escape(expected)):
        PtychoDataContainer(
            c.X,
            c.Y_I,
            c.Y_phi,
            c.norm_Y_I,
            c.YY_full,
            c.coords_nominal,
            c.coords_true,
            c.nn_indices,
            c.global_offsets,
            c.local_offsets,
            wrong,
        )


def test_kernel_keywords_the_readme_names() -> None:
    """README: "the kernels' ``out=`` (``ptyfast._kernels.simulate``, ``acquire``,
    ``simulate_grid``, ``illuminate_groups``)" and ``version="v2"`` on
    ``observe_amplitudes`` / ``poisson_counts``, which give the same counts."""
    import inspect

    from ptyfast import _kernels

    text = " ".join(_read("README.md").split())
    outs = re.search(r"the kernels' `out=` \(([^)]*)\)", text)
    assert outs is not None
    names = [n.rsplit(".", 1)[-1] for n in re.findall(r"`([\w.]+)`", outs[1])]
    assert len(names) == 4, names
    for name in names:
        assert "out" in inspect.signature(getattr(_kernels, name)).parameters, name
    versions = re.search(r'`version="v2"` on `ptyfast\._kernels\.(\w+)` /\s*`(\w+)`', text)
    assert versions is not None
    # amplitudes whose squares (the rates) are exact in float32 and float64
    amps = (np.random.default_rng(0).integers(0, 40, (3, 8, 8)) / 4).astype(np.float32)
    observed = _kernels.observe_amplitudes(amps, seed=5, version="v2")
    for i in range(3):
        counts = _kernels.poisson_counts(
            (amps[i].astype(np.float64) ** 2).ravel(), seed=5, stream=i, version="v2"
        )
        expected = np.sqrt(counts.reshape(8, 8)).astype(np.float32)  # sqrt(count), rounded once
        assert np.array_equal(observed[i], expected), i
    for name in versions.groups():
        assert "version" in inspect.signature(getattr(_kernels, name)).parameters


def test_npz_layout_as_its_module_documents(dataset_with_everything: Any, tmp_path: Path):
    """The keys of ``ptyfast.io.npz``'s table are those of a file it writes (a dataset with
    patches, a geometry and two probe modes: every optional key), with the dtypes stated."""
    from ptyfast.io import npz

    path = tmp_path / "d.npz"
    ptyfast.io.save(dataset_with_everything, path)
    joined = ""
    dtypes = {}
    for line in _table(npz.__doc__ or ""):
        token = re.match(r"^(\S+)", line)
        if token is None:
            continue
        joined += token[1] if joined.endswith("_") else " " + token[1]
        row = re.match(r"^``(\w+)``,?\s+\(([^)]*)\)\s+(\w+)", line)
        if row:
            dtypes[row[1]] = row[3]
    documented = set(re.findall(r"``(\w+)``", joined))
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        assert documented <= keys, documented - keys
        assert keys - documented == {"ycoords_start"}, keys - documented  # the row's "..."
        for key, dtype in dtypes.items():
            if dtype in {"float32", "float64", "complex64", "int64", "bool"}:
                assert z[key].dtype == np.dtype(dtype), key
        assert z["readings"].dtype == dataset_with_everything.diffraction.dtype
    assert len(dtypes) >= 8


def test_grouping_guide_nsamples_beyond_n(caplog: pytest.LogCaptureFixture) -> None:
    """Grouping guide, step 1: ``min(nsamples, n)`` seeds, all of them in order when
    ``nsamples ≥ n``; beyond ``n`` capped with a warning for ``C = 1``, refused for ``C > 1``
    without ``enable_oversampling``."""
    text = " ".join(_read("docs/guides/grouping.md").split())
    assert "is a `ValueError` for `C > 1` unless `enable_oversampling=True`" in text
    raw, _ = _small_nongrid()
    n = len(raw.diff3d)
    with caplog.at_level(logging.WARNING):
        g = raw.generate_grouped_data(N=16, K=4, nsamples=n + 5, gridsize=1, seed=0)
    assert np.array_equal(g["nn_indices"][:, 0], np.arange(n))  # all, in order
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    with pytest.raises(ValueError, match="enable_oversampling"):
        raw.generate_grouped_data(N=16, K=4, nsamples=n + 5, gridsize=2, seed=0)
    g = raw.generate_grouped_data(
        N=16, K=4, nsamples=n + 5, gridsize=2, seed=0, enable_oversampling=True
    )
    assert g["nn_indices"].shape == (n + 5, 4) and g["nn_indices"].dtype == np.int64


# --------------------------------------------------------------------------- examples

PRINTED = [
    (p.name, m[1].strip())
    for p in sorted((ROOT / "examples").glob("*.py"))
    for m in re.finditer(r"^print\(.*\)[ \t]+# (.+)$", p.read_text(encoding="utf-8"), re.M)
]


@pytest.mark.slow  # a fresh interpreter per script (~2-3 s each)
@pytest.mark.parametrize(("script", "expected"), PRINTED, ids=[s for s, _ in PRINTED])
def test_example_prints_what_its_comment_says(script: str, expected: str, tmp_path: Path):
    """An example line ``print(...)  # (1000, 64, 64) float32 ...`` prints exactly that."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert expected in res.stdout.splitlines(), (expected, res.stdout)


def test_examples_with_printed_claims_are_found() -> None:
    assert {s for s, _ in PRINTED} >= {"first_dataset.py", "ptycho_alias.py"}


def test_python_needed_by_make_test_is_stated() -> None:
    """``make test``'s installed run fails on any skip (``PTYFAST_NO_SKIPS=1``) and the test
    extra installs zarr, Dask and ptychodus only on Python ≥ 3.11 (and the other-CPython
    step reads pyproject.toml with ``tomllib``): the set-up pages say ``make test`` needs
    3.11."""
    targets = _makefile()
    assert "PTYFAST_NO_SKIPS=1" in "\n".join(targets["test-wheel"]["recipe"])
    extras = _read("pyproject.toml").split("[project.optional-dependencies]")[1]
    test_extra = re.search(r"^test = \[(.*?)^\]", extras, re.S | re.M)
    assert test_extra is not None
    floor = set(re.findall(r'python_version >= "(3\.\d+)"', test_extra[1]))
    assert floor == {"3.11"}, floor
    assert "tomllib" in _read(".ci/test_pythons.sh")
    for page in ("README.md", "docs/getting-started.md"):
        text = " ".join(_read(page).split())
        assert "Python ≥ 3.10 (≥ 3.11 for `make test`" in text, page


def test_migration_guide_fallbacks_read_params() -> None:
    """Migrating, "No global state": the arguments it lists read ``params.cfg`` when left as
    ``None`` (and nothing writes it)."""
    from ptyfast import params
    from ptyfast.diffsim import sim_object_image
    from ptyfast.probe import get_default_probe
    from ptyfast.raw_data import RawData

    text = " ".join(_read("docs/migrating.md").split())
    for phrase in (
        "`nphotons` of `RawData.from_simulation` and `loader.load`",
        "the `data_source` of `sim_object_image`",
        "the `scale` of `get_default_probe`",
    ):
        assert phrase in text, phrase
    saved = dict(params.cfg)
    try:
        params.set("default_probe_scale", 0.5)
        params.set("nphotons", 1e4)
        params.set("data_source", "points")
        assert np.array_equal(get_default_probe(16), get_default_probe(16, scale=0.5))
        assert np.array_equal(
            sim_object_image(32, seed=1), sim_object_image(32, data_source="points", seed=1)
        )
        probe = get_default_probe(16).astype(np.complex64)
        obj = sim_object_image(64, data_source="lines", seed=1)
        xy = np.array([30.0, 31.5, 33.0])
        a = RawData.from_simulation(xy, xy, probe, obj, poisson=False)
        b = RawData.from_simulation(xy, xy, probe, obj, nphotons=1e4, poisson=False)
        assert a.metadata["nphotons"] == 1e4 and a.intensity_scale == b.intensity_scale
        snapshot = dict(params.cfg)
        RawData.from_simulation(xy, xy, probe, obj, nphotons=1e6, seed=0)
        assert params.cfg == snapshot  # nothing writes it
    finally:
        params.cfg.clear()
        params.cfg.update(saved)


def test_which_is_checked_whatever_the_source() -> None:
    """Row "``which`` of ``sim_object_image``/``sim_object_stack``/``mk_simdata``": ``'train'``
    or ``'test'`` whatever the source, not checked when ``mk_simdata`` is given ``YY_I``."""
    from ptyfast.diffsim import mk_simdata, sim_object_image, sim_object_stack
    from ptyfast.probe import get_default_probe

    row = _compat_row("`which` of `sim_object_image`")
    assert "not checked when `mk_simdata` is given `YY_I`" in row
    probe = get_default_probe(16)
    kw = dict(N=16, gridsize=1, offset=4, nphotons=1e6, seed=0)
    for source in ("lines", "grf", "points"):
        with pytest.raises(ValueError, match="which must be 'train' or 'test', got 'valid'"):
            mk_simdata(1, 40, probe, 8, which="valid", data_source=source, **kw)
        with pytest.raises(ValueError, match="which"):
            sim_object_stack(40, 1, data_source=source, seed=0, which="val")
        with pytest.raises(ValueError, match="which"):
            sim_object_image(40, "TEST", data_source=source, seed=0)
    yy = np.ones((1, 40, 40, 1))
    given = mk_simdata(1, 40, probe, 8, YY_I=yy, which="valid", **kw)
    same = mk_simdata(1, 40, probe, 8, YY_I=yy, **kw)
    assert np.array_equal(given[0], same[0])

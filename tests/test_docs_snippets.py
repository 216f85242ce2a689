"""The code and the command lines the documentation shows do what the documentation says.

**Python blocks.** Every ```python block written in ``docs/*.md`` and ``docs/guides/*.md``
runs, in a fresh empty directory per page. A page's blocks run in order in one namespace, as a
reader runs them one after the other, and two pages start from another page's result, as
their prose says (``AFTER``): the grouping guide from the nongrid guide's ``raw``, the loader
guide from the grouping guide's ``grouped``. A block that raises fails its test, and a block
that runs after it fails too, naming it. What a block's comments or its page state about the
result (shapes, dtypes, keys, values) is asserted after it runs (``CLAIMS``). Every block runs
at the size the page shows: none is cut down here.

A block that only includes a file (``--8<-- "README.md:section"``, ``--8<-- "examples/x.py"``)
is not run here: the README's blocks run in ``test_packaging.py`` and every example script in
``test_examples.py``. ``test_included_blocks_are_tested_elsewhere`` checks that each such
include names a README section or an example script that exists. Includes of any other file
are resolved and run. A block that uses an optional package (zarr, distributed, ptychodus,
TensorFlow, matplotlib, h5py) is skipped where that package is missing, and says which.

**Command lines.** Every ``ptyfast <subcommand> ...`` line of the README, COMPATIBILITY.md
and the site's pages, in a sh/bash/console block or in inline code, is checked against the
real parser (``ptyfast.cli._parser()``): the subcommand exists, every option is spelt in full
as the parser defines it (argparse would also take an abbreviation), and the line parses.
``...`` and ``[optional]`` groups are checked by option name only, as is an inline span that
ends on an option it names (``ptyfast simulate --preview``) or names only a subcommand.
Every ``--option`` in inline code anywhere in those pages must be an option of a ``ptyfast``
subcommand, or of a benchmark script (``benches/*.py``: ``--quick``, ``--timer``).

The lines of a page's fenced blocks also run, in page order, in one empty directory per page
(the README's cluster lines read the recipes its campaign lines write), through
``ptyfast.cli.main`` in this process (``> FILE`` writes the standard output to FILE). Each must
exit with 0 and write the ``-o`` and ``--preview`` files it names; a ``--dry-run`` must write
nothing. To keep this quick, two things differ from the page, and only these: ``-n K`` runs
``min(K, 1000)`` patterns, and a cluster line (``--workers``, ``--scheduler``) runs with
``--dry-run``, which plans the run without starting a cluster or reaching a scheduler. The
``object_and_probe.npz`` that ``--input`` reads is made before its line. A line that needs an
optional package (zarr for ``.zarr``, matplotlib for ``--preview``) is skipped where it is
missing, and the lines after it still run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [p.relative_to(ROOT).as_posix() for p in sorted(DOCS.glob("*.md"))] + [
    p.relative_to(ROOT).as_posix() for p in sorted((DOCS / "guides").glob("*.md"))
]
# Pages whose command lines are checked (the site includes parts of the README and all of
# COMPATIBILITY.md; the README's own lines are checked here once, from the README).
COMMAND_PAGES = ["README.md", "COMPATIBILITY.md", *PAGES]

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.S | re.M,
)
INCLUDE = re.compile(r'^[ \t]*--8<--[ \t]+"(?P<target>[^"]+)"[ \t]*$', re.M)
SHELL = {"sh", "bash", "console", "shell"}
# Includes whose Python runs in another test.
TESTED_ELSEWHERE = ("README.md:", "examples/")

# A page's first block starts from the namespace another page's blocks leave (its prose says so).
AFTER = {
    "docs/guides/grouping.md": "docs/guides/nongrid.md",
    "docs/guides/loader.md": "docs/guides/grouping.md",
}
# A word in a block → the optional module it needs.
OPTIONAL = {
    "zarr": "zarr",
    "distributed": "distributed",
    "dask": "dask",
    "ptychodus": "ptychodus",
    "tensorflow": "tensorflow",
    "tf_reference": "tensorflow",
    "as_tf_dataset": "tensorflow",
    "matplotlib": "matplotlib",
    "preview": "matplotlib",
    "h5py": "h5py",
    ".h5": "h5py",
    ".cxi": "h5py",
}
MAX_PATTERNS = 1000  # -n K runs min(K, MAX_PATTERNS) patterns


# --------------------------------------------------------------------------- extraction


def _text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def _fences(text: str) -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in FENCE.finditer(text)]


def _section(text: str, name: str, where: str) -> str:
    """The lines between the snippet markers ``--8<-- [start:name]`` and ``[end:name]``."""
    key = re.escape(name)
    m = re.search(
        rf"^[^\n]*--8<-- \[start:{key}\][^\n]*\n(?P<body>.*?)^[^\n]*--8<-- \[end:{key}\]",
        text,
        re.S | re.M,
    )
    assert m is not None, f"{where} has no snippet section {name!r}"
    return m["body"]


def _resolve(target: str) -> str:
    """The text pymdownx.snippets includes for ``--8<-- "target"`` (base path: the root)."""
    path, _, name = target.partition(":")
    text = (ROOT / path).read_text(encoding="utf-8")
    return _section(text, name, path) if name else text


def _included_only(body: str) -> list[str] | None:
    """The include targets of a block made only of include lines, else None."""
    lines = [line for line in body.splitlines() if line.strip()]
    targets = [m["target"] for line in lines if (m := INCLUDE.match(line))]
    return targets if lines and len(targets) == len(lines) else None


def _python_blocks(page: str) -> list[str]:
    """The page's python blocks that run here, includes of other files resolved."""
    out = []
    for lang, body in _fences(_text(page)):
        if lang != "python":
            continue
        targets = _included_only(body)
        if targets is not None and all(t.startswith(TESTED_ELSEWHERE) for t in targets):
            continue
        out.append(INCLUDE.sub(lambda m: _resolve(m["target"]), body))
    return out


BLOCKS = [(page, i) for page in PAGES for i in range(len(_python_blocks(page)))]


# --------------------------------------------------------------------------- running blocks


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _missing_modules(code: str) -> list[str]:
    import importlib.util

    needs = sorted({mod for word, mod in OPTIONAL.items() if word in code})
    return [mod for mod in needs if importlib.util.find_spec(mod) is None]


class _Pages:
    """Runs pages' blocks once each, in order, and keeps the namespace after every block."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self.tmp = tmp
        self.dirs: dict[str, Path] = {}
        self.after: dict[tuple[str, int], dict[str, Any] | BaseException] = {}

    def start(self, page: str) -> dict[str, Any]:
        if page not in AFTER:
            return {"__name__": "__docs__"}
        first = AFTER[page]
        return self.namespace(first, len(_python_blocks(first)) - 1, f"{page} starts after it")

    def namespace(self, page: str, index: int, who: str) -> dict[str, Any]:
        """The namespace after block ``index`` of ``page`` (-1: before its first block).

        ``who`` says which later block needs it; empty for the block's own test, which gets
        the block's own exception (or skip) rather than a note that it failed.
        """
        if index < 0:
            return self.start(page)
        key = (page, index)
        if key not in self.after:
            ns = dict(self.namespace(page, index - 1, f"{page} block {index} runs after it"))
            try:
                self.after[key] = self._run(page, index, ns)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a failure or a skip: kept for every later block
                self.after[key] = exc
        result = self.after[key]
        if isinstance(result, BaseException):
            if who == "":
                raise result
            if isinstance(result, pytest.skip.Exception):
                pytest.skip(f"{page} block {index} was skipped ({result}); {who}")
            pytest.fail(f"{page} block {index} failed ({result!r}); {who}")
        return result

    def _run(self, page: str, index: int, ns: dict[str, Any]) -> dict[str, Any]:
        code = _python_blocks(page)[index]
        missing = _missing_modules(code)
        if missing:
            pytest.skip(f"{page} block {index} needs {', '.join(missing)}, not installed")
        if page not in self.dirs:  # fresh and empty for the page's first block
            self.dirs[page] = self.tmp.mktemp(Path(page).stem, numbered=True)
        with _cwd(self.dirs[page]):
            exec(compile(code, f"{page} python block {index}", "exec"), ns)
        return ns


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> _Pages:
    return _Pages(tmp_path_factory)


# What the blocks' comments and their pages say about the results.


def _nongrid_0(ns: dict[str, Any]) -> None:
    raw, Y, obj = ns["raw"], ns["Y"], ns["obj"]
    n, N = ns["config"].n_groups, 64
    assert obj.dtype == np.complex64 and obj.shape == (256, 256)  # "# complex64 (256, 256)"
    # "What comes back"
    assert raw.diff3d.dtype == np.float32 and raw.diff3d.shape == (n, N, N)
    for name in ("xcoords", "ycoords", "xcoords_start", "ycoords_start"):
        v = getattr(raw, name)
        assert v.dtype == np.float64 and v.shape == (n,), name
        assert v.min() >= 20.0 and v.max() < 256 - 20.0, name  # within the buffer
    assert raw.probeGuess.dtype == np.complex64 and raw.objectGuess.dtype == np.complex64
    assert Y.dtype == np.complex64 and Y.shape == (n, N, N, 1)
    assert np.array_equal(Y, raw.Y)
    assert raw.intensity_scale > 0
    md = raw.metadata
    assert md["nphotons"] == 1e9 and md["buffer"] == 20.0 and isinstance(md["seed"], int)


def _grid_0(ns: dict[str, Any]) -> None:
    # "# X, Y_I, Y_phi: (2048, 64, 64, 4) float32; coords: (2048, 1, 2, 4) float32", and
    # B = nimgs · G1² with G1 = (size − bigN) // (outer_offset // 2) + 1 ("The layout").
    g1 = (192 - (64 + (2 - 1) * 4)) // (8 // 2) + 1
    assert 2 * g1**2 == 2048
    for name in ("X", "Y_I", "Y_phi"):
        assert ns[name].shape == (2048, 64, 64, 4) and ns[name].dtype == np.float32, name
    assert ns["coords"].shape == (2048, 1, 2, 4) and ns["coords"].dtype == np.float32


def _grid_1(ns: dict[str, Any]) -> None:
    from ptyfast.intensity import calculate_intensity_scale

    d, s, stats = ns["d"], ns["s"], ns["stats"]
    assert np.array_equal(d["X"], ns["X"])  # "the same bits as X above"
    # "a dict that also holds intensity_scale, norm_Y_I, the nominal and true coordinates,
    # YY_full and the pre-probe patches"
    assert {"intensity_scale", "norm_Y_I", "coords", "YY_full", "I_pre_probe"} <= set(d)
    assert len(d["coords"]) == 2
    assert stats["intensity_scale"] == pytest.approx(float(s))
    # "s, to ~1/sqrt(total counts) with noise" (2048 · 4 patterns of 1e9 photons)
    assert calculate_intensity_scale(stats, nphotons=1e9) == pytest.approx(float(s), rel=1e-5)


def _grouping_0(ns: dict[str, Any]) -> None:
    g, raw = ns["grouped"], ns["raw"]
    B, N, C = min(2000, len(raw.diff3d)), 64, 4
    for key in ("diffraction", "X_full", "Y"):
        assert g[key].shape == (B, N, N, C), key
    assert g["X_full"].dtype == np.float32
    energy = np.mean(np.sum(g["X_full"].astype(np.float64) ** 2, axis=(1, 2)))
    assert energy == pytest.approx((N / 2) ** 2, rel=1e-5)  # mean energy (N/2)² per pattern
    idx = g["nn_indices"]
    assert idx.shape == (B, C) and idx.dtype == np.int32
    assert np.array_equal(g["diffraction"], np.moveaxis(raw.diff3d[idx], 1, -1))
    for key in ("coords_nn", "coords_relative", "coords_start_nn", "coords_start_relative"):
        assert g[key].shape == (B, 1, 2, C), key
    for key in ("coords_offsets", "coords_start_offsets"):
        assert g[key].shape == (B, 1, 2, 1), key
    assert np.array_equal(g["coords_relative"], -(g["coords_nn"] - g["coords_offsets"]))


def _loader_0(ns: dict[str, Any]) -> None:
    from ptyfast.intensity import compute_dataset_intensity_stats, scale_nphotons

    g, c, train, test = ns["grouped"], ns["container"], ns["train"], ns["test"]
    assert c.X.dtype == np.float32 and np.array_equal(c.X, g["X_full"])
    assert np.array_equal(c.Y_I, np.abs(g["Y"]))
    assert np.allclose(c.Y_phi, np.angle(g["Y"]))
    start = g["coords_start_relative"].astype(np.float32)
    assert np.array_equal(c.coords_nominal, start) and np.array_equal(c.coords_true, start)
    assert np.array_equal(c.global_offsets, g["coords_offsets"])
    assert np.array_equal(c.local_offsets, g["coords_relative"])
    assert c.norm_Y_I == scale_nphotons(c.X)
    raw_stats = compute_dataset_intensity_stats(g["diffraction"])  # of the *raw* diffraction
    assert c.dataset_intensity_stats["batch_mean_sum_intensity"] == pytest.approx(
        raw_stats["batch_mean_sum_intensity"]
    )
    cut = int(len(c.X) * 0.8)  # the first int(B · frac) groups, then the rest
    assert np.array_equal(train.X, c.X[:cut]) and np.array_equal(test.X, c.X[cut:])
    assert np.array_equal(train.nn_indices, c.nn_indices[:cut])
    assert np.array_equal(test.nn_indices, c.nn_indices[cut:])


def _probes_0(ns: dict[str, Any]) -> None:
    probe, probes = ns["probe"], ns["probes"]
    assert probe.shape == (3, 128, 128) and probe.dtype == np.complex64  # "# (3, 128, 128)"
    assert np.array_equal(probes.build(ns["r"]), probe)  # "the same bits on every call"
    assert np.sum(np.abs(probe.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-5)


CLAIMS: dict[tuple[str, int], Callable[[dict[str, Any]], None]] = {
    ("docs/guides/nongrid.md", 0): _nongrid_0,
    ("docs/guides/grid.md", 0): _grid_0,
    ("docs/guides/grid.md", 1): _grid_1,
    ("docs/guides/grouping.md", 0): _grouping_0,
    ("docs/guides/loader.md", 0): _loader_0,
    ("docs/guides/probes.md", 0): _probes_0,
}


def test_python_blocks_are_found() -> None:
    assert len(BLOCKS) >= 6, BLOCKS
    assert set(CLAIMS) <= set(BLOCKS), sorted(set(CLAIMS) - set(BLOCKS))
    for page, first in AFTER.items():
        assert (page, 0) in BLOCKS and (first, 0) in BLOCKS, (page, first)


@pytest.mark.parametrize(("page", "index"), BLOCKS, ids=[f"{p}#{i}" for p, i in BLOCKS])
def test_python_block_runs(pages: _Pages, page: str, index: int) -> None:
    ns = pages.namespace(page, index, "")
    check = CLAIMS.get((page, index))
    if check is not None:
        check(ns)


def test_included_blocks_are_tested_elsewhere() -> None:
    """Each python block made of includes names a README section or an example script."""
    readme = _text("README.md")
    seen = 0
    for page in PAGES:
        for lang, body in _fences(_text(page)):
            targets = _included_only(body) if lang == "python" else None
            for target in targets or []:
                if target.startswith("README.md:"):
                    section = _section(readme, target.partition(":")[2], "README.md")
                    assert "```python" in section, f"{page}: {target} holds no python block"
                elif target.startswith("examples/"):
                    assert (ROOT / target).is_file(), f"{page}: {target} does not exist"
                    assert target.endswith(".py") and "/" not in target[len("examples/") :]
                else:
                    continue
                seen += 1
    assert seen >= 10, seen


# --------------------------------------------------------------------------- command lines


def _commands(text: str) -> tuple[list[list[str]], list[str]]:
    """The ``ptyfast`` lines of each shell block (a list per block), and the inline spans."""
    blocks = []
    for lang, body in _fences(text):
        if lang not in SHELL:
            continue
        lines = [
            re.sub(r"^\s*(\$\s+)?", "", line)
            for line in body.replace("\\\n", " ").splitlines()
            if re.match(r"\s*(\$\s+)?(python -m )?ptyfast\s", line)
        ]
        if lines:
            blocks.append(lines)
    prose = FENCE.sub("", text)
    spans = [
        " ".join(m[1].split())
        for m in re.finditer(r"`([^`]+)`", prose)
        if re.match(r"\s*(python -m )?ptyfast\s", m[1])
    ]
    return blocks, spans


def _argv(line: str) -> tuple[list[str], str | None]:
    """The arguments after ``ptyfast`` and the file of a ``> FILE`` redirection."""
    tokens = shlex.split(line, comments=True)
    if tokens[:2] == ["python", "-m"]:
        tokens = tokens[2:]
    assert tokens[0] == "ptyfast", line
    redirect = None
    if ">" in tokens:
        at = tokens.index(">")
        redirect = tokens[at + 1]
        tokens = tokens[:at] + tokens[at + 2 :]
    return tokens[1:], redirect


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from ptyfast import cli

    parser = cli._parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _is_option(token: str) -> bool:
    return re.fullmatch(r"--?[A-Za-z][\w-]*", token) is not None


def _check_names(argv: list[str], where: str) -> argparse.ArgumentParser:
    subs = _subparsers()
    assert argv and argv[0] in subs, f"{where}: no subcommand {argv[:1]} (have {sorted(subs)})"
    known = subs[argv[0]]._option_string_actions
    for token in argv[1:]:
        name = token.strip("[]").partition("=")[0]
        if _is_option(name):
            assert name in known, f"{where}: {argv[0]} has no option {name}"
    return subs[argv[0]]


def _parse(argv: list[str], where: str) -> None:
    from ptyfast import cli

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            cli._parser().parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0 and "--help" in argv, f"{where}: does not parse:\n{out.getvalue()}"


COMMAND_BLOCKS = []
INLINE = []
for _page in COMMAND_PAGES:
    _blocks, _spans = _commands(_text(_page))
    COMMAND_BLOCKS += [(_page, i, lines) for i, lines in enumerate(_blocks)]
    INLINE += [(_page, span) for span in _spans]
LINES = [(page, line) for page, _, lines in COMMAND_BLOCKS for line in lines]


def test_command_lines_are_found() -> None:
    assert len(LINES) >= 10 and len(INLINE) >= 10, (len(LINES), len(INLINE))
    assert {"simulate", "recipe"} <= {_argv(line)[0][0] for _, line in LINES}


@pytest.mark.parametrize(("page", "line"), LINES, ids=[f"{p}:{ln[:60]}" for p, ln in LINES])
def test_block_command_parses(page: str, line: str) -> None:
    argv, _ = _argv(line)
    _check_names(argv, f"{page}: {line}")
    _parse(argv, f"{page}: {line}")


@pytest.mark.parametrize(("page", "span"), INLINE, ids=[f"{p}:{s[:60]}" for p, s in INLINE])
def test_inline_command_parses(page: str, span: str) -> None:
    argv, _ = _argv(span)
    parser = _check_names(argv, f"{page}: `{span}`")
    if len(argv) == 1 or "..." in argv or any(t.startswith("[") for t in argv):
        return  # a subcommand named, or a synopsis: its names are checked above
    last = parser._option_string_actions.get(argv[-1])
    if last is not None and last.nargs != 0:
        return  # the span names an option that takes a value (``--preview``)
    _parse(argv, f"{page}: `{span}`")


def _bench_options() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "benches").glob("*.py")))
    return set(re.findall(r'add_argument\(\s*"(--[\w-]+)"', text))


@pytest.mark.parametrize("page", COMMAND_PAGES)
def test_inline_options_exist(page: str) -> None:
    """Every ``--option`` (and ``-x`` opening a span) in inline code is a real option."""
    known = {o for p in _subparsers().values() for o in p._option_string_actions}
    known |= _bench_options()
    prose = FENCE.sub("", _text(page))
    for m in re.finditer(r"`([^`]+)`", prose):
        tokens = m[1].split()
        for k, token in enumerate(tokens):
            name = token.strip("[]").partition("=")[0]
            long = name.startswith("--") and _is_option(name)
            short = k == 0 and re.fullmatch(r"-[A-Za-z]", name) is not None
            if long or short:
                assert name in known, f"{page}: `{m[1]}` shows {name}, which no command has"


# --------------------------------------------------------------------------- running blocks


def _cut(argv: list[str]) -> tuple[list[str], list[str]]:
    """The arguments this test runs, and what it changed (see the module docstring)."""
    argv, changed = list(argv), []
    for flag in ("-n", "--n-images"):
        if flag in argv:
            at = argv.index(flag) + 1
            if int(argv[at]) > MAX_PATTERNS:
                changed.append(f"{flag} {argv[at]} → {MAX_PATTERNS}")
                argv[at] = str(MAX_PATTERNS)
    if ("--workers" in argv or "--scheduler" in argv) and "--dry-run" not in argv:
        argv.append("--dry-run")
        changed.append("--dry-run (a cluster line)")
    return argv, changed


def _value(argv: list[str], *flags: str) -> str | None:
    for flag in flags:
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def _make_input(path: Path) -> None:
    from ptyfast.diffsim import sim_object_image
    from ptyfast.probe import get_default_probe

    np.savez(
        path,
        objectGuess=sim_object_image(128, data_source="lines", seed=1),
        probeGuess=get_default_probe(64).astype(np.complex64),
    )


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _main(argv: list[str]) -> tuple[int, str, str]:
    """``ptyfast.cli.main(argv)``, its output captured; the logging it configures undone."""
    from ptyfast import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(argv)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return rc, out.getvalue(), err.getvalue()


def _same_dataset(where: Path, out: str) -> None:
    """``# the same dataset, bit for bit`` (one.toml is experiment 2's record)."""
    import ptyfast

    a = ptyfast.open(where / "out/example-00002.npz")
    b = ptyfast.open(where / "again.npz")
    assert np.array_equal(a.diffraction, b.diffraction)
    assert np.array_equal(a.positions_true, b.positions_true)


def _into_runs(where: Path, out: str) -> None:
    """``# into runs/ptyfast_simulation.npz``."""
    assert (where / "runs/ptyfast_simulation.npz").is_file(), sorted(_files(where))


def _campaign_files(where: Path, out: str) -> None:
    """``# a campaign: out/<name>-00000.npz, ...`` (the template: 4 experiments, "example")."""
    names = sorted(p.name for p in (where / "out").iterdir())
    assert names == [f"example-{i:05d}.npz" for i in range(4)], names


def _dry_run_report(where: Path, out: str) -> None:
    """``# shapes, bytes, free disk, memory, time; writes nothing``."""
    for word in ("diff3d: (1,000 × 64 × 64) float32", "disk", "peak memory", "time"):
        assert word in out, (word, out)


# After the line that starts with the key has run (in its directory, with its standard
# output): what its comment says.
AFTER_LINE: dict[str, Callable[[Path, str], None]] = {
    "ptyfast simulate -o runs/ --overwrite": _into_runs,
    "ptyfast simulate --recipe recipe.toml -o out/ ": _campaign_files,
    "ptyfast simulate -n 1000000 --dry-run": _dry_run_report,
    "ptyfast simulate --recipe one.toml -o again.npz": _same_dataset,
}


def test_after_line_checks_apply() -> None:
    for start in AFTER_LINE:
        assert any(line.startswith(start) for _, line in LINES), start


RUN_PAGES = sorted({page for page, _, _ in COMMAND_BLOCKS}, key=COMMAND_PAGES.index)


@pytest.mark.parametrize("page", RUN_PAGES)
def test_command_blocks_run(tmp_path: Path, page: str) -> None:
    import importlib.util

    skipped = []
    for index, line in [(i, ln) for p, i, lines in COMMAND_BLOCKS if p == page for ln in lines]:
        shown, redirect = _argv(line)
        argv, changed = _cut(shown)
        where = f"{page} block {index}: {line}"
        if changed:
            where += f" (run with {'; '.join(changed)})"
        dry = "--dry-run" in argv
        output = _value(argv, "-o", "--output")
        preview = _value(argv, "--preview")
        needs = [
            mod
            for mod, needed in (
                ("zarr", output is not None and ".zarr" in output),
                ("matplotlib", preview is not None and not dry),
            )
            if needed and importlib.util.find_spec(mod) is None
        ]
        if needs:
            skipped.append(f"{line!r} needs {', '.join(needs)}, not installed")
            continue
        source = _value(argv, "--input")
        if source is not None and not (tmp_path / source).exists():
            _make_input(tmp_path / source)
        before = _files(tmp_path)
        with _cwd(tmp_path):
            rc, out, err = _main(argv)
        assert rc == 0, f"{where}: exit status {rc}\n{err}"
        if redirect is not None:
            (tmp_path / redirect).write_text(out, encoding="utf-8")
            assert out.strip(), f"{where}: printed nothing into {redirect}"
        if dry:
            assert _files(tmp_path) - {redirect} == before, f"{where}: --dry-run wrote files"
        elif argv[0] == "simulate":
            target = tmp_path / (output or "ptyfast_simulation.npz")
            assert target.exists(), f"{where}: {target.name} not written"
            if target.is_dir() and not target.suffix:
                assert any(target.iterdir()), f"{where}: nothing written into {output}"
        if preview is not None and not dry:
            assert (tmp_path / preview).is_file(), f"{where}: no preview {preview}"
        for start, check in AFTER_LINE.items():
            if line.startswith(start):
                check(tmp_path, out)
    if skipped:
        pytest.skip("; ".join(skipped))

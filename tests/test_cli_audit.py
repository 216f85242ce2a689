"""An adversarial audit of the ``ptyfast`` command line (simulate, recipe, info, convert).

What the other CLI tests leave out: hostile values for every subcommand's options (each must
be exit status 2 and one line on stderr naming the option or the file, nothing written), files
the CLI must not destroy (an output that is a file of the input: ``convert``'s ptychodus pair,
``recipe --from X -o X``, ``simulate --input X -o X``), ``info``/``convert``/``recipe`` on
foreign and corrupt files, ``--help`` and ``--version``, stdout/stderr discipline in a real
subprocess, ``convert`` between every pair of formats bit for bit, and signals during
``convert``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _io_data import EXT, assert_same, formats, needs_zarr, random_dataset

import ptyfast
from ptyfast import cli

SRC = str(Path(ptyfast.__file__).resolve().parents[1])
ENV = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("COLUMNS", None)
# ``python -m ptyfast`` with Ctrl-C's handler: a job that a non-interactive shell starts in the
# background (CI's) inherits SIGINT ignored, and Python then installs no handler, so SIGINT
# would go unnoticed; an interactive user has the default one.
PTYFAST_CTRL_C = [
    sys.executable,
    "-c",
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from ptyfast.cli import main; sys.exit(main())",
]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, signals")

SMALL = ["-n", "12", "--N", "16", "--object-size", "40", "--no-progress"]
MODEL = [*SMALL, "--detector", "ideal"]
GEO = ["--energy-eV", "8000", "--distance-m", "2", "--detector-pixel-m", "75e-6"]


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    """``cli.main(argv)`` in this process: (exit status, stdout, stderr), argparse's exits
    included."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _proc(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ptyfast", *argv],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def _tree(d: Path) -> dict[str, bytes | None]:
    """Every file under ``d`` with its bytes (directories: None)."""
    return {
        os.fspath(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(d.rglob("*"))
    }


def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ptyfast"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Good, foreign and corrupt inputs (the tests copy them before any write)."""
    d = tmp_path_factory.mktemp("inputs")
    ds = random_dataset(1, m=9, dtype=np.uint16, patches=True)
    ds.save(d / "good.npz")
    good = (d / "good.npz").read_bytes()
    (d / "empty.npz").write_bytes(b"")
    (d / "text.npz").write_text("objectGuess, probeGuess\n")
    (d / "notes.txt").write_text("hello\n")
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    (d / "adir").mkdir()
    (d / "adir" / "keep.txt").write_text("a user's folder\n")
    # A zip whose directory is fine but whose diffraction member fails its CRC.
    with zipfile.ZipFile(d / "good.npz") as z:
        name = "readings.npy"  # the patterns ptyfast reads (diff3d is PtychoPINN's copy)
        info = z.getinfo(name)
    data = bytearray(good)
    data[info.header_offset + 30 + len(name) + 200] ^= 0xFF
    (d / "badcrc.npz").write_bytes(bytes(data))
    np.savez(
        d / "objprobe.npz",
        objectGuess=np.ones((40, 40), np.complex64),
        probeGuess=np.ones((16, 16), np.complex64),
    )
    np.savez(d / "nokeys.npz", x=np.zeros(3))
    (d / "bad.toml").write_text("x = [\n")
    return d


@pytest.fixture
def work(tmp_path, files, monkeypatch) -> Path:
    """A scratch directory (the current one) holding copies of the inputs."""
    w = tmp_path / "wörk dir"
    shutil.copytree(files, w)
    monkeypatch.chdir(w)
    return w


# --------------------------------------------------------------------------- --version, --help


def test_version_goes_to_stdout_and_exits_0():
    res = _proc(["--version"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"ptyfast {ptyfast.__version__}\n" and res.stderr == ""
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", ptyfast.__version__)


def _subparsers() -> dict:
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(sub.choices)


@pytest.mark.parametrize("command", ["simulate", "recipe", "info", "convert"])
def test_help_names_every_option_and_its_default(command, capsys):
    code, out, err = _main([command, "--help"], capsys)
    assert code == 0 and err == ""
    text = " ".join(out.split())
    p = _subparsers()[command]
    for action in p._actions:
        for opt in action.option_strings:
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), (command, opt)
        if not action.option_strings:  # a positional
            assert re.search(rf"\b{re.escape(action.metavar or action.dest)}\b", text)
        d = action.default
        if action.option_strings and d not in (None, False, argparse.SUPPRESS):
            if action.nargs != 0:  # each default in its own option's entry
                entry = _entry(out, action.option_strings[-1])
                assert entry.endswith(f"(default: {d})"), (command, entry)


def _entry(help_text: str, option: str) -> str:
    """The help entry of ``option``: its line and the indented lines after it."""
    lines = help_text.splitlines()
    head = re.compile(rf"\s+(-\w( \S+)?, )?{re.escape(option)}(?![\w-])")
    start = next(i for i, line in enumerate(lines) if head.match(line))
    stop = re.compile(r"\S|\s{1,4}-")  # a group's heading or the next option
    end = next((j for j in range(start + 1, len(lines)) if stop.match(lines[j])), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


def test_stated_defaults_are_the_documented_ones(capsys):
    """The README's and docs' figures (10,000 patterns of 64 x 64, 1e9 photons, seed 42),
    each in its own option's help entry."""
    code, out, _ = _main(["simulate", "--help"], capsys)
    assert code == 0
    for option, default in [
        ("--n-images", "10000"),
        ("--N", "64"),
        ("--nphotons", "1000000000.0"),
        ("--seed", "42"),
        ("--object", "lines"),
        ("--object-size", "256"),
        ("--chunk-size", "2048"),
        ("--output", cli.DEFAULT_OUTPUT_NAME),
        ("--mode-decay", "0.5"),
    ]:
        assert _entry(out, option).endswith(f"(default: {default})"), _entry(out, option)
    assert "ceil(N/2)" in _entry(out, "--buffer")
    assert "(default: " not in _entry(out, "--overwrite")


def test_no_subcommand_and_unknown_subcommand_are_one_line_errors(capsys):
    for argv, needle in [([], "command"), (["simulat"], "simulat"), (["info"], "file")]:
        code, out, err = _main(argv, capsys)
        _assert_one_line_error(code, err, needle)
        assert out == ""


# --------------------------------------------------------------------------- hostile values

# (argv, words the one-line message must hold); "{o}" is an output path in the scratch dir.
HOSTILE = {
    # simulate, PtychoPINN's path
    "n abc": (["simulate", *SMALL, "-n", "abc", "-o", "{o}.npz"], ["-n/--n-images", "'abc'"]),
    "n float": (["simulate", *SMALL, "-n", "1e3", "-o", "{o}.npz"], ["-n/--n-images", "'1e3'"]),
    "n negative": (["simulate", *SMALL, "-n", "-5", "-o", "{o}.npz"], ["-n/--n-images", "-5"]),
    "N float": (["simulate", *SMALL, "--N", "16.5", "-o", "{o}.npz"], ["--N", "'16.5'"]),
    "nphotons word": (
        ["simulate", *SMALL, "--nphotons", "lots", "-o", "{o}.npz"],
        ["--nphotons", "'lots'"],
    ),
    "nphotons 0": (["simulate", *SMALL, "--nphotons", "0", "-o", "{o}.npz"], ["--nphotons", "0"]),
    "nphotons=-inf": (
        ["simulate", *SMALL, "--nphotons=-inf", "-o", "{o}.npz"],
        ["--nphotons", "-inf"],
    ),
    # argparse took a separate "-inf" for an option ("expected one argument", no value named)
    "nphotons -inf": (
        ["simulate", *SMALL, "--nphotons", "-inf", "-o", "{o}.npz"],
        ["--nphotons", "got -inf"],
    ),
    "drift -inf pair": (
        ["simulate", *SMALL, "--drift-px", "-inf,0", "-o", "{o}.npz"],
        ["--drift-px"],
    ),
    "nphotons -1e3": (
        ["simulate", *SMALL, "--nphotons", "-1e3", "-o", "{o}.npz"],
        ["--nphotons", "got -1000.0"],
    ),
    "nphotons inf": (
        ["simulate", *SMALL, "--nphotons", "inf", "-o", "{o}.npz"],
        ["--nphotons", "got inf"],
    ),
    "nphotons nan": (
        ["simulate", *SMALL, "--nphotons", "nan", "-o", "{o}.npz"],
        ["--nphotons", "got nan"],
    ),
    "nphotons -5": (
        ["simulate", *SMALL, "--nphotons", "-5", "-o", "{o}.npz"],
        ["--nphotons", "got -5"],
    ),
    # beyond the float range: was "got inf", not the value given
    "nphotons 1e400": (
        ["simulate", *SMALL, "--nphotons", "1e400", "-o", "{o}.npz"],
        ["--nphotons", "'1e400'", "float range"],
    ),
    "nphotons -1e400": (
        ["simulate", *MODEL, "--nphotons", "-1e400", "-o", "{o}.npz"],
        ["--nphotons", "'-1e400'", "float range"],
    ),
    "buffer -inf": (
        ["simulate", *SMALL, "--buffer", "-inf", "-o", "{o}.npz"],
        ["--buffer", "got -inf"],
    ),
    "n -1e3": (["simulate", *SMALL, "-n", "-1e3", "-o", "{o}.npz"], ["-n/--n-images", "'-1e3'"]),
    "nphotons 1e300": (
        ["simulate", *SMALL, "--nphotons", "1e300", "-o", "{o}.npz"],
        ["nphotons", "1e+300"],
    ),
    "nphotons 1e-300": (
        ["simulate", *SMALL, "--nphotons", "1e-300", "-o", "{o}.npz"],
        ["--nphotons", "1e-300"],
    ),
    "buffer nan": (["simulate", *SMALL, "--buffer", "nan", "-o", "{o}.npz"], ["--buffer", "nan"]),
    "buffer inf": (["simulate", *SMALL, "--buffer", "inf", "-o", "{o}.npz"], ["--buffer", "inf"]),
    "seed 2**32": (
        ["simulate", *SMALL, "--seed", "4294967296", "-o", "{o}.npz"],
        ["--seed", "4294967296"],
    ),
    "seed huge": (["simulate", *SMALL, "--seed", "9" * 30, "-o", "{o}.npz"], ["--seed", "9" * 30]),
    "chunk -1": (
        ["simulate", *SMALL, "--chunk-size", "-1", "-o", "{o}.npz"],
        ["--chunk-size", "-1"],
    ),
    "object bogus": (
        ["simulate", *SMALL, "--object", "cat", "-o", "{o}.npz"],
        ["--object", "'cat'"],
    ),
    "progress both": (
        ["simulate", *SMALL, "--progress", "-o", "{o}.npz"],
        ["--progress", "--no-progress"],
    ),
    "empty output": (["simulate", *SMALL, "-o", ""], ["--output", "''"]),
    "blank input": (["simulate", *SMALL, "--input", "  ", "-o", "{o}.npz"], ["--input"]),
    "input empty file": (
        ["simulate", *SMALL, "--input", "empty.npz", "-o", "{o}.npz"],
        ["--input empty.npz"],
    ),
    "input text": (
        ["simulate", *SMALL, "--input", "text.npz", "-o", "{o}.npz"],
        ["--input text.npz"],
    ),
    "input dir": (["simulate", *SMALL, "--input", "adir", "-o", "{o}.npz"], ["--input", "adir"]),
    "input no keys": (
        ["simulate", *SMALL, "--input", "nokeys.npz", "-o", "{o}.npz"],
        ["--input nokeys.npz", "objectGuess"],
    ),
    "model input dir": (
        ["simulate", *MODEL, "--input", "adir", "-o", "{o}.npz"],
        ["--input", "adir"],
    ),
    "model input text": (
        ["simulate", *MODEL, "--input", "text.npz", "-o", "{o}.npz"],
        ["--input text.npz"],
    ),
    "output zarr": (["simulate", *SMALL, "-o", "{o}.zarr"], ["-o", ".zarr"]),
    "output under file": (["simulate", *SMALL, "-o", "notes.txt/x.npz"], ["notes.txt"]),
    "output exists": (["simulate", *SMALL, "-o", "notes.txt"], ["notes.txt", "--overwrite"]),
    "preview exists": (
        ["simulate", *SMALL, "-o", "{o}.npz", "--preview", "notes.txt"],
        ["notes.txt"],
    ),
    # the preview's directory was checked only after the dataset had been written
    "preview under file": (
        ["simulate", *SMALL, "-o", "{o}.npz", "--preview", "notes.txt/p.png"],
        ["--preview", "notes.txt"],
    ),
    "model preview under file": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--preview", "notes.txt/p.png"],
        ["--preview", "notes.txt"],
    ),
    "preview format": (["simulate", *SMALL, "-o", "{o}.npz", "--preview", "p.bmp"], [".bmp"]),
    # simulate, the model's path
    "energy nan": (
        ["simulate", *MODEL, "-o", "{o}.npz", *GEO[2:], "--energy-eV", "nan"],
        ["energy_eV", "nan", "--energy-eV"],
    ),
    "distance inf": (
        [
            "simulate",
            *MODEL,
            "-o",
            "{o}.npz",
            "--energy-eV",
            "8000",
            "--distance-m",
            "inf",
            "--detector-pixel-m",
            "1e-5",
        ],
        ["distance_m", "inf"],
    ),
    "geometry partial": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--energy-eV", "8000"],
        ["--energy-eV", "--distance-m"],
    ),
    "step nan": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--scan", "raster", "--step-px", "nan"],
        ["--step-px", "nan"],
    ),
    "jitter inf": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--jitter-px", "inf"],
        ["--jitter-px", "inf"],
    ),
    "jitter negative": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--jitter-px", "-1"],
        ["sigma_px", "-1", "--jitter-px"],
    ),
    "drift 3 values": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--drift-px", "1,2,3"],
        ["--drift-px", "'1,2,3'"],
    ),
    "drift nan": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--drift-px", "nan,1"],
        ["nan", "--drift-px"],
    ),
    "modes 0": (["simulate", *MODEL, "-o", "{o}.npz", "--modes", "0"], ["--modes", "0"]),
    "modes 100": (["simulate", *MODEL, "-o", "{o}.npz", "--modes", "100"], ["--modes", "100"]),
    "modes -2": (["simulate", *MODEL, "-o", "{o}.npz", "--modes", "-2"], ["--modes", "got -2"]),
    "modes 1.5": (["simulate", *MODEL, "-o", "{o}.npz", "--modes", "1.5"], ["--modes", "'1.5'"]),
    "modes -1e3": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--modes", "-1e3"],
        ["--modes", "'-1e3'"],
    ),
    "modes word": (["simulate", *MODEL, "-o", "{o}.npz", "--modes", "two"], ["--modes", "'two'"]),
    "modes 1 decay": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--modes", "1", "--mode-decay", "0.3"],
        ["--mode-decay", "--modes 1"],
    ),
    "mode decay 0": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--modes", "2", "--mode-decay", "0"],
        ["--mode-decay", "0"],
    ),
    "defocus nan": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--defocus-m", "nan"],
        ["--defocus-m", "nan"],
    ),
    "workers 0": (["simulate", *MODEL, "-o", "{o}.zarr", "--workers", "0"], ["--workers", "0"]),
    "shard 0": (["simulate", *MODEL, "-o", "{o}.npz", "--shard-size", "0"], ["--shard-size", "0"]),
    "workers+scheduler": (
        ["simulate", *MODEL, "-o", "{o}.zarr", "--workers", "1", "--scheduler", "x:1"],
        ["--scheduler", "--workers"],
    ),
    "param no =": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--detector-param", "qe"],
        ["--detector-param", "'qe'"],
    ),
    "param no key": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--detector-param", "=1"],
        ["--detector-param", "'=1'"],
    ),
    "param nan": (
        ["simulate", *MODEL, "-o", "{o}.npz", "--detector-param", "qe=nan"],
        ["qe", "nan", "--detector-param"],
    ),
    "param twice": (
        [
            "simulate",
            *MODEL,
            "-o",
            "{o}.npz",
            "--probe",
            "gaussian",
            "--probe-param",
            "sigma_px=3",
            "--probe-param",
            "sigma_px=4",
        ],
        ["--probe-param", "sigma_px", "twice"],
    ),
    "-n and scan n": (
        [
            "simulate",
            *MODEL,
            "-o",
            "{o}.npz",
            "--scan",
            "fermat_spiral",
            "--step-px",
            "1",
            "--scan-param",
            "n=50",
        ],
        ["--scan-param n=50", "-n/--n-images"],
    ),
    "step twice": (
        [
            "simulate",
            *MODEL,
            "-o",
            "{o}.npz",
            "--scan",
            "raster",
            "--scan-param",
            "rows=2",
            "--scan-param",
            "cols=2",
            "--scan-param",
            "step_px=2",
            "--step-px",
            "3",
        ],
        ["--scan-param step_px=2", "--step-px"],
    ),
    "N and probe N": (
        [
            "simulate",
            *MODEL,
            "-o",
            "{o}.npz",
            "--probe",
            "gaussian",
            "--probe-param",
            "N=32",
            "--probe-param",
            "sigma_px=3",
        ],
        ["--probe-param N=32", "--N"],
    ),
    "output ext": (["simulate", *MODEL, "-o", "{o}.bin"], ["'{o}.bin'", ".npz"]),
    "cxi no geometry": (["simulate", *MODEL, "-o", "{o}.cxi"], ["{o}.cxi", "geometry"]),
    "recipe missing": (["simulate", "--recipe", "missing.toml", "-o", "{o}.npz"], ["missing.toml"]),
    "recipe not toml": (
        ["simulate", "--recipe", "bad.toml", "-o", "{o}.npz"],
        ["bad.toml", "TOML"],
    ),
    "recipe binary": (["simulate", "--recipe", "good.npz", "-o", "{o}.npz"], ["good.npz"]),
    "recipe dir": (["simulate", "--recipe", "adir", "-o", "{o}.npz"], ["adir"]),
    # info
    "info empty": (["info", "empty.npz"], ["empty.npz", "not a ptyfast dataset"]),
    "info text": (["info", "notes.txt"], ["notes.txt", "not a ptyfast dataset"]),
    "info truncated": (["info", "truncated.npz"], ["truncated.npz"]),
    "info dir": (["info", "adir"], ["adir"]),
    "info missing": (["info", "missing.npz"], ["missing.npz"]),
    "info blank": (["info", ""], ["FILE", "''"]),
    "info bad crc": (["info", "badcrc.npz", "--stats"], ["badcrc.npz", "readings", "CRC"]),
    "info extra": (["info", "good.npz", "-q"], ["-q", "ptyfast info --help"]),
    "convert extra": (
        ["convert", "good.npz", "{o}.npz", "x"],
        ["arguments: x", "ptyfast convert --help"],
    ),
    "simulate unknown": (
        ["simulate", *SMALL, "--bogus", "-o", "{o}.npz"],
        ["--bogus", "ptyfast simulate --help"],
    ),
    # convert
    "convert same": (["convert", "good.npz", "good.npz", "--overwrite"], ["same path", "good.npz"]),
    "convert same dotted": (["convert", "good.npz", "./good.npz", "--overwrite"], ["same path"]),
    # convert's messages named its arguments 'src' and 'dst' (convert_file's), not --help's
    "convert same names": (
        ["convert", "good.npz", "./good.npz", "--overwrite"],
        ["INPUT and OUTPUT are the same path"],
    ),
    "convert under file names": (
        ["convert", "good.npz", "notes.txt/x.npz"],
        ["OUTPUT must lie in a directory", "notes.txt"],
    ),
    "convert long name": (["convert", "good.npz", "x" * 300 + ".npz"], ["OUTPUT must have names"]),
    "convert unknown ext": (["convert", "good.npz", "{o}.tiff"], ["{o}.tiff", "--format"]),
    "convert format": (
        ["convert", "good.npz", "{o}.npz", "--format", "tiff"],
        ["--format", "'tiff'"],
    ),
    "convert to dir": (
        ["convert", "good.npz", "adir", "--format", "npz", "--overwrite"],
        ["adir", "directory"],
    ),
    "convert to non-store dir": (
        ["convert", "good.npz", "adir", "--format", "zarr", "--overwrite"],
        ["adir"],
    ),
    "convert exists": (
        ["convert", "good.npz", "notes.txt", "--format", "npz"],
        ["notes.txt", "--overwrite"],
    ),
    "convert under file": (["convert", "good.npz", "notes.txt/x.npz"], ["notes.txt"]),
    "convert truncated": (["convert", "truncated.npz", "{o}.npz"], ["truncated.npz"]),
    "convert empty": (["convert", "empty.npz", "{o}.npz"], ["empty.npz"]),
    "convert dir": (["convert", "adir", "{o}.npz"], ["adir"]),
    "convert bad crc": (["convert", "badcrc.npz", "{o}.npz"], ["badcrc.npz", "readings", "CRC"]),
    "convert raw-data npz": (["convert", "good.npz", "{o}.npz", "--raw-data"], ["raw_data"]),
    "convert blank out": (["convert", "good.npz", " "], ["OUTPUT", "' '"]),
    # recipe
    "recipe none": (["recipe"], ["--example", "--from"]),
    "recipe both": (["recipe", "--example", "--from", "good.npz"], ["--from", "--example"]),
    "recipe campaign": (["recipe", "--example", "--campaign"], ["--campaign"]),
    "recipe from truncated": (["recipe", "--from", "truncated.npz"], ["truncated.npz"]),
    "recipe from empty": (["recipe", "--from", "empty.npz"], ["empty.npz"]),
    "recipe from dir": (["recipe", "--from", "adir"], ["adir"]),
    "recipe to dir": (["recipe", "--example", "-o", "adir"], ["adir", "directory"]),
    "recipe under file": (
        ["recipe", "--example", "-o", "notes.txt/r.toml"],
        ["--output", "notes.txt"],
    ),
    "recipe from, under file": (
        ["recipe", "--from", "good.npz", "-o", "notes.txt/r.toml"],
        ["--output", "notes.txt"],
    ),
    # -o - wrote a file named '-' (standard output is the default without -o)
    "recipe to dash": (["recipe", "--example", "-o", "-"], ["--output '-'", "standard output"]),
    "recipe from, to dash": (
        ["recipe", "--from", "good.npz", "-o", "-"],
        ["--output '-'", "standard output"],
    ),
    "recipe to existing": (
        ["recipe", "--example", "-o", "notes.txt"],
        ["notes.txt", "--overwrite"],
    ),
    # a dataset to '-' wrote a file named '-' (no dataset goes to standard output)
    "simulate to dash": (["simulate", "-n", "5", "-o", "-"], ["--output '-'", "./-"]),
    "simulate model to dash": (
        ["simulate", "-n", "5", "--detector", "eiger", "-o", "-"],
        ["--output '-'", "./-"],
    ),
    "convert to dash": (["convert", "good.npz", "-"], ["OUTPUT '-'", "./-"]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_values_are_one_line_errors_that_write_nothing(work, case, capsys):
    argv, needles = HOSTILE[case]
    o = "oüt put"
    argv = [a.format(o=o) for a in argv]
    before = _tree(work)
    code, out, err = _main(argv, capsys)
    _assert_one_line_error(code, err, *(n.format(o=o) for n in needles))
    assert out == ""
    assert _tree(work) == before  # nothing written, nothing replaced, nothing left


# --------------------------------------------------------------------------- outputs = inputs


@pytest.mark.parametrize("direction", ["product->diffraction", "diffraction->product"])
def test_convert_never_writes_over_a_file_of_its_input_pair(work, direction, capsys):
    """A ptychodus dataset is two files: writing a pair named after the input's other file
    replaced the input's diffraction file under --overwrite (the input became unreadable)."""
    ds = random_dataset(4, m=10, dtype=np.uint16)
    ds.save(work / "run.ptychodus.h5")
    src, dst = "run.ptychodus.h5", "run.diffraction.h5"
    if direction == "diffraction->product":
        src, dst = dst, src
    before = _tree(work)
    code, out, err = _main(["convert", src, dst, "--overwrite"], capsys)
    _assert_one_line_error(code, err, "share", dst)
    assert _tree(work) == before
    assert_same(ds, ptyfast.open(work / "run.ptychodus.h5"))


def test_recipe_never_writes_over_the_dataset_it_reads(work, capsys):
    """``recipe --from D -o D --overwrite`` replaced the dataset with its recipe (also the
    other file of a ptychodus pair)."""
    argv = ["simulate", *MODEL, *GEO, "-q", "-o"]
    assert _main([*argv, "m.npz"], capsys)[0] == 0
    assert _main([*argv, "p.ptychodus.h5"], capsys)[0] == 0
    before = _tree(work)
    for src, dst in [("m.npz", "./m.npz"), ("p.ptychodus.h5", "p.diffraction.h5")]:
        code, out, err = _main(["recipe", "--from", src, "-o", dst, "--overwrite"], capsys)
        _assert_one_line_error(code, err, "-o", dst)
    assert _tree(work) == before
    ptyfast.open(work / "p.ptychodus.h5")  # still readable
    # the same command to another file works
    assert _main(["recipe", "--from", "m.npz", "-o", "r.toml"], capsys)[0] == 0
    assert "ptyfast" in (work / "r.toml").read_text()


@pytest.mark.parametrize("path", ["plain", "model"])
def test_simulate_never_writes_over_its_input(work, path, capsys):
    """``simulate --input X -o X --overwrite`` replaced the object and probe it read (a model
    run's recipe records --input by hash: it could not be replayed)."""
    extra = ["--detector", "ideal"] if path == "model" else []
    (work / "sub").mkdir()
    shutil.copy(work / "objprobe.npz", work / "sub" / cli.DEFAULT_OUTPUT_NAME)
    before = _tree(work)
    for inp, out in [("objprobe.npz", "./objprobe.npz"), (f"sub/{cli.DEFAULT_OUTPUT_NAME}", "sub")]:
        argv = ["simulate", "-n", "5", "--no-progress", "--input", inp, "-o", out, "--overwrite"]
        code, _, err = _main([*argv, *extra], capsys)
        _assert_one_line_error(code, err, "--input", inp)
    assert _tree(work) == before


# --------------------------------------------------------------------------- success paths


def test_odd_output_names_and_directories(work, capsys):
    """Spaces, unicode, a leading dash and '#' in names; -o DIR without the slash; ./ paths."""
    names = ["a b ü☃.npz", "-lead.npz", "x#y.npz"]
    for name in names:
        argv = ["simulate", *SMALL, "-q", f"--output={name}"]
        code, out, err = _main(argv, capsys)
        assert (code, out, err) == (0, "", ""), err
    assert ptyfast.open(work / names[0]).n_patterns == 12
    code, out, _ = _main(["simulate", *SMALL, "-o", "adir"], capsys)
    assert code == 0 and out.startswith(f"wrote adir{os.sep}{cli.DEFAULT_OUTPUT_NAME}: 12 patterns")
    code, out, _ = _main(["convert", names[0], "./adir/ü.npz", "--compress"], capsys)
    assert code == 0 and out.strip() == f"wrote {os.path.join('adir', 'ü.npz')}"


def test_dry_run_with_quiet_still_prints_its_report_and_writes_nothing(work, capsys):
    before = _tree(work)
    code, out, err = _main(["simulate", *SMALL, "-q", "--dry-run", "-o", "d.npz"], capsys)
    assert code == 0 and err == ""
    assert "nothing written" in out and "d.npz" in out
    assert _tree(work) == before


# --------------------------------------------------------------------------- stdout vs stderr


@pytest.mark.slow
def test_stdout_has_the_data_and_stderr_the_warnings_and_progress(work):
    # a warning (buffer clamped) goes to stderr, the summary to stdout
    res = _proc(["simulate", *SMALL, "--buffer", "100", "-o", "w.npz"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("wrote w.npz: 12 patterns") and len(res.stdout.splitlines()) == 1
    assert "clamped" in res.stderr and "wrote" not in res.stderr
    # -q: nothing at all, warnings included
    res = _proc(["simulate", *SMALL, "--buffer", "100", "-q", "-o", "q.npz"])
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    # a forced progress bar: every bar on stderr, stdout unchanged
    res = _proc(["simulate", *SMALL[:-1], "--progress", "-o", "p.npz"])
    assert res.returncode == 0 and res.stdout.startswith("wrote p.npz") and "\n" == res.stdout[-1]
    assert "simulate+write" in res.stderr and "simulate+write" not in res.stdout
    # info and recipe: the data on stdout, stderr empty
    res = _proc(["info", "w.npz"])
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("file") and "M = 12, N = 16" in res.stdout
    res = _proc(["recipe", "--example"])
    assert res.returncode == 0 and res.stderr == "" and "[experiment]" in res.stdout
    # convert: its one line on stdout, no bar when stderr is not a terminal; -q: silence
    res = _proc(["convert", "w.npz", "c.npz"])
    assert (res.returncode, res.stdout, res.stderr) == (0, "wrote c.npz\n", "")
    res = _proc(["convert", "w.npz", "c2.npz", "-q"])
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    # an error: stderr only, one line, status 2
    res = _proc(["convert", "truncated.npz", "e.npz"])
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- convert, every pair


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compress"])
@pytest.mark.parametrize("dst_fmt", formats())
@pytest.mark.parametrize("src_fmt", formats())
def test_convert_between_every_pair_of_formats_keeps_every_bit(
    tmp_path, src_fmt, dst_fmt, compress, capsys
):
    ds = random_dataset(3, m=11, dtype=np.uint16, modes=2, patches=True)
    src = tmp_path / f"in put.{EXT[src_fmt]}"
    ds.save(src)
    dst = tmp_path / f"oút.{EXT[dst_fmt]}"
    argv = ["convert", str(src), str(dst), *(["--compress"] if compress else [])]
    code, out, err = _main(argv, capsys)
    assert code == 0 and err == "", err
    assert out.startswith(f"wrote {dst}")
    back = ptyfast.open(dst)
    assert_same(ds, back)
    # and back again into the source's format, as a second file
    again = tmp_path / f"again.{EXT[src_fmt]}"
    assert _main(["convert", str(dst), str(again), "-q"], capsys)[0] == 0
    assert_same(ds, ptyfast.open(again))


@pytest.mark.parametrize("dst_fmt", formats("npz", "zarr"))
def test_convert_a_plain_simulation_keeps_its_bits(tmp_path, dst_fmt, capsys):
    """PtychoPINN's raw NPZ (no geometry): into npz/zarr and back, bit for bit."""
    src = tmp_path / "raw.npz"
    assert _main(["simulate", *SMALL, "-q", "--patches", "-o", str(src)], capsys)[0] == 0
    ref = ptyfast.open(src)
    mid = tmp_path / f"mid.{EXT[dst_fmt]}"
    assert _main(["convert", str(src), str(mid), "-q", "--compress"], capsys)[0] == 0
    assert_same(ref, ptyfast.open(mid))
    assert _main(["convert", str(mid), str(tmp_path / "back.npz"), "-q"], capsys)[0] == 0
    assert_same(ref, ptyfast.open(tmp_path / "back.npz"))


# --------------------------------------------------------------------------- signals


def _writing(pid: int, directory: Path, size: float) -> bool:
    """Whether process ``pid`` holds a file in ``directory`` with more than ``size`` bytes."""
    try:
        entries = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in entries:
        try:
            if os.readlink(fd).startswith(str(directory) + os.sep) and fd.stat().st_size > size:
                return True
        except OSError:
            continue
    return False


def _interrupted(argv: list[str], started, sig: int, what: str) -> tuple[int, str, str]:
    """``ptyfast argv`` in a child process (Ctrl-C's handler restored), sent ``sig`` once
    ``started(pid)`` holds: (exit status, stdout, stderr). ``what`` names the run in the
    failures (it ended before the signal, or never started writing)."""
    proc = subprocess.Popen(
        [*PTYFAST_CTRL_C, *argv],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started(proc.pid):
            assert proc.poll() is None, f"{what} ended before the signal: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{what} never started writing"
            time.sleep(0.01)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def _assert_interrupted(code: int, out: str, err: str, sig: int) -> None:
    """Exit status 128 + the signal, nothing on stdout, the one line on stderr."""
    assert code == 128 + sig, err
    assert out == ""
    assert err.strip() == f"ptyfast: interrupted ({sig.name}); no partial file left behind"


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    """4000 random float32 patterns of 64 x 64: about a second to convert with --compress."""
    d = tmp_path_factory.mktemp("big")
    ds = random_dataset(0, m=4000, n=64, shape=(128, 128))
    ds.save(d / "big.npz")
    return d / "big.npz"


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_during_convert_leaves_no_partial_file(tmp_path, big_input, sig):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "c.npz").write_bytes(b"the old file")
    argv = ["convert", str(big_input), str(out_dir / "c.npz"), "--compress", "--overwrite"]
    code, out, err = _interrupted(argv, lambda pid: _writing(pid, out_dir, 2e6), sig, "convert")
    _assert_interrupted(code, out, err, sig)
    assert [p.name for p in out_dir.iterdir()] == ["c.npz"]
    assert (out_dir / "c.npz").read_bytes() == b"the old file"


def _hidden_store_growing(directory: Path) -> bool:
    """Whether a hidden temporary Zarr store under ``directory`` holds chunk files."""
    for tmp in directory.glob(".*ptyfast-tmp"):
        if sum(1 for p in tmp.rglob("*") if p.is_file()) > 8:
            return True
    return False


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize(
    ("ext", "sig"),
    [
        pytest.param("cxi", signal.SIGINT, id="cxi-INT"),
        pytest.param("zarr", signal.SIGTERM, id="zarr-TERM", marks=needs_zarr),
    ],
)
def test_a_signal_during_a_model_simulation_leaves_no_partial_file(tmp_path, ext, sig):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["simulate", "-n", "200000", "--N", "64", "--detector", "eiger", *GEO]
    argv += ["--no-progress", "-o", str(out_dir / f"x.{ext}")]

    def started(pid: int) -> bool:
        return _writing(pid, out_dir, 2e6) or _hidden_store_growing(out_dir)

    code, out, err = _interrupted(argv, started, sig, "the run")
    _assert_interrupted(code, out, err, sig)
    assert list(out_dir.iterdir()) == []


def test_info_and_convert_on_foreign_and_truncated_hdf5(work, capsys):
    import h5py

    h5py.File(work / "empty.h5", "w").close()
    with h5py.File(work / "other.cxi", "w") as f:
        f["entry_1/x"] = 1
    ds = random_dataset(2, m=5)
    ds.save(work / "ok.cxi")
    (work / "cut.cxi").write_bytes((work / "ok.cxi").read_bytes()[:1000])
    before = _tree(work)
    for name, needle in [("empty.h5", "HDF5"), ("other.cxi", "missing"), ("cut.cxi", "HDF5")]:
        for argv in (["info", name], ["convert", name, "o.npz"], ["recipe", "--from", name]):
            code, out, err = _main(argv, capsys)
            _assert_one_line_error(code, err, name, needle)
            assert out == ""
    assert _tree(work) == before


def test_the_random_scan_margin_follows_the_probe_param_N(work, capsys):
    argv = ["simulate", "-n", "5", "--object-size", "40", "--no-progress", "--detector", "ideal"]
    argv += ["--probe", "gaussian", "--probe-param", "N=16", "--probe-param", "sigma_px=3"]
    code, _, err = _main([*argv, "-o", "x.npz"], capsys)
    assert code == 0, err
    ds = ptyfast.open(work / "x.npz")
    assert ds.N == 16
    # every patch inside the 40-pixel object: centres within [N/2, 40 - N/2]
    assert ds.positions_true.min() >= 8 and ds.positions_true.max() <= 32


def test_recipe_output_dash_is_documented_and_a_file_named_dash_needs_dot_slash(work, capsys):
    """``recipe -o -`` is refused (above, "recipe to dash"): --help says so, and says how to
    write a file named '-'; written that way, the file holds what standard output gets."""
    code, out, _ = _main(["recipe", "--help"], capsys)
    assert code == 0
    entry = _entry(out, "--output")
    assert "standard output" in entry and "'-'" in entry and "./-" in entry
    code, printed, err = _main(["recipe", "--example"], capsys)
    assert (code, err) == (0, "") and "[experiment]" in printed
    assert _main(["recipe", "--example", "-o", "./-"], capsys) == (0, "", "")
    assert (work / "-").read_text(encoding="utf-8") == printed


def test_quiet_with_an_explicit_progress_shows_the_bars_and_nothing_else(work, capsys):
    """``-q --progress``: the bars asked for, on stderr; no summary and no warning (the buffer
    clamped). Said in both options' help, which said "print nothing but errors" for -q."""
    argv = ["simulate", *SMALL[:-1], "--buffer", "100", "-q", "--progress", "-o", "qp.npz"]
    code, out, err = _main(argv, capsys)
    assert code == 0 and out == ""
    assert re.search(r"simulate\+write *: 100%", err) and "clamped" not in err, err
    assert ptyfast.open(work / "qp.npz").n_patterns == 12
    code, out, _ = _main(["simulate", "--help"], capsys)
    assert "--progress asks" in _entry(out, "--quiet")
    assert "with -q too" in _entry(out, "--progress")


def test_a_negative_drift_given_apart_is_the_option_value(work, capsys):
    """``--drift-px -0.1,0.05`` was "expected one argument" (argparse reads a separate value
    starting with '-' as an option unless it looks like one negative number)."""
    argv = ["simulate", *SMALL, "--buffer", "12", "--drift-px", "-0.1,0.05", "-o", "d.npz", "-q"]
    assert _main(argv, capsys) == (0, "", "")
    ds = ptyfast.open(work / "d.npz")
    step = np.diff(ds.positions_true - ds.positions_nominal, axis=0)
    np.testing.assert_allclose(step, np.tile([-0.1, 0.05], (len(step), 1)), rtol=0, atol=1e-12)

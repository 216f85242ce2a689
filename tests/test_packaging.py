"""Packaging and typing: what an installed ptyfast declares and how it behaves without extras.

These run against whatever ``ptyfast`` is imported: the editable build (``make test-python``)
or the installed wheel (``make test``, from a copy of ``tests/`` outside the checkout).
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import ptyfast
from ptyfast import _kernels

README = Path(__file__).resolve().parents[1] / "README.md"

# Runs the CLI in a fresh interpreter where importing matplotlib fails as it does when the
# `plot` extra is not installed; prints whether matplotlib got imported at all.
_NO_MATPLOTLIB = """
import sys

class NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMatplotlib())
from ptyfast import cli
code = cli.main(sys.argv[1:])
print("matplotlib imported:", "matplotlib" in sys.modules)
sys.exit(code)
"""

_ARGS = ["simulate", "-n", "20", "--N", "32", "--object-size", "64", "--buffer", "8", "-q"]


def _cli_without_matplotlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_MATPLOTLIB, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_preview_without_matplotlib_says_how_to_install_it_before_any_work(tmp_path):
    res = _cli_without_matplotlib(
        *_ARGS, "-o", "d.npz", "--preview", "p.png", "--no-progress", cwd=tmp_path
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr  # one line, no traceback
    assert lines[0].startswith("ptyfast: error: --preview needs matplotlib")
    assert "pip install 'ptyfast[plot]'" in lines[0]
    assert list(tmp_path.iterdir()) == []  # refused before simulating: no output at all


def test_cli_without_matplotlib_simulates_and_never_imports_it(tmp_path):
    res = _cli_without_matplotlib(*_ARGS, "-o", "d.npz", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "matplotlib imported: False"
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_metadata_declares_abi3_python_range_extras_and_licence():
    meta = metadata.metadata("ptyfast")
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["License-Expression"] == "MIT"
    classifiers = set(meta.get_all("Classifier") or [])
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    requires = meta.get_all("Requires-Dist") or []
    matplotlib = [r for r in requires if r.startswith("matplotlib")]
    # matplotlib comes only with an extra (`plot`, and `test` for the preview tests)
    assert matplotlib and all("extra ==" in r for r in matplotlib)
    assert any("extra == 'plot'" in r or 'extra == "plot"' in r for r in matplotlib)
    assert {"plot", "tf", "test"} <= set(meta.get_all("Provides-Extra") or [])
    assert meta.get_all("Project-URL")


def test_extension_is_the_stable_abi_build_and_dispatches_simd():
    ext = Path(ptyfast._core.__file__)
    assert ext.name == "_core.abi3.so"
    assert ext.parent == Path(ptyfast.__file__).parent
    assert (ext.parent / "py.typed").is_file() and (ext.parent / "_core.pyi").is_file()
    level = _kernels.simd_level()
    assert level in {"baseline", "avx2", "avx512"}


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_examples_pass_mypy_strict(tmp_path):
    blocks = _python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python blocks"
    files = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_{i}.py"
        path.write_text(block, encoding="utf-8")
        files.append(path.name)
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files],
        cwd=tmp_path,  # nothing from the checkout on mypy's path: ptyfast as installed
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = {
        re.sub(r"^(readme_\d+\.py):\d+: ", r"\1: ", line)
        for line in res.stdout.splitlines()
        if ": error: " in line
    }
    assert res.returncode in (0, 1), res.stdout + res.stderr  # 2: mypy itself failed
    assert errors == set(), res.stdout
    assert res.returncode == 0, res.stdout


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Each python block of the README runs on its own (in an empty directory)."""
    # The README shows the zarr and dask extras (Python >= 3.11); the full installed run
    # (PTYFAST_NO_SKIPS=1) has them, so this skip cannot hide a failure there.
    pytest.importorskip("zarr", minversion="3")
    pytest.importorskip("distributed")
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(_python_blocks(README.read_text(encoding="utf-8"))):
        exec(compile(block, f"README.md python block {i}", "exec"), {})

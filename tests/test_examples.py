"""Every script in ``examples/`` runs, and the documentation's gallery shows every one.

The scripts assert what they demonstrate (round trips, shapes, photon counts), so running them
is a test of the behaviour the documentation shows, not only of their syntax.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Examples of an optional extra: the modules they need (skipped where it is not installed,
# as on Python 3.10 for Dask; the full run, PTYFAST_NO_SKIPS=1, fails on a skip).
REQUIRES = {"dask_cluster.py": ("distributed", "zarr")}


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 6, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    for module in REQUIRES.get(script.name, ()):
        pytest.importorskip(module)
    res = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, f"{script.name} failed:\n{res.stdout}\n{res.stderr}"
    assert res.stdout.strip(), f"{script.name} printed nothing"
    # Examples write only into the current directory.
    assert not list(script.parent.glob("*.npz"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_is_in_the_gallery(script: Path) -> None:
    assert f"`{script.name}`" in (ROOT / "examples" / "README.md").read_text()
    assert f'--8<-- "examples/{script.name}"' in (ROOT / "docs" / "examples.md").read_text()

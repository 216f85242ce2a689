"""Compatibility points PtychoPINN's own tests and tools rely on (issue 9): public raw_data
helpers, the facts its error messages carry, the MetadataManager schema of ``_metadata``, and
the script that runs PtychoPINN's test files against ptyfast."""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptyfast import raw_data
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData

ROOT = Path(__file__).resolve().parents[1]


def test_get_neighbor_indices_equals_the_kd_tree_query():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 100, (2, 300))
    for K in (0, 1, 3, 7):
        got = raw_data.get_neighbor_indices(x, y, K=K)
        _, want = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=K + 1)
        want = np.asarray(want).reshape(300, K + 1)
        assert got.dtype == np.int64 and got.shape == (300, K + 1)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got[:, 0], np.arange(300))  # itself first
    # Fewer points than K + 1: scipy marks the missing neighbours with n, and so do we.
    got = raw_data.get_neighbor_indices([0.0, 1.0, 3.0], [0.0, 0.0, 0.0], K=4)
    _, want = cKDTree([[0, 0], [1, 0], [3, 0]]).query([[0, 0], [1, 0], [3, 0]], k=5)
    np.testing.assert_array_equal(got, want)
    assert raw_data.get_neighbor_indices([0.0], [0.0]).tolist() == [[0, 1, 1, 1]]


def test_get_neighbor_indices_errors():
    with pytest.raises(ValueError, match="K must be >= 0"):
        raw_data.get_neighbor_indices([0.0, 1.0], [0.0, 1.0], K=-1)
    with pytest.raises(TypeError, match="K must be an integer"):
        raw_data.get_neighbor_indices([0.0, 1.0], [0.0, 1.0], K=2.0)
    with pytest.raises(ValueError, match="ycoords must have the shape of xcoords"):
        raw_data.get_neighbor_indices([0.0, 1.0], [0.0], K=1)
    with pytest.raises(ValueError, match="xcoords must be finite"):
        raw_data.get_neighbor_indices([np.nan, 1.0], [0.0, 1.0])


def test_reference_module_names_exist():
    for name in ("get_neighbor_indices", "get_relative_coords", "get_image_patches",
                 "normalize_data"):  # fmt: skip
        assert callable(getattr(raw_data, name)) and name in raw_data.__all__
    assert raw_data.local_offset_sign == -1
    assert raw_data.key_coords_offsets == "coords_start_offsets"
    assert raw_data.key_coords_relative == "coords_start_relative"
    c = np.array([[[[0.0, 2.0], [0.0, 4.0]]]])
    off, rel = raw_data.get_relative_coords(c)
    np.testing.assert_array_equal(rel, raw_data.local_offset_sign * (c - off))


def _simulated(tmp_path, name="raw.npz", nphotons=1e6):
    raw = RawData.from_simulation(
        np.array([30.0, 40.5, 50.25]),
        np.array([30.0, 35.0, 60.75]),
        get_default_probe(16),
        np.ones((96, 96), np.complex64),
        nphotons=nphotons,
        seed=3,
    )
    path = tmp_path / name
    raw.to_file(path)
    return raw, path


def _metadata_manager_nphotons(path, default=1e9):
    """What PtychoPINN's MetadataManager.get_nphotons returns for a file, done by hand: the
    ``_metadata`` member's item parsed as JSON, ``physics_parameters.nphotons``, else the
    default."""
    with np.load(path, allow_pickle=False) as f:
        if "_metadata" not in f.files:
            return default
        meta = json.loads(str(f["_metadata"].item()))
    return meta.get("physics_parameters", {}).get("nphotons", default)


def test_metadata_follows_the_metadata_manager_schema(tmp_path):
    raw, path = _simulated(tmp_path)
    assert _metadata_manager_nphotons(path) == 1e6  # not PtychoPINN's 1e9 default
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["_metadata"]))
    assert meta["schema_version"] == "1.0.0"
    assert meta["physics_parameters"] == {
        "nphotons": 1e6,
        "intensity_scale": raw.intensity_scale,
        "N": 16,
    }
    assert meta["additional_parameters"] == {"poisson": True, "seed": 3}
    assert meta["data_transformations"] == []
    # what ptyfast recorded before stays where it was
    assert meta["nphotons"] == 1e6 and meta["seed"] == 3
    assert meta["intensity_scale"] == raw.intensity_scale
    # read back and written again: the same record, not nested twice
    back = RawData.from_file(path)
    assert back.intensity_scale == raw.intensity_scale
    back.to_file(tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz", allow_pickle=False) as f:
        assert json.loads(str(f["_metadata"])) == meta


def test_from_file_validates_config_against_metadata(tmp_path, caplog):
    _, path = _simulated(tmp_path)
    good = TrainingConfig(model=ModelConfig(N=16), nphotons=1e6)
    bad = TrainingConfig(model=ModelConfig(N=32), nphotons=1e9)
    with caplog.at_level(logging.WARNING, logger="ptyfast.raw_data"):
        RawData.from_file(path, validate_config=True, current_config=good)
        assert not caplog.records
        RawData.from_file(path, validate_config=True, current_config=bad)
    text = caplog.text
    assert "nphotons mismatch: dataset=1000000.0, config=1000000000.0" in text
    assert "N mismatch: dataset=16, config=32" in text


def test_from_files_loads_both(tmp_path):
    _, a = _simulated(tmp_path, "a.npz")
    _, b = _simulated(tmp_path, "b.npz", nphotons=1e4)
    train, test = RawData.from_files(a, b)
    assert train.metadata["nphotons"] == 1e6 and test.metadata["nphotons"] == 1e4


# The runner script, exercised end to end on stand-ins for PtychoPINN's four test files that
# import through the alias the way the real ones do.
_STANDIN = """
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent.parent))  # as PtychoPINN's tests do
from ptycho.raw_data import RawData, get_neighbor_indices
from ptycho import params
import ptycho.diffsim as diffsim
import ptyfast


def test_alias_{i}():
    assert RawData.__module__ == "ptyfast.raw_data"
    assert diffsim is ptyfast.diffsim and params is sys.modules["ptyfast.params"]
    assert get_neighbor_indices([0.0, 1.0], [0.0, 0.0], K=1).tolist() == [[0, 1], [1, 0]]
"""


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_ptychopinn_suite_script_runs_files_through_the_alias(tmp_path):
    checkout = tmp_path / "PtychoPINN"
    (checkout / "tests").mkdir(parents=True)
    names = ["test_raw_data_grouping", "test_coordinate_grouping", "test_oversampling",
             "test_scaling_regression"]  # fmt: skip
    for i, name in enumerate(names):
        (checkout / "tests" / f"{name}.py").write_text(textwrap.dedent(_STANDIN.format(i=i)))
    # A real `ptycho` package in the checkout must not be the one imported.
    (checkout / "ptycho").mkdir()
    (checkout / "ptycho" / "__init__.py").write_text("raise ImportError('the reference')\n")
    script = ROOT / "tests" / "manual" / "run_ptychopinn_suite.sh"
    assert os.access(script, os.X_OK)
    run = subprocess.run(
        [str(script), str(checkout), sys.executable], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    assert sorted(os.listdir(checkout / "tests")) == sorted(f"{n}.py" for n in names)
    usage = subprocess.run([str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "PTYCHOPINN_CHECKOUT" in usage.stdout

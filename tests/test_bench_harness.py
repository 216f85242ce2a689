"""The published-benchmark harness (``benches/run_all.py``) in its quick (smoke) mode.

Checks the structure of what ``make bench`` publishes: the JSON schema, the machine
description, that every protocol module ran and produced records in the shared schema, and
that the plots and the Markdown summary are written. Timings are not checked (they mean
nothing on tiny sizes, and performance lives in ``benches/``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))

import _harness  # noqa: E402


def test_record_schema_accepts_and_rejects() -> None:
    r = _harness.record("x", "case", stage="fft", variant="numpy", n=10, seconds=0.5, N=8)
    assert _harness.check_record(r) == [] and r["rate"] == 20.0
    assert any(
        "missing key" in e
        for e in _harness.check_record({k: v for k, v in r.items() if k != "rate"})
    )
    assert _harness.check_record({**r, "N": "64"})  # wrong type
    assert _harness.check_record({**r, "extra": 1})  # unknown key
    assert _harness.check_record({**r, "seconds": 0.0})  # not positive
    with pytest.raises(ValueError, match="stage"):
        _harness.record("x", "c", stage="nope", variant="numpy", n=1, seconds=1.0)
    with pytest.raises(ValueError, match="variant"):
        _harness.record("x", "c", stage="fft", variant="nope", n=1, seconds=1.0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benches" / "run_all.py"),
            "--quick",
            "--out",
            str(out),
            "--note",
            "test",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads(out.read_text()), out.parent


def test_json_schema(quick_run: tuple[dict, Path]) -> None:
    res, _ = quick_run
    assert res["schema_version"] == _harness.SCHEMA_VERSION and res["quick"] is True
    assert res["notes"] == ["test"]
    for key in (
        "cpu_model",
        "logical_cpus",
        "cpus_available",
        "memory_bytes",
        "os",
        "python",
        "numpy",
        "scipy",
        "ptyfast",
        "simd_level",
        "ptyfast_threads",
        "load_average",
    ):
        assert key in res["machine"], key
    assert res["machine"]["simd_level"] in ("baseline", "avx2", "avx512")
    assert res["records"], "no records"
    for r in res["records"]:
        assert _harness.check_record(r) == [], r


def test_every_protocol_module_ran(quick_run: tuple[dict, Path]) -> None:
    res, _ = quick_run
    status = {b["module"]: b["status"] for b in res["benches"]}
    modules = sorted(p.stem for p in (ROOT / "benches").glob("bench_*.py"))
    assert sorted(status) == modules
    for name in modules:
        want = "ok" if "\ndef run(" in (ROOT / "benches" / f"{name}.py").read_text() else "skipped"
        assert status[name] == want, (name, status[name])
        if want == "ok":
            assert any(r["bench"] == name.removeprefix("bench_") for r in res["records"]), name


def test_stages_threads_and_baselines_covered(quick_run: tuple[dict, Path]) -> None:
    recs = quick_run[0]["records"]
    stages = {(r["stage"], r["variant"]) for r in recs if r["bench"] == "stages"}
    for stage in ("extract", "fft", "noise", "write", "end-to-end"):
        assert {(stage, "ptyfast"), (stage, "numpy")} <= stages, stage
    assert len({r["N"] for r in recs if r["bench"] == "stages"}) >= 2
    threads = {r["threads"] for r in recs if r["bench"] == "threads"}
    assert 1 in threads


def test_plots_and_summary_written(quick_run: tuple[dict, Path]) -> None:
    res, d = quick_run
    for name in ("vs_N.png", "vs_threads.png", "stages.png", "speedups.png"):
        assert (d / name).stat().st_size > 1000, name
    md = (d / "results.md").read_text()
    assert res["machine"]["cpu_model"] in md
    assert md.count("\n| ") >= len(res["records"])

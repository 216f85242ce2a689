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


def test_detector_and_poisson_records(quick_run: tuple[dict, Path]) -> None:
    recs = quick_run[0]["records"]
    det = {(r["case"], r["variant"]) for r in recs if r["bench"] == "acquire"}
    for name in ("Poisson only (ideal)", "EIGER-like", "integrating"):
        assert {(f"detector {name}", "ptyfast"), (f"detector {name}", "numpy")} <= det, name
    # the detector stage is timed at an N of bench_stages, so the per-stage plot shows it
    import plot_results

    _, cats = plot_results.stage_categories(recs)
    labels = [c for c, _ in cats]
    assert "detector\nEIGER-like" in labels and "write" in labels, labels
    assert labels.index("noise") < labels.index("detector\nEIGER-like") < labels.index("write")
    poisson = [r for r in recs if r["bench"] == "poisson"]
    assert {r["variant"] for r in poisson} == {"ptyfast", "numpy"}
    assert all(r["unit"] == "samples/s" and r["stage"] == "noise" for r in poisson)


def test_plots_and_summary_written(quick_run: tuple[dict, Path]) -> None:
    res, d = quick_run
    for name in ("vs_N.png", "vs_threads.png", "stages.png", "speedups.png", "poisson.png"):
        assert (d / name).stat().st_size > 1000, name
    md = (d / "results.md").read_text()
    assert res["machine"]["cpu_model"] in md
    assert md.count("\n| ") >= len(res["records"])
    assert f"]({d.name}/poisson.png)" in md  # the optional plot is shown by the summary
    assert not (d / "dask_workers.png").exists()  # no Dask records in quick mode: no plot


def test_dask_plot_and_efficiency(tmp_path: Path) -> None:
    """The committed results (which may predate some benchmarks) still plot; Dask records, when
    present, give the workers plot and the efficiency rate / (workers × 1-worker rate)."""
    import plot_results

    res = json.loads((ROOT / "docs" / "benchmarks" / "results.json").read_text())
    old = tmp_path / "old"
    written = plot_results.main([str(ROOT / "docs/benchmarks/results.json"), "--out-dir", str(old)])
    assert {p.name for p in written} >= {"vs_N.png", "stages.png", "results.md"}
    dask = [
        _harness.record(
            "scale", f"dask, {w} worker(s)", stage="end-to-end", variant="dask", n=1000,
            seconds=s, N=64, threads=w, workers=w,
        )
        for w, s in ((1, 10.0), (2, 20 / 3))  # 100/s, then 150/s: efficiency 0.75
    ]  # fmt: skip
    assert plot_results.dask_rows(dask) == [(1, 100.0, 1.0), (2, 150.0, 0.75)]
    res["records"] = res["records"] + dask
    new = tmp_path / "benchmarks"
    new.mkdir()
    (new / "results.json").write_text(json.dumps(res))
    written = plot_results.main([str(new / "results.json")])
    assert (new / "dask_workers.png").stat().st_size > 1000
    md = (new / "results.md").read_text()
    assert "](benchmarks/dask_workers.png)" in md and "| 2 | 150 | 0.75 |" in md

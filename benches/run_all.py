"""Run every benchmark, write one JSON file with the machine description, then the plots.

Each ``benches/bench_*.py`` that follows the protocol (``run(quick) -> list[dict]``, see
``benches/_harness.py``) runs in its own fresh process; its records are collected with its
printed tables. A module without ``run`` is run as a script and only its printed output is
kept (``"status": "text"``); in ``--quick`` mode it is skipped, since its sizes are its own.

    python benches/run_all.py [--quick] [--out docs/benchmarks/results.json]
                              [--only bench_stages,bench_threads] [--note TEXT] [--no-plots]

``make bench`` runs this with the defaults; the documentation's Benchmarks page shows the
committed ``docs/benchmarks/results.json`` and the plots made from it (``plot_results.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import SCHEMA_VERSION, check_record, machine  # noqa: E402

DEFAULT_OUT = HERE.parent / "docs" / "benchmarks" / "results.json"

CHILD = r"""
import importlib, json, sys
mod = importlib.import_module(sys.argv[1])
records = mod.run(quick=sys.argv[2] == "1")
with open(sys.argv[3], "w") as fh:
    json.dump(records, fh)
"""


def modules(only: list[str] | None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SystemExit(f"--only: unknown benchmark modules {unknown}; have {names}")
        names = [n for n in names if n in only]
    return names


def follows_protocol(name: str) -> bool:
    """Whether ``name`` defines a top-level ``run`` (read from the source: no import)."""
    src = (HERE / f"{name}.py").read_text()
    return "\ndef run(" in src


def run_module(name: str, quick: bool) -> tuple[dict, list[dict]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    if follows_protocol(name):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "records.json")
            res = subprocess.run(
                [sys.executable, "-c", CHILD, name, "1" if quick else "0", out],
                capture_output=True,
                text=True,
                env=env,
                cwd=HERE.parent,
            )
            records = json.loads(Path(out).read_text()) if res.returncode == 0 else []
        status = "ok" if res.returncode == 0 else "failed"
    elif quick:
        return {
            "module": name,
            "status": "skipped",
            "seconds": 0.0,
            "records": 0,
            "load_average_after": None,
            "stdout": "",
            "error": "no run(quick) in this module: skipped in quick mode",
        }, []
    else:
        res = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py")],
            capture_output=True,
            text=True,
            env=env,
            cwd=HERE.parent,
        )
        records, status = [], "text" if res.returncode == 0 else "failed"
    info = {
        "module": name,
        "status": status,
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "seconds": round(time.perf_counter() - t0, 3),
        "records": len(records),
        "stdout": res.stdout,
        "error": res.stderr[-4000:] if res.returncode else "",
    }
    return info, records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, seconds")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    ap.add_argument("--only", help="comma-separated module names (default: every bench_*.py)")
    ap.add_argument("--note", action="append", default=[], help="a note stored in the JSON")
    ap.add_argument("--no-plots", action="store_true", help="do not draw the plots")
    a = ap.parse_args(argv)
    names = modules(a.only.split(",") if a.only else None)

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    desc = machine()
    benches, records = [], []
    for name in names:
        print(f"== {name}", flush=True)
        info, recs = run_module(name, a.quick)
        print(info["stdout"], end="", flush=True)
        if info["status"] == "failed":
            print(f"{name} FAILED:\n{info['error']}", file=sys.stderr)
        bad = [(i, e) for i, r in enumerate(recs) for e in check_record(r)]
        if bad:
            info["status"] = "failed"
            info["error"] += f"\nrecords not in the schema: {bad[:5]}"
            print(f"{name}: records not in the schema: {bad[:5]}", file=sys.stderr)
        benches.append(info)
        records += recs
    desc["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": "benches/run_all.py",
        "quick": a.quick,
        "started_utc": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "machine": desc,
        "notes": a.note,
        "benches": benches,
        "records": records,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out} ({len(records)} records from {len(names)} modules)")
    if not a.no_plots:
        from plot_results import main as plot

        plot([str(a.out)])
    return 1 if any(b["status"] == "failed" for b in benches) else 0


if __name__ == "__main__":
    sys.exit(main())

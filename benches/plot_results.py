"""Plots and a Markdown summary of a ``run_all.py`` results file.

Writes, next to the JSON (or into ``--out-dir``): ``vs_N.png`` (end-to-end patterns/s against
N, every variant), ``vs_threads.png`` (patterns/s against threads, with ideal scaling),
``stages.png`` (patterns/s per stage at one N, every variant), ``speedups.png`` (ptyfast's rate
over each baseline's, every benchmark) and ``results.md`` (the machine and every record as
tables, included by the documentation's Benchmarks page). Deterministic: Agg backend, no
timestamps in the images.

    python benches/plot_results.py docs/benchmarks/results.json [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SAVE = {"dpi": 100, "bbox_inches": "tight", "metadata": {"Software": None}}
STYLE = {
    "ptyfast": {"color": "tab:red", "marker": "o"},
    "numpy": {"color": "tab:blue", "marker": "s"},
    "tensorflow": {"color": "tab:orange", "marker": "^"},
    "ptychopinn-style": {"color": "tab:purple", "marker": "v"},
    "dask": {"color": "tab:green", "marker": "D"},
}
LABEL = {
    "ptyfast": "ptyfast",
    "numpy": "NumPy/SciPy equivalent",
    "tensorflow": "TensorFlow reference path",
    "ptychopinn-style": "PtychoPINN-style per-patch",
    "dask": "Dask",
}


def _title(res: dict[str, Any]) -> str:
    m = res["machine"]
    return (
        f"{m['cpu_model']}, {m['cpus_available']} CPUs, SIMD {m['simd_level']}, "
        f"ptyfast {m['ptyfast']}"
    )


def _save(fig: plt.Figure, path: Path, written: list[Path]) -> None:
    fig.savefig(path, **SAVE)
    plt.close(fig)
    written.append(path)


def plot_vs_n(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = [r for r in recs if r["bench"] == "stages" and r["stage"] == "end-to-end"]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for v in STYLE:
        pts = sorted((r["N"], r["rate"]) for r in rows if r["variant"] == v)
        if pts:
            ax.plot(*zip(*pts, strict=True), label=LABEL[v], **STYLE[v])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ns = sorted({r["N"] for r in rows})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("pattern size N (pixels)")
    ax.set_ylabel("patterns / s (higher is better)")
    ax.set_title("fused simulation with Poisson noise, against N\n" + _title(res), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out / "vs_N.png", written)


def plot_vs_threads(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = [r for r in recs if r["bench"] == "threads"]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for v in STYLE:
        pts = sorted((r["threads"], r["rate"]) for r in rows if r["variant"] == v)
        if pts:
            ax.plot(*zip(*pts, strict=True), label=LABEL[v], **STYLE[v])
            if v == "ptyfast":
                t1, r1 = pts[0]
                ts = [t for t, _ in pts]
                ax.plot(
                    ts,
                    [r1 * t / t1 for t in ts],
                    ":",
                    color="tab:red",
                    lw=1,
                    label="ptyfast, ideal scaling",
                )
    ts = sorted({r["threads"] for r in rows})
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("threads (ptyfast: rayon; NumPy/SciPy: FFT workers)")
    ax.set_ylabel("patterns / s")
    n = rows[0]
    ax.set_title(
        f"fused simulation, N = {n['N']}, {n['n']:,} patterns, against threads\n" + _title(res),
        fontsize=9,
    )
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out / "vs_threads.png", written)


def plot_stages(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = [r for r in recs if r["bench"] == "stages"]
    if not rows:
        return
    ns = sorted({r["N"] for r in rows})
    N = 64 if 64 in ns else ns[len(ns) // 2]
    rows = [r for r in rows if r["N"] == N]
    stages = [
        s
        for s in ("extract", "fft", "noise", "detector", "write", "end-to-end")
        if any(r["stage"] == s for r in rows)
    ]
    variants = [v for v in STYLE if any(r["variant"] == v for r in rows)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    w = 0.8 / len(variants)
    for j, v in enumerate(variants):
        for i, s in enumerate(stages):
            r = next((r for r in rows if r["stage"] == s and r["variant"] == v), None)
            if r is not None:
                ax.bar(
                    i + (j - (len(variants) - 1) / 2) * w,
                    r["rate"],
                    w,
                    color=STYLE[v]["color"],
                    label=LABEL[v]
                    if i == stages.index(next(q["stage"] for q in rows if q["variant"] == v))
                    else None,
                )
    ax.set_xticks(range(len(stages)), stages)
    ax.set_yscale("log")
    ax.set_ylabel("patterns / s (log)")
    ax.set_title(f"per stage, N = {N}\n" + _title(res), fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(variants))
    _save(fig, out / "stages.png", written)


def speedups(recs: list[dict]) -> list[tuple[str, str, float]]:
    """``(label, baseline, ptyfast rate / baseline rate)`` for every case with both."""
    by = defaultdict(dict)
    for r in recs:
        by[(r["bench"], r["case"], r["N"], r["threads"] if r["bench"] == "threads" else None)][
            r["variant"]
        ] = r
    out = []
    for (bench, case, N, _), vs in by.items():
        if "ptyfast" not in vs:
            continue
        for v, r in vs.items():
            if v != "ptyfast":
                label = f"{bench}: {case}" + (
                    "" if N is None or f"N = {N}" in case else f", N = {N}"
                )
                out.append((label, v, vs["ptyfast"]["rate"] / r["rate"]))
    return out


def plot_speedups(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = speedups(recs)
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.5))
    for i, (_, v, ratio) in enumerate(rows):
        ax.barh(i, ratio, color=STYLE[v]["color"])
        ax.text(ratio, i, f" {ratio:.1f}×", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{lab} (vs {v})" for lab, v, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="k", lw=0.8)
    for v in dict.fromkeys(v for _, v, _ in rows):
        ax.barh([0], [0], color=STYLE[v]["color"], label=f"vs {LABEL[v]}")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("ptyfast rate / baseline rate (log; > 1: ptyfast faster)")
    ax.set_title("speed-up over the baselines run in the same session\n" + _title(res), fontsize=9)
    _save(fig, out / "speedups.png", written)


def markdown(res: dict, recs: list[dict]) -> str:
    m = res["machine"]
    gib = m["memory_bytes"] / 2**30 if m.get("memory_bytes") else float("nan")
    lines = [
        "<!-- generated by benches/plot_results.py from results.json: do not edit -->",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']} |",
        f"| CPUs (available / logical) | {m['cpus_available']} / {m['logical_cpus']} |",
        f"| memory | {gib:.1f} GiB |",
        f"| OS | {m['os']} |",
        f"| SIMD level used (CPU flags) | {m['simd_level']} ({', '.join(m['cpu_flags_simd'])}) |",
        f"| ptyfast threads | {m['ptyfast_threads']} |",
        f"| Python / NumPy / SciPy / TensorFlow | {m['python']} / {m['numpy']} / {m['scipy']} / "
        f"{m['tensorflow']} |",
        f"| ptyfast (commit) | {m['ptyfast']} ({m.get('git_commit')}) |",
        f"| load average before / after | {m['load_average'][0]:.1f} / "
        f"{(m.get('load_average_after') or [float('nan')])[0]:.1f} |",
        f"| run | {res['started_utc']}, {res['duration_s']:.0f} s"
        f"{', quick (smoke) mode' if res['quick'] else ''} |",
    ]
    loads = [b["load_average_after"][0] for b in res["benches"] if b.get("load_average_after")]
    if loads:
        lines.append(f"| load average after each module | {', '.join(f'{x:.1f}' for x in loads)} |")
    for note in res.get("notes", []):
        lines.append(f"| note | {note} |")
    lines += [
        "",
        "| bench | case | N | threads | variant | n | rate | ptyfast × |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = {
        (r["bench"], r["case"], r["N"], r["threads"] if r["bench"] == "threads" else None): r[
            "rate"
        ]
        for r in recs
        if r["variant"] == "ptyfast"
    }
    for r in recs:
        key = (r["bench"], r["case"], r["N"], r["threads"] if r["bench"] == "threads" else None)
        ratio = f"{base[key] / r['rate']:.1f}" if key in base and r["variant"] != "ptyfast" else ""
        lines.append(
            f"| {r['bench']} | {r['case']} | {r['N'] if r['N'] is not None else ''} | "
            f"{r['threads'] if r['threads'] is not None else ''} | {r['variant']} | {r['n']:,} | "
            f"{r['rate']:,.0f} {r['unit']} | {ratio} |"
        )
    texts = [b for b in res["benches"] if b["status"] != "ok"]
    for b in texts:
        lines += [
            "",
            f"**{b['module']}** ({b['status']}): printed output",
            "",
            "```text",
            (b["stdout"] or b["error"]).rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--out-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    res = json.loads(a.results.read_text())
    out = a.out_dir or a.results.parent
    out.mkdir(parents=True, exist_ok=True)
    recs = res["records"]
    written: list[Path] = []
    for plot in (plot_vs_n, plot_vs_threads, plot_stages, plot_speedups):
        plot(res, recs, out, written)
    (out / "results.md").write_text(markdown(res, recs))
    written.append(out / "results.md")
    print("wrote " + ", ".join(str(p) for p in written))
    return written


if __name__ == "__main__":
    main()

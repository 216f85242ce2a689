"""Plots and a Markdown summary of a ``run_all.py`` results file.

Writes, next to the JSON (or into ``--out-dir``): ``vs_N.png`` (end-to-end patterns/s against
N, every variant), ``vs_threads.png`` (patterns/s against threads, with ideal scaling),
``stages.png`` (patterns/s per stage at one N, every variant: extraction, FFT, noise, the
detector stage of each detector ``bench_acquire`` measures, write, end to end),
``speedups.png`` (ptyfast's rate over each baseline's, every benchmark), when the results hold
their records ``dask_workers.png`` (``ptyfast.distributed`` on 1, 2, ... Dask workers, with the
efficiency ``rate / (workers × single-worker rate)``) and ``poisson.png`` (the exact Poisson
sampler, ns per sample, against NumPy), and ``results.md`` (the machine and every record as
tables, included by the documentation's Benchmarks page; it shows the optional plots that were
drawn). A plot whose records are missing is not drawn. Deterministic: Agg backend, no
timestamps in the images.

    python benches/plot_results.py docs/benchmarks/results.json [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
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


STAGE_ORDER = ("extract", "fft", "noise", "detector", "write", "end-to-end")


def stage_categories(recs: list[dict]) -> tuple[int | None, list[tuple[str, list[dict]]]]:
    """The per-stage plot's N and its categories ``(label, records)``: ``bench_stages``' stages
    at one N (64 when measured), with the detector stage of each detector ``bench_acquire``
    timed at that N (``Detector`` presets against NumPy) between noise and write."""
    rows = [r for r in recs if r["bench"] == "stages"]
    ns = sorted({r["N"] for r in rows if r["N"] is not None})
    if not ns:
        return None, []
    N = 64 if 64 in ns else ns[len(ns) // 2]
    cats: list[tuple[str, list[dict]]] = []
    for s in STAGE_ORDER:
        got = [r for r in rows if r["N"] == N and r["stage"] == s]
        if got:
            cats.append((s, got))
        if s == "detector":
            det = [r for r in recs if r["bench"] == "acquire" and r["stage"] == "detector"]
            for case in dict.fromkeys(r["case"] for r in det if r["N"] == N):
                label = "detector\n" + case.removeprefix("detector ").replace(" (ideal)", "")
                cats.append((label, [r for r in det if r["N"] == N and r["case"] == case]))
    return N, cats


def plot_stages(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    N, cats = stage_categories(recs)
    if not cats:
        return
    used = {r["variant"] for _, rs in cats for r in rs}
    variants = [v for v in STYLE if v in used]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(cats) + 2), 4.8))
    w = 0.8 / len(variants)
    labelled: set[str] = set()
    for i, (_, rs) in enumerate(cats):
        for j, v in enumerate(variants):
            r = next((r for r in rs if r["variant"] == v), None)
            if r is None:
                continue
            ax.bar(
                i + (j - (len(variants) - 1) / 2) * w,
                r["rate"],
                w,
                color=STYLE[v]["color"],
                label=None if v in labelled else LABEL[v],
            )
            labelled.add(v)
    ax.set_xticks(range(len(cats)), [c for c, _ in cats], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("patterns / s (log; higher is better)")
    det = any(c.startswith("detector\n") for c, _ in cats)
    note = " (detector: the presets on precomputed expected photons)" if det else ""
    ax.set_title(f"per stage, N = {N}, each stage timed alone{note}\n" + _title(res), fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(variants))
    _save(fig, out / "stages.png", written)


def dask_rows(recs: list[dict]) -> list[tuple[int, float, float]]:
    """``(workers, patterns/s, efficiency)`` of ``bench_scale``'s Dask records, by workers;
    efficiency = rate / (workers × the single-worker rate)."""
    rows = sorted(
        (int(r["params"].get("workers", r["threads"])), r["rate"])
        for r in recs
        if r["bench"] == "scale" and r["variant"] == "dask"
    )
    one = next((rate for w, rate in rows if w == 1), None)
    return [(w, rate, rate / (w * one) if one else float("nan")) for w, rate in rows]


def plot_dask(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = dask_rows(recs)
    if not rows:
        return
    ws = [w for w, _, _ in rows]
    single = next(
        (r for r in recs if r["bench"] == "scale" and r["case"].startswith("simulate_to")), None
    )
    first = next(r for r in recs if r["bench"] == "scale" and r["variant"] == "dask")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.plot(ws, [rate for _, rate, _ in rows], label="ptyfast.distributed.simulate", **STYLE["dask"])
    one = next((rate for w, rate, _ in rows if w == 1), None)
    if one:
        a.plot(
            ws,
            [one * w for w in ws],
            ":",
            color=STYLE["dask"]["color"],
            label="ideal: w × 1 worker",
        )
    if single is not None:
        a.axhline(
            single["rate"], color=STYLE["ptyfast"]["color"], ls="--", lw=1,
            label=f"one process, {single['threads']} thread(s), no Dask",
        )  # fmt: skip
    a.set_xticks(ws, [str(w) for w in ws])
    a.set_xlabel("Dask workers (one kernel thread each)")
    a.set_ylabel("patterns / s into a Zarr store")
    a.set_ylim(bottom=0)
    a.grid(True, alpha=0.3)
    a.legend(fontsize=7)
    a.set_title(f"N = {first['N']}, {first['n']:,} patterns", fontsize=9)
    b.bar([str(w) for w in ws], [e for _, _, e in rows], color=STYLE["dask"]["color"])
    for k, (_, _, e) in enumerate(rows):
        b.text(k, e, f" {e:.2f}", ha="center", va="bottom", fontsize=8)
    b.axhline(1, color="k", lw=0.8)
    b.set_xlabel("Dask workers")
    b.set_ylabel("efficiency = rate / (workers × 1-worker rate)")
    b.set_ylim(0, max(1.1, max(e for _, _, e in rows) * 1.15))
    b.grid(True, axis="y", alpha=0.3)
    b.set_title("parallel efficiency", fontsize=9)
    fig.suptitle("ptyfast.distributed on a local Dask cluster\n" + _title(res), fontsize=9)
    fig.tight_layout()
    _save(fig, out / "dask_workers.png", written)


def plot_poisson(res: dict, recs: list[dict], out: Path, written: list[Path]) -> None:
    rows = [r for r in recs if r["bench"] == "poisson"]
    if not rows:
        return
    workloads = list(dict.fromkeys(r["case"].split(",")[0] for r in rows))
    series: dict[str, dict[str, float]] = {}
    for r in rows:
        base = r["case"].split(",")[0]
        if r["variant"] == "numpy":
            label = "NumPy Generator.poisson (1 thread)"
        else:
            stream = r["params"].get("stream", "v1")
            label = f"ptyfast {stream}, " + (
                "1 thread" if r["threads"] == 1 else f"{r['threads']} threads"
            )
        series.setdefault(label, {})[base] = r["params"].get("ns_per_sample", 1e9 / r["rate"])
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(workloads) + 2), 4.5))
    w = 0.8 / len(series)
    colors = plt.get_cmap("tab10").colors
    for j, (label, vals) in enumerate(series.items()):
        xs = [i for i, wl in enumerate(workloads) if wl in vals]
        ax.bar(
            [x + (j - (len(series) - 1) / 2) * w for x in xs],
            [vals[workloads[x]] for x in xs],
            w,
            color=STYLE["numpy"]["color"] if label.startswith("NumPy") else colors[(j + 2) % 10],
            label=label,
        )
    ax.set_xticks(range(len(workloads)), workloads, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ns per sample (log; lower is better)")
    ax.set_title(
        "exact Poisson sampling sqrt(Poisson(A²)), N = 64 patterns and flat rates\n" + _title(res),
        fontsize=9,
    )
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out / "poisson.png", written)


def ratio_key(r: dict) -> tuple:
    """Records with the same key are compared (ptyfast against each baseline). The thread
    count is part of the key where the benchmark sweeps it (``threads``, ``scale``)."""
    sweep = r["bench"] in ("threads", "scale")
    return (r["bench"], r["case"], r["N"], r["threads"] if sweep else None)


def speedups(recs: list[dict]) -> list[tuple[str, str, float]]:
    """``(label, baseline, ptyfast rate / baseline rate)`` for every case with both."""
    by = defaultdict(dict)
    for r in recs:
        by[ratio_key(r)][r["variant"]] = r
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


#: Plots the Benchmarks page always shows; the others appear in ``results.md`` when drawn.
FIXED_PLOTS = ("vs_N.png", "vs_threads.png", "stages.png", "speedups.png")
OPTIONAL_PLOTS = {
    "dask_workers.png": "Patterns per second against Dask workers, and the parallel efficiency",
    "poisson.png": "The exact Poisson sampler against NumPy, ns per sample",
}


def markdown(res: dict, recs: list[dict], plots: Sequence[str] = (), prefix: str = "") -> str:
    """The summary; ``plots`` (file names) that are optional are shown first, linked as
    ``prefix + name`` (relative to the page that includes the file)."""
    m = res["machine"]
    gib = m["memory_bytes"] / 2**30 if m.get("memory_bytes") else float("nan")
    lines = ["<!-- generated by benches/plot_results.py from results.json: do not edit -->", ""]
    for name, alt in OPTIONAL_PLOTS.items():
        if name in plots:
            lines += [f"![{alt}]({prefix}{name})", ""]
    dask = dask_rows(recs)
    if dask:
        lines += [
            "| Dask workers | patterns/s | efficiency = rate / (workers × 1-worker rate) |",
            "|---|---|---|",
            *(f"| {w} | {rate:,.0f} | {e:.2f} |" for w, rate, e in dask),
            "",
        ]
    lines += [
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
    base = {ratio_key(r): r["rate"] for r in recs if r["variant"] == "ptyfast"}
    for r in recs:
        key = ratio_key(r)
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
    for plot in (plot_vs_n, plot_vs_threads, plot_stages, plot_speedups, plot_dask, plot_poisson):
        plot(res, recs, out, written)
    # results.md is included by docs/benchmarks.md: links relative to that page
    names = [p.name for p in written]
    (out / "results.md").write_text(markdown(res, recs, names, prefix=f"{out.resolve().name}/"))
    written.append(out / "results.md")
    print("wrote " + ", ".join(str(p) for p in written))
    return written


if __name__ == "__main__":
    main()

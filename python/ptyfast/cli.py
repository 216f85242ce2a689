"""``ptyfast`` command line: simulate a dataset to an NPZ file.

``ptyfast simulate`` (also ``python -m ptyfast simulate``) simulates a nongrid dataset on
built-in defaults (a lines object, the default probe, N = 64, 1e9 photons, random positions)
or from an NPZ holding ``objectGuess``/``probeGuess``, and writes a raw NPZ that
``RawData.from_file`` (ptyfast's and the reference's) reads. It streams: positions and the
intensity scale are computed first (cheap), then patterns are simulated and written chunk by
chunk, so memory stays bounded whatever the dataset size. The file appears atomically.
The result is bit-identical to ``nongrid_simulation.generate_simulated_data`` with the same
object, probe, buffer, seed and photon count, whatever the chunk size or thread count.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, _kernels
from ._npz import NpzStreamWriter
from .nongrid_simulation import load_probe_object, random_positions
from .raw_data import intensity_scale_of

logger = logging.getLogger("ptyfast")

_DEFAULTS = {
    "n_images": 10_000,
    "N": 64,
    "nphotons": 1e9,
    "object": "lines",
    "object_size": 256,
    "buffer": 20.0,
    "seed": 42,
    "chunk_size": 2048,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ptyfast", description="Fast ptychography dataset simulation.")
    p.add_argument("--version", action="version", version=f"ptyfast {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "simulate",
        help="simulate a nongrid dataset to a raw NPZ file",
        description="Simulate diffraction at random scan positions and write a raw NPZ "
        "(keys xcoords, ycoords, xcoords_start, ycoords_start, diff3d, probeGuess, "
        "objectGuess, scan_index, _metadata; Y with --patches).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument("-o", "--output", default="ptyfast_simulation.npz", help="output NPZ path")
    s.add_argument(
        "-n", "--n-images", type=int, default=_DEFAULTS["n_images"], help="number of patterns"
    )
    s.add_argument(
        "--N", type=int, default=_DEFAULTS["N"], help="patch / detector size (default probe only)"
    )
    s.add_argument(
        "--nphotons", type=float, default=_DEFAULTS["nphotons"], help="mean photons per pattern"
    )
    s.add_argument(
        "--object",
        choices=["lines", "grf", "points"],
        default=_DEFAULTS["object"],
        help="built-in object generator",
    )
    s.add_argument(
        "--object-size", type=int, default=_DEFAULTS["object_size"], help="object side (pixels)"
    )
    s.add_argument("--input", help="NPZ with objectGuess and probeGuess (replaces --object/--N)")
    s.add_argument(
        "--buffer",
        type=float,
        default=_DEFAULTS["buffer"],
        help="distance of positions from the edges",
    )
    s.add_argument(
        "--seed", type=int, default=_DEFAULTS["seed"], help="seed of object, positions and noise"
    )
    s.add_argument("--no-poisson", action="store_true", help="write noise-free amplitudes")
    s.add_argument("--patches", action="store_true", help="also store the ground-truth patches Y")
    s.add_argument(
        "--chunk-size", type=int, default=_DEFAULTS["chunk_size"], help="patterns per chunk"
    )
    s.add_argument(
        "--preview", help="write a preview PNG (probe, object and positions, patterns, patches)"
    )
    g = s.add_mutually_exclusive_group()
    g.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar",
    )
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )
    s.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return p


def _object_and_probe(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.input:
        obj, probe = load_probe_object(args.input)
        return obj.astype(np.complex64), probe.astype(np.complex64)
    from .datagen.objects import sim_object_image
    from .probe import get_default_probe

    obj = sim_object_image(args.object_size, data_source=args.object, seed=args.seed)
    probe = get_default_probe(args.N, fmt="np", scale=0.7).astype(np.complex64)
    return np.asarray(obj, dtype=np.complex64), probe


def simulate_to_file(
    output: str | os.PathLike[str],
    objectGuess: Any,
    probeGuess: Any,
    *,
    n_images: int,
    nphotons: float = 1e9,
    buffer: float = 20.0,
    seed: int = 42,
    poisson: bool = True,
    store_patches: bool = False,
    chunk_size: int = 2048,
    progress: bool = False,
    keep_preview: int = 3,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stream a simulated nongrid dataset to ``output`` (atomic raw NPZ).

    Equivalent to ``generate_simulated_data`` with the same arguments, written chunk by chunk.
    Returns a summary dict (positions, intensity scale, the first ``keep_preview`` patterns
    and patches for previews, timings).
    """
    if isinstance(n_images, bool) or int(n_images) < 1:
        raise ValueError(f"n_images must be a positive integer, got {n_images}")
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    if not np.isfinite(nphotons) or nphotons <= 0:
        raise ValueError(f"nphotons must be a positive finite number, got {nphotons}")
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape[0] != probe.shape[1] or probe.shape[0] < 2:
        raise ValueError(f"probeGuess must be square (N, N) with N >= 2, got {probe.shape}")
    n, N = int(n_images), probe.shape[0]
    t0 = time.perf_counter()
    x, y, buf = random_positions(n, obj.shape[0], obj.shape[1], buffer, seed)
    positions = np.column_stack([x, y])
    s = intensity_scale_of(obj, positions, probe, nphotons)
    meta = {
        "generator": f"ptyfast {__version__}",
        "nphotons": float(nphotons),
        "intensity_scale": float(s),
        "seed": int(seed),
        "buffer": float(buffer),
        "poisson": bool(poisson),
        "N": N,
        **(metadata or {}),
    }
    preview_d: list[np.ndarray] = []
    preview_y: list[np.ndarray] = []
    from tqdm import tqdm

    with NpzStreamWriter(output) as w:
        w.write("xcoords", x)
        w.write("ycoords", y)
        w.write("xcoords_start", x)
        w.write("ycoords_start", y)
        w.write("probeGuess", probe)
        w.write("objectGuess", obj)
        w.write("scan_index", np.zeros(n, dtype=np.int64))
        w.write_metadata(meta)
        # A zip archive takes one member at a time: diff3d first, then (optionally) the
        # patches in a second, FFT-free pass.
        with (
            w.stream("diff3d", (n, N, N), np.float32) as ds,
            tqdm(
                total=n, unit="pattern", disable=not progress, desc="simulate", smoothing=0.1
            ) as bar,
        ):
            for start in range(0, n, chunk_size):
                stop = min(n, start + chunk_size)
                amps, patches = _kernels.simulate(
                    obj,
                    positions[start:stop],
                    probe,
                    scale=s,
                    poisson=poisson,
                    seed=seed,
                    first_index=start,
                    divide_by_scale=True,
                    return_patches=len(preview_y) < keep_preview,
                )
                ds.append(amps)
                take = keep_preview - len(preview_d)
                if take > 0:
                    preview_d.extend(amps[:take])
                    if patches is not None:
                        preview_y.extend(patches[:take])
                bar.update(stop - start)
        if store_patches:
            with w.stream("Y", (n, N, N, 1), np.complex64) as ys:
                for start in range(0, n, chunk_size):
                    stop = min(n, start + chunk_size)
                    ys.append(_kernels.extract_patches(obj, positions[start:stop], N)[..., None])
    return {
        "xcoords": x,
        "ycoords": y,
        "buffer": buf,
        "intensity_scale": float(s),
        "patterns": np.array(preview_d),
        "patches": np.array(preview_y),
        "seconds": time.perf_counter() - t0,
        "n_images": n,
        "N": N,
    }


def write_preview(
    path: str | os.PathLike[str], obj: np.ndarray, probe: np.ndarray, summary: dict[str, Any]
) -> None:
    """Preview PNG: probe, object with scan positions, patterns (log scale), patches."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    pats, patches = summary["patterns"], summary["patches"]
    k = max(len(pats), 1)
    fig, axes = plt.subplots(3, max(k, 2), figsize=(4 * max(k, 2), 11), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    ax = axes[0, 0]
    ax.set_axis_on()
    im = ax.imshow(np.abs(probe), cmap="magma")
    ax.set_title(f"|probe| (N = {probe.shape[0]})")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[0, 1]
    ax.set_axis_on()
    im = ax.imshow(np.abs(obj), cmap="gray")
    xs, ys = summary["xcoords"], summary["ycoords"]
    step = max(1, len(xs) // 5000)
    ax.scatter(xs[::step], ys[::step], s=2, c="tab:red", alpha=0.5, linewidths=0)
    ax.set_title(f"|object| with {len(xs)} scan positions")
    fig.colorbar(im, ax=ax, fraction=0.046)
    for i, d in enumerate(pats):
        ax = axes[1, i]
        ax.set_axis_on()
        positive = d[d > 0]
        vmin = float(positive.min()) if positive.size else 1e-6
        im = ax.imshow(
            np.maximum(d, vmin),
            norm=LogNorm(vmin=vmin, vmax=max(float(d.max()), vmin * 10)),
            cmap="viridis",
        )
        ax.set_title(f"diffraction {i} (log amplitude)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    for i, p in enumerate(patches):
        ax = axes[2, i]
        ax.set_axis_on()
        im = ax.imshow(np.abs(p), cmap="gray")
        ax.set_title(f"object patch {i} (|Y|)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(
        f"ptyfast simulate: {summary['n_images']} patterns, s = {summary['intensity_scale']:.4g}"
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()


def _require_matplotlib() -> None:
    """``--preview`` needs matplotlib, an optional extra: say so before simulating."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(
            "--preview needs matplotlib, which is not installed: pip install 'ptyfast[plot]'"
        ) from None


def _simulate(args: argparse.Namespace) -> int:
    if args.preview:
        _require_matplotlib()
    obj, probe = _object_and_probe(args)
    progress = (
        args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    )
    summary = simulate_to_file(
        args.output,
        obj,
        probe,
        n_images=args.n_images,
        nphotons=args.nphotons,
        buffer=args.buffer,
        seed=args.seed,
        poisson=not args.no_poisson,
        store_patches=args.patches,
        chunk_size=args.chunk_size,
        progress=progress,
        metadata={"object": "input" if args.input else args.object, "input": args.input},
    )
    if args.preview:
        write_preview(args.preview, obj, probe, summary)
    if not args.quiet:
        rate = summary["n_images"] / max(summary["seconds"], 1e-9)
        print(
            f"wrote {args.output}: {summary['n_images']} patterns of "
            f"{summary['N']}x{summary['N']}, "
            f"intensity scale {summary['intensity_scale']:.6g}, {summary['seconds']:.2f} s "
            f"({rate:,.0f} patterns/s, {_kernels.num_threads()} threads)"
        )
        if args.preview:
            print(f"wrote {args.preview}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptyfast`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "simulate":
            return _simulate(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"ptyfast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ptyfast: interrupted; no output written", file=sys.stderr)
        return 130
    return 1  # pragma: no cover - argparse enforces the command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

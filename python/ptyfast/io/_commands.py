"""``ptyfast info FILE`` and ``ptyfast convert IN OUT``, for the ``ptyfast`` command line.

``cli.py`` adds them with :func:`add_subcommands` and calls ``args.handler(args)``; the
handlers return the exit status and raise ``ValueError`` / ``OSError`` on bad input (the
CLI turns those into ``ptyfast: error: ...`` and status 2). :func:`add_output_options` gives
any writing command the same ``--format`` / ``--compress`` / ``--overwrite`` options, and
:func:`ptyfast.io.format_from_path` maps an ``-o`` path's extension to its format.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import check_output_path, check_path
from .._kernels import _flag
from ._api import reader, writer
from ._common import EXTENSIONS, FORMATS, Header, readings_to_photons

__all__ = [
    "add_output_options",
    "add_subcommands",
    "convert",
    "convert_file",
    "info",
    "info_text",
]


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--compress``, ``--overwrite`` (for ``convert`` and ``simulate -o``)."""
    known = ", ".join(s for s, _ in EXTENSIONS)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help=f"output format (default: from the extension: {known})",
    )
    parser.add_argument(
        "--compress",
        action="store_true",
        help="compress the patterns (NPZ deflate, HDF5 gzip + shuffle, Zarr zstd)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def add_subcommands(subparsers: Any) -> None:
    """Add ``info`` and ``convert`` to ``ptyfast``'s subparsers (each sets ``handler``)."""
    p = subparsers.add_parser(
        "info",
        help="describe a dataset file (format, shapes, photons, geometry, provenance)",
        description="Print what a dataset file holds: format, sizes, shapes and dtypes, "
        "photons, geometry, detector and a provenance summary. Any format ptyfast writes.",
    )
    p.add_argument("file", help="an .npz, .ptychodus.h5 (or its .diffraction.h5), .cxi or .zarr")
    p.add_argument(
        "--stats",
        action="store_true",
        help="also read every pattern (streaming) for measured photons per pattern",
    )
    p.set_defaults(handler=info)
    c = subparsers.add_parser(
        "convert",
        help="convert a dataset to another format (streaming, atomic)",
        description="Read a dataset (format detected from the content) and write it in the "
        "format of OUTPUT's extension (or --format), block by block; OUTPUT appears atomically.",
    )
    c.add_argument("input", metavar="INPUT", help="dataset to read")
    c.add_argument(
        "output", metavar="OUTPUT", help="file to write (.npz, .ptychodus.h5, .h5, .cxi, .zarr)"
    )
    add_output_options(c)
    c.add_argument(
        "--raw-data",
        action="store_true",
        help="ptychodus output: add PtychoPINN's /raw_data bundle (amplitudes) to the product",
    )
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    c.set_defaults(handler=convert)


# ---------------------------------------------------------------------------- info


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_dir():
            for dirpath, _d, files in os.walk(p):
                total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        elif p.exists():
            total += p.stat().st_size
    return total


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _seeds(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if "seed" in str(k).lower() and isinstance(v, int | str) and not isinstance(v, bool):
                yield key, v
            else:
                yield from _seeds(v, key)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:50]):
            yield from _seeds(v, f"{prefix}[{i}]")


def _provenance_summary(prov: dict[str, Any]) -> str:
    if not prov:
        return "(none)"
    parts = []
    for key in ("ptyfast_version", "version", "source", "name"):
        if isinstance(prov.get(key), str | int | float):
            parts.append(f"{key} {prov[key]}")
    summary = prov.get("seeds")
    if isinstance(summary, dict) and summary:
        # The record's own flat summary (ptyfast's provenance): every seed once, the noise's
        # included (its key names no seed).
        seeds = [(str(k), v) for k, v in summary.items()]
    else:
        seeds = list(_seeds(prov))
    if seeds:
        shown = ", ".join(f"{k}={v}" for k, v in seeds[:8])
        parts.append(f"seeds {shown}" + (f" (+{len(seeds) - 8})" if len(seeds) > 8 else ""))
    parts.append("keys " + ", ".join(sorted(map(str, prov))[:12]))
    return "; ".join(parts)


def _detector_summary(h: Header) -> str:
    d = h.detector
    if d is None:
        return "none recorded (readings are photon counts)"
    as_dict = d if isinstance(d, dict) else getattr(d, "to_dict", dict)()
    if as_dict.get("format") != "ptyfast.Detector":
        short = ", ".join(f"{k}={v}" for k, v in list(as_dict.items())[:8])
        return f"{type(d).__name__}({short})"
    # A ptyfast detector: its name and every parameter that differs from Detector()'s.
    from ..model.detector import Detector

    default = Detector().to_dict()
    shown = []
    for k, v in as_dict.items():
        if k in ("format", "version", "name") or v == default.get(k):
            continue
        if isinstance(v, list | tuple) and len(v) > 4:
            v = f"[{len(v)} entries]"
        shown.append(f"{k}={v}")
    return f"{as_dict.get('name', 'custom')}: " + (", ".join(shown) or "Poisson counts only")


def info_text(path: str | os.PathLike[str], *, stats: bool = False) -> str:
    """What ``ptyfast info`` prints (see :func:`add_subcommands`); ``stats`` is a bool
    (``True``/``False``, ``numpy.bool_``, 0, 1; anything else is a ``TypeError``)."""
    path = check_path(path)
    stats = _flag("stats", stats)
    with reader(path) as r:
        h = r.header
        names = [os.fspath(p) for p in r.paths]
        m, n = h.n_patterns, h.N
        valid = int(h.mask.sum())
        lines = [
            ("file", names[0] + (f" (+ {', '.join(names[1:])})" if len(names) > 1 else "")),
            (
                "format",
                f"{r.format} ({'compressed' if r.compressed else 'uncompressed'}), "
                f"{_human(_size(r.paths))} on disk",
            ),
            ("patterns", f"M = {m}, N = {n}, readings {h.dtype} (M, N, N)"),
            ("probe", f"{h.n_modes} mode(s) {h.probe.shape} {h.probe.dtype}"),
            ("object", f"{h.object.shape} {h.object.dtype}"),
            ("mask", f"{valid} of {n * n} pixels valid"),
        ]
        ph = f"{h.photons:.6g}" if math.isfinite(h.photons) else "unknown"
        s = f"{h.intensity_scale:.6g}" if math.isfinite(h.intensity_scale) else "unknown"
        lines.append(("photons", f"{ph} per pattern (simulated mean); intensity scale {s}"))
        if stats:
            per: list[np.ndarray] = []
            top = -math.inf
            for _start, d, _p in r.blocks():
                photons = readings_to_photons(d, h.detector)
                per.append(photons.sum(axis=(1, 2), dtype=np.float64))
                top = max(top, float(photons.max()))
            tot = np.concatenate(per)
            lines.append(
                (
                    "measured",
                    f"photons per pattern mean {tot.mean():.6g}, min {tot.min():.6g}, "
                    f"max {tot.max():.6g}; brightest pixel {top:.6g}",
                )
            )
        g = h.geometry
        if g is None:
            lines.append(("geometry", "none (positions and pixels in pixels only)"))
        else:
            lines.append(
                (
                    "geometry",
                    f"{g.energy_eV:g} eV (wavelength {g.wavelength_m * 1e10:.5g} Å), distance "
                    f"{g.distance_m:g} m, detector pixel {g.detector_pixel_m * 1e6:g} µm, "
                    f"object pixel {g.object_pixel_m * 1e9:.5g} nm",
                )
            )
        pt, pn = h.positions_true, h.positions_nominal
        err = float(np.abs(pt - pn).max())
        lines.append(
            (
                "positions",
                f"x in [{pt[:, 0].min():.6g}, {pt[:, 0].max():.6g}], y in "
                f"[{pt[:, 1].min():.6g}, {pt[:, 1].max():.6g}] object px; "
                f"max |true - nominal| = {err:.3g} px",
            )
        )
        lines.append(("patches", "stored" if h.patches else "not stored"))
        lines.append(("detector", _detector_summary(h)))
        lines.append(("provenance", _provenance_summary(h.provenance)))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def info(args: argparse.Namespace) -> int:
    """Handler of ``ptyfast info``."""
    print(info_text(args.file, stats=args.stats))
    return 0


# ---------------------------------------------------------------------------- convert


def convert_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    format: str | None = None,  # noqa: A002 - the CLI option's name
    compress: bool = False,
    overwrite: bool = False,
    block: int | None = None,
    progress: bool = False,
    **options: Any,
) -> list[Path]:
    """Stream ``src`` (any format) into ``dst`` block by block; returns the files written.

    Memory is one block (about 16 MiB unless ``block`` patterns are asked for); ``dst``
    appears atomically. Every field survives (a conversion between ptyfast files is exact).

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input (any format, detected from the content) and output (format from its
        extension unless ``format`` is given). Bytes paths are refused.
    format, compress, overwrite, **options
        As for :func:`ptyfast.io.writer`.
    block : int or None
        Patterns per block (a positive integer); ``None``: about 16 MiB.
    progress : bool
        Show a progress bar. ``compress``, ``overwrite`` and ``progress`` are bools:
        ``True``/``False``, ``numpy.bool_``, 0 or 1 (anything else is a ``TypeError``).

    Raises
    ------
    TypeError, ValueError
        A bad argument (named in the message), checked before ``src`` is opened or anything
        is written; ``src`` and ``dst`` the same path; an output larger than the free disk
        (uncompressed; checked before any block is read); and the errors of
        :func:`ptyfast.io.reader` and :func:`ptyfast.io.writer`.
    """
    return _convert(
        src,
        dst,
        format=format,
        compress=compress,
        overwrite=overwrite,
        block=block,
        progress=progress,
        names=("src", "dst"),
        **options,
    )


def _convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    format: str | None,  # noqa: A002 - the CLI option's name
    compress: bool,
    overwrite: bool,
    block: int | None,
    progress: bool,
    names: tuple[str, str],
    **options: Any,
) -> list[Path]:
    """:func:`convert_file`, its messages naming ``src`` and ``dst`` by ``names`` (the
    command line's ``INPUT`` and ``OUTPUT``)."""
    src_name, dst_name = names
    src = check_path(src, src_name)
    dst = check_path(dst, dst_name)
    compress = _flag("compress", compress)
    overwrite = _flag("overwrite", overwrite)
    progress = _flag("progress", progress)
    if block is not None:
        if isinstance(block, bool) or not isinstance(block, numbers.Integral):
            raise TypeError(
                f"block must be a positive integer or None, got {type(block).__name__} {block!r}"
            )
        if block < 1:
            raise ValueError(f"block must be a positive integer or None, got {block!r}")
    check_output_path(dst, dst_name)
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError(f"{src_name} and {dst_name} are the same path: {os.fspath(src)!r}")
    with reader(src) as r:
        h = r.header
        w = writer(dst, h, format=format, compress=compress, overwrite=overwrite, **options)
        # A pair (ptychodus' product + diffraction file) shares files with dst although the
        # paths differ: 'convert run.ptychodus.h5 run.diffraction.h5 --overwrite' replaced
        # the input's own diffraction file and left the input unreadable.
        read = {Path(p).resolve() for p in r.paths}
        shared = [p for p in w.paths if Path(p).resolve() in read]
        if shared:
            raise ValueError(
                f"{src_name} and {dst_name} share the file {os.fspath(shared[0])!r} "
                f"({src_name} {os.fspath(src)!r}, {dst_name} {os.fspath(dst)!r}): write "
                "elsewhere"
            )
        _check_disk(w, h, dst_name)
        from tqdm import tqdm

        with w, tqdm(total=h.n_patterns, unit="pattern", disable=not progress) as bar:
            for start, d, p in r.blocks(block):
                w.write(start, d, p)
                bar.update(d.shape[0])
        return w.paths


def _check_disk(w: Any, h: Header, name: str) -> None:
    """Refuse (``ValueError``) a conversion whose output cannot fit the free disk, before any
    block is read: the sizes and the rule of ``ptyfast simulate --dry-run``
    (``_dryrun.refuse_disk``)."""
    from .. import _dryrun

    _dryrun.refuse_disk(
        [_dryrun.writer_output(w, h)],
        compress=w.compress,
        what=f"{name} {os.fspath(w.path)!r} ({h.n_patterns} patterns of {h.N}x{h.N}): the "
        "output needs",
        advice="write elsewhere or compress",
    )


def convert(args: argparse.Namespace) -> int:
    """Handler of ``ptyfast convert``."""
    options = {"raw_data": True} if args.raw_data else {}
    paths = _convert(
        args.input,
        args.output,
        format=args.format,
        compress=args.compress,
        overwrite=args.overwrite,
        block=None,
        progress=not args.quiet and sys.stderr.isatty(),
        names=("INPUT", "OUTPUT"),  # as --help shows them
        **options,
    )
    if not args.quiet:
        print("wrote " + ", ".join(os.fspath(p) for p in paths))
    return 0

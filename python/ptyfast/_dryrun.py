"""``ptyfast simulate --dry-run``: what a run would write, need and take, without writing.

Both simulation paths (PtychoPINN's nongrid one and the model's experiments and campaigns)
report the same things:

* **output**: each file's path and format, the shape and dtype of every per-pattern array it
  holds and its size (exact for uncompressed files: the arrays plus positions, object, probe
  and metadata; with ``--compress``, scaled by the compression ratio measured on the
  calibration patterns), and the temporary space the writer needs beside it (the NPZ writer
  spools ``diff3d`` and ``Y`` to a temporary file in the output's directory);
* **free disk** on the output's file system and whether the output fits;
* **peak memory**: an upper estimate of the run's arrays (:func:`model_peak_memory`, or
  :func:`ptyfast.cli.estimate_peak_memory` for the nongrid path) against the memory
  available;
* **time**, from a short calibration run. The set-up is done for real and timed: building the
  object and the probe, the positions and the intensity pass over every position (these also
  check everything the real run checks). Then ``K = min(M, 512)`` patterns of the same
  experiment are simulated in memory, after a warm-up of 16 (thread pool, FFT plans), and the
  simulation is estimated as ``M / K`` times their time. They pass through a ring of at most
  :data:`CALIBRATION_BYTES` (whole chunks), so large patterns are never all held at once.
  Writing is estimated the same way from encoding the patterns the ring holds at the end
  (all ``K`` unless they are large) in memory as the format does (the NPZ's amplitudes,
  CRC-32 and deflate, HDF5's shuffle and gzip, Zarr's zstd). The disk's own write speed is
  not measured (nothing is written): the report gives the rate at which the disk must take
  the data to keep up. A campaign plans (builds) every experiment and calibrates once per
  kind of experiment (pattern size, modes, readings dtype, detector stages, patches).

The command's exit status is 0 when the run fits the disk and the memory, 2 (with the reason
on stderr) when the real run would be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import _kernels

__all__ = [
    "CALIBRATION_PATTERNS",
    "Output",
    "Report",
    "calibrate",
    "encode_seconds",
    "model_peak_memory",
    "human",
]

#: Patterns simulated by the calibration (fewer when the run has fewer).
CALIBRATION_PATTERNS = 512
#: Warm-up patterns before the timed calibration.
WARMUP_PATTERNS = 16
#: Most bytes of calibration patterns held at once: the ``K`` patterns are simulated through
#: a ring of this size (whole chunks), so a dry run never holds ``K`` large patterns.
CALIBRATION_BYTES = 1 << 25
#: Bytes per pattern beyond the patterns themselves (positions, scan indexes), any format.
POSITION_BYTES = 64
#: Headers and small members per file, beyond the provenance (zip/npy headers, HDF5 and Zarr
#: metadata).
METADATA_BYTES = 64 << 10


def human(nbytes: float) -> str:
    """``1234567`` → ``1.2 MB`` (powers of 1000)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} EB"  # pragma: no cover


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms" if s >= 0.001 else "< 1 ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def disk_free(path: Path) -> tuple[int, Path] | None:
    """Free bytes on the file system that will hold ``path`` (its nearest existing parent)."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        return shutil.disk_usage(parent).free, parent
    except OSError:
        return None


# --------------------------------------------------------------------------- calibration


def ring_size(k: int, chunk: int, pattern_bytes: int) -> int:
    """Patterns the calibration holds: ``k`` when they fit :data:`CALIBRATION_BYTES`, else
    whole chunks of ``chunk`` patterns (at least one) within it."""
    fit = CALIBRATION_BYTES // max(1, pattern_bytes)
    if fit >= k:
        return k
    step = max(1, min(chunk, k))
    return min(k, max(step, fit // step * step))


def ring(run: Callable[[int, int, int], Any], size: int) -> Callable[[int, int], None]:
    """``run(start, stop)`` over a ring buffer of ``size`` patterns: calls
    ``run(start, stop, offset)`` for pieces that fit the ring from ``offset``."""

    def call(a: int, b: int) -> None:
        while a < b:
            o = a % size
            c = min(b, a + size - o)
            run(a, c, o)
            a = c

    return call


def calibrate(run: Callable[[int, int], Any], m: int, *, chunk: int) -> tuple[float, int]:
    """Time ``run(start, stop)`` over the first ``K = min(m, CALIBRATION_PATTERNS)``
    patterns in pieces of ``chunk`` (after a warm-up): ``(seconds per pattern, K)``."""
    k = min(m, CALIBRATION_PATTERNS)
    run(0, min(k, WARMUP_PATTERNS))
    t = time.perf_counter()
    for a in range(0, k, max(1, chunk)):
        run(a, min(k, a + chunk))
    return (time.perf_counter() - t) / k, k


def encode_seconds(arrays: list[np.ndarray], fmt: str, compress: bool) -> tuple[float, float]:
    """Time encoding ``arrays`` (one block of each per-pattern array) as format ``fmt``
    writes it, in memory: ``(seconds, compressed size / size)``.

    NPZ: CRC-32 (zip) and, compressed, raw deflate at :data:`ptyfast.io.npz.COMPRESS_LEVEL`;
    HDF5 (ptychodus, CXI): a copy, or byte shuffle and gzip at the writer's level; Zarr: a
    copy, or zstd at the writer's level (zlib level 1 stands in when no zstd codec is
    installed).
    """
    from .io import _h5, npz

    total = sum(a.nbytes for a in arrays)
    out = 0
    t = time.perf_counter()
    for a in arrays:
        raw = np.ascontiguousarray(a)
        buf = memoryview(raw).cast("B")
        if fmt == "npz":
            zlib.crc32(buf)
            if compress:
                c = zlib.compressobj(npz.COMPRESS_LEVEL, zlib.DEFLATED, -15)
                out += len(c.compress(buf)) + len(c.flush())
            else:
                out += len(bytes(buf))
        elif fmt in ("ptychodus", "cxi"):
            if compress:
                item = raw.dtype.itemsize
                shuffled = raw.view(np.uint8).reshape(-1, item).T.copy()
                out += len(zlib.compress(memoryview(shuffled).cast("B"), _h5.GZIP_LEVEL))
            else:
                out += len(bytes(buf))
        else:  # zarr
            if compress:
                out += len(_zstd(buf))
            else:
                out += len(bytes(buf))
    seconds = time.perf_counter() - t
    return seconds, (out / total if total else 1.0)


def _zstd(buf: memoryview) -> bytes:
    try:
        from numcodecs import Zstd

        from .io.zarr import ZSTD_LEVEL

        return bytes(Zstd(level=ZSTD_LEVEL).encode(buf))
    except ImportError:  # pragma: no cover - zarr's extra brings numcodecs
        return zlib.compress(buf, 1)


# --------------------------------------------------------------------------- the report


@dataclass
class Output:
    """One file a run writes: its per-pattern arrays ``(name, shape, dtype)``, the fixed
    bytes beside them, and the temporary bytes the writer needs next to it."""

    path: Path
    fmt: str
    arrays: list[tuple[str, tuple[int, ...], np.dtype]]
    fixed_bytes: int
    spool_bytes: int = 0
    ratio: float = 1.0  # compressed / raw, measured (1 uncompressed)

    @property
    def pattern_bytes(self) -> int:
        return sum(int(np.prod(s)) * np.dtype(d).itemsize for _, s, d in self.arrays)

    @property
    def nbytes(self) -> int:
        return int(self.pattern_bytes * self.ratio) + self.fixed_bytes


def disk_need(outputs: list[Output]) -> int:
    """Disk bytes a run writing ``outputs`` needs: the files, plus the largest writer's
    temporary spool (it lives only while its own file is written)."""
    spool = max((o.spool_bytes for o in outputs), default=0)
    return sum(o.nbytes for o in outputs) + spool


def writer_output(w: Any, header: Any) -> Output:
    """The :class:`Output` that ``--dry-run`` counts for writer ``w`` of ``header``
    (``ptyfast.io.writer``: its ``path`` and ``format``; an ``io.Header``)."""
    from .io._common import dumps, readings_are_photons

    return model_outputs(
        w.path,
        w.format,
        m=header.n_patterns,
        n=header.N,
        n_modes=header.n_modes,
        object_shape=header.object.shape,
        dtype=header.dtype,
        readings_are_photons=readings_are_photons(header.detector),
        patches=header.patches,
        provenance_bytes=len(dumps(header.provenance)),
    )


def refuse_disk(outputs: list[Output], *, compress: bool, what: str, advice: str) -> None:
    """Raise ``ValueError`` ("``what`` X, but only Y are free on Z; ``advice``") when
    ``outputs`` cannot fit the free disk beside the first, before anything is written: the
    rule of :meth:`Report.refusal`. With ``compress`` the compressed sizes are known only after
    the run, so only the fixed bytes and the spool are counted (a lower bound)."""
    if not outputs:
        return
    if compress:
        outputs = [replace(o, ratio=0.0) for o in outputs]
    need = disk_need(outputs)
    disk = disk_free(outputs[0].path)
    if disk is not None and need > disk[0]:
        size = f"at least {human(need)} (compressed)" if compress else human(need)
        raise ValueError(
            f"{what} {size}, but only {human(disk[0])} are free on {disk[1]}; {advice}"
        )


@dataclass
class Report:
    """Everything ``--dry-run`` prints (:meth:`text`)."""

    title: str
    outputs: list[Output]
    compress: bool
    peak_memory: int
    phases: list[tuple[str, float, str]] = field(default_factory=list)  # name, s, how
    notes: list[str] = field(default_factory=list)
    shown_outputs: int = 3

    @property
    def output_bytes(self) -> int:
        return sum(o.nbytes for o in self.outputs)

    @property
    def disk_need(self) -> int:
        return disk_need(self.outputs)

    @property
    def seconds(self) -> float:
        return sum(s for _, s, _ in self.phases)

    def refusal(self) -> str | None:
        """Why the real run would be refused (disk or memory), or None."""
        if not self.outputs:
            return None
        disk = disk_free(self.outputs[0].path)
        if disk is not None and self.disk_need > disk[0]:
            return (
                f"the output would take {human(self.disk_need)}, but only {human(disk[0])} "
                f"are free on {disk[1]}"
            )
        mem, source = _kernels.available_memory()
        if mem is not None and self.peak_memory > mem:
            return (
                f"the run needs about {human(self.peak_memory)} of memory, but only "
                f"{human(mem)} are available ({source})"
            )
        return None

    def text(self) -> str:
        lines = [f"ptyfast simulate --dry-run (nothing written): {self.title}"]
        for i, o in enumerate(self.outputs):
            if i == self.shown_outputs and len(self.outputs) > self.shown_outputs + 1:
                rest = self.outputs[i:]
                lines.append(
                    f"  ... and {len(rest)} more files ({human(sum(r.nbytes for r in rest))})"
                )
                break
            kind = o.fmt + (", compressed" if self.compress else "")
            lines.append(f"  output        {o.path} ({kind}): {human(o.nbytes)}")
            for name, shape, dtype in o.arrays:
                nb = int(np.prod(shape)) * np.dtype(dtype).itemsize
                dims = " × ".join(f"{d:,}" for d in shape)
                lines.append(
                    f"                  {name}: ({dims}) {np.dtype(dtype).name}, {human(nb)}"
                )
            if self.compress:
                lines.append(
                    f"                  compressed to {o.ratio:.0%} (measured on the "
                    "calibration patterns)"
                )
        if len(self.outputs) > 1:
            lines.append(f"  total         {len(self.outputs)} files, {human(self.output_bytes)}")
        disk = disk_free(self.outputs[0].path) if self.outputs else None
        spool = max((o.spool_bytes for o in self.outputs), default=0)
        need = human(self.disk_need) + (
            f" (with {human(spool)} of temporary spool beside it)" if spool else ""
        )
        if disk is None:
            lines.append(f"  disk          needs {need}; free space unknown")
        else:
            ok = "fits" if self.disk_need <= disk[0] else "does NOT fit"
            where = "here" if disk[1] == Path.cwd() else f"on {disk[1]}"
            lines.append(f"  disk          needs {need}; {human(disk[0])} free {where}: {ok}")
        mem = _kernels.available_memory()[0]
        avail = f"{human(mem)} available" if mem is not None else "available memory unknown"
        ok = "" if mem is None else (": fits" if self.peak_memory <= mem else ": does NOT fit")
        lines.append(f"  peak memory   about {human(self.peak_memory)} of arrays; {avail}{ok}")
        if self.phases:
            threads = _kernels.num_threads()
            lines.append(
                f"  time          about {_seconds(self.seconds)} on {threads} thread"
                f"{'s' if threads != 1 else ''}:"
            )
            for name, s, how in self.phases:
                lines.append(f"                  {name:<15}{_seconds(s):>9}  {how}")
            if self.seconds > 0 and self.output_bytes:
                rate = self.output_bytes / self.seconds
                lines.append(
                    f"                  (the disk must take {human(rate)}/s to keep up; its "
                    "speed is not measured)"
                )
        lines += [f"  note          {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the model's runs


def model_outputs(
    path: Path,
    fmt: str,
    *,
    m: int,
    n: int,
    n_modes: int,
    object_shape: tuple[int, int],
    dtype: np.dtype,
    readings_are_photons: bool,
    patches: bool,
    provenance_bytes: int = 0,
) -> Output:
    """The arrays :func:`ptyfast.io.writer` stores for ``m`` patterns (see each format's
    module) and its temporary spool."""
    d = np.dtype(dtype)
    shape = (m, n, n)
    photons = d if readings_are_photons else np.dtype(np.float32)
    arrays: list[tuple[str, tuple[int, ...], np.dtype]]
    spool = 0
    if fmt == "npz":
        arrays = [("readings", shape, d), ("diff3d", shape, np.dtype(np.float32))]
        if patches:
            arrays.append(("Y", shape, np.dtype(np.complex64)))
        spool = m * n * n * (4 + (8 if patches else 0))
    elif fmt in ("ptychodus", "cxi"):
        arrays = [("patterns" if fmt == "ptychodus" else "data", shape, photons)]
        if not readings_are_photons:
            arrays.append(("ptyfast/readings", shape, d))
        if patches:
            arrays.append(("ptyfast/patches", shape, np.dtype(np.complex64)))
    else:
        from .io.zarr import CHUNK_BYTES

        arrays = [("diffraction", shape, d)]
        if patches:
            arrays.append(("patches", shape, np.dtype(np.complex64)))
        # The last chunk is stored whole (zarr pads it): up to one chunk more per array
        # (the chunk length of io.zarr.chunk_rows).
        rows = max(1, min(m, CHUNK_BYTES // (n * n * (8 if patches else d.itemsize))))
    h, w = object_shape
    fixed = POSITION_BYTES * m + 8 * h * w + 8 * n_modes * n * n + 2 * n * n
    if fmt == "zarr":
        fixed += (-m % rows) * n * n * (d.itemsize + (8 if patches else 0))
    fixed += METADATA_BYTES + provenance_bytes
    return Output(path, fmt, arrays, fixed, spool)


def model_peak_memory(
    *,
    m: int,
    n: int,
    n_modes: int,
    object_shape: tuple[int, int],
    itemsize: int,
    chunk: int,
    patches: bool,
    fmt: str,
) -> int:
    """Upper estimate of a model run's arrays (bytes).

    Per pattern: nominal and true positions, relative and placed (64 bytes), and the
    intensity pass's energies (8). The object with its copy and its builder's temporaries
    (16 float64 images), the probe modes (and their builder's, 8 images). Per chunk: the
    readings (and patches) buffer and the writer's conversions (photons and amplitudes in
    float64: 24 bytes a pixel); Zarr regroups up to two of its chunks, HDF5 compresses one.
    """
    from .io import _h5

    h, w = object_shape
    per_pattern = 72 * m
    obj = 16 * 8 * h * w
    probe = 8 * 8 * max(n_modes, 1) * n * n
    step = min(chunk, m)
    per_chunk = step * n * n * (itemsize + (8 if patches else 0) + 24)
    writer = 0
    if fmt == "zarr":
        from .io.zarr import CHUNK_BYTES

        writer = 2 * CHUNK_BYTES
    elif fmt in ("ptychodus", "cxi"):
        writer = 2 * _h5.CHUNK_BYTES
    return per_pattern + obj + probe + per_chunk + writer


def calibrate_experiment(
    e: Any, seed: int, fmt: str, *, compress: bool, patches: bool, chunk: int
) -> tuple[float, float, float, int]:
    """Simulation and encoding seconds per pattern of an experiment, and the compression
    ratio, from ``K`` calibration patterns: ``(sim, enc, ratio, K)``."""
    from .io._common import amplitudes, format_photons

    m, n = e.n_patterns, e.N
    k = min(m, CALIBRATION_PATTERNS)
    dtype = np.dtype(e.detector.dtype)
    kb = ring_size(k, chunk, n * n * (dtype.itemsize + (8 if patches else 0)))
    buf = np.empty((kb, n, n), dtype)
    pbuf = np.empty((kb, n, n), np.complex64) if patches else None

    def run(a: int, b: int, o: int) -> None:
        _kernels.acquire(
            e.object,
            e.positions_true[a:b],
            e.probe,
            scale=e.intensity_scale,
            detector=e._detector_args,
            seed=seed,
            first_index=a,
            out=buf[o : o + b - a],
            out_patches=None if pbuf is None else pbuf[o : o + b - a],
        )

    sim, k = calibrate(ring(run, kb), m, chunk=chunk)
    t = time.perf_counter()
    blocks: list[np.ndarray] = [buf]
    if fmt == "npz":
        blocks.append(amplitudes(buf, e.detector, e.intensity_scale))
    elif fmt in ("ptychodus", "cxi"):
        photons = format_photons(buf, e.detector)
        blocks.append(np.asarray(photons, np.float32) if photons is not buf else buf)
    convert = time.perf_counter() - t
    if pbuf is not None:
        blocks.append(pbuf)
    enc, ratio = encode_seconds(blocks, fmt, compress)
    return sim, (convert + enc) / kb, ratio, k


# --------------------------------------------------------------------------- drivers


def print_report(report: Report) -> int:
    """Print ``report``; raise ``ValueError`` (exit status 2) when the run would be refused."""
    print(report.text(), flush=True)
    why = report.refusal()
    if why is not None:
        raise ValueError(f"the run would be refused: {why}")
    return 0


def plain_report(args: Any, output: Path, build: Callable[[Any], tuple[Any, Any]]) -> Report:
    """The dry run of PtychoPINN's nongrid path (``ptyfast simulate`` without model options).

    ``build(args)`` makes the object and the probe, as the run does.
    """
    from .cli import estimate_output_bytes, estimate_peak_memory
    from .intensity import simulation_scale
    from .nongrid_simulation import random_positions

    n = int(args.n_images)
    chunk = int(args.chunk_size)
    patches = bool(args.patches)

    def outputs(obj_shape: tuple[int, int], big_n: int) -> Output:
        arrays: list[tuple[str, tuple[int, ...], np.dtype]] = [
            ("diff3d", (n, big_n, big_n), np.dtype(np.float32))
        ]
        if patches:
            arrays.append(("Y", (n, big_n, big_n, 1), np.dtype(np.complex64)))
        total = estimate_output_bytes(n, big_n, obj_shape, store_patches=patches)
        out = Output(output, "npz", arrays, 0)
        out.fixed_bytes = total - out.pattern_bytes
        return out

    def report(obj_shape: tuple[int, int], big_n: int) -> Report:
        peak = estimate_peak_memory(n, big_n, obj_shape, chunk_size=chunk, store_patches=patches)
        title = (
            f"PtychoPINN nongrid simulation, {n:,} patterns of {big_n}×{big_n} from a "
            f"{obj_shape[0]}×{obj_shape[1]} {'--input' if args.input else args.object} object, "
            f"{_num(args.nphotons)} photons/pattern, seed {args.seed}"
        )
        return Report(title, [outputs(obj_shape, big_n)], False, peak)

    if not args.input:  # refused before anything is built, as the run would be
        r = report((args.object_size, args.object_size), int(args.N))
        if r.refusal() is not None:
            r.notes.append("no time estimate: the run would be refused before any work")
            return r
    phases = _phases(args)
    t = time.perf_counter()
    with phases("object", 1) as bar:
        obj, probe = build(args)
        bar.update(1)
    t_object = time.perf_counter() - t
    big_n = int(probe.shape[0])
    r = report(tuple(obj.shape), big_n)  # type: ignore[arg-type]
    if r.refusal() is not None:
        r.notes.append("no time estimate: the run would be refused before simulating")
        return r
    t = time.perf_counter()
    buffer = args.buffer if args.buffer is not None else float(big_n - big_n // 2)
    x, y, _ = random_positions(n, obj.shape[0], obj.shape[1], buffer, args.seed)
    positions = np.column_stack([x, y])
    with phases("intensity", n, "pattern") as bar:
        energies = _kernels.illuminated_energy(obj, positions, probe)
        bar.update(n)
    s = simulation_scale(energies, args.nphotons)
    t_int = time.perf_counter() - t
    k = min(n, CALIBRATION_PATTERNS)
    kb = ring_size(k, chunk, big_n * big_n * (4 + (8 if patches else 0)))
    amps = np.empty((kb, big_n, big_n), np.float32)

    def run(a: int, b: int, o: int) -> None:
        amps[o : o + b - a] = _kernels.simulate(
            obj,
            positions[a:b],
            probe,
            scale=s,
            poisson=not args.no_poisson,
            seed=args.seed,
            first_index=a,
            divide_by_scale=True,
            return_patches=False,
        )[0]

    with phases("calibration", 1) as bar:
        sim, k = calibrate(ring(run, kb), n, chunk=chunk)
        blocks = [amps]
        t_y = 0.0
        if patches:
            t = time.perf_counter()
            y_block = _kernels.extract_patches(obj, positions[:kb], big_n)
            t_y = (time.perf_counter() - t) / kb
            blocks.append(y_block)
        enc, _ = encode_seconds(blocks, "npz", False)
        bar.update(1)
    r.phases = [
        ("object", t_object, "measured (the object and probe built for real)"),
        ("intensity", t_int, f"measured (positions and the FFT-free pass over all {n:,})"),
        ("simulation", sim * n, _scaled(k, n)),
    ]
    if patches:
        r.phases.append(("patches Y", t_y * n, _scaled(k, n)))
    r.phases.append(
        ("writing", enc / kb * n, "encoding (CRC-32) of the calibration patterns, scaled")
    )
    return r


def _num(v: float) -> str:
    from .plotting import _num

    return _num(v)


def _scaled(k: int, m: int) -> str:
    return f"{k:,} calibration patterns × {m / k:,.4g}" if m != k else f"{k:,} patterns, measured"


def _phases(args: Any) -> Any:
    from ._progress import Phases

    p = getattr(args, "progress", None)
    import sys

    on = bool(p) if p is not None else (sys.stderr.isatty() and not getattr(args, "quiet", False))
    return Phases(on)


def model_report(
    jobs: Any,
    title: str,
    writer_args: dict[str, Any],
    chunk: int | None,
    progress: bool,
    *,
    n_jobs: int,
    notes: list[str] | None = None,
) -> Report:
    """The dry run of the model's path: ``jobs`` yields ``(path, plan_fn)`` per output file
    (``plan_fn()`` builds the :class:`~ptyfast.model.recipes.Planned` experiment, timed as the
    set-up). Calibrates once per kind of experiment (module docstring)."""
    from . import io
    from ._progress import Phases
    from .io import format_from_path
    from .io._common import need_geometry, readings_are_photons
    from .model.experiment import _chunk_size, _io_header

    phases = Phases(progress)
    compress = bool(writer_args.get("compress"))
    fmt_given = writer_args.get("format")
    outputs: list[Output] = []
    peak = 0
    setup = sim_total = enc_total = 0.0
    kinds: dict[tuple[Any, ...], tuple[float, float, float, int]] = {}
    details: list[str] = []
    with phases("plan+calibrate", n_jobs, "experiment") as bar:
        for path, plan_fn in jobs:
            t = time.perf_counter()
            plan = plan_fn()
            setup += time.perf_counter() - t
            e = plan.experiment
            det = e.detector
            details.append(
                f"{e.n_patterns:,} patterns of {e.N}×{e.N}, {e.n_modes} probe mode"
                f"{'s' if e.n_modes > 1 else ''}, detector {det.name} ({det.dtype}), "
                f"{_num(e.photons)} photons/pattern, noise seed {plan.seed}"
            )
            fmt = format_from_path(path, fmt_given)
            if fmt in ("ptychodus", "cxi") and e.geometry is None:  # as the writer refuses
                header = _io_header(e, plan.provenance(), plan.patches, io)
                need_geometry(header, "CXI" if fmt == "cxi" else fmt, Path(path))
            step = _chunk_size(e, chunk, plan.patches)
            key = (
                e.N,
                e.n_modes,
                str(det.dtype),
                det.psf_sigma_px > 0,
                det.read_noise > 0,
                det.dark > 0,
                plan.patches,
                fmt,
            )
            if key not in kinds:
                kinds[key] = calibrate_experiment(
                    e, plan.seed, fmt, compress=compress, patches=plan.patches, chunk=step
                )
            sim, enc, ratio, _ = kinds[key]
            sim_total += sim * e.n_patterns
            enc_total += enc * e.n_patterns
            out = model_outputs(
                Path(path),
                fmt,
                m=e.n_patterns,
                n=e.N,
                n_modes=e.n_modes,
                object_shape=e.object.shape,
                dtype=np.dtype(det.dtype),
                readings_are_photons=readings_are_photons(det),
                patches=plan.patches,
                provenance_bytes=len(json.dumps(plan.provenance())),
            )
            out.ratio = ratio if compress else 1.0
            outputs.append(out)
            peak = max(
                peak,
                model_peak_memory(
                    m=e.n_patterns,
                    n=e.N,
                    n_modes=e.n_modes,
                    object_shape=e.object.shape,
                    itemsize=np.dtype(det.dtype).itemsize,
                    chunk=step,
                    patches=plan.patches,
                    fmt=fmt,
                ),
            )
            bar.update(1)
    m_total = sum(o.arrays[0][1][0] for o in outputs)
    k_text = ", ".join(f"{k:,}" for *_, k in kinds.values())
    how = (
        f"{k_text} calibration patterns ({len(kinds)} kind{'s' if len(kinds) > 1 else ''} of "
        f"experiment), scaled to {m_total:,}"
    )
    if len(details) == 1:
        title = f"{title}: {details[0]}"
    r = Report(title, outputs, compress, peak, notes=list(notes or []))
    r.phases = [
        ("set-up", setup, "measured (object, probe, scan, intensity pass: built for real)"),
        ("simulation", sim_total, how),
        ("writing", enc_total, "encoding of the calibration patterns as the format does, scaled"),
    ]
    return r

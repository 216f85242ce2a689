"""``ptyfast`` command line: simulate a dataset to an NPZ file.

``ptyfast simulate`` (also ``python -m ptyfast simulate``) simulates a nongrid dataset on
built-in defaults (a lines object, the default probe, N = 64, 1e9 photons, random positions)
or from an NPZ holding ``objectGuess``/``probeGuess``, and writes a raw NPZ that
``RawData.from_file`` (ptyfast's and the reference's) reads. It streams: positions and the
intensity scale are computed first (cheap), then patterns are simulated and written chunk by
chunk, so memory stays bounded whatever the dataset size. The file appears atomically.
The result is bit-identical to ``nongrid_simulation.generate_simulated_data`` with the same
object, probe, buffer, seed and photon count, whatever the chunk size or thread count.

Every user error (bad arguments, unreadable ``--input``, an output that exists without
``--overwrite``, a dataset too big for the memory or the disk) is reported in one line on
stderr with exit status 2, before any simulation. ``Ctrl-C``, ``SIGTERM`` and ``SIGHUP`` stop
a run within a fraction of a second and leave nothing behind (exit status 128 + the signal).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__, _kernels, plotting
from ._atomic import _check_target, check_output_path
from ._dryrun import disk_free, human
from ._npz import NpzStreamWriter, metadata_record
from ._progress import Phases
from .intensity import simulation_scale
from .io import _commands as io_commands
from .model import _commands as model_commands
from .nongrid_simulation import load_probe_object, random_positions

logger = logging.getLogger("ptyfast")

_DEFAULTS = {
    "n_images": 10_000,
    "N": 64,
    "nphotons": 1e9,
    "object": "lines",
    "object_size": 256,
    "buffer": None,  # ceil(N/2): every patch lies inside the object
    "seed": 42,
    "chunk_size": 2048,
}


#: File name used when ``--output`` is a directory.
DEFAULT_OUTPUT_NAME = "ptyfast_simulation.npz"

#: Preview formats, by file extension.
PREVIEW_FORMATS = plotting.FORMATS
#: Pixels (patterns × N²) per piece of the intensity pass (its progress steps).
_PASS_PIXELS = 1 << 24


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one (not for flags and unset options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ptyfast", description="Fast ptychography dataset simulation.")
    p.add_argument("--version", action="version", version=f"ptyfast {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser(
        "simulate",
        help="simulate a dataset to a file (by default a nongrid dataset to a raw NPZ)",
        description="Simulate diffraction at random scan positions and write a raw NPZ "
        "(keys xcoords, ycoords, xcoords_start, ycoords_start, diff3d, probeGuess, "
        "objectGuess, scan_index, _metadata; Y with --patches), or, with the physical "
        "model's options below, an experiment or a campaign in the format of -o's extension. "
        "The file appears only when complete; an existing file is replaced only with "
        "--overwrite.",
        formatter_class=_HelpFormatter,
    )
    s.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT_NAME,
        help="output file: PtychoPINN's NPZ, or with the model's options .npz, "
        ".ptychodus.h5, .h5, .cxi or .zarr by its extension; a directory (existing, or a path "
        f"ending in '/') receives DIR/{DEFAULT_OUTPUT_NAME}",
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (and preview) file; without it they are refused",
    )
    s.add_argument(
        "-n",
        "--n-images",
        type=int,
        default=_DEFAULTS["n_images"],
        action=model_commands.Given,
        help="number of patterns",
    )
    s.add_argument(
        "--N",
        type=int,
        default=_DEFAULTS["N"],
        action=model_commands.Given,
        help="patch and detector side in pixels, >= 2 (sets the built-in probe; with --input "
        "the file's probe sets N)",
    )
    s.add_argument(
        "--nphotons",
        type=model_commands.real,
        default=_DEFAULTS["nphotons"],
        action=model_commands.Given,
        help="mean number of photons per pattern",
    )
    s.add_argument(
        "--object",
        choices=["lines", "grf", "points"],
        default=_DEFAULTS["object"],
        action=model_commands.Given,
        help="built-in object generator",
    )
    s.add_argument(
        "--object-size",
        type=int,
        default=_DEFAULTS["object_size"],
        action=model_commands.Given,
        help="side of the built-in object in pixels",
    )
    s.add_argument(
        "--input",
        help="NPZ with objectGuess and probeGuess (replaces --object, --object-size and --N)",
    )
    s.add_argument(
        "--buffer",
        type=model_commands.real,
        default=_DEFAULTS["buffer"],
        help="minimum distance of scan positions from the object's edges, in object pixels "
        "(default: ceil(N/2), so that every patch lies inside the object; clamped to "
        "min(H, W)/2 - 1, with a warning)",
    )
    s.add_argument(
        "--seed",
        type=int,
        default=_DEFAULTS["seed"],
        action=model_commands.Given,
        help="seed of the object, the positions and the Poisson noise",
    )
    s.add_argument("--no-poisson", action="store_true", help="write noise-free amplitudes")
    s.add_argument("--patches", action="store_true", help="also store the ground-truth patches Y")
    s.add_argument(
        "--chunk-size",
        type=int,
        default=_DEFAULTS["chunk_size"],
        help="patterns simulated and written per chunk (memory grows with it, not with -n)",
    )
    s.add_argument(
        "--preview",
        help="also write a preview image (probe, object and positions, patterns, patches); "
        "the format follows the extension: " + ", ".join(f".{f}" for f in PREVIEW_FORMATS),
    )
    g = s.add_mutually_exclusive_group()
    g.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar on stderr, with -q too (default: when stderr is a "
        "terminal and -q is not given)",
    )
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )
    s.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but errors: no summary, no warnings, and no progress bar unless "
        "--progress asks for one",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing: print the output's shapes and size, the free disk, the peak "
        "memory and the time estimated from a calibration run of a few hundred patterns",
    )
    model_commands.add_simulate_options(s)
    model_commands.add_subcommands(sub)
    io_commands.add_subcommands(sub)
    return p


def _object_and_probe(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.input:
        try:
            obj, probe = load_probe_object(args.input)
            return obj.astype(np.complex64), probe.astype(np.complex64)
        except (ValueError, TypeError) as exc:
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(model_commands.input_message(exc)) from None
        except MemoryError:
            raise
        except OSError as exc:
            raise ValueError(f"--input {args.input}: {exc.strerror or exc}") from exc
        except Exception as exc:  # a corrupt file: zip, npy or pickle errors of every kind
            raise ValueError(
                f"--input {args.input} is not a readable NPZ file ({type(exc).__name__}: {exc})"
            ) from exc
    from .datagen.objects import sim_object_image
    from .probe import get_default_probe

    obj = sim_object_image(args.object_size, data_source=args.object, seed=args.seed)
    probe = get_default_probe(args.N, fmt="np", scale=0.7).astype(np.complex64)
    return np.asarray(obj, dtype=np.complex64), probe


# --------------------------------------------------------------------------- resources


def estimate_output_bytes(
    n_images: int, N: int, object_shape: tuple[int, int], *, store_patches: bool = False
) -> int:
    """Size in bytes of the NPZ :func:`simulate_to_file` writes (members plus headers).

    ``diff3d`` (float32) and ``Y`` (complex64, with ``store_patches``) dominate; the four
    coordinate arrays and ``scan_index`` add 40 bytes per pattern.
    """
    per_pattern = 4 * N * N + 5 * 8 + (8 * N * N if store_patches else 0)
    fixed = 8 * object_shape[0] * object_shape[1] + 8 * N * N + (1 << 16)
    return n_images * per_pattern + fixed


def estimate_peak_memory(
    n_images: int,
    N: int,
    object_shape: tuple[int, int],
    *,
    chunk_size: int,
    store_patches: bool = False,
) -> int:
    """Rough upper bound of :func:`simulate_to_file`'s memory in bytes.

    Per pattern: positions and their copies, the intensity pass and ``scan_index`` (64 bytes).
    Per chunk: amplitudes, the first chunk's patches and, with ``store_patches``, ``Y``. The
    object: itself, a transposed copy and the generator's temporaries.
    """
    chunk = min(chunk_size, n_images)
    per_chunk = chunk * N * N * (4 + 8 + (8 if store_patches else 0))
    return 64 * n_images + 2 * per_chunk + 16 * 8 * object_shape[0] * object_shape[1]


def check_resources(
    output: Path,
    n_images: int,
    N: int,
    object_shape: tuple[int, int],
    *,
    chunk_size: int,
    store_patches: bool = False,
) -> None:
    """Refuse (``ValueError``) a dataset that cannot fit the free disk or available memory.

    Called before anything is simulated or allocated; the message gives both sizes.
    """
    need = estimate_output_bytes(n_images, N, object_shape, store_patches=store_patches)
    disk = disk_free(output)
    if disk is not None and need > disk[0]:
        raise ValueError(
            f"the output would take {human(need)} ({n_images} patterns of {N}x{N}), but only "
            f"{human(disk[0])} are free on {disk[1]}; reduce -n or --N, or write elsewhere"
        )
    peak = estimate_peak_memory(
        n_images, N, object_shape, chunk_size=chunk_size, store_patches=store_patches
    )
    available, source = _kernels.available_memory()
    if available is not None and peak > available:
        raise ValueError(
            f"simulating {n_images} patterns of {N}x{N} from a {object_shape[0]}x"
            f"{object_shape[1]} object needs about {human(peak)} of memory, but only "
            f"{human(available)} are available ({source}); reduce -n, --N, "
            "--object-size or --chunk-size"
        )


def _warn_geometry(
    obj_shape: tuple[int, int], N: int, buffer: float, used: float, x: np.ndarray, y: np.ndarray
) -> None:
    """One warning line each: object smaller than the probe, buffer clamped, patches outside."""
    h, w = obj_shape
    if h < N or w < N:
        logger.warning("the %dx%d object is smaller than the %dx%d probe", h, w, N, N)
    if used < buffer:
        logger.warning(
            "buffer %g clamped to %g, the most a %dx%d object allows (min(H, W)/2 - 1)",
            buffer,
            used,
            h,
            w,
        )
    lo, hi = N // 2, N - 1 - N // 2  # patch pixels left/above and right/below the position
    outside = (x - lo < 0) | (x + hi > w - 1) | (y - lo < 0) | (y + hi > h - 1)
    count = int(np.count_nonzero(outside))
    if count:
        inside = N - N // 2  # the buffer that keeps every patch inside
        hint = (
            f"a buffer of {inside} keeps them inside"
            if inside <= min(h, w) / 2 - 1
            else "the object is too small to hold them"
        )
        logger.warning(
            "%d of %d patches reach outside the %dx%d object (zero there); %s",
            count,
            len(x),
            h,
            w,
            hint,
        )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def simulate_to_file(
    output: str | os.PathLike[str],
    objectGuess: Any,
    probeGuess: Any,
    *,
    n_images: int,
    nphotons: float = 1e9,
    buffer: float | None = None,
    seed: int = 42,
    poisson: bool = True,
    store_patches: bool = False,
    chunk_size: int = 2048,
    progress: bool = False,
    keep_preview: int = 3,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Stream a simulated nongrid dataset to ``output`` (atomic raw NPZ).

    Equivalent to ``generate_simulated_data`` with the same arguments, written chunk by chunk.
    Everything is checked before any simulation: the arguments, the output path (a directory,
    or an existing file without ``overwrite``, is refused) and the resources (the file must fit
    the free disk, the run the available memory: :func:`check_resources`). Warnings (logging)
    flag an object smaller than the probe, a clamped ``buffer`` and patches reaching outside
    the object.

    Parameters
    ----------
    output : str or os.PathLike
        The NPZ file to create.
    objectGuess, probeGuess : array_like
        Complex object ``(H, W)`` and probe ``(N, N)``.
    n_images : int
        Number of patterns, ``>= 1``.
    nphotons : float
        Mean photons per pattern.
    buffer : float, optional
        Minimum distance of positions from the object's edges in object pixels; ``None``:
        ``ceil(N/2)``, so that every patch lies inside the object.
    seed : int
        Seed of the positions and the noise.
    poisson : bool
        Poisson noise; ``False`` writes noise-free amplitudes.
    store_patches : bool
        Also write the ground-truth patches ``Y``.
    chunk_size : int
        Patterns per chunk (memory grows with it, not with ``n_images``).
    progress : bool
        Show a progress bar.
    keep_preview : int
        Patterns (and patches) kept in the summary for a preview.
    metadata : dict, optional
        Extra entries for ``_metadata``.
    overwrite : bool
        Replace an existing ``output``.

    Returns
    -------
    dict
        Positions, the intensity scale, the first ``keep_preview`` patterns and patches,
        timings.

    Raises
    ------
    TypeError
        ``n_images`` or ``chunk_size`` not an integer.
    ValueError
        A bad argument or output path, or a dataset too big for the disk or the memory.
    """
    n = _check_int("n_images", n_images, 1)
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    if isinstance(nphotons, bool) or not isinstance(nphotons, int | float | np.number):
        raise TypeError(f"nphotons must be a number, got {type(nphotons).__name__}")
    if not math.isfinite(nphotons) or nphotons <= 0:
        raise ValueError(f"nphotons must be a positive finite number, got {nphotons}")
    obj = _kernels.as_complex_image("objectGuess", objectGuess)
    probe = _kernels.as_complex_image("probeGuess", probeGuess)
    if probe.shape[0] != probe.shape[1] or probe.shape[0] < 2:
        raise ValueError(f"probeGuess must be square (N, N) with N >= 2, got {probe.shape}")
    N = probe.shape[0]
    if buffer is None:
        buffer = float(N - N // 2)
    output = Path(output)
    _check_target(output, overwrite)
    check_resources(output, n, N, obj.shape, chunk_size=chunk_size, store_patches=store_patches)
    t0 = time.perf_counter()
    phases = Phases(progress)
    x, y, buf = random_positions(n, obj.shape[0], obj.shape[1], buffer, seed)
    _warn_geometry(obj.shape, N, buffer, buf, x, y)
    positions = np.column_stack([x, y])
    # The object and the probe were checked above: the passes below call the kernels'
    # checked paths (as RawData.from_simulation does), so the object's checks (finiteness,
    # max|object|: ~0.1 s for 4096²) run once, not once per piece.
    max_obj = _kernels._max_abs(obj)
    # raw_data.intensity_scale_of in pieces: each pattern's energy is computed alone, and the
    # mean is one reduction over all of them, so s does not change a bit.
    energies = np.empty(n, np.float64)
    step = max(1, _PASS_PIXELS // (N * N))
    with phases("intensity", n, "pattern") as bar:
        for a in range(0, n, step):
            b = min(n, a + step)
            energies[a:b] = _kernels._illuminated_energy_checked(
                obj, positions[a:b], probe, max_obj
            )
            bar.update(b - a)
    s = simulation_scale(energies, nphotons)
    del energies
    _kernels.check_field_range(
        float(s),
        max_obj,
        float(np.sum(np.abs(probe))),
        name="--nphotons",
        value=nphotons,
        limit_of="photons",
    )
    meta = {
        "generator": f"ptyfast {__version__}",
        "nphotons": float(nphotons),
        "intensity_scale": float(s),
        "seed": int(seed),
        "buffer": float(buf),
        "poisson": bool(poisson),
        "N": N,
        **(metadata or {}),
    }
    preview_d: list[np.ndarray] = []
    preview_y: list[np.ndarray] = []
    w = NpzStreamWriter(output, overwrite=overwrite)
    w.__enter__()
    try:
        w.write("xcoords", x)
        w.write("ycoords", y)
        w.write("xcoords_start", x)
        w.write("ycoords_start", y)
        w.write("probeGuess", probe)
        w.write("objectGuess", obj)
        w.write("scan_index", np.zeros(n, dtype=np.int64))
        w.write_metadata(metadata_record(meta))
        # A zip archive takes one member at a time: diff3d first, then (optionally) the
        # patches in a second, FFT-free pass.
        with (
            w.stream("diff3d", (n, N, N), np.float32) as ds,
            phases("simulate+write", n, "pattern") as bar,
        ):
            # One chunk buffer for every chunk: its pages are touched once, and written out
            # before the next chunk reuses it.
            chunk_out = np.empty((min(chunk_size, n), N, N), np.float32)
            scale32 = np.float32(_kernels._positive_float("scale", s))
            noise_seed = _kernels.resolve_seed(seed) if poisson else None
            for start in range(0, n, chunk_size):
                stop = min(n, start + chunk_size)
                amps, patches, _ = _kernels._simulate_into(
                    obj,
                    positions[start:stop],
                    probe,
                    scale32,
                    noise_seed,
                    start,
                    True,
                    len(preview_y) < keep_preview,
                    chunk_out[: stop - start],
                    None,
                    None,
                )
                ds.append(amps)
                take = keep_preview - len(preview_d)
                if take > 0:
                    preview_d.extend(a.copy() for a in amps[:take])
                    if patches is not None:
                        preview_y.extend(patches[:take])
                bar.update(stop - start)
        if store_patches:
            with (
                w.stream("Y", (n, N, N, 1), np.complex64) as ys,
                phases("patches", n, "pattern") as bar,
            ):
                for start in range(0, n, chunk_size):
                    stop = min(n, start + chunk_size)
                    ys.append(_kernels.extract_patches(obj, positions[start:stop], N)[..., None])
                    bar.update(stop - start)
    except BaseException:
        w.__exit__(*sys.exc_info())
        raise
    # Closing is part of writing: the archive's directory, fsync, the atomic link.
    with phases("finish", 1) as bar:
        w.__exit__(None, None, None)
        bar.update(1)
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
        "seed": int(seed),
        "nphotons": float(nphotons),
        "poisson": bool(poisson),
        "object": (metadata or {}).get("object"),
    }


def preview_data(
    obj: np.ndarray, probe: np.ndarray, summary: dict[str, Any]
) -> plotting.PreviewData:
    """What the preview of a :func:`simulate_to_file` run shows (:mod:`ptyfast.plotting`):
    the counts ``(s·diff3d)²`` of the patterns kept in ``summary``, pattern 0 as stored."""
    s = float(summary["intensity_scale"])
    pats = np.asarray(summary["patterns"], np.float64)
    n = int(summary["N"])
    xy = np.column_stack([summary["xcoords"], summary["ycoords"]])
    obj_name = str(summary.get("object") or "array")
    return plotting.PreviewData(
        object=obj,
        probe=probe,
        positions_nominal=xy,
        positions_true=xy,
        photons_patterns=(s * pats) ** 2,
        readings=np.asarray(summary["patterns"][0]),
        readings_title="pattern 0 as stored: diff3d = √counts / s",
        readings_unit="diff3d (amplitude, float32)",
        pixel_map=np.zeros((n, n), np.uint8),
        intensity_scale=s,
        photons=float(summary.get("nphotons", float("nan"))),
        seed=summary.get("seed"),
        name="PtychoPINN nongrid simulation",
        detector="ideal: Poisson counts" if summary.get("poisson", True) else "noise-free",
        object_name=obj_name,
    )


def write_preview(
    path: str | os.PathLike[str],
    obj: np.ndarray,
    probe: np.ndarray,
    summary: dict[str, Any],
    *,
    overwrite: bool = True,
) -> None:
    """The preview of a :func:`simulate_to_file` run (``summary``: what it returned) as PNG,
    PDF or SVG by extension: :func:`ptyfast.plotting.preview` of :func:`preview_data`."""
    plotting.preview(preview_data(obj, probe, summary), path, overwrite=overwrite)


# --------------------------------------------------------------------------- command line


def _other_format(path: Path) -> str | None:
    """The format a path's extension names when it is not NPZ (``.zarr``, ``.h5``, ``.cxi``):
    a plain simulation would write an NPZ under that name."""
    from .io._common import EXTENSIONS

    name = path.name.lower()
    fmt = next((f for suffix, f in EXTENSIONS if name.endswith(suffix)), None)
    return fmt if fmt not in (None, "npz") else None


def _resolve_output(output: str) -> Path:
    """``-o DIR/`` (a path ending in a separator, or an existing directory that is not a
    ``.zarr`` store, which is a target of its own) → the default name inside it."""
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    path = Path(output)
    if output.endswith(seps) or (path.is_dir() and not path.name.lower().endswith(".zarr")):
        return path / DEFAULT_OUTPUT_NAME
    return path


def _check_arguments(args: argparse.Namespace) -> None:
    """Every argument, in the command line's words, before any work."""

    def at_least(option: str, value: int, minimum: int) -> None:
        if value < minimum:
            raise ValueError(f"{option} must be an integer >= {minimum}, got {value}")

    at_least("-n/--n-images", args.n_images, 1)
    at_least("--chunk-size", args.chunk_size, 1)
    if not args.input:
        at_least("--N", args.N, 2)
        at_least("--object-size", args.object_size, 1)
    if not math.isfinite(args.nphotons) or args.nphotons <= 0:
        raise ValueError(f"--nphotons must be a positive finite number, got {args.nphotons}")
    if args.buffer is not None and (not math.isfinite(args.buffer) or args.buffer < 0):
        raise ValueError(f"--buffer must be a finite number >= 0 (pixels), got {args.buffer}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")


def _require_matplotlib() -> None:
    """``--preview`` needs matplotlib, an optional extra: say so before simulating."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(
            "--preview needs matplotlib, which is not installed: pip install 'ptyfast[plot]'"
        ) from None


def _simulate(args: argparse.Namespace) -> int:
    _check_arguments(args)
    if args.preview:
        _require_matplotlib()
    if args.input and Path(args.input).resolve() == _resolve_output(args.output).resolve():
        # With --overwrite the run replaced the object and probe it was made from (and a
        # model run's provenance, which records --input by hash, could not be replayed).
        raise ValueError(f"--input and -o name the same file {args.input!r}: write elsewhere")
    if model_commands.uses_model(args):
        return model_commands.simulate(args)
    output = _resolve_output(args.output)
    other = _other_format(output)
    if other:
        raise ValueError(
            f"-o names a {other} file ({args.output!r}), but this form of simulate writes "
            "PtychoPINN's NPZ: use a .npz name, or a physical-model option such as "
            "--detector ideal or --recipe (that form writes .zarr, .h5 and .cxi too)"
        )
    _check_target(output, args.overwrite)
    if args.preview:
        plotting.preview_format(args.preview)
        # its directory too: a preview under a file failed only after the dataset was written
        check_output_path(Path(args.preview), "--preview")
        if Path(args.preview).absolute() == output.absolute():
            raise ValueError(f"--preview and --output name the same file {args.preview!r}")
        _check_target(Path(args.preview), args.overwrite)
    if args.dry_run:
        from . import _dryrun

        return _dryrun.print_report(_dryrun.plain_report(args, output, _object_and_probe))
    if not args.input:  # the object and probe to be built must fit too
        object_shape = (args.object_size, args.object_size)
        check_resources(
            output,
            args.n_images,
            args.N,
            object_shape,
            chunk_size=args.chunk_size,
            store_patches=args.patches,
        )
    progress = (
        args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    )
    phases = Phases(progress)
    with phases("object", 1) as bar:
        obj, probe = _object_and_probe(args)
        bar.update(1)
    summary = simulate_to_file(
        output,
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
        overwrite=args.overwrite,
    )
    if args.preview:
        with phases("preview", 1) as bar:
            write_preview(args.preview, obj, probe, summary, overwrite=args.overwrite)
            bar.update(1)
    if not args.quiet:
        rate = summary["n_images"] / max(summary["seconds"], 1e-9)
        print(
            f"wrote {output}: {summary['n_images']} patterns of "
            f"{summary['N']}x{summary['N']}, "
            f"intensity scale {summary['intensity_scale']:.6g}, {summary['seconds']:.2f} s "
            f"({rate:,.0f} patterns/s, {_kernels.num_threads()} threads)"
        )
        if args.preview:
            print(f"wrote {args.preview}")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`_Terminated` (main thread only;
    elsewhere signals cannot be handled and are left alone). The old handlers come back after.
    """

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated(signum)

    previous: dict[int, Any] = {}
    try:
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    previous[sig] = signal.signal(sig, handler)
                except ValueError:  # not the main thread
                    break
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _refuse_empty(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An empty string given to any option (``-o ''``, ``--input ''``, ``--scheduler ''``)
    is an error naming the option: each would otherwise fall back silently to its default."""
    names: dict[str, str] = {}
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                # only the command given: another command's option of the same dest would be
                # named ('convert IN " "' was "--output must not be empty", simulate's option)
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
                todo.extend([chosen] if chosen is not None else [])
            elif action.dest not in names or action.option_strings:
                opts = action.option_strings
                names[action.dest] = max(opts, key=len) if opts else action.dest.upper()
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            raise ValueError(f"{names.get(dest, dest)} must not be empty, got {value!r}")


def _refuse_stdout(args: argparse.Namespace) -> None:
    """An output of ``-`` wrote a file named ``-``: ``recipe`` prints to standard output when
    ``-o`` is not given, and a dataset (``simulate``, ``convert``) is a file or a store, never
    standard output. ``./-`` names such a file."""
    if getattr(args, "output", None) != "-":
        return
    if args.command == "recipe":
        raise ValueError(
            "--output '-': the recipe goes to standard output when -o is not given; omit -o "
            "(or write -o ./- for a file named '-')"
        )
    if args.command in ("simulate", "convert"):
        name = "--output" if args.command == "simulate" else "OUTPUT"
        raise ValueError(
            f"{name} '-': a dataset is written to a file, not to standard output; write ./- "
            f"for a file named '-'"
        )


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The subparser of the command given (``parser`` itself when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(getattr(args, action.dest, None) or "", parser)
    return parser  # pragma: no cover - the parser always has its commands


#: What argparse itself takes for a negative number (a value, not an option).
_ARGPARSE_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _attach_negative_numbers(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--nphotons -inf`` → ``--nphotons=-inf`` (and ``-n-1e3``), for the options that take a
    number (``type`` int or :func:`~ptyfast.model._commands.real`) or a pair of numbers
    (``--drift-px -1,2``).

    argparse takes a separate value that starts with ``-`` for an option only when it looks
    like a negative integer or decimal (``-5``, ``-.5``): ``-inf``, ``-nan`` or ``-1e3`` was
    "expected one argument", naming neither the value nor why. Attached, the value reaches the
    option's own checks, which name both. Other values starting with ``-`` are left alone
    (``-o -q`` must not write a file named ``-q``)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    at = next((i for i, a in enumerate(argv) if a in sub.choices), None)
    if at is None:
        return argv
    numeric = {
        opt
        for action in sub.choices[argv[at]]._actions
        if (action.type in (int, model_commands.real) or action.metavar == "VX,VY")
        and action.nargs is None
        for opt in action.option_strings
    }
    out = argv[: at + 1]
    i = at + 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return out + argv[i:]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if a in numeric and value.startswith("-") and not _ARGPARSE_NEGATIVE.match(value):
            try:
                [float(v) for v in value.split(",")]  # a number, or a pair (--drift-px)
            except ValueError:
                pass
            else:
                out.append(f"{a}={value}" if a.startswith("--") else a + value)
                i += 2
                continue
        out.append(a)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptyfast`` console script.

    Returns the exit status: 0 on success, 2 for any user error (one line on stderr), 128 + the
    signal number when interrupted (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
    """
    parser = _parser()
    argv = _attach_negative_numbers(parser, list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own usage error: 'ptyfast info F -q' pointed at 'ptyfast --help'
        sub = _command_parser(parser, args)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    level = logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        _refuse_empty(parser, args)
        _refuse_stdout(args)
        with _terminate_like_interrupt():
            if args.command == "simulate":
                return _simulate(args)
            if getattr(args, "handler", None) is not None:  # recipe, info, convert
                return int(args.handler(args))
    except (ValueError, TypeError, OSError) as exc:
        print(f"ptyfast: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"ptyfast: error: out of memory ({exc or 'no details'})", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Terminated) else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"ptyfast: interrupted ({name}); no partial file left behind", file=sys.stderr)
        return 128 + int(signum)
    return 1  # pragma: no cover - argparse enforces the command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

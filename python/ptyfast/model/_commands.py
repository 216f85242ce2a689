"""The physical model on the command line: ``ptyfast simulate`` options and ``ptyfast recipe``.

``cli.py`` wires this module in four places (see :func:`add_simulate_options`,
:func:`add_subcommands`, :func:`uses_model` and :func:`simulate`):

* ``ptyfast simulate --recipe recipe.toml -o data.npz`` runs an experiment recipe,
  ``... -o DIR/`` a campaign (one file per experiment, ``DIR/<name>-00000.npz`` ...);
* ``ptyfast simulate --probe fresnel_zone_plate --energy-eV 8000 ... --scan fermat_spiral
  --jitter-px 0.3 --detector eiger -o data.zarr`` builds the same kind of recipe from options
  (any model option selects this path; without one, ``simulate`` is PtychoPINN's nongrid
  simulation, unchanged);
* ``ptyfast recipe --example`` prints the commented template; ``ptyfast recipe --from FILE``
  writes a dataset's provenance back as a recipe (``--campaign``: its whole campaign).

Everything streams (:func:`ptyfast.model.experiment.simulate_to`: one chunk in memory, the
file appears atomically); every user error raises ``ValueError`` before any work, which the
CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_simulate_options", "add_subcommands", "uses_model", "simulate", "recipe"]

_PROBES = ("disk", "gaussian", "super_gaussian", "fresnel_zone_plate", "zernike")
_SCANS = ("raster", "hexagonal", "fermat_spiral", "concentric", "lissajous", "random_uniform")
_DETECTORS = ("ideal", "eiger", "pilatus", "integrating")
_FORMAT_EXT = {"npz": ".npz", "zarr": ".zarr", "cxi": ".cxi", "ptychodus": ".ptychodus.h5"}


def real(text: str) -> float:
    """argparse ``type`` of the options that take a real number: ``float``, except that text
    beyond the float range (``1e400``) is an error naming it, not a silent ``inf`` that the
    checks then reported as "got inf" (``inf`` and ``nan`` spelled out stay floats, for those
    checks to refuse by name)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if math.isinf(value) and "inf" not in text.lower():
        raise argparse.ArgumentTypeError(
            f"{text!r} is beyond the float range (magnitudes up to about 1.8e308)"
        )
    return value


#: Options whose presence selects the model path (dest names).
class Given(argparse.Action):
    """Store an option's value and remember that the user gave it (``args.given_options``).

    Options with a default cannot tell a given value from the default otherwise; a recipe
    takes the whole experiment from its file and refuses options it would ignore.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, "given_options", ()))
        given.add(self.option_strings[-1])
        namespace.given_options = sorted(given)


_MODEL_DESTS = (
    "recipe",
    "probe",
    "probe_param",
    "modes",
    "defocus_m",
    "scan",
    "scan_param",
    "step_px",
    "jitter_px",
    "drift_px",
    "energy_eV",
    "distance_m",
    "detector_pixel_m",
    "detector",
    "detector_param",
    "object_param",
)


def add_simulate_options(parser: argparse.ArgumentParser) -> None:
    """Add the model's options to the ``simulate`` subparser (and ``dead_leaves`` to its
    ``--object`` choices)."""
    for action in parser._actions:
        if action.dest == "object" and action.choices is not None:
            if "dead_leaves" not in action.choices:
                action.choices = [*action.choices, "dead_leaves"]
    g = parser.add_argument_group(
        "physical model",
        "Any of these simulates a ptyfast.Experiment (probe, scan, detector, geometry) instead "
        "of PtychoPINN's nongrid simulation, and writes the format of -o's extension "
        "(.npz, .ptychodus.h5, .cxi, .zarr). -n, --N, --nphotons, --object, --object-size, "
        "--seed (the noise seed, and the master of every seed not given), --patches, "
        "--no-poisson and --input keep their meaning.",
    )
    g.add_argument(
        "--recipe",
        metavar="FILE",
        help="a TOML recipe (ptyfast recipe --example): an experiment, or a campaign written "
        "to -o DIR/ one file per experiment; replaces the other model options",
    )
    g.add_argument(
        "--probe", choices=_PROBES, help="probe builder (default: disk, PtychoPINN's probe)"
    )
    g.add_argument(
        "--probe-param",
        action="append",
        metavar="KEY=VALUE",
        help="a probe builder parameter (repeatable), e.g. sigma_px=6 or diameter_m=60e-6",
    )
    g.add_argument(
        "--modes", type=int, metavar="P", help="incoherent probe modes, >= 1 (default: 1)"
    )
    g.add_argument(
        "--mode-decay",
        type=real,
        default=0.5,
        action=Given,
        help="power ratio of successive modes (with --modes > 1)",
    )
    g.add_argument(
        "--defocus-m",
        type=real,
        help="probe defocus in metres, + downstream (zone plate: its defocus_m; others: "
        "propagated; needs the geometry options; default: 0, in focus)",
    )
    g.add_argument(
        "--scan",
        choices=_SCANS,
        help="scan builder (default: random_uniform, -n positions over the object less "
        "--buffer, by default half the probe's N, on each side: every patch inside)",
    )
    g.add_argument(
        "--scan-param",
        action="append",
        metavar="KEY=VALUE",
        help="a scan builder parameter (repeatable), e.g. rows=20 (n defaults to -n)",
    )
    g.add_argument(
        "--step-px", type=real, help="scan step in object pixels (default: the builder's)"
    )
    g.add_argument(
        "--jitter-px",
        type=real,
        help="Gaussian position error, object pixels rms per coordinate (default: 0); the "
        "default random scan reaches the object's edge: leave room for it with --buffer",
    )
    g.add_argument(
        "--drift-px",
        metavar="VX,VY",
        help="linear drift per position, object pixels (default: 0,0)",
    )
    g.add_argument(
        "--energy-eV",
        type=real,
        dest="energy_eV",
        help="photon energy in eV (the three geometry options go together; without them, pixels)",
    )
    g.add_argument("--distance-m", type=real, help="sample-detector distance in metres")
    g.add_argument("--detector-pixel-m", type=real, help="detector pixel pitch in metres")
    g.add_argument(
        "--detector", choices=_DETECTORS, help="detector preset (default: ideal, float32 counts)"
    )
    g.add_argument(
        "--detector-param",
        action="append",
        metavar="KEY=VALUE",
        help="a ptyfast.Detector parameter (repeatable), e.g. qe=0.8, beamstop_radius_px=3",
    )
    g.add_argument(
        "--object-param",
        action="append",
        metavar="KEY=VALUE",
        help="an object family parameter (repeatable), e.g. alpha=2.5, phase=[0, 1]",
    )
    d = parser.add_argument_group(
        "cluster (Dask)",
        "Simulate the model's dataset on a dask.distributed cluster straight into a Zarr store "
        "(-o *.zarr, or a campaign's -o DIR/): shards of patterns are tasks that write their "
        "chunks themselves; the result equals the single-machine one bit for bit, and "
        "re-running the same command after an interruption completes only the missing "
        "shards (pip install 'ptyfast[dask]').",
    )
    w = d.add_mutually_exclusive_group()
    w.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="a local Dask cluster of N worker processes (default: no cluster, this process)",
    )
    w.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask cluster's scheduler (default: no cluster, this process)",
    )
    d.add_argument(
        "--shard-size",
        type=int,
        metavar="PATTERNS",
        help="patterns per task, rounded up to whole Zarr chunks (default about 64 MiB)",
    )


def uses_model(args: argparse.Namespace) -> bool:
    """Whether ``simulate``'s arguments select the model path."""
    if getattr(args, "object", None) == "dead_leaves":
        return True
    if getattr(args, "workers", None) is not None or getattr(args, "scheduler", None):
        return True  # the cluster runs the model's simulation
    if "--mode-decay" in getattr(args, "given_options", ()):
        return True  # a model option (refused there without --modes > 1)
    return any(getattr(args, d, None) not in (None, []) for d in _MODEL_DESTS)


def add_subcommands(subparsers: Any) -> None:
    """Add ``ptyfast recipe`` (sets ``handler``)."""
    r = subparsers.add_parser(
        "recipe",
        help="print the recipe template, or write a dataset's provenance as a recipe",
        description="--example prints a commented TOML recipe (a campaign; without its "
        "[campaign] section and distributions, one experiment). --from FILE writes the "
        "provenance of a dataset file (any format ptyfast writes) as a recipe that "
        "ptyfast simulate --recipe regenerates bit for bit: a dataset of ptyfast's model "
        "(ptyfast.simulate, or ptyfast simulate with model options or a recipe), not one of "
        "the PtychoPINN-compatible simulation.",
    )
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--example", action="store_true", help="the commented template")
    what.add_argument("--from", dest="from_file", metavar="FILE", help="a dataset file")
    r.add_argument(
        "--campaign",
        action="store_true",
        help="with --from: the whole campaign the dataset's experiment was drawn from",
    )
    r.add_argument(
        "-o",
        "--output",
        help="write to this file (default: standard output; '-' is refused, as it would "
        "name the default: omit -o, or write ./- for a file named '-')",
    )
    r.add_argument("--overwrite", action="store_true", help="replace an existing output")
    r.set_defaults(handler=recipe)


# --------------------------------------------------------------------------- option parsing


def _value(text: str) -> Any:
    """A TOML value (number, bool, array, inline table, quoted string), else the text."""
    from .recipes import RecipeError, loads

    try:
        return loads(f"v = {text}")["v"]
    except RecipeError:
        return text


def _params(option: str, items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{option} must be KEY=VALUE, got {item!r}")
        if key in out:  # the last one silently won
            raise ValueError(f"{option} gives {key} twice, got {item!r} after {out[key]!r}")
        out[key] = _value(text.strip())
    return out


def _refuse_both(option: str, params: dict[str, Any], key: str, other: str, given: bool) -> None:
    """``--X-param KEY=...`` and the option ``other`` that sets the same KEY, both given:
    one of them was silently ignored (``-n 30 --scan-param n=50`` simulated 50 patterns)."""
    if given and key in params:
        raise ValueError(
            f"{option} {key}={params[key]!r} and {other} set the same parameter: give one"
        )


def _finite(option: str, v: float | None, *, positive: bool = False) -> None:
    if v is None:
        return
    if not math.isfinite(v) or (positive and v <= 0):
        want = "a positive finite number" if positive else "finite"
        raise ValueError(f"{option} must be {want}, got {v}")


def _doc_from_options(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment recipe the options describe (recipes module docstring)."""
    for option, v in (("--nphotons", args.nphotons), ("--defocus-m", args.defocus_m)):
        _finite(option, v, positive=option == "--nphotons")
    for option, v in (("--step-px", args.step_px), ("--mode-decay", args.mode_decay)):
        _finite(option, v, positive=True)
    _finite("--jitter-px", args.jitter_px)
    if args.n_images < 1:
        raise ValueError(f"-n/--n-images must be an integer >= 1, got {args.n_images}")
    doc: dict[str, Any] = {
        "experiment": {
            "photons": args.nphotons,
            "seed": args.seed,
            "patches": bool(args.patches),
        }
    }
    geo = (args.energy_eV, args.distance_m, args.detector_pixel_m)
    if any(v is not None for v in geo):
        if any(v is None for v in geo):
            raise ValueError(
                "--energy-eV, --distance-m and --detector-pixel-m go together (a geometry), got "
                "only some of them"
            )
        n = args.N
        doc["geometry"] = {
            "energy_eV": args.energy_eV,
            "distance_m": args.distance_m,
            "detector_pixel_m": args.detector_pixel_m,
            "N": n,
        }
    # Object and probe: built-in, or the arrays of --input (recorded by hash, given again).
    if args.input:
        if args.object_param:
            raise ValueError("--object-param needs a built-in object, not --input")
        doc["object"] = {"array": "input"}
    else:
        obj = {"family": args.object, "shape": args.object_size}
        doc["object"] = {**obj, **_params("--object-param", args.object_param)}
    if args.input and args.probe is None:
        if args.probe_param or args.defocus_m is not None:
            raise ValueError("--probe-param and --defocus-m need --probe (not --input's probe)")
        doc["probe"] = {"array": "input"}
    else:
        builder = args.probe or "disk"
        probe: dict[str, Any] = {"builder": builder, **_params("--probe-param", args.probe_param)}
        given = getattr(args, "given_options", ())
        _refuse_both("--probe-param", probe, "N", "--N", "--N" in given)
        if builder != "fresnel_zone_plate":
            probe.setdefault("N", args.N)
        ops: list[dict[str, Any]] = []
        if args.defocus_m is not None:
            if builder == "fresnel_zone_plate":
                probe["defocus_m"] = args.defocus_m
            else:
                ops.append({"op": "propagate", "distance_m": args.defocus_m})
        if "--mode-decay" in getattr(args, "given_options", ()) and (args.modes or 1) < 2:
            raise ValueError(
                f"--mode-decay applies only with --modes > 1, got --modes {args.modes or 1}"
            )
        if args.modes is not None:
            from .probes import MAX_MODES

            if not 1 <= args.modes <= MAX_MODES:
                raise ValueError(
                    f"--modes must be an integer in [1, {MAX_MODES}], got {args.modes}"
                )
            if args.mode_decay is not None and args.mode_decay > 1:
                raise ValueError(f"--mode-decay must be in (0, 1], got {args.mode_decay}")
            if args.modes > 1:
                ops.append({"op": "modes", "n": args.modes, "decay": args.mode_decay})
        if ops:
            probe["operations"] = ops
        doc["probe"] = probe
    builder = args.scan or "random_uniform"
    scan: dict[str, Any] = {"builder": builder, **_params("--scan-param", args.scan_param)}
    given = getattr(args, "given_options", ())
    _refuse_both("--scan-param", scan, "n", "-n/--n-images", "--n-images" in given)
    _refuse_both("--scan-param", scan, "step_px", "--step-px", args.step_px is not None)
    if builder in ("fermat_spiral", "random_uniform", "lissajous"):
        scan.setdefault("n", args.n_images)
    if args.step_px is not None:
        scan["step_px"] = args.step_px
    if args.buffer is not None and (builder != "random_uniform" or "width_px" in scan):
        raise ValueError(
            "--buffer sets the margin of the random scan (the default --scan, without "
            "--scan-param width_px); other scans are placed at the object's centre"
        )
    if builder == "random_uniform" and "width_px" not in scan:
        scan["width_px"] = "auto"  # the object's size less N (or 2 --buffer): patches inside
    errors: list[dict[str, Any]] = []
    if args.jitter_px is not None:
        errors.append({"op": "jitter", "sigma_px": args.jitter_px})
    if args.drift_px is not None:
        try:
            vx, vy = (float(v) for v in args.drift_px.split(","))
        except ValueError:
            raise ValueError(f"--drift-px must be VX,VY (pixels), got {args.drift_px!r}") from None
        errors.append({"op": "drift", "velocity_px": [vx, vy]})
    if errors:
        scan["errors"] = errors
    doc["scan"] = scan
    det = _params("--detector-param", args.detector_param)
    if args.no_poisson:
        det["poisson"] = False
    if args.detector is not None or det:
        doc["detector"] = {"preset": args.detector or "ideal", **det}
    return doc


def input_message(exc: Exception) -> str:
    """A ``load_probe_object`` error in the command line's words: it names ``--input``
    (the function's messages name the file, or its argument ``file_path``)."""
    text = str(exc)
    if text.startswith("--input"):
        return text
    if text.startswith("file_path "):
        return "--input " + text[len("file_path ") :]
    return f"--input {text}"


def _input_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    from ..nongrid_simulation import load_probe_object

    try:
        obj, probe = load_probe_object(path)
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(input_message(exc)) from None
    except OSError as exc:
        raise ValueError(f"--input {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # a corrupt file: zip, npy or pickle errors of every kind
        raise ValueError(
            f"--input {path} is not a readable NPZ file ({type(exc).__name__}: {exc})"
        ) from None
    return np.asarray(obj, np.complex64), np.asarray(probe, np.complex64)


def _resolve_arrays(
    doc: dict[str, Any], obj: np.ndarray | None, probe: np.ndarray | None
) -> dict[str, Any]:
    """``array = "input"`` entries → reference records of the ``--input`` arrays."""
    from .provenance import encode_array

    for name, arr in (("object", obj), ("probe", probe)):
        if doc.get(name, {}).get("array") == "input":
            assert arr is not None
            doc[name] = {"array": encode_array(arr, embed_max_bytes=0)}
    return doc


# --------------------------------------------------------------------------- outputs


def _is_dir_target(output: str) -> bool:
    """``-o`` names a directory to write into: it ends in a separator, or it is an existing
    directory that is not a ``.zarr`` store (a store is a target of its own: replaced with
    ``--overwrite``, never written into)."""
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    path = Path(output)
    return output.endswith(seps) or (path.is_dir() and not path.name.lower().endswith(".zarr"))


def _ext(args: argparse.Namespace) -> str:
    fmt = getattr(args, "format", None)
    return _FORMAT_EXT[fmt] if fmt else ".npz"


def _writer_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "format": getattr(args, "format", None),
        "compress": bool(getattr(args, "compress", False)),
        "overwrite": bool(getattr(args, "overwrite", False)),
    }


def _progress(args: argparse.Namespace) -> bool:
    p = getattr(args, "progress", None)
    return bool(p) if p is not None else (sys.stderr.isatty() and not args.quiet)


def write_preview(
    path: str | os.PathLike[str],
    experiment: Any,
    seed: int,
    *,
    overwrite: bool = True,
    name: str | None = None,
) -> None:
    """The preview of ``simulate(experiment, seed=seed)`` (:func:`ptyfast.plotting.preview`;
    its first patterns are simulated for it, the same bits as the file's)."""
    from .. import plotting

    plotting.preview(experiment, path, seed=seed, overwrite=overwrite, name=name)


# --------------------------------------------------------------------------- handlers


def _summary(path: Path, e: Any, seconds: float) -> str:
    rate = e.n_patterns / max(seconds, 1e-9)
    return (
        f"wrote {path}: {e.n_patterns} patterns of {e.N}x{e.N}, {e.n_modes} mode(s), detector "
        f"{e.detector.name} ({e.detector.dtype}), intensity scale {e.intensity_scale:.6g}, "
        f"{seconds:.2f} s ({rate:,.0f} patterns/s)"
    )


def simulate(args: argparse.Namespace) -> int:
    """``ptyfast simulate`` with the model's options (see the module docstring)."""
    from . import recipes
    from .campaign import Campaign

    try:
        return _simulate(args, recipes, Campaign)
    except ImportError as exc:  # an optional format package: a user error, one line
        raise ValueError(str(exc)) from None
    except recipes.RecipeError as exc:
        hint = None if getattr(args, "recipe", None) else _options_hint(str(exc))
        if hint is None:
            raise
        # The recipe was made from the options: say which options set the sections named.
        raise recipes.RecipeError(f"{exc} ({hint})") from None
    except ValueError as exc:
        hint = _margin_hint(args, str(exc))
        if hint is None:
            raise
        raise ValueError(f"{exc} ({hint})") from None


def _margin_hint(args: argparse.Namespace, message: str) -> str | None:
    """For a position error that pushed the default random scan off the object: how to
    leave room for it (the scan fills the object less ``--buffer`` on each side, so any
    jitter or drift can take a position past the edge), or None."""
    if not message.startswith("scan leaves the object") or getattr(args, "recipe", None):
        return None
    if args.jitter_px is None and args.drift_px is None:
        return None
    if (args.scan or "random_uniform") != "random_uniform" or any(
        p.split("=", 1)[0].strip() == "width_px" for p in args.scan_param or ()
    ):
        return "--jitter-px/--drift-px move the positions: use a smaller scan (--step-px)"
    return (
        "--jitter-px/--drift-px move the positions, and the default random scan fills the "
        "object less --buffer (default N/2) on each side: leave room with --buffer, e.g. "
        "N/2 plus five times the jitter plus the drift's total, or use a larger --object-size"
    )


#: The options of ``ptyfast simulate`` that set each section of the recipe it builds.
_SECTION_OPTIONS = {
    "experiment": "--nphotons, --seed and --patches",
    "geometry": "--energy-eV, --distance-m and --detector-pixel-m",
    "object": "--object, --object-size and --object-param KEY=VALUE",
    "probe": "--probe, --probe-param KEY=VALUE, --modes, --mode-decay and --defocus-m",
    "scan": "--scan, -n, --step-px, --jitter-px, --drift-px and --scan-param KEY=VALUE",
    "detector": "--detector and --detector-param KEY=VALUE",
}


def _options_hint(message: str) -> str | None:
    """Which options set the sections a recipe error names (``[probe]``, ...), or None."""
    named = [k for k in _SECTION_OPTIONS if f"[{k}]" in message]
    if not named:
        return None
    return "on the command line: " + "; ".join(f"[{k}] is {_SECTION_OPTIONS[k]}" for k in named)


def _check_preview(args: argparse.Namespace) -> None:
    """A preview path with a known extension that may be written (before any work)."""
    from .. import plotting

    if not args.preview:
        return
    from .._atomic import check_output_path

    plotting.preview_format(args.preview)
    # its directory too: a preview under a file failed only after the dataset was written
    p = check_output_path(Path(args.preview), "--preview")
    if p.is_dir():
        raise ValueError(f"--preview {args.preview!r} is a directory, expected a file path")
    if p.exists() and not getattr(args, "overwrite", False):
        raise ValueError(f"--preview {args.preview!r} exists; pass --overwrite to replace it")


def _preview(args: argparse.Namespace, plan: Any, name: str, progress: bool) -> None:
    from .._progress import Phases

    with Phases(progress)("preview", 1) as bar:
        write_preview(
            args.preview,
            plan.experiment,
            plan.seed,
            overwrite=bool(getattr(args, "overwrite", False)),
            name=name,
        )
        bar.update(1)


def _fresh(fresh: bool) -> list[str]:
    if not fresh:
        return []
    return [
        "the recipe gives no seed: this dry run drew one, and the run will draw its own from "
        "fresh entropy (recorded in its provenance)"
    ]


def _simulate(args: argparse.Namespace, recipes: Any, campaign_cls: Any) -> int:
    _check_preview(args)
    obj = probe = None
    if args.input:
        obj, probe = _input_arrays(args.input)
        if args.probe is not None:
            probe = None  # --probe builds the probe; the input file gives only the object
    if args.recipe:
        given = [f"--{d.replace('_', '-')}" for d in _MODEL_DESTS[1:] if getattr(args, d, None)]
        if args.buffer is not None:
            given.append("--buffer")
        given += list(getattr(args, "given_options", ()))
        given += [
            o
            for o, d in (("--no-poisson", "no_poisson"), ("--patches", "patches"))
            if getattr(args, d, False)
        ]
        if given:
            raise ValueError(f"--recipe takes the whole experiment from its file; drop {given}")
        doc = recipes.load(args.recipe)
    else:
        doc = _resolve_arrays(_doc_from_options(args), obj, probe)
        scan = doc["scan"]
        if scan.get("width_px") == "auto":
            if obj is not None:
                h, w = obj.shape
            else:
                h = w = int(args.object_size)
            if probe is not None and args.probe is None:
                n = int(probe.shape[-1])  # --input's probe
            else:  # the built probe's N (--probe-param N, else --N)
                built = doc.get("probe")
                n = int(built["N"]) if isinstance(built, dict) and "N" in built else args.N
            if min(h, w) - n <= 0:
                raise ValueError(
                    f"the object ({h} x {w}) must be larger than the probe (N = {n}) for a "
                    f"random scan over it"
                )
            margin = n if args.buffer is None else 2 * args.buffer
            if min(h, w) - margin <= 0:
                raise ValueError(
                    f"--buffer must leave room for the random scan: less than "
                    f"{min(h, w) / 2:g} object pixels for the {h} x {w} object, got "
                    f"{args.buffer:g}"
                )
            scan["width_px"], scan["height_px"] = float(w - margin), float(h - margin)
    progress = _progress(args)
    chunk = getattr(args, "chunk_size", None)
    wargs = _writer_args(args)
    dry = bool(getattr(args, "dry_run", False))
    on_cluster = getattr(args, "workers", None) is not None or getattr(args, "scheduler", None)
    shard = getattr(args, "shard_size", None)
    if shard is not None:
        if shard < 1:
            raise ValueError(f"--shard-size must be at least 1, got {shard}")
        if not on_cluster:
            raise ValueError("--shard-size splits a cluster run: it needs --workers or --scheduler")
    if on_cluster:
        _check_cluster(args, recipes, doc)  # a dry run refuses what the cluster run refuses
        if not dry:
            return _simulate_on_cluster(args, recipes, campaign_cls, doc, obj, probe, progress)
    if recipes.is_campaign(doc):
        c = campaign_cls.from_dict(doc)
        if not _is_dir_target(args.output):
            raise ValueError(
                f"a campaign writes one file per experiment: -o must be a directory (a path "
                f"ending in '/'), got {args.output!r}"
            )
        directory = Path(args.output)
        ext = _ext(args)
        if not wargs["overwrite"]:
            existing = [p for i in range(len(c)) if (p := c.path_for(directory, i, ext)).exists()]
            if existing:
                raise ValueError(
                    f"output {os.fspath(existing[0])!r} exists ({len(existing)} of "
                    f"{len(c)} files); pass --overwrite to replace them"
                )
        if dry:
            from .. import _dryrun

            jobs = ((c.path_for(directory, i, ext), lambda i=i: c.plan(i)) for i in range(len(c)))
            title = f"campaign {c.name!r}, {len(c)} experiments into {directory}"
            fresh = (doc.get("campaign") or {}).get("seed") is None
            return _dryrun.print_report(
                _dryrun.model_report(
                    jobs, title, wargs, chunk, progress, n_jobs=len(c), notes=_fresh(fresh)
                )
            )
        # Every experiment, and the disk for all its files together, before any is run.
        c._check_run(range(len(c)), progress, directory, ext, **wargs)
        t0 = time.perf_counter()
        for i in range(len(c)):
            plan = c.plan(i, progress=progress)
            t = time.perf_counter()
            path = c.path_for(directory, i, ext)
            directory.mkdir(parents=True, exist_ok=True)
            plan.simulate_to(path, progress=progress, chunk_size=chunk, **wargs)
            seconds = time.perf_counter() - t
            if i == 0 and args.preview:
                _preview(args, plan, f"campaign {c.name!r} #0", progress)
            if not args.quiet:
                print(_summary(path, plan.experiment, seconds))
        if not args.quiet:
            print(
                f"campaign {c.name!r}: {len(c)} experiments in {directory} "
                f"({time.perf_counter() - t0:.2f} s)"
            )
        return 0
    output = Path(args.output)
    if _is_dir_target(args.output):
        output = output / f"ptyfast_simulation{_ext(args)}"
    name = str((doc.get("experiment") or {}).get("name") or "experiment")
    if args.recipe:
        name = f"{name} ({Path(args.recipe).name})"
    if dry:
        from .. import _dryrun

        job = (output, lambda: recipes.plan(doc, object=obj, probe=probe, progress=progress))
        fresh = (doc.get("experiment") or {}).get("seed") is None
        return _dryrun.print_report(
            _dryrun.model_report(
                [job],
                f"{name} into {output}",
                wargs,
                chunk,
                progress,
                n_jobs=1,
                notes=_fresh(fresh),
            )
        )
    plan = recipes.plan(doc, object=obj, probe=probe, progress=progress)
    t = time.perf_counter()
    plan.simulate_to(output, progress=progress, chunk_size=chunk, **wargs)
    seconds = time.perf_counter() - t
    if args.preview:
        _preview(args, plan, name, progress)
    if not args.quiet:
        print(_summary(output, plan.experiment, seconds))
        if args.preview:
            print(f"wrote {args.preview}")
    return 0


def _check_cluster(args: argparse.Namespace, recipes: Any, doc: dict[str, Any]) -> Path:
    """The checks of a cluster run's arguments (also made by its ``--dry-run``); the output."""
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, got {args.shard_size}")
    if args.preview:
        raise ValueError("--preview is not available with --workers/--scheduler")
    fmt = getattr(args, "format", None)
    campaign = recipes.is_campaign(doc)
    output = Path(args.output)
    if campaign and not _is_dir_target(args.output):
        raise ValueError(
            f"a campaign writes one store per experiment: -o must be a directory (a path "
            f"ending in '/'), got {args.output!r}"
        )
    if not campaign and _is_dir_target(args.output):
        output = output / "ptyfast_simulation.zarr"
    if (fmt not in (None, "zarr")) or (not campaign and output.suffix.lower() != ".zarr"):
        raise ValueError(
            f"--workers/--scheduler write a Zarr store: -o must end in .zarr (or be a "
            f"campaign's directory), got {args.output!r}" + (f" with --format {fmt}" if fmt else "")
        )
    return output


def _simulate_on_cluster(
    args: argparse.Namespace,
    recipes: Any,
    campaign_cls: Any,
    doc: dict[str, Any],
    obj: Any,
    probe: Any,
    progress: bool,
) -> int:
    """``ptyfast simulate --workers N | --scheduler ADDRESS`` (:mod:`ptyfast.distributed`)."""
    from .. import distributed

    output = _check_cluster(args, recipes, doc)
    campaign = recipes.is_campaign(doc)
    if campaign:
        what: Any = campaign_cls.from_dict(doc)
        seed, patches = None, False
    else:
        plan = recipes.plan(doc, object=obj, probe=probe)
        what, seed, patches = plan.experiment, plan.seed, plan.patches
    distributed._require_distributed()
    t = time.perf_counter()
    kw = {
        "seed": seed,
        "shard_size": args.shard_size,
        "compress": bool(getattr(args, "compress", False)),
        "overwrite": bool(getattr(args, "overwrite", False)),
        "progress": progress,
    }
    if not campaign:
        kw["patches"] = patches
    if args.scheduler:
        from distributed import Client

        with Client(args.scheduler) as client:
            paths = distributed.simulate(what, output, client=client, **kw)
    else:
        with distributed.local_client(args.workers) as client:
            paths = distributed.simulate(what, output, client=client, **kw)
    if not args.quiet:
        seconds = time.perf_counter() - t
        print(f"wrote {len(paths)} store(s) under {output} on the cluster ({seconds:.2f} s)")
    return 0


def recipe(args: argparse.Namespace) -> int:
    """``ptyfast recipe``: the template, or a dataset's provenance as a recipe."""
    from .. import io
    from .._atomic import atomic_output
    from . import recipes
    from .provenance import ProvenanceError

    if args.output:  # before reading anything; the message names the option, not 'path'
        from .._atomic import check_output_path

        check_output_path(args.output, "--output")
    if args.example:
        if args.campaign:
            raise ValueError("--campaign goes with --from FILE, not --example")
        text = recipes.example()
    else:
        try:
            with io.reader(args.from_file) as r:
                prov = r.header.provenance
                read = {Path(p).resolve() for p in r.paths}
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        # -o naming the dataset read (or the other file of its ptychodus pair) replaced the
        # dataset with its recipe under --overwrite.
        if args.output and Path(args.output).resolve() in read:
            raise ValueError(
                f"-o {args.output!r} is a file of the dataset read (--from "
                f"{args.from_file!r}): write the recipe elsewhere"
            )
        if not prov:
            raise ValueError(f"{args.from_file} has no ptyfast provenance (not simulated by it)")
        try:
            text = recipes.from_provenance(prov, campaign=args.campaign)
        except ProvenanceError as exc:
            raise ProvenanceError(f"{args.from_file}: {exc}") from None
    if args.output:
        with atomic_output(args.output, overwrite=args.overwrite) as out:
            out.file.write(text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0

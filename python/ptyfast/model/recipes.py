"""Recipe files: an experiment or a campaign described in TOML.

A recipe is a TOML document with the sections of an experiment (every one optional but
``[object]``, ``[probe]`` and ``[scan]``)::

    [experiment]   photons, seed (the noise seed), patches, name
    [geometry]     energy_eV, distance_m, detector_pixel_m, N            (optional)
    [object]       family + its parameters (ptyfast.objects), or array = {...}
    [probe]        builder + its parameters (ptyfast.probes), operations = [...],
                   or array = {...}
    [scan]         builder + its parameters (ptyfast.scans), errors = [...]
    [detector]     preset = "eiger" | "pilatus" | "integrating" | "ideal" + parameters,
                   or the parameters of ptyfast.Detector                  (optional: ideal)

and, for a campaign, a ``[campaign]`` section (``n_experiments``, ``seed``, ``name``) with any
value of the other sections replaced by a distribution (:mod:`ptyfast.model.campaign`). The
template (:func:`example`, ``ptyfast recipe --example``) shows every section with comments.

Parameters take the builders' defaults when left out. Missing builder parameters that the
builders take from elsewhere are filled in: the probe's ``N`` and a zone plate's or a
propagation's ``geometry`` from ``[geometry]``. ``amplitude = "raw"`` in ``[object]`` is the
family's raw texture (``amplitude=None``: PtychoPINN's objects).

**Seeds.** Every random draw is seeded and every seed recorded. ``[experiment] seed`` is the
noise seed; a seed the recipe leaves out (object, random scan, scan errors, random Zernike
coefficients or modes, bad pixels) is derived from it by :func:`derive_seed` (keyed by the
parameter's path, so adding a parameter never moves another's seed), and without
``[experiment] seed`` fresh OS entropy is drawn once and recorded. In a campaign the master
seed is ``[campaign] seed`` and experiment ``i`` derives its seeds (its noise seed too) with
index ``i``.

**From provenance back to a recipe.** :func:`from_provenance` writes a dataset's provenance
as a recipe in which every parameter and seed is explicit: ``ptyfast simulate --recipe`` on
it regenerates the dataset bit for bit. Arrays the user passed (not recipes) stay in it as
``array = {dtype, shape, sha256, encoding, data}`` (embedded), or as a reference that must be
given again (``--input``, ``plan(..., object=...)``).

TOML is read with :mod:`tomllib` (Python 3.11+) or ``tomli``; it is written by :func:`dumps`,
a small writer for the subset recipes use (tables, arrays of tables, inline tables, strings,
integers, floats written with ``repr`` so they read back exactly, booleans; ``None`` is left
out, which means "the default" everywhere except ``[object] amplitude``, written ``"raw"``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _kernels
from . import _args, objects, probes, scans
from . import provenance as _provenance
from .dataset import Dataset
from .detector import Detector, pixel_table
from .geometry import Geometry

__all__ = [
    "SECTIONS",
    "Planned",
    "derive_seed",
    "dumps",
    "loads",
    "load",
    "example",
    "is_campaign",
    "plan",
    "spec_from_provenance",
    "from_provenance",
]

#: The sections of an experiment recipe, in the order they are written.
SECTIONS = ("experiment", "geometry", "object", "probe", "scan", "detector")
_EXPERIMENT_KEYS = ("name", "photons", "seed", "patches")
_SCAN_BUILDERS = (
    "raster",
    "hexagonal",
    "fermat_spiral",
    "concentric",
    "lissajous",
    "random_uniform",
    "custom",
)
_SCAN_ERRORS = ("jitter", "drift", "affine")
_PROBE_BUILDERS = ("disk", "gaussian", "super_gaussian", "fresnel_zone_plate", "zernike")
_DEFAULT_PHOTONS = 1e9


class RecipeError(ValueError):
    """A recipe that cannot be read or built; the message names the section and key."""


# --------------------------------------------------------------------------- TOML


def _toml_module() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # pragma: no cover - Python 3.10

    return tomli  # pragma: no cover


def loads(text: str, *, where: str = "recipe") -> dict[str, Any]:
    """Parse TOML text (errors name ``where``); ``text`` must be a ``str``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (TOML), got {type(text).__name__}")
    toml = _toml_module()
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise RecipeError(f"{where} is not valid TOML: {exc}") from None
    except RecursionError:
        raise RecipeError(f"{where} is not a usable TOML document: nested too deeply") from None


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a recipe file (a TOML document; see the module docstring).

    Raises
    ------
    FileNotFoundError, RecipeError (ValueError)
        Missing file, invalid TOML, or a document without ``[object]``/``[probe]``/``[scan]``
        or with unknown sections.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{os.fspath(p)}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{os.fspath(p)} cannot be read: {exc}") from None
    doc = loads(text, where=os.fspath(p))
    _check_sections(doc, where=os.fspath(p))
    return doc


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: Any) -> str:
    k = str(k)
    return k if _BARE.match(k) else json.dumps(k)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise TypeError(f"a recipe value must be a number, string, bool, list or table, got {v!r}")


def _inline(v: Any) -> str:
    if isinstance(v, dict):
        items = [f"{_key(k)} = {_inline(x)}" for k, x in v.items() if x is not None]
        return "{" + ", ".join(items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_inline(x) for x in v if x is not None) + "]"
    return _scalar(v)


def _is_table_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def _table(lines: list[str], path: str, d: dict[str, Any], header: str) -> None:
    simple = [(k, v) for k, v in d.items() if v is not None and not _is_table_list(v)]
    lists = [(k, v) for k, v in d.items() if _is_table_list(v)]
    if header:
        lines.append(header)
    for k, v in simple:
        lines.append(f"{_key(k)} = {_inline(v)}")
    for k, v in lists:
        for item in v:
            lines.append("")
            _table(lines, f"{path}.{_key(k)}", item, f"[[{path}.{_key(k)}]]")


def dumps(doc: dict[str, Any], *, comment: str | None = None) -> str:
    """TOML text of a recipe document (module docstring: what is written and how).

    Top-level tables become ``[section]`` tables, lists of tables inside them
    ``[[section.key]]`` arrays of tables, deeper tables inline tables; ``None`` values are
    left out. ``comment`` (lines) goes first, each line prefixed with ``# ``.

    Examples
    --------
    >>> print(dumps({"experiment": {"photons": 1e6, "seed": 3}, "scan": {"builder": "raster",
    ...     "errors": [{"op": "jitter", "sigma_px": 0.5}]}}))
    [experiment]
    photons = 1000000.0
    seed = 3
    <BLANKLINE>
    [scan]
    builder = "raster"
    <BLANKLINE>
    [[scan.errors]]
    op = "jitter"
    sigma_px = 0.5
    <BLANKLINE>
    """
    if not isinstance(doc, dict):
        raise TypeError(f"doc must be a dict (a recipe document), got {type(doc).__name__}")
    if comment is not None and not isinstance(comment, str):
        raise TypeError(f"comment must be a str or None, got {type(comment).__name__}")
    lines: list[str] = []
    if comment:
        lines += [f"# {ln}".rstrip() for ln in comment.splitlines()]
        lines.append("")
    top = [(k, v) for k, v in doc.items() if not isinstance(v, dict) and v is not None]
    for k, v in top:
        lines.append(f"{_key(k)} = {_inline(v)}")
    if top:
        lines.append("")
    for k, v in doc.items():
        if isinstance(v, dict):
            _table(lines, _key(k), v, f"[{_key(k)}]")
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- seeds


def derive_seed(master: int, index: int, path: str, *, bits: int = 64) -> int:
    """A seed derived from a master seed, keyed by an experiment index and a parameter path.

    ``numpy.random.SeedSequence(master, spawn_key=(index, h))`` with ``h`` the first 8 bytes
    of SHA-256 of ``path`` (big-endian), its first ``bits/32`` 32-bit words as an integer:
    deterministic, and independent of which other seeds a recipe derives. ``master`` and
    ``index`` are non-negative integers, ``path`` a ``str``, ``bits`` a multiple of 32 in
    ``[32, 4096]``.

    Raises
    ------
    TypeError, ValueError
        An argument of another type (bools and floats are not integers) or out of range.

    Examples
    --------
    >>> derive_seed(1, 0, "object.seed") == derive_seed(1, 0, "object.seed")
    True
    >>> derive_seed(1, 0, "object.seed") != derive_seed(1, 1, "object.seed")
    True
    """
    master = _args.integer("master", master, minimum=0)
    index = _args.integer("index", index, minimum=0)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str such as 'object.seed', got {type(path).__name__}")
    bits = _args.integer("bits", bits, minimum=32, maximum=4096)
    if bits % 32:
        raise ValueError(f"bits must be a multiple of 32, got {bits}")
    h = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big")
    words = np.random.SeedSequence(master, spawn_key=(index, h)).generate_state(
        bits // 32, np.uint32
    )
    out = 0
    for w in words:
        out = (out << 32) | int(w)
    return out


def _fill_seeds(spec: dict[str, Any], derive: Any) -> None:
    """Put a derived seed wherever a draw needs one and the spec has none (in place)."""
    obj = spec.get("object")
    if isinstance(obj, dict) and "family" in obj and obj.get("seed") is None:
        legacy = obj["family"] in ("lines", "grf", "points")
        obj["seed"] = derive("object.seed", 32 if legacy else 64)
    pr = spec.get("probe")
    if isinstance(pr, dict) and "builder" in pr:
        if pr["builder"] == "zernike" and pr.get("coefficients") is None and pr.get("seed") is None:
            pr["seed"] = derive("probe.seed", 64)
        for i, op in enumerate(_ops(pr, "probe.operations")):
            if (
                isinstance(op, dict)
                and op.get("op") == "modes"
                and op.get("method") == "random"
                and op.get("seed") is None
            ):
                op["seed"] = derive(f"probe.operations[{i}].seed", 64)
    sc = spec.get("scan")
    if isinstance(sc, dict):
        if sc.get("builder") == "random_uniform" and sc.get("seed") is None:
            sc["seed"] = derive("scan.seed", 64)
        for i, op in enumerate(_ops(sc, "scan.errors")):
            if not isinstance(op, dict) or op.get("seed") is not None:
                continue
            walk = op.get("random_walk_px", 0.0)
            if op.get("op") == "jitter" or (op.get("op") == "drift" and walk and walk > 0):
                op["seed"] = derive(f"scan.errors[{i}].seed", 64)
    det = spec.get("detector")
    if isinstance(det, dict) and det.get("bad_pixel_seed") is None:
        if (det.get("dead_fraction") or 0) > 0 or (det.get("hot_fraction") or 0) > 0:
            det["bad_pixel_seed"] = derive("detector.bad_pixel_seed", 64)


# --------------------------------------------------------------------------- spec -> parts


def _ops(section: dict[str, Any], path: str) -> list[Any]:
    """A section's list of operation tables at ``path`` (``"scan.errors"``,
    ``"probe.operations"``), empty when absent."""
    key = path.rpartition(".")[2]
    ops = section.get(key)
    if ops is None:
        return []
    if not isinstance(ops, list | tuple):
        raise TypeError(
            f"{path} must be a list of tables ([[{path}]] in TOML), got {type(ops).__name__} "
            f"{ops!r}"
        )
    return list(ops)


def _where(section: str, exc: Exception) -> RecipeError:
    return RecipeError(f"recipe [{section}]: {exc}")


def is_campaign(doc: dict[str, Any]) -> bool:
    """Whether a recipe document describes a campaign (has a ``[campaign]`` table)."""
    return isinstance(doc, dict) and "campaign" in doc


def _check_sections(doc: Any, *, where: str = "recipe") -> None:
    if not isinstance(doc, dict):
        raise RecipeError(f"{where} must be a table of sections, got {type(doc).__name__}")
    allowed = set(SECTIONS) | {"campaign"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise RecipeError(
            f"{where} has unknown section(s) {unknown}; sections are {['campaign', *SECTIONS]}"
        )
    for s in doc:
        if not isinstance(doc[s], dict):
            raise RecipeError(f"{where} [{s}] must be a table, got {doc[s]!r:.60}")
    missing = [s for s in ("object", "probe", "scan") if s not in doc]
    if missing:
        raise RecipeError(f"{where} needs the section(s) {['[' + m + ']' for m in missing]}")


def _det_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kw = dict(params)
    for name in ("dead_pixels", "hot_pixels"):
        v = kw.get(name)
        if isinstance(v, dict):
            kw[name] = pixel_table(name, v)
    for name in ("module_px", "gap_px", "n_modules", "beam_px"):
        if isinstance(kw.get(name), list):
            kw[name] = tuple(kw[name])
    return kw


def _detector(spec: dict[str, Any] | None) -> Detector:
    if spec is None:
        return Detector()
    params = {k: v for k, v in spec.items() if k != "preset"}
    kw = _det_kwargs(params)
    if "preset" in spec:
        return Detector.preset(spec["preset"], **kw)
    return _call_with("Detector", Detector, kw)


def _need(where: str, spec: dict[str, Any], key: str, choices: Any) -> None:
    """Refuse a table without its ``key`` (``family``, ``builder``, ``op``), naming the keys it
    has: a misspelt ``familly`` or ``buildr`` would otherwise read "must be one of ..., got
    None", naming neither."""
    if key not in spec:
        raise ValueError(
            f"{where}needs {key} = one of {list(choices)}; got no {key!r} among the keys "
            f"{sorted(str(k) for k in spec)}"
        )


def _probe_recipe(spec: dict[str, Any], geometry: Geometry | None) -> dict[str, Any]:
    _need("", spec, "builder", _PROBE_BUILDERS)
    params = {k: v for k, v in spec.items() if k not in ("builder", "operations")}
    builder = spec.get("builder")
    fn = getattr(probes, str(builder), None) if isinstance(builder, str) else None
    if builder not in _PROBE_BUILDERS:
        raise ValueError(f"builder must be one of {list(_PROBE_BUILDERS)}, got {builder!r}")
    sig = inspect.signature(fn).parameters  # type: ignore[arg-type]
    if "geometry" in sig and "geometry" not in params:
        if geometry is None:
            raise ValueError(f"{builder} needs a geometry: add a [geometry] section")
        params["geometry"] = geometry
    if "N" in sig and "N" not in params and geometry is not None:
        params["N"] = geometry.N
    ops = []
    for i, op in enumerate(_ops(spec, "probe.operations")):
        if not isinstance(op, dict):
            raise ValueError(f"operations[{i}] must be a table, got {op!r}")
        _need(f"operations[{i}] ", op, "op", ("propagate", "modes"))
        op = dict(op)
        if op.get("op") == "propagate" and "geometry" not in op:
            if geometry is None:
                raise ValueError(f"operations[{i}] (propagate) needs a [geometry] section")
            op["geometry"] = geometry
        ops.append(op)
    return probes.recipe(builder, operations=ops, **params)


def _object_recipe(spec: dict[str, Any]) -> dict[str, Any]:
    _need("", spec, "family", objects.FAMILIES)
    params = {k: v for k, v in spec.items() if k != "family"}
    if params.get("amplitude") == "raw":
        params["amplitude"] = None
    return objects.recipe(spec.get("family"), **params)


def _scan(spec: dict[str, Any]) -> scans.Scan:
    _need("", spec, "builder", _SCAN_BUILDERS)
    builder = spec.get("builder")
    if builder not in _SCAN_BUILDERS:
        raise ValueError(f"builder must be one of {list(_SCAN_BUILDERS)}, got {builder!r}")
    params = {k: v for k, v in spec.items() if k not in ("builder", "errors")}
    scan = _call_with(builder, getattr(scans, builder), params)
    for i, op in enumerate(_ops(spec, "scan.errors")):
        if isinstance(op, dict):
            _need(f"errors[{i}] ", op, "op", _SCAN_ERRORS)
        if not isinstance(op, dict) or op.get("op") not in _SCAN_ERRORS:
            got = op.get("op") if isinstance(op, dict) else op
            raise ValueError(f"errors[{i}]['op'] must be one of {list(_SCAN_ERRORS)}, got {got!r}")
        kw = {k: v for k, v in op.items() if k != "op"}
        scan = _call_with(f"errors[{i}] ({op['op']})", getattr(scan, op["op"]), kw)
    return scan


def _call_with(where: str, fn: Any, params: dict[str, Any]) -> Any:
    """``fn(**params)``, unknown or missing parameter names refused first, as the object and
    probe recipes do (rather than Python's "unexpected keyword argument")."""
    _args.parameters(where, fn, params)
    return fn(**params)


@dataclass(frozen=True)
class Planned:
    """An experiment ready to simulate, with its noise seed and what to keep.

    Made by :func:`plan` (an experiment recipe) or :meth:`ptyfast.Campaign.plan` (one
    experiment of a campaign; ``campaign`` is then the provenance's campaign block).

    Attributes
    ----------
    experiment : Experiment or None
        The built experiment (None for a campaign's check: ``layout`` then describes it).
    seed : int
        The resolved noise seed.
    patches : bool
        Whether the simulation keeps the object patches.
    name : str
        The recipe's (or the campaign experiment's) name.
    campaign : dict or None
        The provenance's campaign block, for one experiment of a campaign.
    layout : dict or None
        Without an experiment: the dataset's sizes (``m`` patterns of ``n × n``,
        ``n_modes``, ``object_shape``) and the ``detector``.
    """

    experiment: Any
    seed: int
    patches: bool
    name: str
    campaign: dict[str, Any] | None = None
    #: Without an experiment (a campaign's check): the dataset's sizes, ``m`` patterns of
    #: ``n`` x ``n``, ``n_modes``, ``object_shape`` and the ``detector``.
    layout: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def provenance(self, *, embed_max_bytes: int = _provenance.EMBED_MAX_BYTES) -> dict[str, Any]:
        """The provenance record its simulation carries (``embed_max_bytes`` as for
        :func:`ptyfast.simulate`)."""
        return _provenance.make(
            self.experiment,
            seed=self.seed,
            patches=self.patches,
            embed_max_bytes=embed_max_bytes,
            campaign=self.campaign,
        )

    def simulate(
        self,
        *,
        progress: bool = False,
        chunk_size: int | None = None,
        embed_max_bytes: int = _provenance.EMBED_MAX_BYTES,
    ) -> Dataset:
        """:func:`ptyfast.simulate` with this plan's seed and patches (and campaign block);
        ``progress``, ``chunk_size`` and ``embed_max_bytes`` as there."""
        from .experiment import _run

        on = _kernels._flag("progress", progress)
        record = self.provenance(embed_max_bytes=embed_max_bytes)
        return _run(self.experiment, self.seed, self.patches, on, chunk_size, record)

    def simulate_to(
        self,
        path: str | os.PathLike[str],
        *,
        progress: bool = False,
        chunk_size: int | None = None,
        embed_max_bytes: int = _provenance.EMBED_MAX_BYTES,
        **writer_args: Any,
    ) -> list[Path]:
        """:func:`ptyfast.model.experiment.simulate_to` with this plan's seed and patches;
        ``progress``, ``chunk_size``, ``embed_max_bytes`` and ``**writer_args`` as there."""
        from .. import io
        from .experiment import _run_to

        record = self.provenance(embed_max_bytes=embed_max_bytes)
        return _run_to(
            self.experiment,
            path,
            self.seed,
            self.patches,
            _kernels._flag("progress", progress),
            chunk_size,
            record,
            io,
            **writer_args,
        )


def _build(
    spec: dict[str, Any],
    *,
    object: Any = None,  # noqa: A002
    probe: Any = None,
    campaign: dict[str, Any] | None = None,
    build_arrays: bool = True,
    progress: bool = False,
) -> Planned:
    """The Planned experiment of a fully resolved spec (no distributions, seeds filled).
    ``build_arrays=False``: every check that does not need the object's values (its recipe,
    the probe, the detector, the scan inside the object's shape), and no experiment."""
    from .. import _kernels
    from .experiment import Experiment, check_layout

    ex = dict(spec.get("experiment") or {})
    unknown = sorted(set(ex) - set(_EXPERIMENT_KEYS))
    if unknown:
        raise RecipeError(
            f"recipe [experiment]: unknown key(s) {unknown}; known {_EXPERIMENT_KEYS}"
        )
    try:
        photons = _args.real("photons", ex.get("photons", _DEFAULT_PHOTONS), positive=True)
        seed = _args.seed_int(ex.get("seed"), "seed")
        patches = ex.get("patches", False)
        if not isinstance(patches, bool):
            raise TypeError(f"patches must be true or false, got {patches!r}")
        name = ex.get("name", "experiment")
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
    except (TypeError, ValueError) as exc:
        raise _where("experiment", exc) from None
    geometry = None
    if spec.get("geometry") is not None:
        try:
            g = spec["geometry"]
            geometry = (
                _call_with("Geometry", Geometry, g)
                if isinstance(g, dict)
                else Geometry.from_dict(g)
            )
        except (TypeError, ValueError) as exc:
            raise _where("geometry", exc) from None
    parts: dict[str, Any] = {}
    for section, given in (("object", object), ("probe", probe)):
        s = spec[section]
        try:
            if "array" in s:
                if set(s) != {"array"}:
                    raise ValueError(f"array leaves no room for other keys, got {sorted(s)}")
                parts[section] = _provenance.decode_array(section, s["array"], given)
            else:
                if given is not None:
                    raise ValueError(f"{section}= given but the recipe builds the {section}")
                parts[section] = (
                    _object_recipe(s) if section == "object" else _probe_recipe(s, geometry)
                )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, _provenance.ProvenanceError):
                raise _where(section, exc) from None
            raise _where(section, exc) from None
    try:
        scan = _scan(spec["scan"])
    except (TypeError, ValueError) as exc:
        raise _where("scan", exc) from None
    try:
        detector = _detector(spec.get("detector"))
    except (TypeError, ValueError) as exc:
        raise _where("detector", exc) from None
    if not build_arrays:
        # The probe is small: build it anyway, so that its parameters' values are checked too
        # (its recipe checks names only). The object's recipe checks its values itself; its
        # shape is enough for the joint checks (probe size, detector, every scan position).
        pr = parts["probe"]
        try:
            modes = _kernels._as_modes(pr if "array" in spec["probe"] else probes.build(pr))
        except (TypeError, ValueError) as exc:
            raise _where("probe", exc) from None
        o = parts["object"]
        shape = tuple(o["params"]["shape"] if isinstance(o, dict) else np.shape(o))
        if len(shape) == 2:  # else the object's own check, when it is built, names the error
            check_layout(shape, modes, scan, detector, geometry)
        layout = {
            "m": scan.n_positions,
            "n": int(modes.shape[-1]),
            "n_modes": int(modes.shape[0]),
            "object_shape": shape,
            "detector": detector,
        }
        return Planned(None, seed, patches, name, campaign, layout)
    e = Experiment(
        parts["object"], parts["probe"], scan, detector, photons, geometry, progress=progress
    )
    return Planned(e, seed, patches, name, campaign)


def plan(
    doc: dict[str, Any] | str | os.PathLike[str],
    *,
    object: Any = None,  # noqa: A002 - the part's name
    probe: Any = None,
    progress: bool = False,
) -> Planned:
    """The experiment an experiment recipe describes, ready to simulate.

    Parameters
    ----------
    doc : dict or path
        A recipe document (:func:`load`, :func:`loads`) or a recipe file; not a campaign
        (use :class:`ptyfast.Campaign`).
    object, probe : array_like, optional
        Arrays for ``array = {...}`` entries recorded by reference.
    progress : bool, optional
        Progress bars over building the experiment (``Experiment(progress=True)``).

    Returns
    -------
    Planned
        ``.experiment``, ``.seed`` (the noise seed, resolved), ``.patches``, ``.name``;
        ``.simulate()`` / ``.simulate_to(path)``.

    Raises
    ------
    RecipeError (ValueError)
        Naming the section and parameter; a distribution (campaigns only); and every error
        :class:`ptyfast.Experiment` raises.

    Examples
    --------
    >>> doc = loads('''
    ... [experiment]
    ... photons = 1e5
    ... seed = 3
    ... [object]
    ... family = "grf"
    ... shape = 64
    ... [probe]
    ... builder = "gaussian"
    ... N = 16
    ... sigma_px = 3.0
    ... [scan]
    ... builder = "raster"
    ... rows = 3
    ... cols = 3
    ... step_px = 4.0
    ... ''')
    >>> p = plan(doc)
    >>> p.seed, p.experiment.n_patterns, p.simulate().diffraction.shape
    (3, 9, (9, 16, 16))
    """
    from .campaign import find_distribution

    if not isinstance(doc, dict):
        doc = load(doc)
    _check_sections(doc)
    if is_campaign(doc):
        raise RecipeError("recipe has a [campaign] section: use ptyfast.Campaign.from_dict")
    found = find_distribution(doc)
    if found is not None:
        raise RecipeError(
            f"recipe {found}: a distribution needs a [campaign] section (an experiment recipe "
            f"takes plain values)"
        )
    spec = copy.deepcopy(doc)
    ex = spec.setdefault("experiment", {})
    master = _args.seed_int(ex.get("seed"), "seed")
    ex["seed"] = master
    _fill_seeds(spec, lambda path, bits: derive_seed(master, 0, path, bits=bits))
    return _build(spec, object=object, probe=probe, progress=progress)


# --------------------------------------------------------------------------- provenance -> spec


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _without_geometry(params: dict[str, Any], geometry: Any) -> dict[str, Any]:
    if geometry is not None and params.get("geometry") == geometry:
        params = {k: v for k, v in params.items() if k != "geometry"}
    return params


def spec_from_provenance(record: dict[str, Any]) -> dict[str, Any]:
    """The recipe document (every parameter and seed explicit) of a provenance record.

    :func:`plan` on it rebuilds the same experiment with the same noise seed: its simulation
    equals the recorded dataset bit for bit.

    Raises
    ------
    ProvenanceError (ValueError)
        See :func:`ptyfast.model.provenance.check`.
    """
    _provenance.check(record)
    exp = record["experiment"]
    g = exp["geometry"]
    doc: dict[str, Any] = {
        "experiment": {
            "name": (record.get("campaign") or {}).get("name", "experiment"),
            "photons": exp["photons"],
            "seed": record["simulation"]["seed"],
            "patches": record["simulation"]["patches"],
        }
    }
    if g is not None:
        doc["geometry"] = dict(g)
    if "recipe" in exp["object"]:
        r = exp["object"]["recipe"]
        params = dict(r["params"])
        if params.get("amplitude") is None:
            params["amplitude"] = "raw"
        doc["object"] = {"family": r["family"], **_drop_none(params)}
    else:
        doc["object"] = {"array": dict(exp["object"]["array"])}
    if "recipe" in exp["probe"]:
        r = exp["probe"]["recipe"]
        spec = {"builder": r["builder"], **_drop_none(_without_geometry(r["params"], g))}
        ops = [_drop_none(_without_geometry(op, g)) for op in r["operations"]]
        if ops:
            spec["operations"] = ops
        doc["probe"] = spec
    else:
        doc["probe"] = {"array": dict(exp["probe"]["array"])}
    s = exp["scan"]
    scan = {"builder": s["builder"], **_drop_none(s["params"])}
    if s["errors"]:
        scan["errors"] = [_drop_none(op) for op in s["errors"]]
    doc["scan"] = scan
    det = {k: v for k, v in exp["detector"].items() if k not in ("format", "version")}
    default = Detector().to_dict()
    det = {k: v for k, v in det.items() if v is not None and v != default.get(k)}
    if det:
        doc["detector"] = det
    return doc


def _check_campaign_draws(record: dict[str, Any], doc: dict[str, Any]) -> None:
    """The campaign ``doc`` written from ``record`` must draw the recorded experiment (the
    same parameters and noise seed at the recorded index): else the record was edited."""
    from .campaign import Campaign

    c = record["campaign"]
    try:
        planned = Campaign.from_dict(doc).plan(c["index"])
    except (TypeError, ValueError) as exc:
        raise _provenance.ProvenanceError(
            f"provenance['campaign'] cannot be rebuilt: {exc}"
        ) from None
    drawn = json.loads(json.dumps(planned.provenance()["experiment"], allow_nan=False))
    if drawn != record["experiment"] or planned.seed != record["simulation"]["seed"]:
        raise _provenance.ProvenanceError(
            f"provenance['campaign'] (seed {c['seed']!r}, index {c['index']!r}) must draw the "
            f"recorded experiment and noise seed, got another one: an edited or corrupted record"
        )


def from_provenance(record: dict[str, Any] | Dataset, *, campaign: bool = False) -> str:
    """A dataset's provenance written back as a TOML recipe.

    Parameters
    ----------
    record : dict or Dataset
        A provenance record (``dataset.provenance``) or a dataset.
    campaign : bool, optional
        For an experiment drawn by a campaign: write the whole campaign (its spec, seed and
        size) instead of this one experiment.

    Returns
    -------
    str
        TOML text; ``ptyfast simulate --recipe`` on it regenerates the dataset (or, with
        ``campaign=True``, the campaign) bit for bit.

    Raises
    ------
    ProvenanceError (ValueError)
        Not a replayable record; ``campaign=True`` for a record without a campaign, or whose
        campaign (spec, seed, index) does not draw the recorded experiment.
    """
    if isinstance(record, Dataset):
        record = record.provenance
    _provenance.check(record)
    version = record["ptyfast_version"]
    if campaign:
        c = record.get("campaign")
        if not c:
            raise _provenance.ProvenanceError(
                "campaign=True needs the provenance of an experiment drawn by a campaign"
            )
        doc = {
            "campaign": {
                "name": c["name"],
                "seed": c["seed"],
                "n_experiments": c["n_experiments"],
            },
            **loads(c["spec"], where="provenance['campaign']['spec']"),
        }
        _check_campaign_draws(record, doc)
        head = (
            f"ptyfast campaign recipe, written from the provenance of experiment "
            f"{c['index']} (ptyfast {version}).\nptyfast simulate --recipe FILE -o DIR/ "
            f"regenerates every experiment bit for bit."
        )
        return dumps(doc, comment=head)
    doc = spec_from_provenance(record)
    head = (
        f"ptyfast experiment recipe, written from a dataset's provenance (ptyfast {version}).\n"
        f"Every parameter and seed is explicit: ptyfast simulate --recipe FILE regenerates the "
        f"dataset bit for bit."
    )
    return dumps(doc, comment=head)


# --------------------------------------------------------------------------- template


_EXAMPLE = """\
# ptyfast recipe: one experiment, or a campaign of many.
#
#   ptyfast simulate --recipe recipe.toml -o data.npz        (an experiment)
#   ptyfast simulate --recipe recipe.toml -o out/            (a campaign: one file each)
#
# Every section but [object], [probe] and [scan] is optional; parameters left out take the
# builders' defaults (see ptyfast.objects, ptyfast.probes, ptyfast.scans, ptyfast.Detector).
# Units are in the names: _px object pixels, _m metres, _eV electronvolts.

# A campaign draws many experiments: with this section, any value below may be a
# distribution (remove the section for a single experiment, and replace every
# distribution by a value):
#   {fixed = v}                      v, as v itself (a distribution inside v is drawn)
#   {uniform = [lo, hi]}             uniform in [lo, hi]
#   {log_uniform = [lo, hi]}         log-uniform in [lo, hi], 0 < lo
#   {normal = [mean, sd], bounds = [lo, hi]}   normal, truncated to the bounds (optional)
#   {randint = [lo, hi]}             an integer in lo..hi (both included)
#   {choice = [a, b, ...], weights = [...]}    one of the options (tables too: a choice of
#                                    whole sections; weights optional)
[campaign]
name = "example"                   # files <name>-00000.npz, ...: no / or \\, not . or ..
n_experiments = 4
seed = 2024                        # master seed: every seed left out is derived from it

[experiment]
photons = {log_uniform = [1e4, 1e8]}   # mean photons per pattern reaching the detector
# seed = 7                         # the noise seed (derived per experiment when left out)
patches = false                    # also store the object patches (ground truth)

[geometry]                         # optional: pixels get a size in metres
energy_eV = 8000.0
distance_m = 2.0
detector_pixel_m = 75e-6
N = 64                             # pattern and probe size

[object]                           # lines | grf | points | dead_leaves
family = {choice = ["dead_leaves", "grf"]}
shape = [256, 256]
amplitude = [1.0, 0.6]             # amplitude at texture 0 and 1 ("raw": PtychoPINN's)
phase = [0.0, 1.2]                 # phase (radians) at texture 0 and 1
# seed = 1                         # derived when left out

[probe]                            # disk | gaussian | super_gaussian | fresnel_zone_plate | zernike
builder = "fresnel_zone_plate"     # N and geometry come from [geometry]
diameter_m = 60e-6
outer_zone_m = 100e-9
central_stop = 0.3
defocus_m = {uniform = [0.5e-3, 1.5e-3]}     # metres downstream of the focus

[[probe.operations]]               # applied in order: propagate, modes
op = "modes"
n = 3                              # incoherent modes (partial coherence)
decay = 0.5                        # mode k carries a power ∝ decay**k

[scan]                             # raster | hexagonal | fermat_spiral | concentric |
builder = "fermat_spiral"          # lissajous | random_uniform | custom
n = 200
step_px = {uniform = [3.0, 6.0]}

[[scan.errors]]                    # applied in order: jitter, drift, affine
op = "jitter"
sigma_px = {uniform = [0.0, 0.5]}  # Gaussian position error per coordinate
# seed = 5                         # derived when left out

[[scan.errors]]
op = "drift"
velocity_px = [0.002, -0.001]      # per position

[detector]                         # optional (ideal: exact Poisson counts, float32)
preset = {choice = ["eiger", "integrating"]}   # ideal | eiger | pilatus | integrating
beamstop_radius_px = 2.0
qe = {uniform = [0.8, 1.0]}
"""


def example() -> str:
    """The commented template recipe (``ptyfast recipe --example``): a campaign with every
    section; removing ``[campaign]`` and the distributions makes it one experiment.

    Examples
    --------
    >>> from ptyfast import Campaign
    >>> Campaign.from_dict(loads(example())).n_experiments
    4
    """
    return _EXAMPLE

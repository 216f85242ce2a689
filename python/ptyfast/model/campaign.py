"""``Campaign``: many experiments drawn from distributions, each one replayable.

A campaign is an experiment recipe (:mod:`ptyfast.model.recipes`: sections ``experiment``,
``geometry``, ``object``, ``probe``, ``scan``, ``detector``) in which any value may be a
**distribution**, plus a size and a master seed. Experiment ``i`` resolves every distribution
with its own keyed stream and fills every seed left out; its provenance records the values
drawn and the resolved recipes, so :func:`ptyfast.replay` regenerates it bit for bit without
the campaign (and the campaign's spec, as TOML text, so the whole campaign can be written back
out: :func:`ptyfast.model.recipes.from_provenance` with ``campaign=True``).

=============================================  ===============================================
distribution                                   draw
=============================================  ===============================================
``{"fixed": v}`` (or ``v`` itself)             ``v`` (resolved like ``v`` itself: a
                                               distribution inside it is drawn)
``{"uniform": [lo, hi]}``                      ``rng.uniform(lo, hi)`` (``lo <= hi``, finite)
``{"log_uniform": [lo, hi]}``                  ``exp(rng.uniform(ln lo, ln hi))``, ``0 < lo <=
                                               hi``
``{"normal": [mean, sd], "bounds": [lo, hi]}`` a normal truncated to ``[lo, hi]`` (bounds
                                               optional, may be ``±inf``): ``Φ⁻¹(u)`` with
                                               ``u = rng.uniform(Φ(a), Φ(b))``; ``sd >= 0``
``{"randint": [lo, hi]}``                      an integer in ``lo..hi`` (both included)
``{"choice": [a, b, ...], "weights": [...]}``  ``options[rng.choice(n, p=w / sum(w))]``
                                               (relative weights ``w >= 0``, any positive
                                               sum; none: equal), then resolved itself (a
                                               choice of whole tables, e.g. object families
                                               with their parameters)
=============================================  ===============================================

**Keyed draws.** The value at path ``p`` (e.g. ``"probe.defocus_m"``,
``"scan.errors[0].sigma_px"``) of experiment ``i`` is drawn from
``Generator(PCG64(SeedSequence(seed, spawn_key=(i, h(p)))))`` (``h`` as in
:func:`ptyfast.model.recipes.derive_seed`): no draw depends on another, on the order of the
keys or on how many experiments are drawn, and seeds left out are derived the same way.

**A choice of distributions.** An option of a choice that is itself a distribution
(``{"choice": [{"uniform": [0, 1]}, {"uniform": [10, 11]}], "weights": [1, 1]}``) draws its
value from its own stream, keyed by the path ``p.choice[k]`` (``k`` the option drawn), so the
value is independent of the draw that picked the option; the value is recorded at ``p``. (Until
2026-12-03 it reused the choice's stream, so that with weights option ``k`` only covered the
part of its range matching its share of the weights: COMPATIBILITY.md.)

**Validation** happens when the campaign is made: every distribution is checked (an
impossible range, ``lo > hi``, a log-uniform reaching 0, a negative ``sd``, bounds that hold
no probability, an empty choice, bad weights, a key beside a distribution's kind that is not
its modifier, e.g. a misspelt ``bounds``), values of known parameters are checked against
their domains (``photons > 0``, ``0 < qe <= 1``, ``sigma_px >= 0``, ...: a normal without
bounds for a positive parameter is refused), each error naming the path; then experiment 0 is
checked as :meth:`Campaign.check` checks every experiment: drawn and built from its recipes
(its probe array too, which is small; not the object array, whose recipe and shape are
checked), with the joint checks (probe, detector and every scan position against the
object's shape). A campaign's run (:meth:`Campaign.simulate_to`, ``ptyfast simulate
--recipe``, :func:`ptyfast.distributed.simulate`) checks every experiment this way before
simulating any, so a draw that cannot work (e.g. a step that takes the scan off the object in
experiment 11) stops it before any file is written. What needs an object's values (an object
zero under every position, photons that would overflow float32) is checked when that
experiment is built.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from .. import _kernels
from .._progress import Phases
from . import _args
from .dataset import Dataset
from .recipes import (
    Planned,
    RecipeError,
    _build,
    _check_sections,
    _fill_seeds,
    derive_seed,
    dumps,
    load,
)

__all__ = ["Campaign", "DISTRIBUTIONS", "find_distribution", "draw"]

#: The distribution kinds (the one key of a distribution table).
DISTRIBUTIONS = ("fixed", "uniform", "log_uniform", "normal", "randint", "choice")
_MODIFIERS = {"normal": {"bounds"}, "choice": {"weights"}}
#: Largest campaign.
MAX_EXPERIMENTS = 10_000_000

_INF = math.inf
#: Largest |z| a truncated normal draws (beyond any float64 uniform's ndtri but ±inf).
_MAX_Z = 40.0
# (section, parameter) -> (low, high, low inclusive, high inclusive): the values a
# distribution there may take. Checked on the distribution's support.
_DOMAINS: dict[tuple[str, str], tuple[float, float, bool, bool]] = {
    ("experiment", "photons"): (0.0, _INF, False, False),
    ("geometry", "energy_eV"): (0.0, _INF, False, False),
    ("geometry", "distance_m"): (0.0, _INF, False, False),
    ("geometry", "detector_pixel_m"): (0.0, _INF, False, False),
    ("geometry", "N"): (2.0, _INF, True, False),
    ("probe", "N"): (2.0, _INF, True, False),
    ("probe", "sigma_px"): (0.0, _INF, False, False),
    ("probe", "radius_px"): (0.0, _INF, False, False),
    ("probe", "diameter_m"): (0.0, _INF, False, False),
    ("probe", "outer_zone_m"): (0.0, _INF, False, False),
    ("probe", "central_stop"): (0.0, 1.0, True, False),
    ("probe", "n"): (1.0, 64.0, True, True),
    ("probe", "decay"): (0.0, 1.0, False, True),
    ("object", "radius_min_px"): (0.0, _INF, False, False),
    ("object", "radius_max_px"): (0.0, _INF, False, False),
    ("scan", "n"): (1.0, _INF, True, False),
    ("scan", "rows"): (1.0, _INF, True, False),
    ("scan", "cols"): (1.0, _INF, True, False),
    ("scan", "n_rings"): (0.0, _INF, True, False),
    ("scan", "step_px"): (0.0, _INF, False, False),
    ("scan", "step_y_px"): (0.0, _INF, False, False),
    ("scan", "width_px"): (0.0, _INF, False, False),
    ("scan", "height_px"): (0.0, _INF, False, False),
    ("scan", "sigma_px"): (0.0, _INF, True, False),
    ("scan", "random_walk_px"): (0.0, _INF, True, False),
    ("detector", "qe"): (0.0, 1.0, False, True),
    ("detector", "gain"): (0.0, _INF, False, False),
    ("detector", "offset"): (0.0, _INF, True, False),
    ("detector", "read_noise"): (0.0, _INF, True, False),
    ("detector", "dark"): (0.0, _INF, True, False),
    ("detector", "psf_sigma_px"): (0.0, _INF, True, False),
    ("detector", "beamstop_radius_px"): (0.0, _INF, True, False),
    ("detector", "dead_fraction"): (0.0, 1.0, True, True),
    ("detector", "hot_fraction"): (0.0, 1.0, True, True),
}


def _file_stem(arg: str, v: Any) -> str:
    """``v`` if it can be part of one file name in the output directory: a non-empty str
    without a path separator or NUL, not ``.`` or ``..``, at most 200 characters (a campaign's
    ``name`` must not write outside the directory it is given)."""
    if not isinstance(v, str):
        raise TypeError(f"{arg} must be a str, got {type(v).__name__} {v!r}")
    seps = {"/", "\\", "\0"} | {c for c in (os.sep, os.altsep) if c}
    bad = sorted(c for c in seps if c in v)
    if not v or v in (".", "..") or bad or len(v) > 200:
        why = (
            "is empty"
            if not v
            else f"contains {bad[0]!r}"
            if bad
            else f"has {len(v)} characters"
            if len(v) > 200
            else "is a relative directory"
        )
        raise ValueError(
            f"{arg} must be usable in a file name (no path separator or NUL, not '.' or '..', "
            f"at most 200 characters), got {v!r}, which {why}"
        )
    return v


class CampaignError(RecipeError):
    """An impossible campaign specification; the message names the path."""


# --------------------------------------------------------------------------- distributions


def _kind(v: Any) -> str | None:
    """The distribution kind of a table, or None when it is a plain table."""
    if not isinstance(v, dict):
        return None
    kinds = [k for k in v if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    if set(v) - {kind} - _MODIFIERS.get(kind, set()):
        return None
    return kind


def _malformed(v: Any) -> str | None:
    """Why a table that names a distribution kind is not a distribution (None: it is one, or
    names none): a second kind, or a key that is neither its kind nor one of its modifiers (a
    misspelt ``bounds`` or ``weights`` would otherwise make it a plain table, refused later
    as a parameter value without naming the key)."""
    if not isinstance(v, dict) or _kind(v) is not None:
        return None
    kinds = [k for k in v if k in DISTRIBUTIONS]
    if not kinds:
        return None
    if len(kinds) > 1:
        return f"a distribution has one kind among {list(DISTRIBUTIONS)}, got {kinds}"
    known = [kinds[0], *sorted(_MODIFIERS.get(kinds[0], set()))]
    unknown = sorted(str(k) for k in set(v) - set(known))
    return f"a {kinds[0]} distribution takes the key(s) {known}, got unknown key(s) {unknown}"


def find_distribution(doc: Any, path: str = "") -> str | None:
    """The path of the first distribution in a document (None when there is none); ``path``
    is the document's own path, prefixed to what is found under it."""
    if _kind(doc) is not None:
        return path or "(document)"
    if isinstance(doc, dict):
        for k, v in doc.items():
            found = find_distribution(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found = find_distribution(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _real(path: str, what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise CampaignError(f"{path}: {what} must be a number, got {v!r}")
    try:
        return float(v)
    except OverflowError:
        raise CampaignError(
            f"{path}: {what} must be a number within float64's range, got an integer of "
            f"{int(v).bit_length()} bits"
        ) from None


def _pair(path: str, kind: str, v: Any) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise CampaignError(f"{path}: {kind} must be a pair [a, b], got {v!r}")
    return _real(path, kind, v[0]), _real(path, kind, v[1])


def _check_distribution(path: str, kind: str, d: dict[str, Any]) -> None:
    """Impossible parameters of one distribution, named by ``path``."""
    if kind == "fixed":
        return
    if kind in ("uniform", "log_uniform"):
        lo, hi = _pair(path, kind, d[kind])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise CampaignError(f"{path}: {kind} bounds must be finite, got [{lo}, {hi}]")
        if lo > hi:
            raise CampaignError(f"{path}: {kind} needs low <= high, got [{lo}, {hi}]")
        if kind == "log_uniform" and lo <= 0:
            raise CampaignError(f"{path}: log_uniform needs 0 < low, got [{lo}, {hi}]")
        if kind == "uniform" and not math.isfinite(hi - lo):
            raise CampaignError(
                f"{path}: uniform width high - low must be finite (float64), got [{lo}, {hi}]"
            )
    elif kind == "randint":
        v = d[kind]
        ok = isinstance(v, (list, tuple)) and len(v) == 2
        if not ok or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
            raise CampaignError(f"{path}: randint must be a pair of integers [lo, hi], got {v!r}")
        if v[0] > v[1]:
            raise CampaignError(f"{path}: randint needs lo <= hi, got {v!r}")
        if v[0] < -(2**63) or v[1] > 2**63 - 1:
            raise CampaignError(f"{path}: randint bounds must fit int64, got {v!r}")
    elif kind == "normal":
        mean, sd = _pair(path, kind, d[kind])
        if not (math.isfinite(mean) and math.isfinite(sd)) or sd < 0:
            raise CampaignError(
                f"{path}: normal needs a finite mean and sd >= 0, got [{mean}, {sd}]"
            )
        if not math.isfinite(abs(mean) + _MAX_Z * sd):
            raise CampaignError(
                f"{path}: normal mean ± {_MAX_Z:g} sd must be finite (float64), got [{mean}, {sd}]"
            )
        lo, hi = _pair(path, "bounds", d.get("bounds", [-_INF, _INF]))
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise CampaignError(f"{path}: normal bounds need low <= high, got [{lo}, {hi}]")
        if sd == 0:
            if not lo <= mean <= hi:
                raise CampaignError(
                    f"{path}: normal with sd 0 is its mean {mean}, outside the bounds [{lo}, {hi}]"
                )
        else:
            pa, pb = special.ndtr((lo - mean) / sd), special.ndtr((hi - mean) / sd)
            if not pb - pa > 1e-12:
                raise CampaignError(
                    f"{path}: the bounds [{lo}, {hi}] hold no probability of normal({mean}, "
                    f"{sd}) (mass {pb - pa:.3g})"
                )
    else:  # choice
        opts = d[kind]
        if not isinstance(opts, (list, tuple)) or len(opts) == 0:
            raise CampaignError(f"{path}: choice needs a non-empty list of options, got {opts!r}")
        if "weights" in d:
            w = d["weights"]
            if not isinstance(w, (list, tuple)) or len(w) != len(opts):
                raise CampaignError(
                    f"{path}: weights must be {len(opts)} numbers (one per option), got {w!r}"
                )
            ws = [_real(path, "weights", x) for x in w]
            total = sum(ws)
            if any(not math.isfinite(x) or x < 0 for x in ws) or not 0 < total < _INF:
                raise CampaignError(
                    f"{path}: weights must be finite, >= 0 and not all 0, got {w!r}"
                )


def _support(kind: str, d: dict[str, Any]) -> list[tuple[float, float]] | None:
    """Intervals the distribution can draw from (None: not numeric)."""
    if kind == "fixed":
        v = d["fixed"]
        return [(float(v), float(v))] if _numeric(v) else None
    if kind in ("uniform", "log_uniform", "randint"):
        lo, hi = d[kind]
        return [(float(lo), float(hi))]
    if kind == "normal":
        mean, sd = d["normal"]
        lo, hi = d.get("bounds", [-_INF, _INF])
        if sd == 0:
            return [(float(mean), float(mean))]
        return [(float(lo), float(hi))]
    return None


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _in_domain(lo: float, hi: float, dom: tuple[float, float, bool, bool]) -> bool:
    a, b, a_in, b_in = dom
    # An infinite bound of a truncated normal never draws infinity: only finite values.
    ok_lo = lo > a or ((a_in or math.isinf(a)) and lo == a)
    ok_hi = hi < b or ((b_in or math.isinf(b)) and hi == b)
    return ok_lo and ok_hi


def _dom_text(dom: tuple[float, float, bool, bool]) -> str:
    a, b, a_in, b_in = dom
    return f"{'[' if a_in else '('}{a:g}, {b:g}{']' if b_in else ')'}"


def _section(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].split("[", 1)[0]


#: Deepest nesting of tables and lists a spec may have (a recipe needs a handful of levels).
MAX_DEPTH = 32


def _check_depth(node: Any, where: str) -> None:
    """Refuses tables and lists nested deeper than :data:`MAX_DEPTH` (iteratively, so that a
    hostile document cannot exhaust the interpreter's recursion limit first)."""
    stack = [(node, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise CampaignError(
                    f"{where} must nest tables and lists at most {MAX_DEPTH} levels deep, got "
                    "deeper nesting"
                )
            items = v.values() if isinstance(v, dict) else v
            stack.extend((x, depth + 1) for x in items)


def _validate(node: Any, path: str) -> None:
    """Check every distribution below ``node`` and the domains of known parameters."""
    bad = _malformed(node)
    if bad is not None:
        raise CampaignError(f"{path or '(document)'}: {bad}")
    kind = _kind(node)
    dom = _DOMAINS.get((_section(path), _leaf(path)))
    if kind is not None:
        _check_distribution(path, kind, node)
        if kind == "choice":
            for i, opt in enumerate(node["choice"]):
                if isinstance(opt, (dict, list)):
                    _validate(opt, f"{path}")
                elif dom is not None and _numeric(opt) and not _in_domain(opt, opt, dom):
                    raise CampaignError(
                        f"{path}: choice option {i} = {opt!r} is outside the parameter's "
                        f"domain {_dom_text(dom)}"
                    )
            return
        if kind == "fixed":
            _validate(node["fixed"], path)
        sup = _support(kind, node)
        if dom is not None and sup is not None:
            for lo, hi in sup:
                if not _in_domain(lo, hi, dom):
                    extra = (
                        "; give bounds within it"
                        if kind == "normal" and "bounds" not in node
                        else ""
                    )
                    raise CampaignError(
                        f"{path}: {kind} {node[kind]!r} can draw values in [{lo:g}, {hi:g}], "
                        f"outside the parameter's domain {_dom_text(dom)}{extra}"
                    )
        return
    if isinstance(node, dict):
        for k, v in node.items():
            _validate(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _validate(v, f"{path}[{i}]")
    elif dom is not None and _numeric(node) and not _in_domain(node, node, dom):
        raise CampaignError(f"{path} = {node!r} is outside the parameter's domain {_dom_text(dom)}")


def _preset_keeps(path: str, key: str, preset: Any) -> None:
    """Refuse ``key = None`` beside ``preset`` when a preset it may name sets ``key``: written
    out (the key left out) it would be the preset's value, not ``None``."""
    from .detector import Detector

    names = preset["choice"] if _kind(preset) == "choice" else [preset]
    for name in names:
        try:
            value = Detector.preset(name).to_dict().get(key)
        except (TypeError, ValueError):  # not a preset: refused when the detector is built
            continue
        if value is not None:
            raise CampaignError(
                f"{path}: None cannot be written to the campaign's TOML (TOML has no None), and "
                f"leaving the key out means preset {name!r}'s {key} = {value!r}: give a value"
            )


def _writable(node: Any, path: str) -> Any:
    """``node`` as its TOML (:func:`dumps`) will read back: ``None`` for an ``[object]``
    ``amplitude`` (the raw texture) becomes ``"raw"``, which builds the same object; ``None``
    elsewhere as a table's value stays (written by leaving the key out: the default); ``None``
    in a list, as a choice's option or as a distribution's parameter is refused, since TOML
    has no ``None`` and the campaign's recorded spec would describe another campaign."""

    def amplitude(p: str) -> bool:
        return _section(p) == "object" and p.endswith(".amplitude")

    def none(p: str, what: str) -> Any:
        if amplitude(p):
            return "raw"
        raise CampaignError(
            f"{p or '(document)'}: {what} None cannot be written to the campaign's TOML (TOML has "
            f"no None): leave the key out for its default, or give a value"
        )

    if isinstance(node, dict):
        kind = _kind(node)
        out: dict[str, Any] = {}
        for k, v in node.items():
            p = path if kind is not None else (f"{path}.{k}" if path else str(k))
            if v is None:
                out[k] = none(p, f"{k} =") if kind is not None else ("raw" if amplitude(p) else v)
                if kind is None and k != "preset" and "preset" in node:
                    _preset_keeps(p, k, node["preset"])
            elif kind == "choice" and k == "choice" and isinstance(v, list):
                out[k] = [none(p, "a choice option") if x is None else _writable(x, p) for x in v]
            else:
                out[k] = _writable(v, p)
        return out
    if isinstance(node, list):
        return [
            none(f"{path}[{i}]", "a list item") if x is None else _writable(x, f"{path}[{i}]")
            for i, x in enumerate(node)
        ]
    return node


def _json_safe(v: Any) -> Any:
    """A drawn value for JSON (non-finite floats as their TOML spelling)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _rng(seed: int, index: int, path: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big")
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(int(index), h)))
    )


def draw(dist: Any, *, seed: int, index: int, path: str) -> Any:
    """One value of a distribution table (module docstring), keyed by ``(seed, index, path)``.

    A plain value is returned as it is; a choice's option is itself resolved (its tables and
    lists, recursively, paths extended). Use :meth:`Campaign.plan` for whole experiments.

    Examples
    --------
    >>> v = draw({"uniform": [1.0, 2.0]}, seed=0, index=0, path="x")
    >>> 1.0 <= v <= 2.0, v == draw({"uniform": [1.0, 2.0]}, seed=0, index=0, path="x")
    (True, True)
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    _check_depth(dist, "dist")
    _validate(dist, path)
    seed = _args.integer("seed", seed, minimum=0, maximum=2**64 - 1)
    index = _args.integer("index", index, minimum=0, maximum=2**63 - 1)
    draws: dict[str, Any] = {}
    return _resolve(dist, seed, index, path, draws)


def _resolve(
    node: Any, seed: int, index: int, path: str, draws: dict[str, Any], key: str | None = None
) -> Any:
    """``node`` resolved at ``path`` (recorded there in ``draws``); a distribution draws from
    the stream keyed by ``key`` (default: ``path``)."""
    kind = _kind(node)
    if kind is None:
        if isinstance(node, dict):
            return {
                k: _resolve(v, seed, index, f"{path}.{k}" if path else str(k), draws)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [_resolve(v, seed, index, f"{path}[{i}]", draws) for i, v in enumerate(node)]
        return node
    if kind == "fixed":
        return _resolve(node["fixed"], seed, index, path, draws, key)
    rng = _rng(seed, index, path if key is None else key)
    if kind == "uniform":
        lo, hi = node[kind]
        value: Any = float(rng.uniform(lo, hi))
    elif kind == "log_uniform":
        lo, hi = node[kind]
        value = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        value = min(max(value, float(lo)), float(hi))  # exp(log(x)) may leave by an ulp
    elif kind == "randint":
        lo, hi = node[kind]
        value = int(rng.integers(lo, hi, endpoint=True))
    elif kind == "normal":
        mean, sd = (float(x) for x in node[kind])
        lo, hi = (float(x) for x in node.get("bounds", [-_INF, _INF]))
        if sd == 0:
            value = mean
        else:
            pa, pb = special.ndtr((lo - mean) / sd), special.ndtr((hi - mean) / sd)
            # ndtri(0) is -inf (a uniform draw of exactly 0): the largest finite |z| instead.
            z = min(max(float(special.ndtri(rng.uniform(pa, pb))), -_MAX_Z), _MAX_Z)
            value = min(max(mean + sd * z, lo), hi)
    else:
        opts = node["choice"]
        w = node.get("weights")
        p = None if w is None else np.asarray(w, np.float64) / float(np.sum(w))
        i = int(rng.choice(len(opts), p=p))
        chosen = opts[i]
        if isinstance(chosen, (dict, list)):
            draws[f"{path}.choice"] = i
            # An option that is itself a distribution draws from its own stream, not the
            # one that picked it (which would tie the value to the option drawn).
            own = f"{path}.choice[{i}]" if _kind(chosen) is not None else None
            return _resolve(chosen, seed, index, path, draws, own)
        draws[path] = chosen
        return chosen
    draws[path] = value
    return value


# --------------------------------------------------------------------------- the campaign


class Campaign:
    """Many experiments drawn from distributions; each simulated, recorded and replayable.

    Parameters
    ----------
    spec : dict
        An experiment recipe (sections ``experiment``, ``geometry``, ``object``, ``probe``,
        ``scan``, ``detector``; :mod:`ptyfast.model.recipes`) whose values may be
        distributions (module docstring).
    n_experiments : int
        How many experiments, ``1 ..`` :data:`MAX_EXPERIMENTS`.
    seed : int, numpy.random.Generator or None
        The master seed (``None``: fresh entropy, resolved and recorded as ``.seed``).
    name : str, optional
        A label, recorded and used for file names by :meth:`simulate_to`: non-empty, at most
        200 characters, without a path separator or NUL, not ``.`` or ``..`` (so that no
        name writes outside the directory given).

    Raises
    ------
    CampaignError (ValueError)
        An impossible distribution or a value outside its parameter's domain (the path
        named), unknown sections, tables or lists nested more than :data:`MAX_DEPTH` levels,
        ``None`` where the campaign's TOML cannot hold it (a list item, a choice's option, a
        distribution's parameter, a detector parameter a preset beside it sets; ``None`` as
        a table's value is otherwise the default, left out when written, and ``None`` as
        ``[object] amplitude``, the raw texture, is kept as ``"raw"``), or experiment 0
        failing :meth:`check` (its draws named).
    ValueError, TypeError
        ``n_experiments``, ``seed`` or ``name`` out of range or of the wrong type.

    Examples
    --------
    >>> import ptyfast
    >>> spec = {
    ...     "experiment": {"photons": {"log_uniform": [1e4, 1e6]}},
    ...     "object": {"family": {"choice": ["grf", "dead_leaves"]}, "shape": 64},
    ...     "probe": {"builder": "gaussian", "N": 16, "sigma_px": {"uniform": [2.0, 4.0]}},
    ...     "scan": {"builder": "fermat_spiral", "n": 20, "step_px": 2.0,
    ...              "errors": [{"op": "jitter", "sigma_px": {"uniform": [0.0, 0.5]}}]},
    ... }
    >>> c = ptyfast.Campaign(spec, n_experiments=3, seed=1)
    >>> ds = c.simulate(2)
    >>> again = ptyfast.replay(ds.provenance)
    >>> bool((again.diffraction == ds.diffraction).all()), ds.provenance["campaign"]["index"]
    (True, 2)
    """

    def __init__(
        self,
        spec: dict[str, Any],
        *,
        n_experiments: int,
        seed: Any = None,
        name: str = "campaign",
    ) -> None:
        if not isinstance(spec, dict):
            raise TypeError(f"spec must be a dict of sections, got {type(spec).__name__}")
        if "campaign" in spec:
            raise CampaignError(
                "spec must not have a [campaign] section: pass n_experiments, seed and name "
                "(Campaign.from_dict reads a whole recipe document)"
            )
        _check_depth(spec, "spec")
        _check_sections(spec, where="campaign spec")
        _file_stem("name", name)
        self.n_experiments = _args.integer(
            "n_experiments", n_experiments, minimum=1, maximum=MAX_EXPERIMENTS
        )
        self.name = _file_stem("name", name)
        self.seed = _args.seed_int(seed, "seed")
        self.spec = _writable(copy.deepcopy(spec), "")
        _validate(self.spec, "")
        # Experiment 0 checked without its object array, so that errors surface now.
        self._plan(0, build_arrays=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Campaign:
        """A campaign from a recipe document with a ``[campaign]`` section (``name``,
        ``n_experiments``, ``seed``).

        Raises
        ------
        CampaignError (ValueError)
            No or a malformed ``[campaign]`` section; see :class:`Campaign`.
        """
        if not isinstance(doc, dict) or not isinstance(doc.get("campaign"), dict):
            raise CampaignError("a campaign recipe needs a [campaign] section")
        head = doc["campaign"]
        unknown = sorted(set(head) - {"name", "n_experiments", "seed"})
        if unknown:
            raise CampaignError(
                f"[campaign] has unknown key(s) {unknown}; known ['n_experiments', 'name', 'seed']"
            )
        if "n_experiments" not in head:
            raise CampaignError("[campaign] needs n_experiments")
        spec = {k: v for k, v in doc.items() if k != "campaign"}
        return cls(
            spec,
            n_experiments=head["n_experiments"],
            seed=head.get("seed"),
            name=head.get("name", "campaign"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Campaign:
        """:meth:`from_dict` of a TOML recipe file (:func:`ptyfast.model.recipes.load`)."""
        return cls.from_dict(load(path))

    def to_dict(self) -> dict[str, Any]:
        """The recipe document: ``[campaign]`` (with the resolved seed) and the spec."""
        return {
            "campaign": {
                "name": self.name,
                "n_experiments": self.n_experiments,
                "seed": self.seed,
            },
            **copy.deepcopy(self.spec),
        }

    def to_toml(self) -> str:
        """:meth:`to_dict` as TOML (:func:`ptyfast.model.recipes.dumps`)."""
        return dumps(self.to_dict(), comment=f"ptyfast campaign {self.name!r}")

    def __len__(self) -> int:
        return self.n_experiments

    def __repr__(self) -> str:
        return f"Campaign({self.name!r}, n_experiments={self.n_experiments}, seed={self.seed})"

    def _index(self, index: Any) -> int:
        return _args.integer("index", index, minimum=0, maximum=self.n_experiments - 1)

    def _indices(self, indices: Any) -> range | list[int]:
        """Every experiment if ``indices`` is None, else each of ``indices`` checked."""
        if indices is None:
            return range(self.n_experiments)
        if isinstance(indices, str | bytes) or not hasattr(indices, "__iter__"):
            raise TypeError(
                f"indices must be an iterable of experiment indices or None, got "
                f"{type(indices).__name__}"
            )
        return [self._index(i) for i in indices]

    def resolve(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Experiment ``index``'s recipe (every distribution drawn, every seed filled) and
        the values drawn (``{path: value}``; a choice of tables as ``{path.choice: i}``)."""
        i = self._index(index)
        draws: dict[str, Any] = {}
        spec = _resolve(self.spec, self.seed, i, "", draws)
        # A section drawn by a distribution ({fixed = 1.0}) must still be a table.
        _check_sections(spec, where=f"campaign {self.name!r} experiment {i} (drawn)")
        ex = spec.setdefault("experiment", {})
        if ex.get("seed") is None:
            ex["seed"] = derive_seed(self.seed, i, "experiment.seed")
        _fill_seeds(spec, lambda path, bits: derive_seed(self.seed, i, path, bits=bits))
        return spec, draws

    def plan(self, index: int, *, progress: bool = False) -> Planned:
        """Experiment ``index``, built and ready to simulate (:class:`recipes.Planned`);
        ``progress``: bars over building it (``Experiment(progress=True)``).

        Raises
        ------
        RecipeError (ValueError)
            The drawn experiment cannot be built (e.g. a drawn scan leaves the object); the
            message names the experiment and its draws.
        """
        on = _kernels._flag("progress", progress)
        return self._plan(self._index(index), build_arrays=True, progress=on)

    def _plan(self, i: int, *, build_arrays: bool, progress: bool = False) -> Planned:
        spec, draws = self.resolve(i)
        block = {
            "name": self.name,
            "seed": self.seed,
            "index": i,
            "n_experiments": self.n_experiments,
            "draws": {k: _json_safe(v) for k, v in draws.items()},
            # TOML text: JSON has no infinities (e.g. open normal bounds), TOML has.
            "spec": dumps(self.spec),
        }
        try:
            return _build(spec, campaign=block, build_arrays=build_arrays, progress=progress)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"campaign {self.name!r} experiment {i} (draws {draws}): {exc}"
            ) from None

    def check(self, indices: Any = None, *, progress: bool = False) -> None:
        """Check experiments (all, or ``indices``) before any is simulated: each is drawn and
        built as :meth:`plan` builds it, except for its object array (only the object's recipe
        and shape are checked), so a drawn value that cannot work (a scan that leaves the
        object, a probe larger than it, a beamstop larger than the pattern, ...) is refused
        before any work. :meth:`simulate_to`, ``ptyfast simulate --recipe`` and
        :func:`ptyfast.distributed.simulate` call it first. What needs the object's values
        (an object zero under every position, photons that overflow float32) is checked when
        the experiment is built. Building each probe is most of the cost: ~0.6 ms per
        experiment with a Gaussian probe, ~9 ms with the template's defocused zone plate
        and three modes (about a fifth of simulating its 200 patterns of 64²). ``progress``:
        a bar over the experiments checked.

        Raises
        ------
        RecipeError (ValueError), TypeError
            As :meth:`plan`: the first experiment that cannot be built, with its draws.
        """
        on = _kernels._flag("progress", progress)
        self._check(self._indices(indices), on)

    def _check(self, todo: range | list[int], progress: bool) -> list[Planned]:
        """:meth:`check` of the experiments ``todo`` (indices already checked); their plans
        without experiments (with ``layout``)."""
        out = []
        with Phases(progress)("check", len(todo), "experiment") as bar:
            for i in todo:
                out.append(self._plan(i, build_arrays=False))
                bar.update(1)
        return out

    def _check_run(
        self,
        todo: range | list[int],
        progress: bool,
        directory: Path,
        ext: str,
        *,
        format: str | None = None,  # noqa: A002 - io's keyword
        compress: bool = False,
        **_: Any,
    ) -> None:
        """Before a run of the experiments ``todo`` into ``directory`` simulates anything:
        :meth:`_check` of each, then refuse (``ValueError``) files that cannot fit the free
        disk together (the sizes and the rule of ``--dry-run``, ``_dryrun.refuse_disk``)."""
        from .. import _dryrun
        from ..io import format_from_path
        from ..io._common import readings_are_photons

        path = directory / f"x{ext}"
        fmt = format_from_path(path, format)
        checked = self._check(todo, progress)
        outputs = []
        for p in checked:
            lay = p.layout
            if lay is None:  # pragma: no cover - _check plans without arrays
                continue
            det = lay["detector"]
            outputs.append(
                _dryrun.model_outputs(
                    path,
                    fmt,
                    m=lay["m"],
                    n=lay["n"],
                    n_modes=lay["n_modes"],
                    object_shape=lay["object_shape"],
                    dtype=np.dtype(det.dtype),
                    readings_are_photons=readings_are_photons(det),
                    patches=p.patches,
                )
            )
        _dryrun.refuse_disk(
            outputs,
            compress=compress,
            what=f"campaign {self.name!r}: its {len(checked)} files need",
            advice="simulate fewer experiments or patterns, or write elsewhere",
        )

    def experiment(self, index: int) -> Any:
        """Experiment ``index`` as a :class:`ptyfast.Experiment`."""
        return self.plan(index).experiment

    def simulate(
        self, index: int, *, progress: bool = False, chunk_size: int | None = None
    ) -> Dataset:
        """Simulate experiment ``index`` in memory (its provenance has the campaign block);
        ``progress`` and ``chunk_size`` as for :func:`ptyfast.simulate`."""
        return self.plan(index).simulate(progress=progress, chunk_size=chunk_size)

    def datasets(self, *, progress: bool = False) -> Iterator[Dataset]:
        """Every experiment's dataset, in order, one at a time (``progress`` as for
        :meth:`simulate`)."""
        for i in range(self.n_experiments):
            yield self.simulate(i, progress=progress)

    def path_for(self, directory: str | os.PathLike[str], index: int, ext: str = ".npz") -> Path:
        """``directory / f"{name}-{index:05d}{ext}"``: where :meth:`simulate_to` writes
        (``ext``: a file extension such as ``".npz"`` or ``".zarr"``)."""
        if not isinstance(ext, str):
            raise TypeError(f"ext must be a str such as '.npz', got {type(ext).__name__} {ext!r}")
        if not ext.startswith(".") or len(ext) < 2:
            raise ValueError(f"ext must be a file extension such as '.npz', got {ext!r}")
        _file_stem("ext", ext)
        return Path(directory) / f"{self.name}-{self._index(index):05d}{ext}"

    def simulate_to(
        self,
        directory: str | os.PathLike[str],
        *,
        ext: str = ".npz",
        indices: Any = None,
        progress: bool = False,
        chunk_size: int | None = None,
        **writer_args: Any,
    ) -> list[Path]:
        """Simulate experiments (all, or ``indices``) into ``directory``, one file each.

        Files are named by :meth:`path_for` and written atomically through
        :mod:`ptyfast.io` (``ext`` chooses the format; ``writer_args`` as
        :func:`ptyfast.io.writer`; ``progress`` and ``chunk_size`` as for
        :func:`ptyfast.simulate`); the directory is created if needed. Every experiment
        to simulate is checked first (:meth:`check`), so an experiment that cannot be built
        stops the run before any file is written.

        Returns
        -------
        list of pathlib.Path
            Every file written.
        """
        on = _kernels._flag("progress", progress)
        d = Path(directory)
        todo = self._indices(indices)
        self._check_run(todo, on, d, ext, **writer_args)
        d.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        for i in todo:
            out += self.plan(i).simulate_to(
                self.path_for(d, i, ext), progress=progress, chunk_size=chunk_size, **writer_args
            )
        return out

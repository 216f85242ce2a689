"""Provenance: the JSON record that regenerates a simulated dataset bit for bit.

Every :func:`ptyfast.simulate` result carries ``dataset.provenance``, a JSON-serialisable dict
(plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``; floats survive JSON
exactly) with this layout (``schema_version`` 1):

=====================  ===================================================================
key                    content
=====================  ===================================================================
``schema``             ``"ptyfast.provenance"``
``schema_version``     ``1`` (:data:`SCHEMA_VERSION`)
``ptyfast_version``    the ptyfast that wrote it
``experiment``         every parameter: ``object`` and ``probe`` (each ``{"recipe": ...}``
                       when built from a recipe, else ``{"array": ...}``, below), ``scan``
                       (``Scan.to_dict()``: builder, parameters, errors with their seeds),
                       ``detector`` (``Detector.to_dict()``, with ``bad_pixel_seed``),
                       ``photons``, ``geometry`` (``Geometry.to_dict()`` or ``null``)
``simulation``         ``seed`` (the noise seed, an integer: ``None`` was resolved and
                       recorded), ``patches`` (whether patches were kept)
``noise_streams``      the random streams the detector stage draws from, by name:
                       ``poisson`` (``{"stream": "v1", "stage": 0}``: today's stream, keyed
                       by ``(seed, pattern)``), ``dark`` (stage 2) and ``read_noise`` (stage
                       1) when those stages draw (Rust ``detector`` module docs)
``seeds``              every seed used, flat: ``{"noise": ..., "scan.errors[0].seed": ...,
                       "object.recipe.params.seed": ..., "detector.bad_pixel_seed": ...}``
                       (a summary of the seeds above, for people and ``ptyfast info``)
``result``             what replay must reproduce: ``n_patterns``, ``N``, ``n_modes``,
                       ``readings_dtype``, ``intensity_scale``, ``object_sha256``,
                       ``probe_sha256`` (SHA-256 of the arrays actually simulated)
``campaign``           only for an experiment drawn by a :class:`ptyfast.Campaign`: its
                       ``name``, ``seed``, ``index``, ``n_experiments``, the ``draws``
                       (``{path: value}``) and the campaign ``spec`` (TOML text)
=====================  ===================================================================

**Arrays passed by the user** (an object or probe that was not built from a recipe) are
recorded as ``{"dtype", "shape", "sha256", "encoding", "data"}``: embedded (the C-ordered
little-endian bytes in base64, ``encoding`` ``"base64"``, or deflated first,
``"zlib+base64"``, when that shrinks them) when the array holds at most ``embed_max_bytes``
bytes (:data:`EMBED_MAX_BYTES`, 1 MiB, by default: a 362² complex64 object, a probe of up to
four 256² modes), otherwise referenced by its SHA-256 alone (``encoding`` ``"reference"``, no
``data``). Every dataset file stores the object and the probe anyway, so embedding large ones
would store them twice: a referenced array is handed to :func:`replay`
(``replay(provenance, object=arr)``), which checks its hash, and a :class:`~ptyfast.Dataset`
passed to :func:`replay` (e.g. ``ptyfast.open(path)``) supplies its own ``object`` and
``probe``.

**Compatibility.** :func:`replay` refuses a record of another ``schema``, another
``schema_version``, or one written by a newer ptyfast than the running one; the builders'
recipes carry their own versions (and refuse others), and the noise streams are named, so an
older record either replays bit for bit or is refused with a message saying why. Replay also
checks the rebuilt object and probe against the recorded hashes and the intensity scale
against the recorded one, and refuses a record whose redundant fields disagree with the rest
(an edited or corrupted one): the ``seeds`` summary with the seeds it summarises,
``noise_streams`` with the recorded detector's, ``result`` (every field required) with the
rebuilt experiment, ``simulation.patches`` not a bool.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__, _kernels
from . import _args

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset
    from .experiment import Experiment

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "EMBED_MAX_BYTES",
    "NOISE_STAGES",
    "ProvenanceError",
    "array_sha256",
    "encode_array",
    "decode_array",
    "make",
    "check",
    "seeds",
    "noise_streams",
    "experiment_from",
    "replay",
]

#: ``schema`` field of a provenance record.
SCHEMA = "ptyfast.provenance"
#: Version of the layout above; a record of another version is refused.
SCHEMA_VERSION = 1
#: Largest user array (bytes) embedded in a provenance record by default; larger ones are
#: referenced by their SHA-256 and must be passed to :func:`replay`.
EMBED_MAX_BYTES = 1 << 20
#: Stage keys of the detector's random streams (Rust ``detector::stage``): pattern ``i`` of
#: stage ``k`` draws from the stream keyed ``(stage_seed(seed, k), first_index + i)``; the
#: Poisson stage is today's ``(seed, i)`` stream.
NOISE_STAGES = {"poisson": 0, "read_noise": 1, "dark": 2}

_KEYS = (
    "schema",
    "schema_version",
    "ptyfast_version",
    "experiment",
    "simulation",
    "noise_streams",
    "seeds",
    "result",
)


class ProvenanceError(ValueError):
    """A provenance record that cannot be replayed; the message says which field and why."""


# --------------------------------------------------------------------------- arrays


def _canonical(a: np.ndarray) -> np.ndarray:
    """C-ordered, little-endian (native on every supported platform) copy-if-needed."""
    a = np.ascontiguousarray(a)
    if a.dtype.hasobject:  # its bytes are pointers: a hash of them means nothing
        raise TypeError(f"a must be an array of numbers, got dtype {a.dtype}")
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 (hex) of an array's C-ordered little-endian bytes (dtype and shape apart);
    object arrays (whose bytes are pointers) are a ``TypeError``."""
    return hashlib.sha256(_canonical(a).data).hexdigest()


def encode_array(a: np.ndarray, *, embed_max_bytes: int = EMBED_MAX_BYTES) -> dict[str, Any]:
    """A JSON record of ``a``: embedded (deflate + base64) when small, else its hash only.

    Parameters
    ----------
    a : numpy.ndarray
        A numeric array (the experiment's complex64 object or probe).
    embed_max_bytes : int, optional
        Embed when ``a.nbytes <= embed_max_bytes`` (``0``: always reference); an integer
        ``>= 0`` (anything else: ``TypeError`` / ``ValueError``).

    Returns
    -------
    dict
        ``{"dtype", "shape", "sha256", "encoding": "zlib+base64" or "base64", "data"}`` or
        ``{"dtype", "shape", "sha256", "encoding": "reference"}``.

    Examples
    --------
    >>> r = encode_array(np.arange(4, dtype=np.float32))
    >>> r["encoding"], r["shape"]
    ('base64', [4])
    >>> decode_array("x", r).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    embed_max_bytes = _args.integer("embed_max_bytes", embed_max_bytes, minimum=0)
    c = _canonical(a)
    rec: dict[str, Any] = {
        "dtype": c.dtype.str.lstrip("<=|"),
        "shape": [int(s) for s in c.shape],
        "sha256": array_sha256(c),
    }
    if c.nbytes <= embed_max_bytes:
        # Deflate only what it shrinks (random complex textures barely compress): try the
        # first 64 KiB, then the whole array at the fastest level.
        probe = zlib.compress(c.data[: 1 << 16].tobytes(), 1) if c.nbytes > 1 << 16 else b""
        packed = zlib.compress(c.data, 1) if len(probe) < 0.9 * min(c.nbytes, 1 << 16) else b""
        if packed and len(packed) < c.nbytes:
            rec["encoding"] = "zlib+base64"
            rec["data"] = base64.b64encode(packed).decode("ascii")
        else:
            rec["encoding"] = "base64"
            rec["data"] = base64.b64encode(c.data).decode("ascii")
    else:
        rec["encoding"] = "reference"
    return rec


def decode_array(name: str, record: Any, given: Any = None) -> np.ndarray:
    """The array a record of :func:`encode_array` describes.

    Parameters
    ----------
    name : str
        The parameter (``"object"``, ``"probe"``), for messages.
    record : dict
        As written by :func:`encode_array` (possibly through JSON).
    given : array_like, optional
        The array itself, required for a ``"reference"`` record (and checked against an
        embedded one): converted to the recorded dtype (a single ``(N, N)`` probe mode gains
        its leading axis), its shape and SHA-256 must match the record.

    Returns
    -------
    numpy.ndarray
        A read-only array.

    Raises
    ------
    ProvenanceError
        A malformed record, a referenced array not given, or a given array whose dtype, shape
        or hash differs from the record (named).
    """
    if not isinstance(record, dict) or not {"dtype", "shape", "sha256", "encoding"} <= set(record):
        raise ProvenanceError(
            f"{name} array record must have dtype, shape, sha256 and encoding, got "
            f"{sorted(record) if isinstance(record, dict) else type(record).__name__}"
        )
    try:
        dtype = np.dtype(record["dtype"]).newbyteorder("<")
        shape = tuple(int(s) for s in record["shape"])
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"{name} array record has a bad dtype or shape: {exc}") from None
    enc = record["encoding"]
    if given is not None:
        arr = np.asarray(given)
        if arr.ndim == len(shape) - 1 and shape[:1] == (1,):
            arr = arr[None]  # one probe mode given as (N, N)
        if arr.dtype != dtype and arr.dtype.kind in "biufc" and dtype.kind in "fc":
            arr = arr.astype(dtype)  # the hash below decides whether it is the same array
        if arr.dtype.newbyteorder("<") != dtype or arr.shape != shape:
            raise ProvenanceError(
                f"{name} must be the recorded {dtype.name} array of shape {shape}, got "
                f"{arr.dtype.name} {arr.shape}"
            )
        digest = array_sha256(arr)
        if digest != record["sha256"]:
            raise ProvenanceError(
                f"{name} must be the recorded array (sha256 {record['sha256'][:16]}...), got "
                f"one with sha256 {digest[:16]}...: a different {name}"
            )
        out = np.array(arr, dtype=dtype, order="C")
    elif enc == "reference":
        raise ProvenanceError(
            f"{name} is recorded by reference only (sha256 {record['sha256'][:16]}..., "
            f"{dtype.name} {shape}, larger than the embedding limit): pass it, e.g. "
            f"ptyfast.replay(provenance, {name}=array), or replay the Dataset itself"
        )
    elif enc in ("zlib+base64", "base64"):
        try:
            raw = base64.b64decode(record["data"], validate=True)
            if enc == "zlib+base64":
                raw = zlib.decompress(raw)
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise ProvenanceError(f"{name} array data cannot be decoded: {exc}") from None
        want = dtype.itemsize * math.prod(shape)
        if len(raw) != want:
            raise ProvenanceError(
                f"{name} array data must hold {want} bytes for {dtype.name} {shape}, got {len(raw)}"
            )
        out = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        if array_sha256(out) != record["sha256"]:
            raise ProvenanceError(f"{name} array data does not match its sha256 (corrupted)")
    else:
        raise ProvenanceError(
            f"{name} array encoding must be 'zlib+base64', 'base64' or 'reference', got {enc!r}"
        )
    out.flags.writeable = False
    return out


# --------------------------------------------------------------------------- records


def noise_streams(detector: Any) -> dict[str, dict[str, Any]]:
    """The named random streams a detector's stage draws from (see :data:`NOISE_STAGES`).

    Parameters
    ----------
    detector : ptyfast.Detector

    Returns
    -------
    dict
        ``{"poisson": {"stream": "v1", "stage": 0}}`` when it counts photons with shot noise,
        plus ``"dark"`` when ``dark > 0`` and ``"read_noise"`` when ``read_noise > 0``; an
        empty dict for a noise-free detector (``poisson=False``, no read noise).
    """
    out: dict[str, dict[str, Any]] = {}
    if detector.poisson:
        out["poisson"] = {"stream": detector.poisson_stream, "stage": NOISE_STAGES["poisson"]}
    if detector.dark > 0 and detector.poisson:
        out["dark"] = {"stage": NOISE_STAGES["dark"]}
    if detector.read_noise > 0:
        out["read_noise"] = {"stage": NOISE_STAGES["read_noise"]}
    return out


def _walk_seeds(obj: Any, prefix: str) -> Iterator[tuple[str, int]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if (k == "seed" or str(k).endswith("_seed")) and isinstance(v, int):
                if not isinstance(v, bool):
                    yield path, v
            else:
                yield from _walk_seeds(v, path)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk_seeds(v, f"{prefix}[{i}]")


def seeds(provenance: dict[str, Any]) -> dict[str, int]:
    """Every seed of a record, flat: ``{"noise": ..., "<path>": ...}`` (recomputed).

    Examples
    --------
    >>> seeds({"simulation": {"seed": 3}, "experiment": {"scan": {"errors": [{"seed": 5}]}}})
    {'noise': 3, 'scan.errors[0].seed': 5}
    """
    if not isinstance(provenance, dict):
        raise TypeError(f"provenance must be a dict (a record), got {type(provenance).__name__}")
    sim = provenance.get("simulation")
    if not isinstance(sim, dict) or "seed" not in sim:
        raise ProvenanceError(
            "provenance must be a record with a ['simulation']['seed'] (a dataset's "
            f"provenance), got keys {sorted(map(str, provenance))}"
        )
    out = {"noise": sim["seed"]}
    out.update(_walk_seeds(provenance.get("experiment", {}), ""))
    return out


def _invariant(
    e: Experiment, embed_max_bytes: int
) -> tuple[dict[str, Any], dict[str, int], str, str]:
    """The experiment's part of every record (``experiment`` block, its seeds, the object's and
    probe's SHA-256), computed once per experiment and embedding choice and cached on it.

    An :class:`~ptyfast.Experiment` is immutable (read-only arrays, immutable parts), so this
    part never changes; the cache is keyed by the parts themselves (identity) all the same, so
    a part replaced behind its back is noticed. Two threads may both compute it: they store
    equal values. Callers copy what they hand out (records are the user's to modify).
    """
    embed = (e.object.nbytes <= embed_max_bytes, e.probe.nbytes <= embed_max_bytes)
    parts = (e.object, e.probe, e.object_recipe, e.probe_recipe, e.scan, e.detector)
    parts += (e.photons, e.geometry)
    cache = getattr(e, "_provenance_cache", None)
    hit = None if cache is None else cache.get(embed)
    if (
        hit is not None
        and len(hit[0]) == len(parts)
        and all(a is b for a, b in zip(hit[0], parts, strict=True))
    ):
        return hit[1]
    obj = (
        {"recipe": copy.deepcopy(e.object_recipe)}
        if e.object_recipe is not None
        else {"array": encode_array(e.object, embed_max_bytes=embed_max_bytes)}
    )
    if e.probe_recipe is not None:
        probe: dict[str, Any] = {"recipe": copy.deepcopy(e.probe_recipe)}
    else:
        probe = {"array": encode_array(e.probe, embed_max_bytes=embed_max_bytes)}
    exp = {
        "object": obj,
        "probe": probe,
        "scan": e.scan.to_dict(),
        "detector": e.detector.to_dict(),
        "photons": float(e.photons),
        "geometry": None if e.geometry is None else e.geometry.to_dict(),
    }
    # Everything must survive JSON exactly (replay reads files); checked once here.
    json.dumps(exp, allow_nan=False)
    value = (exp, dict(_walk_seeds(exp, "")), array_sha256(e.object), array_sha256(e.probe))
    if cache is not None:
        cache[embed] = (parts, value)
    return value


def make(
    experiment: Experiment,
    *,
    seed: int,
    patches: bool,
    embed_max_bytes: int = EMBED_MAX_BYTES,
    campaign: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record of ``simulate(experiment, seed=seed, patches=patches)``.

    ``seed`` must already be the resolved integer. ``campaign`` is the block a
    :class:`~ptyfast.Campaign` adds (module docstring). Arrays up to ``embed_max_bytes``
    are embedded, larger ones referenced by SHA-256. The experiment's part (hashes,
    encoded arrays, the scan's recipe) is computed once per experiment and cached on it.
    """
    e = experiment
    exp, exp_seeds, object_sha, probe_sha = _invariant(e, embed_max_bytes)
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "ptyfast_version": __version__,
        "experiment": copy.deepcopy(exp),
        "simulation": {"seed": int(seed), "patches": bool(patches)},
        "noise_streams": noise_streams(e.detector),
        "seeds": {"noise": int(seed), **exp_seeds},
        "result": {
            "n_patterns": e.n_patterns,
            "N": e.N,
            "n_modes": e.n_modes,
            "readings_dtype": str(np.dtype(e.detector.dtype)),
            "intensity_scale": float(e.intensity_scale),
            "object_sha256": object_sha,
            "probe_sha256": probe_sha,
        },
    }
    if campaign is not None:
        rec["campaign"] = copy.deepcopy(campaign)
        json.dumps(rec["campaign"], allow_nan=False)
    return rec


def _version_tuple(v: Any) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", str(v))
    return None if m is None else tuple(int(x) for x in m.groups())


def check(provenance: Any) -> dict[str, Any]:
    """Check that a record is a provenance this ptyfast can replay; return it.

    Raises
    ------
    ProvenanceError
        Not a dict, a reader's ``source`` record of a file without a model record, another
        ``schema`` or ``schema_version``, written by a newer ptyfast, missing fields or fields
        of the wrong type (each named), or a ``seeds`` summary that disagrees with the seeds
        recorded in ``simulation`` and ``experiment``.
    """
    if not isinstance(provenance, dict):
        raise ProvenanceError(f"provenance must be a dict, got {type(provenance).__name__}")
    if "schema" not in provenance and isinstance(provenance.get("source"), str):
        # What a reader gives for a file without a model record: the PtychoPINN-compatible
        # simulation's, or another tool's.
        raise ProvenanceError(
            f"provenance is a {provenance['source']!r} record, not one of ptyfast's model "
            "(ptyfast.simulate, or ptyfast simulate with model options or --recipe): it holds "
            "no recipe to replay"
        )
    if provenance.get("schema") != SCHEMA:
        raise ProvenanceError(
            f"provenance['schema'] must be {SCHEMA!r} (a record written by ptyfast.simulate), "
            f"got {provenance.get('schema')!r}"
        )
    version = provenance.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ProvenanceError(
            f"provenance['schema_version'] must be {SCHEMA_VERSION} (this ptyfast "
            f"{__version__} replays version {SCHEMA_VERSION} only), got {version!r}"
        )
    written = _version_tuple(provenance.get("ptyfast_version"))
    running = _version_tuple(__version__)
    if written is None:
        raise ProvenanceError(
            f"provenance['ptyfast_version'] must be a version 'X.Y.Z', got "
            f"{provenance.get('ptyfast_version')!r}"
        )
    if running is not None and written > running:
        raise ProvenanceError(
            f"provenance was written by ptyfast {provenance['ptyfast_version']}, newer than "
            f"this ptyfast {__version__}: upgrade ptyfast to replay it"
        )
    missing = [k for k in _KEYS if k not in provenance]
    if missing:
        raise ProvenanceError(f"provenance is missing the field(s) {missing}")
    _check_result(provenance["result"])
    exp = provenance["experiment"]
    want = {"object", "probe", "scan", "detector", "photons", "geometry"}
    if not isinstance(exp, dict) or set(exp) != want:
        got = sorted(exp) if isinstance(exp, dict) else type(exp).__name__
        raise ProvenanceError(f"provenance['experiment'] must have the keys {sorted(want)}, {got}")
    sim = provenance["simulation"]
    if not isinstance(sim, dict) or set(sim) != {"seed", "patches"}:
        raise ProvenanceError("provenance['simulation'] must have the keys ['patches', 'seed']")
    s = sim["seed"]
    if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**64:
        raise ProvenanceError(
            f"provenance['simulation']['seed'] must be a recorded integer seed, got {s!r}"
        )
    if not isinstance(sim["patches"], bool):
        raise ProvenanceError(
            f"provenance['simulation']['patches'] must be true or false, got {sim['patches']!r}"
        )
    block = provenance.get("campaign")
    if "campaign" in provenance and (not isinstance(block, dict) or set(block) != _CAMPAIGN):
        got = sorted(block) if isinstance(block, dict) else type(block).__name__
        raise ProvenanceError(
            f"provenance['campaign'] must have the keys {sorted(_CAMPAIGN)}, got {got}"
        )
    # The flat summary repeats the seeds of 'simulation' and 'experiment': a record whose
    # summary disagrees with them was edited or corrupted, and would replay other draws than
    # the ones it lists.
    used, listed = seeds(provenance), provenance["seeds"]
    if listed != used:
        keys = sorted(set(used) | set(listed)) if isinstance(listed, dict) else sorted(used)
        bad = [k for k in keys if not isinstance(listed, dict) or listed.get(k) != used.get(k)]
        raise ProvenanceError(
            f"provenance['seeds'] must list the seeds recorded in 'simulation' and "
            f"'experiment' ({', '.join(f'{k}={used.get(k)!r}' for k in bad)}), got "
            + (
                ", ".join(f"{k}={listed.get(k)!r}" for k in bad)
                if isinstance(listed, dict)
                else repr(listed)
            )
            + ": an edited or corrupted record"
        )
    return provenance


#: The keys of a record's ``campaign`` block (module docstring).
_CAMPAIGN = {"name", "seed", "index", "n_experiments", "draws", "spec"}

#: The fields of a record's ``result`` and their JSON types (``intensity_scale`` a number).
_RESULT = {
    "n_patterns": int,
    "N": int,
    "n_modes": int,
    "readings_dtype": str,
    "intensity_scale": float,
    "object_sha256": str,
    "probe_sha256": str,
}


def _check_result(res: Any) -> None:
    """``provenance['result']``: every field present, of its type (hashes 64 hex digits)."""
    if not isinstance(res, dict):
        raise ProvenanceError(f"provenance['result'] must be a dict, got {type(res).__name__}")
    missing = [k for k in _RESULT if k not in res]
    if missing:
        raise ProvenanceError(f"provenance['result'] is missing the field(s) {missing}")
    for k, kind in _RESULT.items():
        v = res[k]
        if kind is float:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and v > 0
            what = "a positive finite number"
        elif kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
            what = "an integer >= 1"
        elif k.endswith("sha256"):
            ok = isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None
            what = "a SHA-256 (64 hex digits)"
        else:
            ok = isinstance(v, str)
            what = "a string"
        if not ok:
            raise ProvenanceError(f"provenance['result']['{k}'] must be {what}, got {v!r}")


def _part(name: str, rec: Any, given: Any) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """(array, None) or (None, recipe) from an ``object``/``probe`` entry."""
    if not isinstance(rec, dict) or len(rec) != 1 or not ({"recipe", "array"} & set(rec)):
        raise ProvenanceError(
            f"provenance['experiment']['{name}'] must be {{'recipe': ...}} or "
            f"{{'array': ...}}, got {rec!r:.80}"
        )
    if "recipe" in rec:
        if given is not None:
            raise ProvenanceError(
                f"{name} was built from its recipe (recorded); do not pass {name}="
            )
        return None, rec["recipe"]
    return decode_array(name, rec["array"], given), None


def experiment_from(
    provenance: dict[str, Any], *, object: Any = None, probe: Any = None
) -> Experiment:
    """The :class:`~ptyfast.Experiment` a record describes (objects/probes rebuilt from their
    recipes, arrays decoded or taken from ``object=``/``probe=``), checked against the
    recorded hashes and intensity scale.

    Raises
    ------
    ProvenanceError
        See :func:`check` and :func:`decode_array`; or the rebuilt experiment differs from the
        recorded one (a builder or platform that does not reproduce the recipe), or its
        ``result`` shape and dtype or ``noise_streams`` differ from the record's (an edited
        record).
    """
    from .detector import Detector
    from .experiment import Experiment
    from .geometry import Geometry
    from .scans import Scan

    check(provenance)
    exp = provenance["experiment"]
    obj_arr, obj_recipe = _part("object", exp["object"], object)
    probe_arr, probe_recipe = _part("probe", exp["probe"], probe)
    try:
        e = Experiment(
            obj_recipe if obj_arr is None else obj_arr,
            probe_recipe if probe_arr is None else probe_arr,
            Scan.from_dict(exp["scan"]),
            Detector.from_dict(exp["detector"]),
            exp["photons"],
            None if exp["geometry"] is None else Geometry.from_dict(exp["geometry"]),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProvenanceError):
            raise
        raise ProvenanceError(f"provenance['experiment'] cannot be rebuilt: {exc}") from None
    res = provenance["result"]
    for name, arr in (("object", e.object), ("probe", e.probe)):
        want = res[f"{name}_sha256"]
        if array_sha256(arr) != want:
            raise ProvenanceError(
                f"the {name} rebuilt from the provenance differs from the one simulated "
                f"(sha256 {array_sha256(arr)[:16]}... instead of {want[:16]}...): this "
                f"ptyfast/NumPy/SciPy does not reproduce its recipe bit for bit"
            )
    if float(e.intensity_scale) != float(res["intensity_scale"]):
        raise ProvenanceError(
            f"the intensity scale recomputed from the provenance ({float(e.intensity_scale)!r}) "
            f"differs from the recorded {res['intensity_scale']!r}"
        )
    # What the rebuilt experiment gives must be what the record says was simulated.
    shape = {
        "n_patterns": e.n_patterns,
        "N": e.N,
        "n_modes": e.n_modes,
        "readings_dtype": str(np.dtype(e.detector.dtype)),
    }
    for k, v in shape.items():
        if res[k] != v:
            raise ProvenanceError(
                f"provenance['result']['{k}'] must be {v!r}, what the recorded experiment "
                f"gives, got {res[k]!r}: an edited or corrupted record"
            )
    streams = noise_streams(e.detector)
    if provenance["noise_streams"] != streams:
        raise ProvenanceError(
            f"provenance['noise_streams'] must be {streams!r}, the streams of the recorded "
            f"detector, got {provenance['noise_streams']!r}: an edited or corrupted record"
        )
    return e


def replay(
    provenance: dict[str, Any] | Dataset,
    *,
    object: Any = None,  # noqa: A002 - the parameter's name
    probe: Any = None,
    progress: bool = False,
) -> Dataset:
    """Regenerate a simulated dataset, bit for bit, from its provenance.

    Parameters
    ----------
    provenance : dict or Dataset
        A ``dataset.provenance`` record (possibly through JSON or a file), or a
        :class:`~ptyfast.Dataset` (e.g. from :func:`ptyfast.open`): its provenance is
        replayed, and its own ``object`` and ``probe`` stand in for arrays recorded by
        reference.
    object, probe : array_like, optional
        The arrays of an experiment whose object / probe is recorded by reference (larger
        than the embedding limit; module docstring); checked against the recorded SHA-256.
    progress : bool, optional
        Show a progress bar (tqdm).

    Returns
    -------
    Dataset
        Equal to the original: ``diffraction`` (bits and dtype), positions, probe, object,
        mask, patches (when they were kept), intensity scale and provenance.

    Raises
    ------
    ProvenanceError (a ValueError)
        Another schema or version, a record written by a newer ptyfast, a referenced array
        missing or not matching its hash, or a rebuilt part that differs from the recorded
        one (each named).

    Examples
    --------
    >>> import ptyfast
    >>> from ptyfast import objects, probes, scans
    >>> e = ptyfast.Experiment(objects.recipe("grf", shape=64, seed=1),
    ...                        probes.recipe("gaussian", N=16, sigma_px=3.0),
    ...                        scans.raster(3, 3, 4.0).jitter(0.2, seed=2),
    ...                        ptyfast.Detector(), 1e4)
    >>> ds = ptyfast.simulate(e, seed=7)
    >>> again = ptyfast.replay(ds.provenance)
    >>> bool((again.diffraction == ds.diffraction).all())
    True
    """
    from .dataset import Dataset
    from .experiment import _run

    progress = _kernels._flag("progress", progress)
    if isinstance(provenance, Dataset):
        ds = provenance
        prov = check(ds.provenance)
        exp = prov["experiment"]
        if object is None and "array" in exp["object"]:
            object = ds.object  # noqa: A001
        if probe is None and "array" in exp["probe"]:
            probe = ds.probe
    else:
        prov = check(provenance)
    e = experiment_from(prov, object=object, probe=probe)
    sim = prov["simulation"]
    # The record replayed is the record kept: the same experiment, the same choices of what
    # was embedded.
    return _run(e, sim["seed"], bool(sim["patches"]), progress, None, copy.deepcopy(prov))

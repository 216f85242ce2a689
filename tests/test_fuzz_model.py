"""Fuzzing the physical model's public entry points (issue 9's acceptance for wave 2).

The promises checked, as in ``test_fuzz_inputs.py`` for the PtychoPINN-compatible layer:

* nothing a user passes crashes, panics, hangs or leaks another exception type: the only
  exceptions are ``ValueError`` and ``TypeError`` (``PtyfastError``, ``FormatError``,
  ``RecipeError`` and ``CampaignError`` are ``ValueError``), and a missing input file is the
  documented ``FileNotFoundError`` naming the path;
* the message names the argument (the replaced keyword, or what the table below allows);
* inputs are never modified, and non-contiguous or read-only arrays work;
* with finite inputs every floating output is finite (no silent NaN or inf);
* sizes no machine holds are refused before allocating, saying how many bytes were asked.

The tables replace one argument of a small valid call by each hostile value; a few
hypothesis tests (derandomized, bounded example counts) mutate recipes, files and arrays.
The module runs in well under a minute on two cores.
"""

from __future__ import annotations

import copy
import io as _bytesio
import math
import re
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ptyfast
from ptyfast import Detector, Geometry, objects, probes, scans
from ptyfast import io as pio
from ptyfast.cli import main
from ptyfast.model import campaign as _campaign
from ptyfast.model import experiment as _experiment
from ptyfast.model import recipes

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

N = 16
G = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=N)
PROBE = probes.gaussian(N, 3.0)
OBJ = objects.lines((48, 48), seed=1)
SCAN = scans.raster(3, 3, 4.0)
EXPERIMENT = _experiment.Experiment(OBJ, PROBE, SCAN, Detector.eiger(), 1e6, G)


class _Odd:
    """An arbitrary object with no numeric meaning."""


# Numbers out of every range (NaN, inf, negative, zero, denormal, huge, > int64), bools and
# strings where numbers go, containers and arrays of the wrong kind, shape and dtype.
HOSTILE: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -1.0,
    0.0,
    -1,
    0,
    5e-324,
    1e308,
    2**63,
    2**64,
    10**30,
    True,
    "3",
    "",
    None,
    1 + 2j,
    [1, 2],
    {"a": 1, "b": 2},
    _Odd(),
    np.float32(np.nan),
    np.array(2.0),
    np.array([1.0, 2.0]),
    np.zeros((0,)),
    np.array(["a"]),
    np.array([1, 2], dtype=object),
    np.ones((3, 3), np.complex128),
]


def _ids(v: Any) -> str:
    return repr(v)[:24]


# --------------------------------------------------------------------------- checks


def _arrays(obj: Any) -> list[np.ndarray]:
    """The arrays of an output, for the finiteness check."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, np.generic | float | complex):
        return [np.asarray(obj)]
    if isinstance(obj, scans.Scan):
        return [obj.nominal, obj.true]
    if isinstance(obj, ptyfast.Dataset):
        return [obj.diffraction, obj.positions_true, obj.probe, obj.object]
    if isinstance(obj, _experiment.Experiment):
        return [obj.object, obj.probe, obj.positions_true]
    if isinstance(obj, tuple | list):
        return [a for v in obj for a in _arrays(v)]
    return []


def _finite(obj: Any) -> bool:
    return all(a.dtype.kind not in "fc" or bool(np.all(np.isfinite(a))) for a in _arrays(obj))


def _snapshot(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return ("obj", obj.shape, [id(v) for v in obj.ravel()])
        return (obj.dtype.str, obj.shape, obj.tobytes(), obj.flags.writeable)
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return (type(obj), [_snapshot(v) for v in obj])
    if obj is None or isinstance(obj, int | float | complex | str | bytes | np.generic):
        return ("value", type(obj), repr(obj))
    return ("identity", id(obj))


def _inputs_finite(kwargs: dict[str, Any]) -> bool:
    for v in kwargs.values():
        if isinstance(v, float | complex | np.generic) and not np.all(np.isfinite(v)):
            return False
        if isinstance(v, np.ndarray) and v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
            return False
    return True


def _names(word: str, message: str) -> bool:
    """``word`` in ``message`` as a name (not inside another word: ``t`` is not in "got")."""
    return re.search(rf"(?<![A-Za-z_]){re.escape(word)}(?![A-Za-z_])", message) is not None


def check_call(
    fn: Callable[..., Any], kwargs: dict[str, Any], key: str | None, names: tuple[str, ...]
) -> str | None:
    """Call ``fn(**kwargs)``; a description of what went wrong, or None."""
    before = _snapshot(kwargs)
    try:
        out = fn(**kwargs)
    except (ValueError, TypeError) as exc:
        out = None
        if key is not None and not any(_names(n, str(exc)) for n in (key, *names)):
            return f"message does not name {key!r}: {type(exc).__name__}: {exc}"
    except FileNotFoundError as exc:
        out = None
        if key is None or "path" not in key and "store" not in key:
            return f"FileNotFoundError for {key!r}: {exc}"
    except Exception as exc:  # the defect this module looks for
        return f"{type(exc).__name__}: {exc}"
    else:
        if _inputs_finite(kwargs) and not _finite(out):
            return "non-finite output from finite inputs"
    if _snapshot(kwargs) != before:
        return "an input was modified"
    return None


# --------------------------------------------------------------------------- targets

# name -> (callable, valid keyword arguments, other words a message may use for an argument)
TARGETS: dict[str, tuple[Callable[..., Any], Callable[[], dict[str, Any]], dict[str, tuple]]] = {
    "Geometry": (
        Geometry,
        lambda: dict(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=N),
        {},
    ),
    "probes.disk": (probes.disk, lambda: dict(N=N, scale=0.7), {}),
    "probes.disk_profile": (probes.disk_profile, lambda: dict(N=N, scale=0.7), {}),
    "probes.gaussian": (probes.gaussian, lambda: dict(N=N, sigma_px=3.0), {}),
    "probes.super_gaussian": (
        probes.super_gaussian,
        lambda: dict(N=N, radius_px=4.0, order=4.0),
        {},
    ),
    "probes.fresnel_zone_plate": (
        probes.fresnel_zone_plate,
        lambda: dict(
            geometry=G, diameter_m=50e-6, outer_zone_m=500e-9, central_stop=0.3, defocus_m=1e-4
        ),
        {},
    ),
    "probes.zernike": (
        probes.zernike,
        lambda: dict(N=N, coefficients=None, aperture=0.25, plane="focus", seed=1, rms_rad=1.0),
        {"coefficients": ("seed",)},  # coefficients and seed are exclusive
    ),
    "probes.zernike(coefficients)": (
        probes.zernike,
        lambda: dict(N=N, coefficients=np.array([0.0, 0.0, 0.0, 0.5]), aperture=0.25),
        {},
    ),
    "probes.random_zernike_coefficients": (
        probes.random_zernike_coefficients,
        lambda: dict(seed=1, rms_rad=1.0, min_noll=4, max_noll=15),
        {"min_noll": ("max_noll",)},
    ),
    "probes.noll_to_nm": (probes.noll_to_nm, lambda: dict(j=4), {}),
    "probes.zernike_polynomial": (
        probes.zernike_polynomial,
        lambda: dict(j=4, rho=np.linspace(0.0, 1.0, 5), theta=np.zeros(5)),
        {"rho": ("rho and theta",), "theta": ("rho and theta",)},
    ),
    "probes.propagate": (
        probes.propagate,
        lambda: dict(probe=PROBE, distance_m=1e-5, geometry=G),
        {},
    ),
    "probes.modes": (
        probes.modes,
        lambda: dict(primary=PROBE, n=3, weights=None, decay=None, method="random", seed=1),
        {"weights": ("decay",), "decay": ("weights",), "method": ("seed",)},
    ),
    "probes.normalize": (probes.normalize, lambda: dict(probe=PROBE), {}),
    "scans.raster": (
        scans.raster,
        lambda: dict(rows=3, cols=4, step_px=2.0, snake=False, step_y_px=None),
        {},
    ),
    "scans.hexagonal": (
        scans.hexagonal,
        lambda: dict(rows=3, cols=4, step_px=2.0, snake=False),
        {},
    ),
    "scans.fermat_spiral": (scans.fermat_spiral, lambda: dict(n=10, step_px=2.0), {}),
    "scans.concentric": (
        scans.concentric,
        lambda: dict(n_rings=3, step_px=2.0, n_first=6),
        {},
    ),
    "scans.lissajous": (
        scans.lissajous,
        lambda: dict(n=10, amplitude_x_px=5.0, amplitude_y_px=4.0, freq_x=3, freq_y=2, phase=1.0),
        {},
    ),
    "scans.random_uniform": (
        scans.random_uniform,
        lambda: dict(n=10, width_px=5.0, height_px=4.0, seed=1),
        {},
    ),
    "scans.custom": (
        scans.custom,
        lambda: dict(x=np.arange(4.0), y=np.arange(4.0), true_x=None, true_y=None),
        {"x": ("y",), "y": ("x",), "true_x": ("true_y",), "true_y": ("true_x",)},
    ),
    "Scan.jitter": (SCAN.jitter, lambda: dict(sigma_px=0.5, seed=1), {}),
    "Scan.drift": (
        SCAN.drift,
        lambda: dict(velocity_px=(0.1, 0.1), random_walk_px=0.1, seed=1),
        {"random_walk_px": ("seed",)},
    ),
    "Scan.affine": (SCAN.affine, lambda: dict(matrix=np.eye(2), offset_px=(0.0, 0.0)), {}),
    "Scan.placed": (
        SCAN.placed,
        lambda: dict(object_shape=(48, 48), N=N, center=None),
        {"center": ("scan leaves the object",), "object_shape": ("N must be <=",)},
    ),
    "scans.placement_offset": (
        scans.placement_offset,
        lambda: dict(object_shape=(48, 48), N=N, center=None),
        {"object_shape": ("N must be <=",)},
    ),
    "Scan.nominal_m": (SCAN.nominal_m, lambda: dict(geometry=G), {}),
    "objects.lines": (objects.lines, lambda: dict(shape=(20, 20), n_lines=20, seed=1), {}),
    "objects.grf": (objects.grf, lambda: dict(shape=(20, 20), seed=1), {}),
    "objects.points": (
        objects.points,
        lambda: dict(shape=(20, 20), sigma_px=1.0, seed=1),
        {"shape": ("sigma_px",)},
    ),
    "objects.dead_leaves": (
        objects.dead_leaves,
        lambda: dict(shape=(20, 20), radius_min_px=2.0, radius_max_px=5.0, alpha=3.0, seed=1),
        {"radius_min_px": ("radius_max_px",), "shape": ("radius_max_px", "radius_min_px")},
    ),
    "objects.texture_to_object": (
        objects.texture_to_object,
        lambda: dict(t=np.full((4, 4), 0.5), amplitude=(1.0, 0.5), phase=(0.0, 1.0)),
        {},
    ),
    "Detector": (
        Detector,
        lambda: dict(
            poisson=True,
            qe=0.9,
            gain=2.0,
            offset=1.0,
            read_noise=1.0,
            dark=0.1,
            psf_sigma_px=0.5,
            full_well=1e5,
            dtype="float32",
            beamstop_radius_px=1.0,
            dead_fraction=0.01,
            hot_fraction=0.01,
            bad_pixel_seed=1,
            dead_time_s=1e-7,
            exposure_s=0.1,
        ),
        {
            "offset": ("full_well",),
            "dead_fraction": ("hot_fraction",),
            "hot_fraction": ("dead_fraction",),
            "exposure_s": ("dead_time_s",),
        },
    ),
    "Detector(modules)": (
        Detector,
        lambda: dict(
            module_px=(8, 8),
            gap_px=(1, 1),
            n_modules=(2, 2),
            beam_px=(8, 8),
            dtype="uint16",
            full_well=60000.0,
        ),
        {"dtype": ("full_well",), "module_px": ("beam_px", "gap_px"), "n_modules": ("beam_px",)},
    ),
    "Detector(defect maps)": (
        Detector,
        lambda: dict(dead_pixels=np.eye(N, dtype=bool), hot_pixels=np.zeros((N, N), bool)),
        {"dead_pixels": ("hot_pixels",), "hot_pixels": ("dead_pixels",)},
    ),
    "Detector.eiger": (Detector.eiger, lambda: dict(size="4M", generation=2), {}),
    "Detector.pilatus": (Detector.pilatus, lambda: dict(size="1M"), {}),
    "Detector.preset": (Detector.preset, lambda: dict(name="eiger"), {}),
    "Detector.mask": (Detector(beamstop_radius_px=1.0).mask, lambda: dict(N=N), {}),
    "Detector.pixel_map": (Detector(beamstop_radius_px=1.0).pixel_map, lambda: dict(N=N), {}),
    "Detector.readings_to_photons": (
        Detector(gain=2.0, beamstop_radius_px=1.0).readings_to_photons,
        lambda: dict(readings=np.ones((2, N, N), np.float32), clip_negative=True, masked_value=0.0),
        {},
    ),
    "Experiment": (
        _experiment.Experiment,
        lambda: dict(object=OBJ, probe=PROBE, scan=SCAN, detector=None, photons=1e6, geometry=G),
        {"object": ("scan leaves the object",), "probe": ("scan leaves the object",)},
    ),
    "simulate": (
        _experiment.simulate,
        lambda: dict(experiment=EXPERIMENT, seed=1, patches=False, chunk_size=None),
        {},
    ),
    "io.Header": (
        pio.Header,
        lambda: dict(
            n_patterns=9,
            dtype=np.uint32,
            mask=np.ones((N, N), bool),
            positions_nominal=np.zeros((9, 2)),
            positions_true=np.zeros((9, 2)),
            probe=PROBE[None],
            object=OBJ,
            geometry=G,
            photons=1e6,
            patches=False,
        ),
        {
            "n_patterns": ("positions_nominal",),
            "probe": ("mask", "geometry.N"),
        },
    ),
    "campaign.draw": (
        _campaign.draw,
        lambda: dict(dist={"uniform": [1.0, 2.0]}, seed=1, index=0, path="x"),
        {"dist": ("x:", "x =")},
    ),
}


def _scalar_ok(v: Any) -> bool:
    return True


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hostile_values(name: str) -> None:
    """Each argument of a valid call replaced by each hostile value (one at a time)."""
    fn, baseline, aliases = TARGETS[name]
    assert check_call(fn, baseline(), None, ()) is None, "the valid call must succeed"
    failures = []
    for key in baseline():
        for value in HOSTILE:
            kwargs = baseline()
            kwargs[key] = value
            problem = check_call(fn, kwargs, key, aliases.get(key, ()))
            if problem:
                failures.append(f"{key}={_ids(value)}: {problem}")
    assert not failures, "\n".join(failures)


def test_every_model_entry_point_is_fuzzed() -> None:
    """New public builders of the model wing must get a target here."""
    covered = {name.split(".")[-1].split("(")[0] for name in TARGETS}
    for module, ignored in (
        (probes, {"MAX_N", "MAX_NOLL", "load", "recipe", "build"}),
        (scans, {"Scan", "RECIPE_FORMAT", "RECIPE_VERSION", "MAX_POSITIONS"}),
        (objects, {"FAMILIES", "RECIPE_FORMAT", "RECIPE_VERSION", "MAX_SIDE", "recipe", "build"}),
    ):  # load/recipe/build: tested below with files and recipes
        missing = set(module.__all__) - covered - ignored
        assert not missing, f"{module.__name__}: no fuzz target for {sorted(missing)}"


# --------------------------------------------------------------------------- regressions

# One call per defect class this audit found (each crashed, hung, leaked an unnamed or
# foreign exception, or returned NaN before the fix), with what the message must contain.
_HUGE_ZERO = np.zeros((10**6, 1))
REGRESSIONS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # hangs: a Noll index of 2**63 looped for ever; huge leaf radii never covered the image
    ("noll huge", lambda: probes.noll_to_nm(2**63), ValueError, "j must be <="),
    ("zernike j huge", lambda: probes.zernike_polynomial(10**6, 0.5, 0.0), ValueError, "j must"),
    (
        "dead leaves radius huge",
        lambda: objects.dead_leaves(20, radius_max_px=2.0**63),
        ValueError,
        "radius_max_px must be <=",
    ),
    # OverflowError / numpy's own messages
    ("dead leaves alpha", lambda: objects.dead_leaves(20, alpha=1e308), ValueError, "alpha"),
    ("points sigma", lambda: objects.points(20, sigma_px=1e308), ValueError, "sigma_px"),
    (
        "zone plate denormal",
        lambda: probes.fresnel_zone_plate(G, 5e-324, 500e-9),
        ValueError,
        "diameter_m",
    ),
    ("zone plate huge", lambda: probes.fresnel_zone_plate(G, 1e308, 500e-9), ValueError, "1e+308"),
    ("gaussian underflow", lambda: probes.gaussian(N, 5e-324), ValueError, "sigma_px=5e-324"),
    ("zernike rms", lambda: probes.zernike(N, seed=1, rms_rad=1e308), ValueError, "rms_rad"),
    # silent non-finite output
    ("propagate huge", lambda: probes.propagate(PROBE, 1e308, G), ValueError, "distance_m"),
    ("zernike rho huge", lambda: probes.zernike_polynomial(4, 1e200, 0.0), ValueError, "rho"),
    ("hexagonal overflow", lambda: scans.hexagonal(3, 4, 1e308), ValueError, "step_px"),
    ("fermat overflow", lambda: scans.fermat_spiral(10, 1e308), ValueError, "step_px"),
    (
        "drift overflow",
        lambda: SCAN.drift((0.0, 0.0), random_walk_px=1e308, seed=1),
        ValueError,
        "random_walk_px",
    ),
    ("drift velocity", lambda: SCAN.drift((1e308, 1e308)), ValueError, "velocity_px"),
    # 0-d arrays and dicts taken for pairs ("len() of unsized object", KeyError)
    ("0-d shape", lambda: objects.lines(np.array(16)), TypeError, "shape"),
    ("0-d velocity", lambda: SCAN.drift(np.array(2.0)), TypeError, "velocity_px"),
    ("dict pair", lambda: objects.grf(8, phase={"a": 0, "b": 1}), TypeError, "phase"),
    # arrays where a name goes ("truth value of an array is ambiguous", "unhashable")
    ("dtype array", lambda: Detector(dtype=np.array([1.0, 2.0])), TypeError, "dtype"),
    ("eiger size list", lambda: Detector.eiger(size=[1, 2]), ValueError, "size"),
    ("eiger generation bool", lambda: Detector.eiger(generation=True), ValueError, "generation"),
    ("preset array", lambda: Detector.preset(np.array([])), ValueError, "name"),
    (
        "clip_negative array",
        lambda: Detector().readings_to_photons(np.ones((4, 4)), clip_negative=np.array([1, 2])),
        TypeError,
        "clip_negative",
    ),
    (
        "masked_value str",
        lambda: Detector().readings_to_photons(np.ones((4, 4)), masked_value="x"),
        TypeError,
        "masked_value",
    ),
    # complex silently cast to real (the imaginary part dropped), strings parsed as numbers
    (
        "complex texture",
        lambda: objects.texture_to_object(np.full((2, 2), 0.5 + 0.5j)),
        TypeError,
        "t must be a real array",
    ),
    ("string rho", lambda: probes.zernike_polynomial(4, "0.5", 0.0), TypeError, "rho"),
    # sizes from a geometry or a record that overflowed int64 or NumPy's allocator
    (
        "zone plate geometry.N huge",
        lambda: probes.fresnel_zone_plate(Geometry(8000.0, 2.0, 75e-6, 2**40), 50e-6, 500e-9),
        ValueError,
        "geometry.N must be <=",
    ),
    ("module_px huge", lambda: Detector(module_px=(2**64, 8)), ValueError, "module_px"),
    (
        "recorded defect table",
        lambda: Detector.from_dict({**Detector().to_dict(), "dead_pixels": {}}),
        ValueError,
        "dead_pixels must be a table",
    ),
    # sizes no machine holds: refused with the bytes asked, before allocating
    ("mask huge N", lambda: Detector().mask(2**40), ValueError, "bytes"),
    (
        "zernike broadcast huge",
        lambda: probes.zernike_polynomial(4, _HUGE_ZERO, _HUGE_ZERO.T),
        ValueError,
        "bytes",
    ),
    # campaign distributions that passed validation and then overflowed or failed in NumPy
    (
        "uniform width overflows",
        lambda: _campaign.draw({"uniform": [-1e308, 1e308]}, seed=1, index=0, path="x"),
        ValueError,
        "x: uniform width",
    ),
    (
        "randint beyond int64",
        lambda: _campaign.draw({"randint": [0, 2**70]}, seed=1, index=0, path="x"),
        ValueError,
        "x: randint bounds must fit int64",
    ),
    (
        "normal overflows",
        lambda: _campaign.draw({"normal": [0.0, 1e308]}, seed=1, index=0, path="x"),
        ValueError,
        "x: normal mean",
    ),
    (
        "weights overflow",
        lambda: _campaign.draw(
            {"choice": [1, 2], "weights": [1e308, 1e308]}, seed=1, index=0, path="x"
        ),
        ValueError,
        "x: weights",
    ),  # fmt: skip
    (
        "draw unvalidated",
        lambda: _campaign.draw({"uniform": [math.nan, 1.0]}, seed=1, index=0, path="x"),
        ValueError,
        "x: uniform bounds must be finite",
    ),
    # second audit (2026-12-02): OverflowError from integers beyond float64
    (
        "bound beyond float64",
        lambda: _campaign.draw({"uniform": [1, 2**1100]}, seed=1, index=0, path="x"),
        ValueError,
        "x: uniform must be a number within float64's range",
    ),
    (
        "weight beyond float64",
        lambda: _campaign.draw(
            {"choice": [1.0, 2.0], "weights": [2**2000, 1]}, seed=1, index=0, path="x"
        ),
        ValueError,
        "x: weights must be a number within float64's range",
    ),  # fmt: skip
    ("real beyond float64", lambda: objects.points(20, sigma_px=2**2000), ValueError, "sigma_px"),
    # RecursionError from nesting deeper than the interpreter's limit
    (
        "draw nested 5000 deep",
        lambda: _campaign.draw(_deep(5000), seed=1, index=0, path="x"),
        ValueError,
        "dist must nest",
    ),  # fmt: skip
    (
        "campaign nested 5000 deep",
        lambda: ptyfast.Campaign(
            {"probe": {"builder": "gaussian", "sigma_px": _deep(5000)}}, n_experiments=1
        ),
        ValueError,
        "spec must nest",
    ),  # fmt: skip
    (
        "recipe nested 600 deep",
        lambda: recipes.loads("x = " + "[" * 600 + "]" * 600),
        ValueError,
        "nested too deeply",
    ),  # fmt: skip
    # ValueError for a value of the wrong type; NumPy's messages for ragged lists
    ("disk scale str", lambda: probes.disk(32, scale="3"), TypeError, "scale"),
    ("stream None", lambda: Detector(poisson_stream=None), TypeError, "poisson_stream"),
    ("dtype None", lambda: Detector(dtype=None), TypeError, "dtype"),
    (
        "dead pixels int",
        lambda: Detector(dead_pixels=np.zeros((8, 8), int)),
        TypeError,
        "dead_pixels",
    ),  # fmt: skip
    (
        "dead pixels ragged",
        lambda: Detector(dead_pixels=[[True, False], [False]]),
        TypeError,
        "dead_pixels",
    ),  # fmt: skip
    ("affine ragged", lambda: SCAN.affine([[[3], 0], [0, 1]]), TypeError, "matrix must be"),
    ("scan ragged", lambda: scans.Scan([[1.0, 2.0], [3.0]]), TypeError, "nominal must be"),
    ("custom ragged", lambda: scans.custom([[1.0], [2.0, 3.0]], [1.0, 2.0]), TypeError, "x must"),
    # accepted, then failed at use under an internal name
    (
        "dead time over a denormal exposure",
        lambda: Detector(dead_time_s=1.0, exposure_s=5e-324),
        ValueError,
        "dead_time_s / exposure_s must be finite",
    ),
    (
        "record version True",
        lambda: Detector.from_dict({**Detector().to_dict(), "version": True}),
        ValueError,
        "version",
    ),
]


def _deep(n: int) -> Any:
    d: Any = 1.0
    for _ in range(n):
        d = [d]
    return d


def test_a_negative_zero_jitter_is_no_jitter() -> None:
    assert np.array_equal(SCAN.jitter(-0.0, seed=1).true, SCAN.true)


@pytest.mark.parametrize(
    ("call", "exc", "text"), [r[1:] for r in REGRESSIONS], ids=[r[0] for r in REGRESSIONS]
)
def test_regression(call: Callable[[], Any], exc: type[Exception], text: str) -> None:
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)
    if text == "bytes":  # require_memory's message: asked and available
        assert "available" in str(info.value) or "any machine" in str(info.value)


# --------------------------------------------------------------------------- arrays


@st.composite
def strided(draw: st.DrawFn, base: np.ndarray) -> np.ndarray:
    """``base``'s values as a non-contiguous and/or read-only array (a view of a bigger one)."""
    step = draw(st.sampled_from([1, 2, 3]))
    order = draw(st.sampled_from(["C", "F"]))
    big = np.zeros((*base.shape[:-1], base.shape[-1] * step), dtype=base.dtype, order=order)
    view = big[..., ::step]
    view[...] = base
    if draw(st.booleans()):
        view.flags.writeable = False
    return view


@FUZZ
@given(data=st.data())
def test_noncontiguous_readonly_inputs_give_the_same_results(data: st.DataObject) -> None:
    """Views with strides, Fortran order or read-only flags are accepted, left unchanged, and
    give exactly what contiguous arrays give."""
    t = np.linspace(0.0, 1.0, 20).reshape(4, 5)
    x, y = np.arange(6.0), np.arange(6.0)[::-1].copy()
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (probes.normalize, dict(probe=PROBE)),
        (probes.propagate, dict(probe=PROBE, distance_m=1e-5, geometry=G)),
        (probes.modes, dict(primary=PROBE, n=2)),
        (probes.zernike, dict(N=N, coefficients=np.array([0.0, 0.0, 0.0, 0.3]))),
        (scans.custom, dict(x=x, y=y)),
        (SCAN.affine, dict(matrix=np.array([[1.0, 0.1], [0.0, 1.0]]))),
        (objects.texture_to_object, dict(t=t)),
        (Detector(gain=2.0).readings_to_photons, dict(readings=np.ones((2, 4, 4)))),
    ]
    fn, kwargs = calls[data.draw(st.integers(0, len(calls) - 1), label="call")]
    expected = fn(**kwargs)
    odd = {k: data.draw(strided(v), label=k) if isinstance(v, np.ndarray) else v
           for k, v in kwargs.items()}  # fmt: skip
    before = _snapshot(odd)
    got = fn(**odd)
    assert _snapshot(odd) == before
    for a, b in zip(_arrays(expected), _arrays(got), strict=True):
        np.testing.assert_array_equal(a, b)


def test_experiment_takes_readonly_views_and_leaves_them_unchanged() -> None:
    obj = np.asfortranarray(OBJ)
    obj.flags.writeable = False
    probe = np.zeros((N, 2 * N), np.complex64)[:, ::2]
    probe[...] = PROBE
    probe.flags.writeable = False
    before = (obj.tobytes(), probe.tobytes())
    a = _experiment.simulate(_experiment.Experiment(obj, probe, SCAN, None, 1e6, G), seed=3)
    b = _experiment.simulate(_experiment.Experiment(OBJ, PROBE, SCAN, None, 1e6, G), seed=3)
    assert (obj.tobytes(), probe.tobytes()) == before
    np.testing.assert_array_equal(a.diffraction, b.diffraction)


# --------------------------------------------------------------------------- recipes

RECIPE: dict[str, Any] = {
    "experiment": {"photons": 1e6, "seed": 7, "patches": False},
    "geometry": {"energy_eV": 8000.0, "distance_m": 2.0, "detector_pixel_m": 75e-6, "N": N},
    "object": {"family": "dead_leaves", "shape": [48, 48], "amplitude": [1.0, 0.6], "seed": 1},
    "probe": {"builder": "gaussian", "sigma_px": 3.0, "operations": [{"op": "modes", "n": 2}]},
    "scan": {
        "builder": "raster",
        "rows": 3,
        "cols": 3,
        "step_px": 3.0,
        "errors": [
            {"op": "jitter", "sigma_px": 0.2, "seed": 5},
            {"op": "drift", "velocity_px": [0.01, 0.0]},
        ],
    },  # fmt: skip
    "detector": {
        "preset": "eiger",
        "beamstop_radius_px": 1.0,
        "dead_pixels": {"shape": [N, N], "pixels": [[1, 2]]},
    },
}
CAMPAIGN = {
    **copy.deepcopy(RECIPE),
    "campaign": {"name": "c", "n_experiments": 2, "seed": 3},
    "experiment": {"photons": {"log_uniform": [1e4, 1e6]}},
}

# Hostile recipe values: those above and impossible distributions.
RECIPE_VALUES: list[Any] = [
    v for v in HOSTILE if not isinstance(v, np.ndarray | np.generic | _Odd | complex)
] + [
    [],
    {},
    {"uniform": [1, 0]},
    {"uniform": [-1e308, 1e308]},
    {"log_uniform": [-1, 1]},
    {"normal": [0, -1]},
    {"normal": [0, 1e308]},
    {"normal": [0, 1], "bounds": [100, 101]},
    {"randint": [5, 1]},
    {"randint": [0, 2**70]},
    {"choice": []},
    {"choice": [1, 2], "weights": [-1, 1]},
    {"choice": [1, 2], "weights": [1e308, 1e308]},
    {"fixed": math.nan},
    {"bogus": 1},
    {"shape": [10**6, 10**6], "pixels": []},
    {"shape": [N, N], "pixels": [[99, 1]]},
]


def _paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


def _edit(doc: dict[str, Any], path: tuple, value: Any, delete: bool) -> None:
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(value)


def _run_recipe(doc: Any) -> None:
    if isinstance(doc, dict) and "campaign" in doc:
        c = ptyfast.Campaign.from_dict(doc)
        for i in range(len(c)):
            c.experiment(i)
    else:
        ds = recipes.plan(doc).simulate()
        assert np.all(np.isfinite(ds.diffraction.astype(np.float64)))


@pytest.mark.parametrize("base", [RECIPE, CAMPAIGN], ids=["experiment", "campaign"])
def test_recipe_every_key_deleted_or_unknown(base: dict[str, Any]) -> None:
    _run_recipe(copy.deepcopy(base))  # the valid recipe works
    failures = []
    for path in _paths(base):
        doc = copy.deepcopy(base)
        _edit(doc, path, None, delete=True)
        try:
            _run_recipe(doc)
        except (ValueError, TypeError):
            pass
        except Exception as exc:
            failures.append(f"del {path}: {type(exc).__name__}: {exc}")
    for section in base:
        doc = copy.deepcopy(base)
        doc[section]["unknown_key"] = 1
        with pytest.raises(ValueError, match="unknown"):
            _run_recipe(doc)
    for doc in (None, 1, [], {}, {"object": 1}, {"nonsense": {}}):
        with pytest.raises((ValueError, TypeError)):
            _run_recipe(doc)
    assert not failures, "\n".join(failures)


@FUZZ
@given(data=st.data())
def test_fuzz_recipe_values(data: st.DataObject) -> None:
    """Up to two values of a recipe (experiment or campaign) replaced by hostile ones."""
    base = data.draw(st.sampled_from([RECIPE, CAMPAIGN]), label="base")
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 2), label="edits")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        value = data.draw(st.sampled_from(RECIPE_VALUES), label="value")
        _edit(doc, path, value, delete=False)
    before = copy.deepcopy(doc)
    try:
        _run_recipe(doc)
    except (ValueError, TypeError):
        pass
    assert repr(doc) == repr(before), "the recipe document was modified"


def test_recipe_dead_pixel_table_refused_before_allocating() -> None:
    doc = copy.deepcopy(RECIPE)
    doc["detector"]["dead_pixels"] = {"shape": [2**40, 2**40], "pixels": []}
    with pytest.raises(ValueError, match="bytes"):
        recipes.plan(doc)
    doc["detector"]["dead_pixels"] = {"shape": [N, N], "pixels": [[2**63, 0]]}
    with pytest.raises(ValueError, match=r"dead_pixels\.pixels must be within"):
        recipes.plan(doc)


def test_campaign_section_drawn_to_a_non_table() -> None:
    doc = copy.deepcopy(CAMPAIGN)
    doc["scan"] = {"fixed": math.nan}
    with pytest.raises(ValueError, match=r"\[scan\] must be a table"):
        ptyfast.Campaign.from_dict(doc)


def test_recipe_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        recipes.load(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="cannot be read"):
        recipes.load(tmp_path)
    for text in ("x = = 1", "\x00\xff", "[object]\nfamily = 'grf'\n"):
        (tmp_path / "r.toml").write_text(text, errors="surrogateescape")
        with pytest.raises(ValueError):
            recipes.plan(tmp_path / "r.toml")


# --------------------------------------------------------------------------- files

FORMATS = {"npz": "d.npz", "ptychodus": "d.ptychodus.h5", "cxi": "d.cxi", "zarr": "d.zarr"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Any]:
    pytest.importorskip("h5py")
    root = tmp_path_factory.mktemp("formats")
    ds = _experiment.simulate(EXPERIMENT, seed=2)
    files = {}
    for fmt, name in FORMATS.items():
        if fmt == "zarr" and not _has("zarr"):
            continue
        files[fmt] = pio.save(ds, root / name)
    return {"root": root, "files": files, "dataset": ds}


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _read(path: Any) -> None:
    ds = pio.open(path)
    assert ds.diffraction.shape[0] == ds.positions_true.shape[0]


@FUZZ
@given(
    fmt=st.sampled_from(["npz", "ptychodus", "cxi"]),
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    tail=st.binary(max_size=8),
)
def test_fuzz_corrupt_files(saved, tmp_path_factory, fmt, which, edits, cut, tail) -> None:
    """Byte flips, truncations and trailing garbage in any file of a dataset: reading it
    gives a dataset or a ValueError/TypeError (never BadZipFile, zlib, EOF, OSError...)."""
    paths = saved["files"][fmt]
    work = tmp_path_factory.mktemp("corrupt")
    copies = [work / p.name for p in paths]
    for src, dst in zip(paths, copies, strict=True):
        dst.write_bytes(src.read_bytes())
    victim = copies[min(which, len(copies) - 1)]
    data = bytearray(victim.read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    victim.write_bytes(bytes(data + tail))
    try:
        _read(copies[0])
    except (ValueError, TypeError):
        pass


def _npz_with_member_damaged(path: Any, member: str) -> bytes:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(_bytesio.BytesIO(bytes(raw))) as z:
        info = z.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size - 1] ^= 0xFF  # the member's last data byte: CRC fails
    return bytes(raw)


@pytest.mark.parametrize("member", ["_metadata.npy", "objectGuess.npy", "readings.npy"])
def test_npz_damaged_member_is_named(saved, tmp_path, member) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_npz_with_member_damaged(saved["files"]["npz"][0], member))
    with pytest.raises(pio.FormatError, match=member.removesuffix(".npy")):
        _read(bad)


def test_npz_declared_shape_must_match_the_member(saved, tmp_path) -> None:
    """A header declaring more rows than the member holds is refused before reading."""
    src = saved["files"]["npz"][0]
    out = tmp_path / "lie.npz"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "objectGuess.npy":
                data = data.replace(b"(48, 48)", b"(99999999, 48)", 1)
            zout.writestr(info, data)
    with pytest.raises(pio.FormatError, match=r"'objectGuess' declares .* bytes"):
        _read(out)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_wrong_paths(saved, tmp_path, fmt) -> None:
    if fmt not in saved["files"]:
        pytest.skip(f"{fmt} needs an optional package")
    ds = saved["dataset"]
    target = tmp_path / FORMATS[fmt]
    with pytest.raises(FileNotFoundError, match="missing"):
        pio.open(tmp_path / f"missing{target.suffix}")
    with pytest.raises(ValueError):
        pio.open(tmp_path)  # a directory that is no store
    (tmp_path / "text").write_text("not a dataset")
    with pytest.raises(ValueError, match="not a ptyfast dataset"):
        pio.open(tmp_path / "text")
    pio.save(ds, target)
    with pytest.raises(ValueError, match="exists"):
        pio.save(ds, target)
    with pytest.raises((ValueError, OSError), match="nowhere"):
        pio.save(ds, f"/proc/nowhere/{FORMATS[fmt]}")  # a directory nobody can create
    with pytest.raises(TypeError, match="dataset"):
        pio.save("not a dataset", tmp_path / f"other{target.suffix}")
    for bad in (1, None, 2.5):
        with pytest.raises(TypeError):
            pio.save(ds, bad)


# --------------------------------------------------------------------------- distributed


def test_distributed_arguments_are_checked_before_the_client() -> None:
    """No cluster is started: every argument is refused before a client is looked up."""
    pytest.importorskip("distributed")
    pytest.importorskip("zarr")
    from ptyfast import distributed as D

    ok = dict(experiment_or_campaign=EXPERIMENT, store="x.zarr", seed=1)
    for key, value, exc, text in [
        ("experiment_or_campaign", "nope", TypeError, "experiment_or_campaign"),
        ("store", 3, TypeError, "store"),
        ("store", "", ValueError, "store must not be empty"),
        ("patches", "yes", TypeError, "patches"),
        ("progress", 1, TypeError, "progress"),
        ("shard_size", 0, ValueError, "shard_size"),
        ("shard_size", 2.5, TypeError, "shard_size"),
        ("embed_max_bytes", -1, ValueError, "embed_max_bytes"),
        ("seed", -1, ValueError, "seed"),
        ("seed", "1", TypeError, "seed"),
        ("client", "a client", TypeError, "client"),
    ]:
        with pytest.raises(exc, match=text):
            D.simulate(**{**ok, key: value})


# --------------------------------------------------------------------------- plotting


def test_preview_arguments_are_checked_before_drawing(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from ptyfast import plotting

    with pytest.raises(ValueError, match="png"):
        plotting.preview(EXPERIMENT, tmp_path / "p.bogus", seed=1)
    with pytest.raises(ValueError, match="png"):
        plotting.preview_format(tmp_path)
    for kwargs, exc in [
        (dict(n_patterns=0), ValueError),
        (dict(n_patterns="3"), ValueError),
        (dict(dpi=math.nan), ValueError),
        (dict(dpi=-1), ValueError),
        (dict(name=3), TypeError),
    ]:
        with pytest.raises(exc, match=next(iter(kwargs))):
            plotting.preview(EXPERIMENT, tmp_path / "p.png", seed=1, **kwargs)
    with pytest.raises(TypeError, match="source"):
        plotting.preview("nope", tmp_path / "p.png")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- CLI


def _cli(capsys, *argv: str) -> tuple[int, list[str]]:
    rc = main(list(argv))
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(recipes.dumps(RECIPE))
    return path


CLI_ERRORS = [
    ("simulate --recipe {dir}/missing.toml -o {dir}/x.npz", "missing.toml"),
    ("simulate --recipe {dir} -o {dir}/x.npz", "cannot be read"),
    ("simulate --recipe {recipe} -o {dir}/x.bogus", "x.bogus"),
    ("simulate --recipe {recipe} --probe disk -o {dir}/x.npz", "--probe"),
    ("simulate --recipe {recipe} --chunk-size 0 -o {dir}/x.npz", "--chunk-size"),
    ("simulate --recipe {recipe} --shard-size 0 -o {dir}/x.zarr", "--shard-size"),
    ("simulate --recipe {recipe} --shard-size 4 -o {dir}/x.zarr", "--shard-size"),
    ("simulate --recipe {recipe} --workers 0 -o {dir}/x.zarr", "--workers"),
    # --dry-run refuses what the cluster run refuses (the CLI guide: it checks what the run does)
    ("simulate --recipe {recipe} --workers 0 -o {dir}/x.zarr --dry-run", "--workers"),
    ("simulate --recipe {recipe} --workers 2 -o {dir}/x.npz --dry-run", "must end in .zarr"),
    (
        "simulate --recipe {recipe} --scheduler tcp://h:1 --preview {dir}/p.png -o {dir}/x.zarr "
        "--dry-run",
        "--preview is not available",
    ),
    ("simulate --recipe {recipe} --preview {dir}/p.bogus -o {dir}/x.npz", "p.bogus"),
    ("simulate --nphotons nan --scan raster -o {dir}/x.npz", "--nphotons"),
    ("simulate --step-px inf --scan raster -o {dir}/x.npz", "--step-px"),
    ("simulate --drift-px 1e308,1e308 -o {dir}/x.npz", "velocity_px"),
    ("simulate --drift-px a,b -o {dir}/x.npz", "--drift-px"),
    ("simulate --modes 0 -o {dir}/x.npz", "--modes"),
    ("simulate --modes 99999999999 -o {dir}/x.npz", "--modes must be an integer in"),
    ("simulate --probe gaussian --probe-param sigma_px=nan -o {dir}/x.npz", "sigma_px"),
    ("simulate --probe gaussian --probe-param bogus=1 -o {dir}/x.npz", "bogus"),
    ("simulate --probe gaussian --probe-param sigma_px -o {dir}/x.npz", "--probe-param"),
    ("simulate --object points --object-param sigma_px=1e308 -o {dir}/x.npz", "sigma_px"),
    (
        "simulate --object dead_leaves --object-param radius_max_px=1e30 -o {dir}/x.npz",
        "radius_max_px",
    ),
    ("simulate --detector eiger --detector-param qe=2 -o {dir}/x.npz", "qe"),
    ("simulate --detector eiger --detector-param dtype=[1,2] -o {dir}/x.npz", "dtype"),
    ("simulate --energy-eV 0 -o {dir}/x.npz", "--energy-eV"),
    ("info {dir}/missing.npz", "missing.npz"),
    ("info {dir}", "Zarr"),
    ("info {recipe}", "not a ptyfast dataset"),
    ("convert {dir}/missing.npz {dir}/b.npz", "missing.npz"),
    ("convert {recipe} {dir}/b.npz", "not a ptyfast dataset"),
    ("recipe --from {dir}/missing.npz", "missing.npz"),
    ("recipe --from {recipe}", "not a ptyfast dataset"),
]


@pytest.mark.parametrize(("command", "text"), CLI_ERRORS, ids=[c for c, _ in CLI_ERRORS])
def test_cli_user_errors_are_one_line_and_exit_2(capsys, tmp_path, recipe_file, command, text):
    argv = command.format(dir=tmp_path, recipe=recipe_file).split()
    rc, err = _cli(capsys, *argv)
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("ptyfast: error:"), err
    assert text in err[0]
    assert not [p for p in tmp_path.iterdir() if p != recipe_file]  # nothing written


# --------------------------------------------------------------------------- probe files


@pytest.fixture(scope="module")
def probe_files(tmp_path_factory) -> dict[str, bytes]:
    h5py = pytest.importorskip("h5py")
    root = tmp_path_factory.mktemp("probes")
    np.savez(root / "p.npz", probeGuess=PROBE)
    with h5py.File(root / "p.h5", "w") as f:
        f["probe"] = PROBE
    return {ext: (root / f"p.{ext}").read_bytes() for ext in ("npz", "h5")}


@FUZZ
@given(
    ext=st.sampled_from(["npz", "h5"]),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4
    ),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_corrupt_probe_files(probe_files, tmp_path_factory, ext, edits, cut) -> None:
    data = bytearray(probe_files[ext])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path_factory.mktemp("p") / f"p.{ext}"
    path.write_bytes(bytes(data))
    try:
        p = probes.load(path)
    except (ValueError, TypeError):
        return
    assert p.dtype == np.complex64 and np.all(np.isfinite(p))


def test_probe_load_wrong_paths_and_contents(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        probes.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="directory"):
        probes.load(tmp_path)
    with pytest.raises(TypeError, match="path"):
        probes.load(3)
    with pytest.raises(TypeError, match="key"):
        probes.load(tmp_path / "x.npz", key=3)
    for name, arr in [
        ("object", np.array([{"a": 1}], dtype=object)),
        ("strings", np.array(["ab"])),
        ("1-D", np.ones(5)),
        ("NaN", np.full((4, 4), np.nan)),
        ("zeros", np.zeros((4, 4))),
        ("too wide", np.zeros((2, MAX_PROBE + 1), np.bool_)),
    ]:
        np.savez(tmp_path / f"{name}.npz", probeGuess=arr)
        with pytest.raises((ValueError, TypeError)):
            probes.load(tmp_path / f"{name}.npz")


MAX_PROBE = probes.MAX_N


# --------------------------------------------------------------------------- provenance


def _leaves(d: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out.extend(_leaves(v, (*prefix, k)))
    elif isinstance(d, list):
        for i, v in enumerate(d[:2]):
            out.extend(_leaves(v, (*prefix, i)))
    return out


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return _experiment.simulate(EXPERIMENT, seed=4).provenance


@FUZZ
@given(data=st.data())
def test_fuzz_replay_of_a_damaged_provenance(recorded, data: st.DataObject) -> None:
    """Any field of a provenance record replaced or deleted: replay gives a dataset or a
    ValueError/TypeError (ProvenanceError), never AttributeError, KeyError, OverflowError."""
    doc = copy.deepcopy(recorded)
    path = data.draw(st.sampled_from(_leaves(doc)), label="path")
    value = data.draw(st.sampled_from([*RECIPE_VALUES, "DELETE"]), label="value")
    node = doc
    for k in path[:-1]:
        node = node[k]
    if value == "DELETE":
        if isinstance(node, list):
            return
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(value)
    try:
        ds = ptyfast.replay(doc)
    except (ValueError, TypeError):
        return
    assert np.all(np.isfinite(ds.diffraction.astype(np.float64)))


def test_replay_result_must_be_a_table(recorded) -> None:
    with pytest.raises(ValueError, match="result"):
        ptyfast.replay({**recorded, "result": None})

"""ptyfast.Campaign and TOML recipes.

Draws against their distributions (ranges always; means and frequencies within 5σ of their
estimators), keyed draws (independent of other keys and of the campaign size), replay of any
experiment bit for bit, validation of impossible specifications (each path named), recipe
files, the TOML writer against ``tomllib``, and provenance ↔ recipe round trips.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from test_provenance import assert_same

import ptyfast
from ptyfast.model import campaign as campaign_mod
from ptyfast.model import recipes
from ptyfast.model.campaign import CampaignError, draw
from ptyfast.model.recipes import RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def small_spec(**over):
    spec = {
        "experiment": {"photons": {"log_uniform": [1e3, 1e5]}},
        "object": {
            "choice": [
                {"family": "grf", "shape": 64},
                {"family": "dead_leaves", "shape": 64, "alpha": {"uniform": [2.0, 4.0]}},
            ]
        },
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": {"uniform": [2.0, 4.0]}},
        "scan": {
            "builder": "fermat_spiral",
            "n": {"randint": [8, 16]},
            "step_px": {"normal": [1.5, 0.3], "bounds": [1.0, 2.0]},
            "errors": [{"op": "jitter", "sigma_px": {"uniform": [0.0, 0.5]}}],
        },
        "detector": {"preset": {"choice": ["ideal", "integrating"], "weights": [3, 1]}},
    }
    spec.update(over)
    return spec


# --------------------------------------------------------------------------- draws


def test_draws_lie_within_their_distributions_and_match_their_moments():
    c = ptyfast.Campaign(small_spec(), n_experiments=400, seed=11)
    photons, sigma, n, step, jit, preset, fam = [], [], [], [], [], [], []
    for i in range(c.n_experiments):
        spec, draws = c.resolve(i)
        photons.append(spec["experiment"]["photons"])
        sigma.append(spec["probe"]["sigma_px"])
        n.append(spec["scan"]["n"])
        step.append(spec["scan"]["step_px"])
        jit.append(spec["scan"]["errors"][0]["sigma_px"])
        preset.append(spec["detector"]["preset"])
        fam.append(spec["object"]["family"])
        assert draws["probe.sigma_px"] == sigma[-1]
        assert isinstance(spec["scan"]["errors"][0]["seed"], int)
        assert isinstance(spec["object"]["seed"], int)
    m = len(photons)
    logp, sigma, step, jit, n = map(np.asarray, (np.log(photons), sigma, step, jit, n))
    assert logp.min() >= math.log(1e3) and logp.max() <= math.log(1e5)
    assert sigma.min() >= 2.0 and sigma.max() <= 4.0
    assert step.min() >= 1.0 and step.max() <= 2.0
    assert set(n) <= set(range(8, 17)) and n.dtype.kind == "i" and len(set(n)) == 9
    # uniform means within 5σ (σ of the mean = width / sqrt(12 m))
    for v, lo, hi in ((logp, math.log(1e3), math.log(1e5)), (sigma, 2.0, 4.0), (jit, 0, 0.5)):
        assert abs(v.mean() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * m)
    # truncated normal mean: mu + sd (φ(a) − φ(b)) / (Φ(b) − Φ(a)) (symmetric here: mu)
    assert abs(step.mean() - 1.5) < 5 * 0.3 / math.sqrt(m)
    # choice frequencies: binomial
    for freq, p in (
        (np.mean(np.asarray(preset) == "ideal"), 0.75),
        (np.mean(np.asarray(fam) == "grf"), 0.5),
    ):
        assert abs(freq - p) < 5 * math.sqrt(p * (1 - p) / m)


def test_draws_are_keyed_by_path_not_by_order_or_size():
    a = ptyfast.Campaign(small_spec(), n_experiments=5, seed=3)
    b = ptyfast.Campaign(small_spec(), n_experiments=50, seed=3)
    spec = small_spec()
    spec["experiment"] = {"photons": 1e4}  # another key changed: the others keep their draws
    spec = dict(reversed(list(spec.items())))  # and another key order
    c = ptyfast.Campaign(spec, n_experiments=5, seed=3)
    for i in range(5):
        ra, _ = a.resolve(i)
        rb, _ = b.resolve(i)
        rc, _ = c.resolve(i)
        assert ra == rb
        assert ra["probe"] == rc["probe"] and ra["scan"] == rc["scan"]
    assert a.resolve(0)[0] != a.resolve(1)[0]
    assert draw({"normal": [0.0, 0.0]}, seed=1, index=0, path="x") == 0.0


def test_every_campaign_experiment_replays_bit_for_bit():
    c = ptyfast.Campaign(small_spec(), n_experiments=4, seed=5, name="t")
    for i in (0, 3):
        ds = c.simulate(i)
        block = ds.provenance["campaign"]
        assert block["index"] == i and block["seed"] == 5 and block["name"] == "t"
        assert recipes.loads(block["spec"]) == small_spec()
        assert "probe.sigma_px" in block["draws"]
        assert_same(ptyfast.replay(ds.provenance), ds)
    # Experiments differ (their own draws and seeds).
    assert c.experiment(0).intensity_scale != c.experiment(1).intensity_scale


def test_campaign_recipe_round_trip_and_files(tmp_path):
    c = ptyfast.Campaign(small_spec(), n_experiments=3, seed=None, name="rt")
    assert isinstance(c.seed, int)
    text = c.to_toml()
    c2 = ptyfast.Campaign.from_dict(recipes.loads(text))
    assert c2.to_dict() == c.to_dict()
    paths = c2.simulate_to(tmp_path / "out", indices=[1])
    assert paths == [tmp_path / "out" / "rt-00001.npz"]
    assert_same(ptyfast.open(paths[0]), c.simulate(1))
    # The provenance of one experiment gives back the whole campaign...
    ds = ptyfast.open(paths[0])
    back = ptyfast.Campaign.from_dict(recipes.loads(recipes.from_provenance(ds, campaign=True)))
    assert back.to_dict() == c.to_dict()
    # ...or just that experiment, every parameter explicit.
    one = recipes.plan(recipes.loads(recipes.from_provenance(ds)))
    again = one.simulate()
    np.testing.assert_array_equal(again.diffraction, ds.diffraction)
    assert again.provenance["experiment"] == ds.provenance["experiment"]
    assert again.provenance["simulation"] == ds.provenance["simulation"]


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda s: s["experiment"].update(photons={"uniform": [5.0, 1.0]}),
            "photons: uniform needs low <= high",
        ),
        (
            lambda s: s["experiment"].update(photons={"log_uniform": [0.0, 1.0]}),
            "log_uniform needs 0 < low",
        ),
        (
            lambda s: s["experiment"].update(photons={"uniform": [-1.0, 1.0]}),
            r"photons: uniform .* outside the parameter's domain \(0, inf\)",
        ),
        (
            lambda s: s["experiment"].update(photons={"normal": [1e4, 10.0]}),
            "give bounds within it",
        ),
        (lambda s: s["experiment"].update(photons=-3.0), r"experiment.photons = -3.0 is outside"),
        (lambda s: s["probe"].update(sigma_px={"normal": [1.0, -1.0]}), "sd >= 0"),
        (
            lambda s: s["probe"].update(sigma_px={"normal": [1.0, 0.1], "bounds": [50.0, 60.0]}),
            "hold no probability",
        ),
        (
            lambda s: s["probe"].update(sigma_px={"normal": [1.0, 0.1], "bounds": [3.0, 2.0]}),
            "bounds need low <= high",
        ),
        (
            lambda s: s["probe"].update(sigma_px={"uniform": [1.0, math.inf]}),
            "bounds must be finite",
        ),
        (lambda s: s["scan"].update(n={"randint": [5.0, 9]}), "pair of integers"),
        (lambda s: s["scan"].update(n={"randint": [9, 5]}), "randint needs lo <= hi"),
        (
            lambda s: s["scan"].update(n={"randint": [0, 5]}),
            r"scan.n: randint .* domain \[1, inf\)",
        ),
        (lambda s: s["detector"].update(preset={"choice": []}), "non-empty list"),
        (
            lambda s: s["detector"].update(preset={"choice": ["ideal"], "weights": [1, 2]}),
            "weights must be 1 numbers",
        ),
        (
            lambda s: s["detector"].update(preset={"choice": ["ideal"], "weights": [-1]}),
            "weights must be finite",
        ),
        (
            lambda s: s["detector"].update(qe={"choice": [0.5, 1.5]}),
            "choice option 1 = 1.5 is outside",
        ),
        (
            lambda s: s["scan"]["errors"][0].update(sigma_px={"uniform": [-0.1, 0.1]}),
            r"scan.errors\[0\].sigma_px",
        ),
        (lambda s: s["probe"].update(builder="laser"), r"\[probe\]: builder must be one of"),
        (lambda s: s.update(lens={}), "unknown section"),
        (lambda s: s.pop("scan"), r"needs the section\(s\) \['\[scan\]'\]"),
        (lambda s: s["detector"].update(preset="medipix"), "preset"),
        # Names that are not strings (TypeError "unhashable type" before).
        (lambda s: s["probe"].update(builder={"a": 1}), r"\[probe\]: builder must be one of"),
        (
            lambda s: s.update(object={"family": [], "shape": 64}),
            r"\[object\]: family must be one of .* got list \[\]",
        ),
        (
            lambda s: s["probe"].update(operations=[{"op": {"a": 1}}]),
            r"\[probe\]: operations\[0\]\['op'\] must be one of",
        ),
        (
            lambda s: s["scan"]["errors"][0].update(op=["jitter"]),
            r"\[scan\]: errors\[0\]\['op'\] must be one of",
        ),
        # Scan parameters are checked by name, as the object's and the probe's are (Python's
        # "got an unexpected keyword argument" before).
        (
            lambda s: s["scan"].update(sigma_px=1.0),
            r"\[scan\]: fermat_spiral: unknown parameters \['sigma_px'\]; expected "
            r"\['n', 'step_px'\]",
        ),
        (
            lambda s: s["scan"]["errors"][0].update(sigma=1.0),
            r"\[scan\]: errors\[0\] \(jitter\): unknown parameters \['sigma'\]",
        ),
        (lambda s: s["scan"].pop("step_px"), r"\[scan\]: fermat_spiral: missing parameters"),
        # A probe value only the builder checks (found when an experiment was simulated before).
        (lambda s: s["probe"].update(sigma_px=[[1]]), r"\[probe\]: sigma_px must be a real number"),
        (
            lambda s: s["probe"].update(operations=[{"op": "modes", "n": "3"}]),
            r"\[probe\]: n must be an integer",
        ),
    ],
)
def test_impossible_campaigns_are_refused_naming_the_path(edit, match):
    spec = small_spec()
    edit(spec)
    with pytest.raises(ValueError, match=match):
        ptyfast.Campaign(spec, n_experiments=2, seed=1)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"n_experiments": 0}, ValueError, "n_experiments must be >= 1"),
        ({"n_experiments": 2.5}, TypeError, "n_experiments must be an integer"),
        ({"n_experiments": 2, "seed": "x"}, TypeError, "seed"),
        ({"n_experiments": 2, "name": ""}, ValueError, "name must be usable in a file name"),
        ({"n_experiments": 2, "name": 5}, TypeError, "name must be a str"),
        ({"n_experiments": 2, "name": "../up"}, ValueError, r"name .* contains '/'"),
        ({"n_experiments": 2, "name": ".."}, ValueError, "name must be usable in a file name"),
    ],
)
def test_campaign_arguments_are_checked(kw, exc, match):
    with pytest.raises(exc, match=match):
        ptyfast.Campaign(small_spec(), **kw)


def risky_campaign(n_experiments=12):
    """Experiment 0 works; with seed 1, experiment 3 draws a beamstop larger than the 16²
    pattern and experiment 8 a step that takes the scan off the 64² object."""
    spec = small_spec()
    spec["scan"] = {**spec["scan"], "n": 40, "step_px": {"uniform": [1.0, 6.0]}}
    spec["detector"] = {"preset": "ideal", "beamstop_radius_px": {"uniform": [0.0, 12.0]}}
    return ptyfast.Campaign(spec, n_experiments=n_experiments, seed=1)


def plan_error(c, i):
    """The message of plan(i) (every array built) if it fails, else None."""
    try:
        c.plan(i)
    except ValueError as exc:
        return str(exc)
    return None


def test_check_refuses_exactly_the_experiments_that_cannot_be_built():
    c = risky_campaign()
    errors = {i: plan_error(c, i) for i in range(len(c))}
    bad = sorted(i for i, e in errors.items() if e)
    assert 0 not in bad and 3 in bad and 8 in bad and len(bad) < len(c), bad
    assert "beamstop" in errors[3] and "scan leaves the object" in errors[8]
    # Checked without the object arrays, each experiment fails exactly when building it with
    # them does, with the same message (experiment and draws named).
    for i, e in errors.items():
        if e is None:
            c.check([i])
        else:
            with pytest.raises(ValueError) as got:
                c.check([i])
            assert str(got.value) == e
    with pytest.raises(ValueError, match=rf"experiment {bad[0]} \(draws "):
        c.check()
    c.check([i for i in range(len(c)) if i not in bad])
    for indices, exc, match in (
        (5, TypeError, "indices must be an iterable"),
        ("0", TypeError, "indices must be an iterable"),
        ([0, 12], ValueError, "index must be <= 11"),
        ([0.5], TypeError, "index must be an integer"),
    ):
        with pytest.raises(exc, match=match):
            c.check(indices)
    with pytest.raises(ValueError, match="index must be <= 11"):
        c.plan(12)


def test_a_campaign_run_stops_before_any_file_when_an_experiment_cannot_be_built(tmp_path, capsys):
    from ptyfast import cli

    c = risky_campaign()
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"experiment 3 \(draws .*beamstop"):
        c.simulate_to(out)
    assert not out.exists()
    # The experiments that work run alone, and equal their in-memory datasets.
    paths = c.simulate_to(out, indices=[0, 1])
    assert [p.name for p in paths] == ["campaign-00000.npz", "campaign-00001.npz"]
    assert_same(ptyfast.open(paths[1]), c.simulate(1))
    recipe = tmp_path / "risky.toml"
    recipe.write_text(c.to_toml())
    target = tmp_path / "cli"
    assert cli.main(["simulate", "--recipe", str(recipe), "-o", f"{target}/", "-q"]) == 2
    err = capsys.readouterr().err
    assert "experiment 3 (draws" in err and "beamstop" in err and err.count("\n") == 1
    assert not target.exists() or not any(target.iterdir())


# --------------------------------------------------------------------------- recipe files


def test_example_template_is_a_working_campaign():
    doc = tomllib.loads(recipes.example())
    assert doc["campaign"]["n_experiments"] == 4
    c = ptyfast.Campaign.from_dict(doc)
    e = c.experiment(0)
    assert e.N == 64 and e.n_modes == 3 and e.geometry is not None
    # Without the campaign and its distributions it is one experiment.
    single = recipes.loads(recipes.dumps(c.resolve(1)[0]))
    p = recipes.plan(single)
    assert p.experiment.intensity_scale == c.experiment(1).intensity_scale


def test_experiment_recipe_derives_missing_seeds_from_its_seed(tmp_path):
    text = """
[experiment]
photons = 1e4
seed = 12
[object]
family = "dead_leaves"
shape = 64
[probe]
builder = "zernike"
N = 16
[scan]
builder = "random_uniform"
n = 10
width_px = 20.0
[[scan.errors]]
op = "jitter"
sigma_px = 0.2
"""
    path = tmp_path / "r.toml"
    path.write_text(text)
    a, b = recipes.plan(path), recipes.plan(recipes.load(path))
    assert a.seed == 12
    ds = a.simulate()
    np.testing.assert_array_equal(ds.diffraction, b.simulate().diffraction)
    s = ds.provenance["seeds"]
    for key in ("object.recipe.params.seed", "probe.recipe.params.seed", "scan.params.seed"):
        assert s[key] == recipes.derive_seed(
            12, 0, key.replace(".recipe.params", "").replace(".params", ""), bits=64
        )
    assert s["scan.errors[0].seed"] == recipes.derive_seed(12, 0, "scan.errors[0].seed")
    # Written back, every seed is explicit and the dataset comes back bit for bit.
    again = recipes.plan(recipes.loads(recipes.from_provenance(ds))).simulate()
    assert_same(again, ds)


def test_recipe_errors_name_the_section(tmp_path):
    base = {
        "object": {"family": "grf", "shape": 64},
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": 3.0},
        "scan": {"builder": "raster", "rows": 2, "cols": 2, "step_px": 3.0},
    }
    cases = [
        ({"object": {"family": "clouds", "shape": 64}}, r"\[object\]: family must be one of"),
        ({"scan": {"builder": "raster", "rows": 2}}, r"\[scan\]: .*cols"),
        (
            {"probe": {"builder": "fresnel_zone_plate", "diameter_m": 1e-5, "outer_zone_m": 5e-8}},
            r"\[probe\]: fresnel_zone_plate needs a geometry",
        ),
        (
            {"experiment": {"photons": {"uniform": [1.0, 2.0]}}},
            r"experiment.photons: a distribution needs a \[campaign\]",
        ),
        ({"experiment": {"colour": "red"}}, r"\[experiment\]: unknown key"),
        ({"detector": {"qe": 2.0}}, r"\[detector\]: qe must be in"),
        ({"campaign": {"n_experiments": 2}}, "use ptyfast.Campaign"),
    ]
    for over, match in cases:
        with pytest.raises(ValueError, match=match):
            recipes.plan({**base, **over})
    bad = tmp_path / "bad.toml"
    bad.write_text("[object\nfamily = 1")
    with pytest.raises(RecipeError, match="bad.toml is not valid TOML"):
        recipes.load(bad)
    with pytest.raises(FileNotFoundError, match="no such recipe file"):
        recipes.load(tmp_path / "missing.toml")


def test_toml_writer_round_trips_through_tomllib():
    doc = {
        "campaign": {"name": "a b", "seed": 2**63 + 5, "n_experiments": 3},
        "experiment": {"photons": 1e-300, "patches": True, "name": 'q"uo\\te\nnl'},
        "object": {"choice": [{"family": "grf", "shape": [3, 4]}, {"family": "lines", "x": -0.0}]},
        "scan": {
            "builder": "custom",
            "x": [0.1, 1 / 3, -2.5e-17, 1e22],
            "y": [math.inf, -math.inf, 0.0, 7.0],
            "errors": [{"op": "affine", "matrix": [[1.0, 0.5], [0.0, 1.0]], "skip": None}],
        },
        "detector": {"dead_pixels": {"shape": [4, 4], "pixels": [[0, 1], [2, 3]]}},
        "odd key": {"é": 1},
    }
    back = tomllib.loads(recipes.dumps(doc, comment="two\nlines"))
    want = {
        **doc,
        "scan": {**doc["scan"], "errors": [{"op": "affine", "matrix": [[1.0, 0.5], [0.0, 1.0]]}]},
    }
    assert back == want
    assert math.copysign(1, back["object"]["choice"][1]["x"]) == -1


def test_campaign_module_docstring_examples_run():
    import doctest

    for mod in (campaign_mod, recipes):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0


def test_from_dict_needs_a_campaign_section():
    with pytest.raises(CampaignError, match=r"needs a \[campaign\] section"):
        ptyfast.Campaign.from_dict(small_spec())
    with pytest.raises(CampaignError, match="unknown key"):
        ptyfast.Campaign.from_dict({"campaign": {"n_experiments": 1, "size": 3}, **small_spec()})
    with pytest.raises(CampaignError, match="needs n_experiments"):
        ptyfast.Campaign.from_dict({"campaign": {}, **small_spec()})


def test_open_normal_bounds_survive_provenance_and_replay():
    spec = small_spec()
    spec["experiment"]["photons"] = {"normal": [1e4, 3e3], "bounds": [1e3, math.inf]}
    c = ptyfast.Campaign(spec, n_experiments=2, seed=4)
    ds = c.simulate(1)
    assert ds.photons >= 1e3
    assert_same(ptyfast.replay(json.loads(json.dumps(ds.provenance))), ds)
    back = ptyfast.Campaign.from_dict(recipes.loads(recipes.from_provenance(ds, campaign=True)))
    assert back.to_dict() == c.to_dict()


def test_recipe_round_trip_with_geometry_zone_plate_and_propagation():
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
    e = ptyfast.Experiment(
        ptyfast.objects.recipe("points", shape=96, seed=3),
        ptyfast.probes.recipe(
            "fresnel_zone_plate",
            geometry=g,
            diameter_m=60e-6,
            outer_zone_m=200e-9,
            central_stop=0.3,
            operations=[
                {"op": "propagate", "distance_m": 2e-4, "geometry": g},
                {"op": "modes", "n": 2, "method": "random", "seed": None},
            ],
        ),
        ptyfast.scans.concentric(3, 4.0).affine([[1.0, 0.01], [0.0, 1.0]], offset_px=(0.5, 0)),
        ptyfast.Detector.pilatus(dead_fraction=0.01, bad_pixel_seed=None, pixel_m=75e-6),
        3e4,
        g,
    )
    ds = ptyfast.simulate(e, seed=2)
    text = recipes.from_provenance(ds)
    doc = tomllib.loads(text)
    assert "geometry" not in doc["probe"]  # taken from [geometry] when read back
    assert isinstance(doc["detector"]["bad_pixel_seed"], int)
    again = recipes.plan(doc).simulate()
    assert_same(again, ds)


@pytest.mark.parametrize("value", ["no", 2, None])
def test_progress_takes_only_booleans_everywhere(tmp_path, value):
    """A truthy ``progress="no"`` once showed bars; each entry point now refuses it first."""
    c = ptyfast.Campaign(small_spec(), n_experiments=2, seed=1)
    ds = c.simulate(0)
    calls = {
        "Campaign.check": lambda: c.check(progress=value),
        "Campaign.plan": lambda: c.plan(0, progress=value),
        "Campaign.simulate": lambda: c.simulate(0, progress=value),
        "Campaign.simulate_to": lambda: c.simulate_to(tmp_path / "out", progress=value),
        "Planned.simulate": lambda: c.plan(0).simulate(progress=value),
        "Planned.simulate_to": lambda: c.plan(0).simulate_to(tmp_path / "x.npz", progress=value),
        "replay": lambda: ptyfast.replay(ds, progress=value),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match="progress must be True or False"):
            call()
            pytest.fail(f"{name} accepted progress={value!r}")
    assert not list(tmp_path.iterdir()), "nothing may be written"

"""Semantics audit of campaign distributions and recipe keys.

Statistical tests use fixed seeds (so they are deterministic) and the threshold ``p > 1e-6``:
were the seed drawn at random, a correct implementation would fail each test with
probability below 1e-6. Every law test is paired with a check that the same test rejects a
wrong law (it has power at the sample sizes used).

* ``test_continuous_draws_follow_their_documented_law``: uniform, log-uniform, normal and
  truncated normals (two-sided, one-sided, far tail), 4000 draws of ``campaign.draw`` each,
  one-sample KS test against the documented CDF, every draw inside its bounds.
* ``test_the_ks_test_tells_the_laws_apart``: the same KS test rejects log-uniform draws as
  uniform, uniform draws as log-uniform and a normal's draws as its truncation.
* ``test_randint_includes_both_ends_uniformly`` and
  ``test_choice_follows_its_weights_normalised``: chi-square tests of ``randint`` (both
  ends included) and ``choice`` (weights that do not sum to 1, a zero weight never drawn,
  no weights: uniform).
* ``test_degenerate_distributions_draw_their_one_value``: ``lo == hi``, ``sd == 0``, one
  option.
* ``test_template_draws_follow_their_laws_independently``: the template's distributions
  drawn through ``Campaign.resolve`` (1500 experiments), KS/binomial tests in their units
  (defocus in metres, photons per pattern), no correlation between parameters, between
  consecutive experiments or between master seeds.
* ``test_an_experiment_does_not_depend_on_campaign_size_or_subset``: experiment ``k``
  simulated alone in a campaign of ``k + 1`` equals it in a campaign of 1000, bit for bit.
* ``test_recorded_draws_are_what_built_the_experiment``: the draws in the provenance equal
  the probe, scan, detector, dose and object actually built (each part rebuilt from them
  through the public builders).
* ``test_every_template_key_does_what_it_documents``: each key of ``ptyfast recipe
  --example`` (its commented-out seeds too) set to a distinctive value changes what its
  comment says; ``test_every_template_key_is_checked``: those keys are exactly the template's
  (a new key fails it until it is checked).
* ``test_misspelt_keys_are_refused_naming_them``: a misspelt key in every section, operation
  and distribution table (a misspelt ``bounds``/``weights`` was a plain table, refused later
  as "must be a real number" or "family must be one of ... got None"; a misspelt ``family``,
  ``builder`` or ``op`` read "must be one of ..., got None"; a misspelt [geometry] or
  [detector] (no preset) key gave Python's "unexpected keyword argument" without the keys
  expected: all fixed), the message listing the right spelling, in a campaign and in an
  experiment recipe; ``test_a_misspelt_key_on_the_command_line_is_one_line_naming_it``:
  on the command line, one line, exit 2, no file.
* ``test_recipe_from_a_file_replays_bit_for_bit``: ``ptyfast recipe --from`` of an
  experiment (Pilatus, jitter, random-walk drift, affine) and of a campaign member (drawn
  preset and random walk), and ``--campaign``, re-simulated bit for bit by the CLI.
* ``test_impossible_distributions_name_path_rule_and_value``: each impossible distribution
  is refused when the campaign is made (before anything is simulated), naming the path, the
  rule and the value received; the CLI writes nothing.
* ``test_a_choice_of_distributions_draws_each_over_its_whole_range``: a choice whose
  options are themselves distributions draws each chosen value over its whole range (it
  reused the choice's stream, so each option covered only part of its range).
* ``test_fixed_resolves_its_value_as_the_value_itself``: ``{fixed: v}`` draws what ``v``
  draws (the docs said "always v").
* ``test_a_choice_of_tables_draws_their_values_over_their_whole_ranges``: a choice of
  tables draws the option and the values independently.
* ``test_a_campaign_with_a_raw_amplitude_is_written_and_replayed_as_itself``: an API
  campaign with ``amplitude=None`` (the raw texture) was written to TOML (``to_toml``, the
  provenance's spec) without it, i.e. as another campaign, and ``from_provenance(...,
  campaign=True)`` called its records corrupted: fixed (kept as ``"raw"``, same bits).
* ``test_none_that_toml_cannot_hold_is_refused_naming_the_path``: ``None`` as a choice's
  option, a list item or a distribution's parameter (silently dropped when written), or for
  a detector parameter that a preset beside it sets (written, the preset's value), is
  refused when the campaign is made; ``test_none_that_means_the_default_is_kept``: other
  ``None`` values are kept and the TOML builds the same experiments.
"""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest
from scipy import stats

import ptyfast
from ptyfast import probes, scans
from ptyfast.cli import main
from ptyfast.model import recipes
from ptyfast.model.campaign import CampaignError, draw

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Significance of every statistical test: the false-failure rate of a correct implementation.
ALPHA = 1e-6
#: |z| of a two-sided normal test at ALPHA (correlations: r·sqrt(n) ~ N(0, 1)).
Z_ALPHA = stats.norm.isf(ALPHA / 2)  # ≈ 4.89


def draws_of(dist, n=4000, seed=20241203, path="x"):
    return np.array([draw(dist, seed=seed, index=i, path=path) for i in range(n)])


def truncnorm(mean, sd, lo, hi):
    return stats.truncnorm((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)


def log_uniform_cdf(lo, hi):
    return lambda x: np.clip((np.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo)), 0, 1)


# --------------------------------------------------------------------------- one distribution

CONTINUOUS = {
    "uniform": ({"uniform": [2.0, 5.0]}, stats.uniform(2.0, 3.0).cdf, 2.0, 5.0),
    "uniform-negative": ({"uniform": [-3.0, -1.0]}, stats.uniform(-3.0, 2.0).cdf, -3.0, -1.0),
    "log_uniform-wide": ({"log_uniform": [1e3, 1e9]}, log_uniform_cdf(1e3, 1e9), 1e3, 1e9),
    "log_uniform-narrow": ({"log_uniform": [2.0, 3.0]}, log_uniform_cdf(2.0, 3.0), 2.0, 3.0),
    "normal": ({"normal": [1.0, 2.0]}, stats.norm(1.0, 2.0).cdf, -math.inf, math.inf),
    "normal-two-sided": (
        {"normal": [1.5, 0.3], "bounds": [1.0, 2.0]},
        truncnorm(1.5, 0.3, 1.0, 2.0).cdf,
        1.0,
        2.0,
    ),
    "normal-lower-only": (
        {"normal": [0.0, 1.0], "bounds": [-0.5, math.inf]},
        truncnorm(0.0, 1.0, -0.5, math.inf).cdf,
        -0.5,
        math.inf,
    ),
    "normal-upper-tail": (  # mass 1.3e-3, in the upper tail where Φ is close to 1
        {"normal": [10.0, 2.0], "bounds": [16.0, math.inf]},
        truncnorm(10.0, 2.0, 16.0, math.inf).cdf,
        16.0,
        math.inf,
    ),
    "normal-lower-tail": (
        {"normal": [10.0, 2.0], "bounds": [-math.inf, 4.0]},
        truncnorm(10.0, 2.0, -math.inf, 4.0).cdf,
        -math.inf,
        4.0,
    ),
}


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_continuous_draws_follow_their_documented_law(name):
    dist, cdf, lo, hi = CONTINUOUS[name]
    # Each case its own path: its own uniforms (one path would give every case the same KS
    # statistic, the draws being one inverse-CDF transform of the same uniforms).
    x = draws_of(dist, path=name)
    assert x.dtype == np.float64 and np.isfinite(x).all()
    assert x.min() >= lo and x.max() <= hi
    # KS with n = 4000: at ALPHA it detects a CDF error of about 0.04 (test below).
    p = stats.kstest(x, cdf).pvalue
    assert p > ALPHA, f"{name}: KS p = {p:.3g}"


def test_the_ks_test_tells_the_laws_apart():
    # The power behind the law tests: each wrong law is rejected by the same test.
    lu = draws_of({"log_uniform": [1.0, 10.0]})
    un = draws_of({"uniform": [1.0, 10.0]})
    nm = draws_of({"normal": [1.5, 0.3]})
    assert stats.kstest(lu, stats.uniform(1.0, 9.0).cdf).pvalue < ALPHA
    assert stats.kstest(un, log_uniform_cdf(1.0, 10.0)).pvalue < ALPHA
    assert stats.kstest(nm, truncnorm(1.5, 0.3, 1.0, 2.0).cdf).pvalue < ALPHA


def test_randint_includes_both_ends_uniformly():
    x = draws_of({"randint": [-2, 7]}, n=5000)
    assert all(type(v) is int for v in x.tolist()) and x.min() == -2 and x.max() == 7
    counts = np.bincount(x + 2, minlength=10)
    assert len(counts) == 10  # nothing outside -2..7
    p = stats.chisquare(counts).pvalue  # 9 degrees of freedom, 500 expected per value
    assert p > ALPHA, (counts, p)
    # Power: "hi excluded" (uniform on -2..6) would leave 7 out, checked above; a chi-square
    # of these counts against a triangular law is rejected.
    tri = np.arange(1, 11, dtype=float)
    assert stats.chisquare(counts, tri / tri.sum() * counts.sum()).pvalue < ALPHA


def test_choice_follows_its_weights_normalised():
    opts = ["a", "b", "c", "d"]
    x = draws_of({"choice": opts, "weights": [0, 1, 3, 4]}, n=4000)
    counts = np.array([np.sum(x == o) for o in opts])
    assert counts[0] == 0  # weight 0: never
    p = stats.chisquare(counts[1:], np.array([1, 3, 4]) / 8 * 4000).pvalue
    assert p > ALPHA, (counts, p)
    x = draws_of({"choice": opts}, n=4000)
    counts = np.array([np.sum(x == o) for o in opts])
    assert stats.chisquare(counts).pvalue > ALPHA, counts
    # Power: the unweighted counts are rejected as the weighted law.
    assert stats.chisquare(counts[1:], np.array([1, 3, 4]) / 8 * counts[1:].sum()).pvalue < ALPHA


@pytest.mark.parametrize(
    "dist, value",
    [
        ({"uniform": [2.5, 2.5]}, 2.5),
        ({"log_uniform": [3e-7, 3e-7]}, 3e-7),
        ({"randint": [4, 4]}, 4),
        ({"normal": [1.25, 0.0]}, 1.25),
        ({"normal": [1.25, 0.0], "bounds": [1.25, 2.0]}, 1.25),
        ({"choice": [{"k": 1}]}, {"k": 1}),
        ({"fixed": [1, 2]}, [1, 2]),
    ],
)
def test_degenerate_distributions_draw_their_one_value(dist, value):
    for i in range(20):
        got = draw(dist, seed=3, index=i, path="x")
        assert got == value and type(got) is type(value)


# --------------------------------------------------------------------------- the template


def template(**campaign):
    doc = recipes.loads(recipes.example())
    doc["campaign"].update(campaign)
    return doc


def test_template_draws_follow_their_laws_independently():
    n = 1500
    c = ptyfast.Campaign.from_dict(template(n_experiments=n))
    got = {k: [] for k in ("photons", "defocus", "step", "jitter", "qe", "family", "preset")}
    for i in range(n):
        spec, draws = c.resolve(i)
        got["photons"].append(spec["experiment"]["photons"])
        got["defocus"].append(spec["probe"]["defocus_m"])
        got["step"].append(spec["scan"]["step_px"])
        got["jitter"].append(spec["scan"]["errors"][0]["sigma_px"])
        got["qe"].append(spec["detector"]["qe"])
        got["family"].append(spec["object"]["family"])
        got["preset"].append(spec["detector"]["preset"])
        assert draws["probe.defocus_m"] == got["defocus"][-1]
    laws = {  # the template's comments: photons per pattern, defocus in metres
        "photons": log_uniform_cdf(1e4, 1e8),
        "defocus": stats.uniform(0.5e-3, 1e-3).cdf,
        "step": stats.uniform(3.0, 3.0).cdf,
        "jitter": stats.uniform(0.0, 0.5).cdf,
        "qe": stats.uniform(0.8, 0.2).cdf,
    }
    u = {}
    for k, cdf in laws.items():
        x = np.asarray(got[k])
        u[k] = cdf(x)
        assert 0 <= u[k].min() and u[k].max() <= 1, k
        assert stats.kstest(x, cdf).pvalue > ALPHA, k
    for k, opts in (("family", ("dead_leaves", "grf")), ("preset", ("eiger", "integrating"))):
        hits = sum(v == opts[0] for v in got[k])
        assert set(got[k]) == set(opts)
        assert stats.binomtest(hits, n, 0.5).pvalue > ALPHA, (k, hits)
    # Independence: the CDF values of two parameters, of consecutive experiments, and of two
    # master seeds are uncorrelated (r·sqrt(n) ~ N(0, 1) for independent uniforms).
    bound = Z_ALPHA / math.sqrt(n)
    keys = list(u)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            r = np.corrcoef(u[keys[a]], u[keys[b]])[0, 1]
            assert abs(r) < bound, (keys[a], keys[b], r)
        r = np.corrcoef(u[keys[a]][:-1], u[keys[a]][1:])[0, 1]
        assert abs(r) < Z_ALPHA / math.sqrt(n - 1), (keys[a], "lag 1", r)
    for k in laws:  # different experiments draw different values
        assert len(set(got[k])) == n, k
    other = ptyfast.Campaign.from_dict(template(n_experiments=n, seed=2025))
    step2 = np.array([other.resolve(i)[0]["scan"]["step_px"] for i in range(300)])
    assert not np.array_equal(step2, got["step"][:300])
    assert abs(np.corrcoef(step2, got["step"][:300])[0, 1]) < Z_ALPHA / math.sqrt(300)


def small_template(**campaign):
    doc = template(**campaign)
    doc["scan"]["n"] = 40
    doc["object"]["shape"] = [192, 192]
    return doc


def test_an_experiment_does_not_depend_on_campaign_size_or_subset(tmp_path):
    k = 2
    alone = ptyfast.Campaign.from_dict(small_template(n_experiments=k + 1))
    (path,) = alone.simulate_to(tmp_path, indices=[k])
    big = ptyfast.Campaign.from_dict(small_template(n_experiments=1000)).simulate(k)
    got = ptyfast.open(path)
    np.testing.assert_array_equal(got.diffraction, big.diffraction)
    a, b = dict(got.provenance), dict(big.provenance)
    assert a["campaign"].pop("n_experiments") == k + 1
    assert b["campaign"].pop("n_experiments") == 1000
    assert a == b


def test_recorded_draws_are_what_built_the_experiment():
    c = ptyfast.Campaign.from_dict(small_template(n_experiments=6))
    presets = set()
    for k in range(6):
        p = c.plan(k)
        e, rec = p.experiment, p.provenance()
        d = rec["campaign"]["draws"]
        assert set(d) == {
            "experiment.photons",
            "object.family",
            "probe.defocus_m",
            "scan.step_px",
            "scan.errors[0].sigma_px",
            "detector.preset",
            "detector.qe",
        }
        spec, _ = c.resolve(k)
        g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=64)
        assert e.geometry == g
        assert e.photons == d["experiment.photons"] == rec["experiment"]["photons"]
        assert e.object_recipe["family"] == d["object.family"]
        assert e.object_recipe["params"]["seed"] == spec["object"]["seed"]
        # The probe: a zone plate at the drawn defocus (metres), three modes of decay 0.5.
        probe = probes.build(
            probes.recipe(
                "fresnel_zone_plate",
                geometry=g,
                diameter_m=60e-6,
                outer_zone_m=100e-9,
                central_stop=0.3,
                defocus_m=d["probe.defocus_m"],
                operations=[{"op": "modes", "n": 3, "decay": 0.5}],
            )
        )
        np.testing.assert_array_equal(e.probe, probe)
        assert rec["experiment"]["probe"]["recipe"]["params"]["defocus_m"] == d["probe.defocus_m"]
        # The scan: the drawn step and jitter, the recorded jitter seed, the drift.
        seed = spec["scan"]["errors"][0]["seed"]
        want = (
            scans.fermat_spiral(40, d["scan.step_px"])
            .jitter(d["scan.errors[0].sigma_px"], seed=seed)
            .drift((0.002, -0.001))
        )
        np.testing.assert_array_equal(e.scan.true, want.true)
        assert rec["experiment"]["scan"] == want.to_dict()
        # The detector: the drawn preset with the drawn qe and the fixed beamstop.
        det = ptyfast.Detector.preset(
            d["detector.preset"], beamstop_radius_px=2.0, qe=d["detector.qe"]
        )
        assert e.detector.to_dict() == det.to_dict() == rec["experiment"]["detector"]
        presets.add(d["detector.preset"])
        assert p.seed == spec["experiment"]["seed"] == rec["simulation"]["seed"]
    assert presets == {"eiger", "integrating"}, "both presets drawn in six experiments (seed 2024)"


# --------------------------------------------------------------------------- template keys


def one_experiment():
    """The template as one experiment: [campaign] removed, each distribution a value."""
    doc = template()
    del doc["campaign"]
    doc["experiment"].update(photons=1e6, seed=11)
    doc["object"]["family"] = "dead_leaves"
    doc["probe"]["defocus_m"] = 1e-3
    doc["scan"]["step_px"] = 4.0
    doc["scan"]["errors"][0]["sigma_px"] = 0.3
    doc["detector"].update(preset="eiger", qe=0.9)
    return doc


def built(edit=None):
    doc = one_experiment()
    if edit is not None:
        edit(doc)
    return recipes.plan(doc)


def keys_of(doc, prefix=""):
    out = set()
    for k, v in doc.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and not prefix:  # a section
            out |= keys_of(v, path)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                out |= keys_of(x, f"{path}[{i}]")
        else:
            out.add(path)
    return out


def mean_detected(p):
    """Mean detected counts per pattern of a simulation of ``p``."""
    return float(p.simulate().diffraction.astype(np.float64).sum(axis=(1, 2)).mean())


def check_dose(doc_edit, factor):
    """The mean detected photons per pattern is ``photons × factor`` within ALPHA: the
    per-pattern sums are Poisson with means averaging exactly that (the intensity scale), so
    their mean over M patterns has the standard deviation sqrt(photons·factor / M)."""
    p = built(doc_edit)
    want = p.experiment.photons * factor
    got = mean_detected(p)
    assert abs(got - want) < Z_ALPHA * math.sqrt(want / p.experiment.n_patterns), (got, want)


def modes_power(e):
    w = (np.abs(e.probe.astype(np.complex128)) ** 2).sum(axis=(1, 2))
    return w / w[0]


def jitter_of(e):
    """The jitter alone: true positions minus nominal minus the template's drift."""
    k = np.arange(e.n_patterns)[:, None]
    return e.scan.true - e.scan.nominal - k * np.array([0.002, -0.001])


BASE = None


def base():
    global BASE
    if BASE is None:
        BASE = built().experiment
    return BASE


def differs(a, b):
    return a.shape != b.shape or not np.array_equal(a, b)


def set_key(section, key, value, index=None, sub=None):
    def edit(doc):
        target = doc[section] if sub is None else doc[section][sub][index]
        target[key] = value

    return edit


def ck_campaign_name(tmp_path):
    c = ptyfast.Campaign.from_dict(small_template(name="zz"))
    assert c.path_for(tmp_path, 3).name == "zz-00003.npz"


def ck_campaign_n(tmp_path):
    assert len(ptyfast.Campaign.from_dict(small_template(n_experiments=7))) == 7


def ck_campaign_seed(tmp_path):
    a = ptyfast.Campaign.from_dict(small_template(seed=1))
    b = ptyfast.Campaign.from_dict(small_template())
    assert a.seed == 1 and b.seed == 2024 and a.resolve(0)[1] != b.resolve(0)[1]


def ck_photons(tmp_path):
    # "mean photons per pattern reaching the detector" (before QE): an ideal detector (qe 1)
    # without beamstop counts them all.
    check_dose(lambda d: d.update(detector={"preset": "ideal"}), 1.0)


def ck_qe(tmp_path):
    check_dose(lambda d: d["detector"].update(qe=0.5, beamstop_radius_px=0.0), 0.5)


def ck_patches(tmp_path):
    assert built().simulate().patches is None
    ds = built(set_key("experiment", "patches", True)).simulate()
    assert ds.patches is not None and len(ds.patches) == ds.n_patterns


def ck_experiment_seed(tmp_path):
    # In a campaign, [experiment] seed is the noise seed of every experiment; the other
    # seeds are still derived per experiment from the master seed.
    doc = small_template()
    doc["experiment"]["seed"] = 7
    c = ptyfast.Campaign.from_dict(doc)
    s0, s1 = c.resolve(0)[0], c.resolve(1)[0]
    assert c.plan(0).seed == c.plan(1).seed == 7
    assert s0["object"]["seed"] != s1["object"]["seed"]
    assert s0["scan"]["errors"][0]["seed"] != s1["scan"]["errors"][0]["seed"]


def ck_geometry(key, value, **det):
    def check(tmp_path):
        def edit(d):
            d["geometry"][key] = value
            d["detector"].update(det)

        e = built(edit).experiment
        assert getattr(e.geometry, key) == value
        assert differs(e.probe, base().probe)  # the zone plate is built in this geometry

    return check


def ck_N(tmp_path):
    p = built(set_key("geometry", "N", 96))
    assert p.experiment.N == 96 and p.experiment.probe.shape == (3, 96, 96)
    assert p.simulate().diffraction.shape == (200, 96, 96)


def ck_family(tmp_path):
    e = built(set_key("object", "family", "grf")).experiment
    assert e.object_recipe["family"] == "grf" and differs(e.object, base().object)


def ck_shape(tmp_path):
    assert built(set_key("object", "shape", [256, 320])).experiment.object.shape == (256, 320)


def ck_amplitude(tmp_path):
    a = np.abs(built(set_key("object", "amplitude", [0.9, 0.3])).experiment.object)
    # amplitude at texture 0 and 1: a dead-leaves texture spans [0, 1] (float32 object)
    assert 0.3 - 1e-6 <= a.min() < 0.35 and 0.85 < a.max() <= 0.9 + 1e-6
    # "raw": the family's raw texture, recorded as amplitude None and written back as "raw"
    p = built(set_key("object", "amplitude", "raw"))
    assert p.experiment.object_recipe["params"]["amplitude"] is None
    assert differs(p.experiment.object, base().object)
    back = tomllib.loads(recipes.from_provenance(p.provenance()))
    assert back["object"]["amplitude"] == "raw"


def ck_phase(tmp_path):
    ph = np.angle(built(set_key("object", "phase", [0.1, 0.5])).experiment.object)
    assert 0.1 - 1e-6 <= ph.min() < 0.15 and 0.45 < ph.max() <= 0.5 + 1e-6


def ck_object_seed(tmp_path):
    a = built(set_key("object", "seed", 1)).experiment
    b = built(set_key("object", "seed", 2)).experiment
    assert a.object_recipe["params"]["seed"] == 1 and differs(a.object, b.object)


def ck_builder(tmp_path):
    # "N and geometry come from [geometry]": a Gaussian probe takes N = 64 from it.
    e = built(lambda d: d.update(probe={"builder": "gaussian", "sigma_px": 5.0})).experiment
    np.testing.assert_array_equal(
        e.probe[0], probes.build(probes.recipe("gaussian", N=64, sigma_px=5.0))
    )


def ck_probe(key, value):
    def check(tmp_path):
        e = built(set_key("probe", key, value)).experiment
        assert e.probe_recipe["params"][key] == value and differs(e.probe, base().probe)

    return check


def ck_defocus_unit(tmp_path):
    # Metres: defocus d equals (to the ~2 % of two different propagators) the in-focus probe
    # propagated by d metres, and is far from it at d·1e-3 (mm read as m) or d·1e3.
    ck_probe("defocus_m", 2e-3)(tmp_path)
    g = base().geometry
    kw = dict(geometry=g, diameter_m=60e-6, outer_zone_m=100e-9, central_stop=0.3)

    def zp(d, ops=()):
        return probes.build(
            probes.recipe("fresnel_zone_plate", defocus_m=d, operations=list(ops), **kw)
        )

    prop = zp(0.0, [{"op": "propagate", "distance_m": 1e-3, "geometry": g}])
    scale = np.abs(prop).max()
    assert np.abs(zp(1e-3) - prop).max() < 0.05 * scale
    assert np.abs(zp(1e-6) - prop).max() > 0.3 * scale
    assert np.abs(zp(1.0) - prop).max() > 0.3 * scale


def ck_op(tmp_path):
    assert base().n_modes == 3
    assert built(lambda d: d["probe"].pop("operations")).experiment.n_modes == 1


def ck_modes_n(tmp_path):
    assert built(set_key("probe", "n", 2, 0, "operations")).experiment.n_modes == 2


def ck_decay(tmp_path):
    # "mode k carries a power ∝ decay**k" (float32 modes: relative 1e-5)
    e = built(set_key("probe", "decay", 0.25, 0, "operations")).experiment
    np.testing.assert_allclose(modes_power(e), [1.0, 0.25, 0.0625], rtol=1e-5)
    np.testing.assert_allclose(modes_power(base()), [1.0, 0.5, 0.25], rtol=1e-5)


def ck_scan_builder(tmp_path):
    def edit(d):
        d["scan"] = {"builder": "raster", "rows": 5, "cols": 6, "step_px": 3.0}

    e = built(edit).experiment
    np.testing.assert_array_equal(e.scan.true, scans.raster(5, 6, 3.0).true)


def ck_scan_n(tmp_path):
    assert built(set_key("scan", "n", 50)).experiment.n_patterns == 50


def ck_step(tmp_path):
    e = built(set_key("scan", "step_px", 2.0)).experiment
    np.testing.assert_array_equal(e.scan.nominal, scans.fermat_spiral(200, 2.0).nominal)
    np.testing.assert_allclose(e.scan.nominal * 2, base().scan.nominal, rtol=1e-12, atol=1e-12)


def ck_errors_op(tmp_path):
    e = built(lambda d: d["scan"].pop("errors")).experiment
    np.testing.assert_array_equal(e.scan.true, e.scan.nominal)


def ck_jitter(tmp_path):
    # "Gaussian position error per coordinate" of sd sigma_px: 400 residuals; the sample
    # variance ratio s²/σ² is χ²(400)/400, bounded at ALPHA on either side.
    j = jitter_of(built(set_key("scan", "sigma_px", 0.25, 0, "errors")).experiment).ravel()
    ratio = float(np.mean(j**2)) / 0.25**2
    lo, hi = stats.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], j.size) / j.size
    assert lo < ratio < hi, ratio


def ck_jitter_seed(tmp_path):
    e = built(set_key("scan", "seed", 5, 0, "errors")).experiment
    want = scans.fermat_spiral(200, 4.0).jitter(0.3, seed=5).drift((0.002, -0.001))
    np.testing.assert_array_equal(e.scan.true, want.true)


def ck_drift(tmp_path):
    # "per position": position k moves by k·(vx, vy), columns (x, y)
    e = built(set_key("scan", "velocity_px", [0.01, -0.02], 1, "errors")).experiment
    k = np.arange(200)[:, None]
    np.testing.assert_allclose(
        e.scan.true - base().scan.true, k * np.array([0.01 - 0.002, -0.02 + 0.001]), atol=1e-12
    )


def ck_preset(tmp_path):
    e = built(set_key("detector", "preset", "integrating")).experiment
    want = ptyfast.Detector.preset("integrating", beamstop_radius_px=2.0, qe=0.9)
    assert e.detector.to_dict() == want.to_dict() != base().detector.to_dict()


def ck_beamstop(tmp_path):
    ds = built(set_key("detector", "beamstop_radius_px", 4.0)).simulate()
    n = ds.N
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n // 2, xx - n // 2)
    total = ds.diffraction.astype(np.float64).sum(axis=0)
    assert (total[r < 4.0] == 0).all() and (total[(r >= 4.0) & (r < 6.0)] > 0).all()


KEY_CHECKS = {
    "campaign.name": ck_campaign_name,
    "campaign.n_experiments": ck_campaign_n,
    "campaign.seed": ck_campaign_seed,
    "experiment.photons": ck_photons,
    "experiment.seed": ck_experiment_seed,  # commented out in the template
    "experiment.patches": ck_patches,
    "geometry.energy_eV": ck_geometry("energy_eV", 9000.0),
    "geometry.distance_m": ck_geometry("distance_m", 3.0),
    "geometry.detector_pixel_m": ck_geometry("detector_pixel_m", 172e-6, preset="pilatus"),
    "geometry.N": ck_N,
    "object.family": ck_family,
    "object.shape": ck_shape,
    "object.amplitude": ck_amplitude,
    "object.phase": ck_phase,
    "object.seed": ck_object_seed,  # commented out in the template
    "probe.builder": ck_builder,
    "probe.diameter_m": ck_probe("diameter_m", 50e-6),
    "probe.outer_zone_m": ck_probe("outer_zone_m", 80e-9),
    "probe.central_stop": ck_probe("central_stop", 0.5),
    "probe.defocus_m": ck_defocus_unit,
    "probe.operations[0].op": ck_op,
    "probe.operations[0].n": ck_modes_n,
    "probe.operations[0].decay": ck_decay,
    "scan.builder": ck_scan_builder,
    "scan.n": ck_scan_n,
    "scan.step_px": ck_step,
    "scan.errors[0].op": ck_errors_op,
    "scan.errors[0].sigma_px": ck_jitter,
    "scan.errors[0].seed": ck_jitter_seed,  # commented out in the template
    "scan.errors[1].op": ck_errors_op,
    "scan.errors[1].velocity_px": ck_drift,
    "detector.preset": ck_preset,
    "detector.beamstop_radius_px": ck_beamstop,
    "detector.qe": ck_qe,
}


def test_every_template_key_is_checked():
    commented = {"experiment.seed", "object.seed", "scan.errors[0].seed"}
    assert keys_of(template()) | commented == set(KEY_CHECKS)
    for key in commented:  # the template's commented keys, uncommented, are keys too
        section, leaf = key.split(".")[0], key.rsplit(".", 1)[1]
        assert f"# {leaf} = " in recipes.example().split(f"[{section}]")[1]


@pytest.mark.parametrize("key", list(KEY_CHECKS))
def test_every_template_key_does_what_it_documents(key, tmp_path):
    KEY_CHECKS[key](tmp_path)


# --------------------------------------------------------------------------- misspelt keys


def misspell(path, key, value=1):
    """An edit that adds ``key`` to the table at ``path`` (section, then list index)."""

    def edit(doc):
        node = doc
        for p in path:
            node = node[p]
        node[key] = value

    return edit


MISSPELT = {
    "[campaign]": (misspell(["campaign"], "n_experiment", 3), "n_experiment", "'n_experiments'"),
    "[experiment]": (misspell(["experiment"], "photon"), "photon", "'photons'"),
    "[geometry]": (misspell(["geometry"], "energy_ev"), "energy_ev", "'energy_eV'"),
    "[object]": (misspell(["object"], "shap"), "shap", "'shape'"),
    "[probe]": (misspell(["probe"], "defocus"), "defocus", "'defocus_m'"),
    "[[probe.operations]]": (misspell(["probe", "operations", 0], "decey"), "decey", "'decay'"),
    "[scan]": (misspell(["scan"], "stepx"), "stepx", "'step_px'"),
    "[[scan.errors]] jitter": (misspell(["scan", "errors", 0], "sigma"), "sigma", "'sigma_px'"),
    "[[scan.errors]] drift": (
        misspell(["scan", "errors", 1], "velocity"),
        "velocity",
        "'velocity_px'",
    ),
    "[detector]": (misspell(["detector"], "q_e"), "q_e", "'qe'"),
    "[detector] without preset": (
        lambda d: d.update(detector={"qe": 0.9, "beamstop_radius": 2.0}),
        "beamstop_radius",
        "'beamstop_radius_px'",
    ),
    "[object] family": (
        lambda d: d["object"].update(familly=d["object"].pop("family")),
        "familly",
        "family",
    ),
    "[probe] builder": (
        lambda d: d["probe"].update(buildr=d["probe"].pop("builder")),
        "buildr",
        "builder",
    ),
    "[scan] builder": (
        lambda d: d["scan"].update(buidler=d["scan"].pop("builder")),
        "buidler",
        "builder",
    ),
    "[[probe.operations]] op": (
        lambda d: d["probe"]["operations"][0].update(opp=d["probe"]["operations"][0].pop("op")),
        "opp",
        "op",
    ),
    "[[scan.errors]] op": (
        lambda d: d["scan"]["errors"][0].update(Op=d["scan"]["errors"][0].pop("op")),
        "Op",
        "op",
    ),
    "a section's choice": (
        lambda d: d.update(scan={"choise": [{"builder": "raster", "rows": 3, "cols": 3}]}),
        "choise",
        None,
    ),
    "normal bounds": (
        lambda d: d["scan"].update(step_px={"normal": [4.0, 0.5], "bound": [3.0, 5.0]}),
        "'bound'",
        "'bounds'",
    ),
    "choice weights": (
        lambda d: d["detector"].update(preset={"choice": ["eiger"], "weight": [1]}),
        "'weight'",
        "'weights'",
    ),
    "choice of sections": (
        lambda d: d.update(object={"choice": [{"family": "grf", "shape": 256}], "wieghts": [1]}),
        "'wieghts'",
        "'weights'",
    ),
    "bounds on a uniform": (
        lambda d: d["probe"].update(defocus_m={"uniform": [1e-3, 2e-3], "bounds": [0, 1]}),
        "'bounds'",
        None,
    ),
    "two kinds": (
        lambda d: d["probe"].update(defocus_m={"uniform": [1e-3, 2e-3], "fixed": 1e-3}),
        "'uniform'",
        None,
    ),
}


@pytest.mark.parametrize("where", list(MISSPELT))
def test_misspelt_keys_are_refused_naming_them(where):
    edit, key, right = MISSPELT[where]
    doc = template()
    edit(doc)
    with pytest.raises(ValueError, match=key) as got:
        ptyfast.Campaign.from_dict(doc)
    msg = str(got.value)
    # The key named, and the right spelling listed among those expected (a hint to fix it).
    assert right is None or right in msg, msg
    assert any(w in msg for w in ("unknown", "unexpected", "one kind", "among the keys")), msg
    if where != "[campaign]" and "distribution" not in str(got.value):
        single = one_experiment()  # the same key in an experiment recipe
        edit(single)
        with pytest.raises(ValueError, match=key):
            recipes.plan(single)


def test_a_misspelt_key_on_the_command_line_is_one_line_naming_it(tmp_path, capsys):
    doc = template()
    doc["scan"]["step_px"] = {"uniform": [3.0, 6.0], "bound": [3.0, 6.0]}
    path = tmp_path / "r.toml"
    path.write_text(recipes.dumps(doc))
    assert main(["simulate", "--recipe", str(path), "-o", f"{tmp_path}/out/", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scan.step_px" in err and "'bound'" in err, err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- recipe --from


def same_file(a, b):
    da, db = ptyfast.open(a), ptyfast.open(b)
    np.testing.assert_array_equal(da.diffraction, db.diffraction)
    assert da.diffraction.dtype == db.diffraction.dtype
    assert da.provenance["experiment"] == db.provenance["experiment"]
    assert da.provenance["simulation"] == db.provenance["simulation"]
    assert da.provenance["result"] == db.provenance["result"]


def test_recipe_from_a_file_replays_bit_for_bit(tmp_path, capsys):
    # An experiment: Pilatus (a non-default preset with dead pixels), jitter, a random-walk
    # drift and an affine error, every seed derived.
    exp = {
        "experiment": {"photons": 3e5, "seed": 4},
        "object": {"family": "points", "shape": 96},
        "probe": {"builder": "gaussian", "N": 24, "sigma_px": 4.0},
        "scan": {
            "builder": "raster",
            "rows": 5,
            "cols": 5,
            "step_px": 6.0,
            "errors": [
                {"op": "jitter", "sigma_px": 0.4},
                {"op": "drift", "velocity_px": [0.05, 0.0], "random_walk_px": 0.2},
                {"op": "affine", "matrix": [[1.01, 0.02], [0.0, 0.99]], "offset_px": [0.5, -0.5]},
            ],
        },
        "detector": {"preset": "pilatus", "dead_fraction": 0.02, "read_noise": 0.5},
    }
    # A campaign whose members draw the preset and the random walk.
    camp = copy.deepcopy(exp)
    camp["campaign"] = {"name": "m", "n_experiments": 3, "seed": 6}  # eiger drawn once
    del camp["experiment"]["seed"]
    camp["detector"]["preset"] = {"choice": ["pilatus", "eiger"]}
    camp["scan"]["errors"][1]["random_walk_px"] = {"uniform": [0.1, 0.3]}
    for name, doc in (("exp", exp), ("camp", camp)):
        src = tmp_path / f"{name}.toml"
        src.write_text(recipes.dumps(doc))
        out = f"{tmp_path}/{name}.npz" if name == "exp" else f"{tmp_path}/{name}/"
        assert main(["simulate", "--recipe", str(src), "-o", out, "-q"]) == 0
    files = [tmp_path / "exp.npz", *sorted((tmp_path / "camp").iterdir())]
    presets = set()
    for f in files:
        back, again = tmp_path / f"{f.stem}.back.toml", tmp_path / f"{f.stem}.again.npz"
        assert main(["recipe", "--from", str(f), "-o", str(back)]) == 0
        text = tomllib.loads(back.read_text())
        assert "campaign" not in text and "seed" in text["scan"]["errors"][1]
        assert main(["simulate", "--recipe", str(back), "-o", str(again), "-q"]) == 0
        same_file(f, again)
        presets.add(ptyfast.open(f).provenance["experiment"]["detector"]["name"])
    assert len(presets) >= 2, presets  # Pilatus and another preset were replayed
    # The whole campaign back from its last member regenerates every member.
    assert (
        main(["recipe", "--from", str(files[-1]), "--campaign", "-o", str(tmp_path / "c.toml")])
        == 0
    )
    assert (
        main(["simulate", "--recipe", str(tmp_path / "c.toml"), "-o", f"{tmp_path}/c2/", "-q"]) == 0
    )
    for f, g in zip(files[1:], sorted((tmp_path / "c2").iterdir()), strict=True):
        same_file(f, g)
    capsys.readouterr()


# --------------------------------------------------------------------------- impossible


IMPOSSIBLE = [
    # (path, distribution, what the message must contain: the rule, the value received)
    ("scan.step_px", {"uniform": [6.0, 3.0]}, ["low <= high", "[6.0, 3.0]"]),
    ("scan.step_px", {"uniform": [3.0, math.inf]}, ["finite", "[3.0, inf]"]),
    ("probe.defocus_m", {"normal": [1e-3, -1e-4]}, ["sd >= 0", "[0.001, -0.0001]"]),
    (
        "probe.defocus_m",
        {"normal": [1e-3, 1e-4], "bounds": [2e-3, 1e-3]},
        ["bounds need low <= high", "[0.002, 0.001]"],
    ),
    (
        "probe.defocus_m",
        {"normal": [1e-3, 1e-5], "bounds": [1.0, 2.0]},
        ["hold no probability", "[1.0, 2.0]", "normal(0.001, 1e-05)"],
    ),
    ("experiment.photons", {"log_uniform": [0.0, 1e6]}, ["0 < low", "[0.0, 1000000.0]"]),
    ("experiment.photons", {"log_uniform": [-1.0, 1e6]}, ["0 < low", "[-1.0, 1000000.0]"]),
    ("experiment.photons", {"log_uniform": [1e6, 1e4]}, ["low <= high", "[1000000.0, 10000.0]"]),
    ("scan.n", {"randint": [50, 10]}, ["lo <= hi", "[50, 10]"]),
    ("scan.n", {"randint": [10.5, 50]}, ["pair of integers", "[10.5, 50]"]),
    ("detector.preset", {"choice": []}, ["non-empty list", "[]"]),
    (
        "detector.preset",
        {"choice": ["eiger", "integrating"], "weights": [1.0]},
        ["2 numbers", "[1.0]"],
    ),
    (
        "detector.preset",
        {"choice": ["eiger", "integrating"], "weights": [0, 0]},
        ["not all 0", "[0, 0]"],
    ),
    (
        "detector.preset",
        {"choice": ["eiger", "integrating"], "weights": [-1, 2]},
        [">= 0", "[-1, 2]"],
    ),
    # Values outside their parameter's domain: the domain and the range drawn.
    ("detector.qe", {"uniform": [0.5, 1.5]}, ["(0, 1]", "[0.5, 1.5]"]),
    ("experiment.photons", {"normal": [1e5, 1e4]}, ["(0, inf)", "give bounds within it"]),
]


def set_path(doc, path, value):
    section, key = path.split(".")
    doc[section][key] = value


@pytest.mark.parametrize(
    "path, dist, parts", IMPOSSIBLE, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(IMPOSSIBLE)]
)
def test_impossible_distributions_name_path_rule_and_value(path, dist, parts, tmp_path, capsys):
    doc = template()
    set_path(doc, path, dist)
    with pytest.raises(CampaignError) as got:
        ptyfast.Campaign.from_dict(doc)  # made, not simulated: nothing has run yet
    msg = str(got.value)
    assert msg.startswith(f"{path}: "), msg
    for part in parts:
        assert part in msg, (part, msg)
    # On the command line: one line, exit 2, no output.
    src = tmp_path / "r.toml"
    src.write_text(recipes.dumps(doc))
    assert main(["simulate", "--recipe", str(src), "-o", f"{tmp_path}/out/", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- choice of laws


def test_a_choice_of_distributions_draws_each_over_its_whole_range():
    d = {"choice": [{"uniform": [0.0, 1.0]}, {"uniform": [10.0, 11.0]}], "weights": [1, 1]}
    x = draws_of(d, n=2000)
    low, high = x[x < 5], x[x > 5] - 10
    # Each option, once chosen, is uniform on its whole range.
    assert stats.kstest(low, "uniform").pvalue > ALPHA
    assert stats.kstest(high, "uniform").pvalue > ALPHA


def test_fixed_resolves_its_value_as_the_value_itself():
    # {fixed: v} is v as written: a distribution inside it is drawn (as the docs now say),
    # at the same path, so the two give the same draws.
    d = {"uniform": [1.0, 2.0]}
    np.testing.assert_array_equal(draws_of({"fixed": d}, n=50), draws_of(d, n=50))
    assert draw({"fixed": [3, {"randint": [0, 0]}]}, seed=1, index=0, path="x") == [3, 0]


def test_a_choice_of_tables_draws_their_values_over_their_whole_ranges():
    # The values inside a chosen table are drawn at their own paths, independently of the
    # choice.
    d = {
        "choice": [{"step_px": {"uniform": [1.0, 2.0]}}, {"step_px": {"uniform": [10.0, 11.0]}}],
        "weights": [1, 1],
    }
    x = np.array([draw(d, seed=20241203, index=i, path="scan")["step_px"] for i in range(2000)])
    low, high = x[x < 5] - 1, x[x > 5] - 10
    assert stats.binomtest(len(low), len(x), 0.5).pvalue > ALPHA
    assert stats.kstest(low, "uniform").pvalue > ALPHA
    assert stats.kstest(high, "uniform").pvalue > ALPHA


# --------------------------------------------------------------------------- None in a spec


def test_a_campaign_with_a_raw_amplitude_is_written_and_replayed_as_itself():
    # amplitude=None (the raw texture) was left out of the campaign's TOML, so to_toml() and
    # the spec in every provenance described the default amplitude: another campaign, and
    # from_provenance(campaign=True) called the record "edited or corrupted".
    spec = {
        "object": {"family": "grf", "shape": 64, "amplitude": None},
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": {"uniform": [2.0, 4.0]}},
        "scan": {"builder": "raster", "rows": 3, "cols": 3, "step_px": 3.0},
    }
    c = ptyfast.Campaign(spec, n_experiments=2, seed=1)
    ds = c.simulate(1)
    # The same bits as an experiment built with amplitude=None by hand.
    e = ptyfast.Experiment(
        ptyfast.objects.recipe(
            "grf", shape=64, amplitude=None, seed=c.resolve(1)[0]["object"]["seed"]
        ),
        c.experiment(1).probe_recipe,
        scans.raster(3, 3, 3.0),
        ptyfast.Detector(),
        photons=1e9,
    )
    np.testing.assert_array_equal(
        ptyfast.simulate(e, seed=c.plan(1).seed).diffraction, ds.diffraction
    )
    assert ds.provenance["experiment"]["object"]["recipe"]["params"]["amplitude"] is None
    back = ptyfast.Campaign.from_dict(recipes.loads(c.to_toml()))
    assert back.to_dict() == c.to_dict()
    np.testing.assert_array_equal(back.simulate(1).diffraction, ds.diffraction)
    again = ptyfast.Campaign.from_dict(recipes.loads(recipes.from_provenance(ds, campaign=True)))
    np.testing.assert_array_equal(again.simulate(1).diffraction, ds.diffraction)
    # A choice of amplitudes with the raw one among them.
    spec["object"]["amplitude"] = {"choice": [[1.0, 0.5], None]}
    c = ptyfast.Campaign(spec, n_experiments=2, seed=1)
    assert c.spec["object"]["amplitude"] == {"choice": [[1.0, 0.5], "raw"]}


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda s: s["scan"].update(step_px={"choice": [None, 3.0]}),
            r"scan.step_px: a choice option None",
        ),
        (
            lambda s: s["probe"].update(sigma_px={"uniform": [2.0, None]}),
            r"probe.sigma_px\[1\]: a list item None",
        ),
        (lambda s: s["probe"].update(sigma_px={"fixed": None}), r"probe.sigma_px: fixed = None"),
        # Left out, full_well would be the Pilatus preset's 2**20 - 1, not None (no well).
        (
            lambda s: s.update(detector={"preset": "pilatus", "full_well": None}),
            r"detector.full_well: .* preset 'pilatus''s full_well = 1048575.0",
        ),
        (
            lambda s: s.update(
                detector={"preset": {"choice": ["ideal", "integrating"]}, "full_well": None}
            ),
            r"detector.full_well: .* preset 'integrating''s full_well = 65000.0",
        ),
    ],
)
def test_none_that_toml_cannot_hold_is_refused_naming_the_path(edit, match):
    # TOML has no None: written out, these would describe another campaign (the option or
    # the item dropped), so they are refused when the campaign is made.
    spec = {
        "object": {"family": "grf", "shape": 64},
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": 3.0},
        "scan": {"builder": "raster", "rows": 3, "cols": 3, "step_px": 3.0},
    }
    edit(spec)
    with pytest.raises(CampaignError, match=match):
        ptyfast.Campaign(spec, n_experiments=2, seed=1)


def test_none_that_means_the_default_is_kept():
    # None where leaving the key out means the same: the campaign is made, and its TOML
    # builds the same experiments.
    spec = {
        "object": {"family": "dead_leaves", "shape": 64, "radius_max_px": None, "seed": None},
        "probe": {"builder": "gaussian", "N": 16, "sigma_px": 3.0},
        "scan": {"builder": "raster", "rows": 3, "cols": 3, "step_px": 3.0, "step_y_px": None},
        "detector": {"preset": "eiger", "full_well": None, "bad_pixel_seed": None},
    }
    c = ptyfast.Campaign(spec, n_experiments=2, seed=1)
    back = ptyfast.Campaign.from_dict(recipes.loads(c.to_toml()))
    np.testing.assert_array_equal(back.simulate(1).diffraction, c.simulate(1).diffraction)

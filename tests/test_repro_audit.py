"""Reproducibility and provenance audit: edited records are refused, recorded seeds replay.

Each test here failed before its fix: a provenance record whose redundant fields (the flat
``seeds`` summary, ``noise_streams``, ``result``, ``simulation.patches``) had been edited
replayed without a word (sometimes into other draws than the record lists, and always handing
the edited record on as the new dataset's provenance); and ``mk_simdata(seed=None)`` recorded
a fresh noise seed that no call could use again; and ``simulate``, ``simulate_to`` and
``distributed.simulate`` kept the draw they took from a ``Generator`` seed when they then
failed, so that a retry gave other data.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import ptyfast
from ptyfast import objects, probes, scans
from ptyfast.model import recipes
from ptyfast.model.provenance import ProvenanceError


@pytest.fixture(scope="module")
def dataset() -> ptyfast.Dataset:
    e = ptyfast.Experiment(
        objects.recipe("dead_leaves", shape=64, seed=2),
        probes.recipe("gaussian", N=16, sigma_px=3.0),
        scans.raster(4, 4, 4.0).jitter(0.3, seed=1),
        ptyfast.Detector(read_noise=1.0, dark=0.5, dead_fraction=0.05, bad_pixel_seed=4),
        photons=1e5,
    )
    return ptyfast.simulate(e, seed=7)


EDITS = {
    # The summary disagrees with the seed actually replayed (simulation.seed edited).
    "simulation.seed": (lambda r: r["simulation"].update(seed=8), r"provenance\['seeds'\]"),
    "seeds.noise": (lambda r: r["seeds"].update(noise=8), r"provenance\['seeds'\]"),
    "seeds dropped": (lambda r: r["seeds"].pop("detector.bad_pixel_seed"), "bad_pixel_seed"),
    "bad_pixel_seed": (
        lambda r: r["experiment"]["detector"].update(bad_pixel_seed=5),
        r"provenance\['seeds'\]",
    ),
    # The stream replayed is the detector's: a record naming another one is contradictory.
    "detector stream": (
        lambda r: r["experiment"]["detector"].update(poisson_stream="v2"),
        r"provenance\['noise_streams'\]",
    ),
    "noise_streams": (
        lambda r: r["noise_streams"]["poisson"].update(stream="v2"),
        r"provenance\['noise_streams'\]",
    ),
    "n_patterns": (lambda r: r["result"].update(n_patterns=3), r"\['n_patterns'\] must be 16"),
    "readings_dtype": (
        lambda r: r["result"].update(readings_dtype="uint16"),
        r"\['readings_dtype'\] must be 'float32'",
    ),
    # Hash checks must not be skipped by removing the hashes.
    "result emptied": (lambda r: r.update(result={}), "missing the field"),
    "object hash removed": (
        lambda r: r["result"].update(object_sha256=None),
        r"\['object_sha256'\] must be a SHA-256",
    ),
    "scale text": (
        lambda r: r["result"].update(intensity_scale="abc"),
        r"\['intensity_scale'\] must be a positive",
    ),
    "hash int": (lambda r: r["result"].update(probe_sha256=5), "probe_sha256"),
    "patches text": (
        lambda r: r["simulation"].update(patches="no"),
        r"\['patches'\] must be true or false",
    ),
    "campaign junk": (lambda r: r.update(campaign=5), r"provenance\['campaign'\]"),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_edited_record_is_refused_not_replayed(dataset, name):
    edit, match = EDITS[name]
    rec = copy.deepcopy(dataset.provenance)
    edit(rec)
    with pytest.raises(ProvenanceError, match=match):
        ptyfast.replay(rec)


def test_an_edited_record_is_not_written_back_as_a_recipe(dataset):
    rec = copy.deepcopy(dataset.provenance)
    rec["simulation"]["seed"] = 8  # the summary still says 7
    with pytest.raises(ProvenanceError, match=r"provenance\['seeds'\]"):
        recipes.from_provenance(rec)


def test_the_untouched_record_still_replays_bit_for_bit(dataset):
    again = ptyfast.replay(copy.deepcopy(dataset.provenance))
    assert np.array_equal(again.diffraction.view(np.uint32), dataset.diffraction.view(np.uint32))
    assert again.provenance == dataset.provenance


@pytest.mark.parametrize("given", [False, True])
def test_mk_simdata_with_seed_none_is_made_again_from_its_recorded_seeds(given):
    from ptyfast.diffsim import mk_simdata, sim_object_stack
    from ptyfast.probe import get_default_probe

    kw = dict(N=16, gridsize=2, offset=4, nphotons=1e5, data_source="lines", dict_fmt=True)
    kw["jitter_scale"] = 0.5
    if given:
        kw["YY_I"] = sim_object_stack(1, 48, data_source="lines", seed=3)
    probe = get_default_probe(16)
    first = mk_simdata(1, 48, probe, 8, seed=None, **kw)
    s = first["seeds"]
    assert isinstance(s["noise"], int) and isinstance(s["jitter"], int)
    again = mk_simdata(1, 48, probe, 8, seed=s["jitter"], noise_seed=s["noise"], **kw)
    assert again["seeds"] == s
    for key in ("X", "Y_I", "Y_phi"):
        assert np.array_equal(again[key].view(np.uint32), first[key].view(np.uint32)), key


def test_mk_simdata_noise_seed_is_checked_and_changes_only_the_noise():
    from ptyfast.diffsim import mk_simdata
    from ptyfast.probe import get_default_probe

    kw = dict(N=16, gridsize=1, offset=4, nphotons=1e5, data_source="lines", dict_fmt=True)
    probe = get_default_probe(16)
    a = mk_simdata(1, 48, probe, 8, seed=3, **kw)
    b = mk_simdata(1, 48, probe, 8, seed=3, noise_seed=3, **kw)
    c = mk_simdata(1, 48, probe, 8, seed=3, noise_seed=4, **kw)
    assert np.array_equal(a["X"], b["X"]) and not np.array_equal(a["X"], c["X"])
    assert np.array_equal(a["Y_I"], c["Y_I"]) and c["seeds"]["noise"] == 4
    with pytest.raises(TypeError, match="noise_seed"):
        mk_simdata(1, 48, probe, 8, seed=3, noise_seed="4", **kw)
    with pytest.raises(ValueError, match="noise_seed"):
        mk_simdata(1, 48, probe, 8, seed=3, noise_seed=-1, **kw)


CAMPAIGN = """
[experiment]
photons = {log_uniform = [1e4, 1e6]}
[object]
family = "grf"
shape = [64, 64]
[probe]
builder = "gaussian"
N = 16
sigma_px = {uniform = [2.0, 4.0]}
[scan]
builder = "raster"
rows = 3
cols = 3
step_px = 4.0
"""


@pytest.mark.parametrize("field, value", [("seed", 6), ("index", 2), ("index", 99)])
def test_a_campaign_recipe_is_not_written_from_an_edited_campaign_block(field, value):
    c = ptyfast.Campaign(recipes.loads(CAMPAIGN), n_experiments=3, seed=5)
    ds = c.simulate(1)
    text = recipes.from_provenance(ds.provenance, campaign=True)
    again = ptyfast.Campaign.from_dict(recipes.loads(text)).simulate(1)
    assert np.array_equal(again.diffraction.view(np.uint32), ds.diffraction.view(np.uint32))
    rec = copy.deepcopy(ds.provenance)
    rec["campaign"][field] = value  # the experiment it describes is no longer the one recorded
    with pytest.raises(ProvenanceError, match=r"provenance\['campaign'\]"):
        recipes.from_provenance(rec, campaign=True)


def _small_experiment() -> ptyfast.Experiment:
    return ptyfast.Experiment(
        np.ones((40, 40)), probes.disk(16), scans.raster(3, 3, 5.0), ptyfast.Detector(), 1e4
    )


def test_failed_calls_leave_a_generator_seed_as_it_was(tmp_path) -> None:
    """A call that draws its seed from the user's Generator and then fails (an existing
    output, a wrong ``out`` buffer) hands the generator back unchanged, so that the retry
    gives what a fresh generator in that state gives; a successful call advances it."""
    e = _small_experiment()
    (tmp_path / "exists.npz").write_bytes(b"")
    g = np.random.default_rng(3)
    start = copy.deepcopy(g.bit_generator.state)
    with pytest.raises(ValueError, match="exists"):
        ptyfast.simulate_to(e, tmp_path / "exists.npz", seed=g)
    assert g.bit_generator.state == start
    with pytest.raises(ValueError, match="out must be"):
        ptyfast.simulate(e, seed=g, out=np.zeros(3, np.float32))
    assert g.bit_generator.state == start
    got = ptyfast.simulate(e, seed=g)
    assert g.bit_generator.state != start
    want = ptyfast.simulate(e, seed=np.random.default_rng(3))
    assert got.provenance["simulation"]["seed"] == want.provenance["simulation"]["seed"]
    np.testing.assert_array_equal(got.diffraction, want.diffraction)


def test_distributed_failure_leaves_a_generator_seed_as_it_was(tmp_path) -> None:
    """``distributed.simulate`` without a client fails after taking its seed: the user's
    generator is handed back unchanged."""
    pytest.importorskip("distributed")
    from ptyfast import distributed as pdist

    g = np.random.default_rng(5)
    start = copy.deepcopy(g.bit_generator.state)
    with pytest.raises(ValueError, match="client"):
        pdist.simulate(_small_experiment(), tmp_path / "run.zarr", seed=g)
    assert g.bit_generator.state == start

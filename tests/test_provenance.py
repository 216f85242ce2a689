"""Provenance and ptyfast.replay: bit-identical regeneration, the array codec, refusals.

Every replay is compared with the original dataset bit for bit (readings, patches, positions,
probe, object, mask, provenance), for the ideal and a full detector, modes, scan errors,
recipes, embedded and referenced arrays, through JSON and through files.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from test_experiment import full_detector, random_object

import ptyfast
from ptyfast import objects, probes, scans
from ptyfast.model import provenance
from ptyfast.model.provenance import ProvenanceError


def assert_same(a: ptyfast.Dataset, b: ptyfast.Dataset) -> None:
    assert a.diffraction.dtype == b.diffraction.dtype
    np.testing.assert_array_equal(a.diffraction, b.diffraction)
    for name in ("positions_nominal", "positions_true", "probe", "object", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    if a.patches is None:
        assert b.patches is None
    else:
        np.testing.assert_array_equal(a.patches, b.patches)
    assert a.intensity_scale == b.intensity_scale and a.photons == b.photons
    assert a.provenance == b.provenance
    assert a.detector == b.detector and a.geometry == b.geometry


CASES = {
    "ideal-arrays": lambda: ptyfast.Experiment(
        random_object(1), probes.disk(16), scans.raster(3, 3, 4.0), None, 1e5
    ),
    "full-detector-modes-errors": lambda: ptyfast.Experiment(
        objects.recipe("dead_leaves", shape=72, seed=3),
        probes.recipe(
            "zernike", N=16, aperture=0.3, operations=[{"op": "modes", "n": 3, "decay": 0.5}]
        ),
        scans.fermat_spiral(25, 1.5)
        .jitter(0.4, seed=1)
        .drift((0.01, -0.02), random_walk_px=0.05, seed=2)
        .affine([[1.01, 0.002], [0.0, 0.99]]),
        full_detector(),
        4e4,
    ),
    "random-scan-legacy-object": lambda: ptyfast.Experiment(
        objects.recipe("lines", shape=64, seed=5, amplitude=None, phase=(0.0, 0.0)),
        probes.recipe("gaussian", N=16, sigma_px=3.0),
        scans.random_uniform(20, 20.0, seed=None),
        ptyfast.Detector(poisson=False, read_noise=2.0, dtype="float64"),
        1e3,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_is_bit_identical_through_json(case):
    e = CASES[case]()
    ds = ptyfast.simulate(e, seed=None, patches=True)
    record = json.loads(json.dumps(ds.provenance))
    again = ptyfast.replay(record)
    assert_same(again, ds)


def test_recorded_seeds_cover_every_random_part():
    ds = ptyfast.simulate(CASES["full-detector-modes-errors"](), seed=17)
    s = ds.provenance["seeds"]
    assert s["noise"] == 17
    assert s["object.recipe.params.seed"] == 3
    assert isinstance(s["probe.recipe.params.seed"], int)  # random Zernike coefficients
    assert s["scan.errors[0].seed"] == 1 and s["scan.errors[1].seed"] == 2
    assert s["detector.bad_pixel_seed"] == 5
    assert ds.provenance["noise_streams"] == {
        "poisson": {"stream": "v1", "stage": 0},
        "dark": {"stage": 2},
        "read_noise": {"stage": 1},
    }
    assert provenance.seeds(ds.provenance) == s


def test_referenced_arrays_must_be_given_and_match(tmp_path):
    obj = random_object(2, 96, 96)
    e = ptyfast.Experiment(obj, probes.gaussian(16, 3.0), scans.raster(2, 3, 5.0), None, 1e4)
    ds = ptyfast.simulate(e, seed=3, embed_max_bytes=0)
    rec = ds.provenance["experiment"]["object"]["array"]
    assert rec["encoding"] == "reference" and "data" not in rec
    with pytest.raises(ProvenanceError, match="object is recorded by reference only"):
        ptyfast.replay(ds.provenance)
    with pytest.raises(ProvenanceError, match="object must be the recorded array"):
        ptyfast.replay(ds.provenance, object=obj * 2, probe=e.probe)
    with pytest.raises(ProvenanceError, match="complex64 array of shape"):
        ptyfast.replay(ds.provenance, object=obj[:, :10], probe=e.probe)
    assert_same(ptyfast.replay(ds.provenance, object=obj, probe=e.probe), ds)
    # A dataset (e.g. read back from a file) supplies its own arrays.
    ds.save(tmp_path / "d.npz")
    assert_same(ptyfast.replay(ptyfast.open(tmp_path / "d.npz")), ds)


def test_embedded_arrays_are_compact_and_exact():
    obj = np.ones((128, 128), np.complex64)
    rec = provenance.encode_array(obj)
    assert rec["encoding"] == "zlib+base64" and len(rec["data"]) < obj.nbytes / 50
    back = provenance.decode_array("object", rec)
    np.testing.assert_array_equal(back, obj)
    assert back.dtype == np.complex64 and not back.flags.writeable


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: r.update(schema="other"), r"provenance\['schema'\] must be"),
        (lambda r: r.update(schema_version=2), r"schema_version'\] must be 1"),
        (lambda r: r.update(ptyfast_version="99.0.0"), "newer than this ptyfast"),
        (lambda r: r.update(ptyfast_version="dev"), "must be a version"),
        (lambda r: r.pop("result"), "missing the field"),
        (lambda r: r["simulation"].update(seed=-1), "recorded integer seed"),
        (lambda r: r["simulation"].update(seed=None), "recorded integer seed"),
        (lambda r: r["experiment"].update(photons=2e5), "intensity scale recomputed"),
        (
            lambda r: r["experiment"]["object"]["array"].update(data="AAAA"),
            "object array data",
        ),
        (
            lambda r: r["experiment"]["object"]["array"].update(encoding="raw"),
            "encoding must be",
        ),
        (lambda r: r["experiment"]["scan"].update(version=7), "scan recipes"),
        (lambda r: r["result"].update(probe_sha256="0" * 64), "probe rebuilt"),
        (lambda r: r["experiment"].update(photons=-1.0), "photons must be"),
    ],
)
def test_replay_refuses_bad_records_with_a_named_field(edit, match):
    ds = ptyfast.simulate(CASES["ideal-arrays"](), seed=1)
    rec = copy.deepcopy(ds.provenance)
    edit(rec)
    with pytest.raises(ProvenanceError, match=match):
        ptyfast.replay(rec)


def test_replay_refuses_non_records():
    with pytest.raises(ProvenanceError, match="provenance must be a dict"):
        ptyfast.replay([1, 2])


def test_passing_an_array_for_a_recipe_is_refused():
    ds = ptyfast.simulate(CASES["full-detector-modes-errors"](), seed=1)
    with pytest.raises(ProvenanceError, match="object was built from its recipe"):
        ptyfast.replay(ds.provenance, object=ds.object)

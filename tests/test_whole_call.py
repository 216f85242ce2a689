"""The whole simulation calls (issue 13): one kernel call, validation once, the provenance's
experiment part cached, the energy pass at every instruction-set level; the same bits as the
kernels called step by step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _simd import digests_per_level

import ptyfast
from ptyfast import _kernels, probes, scans
from ptyfast.intensity import scale_from_energies, simulation_scale
from ptyfast.model import experiment as X
from ptyfast.model import provenance as P
from ptyfast.raw_data import RawData


def _experiment(m: int = 40, n: int = 16, **kw: object) -> ptyfast.Experiment:
    rng = np.random.default_rng(5)
    obj = (rng.uniform(0.5, 1, (72, 72)) * np.exp(1j * rng.uniform(-1, 1, (72, 72)))).astype(
        np.complex64
    )
    scan = scans.random_uniform(m, 30.0, 30.0, seed=2).jitter(0.3, seed=4)
    return ptyfast.Experiment(obj, probes.gaussian(n, 3.0), scan, ptyfast.Detector(), 1e5, **kw)


# --------------------------------------------------------------------------- ptyfast.simulate


def test_one_kernel_call_without_progress_and_progress_pieces_give_the_same_bits(monkeypatch):
    e = _experiment()
    assert X._run_step(e, None, False, False) == e.n_patterns  # the whole output at once
    assert X._run_step(e, 7, False, True) == 7  # chunk_size keeps its meaning
    whole = ptyfast.simulate(e, seed=11, patches=True)
    # A progress bar makes pieces of ~0.25 s of work; force small ones.
    monkeypatch.setattr(X, "_PROGRESS_SECONDS", 1e-7)
    step = X._run_step(e, None, True, True)
    assert 1 <= step < e.n_patterns
    shown = ptyfast.simulate(e, seed=11, patches=True, progress=True)
    np.testing.assert_array_equal(shown.diffraction, whole.diffraction)
    np.testing.assert_array_equal(shown.patches, whole.patches)
    # and both equal the kernel called once over every pattern
    ref = _kernels.acquire(
        e.object,
        e.positions_true,
        e.probe,
        scale=e.intensity_scale,
        detector=e._detector_args,
        seed=11,
        return_patches=True,
    )
    np.testing.assert_array_equal(whole.diffraction, ref.readings)
    np.testing.assert_array_equal(whole.patches, ref.patches)


def test_progress_pieces_are_the_least_that_hold_the_work_asked(monkeypatch):
    e = _experiment(m=400)  # N = 16
    monkeypatch.setattr(X, "_PROGRESS_SECONDS", 1e-5)
    step = X._run_step(e, None, False, True)
    per = X._SECONDS_PER_PIXEL_LOG * 16 * 16 * 4  # one mode, N² log2 N
    work = X._PROGRESS_SECONDS * _kernels.num_threads()
    assert step < e.n_patterns
    assert step * per >= work > (step - 1) * per


def _uncached_record(e: ptyfast.Experiment, seed: int, patches: bool, embed: int) -> dict:
    """The record as defined in the provenance module's docstring, built from scratch."""

    def part(recipe: dict | None, arr: np.ndarray) -> dict:
        if recipe is not None:
            return {"recipe": copy.deepcopy(recipe)}
        return {"array": P.encode_array(arr, embed_max_bytes=embed)}

    rec = {
        "schema": P.SCHEMA,
        "schema_version": P.SCHEMA_VERSION,
        "ptyfast_version": ptyfast.__version__,
        "experiment": {
            "object": part(e.object_recipe, e.object),
            "probe": part(e.probe_recipe, e.probe),
            "scan": e.scan.to_dict(),
            "detector": e.detector.to_dict(),
            "photons": float(e.photons),
            "geometry": None if e.geometry is None else e.geometry.to_dict(),
        },
        "simulation": {"seed": seed, "patches": patches},
        "noise_streams": P.noise_streams(e.detector),
        "seeds": {},
        "result": {
            "n_patterns": e.n_patterns,
            "N": e.N,
            "n_modes": e.n_modes,
            "readings_dtype": str(np.dtype(e.detector.dtype)),
            "intensity_scale": float(e.intensity_scale),
            "object_sha256": P.array_sha256(e.object),
            "probe_sha256": P.array_sha256(e.probe),
        },
    }
    rec["seeds"] = P.seeds(rec)
    return rec


@pytest.mark.parametrize("embed", [0, P.EMBED_MAX_BYTES])
def test_cached_provenance_equals_a_fresh_record_and_is_the_callers_own(embed):
    e = _experiment()
    first = P.make(e, seed=3, patches=False, embed_max_bytes=embed)
    assert first == _uncached_record(e, 3, False, embed)
    first["experiment"]["scan"]["params"]["changed"] = True  # the user's to modify
    first["seeds"]["noise"] = -1
    again = P.make(e, seed=4, patches=True, embed_max_bytes=embed)
    assert again == _uncached_record(e, 4, True, embed)
    assert again["seeds"]["noise"] == 4
    other = P.make(e, seed=4, patches=True, embed_max_bytes=1 << 30)  # another embedding
    assert other == _uncached_record(e, 4, True, 1 << 30)


def test_an_experiment_and_its_cached_provenance_cannot_be_changed():
    e = _experiment()
    first = P.make(e, seed=3, patches=False)
    with pytest.raises(AttributeError, match="immutable"):
        e.detector = ptyfast.Detector.integrating()
    rec = P.make(e, seed=3, patches=False)
    assert rec == first and rec["experiment"]["detector"] == e.detector.to_dict()


def test_replay_of_a_recipe_experiment_is_bit_identical():
    from ptyfast import objects

    e = ptyfast.Experiment(
        objects.recipe("grf", shape=64, seed=1),
        probes.recipe("gaussian", N=16, sigma_px=3.0),
        scans.raster(4, 4, 4.0).jitter(0.2, seed=2),
        ptyfast.Detector(),
        1e4,
    )
    ds = ptyfast.simulate(e, seed=7, patches=True)
    again = ptyfast.replay(ds.provenance)
    np.testing.assert_array_equal(again.diffraction, ds.diffraction)
    np.testing.assert_array_equal(again.patches, ds.patches)
    assert again.provenance == ds.provenance


# --------------------------------------------------------------------------- from_simulation


def _inputs(m: int = 30, n: int = 16) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(8)
    obj = rng.uniform(0.5, 1, (60, 60)) * np.exp(1j * rng.uniform(-1, 1, (60, 60)))
    probe = np.asarray(probes.gaussian(n, 3.0)).reshape(n, n) * 5.0
    x, y = rng.uniform(n, 60 - n, m), rng.uniform(n, 60 - n, m)
    return x, y, probe, obj


def test_from_simulation_equals_the_kernels_step_by_step():
    x, y, probe, obj = _inputs()
    raw = RawData.from_simulation(x, y, probe, obj, nphotons=1e6, seed=9)
    pos = np.column_stack([x, y])
    s = simulation_scale(_kernels.illuminated_energy(obj, pos, probe), 1e6)
    amps, patches, energies = _kernels.simulate(
        obj,
        pos,
        probe,
        scale=s,
        seed=9,
        divide_by_scale=True,
        return_patches=True,
        return_energies=True,
    )
    assert raw.intensity_scale == float(s)
    np.testing.assert_array_equal(raw.diff3d, amps)
    np.testing.assert_array_equal(raw.Y[..., 0], patches)
    assert raw.norm_Y_I == scale_from_energies(energies, nphotons=1e6)
    assert raw.objectGuess is obj and raw.probeGuess is probe
    again = RawData.from_simulation(x, y, probe, obj, nphotons=1e6, seed=9, out=raw)
    assert again.diff3d is raw.diff3d
    np.testing.assert_array_equal(again.diff3d, amps)


@pytest.mark.parametrize(
    ("which", "name"), [("obj", "objectGuess"), ("probe", "probeGuess"), ("x", "xcoords")]
)
def test_from_simulation_still_names_a_non_finite_input(which, name):
    x, y, probe, obj = _inputs()
    bad = {"x": x.copy(), "probe": probe.copy(), "obj": obj.copy()}
    bad[which].flat[3] = np.nan
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        RawData.from_simulation(bad["x"], y, bad["probe"], bad["obj"], nphotons=1e6, seed=1)


def test_from_simulation_names_nphotons_that_overflow_float32():
    x, y, probe, obj = _inputs()
    with pytest.raises(ValueError, match="nphotons = 1e\\+38 would overflow"):
        RawData.from_simulation(x, y, probe, obj, nphotons=1e38, seed=1)


# --------------------------------------------------------------------------- energy pass

_SIMD_CHILD = """
import hashlib
import numpy as np
from ptyfast import _kernels
rng = np.random.default_rng(3)
h = hashlib.sha256()
for size, n in ((40, 16), (300, 33)):
    obj = (rng.random((size, size)) * np.exp(1j * rng.random((size, size)))).astype(np.complex64)
    pos = rng.uniform(-3, size + 3, (25, 2))
    probe = (rng.random((n, n)) + 1j * rng.random((n, n))).astype(np.complex64)
    h.update(_kernels.illuminated_energy(obj, pos, probe).tobytes())
print(_kernels.simd_level(), h.hexdigest())
"""


def test_energy_pass_gives_the_same_bits_at_every_instruction_set_level():
    seen = digests_per_level(_SIMD_CHILD)
    assert "baseline" in seen
    assert len(set(seen.values())) == 1, seen


def test_energy_pass_matches_numpy():
    x, y, probe, obj = _inputs()
    pos = np.column_stack([x, y])
    got = _kernels.illuminated_energy(obj, pos, probe)
    patches = _kernels.extract_patches(obj, pos, probe.shape[0])
    want = (np.abs(patches * probe.astype(np.complex64)).astype(np.float64) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-5)

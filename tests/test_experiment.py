"""ptyfast.Experiment and ptyfast.simulate against independent computations.

The intensity scale and the expected photons against NumPy (patches as plain slices at integer
positions, far fields in complex128); photons per pattern against the dose (and the dose times
QE) within 5σ of the Poisson estimator; incoherent modes end to end; ``to_raw_data`` against
``RawData.from_simulation`` bit for bit, and grouping + ``loader.load`` on it; chunk-size and
thread independence; the streaming form against the in-memory one; every validation error.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import objects, probes, scans
from ptyfast.model import experiment as experiment_mod
from ptyfast.raw_data import RawData


def random_object(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = 0.5 + rng.random((h, w))
    return (amp * np.exp(1j * rng.uniform(-1, 1, (h, w)))).astype(np.complex64)


def numpy_patches(obj: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    """Patches at integer positions as plain slices (README "Coordinates")."""
    out = []
    for x, y in pos:
        xi, yi = int(round(x)), int(round(y))
        assert xi == x and yi == y
        out.append(obj[yi - n // 2 : yi - n // 2 + n, xi - n // 2 : xi - n // 2 + n])
    return np.stack(out).astype(np.complex128)


def numpy_expected(patches: np.ndarray, modes: np.ndarray, scale: float) -> np.ndarray:
    n = modes.shape[-1]
    field = scale * modes[None].astype(np.complex128) * patches[:, None]
    f = np.fft.fftshift(np.fft.fft2(field), axes=(-2, -1))
    return (np.abs(f) ** 2).sum(axis=1) / n**2


def full_detector() -> ptyfast.Detector:
    """Every detector stage on (as the acquisition tests): N = 16 patterns."""
    return ptyfast.Detector(
        qe=0.7,
        gain=3.0,
        offset=20.0,
        read_noise=1.5,
        dark=0.4,
        psf_sigma_px=0.8,
        full_well=6000.0,
        dtype="uint16",
        beamstop_radius_px=1.5,
        module_px=(40, 60),
        gap_px=(3, 2),
        beam_px=(40 - 8 + 5, 30),
        dead_fraction=0.02,
        hot_fraction=0.01,
        bad_pixel_seed=5,
        dead_time_s=1e-7,
        exposure_s=1e-3,
    )


def integer_experiment(p: int = 1, detector=None, photons: float = 1e5) -> ptyfast.Experiment:
    """Object 64², N = 16, a 3 × 5 raster of integer positions (placement offset 32)."""
    probe = probes.gaussian(16, 3.0)
    if p > 1:
        probe = probes.modes(probe, p, decay=0.6)
    return ptyfast.Experiment(
        random_object(1), probe, scans.raster(3, 5, 4.0, step_y_px=5.0), detector, photons
    )


# --------------------------------------------------------------------------- physics


@pytest.mark.parametrize("p", [1, 3])
def test_intensity_scale_and_expected_photons_match_numpy(p):
    e = integer_experiment(p, ptyfast.Detector(poisson=False, dtype="float64"))
    pos = e.positions_true
    assert np.array_equal(pos[:, 0] % 1, np.zeros(len(pos)))  # integer positions
    patches = numpy_patches(np.asarray(e.object), pos, 16)
    modes = np.asarray(e.probe)
    energy = (np.abs(modes[None].astype(np.complex128) * patches[:, None]) ** 2).sum(axis=(1, 2, 3))
    s = np.sqrt(e.photons / energy.mean())
    assert e.intensity_scale == pytest.approx(s, rel=1e-6)
    ds = ptyfast.simulate(e, seed=0, patches=True)
    lam = numpy_expected(patches, modes, e.intensity_scale)
    np.testing.assert_allclose(ds.diffraction, lam, rtol=2e-5, atol=1e-6 * lam.max())
    np.testing.assert_array_equal(ds.patches, patches.astype(np.complex64))
    # Parseval: the expected photons per pattern average to the dose.
    assert ds.diffraction.sum(axis=(1, 2)).mean() == pytest.approx(e.photons, rel=1e-5)


@pytest.mark.parametrize("qe", [1.0, 0.6])
def test_photons_per_pattern_match_the_dose_times_qe(qe):
    m, photons = 60, 2e4
    e = ptyfast.Experiment(
        objects.dead_leaves(96, seed=3),
        probes.disk(32),
        scans.fermat_spiral(m, 1.5).jitter(0.3, seed=4),
        ptyfast.Detector(qe=qe),
        photons,
    )
    ds = ptyfast.simulate(e, seed=11)
    totals = ds.diffraction.astype(np.float64).sum(axis=(1, 2))
    # Poisson counts: the mean total over M patterns has variance qe·photons / M.
    sigma = np.sqrt(qe * photons / m)
    assert abs(totals.mean() - qe * photons) < 5 * sigma


def test_modes_end_to_end_with_poisson_noise_match_the_expected_counts_in_mean():
    # Many patterns at one position: the per-pixel mean of Poisson counts tends to λ.
    m = 400
    e = ptyfast.Experiment(
        random_object(2),
        probes.modes(probes.gaussian(16, 3.0), 2, weights=[0.7, 0.3]),
        scans.custom(np.zeros(m), np.zeros(m)),
        None,
        2e3,
    )
    ds = ptyfast.simulate(e, seed=5)
    patches = numpy_patches(np.asarray(e.object), e.positions_true[:1], 16)
    lam = numpy_expected(patches, np.asarray(e.probe), e.intensity_scale)[0]
    mean = ds.diffraction.astype(np.float64).mean(axis=0)
    # Mean of M Poisson(λ) counts: standard error sqrt(λ/M); a few pixels reach 4σ by
    # chance among 256, so bound the worst at 5.5σ and the RMS at its expectation.
    z = (mean - lam) / np.sqrt(np.maximum(lam, 1e-3) / m)
    assert np.max(np.abs(z)) < 5.5
    assert np.sqrt(np.mean(z**2)) < 1.3


# --------------------------------------------------------------------------- PtychoPINN view


@pytest.mark.parametrize(
    "photons, dtype", [(1e6, "float32"), (1e9, "float64")], ids=["f32-1e6", "f64-1e9"]
)
def test_to_raw_data_equals_from_simulation_bit_for_bit(photons, dtype):
    obj = random_object(7, 80, 80)
    probe = probes.disk(16)
    scan = scans.random_uniform(40, 30.0, seed=2)
    e = ptyfast.Experiment(obj, probe, scan, ptyfast.Detector(dtype=dtype), photons)
    ds = ptyfast.simulate(e, seed=123, patches=True)
    if dtype == "float32":
        assert ds.diffraction.max() < 2**24  # float32 readings hold the counts exactly
    else:
        assert ds.diffraction.max() > 2**24  # the exactness float64 readings buy
    raw = ds.to_raw_data()
    x, y = e.positions_true[:, 0], e.positions_true[:, 1]
    ref = RawData.from_simulation(x, y, probe, obj, nphotons=photons, seed=123)
    assert raw.diff3d.dtype == np.float32
    np.testing.assert_array_equal(raw.diff3d, ref.diff3d)
    np.testing.assert_array_equal(raw.Y, ref.Y)
    assert raw.intensity_scale == ref.intensity_scale
    assert raw.norm_Y_I == ref.norm_Y_I
    np.testing.assert_array_equal(raw.probeGuess, ref.probeGuess)
    np.testing.assert_array_equal(raw.xcoords, ref.xcoords)
    assert raw.metadata["seed"] == 123 and raw.metadata["n_modes"] == 1


def test_to_raw_data_keeps_nominal_positions_and_first_mode():
    e = ptyfast.Experiment(
        random_object(3),
        probes.modes(probes.gaussian(16, 3.0), 2, decay=0.5),
        scans.raster(2, 3, 4.0).jitter(0.4, seed=1),
        ptyfast.Detector(),
        1e4,
    )
    raw = ptyfast.simulate(e, seed=1).to_raw_data()
    np.testing.assert_array_equal(raw.xcoords_start, e.positions_nominal[:, 0])
    np.testing.assert_array_equal(raw.ycoords, e.positions_true[:, 1])
    assert not np.array_equal(raw.xcoords, raw.xcoords_start)
    np.testing.assert_array_equal(raw.probeGuess, e.probe[0])
    assert raw.metadata["n_modes"] == 2 and raw.Y is None


def test_to_raw_data_of_a_counting_detector_is_sqrt_of_photons_over_scale():
    det = ptyfast.Detector(gain=2.0, offset=10.0, dtype="uint16", full_well=60000.0)
    e = integer_experiment(1, det, photons=1e4)
    ds = ptyfast.simulate(e, seed=3)
    raw = ds.to_raw_data()
    photons = np.maximum((ds.diffraction.astype(np.float64) - 10.0) / 2.0, 0.0)
    want = np.sqrt(photons).astype(np.float32) / np.float32(ds.intensity_scale)
    np.testing.assert_array_equal(raw.diff3d, want)


def test_grouping_and_loader_work_on_to_raw_data_as_on_from_simulation():
    from ptyfast.loader import load

    obj = random_object(9, 96, 96)
    probe = probes.disk(16)
    e = ptyfast.Experiment(obj, probe, scans.random_uniform(60, 50.0, seed=4), None, 1e6)
    raw = ptyfast.simulate(e, seed=8, patches=True).to_raw_data()
    x, y = e.positions_true[:, 0], e.positions_true[:, 1]
    ref = RawData.from_simulation(x, y, probe, obj, nphotons=1e6, seed=8)
    outs = []
    for r in (raw, ref):
        grouped = r.generate_grouped_data(N=16, K=4, nsamples=20, gridsize=2, seed=0)
        c = load(lambda g=grouped: g, r.probeGuess, which=None, create_split=False)
        outs.append((grouped, c))
    (g1, c1), (g2, c2) = outs
    assert c1.X.shape == (20, 16, 16, 4)
    for key in ("diffraction", "nn_indices", "coords_offsets", "coords_relative"):
        np.testing.assert_array_equal(g1[key], g2[key])
    np.testing.assert_array_equal(np.asarray(c1.X), np.asarray(c2.X))
    np.testing.assert_array_equal(np.asarray(c1.Y), np.asarray(c2.Y))


# --------------------------------------------------------------------------- determinism


def test_result_does_not_depend_on_the_chunk_size():
    e = integer_experiment(2, full_detector(), photons=5e4)
    ref = ptyfast.simulate(e, seed=9, patches=True)
    for chunk in (1, 5, 1000):
        ds = ptyfast.simulate(e, seed=9, patches=True, chunk_size=chunk)
        np.testing.assert_array_equal(ds.diffraction, ref.diffraction)
        np.testing.assert_array_equal(ds.patches, ref.patches)
        assert ds.provenance == ref.provenance


_CHILD = """
import hashlib, sys
import numpy as np
import ptyfast
from ptyfast import probes, scans, objects
sys.path.insert(0, {tests!r})
from test_experiment import full_detector
e = ptyfast.Experiment(objects.dead_leaves(64, seed=1),
                       probes.modes(probes.gaussian(16, 3.0), 2, decay=0.5),
                       scans.fermat_spiral(40, 1.0).jitter(0.3, seed=2), full_detector(), 3e4)
ds = ptyfast.simulate(e, seed=4, chunk_size=int(sys.argv[1]))
print(ptyfast._kernels.num_threads(), hashlib.sha256(ds.diffraction.tobytes()).hexdigest())
"""


def test_result_does_not_depend_on_threads_or_chunks_across_processes():
    code = _CHILD.format(tests=str(Path(__file__).parent))
    outs = []
    for threads, chunk in (("1", "40"), ("2", "3")):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        res = subprocess.run(
            [sys.executable, "-c", code, chunk], capture_output=True, text=True, env=env
        )
        assert res.returncode == 0, res.stderr
        outs.append(res.stdout.split())
    assert outs[0][0] == "1" and outs[1][0] == "2"
    assert outs[0][1] == outs[1][1]


@pytest.mark.parametrize("ext", [".npz", ".zarr"])
def test_simulate_to_writes_exactly_what_simulate_returns(tmp_path, ext):
    pytest.importorskip("zarr") if ext == ".zarr" else None
    e = ptyfast.Experiment(
        objects.grf(64, seed=1),
        probes.gaussian(16, 3.0),
        scans.hexagonal(3, 3, 4.0).drift((0.05, 0.0)),
        ptyfast.Detector.integrating(),
        1e5,
    )
    ref = ptyfast.simulate(e, seed=2, patches=True)
    path = tmp_path / f"d{ext}"
    written = experiment_mod.simulate_to(e, path, seed=2, patches=True, chunk_size=4)
    assert written == [path]
    back = ptyfast.open(path)
    assert back.diffraction.dtype == np.uint16
    np.testing.assert_array_equal(back.diffraction, ref.diffraction)
    np.testing.assert_array_equal(back.patches, ref.patches)
    np.testing.assert_array_equal(back.positions_true, ref.positions_true)
    assert back.provenance == ref.provenance
    again = ptyfast.replay(back)
    np.testing.assert_array_equal(again.diffraction, ref.diffraction)


def test_simulate_to_refuses_an_existing_target_before_simulating(tmp_path):
    e = integer_experiment()
    path = tmp_path / "d.npz"
    path.write_bytes(b"keep")
    with pytest.raises(ValueError, match="exist"):
        experiment_mod.simulate_to(e, path, seed=1)
    assert path.read_bytes() == b"keep"


# --------------------------------------------------------------------------- the record


def test_dataset_fields_and_json_provenance():
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
    e = ptyfast.Experiment(
        objects.recipe("dead_leaves", shape=96, seed=4),
        probes.recipe("fresnel_zone_plate", geometry=g, diameter_m=60e-6, outer_zone_m=200e-9),
        scans.fermat_spiral(30, 2.0).jitter(0.2, seed=6),
        ptyfast.Detector.eiger(qe=0.9, pixel_m=75e-6),
        1e5,
        g,
    )
    ds = ptyfast.simulate(e, seed=None)
    prov = ds.provenance
    assert json.loads(json.dumps(prov)) == prov
    assert isinstance(prov["simulation"]["seed"], int)
    assert ds.diffraction.dtype == np.uint32 and ds.probe.shape == (1, 32, 32)
    assert ds.geometry == g and ds.photons == 1e5
    assert prov["seeds"]["noise"] == prov["simulation"]["seed"]
    assert prov["seeds"]["object.recipe.params.seed"] == 4
    assert prov["seeds"]["scan.errors[0].seed"] == 6
    assert prov["noise_streams"] == {"poisson": {"stream": "v1", "stage": 0}}
    assert prov["experiment"]["object"]["recipe"]["family"] == "dead_leaves"
    assert prov["result"]["intensity_scale"] == ds.intensity_scale
    np.testing.assert_array_equal(ds.mask, e.detector.mask(32))


def test_progress_bar_only_when_asked(capsys):
    e = integer_experiment()
    ptyfast.simulate(e, seed=1)
    assert capsys.readouterr().err == ""
    ptyfast.simulate(e, seed=1, progress=True)
    assert "simulate" in capsys.readouterr().err


def test_inputs_are_not_modified_and_outputs_are_independent_of_them():
    obj = random_object(4)
    probe = probes.gaussian(16, 3.0)
    o0, p0 = obj.copy(), probe.copy()
    e = ptyfast.Experiment(obj, probe, scans.raster(2, 2, 3.0), None, 1e4)
    ds = ptyfast.simulate(e, seed=1)
    obj[:] = 0
    np.testing.assert_array_equal(e.object, o0)
    np.testing.assert_array_equal(ds.object, o0)
    np.testing.assert_array_equal(probe, p0)
    assert not e.object.flags.writeable and not e.probe.flags.writeable


# --------------------------------------------------------------------------- errors


def _exp(**kw):
    args = dict(
        object=random_object(1),
        probe=probes.gaussian(16, 3.0),
        scan=scans.raster(2, 2, 4.0),
        detector=None,
        photons=1e4,
        geometry=None,
    )
    args.update(kw)
    return ptyfast.Experiment(**args)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"probe": probes.gaussian(80, 3.0)}, ValueError, "probe must not be larger"),
        ({"scan": scans.raster(2, 2, 60.0)}, ValueError, "scan leaves the object"),
        ({"photons": 0.0}, ValueError, "photons must be a positive"),
        ({"photons": -5}, ValueError, "photons must be a positive"),
        ({"photons": float("nan")}, ValueError, "photons must be finite"),
        ({"photons": "1e6"}, TypeError, "photons must be a real number"),
        ({"photons": 1e300}, ValueError, "photons = 1e[+]?300 would overflow the float32"),
        (
            {"probe": 2 * probes.modes(probes.gaussian(16, 3.0), 2)},
            ValueError,
            "probe modes must have unit total intensity",
        ),
        (
            {"geometry": ptyfast.Geometry(8000.0, 2.0, 75e-6, 32)},
            ValueError,
            "geometry.N must equal the probe size N = 16",
        ),
        (
            {
                "geometry": ptyfast.Geometry(8000.0, 2.0, 75e-6, 16),
                "detector": ptyfast.Detector(pixel_m=172e-6),
            },
            ValueError,
            "detector.pixel_m must equal geometry.detector_pixel_m",
        ),
        ({"detector": "eiger"}, TypeError, "detector must be a ptyfast.Detector"),
        ({"scan": np.zeros((4, 2))}, TypeError, "scan must be a ptyfast.scans.Scan"),
        ({"geometry": {"N": 16}}, TypeError, "geometry must be a ptyfast.Geometry"),
        (
            {"detector": ptyfast.Detector(beamstop_radius_px=9.0)},
            ValueError,
            "detector: beamstop_radius_px must be <= N/2",
        ),
        ({"object": np.zeros((64, 64))}, ValueError, "object must not be zero"),
        ({"object": np.full((64, 64), np.nan)}, ValueError, "object must be finite"),
        # A faint object and a large dose: s = sqrt(photons / energy) beyond float32 (inf
        # with a NumPy warning before, refused later by the kernel).
        (
            {"object": np.full((64, 64), 1e-30, np.complex64), "photons": 1e18},
            ValueError,
            "photons = 1e[+]?18 gives an intensity scale s = 1e[+]?39 beyond float32",
        ),
        ({"probe": np.zeros((16, 16))}, ValueError, "probe must not be zero"),
        ({"probe": np.ones((16, 15))}, ValueError, "probe"),
        ({"object": {"format": "x"}}, ValueError, "object must be an array or an object recipe"),
        ({"probe": {"format": "ptyfast.object"}}, ValueError, "probe must be an array or a"),
    ],
)
def test_experiment_errors_name_the_parameter(kw, exc, match):
    with pytest.raises(exc, match=match):
        _exp(**kw)


def test_photons_overflow_message_gives_a_dose_that_fits():
    with pytest.raises(ValueError, match="at most photons = ") as info:
        _exp(photons=1e40)
    most = float(str(info.value).rsplit("at most photons = ", 1)[1].split()[0])
    e = _exp(photons=most * 0.99)  # the dose it names is accepted
    assert e.photons < 1e40


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"seed": "1"}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1, "patches": "yes"}, TypeError, "patches must be a bool"),
        ({"seed": 1, "chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
        ({"seed": 1, "embed_max_bytes": -1}, ValueError, "embed_max_bytes must be >= 0"),
    ],
)
def test_simulate_errors_name_the_parameter(kw, exc, match):
    with pytest.raises(exc, match=match):
        ptyfast.simulate(_exp(), **kw)


def test_simulate_refuses_non_experiments():
    with pytest.raises(TypeError, match="experiment must be a ptyfast.Experiment"):
        ptyfast.simulate({"object": 1}, seed=1)


def test_the_module_docstring_examples_run():
    import doctest

    from ptyfast.model import experiment, provenance

    for mod in (experiment, provenance):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0


def test_sha_helper_is_the_raw_bytes_hash():
    from ptyfast.model.provenance import array_sha256

    a = random_object(5, 8, 8)
    assert array_sha256(a) == hashlib.sha256(a.tobytes()).hexdigest()


def test_readme_experiment_example_runs(tmp_path, monkeypatch):
    """The README's experiment example (the first python block after its heading) runs."""
    pytest.importorskip("zarr", minversion="3")  # it streams to a Zarr store (Python >= 3.11)
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Experiments, provenance, campaigns and recipes", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    np.testing.assert_array_equal(namespace["again"].diffraction, namespace["ds"].diffraction)
    assert namespace["raw"].diff3d.shape == (100, 32, 32)
    assert (tmp_path / "big.zarr").is_dir()

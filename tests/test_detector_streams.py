"""The detector's Poisson streams: ``Detector(poisson_stream="v2")`` through the pipeline.

Stream v2's counts through ``_kernels.acquire`` / ``ptyfast.simulate`` are compared bit for
bit with the sampling kernels' own v2 (``poisson_counts`` / ``observe_amplitudes``) on the
same expected photons; chunking, thread counts and replay leave them unchanged; the default
and ``Detector.ideal()`` stay on v1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import Detector, scans
from ptyfast import _kernels as K

N = 16
SCALE = 400.0  # expected photons per pixel from ~0 to ~1e3: every sampler regime


def inputs(m: int = 12, seed: int = 4):
    rng = np.random.default_rng(seed)
    obj = ((0.5 + rng.random((48, 48))) * np.exp(1j * rng.uniform(-1, 1, (48, 48)))).astype(
        np.complex64
    )
    pos = rng.uniform(12, 36, (m, 2))
    yy, xx = (np.mgrid[:N, :N] - N / 2) / (N / 5)
    p = np.exp(-(xx**2 + yy**2) / 2) * np.exp(0.4j * xx)
    p = (p / np.sqrt((np.abs(p) ** 2).sum())).astype(np.complex64)
    return obj, pos, p


def acquire(det, *, seed=7, first_index=0, sl=slice(None)):
    obj, pos, p = inputs()
    return K.acquire(obj, pos[sl], p, scale=SCALE, detector=det, seed=seed, first_index=first_index)


def test_streams_are_listed_and_the_default_stays_v1():
    assert K.POISSON_STREAMS == ("v1", "v2")
    assert Detector().poisson_stream == "v1"
    assert Detector.ideal().poisson_stream == "v1"
    assert Detector.ideal().is_ideal
    assert not Detector(poisson_stream="v2").is_ideal


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_detector_counts_are_the_sampling_kernels_counts(version):
    lam = acquire({"poisson": False, "dtype": "float64"}).readings
    assert lam.max() > 100 and (lam[lam > 0].min() < 0.1)  # faint, tabled and PTRS rates
    det = Detector(poisson_stream=version, dtype="float64")
    counts = acquire(det).readings
    for i, rates in enumerate(lam):
        want = K.poisson_counts(rates.ravel(), 7, stream=i, version=version)
        np.testing.assert_array_equal(counts[i].ravel(), want)
    # The amplitudes' view: one mode, so λ = A² of float32 amplitudes A = sqrt(λ) exactly.
    amps = np.sqrt(lam).astype(np.float32)
    assert np.array_equal(amps.astype(np.float64) ** 2, lam)
    observed = K.observe_amplitudes(amps, 7, version=version)
    ideal = acquire(Detector(poisson_stream=version)).readings  # float32 counts
    assert ideal.dtype == np.float32
    np.testing.assert_array_equal(np.sqrt(ideal), observed)


def test_v2_differs_from_v1_and_is_keyed_by_pattern():
    v1 = acquire(Detector()).readings
    v2 = acquire(Detector(poisson_stream="v2")).readings
    assert not np.array_equal(v1, v2)
    assert np.array_equal(acquire(Detector(poisson_stream="v2")).readings, v2)
    # Chunks keyed by first_index give the same bits.
    tail = acquire(Detector(poisson_stream="v2"), first_index=5, sl=slice(5, None)).readings
    np.testing.assert_array_equal(tail, v2[5:])
    assert not np.array_equal(acquire(Detector(poisson_stream="v2"), seed=8).readings, v2)


RUN = """
import sys
import numpy as np
import ptyfast
from ptyfast import _kernels as K
sys.path.insert(0, sys.argv[2])
from test_detector_streams import acquire
r = acquire(ptyfast.Detector(poisson_stream="v2", dark=0.3, read_noise=1.0, dtype="float64"))
np.save(sys.argv[1], r.readings)
print(K.num_threads())
"""


def test_v2_is_bit_identical_for_any_thread_count(tmp_path: Path):
    src = str(Path(ptyfast.__file__).resolve().parents[1])
    here = str(Path(__file__).resolve().parent)
    outs, threads = [], []
    for n_threads in ("1", "2"):
        env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env["RAYON_NUM_THREADS"] = n_threads
        out = tmp_path / f"r{n_threads}.npy"
        res = subprocess.run(
            [sys.executable, "-c", RUN, str(out), here],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        threads.append(int(res.stdout.split()[-1]))
        outs.append(np.load(out))
    assert threads == [1, 2]
    assert outs[0].tobytes() == outs[1].tobytes()
    det = Detector(poisson_stream="v2", dark=0.3, read_noise=1.0, dtype="float64")
    assert acquire(det).readings.tobytes() == outs[0].tobytes()


def test_v2_is_recorded_in_provenance_and_replayed_bit_for_bit(tmp_path: Path):
    obj, _, p = inputs()
    e = ptyfast.Experiment(
        obj, p, scans.raster(3, 3, 3.0), Detector(poisson_stream="v2", dtype="uint32"), 1e5
    )
    ds = ptyfast.simulate(e, seed=3)
    record = json.loads(json.dumps(ds.provenance))
    assert record["noise_streams"]["poisson"]["stream"] == "v2"
    assert ds.detector.poisson_stream == "v2"
    again = ptyfast.replay(record)
    assert again.diffraction.dtype == ds.diffraction.dtype
    np.testing.assert_array_equal(again.diffraction, ds.diffraction)
    assert again.provenance == ds.provenance
    # The same experiment on v1 draws other counts from the same expected photons.
    v1 = ptyfast.simulate(
        ptyfast.Experiment(obj, p, scans.raster(3, 3, 3.0), Detector(dtype="uint32"), 1e5),
        seed=3,
    )
    assert not np.array_equal(v1.diffraction, ds.diffraction)

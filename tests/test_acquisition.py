"""The acquisition pipeline (``_kernels.acquire``) against independent computations.

The incoherent sum against NumPy ``Σ_k |fftshift(fft2(s·P_k·patch))|² / N²``; one mode with the
ideal detector against today's fused simulation, bit for bit; photons per pattern against
Parseval and the dose; chunks, output buffers and thread counts against one call; every
validation error names its argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import _kernels as K


def random_object(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    amp = 0.5 + rng.random((h, w))
    return (amp * np.exp(1j * rng.uniform(-1, 1, (h, w)))).astype(np.complex64)


def gaussian_modes(n: int, p: int) -> np.ndarray:
    """``P`` distinct modes (Hermite-Gaussian-like), unit total intensity."""
    yy, xx = (np.mgrid[:n, :n] - n / 2) / (n / 6)
    g = np.exp(-(xx**2 + yy**2) / 2)
    shapes = [np.ones_like(g), xx, yy, xx * yy]
    m = np.stack([g * shapes[k % 4] * np.exp(0.3j * k * xx) for k in range(p)])
    m /= np.sqrt((np.abs(m) ** 2).sum())
    return m.astype(np.complex64)


def numpy_expected(patches: np.ndarray, modes: np.ndarray, scale: float) -> np.ndarray:
    """``λ = Σ_k |fftshift(fft2(scale·P_k·patch))|² / N²`` in complex128."""
    n = modes.shape[-1]
    field = scale * modes[None].astype(np.complex128) * patches[:, None].astype(np.complex128)
    f = np.fft.fftshift(np.fft.fft2(field), axes=(-2, -1))
    return (np.abs(f) ** 2).sum(axis=1) / n**2


def full_detector(n: int) -> ptyfast.Detector:
    """Every stage on: geometry with the beam near a gap corner, beamstop, defects, PSF,
    dark counts, read noise, saturation, uint16."""
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
        beam_px=(40 - n // 2 + 5, 30),
        dead_fraction=0.02,
        hot_fraction=0.01,
        bad_pixel_seed=5,
        dead_time_s=1e-7,
        exposure_s=1e-3,
    )


# --------------------------------------------------------------------------- physics


@pytest.mark.parametrize("n, p", [(16, 1), (16, 3), (15, 2)])
def test_incoherent_sum_matches_numpy(n: int, p: int):
    rng = np.random.default_rng(n * 10 + p)
    obj = random_object(rng, 60, 60)
    pos = rng.uniform(12, 48, (9, 2))
    pos[:3] = np.round(pos[:3])  # integer positions: patches are plain slices
    modes = gaussian_modes(n, p)
    res = K.acquire(
        obj,
        pos,
        modes,
        scale=30.0,
        detector={"poisson": False, "dtype": "float64"},
        return_patches=True,
    )
    for i in range(3):
        x, y = pos[i].astype(int)
        sl = obj[y - n // 2 : y - n // 2 + n, x - n // 2 : x - n // 2 + n]
        assert np.array_equal(res.patches[i], sl)
    want = numpy_expected(res.patches, modes, 30.0)
    np.testing.assert_allclose(res.readings, want, rtol=2e-5, atol=2e-6 * want.max())
    np.testing.assert_array_equal(res.patches, K.extract_patches(obj, pos, n))


def test_one_mode_ideal_detector_is_todays_noise_bit_for_bit():
    rng = np.random.default_rng(3)
    obj = random_object(rng, 80, 80)
    pos = rng.uniform(16, 64, (40, 2))
    probe = gaussian_modes(32, 1)[0]
    ideal = ptyfast.Detector.ideal()
    assert ideal.is_ideal
    for scale, dtype in [(40.0, "float32"), (40.0, "float64"), (1e4, "float64")]:
        amps, _ = K.simulate(obj, pos, probe, scale=scale, seed=99, first_index=7)
        det = ideal if dtype == "float32" else {"dtype": dtype}
        r = K.acquire(obj, pos, probe, scale=scale, detector=det, seed=99, first_index=7)
        assert r.readings.dtype == dtype
        # Every reading is a count and its square root is today's amplitude.
        assert np.array_equal(r.readings, np.round(r.readings))
        assert np.array_equal(np.sqrt(r.readings).astype(np.float32), amps)
        photons = ideal.readings_to_photons(r.readings)
        assert np.array_equal(np.sqrt(photons).astype(np.float32), amps)
        if scale > 1000:
            assert r.readings.max() > 2**24  # beyond float32's exact integers
    # (P, N, N) with P = 1 and (N, N, 1) are the same single mode.
    a = K.acquire(obj, pos, probe[None], scale=40.0, seed=1).readings
    b = K.acquire(obj, pos, probe[..., None], scale=40.0, seed=1).readings
    assert np.array_equal(a, b)


def test_photons_per_pattern_follow_parseval_and_the_dose():
    rng = np.random.default_rng(4)
    obj = random_object(rng, 64, 64)
    pos = rng.uniform(16, 48, (200, 2))
    modes = gaussian_modes(16, 2)
    patches = K.extract_patches(obj, pos, 16)
    energy = (np.abs(modes[None] * patches[:, None]) ** 2).sum(axis=(1, 2, 3))
    photons = 5e4
    scale = float(np.sqrt(photons / energy.mean()))
    qe = 0.6
    r = K.acquire(
        obj,
        pos,
        modes,
        scale=np.float32(scale),
        detector={"qe": qe},
        seed=2,
        return_stats=True,
    )
    st = r.stats
    # Σλ per pattern is the illuminated energy times s² (Parseval), and averages to photons.
    s2 = float(np.float32(scale)) ** 2
    np.testing.assert_allclose(st["photons"], energy * s2, rtol=1e-5)
    assert abs(st["photons"].mean() / photons - 1) < 1e-5
    np.testing.assert_allclose(st["detected"], qe * st["photons"], rtol=1e-12)
    # Detected counts: Poisson of qe·photons in all (sum over patterns, 5σ).
    total, want = st["counts"].sum(), qe * st["photons"].sum()
    assert abs(total - want) < 5 * np.sqrt(want), (total, want)
    assert np.array_equal(st["counts"], r.readings.astype(np.float64).sum(axis=(1, 2)))
    assert np.array_equal(st["readings"], st["counts"])
    assert not st["saturated"].any()


def test_detect_equals_the_pipeline_on_the_same_expected_photons():
    rng = np.random.default_rng(5)
    obj = random_object(rng, 50, 50)
    pos = rng.uniform(10, 40, (12, 2))
    modes = gaussian_modes(16, 2)
    lam = K.acquire(obj, pos, modes, scale=50.0, detector={"poisson": False, "dtype": "float64"})
    det = full_detector(16)
    full = K.acquire(obj, pos, modes, scale=50.0, detector=det, seed=8, return_stats=True)
    alone, st = K.detect(lam.readings, detector=det, seed=8, return_stats=True)
    assert alone.dtype == np.uint16
    assert np.array_equal(alone, full.readings)
    for k in K.ACQUIRE_STATS:
        assert np.array_equal(st[k], full.stats[k]), k


# --------------------------------------------------------------------------- reproducibility

RUN_ACQUIRE = """
import sys, numpy as np, json
from ptyfast import _kernels as K
import ptyfast
d = np.load(sys.argv[1])
det = ptyfast.Detector.from_dict(json.loads(str(d["det"])))
r = K.acquire(d["obj"], d["pos"], d["modes"], scale=float(d["scale"]), detector=det, seed=11,
              return_patches=True, return_stats=True)
st = np.stack([r.stats[k] for k in K.ACQUIRE_STATS], axis=1)
np.savez(sys.argv[2], readings=r.readings, patches=r.patches, stats=st)
print(K.num_threads())
"""


def _dataset(m=60, n=16):
    rng = np.random.default_rng(6)
    return random_object(rng, 70, 70), rng.uniform(10, 60, (m, 2)), gaussian_modes(n, 2), 60.0


def test_output_is_bit_identical_for_any_thread_count(tmp_path: Path):
    import json

    obj, pos, modes, scale = _dataset()
    det = full_detector(16)
    np.savez(
        tmp_path / "in.npz",
        obj=obj,
        pos=pos,
        modes=modes,
        scale=scale,
        det=json.dumps(det.to_dict()),
    )
    src = str(Path(ptyfast.__file__).resolve().parents[1])
    outs, threads = [], []
    for n_threads in ("1", "2"):
        env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env["RAYON_NUM_THREADS"] = n_threads
        out = tmp_path / f"out{n_threads}.npz"
        res = subprocess.run(
            [sys.executable, "-c", RUN_ACQUIRE, str(tmp_path / "in.npz"), str(out)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        threads.append(int(res.stdout.split()[-1]))
        outs.append(np.load(out))
    assert threads == [1, 2]
    for key in ("readings", "patches", "stats"):
        assert outs[0][key].tobytes() == outs[1][key].tobytes(), key
    here = K.acquire(obj, pos, modes, scale=scale, detector=det, seed=11)
    assert here.readings.tobytes() == outs[0]["readings"].tobytes()


def test_chunks_into_caller_buffers_equal_one_call():
    obj, pos, modes, scale = _dataset(m=50)
    det = full_detector(16)
    whole = K.acquire(
        obj,
        pos,
        modes,
        scale=scale,
        detector=det,
        seed=3,
        return_patches=True,
        return_stats=True,
    )
    readings = np.full((50, 16, 16), 7, np.uint16)
    patches = np.zeros((50, 16, 16), np.complex64)
    stats = np.zeros((50, 5))
    for a, b in [(0, 1), (1, 17), (17, 50)]:
        got = K.acquire(
            obj,
            pos[a:b],
            modes,
            scale=scale,
            detector=det,
            seed=3,
            first_index=a,
            out=readings[a:b],
            out_patches=patches[a:b],
            out_stats=stats[a:b],
        )
        assert np.shares_memory(got.readings, readings)
    assert readings.tobytes() == whole.readings.tobytes()
    assert patches.tobytes() == whole.patches.tobytes()
    st = np.stack([whole.stats[k] for k in K.ACQUIRE_STATS], axis=1)
    assert stats.tobytes() == st.tobytes()
    # Other seeds and other first indices give other noise.
    other = K.acquire(obj, pos, modes, scale=scale, detector=det, seed=4)
    assert not np.array_equal(other.readings, whole.readings)
    shifted = K.acquire(obj, pos, modes, scale=scale, detector=det, seed=3, first_index=1)
    assert not np.array_equal(shifted.readings, whole.readings)


def test_a_plan_gives_acquires_bits_in_chunks():
    obj, pos, modes, scale = _dataset(m=50)
    det = full_detector(16)
    kw = {"return_patches": True, "return_stats": True}
    whole = K.acquire(obj, pos, modes, scale=scale, detector=det, seed=3, **kw)
    plan = K.acquire_plan(obj, modes, scale=scale, detector=det)
    got = [plan(pos[a:b], seed=3, first_index=a, **kw) for a, b in [(0, 1), (1, 17), (17, 50)]]
    assert np.concatenate([g.readings for g in got]).tobytes() == whole.readings.tobytes()
    assert np.concatenate([g.patches for g in got]).tobytes() == whole.patches.tobytes()
    for k in K.ACQUIRE_STATS:
        assert np.concatenate([g.stats[k] for g in got]).tobytes() == whole.stats[k].tobytes()
    # The plan holds the validated, converted arguments; each call still checks its own.
    assert plan.obj.dtype == np.complex64 and plan.modes.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="positions"):
        plan([[np.nan, 1.0]], seed=3)


def test_inputs_are_not_modified():
    obj, pos, modes, scale = _dataset(m=5)
    copies = [a.copy() for a in (obj, pos, modes)]
    K.acquire(obj, pos, modes, scale=scale, detector=full_detector(16), seed=1)
    for a, b in zip((obj, pos, modes), copies, strict=True):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- errors

OBJ = np.ones((32, 32), np.complex64)
POS = np.full((3, 2), 16.0)
PROBE = np.ones((8, 8), np.complex64)


def _acq(**kw):
    args = {"obj": OBJ, "positions": POS, "probe": PROBE}
    args.update(kw)
    return K.acquire(args.pop("obj"), args.pop("positions"), args.pop("probe"), **args)


BAD_CALLS = [
    ("obj", ValueError, lambda: _acq(obj=np.ones((0, 4)))),
    ("positions", ValueError, lambda: _acq(positions=np.ones((3, 3)))),
    ("positions", ValueError, lambda: _acq(positions=[[np.nan, 1.0]])),
    ("probe", ValueError, lambda: _acq(probe=np.ones((2, 8, 7)))),
    ("probe", ValueError, lambda: _acq(probe=np.ones((1, 1)))),
    ("probe", ValueError, lambda: _acq(probe=np.ones((2, 1, 1)))),
    ("scale", ValueError, lambda: _acq(scale=0.0)),
    # Scales float32 cannot hold (rounded to 0 or inf), and a far field beyond float32
    # (inf rates and NaN statistics before): s·max|obj|·Σ|probe| = 64·s must stay below ~1.3e19
    # (for every mode).
    ("scale = 1e-50 .* outside the float32 range", ValueError, lambda: _acq(scale=1e-50)),
    ("scale = 1e[+]39 .* outside the float32 range", ValueError, lambda: _acq(scale=1e39)),
    ("scale = 1e[+]19 would overflow the float32 far field", ValueError, lambda: _acq(scale=1e19)),
    (
        "scale = 1e[+]19 would overflow",
        ValueError,
        lambda: _acq(scale=1e19, probe=np.stack([PROBE / 64, PROBE])),
    ),
    ("seed", ValueError, lambda: _acq(seed=-1)),
    ("first_index", ValueError, lambda: _acq(first_index=-1)),
    ("first_index", ValueError, lambda: _acq(first_index=2**64 - 2)),
    ("detector", TypeError, lambda: _acq(detector=3)),
    ("detector", ValueError, lambda: _acq(detector={"noise": 1})),
    ("poisson", TypeError, lambda: _acq(detector={"poisson": 1})),
    ("poisson_stream", ValueError, lambda: _acq(detector={"poisson_stream": "v0"})),
    ("qe", ValueError, lambda: _acq(detector={"qe": 1.5})),
    ("qe", ValueError, lambda: _acq(detector={"qe": 0.0})),
    ("gain", ValueError, lambda: _acq(detector={"gain": -2.0})),
    ("offset", ValueError, lambda: _acq(detector={"offset": -1.0})),
    ("read_noise", ValueError, lambda: _acq(detector={"read_noise": -0.5})),
    ("read_noise", TypeError, lambda: _acq(detector={"read_noise": "1"})),
    ("dark", ValueError, lambda: _acq(detector={"dark": float("nan")})),
    ("psf_sigma_px", ValueError, lambda: _acq(detector={"psf_sigma_px": -1.0})),
    ("full_well", ValueError, lambda: _acq(detector={"full_well": 5.0, "offset": 10.0})),
    ("full_well", ValueError, lambda: _acq(detector={"full_well": 1e6, "dtype": "uint16"})),
    ("dtype", ValueError, lambda: _acq(detector={"dtype": "int16"})),
    ("overflow", ValueError, lambda: _acq(detector={"overflow": "clip"})),
    ("dead_time_fraction", ValueError, lambda: _acq(detector={"dead_time_fraction": -1.0})),
    ("pixels", ValueError, lambda: _acq(detector={"pixels": np.zeros((8, 9), np.uint8)})),
    ("pixels", ValueError, lambda: _acq(detector={"pixels": np.full((8, 8), 16, np.uint8)})),
    ("pixels", ValueError, lambda: _acq(detector={"pixels": np.full((8, 8), 8, np.uint8)})),
    ("out", TypeError, lambda: _acq(out=[[0.0]])),
    ("out", ValueError, lambda: _acq(out=np.zeros((3, 8, 8), np.float64))),
    ("out", ValueError, lambda: _acq(out=np.zeros((3, 8, 9), np.float32))),
    ("out", ValueError, lambda: _acq(out=np.zeros((3, 8, 16), np.float32)[:, :, ::2])),
    ("out_patches", ValueError, lambda: _acq(out_patches=np.zeros((3, 8, 8), np.complex128))),
    ("out_stats", ValueError, lambda: _acq(out_stats=np.zeros((3, 4)))),
]


@pytest.mark.parametrize(
    "name, exc, call", BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)]
)
def test_bad_input_raises_naming_the_argument(name, exc, call):
    with pytest.raises(exc, match=name):
        call()


def _plan_acq(**kw):
    """``_acq`` through :func:`acquire_plan`: the fixed arguments to the plan, the rest to
    the call."""
    args = {"obj": OBJ, "positions": POS, "probe": PROBE}
    args.update(kw)
    fixed = {k: args.pop(k) for k in ("scale", "detector") if k in args}
    plan = K.acquire_plan(args.pop("obj"), args.pop("probe"), **fixed)
    return plan(args.pop("positions"), **args)


@pytest.mark.parametrize(
    "name, exc, call", BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)]
)
def test_a_plan_refuses_what_acquire_refuses(name, exc, call, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "_acq", _plan_acq)
    with pytest.raises(exc, match=name):
        call()


def test_the_largest_scale_that_fits_gives_finite_readings_and_statistics():
    # Above, 64·s > sqrt(float32.max / 2) ≈ 1.3e19 is refused; just below (s = 2e17 of at
    # most 2.04e17), the zero frequency of the flat object and probe has the rate
    # (s·64/N)² = 2.6e36 (amplitudes are /N).
    r = _acq(scale=2e17, detector={"poisson": True}, seed=1, return_stats=True)
    assert np.isfinite(r.readings).all()
    assert r.readings.max() == pytest.approx((2e17 * 64 / 8) ** 2, rel=1e-6)
    assert all(np.isfinite(v).all() for v in r.stats.values())


def test_outputs_that_would_not_fit_are_refused_before_allocating():
    pos = np.zeros((2**22, 2))  # 4M patterns of 512² float64: 8 TiB
    with pytest.raises(ValueError, match="positions: .* needs .* bytes .*must fit in memory"):
        K.acquire(OBJ, pos, np.ones((512, 512), np.complex64), detector={"dtype": "float64"})


def test_out_must_not_alias_an_input():
    buf = np.zeros((3, 8, 8), np.float32)
    obj = buf.view(np.complex64)[0]  # (8, 4) complex64 over the first pattern's memory
    with pytest.raises(ValueError, match="out must not share memory"):
        K.acquire(obj, POS, PROBE, out=buf)


def test_detect_validates_its_input():
    with pytest.raises(ValueError, match="expected"):
        K.detect(-np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="expected"):
        K.detect(np.ones((1, 4, 5)))
    with pytest.raises(ValueError, match="out"):
        K.detect(np.ones((1, 4, 4)), out=np.zeros((1, 4, 4), np.uint16))

"""``ptyfast.Detector`` and the detector stage against independent computations.

Readings' mean and variance per pixel (many patterns at one position) against the QE, gain,
offset, dark and read-noise formulas, with tolerances from the estimators' standard errors;
saturation, dtype limits and counter overflow against the counts of the same stream; beamstop,
gaps and bad pixels against an explicitly tiled detector; the PSF against SciPy; presets'
module geometry against the data-sheet sizes; serialisation; every validation error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage

import ptyfast
from ptyfast import Detector
from ptyfast import _kernels as K

N = 16
M = 4000


def probe(n: int = N) -> np.ndarray:
    yy, xx = (np.mgrid[:n, :n] - n / 2) / (n / 5)
    p = np.exp(-(xx**2 + yy**2) / 2) * np.exp(0.4j * xx)
    return (p / np.sqrt((np.abs(p) ** 2).sum())).astype(np.complex64)


def one_position(m: int, det, *, scale: float = 30.0, seed: int = 1, n: int = N, stats=False):
    """``m`` patterns of a textured object at one position: λ is the same for every pattern."""
    yy, xx = np.mgrid[:40, :40]
    obj = (1 + 0.5 * np.sin(xx / 3.0) * np.cos(yy / 5.0)).astype(np.complex64)
    pos = np.full((m, 2), 20.0)
    return K.acquire(obj, pos, probe(n), scale=scale, detector=det, seed=seed, return_stats=stats)


def expected(scale: float = 30.0, n: int = N) -> np.ndarray:
    return one_position(1, {"poisson": False, "dtype": "float64"}, scale=scale, n=n).readings[0]


def z_scores(r: np.ndarray, mu: np.ndarray, var: np.ndarray, kappa4: np.ndarray):
    """Per-pixel z of the sample mean and variance over axis 0 (``kappa4``: the readings'
    fourth cumulant, for the variance's standard error)."""
    m = r.shape[0]
    mean = r.mean(axis=0)
    s2 = r.var(axis=0, ddof=1)
    z_mean = (mean - mu) / np.sqrt(var / m)
    z_var = (s2 - var) / np.sqrt(kappa4 / m + 2 * var**2 / (m - 1))
    return z_mean, z_var


def assert_normal_z(z: np.ndarray, what: str):
    """Each |z| < 5.5 and Σz² within 5σ of its χ² expectation."""
    k = z.size
    assert np.abs(z).max() < 5.5, (what, np.abs(z).max())
    assert abs((z**2).sum() - k) < 5 * np.sqrt(2 * k), (what, (z**2).sum(), k)


# --------------------------------------------------------------------------- statistics


def test_mean_and_variance_follow_qe_gain_offset_dark_and_read_noise():
    lam = expected()
    assert lam.max() > 50 and lam.min() < 0.1  # rates from faint to bright
    qe, gain, offset, rn, dark = 0.6, 2.5, 50.0, 1.7, 0.3
    det = Detector(qe=qe, gain=gain, offset=offset, read_noise=rn, dark=dark, dtype="float64")
    r = one_position(M, det).readings
    c = qe * lam + dark  # Poisson mean (= variance = every cumulant) of photons + dark
    mu = gain * c + offset
    var = gain**2 * c + rn**2
    z_mean, z_var = z_scores(r, mu, var, gain**4 * c)
    assert_normal_z(z_mean, "mean")
    assert_normal_z(z_var, "variance")


def test_integer_readings_add_only_rounding():
    lam = expected()
    det = Detector.integrating(qe=0.8)
    assert det.dtype == "uint16"
    r = one_position(M, det, seed=2).readings.astype(np.float64)
    c = 0.8 * lam + det.dark
    mu = det.gain * c + det.offset
    # Sheppard: rounding to integers adds 1/12 to the variance of a wide distribution.
    var = det.gain**2 * c + det.read_noise**2 + 1 / 12
    z_mean, z_var = z_scores(r, mu, var, det.gain**4 * c)
    assert_normal_z(z_mean, "mean")
    assert_normal_z(z_var, "variance")
    assert np.array_equal(r, np.round(r))


def test_photon_counting_presets_count_photons_times_qe():
    lam = expected()
    for det in (Detector.eiger("1M", qe=0.9), Detector.pilatus("300K", qe=0.9)):
        res = one_position(M, det, seed=3, stats=True)
        assert res.readings.dtype == np.uint32
        st = res.stats
        np.testing.assert_allclose(st["photons"], lam.sum(), rtol=1e-12)
        np.testing.assert_allclose(st["detected"], 0.9 * lam.sum(), rtol=1e-12)
        # Counts are Poisson(qe·λ) per pixel: their mean and variance are qe·λ.
        r = res.readings.astype(np.float64)
        z_mean, z_var = z_scores(r, 0.9 * lam, 0.9 * lam, 0.9 * lam)
        live = 0.9 * lam * M > 100  # enough counts for the sample moments to be normal
        assert_normal_z(z_mean[live], f"{det.name} mean")
        assert_normal_z(z_var[live], f"{det.name} variance")
        assert np.array_equal(st["readings"], r.sum(axis=(1, 2)))
        total, want = st["counts"].sum(), 0.9 * st["photons"].sum()
        assert abs(total - want) < 5 * np.sqrt(want)


# --------------------------------------------------------------------------- deterministic stages


def test_psf_is_a_gaussian_convolution_of_the_expected_counts():
    lam = expected()
    for sigma in (0.6, 1.3, 3.0):
        det = Detector(poisson=False, qe=0.9, psf_sigma_px=sigma, dtype="float64")
        got = one_position(1, det).readings[0]
        want = scipy.ndimage.gaussian_filter(0.9 * lam, sigma, mode="constant", truncate=4.0)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * want.max())
        # Counts spread beyond the pattern's edge are lost, none are created.
        assert got.sum() <= 0.9 * lam.sum() * (1 + 1e-12)


def test_dead_time_reduces_the_mean_as_a_non_paralyzable_counter():
    lam = expected(scale=300.0)
    det = Detector(poisson=False, dtype="float64", dead_time_s=2e-6, exposure_s=1e-3)
    got = one_position(1, det, scale=300.0).readings[0]
    f = 2e-6 / 1e-3
    np.testing.assert_allclose(got, lam / (1 + lam * f), rtol=1e-12)
    assert (got < lam).any()


def test_saturation_at_the_full_well():
    lam = expected()
    det = Detector(poisson=False, full_well=100.0, offset=2.0, dtype="float32")
    res = one_position(1, det, stats=True)
    want = np.minimum(lam + 2.0, 100.0).astype(np.float32)
    assert np.array_equal(res.readings[0], want)
    assert res.stats["saturated"][0] == np.sum(lam + 2.0 >= 100.0) > 0


@pytest.mark.parametrize(
    "dtype, overflow, scale",
    [("uint16", "saturate", 600.0), ("uint16", "wrap", 600.0), ("uint32", "wrap", 2e5)],
)
def test_integer_counters_saturate_or_wrap(dtype, overflow, scale):
    counts = one_position(20, {"dtype": "float64"}, scale=scale, seed=4).readings
    bits = np.iinfo(dtype).bits
    assert counts.max() >= 2**bits  # the brightest pixels overflow the counter
    res = one_position(20, {"dtype": dtype, "overflow": overflow}, scale=scale, seed=4, stats=True)
    if overflow == "saturate":
        want = np.minimum(counts, 2**bits - 1)
    else:
        want = np.mod(counts, 2**bits)
    assert res.readings.dtype == dtype
    assert np.array_equal(res.readings.astype(np.float64), want)
    assert np.array_equal(res.stats["saturated"], (counts >= 2**bits).sum(axis=(1, 2)))


def test_ideal_readings_mean_counts():
    det = Detector.ideal()
    r = one_position(3, det).readings
    assert r.dtype == np.float32
    assert np.array_equal(det.readings_to_photons(r), r.astype(np.float64))


def test_readings_to_photons_inverts_gain_offset_and_dark():
    lam = expected()
    det = Detector(poisson=False, qe=0.5, gain=4.0, offset=30.0, dark=0.2, dtype="float64")
    r = one_position(2, det).readings
    want = np.broadcast_to(0.5 * lam, r.shape)
    np.testing.assert_allclose(det.readings_to_photons(r), want, rtol=1e-12, atol=1e-12)
    noisy = Detector(gain=2.0, offset=10.0, read_noise=5.0, dtype="float64")
    p = noisy.readings_to_photons(one_position(5, noisy).readings)
    assert p.min() == 0.0  # negative estimates clipped
    assert noisy.readings_to_photons(np.zeros((4, 4)), clip_negative=False).min() == -5.0
    with pytest.raises(ValueError, match="readings"):
        det.readings_to_photons(np.zeros((3, 4)))


# --------------------------------------------------------------------------- geometry and defects


def tiled_sensor(module, gap, n_modules) -> np.ndarray:
    """The detector's sensor map, module by module."""
    h = n_modules[0] * module[0] + (n_modules[0] - 1) * gap[0]
    w = n_modules[1] * module[1] + (n_modules[1] - 1) * gap[1]
    s = np.zeros((h, w), bool)
    for i in range(n_modules[0]):
        for j in range(n_modules[1]):
            r0, c0 = i * (module[0] + gap[0]), j * (module[1] + gap[1])
            s[r0 : r0 + module[0], c0 : c0 + module[1]] = True
    return s


def crop(sensor: np.ndarray, beam, n: int) -> np.ndarray:
    padded = np.pad(sensor, n, constant_values=False)
    r0, c0 = beam[0] - n // 2 + n, beam[1] - n // 2 + n
    return padded[r0 : r0 + n, c0 : c0 + n]


@pytest.mark.parametrize("beam", [(25, 36), (3, 2), (41, 60), (20, 31)])
def test_gaps_fall_where_the_modules_end(beam):
    module, gap, nm = (20, 30), (3, 4), (2, 2)
    det = Detector(module_px=module, gap_px=gap, n_modules=nm, beam_px=beam)
    want = crop(tiled_sensor(module, gap, nm), beam, 32)
    assert np.array_equal(det.mask(32), want)
    assert not want.all()


def test_presets_have_their_data_sheet_geometry():
    sizes = [
        (Detector.eiger("4M", generation=1), (2167, 2070)),
        (Detector.eiger("9M", generation=1), (3269, 3110)),
        (Detector.eiger("4M"), (2162, 2068)),
        (Detector.eiger("16M"), (4362, 4148)),
        (Detector.eiger("1M"), (1062, 1028)),
        (Detector.pilatus("6M"), (2527, 2463)),
        (Detector.pilatus("1M"), (1043, 981)),
        (Detector.pilatus("300K"), (619, 487)),
    ]
    for det, ext in sizes:
        assert det.extent_px == ext, det.name
        assert not det.read_noise and det.dtype == "uint32" and det.poisson
        # The default beam sits at a module centre: small crops have no gaps ...
        assert det.mask(128).all(), det.name
        # ... and a crop larger than a module meets them where the tiling says.
        want = crop(tiled_sensor(det.module_px, det.gap_px, det.n_modules), det.beam, 1200)
        assert np.array_equal(det.mask(1200), want), det.name
    assert Detector.pilatus().full_well == 2**20 - 1
    assert Detector.eiger().pixel_m == 75e-6 and Detector.pilatus().pixel_m == 172e-6


def test_beamstop_gaps_and_bad_pixels_read_as_documented_and_are_masked():
    n = 32
    det = Detector(
        beamstop_radius_px=2.5,
        module_px=(20, 30),
        gap_px=(3, 4),
        n_modules=(2, 2),
        beam_px=(25, 36),
        dead_fraction=0.05,
        hot_fraction=0.03,
        bad_pixel_seed=11,
        offset=5.0,
        full_well=1000.0,
        dtype="uint16",
    )
    gaps = ~crop(tiled_sensor((20, 30), (3, 4), (2, 2)), (25, 36), n)
    yy, xx = np.mgrid[:n, :n] - n // 2
    stop = np.hypot(yy, xx) < 2.5
    u = np.random.Generator(np.random.PCG64(11)).random((n, n))
    dead, hot = u < 0.05, (u >= 0.05) & (u < 0.08)
    valid = ~(gaps | stop | dead | hot)
    assert np.array_equal(det.mask(n), valid)
    codes = det.pixel_map(n)
    flags = {1: stop, 2: gaps, 4: dead, 8: hot}
    for flag, where in flags.items():
        assert np.array_equal((codes & flag) != 0, where), flag
    assert stop.sum() == 21 and gaps.any() and dead.any() and hot.any()
    assert (stop & (dead | hot)).any()  # a defect under the beamstop, both apply
    res = one_position(5, det, scale=300.0, n=n, stats=True)
    r = res.readings
    assert np.all(r[:, gaps | dead] == 0)
    assert np.all(r[:, hot & ~gaps & ~dead] == 1000)
    # The beamstop's shadow gets no photons: those pixels read the offset alone.
    assert np.all(r[:, stop & ~(gaps | dead | hot)] == 5)
    assert np.all(r[:, valid] >= 5)
    lam = expected(scale=300.0, n=n)
    assert lam[stop].sum() > 0.2 * lam.sum()  # the stop hides the bright centre
    # Photons in gaps and under the stop are not detected.
    np.testing.assert_allclose(res.stats["detected"], lam[~(gaps | stop)].sum(), rtol=1e-12)
    np.testing.assert_allclose(res.stats["photons"], lam.sum(), rtol=1e-12)
    assert np.array_equal(res.stats["readings"], r[:, valid].sum(axis=1).astype(np.float64))


def test_explicit_bad_pixel_maps():
    dead = np.zeros((8, 8), bool)
    dead[1, 2] = True
    hot = np.zeros((8, 8), bool)
    hot[3, 3] = True
    det = Detector(dead_pixels=dead, hot_pixels=hot, dtype="uint16")
    assert np.array_equal(det.mask(8), ~(dead | hot))
    r = K.acquire(np.ones((20, 20)), [[10, 10]] * 3, np.ones((8, 8)), detector=det, seed=0)
    assert np.all(r.readings[:, 1, 2] == 0) and np.all(r.readings[:, 3, 3] == 65535)
    with pytest.raises(ValueError, match="dead_pixels describes 8 x 8 patterns, got N = 16"):
        det.mask(16)


def test_bad_pixel_seed_is_resolved_and_recorded():
    a = Detector(dead_fraction=0.1)
    assert isinstance(a.bad_pixel_seed, int)
    b = Detector.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.bad_pixel_seed == a.bad_pixel_seed
    assert np.array_equal(a.mask(64), b.mask(64))
    g = Detector(hot_fraction=0.1, full_well=9.0, bad_pixel_seed=np.random.default_rng(0))
    assert isinstance(g.bad_pixel_seed, int)
    assert Detector().bad_pixel_seed is None


# --------------------------------------------------------------------------- the object


def test_serialisation_round_trips_exactly():
    dead = np.zeros((16, 16), bool)
    dead[[2, 5], [7, 1]] = True
    dets = [
        Detector.ideal(),
        Detector.eiger("9M", generation=1, qe=0.93, beamstop_radius_px=3.25, beam_px=(10, 20)),
        Detector.pilatus("2M", dead_time_s=1.2e-7, exposure_s=0.1),
        Detector.integrating(psf_sigma_px=0.7, hot_fraction=0.001, dead_pixels=dead),
        Detector(poisson=False, overflow="wrap", dtype="uint32", gain=0.1),
    ]
    for d in dets:
        text = json.dumps(d.to_dict())
        back = Detector.from_dict(json.loads(text))
        assert back == d
        assert json.dumps(back.to_dict()) == text
        assert np.array_equal(back.pixel_map(16), d.pixel_map(16))
    assert dets[0] != dets[1]
    assert Detector() != Detector.ideal()  # the name is part of the record
    assert "eiger-9M" in repr(dets[1]) and "dead_pixels=<2 of 16x16>" in repr(dets[3])


def test_is_ideal_and_presets_by_name():
    assert Detector().is_ideal and Detector.ideal().is_ideal
    assert Detector.preset("ideal").is_ideal
    assert not Detector(poisson=False).is_ideal
    assert not Detector(qe=0.9).is_ideal
    assert not Detector.eiger().is_ideal
    assert Detector.preset("eiger", size="500K").name == "eiger2-500K"
    assert Detector.preset("pilatus", size="6M", qe=0.5).qe == 0.5
    assert Detector.preset("integrating").dtype == "uint16"
    assert ptyfast.Detector is Detector


def test_readings_stay_finite_at_the_edges_of_their_range():
    # The largest read noise float32 readings take, and a gain whose readings overflow float64:
    # the noise term fits (every |z| < 16), and readings beyond the range read its largest
    # value, as integer readings saturate.
    for det, top in [
        (Detector(read_noise=float(np.finfo(np.float32).max) / 16), np.finfo(np.float32).max),
        (Detector(gain=1e306, read_noise=1e300, dtype="float64"), np.finfo(np.float64).max),
    ]:
        r = one_position(3, det, seed=4).readings.astype(np.float64)
        assert np.isfinite(r).all() and r.max() <= top and r.min() >= -top
    # Integer readings read 0 below 0 and saturate above: any read noise fits them.
    r = one_position(3, Detector(read_noise=1e300, dtype="uint16"), seed=4).readings
    assert set(np.unique(r)) <= {0, 65535}


def test_a_detector_and_its_kernel_settings_give_the_same_readings():
    det = Detector.integrating(psf_sigma_px=0.5, beamstop_radius_px=1.0, dead_fraction=0.05)
    a = one_position(3, det, seed=9).readings
    b = one_position(3, det.kernel_args(N), seed=9).readings
    assert np.array_equal(a, b)
    assert a.dtype == np.uint16


BAD = [
    ("read_noise", ValueError, {"read_noise": -1.0}),
    ("read_noise must be <= 2.12676e\\+37 ADU for float32", ValueError, {"read_noise": 1e38}),
    (
        "read_noise must be <= 1.12356e\\+307 ADU for float64",
        ValueError,
        {"read_noise": 1e308, "dtype": "float64"},
    ),
    ("dark", ValueError, {"dark": -0.1}),
    ("offset", ValueError, {"offset": -3.0}),
    ("psf_sigma_px", ValueError, {"psf_sigma_px": -1.0}),
    ("qe", ValueError, {"qe": 0.0}),
    ("qe", ValueError, {"qe": 1.01}),
    ("gain", ValueError, {"gain": 0.0}),
    ("gain", TypeError, {"gain": "2"}),
    ("full_well", ValueError, {"full_well": 50.0, "offset": 100.0}),
    ("full_well", ValueError, {"full_well": float("inf")}),
    ("dtype 'uint16' cannot hold full_well", ValueError, {"full_well": 1e5, "dtype": "uint16"}),
    ("dtype", ValueError, {"dtype": "int32"}),
    ("overflow", ValueError, {"overflow": "clip"}),
    ("poisson", TypeError, {"poisson": "yes"}),
    ("poisson_stream", ValueError, {"poisson_stream": "v7"}),
    ("gap_px must be narrower", ValueError, {"module_px": (10, 10), "gap_px": (10, 2)}),
    ("gap_px and n_modules need module_px", ValueError, {"gap_px": (2, 2)}),
    ("module_px", TypeError, {"module_px": (10.5, 3)}),
    ("module_px", ValueError, {"module_px": (0, 3)}),
    (
        "beam_px must lie on the detector",
        ValueError,
        {"module_px": (10, 10), "n_modules": (1, 1), "beam_px": (10, 3)},
    ),
    ("beam_px needs module_px", ValueError, {"beam_px": (1, 1)}),
    ("dead_fraction", ValueError, {"dead_fraction": 1.5}),
    (
        "dead_fraction \\+ hot_fraction",
        ValueError,
        {"dead_fraction": 0.6, "hot_fraction": 0.6, "full_well": 9.0},
    ),
    ("hot_pixels / hot_fraction need a full_well", ValueError, {"hot_fraction": 0.1}),
    ("dead_pixels", ValueError, {"dead_pixels": np.zeros((4, 5), bool)}),
    (
        "hot_pixels must have the shape",
        ValueError,
        {"dead_pixels": np.zeros((4, 4), bool), "hot_pixels": np.zeros((5, 5), bool)},
    ),
    ("dead_time_s and exposure_s", ValueError, {"dead_time_s": 1e-7}),
    ("exposure_s", ValueError, {"dead_time_s": 1e-7, "exposure_s": 0.0}),
    ("bad_pixel_seed", ValueError, {"dead_fraction": 0.1, "bad_pixel_seed": -1}),
    ("pixel_m", ValueError, {"pixel_m": -75e-6}),
]


@pytest.mark.parametrize("match, exc, kw", BAD, ids=[f"{b[0][:20]}-{i}" for i, b in enumerate(BAD)])
def test_bad_parameters_raise_naming_them(match, exc, kw):
    with pytest.raises(exc, match=match):
        Detector(**kw)


def test_photons_beyond_float64_are_refused():
    # (reading − offset)/gain overflows float64 at a gain near the smallest double: an error,
    # not inf. Just inside the range the conversion works.
    r = np.full((2, 4, 4), 1e10)
    with pytest.raises(ValueError, match=r"readings must convert to finite photons.*gain 1e-300"):
        Detector(gain=1e-300).readings_to_photons(r)
    assert np.isfinite(Detector(gain=1e-297).readings_to_photons(r)).all()


def test_pattern_dependent_errors():
    with pytest.raises(ValueError, match="beamstop_radius_px must be <= N/2 = 8"):
        Detector(beamstop_radius_px=9.0).mask(16)
    # A crop entirely in a gap (the gap wider than the pattern).
    det = Detector(module_px=(100, 100), gap_px=(40, 40), beam_px=(120, 120))
    with pytest.raises(ValueError, match="at least one valid pixel"):
        det.mask(16)
    with pytest.raises(ValueError, match="N must be an integer >= 2"):
        Detector().mask(1)


def test_unknown_presets_and_records_are_refused():
    with pytest.raises(ValueError, match="name must be a preset"):
        Detector.preset("medipix")
    with pytest.raises(ValueError, match="size must be one of"):
        Detector.eiger("5M")
    with pytest.raises(ValueError, match="generation"):
        Detector.eiger(generation=3)
    with pytest.raises(ValueError, match="size must be one of"):
        Detector.pilatus("9M")
    with pytest.raises(TypeError, match="unknown Detector parameter"):
        Detector.integrating(noise=3)
    with pytest.raises(ValueError, match="ptyfast.Detector record"):
        Detector.from_dict({"gain": 2.0})
    rec = Detector().to_dict()
    rec["version"] = 99
    with pytest.raises(ValueError, match="version"):
        Detector.from_dict(rec)

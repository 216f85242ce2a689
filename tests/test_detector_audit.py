"""Audit of ``ptyfast.Detector`` against independent facts.

* Preset geometry against the vendor's published detector sizes: DECTRIS module size, gaps and
  full-detector shape as tabulated by pyFAI (``silx-kit/pyFAI``,
  ``src/pyFAI/detectors/_dectris.py``: ``MODULE_SIZE``, ``MODULE_GAP``, ``MAX_SHAPE`` of every
  EIGER, EIGER2 and PILATUS size; 75 µm / 172 µm pixels), with the gap mask rebuilt by pyFAI's
  own rule (gap rows start at ``module, module + (module + gap), ...``), not by ptyfast's.
* Counter behaviour against the data sheets: PILATUS 20-bit counters (DECTRIS PILATUS user
  manual v1.2, §4.2: "a high dynamic range of 1'000'000 (20 bits)"), EIGER 12-bit and EIGER2
  16-bit counters extended to 32 bits by auto-summation (dectris.com "Continuous readout and
  auto-summation"; EIGER2 user manual v1.8.2 §3.2.5 and §9.7.4), no read noise or dark current
  (dectris.com "No readout noise or dark current").
* The non-paralyzable dead-time law ``m = n / (1 + n τ)`` against a NumPy event-by-event
  counter, then the readings against it.
* The integrating preset's readings against their exact per-pixel distribution (a Poisson
  mixture of rounded, clipped normals), the quantisation against NumPy's round-half-even.
* Masks against lattice counts and binomial bounds; the docstring table against the fields.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy import special, stats

from ptyfast import Detector
from ptyfast import _kernels as K
from ptyfast.model import detector as detector_module

# --------------------------------------------------------------------------- vendor facts

# pyFAI's table of DECTRIS detectors: (rows, cols) of a module, of the gaps, of the detector.
PYFAI_MODULE = {"eiger": (514, 1030), "eiger2": (512, 1028), "pilatus": (195, 487)}
PYFAI_GAP = {"eiger": (37, 10), "eiger2": (38, 12), "pilatus": (17, 7)}
PYFAI_MAX_SHAPE = {
    ("eiger", "500K"): (514, 1030),
    ("eiger", "1M"): (1065, 1030),
    ("eiger", "4M"): (2167, 2070),
    ("eiger", "9M"): (3269, 3110),
    ("eiger", "16M"): (4371, 4150),
    ("eiger2", "500K"): (512, 1028),
    ("eiger2", "1M"): (1062, 1028),
    ("eiger2", "4M"): (2162, 2068),
    ("eiger2", "9M"): (3262, 3108),
    ("eiger2", "16M"): (4362, 4148),
    ("pilatus", "100K"): (195, 487),
    ("pilatus", "300K"): (619, 487),
    ("pilatus", "1M"): (1043, 981),
    ("pilatus", "2M"): (1679, 1475),
    ("pilatus", "6M"): (2527, 2463),
}
# Module counts of the data sheets (e.g. PILATUS 6M: 60 modules, 5 × 12; EIGER 16M: 32).
MODULE_COUNT = {"500K": 1, "1M": 2, "4M": 8, "9M": 18, "16M": 32}
PILATUS_MODULE_COUNT = {"100K": 1, "300K": 3, "1M": 10, "2M": 24, "6M": 60}
PIXEL_M = {"eiger": 75e-6, "eiger2": 75e-6, "pilatus": 172e-6}


def make(family: str, size: str) -> Detector:
    if family == "pilatus":
        return Detector.pilatus(size)
    return Detector.eiger(size, generation=2 if family == "eiger2" else 1)


def pyfai_mask(family: str, size: str) -> np.ndarray:
    """True on sensor pixels of the whole detector, by pyFAI's ``calc_mask`` rule."""
    shape, module, gap = PYFAI_MAX_SHAPE[family, size], PYFAI_MODULE[family], PYFAI_GAP[family]
    sensor = np.ones(shape, bool)
    for i in range(module[0], shape[0], module[0] + gap[0]):
        sensor[i : i + gap[0], :] = False
    for i in range(module[1], shape[1], module[1] + gap[1]):
        sensor[:, i : i + gap[1]] = False
    return sensor


PRESETS = sorted(PYFAI_MAX_SHAPE)


@pytest.mark.parametrize("family, size", PRESETS)
def test_preset_geometry_is_the_vendors(family, size):
    det = make(family, size)
    assert det.module_px == PYFAI_MODULE[family]
    assert det.gap_px == PYFAI_GAP[family]
    assert det.extent_px == PYFAI_MAX_SHAPE[family, size]
    assert det.pixel_m == PIXEL_M[family]
    count = (PILATUS_MODULE_COUNT if family == "pilatus" else MODULE_COUNT)[size]
    assert det.n_modules[0] * det.n_modules[1] == count
    # The nominal size is the pixel count of the sensor, within 15 %.
    nominal = float(size[:-1]) * (1e3 if size.endswith("K") else 1e6)
    sensor = pyfai_mask(family, size)
    assert abs(sensor.sum() / nominal - 1) < 0.15, sensor.sum()
    assert sensor.sum() == count * det.module_px[0] * det.module_px[1]


@pytest.mark.parametrize("family, size", PRESETS)
def test_a_crop_around_the_detector_is_the_vendors_mask(family, size):
    """Pattern pixel (r, c) is detector pixel (beam + (r, c) − N//2): a pattern larger than
    the detector, beam at its middle, shows the whole vendor mask, off-detector pixels masked."""
    ext = PYFAI_MAX_SHAPE[family, size]
    n = max(ext) + 3
    beam = (ext[0] // 2, ext[1] // 2)
    det = dataclasses.replace(make(family, size), beam_px=beam)
    want = np.zeros((n, n), bool)
    r0, c0 = n // 2 - beam[0], n // 2 - beam[1]
    want[r0 : r0 + ext[0], c0 : c0 + ext[1]] = pyfai_mask(family, size)
    got = det.mask(n)
    assert np.array_equal(got, want)
    assert np.array_equal(det.pixel_map(n) == 2, ~want)  # gaps and off-detector: code GAP


@pytest.mark.parametrize("family, size", [("eiger2", "4M"), ("eiger", "9M"), ("pilatus", "6M")])
def test_default_beam_and_gap_placement_in_small_crops(family, size):
    det = make(family, size)
    sensor = pyfai_mask(family, size)
    beam = det.beam
    # The default beam is the centre pixel of a module nearest the detector's centre.
    m, g = det.module_px, det.gap_px
    for k in range(2):
        i, within = divmod(beam[k], m[k] + g[k])
        assert within == m[k] // 2
        centres = np.arange(det.n_modules[k]) * (m[k] + g[k]) + m[k] // 2
        assert (
            abs(centres[i] - (det.extent_px[k] - 1) / 2)
            == np.abs(centres - (det.extent_px[k] - 1) / 2).min()
        )
    # A crop no larger than a module has no gap; two pixels more meets one.
    small = min(m)
    assert det.mask(small).all()
    assert not det.mask(small + 2).all()
    # Arbitrary beams, including in a gap and at a corner, against the vendor mask.
    pad = 80
    padded = np.pad(sensor, pad)
    for b in [(m[0] + g[0] // 2, 40), (0, 0), (m[0] - 3, m[1] - 5), (m[0] + g[0], m[1] + g[1])]:
        d = dataclasses.replace(det, beam_px=b)
        n = 2 * pad - 2
        want = padded[b[0] + pad - n // 2 :, b[1] + pad - n // 2 :][:n, :n]
        assert np.array_equal(d.mask(n), want), b
    in_gap = dataclasses.replace(det, beam_px=(m[0] + g[0] // 2, m[1] // 2)).mask(64)
    assert not in_gap[32].any() and in_gap[0].all()  # the beam's row is a gap row


# --------------------------------------------------------------------------- helpers


def probe(n: int) -> np.ndarray:
    yy, xx = (np.mgrid[:n, :n] - n / 2) / (n / 5)
    p = np.exp(-(xx**2 + yy**2) / 2) * np.exp(0.4j * xx)
    return (p / np.sqrt((np.abs(p) ** 2).sum())).astype(np.complex64)


def acquire(m: int, det, *, scale: float, seed: int = 1, n: int = 16):
    """``m`` patterns at one position: the same λ for every pattern."""
    yy, xx = np.mgrid[:40, :40]
    obj = (1 + 0.5 * np.sin(xx / 3.0) * np.cos(yy / 5.0)).astype(np.complex64)
    pos = np.full((m, 2), 20.0)
    return K.acquire(obj, pos, probe(n), scale=scale, detector=det, seed=seed).readings


def lam(scale: float, n: int = 16) -> np.ndarray:
    return acquire(1, {"poisson": False, "dtype": "float64"}, scale=scale, n=n)[0]


def z_ok(z: np.ndarray, what: str) -> None:
    k = z.size
    assert np.abs(z).max() < 5.5, (what, np.abs(z).max())
    assert abs((z**2).sum() - k) < 5 * np.sqrt(2 * k), (what, (z**2).sum(), k)


# --------------------------------------------------------------------------- counting


@pytest.mark.parametrize("det", [Detector.eiger("500K"), Detector.pilatus("100K")])
def test_photon_counting_presets_read_the_counts_exactly(det):
    """No read noise, no dark current, gain 1: the readings are the Poisson counts, integers."""
    assert (det.read_noise, det.dark, det.gain, det.offset) == (0.0, 0.0, 1.0, 0.0)
    counts = acquire(50, Detector.ideal(), scale=30.0, seed=9)
    got = acquire(50, det, scale=30.0, seed=9)
    assert got.dtype == np.uint32
    assert np.array_equal(got.astype(np.float64), counts.astype(np.float64))


def test_pilatus_counter_saturates_at_20_bits():
    det = Detector.pilatus("100K")
    assert det.full_well == 2**20 - 1 == 1_048_575
    counts = acquire(4, {"dtype": "float64"}, scale=3e4, seed=2)
    assert counts.max() > 2**20  # the brightest pixels exceed the counter
    got = acquire(4, det, scale=3e4, seed=2)
    assert np.array_equal(got.astype(np.float64), np.minimum(counts, 2**20 - 1))


def test_eiger_docstring_states_each_generations_counter_depth():
    """EIGER ASIC: 12-bit counter; EIGER2 ASIC: 16-bit counters (user manual §3.2.5: '8 bits
    of every counter instead of the full 16 bits'); both summed to 32-bit images."""
    doc = " ".join(Detector.eiger.__doc__.split())
    assert "12-bit" in doc and "16-bit" in doc
    assert "32 bits" in doc


def test_eiger2_8_bit_mode_rolls_over_above_255_counts():
    counts = acquire(4, {"dtype": "float64"}, scale=300.0, seed=3)
    got = acquire(4, Detector.eiger("500K", dtype="uint8", overflow="wrap"), scale=300.0, seed=3)
    assert counts.max() > 2 * 256, "the test needs counts that roll over more than once"
    assert got.dtype == np.uint8
    assert np.array_equal(got.astype(np.float64), np.mod(counts, 256))
    held = acquire(4, Detector.eiger("500K", dtype="uint8"), scale=300.0, seed=3)
    assert np.array_equal(held.astype(np.float64), np.minimum(counts, 255))


def non_paralyzable_counts(rate: float, tau: float, t: float, rng) -> int:
    """Events of a Poisson process of ``rate`` over ``[0, t)`` counted by a counter that is
    dead for ``tau`` after each count (and not re-triggered while dead)."""
    arrivals = np.cumsum(rng.exponential(1 / rate, int(rate * t * 1.2 + 50)))
    arrivals = arrivals[arrivals < t]
    n, ready = 0, -np.inf
    for a in arrivals:
        if a >= ready:
            n += 1
            ready = a + tau
    return n


def test_dead_time_law_and_readings_follow_a_non_paralyzable_counter():
    rng = np.random.default_rng(0)
    tau, t = 1e-6, 2e-3
    for rate in (2e5, 1e6, 3e6):  # n·τ = 0.2, 1, 3
        m = np.mean([non_paralyzable_counts(rate, tau, t, rng) for _ in range(20)])
        want = rate * t / (1 + rate * tau)
        assert abs(m / want - 1) < 0.02, (rate, m, want)
    # The detector: the counter sees the detected photons qe·λ (dead time after the QE).
    qe, scale = 0.5, 300.0
    lam0 = lam(scale)
    det = Detector(qe=qe, dead_time_s=tau, exposure_s=t, dtype="float64")
    mu = qe * lam0 / (1 + qe * lam0 * tau / t)
    assert (qe * lam0 * tau / t).max() > 0.5  # well into the non-linear regime
    r = acquire(3000, det, scale=scale, seed=5)
    live = mu * r.shape[0] > 100  # enough counts for the sample moments to be normal
    z_ok(((r.mean(axis=0) - mu) / np.sqrt(mu / r.shape[0]))[live], "dead-time mean")
    # As documented, the variance stays Poisson (= the mean).
    s2 = r.var(axis=0, ddof=1)
    z_ok(((s2 - mu) / np.sqrt(mu / r.shape[0] + 2 * mu**2 / (r.shape[0] - 1)))[live], "var")
    # Not the QE after the dead time: the two differ by far more than the noise.
    wrong = qe * lam0 / (1 + lam0 * tau / t)
    assert np.abs(r.mean(axis=0) - wrong).max() > 50 * np.sqrt(mu.max() / r.shape[0])


def test_docs_state_the_mean_with_dead_time_after_the_qe():
    doc = " ".join(detector_module.__doc__.split())
    assert "qe·λ/(1 + qe·λ·τ/T)" in doc


# --------------------------------------------------------------------------- integrating


def reading_moments(mu_counts, det: Detector, top: float):
    """Exact mean, variance and fourth central moment of one pixel's reading
    ``clip(round_half_even(min(gain·k + offset + rn·z, full_well)), 0, top)``,
    ``k ~ Poisson(mu_counts)``, ``z ~ N(0, 1)``."""
    g, o, s = det.gain, det.offset, det.read_noise
    fw = det.full_well if det.full_well is not None else top
    hi = min(fw, top)
    lo_k = max(0, int(mu_counts - 10 * np.sqrt(mu_counts) - 10))
    k = np.arange(lo_k, int(mu_counts + 10 * np.sqrt(mu_counts) + 12))
    pk = stats.poisson.pmf(k, mu_counts)
    centre = g * k + o
    j = np.floor(centre[:, None]) + np.arange(-int(17 * s) - 2, int(17 * s) + 3)[None, :]
    # P(round(v) = j) for a continuous v: the normal mass of [j − ½, j + ½).
    p = special.ndtr((j + 0.5 - centre[:, None]) / s) - special.ndtr(
        (j - 0.5 - centre[:, None]) / s
    )
    val = np.clip(j, 0, hi)
    ref = g * mu_counts + o
    w = p * pk[:, None]
    assert abs(w.sum() - 1) < 1e-9  # the windows hold all the mass
    m1 = ((val - ref) * w).sum()
    mean = ref + m1
    d = val - mean
    var = (d**2 * w).sum()
    mu4 = (d**4 * w).sum()
    return mean, var, mu4


@pytest.mark.parametrize("kind", ["preset", "offset0"])
def test_integrating_readings_have_their_exact_distribution(kind):
    qe = 0.9
    if kind == "preset":
        det = Detector.integrating(qe=qe)
        scale = 144.2  # the brightest pixel's mean is near the 65,000 ADU full well
    else:
        det = Detector.integrating(qe=qe, offset=0.0, dark=0.3, read_noise=2.0)
        scale = 30.0  # faint pixels read near 0 ADU: the clip below 0 matters
    lam0 = lam(scale, n=12)
    mu_counts = qe * lam0 + det.dark
    m = 4000
    r = acquire(m, det, scale=scale, seed=11, n=12).astype(np.float64)
    assert np.array_equal(r, np.round(r))
    mom = np.array([reading_moments(c, det, 65535.0) for c in mu_counts.ravel()])
    mean, var, mu4 = (mom[:, i].reshape(lam0.shape) for i in range(3))
    if kind == "preset":
        clipped = (r == 65000).mean(axis=0)
        assert 0.05 < clipped.max() < 0.95  # a pixel partly clipped: the clip shapes it
        assert r.max() == 65000
        assert (mean < det.gain * mu_counts + det.offset - 50).any()  # the clip moves the mean
    else:
        assert (r == 0).any()
    z_ok((r.mean(axis=0) - mean) / np.sqrt(var / m), f"{kind} mean")
    s2 = r.var(axis=0, ddof=1)
    z_ok((s2 - var) / np.sqrt((mu4 - var**2 * (m - 3) / (m - 1)) / m), f"{kind} variance")


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_quantisation_rounds_half_to_even(dtype):
    counts = acquire(20, {"dtype": "float64"}, scale=30.0, seed=4)
    got = acquire(20, Detector(gain=0.5, dtype=dtype), scale=30.0, seed=4)
    want = np.round(0.5 * counts)  # NumPy rounds half to even
    assert ((0.5 * counts) % 1 == 0.5).sum() > 100  # many exact halves
    assert np.array_equal(got.astype(np.float64), want)
    shifted = acquire(20, Detector(offset=0.5, dtype=dtype), scale=30.0, seed=4)
    assert np.array_equal(shifted.astype(np.float64), np.round(counts + 0.5))


def test_integrating_saturation_and_dtype_limits():
    det = Detector.integrating(poisson=False, read_noise=0.0, dark=0.0)
    l0 = lam(1.6e3)
    got = acquire(1, det, scale=1.6e3)[0].astype(np.float64)
    assert np.array_equal(got, np.minimum(np.round(10.0 * l0 + 100.0), 65000.0))
    assert (got == 65000).sum() > 0
    top = acquire(1, Detector.integrating(poisson=False, full_well=None), scale=1.6e3)[0]
    assert top.max() == 65535 and top.dtype == np.uint16
    with pytest.raises(ValueError, match="cannot hold full_well"):
        Detector.integrating(full_well=70000.0)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("n", [16, 17])
def test_beamstop_covers_the_lattice_points_strictly_inside_its_radius(n):
    for r in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 7.3):
        det = Detector(beamstop_radius_px=r)
        stop = (det.pixel_map(n) & 1) != 0
        # Gauss's circle problem, strict: lattice points (i, j) with i² + j² < r².
        k = int(np.ceil(r))
        inside = [
            (i, j) for i in range(-k, k + 1) for j in range(-k, k + 1) if i * i + j * j < r * r
        ]
        assert stop.sum() == len(inside), r
        for i, j in inside:
            assert stop[n // 2 + i, n // 2 + j]
    assert not ((Detector(beamstop_radius_px=5.0).pixel_map(16) & 1) != 0)[8 + 3, 8 + 4]
    assert ((Detector(beamstop_radius_px=1.0).pixel_map(16) & 1) != 0).sum() == 1  # [8, 8]


def test_bad_pixel_fractions_are_binomial_and_reproducible():
    f_dead, f_hot = 0.02, 0.01
    totals = np.zeros(2)
    pixels = 0
    for n in (32, 64, 100):
        for seed in range(10):
            det = Detector(
                dead_fraction=f_dead, hot_fraction=f_hot, bad_pixel_seed=seed, dtype="uint16"
            )
            codes = det.pixel_map(n)
            dead, hot = (codes & 4) != 0, (codes & 8) != 0
            assert not (dead & hot).any()
            for got, f in ((dead.sum(), f_dead), (hot.sum(), f_hot)):
                sd = np.sqrt(n * n * f * (1 - f))
                assert abs(got - n * n * f) < 5 * sd + 1, (n, seed, got)
            totals += dead.sum(), hot.sum()
            pixels += n * n
            again = Detector(
                dead_fraction=f_dead, hot_fraction=f_hot, bad_pixel_seed=seed, dtype="uint16"
            )
            assert np.array_equal(again.pixel_map(n), codes)
            # The documented draw: u = PCG64(seed).random((N, N)), per N.
            u = np.random.Generator(np.random.PCG64(seed)).random((n, n))
            assert np.array_equal(dead, u < f_dead)
    for got, f in zip(totals, (f_dead, f_hot), strict=True):
        assert abs(got - pixels * f) < 4 * np.sqrt(pixels * f * (1 - f))
    other = Detector(dead_fraction=f_dead, hot_fraction=f_hot, bad_pixel_seed=1, dtype="uint16")
    assert not np.array_equal(
        other.pixel_map(64),
        Detector(
            dead_fraction=f_dead, hot_fraction=f_hot, bad_pixel_seed=2, dtype="uint16"
        ).pixel_map(64),
    )


# --------------------------------------------------------------------------- the table


def test_the_docstring_table_lists_every_field_with_units():
    """The module docstring's table (the docs' "What each parameter models") names every
    field of ``Detector`` in its first column, and each row gives its units (or "–")."""
    lines = detector_module.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=" * 26 + "  ")]
    assert len(rules) == 3, rules  # top, under the header, bottom
    body = lines[rules[1] + 1 : rules[2]]
    names: set[str] = set()
    runs: list[list[str]] = []  # consecutive lines naming parameters: one row
    for k, line in enumerate(body):
        names |= set(re.findall(r"``(\w+)``", line[:28]))
        if line[:28].strip():
            if k == 0 or not body[k - 1][:28].strip():
                runs.append([])
            runs[-1].append(line)
    for run in runs:  # each row gives its units (or "–")
        assert any(line[80:].strip() for line in run), run
    fields = {f.name for f in dataclasses.fields(Detector)}
    assert fields <= names, sorted(fields - names)
    assert names <= fields, sorted(names - fields)

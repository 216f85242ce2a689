"""Exact Poisson observation: ``observe_amplitudes`` and ``poisson_counts``, both noise
streams (``version="v1"``, the original bits, and ``"v2"``, the faster keyed stream).

Statistical tests use fixed seeds and a p-value threshold of 1e-4, so they are deterministic:
they pass or fail the same way on every run, and a correct sampler fails one of them with
probability ~1e-4 per seed choice, not per run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from ptyfast import _kernels
from ptyfast._kernels import observe_amplitudes, poisson_counts

P_MIN = 1e-4
N_SAMPLES = 200_000
VERSIONS = ["v1", "v2"]

# Regime boundaries of the sampler (faint < 1/8 <= tables < 32 <= PTRS) and table grid points.
SWITCH_RATES = [
    np.nextafter(0.125, 0.0),
    0.125,
    np.nextafter(0.125, 1.0),
    0.875,
    1.0,
    np.nextafter(1.0, 0.0),
    7.875,
    np.nextafter(32.0, 0.0),
    32.0,
    np.nextafter(32.0, 64.0),
    32.5,
]


def poisson_gof(counts: np.ndarray, lam: float) -> float:
    """Chi-square p-value of integer ``counts`` against Poisson(``lam``).

    Bins are single counts, merged from both tails inwards until every bin expects >= 5.
    """
    n = counts.size
    lo = int(stats.poisson.ppf(1e-12, lam))
    hi = int(stats.poisson.isf(1e-12, lam)) + 1
    ks = np.arange(lo, hi + 1)
    probs = stats.poisson.pmf(ks, lam)
    probs[0] = stats.poisson.cdf(lo, lam)
    probs[-1] = stats.poisson.sf(hi - 1, lam)
    observed = np.bincount(np.clip(counts.astype(np.int64), lo, hi) - lo, minlength=ks.size)
    edges = _merge_bins(probs * n)
    obs = np.add.reduceat(observed, edges)
    exp = np.add.reduceat(probs * n, edges)
    if obs.size < 2:
        return 1.0
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def _merge_bins(expected: np.ndarray) -> np.ndarray:
    """Start indices of bins of consecutive cells, each expecting >= 5."""
    starts, acc = [0], 0.0
    for i, e in enumerate(expected):
        acc += e
        if acc >= 5 and i + 1 < expected.size:
            starts.append(i + 1)
            acc = 0.0
    if acc < 5 and len(starts) > 1:  # last bin too small: join it to the previous one
        starts.pop()
    return np.asarray(starts)


def binned_gof(counts: np.ndarray, lam: float, n_bins: int = 40) -> float:
    """Chi-square p-value for large ``lam``: bins of the standardized count
    ``(k - lam) / sqrt(lam)``, with exact Poisson probabilities per bin (not a normal law)."""
    s = np.sqrt(lam)
    z_edges = np.linspace(-4.5, 4.5, n_bins + 1)
    k_edges = np.floor(lam + z_edges * s)  # bin j holds k_edges[j] < k <= k_edges[j+1]
    cdf = stats.poisson.cdf(k_edges, lam)
    probs = np.concatenate([[cdf[0]], np.diff(cdf), [stats.poisson.sf(k_edges[-1], lam)]])
    observed = np.bincount(np.searchsorted(k_edges, counts, side="left"), minlength=probs.size)
    expected = probs * counts.size
    edges = _merge_bins(expected)
    obs = np.add.reduceat(observed, edges)
    exp = np.add.reduceat(expected, edges)
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


# --------------------------------------------------------------------------- basic properties


def test_zero_rate_gives_exactly_zero():
    assert not poisson_counts(np.zeros(1000), seed=1).any()
    out = observe_amplitudes(np.zeros((3, 8, 8), np.float32), seed=1)
    assert out.dtype == np.float32 and out.shape == (3, 8, 8)
    assert out.tobytes() == np.zeros((3, 8, 8), np.float32).tobytes()
    # Negative zero is a zero amplitude too, and comes out as +0.
    out = observe_amplitudes(np.full((1, 4, 4), -0.0, np.float32), seed=1)
    assert out.tobytes() == np.zeros((1, 4, 4), np.float32).tobytes()


@pytest.mark.parametrize("lam", [1e-3, 0.3, 3.0, 31.9, 32.0, 1e3, 1e6, 1e9, 1e13])
def test_counts_are_non_negative_integers(lam):
    k = poisson_counts(np.full(20_000, lam), seed=2)
    assert k.dtype == np.float64
    assert (k >= 0).all()
    assert (k == np.floor(k)).all()


@pytest.mark.parametrize("version", VERSIONS)
def test_counts_of_half_integer_rates_past_2_51_are_integers(version):
    # Doubles in [2**51, 2**52) are spaced by 1/2; such a rate once gave a half-integer count.
    lam = np.array([2.0**51 + 0.5, 1.5 * 2.0**51 + 0.5, 2.0**52 - 0.5] * 100)
    k = poisson_counts(lam, seed=4, version=version)
    assert (k == np.floor(k)).all()
    assert (np.abs(k - lam) < 40 * np.sqrt(lam)).all()


def test_squared_amplitudes_are_integers():
    rng = np.random.default_rng(0)
    a = np.sqrt(rng.uniform(0, 3e4, size=(20, 32, 32))).astype(np.float32)
    out = observe_amplitudes(a, seed=3).astype(np.float64)
    k = out**2
    # sqrt(k) is rounded to float32 once: k is recovered to within float32 precision.
    assert np.all(np.abs(k - np.round(k)) <= 4 * np.finfo(np.float32).eps * np.maximum(k, 1))
    assert (out >= 0).all()


def test_output_dtype_shape_and_input_untouched():
    a = np.sqrt(np.linspace(0, 50, 2 * 9 * 7, dtype=np.float32)).reshape(2, 9, 7)
    before = a.copy()
    out = observe_amplitudes(a, seed=4)
    assert out.dtype == np.float32 and out.shape == a.shape
    assert out is not a and not np.shares_memory(out, a)
    np.testing.assert_array_equal(a, before)
    r = np.linspace(0, 100, 50)
    r_before = r.copy()
    poisson_counts(r, seed=4)
    np.testing.assert_array_equal(r, r_before)


def test_coerced_and_strided_inputs_match_contiguous_float32():
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 40, size=(4, 16, 16))  # float64
    a32 = a.astype(np.float32)
    ref = observe_amplitudes(a32, seed=6)
    np.testing.assert_array_equal(observe_amplitudes(a, seed=6), ref)
    big = np.zeros((4, 16, 32), np.float32)
    big[:, :, ::2] = a32
    np.testing.assert_array_equal(observe_amplitudes(big[:, :, ::2], seed=6), ref)
    np.testing.assert_array_equal(observe_amplitudes(a32.tolist(), seed=6), ref)


# --------------------------------------------------------------------------- distribution


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [0.0, 1e-3, 1.0, 10.0, 1e3, 1e6, 1e9, 1e12, 1e15])
def test_mean_and_variance(lam, version):
    k = poisson_counts(np.full(N_SAMPLES, lam), seed=10, version=version)
    if lam == 0:
        assert not k.any()
        return
    n = k.size
    se_mean = np.sqrt(lam / n)
    se_var = np.sqrt((lam + 2 * lam**2) / n)
    assert abs(k.mean() - lam) < 5 * se_mean
    assert abs(k.var(ddof=1) - lam) < 5 * se_var


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [1e-3, 0.05, 1.0, 10.0, 1e3])
def test_goodness_of_fit(lam, version):
    k = poisson_counts(np.full(N_SAMPLES, lam), seed=11, version=version)
    assert poisson_gof(k, lam) > P_MIN


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [1e6, 1e9, 1e12])
def test_goodness_of_fit_large_rates(lam, version):
    k = poisson_counts(np.full(N_SAMPLES, lam), seed=12, version=version)
    assert binned_gof(k, lam) > P_MIN


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", SWITCH_RATES)
def test_exact_near_algorithm_switches(lam, version):
    k = poisson_counts(np.full(N_SAMPLES, lam), seed=13, version=version)
    assert poisson_gof(k, lam) > P_MIN
    assert abs(k.mean() - lam) < 5 * np.sqrt(lam / k.size)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [0.25 - 2.0**-40, 3.1249, 17.0 + 0.124, 31.875 + 0.0625])
def test_tabled_rates_with_large_faint_part(lam, version):
    # A tabled rate m/8 + r takes its faint part r (here up to 1/8) with a second uniform;
    # counts of 1 in that part are decided by polynomial bounds in the dense pass, the rest by
    # the exact search: the sum must still follow the exact law, on both entry points.
    k = poisson_counts(np.full(N_SAMPLES, lam), seed=17, version=version)
    assert poisson_gof(k, lam) > P_MIN
    a = np.full((N_SAMPLES // 4096, 64, 64), np.sqrt(lam), np.float32)
    rate = float(np.float64(a.flat[0]) ** 2)
    ka = np.round(observe_amplitudes(a, seed=18, version=version).astype(np.float64) ** 2)
    assert poisson_gof(ka.ravel(), rate) > P_MIN


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [1e-6, 1e-4])
def test_tiny_rates(lam, version):
    # Nonzero counts are rare events: their number is Poisson(n·λ·(1 + O(λ))); 2 of them
    # would show a bias in the polynomial bound that decides k = 0.
    n = 2_000_000
    k = poisson_counts(np.full(n, lam), seed=16, version=version)
    expect = n * lam
    assert abs(np.count_nonzero(k) - expect) < 5 * np.sqrt(expect) + 1
    assert (k <= 3).all()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lam", [0.01, 0.7, 20.0, 40.0, 5e4, 3e8])
def test_amplitude_path_goodness_of_fit(lam, version):
    # observe_amplitudes uses the amplitude as the exact sqrt of the rate: check that path.
    a = np.full((N_SAMPLES // 4096, 64, 64), np.sqrt(lam), np.float32)
    rate = float(np.float64(a.flat[0]) ** 2)
    k = np.round(observe_amplitudes(a, seed=14, version=version).astype(np.float64).ravel() ** 2)
    p = binned_gof(k, rate) if rate > 1e4 else poisson_gof(k, rate)
    assert p > P_MIN


@pytest.mark.parametrize("version", VERSIONS)
def test_mixed_rates_in_one_pattern(version):
    # Every regime interleaved within each pattern: per-rate-class fits must still hold.
    rates = np.array([0.0, 0.02, 0.4, 2.5, 17.0, 33.0, 900.0, 2e5])
    m = 400
    a = np.tile(np.sqrt(rates).astype(np.float32), (m, 8, 1)).reshape(m, 8, 8)
    rate = np.float64(a[0, 0]) ** 2
    k = np.round(observe_amplitudes(a, seed=15, version=version).astype(np.float64) ** 2)
    assert not k[:, :, 0].any()
    for j in range(1, rates.size):
        kj = k[:, :, j].ravel()
        p = binned_gof(kj, rate[j], 20) if rate[j] > 1e4 else poisson_gof(kj, rate[j])
        assert p > P_MIN, (rates[j], p)


# --------------------------------------------------------------------------- determinism


def _pattern_stack(m: int = 40, n: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10 ** rng.uniform(-3, 4, size=(m, n, n))).astype(np.float32)


def test_same_seed_same_result_different_seed_different():
    a = _pattern_stack()
    x = observe_amplitudes(a, seed=21)
    assert observe_amplitudes(a, seed=21).tobytes() == x.tobytes()
    assert observe_amplitudes(a, seed=22).tobytes() != x.tobytes()
    r = np.full(1000, 5.0)
    assert (poisson_counts(r, seed=1) == poisson_counts(r, seed=1)).all()
    assert (poisson_counts(r, seed=1) != poisson_counts(r, seed=2)).any()
    assert (poisson_counts(r, seed=1, stream=0) != poisson_counts(r, seed=1, stream=1)).any()


@pytest.mark.parametrize("version", VERSIONS)
def test_patterns_have_independent_streams(version):
    a = np.full((2, 16, 16), 3.0, np.float32)
    out = observe_amplitudes(a, seed=23, version=version)
    assert out[0].tobytes() != out[1].tobytes()


@pytest.mark.parametrize("version", VERSIONS)
def test_chunking_does_not_change_results(version):
    a = _pattern_stack(m=37)
    kw = {"seed": 24, "version": version}
    whole = observe_amplitudes(a, first_index=5, **kw)
    parts = [
        observe_amplitudes(a[:10], first_index=5, **kw),
        observe_amplitudes(a[10:11], first_index=15, **kw),
        observe_amplitudes(a[11:], first_index=16, **kw),
    ]
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    # first_index shifts the streams: pattern j of a call is stream first_index + j.
    assert observe_amplitudes(a[1:], first_index=6, **kw).tobytes() == whole[1:].tobytes()


def test_versions_differ_and_default_is_v1():
    a = _pattern_stack(m=4)
    v1 = observe_amplitudes(a, seed=25)
    assert observe_amplitudes(a, seed=25, version="v1").tobytes() == v1.tobytes()
    v2 = observe_amplitudes(a, seed=25, version="v2")
    assert v2.tobytes() != v1.tobytes()
    assert observe_amplitudes(a, seed=25, version="v2").tobytes() == v2.tobytes()
    r = np.full(5000, 12.5)
    assert (poisson_counts(r, seed=1) == poisson_counts(r, seed=1, version="v1")).all()
    assert (poisson_counts(r, seed=1, version="v2") != poisson_counts(r, seed=1)).any()


def test_v1_bits_are_pinned():
    # Digests of the original v1 sampler (commit 1e135b1) on a fixed input: the stream v1
    # gives these bits for these seeds forever (README, "Noise streams").
    rng = np.random.default_rng(0)
    a = (10 ** rng.uniform(-4, 5, size=(40, 64, 64))).astype(np.float32)
    a[:, ::7, ::5] = 0
    out = observe_amplitudes(a, seed=2024, first_index=3)
    assert hashlib.sha256(out.tobytes()).hexdigest() == (
        "70081671d2e97812a0a7ae88a1dc5def674e562f074588da4d36697580a59749"
    )
    r = np.concatenate([np.zeros(5), 10 ** np.linspace(-6, 10, 5000), np.full(300, 7.3)])
    r = np.concatenate([r, np.full(300, 1e9)])
    k = poisson_counts(r, seed=7, stream=11)
    assert hashlib.sha256(k.tobytes()).hexdigest() == (
        "5e57d71d70000f37ae62a4d12dcd88abbb71edbb12600c66b0e769ceb364c2c8"
    )


def test_generator_seed_is_reproducible():
    a = _pattern_stack(m=3)
    x = observe_amplitudes(a, seed=np.random.default_rng(7))
    y = observe_amplitudes(a, seed=np.random.default_rng(7))
    assert x.tobytes() == y.tobytes()


_DIGESTS = """
import hashlib
import numpy as np
from ptyfast import _kernels


def digests():
    rng = np.random.default_rng(0)
    a = (10 ** rng.uniform(-3, 6, size=(300, 64, 64))).astype(np.float32)
    r = (10 ** rng.uniform(-7, 13, size=9000)) * (rng.uniform(size=9000) > 0.1)
    out = []
    for v in ("v1", "v2"):
        h = hashlib.sha256(_kernels.observe_amplitudes(a, seed=99, version=v).tobytes())
        h.update(_kernels.poisson_counts(r, seed=98, stream=3, version=v).tobytes())
        out.append(h.hexdigest())
    return out
"""
_CHILD = _DIGESTS + "print(*digests(), _kernels.num_threads(), _kernels.simd_level())\n"


def _digests_in_subprocess(**env_vars: str | None) -> tuple[list[str], int, str]:
    env = dict(os.environ)
    for key, value in env_vars.items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[:2], int(out[2]), out[3]


def test_thread_count_does_not_change_results():
    one, n1, _ = _digests_in_subprocess(RAYON_NUM_THREADS="1")
    four, n4, _ = _digests_in_subprocess(RAYON_NUM_THREADS="4")
    default, _, _ = _digests_in_subprocess(RAYON_NUM_THREADS=None)
    assert (n1, n4) == (1, 4)
    assert one == four == default
    namespace: dict = {}
    exec(_DIGESTS, namespace)  # the same computation in this process
    assert namespace["digests"]() == one
    assert one[0] != one[1]


def test_instruction_set_levels_give_identical_noise():
    """Both streams give the same bits at every SIMD level the machine has (PTYFAST_SIMD)."""
    seen = {}
    for cap in ("baseline", "avx2", "avx512"):
        digests, _, level = _digests_in_subprocess(PTYFAST_SIMD=cap, RAYON_NUM_THREADS="2")
        seen[level] = tuple(digests)
    assert "baseline" in seen
    assert len(set(seen.values())) == 1, seen


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (np.full((1, 2, 2), -1.0, np.float32), ValueError),
        (np.full((1, 2, 2), np.nan, np.float32), ValueError),
        (np.full((1, 2, 2), np.inf, np.float32), ValueError),
        (np.ones((2, 2), np.float32), ValueError),
        (np.ones((1, 2, 2, 1), np.float32), ValueError),
        (np.ones((0, 2, 2), np.float32), ValueError),
        (np.ones((1, 2, 2), np.complex64), TypeError),
        (np.array([[["a"]]]), TypeError),
        (None, TypeError),
    ],
)
def test_observe_amplitudes_rejects_bad_input(bad, exc):
    with pytest.raises(exc, match="amplitudes"):
        observe_amplitudes(bad, seed=0)


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (np.array([1.0, -0.5]), ValueError),
        (np.array([np.nan]), ValueError),
        (np.array([np.inf]), ValueError),
        (np.ones((2, 2)), ValueError),
        (np.array([1 + 1j]), TypeError),
    ],
)
def test_poisson_counts_rejects_bad_input(bad, exc):
    with pytest.raises(exc, match="rates"):
        poisson_counts(bad, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"seed": 0, "first_index": -1}, ValueError, "first_index"),
        ({"seed": 0, "first_index": 1.0}, TypeError, "first_index"),
    ],
)
def test_bad_seed_and_index(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        observe_amplitudes(np.ones((1, 2, 2), np.float32), **kwargs)


@pytest.mark.parametrize(
    ("version", "exc"), [("v3", ValueError), ("V2", ValueError), ("", ValueError), (2, TypeError)]
)
def test_bad_version(version, exc):
    with pytest.raises(exc, match="version"):
        observe_amplitudes(np.ones((1, 2, 2), np.float32), seed=0, version=version)
    with pytest.raises(exc, match="version"):
        poisson_counts(np.ones(3), seed=0, version=version)


def test_errors_leave_input_untouched():
    a = np.ones((2, 3, 3), np.float32)
    a[1, 2, 2] = -1.0
    before = a.copy()
    with pytest.raises(ValueError):
        observe_amplitudes(a, seed=0)
    np.testing.assert_array_equal(a, before)


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9),
        elements=st.floats(0, 1e5, width=32),
    ),
    st.integers(0, 2**64 - 1),
    st.sampled_from(VERSIONS),
)
def test_observe_properties(a, seed, version):
    out = observe_amplitudes(a, seed=seed, version=version)
    assert out.shape == a.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()
    assert (out[a == 0] == 0).all()
    k = out.astype(np.float64) ** 2
    assert np.all(np.abs(k - np.round(k)) <= 4 * np.finfo(np.float32).eps * np.maximum(k, 1))
    assert observe_amplitudes(a, seed=seed, version=version).tobytes() == out.tobytes()


def test_num_threads_positive():
    assert _kernels.num_threads() >= 1

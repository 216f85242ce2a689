"""The core's replay of NumPy's legacy ``RandomState`` is bit-exact.

The reference grouping draws from ``np.random`` after ``np.random.seed(seed)``; every primitive
it uses is compared here against ``numpy.random.RandomState`` itself.
"""

import numpy as np
import pytest

from ptyfast import _kernels

SEEDS = [0, 1, 2, 7, 42, 12345, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]
SEEDS += [int(s) for s in np.random.default_rng(2024).integers(0, 2**32, size=20)]
SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000]


@pytest.mark.parametrize("seed", SEEDS)
def test_raw_stream(seed):
    want = np.random.RandomState(seed)._bit_generator.random_raw(2000).astype(np.uint32)
    np.testing.assert_array_equal(_kernels.legacy_raw(seed, 2000), want)


@pytest.mark.parametrize("seed", SEEDS)
def test_permutation(seed):
    for n in SIZES:
        got = _kernels.legacy_permutation(seed, n)
        want = np.random.RandomState(seed).permutation(n)
        np.testing.assert_array_equal(got, want, err_msg=f"seed={seed} n={n}")
        assert got.dtype == np.int64


@pytest.mark.parametrize("seed", SEEDS)
def test_choice_without_replacement(seed):
    for n in SIZES[1:]:
        for size in sorted({0, 1, n // 3, n - 1, n}):
            got = _kernels.legacy_choice(seed, n, size, replace=False)
            want = np.random.RandomState(seed).choice(n, size, replace=False)
            np.testing.assert_array_equal(got, want, err_msg=f"seed={seed} n={n} size={size}")
            # An array population draws the same indices.
            pop = np.arange(n) * 3 + 1
            np.testing.assert_array_equal(
                pop[got], np.random.RandomState(seed).choice(pop, size, replace=False)
            )


@pytest.mark.parametrize("seed", SEEDS)
def test_choice_with_replacement(seed):
    for n in SIZES[1:]:
        for size in [0, 1, 5, 2 * n + 3]:
            got = _kernels.legacy_choice(seed, n, size, replace=True)
            want = np.random.RandomState(seed).choice(n, size, replace=True)
            np.testing.assert_array_equal(got, want, err_msg=f"seed={seed} n={n} size={size}")


@pytest.mark.parametrize("seed", SEEDS)
def test_uniform(seed):
    for size in [0, 1, 2, 1000]:
        got = _kernels.legacy_uniform(seed, size)
        want = np.random.RandomState(seed).random_sample(size)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


def test_global_seed_equivalence():
    # np.random.seed(s) + np.random.choice(...) is what the reference calls.
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(99)  # noqa: NPY002
        want = np.random.choice(np.arange(50), size=10, replace=False)  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_array_equal(_kernels.legacy_choice(99, 50, 10, replace=False), want)


def test_large_population_choice():
    got = _kernels.legacy_choice(3, 100_000, 1000, replace=False)
    want = np.random.RandomState(3).choice(100_000, 1000, replace=False)
    np.testing.assert_array_equal(got, want)
    got = _kernels.legacy_choice(3, 2**20 + 1, 1000, replace=True)
    want = np.random.RandomState(3).choice(2**20 + 1, 1000, replace=True)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: _kernels.legacy_permutation(-1, 3), ValueError),
        (lambda: _kernels.legacy_permutation(2**32, 3), ValueError),
        (lambda: _kernels.legacy_permutation(1.5, 3), TypeError),
        (lambda: _kernels.legacy_permutation(0, -1), ValueError),
        (lambda: _kernels.legacy_choice(0, 3, 4, replace=False), ValueError),
        (lambda: _kernels.legacy_choice(0, 0, 1), ValueError),
        (lambda: _kernels.legacy_uniform(0, -2), ValueError),
    ],
)
def test_errors(call, exc):
    with pytest.raises(exc):
        call()

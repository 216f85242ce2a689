"""Default probe (bit-for-bit re-derivation) and the set_probe normalisation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal.windows import gaussian

from ptyfast import params
from ptyfast import probe as pr


@pytest.fixture(autouse=True)
def _fresh_params():
    params.reset()
    yield
    params.reset()


def reference_default_probe(N: int, scale: float = 0.7) -> np.ndarray:
    """The reference's default-probe recipe, written out independently."""
    w = gaussian(N, std=N / (scale * np.pi**2), sym=True)
    w = w / w.max()
    mask = np.outer(w, w) > 0.5
    return gaussian_filter(mask.astype(np.float64), sigma=1, mode="reflect", truncate=4.0) + 1e-9


def formula_mask(N: int, scale: float = 0.7) -> np.ndarray:
    """Mask from the closed-form window exp(-0.5 ((n - (N-1)/2) / std)^2)."""
    std = N / (scale * np.pi**2)
    n = np.arange(N)
    w = np.exp(-0.5 * ((n - (N - 1) / 2) / std) ** 2)
    w = w / w.max()
    return np.outer(w, w) > 0.5


@pytest.mark.parametrize("N", [64, 128, 63, 65, 33, 17, 256, 2, 1])
def test_default_probe_bit_for_bit(N):
    p = pr.get_default_probe(N, fmt="np")
    ref = reference_default_probe(N)
    assert p.shape == (N, N) and p.dtype == np.float64
    assert np.array_equal(p, ref)


def test_default_fmt_is_np():
    assert isinstance(pr.get_default_probe(64), np.ndarray)


@pytest.mark.parametrize(("N", "count"), [(64, 376), (128, 1500)])
def test_mask_pixel_counts(N, count):
    w = pr.get_lowpass_filter(0.7, N)
    assert int((np.outer(w, w) > 0.5).sum()) == count
    assert int(formula_mask(N).sum()) == count
    std = N / (0.7 * np.pi**2)
    closed_form = np.exp(-0.5 * ((np.arange(N) - (N - 1) / 2) / std) ** 2)
    np.testing.assert_allclose(w, closed_form / closed_form.max(), rtol=1e-12)


def test_window_std_and_even_centre():
    w = pr.get_lowpass_filter(0.7, 64)
    assert w[31] == w[32] == 1.0
    assert 64 / (0.7 * np.pi**2) == pytest.approx(9.263, abs=1e-3)


def test_probe_properties():
    p = pr.get_default_probe(64)
    assert np.all(p >= 1e-9)
    assert p.max() <= 1 + 1e-9
    assert p.max() > 0.99
    np.testing.assert_allclose(p, p.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p, p[::-1, ::-1], rtol=0, atol=1e-15)
    assert p.min() == pytest.approx(1e-9, abs=1e-15)


def test_scale_argument_and_params_default():
    assert np.array_equal(pr.get_default_probe(64, scale=0.7), pr.get_default_probe(64))
    a = pr.get_default_probe(64, scale=0.5)
    assert np.array_equal(a, reference_default_probe(64, 0.5))
    assert not np.array_equal(a, pr.get_default_probe(64))
    with params.override(default_probe_scale=0.5):
        assert np.array_equal(pr.get_default_probe(64), a)
    assert np.array_equal(pr.get_default_probe(64), reference_default_probe(64))


@pytest.mark.parametrize("fmt", ["numpy", "TF", None, "", "torch"])
def test_bad_fmt(fmt):
    with pytest.raises(ValueError, match="fmt"):
        pr.get_default_probe(64, fmt=fmt)


@pytest.mark.parametrize("N", [0, -1])
def test_bad_N(N):
    with pytest.raises(ValueError, match="N"):
        pr.get_default_probe(N)


@pytest.mark.parametrize("N", [64.0, True, None, "64"])
def test_bad_N_type(N):
    # A wrong type is a TypeError (it was a ValueError before).
    with pytest.raises(TypeError, match="N"):
        pr.get_default_probe(N)


@pytest.mark.parametrize("scale", [0, -0.7, np.nan, np.inf, 10**400])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        pr.get_default_probe(64, scale=scale)


@pytest.mark.parametrize("scale", ["0.7", True])
def test_bad_scale_type(scale):
    with pytest.raises(TypeError, match="scale"):
        pr.get_default_probe(64, scale=scale)


def test_module_import_does_not_import_tensorflow():
    code = "import sys, ptyfast.probe, ptyfast.datagen; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_tf_format_without_tensorflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match="fmt='np'"):
        pr.get_default_probe(64, fmt="tf")


@pytest.mark.tf
@pytest.mark.parametrize("N", [64, 128])
def test_tf_format(N):
    tf = pytest.importorskip("tensorflow")
    t = pr.get_default_probe(N, fmt="tf")
    assert isinstance(t, tf.Tensor)
    assert t.dtype == tf.complex64 and tuple(t.shape) == (N, N, 1)
    a = t.numpy()
    assert np.array_equal(a[..., 0].real, reference_default_probe(N).astype(np.float32))
    assert np.all(a.imag == 0)


# --------------------------------------------------------------------------- normalisation


def distance_mask(N: int) -> np.ndarray:
    c = np.arange(N) - N // 2 + 0.5
    return np.hypot(c[None, :], c[:, None]) < N // 4


@pytest.mark.parametrize("N", [64, 128, 31])
def test_probe_mask_real(N):
    m = pr.get_probe_mask_real(N)
    assert m.shape == (N, N, 1) and m.dtype == bool
    assert np.array_equal(m[..., 0], distance_mask(N))
    d = pr.get_squared_distance(N)
    assert d[N // 2, N // 2] == pytest.approx(np.sqrt(0.5))


@pytest.mark.parametrize("dtype", [np.complex64, np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("shape_kind", ["2d", "3d", "4d"])
def test_normalize_probe_formula(dtype, shape_kind):
    N = 64
    rng = np.random.default_rng(0)
    base = pr.get_default_probe(N)
    if np.issubdtype(dtype, np.complexfloating):
        base = base * np.exp(1j * rng.uniform(-1, 1, (N, N)))
    base = base.astype(dtype)
    arr = {"2d": base, "3d": base[..., None], "4d": base[..., None, None]}[shape_kind]
    out = pr.normalize_probe(arr, probe_scale=4.0)
    expected_shape = (N, N) if shape_kind == "2d" else (N, N, 1)
    assert out.shape == expected_shape and out.dtype == dtype
    norm = 4.0 * np.mean(np.abs(distance_mask(N) * base.astype(np.complex128)))
    single = dtype in (np.float32, np.complex64)
    np.testing.assert_allclose(out.reshape(N, N), base / norm, rtol=2e-6 if single else 1e-12)
    # The normalised probe has probe_scale * mean|mask * probe| == 1.
    assert 4.0 * np.mean(np.abs(distance_mask(N) * out.reshape(N, N))) == pytest.approx(1, rel=1e-6)


def test_normalize_probe_is_pure():
    before = dict(params.cfg)
    p = pr.get_default_probe(64)
    copy = p.copy()
    pr.normalize_probe(p, probe_scale=10.0)
    assert np.array_equal(p, copy)
    assert params.cfg == before


def test_normalize_probe_integer_input_becomes_float64():
    out = pr.normalize_probe(np.ones((8, 8), dtype=np.int32), probe_scale=1.0)
    assert out.dtype == np.float64


@pytest.mark.parametrize(
    ("probe", "kwargs", "match"),
    [
        (np.ones((64, 64)), {"probe_scale": 4.0, "N": 128}, r"\(N, N\) = \(128, 128\)"),
        (np.ones((64, 63)), {"probe_scale": 4.0}, "probe must be"),
        (np.ones((64, 64, 2)), {"probe_scale": 4.0}, "probe must be"),
        (np.ones((64, 64, 2, 1)), {"probe_scale": 4.0}, "probe must be"),
        (np.ones(64), {"probe_scale": 4.0}, "probe must be"),
        (np.ones((64, 64)), {"probe_scale": 0.0}, "probe_scale"),
        (np.ones((64, 64)), {"probe_scale": np.nan}, "probe_scale"),
        (np.zeros((64, 64)), {"probe_scale": 4.0}, "zero"),
        (np.full((64, 64), np.nan), {"probe_scale": 4.0}, "zero"),
    ],
)
def test_normalize_probe_errors(probe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pr.normalize_probe(probe, **kwargs)


def test_normalize_probe_rejects_non_numeric():
    with pytest.raises(TypeError):
        pr.normalize_probe(np.array([["a"]]), probe_scale=1.0)


@pytest.mark.tf
def test_normalize_probe_matches_tensorflow_arithmetic():
    tf = pytest.importorskip("tensorflow")
    N = 64
    rng = np.random.default_rng(3)
    p = (pr.get_default_probe(N) * np.exp(1j * rng.uniform(-2, 2, (N, N)))).astype(np.complex64)
    t = tf.convert_to_tensor(p[..., None])
    mask = tf.cast(tf.convert_to_tensor(distance_mask(N)[..., None], tf.complex64), t.dtype)
    norm = float(4.0 * tf.reduce_mean(tf.math.abs(mask * t)))
    expected = (t / norm).numpy()
    out = pr.normalize_probe(p[..., None], probe_scale=4.0)
    # Equal up to the rounding of the float32 mean (TF sums in its own order): ~1 ulp.
    np.testing.assert_allclose(out, expected, rtol=3e-7, atol=0)


# --------------------------------------------------------------------------- legacy shims


def test_set_probe_and_get_probe():
    params.set("N", 64)
    params.set("probe_scale", 4.0)
    p3 = pr.get_default_probe(64).astype(np.complex64)[..., None]
    pr.set_probe(p3)
    stored = pr.get_probe()
    assert stored.shape == (64, 64, 1) and stored.dtype == np.complex64
    assert np.array_equal(stored, pr.normalize_probe(p3, probe_scale=4.0))
    assert pr.get_probe(params) is stored
    assert pr.to_np(stored).shape == (64, 64)


def test_set_probe_uses_cfg_N():
    # The reference builds the mask with params N (128 by default): a 64 probe fails.
    with pytest.raises(ValueError, match=r"\(128, 128\)"):
        pr.set_probe(np.ones((64, 64, 1), np.complex64))
    with pytest.raises(ValueError, match=r"\(N, N, 1\)"):
        pr.set_probe(np.ones((128, 128), np.complex64))


def test_set_probe_4d_is_coerced():
    params.set("N", 32)
    p = pr.get_default_probe(32).astype(np.complex64)
    pr.set_probe(p[..., None, None])
    assert pr.get_probe().shape == (32, 32, 1)


def test_get_probe_without_probe():
    with pytest.raises(KeyError):
        pr.get_probe()


def test_set_default_probe():
    params.set("N", 64)
    pr.set_default_probe()
    expected = pr.normalize_probe(
        reference_default_probe(64).astype(np.complex64)[..., None], probe_scale=10.0
    )
    assert np.array_equal(pr.get_probe(), expected)


def test_set_probe_guess():
    params.set("N", 64)
    guess = pr.get_default_probe(64)
    out = pr.set_probe_guess(probe_guess=guess)
    assert out.shape == (64, 64, 1) and out.dtype == np.complex64
    assert np.array_equal(out[..., 0], guess.astype(np.complex64))
    assert np.array_equal(pr.get_probe(), pr.normalize_probe(out, probe_scale=10.0))
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        pr.set_probe_guess(probe_guess=np.ones(64))
    with pytest.raises(NotImplementedError):
        pr.set_probe_guess(X_train=np.ones((2, 64, 64, 1)))

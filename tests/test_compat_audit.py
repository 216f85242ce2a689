"""Adversarial audit of the PtychoPINN-compatible layer against the recorded reference
behaviour (``reference-behavior.md``), for the facts no other test file pins.

Every expectation is computed independently here (NumPy/SciPy, an analytic value, or the
oracles of ``tests/_reference.py``); nothing is taken from ptyfast's own helpers. Section
numbers (§) refer to the reference-behaviour notes.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _reference import bilinear_patches, far_field

from ptyfast import _kernels, diffsim, grouping, intensity, loader, params
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData


@pytest.fixture(autouse=True)
def _fresh_params():
    params.reset()
    yield
    params.reset()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _cplx(shape, seed=0):
    r = _rng(seed)
    return (r.uniform(0.5, 1.5, shape) * np.exp(1j * r.uniform(-1, 1, shape))).astype(np.complex64)


def _snapshot(*arrays):
    return [np.array(a, copy=True) for a in arrays]


def _unchanged(before, *arrays):
    for b, a in zip(before, arrays, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


# --------------------------------------------------------------------------- §5 forward model


@pytest.mark.parametrize("N", [8, 15, 16])
def test_pad_and_diffract_unpadded_is_unitary_fftshifted_fft(N):
    x = _cplx((3, N, N, 1), 1)
    before = _snapshot(x)
    padded, A = diffsim.pad_and_diffract(x, N, N, pad=False)
    _unchanged(before, x)
    assert A.shape == (3, N, N, 1) and A.dtype == np.float32
    np.testing.assert_allclose(A[..., 0], far_field(x[..., 0]), rtol=2e-5, atol=2e-6)
    # Parseval: sum A**2 == sum |x|**2 (unitary scaling)
    np.testing.assert_allclose(
        (A.astype(np.float64) ** 2).sum(axis=(1, 2, 3)),
        (np.abs(x.astype(np.complex128)) ** 2).sum(axis=(1, 2, 3)),
        rtol=1e-5,
    )
    np.testing.assert_array_equal(padded, x)


@pytest.mark.parametrize("N", [8, 9])
def test_zero_frequency_sits_at_index_N_over_2(N):
    # A constant field has all its energy at zero frequency: fftshift puts it at [N//2, N//2]
    # (no ifftshift before the FFT).
    x = np.ones((1, N, N, 1), np.complex64)
    _, A = diffsim.pad_and_diffract(x, N, N, pad=False)
    peak = np.unravel_index(np.argmax(A[0, :, :, 0]), (N, N))
    assert peak == (N // 2, N // 2)
    assert A[0, N // 2, N // 2, 0] == pytest.approx(N)  # sum / N
    # A delta at the origin (unshifted input) gives a flat amplitude 1/N.
    d = np.zeros((1, N, N, 1), np.complex64)
    d[0, 0, 0, 0] = 1
    _, A = diffsim.pad_and_diffract(d, N, N, pad=False)
    np.testing.assert_allclose(A, 1.0 / N, rtol=1e-6)


def test_pad_and_diffract_padded_shape_and_input():
    x = _cplx((2, 8, 8, 1), 2)
    padded, A = diffsim.pad_and_diffract(x, 8, 8, pad=True)
    want = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(padded, want)
    assert A.shape == (2, 12, 12, 1) and A.dtype == np.float32


@pytest.mark.parametrize(("pad", "hw", "edge"), [(True, 8, 2), (False, 4, 0), (True, 7, 1)])
def test_pad_and_diffract_divides_by_the_given_h_w(pad, hw, edge):
    """The reference divides ``|F|²`` by the ``h·w`` it is given (§5): with ``pad=True`` the
    unpadded size, without padding whatever ``h, w`` say."""
    x = _cplx((2, 8, 8, 1), 2)
    if hw == 7:
        x = x[:, :7, :7].copy()
    before = _snapshot(x)
    _, A = diffsim.pad_and_diffract(x, hw, hw, pad=pad)
    _unchanged(before, x)
    p = np.pad(x[..., 0], ((0, 0), (edge, edge), (edge, edge)))
    want = np.abs(np.fft.fftshift(np.fft.fft2(p.astype(np.complex128)), axes=(-2, -1))) / hw
    np.testing.assert_allclose(A[..., 0], want, rtol=2e-5, atol=1e-6 * want.max())


def test_pad_and_diffract_keeps_the_data_path_bits():
    """Where ``h, w`` are the array's size (the data path) the amplitude is the unitary
    kernel's, bit for bit (the one comparison with ptyfast's own code here: it pins that the
    reference's ``h·w`` scaling left the data path's bits alone)."""
    x = _cplx((3, 8, 8, 1), 5)
    _, A = diffsim.pad_and_diffract(x, 8, 8, pad=False)
    want = _kernels.diffract(x[..., 0], np.ones((8, 8), np.complex64))
    np.testing.assert_array_equal(A[..., 0], want)


@pytest.mark.parametrize("h", [0, -1])
def test_pad_and_diffract_refuses_sizes_below_one(h):
    """The reference divides by ``h·w``: 0 would give inf/NaN amplitudes."""
    with pytest.raises(ValueError, match="h must be >= 1"):
        diffsim.pad_and_diffract(_cplx((1, 8, 8, 1), 1), h, 8, pad=False)


def test_diffract_obj_is_unitary_for_the_patterns_own_size():
    """Documented deviation: the reference divides by ``cfg['N']`` (§5), which differs only
    for patterns of another size; ptyfast divides by the patterns' own ``N`` whatever ``cfg``
    holds (COMPATIBILITY.md)."""
    x = _cplx((2, 8, 8, 1), 3)
    params.set("N", 16)
    A = diffsim.diffract_obj(x, draw_poisson=False)
    want = np.abs(np.fft.fftshift(np.fft.fft2(x[..., 0].astype(np.complex128)), axes=(1, 2)))
    np.testing.assert_allclose(A[..., 0], want / 8, rtol=2e-5, atol=1e-6 * want.max() / 8)
    with pytest.raises(ValueError, match=r"sample must be \(B, N, N, 1\)"):
        diffsim.diffract_obj(_cplx((2, 8, 6, 1), 3), draw_poisson=False)


def test_count_photons_and_scale_nphotons_average_batch_and_channels():
    x = _rng(3).uniform(0, 2, (5, 8, 8, 4)).astype(np.float32)
    cp = diffsim.count_photons(x)
    assert cp.shape == (5, 4)
    np.testing.assert_allclose(cp, (x.astype(np.float64) ** 2).sum(axis=(1, 2)), rtol=1e-6)
    s = diffsim.scale_nphotons(x, nphotons=1e6)
    want = math.sqrt(1e6 / (x.astype(np.float64) ** 2).sum(axis=(1, 2)).mean())
    assert float(s) == pytest.approx(want, rel=1e-6)
    # the dtype follows x (a TF scalar of x's dtype in the reference)
    assert np.asarray(s).dtype == np.float32
    assert np.asarray(diffsim.scale_nphotons(x.astype(np.float64), nphotons=1e6)).dtype == (
        np.float64
    )
    # nphotons from cfg when not given
    params.set("nphotons", 4e6)
    assert float(diffsim.scale_nphotons(x)) == pytest.approx(2 * want, rel=1e-6)


def test_dummy_phi_uses_global_max_and_mean():
    y = _rng(4).uniform(0, 3, (2, 10, 10, 1))
    y[1] *= 4  # the second object's max drives the global max
    before = _snapshot(y)
    phi = diffsim.dummy_phi(y)
    _unchanged(before, y)
    want = np.pi * np.tanh((y - y.max() / 2) / (3 * y.mean()))
    assert phi.dtype == np.float32 and phi.shape == y.shape
    np.testing.assert_allclose(phi, want, rtol=1e-6, atol=1e-6)


def _flat_patches(B, N, seed):
    r = _rng(seed)
    Y_I = r.uniform(0.2, 1.0, (B, N, N, 1)).astype(np.float32)
    Y_phi = r.uniform(-1, 1, (B, N, N, 1)).astype(np.float32)
    return Y_I, Y_phi


@pytest.mark.parametrize("gridsize", [1, 2])
def test_illuminate_and_diffract_noise_free(gridsize):
    N, C = 8, gridsize * gridsize
    Y_I, Y_phi = _flat_patches(3 * C, N, 5)
    probe = _cplx((N, N), 6)
    before = _snapshot(Y_I, Y_phi, probe)
    X, YI, Yphi, s = diffsim.illuminate_and_diffract(
        Y_I, Y_phi, probe, nphotons=1e5, gridsize=gridsize, poisson=False
    )
    _unchanged(before, Y_I, Y_phi, probe)
    # s from the object patches times |probe|
    e = ((Y_I[..., 0].astype(np.float64) * np.abs(probe)) ** 2).sum(axis=(1, 2))
    assert float(s) == pytest.approx(math.sqrt(1e5 / e.mean()), rel=1e-6)
    assert np.asarray(s).dtype == np.float32
    O = Y_I[..., 0] * np.exp(1j * Y_phi[..., 0])
    A = far_field(O * probe)  # independent of s

    def to_ch(a):  # flat (B', N, N) -> (B'/C, N, N, C), channel c = flat index b*C + c
        return np.moveaxis(a.reshape(-1, C, N, N), 1, 3)

    assert X.shape == YI.shape == Yphi.shape == (3, N, N, C)
    assert X.dtype == YI.dtype == Yphi.dtype == np.float32
    np.testing.assert_allclose(X, to_ch(A), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(YI, to_ch(np.abs(O * probe)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(Yphi, to_ch(Y_phi[..., 0]))  # pre-probe phase
    # X is independent of s and nphotons without noise, and linear in the probe amplitude
    X2, *_ = diffsim.illuminate_and_diffract(
        Y_I, Y_phi, 2 * probe, nphotons=1e9, gridsize=gridsize, poisson=False
    )
    np.testing.assert_allclose(X2, 2 * X, rtol=1e-4, atol=1e-6)
    X3, *_ = diffsim.illuminate_and_diffract(
        Y_I, Y_phi, probe, 7.5, gridsize=gridsize, poisson=False
    )
    np.testing.assert_allclose(X3, X, rtol=1e-4, atol=1e-6)


def test_illuminate_and_diffract_expected_counts_equal_nphotons():
    N = 16
    Y_I, Y_phi = _flat_patches(200, N, 7)
    probe = get_default_probe(N).astype(np.complex64)
    X, _, _, s = diffsim.illuminate_and_diffract(
        Y_I, Y_phi, probe, nphotons=1e4, gridsize=1, seed=1
    )
    counts = (X.astype(np.float64) * float(s)) ** 2
    # integer counts, and their dataset mean is nphotons (to ~3 sigma of 2e6 counts)
    np.testing.assert_allclose(counts, np.round(counts), atol=2e-3 * counts.max())
    assert counts.sum(axis=(1, 2, 3)).mean() == pytest.approx(1e4, rel=3 / math.sqrt(2e6))
    # the noise level does not scale with the probe: s halves when the probe doubles, so the
    # rates s**2 |F(O P)|**2 / N**2 and (same seed) the counts are the same; X doubles
    X2, _, _, s2 = diffsim.illuminate_and_diffract(
        Y_I, Y_phi, 2 * probe, nphotons=1e4, gridsize=1, seed=1
    )
    assert float(s2) == pytest.approx(float(s) / 2, rel=1e-6)
    counts2 = (X2.astype(np.float64) * float(s2)) ** 2
    assert np.mean(np.abs(counts2 - counts) > 0.5) < 1e-3


# --------------------------------------------------------------------------- §6 grid mode


def _reference_grid_patches(yy, N, g, offset, outer_offset):
    """The reference's grid extraction written from §6: bigN regions at stride
    outer_offset // 2, each translated by its channel's (region centre - patch centre) offset
    with the §4 bilinear warp (source column c - tx, zero outside the region), then the
    centre N x N cropped by (bigN - N) // 2 on the top/left."""
    n, size = yy.shape[0], yy.shape[1]
    big_n = N + (g - 1) * offset
    stride = outer_offset // 2
    g1 = (size - big_n) // stride + 1
    t = (big_n - N) // 2
    ctr = (big_n - 1) / 2
    out = np.zeros((n * g1 * g1, N, N, g * g))
    ar = np.arange(big_n, dtype=np.float64)
    b = 0
    for k in range(n):
        for i in range(g1):
            for j in range(g1):
                reg = yy[k, i * stride : i * stride + big_n, j * stride : j * stride + big_n, 0]
                for c in range(g * g):
                    dx = ctr - ((c % g) * offset + (N - 1) / 2)
                    dy = ctr - ((c // g) * offset + (N - 1) / 2)
                    sx, sy = ar - dx, ar - dy
                    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
                    wx, wy = sx - x0, sy - y0
                    acc = np.zeros((big_n, big_n))
                    for ddy, fy in ((0, 1 - wy), (1, wy)):
                        for ddx, fx in ((0, 1 - wx), (1, wx)):
                            yy_, xx_ = y0 + ddy, x0 + ddx
                            ok = ((yy_ >= 0) & (yy_ < big_n))[:, None] & (
                                (xx_ >= 0) & (xx_ < big_n)
                            )[None, :]
                            v = reg[np.clip(yy_, 0, big_n - 1)][:, np.clip(xx_, 0, big_n - 1)]
                            acc += np.where(ok, v, 0.0) * fy[:, None] * fx[None, :]
                    out[b, :, :, c] = acc[t : t + N, t : t + N]
                b += 1
    return out


def _grid_pre_probe(yy, N, g, offset, outer):
    d = diffsim.mk_simdata(
        yy.shape[0], yy.shape[1], np.ones((N, N)), outer, YY_I=yy, dict_fmt=True, N=N,
        gridsize=g, offset=offset, nphotons=1e6, poisson=False, seed=1,
    )  # fmt: skip
    C = g * g
    pre = d["I_pre_probe"][..., 0] * d["norm_Y_I"]  # flat (B*C, N, N)
    return d, np.moveaxis(pre.reshape(-1, C, N, N), 1, 3)


@pytest.mark.parametrize(
    ("N", "g", "offset", "size", "outer"),
    [
        (8, 2, 4, 37, 9),
        (8, 3, 2, 31, 7),
        (9, 2, 2, 30, 6),
        (8, 1, 4, 21, 5),
        (8, 1, 4, 12, 3),  # stride 1
        (8, 2, 4, 13, 40),  # stride beyond the object: one region
        (8, 2, 0, 16, 4),  # offset 0: every channel the same patch
    ],
)
def test_grid_patches_follow_the_reference_warp_for_even_trims(N, g, offset, size, outer):
    # sizes not divisible by the stride, odd outer offsets (stride outer // 2), odd N
    yy = 1.0 + _rng(8).random((2, size, size, 1))
    d, got = _grid_pre_probe(yy, N, g, offset, outer)
    want = _reference_grid_patches(yy, N, g, offset, outer)
    big_n = N + (g - 1) * offset
    g1 = (size - big_n) // (outer // 2) + 1
    assert got.shape == (2 * g1 * g1, N, N, g * g)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    # norm_Y_I: mean over regions of the max over the region's C patches
    assert float(d["norm_Y_I"]) == pytest.approx(want.max(axis=(1, 2, 3)).mean(), rel=1e-6)
    # YY_full is the un-normalised object
    np.testing.assert_allclose(d["YY_full"][..., 0], yy[..., 0], rtol=1e-6)
    assert d["YY_full"].shape == (2, size, size, 1)
    assert set(d) >= {"I_pre_probe", "phi_pre_probe", "X", "Y_I", "Y_phi", "intensity_scale",
                      "norm_Y_I", "coords", "YY_full"}  # fmt: skip
    assert d["I_pre_probe"].shape == d["phi_pre_probe"].shape == (2 * g1 * g1 * g * g, N, N, 1)


def test_mk_simdata_takes_the_reference_keyword_names():
    # the reference's signature: mk_simdata(n, size, probe, outer_offset, intensity_scale=None,
    # YY_I=None, YY_phi=None, dict_fmt=False, which='train', **kwargs)
    yy = 1.0 + _rng(22).random((2, 24, 24, 1))
    kw = dict(N=8, gridsize=2, offset=4, nphotons=1e6, poisson=False)
    pos = diffsim.mk_simdata(2, 24, np.ones((8, 8)), 8, None, yy, None, False, "train", **kw)
    named = diffsim.mk_simdata(
        n=2, size=24, probe=np.ones((8, 8)), outer_offset=8, intensity_scale=None, YY_I=yy,
        YY_phi=None, dict_fmt=False, which="train", **kw,
    )  # fmt: skip
    for a, b in zip(pos, named, strict=True):
        np.testing.assert_array_equal(a, b)
    assert pos[0].shape == (2 * 4 * 4, 8, 8, 4)  # G1 = (24 - 12) // 4 + 1
    with pytest.raises(TypeError, match="nimgs"):
        diffsim.mk_simdata(2, 24, np.ones((8, 8)), 8, n=2, YY_I=yy, **kw)


def test_grid_set_phi_is_dummy_phi_of_the_whole_stack():
    N, g, offset, size, outer = 8, 2, 4, 30, 8
    yy = 1.0 + _rng(17).random((2, size, size, 1))
    yy[1] *= 3  # global max and mean, not per object
    d = diffsim.mk_simdata(
        2, size, np.ones((N, N)), outer, YY_I=yy, dict_fmt=True, N=N, gridsize=g,
        offset=offset, nphotons=1e6, poisson=False, seed=1, set_phi=True,
    )  # fmt: skip
    phi = np.pi * np.tanh((yy - yy.max() / 2) / (3 * yy.mean()))
    np.testing.assert_allclose(d["Y_phi"], _reference_grid_patches(phi, N, g, offset, outer),
                               atol=2e-6)  # fmt: skip
    np.testing.assert_allclose(np.angle(d["YY_full"]), phi, atol=2e-6)
    np.testing.assert_allclose(np.abs(d["YY_full"]), yy, rtol=1e-6)  # not normalised
    # with set_phi off (cfg default False) the phase is zero
    assert params.get("set_phi") is False
    d0 = diffsim.mk_simdata(
        2, size, np.ones((N, N)), outer, YY_I=yy, dict_fmt=True, N=N, gridsize=g,
        offset=offset, nphotons=1e6, poisson=False, seed=1,
    )  # fmt: skip
    assert not d0["Y_phi"].any()


@pytest.mark.tf
@pytest.mark.slow
def test_grid_odd_cases_equal_the_tf_oracle():
    # odd N, odd outer offset, size not a multiple of the stride: not in test_grid's matrix
    tf_reference = pytest.importorskip("ptyfast.tf_reference")
    N, g, offset, size, outer = 9, 2, 2, 31, 7
    yy = 1.0 + _rng(18).random((2, size, size, 1))
    probe = _cplx((N, N), 19)
    kw = dict(N=N, gridsize=g, offset=offset, nphotons=1e7, poisson=False)
    got = diffsim.mk_simdata(2, size, probe, outer, YY_I=yy, dict_fmt=True, **kw)
    ref = tf_reference.mk_simdata(yy, None, probe, outer, **kw)
    np.testing.assert_allclose(got["X"], ref["X"], atol=2e-5 * float(np.max(ref["X"])))
    np.testing.assert_allclose(got["Y_I"], ref["Y_I"], atol=2e-6 * float(np.max(ref["Y_I"])))
    assert float(got["norm_Y_I"]) == pytest.approx(float(ref["norm_Y_I"]), rel=1e-6)
    assert float(got["intensity_scale"]) == pytest.approx(float(ref["intensity_scale"]), rel=1e-5)
    np.testing.assert_array_equal(got["coords"][0], ref["coords"][0])


def test_grid_patches_odd_trim_are_exact_inner_grid_copies():
    # (gridsize - 1) * offset odd: the reference's channel offsets are half-integers and its
    # symmetric trim x[c:-c] with c = (bigN - N) // 2 leaves N + 1 pixels, which its reshape to
    # N x N cannot take (read, not run). ptyfast extends the grid: exact copies of the inner
    # grid (COMPATIBILITY.md, "Grid patches when (gridsize - 1)·offset is odd").
    N, g, offset, size, outer = 8, 2, 3, 30, 8
    yy = 1.0 + _rng(9).random((1, size, size, 1))
    _, got = _grid_pre_probe(yy, N, g, offset, outer)
    stride, big_n = outer // 2, N + (g - 1) * offset
    g1 = (size - big_n) // stride + 1
    want = np.empty((g1 * g1, N, N, g * g))
    for i in range(g1):
        for j in range(g1):
            for c in range(g * g):
                r0, c0 = i * stride + (c // g) * offset, j * stride + (c % g) * offset
                want[i * g1 + j, :, :, c] = yy[0, r0 : r0 + N, c0 : c0 + N, 0]
    np.testing.assert_allclose(got, want, rtol=2e-6)


# --------------------------------------------------------------------------- §4 / §7 nongrid


def _sim(x, y, obj, N=16, probe=None, **kw):
    probe = np.ones((N, N), np.complex64) if probe is None else probe
    kw.setdefault("nphotons", 1e6)
    kw.setdefault("poisson", False)
    return RawData.from_simulation(np.asarray(x, float), np.asarray(y, float), probe, obj, **kw)


@pytest.mark.parametrize("N", [16, 15])
def test_scan_point_is_patch_pixel_N_over_2(N):
    obj = np.zeros((60, 80), np.complex64)
    obj[25, 50] = 1  # row 25 (y), column 50 (x)
    raw = _sim([50.0], [25.0], obj, N=N)
    Y = raw.Y[0, :, :, 0]
    assert np.unravel_index(np.argmax(np.abs(Y)), Y.shape) == (N // 2, N // 2)
    assert abs(Y[N // 2, N // 2]) == pytest.approx(1.0)


def test_subpixel_weights_of_the_reference_example():
    obj = np.zeros((200, 256), np.complex64)
    obj[100, 150] = 1
    raw = _sim([150.25], [100.5], obj, N=64)
    Y = np.abs(raw.Y[0, :, :, 0])
    want = {(31, 31): 0.125, (31, 32): 0.375, (32, 31): 0.125, (32, 32): 0.375}
    for (r, c), w in want.items():
        assert Y[r, c] == pytest.approx(w, abs=1e-6)
    assert Y.sum() == pytest.approx(1.0, abs=1e-5)


def test_half_pixel_at_both_object_edges_is_half():
    # patch column c samples object column x + c - 32 (N = 64) of a ones object
    obj = np.ones((256, 256), np.complex64)
    Y = np.abs(_sim([0.5], [128.0], obj, N=64).Y[0, 32, :, 0])
    assert Y[31] == pytest.approx(0.5, abs=1e-6)  # column -0.5: one corner outside
    assert Y[32] == pytest.approx(1.0, abs=1e-6) and Y[30] == 0
    Y = np.abs(_sim([255.5], [128.0], obj, N=64).Y[0, 32, :, 0])
    assert Y[32] == pytest.approx(0.5, abs=1e-6)  # column 255.5: one corner outside
    assert Y[31] == pytest.approx(1.0, abs=1e-6) and Y[33] == 0


def test_patch_weights_use_float32_coordinate_arithmetic():
    # far from the origin float32 carries ~2.4e-4 px: the reference's warp computes the
    # source coordinate in float32, so its weights differ from exact float64 bilinear ones
    obj = _cplx((24, 4200), 15)
    x = np.array([4100.3001, 3333.1234567])
    y = np.array([11.7, 12.25])
    got = _sim(x, y, obj, N=8).Y[..., 0]
    want32 = bilinear_patches(obj, np.column_stack([x, y]), 8)
    np.testing.assert_allclose(got, want32, rtol=0, atol=2e-6)
    # the float64 interpolation is measurably different, so the check above discriminates
    rows = np.arange(8)[:, None] + y[:, None, None] - 4
    cols = np.arange(8)[None, :] + x[:, None, None] - 4
    c0 = np.floor(cols).astype(int)
    wx = cols - c0
    r0 = np.floor(rows).astype(int)
    wy = rows - r0
    b = np.arange(2)[:, None, None]
    o = obj.astype(np.complex128)
    f64 = sum(
        o[r0 + dy, c0 + dx] * (wy if dy else 1 - wy) * (wx if dx else 1 - wx)
        for dy in (0, 1)
        for dx in (0, 1)
    )
    del b
    assert np.abs(f64 - want32).max() > 2e-5


@pytest.mark.parametrize("N", [16, 15])
def test_from_simulation_arrays_and_scale(N):
    obj = _cplx((70, 90), 10)
    probe = (get_default_probe(N) * np.exp(0.3j * np.arange(N) / N)).astype(np.complex64)
    x = np.array([20.0, 45.25, 70.5, 33.75])
    y = np.array([20.0, 30.5, 50.0, 41.25])
    before = _snapshot(obj, probe, x, y)
    raw = _sim(x, y, obj, N=N, probe=probe, nphotons=1e7)
    _unchanged(before, obj, probe, x, y)
    patches = bilinear_patches(obj, np.column_stack([x, y]), N)
    assert raw.Y.shape == (4, N, N, 1) and raw.Y.dtype == np.complex64
    np.testing.assert_allclose(raw.Y[..., 0], patches, rtol=1e-5, atol=1e-6)
    assert raw.diff3d.shape == (4, N, N) and raw.diff3d.dtype == np.float32
    np.testing.assert_allclose(raw.diff3d, far_field(patches * probe), rtol=1e-4, atol=1e-6)
    e = ((np.abs(patches).astype(np.float64) * np.abs(probe)) ** 2).sum(axis=(1, 2))
    s = math.sqrt(1e7 / e.mean())
    # norm_Y_I = sqrt(nphotons / mean sum X**2) = s exactly without noise (Parseval)
    assert isinstance(raw.norm_Y_I, np.float32)
    assert float(raw.norm_Y_I) == pytest.approx(s, rel=1e-5)
    assert raw.scan_index.dtype == np.int64 and not raw.scan_index.any()
    for a in (raw.xcoords, raw.ycoords, raw.xcoords_start, raw.ycoords_start):
        assert a.dtype == np.float64
    np.testing.assert_array_equal(raw.xcoords_start, x)
    np.testing.assert_array_equal(raw.ycoords_start, y)


@pytest.mark.parametrize(
    "layout",
    [
        lambda a: a.astype(a.dtype.newbyteorder(">")),
        np.asfortranarray,
        lambda a: np.repeat(a, 2, axis=0)[::2],
    ],
    ids=["big-endian", "fortran", "strided"],
)
def test_any_array_layout_gives_the_same_data(layout):
    r = _rng(21)
    obj = _cplx((50, 60), 21)
    probe = get_default_probe(8).astype(np.complex64)
    x, y = np.array([20.0, 30.5, 41.0]), np.array([25.0, 20.25, 30.0])
    base = _sim(x, y, obj, N=8, probe=probe)
    raw = _sim(layout(x), layout(y), layout(obj), N=8, probe=layout(probe))
    np.testing.assert_array_equal(raw.diff3d, base.diff3d)
    np.testing.assert_array_equal(raw.Y, base.Y)
    xs, ys = r.uniform(10, 50, (2, 20))
    d = r.random((20, 8, 8)).astype(np.float32)
    kw = dict(N=8, K=4, nsamples=5, seed=1, gridsize=2)
    want = grouping.group_dataset(xs, ys, xs, ys, d, **kw)
    got = grouping.group_dataset(layout(xs), layout(ys), xs, ys, layout(d), **kw)
    for k in ("diffraction", "X_full", "nn_indices", "coords_nn"):
        np.testing.assert_array_equal(got[k], want[k])


def test_generate_simulated_data_x_spans_width_y_spans_height():
    H, W, n, buffer = 40, 300, 64, 10.0
    obj = np.ones((H, W), np.complex64)
    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=n, nphotons=1e5)
    state = np.random.get_state()
    raw, Y = generate_simulated_data(cfg, obj, get_default_probe(16), buffer, poisson=False)
    rs = np.random.RandomState(42)
    np.testing.assert_array_equal(raw.xcoords, rs.uniform(buffer, W - buffer, n))
    np.testing.assert_array_equal(raw.ycoords, rs.uniform(buffer, H - buffer, n))
    assert Y is raw.Y or np.array_equal(Y, raw.Y)
    assert Y.shape == (n, 16, 16, 1)
    assert raw.scan_index.dtype == np.int64 and not raw.scan_index.any()
    # the caller's global RNG state is left alone (documented change)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1])


def test_single_position_and_inputs_untouched():
    obj = _cplx((40, 40), 20)
    probe = get_default_probe(16)
    before = _snapshot(obj, probe)
    cfg = TrainingConfig(model=ModelConfig(N=16), n_groups=1, nphotons=1e5)
    raw, Y = generate_simulated_data(cfg, obj, probe, 8.0, poisson=False)
    _unchanged(before, obj, probe)
    assert raw.diff3d.shape == (1, 16, 16) and Y.shape == (1, 16, 16, 1)
    pos = np.column_stack([raw.xcoords, raw.ycoords])
    np.testing.assert_allclose(Y[..., 0], bilinear_patches(obj, pos, 16), rtol=1e-5, atol=1e-6)


def test_generate_simulated_data_counts_and_return_patches():
    obj = np.ones((64, 64), np.complex64)
    probe = get_default_probe(16)
    with pytest.warns(DeprecationWarning, match="n_images"):
        cfg = TrainingConfig(model=ModelConfig(N=16), n_images=7, nphotons=1e5)
    raw = generate_simulated_data(cfg, obj, probe, 8.0, return_patches=False, poisson=False)
    assert isinstance(raw, RawData) and len(raw.xcoords) == 7
    # TrainingConfig's n_groups default is 512
    raw = generate_simulated_data(
        TrainingConfig(model=ModelConfig(N=16)), obj, probe, 8.0, False, poisson=False
    )
    assert len(raw.xcoords) == 512


def test_generate_simulated_data_needs_a_count():
    from types import SimpleNamespace

    model = SimpleNamespace(N=16, gridsize=1)
    obj, probe = np.ones((40, 40)), get_default_probe(16)
    none = SimpleNamespace(model=model, n_groups=None, n_images=None, nphotons=1e5)
    with pytest.raises(ValueError, match="n_groups"):
        generate_simulated_data(none, obj, probe, 5.0, poisson=False)
    images = SimpleNamespace(model=model, n_groups=None, n_images=3, nphotons=1e5)
    raw = generate_simulated_data(images, obj, probe, 5.0, False, poisson=False)
    assert len(raw.xcoords) == 3


# --------------------------------------------------------------------------- §8 RawData / grouping


def test_from_coords_without_pc_start_coordinates_are_the_positions():
    x, y = np.array([1.0, 2.5, 3.0]), np.array([4.0, 5.0, 6.25])
    d = np.ones((3, 4, 4), np.float32)
    raw = RawData.from_coords_without_pc(x, y, d, np.ones((4, 4), np.complex64), np.zeros(3, int))
    np.testing.assert_array_equal(raw.xcoords_start, x)
    np.testing.assert_array_equal(raw.ycoords_start, y)
    assert raw.objectGuess is None and raw.Y is None


def _raw(n=30, N=8, seed=0, start_shift=0.0):
    r = _rng(seed)
    x, y = r.uniform(10, 90, (2, n))
    d = r.uniform(0, 2, (n, N, N)).astype(np.float32)
    return RawData(
        x, y, x + start_shift, y - start_shift, d, _cplx((N, N), seed), np.zeros(n, np.int64),
        objectGuess=_cplx((100, 100), seed + 1),
    )  # fmt: skip


def test_to_file_keys_and_from_file_defaults(tmp_path):
    raw = _raw()
    raw.to_file(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert {"xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d", "probeGuess",
                "objectGuess", "scan_index"} <= set(f.files)  # fmt: skip
    # only the four required keys: start coordinates default to x/y, scan_index to int zeros
    np.savez(tmp_path / "b.npz", xcoords=raw.xcoords, ycoords=raw.ycoords, diff3d=raw.diff3d,
             probeGuess=raw.probeGuess)  # fmt: skip
    back = RawData.from_file(tmp_path / "b.npz")
    np.testing.assert_array_equal(back.xcoords_start, raw.xcoords)
    np.testing.assert_array_equal(back.ycoords_start, raw.ycoords)
    assert back.scan_index.dtype.kind == "i" and not back.scan_index.any()
    assert back.objectGuess is None
    # with both keys, diff3d is the one read ('diffraction' is only ptyfast's fallback)
    np.savez(tmp_path / "d.npz", xcoords=raw.xcoords, ycoords=raw.ycoords, diff3d=raw.diff3d,
             diffraction=2 * raw.diff3d, probeGuess=raw.probeGuess)  # fmt: skip
    np.testing.assert_array_equal(RawData.from_file(tmp_path / "d.npz").diff3d, raw.diff3d)
    np.savez(tmp_path / "c.npz", xcoords=raw.xcoords, ycoords=raw.ycoords, diff3d=raw.diff3d)
    with pytest.raises((ValueError, KeyError), match="probeGuess"):
        RawData.from_file(tmp_path / "c.npz")


def test_generate_grouped_data_gridsize_falls_back_to_cfg_two():
    raw = _raw()
    d = raw.generate_grouped_data(8, K=4, nsamples=5, seed=1)
    assert d["diffraction"].shape == (5, 8, 8, 4)  # cfg gridsize 2 -> C = 4
    assert d["nn_indices"].dtype == np.int32


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_grouped_dict_coordinates_and_keys(gridsize):
    raw = _raw(start_shift=0.75)
    before = _snapshot(raw.xcoords, raw.ycoords, raw.diff3d, raw.objectGuess)
    K = max(5, gridsize * gridsize)
    d = raw.generate_grouped_data(8, K=K, nsamples=12, seed=3, gridsize=gridsize)
    _unchanged(before, raw.xcoords, raw.ycoords, raw.diff3d, raw.objectGuess)
    C = gridsize * gridsize
    nn = d["nn_indices"]
    assert nn.shape == (12, C)
    assert nn.dtype == (np.int64 if C == 1 else np.int32)
    want_nn = np.stack([raw.xcoords[nn], raw.ycoords[nn]], axis=1)[:, None]  # (B,1,2,C)
    np.testing.assert_array_equal(d["coords_nn"], want_nn)
    assert d["coords_nn"].dtype == np.float64
    mean = want_nn.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(d["coords_offsets"], mean, rtol=1e-15)
    np.testing.assert_allclose(d["coords_relative"], -(want_nn - mean), atol=1e-12)
    start = np.stack([raw.xcoords_start[nn], raw.ycoords_start[nn]], axis=1)[:, None]
    np.testing.assert_array_equal(d["coords_start_nn"], start)
    smean = start.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(d["coords_start_offsets"], smean, rtol=1e-15)
    np.testing.assert_allclose(d["coords_start_relative"], -(start - smean), atol=1e-12)
    np.testing.assert_array_equal(d["diffraction"], np.moveaxis(raw.diff3d[nn], 1, 3))
    assert d["diffraction"].dtype == raw.diff3d.dtype
    e = (d["diffraction"].astype(np.float64) ** 2).sum(axis=(1, 2)).mean()
    f = np.float32(math.sqrt(16.0 / e))
    np.testing.assert_array_equal(d["X_full"], f * d["diffraction"].astype(np.float32))
    assert d["X_full"].dtype == np.float32
    assert d["objectGuess"] is raw.objectGuess or np.array_equal(d["objectGuess"], raw.objectGuess)
    # Y from objectGuess: channel c sampled at 2*mean - coord_c (point reflection)
    refl = (2 * mean - want_nn)[:, 0].transpose(0, 2, 1).reshape(-1, 2)
    pat = bilinear_patches(raw.objectGuess, refl, 8).reshape(12, C, 8, 8)
    np.testing.assert_allclose(d["Y"], np.moveaxis(pat, 1, 3), rtol=1e-5, atol=1e-6)


def test_normalize_data_uint16_and_dict_untouched():
    r = _rng(12)
    dif = r.integers(0, 65535, (6, 8, 8, 4)).astype(np.uint16)  # squares overflow uint16
    dset = {"diffraction": dif}
    before = _snapshot(dif)
    out = grouping.normalize_data(dset, 8)
    _unchanged(before, dif)
    assert list(dset) == ["diffraction"]
    e = (dif.astype(np.float64) ** 2).sum(axis=(1, 2)).mean()
    f = np.float32(math.sqrt(16.0 / e))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, f * dif.astype(np.float32))
    # per-pattern energy (N/2)**2 on average over groups and channels
    assert (out.astype(np.float64) ** 2).sum(axis=(1, 2)).mean() == pytest.approx(16, rel=1e-5)


def test_sample_indices_key_only_when_set():
    raw = _raw()
    assert "sample_indices" not in raw.generate_grouped_data(8, K=4, nsamples=3, gridsize=1)
    raw.sample_indices = np.arange(5, 35)
    d = raw.generate_grouped_data(8, K=4, nsamples=3, gridsize=1, seed=0)
    np.testing.assert_array_equal(d["sample_indices"], np.arange(5, 35))


def test_uint16_counts_group_in_their_dtype_without_overflow():
    r = _rng(16)
    n = 20
    x, y = r.uniform(10, 50, (2, n))
    d16 = r.integers(30000, 65535, (n, 8, 8)).astype(np.uint16)
    raw = RawData(x, y, x, y, d16, np.ones((8, 8), np.complex64), np.zeros(n, np.int64))
    d = raw.generate_grouped_data(8, K=4, nsamples=5, gridsize=2, seed=0)
    assert d["diffraction"].dtype == np.uint16
    np.testing.assert_array_equal(d["diffraction"], np.moveaxis(d16[d["nn_indices"]], 1, 3))
    e = (d["diffraction"].astype(np.float64) ** 2).sum(axis=(1, 2)).mean()
    f = np.float32(math.sqrt(16.0 / e))
    np.testing.assert_array_equal(d["X_full"], f * d["diffraction"].astype(np.float32))


def test_grouping_too_few_points_or_neighbours():
    raw = _raw(n=3)
    with pytest.raises(ValueError, match="C"):
        raw.generate_grouped_data(8, K=4, nsamples=2, gridsize=2, seed=0)  # n=3 < C=4
    raw = _raw(n=30)
    with pytest.raises(ValueError, match="K"):
        raw.generate_grouped_data(8, K=3, nsamples=2, gridsize=2, seed=0)  # K=3 < C=4
    with pytest.raises(ValueError, match="enable_oversampling"):
        raw.generate_grouped_data(8, K=4, nsamples=40, gridsize=2, seed=0)


def test_get_image_patches_defaults_to_cfg_N_and_gridsize():
    obj = _cplx((50, 50), 13)
    g = np.array([[[[20.0], [25.0]]], [[[30.5], [22.25]]]])
    lo = _rng(2).uniform(-2, 2, (2, 1, 2, 4))
    params.set("N", 8)
    got = grouping.get_image_patches(obj, g, lo)  # gridsize from cfg: 2
    pos = (g + lo)[:, 0].transpose(0, 2, 1).reshape(-1, 2)
    want = np.moveaxis(bilinear_patches(obj, pos, 8).reshape(2, 4, 8, 8), 1, 3)
    assert got.shape == (2, 8, 8, 4) and got.dtype == np.complex64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- §9 / §10 loader


def _grouped(C=1, B=9, N=64, seed=0):
    raw = _raw(n=max(40, B), N=N, seed=seed, start_shift=0.5)
    return raw, raw.generate_grouped_data(N, K=5, nsamples=B, seed=1, gridsize=int(C**0.5))


def test_load_norm_Y_I_is_the_closed_form_988():
    raw, d = _grouped(C=4)
    c = loader.load(lambda: d, raw.probeGuess, which=None, create_split=False)
    assert float(c.norm_Y_I) == pytest.approx(math.sqrt(1e9) / 32, rel=1e-5)
    assert float(c.norm_Y_I) == pytest.approx(988.2118, abs=1e-3)
    closed = float(intensity.calculate_intensity_scale(None, N=64))
    assert closed == pytest.approx(988.2118, abs=1e-3)
    params.set("nphotons", 1e6)
    assert float(intensity.calculate_intensity_scale(None, N=64)) == pytest.approx(1e3 / 32)


@pytest.mark.parametrize(
    ("frac", "B", "n_train"), [(0.5, 9, 4), (0.8, 7, 5), (1 / 3, 10, 3), (0.29, 100, 28)]
)
def test_load_split_is_int_of_len_times_frac(frac, B, n_train):
    raw, d = _grouped(B=B)
    tr = loader.load(lambda: (d, frac), raw.probeGuess, which="train", create_split=True)
    te = loader.load(lambda: (d, frac), raw.probeGuess, which="test", create_split=True)
    assert len(tr) == n_train == int(B * frac) and len(te) == B - n_train
    np.testing.assert_array_equal(tr.X, d["X_full"][:n_train])
    np.testing.assert_array_equal(te.X, d["X_full"][n_train:])
    want = d["coords_start_relative"][n_train:].astype(np.float32)
    np.testing.assert_array_equal(te.coords_nominal, want)


def test_container_arrays_and_npz_keys(tmp_path):
    raw, d = _grouped(C=4, N=8)
    c = loader.load(lambda: d, raw.probeGuess)
    Y = np.asarray(d["Y"])
    np.testing.assert_array_equal(c.Y_I, np.abs(Y).astype(np.float32))
    np.testing.assert_array_equal(c.Y_phi, np.angle(Y).astype(np.float32))
    for a in (c.X, c.Y_I, c.Y_phi, c.coords_nominal, c.coords_true, c.coords):
        assert a.dtype == np.float32
    assert c.Y.dtype == np.complex64 and c.probe.dtype == np.complex64
    np.testing.assert_allclose(c.Y, Y, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(c.global_offsets, d["coords_offsets"])
    np.testing.assert_array_equal(c.local_offsets, d["coords_relative"])
    assert len(c) == len(d["X_full"])
    c.to_npz(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert {"X", "Y_I", "Y_phi", "norm_Y_I", "coords_nominal", "coords_true", "nn_indices",
                "global_offsets", "local_offsets", "probe"} <= set(f.files)  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value"),
    [("X_full", 1e39), ("Y", 1e39 + 0j), ("coords_start_relative", 1e39)],
)
def test_load_refuses_float64_values_its_float32_casts_would_make_inf(key, value):
    raw, d = _grouped(N=8)
    d = dict(d)
    d[key] = np.full(np.shape(d[key]), value)
    with pytest.raises(ValueError, match=re.escape(f"dset['{key}'] must fit")):
        loader.load(lambda: d, raw.probeGuess)


@pytest.mark.parametrize("name", ["X", "Y_I", "coords_nominal", "probeGuess"])
def test_container_refuses_values_beyond_float32(name):
    kw = dict(
        X=np.ones((2, 8, 8, 1)), Y_I=np.ones((2, 8, 8, 1)), Y_phi=np.zeros((2, 8, 8, 1)),
        norm_Y_I=1.0, YY_full=None, coords_nominal=np.zeros((2, 1, 2, 1)),
        coords_true=np.zeros((2, 1, 2, 1)), nn_indices=None, global_offsets=None,
        local_offsets=None, probeGuess=np.ones((8, 8), np.complex128),
    )  # fmt: skip
    kw[name] = np.full(np.shape(kw[name]), 1e39, kw[name].dtype)
    with pytest.raises(ValueError, match=f"{name} must fit"):
        loader.PtychoDataContainer(**kw)


def test_dataset_intensity_stats_contract():
    x = _rng(14).uniform(0, 1, (5, 8, 8)).astype(np.float32)
    before = _snapshot(x)
    st = intensity.compute_dataset_intensity_stats(x)
    _unchanged(before, x)
    assert st["n_samples"] == 5
    assert st["spec_reference"] == "specs/spec-ptycho-core.md §Normalization Invariants"
    assert st["batch_mean_sum_intensity"] == pytest.approx(
        (x.astype(np.float64) ** 2).sum(axis=(1, 2)).mean(), rel=1e-12
    )
    for bad in (np.ones((4, 8)), np.ones((2, 3, 8, 8, 1))):
        with pytest.raises(ValueError):
            intensity.compute_dataset_intensity_stats(bad)
    with pytest.raises(ValueError, match="intensity_scale"):
        intensity.compute_dataset_intensity_stats(x, is_normalized=True)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: diffsim.pad_and_diffract(np.full((1, 4, 4, 1), np.nan), 4, 4, False),
         ValueError, "input"),
        (lambda: diffsim.count_photons("abc"), TypeError, "x must"),
        (lambda: diffsim.scale_nphotons(np.zeros((2, 4, 4, 1)), nphotons=1e6), ValueError,
         "x has zero energy"),
        (lambda: diffsim.illuminate_and_diffract(
            np.full((1, 4, 4, 1), np.nan), np.zeros((1, 4, 4, 1)), np.ones((4, 4)),
            nphotons=1e3, gridsize=1), ValueError, "Y_I"),
        (lambda: diffsim.illuminate_and_diffract(
            np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4, 1)), np.ones((5, 5)), nphotons=1e3,
            gridsize=1), ValueError, "probe"),
        (lambda: diffsim.dummy_phi(np.full((1, 4, 4, 1), np.nan)), ValueError, "Y_I"),
        (lambda: diffsim.mk_simdata(0, 40, np.ones((8, 8)), 8, N=8, gridsize=1, offset=4),
         ValueError, "nimgs"),
        (lambda: diffsim.extract_coords(10, 1, "offsets", 8, N=16, gridsize=1, offset=4),
         ValueError, "size"),
        (lambda: grouping.normalize_data({}, 8), ValueError, "diffraction"),
        # finite float64 beyond float32: the float32 cast would give inf patterns
        (lambda: grouping.normalize_data({"diffraction": np.full((2, 8, 8, 1), 1e39)}, 8),
         ValueError, "dset['diffraction'] must fit float32"),
        (lambda: grouping.normalize_data({"diffraction": np.full((2, 8, 8, 1), 1e200)}, 8),
         ValueError, "overflow"),
        (lambda: RawData(np.arange(5.0), np.arange(5.0), np.arange(5.0), np.arange(5.0),
                         np.full((5, 8, 8), 1e39), np.ones((8, 8)), np.zeros(5, int))
         .generate_grouped_data(8, K=4, nsamples=2, gridsize=1, seed=0),
         ValueError, "diff3d must fit float32"),
        (lambda: grouping.normalize_data({"diffraction": np.ones((2, 8, 8, 1))}, 0),
         ValueError, "N"),
        (lambda: _raw().generate_grouped_data(8, K=4, nsamples=0, gridsize=1), ValueError,
         "nsamples"),
        (lambda: _raw().generate_grouped_data(8, K=4, nsamples=2, gridsize=0), ValueError,
         "gridsize"),
        (lambda: _raw().generate_grouped_data(8, K=4.5, nsamples=2, gridsize=1), TypeError, "K"),
        (lambda: grouping.get_image_patches(np.ones((20, 20)), np.full((1, 1, 2, 1), np.nan),
                                            np.zeros((1, 1, 2, 1)), 8, 1),
         ValueError, "offsets"),
        (lambda: grouping.get_image_patches(np.ones((20, 20)), np.zeros((1, 1, 2, 1)),
                                            np.zeros((1, 1, 2, 3)), 8, 2),
         ValueError, "local_offsets"),
        (lambda: intensity.calculate_intensity_scale(None, nphotons=-1.0, N=64), ValueError,
         "nphotons"),
        # finite amplitudes whose squared sums overflow float64 are named as such
        (lambda: intensity.compute_dataset_intensity_stats(np.full((2, 4, 4), 1e200)),
         ValueError, "overflow"),
        (lambda: diffsim.scale_nphotons(np.full((2, 4, 4, 1), 1e200), nphotons=1e9),
         ValueError, "overflow"),
        (lambda: diffsim.count_photons(np.full((2, 4, 4, 1), 1e200)), ValueError, "overflow"),
        (lambda: generate_simulated_data(
            TrainingConfig(model=ModelConfig(N=16), n_groups=3), np.ones((40, 40)),
            get_default_probe(16), math.nan), ValueError, "buffer"),
        (lambda: generate_simulated_data(
            TrainingConfig(model=ModelConfig(N=16), n_groups=3), np.ones((40, 40)),
            get_default_probe(8), 5.0), ValueError, "probe"),
        (lambda: generate_simulated_data(
            TrainingConfig(model=ModelConfig(N=16), n_groups=3), np.ones((40, 40)),
            get_default_probe(16), -5.0), ValueError, "buffer"),
        (lambda: diffsim.mk_simdata(1, 40, np.ones((8, 8)), 8, N=8, gridsize=1, offset=4,
                                    data_source="generic"), ValueError, "data_source"),
    ],
)  # fmt: skip
def test_bad_input_raises_naming_the_argument(call, exc, name):
    with pytest.raises(exc) as e:
        call()
    assert name in str(e.value)


def test_simulation_leaves_cfg_and_numpy_global_state_alone():
    cfg = dict(params.cfg)
    state = np.random.get_state()
    obj = np.ones((40, 40), np.complex64)
    generate_simulated_data(
        TrainingConfig(model=ModelConfig(N=16, gridsize=2), n_groups=4, nphotons=1e5), obj,
        get_default_probe(16), 5.0, seed=1,
    )  # fmt: skip
    diffsim.mk_simdata(1, 40, np.ones((8, 8)), 8, N=8, gridsize=2, offset=4,
                       data_source="lines", seed=0)  # fmt: skip
    _raw().generate_grouped_data(8, K=4, nsamples=3, gridsize=2, seed=5)
    assert params.cfg.keys() == cfg.keys()
    for k, v in cfg.items():
        assert np.all(params.cfg[k] == v), k
    after = np.random.get_state()
    assert np.array_equal(after[1], state[1]) and after[2:] == state[2:]

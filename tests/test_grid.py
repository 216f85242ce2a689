"""Grid pipeline (Rust path): geometry, physics against NumPy, equivalence with the TF reference."""

import numpy as np
import pytest
from _reference import far_field
from _simd import digests_per_level

from ptyfast import diffsim, params
from ptyfast.probe import get_default_probe


def _stack(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return 1.0 + rng.random((n, size, size, 1))


def _grid(**kw):
    args = dict(N=32, gridsize=2, offset=4, nphotons=1e9, seed=3)
    args.update(kw)
    return args


def test_extract_coords_matches_the_reference_example():
    c = diffsim.extract_coords(392, 2, "offsets", 8, N=64, gridsize=2, offset=4)
    assert c.shape == (2 * 82 * 82, 1, 2, 4) and c.dtype == np.float32
    np.testing.assert_array_equal(c[0, 0], [[2, -2, 2, -2], [2, 2, -2, -2]])
    assert (c == c[0]).all()
    assert (
        diffsim.extract_coords(392, 1, "offsets", 8, N=128, gridsize=2, offset=4).shape[0]
        == 66 * 66
    )


def test_ramp_image_patch_origins():
    # the reference's grid: N=64, g=2, size 128, outer_offset 16
    size = 128
    rows, cols = np.mgrid[:size, :size]
    ramp = (rows * 1000 + cols).astype(np.float64)[None, ..., None]
    d = diffsim.mk_simdata(
        1, size, np.ones((64, 64)), 16, YY_I=ramp + 1, dict_fmt=True, **_grid(N=64, poisson=False)
    )
    flat = d["I_pre_probe"][..., 0] * d["norm_Y_I"] - 1
    origins = [(int(round(p[0, 0])) // 1000, int(round(p[0, 0])) % 1000) for p in flat[:6]]
    assert origins == [(0, 0), (0, 4), (4, 0), (4, 4), (0, 8), (0, 12)]


@pytest.mark.parametrize("g", [1, 2, 3])
def test_noise_free_physics_against_numpy(g):
    N, size, outer = 16, 48, 8
    yy = _stack(2, size)
    probe = get_default_probe(N).astype(np.complex64) * np.exp(0.2j)
    d = diffsim.mk_simdata(
        2, size, probe, outer, YY_I=yy, dict_fmt=True, **_grid(N=N, gridsize=g, poisson=False)
    )
    C, stride, big_n = g * g, outer // 2, N + (g - 1) * 4
    g1 = (size - big_n) // stride + 1
    # patches by slicing, object-major, regions row-major, channels row-major
    pats = []
    for k in range(2):
        for i in range(g1):
            for j in range(g1):
                for c in range(C):
                    r0, c0 = i * stride + (c // g) * 4, j * stride + (c % g) * 4
                    pats.append(yy[k, r0 : r0 + N, c0 : c0 + N, 0])
    pats = np.array(pats)
    norm = pats.reshape(-1, C * N * N).max(axis=1).mean()
    assert d["norm_Y_I"] == pytest.approx(norm, rel=1e-6)
    obj = pats / norm
    s = np.sqrt(1e9 / np.mean(np.sum((obj * np.abs(probe)) ** 2, axis=(1, 2))))
    assert d["intensity_scale"] == pytest.approx(s, rel=1e-5)
    X = np.moveaxis(d["X"], 3, 1).reshape(-1, N, N)
    expected = far_field(obj * probe)
    np.testing.assert_allclose(X, expected, atol=2e-5 * expected.max())
    Y_I = np.moveaxis(d["Y_I"], 3, 1).reshape(-1, N, N)
    np.testing.assert_allclose(Y_I, obj * np.abs(probe), atol=1e-6)
    assert np.all(d["Y_phi"] == 0)
    for k in ("X", "Y_I", "Y_phi"):
        assert d[k].dtype == np.float32 and d[k].shape == (2 * g1 * g1, N, N, C)


def test_guide_call_returns_four_arrays_from_params(monkeypatch):
    monkeypatch.setitem(params.cfg, "N", 32)
    monkeypatch.setitem(params.cfg, "gridsize", 2)
    monkeypatch.setitem(params.cfg, "offset", 4)
    monkeypatch.setitem(params.cfg, "data_source", "lines")
    X, Y_I, Y_phi, coords = diffsim.mk_simdata(
        nimgs=1, size=64, probe=get_default_probe(32), outer_offset=8
    )
    g1 = (64 - 36) // 4 + 1
    assert X.shape == Y_I.shape == Y_phi.shape == (g1 * g1, 32, 32, 4)
    assert coords.shape == (g1 * g1, 1, 2, 4)


def test_seed_determinism_and_reference_objects():
    probe = get_default_probe(32)
    a = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, data_source="lines", **_grid())
    b = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, data_source="lines", **_grid())
    c = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, data_source="lines", **_grid(seed=4))
    np.testing.assert_array_equal(a["X"], b["X"])
    assert not np.array_equal(a["X"], c["X"])
    from ptyfast.datagen.objects import sim_object_stack

    np.testing.assert_array_equal(
        a["YY_full"].real,
        sim_object_stack(1, 80, data_source="lines", seed=3).astype(np.float32),
    )


def test_noise_statistics():
    probe = get_default_probe(32)
    d = diffsim.mk_simdata(
        1, 96, probe, 8, dict_fmt=True, YY_I=_stack(1, 96), **_grid(nphotons=1e5)
    )
    counts = (d["X"].astype(np.float64) * d["intensity_scale"]) ** 2
    assert np.all(np.abs(counts - np.round(counts)) <= 1e-4 * np.maximum(1, counts))
    per_pattern = counts.sum(axis=(1, 2)).ravel()
    assert per_pattern.mean() == pytest.approx(1e5, rel=0.01)


def test_jitter_moves_true_coordinates_only():
    probe = get_default_probe(32)
    d = diffsim.mk_simdata(
        1,
        80,
        probe,
        16,
        dict_fmt=True,
        YY_I=_stack(1, 80),
        jitter_scale=0.7,
        **_grid(poisson=False),
    )
    nominal, true = d["coords"]
    assert np.all(nominal == nominal[0])
    assert np.std(true - nominal) == pytest.approx(0.7, abs=0.15)
    plain = diffsim.mk_simdata(
        1, 80, probe, 16, dict_fmt=True, YY_I=_stack(1, 80), **_grid(poisson=False)
    )
    assert not np.allclose(d["X"], plain["X"])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(probe=np.ones((16, 16))), "probe"),
        (dict(size=20), "size"),
        (dict(nimgs=0), "nimgs"),
        (dict(YY_I=np.ones((1, 80, 80))), "YY_I"),
        (dict(intensity_scale=-1.0), "intensity_scale"),
        (dict(jitter_scale=np.nan), "jitter_scale"),
        # finite in float64 but beyond float32, where the kernels compute (was: NaN patterns)
        (dict(YY_I=np.full((1, 80, 80, 1), 1e39)), "YY_I must fit float32"),
        (
            dict(YY_I=np.ones((1, 80, 80, 1)), YY_phi=np.full((1, 80, 80, 1), -1e39)),
            "YY_phi must fit float32",
        ),
    ],
)
def test_errors(kw, match):
    args = dict(nimgs=1, size=80, probe=get_default_probe(32), outer_offset=16)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        diffsim.mk_simdata(**args, **_grid())


def test_inputs_not_modified():
    yy = _stack(1, 64)
    probe = get_default_probe(32)
    copies = yy.copy(), probe.copy()
    diffsim.mk_simdata(1, 64, probe, 8, YY_I=yy, **_grid())
    np.testing.assert_array_equal(yy, copies[0])
    np.testing.assert_array_equal(probe, copies[1])


# --------------------------------------------------------------------------- TF reference


def _compare(N, g, offset, size, outer, set_phi=False, phase=False):
    tf_reference = pytest.importorskip("ptyfast.tf_reference")
    yy = _stack(2, size, seed=N + g)
    yp = 0.5 * _stack(2, size, seed=7) if phase else None
    probe = get_default_probe(N).astype(np.complex64) * np.exp(1j * np.linspace(0, 1, N))[None, :]
    kw = dict(N=N, gridsize=g, offset=offset, nphotons=1e9, poisson=False)
    rust = diffsim.mk_simdata(
        2, size, probe, outer, YY_I=yy, YY_phi=yp, dict_fmt=True, set_phi=set_phi, **kw
    )
    ref = tf_reference.mk_simdata(yy, yp, probe, outer, set_phi=set_phi, **kw)
    scale = float(np.max(ref["X"]))
    np.testing.assert_allclose(rust["X"], ref["X"], atol=2e-5 * scale)
    np.testing.assert_allclose(rust["Y_I"], ref["Y_I"], atol=2e-5 * float(np.max(ref["Y_I"])))
    np.testing.assert_allclose(
        rust["Y_phi"], ref["Y_phi"], atol=2e-5 * max(1.0, float(np.max(np.abs(ref["Y_phi"]))))
    )
    assert float(rust["intensity_scale"]) == pytest.approx(float(ref["intensity_scale"]), rel=1e-5)
    assert float(rust["norm_Y_I"]) == pytest.approx(float(ref["norm_Y_I"]), rel=1e-6)
    np.testing.assert_array_equal(rust["coords"][0], ref["coords"][0])


@pytest.mark.tf
@pytest.mark.parametrize(
    "N, g, offset, size, outer",
    [
        (32, 1, 4, 64, 8),
        (32, 2, 4, 64, 8),
        (64, 2, 4, 100, 16),
        (32, 3, 2, 60, 12),
        (32, 2, 6, 70, 10),
        (128, 2, 4, 150, 20),
    ],
)
def test_equals_tf_reference_noise_free(N, g, offset, size, outer):
    _compare(N, g, offset, size, outer)


@pytest.mark.tf
def test_equals_tf_reference_with_phase():
    _compare(32, 2, 4, 64, 8, phase=True)
    _compare(32, 2, 4, 64, 8, set_phi=True)


@pytest.mark.tf
def test_noisy_outputs_agree_with_tf_reference_in_distribution():
    tf_reference = pytest.importorskip("ptyfast.tf_reference")
    from scipy import stats

    yy = _stack(1, 96, seed=5)
    probe = get_default_probe(32)
    kw = dict(N=32, gridsize=2, offset=4, nphotons=1e6)
    rust = diffsim.mk_simdata(1, 96, probe, 8, YY_I=yy, dict_fmt=True, seed=1, **kw)
    ref = tf_reference.mk_simdata(yy, None, probe, 8, seed=1, **kw)
    clean = tf_reference.mk_simdata(yy, None, probe, 8, poisson=False, **kw)
    s = float(clean["intensity_scale"])
    rate = (clean["X"].astype(np.float64) * s) ** 2
    for d in (rust, ref):
        counts = (d["X"].astype(np.float64) * s) ** 2
        # per-pixel standardized residuals over pixels with a usable rate: mean 0, variance 1
        m = rate > 20
        z = (counts[m] - rate[m]) / np.sqrt(rate[m])
        assert abs(z.mean()) < 5 / np.sqrt(m.sum())
        assert z.var() == pytest.approx(1.0, abs=0.05)
    # the two samplers' counts are indistinguishable (two-sample KS on the standardized residuals)
    m = rate > 20
    zr = ((rust["X"].astype(np.float64) * s) ** 2 - rate)[m] / np.sqrt(rate[m])
    zt = ((ref["X"].astype(np.float64) * s) ** 2 - rate)[m] / np.sqrt(rate[m])
    assert stats.ks_2samp(zr, zt).pvalue > 1e-4


def test_jittered_patches_sample_the_object_at_the_jittered_positions():
    from _reference import bilinear_patches

    yy = _stack(1, 80, seed=9)
    probe = get_default_probe(32)
    d = diffsim.mk_simdata(
        1, 80, probe, 16, dict_fmt=True, YY_I=yy, jitter_scale=1.5, **_grid(poisson=False)
    )
    nominal, true = d["coords"]
    # a larger offset samples closer to the region origin: position = patch centre − jitter
    centres = diffsim.grid_positions(80, 16, N=32, gridsize=2, offset=4)  # (G1², C, 2)
    jitter = np.moveaxis((true - nominal)[:, 0], 1, 2)  # (B, C, 2)
    pos = (centres - jitter).reshape(-1, 2)
    expected = bilinear_patches(yy[0, :, :, 0], pos, 32).real / d["norm_Y_I"]
    got = d["I_pre_probe"][..., 0]
    np.testing.assert_allclose(got, expected, atol=2e-5 * expected.max())


def test_outer_offset_and_gridsize_errors():
    probe = get_default_probe(32)
    with pytest.raises(ValueError, match="outer_offset"):
        diffsim.mk_simdata(1, 80, probe, 1, **_grid())
    flat = np.ones((6, 32, 32, 1), np.float32)
    with pytest.raises(ValueError, match="gridsize"):
        diffsim.illuminate_and_diffract(flat, flat, probe, gridsize=2, nphotons=1e9)


def test_grid_kernels_reject_bad_input():
    from ptyfast import _kernels

    a = np.ones((2, 8, 8, 4), np.float32)
    with pytest.raises(ValueError, match="Y_phi"):
        _kernels.illuminate_groups(a, a[:1], np.ones((8, 8)), 1.0)
    with pytest.raises(ValueError, match="probe"):
        _kernels.illuminate_groups(a, a, np.ones((4, 4)), 1.0)
    with pytest.raises(ValueError, match="scale"):
        _kernels.illuminate_groups(a, a, np.ones((8, 8)), 0.0)
    with pytest.raises(ValueError, match="multiple of C"):
        _kernels.extract_grid_patches(np.ones((20, 20)), np.ones((5, 2)), 8, 4)


def test_grid_output_does_not_depend_on_thread_count(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, sys; from ptyfast import diffsim; "
        "from ptyfast.probe import get_default_probe; "
        "yy = 1 + np.random.default_rng(0).random((1, 64, 64, 1)); "
        "X, *_ = diffsim.mk_simdata(1, 64, get_default_probe(32), 8, YY_I=yy, N=32, "
        "gridsize=2, offset=4, nphotons=1e6, seed=5); np.save(sys.argv[1], X)"
    )
    outs = []
    for threads in ("1", "2"):
        path = tmp_path / f"x{threads}.npy"
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
        outs.append(np.load(path))
    assert outs[0].tobytes() == outs[1].tobytes()


def test_grid_kernels_out_buffers_and_overwrite():
    from ptyfast import _kernels

    img = (1 + np.random.default_rng(1).random((40, 40))).astype(np.complex64)
    pos = np.random.default_rng(2).uniform(10, 30, (6, 2))
    re, im = _kernels.extract_grid_patches(img, pos, 8, 2)
    out = (np.empty_like(re), np.empty_like(im))
    assert _kernels.extract_grid_patches(img, pos, 8, 2, out=out) is out
    np.testing.assert_array_equal(out[0], re)
    with pytest.raises(ValueError, match="out"):
        _kernels.extract_grid_patches(img, pos, 8, 2, out=(re[:1], im))
    probe = get_default_probe(8)
    keep = re.copy()
    x, post = _kernels.illuminate_groups(re, im, probe, 2.0, poisson=False)
    np.testing.assert_array_equal(re, keep)  # not modified by default
    x2, post2 = _kernels.illuminate_groups(
        re, im, probe, 2.0, poisson=False, overwrite_amplitude=True
    )
    assert post2 is re
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(post2, post)


def test_absent_phase_equals_zero_phase():
    from ptyfast import _kernels

    rng = np.random.default_rng(3)
    img = (1 + rng.random((40, 40))).astype(np.complex64)
    pos = rng.uniform(10, 30, (8, 2))
    re, im = _kernels.extract_grid_patches(img, pos, 8, 2)
    np.testing.assert_array_equal(im, 0)
    only_re = np.full_like(re, np.nan)
    out = _kernels.extract_grid_patches(img, pos, 8, 2, out=(only_re, None))
    assert out[0] is only_re and out[1] is None
    np.testing.assert_array_equal(only_re, re)
    probe = get_default_probe(8)
    for poisson in (False, True):
        kw = dict(poisson=poisson, seed=4)
        x0, post0 = _kernels.illuminate_groups(re, np.zeros_like(re), probe, 30.0, **kw)
        x1, post1 = _kernels.illuminate_groups(re, None, probe, 30.0, **kw)
        np.testing.assert_array_equal(x1, x0)
        np.testing.assert_array_equal(post1, post0)


_SIMD_CHILD = """
import hashlib, sys
import numpy as np
from ptyfast import _kernels, diffsim
from ptyfast.probe import get_default_probe
h = hashlib.sha256()
yy = 1 + np.random.default_rng(0).random((1, 90, 90, 1))
for phi in (None, 0.3 * np.random.default_rng(1).random((1, 90, 90, 1))):
    X, Y_I, Y_phi, _ = diffsim.mk_simdata(1, 90, get_default_probe(32), 8, YY_I=yy, YY_phi=phi,
        N=32, gridsize=2, offset=4, nphotons=1e9, seed=5)
    for a in (X, Y_I, Y_phi):
        h.update(a.tobytes())
a = (10 ** np.random.default_rng(2).uniform(-3, 8, size=(40, 64, 64))).astype(np.float32)
h.update(_kernels.observe_amplitudes(a, seed=9).tobytes())
# the fused path, both object orientations (small and large object), with patches
rng = np.random.default_rng(3)
for size in (40, 400):
    obj = (rng.random((size, size)) * np.exp(1j * rng.random((size, size)))).astype(np.complex64)
    pos = rng.uniform(-3, size + 3, (30, 2))
    x, p = _kernels.simulate(obj, pos, get_default_probe(16), scale=50.0, seed=1,
                             divide_by_scale=True, return_patches=True)
    h.update(x.tobytes())
    h.update(p.tobytes())
    h.update(_kernels.diffract(p, get_default_probe(16), 50.0).tobytes())
print(_kernels.simd_level(), h.hexdigest())
"""


def test_instruction_set_levels_give_identical_results():
    """Every SIMD level the machine supports (PTYFAST_SIMD caps it) gives the same bits."""
    seen = digests_per_level(_SIMD_CHILD)
    assert "baseline" in seen
    assert len(set(seen.values())) == 1, seen


def test_dict_outputs_without_phase_are_zero_and_consistent():
    probe = get_default_probe(32)
    yy = 1 + np.random.default_rng(7).random((1, 80, 80, 1))
    d = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, YY_I=yy, **_grid(poisson=False))
    B, C = d["X"].shape[0], d["X"].shape[-1]
    assert d["Y_phi"].shape == d["X"].shape and d["Y_phi"].dtype == np.float32
    assert d["phi_pre_probe"].shape == (B * C, 32, 32, 1)
    assert not d["Y_phi"].any() and not d["phi_pre_probe"].any()
    assert d["Y_phi"].flags.writeable and d["phi_pre_probe"].flags.writeable
    # an explicit zero phase takes the other path and gives the same bits
    e = diffsim.mk_simdata(
        1, 80, probe, 16, dict_fmt=True, YY_I=yy, YY_phi=np.zeros_like(yy), **_grid(poisson=False)
    )
    for key in ("X", "Y_I", "Y_phi", "I_pre_probe", "phi_pre_probe"):
        np.testing.assert_array_equal(d[key], e[key], err_msg=key)


# ------------------------------------------------------- mk_simdata's fused passes (issue 13)


def _channel_to_flat(a):
    """Channel format ``(B, N, N, C)`` to the flat ``(B*C, N, N, 1)`` stack (pattern b*C + c)."""
    b, n1, n2, c = a.shape
    return np.moveaxis(a, 3, 1).reshape(b * c, n1, n2, 1)


def _sequential_energies(amp, probe):
    """Per-pattern ``sum (a*a)*|p|**2`` summed left to right in float64 (``cumsum`` is
    sequential), flat order ``b*C + c``: the order the energy pass documents."""
    B, N, _, C = amp.shape
    p2 = (probe.real * probe.real + probe.imag * probe.imag).astype(np.float32)
    a = np.moveaxis(amp, 3, 1).reshape(B * C, N * N).astype(np.float64)
    terms = a * a * p2.reshape(1, -1).astype(np.float64)
    return np.cumsum(terms, axis=1)[:, -1]


@pytest.mark.parametrize("C", [1, 2, 4, 9])
def test_energy_passes_are_sequential_sums_bit_for_bit(C):
    from ptyfast import _kernels

    rng = np.random.default_rng(C)
    B, N = 7, 12  # 7 groups: one step of four groups side by side, then three one at a time
    amp = (rng.random((B, N, N, C)) * 3).astype(np.float32)
    probe = (rng.random((N, N)) * np.exp(1j * rng.random((N, N)))).astype(np.complex64)
    want = _sequential_energies(amp, probe)
    got = _kernels.channel_energies(amp, probe)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("phase", [False, True])
@pytest.mark.parametrize("given_scale", [False, True])
def test_mk_simdata_equals_its_steps(phase, given_scale):
    """The fused passes (maxima during extraction, division with the energy pass) give the
    bits of the separate steps: extraction, row maxima, division, sequential energies, scale,
    illumination."""
    from ptyfast import _kernels
    from ptyfast.intensity import simulation_scale

    rng = np.random.default_rng(11)
    yy = 0.5 + rng.random((2, 90, 90, 1))
    phi = 0.4 * rng.random((2, 90, 90, 1)) if phase else None
    probe = get_default_probe(32)
    kw = _grid(YY_I=yy, YY_phi=phi, seed=8, nphotons=1e7)
    if given_scale:
        kw["intensity_scale"] = 123.5
    d = diffsim.mk_simdata(2, 90, probe, 16, dict_fmt=True, **kw)
    B, N, C = d["X"].shape[0], 32, 4
    pos = diffsim.grid_positions(90, 16, N=N, gridsize=2, offset=4)
    pos = np.broadcast_to(pos, (2,) + pos.shape).reshape(-1, 2)
    parts = []
    for k in range(2):
        img = (yy[k, :, :, 0] + 1j * (0 if phi is None else phi[k, :, :, 0])).astype(np.complex64)
        parts.append(
            _kernels.extract_grid_patches(img, pos[k * B // 2 * C : (k + 1) * B // 2 * C], N, C)
        )
    yi = np.concatenate([p[0] for p in parts])
    yphi = np.concatenate([p[1] for p in parts])
    norm = np.float32(yi.reshape(B, -1).max(axis=1).mean(dtype=np.float64))
    assert d["norm_Y_I"] == norm
    yi = yi / norm
    np.testing.assert_array_equal(_channel_to_flat(yi), d["I_pre_probe"])
    s = (
        np.float32(123.5)
        if given_scale
        else simulation_scale(_sequential_energies(yi, probe.astype(np.complex64)), 1e7)
    )
    assert d["intensity_scale"] == s
    x, post = _kernels.illuminate_groups(yi, yphi if phase else None, probe, s, seed=8)
    np.testing.assert_array_equal(d["X"], x)
    np.testing.assert_array_equal(d["Y_I"], post)
    np.testing.assert_array_equal(d["Y_phi"], yphi if phase else 0)


def test_mk_simdata_into_an_earlier_result():
    probe = get_default_probe(32)
    rng = np.random.default_rng(12)
    yy, phi = 1 + rng.random((1, 80, 80, 1)), 0.3 * rng.random((1, 80, 80, 1))
    fresh = diffsim.mk_simdata(1, 80, probe, 16, YY_I=yy, YY_phi=phi, **_grid())
    prev = diffsim.mk_simdata(1, 80, probe, 16, YY_I=2 * yy, YY_phi=phi, **_grid(seed=9))
    again = diffsim.mk_simdata(1, 80, probe, 16, YY_I=yy, YY_phi=phi, out=prev, **_grid())
    for a, b, c in zip(again[:3], prev[:3], fresh[:3], strict=True):
        assert a is b  # the earlier result's arrays, overwritten
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(again[3], fresh[3])
    # a dict result, and a call without phase into buffers that held one: Y_phi is zeroed
    d = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, YY_I=yy, YY_phi=phi, **_grid())
    nophase = diffsim.mk_simdata(1, 80, probe, 16, YY_I=yy, **_grid())
    e = diffsim.mk_simdata(1, 80, probe, 16, dict_fmt=True, YY_I=yy, out=d, **_grid())
    assert e["X"] is d["X"] and e["Y_phi"] is d["Y_phi"]
    for k, ref in zip(("X", "Y_I", "Y_phi"), nophase[:3], strict=True):
        np.testing.assert_array_equal(e[k], ref, err_msg=k)


def test_mk_simdata_rejects_a_bad_out_before_work():
    probe = get_default_probe(32)
    yy = 1 + np.random.default_rng(13).random((1, 80, 80, 1))
    X, Y_I, Y_phi, coords = diffsim.mk_simdata(1, 80, probe, 16, YY_I=yy, **_grid())
    keep = [a.copy() for a in (X, Y_I, Y_phi)]
    ro = X.copy()
    ro.flags.writeable = False
    cases = [
        ((X[:-1], Y_I, Y_phi), ValueError, "out X"),
        ((X, Y_I.astype(np.float64), Y_phi), ValueError, "out Y_I"),
        ((X, Y_I, np.asfortranarray(Y_phi)), ValueError, "out Y_phi"),
        ((ro, Y_I, Y_phi), ValueError, "out X"),
        ((X, X, Y_phi), ValueError, "share memory"),
        ({"X": X, "Y_I": Y_I}, ValueError, "Y_phi"),
        (X, TypeError, "earlier mk_simdata result"),
        ((X, [1.0], Y_phi), TypeError, "out Y_I"),
    ]
    for out, err, match in cases:
        with pytest.raises(err, match=match):
            diffsim.mk_simdata(1, 80, probe, 16, YY_I=yy, out=out, **_grid())
    for a, k in zip((X, Y_I, Y_phi), keep, strict=True):
        np.testing.assert_array_equal(a, k)  # untouched by the rejected calls


def test_illuminate_groups_into_out():
    from ptyfast import _kernels

    rng = np.random.default_rng(14)
    re = (1 + rng.random((3, 8, 8, 4))).astype(np.float32)
    im = rng.random((3, 8, 8, 4)).astype(np.float32)
    probe = get_default_probe(8)
    x, post = _kernels.illuminate_groups(re, im, probe, 20.0, seed=2)
    out = np.full_like(re, np.nan)
    x2, post2 = _kernels.illuminate_groups(re, im, probe, 20.0, seed=2, out=out)
    assert x2 is out
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(post2, post)
    for bad in (out[:2], out.astype(np.float64), re, im):
        with pytest.raises(ValueError, match="out"):
            _kernels.illuminate_groups(re, im, probe, 20.0, seed=2, out=bad)
    with pytest.raises(TypeError, match="out"):
        _kernels.illuminate_groups(re, im, probe, 20.0, seed=2, out=[0.0])


@pytest.mark.parametrize("C", [1, 2, 4, 9])
@pytest.mark.parametrize("phase", [False, True])
def test_fused_grid_kernel_equals_the_separate_steps(C, phase):
    """The grid kernel's passes (maxima, energies, the fused sampling + illumination) against
    the separate steps they replace, bit for bit: three objects, positions partly outside the
    objects (the edge path), group counts that leave partial work items."""
    from ptyfast import _kernels

    rng = np.random.default_rng(C)
    K, H, W, N, per_obj = 3, 41, 37, 16, 7
    amp = (0.2 + rng.random((K, H, W))).astype(np.float32)
    ph = (rng.uniform(-1, 1, (K, H, W)) if phase else np.zeros((K, H, W))).astype(np.float32)
    images = (amp + 1j * ph).astype(np.complex64)
    B = K * per_obj
    pos = rng.uniform(-6.0, 45.0, (B * C, 2))
    probe = get_default_probe(N).astype(np.complex64)
    # The steps: extraction per object, row maxima, division, energies, illumination.
    parts = [
        _kernels.extract_grid_patches(images[k], pos[k * per_obj * C : (k + 1) * per_obj * C], N, C)
        for k in range(K)
    ]
    yi = np.concatenate([p[0] for p in parts])
    yphi = np.concatenate([p[1] for p in parts])
    maxima = yi.reshape(B, -1).max(axis=1)
    divisor = np.float32(maxima.mean(dtype=np.float64))
    yi /= divisor
    energies = _sequential_energies(yi, probe)
    x, post = _kernels.illuminate_groups(yi, yphi if phase else None, probe, 7.5, seed=5)
    # The kernel's passes.
    np.testing.assert_array_equal(_kernels.grid_maxima(images, pos, N, C), maxima)
    got = _kernels.grid_energies(images, pos, N, C, probe, divisor)
    assert got.dtype == np.float64 and got.tobytes() == energies.tobytes()
    X, Y_I, Y_phi, pre_i, pre_phi = _kernels.simulate_grid(
        images, pos, N, C, probe, divisor, 7.5, with_phase=phase, seed=5, pre_probe=True
    )
    np.testing.assert_array_equal(X, x)
    np.testing.assert_array_equal(Y_I, post)
    np.testing.assert_array_equal(pre_i, _channel_to_flat(yi))
    if phase:
        np.testing.assert_array_equal(Y_phi, yphi)
        np.testing.assert_array_equal(pre_phi, _channel_to_flat(yphi))
    else:
        assert Y_phi is None and pre_phi is None
    # Into reused buffers (filled with garbage first): the same bits.
    outs = tuple(np.full_like(X, np.nan) for _ in range(3))
    outs = outs if phase else outs[:2] + (None,)
    again = _kernels.simulate_grid(
        images, pos, N, C, probe, divisor, 7.5, with_phase=phase, seed=5, out=outs
    )
    assert again[0] is outs[0] and again[1] is outs[1]
    np.testing.assert_array_equal(again[0], x)
    np.testing.assert_array_equal(again[1], post)


def test_fused_grid_kernel_rejects_bad_arguments():
    from ptyfast import _kernels

    images = np.ones((2, 30, 30), np.complex64)
    pos = np.full((2 * 3 * 4, 2), 10.0)
    probe = get_default_probe(8)
    before = images.copy()
    cases = [
        (lambda: _kernels.grid_maxima(images[0], pos, 8, 4), "images must"),
        (lambda: _kernels.grid_maxima(images, pos[:20], 8, 4), "B\\*C rows"),
        (lambda: _kernels.grid_maxima(images, pos[:12], 8, 4), "multiple of the 2 images"),
        (lambda: _kernels.grid_maxima(images, pos, 1, 4), "N must be >= 2"),
        (lambda: _kernels.grid_energies(images, pos, 8, 4, probe, 0.0), "divisor must"),
        (lambda: _kernels.grid_energies(images, pos, 8, 4, probe, 1e39), "divisor must"),
        (lambda: _kernels.grid_energies(images, pos, 8, 4, probe[:4, :4], 1.0), "probe must"),
        (lambda: _kernels.simulate_grid(images, pos, 8, 4, probe, 1.0, -1.0), "scale must"),
        (
            lambda: _kernels.simulate_grid(
                images, pos, 8, 4, probe, 1.0, 1.0, out=(np.zeros((6, 8, 8, 4), np.float32),)
            ),
            "out must be a tuple",
        ),
        (
            lambda: _kernels.simulate_grid(
                images, pos, 8, 4, probe, 1.0, 1.0, out=(np.zeros((6, 8, 8, 4), np.float32),) * 3
            ),
            "must not share memory",
        ),
        (
            lambda: _kernels.simulate_grid(
                images,
                pos,
                8,
                4,
                probe,
                1.0,
                1.0,
                with_phase=False,
                out=tuple(np.zeros((6, 8, 8, 4), np.float32) for _ in range(3)),
            ),
            "None without one",
        ),
        (
            lambda: _kernels.simulate_grid(
                images,
                pos,
                8,
                4,
                probe,
                1.0,
                1.0,
                out=tuple(np.zeros((6, 8, 8, 1), np.float32) for _ in range(3)),
            ),
            "out X must be",
        ),
        (lambda: _kernels.simulate_grid(images, pos, 8, 4, probe, 1.0, 1e30), "scale"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    bad = images.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="images"):
        _kernels.simulate_grid(bad, pos, 8, 4, probe, 1.0, 1.0)
    np.testing.assert_array_equal(images, before)

"""ptyfast.loader: PtychoDataContainer, load and the guide's construction examples."""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import sys
import types

import numpy as np
import pytest
from _loader_sim import grouped_dict, install_params, simulate, to_channels

from ptyfast import loader
from ptyfast.loader import (
    PtychoDataContainer,
    calculate_intensity_scale,
    compute_dataset_intensity_stats,
    load,
    scale_nphotons,
)

CLOSED_64 = math.sqrt(1e9) / 32
# the reference's to_npz keys, in its order
NPZ_KEYS = (
    "X",
    "Y_I",
    "Y_phi",
    "norm_Y_I",
    "YY_full",
    "coords_nominal",
    "coords_true",
    "nn_indices",
    "global_offsets",
    "local_offsets",
    "probe",
)


def make_container(B=6, N=16, C=4, *, stats=True, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((B, N, N, C), dtype=np.float32) + 0.1
    return PtychoDataContainer(
        X=X,
        Y_I=rng.random((B, N, N, C), dtype=np.float32),
        Y_phi=rng.random((B, N, N, C)) * 2 - 1,
        norm_Y_I=1.0,
        YY_full=None,
        coords_nominal=rng.random((B, 1, 2, C)) * 4 - 2,
        coords_true=rng.random((B, 1, 2, C)),
        nn_indices=np.arange(B * C, dtype=np.int32).reshape(B, C),
        global_offsets=rng.random((B, 1, 2, 1)) * 100,
        local_offsets=rng.random((B, 1, 2, C)),
        probeGuess=np.ones((N, N), dtype=np.complex128),
        dataset_intensity_stats=compute_dataset_intensity_stats(X) if stats else None,
    )


@pytest.fixture
def sim64():
    """32 noise-free patterns, N = 64, 1e9 photons, with ground truth."""
    return simulate(32, 64, 1e9, seed=5)


def grouped(sim, C, **kw):
    X, s, patches, probe, x, y = sim
    groups = np.random.default_rng(1).permutation(len(X)).reshape(-1, C)
    return grouped_dict(X, x, y, groups, Y=patches, **kw)


# --------------------------------------------------------------------------- the guide's examples


def test_guide_4_3_direct_construction_verbatim():
    # Guide §4.3, "Direct PtychoDataContainer Construction", with ptycho → ptyfast.
    from ptyfast.loader import PtychoDataContainer, compute_dataset_intensity_stats

    B, N, C = 1000, 64, 4  # batch, patch size, channels (gridsize²)

    # Create diffraction data
    X = np.random.rand(B, N, N, C).astype(np.float32) + 0.1  # noqa: NPY002

    # REQUIRED: Compute dataset intensity stats from raw diffraction arrays
    # This enables the dataset-derived intensity_scale formula instead of fallback
    dataset_stats = compute_dataset_intensity_stats(X, is_normalized=False)
    # Or if data is already normalized, pass the recorded intensity_scale:
    # dataset_stats = compute_dataset_intensity_stats(X, intensity_scale=recorded_scale, is_normalized=True)  # noqa: E501

    # Direct construction with all required arrays
    container = PtychoDataContainer(
        X=X,
        Y_I=np.random.rand(B, N, N, C).astype(np.float32),  # noqa: NPY002
        Y_phi=np.random.rand(B, N, N, C).astype(np.float32),  # noqa: NPY002
        norm_Y_I=1.0,
        YY_full=None,
        coords_nominal=np.random.rand(B, 1, 2, C).astype(np.float32),  # noqa: NPY002
        coords_true=np.random.rand(B, 1, 2, C).astype(np.float32),  # noqa: NPY002
        nn_indices=np.zeros((B, C), dtype=np.int32),
        global_offsets=np.random.rand(B, 1, 2, C),  # noqa: NPY002
        local_offsets=np.zeros((B, 1, 2, C)),
        probeGuess=np.ones((N, N), dtype=np.complex64),
        dataset_intensity_stats=dataset_stats,  # Required for correct intensity_scale
    )

    assert len(container) == B
    assert container.dataset_intensity_stats is not None
    e = dataset_stats["batch_mean_sum_intensity"]
    assert calculate_intensity_scale(container, nphotons=1e9) == pytest.approx(math.sqrt(1e9 / e))


def test_guide_grid_direct_construction(monkeypatch):
    # Guide "Grid-Based Pipeline → Direct Container Construction", with ptycho → ptyfast.
    pytest.importorskip("ptyfast.diffsim")
    tf = pytest.importorskip("tensorflow")
    install_params(monkeypatch, 1e9)
    Xf, intensity_scale, patches, probeGuess, *_ = simulate(16, 32, 1e9)
    X = to_channels(Xf, 4)
    Y_I, Y_phi = to_channels(np.abs(patches), 4), to_channels(np.angle(patches), 4)
    coords = np.zeros((4, 1, 2, 4), np.float32)

    from ptyfast.diffsim import scale_nphotons
    from ptyfast.loader import PtychoDataContainer, compute_dataset_intensity_stats

    dataset_stats = compute_dataset_intensity_stats(
        X, intensity_scale=intensity_scale, is_normalized=True
    )
    container = PtychoDataContainer(
        X=X,
        Y_I=Y_I,
        Y_phi=Y_phi,
        norm_Y_I=scale_nphotons(tf.convert_to_tensor(X)),
        YY_full=None,
        coords_nominal=coords,
        coords_true=coords,
        nn_indices=None,
        global_offsets=None,
        local_offsets=None,
        probeGuess=probeGuess,
        dataset_intensity_stats=dataset_stats,  # Required for correct intensity_scale
    )
    assert len(container) == 4
    # the guide's statistics give back the simulation's scale (COMPATIBILITY.md)
    assert calculate_intensity_scale(container, nphotons=1e9) == pytest.approx(
        intensity_scale, rel=1e-6
    )


# --------------------------------------------------------------------------- container


def test_container_properties_dtypes_and_shapes():
    c = make_container()
    B, N, C = 6, 16, 4
    for name in ("X", "Y_I", "Y_phi"):
        a = getattr(c, name)
        assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (B, N, N, C)
    assert c.Y.dtype == np.complex64 and c.Y.shape == (B, N, N, C)
    np.testing.assert_allclose(c.Y, c.Y_I * np.exp(1j * c.Y_phi), rtol=1e-6, atol=1e-7)
    assert c.coords_nominal.dtype == np.float32 and c.coords_nominal.shape == (B, 1, 2, C)
    assert c.coords is c.coords_nominal
    assert c.coords_true.dtype == np.float32
    assert c.probe.dtype == np.complex64 and c.probe.shape == (N, N)
    assert c.probeGuess.dtype == np.complex128  # plain attribute, as given
    assert c.X is c.X  # cached
    assert len(c) == B
    assert c.nn_indices.dtype == np.int32
    assert c.global_offsets.shape == (B, 1, 2, 1)


def test_container_accepts_tf_tensors():
    tf = pytest.importorskip("tensorflow")
    ref = make_container()
    c = PtychoDataContainer(
        tf.constant(ref.X),
        tf.constant(ref.Y_I),
        tf.constant(ref.Y_phi),
        tf.constant(np.float32(988.2)),
        None,
        tf.constant(ref.coords_nominal),
        tf.constant(ref.coords_true),
        tf.constant(ref.nn_indices),
        tf.constant(ref.global_offsets),
        tf.constant(ref.local_offsets),
        tf.constant(ref.probe),
    )
    np.testing.assert_array_equal(c.X, ref.X)
    np.testing.assert_array_equal(c.Y, ref.Y)
    np.testing.assert_array_equal(c.probe, ref.probe)
    for name in ("norm_Y_I", "nn_indices", "global_offsets", "local_offsets"):
        assert not tf.is_tensor(getattr(c, name))
    assert c.norm_Y_I == np.float32(988.2)
    assert c.dataset_intensity_stats is None


def test_container_validation():
    c = make_container()
    with pytest.raises(ValueError, match="Y_I must have the shape of X"):
        PtychoDataContainer(c.X, c.Y_I[:2], c.Y_phi, 1.0, None, None, None, None, None, None, None)
    with pytest.raises(ValueError, match="X must be"):
        PtychoDataContainer(None, None, None, 1.0, None, None, None, None, None, None, None)
    with pytest.raises(TypeError, match="dataset_intensity_stats"):
        PtychoDataContainer(c.X, None, None, 1.0, None, None, None, None, None, None, None, 3.0)


def test_container_repr_does_not_print(capsys):
    text = repr(make_container())
    assert capsys.readouterr() == ("", "")
    assert text.startswith("<PtychoDataContainer X=(6, 16, 16, 4)")
    assert "norm_Y_I=1" in text and "batch_mean_sum_intensity=" in text


def test_container_does_not_modify_inputs():
    rng = np.random.default_rng(0)
    args = dict(
        X=rng.random((3, 8, 8, 1)),
        Y_I=rng.random((3, 8, 8, 1)),
        Y_phi=rng.random((3, 8, 8, 1)),
        norm_Y_I=1.0,
        YY_full=None,
        coords_nominal=rng.random((3, 1, 2, 1)),
        coords_true=rng.random((3, 1, 2, 1)),
        nn_indices=None,
        global_offsets=None,
        local_offsets=None,
        probeGuess=rng.random((8, 8)) + 0j,
    )
    before = copy.deepcopy(args)
    c = PtychoDataContainer(**args)
    c.X, c.Y, c.coords, c.coords_true, c.probe, repr(c)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(args[k], v)
            assert args[k].dtype == v.dtype and args[k].flags.writeable


# --------------------------------------------------------------------------- load


@pytest.mark.parametrize("C", [1, 4])
def test_load_builds_the_reference_container(sim64, C):
    dset = grouped(sim64, C, start_shift=0.25)
    c = load(lambda: dset, sim64[3], which=None, create_split=False, nphotons=1e9)
    B = 32 // C
    assert len(c) == B
    assert c._X_np.dtype == np.float32
    np.testing.assert_array_equal(c.X, dset["X_full"])
    np.testing.assert_array_equal(
        c.coords_nominal, dset["coords_start_relative"].astype(np.float32)
    )
    np.testing.assert_array_equal(c.coords_true, c.coords_nominal)
    assert c.global_offsets is dset["coords_offsets"]
    assert c.local_offsets is dset["coords_relative"]
    assert c.nn_indices is dset["nn_indices"]
    assert c.YY_full is None
    np.testing.assert_array_equal(c.Y_I, np.abs(dset["Y"]).astype(np.float32))
    np.testing.assert_array_equal(c.Y_phi, np.angle(dset["Y"]).astype(np.float32))
    # norm_Y_I is scale_nphotons of the normalised X: the closed form
    assert isinstance(c.norm_Y_I, np.float32)
    assert float(c.norm_Y_I) == pytest.approx(CLOSED_64, rel=1e-6)
    assert c.norm_Y_I == scale_nphotons(c.X, nphotons=1e9)


@pytest.mark.parametrize("C", [1, 4])
def test_load_attaches_raw_statistics_that_recover_s(sim64, C):
    dset = grouped(sim64, C)
    c = load(lambda: dset, sim64[3], nphotons=1e9)
    assert c.dataset_intensity_stats == compute_dataset_intensity_stats(dset["diffraction"])
    assert calculate_intensity_scale(c, nphotons=1e9) == pytest.approx(sim64[1], rel=1e-6)
    # statistics of X_full itself would only give the closed form
    x_full_stats = compute_dataset_intensity_stats(c.X)
    assert calculate_intensity_scale(x_full_stats, nphotons=1e9) == pytest.approx(
        CLOSED_64, rel=1e-6
    )


def test_load_without_diffraction_key_falls_back(sim64):
    dset = grouped(sim64, 1)
    del dset["diffraction"]
    c = load(lambda: dset, sim64[3], nphotons=1e9)
    assert c.dataset_intensity_stats is None
    assert calculate_intensity_scale(c, nphotons=1e9) == pytest.approx(CLOSED_64, rel=1e-12)


def test_guide_grouping_step_load_call(sim64, monkeypatch):
    # Guide "Grouping Step": nphotons comes from the legacy params default.
    install_params(monkeypatch, 1e9)
    grouped_data, probeGuess = grouped(sim64, 1), sim64[3]
    from ptyfast.loader import load

    container = load(lambda: grouped_data, probeGuess, which=None, create_split=False)
    c = container
    assert float(c.norm_Y_I) == pytest.approx(CLOSED_64, rel=1e-6)


def test_load_y_none_gives_ones_and_zeros(sim64, caplog):
    dset = grouped(sim64, 4)
    dset["Y"] = None
    with caplog.at_level(logging.INFO, logger="ptyfast.loader"):
        c = load(lambda: dset, sim64[3], nphotons=1e9)
    assert any("Y_I = 1" in r.message and r.levelno == logging.INFO for r in caplog.records)
    assert c.Y_I.dtype == np.float32 and c.Y_phi.dtype == np.float32
    np.testing.assert_array_equal(c.Y_I, np.ones(c.X.shape, np.float32))
    np.testing.assert_array_equal(c.Y_phi, np.zeros(c.X.shape, np.float32))


def test_load_y_as_tf_tensor(sim64):
    tf = pytest.importorskip("tensorflow")
    dset = grouped(sim64, 4)
    Y = dset["Y"]
    dset["Y"] = tf.constant(Y)
    c = load(lambda: dset, tf.constant(sim64[3]), nphotons=1e9)
    np.testing.assert_array_equal(c.Y_I, np.abs(Y))
    assert c.probe.dtype == np.complex64


def test_load_channel_mismatch(sim64):
    dset = grouped(sim64, 4)
    dset["Y"] = dset["Y"][..., :1]
    with pytest.raises(ValueError, match=r"Channel mismatch between X \(4\) and Y \(1\)"):
        load(lambda: dset, sim64[3], nphotons=1e9)


@pytest.mark.parametrize("which", ["train", "test"])
def test_load_split(sim64, which):
    dset = grouped(sim64, 4)  # 8 groups
    frac = 0.75
    c = load(lambda: (dset, frac), sim64[3], which, True, nphotons=1e9)
    sl = slice(0, 6) if which == "train" else slice(6, 8)
    assert len(c) == len(range(8)[sl])
    np.testing.assert_array_equal(c.X, dset["X_full"][sl])
    np.testing.assert_array_equal(c.coords, dset["coords_start_relative"][sl].astype(np.float32))
    np.testing.assert_array_equal(c.Y_I, np.abs(dset["Y"][sl]))
    # every per-group array follows the split (the reference left these unsplit)
    np.testing.assert_array_equal(c.global_offsets, dset["coords_offsets"][sl])
    np.testing.assert_array_equal(c.local_offsets, dset["coords_relative"][sl])
    np.testing.assert_array_equal(c.nn_indices, dset["nn_indices"][sl])
    assert c.dataset_intensity_stats == compute_dataset_intensity_stats(dset["diffraction"][sl])
    assert c.norm_Y_I == scale_nphotons(dset["X_full"][sl], nphotons=1e9)


def test_load_split_errors(sim64):
    dset = grouped(sim64, 1)
    with pytest.raises(ValueError, match="must be 'train' or 'test'"):
        load(lambda: (dset, 0.5), sim64[3], "validation", True, nphotons=1e9)
    with pytest.raises(ValueError, match="must be 'train' or 'test'"):
        load(lambda: (dset, 0.5), sim64[3], None, True, nphotons=1e9)
    with pytest.raises(ValueError, match="train_frac"):
        load(lambda: (dset, 1.5), sim64[3], "train", True, nphotons=1e9)
    # without create_split, which is ignored, as in the reference
    assert len(load(lambda: dset, sim64[3], "validation", False, nphotons=1e9)) == 32


def test_split_helpers():
    a = np.arange(10)
    assert loader.split_data(a, a, a, 0.75, "train")[0].tolist() == list(range(7))
    assert loader.split_tensor(a, 0.75).tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="'train' or 'test'"):
        loader.split_data(a, a, a, 0.5, "both")


def test_load_does_not_modify_inputs(sim64):
    dset = grouped(sim64, 4)
    before = copy.deepcopy(dset)
    probe = sim64[3].copy()
    c = load(lambda: (dset, 0.5), probe, "test", True, nphotons=1e9)
    c.X, c.Y, c.coords, c.probe
    assert dset.keys() == before.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(dset[k], v)
            assert dset[k].dtype == v.dtype
    np.testing.assert_array_equal(probe, sim64[3])


# --------------------------------------------------------------------------- to_npz


def test_to_npz_round_trip(tmp_path):
    c = make_container()
    c.to_npz(tmp_path / "model_ready")
    assert sorted(os.listdir(tmp_path)) == ["model_ready.npz"]
    with np.load(tmp_path / "model_ready.npz", allow_pickle=False) as f:
        # None members (YY_full here) are left out: nothing is pickled
        present = [k for k in NPZ_KEYS if k != "YY_full"]
        assert list(f.keys()) == [*present, "dataset_intensity_stats"]
        np.testing.assert_array_equal(f["X"], c._X_np)
        np.testing.assert_array_equal(f["Y_I"], c._Y_I_np)
        np.testing.assert_array_equal(f["Y_phi"], c._Y_phi_np)
        np.testing.assert_array_equal(f["coords_nominal"], c._coords_nominal_np)
        np.testing.assert_array_equal(f["coords_true"], c._coords_true_np)
        np.testing.assert_array_equal(f["nn_indices"], c.nn_indices)
        np.testing.assert_array_equal(f["global_offsets"], c.global_offsets)
        np.testing.assert_array_equal(f["local_offsets"], c.local_offsets)
        np.testing.assert_array_equal(f["probe"], c.probeGuess)
        assert f["norm_Y_I"] == 1.0
        assert "YY_full" not in f.files
        assert json.loads(f["dataset_intensity_stats"].item()) == c.dataset_intensity_stats
    # arrays (all but the None entries) load without pickle
    with np.load(tmp_path / "model_ready.npz") as f:
        assert f["X"].dtype == np.float32


def test_to_npz_without_stats_writes_reference_keys(tmp_path):
    c = make_container(stats=False)
    c.to_npz(str(tmp_path / "a.npz"))
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert tuple(f.keys()) == tuple(k for k in NPZ_KEYS if k != "YY_full")
    buf = io.BytesIO()
    c.to_npz(buf)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["X"], c._X_np)
    assert "batch_mean_sum_intensity" not in repr(c)


def test_to_npz_is_atomic(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")
    c = make_container()
    c.local_offsets = {"not": "an array"}  # fails after the first members were written
    with pytest.raises(TypeError, match="local_offsets"):
        c.to_npz(target)
    assert sorted(os.listdir(tmp_path)) == ["out.npz"]
    assert target.read_bytes() == b"old"


# --------------------------------------------------------------------------- as_tf_dataset


def _shift_reference(img, x, y):
    from scipy import ndimage

    return ndimage.shift(img.astype(np.float64), (-y, -x), order=1, mode="grid-constant", cval=0.0)


@pytest.mark.tf
def test_as_tf_dataset_structure_and_values():
    tf = pytest.importorskip("tensorflow")
    c = make_container(B=7, N=16, C=4)
    s = 3.5
    ds = c.as_tf_dataset(3, shuffle=False, intensity_scale=s)
    assert isinstance(ds, tf.data.Dataset)
    spec = ds.element_spec
    assert [t.shape.as_list() for t in spec[0]] == [[None, 16, 16, 4], [None, 1, 2, 4]]
    assert [t.shape.as_list() for t in spec[1]] == [[None, 16, 16, 1], [None, 16, 16, 4]] + [
        [None, 16, 16, 4]
    ]
    assert all(t.dtype == tf.float32 for t in (*spec[0], *spec[1]))
    batches = list(ds)
    assert [len(b[0][0]) for b in batches] == [3, 3, 1]
    xs = np.concatenate([b[0][0].numpy() for b in batches])
    coords = np.concatenate([b[0][1].numpy() for b in batches])
    yc = np.concatenate([b[1][0].numpy() for b in batches])
    xs2 = np.concatenate([b[1][1].numpy() for b in batches])
    sq = np.concatenate([b[1][2].numpy() for b in batches])
    np.testing.assert_array_equal(xs, c.X * np.float32(s))
    np.testing.assert_array_equal(xs2, xs)
    np.testing.assert_array_equal(sq, xs * xs)
    np.testing.assert_array_equal(coords, c.coords)
    for b in range(7):
        x, y = c.coords[b, 0, 0, 0], c.coords[b, 0, 1, 0]
        np.testing.assert_allclose(
            yc[b, :, :, 0], _shift_reference(c.Y_I[b, :, :, 0], x, y), atol=2e-6
        )


def test_centre_translation_integer_and_subpixel():
    img = np.zeros((2, 8, 8), np.float32)
    img[:, 4, 4] = 1.0
    out = loader._translate_bilinear(img, np.array([1.0, 0.25]), np.array([-2.0, 0.5]))
    # integer shift: out[r, c] = img[r - 2, c + 1]
    assert out[0, 6, 3] == 1.0 and out[0].sum() == 1.0
    # sub-pixel: the delta spreads over four pixels with bilinear weights
    np.testing.assert_allclose(out[1, 3:5, 3:5], [[0.125, 0.375], [0.125, 0.375]])
    # zero offsets are the identity; a shift past the edge gives zeros
    np.testing.assert_array_equal(loader._translate_bilinear(img, np.zeros(2), np.zeros(2)), img)
    assert not loader._translate_bilinear(img, np.full(2, 9.0), np.zeros(2)).any()


@pytest.mark.tf
def test_as_tf_dataset_default_scale_and_shuffle(sim64):
    pytest.importorskip("tensorflow")
    dset = grouped(sim64, 4)
    c = load(lambda: dset, sim64[3], nphotons=1e9)
    ds = c.as_tf_dataset(3, seed=7, nphotons=1e9)
    first = np.concatenate([b[0][0].numpy() for b in ds])
    second = np.concatenate([b[0][0].numpy() for b in ds])
    s = np.float32(calculate_intensity_scale(c, nphotons=1e9))
    assert float(s) == pytest.approx(sim64[1], rel=1e-6)  # dataset-derived, not 988.21
    # every pass is a permutation of X·s, and passes differ
    key = lambda a: np.sort(a.reshape(len(a), -1)[:, 0])  # noqa: E731
    np.testing.assert_array_equal(key(first), key(c.X * s))
    assert not np.array_equal(first, second)
    again = np.concatenate([b[0][0].numpy() for b in c.as_tf_dataset(3, seed=7, nphotons=1e9)])
    np.testing.assert_array_equal(again, first)


@pytest.mark.tf
def test_as_tf_dataset_errors():
    pytest.importorskip("tensorflow")
    c = make_container()
    with pytest.raises(ValueError, match="batch_size"):
        c.as_tf_dataset(0, intensity_scale=1.0)
    with pytest.raises(ValueError, match="intensity_scale"):
        c.as_tf_dataset(2, intensity_scale=-1.0)
    flat = PtychoDataContainer(
        np.ones((2, 4, 4)), None, None, 1.0, None, None, None, None, None, None, None
    )
    with pytest.raises(ValueError, match="X must be"):
        flat.as_tf_dataset(2, intensity_scale=1.0)


# --------------------------------------------------------------------------- factory wiring


def test_from_raw_data_without_pc_wiring(sim64, monkeypatch):
    """The factory's calls, checked against a stand-in RawData (the real one is tested there)."""
    X, s, patches, probe, x, y = sim64
    calls = {}

    class FakeRawData:
        def __init__(self, *args):
            self.diff3d = args[2]
            calls["from_coords"] = args

        @classmethod
        def from_coords_without_pc(cls, *args):
            return cls(*args)

        def generate_grouped_data(self, N, **kw):
            calls["group"] = (N, kw)
            return grouped(sim64, 1)

    fake = types.ModuleType("ptyfast.raw_data")
    fake.RawData = FakeRawData
    monkeypatch.setitem(sys.modules, "ptyfast.raw_data", fake)
    scan = np.zeros(len(x), dtype=int)
    c = PtychoDataContainer.from_raw_data_without_pc(
        x, y, X, probe, scan, None, K=5, nsamples=32, seed=3, gridsize=1, nphotons=1e9
    )
    assert calls["from_coords"][0] is x and calls["from_coords"][4] is scan
    assert calls["group"] == (64, {"K": 5, "nsamples": 32, "seed": 3, "gridsize": 1})
    assert len(c) == 32
    assert calculate_intensity_scale(c, nphotons=1e9) == pytest.approx(s, rel=1e-6)

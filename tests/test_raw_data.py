"""RawData: construction, NPZ contract, simulation against NumPy."""

import json

import numpy as np
import pytest
from _reference import bilinear_patches, far_field

from ptyfast.raw_data import RawData


def _probe(N):
    yy, xx = np.mgrid[:N, :N] - N / 2
    return (np.exp(-(xx**2 + yy**2) / (2 * (N / 6) ** 2)) * np.exp(0.3j * xx / N)).astype(
        np.complex64
    )


def _object(size=96, seed=0):
    rng = np.random.default_rng(seed)
    return (1 + rng.random((size, size)) * np.exp(1j * rng.random((size, size)))).astype(
        np.complex64
    )


def _raw(n=12, N=8):
    x = np.linspace(20, 40, n)
    return RawData.from_coords_without_pc(
        x,
        x[::-1].copy(),
        np.ones((n, N, N), np.float32),
        np.ones((N, N), np.complex64),
        scan_index=np.zeros(n, dtype=int),
    )


def test_constructor_keeps_arrays_and_start_coords():
    raw = _raw()
    assert raw.diff3d.shape == (12, 8, 8)
    np.testing.assert_array_equal(raw.xcoords_start, raw.xcoords)
    np.testing.assert_array_equal(raw.ycoords_start, raw.ycoords)
    assert raw.objectGuess is None and raw.Y is None and raw.intensity_scale is None
    assert "RawData(n=12" in repr(raw)
    assert len(raw) == 12


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(ycoords=np.zeros(5)), "ycoords"),
        (dict(xcoords_start=np.zeros(5)), "xcoords_start"),
        (dict(xcoords=np.zeros((12, 1))), "xcoords must be 1-D"),
        (dict(diff3d=np.ones((12, 8, 7), np.float32)), "diff3d"),
        (dict(diff3d=np.ones((11, 8, 8), np.float32)), "one pattern per position"),
        (dict(probeGuess=np.ones(8)), "probeGuess"),
        (dict(scan_index=np.zeros((12, 2))), "scan_index"),
        (dict(objectGuess=np.ones(5)), "objectGuess"),
        (dict(xcoords=np.r_[np.nan, np.zeros(11)]), "finite"),
    ],
)
def test_constructor_rejects_inconsistent_input(change, match):
    n, N = 12, 8
    args = dict(
        xcoords=np.zeros(n),
        ycoords=np.zeros(n),
        xcoords_start=np.zeros(n),
        ycoords_start=np.zeros(n),
        diff3d=np.ones((n, N, N), np.float32),
        probeGuess=np.ones((N, N), np.complex64),
        scan_index=np.zeros(n, int),
    )
    args.update(change)
    with pytest.raises(ValueError, match=match):
        RawData(**args)


def test_npz_round_trip(tmp_path):
    raw = RawData.from_simulation(
        np.array([30.0, 40.5, 50.25]),
        np.array([30.0, 35.0, 60.75]),
        _probe(16),
        _object(),
        nphotons=1e6,
        seed=3,
    )
    path = tmp_path / "raw.npz"
    raw.to_file(path)
    back = RawData.from_file(path)
    for key in (
        "xcoords",
        "ycoords",
        "xcoords_start",
        "ycoords_start",
        "diff3d",
        "probeGuess",
        "objectGuess",
        "scan_index",
        "Y",
    ):
        np.testing.assert_array_equal(getattr(back, key), getattr(raw, key), err_msg=key)
    assert back.diff3d.dtype == np.float32 and back.xcoords.dtype == np.float64
    assert back.intensity_scale == pytest.approx(raw.intensity_scale)
    with np.load(path) as f:
        meta = json.loads(str(f["_metadata"]))
    assert meta["nphotons"] == 1e6
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_from_file_reads_reference_style_files(tmp_path):
    n, N = 4, 8
    path = tmp_path / "ref.npz"
    # The reference writes a missing objectGuess as a pickled object array; it is read as None
    # without unpickling. Optional keys default as the reference does.
    np.savez(
        path,
        xcoords=np.arange(n, dtype=float),
        ycoords=np.arange(n, dtype=float),
        diff3d=np.ones((n, N, N), np.uint16),
        probeGuess=np.ones((N, N), np.complex64),
        objectGuess=np.array(None, dtype=object),
    )
    raw = RawData.from_file(path)
    assert raw.objectGuess is None
    assert raw.diff3d.dtype == np.uint16  # legacy intensity counts are kept as stored
    np.testing.assert_array_equal(raw.xcoords_start, raw.xcoords)
    np.testing.assert_array_equal(raw.scan_index, np.zeros(n))


def test_from_file_accepts_diffraction_key(tmp_path):
    path = tmp_path / "canonical.npz"
    np.savez(
        path,
        xcoords=np.zeros(2),
        ycoords=np.zeros(2),
        diffraction=np.ones((2, 4, 4), np.float32),
        probeGuess=np.ones((4, 4), np.complex64),
    )
    assert RawData.from_file(path).diff3d.shape == (2, 4, 4)


@pytest.mark.parametrize("drop", ["xcoords", "ycoords", "diff3d", "probeGuess"])
def test_from_file_names_missing_key(tmp_path, drop):
    arrays = dict(
        xcoords=np.zeros(2),
        ycoords=np.zeros(2),
        diff3d=np.ones((2, 4, 4), np.float32),
        probeGuess=np.ones((4, 4), np.complex64),
    )
    del arrays[drop]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=drop):
        RawData.from_file(path)


def test_from_file_rejects_wrong_dtype(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        xcoords=np.zeros(2),
        ycoords=np.zeros(2),
        diff3d=np.ones((2, 4, 4), np.complex64),
        probeGuess=np.ones((4, 4), np.complex64),
    )
    with pytest.raises(ValueError, match="diff3d"):
        RawData.from_file(path)


@pytest.mark.parametrize("N", [16, 15])
def test_from_simulation_noise_free_matches_numpy(N):
    obj, probe = _object(), _probe(N)
    rng = np.random.default_rng(1)
    x = rng.uniform(10, 80, 25)
    y = rng.uniform(10, 80, 25)
    x[0], y[0] = 40.0, 50.0  # one integer position
    raw = RawData.from_simulation(x, y, probe, obj, nphotons=1e7, poisson=False)
    patches = bilinear_patches(obj, np.column_stack([x, y]), N)
    expected = far_field(patches * probe)
    assert raw.diff3d.dtype == np.float32 and raw.diff3d.shape == (25, N, N)
    np.testing.assert_allclose(raw.diff3d, expected, atol=2e-5 * expected.max())
    assert raw.Y.shape == (25, N, N, 1) and raw.Y.dtype == np.complex64
    np.testing.assert_allclose(raw.Y[..., 0], patches, atol=1e-5 * np.abs(obj).max())
    energy = np.sum(np.abs(patches * probe) ** 2, axis=(1, 2))
    s = np.sqrt(1e7 / energy.mean())
    assert raw.intensity_scale == pytest.approx(s, rel=1e-5)
    # noise-free, norm_Y_I (computed on the stored X) equals s by Parseval
    assert float(raw.norm_Y_I) == pytest.approx(s, rel=1e-4)


def test_from_simulation_single_position_and_counts():
    obj, probe = _object(), _probe(16)
    raw = RawData.from_simulation(
        np.array([48.0]), np.array([48.0]), probe, obj, nphotons=1e5, seed=0
    )
    assert raw.diff3d.shape == (1, 16, 16)
    counts = (raw.diff3d.astype(np.float64) * raw.intensity_scale) ** 2
    assert np.all(np.abs(counts - np.round(counts)) <= 1e-4 * np.maximum(1, counts))


def test_from_simulation_photon_budget_and_seeds():
    obj, probe = _object(), _probe(16)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(10, 80, 400), rng.uniform(10, 80, 400)
    a = RawData.from_simulation(x, y, probe, obj, nphotons=1e4, seed=11)
    b = RawData.from_simulation(x, y, probe, obj, nphotons=1e4, seed=11)
    c = RawData.from_simulation(x, y, probe, obj, nphotons=1e4, seed=12)
    np.testing.assert_array_equal(a.diff3d, b.diff3d)
    assert not np.array_equal(a.diff3d, c.diff3d)
    total = ((a.diff3d.astype(np.float64) * a.intensity_scale) ** 2).sum(axis=(1, 2))
    # mean total counts per pattern equals nphotons (std of the mean ~ 1e4/sqrt(400*1e4))
    assert total.mean() == pytest.approx(1e4, rel=0.01)


def test_from_simulation_does_not_modify_inputs():
    obj, probe = _object(), _probe(16)
    x, y = np.array([30.0, 40.5]), np.array([33.0, 60.25])
    copies = [a.copy() for a in (obj, probe, x, y)]
    RawData.from_simulation(x, y, probe, obj, nphotons=1e6, seed=1)
    for a, c in zip((obj, probe, x, y), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_from_simulation_uses_params_nphotons(monkeypatch):
    from ptyfast import params

    monkeypatch.setitem(params.cfg, "nphotons", 1e6)
    obj, probe = _object(), _probe(16)
    raw = RawData.from_simulation(
        np.array([40.0, 50.0]), np.array([40.0, 50.0]), probe, obj, poisson=False
    )
    assert raw.metadata["nphotons"] == 1e6

"""Each format read by its real reader, used as a user would (issue 12).

PtychoPINN's ``RawData.from_file`` and ``numpy.load`` (NPZ); ptychodus 1.7's own plugins,
loaders, coordinate mapping, patch interpolator and forward model (product + diffraction
pair, CXI); h5py against the NXcxi_ptycho definition; zarr and xarray (Zarr store).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from _io_data import random_dataset, simulated_dataset

import ptyfast
from ptyfast import _kernels, io
from ptyfast.io._common import half_pixel, positions_to_metres
from ptyfast.model.geometry import Geometry
from ptyfast.raw_data import RawData

h5py = pytest.importorskip("h5py")

# ---------------------------------------------------------------------------- NPZ


@pytest.mark.parametrize("compress", [False, True])
def test_npz_raw_data_from_file_gets_the_kernels_amplitudes(tmp_path, compress):
    ds = simulated_dataset(seed=11)
    path = tmp_path / "d.npz"
    ds.save(path, compress=compress)
    raw = RawData.from_file(path)
    # diff3d is the fused kernel's own divide_by_scale output for the same noise draws:
    # the NumPy conversion sqrt(counts)/s reproduces it bit for bit.
    want, _ = _kernels.simulate(
        ds.object,
        ds.positions_true,
        ds.probe[0],
        scale=ds.intensity_scale,
        poisson=True,
        seed=11,
        divide_by_scale=True,
    )
    assert raw.diff3d.dtype == np.float32
    assert raw.diff3d.tobytes() == want.tobytes()
    assert np.array_equal(raw.xcoords, ds.positions_true[:, 0])
    assert np.array_equal(raw.ycoords, ds.positions_true[:, 1])
    assert np.array_equal(raw.xcoords_start, ds.positions_nominal[:, 0])
    assert np.array_equal(raw.probeGuess, ds.probe[0])
    assert np.array_equal(raw.objectGuess, ds.object)
    assert raw.Y is not None and np.array_equal(raw.Y[..., 0], ds.patches)
    assert np.array_equal(raw.scan_index, np.zeros(ds.n_patterns, np.int64))
    assert raw.intensity_scale == ds.intensity_scale
    assert raw.metadata["nphotons"] == ds.photons


def test_npz_plain_numpy_load_reads_the_reference_keys(tmp_path):
    ds = random_dataset(2, modes=2)
    path = tmp_path / "d.npz"
    ds.save(path, compress=True)
    with np.load(path, allow_pickle=False) as f:  # the reference's from_file does this
        for key in ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d",
                    "probeGuess", "objectGuess", "scan_index"):  # fmt: skip
            assert key in f.files
        assert f["probeGuess"].shape == (ds.N, ds.N)  # PtychoPINN asserts a 2-D probe
        assert np.array_equal(f["probe_modes"], ds.probe)
        assert np.array_equal(f["readings"], ds.diffraction)
        assert np.array_equal(f["mask"], ds.mask)
        amp = np.sqrt(ds.diffraction.astype(np.float64)).astype(np.float32)
        assert np.array_equal(f["diff3d"], amp / np.float32(ds.intensity_scale))


def test_npz_from_ptychopinn_is_read_as_photons(tmp_path):
    ds = simulated_dataset(seed=3)
    raw = RawData(
        ds.positions_true[:, 0],
        ds.positions_true[:, 1],
        ds.positions_nominal[:, 0],
        ds.positions_nominal[:, 1],
        np.sqrt(ds.diffraction) / np.float32(ds.intensity_scale),
        ds.probe[0],
        np.zeros(ds.n_patterns, np.int64),
        ds.object,
    )
    raw.intensity_scale = ds.intensity_scale
    raw.to_file(tmp_path / "raw.npz")
    back = ptyfast.open(tmp_path / "raw.npz")
    assert back.provenance["source"] == "PtychoPINN raw NPZ"
    assert np.allclose(back.diffraction, ds.diffraction, rtol=1e-6, atol=1e-3)
    assert np.array_equal(back.positions_true, ds.positions_true)
    assert back.intensity_scale == ds.intensity_scale


# ---------------------------------------------------------------------------- ptychodus


@pytest.fixture(scope="module")
def registry():
    pytest.importorskip("ptychodus")  # Python >= 3.11 (its own requirement)
    from ptychodus.api.plugins import PluginRegistry

    return PluginRegistry.load_plugins()


def _pair(tmp_path: Path, ds: ptyfast.Dataset, **kw) -> tuple[Path, Path]:
    paths = io.save(ds, tmp_path / "run.ptychodus.h5", **kw)
    assert [p.name for p in paths] == ["run.ptychodus.h5", "run.diffraction.h5"]
    return paths[0], paths[1]


@pytest.mark.parametrize("n", [16, 15])
def test_ptychodus_reads_the_pair_through_its_plugins(tmp_path, registry, n):
    from ptychodus.api.io import load_diffraction_data
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    ds = simulated_dataset(n=n, seed=21)
    product_path, diffraction_path = _pair(tmp_path, ds, compress=True)
    product = registry.product_file_readers.get_strategy_by_name("HDF5").read(product_path)
    assembled = load_diffraction_data(diffraction_path)  # what its reconstruct CLI reads
    recon = prepare_reconstruct_input(assembled, product)

    g = ds.geometry
    assert np.array_equal(recon.diffraction_patterns, ds.diffraction)
    assert np.array_equal(recon.bad_pixels, ~ds.mask)
    pg = assembled.get_pixel_geometry()
    assert (pg.width_m, pg.height_m) == (g.detector_pixel_m, g.detector_pixel_m)
    md = product.metadata
    assert md.detector_distance_m == g.distance_m
    assert md.photon_energy_eV == g.energy_eV
    assert md.probe_photon_count == ds.photons
    assert np.array_equal(product.probes.get_array()[0], ds.probe)
    assert np.array_equal(product.object_.get_array()[0], ds.object)
    og = product.object_.get_geometry()
    assert (og.pixel_width_m, og.center_x_m, og.center_y_m) == (g.object_pixel_m, 0.0, 0.0)
    assert np.array_equal(product.probe_positions.get_indexes(), np.arange(ds.n_patterns))

    # ptychodus' own mapping gives ptychodus pixel = ptyfast pixel − δ, to rounding
    x = og.map_probe_positions_to_object_x_px(recon.product.probe_positions)
    y = og.map_probe_positions_to_object_y_px(recon.product.probe_positions)
    d = half_pixel(n)
    assert d == (0.5 if n % 2 == 0 else 0.0)
    assert np.allclose(x, ds.positions_true[:, 0] - d, rtol=0, atol=1e-9)
    assert np.allclose(y, ds.positions_true[:, 1] - d, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", [16, 15])
def test_ptychodus_interpolator_cuts_ptyfasts_patches(tmp_path, registry, n):
    """ptychodus centres its (N−1)/2 window on its pixel; that window is our patch."""
    from ptychodus.api.interpolate import BarycentricArrayInterpolator

    ds = simulated_dataset(n=n, seed=4, integer_positions=False)
    product_path, _ = _pair(tmp_path, ds)
    product = registry.product_file_readers.get_strategy_by_name("HDF5").read(product_path)
    og = product.object_.get_geometry()
    xs = og.map_probe_positions_to_object_x_px(product.probe_positions)
    ys = og.map_probe_positions_to_object_y_px(product.probe_positions)
    interp = BarycentricArrayInterpolator(product.object_.get_array()[0].astype(np.complex128))
    theirs = np.stack([interp.get_patch(x, y, n, n) for x, y in zip(xs, ys, strict=True)])
    ours = _kernels.extract_patches(ds.object, ds.positions_true, n)
    assert np.abs(theirs - ours).max() < 1e-5  # float32 coordinates on our side


def _forward_mismatch(tmp_path: Path, ds: ptyfast.Dataset, shift_px: float) -> float:
    from ptychodus.api.io import load_product
    from ptychodus.api.simulate.diffraction import generate_diffraction_data

    product_path, _ = _pair(tmp_path, ds, overwrite=True)
    if shift_px:
        with h5py.File(product_path, "r+") as f:
            f["probe_position_x_m"][...] += shift_px * ds.geometry.object_pixel_m
    theirs = generate_diffraction_data(load_product(product_path)).get_patterns()
    ours = ds.diffraction.astype(np.float64)
    a = theirs / theirs.sum(axis=(1, 2), keepdims=True)
    b = ours / ours.sum(axis=(1, 2), keepdims=True)
    return float(np.abs(a - b).max() / b.max())


@pytest.mark.parametrize("n", [16, 15])
def test_ptychodus_forward_model_reproduces_our_patterns(tmp_path, registry, n):
    """ptychodus simulates diffraction from our product (its placement, its Fresnel
    transform): the same patterns as ours, normalised, while half a pixel off is 10 %+."""
    ds = simulated_dataset(n=n, seed=9, poisson=False)
    # 1 mm detector pixels: pixel Fresnel number ~1e-6, so ptychodus' quadratic phase
    # (which ptyfast's Fraunhofer model omits) is below 3e-4 rad at the edge
    ds.geometry = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=1e-3, N=n)
    assert _forward_mismatch(tmp_path, ds, 0.0) < 2e-4
    assert _forward_mismatch(tmp_path, ds, 0.5) > 0.05


def test_ptychodus_raw_data_bundle(tmp_path):
    ds = simulated_dataset(seed=8)
    product_path, _ = _pair(tmp_path, ds, raw_data=True)
    with h5py.File(product_path, "r") as f:
        assert f.attrs["contains_raw_data"] == 1 and f.attrs["bundle_version"] == "1.0"
        rd = f["raw_data"]
        assert rd["diffraction"].attrs["axis_canonical"] == "NHW"
        amp = np.sqrt(ds.diffraction.astype(np.float64)).astype(np.float32)
        assert np.array_equal(rd["diffraction"][()], amp / np.float32(ds.intensity_scale))
        assert np.array_equal(rd["xcoords"][()], ds.positions_true[:, 0])
        assert rd["probeGuess"] == f["probe"] and rd["objectGuess"] == f["object"]  # links
        assert rd["probeGuess"].shape == (ds.N, ds.N)
    assert ptyfast.open(product_path).diffraction.tobytes() == ds.diffraction.tobytes()


def test_positions_to_metres_matches_ptychodus_convention():
    """The formula itself, against the numbers ptychodus' docs give for its frame."""
    pos = np.array([[10.5, 20.5], [0.0, 0.0]])
    x, y = positions_to_metres(pos, 16, (41, 31), 2.0)
    # ptychodus pixel (x − ½) about the array centre ((31 − 1)/2, (41 − 1)/2) = (15, 20)
    assert np.array_equal(x, [(10.0 - 15) * 2, (-0.5 - 15) * 2])
    assert np.array_equal(y, [(20.0 - 20) * 2, (-0.5 - 20) * 2])


# ---------------------------------------------------------------------------- CXI

# NXcxi_ptycho (NeXus definitions, applications/NXcxi_ptycho.nxdl.xml): required nodes
_NX = {
    "entry_1": "NXentry",
    "entry_1/instrument_1": "NXinstrument",
    "entry_1/instrument_1/source_1": "NXsource",
    "entry_1/instrument_1/beam_1": "NXbeam",
    "entry_1/instrument_1/detector_1": "NXdetector",
    "entry_1/instrument_1/detector_1/transformations": "NXtransformations",
    "entry_1/data_1": "NXcollection",
    "entry_1/sample_1": "NXsample",
    "entry_1/sample_1/transformations": "NXtransformations",
    "entry_1/sample_1/geometry_1": "NXcollection",
}
_FIELDS_WITH_UNITS = (
    "entry_1/instrument_1/beam_1/energy",
    "entry_1/instrument_1/beam_1/incident_beam_energy",
    "entry_1/instrument_1/beam_1/incident_energy_spread",
    "entry_1/instrument_1/detector_1/translation",
    "entry_1/instrument_1/detector_1/x_pixel_size",
    "entry_1/instrument_1/detector_1/y_pixel_size",
    "entry_1/instrument_1/detector_1/distance",
    "entry_1/sample_1/transformations/x",
    "entry_1/sample_1/transformations/y",
)
_LINKS = {  # NXcxi_ptycho links -> their targets
    "entry_1/instrument_1/detector_1/data_1": "entry_1/instrument_1/detector_1/data",
    "entry_1/data_1/data": "entry_1/instrument_1/detector_1/data",
    "entry_1/data_1/translation": "entry_1/instrument_1/detector_1/translation",
    "entry_1/sample_1/geometry_1/translation": "entry_1/instrument_1/detector_1/translation",
    "entry_1/data/data": "entry_1/instrument_1/detector_1/data",
    "entry_1/data/x": "entry_1/sample_1/transformations/x",
    "entry_1/data/y": "entry_1/sample_1/transformations/y",
}


def test_cxi_structure_against_nxcxi_ptycho(tmp_path):
    ds = simulated_dataset(seed=12)
    path = tmp_path / "d.cxi"
    ds.save(path)
    g = ds.geometry
    with h5py.File(path, "r") as f:
        assert f["cxi_version"][()] == 160
        assert f["entry_1/definition"][()].decode() == "NXcxi_ptycho"
        for node, cls in _NX.items():
            assert f[node].attrs["NX_class"] == cls, node
        for name in ("name", "energy", "probe", "type"):
            assert name in f["entry_1/instrument_1/source_1"]
        for node in _FIELDS_WITH_UNITS:
            assert f[node].attrs["units"] in ("m", "J"), node
        for link, target in _LINKS.items():
            assert f[link] == f[target], link  # the same HDF5 object
        nxdata = f["entry_1/data"]
        assert nxdata.attrs["NX_class"] == "NXdata" and nxdata.attrs["signal"] == "data"
        det = f["entry_1/instrument_1/detector_1"]
        m, n = ds.n_patterns, ds.N
        assert det["data"].shape == (m, n, n) and det["translation"].shape == (m, 3)
        assert np.array_equal(det["data"][()], ds.diffraction)
        assert np.array_equal(det["mask"][()] & 1, (~ds.mask).astype(np.uint32))
        assert f["entry_1/instrument_1/source_1/energy"][()] == g.energy_eV * 1.602176634e-19
        assert det["distance"][()] == g.distance_m
        assert det["x_pixel_size"][()] == det["y_pixel_size"][()] == g.detector_pixel_m
        # sign: CXI translations are the sample's; cdtools negates them into probe positions
        x_m, y_m = positions_to_metres(ds.positions_true, n, ds.object.shape, g.object_pixel_m)
        t = det["translation"][()]
        assert np.array_equal(-t[:, 0], x_m) and np.array_equal(-t[:, 1], y_m)
        assert not t[:, 2].any()


def test_ptychodus_reads_our_cxi(tmp_path, registry):
    ds = simulated_dataset(seed=13)
    path = tmp_path / "d.cxi"
    ds.save(path, compress=True)
    g = ds.geometry
    dataset = registry.diffraction_file_readers.get_strategy_by_name("CXI").read(path)
    md = dataset.get_metadata()
    patterns = np.concatenate([a.get_patterns() for a in dataset])
    assert np.array_equal(patterns, ds.diffraction)
    assert np.array_equal(dataset.get_bad_pixels(), ~ds.mask)
    assert md.detector_distance_m == g.distance_m
    assert md.detector_pixel_geometry.width_m == g.detector_pixel_m
    assert md.photon_energy_eV == pytest.approx(g.energy_eV, rel=1e-15)
    product = registry.product_file_readers.get_strategy_by_name("CXI").read(path)
    assert np.array_equal(product.probes.get_array()[0], ds.probe)
    assert np.array_equal(product.object_.get_array()[0], ds.object)
    og = product.object_.get_geometry()
    assert (og.pixel_width_m, og.center_x_m, og.center_y_m) == (g.object_pixel_m, 0.0, 0.0)
    # ptychodus 1.7 takes the (sample) translation as the probe position, without the
    # negation CXI implies: our positions arrive point-mirrored about the object centre.
    # Documented in ptyfast.io.cxi; use the .ptychodus.h5 pair for ptychodus.
    x = og.map_probe_positions_to_object_x_px(product.probe_positions)
    y = og.map_probe_positions_to_object_y_px(product.probe_positions)
    h, w = ds.object.shape
    d = half_pixel(ds.N)
    assert np.allclose(x, (w - 1) - (ds.positions_true[:, 0] - d), atol=1e-9)
    assert np.allclose(y, (h - 1) - (ds.positions_true[:, 1] - d), atol=1e-9)


# ---------------------------------------------------------------------------- Zarr


@pytest.mark.parametrize("compress", [False, True])
def test_zarr_and_xarray_open_the_store(tmp_path, compress, monkeypatch):
    zarr = pytest.importorskip("zarr")
    xr = pytest.importorskip("xarray")
    ds = random_dataset(14, m=300, n=32, shape=(80, 90), dtype=np.uint16, modes=2, patches=True)
    monkeypatch.setattr(io.zarr, "CHUNK_BYTES", 64 * 32 * 32 * 8)  # 64 patterns (+ patches)
    path = tmp_path / "d.zarr"
    ds.save(path, compress=compress)

    g = zarr.open_group(path, mode="r")
    d = g["diffraction"]
    assert d.shape == (300, 32, 32) and d.dtype == np.uint16
    assert d.chunks == (64, 32, 32)  # blocks of patterns
    codecs = [type(c).__name__ for c in d.compressors]
    assert codecs == (["ZstdCodec"] if compress else [])
    assert d.metadata.dimension_names == ("pattern", "detector_y", "detector_x")
    assert np.array_equal(d[...], ds.diffraction)
    assert np.array_equal(g["probe"][...], ds.probe)
    assert g.attrs["provenance"] == ds.provenance
    assert g.attrs["ptyfast"]["geometry"] == ds.geometry.to_dict()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated: no fallback warnings
        x = xr.open_zarr(path)
    assert x["diffraction"].dims == ("pattern", "detector_y", "detector_x")
    assert x["probe"].dims == ("mode", "probe_y", "probe_x")
    assert x.sizes["pattern"] == 300
    assert np.array_equal(x["diffraction"].values, ds.diffraction)
    assert np.array_equal(x["positions_true"].values, ds.positions_true)
    assert np.array_equal(x["object"].values, ds.object)
    assert np.array_equal(x["mask"].values, ds.mask)
    assert np.array_equal(x["patches"].isel(pattern=slice(10, 20)).values, ds.patches[10:20])
    assert x.attrs["ptyfast"]["photons"] == ds.photons


def test_ptychodus_reads_eiger2_8_bit_readings(tmp_path, registry):
    """The EIGER2 8-bit mode's uint8 readings (rolled over above 255) reach ptychodus as
    they are, with the detector's mask as its bad pixels."""
    from ptychodus.api.io import load_diffraction_data
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    from ptyfast import objects, probes, scans

    det = ptyfast.Detector.eiger("500K", dtype="uint8", overflow="wrap", beamstop_radius_px=2)
    exp = ptyfast.Experiment(
        objects.dead_leaves(48, seed=1),
        probes.gaussian(16, 3.0),
        scans.fermat_spiral(15, 1.5),
        det,
        1e6,
        ptyfast.Geometry(8000.0, 2.0, 75e-6, 16),
    )
    ds = ptyfast.simulate(exp, seed=5)
    assert ds.diffraction.dtype == np.uint8
    product_path, diffraction_path = _pair(tmp_path, ds)
    product = registry.product_file_readers.get_strategy_by_name("HDF5").read(product_path)
    recon = prepare_reconstruct_input(load_diffraction_data(diffraction_path), product)
    assert np.array_equal(recon.diffraction_patterns, ds.diffraction)
    assert np.array_equal(recon.bad_pixels, ~ds.mask)
    assert not ds.mask.all()


def test_a_ptychodus_pair_with_a_name_near_the_file_name_limit(tmp_path):
    """The pair's lock file beside the product (``.<name>.ptyfast-lock``) would pass the
    255-byte limit: it takes the digest of the name instead, and the pair is written."""
    ds = random_dataset(3)
    path = tmp_path / ("x" * 230 + ".ptychodus.h5")
    io.save(ds, path)
    assert ptyfast.open(path).n_patterns == ds.n_patterns
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, "x" * 230 + ".diffraction.h5"]
    )

"""Format faithfulness audit: what each file means to its real reader.

The tests simulate asymmetric datasets with the model (a non-square object, a probe without
any symmetry, two incoherent modes, scan positions whose x and y ranges differ, mostly a
non-ideal detector with gain, offset, a beamstop and bad pixels, a non-default geometry) and
compares what the format's own reader finds with quantities computed here, independently of
ptyfast's writers, in that reader's documented units.

* ``test_ptychodus_pair_means_the_dataset``: ptychodus 1.7's ``load_product`` and
  ``load_diffraction_data``: patterns = ``(readings − offset)/gain`` (clipped at 0, masked
  pixels 0) in float32, bad pixels = the beamstop disc and the dead and hot pixels, detector
  pixel, distance, energy, object and probe pixel ``h·c/E · z/(N·Δ)``, the two probe modes as
  incoherent modes, the object, and the object pixel ptychodus maps each position to.
* ``test_ptychodus_forward_model_of_a_non_ideal_two_mode_dataset``: ptychodus simulates
  diffraction from our product: the same patterns as the photon estimates in our diffraction
  file (normalised, valid pixels), on ptychodus' detector pixel; a transposed pattern or a
  mirrored scan would not match.
* ``test_cxi_means_the_dataset``: h5py on the CXI paths: energy in J, distance and pixel sizes
  in m, the sample translation ``−(probe position)`` with x from columns and y from rows,
  ``image_size`` as (x, y) extents, the mask bits (``0x1`` = invalid, with hot ``0x4``, dead
  ``0x8``, beamstop ``0x10``), data = photons.
* ``test_foreign_cxi_mask_bits_that_exclude_a_pixel``: another tool's CXI mask with CXI's
  other exclusion bits and no ``0x1`` (dead, hot, shadowed, ...) is read as invalid pixels;
  a peak-mask bit is not.
* ``test_npz_and_zarr_mean_the_dataset``: ``numpy.load`` (``diff3d`` = ``sqrt(photons)/s``,
  masked pixels 0; positions true and nominal; probe modes; mask True = valid) and ``zarr``
  (the exact readings and their dtype, positions, mask, the header's detector and geometry).
* ``test_every_format_round_trips_the_non_ideal_dataset``: ``ptyfast.open`` gives every field
  back (readings, dtype, detector, geometry, provenance, photons, intensity scale, patches).
* ``test_foreign_readings_of_ptychodus_and_cxi_agree``: without the ``ptyfast`` groups (as
  another tool's file), the ptychodus pair and the CXI file read back as the same photons,
  mask, positions, geometry and dose (``probe_photon_count``).
* ``test_ptychodus_slac_npz_plugin_reads_our_geometry``: ptychodus' ``SLAC_NPZ`` plugin (the
  one that opens a PtychoPINN NPZ) finds the dataset's distance and energy, not its defaults,
  and the nominal positions scaled by our object pixel.
* ``test_zarr_conventions_attribute_holds_for_the_stored_arrays``: the store's own
  ``conventions`` text checked against its arrays (photons ``(s·A)²``, modes summed in
  intensity; no unit-norm claim for a single mode of another norm).
* ``test_ptychodus_cxi_plugins_read_the_non_ideal_two_mode_file``: ptychodus' CXI plugins:
  photons, bad pixels, energy, distance, both probe modes and their pixel size.
* ``test_ptychodus_probe_photon_count_is_the_mean_pattern_dose``: ``probe_photon_count`` is
  the mean dose per pattern, ``s²·mean Σ|P·patch|²``; equal to the probe's photons
  ``s²·Σ|P|²`` (what ptychodus takes it for) only for a transparent object.
* ``test_ptychodus_raw_data_bundle_of_the_non_ideal_two_mode_dataset``: ``/raw_data``'s
  amplitudes, positions, first mode and ``_metadata``.
* ``test_ptychodus_ptychopinn_export_read_by_ptyfast``: ptychodus' own PtychoPINN NPZ export
  of our pair read by ``ptyfast.open``: its ``bad_pixels`` become the mask; its intensity
  ``diff3d`` and ``x − ½`` positions are pinned as documented.
* ``test_foreign_npz_bad_pixels_must_be_booleans``: a ``bad_pixels`` member of strings, NaN
  or values other than 0/1 is a ``FormatError`` (it read as every pixel bad).
* ``test_cxi_mask_marks_module_gaps_missing``: module gaps are ``0x1 | 0x200`` in CXI.
* ``test_cxi_nxdata_axes_follow_nexus``: the NXdata group's ``@axes`` and
  ``@x_indices``/``@y_indices`` are group attributes (they were string fields).
* ``test_cxi_detector_basis_keeps_x_along_columns``: the detector's ``basis_vectors`` map
  the translations back to ptyfast's columns and rows for a basis-aware reader (cdtools'
  scheme, computed here); its default basis (none in the file) would mirror the scan.
* ``test_exposure_time_reaches_ptychodus``: the detector's exposure time in the product and
  in the CXI file's ptychodus group (0 when the detector has none).

The forward-model test runs at even and odd ``N`` on whole-pixel positions; the other
datasets have true positions jittered off the nominal ones, so a swap would show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import Detector, Geometry, io, probes, scans

h5py = pytest.importorskip("h5py")

N = 16
SHAPE = (40, 64)  # (H, W): wider than high
# CODATA 2018, exact: h in J s, c in m/s, e in C
H_J_S, C_M_S, E_C = 6.62607015e-34, 299_792_458.0, 1.602176634e-19
ENERGY_EV, DISTANCE_M = 6200.0, 3.5
DEAD = [(2, 13), (11, 3)]
HOT = [(14, 14)]
BEAMSTOP_PX = 2.0


def _object() -> np.ndarray:
    rng = np.random.default_rng(0)
    amp = 0.5 + 0.5 * rng.random(SHAPE)
    return (amp * np.exp(1j * rng.normal(size=SHAPE))).astype(np.complex64)


def _probe(n: int = N) -> np.ndarray:
    """Two incoherent modes of a rectangle with a phase step in one corner (no symmetry)."""
    p = np.zeros((n, n), complex)
    p[3:9, 4:13] = 1.0
    p[3:6, 4:7] *= 1j
    return probes.modes(p, 2, weights=[0.7, 0.3])


def _scan(n: int = N) -> scans.Scan:
    """Integer positions: x over 35 pixels, y over 10 (ptychodus shifts a probe by a Fourier
    phase, ptyfast interpolates the object: the two agree exactly on whole pixels). Placing
    adds ``(W−1)/2 + δ``: a whole number for even ``n``, so odd ``n`` gets ½ here."""
    d = 0.5 * (n % 2)
    x = np.array([-18.0, -11.0, -4.0, 3.0, 10.0, 17.0]).repeat(2) + d
    y = np.tile([-5.0, 5.0], 6) + d
    return scans.Scan(np.column_stack([x, y]))


def _pixel_table(cells: list[tuple[int, int]], n: int = N) -> np.ndarray:
    a = np.zeros((n, n), bool)
    for r, c in cells:
        a[r, c] = True
    return a


def _detector(n: int = N, **kw: object) -> Detector:
    return Detector(
        gain=3.0,
        offset=10.0,
        beamstop_radius_px=BEAMSTOP_PX,
        dead_pixels=_pixel_table(DEAD, n),
        hot_pixels=_pixel_table(HOT, n),
        **kw,
    )


def _simulate(
    detector: Detector, pixel_m: float = 1e-3, seed: int = 3, n: int = N, jitter: float = 0.0
) -> ptyfast.Dataset:
    g = Geometry(energy_eV=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=pixel_m, N=n)
    scan = _scan(n).jitter(jitter, seed=5) if jitter else _scan(n)
    e = ptyfast.Experiment(_object(), _probe(n), scan, detector, photons=1e5, geometry=g)
    return ptyfast.simulate(e, seed=seed, patches=True)


@pytest.fixture(scope="module")
def noisy() -> ptyfast.Dataset:
    """ADU readings in uint16 with read noise: the readings are not photon counts; true
    positions jittered off the nominal ones (the tools get the true ones)."""
    ds = _simulate(_detector(read_noise=0.7, dtype="uint16"), pixel_m=55e-6, jitter=0.6)
    assert np.abs(ds.positions_true - ds.positions_nominal).min() > 1e-3
    return ds


def _valid(n: int = N) -> np.ndarray:
    """The valid pixels, from the detector's parameters (not from ptyfast)."""
    r, c = np.mgrid[:n, :n]
    valid = np.hypot(r - n // 2, c - n // 2) >= BEAMSTOP_PX
    valid &= ~_pixel_table(DEAD, n) & ~_pixel_table(HOT, n)
    return valid


def _photons(readings: np.ndarray) -> np.ndarray:
    """Detected photons: ``(reading − offset)/gain``, negatives 0, masked pixels 0."""
    p = np.maximum((readings.astype(np.float64) - 10.0) / 3.0, 0.0)
    p[:, ~_valid(readings.shape[-1])] = 0.0
    return p


def _object_pixel_m(detector_pixel_m: float) -> float:
    wavelength = H_J_S * C_M_S / (ENERGY_EV * E_C)
    return wavelength * DISTANCE_M / (N * detector_pixel_m)


def _probe_centre_m(ds: ptyfast.Dataset, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the centre ``(N−1)/2`` of the probe array sits, about the object's centre."""
    h, w = SHAPE
    # ptyfast samples a position at patch pixel N//2: the array centre is half a pixel before
    x = ds.positions_true[:, 0] - (N // 2 - (N - 1) / 2) - (w - 1) / 2
    y = ds.positions_true[:, 1] - (N // 2 - (N - 1) / 2) - (h - 1) / 2
    return x * pixel_m, y * pixel_m


def _check_dataset(ds: ptyfast.Dataset) -> None:
    """The fixture is what the audit needs: asymmetric and non-ideal."""
    n = ds.probe.shape[-1]
    assert ds.diffraction.shape == (12, n, n) and ds.object.shape == SHAPE
    assert ds.probe.shape == (2, n, n)
    assert not np.allclose(np.abs(ds.probe[0]), np.abs(ds.probe[0]).T)
    assert np.ptp(ds.positions_true[:, 0]) > 3 * np.ptp(ds.positions_true[:, 1])
    assert np.array_equal(ds.mask, _valid(n))
    assert not ds.detector.is_ideal


# ---------------------------------------------------------------------------- ptychodus


def test_ptychodus_pair_means_the_dataset(tmp_path, noisy):
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_diffraction_data, load_product

    ds = noisy
    _check_dataset(ds)
    assert ds.diffraction.dtype == np.uint16
    product_path, diffraction_path = io.save(ds, tmp_path / "run.ptychodus.h5")
    product = load_product(product_path)
    data = load_diffraction_data(diffraction_path)

    # patterns: photon estimates in float32, not the ADU readings, in the same orientation
    patterns = data.get_patterns()
    assert patterns.dtype == np.float32
    assert np.array_equal(patterns, _photons(ds.diffraction).astype(np.float32))
    assert not np.allclose(patterns, ds.diffraction)
    # bad pixels: True = bad, exactly the beamstop disc and the dead and hot pixels
    assert np.array_equal(data.get_bad_pixels(), ~_valid())
    assert np.array_equal(data.get_indexes(), np.arange(12))

    dp = 55e-6
    px = _object_pixel_m(dp)
    pg = data.get_pixel_geometry()
    assert (pg.width_m, pg.height_m) == (dp, dp)
    md = product.metadata
    assert md.detector_distance_m == DISTANCE_M
    assert md.photon_energy_eV == ENERGY_EV
    assert md.photon_wavelength_m == pytest.approx(H_J_S * C_M_S / (ENERGY_EV * E_C), rel=1e-12)
    assert md.far_field
    pgeo = product.probes.get_geometry()
    assert pgeo.pixel_width_m == pytest.approx(px, rel=1e-12)
    assert pgeo.pixel_height_m == pytest.approx(px, rel=1e-12)
    # two incoherent modes (ptychodus: (coherent, incoherent, y, x)), as simulated
    assert product.probes.get_array().shape == (1, 2, N, N)
    assert np.array_equal(product.probes.get_array()[0], ds.probe)
    assert len(product.probes) == 1  # no OPR: one probe for every position
    og = product.object_.get_geometry()
    assert og.pixel_width_m == pytest.approx(px, rel=1e-12)
    assert og.pixel_height_m == pytest.approx(px, rel=1e-12)
    assert (og.width_px, og.height_px) == (SHAPE[1], SHAPE[0])
    assert np.array_equal(product.object_.get_layer(0), ds.object)

    # positions: x along columns, y along rows, the probe array centre about the object centre
    x_m, y_m = _probe_centre_m(ds, px)
    pos = product.probe_positions
    assert np.allclose(pos.get_coordinates_x_m(), x_m, rtol=1e-12, atol=0)
    assert np.allclose(pos.get_coordinates_y_m(), y_m, rtol=1e-12, atol=0)
    xp = og.map_probe_positions_to_object_x_px(pos)
    yp = og.map_probe_positions_to_object_y_px(pos)
    assert np.allclose(xp, ds.positions_true[:, 0] - 0.5, atol=1e-9)
    assert np.allclose(yp, ds.positions_true[:, 1] - 0.5, atol=1e-9)


@pytest.mark.parametrize("n", [16, 15])
def test_ptychodus_forward_model_of_a_non_ideal_two_mode_dataset(tmp_path, n):
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.simulate.diffraction import generate_diffraction_data

    # expected counts (no noise) through gain and offset, float32 ADU; 1 mm detector pixels
    # keep ptychodus' Fresnel phase (ptyfast's Fraunhofer model has none) below 1e-3 rad
    ds = _simulate(_detector(n, poisson=False, full_well=1e7), n=n)
    _check_dataset(ds)
    assert np.array_equal(ds.positions_true, np.round(ds.positions_true))
    product_path, diffraction_path = io.save(ds, tmp_path / "fwd.ptychodus.h5")
    ours = load_diffraction_data(diffraction_path).get_patterns().astype(np.float64)
    sim = generate_diffraction_data(load_product(product_path))
    # ptychodus' own Fraunhofer relation gives back our detector pixel
    pg = sim.get_pixel_geometry()
    assert pg.width_m == pytest.approx(1e-3, rel=1e-12)
    assert pg.height_m == pytest.approx(1e-3, rel=1e-12)
    theirs = sim.get_patterns()
    valid = _valid(n)

    def mismatch(a: np.ndarray, b: np.ndarray) -> float:
        a = a[:, valid] / a[:, valid].sum(axis=1, keepdims=True)
        b = b[:, valid] / b[:, valid].sum(axis=1, keepdims=True)
        return float(np.abs(a - b).max() / b.max())

    assert mismatch(theirs, ours) < 1e-3
    assert mismatch(theirs.transpose(0, 2, 1), ours) > 0.05  # the check sees a transpose
    assert mismatch(theirs[::-1], ours) > 0.05  # and a reversed scan
    # the stored photons are the gain- and offset-corrected readings
    assert np.allclose(ours, _photons(ds.diffraction), rtol=1e-6, atol=1e-3)


# ---------------------------------------------------------------------------- CXI


def test_cxi_means_the_dataset(tmp_path, noisy):
    ds = noisy
    path = tmp_path / "d.cxi"
    io.save(ds, path, compress=True)
    dp = 55e-6
    px = _object_pixel_m(dp)
    with h5py.File(path, "r") as f:
        e = f["entry_1"]
        det = e["instrument_1/detector_1"]
        energy = e["instrument_1/source_1/energy"]
        assert energy.attrs["units"] == "J"
        assert energy[()] == pytest.approx(ENERGY_EV * E_C, rel=1e-15)
        assert det["distance"][()] == DISTANCE_M and det["distance"].attrs["units"] == "m"
        assert det["x_pixel_size"][()] == det["y_pixel_size"][()] == dp
        # the zero frequency at pixel N//2 of both axes, in metres
        assert det["beam_center_x"][()] == det["beam_center_y"][()] == (N // 2) * dp

        data = e["data_1/data"][()]
        assert data.dtype == np.float32
        assert np.array_equal(data, _photons(ds.diffraction).astype(np.float32))
        mask = det["mask"][()]
        assert mask.dtype == np.uint32
        assert np.array_equal((mask & 0x1) != 0, ~_valid())
        # why, in CXI's bits (Maia 2012): hot 0x4, dead 0x8, beamstop shadow 0x10
        r, c = np.mgrid[:N, :N]
        shadow = np.hypot(r - N // 2, c - N // 2) < BEAMSTOP_PX
        assert np.array_equal(mask[shadow], np.full(shadow.sum(), 0x11))
        assert [int(mask[p]) for p in DEAD] == [0x9, 0x9]
        assert [int(mask[p]) for p in HOT] == [0x5]
        assert not mask[_valid()].any()

        # the sample moves opposite to the probe: translation = −(probe centre), x = columns
        x_m, y_m = _probe_centre_m(ds, px)
        t = e["sample_1/geometry_1/translation"][()]
        assert t.shape == (12, 3) and e["data_1/translation"].attrs["units"] == "m"
        assert np.allclose(-t[:, 0], x_m, rtol=1e-12, atol=0)
        assert np.allclose(-t[:, 1], y_m, rtol=1e-12, atol=0)
        assert not t[:, 2].any()
        assert np.ptp(t[:, 0]) > 3 * np.ptp(t[:, 1])
        assert np.array_equal(e["sample_1/transformations/x"][()], t[:, 0])
        assert np.array_equal(e["sample_1/transformations/y"][()], t[:, 1])

        probe, obj = e["image_1"], e["image_2"]
        assert np.array_equal(probe["data"][()], ds.probe)
        assert np.array_equal(obj["data"][()], ds.object)
        h, w = SHAPE
        assert np.allclose(obj["image_size"][()], [w * px, h * px, 0.0], rtol=1e-12, atol=0)
        assert np.allclose(probe["image_size"][()], [N * px, N * px, 0.0], rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- NPZ, Zarr


def test_npz_and_zarr_mean_the_dataset(tmp_path, noisy):
    ds = noisy
    path = tmp_path / "d.npz"
    io.save(ds, path, compress=True)
    s = ds.intensity_scale
    with np.load(path, allow_pickle=False) as f:
        amp = np.sqrt(_photons(ds.diffraction)).astype(np.float32) / np.float32(s)
        assert f["diff3d"].dtype == np.float32
        assert np.allclose(f["diff3d"], amp, rtol=1e-6, atol=0)
        assert not f["diff3d"][:, ~_valid()].any()
        assert np.array_equal(f["readings"], ds.diffraction)
        assert f["readings"].dtype == np.uint16
        assert np.array_equal(f["xcoords"], ds.positions_true[:, 0])
        assert np.array_equal(f["ycoords"], ds.positions_true[:, 1])
        assert np.array_equal(f["xcoords_start"], ds.positions_nominal[:, 0])
        assert np.array_equal(f["probeGuess"], ds.probe[0])
        assert np.array_equal(f["probe_modes"], ds.probe)
        assert np.array_equal(f["mask"], _valid())
        assert np.array_equal(f["Y"][..., 0], ds.patches)

    zarr = pytest.importorskip("zarr")
    zpath = tmp_path / "d.zarr"
    io.save(ds, zpath)
    g = zarr.open_group(zpath, mode="r")
    assert g["diffraction"].dtype == np.uint16
    assert np.array_equal(g["diffraction"][...], ds.diffraction)
    assert np.array_equal(g["mask"][...], _valid())
    assert np.array_equal(g["positions_true"][...], ds.positions_true)
    assert g["positions_true"].metadata.dimension_names == ("pattern", "xy")
    meta = g.attrs["ptyfast"]
    assert meta["detector"]["gain"] == 3.0 and meta["detector"]["offset"] == 10.0
    assert meta["geometry"] == {
        "energy_eV": ENERGY_EV,
        "distance_m": DISTANCE_M,
        "detector_pixel_m": 55e-6,
        "N": N,
    }
    assert meta["readings_dtype"] == np.dtype(np.uint16).str


# ---------------------------------------------------------------------------- ptyfast's readers

_EXT = {"npz": "npz", "ptychodus": "ptychodus.h5", "cxi": "cxi", "zarr": "zarr"}


@pytest.mark.parametrize("fmt", list(_EXT))
def test_every_format_round_trips_the_non_ideal_dataset(tmp_path, noisy, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    ds = noisy
    path = tmp_path / f"d.{_EXT[fmt]}"
    io.save(ds, path)
    back = ptyfast.open(path)
    for k in ("diffraction", "mask", "positions_true", "positions_nominal", "probe", "object"):
        a, b = getattr(ds, k), getattr(back, k)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k
    assert back.patches is not None and back.patches.tobytes() == ds.patches.tobytes()
    assert back.detector == ds.detector and not back.detector.is_ideal
    assert back.geometry == ds.geometry
    assert back.provenance == ds.provenance
    assert back.photons == ds.photons and back.intensity_scale == ds.intensity_scale


def test_foreign_readings_of_ptychodus_and_cxi_agree(tmp_path, noisy):
    ds = noisy
    paths = {"ptychodus": tmp_path / "d.ptychodus.h5", "cxi": tmp_path / "d.cxi"}
    for fmt, path in paths.items():
        io.save(ds, path)
        with h5py.File(path, "r+") as f:
            del f["ptyfast" if fmt == "ptychodus" else "entry_1/ptyfast"]
    a, b = (ptyfast.open(p) for p in paths.values())
    want = _photons(ds.diffraction).astype(np.float32)
    for back in (a, b):
        assert back.diffraction.dtype == np.float32
        assert np.array_equal(back.diffraction, want)
        assert np.array_equal(back.mask, _valid())
        assert np.allclose(back.positions_true, ds.positions_true, rtol=0, atol=1e-9)
        assert back.geometry.distance_m == DISTANCE_M
        assert back.geometry.detector_pixel_m == 55e-6
        assert back.geometry.energy_eV == pytest.approx(ENERGY_EV, rel=1e-15)
        assert back.geometry.object_pixel_m == pytest.approx(_object_pixel_m(55e-6), rel=1e-12)
    assert a.photons == b.photons == ds.photons


# ---------------------------------------------------------------------------- ptychodus NPZ


def test_ptychodus_slac_npz_plugin_reads_our_geometry(tmp_path, noisy):
    pytest.importorskip("ptychodus")
    from ptychodus.api.plugins import PluginRegistry

    ds = noisy
    path = tmp_path / "d.npz"
    io.save(ds, path)
    reader = PluginRegistry.load_plugins().product_file_readers.get_strategy_by_name("SLAC_NPZ")
    product = reader.read(Path(path))
    md = product.metadata
    assert md.detector_distance_m == DISTANCE_M  # its default is 0.75 m
    assert md.photon_energy_eV == ENERGY_EV  # its default is 8000 eV
    # it scales pixel positions by λ·z/(N·Δ) from those fields: our object pixel
    x_m = product.probe_positions.get_coordinates_x_m()
    px = _object_pixel_m(55e-6)
    assert np.allclose(x_m, ds.positions_nominal[:, 0] * px, rtol=1e-12, atol=0)
    assert math.isclose(md.photon_wavelength_m * DISTANCE_M / (N * 55e-6), px, rel_tol=1e-12)


def test_zarr_conventions_attribute_holds_for_the_stored_arrays(tmp_path):
    """The store's ``conventions`` text, checked against its own arrays: expected photons
    ``(s·A)²`` with ``A²`` summed over the modes, and no unit-norm claim for one mode."""
    zarr = pytest.importorskip("zarr")
    ds = _simulate(_detector(poisson=False, full_well=1e7))
    io.save(ds, tmp_path / "two.zarr")
    g = zarr.open_group(tmp_path / "two.zarr", mode="r")
    conv = g.attrs["conventions"]
    assert "(intensity_scale * A)^2" in conv["units"]
    probe, patches = g["probe"][...], g["patches"][...]
    a2 = sum(np.abs(np.fft.fftshift(np.fft.fft2(p * patches), axes=(-2, -1))) ** 2 for p in probe)
    s = g.attrs["ptyfast"]["intensity_scale"]
    want = s**2 * a2 / N**2
    got = _photons(g["diffraction"][...])
    assert np.allclose(got[:, _valid()], want[:, _valid()], rtol=1e-4, atol=1e-2)

    # one mode keeps its norm (the dose is in the scale): the text must not claim |P|² = 1
    p = np.zeros((N, N), np.complex64)
    p[4:12, 3:11] = 3.0
    g2 = Geometry(energy_eV=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=1e-3, N=N)
    one = ptyfast.simulate(
        ptyfast.Experiment(_object(), p, _scan(), photons=1e4, geometry=g2), seed=1
    )
    io.save(one, tmp_path / "one.zarr")
    g = zarr.open_group(tmp_path / "one.zarr", mode="r")
    assert np.sum(np.abs(g["probe"][...]) ** 2) == pytest.approx(576.0)
    assert "|P|^2 = 1;" not in g.attrs["conventions"]["units"]


def test_ptychodus_cxi_plugins_read_the_non_ideal_two_mode_file(tmp_path, noisy):
    pytest.importorskip("ptychodus")
    from ptychodus.api.plugins import PluginRegistry

    ds = noisy
    path = tmp_path / "d.cxi"
    io.save(ds, path)
    registry = PluginRegistry.load_plugins()
    data = registry.diffraction_file_readers.get_strategy_by_name("CXI").read(path)
    patterns = np.concatenate([a.get_patterns() for a in data])
    assert np.array_equal(patterns, _photons(ds.diffraction).astype(np.float32))
    assert np.array_equal(data.get_bad_pixels(), ~_valid())  # ptychodus: mask != 0 is bad
    md = data.get_metadata()
    assert md.photon_energy_eV == pytest.approx(ENERGY_EV, rel=1e-15)
    assert md.detector_distance_m == DISTANCE_M
    product = registry.product_file_readers.get_strategy_by_name("CXI").read(path)
    assert product.probes.get_array().shape == (1, 2, N, N)
    assert np.array_equal(product.probes.get_array()[0], ds.probe)
    pg = product.probes.get_pixel_geometry()
    assert pg.width_m == pytest.approx(_object_pixel_m(55e-6), rel=1e-12)


@pytest.mark.parametrize("transparent", [True, False])
def test_ptychodus_probe_photon_count_is_the_mean_pattern_dose(tmp_path, transparent):
    """``probe_photon_count`` holds ``photons``, the mean photons per pattern reaching the
    detector; ptychodus uses it as the probe's total intensity, which is ``s²·Σ|P|²``: the
    same number for a transparent object, larger by the inverse mean transmission otherwise
    (documented in ``ptyfast.io.ptychodus``)."""
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_product

    obj = _object()
    if transparent:
        obj = np.exp(1j * np.angle(obj)).astype(np.complex64)
    g = Geometry(energy_eV=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=1e-3, N=N)
    e = ptyfast.Experiment(obj, _probe(), _scan(), photons=2e4, geometry=g)
    ds = ptyfast.simulate(e, seed=1, patches=True)
    product_path, _ = io.save(ds, tmp_path / "p.ptychodus.h5")
    product = load_product(product_path)
    count = product.metadata.probe_photon_count
    s2 = ds.intensity_scale**2
    probe = product.probes.get_array()[0]
    illuminated = np.mean([np.sum(np.abs(probe * p) ** 2) for p in ds.patches])
    assert count == 2e4
    assert count == pytest.approx(s2 * illuminated, rel=1e-6)
    probe_photons = s2 * np.sum(np.abs(probe) ** 2)
    if transparent:
        assert probe_photons == pytest.approx(count, rel=1e-6)
    else:
        assert probe_photons > 1.3 * count


def test_ptychodus_raw_data_bundle_of_the_non_ideal_two_mode_dataset(tmp_path, noisy):
    """``raw_data=True``: PtychoPINN's amplitudes of the photon estimates, true pixel
    positions, the first probe mode, the dose and scale in ``_metadata``."""
    ds = noisy
    product_path, _ = io.save(ds, tmp_path / "r.ptychodus.h5", raw_data=True)
    s = ds.intensity_scale
    with h5py.File(product_path, "r") as f:
        rd = f["raw_data"]
        amp = np.sqrt(_photons(ds.diffraction)).astype(np.float32) / np.float32(s)
        assert rd["diffraction"].dtype == np.float32
        assert np.allclose(rd["diffraction"][()], amp, rtol=1e-6, atol=0)
        assert np.array_equal(rd["xcoords"][()], ds.positions_true[:, 0])
        assert np.array_equal(rd["ycoords"][()], ds.positions_true[:, 1])
        assert np.array_equal(rd["probeGuess"][()], ds.probe[0])
        assert np.array_equal(rd["objectGuess"][()], ds.object)
        meta = json.loads(rd["_metadata"][()])
        assert meta == {"nphotons": ds.photons, "intensity_scale": s}


def test_ptychodus_ptychopinn_export_read_by_ptyfast(tmp_path, noisy):
    """ptychodus' own PtychoPINN NPZ (``save_ptychopinn_training_data``) of our pair, read
    back by ``ptyfast.open``: its ``bad_pixels`` become the mask. Its ``diff3d`` holds
    intensities and its pixel positions follow the ``(N−1)/2`` centre (``x − ½``), unlike
    PtychoPINN's contract; ptyfast reads the contract (documented in ``ptyfast.io.npz``)."""
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import (
        load_diffraction_data,
        load_product,
        save_ptychopinn_training_data,
    )
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    ds = noisy
    product_path, diffraction_path = io.save(ds, tmp_path / "e.ptychodus.h5")
    recon = prepare_reconstruct_input(
        load_diffraction_data(diffraction_path), load_product(product_path)
    )
    export = tmp_path / "pinn.npz"
    save_ptychopinn_training_data(export, recon, inpaint_bad_pixels=False)
    with np.load(export) as f:
        assert np.array_equal(f["bad_pixels"], ~_valid())
        assert np.allclose(f["diff3d"], _photons(ds.diffraction))  # intensities
        assert np.allclose(f["xcoords"], ds.positions_true[:, 0] - 0.5, atol=1e-9)
    back = ptyfast.open(export)
    assert np.array_equal(back.mask, _valid())
    assert np.array_equal(back.probe, ds.probe)
    assert np.allclose(back.diffraction, _photons(ds.diffraction) ** 2, rtol=1e-6)


def test_foreign_npz_bad_pixels_must_be_booleans(tmp_path):
    """A PtychoPINN NPZ's ``bad_pixels`` is read as the mask only when it holds booleans or
    0/1 integers: strings, NaN and other values are a ``FormatError``, not a mask of every
    pixel bad (their truth values)."""
    n, m = 8, 3
    base = {
        "diff3d": np.ones((m, n, n), np.float32),
        "xcoords": np.arange(m, dtype=np.float64),
        "ycoords": np.arange(m, dtype=np.float64),
        "probeGuess": np.ones((n, n), np.complex64),
        "objectGuess": np.ones((16, 16), np.complex64),
    }
    good = np.zeros((n, n), np.uint8)
    good[2, 3] = 1
    np.savez(tmp_path / "ok.npz", **base, bad_pixels=good)
    assert np.array_equal(ptyfast.open(tmp_path / "ok.npz").mask, good == 0)
    for name, bad in {
        "str": np.full((n, n), "x"),
        "nan": np.full((n, n), np.nan),
        "two": np.full((n, n), 2, np.uint8),
    }.items():
        np.savez(tmp_path / f"{name}.npz", **base, bad_pixels=bad)
        with pytest.raises(io.FormatError, match="member 'bad_pixels' must hold booleans"):
            ptyfast.open(tmp_path / f"{name}.npz")


def test_foreign_cxi_mask_bits_that_exclude_a_pixel(tmp_path, noisy):
    """A CXI file of another tool flags pixels with CXI's other bits too (Maia 2012, as
    cheetah writes them): saturated 0x2, hot 0x4, dead 0x8, shadowed 0x10, ignored 0x40,
    bad 0x80, missing 0x200 exclude a pixel without 0x1; a peak-mask bit (0x20) does not."""
    ds = noisy
    path = tmp_path / "d.cxi"
    io.save(ds, path)
    flags = np.zeros((N, N), np.uint32)
    excluding = [0x2, 0x4, 0x8, 0x10, 0x40, 0x80, 0x200]
    for k, bit in enumerate(excluding):
        flags[1, k] = bit
    flags[5, 5] = 0x20  # in a hit finder's peak mask: a valid pixel
    flags[~_valid()] |= 0x1
    with h5py.File(path, "r+") as f:
        del f["entry_1/ptyfast"]
        f["entry_1/instrument_1/detector_1/mask"][...] = flags
    want = _valid()
    want[1, : len(excluding)] = False
    assert want[5, 5]
    assert np.array_equal(ptyfast.open(path).mask, want)


def test_cxi_mask_marks_module_gaps_missing(tmp_path):
    det = Detector(module_px=(7, 64), gap_px=(2, 0))
    ds = _simulate(det)
    gap = (det.pixel_map(N) & ptyfast.model.detector.PIXEL_CODES["gap"]) != 0
    assert gap.any() and np.array_equal(ds.mask, ~gap)
    path = tmp_path / "g.cxi"
    io.save(ds, path)
    with h5py.File(path, "r") as f:
        mask = f["entry_1/instrument_1/detector_1/mask"][()]
    assert np.array_equal(mask, np.where(gap, 0x201, 0).astype(np.uint32))


def test_exposure_time_reaches_ptychodus(tmp_path):
    """A detector with an exposure (and dead time) gives ptychodus its exposure time; one
    without gives 0 (unknown), in the product and in the CXI file's ptychodus group."""
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_product
    from ptychodus.api.plugins import PluginRegistry

    ds = _simulate(Detector(dead_time_s=1e-7, exposure_s=2.5e-3))
    product_path, _ = io.save(ds, tmp_path / "x.ptychodus.h5")
    assert load_product(product_path).metadata.exposure_time_s == 2.5e-3
    io.save(ds, tmp_path / "x.cxi")
    cxi = PluginRegistry.load_plugins().diffraction_file_readers.get_strategy_by_name("CXI")
    assert cxi.read(tmp_path / "x.cxi").get_metadata().exposure_time_s == 2.5e-3
    ideal = _simulate(Detector())
    product_path, _ = io.save(ideal, tmp_path / "i.ptychodus.h5")
    assert load_product(product_path).metadata.exposure_time_s == 0.0


def test_cxi_nxdata_axes_follow_nexus(tmp_path, noisy):
    """NeXus NXdata: ``@signal``, ``@axes`` (one name per dimension of the signal, ``.`` for
    none) and ``@AXISNAME_indices`` are **attributes** of the group; the axis fields have
    the length of the signal's dimension they index and hold the sample positions."""
    path = tmp_path / "d.cxi"
    io.save(noisy, path)
    with h5py.File(path, "r") as f:
        nxd = f["entry_1/data"]
        signal = nxd[nxd.attrs["signal"]]
        axes = [a.decode() if isinstance(a, bytes) else a for a in nxd.attrs["axes"]]
        assert len(axes) == signal.ndim and axes[1:] == [".", "."]
        for name in ("x", "y"):
            assert f"{name}_indices" not in nxd  # not a field
            assert int(nxd.attrs[f"{name}_indices"]) == 0
            assert nxd[name].shape == (signal.shape[0],)
        t = f["entry_1/sample_1/geometry_1/translation"][()]
        assert np.array_equal(nxd["x"][()], t[:, 0])
        assert np.array_equal(nxd["y"][()], t[:, 1])


def _basis_reader_pixels(det_basis: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Probe positions in object pixels ``(row, col)`` as a basis-aware CXI reader (cdtools'
    scheme) finds them: the probe moves by ``−translation``; the exit-wave pixel vectors are
    ``λ·z · pinv(N · B)ᵀ`` for the detector's (3, 2) basis ``B`` (columns: slow, fast)."""
    wavelength = H_J_S * C_M_S / (ENERGY_EV * E_C)
    real = wavelength * DISTANCE_M * np.linalg.pinv(det_basis * N).T
    return (np.linalg.pinv(real) @ (-translation).T).T


def test_cxi_detector_basis_keeps_x_along_columns(tmp_path, noisy):
    """CXI's detector ``basis_vectors`` (slow row first): rows along +y, columns along +x, the
    frame of the translations. Without them a basis-aware reader takes its default (cdtools:
    columns along −x, rows along −y) and sees the scan point-mirrored (it would reconstruct
    the twin, ``conj(O(−r))``)."""
    ds = noisy
    path = tmp_path / "d.cxi"
    io.save(ds, path)
    dp = 55e-6
    with h5py.File(path, "r") as f:
        det = f["entry_1/instrument_1/detector_1"]
        b = det["basis_vectors"]
        assert b.attrs["units"] == "m"
        assert np.array_equal(b[()], [[0.0, dp, 0.0], [dp, 0.0, 0.0]])
        t = f["entry_1/data_1/translation"][()]
        ours = _basis_reader_pixels(b[()].T, t)
    rel = ds.positions_true - ds.positions_true[0]
    assert np.allclose(ours - ours[0], rel[:, ::-1], atol=1e-6)  # (row, col) = (y, x)
    default = np.array([[0.0, -dp, 0.0], [-dp, 0.0, 0.0]]).T
    theirs = _basis_reader_pixels(default, t)
    assert np.allclose(theirs - theirs[0], -rel[:, ::-1], atol=1e-6)

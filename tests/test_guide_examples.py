"""Every code example of the data-generation guide, with ``ptycho`` → ``ptyfast``.

Placeholders the guide leaves open (``probeGuess``, ``objectGuess``, ``measured_patterns``,
``full_object``, ``coords_x`` …) are filled with small concrete arrays; everything else is the
guide's code as written. The two grid examples run at the guide's full size (N = 128,
size 392, two objects: 34,848 patterns), which the reference cannot do on these machines.
"""

import numpy as np
import pytest

from ptyfast import params


@pytest.fixture(autouse=True)
def _restore_params():
    saved = dict(params.cfg)
    yield
    params.cfg.clear()
    params.cfg.update(saved)


@pytest.fixture
def probeGuess():
    from ptyfast.probe import get_default_probe

    return get_default_probe(N=64, fmt="np").astype(np.complex64)


@pytest.fixture
def objectGuess():
    from ptyfast.diffsim import sim_object_image

    return sim_object_image(256, data_source="lines", seed=3)


# --------------------------------------------------------------------------- Grid-Based Pipeline


@pytest.mark.slow
def test_grid_entry_point_with_required_setup():
    # "Required params.cfg Setup"
    from ptyfast.params import params as p

    p.set("N", 128)  # Patch size
    p.set("gridsize", 2)  # 2x2 = 4 patches per group
    p.set("offset", 4)  # Intra-group spacing
    p.set("outer_offset_train", 8)  # Training grid stride
    p.set("outer_offset_test", 20)  # Test grid stride
    p.set("nphotons", 1e9)  # Photon count for Poisson noise
    p.set("size", 392)  # Object size
    p.set("data_source", "lines")  # Object type
    p.set("max_position_jitter", 3)  # Position buffer
    p.set("sim_jitter_scale", 0.0)  # Jitter std (0 = no jitter)

    from ptyfast.probe import get_default_probe

    probeGuess = get_default_probe(N=128, fmt="np")

    # "Entry Point"
    from ptyfast.diffsim import mk_simdata

    X, Y_I, Y_phi, coords = mk_simdata(
        nimgs=2,  # Number of outer grid positions
        size=392,  # Object canvas size
        probe=probeGuess,  # Complex probe array
        outer_offset=8,  # Stride between groups
    )
    # "Output Format": (nimgs × G1², N, N, gridsize²), already grouped
    assert X.shape == Y_I.shape == Y_phi.shape == (2 * 66 * 66, 128, 128, 4)
    assert coords.shape == (2 * 66 * 66, 1, 2, 4)
    assert X.dtype == np.float32 and np.isfinite(X).all()


@pytest.mark.tf
def test_grid_direct_container_construction(probeGuess):
    params.set("N", 64)
    params.set("gridsize", 2)
    params.set("data_source", "lines")
    from ptyfast.diffsim import mk_simdata

    d = mk_simdata(1, 100, probeGuess, 8, dict_fmt=True, seed=1)
    X, Y_I, Y_phi, coords = d["X"], d["Y_I"], d["Y_phi"], d["coords"][0]
    intensity_scale = d["intensity_scale"]

    # the guide's code
    import tensorflow as tf

    from ptyfast.diffsim import scale_nphotons
    from ptyfast.loader import PtychoDataContainer, compute_dataset_intensity_stats

    # Compute stats from raw/normalized diffraction for dataset-derived intensity_scale
    # For normalized data (e.g., from mk_simdata), pass is_normalized=True and intensity_scale
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
    assert len(container) == X.shape[0]
    np.testing.assert_array_equal(container.X, X)
    # as the guide promises, the statistics give the dataset-derived scale: the simulation's
    from ptyfast.loader import calculate_intensity_scale

    derived = calculate_intensity_scale(container, nphotons=params.cfg["nphotons"])
    assert derived == pytest.approx(float(intensity_scale), rel=1e-3)


# --------------------------------------------------------------------------- Nongrid Pipeline


def test_nongrid_entry_point_and_grouping(objectGuess, probeGuess):
    from ptyfast.config import ModelConfig, TrainingConfig
    from ptyfast.nongrid_simulation import generate_simulated_data

    config = TrainingConfig(
        model=ModelConfig(N=64, gridsize=2),
        n_groups=2000,
        nphotons=1e9,
    )

    raw_data = generate_simulated_data(
        config=config,
        objectGuess=objectGuess,
        probeGuess=probeGuess,
        buffer=15.0,  # Edge buffer for random positions
    )
    # Guide error (COMPATIBILITY.md): the default return_patches=True returns (raw, Y).
    assert isinstance(raw_data, tuple) and len(raw_data) == 2
    raw_data, _ = raw_data
    assert raw_data.diff3d.shape == (2000, 64, 64)
    assert raw_data.xcoords.shape == raw_data.ycoords.shape == (2000,)

    # "Grouping Step (Required for Training)"
    grouped_data = raw_data.generate_grouped_data(
        N=config.model.N,
        K=config.neighbor_count,  # Neighbors to consider
        nsamples=config.n_groups,  # Groups to generate
        gridsize=config.model.gridsize,  # Patterns per group
    )

    from ptyfast.loader import load

    container = load(lambda: grouped_data, probeGuess, which=None, create_split=False)
    assert container.X.shape == (2000, 64, 64, 4)
    assert grouped_data["nn_indices"].dtype == np.int32


def test_object_generation():
    from ptyfast.diffsim import mk_lines_img, sim_object_image

    # Lines pattern
    obj = mk_lines_img(size=392, nlines=400)
    assert obj.shape == (392, 392, 3)

    # GRF (Gaussian Random Field)
    from ptyfast.params import params as p

    p.set("data_source", "grf")
    obj = sim_object_image(size=256, which="train")
    assert obj.shape == (256, 256) and obj.dtype == np.complex64


@pytest.mark.slow
def test_notebook_compatible_grid_simulation():
    """Reproduce notebooks/dose_dependence.ipynb data generation."""
    from ptyfast.diffsim import mk_simdata
    from ptyfast.params import params as p
    from ptyfast.probe import get_default_probe

    # Setup (matches dose.py::init())
    p.set("N", 128)
    p.set("gridsize", 2)
    p.set("offset", 4)
    p.set("outer_offset_train", 8)
    p.set("outer_offset_test", 20)
    p.set("nphotons", 1e9)
    p.set("size", 392)
    p.set("data_source", "lines")

    # Generate probe
    probe = get_default_probe(N=128, fmt="np")

    # Simulate
    X_train, Y_I_train, Y_phi_train, coords_train = mk_simdata(
        nimgs=2, size=392, probe=probe, outer_offset=8
    )
    assert X_train.shape == (8712, 128, 128, 4)
    assert Y_I_train.dtype == Y_phi_train.dtype == np.float32
    assert coords_train.shape == (8712, 1, 2, 4)


# --------------------------------------------------------------------------- 4. Alternative flows


def test_4_1_programmatic_nongrid_simulation():
    from ptyfast.config.config import ModelConfig, TrainingConfig
    from ptyfast.diffsim import sim_object_image
    from ptyfast.nongrid_simulation import generate_simulated_data
    from ptyfast.probe import get_default_probe

    # 1. Configure simulation
    config = TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=2000, nphotons=1e6)

    # 2. Generate synthetic object (256x256 "lines" pattern)
    obj = sim_object_image(256, data_source="lines")  # Returns complex64

    # 3. Get default disk probe
    probe = get_default_probe(N=64, fmt="np")  # Returns (64, 64) complex

    # 4. Generate simulated data with random scan coordinates
    raw_data, gt_patches = generate_simulated_data(
        config=config,
        objectGuess=obj,
        probeGuess=probe,
        buffer=20.0,  # Min distance from object edges
        return_patches=True,
    )
    assert obj.dtype == np.complex64 and obj.shape == (256, 256)
    assert raw_data.xcoords.min() >= 20.0 and raw_data.xcoords.max() < 236.0
    assert raw_data.diff3d.shape == (2000, 64, 64)
    assert gt_patches.shape == (2000, 64, 64, 1)
    assert raw_data.probeGuess.shape == (64, 64)


def test_4_2_direct_raw_data_construction(probeGuess):
    from ptyfast.raw_data import RawData

    n_positions = 1000
    N = 64
    measured_patterns = np.random.default_rng(0).random((n_positions, N, N)).astype(np.float32)
    probe = probeGuess
    full_object = np.ones((256, 256), np.complex64)

    # Option A: From arrays with pre-computed diffraction
    raw_data = RawData(
        xcoords=np.random.uniform(50, 200, n_positions),
        ycoords=np.random.uniform(50, 200, n_positions),
        xcoords_start=np.random.uniform(50, 200, n_positions),  # Can equal xcoords
        ycoords_start=np.random.uniform(50, 200, n_positions),  # Can equal ycoords
        diff3d=np.random.rand(n_positions, N, N).astype(np.float32),
        probeGuess=np.ones((N, N), dtype=np.complex64),
        scan_index=np.zeros(n_positions, dtype=int),
        objectGuess=None,  # Optional full object
        Y=None,  # Optional ground truth patches
    )
    assert raw_data.diff3d.shape == (1000, 64, 64)

    # Option B: Simplified construction (start coords = end coords)
    raw_data = RawData.from_coords_without_pc(
        xcoords=np.linspace(50, 200, n_positions),
        ycoords=np.linspace(50, 200, n_positions),
        diff3d=measured_patterns,
        probeGuess=probe,
        scan_index=np.zeros(n_positions, dtype=int),
        objectGuess=full_object,  # Optional
    )
    np.testing.assert_array_equal(raw_data.xcoords_start, raw_data.xcoords)

    # Option C: Simulate diffraction from object (gridsize=1 only)
    raw_data = RawData.from_simulation(
        xcoords=np.array([100, 110, 120]),
        ycoords=np.array([100, 105, 115]),
        probeGuess=probe,
        objectGuess=full_object,
        scan_index=None,  # Defaults to zeros
    )
    assert raw_data.diff3d.shape == (3, 64, 64)
    np.testing.assert_array_equal(raw_data.scan_index, np.zeros(3))


def test_4_3_factory_path():
    from ptyfast.loader import PtychoDataContainer
    from ptyfast.raw_data import RawData

    sim = RawData.from_simulation(
        np.random.default_rng(0).uniform(40, 216, 1500),
        np.random.default_rng(1).uniform(40, 216, 1500),
        np.ones((64, 64), np.complex64),
        np.ones((256, 256), np.complex64),
        nphotons=1e6,
        seed=0,
    )
    coords_x, coords_y, patterns, probe = sim.xcoords, sim.ycoords, sim.diff3d, sim.probeGuess

    # Or via factory (combines RawData creation + grouping + loading)
    # Note: The factory path handles stats automatically via loader.load()
    container = PtychoDataContainer.from_raw_data_without_pc(
        xcoords=coords_x,
        ycoords=coords_y,
        diff3d=patterns,
        probeGuess=probe,
        scan_index=np.zeros(len(coords_x), dtype=int),
        objectGuess=None,
        N=64,
        K=7,
        nsamples=1000,
    )
    assert len(container) == 1000
    assert container.X.shape == (1000, 64, 64, params.cfg["gridsize"] ** 2)
    assert container.dataset_intensity_stats["batch_mean_sum_intensity"] > 0


def test_4_4_test_fixture_pattern():
    from ptyfast.raw_data import RawData

    def create_synthetic_raw_data(n_points=100, N=64, seed=42):
        """Create synthetic RawData for testing (deterministic, no I/O)."""
        np.random.seed(seed)

        # Deterministic coordinates (reproducible across runs)
        xcoords = np.linspace(50, 150, n_points)
        ycoords = np.linspace(50, 150, n_points)

        # Synthetic diffraction patterns
        diff3d = np.random.rand(n_points, N, N).astype(np.float32)

        # Simple uniform probe
        probe = np.ones((N, N), dtype=np.complex64)

        return RawData.from_coords_without_pc(
            xcoords, ycoords, diff3d, probe, scan_index=np.zeros(n_points, dtype=int)
        )

    # Usage in tests
    raw_data = create_synthetic_raw_data(n_points=50, seed=42)
    again = create_synthetic_raw_data(n_points=50, seed=42)
    np.testing.assert_array_equal(raw_data.diff3d, again.diff3d)
    assert raw_data.diff3d.shape == (50, 64, 64)

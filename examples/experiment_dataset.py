"""Experiment → simulate → Dataset: units, PtychoPINN's RawData, a preview.

``Dataset.diffraction`` holds the detector's readings (here counts); the intensity scale
``s`` turns the unit-power probe into photons; ``to_raw_data`` gives PtychoPINN's amplitudes
``diff3d = sqrt(photons) / s``. With a geometry, pixels have sizes in metres.
"""

import numpy as np

import ptyfast
from ptyfast import objects, probes, scans

g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
e = ptyfast.Experiment(
    objects.recipe("dead_leaves", shape=128, seed=2),
    probes.recipe("gaussian", N=32, sigma_px=5.0, operations=[{"op": "modes", "n": 2}]),
    scans.fermat_spiral(100, 2.0).jitter(0.3, seed=1),
    ptyfast.Detector.eiger(qe=0.9),
    photons=1e6,  # mean photons per pattern reaching the detector, before QE
    geometry=g,
)
ds = ptyfast.simulate(e, seed=7)
print(ds)
print(
    f"object pixel {g.object_pixel_m * 1e9:.1f} nm; scan spans "
    f"{np.ptp(ds.positions_true[:, 0]) * g.object_pixel_m * 1e6:.2f} µm"
)

# Units: mean detected photons per pattern = photons × QE (Poisson: within a few σ).
detected = ds.detector.readings_to_photons(ds.diffraction).sum(axis=(1, 2))
print(f"detected photons per pattern: {detected.mean():.0f} (expected {0.9 * 1e6:.0f})")
assert abs(detected.mean() - 0.9e6) < 5 * np.sqrt(0.9e6 / len(ds))

# The probe modes have unit total power; s scales them to photons.
assert np.isclose((np.abs(ds.probe.astype(np.complex128)) ** 2).sum(), 1.0, rtol=1e-5)
raw = ds.to_raw_data()  # PtychoPINN's RawData: diff3d = sqrt(detected photons) / s
np.testing.assert_allclose(
    (raw.diff3d.astype(np.float64) * ds.intensity_scale) ** 2,
    ds.diffraction,
    rtol=1e-5,
)
print("RawData:", raw.diff3d.shape, "probeGuess", raw.probeGuess.shape)

try:  # the preview (matplotlib: pip install 'ptyfast[plot]')
    from ptyfast import plotting

    print("wrote", plotting.preview(ds, "experiment_preview.png", overwrite=True, dpi=50))
except ImportError as exc:
    print("no preview:", exc)

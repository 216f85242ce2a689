"""Detectors: the same experiment read by the presets, and what their readings mean.

A ``ptyfast.Detector`` turns the expected photons of each pixel into readings (counts or ADU)
in the detector's dtype; its ``mask`` marks the valid pixels and ``readings_to_photons``
inverts the affine part (gain, offset, dark). The presets carry their module geometry: place
the beam with ``beam_px`` to see the gaps in an ``N × N`` crop.
"""

import numpy as np

import ptyfast
from ptyfast import Detector, objects, probes, scans

detectors = {
    "ideal": Detector.ideal(),  # exact Poisson counts, float32: PtychoPINN's bits
    "eiger": Detector.eiger("4M", qe=0.9, beamstop_radius_px=3.0, beam_px=(500, 1000)),
    "pilatus": Detector.pilatus("1M"),  # 20-bit counters: saturate at 2**20 - 1
    "integrating": Detector.integrating(read_noise=2.0, hot_fraction=0.001, bad_pixel_seed=3),
}
for name, det in detectors.items():
    e = ptyfast.Experiment(
        objects.dead_leaves(128, seed=1), probes.disk(64), scans.raster(4, 4, 4.0), det, 1e6
    )
    ds = ptyfast.simulate(e, seed=2)
    photons = det.readings_to_photons(ds.diffraction)  # detected photons, 0 where masked
    valid = int(ds.mask.sum())
    print(
        f"{name:>11}: readings {ds.diffraction.dtype}, {valid}/{64 * 64} valid pixels, "
        f"mean detected photons/pattern {photons.sum(axis=(1, 2)).mean():.4g}"
    )
    if name == "eiger":  # gap pixels have no sensor: they read 0, and are masked
        gap = (det.pixel_map(64) & ptyfast.model.detector.PIXEL_CODES["gap"]) != 0
        assert gap.any() and np.all(ds.diffraction[:, gap] == 0) and not ds.mask[gap].any()
    if name == "integrating":  # readings in ADU: gain·(counts + dark) + offset + read noise
        assert ds.diffraction.dtype == np.uint16 and ds.diffraction[:, ds.mask].min() > 50
        # full_well = 65000 ADU is (65000 - 100) / 10 = 6490 photons: the bright centre clips,
        # so fewer photons are detected than reach the detector
        assert ds.diffraction.max() == det.full_well

# PtychoPINN's amplitudes from any detector: diff3d = sqrt(detected photons) / s
raw = ds.to_raw_data()
print("to_raw_data:", raw.diff3d.shape, raw.diff3d.dtype)

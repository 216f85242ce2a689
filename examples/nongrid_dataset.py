"""Nongrid simulation: random positions, one pattern each; the raw NPZ file and its contents.

``diff3d`` holds amplitudes divided by the intensity scale ``s`` (see Conventions): squaring
and multiplying by ``s**2`` gives back the photon counts, whose mean total is ``nphotons``.
"""

import numpy as np

from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.diffsim import sim_object_image
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.probe import get_default_probe
from ptyfast.raw_data import RawData

N, n_patterns, photons = 32, 500, 1e6
config = TrainingConfig(model=ModelConfig(N=N), n_groups=n_patterns, nphotons=photons)
obj = sim_object_image(128, data_source="lines", seed=1)
raw = generate_simulated_data(
    config, obj, get_default_probe(N), buffer=10.0, return_patches=False, seed=7
)

# Counts from the stored amplitudes: integers, mean total = nphotons (up to shot noise).
s = raw.intensity_scale
counts = (raw.diff3d.astype(np.float64) * s) ** 2
print(
    f"intensity scale s = {s:.4g}; mean photons per pattern = {counts.sum(axis=(1, 2)).mean():.4g}"
)
assert np.allclose(counts, np.round(counts), atol=1e-2 * counts.max() ** 0.5)

# Positions (object pixels, x = column, y = row) stay `buffer` away from the edges.
print(
    f"x in [{raw.xcoords.min():.1f}, {raw.xcoords.max():.1f}], y in [{raw.ycoords.min():.1f}, "
    f"{raw.ycoords.max():.1f}] on a {obj.shape} object"
)

# The same seed gives the same data, bit for bit; the file round-trips exactly.
raw.to_file("nongrid.npz")
back = RawData.from_file("nongrid.npz")
assert np.array_equal(back.diff3d, raw.diff3d) and np.array_equal(back.xcoords, raw.xcoords)
again = generate_simulated_data(
    config, obj, get_default_probe(N), buffer=10.0, return_patches=False, seed=7
)
assert np.array_equal(again.diff3d, raw.diff3d)
print("nongrid.npz:", sorted(np.load("nongrid.npz").files))

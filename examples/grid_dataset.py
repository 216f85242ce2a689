"""Grid simulation (``diffsim.mk_simdata``) with every parameter given explicitly.

Each object contributes ``G1**2`` groups of ``gridsize**2`` patches on a regular grid; the
arrays are ``(B, N, N, C)`` with channel ``c`` at grid ``(row, col) = (c // gridsize,
c % gridsize)``.
"""

from ptyfast.diffsim import mk_simdata
from ptyfast.intensity import compute_dataset_intensity_stats
from ptyfast.probe import get_default_probe

N, gridsize = 32, 2
d = mk_simdata(
    1,
    96,
    get_default_probe(N),
    16,
    N=N,
    gridsize=gridsize,
    offset=4,
    nphotons=1e9,
    data_source="lines",
    seed=0,
    dict_fmt=True,
)
X, coords = d["X"], d["coords"][0]  # coords: (nominal, true)
print(f"X {X.shape} {X.dtype}, coords {coords.shape}, intensity scale {d['intensity_scale']:.4g}")

# The guide's statistics call gives back the simulation's intensity scale.
s = d["intensity_scale"]
stats = compute_dataset_intensity_stats(X, intensity_scale=s, is_normalized=True)
print(f"dataset statistics: batch_mean_sum_intensity = {stats['batch_mean_sum_intensity']:.4g}")
assert X.shape[-1] == gridsize**2 and coords.shape == (X.shape[0], 1, 2, gridsize**2)

"""Scans: builders, position errors (jitter, drift, affine), recipes, placement, and what a
simulated dataset keeps (true positions for the physics, nominal ones for a reconstruction).
"""

import json

import numpy as np

import ptyfast
from ptyfast import objects, probes, scans

spiral = scans.fermat_spiral(200, 3.0)
raster = scans.raster(10, 10, 6.0, snake=True)
print(spiral, raster, sep="\n")

# Errors move the true positions; nominal stays. They chain, in the order written.
rot = np.deg2rad(1.0)
scan = (
    spiral.jitter(0.5, seed=1)
    .drift((0.01, 0.005), random_walk_px=0.05, seed=2)
    .affine([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
)
assert np.array_equal(scan.nominal, spiral.nominal)
err = np.hypot(*(scan.true - scan.nominal).T)
print(f"position error: mean {err.mean():.2f} px, max {err.max():.2f} px")

# The jitter is the documented draw: Generator(PCG64(seed)).normal(0, sigma, (M, 2)).
jit = spiral.jitter(0.5, seed=1)
expect = np.random.Generator(np.random.PCG64(1)).normal(0.0, 0.5, (len(spiral), 2))
np.testing.assert_array_equal(jit.true, spiral.nominal + expect)

# The recipe is JSON and rebuilds the scan bit for bit.
text = json.dumps(scan.to_dict())
again = scans.Scan.from_dict(json.loads(text))
assert again.true.tobytes() == scan.true.tobytes()
print(f"recipe: {len(text)} bytes of JSON, errors {[op['op'] for op in scan.errors]}")

# Placed in a 160 x 160 object for N = 32: absolute positions, checked to stay inside.
nominal_abs, true_abs = scan.placed((160, 160), 32)
cx, cy = scans.placement_offset((160, 160), 32)
np.testing.assert_allclose(nominal_abs, scan.nominal + [cx, cy])
print(f"placement offset (cx, cy) = ({cx}, {cy})")
try:
    scans.raster(3, 3, 80.0).placed((160, 160), 32)
except ValueError as exc:
    print("refused:", str(exc)[:80], "...")

# The simulation uses the true positions; the dataset keeps both.
e = ptyfast.Experiment(
    objects.dead_leaves(160, seed=3), probes.gaussian(32, 4.0), scan, ptyfast.Detector(), 1e6
)
ds = ptyfast.simulate(e, seed=5)
np.testing.assert_array_equal(ds.positions_true, true_abs)
np.testing.assert_array_equal(ds.positions_nominal, nominal_abs)
raw = ds.to_raw_data()  # PtychoPINN: xcoords = true, xcoords_start = nominal
np.testing.assert_array_equal(raw.xcoords, true_abs[:, 0])
np.testing.assert_array_equal(raw.xcoords_start, nominal_abs[:, 0])
print(f"dataset: {len(ds)} patterns; the scan's recipe is in its provenance:",
      ds.provenance["experiment"]["scan"]["builder"])  # fmt: skip

"""A first dataset in five lines: 1000 patterns of 64 x 64 at random positions, saved to NPZ."""

from ptyfast import config, diffsim, nongrid_simulation, probe

cfg = config.TrainingConfig(model=config.ModelConfig(N=64), n_groups=1000, nphotons=1e9)
obj = diffsim.sim_object_image(256, data_source="lines", seed=1)
raw, patches = nongrid_simulation.generate_simulated_data(cfg, obj, probe.get_default_probe(64), 20)
raw.to_file("first_dataset.npz")
print(raw.diff3d.shape, raw.diff3d.dtype, patches.shape)  # (1000, 64, 64) float32 (1000, 64, 64, 1)

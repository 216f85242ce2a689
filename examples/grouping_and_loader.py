"""Grouping nongrid positions into ``gridsize**2`` neighbours, then the model-ready container.

``generate_grouped_data`` picks, for each sampled seed position, ``C = gridsize**2`` positions
among its ``K`` nearest neighbours (NumPy's legacy random stream, as the reference);
``loader.load`` turns the grouped dict into a ``PtychoDataContainer`` of NumPy arrays.
"""

import numpy as np

from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.diffsim import sim_object_image
from ptyfast.loader import load
from ptyfast.nongrid_simulation import generate_simulated_data
from ptyfast.probe import get_default_probe

N, gridsize = 32, 2
config = TrainingConfig(model=ModelConfig(N=N, gridsize=gridsize), n_groups=400, nphotons=1e9)
raw, _ = generate_simulated_data(
    config, sim_object_image(128, data_source="lines", seed=1), get_default_probe(N), 10.0
)
grouped = raw.generate_grouped_data(N=N, K=7, nsamples=200, gridsize=gridsize, seed=0)
print({k: v.shape for k, v in grouped.items() if isinstance(v, np.ndarray)})

nn = grouped["nn_indices"]  # (B, C) indices into the positions
assert nn.shape == (200, gridsize**2)

container = load(lambda: grouped, raw.probeGuess, nphotons=1e9)
print(container)
assert container.X.shape == (200, N, N, gridsize**2)

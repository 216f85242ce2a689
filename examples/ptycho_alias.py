"""Run code written for ``ptycho`` unchanged: alias PtychoPINN's data-generation modules.

Install the alias before the first ``ptycho`` import. It covers the data-generation modules
only; PtychoPINN's model and training code stay PtychoPINN's.
"""

import importlib
import sys

for name in (
    "",
    ".config",
    ".config.config",
    ".diffsim",
    ".loader",
    ".nongrid_simulation",
    ".params",
    ".probe",
    ".raw_data",
):
    sys.modules["ptycho" + name] = importlib.import_module("ptyfast" + name)

# Code written for PtychoPINN, unchanged:
from ptycho.config.config import ModelConfig, TrainingConfig  # noqa: E402
from ptycho.diffsim import sim_object_image  # noqa: E402
from ptycho.nongrid_simulation import generate_simulated_data  # noqa: E402
from ptycho.probe import get_default_probe  # noqa: E402

config = TrainingConfig(model=ModelConfig(N=32), n_groups=100, nphotons=1e6)
raw, Y = generate_simulated_data(
    config, sim_object_image(128, data_source="lines", seed=1), get_default_probe(32), 10.0
)
print(type(raw).__module__, raw.diff3d.shape)  # ptyfast.raw_data (100, 32, 32)

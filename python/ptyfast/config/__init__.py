"""Dataclass configuration (``ptycho.config`` compatible).

Both ``from ptyfast.config import TrainingConfig`` and
``from ptyfast.config.config import TrainingConfig, ModelConfig`` work.
"""

from .config import (
    KEY_MAPPINGS,
    ModelConfig,
    TrainingConfig,
    dataclass_to_legacy_dict,
    update_legacy_dict,
    validate_model_config,
    validate_training_config,
)

__all__ = [
    "KEY_MAPPINGS",
    "ModelConfig",
    "TrainingConfig",
    "dataclass_to_legacy_dict",
    "update_legacy_dict",
    "validate_model_config",
    "validate_training_config",
]

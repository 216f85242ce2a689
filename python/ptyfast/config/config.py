"""Dataclass configuration, compatible with ``ptycho.config.config``.

:class:`ModelConfig` and :class:`TrainingConfig` carry the reference's field names and
defaults (main 712c23f), so configurations written for PtychoPINN construct unchanged. Unlike
the reference they validate in ``__post_init__`` (positive ``N``, ``gridsize >= 1``,
``nphotons > 0``, known choices for the string options, ...), raising :class:`ValueError`.

:func:`update_legacy_dict` is the one-way bridge into a legacy dictionary such as
:data:`ptyfast.params.cfg`: nested model fields are flattened, field names are translated
(``object_big`` → ``object.big``, ``output_dir`` → ``output_prefix``, ...), ``None`` values
are skipped and paths become strings.

Examples
--------
>>> from ptyfast.config import ModelConfig, TrainingConfig, update_legacy_dict
>>> config = TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=2000)
>>> d = {}
>>> update_legacy_dict(d, config)
>>> d['N'], d['gridsize'], d['n_groups'], d['probe.big']
(64, 2, 2000, True)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ModelConfig",
    "TrainingConfig",
    "KEY_MAPPINGS",
    "update_legacy_dict",
    "dataclass_to_legacy_dict",
    "validate_model_config",
    "validate_training_config",
]

#: Dataclass field name → legacy ``params.cfg`` key.
KEY_MAPPINGS: dict[str, str] = {
    "object_big": "object.big",
    "probe_big": "probe.big",
    "probe_mask": "probe.mask",
    "probe_trainable": "probe.trainable",
    "intensity_scale_trainable": "intensity_scale.trainable",
    "positions_provided": "positions.provided",
    "output_dir": "output_prefix",
    "train_data_file": "train_data_file_path",
    "test_data_file": "test_data_file_path",
}

_ARCHITECTURES = ("cnn", "ffno", "fno", "fno_vanilla", "neuralop_uno")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _check_real(
    name: str, value: Any, *, positive: bool, optional: bool = False, at_most: float | None = None
) -> None:
    if optional and value is None:
        return
    bound = "> 0" if positive else ">= 0"
    if at_most is not None:
        bound += f" and <= {at_most}"
    if not _is_real(value):
        raise TypeError(
            f"{name} must be a finite number {bound}, got {type(value).__name__} {value!r}"
        )
    try:
        f = float(value)
    except OverflowError:  # an integer beyond float64 (math.isfinite would raise)
        raise ValueError(
            f"{name} must be a finite number {bound}, got an integer too large for float64"
        ) from None
    ok = math.isfinite(f) and (f > 0 if positive else f >= 0)
    if ok and at_most is not None:
        ok = f <= at_most
    if not ok:
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Core model parameters (reference field names and defaults).

    Data generation reads ``N`` (patch size in pixels), ``gridsize`` (patterns per group
    side, ``C = gridsize**2`` channels) and ``probe_scale`` (the ``set_probe`` normalisation);
    the other fields are carried for compatibility and written by
    :func:`update_legacy_dict`.

    Parameters
    ----------
    N : int, default 64
        Patch (diffraction pattern) side length in pixels. The reference annotates
        ``Literal[64, 128, 256]`` without enforcing it; any positive integer is accepted.
    gridsize : int, default 1
        Group side; ``>= 1``.
    probe_scale : float, default 4.0
        ``> 0``.
    n_filters_scale, model_type, architecture, fno_modes, fno_width, fno_blocks, \
fno_cnn_blocks, learned_input_channels, max_hidden_channels, resnet_width, \
fno_input_transform, generator_output_mode, amp_activation, object_big, probe_big, \
probe_mask, probe_mask_sigma, probe_mask_diameter, pad_object, gaussian_smoothing_sigma
        Model-side options with the reference defaults.

    Raises
    ------
    ValueError
        If a value is out of range (including integers too large for float64) or not one of
        the allowed choices.
    TypeError
        If a value has the wrong type: a string, float or bool where an integer is needed, a
        non-number where a number is needed, a non-``bool`` flag (``object_big="no"``).

    Examples
    --------
    >>> ModelConfig(N=128, gridsize=2).N
    128
    """

    N: int = 64
    gridsize: int = 1
    n_filters_scale: int = 2
    model_type: Literal["pinn", "supervised"] = "pinn"
    architecture: Literal["cnn", "ffno", "fno", "fno_vanilla", "neuralop_uno"] = "cnn"
    fno_modes: int = 12
    fno_width: int = 32
    fno_blocks: int = 4
    fno_cnn_blocks: int = 2
    learned_input_channels: int = 1
    max_hidden_channels: int | None = None
    resnet_width: int | None = None
    fno_input_transform: Literal["none", "sqrt", "log1p", "instancenorm"] = "none"
    generator_output_mode: Literal["real_imag", "amp_phase_logits", "amp_phase"] = "real_imag"
    amp_activation: Literal["sigmoid", "swish", "softplus", "relu"] = "sigmoid"
    object_big: bool = True
    probe_big: bool = True
    probe_mask: bool = False
    probe_mask_sigma: float = 1.0
    probe_mask_diameter: float | None = None
    pad_object: bool = True
    probe_scale: float = 4.0
    gaussian_smoothing_sigma: float = 0.0

    def __post_init__(self) -> None:
        _check_int("N", self.N, minimum=1)
        _check_int("gridsize", self.gridsize, minimum=1)
        _check_int("n_filters_scale", self.n_filters_scale, minimum=1)
        _check_choice("model_type", self.model_type, ("pinn", "supervised"))
        _check_choice("architecture", self.architecture, _ARCHITECTURES)
        for name in ("fno_modes", "fno_width", "fno_blocks", "learned_input_channels"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("fno_cnn_blocks", self.fno_cnn_blocks, minimum=0)
        _check_int("max_hidden_channels", self.max_hidden_channels, minimum=1, optional=True)
        _check_int("resnet_width", self.resnet_width, minimum=1, optional=True)
        _check_choice(
            "fno_input_transform",
            self.fno_input_transform,
            ("none", "sqrt", "log1p", "instancenorm"),
        )
        _check_choice(
            "generator_output_mode",
            self.generator_output_mode,
            ("real_imag", "amp_phase_logits", "amp_phase"),
        )
        _check_choice(
            "amp_activation", self.amp_activation, ("sigmoid", "swish", "softplus", "relu")
        )
        for name in ("object_big", "probe_big", "probe_mask", "pad_object"):
            _check_bool(name, getattr(self, name))
        _check_real("probe_mask_sigma", self.probe_mask_sigma, positive=False)
        _check_real("probe_mask_diameter", self.probe_mask_diameter, positive=True, optional=True)
        _check_real("probe_scale", self.probe_scale, positive=True)
        _check_real("gaussian_smoothing_sigma", self.gaussian_smoothing_sigma, positive=False)


@dataclass
class TrainingConfig:
    """Training/simulation workflow parameters (reference field names and defaults).

    Data generation reads ``model``, ``nphotons`` (expected photons per pattern, averaged
    over the dataset), ``n_groups`` (groups to form; ``None`` → 512, or the deprecated
    ``n_images`` when only that is given), ``neighbor_count`` (K of the K-NN grouping),
    ``n_subsample``/``subsample_seed``, ``enable_oversampling``/``neighbor_pool_size``,
    ``sequential_sampling`` and ``batch_size``.

    Parameters
    ----------
    model : ModelConfig
        Required, as in the reference.
    nphotons : float, default 1e9
        ``> 0``.
    n_groups : int or None, default None
        ``None`` becomes ``n_images`` if that was given (with a ``DeprecationWarning``),
        else 512.
    neighbor_count : int, default 4
        ``>= 1``.
    batch_size : int, default 16
        ``>= 1`` (:func:`validate_training_config` also requires a power of two, as the
        reference does).
    train_data_file, test_data_file, nepochs, mae_weight, nll_weight, realspace_mae_weight, \
realspace_weight, n_images, n_subsample, subsample_seed, enable_oversampling, \
neighbor_pool_size, positions_provided, probe_trainable, intensity_scale_trainable, \
output_dir, sequential_sampling, backend, torch_loss_mode, torch_mae_pred_l2_match_target, \
gradient_clip_val, gradient_clip_algorithm, optimizer, momentum, weight_decay, adam_beta1, \
adam_beta2, scheduler, lr_warmup_epochs, lr_min_ratio, plateau_factor, plateau_patience, \
plateau_min_lr, plateau_threshold
        Reference options with the reference defaults.

    Raises
    ------
    ValueError
        If a value is out of range (including integers too large for float64) or not one of
        the allowed choices.
    TypeError
        If ``model`` is not a :class:`ModelConfig`, or a value has the wrong type (as in
        :class:`ModelConfig`).

    Examples
    --------
    >>> TrainingConfig(model=ModelConfig()).n_groups
    512
    """

    model: ModelConfig
    train_data_file: Path | None = None
    test_data_file: Path | None = None
    batch_size: int = 16
    nepochs: int = 50
    mae_weight: float = 0.0
    nll_weight: float = 1.0
    realspace_mae_weight: float = 0.0
    realspace_weight: float = 0.0
    nphotons: float = 1e9
    n_groups: int | None = None
    n_images: int | None = None
    n_subsample: int | None = None
    subsample_seed: int | None = None
    neighbor_count: int = 4
    enable_oversampling: bool = False
    neighbor_pool_size: int | None = None
    positions_provided: bool = True
    probe_trainable: bool = False
    intensity_scale_trainable: bool = True
    output_dir: Path = Path("training_outputs")
    sequential_sampling: bool = False
    backend: Literal["tensorflow", "pytorch"] = "tensorflow"
    torch_loss_mode: Literal["poisson", "mae"] = "poisson"
    torch_mae_pred_l2_match_target: bool = False
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: Literal["norm", "value", "agc"] = "norm"
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    scheduler: Literal["Default", "Exponential", "WarmupCosine", "ReduceLROnPlateau"] = "Default"
    lr_warmup_epochs: int = 0
    lr_min_ratio: float = 0.1
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    plateau_min_lr: float = 5e-5
    plateau_threshold: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise TypeError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        if self.n_images is not None and self.n_groups is None:
            warnings.warn(
                "TrainingConfig.n_images is deprecated: set n_groups, the number of groups "
                "(for every gridsize), instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            self.n_groups = self.n_images
        if self.n_groups is None:
            self.n_groups = 512
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("nepochs", self.nepochs, minimum=1)
        for name in ("mae_weight", "nll_weight", "realspace_mae_weight", "realspace_weight"):
            _check_real(name, getattr(self, name), positive=False)
        _check_real("nphotons", self.nphotons, positive=True)
        _check_int("n_groups", self.n_groups, minimum=1)
        _check_int("n_images", self.n_images, minimum=1, optional=True)
        _check_int("n_subsample", self.n_subsample, minimum=1, optional=True)
        _check_int("subsample_seed", self.subsample_seed, minimum=0, optional=True)
        _check_int("neighbor_count", self.neighbor_count, minimum=1)
        _check_int("neighbor_pool_size", self.neighbor_pool_size, minimum=1, optional=True)
        for name in (
            "enable_oversampling",
            "positions_provided",
            "probe_trainable",
            "intensity_scale_trainable",
            "sequential_sampling",
            "torch_mae_pred_l2_match_target",
        ):
            _check_bool(name, getattr(self, name))
        _check_choice("backend", self.backend, ("tensorflow", "pytorch"))
        _check_choice("torch_loss_mode", self.torch_loss_mode, ("poisson", "mae"))
        _check_real("gradient_clip_val", self.gradient_clip_val, positive=True, optional=True)
        _check_choice(
            "gradient_clip_algorithm", self.gradient_clip_algorithm, ("norm", "value", "agc")
        )
        _check_choice("optimizer", self.optimizer, ("adam", "adamw", "sgd"))
        _check_choice(
            "scheduler",
            self.scheduler,
            ("Default", "Exponential", "WarmupCosine", "ReduceLROnPlateau"),
        )
        _check_real("momentum", self.momentum, positive=False)
        _check_real("weight_decay", self.weight_decay, positive=False)
        _check_real("adam_beta1", self.adam_beta1, positive=False, at_most=1.0)
        _check_real("adam_beta2", self.adam_beta2, positive=False, at_most=1.0)
        _check_int("lr_warmup_epochs", self.lr_warmup_epochs, minimum=0)
        _check_real("lr_min_ratio", self.lr_min_ratio, positive=False)
        _check_real("plateau_factor", self.plateau_factor, positive=True)
        _check_int("plateau_patience", self.plateau_patience, minimum=0)
        _check_real("plateau_min_lr", self.plateau_min_lr, positive=False)
        _check_real("plateau_threshold", self.plateau_threshold, positive=False)


def validate_model_config(config: ModelConfig) -> None:
    """Re-check a :class:`ModelConfig` (the reference's standalone validator).

    Parameters
    ----------
    config : ModelConfig

    Raises
    ------
    ValueError
        If a value is invalid.
    TypeError
        If a value has the wrong type.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    config.__post_init__()


def validate_training_config(config: TrainingConfig) -> None:
    """Check a :class:`TrainingConfig` as the reference does.

    On top of the construction-time checks this requires ``batch_size`` to be a power of two
    and ``mae_weight``, ``nll_weight`` to lie in ``[0, 1]``.

    Parameters
    ----------
    config : TrainingConfig

    Raises
    ------
    ValueError
        If a value is invalid.
    TypeError
        If a value has the wrong type.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    validate_model_config(config.model)
    config.__post_init__()
    if config.batch_size & (config.batch_size - 1):
        raise ValueError(f"batch_size must be positive power of 2, got {config.batch_size}")
    for name in ("mae_weight", "nll_weight"):
        value = getattr(config, name)
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0,1], got {value}")


def dataclass_to_legacy_dict(obj: Any) -> dict[str, Any]:
    """Flatten a config dataclass into legacy keys.

    Parameters
    ----------
    obj : ModelConfig or TrainingConfig
        A dataclass instance; a nested ``model`` is merged into the top level.

    Returns
    -------
    dict
        Legacy key → value, names translated by :data:`KEY_MAPPINGS`, paths as strings.
        ``None`` values are kept here (:func:`update_legacy_dict` skips them).

    Raises
    ------
    TypeError
        If ``obj`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"expected a dataclass instance, got {type(obj).__name__}")
    d = dataclasses.asdict(obj)
    if "model" in d:
        d.update(d.pop("model"))
    for field_name, legacy_key in KEY_MAPPINGS.items():
        if field_name in d:
            value = d.pop(field_name)
            d[legacy_key] = str(value) if isinstance(value, Path) else value
    return d


def update_legacy_dict(cfg: dict[str, Any], dataclass_obj: Any) -> None:
    """Write a configuration into a legacy dictionary, skipping ``None`` values.

    Call it before using guide-compatible entry points that read
    :data:`ptyfast.params.cfg` (the reference's CONFIG-001 rule). The values are written
    as they are, without :func:`ptyfast.params.set`'s validation (the dataclasses have
    validated them already).

    Parameters
    ----------
    cfg : dict
        Dictionary updated in place, typically :data:`ptyfast.params.cfg`.
    dataclass_obj : ModelConfig or TrainingConfig
        Source of the values.

    Examples
    --------
    >>> from ptyfast import params
    >>> from ptyfast.config import ModelConfig, TrainingConfig, update_legacy_dict
    >>> with params.override():
    ...     update_legacy_dict(params.cfg, TrainingConfig(model=ModelConfig(N=64)))
    ...     params.get('N'), params.get('probe_scale')
    (64, 4.0)
    """
    for key, value in dataclass_to_legacy_dict(dataclass_obj).items():
        if value is None:
            continue
        cfg[key] = str(value) if isinstance(value, Path) else value

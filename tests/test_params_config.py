"""Legacy ``params`` dictionary and the config dataclasses."""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptyfast import params
from ptyfast.config import ModelConfig as ModelConfigTop
from ptyfast.config import TrainingConfig as TrainingConfigTop
from ptyfast.config import update_legacy_dict as update_top
from ptyfast.config.config import (
    KEY_MAPPINGS,
    ModelConfig,
    TrainingConfig,
    dataclass_to_legacy_dict,
    update_legacy_dict,
    validate_model_config,
    validate_training_config,
)
from ptyfast.params import params as p_obj


@pytest.fixture(autouse=True)
def _fresh_params():
    params.reset()
    yield
    params.reset()


# --------------------------------------------------------------------------- params

REFERENCE_DEFAULTS = {
    "N": 128,
    "gridsize": 2,
    "offset": 4,
    "outer_offset_train": None,
    "outer_offset_test": None,
    "batch_size": 16,
    "max_position_jitter": 10,
    "sim_jitter_scale": 0.0,
    "default_probe_scale": 0.7,
    "probe_scale": 10.0,
    "nphotons": 1e9,
    "nimgs_train": 9,
    "nimgs_test": 3,
    "data_source": "generic",
    "set_phi": False,
    "size": 392,
    "big_gridsize": 10,
    "npseed": 42,
    "probe.mask": True,
    "pad_object": True,
    "object.big": True,
    "probe.big": False,
    "use_xla_translate": True,
    "nepochs": 60,
    "n_filters_scale": 2,
    "probe.trainable": False,
    "intensity_scale.trainable": False,
    "positions.provided": False,
}


def test_defaults_match_reference_table():
    for key, value in REFERENCE_DEFAULTS.items():
        assert params.get(key) == value, key
        assert type(params.get(key)) is type(value), key
    assert set(params.cfg) == set(params.DEFAULT_CFG)
    assert len(params.DEFAULT_CFG) == 40


def test_bigN_is_derived_and_written():
    assert "bigN" not in params.cfg
    assert params.get("bigN") == 128 + (2 - 1) * 4
    assert params.cfg["bigN"] == 132
    params.set("N", 64)
    params.set("gridsize", 3)
    assert params.get("bigN") == 64 + 2 * 4
    assert params.get_padded_size() == 72 + 10
    assert params.get_padding_size() == 2 * 4 + 10


def test_get_missing_key_and_default():
    with pytest.raises(KeyError):
        params.get("no_such_key")
    assert params.get("no_such_key", None) is None
    assert params.get("no_such_key", 3) == 3
    assert params.get("N", 3) == 128


def test_ensure_defaults_refills_deleted_keys():
    del params.cfg["nphotons"]
    assert params.get("nphotons") == 1e9


@pytest.mark.parametrize("source", params.VALID_DATA_SOURCES)
def test_valid_data_sources(source):
    params.set("data_source", source)
    assert params.get("data_source") == source
    assert params.validate() is True


@pytest.mark.parametrize("source", ["testimg_reverse", "foo", "", None, "Lines"])
def test_invalid_data_source_rejected_and_cfg_unchanged(source):
    params.set("data_source", "lines")
    with pytest.raises(ValueError, match="Must be one of") as info:
        params.set("data_source", source)
    assert "'grf'" in str(info.value)
    assert params.get("data_source") == "lines"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("N", 0),
        ("N", -64),
        ("gridsize", 0),
        ("offset", -1),
        ("outer_offset_train", 0),
        ("batch_size", 0),
        ("nphotons", 0),
        ("nphotons", -1.0),
        ("nphotons", math.nan),
        ("nphotons", math.inf),
        ("probe_scale", 0.0),
        ("default_probe_scale", -0.7),
        ("size", 0),
        ("nimgs_train", 0),
        ("sim_jitter_scale", -0.1),
        ("max_position_jitter", -1),
    ],
)
def test_set_validates_known_keys(key, value):
    before = dict(params.cfg)
    with pytest.raises(ValueError, match=key):
        params.set(key, value)
    assert params.cfg == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("N", 64.0), ("N", True), ("N", None), ("N", "64"), ("gridsize", True), ("nphotons", "1e9")],
)
def test_set_refuses_wrong_types(key, value):
    # A value of the wrong type is a TypeError (it was a ValueError before).
    before = dict(params.cfg)
    with pytest.raises(TypeError, match=key):
        params.set(key, value)
    assert params.cfg == before


def test_set_accepts_numpy_scalars_and_unknown_keys():
    import numpy as np

    params.set("N", np.int64(64))
    params.set("nphotons", np.float32(1e6))
    params.set("outer_offset_train", 8)
    params.set("outer_offset_train", None)
    params.set("intensity_scale", 988.21)
    params.set("probe", np.ones((4, 4, 1)))
    params.set("anything.else", object())
    assert params.get("N") == 64


def test_realspace_weight_cross_check():
    with pytest.raises(ValueError, match="realspace_weight"):
        params.set("realspace_mae_weight", 1.0)
    params.set("realspace_weight", 1.0)
    params.set("realspace_mae_weight", 1.0)


def test_validate_catches_direct_writes():
    params.cfg["data_source"] = "bogus"
    with pytest.raises(ValueError, match="bogus"):
        params.validate()
    # Like the reference, any later set() re-checks data_source.
    with pytest.raises(ValueError):
        params.set("N", 64)


def test_params_object_shares_module_state():
    assert p_obj.cfg is params.cfg
    p_obj.set("N", 64)
    assert params.get("N") == 64
    params.set("gridsize", 1)
    assert p_obj.get("gridsize") == 1
    full = p_obj()
    assert full["bigN"] == 64
    assert "bigN" not in params.cfg or params.cfg["bigN"] == 64
    assert full is not params.cfg


def test_guide_setup_snippet_runs():
    # The seed guide's "Required params.cfg Setup", with ptycho -> ptyfast.
    from ptyfast.params import params as p

    p.set("N", 128)
    p.set("gridsize", 2)
    p.set("offset", 4)
    p.set("outer_offset_train", 8)
    p.set("outer_offset_test", 20)
    p.set("nphotons", 1e9)
    p.set("size", 392)
    p.set("data_source", "lines")
    p.set("max_position_jitter", 3)
    p.set("sim_jitter_scale", 0.0)
    assert p.get("bigN") == 132
    assert p.cfg["data_source"] == "lines"


def test_reset_restores_defaults_in_place():
    cfg = params.cfg
    params.set("N", 64)
    params.cfg["extra"] = 1
    params.reset()
    assert params.cfg is cfg
    assert params.cfg == params.DEFAULT_CFG


def test_override_restores_even_on_error():
    with params.override(N=64, data_source="grf") as cfg:
        assert cfg is params.cfg
        assert params.get("N") == 64
        params.set("gridsize", 1)
    assert params.get("N") == 128
    assert params.get("gridsize") == 2
    assert params.get("data_source") == "generic"
    with pytest.raises(RuntimeError), params.override(N=32):
        raise RuntimeError
    assert params.get("N") == 128
    with pytest.raises(ValueError):
        with params.override(data_source="nope"):
            pass  # pragma: no cover
    assert params.get("data_source") == "generic"


def test_default_cfg_is_not_aliased():
    params.cfg["probe.mask"] = False
    assert params.DEFAULT_CFG["probe.mask"] is True


def test_seal_logs_a_warning(caplog):
    params.seal()
    with caplog.at_level(logging.WARNING, logger="ptyfast.params"):
        params.set("N", 64)
        params.set("intensity_scale", 1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "sealed" in messages[0] and "N" in messages[0]
    assert params.get("N") == 64
    params.unseal()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ptyfast.params"):
        params.set("N", 32)
    assert not caplog.records


# --------------------------------------------------------------------------- dataclasses

REFERENCE_MODEL_FIELDS = [
    "N",
    "gridsize",
    "n_filters_scale",
    "model_type",
    "architecture",
    "fno_modes",
    "fno_width",
    "fno_blocks",
    "fno_cnn_blocks",
    "learned_input_channels",
    "max_hidden_channels",
    "resnet_width",
    "fno_input_transform",
    "generator_output_mode",
    "amp_activation",
    "object_big",
    "probe_big",
    "probe_mask",
    "probe_mask_sigma",
    "probe_mask_diameter",
    "pad_object",
    "probe_scale",
    "gaussian_smoothing_sigma",
]


REFERENCE_TRAINING_FIELDS = """
model
train_data_file
test_data_file
batch_size
nepochs
mae_weight
nll_weight
realspace_mae_weight
realspace_weight
nphotons
n_groups
n_images
n_subsample
subsample_seed
neighbor_count
enable_oversampling
neighbor_pool_size
positions_provided
probe_trainable
intensity_scale_trainable
output_dir
sequential_sampling
backend
torch_loss_mode
torch_mae_pred_l2_match_target
gradient_clip_val
gradient_clip_algorithm
optimizer
momentum
weight_decay
adam_beta1
adam_beta2
scheduler
lr_warmup_epochs
lr_min_ratio
plateau_factor
plateau_patience
plateau_min_lr
plateau_threshold
""".split()


def test_import_styles_are_the_same_objects():
    assert ModelConfigTop is ModelConfig
    assert TrainingConfigTop is TrainingConfig
    assert update_top is update_legacy_dict


def test_model_config_defaults_and_fields():
    m = ModelConfig()
    assert [f.name for f in dataclasses.fields(ModelConfig)] == REFERENCE_MODEL_FIELDS
    assert (m.N, m.gridsize, m.probe_scale) == (64, 1, 4.0)
    assert (m.object_big, m.probe_big, m.probe_mask, m.pad_object) == (True, True, False, True)
    assert (m.model_type, m.architecture, m.amp_activation) == ("pinn", "cnn", "sigmoid")
    assert m.gaussian_smoothing_sigma == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.N = 128  # type: ignore[misc]


def test_training_config_defaults():
    t = TrainingConfig(model=ModelConfig())
    assert t.nphotons == 1e9
    assert t.n_groups == 512
    assert t.n_images is None
    assert t.neighbor_count == 4
    assert t.batch_size == 16
    assert t.nepochs == 50
    assert t.output_dir == Path("training_outputs")
    assert t.positions_provided is True and t.intensity_scale_trainable is True
    assert t.enable_oversampling is False and t.neighbor_pool_size is None
    assert t.sequential_sampling is False
    assert [f.name for f in dataclasses.fields(TrainingConfig)] == REFERENCE_TRAINING_FIELDS


def test_training_config_requires_model():
    with pytest.raises(TypeError):
        TrainingConfig()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ModelConfig"):
        TrainingConfig(model={"N": 64})  # type: ignore[arg-type]


def test_n_images_deprecation():
    with pytest.warns(DeprecationWarning, match="n_images"):
        t = TrainingConfig(model=ModelConfig(), n_images=100)
    assert t.n_groups == 100 and t.n_images == 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = TrainingConfig(model=ModelConfig(), n_groups=7, n_images=100)
    assert t.n_groups == 7


def test_guide_config_examples():
    config = TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=2000, nphotons=1e9)
    assert (config.model.N, config.model.gridsize, config.n_groups) == (64, 2, 2000)
    config = TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=2000, nphotons=1e6)
    assert config.nphotons == 1e6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"N": 0},
        {"N": -64},
        {"gridsize": 0},
        {"probe_scale": 0.0},
        {"probe_scale": math.nan},
        {"n_filters_scale": 0},
        {"architecture": "transformer"},
        {"model_type": "gan"},
        {"amp_activation": "tanh"},
        {"gaussian_smoothing_sigma": -1.0},
    ],
)
def test_model_config_validation(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nphotons": 0},
        {"nphotons": -1e9},
        {"nphotons": math.inf},
        {"n_groups": 0},
        {"neighbor_count": 0},
        {"batch_size": 0},
        {"nepochs": 0},
        {"n_subsample": 0},
        {"neighbor_pool_size": 0},
        {"backend": "jax"},
        {"optimizer": "lbfgs"},
        {"mae_weight": -0.1},
    ],
)
def test_training_config_validation(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TrainingConfig(model=ModelConfig(), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"N": 64.0}, {"N": True}, {"gridsize": 1.5}, {"object_big": 1}, {"object_big": "no"}],
)
def test_model_config_wrong_types(kwargs):
    # Wrong types are TypeErrors (they were ValueErrors before).
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        ModelConfig(**kwargs)


def test_training_config_wrong_types():
    with pytest.raises(TypeError, match="n_groups"):
        TrainingConfig(model=ModelConfig(), n_groups=2.5)


def test_standalone_validators():
    validate_model_config(ModelConfig())
    validate_training_config(TrainingConfig(model=ModelConfig()))
    with pytest.raises(ValueError, match="power of 2"):
        validate_training_config(TrainingConfig(model=ModelConfig(), batch_size=24))
    with pytest.raises(ValueError, match=r"mae_weight must be in \[0,1\]"):
        validate_training_config(TrainingConfig(model=ModelConfig(), mae_weight=2.0))
    with pytest.raises(TypeError):
        validate_model_config(TrainingConfig(model=ModelConfig()))  # type: ignore[arg-type]


def test_dataclass_to_legacy_dict_mapping():
    t = TrainingConfig(
        model=ModelConfig(N=128, gridsize=2, probe_mask=True),
        train_data_file=Path("a/train.npz"),
        output_dir=Path("out"),
    )
    d = dataclass_to_legacy_dict(t)
    assert "model" not in d
    for field_name, legacy in KEY_MAPPINGS.items():
        assert field_name not in d
        assert legacy in d
    assert d["N"] == 128 and d["gridsize"] == 2
    assert d["probe.mask"] is True and d["probe.big"] is True and d["object.big"] is True
    assert d["train_data_file_path"] == str(Path("a/train.npz"))
    assert d["test_data_file_path"] is None
    assert d["output_prefix"] == "out"
    assert d["intensity_scale.trainable"] is True
    assert d["positions.provided"] is True
    with pytest.raises(TypeError):
        dataclass_to_legacy_dict({"N": 1})
    with pytest.raises(TypeError):
        dataclass_to_legacy_dict(ModelConfig)


def test_update_legacy_dict_skips_none_and_writes_params():
    params.set("outer_offset_train", 8)
    params.cfg["test_data_file_path"] = "keep.npz"
    config = TrainingConfig(model=ModelConfig(N=64, gridsize=2), n_groups=2000, nphotons=1e6)
    update_legacy_dict(params.cfg, config)
    assert params.get("N") == 64
    assert params.get("gridsize") == 2
    assert params.get("nphotons") == 1e6
    assert params.get("probe_scale") == 4.0  # ModelConfig overrides the legacy 10.0
    assert params.get("n_groups") == 2000
    assert params.get("probe.big") is True
    assert params.get("output_prefix") == "training_outputs"
    assert params.get("test_data_file_path") == "keep.npz"  # None skipped
    assert "train_data_file_path" not in params.cfg
    assert "max_hidden_channels" not in params.cfg
    assert params.get("outer_offset_train") == 8  # untouched key
    assert params.get("bigN") == 64 + 4
    params.validate()


def test_update_legacy_dict_with_model_config_only():
    d: dict = {"N": 128}
    update_legacy_dict(d, ModelConfig(N=256))
    assert d["N"] == 256 and d["probe.mask"] is False and "nphotons" not in d


@given(
    n=st.integers(1, 512),
    gridsize=st.integers(1, 4),
    nphotons=st.floats(1e-3, 1e12, allow_nan=False, allow_infinity=False),
    n_groups=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_update_legacy_dict_roundtrip(n, gridsize, nphotons, n_groups):
    config = TrainingConfig(
        model=ModelConfig(N=n, gridsize=gridsize), nphotons=nphotons, n_groups=n_groups
    )
    d: dict = {}
    update_legacy_dict(d, config)
    assert d["N"] == n and d["gridsize"] == gridsize and d["nphotons"] == nphotons
    assert d["n_groups"] == (512 if n_groups is None else n_groups)
    assert all(v is not None for v in d.values())
    assert all(not isinstance(v, Path) for v in d.values())

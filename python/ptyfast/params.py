"""Legacy global configuration, compatible with ``ptycho.params``.

This module holds the package's only global state: the dictionary :data:`cfg` with the
reference defaults (``N=128``, ``gridsize=2``, ``data_source='generic'``, ...). New code in
ptyfast takes explicit arguments; only the guide-compatible entry points read ``cfg``, and
only for arguments left as ``None``.

Two import styles work::

    from ptyfast import params as p           # the module (as in the reference)
    from ptyfast.params import params as p    # an object with the same get/set/cfg

``p.set(key, value)`` validates the new value before committing it; on failure ``cfg`` is
left unchanged and :class:`ValueError` (:class:`TypeError` for a value of the wrong type) is
raised (the reference asserts after writing).
:func:`override` temporarily changes keys and restores them, and :func:`reset` restores the
defaults, which is convenient in tests.

**Threads.** :data:`cfg` is one dictionary for the whole process. Each ``get``, ``set`` and
``validate`` is safe from any thread (a reader sees every key, old or new value), but a value
set in one thread is what every other thread's calls read for arguments they leave as
``None``, and :func:`override` is not thread-local: two threads' overlapping ``override``
blocks restore each other's snapshots. In threads, pass arguments explicitly (calls that do
read nothing from :data:`cfg`) and set :data:`cfg` once, before starting them.

Examples
--------
>>> from ptyfast import params as p
>>> with p.override(N=64, gridsize=1):
...     p.get('bigN')
64
>>> p.get('N')
128
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "DEFAULT_CFG",
    "VALID_DATA_SOURCES",
    "cfg",
    "get",
    "set",
    "validate",
    "validate_value",
    "get_bigN",
    "get_padding_size",
    "get_padded_size",
    "ensure_defaults",
    "reset",
    "override",
    "seal",
    "unseal",
    "params",
]

logger = logging.getLogger(__name__)

#: Reference defaults (``ptycho.params`` at main 712c23f).
DEFAULT_CFG: dict[str, Any] = {
    "N": 128,
    "offset": 4,
    "gridsize": 2,
    "outer_offset_train": None,
    "outer_offset_test": None,
    "batch_size": 16,
    "nepochs": 60,
    "n_filters_scale": 2,
    "output_prefix": "outputs",
    "big_gridsize": 10,
    "max_position_jitter": 10,
    "sim_jitter_scale": 0.0,
    "default_probe_scale": 0.7,
    "mae_weight": 0.0,
    "nll_weight": 1.0,
    "tv_weight": 0.0,
    "realspace_mae_weight": 0.0,
    "realspace_weight": 0.0,
    "nphotons": 1e9,
    "nimgs_train": 9,
    "nimgs_test": 3,
    "data_source": "generic",
    "probe.trainable": False,
    "intensity_scale.trainable": False,
    "positions.provided": False,
    "object.big": True,
    "probe.big": False,
    "probe_scale": 10.0,
    "set_phi": False,
    "probe.mask": True,
    "pad_object": True,
    "model_type": "pinn",
    "label": "",
    "size": 392,
    "amp_activation": "sigmoid",
    "h5_path": "wts.h5",
    "npseed": 42,
    "debug": True,
    "gaussian_smoothing_sigma": 0.0,
    "use_xla_translate": True,
}

#: Values ``set('data_source', ...)`` accepts (the reference's list; note that
#: ``'testimg_reverse'`` is not among them).
VALID_DATA_SOURCES: tuple[str, ...] = (
    "lines",
    "grf",
    "experimental",
    "points",
    "testimg",
    "diagonals",
    "xpp",
    "V",
    "generic",
)

#: The global configuration dictionary. Mutate it through :func:`set` to get validation.
cfg: dict[str, Any] = copy.deepcopy(DEFAULT_CFG)

# Keys that may be rewritten after seal() without a warning (computed artefacts).
_SEAL_WHITELIST = frozenset({"intensity_scale", "probe", "timestamp"})
_sealed = False
_NO_DEFAULT: Any = object()


# --------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _int_at_least(key: str, value: Any, minimum: int, what: str) -> None:
    if not _is_int(value):
        raise TypeError(f"{key} must be {what}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{key} must be {what}, got {value!r}")


def _positive_int(key: str, value: Any) -> None:
    _int_at_least(key, value, 1, "a positive integer")


def _nonnegative_int(key: str, value: Any) -> None:
    _int_at_least(key, value, 0, "a non-negative integer")


def _optional_positive_int(key: str, value: Any) -> None:
    if value is not None:
        _positive_int(key, value)


def _finite_real(key: str, value: Any, what: str) -> float:
    """``value`` as a float: ``TypeError`` for a non-number (string, bool, None),
    ``ValueError`` for NaN, inf or an integer beyond float64 (not ``OverflowError``)."""
    if not _is_real(value):
        raise TypeError(f"{key} must be {what}, got {type(value).__name__} {value!r}")
    try:
        f = float(value)
    except OverflowError:
        raise ValueError(f"{key} must be {what}, got an integer too large for float64") from None
    if not math.isfinite(f):
        raise ValueError(f"{key} must be {what}, got {value!r}")
    return f


def _positive_real(key: str, value: Any) -> None:
    if _finite_real(key, value, "a finite number > 0") <= 0:
        raise ValueError(f"{key} must be a finite number > 0, got {value!r}")


def _nonnegative_real(key: str, value: Any) -> None:
    if _finite_real(key, value, "a finite number >= 0") < 0:
        raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")


def _data_source(key: str, value: Any) -> None:
    if value not in VALID_DATA_SOURCES:
        raise ValueError(
            f"Invalid data source: {value!r}. Must be one of {list(VALID_DATA_SOURCES)}."
        )


_CHECKS = {
    "N": _positive_int,
    "gridsize": _positive_int,
    "offset": _nonnegative_int,
    "outer_offset_train": _optional_positive_int,
    "outer_offset_test": _optional_positive_int,
    "batch_size": _positive_int,
    "max_position_jitter": _nonnegative_real,
    "sim_jitter_scale": _nonnegative_real,
    "default_probe_scale": _positive_real,
    "probe_scale": _positive_real,
    "nphotons": _positive_real,
    "nimgs_train": _positive_int,
    "nimgs_test": _positive_int,
    "size": _positive_int,
    "data_source": _data_source,
}


def validate_value(key: str, value: Any) -> None:
    """Check one configuration value without storing it.

    Keys the data generation reads (``N``, ``gridsize``, ``offset``, ``outer_offset_*``,
    ``batch_size``, ``*_jitter*``, ``*probe_scale``, ``nphotons``, ``nimgs_*``, ``size``,
    ``data_source``) are checked; any other key accepts any value.

    Parameters
    ----------
    key : str
        Configuration key.
    value : object
        Candidate value.

    Raises
    ------
    ValueError
        If ``value`` is out of range for ``key`` (including NaN, inf and integers too large
        for float64); the message names both.
    TypeError
        If ``value`` has the wrong type for ``key`` (``N="64"``, ``N=64.0``,
        ``gridsize=True``, ``nphotons="1e9"``).
    """
    check = _CHECKS.get(key)
    if check is not None:
        check(key, value)


def _validate_cross(d: Mapping[str, Any]) -> None:
    _data_source("data_source", d.get("data_source"))
    rs_mae = d.get("realspace_mae_weight", 0.0)
    if _is_real(rs_mae) and rs_mae > 0 and not d.get("realspace_weight", 0.0) > 0:
        raise ValueError("realspace_mae_weight > 0 requires realspace_weight > 0")


def validate() -> bool:
    """Validate the whole of :data:`cfg`.

    Returns
    -------
    bool
        ``True`` (for ``assert validate()`` compatibility).

    Raises
    ------
    ValueError
        If any value is invalid, e.g. an unknown ``data_source``.
    TypeError
        If a known key holds a value of the wrong type (written into :data:`cfg` directly).
    """
    ensure_defaults()
    snapshot = dict(cfg)  # one step under the GIL: another thread's set/override can't split it
    for key, value in snapshot.items():
        validate_value(key, value)
    _validate_cross(snapshot)
    return True


# --------------------------------------------------------------------------- access


def ensure_defaults() -> None:
    """Refill keys of :data:`DEFAULT_CFG` that are missing from :data:`cfg`."""
    for key, value in DEFAULT_CFG.items():
        if key not in cfg:
            cfg[key] = copy.deepcopy(value)


def get_bigN() -> int:  # noqa: N802 - reference name
    """``N + (gridsize - 1) * offset`` from :data:`cfg`."""
    ensure_defaults()
    return cfg["N"] + (cfg["gridsize"] - 1) * cfg["offset"]


def get_padding_size() -> int:
    """``(gridsize - 1) * offset + max_position_jitter`` from :data:`cfg` (model side)."""
    ensure_defaults()
    return (cfg["gridsize"] - 1) * cfg["offset"] + cfg["max_position_jitter"]


def get_padded_size() -> int:
    """``bigN + max_position_jitter`` from :data:`cfg` (model side)."""
    return get_bigN() + cfg["max_position_jitter"]


def get(key: str, default: Any = _NO_DEFAULT) -> Any:
    """Read a configuration value.

    Parameters
    ----------
    key : str
        Configuration key. ``'bigN'`` is derived (and, as in the reference, also written to
        :data:`cfg`).
    default : object, optional
        Returned when ``key`` is absent. Without it a missing key raises.

    Returns
    -------
    object
        The stored value.

    Raises
    ------
    KeyError
        If ``key`` is absent and no ``default`` is given.

    Examples
    --------
    >>> from ptyfast import params as p
    >>> p.get('nphotons')
    1000000000.0
    """
    ensure_defaults()
    if key == "bigN":
        cfg["bigN"] = get_bigN()
        return cfg["bigN"]
    if default is _NO_DEFAULT:
        return cfg[key]
    return cfg.get(key, default)


def set(key: str, value: Any) -> None:  # noqa: A001 - reference name
    """Validate and store a configuration value.

    Parameters
    ----------
    key : str
        Configuration key (any string; known keys are validated).
    value : object
        New value.

    Raises
    ------
    ValueError
        If the value is invalid (e.g. ``data_source`` not in :data:`VALID_DATA_SOURCES`, or
        ``nphotons=10**400``); :data:`cfg` is then left unchanged.
    TypeError
        If ``key`` is not a string, or the value has the wrong type for a known key (see
        :func:`validate_value`); :data:`cfg` is then left unchanged.

    Examples
    --------
    >>> from ptyfast import params as p
    >>> with p.override():
    ...     p.set('data_source', 'lines')
    ...     p.get('data_source')
    'lines'
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a string, got {type(key).__name__} {key!r}")
    logger.debug("params.set(%r, %r)", key, value)
    if _sealed and key not in _SEAL_WHITELIST:
        frame = inspect.currentframe()
        origin = frame.f_back if frame is not None else None
        site = (
            "unknown caller"
            if origin is None
            else (f"{origin.f_code.co_filename} line {origin.f_lineno}")
        )
        logger.warning("params are sealed; %r was still written by %s", key, site)
    ensure_defaults()
    validate_value(key, value)
    # As in the reference, every write re-checks data_source and the loss-weight pairing.
    candidate = dict(cfg)
    candidate[key] = value
    _validate_cross(candidate)
    cfg[key] = value


def all_params() -> dict[str, Any]:
    """A copy of :data:`cfg` with the derived ``bigN`` added (the reference's ``params()``)."""
    ensure_defaults()
    d = dict(cfg)
    d["bigN"] = get_bigN()
    return d


def reset() -> None:
    """Restore :data:`cfg` to :data:`DEFAULT_CFG` in place and lift any seal."""
    global _sealed
    _restore(copy.deepcopy(DEFAULT_CFG))
    _sealed = False


def _restore(saved: dict[str, Any]) -> None:
    """Make :data:`cfg` equal to ``saved`` in place, never emptier than both: a thread reading
    it meanwhile sees each key old or new, never missing (``clear()`` then ``update()`` left
    it empty for a moment: ``KeyError`` or ``dictionary changed size`` in other threads)."""
    cfg.update(saved)
    for key in [k for k in list(cfg) if k not in saved]:
        cfg.pop(key, None)


@contextlib.contextmanager
def override(**values: Any) -> Iterator[dict[str, Any]]:
    """Temporarily set keys; restore the whole of :data:`cfg` on exit.

    Parameters
    ----------
    **values
        Keys to set (each validated as by :func:`set`).

    Yields
    ------
    dict
        :data:`cfg` itself.

    Examples
    --------
    >>> from ptyfast import params as p
    >>> with p.override(data_source='lines'):
    ...     p.get('data_source')
    'lines'
    >>> p.get('data_source')
    'generic'
    """
    saved = dict(cfg)
    try:
        for key, value in values.items():
            set(key, value)
        yield cfg
    finally:
        _restore(saved)


def seal() -> None:
    """Warn (via logging) on later writes of non-artefact keys, as the reference does."""
    global _sealed
    _sealed = True


def unseal() -> None:
    """Lift :func:`seal`."""
    global _sealed
    _sealed = False


class _Params:
    """The ``params`` object: module-level functions as methods, ``cfg`` as attribute.

    Calling it returns :func:`all_params`, like the reference's ``params()`` function.
    """

    DEFAULT_CFG = DEFAULT_CFG
    VALID_DATA_SOURCES = VALID_DATA_SOURCES

    @property
    def cfg(self) -> dict[str, Any]:
        return cfg

    def __call__(self) -> dict[str, Any]:
        return all_params()

    def __repr__(self) -> str:
        return "<ptyfast.params.params>"

    get = staticmethod(get)
    set = staticmethod(set)
    validate = staticmethod(validate)
    validate_value = staticmethod(validate_value)
    get_bigN = staticmethod(get_bigN)  # noqa: N815 - reference name
    get_padding_size = staticmethod(get_padding_size)
    get_padded_size = staticmethod(get_padded_size)
    ensure_defaults = staticmethod(ensure_defaults)
    reset = staticmethod(reset)
    override = staticmethod(override)
    seal = staticmethod(seal)
    unseal = staticmethod(unseal)


#: Object form of this module, for ``from ptyfast.params import params as p``.
params = _Params()

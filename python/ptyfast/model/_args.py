"""Argument checks shared by the model's builders (probes, scans, objects, detector, recipes).

Every check raises before any work, with a message naming the argument, what was expected and
what was received (``"sigma_px must be a positive finite number, got nan"``). Seeds are
resolved here to the integers that are recorded: :func:`seed_int` (64-bit, for
``numpy.random.Generator(PCG64(seed))``) and :func:`legacy_seed_int` (32-bit, for the
PtychoPINN recipes that draw from NumPy's legacy MT19937 stream).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from collections.abc import Callable, Collection, Iterator
from typing import Any

import numpy as np

from .._kernels import legacy_seed, resolve_seed

__all__ = [
    "integer",
    "real",
    "length",
    "pair",
    "real_array",
    "one_of",
    "choice",
    "signature_params",
    "parameters",
    "seed_int",
    "legacy_seed_int",
    "generator",
]


def integer(name: str, v: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``v`` as an ``int`` (bools and non-integers raise ``TypeError``), within the bounds."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    i = int(v)
    if minimum is not None and i < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {i}")
    if maximum is not None and i > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {i}")
    return i


def real(
    name: str,
    v: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> float:
    """``v`` as a finite ``float`` (bools and non-numbers raise ``TypeError``).

    ``positive``: ``> 0``; ``nonnegative``: ``>= 0``; ``minimum``/``maximum``: inclusive
    bounds; ``below``: exclusive upper bound.
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    try:
        f = float(v)
    except OverflowError:  # an integer beyond float64
        bits = int(v).bit_length()  # type: ignore[call-overload]  # an Integral here
        raise ValueError(f"{name} must be finite, got an integer of {bits} bits") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {f}")
    if positive and f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {f}")
    if nonnegative and f < 0:
        raise ValueError(f"{name} must be >= 0, got {f}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {f}")
    if maximum is not None and f > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {f}")
    if below is not None and f >= below:
        raise ValueError(f"{name} must be < {below}, got {f}")
    return f


def length(v: Any) -> int | None:
    """``len(v)`` for a sequence or array, ``None`` for anything unsized (a string, a 0-d
    array, a number), so that ``length(v) != 2`` checks a pair without raising."""
    if isinstance(v, (str, bytes, dict, set, frozenset)):  # not indexable by position
        return None
    try:
        return len(v)
    except TypeError:  # no __len__, or a 0-d array
        return None


def pair(name: str, v: Any, **bounds: Any) -> tuple[float, float]:
    """A 2-sequence of reals (each checked as :func:`real` with ``bounds``) as a tuple."""
    if length(v) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {v!r}")
    return (real(f"{name}[0]", v[0], **bounds), real(f"{name}[1]", v[1], **bounds))


def asarray(name: str, v: Any, dtype: Any = None) -> np.ndarray:
    """``np.asarray(v, dtype)``, a ragged nested list (which NumPy refuses with a message
    about "an inhomogeneous shape" that names nothing) a ``TypeError`` naming ``name``."""
    try:
        return np.asarray(v, dtype)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        raise TypeError(f"{name} must be an array, got a ragged nested list") from None


def real_array(name: str, v: Any) -> np.ndarray:
    """``v`` as a finite real float64 array (a new array: the input is never modified).

    Bools and integers are accepted; complex (whose imaginary part would be dropped),
    strings, objects and ``None`` raise ``TypeError``; NaN or inf raise ``ValueError``."""
    if v is None or isinstance(v, (str, bytes)):
        raise TypeError(f"{name} must be a real array, got {v!r}")
    a = asarray(name, v)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return a


def one_of(v: Any, options: Collection[Any]) -> bool:
    """``v in options`` for string or integer scalars only (an unhashable value, a list or a
    dict, would make ``in`` raise ``TypeError``; an array compared with ``in`` raises too)."""
    if isinstance(v, np.ndarray) or not isinstance(v, str | int | np.integer):
        return False
    return v in options


def choice(name: str, v: Any, options: tuple[str, ...]) -> str:
    """``v`` if it is one of ``options`` (strings): ``TypeError`` for a non-string,
    ``ValueError`` for another string."""
    if not isinstance(v, str):
        raise TypeError(f"{name} must be one of {list(options)}, got {type(v).__name__} {v!r}")
    if not one_of(v, options):
        raise ValueError(f"{name} must be one of {list(options)}, got {v!r}")
    return v


def signature_params(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``fn``'s parameter names but ``skip`` -> default (``inspect.Parameter.empty`` when
    required)."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if k not in skip}


def parameters(
    where: str, fn: Callable[..., Any], given: Collection[str], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``fn``'s parameters but ``skip``, name -> default (``inspect.Parameter.empty`` when
    required), once ``given`` is checked to name none other and to hold every required one.

    Raises
    ------
    ValueError
        ``"{where}: unknown parameters [...]; expected [...]"`` or ``"{where}: missing
        parameters [...]"``.
    """
    sig = signature_params(fn, skip)
    unknown = sorted(set(given) - set(sig))
    if unknown:
        raise ValueError(f"{where}: unknown parameters {unknown}; expected {list(sig)}")
    missing = [k for k, d in sig.items() if d is inspect.Parameter.empty and k not in given]
    if missing:
        raise ValueError(f"{where}: missing parameters {missing}")
    return sig


def seed_int(seed: Any, name: str = "seed") -> int:
    """The recorded 64-bit seed: an int as is, one draw from a ``Generator``, or fresh OS
    entropy for ``None`` (see :func:`ptyfast._kernels.resolve_seed`)."""
    if isinstance(seed, np.random.RandomState):
        raise TypeError(f"{name} must be an int, numpy.random.Generator or None, got RandomState")
    return resolve_seed(seed, name)


@contextlib.contextmanager
def seed_kept_on_error(seed: Any) -> Iterator[None]:
    """Give a ``Generator`` passed as ``seed`` its state back if the block raises.

    A call that takes its seed from the user's generator and then fails (a bad path, too
    little memory or disk, an interrupt) leaves the generator as it was, so that a retry
    draws what the failed call drew. Anything else passed as ``seed`` is left alone.
    """
    state = seed.bit_generator.state if isinstance(seed, np.random.Generator) else None
    try:
        yield
    except BaseException:
        if state is not None:
            seed.bit_generator.state = state
        raise


def legacy_seed_int(seed: Any, name: str = "seed") -> int:
    """The recorded 32-bit seed of NumPy's legacy MT19937 stream (PtychoPINN's recipes)."""
    if isinstance(seed, np.random.RandomState):
        raise TypeError(f"{name} must be an int, numpy.random.Generator or None, got RandomState")
    return legacy_seed(seed, name)


def generator(seed: int) -> np.random.Generator:
    """``numpy.random.Generator(PCG64(seed))`` from a resolved integer seed."""
    return np.random.Generator(np.random.PCG64(seed))

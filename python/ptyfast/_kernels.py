"""The one validating layer over the compiled kernels (``ptyfast._core``).

Every public function here checks and coerces its arguments (dtype, contiguity, shape,
finiteness, ranges) and raises :class:`ValueError` / :class:`TypeError` naming the argument,
the expected and the received value *before* any Rust code runs. Output sizes are compared
with the available memory first (:func:`require_memory`, the one helper every layer uses), and
scales that would overflow the float32 far field are refused (:func:`check_field_range`).
Inputs are never modified: arrays that already have the right dtype and layout are passed as
read-only views, everything else is copied.

Conventions are those of the README ("Conventions"): coordinates in object pixels with
``x`` = column and ``y`` = row, position ``(x, y)`` sampled at patch pixel ``(N//2, N//2)``,
far-field amplitude ``|fftshift(fft2(scale * probe * patch))| / N``, amplitudes (not
intensities), one random stream per pattern derived from ``(seed, pattern index)``.
"""

from __future__ import annotations

import atexit
import math
import numbers
import os
from typing import Any, NamedTuple

import numpy as np

from . import _core
from ._core import PtyfastError

# Before the interpreter finalises (atexit runs first): from then on a daemon thread coming
# back from a kernel waits for the process to end instead of taking the GIL back, which ends
# it with pthread_exit, whose unwinding through the extension crashed the process (SIGSEGV).
atexit.register(_core.interpreter_exiting)

__all__ = [
    "available_memory",
    "require_memory",
    "check_field_range",
    "check_coordinate_range",
    "check_fits",
    "MAX_COORDINATE",
    "from_tensor",
    "legacy_random_state",
    "legacy_seed",
    "channel_energies",
    "extract_grid_patches",
    "illuminate_groups",
    "grid_maxima",
    "grid_energies",
    "simulate_grid",
    "PtyfastError",
    "as_array",
    "as_complex_image",
    "as_positions",
    "resolve_seed",
    "extract_patches",
    "diffract",
    "observe_amplitudes",
    "poisson_counts",
    "illuminated_energy",
    "simulate",
    "knn",
    "sample_then_group",
    "oversample_groups",
    "gather_groups",
    "num_threads",
    "simd_level",
    "gather_groups_scaled",
    "pattern_energies",
    "legacy_permutation",
    "legacy_choice",
    "legacy_uniform",
    "legacy_raw",
    "paint_leaves",
    "group_diffraction",
    "gather_groups_complex",
    "AcquirePlan",
    "acquire",
    "acquire_plan",
    "detect",
    "detector_settings",
    "Acquired",
    "ACQUIRE_STATS",
    "READING_DTYPES",
    "POISSON_STREAMS",
]

SeedLike = int | np.integer | np.random.Generator | np.random.RandomState | None

# Names of the Poisson noise streams of the sampling kernels, oldest first (README, "Noise
# streams"); the detector's setting (POISSON_STREAMS) lists those its pipeline is wired for.
_NOISE_VERSIONS = ("v1", "v2")


# --------------------------------------------------------------------------- memory


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (Linux), or ``None``."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    parts = line.split()
                    unit = 1024 if parts[2:3] == [b"kB"] else 1
                    return int(parts[1]) * unit
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_room() -> int | None:
    """What the process's address-space limit (``ulimit -v``, ``RLIMIT_AS``) leaves above its
    current virtual size, or ``None`` without a limit (or off Linux)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY or limit < 0:
            return None
        with open("/proc/self/status", "rb") as f:
            size = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(b"VmSize:"))
        return max(0, int(limit) - size)
    except (ImportError, OSError, ValueError, StopIteration, IndexError):
        return None


def _cgroup_available() -> int | None:
    """What the process's cgroup (v2) still allows, ``memory.max - memory.current``, or
    ``None`` without a limit. Containers often cap memory far below the host's MemAvailable."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), None)
        if rel is None:
            return None
        base = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as f:
            current = int(f.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def available_memory() -> tuple[int | None, str]:
    """Bytes of memory this process can still allocate without swapping, and their source.

    On Linux, ``MemAvailable`` from ``/proc/meminfo`` (the kernel's estimate of memory
    available to new allocations without swapping), lowered to the room left under the
    process's cgroup-v2 ``memory.max`` when one is set. Elsewhere the free physical pages
    (``os.sysconf('SC_AVPHYS_PAGES')``), else the total physical memory. Either is lowered
    to the room left under the process's address-space limit (``ulimit -v``, ``RLIMIT_AS``)
    when one is set; ``(None, reason)`` when nothing can be read (then only the 2**63 - 1
    bytes any allocation is limited to apply).

    Returns
    -------
    (int or None, str)
        The byte count and where it came from (``'MemAvailable'``, ``'cgroup memory.max'``,
        ``'address-space limit RLIMIT_AS'``, ``'free physical memory'``, ``'physical
        memory'`` or ``'unknown'``).

    Examples
    --------
    >>> n, source = available_memory()
    >>> n is None or n > 0
    True
    """
    avail, source = _meminfo_available(), "MemAvailable"
    if avail is None:
        for key, src in (
            ("SC_AVPHYS_PAGES", "free physical memory"),
            ("SC_PHYS_PAGES", "physical memory"),
        ):
            try:
                avail = os.sysconf(key) * os.sysconf("SC_PAGE_SIZE")
                source = src
                break
            except (AttributeError, ValueError, OSError):
                continue
    cg = _cgroup_available()
    if cg is not None and (avail is None or cg < avail):
        avail, source = cg, "cgroup memory.max"
    room = _address_space_room()
    if room is not None and (avail is None or room < avail):
        avail, source = room, "address-space limit RLIMIT_AS"
    if avail is None:
        return None, "unknown"
    return int(avail), source


def _human(nbytes: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes} B"


#: Allocations above this many bytes can never be addressed (``isize::MAX`` / NumPy's limit).
_ADDRESS_LIMIT = 2**63 - 1

#: Allocations up to this many bytes skip the reading of the available memory (tens of
#: microseconds of file reads, which would dominate a call on one small pattern); one that
#: still fails raises NumPy's ``MemoryError``.
SMALL_ALLOCATION = 2**20


def require_memory(what: str, nbytes: int) -> None:
    """Refuse an allocation of ``nbytes`` that the machine cannot hold, *before* making it.

    The one check every size computed from user input goes through (in this module, the
    compatibility layer and the model wing): sizes are exact Python integers (no overflow),
    compared with :func:`available_memory`. Call it with the total of the arrays a step is
    about to create. Sizes up to :data:`SMALL_ALLOCATION` (1 MiB) are accepted without
    reading the available memory.

    Parameters
    ----------
    what : str
        What would be allocated, in the user's terms, naming the argument that sets its size
        (e.g. ``"nsamples=10**12 groups of 4 patterns of 8 x 8 float32"``); starts the message.
    nbytes : int
        The bytes needed (an exact integer; any size is accepted, negative counts as 0).

    Raises
    ------
    ValueError
        ``"<what> needs <nbytes> bytes (<human>), but only <available> bytes (<human>) are
        available (<source>)"`` when ``nbytes`` exceeds the available memory, and
        ``"... more than any machine can address"`` above 2**63 - 1 bytes (also when the
        available memory cannot be read).
    TypeError
        If ``nbytes`` is not an integer.

    Examples
    --------
    >>> require_memory("a small buffer", 1024)
    >>> require_memory("nsamples=2**62 groups", 2**65)
    Traceback (most recent call last):
    ...
    ValueError: nsamples=2**62 groups needs 36893488147419103232 bytes (3.36e+07 TiB), more \
than any machine can address (9223372036854775807 bytes)
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"nbytes must be an integer, got {type(nbytes).__name__}")
    need = max(0, int(nbytes))
    if need > _ADDRESS_LIMIT:
        raise ValueError(
            f"{what} needs {need} bytes ({_human(need)}), more than any machine can address "
            f"({_ADDRESS_LIMIT} bytes)"
        )
    if need <= SMALL_ALLOCATION:
        return
    avail, source = available_memory()
    if avail is not None and need > avail:
        raise ValueError(
            f"{what} needs {need} bytes ({_human(need)}), but only {avail} bytes "
            f"({_human(avail)}) are available ({source})"
        )


# --------------------------------------------------------------------------- coercion helpers


def from_tensor(a: Any) -> Any:
    """A TensorFlow tensor (anything with ``.numpy()``) as NumPy; anything else unchanged."""
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray | np.generic):
        return a.numpy()
    return a


def _to_numpy(name: str, a: Any) -> np.ndarray:
    """NumPy view of ``a``; TensorFlow tensors (anything with ``.numpy()``) are converted."""
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    a = from_tensor(a)
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    return arr


def as_array(
    name: str,
    a: Any,
    dtype: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    finite: bool = True,
    allow_complex: bool = True,
    nonnegative: bool = False,
    nonempty: bool = True,
    allow_bool: bool = True,
) -> np.ndarray:
    """Checked, C-contiguous array of ``dtype``; copies only when needed.

    ``shape`` entries that are ``None`` match any size. Real input is accepted where ``dtype``
    is complex; complex input where ``dtype`` is real raises unless ``allow_complex``.
    Booleans are numbers (0 and 1) unless ``allow_bool`` is false: then a ``TypeError`` (for
    coordinates and indices, where a mask passed by mistake would be read as 0s and 1s).
    """
    arr = _to_numpy(name, a)
    kind = arr.dtype.kind
    if kind not in "biufc" or (kind == "b" and not allow_bool):
        what = "a numeric array" if allow_bool else "a numeric (not boolean) array"
        raise TypeError(f"{name} must be {what}, got dtype {arr.dtype}")
    target = np.dtype(dtype)
    if kind == "c" and target.kind != "c" and not allow_complex:
        raise TypeError(f"{name} must be real ({target}), got complex dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if shape is not None:
        ok = arr.ndim == len(shape) and all(
            s is None or s == d for s, d in zip(shape, arr.shape, strict=False)
        )
        if not ok:
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype != target or not arr.flags.c_contiguous:
        # A converted copy will be made (and the checks below make temporaries of up to its
        # size): refuse by shape first, e.g. a broadcast view of 2**40 rows.
        require_memory(f"{name}: shape {arr.shape} as {target}", arr.size * (target.itemsize + 1))
    if target.kind in "iu" and kind != "b":
        _check_integers(name, arr, target)
    narrowing = (
        kind in "fc" and target.kind in "fc" and np.finfo(target).bits < np.finfo(arr.dtype).bits
    )
    if finite and nonnegative and not narrowing and _finite_nonnegative_floats(arr):
        pass  # both checks below hold: one pass instead of two
    elif finite and kind in "fc" and not narrowing and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    elif nonnegative and arr.size and np.min(arr.real) < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {np.min(arr.real)}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=target)
    if finite and narrowing and not np.all(np.isfinite(out)):
        # Checked after the cast: finite float64 beyond the float32 range becomes inf there.
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got NaN or inf values")
        check_fits(name, arr, target)
    return out


def _check_integers(name: str, arr: np.ndarray, target: np.dtype) -> None:
    """Refuses values of ``arr`` that ``target`` (an integer dtype) cannot hold exactly:
    fractions, NaN or inf, and integers outside its range (which a cast would wrap)."""
    if arr.dtype.kind not in "iu":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype} with fractions")
    elif np.can_cast(arr.dtype, target, "safe"):
        return
    if arr.size == 0:
        return
    info = np.iinfo(target)
    lo, hi = arr.min(), arr.max()
    for v in (lo, hi):
        if not info.min <= v <= info.max:
            raise ValueError(
                f"{name} must hold integers in [{info.min}, {info.max}] ({target}), got "
                f"{v.item() if hasattr(v, 'item') else v}"
            )


def _finite_nonnegative_floats(arr: np.ndarray) -> bool:
    """True when ``arr`` is a C-contiguous float32/float64 array of finite values >= +0, by
    one integer pass: such values are exactly those whose bit patterns lie below that of +inf
    (sign bit clear, exponent not all ones). False otherwise, including for -0.0 (valid, but
    left to the exact checks) and for every other dtype or layout."""
    bits = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}.get(arr.dtype)
    if bits is None or not arr.flags.c_contiguous or arr.size == 0:
        return False
    inf = np.array(np.inf, arr.dtype).view(bits)
    return bool(arr.reshape(-1).view(bits).max() < inf)


def check_fits(name: str, a: np.ndarray, target: Any) -> None:
    """Refuses finite values of ``a`` beyond the range of ``target`` (e.g. float64 data a
    kernel will compute on in float32, where they would become inf and then NaN); also the
    check :func:`as_array` makes when it narrows."""
    limit = float(np.finfo(target).max)
    big = _max_abs(a)
    if big > limit:
        shown = f"{big:.4g}" if math.isfinite(big) else "beyond the float64 range"
        raise ValueError(
            f"{name} must fit {np.dtype(target)} (|value| <= {limit:.4g}), "
            f"got a value of magnitude {shown}"
        )


def as_complex_image(name: str, a: Any, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A 2-D complex64 array (real input converted); a trailing unit channel is dropped."""
    arr = _to_numpy(name, a)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if shape is not None:
        return as_array(name, arr, np.complex64, shape=shape)
    return as_array(name, arr, np.complex64, ndim=2)


def as_positions(name: str, a: Any) -> np.ndarray:
    """``(M, 2)`` float64 positions, columns ``x`` (column) and ``y`` (row)."""
    return as_array(name, a, np.float64, shape=(None, 2), allow_complex=False)


def _positive_int(name: str, v: Any, *, minimum: int = 1, maximum: int = 2**63 - 1) -> int:
    """``v`` as an ``int`` in ``[minimum, maximum]``: Python/NumPy integers only (no bool, no
    float such as ``2.5`` or ``64.0``, no string such as ``"64"``)."""
    v = from_tensor(v)
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
        v = v.item()
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    if int(v) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if int(v) > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return int(v)


def _real_number(name: str, v: Any, what: str = "a finite number") -> float:
    """``v`` as a finite ``float``: real Python/NumPy numbers (and 0-d real arrays or scalar
    tensors) only; no bool, string or complex. Integers too large for float64 are a
    ``ValueError``, not an ``OverflowError``."""
    v = from_tensor(v)
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf":
        v = v.item()
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {type(v).__name__} {v!r}")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{name} must be {what}, got an integer too large for float64") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be {what}, got {f}")
    return f


def _flag(name: str, v: Any) -> bool:
    """A boolean argument: ``bool``, ``numpy.bool_`` or the integers 0 and 1 (not ``"yes"``,
    ``None`` or other truthy objects, which would silently pick a branch)."""
    v = from_tensor(v)
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, numbers.Integral) and int(v) in (0, 1):
        return bool(v)
    raise TypeError(f"{name} must be True or False, got {type(v).__name__} {v!r}")


def _positive_float(name: str, v: Any) -> float:
    """``v`` as a positive finite ``float`` (see :func:`_real_number` for the types)."""
    f = _real_number(name, v, "a positive finite number")
    if f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {f}")
    return f


def resolve_seed(seed: SeedLike, name: str = "seed") -> int:
    """A 64-bit integer seed from ``seed``.

    ``None`` draws fresh OS entropy; an integer is used as is (it must be in ``[0, 2**64)``);
    a :class:`numpy.random.Generator` or ``RandomState`` gives one draw from it (advancing it).
    """
    if isinstance(seed, np.random.RandomState):
        return int(seed.randint(0, 2**63, dtype=np.int64))
    return _integer_seed(seed, 64, name)


def _integer_seed(seed: Any, bits: int, name: str) -> int:
    """An integer seed in ``[0, 2**bits)``: fresh OS entropy for ``None``, one draw from a
    ``Generator`` (advancing it), an int as is."""
    if seed is None:
        dtype = np.uint64 if bits == 64 else np.uint32
        return int(np.random.SeedSequence().generate_state(1, dtype)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**bits, dtype=np.uint64))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, numpy.random.Generator or None, got {type(seed).__name__}"
        )
    if not 0 <= int(seed) < 2**bits:
        raise ValueError(f"{name} must be between 0 and 2**{bits} - 1, got {seed}")
    return int(seed)


def legacy_seed(seed: Any, name: str = "seed") -> int:
    """A 32-bit seed for NumPy's legacy MT19937 stream, as ``np.random.seed`` accepts it.

    An int in ``[0, 2**32)`` is used as is; a ``Generator`` gives one draw (advancing it);
    ``None`` draws fresh OS entropy (NumPy's global state is never read).
    """
    return _integer_seed(seed, 32, name)


def legacy_random_state(seed: Any, name: str = "seed") -> np.random.RandomState:
    """A private legacy ``RandomState``: ``seed`` as in :func:`legacy_seed`, or a
    ``RandomState`` used as is (and advanced). Its draws equal the reference's after
    ``np.random.seed(seed)``."""
    if isinstance(seed, np.random.RandomState):
        return seed
    if seed is not None and not isinstance(seed, (np.random.Generator, numbers.Integral)):
        raise TypeError(
            f"{name} must be an int, numpy.random.RandomState, numpy.random.Generator or "
            f"None, got {type(seed).__name__}"
        )
    return np.random.RandomState(legacy_seed(seed, name))


def _check_probe(probe: Any, n: int | None = None, name: str = "probe") -> np.ndarray:
    p = as_complex_image(name, probe)
    if p.shape[0] != p.shape[1]:
        raise ValueError(f"{name} must be square (N, N), got {p.shape}")
    if n is not None and p.shape[0] != n:
        raise ValueError(f"{name} must be (N, N) = ({n}, {n}), got {p.shape}")
    if p.shape[0] < 2:
        raise ValueError(f"{name} must be at least (2, 2), got {p.shape}")
    return p


#: Largest coordinate magnitude the neighbour search accepts: squared distances between such
#: points, ``(2 * 1e150)**2 * 2 = 8e300``, stay far inside float64.
MAX_COORDINATE = 1e150

#: The largest value the float32 far field may reach *before* its modulus is taken: the
#: kernels form ``re**2 + im**2`` in float32 (as the reference), so ``|FFT2(field)|**2`` must
#: stay below ``float32.max``; the factor 2 covers the FFT's rounding.
_F32_SQUARE_LIMIT = float(np.finfo(np.float32).max) / 2


def check_coordinate_range(name: str, coords: np.ndarray) -> None:
    """Refuse coordinates whose squared distances would overflow float64 (|value| > 1e150).

    ``coords`` is a finite float64 array (already checked). Such coordinates made the
    neighbour search meaningless (infinite distances) and could make it fail.

    Raises
    ------
    ValueError
        ``"<name> must lie within +-1e+150 (squared distances must fit float64), got <v> at
        index <i>"``.
    """
    if coords.size == 0:
        return
    mags = np.abs(coords)
    i = int(np.argmax(mags))
    if mags.flat[i] > MAX_COORDINATE:
        where = np.unravel_index(i, coords.shape)
        idx = where[0] if len(where) == 1 else tuple(int(w) for w in where)
        raise ValueError(
            f"{name} must lie within +-{MAX_COORDINATE:g} (squared distances must fit "
            f"float64), got {coords.flat[i]:g} at index {idx}"
        )


def check_field_range(
    scale: float,
    max_object: float,
    probe_l1: float,
    *,
    name: str,
    value: Any,
    limit_of: str = "scale",
) -> None:
    """Refuse an intensity scale whose far field would overflow float32 (silent NaN/inf).

    For any pattern, ``|FFT2(s * probe * patch)[k]| <= s * max|patch| * sum|probe|``; the
    kernels square that in float32, so ``(s * max|object| * sum|probe|)**2`` must stay below
    ``float32.max / 2``. The bound is reached by a flat object under a real, positive probe (the
    zero-frequency pixel); it also keeps ``s * probe`` and every Poisson rate within the
    sampler's range. ``s`` must be a positive float32 (not rounded to 0 or inf).

    Parameters
    ----------
    scale : float
        The intensity scale ``s`` about to be used (float32 value).
    max_object : float
        ``max |patch|`` (or ``max |object|``, an upper bound of it).
    probe_l1 : float
        ``sum |probe|`` over all pixels.
    name, value
        The user's argument that set ``s`` (``'nphotons'``, ``'intensity_scale'``, ``'scale'``)
        and its value, for the message.
    limit_of : {'scale', 'photons'}
        How the user's argument enters: ``s`` itself (``'scale'``: the largest allowed value
        scales like ``s``) or ``nphotons`` (``'photons'``: it scales like ``s**2``).

    Raises
    ------
    ValueError
        ``"nphotons = 1e+38 would overflow the float32 far field: (s * max|object| *
        sum|probe|)**2 = ... exceeds float32.max / 2 = ...; at most nphotons = ... fits this
        object and probe"``; or the scale underflows/overflows float32.
    """
    with np.errstate(over="ignore"):
        s32 = np.float32(scale)
    if not (np.isfinite(s32) and s32 >= np.finfo(np.float32).tiny):
        raise ValueError(
            f"{name} = {value!r} gives an intensity scale s = {float(scale):.4g} outside the "
            "float32 range of normal numbers (1.2e-38 .. 3.4e38)"
        )
    if not (math.isfinite(float(max_object)) and math.isfinite(float(probe_l1))):
        raise ValueError(
            f"{name} = {value!r} cannot be used: the moduli of the object or probe overflow "
            f"float32 (max|object| = {float(max_object):.4g}, sum|probe| = "
            f"{float(probe_l1):.4g}); scale them down"
        )
    bound = (float(s32) * float(max_object) * float(probe_l1)) ** 2
    if not math.isfinite(bound) or bound > _F32_SQUARE_LIMIT:
        ratio = _F32_SQUARE_LIMIT / bound if math.isfinite(bound) and bound > 0 else 0.0
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            v = math.nan
        largest = v * ratio if limit_of == "photons" else v * math.sqrt(ratio)
        raise ValueError(
            f"{name} = {value!r} would overflow the float32 far field: "
            f"(s * max|object| * sum|probe|)**2 = {bound:.3g} exceeds float32.max / 2 = "
            f"{_F32_SQUARE_LIMIT:.3g} (s = {float(s32):.4g}); at most {name} = {largest:.3g} "
            "fits this object and probe"
        )


#: ``|z|**2`` of a complex64 value is formed in float32: ``|z|`` must stay below this.
_F32_SQRT_LIMIT = math.sqrt(_F32_SQUARE_LIMIT)


def _check_product_range(obj: np.ndarray, probe: np.ndarray, max_obj: float | None = None) -> None:
    """Refuse an object and probe whose products' squared moduli would overflow float32 (the
    energies square ``probe * patch`` in float32, as the reference does). ``max_obj``:
    ``max|obj|`` when the caller knows it already (no pass over the object)."""
    bound = (_max_abs(obj) if max_obj is None else max_obj) * _max_abs(probe)
    if not bound <= _F32_SQRT_LIMIT:
        raise ValueError(
            f"obj and probe values must keep |probe * obj|**2 within float32 "
            f"(max|obj| * max|probe| <= {_F32_SQRT_LIMIT:.3g}), got {bound:.4g}"
        )


def _max_abs(a: np.ndarray) -> float:
    """``max |a|`` in float64 (0 for an empty array)."""
    if a.size == 0:
        return 0.0
    if a.dtype.kind == "c":
        return float(np.max(np.abs(a)))
    return float(max(abs(float(a.max())), abs(float(a.min()))))


# --------------------------------------------------------------------------- kernels


def extract_patches(obj: Any, positions: Any, N: int) -> np.ndarray:
    """Bilinear sub-pixel patches of ``obj`` centred on ``positions``.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object; converted to complex64. A trailing unit channel ``(H, W, 1)`` is dropped.
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels (``x`` = column, ``y`` = row); finite.
    N : int
        Patch size, at least 1.

    Returns
    -------
    numpy.ndarray, complex64, (M, N, N)
        ``patch[r, c] = bilinear(obj, row = y + r - N//2, col = x + c - N//2)``: the position
        is sampled at patch pixel ``(N//2, N//2)``. Corners outside the object contribute
        zero. Coordinates and weights are computed in float32 exactly as the reference does
        (``sx = float32(c) + float32(x)``, ``floor``, weights ``(1-wx)(1-wy)``, ...), so
        integer positions give exact pixel copies.

    Raises
    ------
    TypeError
        If an argument is not numeric (or ``positions`` is complex, ``N`` not an integer).
    ValueError
        If a shape is wrong, an array is empty, or a value is NaN or infinite.

    Examples
    --------
    >>> obj = np.zeros((256, 256)); obj[100, 150] = 1
    >>> p = extract_patches(obj, [[150.25, 100.5]], 64)
    >>> p[0, 31:33, 31:33].real
    array([[0.125, 0.375],
           [0.125, 0.375]], dtype=float32)
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    n = _positive_int("N", N)
    m = p.shape[0]
    require_memory(f"extract_patches: {m} patches of N = {n} (complex64)", m * n * n * 8)
    return _core.extract_patches(o, p, n)


def diffract(patches: Any, probe: Any, scale: float = 1.0) -> np.ndarray:
    """Far-field amplitudes of ``scale * probe * patch``.

    Parameters
    ----------
    patches : array_like, (M, N, N), complex
        Object patches (e.g. from :func:`extract_patches`); converted to complex64.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination; ``N >= 2`` (any size: odd and prime sizes work).
    scale : float, optional
        Positive factor applied to the field (the reference's intensity scale).

    Returns
    -------
    numpy.ndarray, float32, (M, N, N)
        ``|fftshift(fft2(scale * probe * patch))| / N`` (README "Conventions"): no shift
        before the FFT, zero frequency at ``[N//2, N//2]``, unitary, so
        ``sum(A**2) == sum(|scale * probe * patch|**2)``.

    Raises
    ------
    TypeError
        If an argument is not numeric.
    ValueError
        If ``patches`` is not a non-empty ``(M, N, N)`` stack, ``probe`` is not ``(N, N)``
        with ``N >= 2``, a value is not finite, or ``scale`` is not positive.

    Examples
    --------
    >>> a = diffract(np.ones((1, 4, 4)), np.ones((4, 4)))
    >>> float(a[0, 2, 2]), float(a.sum())
    (4.0, 4.0)
    """
    pa = as_array("patches", patches, np.complex64, ndim=3)
    if pa.shape[1] != pa.shape[2]:
        raise ValueError(f"patches must be (M, N, N), got {pa.shape}")
    pr = _check_probe(probe, pa.shape[1])
    sc = _positive_float("scale", scale)
    check_field_range(sc, _max_abs(pa), float(np.sum(np.abs(pr))), name="scale", value=scale)
    require_memory(f"diffract: {pa.shape[0]} float32 patterns", pa.nbytes // 2)
    return _core.diffract(pa, pr, np.float32(sc))


def _poisson_stream(version: Any) -> str:
    """Validates a Poisson noise stream name (README, "Noise streams")."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a str, one of {_NOISE_VERSIONS}, got {version!r}")
    if version not in _NOISE_VERSIONS:
        raise ValueError(f"version must be one of {_NOISE_VERSIONS}, got {version!r}")
    return version


def observe_amplitudes(
    amplitudes: Any, seed: SeedLike = None, *, first_index: int = 0, version: str = "v1"
) -> np.ndarray:
    """Noisy amplitudes ``sqrt(Poisson(amplitudes**2))``, sampled exactly.

    Each amplitude ``A`` is replaced by ``sqrt(K)`` with ``K`` drawn from the exact Poisson
    law of rate ``A**2`` (photon counts; no normal approximation at any rate, from 0 to beyond
    1e9 counts per pixel); zero amplitudes stay exactly 0. Pattern ``i`` draws from its own
    random stream ``(seed, first_index + i)``, so the result does not depend on the number of
    threads or on how a dataset is split into calls. Amplitudes, not intensities, as
    everywhere in ptyfast (README, "Conventions").

    Parameters
    ----------
    amplitudes : array_like, (M, N, N) or any (M, H, W), real
        Noise-free amplitudes, finite and non-negative; converted to float32 (C order).
    seed : int, numpy.random.Generator, numpy.random.RandomState or None
        Randomness: an integer in ``[0, 2**64)`` is used as is, a generator gives one draw
        (advancing it), None draws fresh OS entropy.
    first_index : int, keyword-only
        Stream index of the first pattern (``>= 0``); pattern ``i`` uses ``first_index + i``.
    version : {"v1", "v2"}, keyword-only
        The Poisson noise stream (README, "Noise streams"): ``"v1"`` (default) gives the bits
        ptyfast has always given for a seed; ``"v2"`` is faster and samples the same law with
        other draws.

    Returns
    -------
    numpy.ndarray, float32, same shape
        ``sqrt(K)`` rounded to float32 (its square is an integer within float32 precision).
        The input is not modified.

    Raises
    ------
    ValueError
        Amplitudes not 3-D, empty, negative, NaN or infinite; a seed or first_index out of
        range; an unknown version.
    TypeError
        Complex or non-numeric amplitudes; a seed, first_index or version of the wrong type.

    Examples
    --------
    >>> a = np.full((2, 4, 4), 10.0, np.float32)     # 100 expected photons per pixel
    >>> noisy = observe_amplitudes(a, seed=0)
    >>> noisy.shape, noisy.dtype
    ((2, 4, 4), dtype('float32'))
    >>> counts = np.round(noisy.astype(np.float64) ** 2)  # the photon counts
    >>> bool(np.all(noisy == np.sqrt(counts).astype(np.float32)))
    True
    """
    a = as_array(
        "amplitudes", amplitudes, np.float32, ndim=3, allow_complex=False, nonnegative=True
    )
    s = resolve_seed(seed)
    fi = _positive_int("first_index", first_index, minimum=0)
    v = _poisson_stream(version)
    require_memory(f"observe_amplitudes: {a.shape[0]} float32 patterns", a.nbytes)
    return _core.poisson_amplitudes(a, s, fi, v)


def poisson_counts(
    rates: Any, seed: SeedLike = None, *, stream: int = 0, version: str = "v1"
) -> np.ndarray:
    """Exact Poisson counts for a vector of rates, all drawn from one stream.

    The sampler of :func:`observe_amplitudes`, exposed on rates (expected counts) for tests
    and statistics; the rates are consumed in blocks from stream ``(seed, stream)``.

    Parameters
    ----------
    rates : array_like, (n,), real
        Expected counts, finite and non-negative; converted to float64.
    seed : int, numpy.random.Generator, numpy.random.RandomState or None
        As in :func:`observe_amplitudes`.
    stream : int, keyword-only
        Stream index (``>= 0``), as a pattern index would be.
    version : {"v1", "v2"}, keyword-only
        The Poisson noise stream, as in :func:`observe_amplitudes`.

    Returns
    -------
    numpy.ndarray, float64, (n,)
        Integer-valued counts (rounded to the nearest float64 above 2**53); 0 where the rate
        is 0.

    Raises
    ------
    ValueError
        Rates not 1-D, empty, negative, NaN or infinite; seed or stream out of range; an
        unknown version.
    TypeError
        Complex or non-numeric rates; seed, stream or version of the wrong type.

    Examples
    --------
    >>> k = poisson_counts(np.full(100_000, 3.5), seed=1)
    >>> bool(abs(k.mean() - 3.5) < 0.05)
    True
    """
    r = as_array("rates", rates, np.float64, ndim=1, allow_complex=False, nonnegative=True)
    seed_value = resolve_seed(seed)
    st = _positive_int("stream", stream, minimum=0)
    v = _poisson_stream(version)
    require_memory(f"poisson_counts: {r.size} float64 counts", r.nbytes)
    return _core.poisson_counts(r, seed_value, st, v)


def illuminated_energy(obj: Any, positions: Any, probe: Any) -> np.ndarray:
    """Per-pattern illuminated energy ``sum |probe * patch|**2``, without an FFT.

    By Parseval this is the total of the squared far-field amplitudes at ``scale = 1``; the
    reference's intensity scale is ``sqrt(nphotons / mean(illuminated_energy(...)))``.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object (converted to complex64).
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels, as for :func:`extract_patches`.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination, ``N >= 2``; its size is the patch size.

    Returns
    -------
    numpy.ndarray, float64, (M,)
        The products are formed in complex64 and their squared moduli summed in float64, in a
        fixed order: results do not depend on the thread count.

    Raises
    ------
    TypeError
        If an argument is not numeric.
    ValueError
        If a shape is wrong, an array is empty or a value is not finite.

    Examples
    --------
    >>> illuminated_energy(np.ones((32, 32)), [[16, 16]], np.ones((8, 8)))
    array([64.])
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    pr = _check_probe(probe)
    _check_product_range(o, pr)
    return _core.illuminated_energy(o, p, pr)


def _illuminated_energy_checked(
    o: np.ndarray, p: np.ndarray, pr: np.ndarray, max_obj: float
) -> np.ndarray:
    """:func:`illuminated_energy` of arrays the caller has checked as it does (``o`` from
    :func:`as_complex_image`, ``p`` finite float64 C-contiguous ``(M, 2)``, ``pr`` from
    :func:`_check_probe`), ``max_obj = max|o|`` known: no second pass over the object."""
    _check_product_range(o, pr, max_obj)
    return _core.illuminated_energy(o, p, pr)


def simulate(
    obj: Any,
    positions: Any,
    probe: Any,
    *,
    scale: float = 1.0,
    poisson: bool = True,
    seed: SeedLike = None,
    first_index: int = 0,
    divide_by_scale: bool = False,
    return_patches: bool = False,
    return_energies: bool = False,
    out: np.ndarray | None = None,
    out_patches: np.ndarray | None = None,
    out_energies: np.ndarray | None = None,
) -> Any:
    """Fused simulation: patch, probe, FFT and optional Poisson noise, one pass per pattern.

    Each pattern is computed in one pass on a worker thread, straight into the preallocated
    output; the noise-free result equals ``diffract(extract_patches(obj, positions, N), probe,
    scale)`` bit for bit.

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object (converted to complex64).
    positions : array_like, (M, 2)
        Scan positions ``(x, y)`` in object pixels, as for :func:`extract_patches`.
    probe : array_like, (N, N) or (N, N, 1), complex
        The illumination, ``N >= 2``; its size is the patch size.
    scale : float, optional
        Positive intensity scale applied to the field.
    poisson : bool, optional
        Observe each amplitude as ``sqrt(Poisson(A**2))``.
    seed : int, numpy.random.Generator or None, optional
        Noise seed (see :func:`resolve_seed`). Pattern ``i`` draws from its own stream
        ``(seed, first_index + i)``: the output does not depend on the thread count.
    first_index : int, optional
        Index of the first pattern in the whole dataset, so a dataset simulated in chunks
        equals one call.
    divide_by_scale : bool, optional
        Divide the (noisy) amplitudes by ``scale``: the reference's stored ``X``.
    return_patches : bool, optional
        Also return the complex64 object patches (before the probe).
    return_energies : bool, optional
        Also return each written pattern's energy ``Σ amplitudes[i]**2`` (float64, ``(M,)``),
        computed in the same pass, summed in NumPy's pairwise order: bit for bit
        ``(amplitudes.astype(np.float64)**2).reshape(M, -1).sum(axis=1)``. A non-finite
        energy marks a non-finite pattern, so no pass over the output is needed afterwards.
    out : numpy.ndarray, optional
        Writeable C-contiguous float32 ``(M, N, N)`` buffer for the amplitudes (returned), for
        callers that simulate repeatedly into the same memory (its pages are touched once) or
        into a chunk of a larger array. Interrupted (Ctrl-C), it holds the pieces done so far.
    out_patches, out_energies : numpy.ndarray, optional
        Buffers for the patches (complex64 ``(M, N, N)``) and the energies (float64 ``(M,)``);
        giving one implies ``return_patches`` / ``return_energies``.

    Returns
    -------
    amplitudes : numpy.ndarray, float32, (M, N, N)
        ``|fftshift(fft2(scale * probe * patch))| / N`` (README "Conventions"), observed and
        divided as asked (``out`` when given).
    patches : numpy.ndarray, complex64, (M, N, N), or None
        The patches, when ``return_patches``.
    energies : numpy.ndarray, float64, (M,)
        A third item, with ``return_energies`` or any of the ``out`` buffers.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a shape is wrong, an array is empty, a value is not finite, ``scale`` is not
        positive, or ``seed`` / ``first_index`` is out of range.

    Examples
    --------
    >>> obj = np.ones((64, 64))
    >>> a, _ = simulate(obj, [[32, 32]], np.ones((8, 8)), scale=2.0, poisson=False)
    >>> float(a[0, 4, 4])
    16.0
    """
    poisson = _flag("poisson", poisson)
    divide_by_scale = _flag("divide_by_scale", divide_by_scale)
    return_patches = _flag("return_patches", return_patches)
    return_energies = _flag("return_energies", return_energies)
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    pr = _check_probe(probe)
    scale_value = _positive_float("scale", scale)
    check_field_range(
        scale_value, _max_abs(o), float(np.sum(np.abs(pr))), name="scale", value=scale
    )
    sc = np.float32(scale_value)
    s = resolve_seed(seed) if poisson else None
    fi = _positive_int("first_index", first_index, minimum=0)
    buffers = (out, out_patches, out_energies)
    if not return_energies and all(b is None for b in buffers):
        m, n = p.shape[0], pr.shape[0]
        per = n * n * (12 if return_patches else 4)
        require_memory(f"simulate: {m} patterns of N = {n}", m * per)
        return _core.simulate(o, p, pr, sc, s, fi, divide_by_scale, return_patches)
    return _simulate_into(o, p, pr, sc, s, fi, divide_by_scale, return_patches, *buffers)


def _simulate_into(
    o: np.ndarray,
    p: np.ndarray,
    pr: np.ndarray,
    sc: np.float32,
    s: int | None,
    fi: int,
    divide: bool,
    want_patches: bool,
    out: Any,
    out_patches: Any,
    out_energies: Any,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`simulate` into given (or fresh) buffers, with the per-pattern energies."""
    m, n = p.shape[0], pr.shape[0]
    shape, inputs = (m, n, n), (o, p, pr)
    want_patches = want_patches or out_patches is not None
    fresh = (
        m * n * n * ((4 if out is None else 0) + (8 if want_patches and out_patches is None else 0))
    )
    require_memory(f"simulate: {m} patterns of N = {n}", fresh + 8 * m)
    amps = (
        np.empty(shape, np.float32)
        if out is None
        else _out_buffer("out", out, np.float32, shape, inputs)
    )
    patches = None
    if want_patches:
        patches = (
            np.empty(shape, np.complex64)
            if out_patches is None
            else _out_buffer("out_patches", out_patches, np.complex64, shape, inputs)
        )
    energies = (
        np.empty(m, np.float64)
        if out_energies is None
        else _out_buffer("out_energies", out_energies, np.float64, (m,), inputs)
    )
    for name, a, b in (
        ("out", amps, patches),
        ("out", amps, energies),
        ("out_patches", patches, energies),
    ):
        if a is not None and b is not None and np.may_share_memory(a, b):
            raise ValueError(f"{name} must not share memory with another output, got an overlap")
    _core.simulate_into(o, p, pr, sc, s, fi, divide, amps, patches, energies)
    return amps, patches, energies


def knn(points: Any, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``points`` of each query: ``(indices int64 (Q, k), distances (Q, k))``,
    ordered by distance, ties by index."""
    p = as_positions("points", points)
    q = as_positions("queries", queries)
    check_coordinate_range("points", p)
    check_coordinate_range("queries", q)
    kk = _positive_int("k", k)
    if kk > p.shape[0]:
        raise ValueError(f"k must be <= the number of points ({p.shape[0]}), got {kk}")
    # The outputs, plus the tree and the visiting buffers of the same order.
    require_memory(f"knn: {q.shape[0]} queries x k = {kk}", q.shape[0] * kk * 32 + p.nbytes * 2)
    return _core.knn(p, q, kk)


def _coords_1d(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xs = as_array("xcoords", x, np.float64, ndim=1, allow_complex=False, allow_bool=False)
    ys = as_array("ycoords", y, np.float64, ndim=1, allow_complex=False, allow_bool=False)
    if xs.shape != ys.shape:
        raise ValueError(f"ycoords must have the shape of xcoords {xs.shape}, got {ys.shape}")
    check_coordinate_range("xcoords", xs)
    check_coordinate_range("ycoords", ys)
    return xs, ys


def _seed_indices(seed_indices: Any, n: int) -> np.ndarray | None:
    if seed_indices is None:
        return None
    si = as_array("seed_indices", seed_indices, np.int64, ndim=1, nonempty=False, allow_bool=False)
    if si.size and (si.min() < 0 or si.max() >= n):
        raise ValueError(f"seed_indices must lie in [0, {n}), got range [{si.min()}, {si.max()}]")
    return si


def _grouping_args(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: Any, seed_indices: Any
) -> tuple[Any, ...]:
    xs, ys = _coords_1d(x, y)
    return (
        xs,
        ys,
        _positive_int("nsamples", nsamples),
        _positive_int("K", K),
        _positive_int("C", C),
        legacy_seed(seed),
        _seed_indices(seed_indices, xs.size),
    )


def sample_then_group(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference "sample-then-group" selection; ``(n_seeds, C)`` int64 point indices."""
    args = _grouping_args(x, y, nsamples, K, C, seed, seed_indices)
    n, ns, k, c = args[0].size, args[2], args[3], args[4]
    m = min(ns, n)
    # Output and draws (m * C each), the seed permutation (n), the tree and the query buffers.
    need = 16 * m * c + 8 * n + 48 * n + 16 * m * min(k + 1, n)
    require_memory(f"grouping: nsamples = {ns} groups of C = {c}", need)
    return _core.sample_then_group(*args)


def oversampled_bytes(nsamples: int, K: int, C: int, n: int) -> int:
    """Bytes the K-choose-C oversampling kernel allocates for ``nsamples`` groups of ``C``
    among ``n`` points with pool size ``K``: the ``(nsamples, C)`` int64 output, the
    ``nsamples`` drawn pool rows, the seeds, and for ``C > 1`` the k-d tree and the
    neighbour rows of the seeds whose combinations fill the pool.

    The seeds are ``min(2·ceil(nsamples / M), n)`` with ``M = C(K, C)`` combinations per
    seed, and only ``ceil(min(M·seeds, 2·nsamples) / M)`` of them are queried: with a large
    ``K`` one seed's neighbours give every group (counting ``2·nsamples`` rows of ``K + 1``
    for every seed refused valid calls as beyond the memory)."""
    base = 16 * nsamples * C + 8 * nsamples + 8 * n
    if C == 1:
        return base + 8 * min(2 * max(nsamples, 1), n)
    per_seed_max = max(1, math.comb(K, C))  # (K < C is refused by the kernel)
    seeds = min(2 * max(1, -(-nsamples // per_seed_max)), n)
    # The population each seed's group is drawn from: its neighbours without itself (K of
    # them when n > K), or with itself when fewer than C remain.
    kq = min(K + 1, n)
    nb = K if kq > K else (kq - 1 if kq > 1 else kq)
    width = nb + 1 if nb < C else nb
    per_seed = math.comb(width, C) if width >= C else 1
    used = min(seeds, -(-min(per_seed * seeds, 2 * nsamples) // per_seed))
    # tree and its scratch; each queried row twice (visited and kept) and its query
    return base + 8 * seeds + 48 * n + used * (16 * (K + 1) + 24)


def oversample_groups(
    x: Any, y: Any, nsamples: int, K: int, C: int, seed: int, seed_indices: Any = None
) -> np.ndarray:
    """Reference K-choose-C oversampling; ``(nsamples, C)`` int64 point indices."""
    args = _grouping_args(x, y, nsamples, K, C, seed, seed_indices)
    n, ns, k, c = args[0].size, args[2], args[3], args[4]
    require_memory(
        f"oversampling: nsamples = {ns} groups of C = {c}", oversampled_bytes(ns, k, c, n)
    )
    return _core.oversample_groups(*args)


def gather_groups(diff3d: Any, groups: Any) -> np.ndarray:
    """``diff3d[groups]`` rearranged to ``(B, N, N, C)`` float32."""
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    require_memory(f"gather_groups: {g.size} float32 patterns", g.size * d[0].nbytes)
    return _core.gather_groups(d, g)


def num_threads() -> int:
    """Worker threads of the kernels (``RAYON_NUM_THREADS``, else one per core)."""
    return int(_core.num_threads())


def simd_level() -> str:
    """Instruction set of the hot loops: ``'baseline'``, ``'avx2'`` or ``'avx512'``.

    The widest the processor supports, capped by ``PTYFAST_SIMD`` (read once per process).
    Results are bit-identical at every level; only speed differs.
    """
    return str(_core.simd_level())


def gather_groups_scaled(diff3d: Any, groups: Any, scale: float) -> np.ndarray:
    """``float32(scale) * diff3d[groups]`` rearranged to ``(B, N, N, C)`` float32.

    The multiply is one float32 operation per value, bit-identical to NumPy's
    ``np.float32(scale) * diff3d[groups].transpose(0, 2, 3, 1)``.
    """
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    f = np.float32(_real_number("scale", scale))
    if not np.isfinite(f):
        raise ValueError(f"scale must fit float32, got {scale}")
    if not np.all(np.isfinite(f * np.array([_max_abs(d)], np.float32))):
        raise ValueError(f"scale = {scale} times diff3d overflows float32")
    require_memory(f"gather_groups_scaled: {g.size} float32 patterns", g.size * d[0].nbytes)
    return _core.gather_groups_scaled(d, g, float(f))


def pattern_energies(diff3d: Any) -> np.ndarray:
    """Per-pattern energy ``sum_{h,w} diff3d[m]**2`` (float64, (M,)), summed in float64 in
    row-major order (fixed, thread-count independent)."""
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False)
    return _core.pattern_energies(d)


def legacy_permutation(seed: int, n: int) -> np.ndarray:
    """``numpy.random.RandomState(seed).permutation(n)`` replayed by the core (int64)."""
    s = legacy_seed(seed)
    nn = _positive_int("n", n, minimum=0)
    require_memory(f"legacy_permutation: n = {nn}", 16 * nn)
    return _core.legacy_permutation(s, nn)


def legacy_choice(seed: int, n: int, size: int, *, replace: bool = True) -> np.ndarray:
    """``numpy.random.RandomState(seed).choice(n, size, replace=replace)`` replayed by the core."""
    nn = _positive_int("n", n, minimum=0)
    sz = _positive_int("size", size, minimum=0)
    replace = _flag("replace", replace)
    if nn == 0 and sz > 0:
        raise ValueError("n must be >= 1 when size > 0, got 0")
    if not replace and sz > nn:
        raise ValueError(f"size must be <= n ({nn}) without replacement, got {sz}")
    s = legacy_seed(seed)
    require_memory(f"legacy_choice: size = {sz}", 16 * sz + (0 if replace else 8 * nn))
    return _core.legacy_choice(s, nn, sz, replace)


def legacy_uniform(seed: int, size: int) -> np.ndarray:
    """``numpy.random.RandomState(seed).random_sample(size)`` replayed by the core."""
    s = legacy_seed(seed)
    sz = _positive_int("size", size, minimum=0)
    require_memory(f"legacy_uniform: size = {sz}", 16 * sz)
    return _core.legacy_uniform(s, sz)


def legacy_raw(seed: int, size: int) -> np.ndarray:
    """The first ``size`` raw 32-bit MT19937 outputs of ``RandomState(seed)`` (uint32)."""
    s = legacy_seed(seed)
    sz = _positive_int("size", size, minimum=0)
    require_memory(f"legacy_raw: size = {sz}", 8 * sz)
    return _core.legacy_raw(s, sz)


def paint_leaves(
    out: np.ndarray,
    uncovered: np.ndarray,
    cx: Any,
    cy: Any,
    radii: Any,
    values: Any,
    remaining: int,
) -> tuple[int, int | None]:
    """Paint one batch of dead leaves, in order, onto ``out`` and ``uncovered`` (in place).

    Leaf ``i`` (centre ``(cx[i], cy[i])`` = (column, row), radius ``radii[i]``, value
    ``values[i]``) covers the pixels ``(row, col)`` with ``(col - cx)**2 + (row - cy)**2 <=
    r**2`` that are still ``uncovered``: they take its value and are covered. This is the
    painting step of :func:`ptyfast.objects.dead_leaves` (whose draws stay in NumPy).

    Parameters
    ----------
    out : numpy.ndarray, float64, (H, W)
        The image being painted (writeable, C-contiguous; modified).
    uncovered : numpy.ndarray, bool, (H, W)
        Pixels no leaf has covered yet (writeable, C-contiguous; modified).
    cx, cy, radii, values : array_like, float64, (B,)
        The batch's leaves; finite, radii ``>= 0``.
    remaining : int
        ``uncovered.sum()`` on entry (``0 .. H*W``; not recounted).

    Returns
    -------
    (int, int or None)
        The uncovered count after the batch, and, if it reached 0, the number of leaves of
        the batch used (the rest are not painted).

    Examples
    --------
    >>> out, unc = np.zeros((3, 3)), np.ones((3, 3), bool)
    >>> paint_leaves(out, unc, [1.0], [1.0], [1.0], [2.0], 9)
    (4, None)
    >>> out
    array([[0., 2., 0.],
           [2., 2., 2.],
           [0., 2., 0.]])
    """
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        got = getattr(out, "shape", type(out).__name__)
        raise TypeError(f"out must be a 2-D float64 numpy array, got {got}")
    leaves = [
        as_array(name, a, np.float64, ndim=1, allow_complex=False, nonempty=False)
        for name, a in (("cx", cx), ("cy", cy), ("radii", radii), ("values", values))
    ]
    # The leaves are read while out and uncovered are written: no overlap.
    out = _out_buffer("out", out, np.float64, out.shape, tuple(leaves))
    uncovered = _out_buffer("uncovered", uncovered, np.bool_, out.shape, (out, *leaves))
    for name, a in zip(("cy", "radii", "values"), leaves[1:], strict=True):
        if a.shape != leaves[0].shape:
            raise ValueError(f"{name} must have the length of cx ({leaves[0].size}), got {a.size}")
    if leaves[2].size and leaves[2].min() < 0:
        raise ValueError(f"radii must be >= 0, got minimum {leaves[2].min()}")
    left = _positive_int("remaining", remaining, minimum=0)
    if left > out.size:
        raise ValueError(f"remaining must be <= H*W = {out.size}, got {left}")
    done, used = _core.paint_leaves(out, uncovered, *leaves, left)
    return int(done), None if used is None else int(used)


def group_diffraction(
    diff3d: Any, groups: Any, N: int
) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """Grouped diffraction and its normalised copy, validated once.

    Parameters
    ----------
    diff3d : array_like, float32, (M, N, N)
        Amplitudes, one pattern per scan position.
    groups : array_like, int, (B, C)
        Pattern indices of each group.
    N : int
        Patch size used in the normalisation target ``(N/2)**2``.

    Returns
    -------
    diffraction : numpy.ndarray, float32, (B, N, N, C)
        ``diff3d[groups]`` with the group members as channels.
    X_full : numpy.ndarray, float32, (B, N, N, C)
        ``f * diffraction`` with
        ``f = float32(sqrt((N/2)**2 / mean_{b,c} sum_{h,w} diffraction**2))``, energies summed
        in float64 (the reference's ``raw_data.normalize_data``).
    f : numpy.float32
        The scale factor (``inf`` when every selected pattern is zero, as in the reference).
    """
    # Finiteness is checked on the per-pattern energies (a float32 value squared cannot overflow
    # float64, so an energy is finite iff its pattern is), saving a pass over diff3d.
    d = as_array("diff3d", diff3d, np.float32, ndim=3, allow_complex=False, finite=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    n = _positive_int("N", N)
    if g.min() < 0 or g.max() >= d.shape[0]:
        raise ValueError(f"groups must index [0, {d.shape[0]}), got [{g.min()}, {g.max()}]")
    energies = _core.pattern_energies(d)
    if not np.all(np.isfinite(energies)):
        raise ValueError("diff3d must be finite, got NaN or inf values")
    f = _normalization_factor(float(np.mean(energies[g])), n, "diff3d")
    require_memory(
        f"grouped diffraction and X_full: {g.shape[0]} groups of {g.shape[1]} float32 patterns",
        2 * g.size * d[0].nbytes,
    )
    diffraction, x_full = _core.gather_groups_normalized(d, g, float(f))
    return diffraction, x_full, f


def _normalization_factor(mean_energy: float, n: int, name: str) -> np.float32:
    """``float32(sqrt((N/2)**2 / mean_energy))``, the reference's ``normalize_data`` factor.

    Raises ``ValueError`` naming ``name`` when the selected patterns carry no energy (the
    reference divides by zero there) or the factor leaves the float32 range."""
    if not mean_energy > 0:
        raise ValueError(
            f"{name} is zero in every selected pattern: the normalisation to a mean energy "
            f"(N/2)**2 divides by the mean energy, got {mean_energy}"
        )
    f = np.float32(math.sqrt((n / 2) ** 2 / mean_energy))
    if not (np.isfinite(f) and f > 0):
        raise ValueError(
            f"{name} has a mean pattern energy of {mean_energy:.4g}: the normalisation factor "
            f"sqrt((N/2)**2 / energy) = {math.sqrt((n / 2) ** 2 / mean_energy):.4g} does not "
            "fit float32"
        )
    return f


def gather_groups_complex(patches: Any, groups: Any) -> np.ndarray:
    """``patches[groups]`` rearranged to ``(B, N, N, C)`` complex64 (``patches`` is
    ``(M, N, N)``, converted to complex64); values are copied as they are, NaN included."""
    p = as_array("patches", patches, np.complex64, ndim=3, finite=False)
    g = as_array("groups", groups, np.int64, ndim=2)
    if g.min() < 0 or g.max() >= p.shape[0]:
        raise ValueError(f"groups must index [0, {p.shape[0]}), got [{g.min()}, {g.max()}]")
    require_memory(f"gather_groups_complex: {g.size} complex64 patches", g.size * p[0].nbytes)
    return _core.gather_groups_complex(p, g)


def extract_grid_patches(
    image: Any,
    positions: Any,
    N: int,
    C: int,
    *,
    out: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bilinear patches of a complex ``image`` in channel format.

    ``positions`` is ``(B*C, 2)``; flat position ``b*C + c`` fills channel ``c`` of group ``b``
    (sampling as :func:`extract_patches`). Returns the real and imaginary parts, each float32
    ``(B, N, N, C)``: an image ``amplitude + 1j*phase`` gives the amplitude and phase patches,
    each interpolated separately as the reference does. With ``out=(re, im)`` (writeable,
    C-contiguous float32 arrays of that shape) the patches are written there and ``out`` is
    returned; ``im`` may be ``None`` (real parts only, for an object without phase).
    """
    im = as_complex_image("image", image)
    p = as_positions("positions", positions)
    n = _positive_int("N", N)
    c = _positive_int("C", C)
    if p.shape[0] % c:
        raise ValueError(f"positions must have a multiple of C = {c} rows, got {p.shape[0]}")
    if out is None:
        require_memory(
            f"extract_grid_patches: {p.shape[0]} patches of N = {n} (two float32 parts)",
            p.shape[0] * n * n * 8,
        )
        return _core.extract_grid_patches(im, p, n, c)
    shape = (p.shape[0] // c, n, n, c)
    if len(out) != 2:
        raise ValueError(f"out must be a pair (re, im), got {len(out)} items")
    for name, o in zip(("out[0]", "out[1]"), out, strict=True):
        if name == "out[1]" and o is None:
            continue
        if not (
            isinstance(o, np.ndarray)
            and o.dtype == np.float32
            and o.shape == shape
            and o.flags.c_contiguous
            and o.flags.writeable
        ):
            got = f"{getattr(o, 'dtype', type(o).__name__)} {getattr(o, 'shape', '')}"
            raise ValueError(
                f"{name} must be a writeable C-contiguous float32 {shape} array, got {got}"
            )
    _core.extract_grid_patches_into(im, p, out[0], out[1])
    return out


def illuminate_groups(
    amplitude: Any,
    phase: Any,
    probe: Any,
    scale: float,
    *,
    poisson: bool = True,
    seed: SeedLike = None,
    first_index: int = 0,
    check_finite: bool = True,
    overwrite_amplitude: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Illuminate and diffract channel-format patches (the grid path of the README).

    For flat pattern ``i = b*C + c`` with ``O = amplitude * exp(1j * phase)`` (``phase=None``
    is zero, without a buffer): returns
    ``X = sqrt(Poisson(A**2)) / scale`` (``A / scale`` without noise), ``A`` the far field of
    ``scale * probe * O``, pattern ``i`` on stream ``(seed, first_index + i)``, and the
    post-probe amplitude ``|O * probe|``; both float32 ``(B, N, N, C)``.

    ``overwrite_amplitude=True`` (like SciPy's ``overwrite_x``) writes the post-probe
    amplitude into ``amplitude`` itself when it is a writeable C-contiguous float32 array,
    sparing a batch-sized allocation; otherwise ``amplitude`` is never modified.
    ``check_finite=False`` skips the finiteness scan for arrays a kernel just produced from
    checked input, and the float32 range check of the far field (:func:`check_field_range`,
    which needs ``max(amplitude)``): the caller must have made that check. ``out`` (a
    writeable C-contiguous float32 array of ``amplitude``'s shape, sharing no memory with the
    inputs) receives ``X`` instead of a new array: no first touch of fresh memory when
    simulating repeatedly.
    """
    a = as_array("Y_I", amplitude, np.float32, ndim=4, allow_complex=False, finite=check_finite)
    ph = None
    if phase is not None:
        ph = as_array(
            "Y_phi", phase, np.float32, shape=a.shape, allow_complex=False, finite=check_finite
        )
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"Y_I must be (B, N, N, C), got {a.shape}")
    pr = _check_probe(probe, a.shape[1])
    scale_value = _positive_float("scale", scale)
    if check_finite:
        check_field_range(
            scale_value, _max_abs(a), float(np.sum(np.abs(pr))), name="scale", value=scale
        )
    sc = np.float32(scale_value)
    s = resolve_seed(seed) if poisson else None
    fi = _positive_int("first_index", first_index, minimum=0)
    in_place = overwrite_amplitude and a is amplitude and a.flags.writeable
    inputs = (a,) if ph is None else (a, ph)
    if out is not None:
        _out_buffer("out", out, np.float32, a.shape, inputs)
    require_memory(
        f"illuminate_groups: {a.size // a.shape[1] ** 2} float32 patterns",
        a.nbytes * ((0 if in_place else 1) + (0 if out is not None else 1)),
    )
    if not in_place:
        a = a.copy()
    x = _core.illuminate_groups(a, ph, pr, sc, s, fi, out)
    return x, a


def _grid_scan(images: Any, positions: Any, N: int, C: int, check_finite: bool) -> tuple:
    """The checked arguments of the fused grid kernels: a C-contiguous complex64 ``(K, H, W)``
    stack, ``(B*C, 2)`` positions with the ``B`` groups a multiple of ``K``, ``N``, ``C``."""
    im = as_array("images", images, np.complex64, ndim=3, finite=check_finite)
    p = as_positions("positions", positions)
    n = _positive_int("N", N, minimum=2)
    c = _positive_int("C", C)
    k = im.shape[0]
    if p.shape[0] % c or (p.shape[0] // c) % k:
        raise ValueError(
            f"positions must have B*C rows (C = {c}) with the B groups a multiple of the "
            f"{k} images, got {p.shape[0]} rows"
        )
    return im, p, n, c


def grid_maxima(images: Any, positions: Any, N: int, C: int, *, check_finite: bool = True):
    """Each group's largest pre-probe amplitude, float32 ``(B,)``: the first pass of the grid
    kernel, the values ``extract_grid_patches(...)[0].reshape(B, -1).max(axis=1)`` gives
    (NaN when a group holds one), with no patch written to memory.

    ``images`` is a ``(K, H, W)`` stack of complex images ``amplitude + 1j*phase``;
    ``positions`` ``(B*C, 2)``, object-major: group ``b`` samples image ``b // (B // K)``.
    """
    im, p, n, c = _grid_scan(images, positions, N, C, check_finite)
    _grid_memory("grid_maxima", im, p, n, c, 1, p.shape[0] // c * 4, amplitudes=True)
    return _core.grid_maxima(im, p, n, c)


def grid_energies(
    images: Any,
    positions: Any,
    N: int,
    C: int,
    probe: Any,
    divisor: float,
    *,
    check_finite: bool = True,
) -> np.ndarray:
    """The energies ``sum (a * |probe|)**2`` of the pre-probe amplitudes divided by
    ``np.float32(divisor)``, float64 ``(B*C,)`` in flat order: the grid kernel's second pass,
    the values of :func:`channel_energies` on the extracted patches divided by ``divisor``,
    bit for bit, with no patch written to memory. Arguments as :func:`grid_maxima`."""
    im, p, n, c = _grid_scan(images, positions, N, C, check_finite)
    pr = _check_probe(probe, n)
    _grid_memory("grid_energies", im, p, n, c, 4, p.shape[0] * 8, amplitudes=True)
    return _core.grid_energies(im, p, n, c, pr, _grid_divisor(divisor))


def _grid_memory(
    what: str,
    im: np.ndarray,
    p: np.ndarray,
    n: int,
    c: int,
    groups: int,
    outputs: int,
    *,
    amplitudes: bool,
) -> None:
    """Checks the memory of a grid kernel before it runs: ``outputs`` bytes, per thread
    ``groups`` groups of float32 values (the read passes' samples, or the fused pass's exit
    waves and patterns), and with ``amplitudes`` the copy of the images' real parts the
    read passes sample."""
    per = c * n * n * 4
    require_memory(
        f"{what}: {p.shape[0]} patches of N = {n}",
        (im.size * 4 if amplitudes else 0) + outputs + num_threads() * groups * per,
    )


def _grid_divisor(divisor: Any) -> np.float32:
    """``divisor`` (``norm_Y_I``) as a positive finite float32."""
    d = _positive_float("divisor", divisor)
    if d > float(np.finfo(np.float32).max):
        raise ValueError(f"divisor must be a positive finite float32 number, got {divisor}")
    return np.float32(d)


def simulate_grid(
    images: Any,
    positions: Any,
    N: int,
    C: int,
    probe: Any,
    divisor: float,
    scale: float,
    *,
    with_phase: bool = True,
    poisson: bool = True,
    seed: SeedLike = None,
    first_index: int = 0,
    pre_probe: bool = False,
    out: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The grid path's fused kernel (``mk_simdata`` once its scale is known).

    For each group, in one parallel pass while the group is in cache: its ``C`` patches are
    sampled from ``images`` (as :func:`extract_grid_patches`), the amplitude divided by
    ``np.float32(divisor)`` (``norm_Y_I``), and the group illuminated and diffracted as
    :func:`illuminate_groups` does (pattern ``b*C + c`` on stream
    ``(seed, first_index + b*C + c)``). Returns ``(X, Y_I, Y_phi, I_pre, phi_pre)``: ``X``
    and the post-probe amplitude ``Y_I``, float32 ``(B, N, N, C)``; ``Y_phi`` the pre-probe
    phase patches (``None`` with ``with_phase=False``: the images' imaginary parts are then
    ignored, taken as zero); with ``pre_probe=True`` the normalised pre-probe amplitude and
    phase in flat order ``(B*C, N, N, 1)`` (``phi_pre`` ``None`` without phase), else
    ``None``. The same bits as the separate steps: extraction, division, ``illuminate_groups``.

    ``out=(X, Y_I, Y_phi)`` (writeable C-contiguous float32 ``(B, N, N, C)`` arrays sharing
    no memory; ``Y_phi`` ``None`` without phase) receives the results instead of new arrays.
    ``check_finite=False`` skips the finiteness scan of ``images`` and the float32 range
    check of the far field (:func:`check_field_range`): the caller must have made both.
    Arguments otherwise as :func:`grid_maxima`.
    """
    im, p, n, c = _grid_scan(images, positions, N, C, check_finite)
    pr = _check_probe(probe, n)
    d = _grid_divisor(divisor)
    scale_value = _positive_float("scale", scale)
    with_phase = _flag("with_phase", with_phase)
    pre_probe = _flag("pre_probe", pre_probe)
    if check_finite:
        # Patches interpolate the real parts (amplitudes): |O| <= max |Re images| / divisor.
        check_field_range(
            scale_value,
            _max_abs(im.real) / float(d),
            float(np.sum(np.abs(pr))),
            name="scale",
            value=scale,
        )
    s = resolve_seed(seed) if poisson else None
    fi = _positive_int("first_index", first_index, minimum=0)
    b = p.shape[0] // c
    shape = (b, n, n, c)
    if out is not None:
        if not isinstance(out, tuple) or len(out) != 3:
            raise ValueError(
                f"out must be a tuple (X, Y_I, Y_phi), got "
                f"{type(out).__name__} of {len(out) if isinstance(out, tuple) else '?'} items"
            )
        if with_phase is (out[2] is None):
            raise ValueError(
                "out[2] (Y_phi) must be an array with a phase and None without one, got "
                f"{type(out[2]).__name__}"
            )
        given: tuple[np.ndarray, ...] = (im, p, pr)
        for name, a in zip(("out X", "out Y_I", "out Y_phi"), out, strict=True):
            if a is not None:
                _out_buffer(name, a, np.float32, shape, given)
                given = given + (a,)
    count = (0 if out is not None else (3 if with_phase else 2)) + (
        (2 if with_phase else 1) if pre_probe else 0
    )
    _grid_memory("simulate_grid", im, p, n, c, 3, count * b * c * n * n * 4, amplitudes=False)
    if out is None:
        x = np.empty(shape, np.float32)
        y_i = np.empty(shape, np.float32)
        y_phi = np.empty(shape, np.float32) if with_phase else None
    else:
        x, y_i, y_phi = out
    pre_a = np.empty((b * c, n, n, 1), np.float32) if pre_probe else None
    pre_p = np.empty((b * c, n, n, 1), np.float32) if pre_probe and with_phase else None
    _core.simulate_grid(im, p, pr, d, np.float32(scale_value), s, fi, x, y_i, y_phi, pre_a, pre_p)
    return x, y_i, y_phi, pre_a, pre_p


def channel_energies(amplitude: Any, probe: Any, *, check_finite: bool = True) -> np.ndarray:
    """Per-pattern ``sum (amplitude * |probe|)**2`` of channel-format ``(B, N, N, C)``
    amplitudes: float64 ``(B*C,)`` in flat order ``b*C + c``."""
    a = as_array("Y_I", amplitude, np.float32, ndim=4, allow_complex=False, finite=check_finite)
    return _core.channel_energies(a, _energy_probe(a, probe))


def _energy_probe(a: np.ndarray, probe: Any) -> np.ndarray:
    """The checked ``(N, N)`` probe of an energy pass over ``(B, N, N, C)`` amplitudes ``a``
    (whose shape this checks too): ``|probe|**2`` must fit float32."""
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"Y_I must be (B, N, N, C), got {a.shape}")
    pr = _check_probe(probe, a.shape[1])
    if not _max_abs(pr) <= _F32_SQRT_LIMIT:
        raise ValueError(
            f"probe values must keep |probe|**2 within float32 (|probe| <= "
            f"{_F32_SQRT_LIMIT:.3g}), got {_max_abs(pr):.4g}"
        )
    return pr


# --------------------------------------------------------------------------- acquisition (M2)

#: The per-pattern statistics of :func:`acquire` / :func:`detect`, in column order: expected
#: photons reaching the detector (``Σ λ``), expected detected counts (after beamstop, gaps, QE
#: and dead time), detected counts as drawn (before the PSF), the sum of the readings over
#: valid pixels, and how many valid pixels saturated (or wrapped). The sums are float64: one
#: past its range (only rates or float64 readings near the float64 maximum get there) is inf.
ACQUIRE_STATS = ("photons", "detected", "counts", "readings", "saturated")

_F64_MAX = float(np.finfo(np.float64).max)

#: Every standard normal of the read-noise stage is below this in magnitude (the Rust
#: ``detector::Z_MAX``: the ziggurat's tail from 53-bit uniforms ends below 13.71), so float
#: readings hold ``read_noise · z`` when ``read_noise <= largest reading / Z_MAX``.
Z_MAX = 16.0


def _named_stats(stats: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """The ``(M, 5)`` statistics as named columns (:data:`ACQUIRE_STATS`), refusing a total
    that overflowed float64 (finite values whose sum is not: an absurd gain or dose) rather
    than returning ``inf`` as if it were a count."""
    if stats is None:
        return None
    if not np.all(np.isfinite(stats)):
        i, j = (int(v[0]) for v in np.nonzero(~np.isfinite(stats)))
        raise ValueError(
            f"stats[{ACQUIRE_STATS[j]!r}] of pattern {i} overflows float64 (each value is "
            "finite, their total is not): lower the detector's gain or offset, or the dose"
        )
    return {k: stats[:, j] for j, k in enumerate(ACQUIRE_STATS)}


#: Reading dtypes the detector stage writes.
READING_DTYPES = ("float32", "float64", "uint8", "uint16", "uint32")

#: Exact Poisson streams the shot-noise stage can draw from, oldest first ("v1": today's, the
#: default; "v2": the faster stream of ``observe_amplitudes(version="v2")``).
POISSON_STREAMS = ("v1", "v2")

#: Pixel-map flags (see ``ptyfast.model.detector``): a pixel's code is the OR of its flags,
#: 0 for a valid pixel. Beamstop shadow and gap (no sensor): no photons arrive; gap and dead:
#: the pixel reads 0; hot: it reads the saturation level (unless also dead or in a gap).
PIXEL_VALID, PIXEL_BEAMSTOP, PIXEL_GAP, PIXEL_DEAD, PIXEL_HOT = 0, 1, 2, 4, 8
PIXEL_ALL = PIXEL_BEAMSTOP | PIXEL_GAP | PIXEL_DEAD | PIXEL_HOT

_DETECTOR_DEFAULTS: dict[str, Any] = {
    "poisson": True,
    "poisson_stream": "v1",
    "qe": 1.0,
    "gain": 1.0,
    "offset": 0.0,
    "read_noise": 0.0,
    "dark": 0.0,
    "psf_sigma_px": 0.0,
    "full_well": None,
    "dtype": "float32",
    "overflow": "saturate",
    "dead_time_fraction": 0.0,
    "pixels": None,
}


class Acquired(NamedTuple):
    """What :func:`acquire` returns."""

    readings: np.ndarray
    """``(M, N, N)`` detector readings in the detector's dtype."""
    patches: np.ndarray | None
    """``(M, N, N)`` complex64 object patches before the probe, when asked."""
    stats: dict[str, np.ndarray] | None
    """Per-pattern statistics, float64 ``(M,)`` each (:data:`ACQUIRE_STATS`), when asked."""


def _real(name: str, v: Any, *, minimum: float | None = None, above: float | None = None) -> float:
    v = from_tensor(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not np.isfinite(f):
        raise ValueError(f"{name} must be finite, got {f}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {f}")
    if above is not None and f <= above:
        raise ValueError(f"{name} must be > {above}, got {f}")
    return f


def _choice(name: str, v: Any, options: tuple[str, ...]) -> str:
    if not isinstance(v, str):
        raise TypeError(
            f"{name} must be one of {', '.join(map(repr, options))}, got {type(v).__name__} {v!r}"
        )
    if v not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {v!r}")
    return v


def _reading_max(dtype: str) -> float:
    d = np.dtype(dtype)
    return float(np.iinfo(d).max) if d.kind == "u" else float(np.finfo(d).max)


def check_psf_sigma(sigma: float) -> None:
    """Refuse a PSF width whose square underflows float64 (``0 < σ < 1.6e-162``): the
    kernel's Gaussian ``exp(−d²/2σ²)`` would be ``0/0`` at its centre, and every reading NaN,
    then clamped to the dtype's largest value."""
    if sigma > 0 and not sigma * sigma > 0:
        raise ValueError(
            f"psf_sigma_px must be 0 or at least 1.6e-162 (its square must be a positive "
            f"float64), got {sigma!r}"
        )


def detector_settings(detector: Any, N: int) -> dict[str, Any]:
    """The detector stage's settings for ``N × N`` patterns, validated.

    ``detector`` is ``None`` (the ideal detector: exact Poisson counts on today's stream,
    float32), an object with a ``kernel_args(N)`` method (a :class:`ptyfast.Detector`), or a
    mapping with any of the keys ``poisson`` (bool), ``poisson_stream``
    (:data:`POISSON_STREAMS`), ``qe`` (0 < qe <= 1), ``gain`` (ADU per count, > 0),
    ``offset`` (ADU, >= 0), ``read_noise`` (ADU rms, >= 0), ``dark`` (counts per pixel,
    >= 0), ``psf_sigma_px`` (0 or 1.6e-162 .. 1e4), ``full_well`` (ADU, > offset, or None),
    ``dtype`` (:data:`READING_DTYPES`), ``overflow`` (``'saturate'`` or ``'wrap'``),
    ``dead_time_fraction`` (dead time / exposure, >= 0) and ``pixels`` (an ``(N, N)`` map of
    pixel flags, ``PIXEL_*``, or None); missing keys take the ideal values.

    Raises
    ------
    TypeError, ValueError
        Naming the setting, the expected and the received value.
    """
    if detector is None:
        raw: Any = {}
    elif hasattr(detector, "kernel_args") and not isinstance(detector, dict):
        raw = detector.kernel_args(N)
    else:
        raw = detector
    if not hasattr(raw, "keys"):
        raise TypeError(
            f"detector must be None, a ptyfast.Detector or a mapping of settings, got "
            f"{type(detector).__name__}"
        )
    unknown = sorted(set(raw) - set(_DETECTOR_DEFAULTS))
    if unknown:
        raise ValueError(
            f"detector must have settings among {sorted(_DETECTOR_DEFAULTS)}, got unknown {unknown}"
        )
    s = {**_DETECTOR_DEFAULTS, **raw}
    if not isinstance(s["poisson"], bool | np.bool_):
        raise TypeError(f"poisson must be a bool, got {type(s['poisson']).__name__}")
    out: dict[str, Any] = {
        "poisson": bool(s["poisson"]),
        "poisson_stream": _choice("poisson_stream", s["poisson_stream"], POISSON_STREAMS),
        "qe": _real("qe", s["qe"], above=0.0),
        "gain": _real("gain", s["gain"], above=0.0),
        "offset": _real("offset", s["offset"], minimum=0.0),
        "read_noise": _real("read_noise", s["read_noise"], minimum=0.0),
        "dark": _real("dark", s["dark"], minimum=0.0),
        "psf_sigma_px": _real("psf_sigma_px", s["psf_sigma_px"], minimum=0.0),
        "dtype": _choice("dtype", s["dtype"], READING_DTYPES),
        "overflow": _choice("overflow", s["overflow"], ("saturate", "wrap")),
        "dead_time_fraction": _real("dead_time_fraction", s["dead_time_fraction"], minimum=0.0),
    }
    if out["qe"] > 1:
        raise ValueError(f"qe must be in (0, 1], got {out['qe']}")
    if out["psf_sigma_px"] > 1e4:
        raise ValueError(f"psf_sigma_px must be <= 1e4, got {out['psf_sigma_px']}")
    check_psf_sigma(out["psf_sigma_px"])
    top = _reading_max(out["dtype"])
    if np.dtype(out["dtype"]).kind == "f" and out["read_noise"] > top / Z_MAX:
        raise ValueError(
            f"read_noise must be <= {top / Z_MAX:g} ADU for {out['dtype']} readings (the "
            f"largest reading / {Z_MAX:g}), got {out['read_noise']!r}"
        )
    fw = s["full_well"]
    if fw is not None:
        fw = _real("full_well", fw, above=out["offset"])
        if fw > top:
            raise ValueError(
                f"dtype {out['dtype']!r} cannot hold full_well = {fw} ADU (largest reading {top:g})"
            )
    out["full_well"] = fw
    px = s["pixels"]
    if px is not None:
        px = as_array("pixels", px, np.uint8, shape=(N, N), allow_complex=False)
        if np.any(px & ~np.uint8(PIXEL_ALL)):
            bad = int(px[(px & ~np.uint8(PIXEL_ALL)) != 0][0])
            raise ValueError(f"pixels must hold flags within {PIXEL_ALL}, got code {bad}")
        hot = (px & PIXEL_HOT) != 0
        if out["dtype"].startswith("float") and fw is None and np.any(hot):
            raise ValueError(
                f"pixels must not mark hot pixels for {out['dtype']} readings without a "
                f"full_well (a hot pixel reads the saturation level), got "
                f"{int(np.sum(hot))} hot pixels"
            )
        if not np.any(px):
            px = None
    out["pixels"] = px
    return out


def _core_detector(s: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray | None]:
    """The binding's detector dict and pixel map from validated settings."""
    return (
        {
            "poisson": s["poisson_stream"] if s["poisson"] else None,
            "qe": s["qe"],
            "dead_time": s["dead_time_fraction"],
            "psf_sigma_px": s["psf_sigma_px"],
            "gain": s["gain"],
            "offset": s["offset"],
            "dark": s["dark"],
            "read_noise": s["read_noise"],
            "full_well": s["full_well"],
            "overflow": s["overflow"],
        },
        s["pixels"],
    )


def _fits_in_memory(name: str, nbytes: int, what: str) -> None:
    """Refuses outputs this process cannot hold (:func:`require_memory`, before allocating),
    pointing to the chunked form."""
    try:
        require_memory(f"{name}: {what}", nbytes)
    except ValueError as exc:
        raise ValueError(
            f"{exc}: the outputs must fit in memory; write in chunks with out= and first_index"
        ) from None


def _out_buffer(
    name: str, a: Any, dtype: Any, shape: tuple[int, ...], inputs: tuple[np.ndarray, ...]
) -> np.ndarray:
    want = f"a writeable C-contiguous {np.dtype(dtype)} array of shape {shape}"
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be {want}, got {type(a).__name__}")
    if a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous or not a.flags.writeable:
        got = f"{a.dtype} {a.shape}"
        if not a.flags.c_contiguous:
            got += " (strided)"
        if not a.flags.writeable:
            got += " (read-only)"
        raise ValueError(f"{name} must be {want}, got {got}")
    if any(np.may_share_memory(a, x) for x in inputs):
        raise ValueError(f"{name} must not share memory with an input array, got an overlap")
    return a


def _as_modes(probe: Any) -> np.ndarray:
    """``(P, N, N)`` complex64 probe modes from ``(N, N)``, ``(N, N, 1)`` or ``(P, N, N)``."""
    arr = _to_numpy("probe", probe)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1 and arr.shape[0] == arr.shape[1]):
        return _check_probe(arr)[None]
    m = as_array("probe", arr, np.complex64, ndim=3)
    if m.shape[1] != m.shape[2] or m.shape[1] < 2:
        raise ValueError(f"probe must be (N, N) or (P, N, N) modes with N >= 2, got {m.shape}")
    return m


def acquire(
    obj: Any,
    positions: Any,
    probe: Any,
    *,
    scale: float = 1.0,
    detector: Any = None,
    seed: SeedLike = None,
    first_index: int = 0,
    return_patches: bool = False,
    return_stats: bool = False,
    out: np.ndarray | None = None,
    out_patches: np.ndarray | None = None,
    out_stats: np.ndarray | None = None,
) -> Acquired:
    """The acquisition pipeline: patches, incoherent probe modes, far field and detector.

    Pattern ``i`` (dataset-wide number ``first_index + i``) is computed in one pass on a
    worker thread, straight into the output: the patch at ``positions[i]`` (as
    :func:`extract_patches`), the far field of each mode
    ``A_k = |fftshift(fft2(scale * probe[k] * patch))| / N`` in float32 (as :func:`diffract`),
    the expected photons ``λ = Σ_k A_k²`` (float64), then the detector stage (beamstop and
    gaps, QE, dead time, exact Poisson, PSF, dark counts, gain/offset/read noise, saturation,
    quantisation, mask; see :mod:`ptyfast.model.detector`). Every random draw comes from a
    stream keyed by ``(seed, stage, first_index + i)``: the output does not depend on the
    thread count or on how a dataset is split into calls. With one mode and the ideal detector
    the readings are today's Poisson counts: ``sqrt(readings)`` equals
    ``simulate(..., poisson=True)``'s amplitudes bit for bit (for counts below 2**24 in
    float32 readings; at any count in float64).

    Parameters
    ----------
    obj : array_like, (H, W), real or complex
        The object (converted to complex64).
    positions : array_like, (M, 2)
        True scan positions ``(x, y)`` in object pixels (README "Conventions").
    probe : array_like, (N, N) or (P, N, N), complex
        The illumination, or its ``P`` incoherent modes; ``N >= 2``.
    scale : float, optional
        Positive field factor (the intensity scale ``s``: ``λ`` is in photons).
    detector : ptyfast.Detector, mapping or None, optional
        The detector (see :func:`detector_settings`); None is the ideal detector (exact
        Poisson counts, float32).
    seed : int, numpy.random.Generator or None, optional
        Noise seed (see :func:`resolve_seed`); record it to reproduce the data.
    first_index : int, optional
        Dataset-wide number of the first pattern, so chunks of a dataset equal one call.
    return_patches, return_stats : bool, optional
        Also return the object patches (before the probe) / the per-pattern statistics.
    out : numpy.ndarray, optional
        Writeable C-contiguous ``(M, N, N)`` buffer of the detector's dtype for the readings
        (returned); e.g. a chunk of a memory-mapped file.
    out_patches, out_stats : numpy.ndarray, optional
        Buffers for the patches (complex64 ``(M, N, N)``) and the statistics (float64
        ``(M, 5)``); giving one implies ``return_patches`` / ``return_stats``.

    Returns
    -------
    Acquired
        ``readings`` ``(M, N, N)`` in the detector's dtype; ``patches`` complex64
        ``(M, N, N)`` or None; ``stats``: a dict of float64 ``(M,)`` arrays named as
        :data:`ACQUIRE_STATS` (columns of one ``(M, 5)`` array), or None.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a shape is wrong, an array is empty or not finite, ``scale`` is not positive or
        would overflow a mode's float32 far field (``(scale·max|obj|·Σ|probe_k|)² <=
        float32.max / 2``, as :func:`simulate`), a detector setting is out of range, an output
        buffer does not match, the outputs would not fit in memory, or ``seed`` /
        ``first_index`` is out of range.

    Examples
    --------
    >>> obj = np.ones((64, 64), np.complex64)
    >>> r = acquire(obj, [[32, 32]], np.ones((8, 8)), detector={"poisson": False})
    >>> float(r.readings[0, 4, 4]), r.readings.dtype  # |64 / 8|**2 photons at zero frequency
    (64.0, dtype('float32'))
    """
    o = as_complex_image("obj", obj)
    p = as_positions("positions", positions)
    return _plan(o, probe, scale, detector)(
        p,
        seed=seed,
        first_index=first_index,
        return_patches=return_patches,
        return_stats=return_stats,
        out=out,
        out_patches=out_patches,
        out_stats=out_stats,
    )


class AcquirePlan:
    """The arguments of :func:`acquire` that stay fixed over a dataset (object, probe modes,
    scale, detector), validated and converted once, for a dataset made in many calls.

    ``plan(positions, seed=..., first_index=...)`` gives what ``acquire(obj, positions, probe,
    scale=..., detector=..., seed=..., first_index=...)`` gives, bit for bit, without checking
    the fixed arguments again (a finiteness pass over the whole object per call, which costs
    more than the kernel for large objects and small chunks). Make one with
    :func:`acquire_plan`. It keeps the arrays it validated: they must not change between
    calls (:class:`ptyfast.Experiment` holds read-only copies).
    """

    __slots__ = ("obj", "modes", "scale", "settings", "_det", "_pixels")

    def __init__(
        self,
        obj: np.ndarray,
        modes: np.ndarray,
        scale: np.float32,
        settings: dict[str, Any],
        core: tuple[dict[str, Any], np.ndarray | None],
    ) -> None:
        self.obj, self.modes, self.scale, self.settings = obj, modes, scale, settings
        self._det, self._pixels = core

    def __call__(
        self,
        positions: Any,
        *,
        seed: SeedLike = None,
        first_index: int = 0,
        return_patches: bool = False,
        return_stats: bool = False,
        out: np.ndarray | None = None,
        out_patches: np.ndarray | None = None,
        out_stats: np.ndarray | None = None,
    ) -> Acquired:
        """:func:`acquire` on ``positions`` with the plan's fixed arguments (same parameters,
        returns and errors)."""
        p = as_positions("positions", positions)
        o, modes = self.obj, self.modes
        m, n = p.shape[0], modes.shape[1]
        s = resolve_seed(seed)
        fi = _positive_int("first_index", first_index, minimum=0)
        if fi + m > 2**64 - 1:
            raise ValueError(f"first_index must be <= 2**64 - 1 - {m}, got {fi}")
        want_patches = _flag("return_patches", return_patches) or out_patches is not None
        want_stats = _flag("return_stats", return_stats) or out_stats is not None
        dtype = np.dtype(self.settings["dtype"])
        inputs = (o, p, modes)
        shape = (m, n, n)
        nbytes = m * n * n * (dtype.itemsize + (8 if want_patches else 0))
        if out is None or (want_patches and out_patches is None):
            _fits_in_memory("positions", nbytes, f"{m} patterns of {n} x {n}")
        readings = (
            np.empty(shape, dtype) if out is None else _out_buffer("out", out, dtype, shape, inputs)
        )
        patches = None
        if want_patches:
            patches = (
                np.empty(shape, np.complex64)
                if out_patches is None
                else _out_buffer("out_patches", out_patches, np.complex64, shape, inputs)
            )
        stats = None
        if want_stats:
            st_shape = (m, len(ACQUIRE_STATS))
            stats = (
                np.empty(st_shape, np.float64)
                if out_stats is None
                else _out_buffer("out_stats", out_stats, np.float64, st_shape, inputs)
            )
        _core.acquire(
            o, p, modes, self.scale, s, fi, self._det, self._pixels, readings, patches, stats
        )
        return Acquired(readings, patches, _named_stats(stats))


def acquire_plan(obj: Any, probe: Any, *, scale: float = 1.0, detector: Any = None) -> AcquirePlan:
    """The fixed arguments of :func:`acquire`, validated once (:class:`AcquirePlan`); same
    meaning and errors as there.

    Examples
    --------
    >>> obj = np.ones((64, 64), np.complex64)
    >>> plan = acquire_plan(obj, np.ones((8, 8)), detector={"poisson": False})
    >>> a = plan([[32, 32], [20, 20]], seed=1)
    >>> b = acquire(obj, [[32, 32], [20, 20]], np.ones((8, 8)), detector={"poisson": False}, seed=1)
    >>> bool((a.readings == b.readings).all())
    True
    """
    return _plan(as_complex_image("obj", obj), probe, scale, detector)


def _plan(o: np.ndarray, probe: Any, scale: Any, detector: Any) -> AcquirePlan:
    """:func:`acquire_plan` for an object already validated."""
    modes = _as_modes(probe)
    scale_value = _positive_float("scale", scale)
    # Each mode's far field must fit float32 (the rates would be inf or NaN otherwise).
    l1 = float(np.max(np.sum(np.abs(modes), axis=(1, 2), dtype=np.float64)))
    check_field_range(scale_value, _max_abs(o), l1, name="scale", value=scale)
    sc = np.float32(scale_value)
    settings = detector_settings(detector, modes.shape[1])
    return AcquirePlan(o, modes, sc, settings, _core_detector(settings))


def detect(
    expected: Any,
    *,
    detector: Any = None,
    seed: SeedLike = None,
    first_index: int = 0,
    return_stats: bool = False,
    out: np.ndarray | None = None,
    out_stats: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """The detector stage alone, on given expected photons.

    Parameters
    ----------
    expected : array_like, (M, N, N), real
        Expected photons per pixel reaching the detector (finite, >= 0; float64).
    detector, seed, first_index, return_stats, out, out_stats
        As in :func:`acquire`; pattern ``i`` draws as pattern ``first_index + i`` would there,
        so ``detect(λ)`` equals ``acquire``'s readings for the same ``λ``.

    Returns
    -------
    readings : numpy.ndarray, (M, N, N), the detector's dtype
    stats : dict of float64 (M,) arrays (:data:`ACQUIRE_STATS`), or None

    Raises
    ------
    TypeError, ValueError
        As in :func:`acquire`; ``expected`` negative, not finite or not ``(M, N, N)``.
    """
    want_stats = _flag("return_stats", return_stats) or out_stats is not None
    e = as_array("expected", expected, np.float64, ndim=3, allow_complex=False, nonnegative=True)
    if e.shape[1] != e.shape[2]:
        raise ValueError(f"expected must be (M, N, N), got {e.shape}")
    m, n = e.shape[0], e.shape[1]
    if want_stats and float(e.max()) > _F64_MAX / (n * n):
        raise ValueError(
            f"expected must be <= {_F64_MAX / (n * n):.4g} photons per pixel with stats "
            f"(a pattern's total must fit float64), got {float(e.max()):.4g}"
        )
    settings = detector_settings(detector, n)
    s = resolve_seed(seed)
    fi = _positive_int("first_index", first_index, minimum=0)
    if fi + m > 2**64 - 1:
        raise ValueError(f"first_index must be <= 2**64 - 1 - {m}, got {fi}")
    dtype = np.dtype(settings["dtype"])
    if out is None:
        _fits_in_memory("expected", e.size * dtype.itemsize, f"{m} patterns of {n} x {n}")
        readings = np.empty(e.shape, dtype)
    else:
        readings = _out_buffer("out", out, dtype, e.shape, (e,))
    stats = None
    if want_stats:
        st_shape = (m, len(ACQUIRE_STATS))
        stats = (
            np.empty(st_shape, np.float64)
            if out_stats is None
            else _out_buffer("out_stats", out_stats, np.float64, st_shape, (e,))
        )
    det, pixels = _core_detector(settings)
    _core.detect(e, s, fi, det, pixels, readings, stats)
    return readings, _named_stats(stats)

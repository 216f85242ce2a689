"""``Experiment`` and ``simulate``: an acquisition, described and then run.

An :class:`Experiment` ties the model's parts together: an object, a probe (one mode or ``P``
incoherent modes), a :class:`~ptyfast.scans.Scan`, a :class:`~ptyfast.Detector`, the dose
``photons`` and, optionally, a :class:`~ptyfast.Geometry`. It validates them together (a probe
larger than the object, a scan leaving it, a dose the float32 far field cannot hold, ...),
places the scan on the object (README "Conventions", placement) and computes the intensity
scale

    ``s = sqrt(photons / mean_i Σ_k Σ |P_k · patch_i|²)``

(PtychoPINN's definition, generalised to modes). The per-pattern energies come from the Rust
kernel (no FFT) mode by mode, are added in mode order in float64, and averaged by one NumPy
reduction over all patterns in index order: ``s`` does not depend on chunking or threads, and
with one mode it is ``RawData.from_simulation``'s ``s`` bit for bit. The pass keeps 8 bytes per
pattern (besides the positions' 16).

:func:`simulate` runs the acquisition pipeline (``ptyfast._kernels.acquire``: patch at the
true position → each mode → far field → incoherent sum ``λ = Σ_k A_k²`` → detector) straight
into the output, in one kernel call (in chunks, each at its ``first_index``, when a progress
bar or ``chunk_size`` asks for them): every random draw is keyed by ``(seed, stage,
pattern)``, so the result is bit-identical for any chunk size and thread count. The fixed
arguments (object, probe, scale, detector) are validated once per run
(``ptyfast._kernels.acquire_plan``), not once per chunk. :func:`simulate_to` does the same
into a file through :mod:`ptyfast.io`'s streaming writer, holding one chunk in memory, and
writes exactly the dataset :func:`simulate` returns.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import _kernels
from .._progress import Phases
from ..intensity import simulation_scale
from . import _args, objects, probes, provenance
from .dataset import Dataset
from .detector import Detector
from .geometry import Geometry
from .scans import Scan

__all__ = ["Experiment", "simulate", "simulate_to", "CHUNK_BYTES"]

#: Default chunk of :func:`simulate_to` (the memory it holds): about this many bytes of
#: readings (and patches) per ``acquire`` call. :func:`simulate` makes one call.
CHUNK_BYTES = 1 << 24
#: Pixels (patterns × N²) per piece of the intensity pass (its progress steps).
_PASS_PIXELS = 1 << 24
#: Relative tolerance of the unit total intensity of a stack of probe modes.
_NORM_TOL = 1e-4
_F32_HALF_MAX = float(np.finfo(np.float32).max) / 2
#: Largest integer up to which every integer is exact in float32.
_F32_EXACT_INT = 1 << 24


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _is_recipe(v: Any, fmt: str) -> bool:
    return isinstance(v, dict) and v.get("format") == fmt


def check_layout(
    object_shape: tuple[int, int],
    modes: np.ndarray,
    scan: Scan,
    detector: Detector,
    geometry: Geometry | None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """The checks of :class:`Experiment` that need the object's shape but not its values: the
    probe ``modes`` (``(P, N, N)`` complex64, as ``_kernels._as_modes`` gives them) against
    the object, their normalisation, the geometry and the detector against ``N``, and every
    scan position inside the object. Campaigns run it on each experiment before simulating any
    (:meth:`ptyfast.Campaign.check`).

    Returns
    -------
    detector_args, mask, nominal, true
        The detector's kernel arguments and valid-pixel mask for ``N``, and the scan's
        nominal and true absolute positions.

    Raises
    ------
    ValueError
        Each as :class:`Experiment` raises it.
    """
    p, n = modes.shape[0], modes.shape[1]
    h, w = object_shape
    if n > min(h, w):
        raise ValueError(
            f"probe must not be larger than the object: N = {n} > the object's smaller "
            f"side {min(h, w)} (object {h} x {w})"
        )
    # The kernels form the sampled coordinate `c + x` in float32 (README "Conventions"), so
    # it must stay an exact integer for integer positions: up to `side + N//2 - 1 <= 2**24`.
    # Beyond, a position would silently sample the neighbouring pixel.
    if max(h, w) + n // 2 - 1 > _F32_EXACT_INT:
        raise ValueError(
            f"object must have sides of at most 2**24 - N//2 + 1 = "
            f"{_F32_EXACT_INT - n // 2 + 1} pixels for N = {n} (patches are sampled in float32 "
            f"coordinates, exact for integers only up to 2**24), got {h} x {w}"
        )
    power = float(np.sum(np.abs(modes.astype(np.complex128)) ** 2))
    if not power > 0:
        raise ValueError("probe must not be zero everywhere, got total intensity 0")
    if p > 1 and abs(power - 1.0) > _NORM_TOL:
        raise ValueError(
            f"probe modes must have unit total intensity Σ_k Σ |P_k|² = 1 (within "
            f"{_NORM_TOL:g}; ptyfast.probes.normalize), got {power:.6g} for {p} modes"
        )
    if geometry is not None and geometry.N != n:
        raise ValueError(f"geometry.N must equal the probe size N = {n}, got {geometry.N}")
    if (
        geometry is not None
        and detector.pixel_m is not None
        and not math.isclose(detector.pixel_m, geometry.detector_pixel_m, rel_tol=1e-9)
    ):
        raise ValueError(
            f"detector.pixel_m must equal geometry.detector_pixel_m = "
            f"{geometry.detector_pixel_m:g} m, got {detector.pixel_m:g} m"
        )
    try:
        args = detector.kernel_args(n)
        _kernels.detector_settings(args, n)
        mask = np.array(detector.mask(n))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"detector: {exc}") from None
    nominal, true = scan.placed((h, w), n)
    return args, mask, nominal, true


class Experiment:
    """One ptychography acquisition: object, probe, scan, detector, dose and geometry.

    Immutable once built: its positions, mask and intensity scale are derived from its parts,
    so setting an attribute afterwards is an ``AttributeError`` (build a new experiment).

    Parameters
    ----------
    object : array_like (H, W) or dict
        The object (complex transmission; real input is converted to complex64), or an object
        recipe (:func:`ptyfast.objects.recipe`), built here and recorded as a recipe in the
        provenance (an array is recorded as itself, see :mod:`ptyfast.model.provenance`).
    probe : array_like (N, N) or (P, N, N), or dict
        The illumination or its ``P`` incoherent modes (complex64), or a probe recipe
        (:func:`ptyfast.probes.recipe`). A single mode may have any norm (the dose is set by
        ``photons``); a stack of ``P > 1`` modes must have unit total intensity
        ``Σ_k Σ |P_k|² = 1`` (as ``ptyfast.probes`` builds them).
    scan : ptyfast.scans.Scan
        Scan positions relative to the scan centre; placed so that the centre lands on the
        object's centre (:meth:`ptyfast.scans.Scan.placed`). The simulation uses the true
        positions.
    detector : ptyfast.Detector, optional
        The detector; default ``Detector()`` (ideal: exact Poisson counts, float32).
    photons : float, optional
        Mean number of photons per pattern reaching the detector (before QE), ``> 0``.
        Default 1e9 (PtychoPINN's default).
    geometry : ptyfast.Geometry, optional
        Physical geometry; its ``N`` must be the probe's.
    progress : bool, optional, keyword-only
        Show a progress bar per set-up phase: building the object and the probe (from
        recipes) and the intensity pass over every position (:mod:`ptyfast._progress`).

    Attributes
    ----------
    object : numpy.ndarray, complex64, (H, W), read-only
    probe : numpy.ndarray, complex64, (P, N, N), read-only
    scan : Scan
    detector : Detector
    photons : float
    geometry : Geometry or None
    object_recipe, probe_recipe : dict or None
        The recipes the object / probe were built from.
    positions_nominal, positions_true : numpy.ndarray, float64, (M, 2), read-only
        Absolute positions ``(x, y)`` in object pixels.
    mask : numpy.ndarray, bool, (N, N), read-only
        The detector's valid pixels.
    intensity_scale : float
        ``s`` (a float32 value; module docstring).

    Raises
    ------
    TypeError
        A part of the wrong type (e.g. ``scan`` not a ``Scan``).
    ValueError
        Naming the parameter: a probe larger than the object (``probe``), an object with a
        side beyond ``2**24 − N//2 + 1`` pixels (``object``: its float32 sampling coordinates
        would no longer be exact), a scan leaving the object (``scan``), ``photons`` not
        positive and finite or so large that the far field overflows float32 (with the
        largest dose that fits), a mode stack not normalised (``probe``), ``geometry.N``
        unlike the probe's ``N``, a detector setting that does not fit ``N × N`` patterns
        (``detector``), an object that is zero under every position.

    Examples
    --------
    >>> import ptyfast
    >>> from ptyfast import objects, probes, scans
    >>> e = ptyfast.Experiment(objects.dead_leaves(96, seed=1), probes.gaussian(32, 5.0),
    ...                        scans.fermat_spiral(50, 3.0), ptyfast.Detector(), 1e6)
    >>> e.n_patterns, e.N, e.n_modes
    (50, 32, 1)
    """

    __slots__ = (
        "object",
        "probe",
        "scan",
        "detector",
        "photons",
        "geometry",
        "object_recipe",
        "probe_recipe",
        "positions_nominal",
        "positions_true",
        "mask",
        "intensity_scale",
        "_detector_args",
        "_provenance_cache",
    )

    def __init__(
        self,
        object: Any,  # noqa: A002 - the documented parameter name
        probe: Any,
        scan: Scan,
        detector: Detector | None = None,
        photons: float = 1e9,
        geometry: Geometry | None = None,
        *,
        progress: bool = False,
    ) -> None:
        # Cheap checks first (types, scalars), then the arrays, then the joint checks.
        _check_flags(False, progress)
        phases = Phases(progress)
        if not isinstance(scan, Scan):
            raise TypeError(f"scan must be a ptyfast.scans.Scan, got {type(scan).__name__}")
        if detector is None:
            detector = Detector()
        if not isinstance(detector, Detector):
            raise TypeError(
                f"detector must be a ptyfast.Detector or None, got {type(detector).__name__}"
            )
        if geometry is not None and not isinstance(geometry, Geometry):
            raise TypeError(
                f"geometry must be a ptyfast.Geometry or None, got {type(geometry).__name__}"
            )
        self.photons = _args.real("photons", photons, positive=True)
        # The experiment's part of every provenance record, by embedding choice (computed by
        # ptyfast.model.provenance on first use; the experiment is immutable).
        self._provenance_cache: dict[Any, Any] = {}
        self.scan = scan
        self.detector = detector
        self.geometry = geometry

        self.object_recipe: dict[str, Any] | None = None
        if isinstance(object, dict):
            if not _is_recipe(object, objects.RECIPE_FORMAT):
                raise ValueError(
                    f"object must be an array or an object recipe (format "
                    f"{objects.RECIPE_FORMAT!r}, ptyfast.objects.recipe), got a dict with "
                    f"format {object.get('format')!r}"
                )
            with phases("object", 1) as bar:
                built = objects.build(object)
                bar.update(1)
            self.object_recipe = copy.deepcopy(object)
        else:
            built = object
        obj = _kernels.as_complex_image("object", built)
        if obj is built or np.may_share_memory(obj, built):
            obj = obj.copy()
        self.object = _readonly(obj)

        self.probe_recipe: dict[str, Any] | None = None
        if isinstance(probe, dict):
            if not _is_recipe(probe, probes.RECIPE_FORMAT):
                raise ValueError(
                    f"probe must be an array or a probe recipe (format {probes.RECIPE_FORMAT!r}"
                    f", ptyfast.probes.recipe), got a dict with format {probe.get('format')!r}"
                )
            with phases("probe", 1) as bar:
                pbuilt = probes.build(probe)
                bar.update(1)
            self.probe_recipe = copy.deepcopy(probe)
        else:
            pbuilt = probe
        modes = _kernels._as_modes(pbuilt)
        if modes is pbuilt or np.may_share_memory(modes, pbuilt):
            modes = modes.copy()
        self.probe = _readonly(modes)
        self._detector_args, mask, nominal, true = check_layout(
            self.object.shape, modes, scan, detector, geometry
        )
        self.mask = _readonly(mask)
        self.positions_nominal = _readonly(nominal)
        self.positions_true = _readonly(true)
        self.intensity_scale = self._scale(phases)

    def __setattr__(self, name: str, value: Any) -> None:
        # Immutable once built (intensity_scale is set last): the positions, mask, detector
        # arguments and intensity scale were derived from the parts, and a part replaced
        # afterwards (e.photons = ...) would be recorded beside data made from the old one.
        if hasattr(self, "intensity_scale"):
            raise AttributeError(
                f"Experiment is immutable: {name} cannot be set once it is built (what it "
                f"derived from its parts would not follow); build a new Experiment"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Experiment is immutable: {name} cannot be deleted")

    def __setstate__(self, state: Any) -> None:
        # pickle and copy restore the slots one by one (Dask sends experiments to workers).
        for name, value in (state[1] if isinstance(state, tuple) else state).items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ derived facts

    def _energies(self, phases: Phases) -> np.ndarray:
        """``Σ_k Σ |P_k · patch_i|²`` per pattern, modes added in order, in pieces (each
        pattern's energy is computed alone, so the pieces do not change a bit)."""
        m, n = self.n_patterns, self.N
        step = max(1, _PASS_PIXELS // (n * n))
        energies = np.empty(m, np.float64)
        with phases("intensity", m, "pattern") as bar:
            for a in range(0, m, step):
                b = min(m, a + step)
                pos = self.positions_true[a:b]
                e = _kernels.illuminated_energy(self.object, pos, self.probe[0])
                for k in range(1, self.n_modes):
                    e += _kernels.illuminated_energy(self.object, pos, self.probe[k])
                energies[a:b] = e
                bar.update(b - a)
        return energies

    def _scale(self, phases: Phases) -> float:
        energies = self._energies(phases)
        if not float(np.max(energies)) > 0:
            raise ValueError(
                "object must not be zero under every scan position (the illuminated energy is "
                "0, so the intensity scale for photons is undefined)"
            )
        # |FFT2(s·P_k·patch)| <= s·max|patch|·Σ|P_k|; λ sums P such squares in float64 and
        # float32 readings hold it, so P·(s·max|object|·max_k Σ|P_k|)² must fit float32.
        mean = float(np.mean(energies))
        l1 = float(np.max(np.sum(np.abs(self.probe), axis=(1, 2), dtype=np.float64)))
        per_photon = self.n_modes * (float(np.max(np.abs(self.object))) * l1) ** 2 / mean
        if not self.photons * per_photon <= _F32_HALF_MAX:
            raise ValueError(
                f"photons = {self.photons!r} would overflow the float32 far field: "
                f"P·(s·max|object|·Σ|probe|)² = {self.photons * per_photon:.3g} exceeds "
                f"float32.max / 2 = {_F32_HALF_MAX:.3g}; at most photons = "
                f"{_F32_HALF_MAX / per_photon:.3g} fits this object and probe"
            )
        s64 = math.sqrt(self.photons / mean)
        if not s64 <= float(np.finfo(np.float32).max):
            raise ValueError(
                f"photons = {self.photons!r} gives an intensity scale s = {s64:.4g} beyond "
                f"float32 (the illuminated energy per pattern, {mean:.4g} on average, is too "
                f"small for so many photons)"
            )
        s = simulation_scale(energies, self.photons)
        if not s >= np.finfo(np.float32).tiny:
            raise ValueError(
                f"photons = {self.photons!r} gives an intensity scale s = {s64:.4g} below the "
                f"float32 range of normal numbers"
            )
        return float(s)

    @property
    def N(self) -> int:  # noqa: N802 - the field's usual name
        """Pattern (probe) size ``N``."""
        return int(self.probe.shape[1])

    @property
    def n_modes(self) -> int:
        """Number of incoherent probe modes ``P``."""
        return int(self.probe.shape[0])

    @property
    def n_patterns(self) -> int:
        """``M``, the number of scan positions (patterns)."""
        return int(self.positions_true.shape[0])

    def __repr__(self) -> str:
        h, w = self.object.shape
        obj = self.object_recipe["family"] if self.object_recipe else "array"
        pr = self.probe_recipe["builder"] if self.probe_recipe else "array"
        return (
            f"Experiment(object={obj} {h}x{w}, probe={pr} {self.n_modes}x{self.N}x{self.N}, "
            f"scan={self.scan!r}, detector={self.detector.name}, photons={self.photons:g}, "
            f"s={self.intensity_scale:.6g}, geometry={'yes' if self.geometry else 'no'})"
        )


# --------------------------------------------------------------------------- simulation


def _chunk_size(e: Experiment, chunk_size: Any, patches: bool) -> int:
    if chunk_size is None:
        per = e.N * e.N * (np.dtype(e.detector.dtype).itemsize + (8 if patches else 0))
        return max(1, min(e.n_patterns, CHUNK_BYTES // per))
    return min(_args.integer("chunk_size", chunk_size, minimum=1), e.n_patterns)


#: A lower bound of the kernel's cost per pattern pixel, FFT stage, probe mode and thread
#: (seconds per ``N² log2 N``; about 2.3e-9 measured on a 2-core x86-64 VM, AVX2): progress
#: chunks sized with it take at least :data:`_PROGRESS_SECONDS` on faster machines too.
_SECONDS_PER_PIXEL_LOG = 1e-9
#: Least work (seconds) per kernel call when a progress bar is shown.
_PROGRESS_SECONDS = 0.25


def _run_step(e: Experiment, chunk_size: Any, patches: bool, progress: bool) -> int:
    """Patterns per kernel call of an in-memory simulation: the whole output in one call
    unless ``chunk_size`` says otherwise or a progress bar is shown (then pieces of about
    :data:`_PROGRESS_SECONDS` of work or more). Each call validates its positions and outputs
    and pays rayon's tail imbalance, so pieces cost time; the bits do not depend on them."""
    if chunk_size is not None or not progress:
        return e.n_patterns if chunk_size is None else _chunk_size(e, chunk_size, patches)
    n = e.N
    per = _SECONDS_PER_PIXEL_LOG * e.n_modes * n * n * max(1.0, math.log2(n))
    want = math.ceil(_PROGRESS_SECONDS * _kernels.num_threads() / per)
    return max(1, min(e.n_patterns, want))


def _check_memory(nbytes: int, what: str) -> None:
    """Refuse an in-memory dataset above the available memory (MemAvailable, cgroup,
    ``ulimit -v``: :func:`ptyfast._kernels.require_memory`), pointing to ``simulate_to``."""
    try:
        _kernels.require_memory(f"{what}", nbytes)
    except ValueError as exc:
        raise ValueError(
            f"experiment must describe a dataset that fits in memory, got {exc}: use "
            "ptyfast.model.experiment.simulate_to (streams to a file)"
        ) from None


def _check_flags(patches: Any, progress: Any) -> None:
    for name, v in (("patches", patches), ("progress", progress)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")


def _plan(e: Experiment) -> _kernels.AcquirePlan:
    """The experiment's fixed kernel arguments (object, probe, scale, detector), validated once
    for all the chunks of a run."""
    return _kernels.acquire_plan(
        e.object, e.probe, scale=e.intensity_scale, detector=e._detector_args
    )


def _acquire(
    e: Experiment,
    seed: int,
    start: int,
    stop: int,
    out: np.ndarray,
    out_patches: np.ndarray | None,
    plan: _kernels.AcquirePlan | None = None,
) -> None:
    """Patterns ``start:stop`` into ``out`` (``plan``: the run's :func:`_plan`, else made)."""
    (plan or _plan(e))(
        e.positions_true[start:stop],
        seed=seed,
        first_index=start,
        out=out,
        out_patches=out_patches,
    )


def _run(
    e: Experiment,
    seed: int,
    patches: bool,
    progress: bool,
    chunk_size: Any,
    record: dict[str, Any],
    out: Any = None,
    out_patches: Any = None,
) -> Dataset:
    """The simulation behind :func:`simulate`, :func:`ptyfast.replay` and campaigns."""
    m, n = e.n_patterns, e.N
    dtype = np.dtype(e.detector.dtype)
    step = _run_step(e, chunk_size, patches, progress)
    if out_patches is not None and not patches:
        raise ValueError("out_patches must be None unless patches=True, got an array")
    inputs = (e.object, e.probe, e.positions_true)
    fresh = (dtype.itemsize if out is None else 0) + (8 if patches and out_patches is None else 0)
    _check_memory(m * n * n * fresh, f"{m} patterns of {n} x {n}")
    readings = (
        np.empty((m, n, n), dtype)
        if out is None
        else _kernels._out_buffer("out", out, dtype, (m, n, n), inputs)
    )
    pat = None
    if patches:
        pat = (
            np.empty((m, n, n), np.complex64)
            if out_patches is None
            else _kernels._out_buffer("out_patches", out_patches, np.complex64, (m, n, n), inputs)
        )
        if np.may_share_memory(readings, pat):
            raise ValueError("out_patches must not share memory with out, got an overlap")
    plan = _plan(e)
    with Phases(progress)("simulate", m, "pattern") as bar:
        for a in range(0, m, step):
            b = min(m, a + step)
            _acquire(e, seed, a, b, readings[a:b], None if pat is None else pat[a:b], plan)
            bar.update(b - a)
    return Dataset(diffraction=readings, patches=pat, **_described(e, record))


def simulate(
    experiment: Experiment,
    *,
    seed: Any,
    patches: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    embed_max_bytes: int = provenance.EMBED_MAX_BYTES,
    out: np.ndarray | None = None,
    out_patches: np.ndarray | None = None,
) -> Dataset:
    """Simulate an experiment's dataset in memory.

    Parameters
    ----------
    experiment : Experiment
    seed : int, numpy.random.Generator or None
        The noise seed (every detector stream is keyed by it); ``None`` draws fresh OS
        entropy; a ``Generator`` gives one draw (advancing it, except when the call fails:
        then it is left as it was). The integer used is recorded in ``dataset.provenance``.
    patches : bool, optional
        Also keep the object patches at the true positions (before the probe).
    progress : bool, optional
        Show a tqdm progress bar.
    chunk_size : int, optional
        Patterns per kernel call (default: all of them in one call, or pieces of about a
        quarter of a second of work when ``progress`` shows a bar); the result does not
        depend on it.
    embed_max_bytes : int, optional
        Object/probe arrays (not recipes) up to this size are embedded in the provenance,
        larger ones referenced by SHA-256 (:mod:`ptyfast.model.provenance`).
    out, out_patches : numpy.ndarray, optional
        Writeable C-contiguous ``(M, N, N)`` buffers (the detector's dtype; complex64 for
        the patches, with ``patches=True``) that receive the readings / patches instead of
        fresh memory, for callers that simulate repeatedly into the same buffers (the first
        touch of fresh memory is slow on virtual machines). The dataset then holds them.

    Returns
    -------
    Dataset
        ``diffraction`` ``(M, N, N)``: the detector's readings in its dtype (zero frequency at
        ``[N//2, N//2]``); ``mask``; ``positions_nominal`` / ``positions_true`` (absolute,
        object pixels); ``probe`` ``(P, N, N)``; ``object``; ``patches`` or None;
        ``provenance``; ``geometry``; ``detector``; ``photons``; ``intensity_scale``. The
        probe, object, positions and mask are the experiment's read-only arrays (shared).

    Raises
    ------
    TypeError, ValueError
        A bad seed, flag or chunk size, or a dataset larger than this machine's memory (use
        :func:`simulate_to`); all before any pattern is simulated.

    Examples
    --------
    >>> import ptyfast
    >>> from ptyfast import probes, scans
    >>> import numpy as np
    >>> e = ptyfast.Experiment(np.ones((64, 64)), probes.disk(16), scans.raster(4, 4, 5.0),
    ...                        ptyfast.Detector(), photons=1e4)
    >>> ds = ptyfast.simulate(e, seed=1)
    >>> ds.diffraction.shape, ds.diffraction.dtype, ds.provenance["simulation"]["seed"]
    ((16, 16, 16), dtype('float32'), 1)
    """
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be a ptyfast.Experiment, got {type(experiment).__name__}")
    _check_flags(patches, progress)
    embed = _args.integer("embed_max_bytes", embed_max_bytes, minimum=0)
    _chunk_size(experiment, chunk_size, bool(patches))
    with _args.seed_kept_on_error(seed):
        s = _args.seed_int(seed)
        record = provenance.make(experiment, seed=s, patches=bool(patches), embed_max_bytes=embed)
        return _run(
            experiment, s, bool(patches), bool(progress), chunk_size, record, out, out_patches
        )


def simulate_to(
    experiment: Experiment,
    path: str | os.PathLike[str],
    *,
    seed: Any,
    patches: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    format: str | None = None,  # noqa: A002 - io's keyword
    compress: bool = False,
    overwrite: bool = False,
    embed_max_bytes: int = provenance.EMBED_MAX_BYTES,
    **options: Any,
) -> list[Path]:
    """Simulate an experiment straight into a file, one chunk in memory at a time.

    The file holds exactly what :func:`simulate` would return (``ptyfast.open(path)`` gives
    the same readings, bit for bit, for any ``chunk_size``) and appears atomically: nothing is
    left at ``path`` if the simulation fails or is interrupted.

    Parameters
    ----------
    experiment : Experiment
    path : str or os.PathLike
        ``.npz``, ``.ptychodus.h5`` / ``.h5``, ``.cxi`` or ``.zarr`` (:func:`ptyfast.io.writer`).
    seed, patches, progress, chunk_size, embed_max_bytes
        As for :func:`simulate` (``chunk_size``: patterns per chunk written).
    format, compress, overwrite, **options
        As for :func:`ptyfast.io.writer`.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    TypeError, ValueError
        As :func:`simulate`, and the writer's errors (an existing target without
        ``overwrite``, a format that needs a geometry, ...), raised before any pattern is
        simulated; also an output larger than the free disk (uncompressed, with the NPZ
        writer's spool) or a run whose arrays exceed the available memory (the sizes
        ``ptyfast simulate --dry-run`` prints).
    ImportError
        The format's optional package is missing.
    """
    from .. import io

    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be a ptyfast.Experiment, got {type(experiment).__name__}")
    _check_flags(patches, progress)
    embed = _args.integer("embed_max_bytes", embed_max_bytes, minimum=0)
    with _args.seed_kept_on_error(seed):
        s = _args.seed_int(seed)
        record = provenance.make(experiment, seed=s, patches=bool(patches), embed_max_bytes=embed)
        return _run_to(
            experiment,
            path,
            s,
            bool(patches),
            bool(progress),
            chunk_size,
            record,
            io,
            format=format,
            compress=compress,
            overwrite=overwrite,
            **options,
        )


def _io_header(e: Experiment, record: dict[str, Any], patches: bool, io: Any) -> Any:
    """The ``ptyfast.io.Header`` of ``e``'s dataset (every writer's metadata, no patterns)."""
    return io.Header(
        n_patterns=e.n_patterns,
        dtype=np.dtype(e.detector.dtype),
        patches=patches,
        **_described(e, record),
    )


def _described(e: Experiment, record: dict[str, Any]) -> dict[str, Any]:
    """What a :class:`Dataset` and an ``io.Header`` of ``e``'s dataset both hold besides the
    patterns: mask, positions, probe, object, provenance ``record``, geometry, detector,
    photons and intensity scale."""
    return {
        "mask": e.mask,
        "positions_nominal": e.positions_nominal,
        "positions_true": e.positions_true,
        "probe": e.probe,
        "object": e.object,
        "provenance": record,
        "geometry": e.geometry,
        "detector": e.detector,
        "photons": e.photons,
        "intensity_scale": e.intensity_scale,
    }


def _check_resources(e: Experiment, w: Any, header: Any, step: int) -> None:
    """Refuse (``ValueError``) a run to writer ``w`` of ``header`` whose file cannot fit the
    free disk or whose arrays cannot fit the available memory, before anything is written:
    the sizes and the rules of ``ptyfast simulate --dry-run`` (``_dryrun.refuse_disk``)."""
    from .. import _dryrun

    m, n = e.n_patterns, e.N
    _dryrun.refuse_disk(
        [_dryrun.writer_output(w, header)],
        compress=w.compress,
        what=f"path {os.fspath(w.path)!r} ({m} patterns of {n}x{n}): the output needs",
        advice="simulate fewer patterns or write elsewhere",
    )
    peak = _dryrun.model_peak_memory(
        m=m,
        n=n,
        n_modes=e.n_modes,
        object_shape=e.object.shape,
        itemsize=np.dtype(e.detector.dtype).itemsize,
        chunk=step,
        patches=header.patches,
        fmt=w.format,
    )
    _kernels.require_memory(f"simulating {m} patterns of {n}x{n} in chunks of {step}", peak)


def _run_to(
    e: Experiment,
    path: str | os.PathLike[str],
    seed: int,
    patches: bool,
    progress: bool,
    chunk_size: Any,
    record: dict[str, Any],
    io: Any,
    **writer_args: Any,
) -> list[Path]:
    m, n = e.n_patterns, e.N
    dtype = np.dtype(e.detector.dtype)
    step = _chunk_size(e, chunk_size, patches)
    header = _io_header(e, record, patches, io)
    w = io.writer(path, header, **writer_args)
    _check_resources(e, w, header, step)
    buf = np.empty((step, n, n), dtype)
    pbuf = np.empty((step, n, n), np.complex64) if patches else None
    phases = Phases(progress)
    plan = _plan(e)
    w.__enter__()
    try:
        with phases("simulate+write", m, "pattern") as bar:
            for a in range(0, m, step):
                b = min(m, a + step)
                out, out_p = buf[: b - a], None if pbuf is None else pbuf[: b - a]
                _acquire(e, seed, a, b, out, out_p, plan)
                w.write(a, out, out_p)
                bar.update(b - a)
    except BaseException:
        w.__exit__(*sys.exc_info())
        raise
    # Closing is part of writing (the archive's directory, fsync, the atomic rename).
    with phases("finish", 1) as bar:
        w.__exit__(None, None, None)
        bar.update(1)
    return list(w.paths)

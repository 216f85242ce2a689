"""Preview figures: one page that shows what a simulation made (``--preview``).

:func:`preview` writes the figure (PNG, PDF or SVG, by the file's extension, through the
crash-safe writer :func:`ptyfast._atomic.atomic_output`); :func:`figure` returns it. Both
take a :class:`~ptyfast.Dataset` (``ptyfast.simulate``, ``ptyfast.open``), a
:class:`~ptyfast.Experiment` and its noise seed (the first patterns are simulated for the
figure: the same bits as the dataset's), or a :class:`PreviewData` (what ``ptyfast
simulate``'s PtychoPINN path keeps while it streams). The page, four panels wide:

* a title: the run's name (the recipe's, or PtychoPINN's nongrid path), the number of patterns
  ``M`` and their size ``N``, the probe modes, the photons per pattern, the noise seed, the
  detector, the object, the intensity scale ``s`` and the geometry;
* the object's amplitude ``|O|`` and phase ``arg O`` (radians);
* the scan on the object: nominal positions (open circles) and true ones (dots), each joined
  to its nominal one;
* the detector's pixel map: valid pixels, module gaps, the beamstop, dead and hot pixels
  (:meth:`ptyfast.Detector.pixel_map`), with their counts;
* every probe mode's amplitude and phase with its share of the power; the amplitude is
  ``s·|P_k|`` in √(photons per pixel), so that ``(s·|P_k|)²`` is the mode's photons per
  pixel through a transmission of 1;
* the first patterns as detected photon counts per pixel (the detector's
  :meth:`~ptyfast.Detector.readings_to_photons`; for PtychoPINN's path the counts
  ``(s·diff3d)²``) on a shared logarithmic scale: pixels with no photon in white, masked pixels
  in grey;
* the first pattern as read: the raw readings in the detector's unit and dtype (counts or ADU:
  gaps read 0, hot pixels saturate), or, for PtychoPINN's path, as stored (``diff3d``).

Axes are in pixels, or in µm in the object plane when the dataset has a
:class:`~ptyfast.Geometry` (object pixel ``λz/(NΔ)``); detector axes are in detector pixels.
Positions follow the README's conventions (``x`` = column, ``y`` = row, origin at the centre
of pixel ``[0, 0]``, ``y`` downwards); probe axes are centred on the scan point (patch pixel
``N//2``).

matplotlib is needed (``pip install 'ptyfast[plot]'``) and imported only when a figure is
drawn; the figure is built without pyplot (no global state, no backend switch). Drawing
never changes the data.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _kernels

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .model.dataset import Dataset
    from .model.experiment import Experiment
    from .model.geometry import Geometry

__all__ = ["FORMATS", "PreviewData", "figure", "pixel_map_rgb", "preview", "preview_format"]

#: File formats of a preview, by extension.
FORMATS = ("png", "pdf", "svg")
#: At most this many positions are drawn (every k-th beyond it).
MAX_POSITIONS = 3000
_MASKED = 16  # a pixel marked invalid without a detector model (a Dataset's mask only)
_COLS = 4


def preview_format(path: str | os.PathLike[str]) -> str:
    """The preview format of ``path`` (``"png"``, ``"pdf"`` or ``"svg"``), from its extension.

    Cheap and matplotlib-free: call it before any work.

    Raises
    ------
    ValueError
        Any other extension (the message names the path and the formats).
    """
    ext = Path(os.fspath(path)).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(
            f"preview {os.fspath(path)!r}: the format follows the extension, expected "
            + ", ".join(f".{f}" for f in FORMATS[:-1])
            + f" or .{FORMATS[-1]}, got {'.' + ext if ext else 'none'}"
        )
    return ext


@dataclass(frozen=True, eq=False)
class PreviewData:
    """What a preview shows (built by :meth:`from_dataset`, :meth:`from_experiment`, or the
    command line's PtychoPINN path).

    Attributes
    ----------
    object : numpy.ndarray, complex, (H, W)
    probe : numpy.ndarray, complex, (P, N, N)
    positions_nominal, positions_true : numpy.ndarray, float64, (M, 2)
        Absolute positions ``(x, y)`` in object pixels.
    photons_patterns : numpy.ndarray, float64, (K, N, N)
        The first ``K >= 1`` patterns as detected photons per pixel; NaN where masked.
    readings : numpy.ndarray, (N, N)
        Pattern 0 as read (or as stored), any real dtype.
    readings_title, readings_unit : str
        Its panel title and colour-bar label.
    pixel_map : numpy.ndarray, uint8, (N, N)
        Pixel codes (:data:`ptyfast.model.detector.PIXEL_CODES`; 16: masked, no model).
    intensity_scale, photons : float
        ``s`` and the mean photons per pattern.
    seed : int or None
        The noise seed.
    name : str
        The run's name (title).
    detector : str
        The detector, in words (title).
    object_name : str
        The object, in words (title).
    geometry : ptyfast.Geometry or None
    """

    object: np.ndarray
    probe: np.ndarray
    positions_nominal: np.ndarray
    positions_true: np.ndarray
    photons_patterns: np.ndarray
    readings: np.ndarray
    readings_title: str
    readings_unit: str
    pixel_map: np.ndarray
    intensity_scale: float
    photons: float
    seed: int | None
    name: str
    detector: str
    object_name: str = "array"
    geometry: Geometry | None = None

    def __post_init__(self) -> None:
        pr = np.asarray(self.probe)
        if pr.ndim == 2:
            object.__setattr__(self, "probe", pr[None])
        p = np.asarray(self.probe)
        if p.ndim != 3 or p.shape[1] != p.shape[2]:
            raise ValueError(f"probe must be (P, N, N) or (N, N), got {p.shape}")
        n = p.shape[1]
        for name in ("positions_nominal", "positions_true"):
            a = np.asarray(getattr(self, name))
            if a.ndim != 2 or a.shape[1] != 2:
                raise ValueError(f"{name} must be (M, 2), got {a.shape}")
        ph = np.asarray(self.photons_patterns)
        if ph.ndim != 3 or ph.shape[1:] != (n, n) or ph.shape[0] < 1:
            raise ValueError(f"photons_patterns must be (K, {n}, {n}), got {ph.shape}")
        for name in ("readings", "pixel_map"):
            if np.asarray(getattr(self, name)).shape != (n, n):
                raise ValueError(f"{name} must be ({n}, {n}), got {np.shape(getattr(self, name))}")
        if np.asarray(self.object).ndim != 2:
            raise ValueError(f"object must be (H, W), got {np.shape(self.object)}")

    @property
    def n_patterns(self) -> int:
        """``M``, the number of scan positions."""
        return int(np.asarray(self.positions_true).shape[0])

    @property
    def N(self) -> int:  # noqa: N802 - the field's usual name
        """Pattern size ``N``."""
        return int(np.asarray(self.probe).shape[1])

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, *, n_patterns: int = 3, name: str | None = None
    ) -> PreviewData:
        """The preview of a :class:`~ptyfast.Dataset` (its first ``n_patterns`` patterns;
        ``name`` in the title, as for :func:`preview`)."""
        from .model.dataset import Dataset

        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a ptyfast.Dataset, got {type(dataset).__name__}")
        k = min(_count("n_patterns", n_patterns), dataset.n_patterns)
        det = dataset.detector
        first = dataset.diffraction[:k]
        if hasattr(det, "readings_to_photons"):
            photons = det.readings_to_photons(first, masked_value=np.nan)
            codes = np.array(det.pixel_map(dataset.N))
        else:  # no detector model: the readings are photon counts
            photons = first.astype(np.float64)
            codes = np.where(dataset.mask, 0, _MASKED).astype(np.uint8)
            photons[:, ~dataset.mask] = np.nan
        prov = dataset.provenance or {}
        seed = (prov.get("simulation") or {}).get("seed")
        return cls(
            object=dataset.object,
            probe=dataset.probe,
            positions_nominal=dataset.positions_nominal,
            positions_true=dataset.positions_true,
            photons_patterns=photons,
            readings=dataset.diffraction[0],
            readings_title="pattern 0 as read",
            readings_unit=_reading_unit(det, dataset.diffraction.dtype),
            pixel_map=codes,
            intensity_scale=float(dataset.intensity_scale),
            photons=float(dataset.photons),
            seed=None if seed is None else int(seed),
            name=name if name is not None else _name_from_provenance(prov),
            detector=_detector_words(det, dataset.diffraction.dtype),
            object_name=_object_words(prov),
            geometry=dataset.geometry,
        )

    @classmethod
    def from_experiment(
        cls,
        experiment: Experiment,
        seed: Any,
        *,
        n_patterns: int = 3,
        name: str | None = None,
    ) -> PreviewData:
        """The preview of ``simulate(experiment, seed=seed)`` without simulating all of it:
        its first ``n_patterns`` patterns are simulated here (the same bits as the dataset's,
        as every draw is keyed by pattern); ``name`` in the title, as for :func:`preview`."""
        from .model import _args
        from .model.experiment import Experiment

        if not isinstance(experiment, Experiment):
            raise TypeError(
                f"experiment must be a ptyfast.Experiment, got {type(experiment).__name__}"
            )
        e = experiment
        s = _args.seed_int(seed)
        k = min(_count("n_patterns", n_patterns), e.n_patterns)
        readings = _kernels.acquire(
            e.object,
            e.positions_true[:k],
            e.probe,
            scale=e.intensity_scale,
            detector=e._detector_args,
            seed=s,
        ).readings
        obj = e.object_recipe["family"] if e.object_recipe else "array"
        return cls(
            object=e.object,
            probe=e.probe,
            positions_nominal=e.positions_nominal,
            positions_true=e.positions_true,
            photons_patterns=e.detector.readings_to_photons(readings, masked_value=np.nan),
            readings=readings[0],
            readings_title="pattern 0 as read",
            readings_unit=_reading_unit(e.detector, readings.dtype),
            pixel_map=np.array(e.detector.pixel_map(e.N)),
            intensity_scale=float(e.intensity_scale),
            photons=float(e.photons),
            seed=s,
            name=name if name is not None else "experiment",
            detector=_detector_words(e.detector, readings.dtype),
            object_name=obj,
            geometry=e.geometry,
        )


# --------------------------------------------------------------------------- words


def _count(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


def _reading_unit(det: Any, dtype: Any) -> str:
    counts = det is None or (getattr(det, "gain", 1.0) == 1.0 and getattr(det, "offset", 0.0) == 0)
    return f"reading ({'counts' if counts else 'ADU'}, {np.dtype(dtype).name})"


def _detector_words(det: Any, dtype: Any) -> str:
    name = getattr(det, "name", None) or ("ideal" if det is None else "detector")
    return f"{name} ({np.dtype(dtype).name})"


def _name_from_provenance(prov: dict[str, Any]) -> str:
    c = prov.get("campaign")
    if isinstance(c, dict) and "name" in c:
        return f"campaign {c['name']!r} #{c.get('index', '?')}"
    return "experiment"


def _object_words(prov: dict[str, Any]) -> str:
    rec = ((prov.get("experiment") or {}).get("object") or {}).get("recipe")
    if isinstance(rec, dict) and "family" in rec:
        return str(rec["family"])
    return "array"


def _num(v: float, digits: int = 3) -> str:
    """``1e+06`` → ``1e6``; ``45900.0`` → ``4.59e4`` (``digits`` significant)."""
    t = f"{v:.{digits}g}"
    return t.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _si(v: float, unit: str) -> str:
    """``8000 eV`` → ``8 keV``; ``2.0 m``; ``7.5e-05 m`` → ``75 µm``."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g} {unit}"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(v) >= factor:
            return f"{v / factor:.4g} {prefix}{unit}"
    return f"{v / 1e-9:.4g} n{unit}"


# --------------------------------------------------------------------------- drawing


def figure(
    source: Dataset | Experiment | PreviewData,
    *,
    seed: Any = None,
    n_patterns: int = 3,
    name: str | None = None,
) -> Figure:
    """The preview figure of a dataset, an experiment (with its noise ``seed``) or a
    :class:`PreviewData` (module docstring: what it shows).

    Parameters
    ----------
    source : Dataset, Experiment or PreviewData
    seed : int, numpy.random.Generator or None
        The noise seed, for an ``Experiment`` only (its first patterns are simulated).
    n_patterns : int
        How many patterns are shown as photon counts (at most the dataset's).
    name : str, optional
        The run's name in the title (default: from the provenance, else ``"experiment"``).

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (``fig.savefig(...)`` works; in a notebook, display ``fig``).

    Raises
    ------
    TypeError, ValueError
        A source of another type, a seed given with a ``Dataset``, a bad ``n_patterns``.
    ImportError
        matplotlib is not installed (``pip install 'ptyfast[plot]'``).
    """
    data = _data(source, seed=seed, n_patterns=n_patterns, name=name)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "a preview needs matplotlib, which is not installed: pip install 'ptyfast[plot]'"
        ) from None
    return _draw(Figure, data)


def preview(
    source: Dataset | Experiment | PreviewData,
    path: str | os.PathLike[str],
    *,
    seed: Any = None,
    n_patterns: int = 3,
    name: str | None = None,
    overwrite: bool = False,
    dpi: float = 100,
) -> Path:
    """Write the preview figure of ``source`` to ``path`` (PNG, PDF or SVG, by extension).

    The format is checked before anything is drawn; the file appears atomically
    (:func:`ptyfast._atomic.atomic_output`). Parameters as :func:`figure`.

    Parameters
    ----------
    source : Dataset, Experiment or PreviewData
    path : str or os.PathLike
        ``*.png``, ``*.pdf`` or ``*.svg``.
    seed, n_patterns, name
        As for :func:`figure`.
    overwrite : bool
        Replace an existing file (refused otherwise).
    dpi : float
        Resolution of a PNG (dots per inch; the page is about 17 inches wide).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        An extension other than ``.png``, ``.pdf``, ``.svg``, or an existing file without
        ``overwrite`` (both before any work); the errors of :func:`figure`.
    ImportError
        matplotlib is not installed.

    Examples
    --------
    >>> import ptyfast, ptyfast.plotting
    >>> from ptyfast import probes, scans
    >>> import numpy as np
    >>> e = ptyfast.Experiment(np.ones((64, 64)), probes.disk(16), scans.raster(4, 4, 5.0))
    >>> ds = ptyfast.simulate(e, seed=1)
    >>> ptyfast.plotting.preview(ds, "preview.png", overwrite=True)  # doctest: +SKIP
    PosixPath('preview.png')
    """
    from ._atomic import _check_target, atomic_output, check_output_path

    overwrite = _kernels._flag("overwrite", overwrite)
    target = check_output_path(path)
    fmt = preview_format(target)
    if isinstance(dpi, bool) or not isinstance(dpi, int | float) or not 10 <= dpi <= 1000:
        raise ValueError(f"dpi must be a number in [10, 1000], got {dpi!r}")
    _check_target(target, overwrite)
    fig = figure(source, seed=seed, n_patterns=n_patterns, name=name)
    meta = {"Software": None} if fmt == "png" else None
    with atomic_output(target, overwrite=overwrite) as out:
        fig.savefig(out.file, format=fmt, dpi=dpi, metadata=meta)
    return target


def _data(source: Any, *, seed: Any, n_patterns: int, name: str | None) -> PreviewData:
    from .model.dataset import Dataset
    from .model.experiment import Experiment

    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__} {name!r}")
    if isinstance(source, PreviewData):
        if seed is not None:
            raise ValueError("seed is for an Experiment; a PreviewData has its patterns")
        return source
    if isinstance(source, Dataset):
        if seed is not None:
            raise ValueError("seed is for an Experiment; a Dataset has its patterns")
        return PreviewData.from_dataset(source, n_patterns=n_patterns, name=name)
    if isinstance(source, Experiment):
        if seed is None:
            raise ValueError("seed must be given with an Experiment (its noise seed), got None")
        return PreviewData.from_experiment(source, seed, n_patterns=n_patterns, name=name)
    raise TypeError(
        f"source must be a ptyfast.Dataset, Experiment or plotting.PreviewData, got "
        f"{type(source).__name__}"
    )


def _title(d: PreviewData) -> str:
    h, w = np.asarray(d.object).shape
    p = np.asarray(d.probe).shape[0]
    seed = "unrecorded" if d.seed is None else str(d.seed)
    line1 = (
        f"{d.name}: {d.n_patterns:,} patterns of {d.N}×{d.N}, {_num(d.photons)} photons/pattern, "
        f"seed {seed}, {p} probe mode{'s' if p > 1 else ''}"
    )
    g = d.geometry
    where = (
        f"E = {_si(g.energy_eV, 'eV')}, z = {_si(g.distance_m, 'm')}, detector pixel "
        f"{_si(g.detector_pixel_m, 'm')} → object pixel {_si(g.object_pixel_m, 'm')}"
        if g is not None
        else "no geometry: axes in pixels"
    )
    line2 = (
        f"object {d.object_name} ({h}×{w}), detector {d.detector}, intensity scale "
        f"s = {d.intensity_scale:.4g}; {where}"
    )
    return f"{line1}\n{line2}"


def _draw(figure_cls: Any, d: PreviewData) -> Any:
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch

    obj = np.asarray(d.object)
    probe = np.asarray(d.probe)
    p, n = probe.shape[0], probe.shape[1]
    h, w = obj.shape
    um = d.geometry.object_pixel_m * 1e6 if d.geometry is not None else None
    f = um if um is not None else 1.0
    unit = "µm" if um is not None else "px"
    probe_rows = math.ceil(p / 2)
    nrows = 2 + probe_rows
    fig = figure_cls(figsize=(4.3 * _COLS, 3.55 * nrows + 0.7), layout="constrained")
    axs = fig.subplots(nrows, _COLS, squeeze=False)
    for ax in axs.ravel():
        ax.set_axis_off()

    def on(ax: Any) -> Any:
        ax.set_axis_on()
        return ax

    obj_extent = (-0.5 * f, (w - 0.5) * f, (h - 0.5) * f, -0.5 * f)

    def object_axes(ax: Any) -> None:
        ax.set_xlabel(f"x ({unit})")
        ax.set_ylabel(f"y ({unit})")

    # Row 0: the object, the scan, the detector's pixels.
    ax = on(axs[0, 0])
    amp = np.abs(obj)
    im = ax.imshow(amp, cmap="gray", extent=obj_extent, interpolation="nearest")
    ax.set_title("object amplitude |O|")
    object_axes(ax)
    _colorbar(fig, im, ax, "|O| (transmission)")
    ax = on(axs[0, 1])
    im = ax.imshow(
        np.angle(obj), cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=obj_extent,
        interpolation="nearest",
    )  # fmt: skip
    ax.set_title("object phase arg O")
    object_axes(ax)
    _colorbar(fig, im, ax, "phase (rad)")

    ax = on(axs[0, 2])
    ax.imshow(amp, cmap="gray", extent=obj_extent, alpha=0.35, interpolation="nearest")
    m = d.n_patterns
    step = max(1, math.ceil(m / MAX_POSITIONS))
    nom = np.asarray(d.positions_nominal, np.float64)[::step] * f
    tru = np.asarray(d.positions_true, np.float64)[::step] * f
    size = float(np.clip(3000 / len(nom), 2, 30))
    moved = not np.array_equal(nom, tru)
    if moved:
        segs = np.stack([nom, tru], axis=1)
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segs, colors="tab:orange", linewidths=0.6))
    ax.scatter(
        nom[:, 0], nom[:, 1], s=size * 2, facecolors="none", edgecolors="tab:blue",
        linewidths=0.7, label="nominal" if moved else "nominal = true",
    )  # fmt: skip
    if moved:
        ax.scatter(tru[:, 0], tru[:, 1], s=size / 2, c="tab:orange", linewidths=0, label="true")
    ax.set_xlim(obj_extent[0], obj_extent[1])
    ax.set_ylim(obj_extent[2], obj_extent[3])
    ax.set_aspect("equal")
    shown = f", every {step}th shown" if step > 1 else ""
    ax.set_title(f"scan: {m:,} positions{shown}")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    object_axes(ax)

    ax = on(axs[0, 3])
    codes = np.asarray(d.pixel_map)
    rgb, legend = pixel_map_rgb(codes)
    handles = [Patch(fc=c, ec="0.4", label=label) for label, c in legend]
    ax.imshow(rgb, interpolation="nearest")
    ax.set_title(f"detector mask: {int((codes == 0).sum())} of {n}×{n} pixels valid")
    ax.set_xlabel(_detector_label("column", d))
    ax.set_ylabel(_detector_label("row", d))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7)

    # Probe rows: each mode's amplitude s·|P_k| and phase, two modes per row.
    power = np.sum(np.abs(probe.astype(np.complex128)) ** 2, axis=(1, 2))
    share = power / power.sum()
    half = n // 2
    pext = ((-half - 0.5) * f, (n - half - 0.5) * f, (n - half - 0.5) * f, (-half - 0.5) * f)
    twilight = matplotlib.colormaps["twilight"].with_extremes(bad="white")
    for k in range(p):
        row, col = 1 + k // 2, 2 * (k % 2)
        mode = probe[k]
        a = d.intensity_scale * np.abs(mode)
        ax = on(axs[row, col])
        im = ax.imshow(a, cmap="magma", extent=pext, interpolation="nearest")
        ax.set_title(f"probe mode {k}: {share[k]:.1%} of the power")
        ax.set_xlabel(f"x − x_scan ({unit})")
        ax.set_ylabel(f"y − y_scan ({unit})")
        _colorbar(fig, im, ax, "amplitude s·|P| (√(photons/pixel))")
        ax = on(axs[row, col + 1])
        phase = np.ma.masked_where(np.abs(mode) < 1e-3 * np.abs(mode).max(), np.angle(mode))
        im = ax.imshow(
            phase, cmap=twilight, vmin=-np.pi, vmax=np.pi, extent=pext, interpolation="nearest"
        )
        ax.set_title(f"probe mode {k}: phase")
        ax.set_xlabel(f"x − x_scan ({unit})")
        ax.set_ylabel(f"y − y_scan ({unit})")
        _colorbar(fig, im, ax, "phase (rad); white: |P| < 10⁻³ max")
    if p % 2:  # two free panels: the object under the probe at the first position
        x0, y0 = (float(v) for v in np.asarray(d.positions_true)[0])
        patch = _kernels.extract_patches(obj, np.array([[x0, y0]]), n)[0]
        ax = on(axs[probe_rows, 2])
        im = ax.imshow(np.abs(patch), cmap="gray", extent=pext, interpolation="nearest")
        ax.set_title(f"object patch at position 0 ({x0:.5g}, {y0:.5g}) px")
        ax.set_xlabel(f"x − x_scan ({unit})")
        ax.set_ylabel(f"y − y_scan ({unit})")
        _colorbar(fig, im, ax, "|O| (transmission)")
        ax = on(axs[probe_rows, 3])
        im = ax.imshow(
            np.angle(patch), cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=pext,
            interpolation="nearest",
        )  # fmt: skip
        ax.set_title("object patch at position 0: phase")
        ax.set_xlabel(f"x − x_scan ({unit})")
        ax.set_ylabel(f"y − y_scan ({unit})")
        _colorbar(fig, im, ax, "phase (rad)")

    # Last row: patterns as photons (shared log scale), pattern 0 as read.
    pats = np.asarray(d.photons_patterns, np.float64)[: _COLS - 1]
    finite = pats[np.isfinite(pats)]
    positive = finite[finite > 0]
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = float(positive.min()) if positive.size else 0.1
    vmin = min(max(vmin, vmax * 1e-9), vmax / 10)
    viridis = matplotlib.colormaps["viridis"].with_extremes(under="white", bad="0.55")
    last = axs[nrows - 1]
    ims = []
    for i, pat in enumerate(pats):
        ax = on(last[i])
        valid = np.isfinite(pat)
        shown_pat = np.where(pat > 0, np.maximum(pat, vmin), vmin / 2)
        im = ax.imshow(
            np.ma.masked_where(~valid, shown_pat),
            cmap=viridis,
            norm=LogNorm(vmin=vmin, vmax=vmax),
            interpolation="nearest",
        )
        ims.append(im)
        total = float(np.sum(pat[valid]))
        ax.set_title(f"pattern {i}: {_num(total, 4)} photons detected")
        ax.set_xlabel(_detector_label("column", d))
        ax.set_ylabel(_detector_label("row", d))
    if ims:
        cb = fig.colorbar(ims[0], ax=list(last[: len(ims)]), shrink=0.9, extend="min")
        cb.set_label("detected photons / pixel; white: 0, grey: masked", fontsize=8)
    ax = on(last[_COLS - 1])
    r = np.asarray(d.readings, np.float64)
    rpos = r[r > 0]
    rmax = float(rpos.max()) if rpos.size else 1.0
    rmin = min(float(rpos.min()) if rpos.size else 0.1, rmax / 10)
    im = ax.imshow(
        np.where(r > 0, r, rmin / 2),
        cmap=viridis,
        norm=LogNorm(vmin=rmin, vmax=rmax),
        interpolation="nearest",
    )
    ax.set_title(d.readings_title)
    ax.set_xlabel(_detector_label("column", d))
    ax.set_ylabel(_detector_label("row", d))
    _colorbar(fig, im, ax, f"{d.readings_unit}; white: 0", extend="min")
    fig.suptitle(_title(d), fontsize=11)
    return fig


def pixel_map_rgb(codes: Any) -> tuple[np.ndarray, list[tuple[str, tuple[float, float, float]]]]:
    """An RGB image of a detector's pixel map (:meth:`ptyfast.Detector.pixel_map`) and its
    legend ``[(label with count and share, colour), ...]``: valid pixels light grey, module
    gaps black, the beamstop blue, dead pixels red, hot ones orange (a pixel in several
    classes shows the later one of gap, beamstop, masked, dead, hot).
    """
    c = np.asarray(codes)
    if c.ndim != 2:
        raise ValueError(f"codes must be a 2-D pixel map, got shape {c.shape}")
    classes = [  # drawn in this order: the last that applies wins
        ("valid", None, (0.93, 0.93, 0.93)),
        ("hot", _kernels.PIXEL_HOT, (1.0, 0.498, 0.055)),
        ("dead", _kernels.PIXEL_DEAD, (0.839, 0.153, 0.157)),
        ("masked", _MASKED, (0.58, 0.404, 0.741)),
        ("beamstop", _kernels.PIXEL_BEAMSTOP, (0.122, 0.467, 0.706)),
        ("module gap", _kernels.PIXEL_GAP, (0.0, 0.0, 0.0)),
    ]
    rgb = np.empty((*c.shape, 3))
    legend = []
    for label, flag, color in classes:
        sel = c == 0 if flag is None else (c & flag) != 0
        rgb[sel] = color
        count = int(sel.sum())
        if count or flag is None:
            legend.append((f"{label}: {count} ({count / c.size:.1%})", color))
    return rgb, legend


def _colorbar(fig: Any, im: Any, ax: Any, label: str, **kw: Any) -> Any:
    cb = fig.colorbar(im, ax=ax, shrink=0.9, **kw)
    cb.set_label(label, fontsize=8)
    return cb


def _detector_label(axis: str, d: PreviewData) -> str:
    if d.geometry is not None:
        return f"detector {axis} ({_si(d.geometry.detector_pixel_m, 'm')} pixels)"
    return f"detector {axis} (pixels)"

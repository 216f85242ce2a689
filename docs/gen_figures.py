"""Generate the documentation's figures with ptyfast itself (``make docs`` runs this).

Each figure is drawn from what ptyfast computes, and each function first *checks* the
convention it illustrates (an ``assert`` against an independent NumPy computation), so a
figure cannot show a convention the code no longer follows: the docs build fails instead.
Deterministic: fixed seeds, matplotlib's Agg backend, no timestamps in the PNGs (one
exception: which Dask worker ran which shard in ``dask_shards``; the bits it checks are fixed).

    python docs/gen_figures.py [--out docs/figures] [NAME ...]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

import ptyfast  # noqa: E402
from ptyfast.config import ModelConfig, TrainingConfig  # noqa: E402
from ptyfast.diffsim import grid_positions, sim_object_image  # noqa: E402
from ptyfast.nongrid_simulation import generate_simulated_data, random_positions  # noqa: E402
from ptyfast.probe import get_default_probe  # noqa: E402
from ptyfast.raw_data import RawData  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"
DPI = 110
SAVE = {"dpi": DPI, "bbox_inches": "tight", "metadata": {"Software": None}}
FIGURES: dict[str, Callable[[], plt.Figure]] = {}


def figure(name: str) -> Callable[[Callable[[], plt.Figure]], Callable[[], plt.Figure]]:
    def register(fn: Callable[[], plt.Figure]) -> Callable[[], plt.Figure]:
        FIGURES[name] = fn
        return fn

    return register


def _colorbar(fig: plt.Figure, im: object, ax: plt.Axes, label: str) -> None:
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label(label)


def _patches(obj: np.ndarray, xy: np.ndarray, probe: np.ndarray) -> RawData:
    """Noise-free simulation at positions ``xy`` (M, 2): ``.Y`` holds the object patches."""
    return RawData.from_simulation(
        xy[:, 0], xy[:, 1], probe, obj, np.zeros(len(xy), np.int64), nphotons=1e6, poisson=False
    )


# --------------------------------------------------------------------------- conventions


@figure("axes")
def axes_and_patch() -> plt.Figure:
    """Object axes (x = column, y = row, origin top-left) and where the scan point sits."""
    N, x, y = 32, 70, 44
    obj = sim_object_image(128, data_source="lines", seed=3)
    probe = get_default_probe(N)
    patch = _patches(obj, np.array([[x, y]], float), probe).Y[0, :, :, 0]
    # The convention: patch[r, c] = object[y + r - N//2, x + c - N//2] (integer positions copy).
    expect = obj[y - N // 2 : y + N // 2, x - N // 2 : x + N // 2]
    assert np.array_equal(patch, expect), "patch extraction no longer follows the convention"
    assert patch[N // 2, N // 2] == obj[y, x]
    # Placement: the relative position (0, 0) of a scan lands where a probe symmetric about
    # its array centre (N - 1)/2 is centred on the object's array centre.
    from ptyfast import scans

    cx, cy = scans.placement_offset(obj.shape, N)
    delta = N // 2 - (N - 1) / 2
    assert (cx, cy) == ((obj.shape[1] - 1) / 2 + delta, (obj.shape[0] - 1) / 2 + delta)

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1.35, 1]})
    a.imshow(np.abs(obj), cmap="gray")
    a.add_patch(
        Rectangle((x - N // 2 - 0.5, y - N // 2 - 0.5), N, N, fill=False, ec="tab:orange", lw=2)
    )
    a.plot([x], [y], "x", color="tab:red", ms=10, mew=2)
    a.annotate(
        f"scan point (x, y) = ({x}, {y})",
        (x, y),
        (x - 62, y - 30),
        color="tab:red",
        bbox={"fc": "white", "alpha": 0.8, "lw": 0},
        arrowprops={"arrowstyle": "->", "color": "tab:red"},
    )
    a.plot([0], [0], "o", color="tab:blue", ms=7)
    a.annotate(
        "origin: pixel (row 0, col 0)",
        (0, 0),
        (8, 118),
        color="tab:blue",
        bbox={"fc": "white", "alpha": 0.8, "lw": 0},
        arrowprops={"arrowstyle": "->", "color": "tab:blue"},
    )
    a.set_xlabel("x = column (second array axis) →")
    a.set_ylabel("← y = row (first array axis)")
    a.set_title(f"object {obj.shape} (|object|), patch of N = {N} in orange")
    b.imshow(np.abs(patch), cmap="gray", extent=(-0.5, N - 0.5, N - 0.5, -0.5))
    b.plot([N // 2], [N // 2], "x", color="tab:red", ms=10, mew=2)
    b.axhline(N // 2, color="tab:red", lw=0.6, ls=":")
    b.axvline(N // 2, color="tab:red", lw=0.6, ls=":")
    b.set_title(f"the patch: scan point at pixel (N//2, N//2) = ({N // 2}, {N // 2})")
    b.set_xlabel("patch column c")
    b.set_ylabel("patch row r")
    fig.tight_layout()
    return fig


@figure("zero_frequency")
def zero_frequency() -> plt.Figure:
    """Where the zero frequency sits in a pattern: [N//2, N//2]."""
    N = 32
    probe = get_default_probe(N)
    obj = np.ones((96, 96), np.complex64)  # flat object: the pattern is the probe's transform
    raw = _patches(obj, np.array([[48.0, 48.0]]), probe)
    amp = raw.diff3d[0] * raw.intensity_scale
    assert np.unravel_index(np.argmax(amp), amp.shape) == (N // 2, N // 2)
    field = (probe * raw.Y[0, :, :, 0]).astype(np.complex64)
    ref = np.abs(np.fft.fftshift(np.fft.fft2(field))) / N  # no shift before the FFT
    assert np.allclose(raw.diff3d[0], ref, rtol=1e-4, atol=1e-6 * ref.max())
    assert np.isclose((ref**2).sum(), (np.abs(field) ** 2).sum(), rtol=1e-5)  # unitary

    rng = np.random.default_rng(2)  # a random-phase object scatters into speckle
    speckle_obj = np.exp(2j * np.pi * rng.random((96, 96))).astype(np.complex64)
    pat = _patches(speckle_obj, np.array([[48.0, 48.0]]), probe).diff3d[0]
    cmap = plt.get_cmap("magma").copy()
    cmap.set_bad(cmap(0.0))  # exact zeros (log of 0) drawn as the lowest colour
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, img, title in [
        (axs[0], amp, "flat object: the probe's own far field"),
        (axs[1], pat, "random-phase object: speckle"),
    ]:
        im = ax.imshow(img**2 / (img**2).max(), cmap=cmap, norm=LogNorm(1e-6, 1))
        ax.plot([N // 2], [N // 2], "o", mfc="none", mec="cyan", ms=14, mew=1.5)
        ax.annotate(
            f"zero frequency [N//2, N//2] = [{N // 2}, {N // 2}]",
            (N // 2, N // 2),
            (1, 3),
            color="cyan",
            arrowprops={"arrowstyle": "->", "color": "cyan"},
        )
        ax.set_title(title)
        ax.set_xlabel("detector column (pixels)")
        ax.set_ylabel("detector row (pixels)")
        _colorbar(fig, im, ax, "intensity / max (log)")
    fig.tight_layout()
    return fig


@figure("units")
def amplitude_intensity_counts() -> plt.Figure:
    """One pattern as amplitude, expected photons, counts and the stored diff3d."""
    N, photons = 32, 1e4
    cfg = TrainingConfig(model=ModelConfig(N=N), n_groups=4, nphotons=photons)
    obj = sim_object_image(128, data_source="lines", seed=1)
    probe = get_default_probe(N)
    clean = generate_simulated_data(cfg, obj, probe, 20.0, False, seed=5, poisson=False)
    noisy = generate_simulated_data(cfg, obj, probe, 20.0, False, seed=5)
    s = float(clean.intensity_scale)
    assert np.array_equal(clean.xcoords, noisy.xcoords) and s == float(noisy.intensity_scale)
    amp = clean.diff3d[0].astype(np.float64)  # A / s ... noise-free stored value = A (unit probe)
    lam = (s * amp) ** 2  # expected photons per pixel
    counts = (s * noisy.diff3d[0].astype(np.float64)) ** 2
    assert np.allclose(counts, np.round(counts), atol=1e-3 * max(1.0, counts.max()) ** 0.5)
    mean_photons = ((s * clean.diff3d.astype(np.float64)) ** 2).sum(axis=(1, 2)).mean()
    assert np.isclose(mean_photons, photons, rtol=1e-4), mean_photons

    fig, axs = plt.subplots(1, 4, figsize=(15, 3.8))
    panels = [
        (amp, "noise-free diff3d = A\n(amplitude; photons ÷ s²)", "amplitude (a.u.)", None),
        (lam, "λ = s² A²\n(expected photons)", "photons / pixel", LogNorm(1e-2, lam.max())),
        (counts, "counts ~ Poisson(λ)", "photons / pixel", LogNorm(1, max(counts.max(), 2))),
        (noisy.diff3d[0], "stored diff3d = √counts / s", "amplitude (a.u.)", None),
    ]
    for ax, (img, title, unit, norm) in zip(axs, panels, strict=True):
        shown = np.ma.masked_less_equal(img, 0) if norm is not None else img
        im = ax.imshow(shown, cmap="viridis", norm=norm)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        _colorbar(fig, im, ax, unit)
    fig.suptitle(
        f"one pattern, N = {N}, nphotons = {photons:g} (mean Σλ over the dataset), s = {s:.4g}; "
        "zero counts blank in the log panels",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


@figure("default_probe")
def default_probe() -> plt.Figure:
    """The default probe, in pixels and (for one geometry) in micrometres."""
    N = 64
    probe = get_default_probe(N)
    assert probe.dtype == np.float64 and probe.shape == (N, N)
    assert np.allclose(probe, probe[::-1, ::-1])  # symmetric about the array centre (N-1)/2
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=N)
    px_um = g.object_pixel_m * 1e6
    fig, axs = plt.subplots(1, 3, figsize=(14, 4))
    im = axs[0].imshow(np.abs(probe), cmap="viridis")
    axs[0].set_title(f"get_default_probe({N}): |P| (pixels)")
    axs[0].set_xlabel("column (object pixels)")
    axs[0].set_ylabel("row (object pixels)")
    _colorbar(fig, im, axs[0], "amplitude")
    half = N * px_um / 2
    im = axs[1].imshow(np.abs(probe), cmap="viridis", extent=(-half, half, half, -half))
    axs[1].set_title(
        f"same probe in µm: E = 8 keV, z = 2 m, Δ = 75 µm\n(object pixel {px_um * 1e3:.1f} nm)",
        fontsize=10,
    )
    axs[1].set_xlabel("x (µm)")
    axs[1].set_ylabel("y (µm)")
    _colorbar(fig, im, axs[1], "amplitude")
    axs[2].plot(np.arange(N), probe[N // 2], ".-")
    axs[2].axvline(N // 2, color="gray", ls=":")
    axs[2].set_title("profile through row N//2 (zero phase: real probe)")
    axs[2].set_xlabel("column (object pixels)")
    axs[2].set_ylabel("amplitude")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- guides


@figure("scan_nongrid")
def nongrid_scan() -> plt.Figure:
    """A lines object with random (nongrid) scan positions, the buffer and one probe footprint."""
    N, size, buffer, n = 64, 256, 20.0, 400
    obj = sim_object_image(size, data_source="lines", seed=1)
    x, y, used = random_positions(n, size, size, buffer, 42)
    assert x.min() >= used and x.max() < size - used and y.min() >= used
    probe = get_default_probe(N)
    fig, ax = plt.subplots(figsize=(6.2, 6))
    ax.imshow(np.abs(obj), cmap="gray")
    ax.plot(x, y, ".", color="tab:orange", ms=3, label=f"{n} positions (seed 42)")
    ax.add_patch(
        Rectangle(
            (used, used),
            size - 2 * used,
            size - 2 * used,
            fill=False,
            ls="--",
            ec="tab:cyan",
            label=f"buffer = {used:g} px",
        )
    )
    r = np.sqrt((probe > probe.max() / 2).sum() / np.pi)  # radius of the half-maximum disk
    ax.add_patch(
        Circle(
            (x[0], y[0]),
            r,
            fill=False,
            ec="tab:red",
            lw=1.5,
            label="probe half-maximum, first position",
        )
    )
    ax.set_xlabel("x = column (object pixels)")
    ax.set_ylabel("y = row (object pixels)")
    ax.set_title("generate_simulated_data: random positions on a lines object")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


@figure("grid_layout")
def grid_layout() -> plt.Figure:
    """The grid mode: regions of bigN, stride outer_offset // 2, channels c = (row, col)."""
    N, g, offset, outer, size = 16, 2, 8, 24, 96
    pos = grid_positions(size, outer, N=N, gridsize=g, offset=offset)  # (G1², C, 2)
    stride, big_n = outer // 2, N + (g - 1) * offset
    g1 = int(round(np.sqrt(len(pos))))
    assert g1 == (size - big_n) // stride + 1
    for c in range(g * g):  # channel c sits at (row, col) = (c // g, c % g)
        assert np.array_equal(pos[0, c], [N // 2 + (c % g) * offset, N // 2 + (c // g) * offset])
    obj = sim_object_image(size, data_source="lines", seed=1)
    fig, axs = plt.subplots(1, 2, figsize=(11, 5))
    axs[0].imshow(np.abs(obj), cmap="gray")
    axs[0].plot(pos[..., 0].ravel(), pos[..., 1].ravel(), ".", color="tab:orange", ms=4)
    for r in (0, g1 + 1, len(pos) - 1):
        top, left = (r // g1) * stride, (r % g1) * stride
        axs[0].add_patch(
            Rectangle((left - 0.5, top - 0.5), big_n, big_n, fill=False, lw=1.5, ec="tab:cyan")
        )
        axs[0].annotate(
            f"region {r}",
            (left, top),
            (left + 1, top + 4),
            color="tab:cyan",
            fontsize=9,
            bbox={"fc": "white", "alpha": 0.8, "lw": 0},
        )
    axs[0].set_title(
        f"{g1}×{g1} regions of bigN = {big_n}, stride outer_offset // 2 = {stride}\n"
        f"(orange: the {g * g} patch positions of every region)",
        fontsize=10,
    )
    axs[0].set_xlabel("x = column (object pixels)")
    axs[0].set_ylabel("y = row (object pixels)")
    ax = axs[1]
    ax.imshow(
        np.abs(obj[:big_n, :big_n]), cmap="gray", extent=(-0.5, big_n - 0.5, big_n - 0.5, -0.5)
    )
    colors = ["tab:red", "tab:orange", "tab:green", "tab:purple"]
    styles = ["-", "--", "-.", ":"]
    for c in range(g * g):
        px, py = pos[0, c]
        inset = 0.3 * c  # keep coincident edges apart
        ax.add_patch(
            Rectangle(
                (px - N // 2 - 0.5 + inset, py - N // 2 - 0.5 + inset),
                N - 2 * inset,
                N - 2 * inset,
                fill=False,
                ec=colors[c],
                lw=2,
                ls=styles[c],
                label=f"channel c = {c}: (row, col) = ({c // g}, {c % g})",
            )
        )
        ax.plot([px], [py], "x", color=colors[c], ms=9, mew=2.5)
    ax.set_xlim(-1, big_n)
    ax.set_ylim(big_n, -1)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    ax.set_title(
        f"region 0: gridsize² = {g * g} patches of N = {N} at offset {offset}\n"
        "(× = each patch's scan point, pixel N//2)",
        fontsize=10,
    )
    ax.set_xlabel("x (object pixels)")
    ax.set_ylabel("y (object pixels)")
    fig.tight_layout()
    return fig


@figure("grouping")
def grouping() -> plt.Figure:
    """Groups of gridsize² = 4 positions among each seed's K = 7 nearest neighbours."""
    N, g, K = 32, 2, 7
    cfg = TrainingConfig(model=ModelConfig(N=N, gridsize=g), n_groups=150, nphotons=1e6)
    raw = generate_simulated_data(
        cfg, sim_object_image(128, data_source="lines", seed=1), get_default_probe(N), 10.0, False
    )
    grouped = raw.generate_grouped_data(N=N, K=K, nsamples=150, gridsize=g, seed=0)
    nn = grouped["nn_indices"]
    pts = np.column_stack([raw.xcoords, raw.ycoords])
    fig, ax = plt.subplots(figsize=(6.2, 6))
    ax.plot(pts[:, 0], pts[:, 1], ".", color="0.6", ms=4, label="positions")
    colors = plt.get_cmap("tab10").colors
    for k, i in enumerate((0, 40, 80, 120)):
        grp = nn[i]
        d = np.hypot(*(pts[grp] - pts[grp].mean(axis=0)).T)
        kth = np.sort(np.hypot(*(pts - pts[grp[0]]).T))[K]  # seeds draw among K neighbours
        assert d.max() <= 2 * kth + 1e-9
        c = colors[k]
        ax.plot(
            pts[grp, 0],
            pts[grp, 1],
            "o",
            mfc="none",
            mec=c,
            ms=8,
            mew=1.8,
            label=f"group {i}: indices {list(map(int, grp))}",
        )
        ctr = pts[grp].mean(axis=0)
        for j in grp:
            ax.plot([ctr[0], pts[j, 0]], [ctr[1], pts[j, 1]], "-", color=c, lw=1)
        ax.plot(*ctr, "+", color=c, ms=10, mew=2)
    ax.set_xlabel("x (object pixels)")
    ax.set_ylabel("y (object pixels)")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title(f"generate_grouped_data: K = {K}, gridsize = {g} (+ = group centre)")
    ax.legend(fontsize=7, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the model


def _show_complex(fig: plt.Figure, axa: plt.Axes, axp: plt.Axes, field: np.ndarray, title: str):
    axa.imshow(np.abs(field), cmap="viridis")
    axa.set_title(title, fontsize=9)
    shown = np.ma.masked_where(np.abs(field) < 1e-3 * np.abs(field).max(), np.angle(field))
    axp.imshow(shown, cmap="twilight", vmin=-np.pi, vmax=np.pi)
    for ax in (axa, axp):
        ax.set_xticks([])
        ax.set_yticks([])


@figure("probes")
def probe_gallery() -> plt.Figure:
    """The probe builders: amplitude (top) and phase (bottom), unit total intensity each."""
    from ptyfast import probes

    N = 128
    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=N)
    fzp = probes.fresnel_zone_plate(g, 160e-6, 50e-9, central_stop=0.3, defocus_m=5e-4)
    mode_stack = probes.modes(fzp, 3, decay=0.5)
    gallery = [
        (probes.disk(N), "disk(128):\nPtychoPINN's default"),
        (probes.gaussian(N, 10.0), "gaussian(128, 10)\n"),
        (probes.super_gaussian(N, 20.0, order=6), "super_gaussian(128, 20,\norder=6)"),
        (fzp, "fresnel_zone_plate,\ndefocus 0.5 mm"),
        (probes.zernike(N, seed=4), "zernike(128, seed=4):\nrandom aberrations"),
        (mode_stack[1], "modes(fzp, 3,\ndecay=0.5)[1]"),
    ]
    for p, _ in gallery[:-1]:  # one mode alone carries its weight, not 1
        assert p.dtype == np.complex64 and np.isclose((np.abs(p) ** 2).sum(), 1, rtol=1e-5)
    overlap = np.abs(np.vdot(mode_stack[0], mode_stack[1]))  # incoherent modes: orthogonal
    assert overlap < 1e-5 * np.abs(np.vdot(mode_stack[0], mode_stack[0])), overlap
    assert np.isclose((np.abs(mode_stack) ** 2).sum(), 1, rtol=1e-5)
    fig, axs = plt.subplots(2, len(gallery), figsize=(2.3 * len(gallery), 5))
    for k, (p, title) in enumerate(gallery):
        _show_complex(fig, axs[0, k], axs[1, k], p, title)
    axs[0, 0].set_ylabel("amplitude |P|")
    axs[1, 0].set_ylabel("phase (twilight: −π … π)")
    fig.suptitle(
        f"ptyfast.probes, N = {N}: complex64, Σ|P|² = 1 (modes: over all modes)", fontsize=10
    )
    fig.tight_layout()
    return fig


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """|⟨a, b⟩| / (‖a‖ ‖b‖): 1 for fields equal up to a constant factor."""
    a, b = a.astype(np.complex128).ravel(), b.astype(np.complex128).ravel()
    return float(abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _probe_geometry() -> ptyfast.Geometry:
    return ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=128)


@figure("probe_focus")
def probe_focus() -> plt.Figure:
    """A zone plate through focus (checked against ``propagate``) and Zernike aberrations."""
    from ptyfast import probes

    g = _probe_geometry()
    fzp = {
        d: probes.fresnel_zone_plate(g, 160e-6, 50e-9, central_stop=0.3, defocus_m=d)
        for d in (-5e-4, 0.0, 5e-4)
    }
    # Two independent computations of the same defocused field: the zone plate's own Hankel
    # quadrature at z = f + d, and angular-spectrum propagation of its focus by d.
    moved = probes.propagate(fzp[0.0], 5e-4, g)
    assert _overlap(moved, fzp[5e-4]) > 0.99, _overlap(moved, fzp[5e-4])
    coma = np.zeros(8)
    coma[7] = 2.0  # Noll j = 8: x coma, 2 rad
    gallery = [
        (probes.disk(g.N), "disk(128)\n(PtychoPINN's default)"),
        (fzp[-5e-4], "fresnel_zone_plate,\ndefocus −0.5 mm"),
        (fzp[0.0], "fresnel_zone_plate,\nin focus"),
        (fzp[5e-4], "fresnel_zone_plate,\ndefocus +0.5 mm"),
        (moved, "propagate(in focus,\n+0.5 mm)"),
        (probes.zernike(g.N, coma, aperture=0.25), "zernike: Z8 (coma)\n= 2 rad"),
        (probes.zernike(g.N, seed=4), "zernike(128, seed=4)\nrandom, 1 rad RMS"),
    ]
    for p, title in gallery:
        assert p.dtype == np.complex64 and p.shape == (g.N, g.N), title
        if "propagate" not in title:  # built probes carry unit intensity; propagate keeps its
            assert np.isclose((np.abs(p) ** 2).sum(), 1, rtol=1e-5), title
    # Focus: the in-focus annulus is the smallest spot of the three.
    widths = {d: (np.abs(p) ** 2 > 0.5 * (np.abs(p) ** 2).max()).sum() for d, p in fzp.items()}
    assert widths[0.0] < min(widths[-5e-4], widths[5e-4]), widths
    um = g.object_pixel_m * 1e6
    half = g.N * um / 2
    ext = (-half, half, half, -half)
    fig, axs = plt.subplots(2, len(gallery), figsize=(2.25 * len(gallery), 5.1))
    for k, (p, title) in enumerate(gallery):
        axs[0, k].imshow(np.abs(p), cmap="viridis", extent=ext)
        axs[0, k].set_title(title, fontsize=8)
        shown = np.ma.masked_where(np.abs(p) < 1e-3 * np.abs(p).max(), np.angle(p))
        im = axs[1, k].imshow(shown, cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=ext)
        for ax in axs[:, k]:
            ax.tick_params(labelsize=6)
        axs[1, k].set_xlabel("x (µm)", fontsize=7)
    axs[0, 0].set_ylabel("amplitude |P|\ny (µm)", fontsize=8)
    axs[1, 0].set_ylabel("phase\ny (µm)", fontsize=8)
    _colorbar(fig, im, axs[1, -1], "phase (rad)")
    fig.suptitle(
        f"N = {g.N}, E = 8 keV, object pixel {um * 1e3:.1f} nm; zone plate D = 160 µm, "
        f"Δr = 50 nm, central stop 0.3 (f = {160e-6 * 50e-9 / g.wavelength_m * 1e3:.1f} mm). "
        f"Overlap of the two +0.5 mm fields: {_overlap(moved, fzp[5e-4]):.4f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


@figure("probe_modes")
def probe_modes() -> plt.Figure:
    """Incoherent modes of a defocused zone plate: each mode, its power, the total intensity."""
    from ptyfast import probes

    g = _probe_geometry()
    primary = probes.fresnel_zone_plate(g, 160e-6, 50e-9, central_stop=0.3, defocus_m=2e-4)
    n, decay = 4, 0.5
    stack = probes.modes(primary, n, decay=decay)
    assert stack.shape == (n, g.N, g.N) and stack.dtype == np.complex64
    flat = stack.reshape(n, -1).astype(np.complex128)
    gram = flat.conj() @ flat.T  # ⟨P_i, P_j⟩ = δ_ij w_i
    want = decay ** np.arange(n) / (decay ** np.arange(n)).sum()
    assert np.allclose(np.diag(gram).real, want, atol=1e-6), np.diag(gram).real
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-6
    assert _overlap(stack[0], primary) > 1 - 1e-6  # the first mode is the primary
    powers = np.diag(gram).real
    fig, axs = plt.subplots(2, n + 1, figsize=(2.5 * (n + 1), 5.3))
    for k in range(n):
        p = stack[k]
        axs[0, k].imshow(np.abs(p), cmap="viridis")
        axs[0, k].set_title(f"mode {k}: power Σ|P_{k}|² = {powers[k]:.4f}", fontsize=8)
        shown = np.ma.masked_where(np.abs(p) < 1e-3 * np.abs(p).max(), np.angle(p))
        axs[1, k].imshow(shown, cmap="twilight", vmin=-np.pi, vmax=np.pi)
        for ax in axs[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axs[0, 0].set_ylabel("amplitude |P_k|", fontsize=8)
    axs[1, 0].set_ylabel("phase (twilight: −π … π)", fontsize=8)
    a = axs[0, n]
    a.bar(range(n), powers, color="tab:blue")
    a.plot(range(n), want, "o", mfc="none", mec="tab:red", label=f"∝ {decay}^k")
    a.set_xticks(range(n))
    a.set_xlabel("mode k", fontsize=8)
    a.set_ylabel("power (sum over modes = 1)", fontsize=8)
    a.set_title("powers: decay=0.5", fontsize=8)
    a.legend(fontsize=7)
    a.tick_params(labelsize=7)
    a = axs[1, n]
    im = a.imshow((np.abs(stack) ** 2).sum(axis=0), cmap="magma")
    a.set_title("total intensity Σ_k |P_k|²\n(what the detector sums)", fontsize=8)
    a.set_xticks([])
    a.set_yticks([])
    _colorbar(fig, im, a, "intensity")
    fig.suptitle(
        f"probes.modes(fresnel_zone_plate(..., defocus_m=2e-4), {n}, decay={decay}): "
        "orthogonal modes (method='hermite'), the first one the primary",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


@figure("scans")
def scan_gallery() -> plt.Figure:
    """The scan builders, and position errors: nominal (commanded) vs true positions."""
    from ptyfast import scans

    gallery = [
        (scans.raster(6, 6, 8.0, snake=True), "raster(6, 6, 8, snake=True)"),
        (scans.hexagonal(6, 6, 8.0), "hexagonal(6, 6, 8)"),
        (scans.fermat_spiral(60, 4.0), "fermat_spiral(60, 4)"),
        (scans.concentric(4, 8.0), "concentric(4, 8)"),
        (scans.lissajous(60, 24.0), "lissajous(60, 24)"),
        (scans.random_uniform(40, 48.0, seed=1), "random_uniform(40, 48, seed=1)"),
    ]
    base = scans.fermat_spiral(60, 4.0)
    err = base.jitter(0.8, seed=1).drift((0.05, 0.02))
    assert np.array_equal(err.nominal, base.nominal) and not np.array_equal(err.true, base.true)
    assert scans.Scan.from_dict(err.to_dict()).true.tobytes() == err.true.tobytes()
    fig, grid = plt.subplots(2, 4, figsize=(11, 6))
    grid[1, 3].remove()
    axs = [*grid[0], *grid[1, :3]]
    for ax, (sc, title) in zip(axs, gallery, strict=False):
        p = sc.nominal
        ax.plot(p[:, 0], p[:, 1], "-", color="0.75", lw=0.8)
        ax.plot(p[:, 0], p[:, 1], ".", color="tab:blue", ms=4)
        ax.plot(p[0, 0], p[0, 1], "o", color="tab:red", ms=5)
        ax.set_title(title, fontsize=8)
    ax = axs[-1]
    ax.plot(
        err.nominal[:, 0], err.nominal[:, 1], "o", mfc="none", mec="tab:blue", ms=5, label="nominal"
    )
    ax.plot(err.true[:, 0], err.true[:, 1], ".", color="tab:orange", ms=5, label="true")
    for a, b in zip(err.nominal, err.true, strict=True):
        ax.plot([a[0], b[0]], [a[1], b[1]], "-", color="tab:orange", lw=0.6)
    ax.set_title("fermat_spiral(60, 4)\n.jitter(0.8, seed=1).drift((0.05, 0.02))", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    for ax in axs:
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
    for ax in (grid[0, 0], grid[1, 0]):
        ax.set_ylabel("v (object px, from the scan centre)", fontsize=8)
    for ax in grid[1, :3]:
        ax.set_xlabel("u (object px)", fontsize=8)
    fig.suptitle("ptyfast.scans (red: first position; grey: scan order)", fontsize=10)
    fig.tight_layout()
    return fig


@figure("scan_errors")
def scan_errors() -> plt.Figure:
    """Every builder with jitter and drift: nominal vs true; then the displacement over time."""
    from ptyfast import scans

    sigma, v, walk = 0.3, (0.06, -0.04), 0.15
    gallery = [
        (scans.raster(7, 7, 8.0, snake=True), "raster(7, 7, 8, snake=True)"),
        (scans.hexagonal(7, 7, 8.0), "hexagonal(7, 7, 8)"),
        (scans.fermat_spiral(50, 4.5), "fermat_spiral(50, 4.5)"),
        (scans.concentric(3, 8.0), "concentric(3, 8)"),
        (scans.lissajous(50, 24.0), "lissajous(50, 24)"),
        (scans.random_uniform(50, 48.0, seed=1), "random_uniform(50, 48, seed=1)"),
    ]
    errs = []
    for sc, title in gallery:
        e = sc.jitter(sigma, seed=3).drift(v, random_walk_px=walk, seed=4)
        # The documented draws, recomputed with NumPy: jitter, then drift v·k + a random walk.
        m = len(sc)
        k = np.arange(m, dtype=np.float64)[:, None]
        jit = np.random.Generator(np.random.PCG64(3)).normal(0.0, sigma, (m, 2))
        steps = np.random.Generator(np.random.PCG64(4)).normal(0.0, walk, (m - 1, 2))
        wk = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        assert np.allclose(e.true, sc.nominal + jit + k * np.array(v) + wk, atol=1e-12), title
        assert np.array_equal(e.nominal, sc.nominal), "errors must leave nominal as it is"
        assert scans.Scan.from_dict(e.to_dict()).true.tobytes() == e.true.tobytes(), title
        errs.append((e, title))
    rot = np.deg2rad(3.0)
    mat = [[1.02 * np.cos(rot), -np.sin(rot)], [np.sin(rot), 1.02 * np.cos(rot)]]
    aff = scans.raster(7, 7, 8.0).affine(mat)
    assert np.allclose(aff.true, aff.nominal @ np.array(mat).T)
    errs.append((aff, "raster(7, 7, 8).affine(3° rotation,\n2 % scale)"))

    fig, grid = plt.subplots(2, 4, figsize=(13, 6.8))
    for ax, (e, title) in zip(grid.ravel(), errs, strict=False):
        nom, tru = e.nominal, e.true
        for a, b in zip(nom, tru, strict=True):
            ax.plot([a[0], b[0]], [a[1], b[1]], "-", color="tab:orange", lw=0.7)
        ax.plot(nom[:, 0], nom[:, 1], "o", mfc="none", mec="tab:blue", ms=4, label="nominal")
        ax.plot(tru[:, 0], tru[:, 1], ".", color="tab:orange", ms=4, label="true")
        ax.set_title(title, fontsize=8)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
    grid[0, 0].legend(fontsize=7, loc="lower left", framealpha=0.9)
    for ax in grid[:, 0]:
        ax.set_ylabel("v (object px from the scan centre)", fontsize=8)
    for ax in grid[1, :3]:
        ax.set_xlabel("u (object px)", fontsize=8)
    spiral = errs[2][0]
    d = spiral.true - spiral.nominal
    ax = grid[1, 3]
    ax.plot(d[:, 0], ".-", color="tab:red", ms=3, lw=0.8, label="x: true − nominal")
    ax.plot(d[:, 1], ".-", color="tab:green", ms=3, lw=0.8, label="y: true − nominal")
    ax.plot(np.arange(len(d)) * v[0], ":", color="tab:red", lw=1, label=f"drift v·k, v = {v}")
    ax.plot(np.arange(len(d)) * v[1], ":", color="tab:green", lw=1)
    ax.set_xlabel("position index k (scan order)", fontsize=8)
    ax.set_ylabel("displacement (object px)", fontsize=8)
    ax.set_title("fermat_spiral: the error over the scan", fontsize=8)
    ax.legend(fontsize=6.5, loc="lower left")
    ax.tick_params(labelsize=7)
    fig.suptitle(
        f"Each builder, then .jitter({sigma}, seed=3).drift({v}, random_walk_px={walk}, seed=4); "
        "circles: nominal (what a reconstruction is given), dots: true (what the simulation "
        "uses)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


@figure("objects")
def object_gallery() -> plt.Figure:
    """The object families, amplitude (top) and phase (bottom)."""
    from ptyfast import objects

    size = 128
    gallery = [
        (objects.lines(size, seed=1), "lines(128, seed=1)"),
        (objects.grf(size, seed=1), "grf(128, seed=1)"),
        (objects.points(size, seed=1), "points(128, seed=1)"),
        (objects.dead_leaves(size, seed=1), "dead_leaves(128, seed=1)"),
    ]
    plain = objects.lines(size, seed=1, amplitude=None, phase=(0, 0))
    assert np.array_equal(plain, sim_object_image(size, data_source="lines", seed=1))
    fig, axs = plt.subplots(2, len(gallery), figsize=(2.6 * len(gallery), 5.2))
    for k, (o, title) in enumerate(gallery):
        assert o.dtype == np.complex64 and o.shape == (size, size)
        axs[0, k].imshow(np.abs(o), cmap="gray")
        axs[0, k].set_title(title, fontsize=9)
        im = axs[1, k].imshow(np.angle(o), cmap="twilight", vmin=-np.pi, vmax=np.pi)
        for ax in axs[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axs[0, 0].set_ylabel("amplitude")
    axs[1, 0].set_ylabel("phase")
    _colorbar(fig, im, axs[1, -1], "phase (rad)")
    fig.suptitle(
        "ptyfast.objects: default amplitude (1, 0.5) and phase (0, π/2) ranges", fontsize=10
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- detectors, experiments


def _detector_experiment(detector: object, N: int = 128) -> ptyfast.Experiment:
    """One experiment seen by different detectors: dead leaves lit by a disk probe."""
    from ptyfast import objects, probes, scans

    return ptyfast.Experiment(
        objects.dead_leaves(256, seed=1),
        probes.disk(N),
        scans.fermat_spiral(20, 3.0),
        detector,  # type: ignore[arg-type]
        photons=1e7,
    )


def _presets() -> list[tuple[str, object]]:
    from ptyfast import Detector

    return [
        ("Detector.ideal()", Detector.ideal()),
        (
            "Detector.eiger('4M', beamstop_radius_px=4,\nbeam_px=(495, 990))",
            Detector.eiger("4M", beamstop_radius_px=4.0, beam_px=(495, 990)),
        ),
        ("Detector.pilatus('1M', beam_px=(160, 440))", Detector.pilatus("1M", beam_px=(160, 440))),
        (
            "Detector.integrating(dead_fraction=0.003,\nhot_fraction=0.002, bad_pixel_seed=1)",
            Detector.integrating(dead_fraction=0.003, hot_fraction=0.002, bad_pixel_seed=1),
        ),
    ]


@figure("detectors")
def detector_presets() -> plt.Figure:
    """Each preset's pixel map (top) and the first pattern as it reads it (bottom)."""
    from ptyfast import _kernels
    from ptyfast.plotting import pixel_map_rgb

    presets = _presets()
    fig, axs = plt.subplots(2, len(presets), figsize=(4.1 * len(presets), 8.4))
    for k, (title, det) in enumerate(presets):
        e = _detector_experiment(det)
        ds = ptyfast.simulate(e, seed=5)
        r = ds.diffraction[0]
        codes = det.pixel_map(e.N)  # type: ignore[attr-defined]
        # what the table says the readings are
        assert np.all(r[(codes & _kernels.PIXEL_GAP) != 0] == 0), "gap pixels must read 0"
        no_sensor = _kernels.PIXEL_GAP | _kernels.PIXEL_DEAD
        hot = ((codes & _kernels.PIXEL_HOT) != 0) & ((codes & no_sensor) == 0)
        assert np.all(r[hot] == det.saturation), "hot pixels must read the saturation level"  # type: ignore[attr-defined]
        if k == 0:  # the ideal detector keeps PtychoPINN's bits
            ref = RawData.from_simulation(
                e.positions_true[:, 0], e.positions_true[:, 1], e.probe[0], e.object,
                np.zeros(e.n_patterns, np.int64), nphotons=1e7, seed=5,
            )  # fmt: skip
            assert np.array_equal(ds.to_raw_data().diff3d, ref.diff3d)
        rgb, legend = pixel_map_rgb(codes)
        a = axs[0, k]
        a.imshow(rgb, interpolation="nearest")
        a.set_title(title, fontsize=9)
        a.legend(
            handles=[Rectangle((0, 0), 1, 1, fc=c, ec="0.4", label=t) for t, c in legend],
            loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7,
        )  # fmt: skip
        a = axs[1, k]
        unit = "counts" if det.gain == 1 and det.offset == 0 else "ADU"  # type: ignore[attr-defined]
        pos = r[r > 0]
        cmap = plt.get_cmap("viridis").with_extremes(under="white")
        im = a.imshow(
            np.where(r > 0, r, 0.5), cmap=cmap, norm=LogNorm(max(1, pos.min()), pos.max()),
            interpolation="nearest",
        )  # fmt: skip
        a.set_title(f"pattern 0 as read: {r.dtype}, {unit}", fontsize=9)
        _colorbar(fig, im, a, f"reading ({unit}); white: 0")
        for ax in axs[:, k]:
            ax.set_xlabel("detector column (pixels)", fontsize=8)
            ax.set_ylabel("detector row (pixels)", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(
        "The same experiment (N = 128, 1e7 photons/pattern, seed 5) read by each preset: "
        "pixel maps (top), readings of pattern 0 (bottom, log scale)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _readme_experiment() -> tuple[ptyfast.Experiment, ptyfast.Dataset]:
    """The README's experiment, with a geometry (so the preview is in µm)."""
    from ptyfast import objects, probes, scans

    g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
    e = ptyfast.Experiment(
        objects.recipe("dead_leaves", shape=128, seed=2),
        probes.recipe("gaussian", N=32, sigma_px=5.0, operations=[{"op": "modes", "n": 2}]),
        scans.fermat_spiral(100, 2.0).jitter(0.3, seed=1),
        ptyfast.Detector.eiger(qe=0.9),
        photons=1e6,
        geometry=g,
    )
    return e, ptyfast.simulate(e, seed=7)


@figure("preview")
def experiment_preview() -> plt.Figure:
    """``ptyfast.plotting.figure`` of the README's experiment (what ``--preview`` draws)."""
    from ptyfast import plotting

    e, ds = _readme_experiment()
    # Units: the mean detected photons per pattern is photons × QE (5σ of the mean of M sums).
    detected = ds.detector.readings_to_photons(ds.diffraction).sum(axis=(1, 2))
    assert ds.mask.all() and abs(detected.mean() - 0.9e6) < 5 * np.sqrt(0.9e6 / len(ds))
    d = plotting.PreviewData.from_dataset(ds)
    assert np.array_equal(d.photons_patterns, ds.diffraction[:3].astype(np.float64))
    return plotting.figure(ds, name="README experiment")


@figure("replay")
def replay_figure() -> plt.Figure:
    """Replay gives the same bits; another seed gives other noise."""
    e, ds = _readme_experiment()
    again = ptyfast.replay(ds.provenance)
    assert np.array_equal(again.diffraction, ds.diffraction)
    assert again.provenance == ds.provenance
    other = ptyfast.simulate(e, seed=8)
    assert not np.array_equal(other.diffraction, ds.diffraction)
    panels = [
        (ds.diffraction[0], "ptyfast.simulate(e, seed=7): pattern 0"),
        (again.diffraction[0], "ptyfast.replay(ds.provenance): pattern 0"),
        (again.diffraction[0].astype(np.int64) - ds.diffraction[0], "replayed − original"),
        (other.diffraction[0].astype(np.int64) - ds.diffraction[0], "seed 8 − seed 7"),
    ]
    fig, axs = plt.subplots(1, 4, figsize=(15, 3.8))
    cmap = plt.get_cmap("viridis").with_extremes(under="white")
    for k, (img, title) in enumerate(panels):
        a = axs[k]
        if k < 2:
            im = a.imshow(np.where(img > 0, img, 0.5), cmap=cmap, norm=LogNorm(1, img.max()))
            _colorbar(fig, im, a, "counts (log); white: 0")
        else:
            lim = max(1, int(np.abs(img).max()))
            im = a.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            _colorbar(fig, im, a, "difference (counts)")
        a.set_title(title, fontsize=9)
        a.set_xlabel("detector column (pixels)", fontsize=8)
        a.set_ylabel("detector row (pixels)", fontsize=8)
    fig.suptitle(
        f"The README's experiment ({len(ds)} patterns, EIGER2, 2 modes): replay is bit for bit "
        f"(max |difference| = {int(np.abs(panels[2][0]).max())}); the noise seed sets the draws",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _small_campaign() -> ptyfast.Campaign:
    """The template (``ptyfast recipe --example``), six experiments of 40 positions."""
    from ptyfast.model import recipes

    doc = recipes.loads(recipes.example())
    doc["campaign"]["n_experiments"] = 6
    doc["scan"]["n"] = 40
    doc["object"]["shape"] = [192, 192]
    return ptyfast.Campaign.from_dict(doc)


@figure("campaign")
def campaign_figure() -> plt.Figure:
    """Six experiments drawn from the template: probe, pattern 0 and the draws of each."""
    c = _small_campaign()
    fig, axs = plt.subplots(2, len(c), figsize=(2.9 * len(c), 6.8))
    cmap = plt.get_cmap("viridis").with_extremes(under="white", bad="0.55")
    for i in range(len(c)):
        ds = c.simulate(i)
        draws = ds.provenance["campaign"]["draws"]
        assert 1e4 <= draws["experiment.photons"] <= 1e8
        assert 0.5e-3 <= draws["probe.defocus_m"] <= 1.5e-3
        assert draws["detector.preset"] in ("eiger", "integrating")
        if i == 2:  # any one experiment replays alone, bit for bit
            assert np.array_equal(ptyfast.replay(ds.provenance).diffraction, ds.diffraction)
        a = axs[0, i]
        a.imshow(np.abs(ds.probe[0]), cmap="magma")
        a.set_title(
            f"#{i}: defocus {draws['probe.defocus_m'] * 1e3:.2f} mm\n{draws['object.family']}",
            fontsize=8,
        )
        photons = ds.detector.readings_to_photons(ds.diffraction[0], masked_value=np.nan)
        pos = photons[photons > 0]
        a = axs[1, i]
        a.imshow(
            np.ma.masked_invalid(np.where(photons > 0, photons, 0.5 * pos.min())),
            cmap=cmap,
            norm=LogNorm(pos.min(), pos.max()),
        )
        a.set_title(
            f"{draws['detector.preset']}, {draws['experiment.photons']:.2g} photons".replace(
                "e+0", "e"
            ),
            fontsize=8,
        )
        for ax in axs[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axs[0, 0].set_ylabel("probe mode 0 |P|", fontsize=8)
    axs[1, 0].set_ylabel("pattern 0, detected photons (log)", fontsize=8)
    fig.suptitle(
        f"ptyfast.Campaign of the template: {len(c)} experiments drawn with seed {c.seed} "
        "(white: 0 photons, grey: masked)",
        fontsize=10,
    )
    fig.tight_layout(h_pad=2.0)
    return fig


# --------------------------------------------------------------------------- Dask


def _dask_experiment() -> ptyfast.Experiment:
    """A small experiment for the Dask figure and guide: 600 patterns of 32², EIGER-like."""
    from ptyfast import objects, probes, scans

    return ptyfast.Experiment(
        objects.dead_leaves(160, seed=1),
        probes.modes(probes.gaussian(32, 4.0), 2, decay=0.5),
        scans.fermat_spiral(600, 1.8).jitter(0.3, seed=2),
        ptyfast.Detector.eiger(qe=0.9),
        photons=1e5,
    )


@figure("dask_shards")
def dask_shards() -> plt.Figure:
    """Shards of one experiment on two Dask workers: who wrote which patterns, and the bits.

    The only figure that is not the same at every build: which worker runs which shard is
    Dask's choice. The bits are not: the script checks them against one ``ptyfast.simulate``.
    """
    import os
    import tempfile

    # Dask logs every worker's start and stop at INFO; the site build keeps to warnings (the
    # variable reaches the worker processes, which read it when they import dask).
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import distributed

    import ptyfast.distributed as D

    e, seed = _dask_experiment(), 7
    ref = ptyfast.simulate(e, seed=seed)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp, D.local_client(2, threads=1) as client:
        for shard in (64, 250):
            with distributed.get_task_stream(client) as ts:
                (store,) = D.simulate(
                    e, f"{tmp}/run{shard}.zarr", seed=seed, client=client, shard_size=shard
                )
            ds = ptyfast.open(store)
            assert np.array_equal(ds.diffraction, ref.diffraction), "Dask must give the same bits"
            assert ds.provenance == ref.provenance
            tasks = []
            for t in ts.data:
                parts = str(t["key"]).split("-")
                if parts[:2] == ["ptyfast", "shard"]:
                    tasks.append((int(parts[2]), int(parts[3]), t["worker"]))
            assert sorted(a for a, _, _ in tasks) == list(range(0, len(e.scan), shard)), tasks
            runs[shard] = (sorted(tasks), ds)
    workers = sorted({w for tasks, _ in runs.values() for _, _, w in tasks})
    color = {w: c for w, c in zip(workers, ("tab:blue", "tab:orange", "tab:green"), strict=False)}
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    for row, (tasks, _) in enumerate(runs.values()):
        for lo, hi, w in tasks:
            a.barh(row, hi - lo, left=lo, color=color[w], ec="white", height=0.6)
            a.text((lo + hi) / 2, row, f"{lo}–\n{hi}", ha="center", va="center", fontsize=6)
    for k, w in enumerate(workers):
        a.barh([0], [0], color=color[w], label=f"worker {k + 1} ({w.rsplit(':', 1)[-1]})")
    a.set_yticks(range(len(runs)), [f"shard_size={s}" for s in runs])
    a.set_xlabel("pattern index")
    a.set_title("which worker simulated and wrote which shard (one task each)", fontsize=9)
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    a.invert_yaxis()
    tasks, ds = runs[64]
    show = 256  # the first four shards of 64: the plot stays readable
    total = ds.diffraction[:show].reshape(show, -1).sum(axis=1, dtype=np.int64)
    b.plot(
        ref.diffraction[:show].reshape(show, -1).sum(axis=1, dtype=np.int64),
        "-", color="0.55", lw=1, label="ptyfast.simulate(e, seed=7), one process",
    )  # fmt: skip
    for lo, hi, w in tasks:
        if lo < show:
            b.plot(range(lo, hi), total[lo:hi], "o", color=color[w], ms=2.5)
            b.axvline(lo, color="0.85", lw=0.8, zorder=0)
    b.plot(
        [], [], "o", color="k", ms=2.5, label="the Zarr store (shard_size=64), coloured by worker"
    )
    b.set_xlabel("pattern index")
    b.set_ylabel("counts in the pattern (sum of readings)")
    b.set_title(
        f"counts per pattern, the first {show}: store = single process, bit for bit", fontsize=9
    )
    b.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"ptyfast.distributed.simulate on a LocalCluster of 2 workers: {len(ref)} patterns, "
        f"N = {e.N}, EIGER-like detector; max |store − single process| = 0 for both shard sizes",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- driver


def paths(out: Path = OUT) -> dict[str, Path]:
    return {name: out / f"{name}.png" for name in FIGURES}


CLI_HELP = "ptyfast-simulate-help.txt"
ARTIFACTS: dict[str, Callable[[Path], Path]] = {}


def artifact(name: str) -> Callable[[Callable[[Path], Path]], Callable[[Path], Path]]:
    """Register a generated file other than a figure (texts included by the pages)."""

    def register(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        ARTIFACTS[name] = fn
        return fn

    return register


def _run_cli(args: list[str], cwd: Path) -> str:
    import os
    import subprocess

    env = dict(os.environ, COLUMNS="96")
    res = subprocess.run(
        [sys.executable, "-m", "ptyfast", *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cwd,
    )
    return res.stdout


@artifact(CLI_HELP)
def write_cli_help(out: Path = OUT) -> Path:
    """``ptyfast simulate --help`` of the installed version, for the CLI guide (no drift)."""
    path = out / CLI_HELP
    path.write_text(_run_cli(["simulate", "--help"], out))
    return path


@artifact("ptyfast-simulate-dry-run.txt")
def write_dry_run(out: Path = OUT) -> Path:
    """``ptyfast simulate --dry-run -o run/`` on the defaults, as this machine prints it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        text = _run_cli(["simulate", "--dry-run", "-o", "run/"], Path(tmp))
        assert not any(Path(tmp).iterdir()), "a dry run must write nothing"
    assert "run/ptyfast_simulation.npz (npz)" in text and "diff3d: (10,000 × 64 × 64)" in text
    path = out / "ptyfast-simulate-dry-run.txt"
    path.write_text(text)
    return path


@artifact("cli_preview.png")
def write_cli_preview(out: Path = OUT) -> Path:
    """What ``ptyfast simulate --preview`` writes (PtychoPINN's path, 1,000 patterns), run in
    this process through the command's entry point."""
    import tempfile

    from ptyfast import cli

    path = out / "cli_preview.png"
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["simulate", "-n", "1000", "-o", f"{tmp}/d.npz", "--preview", str(path)]
        assert cli.main([*argv, "--overwrite", "-q", "--no-progress"]) == 0
    return path


@artifact("recipe-example.toml")
def write_recipe_example(out: Path = OUT) -> Path:
    """``ptyfast recipe --example``: the template the campaigns guide shows."""
    from ptyfast.model import recipes

    text = recipes.example()
    assert ptyfast.Campaign.from_dict(recipes.loads(text)).n_experiments >= 1
    path = out / "recipe-example.toml"
    path.write_text(text)
    return path


@artifact("provenance-example.json")
def write_provenance_example(out: Path = OUT) -> Path:
    """The provenance of the README's experiment (recipes only: nothing embedded)."""
    import json

    _, ds = _readme_experiment()
    path = out / "provenance-example.json"
    path.write_text(json.dumps(ds.provenance, indent=2) + "\n")
    return path


def _docstring_markdown(module: object, name: str, out: Path) -> Path:
    """A module docstring past its summary line, as Markdown (the API reference's rewrite)."""
    import importlib.util
    import inspect

    spec = importlib.util.spec_from_file_location(
        "griffe_ext", Path(__file__).with_name("griffe_ext.py")
    )
    assert spec is not None and spec.loader is not None
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    doc = inspect.getdoc(module) or ""
    body = doc.split("\n", 1)[1].lstrip("\n")
    path = out / name
    path.write_text(ext.rewrite(body) + "\n")
    return path


@artifact("detector-physics.md")
def write_detector_physics(out: Path = OUT) -> Path:
    """The physics table of ``ptyfast.model.detector`` (its module docstring), as Markdown."""
    import dataclasses

    from ptyfast.model import detector

    path = _docstring_markdown(detector, "detector-physics.md", out)
    table = path.read_text()
    documented = set(re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE))
    names = set(re.findall(r"`(\w+)`", " ".join(documented)))
    fields = {f.name for f in dataclasses.fields(detector.Detector)} - {"name"}
    assert fields <= names, f"Detector parameters missing from the table: {fields - names}"
    return path


@artifact("provenance-schema.md")
def write_provenance_schema(out: Path = OUT) -> Path:
    """The provenance layout (``ptyfast.model.provenance``'s docstring), as Markdown."""
    from ptyfast.model import provenance

    _, ds = _readme_experiment()
    path = _docstring_markdown(provenance, "provenance-schema.md", out)
    keys = set(re.findall(r"^\| `(\w+)` \|", path.read_text(), re.MULTILINE))
    assert set(ds.provenance) <= keys, f"undocumented provenance keys {set(ds.provenance) - keys}"
    return path


def missing(out: Path = OUT) -> list[str]:
    """Names of the figures (and texts) not yet generated in ``out``."""
    gone = [name for name, p in paths(out).items() if not p.exists()]
    return gone + [name for name in ARTIFACTS if not (out / name).exists()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output directory")
    ap.add_argument("names", nargs="*", choices=[*FIGURES, []], help="figures (default: all)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    plt.rcParams.update({"figure.max_open_warning": 0, "svg.hashsalt": "ptyfast"})
    if not a.names:
        for write in ARTIFACTS.values():
            print(f"wrote {write(a.out)}")
    for name in a.names or FIGURES:
        fig = FIGURES[name]()
        fig.savefig(paths(a.out)[name], **SAVE)
        plt.close(fig)
        print(f"wrote {paths(a.out)[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

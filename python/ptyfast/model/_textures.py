"""Texture recipes behind the object families (one implementation each).

The three PtychoPINN recipes (``lines``, ``grf``, ``points``) are reproduced bit for bit and
draw from a legacy :class:`numpy.random.RandomState` passed in (``rs``), in the reference's
order, so that an integer seed gives the reference's image after ``np.random.seed(seed)``.
:mod:`ptyfast.model.objects` maps them to complex objects; the PtychoPINN-compatible
:mod:`ptyfast.datagen` calls them too (and keeps its own argument checks). The dead-leaves
texture is ptyfast's own and draws from a ``numpy.random.Generator``.

Arguments are assumed checked by the callers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.interpolate import RegularGridInterpolator

from .. import _kernels

__all__ = [
    "bresenham_line",
    "lines_image",
    "gaussian_random_field",
    "grf_image",
    "random_point_counts",
    "points_image",
    "power_law_radii",
    "dead_leaves_image",
]

# --------------------------------------------------------------------------- lines


def bresenham_line(r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of the Bresenham segment from ``(r0, c0)`` to ``(r1, c1)``, ends included,
    in the order of ``skimage.draw.line``."""
    r0, c0, r1, c1 = (int(v) for v in (r0, c0, r1, c1))
    dr, dc = abs(r1 - r0), abs(c1 - c0)
    sr = 1 if r1 - r0 > 0 else -1
    sc = 1 if c1 - c0 > 0 else -1
    steep = dr > dc
    # Walk along the major axis; the minor coordinate advances whenever the decision
    # variable d = 2*minor - major (+2*minor per step, -2*major per advance) is >= 0.
    if steep:
        major0, minor0, s_major, s_minor, d_major, d_minor = r0, c0, sr, sc, dr, dc
    else:
        major0, minor0, s_major, s_minor, d_major, d_minor = c0, r0, sc, sr, dc, dr
    rr = np.empty(d_major + 1, dtype=np.intp)
    cc = np.empty(d_major + 1, dtype=np.intp)
    if d_major > 0:
        i = np.arange(d_major, dtype=np.int64)
        # Number of minor-axis advances before step i (closed form of the decision loop).
        advances = np.zeros(d_major, dtype=np.int64)
        advances[1:] = (2 * d_minor - d_major + 2 * d_minor * (i[1:] - 1)) // (2 * d_major) + 1
        major = major0 + s_major * i
        minor = minor0 + s_minor * advances
        if steep:
            rr[:-1], cc[:-1] = major, minor
        else:
            rr[:-1], cc[:-1] = minor, major
    rr[-1], cc[-1] = r1, c1
    return rr, cc


#: The blur widths of the ``lines`` recipe, whose image is ``G1 + 2·G5 + 5·G10``.
_LINE_SIGMAS = (1, 5, 10)


def _line_blend(g: list[np.ndarray]) -> np.ndarray:
    """``G1 + 2·G5 + 5·G10`` from the three blurs (in :data:`_LINE_SIGMAS` order)."""
    return g[0] + 2 * g[1] + 5 * g[2]


def _line_canvas(
    N: int, nlines: int, rs: np.random.RandomState, lo: int = 0, hi: int | None = None
) -> np.ndarray:
    """The binary image of ``nlines`` Bresenham segments on an ``(N, N)`` canvas, each from
    four integers ``int(N·rs.uniform())`` (``r0, c0, r1, c1``): rows and columns ``lo:hi`` of
    it (default: all)."""
    hi = N if hi is None else hi
    image = np.zeros((hi - lo, hi - lo))
    for _ in range(int(nlines)):
        r0, c0, r1, c1 = (int(N * rs.uniform()) for _ in range(4))
        rr, cc = bresenham_line(r0, c0, r1, c1)
        keep = (rr >= lo) & (rr < hi) & (cc >= lo) & (cc < hi)
        image[rr[keep] - lo, cc[keep] - lo] = 1
    return image


def lines_image(N: int, nlines: int, rs: np.random.RandomState) -> np.ndarray:
    """PtychoPINN's ``mk_lines_img``: ``(N, N, 3)`` float64 ``G1 + 2·G5 + 5·G10``.

    For each segment four integers ``int(N·rs.uniform())`` are drawn (``r0, c0, r1, c1``),
    its Bresenham pixels set to 1; the image is copied into three channels and blurred as a
    stack (``scipy.ndimage.gaussian_filter`` with σ = 1, 5, 10 over all three axes).
    """
    stack = np.zeros((N, N, 3))
    stack[:, :, :] = _line_canvas(N, nlines, rs)[..., None]
    return _line_blend([ndimage.gaussian_filter(stack, sigma) for sigma in _LINE_SIGMAS])


#: How far ``gaussian_filter``'s widest kernel reaches (σ = 10, ``truncate = 4``: 40 pixels).
_LINE_REACH = int(4.0 * _LINE_SIGMAS[-1] + 0.5)


def lines_object(size: int, nlines: int, rs: np.random.RandomState) -> np.ndarray:
    """PtychoPINN's ``'lines'`` object: :func:`lines_image` on a ``2·size`` canvas, centre
    crop ``[size//2 : size//2 + size]``, channel 0, as ``(size, size, 1)`` float64.

    Computed from the part of the canvas the crop depends on, bit for bit: each pass of
    ``gaussian_filter`` (rows, columns, then the three channels) gives a pixel from its
    neighbours within the kernel's reach, summed in the same order wherever it lies, so rows
    and columns are filtered over the crop and a margin of that reach only, and the three
    identical channels as one; the lines are drawn into that part only. A 4096² object took
    ~50 s, most of it blurring a 8192² × 3 stack; now ~8 s.
    """
    half = size // 2
    canvas_n = 2 * size
    r = _LINE_REACH
    if half < r or canvas_n - (half + size) < r:
        # Small objects: the margin would cross the canvas' edge (where the reflection
        # matters); the whole canvas is cheap.
        return lines_image(canvas_n, nlines, rs)[half : half + size, half : half + size, :1]
    sub = _line_canvas(canvas_n, nlines, rs, half - r, half + size + r)
    g = []
    for sigma in _LINE_SIGMAS:
        rows = ndimage.gaussian_filter1d(sub, sigma, axis=0)
        both = ndimage.gaussian_filter1d(rows, sigma, axis=1)[r : r + size, r : r + size]
        # Along the channels every value of a pixel's (reflected) line is the same, with 3
        # channels as with 1: one channel gives channel 0.
        g.append(ndimage.gaussian_filter1d(both[..., None], sigma, axis=2))
    return _line_blend(g)


# --------------------------------------------------------------------------- grf

_BOXLENGTH = 100.0
_INDEXLAW = -0.4


def _centred_frequencies(n: int, spacing: float) -> np.ndarray:
    # Angular frequencies, zero at index n // 2, ascending.
    return np.fft.fftshift(np.fft.fftfreq(n, d=spacing)) * (2 * np.pi)


def gaussian_random_field(
    n: int, rs: np.random.RandomState, *, index: float = _INDEXLAW, boxlength: float = _BOXLENGTH
) -> np.ndarray:
    """Real Gaussian random field with power spectrum ``k**index`` (powerbox 0.9's recipe).

    Draws ``(m, m)`` standard normals then ``(m, m)`` uniforms (``m = n + 1`` for even ``n``,
    else ``n``); see :func:`ptyfast.datagen.grf.gaussian_random_field`.
    """
    even = n % 2 == 0
    m = n + 1 if even else n
    magnitude = rs.normal(0, 1, size=(m, m))
    phase = 2 * np.pi * rs.uniform(size=(m, m))
    # Hermitian symmetry about the centre of the odd grid makes the field real.
    magnitude = (magnitude + magnitude[::-1, ::-1]) / np.sqrt(2)
    phase = (phase - phase[::-1, ::-1]) / 2 + np.pi
    modes = magnitude * (np.cos(phase) + 1j * np.sin(phase))
    if even:
        modes = modes[:-1, :-1]

    volume = boxlength**2
    dx = float(boxlength) / n
    kvec = _centred_frequencies(n, dx)
    k = np.sqrt(np.sum(np.meshgrid(kvec**2, kvec**2, indexing="ij"), axis=0))
    power = k
    nonzero = k != 0
    power[nonzero] = k[nonzero] ** index / volume
    modes = np.sqrt(power) * modes

    # Continuous-transform normalisation (angular-frequency convention), then the phase
    # ramp that puts the real-space box's left edge at -L/2.
    k_length = 2 * np.pi / dx
    field = (k_length * k_length) * np.fft.ifftn(modes) * np.sqrt(1 / (2 * np.pi) ** 2) ** 2
    field = np.fft.ifftshift(field)
    x = _centred_frequencies(n, k_length / n)
    ramp = np.exp(1j * x * (-k_length / 2.0))
    field *= ramp[:, None]
    field *= ramp[None, :]
    return np.real(volume * field)


def grf_image(N: int, rs: np.random.RandomState) -> np.ndarray:
    """PtychoPINN's ``mk_grf`` (``N`` even ``>= 4``): ``(N, N, 1)`` float64 in [0, 1].

    Field on an ``N//2`` grid, min-max normalised, linearly resampled to ``N`` (corner
    aligned), ``gaussian_filter(σ = 1)``.
    """
    boxsize = N // 2
    field = gaussian_random_field(boxsize, rs)
    lo, hi = np.amin(field), np.amax(field)
    field = (field - lo) / (hi - lo)

    axis = np.linspace(0.0, float(boxsize - 1), num=boxsize)
    interp = RegularGridInterpolator(
        (axis, axis), field, method="linear", bounds_error=False, fill_value=None
    )
    query = np.linspace(0.0, float(boxsize - 1), num=N)
    qy, qx = np.meshgrid(query, query, indexing="ij")
    resized = interp(np.stack([qy, qx], axis=-1))
    smooth = ndimage.gaussian_filter(resized, 1)
    return smooth[:, :, None]


# --------------------------------------------------------------------------- points


def random_point_counts(N: int, rs: np.random.RandomState) -> np.ndarray:
    """PtychoPINN's ``randones``: counts of ``int(N·N·0.1)`` pixel hits drawn with
    ``rs.choice(N·N, ...)`` (with replacement), ``(N, N)`` float64."""
    counts = np.zeros((N, N))
    indices = rs.choice(N * N, int(N * N * 0.1))
    np.add.at(counts, np.unravel_index(indices, (N, N)), 1)
    return counts


def points_image(N: int, sigma: float, rs: np.random.RandomState) -> np.ndarray:
    """PtychoPINN's ``mk_points``: ``img = G_σ(counts); img + 5·G_10σ(img)``, ``(N, N, 1)``."""
    img = random_point_counts(N, rs)
    img = ndimage.gaussian_filter(img, sigma)
    img = img + ndimage.gaussian_filter(img, 10 * sigma) * 5
    return img[:, :, None]


# --------------------------------------------------------------------------- dead leaves


def power_law_radii(
    u: np.ndarray, radius_min: float, radius_max: float, alpha: float
) -> np.ndarray:
    """Radii with density ``∝ r^(−alpha)`` on ``[radius_min, radius_max]`` from uniforms
    ``u`` in [0, 1) by the inverse CDF."""
    if radius_max == radius_min:
        return np.full(u.shape, radius_min)
    if alpha == 1.0:
        return radius_min * (radius_max / radius_min) ** u
    e = 1.0 - alpha
    lo, hi = radius_min**e, radius_max**e
    return (lo + u * (hi - lo)) ** (1.0 / e)


#: Leaves drawn per batch (fixed: it sets the order of the draws, hence the image).
DEAD_LEAVES_BATCH = 1024


def dead_leaves_image(
    shape: tuple[int, int],
    radius_min: float,
    radius_max: float,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Dead-leaves texture: occluding discs, the stationary (infinitely many leaves) image.

    Leaves are generated from the top of the pile down: each covers, of the pixel centres
    inside its disc (``|p − c| <= r``), those that no earlier (higher) leaf covers; the
    process stops once every pixel is covered, which is an exact sample of the stationary
    dead-leaves model. Per batch of :data:`DEAD_LEAVES_BATCH` leaves the draws are, in order:
    centre ``x`` (column) and centre ``y`` (row), each uniform over the image dilated by
    ``radius_max``; a uniform for the radius (:func:`power_law_radii`); the leaf's value,
    uniform in [0, 1).

    Returns the ``(H, W)`` float64 image and the number of leaves drawn.
    """
    h, w = shape
    out = np.full((h, w), np.nan)
    uncovered = np.ones((h, w), dtype=bool)
    remaining = h * w
    drawn = 0
    pad = radius_max
    while remaining:
        b = DEAD_LEAVES_BATCH
        cx = rng.uniform(-pad, (w - 1) + pad, b)
        cy = rng.uniform(-pad, (h - 1) + pad, b)
        radii = power_law_radii(rng.random(b), radius_min, radius_max, alpha)
        values = rng.random(b)
        remaining, used = _kernels.paint_leaves(out, uncovered, cx, cy, radii, values, remaining)
        if used is not None:
            return out, drawn + used
        drawn += b
    return out, drawn  # pragma: no cover - an image has at least one pixel

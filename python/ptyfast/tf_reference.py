"""TensorFlow executable reference of PtychoPINN's grid simulation (``diffsim.mk_simdata``).

This module re-implements, with TensorFlow operations and explicit arguments instead of the
reference's global ``params.cfg``, the *grid* data-generation path of PtychoPINN: nominal
coordinates from ``tf.image.extract_patches`` on index images, nested patch extraction
(``bigN`` solution regions at stride ``outer_offset // 2``, then ``gridsize x gridsize``
inner ``N x N`` patches at stride ``offset``), bilinear translation of the regions by the
channel offsets with zero fill, the unitary far-field amplitude and Poisson photon noise.
It exists so that the Rust-backed :func:`ptyfast.diffsim.mk_simdata` can be tested for
equality against an implementation written the way the reference writes it; it is not the
fast path. Importing it imports TensorFlow; nothing else in ptyfast imports it eagerly.

Conventions (README, "Conventions"): arrays are ``(batch, N, N, C)`` with channel ``c`` at
grid ``(row, col) = (c // gridsize, c % gridsize)`` (row along ``y``); coordinates are in
object pixels with ``x`` = column (second image axis) and ``y`` = row; offsets carry
``[x, y]`` on axis 2; the far-field amplitude is ``|fftshift(fft2(psi))| / N`` (no
``ifftshift`` before the FFT, zero frequency at ``[N//2, N//2]``, unitary so that
``sum(A**2) == sum(|psi|**2)``); diffraction data are amplitudes, not intensities.

Reference behaviours reproduced (COMPATIBILITY.md lists what ptyfast keeps and changes):

* outer stride ``outer_offset // 2``; ``G1 = (size - bigN) // (outer_offset // 2) + 1``
  regions per axis, row-major, object-major over the stack;
* nominal offsets = region centre - patch centre (float32 means of index images);
* regular-grid path (exact pixel copies, input dtype kept, e.g. float64) when every true
  offset is zero, i.e. ``gridsize == 1`` without jitter; otherwise the regions are cast to
  float32, translated bilinearly by their channel's offset (source pixel
  ``x - tx`` computed in float32, corners outside the region contribute zero) and
  centre-cropped by ``(bigN - N) // 2``;
* ``norm_Y_I`` = mean over regions of the max over that region's patches; ``Y_I`` divided
  by it; ``s = sqrt(nphotons / mean_i sum_xy (Y_I,i |P|)**2)`` in ``Y_I``'s dtype;
* ``psi = (s * Y_I exp(i Y_phi)) * P`` in complex64; ``X = A_obs / s`` (float64 when ``s``
  is a float64 NumPy scalar, as NumPy promotion gives in the reference); returned ``Y_I``
  is ``|psi| / s`` (float32) and ``Y_phi`` is the *pre-probe* phase, unchanged;
* ``dummy_phi`` for ``set_phi``; ``YY_full`` complex64 and not normalised.

Deliberate differences, all documented on the functions: randomness comes from explicit
seeds through TensorFlow's *stateless* generators (the reference draws from TensorFlow's
global RNG, so only the statistics can match, never the draws); complex images are
converted to complex64; ``gridsize == 1`` with non-zero jitter keeps the whole ``N x N``
translated region (the reference's symmetric crop by 0 yields an empty slice and then fails);
an odd ``(gridsize - 1) * offset`` with translation raises instead of mis-reshaping.

Every public function takes and returns NumPy arrays (TensorFlow tensors are accepted as
inputs) and works on a GPU when TensorFlow sees one; the Poisson sampler has a CPU kernel
only, which TensorFlow places on the CPU by itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from ._kernels import SeedLike, resolve_seed
from ._kernels import _positive_float as _positive
from ._kernels import _positive_int as _int

__all__ = [
    "n_regions_per_axis",
    "extract_coords",
    "extract_grid_patches",
    "diffract",
    "observe_amplitude",
    "scale_nphotons",
    "dummy_phi",
    "illuminate_and_diffract",
    "mk_simdata",
]

#: Patterns per Poisson stream (and per diffraction chunk). Pattern ``i`` draws from the
#: stateless stream ``(seed, 1, i // _POISSON_BLOCK)``, so draws depend on the seed only.
_POISSON_BLOCK = 1024
#: Solution regions translated per chunk (bounds memory; results do not depend on it).
_REGION_BLOCK = 1024
_STREAM_POISSON = 1
_STREAM_JITTER = 2


# --------------------------------------------------------------------------- validation


def _geometry(
    size: int, outer_offset: int, N: int, gridsize: int, offset: int
) -> tuple[int, int, int]:
    """Validated ``(bigN, outer stride, G1)``."""
    N = _int("N", N, minimum=1)
    gridsize = _int("gridsize", gridsize, minimum=1)
    offset = _int("offset", offset, minimum=1)
    outer_offset = _int("outer_offset", outer_offset, minimum=2)
    size = _int("size", size, minimum=1)
    big_n = N + (gridsize - 1) * offset
    if size < big_n:
        raise ValueError(
            f"size must be >= bigN = N + (gridsize - 1) * offset = {big_n}, got {size}"
        )
    stride = outer_offset // 2
    return big_n, stride, (size - big_n) // stride + 1


def _image_stack(name: str, a: Any) -> tf.Tensor:
    """``(n, size, size, 1)`` tensor; real dtypes are kept, complex becomes complex64."""
    if isinstance(a, tf.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        t = tf.convert_to_tensor(arr)
    if t.dtype.is_complex:
        t = tf.cast(t, tf.complex64)
    elif t.dtype.is_integer or t.dtype == tf.bool:
        t = tf.cast(t, tf.float64)
    if t.shape.rank == 3:
        t = t[..., None]
    if t.shape.rank != 4 or t.shape[3] != 1 or t.shape[1] != t.shape[2] or t.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, size, size, 1), got {tuple(t.shape)}")
    if not bool(tf.reduce_all(tf.math.is_finite(tf.abs(t)))):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return t


def _offsets(name: str, a: Any, shape: tuple[int, ...]) -> tf.Tensor:
    t = tf.cast(tf.convert_to_tensor(a), tf.float32)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if not bool(tf.reduce_all(tf.math.is_finite(t))):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return t


def _probe(probe: Any, N: int | None = None) -> tf.Tensor:
    t = probe if isinstance(probe, tf.Tensor) else tf.convert_to_tensor(np.asarray(probe))
    if t.shape.rank == 3 and t.shape[2] == 1:
        t = t[..., 0]
    if N is not None and tuple(t.shape) != (N, N):
        raise ValueError(f"probe must be (N, N) = ({N}, {N}), got {tuple(t.shape)}")
    if t.shape.rank != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"probe must be (N, N) or (N, N, 1), got {tuple(t.shape)}")
    if not (t.dtype.is_floating or t.dtype.is_complex):
        t = tf.cast(t, tf.float64)
    return t


def _key(seed: int, *path: int) -> tf.Tensor:
    """Stateless-RNG key of the stream ``(seed, *path)``."""
    key = tf.constant([seed >> 32, seed & 0xFFFFFFFF], dtype=tf.int64)
    for p in path:
        key = tf.random.experimental.stateless_fold_in(key, p)
    return key


def _np_scalar(t: Any) -> np.generic:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)[()]


def _given_scale(v: Any) -> Any:
    """A given ``intensity_scale``, validated; tensors become NumPy scalars."""
    if v is None:
        return None
    _positive("intensity_scale", v)
    return _np_scalar(v) if hasattr(v, "numpy") else v


# --------------------------------------------------------------------------- format helpers


def _extract(img: tf.Tensor, size: int, stride: int) -> tf.Tensor:
    """``tf.image.extract_patches`` of ``size x size`` windows, VALID padding."""
    return tf.image.extract_patches(
        img, [1, size, size, 1], [1, stride, stride, 1], [1, 1, 1, 1], padding="VALID"
    )


def _grid_to_channel(grid: tf.Tensor, gridsize: int) -> tf.Tensor:
    """``(B, g, g, N, N, 1)`` to ``(B, N, N, g*g)``, channel ``row * g + col``."""
    img = tf.transpose(grid, [0, 3, 4, 1, 2, 5])
    return tf.reshape(img, (-1, img.shape[1], img.shape[2], gridsize * gridsize))


def _flat_to_channel(flat: tf.Tensor, gridsize: int) -> tf.Tensor:
    """Flat ``(B*C, N, N, 1)`` to channel ``(B, N, N, C)``: ``togrid`` + ``grid_to_channel``."""
    n = flat.shape[1]
    return _grid_to_channel(tf.reshape(flat, (-1, gridsize, gridsize, n, n, 1)), gridsize)


def _channel_to_flat(ch: tf.Tensor) -> tf.Tensor:
    """``(B, h, w, C)`` to ``(B*C, h, w, 1)``, ``C`` the fastest index."""
    h, w = ch.shape[1], ch.shape[2]
    return tf.reshape(tf.transpose(ch, [0, 3, 1, 2]), (-1, h, w, 1))


def _regions(img: tf.Tensor, big_n: int, stride: int) -> tf.Tensor:
    """Outer solution regions ``(n * G1**2, bigN, bigN, 1)``, object-major then row-major."""
    return tf.reshape(_extract(img, big_n, stride), (-1, big_n, big_n, 1))


# --------------------------------------------------------------------------- coordinates


def n_regions_per_axis(size: int, outer_offset: int, *, N: int, gridsize: int, offset: int) -> int:
    """Number ``G1`` of solution regions per axis of a ``size x size`` object.

    ``G1 = (size - bigN) // (outer_offset // 2) + 1`` with ``bigN = N + (gridsize-1)*offset``:
    the reference's outer stride is *half* the nominal ``outer_offset``.

    Parameters
    ----------
    size : int
        Object side length in pixels.
    outer_offset : int
        Nominal outer grid spacing (>= 2); the stride used is ``outer_offset // 2``.
    N, gridsize, offset : int
        Patch size, patches per region side, inner stride in pixels.

    Returns
    -------
    int
        ``G1``; a stack of ``n`` objects gives ``n * G1**2`` regions and
        ``n * G1**2 * gridsize**2`` patterns.

    Raises
    ------
    ValueError, TypeError
        For non-integer or out-of-range arguments, or ``size < bigN``.

    Examples
    --------
    >>> n_regions_per_axis(392, 8, N=64, gridsize=2, offset=4)
    82
    """
    return _geometry(size, outer_offset, N, gridsize, offset)[2]


def _coords_tf(
    size: int,
    repeats: int,
    outer_offset: int,
    N: int,
    gridsize: int,
    offset: int,
    coord_type: str,
) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
    big_n, stride, _ = _geometry(size, outer_offset, N, gridsize, offset)
    r = tf.range(size, dtype=tf.float32)
    xx, yy = tf.meshgrid(r, r)  # xx varies along columns (x), yy along rows (y)

    def centres(z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        regions = _regions(z[None, ..., None], big_n, stride)
        outer = tf.reduce_mean(regions, axis=(1, 2))  # (G1**2, 1)
        inner = []
        # The inner means are per region, so chunking over regions changes nothing.
        for i in range(0, regions.shape[0], _REGION_BLOCK):
            blk = regions[i : i + _REGION_BLOCK]
            grid = tf.reshape(_extract(blk, N, offset), (-1, gridsize, gridsize, N, N, 1))
            inner.append(tf.reduce_mean(_grid_to_channel(grid, gridsize), axis=(1, 2)))
        inner_c = tf.concat(inner, axis=0)  # (G1**2, C)
        # Repeated region-major ("patch-major"), as the reference does.
        rep = lambda t: tf.repeat(t, repeats, axis=0)[:, None, None, :]  # noqa: E731
        return rep(inner_c), rep(outer)

    ix, ix_outer = centres(xx)
    iy, iy_outer = centres(yy)
    if coord_type == "global":
        return ix, iy
    if coord_type != "offsets":
        raise ValueError(f"coord_type must be 'offsets' or 'global', got {coord_type!r}")
    return tf.stack([ix_outer - ix, iy_outer - iy], axis=2)[:, :, :, 0, :]


def extract_coords(
    size: int,
    repeats: int,
    outer_offset: int,
    *,
    N: int,
    gridsize: int,
    offset: int,
    coord_type: str = "offsets",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Nominal grid coordinates in channel format, as the reference's ``extract_coords``.

    The index images ``x = column``, ``y = row`` (float32) are cut into ``bigN x bigN``
    regions at stride ``outer_offset // 2`` and into the nested ``N x N`` patches; every
    coordinate is the float32 mean over its window.

    Parameters
    ----------
    size : int
        Object side length.
    repeats : int
        Number of objects ``n``; each region's row is repeated ``n`` times consecutively
        (region-major, while image data are object-major: the two orders agree only because
        the ``'offsets'`` rows are all identical).
    outer_offset : int
        Nominal outer spacing; stride ``outer_offset // 2``.
    N, gridsize, offset : int
        Patch size, patches per region side, inner stride.
    coord_type : {'offsets', 'global'}
        ``'offsets'``: region centre - patch centre. ``'global'``: patch centres.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        ``'offsets'``: float32 ``(n * G1**2, 1, 2, C)``, ``[x, y]`` on axis 2, channel ``c``
        at grid ``(c // gridsize, c % gridsize)``. ``'global'``: ``(ix, iy)``, each float32
        ``(n * G1**2, 1, 1, C)``.

    Raises
    ------
    ValueError, TypeError
        For invalid geometry or ``coord_type``.

    Examples
    --------
    >>> off = extract_coords(128, 1, 16, N=64, gridsize=2, offset=4)
    >>> off.shape, off[0, 0, :, 1].tolist()
    ((64, 1, 2, 4), [-2.0, 2.0])
    """
    repeats = _int("repeats", repeats, minimum=1)
    out = _coords_tf(size, repeats, outer_offset, N, gridsize, offset, coord_type)
    if isinstance(out, tuple):
        return out[0].numpy(), out[1].numpy()
    return out.numpy()


# --------------------------------------------------------------------------- translation


@tf.function(jit_compile=True)
def _translate_zero_fill(imgs: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Bilinear translation of real ``(B, H, W, 1)`` images by ``shifts`` ``(B, 2) = [tx, ty]``.

    ``out[r, c] = bilinear(img; row r - ty, col c - tx)``; the source coordinate is computed
    in the image's (float) dtype and each of the four corners outside ``[0, W-1] x [0, H-1]``
    contributes zero. XLA-compiled, like the reference's warp.
    """
    dt = imgs.dtype
    b = tf.shape(imgs)[0]
    h = tf.shape(imgs)[1]
    w = tf.shape(imgs)[2]
    shifts = tf.cast(shifts, dt)
    tx = tf.reshape(-shifts[:, 0], (-1, 1, 1))
    ty = tf.reshape(-shifts[:, 1], (-1, 1, 1))
    sx = tf.range(w, dtype=dt)[None, None, :] + tx + tf.zeros((1, h, 1), dt)
    sy = tf.range(h, dtype=dt)[None, :, None] + ty + tf.zeros((1, 1, w), dt)
    x0 = tf.floor(sx)
    y0 = tf.floor(sy)
    x1 = x0 + 1.0
    y1 = y0 + 1.0
    wmax = tf.cast(w - 1, dt)
    hmax = tf.cast(h - 1, dt)
    flat = tf.reshape(imgs, (b, -1))

    def corner(xc: tf.Tensor, yc: tf.Tensor) -> tf.Tensor:
        inside = (xc >= 0.0) & (xc <= wmax) & (yc >= 0.0) & (yc <= hmax)
        xi = tf.cast(tf.clip_by_value(xc, 0.0, wmax), tf.int32)
        yi = tf.cast(tf.clip_by_value(yc, 0.0, hmax), tf.int32)
        idx = tf.reshape(yi * w + xi, (b, -1))
        vals = tf.reshape(tf.gather(flat, idx, batch_dims=1), (b, h, w))
        return vals * tf.cast(inside, dt)

    wx = sx - x0
    wy = sy - y0
    out = (
        (1.0 - wx) * (1.0 - wy) * corner(x0, y0)
        + wx * (1.0 - wy) * corner(x1, y0)
        + (1.0 - wx) * wy * corner(x0, y1)
        + wx * wy * corner(x1, y1)
    )
    return out[..., None]


def _translate(imgs: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    if imgs.dtype.is_complex:  # real and imaginary parts separately, as the reference
        re = _translate_zero_fill(tf.math.real(imgs), shifts)
        im = _translate_zero_fill(tf.math.imag(imgs), shifts)
        return tf.complex(re, im)
    # The reference's Keras Translation layer autocasts float inputs to float32.
    return _translate_zero_fill(tf.cast(imgs, tf.float32), shifts)


def _grid_patches_tf(
    yy: tf.Tensor,
    true_offsets: tf.Tensor,
    outer_offset: int,
    N: int,
    gridsize: int,
    offset: int,
) -> tf.Tensor:
    """Channel-format patches ``(n * G1**2, N, N, C)`` of the stack ``yy``."""
    size = yy.shape[1]
    big_n, stride, _ = _geometry(size, outer_offset, N, gridsize, offset)
    C = gridsize * gridsize
    regions = _regions(yy, big_n, stride)
    if bool(tf.reduce_all(true_offsets == 0.0)):
        # Regular grid: exact pixel copies, the input dtype is kept (float64 stays float64).
        grid = tf.reshape(_extract(regions, N, offset), (-1, gridsize, gridsize, N, N, 1))
        return _grid_to_channel(grid, gridsize)
    if (big_n - N) % 2:
        raise ValueError(
            "translated extraction needs an even (gridsize - 1) * offset, got "
            f"{big_n - N}; the reference mis-reshapes the odd-sized crop"
        )
    clip = (big_n - N) // 2
    # (B, 1, 2, C) -> (B * C, 2), channel fastest, [x, y].
    shifts = tf.reshape(tf.transpose(true_offsets[:, 0], [0, 2, 1]), (-1, 2))
    out = []
    for i in range(0, regions.shape[0], _REGION_BLOCK):
        blk = tf.repeat(regions[i : i + _REGION_BLOCK], C, axis=0)
        moved = _translate(blk, shifts[i * C : (i + _REGION_BLOCK) * C])
        out.append(moved[:, clip : clip + N, clip : clip + N, :])
    flat = tf.concat(out, axis=0)
    return _flat_to_channel(flat, gridsize)


def extract_grid_patches(
    YY: Any,
    outer_offset: int,
    *,
    N: int,
    gridsize: int,
    offset: int,
    jitter: Any = None,
) -> np.ndarray:
    """Grid patches of an object stack, as the reference's ``preprocess_objects`` extracts them.

    The stack is cut into ``bigN x bigN`` regions (``bigN = N + (gridsize-1)*offset``) at
    stride ``outer_offset // 2``. If every true offset is zero (``gridsize == 1`` without
    jitter) the ``N x N`` inner patches at stride ``offset`` are copied exactly and the input
    dtype is kept. Otherwise each region is replicated once per channel, cast to float32 and
    translated bilinearly by that channel's true offset (zero fill), then the centre
    ``N x N`` is cropped; with the nominal integer offsets this equals the exact copies, and
    jitter brings zeros in from outside the region.

    Parameters
    ----------
    YY : array_like, (n, size, size, 1) or (n, size, size), real or complex
        Object stack (amplitude, phase or complex field). Complex input is converted to
        complex64 and its real and imaginary parts are translated separately.
    outer_offset : int
        Nominal outer spacing; stride ``outer_offset // 2``.
    N, gridsize, offset : int
        Patch size, patches per region side, inner stride.
    jitter : array_like, (n * G1**2, 1, 2, C), optional
        Added to the nominal offsets to give the true offsets used for extraction. A patch
        of channel ``(i, j)`` then samples ``region[r + i*offset - jy, c + j*offset - jx]``.

    Returns
    -------
    numpy.ndarray, (n * G1**2, N, N, C)
        Channel ``c`` is the patch at grid ``(c // gridsize, c % gridsize)`` of its region;
        regions are object-major then row-major. Real input: its dtype on the regular path,
        float32 when translated; complex input: complex64.

    Raises
    ------
    ValueError, TypeError
        For bad shapes, non-finite values, invalid geometry, or an odd
        ``(gridsize - 1) * offset`` on the translated path.

    Notes
    -----
    With ``gridsize == 1`` and non-zero jitter, ``bigN == N`` and the crop is empty in the
    reference (its symmetric ``[clip:-clip]`` slice with ``clip == 0``), which then fails;
    here the whole translated ``N x N`` region is kept.

    Examples
    --------
    >>> img = np.arange(128 * 128, dtype=np.float32).reshape(1, 128, 128, 1)
    >>> p = extract_grid_patches(img, 16, N=64, gridsize=2, offset=4)
    >>> p.shape, p[0, 0, 0].tolist()
    ((64, 64, 64, 4), [0.0, 4.0, 512.0, 516.0])
    """
    yy = _image_stack("YY", YY)
    n, size = yy.shape[0], yy.shape[1]
    coords = _coords_tf(size, n, outer_offset, N, gridsize, offset, "offsets")
    true = coords if jitter is None else coords + _offsets("jitter", jitter, tuple(coords.shape))
    return _grid_patches_tf(yy, true, outer_offset, N, gridsize, offset).numpy()


# --------------------------------------------------------------------------- diffraction


@tf.function
def _diffract_tf(psi: tf.Tensor) -> tf.Tensor:
    n = psi.shape[1]
    f = tf.signal.fft2d(tf.cast(psi, tf.complex64)[..., 0])
    intensity = tf.math.real(tf.math.conj(f) * f) / (n * n)
    return tf.sqrt(tf.signal.fftshift(intensity, (-2, -1)))[..., None]


def _observe_tf(amplitude: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    rate = amplitude**2
    counts = tf.random.stateless_poisson(tf.shape(rate), seed=key, lam=rate, dtype=rate.dtype)
    return tf.sqrt(counts)


def diffract(psi: Any) -> np.ndarray:
    """Far-field amplitude ``|fftshift(fft2(psi))| / N``, as the reference's ``pad_and_diffract``.

    Computed as ``sqrt(fftshift(real(conj(F) F) / N**2))`` with ``F = fft2d(psi)`` in
    complex64, without an ``ifftshift`` before the FFT (``pad=False``).

    Parameters
    ----------
    psi : array_like, (B, N, N, 1), complex
        Exit waves; cast to complex64.

    Returns
    -------
    numpy.ndarray, float32, (B, N, N, 1)
        Amplitudes, zero frequency at ``[N//2, N//2]``; ``sum(A**2) == sum(|psi|**2)``.

    Raises
    ------
    ValueError
        If ``psi`` is not ``(B, N, N, 1)``.

    Examples
    --------
    >>> a = diffract(np.ones((1, 8, 8, 1), np.complex64))
    >>> float(a[0, 4, 4, 0])
    8.0
    """
    t = tf.convert_to_tensor(psi)
    if t.shape.rank != 4 or t.shape[3] != 1 or t.shape[1] != t.shape[2]:
        raise ValueError(f"psi must have shape (B, N, N, 1), got {tuple(t.shape)}")
    return _diffract_tf(tf.cast(t, tf.complex64)).numpy()


def observe_amplitude(amplitude: Any, seed: SeedLike = None, *, stream: int = 0) -> np.ndarray:
    """Noisy amplitude ``sqrt(Poisson(amplitude**2))``, as the reference's ``observe_amplitude``.

    Parameters
    ----------
    amplitude : array_like, float
        Expected amplitudes (any shape); the Poisson rate is ``amplitude**2`` in float32
        (float64 input stays float64).
    seed : int, numpy.random.Generator or None
        Seed of the TensorFlow stateless stream ``(seed, 1, stream)``. The reference draws
        from TensorFlow's global RNG instead, so only the distribution matches.
    stream : int
        Stream index; :func:`illuminate_and_diffract` uses block ``i // 1024`` for pattern
        ``i``.

    Returns
    -------
    numpy.ndarray
        Square roots of integer counts, same shape and dtype as ``amplitude``. A zero rate
        gives zero.

    Raises
    ------
    ValueError
        If ``amplitude`` has negative or non-finite values.

    Examples
    --------
    >>> a = observe_amplitude(np.full((4, 4), 3.0, np.float32), seed=0)
    >>> bool(np.allclose(a**2, np.round(a**2)))
    True
    """
    t = tf.convert_to_tensor(amplitude)
    if not t.dtype.is_floating:
        t = tf.cast(t, tf.float32)
    if not bool(tf.reduce_all(tf.math.is_finite(t) & (t >= 0))):
        raise ValueError("amplitude must be finite and non-negative")
    stream = _int("stream", stream, minimum=0)
    key = _key(resolve_seed(seed), _STREAM_POISSON, stream)
    return _observe_tf(t, key).numpy()


def _scale_nphotons_tf(x: tf.Tensor, nphotons: float) -> tf.Tensor:
    mean_photons = tf.reduce_mean(tf.reduce_sum(x**2, axis=(1, 2)))
    return tf.sqrt(tf.constant(nphotons, dtype=x.dtype) / mean_photons)


def scale_nphotons(x: Any, nphotons: float) -> np.generic:
    """``sqrt(nphotons / mean(sum_{axes 1,2} x**2))``, as the reference's ``scale_nphotons``.

    Parameters
    ----------
    x : array_like, (B, N, N, ...) float
        Amplitudes; the mean runs over the batch and any trailing channel axis.
    nphotons : float
        Target mean photon count per pattern.

    Returns
    -------
    numpy scalar
        In ``x``'s dtype (float32 or float64).

    Raises
    ------
    ValueError, TypeError
        If ``nphotons`` is not a positive finite number or ``x`` has fewer than 3 axes.

    Examples
    --------
    >>> float(scale_nphotons(np.ones((2, 4, 4, 1), np.float32), 64.0))
    2.0
    """
    nphotons = _positive("nphotons", nphotons)
    t = tf.convert_to_tensor(x)
    if t.shape.rank is None or t.shape.rank < 3:
        raise ValueError(f"x must have at least 3 axes (B, N, N, ...), got {tuple(t.shape)}")
    if not t.dtype.is_floating:
        t = tf.cast(t, tf.float32)
    return _np_scalar(_scale_nphotons_tf(t, nphotons))


def _dummy_phi_tf(y: tf.Tensor) -> tf.Tensor:
    pi = tf.constant(math.pi, tf.float32)
    arg = (y - tf.reduce_max(y) / 2) / (3 * tf.reduce_mean(y))
    return pi * tf.cast(tf.math.tanh(arg), tf.float32)


def dummy_phi(Y_I: Any) -> np.ndarray:
    """Synthetic phase ``pi * tanh((Y - max(Y)/2) / (3 mean(Y)))`` used for ``set_phi``.

    Parameters
    ----------
    Y_I : array_like, float
        Amplitude stack; max and mean are global over the whole array and computed in its
        dtype.

    Returns
    -------
    numpy.ndarray, float32
        Same shape as ``Y_I``.

    Examples
    --------
    >>> dummy_phi(np.array([1.0, 1.0])).tolist()
    [0.5188039541244507, 0.5188039541244507]
    """
    t = tf.convert_to_tensor(Y_I)
    if not t.dtype.is_floating:
        t = tf.cast(t, tf.float64)
    return _dummy_phi_tf(t).numpy()


def _illuminate_tf(
    y_i: tf.Tensor,
    y_phi: tf.Tensor,
    probe: tf.Tensor,
    nphotons: float,
    intensity_scale: Any,
    poisson: bool,
    seed: int,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, np.generic | float]:
    probe3 = probe[..., None]
    if intensity_scale is None:
        p_abs = tf.cast(tf.abs(probe3), y_i.dtype)
        s: Any = _np_scalar(_scale_nphotons_tf(y_i * p_abs[None], nphotons))
        if not (s > 0 and np.isfinite(s)):
            raise ValueError(f"intensity_scale must be positive and finite, got {s}")
    else:
        s = intensity_scale
    # s as a complex64 factor (the reference multiplies a NumPy scalar into a complex64
    # tensor), applied before the probe.
    obj = tf.cast(y_i, tf.complex64) * tf.exp(1j * tf.cast(y_phi, tf.complex64))
    psi = tf.cast(s, tf.complex64) * obj
    psi = psi * tf.cast(probe3[None], tf.complex64)
    amps = []
    for blk, i in enumerate(range(0, psi.shape[0], _POISSON_BLOCK)):
        a = _diffract_tf(psi[i : i + _POISSON_BLOCK])
        if poisson:
            a = _observe_tf(a, _key(seed, _STREAM_POISSON, blk))
        amps.append(a)
    a_obs = tf.concat(amps, axis=0)
    # NumPy's promotion in the reference: float32 array / s gives float64 iff s is a
    # float64 NumPy scalar (a Python float is weak and keeps float32).
    x_dtype = tf.as_dtype(np.result_type(np.float32, s))
    x = tf.cast(a_obs, x_dtype) / tf.cast(s, x_dtype)
    y_i_out = tf.abs(psi) / tf.cast(s, tf.float32)
    return x, y_i_out, y_phi, s


def illuminate_and_diffract(
    Y_I: Any,
    Y_phi: Any,
    probe: Any,
    *,
    nphotons: float,
    intensity_scale: Any = None,
    poisson: bool = True,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.generic | float]:
    """Illuminate object patches with the probe and diffract, as the reference does.

    ``s = sqrt(nphotons / mean_i sum_xy (Y_I,i * |P|)**2)`` (in ``Y_I``'s dtype, ``|P|`` cast
    to it) unless ``intensity_scale`` is given; ``psi = (s * Y_I exp(i Y_phi)) * P`` in
    complex64; ``A = |fftshift(fft2(psi))| / N``; ``A_obs = sqrt(Poisson(A**2))`` when
    ``poisson``; ``X = A_obs / s``. Noise-free, ``X = |fftshift(fft2(O P))| / N`` does not
    depend on ``s`` or ``nphotons``; with noise the expected total counts per pattern,
    averaged over the dataset, equal ``nphotons``.

    Parameters
    ----------
    Y_I, Y_phi : array_like, (B, N, N, 1) float
        Pre-probe amplitude and phase patches (flat format).
    probe : array_like, (N, N) or (N, N, 1), real or complex
    nphotons : float
        Mean photon count per pattern that fixes ``s``.
    intensity_scale : float or numpy scalar, optional
        Use this ``s`` instead of computing it. Its NumPy type decides ``X``'s dtype.
    poisson : bool
        Draw Poisson noise (the reference always does in the data path).
    seed : int, numpy.random.Generator or None
        Pattern ``i`` draws from the stateless stream ``(seed, 1, i // 1024)``.

    Returns
    -------
    X : numpy.ndarray, (B, N, N, 1)
        ``A_obs / s``; float32, or float64 when ``s`` is a float64 NumPy scalar (gridsize 1
        with float64 objects in the reference).
    Y_I : numpy.ndarray, float32, (B, N, N, 1)
        ``|psi| / s = |O| |P|``, the amplitude *after* the probe.
    Y_phi : numpy.ndarray, (B, N, N, 1)
        The input phase unchanged (the *pre-probe* phase, even for a complex probe).
    intensity_scale : numpy scalar or float
        ``s``; computed ones are NumPy scalars in ``Y_I``'s dtype, given ones are returned
        as given.

    Raises
    ------
    ValueError, TypeError
        For mismatched shapes, a probe that is not ``(N, N)``, non-positive ``nphotons`` or
        ``intensity_scale``, or a computed ``s`` that is zero or not finite.

    Examples
    --------
    >>> yi = np.ones((2, 8, 8, 1), np.float32)
    >>> X, YI, Yphi, s = illuminate_and_diffract(yi, 0 * yi, np.ones((8, 8)),
    ...                                           nphotons=64.0, poisson=False)
    >>> float(s), float(X[0, 4, 4, 0])
    (1.0, 8.0)
    """
    y_i = tf.convert_to_tensor(Y_I)
    y_phi = tf.convert_to_tensor(Y_phi)
    if y_i.shape.rank != 4 or y_i.shape[3] != 1 or y_i.shape[1] != y_i.shape[2]:
        raise ValueError(f"Y_I must have shape (B, N, N, 1), got {tuple(y_i.shape)}")
    if tuple(y_phi.shape) != tuple(y_i.shape):
        raise ValueError(f"Y_phi must have shape {tuple(y_i.shape)}, got {tuple(y_phi.shape)}")
    if not y_i.dtype.is_floating:
        y_i = tf.cast(y_i, tf.float64)
    if not y_phi.dtype.is_floating:
        y_phi = tf.cast(y_phi, tf.float64)
    p = _probe(probe, y_i.shape[1])
    nphotons = _positive("nphotons", nphotons)
    intensity_scale = _given_scale(intensity_scale)
    x, yi, yphi, s = _illuminate_tf(
        y_i, y_phi, p, nphotons, intensity_scale, bool(poisson), resolve_seed(seed)
    )
    return x.numpy(), yi.numpy(), yphi.numpy(), s


# --------------------------------------------------------------------------- mk_simdata


def mk_simdata(
    YY_I: Any,
    YY_phi: Any,
    probe: Any,
    outer_offset: int,
    *,
    N: int,
    gridsize: int,
    offset: int,
    nphotons: float,
    intensity_scale: Any = None,
    poisson: bool = True,
    seed: SeedLike = None,
    set_phi: bool = False,
    jitter_scale: float | None = None,
) -> dict[str, Any]:
    """Grid-mode dataset from an object stack, as the reference's ``diffsim.mk_simdata``.

    Takes the objects as input (object generation is NumPy code elsewhere in ptyfast; the
    reference's ``sim_object_image`` branch for ``YY_I=None`` is not part of this function),
    then follows the reference's steps:

    1. ``set_phi`` and no ``YY_phi``: ``YY_phi = dummy_phi(YY_I)`` (float32).
    2. Nominal offsets from :func:`extract_coords`; with ``jitter_scale`` (even 0.0) the true
       offsets are ``nominal + jitter_scale * N(0, 1)`` (float32).
    3. Patches of ``YY_I`` and ``YY_phi`` (zeros of ``YY_I``'s dtype when absent) by
       :func:`extract_grid_patches` on the true offsets.
    4. ``norm_Y_I`` = mean over regions of the max over that region's ``C`` patches;
       ``Y_I /= norm_Y_I``; channel to flat format.
    5. :func:`illuminate_and_diffract`, whose ``s`` comes from the *normalised* patches times
       ``|probe|`` unless given; flat results to channel format (the reference's ``togrid``
       and ``grid_to_channel``).
    6. ``YY_full = YY_I exp(i YY_phi)`` complex64, *not* divided by ``norm_Y_I``.

    Parameters
    ----------
    YY_I : array_like, (n, size, size, 1) or (n, size, size), float
        Object amplitudes. Their dtype matters as in the reference: float64 objects with
        ``gridsize == 1`` (no jitter) give float64 ``X``, ``Y_phi``, ``s`` and ``norm_Y_I``.
    YY_phi : array_like or None
        Object phases, same shape, or None (zero phase unless ``set_phi``).
    probe : array_like, (N, N) or (N, N, 1), real or complex
    outer_offset : int
        Nominal outer spacing; the region stride is ``outer_offset // 2``.
    N, gridsize, offset : int
        Patch size, patches per region side (``C = gridsize**2``), inner stride.
    nphotons : float
        Mean photon count per pattern.
    intensity_scale : float or numpy scalar, optional
        Given ``s`` (the workflow passes the training set's ``s`` to the test set).
    poisson : bool
        Draw Poisson noise (the reference always does).
    seed : int, numpy.random.Generator or None
        One seed for jitter (stream ``(seed, 2)``) and Poisson noise (streams
        ``(seed, 1, block)``). The reference uses TensorFlow's global RNG.
    set_phi : bool
        The reference's ``cfg['set_phi']``.
    jitter_scale : float, optional
        Standard deviation of Gaussian position jitter in pixels; None for none.

    Returns
    -------
    dict
        ``X``, ``Y_I``, ``Y_phi``: ``(n * G1**2, N, N, C)`` arrays (``Y_I`` float32;
        ``X`` and ``Y_phi`` float32, or float64 as noted above); ``intensity_scale``: ``s``;
        ``norm_Y_I``: NumPy scalar in the patches' dtype; ``coords``: ``(nominal, true)``
        float32 ``(n * G1**2, 1, 2, C)``; ``YY_full``: complex64 ``(n, size, size, 1)``;
        ``I_pre_probe``, ``phi_pre_probe``: the normalised pre-probe patches in flat format
        ``(n * G1**2 * C, N, N, 1)`` (the reference's ``dict_fmt`` extras).

    Raises
    ------
    ValueError, TypeError
        For bad shapes or values, invalid geometry, or a probe that is not ``(N, N)``.

    Examples
    --------
    >>> obj = np.ones((1, 100, 100, 1))
    >>> d = mk_simdata(obj, None, np.ones((32, 32)), 20, N=32, gridsize=2, offset=4,
    ...                nphotons=1e6, poisson=False)
    >>> d["X"].shape, d["X"].dtype.name
    ((49, 32, 32, 4), 'float32')
    """
    yy_i = _image_stack("YY_I", YY_I)
    if yy_i.dtype.is_complex:
        raise TypeError(f"YY_I must be real, got {yy_i.dtype.name}")
    n, size = yy_i.shape[0], yy_i.shape[1]
    yy_phi = None
    if YY_phi is not None:
        yy_phi = _image_stack("YY_phi", YY_phi)
        if yy_phi.dtype.is_complex:
            raise TypeError(f"YY_phi must be real, got {yy_phi.dtype.name}")
        if tuple(yy_phi.shape) != tuple(yy_i.shape):
            raise ValueError(
                f"YY_phi must have shape {tuple(yy_i.shape)}, got {tuple(yy_phi.shape)}"
            )
    p = _probe(probe, _int("N", N, minimum=1))
    nphotons = _positive("nphotons", nphotons)
    intensity_scale = _given_scale(intensity_scale)
    if jitter_scale is not None:
        jitter_scale = float(jitter_scale)
        if not math.isfinite(jitter_scale) or jitter_scale < 0:
            raise ValueError(f"jitter_scale must be finite and >= 0, got {jitter_scale}")
    seed_int = resolve_seed(seed)

    if set_phi and yy_phi is None:
        yy_phi = _dummy_phi_tf(yy_i)

    coords = _coords_tf(size, n, outer_offset, N, gridsize, offset, "offsets")
    true_coords = coords
    if jitter_scale is not None:
        noise = tf.random.stateless_normal(coords.shape, seed=_key(seed_int, _STREAM_JITTER))
        true_coords = jitter_scale * noise + coords

    phi_src = yy_phi if yy_phi is not None else tf.zeros_like(yy_i)
    y_i = _grid_patches_tf(yy_i, true_coords, outer_offset, N, gridsize, offset)
    y_phi = _grid_patches_tf(phi_src, true_coords, outer_offset, N, gridsize, offset)
    norm_y_i = tf.reduce_mean(tf.reduce_max(y_i, axis=(1, 2, 3)))
    y_i = y_i / norm_y_i
    y_i_flat = _channel_to_flat(y_i)
    y_phi_flat = _channel_to_flat(y_phi)

    x, yi_out, yphi_out, s = _illuminate_tf(
        y_i_flat, y_phi_flat, p, nphotons, intensity_scale, bool(poisson), seed_int
    )
    phi_full = yy_phi if yy_phi is not None else tf.zeros_like(yy_i)
    yy_full = tf.cast(yy_i, tf.complex64) * tf.exp(1j * tf.cast(phi_full, tf.complex64))
    return {
        "X": _flat_to_channel(x, gridsize).numpy(),
        "Y_I": _flat_to_channel(yi_out, gridsize).numpy(),
        "Y_phi": _flat_to_channel(yphi_out, gridsize).numpy(),
        "intensity_scale": s,
        "norm_Y_I": _np_scalar(norm_y_i),
        "coords": (coords.numpy(), true_coords.numpy()),
        "YY_full": yy_full.numpy(),
        "I_pre_probe": y_i_flat.numpy(),
        "phi_pre_probe": y_phi_flat.numpy(),
    }

"""Independent NumPy re-implementations used as test oracles (no ptyfast code)."""

from __future__ import annotations

import numpy as np


def bilinear_patches(obj: np.ndarray, positions: np.ndarray, N: int) -> np.ndarray:
    """``patch[r, c] = bilinear(obj, row = y + r - N//2, col = x + c - N//2)``, zero outside.

    Coordinates follow the reference's float32 arithmetic in the zero-padded frame.
    """
    obj = np.asarray(obj, np.complex64)
    H, W = obj.shape
    h = N // 2
    out = np.zeros((len(positions), N, N), np.complex64)
    r = np.arange(N, dtype=np.float32)
    for k, (x, y) in enumerate(np.asarray(positions, np.float64)):
        sx = r + np.float32(x)  # padded-frame columns, float32
        sy = r + np.float32(y)
        x0 = np.floor(sx)
        y0 = np.floor(sy)
        wx = (sx - x0).astype(np.float32)
        wy = (sy - y0).astype(np.float32)
        x0 = x0.astype(np.int64) - h
        y0 = y0.astype(np.int64) - h

        def tap(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
            ok = (yy[:, None] >= 0) & (yy[:, None] < H) & (xx[None, :] >= 0) & (xx[None, :] < W)
            v = obj[np.clip(yy, 0, H - 1)[:, None], np.clip(xx, 0, W - 1)[None, :]]
            return np.where(ok, v, 0)

        out[k] = (
            tap(y0, x0) * ((1 - wy)[:, None] * (1 - wx)[None, :])
            + tap(y0, x0 + 1) * ((1 - wy)[:, None] * wx[None, :])
            + tap(y0 + 1, x0) * (wy[:, None] * (1 - wx)[None, :])
            + tap(y0 + 1, x0 + 1) * (wy[:, None] * wx[None, :])
        )
    return out


def far_field(field: np.ndarray) -> np.ndarray:
    """``|fftshift(fft2(field))| / N`` over the last two axes, float64."""
    N = field.shape[-1]
    return np.abs(np.fft.fftshift(np.fft.fft2(field.astype(np.complex128)), axes=(-2, -1))) / N

"""Tiny NumPy simulations and grouped dicts for the loader and intensity tests.

Independent of ptyfast on purpose: the far field is ``|fftshift(fft2(O·P))| / N`` (README
conventions), the intensity scale ``s = sqrt(nphotons / mean Σ|O·P|²)``, and the grouped dict
follows the reference's key layout (``docs/guides/grouping.md``).
"""

from __future__ import annotations

import sys
import types

import numpy as np


def gaussian_probe(N: int) -> np.ndarray:
    r = np.arange(N) - N / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (N / 6) ** 2))
    return (g * np.exp(0.3j * r[None, :] / N)).astype(np.complex64)


def simulate(n: int, N: int, nphotons: float, seed: int = 0, *, poisson: bool = False):
    """``(X, s, patches, probe, x, y)`` for ``n`` patterns of size ``N``.

    ``X`` (float32, (n, N, N)) is the unit-scale amplitude, i.e. photon amplitude / s.
    """
    rng = np.random.default_rng(seed)
    size = 3 * N
    obj = (1 + rng.random((size, size))) * np.exp(1j * rng.random((size, size)))
    x = rng.integers(N // 2, size - N // 2, n)
    y = rng.integers(N // 2, size - N // 2, n)
    patches = np.stack(
        [
            obj[yy - N // 2 : yy + N // 2, xx - N // 2 : xx + N // 2]
            for xx, yy in zip(x, y, strict=True)
        ]
    )
    probe = gaussian_probe(N)
    psi = patches * probe
    s = np.sqrt(nphotons / np.mean(np.sum(np.abs(psi) ** 2, axis=(1, 2))))
    amp = np.abs(np.fft.fftshift(np.fft.fft2(psi), axes=(1, 2))) / N
    if poisson:
        amp = np.sqrt(rng.poisson((s * amp) ** 2)) / s
    return (
        amp.astype(np.float32),
        float(s),
        patches.astype(np.complex64),
        probe,
        x.astype(float),
        y.astype(float),
    )


def to_channels(a: np.ndarray, C: int) -> np.ndarray:
    """(n, N, N) → (n/C, N, N, C), consecutive patterns as channels."""
    n, N = a.shape[0], a.shape[1]
    return np.moveaxis(a.reshape(n // C, C, N, N), 1, -1)


def normalize_data(diffraction: np.ndarray, N: int) -> np.ndarray:
    """The grouping's normalize_data: mean per-pattern energy (N/2)², float32."""
    e = np.mean(np.sum(diffraction.astype(np.float64) ** 2, axis=(1, 2)))
    f = np.float32(np.sqrt((N / 2) ** 2 / e))
    return f * diffraction.astype(np.float32)


def grouped_dict(diff3d, x, y, groups, *, Y=None, start_shift=0.0):
    """A grouped dict with the reference's keys for ``groups`` (B, C) of pattern indices."""
    groups = np.asarray(groups)
    N = diff3d.shape[1]

    def coords(xs, ys):
        nn = np.stack([xs[groups], ys[groups]], axis=1)[:, None, :, :]  # (B, 1, 2, C)
        offsets = nn.mean(axis=3)[..., None]
        return nn, offsets, -(nn - offsets)

    nn, off, rel = coords(x, y)
    # start coordinates differ from the final ones so that tests can tell them apart
    snn, soff, srel = coords(
        x + start_shift * np.arange(len(x)), y - start_shift * np.arange(len(y))
    )
    diffraction = np.moveaxis(diff3d[groups], 1, -1)
    return {
        "diffraction": diffraction,
        "coords_nn": nn,
        "coords_offsets": off,
        "coords_relative": rel,
        "coords_start_nn": snn,
        "coords_start_offsets": soff,
        "coords_start_relative": srel,
        "nn_indices": groups.astype(np.int32 if groups.shape[1] > 1 else np.int64),
        "Y": None if Y is None else np.moveaxis(Y[groups], 1, -1),
        "objectGuess": None,
        "X_full": normalize_data(diffraction, N),
    }


def fake_params(nphotons: float) -> types.ModuleType:
    mod = types.ModuleType("ptyfast.params")
    mod.cfg = {"nphotons": nphotons, "N": 64, "gridsize": 1}
    return mod


def install_params(monkeypatch, nphotons: float) -> None:
    """Make ``ptyfast.params.cfg['nphotons']`` read ``nphotons`` for one test."""
    import ptyfast

    try:
        from ptyfast import params
    except ImportError:
        params = fake_params(nphotons)
        monkeypatch.setitem(sys.modules, "ptyfast.params", params)
        monkeypatch.setattr(ptyfast, "params", params, raising=False)
    monkeypatch.setitem(params.cfg, "nphotons", nphotons)

"""Small datasets for the format tests (no simulate() needed: built from the kernels)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import ptyfast
from ptyfast import _kernels
from ptyfast.model.geometry import Geometry

EXT = {"npz": "npz", "ptychodus": "ptychodus.h5", "cxi": "cxi", "zarr": "zarr"}
_NEEDS = {"npz": None, "ptychodus": "h5py", "cxi": "h5py", "zarr": "zarr"}


def formats(*names: str) -> list:
    """Format names as pytest params, each skipped where its package is not installed
    (zarr >= 3 needs Python >= 3.11); the other formats still run."""
    out = []
    for f in names or tuple(EXT):
        mod = _NEEDS[f]
        missing = mod is not None and importlib.util.find_spec(mod) is None
        out.append(pytest.param(f, marks=pytest.mark.skipif(missing, reason=f"needs {mod}")))
    return out


needs_zarr = pytest.mark.skipif(
    importlib.util.find_spec("zarr") is None, reason="needs zarr >= 3 (Python >= 3.11)"
)

GEOMETRY_ARGS = {"energy_eV": 8000.0, "distance_m": 2.0, "detector_pixel_m": 75e-6}


def random_dataset(
    seed: int = 0,
    *,
    m: int = 7,
    n: int = 8,
    shape: tuple[int, int] = (30, 26),
    dtype: type = np.float32,
    modes: int = 1,
    patches: bool = False,
    geometry: bool = True,
) -> ptyfast.Dataset:
    """Arbitrary values in every field (exact round trips need nothing physical)."""
    rng = np.random.default_rng(seed)
    h, w = shape

    def cplx(*s: int) -> np.ndarray:
        return (rng.normal(size=s) + 1j * rng.normal(size=s)).astype(np.complex64)

    d = rng.poisson(rng.exponential(50.0, size=(m, n, n))).astype(dtype)
    pos = np.column_stack([rng.uniform(n, w - n, m), rng.uniform(n, h - n, m)])
    return ptyfast.Dataset(
        diffraction=d,
        mask=rng.uniform(size=(n, n)) > 0.15,
        positions_nominal=pos + rng.normal(0, 0.3, size=pos.shape),
        positions_true=pos,
        probe=cplx(modes, n, n),
        object=cplx(h, w),
        provenance={"seed": seed, "name": f"random {seed}", "nested": {"a": [1, 2.5, None]}},
        geometry=Geometry(N=n, **GEOMETRY_ARGS) if geometry else None,
        photons=1234.5,
        intensity_scale=3.25,
        patches=cplx(m, n, n) if patches else None,
    )


def disk_probe(n: int, radius: float) -> np.ndarray:
    r, c = np.mgrid[:n, :n]
    p = ((r - (n - 1) / 2) ** 2 + (c - (n - 1) / 2) ** 2 <= radius**2).astype(np.complex64)
    return (p / np.sqrt(np.sum(np.abs(p) ** 2))).astype(np.complex64)


def structured_object(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth-ish random complex object (amplitude and phase structure at every scale)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    f = np.fft.fft2(rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w)))
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    f *= np.exp(-(kx**2 + ky**2) / (2 * 0.08**2))
    field = np.fft.ifft2(f)
    field /= np.abs(field).max()
    return (0.6 + 0.4 * np.abs(field)) * np.exp(1j * 2.0 * np.angle(field))


def simulated_dataset(
    *,
    m: int = 12,
    n: int = 16,
    shape: tuple[int, int] = (64, 56),
    photons: float = 1e5,
    seed: int = 5,
    integer_positions: bool = True,
    poisson: bool = True,
) -> ptyfast.Dataset:
    """An ideal-detector dataset from the fused kernel: counts ``K`` with ``sqrt(K)`` =
    ``_kernels.simulate``'s amplitudes (so PtychoPINN's ``diff3d`` is ``sqrt(K)/s``)."""
    rng = np.random.default_rng(seed)
    obj = structured_object(shape, seed).astype(np.complex64)
    probe = disk_probe(n, n / 3)
    h, w = shape
    pos = np.column_stack([rng.uniform(n, w - n, m), rng.uniform(n, h - n, m)])
    if integer_positions:
        pos = np.round(pos)
    energies = _kernels.illuminated_energy(obj, pos, probe)
    s = float(np.float32(np.sqrt(photons / np.mean(energies.astype(np.float64)))))
    amps, patches = _kernels.simulate(
        obj, pos, probe, scale=s, poisson=poisson, seed=seed, return_patches=True
    )
    counts = np.square(amps.astype(np.float64))
    if poisson:
        counts = np.rint(counts)
    return ptyfast.Dataset(
        diffraction=counts.astype(np.float32),
        mask=np.ones((n, n), dtype=bool),
        positions_nominal=pos.copy(),
        positions_true=pos,
        probe=probe[None],
        object=obj,
        provenance={"seed": seed, "photons": photons, "poisson": poisson},
        geometry=Geometry(N=n, **GEOMETRY_ARGS),
        photons=photons,
        intensity_scale=s,
        patches=patches,
    )


FIELDS = (
    "diffraction",
    "mask",
    "positions_nominal",
    "positions_true",
    "probe",
    "object",
)


def assert_same(a: ptyfast.Dataset, b: ptyfast.Dataset) -> None:
    """Every field equal, bit for bit and dtype for dtype."""
    for k in FIELDS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype, (k, x.dtype, y.dtype)
        assert x.shape == y.shape, (k, x.shape, y.shape)
        assert x.tobytes() == y.tobytes(), k
    if a.patches is None:
        assert b.patches is None
    else:
        assert b.patches is not None and b.patches.dtype == a.patches.dtype
        assert a.patches.tobytes() == b.patches.tobytes()
    assert a.provenance == b.provenance
    assert a.geometry == b.geometry
    assert a.detector == b.detector
    for k in ("photons", "intensity_scale"):
        x, y = getattr(a, k), getattr(b, k)
        assert (np.isnan(x) and np.isnan(y)) or x == y, (k, x, y)

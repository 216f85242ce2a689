"""Grouped data → model-ready container (``ptycho.loader`` → ``ptyfast.loader``).

:func:`load` turns the grouped dict of ``RawData.generate_grouped_data`` into a
:class:`PtychoDataContainer`, which holds NumPy arrays (TensorFlow is optional: tensors are
accepted everywhere and only :meth:`PtychoDataContainer.as_tf_dataset` needs it).

Conventions (README): shapes ``(B, N, N, C)`` with channel ``c`` at grid
``(c // gridsize, c % gridsize)``; coordinates ``(B, 1, 2, C)`` in object pixels with
index 0 = ``x`` (column) and 1 = ``y`` (row); amplitudes, not intensities.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ._kernels import (
    SeedLike,
    _flag,
    _positive_float,
    _positive_int,
    _real_number,
    _to_numpy,
    check_fits,
    from_tensor,
    require_memory,
)
from ._npz import save_npz
from .intensity import (
    calculate_intensity_scale,
    compute_dataset_intensity_stats,
    count_photons,
    scale_nphotons,
)

__all__ = [
    "PtychoDataContainer",
    "load",
    "split_data",
    "split_tensor",
    "compute_dataset_intensity_stats",
    "calculate_intensity_scale",
    "scale_nphotons",
    "count_photons",
]

logger = logging.getLogger(__name__)


def _optional_array(
    name: str, a: Any, kinds: str = "biufc", what: str = "a numeric array"
) -> np.ndarray | None:
    """``a`` as a NumPy array (tensors converted, no copy), ``None`` kept; the dtype kind must
    be one of ``kinds`` (strings and objects are refused)."""
    if a is None:
        return None
    arr = _to_numpy(name, a)
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must be {what}, got dtype {arr.dtype}")
    return arr


def _check_finite(name: str, a: np.ndarray | None) -> None:
    if a is not None and a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")


def _check_narrow(name: str, a: np.ndarray | None, target: Any) -> None:
    """Finite values of a wider float/complex ``a`` must fit ``target`` (float32/complex64),
    to which the container casts them: beyond it they would become inf silently."""
    if a is None or a.dtype.kind not in "fc":
        return
    component = a.dtype.itemsize // (2 if a.dtype.kind == "c" else 1)
    if component > 4:
        check_fits(name, a, target)


def _check_leading(name: str, a: np.ndarray | None, want: tuple[int | None, ...]) -> None:
    """``a.shape`` must match ``want`` (``None`` entries match anything)."""
    if a is None:
        return
    ok = a.ndim == len(want) and all(
        w is None or w == d for w, d in zip(want, a.shape, strict=True)
    )
    if not ok:
        spec = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
        raise ValueError(f"{name} must have shape {spec}, got {a.shape}")


def _cast(a: np.ndarray | None, dtype: Any) -> np.ndarray | None:
    return None if a is None else a.astype(dtype, copy=False)


class PtychoDataContainer:
    """Model-ready ptychography data, stored as NumPy arrays.

    Parameters
    ----------
    X : array_like or tf.Tensor, (B, N, N, C)
        Diffraction amplitudes, usually ``X_full`` (energy-normalised, see ``load``).
    Y_I, Y_phi : array_like or tf.Tensor, (B, N, N, C)
        Ground-truth amplitude and phase of the object patches.
    norm_Y_I : float, numpy scalar or tf.Tensor
        ``scale_nphotons(X)``; kept as given (tensors converted to NumPy).
    YY_full : array_like or None
        Full object, if any.
    coords_nominal, coords_true : array_like or tf.Tensor, (B, 1, 2, C)
        Relative scan coordinates ``[x; y]`` per channel, object pixels.
    nn_indices : array_like or None, (B, C)
        Indices of the grouped patterns in the raw data.
    global_offsets : array_like or None, (B, 1, 2, 1)
        Group centres ``[x; y]``.
    local_offsets : array_like or None, (B, 1, 2, C)
        Offsets of the channels from their group centre (reference sign).
    probeGuess : array_like or tf.Tensor, (N, N) complex
        The probe.
    dataset_intensity_stats : dict, optional
        From :func:`compute_dataset_intensity_stats` on the raw (un-normalised) diffraction;
        enables the dataset-derived intensity scale (:func:`calculate_intensity_scale`).

    Attributes
    ----------
    X, Y_I, Y_phi : numpy.ndarray, float32
        Read-only properties; ``Y`` is ``Y_I·exp(i·Y_phi)`` complex64, ``coords_nominal`` (alias
        ``coords``) and ``coords_true`` are float32 and ``probe`` is complex64. The reference
        returned TensorFlow tensors here; TensorFlow ops accept these arrays unchanged.
    norm_Y_I, YY_full, nn_indices, global_offsets, local_offsets, probeGuess, \
dataset_intensity_stats
        Plain attributes, stored as given (tensors converted to NumPy).

    Raises
    ------
    TypeError
        If an array argument is not numeric (strings, objects), ``X``, ``Y_I``, ``Y_phi`` or a
        coordinate array is complex (the imaginary part would be lost), ``nn_indices`` is not
        integer, ``norm_Y_I`` is not a real scalar or ``dataset_intensity_stats`` is not a
        mapping.
    ValueError
        If ``X`` is missing or not ``(B, N, N, C)`` (or flat ``(B, N, N)``); ``Y_I`` or
        ``Y_phi`` differ from ``X`` in shape; coordinates are not ``(B, 1, 2, C)``,
        ``nn_indices`` not ``(B, C)``, ``global_offsets`` or ``local_offsets`` not
        ``(B, 1, 2, *)``, ``probeGuess`` not ``(N, N)`` with the ``N`` of ``X``; a value is
        NaN or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> B, N, C = 8, 16, 4
    >>> X = np.random.default_rng(0).random((B, N, N, C), dtype=np.float32)
    >>> c = PtychoDataContainer(
    ...     X, np.ones_like(X), np.zeros_like(X), 1.0, None,
    ...     np.zeros((B, 1, 2, C)), np.zeros((B, 1, 2, C)), None, None, None,
    ...     np.ones((N, N), np.complex64),
    ...     dataset_intensity_stats=compute_dataset_intensity_stats(X),
    ... )
    >>> len(c), c.Y.dtype, c.coords.shape
    (8, dtype('complex64'), (8, 1, 2, 4))
    """

    def __init__(
        self,
        X: Any,
        Y_I: Any,
        Y_phi: Any,
        norm_Y_I: Any,
        YY_full: Any,
        coords_nominal: Any,
        coords_true: Any,
        nn_indices: Any,
        global_offsets: Any,
        local_offsets: Any,
        probeGuess: Any,
        dataset_intensity_stats: Mapping[str, Any] | None = None,
    ) -> None:
        if X is None:
            raise ValueError("X must be an array of diffraction amplitudes, got None")
        real = "real amplitudes (a real numeric array)"
        x = _optional_array("X", X, "biuf", real + "; take |X| of complex data first")
        assert x is not None
        if x.ndim not in (3, 4):
            raise ValueError(f"X must be (B, N, N, C) (or flat (B, N, N)), got shape {x.shape}")
        _check_finite("X", x)
        _check_narrow("X", x, np.float32)
        self._X_np = x
        b = x.shape[0]
        c = x.shape[3] if x.ndim == 4 else 1
        self._Y_I_np = _optional_array("Y_I", Y_I, "biuf", real)
        self._Y_phi_np = _optional_array("Y_phi", Y_phi, "biuf", "real phases")
        for name, a in (("Y_I", self._Y_I_np), ("Y_phi", self._Y_phi_np)):
            if a is not None and a.shape != x.shape:
                raise ValueError(f"{name} must have the shape of X {x.shape}, got {a.shape}")
            _check_finite(name, a)
            _check_narrow(name, a, np.float32)
        coords_shape = (b, 1, 2, c) if x.ndim == 4 else (b, 1, 2, None)
        rc = "real coordinates"
        self._coords_nominal_np = _optional_array("coords_nominal", coords_nominal, "iuf", rc)
        self._coords_true_np = _optional_array("coords_true", coords_true, "iuf", rc)
        for name, a in (
            ("coords_nominal", self._coords_nominal_np),
            ("coords_true", self._coords_true_np),
        ):
            _check_leading(name, a, coords_shape)
            _check_finite(name, a)
            _check_narrow(name, a, np.float32)
        self._probe_np = _optional_array("probeGuess", probeGuess, "iufc", "a numeric probe")
        if self._probe_np is not None and not (
            self._probe_np.ndim == 2 or (self._probe_np.ndim == 3 and self._probe_np.shape[2] == 1)
        ):
            raise ValueError(f"probeGuess must be (N, N), got shape {self._probe_np.shape}")
        if self._probe_np is not None:
            _check_probe_size("probeGuess", self._probe_np, x.shape[1])
        _check_finite("probeGuess", self._probe_np)
        _check_narrow("probeGuess", self._probe_np, np.complex64)
        if dataset_intensity_stats is not None and not isinstance(dataset_intensity_stats, Mapping):
            raise TypeError(
                "dataset_intensity_stats must be a dict from compute_dataset_intensity_stats, "
                f"got {type(dataset_intensity_stats).__name__}"
            )
        self.norm_Y_I = from_tensor(norm_Y_I)
        if self.norm_Y_I is not None and (
            np.ndim(self.norm_Y_I) != 0 or np.asarray(self.norm_Y_I).dtype.kind not in "iuf"
        ):
            raise TypeError(f"norm_Y_I must be a real scalar, got {self.norm_Y_I!r}")
        if self.norm_Y_I is not None and not np.isfinite(self.norm_Y_I):
            # RawData refuses it too; a NaN scale would reach training silently.
            raise ValueError(f"norm_Y_I must be finite, got {self.norm_Y_I!r}")
        self.YY_full = _optional_array("YY_full", YY_full)
        self.nn_indices = _optional_array("nn_indices", nn_indices, "iu", "integer indices")
        _check_leading("nn_indices", self.nn_indices, (b, c) if x.ndim == 4 else (b, None))
        if self.nn_indices is not None and self.nn_indices.size and self.nn_indices.min() < 0:
            raise ValueError(
                f"nn_indices must be indices >= 0 into the raw positions, got "
                f"{int(self.nn_indices.min())}"
            )
        self.global_offsets = _optional_array("global_offsets", global_offsets, "iuf", rc)
        _check_leading("global_offsets", self.global_offsets, (b, 1, 2, None))
        self.local_offsets = _optional_array("local_offsets", local_offsets, "iuf", rc)
        _check_leading("local_offsets", self.local_offsets, (b, 1, 2, None))
        self.probeGuess = self._probe_np
        self.dataset_intensity_stats = (
            None if dataset_intensity_stats is None else dict(dataset_intensity_stats)
        )
        self._cache: dict[str, np.ndarray | None] = {}

    def _cached(self, key: str, make: Callable[[], np.ndarray | None]) -> np.ndarray | None:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def X(self) -> np.ndarray:
        """Diffraction amplitudes, float32 ``(B, N, N, C)``."""
        return self._cached("X", lambda: _cast(self._X_np, np.float32))

    @property
    def Y_I(self) -> np.ndarray | None:
        """Ground-truth amplitude, float32 ``(B, N, N, C)``."""
        return self._cached("Y_I", lambda: _cast(self._Y_I_np, np.float32))

    @property
    def Y_phi(self) -> np.ndarray | None:
        """Ground-truth phase, float32 ``(B, N, N, C)``."""
        return self._cached("Y_phi", lambda: _cast(self._Y_phi_np, np.float32))

    @property
    def Y(self) -> np.ndarray | None:
        """Complex ground truth ``Y_I·exp(i·Y_phi)``, complex64 ``(B, N, N, C)``."""

        def make() -> np.ndarray | None:
            if self.Y_I is None or self.Y_phi is None:
                return None
            phase = self.Y_phi.astype(np.complex64)
            return self.Y_I.astype(np.complex64) * np.exp(np.complex64(1j) * phase)

        return self._cached("Y", make)

    @property
    def coords_nominal(self) -> np.ndarray | None:
        """Relative scan coordinates ``[x; y]``, float32 ``(B, 1, 2, C)``."""
        return self._cached("coords_nominal", lambda: _cast(self._coords_nominal_np, np.float32))

    @property
    def coords(self) -> np.ndarray | None:
        """Alias of :attr:`coords_nominal`."""
        return self.coords_nominal

    @property
    def coords_true(self) -> np.ndarray | None:
        """True relative scan coordinates, float32 ``(B, 1, 2, C)``."""
        return self._cached("coords_true", lambda: _cast(self._coords_true_np, np.float32))

    @property
    def probe(self) -> np.ndarray | None:
        """The probe, complex64 ``(N, N)``."""
        return self._cached("probe", lambda: _cast(self._probe_np, np.complex64))

    def __len__(self) -> int:
        return len(self._X_np)

    def __repr__(self) -> str:
        parts = ["<PtychoDataContainer"]
        for name in ("X", "Y_I", "Y_phi", "coords_nominal", "coords_true", "probe"):
            a = getattr(self, f"_{name}_np")
            if a is None:
                continue
            if np.iscomplexobj(a):
                parts.append(f"{name}={a.shape} mean_amplitude={np.mean(np.abs(a)):.3f}")
            else:
                parts.append(f"{name}={a.shape} mean={np.mean(a):.3f}")
        for name in ("norm_Y_I", "YY_full", "nn_indices", "global_offsets", "local_offsets"):
            a = getattr(self, name)
            if a is None:
                continue
            shape = np.shape(a)
            parts.append(f"{name}={shape}" if shape else f"{name}={float(np.real(a)):.4g}")
        e = (self.dataset_intensity_stats or {}).get("batch_mean_sum_intensity")
        if e is not None:
            parts.append(f"batch_mean_sum_intensity={e:.6g}")
        return " ".join(parts) + ">"

    def to_npz(self, path: str | os.PathLike[str] | Any) -> None:
        """Write the arrays to an ``.npz`` file, atomically.

        The keys are the reference's (``X``, ``Y_I``, ``Y_phi``, ``norm_Y_I``, ``YY_full``,
        ``coords_nominal``, ``coords_true``, ``nn_indices``, ``global_offsets``,
        ``local_offsets``, ``probe``), with the stored (uncast) arrays; ``None`` values are
        left out (the reference pickles them; nothing here is pickled, so the file loads with
        ``allow_pickle=False``). When present, ``dataset_intensity_stats`` is added as a JSON
        string. The file is written by ptyfast's one NPZ writer
        (:func:`ptyfast._npz.save_npz`, through :func:`ptyfast._atomic.atomic_output`):
        readers never see a partial file, and an interrupted run leaves none behind.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Output path; ``.npz`` is appended when missing, as ``numpy.savez`` does. A file
            object is written directly (no atomic replace).

        Raises
        ------
        OSError
            If the file cannot be written; no partial file is left behind.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> c = PtychoDataContainer(np.ones((2, 4, 4, 1)), None, None, 1.0, None, None, None,
        ...                         None, None, None, np.ones((4, 4), np.complex64))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     c.to_npz(os.path.join(d, "train"))
        ...     sorted(os.listdir(d))
        ['train.npz']
        """
        arrays: dict[str, Any] = {
            "X": self._X_np,
            "Y_I": self._Y_I_np,
            "Y_phi": self._Y_phi_np,
            "norm_Y_I": self.norm_Y_I,
            "YY_full": self.YY_full,
            "coords_nominal": self._coords_nominal_np,
            "coords_true": self._coords_true_np,
            "nn_indices": self.nn_indices,
            "global_offsets": self.global_offsets,
            "local_offsets": self.local_offsets,
            "probe": self._probe_np,
        }
        if self.dataset_intensity_stats is not None:
            arrays["dataset_intensity_stats"] = np.array(json.dumps(self.dataset_intensity_stats))
        if not hasattr(path, "write"):
            path = os.fspath(path)
            if not path.endswith(".npz"):
                path += ".npz"
        save_npz(path, arrays)

    def as_tf_dataset(
        self,
        batch_size: int,
        shuffle: bool = True,
        *,
        intensity_scale: float | None = None,
        nphotons: float | None = None,
        seed: SeedLike = None,
    ) -> Any:
        """A ``tf.data.Dataset`` streaming training batches.

        Each element is ``((X·s, coords), (Y_I_c, X·s, (X·s)²))``, all float32: ``X·s``
        ``(b, N, N, C)``, ``coords`` = :attr:`coords_nominal` ``(b, 1, 2, C)`` and ``Y_I_c``
        ``(b, N, N, 1)``, channel 0 of ``Y_I`` moved back by its coordinate,
        ``Y_I_c[r, c] = bilinear(Y_I[..., 0]; row r + y, col c + x)`` with zeros outside (the
        reference's ``center_channels(Y_I, coords)[..., :1]``). The last batch may be short.

        Parameters
        ----------
        batch_size : int
            Patterns per batch.
        shuffle : bool, default True
            Draw a new permutation for every pass over the data.
        intensity_scale : float, optional
            ``s``; default :func:`calculate_intensity_scale` of this container (the reference
            read ``params.cfg['intensity_scale']``).
        nphotons : float, optional
            For the default ``s``; ``None`` reads ``ptyfast.params.cfg['nphotons']``.
        seed : int, numpy.random.Generator or None
            Seeds the shuffling; passes differ from each other but repeat with the seed.

        Returns
        -------
        tf.data.Dataset

        Raises
        ------
        ImportError
            If TensorFlow is not installed.
        ValueError
            If ``X`` is not 4-D, ``Y_I`` or coordinates are missing, or an argument is invalid.
        TypeError
            If ``shuffle`` is not a bool (``"no"``), or ``batch_size`` not an integer.

        Examples
        --------
        >>> ds = container.as_tf_dataset(16, seed=0)  # doctest: +SKIP
        >>> (x_s, coords), (y_c, x_s2, x_s_sq) = next(iter(ds))  # doctest: +SKIP
        """
        shuffle = _flag("shuffle", shuffle)
        try:
            import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - exercised only without TensorFlow
            raise ImportError("as_tf_dataset needs TensorFlow (pip install ptyfast[tf])") from exc
        bs = _positive_int("batch_size", batch_size)
        if self._X_np.ndim != 4:
            raise ValueError(f"X must be (B, N, N, C) for as_tf_dataset, got {self._X_np.shape}")
        if self._Y_I_np is None or self._coords_nominal_np is None:
            raise ValueError("as_tf_dataset needs Y_I and coords_nominal, got None")
        _, n, _, c = self._X_np.shape
        if self._coords_nominal_np.shape[1:] != (1, 2, c):
            raise ValueError(
                f"coords_nominal must be (B, 1, 2, {c}), got {self._coords_nominal_np.shape}"
            )
        if intensity_scale is None:
            intensity_scale = calculate_intensity_scale(self, nphotons=nphotons)
        s = np.float32(_positive_float("intensity_scale", intensity_scale))
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        x, y_i, coords = self.X, self.Y_I, self.coords_nominal

        def batches() -> Iterator[Any]:
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                xs = x[idx] * s
                cb = coords[idx]
                yc = _translate_bilinear(y_i[idx, :, :, 0], cb[:, 0, 0, 0], cb[:, 0, 1, 0])
                yield (xs, cb), (yc[..., None], xs, np.square(xs))

        f32 = tf.float32
        signature = (
            (tf.TensorSpec((None, n, n, c), f32), tf.TensorSpec((None, 1, 2, c), f32)),
            (
                tf.TensorSpec((None, n, n, 1), f32),
                tf.TensorSpec((None, n, n, c), f32),
                tf.TensorSpec((None, n, n, c), f32),
            ),
        )
        return tf.data.Dataset.from_generator(batches, output_signature=signature)

    @staticmethod
    def from_raw_data_without_pc(
        xcoords: Any,
        ycoords: Any,
        diff3d: Any,
        probeGuess: Any,
        scan_index: Any,
        objectGuess: Any = None,
        N: int | None = None,
        K: int = 7,
        nsamples: int = 1,
        *,
        seed: int | None = None,
        gridsize: int | None = None,
        nphotons: float | None = None,
    ) -> PtychoDataContainer:
        """Raw scan → grouping → :func:`load`, in one call.

        Builds ``RawData.from_coords_without_pc(...)`` (start coordinates = coordinates),
        groups it with ``generate_grouped_data(N, K=K, nsamples=nsamples, seed=seed,
        gridsize=gridsize)`` and loads the result; the container carries the dataset
        intensity statistics of the raw ``diff3d`` groups.

        Parameters
        ----------
        xcoords, ycoords : array_like, (M,)
            Scan positions, object pixels (``x`` = column, ``y`` = row).
        diff3d : array_like, (M, N, N)
            Diffraction amplitudes.
        probeGuess : array_like, (N, N) complex
        scan_index : array_like, (M,) int
        objectGuess : array_like, (H, W) complex, optional
            When given, the ground-truth patches ``Y`` are cut from it.
        N : int, optional
            Patch size; default ``diff3d.shape[1]`` (the reference read ``params.cfg['N']``).
        K : int, default 7
            Nearest neighbours considered per group.
        nsamples : int, default 1
            Number of groups.
        seed : int, optional
            Grouping seed.
        gridsize : int, optional
            Patterns per group side; ``None`` lets the grouping apply its own default.
        nphotons : float, optional
            For ``norm_Y_I``; ``None`` reads ``ptyfast.params.cfg['nphotons']``.

        Returns
        -------
        PtychoDataContainer

        Examples
        --------
        >>> c = PtychoDataContainer.from_raw_data_without_pc(  # doctest: +SKIP
        ...     x, y, diff3d, probe, np.zeros(len(x), int), N=64, K=7, nsamples=1000, gridsize=1)
        """
        from .raw_data import RawData

        raw = RawData.from_coords_without_pc(
            xcoords, ycoords, diff3d, probeGuess, scan_index, objectGuess
        )
        if N is None:
            N = int(np.shape(raw.diff3d)[1])
        dset = raw.generate_grouped_data(N, K=K, nsamples=nsamples, seed=seed, gridsize=gridsize)
        return load(lambda: dset, probeGuess, which=None, create_split=False, nphotons=nphotons)


def _translate_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``out[b, r, c] = bilinear(img[b]; row r + y[b], col c + x[b])``, float32, zero outside.

    Mirrors the reference's translation warp: source coordinates in float32, four corners
    weighted ``(1-wx)(1-wy), wx(1-wy), (1-wx)wy, wx·wy``, a corner outside the image counting 0.
    """
    img = np.asarray(img, dtype=np.float32)
    b, h, w = img.shape
    sx = np.arange(w, dtype=np.float32)[None, None, :] + np.asarray(x, np.float32)[:, None, None]
    sy = np.arange(h, dtype=np.float32)[None, :, None] + np.asarray(y, np.float32)[:, None, None]
    x0, y0 = np.floor(sx), np.floor(sy)
    wx, wy = sx - x0, sy - y0
    one = np.float32(1)
    padded = np.zeros((b, h + 2, w + 2), np.float32)
    padded[:, 1:-1, 1:-1] = img
    # Indices into the one-pixel zero border: a corner outside [0, W-1] lands on the border.
    ix0 = (np.clip(x0, -1, w) + 1).astype(np.intp)
    iy0 = (np.clip(y0, -1, h) + 1).astype(np.intp)
    ix1 = (np.clip(x0 + 1, -1, w) + 1).astype(np.intp)
    iy1 = (np.clip(y0 + 1, -1, h) + 1).astype(np.intp)
    bi = np.arange(b)[:, None, None]
    out = (one - wx) * (one - wy) * padded[bi, iy0, ix0]
    out = out + wx * (one - wy) * padded[bi, iy0, ix1]
    out = out + (one - wx) * wy * padded[bi, iy1, ix0]
    return out + wx * wy * padded[bi, iy1, ix1]


def _check_split(frac_name: str, frac: Any, which: Any) -> float:
    """The checked fraction of a train/test split: a real number in [0, 1] (``TypeError``
    for a string, bool or other non-number, ``ValueError`` for NaN, inf or a value outside
    [0, 1]); ``which`` must be ``'train'`` or ``'test'`` (``ValueError`` otherwise: a typo
    such as ``'tarin'`` would silently select the test rows)."""
    if not (isinstance(which, str) and which in ("train", "test")):
        raise ValueError(
            f"Invalid split type specified: which must be 'train' or 'test', got {which!r}"
        )
    f = _real_number(frac_name, frac, "a number in [0, 1]")
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{frac_name} must be a number in [0, 1], got {frac!r}")
    return f


def _check_probe_size(name: str, probe: Any, n: int) -> None:
    """``probe`` (an array or ``None``, which passes) must be ``(N, N)`` (or ``(N, N, 1)``)
    with the patterns' ``N``."""
    if probe is None:
        return
    shape = tuple(probe.shape)
    if shape[:2] != (n, n):
        raise ValueError(
            f"{name} must be (N, N) = ({n}, {n}) like the diffraction patterns, got {shape}"
        )


def _length(name: str, a: Any) -> int:
    """``len(a)``, or a ``TypeError`` naming ``name`` for a scalar, ``None`` or other
    object without rows (``len`` would raise one that names no argument)."""
    try:
        return len(a)
    except TypeError:
        raise TypeError(
            f"{name} must be an array or sequence with a first axis to split, got "
            f"{type(a).__name__}"
        ) from None


def split_data(
    X_full: Any, coords_nominal: Any, coords_true: Any, train_frac: float, which: str
) -> tuple[Any, Any, Any]:
    """The first ``int(len·train_frac)`` rows (``'train'``) or the rest (``'test'``).

    Parameters
    ----------
    X_full, coords_nominal, coords_true : array_like
        Arrays sharing their first axis.
    train_frac : float
        Fraction for training.
    which : {'train', 'test'}

    Returns
    -------
    tuple of three arrays

    Raises
    ------
    ValueError
        If ``which`` is neither ``'train'`` nor ``'test'``, ``train_frac`` is not in
        [0, 1] (NaN and inf included), or the three arrays differ in length (the reference
        splits each at its own length, pairing patterns with other groups' coordinates).
    TypeError
        If ``train_frac`` is not a real number (e.g. the string ``"0.5"``), or an array has
        no length (a scalar or ``None``).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(10)
    >>> split_data(a, a, a, 0.75, "test")[0].tolist()
    [7, 8, 9]
    """
    _check_split("train_frac", train_frac, which)
    n_rows = _length("X_full", X_full)
    for name, a in (("coords_nominal", coords_nominal), ("coords_true", coords_true)):
        if _length(name, a) != n_rows:
            raise ValueError(
                f"{name} must have the length of X_full ({n_rows}), got {_length(name, a)}"
            )
    n_train = int(n_rows * train_frac)
    if which == "train":
        return X_full[:n_train], coords_nominal[:n_train], coords_true[:n_train]
    if which == "test":
        return X_full[n_train:], coords_nominal[n_train:], coords_true[n_train:]
    raise ValueError(f"Invalid split type specified: must be 'train' or 'test', got {which!r}")


def split_tensor(tensor: Any, frac: float, which: str = "test") -> Any:
    """The first ``int(len·frac)`` rows for ``'train'``, the rest for ``'test'``.

    Raises
    ------
    ValueError
        If ``which`` is neither ``'train'`` nor ``'test'`` (the reference treats any other
        value, e.g. a typo, as ``'test'``), or ``frac`` is not in [0, 1].
    TypeError
        If ``frac`` is not a real number, or ``tensor`` has no length (a scalar or ``None``).

    Examples
    --------
    >>> split_tensor([1, 2, 3, 4], 0.5, "train")
    [1, 2]
    """
    _check_split("frac", frac, which)
    n_train = int(_length("tensor", tensor) * frac)
    return tensor[:n_train] if which == "train" else tensor[n_train:]


def load(
    cb: Callable[[], Any],
    probeGuess: Any,
    which: str | None = None,
    create_split: bool = False,
    *,
    nphotons: float | None = None,
) -> PtychoDataContainer:
    """Grouped dict → :class:`PtychoDataContainer`.

    ``X`` is ``dset['X_full']`` (energy-normalised), the coordinates are
    ``dset['coords_start_relative']`` (``dset['coords_relative']`` for grouped data without
    start coordinates, whose start positions are the positions), ``Y_I``/``Y_phi`` are
    ``|Y|``/``angle(Y)`` (ones and zeros when ``Y`` is None), all float32;
    ``norm_Y_I = scale_nphotons(X)`` (988.21 for N=64, 1e9 photons),
    ``global_offsets = dset['coords_offsets']``,
    ``local_offsets = dset['coords_relative']``. The container also carries
    ``compute_dataset_intensity_stats(dset['diffraction'])`` of the **raw** (un-normalised)
    diffraction, so :func:`calculate_intensity_scale` gives the dataset-derived scale.

    Parameters
    ----------
    cb : callable
        Returns the grouped dict, or ``(dict, train_frac)`` when ``create_split``.
    probeGuess : array_like or tf.Tensor, (N, N) complex
    which : {'train', 'test'}, optional
        The split to keep; used only with ``create_split``.
    create_split : bool, default False
        Keep the first ``int(B·train_frac)`` groups (``'train'``) or the rest (``'test'``).
        Every per-group array (X, Y, coordinates, offsets, ``nn_indices``, statistics) is
        split alike.
    nphotons : float, optional
        For ``norm_Y_I``; ``None`` reads ``ptyfast.params.cfg['nphotons']``.

    Returns
    -------
    PtychoDataContainer

    Raises
    ------
    ValueError
        If ``which`` is invalid with ``create_split``, ``train_frac`` is outside [0, 1] or
        leaves the split empty, ``probeGuess`` is not ``(N, N)`` with the ``N`` of
        ``X_full`` (the reference keeps the mismatched probe, which fails later), a
        required key (``X_full``; ``coords_start_relative``, or ``coords_relative`` when the
        data has no start coordinates) is missing, ``X_full`` is not ``(B, N, N, C)``, another
        array's shape disagrees with it (``X`` and ``Y`` differing in their number of channels
        included), a value is not finite, or the container would not fit in memory.
    TypeError
        If ``cb`` is not callable or does not return a dict (or ``(dict, train_frac)``), an
        array is not numeric (e.g. a string ``X_full``), ``create_split`` is not a bool or
        ``train_frac`` not a number.

    Examples
    --------
    >>> container = load(lambda: grouped, probe, nphotons=1e9)  # doctest: +SKIP
    >>> train = load(lambda: (grouped, 0.8), probe, "train", True)  # doctest: +SKIP
    """
    if not callable(cb):
        raise TypeError(
            f"cb must be a callable returning the grouped dict, got {type(cb).__name__}"
        )
    split_on = _flag("create_split", create_split)
    if split_on and which not in ("train", "test"):
        raise ValueError(f"Invalid split type specified: must be 'train' or 'test', got {which!r}")
    train_frac = 1.0
    if split_on:
        got = cb()
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise TypeError(
                "with create_split=True, cb must return (grouped dict, train_frac), got "
                f"{type(got).__name__}"
            )
        dset, frac = got
        train_frac = _real_number("train_frac", frac, "a number in [0, 1]")
        if not 0.0 <= train_frac <= 1.0:
            raise ValueError(f"train_frac must be in [0, 1], got {train_frac}")
    else:
        dset = cb()
    if not isinstance(dset, Mapping):
        raise TypeError(f"cb must return the grouped dict (a mapping), got {type(dset).__name__}")
    missing = [k for k in ("X_full",) if dset.get(k) is None]
    coords_key = "coords_start_relative"
    if dset.get(coords_key) is None:
        # Grouped data without start coordinates: the positions themselves are the nominal
        # ones (RawData's rule), so the coordinates fall back to coords_relative.
        coords_key = "coords_relative"
        if dset.get(coords_key) is None:
            missing.append("coords_start_relative (or coords_relative)")
    if missing:
        raise ValueError(
            f"the grouped dict must hold {missing}, got keys {sorted(map(str, dset))}; "
            "use RawData.generate_grouped_data to build it"
        )

    def split(name: str, a: Any, kinds: str = "biufc") -> Any:
        arr = _optional_array(name, from_tensor(a), kinds)
        if arr is None or not split_on:
            return arr
        return split_tensor(arr, train_frac, which)

    x_all = _optional_array("dset['X_full']", dset["X_full"], "biuf", "real amplitudes")
    assert x_all is not None
    if x_all.ndim != 4:
        raise ValueError(f"dset['X_full'] must be (B, N, N, C), got shape {x_all.shape}")
    b_all, n_px, _, c = x_all.shape
    probeGuess = _optional_array("probeGuess", from_tensor(probeGuess), "iufc", "a numeric probe")
    _check_probe_size("probeGuess", probeGuess, n_px)
    coords_all = _optional_array(f"dset[{coords_key!r}]", dset[coords_key], "iuf", "real")
    _check_leading(f"dset[{coords_key!r}]", coords_all, (b_all, 1, 2, c))
    for key, want in (
        ("Y", None),
        ("diffraction", x_all.shape),
        ("nn_indices", (b_all, c)),
        ("coords_offsets", (b_all, 1, 2, 1)),
        ("coords_relative", (b_all, 1, 2, c)),
    ):
        v = dset.get(key)
        if v is None:
            continue
        shape = np.shape(from_tensor(v))
        if key == "Y":
            if len(shape) != 4 or shape[0] != b_all:
                raise ValueError(f"dset['Y'] must be ({b_all}, N, N, C), got shape {shape}")
            if shape[3] != c:
                raise ValueError(f"Channel mismatch between X ({c}) and Y ({shape[3]})")
        elif shape != want:
            raise ValueError(f"dset[{key!r}] must have shape {want}, got {shape}")
    X = x_all if not split_on else split_tensor(x_all, train_frac, which)
    if len(X) == 0:
        raise ValueError(
            f"the {which!r} split of {b_all} groups with train_frac={train_frac} is empty"
        )
    # Finiteness of X, the coordinates and Y is checked once, by the container; values the
    # float32 casts below would turn into inf are refused here, under their keys.
    _check_narrow("dset['X_full']", X, np.float32)
    X = X.astype(np.float32, copy=False)
    coords = split(f"dset[{coords_key!r}]", coords_all, "iuf")
    _check_narrow(f"dset[{coords_key!r}]", coords, np.float32)
    coords = coords.astype(np.float32, copy=False)

    Y = split("dset['Y']", dset.get("Y"))
    _check_narrow("dset['Y']", Y, np.complex64)
    # float32 copies of X and coordinates (when cast), and the two ground-truth arrays.
    require_memory(f"load: {len(X)} groups of {c} patterns", X.size * 4 * 3 + coords.nbytes)
    if Y is None:
        Y_I = np.ones(X.shape, dtype=np.float32)
        Y_phi = np.zeros(X.shape, dtype=np.float32)
        logger.info("loader: no ground truth Y; using Y_I = 1, Y_phi = 0 of X's shape")
    else:
        Y_I = np.abs(Y).astype(np.float32, copy=False)
        Y_phi = np.angle(Y).astype(np.float32, copy=False)
        logger.info("loader: using provided ground truth patches")
    if X.shape[-1] != Y_I.shape[-1]:
        raise ValueError(f"Channel mismatch between X ({X.shape[-1]}) and Y ({Y_I.shape[-1]})")

    norm_Y_I = scale_nphotons(X, nphotons=nphotons)

    diffraction = split("dset['diffraction']", dset.get("diffraction"), "biuf")
    stats = (
        None
        if diffraction is None
        else compute_dataset_intensity_stats(diffraction, is_normalized=False)
    )
    container = PtychoDataContainer(
        X,
        Y_I,
        Y_phi,
        norm_Y_I,
        None,
        coords,
        coords,
        split("dset['nn_indices']", dset.get("nn_indices"), "iu"),
        split("dset['coords_offsets']", dset.get("coords_offsets"), "iuf"),
        split("dset['coords_relative']", dset.get("coords_relative"), "iuf"),
        probeGuess,
        dataset_intensity_stats=stats,
    )
    logger.debug("loader: %s %r", which, container)
    return container

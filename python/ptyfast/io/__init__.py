"""Formats: one dataset, every consumer.

One writer, :func:`save` (``Dataset.save`` delegates to it), with a streaming form,
:func:`writer`, that takes the header first and the patterns block by block; one reader,
:func:`open` (also ``ptyfast.open``), with a streaming form, :func:`reader`. The format
follows from the extension when writing (:func:`format_from_path`) and from the content when
reading (:func:`detect`). Every file appears atomically (never a partial file); every
writer streams with memory bounded by one block. Arguments are checked before any file is
touched: paths are ``str`` or ``os.PathLike`` (bytes refused), flags are bools only
(``overwrite="no"`` is a ``TypeError``), and a block holding NaN or inf is a ``ValueError``
before any of it is written. Each format is one module (:mod:`.npz`,
:mod:`.ptychodus`, :mod:`.cxi`, :mod:`.zarr`) with its writer, its reader and its full table.

What each format stores (``M`` patterns of ``N × N``, object ``H × W``, ``P`` probe modes,
``δ = N//2 − (N−1)/2``, ``Δ`` the object pixel ``λz/(NΔ_det)``; ptyfast positions are
``(x, y)`` object pixels, ``x`` = column, sampled at patch pixel ``N//2``):

========== ================================================================================
format     what is stored, units, axis order, position sign; read by
========== ================================================================================
NPZ        PtychoPINN raw NPZ. ``diff3d``: amplitudes ``sqrt(photons)/s`` (float32);
``.npz``   ``readings``: the exact readings (counts). ``(M, N, N)``, rows = detector y, zero
(deflate)  frequency at ``[N//2, N//2]`` (not shifted back). ``xcoords``/``ycoords``: true
           positions, ``*_start``: nominal, object pixels, ``+`` along columns / rows.
           Read by ``RawData.from_file`` (ptyfast, PtychoPINN), ``numpy.load``.
ptychodus  Product + diffraction file (``run.ptychodus.h5`` → ``run.diffraction.h5``).
``.h5``    ``patterns``: photon counts (intensities), ``(M, N, N)``, same centre;
(gzip)     ``bad_pixels`` = ``~mask``. ``probe_position_x_m = (x − δ − (W−1)/2) · Δ`` (m):
           where the probe array centre ``(N−1)/2`` sits relative to the object array centre
           (``center_x_m = 0``), ``+`` along columns / rows; indexes ``0 .. M−1``. Read by
           ptychodus (HDF5 product plugin, ``load_product``, ``load_diffraction_data``,
           its pty-chi backend).
CXI        NXcxi_ptycho. ``data``: photon counts (intensities), ``(M, N, N)``, rows = y,
``.cxi``   same centre; ``mask`` uint32 ``0x1`` = invalid; energy in J, lengths in m.
(gzip)     ``translation (M, 3)`` = the **sample** move ``(−x_m, −y_m, 0)`` (m). Read by
           h5py / NeXus tools, cdtools, ptychodus' CXI plugins (which take ``translation``
           as the probe position, unnegated: mirrored; use the ptychodus pair there).
Zarr       v3 directory store. ``diffraction``: the exact readings, chunked by pattern
``.zarr``  blocks, dims ``(pattern, detector_y, detector_x)``, same centre;
(zstd)     ``positions_true`` / ``positions_nominal`` ``(M, 2)`` object pixels; probe,
           object, mask, patches; provenance in attributes. Read by ``zarr``, ``xarray``.
========== ================================================================================

None of them fftshifts the patterns back: the zero frequency stays at ``[N//2, N//2]``, as the
detector sees it (pty-chi and ptychodus expect exactly that). Where a reader expects photon
counts (ptychodus, CXI) it gets ``detector.readings_to_photons(readings)`` as float32 (the
readings themselves for counting detectors; photons beyond float32 are a ``ValueError``, as
are NPZ amplitudes beyond it) and the exact readings go in the ``ptyfast`` group; every
format keeps a ``ptyfast`` block (provenance, geometry, detector, photons, intensity scale,
exact pixel positions) so :func:`open` gives back the dataset bit for bit. Formats in metres
(ptychodus, CXI) need ``dataset.geometry``.

Examples
--------
>>> ds.save("run.ptychodus.h5")                           # doctest: +SKIP
>>> ptyfast.io.save(ds, "run.npz", compress=True)        # doctest: +SKIP
>>> back = ptyfast.open("run.npz")                       # doctest: +SKIP
>>> with ptyfast.io.writer("big.zarr", header, compress=True) as w:  # doctest: +SKIP
...     for start in range(0, header.n_patterns, 4096):
...         w.write(start, simulate_block(start))
"""

from __future__ import annotations

from . import cxi, npz, ptychodus, zarr
from ._api import detect, open, reader, save, writer
from ._common import (
    EXTENSIONS,
    FORMATS,
    BlockReader,
    BlockWriter,
    FormatError,
    Header,
    amplitudes,
    format_from_path,
)
from .ptychodus import diffraction_path

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "BlockReader",
    "BlockWriter",
    "FormatError",
    "Header",
    "amplitudes",
    "cxi",
    "detect",
    "diffraction_path",
    "format_from_path",
    "npz",
    "open",
    "ptychodus",
    "reader",
    "save",
    "writer",
    "zarr",
]

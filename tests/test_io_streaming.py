"""Streaming writers hold one block, not the dataset (issue 12: bounded memory).

Python-level allocations (NumPy buffers included) are traced with ``tracemalloc`` while
16 MiB of patterns stream through each writer in 256 KiB blocks; the peak must stay a small
multiple of the block, far below the data. (benches/bench_formats.py measures the process'
resident memory for 10^6 patterns.)
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from _io_data import EXT, needs_zarr, random_dataset

import ptyfast
from ptyfast import io

M, N, B = 4096, 32, 64  # 16 MiB of float32 patterns in blocks of 256 KiB


@pytest.mark.parametrize(
    ("fmt", "compress"),
    [
        ("npz", False),
        ("npz", True),
        ("ptychodus", True),
        ("cxi", False),
        pytest.param("zarr", False, marks=needs_zarr),
        pytest.param("zarr", True, marks=needs_zarr),
    ],
)
def test_streaming_memory_is_bounded_by_blocks(tmp_path, fmt, compress, monkeypatch):
    monkeypatch.setattr(io.zarr, "CHUNK_BYTES", 1 << 18)  # the default 4 MiB chunk is 1/4 of
    # the data here; the writer holds up to a chunk besides the block
    small = random_dataset(0, m=3, n=N, shape=(80, 80))
    io.save(small, tmp_path / f"warm.{EXT[fmt]}", compress=compress)  # imports, caches

    pos = np.full((M, 2), 40.0)
    header = io.Header(**{**vars(io.Header.from_dataset(small)), "n_patterns": M,
                          "positions_true": pos, "positions_nominal": pos})  # fmt: skip
    path = tmp_path / f"big.{EXT[fmt]}"
    rng = np.random.default_rng(2)
    blocks = [rng.poisson(30.0, size=(B, N, N)).astype(np.float32) for _ in range(2)]
    tracemalloc.start()
    try:
        with io.writer(path, header, compress=compress) as w:
            tracemalloc.reset_peak()
            for start in range(0, M, B):
                w.write(start, blocks[(start // B) % 2])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data = M * N * N * 4
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB while streaming {data / 2**20:.0f} MiB"
    with io.reader(path) as r:
        d, _ = r.read(M - 2 * B, M)
    assert np.array_equal(d, np.concatenate(blocks))


def test_reader_blocks_stream_too(tmp_path):
    ds = random_dataset(3, m=M, n=N, shape=(80, 80))
    path = tmp_path / "d.npz"
    ds.save(path)
    tracemalloc.start()
    try:
        with io.reader(path) as r:
            total = 0.0
            for _start, d, _p in r.blocks(B):
                total += float(d.sum(dtype=np.float64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == float(ds.diffraction.sum(dtype=np.float64))
    assert peak < 4 * 2**20
    assert ptyfast.open(path).diffraction.tobytes() == ds.diffraction.tobytes()

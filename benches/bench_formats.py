"""File sizes, write speeds and streaming memory of every ptyfast.io format.

Run as ``python benches/bench_formats.py`` (``--quick`` for a smoke run). Two parts:

1. **Sizes and speeds.** ``--patterns`` (default 10,000) ideal-detector patterns of N = 64
   (a structured 512² object, a disk probe, sub-pixel random positions, Poisson counts) at
   1e4 and 1e9 photons per pattern, written with ``ptyfast.io.save`` to every format,
   uncompressed and compressed. Prints seconds, MB/s of readings (M·N²·4 bytes) and the file
   size against the baseline of the same run: ``numpy.save`` of the raw float32 readings
   (time and size). The NPZ holds PtychoPINN's ``diff3d`` amplitudes beside the exact
   readings, so about twice the bytes.
2. **Streaming memory.** ``--stream-patterns`` (default 10^6) patterns of N = 32 streamed
   through ``ptyfast.io.writer`` to every format (uncompressed; ``--stream-compressed`` adds
   the compressed writers) in blocks of 4096, one fresh process per format: the process'
   peak resident memory (``VmHWM``) after 10 % of the blocks and at the end. Flat memory
   means the two agree although the data is 4 GB.

Everything is written under ``--dir`` (default: a new directory in the system's temporary
directory; the 10^6-pattern part needs about 9 GB free there) and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ptyfast
from ptyfast import _kernels as K
from ptyfast import io
from ptyfast.model.geometry import Geometry

EXT = {"npz": "npz", "ptychodus": "ptychodus.h5", "cxi": "cxi", "zarr": "zarr"}
GEOMETRY = {"energy_eV": 8000.0, "distance_m": 2.0, "detector_pixel_m": 75e-6}


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_dir():
            for d, _s, files in os.walk(p):
                total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
        else:
            total += p.stat().st_size
    return total


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _object(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    k = np.fft.fftfreq(n)
    f *= np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.05**2))
    field = np.fft.ifft2(f)
    field /= np.abs(field).max()
    return ((0.5 + 0.5 * np.abs(field)) * np.exp(1j * np.angle(field))).astype(np.complex64)


def _probe(n: int) -> np.ndarray:
    r, c = np.mgrid[:n, :n]
    p = ((r - (n - 1) / 2) ** 2 + (c - (n - 1) / 2) ** 2 <= (n / 4) ** 2).astype(np.complex64)
    return (p / np.sqrt(np.sum(np.abs(p) ** 2))).astype(np.complex64)


def simulated(m: int, n: int, photons: float, seed: int = 1) -> ptyfast.Dataset:
    obj = _object(512, seed)
    probe = _probe(n)
    rng = np.random.default_rng(seed)
    pos = rng.uniform(n, 512 - n, size=(m, 2))
    s = float(np.float32(np.sqrt(photons / K.illuminated_energy(obj, pos, probe).mean())))
    amps, _ = K.simulate(obj, pos, probe, scale=s, poisson=True, seed=seed)
    counts = np.rint(np.square(amps.astype(np.float64))).astype(np.float32)
    return ptyfast.Dataset(
        diffraction=counts,
        mask=np.ones((n, n), bool),
        positions_nominal=pos,
        positions_true=pos.copy(),
        probe=probe[None],
        object=obj,
        provenance={"seed": seed, "photons": photons},
        geometry=Geometry(N=n, **GEOMETRY),
        photons=photons,
        intensity_scale=s,
    )


def sizes_and_speeds(directory: Path, m: int) -> None:
    print(f"== sizes and write speeds: {m} patterns of N = 64, float32 photon counts")
    header = f"{'photons':>8} {'format':>10} {'compress':>8} {'write s':>8} {'MB/s':>7} "
    header += f"{'size MB':>8} {'size/raw':>8} {'time/raw':>8} {'open s':>7}"
    for photons in (1e4, 1e9):
        ds = simulated(m, 64, photons)
        raw_bytes = ds.diffraction.nbytes
        base = directory / "baseline.npy"
        t = time.perf_counter()
        np.save(base, ds.diffraction)
        os.sync()
        t_raw = time.perf_counter() - t
        base.unlink()
        print(f"-- {photons:.0e} photons/pattern; baseline numpy.save: {t_raw:.2f} s, "
              f"{raw_bytes / 1e6:.0f} MB ({raw_bytes / 1e6 / t_raw:.0f} MB/s)")  # fmt: skip
        print(header)
        warm = simulated(8, 64, photons)
        for ext in EXT.values():  # imports and first-call costs out of the timings
            for compress in (False, True):
                _remove(io.save(warm, directory / f"warm.{ext}", compress=compress))
        for fmt, ext in EXT.items():
            for compress in (False, True):
                path = directory / f"bench.{ext}"
                t = time.perf_counter()
                paths = io.save(ds, path, compress=compress)
                os.sync()
                dt = time.perf_counter() - t
                size = _size(paths)
                t = time.perf_counter()
                back = ptyfast.open(path)
                t_open = time.perf_counter() - t
                assert back.diffraction.tobytes() == ds.diffraction.tobytes()
                del back
                _remove(paths)
                print(
                    f"{photons:>8.0e} {fmt:>10} {str(compress):>8} {dt:>8.2f} "
                    f"{raw_bytes / 1e6 / dt:>7.0f} {size / 1e6:>8.1f} {size / raw_bytes:>8.2f} "
                    f"{dt / t_raw:>8.2f} {t_open:>7.2f}"
                )


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


def stream_child(fmt: str, compress: bool, m: int, n: int, directory: Path) -> None:
    """One format in a fresh process: stream m patterns, report peak memory (JSON)."""
    block = 4096
    rng = np.random.default_rng(0)
    blocks = [rng.poisson(2.5, size=(block, n, n)).astype(np.float32) for _ in range(4)]
    pos = rng.uniform(n, 256 - n, size=(m, 2))
    header = io.Header(
        n_patterns=m,
        dtype=np.float32,
        mask=np.ones((n, n), bool),
        positions_nominal=pos,
        positions_true=pos,
        probe=_probe(n)[None],
        object=_object(256, 0),
        geometry=Geometry(N=n, **GEOMETRY),
        photons=1e4,
        intensity_scale=1.0,
    )
    path = directory / f"stream.{EXT[fmt]}"
    before = _hwm_mb()
    at10 = None
    t = time.perf_counter()
    w = io.writer(path, header, compress=compress)
    with w:
        for i, start in enumerate(range(0, m, block)):
            stop = min(m, start + block)
            w.write(start, blocks[i % len(blocks)][: stop - start])
            if at10 is None and stop >= m // 10:
                at10 = _hwm_mb()
    seconds = time.perf_counter() - t
    size = _size(w.paths)
    _remove(w.paths)
    print(json.dumps({"before": before, "at10": at10, "end": _hwm_mb(), "s": seconds,
                      "size": size}))  # fmt: skip


def streaming_memory(directory: Path, m: int, compressed: bool) -> None:
    n = 32
    print(f"\n== streaming memory: {m} patterns of N = {n} float32 ({m * n * n * 4 / 1e9:.1f} GB)"
          " in blocks of 4096 (16 MB), one process per format")  # fmt: skip
    print(f"{'format':>10} {'compress':>8} {'VmHWM start':>11} {'at 10%':>8} {'at end':>8} "
          f"{'seconds':>8} {'size GB':>8}")  # fmt: skip
    for fmt in EXT:
        for compress in (False, True) if compressed else (False,):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    fmt,
                    str(int(compress)),
                    str(m),
                    str(n),
                    str(directory),
                ],  # fmt: skip
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{fmt:>10} {str(compress):>8} {r['before']:>9.0f}MB {r['at10']:>6.0f}MB "
                  f"{r['end']:>6.0f}MB {r['s']:>8.1f} {r['size'] / 1e9:>8.2f}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 / 20,000 patterns")
    p.add_argument("--patterns", type=int, default=10_000)
    p.add_argument("--stream-patterns", type=int, default=1_000_000)
    p.add_argument("--skip-stream", action="store_true")
    p.add_argument(
        "--stream-compressed",
        action="store_true",
        help="also stream compressed (deflate at ~10-25 MB/s: tens of minutes for 4 GB)",
    )
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        fmt, compress, m, n, d = a.child
        stream_child(fmt, compress == "1", int(m), int(n), Path(d))
        return
    if a.quick:
        a.patterns, a.stream_patterns = 1000, 20_000
    directory = Path(tempfile.mkdtemp(prefix="bench_formats.", dir=a.dir))
    print(f"ptyfast {ptyfast.__version__}, {K.num_threads()} threads, {os.cpu_count()} cpus, "
          f"scratch {directory}")  # fmt: skip
    try:
        sizes_and_speeds(directory, a.patterns)
        if not a.skip_stream:
            streaming_memory(directory, a.stream_patterns, a.stream_compressed)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The command line: stream a dataset to an NPZ file in chunks, then read it in Python.

``ptyfast simulate`` writes chunk by chunk (memory does not grow with the dataset) and the
file appears atomically. Same arguments and seed, same bits as ``generate_simulated_data``.
"""

import subprocess
import sys

import numpy as np

from ptyfast.raw_data import RawData

cmd = [
    sys.executable,
    "-m",
    "ptyfast",
    "simulate",
    "-o",
    "cli.npz",
    "-n",
    "2000",
    "--N",
    "32",
    "--object-size",
    "128",
    "--nphotons",
    "1e6",
    "--seed",
    "3",
    "--chunk-size",
    "256",
    "--overwrite",
    "--no-progress",
    "-q",
]
print("$", " ".join(["ptyfast", *cmd[3:]]))
subprocess.run(cmd, check=True)

raw = RawData.from_file("cli.npz")
print(raw.diff3d.shape, raw.diff3d.dtype, "photons:", raw.metadata.get("nphotons"))
assert raw.diff3d.shape == (2000, 32, 32) and np.isfinite(raw.diff3d).all()

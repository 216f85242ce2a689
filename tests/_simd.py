"""Runs a child script at every SIMD level the machine has (``PTYFAST_SIMD`` caps the level)."""

from __future__ import annotations

import os
import subprocess
import sys


def digests_per_level(child: str) -> dict[str, str]:
    """``{level: digest}`` from ``child`` (Python code printing ``simd_level() digest``) run in
    a fresh process per cap (baseline, avx2, avx512; a cap above the machine's runs at the
    machine's level)."""
    seen = {}
    for cap in ("baseline", "avx2", "avx512"):
        env = dict(os.environ, PTYFAST_SIMD=cap)
        res = subprocess.run(
            [sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True
        )
        level, digest = res.stdout.split()
        seen[level] = digest
    return seen

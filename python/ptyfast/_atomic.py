"""Crash-safe file creation: a target is either absent/old or complete, never partial.

:func:`atomic_output` is the one way ptyfast writes a file. Inside the ``with`` block the data
goes to a temporary file in the target's directory; only when the block ends without an
exception is it flushed (``fsync``), moved into place in one step, and the directory synced.
On any exception (``KeyboardInterrupt`` included) the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["AtomicTarget", "atomic_output", "new_file_mode"]


@dataclass
class AtomicTarget:
    """The temporary file behind :func:`atomic_output`.

    Attributes
    ----------
    file : BinaryIO
        The temporary file, open for binary reading and writing at offset 0.
    path : str
        A path that opens the same file (for writers that want a path, e.g. HDF5). Close any
        handle opened through it before the ``with`` block ends.
    target : pathlib.Path
        The final path.
    """

    file: BinaryIO
    path: str
    target: Path


def new_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open(path, 'w')`` gives a new file."""
    try:
        with open("/proc/self/status") as f:  # Linux >= 4.7: read without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return 0o666 & ~mask


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise ValueError(f"output {os.fspath(target)!r} is a directory, expected a file path")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise ValueError(
            f"output {os.fspath(target)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, overwrite: bool = True
) -> Iterator[AtomicTarget]:
    """Create ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create (its directory is created if needed).
    overwrite : bool
        Replace an existing file; ``False`` raises ``ValueError`` before anything is written.

    Yields
    ------
    AtomicTarget
        Write to ``.file`` (or open ``.path``); the target appears only when the block exits
        normally.

    Raises
    ------
    ValueError
        ``path`` is a directory, or exists and ``overwrite`` is false.
    """
    target = Path(path)
    _check_target(target, overwrite)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".ptyfast-tmp", dir=directory)
    f = os.fdopen(fd, "w+b")
    try:
        yield AtomicTarget(file=f, path=tmp, target=target)
        _check_target(target, overwrite)
        f.flush()
        os.fsync(f.fileno())
        os.fchmod(f.fileno(), new_file_mode())
        f.close()
        os.replace(tmp, target)
        tmp = ""
        with contextlib.suppress(OSError):  # not every platform can fsync a directory
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    finally:
        if not f.closed:
            f.close()
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

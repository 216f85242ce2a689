"""Crash-safe creation of a directory (a Zarr store): a hidden sibling renamed into place.

A directory cannot be written atomically file by file, but it can be *published* atomically:
the store is written into a hidden sibling ``.<name>.<host>.<pid>.<token>.ptyfast-tmp`` in
the same directory (``<name>`` replaced by a digest of it when the sibling's name would
exceed the file-name limit), every file and directory in it is ``fsync``-ed, and only then is it
renamed onto the target in one step. Replacing an existing store uses Linux's
``renameat2(RENAME_EXCHANGE)`` (the old and new store swap names atomically; readers see one
or the other, never neither), falling back elsewhere to rename-aside-then-rename (a moment
with no store at the target, never a partial one). The old store is removed afterwards.

An interrupted writer leaves its hidden sibling behind; the next write to the same target
removes siblings left by dead processes of this host (writers on other hosts are left alone:
their process ids mean nothing here).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from .._atomic import check_output_path, naming_path
from .._kernels import _flag

__all__ = ["atomic_directory", "check_replaceable", "clean_stale", "is_store", "publish"]

_TMP = ".ptyfast-tmp"
_OLD = ".ptyfast-old"
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _host() -> str:
    return "".join(c if c.isalnum() or c == "-" else "_" for c in socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Longest sibling name kept readable (the usual file-name limit, in bytes).
_NAME_MAX = 255


def _tag(name: str) -> str:
    """``name`` as it appears in its siblings' names: itself, or a digest when the sibling
    name (``.<name>.<host>.<pid>.<token>.ptyfast-tmp``) would exceed the file-name limit."""
    overhead = len(f"...{_host()}.{2**32}.{'0' * 8}{_TMP}")
    if len(os.fsencode(name)) + overhead <= _NAME_MAX:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return f"ptyfast-{digest}"


def _sibling(target: Path, suffix: str) -> Path:
    parent = target.parent if str(target.parent) else Path(".")
    token = secrets.token_hex(4)
    return parent / f".{_tag(target.name)}.{_host()}.{os.getpid()}.{token}{suffix}"


def clean_stale(target: Path) -> list[Path]:
    """Remove hidden siblings of ``target`` left by dead writers on this host; returns them."""
    parent = target.parent if str(target.parent) else Path(".")
    prefix, host = f".{_tag(target.name)}.", _host()
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        name = p.name
        if not name.startswith(prefix) or not name.endswith((_TMP, _OLD)):
            continue
        parts = name[len(prefix) :].split(".")
        if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
            continue
        if _alive(int(parts[1])):  # this process included: it may be writing it now
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); ``False`` where unsupported."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


def _rename_noreplace(a: Path, b: Path) -> bool:
    """Rename ``a`` to ``b`` unless ``b`` exists (``FileExistsError`` then), atomically
    (Linux ``renameat2``); ``False`` where unsupported."""
    return _renameat2(a, b, _RENAME_NOREPLACE)


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))  # EEXIST: a FileExistsError


def _swap_in(tmp: Path, target: Path) -> Path:
    """Put ``tmp`` at the existing ``target`` in one step where the system can (``renameat2``
    exchange), else by two renames; returns the path now holding the previous store."""
    if _exchange(tmp, target):
        return tmp
    old = _sibling(target, _OLD)
    os.rename(target, old)
    os.rename(tmp, target)
    return old


def is_store(path: Path) -> bool:
    """Whether ``path`` is a directory holding a Zarr store (v3 ``zarr.json``, or v2
    ``.zgroup``/``.zarray``) or nothing at all: the only directories a writer may replace."""
    try:
        if not path.is_dir():
            return False
        if any((path / name).is_file() for name in ("zarr.json", ".zgroup", ".zarray")):
            return True
        return next(path.iterdir(), None) is None
    except OSError:
        return False


def check_replaceable(target: Path) -> None:
    """Refuses a ``target`` that exists as something a store writer must never delete: a
    file, or a directory that is not a Zarr store (a user's folder given by mistake)."""
    if target.is_file() or (target.is_symlink() and not target.is_dir()):
        raise ValueError(f"output {os.fspath(target)!r} exists and is a file, expected a store")
    if target.is_dir() and not is_store(target):
        raise ValueError(
            f"output {os.fspath(target)!r} is a directory that is not a Zarr store (no "
            "zarr.json); ptyfast replaces only stores, never other directories: choose "
            "another path"
        )


def _check(target: Path, overwrite: bool) -> None:
    check_replaceable(target)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise ValueError(
            f"output {os.fspath(target)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Create directory ``path`` atomically; yields the hidden sibling to fill.

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike``; ``overwrite`` is not a bool.
    ValueError
        ``path`` is invalid (NUL, a name too long, under a file), is a file, or exists and
        ``overwrite`` is false (before anything is written).
    OSError
        The store cannot be created (the message names ``path``).
    """
    overwrite = _flag("overwrite", overwrite)
    target = check_output_path(path)
    _check(target, overwrite)
    parent = target.parent if str(target.parent) else Path(".")
    tmp = _sibling(target, _TMP)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        tmp.mkdir()
    except OSError as exc:
        raise naming_path(exc, target) from exc
    try:
        yield tmp
        publish(tmp, target, overwrite=overwrite)
        tmp = Path()
    finally:
        if tmp != Path() and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Move the complete directory ``tmp`` (a sibling of ``path``) onto ``path`` in one step:
    every file and directory in it ``fsync``-ed first, an existing store swapped out
    atomically (``renameat2``) and removed afterwards. :func:`atomic_directory` ends with it;
    :func:`ptyfast.distributed.simulate` publishes its resumable partial stores with it.

    Raises
    ------
    TypeError, ValueError
        As :func:`atomic_directory`.
    OSError
        The rename failed (the message names ``path``).
    """
    overwrite = _flag("overwrite", overwrite)
    tmp, target = Path(tmp), check_output_path(path)
    parent = target.parent if str(target.parent) else Path(".")
    _check(target, overwrite)
    try:
        _fsync_tree(tmp)
        if not overwrite:
            # A store that appeared at the path since the check (another writer) is kept:
            # this one fails instead of replacing it. (Without renameat2, a plain rename
            # fails on a non-empty directory too.)
            try:
                if not _rename_noreplace(tmp, target):
                    os.rename(tmp, target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                raise ValueError(
                    f"output {os.fspath(target)!r} exists (created while this one was being "
                    f"written); pass overwrite=True (--overwrite) to replace it"
                ) from exc
            _fsync_dir(parent)
        else:
            try:
                os.rename(tmp, target)  # nothing there (or an empty directory)
                old = None
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # A store is there (found by the check, or published since by another
                # writer): replaced, as overwrite asks, and still only a store.
                check_replaceable(target)
                old = _swap_in(tmp, target)
            _fsync_dir(parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:  # the message names the hidden sibling, not the store
        raise naming_path(exc, target) from exc

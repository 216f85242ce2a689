"""Crash-safe file creation: a target is either absent/old or complete, never partial.

:func:`atomic_output` is the one way ptyfast writes a file. What it guarantees, at any instant
of a crash or ``kill -9``:

* the target is either what it was before (absent, or the old file) or the complete new file;
* on Linux, **no temporary file remains**: the data goes to an unnamed file (``O_TMPFILE``)
  in the target's directory, which the kernel frees if the process dies, and which is linked
  into place (``linkat``) only when complete. A new target appears in that one step.
  Replacing an existing target needs a name for a moment: the finished file is linked as
  ``.ptyfast-tmp-<pid>-<host>-<token>.<target name>`` and renamed over the target right away
  (two metadata operations, microseconds apart). Only a kill in that window leaves the
  temporary name; the next :func:`atomic_output` into that directory deletes every such file
  whose process is dead.
* elsewhere (no ``O_TMPFILE``: other systems, some file systems) the data goes to a file of
  that temporary name, removed on every exit path Python sees (exceptions, ``Ctrl-C``, and
  ``SIGTERM``/``SIGHUP`` in the command line, which turns them into ``Ctrl-C``); after a
  ``kill -9`` it is removed by the next write into the directory, as above.

The file is flushed and ``fsync``-ed before it is linked or renamed into place, and the
directory is ``fsync``-ed after, so the new file survives a power cut once the block has
exited. A new file gets the mode ``open(path, "w")`` would give it (``0o666`` less the umask).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import signal
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ._kernels import _flag

__all__ = [
    "AtomicTarget",
    "HeldSignals",
    "atomic_output",
    "check_output_path",
    "check_path",
    "naming_path",
    "new_file_mode",
]

logger = logging.getLogger("ptyfast")

_TMP_PREFIX = ".ptyfast-tmp-"
# .ptyfast-tmp-<pid>-<host tag>-<token>.<target name>
_TMP_NAME = re.compile(r"\.ptyfast-tmp-(\d{1,10})-([0-9a-f]{8})-[0-9a-f]{8}\.")
_NAME_MAX = 255  # bytes, the usual file-name limit


@dataclass
class AtomicTarget:
    """The temporary file behind :func:`atomic_output`.

    Attributes
    ----------
    file : BinaryIO
        The temporary file, open for binary reading and writing at offset 0.
    path : str
        A path that opens the same file, for writers that want a path: on Linux
        ``/proc/self/fd/<n>`` (a link valid in this process only), elsewhere the temporary
        file's name. Close any handle opened through it before the ``with`` block ends, and do
        not rename or delete it. HDF5 resolves links and cannot open ``/proc/self/fd/<n>``:
        give h5py the file object instead (``h5py.File(target.file, "w")``).
    target : pathlib.Path
        The final path.
    """

    file: BinaryIO
    path: str
    target: Path


class HeldSignals:
    """Holds off ``SIGINT``, ``SIGTERM`` and ``SIGHUP`` from :meth:`hold` to :meth:`release`,
    so that steps which must not be split by Ctrl-C (moving the files of one output into
    place one after the other, waiting for zarr's I/O thread) happen whole.

    Python runs signal handlers in the main thread only, between bytecodes, whichever thread
    the signal reached: in the main thread, :meth:`hold` swaps each Python-level handler
    (``KeyboardInterrupt``, the command line's ``SIGTERM``) for one that only notes the
    signal, and :meth:`release` puts them back and then calls the original handler of the
    first signal noted (``KeyboardInterrupt`` after the steps, not between them). Elsewhere,
    and for signals without a Python handler (``SIG_DFL``, ``SIG_IGN``), both are no-ops.
    Call :meth:`release` on every path (an ``ExitStack`` callback): it is a no-op when nothing
    is held. As a context manager it holds them for its block.
    """

    __slots__ = ("_noted", "_previous")

    _NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._noted: list[int] = []

    def _note(self, signum: int, frame: Any) -> None:
        self._noted.append(signum)

    def hold(self) -> None:
        """Swap the handlers (a signal already pending may raise here, before any step)."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for name in self._NAMES:
            sig = getattr(signal, name, None)
            if sig is None:  # SIGHUP is missing on Windows
                continue
            old = signal.getsignal(sig)
            if callable(old):  # a Python handler; SIG_DFL and SIG_IGN need none
                self._previous[sig] = signal.signal(sig, self._note)

    def release(self) -> None:
        """Restore the handlers of :meth:`hold`; a signal held off is handled now."""
        previous, self._previous = self._previous, {}
        for sig, old in previous.items():
            signal.signal(sig, old)
        noted, self._noted = self._noted, []
        if noted and noted[0] in previous:
            previous[noted[0]](noted[0], None)

    def __enter__(self) -> HeldSignals:
        try:
            self.hold()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "..." + text[-16:]


def check_path(path: Any, name: str = "path") -> str:
    """``path`` as a ``str``: a ``str`` or ``os.PathLike`` naming one, non-empty, without NUL.

    Bytes paths are refused (the file names ptyfast derives from a path are text).

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike`` of a ``str`` (``None``, a number, bytes).
    ValueError
        ``path`` is empty or contains a NUL character.

    Examples
    --------
    >>> check_path(Path("run.npz"))
    'run.npz'
    >>> check_path(None)
    Traceback (most recent call last):
    TypeError: path must be a str or os.PathLike, got NoneType None
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        got = f"{type(path).__name__} {_short(path)}"
        if text is not path:
            got += f" (naming {type(text).__name__} {_short(text)})"
        raise TypeError(f"{name} must be a str or os.PathLike, got {got}")
    if "\0" in text:
        raise ValueError(f"{name} must not contain a NUL character, got {_short(text)}")
    if not text:
        raise ValueError(f"{name} must not be empty, got ''")
    return text


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # ENAMETOOLONG, EACCES, ...: not a directory to check against
        return False


def _name_max(directory: Path) -> int:
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no such limit
        return _NAME_MAX
    return limit if isinstance(limit, int) and limit > 0 else _NAME_MAX


def check_output_path(path: Any, name: str = "path", *, also: tuple[Path, ...] = ()) -> Path:
    """``path`` checked as a file (or store) to create, before anything is written.

    Checks what can be checked without creating anything: the type (:func:`check_path`), the
    length of every name in it (and in ``also``, files written beside it) against the file
    system's limit (``PC_NAME_MAX``, else 255 bytes), and that the nearest existing ancestor
    is a directory (the missing ones are created when writing).

    Raises
    ------
    TypeError, ValueError
        As :func:`check_path`; a name too long; an ancestor that is a file.
    """
    target = Path(check_path(path, name))
    start = target.parent if str(target.parent) else Path(".")
    existing = next((a for a in (start, *start.parents) if _exists(a)), Path("."))
    limit = _name_max(existing) if existing.is_dir() else _NAME_MAX
    for p in (target, *also):
        for part in p.parts:
            size = len(os.fsencode(part))
            if size > limit:
                whole = os.fspath(p)
                of = "" if part == whole else f" of {_short(whole)}"
                raise ValueError(
                    f"{name} must have names of at most {limit} bytes (the file system's "
                    f"limit), got {size} bytes in {_short(part)}{of}"
                )
    if not existing.is_dir():
        raise ValueError(
            f"{name} must lie in a directory, got {_short(os.fspath(target))} where "
            f"{_short(os.fspath(existing))} is a file, not a directory"
        )
    return target


def naming_path(exc: OSError, target: Any) -> OSError:
    """``exc`` with a message that names ``target`` (the user's path), same type and errno.

    An ``OSError`` from writing a temporary file (``.ptyfast-tmp-...``) or a hidden store
    names only that file; the user asked for ``target``. ``exc`` itself is returned when its
    message names ``target`` already.
    """
    where = os.fspath(target)
    if where in str(exc):
        return exc
    detail = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None and os.fspath(exc.filename) != where:
        detail += f" (at {os.path.basename(os.fspath(exc.filename))!r})"
    if exc.errno is not None:
        new = OSError(exc.errno, detail, where)  # the errno's subclass: FileNotFoundError, ...
    else:
        new = type(exc)(f"{detail}: {where!r}")
    return new


def short_name(name: str) -> str:
    """The stand-in for a name too long to go into a hidden sibling's name."""
    return f"ptyfast-{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"


def hidden_sibling(path: Any, tag: str) -> Path:
    """``.<name><tag>`` beside ``path``, as an absolute path; ``<name>`` is replaced by
    :func:`short_name` when the sibling's name would pass the 255-byte file-name limit (the
    file system accepts ``path``'s name, and the sibling failed with ``File name too long``).
    """
    target = Path(os.path.abspath(path))
    name = target.name
    if len(os.fsencode(f".{name}{tag}")) > _NAME_MAX:
        name = short_name(name)
    return target.parent / f".{name}{tag}"


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file ``path`` (created if missing) for the
    block, between threads and processes alike (each call opens its own description).

    ``wait=False``: a ``BlockingIOError`` at once when another holder has it. The file is
    removed at the end, while still held; a caller that opened it just before checks, once it
    holds the lock, that the file it locked is still the one at ``path``, and starts again
    otherwise (so the file never outlives its users, and two never hold it at once).
    """
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise ValueError(f"output {os.fspath(target)!r} is a directory, expected a file path")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise ValueError(
            f"output {os.fspath(target)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )


def _host_tag() -> str:
    """Eight hex digits naming this machine: process ids only mean something on their host."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _temporary_name(target_name: str) -> str:
    head = f"{_TMP_PREFIX}{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}."
    tail = target_name.encode("utf-8", "surrogateescape")[: _NAME_MAX - len(head)]
    return head + tail.decode("utf-8", "ignore")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid: leave its file alone
    return True


class _Directory:
    """The target's directory, held open (``dir_fd``) where the platform allows it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        if os.open in os.supports_dir_fd and os.link in os.supports_dir_fd:
            flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
            self.fd = os.open(path, flags)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def kw(self) -> dict[str, int]:
        return {} if self.fd is None else {"dir_fd": self.fd}

    def link(self, src: str, name: str) -> None:
        if self.fd is None:
            os.link(self.join(src), self.join(name))
        else:
            os.link(src, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def replace(self, src: str, name: str) -> None:
        if self.fd is None:
            os.replace(self.join(src), self.join(name))
        else:
            os.replace(src, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.fd is None:
                os.unlink(self.join(name))
            else:
                os.unlink(name, dir_fd=self.fd)

    def sync(self) -> None:
        with contextlib.suppress(OSError):  # not every platform can fsync a directory
            if self.fd is not None:
                os.fsync(self.fd)
                return
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def clean_stale(self) -> None:
        """Delete temporary files of dead processes of this host (left by ``kill -9``)."""
        if os.name != "posix":  # os.kill(pid, 0) would not be a harmless probe
            return
        host, me = _host_tag(), os.getpid()
        try:
            entries = os.listdir(self.fd if self.fd is not None else self.path)
        except OSError:
            return
        for name in entries:
            m = _TMP_NAME.match(name) if name.startswith(_TMP_PREFIX) else None
            if m is None or m.group(2) != host:
                continue
            pid = int(m.group(1))
            if pid == me or _process_alive(pid):
                continue
            try:
                self.unlink(name)
            except OSError:
                continue
            logger.info("removed %s, left by process %d", self.join(name), pid)

    def open_unnamed(self) -> int | None:
        """An unnamed file in the directory (Linux ``O_TMPFILE``), or None if unsupported."""
        flag = getattr(os, "O_TMPFILE", 0)
        if not flag or self.fd is None:
            return None
        try:
            # mode 0o666: the umask applies, as for open(path, "w")
            return os.open(".", flag | os.O_RDWR | os.O_CLOEXEC, 0o666, dir_fd=self.fd)
        except OSError:  # EOPNOTSUPP, EISDIR (old kernels), EINVAL: fall back to a name
            return None

    def open_named(self, name: str) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        flags |= getattr(os, "O_BINARY", 0)
        return os.open(name if self.fd is not None else self.join(name), flags, 0o666, **self.kw())


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, overwrite: bool = True
) -> Iterator[AtomicTarget]:
    """Create ``path`` atomically (see the module docs for the guarantees).

    Parameters
    ----------
    path : str or os.PathLike
        The file to create (its directory is created if needed). Bytes paths are refused.
    overwrite : bool
        ``True``/``False`` (or ``numpy.bool_``, 0, 1; anything else is a ``TypeError``).
        Replace an existing file; ``False`` raises ``ValueError`` before anything is written,
        and again (without touching the file that appeared) if the target comes into being
        while the block runs.

    Yields
    ------
    AtomicTarget
        Write to ``.file`` (or open ``.path``); the target appears only when the block exits
        normally.

    Raises
    ------
    TypeError
        ``path`` is not a ``str`` or ``os.PathLike``; ``overwrite`` is not a bool.
    ValueError
        ``path`` contains NUL, has a name longer than the file system allows, lies under a
        file, is a directory, or exists and ``overwrite`` is false (all before anything is
        created).
    OSError
        The directory cannot be created or written (permissions, space); the message names
        ``path``, not the temporary file.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with atomic_output(target) as out:
    ...     _ = out.file.write(b"complete")
    >>> open(target, "rb").read(), os.listdir(os.path.dirname(target))
    (b'complete', ['a.bin'])
    """
    overwrite = _flag("overwrite", overwrite)
    target = check_output_path(path)
    _check_target(target, overwrite)
    try:
        directory_path = target.parent if str(target.parent) else Path(".")
        directory_path.mkdir(parents=True, exist_ok=True)
        directory = _Directory(directory_path)
    except OSError as exc:
        raise naming_path(exc, target) from exc
    name = target.name
    named = ""  # a temporary name in the directory that must not outlive this call
    f: BinaryIO | None = None
    try:
        try:
            directory.clean_stale()
            fd = directory.open_unnamed()
            if fd is not None:
                f = os.fdopen(fd, "w+b")
                writer_path = f"/proc/self/fd/{fd}"
            else:
                named = _temporary_name(name)
                f = os.fdopen(directory.open_named(named), "w+b")
                writer_path = directory.join(named)
        except OSError as exc:
            raise naming_path(exc, target) from exc
        yield AtomicTarget(file=f, path=writer_path, target=target)
        _check_target(target, overwrite)
        try:
            f.flush()
            os.fsync(f.fileno())
            if not named:
                try:  # a new target appears in one step, with no name in between
                    directory.link(writer_path, name)
                except FileExistsError:
                    if not overwrite:
                        raise ValueError(
                            f"output {os.fspath(target)!r} appeared while it was being "
                            "written; pass overwrite=True (--overwrite) to replace it"
                        ) from None
                    named = _temporary_name(name)
                    directory.link(writer_path, named)
                    directory.replace(named, name)  # the only window that can leave `named`
                    named = ""
            elif overwrite:
                directory.replace(named, name)
                named = ""
            else:
                try:  # link refuses to replace: no race with a file appearing meanwhile
                    directory.link(named, name)
                except FileExistsError:
                    raise ValueError(
                        f"output {os.fspath(target)!r} appeared while it was being written; "
                        "pass overwrite=True (--overwrite) to replace it"
                    ) from None
                except OSError:  # file systems without hard links
                    _check_target(target, overwrite)
                    directory.replace(named, name)
                    named = ""
            directory.sync()
        except OSError as exc:  # the message names the temporary file, not the target
            raise naming_path(exc, target) from exc
    finally:
        try:
            if f is not None:
                f.close()
            if named:
                directory.unlink(named)
        finally:
            directory.close()

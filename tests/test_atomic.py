"""ptyfast._atomic.atomic_output: the one crash-safe writer (new file, overwrite, failures,
directory targets, modes, path access, stale temporaries) and the NPZ writer on top of it."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest

from ptyfast import _atomic
from ptyfast._atomic import atomic_output, new_file_mode
from ptyfast._npz import NpzStreamWriter, save_npz

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE")


@pytest.fixture(params=["unnamed", "named"])
def mode(request, monkeypatch):
    """Run a test through both ways of holding the data: the unnamed O_TMPFILE file (Linux)
    and the named temporary file used where O_TMPFILE is missing."""
    if request.param == "unnamed":
        if not sys.platform.startswith("linux"):
            pytest.skip("O_TMPFILE is Linux-only")
    else:
        monkeypatch.setattr(_atomic._Directory, "open_unnamed", lambda self: None)
    return request.param


def _names(d):
    return sorted(os.listdir(d))


def test_new_file_appears_complete_with_the_umask_mode(tmp_path, mode):
    target = tmp_path / "sub" / "dir" / "a.bin"  # directories are created
    old = os.umask(0o027)
    try:
        with atomic_output(target) as out:
            out.file.write(b"hello ")
            out.file.write(b"world")
            assert not target.exists()
        assert stat.S_IMODE(target.stat().st_mode) == 0o640 == new_file_mode()
    finally:
        os.umask(old)
    assert target.read_bytes() == b"hello world"
    assert _names(target.parent) == ["a.bin"]


def test_overwrite_replaces_and_the_old_file_stays_until_the_end(tmp_path, mode):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with atomic_output(target) as out:
        out.file.write(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["a.bin"]


def test_exception_mid_write_leaves_old_file_and_nothing_else(tmp_path, mode):
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as out:
        out.file.write(b"x" * 100_000)
        raise RuntimeError("boom")
    assert _names(tmp_path) == []
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as out:
        out.file.write(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["a.bin"]


def test_directory_target_and_existing_file_without_overwrite_are_refused(tmp_path, mode):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="is a directory"), atomic_output(tmp_path / "d"):
        pytest.fail("the block must not run")  # pragma: no cover
    existing = tmp_path / "e.bin"
    existing.write_bytes(b"keep")
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        with atomic_output(existing, overwrite=False):
            pytest.fail("the block must not run")  # pragma: no cover
    assert existing.read_bytes() == b"keep"
    assert _names(tmp_path) == ["d", "e.bin"]


def test_file_appearing_meanwhile_is_not_clobbered_without_overwrite(tmp_path, mode):
    target = tmp_path / "a.bin"
    with pytest.raises(ValueError, match="exists|appeared while"):
        with atomic_output(target, overwrite=False) as out:
            out.file.write(b"mine")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert _names(tmp_path) == ["a.bin"]


def test_path_opens_the_same_file_for_path_writers(tmp_path, mode):
    target = tmp_path / "a.bin"
    with atomic_output(target) as out:
        with open(out.path, "wb") as f:  # a writer that wants a path
            f.write(b"via path")
    assert target.read_bytes() == b"via path"
    assert _names(tmp_path) == ["a.bin"]


def test_hdf5_through_the_file_object(tmp_path, mode):
    h5py = pytest.importorskip("h5py")
    target = tmp_path / "a.h5"
    with atomic_output(target) as out, h5py.File(out.file, "w") as f:
        f["x"] = np.arange(5)
    with h5py.File(target, "r") as f:
        np.testing.assert_array_equal(f["x"][()], np.arange(5))
    assert _names(tmp_path) == ["a.h5"]


@linux_only
def test_unnamed_file_has_no_name_while_written(tmp_path):
    with atomic_output(tmp_path / "a.bin") as out:
        out.file.write(b"data")
        out.file.flush()
        assert out.path.startswith("/proc/self/fd/")
        assert _names(tmp_path) == []  # nothing a kill -9 could leave behind
    assert _names(tmp_path) == ["a.bin"]


def _dead_pid():
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.skipif(os.name != "posix", reason="pid probing")
def test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    host = _atomic._host_tag()
    dead = f".ptyfast-tmp-{_dead_pid()}-{host}-0123abcd.old.npz"
    live = f".ptyfast-tmp-{os.getppid()}-{host}-0123abcd.other.npz"
    foreign = f".ptyfast-tmp-{_dead_pid()}-{int(host, 16) ^ 1:08x}-0123abcd.x.npz"
    unrelated = ".old.npz.tmp"
    for name in (dead, live, foreign, unrelated):
        (tmp_path / name).write_bytes(b"leftover")
    with atomic_output(tmp_path / "new.bin") as out:
        out.file.write(b"x")
    assert _names(tmp_path) == sorted([live, foreign, unrelated, "new.bin"])


def test_temporary_names_are_recognisable_and_bounded():
    name = _atomic._temporary_name("x" * 300)
    assert len(name.encode()) <= 255
    m = _atomic._TMP_NAME.match(name)
    assert m and int(m.group(1)) == os.getpid() and m.group(2) == _atomic._host_tag()


def test_npz_writer_streams_atomically_and_never_pickles(tmp_path, mode):
    path = tmp_path / "d.npz"
    with NpzStreamWriter(path) as w:
        w.write("a", np.arange(4, dtype=np.int64))
        with w.stream("big", (5, 2), np.complex64) as s:
            s.append(np.ones((3, 2), np.complex64))
            s.append(np.full((2, 2), 1j, np.complex64))
        w.write_metadata({"seed": np.int64(3)})
    with np.load(path, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["a"], np.arange(4))
        assert f["big"].dtype == np.complex64 and f["big"][3, 0] == 1j
        assert f["_metadata"].item() == '{"seed": 3}'
    with pytest.raises(TypeError, match="obj must be a numeric or string array"):
        save_npz(tmp_path / "e.npz", {"ok": np.zeros(3), "obj": np.array([None, 1])})
    with (
        pytest.raises(ValueError, match="wrote 1 rows, declared 2"),
        NpzStreamWriter(tmp_path / "f.npz") as w,
        w.stream("x", (2,), np.float32) as s,
    ):
        s.append(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="exists"):
        save_npz(path, {"a": np.zeros(1)}, overwrite=False)
    assert _names(tmp_path) == ["d.npz"]


@pytest.mark.parametrize("theirs", [["theirs", "zarr.json"], []])
def test_a_store_that_appears_while_one_is_published_without_overwrite_is_kept(
    tmp_path, monkeypatch, theirs
):
    """Another writer's store (or an empty directory) appearing at the path between the
    publication's check and its rename is kept: without ``overwrite`` the rename refuses to
    replace it (``renameat2(RENAME_NOREPLACE)``), and this store's files are removed."""
    from ptyfast.io import _dirstore

    target = tmp_path / "a.zarr"
    real = _dirstore._fsync_tree

    def racing(path):  # runs after the check, before the rename
        real(path)
        target.mkdir()
        for name in theirs:
            (target / name).write_text("theirs")

    monkeypatch.setattr(_dirstore, "_fsync_tree", racing)
    with pytest.raises(ValueError, match="created while this one was being written"):
        with _dirstore.atomic_directory(target) as tmp:
            (tmp / "zarr.json").write_text("mine")
            (tmp / "mine").write_text("mine")
    assert sorted(p.name for p in target.iterdir()) == theirs
    assert all(p.read_text() == "theirs" for p in target.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]

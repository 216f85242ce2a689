"""Adversarial audit of ptyfast.distributed (scale-out, resume, atomic publication).

Complements tests/test_distributed.py. Every dataset is compared bit for bit with the
single-process ``ptyfast.simulate`` of the same experiment and seed. The cluster is a real
``distributed.LocalCluster`` (2 worker processes, 1 thread each); interruptions are real
subprocesses killed with SIGKILL or SIGINT at several instants, and a worker process killed
with SIGKILL from outside while shards run. No mocks.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")

import cloudpickle  # noqa: E402  (a dependency of distributed)
from _dask_helpers import (  # noqa: E402
    Hold,
    assert_same,
    client_fixture,  # noqa: F401  (the fixture `client`)
    experiment,
    markers,
)

import ptyfast  # noqa: E402
import ptyfast.distributed as D  # noqa: E402
from ptyfast import objects, probes, scans  # noqa: E402
from ptyfast.model import provenance as _prov  # noqa: E402

# The plugins below travel to the workers by value (the workers cannot import this file).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEED = 11
TESTS = Path(__file__).resolve().parent
SRC = Path(ptyfast.__file__).resolve().parents[1]  # the python/ directory of this checkout


# --------------------------------------------------------------------------- sizes, dtypes


def _detectors():
    eiger = ptyfast.Detector.preset("eiger")
    wrap = ptyfast.Detector(
        qe=0.8, gain=40.0, offset=100.0, read_noise=3.0, dtype="uint16", overflow="wrap"
    )
    return {"ideal": ptyfast.Detector(), "eiger-uint32": eiger, "uint16-wrap": wrap}


@pytest.mark.parametrize(
    ("n", "shard_size", "det", "modes", "patches", "compress"),
    [
        (1, None, "ideal", 1, False, False),  # one pattern, default shard
        (1, 7, "eiger-uint32", 2, True, False),  # one pattern, shard larger than it
        (37, 8, "ideal", 1, False, False),  # 37 = 4 x 8 + 5: a short last shard
        (37, 5, "eiger-uint32", 3, False, True),  # 3 modes, integer readings, compressed
        (23, 1000, "uint16-wrap", 2, True, False),  # shard larger than the dataset
        (23, 1, "uint16-wrap", 1, False, True),  # one pattern per chunk and task
    ],
)
def test_edge_sizes_dtypes_and_modes_are_the_single_process_bits(
    client, tmp_path, n, shard_size, det, modes, patches, compress
):
    e = experiment(n, _detectors()[det], modes)
    ref = ptyfast.simulate(e, seed=SEED, patches=patches)
    store = tmp_path / "s.zarr"
    got = D.simulate(
        e,
        store,
        seed=SEED,
        client=client,
        shard_size=shard_size,
        patches=patches,
        compress=compress,
    )
    assert got == [store]
    ds = ptyfast.open(store)
    assert_same(ds, ref)
    assert ds.diffraction.dtype == np.dtype(e.detector.dtype)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    # Every seed used is recorded: the noise seed and the experiment's own seeds.
    seeds = ds.provenance["seeds"]
    assert seeds["noise"] == SEED == ds.provenance["simulation"]["seed"]
    assert seeds == ref.provenance["seeds"]


def test_a_generator_seed_is_drawn_as_the_single_process_call_draws_it(client, tmp_path):
    e = experiment(20)
    g1, g2 = np.random.default_rng(99), np.random.default_rng(99)
    ref = ptyfast.simulate(e, seed=g1)
    D.simulate(e, tmp_path / "g.zarr", seed=g2, client=client, shard_size=6)
    assert_same(ptyfast.open(tmp_path / "g.zarr"), ref)
    # ... and both generators were advanced alike (the next draw is the same).
    assert g1.integers(2**63) == g2.integers(2**63)


def test_numpy_integer_seed_and_shard_size_are_accepted_as_ints(client, tmp_path):
    e = experiment(12)
    ref = ptyfast.simulate(e, seed=SEED)
    D.simulate(e, tmp_path / "n.zarr", seed=np.int64(SEED), client=client, shard_size=np.int32(5))
    assert_same(ptyfast.open(tmp_path / "n.zarr"), ref)


def test_the_largest_seed_and_a_store_of_the_single_process_writer(client, tmp_path):
    """Seed 2**64 - 1 (beyond int64) travels through the manifest and the store's attributes;
    a store written by ``ptyfast.simulate_to`` for the same recipe is complete: left as is."""
    e = experiment(10)
    seed = 2**64 - 1
    ref = ptyfast.simulate(e, seed=seed)
    D.simulate(e, tmp_path / "big.zarr", seed=seed, client=client, shard_size=3)
    assert_same(ptyfast.open(tmp_path / "big.zarr"), ref)
    single = tmp_path / "single.zarr"
    ptyfast.simulate_to(e, single, seed=seed)
    mtime = (single / "zarr.json").stat().st_mtime_ns
    assert D.simulate(e, single, seed=seed, client=client) == [single]
    assert (single / "zarr.json").stat().st_mtime_ns == mtime
    assert_same(ptyfast.open(single), ref)


# --------------------------------------------------------------------------- output paths


def test_a_long_store_name_gets_a_hidden_sibling_within_the_name_limit(client, tmp_path):
    """A store name the file system accepts (250 bytes) failed with ``OSError: File name too
    long`` on its hidden sibling ``.<name>.ptyfast-partial`` (the single-process Zarr writer
    shortens its sibling's name; the cluster path did not)."""
    e = experiment(9)
    store = tmp_path / ("a" * 245 + ".zarr")
    D.simulate(e, store, seed=SEED, client=client)
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert [p.name for p in tmp_path.iterdir()] == [store.name]
    assert len(D.partial_path(store, "0" * 64).name) <= 255


def test_a_relative_store_is_the_clients_not_the_workers(client, tmp_path, monkeypatch):
    """The workers were sent the hidden store's path as given: a relative one names another
    directory in a worker whose working directory is not the client's (a worker started
    elsewhere, or a client that changed directory); the shards failed with
    FileNotFoundError."""
    e = experiment(15)
    monkeypatch.chdir(tmp_path)
    assert D.simulate(e, "rel.zarr", seed=SEED, client=client, shard_size=4) == [Path("rel.zarr")]
    assert_same(ptyfast.open(tmp_path / "rel.zarr"), ptyfast.simulate(e, seed=SEED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel.zarr"]
    workers_cwd = set(client.run(os.getcwd).values())
    assert os.fspath(tmp_path) not in workers_cwd  # the case this test is about


def test_output_path_edge_cases(client, tmp_path):
    e = experiment(9)
    ref = ptyfast.simulate(e, seed=SEED)
    # An existing file is refused whatever overwrite says, and kept.
    f = tmp_path / "file.zarr"
    f.write_bytes(b"keep")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="exists and is a file"):
            D.simulate(e, f, seed=SEED, client=client, overwrite=overwrite)
    assert f.read_bytes() == b"keep"
    # A non-.zarr name is refused before any work, as by the command line (it wrote a Zarr
    # directory named like another format's file); the suffix's case does not matter.
    for odd in ("out.h5", "out.npz", "out", "out.zarr.tmp"):
        with pytest.raises(ValueError, match=r"store must be a \.zarr path"):
            D.simulate(e, tmp_path / odd, seed=SEED, client=client)
    D.simulate(e, tmp_path / "up.ZARR", seed=SEED, client=client)
    assert_same(ptyfast.open(tmp_path / "up.ZARR"), ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.zarr", "up.ZARR"]
    # A store in missing directories: they are made.
    deep = tmp_path / "x" / "y" / "d.zarr"
    D.simulate(e, deep, seed=SEED, client=client)
    assert_same(ptyfast.open(deep), ref)
    assert sorted(p.name for p in (tmp_path / "x" / "y").iterdir()) == ["d.zarr"]
    assert not any(p.name.endswith(D.PARTIAL_SUFFIX) for p in tmp_path.iterdir())


@pytest.mark.parametrize("name", [".", "..", "sub/.."])
def test_the_working_directory_is_not_a_store_name(client, tmp_path, monkeypatch, name):
    """``store="."`` in an empty directory ran every shard, then failed to rename the working
    directory (``OSError: EBUSY``), leaving a hidden partial store beside it."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work if name == "sub/.." else work / "sub")  # "sub" is empty
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="store must name a store to create"):
            D.simulate(experiment(9), name, seed=SEED, client=client, overwrite=overwrite)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert [p.name for p in work.iterdir()] == ["sub"] and not any((work / "sub").iterdir())


def test_an_unwritable_directory_fails_naming_the_store_and_writes_nothing(client, tmp_path):
    """An ``OSError`` (its type kept) names the store, before any task; nothing is written.
    Root writes into read-only directories, so as root the directories are in sysfs, where
    the kernel refuses to create any."""
    e = experiment(9)
    if os.geteuid() == 0:
        assert os.path.ismount("/sys"), "the test needs sysfs at /sys when run as root"
        stores = [Path("/sys/s.zarr"), Path("/sys/ptyfast-audit/s.zarr")]
        for store in stores:
            with pytest.raises(PermissionError, match=re.escape(f"'{store}'")):
                D.simulate(e, store, seed=SEED, client=client)
        assert not [q for q in Path("/sys").iterdir() if "s.zarr" in q.name or "ptyfast" in q.name]
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=re.escape(f"'{ro / 's.zarr'}'")):
            D.simulate(e, ro / "s.zarr", seed=SEED, client=client)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": "7"}, TypeError, "seed"),
        ({"store": 3}, TypeError, "store"),
        ({"client": "tcp://127.0.0.1:1"}, TypeError, "client"),
        ({"compress": "yes"}, TypeError, "compress"),
        ({"overwrite": None}, TypeError, "overwrite"),
        ({"progress": 1}, TypeError, "progress"),
        ({"shard_size": True}, TypeError, "shard_size"),
        ({"shard_size": -3}, ValueError, "shard_size"),
        ({"shard_size": 2.0}, TypeError, "shard_size"),
        ({"embed_max_bytes": -1}, ValueError, "embed_max_bytes"),
    ],
)
def test_bad_arguments_name_themselves_before_any_work(client, tmp_path, kw, exc, match):
    e = experiment(9)
    args = {"seed": SEED, "client": client, "store": tmp_path / "b.zarr", **kw}
    store = args.pop("store")
    before = set(client.run(os.getpid))
    with pytest.raises(exc, match=match):
        D.simulate(e, store, **args)
    assert list(tmp_path.iterdir()) == []
    assert set(client.run(os.getpid)) == before


# --------------------------------------------------------------------------- campaigns


def _campaign(n: int = 3, seed: int = 4):
    from test_campaign import small_spec

    spec = small_spec(detector={"preset": {"choice": ["eiger", "pilatus", "ideal"]}})
    return ptyfast.Campaign(spec, n_experiments=n, seed=seed)


def test_a_campaign_with_integer_detectors_resumes_only_what_is_missing(client, tmp_path):
    c = _campaign()
    out = tmp_path / "camp"
    paths = D.simulate(c, out, client=client, shard_size=3)
    refs = [c.simulate(i) for i in range(3)]
    dtypes = set()
    for p, ref in zip(paths, refs, strict=True):
        ds = ptyfast.open(p)
        assert_same(ds, ref)
        dtypes.add(ds.diffraction.dtype.kind)
    assert "u" in dtypes  # an integer detector was drawn (the case this test is about)
    # Store 1 lost: a re-run rebuilds it alone, with other shards; the others are left.
    shutil.rmtree(paths[1])
    before = [(p / "zarr.json").stat().st_mtime_ns for p in (paths[0], paths[2])]
    assert D.simulate(c, out, client=client, shard_size=5) == paths
    assert [(p / "zarr.json").stat().st_mtime_ns for p in (paths[0], paths[2])] == before
    for p, ref in zip(paths, refs, strict=True):
        assert_same(ptyfast.open(p), ref)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    # Another recipe's store at one of its paths is refused, never silently kept.
    ptyfast.simulate_to(experiment(9), paths[2], seed=1, overwrite=True)
    with pytest.raises(ValueError, match="holds another dataset"):
        D.simulate(c, out, client=client)


def test_a_campaign_target_that_is_a_folder_stops_before_any_task(client, tmp_path):
    """A user's folder at experiment 2's path was found by experiment 2's planning task,
    after experiments 0 and 1 had been laid out and some of their shards had run (and went
    on running after the error)."""
    c = _campaign()
    out = tmp_path / "camp"
    out.mkdir()
    folder = c.path_for(out, 2, ".zarr")
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="is a directory that is not a Zarr store"):
        D.simulate(c, out, client=client, shard_size=2)
    time.sleep(0.5)  # shards that were submitted would have written by now
    assert sorted(p.name for p in out.iterdir()) == [folder.name]
    assert (folder / "keep.txt").read_text() == "precious"


def test_a_campaign_into_a_relative_directory(client, tmp_path, monkeypatch):
    c = _campaign(2)
    monkeypatch.chdir(tmp_path)
    paths = D.simulate(c, "camp", client=client, shard_size=4)
    assert paths == [c.path_for(Path("camp"), i, ".zarr") for i in range(2)]
    for i in range(2):
        assert_same(ptyfast.open(tmp_path / paths[i]), c.simulate(i))
    assert sorted(p.name for p in (tmp_path / "camp").iterdir()) == sorted(p.name for p in paths)


# --------------------------------------------------------------------------- interruptions

# A job that a non-interactive shell starts in the background (CI's) inherits SIGINT ignored,
# and Python then installs no handler: the child processes below restore the default one, what
# an interactive user has, so that SIGINT means Ctrl-C.
_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
#: ``python -m ptyfast`` with Ctrl-C restored.
_PTYFAST = [
    sys.executable,
    "-c",
    _CTRL_C + "import sys; from ptyfast.cli import main; sys.exit(main())",
]

# A client in its own process, on the module's cluster: D.simulate(experiment(n), ...).
_DRIVER = _CTRL_C + textwrap.dedent(
    """
    import json, sys
    args = json.loads(sys.argv[1])
    from ptyfast.model import provenance
    if args.get("version"):
        provenance.__version__ = args["version"]
    import ptyfast.distributed as D
    from distributed import Client
    from test_distributed_audit import experiment
    what = experiment(args["n"])
    if args.get("campaign"):
        from test_distributed_audit import _campaign
        what = _campaign(args["n"])
    with Client(args["address"]) as c:
        D.simulate(what, args["store"], seed=args["seed"], client=c,
                   shard_size=args["shard"], overwrite=args["overwrite"])
    print("published")
    """
)


def _driver(
    client, store: Path, *, n: int, seed, shard: int, overwrite: bool = False, campaign=False
):
    import json

    args = {
        "campaign": campaign,
        "address": client.scheduler.address,
        "store": os.fspath(store),
        "n": n,
        "seed": seed,
        "shard": shard,
        "overwrite": overwrite,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(SRC), os.fspath(TESTS)])}
    return subprocess.Popen(
        [sys.executable, "-c", _DRIVER, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _shard_tasks(dask_scheduler) -> int:
    return sum("shard" in str(k) for k in dask_scheduler.tasks)


def _queued(dask_scheduler) -> int:
    return len(dask_scheduler.queued) + len(dask_scheduler.unrunnable)


def _busy_threads(dask_worker) -> int:
    return len(dask_worker.active_threads)


def _settle(client, store: Path) -> list[str]:
    """Wait until the scheduler holds no shard task (a killed client's are dropped once the
    scheduler sees it gone) and no worker runs one (a dropped task that was executing runs
    to its end all the same); the markers then."""
    deadline = time.monotonic() + 60
    while client.run_on_scheduler(_shard_tasks) or any(client.run(_busy_threads).values()):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not settle")
        time.sleep(0.05)
    return markers(store)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_client_resumes_with_another_shard_size_to_the_same_bits(
    client, tmp_path, monkeypatch, sig
):
    n = 37
    store, hold = tmp_path / "r.zarr", tmp_path / "hold"
    hold.touch()
    client.register_plugin(Hold(os.fspath(store), os.fspath(hold), 3), name="audit-hold")
    try:
        first = _driver(client, store, n=n, seed=SEED, shard=2)
        deadline = time.monotonic() + 120
        while len(markers(store)) < 3:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run made no progress"
            time.sleep(0.02)
        first.send_signal(sig)
        out, err = first.communicate(timeout=60)
        assert first.returncode != 0 and "published" not in out, err
    finally:
        hold.unlink()
        client.unregister_worker_plugin("audit-hold")
    done = _settle(client, store)
    assert 3 <= len(done) < -(-n // 2) and not store.exists()
    # Another recipe or other storage options: refused, naming the store, nothing changed.
    e = experiment(n)
    for kw in ({"seed": SEED + 1}, {"compress": True}, {"patches": True}):
        args = {"seed": SEED, "client": client, **kw}
        with pytest.raises(ValueError, match=r"partial simulation of another recipe.*overwrite"):
            D.simulate(e, store, **args)
        assert markers(store) == done and not store.exists()
    # A partial store made by another ptyfast version is another recipe too.
    with monkeypatch.context() as m:
        m.setattr(_prov, "__version__", "0.0.0+other")
        with pytest.raises(ValueError, match="another recipe"):
            D.simulate(e, store, seed=SEED, client=client)
    assert markers(store) == done and not store.exists()
    # The same recipe resumes, with another shard size, into the uninterrupted bits.
    assert D.simulate(e, store, seed=SEED, client=client, shard_size=5) == [store]
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr"]


def test_a_complete_store_of_other_options_or_version_is_refused_and_kept(
    client, tmp_path, monkeypatch
):
    e = experiment(12)
    store = tmp_path / "c.zarr"
    with monkeypatch.context() as m:
        m.setattr(_prov, "__version__", "0.0.0+other")
        D.simulate(e, store, seed=SEED, client=client)
    old = ptyfast.open(store)
    assert old.provenance["ptyfast_version"] == "0.0.0+other"
    for kw in ({}, {"compress": True}, {"patches": True}, {"seed": SEED + 1}):
        args = {"seed": SEED, "client": client, **kw}
        with pytest.raises(ValueError, match="exists and holds another dataset"):
            D.simulate(e, store, **args)
    assert_same(ptyfast.open(store), old)
    # overwrite=True replaces it with this version's bits.
    D.simulate(e, store, seed=SEED, client=client, overwrite=True)
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr"]


@pytest.mark.slow
def test_a_client_killed_at_any_instant_leaves_the_old_store_or_the_whole_new_one(client, tmp_path):
    """``overwrite=True`` over an existing store, the client SIGKILLed at several instants:
    after k shards, when every shard is done, and when publication starts (the progress
    directory removed). At each, the target reads as the old dataset or the new one."""
    n = 40
    e = experiment(n)
    store = tmp_path / "o.zarr"
    old_ref = ptyfast.simulate(e, seed=SEED + 1)
    new_ref = ptyfast.simulate(e, seed=SEED)
    D.simulate(e, store, seed=SEED + 1, client=client)
    seen = []

    def kill_when(ready) -> None:
        p = _driver(client, store, n=n, seed=SEED, shard=1, overwrite=True)
        deadline = time.monotonic() + 120
        while not ready() and p.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        _settle(client, store)
        ds = ptyfast.open(store)
        is_new = ds.diffraction.tobytes() == new_ref.diffraction.tobytes()
        assert_same(ds, new_ref if is_new else old_ref)
        seen.append(is_new)
        assert [q.name for q in tmp_path.iterdir() if not q.name.startswith(".")] == ["o.zarr"]

    kill_when(lambda: len(markers(store)) >= 1)
    kill_when(lambda: len(markers(store)) >= n // 2)
    kill_when(lambda: len(markers(store)) >= n)
    kill_when(lambda: any(not (q / D.PROGRESS_DIR).exists() for q in D.partials(store)))
    kill_when(lambda: False)  # runs to the end
    assert seen[-1] is True and seen[0] is False
    assert [q.name for q in tmp_path.iterdir()] == ["o.zarr"]


class _KillMidShard(distributed.WorkerPlugin):
    """SIGKILLs the worker (once in the cluster) while it executes a shard of ``store``, as
    soon as the shard's first chunk file exists (its marker not yet, or just written)."""

    def __init__(self, store: str, flag: str, rows: int) -> None:
        self.store, self.flag, self.rows = store, flag, rows

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "shard" not in str(key) or os.path.exists(self.flag):
            return
        if len(markers(Path(self.store))) < 2:
            return
        a, b = (int(v) for v in str(key).split("-")[2:4])
        ps = D.partials(self.store)  # one run at a time here
        if len(ps) != 1:
            return
        partial = ps[0]
        chunk = partial / "diffraction" / f"c.{a // self.rows}.0.0"
        marker = partial / D.PROGRESS_DIR / "done" / f"{a}-{b}"

        def watch() -> None:
            t = time.monotonic()
            while not chunk.exists() and time.monotonic() - t < 10:
                time.sleep(0.0002)
            try:
                with open(self.flag, "x") as f:
                    f.write(f"{os.getpid()} {marker.exists()}")
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()


def test_a_worker_killed_while_writing_a_shard_gives_the_same_bits(client, tmp_path):
    e = experiment(60, ptyfast.Detector.preset("eiger"), modes=2)
    ref = ptyfast.simulate(e, seed=SEED, patches=True)
    store, flag = tmp_path / "w.zarr", tmp_path / "killed"
    plugin = _KillMidShard(os.fspath(store), os.fspath(flag), 4)
    client.register_plugin(plugin, name="audit-kill")
    try:
        D.simulate(e, store, seed=SEED, client=client, shard_size=4, patches=True)
    finally:
        client.unregister_worker_plugin("audit-kill")
    assert flag.exists(), "no worker was killed"
    assert_same(ptyfast.open(store), ref)
    client.wait_for_workers(2, timeout=60)
    assert int(flag.read_text().split()[0]) not in set(client.run(os.getpid).values())


def test_the_thread_count_of_the_workers_does_not_change_the_bits(tmp_path):
    e = experiment(30, modes=2)
    ref = ptyfast.simulate(e, seed=SEED)
    with D.local_client(1, threads=2) as c:
        assert set(c.run(lambda: os.environ["RAYON_NUM_THREADS"]).values()) == {"2"}
        D.simulate(e, tmp_path / "t.zarr", seed=SEED, client=c, shard_size=30)
    assert_same(ptyfast.open(tmp_path / "t.zarr"), ref)


class _Orphan(distributed.WorkerPlugin):
    """Holds the first shard to start after two shards of ``store`` are done (the first
    client's, ``a_held`` records its key) until ``hold_a`` is removed, and records its end in
    ``a_done``; while ``hold_b`` exists, holds the end of the other run's shard of the same
    patterns (written and marked done, not yet reported to its client)."""

    def __init__(self, store: str, hold_a: str, a_held: str, a_done: str, hold_b: str) -> None:
        self.store, self.hold_a, self.a_held = store, hold_a, a_held
        self.a_done, self.hold_b = a_done, hold_b

    def transition(self, key, start, finish, **kwargs):
        if "shard" not in str(key):
            return
        if finish == "executing" and not os.path.exists(self.a_held):
            if len(markers(Path(self.store))) >= 2:
                try:  # once in the cluster: both workers may get here
                    open(self.a_held + ".once", "x").close()
                except FileExistsError:
                    return
                with open(self.a_held + ".tmp", "w") as f:
                    f.write(str(key))
                os.rename(self.a_held + ".tmp", self.a_held)  # whole when it appears
                while os.path.exists(self.hold_a):
                    time.sleep(0.01)
        elif finish in ("memory", "error") and os.path.exists(self.a_held):
            with open(self.a_held) as f:
                held = f.read()
            if held == str(key):
                Path(self.a_done).touch()
            elif str(key).split("-")[2] == held.split("-")[2]:
                while os.path.exists(self.hold_b):
                    time.sleep(0.01)


def _until(cond, what: str, timeout: float = 120.0, detail=None) -> None:
    """Wait for ``cond()``; a RuntimeError (not an AssertionError) when it never holds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}{detail() if detail else ''}")
        time.sleep(0.01)


def test_an_orphaned_shard_of_a_killed_client_never_mixes_into_a_new_recipe(client, tmp_path):
    """Client A (seed 12) is SIGKILLed while one of its shards is held on a worker; client B
    (seed 11, overwrite=True, another cluster on the same filesystem) discards A's partial
    store and lays out its own; A's orphaned shard then runs (and fails: its store is gone)
    before B publishes. With one hidden store per path, the orphan wrote A's bits and its done
    marker into B's store, which was published mixing both recipes silently (found by the
    distributed audit, 2026-12-03); each recipe now has its own (``partial_path``)."""
    n = 40
    e = experiment(n)
    store = tmp_path / "m.zarr"
    _settle(client, store)  # no shard of an earlier test's killed client may still run
    files = {k: tmp_path / k for k in ("hold_a", "a_held", "a_done", "hold_b")}
    files["hold_a"].touch()
    files["hold_b"].touch()
    plugin = _Orphan(os.fspath(store), *(os.fspath(files[k]) for k in files))
    client.register_plugin(plugin, name="audit-orphan")
    try:
        first = _driver(client, store, n=n, seed=SEED + 1, shard=4)

        # A's other shards finish (those queued behind the held one on its worker wait).
        def a_stuck() -> bool:
            if first.poll() is not None:
                return True
            if not files["a_held"].exists():
                return False
            idle = any(not v for v in client.processing().values())
            return idle and not client.run_on_scheduler(_queued)

        _until(
            a_stuck,
            "the first client",
            60.0,
            lambda: (files["a_held"].exists(), markers(store), client.processing()),
        )
        if first.poll() is not None:
            raise RuntimeError(first.communicate())
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
        held = int(files["a_held"].read_text().split("-")[2])
        # A new recipe over it, overwrite=True (discard the partial store of another
        # recipe), on a second cluster sharing the filesystem (as `--workers 1` after an
        # interrupted `--scheduler` run).
        with D.local_client(1, threads=1) as other:
            other.register_plugin(plugin, name="audit-orphan")
            result: list = []
            t = threading.Thread(
                target=lambda: result.append(
                    D.simulate(e, store, seed=SEED, client=other, shard_size=4, overwrite=True)
                )
            )
            t.start()
            _until(lambda: f"{held}-{held + 4}" in markers(store) or not t.is_alive(), "B")
            files["hold_a"].unlink()  # the orphan writes now, then B finishes
            _until(files["a_done"].exists, "the orphaned shard")
            files["hold_b"].unlink()
            t.join(timeout=120)
        if result != [[store]]:
            raise RuntimeError(f"the second run did not complete: {result}")
    finally:
        for f in (files["hold_a"], files["hold_b"]):
            f.unlink(missing_ok=True)
        client.unregister_worker_plugin("audit-orphan")
        _settle(client, store)
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))


def test_a_run_without_a_seed_says_why_it_cannot_resume_and_resumes_with_the_seed(client, tmp_path):
    """``seed=None`` (and a CLI recipe without ``seed``, whose help promises that re-running
    the same command resumes) draws a new seed each run: the re-run was refused with two bare
    hashes, not saying that the seed was the difference nor which seed would resume it."""
    n = 24
    store, hold = tmp_path / "ns.zarr", tmp_path / "hold"
    hold.touch()
    client.register_plugin(Hold(os.fspath(store), os.fspath(hold), 2), name="audit-hold")
    try:
        first = _driver(client, store, n=n, seed=None, shard=2)
        _until(lambda: len(markers(store)) >= 2 or first.poll() is not None, "the first run")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        hold.unlink()
        client.unregister_worker_plugin("audit-hold")
    assert 2 <= len(_settle(client, store)) < n // 2 and not store.exists()
    e = experiment(n)
    with pytest.raises(ValueError, match=r"noise seed (\d+), this run with \d+.*give seed \1"):
        D.simulate(e, store, seed=None, client=client)
    import re

    with pytest.raises(ValueError) as info:
        D.simulate(e, store, seed=SEED, client=client)
    old = int(re.search(r"give seed (\d+)", str(info.value)).group(1))
    assert not store.exists()
    D.simulate(e, store, seed=old, client=client)  # resumes
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=old))


_RECIPE = """
[experiment]
photons = 1e4
seed = 5

[object]
family = "dead_leaves"
shape = [48, 48]
seed = 1

[probe]
builder = "gaussian"
N = 16
sigma_px = 3.0

[scan]
builder = "fermat_spiral"
n = 30
step_px = 1.5

[detector]
preset = "pilatus"
"""


def test_cli_scheduler_run_with_a_relative_output_from_another_directory(client, tmp_path):
    """``ptyfast simulate -o run.zarr --scheduler ...`` run from a directory that is not the
    workers' (the usual case with a real cluster) sent the workers the relative path."""
    from ptyfast.model import recipes

    (tmp_path / "r.toml").write_text(_RECIPE)
    env = {**os.environ, "PYTHONPATH": os.fspath(SRC)}
    cmd = [sys.executable, "-m", "ptyfast", "simulate", "--recipe", "r.toml", "-o", "run.zarr"]
    cmd += ["--scheduler", client.scheduler.address, "--shard-size", "7", "--quiet"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ref = recipes.plan(recipes.load(tmp_path / "r.toml")).simulate()
    ds = ptyfast.open(tmp_path / "run.zarr")
    assert ds.diffraction.dtype.kind == "u"
    assert_same(ds, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.toml", "run.zarr"]


# --------------------------------------------------------------------------- single-process
# streaming writers, killed for real

_WRITER = _CTRL_C + textwrap.dedent(
    """
    import sys
    import ptyfast
    from test_distributed_audit import big_experiment
    e = big_experiment()
    print("go", flush=True)
    ptyfast.simulate_to(e, sys.argv[1], seed=int(sys.argv[2]), overwrite=True, chunk_size=64)
    print("done", flush=True)
    """
)


def big_experiment() -> ptyfast.Experiment:
    return ptyfast.Experiment(
        objects.dead_leaves(192, seed=1),
        probes.gaussian(64, 12.0),
        scans.fermat_spiral(1500, 1.0),
        ptyfast.Detector.preset("eiger"),
        1e5,
        ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=64),
    )


@pytest.mark.slow
@pytest.mark.parametrize("ext", ["npz", "cxi", "zarr"])
def test_a_streaming_writer_killed_at_any_instant_leaves_the_old_file_or_the_new(tmp_path, ext):
    pytest.importorskip("h5py")
    e = big_experiment()
    old, new = 1, 2
    refs = {s: ptyfast.simulate(e, seed=s).diffraction.tobytes() for s in (old, new)}
    path = tmp_path / f"d.{ext}"
    ptyfast.simulate_to(e, path, seed=old)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(SRC), os.fspath(TESTS)])}
    states = []
    for sig, delay in [
        (signal.SIGKILL, 0.0),
        (signal.SIGKILL, 0.1),
        (signal.SIGKILL, 0.25),
        (signal.SIGKILL, 0.5),
        (signal.SIGINT, 0.15),
        (signal.SIGINT, 0.4),
    ]:
        p = subprocess.Popen(
            [sys.executable, "-c", _WRITER, os.fspath(path), str(new)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stdout.readline().strip() == "go"
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        finished = "done" in out
        got = ptyfast.open(path).diffraction.tobytes()
        assert got in (refs[old], refs[new]), (sig, delay)
        states.append((sig, delay, finished, got == refs[new]))
        if sig == signal.SIGINT and not finished:
            # Ctrl-C: the writer cleans up after itself, nothing hidden remains.
            assert p.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
            assert [q.name for q in tmp_path.iterdir()] == [path.name], states
        assert [q.name for q in tmp_path.iterdir() if not q.name.startswith(".")] == [path.name]
        # back to the old file for the next instant
        ptyfast.simulate_to(e, path, seed=old, overwrite=True)
    # A kill at the first instants left the old file (the run takes longer than that).
    assert states[0][3] is False, states
    # The next write removed whatever a killed writer left hidden.
    assert [q.name for q in tmp_path.iterdir()] == [path.name], states


def test_a_campaign_whose_client_is_killed_resumes_to_the_same_bits(client, tmp_path):
    c = _campaign(3)
    out = tmp_path / "camp"
    first_store = c.path_for(out, 0, ".zarr")
    hold = tmp_path / "hold"
    hold.touch()
    client.register_plugin(Hold(os.fspath(first_store), os.fspath(hold), 2), name="audit-hold")
    try:
        p = _driver(client, out, n=3, seed=None, shard=2, campaign=True)
        _until(lambda: len(markers(first_store)) >= 2 or p.poll() is not None, "the campaign")
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
    finally:
        hold.unlink()
        client.unregister_worker_plugin("audit-hold")
    _settle(client, first_store)
    partials = sorted(q.name for q in out.iterdir())
    assert len(partials) == 3 and all(q.endswith(D.PARTIAL_SUFFIX) for q in partials)
    # Another campaign (another seed) refuses to resume into these partial stores.
    with pytest.raises(ValueError, match="another recipe"):
        D.simulate(_campaign(3, seed=5), out, client=client)
    paths = D.simulate(c, out, client=client, shard_size=3)
    for i, path in enumerate(paths):
        assert_same(ptyfast.open(path), c.simulate(i))
    assert sorted(q.name for q in out.iterdir()) == sorted(q.name for q in paths)


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = {int(k) for k in f.read().split()}
            except OSError:
                continue
            todo += list(kids - out)
            out |= kids
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_ctrl_c_of_a_cli_run_on_a_local_cluster_stops_its_workers_and_resumes(tmp_path):
    """``ptyfast simulate --workers 2`` interrupted with SIGINT once shards are done: the
    local cluster's processes end with it (none goes on writing), and the same command
    completes the store to the bits of the single-process run."""
    from ptyfast.model import recipes

    recipe = tmp_path / "r.toml"
    recipe.write_text(_RECIPE.replace("n = 30", "n = 600").replace("[48, 48]", "[160, 160]"))
    store = tmp_path / "run.zarr"
    env = {**os.environ, "PYTHONPATH": os.fspath(SRC)}
    cmd = [*_PTYFAST, "simulate", "--recipe", os.fspath(recipe)]
    cmd += ["-o", os.fspath(store), "--workers", "2", "--shard-size", "1", "--quiet"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _until(lambda: len(markers(store)) >= 3 or p.poll() is not None, "the CLI run", 120)
    kids = _descendants(p.pid)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode != 0, (out, err[-2000:])
    assert kids  # the workers were found
    _until(lambda: not any(_alive(k) for k in kids), "the workers to end", 30)
    done = markers(store)
    assert 3 <= len(done) < 600 and not store.exists()
    time.sleep(0.5)
    assert markers(store) == done  # nothing writes any more
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_same(ptyfast.open(store), recipes.plan(recipes.load(recipe)).simulate())


# --------------------------------------------------------------------------- partial layout


def _lay_out_partial(e, store: Path, seed: int, shards_done: int) -> Path:
    """A partial store as a killed client leaves it: laid out by ``_prepare`` and with the
    first ``shards_done`` shards (of 5 patterns) written and marked, by the shard task
    itself."""
    from ptyfast.model import provenance as prov

    record = prov.make(e, seed=seed, patches=False)
    found = D._prepare(
        store, D._header(e, record, False), compress=False, overwrite=False, shard_size=5
    )
    assert found is not None
    partial, shards = found
    for a, b in shards[:shards_done]:
        D._run_shard(e, seed, False, os.fspath(partial), a, b)
    return partial


def test_each_recipe_has_its_own_partial_store_and_partials_finds_them(tmp_path):
    """``partial_path`` differs per recipe hash; ``partials`` finds every one of a store (also
    for names with dots, brackets and stars), not those of other stores."""
    e = experiment(20)
    for name in ("r.zarr", "a.b[1]*.zarr"):
        store = tmp_path / name
        p1 = _lay_out_partial(e, store, SEED, 1)
        assert p1.name.startswith(f".{name}.") and p1.name.endswith(D.PARTIAL_SUFFIX)
        assert D.partials(store) == [p1]
        assert D.partials(tmp_path / ("x" + name)) == []
        with pytest.raises(ValueError, match="another recipe"):
            _lay_out_partial(e, store, SEED + 1, 0)
        assert D.partials(store) == [p1]
    assert D.partial_path(tmp_path / "r.zarr", "a" * 64) != D.partial_path(
        tmp_path / "r.zarr", "b" * 64
    )


def test_a_partial_store_of_the_earlier_layout_resumes_or_is_refused(client, tmp_path):
    """A partial store in the single-sibling layout of releases before 2026-12-03
    (``.<name>.ptyfast-partial``) is resumed by the same recipe to the same bits; another
    recipe refuses it, and removes it with ``overwrite=True``."""
    e = experiment(20)
    store = tmp_path / "l.zarr"
    legacy = tmp_path / f".l.zarr{D.PARTIAL_SUFFIX}"
    _lay_out_partial(e, store, SEED, 2).rename(legacy)
    assert D.partials(store) == [legacy] and len(markers(store)) == 2
    D.simulate(e, store, seed=SEED, client=client, shard_size=5)
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert [q.name for q in tmp_path.iterdir()] == ["l.zarr"]

    store2 = tmp_path / "m.zarr"
    legacy2 = tmp_path / f".m.zarr{D.PARTIAL_SUFFIX}"
    _lay_out_partial(e, store2, SEED + 1, 1).rename(legacy2)
    with pytest.raises(ValueError, match=r"another recipe.*noise seed 12.*give seed 12"):
        D.simulate(e, store2, seed=SEED, client=client, shard_size=5)
    assert legacy2.is_dir()
    D.simulate(e, store2, seed=SEED, client=client, shard_size=5, overwrite=True)
    assert_same(ptyfast.open(store2), ptyfast.simulate(e, seed=SEED))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["l.zarr", "m.zarr"]


# --------------------------------------------------------------------------- one run at a time


def _hold_lock(path: Path):
    """A process that holds ``path``'s flock (as another client's run does) until killed."""
    code = textwrap.dedent(
        f"""
        import fcntl, os, sys, time
        fd = os.open({os.fspath(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(600)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_store_another_run_is_writing_is_refused_before_any_work(client, tmp_path):
    e = experiment()
    store = tmp_path / "s.zarr"
    lock = D.lock_path(store)
    assert lock == tmp_path / ".s.zarr.ptyfast-lock"
    holder = _hold_lock(lock)
    try:
        for overwrite in (False, True):
            with pytest.raises(ValueError, match="being written by another run") as info:
                D.simulate(e, store, seed=SEED, client=client, shard_size=8, overwrite=overwrite)
            assert repr(os.fspath(store)) in str(info.value)
            assert os.fspath(lock) in str(info.value)
            assert sorted(p.name for p in tmp_path.iterdir()) == [lock.name]  # nothing laid out
    finally:
        holder.kill()
        holder.wait()
    # Once the other run is gone (a dead run releases its lock), the run goes through and
    # leaves no lock file behind.
    D.simulate(e, store, seed=SEED, client=client, shard_size=8)
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_a_campaign_directory_another_run_is_writing_is_refused(client, tmp_path):
    c = _campaign(n=2)
    out = tmp_path / "camp"
    holder = _hold_lock(D.lock_path(out))
    try:
        with pytest.raises(ValueError, match="campaign directory .* being written by another"):
            D.simulate(c, out, client=client)
        assert not any(out.iterdir())
    finally:
        holder.kill()
        holder.wait()
    paths = D.simulate(c, out, client=client)
    assert [p.name for p in paths] == [c.path_for(out, i, ".zarr").name for i in range(2)]
    assert not D.lock_path(out).exists()


def test_two_runs_started_together_on_one_store_give_one_whole_dataset(client, tmp_path):
    """Both runs at once (before the lock, one of them published a store without its
    metadata): the second is refused while the first writes, or finds its finished store;
    the store is the single-process dataset."""
    e = experiment(n=200, object_px=64)
    store = tmp_path / "s.zarr"
    outcome: dict[str, str] = {}
    start = threading.Barrier(2)

    def run(tag: str) -> None:
        start.wait()
        try:
            D.simulate(e, store, seed=SEED, client=client, shard_size=8)
            outcome[tag] = "ok"
        except ValueError as exc:
            outcome[tag] = str(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "ok" in outcome.values(), outcome
    for v in outcome.values():
        assert v == "ok" or "being written by another run" in v, outcome
    assert_same(ptyfast.open(store), ptyfast.simulate(e, seed=SEED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]

"""ptyfast.distributed on a LocalCluster of 2 worker processes (issue 13).

Every result is compared with the single-machine ``ptyfast.simulate`` bit for bit. Faults
are real: a worker process is killed with SIGKILL while shards run (a worker plugin does it
from inside the worker once some shards are done; Dask's nanny restarts it and the scheduler
reruns its tasks), and a client process running ``ptyfast simulate --scheduler`` is killed with
SIGKILL while the workers are held (by a plugin waiting on a file) after two shards, then the
same command is run again. No timing assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")

import cloudpickle  # noqa: E402  (a dependency of distributed)
from _dask_helpers import (  # noqa: E402
    Hold,
    assert_same,
    client_fixture,  # noqa: F401  (the fixture `client`)
    markers,
)
from _dask_helpers import experiment as _experiment  # noqa: E402

import ptyfast  # noqa: E402
import ptyfast.distributed as D  # noqa: E402

# The plugins below travel to the workers by value (the workers cannot import this file).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEED = 7


def experiment(n_patterns: int = 300, detector=None) -> ptyfast.Experiment:
    """This module's experiment: 2 probe modes over a 96-pixel object, 1e5 photons."""
    return _experiment(n_patterns, detector, 2, object_px=96, photons=1e5)


class _Killer(distributed.WorkerPlugin):
    """SIGKILLs the worker process it runs in when a shard starts executing after at least
    one shard of ``store`` is done, once in the cluster (a flag file records it)."""

    def __init__(self, store: str, flag: str) -> None:
        self.store, self.flag = store, flag

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "shard" not in str(key) or os.path.exists(self.flag):
            return
        if markers(Path(self.store)):
            with open(self.flag, "x") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize(("shard_size", "patches"), [(32, False), (100, True)])
def test_bit_identical_to_the_single_machine_simulation(client, tmp_path, shard_size, patches):
    e = experiment()
    ref = ptyfast.simulate(e, seed=SEED, patches=patches)
    store = tmp_path / "run.zarr"
    paths = D.simulate(e, store, seed=SEED, client=client, shard_size=shard_size, patches=patches)
    assert paths == [store]
    assert_same(ptyfast.open(store), ref)
    # Nothing left beside the store; no progress records inside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zarr"]
    assert not (store / D.PROGRESS_DIR).exists()
    # The layout of ptyfast.io.zarr: the same arrays, dims and attributes as its writer's.
    single = tmp_path.parent / f"{tmp_path.name}-single.zarr"
    ref.save(single)
    import zarr

    a, b = zarr.open_group(store, mode="r"), zarr.open_group(single, mode="r")
    assert sorted(a.array_keys()) == sorted(b.array_keys())
    assert a.attrs.asdict() == b.attrs.asdict()
    for k in a.array_keys():
        assert a[k].metadata.dimension_names == b[k].metadata.dimension_names
    assert a["diffraction"].chunks[0] == min(shard_size, b["diffraction"].chunks[0])
    # Same recipe again: the store is complete, nothing to do; another recipe is refused.
    mtime = (store / "zarr.json").stat().st_mtime_ns
    assert D.simulate(e, store, seed=SEED, client=client, patches=patches) == [store]
    assert (store / "zarr.json").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="exists and holds another dataset"):
        D.simulate(e, store, seed=SEED + 1, client=client, patches=patches)


def test_a_killed_worker_is_retried_and_the_result_is_identical(client, tmp_path):
    e = experiment(n_patterns=400)
    ref = ptyfast.simulate(e, seed=SEED)
    store, flag = tmp_path / "killed.zarr", tmp_path / "killed-pid"
    client.register_plugin(_Killer(os.fspath(store), os.fspath(flag)), name="killer")
    try:
        D.simulate(e, store, seed=SEED, client=client, shard_size=8)
    finally:
        client.unregister_worker_plugin("killer")
    assert flag.exists(), "no worker was killed"  # the kill happened mid-run
    killed = int(flag.read_text())
    assert_same(ptyfast.open(store), ref)
    client.wait_for_workers(2, timeout=60)
    pids = set(client.run(os.getpid).values())
    assert killed not in pids and len(pids) == 2  # the nanny started a new worker


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ptyfast", "simulate", *args]


def _recipe(tmp_path: Path, seed: int = SEED) -> Path:
    text = f"""
[experiment]
photons = 1e5
seed = {seed}

[object]
family = "dead_leaves"
shape = [96, 96]
seed = 1

[probe]
builder = "gaussian"
N = 16
sigma_px = 3.0

[scan]
builder = "fermat_spiral"
n = 400
step_px = 1.5

[detector]
preset = "integrating"
"""
    path = tmp_path / f"recipe-{seed}.toml"
    path.write_text(text)
    return path


def _reference(recipe: Path):
    from ptyfast.model import recipes

    return recipes.plan(recipes.load(recipe)).simulate()


def test_resume_after_the_client_is_killed(client, tmp_path):
    recipe, store = _recipe(tmp_path), tmp_path / "resumed.zarr"
    hold, log = tmp_path / "hold", tmp_path / "executed.log"
    hold.touch()
    plugin = Hold(os.fspath(store), os.fspath(hold), 2, os.fspath(log))
    client.register_plugin(plugin, name="hold")
    address = client.scheduler.address
    cmd = _cli("--recipe", os.fspath(recipe), "-o", os.fspath(store), "--scheduler", address)
    cmd += ["--shard-size", "16", "--quiet"]
    try:
        first = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(markers(store)) < 2:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run made no progress"
            time.sleep(0.05)
        time.sleep(0.3)  # the workers are now held before their next shards
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        assert first.returncode == -signal.SIGKILL
        hold.unlink()  # tasks the scheduler still had may finish; they write the same bits
        client.wait_for_workers(2, timeout=60)
        assert 2 <= len(markers(store)) < 25 and not store.exists()
        # A changed recipe refuses to resume into the partial store (exit 2, one line).
        other = _recipe(tmp_path, seed=SEED + 1)
        bad = subprocess.run(
            _cli("--recipe", os.fspath(other), "-o", os.fspath(store), "--scheduler", address),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 2, bad.stderr
        assert "another recipe" in bad.stderr and "--overwrite" in bad.stderr
        log.write_text("")
        done_before = markers(store)
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
    finally:
        client.unregister_worker_plugin("hold")
    assert_same(ptyfast.open(store), _reference(recipe))
    # The second run ran only shards outside what was done: no chunk twice.
    rows = 16
    done = {c for name in done_before for c in _chunks(name, rows)}
    rerun = [k.split("-") for k in log.read_text().split()]
    rerun_chunks = {c for parts in rerun for c in _chunks(f"{parts[-3]}-{parts[-2]}", rows)}
    assert rerun_chunks and not (rerun_chunks & done)
    assert done | rerun_chunks == set(range(-(-400 // rows)))


def _chunks(name: str, rows: int) -> range:
    a, b = (int(v) for v in name.split("-"))
    return range(a // rows, -(-b // rows))


def test_a_campaign_distributes_by_experiment_and_shard(client, tmp_path):
    from ptyfast.model import recipes

    doc = recipes.loads(
        """
[campaign]
name = "small"
n_experiments = 3
seed = 5

[experiment]
photons = {log_uniform = [1e3, 1e6]}

[object]
family = {choice = ["dead_leaves", "grf"]}
shape = [80, 80]

[probe]
builder = "gaussian"
N = 16
sigma_px = {uniform = [2.0, 4.0]}

[scan]
builder = "fermat_spiral"
n = 120
step_px = {uniform = [1.0, 2.0]}
"""
    )
    c = ptyfast.Campaign.from_dict(doc)
    out = tmp_path / "campaign"
    paths = D.simulate(c, out, client=client, shard_size=40)
    assert paths == [c.path_for(out, i, ".zarr") for i in range(3)]
    for i, p in enumerate(paths):
        assert_same(ptyfast.open(p), c.simulate(i))
    assert sorted(x.name for x in out.iterdir()) == sorted(p.name for p in paths)
    # Run again: every store is complete and left as it is.
    before = [(p / "zarr.json").stat().st_mtime_ns for p in paths]
    assert D.simulate(c, out, client=client) == paths
    assert [(p / "zarr.json").stat().st_mtime_ns for p in paths] == before


def test_a_campaign_that_cannot_run_stops_before_any_task(client, tmp_path):
    from test_campaign import risky_campaign

    c = risky_campaign()
    out = tmp_path / "risky"
    with pytest.raises(ValueError, match=r"experiment 3 \(draws .*beamstop"):
        D.simulate(c, out, client=client)
    assert not out.exists()  # the directory comes before the first task


def test_cli_with_a_local_cluster_of_workers(tmp_path):
    recipe, store = _recipe(tmp_path), tmp_path / "cli.zarr"
    cmd = _cli("--recipe", os.fspath(recipe), "-o", os.fspath(store), "--workers", "2")
    r = subprocess.run([*cmd, "--shard-size", "100"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "cluster" in r.stdout
    assert_same(ptyfast.open(store), _reference(recipe))
    bad = subprocess.run(
        _cli("--recipe", os.fspath(recipe), "-o", os.fspath(tmp_path / "x.npz"), "--workers", "2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and ".zarr" in bad.stderr and bad.stderr.count("\n") == 1


def test_arguments_are_checked_before_any_work(client, tmp_path):
    e = experiment(n_patterns=20)
    with pytest.raises(TypeError, match="experiment_or_campaign"):
        D.simulate(object(), tmp_path / "a.zarr", seed=1, client=client)
    with pytest.raises(ValueError, match="shard_size"):
        D.simulate(e, tmp_path / "a.zarr", seed=1, client=client, shard_size=0)
    with pytest.raises(TypeError, match="patches"):
        D.simulate(e, tmp_path / "a.zarr", seed=1, client=client, patches=1)
    (tmp_path / "f.zarr").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        D.simulate(e, tmp_path / "f.zarr", seed=1, client=client)
    # Second audit: types, a store under a file, NUL, a campaign's patches.
    with pytest.raises(TypeError, match="shard_size must be an integer >= 1, got str '4'"):
        D.simulate(e, tmp_path / "a.zarr", seed=1, client=client, shard_size="4")
    with pytest.raises(TypeError, match="embed_max_bytes"):
        D.simulate(e, tmp_path / "a.zarr", seed=1, client=client, embed_max_bytes=1.5)
    with pytest.raises(ValueError, match="store must lie in a directory"):
        D.simulate(e, tmp_path / "f.zarr" / "x.zarr", seed=1, client=client)
    with pytest.raises(ValueError, match="store must not contain a NUL"):
        D.simulate(e, os.fspath(tmp_path / "a\0b.zarr"), seed=1, client=client)
    from test_campaign import small_spec

    c = ptyfast.Campaign(small_spec(), n_experiments=1, seed=1)
    with pytest.raises(ValueError, match="patches must be False for a campaign"):
        D.simulate(c, tmp_path / "camp", client=client, patches=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


def test_a_directory_that_is_not_a_store_is_never_replaced(client, tmp_path):
    """``overwrite=True`` once deleted any directory at the target, a user's folder too."""
    e = experiment(n_patterns=20)
    folder = tmp_path / "results.zarr"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is a directory that is not a Zarr store"):
            D.simulate(e, folder, seed=1, client=client, overwrite=overwrite)
        with pytest.raises(ValueError, match="is a directory that is not a Zarr store"):
            ptyfast.simulate_to(e, folder, seed=1, overwrite=overwrite)
    assert (folder / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.zarr"]
    # A store (and an empty directory) is replaced as before.
    (tmp_path / "empty.zarr").mkdir()
    D.simulate(e, tmp_path / "empty.zarr", seed=1, client=client, overwrite=True)
    D.simulate(e, tmp_path / "empty.zarr", seed=2, client=client, overwrite=True)
    assert ptyfast.open(tmp_path / "empty.zarr").provenance["simulation"]["seed"] == 2


def test_a_closed_client_is_refused_before_anything_is_written(tmp_path):
    e = experiment(n_patterns=20)
    with D.local_client(1, threads=1) as c:
        pass
    with pytest.raises(ValueError, match="client must be running"):
        D.simulate(e, tmp_path / "a.zarr", seed=1, client=c)
    assert not list(tmp_path.iterdir())


def test_local_cluster_counts_are_bounded_before_any_process_starts():
    # A mistyped count (10**6 workers) tried to start that many processes and hung.
    cores = os.cpu_count() or 1
    for kw, match in [
        ({"workers": 4 * cores + 1}, f"workers must be <= {4 * cores} "),
        ({"workers": 10**6}, "workers must be <="),
        ({"workers": 1, "threads": 4 * cores + 1}, f"threads must be <= {4 * cores} "),
        ({"workers": 0}, "workers must be an integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            with D.local_client(**kw):
                pass


def test_json_of_progress_records(tmp_path):
    # The manifest names the recipe by the SHA-256 of the provenance and storage options.
    h1 = D._recipe_hash({"a": 1}, False, False)
    assert h1 == D._recipe_hash(json.loads('{"a": 1}'), False, False)
    assert h1 != D._recipe_hash({"a": 1}, True, False) != D._recipe_hash({"a": 2}, False, False)

"""Adversarial audit of ptyfast.distributed (scale-out, resume, atomic publication).

Complements tests/test_distributed.py. Every dataset is compared bit for bit with the
single-process ``ptyfast.simulate`` of the same experiment and seed. The cluster is a real
``distributed.LocalCluster`` (2 worker processes, 1 thread each); interruptions are real
subprocesses killed with SIGKILL or SIGINT at several instants, and a worker process killed
with SIGKILL from outside while shards run. No mocks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")

import ptyfast  # noqa: E402
import ptyfast.distributed as D  # noqa: E402
from ptyfast import objects, probes, scans  # noqa: E402

SEED = 11
SRC = Path(ptyfast.__file__).resolve().parents[1]  # the python/ directory of this checkout


def experiment(n: int = 37, detector=None, modes: int = 1) -> ptyfast.Experiment:
    probe = probes.gaussian(16, 3.0)
    if modes > 1:
        probe = probes.modes(probe, modes, decay=0.5)
    return ptyfast.Experiment(
        objects.dead_leaves(48, seed=1),
        probe,
        scans.fermat_spiral(n, 1.5).jitter(0.3, seed=2),
        detector if detector is not None else ptyfast.Detector(read_noise=0.5, qe=0.9),
        1e4,
    )


@pytest.fixture(scope="module")
def client():
    with D.local_client(2, threads=1) as c:
        yield c


def assert_same(ds, ref) -> None:
    """The whole dataset, bit for bit (dtype included), and its provenance."""
    assert ds.diffraction.dtype == ref.diffraction.dtype
    assert ds.diffraction.shape == ref.diffraction.shape
    assert ds.diffraction.tobytes() == ref.diffraction.tobytes()
    for name in ("positions_true", "positions_nominal", "probe", "object", "mask"):
        np.testing.assert_array_equal(getattr(ds, name), getattr(ref, name), strict=True)
    assert ds.provenance == ref.provenance
    assert ds.intensity_scale == ref.intensity_scale and ds.photons == ref.photons
    if ref.patches is None:
        assert ds.patches is None
    else:
        assert ds.patches.tobytes() == ref.patches.tobytes()


def markers(store: Path) -> list[str]:
    d = D.partial_path(store) / D.PROGRESS_DIR / "done"
    try:
        return sorted(p.name for p in d.iterdir())
    except OSError:
        return []


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
    assert len(D.partial_path(store).name) <= 255


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
    # A non-.zarr name: the API writes the Zarr store there and ptyfast.open reads it back.
    odd = tmp_path / "out.h5"
    D.simulate(e, odd, seed=SEED, client=client)
    assert odd.is_dir() and (odd / "zarr.json").is_file()
    assert_same(ptyfast.open(odd), ref)
    # A store in missing directories: they are made.
    deep = tmp_path / "x" / "y" / "d.zarr"
    D.simulate(e, deep, seed=SEED, client=client)
    assert_same(ptyfast.open(deep), ref)
    assert sorted(p.name for p in (tmp_path / "x" / "y").iterdir()) == ["d.zarr"]
    assert not any(p.name.endswith(D.PARTIAL_SUFFIX) for p in tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_fails_naming_the_store_and_writes_nothing(client, tmp_path):
    e = experiment(9)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OSError) as info:
            D.simulate(e, ro / "s.zarr", seed=SEED, client=client)
        assert "s.zarr" in str(info.value)
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


def _campaign(n: int = 3):
    from test_campaign import small_spec

    spec = small_spec(detector={"preset": {"choice": ["eiger", "pilatus", "ideal"]}})
    return ptyfast.Campaign(spec, n_experiments=n, seed=4)


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
    import shutil

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

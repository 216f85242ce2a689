"""Simulate on a Dask cluster: shards of patterns written straight into a Zarr store.

A thin orchestration over the single-machine functions: it splits, it does not reimplement.
The client does the cheap global parts (the experiment's positions and intensity scale, made
when the :class:`~ptyfast.Experiment` is; the provenance; the store's layout and metadata
arrays, :func:`ptyfast.io.zarr.create_store`). Each **shard** (whole Zarr chunks of
consecutive patterns) is a Dask task that runs the same acquisition kernel call as
:func:`ptyfast.simulate` (``first_index`` = the shard's first pattern, so every random draw is
keyed exactly as in one call) and writes its region of the store itself
(:func:`ptyfast.io.zarr.write_region`): no pattern passes through the scheduler or the client.
The result is therefore the single-machine dataset bit for bit, for any shard size, number of
workers, or worker lost and retried by Dask; ``ptyfast.open(store)`` reads it.

**Resumable.** The store is built in a hidden sibling ``.<name>.<hash>.ptyfast-partial``, one
per recipe (so a shard of a killed client still running on the cluster writes only into its
own recipe's sibling, never into a later run's of another recipe), whose
``ptyfast-progress/`` directory holds a manifest (the SHA-256 of the provenance and storage
options) and one marker per finished shard, each written atomically after the shard's chunk
files were ``fsync``-ed. Re-running the same call (or command) after the client died runs only
the chunks no marker covers, with any shard size, and gives the identical dataset; a changed
recipe (another hash) refuses to resume (``overwrite=True`` starts afresh). When every chunk is
done the progress directory is removed and the store is renamed into place in one step
(:func:`ptyfast.io._dirstore.publish`). Every process must see the same filesystem at
``store`` (one machine, or a shared filesystem).

**One run at a time.** The client holds a lock file beside the store (:func:`lock_path`,
``.<name>.ptyfast-lock``; for a campaign, beside its directory) from the layout to the
publication: another run on the same store meanwhile is refused at once, naming both.

**Campaigns** are checked first, every experiment on the client without its object array
(:meth:`ptyfast.Campaign.check`), so that a draw that cannot work stops the run before any
task. They distribute by experiment (one task plans experiment ``i`` on a worker: builds
its object and probe, the intensity scale's energy pass, lays out its store) and by shard;
experiment ``i`` goes to ``store / f"{name}-{i:05d}.zarr"`` (:meth:`ptyfast.Campaign.path_for`)
with the same resumability, experiments already complete being left as they are.

Needs the ``dask`` extra: ``pip install ptyfast[dask]`` (``dask[distributed]``, ``zarr >= 3``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["simulate", "local_client", "PARTIAL_SUFFIX", "PROGRESS_DIR", "LOCK_SUFFIX"]

#: Suffix of the hidden siblings a store is built in (``.<name>.<hash>.ptyfast-partial``).
PARTIAL_SUFFIX = ".ptyfast-partial"
#: Suffix of the hidden lock file beside a store (or a campaign's directory) that one run
#: holds from its layout to its publication (``.<name>.ptyfast-lock``).
LOCK_SUFFIX = ".ptyfast-lock"
#: Directory of the partial store holding the manifest and the shard markers.
PROGRESS_DIR = "ptyfast-progress"
#: Default shard: about this many bytes of readings (and patches) per task.
SHARD_BYTES = 1 << 26
#: Version of the progress layout (part of the manifest's hash).
_LAYOUT = 1


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "ptyfast.distributed needs dask.distributed: pip install 'ptyfast[dask]'"
        ) from None
    return distributed


def partial_path(store: str | os.PathLike[str], digest: str) -> Path:
    """The hidden sibling a store is built in before it is published, as an absolute path:
    ``.<name>.<digest[:16]>.ptyfast-partial``, one per recipe (``digest``: the SHA-256 of the
    run's provenance and storage options).

    One per recipe: a shard of a killed client that is still executing on a cluster writes
    only into its own recipe's sibling, never into that of a later run of another recipe at
    the same path (with one sibling per store, such an orphan mixed its bits into the new
    store silently). Absolute: the workers get this path, and a worker's working directory
    need not be the client's. ``<name>`` is replaced by a digest of it when the sibling's
    name would exceed the file-name limit (the file system accepts the store's name, and the
    sibling failed with ``OSError: File name too long``)."""
    from ._atomic import hidden_sibling

    return hidden_sibling(store, f".{digest[:16]}{PARTIAL_SUFFIX}")


def lock_path(store: str | os.PathLike[str]) -> Path:
    """The hidden lock file a run holds beside ``store`` (a store, or a campaign's directory)
    while it writes it, as an absolute path: ``.<name>.ptyfast-lock`` (``<name>`` replaced by
    a digest of it beyond the file-name limit, as in :func:`partial_path`)."""
    from ._atomic import hidden_sibling

    return hidden_sibling(store, LOCK_SUFFIX)


@contextlib.contextmanager
def _locked(target: Path, what: str) -> Iterator[None]:
    """Hold ``target``'s lock (:func:`lock_path`, ``flock``) for the block, or raise a
    ``ValueError`` at once when another run holds it.

    Two runs on one store at once would lay out, resume and publish the same partial store
    under each other (a published store without its metadata was seen). The lock belongs to
    the client's process: a client that dies releases it (its orphaned shards are harmless,
    see :func:`partial_path`). An ``OSError`` opening it names ``target``
    (:func:`_naming_store`); the file goes with the run (:func:`ptyfast._atomic.file_lock`).
    """
    from ._atomic import file_lock

    path = lock_path(target)
    with contextlib.ExitStack() as stack:
        with _naming_store(target):
            path.parent.mkdir(parents=True, exist_ok=True)  # as the layout makes them
            try:
                stack.enter_context(file_lock(path, wait=False))
            except BlockingIOError:
                raise ValueError(
                    f"{what} {os.fspath(target)!r} is being written by another run, which "
                    f"holds {os.fspath(path)!r}: wait for it to finish (a run that dies "
                    f"releases it)"
                ) from None
        yield


def partials(store: str | os.PathLike[str]) -> list[Path]:
    """Every hidden partial store of ``store`` on disk, of any recipe (sorted), including the
    single ``.<name>.ptyfast-partial`` of releases before 2026-12-03."""
    target = Path(os.path.abspath(store))
    name = target.name
    from ._atomic import short_name

    heads = (f".{name}", f".{short_name(name)}")  # as partial_path names them
    found = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    for q in entries:
        if not q.name.endswith(PARTIAL_SUFFIX):
            continue
        base = q.name[: -len(PARTIAL_SUFFIX)]
        if base == heads[0]:  # the earlier layout
            found.append(q)
            continue
        head, dot, tag = base.rpartition(".")
        if head in heads and dot and len(tag) == 16:
            found.append(q)
    return sorted(found)


def _recipe_hash(provenance: dict[str, Any], compress: bool, patches: bool) -> str:
    text = json.dumps(
        {"layout": _LAYOUT, "provenance": provenance, "compress": compress, "patches": patches},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _header(e: Any, record: dict[str, Any], patches: bool) -> Any:
    from . import io
    from .model.experiment import _io_header

    return _io_header(e, record, patches, io)


def _write_json(path: Path, value: Any) -> None:
    from ._atomic import atomic_output

    with atomic_output(path) as out:
        out.file.write(json.dumps(value, sort_keys=True).encode())


def _complete_matches(target: Path, record: dict[str, Any], compress: bool) -> bool:
    """Whether the published store at ``target`` is this recipe's dataset."""
    from .io import zarr as zio

    try:
        r = zio.ZarrReader(target)
    except (ValueError, OSError, ImportError):
        return False
    same = json.loads(json.dumps(record, allow_nan=False))  # as the store keeps it
    return r.header.provenance == same and r.compressed == compress


def _done_chunks(partial: Path, rows: int) -> set[int]:
    done: set[int] = set()
    markers = partial / PROGRESS_DIR / "done"
    if not markers.is_dir():
        return done
    for f in markers.iterdir():
        a, _, b = f.name.partition("-")
        if a.isdigit() and b.isdigit():
            done.update(range(int(a) // rows, -(-int(b) // rows)))
    return done


@contextlib.contextmanager
def _naming_store(target: Path) -> Iterator[None]:
    """An ``OSError`` in the block names the store (not only the directory or hidden sibling
    that failed), keeping its type."""
    from ._atomic import naming_path

    try:
        yield
    except OSError as exc:
        raise naming_path(exc, target) from exc


def _prepare(
    target: Path,
    header: Any,
    *,
    compress: bool,
    overwrite: bool,
    shard_size: int | None,
) -> tuple[Path, list[tuple[int, int]]] | None:
    """Lay out (or find and check) the partial store; the shards still to run, or ``None``
    when the published store already holds this recipe's dataset. An ``OSError`` names the
    store (:func:`_naming_store`)."""
    from .io import zarr as zio
    from .io._dirstore import check_replaceable

    with _naming_store(target):
        record = header.provenance
        digest = _recipe_hash(record, compress, header.patches)
        check_replaceable(target)
        if target.exists() and not overwrite:
            if _complete_matches(target, record, compress):
                return None
            raise ValueError(
                f"store {os.fspath(target)!r} exists and holds another dataset; pass "
                f"overwrite=True (--overwrite) to replace it"
            )
        partial = partial_path(target, digest)
        seed = (record.get("simulation") or {}).get("seed")
        for other in (q for q in partials(target) if q != partial):
            # Another recipe's partial store, or one of the earlier single-sibling layout.
            theirs: Any = None
            with contextlib.suppress(OSError, ValueError):
                theirs = json.loads((other / PROGRESS_DIR / "manifest.json").read_text())
            if not isinstance(theirs, dict) or "sha256" not in theirs:
                # No manifest: it was being laid out when its client died.
                shutil.rmtree(other, ignore_errors=True)
                continue
            if theirs["sha256"] == digest and not partial.exists():
                other.rename(partial)  # this recipe in the earlier layout: resume it
                continue
            if overwrite:
                shutil.rmtree(other, ignore_errors=True)
                continue
            why = ""
            if "seed" in theirs and theirs["seed"] != seed:
                # A call (or recipe) without a seed draws a new one each time: no re-run of it
                # can resume, and the bare hash did not say why.
                why = (
                    f" (it was simulated with noise seed {theirs['seed']}, this run with "
                    f"{seed}: without a fixed seed every run draws a new one; give seed "
                    f"{theirs['seed']} to resume it)"
                )
            raise ValueError(
                f"store {os.fspath(target)!r} has a partial simulation of another recipe "
                f"(provenance hash {str(theirs.get('sha256'))[:12]}…, this run "
                f"{digest[:12]}…) at {os.fspath(other)!r}{why}; it cannot resume into it: "
                f"pass overwrite=True (--overwrite) to start afresh"
            )
        manifest_path = partial / PROGRESS_DIR / "manifest.json"
        manifest = None
        if manifest_path.is_file():
            with contextlib.suppress(OSError, ValueError):
                manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict) or manifest.get("sha256") != digest:
            manifest = None  # none, unreadable, or a collision of the name's 64 bits: lay out anew
        fresh = manifest is None
        if manifest is None:
            # A partial store without a manifest was being laid out when its client died.
            shutil.rmtree(partial, ignore_errors=True)
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.mkdir()
            rows = zio.chunk_rows(header)
            if shard_size is not None:
                rows = min(rows, shard_size)
            zio.create_store(partial, header, compress=compress, rows=rows)
            _write_json(
                manifest_path,
                {
                    "sha256": digest,
                    "rows": rows,
                    "n_patterns": header.n_patterns,
                    "layout": _LAYOUT,
                    "seed": seed,
                },
            )
            manifest = {"rows": rows}
        rows = int(manifest["rows"])
        m = header.n_patterns
        per = -(-(shard_size or _default_shard(header)) // rows)  # chunks per shard
        done = _done_chunks(partial, rows)
        todo = [k for k in range(-(-m // rows)) if k not in done]
        shards: list[tuple[int, int]] = []
        run: list[int] = []
        for k in todo:  # consecutive missing chunks, at most `per` per shard
            if run and (k != run[-1] + 1 or len(run) == per):
                shards.append((run[0] * rows, min(m, (run[-1] + 1) * rows)))
                run = []
            run.append(k)
        if run:
            shards.append((run[0] * rows, min(m, (run[-1] + 1) * rows)))
        if not compress:
            try:
                _check_disk(target, header, len(todo), rows)
            except ValueError:
                if fresh:  # nothing of this run is worth keeping
                    shutil.rmtree(partial, ignore_errors=True)
                raise
        return partial, shards


def _check_disk(target: Path, header: Any, chunks: int, rows: int) -> None:
    """Refuse (``ValueError``) a run whose ``chunks`` missing chunks of ``rows`` patterns
    (each stored whole) cannot fit the free disk beside ``target``, before any task runs."""
    from ._dryrun import disk_free, human

    n = header.N
    need = chunks * rows * header.pattern_bytes
    disk = disk_free(target)
    if disk is not None and need > disk[0]:
        raise ValueError(
            f"store {os.fspath(target)!r} needs {human(need)} more ({chunks} chunks of {rows} "
            f"patterns of {n}x{n}), but only {human(disk[0])} are free on {disk[1]}; "
            "simulate fewer patterns or write elsewhere"
        )


def _default_shard(header: Any) -> int:
    return max(1, SHARD_BYTES // header.pattern_bytes)


def _fsync(files: list[Path]) -> None:
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _run_shard(
    experiment: Any, seed: int, patches: bool, partial: str, start: int, stop: int
) -> tuple[int, int]:
    """Task: patterns ``start:stop`` through :func:`ptyfast.simulate`'s kernel call, written
    into the partial store, made durable, then recorded as done. Returns ``(start, stop)``."""
    from .io import zarr as zio
    from .model.experiment import _acquire

    e, n = experiment, experiment.N
    out = np.empty((stop - start, n, n), np.dtype(e.detector.dtype))
    out_p = np.empty((stop - start, n, n), np.complex64) if patches else None
    _acquire(e, seed, start, stop, out, out_p)
    where = Path(partial)
    _fsync(zio.write_region(where, start, out, out_p))
    _write_json(where / PROGRESS_DIR / "done" / f"{start}-{stop}", {"start": start, "stop": stop})
    return start, stop


def _publish(partial: Path, target: Path, overwrite: bool) -> None:
    from .io import zarr as zio
    from .io._dirstore import publish

    shutil.rmtree(partial / PROGRESS_DIR)
    zio.finish_store(partial)
    publish(partial, target, overwrite=overwrite)


def _plan_task(campaign: Any, index: int, target: str, options: dict[str, Any]) -> Any:
    """Task (campaigns): plan experiment ``index`` and lay out its store."""
    planned = campaign.plan(index)
    record = planned.provenance(embed_max_bytes=options["embed_max_bytes"])
    header = _header(planned.experiment, record, planned.patches)
    found = _prepare(
        Path(target),
        header,
        compress=options["compress"],
        overwrite=options["overwrite"],
        shard_size=options["shard_size"],
    )
    return planned, found


def _same(value: Any) -> Any:
    return value


def _shared(client: Any, value: Any, kind: str) -> Any:
    """``value`` on the cluster as the result of a task (not scattered data): when the worker
    holding it dies, the scheduler recomputes it from the task it keeps, so the shards that
    need it are retried instead of failing as lost data."""
    return client.submit(_same, value, key=_key(kind), pure=False)


def _key(kind: str, *parts: Any) -> str:
    return "-".join(["ptyfast", kind, *map(str, parts), uuid.uuid4().hex[:8]])


def _check_int(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _check_count(name: str, v: Any, cores: int) -> int:
    """A process or thread count for a local cluster: ``1 .. 4 × cores``."""
    n = _check_int(name, v, 1)
    if n > 4 * cores:
        raise ValueError(
            f"{name} must be <= {4 * cores} (4 × the {cores} cores of this machine), got {n}"
        )
    return n


def simulate(
    experiment_or_campaign: Any,
    store: str | os.PathLike[str],
    *,
    seed: Any = None,
    client: Any = None,
    shard_size: int | None = None,
    patches: bool = False,
    compress: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    embed_max_bytes: int | None = None,
) -> list[Path]:
    """Simulate an experiment (or a campaign) on a Dask cluster into Zarr store(s).

    Parameters
    ----------
    experiment_or_campaign : ptyfast.Experiment or ptyfast.Campaign
        What to simulate.
    store : str or os.PathLike
        For an experiment: the ``.zarr`` store to create. For a campaign: the directory that
        receives one store per experiment (:meth:`ptyfast.Campaign.path_for`, ``.zarr``).
        Every worker must reach this path (same machine or a shared filesystem).
    seed : int, numpy.random.Generator or None
        The noise seed of an experiment (as :func:`ptyfast.simulate`, whose ``Generator`` is
        left as it was when the call fails; recorded in the provenance). A resumable run
        needs an integer: ``None`` draws fresh entropy, so a re-run is another recipe.
        Campaigns carry their own seeds: must be ``None`` then.
    client : distributed.Client, optional
        The cluster's client; default: the current one (``distributed.get_client()``).
    shard_size : int, optional
        Patterns per task, rounded up to whole Zarr chunks (default: about 64 MiB of readings;
        a smaller value also makes the store's chunks that small). The result does not depend
        on it.
    patches : bool
        Also store the object patches (an experiment; a campaign's recipe decides).
    compress : bool
        zstd-compress the pattern chunks (as :func:`ptyfast.io.writer`).
    overwrite : bool
        Replace an existing store, and discard a partial store of another recipe. Without it
        an existing store of the same recipe is left as it is (nothing to do) and one of
        another recipe is an error. A partial store of the same recipe is always resumed.
    progress : bool
        Show Dask's progress bar (``distributed.progress``) while the shards run.
    embed_max_bytes : int, optional
        As :func:`ptyfast.simulate` (arrays embedded in the provenance up to this size).

    Returns
    -------
    list of pathlib.Path
        The store(s), complete: ``ptyfast.open(path)`` equals the single-machine
        ``ptyfast.simulate(experiment, seed=seed)`` bit for bit.

    Raises
    ------
    TypeError, ValueError
        Bad arguments; an existing store of another dataset without ``overwrite``; a partial
        store of another recipe (named, with both hashes) without ``overwrite``; a store (or
        campaign directory) that another run is writing (:func:`lock_path`); all before any
        shard runs.
    ImportError
        ``dask.distributed`` or ``zarr`` is missing (``pip install 'ptyfast[dask]'``).

    Examples
    --------
    >>> import ptyfast, ptyfast.distributed
    >>> from distributed import Client, LocalCluster       # doctest: +SKIP
    >>> with Client(LocalCluster(n_workers=2)) as client:  # doctest: +SKIP
    ...     ptyfast.distributed.simulate(experiment, "run.zarr", seed=1, client=client)
    """
    from .model import provenance as _prov
    from .model._args import seed_int, seed_kept_on_error
    from .model.campaign import Campaign
    from .model.experiment import Experiment

    distributed = _require_distributed()
    from .io._common import require

    require("zarr")
    # Every argument is checked before the client is looked up or anything is written.
    if not isinstance(experiment_or_campaign, Experiment | Campaign):
        raise TypeError(
            "experiment_or_campaign must be a ptyfast.Experiment or ptyfast.Campaign, got "
            f"{type(experiment_or_campaign).__name__}"
        )
    from ._atomic import check_output_path

    store_path = check_output_path(store, "store")  # type, NUL, name lengths, no file above
    if not isinstance(experiment_or_campaign, Campaign) and store_path.name in ("", ".."):
        # "." ran every shard, then could not rename the working directory onto (EBUSY)
        raise ValueError(f"store must name a store to create, got {os.fspath(store)!r}")
    if not isinstance(experiment_or_campaign, Campaign) and store_path.suffix.lower() != ".zarr":
        # as the command line: a Zarr directory under another format's name misleads readers
        raise ValueError(f"store must be a .zarr path (a Zarr store), got {os.fspath(store)!r}")
    for name, v in (
        ("patches", patches),
        ("compress", compress),
        ("overwrite", overwrite),
        ("progress", progress),
    ):
        if not isinstance(v, bool | np.bool_):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    size = None if shard_size is None else _check_int("shard_size", shard_size, 1)
    embed = (
        _prov.EMBED_MAX_BYTES
        if embed_max_bytes is None
        else _check_int("embed_max_bytes", embed_max_bytes, 0)
    )
    if isinstance(experiment_or_campaign, Campaign) and seed is not None:
        raise ValueError(
            "seed must be None for a campaign (its experiments carry their own seeds), "
            f"got {seed!r}"
        )
    if isinstance(experiment_or_campaign, Campaign) and patches:
        raise ValueError(
            "patches must be False for a campaign (each experiment's recipe says whether it "
            "keeps patches: [experiment] patches), got True"
        )
    if isinstance(experiment_or_campaign, Campaign) and store_path.is_file():
        raise ValueError(
            f"store must be a directory for a campaign, got {os.fspath(store_path)!r}, a file"
        )
    with seed_kept_on_error(seed):
        s = None if isinstance(experiment_or_campaign, Campaign) else seed_int(seed)
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError:
                raise ValueError(
                    "client must be a distributed.Client, got None and no client is active"
                ) from None
        elif not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        if getattr(client, "status", "running") != "running":
            raise ValueError(f"client must be running, got one whose status is {client.status!r}")
        options = {
            "compress": bool(compress),
            "overwrite": bool(overwrite),
            "shard_size": size,
            "embed_max_bytes": embed,
        }
        if isinstance(experiment_or_campaign, Campaign):
            return _campaign(experiment_or_campaign, store_path, client, options, bool(progress))
        e = experiment_or_campaign
        assert s is not None
        record = _prov.make(e, seed=s, patches=bool(patches), embed_max_bytes=embed)
        target = store_path
        with _locked(target, "store"):
            found = _prepare(
                target,
                _header(e, record, bool(patches)),
                compress=options["compress"],
                overwrite=options["overwrite"],
                shard_size=size,
            )
            if found is None:
                return [target]
            partial, shards = found
            if shards:
                handle = _shared(client, e, "experiment")
                futures = [
                    client.submit(
                        _run_shard,
                        handle,
                        s,
                        bool(patches),
                        os.fspath(partial),
                        a,
                        b,
                        key=_key("shard", a, b),
                        pure=False,
                    )
                    for a, b in shards
                ]
                _wait(distributed, client, futures, progress)
            _publish(partial, target, options["overwrite"])
            return [target]


def _wait(distributed: Any, client: Any, futures: list[Any], progress: bool) -> None:
    """Wait for every future (raising the first task error); only small results come back."""
    if progress and futures:
        distributed.progress(futures)
    client.gather(futures)


def _campaign(
    c: Any, directory: Path, client: Any, options: dict[str, Any], progress: bool
) -> list[Path]:
    distributed = _require_distributed()
    c.check(progress=progress)  # every experiment, before any task
    from .io._dirstore import check_replaceable

    targets = [c.path_for(directory, i, ".zarr") for i in range(c.n_experiments)]
    for t in targets:  # a file or a user's folder at any target stops the run before any task
        check_replaceable(t)
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory, "campaign directory"):
        handle = _shared(client, c, "campaign")
        plans = {
            client.submit(
                # absolute: a worker's working directory need not be the client's
                _plan_task,
                handle,
                i,
                os.path.abspath(t),
                options,
                key=_key("plan", i),
                pure=False,
            ): i
            for i, t in enumerate(targets)
        }
        shards: dict[int, list[Any]] = {}
        partials: dict[int, Path] = {}
        every: list[Any] = list(plans)
        for fut in distributed.as_completed(list(plans)):
            i = plans[fut]
            found = client.submit(_second, fut, key=_key("layout", i), pure=False).result()
            if found is None:
                continue
            partial, todo = found
            partials[i] = partial
            planned = client.submit(_first, fut, key=_key("planned", i), pure=False)
            shards[i] = [
                client.submit(
                    _run_shard_planned,
                    planned,
                    os.fspath(partial),
                    a,
                    b,
                    key=_key("shard", i, a, b),
                    pure=False,
                )
                for a, b in todo
            ]
            every += shards[i]
        _wait(distributed, client, every, progress)
        for i, partial in partials.items():
            _publish(partial, targets[i], options["overwrite"])
        return targets


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _run_shard_planned(planned: Any, partial: str, start: int, stop: int) -> tuple[int, int]:
    return _run_shard(planned.experiment, planned.seed, planned.patches, partial, start, stop)


@contextlib.contextmanager
def local_client(workers: int, *, threads: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on a local cluster of ``workers`` worker processes.

    Each worker runs one task at a time, its kernels on ``threads`` threads (default: this
    machine's cores shared evenly, at least one), so the workers do not oversubscribe the
    cores.

    Raises
    ------
    TypeError
        ``workers`` or ``threads`` not an integer (bools and floats included).
    ValueError
        ``workers`` or ``threads`` outside ``1 .. 4 × os.cpu_count()`` (more processes or
        threads than that only compete for the cores, and a mistyped count would start that
        many).
    ImportError
        ``distributed`` (Dask) not installed.
    """
    distributed = _require_distributed()
    cores = os.cpu_count() or 1
    w = _check_count("workers", workers, cores)
    t = max(1, cores // w) if threads is None else _check_count("threads", threads, cores)
    cluster = distributed.LocalCluster(
        n_workers=w,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"RAYON_NUM_THREADS": str(t)},
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()

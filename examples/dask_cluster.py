"""ptyfast.distributed: one experiment on a local Dask cluster of 2 workers, into Zarr.

Each shard of patterns is a task that runs the same kernel call as ``ptyfast.simulate`` and
writes its chunks itself; the store equals the single-process result bit for bit, for any
shard size and number of workers. Running the same call again finds the store complete.
Needs the ``dask`` extra: ``pip install 'ptyfast[dask]'`` (Python >= 3.11).
"""

import numpy as np

import ptyfast
import ptyfast.distributed
from ptyfast import objects, probes, scans


def main() -> None:
    e = ptyfast.Experiment(
        objects.dead_leaves(128, seed=1),
        probes.modes(probes.gaussian(32, 4.0), 2, decay=0.5),
        scans.fermat_spiral(400, 1.5).jitter(0.3, seed=2),
        ptyfast.Detector.eiger(qe=0.9),
        photons=1e5,
    )
    with ptyfast.distributed.local_client(2, threads=1) as client:
        (store,) = ptyfast.distributed.simulate(
            e, "run.zarr", seed=7, client=client, shard_size=100
        )
        print("wrote", store, "on", len(client.scheduler_info()["workers"]), "workers")
        # The same call again: the store holds this recipe's dataset, nothing is recomputed.
        assert ptyfast.distributed.simulate(e, "run.zarr", seed=7, client=client) == [store]

    ds = ptyfast.open(store)
    ref = ptyfast.simulate(e, seed=7)  # one process, all cores
    np.testing.assert_array_equal(ds.diffraction, ref.diffraction, strict=True)
    assert ds.provenance == ref.provenance
    print(f"{len(ds)} patterns, {ds.diffraction.dtype}: identical to ptyfast.simulate(e, seed=7)")


if __name__ == "__main__":  # worker processes import this file: only the main process runs
    main()

"""ptyfast across processes and signals: kernels in forked children, PtyfastError through a
spawn pool, Ctrl-C during a long simulation, and runs of the command line killed mid-write.

These tests start subprocesses; each is small (seconds), and a hang fails instead of blocking
(every wait has a timeout).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ptyfast
from ptyfast import _core, _kernels

posix_only = pytest.mark.skipif(os.name != "posix", reason="fork and POSIX signals")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, O_TMPFILE")

SRC = str(Path(ptyfast.__file__).resolve().parents[1])
ENV = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _simulate_sum(seed: int) -> float:
    """One small noisy simulation, summed (run in the parent and in children)."""
    rng = np.random.default_rng(0)
    obj = (rng.random((48, 48)) + 1j * rng.random((48, 48))).astype(np.complex64)
    pos = rng.uniform(10, 38, (40, 2))
    probe = np.ones((12, 12), np.complex64)
    amps, _ = _kernels.simulate(obj, pos, probe, scale=30.0, seed=seed)
    return float(amps.astype(np.float64).sum())


# --------------------------------------------------------------------------- fork


@posix_only
def test_kernels_work_in_forked_children_after_a_kernel_ran():
    expected = [_simulate_sum(s) for s in range(4)]  # the parent's pool is running now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map_async(_simulate_sum, range(4)).get(timeout=120)
    assert got == expected
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            ok = _simulate_sum(2) == expected[2] and _kernels.num_threads() >= 1
        finally:
            os._exit(0 if ok else 3)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:  # pragma: no cover - the bug this test guards
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("a kernel hung in a forked child")
        time.sleep(0.02)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert _simulate_sum(1) == expected[1]  # and the parent's pool still works


_ONE_PATTERN_CHILD = r"""
import os
import numpy as np
from ptyfast import _kernels

def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()  # after the imports (NumPy may start its own)
a = np.linspace(0.0, 40.0, 256, dtype=np.float32).reshape(1, 16, 16)
first = _kernels.observe_amplitudes(a, seed=5, first_index=3)
counts = _kernels.poisson_counts(np.linspace(0.0, 500.0, 64), seed=5, version="v2")
# Both ran on this thread: no pool (ours, or rayon's global one, which a forked child would
# wait on forever) has started a thread.
assert threads() == before, (before, threads())
stack = _kernels.observe_amplitudes(np.concatenate([a, a]), seed=5, first_index=2)
assert np.array_equal(stack[1:], first) and threads() > before  # the pool, for two
"""


@linux_only
def test_one_pattern_calls_start_no_thread():
    run = subprocess.run(
        [sys.executable, "-c", _ONE_PATTERN_CHILD],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_one_pattern_calls_equal_their_pattern_in_a_stack():
    rng = np.random.default_rng(2)
    stack = (rng.random((3, 32, 32)) * 30.0).astype(np.float32)
    for version in ("v1", "v2"):
        whole = _kernels.observe_amplitudes(stack, seed=11, first_index=7, version=version)
        for i in range(3):
            one = _kernels.observe_amplitudes(
                stack[i : i + 1], seed=11, first_index=7 + i, version=version
            )
            np.testing.assert_array_equal(one, whole[i : i + 1])
    bad = stack[:1].copy()
    bad[0, 3, 4] = -1.0
    with pytest.raises(ValueError, match="amplitudes must be non-negative"):
        _kernels.observe_amplitudes(bad, seed=1)
    with pytest.raises(ValueError, match="amplitudes.*got -1 at flat index 100"):
        _core.poisson_amplitudes(bad, 1, 0, "v1")  # the core's own check, on this path


# --------------------------------------------------------------------------- PtyfastError


def test_ptyfast_error_is_a_picklable_value_error_of_module_ptyfast():
    assert ptyfast.PtyfastError.__module__ == "ptyfast"
    assert issubclass(ptyfast.PtyfastError, ValueError)
    assert _core.PtyfastError is ptyfast.PtyfastError is _kernels.PtyfastError
    with pytest.raises(ptyfast.PtyfastError) as info:
        _core.simulate(
            np.ones((8, 8), np.complex64),
            np.zeros((0, 2)),
            np.ones((4, 4), np.complex64),
            1.0,
            None,
            0,
            False,
            False,
        )
    err = pickle.loads(pickle.dumps(info.value))
    assert type(err) is ptyfast.PtyfastError
    assert str(err) == str(info.value) and "positions" in str(err)


def test_ptyfast_error_crosses_a_spawn_pool():
    args = (
        np.ones((8, 8), np.complex64),
        np.zeros((0, 2)),  # rejected by the Rust kernel itself
        np.ones((4, 4), np.complex64),
        1.0,
        None,
        0,
        False,
        False,
    )
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_core.simulate, args)
        with pytest.raises(ptyfast.PtyfastError, match="positions must be a non-empty"):
            result.get(timeout=120)


# --------------------------------------------------------------------------- Ctrl-C

LONG_RUN = r"""
import signal
import time

# A job a non-interactive shell starts in the background inherits SIGINT ignored, and Python
# then installs no handler: restore the default one, which is what an interactive user has.
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from ptyfast.config import ModelConfig, TrainingConfig
from ptyfast.nongrid_simulation import generate_simulated_data

rng = np.random.default_rng(1)
obj = (1 + rng.random((512, 512))).astype(np.complex64)
yy, xx = np.mgrid[:128, :128] - 63.5
probe = (np.hypot(xx, yy) < 40).astype(np.complex64)
config = TrainingConfig(model=ModelConfig(N=128), n_groups=40_000, nphotons=1e9)
print("start", flush=True)
t0 = time.monotonic()
try:
    generate_simulated_data(config, obj, probe, 64.0, return_patches=False)
    print("finished", time.monotonic() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.time(), flush=True)
"""


@posix_only
def test_ctrl_c_stops_a_long_simulation_within_seconds():
    # 40,000 patterns of 128 x 128 take several seconds in the kernels (intensity pass, then
    # the fused simulation); SIGINT arrives 0.5 s in, while a kernel runs with the GIL
    # released. The bound is generous for loaded CI machines; ~0.1 s is typical.
    proc = subprocess.Popen(
        [sys.executable, "-c", LONG_RUN], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(0.5)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().split()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    assert line and line[0] == "interrupted", f"the run was not interrupted: {line}"
    assert float(line[1]) - sent < 3.0


# --------------------------------------------------------------------------- killed CLI runs

STREAMING_RUN = ["simulate", "-n", "300000", "--chunk-size", "4096", "--no-progress", "-q"]


def _writing(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` holds a file in ``directory`` with more than 16 MB written
    (past the coordinates: the patterns are streaming)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fds.iterdir())
    except OSError:
        return False
    for fd in entries:
        try:
            if os.readlink(fd).startswith(str(directory) + os.sep) and fd.stat().st_size > 16e6:
                return True
        except OSError:
            continue
    return False


@linux_only
@pytest.mark.parametrize(
    ("sig", "overwrite"),
    [
        (signal.SIGKILL, False),
        (signal.SIGKILL, True),
        (signal.SIGTERM, False),
        (signal.SIGTERM, True),
        (signal.SIGHUP, False),
    ],
)
def test_cli_killed_mid_write_leaves_nothing_behind(tmp_path, sig, overwrite):
    # an --input file spares the child the object generator's imports (seconds of SciPy)
    rng = np.random.default_rng(0)
    src = tmp_path / "in" / "src.npz"
    src.parent.mkdir()
    obj = (1 + rng.random((64, 64))).astype(np.complex64)
    np.savez(src, objectGuess=obj, probeGuess=np.ones((16, 16), np.complex64))
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    out = tmp_path / "data.npz"
    old = b"the previous dataset"
    if overwrite:
        out.write_bytes(old)
    argv = [*STREAMING_RUN, "--input", str(src), "-o", str(out)]
    argv += ["--overwrite"] if overwrite else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptyfast", *argv],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _writing(proc.pid, tmp_path):
            assert proc.poll() is None, f"the run ended before the test could kill it: {proc}"
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig)
    if sig != signal.SIGKILL:
        assert err.strip() == f"ptyfast: interrupted ({sig.name}); no partial file left behind"
    # nothing partial, no temporary file, and the old file (if any) intact
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data.npz"] if overwrite else [])
    if overwrite:
        assert out.read_bytes() == old


# --------------------------------------------------------------------------- pieces


def test_kernels_split_into_pieces_give_the_bits_of_separate_calls():
    """Long calls run in pieces (first piece: one item per thread, then growing), so 600
    items always take several; the result equals calls over another split (37 items each,
    with ``first_index`` advanced), bit for bit."""
    rng = np.random.default_rng(5)
    m, n, c = 600, 8, 4
    obj = (1 + rng.random((40, 40)) + 1j * rng.random((40, 40))).astype(np.complex64)
    pos = rng.uniform(4, 36, (m, 2))
    probe = (1 + rng.random((n, n))).astype(np.complex64)

    def joined(f, step=37, total=m):
        return np.concatenate([f(a, min(total, a + step)) for a in range(0, total, step)])

    amps, patches = _kernels.simulate(
        obj, pos, probe, scale=20.0, seed=3, return_patches=True, divide_by_scale=True
    )

    def sim(a, b):
        return _kernels.simulate(
            obj, pos[a:b], probe, scale=20.0, seed=3, first_index=a, divide_by_scale=True
        )[0]

    assert joined(sim).tobytes() == amps.tobytes()
    ext = joined(lambda a, b: _kernels.extract_patches(obj, pos[a:b], n))
    assert ext.tobytes() == patches.tobytes()
    energy = joined(lambda a, b: _kernels.illuminated_energy(obj, pos[a:b], probe))
    assert energy.tobytes() == _kernels.illuminated_energy(obj, pos, probe).tobytes()
    noisy = joined(lambda a, b: _core.poisson_amplitudes(amps[a:b], 11, 5 + a))
    assert noisy.tobytes() == _core.poisson_amplitudes(amps, 11, 5).tobytes()
    diff = joined(lambda a, b: _core.diffract(patches[a:b], probe, 2.0))
    assert diff.tobytes() == _core.diffract(patches, probe, 2.0).tobytes()
    energies = joined(lambda a, b: _core.pattern_energies(amps[a:b]))
    assert energies.tobytes() == _core.pattern_energies(amps).tobytes()

    b = m // c
    groups = rng.integers(0, m, (b, c))
    plain, scaled = _core.gather_groups_normalized(amps, groups, 0.5)
    gathered = joined(lambda a, z: _core.gather_groups(amps, groups[a:z]), 11, b)
    assert gathered.tobytes() == plain.tobytes()
    gathered = joined(lambda a, z: _core.gather_groups_scaled(amps, groups[a:z], 0.5), 11, b)
    assert gathered.tobytes() == scaled.tobytes()
    cplx = joined(lambda a, z: _core.gather_groups_complex(patches, groups[a:z]), 11, b)
    assert cplx.tobytes() == _core.gather_groups_complex(patches, groups).tobytes()

    re, im = _core.extract_grid_patches(obj, pos, n, c)
    grid = [
        _core.extract_grid_patches(obj, pos[a * c : (a + 11) * c], n, c) for a in range(0, b, 11)
    ]
    assert np.concatenate([g[0] for g in grid]).tobytes() == re.tobytes()
    assert np.concatenate([g[1] for g in grid]).tobytes() == im.tobytes()
    into_re, into_im = np.zeros_like(re), np.zeros_like(im)
    _core.extract_grid_patches_into(obj, pos, into_re, into_im)
    assert into_re.tobytes() == re.tobytes() and into_im.tobytes() == im.tobytes()
    x = _core.illuminate_groups(re.copy(), im, probe, 20.0, 9, 2)

    def illuminate(a, z):
        return _core.illuminate_groups(re[a:z].copy(), im[a:z], probe, 20.0, 9, 2 + a * c)

    assert joined(illuminate, 11, b).tobytes() == x.tobytes()
    ch = joined(lambda a, z: _core.channel_energies(re[a:z], probe), 11, b)
    assert ch.tobytes() == _core.channel_energies(re, probe).tobytes()

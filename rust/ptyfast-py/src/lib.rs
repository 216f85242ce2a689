//! `ptyfast._core`: argument conversion, GIL release and error mapping over `ptyfast-core`.
//! Nothing else lives here; `ptyfast._kernels` validates every argument before calling in.
//! Still, no argument can make the binding panic: array arguments are borrowed through
//! [`Ro`] and [`Rw`], so a read-only output or two arguments sharing memory are a
//! `ValueError`, not rust-numpy's panic.
//!
//! Every kernel runs with the GIL released on the core's per-process pool
//! ([`core::runtime`], fork-safe). Kernels that can run long run in pieces ([`in_pieces`]):
//! between pieces the GIL is taken back and pending signals are handled, so Ctrl-C (or any
//! signal handler that raises) stops a call within about [`PIECE_SECONDS`]. The kernels are
//! keyed per pattern index, so the split never changes a bit of the output.
//!
//! The crate is an extension module with no Rust API, so its documentation is for maintainers
//! and links to its private items.
#![allow(rustdoc::private_intra_doc_links)]

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::{Dim, Dimension, Ix1, Ix2, Ix3, Ix4};
use numpy::{
    BorrowError, Complex32, Element, IntoPyArray, PyArray, PyArray1, PyArray2, PyArray3, PyArray4,
    PyArrayMethods, PyReadonlyArray, PyReadwriteArray,
};
use ptyfast_core as core;
use ptyfast_core::runtime::{rows, rows_mut, uninit, write_rows, zeros};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// A read-only borrow of an array argument. Its extraction fails with a `ValueError` (to
/// which PyO3 adds a note naming the argument, on Python ≥ 3.11) where rust-numpy's own
/// `PyReadonlyArray` would panic: when the array is being written through another borrow (a
/// writeable argument of the same call, or another thread's call running with the GIL
/// released).
struct Ro<'py, T: Element, D: Dimension>(PyReadonlyArray<'py, T, D>);

/// A writeable borrow of an array argument, extracted like [`Ro`]: a read-only array, or one
/// that shares memory with another argument of the call (or with an array another call is
/// using), is a `ValueError` naming the argument, not a panic.
struct Rw<'py, T: Element, D: Dimension>(PyReadwriteArray<'py, T, D>);

type Ro1<'py, T> = Ro<'py, T, Ix1>;
type Ro2<'py, T> = Ro<'py, T, Ix2>;
type Ro3<'py, T> = Ro<'py, T, Ix3>;
type Ro4<'py, T> = Ro<'py, T, Ix4>;
type Rw1<'py, T> = Rw<'py, T, Ix1>;
type Rw2<'py, T> = Rw<'py, T, Ix2>;
type Rw3<'py, T> = Rw<'py, T, Ix3>;
type Rw4<'py, T> = Rw<'py, T, Ix4>;

/// The `ValueError` of a failed borrow (PyO3 adds a note naming the argument).
fn borrow_error(e: &BorrowError) -> PyErr {
    let why = match e {
        BorrowError::NotWriteable => "the array is read-only, and this argument is written to",
        _ => {
            "the array shares memory with another argument of this call, or with an array \
             another call running at the same time is writing"
        }
    };
    pyo3::exceptions::PyValueError::new_err(why)
}

impl<'a, 'py, T: Element + 'a, D: Dimension + 'a> FromPyObject<'a, 'py> for Ro<'py, T, D> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let array = obj.cast::<PyArray<T, D>>()?;
        array.try_readonly().map(Ro).map_err(|e| borrow_error(&e))
    }
}

impl<'a, 'py, T: Element + 'a, D: Dimension + 'a> FromPyObject<'a, 'py> for Rw<'py, T, D> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let array = obj.cast::<PyArray<T, D>>()?;
        array.try_readwrite().map(Rw).map_err(|e| borrow_error(&e))
    }
}

impl<'py, T: Element, D: Dimension> Deref for Ro<'py, T, D> {
    type Target = PyReadonlyArray<'py, T, D>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<'py, T: Element, D: Dimension> Deref for Rw<'py, T, D> {
    type Target = PyReadwriteArray<'py, T, D>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T: Element, D: Dimension> DerefMut for Rw<'_, T, D> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// `ptyfast.PtyfastError`: defined in Python (`ptyfast._errors`), so that it pickles and
/// crosses process boundaries; imported once.
static PTYFAST_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn ptyfast_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    PTYFAST_ERROR.import(py, "ptyfast._errors", "PtyfastError")
}

/// The core's error as `ptyfast.PtyfastError` (a `ValueError` subclass).
fn to_py(py: Python<'_>, e: core::Error) -> PyErr {
    match ptyfast_error(py) {
        Ok(t) => PyErr::from_type(t.clone(), e.to_string()),
        Err(import) => import,
    }
}

/// The thread that finalises the interpreter, once `ptyfast` learns that it exits
/// ([`interpreter_exiting`], called by an `atexit` hook, before finalisation begins).
static FINALIZER: std::sync::OnceLock<std::thread::ThreadId> = std::sync::OnceLock::new();

/// Threads that finished a kernel before the interpreter began to exit and are taking the GIL
/// back ([`released`]).
static RETURNING: AtomicUsize = AtomicUsize::new(0);

/// Longest wait of [`interpreter_exiting`] for the threads that are [`RETURNING`].
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Records that the interpreter is exiting (`ptyfast._kernels` registers it with `atexit`),
/// then lets the threads already on their way back from a kernel take the GIL and return to
/// Python (at most [`EXIT_WAIT`]).
///
/// Taking the GIL back once finalisation has begun ends a daemon thread with `pthread_exit`,
/// whose forced unwinding through this extension's frames crashed the process where the
/// linker left them without the unwinding it needs (the zig-linked wheel: SIGSEGV at exit with
/// daemon threads in kernels). After this call no other thread takes the GIL back from a
/// kernel: it waits for the process to end ([`outlast_exit`]); and those already on their way
/// are back in Python before finalisation begins, where ending them is the interpreter's own
/// business.
#[pyfunction]
fn interpreter_exiting(py: Python<'_>) {
    let _ = FINALIZER.set(std::thread::current().id());
    fence(Ordering::SeqCst); // the set before the reads of RETURNING ([`released`])
    py.detach(|| {
        let start = Instant::now();
        while RETURNING.load(Ordering::SeqCst) > 0 && start.elapsed() < EXIT_WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Whether the interpreter is exiting and this thread is not the one finalising it.
fn exiting_elsewhere() -> bool {
    FINALIZER
        .get()
        .is_some_and(|f| *f != std::thread::current().id())
}

/// A thread that would take the GIL back into an exiting interpreter waits here for the
/// process to end, holding nothing ([`interpreter_exiting`]).
fn outlast_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// `py.detach(f)` (the GIL released while `f` runs) that never takes the GIL back into an
/// exiting interpreter from another thread than the finalising one ([`interpreter_exiting`]).
fn released<T: Send>(py: Python<'_>, f: impl Send + FnOnce() -> T) -> T {
    let r = py.detach(|| {
        if exiting_elsewhere() {
            outlast_exit();
        }
        let r = f();
        // Announce the return before looking (the exit hook sets FINALIZER before it reads
        // RETURNING): either the hook waits for this thread, or this thread sees the exit.
        RETURNING.fetch_add(1, Ordering::SeqCst);
        if exiting_elsewhere() {
            RETURNING.fetch_sub(1, Ordering::SeqCst);
            outlast_exit();
        }
        r
    });
    RETURNING.fetch_sub(1, Ordering::SeqCst);
    r
}

/// Runs `f` with the GIL released, on the core's per-process pool, and maps the core's error
/// to `PtyfastError`.
fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> core::Result<T>,
{
    released(py, || core::install(f)).map_err(|e| to_py(py, e))
}

/// [`detach`] without the pool: `f` runs on the calling thread, which spares the hand-off to a
/// pool thread and back. Only for core calls documented as touching no thread pool (a
/// parallel iterator here would start rayon's global pool, which a forked child waits on
/// forever; `tests/test_processes.py` checks that these calls start no thread).
fn detach_unpooled<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> core::Result<T>,
{
    released(py, f).map_err(|e| to_py(py, e))
}

/// Wall time a piece of [`in_pieces`] aims at, in seconds: short enough that Ctrl-C acts
/// within a fraction of a second, long enough that the per-piece setup and the GIL round trip
/// cost nothing measurable.
const PIECE_SECONDS: f64 = 0.2;

/// Runs a kernel over items `0..total` (patterns, groups, ...) in consecutive pieces
/// `piece(start, stop)`, each with the GIL released on the kernels' pool (as [`detach`]), and
/// handles pending signals between pieces: a `KeyboardInterrupt` (or whatever a Python signal
/// handler raises) ends the call there and is returned. The caller allocates its outputs
/// first ([`zeros`]) and drops them on error, so an interrupted call leaves no partial result.
///
/// Pieces start at one item per thread and grow (at most fourfold per piece) towards
/// [`PIECE_SECONDS`] of measured work; `piece` must therefore give the same result for any
/// split, which kernels keyed per item index (`first_index + start`) do. `piece(0, 0)` runs
/// once when `total` is 0, so a kernel still validates its arguments. Pieces are usually
/// written with [`rows`] (input rows `start..stop`), [`rows_mut`] (output rows) or, for
/// kernels that return a new array, [`write_rows`] (copy into the output):
///
/// ```ignore
/// let mut out = zeros::<f32, _>(Dim([m, n, n]), "positions").map_err(|e| to_py(py, e))?;
/// let mut view = out.view_mut();
/// in_pieces(py, m, |a, b| {
///     let first = first_index + a as u64; // checked for the whole call beforehand
///     kernel_into(rows("positions", &positions, a, b)?, first, rows_mut("out", &mut view, a, b)?)
/// })?;
/// Ok(out.into_pyarray(py))
/// ```
///
/// Checks that relate whole arrays (equal lengths, `first_index + total` in range) belong
/// before the call: a kernel only sees its piece.
fn in_pieces<F>(py: Python<'_>, total: usize, mut piece: F) -> PyResult<()>
where
    F: Send + FnMut(usize, usize) -> core::Result<()>,
{
    let mut start: usize = 0;
    let mut size = core::num_threads().max(1);
    loop {
        let stop = start.saturating_add(size).min(total);
        let seconds = detach(py, || {
            let t0 = Instant::now();
            piece(start, stop)?;
            Ok(t0.elapsed().as_secs_f64())
        })?;
        py.check_signals()?;
        if stop >= total {
            return Ok(());
        }
        let done = (stop - start) as f64;
        let grow = if seconds > 0.0 {
            (PIECE_SECONDS / seconds).min(4.0)
        } else {
            4.0
        };
        size = ((done * grow) as usize).max(1);
        start = stop;
    }
}

/// `first_index + count` must fit in `u64` (the pattern streams of one call).
fn check_first_index(first_index: u64, count: usize) -> core::Result<()> {
    match first_index.checked_add(count as u64) {
        Some(_) => Ok(()),
        None => Err(core::Error::invalid(
            "first_index",
            format!("at most 2**64 - 1 - {count}"),
            first_index.to_string(),
        )),
    }
}

/// Maps a core error in binding code that holds the GIL.
trait OrPy<T> {
    fn or_py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrPy<T> for core::Result<T> {
    fn or_py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

#[pyfunction]
fn extract_patches<'py>(
    py: Python<'py>,
    object: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    n: usize,
) -> PyResult<Bound<'py, PyArray3<Complex32>>> {
    let (o, p) = (object.as_array(), positions.as_array());
    let m = p.nrows();
    let mut out = zeros::<Complex32, _>(Dim([m, n, n]), "positions").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, m, |a, b| {
        let out = rows_mut("out", &mut view, a, b)?;
        core::patches::extract_patches_into(o, rows("positions", &p, a, b)?, out)
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn diffract<'py>(
    py: Python<'py>,
    patches: Ro3<'py, Complex32>,
    probe: Ro2<'py, Complex32>,
    scale: f32,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let (pa, pr) = (patches.as_array(), probe.as_array());
    let (m, h, w) = pa.dim();
    let mut out = zeros::<f32, _>(Dim([m, h, w]), "patches").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, m, |a, b| {
        let piece = core::diffraction::diffract(rows("patches", &pa, a, b)?, pr, scale)?;
        write_rows(&mut view, a, &piece.view())
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (amplitudes, seed, first_index, version="v1"))]
fn poisson_amplitudes<'py>(
    py: Python<'py>,
    amplitudes: Ro3<'py, f32>,
    seed: u64,
    first_index: u64,
    version: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let v = core::noise::PoissonStream::from_name(version).or_py(py)?;
    let am = amplitudes.as_array();
    let (m, h, w) = am.dim();
    // Every value is written (below), so the output is not zero-filled first.
    let mut out = uninit::<f32, _>(Dim([m, h, w]), "amplitudes").or_py(py)?;
    let mut view = out.view_mut();
    if m == 1 {
        // One pattern runs without the pool in the core (tens of µs saved, ~35 µs of work).
        detach_unpooled(py, || {
            core::noise::poisson_amplitudes_into_uninit(am, seed, first_index, v, view)
        })?;
    } else {
        // Pattern i's stream is (seed, first_index + i) with wrapping addition, as in the core.
        in_pieces(py, m, |a, b| {
            let first = first_index.wrapping_add(a as u64);
            let rows = rows("amplitudes", &am, a, b)?;
            core::noise::poisson_amplitudes_into_uninit(
                rows,
                seed,
                first,
                v,
                rows_mut("out", &mut view, a, b)?,
            )
        })?;
    }
    // SAFETY: the call, or `in_pieces` over every row `0..m`, succeeded, and each piece
    // succeeded, writing every value of its rows.
    let out = unsafe { out.assume_init() };
    Ok(out.into_pyarray(py))
}

/// One sequential stream: not split (the draws of a piece depend on all earlier draws), and
/// run on the calling thread (the core uses no pool for it), without the hand-off to the pool.
#[pyfunction]
#[pyo3(signature = (rates, seed, stream, version="v1"))]
fn poisson_counts<'py>(
    py: Python<'py>,
    rates: Ro1<'py, f64>,
    seed: u64,
    stream: u64,
    version: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let r = rates.as_array();
    let v = core::noise::PoissonStream::from_name(version);
    Ok(detach_unpooled(py, || core::noise::poisson_counts(r, seed, stream, v?))?.into_pyarray(py))
}

#[pyfunction]
fn illuminated_energy<'py>(
    py: Python<'py>,
    object: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    probe: Ro2<'py, Complex32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (o, p, pr) = (object.as_array(), positions.as_array(), probe.as_array());
    let m = p.nrows();
    let mut out = zeros::<f64, Ix1>(Dim([m]), "positions").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, m, |a, b| {
        let piece = core::simulate::illuminated_energy(o, rows("positions", &p, a, b)?, pr)?;
        write_rows(&mut view, a, &piece.view())
    })?;
    Ok(out.into_pyarray(py))
}

type SimulateOut<'py> = (
    Bound<'py, PyArray3<f32>>,
    Option<Bound<'py, PyArray3<Complex32>>>,
);

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (object, positions, probe, scale, seed, first_index, divide_by_scale, return_patches))]
fn simulate<'py>(
    py: Python<'py>,
    object: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    probe: Ro2<'py, Complex32>,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
    divide_by_scale: bool,
    return_patches: bool,
) -> PyResult<SimulateOut<'py>> {
    let (o, p, pr) = (object.as_array(), positions.as_array(), probe.as_array());
    let (m, n) = (p.nrows(), pr.nrows());
    if seed.is_some() {
        check_first_index(first_index, m).or_py(py)?;
    }
    let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
    // Prepared once per call (the object's orientation and copy, the scaled probe, the FFT
    // plan); the pieces only run it.
    let sim = detach(py, || {
        core::simulate::Simulator::new(o, p, pr, scale, noise, divide_by_scale)
    })?;
    let mut amplitudes = zeros::<f32, _>(Dim([m, n, n]), "positions").or_py(py)?;
    let mut patches = if return_patches {
        Some(zeros::<Complex32, _>(Dim([m, n, n]), "positions").or_py(py)?)
    } else {
        None
    };
    let mut av = amplitudes.view_mut();
    let mut pv = patches.as_mut().map(|p| p.view_mut());
    in_pieces(py, m, |a, b| {
        let patch_piece = match pv.as_mut() {
            Some(v) => Some(rows_mut("patches", v, a, b)?),
            None => None,
        };
        sim.run_into(
            a..b,
            rows_mut("amplitudes", &mut av, a, b)?,
            patch_piece,
            None,
        )
    })?;
    Ok((
        amplitudes.into_pyarray(py),
        patches.map(|a| a.into_pyarray(py)),
    ))
}

/// [`simulate`] into the caller's buffers (`amplitudes` `(M, N, N)`, optional `patches`
/// `(M, N, N)` and per-pattern `energies` `(M,)`, checked by `ptyfast._kernels`), in pieces
/// over one prepared simulation. Interrupted, the buffers hold the pieces done so far. The
/// buffers' shapes are checked by `ptyfast._kernels`; a mismatch found here names the buffer.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (object, positions, probe, scale, seed, first_index, divide_by_scale, amplitudes, patches, energies))]
fn simulate_into<'py>(
    py: Python<'py>,
    object: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    probe: Ro2<'py, Complex32>,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
    divide_by_scale: bool,
    mut amplitudes: Rw3<'py, f32>,
    mut patches: Option<Rw3<'py, Complex32>>,
    mut energies: Option<Rw1<'py, f64>>,
) -> PyResult<()> {
    let (o, p, pr) = (object.as_array(), positions.as_array(), probe.as_array());
    let m = p.nrows();
    let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
    let sim = detach(py, || {
        core::simulate::Simulator::new(o, p, pr, scale, noise, divide_by_scale)
    })?;
    let mut av = amplitudes.as_array_mut();
    let mut pv = patches.as_mut().map(|a| a.as_array_mut());
    let mut ev = energies.as_mut().map(|a| a.as_array_mut());
    in_pieces(py, m, |a, b| {
        let patch_piece = match pv.as_mut() {
            Some(v) => Some(rows_mut("patches", v, a, b)?),
            None => None,
        };
        let energy_piece = match ev.as_mut() {
            Some(v) => Some(rows_mut("energies", v, a, b)?),
            None => None,
        };
        sim.run_into(
            a..b,
            rows_mut("amplitudes", &mut av, a, b)?,
            patch_piece,
            energy_piece,
        )
    })
}

type KnnOut<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

// The k-NN search and the two groupings build a tree (and draw from one sequential stream)
// per call: they run as one piece. 10^6 points take well under a second.

#[pyfunction]
fn knn<'py>(
    py: Python<'py>,
    points: Ro2<'py, f64>,
    queries: Ro2<'py, f64>,
    k: usize,
) -> PyResult<KnnOut<'py>> {
    let (p, q) = (points.as_array(), queries.as_array());
    let (idx, dist) = detach(py, || core::knn::knn(p, q, k))?;
    Ok((idx.into_pyarray(py), dist.into_pyarray(py)))
}

fn to_indices(a: Option<Ro1<'_, i64>>) -> Option<Vec<usize>> {
    // Non-negativity is checked by the validating Python layer.
    a.map(|a| a.as_array().iter().map(|&v| v.max(0) as usize).collect())
}

#[pyfunction]
#[pyo3(signature = (x, y, nsamples, k, c, seed, seed_indices=None))]
#[allow(clippy::too_many_arguments)]
fn sample_then_group<'py>(
    py: Python<'py>,
    x: Ro1<'py, f64>,
    y: Ro1<'py, f64>,
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<Ro1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (xs, ys) = (x.as_slice()?, y.as_slice()?);
    let si = to_indices(seed_indices);
    let g = detach(py, || {
        core::grouping::sample_then_group(xs, ys, nsamples, k, c, seed, si.as_deref())
    })?;
    Ok(g.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (x, y, nsamples, k, c, seed, seed_indices=None))]
#[allow(clippy::too_many_arguments)]
fn oversample_groups<'py>(
    py: Python<'py>,
    x: Ro1<'py, f64>,
    y: Ro1<'py, f64>,
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<Ro1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (xs, ys) = (x.as_slice()?, y.as_slice()?);
    let si = to_indices(seed_indices);
    let g = detach(py, || {
        core::grouping::oversample_groups(xs, ys, nsamples, k, c, seed, si.as_deref())
    })?;
    Ok(g.into_pyarray(py))
}

/// `(B, H, W, C)` output of a gather over `groups` `(B, C)` of `(M, H, W)` sources.
fn gather_shape(sources: &[usize], groups: (usize, usize)) -> Dim<[usize; 4]> {
    let (h, w) = (
        sources.get(1).copied().unwrap_or(0),
        sources.get(2).copied().unwrap_or(0),
    );
    Dim([groups.0, h, w, groups.1])
}

#[pyfunction]
fn gather_groups<'py>(
    py: Python<'py>,
    diff3d: Ro3<'py, f32>,
    groups: Ro2<'py, i64>,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    let mut out = zeros::<f32, _>(gather_shape(d.shape(), g.dim()), "groups").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, g.nrows(), |a, b| {
        let out = rows_mut("out", &mut view, a, b)?;
        core::grouping::gather_groups_into(d, rows("groups", &g, a, b)?, None, out)
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn gather_groups_scaled<'py>(
    py: Python<'py>,
    diff3d: Ro3<'py, f32>,
    groups: Ro2<'py, i64>,
    scale: f32,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    let mut out = zeros::<f32, _>(gather_shape(d.shape(), g.dim()), "groups").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, g.nrows(), |a, b| {
        let out = rows_mut("out", &mut view, a, b)?;
        core::grouping::gather_groups_into(d, rows("groups", &g, a, b)?, Some(scale), out)
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn pattern_energies<'py>(
    py: Python<'py>,
    diff3d: Ro3<'py, f32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let d = diff3d.as_array();
    let m = d.shape()[0];
    let mut out = zeros::<f64, Ix1>(Dim([m]), "diff3d").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, m, |a, b| {
        let piece = core::grouping::pattern_energies(rows("diff3d", &d, a, b)?);
        write_rows(&mut view, a, &ndarray::ArrayView1::from(&piece))
    })?;
    Ok(out.into_pyarray(py))
}

type GatherPair<'py> = (Bound<'py, PyArray4<f32>>, Bound<'py, PyArray4<f32>>);

#[pyfunction]
fn gather_groups_normalized<'py>(
    py: Python<'py>,
    diff3d: Ro3<'py, f32>,
    groups: Ro2<'py, i64>,
    scale: f32,
) -> PyResult<GatherPair<'py>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    let shape = gather_shape(d.shape(), g.dim());
    let mut plain = zeros::<f32, _>(shape, "groups").or_py(py)?;
    let mut scaled = zeros::<f32, _>(shape, "groups").or_py(py)?;
    let (mut pv, mut sv) = (plain.view_mut(), scaled.view_mut());
    in_pieces(py, g.nrows(), |a, b| {
        let (p, s) = (
            rows_mut("out", &mut pv, a, b)?,
            rows_mut("out", &mut sv, a, b)?,
        );
        core::grouping::gather_groups_normalized_into(d, rows("groups", &g, a, b)?, scale, p, s)
    })?;
    Ok((plain.into_pyarray(py), scaled.into_pyarray(py)))
}

#[pyfunction]
fn gather_groups_complex<'py>(
    py: Python<'py>,
    patches: Ro3<'py, Complex32>,
    groups: Ro2<'py, i64>,
) -> PyResult<Bound<'py, PyArray4<Complex32>>> {
    let (p, g) = (patches.as_array(), groups.as_array());
    let mut out = zeros::<Complex32, _>(gather_shape(p.shape(), g.dim()), "groups").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, g.nrows(), |a, b| {
        let out = rows_mut("out", &mut view, a, b)?;
        core::grouping::gather_groups_complex_into(p, rows("groups", &g, a, b)?, out)
    })?;
    Ok(out.into_pyarray(py))
}

/// Indices as an `i64` array, allocated fallibly (the error names `name`).
fn to_i64_array(v: &[usize], name: &'static str) -> core::Result<ndarray::Array1<i64>> {
    let mut out = zeros::<i64, _>(Dim([v.len()]), name)?;
    for (o, &i) in out.iter_mut().zip(v) {
        *o = i as i64;
    }
    Ok(out)
}

/// `size` values of `next`, into an array allocated fallibly (an error naming `size`, never
/// an abort, for a size that cannot be allocated).
fn draws<T: Element + core::runtime::Element>(
    size: usize,
    mut next: impl FnMut() -> T,
) -> core::Result<ndarray::Array1<T>> {
    let mut out = zeros::<T, _>(Dim([size]), "size")?;
    for o in out.iter_mut() {
        *o = next();
    }
    Ok(out)
}

/// Test hook: legacy `RandomState(seed).permutation(n)`.
#[pyfunction]
fn legacy_permutation<'py>(
    py: Python<'py>,
    seed: u32,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let p = detach(py, || {
        let p = core::legacy_rng::LegacyRandomState::new(seed).try_permutation(n)?;
        to_i64_array(&p, "n")
    })?;
    Ok(p.into_pyarray(py))
}

/// Test hook: legacy `RandomState(seed).choice(n, size, replace)`.
#[pyfunction]
fn legacy_choice<'py>(
    py: Python<'py>,
    seed: u32,
    n: usize,
    size: usize,
    replace: bool,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let p = detach(py, || {
        let p = core::legacy_rng::LegacyRandomState::new(seed).choice(n, size, replace)?;
        to_i64_array(&p, "size")
    })?;
    Ok(p.into_pyarray(py))
}

/// Test hook: legacy `RandomState(seed).random_sample(size)`.
#[pyfunction]
fn legacy_uniform<'py>(
    py: Python<'py>,
    seed: u32,
    size: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = detach(py, || {
        let mut r = core::legacy_rng::LegacyRandomState::new(seed);
        draws(size, || r.next_double())
    })?;
    Ok(v.into_pyarray(py))
}

/// Test hook: the raw 32-bit MT19937 outputs of `RandomState(seed)`.
#[pyfunction]
fn legacy_raw<'py>(py: Python<'py>, seed: u32, size: usize) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let v = detach(py, || {
        let mut r = core::legacy_rng::LegacyRandomState::new(seed);
        draws(size, || r.next_u32())
    })?;
    Ok(v.into_pyarray(py))
}

/// The instruction-set level the kernels run at (`baseline`, `avx2` or `avx512`).
#[pyfunction]
fn simd_level() -> &'static str {
    core::simd::level().name()
}

/// Number of threads in the kernels' pool (`RAYON_NUM_THREADS`, else the core count); builds
/// the pool (again after a `fork`).
#[pyfunction]
fn num_threads() -> usize {
    core::num_threads()
}

type GridPair<'py> = (Bound<'py, PyArray4<f32>>, Bound<'py, PyArray4<f32>>);

#[pyfunction]
fn extract_grid_patches<'py>(
    py: Python<'py>,
    image: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    n: usize,
    c: usize,
) -> PyResult<GridPair<'py>> {
    let (im, p) = (image.as_array(), positions.as_array());
    if c == 0 || !p.nrows().is_multiple_of(c) {
        // The core names the problem.
        let (re, imag) = detach(py, || core::grid::extract_grid_patches(im, p, n, c))?;
        return Ok((re.into_pyarray(py), imag.into_pyarray(py)));
    }
    let b = p.nrows() / c;
    let mut re = zeros::<f32, _>(Dim([b, n, n, c]), "positions").or_py(py)?;
    let mut imag = zeros::<f32, _>(Dim([b, n, n, c]), "positions").or_py(py)?;
    let (mut rv, mut iv) = (re.view_mut(), imag.view_mut());
    in_pieces(py, b, |g0, g1| {
        core::grid::extract_grid_patches_into(
            im,
            rows("positions", &p, g0 * c, g1 * c)?,
            rows_mut("out", &mut rv, g0, g1)?,
            Some(rows_mut("out", &mut iv, g0, g1)?),
        )
    })?;
    Ok((re.into_pyarray(py), imag.into_pyarray(py)))
}

#[pyfunction]
fn extract_grid_patches_into<'py>(
    py: Python<'py>,
    image: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    mut out_re: Rw4<'py, f32>,
    mut out_im: Option<Rw4<'py, f32>>,
) -> PyResult<()> {
    let (im, p) = (image.as_array(), positions.as_array());
    let mut re = out_re.as_array_mut();
    let mut imag = out_im.as_mut().map(|o| o.as_array_mut());
    let (b, _, _, c) = re.dim();
    let whole_ok =
        imag.as_ref().is_none_or(|i| i.dim() == re.dim()) && Some(p.nrows()) == b.checked_mul(c);
    if !whole_ok || b == 0 {
        // The core names the mismatch (whole arrays, one call).
        return detach(py, || {
            core::grid::extract_grid_patches_into(im, p, re, imag)
        });
    }
    in_pieces(py, b, |g0, g1| {
        let imag_piece = match imag.as_mut() {
            Some(v) => Some(rows_mut("out_im", v, g0, g1)?),
            None => None,
        };
        core::grid::extract_grid_patches_into(
            im,
            rows("positions", &p, g0 * c, g1 * c)?,
            rows_mut("out_re", &mut re, g0, g1)?,
            imag_piece,
        )
    })
}

#[pyfunction]
#[pyo3(signature = (amplitude, phase, probe, scale, seed, first_index, out=None))]
#[allow(clippy::too_many_arguments)]
fn illuminate_groups<'py>(
    py: Python<'py>,
    mut amplitude: Rw4<'py, f32>,
    phase: Option<Ro4<'py, f32>>,
    probe: Ro2<'py, Complex32>,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
    out: Option<Bound<'py, PyArray4<f32>>>,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let ph = phase.as_ref().map(|p| p.as_array());
    let (mut amp, pr) = (amplitude.as_array_mut(), probe.as_array());
    let dim = amp.dim();
    let (b, h, w, c) = dim;
    let phase_ok = ph.as_ref().is_none_or(|p| p.dim() == dim);
    if !phase_ok || b == 0 || h != w || h < 2 || c == 0 {
        // The core names the problem (whole arrays, one call).
        let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
        let x = detach(py, || {
            core::grid::illuminate_groups(amp, ph, pr, scale, noise)
        })?;
        return Ok(x.into_pyarray(py));
    }
    if seed.is_some() {
        let count = b.saturating_mul(c);
        check_first_index(first_index, count).or_py(py)?;
    }
    let x = match out {
        Some(x) => x,
        None => zeros::<f32, _>(Dim([b, h, w, c]), "Y_I")
            .or_py(py)?
            .into_pyarray(py),
    };
    let mut xw = x.try_readwrite().map_err(|e| {
        let want = "a writeable array sharing no memory with amplitude or phase";
        to_py(py, core::Error::invalid("out", want, e.to_string()))
    })?;
    let mut xv = xw.as_array_mut();
    if xv.dim() != dim {
        return Err(to_py(
            py,
            core::Error::invalid("out", format!("shape {dim:?}"), format!("{:?}", xv.dim())),
        ));
    }
    // Interrupted, the call leaves `amplitude` partly overwritten (with |O · probe|, as
    // documented); its caller owns that buffer and discards it.
    in_pieces(py, b, |g0, g1| {
        let noise = seed.map(|seed| core::simulate::Noise {
            seed,
            first_index: first_index + (g0 * c) as u64,
        });
        let phase_piece = match ph.as_ref() {
            Some(p) => Some(rows("Y_phi", p, g0, g1)?),
            None => None,
        };
        let (amp_piece, x_piece) = (
            rows_mut("Y_I", &mut amp, g0, g1)?,
            rows_mut("X", &mut xv, g0, g1)?,
        );
        core::grid::illuminate_groups_into(amp_piece, phase_piece, pr, scale, noise, x_piece)
    })?;
    drop(xw);
    Ok(x)
}

#[pyfunction]
fn channel_energies<'py>(
    py: Python<'py>,
    amplitude: Ro4<'py, f32>,
    probe: Ro2<'py, Complex32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (am, pr) = (amplitude.as_array(), probe.as_array());
    let (b, _, _, c) = am.dim();
    let total = b.saturating_mul(c);
    let mut out = zeros::<f64, Ix1>(Dim([total]), "Y_I").or_py(py)?;
    let mut view = out.view_mut();
    in_pieces(py, b, |g0, g1| {
        let piece = core::grid::channel_energies(rows("Y_I", &am, g0, g1)?, pr)?;
        write_rows(&mut view, g0 * c, &piece.view())
    })?;
    Ok(out.into_pyarray(py))
}

/// The scan of the fused grid kernels over a C-contiguous `(K, H, W)` image stack (with the
/// images' amplitudes copied out for the read passes when `amplitudes`).
fn grid_scan<'a>(
    images: &'a Ro3<'_, Complex32>,
    positions: &Ro2<'_, f64>,
    n: usize,
    c: usize,
    amplitudes: bool,
) -> core::Result<core::grid::GridScan<'a>> {
    let dim = images.as_array().dim();
    let data = images
        .as_slice()
        .map_err(|_| core::Error::invalid("images", "a C-contiguous array", "a strided array"))?;
    let scan = core::grid::GridScan::new(data, dim, positions.as_array(), n, c)?;
    if amplitudes {
        scan.with_amplitudes()
    } else {
        Ok(scan)
    }
}

/// `values[g0·per..g1·per]`, or an error naming the array.
fn piece<'s, T>(
    name: &'static str,
    values: &'s mut [T],
    per: usize,
    (g0, g1): (usize, usize),
) -> core::Result<&'s mut [T]> {
    let len = values.len();
    values
        .get_mut(g0.saturating_mul(per)..g1.saturating_mul(per))
        .ok_or_else(|| {
            core::Error::invalid(
                name,
                format!("{per} values per group for groups {g0}..{g1}"),
                format!("{len} values"),
            )
        })
}

/// Each group's largest pre-probe amplitude (the grid kernel's first pass), `(B,)` `f32`.
#[pyfunction]
fn grid_maxima<'py>(
    py: Python<'py>,
    images: Ro3<'py, Complex32>,
    positions: Ro2<'py, f64>,
    n: usize,
    c: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let scan = grid_scan(&images, &positions, n, c, true).or_py(py)?;
    per_group(py, scan.groups(), 1, "maxima", |g0, v| {
        core::grid::grid_maxima_into(&scan, g0, v)
    })
}

/// The energies of the normalised pre-probe patches (the grid kernel's second pass),
/// `(B·C,)` `f64`.
#[pyfunction]
fn grid_energies<'py>(
    py: Python<'py>,
    images: Ro3<'py, Complex32>,
    positions: Ro2<'py, f64>,
    n: usize,
    c: usize,
    probe: Ro2<'py, Complex32>,
    divisor: f32,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let scan = grid_scan(&images, &positions, n, c, true).or_py(py)?;
    let pr = probe.as_array();
    per_group(py, scan.groups(), c, "energies", |g0, v| {
        core::grid::grid_energies_into(&scan, g0, pr, divisor, v)
    })
}

/// A fresh `(groups·per,)` array filled by a grid read pass, in interruptible pieces of
/// groups: `pass(g0, values)` writes the `per` values of each group from `g0` on.
fn per_group<'py, T>(
    py: Python<'py>,
    groups: usize,
    per: usize,
    name: &'static str,
    mut pass: impl Send + FnMut(usize, &mut [T]) -> core::Result<()>,
) -> PyResult<Bound<'py, PyArray1<T>>>
where
    T: ptyfast_core::runtime::Element + numpy::Element + Send,
{
    let mut out = zeros::<T, Ix1>(Dim([groups.saturating_mul(per)]), "positions").or_py(py)?;
    let values = out
        .as_slice_mut()
        .ok_or_else(|| core::Error::Unsupported("a fresh array is contiguous".into()))
        .or_py(py)?;
    in_pieces(py, groups, |g0, g1| {
        pass(g0, piece(name, values, per, (g0, g1))?)
    })?;
    Ok(out.into_pyarray(py))
}

/// The grid kernel's fused pass into caller-provided outputs: `x`, `amplitude` and `phase`
/// `(B, N, N, C)`, the flat pre-probe copies `(B·C, N, N, 1)`.
#[pyfunction]
#[pyo3(signature = (images, positions, probe, divisor, scale, seed, first_index, x, amplitude, phase=None, pre_amplitude=None, pre_phase=None))]
#[allow(clippy::too_many_arguments)]
fn simulate_grid<'py>(
    py: Python<'py>,
    images: Ro3<'py, Complex32>,
    positions: Ro2<'py, f64>,
    probe: Ro2<'py, Complex32>,
    divisor: f32,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
    mut x: Rw4<'py, f32>,
    mut amplitude: Rw4<'py, f32>,
    mut phase: Option<Rw4<'py, f32>>,
    mut pre_amplitude: Option<Rw4<'py, f32>>,
    mut pre_phase: Option<Rw4<'py, f32>>,
) -> PyResult<()> {
    let (_, n, _, c) = x.as_array().dim();
    let scan = grid_scan(&images, &positions, n, c, false).or_py(py)?;
    let b = scan.groups();
    let per = n.saturating_mul(n).saturating_mul(c);
    let pr = probe.as_array();
    let strided = |name: &'static str| {
        move |_| core::Error::invalid(name, "a C-contiguous array", "a strided array")
    };
    let xs = x.as_slice_mut().map_err(strided("X")).or_py(py)?;
    let amp = amplitude.as_slice_mut().map_err(strided("Y_I")).or_py(py)?;
    let mut ph = match phase.as_mut() {
        Some(p) => Some(p.as_slice_mut().map_err(strided("Y_phi")).or_py(py)?),
        None => None,
    };
    let mut pa = match pre_amplitude.as_mut() {
        Some(p) => Some(p.as_slice_mut().map_err(strided("I_pre_probe")).or_py(py)?),
        None => None,
    };
    let mut pp = match pre_phase.as_mut() {
        Some(p) => Some(
            p.as_slice_mut()
                .map_err(strided("phi_pre_probe"))
                .or_py(py)?,
        ),
        None => None,
    };
    if xs.len() != b.saturating_mul(per) {
        let e = core::Error::invalid(
            "X",
            format!("{b} groups of {per} values"),
            xs.len().to_string(),
        );
        return Err(to_py(py, e));
    }
    // Interrupted, the call leaves the outputs partly written; its caller discards them.
    in_pieces(py, b, |g0, g1| {
        let r = (g0, g1);
        let out = core::grid::GridOut {
            x: piece("X", xs, per, r)?,
            amplitude: piece("Y_I", amp, per, r)?,
            phase: ph
                .as_deref_mut()
                .map(|p| piece("Y_phi", p, per, r))
                .transpose()?,
            pre_amplitude: pa
                .as_deref_mut()
                .map(|p| piece("I_pre_probe", p, per, r))
                .transpose()?,
            pre_phase: pp
                .as_deref_mut()
                .map(|p| piece("phi_pre_probe", p, per, r))
                .transpose()?,
        };
        let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
        core::grid::simulate_grid_into(&scan, g0, pr, divisor, scale, noise, out)
    })
}

/// The detector's parameters as `ptyfast._kernels` passes them: a dict with every key.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct DetectorArgs {
    poisson: Option<String>,
    qe: f64,
    dead_time: f64,
    psf_sigma_px: f64,
    gain: f64,
    offset: f64,
    dark: f64,
    read_noise: f64,
    full_well: Option<f64>,
    overflow: String,
}

impl DetectorArgs {
    fn into_core(
        self,
        py: Python<'_>,
        pixels: Option<Ro2<'_, u8>>,
    ) -> PyResult<core::detector::Detector> {
        use core::detector::{Detector, Overflow, PoissonStream};
        let err = |e: core::Error| to_py(py, e);
        Ok(Detector {
            poisson: self
                .poisson
                .map(|s| PoissonStream::from_name(&s))
                .transpose()
                .map_err(err)?,
            qe: self.qe,
            dead_time: self.dead_time,
            psf_sigma_px: self.psf_sigma_px,
            gain: self.gain,
            offset: self.offset,
            dark: self.dark,
            read_noise: self.read_noise,
            full_well: self.full_well,
            overflow: Overflow::from_name(&self.overflow).map_err(err)?,
            pixels: pixels.map(|p| core::detector::pixel_map(p.as_array())),
        })
    }
}

/// A caller's readings buffer, in one of the detector's dtypes.
enum Readings<'py> {
    F32(Rw3<'py, f32>),
    F64(Rw3<'py, f64>),
    U8(Rw3<'py, u8>),
    U16(Rw3<'py, u16>),
    U32(Rw3<'py, u32>),
}

/// The buffer by its dtype, then borrowed as [`Rw`] (a `ValueError` if it cannot be); a
/// `TypeError` for any other object.
impl<'a, 'py> FromPyObject<'a, 'py> for Readings<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.cast::<PyArray3<f32>>().is_ok() {
            Ok(Readings::F32(obj.extract()?))
        } else if obj.cast::<PyArray3<f64>>().is_ok() {
            Ok(Readings::F64(obj.extract()?))
        } else if obj.cast::<PyArray3<u8>>().is_ok() {
            Ok(Readings::U8(obj.extract()?))
        } else if obj.cast::<PyArray3<u16>>().is_ok() {
            Ok(Readings::U16(obj.extract()?))
        } else if obj.cast::<PyArray3<u32>>().is_ok() {
            Ok(Readings::U32(obj.extract()?))
        } else {
            Err(pyo3::exceptions::PyTypeError::new_err(
                "a 3-D float32, float64, uint8, uint16 or uint32 array is required",
            ))
        }
    }
}

/// Runs `f` on the readings buffer with its element type.
macro_rules! with_readings {
    ($readings:expr, |$out:ident| $body:expr) => {
        match $readings {
            Readings::F32(mut $out) => $body,
            Readings::F64(mut $out) => $body,
            Readings::U8(mut $out) => $body,
            Readings::U16(mut $out) => $body,
            Readings::U32(mut $out) => $body,
        }
    };
}

#[allow(clippy::too_many_arguments)]
fn acquire_as<T: core::detector::Reading + Element>(
    py: Python<'_>,
    inputs: (&Ro2<'_, Complex32>, &Ro2<'_, f64>, &Ro3<'_, Complex32>),
    scale: f32,
    detector: &core::detector::Detector,
    seed: u64,
    first_index: u64,
    readings: &mut Rw3<'_, T>,
    patches: Option<&mut Rw3<'_, Complex32>>,
    stats: Option<&mut Rw2<'_, f64>>,
) -> PyResult<()> {
    let (o, p, m) = (
        inputs.0.as_array(),
        inputs.1.as_array(),
        inputs.2.as_array(),
    );
    let r = readings.as_array_mut();
    let pa = patches.map(|a| a.as_array_mut());
    let st = stats.map(|a| a.as_array_mut());
    detach(py, || {
        core::acquisition::acquire_into(o, p, m, scale, detector, seed, first_index, r, pa, st)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (object, positions, modes, scale, seed, first_index, detector, pixels, readings, patches, stats))]
fn acquire<'py>(
    py: Python<'py>,
    object: Ro2<'py, Complex32>,
    positions: Ro2<'py, f64>,
    modes: Ro3<'py, Complex32>,
    scale: f32,
    seed: u64,
    first_index: u64,
    detector: DetectorArgs,
    pixels: Option<Ro2<'py, u8>>,
    readings: Readings<'py>,
    mut patches: Option<Rw3<'py, Complex32>>,
    mut stats: Option<Rw2<'py, f64>>,
) -> PyResult<()> {
    let det = detector.into_core(py, pixels)?;
    let inputs = (&object, &positions, &modes);
    with_readings!(readings, |out| acquire_as(
        py,
        inputs,
        scale,
        &det,
        seed,
        first_index,
        &mut out,
        patches.as_mut(),
        stats.as_mut()
    ))
}

fn detect_as<T: core::detector::Reading + Element>(
    py: Python<'_>,
    expected: &Ro3<'_, f64>,
    detector: &core::detector::Detector,
    seed: u64,
    first_index: u64,
    readings: &mut Rw3<'_, T>,
    stats: Option<&mut Rw2<'_, f64>>,
) -> PyResult<()> {
    let e = expected.as_array();
    let r = readings.as_array_mut();
    let st = stats.map(|a| a.as_array_mut());
    detach(py, || {
        core::detector::detect_into(detector, e, seed, first_index, r, st)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (expected, seed, first_index, detector, pixels, readings, stats))]
fn detect<'py>(
    py: Python<'py>,
    expected: Ro3<'py, f64>,
    seed: u64,
    first_index: u64,
    detector: DetectorArgs,
    pixels: Option<Ro2<'py, u8>>,
    readings: Readings<'py>,
    mut stats: Option<Rw2<'py, f64>>,
) -> PyResult<()> {
    let det = detector.into_core(py, pixels)?;
    with_readings!(readings, |out| detect_as(
        py,
        &expected,
        &det,
        seed,
        first_index,
        &mut out,
        stats.as_mut()
    ))
}

/// One batch of dead leaves painted onto `out` and `uncovered` (`(H, W)`, C-contiguous,
/// modified in place; checked by `ptyfast._kernels.paint_leaves`): the uncovered count after
/// it, and how many leaves it used if that reached 0 ([`core::textures::paint_leaves`]).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn paint_leaves<'py>(
    py: Python<'py>,
    mut out: Rw2<'py, f64>,
    mut uncovered: Rw2<'py, bool>,
    cx: Ro1<'py, f64>,
    cy: Ro1<'py, f64>,
    radii: Ro1<'py, f64>,
    values: Ro1<'py, f64>,
    remaining: usize,
) -> PyResult<(usize, Option<usize>)> {
    let shape = out.as_array().dim();
    let (o, u) = (out.as_slice_mut(), uncovered.as_slice_mut());
    let (cx, cy, r, v) = (
        cx.as_slice(),
        cy.as_slice(),
        radii.as_slice(),
        values.as_slice(),
    );
    let (Ok(o), Ok(u), Ok(cx), Ok(cy), Ok(r), Ok(v)) = (o, u, cx, cy, r, v) else {
        let e = core::Error::invalid("out", "C-contiguous arrays", "a strided array");
        return Err(to_py(py, e));
    };
    released(py, || {
        core::textures::paint_leaves(o, u, shape, cx, cy, r, v, remaining)
    })
    .map_err(|e| to_py(py, e))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PtyfastError", ptyfast_error(m.py())?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(interpreter_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(extract_patches, m)?)?;
    m.add_function(wrap_pyfunction!(diffract, m)?)?;
    m.add_function(wrap_pyfunction!(poisson_amplitudes, m)?)?;
    m.add_function(wrap_pyfunction!(poisson_counts, m)?)?;
    m.add_function(wrap_pyfunction!(illuminated_energy, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_into, m)?)?;
    m.add_function(wrap_pyfunction!(acquire, m)?)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(sample_then_group, m)?)?;
    m.add_function(wrap_pyfunction!(oversample_groups, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(extract_grid_patches, m)?)?;
    m.add_function(wrap_pyfunction!(extract_grid_patches_into, m)?)?;
    m.add_function(wrap_pyfunction!(illuminate_groups, m)?)?;
    m.add_function(wrap_pyfunction!(channel_energies, m)?)?;
    m.add_function(wrap_pyfunction!(grid_maxima, m)?)?;
    m.add_function(wrap_pyfunction!(grid_energies, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_grid, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_scaled, m)?)?;
    m.add_function(wrap_pyfunction!(pattern_energies, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_normalized, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_complex, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_permutation, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_choice, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_raw, m)?)?;
    m.add_function(wrap_pyfunction!(paint_leaves, m)?)?;
    Ok(())
}

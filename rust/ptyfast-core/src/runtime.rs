//! How kernels run: on a thread pool owned by this process (fork-safe), writing into output
//! buffers that callers may fill in pieces.
//!
//! rayon's global pool does not survive `fork`: a child inherits the pool's bookkeeping but
//! not its threads, so the first parallel job it submits waits forever (a `multiprocessing`
//! fork pool or a PyTorch `DataLoader` worker after any kernel ran). The kernels therefore run
//! inside [`install`] on a pool that remembers the process id that built it; the first call in
//! a forked child finds another process's pool and builds a fresh one. The parent's pool is
//! never touched, let alone dropped, in the child (its threads do not exist there); the child
//! leaks its copy, a few hundred bytes. A kernel documented as touching no pool (one pattern
//! of `noise::poisson_amplitudes_into`, `noise::poisson_counts`) may run outside [`install`],
//! on the calling thread, which spares the hand-off to a pool thread and back.
//!
//! Kernels that write into caller-provided outputs (`*_into`, keyed per pattern index) can be
//! run over any split of their items with identical bits. [`zeros`] allocates such outputs
//! without touching their pages, and fails with an error instead of aborting.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, Ordering};

use ndarray::{Array, ArrayView, ArrayViewMut, Axis, Dimension, Slice};
use rayon::prelude::*;

use crate::{Complex32, Error, Result};

/// A pool and the process that built it.
struct Owned {
    pid: u32,
    pool: rayon::ThreadPool,
}

/// The current process's pool, or one inherited through `fork`, or null. Every non-null value
/// was made by `Box::into_raw` and, once stored here, is never freed.
static CURRENT: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// The kernels' thread pool of this process, built on first use (`RAYON_NUM_THREADS` threads,
/// else one per core) and again after a `fork`.
///
/// Lock-free, so a `fork` that happens while another thread is here cannot leave the child
/// waiting on a lock.
///
/// # Errors
/// [`Error::Unsupported`] when the operating system refuses to start the pool's threads.
pub fn pool() -> Result<&'static rayon::ThreadPool> {
    let pid = std::process::id();
    loop {
        let current = CURRENT.load(Ordering::Acquire);
        // SAFETY: non-null values of CURRENT come from `Box::into_raw` and are never freed
        // (see CURRENT), so the reference is valid for 'static.
        if let Some(owned) = unsafe { current.as_ref() } {
            if owned.pid == pid {
                return Ok(&owned.pool);
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("ptyfast-{i}"))
            .build()
            .map_err(|e| Error::Unsupported(format!("cannot start the thread pool: {e}")))?;
        let fresh = Box::into_raw(Box::new(Owned { pid, pool }));
        if CURRENT
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another thread installed a pool first. Ours was never published, so it can be
            // dropped here (its threads live in this process); the loop returns the winner.
            // SAFETY: `fresh` comes from `Box::into_raw` above and nobody else has seen it.
            drop(unsafe { Box::from_raw(fresh) });
        }
        // On success the value replaced, if any, belonged to the parent of a fork: leaked.
    }
}

/// Runs `op` on this process's pool (see [`pool`]): every parallel iterator inside it uses the
/// pool's threads, so kernels called through here work in a forked child too.
///
/// # Errors
/// The pool's error (see [`pool`]), or `op`'s.
pub fn install<T: Send>(op: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    pool()?.install(op)
}

/// Number of worker threads the kernels use (`RAYON_NUM_THREADS`, else one per core).
pub fn num_threads() -> usize {
    pool().map_or(1, rayon::ThreadPool::current_num_threads)
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for i64 {}
    impl Sealed for crate::Complex32 {}
}

/// Element types of kernel outputs (`f32`, `f64`, `u8`, `u16`, `u32`, `i64`, `Complex32`): zero
/// bits are a valid value.
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// `len` zeros, allocated without being written (see [`zeros`]).
    ///
    /// # Errors
    /// As [`zeros`].
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>>;

    /// `len` values left uninitialised (see [`uninit`]).
    ///
    /// # Errors
    /// As [`zeros`].
    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>>;
}

impl Element for f32 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for f64 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for u8 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for u16 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for u32 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for i64 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

impl Element for Complex32 {
    fn zeroed(len: usize, name: &'static str) -> Result<Vec<Self>> {
        crate::patches::zeroed(len, name)
    }

    fn uninit(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<Self>>> {
        crate::patches::uninit(len, name)
    }
}

/// A zero-filled C-ordered output array of `shape`, for a caller that fills it in pieces. Its
/// pages are not touched here (the workers that fill it fault them in, in parallel), and a
/// size that overflows or cannot be allocated is an error, never an abort.
///
/// # Errors
/// [`Error::InvalidArgument`] (`name`, the argument the size derives from) when the array's
/// size overflows or the memory cannot be allocated.
pub fn zeros<T: Element, D: Dimension>(shape: D, name: &'static str) -> Result<Array<T, D>> {
    let data = T::zeroed(output_len(&shape, name)?, name)?;
    Array::from_shape_vec(shape.clone(), data).map_err(|e| Error::Unsupported(e.to_string()))
}

/// [`zeros`] without the zeros: a C-ordered output array of `shape` whose values are not
/// initialised, for a kernel that writes every one of them (then `assume_init`). It saves the
/// zero fill that `calloc` does whenever it reuses freed memory.
///
/// # Errors
/// As [`zeros`].
pub fn uninit<T: Element, D: Dimension>(
    shape: D,
    name: &'static str,
) -> Result<Array<MaybeUninit<T>, D>> {
    let data = T::uninit(output_len(&shape, name)?, name)?;
    Array::from_shape_vec(shape.clone(), data).map_err(|e| Error::Unsupported(e.to_string()))
}

/// The number of values of an output of `shape`, or the error naming `name` if it overflows.
fn output_len<D: Dimension>(shape: &D, name: &'static str) -> Result<usize> {
    shape.size_checked().ok_or_else(|| {
        Error::invalid(
            name,
            "small enough for the output to fit in memory",
            format!("an output of shape {:?}", shape.slice()),
        )
    })
}

fn check_range(name: &'static str, len: usize, start: usize, stop: usize) -> Result<()> {
    if start <= stop && stop <= len {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("at least {stop} rows"),
            len.to_string(),
        ))
    }
}

/// Rows `start..stop` (first axis) of `a`: the piece of an input a kernel works on.
///
/// # Errors
/// [`Error::InvalidArgument`] (`name`) when `a` has fewer than `stop` rows or is 0-dimensional.
pub fn rows<'a, T, D: Dimension>(
    name: &'static str,
    a: &'a ArrayView<'_, T, D>,
    start: usize,
    stop: usize,
) -> Result<ArrayView<'a, T, D>> {
    let len = a.shape().first().copied().unwrap_or(0);
    check_range(name, len, start, stop)?;
    Ok(a.slice_axis(Axis(0), Slice::from(start..stop)))
}

/// Rows `start..stop` (first axis) of `a`, writable: the piece of an output a kernel fills.
///
/// # Errors
/// As [`rows`].
pub fn rows_mut<'a, T, D: Dimension>(
    name: &'static str,
    a: &'a mut ArrayViewMut<'_, T, D>,
    start: usize,
    stop: usize,
) -> Result<ArrayViewMut<'a, T, D>> {
    let len = a.shape().first().copied().unwrap_or(0);
    check_range(name, len, start, stop)?;
    Ok(a.slice_axis_mut(Axis(0), Slice::from(start..stop)))
}

/// Copies `piece` into `out` from row `start` on (both C-contiguous with equal trailing
/// dimensions), in parallel: how a kernel that returns its result as a new array fills its
/// piece of a preallocated output.
///
/// # Errors
/// [`Error::Unsupported`] when the shapes do not fit or an array is not C-contiguous.
pub fn write_rows<T: Element, D: Dimension>(
    out: &mut ArrayViewMut<'_, T, D>,
    start: usize,
    piece: &ArrayView<'_, T, D>,
) -> Result<()> {
    let n = piece.shape().first().copied().unwrap_or(0);
    let stop = start.saturating_add(n);
    let mut dst = rows_mut("out", out, start, stop)?;
    if dst.shape() != piece.shape() {
        return Err(Error::Unsupported(format!(
            "a piece of shape {:?} does not fit an output piece of shape {:?}",
            piece.shape(),
            dst.shape()
        )));
    }
    let strided = || Error::Unsupported("pieces must be C-contiguous".into());
    let dst = dst.as_slice_mut().ok_or_else(strided)?;
    let src = piece.as_slice().ok_or_else(strided)?;
    const CHUNK: usize = 1 << 16;
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| d.copy_from_slice(s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Ix1, Ix3};

    #[test]
    fn one_pool_per_process_reused() -> Result<()> {
        let a = pool()? as *const rayon::ThreadPool;
        let b = pool()? as *const rayon::ThreadPool;
        assert_eq!(a, b);
        assert!(num_threads() >= 1);
        Ok(())
    }

    #[test]
    fn install_runs_on_the_pools_named_threads() -> Result<()> {
        let names = install(|| {
            use rayon::prelude::*;
            Ok((0..64)
                .into_par_iter()
                .map(|_| std::thread::current().name().map(str::to_owned))
                .collect::<Vec<_>>())
        })?;
        assert!(names
            .iter()
            .all(|n| n.as_deref().is_some_and(|n| n.starts_with("ptyfast-"))));
        Ok(())
    }

    #[test]
    fn zeros_are_zero_and_huge_sizes_are_errors() -> Result<()> {
        let a = zeros::<f32, Ix3>(ndarray::Dim([3, 4, 5]), "positions")?;
        assert_eq!(a.dim(), (3, 4, 5));
        assert!(a.iter().all(|&v| v == 0.0));
        assert!(a.is_standard_layout());
        let c = zeros::<Complex32, Ix1>(ndarray::Dim([2]), "x")?;
        assert!(c.iter().all(|v| v.re == 0.0 && v.im == 0.0));
        let err = zeros::<f64, Ix3>(ndarray::Dim([usize::MAX, 2, 2]), "positions");
        assert!(matches!(
            err,
            Err(Error::InvalidArgument {
                name: "positions",
                ..
            })
        ));
        let err = zeros::<f64, Ix1>(ndarray::Dim([1usize << 62]), "groups");
        assert!(matches!(
            err,
            Err(Error::InvalidArgument { name: "groups", .. })
        ));
        let u = zeros::<u16, Ix1>(ndarray::Dim([5]), "x")?;
        assert_eq!(u.sum(), 0);
        Ok(())
    }

    #[test]
    fn uninit_outputs_have_the_shape_and_huge_sizes_are_errors() -> Result<()> {
        // Large enough for huge pages to be advised; writing every value and reading it back
        // through `assume_init` is the use the kernels make of it.
        let mut a = uninit::<f32, Ix3>(ndarray::Dim([3, 1024, 1024]), "amplitudes")?;
        assert_eq!(a.dim(), (3, 1024, 1024));
        assert!(a.is_standard_layout());
        for (i, v) in a.iter_mut().enumerate() {
            v.write(i as f32);
        }
        // SAFETY: every value was written just above.
        let a = unsafe { a.assume_init() };
        assert!(a.iter().enumerate().all(|(i, &v)| v == i as f32));
        assert_eq!(uninit::<u32, Ix1>(ndarray::Dim([0]), "x")?.len(), 0);
        for (shape, name) in [
            ([usize::MAX, 2, 2], "positions"),
            ([1usize << 61, 1, 1], "groups"),
        ] {
            let err = uninit::<f64, Ix3>(ndarray::Dim(shape), name);
            assert!(
                matches!(err, Err(Error::InvalidArgument { name: n, .. }) if n == name),
                "{shape:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn pieces_written_row_by_row_equal_the_whole() -> Result<()> {
        let whole =
            ndarray::Array3::from_shape_fn((10, 3, 2), |(i, j, k)| (i * 6 + j * 2 + k) as f32);
        let mut out = zeros::<f32, Ix3>(ndarray::Dim([10, 3, 2]), "x")?;
        let src = whole.view();
        {
            let mut view = out.view_mut();
            for (a, b) in [(0, 3), (3, 3), (3, 9), (9, 10)] {
                let piece = rows("x", &src, a, b)?.to_owned();
                write_rows(&mut view, a, &piece.view())?;
            }
            assert!(rows_mut("out", &mut view, 0, 11).is_err());
            let wrong = ndarray::Array3::<f32>::zeros((2, 2, 2));
            assert!(write_rows(&mut view, 0, &wrong.view()).is_err());
            assert!(write_rows(&mut view, 9, &src.slice(ndarray::s![0..2, .., ..])).is_err());
        }
        assert_eq!(out, whole);
        assert!(rows("x", &src, 4, 11).is_err());
        assert!(rows("x", &src, 5, 4).is_err());
        Ok(())
    }
}

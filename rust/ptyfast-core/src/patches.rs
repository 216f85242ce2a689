//! Sub-pixel patch extraction with the reference's bilinear semantics.
//!
//! `patch[r, c] = bilinear(object, row = r + y − N/2, col = c + x − N/2)` with zero outside the
//! object (`N/2` is integer division). Coordinates are rounded to `f32` and combined in `f32`
//! exactly as the reference's translation does: the reference pads the object with `N/2` zeros
//! per side and translates it by `−(x, y)`, so the source coordinate in the padded frame is
//! `sx = f32(c) + f32(x)`, `x0 = floor(sx)`, `wx = sx − x0`, and likewise for rows. The four
//! corners get the `f32` weights `(1−wx)(1−wy)`, `wx(1−wy)`, `(1−wx)wy`, `wx·wy`; a corner
//! outside the object contributes zero. Real and imaginary parts are interpolated in `f32`
//! (the four products are summed as `(w00·p00 + w11·p11) + (w01·p01 + w10·p10)`, an order that
//! is symmetric in rows and columns). Results therefore agree with the reference to float32
//! rounding, and integer positions give exact pixel copies.
//!
//! This module also holds the output allocation shared by the kernels (`zeroed`).

use ndarray::{Array3, ArrayView2, ArrayViewMut2, ArrayViewMut3, CowArray, Ix2};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use crate::{Complex32, Error, Result};

/// A value the sampler interpolates: a complex pixel, or a real one (the grid kernel's
/// amplitude-only passes, which give the real parts of the complex result bit for bit).
pub(crate) trait Pixel: Copy + Send + Sync {
    /// The value outside the object.
    const ZERO: Self;
    /// `(w0·a0 + w3·b1) + (w1·a1 + w2·b0)` in `f32`, per real component.
    fn blend(w: [f32; 4], a0: Self, a1: Self, b0: Self, b1: Self) -> Self;
}

impl Pixel for Complex32 {
    const ZERO: Self = Complex32::new(0.0, 0.0);
    #[inline(always)]
    fn blend(w: [f32; 4], a0: Self, a1: Self, b0: Self, b1: Self) -> Self {
        Complex32::new(
            f32::blend(w, a0.re, a1.re, b0.re, b1.re),
            f32::blend(w, a0.im, a1.im, b0.im, b1.im),
        )
    }
}

impl Pixel for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn blend(w: [f32; 4], a0: Self, a1: Self, b0: Self, b1: Self) -> Self {
        (w[0] * a0 + w[3] * b1) + (w[1] * a1 + w[2] * b0)
    }
}

/// A row-major view of the object with its dimensions, shared by all workers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Object<'a, T = Complex32> {
    data: &'a [T],
    h: usize,
    w: usize,
}

impl<'a, T: Pixel> Object<'a, T> {
    /// Wraps a row-major `h × w` buffer (`data.len() == h * w`, both non-zero).
    pub(crate) fn from_slice(data: &'a [T], h: usize, w: usize) -> Result<Self> {
        if h == 0 || w == 0 || data.len() != h * w {
            return Err(Error::Unsupported(
                "object buffer does not match its shape".into(),
            ));
        }
        Ok(Object { data, h, w })
    }

    /// The row-major values.
    pub(crate) fn data(&self) -> &'a [T] {
        self.data
    }

    fn row(&self, r: usize) -> &'a [T] {
        let start = r * self.w;
        self.data.get(start..start + self.w).unwrap_or(&[])
    }
}

impl<'a> Object<'a> {
    /// Wraps a standard-layout array (see [`standard_object`]).
    pub(crate) fn new(object: &'a CowArray<'_, Complex32, Ix2>) -> Result<Self> {
        let (h, w) = object.dim();
        if h == 0 || w == 0 {
            return Err(Error::invalid(
                "obj",
                "a non-empty (H, W) array",
                format!("shape ({h}, {w})"),
            ));
        }
        let data = object
            .as_slice()
            .ok_or_else(|| Error::Unsupported("obj must be in standard (C) layout".into()))?;
        Ok(Object { data, h, w })
    }

    /// The transposed object (`W × H`, C order), copied in parallel cache-sized tiles.
    /// Whether a run should sample it instead: [`transpose_pays`].
    pub(crate) fn transposed(&self) -> Vec<Complex32> {
        const T: usize = 32;
        let (h, w) = (self.h, self.w);
        let mut out = vec![Complex32::new(0.0, 0.0); h * w];
        // Each job writes T rows of the transpose (T columns of the object).
        out.par_chunks_mut(T * h).enumerate().for_each(|(j, dst)| {
            let c0 = j * T;
            for r0 in (0..h).step_by(T) {
                let r1 = (r0 + T).min(h);
                for (k, drow) in dst.chunks_exact_mut(h).enumerate() {
                    let c = c0 + k;
                    for (d, r) in drow[r0..r1].iter_mut().zip(r0..r1) {
                        if let Some(v) = self.data.get(r * w + c) {
                            *d = *v;
                        }
                    }
                }
            }
        });
        out
    }
}

/// How many times the pixels of `m` patterns must outweigh the object's before a run samples a
/// transposed copy of it ([`transpose_pays`]).
const TRANSPOSE_RATIO: usize = 16;

/// Whether a run of `m` patterns of `nn` pixels should sample a transposed copy of an `h × w`
/// object (the far field takes the field transposed, so the copy saves a transpose per
/// pattern; the values are the same bit for bit either way).
///
/// Measured for `N = 64` on 2 threads (2026-11-30): the copy costs 3–7.5 ns per object pixel
/// (its allocation included) and saves 0.4–1.7 µs per pattern (2–8 %), so it pays once the
/// patterns' pixels outweigh the object's by ~10–75×. With the old rule (a ratio of 1), a
/// chunk of 1,024 patterns of a 2048² object took 2.4× as long as without the copy. With a
/// ratio of [`TRANSPOSE_RATIO`], the copy costs at most ~0.5 ns per pattern pixel, about what
/// it saves.
pub(crate) fn transpose_pays(h: usize, w: usize, m: usize, nn: usize) -> bool {
    h.saturating_mul(w).saturating_mul(TRANSPOSE_RATIO) <= m.saturating_mul(nn)
}

/// The object in C order, borrowed when it already is (the usual case), copied otherwise.
pub(crate) fn standard_object<'a>(
    object: &'a ArrayView2<'_, Complex32>,
) -> CowArray<'a, Complex32, Ix2> {
    object.as_standard_layout()
}

/// Per-thread scratch of the sampler: the source index and weight of every row and column.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sampler {
    rows: AxisTable,
    cols: AxisTable,
}

#[derive(Debug, Clone, Default)]
struct AxisTable {
    /// Object index of the lower corner (`floor(s) − N/2`, saturating).
    i0: Vec<i64>,
    /// Weight of the upper corner (`s − floor(s)`, in `f32`).
    w: Vec<f32>,
    /// Whether `i0` steps by exactly one (f32 rounding can make it skip an index).
    consecutive: bool,
}

impl AxisTable {
    #[inline(always)]
    fn fill(&mut self, len: usize, p: f32) {
        let half = (len / 2) as i64;
        self.i0.clear();
        self.w.clear();
        for i in 0..len {
            let s = i as f32 + p;
            let f = s.floor();
            self.w.push(s - f);
            // Positions are finite, so `s` is finite or ±inf (beyond the f32 range); `as`
            // saturates ±inf and the bounds checks then reject the corner.
            self.i0.push((f as i64).saturating_sub(half));
        }
        self.consecutive = self
            .i0
            .windows(2)
            .all(|p| p[0].checked_add(1) == Some(p[1]));
    }

    /// Whether both corners of every entry lie in `[0, size)` (the table is non-decreasing).
    #[inline(always)]
    fn interior(&self, size: usize) -> bool {
        let size = size as i64;
        match (self.i0.first(), self.i0.last()) {
            (Some(&lo), Some(&hi)) => lo >= 0 && hi < size - 1,
            _ => false,
        }
    }
}

/// `w00·a0 + w01·a1 + w10·b0 + w11·b1` in `f32`, summed as `(w00·a0 + w11·b1) + (w01·a1 +
/// w10·b0)`. The pairing is symmetric under swapping rows and columns (`a1 ↔ b0`,
/// `w01 ↔ w10`), so sampling the transposed object gives the transposed patch bit for bit,
/// which the fused simulation relies on.
/// Per real component (a complex pixel's real part is blended exactly as a real pixel).
#[inline(always)]
fn blend<T: Pixel>(w: [f32; 4], a0: T, a1: T, b0: T, b1: T) -> T {
    T::blend(w, a0, a1, b0, b1)
}

#[inline(always)]
fn weights(wx: f32, wy: f32) -> [f32; 4] {
    [
        (1.0 - wx) * (1.0 - wy),
        wx * (1.0 - wy),
        (1.0 - wx) * wy,
        wx * wy,
    ]
}

impl Sampler {
    /// Writes the `rows × cols` patch at `(x, y)` (row-major) into `out`.
    ///
    /// `out.len()` must be `rows * cols`; a shorter `out` is filled as far as it goes.
    /// Inlined, so that it takes the instruction set of its caller ([`crate::simd`]).
    #[inline(always)]
    pub(crate) fn sample<T: Pixel>(
        &mut self,
        obj: &Object<'_, T>,
        x: f64,
        y: f64,
        rows: usize,
        cols: usize,
        out: &mut [T],
    ) {
        self.rows.fill(rows, y as f32);
        self.cols.fill(cols, x as f32);
        if cols == 0 {
            return;
        }
        let fast = self.rows.interior(obj.h) && self.cols.interior(obj.w);
        let chunks = out.chunks_exact_mut(cols);
        for ((orow, &iy), &wy) in chunks.zip(&self.rows.i0).zip(&self.rows.w) {
            if fast {
                // Interior: every corner is inside, checked once for the whole patch.
                let (ra, rb) = (obj.row(iy as usize), obj.row(iy as usize + 1));
                row_interior(orow, ra, rb, &self.cols, wy);
            } else {
                row_edge(orow, obj, iy, wy, &self.cols);
            }
        }
    }
}

#[inline(always)]
fn row_interior<T: Pixel>(out: &mut [T], ra: &[T], rb: &[T], cols: &AxisTable, wy: f32) {
    let (Some(&first), Some(&last)) = (cols.i0.first(), cols.i0.last()) else {
        return;
    };
    let (first, last) = (first as usize, last as usize);
    if cols.consecutive {
        // Consecutive columns (the usual case): plain slices, no gathers.
        let (Some(ra), Some(rb)) = (ra.get(first..last + 2), rb.get(first..last + 2)) else {
            return;
        };
        let pairs = ra.windows(2).zip(rb.windows(2));
        for ((o, &wx), (a, b)) in out.iter_mut().zip(&cols.w).zip(pairs) {
            *o = blend(weights(wx, wy), a[0], a[1], b[0], b[1]);
        }
    } else {
        // f32 rounding made a column index skip; gather per column.
        for ((o, &ix), &wx) in out.iter_mut().zip(&cols.i0).zip(&cols.w) {
            let ix = ix as usize;
            if let (Some(a), Some(b)) = (ra.get(ix..ix + 2), rb.get(ix..ix + 2)) {
                *o = blend(weights(wx, wy), a[0], a[1], b[0], b[1]);
            }
        }
    }
}

fn row_edge<T: Pixel>(out: &mut [T], obj: &Object<'_, T>, iy: i64, wy: f32, cols: &AxisTable) {
    let zero = T::ZERO;
    let row_at =
        |r: i64| -> Option<&[T]> { (r >= 0 && r < obj.h as i64).then(|| obj.row(r as usize)) };
    let (ra, rb) = (row_at(iy), row_at(iy.saturating_add(1)));
    let pick = |row: Option<&[T]>, c: i64| -> Option<T> {
        if c < 0 {
            return None;
        }
        row.and_then(|r| r.get(c as usize)).copied()
    };
    for ((o, &ix), &wx) in out.iter_mut().zip(&cols.i0).zip(&cols.w) {
        let w = weights(wx, wy);
        let ix1 = ix.saturating_add(1);
        // A corner outside the object contributes zero (as the reference's zero fill does).
        let corners = [pick(ra, ix), pick(ra, ix1), pick(rb, ix), pick(rb, ix1)];
        let [a0, a1, b0, b1] = corners.map(|v| v.unwrap_or(zero));
        let w = [0, 1, 2, 3].map(|k| if corners[k].is_some() { w[k] } else { 0.0 });
        *o = blend(w, a0, a1, b0, b1);
    }
}

/// Checks `positions` is a non-empty `(M, 2)` array of finite values.
pub(crate) fn check_positions(positions: &ArrayView2<'_, f64>) -> Result<()> {
    let (m, k) = positions.dim();
    if k != 2 {
        return Err(Error::invalid(
            "positions",
            "(M, 2) with columns x, y",
            format!("shape ({m}, {k})"),
        ));
    }
    if m == 0 {
        return Err(Error::invalid(
            "positions",
            "a non-empty (M, 2) array",
            "shape (0, 2)",
        ));
    }
    if let Some(bad) = positions.iter().find(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "positions",
            "finite",
            format!("a value of {bad}"),
        ));
    }
    Ok(())
}

/// The rows of a checked `(M, 2)` positions array as `[x, y]` pairs.
pub(crate) fn positions_list(positions: &ArrayView2<'_, f64>) -> Vec<[f64; 2]> {
    positions
        .rows()
        .into_iter()
        .map(|r| {
            let mut it = r.iter();
            [
                it.next().copied().unwrap_or(0.0),
                it.next().copied().unwrap_or(0.0),
            ]
        })
        .collect()
}

/// `m · per` as a checked element count.
pub(crate) fn checked_len(m: usize, per: usize) -> Result<usize> {
    m.checked_mul(per)
        .filter(|&len| len.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
        .ok_or_else(|| {
            Error::invalid(
                "positions",
                "few enough patterns for the output to fit in memory",
                format!("{m} patterns of {per} values"),
            )
        })
}

/// A vector of `len` copies of `value`, allocated fallibly: a size from the caller that
/// overflows or cannot be allocated is an error, never an abort or a capacity-overflow panic.
///
/// # Errors
/// [`Error::InvalidArgument`] (`name`) when the allocation fails.
pub(crate) fn filled<T: Copy>(len: usize, value: T, name: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::invalid(
            name,
            "small enough to allocate",
            format!("{len} values of {} bytes", std::mem::size_of::<T>()),
        )
    })?;
    v.resize(len, value);
    Ok(v)
}

/// Values whose all-zero bit pattern is a valid value (`0.0`, `0 + 0i`).
///
/// # Safety
/// Implement only for types where every field is a float or integer (no references,
/// no niches), so zeroed memory is a valid, initialised value.
pub(crate) unsafe trait Zeroable: Copy + Send + Sync {}
// SAFETY: plain IEEE floats; all-zero bits is +0.0.
unsafe impl Zeroable for f32 {}
// SAFETY: as above.
unsafe impl Zeroable for f64 {}
// SAFETY: `Complex<f32>` is `#[repr(C)] { re: f32, im: f32 }`.
unsafe impl Zeroable for Complex32 {}
// SAFETY: plain integers (detector readings, `runtime::Element`).
unsafe impl Zeroable for u8 {}
// SAFETY: as above.
unsafe impl Zeroable for u16 {}
// SAFETY: as above.
unsafe impl Zeroable for u32 {}
// SAFETY: as above (indices of the legacy generator's test hooks).
unsafe impl Zeroable for i64 {}

/// A zero-filled output buffer of `len` values, allocated without being written.
///
/// The pages are left untouched (`calloc`-style), so the workers that fill the buffer fault
/// them in, in parallel, instead of one thread zeroing it first; large buffers ask Linux for
/// transparent huge pages, as NumPy does for its arrays (4 KiB page faults otherwise cost more
/// than computing a 64 × 64 pattern). An allocation failure is an error, not an abort.
///
/// # Errors
/// [`Error::InvalidArgument`] (`name`) when the buffer's size overflows or cannot be allocated.
pub(crate) fn zeroed<T: Zeroable>(len: usize, name: &'static str) -> Result<Vec<T>> {
    let (ptr, len) = allocate::<T>(len, name, true)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: `ptr` comes from the global allocator with `Layout::array::<T>(len)`, exactly the
    // layout of a `Vec<T>` of capacity `len`, and all `len` values are initialised: the memory
    // is zeroed and zero bits are a valid `T` (`Zeroable`).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// An output buffer of `len` values that are not initialised, for a kernel that writes every
/// one of them: as [`zeroed`] (huge pages, errors instead of aborts) without the zero fill,
/// which costs a pass over the memory whenever the allocator reuses freed memory (`calloc`
/// must then clear it).
///
/// # Errors
/// As [`zeroed`].
pub(crate) fn uninit<T: Zeroable>(len: usize, name: &'static str) -> Result<Vec<MaybeUninit<T>>> {
    let (ptr, len) = allocate::<T>(len, name, false)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: as in `zeroed`; `MaybeUninit<T>` has `T`'s layout and needs no initialisation.
    Ok(unsafe { Vec::from_raw_parts(ptr.cast::<MaybeUninit<T>>(), len, len) })
}

/// `len` values of `T` from the global allocator (zero-filled if `zero`), with huge pages
/// advised: the pointer and `len`, or a dangling pointer and 0 for an empty buffer.
fn allocate<T>(len: usize, name: &'static str, zero: bool) -> Result<(*mut T, usize)> {
    let too_big = || {
        Error::invalid(
            name,
            "small enough to allocate",
            format!("{len} values of {} bytes", std::mem::size_of::<T>()),
        )
    };
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| too_big())?;
    if layout.size() == 0 {
        return Ok((std::ptr::NonNull::dangling().as_ptr(), 0));
    }
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe {
        if zero {
            std::alloc::alloc_zeroed(layout)
        } else {
            std::alloc::alloc(layout)
        }
    }
    .cast::<T>();
    if ptr.is_null() {
        return Err(too_big());
    }
    advise_huge_pages(ptr.cast::<u8>(), layout.size());
    Ok((ptr, len))
}

/// Asks the kernel to back the 2 MiB-aligned part of a large buffer with huge pages.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    use std::ffi::{c_int, c_void};
    const HUGE: usize = 2 << 20;
    const MADV_HUGEPAGE: c_int = 14;
    extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    if bytes < 2 * HUGE {
        return;
    }
    let start = ptr as usize;
    let offset = start.next_multiple_of(HUGE) - start;
    let len = (bytes - offset) / HUGE * HUGE;
    if len == 0 {
        return;
    }
    // SAFETY: the range lies inside an allocation this function's caller owns and has not
    // handed out; MADV_HUGEPAGE only changes how the kernel backs those pages, never their
    // contents or validity. The result is advisory and deliberately ignored.
    unsafe {
        madvise(ptr.add(offset).cast::<c_void>(), len, MADV_HUGEPAGE);
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise_huge_pages(_ptr: *mut u8, _bytes: usize) {}

/// Extracts one patch centred on `(x, y)` into `out`; the patch size is taken from `out`
/// (`rows × cols`, centre pixel `(rows/2, cols/2)`).
///
/// Infallible: an empty object gives zeros, a position beyond the `f32` range gives zeros.
pub fn extract_patch_into(
    object: &ArrayView2<'_, Complex32>,
    x: f64,
    y: f64,
    mut out: ArrayViewMut2<'_, Complex32>,
) {
    let (rows, cols) = out.dim();
    let cow = standard_object(object);
    let Ok(obj) = Object::new(&cow) else {
        out.fill(Complex32::new(0.0, 0.0));
        return;
    };
    let mut sampler = Sampler::default();
    if let Some(slice) = out.as_slice_mut() {
        sampler.sample(&obj, x, y, rows, cols, slice);
    } else {
        let mut buf = vec![Complex32::new(0.0, 0.0); rows * cols];
        sampler.sample(&obj, x, y, rows, cols, &mut buf);
        for (o, v) in out.iter_mut().zip(buf) {
            *o = v;
        }
    }
}

/// Extracts `M` patches of size `n` at `positions` (`(M, 2)`, columns `x`, `y`), in parallel.
///
/// # Errors
/// [`Error::InvalidArgument`] when `obj` is empty, `positions` is not a non-empty `(M, 2)`
/// array, `n` is zero or a coordinate is not finite.
pub fn extract_patches(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    n: usize,
) -> Result<Array3<Complex32>> {
    if n == 0 {
        return Err(Error::invalid("N", "at least 1", "0"));
    }
    check_positions(&positions)?;
    let cow = standard_object(&object);
    let obj = Object::new(&cow)?;
    let m = positions.nrows();
    let nn = checked_len(n, n)?;
    let out = zeroed::<Complex32>(checked_len(m, nn)?, "positions")?;
    let mut out =
        Array3::from_shape_vec((m, n, n), out).map_err(|e| Error::Unsupported(e.to_string()))?;
    sample_into(&obj, &positions, n, &mut out.view_mut())?;
    Ok(out)
}

/// [`extract_patches`] into a caller-provided C-contiguous `(M, N, N)` output (`N` taken from
/// it), for callers that split the positions into pieces.
///
/// # Errors
/// As [`extract_patches`]; also when `out` is not C-contiguous `(M, N, N)` with `N >= 1`.
pub fn extract_patches_into(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    mut out: ArrayViewMut3<'_, Complex32>,
) -> Result<()> {
    let (m, n, w) = out.dim();
    if n == 0 || n != w || m != positions.nrows() {
        return Err(Error::invalid(
            "out",
            format!("({}, N, N) with N >= 1", positions.nrows()),
            format!("{:?}", out.dim()),
        ));
    }
    check_positions(&positions)?;
    let cow = standard_object(&object);
    let obj = Object::new(&cow)?;
    sample_into(&obj, &positions, n, &mut out)
}

fn sample_into(
    obj: &Object<'_>,
    positions: &ArrayView2<'_, f64>,
    n: usize,
    out: &mut ArrayViewMut3<'_, Complex32>,
) -> Result<()> {
    let nn = checked_len(n, n)?;
    let out = out
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("out", "a C-contiguous array", "a strided array"))?;
    let pos = positions_list(positions);
    out.par_chunks_mut(nn).zip(pos.par_iter()).for_each_init(
        Sampler::default,
        |sampler, (patch, &[x, y])| {
            sampler.sample(obj, x, y, n, n, patch);
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2, Axis};

    fn c(re: f32) -> Complex32 {
        Complex32::new(re, 0.0)
    }

    fn delta(h: usize, w: usize, r: usize, col: usize) -> Array2<Complex32> {
        let mut o = Array2::from_elem((h, w), c(0.0));
        o[[r, col]] = c(1.0);
        o
    }

    fn ramp(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, col)| {
            Complex32::new((r * w + col) as f32 + 0.5, -(r as f32) + 0.25 * col as f32)
        })
    }

    fn one(obj: &Array2<Complex32>, x: f64, y: f64, n: usize) -> Array2<Complex32> {
        let p = ndarray::arr2(&[[x, y]]);
        extract_patches(obj.view(), p.view(), n)
            .unwrap()
            .index_axis_move(Axis(0), 0)
    }

    #[test]
    fn extract_into_pieces_equals_one_call() {
        let obj = ramp(30, 25);
        let pos = Array2::from_shape_fn((7, 2), |(i, k)| 3.3 + 2.1 * i as f64 + 0.7 * k as f64);
        let whole = extract_patches(obj.view(), pos.view(), 6).unwrap();
        let mut out = Array3::from_elem((7, 6, 6), c(-1.0));
        for (a, b) in [(0, 2), (2, 7)] {
            let (p, o) = (pos.slice(s![a..b, ..]), out.slice_mut(s![a..b, .., ..]));
            extract_patches_into(obj.view(), p, o).unwrap();
        }
        assert_eq!(out, whole);
        let mut wrong = Array3::from_elem((6, 6, 6), c(0.0));
        assert!(extract_patches_into(obj.view(), pos.view(), wrong.view_mut()).is_err());
    }

    #[test]
    fn delta_lands_at_centre() {
        let p = one(&delta(256, 256, 100, 150), 150.0, 100.0, 64);
        assert_eq!(p[[32, 32]], c(1.0));
        assert_eq!(p.iter().filter(|v| v.norm() != 0.0).count(), 1);
    }

    #[test]
    fn bilinear_weights_match_reference_example() {
        let p = one(&delta(256, 256, 100, 150), 150.25, 100.5, 64);
        let expect = [
            ((31, 31), 0.125),
            ((31, 32), 0.375),
            ((32, 31), 0.125),
            ((32, 32), 0.375),
        ];
        for ((r, col), w) in expect {
            assert_eq!(p[[r, col]], c(w), "at ({r}, {col})");
        }
        let total: f32 = p.iter().map(|v| v.re).sum();
        assert_eq!(total, 1.0);
        assert_eq!(p.iter().filter(|v| v.norm() != 0.0).count(), 4);
    }

    #[test]
    fn half_pixel_at_the_edges_of_a_ones_object() {
        let ones = Array2::from_elem((256, 256), c(1.0));
        let p = one(&ones, 0.5, 128.0, 64);
        // Column c samples object column c − 32 + 0.5: c = 31 straddles the left edge.
        assert_eq!(p[[32, 31]], c(0.5));
        assert_eq!(p[[32, 30]], c(0.0));
        assert_eq!(p[[32, 32]], c(1.0));
        let p = one(&ones, 255.5, 128.0, 64);
        assert_eq!(p[[32, 32]], c(0.5));
        assert_eq!(p[[32, 33]], c(0.0));
        assert_eq!(p[[32, 31]], c(1.0));
    }

    #[test]
    fn integer_positions_copy_exactly_and_zero_outside() {
        let (h, w) = (40, 30);
        let obj = ramp(h, w);
        for n in [1usize, 2, 7, 8, 17] {
            for (x, y) in [(0i64, 0i64), (5, 9), (29, 39), (-3, 12), (33, 41), (15, 20)] {
                let p = one(&obj, x as f64, y as f64, n);
                let half = (n / 2) as i64;
                for r in 0..n {
                    for col in 0..n {
                        let (orow, ocol) = (y + r as i64 - half, x + col as i64 - half);
                        let inside = (0..h as i64).contains(&orow) && (0..w as i64).contains(&ocol);
                        let want = if inside {
                            obj[[orow as usize, ocol as usize]]
                        } else {
                            c(0.0)
                        };
                        assert_eq!(p[[r, col]], want, "n={n} x={x} y={y} r={r} c={col}");
                    }
                }
            }
        }
    }

    /// The documented formula, pixel by pixel (same f32 operations, so bitwise equal).
    fn naive(obj: &Array2<Complex32>, x: f64, y: f64, n: usize) -> Array2<Complex32> {
        let (h, w) = obj.dim();
        let half = (n / 2) as i64;
        let at = |r: i64, col: i64| {
            let inside = (0..h as i64).contains(&r) && (0..w as i64).contains(&col);
            inside.then(|| obj[[r as usize, col as usize]])
        };
        Array2::from_shape_fn((n, n), |(r, col)| {
            let (sx, sy) = (col as f32 + x as f32, r as f32 + y as f32);
            let (fx, fy) = (sx.floor(), sy.floor());
            let (ix, iy) = (fx as i64 - half, fy as i64 - half);
            let wt = weights(sx - fx, sy - fy);
            let corners = [
                at(iy, ix),
                at(iy, ix + 1),
                at(iy + 1, ix),
                at(iy + 1, ix + 1),
            ];
            let v = corners.map(|v| v.unwrap_or(c(0.0)));
            let wt = [0, 1, 2, 3].map(|k| if corners[k].is_some() { wt[k] } else { 0.0 });
            blend(wt, v[0], v[1], v[2], v[3])
        })
    }

    #[test]
    fn all_paths_match_the_pixelwise_formula() {
        let obj = ramp(40, 300);
        let mut positions = vec![(255.99998f32 as f64, 20.0), (128.0 - 1e-5, 19.99999)];
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let v = (s & 0xffff) as f64 / 65536.0;
            positions.push((u * 320.0 - 10.0, v * 60.0 - 10.0));
        }
        let mut table = AxisTable::default();
        table.fill(16, 255.99998f32);
        assert!(
            !table.consecutive,
            "the skip case must exercise the gather path"
        );
        for (x, y) in positions {
            for n in [5usize, 16] {
                assert_eq!(
                    one(&obj, x, y, n),
                    naive(&obj, x, y, n),
                    "x={x} y={y} n={n}"
                );
            }
        }
    }

    #[test]
    fn far_outside_and_huge_positions_give_zeros() {
        let obj = ramp(16, 16);
        for (x, y) in [
            (1e6, 3.0),
            (-1e6, 3.0),
            (3.0, 1e39),
            (1e300, -1e300),
            (-40.5, 8.25),
        ] {
            let p = one(&obj, x, y, 8);
            assert!(p.iter().all(|v| *v == c(0.0)), "x={x} y={y}");
        }
    }

    #[test]
    fn interior_and_edge_paths_agree() {
        // The same sub-pixel patch read from an object and from the object embedded in a
        // larger canvas (interior path there, edge path here) must be identical. Dyadic
        // fractions keep the f32 coordinates exact under the +20 shift.
        let obj = ramp(20, 24);
        let mut big = Array2::from_elem((60, 64), c(0.0));
        big.slice_mut(s![20..40, 20..44]).assign(&obj);
        for (x, y) in [(0.25, 0.75), (23.5, 19.125), (11.75, 5.5), (-2.5, 3.125)] {
            let a = one(&obj, x, y, 9);
            let b = one(&big, x + 20.0, y + 20.0, 9);
            assert_eq!(a, b, "x={x} y={y}");
        }
    }

    #[test]
    fn transposing_pays_only_when_the_patterns_outweigh_the_object_enough() {
        // The cases measured: 1,024 patterns of 64² over a 512² object (copied) or a 2048²
        // one (not); the whole of a 16,384-pattern run over the 2048² one (copied).
        assert!(transpose_pays(512, 512, 1024, 64 * 64));
        assert!(!transpose_pays(2048, 2048, 1024, 64 * 64));
        assert!(transpose_pays(2048, 2048, 16_384, 64 * 64));
        assert!(!transpose_pays(2048, 2048, 16_383, 64 * 64));
        // No overflow, whatever the sizes.
        assert!(!transpose_pays(usize::MAX, usize::MAX, 1, 1));
        assert!(transpose_pays(1, 1, usize::MAX, usize::MAX));
    }

    #[test]
    fn zeroed_buffers() {
        assert!(filled(0, 1u8, "x").unwrap().is_empty());
        assert_eq!(filled(3, 7usize, "x").unwrap(), vec![7, 7, 7]);
        let e = filled(usize::MAX / 4, 0u64, "nsamples").unwrap_err();
        assert!(
            e.to_string().starts_with("nsamples must be small enough"),
            "{e}"
        );
        assert!(zeroed::<f32>(0, "x").unwrap().is_empty());
        let small = zeroed::<Complex32>(5, "x").unwrap();
        assert_eq!(small, vec![c(0.0); 5]);
        // Large enough for the huge-page advice; every value must read as zero and be writable.
        let mut big = zeroed::<f32>(3 << 20, "x").unwrap();
        assert_eq!(big.len(), 3 << 20);
        assert!(big.iter().all(|&v| v == 0.0));
        big.iter_mut().for_each(|v| *v = 1.0);
        assert_eq!(big.iter().sum::<f32>(), (3 << 20) as f32);
        assert!(matches!(
            zeroed::<f64>(usize::MAX / 2, "positions"),
            Err(Error::InvalidArgument {
                name: "positions",
                ..
            })
        ));
        assert!(checked_len(usize::MAX, 2).is_err());
    }

    #[test]
    fn patch_into_views_and_errors() {
        let obj = ramp(12, 12);
        let mut out = Array2::from_elem((6, 5), c(9.0));
        extract_patch_into(&obj.view(), 6.0, 6.0, out.view_mut());
        assert_eq!(out, obj.slice(s![3..9, 4..9]));
        let mut t = Array2::from_elem((5, 6), c(9.0));
        extract_patch_into(&obj.view(), 6.0, 6.0, t.view_mut().reversed_axes());
        assert_eq!(t.t(), obj.slice(s![3..9, 4..9]));
        let transposed = obj.t();
        let p = ndarray::arr2(&[[2.0, 3.0]]);
        let a = extract_patches(transposed, p.view(), 4).unwrap();
        assert_eq!(a.index_axis(Axis(0), 0), obj.t().slice(s![1..5, 0..4]));

        let bad = ndarray::arr2(&[[1.0, 2.0, 3.0]]);
        assert!(extract_patches(obj.view(), bad.view(), 4).is_err());
        let nan = ndarray::arr2(&[[f64::NAN, 2.0]]);
        assert!(extract_patches(obj.view(), nan.view(), 4).is_err());
        assert!(extract_patches(obj.view(), p.view(), 0).is_err());
        let empty = Array2::<f64>::zeros((0, 2));
        assert!(extract_patches(obj.view(), empty.view(), 4).is_err());
        let no_obj = Array2::<Complex32>::zeros((0, 5));
        assert!(extract_patches(no_obj.view(), p.view(), 4).is_err());
    }
}

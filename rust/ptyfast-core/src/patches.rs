//! Sub-pixel patch extraction with the reference's bilinear semantics.
//!
//! `patch[r, c] = bilinear(object, row = r + y − N/2, col = c + x − N/2)` with zero outside the
//! object. Coordinates are rounded to `f32` and combined in `f32` exactly as the reference's
//! translation does, so results agree with it to float32 rounding; integer positions give exact
//! pixel copies.

use ndarray::{Array3, ArrayView2, ArrayViewMut2};

use crate::{Complex32, Error, Result};

/// Extracts one `(N, N)` patch centred on `(x, y)` into `out` (N taken from `out`).
pub fn extract_patch_into(
    object: &ArrayView2<'_, Complex32>,
    x: f64,
    y: f64,
    out: ArrayViewMut2<'_, Complex32>,
) {
    let _ = (object, x, y, out);
}

/// Extracts `M` patches of size `n` at `positions` (`(M, 2)`, columns `x`, `y`).
///
/// # Errors
/// [`Error::InvalidArgument`] when `positions` is not `(M, 2)`, `n` is zero or a coordinate is
/// not finite.
pub fn extract_patches(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    n: usize,
) -> Result<Array3<Complex32>> {
    let _ = (object, positions, n);
    Err(Error::Unsupported("extract_patches is not implemented yet".into()))
}

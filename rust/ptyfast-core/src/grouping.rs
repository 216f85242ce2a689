//! PtychoPINN's neighbour grouping ("sample then group" and K-choose-C oversampling),
//! reproducing the reference's legacy-RNG draw sequence bit-exactly.

use ndarray::{Array2, Array4, ArrayView2, ArrayView3};

use crate::{Error, Result};

/// Standard grouping. Returns `(n_seeds, c)` point indices.
///
/// # Errors
/// [`Error::InvalidArgument`] as the reference rejects (fewer points than `c`, `k < c`).
pub fn sample_then_group(
    x: &[f64],
    y: &[f64],
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<&[usize]>,
) -> Result<Array2<i64>> {
    let _ = (x, y, nsamples, k, c, seed, seed_indices);
    Err(Error::Unsupported("sample_then_group is not implemented yet".into()))
}

/// K-choose-C oversampling. Returns `(nsamples, c)` point indices.
///
/// # Errors
/// [`Error::InvalidArgument`] as the reference rejects.
pub fn oversample_groups(
    x: &[f64],
    y: &[f64],
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<&[usize]>,
) -> Result<Array2<i64>> {
    let _ = (x, y, nsamples, k, c, seed, seed_indices);
    Err(Error::Unsupported("oversample_groups is not implemented yet".into()))
}

/// Gathers `diff3d[groups]` into `(B, N, N, C)`.
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range.
pub fn gather_groups(diff3d: ArrayView3<'_, f32>, groups: ArrayView2<'_, i64>) -> Result<Array4<f32>> {
    let _ = (diff3d, groups);
    Err(Error::Unsupported("gather_groups is not implemented yet".into()))
}

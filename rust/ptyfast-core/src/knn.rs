//! k-nearest-neighbour search over 2-D points (KD-tree), parallel over queries.
//!
//! Results are ordered by distance, ties broken by point index.

use ndarray::{Array2, ArrayView2};

use crate::{Error, Result};

/// The `k` nearest of `points` (`(M, 2)`) to each query (`(Q, 2)`): indices `(Q, k)` and
/// Euclidean distances `(Q, k)`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `k` is 0 or exceeds `M`, or a coordinate is not finite.
pub fn knn(
    points: ArrayView2<'_, f64>,
    queries: ArrayView2<'_, f64>,
    k: usize,
) -> Result<(Array2<i64>, Array2<f64>)> {
    let _ = (points, queries, k);
    Err(Error::Unsupported("knn is not implemented yet".into()))
}

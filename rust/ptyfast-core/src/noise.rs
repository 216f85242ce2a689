//! Exact Poisson observation, one random stream per pattern.
//!
//! Pattern `i` of a call with `seed` draws from the stream `(seed, first_index + i)`, so a
//! dataset simulated in one call, in chunks, or on any number of threads is bit-identical.

use ndarray::{Array1, Array3, ArrayView1, ArrayView3};

use crate::{Error, Result};

/// `sqrt(Poisson(A²))` for every amplitude, pattern `i` on stream `(seed, first_index + i)`.
///
/// # Errors
/// [`Error::InvalidArgument`] on negative or non-finite amplitudes.
pub fn poisson_amplitudes(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
) -> Result<Array3<f32>> {
    let _ = (amplitudes, seed, first_index);
    Err(Error::Unsupported("poisson_amplitudes is not implemented yet".into()))
}

/// Poisson counts for a vector of rates, all drawn from stream `(seed, stream)`.
///
/// # Errors
/// [`Error::InvalidArgument`] on negative or non-finite rates.
pub fn poisson_counts(rates: ArrayView1<'_, f64>, seed: u64, stream: u64) -> Result<Array1<f64>> {
    let _ = (rates, seed, stream);
    Err(Error::Unsupported("poisson_counts is not implemented yet".into()))
}

/// Replaces each amplitude of one pattern by `sqrt(Poisson(A²))`, drawing from stream
/// `(seed, index)`. Used by the fused simulation; infallible (amplitudes are finite and
/// non-negative by construction there).
pub fn observe_pattern(amplitudes: &mut [f32], seed: u64, index: u64) {
    let _ = (amplitudes, seed, index);
}

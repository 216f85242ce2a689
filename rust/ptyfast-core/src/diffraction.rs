//! Far-field diffraction: `A = |fftshift(FFT2(scale · probe · patch))| / N`.
//!
//! No shift is applied before the FFT, so the zero frequency lands at `[N/2, N/2]`; the `1/N`
//! factor makes the transform unitary (Parseval: `Σ A² = Σ |scale · probe · patch|²`). Any
//! `N ≥ 2` works (rustfft plans mixed radices and Bluestein for primes).

use ndarray::{Array3, ArrayView2, ArrayView3};

use crate::{Complex32, Error, Result};

/// Far-field amplitudes of `patches` (`(M, N, N)`) illuminated by `probe` (`(N, N)`), scaled.
///
/// # Errors
/// [`Error::InvalidArgument`] on an N mismatch, `N < 2` or a non-positive / non-finite `scale`.
pub fn diffract(
    patches: ArrayView3<'_, Complex32>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
) -> Result<Array3<f32>> {
    let _ = (patches, probe, scale);
    Err(Error::Unsupported("diffract is not implemented yet".into()))
}

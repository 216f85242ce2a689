//! The fused per-pattern simulation: position → patch → probe → FFT → optional noise, each
//! pattern in one pass into a preallocated output, in parallel over patterns.

use ndarray::{Array1, Array3, ArrayView2};

use crate::{Complex32, Error, Result};

/// Poisson noise settings: pattern `i` of the call draws from stream `(seed, first_index + i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noise {
    pub seed: u64,
    pub first_index: u64,
}

/// Output of [`simulate`].
#[derive(Debug, Clone)]
pub struct Simulation {
    /// `(M, N, N)` amplitudes (divided by `scale` when asked).
    pub amplitudes: Array3<f32>,
    /// `(M, N, N)` object patches before the probe, when asked.
    pub patches: Option<Array3<Complex32>>,
}

/// Per-pattern illuminated energy `Σ |probe · patch|²` (no FFT), in `f64`.
///
/// # Errors
/// [`Error::InvalidArgument`] on bad shapes or non-finite positions.
pub fn illuminated_energy(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    probe: ArrayView2<'_, Complex32>,
) -> Result<Array1<f64>> {
    let _ = (object, positions, probe);
    Err(Error::Unsupported("illuminated_energy is not implemented yet".into()))
}

/// Simulates `M` diffraction amplitudes of `scale · probe · patch`; with `noise`, observed as
/// `sqrt(Poisson(A²))`; with `divide_by_scale`, the result is divided by `scale` (the
/// reference's stored `X`).
///
/// # Errors
/// [`Error::InvalidArgument`] on bad shapes, non-finite positions or a non-positive scale.
pub fn simulate(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
    divide_by_scale: bool,
    return_patches: bool,
) -> Result<Simulation> {
    let _ = (object, positions, probe, scale, noise, divide_by_scale, return_patches);
    Err(Error::Unsupported("simulate is not implemented yet".into()))
}

//! # ptyfast-core
//!
//! The numerical kernels of ptyfast, free of any Python type: sub-pixel patch extraction,
//! far-field diffraction, exact Poisson observation, the fused per-pattern simulation, the
//! acquisition pipeline (incoherent probe modes and a detector model), k-nearest neighbour
//! search, NumPy's legacy random stream, the PtychoPINN neighbour grouping and the painting of
//! object textures.
//!
//! Conventions (stated once, referred to everywhere):
//! * Arrays are C-ordered. A stack of patterns is `(M, N, N)`; grouped data is `(B, N, N, C)`
//!   with channel `c` at grid position `(row, col) = (c / gridsize, c % gridsize)`.
//! * Coordinates are object pixels, `x` = column (second axis), `y` = row (first axis). A scan
//!   position `(x, y)` is sampled at pixel `(N/2, N/2)` of its patch (integer division).
//! * Far-field amplitude: `A = |fftshift(FFT2(probe · patch))| / N`, no shift before the FFT,
//!   zero frequency at `[N/2, N/2]`; unitary scaling, so `Σ A² = Σ |probe · patch|²`.
//! * Randomness: pattern `i` draws from its own stream derived from `(seed, i)`, so outputs are
//!   bit-identical for any thread count or chunking.
//! * Threads: callers run kernels inside [`install`], on a pool owned by the calling process
//!   and rebuilt after `fork` ([`runtime`]).

#![doc(html_root_url = "https://docs.rs/ptyfast-core")]

pub mod acquisition;
pub mod detector;
pub mod diffraction;
pub mod error;
pub mod grid;
pub mod grouping;
pub mod knn;
pub mod legacy_rng;
pub mod noise;
pub(crate) mod normal;
pub mod patches;
pub mod reduce;
pub mod runtime;
pub mod simd;
pub mod simulate;
pub mod textures;

pub use error::{Error, Result};
pub use num_complex::Complex32;
pub use runtime::{install, num_threads, pool};

//! Parallel passes over kernel outputs that a caller would otherwise make serially in NumPy:
//! the maximum of each row and an in-place division by a scalar, with NumPy's results bit for
//! bit (a maximum is exact, NaN propagating as `numpy.max` does; `f32` division is IEEE's).
//! Used by the grid path (`mk_simdata`'s `norm_Y_I` and its normalised patches).

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rayon::prelude::*;

use crate::{Error, Result};

/// Writes the maximum of each row of `a` (`(R, L)`, `L ≥ 1`) into `out` (`(R,)`): NaN when a
/// row holds one, as `numpy.max(a, axis=1)`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `a` has no columns, `out` is not `(R,)` or either is strided.
pub fn row_max_into(a: ArrayView2<'_, f32>, mut out: ArrayViewMut1<'_, f32>) -> Result<()> {
    let (r, l) = a.dim();
    if l == 0 || out.len() != r {
        return Err(Error::invalid(
            "a",
            format!(
                "(R, L) rows with L >= 1 and an output of R = {} values",
                out.len()
            ),
            format!("({r}, {l})"),
        ));
    }
    let src = a
        .as_slice()
        .ok_or_else(|| Error::invalid("a", "C-contiguous", "a strided array"))?;
    let dst = out
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("out", "C-contiguous", "a strided array"))?;
    dst.par_iter_mut()
        .zip(src.par_chunks(l))
        .for_each(|(m, row)| *m = max_propagating_nan(row));
    Ok(())
}

crate::simd::multiversion! {
    /// The maximum of `row` (`-inf` when empty), or its first NaN when it holds one: what a
    /// left-to-right fold keeping the first of equal values gives, but over 16 lanes (no
    /// dependency chain, vectorised). A maximum is exact, so the lanes change nothing but
    /// which zero a row of `+0.0` and `-0.0` reports as its maximum (their mean, `norm_Y_I`,
    /// is the same).
    pub(crate) fn max_propagating_nan(row: &[f32]) -> f32 {
        const LANES: usize = 16;
        let mut acc = [f32::NEG_INFINITY; LANES];
        let mut nan = [false; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for ((m, bad), &v) in acc.iter_mut().zip(nan.iter_mut()).zip(c) {
                *m = if v > *m { v } else { *m };
                *bad |= v.is_nan();
            }
        }
        if nan.iter().any(|&b| b) || tail.iter().any(|v| v.is_nan()) {
            return row.iter().copied().find(|v| v.is_nan()).unwrap_or(f32::NAN);
        }
        tail.iter()
            .chain(acc.iter())
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
    }
}

/// `a /= d` element-wise, in parallel (the `f32` quotient NumPy's `a /= np.float32(d)` gives).
///
/// # Errors
/// [`Error::InvalidArgument`] when `a` is strided.
pub fn divide_in_place(mut a: ArrayViewMut2<'_, f32>, d: f32) -> Result<()> {
    let data = a
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("a", "C-contiguous", "a strided array"))?;
    const CHUNK: usize = 1 << 14;
    data.par_chunks_mut(CHUNK).for_each(|c| {
        for v in c {
            *v /= d;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    #[test]
    fn row_max_and_division_match_naive_loops() {
        let a = Array2::from_shape_fn((37, 53), |(i, j)| ((i * 53 + j) as f32 * 0.37).sin());
        let mut m = Array1::<f32>::zeros(37);
        row_max_into(a.view(), m.view_mut()).unwrap();
        for (i, row) in a.rows().into_iter().enumerate() {
            let naive = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(m[i].to_bits(), naive.to_bits());
        }
        let mut b = a.clone();
        divide_in_place(b.view_mut(), 0.3).unwrap();
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!((x / 0.3f32).to_bits(), y.to_bits());
        }
    }

    /// The fold `row_max` made before it was vectorised: left to right, NaN propagating.
    fn naive_max(row: &[f32]) -> f32 {
        row.iter().fold(f32::NEG_INFINITY, |m, &v| {
            if m.is_nan() {
                m
            } else if v > m || v.is_nan() {
                v
            } else {
                m
            }
        })
    }

    #[test]
    fn lanes_agree_with_the_naive_fold_at_every_length_with_nans_and_infinities() {
        let special = [f32::INFINITY, f32::NEG_INFINITY, -7.5, 1e30, -1e-30];
        for len in [1usize, 2, 15, 16, 17, 31, 33, 100, 257] {
            let base: Vec<f32> = (0..len)
                .map(|i| ((i * 37) as f32 * 0.71).sin() * 9.0)
                .collect();
            assert_eq!(
                max_propagating_nan(&base).to_bits(),
                naive_max(&base).to_bits()
            );
            for (k, &sp) in special.iter().enumerate() {
                let mut r = base.clone();
                r[(k * 13) % len] = sp;
                assert_eq!(max_propagating_nan(&r).to_bits(), naive_max(&r).to_bits());
            }
            for at in [0, len / 2, len - 1] {
                let mut r = base.clone();
                r[at] = f32::from_bits(0x7fc0_1234); // a NaN with a payload: the first is kept
                r[len - 1 - at] = f32::NAN;
                assert_eq!(max_propagating_nan(&r).to_bits(), naive_max(&r).to_bits());
            }
        }
        assert_eq!(max_propagating_nan(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn nan_propagates_and_bad_shapes_are_errors() {
        assert!(max_propagating_nan(&[1.0, f32::NAN, 3.0]).is_nan());
        assert!(max_propagating_nan(&[f32::NAN, 5.0]).is_nan());
        assert_eq!(max_propagating_nan(&[-2.0, -1.0]), -1.0);
        let a = Array2::<f32>::zeros((3, 0));
        let mut m = Array1::<f32>::zeros(3);
        assert!(row_max_into(a.view(), m.view_mut()).is_err());
        let a = Array2::<f32>::zeros((3, 2));
        let mut m = Array1::<f32>::zeros(2);
        assert!(row_max_into(a.view(), m.view_mut()).is_err());
        let mut t = Array2::<f32>::zeros((4, 4));
        assert!(divide_in_place(t.view_mut().reversed_axes(), 2.0).is_err());
    }
}

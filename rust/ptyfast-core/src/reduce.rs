//! Reductions the kernels share: the maximum of a slice with NumPy's result bit for bit (a
//! maximum is exact, NaN propagating as `numpy.max` does), vectorised. Used by the grid path
//! (each group's largest amplitude, `mk_simdata`'s `norm_Y_I`).

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fold a row maximum made before it was vectorised: left to right, NaN propagating.
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
    fn nan_propagates() {
        assert!(max_propagating_nan(&[1.0, f32::NAN, 3.0]).is_nan());
        assert!(max_propagating_nan(&[f32::NAN, 5.0]).is_nan());
        assert_eq!(max_propagating_nan(&[-2.0, -1.0]), -1.0);
    }
}

//! Cumulative-probability tables of the Poisson rates `0, 1, …, 31` and `0, 1/8, …, 7/8`,
//! inverted with guide tables (see [`super::poisson`] for how a rate below 32 is split over
//! them).

use std::sync::OnceLock;

use super::poisson::ln_pmf;

/// Rates below this are sampled from the tables (integer rows `0 … TABLE_MAX_RATE − 1`).
pub const TABLE_MAX_RATE: f64 = 32.0;
/// Fine rows hold rates `j / FINE_STEPS`, `j = 1 … FINE_STEPS − 1`.
pub const FINE_STEPS: usize = 8;

const COARSE_ROWS: usize = TABLE_MAX_RATE as usize;
const GUIDE: usize = 64;
/// A row ends where the next probability drops below this (and past the mode): the mass left
/// out is ~1e-22, far below the 2^-53 resolution of a uniform.
const TAIL_CUTOFF: f64 = 1e-22;

/// All rows, flattened.
pub struct Tables {
    /// Per row: `F(0), F(1), …, F(K)` then a sentinel `2.0` that every uniform lies below.
    cdf: Vec<f64>,
    /// Per row: the index in `cdf` of `k = 0`.
    start: Vec<usize>,
    /// Per row, `GUIDE` entries: for cell `c`, the first index in `cdf` with `F > c / GUIDE`.
    guide: Vec<usize>,
}

impl Tables {
    fn build() -> Self {
        let mut t = Tables {
            cdf: Vec::new(),
            start: Vec::new(),
            guide: Vec::new(),
        };
        for n in 0..COARSE_ROWS {
            t.push_row(n as f64);
        }
        for j in 0..FINE_STEPS {
            t.push_row(j as f64 / FINE_STEPS as f64);
        }
        t
    }

    fn push_row(&mut self, lam: f64) {
        let start = self.cdf.len();
        self.start.push(start);
        if lam == 0.0 {
            self.cdf.extend([1.0, 2.0]);
            self.guide.extend([start; GUIDE]);
            return;
        }
        let mut pmf = Vec::new();
        let mut k = 0.0f64;
        loop {
            let p = ln_pmf(k, lam, k - lam).exp();
            pmf.push(p);
            if k > lam && p < TAIL_CUTOFF {
                break;
            }
            k += 1.0;
        }
        // Neumaier-compensated running sums, normalised by the compensated total so that the
        // few-ulp relative errors of the probabilities do not leave a gap below 1 at the end.
        let sums = compensated_cumsum(&pmf);
        let total = sums.last().copied().unwrap_or(1.0);
        self.cdf.extend(sums.iter().map(|f| f / total));
        self.cdf.push(2.0);
        let row = &self.cdf[start..];
        let mut i = 0;
        for c in 0..GUIDE {
            let threshold = c as f64 / GUIDE as f64;
            while row[i] <= threshold {
                i += 1;
            }
            self.guide.push(start + i);
        }
    }

    /// `min{k : u < F(k)}` in row `row` for `u ∈ [0, 1)`.
    #[inline(always)]
    fn invert(&self, row: usize, u: f64) -> f64 {
        let cell = (u * GUIDE as f64) as usize;
        let mut i = self.guide.get(row * GUIDE + cell).copied().unwrap_or(0);
        while let Some(&f) = self.cdf.get(i) {
            if u < f {
                break;
            }
            i += 1;
        }
        (i - self.start.get(row).copied().unwrap_or(0)) as f64
    }

    /// Poisson(`n`) for an integer `0 ≤ n < TABLE_MAX_RATE`.
    #[inline(always)]
    pub fn coarse(&self, n: u32, u: f64) -> f64 {
        self.invert(n as usize, u)
    }

    /// Poisson(`j / FINE_STEPS`) for `0 ≤ j < FINE_STEPS`.
    #[inline(always)]
    pub fn fine(&self, j: u32, u: f64) -> f64 {
        self.invert(COARSE_ROWS + j as usize, u)
    }
}

/// Running sums `p₀, p₀ + p₁, …`, each accurate to about one rounding.
fn compensated_cumsum(p: &[f64]) -> Vec<f64> {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    p.iter()
        .map(|&x| {
            let t = sum + x;
            comp += if sum.abs() >= x.abs() {
                (sum - t) + x
            } else {
                (x - t) + sum
            };
            sum = t;
            sum + comp
        })
        .collect()
}

/// The tables, built on first use (~50 µs; ~25 kB).
#[inline(always)]
pub fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cumulative_distributions() {
        let t = tables();
        for (r, &s) in t.start.iter().enumerate() {
            let end = t.start.get(r + 1).copied().unwrap_or(t.cdf.len());
            let row = &t.cdf[s..end];
            assert_eq!(row.last(), Some(&2.0));
            let body = &row[..row.len() - 1];
            assert!(body.windows(2).all(|w| w[0] <= w[1]));
            let last = body[body.len() - 1];
            assert_eq!(last, 1.0, "row {r}");
        }
    }

    #[test]
    fn inversion_matches_linear_search() {
        let t = tables();
        let row = &t.cdf[t.start[7]..];
        for i in 0..=4096 {
            let u = (i as f64 / 4096.0).min(1.0 - f64::EPSILON / 2.0);
            let want = row.iter().position(|&f| u < f).unwrap_or(0) as f64;
            assert_eq!(t.coarse(7, u), want, "u={u}");
        }
        // Exactly at a cumulative value u = F(k) the answer is k + 1.
        let f2 = row[2];
        assert_eq!(t.coarse(7, f2), 3.0);
    }

    #[test]
    fn zero_rows_give_zero() {
        let t = tables();
        for u in [0.0, 0.5, 1.0 - f64::EPSILON / 2.0] {
            assert_eq!(t.coarse(0, u), 0.0);
            assert_eq!(t.fine(0, u), 0.0);
        }
    }

    #[test]
    fn first_entries_are_exact() {
        let t = tables();
        // Normalisation moves the first entry by at most a few ulp.
        let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON * b;
        assert!(close(t.cdf[t.start[1]], (-1.0f64).exp()));
        let fine = t.start[COARSE_ROWS + 4]; // λ = 4/8
        assert!(close(t.cdf[fine], (-0.5f64).exp()));
    }
}

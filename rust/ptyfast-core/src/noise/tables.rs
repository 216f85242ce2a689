//! Cumulative-probability tables of the Poisson rates `m/8`, `m = 0 … 255`, inverted through
//! guide tables without data-dependent branches in the common case (see [`super::poisson`] for
//! how a rate below 32 is split over them).

use std::sync::OnceLock;

use super::poisson::ln_pmf;

/// Rates below this are sampled from the tables.
pub const TABLE_MAX_RATE: f64 = 32.0;
/// Table rates are the multiples of `1 / STEPS` below [`TABLE_MAX_RATE`].
pub const STEPS: usize = 8;

const ROWS: usize = TABLE_MAX_RATE as usize * STEPS;
/// Guide cells per row.
const GUIDE: usize = 64;
/// Cumulative values compared without branching after the guide lookup; a uniform beyond them
/// (~2 % of draws, mostly in the first and last cells, where the tails pack many values) falls
/// back to a scan.
const WINDOW: usize = 4;
/// A row ends where the next probability drops below this (and past the mode): the mass left
/// out is ~1e-22, far below the 2^-53 resolution of a uniform.
const TAIL_CUTOFF: f64 = 1e-22;

/// All rows, flattened (~180 kB in all: L2-resident).
pub struct Tables {
    /// Per row: `F(0), F(1), …, F(K) = 1` then `WINDOW` sentinels `2.0`, above every uniform.
    cdf: Vec<f64>,
    /// Per row: the index in `cdf` of `F(0)`.
    start: Vec<usize>,
    /// Per row, `GUIDE` entries: for cell `c`, the least `k` with `F(k) > c / GUIDE`.
    guide: Vec<u16>,
}

impl Tables {
    fn build() -> Self {
        let mut t = Tables {
            cdf: Vec::new(),
            start: Vec::with_capacity(ROWS),
            guide: Vec::with_capacity(ROWS * GUIDE),
        };
        for m in 0..ROWS {
            t.push_row(m as f64 / STEPS as f64);
        }
        t
    }

    fn push_row(&mut self, lam: f64) {
        let start = self.cdf.len();
        self.start.push(start);
        if lam == 0.0 {
            self.cdf.push(1.0);
        } else {
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
            // Compensated running sums, normalised by the compensated total so that the
            // few-ulp relative errors of the probabilities leave no gap below 1 at the end.
            let sums = compensated_cumsum(&pmf);
            let total = sums.last().copied().unwrap_or(1.0);
            self.cdf.extend(sums.iter().map(|f| f / total));
        }
        self.cdf.extend([2.0; WINDOW]);
        let row = &self.cdf[start..];
        let mut k = 0usize;
        for c in 0..GUIDE {
            let threshold = c as f64 / GUIDE as f64;
            while row[k] <= threshold {
                k += 1;
            }
            self.guide.push(k as u16);
        }
    }

    /// `min{k : u < F(k)}` in row `m` (rate `m / STEPS`) for `u ∈ [0, 1)`.
    #[inline(always)]
    pub fn sample(&self, m: usize, u: f64) -> f64 {
        let cell = (u * GUIDE as f64) as usize;
        let g = self.guide.get(m * GUIDE + cell).copied().unwrap_or(0) as usize;
        let i = self.start.get(m).copied().unwrap_or(0) + g;
        let Some(w) = self.cdf.get(i..i + WINDOW) else {
            return f64::NAN; // unreachable: every row ends with WINDOW sentinels
        };
        let above = w.iter().map(|&f| usize::from(u >= f)).sum::<usize>();
        if above < WINDOW {
            (g + above) as f64
        } else {
            self.scan(i + WINDOW, u) - self.start.get(m).copied().unwrap_or(0) as f64
        }
    }

    /// The index of the first `F > u` from `i` on, as `f64`.
    #[cold]
    #[inline(never)]
    fn scan(&self, mut i: usize, u: f64) -> f64 {
        while let Some(&f) = self.cdf.get(i) {
            if u < f {
                break;
            }
            i += 1;
        }
        i as f64
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

/// The tables, built on first use (~0.5 ms).
#[inline(always)]
pub fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: &Tables, m: usize) -> &[f64] {
        let end = t.start.get(m + 1).copied().unwrap_or(t.cdf.len());
        &t.cdf[t.start[m]..end]
    }

    #[test]
    fn rows_are_cumulative_distributions() {
        let t = tables();
        assert_eq!(t.start.len(), ROWS);
        assert!(
            t.cdf.len() * 8 + t.guide.len() * 2 < 200_000,
            "{}",
            t.cdf.len()
        );
        for m in 0..ROWS {
            let r = row(t, m);
            let (body, tail) = r.split_at(r.len() - WINDOW);
            assert!(tail.iter().all(|&f| f == 2.0));
            assert!(body.windows(2).all(|w| w[0] <= w[1]), "row {m}");
            assert_eq!(body.last(), Some(&1.0), "row {m}");
        }
    }

    #[test]
    fn inversion_matches_linear_search() {
        let t = tables();
        for m in [0, 1, 5, 8, 56, 100, 255] {
            let r = row(t, m);
            let mut us: Vec<f64> = (0..=8192).map(|i| i as f64 / 8192.0).collect();
            us.extend(r.iter().filter(|&&f| f < 1.0).copied()); // exactly at F(k): k + 1
            us.push(1.0 - f64::EPSILON / 2.0);
            for u in us.into_iter().filter(|&u| u < 1.0) {
                let want = r.iter().position(|&f| u < f).unwrap_or(usize::MAX) as f64;
                assert_eq!(t.sample(m, u), want, "m={m} u={u}");
            }
        }
    }

    #[test]
    fn zero_row_gives_zero() {
        let t = tables();
        for u in [0.0, 0.5, 1.0 - f64::EPSILON / 2.0] {
            assert_eq!(t.sample(0, u), 0.0);
        }
    }

    #[test]
    fn first_entries_match_exp() {
        let t = tables();
        // Normalisation moves an entry by at most a few ulp.
        let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON * b;
        assert!(close(row(t, 8)[0], (-1.0f64).exp()));
        assert!(close(row(t, 4)[0], (-0.5f64).exp()));
        assert!(close(row(t, 255)[0], (-31.875f64).exp()));
    }
}

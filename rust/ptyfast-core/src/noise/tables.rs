//! Cumulative-probability tables of the Poisson rates `m/8`, `m = 0 … 255`, inverted through
//! guide tables without data-dependent branches in the common case (see the module
//! [`super::poisson`](mod@super::poisson) for how a rate below 32 is split over them).

use std::sync::OnceLock;

use super::poisson::{floor_small, ln_pmf};

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

/// Capacity of the cumulative values (~21,000 are used): a power of two for the window start,
/// plus the window, so that a masked start and its window are always in bounds.
const CDF_CAP: usize = (1 << 15) + WINDOW;

/// All rows (~230 kB touched: L2-resident). Indices are reduced modulo the fixed array sizes,
/// so the hot loops carry no bounds checks and vectorise (gathers); callers pass rows
/// `< ROWS`.
pub struct Tables {
    /// Per row: `F(0), F(1), …, F(K) = 1` then `WINDOW` sentinels `2.0`, above every uniform.
    cdf: Box<[f64; CDF_CAP]>,
    /// Per row: the index in `cdf` of `F(0)`.
    start: [u32; ROWS],
    /// Per row, `GUIDE` entries: for cell `c`, `g << 16 | (start + g)` where `g` is the least
    /// `k` with `F(k) > c / GUIDE` (one load gives the count and where to compare).
    guide: Box<[[u32; GUIDE]; ROWS]>,
}

impl Tables {
    fn build() -> Self {
        let mut cdf = Vec::new();
        let mut t = Tables {
            cdf: Box::new([2.0; CDF_CAP]),
            start: [0; ROWS],
            guide: Box::new([[0; GUIDE]; ROWS]),
        };
        for m in 0..ROWS {
            t.push_row(m, &mut cdf);
        }
        for (d, &f) in t.cdf.iter_mut().zip(&cdf) {
            *d = f;
        }
        t
    }

    /// Appends row `m` to `cdf` and fills its start and guide entries.
    fn push_row(&mut self, m: usize, cdf: &mut Vec<f64>) {
        let lam = m as f64 / STEPS as f64;
        let start = cdf.len();
        if let Some(s) = self.start.get_mut(m) {
            *s = start as u32;
        }
        if lam == 0.0 {
            cdf.push(1.0);
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
            cdf.extend(sums.iter().map(|f| f / total));
        }
        cdf.extend([2.0; WINDOW]);
        let row = &cdf[start..];
        let mut k = 0usize;
        for c in 0..GUIDE {
            let threshold = c as f64 / GUIDE as f64;
            while row[k] <= threshold {
                k += 1;
            }
            if let Some(g) = self.guide.get_mut(m).and_then(|r| r.get_mut(c)) {
                *g = ((k as u32) << 16) | (start + k) as u32;
            }
        }
    }

    /// `min{k : u < F(k)}` in row `m` (rate `m / STEPS`) for `u ∈ [0, 1)`.
    #[inline(always)]
    pub fn sample(&self, m: usize, u: f64) -> f64 {
        let (k, found) = self.sample_window(m, u);
        if found {
            k
        } else {
            self.scan(m, k as usize, u)
        }
    }

    /// [`Tables::sample`] without its rare scan: `(k, true)` when the answer lies in the
    /// window after the guide cell (~98 % of uniforms), else `(k₀, false)` with the answer
    /// known to be at least `k₀`. No branch.
    #[inline(always)]
    pub fn sample_window(&self, m: usize, u: f64) -> (f64, bool) {
        let (k, found) = self.window(Self::key(m, u), u);
        (f64::from(k), found)
    }

    /// The guide cell of row `m` (`< ROWS`) for `u ∈ [0, 1)`, as a key for [`Tables::window`].
    #[inline(always)]
    pub fn key(m: usize, u: f64) -> u32 {
        let cell = floor_small(u * GUIDE as f64) % GUIDE as u32;
        ((m as u32 % ROWS as u32) << GUIDE.trailing_zeros()) | cell
    }

    /// [`Tables::sample_window`] from the [`Tables::key`] of `(m, u)`: `(k, found)` as integers.
    #[inline(always)]
    pub fn window(&self, key: u32, u: f64) -> (u32, bool) {
        let e = self.guide.as_flattened()[key as usize % (ROWS * GUIDE)];
        let (g, i) = (e >> 16, e as usize % (CDF_CAP - WINDOW));
        let w = &self.cdf[i..i + WINDOW];
        // `u ≥ f` as integers: non-negative doubles order as their bits, and the sign bit of
        // `bits(f) − bits(u) − 1` says `f ≤ u` (plain integer work, no mask registers).
        let ub = u.to_bits();
        let above = w
            .iter()
            .map(|f| f.to_bits().wrapping_sub(ub).wrapping_sub(1) >> 63)
            .sum::<u64>() as u32;
        (g + above, above < WINDOW as u32)
    }

    /// `min{k : u < F(k)}` in row `m` by a linear scan from `k₀` on (`F(k) ≤ u` below `k₀`).
    #[cold]
    #[inline(never)]
    pub fn scan(&self, m: usize, k0: usize, u: f64) -> f64 {
        let start = self.start[m % ROWS] as usize + k0;
        let rest = self.cdf.get(start..).unwrap_or_default();
        (k0 + rest.iter().position(|&f| u < f).unwrap_or(rest.len())) as f64
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
        let used = t
            .cdf
            .iter()
            .rposition(|&f| f != 2.0)
            .map_or(0, |i| i + 1 + WINDOW);
        let end = t.start.get(m + 1).map_or(used, |&e| e as usize);
        &t.cdf[t.start[m] as usize..end]
    }

    #[test]
    fn rows_are_cumulative_distributions() {
        let t = tables();
        let used = t
            .cdf
            .iter()
            .rposition(|&f| f != 2.0)
            .map_or(0, |i| i + 1 + WINDOW);
        assert!(used <= CDF_CAP - WINDOW, "{used}");
        assert!(used * 8 + ROWS * GUIDE * 4 < 250_000, "{used}");
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

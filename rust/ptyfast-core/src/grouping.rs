//! PtychoPINN's neighbour grouping ("sample then group" and K-choose-C oversampling),
//! reproducing the reference's legacy-RNG draw sequence bit-exactly.
//!
//! The reference draws from NumPy's legacy global generator; [`LegacyRandomState`] replays that
//! stream. The draws never depend on neighbour *values*, only on counts (the number of
//! candidates per seed is the same for every seed), so the sequential part is a cheap walk over
//! the stream and the neighbour queries and gathers run in parallel. The output is independent
//! of the thread count.
//!
//! Neighbours come from [`KnnIndex`]: ordered by distance, ties by index. Where distances are
//! distinct this equals `scipy.spatial.cKDTree.query`, which the reference uses; for exactly
//! tied distances (for example a perfect raster, or duplicate positions) the reference's order
//! is scipy's traversal order and the chosen group members may differ.

use std::borrow::Cow;

use ndarray::{Array2, Array4, ArrayView2, ArrayView3, ArrayViewMut4};
use rayon::prelude::*;

use crate::knn::KnnIndex;
use crate::legacy_rng::LegacyRandomState;
use crate::patches::{filled, zeroed, Zeroable};
use crate::{Complex32, Error, Result};

fn check_xy(x: &[f64], y: &[f64]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::invalid(
            "ycoords",
            format!("as long as xcoords ({})", x.len()),
            y.len().to_string(),
        ));
    }
    if let Some(i) = (0..x.len()).find(|&i| !(x[i].is_finite() && y[i].is_finite())) {
        return Err(Error::invalid(
            "xcoords, ycoords",
            "finite",
            format!("({}, {}) at index {i}", x[i], y[i]),
        ));
    }
    Ok(())
}

fn check_sizes(n: usize, k: usize, c: usize) -> Result<()> {
    if c == 0 {
        return Err(Error::invalid("C", ">= 1", "0"));
    }
    if n < c {
        return Err(Error::invalid(
            "xcoords",
            format!("at least C = {c} points long (one group needs C distinct points)"),
            format!("{n} points"),
        ));
    }
    if k < c {
        return Err(Error::invalid(
            "K",
            format!(">= C = {c} (a group is C of the K nearest neighbours)"),
            k.to_string(),
        ));
    }
    Ok(())
}

fn check_seed_indices(si: &[usize], n: usize) -> Result<()> {
    if let Some(&bad) = si.iter().find(|&&i| i >= n) {
        return Err(Error::invalid(
            "seed_indices",
            format!("indices in [0, {n})"),
            bad.to_string(),
        ));
    }
    Ok(())
}

fn to_i64(v: usize) -> i64 {
    // Indices are < 2**32 (checked by KnnIndex) or < the length of a slice, far below i64::MAX.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn column(v: &[usize]) -> Result<Array2<i64>> {
    let mut out = filled(v.len(), 0i64, "nsamples")?;
    for (o, &i) in out.iter_mut().zip(v) {
        *o = to_i64(i);
    }
    Array2::from_shape_vec((v.len(), 1), out).map_err(|e| Error::Unsupported(e.to_string()))
}

/// `rows · c` as a checked element count of an output named after `nsamples`.
fn group_len(rows: usize, c: usize) -> Result<usize> {
    rows.checked_mul(c).ok_or_else(|| {
        Error::invalid(
            "nsamples",
            format!("small enough for ({rows}, {c}) group indices to be addressable"),
            rows.to_string(),
        )
    })
}

/// How the reference turns a seed's `k = min(K+1, n)` query hits into `available`, the
/// population its group is drawn from (distance order):
///
/// * standard path: more than `K` hits → hits `[1, K+1)` (self dropped), else all hits;
/// * oversampling path: more than `K` hits → `[1, K+1)`, else all but the first (unless only
///   one hit).
///
/// Either way, fewer than `c` neighbours → `[seed] + neighbours`.
struct Candidates {
    kq: usize,
    k: usize,
    c: usize,
    oversampling: bool,
}

impl Candidates {
    fn new(n: usize, k: usize, c: usize, oversampling: bool) -> Self {
        Self {
            kq: k.saturating_add(1).min(n),
            k,
            c,
            oversampling,
        }
    }

    /// Number of neighbours kept after dropping self.
    fn n_neighbours(&self) -> usize {
        if self.kq > self.k {
            self.k
        } else if self.oversampling && self.kq > 1 {
            self.kq - 1
        } else {
            self.kq
        }
    }

    /// Length of `available`, the population the group is drawn from.
    fn len(&self) -> usize {
        let nb = self.n_neighbours();
        if nb < self.c {
            nb + 1
        } else {
            nb.min(self.k)
        }
    }

    /// Candidate `j` (`j < len()`) of `seed`, given its `kq` query hits in distance order.
    fn candidate(&self, seed: usize, hits: &[(f64, u32)], j: usize) -> usize {
        let nb = self.n_neighbours();
        let skip = hits.len().saturating_sub(nb);
        let hit = |t: usize| hits.get(t).map_or(seed, |h| h.1 as usize);
        if nb < self.c {
            if j == 0 {
                seed
            } else {
                hit(skip + j - 1)
            }
        } else {
            hit(skip + j)
        }
    }
}

/// Standard grouping ("sample then group", the reference's `_generate_groups_efficiently`).
/// Returns `(n_seeds, c)` point indices.
///
/// * Seeds: with `seed_indices`, its first `min(len, n)` entries and the stream seeded with 0
///   (the reference forces `np.random.seed(0)`; `seed` is ignored). Otherwise, with
///   `m = min(nsamples, n)`: `choice(n, m, replace=False)` when `m < n`, else `0..n` with no
///   draw.
/// * `c == 1`: the seeds themselves, no neighbour search.
/// * `c > 1`: per seed, in seed order, the `K` nearest neighbours excluding the seed itself
///   (all points when `n ≤ K`), then `choice(available, c, replace=len(available) < c)`.
///
/// # Errors
/// [`Error::InvalidArgument`] as the reference rejects: `n < c`, `k < c`; also `c == 0`,
/// mismatched or non-finite coordinates and out-of-range `seed_indices`.
pub fn sample_then_group(
    x: &[f64],
    y: &[f64],
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<&[usize]>,
) -> Result<Array2<i64>> {
    check_xy(x, y)?;
    let n = x.len();
    check_sizes(n, k, c)?;
    let (seeds, mut rng) = match seed_indices {
        Some(si) => {
            check_seed_indices(si, n)?;
            (si[..si.len().min(n)].to_vec(), LegacyRandomState::new(0))
        }
        None => {
            let mut rng = LegacyRandomState::new(seed);
            let m = nsamples.min(n);
            let seeds = if m < n {
                rng.choice(n, m, false)?
            } else {
                (0..n).collect()
            };
            (seeds, rng)
        }
    };
    if c == 1 {
        return column(&seeds);
    }
    let index = KnnIndex::from_xy(x, y)?;
    let cand = Candidates::new(n, k, c, false);
    let len = cand.len();
    let replace = len < c;

    // The sequential part: which positions of `available` each seed draws.
    let mut picks = filled(group_len(seeds.len(), c)?, 0usize, "nsamples")?;
    let mut perm = vec![0usize; len];
    for row in picks.chunks_exact_mut(c) {
        if replace {
            row.copy_from_slice(&rng.randint_below(len, c));
        } else {
            rng.permutation_into(&mut perm);
            row.copy_from_slice(&perm[..c]);
        }
    }

    let queries: Vec<[f64; 2]> = seeds.iter().map(|&s| [x[s], y[s]]).collect();
    let out = index.map_rows(&queries, cand.kq, c, |i, hits, row: &mut [i64]| {
        for (o, &p) in row.iter_mut().zip(&picks[i * c..(i + 1) * c]) {
            *o = to_i64(cand.candidate(seeds[i], hits, p));
        }
    })?;
    Array2::from_shape_vec((seeds.len(), c), out).map_err(|e| Error::Unsupported(e.to_string()))
}

/// `C(n, r)`, saturating at `u64::MAX`.
fn binomial(n: u64, r: u64) -> u64 {
    if r > n {
        return 0;
    }
    let r = r.min(n - r);
    let mut acc: u128 = 1;
    for i in 0..r {
        // acc · (n − i) is divisible by i + 1 (it is C(n, i+1)·(i+1)); acc ≤ u64::MAX keeps the
        // product below 2**128.
        acc = acc * u128::from(n - i) / u128::from(i + 1);
        if acc > u128::from(u64::MAX) {
            return u64::MAX;
        }
    }
    acc as u64
}

/// Positions of the `rank`-th `c`-combination of `0..len` in lexicographic order (the order of
/// `itertools.combinations`), written into `out` (`out.len() == c`).
///
/// `binom[a][b]` must hold `C(a, b)` (saturating) for `a ≤ len`, `b ≤ c`. Saturated counts are
/// still correct comparisons because `rank < u64::MAX`.
fn unrank_combination(mut rank: u64, len: usize, binom: &[Vec<u64>], out: &mut [usize]) {
    let c = out.len();
    let mut x = 0usize;
    for i in 0..c {
        while x < len {
            let count = binom[len - 1 - x][c - 1 - i];
            if rank < count {
                break;
            }
            rank -= count;
            x += 1;
        }
        out[i] = x;
        x += 1;
    }
}

/// Pascal's triangle `C(a, b)` for `a ≤ len`, `b ≤ c`, saturating.
fn binomial_table(len: usize, c: usize) -> Vec<Vec<u64>> {
    let mut t = vec![vec![0u64; c + 1]; len + 1];
    for a in 0..=len {
        t[a][0] = 1;
        for b in 1..=c.min(a) {
            t[a][b] = t[a - 1][b - 1].saturating_add(if b < a { t[a - 1][b] } else { 0 });
        }
    }
    t
}

/// K-choose-C oversampling (the reference's `_generate_groups_with_oversampling`). Returns
/// `(nsamples, c)` point indices.
///
/// With `M = C(K, c)` (1 for `c == 1`), `min_seeds = ceil(nsamples / M)` and
/// `n_seeds = min(2·min_seeds, n)`; the seeds are the first `n_seeds` of `seed_indices` when it
/// holds at least `min_seeds` entries, else `choice(n, n_seeds, replace=False)` when
/// `n_seeds < n`, else `0..n`. The stream is seeded with `seed` in every case.
///
/// * `c == 1`: `choice(seeds, nsamples, replace = nsamples > len(seeds))`.
/// * `c > 1`: the pool lists, seed after seed, every `c`-combination of the seed's neighbours
///   (self excluded) in `itertools.combinations` order, stopping once it holds `2·nsamples`;
///   the result is `pool[choice(len(pool), nsamples, replace = nsamples > len(pool))]`.
///
/// The pool is never materialised: the selected pool rows are un-ranked.
///
/// # Errors
/// [`Error::InvalidArgument`] as the reference rejects: `n < c`, `k < c`; also `c == 0`,
/// mismatched or non-finite coordinates and out-of-range `seed_indices`.
pub fn oversample_groups(
    x: &[f64],
    y: &[f64],
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<&[usize]>,
) -> Result<Array2<i64>> {
    check_xy(x, y)?;
    let n = x.len();
    check_sizes(n, k, c)?;
    let mut rng = LegacyRandomState::new(seed);
    let per_seed_max = if c == 1 {
        1
    } else {
        binomial(k as u64, c as u64)
    };
    let min_seeds = (nsamples as u64).div_ceil(per_seed_max).max(1);
    let n_seeds = usize::try_from(min_seeds.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .min(n);
    let seeds: Vec<usize> = match seed_indices {
        Some(si) if si.len() as u64 >= min_seeds => {
            check_seed_indices(si, n)?;
            si[..si.len().min(n_seeds)].to_vec()
        }
        _ => {
            if n_seeds < n {
                rng.choice(n, n_seeds, false)?
            } else {
                (0..n).collect()
            }
        }
    };
    if c == 1 {
        let pick = rng.choice(seeds.len(), nsamples, nsamples > seeds.len())?;
        let chosen: Vec<usize> = pick.iter().map(|&i| seeds[i]).collect();
        return column(&chosen);
    }

    let cand = Candidates::new(n, k, c, true);
    let len = cand.len();
    let per_seed = if len >= c {
        binomial(len as u64, c as u64)
    } else {
        0
    };
    let target = (nsamples as u64).saturating_mul(2);
    let pool = per_seed.saturating_mul(seeds.len() as u64).min(target);
    if pool == 0 {
        return Err(Error::invalid(
            "nsamples",
            "satisfiable: no valid combinations could be generated",
            nsamples.to_string(),
        ));
    }
    let pool_len = usize::try_from(pool).map_err(|_| {
        Error::invalid(
            "nsamples",
            "addressable on this platform",
            nsamples.to_string(),
        )
    })?;
    // The output first (the largest buffer, checked and fallible), then the draws.
    let mut out = filled(group_len(nsamples, c)?, 0i64, "nsamples")?;
    let picks = rng.choice(pool_len, nsamples, nsamples > pool_len)?;

    // Only the seeds whose combinations made it into the pool are queried.
    let used = usize::try_from(pool.div_ceil(per_seed)).unwrap_or(seeds.len());
    let index = KnnIndex::from_xy(x, y)?;
    let queries: Vec<[f64; 2]> = seeds[..used].iter().map(|&s| [x[s], y[s]]).collect();
    let avail = index.map_rows(&queries, cand.kq, len, |i, hits, row: &mut [usize]| {
        for (j, o) in row.iter_mut().enumerate() {
            *o = cand.candidate(seeds[i], hits, j);
        }
    })?;
    let binom = binomial_table(len, c);
    out.par_chunks_mut(c).zip(picks.par_iter()).for_each_init(
        || vec![0usize; c],
        |pos, (orow, &p)| {
            let p = p as u64;
            let s = (p / per_seed) as usize;
            unrank_combination(p % per_seed, len, &binom, pos);
            // s < used and q < len by construction; `get` keeps a broken invariant panic-free.
            let arow = avail.get(s * len..(s + 1) * len).unwrap_or(&[]);
            for (o, &q) in orow.iter_mut().zip(pos.iter()) {
                *o = arow.get(q).map_or(-1, |&v| to_i64(v));
            }
        },
    );
    Array2::from_shape_vec((nsamples, c), out).map_err(|e| Error::Unsupported(e.to_string()))
}

fn check_groups(groups: &ArrayView2<'_, i64>, m: usize) -> Result<()> {
    if let Some(&bad) = groups
        .iter()
        .find(|&&g| g < 0 || usize::try_from(g).map_or(true, |g| g >= m))
    {
        return Err(Error::invalid(
            "groups",
            format!("indices in [0, {m})"),
            bad.to_string(),
        ));
    }
    Ok(())
}

/// Validated, contiguous source and index slices of a gather.
struct Gather<'a, T: Clone> {
    src: Cow<'a, [T]>,
    groups: Cow<'a, [i64]>,
    shape: (usize, usize, usize, usize),
}

impl<'a, T: Zeroable> Gather<'a, T> {
    fn new(src: &'a ArrayView3<'a, T>, groups: &'a ArrayView2<'a, i64>) -> Result<Self> {
        let (m, h, w) = src.dim();
        let (b, c) = groups.dim();
        check_groups(groups, m)?;
        let src = match src.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(src.iter().copied().collect()),
        };
        let groups = match groups.as_slice() {
            Some(g) => Cow::Borrowed(g),
            None => Cow::Owned(groups.iter().copied().collect()),
        };
        Ok(Self {
            src,
            groups,
            shape: (b, h, w, c),
        })
    }

    /// Writes `out[p·C + c] = f(src[grow[c]][p])` for one group: every element of `out`
    /// (`len == H·W·C`) exactly once, since `grow.len() == C`.
    fn fill(&self, grow: &[i64], out: &mut [T], f: impl Fn(T) -> T) {
        let (_, h, w, c) = self.shape;
        let hw = h * w;
        // Indices were checked in `new`.
        let srcs: Vec<&[T]> = grow
            .iter()
            .map(|&j| &self.src[j as usize * hw..(j as usize + 1) * hw])
            .collect();
        for (p, px) in out.chunks_exact_mut(c).enumerate() {
            for (o, s) in px.iter_mut().zip(&srcs) {
                *o = f(s[p]);
            }
        }
    }

    fn array(&self, v: Vec<T>) -> Result<Array4<T>> {
        Array4::from_shape_vec(self.shape, v).map_err(|e| Error::Unsupported(e.to_string()))
    }

    fn one(&self, f: impl Fn(T) -> T + Sync) -> Result<Array4<T>> {
        let (b, h, w, c) = self.shape;
        // Zeroed without touching the pages: the workers fault them in, in parallel.
        let mut out = zeroed::<T>(b * h * w * c, "groups")?;
        self.one_into(&mut out, f);
        self.array(out)
    }

    /// [`Gather::one`] into `out` (`B·H·W·C` values, checked by [`Gather::out`]).
    fn one_into(&self, out: &mut [T], f: impl Fn(T) -> T + Sync) {
        let (_, h, w, c) = self.shape;
        if !out.is_empty() {
            out.par_chunks_mut(h * w * c)
                .zip(self.groups.par_chunks_exact(c))
                .for_each(|(o, g)| self.fill(g, o, &f));
        }
    }

    fn two(&self, f: impl Fn(T) -> T + Sync) -> Result<(Array4<T>, Array4<T>)> {
        let (b, h, w, c) = self.shape;
        let len = b * h * w * c;
        let (mut plain, mut mapped) = (zeroed::<T>(len, "groups")?, zeroed::<T>(len, "groups")?);
        self.two_into(&mut plain, &mut mapped, f);
        Ok((self.array(plain)?, self.array(mapped)?))
    }

    fn two_into(&self, plain: &mut [T], mapped: &mut [T], f: impl Fn(T) -> T + Sync) {
        let (_, h, w, c) = self.shape;
        if !plain.is_empty() {
            plain
                .par_chunks_mut(h * w * c)
                .zip(mapped.par_chunks_mut(h * w * c))
                .zip(self.groups.par_chunks_exact(c))
                .for_each(|((o1, o2), g)| {
                    self.fill(g, o1, |v| v);
                    self.fill(g, o2, &f);
                });
        }
    }

    /// A caller-provided output as a slice, if it is C-contiguous of the gather's shape.
    fn out<'o>(&self, out: &'o mut ArrayViewMut4<'_, T>) -> Result<&'o mut [T]> {
        let expected = format!("a C-contiguous array of shape {:?}", self.shape);
        if out.dim() != self.shape {
            return Err(Error::invalid("out", expected, format!("{:?}", out.dim())));
        }
        out.as_slice_mut()
            .ok_or_else(|| Error::invalid("out", expected, "a strided array"))
    }
}

/// Gathers `diff3d[groups]` into `(B, N, N, C)`: `out[b, h, w, c] = diff3d[groups[b, c], h, w]`.
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range.
pub fn gather_groups(
    diff3d: ArrayView3<'_, f32>,
    groups: ArrayView2<'_, i64>,
) -> Result<Array4<f32>> {
    Gather::new(&diff3d, &groups)?.one(|v| v)
}

/// [`gather_groups`] for complex patches (stored ground truth `Y`).
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range.
pub fn gather_groups_complex(
    patches: ArrayView3<'_, Complex32>,
    groups: ArrayView2<'_, i64>,
) -> Result<Array4<Complex32>> {
    Gather::new(&patches, &groups)?.one(|v| v)
}

/// [`gather_groups`] with every value multiplied by `scale` in `f32` (the reference's
/// `X_full = f · diffraction`, bit-identical to NumPy's `float32` multiply).
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range.
pub fn gather_groups_scaled(
    diff3d: ArrayView3<'_, f32>,
    groups: ArrayView2<'_, i64>,
    scale: f32,
) -> Result<Array4<f32>> {
    Gather::new(&diff3d, &groups)?.one(|v| scale * v)
}

/// Both [`gather_groups`] and [`gather_groups_scaled`] in one pass over the sources:
/// `(diffraction, scale · diffraction)`.
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range.
pub fn gather_groups_normalized(
    diff3d: ArrayView3<'_, f32>,
    groups: ArrayView2<'_, i64>,
    scale: f32,
) -> Result<(Array4<f32>, Array4<f32>)> {
    Gather::new(&diff3d, &groups)?.two(|v| scale * v)
}

/// [`gather_groups`] into a caller-provided C-contiguous `(B, H, W, C)` output (for callers
/// that split the groups into pieces); with `scale`, every value is multiplied by it as in
/// [`gather_groups_scaled`].
///
/// # Errors
/// [`Error::InvalidArgument`] on an index out of range or an output of another shape.
pub fn gather_groups_into(
    diff3d: ArrayView3<'_, f32>,
    groups: ArrayView2<'_, i64>,
    scale: Option<f32>,
    mut out: ArrayViewMut4<'_, f32>,
) -> Result<()> {
    let g = Gather::new(&diff3d, &groups)?;
    let o = g.out(&mut out)?;
    match scale {
        Some(s) => g.one_into(o, |v| s * v),
        None => g.one_into(o, |v| v),
    }
    Ok(())
}

/// [`gather_groups_normalized`] into caller-provided C-contiguous `(B, H, W, C)` outputs.
///
/// # Errors
/// As [`gather_groups_into`].
pub fn gather_groups_normalized_into(
    diff3d: ArrayView3<'_, f32>,
    groups: ArrayView2<'_, i64>,
    scale: f32,
    mut plain: ArrayViewMut4<'_, f32>,
    mut scaled: ArrayViewMut4<'_, f32>,
) -> Result<()> {
    let g = Gather::new(&diff3d, &groups)?;
    let (p, s) = (g.out(&mut plain)?, g.out(&mut scaled)?);
    g.two_into(p, s, |v| scale * v);
    Ok(())
}

/// [`gather_groups_complex`] into a caller-provided C-contiguous `(B, H, W, C)` output.
///
/// # Errors
/// As [`gather_groups_into`].
pub fn gather_groups_complex_into(
    patches: ArrayView3<'_, Complex32>,
    groups: ArrayView2<'_, i64>,
    mut out: ArrayViewMut4<'_, Complex32>,
) -> Result<()> {
    let g = Gather::new(&patches, &groups)?;
    g.one_into(g.out(&mut out)?, |v| v);
    Ok(())
}

/// Per-pattern energy `Σ_{h,w} diff3d[m, h, w]²`, accumulated in `f64` in row-major order
/// (a fixed order: identical for any thread count).
pub fn pattern_energies(diff3d: ArrayView3<'_, f32>) -> Vec<f64> {
    let d = diff3d.as_standard_layout();
    let (m, h, w) = d.dim();
    let hw = h * w;
    match d.as_slice() {
        Some(s) if hw > 0 => s
            .par_chunks(hw)
            .map(|p| {
                p.iter()
                    .map(|&v| {
                        let v = f64::from(v);
                        v * v
                    })
                    .sum()
            })
            .collect(),
        _ => vec![0.0; m],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    fn random_xy(n: usize, s: u64) -> (Vec<f64>, Vec<f64>) {
        let mut st = s;
        let x = (0..n).map(|_| lcg(&mut st) * 50.0).collect();
        let y = (0..n).map(|_| lcg(&mut st) * 50.0).collect();
        (x, y)
    }

    fn brute_neighbours(x: &[f64], y: &[f64], s: usize, k: usize) -> Vec<usize> {
        let mut v: Vec<(f64, usize)> = (0..x.len())
            .map(|i| {
                let (dx, dy) = (x[i] - x[s], y[i] - y[s]);
                (dx * dx + dy * dy, i)
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v.iter().skip(1).take(k).map(|p| p.1).collect()
    }

    #[test]
    fn binomials() {
        assert_eq!(binomial(7, 4), 35);
        assert_eq!(binomial(4, 4), 1);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(binomial(1000, 500), u64::MAX);
        let t = binomial_table(10, 4);
        for a in 0..=10u64 {
            for b in 0..=4u64 {
                assert_eq!(t[a as usize][b as usize], binomial(a, b));
            }
        }
    }

    #[test]
    fn unrank_is_lexicographic() {
        let (len, c) = (7, 3);
        let t = binomial_table(len, c);
        let mut want = Vec::new();
        for a in 0..len {
            for b in a + 1..len {
                for d in b + 1..len {
                    want.push(vec![a, b, d]);
                }
            }
        }
        let mut pos = vec![0; c];
        for (r, w) in want.iter().enumerate() {
            unrank_combination(r as u64, len, &t, &mut pos);
            assert_eq!(&pos, w);
        }
    }

    #[test]
    fn groups_are_distinct_neighbours_excluding_self() {
        let (x, y) = random_xy(500, 3);
        for (k, c) in [(4, 4), (7, 4), (9, 9), (12, 4)] {
            let g = sample_then_group(&x, &y, 200, k, c, 11, None).unwrap();
            assert_eq!(g.dim(), (200, c));
            for row in g.rows() {
                let mut r: Vec<i64> = row.to_vec();
                r.sort_unstable();
                r.dedup();
                assert_eq!(r.len(), c);
            }
        }
        // Seeds are the first draw: with c == 1 they are permutation(n)[:m].
        let g1 = sample_then_group(&x, &y, 10, 4, 1, 5, None).unwrap();
        let mut rng = LegacyRandomState::new(5);
        let p = rng.permutation(500);
        let want: Vec<i64> = p[..10].iter().map(|&v| v as i64).collect();
        assert_eq!(g1.column(0).to_vec(), want);
        // Each member lies among its seed's K nearest: check via a full-seed run (seed i = i).
        let g = sample_then_group(&x, &y, 500, 7, 4, 0, None).unwrap();
        for (i, row) in g.rows().into_iter().enumerate() {
            let nb = brute_neighbours(&x, &y, i, 7);
            assert!(row.iter().all(|&v| nb.contains(&(v as usize))));
        }
    }

    #[test]
    fn thread_count_does_not_matter() {
        let (x, y) = random_xy(3000, 9);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let a = one.install(|| sample_then_group(&x, &y, 2000, 7, 4, 1, None).unwrap());
        let b = many.install(|| sample_then_group(&x, &y, 2000, 7, 4, 1, None).unwrap());
        assert_eq!(a, b);
        let a = one.install(|| oversample_groups(&x, &y, 5000, 7, 4, 1, None).unwrap());
        let b = many.install(|| oversample_groups(&x, &y, 5000, 7, 4, 1, None).unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn errors() {
        let (x, y) = random_xy(3, 1);
        assert!(sample_then_group(&x, &y, 1, 4, 4, 0, None).is_err());
        let (x, y) = random_xy(10, 1);
        assert!(sample_then_group(&x, &y, 1, 3, 4, 0, None).is_err());
        assert!(sample_then_group(&x, &y, 1, 3, 0, 0, None).is_err());
        assert!(oversample_groups(&x, &y, 100, 3, 4, 0, None).is_err());
        assert!(sample_then_group(&x, &y, 1, 4, 4, 0, Some(&[10])).is_err());
        assert!(sample_then_group(&x, &y[..9], 1, 4, 4, 0, None).is_err());
        let mut xn = x.clone();
        xn[2] = f64::NAN;
        assert!(sample_then_group(&xn, &y, 1, 4, 4, 0, None).is_err());
        // Coordinates whose squared distances overflow f64 are refused, not searched.
        xn[2] = 1e154;
        let e = sample_then_group(&xn, &y, 3, 4, 4, 0, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("points must be finite and within"),
            "{e}"
        );
        assert!(oversample_groups(&xn, &y, 30, 4, 4, 0, None).is_err());
    }

    #[test]
    fn sizes_from_the_caller_never_abort_or_panic() {
        // The examples: 10**12 and 2**62 oversampled groups, and any nsamples up to
        // usize::MAX, are errors (allocation refused), not SIGABRT or capacity overflow.
        let (x, y) = random_xy(30, 4);
        for ns in [1_000_000_000_000usize, 1 << 62, usize::MAX / 2, usize::MAX] {
            let e = oversample_groups(&x, &y, ns, 6, 4, 0, None).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument { name, .. } if *name == "nsamples"),
                "{ns}: {e}"
            );
            // C == 1 draws `nsamples` seeds the same way.
            assert!(oversample_groups(&x, &y, ns, 6, 1, 0, None).is_err());
            // The standard path caps the groups at the number of points: fine for any nsamples.
            assert_eq!(
                sample_then_group(&x, &y, ns, 6, 4, 0, None).unwrap().dim(),
                (30, 4)
            );
        }
        // K and C far beyond the number of points are argument errors too.
        assert!(sample_then_group(&x, &y, 5, usize::MAX, 4, 0, None).is_ok());
        assert!(sample_then_group(&x, &y, 5, usize::MAX, usize::MAX, 0, None).is_err());
    }

    #[test]
    fn gather_and_energy() {
        let d = Array3::from_shape_fn((3, 2, 2), |(m, h, w)| (m * 4 + h * 2 + w) as f32);
        let g = ndarray::array![[2i64, 0], [1, 1]];
        let out = gather_groups(d.view(), g.view()).unwrap();
        assert_eq!(out.dim(), (2, 2, 2, 2));
        for b in 0..2 {
            for h in 0..2 {
                for w in 0..2 {
                    for c in 0..2 {
                        assert_eq!(out[[b, h, w, c]], d[[g[[b, c]] as usize, h, w]]);
                    }
                }
            }
        }
        let scaled = gather_groups_scaled(d.view(), g.view(), 0.5).unwrap();
        assert_eq!(scaled, out.mapv(|v| 0.5 * v));
        let (plain, norm) = gather_groups_normalized(d.view(), g.view(), 0.5).unwrap();
        assert_eq!(plain, out);
        assert_eq!(norm, scaled);
        let z = d.mapv(|v| Complex32::new(v, -2.0 * v));
        let zc = gather_groups_complex(z.view(), g.view()).unwrap();
        assert_eq!(zc, out.mapv(|v| Complex32::new(v, -2.0 * v)));
        // Non-contiguous inputs are handled.
        let dt = d.view().reversed_axes();
        let dt = dt.t();
        assert_eq!(gather_groups(dt, g.t().t()).unwrap(), out);
        // Large enough to take the huge-page path.
        let big = Array3::from_shape_fn((64, 64, 64), |(m, h, w)| (m + h + w) as f32);
        let gb = Array2::from_shape_fn((2048, 4), |(b, c)| ((b * 7 + c) % 64) as i64);
        let ob = gather_groups(big.view(), gb.view()).unwrap();
        assert_eq!(ob[[1000, 3, 5, 2]], big[[gb[[1000, 2]] as usize, 3, 5]]);
        // the *_into forms, over two pieces of the groups, give the same bits
        let mut into = Array4::<f32>::zeros(out.dim());
        let mut into_s = Array4::<f32>::zeros(out.dim());
        let mut into_p = Array4::<f32>::zeros(out.dim());
        let mut into_n = Array4::<f32>::zeros(out.dim());
        let mut into_c = Array4::<Complex32>::zeros(zc.dim());
        for (a, b) in [(0, 1), (1, g.nrows())] {
            let gp = g.slice(ndarray::s![a..b, ..]);
            let rows = ndarray::s![a..b, .., .., ..];
            gather_groups_into(d.view(), gp, None, into.slice_mut(rows)).unwrap();
            gather_groups_into(d.view(), gp, Some(0.5), into_s.slice_mut(rows)).unwrap();
            gather_groups_normalized_into(
                d.view(),
                gp,
                0.5,
                into_p.slice_mut(rows),
                into_n.slice_mut(rows),
            )
            .unwrap();
            gather_groups_complex_into(z.view(), gp, into_c.slice_mut(rows)).unwrap();
        }
        assert_eq!(into, out);
        assert_eq!(into_s, scaled);
        assert_eq!(into_p, plain);
        assert_eq!(into_n, norm);
        assert_eq!(into_c, zc);
        let mut wrong = Array4::<f32>::zeros((1, 1, 1, 1));
        assert!(gather_groups_into(d.view(), g.view(), None, wrong.view_mut()).is_err());
        assert!(gather_groups(d.view(), ndarray::array![[3i64]].view()).is_err());
        assert!(gather_groups(d.view(), ndarray::array![[-1i64]].view()).is_err());
        let e = pattern_energies(d.view());
        assert_eq!(e, vec![14.0, 126.0, 366.0]);
    }
}

//! k-nearest-neighbour search over 2-D points (KD-tree), parallel over queries.
//!
//! Results are ordered by Euclidean distance, ties broken by point index, so the output is a
//! pure function of the input (independent of tree layout and thread count). Squared distances
//! are computed as `(qx − px)² + (qy − py)²` in `f64`, exactly like `scipy.spatial.cKDTree`
//! (`p = 2`), and the returned distances are their square roots; wherever the distances of a
//! query are distinct the indices therefore equal `cKDTree.query`'s. Among exactly tied
//! distances scipy's order depends on its tree traversal; ours is by ascending index.
//!
//! Exact ties at the `k`-th distance are resolved by asking for one more neighbour: if the
//! `(k+1)`-th distance equals the `k`-th, every point within the `k`-th distance is collected
//! and the `k` smallest `(distance, index)` pairs are kept. Inputs with very many coincident
//! points (thousands at one location) make this fallback expensive, never wrong.

use std::num::NonZero;

use kiddo::immutable::float::kdtree::ImmutableKdTree;
use kiddo::SquaredEuclidean;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::patches::filled;
use crate::{Error, Result};

/// Leaf bucket size of the KD-tree.
const BUCKET: usize = 16;

/// Largest coordinate magnitude accepted: squared distances between points within
/// `±MAX_COORDINATE`, at most `2·(2·10^150)² = 8·10^300`, stay finite in `f64`. Larger
/// coordinates would give infinite distances, and with them no meaningful order.
pub const MAX_COORDINATE: f64 = 1e150;

/// Whether `p` is finite and within [`MAX_COORDINATE`] on both axes.
#[inline]
fn in_range(p: &[f64; 2]) -> bool {
    p[0].abs() <= MAX_COORDINATE && p[1].abs() <= MAX_COORDINATE
}

/// The first point of `points` that is not finite or exceeds [`MAX_COORDINATE`], as an error
/// naming `name`.
fn check_range(name: &'static str, points: &[[f64; 2]]) -> Result<()> {
    match points.iter().position(|p| !in_range(p)) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(
            name,
            "finite and within ±1e150 (squared distances must fit f64)",
            format!("{:?} at index {i}", points[i]),
        )),
    }
}

/// A KD-tree over 2-D points answering exact, deterministically ordered k-NN queries.
#[derive(Debug)]
pub struct KnnIndex {
    tree: ImmutableKdTree<f64, u32, 2, BUCKET>,
    points: Vec<[f64; 2]>,
}

#[inline]
fn dist2(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    dx * dx + dy * dy
}

#[inline]
fn by_dist_then_index(a: &(f64, u32), b: &(f64, u32)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

impl KnnIndex {
    /// Builds the tree over `points` (`[x, y]` pairs).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `points` is empty, holds `2**32 − 1` or more points, or a
    /// coordinate is not finite or exceeds [`MAX_COORDINATE`] in magnitude.
    pub fn new(points: Vec<[f64; 2]>) -> Result<Self> {
        if points.is_empty() {
            return Err(Error::invalid("points", "non-empty", "0 points"));
        }
        if points.len() >= u32::MAX as usize {
            return Err(Error::invalid(
                "points",
                "fewer than 2**32 - 1 points",
                format!("{} points", points.len()),
            ));
        }
        check_range("points", &points)?;
        let tree = ImmutableKdTree::new_from_slice(&points);
        Ok(Self { tree, points })
    }

    /// Builds the tree from separate coordinate slices.
    ///
    /// # Errors
    /// As [`KnnIndex::new`], and when `x` and `y` differ in length.
    pub fn from_xy(x: &[f64], y: &[f64]) -> Result<Self> {
        if x.len() != y.len() {
            return Err(Error::invalid(
                "ycoords",
                format!("as long as xcoords ({})", x.len()),
                y.len().to_string(),
            ));
        }
        Self::new(x.iter().zip(y).map(|(&a, &b)| [a, b]).collect())
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the index is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The coordinates of point `i`.
    pub fn point(&self, i: usize) -> Option<[f64; 2]> {
        self.points.get(i).copied()
    }

    /// Writes the `k` nearest `(squared distance, index)` pairs of `query` into `out`, ordered
    /// by distance then index. `k` is clamped to `1..=len()`; `out` is cleared first. A query
    /// beyond [`MAX_COORDINATE`] (not reachable through the checked entry points) yields
    /// neighbours in an unspecified order, never a panic.
    pub fn query_into(&self, query: &[f64; 2], k: usize, out: &mut Vec<(f64, u32)>) {
        let m = self.points.len();
        let k = k.clamp(1, m);
        let qty = (k + 1).min(m);
        out.clear();
        let Some(nz) = NonZero::new(qty) else {
            return;
        };
        // Unsorted (a bounded max-heap inside kiddo): `collect` sorts by (distance, index).
        let found = self
            .tree
            .nearest_n_within::<SquaredEuclidean>(query, f64::INFINITY, nz, false);
        self.collect(found, query, out);
        if qty > k && out.len() > k && out[k].0 == out[k - 1].0 {
            // A tie at the boundary: the tree may have returned any subset of the tied points.
            let radius = out[k - 1].0;
            let all = NonZero::<usize>::MAX;
            let within = self
                .tree
                .nearest_n_within::<SquaredEuclidean>(query, radius, all, false);
            self.collect(within, query, out);
            out.retain(|p| p.0 <= radius);
        }
        out.truncate(k);
    }

    /// Calls `f(i, neighbours, row)` for every query `i`, in parallel, where `neighbours` are
    /// the `k` nearest as in [`KnnIndex::query_into`] and `row` is the `width`-element output
    /// row of query `i`; returns the rows in query order.
    ///
    /// Queries are visited in Z-order of their position ([`locality_order`]) so that
    /// consecutive queries touch the same tree nodes; the output does not depend on it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`queries`) when `q · width` values overflow or cannot be
    /// allocated (the buffers are allocated fallibly, never aborting).
    pub fn map_rows<T, F>(
        &self,
        queries: &[[f64; 2]],
        k: usize,
        width: usize,
        f: F,
    ) -> Result<Vec<T>>
    where
        T: Copy + Default + Send + Sync,
        F: Fn(usize, &[(f64, u32)], &mut [T]) + Sync,
    {
        let q = queries.len();
        if width == 0 || q == 0 {
            return Ok(Vec::new());
        }
        let len = q.checked_mul(width).ok_or_else(|| {
            Error::invalid(
                "queries",
                "few enough for the output rows to be addressable",
                format!("{q} rows of {width}"),
            )
        })?;
        let mut visited = filled(len, T::default(), "queries")?;
        let mut rank = filled(q, 0usize, "queries")?;
        let mut out = filled(len, T::default(), "queries")?;
        let order = locality_order(queries);
        visited
            .par_chunks_mut(width)
            .zip(order.par_iter())
            .for_each_init(Vec::new, |buf, (row, &i)| {
                self.query_into(&queries[i], k, buf);
                f(i, buf, row);
            });
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        out.par_chunks_mut(width)
            .zip(rank.par_iter())
            .for_each(|(o, &r)| o.copy_from_slice(&visited[r * width..(r + 1) * width]));
        Ok(out)
    }

    fn collect(
        &self,
        found: Vec<kiddo::NearestNeighbour<f64, u32>>,
        query: &[f64; 2],
        out: &mut Vec<(f64, u32)>,
    ) {
        out.clear();
        out.extend(found.into_iter().map(|nn| {
            let p = &self.points[nn.item as usize];
            (dist2(query, p), nn.item)
        }));
        out.sort_unstable_by(by_dist_then_index);
    }
}

/// Spreads the 32 bits of `v` to the even bit positions of a `u64`.
fn spread_bits(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// A processing order of `points` along the Z-order (Morton) curve of their positions,
/// quantised to 21 bits per axis over their bounding box. Small inputs keep their order.
pub fn locality_order(points: &[[f64; 2]]) -> Vec<usize> {
    let q = points.len();
    if q < 4096 {
        return (0..q).collect();
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in points {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let scale = |a: usize| {
        let span = hi[a] - lo[a];
        if span > 0.0 && span.is_finite() {
            f64::from((1u32 << 21) - 1) / span
        } else {
            0.0
        }
    };
    let (sx, sy) = (scale(0), scale(1));
    let mut keys: Vec<(u64, usize)> = points
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            // Float-to-int casts saturate; the quantised values lie in [0, 2**21).
            let qx = ((p[0] - lo[0]) * sx) as u32;
            let qy = ((p[1] - lo[1]) * sy) as u32;
            (spread_bits(qx) | (spread_bits(qy) << 1), i)
        })
        .collect();
    keys.par_sort_unstable();
    keys.into_iter().map(|(_, i)| i).collect()
}

/// The `k` nearest of `points` (`(M, 2)`) to each query (`(Q, 2)`): indices `(Q, k)` and
/// Euclidean distances `(Q, k)`, ordered by distance then index.
///
/// # Errors
/// [`Error::InvalidArgument`] when `k` is 0 or exceeds `M`, an array is not `(·, 2)`, or a
/// coordinate is not finite.
pub fn knn(
    points: ArrayView2<'_, f64>,
    queries: ArrayView2<'_, f64>,
    k: usize,
) -> Result<(Array2<i64>, Array2<f64>)> {
    if points.ncols() != 2 {
        return Err(Error::invalid(
            "points",
            "(M, 2)",
            format!("{:?}", points.shape()),
        ));
    }
    if queries.ncols() != 2 {
        return Err(Error::invalid(
            "queries",
            "(Q, 2)",
            format!("{:?}", queries.shape()),
        ));
    }
    let m = points.nrows();
    if k == 0 || k > m {
        return Err(Error::invalid(
            "k",
            format!("between 1 and the number of points ({m})"),
            k.to_string(),
        ));
    }
    let qs: Vec<[f64; 2]> = queries.rows().into_iter().map(|r| [r[0], r[1]]).collect();
    check_range("queries", &qs)?;
    let q = qs.len();
    let index = KnnIndex::new(points.rows().into_iter().map(|r| [r[0], r[1]]).collect())?;
    let rows = index.map_rows(&qs, k, k, |_, hits, row: &mut [(i64, f64)]| {
        for (o, &(d2, j)) in row.iter_mut().zip(hits) {
            *o = (i64::from(j), d2.sqrt());
        }
    })?;
    let (idx, dist): (Vec<i64>, Vec<f64>) = rows.into_par_iter().unzip();
    let shape_err = |e: ndarray::ShapeError| Error::Unsupported(e.to_string());
    Ok((
        Array2::from_shape_vec((q, k), idx).map_err(shape_err)?,
        Array2::from_shape_vec((q, k), dist).map_err(shape_err)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn brute(points: &[[f64; 2]], q: &[f64; 2], k: usize) -> Vec<(f64, u32)> {
        let mut v: Vec<(f64, u32)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (dist2(q, p), i as u32))
            .collect();
        v.sort_by(by_dist_then_index);
        v.truncate(k);
        v
    }

    /// A small deterministic generator for test coordinates.
    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn matches_brute_force_random() {
        let mut s = 1;
        let pts: Vec<[f64; 2]> = (0..3000)
            .map(|_| [lcg(&mut s) * 100.0, lcg(&mut s) * 100.0])
            .collect();
        let index = KnnIndex::new(pts.clone()).unwrap();
        let mut buf = Vec::new();
        for _ in 0..200 {
            let q = [lcg(&mut s) * 110.0 - 5.0, lcg(&mut s) * 110.0 - 5.0];
            for k in [1, 2, 7, 33] {
                index.query_into(&q, k, &mut buf);
                assert_eq!(buf, brute(&pts, &q, k));
            }
        }
    }

    #[test]
    fn ties_on_a_grid_are_by_index() {
        let pts: Vec<[f64; 2]> = (0..40 * 40)
            .map(|i| [(i % 40) as f64, (i / 40) as f64])
            .collect();
        let index = KnnIndex::new(pts.clone()).unwrap();
        let mut buf = Vec::new();
        for (qi, p) in pts.iter().enumerate().step_by(7) {
            for k in [1, 2, 3, 5, 6, 9, 13, 20] {
                index.query_into(p, k, &mut buf);
                assert_eq!(buf, brute(&pts, p, k), "query {qi} k {k}");
            }
        }
    }

    #[test]
    fn many_duplicates() {
        let mut pts = vec![[1.0, 1.0]; 500];
        pts.extend((0..100).map(|i| [i as f64, 0.0]));
        let index = KnnIndex::new(pts.clone()).unwrap();
        let mut buf = Vec::new();
        for k in [1, 5, 499, 500, 501, 600] {
            index.query_into(&[1.0, 1.0], k, &mut buf);
            assert_eq!(buf, brute(&pts, &[1.0, 1.0], k));
        }
    }

    #[test]
    fn morton_keys_and_order() {
        assert_eq!(spread_bits(0b1011), 0b1000101);
        assert_eq!(spread_bits((1 << 21) - 1), 0x155_5555_5555);
        assert_eq!(spread_bits(u32::MAX), 0x5555_5555_5555_5555);
        let mut s = 5;
        let pts: Vec<[f64; 2]> = (0..5000).map(|_| [lcg(&mut s), lcg(&mut s)]).collect();
        let mut o = locality_order(&pts);
        o.sort_unstable();
        assert_eq!(o, (0..5000).collect::<Vec<_>>());
        // Results come back in query order whatever the visiting order.
        let index = KnnIndex::new(pts.clone()).unwrap();
        let rows = index
            .map_rows(&pts, 3, 3, |i, hits, row: &mut [i64]| {
                assert_eq!(hits[0].1 as usize, i);
                for (r, h) in row.iter_mut().zip(hits) {
                    *r = i64::from(h.1);
                }
            })
            .unwrap();
        let mut buf = Vec::new();
        for i in (0..5000).step_by(97) {
            index.query_into(&pts[i], 3, &mut buf);
            let want: Vec<i64> = buf.iter().map(|h| i64::from(h.1)).collect();
            assert_eq!(&rows[i * 3..i * 3 + 3], &want[..]);
        }
    }

    #[test]
    fn knn_array_api_and_errors() {
        let p = array![[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]];
        let q = array![[0.1, 0.0]];
        let (i, d) = knn(p.view(), q.view(), 3).unwrap();
        assert_eq!(i.row(0).to_vec(), vec![0, 1, 2]);
        assert!((d[[0, 0]] - 0.1).abs() < 1e-15);
        assert!(knn(p.view(), q.view(), 0).is_err());
        assert!(knn(p.view(), q.view(), 4).is_err());
        let bad = array![[f64::NAN, 0.0]];
        assert!(knn(bad.view(), q.view(), 1).is_err());
        assert!(knn(p.view(), bad.view(), 1).is_err());
        let (i, _) = knn(p.view(), Array2::zeros((0, 2)).view(), 2).unwrap();
        assert_eq!(i.shape(), &[0, 2]);
    }

    #[test]
    fn coordinates_beyond_the_squared_distance_range_are_refused() {
        // Within range: exact answers even at the limit (squared distances up to 8e300).
        let m = MAX_COORDINATE;
        let p = array![[-m, -m], [m, m], [0.0, 0.0], [m / 2.0, m / 2.0]];
        let (i, d) = knn(p.view(), array![[m, m]].view(), 4).unwrap();
        assert_eq!(i.row(0).to_vec(), vec![1, 3, 2, 0]);
        assert!(d.iter().all(|v| v.is_finite()));
        // Beyond it, as points or as queries: an error naming the argument, never a panic.
        for big in [1.01e150, 1e154, 1e300, f64::MAX] {
            let bad = array![[0.0, 0.0], [big, 1.0], [2.0, 2.0]];
            let e = knn(bad.view(), array![[0.0, 0.0]].view(), 2).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("points must be finite and within"),
                "{e}"
            );
            let e = knn(p.view(), array![[-big, 0.0]].view(), 2).unwrap_err();
            assert!(e.to_string().starts_with("queries must be"), "{e}");
        }
        // A direct query far outside (infinite distances) returns without panicking.
        let index = KnnIndex::new(vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).unwrap();
        let mut buf = Vec::new();
        index.query_into(&[1e200, -1e200], 2, &mut buf);
        assert!(buf.len() <= 2);
    }
}

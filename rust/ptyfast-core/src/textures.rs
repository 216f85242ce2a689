//! Painting kernels of the object textures that `ptyfast.model` draws in Python.
//!
//! The dead-leaves texture (`ptyfast.objects.dead_leaves`) stacks discs from the top of the
//! pile down: each leaf takes, of the pixel centres inside its disc, those that no earlier
//! leaf took. Its draws stay in Python (NumPy's `Generator`, in batches); [`paint_leaves`]
//! paints one batch, with the arithmetic of the NumPy formulation it replaces, so the image
//! is the same bit for bit.

use crate::{Error, Result};

/// One batch of leaves, in order, on an `(h, w)` image (`out` and `uncovered`, row-major).
///
/// Leaf `i` has centre `(cx[i], cy[i])` (column, row: pixel centres at integer
/// coordinates), radius `radii[i]` and value `values[i]`. A pixel `(row, col)` is inside when
/// `(col − cx)² + (row − cy)² <= r²` (each difference and square in `f64`, summed in that
/// order); every inside pixel still `uncovered` gets the value and is covered. `remaining`
/// counts the uncovered pixels on entry; the result is the count after the batch and, if
/// that reached 0, the number of leaves of the batch used (the rest are not painted).
///
/// # Errors
/// [`Error::InvalidArgument`] when `out` or `uncovered` does not hold `h · w` values, the
/// leaf arrays differ in length, a centre, radius or value is not finite, a radius is
/// negative, or `remaining > h · w`. Nothing is painted then.
#[allow(clippy::too_many_arguments)]
pub fn paint_leaves(
    out: &mut [f64],
    uncovered: &mut [bool],
    (h, w): (usize, usize),
    cx: &[f64],
    cy: &[f64],
    radii: &[f64],
    values: &[f64],
    remaining: usize,
) -> Result<(usize, Option<usize>)> {
    let pixels = h
        .checked_mul(w)
        .ok_or_else(|| Error::invalid("shape", "h · w within usize", format!("({h}, {w})")))?;
    for (name, len) in [("out", out.len()), ("uncovered", uncovered.len())] {
        if len != pixels {
            return Err(Error::invalid(
                name,
                format!("{pixels} values (shape ({h}, {w}))"),
                format!("{len} values"),
            ));
        }
    }
    let n = cx.len();
    for (name, a) in [("cy", cy), ("radii", radii), ("values", values)] {
        if a.len() != n {
            return Err(Error::invalid(
                name,
                format!("{n} values (as cx)"),
                format!("{} values", a.len()),
            ));
        }
    }
    for (name, a) in [("cx", cx), ("cy", cy), ("radii", radii), ("values", values)] {
        if let Some(v) = a.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid(name, "finite values", v.to_string()));
        }
    }
    if let Some(r) = radii.iter().find(|&&r| r < 0.0) {
        return Err(Error::invalid("radii", "values >= 0", r.to_string()));
    }
    if remaining > pixels {
        return Err(Error::invalid(
            "remaining",
            format!("at most h · w = {pixels}"),
            remaining.to_string(),
        ));
    }
    let mut left = remaining;
    if pixels == 0 {
        return Ok((left, None));
    }
    let (last_col, last_row) = ((w - 1) as f64, (h - 1) as f64);
    for (i, (((&x, &y), &r), &v)) in cx.iter().zip(cy).zip(radii).zip(values).enumerate() {
        if left == 0 {
            return Ok((0, Some(i)));
        }
        // The disc's bounding box, clipped to the image (empty when it misses it).
        let (c0, c1) = ((x - r).ceil().max(0.0), (x + r).floor().min(last_col));
        let (r0, r1) = ((y - r).ceil().max(0.0), (y + r).floor().min(last_row));
        if c0 > c1 || r0 > r1 {
            continue;
        }
        let (c0, c1, r0, r1) = (c0 as usize, c1 as usize, r0 as usize, r1 as usize);
        let rr = r * r;
        for row in r0..=r1 {
            let dy = row as f64 - y;
            let dy2 = dy * dy;
            let base = row * w;
            let (Some(o), Some(u)) = (
                out.get_mut(base + c0..=base + c1),
                uncovered.get_mut(base + c0..=base + c1),
            ) else {
                continue;
            };
            for (col, (o, u)) in (c0..=c1).zip(o.iter_mut().zip(u.iter_mut())) {
                let dx = col as f64 - x;
                if *u && dx * dx + dy2 <= rr {
                    *o = v;
                    *u = false;
                    left -= 1;
                }
            }
        }
        if left == 0 {
            return Ok((0, Some(i + 1)));
        }
    }
    Ok((left, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NumPy formulation, literally: per leaf, the box, the inside test over it, the hits.
    fn paint_naive(
        out: &mut [f64],
        unc: &mut [bool],
        (h, w): (usize, usize),
        leaves: &[[f64; 4]],
        mut left: usize,
    ) -> (usize, Option<usize>) {
        for (i, &[x, y, r, v]) in leaves.iter().enumerate() {
            let c0 = (x - r).ceil().max(0.0) as i64;
            let c1 = ((x + r).floor() as i64).min(w as i64 - 1);
            let r0 = (y - r).ceil().max(0.0) as i64;
            let r1 = ((y + r).floor() as i64).min(h as i64 - 1);
            for row in r0..=r1 {
                for col in c0..=c1 {
                    let (dx, dy) = (col as f64 - x, row as f64 - y);
                    let k = row as usize * w + col as usize;
                    if dx * dx + dy * dy <= r * r && unc[k] {
                        out[k] = v;
                        unc[k] = false;
                        left -= 1;
                    }
                }
            }
            if left == 0 {
                return (0, Some(i + 1));
            }
        }
        (left, None)
    }

    fn leaves(n: usize, h: usize, w: usize, seed: u64) -> Vec<[f64; 4]> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let x = -6.0 + next() * (w as f64 + 11.0);
                let y = -6.0 + next() * (h as f64 + 11.0);
                [x, y, 0.3 + 5.0 * next(), next()]
            })
            .collect()
    }

    #[test]
    fn batches_paint_as_the_naive_loop() -> Result<()> {
        for (h, w) in [(1, 1), (7, 13), (32, 32), (5, 40)] {
            let all = leaves(3000, h, w, (h * 31 + w) as u64);
            let (mut o1, mut u1) = (vec![f64::NAN; h * w], vec![true; h * w]);
            let (mut o2, mut u2) = (o1.clone(), u1.clone());
            let (mut left1, mut left2) = (h * w, h * w);
            let mut done = None;
            for (b, batch) in all.chunks(100).enumerate() {
                let col = |k: usize| batch.iter().map(|l| l[k]).collect::<Vec<f64>>();
                let (cx, cy, r, v) = (col(0), col(1), col(2), col(3));
                let got = paint_leaves(&mut o1, &mut u1, (h, w), &cx, &cy, &r, &v, left1)?;
                let want = paint_naive(&mut o2, &mut u2, (h, w), batch, left2);
                assert_eq!(got, want);
                (left1, left2) = (got.0, want.0);
                if let Some(used) = got.1 {
                    done = Some(b * 100 + used);
                    break;
                }
            }
            assert!(done.is_some(), "({h}, {w}) not covered by 3000 leaves");
            assert_eq!(o1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), {
                o2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            });
            assert!(o1.iter().all(|v| v.is_finite()) && u1.iter().all(|&u| !u));
        }
        Ok(())
    }

    #[test]
    fn a_pixel_centre_on_the_rim_is_inside() -> Result<()> {
        let (mut o, mut u) = (vec![0.0; 9], vec![true; 9]);
        // Centre (1, 1), radius 1: the centre and its four neighbours, not the corners.
        let got = paint_leaves(&mut o, &mut u, (3, 3), &[1.0], &[1.0], &[1.0], &[2.0], 9)?;
        assert_eq!(got, (4, None));
        assert_eq!(o, [0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 0.0, 2.0, 0.0]);
        Ok(())
    }

    #[test]
    fn bad_arguments_are_refused_before_painting() {
        let name = |r: Result<(usize, Option<usize>)>| match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an error, got {other:?}"),
        };
        let (mut o, mut u) = (vec![0.0; 4], vec![true; 4]);
        let one = [1.0];
        let mut call = |shape, cx: &[f64], r: &[f64], left| {
            paint_leaves(&mut o, &mut u, shape, cx, &one, r, &one, left)
        };
        assert_eq!(name(call((2, 3), &one, &one, 4)), "out");
        assert_eq!(name(call((2, 2), &[1.0, 2.0], &one, 4)), "cy");
        assert_eq!(name(call((2, 2), &[f64::NAN], &one, 4)), "cx");
        assert_eq!(name(call((2, 2), &one, &[-1.0], 4)), "radii");
        assert_eq!(name(call((2, 2), &one, &[f64::INFINITY], 4)), "radii");
        assert_eq!(name(call((2, 2), &one, &one, 5)), "remaining");
        assert_eq!(name(call((usize::MAX, 2), &one, &one, 4)), "shape");
        assert!(u.iter().all(|&x| x) && o.iter().all(|&x| x == 0.0));
    }
}

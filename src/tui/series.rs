//! A metric's history over steps, and its decimation to the columns a chart has: each column
//! keeps its bucket's lowest and highest point, so a spike never disappears when zoomed out.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// Adds a point; a step seen again (a resumed run replays its events) replaces the later ones.
    pub fn push(&mut self, x: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        while self.points.last().is_some_and(|&(last, _)| last >= x) {
            self.points.pop();
        }
        self.points.push((x, y));
    }

    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The y range, widened a little when flat so the line is visible.
    pub fn y_bounds(&self) -> [f64; 2] {
        let (lo, hi) = self
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.1), hi.max(p.1))
            });
        if !lo.is_finite() {
            return [0.0, 1.0];
        }
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-12);
        [lo - pad, hi + pad]
    }

    /// At most `2 * columns` points: per column the bucket's minimum and maximum, in x order.
    pub fn decimated(&self, columns: usize) -> Vec<(f64, f64)> {
        let n = self.points.len();
        if columns == 0 || n <= 2 * columns {
            return self.points.clone();
        }
        let mut out = Vec::with_capacity(2 * columns);
        for c in 0..columns {
            let bucket = &self.points[c * n / columns..(c + 1) * n / columns];
            let lo = bucket
                .iter()
                .copied()
                .fold(bucket[0], |m, p| if p.1 < m.1 { p } else { m });
            let hi = bucket
                .iter()
                .copied()
                .fold(bucket[0], |m, p| if p.1 > m.1 { p } else { m });
            if lo.0 <= hi.0 {
                out.extend([lo, hi]);
            } else {
                out.extend([hi, lo]);
            }
        }
        out.dedup();
        out
    }
}

/// The x range of several series together.
pub fn x_bounds<'a>(series: impl IntoIterator<Item = &'a Series>) -> [f64; 2] {
    let (lo, hi) = series
        .into_iter()
        .flat_map(|s| s.points.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    if !lo.is_finite() {
        [0.0, 1.0]
    } else if hi <= lo {
        [lo, lo + 1.0]
    } else {
        [lo, hi]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ys: &[f64]) -> Series {
        let mut s = Series::default();
        for (i, &y) in ys.iter().enumerate() {
            s.push(i as f64 + 1.0, y);
        }
        s
    }

    #[test]
    fn decimation_keeps_extremes_and_fits_the_width() {
        let mut ys: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.01).sin()).collect();
        ys[517] = 40.0;
        ys[801] = -40.0;
        let s = series(&ys);
        let d = s.decimated(50);
        assert!(d.len() <= 100, "{}", d.len());
        assert!(d.contains(&(518.0, 40.0)));
        assert!(d.contains(&(802.0, -40.0)));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(series(&[1.0, 2.0]).decimated(50).len(), 2);
    }

    #[test]
    fn a_replayed_step_replaces_what_followed_it() {
        let mut s = series(&[3.0, 2.0, 1.0]);
        s.push(2.0, 5.0);
        assert_eq!(s.points, vec![(1.0, 3.0), (2.0, 5.0)]);
        s.push(3.0, f64::NAN);
        assert_eq!(s.points.len(), 2);
    }

    #[test]
    fn bounds_are_never_empty() {
        assert_eq!(Series::default().y_bounds(), [0.0, 1.0]);
        let [lo, hi] = series(&[2.0, 2.0]).y_bounds();
        assert!(lo < 2.0 && hi > 2.0);
        assert_eq!(x_bounds([&series(&[1.0])]), [1.0, 2.0]);
    }
}

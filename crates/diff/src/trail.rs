//! A series of any length folded into a bounded number of buckets.
//!
//! Each point starts as its own bucket. When [`CAPACITY`] buckets are full,
//! neighbours are merged pairwise and every later bucket takes twice as
//! many points, so memory stays constant however long a recording runs and
//! each point costs amortised O(1). A bucket keeps the mean (the series'
//! level), the minimum (its lower envelope) and the maximum, so peaks and
//! troughs survive downsampling.

use serde::Serialize;

/// Most buckets a trail keeps. The analyzer's pairwise statistics cost
/// O(CAPACITY²) per series: a constant, independent of the sample count.
pub const CAPACITY: usize = 256;

/// A run of consecutive points.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Bucket {
    /// Mean time of the points, seconds.
    pub t: f64,
    /// Mean value.
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Points folded in.
    pub n: u64,
}

impl Bucket {
    fn new(t: f64, v: f64) -> Bucket {
        Bucket {
            t,
            mean: v,
            min: v,
            max: v,
            n: 1,
        }
    }

    /// A filling bucket, whose `t` and `mean` hold sums, as a bucket.
    fn from_sums(b: Bucket) -> Bucket {
        let n = b.n as f64;
        Bucket {
            t: b.t / n,
            mean: b.mean / n,
            ..b
        }
    }

    fn merge(&mut self, o: &Bucket) {
        let n = (self.n + o.n) as f64;
        self.t = (self.t * self.n as f64 + o.t * o.n as f64) / n;
        self.mean = (self.mean * self.n as f64 + o.mean * o.n as f64) / n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.n += o.n;
    }
}

/// One series (RSS, descriptors, ...) of one process, downsampled.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    full: Vec<Bucket>,
    /// The bucket taking points (none while `n` is 0); its `t` and
    /// `mean` hold sums.
    filling: Bucket,
    /// Points per full bucket: a power of two.
    width: u64,
    count: u64,
    first: Option<(f64, f64)>,
    last: Option<(f64, f64)>,
}

impl Trail {
    pub fn new() -> Trail {
        Trail {
            width: 1,
            ..Trail::default()
        }
    }

    /// Adds a point; times must not go backwards.
    pub fn push(&mut self, t: f64, v: f64) {
        if !v.is_finite() || !t.is_finite() {
            return;
        }
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((t, v));
        }
        self.last = Some((t, v));
        // The filling bucket sums its points (a mean is taken when it is
        // read): two additions per point instead of two divisions. (Every
        // sample pushes a point to each of a process's series, twice in a
        // report: this is the fold's innermost loop.)
        let b = &mut self.filling;
        if b.n == 0 {
            *b = Bucket::new(t, v);
        } else {
            b.t += t;
            b.mean += v;
            if v < b.min {
                b.min = v;
            }
            if v > b.max {
                b.max = v;
            }
            b.n += 1;
        }
        if b.n >= self.width.max(1) {
            let full = Bucket::from_sums(*b);
            b.n = 0;
            self.full.push(full);
            if self.full.len() >= CAPACITY {
                self.halve();
            }
        }
    }

    fn halve(&mut self) {
        let merged: Vec<Bucket> = self
            .full
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0];
                if let Some(o) = pair.get(1) {
                    b.merge(o);
                }
                b
            })
            .collect();
        self.full = merged;
        self.width = self.width.max(1) * 2;
    }

    /// Points pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first and last points, exactly as pushed.
    pub fn first(&self) -> Option<(f64, f64)> {
        self.first
    }
    pub fn last(&self) -> Option<(f64, f64)> {
        self.last
    }

    /// The buckets in time order, the one still filling included.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = self.full.clone();
        if self.filling.n > 0 {
            out.push(Bucket::from_sums(self.filling));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_are_kept_point_by_point() {
        let mut t = Trail::new();
        for i in 0..10 {
            t.push(f64::from(i), f64::from(i * 2));
        }
        let b = t.buckets();
        assert_eq!(b.len(), 10);
        assert_eq!(b[3].mean, 6.0);
        assert_eq!(t.count(), 10);
    }

    #[test]
    fn long_series_stay_bounded_and_keep_extremes() {
        let mut t = Trail::new();
        let n = 100_003u32;
        for i in 0..n {
            let v = if i == 77_777 { 1e9 } else { f64::from(i % 100) };
            t.push(f64::from(i), v);
        }
        let b = t.buckets();
        assert!(b.len() <= CAPACITY + 1, "{} buckets", b.len());
        assert!(b.len() >= CAPACITY / 2);
        assert_eq!(b.iter().map(|b| b.n).sum::<u64>(), u64::from(n));
        assert_eq!(b.iter().map(|b| b.max).fold(0.0, f64::max), 1e9);
        assert_eq!(b.iter().map(|b| b.min).fold(f64::MAX, f64::min), 0.0);
        assert!(b.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(t.last(), Some((f64::from(n - 1), f64::from((n - 1) % 100))));
    }

    #[test]
    fn non_finite_points_are_ignored() {
        let mut t = Trail::new();
        t.push(0.0, f64::NAN);
        t.push(f64::INFINITY, 1.0);
        assert_eq!(t.count(), 0);
        assert!(t.buckets().is_empty());
    }
}

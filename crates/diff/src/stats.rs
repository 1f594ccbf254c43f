//! Robust statistics on short series: Theil–Sen slopes, the Mann–Kendall
//! trend test and the normal distribution they need.
//!
//! The analyzer never gives these more than a few hundred points (see
//! [`crate::trail`]), so the quadratic pair loops here cost a constant per
//! series, whatever the length of the recording.

/// The Theil–Sen estimator: the median of the slopes between every pair of
/// points with distinct times. Robust to up to ~29% outliers. `None` with
/// fewer than two distinct times.
pub fn theil_sen(t: &[f64], v: &[f64]) -> Option<f64> {
    debug_assert_eq!(t.len(), v.len());
    let n = t.len();
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dt = t[j] - t[i];
            if dt > 0.0 {
                slopes.push((v[j] - v[i]) / dt);
            }
        }
    }
    median(&mut slopes)
}

/// The median (mean of the two middle values for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid]
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    Some((lower + upper) / 2.0)
}

/// The Mann–Kendall statistic as a standard normal score: positive for an
/// increasing series, with the variance corrected for ties (counts of
/// descriptors and threads tie a lot) and a continuity correction. Zero for
/// fewer than three points or a constant series.
pub fn mann_kendall_z(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 3 {
        return 0.0;
    }
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += match v[j].total_cmp(&v[i]) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    let mut sorted = v.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if var <= 0.0 {
        return 0.0;
    }
    match s {
        0 => 0.0,
        s if s > 0 => (s as f64 - 1.0) / var.sqrt(),
        s => (s as f64 + 1.0) / var.sqrt(),
    }
}

/// The standard normal cumulative distribution function Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, fractional
/// error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theil_sen_ignores_outliers() {
        let t: Vec<f64> = (0..20).map(f64::from).collect();
        let mut v: Vec<f64> = t.iter().map(|x| 3.0 * x + 1.0).collect();
        v[5] = 1000.0;
        v[15] = -1000.0;
        assert!((theil_sen(&t, &v).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(theil_sen(&[1.0], &[2.0]), None);
        assert_eq!(theil_sen(&[1.0, 1.0], &[2.0, 5.0]), None);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn mann_kendall_signs_and_ties() {
        let up: Vec<f64> = (0..10).map(f64::from).collect();
        let down: Vec<f64> = up.iter().rev().copied().collect();
        // S = 45, var = 10*9*25/18 = 125: z = 44 / sqrt(125).
        assert!((mann_kendall_z(&up) - 44.0 / 125f64.sqrt()).abs() < 1e-12);
        assert!((mann_kendall_z(&down) + 44.0 / 125f64.sqrt()).abs() < 1e-12);
        assert_eq!(mann_kendall_z(&[5.0; 10]), 0.0);
        // Ties shrink the variance: 1,1,2,2 has S = 4, var = (4*3*13 - 2*2*1*9)/18 = 6.67.
        let z = mann_kendall_z(&[1.0, 1.0, 2.0, 2.0]);
        assert!((z - 3.0 / (120.0f64 / 18.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn normal_cdf_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-2.326_348) - 0.01).abs() < 1e-6);
    }
}

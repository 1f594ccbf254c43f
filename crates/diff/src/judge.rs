//! The verdict on one series: is this sustained growth that continues to
//! the end of what was observed? See docs/leak-detection.md for the
//! reasoning behind every threshold here.

use serde::Serialize;

use crate::stats::{mann_kendall_z, median, normal_cdf, theil_sen};
use crate::trail::Bucket;

/// Fewer points than this are too few to judge.
pub const MIN_POINTS: usize = 16;
/// Mann–Kendall score the whole series must reach (one-sided p < 0.01).
pub const Z_SERIES: f64 = 2.326;
/// Mann–Kendall score the lower envelope must reach (one-sided p < 0.05).
pub const Z_FLOOR: f64 = 1.645;
/// Most segments the lower envelope is cut into.
pub const MAX_SEGMENTS: usize = 6;
/// The final share of the recording (by time) in which growth must go on.
pub const FINAL_SHARE: f64 = 0.25;
/// ...at least this share of the whole recording's rate...
pub const PERSISTENCE: f64 = 0.75;
/// ...and significantly: the final stretch's rise must be this many
/// standard errors above zero (one-sided p < 0.05).
pub const Z_PERSIST: f64 = 1.645;
/// A single jump this large a share of the total rise is a step.
pub const STEP_SHARE: f64 = 0.5;

/// The three answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Leak,
    NoLeak,
    InsufficientData,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::NoLeak => "no-leak",
            Verdict::InsufficientData => "insufficient-data",
        }
    }
}

/// What the series looked like, in words a person would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Grows, its lows grow, and it was still growing at the end.
    Growing,
    /// Grew, then stopped: a warm-up or a cache that filled up.
    Plateau,
    /// One jump (a load, a one-off allocation), flat before and after.
    Step,
    /// Rises and falls in cycles whose lows do not rise (GC, alloc/free).
    Sawtooth,
    /// Falls.
    Shrinking,
    /// Changes less than it would take to matter.
    Flat,
    /// Varies with no sustained direction.
    Noisy,
    /// Too few points to say.
    TooShort,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Growing => "growing",
            Pattern::Plateau => "plateau",
            Pattern::Step => "step",
            Pattern::Sawtooth => "sawtooth",
            Pattern::Shrinking => "shrinking",
            Pattern::Flat => "flat",
            Pattern::Noisy => "noisy",
            Pattern::TooShort => "too-short",
        }
    }
}

/// How much growth matters for one kind of series.
#[derive(Debug, Clone, Copy)]
pub struct Materiality {
    /// The lows must rise at least this much over the recording...
    pub absolute: f64,
    /// ...and at least this share of the series' median level.
    pub relative: f64,
}

/// The judgement on one series, with the figures behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub pattern: Pattern,
    /// Theil–Sen slope of the series, units per second.
    pub slope: f64,
    /// Theil–Sen slope of the lower envelope: what is retained, per second.
    pub floor_slope: f64,
    /// How far the lower envelope rose from the first to the last segment.
    pub floor_rise: f64,
    /// Mann–Kendall scores of the series and of its envelope.
    pub z_series: f64,
    pub z_floor: f64,
    /// 0..1: how sure the verdict is (see docs/leak-detection.md).
    pub confidence: f64,
}

impl Judgement {
    fn too_short() -> Judgement {
        Judgement {
            verdict: Verdict::InsufficientData,
            pattern: Pattern::TooShort,
            slope: 0.0,
            floor_slope: 0.0,
            floor_rise: 0.0,
            z_series: 0.0,
            z_floor: 0.0,
            confidence: 0.0,
        }
    }
}

/// Judges a downsampled series (buckets in time order).
pub fn judge(buckets: &[Bucket], material: Materiality) -> Judgement {
    let m = buckets.len();
    if m < MIN_POINTS {
        return Judgement::too_short();
    }
    let t: Vec<f64> = buckets.iter().map(|b| b.t).collect();
    let v: Vec<f64> = buckets.iter().map(|b| b.mean).collect();
    let slope = theil_sen(&t, &v).unwrap_or(0.0);
    let z_series = mann_kendall_z(&v);
    let span = (t[m - 1] - t[0]).max(f64::MIN_POSITIVE);

    // The lower envelope: the low of each of k equal segments (see
    // `low_of`).
    let k = (m / 4).clamp(4, MAX_SEGMENTS);
    let mut ft = Vec::with_capacity(k);
    let mut floor = Vec::with_capacity(k);
    for s in 0..k {
        let seg = &buckets[s * m / k..(s + 1) * m / k];
        ft.push(seg.iter().map(|b| b.t).sum::<f64>() / seg.len() as f64);
        floor.push(low_of(seg));
    }
    // The retained rate leaves the first segment out: it often holds the
    // program starting up, whose climb would inflate the rate expected of
    // the end of the recording.
    let floor_slope = theil_sen(&ft[1..], &floor[1..]).unwrap_or(0.0);
    let z_floor = mann_kendall_z(&floor);
    let floor_rise = floor[k - 1] - floor[0];

    let level = median(&mut v.clone()).unwrap_or(0.0).abs();
    let needed = material.absolute.max(material.relative * level);
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let noise = noise_sd(&v, level);

    // Growth is material: the fitted line rises over the recording by at
    // least the material amount.
    let rise = slope * span;
    let rise_se = noise * slope_factor(&t) * span;
    let material_ok = rise >= needed;

    // Growth persists: the trimmed mean of the final quarter of the
    // recording is above that of the quarter before it by at least 75% of what
    // the fitted rate predicts, and significantly (see
    // docs/leak-detection.md, step 5). A plateau that began before the
    // final quarter fails both.
    let (last_q, prev_q) = quarters(&t, span);
    let (tail_t, tail_level) = middle_of(&t, &v, last_q.clone());
    let (prev_t, prev_level) = middle_of(&t, &v, prev_q.clone());
    let tail_rise = tail_level - prev_level;
    // The standard error of a mean trimmed by an eighth at either end is
    // about 1.06 times a mean's (Gaussian noise).
    let tail_se = 1.06 * noise * (1.0 / last_q.len() as f64 + 1.0 / prev_q.len() as f64).sqrt();
    let tail_needed = (PERSISTENCE * slope * (tail_t - prev_t)).max(Z_PERSIST * tail_se);
    // Cycles (allocate, free) make the means of two stretches depend on
    // where the cycles fall in them; the lows do not. So a series that
    // rises and falls in cycles also persists when the lowest point of the
    // final quarter is above the lowest of the quarter before by 75% of
    // what the envelope's rate predicts, and by more than the noise can
    // move two single points (2.326 √2 σ). Only for cycles: the lowest
    // point of a stretch lags a rise, so on a plateau it would keep
    // "rising" for a quarter after the growth stopped.
    let low_rise = low_of(&buckets[last_q.clone()]) - low_of(&buckets[prev_q.clone()]);
    let low_needed = (PERSISTENCE * floor_slope * (tail_t - prev_t))
        .max(Z_SERIES * std::f64::consts::SQRT_2 * noise);
    let lows_persist = floor_slope > 0.0 && low_rise > 0.0 && low_rise >= low_needed;
    let means_persist = tail_rise > 0.0 && tail_rise >= tail_needed;
    let cycles = is_sawtooth(&v, hi - lo);
    let persists = slope > 0.0 && (means_persist || (cycles && lows_persist));

    let rising = z_series >= Z_SERIES && slope > 0.0;
    let floor_rising = z_floor >= Z_FLOOR && floor_slope > 0.0;
    let step = is_step(&t, &v, slope, needed);

    let leak = rising && floor_rising && material_ok && persists && !step;
    let pattern = if leak {
        Pattern::Growing
    } else if step {
        Pattern::Step
    } else if z_series >= Z_SERIES && material_ok && !persists {
        Pattern::Plateau
    } else if z_series <= -Z_SERIES && slope < 0.0 && lo + needed <= hi {
        Pattern::Shrinking
    } else if hi - lo < needed {
        Pattern::Flat
    } else if is_sawtooth(&v, hi - lo) && !floor_rising {
        Pattern::Sawtooth
    } else if rising && material_ok {
        // Rising, but the lows do not follow: cycles with a late high.
        Pattern::Sawtooth
    } else {
        Pattern::Noisy
    };

    // Confidence: how far the weakest condition of a leak is met (or
    // missed), in standard errors, through the normal distribution. A
    // leak's confidence is that; a no-leak's, its complement. See
    // docs/leak-detection.md ("Confidence") for its calibration.
    let margin = |have: f64, want: f64, se: f64| (have - want) / se.max(1e-9 * level.max(1.0));
    // The envelope's score is left out: on at most six points it cannot
    // say more than "rising" (its largest value is 2.63).
    let margins = [
        z_series - Z_SERIES,
        margin(rise, needed, rise_se),
        if cycles {
            margin(tail_rise, tail_needed, tail_se).max(margin(
                low_rise,
                low_needed,
                std::f64::consts::SQRT_2 * noise,
            ))
        } else {
            margin(tail_rise, tail_needed, tail_se)
        },
    ];
    let weakest = margins.iter().copied().fold(f64::INFINITY, f64::min);
    let score = normal_cdf(weakest);
    let confidence = if leak {
        score
    } else if step {
        // Every test of growth passed, or nearly, but one jump explains it.
        (1.0 - score).max(0.5)
    } else {
        1.0 - score
    };
    Judgement {
        verdict: if leak { Verdict::Leak } else { Verdict::NoLeak },
        pattern,
        slope,
        floor_slope,
        floor_rise,
        z_series,
        z_floor,
        confidence: (confidence * 100.0).round() / 100.0,
    }
}

/// The low of a stretch: the lowest bucket minimum once a tenth of them
/// (the lowest) are left out. A trough of every cycle is still there when
/// the stretch holds a few cycles; a sample or two of a process tearing
/// down at its exit (its heap freed) is not.
fn low_of(buckets: &[Bucket]) -> f64 {
    let mut lows: Vec<f64> = buckets.iter().map(|b| b.min).collect();
    if lows.is_empty() {
        return 0.0;
    }
    let i = lows.len() / 10;
    *lows.select_nth_unstable_by(i, f64::total_cmp).1
}

/// Fewest points in each of the two final stretches compared.
const MIN_TAIL: usize = 4;

/// The index ranges of the final [`FINAL_SHARE`] of the recording (by
/// time) and of the stretch as long before it, each at least
/// [`MIN_TAIL`] points.
fn quarters(t: &[f64], span: f64) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let m = t.len();
    let end = t[m - 1];
    let first_at = |from: f64| t.iter().position(|&x| x >= from).unwrap_or(m);
    let tail = first_at(end - FINAL_SHARE * span).min(m - MIN_TAIL);
    let prev = first_at(end - 2.0 * FINAL_SHARE * span).min(tail - MIN_TAIL);
    (tail..m, prev..tail)
}

/// The mean time and the trimmed mean value of the points in `r` (an
/// eighth of them left out at either end, at least one each once there
/// are eight): a sample or two of a process tearing down at its exit
/// (freeing its heap) does not pull the final stretch down, and little
/// of a mean's precision is lost.
fn middle_of(t: &[f64], v: &[f64], r: std::ops::Range<usize>) -> (f64, f64) {
    let n = r.len().max(1) as f64;
    let mut sorted = v[r.clone()].to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let cut = sorted.len() / 8;
    let kept = &sorted[cut..sorted.len() - cut];
    (
        t[r].iter().sum::<f64>() / n,
        kept.iter().sum::<f64>() / kept.len().max(1) as f64,
    )
}

/// The standard deviation of the noise around the series' shape, from
/// the differences between neighbours (robust: median absolute deviation;
/// a trend, a step or a plateau barely moves it). Never zero, so margins
/// stay finite on a perfectly clean series.
fn noise_sd(v: &[f64], level: f64) -> f64 {
    let mut d: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).collect();
    let mid = median(&mut d.clone()).unwrap_or(0.0);
    for x in &mut d {
        *x = (*x - mid).abs();
    }
    let mad = median(&mut d).unwrap_or(0.0);
    (1.4826 * mad / std::f64::consts::SQRT_2).max(1e-6 * level.max(1.0))
}

/// The standard error of a fitted slope per unit of noise:
/// 1 / sqrt(sum (t - mean t)^2).
fn slope_factor(t: &[f64]) -> f64 {
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let ss: f64 = t.iter().map(|x| (x - mean).powi(2)).sum();
    if ss > 0.0 {
        1.0 / ss.sqrt()
    } else {
        f64::INFINITY
    }
}

/// One jump making up most of the rise and moving the level for good,
/// with the series flat after it. The jump is found between the medians
/// of short windows on either side of each point, so noise of the size
/// of the jump between two neighbours does not hide it.
fn is_step(t: &[f64], v: &[f64], slope: f64, needed: f64) -> bool {
    let m = v.len();
    let w = (m / 16).max(2);
    if m < 2 * w + 1 {
        return false;
    }
    let med = |s: &[f64]| median(&mut s.to_vec()).unwrap_or(0.0);
    let Some((j, jump)) = (w..=m - w)
        .map(|j| (j, med(&v[j..j + w]) - med(&v[j - w..j])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return false;
    };
    let rise = med(&v[m - w..]) - med(&v[..w]);
    if jump <= 0.0 || jump < STEP_SHARE * rise.max(needed) {
        return false;
    }
    // A step moves the level for good: noise jumps and comes back.
    let before = med(&v[..j]);
    let after = med(&v[j..]);
    if after - before < (STEP_SHARE * jump).max(needed) {
        return false;
    }
    // Two levels must describe the series better than the fitted line:
    // a steady climb has its biggest window-to-window jump too.
    let mut offsets: Vec<f64> = t.iter().zip(v).map(|(t, v)| v - slope * t).collect();
    let intercept = median(&mut offsets).unwrap_or(0.0);
    let line: f64 = t
        .iter()
        .zip(v)
        .map(|(t, v)| (v - intercept - slope * t).abs())
        .sum();
    let levels: f64 = v[..j].iter().map(|x| (x - before).abs()).sum::<f64>()
        + v[j..].iter().map(|x| (x - after).abs()).sum::<f64>();
    if levels >= line {
        return false;
    }
    // What came before may be a warm-up; what follows must not rise.
    let after = &v[j..];
    after.len() < 4 || mann_kendall_z(after) < Z_SERIES
}

/// Climbs slowly, falls fast, more than once: at least two falls of a
/// third of the range between neighbours, and at most half as many such
/// jumps up (noise jumps both ways alike).
fn is_sawtooth(v: &[f64], range: f64) -> bool {
    if range <= 0.0 {
        return false;
    }
    let big = range / 3.0;
    let drops = v.windows(2).filter(|w| w[0] - w[1] >= big).count();
    let jumps = v.windows(2).filter(|w| w[1] - w[0] >= big).count();
    drops >= 2 && 2 * jumps <= drops
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: Materiality = Materiality {
        absolute: 256.0,
        relative: 0.01,
    };

    fn series(f: impl Fn(usize) -> f64, n: usize) -> Vec<Bucket> {
        (0..n)
            .map(|i| {
                let v = f(i);
                Bucket {
                    t: i as f64 * 0.1,
                    mean: v,
                    min: v,
                    max: v,
                    n: 1,
                }
            })
            .collect()
    }

    /// A deterministic pseudo-random number in 0..1 (splitmix64 of `i`).
    fn noise(i: usize) -> f64 {
        let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn check(name: &str, f: impl Fn(usize) -> f64, verdict: Verdict, pattern: Pattern) {
        let j = judge(&series(f, 60), MEM);
        assert_eq!((j.verdict, j.pattern), (verdict, pattern), "{name}: {j:?}");
    }

    #[test]
    fn labelled_shapes() {
        let base = 20_000.0;
        check(
            "linear",
            |i| base + 1000.0 * i as f64,
            Verdict::Leak,
            Pattern::Growing,
        );
        check("flat", |_| base, Verdict::NoLeak, Pattern::Flat);
        check(
            "plateau",
            |i| base + 1000.0 * (i.min(20) as f64),
            Verdict::NoLeak,
            Pattern::Plateau,
        );
        check(
            "step",
            |i| if i < 35 { base } else { base + 30_000.0 },
            Verdict::NoLeak,
            Pattern::Step,
        );
        check(
            "sawtooth",
            |i| base + 2000.0 * (i % 8) as f64,
            Verdict::NoLeak,
            Pattern::Sawtooth,
        );
        check(
            "sawtooth with a rising floor",
            |i| base + 2000.0 * (i % 8) as f64 + 1500.0 * (i / 8) as f64,
            Verdict::Leak,
            Pattern::Growing,
        );
        check(
            "slow leak under noise",
            |i| base + 250.0 * i as f64 + 8000.0 * noise(i),
            Verdict::Leak,
            Pattern::Growing,
        );
        check(
            "noise",
            |i| base + 8000.0 * noise(i),
            Verdict::NoLeak,
            Pattern::Noisy,
        );
        check(
            "shrinking",
            |i| base + 60_000.0 - 1000.0 * i as f64,
            Verdict::NoLeak,
            Pattern::Shrinking,
        );
    }

    /// RssAnon (KiB) of `scenarios.py slow-leak-under-noise` as recorded
    /// at 100 ms for 6 s: interpreter start-up, then 1.25 MiB/s of leak
    /// under a pool resized at random between 0 and 8 MiB. Its final
    /// quarter averages only 0.2 MiB above the quarter before (1.9 MiB
    /// expected, noise 3.2 MiB): that the growth goes on is not shown, so
    /// this is "plateau, watch longer", not a leak. Twice as long, the
    /// same program is a leak (the scenario suite runs it for 12 s).
    #[test]
    fn a_noisy_leak_not_shown_to_go_on_is_a_plateau() {
        let kib = [
            2320, 4848, 7524, 15372, 16524, 15628, 15756, 16908, 11916, 11020, 17292, 16396, 11404,
            10508, 16780, 13836, 11916, 11020, 18316, 10252, 16524, 17676, 12684, 10764, 19084,
            12044, 11148, 11276, 14476, 14604, 11660, 18956, 17036, 19212, 15244, 20492, 15500,
            16652, 19852, 12812, 13964, 20236, 17292, 19468, 21644, 14604, 17804, 18956, 17036,
            22284, 18316, 14348, 15500, 15628, 20876, 15884, 19084, 21260, 16268, 15372, 15500,
            18700,
        ];
        let j = judge(&series(|i| f64::from(kib[i]), kib.len()), MEM);
        assert_eq!(
            (j.verdict, j.pattern),
            (Verdict::NoLeak, Pattern::Plateau),
            "{j:?}"
        );
    }

    /// A start-up climb does not inflate the rate the end must keep up.
    #[test]
    fn a_leak_after_startup_is_a_leak() {
        let j = judge(
            &series(
                |i| {
                    let startup = 8000.0 * (i.min(5) as f64);
                    40_000.0 + startup + 300.0 * i as f64 + 1500.0 * noise(i)
                },
                120,
            ),
            MEM,
        );
        assert_eq!(
            (j.verdict, j.pattern),
            (Verdict::Leak, Pattern::Growing),
            "{j:?}"
        );
    }

    /// A warm-up that ended before the final quarter is a plateau,
    /// whatever the segments: growth until 60% and 70% of the recording.
    #[test]
    fn growth_that_stopped_before_the_final_quarter_is_a_plateau() {
        for stop in [60, 70] {
            let j = judge(&series(|i| 50_000.0 + 500.0 * i.min(stop) as f64, 100), MEM);
            assert_eq!(
                (j.verdict, j.pattern),
                (Verdict::NoLeak, Pattern::Plateau),
                "{stop}: {j:?}"
            );
        }
    }

    /// RssAnon (KiB) of a `memtrail record` sampled 100 times at 20 ms
    /// by another (the short soak): start-up, then two small steps as its
    /// allocator settles. Judged on the whole rise, start-up included, the
    /// steps once made it a leak.
    #[test]
    fn allocator_settling_after_startup_is_not_a_leak() {
        let mut kib = vec![852, 1040, 1068, 1168];
        kib.extend([1096; 4]);
        kib.extend([1100; 38]);
        kib.extend([1124; 30]);
        kib.extend([1200; 24]);
        let j = judge(&series(|i| f64::from(kib[i]), kib.len()), MEM);
        assert_eq!(j.verdict, Verdict::NoLeak, "{j:?}");
    }

    #[test]
    fn too_few_points() {
        let j = judge(&series(|i| i as f64 * 1e6, MIN_POINTS - 1), MEM);
        assert_eq!(j.verdict, Verdict::InsufficientData);
    }

    #[test]
    fn immaterial_growth_is_not_a_leak() {
        // 4 KiB per sample for 60 samples: 240 KiB, under 256 KiB.
        let j = judge(&series(|i| 20_000.0 + 4.0 * i as f64, 60), MEM);
        assert_eq!((j.verdict, j.pattern), (Verdict::NoLeak, Pattern::Flat));
    }
}

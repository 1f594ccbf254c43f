//! The synthetic grid behind the sensitivity, false-positive and
//! confidence tables of docs/leak-detection.md:
//! `cargo run --release -p memtrail-diff --example verdicts [-- --quick]`
//! (`cargo xtask verdicts` runs it and can write the tables into the docs).
//!
//! Every recording is one series of known shape at a level of 100 MiB,
//! one sample a second, with Gaussian noise of a given standard deviation
//! (a share of the level), folded into a `Trail` and judged exactly as
//! `memtrail analyze` judges an `anon` series. Noise comes from a fixed
//! seed: the tables are the same on every run.

use memtrail_diff::trail::Trail;
use memtrail_diff::{judge, Judgement, Materiality, Verdict};
use rayon::prelude::*;

const LEVEL: f64 = 102_400.0;
const MEMORY: Materiality = Materiality {
    absolute: 256.0,
    relative: 0.01,
};
const NOISES: [f64; 6] = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0];
const LENGTHS: [usize; 5] = [30, 100, 300, 1000, 3600];
const GROWTHS: [f64; 7] = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
const HEIGHTS: [f64; 5] = [0.5, 1.0, 2.0, 5.0, 20.0];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Grows by this % of the level over the recording, to the end.
    Linear(f64),
    /// Rises by this % linearly until this share of the recording, then flat.
    Plateau(f64, f64),
    /// Rises by this % as 1 - exp(-t/tau), tau a tenth of the recording.
    WarmUp(f64),
    /// Jumps by this % at this share of the recording.
    Step(f64, f64),
    /// Rises by this % and drops back, every this many samples.
    Sawtooth(f64, usize),
    /// A sawtooth of 10% every this many samples whose lows rise by this
    /// % of the level over the recording: a leak under cycles.
    RisingSawtooth(f64, usize),
    Flat,
}

impl Shape {
    fn family(self) -> &'static str {
        match self {
            Shape::Linear(_) => "linear",
            Shape::Plateau(..) => "plateau",
            Shape::WarmUp(_) => "warm-up",
            Shape::Step(..) => "step",
            Shape::Sawtooth(..) => "sawtooth",
            Shape::RisingSawtooth(..) => "sawtooth, rising lows",
            Shape::Flat => "flat",
        }
    }

    /// Whether memtrail's definition calls this a leak: growth that goes
    /// on to the end and is at least the material 1% of the level.
    fn is_leak(self) -> bool {
        matches!(self, Shape::Linear(g) | Shape::RisingSawtooth(g, _) if g >= 1.0)
    }

    fn value(self, i: usize, n: usize) -> f64 {
        let x = i as f64 / (n - 1) as f64;
        let pct = match self {
            Shape::Linear(g) => g * x,
            Shape::Plateau(h, stop) => h * (x / stop).min(1.0),
            Shape::WarmUp(h) => h * (1.0 - (-x * 10.0).exp()),
            Shape::Step(h, at) => {
                if x >= at {
                    h
                } else {
                    0.0
                }
            }
            Shape::Sawtooth(a, period) => a * (i % period) as f64 / period as f64,
            Shape::RisingSawtooth(g, period) => 10.0 * (i % period) as f64 / period as f64 + g * x,
            Shape::Flat => 0.0,
        };
        LEVEL * (1.0 + pct / 100.0)
    }
}

struct Case {
    shape: Shape,
    noise: f64,
    n: usize,
    seed: u64,
}

struct Outcome {
    shape: Shape,
    noise: f64,
    n: usize,
    j: Judgement,
}

/// splitmix64: a small, well-mixed deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next(), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn run(case: &Case) -> Outcome {
    let mut rng = Rng(case.seed);
    let mut trail = Trail::new();
    for i in 0..case.n {
        let v = case.shape.value(i, case.n) + LEVEL * case.noise / 100.0 * rng.normal();
        trail.push(i as f64, v);
    }
    Outcome {
        shape: case.shape,
        noise: case.noise,
        n: case.n,
        j: judge(&trail.buckets(), MEMORY),
    }
}

fn shapes(n: usize) -> Vec<Shape> {
    let mut out: Vec<Shape> = GROWTHS.iter().map(|&g| Shape::Linear(g)).collect();
    for &h in &HEIGHTS {
        for stop in [0.3, 0.5, 0.6, 0.7] {
            out.push(Shape::Plateau(h, stop));
        }
        out.push(Shape::WarmUp(h));
        for at in [0.25, 0.5, 0.75, 0.9] {
            out.push(Shape::Step(h, at));
        }
    }
    for a in [2.0, 10.0] {
        for period in [n / 10, 20] {
            if period >= 4 {
                out.push(Shape::Sawtooth(a, period));
            }
        }
    }
    for g in [2.0, 5.0, 10.0] {
        for period in [n / 10, 20] {
            if period >= 4 {
                out.push(Shape::RisingSawtooth(g, period));
            }
        }
    }
    out.push(Shape::Flat);
    out
}

fn pct(hits: usize, total: usize) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * hits as f64 / total as f64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps: u64 = if quick { 10 } else { 100 };
    let mut cases = Vec::new();
    for &n in &LENGTHS {
        for shape in shapes(n) {
            for &noise in &NOISES {
                for r in 0..reps {
                    cases.push(Case {
                        shape,
                        noise,
                        n,
                        seed: (cases.len() as u64) * 7919 + r,
                    });
                }
            }
        }
    }
    // The persistence sweep: 20% of growth that stops at a share of the
    // recording, 300 samples.
    let stops = [0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
    let mut sweep = Vec::new();
    for &stop in &stops {
        for &noise in &[0.0, 0.25, 1.0] {
            for r in 0..reps {
                sweep.push(Case {
                    shape: Shape::Plateau(20.0, stop),
                    noise,
                    n: 300,
                    seed: 1_000_003 * (sweep.len() as u64 + 1) + r,
                });
            }
        }
    }
    let started = std::time::Instant::now();
    let outcomes: Vec<Outcome> = cases.par_iter().map(run).collect();
    let swept: Vec<Outcome> = sweep.par_iter().map(run).collect();
    eprintln!(
        "verdicts: {} recordings judged in {:.1} s",
        outcomes.len() + swept.len(),
        started.elapsed().as_secs_f64()
    );
    let leak = |o: &Outcome| o.j.verdict == Verdict::Leak;

    println!(
        "Grid: {} recordings ({} per cell), level 100 MiB, one sample a second, Gaussian noise \
         (standard deviation as a share of the level); command: \
         `cargo xtask verdicts{}`.\n",
        outcomes.len() + swept.len(),
        reps,
        if quick { " --quick" } else { "" }
    );

    // Detection of linear growth.
    println!("#### Detection of linear growth (share called a leak)\n");
    let mut header = "| samples | growth over the recording |".to_string();
    for noise in NOISES {
        header += &format!(" noise {noise}% |");
    }
    println!("{header}");
    println!("|---|---|{}", "---|".repeat(NOISES.len()));
    for &n in &LENGTHS {
        for &g in &GROWTHS {
            let mut row = format!("| {n} | {g}% |");
            for &noise in &NOISES {
                let cell: Vec<&Outcome> = outcomes
                    .iter()
                    .filter(|o| o.n == n && o.noise == noise && o.shape == Shape::Linear(g))
                    .collect();
                row += &format!(
                    " {} |",
                    pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
                );
            }
            println!("{row}");
        }
    }

    println!("\n#### Smallest linear growth detected at least 90% of the time\n");
    let mut header = "| samples |".to_string();
    for noise in NOISES {
        header += &format!(" noise {noise}% |");
    }
    println!("{header}");
    println!("|---|{}", "---|".repeat(NOISES.len()));
    for &n in &LENGTHS {
        let mut row = format!("| {n} |");
        for &noise in &NOISES {
            let smallest = GROWTHS.iter().find(|&&g| {
                let cell: Vec<&Outcome> = outcomes
                    .iter()
                    .filter(|o| o.n == n && o.noise == noise && o.shape == Shape::Linear(g))
                    .collect();
                cell.iter().filter(|o| leak(o)).count() * 10 >= cell.len() * 9
            });
            row += &match smallest {
                Some(g) => format!(" {g}% |"),
                None => " > 10% |".into(),
            };
        }
        println!("{row}");
    }

    println!("\n#### Detection of a leak under cycles (10% sawtooth, lows rising)\n");
    let mut header = "| lows rise over the recording |".to_string();
    for noise in NOISES {
        header += &format!(" noise {noise}% |");
    }
    println!("{header}");
    println!("|---|{}", "---|".repeat(NOISES.len()));
    for g in [2.0, 5.0, 10.0] {
        let mut row = format!("| {g}% |");
        for &noise in &NOISES {
            let cell: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| {
                    matches!(o.shape, Shape::RisingSawtooth(x, _) if x == g) && o.noise == noise
                })
                .collect();
            row += &format!(
                " {} |",
                pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
            );
        }
        println!("{row}");
    }

    println!(
        "\nPeriods of 20 samples and a tenth of the recording (at least 4 samples). At 30 \
         samples only the period of 20 fits, 1.5 cycles: never detected (a sawtooth needs \
         several cycles, see Known limits); that is the missing ninth of each row."
    );

    // False positives per non-leak shape.
    println!("\n#### False positives: non-leak shapes called a leak\n");
    println!(
        "Plateaus rise by 0.5–20% and stop at 30–70% of the recording; warm-ups rise by \
         0.5–20% as 1 − e^(−10t); steps of 0.5–20% at 25%, 50%, 75% and 90%; sawtooths of 2% \
         and 10% with periods of 20 samples and a tenth of the recording; all lengths.\n"
    );
    let families = ["plateau", "warm-up", "step", "sawtooth", "flat"];
    let mut header = "| shape |".to_string();
    for noise in NOISES {
        header += &format!(" noise {noise}% |");
    }
    println!("{header}");
    println!("|---|{}", "---|".repeat(NOISES.len()));
    for family in families {
        let mut row = format!("| {family} |");
        for &noise in &NOISES {
            let cell: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.shape.family() == family && o.noise == noise)
                .collect();
            row += &format!(
                " {} |",
                pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
            );
        }
        println!("{row}");
    }
    let mut header = "| shape, noise <= 1% |".to_string();
    for n in LENGTHS {
        header += &format!(" {n} samples |");
    }
    println!("\n{header}");
    println!("|---|{}", "---|".repeat(LENGTHS.len()));
    for family in families {
        let mut row = format!("| {family} |");
        for &n in &LENGTHS {
            let cell: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.shape.family() == family && o.noise <= 1.0 && o.n == n)
                .collect();
            row += &format!(
                " {} |",
                pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
            );
        }
        println!("{row}");
    }
    let mut header = "| step at |".to_string();
    for noise in NOISES {
        header += &format!(" noise {noise}% |");
    }
    println!("\n{header}");
    println!("|---|{}", "---|".repeat(NOISES.len()));
    for at in [0.25, 0.5, 0.75, 0.9] {
        let mut row = format!("| {:.0}% |", at * 100.0);
        for &noise in &NOISES {
            let cell: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| matches!(o.shape, Shape::Step(_, a) if a == at) && o.noise == noise)
                .collect();
            row += &format!(
                " {} |",
                pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
            );
        }
        println!("{row}");
    }

    // Which non-leaks were called leaks, at noise up to 1%.
    let mut wrong: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for o in outcomes
        .iter()
        .filter(|o| !o.shape.is_leak() && o.noise <= 1.0)
    {
        let e = wrong
            .entry(format!(
                "{:?}, {} samples, noise {}%",
                o.shape, o.n, o.noise
            ))
            .or_default();
        e.1 += 1;
        if leak(o) {
            e.0 += 1;
        }
    }
    let mut worst: Vec<(&String, &(usize, usize))> =
        wrong.iter().filter(|(_, c)| c.0 > 0).collect();
    worst.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    println!("\n#### The non-leaks most often called leaks (noise up to 1%)\n");
    println!("| shape (% of the level; share of the recording) | called a leak |");
    println!("|---|---|");
    for (name, (bad, total)) in worst.iter().take(10) {
        println!("| {name} | {bad} of {total} |");
    }

    // Where growth that stops is no longer a leak.
    println!("\n#### Growth that stops: share called a leak (20% rise, 300 samples)\n");
    println!("| growth stops at | flat for the final | noise 0% | noise 0.25% | noise 1% |");
    println!("|---|---|---|---|---|");
    for &stop in &stops {
        let mut row = format!("| {:.0}% | {:.0}% |", stop * 100.0, (1.0 - stop) * 100.0);
        for noise in [0.0, 0.25, 1.0] {
            let cell: Vec<&Outcome> = swept
                .iter()
                .filter(|o| o.noise == noise && o.shape == Shape::Plateau(20.0, stop))
                .collect();
            row += &format!(
                " {} |",
                pct(cell.iter().filter(|o| leak(o)).count(), cell.len())
            );
        }
        println!("{row}");
    }

    // Calibration: is a call with a higher confidence more often right?
    println!("\n#### Confidence calibration\n");
    println!(
        "Truth: linear growth of at least 1% (the material amount) is a leak; every other \
         shape, and linear growth under 1%, is not. The persistence sweep is left out (its \
         truth is the rule being measured).\n"
    );
    println!("| calls | confidence | calls made | right | share right |");
    println!("|---|---|---|---|---|");
    let bands = [
        (0.0, 0.6),
        (0.6, 0.8),
        (0.8, 0.9),
        (0.9, 0.99),
        (0.99, 1.01),
    ];
    for (name, is_leak_call) in [("leak", true), ("no-leak", false)] {
        for (lo, hi) in bands {
            let cell: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| leak(o) == is_leak_call && o.j.confidence >= lo && o.j.confidence < hi)
                .collect();
            let right = cell
                .iter()
                .filter(|o| o.shape.is_leak() == is_leak_call)
                .count();
            println!(
                "| {name} | {lo:.2}–{} | {} | {} | {} |",
                if hi > 1.0 {
                    "1.00".to_string()
                } else {
                    format!("{hi:.2}")
                },
                cell.len(),
                right,
                pct(right, cell.len())
            );
        }
    }
    // AUC of confidence in telling right calls from wrong ones, per kind
    // of call, and of the leak score (confidence of a leak call, its
    // complement otherwise) in telling leaks from non-leaks.
    let auc = |pos: &[f64], neg: &[f64]| -> Option<f64> {
        if pos.is_empty() || neg.is_empty() {
            return None;
        }
        let mut all: Vec<(f64, bool)> = pos
            .iter()
            .map(|&x| (x, true))
            .chain(neg.iter().map(|&x| (x, false)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Mann–Whitney with ties shared.
        let mut rank_sum = 0.0;
        let mut i = 0;
        while i < all.len() {
            let mut j = i;
            while j < all.len() && all[j].0 == all[i].0 {
                j += 1;
            }
            let rank = (i + j + 1) as f64 / 2.0;
            rank_sum += rank * all[i..j].iter().filter(|x| x.1).count() as f64;
            i = j;
        }
        let (p, q) = (pos.len() as f64, neg.len() as f64);
        Some((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
    };
    let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
    println!();
    for (name, is_leak_call) in [("leak", true), ("no-leak", false)] {
        let calls: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| leak(o) == is_leak_call)
            .collect();
        let right: Vec<f64> = calls
            .iter()
            .filter(|o| o.shape.is_leak() == is_leak_call)
            .map(|o| o.j.confidence)
            .collect();
        let wrong: Vec<f64> = calls
            .iter()
            .filter(|o| o.shape.is_leak() != is_leak_call)
            .map(|o| o.j.confidence)
            .collect();
        println!(
            "- {name} calls: {} right, {} wrong; AUC of confidence, right against wrong: {}",
            right.len(),
            wrong.len(),
            show(auc(&right, &wrong))
        );
    }
    let score = |o: &Outcome| {
        if leak(o) {
            o.j.confidence
        } else {
            1.0 - o.j.confidence
        }
    };
    let pos: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.shape.is_leak())
        .map(score)
        .collect();
    let neg: Vec<f64> = outcomes
        .iter()
        .filter(|o| !o.shape.is_leak())
        .map(score)
        .collect();
    println!(
        "- leak score (a leak call's confidence, 1 − a no-leak call's), leaks against \
         non-leaks: AUC {}",
        show(auc(&pos, &neg))
    );
}

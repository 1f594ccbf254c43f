//! The live status line of `record`, `run` and `demo` on a terminal:
//! samples taken, processes seen, the targets' resident memory now and its
//! trend so far. Drawn on standard error only when that is a terminal, so
//! pipes, files and CI logs never see it; the recording itself goes to a
//! file or standard output and is never touched.
//!
//! The trend is the simplest one that cannot mislead: the change of the
//! summed RSS between the first sample and now, per minute. The verdict
//! (warm-ups, sawtooths, page cache) is `memtrail analyze`'s job.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memtrail_collect::Tick;

#[derive(Debug)]
pub struct Status {
    bar: Option<ProgressBar>,
    started: Instant,
    /// When the first RSS was seen, and the total then (KiB).
    first: Option<(Instant, u64)>,
    samples: u64,
}

impl Status {
    /// A status line on standard error if it is a terminal (and `TERM` is
    /// not `dumb`); otherwise one that draws nothing.
    pub fn start() -> Status {
        let tty = std::io::stderr().is_terminal()
            && std::env::var_os("TERM").map_or(true, |t| t != "dumb");
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} memtrail: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("starting");
            bar
        });
        Status {
            bar,
            started: Instant::now(),
            first: None,
            samples: 0,
        }
    }

    /// Shows the tick just written.
    pub fn update(&mut self, tick: &Tick) {
        self.samples += tick.processes.len() as u64;
        let Some(bar) = &self.bar else { return };
        let rss: u64 = tick.processes.iter().filter_map(|p| p.status.vm_rss).sum();
        let now = Instant::now();
        let first = *self.first.get_or_insert((now, rss));
        bar.set_message(line(
            self.samples,
            tick.processes.len(),
            rss,
            first.1,
            now.duration_since(first.0),
            self.started.elapsed(),
        ));
        bar.tick();
    }

    /// Prints a line above the status line (or plainly without one).
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the status line: what follows prints on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `12 samples · 1 process · RSS 40.2 MiB · +2.5 MiB/min · 4s`
fn line(
    samples: u64,
    processes: usize,
    rss_kib: u64,
    first_kib: u64,
    since_first: Duration,
    elapsed: Duration,
) -> String {
    let minutes = since_first.as_secs_f64() / 60.0;
    let trend = if since_first >= Duration::from_secs(2) {
        let per_minute = ((rss_kib as f64 - first_kib as f64) / minutes).round() as i64;
        let plus = if per_minute >= 0 { "+" } else { "" };
        format!(
            "{plus}{}/min",
            memtrail_report::human_kib_signed(per_minute)
        )
    } else {
        "trend after 2s".to_string()
    };
    format!(
        "{} · {} · RSS {} · {trend} · {}s",
        memtrail_report::count(samples as usize, "sample", "samples"),
        memtrail_report::count(processes, "process", "processes"),
        memtrail_report::human_kib(rss_kib),
        elapsed.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_samples_processes_rss_and_the_trend_per_minute() {
        let s = line(
            12,
            1,
            40 * 1024,
            10 * 1024,
            Duration::from_secs(60),
            Duration::from_secs(61),
        );
        assert_eq!(
            s,
            "12 samples · 1 process · RSS 40.0 MiB · +30.0 MiB/min · 61s"
        );
        let early = line(1, 3, 512, 512, Duration::ZERO, Duration::ZERO);
        assert_eq!(
            early,
            "1 sample · 3 processes · RSS 512 KiB · trend after 2s · 0s"
        );
    }
}

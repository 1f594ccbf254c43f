//! The live status line of `record`, `run` and `demo`: drawn on a real
//! pseudo-terminal (util-linux `script` gives the command one), absent
//! when standard error is a pipe, and never in the recording.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use memtrail_format::Record;

use crate::util::*;

/// What the status line always shows (see src/status.rs).
const MARK: &str = " samples · 1 process · RSS ";

/// Runs `sh -c SHELL_COMMAND` with its standard error (and output) on a
/// pseudo-terminal, returning everything the terminal showed.
fn on_a_terminal(shell_command: &str) -> Output {
    let o = Command::new("script")
        .args(["-qfec", shell_command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script runs (util-linux; .ci/run installs it)");
    assert!(
        o.status.success(),
        "{shell_command}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

fn ticks(path: &Path) -> usize {
    records(path)
        .iter()
        .filter(|r| matches!(r, Record::System(_)))
        .count()
}

#[test]
fn record_shows_a_status_line_on_a_terminal_and_clears_it_at_the_end() {
    let holder = hold(4);
    let dir = tempdir();
    let out = dir.path().join("tty.mtr");
    let shown = on_a_terminal(&format!(
        "{} record --pid {} --interval 50ms --count 60 -o - > {}",
        env!("CARGO_BIN_EXE_memtrail"),
        holder.pid(),
        out.display()
    ));
    let screen = stdout(&shown);
    assert!(screen.contains(&format!("60{MARK}")), "{screen:?}");
    assert!(screen.contains("/min"), "a trend after 2s: {screen:?}");
    // Cleared: the last thing drawn erases the line.
    assert!(screen.trim_end().ends_with("\u{1b}[2K"), "{screen:?}");
    // The recording went to standard output untouched by the status line.
    assert_eq!(ticks(&out), 60);
}

#[test]
fn no_status_line_when_standard_error_is_not_a_terminal() {
    let holder = hold(4);
    let dir = tempdir();
    let out = dir.path().join("piped.mtr");
    let o = run(&[
        "record",
        "--pid",
        &holder.pid().to_string(),
        "--interval",
        "50ms",
        "--count",
        "10",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains(MARK), "{err:?}");
    assert!(!err.contains('\u{1b}'), "no escape sequences: {err:?}");
    assert!(err.contains("recorded 10 samples"), "{err:?}");
    assert_eq!(ticks(&out), 10);
}

#[test]
fn run_shows_the_status_line_while_the_command_runs() {
    let dir = tempdir();
    let out = dir.path().join("run.mtr");
    let shown = on_a_terminal(&format!(
        "{} run --interval 50ms -o {} -- python3 {} 3",
        env!("CARGO_BIN_EXE_memtrail"),
        out.display(),
        program("steady_leak.py").display()
    ));
    let screen = stdout(&shown);
    assert!(screen.contains(MARK), "{screen:?}");
    assert!(screen.contains("memtrail: recorded "), "{screen:?}");
    assert!(ticks(&out) > 10);
}

#[test]
fn demo_shows_the_live_status_and_ends_with_the_verdict_and_the_report() {
    let dir = tempdir();
    let out = dir.path().join("demo.mtr");
    let shown = on_a_terminal(&format!(
        "{} demo --duration 6s -o {}",
        env!("CARGO_BIN_EXE_memtrail"),
        out.display()
    ));
    let screen = stdout(&shown);
    assert!(screen.contains(MARK), "{screen:?}");
    let after_status = screen
        .rsplit("\u{1b}[2K")
        .next()
        .expect("the status line was cleared");
    assert!(
        after_status.contains("What was observed:"),
        "{after_status}"
    );
    let verdict = after_status
        .split("The verdict (memtrail analyze):")
        .nth(1)
        .unwrap_or_else(|| panic!("no verdict: {after_status}"));
    assert!(verdict.contains("LEAK pid"), "{verdict}");
    // One leak; a pyenv python3 adds its shims (bash) as short-lived
    // processes too short to judge.
    assert!(
        verdict.contains("\n1 of ") && verdict.contains("(1 judged;"),
        "{verdict}"
    );

    // What was observed and the verdict tell one story (regression: 103 vs
    // 100 samples, 64.1 vs 63.6 MiB, 8.8 vs 8.9 GiB/h, another region):
    // the same samples judged, RSS figures, rate and top region.
    let observed = after_status
        .split("What was observed:")
        .nth(1)
        .and_then(|o| o.split("The recording is in").next())
        .unwrap();
    let rss_line = observed
        .lines()
        .find(|l| l.trim_start().starts_with("RSS "))
        .unwrap();
    let words: Vec<&str> = rss_line.split_whitespace().collect();
    let (first, last) = (
        format!("{} {}", words[1], words[2]),
        format!("{} {}", words[4], words[5]),
    );
    let judged = words[words.iter().position(|w| *w == "judged").unwrap() - 2];
    let rate = observed
        .lines()
        .find_map(|l| l.trim().strip_prefix("growth "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let region = observed
        .lines()
        .find(|l| l.contains(" grown ") || l.contains(" new "))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap();
    let leak_line = verdict.lines().find(|l| l.starts_with("LEAK pid")).unwrap();
    assert!(
        leak_line.contains(&format!(" {judged} samples")),
        "{judged}: {leak_line}"
    );
    let rss_finding = verdict.lines().find(|l| l.contains(" rss ")).unwrap();
    assert!(
        rss_finding.contains(rate) && rss_finding.ends_with(&format!("{first} -> {last}")),
        "observed {first} -> {last} at {rate}; verdict: {rss_finding}"
    );
    let regions = verdict.lines().find(|l| l.contains("regions: ")).unwrap();
    assert!(
        regions.contains(region),
        "observed top region {region}; verdict: {regions}"
    );
    // The program marked its steps through the events channel, and the
    // last line names the HTML report, written beside the recording.
    assert!(
        verdict.contains("leak starts") && verdict.contains("halfway"),
        "{verdict}"
    );
    let html = out.with_extension("html");
    let last = verdict.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("The report") && last.contains(&*html.to_string_lossy()),
        "{last:?}"
    );
    let page = std::fs::read_to_string(&html).expect("the demo wrote its HTML report");
    assert!(page.contains("<svg"), "no chart in {}", html.display());
    assert!(page.contains("halfway"), "no marker in {}", html.display());
}

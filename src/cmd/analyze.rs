//! `memtrail analyze FILE|-`: leak verdicts, live while a stream arrives.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use memtrail_diff::{Analyzer, Verdict};
use memtrail_format::Record;
use memtrail_report::analysis::{self, Source};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::{AnalyzeArgs, ReportFormat};
use crate::input::{Item, Lanes};

pub fn run(args: AnalyzeArgs) -> anyhow::Result<u8> {
    // Live, Ctrl-C means "stop reading and give the verdict"; a second one
    // quits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    crate::input::refuse_terminal_stdin(
        &args.input,
        "memtrail record --pid PID | memtrail analyze -",
    )?;
    let plan = crate::input::plan(
        &args.input,
        &args.more,
        args.follow.then(|| Arc::clone(&stop)),
    )?;
    let name = plan.name.clone();
    let live = plan.live;
    let mut out = std::io::stdout().lock();
    let (analyzer, complete) = if live {
        follow(plan.open()?, &args, &mut out)?
    } else {
        // A file or a directory: read on every core, each lane folding
        // its share of the processes.
        let (lanes, complete) = plan.read_in_lanes(Lanes {
            note_skipped: false,
            stop: Some(Arc::clone(&stop)),
            start: |_| (Analyzer::with_shards(1), crate::native::Names::new()),
            each: |(analyzer, names): &mut (Analyzer, crate::native::Names), item| {
                if let Item::Record(record) = item {
                    analyzer.add(names.pass(record));
                }
            },
            finish: |(analyzer, _)| analyzer,
        })?;
        let analyzer = Analyzer::merge(lanes);
        (analyzer, complete)
    };
    if !complete {
        crate::input::note_incomplete(&name, "the verdicts cover");
    }
    let source = Source { name, complete };
    let analysis = print(&mut out, &analyzer, &source, args.format, args.all, live)?;
    if args.fail_on_leak && analysis.leaks() > 0 {
        return Ok(crate::EXIT_LEAK);
    }
    if args.fail_on_leak
        && analysis
            .processes
            .iter()
            .all(|p| p.verdict == Verdict::InsufficientData)
    {
        eprintln!(
            "memtrail: --fail-on-leak: no process could be judged (each needs {} samples); \
             exiting with status {} (no evidence is not a pass)",
            memtrail_diff::MIN_POINTS,
            crate::EXIT_UNJUDGED,
        );
        return Ok(crate::EXIT_UNJUDGED);
    }
    Ok(0)
}

/// Folds a stream record by record as it arrives, printing the verdicts so
/// far every `--update`; returns them and whether the end frame came.
fn follow(
    mut input: crate::input::Input,
    args: &AnalyzeArgs,
    out: &mut impl Write,
) -> anyhow::Result<(Analyzer, bool)> {
    let mut analyzer = Analyzer::new();
    let mut names = crate::native::Names::new();
    let mut complete = false;
    let mut last_update = Instant::now();
    let name = input.name.clone();
    while let Some(frame) = input.reader.next() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        input.warn();
        let end = matches!(frame.record, Record::End(_));
        analyzer.add(names.pass(frame.record));
        if end {
            complete = true;
            break;
        }
        if last_update.elapsed() >= args.update.0 {
            last_update = Instant::now();
            let source = Source {
                name: name.clone(),
                complete: false,
            };
            print(out, &analyzer, &source, args.format, args.all, true)?;
        }
    }
    input.warn();
    Ok((analyzer, complete))
}

fn print(
    out: &mut impl Write,
    analyzer: &Analyzer,
    source: &Source,
    format: ReportFormat,
    all: bool,
    live: bool,
) -> anyhow::Result<memtrail_diff::Analysis> {
    let analysis = analyzer.analysis();
    match format {
        ReportFormat::Json if live => {
            // One document per line, so a consumer can read updates as
            // they come.
            serde_json::to_writer(&mut *out, &analysis::json(&analysis, source))?;
            writeln!(out)?;
        }
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &analysis::json(&analysis, source))?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            if live {
                let when = if source.complete { "final" } else { "so far" };
                writeln!(out, "--- {when}: {} ---", analysis::status_line(&analysis))?;
            }
            write!(out, "{}", analysis::text_in(&analysis, all, text_width()))?;
        }
    }
    out.flush()?;
    Ok(analysis)
}

/// Columns for the text verdicts: $COLUMNS when set (as shells export
/// it), else standard output's terminal, else 80; at most 240.
fn text_width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    let terminal = || terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0 as usize);
    columns.or_else(terminal).unwrap_or(80).clamp(60, 240)
}

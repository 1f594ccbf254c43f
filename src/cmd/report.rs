//! `memtrail report FILE`: a terminal or Markdown summary, and with
//! `--html` a self-contained page with charts.

use std::io::Write;

use anyhow::Context;
use memtrail_report::analysis::Source;
use memtrail_report::html::Html;
use memtrail_report::markdown::Markdown;
use memtrail_report::terminal::Text;
use memtrail_report::{Format, ReportBuilder};

use crate::cli::{ReportArgs, SummaryFormat};

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    crate::input::refuse_terminal_stdin(
        &args.input,
        "memtrail record --pid PID --count 60 | memtrail report -",
    )?;
    let mut input = crate::input::open(&args.input, &args.more, None)?;
    let name = input.name.clone();
    let mut builder = ReportBuilder::new();
    let mut names = crate::native::Names::new();
    // Folded in batches, the processes of each in parallel.
    let mut batch = Vec::new();
    let complete = input.read_all(|record| {
        batch.push(names.pass(record));
        if batch.len() >= crate::cmd::analyze::BATCH {
            builder.add_all(batch.drain(..));
        }
        Ok(())
    })?;
    builder.add_all(batch);
    if !complete {
        input.note_incomplete("the report covers");
    }
    let report = builder.finish(Source { name, complete });

    if let Some(path) = &args.html {
        let page = Html.render(&report);
        std::fs::write(path, page).with_context(|| {
            crate::output::Writing(format!("cannot write the HTML report {}", path.display()))
        })?;
        eprintln!("memtrail: wrote {}", path.display());
    }
    let text = match args.format {
        // anstream drops the colours when standard output is not a
        // terminal, or NO_COLOR is set.
        SummaryFormat::Text => Text { color: true }.render(&report),
        SummaryFormat::Markdown => Markdown.render(&report),
    };
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

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
use crate::input::{Item, Lanes};

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    crate::input::refuse_terminal_stdin(
        &args.input,
        "memtrail record --pid PID --count 60 | memtrail report -",
    )?;
    let plan = crate::input::plan(&args.input, &args.more, None)?;
    let name = plan.name.clone();
    let (builder, complete) = if plan.live {
        let mut input = plan.open()?;
        let mut builder = ReportBuilder::new();
        let mut names = crate::native::Names::new();
        let complete = input.read_all(|record| {
            builder.add(names.pass(record));
            Ok(())
        })?;
        (builder, complete)
    } else {
        // A file or a directory: read on every core, each lane following
        // its share of the processes from the recording's start, the
        // first also counting the ticks of every sample.
        let start_us = plan.first_time_us();
        let (lanes, complete) = plan.read_in_lanes(Lanes {
            note_skipped: true,
            stop: None,
            start: |_| {
                let builder = start_us.map_or_else(ReportBuilder::new, ReportBuilder::starting_at);
                (builder, crate::native::Names::new())
            },
            each: |(builder, names): &mut (ReportBuilder, crate::native::Names), item| match item {
                Item::Record(record) => builder.add(names.pass(record)),
                Item::Skipped(id) => builder.add_unread(id),
            },
            finish: |(builder, _)| builder,
        })?;
        let builder = ReportBuilder::merge(lanes);
        (builder, complete)
    };
    if !complete {
        crate::input::note_incomplete(&name, "the report covers");
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

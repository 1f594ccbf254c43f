//! `memtrail report FILE`: a terminal or Markdown summary, and with
//! `--html` a self-contained page with charts.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use memtrail_format::Record;
use memtrail_report::analysis::Source;
use memtrail_report::html::Html;
use memtrail_report::markdown::Markdown;
use memtrail_report::terminal::Text;
use memtrail_report::{Format, ReportBuilder};

use crate::cli::{ReportArgs, SummaryFormat};

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    if args.input.as_os_str() == "-" && std::io::stdin().is_terminal() {
        anyhow::bail!(
            "standard input is a terminal, not a recording: pipe one in \
             (`memtrail record --pid PID --count 60 | memtrail report -`) or name a file"
        );
    }
    let mut input = crate::input::open(&args.input, None)?;
    let name = input.name.clone();
    let mut builder = ReportBuilder::new();
    let mut complete = false;
    while let Some(frame) = input.reader.next() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        input.warn();
        complete |= matches!(frame.record, Record::End(_));
        builder.add(frame.record);
    }
    input.warn();
    if !complete {
        eprintln!(
            "memtrail: note: {name} has no end frame (still being written, or its recorder \
             was killed): the report covers what was read"
        );
    }
    let report = builder.finish(Source { name, complete });

    if let Some(path) = &args.html {
        let page = Html.render(&report);
        std::fs::write(path, page)
            .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
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

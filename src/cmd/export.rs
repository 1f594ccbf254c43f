//! `memtrail export FILE --format csv|ndjson|openmetrics`: one row per
//! process sample.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;
use memtrail_format::Record;
use memtrail_report::export::{csv::Csv, ndjson::Ndjson, openmetrics::OpenMetrics, Export, Row};

use crate::cli::{ExportArgs, ExportFormat};

pub fn run(args: ExportArgs) -> anyhow::Result<u8> {
    crate::input::refuse_terminal_stdin(
        &args.input,
        "memtrail record --pid PID --count 60 | memtrail export - --format csv",
    )?;
    let mut input = crate::input::open(&args.input, &args.more, None)?;
    let (mut out, out_name): (Box<dyn Write>, String) = match &args.output {
        Some(path) => (
            Box::new(BufWriter::new(File::create(path).with_context(|| {
                crate::output::Writing(format!("cannot create the export file {}", path.display()))
            })?)),
            path.display().to_string(),
        ),
        None => (
            Box::new(BufWriter::new(std::io::stdout().lock())),
            "standard output".into(),
        ),
    };
    let mut format: Box<dyn Export> = match args.format {
        ExportFormat::Csv => Box::new(Csv),
        ExportFormat::Ndjson => Box::new(Ndjson),
        ExportFormat::Openmetrics => Box::new(OpenMetrics::default()),
    };
    let write_err = || crate::output::Writing(format!("cannot write the export to {out_name}"));
    format.begin(&mut out).with_context(write_err)?;
    let complete = input.read_all(|record| {
        if let Record::Process(s) = &record {
            format.row(&Row::of(s), &mut out).with_context(write_err)?;
        }
        Ok(())
    })?;
    if !complete {
        input.note_incomplete("the export covers");
    }
    format.end(&mut out).with_context(write_err)?;
    out.flush().with_context(write_err)?;
    Ok(0)
}

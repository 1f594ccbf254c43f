//! `memtrail snap`: one snapshot as a table, JSON or a binary file.

use std::io::Write;

use anyhow::Context;
use memtrail_collect::Collector;
use memtrail_format::{Detail, End, EndReason, Record, Writer};
use memtrail_report::snapshot::{self, Filter, Sort};

use crate::cli::{SnapArgs, SnapFormat, SortKey};
use crate::output::open_binary;

pub fn run(args: SnapArgs) -> anyhow::Result<u8> {
    let (target, description) = super::target(&args.target, &args.collect)?;
    let single = args.target.pid.is_some() && !args.collect.children;
    let detail = args.detail.map(Detail::from).unwrap_or(if single {
        Detail::Maps
    } else {
        Detail::Summary
    });
    let mut collector = Collector::new(super::config(
        target,
        detail,
        args.collect.redact_cmdline,
        1,
    ))?;
    let header = super::header(&collector, description, detail, None)?;
    let tick = collector.sample();
    for notice in &tick.notices {
        // Notices quote paths and kernel text: escape before the terminal.
        eprintln!(
            "memtrail: warning: {}",
            memtrail_report::printable(&notice.message)
        );
    }

    if let Some(path) = &args.output {
        let out = open_binary(path)?;
        let name = out.name.clone();
        let processes = tick.processes.len();
        let write = || -> anyhow::Result<()> {
            let mut writer = Writer::new(out.sink, &header)?.keyframe_interval(1);
            writer.write(&Record::System(Box::new(tick.system)))?;
            for notice in tick.notices {
                writer.write(&Record::Notice(Box::new(notice)))?;
            }
            // Moved, not cloned: a sample can hold tens of thousands of
            // regions.
            for sample in tick.processes {
                writer.write(&Record::Process(Box::new(sample)))?;
            }
            writer.finish(&End {
                time_us: crate::recorder::now_us(),
                reason: EndReason::Completed,
                samples: processes as u64,
            })?;
            Ok(())
        };
        write().with_context(|| {
            crate::output::Writing(format!("cannot write the snapshot to {name}"))
        })?;
        if out.path.is_some() {
            eprintln!(
                "memtrail: wrote a snapshot of {} to {name}",
                memtrail_report::count(processes, "process", "processes")
            );
        }
        return Ok(0);
    }

    let filter = Filter {
        min_rss_kb: args.min_rss.map(|s| s.kib()).unwrap_or(0),
        anon_only: args.anon,
    };
    let sort = match args.sort {
        SortKey::Rss => Sort::Rss,
        SortKey::Pss => Sort::Pss,
        SortKey::Anon => Sort::Anon,
        SortKey::Swap => Sort::Swap,
        SortKey::Size => Sort::Size,
        SortKey::Addr => Sort::Addr,
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        SnapFormat::Table => {
            let text = snapshot::table(&tick.processes, &filter, sort);
            stdout.write_all(text.as_bytes())?;
        }
        SnapFormat::Json => {
            let doc = snapshot::json_doc(&header, &tick.system, &tick.processes, &filter, sort);
            // Streamed, through a buffer: one write(2) per 64 KiB.
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut stdout);
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
            out.flush()?;
        }
    }
    stdout.flush()?;
    Ok(0)
}

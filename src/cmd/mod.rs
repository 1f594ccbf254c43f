//! One module per command. Each turns validated arguments into the library
//! collaborators and returns the exit status.

pub(crate) mod analyze;
mod attach;
mod demo;
mod diff;
mod dump;
mod export;
mod mark;
mod python_hook;
mod record;
mod report;
mod run;
mod serve;
mod snap;

use anyhow::Context;
use memtrail_collect::{Config, Target};
use memtrail_format::{Detail, Header};

use crate::cli::{Cli, CollectArgs, Command, TargetArgs};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Snap(args) => snap::run(args),
        Command::Record(args) => record::run(args),
        Command::Run(args) => run::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Report(args) => report::run(args),
        Command::Export(args) => export::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Mark(args) => mark::run(args),
        Command::Attach(args) => attach::run(args),
        Command::PythonHook(args) => python_hook::run(args),
        Command::Demo(args) => demo::run(args),
    }
}

/// The raw target flags, validated into a collector target and a
/// description for the recording's header.
fn target(args: &TargetArgs, collect: &CollectArgs) -> anyhow::Result<(Target, String)> {
    if collect.children && args.pid.is_none() {
        anyhow::bail!(
            "--children follows the descendants of one process: use it with --pid PID \
             (--name and --all already select every matching process)"
        );
    }
    if let Some(pid) = args.pid {
        if collect.children {
            return Ok((Target::Tree(pid), format!("--pid {pid} --children")));
        }
        return Ok((Target::Pid(pid), format!("--pid {pid}")));
    }
    if let Some(name) = &args.name {
        let re = regex::Regex::new(name)
            .with_context(|| {
                format!(
                    "--name {name:?} is not a valid regular expression: escape special \
                     characters with a backslash (e.g. --name 'python3\\.11' or --name '\\(sd-pam\\)')"
                )
            })?;
        return Ok((Target::Name(re), format!("--name {name}")));
    }
    Ok((Target::All, "--all".to_string()))
}

fn config(target: Target, detail: Detail, redact_cmdline: bool, maps_every: u32) -> Config {
    let mut config = Config::new(target, detail);
    config.redact_cmdline = redact_cmdline;
    config.maps_every = maps_every;
    config
}

fn header(
    collector: &memtrail_collect::Collector,
    target: String,
    detail: Detail,
    interval: Option<crate::units::Interval>,
) -> anyhow::Result<Header> {
    let host = collector
        .host()
        .context("cannot read the host facts a recording needs")?;
    Ok(Header {
        writer: format!("memtrail {}", env!("CARGO_PKG_VERSION")),
        host,
        started_us: crate::recorder::now_us(),
        target,
        detail,
        // 0: the adaptive schedule (docs/format.md).
        interval_us: interval.map(|i| match i {
            crate::units::Interval::Fixed(d) => d.as_micros() as u64,
            crate::units::Interval::Auto => 0,
        }),
    })
}

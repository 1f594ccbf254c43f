//! `memtrail record`: sample targets at an interval into a binary stream.

use anyhow::Context;
use memtrail_collect::{Collector, Tick};
use memtrail_format::Writer;
use memtrail_report::count;

use crate::cli::RecordArgs;
use crate::events::Events;
use crate::output::open_binary;
use crate::recorder::{self, Limits, Next, StopCause, TickHook};
use crate::signals::StopSignals;

pub fn run(args: RecordArgs) -> anyhow::Result<u8> {
    let (target, description) = super::target(&args.target, &args.collect)?;
    let detail = args.sampling.detail.into();
    let mut collector = Collector::new(super::config(
        target,
        detail,
        args.collect.redact_cmdline,
        args.sampling.maps_every,
    ))?;
    let interval = args.sampling.interval.0;
    let header = super::header(&collector, description, detail, Some(interval))?;
    let out = open_binary(&args.output)?;
    let mut events = args.events.as_deref().map(Events::open).transpose()?;
    let signals = StopSignals::install()?;
    let mut writer = Writer::new(out.sink, &header).with_context(|| {
        crate::output::Writing(format!("cannot write the recording to {}", out.name))
    })?;
    let limits = Limits {
        duration: args.duration.map(|d| d.0),
        count: args.count,
    };
    let finished = recorder::sample_loop(
        &mut collector,
        &mut writer,
        interval,
        limits,
        &signals,
        &mut WatchTargets,
        events.as_mut(),
        &out.name,
    )?;
    recorder::finish(writer, &finished, &out.name)?;
    if out.path.is_some() {
        eprintln!(
            "memtrail: recorded {} of {} in {} to {} ({})",
            count(finished.samples as usize, "sample", "samples"),
            count(finished.processes.len(), "process", "processes"),
            count(finished.ticks as usize, "tick", "ticks"),
            out.name,
            describe_end(&finished.reason)
        );
    }
    Ok(0)
}

/// Stops when the targets are gone; any signal stops.
struct WatchTargets;

impl TickHook for WatchTargets {
    fn after_tick(&mut self, _tick: &Tick, collector: &Collector) -> Next {
        if collector.targets_alive() {
            Next::Continue
        } else {
            Next::Stop(StopCause::TargetExited)
        }
    }
    fn on_signal(&mut self, _sig: i32) -> bool {
        true
    }
}

pub fn describe_end(reason: &memtrail_format::EndReason) -> String {
    use memtrail_format::EndReason::*;
    match reason {
        Completed => "completed".into(),
        TargetExited => "the target exited".into(),
        Interrupted(sig) => format!("stopped by {sig}"),
        Error(e) => format!("stopped by an error: {e}"),
    }
}

//! `memtrail record`: sample targets at an interval into a binary stream.

use anyhow::Context;
use memtrail_collect::{Collector, Tick};
use memtrail_report::count;

use crate::cli::RecordArgs;
use crate::events::Events;
use crate::output::open_binary;
use crate::recorder::{self, Limits, Next, StopCause, TickHook};
use crate::rotate::{Rotation, Sink};
use crate::signals::StopSignals;
use crate::units::Interval;
use memtrail_format::Writer;

pub fn run(args: RecordArgs) -> anyhow::Result<u8> {
    let (target, description) = super::target(&args.target, &args.collect)?;
    let detail = args.sampling.detail.into();
    let mut collector = Collector::new(super::config(
        target,
        detail,
        args.collect.redact_cmdline,
        args.sampling.maps_every,
    ))?;
    let interval = args
        .sampling
        .interval
        .unwrap_or(Interval::Fixed(std::time::Duration::from_secs(1)));
    let header = super::header(&collector, description, detail, Some(interval))?;
    let uncompressed = args.sampling.uncompressed;
    let (mut rotation, out_name, out_path, mut writer) = match args.rotate {
        Some(rotate) => {
            let (rotation, writer) =
                Rotation::start(&args.output, rotate, args.keep, header, uncompressed)?;
            let name = args.output.display().to_string();
            (Some(rotation), name, Some(args.output.clone()), writer)
        }
        None => {
            let out = open_binary(&args.output)?;
            let writer = recorder::writer(out.sink, &header, uncompressed).with_context(|| {
                crate::output::Writing(format!("cannot write the recording to {}", out.name))
            })?;
            (None, out.name, out.path, writer)
        }
    };
    let mut events = args.events.as_deref().map(Events::open).transpose()?;
    let signals = StopSignals::install()?;
    let limits = Limits {
        duration: args.duration.map(|d| d.0),
        count: args.count,
    };
    let mut rotate = |writer: &mut Writer<Sink>, samples: u64| -> anyhow::Result<()> {
        match rotation.as_mut() {
            Some(rotation) => rotation.after_tick(writer, samples),
            None => Ok(()),
        }
    };
    let finished = recorder::sample_loop(
        &mut collector,
        &mut writer,
        interval,
        limits,
        &signals,
        &mut WatchTargets,
        events.as_mut(),
        &out_name,
        Some(&mut rotate),
    )?;
    match &rotation {
        Some(rotation) => {
            // The last segment's end frame counts its own samples.
            let mut last = finished.clone_counts();
            last.samples = rotation.samples_in_current(finished.samples);
            let current = rotation.current().display().to_string();
            recorder::finish(writer, &last, &current)?;
        }
        None => recorder::finish(writer, &finished, &out_name)?,
    }
    if let Some(path) = &out_path {
        let segments = match &rotation {
            Some(r) => format!(" ({} segments written)", r.segments),
            None => String::new(),
        };
        eprintln!(
            "memtrail: recorded {} of {} in {} to {}{segments} ({})",
            count(finished.samples as usize, "sample", "samples"),
            count(finished.processes.len(), "process", "processes"),
            count(finished.ticks as usize, "tick", "ticks"),
            path.display(),
            describe_end(&finished.reason)
        );
    }
    Ok(0)
}

/// Stops when the targets are gone; any signal stops (`record`, `attach`).
pub(crate) struct WatchTargets;

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

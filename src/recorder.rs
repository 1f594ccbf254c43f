//! The sampling loop shared by `record`, `run` and `demo`: tick, write,
//! flush, wait for the next tick or a signal.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use memtrail_collect::{Collector, Tick};
use memtrail_format::{EndReason, Header, ProcessId, Record, WriteError, Writer};

use crate::events::Events;
use crate::output::Writing;
use crate::signals::{self, StopSignals, Wake};
use crate::status::Status;
use crate::units::Interval;

/// When to stop, besides signals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub duration: Option<Duration>,
    pub count: Option<u64>,
}

/// What the caller decides after each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop(StopCause),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    TargetExited,
    Completed,
}

/// How a sampling loop ended.
#[derive(Debug)]
pub struct Finished {
    pub reason: EndReason,
    pub samples: u64,
    pub ticks: u64,
    /// Every process seen, for summaries.
    pub processes: HashSet<ProcessId>,
}

impl Finished {
    /// The same reason and counts, without the set of processes.
    pub fn clone_counts(&self) -> Finished {
        Finished {
            reason: self.reason.clone(),
            samples: self.samples,
            ticks: self.ticks,
            processes: HashSet::new(),
        }
    }
}

/// Hooks for the caller: `run` reaps its child, `record` just watches.
pub trait TickHook {
    /// Called after each tick has been written and flushed.
    fn after_tick(&mut self, tick: &Tick, collector: &Collector) -> Next;
    /// Called for each signal; return true to stop now.
    fn on_signal(&mut self, sig: i32) -> bool;
    /// Records to append after the last tick (e.g. the exit of `run`'s child).
    fn final_records(&mut self, _collector: &Collector) -> Vec<Record> {
        Vec::new()
    }
}

/// The adaptive schedule (`--interval auto`, `run`'s default): the time
/// from a tick to the next when the recording is `age` old.
///
/// Every 50 ms at first, so a job of a second gets 20 samples; then a
/// twentieth of the age (about 14 samples per doubling) up to 1 s at
/// 20 s; every second until 20 minutes; then 1/1200 of the age up to 10 s
/// (at 3 h 20 min). docs/collection.md tabulates what this costs for jobs
/// of a second to a day.
pub fn auto_interval(age: Duration) -> Duration {
    const FAST: Duration = Duration::from_millis(50);
    const SECOND: Duration = Duration::from_secs(1);
    const SLOWEST: Duration = Duration::from_secs(10);
    if age < Duration::from_secs(20 * 60) {
        (age / 20).clamp(FAST, SECOND)
    } else {
        (age / 1200).clamp(SECOND, SLOWEST)
    }
}

/// The time from a tick to the next under `interval`.
pub fn next_interval(interval: Interval, age: Duration) -> Duration {
    match interval {
        Interval::Fixed(d) => d,
        Interval::Auto => auto_interval(age),
    }
}

/// Called after each tick with the writer and the process samples written
/// so far (see [`sample_loop`]).
pub type BetweenTicks<'a, W> = dyn FnMut(&mut Writer<W>, u64) -> anyhow::Result<()> + 'a;

/// How often the events channel is read between ticks: markers and
/// censuses reach the recording (and a live reader) without waiting for a
/// long interval, and a FIFO's buffer does not fill up.
const EVENTS_POLL: Duration = Duration::from_millis(100);

/// Keeps the recorder's memory to what it holds.
///
/// A recorder at `maps` or `full` detail holds one list of regions per
/// process (about 180 KB for a process of 1,000 regions) and replaces it
/// with a fresh one every few ticks. glibc serves allocations of 128 KiB
/// and more with their own `mmap`, given back when freed, but raises that
/// threshold to the size of the largest block freed so far: after the first
/// lists are replaced, the new ones come from the heaps of the reading
/// threads, which keep freed space. Fixing the threshold at glibc's own
/// default (which `mallopt` does) keeps large lists out of those heaps:
/// on 50 processes of 1,000 regions the peak RSS went from 20.4 to 18.3
/// MiB (docs/performance.md, "Recorder memory"). Not glibc: nothing to do.
#[allow(unsafe_code)] // mallopt(3) has no safe wrapper
fn keep_large_blocks_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it is called
    // before the recorder's threads allocate their lists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Samples until a limit, the hook or a signal says stop, writing every
/// tick as it is taken, and the events read from `events` (if any) as they
/// arrive. `between_ticks`, if any, is called before each tick but the
/// first is written, with the process samples written so far (`record
/// --rotate` starts new segments there, so no segment is left empty).
///
/// Write errors end the loop and are returned; the caller has already told
/// the user where the file is, and everything flushed before is readable.
#[allow(clippy::too_many_arguments)]
pub fn sample_loop<W: Write>(
    collector: &mut Collector,
    writer: &mut Writer<W>,
    interval: Interval,
    limits: Limits,
    signals: &StopSignals,
    hook: &mut dyn TickHook,
    mut events: Option<&mut Events>,
    output_name: &str,
    mut between_ticks: Option<&mut BetweenTicks<'_, W>>,
) -> anyhow::Result<Finished> {
    let put_events = |writer: &mut Writer<W>, events: &mut Option<&mut Events>, last: bool| {
        let Some(events) = events.as_deref_mut() else {
            return Ok(());
        };
        for record in events.drain(last) {
            writer.write(&record)?;
        }
        writer.flush()
    };
    keep_large_blocks_apart();
    let started = Instant::now();
    let mut finished = Finished {
        reason: EndReason::Completed,
        samples: 0,
        ticks: 0,
        processes: HashSet::new(),
    };
    let mut next_tick = started;
    // Cleared when the loop ends, however it ends (the Drop of Status).
    let mut status = Status::start();
    loop {
        let mut tick = collector.sample();
        for notice in &tick.notices {
            // Notices quote paths and kernel text: escape before the terminal.
            status.println(&format!(
                "memtrail: warning: {}",
                memtrail_report::printable(&notice.message)
            ));
        }
        // Between the last tick and this one, never after the last: a
        // new segment always gets a tick.
        if finished.ticks > 0 {
            if let Some(between) = between_ticks.as_deref_mut() {
                between(writer, finished.samples)?;
            }
        }
        write_tick(writer, &mut tick, &mut finished)
            .with_context(|| Writing(format!("cannot write the recording to {output_name}")))?;
        put_events(writer, &mut events, false)
            .with_context(|| Writing(format!("cannot write the recording to {output_name}")))?;
        finished.ticks += 1;
        status.update(&tick);

        let mut stop = hook.after_tick(&tick, collector);
        if stop == Next::Continue {
            let counted = limits.count.is_some_and(|n| finished.ticks >= n);
            let timed = limits.duration.is_some_and(|d| started.elapsed() >= d);
            if counted || timed {
                stop = Next::Stop(StopCause::Completed);
            }
        }
        if let Next::Stop(cause) = stop {
            finished.reason = match cause {
                StopCause::TargetExited => EndReason::TargetExited,
                StopCause::Completed => EndReason::Completed,
            };
            break;
        }

        // The schedule; if a tick overran, start the next one now rather
        // than bunching up to catch up.
        next_tick += next_interval(interval, next_tick.saturating_duration_since(started));
        let now = Instant::now();
        if next_tick < now {
            next_tick = now;
        }
        if let Some(d) = limits.duration {
            next_tick = next_tick.min(started + d);
        }
        // Signals are looked at after every tick, even one that overran:
        // a recorder whose ticks take longer than its interval must still
        // stop at Ctrl-C.
        let mut interrupted = None;
        loop {
            let mut wait = next_tick.saturating_duration_since(Instant::now());
            if events.is_some() {
                wait = wait.min(EVENTS_POLL);
            }
            match signals.wait(wait) {
                Wake::Signal(sig) => {
                    if hook.on_signal(sig) {
                        interrupted = Some(sig);
                        break;
                    }
                }
                Wake::Tick => {
                    if Instant::now() >= next_tick {
                        break;
                    }
                    put_events(writer, &mut events, false).with_context(|| {
                        Writing(format!("cannot write the recording to {output_name}"))
                    })?;
                }
            }
        }
        if let Some(sig) = interrupted {
            finished.reason = EndReason::Interrupted(signals::name(sig));
            break;
        }
    }
    // What the program wrote last, before it exited or was interrupted.
    put_events(writer, &mut events, true)
        .with_context(|| Writing(format!("cannot write the recording to {output_name}")))?;
    status.finish();
    for record in hook.final_records(collector) {
        writer
            .write(&record)
            .with_context(|| Writing(format!("cannot write the recording to {output_name}")))?;
    }
    Ok(finished)
}

/// The writer of a recording: format version 2 (compressed blocks) unless
/// `uncompressed`.
pub fn writer<W: Write>(
    out: W,
    header: &Header,
    uncompressed: bool,
) -> Result<Writer<W>, WriteError> {
    if uncompressed {
        Writer::new(out, header)
    } else {
        Writer::compressed(out, header)
    }
}

/// Writes one tick and flushes it. In format version 1 every frame is
/// flushed: a recorder killed at any moment loses at most the frame it was
/// writing, and a reader downstream of a pipe sees each frame as soon as it
/// exists. In version 2 the tick is one block (or one a second, for a tick
/// that takes longer), flushed when it ends: a killed recorder loses the
/// tick in hand.
///
/// Samples are moved into their records and back rather than cloned: a
/// sample can hold tens of thousands of regions.
fn write_tick<W: Write>(
    writer: &mut Writer<W>,
    tick: &mut Tick,
    finished: &mut Finished,
) -> anyhow::Result<()> {
    let per_frame = writer.version() == 1;
    let mut put = |record: &Record| -> anyhow::Result<()> {
        writer.write(record)?;
        if per_frame {
            writer.flush()?;
        }
        Ok(())
    };
    put(&Record::System(Box::new(tick.system.clone())))?;
    for notice in &tick.notices {
        put(&Record::Notice(Box::new(notice.clone())))?;
    }
    for exit in &tick.exited {
        put(&Record::Exit(exit.clone()))?;
    }
    let samples = std::mem::take(&mut tick.processes);
    tick.processes.reserve(samples.len());
    for sample in samples {
        finished.processes.insert(sample.id);
        let record = Record::Process(Box::new(sample));
        let written = put(&record);
        if let Record::Process(sample) = record {
            tick.processes.push(*sample);
        }
        written?;
        finished.samples += 1;
    }
    writer.flush()?;
    Ok(())
}

/// Writes the End frame and flushes: the recording is complete.
pub fn finish<W: Write>(
    writer: Writer<W>,
    finished: &Finished,
    output_name: &str,
) -> anyhow::Result<()> {
    writer
        .finish(&memtrail_format::End {
            time_us: now_us(),
            reason: finished.reason.clone(),
            samples: finished.samples,
        })
        .with_context(|| format!("cannot finish the recording in {output_name}"))?;
    Ok(())
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks the auto schedule takes for a job of `seconds`.
    fn ticks(seconds: u64) -> u64 {
        let end = Duration::from_secs(seconds);
        let mut age = Duration::ZERO;
        let mut n = 0;
        while age <= end {
            n += 1;
            age += auto_interval(age);
        }
        n
    }

    #[test]
    fn auto_schedule_starts_fast_and_thins_out() {
        assert_eq!(auto_interval(Duration::ZERO), Duration::from_millis(50));
        assert_eq!(
            auto_interval(Duration::from_secs(10)),
            Duration::from_millis(500)
        );
        assert_eq!(
            auto_interval(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
        assert_eq!(
            auto_interval(Duration::from_secs(86_400)),
            Duration::from_secs(10)
        );
        // Enough samples to judge a one-second job; few for a day.
        assert!(ticks(1) >= 20, "{}", ticks(1));
        assert!(ticks(86_400) < 15_000, "{}", ticks(86_400));
        let at = |s: u64| auto_interval(Duration::from_secs(s));
        assert!((1..200_000).step_by(97).all(|s| at(s) <= at(s + 97)));
    }
}

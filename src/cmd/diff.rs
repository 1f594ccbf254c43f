//! `memtrail diff A B` and `memtrail diff FILE --from T --to T`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use memtrail_diff::{attach_retention, compare, compare_censuses, CensusDiff, ProcessDiff};
use memtrail_format::{Census, Marker, ProcessId, ProcessSample, Record, Retention, Ticks};
use memtrail_report::diff::{self, DiffFilter};

use crate::cli::{DiffArgs, Moment, ReportFormat};

pub fn run(args: DiffArgs) -> anyhow::Result<u8> {
    let window: Window;
    let (before, after, before_name, after_name) = match &args.after {
        Some(after_path) => {
            if args.from.is_some() || args.to.is_some() {
                bail!(
                    "--from and --to pick two moments of one recording; with two files \
                     the last sample of each is compared"
                );
            }
            let (a, b) = both(
                || tick_of(&args.before, &Moment::End, Pick::Last),
                || tick_of(after_path, &Moment::End, Pick::Last),
            );
            let (a, b) = (a?, b?);
            let (before_events, after_events) = both(
                || events_between(&args.before, 0, u64::MAX),
                || events_between(after_path, 0, u64::MAX),
            );
            let (before_events, after_events) = (before_events?, after_events?);
            let mut censuses = compare_censuses(&before_events.last, &after_events.last);
            attach_retention(&mut censuses, &after_events.retentions);
            window = Window {
                censuses,
                markers: Vec::new(),
                started_us: before_events.started_us,
            };
            (a.samples, b.samples, a.describe, b.describe)
        }
        None => {
            let from = resolve(&args.before, args.from.clone().unwrap_or(Moment::Start))?;
            let to = resolve(&args.before, args.to.clone().unwrap_or(Moment::End))?;
            // Markers that name the moments belong in the window they open
            // and close, though the nearest ticks fall inside them.
            let marked = |given: &Option<Moment>, resolved: &Moment| match (given, resolved) {
                (Some(Moment::Marker(_)), Moment::At(us)) => Some(*us),
                _ => None,
            };
            let (from_marker, to_marker) = (marked(&args.from, &from), marked(&args.to, &to));
            let (a, b) = both(
                || tick_of(&args.before, &from, Pick::First),
                || tick_of(&args.before, &to, Pick::Last),
            );
            let (a, b) = (a?, b?);
            if a.time_us > b.time_us {
                bail!(
                    "--from ({}) is later than --to ({}) in {}",
                    a.describe,
                    b.describe,
                    args.before.display()
                );
            }
            let from_us = from_marker.map_or(a.time_us, |us| us.min(a.time_us));
            let to_us = to_marker.map_or(b.time_us, |us| us.max(b.time_us));
            let events = events_between(&args.before, from_us, to_us)?;
            let mut censuses = compare_censuses(&events.first, &events.last);
            attach_retention(&mut censuses, &events.retentions);
            window = Window {
                censuses,
                markers: events.markers,
                started_us: events.started_us,
            };
            (a.samples, b.samples, a.describe, b.describe)
        }
    };
    let mut window = window;
    let mut before: HashMap<ProcessId, ProcessSample> =
        before.into_iter().map(|s| (s.id, s)).collect();
    let mut diffs: Vec<ProcessDiff> = Vec::new();
    for s in &after {
        let b = before.remove(&s.id);
        diffs.extend(compare(b.as_ref(), Some(s)));
    }
    for s in before.values() {
        diffs.extend(compare(Some(s), None));
    }
    if let Some(pid) = args.pid {
        diffs.retain(|d| d.pid == pid);
        if diffs.is_empty() {
            bail!("process {pid} is in neither moment: see `memtrail dump` for the pids recorded");
        }
    }
    diffs.sort_by(|a, b| b.growth().cmp(&a.growth()).then(a.id().cmp(&b.id())));
    let filter = DiffFilter {
        min_change_kib: args.min.map_or(1, |s| s.kib().max(1)),
        anon_only: args.anon,
        top: args.top,
    };
    if let Some(pid) = args.pid {
        window
            .censuses
            .retain(|c| c.process.map(|p| p.pid) == Some(pid));
    }
    match args.format {
        ReportFormat::Text => {
            print!("{}", diff::text(&diffs, &before_name, &after_name, &filter));
            print!(
                "{}",
                memtrail_report::census::text(
                    &window.censuses,
                    &window.markers,
                    window.started_us,
                    args.top
                )
            );
        }
        ReportFormat::Json => {
            let mut doc = diff::json(diffs, &before_name, &after_name, &filter);
            if let Some(obj) = doc.as_object_mut() {
                let mut censuses = window.censuses;
                for c in &mut censuses {
                    c.changes.truncate(args.top);
                }
                obj.insert("censuses".into(), serde_json::to_value(&censuses)?);
                obj.insert("markers".into(), serde_json::to_value(&window.markers)?);
            }
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &doc)?;
            println!();
        }
    }
    Ok(0)
}

/// Runs two reads side by side: decoding big snapshots is most of a diff's
/// time, and the two files (or moments) are independent.
fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let first = a();
        let second = match other.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (first, second)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// The first tick at or after the moment.
    First,
    /// The last tick at or before the moment.
    Last,
}

/// Every process sample of one tick (one sampling round, see
/// [`memtrail_format::Ticks`]).
struct Tick {
    time_us: u64,
    samples: Vec<ProcessSample>,
    describe: String,
}

/// Reads `path` and returns the tick that `moment` names. A tick is placed
/// by its number and by the time it opened; ticks without a process sample
/// (nothing matched in that round) are counted but never chosen.
fn tick_of(path: &Path, moment: &Moment, pick: Pick) -> anyhow::Result<Tick> {
    let name = path.display().to_string();
    let mut reader = crate::input::open(path, &[], None)?.reader;
    let started = reader.header().started_us;
    // (number, opened at, samples)
    type Round = (u64, u64, Vec<ProcessSample>);
    let mut chosen: Option<Round> = None;
    let mut current: Option<Round> = None;
    let mut ticks = Ticks::new();
    // Whether tick (index, time) is on the right side of the moment.
    let fits = |index: u64, time: u64| -> bool {
        let pos = match moment {
            Moment::Start | Moment::End => return true,
            Moment::Offset(us) => (time, started.saturating_add(*us)),
            Moment::At(us) => (time, *us),
            Moment::Tick(n) => (index, *n),
            // Resolved to a time by `resolve` before.
            Moment::Marker(_) => return true,
        };
        match pick {
            Pick::First => pos.0 >= pos.1,
            Pick::Last => pos.0 <= pos.1,
        }
    };
    let close = |round: Round, chosen: &mut Option<Round>| {
        if round.2.is_empty() || !fits(round.0, round.1) {
            return;
        }
        let keep = match (pick, moment) {
            // `start` is the first tick whichever side it opens.
            (_, Moment::Start) => chosen.is_none(),
            (Pick::First, _) => chosen.is_none(),
            (Pick::Last, _) => true,
        };
        if keep {
            *chosen = Some(round);
        }
    };
    for frame in reader.by_ref() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        let Some(number) = ticks.place(&frame.record) else {
            continue;
        };
        if current.as_ref().map(|c| c.0) != Some(number) {
            if let Some(done) = current.take() {
                close(done, &mut chosen);
            }
            if chosen.is_some() && (pick == Pick::First || *moment == Moment::Start) {
                break;
            }
            current = Some((number, ticks.time_us().unwrap_or(0), Vec::new()));
        }
        if let (Record::Process(s), Some(c)) = (frame.record, current.as_mut()) {
            c.2.push(*s);
        }
    }
    if let Some(done) = current.take() {
        close(done, &mut chosen);
    }
    crate::input::warn(&name, &mut reader);
    let Some((index, time_us, samples)) = chosen else {
        let count = ticks.count();
        if count == 0 {
            bail!("{name} holds no process samples");
        }
        bail!(
            "{name} has no sample at {} ({count} ticks recorded, numbered 0 to {}): \
             see `memtrail dump {name}`, whose records carry their tick",
            moment,
            count - 1
        );
    };
    let offset = time_us.saturating_sub(started) as f64 / 1e6;
    Ok(Tick {
        time_us,
        samples,
        describe: format!("{name}, tick {index} (+{offset:.1}s)"),
    })
}

/// What happened inside the processes between the two moments.
struct Window {
    censuses: Vec<CensusDiff>,
    /// Markers between the moments, in order.
    markers: Vec<Marker>,
    started_us: u64,
}

/// A `marker:LABEL` moment as the time of the first marker with that label.
fn resolve(path: &Path, moment: Moment) -> anyhow::Result<Moment> {
    let Moment::Marker(label) = &moment else {
        return Ok(moment);
    };
    let name = path.display().to_string();
    let mut reader = crate::input::open(path, &[], None)?.reader;
    let mut labels: Vec<String> = Vec::new();
    for frame in reader.by_ref() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        if let Record::Marker(m) = frame.record {
            // A probe's checkpoint label is followed by its figures.
            let probe = m
                .label
                .strip_prefix(label.as_str())
                .is_some_and(|rest| rest.starts_with(" ("));
            if m.label == *label || probe {
                return Ok(Moment::At(m.time_us));
            }
            if labels.len() < 10 && !labels.contains(&m.label) {
                labels.push(m.label);
            }
        }
    }
    if labels.is_empty() {
        bail!(
            "{name} has no marker {label:?}, nor any other: put markers in a recording with \
             `memtrail mark LABEL` or the events channel (docs/events.md)"
        );
    }
    bail!(
        "{name} has no marker {label:?}; its markers include: {}",
        labels
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The events of a recording around a window.
struct Events {
    started_us: u64,
    /// Per process and source, the first census at or after the window's start.
    first: Vec<Census>,
    /// Per process and source, the last census at or before its end.
    last: Vec<Census>,
    /// Per process, source and type, the last retention at or before its end.
    retentions: Vec<Retention>,
    markers: Vec<Marker>,
}

/// Markers at most, so a recording full of them cannot fill memory.
const MAX_MARKERS: usize = 10_000;

/// Reads the censuses and markers of `path` around `[from_us, to_us]`.
fn events_between(path: &Path, from_us: u64, to_us: u64) -> anyhow::Result<Events> {
    let name = path.display().to_string();
    let mut reader = crate::input::open(path, &[], None)?.reader;
    let started_us = reader.header().started_us;
    let mut first: HashMap<(Option<ProcessId>, String), Census> = HashMap::new();
    let mut last: HashMap<(Option<ProcessId>, String), Census> = HashMap::new();
    let mut retentions: HashMap<(Option<ProcessId>, String, String), Retention> = HashMap::new();
    let mut markers = Vec::new();
    let mut names = crate::native::Names::new();
    for frame in reader.by_ref() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        match names.pass(frame.record) {
            Record::Census(c) => {
                let key = (c.process, c.source.clone());
                if c.time_us >= from_us && !first.contains_key(&key) {
                    first.insert(key.clone(), *c.clone());
                }
                if c.time_us <= to_us {
                    last.insert(key, *c);
                }
            }
            Record::Retention(r) if r.time_us <= to_us => {
                let key = (r.process, r.source.clone(), r.key.clone());
                let r = match retentions.get(&key) {
                    Some(old) => memtrail_diff::roots::newer(old, *r),
                    None => *r,
                };
                retentions.insert(key, r);
            }
            Record::Marker(m)
                if (from_us..=to_us).contains(&m.time_us) && markers.len() < MAX_MARKERS =>
            {
                markers.push(m);
            }
            _ => {}
        }
    }
    markers.sort_by_key(|m| m.time_us);
    Ok(Events {
        started_us,
        first: first.into_values().collect(),
        last: last.into_values().collect(),
        retentions: retentions.into_values().collect(),
        markers,
    })
}

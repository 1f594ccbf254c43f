//! Ticks: the sampling rounds of a recording, the one meaning of "a moment"
//! shared by every command (`record`'s tick count, `diff`'s moments,
//! `dump`'s tick numbers, `report`'s headline).
//!
//! A recorder reads every process it follows once per round, one after the
//! other: the samples of one round carry different times, a few
//! milliseconds apart, so a distinct timestamp is not a moment. A round
//! opens with a system sample (`0x20`), written first, and holds every
//! record up to the next one: its process samples, the exits it noticed,
//! and the markers and censuses that arrived before the next round.
//!
//! A writer that writes no system samples is still understood: a process
//! sample of a process the current tick already holds opens a new tick.
//! Records before the first tick belong to none.
//!
//! ```
//! use memtrail_format::*;
//!
//! let system = |t| Record::System(Box::new(SystemSample { time_us: t, ..SystemSample::default() }));
//! let sample = |t, pid| {
//!     let id = ProcessId { pid, start_time: 1 };
//!     Record::Process(Box::new(ProcessSample::summary(t, id, ProcessInfo::default(), Status::default())))
//! };
//! let mut ticks = Ticks::new();
//! let placed: Vec<Option<u64>> = [system(100), sample(101, 1), sample(103, 2), system(200), sample(202, 1)]
//!     .iter()
//!     .map(|r| ticks.place(r))
//!     .collect();
//! assert_eq!(placed, [Some(0), Some(0), Some(0), Some(1), Some(1)]);
//! assert_eq!(ticks.count(), 2);
//! assert_eq!(ticks.time_us(), Some(200));
//! ```

use rustc_hash::FxHashSet;

use crate::model::{ProcessId, Record};

/// Numbers the ticks of a recording as its records go by, in order.
#[derive(Debug, Clone, Default)]
pub struct Ticks {
    /// The current tick's number and when it opened.
    current: Option<(u64, u64)>,
    /// The processes sampled in the current tick.
    sampled: FxHashSet<ProcessId>,
}

impl Ticks {
    pub fn new() -> Ticks {
        Ticks::default()
    }

    /// Places the next record of the recording: returns the number of the
    /// tick it belongs to (from 0), or `None` before the first tick.
    pub fn place(&mut self, record: &Record) -> Option<u64> {
        match record {
            Record::Process(s) => self.place_sample(s.id, s.time_us),
            Record::System(s) => {
                self.open(s.time_us);
                self.current()
            }
            _ => self.current(),
        }
    }

    /// Places the next record when it is a sample of process `id` taken
    /// at `time_us`: the same as [`Ticks::place`] on it, for a reader that
    /// did not decode the sample (see `Reader::select`).
    pub fn place_sample(&mut self, id: ProcessId, time_us: u64) -> Option<u64> {
        if self.current.is_none() || !self.sampled.insert(id) {
            self.open(time_us);
            self.sampled.insert(id);
        }
        self.current()
    }

    /// Places the next record when it is a sample of process `id` whose
    /// time was not read (see `Reader::select`): counted as
    /// [`Ticks::place`] counts it; a tick it opens is dated by the tick
    /// before it (or 0), so [`Ticks::count`] is exact, not
    /// [`Ticks::time_us`].
    pub fn place_unread(&mut self, id: ProcessId) -> Option<u64> {
        let time_us = self.time_us().unwrap_or(0);
        self.place_sample(id, time_us)
    }

    fn open(&mut self, time_us: u64) {
        let number = self.current.map_or(0, |(n, _)| n + 1);
        self.current = Some((number, time_us));
        self.sampled.clear();
    }

    /// Ticks opened so far.
    pub fn count(&self) -> u64 {
        self.current.map_or(0, |(n, _)| n + 1)
    }

    /// The current tick's number, if one is open.
    pub fn current(&self) -> Option<u64> {
        self.current.map(|(n, _)| n)
    }

    /// When the current tick opened (its first record's time): the time
    /// by which offsets, dates and markers find their tick.
    pub fn time_us(&self) -> Option<u64> {
        self.current.map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn system(t: u64) -> Record {
        Record::System(Box::new(SystemSample {
            time_us: t,
            ..SystemSample::default()
        }))
    }

    fn sample(t: u64, pid: u32) -> Record {
        let id = ProcessId { pid, start_time: 7 };
        Record::Process(Box::new(ProcessSample::summary(
            t,
            id,
            ProcessInfo::default(),
            Status::default(),
        )))
    }

    fn marker(t: u64) -> Record {
        Record::Marker(Marker {
            time_us: t,
            label: "m".into(),
            pid: None,
            source: "cli".into(),
        })
    }

    fn check(records: &[Record], expected: &[Option<u64>]) {
        let mut ticks = Ticks::new();
        let placed: Vec<Option<u64>> = records.iter().map(|r| ticks.place(r)).collect();
        assert_eq!(placed, expected);
    }

    #[test]
    fn samples_of_one_round_with_different_times_are_one_tick() {
        check(
            &[
                system(10),
                sample(11, 1),
                sample(15, 2),
                sample(19, 3),
                system(110),
                sample(112, 1),
                sample(118, 2),
            ],
            &[
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(1),
            ],
        );
    }

    #[test]
    fn events_between_rounds_belong_to_the_round_before() {
        check(
            &[
                marker(5),
                system(10),
                sample(11, 1),
                marker(50),
                system(110),
                sample(111, 1),
            ],
            &[None, Some(0), Some(0), Some(0), Some(1), Some(1)],
        );
    }

    #[test]
    fn without_system_samples_a_repeated_process_opens_a_tick() {
        check(
            &[
                sample(1, 1),
                sample(2, 2),
                sample(101, 1),
                sample(102, 2),
                sample(201, 2),
            ],
            &[Some(0), Some(0), Some(1), Some(1), Some(2)],
        );
    }

    #[test]
    fn a_round_with_no_process_is_still_a_tick() {
        let mut ticks = Ticks::new();
        for r in [system(1), system(2), sample(3, 1)] {
            ticks.place(&r);
        }
        assert_eq!(ticks.count(), 2);
        assert_eq!(ticks.time_us(), Some(2));
    }
}

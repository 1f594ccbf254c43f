use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use memtrail_format::{
    Host, Notice, NoticeKind, ProcessExit, ProcessId, ProcessSample, SystemSample,
};
use rayon::prelude::*;

use crate::process::{self, Carry, Outcome, Plan, Problem, SmapsRead};
use crate::select::{self, Listed};
use crate::{parse, system, unix_time_us, CollectError, Config, Target, Tick};

/// Below this many processes a tick reads them one after the other: rayon's
/// hand-off costs more than it saves.
const PARALLEL_FROM: usize = 16;

/// A notice is reported once per (process, file, kind).
type NoticeKey = (Option<ProcessId>, &'static str, NoticeKind);

/// Samples the processes a [`Target`] names, tick after tick, following
/// them by identity and remembering what it has already told the user.
#[derive(Debug)]
pub struct Collector {
    config: Config,
    /// For `Pid` and `Tree`: the process asked for, fixed at construction.
    root: Option<ProcessId>,
    /// Processes sampled in an earlier tick (and, for `Pid`/`Tree`, the
    /// root from the start), with the adaptive policy's memory of them.
    tracked: HashMap<ProcessId, Option<Carry>>,
    /// Notices already reported.
    reported: HashSet<NoticeKey>,
    /// False once a `Pid`/`Tree` target is entirely gone; it cannot return.
    alive: bool,
    cgroup_root: PathBuf,
    own_pid: u32,
}

impl Collector {
    /// Checks that the target can be sampled and fixes its identity.
    pub fn new(config: Config) -> Result<Collector, CollectError> {
        let root = match config.target {
            Target::Pid(pid) | Target::Tree(pid) => Some(identify(&config.proc_root, pid)?),
            Target::Name(_) | Target::All => {
                std::fs::read_dir(&config.proc_root)
                    .map_err(|e| CollectError::io(config.proc_root.clone(), e))?;
                None
            }
        };
        let cgroup_root = system::cgroup2_root(&config.proc_root);
        Ok(Collector {
            tracked: root.map(|id| (id, None)).into_iter().collect(),
            root,
            reported: HashSet::new(),
            alive: true,
            cgroup_root,
            own_pid: std::process::id(),
            config,
        })
    }

    /// Facts about the machine, for a recording's header.
    pub fn host(&self) -> Result<Host, CollectError> {
        system::host(&self.config.proc_root)
    }

    /// The configuration this collector was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the process `id` is gone: its pid is free or held by another
    /// process, or it is exiting or a zombie (what [`Collector::sample`]
    /// would count as exited).
    pub fn has_exited(&self, id: ProcessId) -> bool {
        let stat = std::fs::read(self.config.proc_root.join(id.pid.to_string()).join("stat"))
            .ok()
            .and_then(|b| parse::stat(&b).ok());
        match stat {
            Some(stat) => stat.exited || stat.start_time != id.start_time,
            None => true,
        }
    }

    /// Whether there may be anything left to sample. `Pid`: false once the
    /// process is gone. `Tree`: false once the root and every descendant
    /// seen are gone. `Name` and `All`: always true.
    pub fn targets_alive(&self) -> bool {
        self.alive
    }

    /// Reads every target process once. Never fails as a whole: what could
    /// not be read is reported in [`Tick::notices`].
    pub fn sample(&mut self) -> Tick {
        let time_us = unix_time_us();
        let mut problems: Vec<(Option<ProcessId>, Problem)> = Vec::new();
        let candidates = match self.candidates() {
            Ok(c) => Some(c),
            Err(e) => {
                let path = self.config.proc_root.display().to_string();
                problems.push((
                    None,
                    Problem {
                        file: "",
                        kind: NoticeKind::Other,
                        message: format!(
                            "cannot list {path}: {e}; this tick has no process samples. Is procfs \
                             mounted there?"
                        ),
                        path,
                    },
                ));
                None
            }
        };
        let listing_failed = candidates.is_none();
        let candidates = candidates.unwrap_or_default();

        let outcomes = self.read_all(&candidates);

        let mut processes = Vec::new();
        let mut alive: HashSet<ProcessId> = HashSet::new();
        for (id, outcome) in candidates.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Sampled {
                    sample,
                    problems: p,
                    smaps,
                } => {
                    problems.extend(p.into_iter().map(|p| (Some(id), p)));
                    let carry = match smaps {
                        // `maps` carries the regions over to later samples;
                        // `full` reads smaps every time, and keeps the list
                        // (shared, not a copy) for the next read to fill.
                        SmapsRead::Fresh(key) => Some(Carry {
                            key,
                            mappings: sample.mappings.clone().unwrap_or_default(),
                            rollup: sample.rollup.unwrap_or_default(),
                            since_full: 0,
                        }),
                        SmapsRead::Carried(mut c) => {
                            c.since_full = c.since_full.saturating_add(1);
                            Some(*c)
                        }
                        SmapsRead::None => None,
                    };
                    self.tracked.insert(id, carry);
                    alive.insert(id);
                    processes.push(*sample);
                }
                Outcome::Unsampled { problems: p } => {
                    problems.extend(p.into_iter().map(|p| (Some(id), p)));
                    alive.insert(id);
                    // Keep following it: it is not gone, only unreadable.
                    self.tracked.entry(id).or_insert(None);
                }
                Outcome::Gone => {}
            }
        }
        processes.sort_by_key(|s: &ProcessSample| s.id);

        let mut exited = Vec::new();
        if !listing_failed {
            let gone: BTreeSet<ProcessId> = self
                .tracked
                .keys()
                .filter(|id| !alive.contains(id))
                .copied()
                .collect();
            for id in &gone {
                self.tracked.remove(id);
                exited.push(ProcessExit {
                    time_us,
                    id: *id,
                    exit_code: None,
                });
            }
            if !gone.is_empty() {
                // What was reported about an exited process cannot recur.
                self.reported
                    .retain(|(p, _, _)| p.map_or(true, |p| !gone.contains(&p)));
            }
            if matches!(self.config.target, Target::Pid(_) | Target::Tree(_)) && alive.is_empty() {
                self.alive = false;
            }
        }

        let system = self.system(&processes, &mut problems);
        let notices = self.new_notices(problems, time_us);
        Tick {
            time_us,
            processes,
            system,
            exited,
            notices,
        }
    }

    /// The processes to read this tick, each with the identity expected at
    /// its pid.
    fn candidates(&self) -> std::io::Result<Vec<ProcessId>> {
        let root = &self.config.proc_root;
        Ok(match &self.config.target {
            Target::Pid(_) => match (self.alive, self.root) {
                (true, Some(id)) => vec![id],
                _ => Vec::new(),
            },
            Target::Tree(_) => {
                if !self.alive {
                    return Ok(Vec::new());
                }
                let listed = select::list(root)?;
                select::tree(&listed, self.tracked.keys().copied())
                    .into_iter()
                    .collect()
            }
            Target::Name(regex) => select::list(root)?
                .into_iter()
                .filter(|l| {
                    // Once matched, a process is followed until it exits,
                    // even if it rewrites its argv or comm.
                    self.tracked.contains_key(&l.id)
                        || (l.id.pid != self.own_pid && name_matches(regex, root, l))
                })
                .map(|l| l.id)
                .collect(),
            Target::All => select::list(root)?
                .into_iter()
                .filter(|l| l.id.pid != self.own_pid)
                .map(|l| l.id)
                .collect(),
        })
    }

    fn read_all(&mut self, candidates: &[ProcessId]) -> Vec<Outcome> {
        // Taken out, and put back (or replaced) with each outcome: see
        // `Plan::carry`.
        let carries: Vec<Option<Carry>> = candidates
            .iter()
            .map(|id| self.tracked.get_mut(id).and_then(Option::take))
            .collect();
        let read = |(id, carry): (&ProcessId, Option<Carry>)| {
            process::read(Plan {
                proc_root: &self.config.proc_root,
                pid: id.pid,
                expect: Some(*id),
                detail: self.config.detail,
                redact_cmdline: self.config.redact_cmdline,
                carry,
                maps_every: self.config.maps_every,
            })
        };
        if candidates.len() >= PARALLEL_FROM {
            candidates.par_iter().zip(carries).map(read).collect()
        } else {
            candidates.iter().zip(carries).map(read).collect()
        }
    }

    fn system(
        &self,
        processes: &[ProcessSample],
        problems: &mut Vec<(Option<ProcessId>, Problem)>,
    ) -> SystemSample {
        let time_us = unix_time_us();
        let meminfo = match system::meminfo(&self.config.proc_root) {
            Ok(m) => m,
            Err((path, e)) => {
                let path = path.display().to_string();
                problems.push((
                    None,
                    Problem {
                        file: "meminfo",
                        kind: NoticeKind::Other,
                        message: format!(
                            "cannot read {path}: {e}; memtrail records no machine-wide memory \
                             figures, so it cannot tell how close the machine is to running out."
                        ),
                        path,
                    },
                ));
                Default::default()
            }
        };
        let paths: BTreeSet<&str> = processes
            .iter()
            .filter_map(|p| p.info.cgroup.as_deref())
            .collect();
        let cgroups = paths
            .into_iter()
            .map(|path| system::cgroup(&self.cgroup_root, path))
            .collect();
        SystemSample {
            time_us,
            meminfo,
            cgroups,
        }
    }

    fn new_notices(
        &mut self,
        problems: Vec<(Option<ProcessId>, Problem)>,
        time_us: u64,
    ) -> Vec<Notice> {
        problems
            .into_iter()
            .filter(|(id, p)| self.reported.insert((*id, p.file, p.kind)))
            .map(|(process, p)| Notice {
                time_us,
                process,
                kind: p.kind,
                path: p.path,
                message: p.message,
            })
            .collect()
    }
}

/// The identity of the process at `pid` now.
fn identify(proc_root: &Path, pid: u32) -> Result<ProcessId, CollectError> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CollectError::NoSuchProcess { pid })
        }
        // ESRCH: it exited between the lookup and the read.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => {
            return Err(CollectError::NoSuchProcess { pid })
        }
        Err(e) => return Err(CollectError::io(path, e)),
    };
    let stat = parse::stat(&bytes).map_err(|message| CollectError::Malformed { path, message })?;
    Ok(ProcessId {
        pid,
        start_time: stat.start_time,
    })
}

/// `Name` matches the comm or the whole command line joined by spaces.
fn name_matches(regex: &regex::Regex, proc_root: &Path, l: &Listed) -> bool {
    if regex.is_match(&l.comm) {
        return true;
    }
    let path = proc_root.join(l.id.pid.to_string()).join("cmdline");
    std::fs::read(path)
        .map(|b| regex.is_match(&parse::cmdline(&b, false).join(" ")))
        .unwrap_or(false)
}

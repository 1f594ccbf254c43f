//! Process deltas: a sample stored as its difference from the previous
//! sample of the same process. See docs/format.md, "Process delta".
//!
//! [`diff`] and [`apply`] are the two halves of one algorithm; the writer
//! only uses a delta after checking that `apply(base, diff(base, new))`
//! gives back `new` exactly, so a sample the algorithm cannot express
//! (unsorted mappings, duplicate descriptors) is simply written as a keyframe.

use std::collections::{BTreeMap, HashMap};

use crate::fastdelta::DeltaView;
use crate::model::{Cpu, Fd, Mapping, ProcessSample, Rollup};
use crate::wire::{
    self, apply_slots, diff_slots, DeltaWire, FdWire, FdsDeltaWire, InfoWire, MappingChangeWire,
    MappingWire, MappingsDeltaWire, TargetsDeltaWire, Unrepresentable,
};

/// The delta that turns `base` into `new`, which gets sequence number `seq`.
pub(crate) fn diff(
    base: &ProcessSample,
    new: &ProcessSample,
    seq: u64,
) -> Result<DeltaWire, Unrepresentable> {
    Ok(DeltaWire {
        id: new.id.into(),
        seq: (seq as u16).to_le_bytes(),
        time_delta: new.time_us.wrapping_sub(base.time_us) as i64,
        info: (new.info != base.info).then(|| InfoWire::from_model(&new.info)),
        status: diff_slots(
            &wire::status_slots(&base.status)?,
            &wire::status_slots(&new.status)?,
        ),
        cpu: match &new.cpu {
            None => None,
            Some(c) => Some(diff_slots(
                base.cpu
                    .as_ref()
                    .map(wire::cpu_slots)
                    .transpose()?
                    .as_deref()
                    .unwrap_or_default(),
                &wire::cpu_slots(c)?,
            )),
        },
        rollup: match &new.rollup {
            None => None,
            Some(r) => Some(diff_slots(
                base.rollup
                    .as_ref()
                    .map(wire::rollup_slots)
                    .transpose()?
                    .as_deref()
                    .unwrap_or_default(),
                &wire::rollup_slots(r)?,
            )),
        },
        fds: match &new.fds {
            None => None,
            Some(f) => Some(FdsDeltaWire {
                counts: diff_slots(
                    base.fds
                        .as_ref()
                        .map(wire::fd_count_slots)
                        .transpose()?
                        .as_deref()
                        .unwrap_or_default(),
                    &wire::fd_count_slots(f)?,
                ),
                targets: diff_targets(
                    base.fds.as_ref().and_then(|b| b.targets.as_deref()),
                    f.targets.as_deref(),
                ),
            }),
        },
        mappings: match (&base.mappings, &new.mappings) {
            // Regions carried over by the adaptive policy are the very same
            // list: nothing to compare.
            (Some(a), Some(b)) if std::sync::Arc::ptr_eq(a, b) => MappingsDeltaWire::Same,
            (a, b) => diff_mappings(
                a.as_deref().map(Vec::as_slice),
                b.as_deref().map(Vec::as_slice),
            )?,
        },
        mappings_fresh: new.mappings_fresh,
    })
}

fn diff_targets(base: Option<&[Fd]>, new: Option<&[Fd]>) -> TargetsDeltaWire {
    let Some(new) = new else {
        return if base.is_none() {
            TargetsDeltaWire::Same
        } else {
            TargetsDeltaWire::Absent
        };
    };
    if base == Some(new) {
        return TargetsDeltaWire::Same;
    }
    let base: BTreeMap<u32, &str> = base
        .unwrap_or_default()
        .iter()
        .map(|f| (f.fd, f.target.as_str()))
        .collect();
    let now: BTreeMap<u32, &str> = new.iter().map(|f| (f.fd, f.target.as_str())).collect();
    let closed = base
        .keys()
        .filter(|fd| !now.contains_key(fd))
        .copied()
        .collect();
    let opened = now
        .iter()
        .filter(|(fd, target)| base.get(fd) != Some(target))
        .map(|(&fd, &target)| FdWire {
            fd,
            target: target.to_string(),
        })
        .collect();
    TargetsDeltaWire::Changed { closed, opened }
}

/// The fields that make a mapping the same region from one sample to the
/// next; a change in any of them is a removal and an addition.
fn same_region(a: &Mapping, b: &Mapping) -> bool {
    a.start == b.start
        && a.perms == b.perms
        && a.offset == b.offset
        && a.dev == b.dev
        && a.inode == b.inode
        && a.path == b.path
}

fn diff_mappings(
    base: Option<&[Mapping]>,
    new: Option<&[Mapping]>,
) -> Result<MappingsDeltaWire, Unrepresentable> {
    let Some(new) = new else {
        return Ok(if base.is_none() {
            MappingsDeltaWire::Same
        } else {
            MappingsDeltaWire::Absent
        });
    };
    if base == Some(new) {
        return Ok(MappingsDeltaWire::Same);
    }
    let base = base.unwrap_or_default();
    let by_start: HashMap<u64, usize> =
        base.iter().enumerate().map(|(i, m)| (m.start, i)).collect();
    let mut kept = vec![false; base.len()];
    let mut changed = Vec::new();
    let mut added = Vec::new();
    for m in new {
        match by_start.get(&m.start) {
            Some(&i) if !kept[i] && same_region(&base[i], m) => {
                kept[i] = true;
                let b = &base[i];
                let counters = diff_slots(&wire::mapping_slots(b)?, &wire::mapping_slots(m)?);
                if m.end != b.end || !counters.is_empty() {
                    changed.push(MappingChangeWire {
                        index: u32::try_from(i).map_err(|_| "mappings (more than 2^32)")?,
                        end_delta: m.end.wrapping_sub(b.end) as i64,
                        counters,
                    });
                }
            }
            _ => added.push(MappingWire::from_model(m)?),
        }
    }
    changed.sort_by_key(|c| c.index);
    let removed = (0..base.len())
        .filter(|&i| !kept[i])
        .map(|i| i as u32)
        .collect();
    Ok(MappingsDeltaWire::Changed {
        removed,
        changed,
        added,
    })
}

/// The sample `delta` describes, given the sample it was made from. The
/// error says why the delta does not fit `base`.
///
/// The base is taken by value: what the delta leaves unchanged (nearly
/// every region, usually) is moved into the new sample, not copied.
pub(crate) fn apply(mut base: ProcessSample, delta: &DeltaWire) -> Result<ProcessSample, String> {
    apply_in_place(&mut base, &delta.view())?;
    Ok(base)
}

/// Applies `delta` to `sample`, turning it into the sample the delta
/// encodes, without moving it. On error `sample` is left part-updated
/// and must be dropped.
pub(crate) fn apply_in_place(
    sample: &mut ProcessSample,
    delta: &DeltaView<'_>,
) -> Result<(), String> {
    // The base was decoded from slots (or checked by the writer), so its
    // counters are all below 2^64-1 and re-encode. Each slot the delta
    // changes is added where its field lies: most deltas change a few of
    // a sample's two dozen slots, and encoding every field to slots and
    // back cost more than the rest of reading the sample.
    let fits = |what: &str| format!("{what} of the base cannot be re-encoded");
    for (i, &d) in delta.status.iter().enumerate() {
        if let Some(field) = wire::status_field(&mut sample.status, i).filter(|_| d != 0) {
            wire::step_opt(field, d).map_err(fits)?;
        }
    }
    match delta.cpu {
        None => sample.cpu = None,
        Some(deltas) => {
            let present = sample.cpu.is_some();
            let cpu = sample.cpu.get_or_insert_with(Cpu::default);
            for (i, &d) in deltas.iter().enumerate() {
                if let Some(field) = wire::cpu_field(cpu, i).filter(|_| d != 0) {
                    wire::step_val(field, present, d).map_err(fits)?;
                }
            }
        }
    }
    match delta.rollup {
        None => sample.rollup = None,
        Some(deltas) => {
            let rollup = sample.rollup.get_or_insert_with(Rollup::default);
            for (i, &d) in deltas.iter().enumerate() {
                if let Some(field) = wire::rollup_field(rollup, i).filter(|_| d != 0) {
                    wire::step_opt(field, d).map_err(fits)?;
                }
            }
        }
    }
    match delta.fds {
        None => sample.fds = None,
        Some((counts, targets)) => {
            let present = sample.fds.is_some();
            let mut fds = sample.fds.take().unwrap_or_default();
            for (i, &d) in counts.iter().enumerate() {
                if let Some(field) = wire::fd_count_field(&mut fds, i).filter(|_| d != 0) {
                    wire::step_val(field, present, d).map_err(fits)?;
                }
            }
            fds.targets = apply_targets(fds.targets.take(), targets)?;
            sample.fds = Some(fds);
        }
    }
    sample.mappings = apply_mappings(sample.mappings.take(), delta.mappings)?;
    sample.time_us = sample.time_us.wrapping_add(delta.time_delta as u64);
    if let Some(info) = delta.info {
        sample.info = std::sync::Arc::new(info.to_model());
    }
    sample.mappings_fresh = delta.mappings_fresh;
    Ok(())
}

fn apply_targets(
    base: Option<Vec<Fd>>,
    delta: &TargetsDeltaWire,
) -> Result<Option<Vec<Fd>>, String> {
    let (closed, opened) = match delta {
        TargetsDeltaWire::Same => return Ok(base),
        TargetsDeltaWire::Absent => return Ok(None),
        TargetsDeltaWire::Changed { closed, opened } => (closed, opened),
    };
    let mut fds: BTreeMap<u32, String> = base
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.fd, f.target))
        .collect();
    for fd in closed {
        if fds.remove(fd).is_none() {
            return Err(format!("it closes descriptor {fd}, which was not open"));
        }
    }
    for f in opened {
        fds.insert(f.fd, f.target.clone());
    }
    Ok(Some(
        fds.into_iter()
            .map(|(fd, target)| Fd { fd, target })
            .collect(),
    ))
}

fn apply_mappings(
    base: Option<std::sync::Arc<Vec<Mapping>>>,
    delta: &MappingsDeltaWire,
) -> Result<Option<std::sync::Arc<Vec<Mapping>>>, String> {
    let (removed, changed, added) = match delta {
        MappingsDeltaWire::Same => return Ok(base),
        MappingsDeltaWire::Absent => return Ok(None),
        MappingsDeltaWire::Changed {
            removed,
            changed,
            added,
        } => (removed, changed, added),
    };
    let base = base
        .map(std::sync::Arc::unwrap_or_clone)
        .unwrap_or_default();
    // What happens to each mapping of the base: None keeps it, Some(None)
    // removes it, Some(Some(change)) changes it.
    let mut fate: Vec<Option<Option<&MappingChangeWire>>> = vec![None; base.len()];
    for &i in removed {
        match fate.get_mut(i as usize) {
            Some(slot @ None) => *slot = Some(None),
            Some(Some(_)) => return Err(format!("it removes mapping {i} twice")),
            None => return Err(format!("it removes mapping {i} of {}", base.len())),
        }
    }
    for c in changed {
        let i = c.index;
        match fate.get_mut(i as usize) {
            Some(slot @ None) => *slot = Some(Some(c)),
            Some(Some(_)) => {
                return Err(format!(
                    "it changes mapping {i}, which it also removes or changes"
                ))
            }
            None => return Err(format!("it changes mapping {i} of {}", base.len())),
        }
    }
    let mut list = Vec::with_capacity(base.len() - removed.len() + added.len());
    for (m, fate) in base.into_iter().zip(fate) {
        match fate {
            None => list.push(m),
            Some(None) => {}
            Some(Some(c)) => {
                let mut m = m;
                m.end = m.end.wrapping_add(c.end_delta as u64);
                let counters = wire::mapping_slots(&m)
                    .map_err(|_| "a mapping of the base cannot be re-encoded".to_string())?;
                wire::set_mapping_counters(&mut m, &apply_slots::<11>(&counters, &c.counters));
                list.push(m);
            }
        }
    }
    list.extend(added.iter().map(MappingWire::to_model));
    list.sort_by_key(|m| m.start);
    Ok(Some(std::sync::Arc::new(list)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastdelta::tests::Rng;
    use crate::model::{Fds, ProcessId, ProcessInfo, Status};

    impl Rng {
        /// Values of every size, the largest storable and 0 included.
        fn value(&mut self) -> u64 {
            match self.next() % 6 {
                0 => 0,
                1 => u64::MAX - 1,
                2 => self.next() >> 1,
                _ => self.next() % 5000,
            }
        }

        fn maybe(&mut self) -> Option<u64> {
            (self.next() % 4 > 0).then(|| self.value())
        }

        fn sample(&mut self) -> ProcessSample {
            let status = Status {
                vm_rss: self.maybe(),
                vm_hwm: self.maybe(),
                vm_size: self.maybe(),
                vm_peak: self.maybe(),
                rss_anon: self.maybe(),
                rss_file: self.maybe(),
                rss_shmem: self.maybe(),
                vm_swap: self.maybe(),
                vm_data: self.maybe(),
                vm_stk: self.maybe(),
                vm_pte: self.maybe(),
                threads: self.maybe(),
            };
            let id = ProcessId {
                pid: 7,
                start_time: 1,
            };
            let mut s = ProcessSample::summary(self.value(), id, ProcessInfo::default(), status);
            s.cpu = (self.next() % 3 > 0).then(|| Cpu {
                utime: self.value(),
                stime: self.value(),
                minflt: self.value(),
                majflt: self.value(),
            });
            s.rollup = (self.next() % 3 > 0).then(|| Rollup {
                rss: self.maybe(),
                pss: self.maybe(),
                pss_anon: self.maybe(),
                swap_pss: self.maybe(),
                ..Rollup::default()
            });
            s.fds = (self.next() % 3 > 0).then(|| Fds {
                file: self.value(),
                socket: self.value(),
                other: self.value(),
                ..Fds::default()
            });
            s
        }
    }

    /// Applying a delta field by field gives back exactly the sample it
    /// was made from, for every mix of present and absent parts (the
    /// writer would otherwise fall back to keyframes without a word).
    #[test]
    fn deltas_apply_field_by_field_exactly() {
        let mut rng = Rng(0x853C_49E6_748F_EA9B);
        for _ in 0..20_000 {
            let (base, new) = (rng.sample(), rng.sample());
            let delta = diff(&base, &new, 1).expect("storable values");
            assert_eq!(
                apply(base.clone(), &delta),
                Ok(new.clone()),
                "{base:?} -> {new:?}"
            );
        }
    }
}

//! Roots first: among the growing types of a census, the ones whose
//! instances are held by something that does not grow itself (a module
//! global, a class attribute, one long-lived container) are the roots;
//! the others hang off them. The Python hook measures what holds what
//! (retention frames: chains from an anchor to sampled instances, the
//! growing types they hang off, what one instance holds); this module
//! keeps the latest of them per type and turns them into the roles of
//! census findings. The method and where it can be wrong are in
//! docs/leak-detection.md ("Roots and retention chains").

use std::collections::{BTreeMap, HashSet};

use memtrail_format::{Retention, RetentionChain};
use serde::Serialize;

use crate::analyze::{Finding, CENSUS_FINDINGS_PER_SOURCE};
use crate::judge::{Pattern, Verdict};

/// Retention kept per process and source: the types examined most
/// recently win when there are more.
pub const RETENTIONS_PER_SOURCE: usize = 64;

/// What a growing census type is in the ownership of a process's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Held by something that does not grow: where the leak is.
    Root,
    /// Hangs off instances of another growing type (`held_by`).
    Held,
}

/// Objects of one type that one instance of a root holds, on average.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub key: String,
    pub per_instance: u64,
}

/// The latest retention of each type of each source of one process.
#[derive(Debug, Clone, Default)]
pub(crate) struct Retentions {
    by_source: BTreeMap<String, Vec<Retention>>,
}

impl Retentions {
    pub(crate) fn add(&mut self, r: Retention) {
        let list = self.by_source.entry(r.source.clone()).or_default();
        if let Some(old) = list.iter_mut().find(|o| o.key == r.key) {
            *old = newer(old, r);
            return;
        }
        if list.len() >= RETENTIONS_PER_SOURCE {
            // The one examined longest ago goes.
            if let Some(oldest) = list
                .iter()
                .enumerate()
                .min_by_key(|(_, o)| o.time_us)
                .map(|(i, _)| i)
            {
                list.remove(oldest);
            }
        }
        list.push(r);
    }

    pub(crate) fn get(&self, source: &str, key: &str) -> Option<&Retention> {
        self.by_source.get(source)?.iter().find(|r| r.key == key)
    }

    /// Whether the hook examined `key` of `source`: its census series is
    /// kept however small its count.
    pub(crate) fn has(&self, source: &str, key: &str) -> bool {
        self.get(source, key).is_some()
    }
}

/// `new` in place of `old` (the same type), keeping the chains and owners
/// of `old` when the walk that made `new` found none (it ran out of time):
/// a round that learnt nothing does not erase what the one before learnt.
pub fn newer(old: &Retention, mut new: Retention) -> Retention {
    if new.chains.is_empty() && !old.chains.is_empty() {
        new.chains = old.chains.clone();
        new.owners = old.owners.clone();
    }
    new
}

/// Whether a census key names a built-in type (`dict`, `list`,
/// `function`): the hook names the program's and libraries' types
/// `module.QualName`.
pub fn is_builtin(key: &str) -> bool {
    !key.contains('.')
}

/// Whether a finding grows (a leak, or growth too young to call one).
fn grows(f: &Finding) -> bool {
    f.verdict == Verdict::Leak || f.pattern == Pattern::Growing
}

/// Gives the census findings of one source their roles, chains and
/// holdings, and orders them: roots first (leaks first, the program's
/// types before built-in ones, then by growth), each root's held types
/// after the roots, then the rest. The cap of
/// [`CENSUS_FINDINGS_PER_SOURCE`] applies to what is not a root: no cap
/// drops a root.
pub(crate) fn arrange(
    source: &str,
    mut found: Vec<Finding>,
    retentions: &Retentions,
) -> Vec<Finding> {
    let prefix = format!("census:{source}:");
    let key_of = |f: &Finding| f.series.strip_prefix(&prefix).unwrap_or("").to_string();
    let growing: HashSet<String> = found.iter().filter(|f| grows(f)).map(key_of).collect();
    for f in &mut found {
        let key = key_of(f);
        let Some(r) = retentions.get(source, &key) else {
            continue;
        };
        f.retained_by = r.chains.clone();
        f.holds = r
            .holds
            .iter()
            .map(|h| Holding {
                key: h.key.clone(),
                per_instance: h.count,
            })
            .collect();
        // The growing type most sampled instances hang off, if at least
        // half of them do.
        let owner = r
            .owners
            .iter()
            .filter(|o| o.key != key && growing.contains(&o.key))
            .max_by(|a, b| a.count.cmp(&b.count).then_with(|| b.key.cmp(&a.key)))
            .filter(|o| o.count * 2 >= r.sampled.max(1));
        match owner {
            Some(o) => {
                f.role = Some(Role::Held);
                f.held_by = Some(o.key.clone());
            }
            None if r.chains.is_empty() => {}
            None => f.role = Some(Role::Root),
        }
    }
    // The program's own classes before types built into the interpreter
    // or an extension; among roots, those that hold growing objects
    // before those that hold none (a weak reference, a lock).
    let rank = |f: &Finding| -> (u8, u8, u8) {
        let key = key_of(f);
        let native = is_builtin(&key) || retentions.get(source, &key).is_some_and(|r| r.native);
        let empty = u8::from(f.holds.is_empty());
        match f.role {
            Some(Role::Root) => (0, u8::from(native), empty),
            Some(Role::Held) => (1, u8::from(native), 0),
            None => (2, u8::from(native), 0),
        }
    };
    found.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.verdict.cmp(&b.verdict))
            .then_with(|| b.growth_per_hour.total_cmp(&a.growth_per_hour))
            .then_with(|| a.series.cmp(&b.series))
    });
    let roots = found.iter().filter(|f| f.role == Some(Role::Root)).count();
    found.truncate(roots + CENSUS_FINDINGS_PER_SOURCE);
    found
}

/// The chain most sampled instances are kept alive by, as one line:
/// `app.cache.SESSIONS → [<key>]`.
pub fn chain_text(chain: &RetentionChain) -> String {
    chain.steps.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::CensusCount;

    fn retention(time_us: u64, chains: &[&[&str]]) -> Retention {
        Retention {
            time_us,
            process: None,
            source: "gc".into(),
            key: "app.Session".into(),
            native: false,
            sampled: 4,
            owners: if chains.is_empty() {
                vec![]
            } else {
                vec![CensusCount {
                    key: "app.Registry".into(),
                    count: 4,
                }]
            },
            holds: vec![],
            chains: chains
                .iter()
                .map(|steps| RetentionChain {
                    steps: steps.iter().map(|s| s.to_string()).collect(),
                    instances: 4,
                })
                .collect(),
        }
    }

    #[test]
    fn a_round_without_chains_keeps_the_chains_of_the_one_before() {
        let mut r = Retentions::default();
        r.add(retention(1, &[&["app.SESSIONS", "[<key>]"]]));
        r.add(retention(2, &[]));
        let kept = r.get("gc", "app.Session").unwrap();
        assert_eq!(kept.time_us, 2);
        assert_eq!(kept.chains[0].steps, ["app.SESSIONS", "[<key>]"]);
        assert_eq!(kept.owners[0].key, "app.Registry");
        // A round with chains replaces them.
        r.add(retention(3, &[&["app.OTHER"]]));
        assert_eq!(
            r.get("gc", "app.Session").unwrap().chains[0].steps,
            ["app.OTHER"]
        );
    }
}

//! Delta frames of the common shape, decoded without bincode's generic
//! machinery and without allocating.
//!
//! Almost every frame of a long recording is a process delta whose names,
//! descriptor targets and regions did not change: a few slot vectors of
//! small numbers. Decoding those through serde cost more than applying
//! them (and three allocations each), so [`decode`] reads that shape
//! directly, by the same rules as bincode 1.3.3 with the options of
//! [`crate::wire::options`] (docs/format.md, "Payload encoding"): varints
//! (one byte below 251; 251, 252, 253 announce a little-endian u16, u32,
//! u64), zigzag for signed integers, a byte for an `Option`'s tag and for
//! a `bool`, a varint for an enum's variant and for a sequence's length,
//! and nothing left over. Anything else (new names, changed targets or
//! regions, a long slot vector, anything bincode would refuse) is left to
//! bincode: [`decode`] returns `None` and the caller decodes the payload
//! the general way, so the two paths cannot disagree on what they both
//! accept (a test feeds both the same payloads, damaged ones included).

use crate::wire::{DeltaWire, InfoWire, MappingsDeltaWire, ProcessIdWire, TargetsDeltaWire};

/// Slots a fixed slot vector holds: more than any vector has today (12).
const SLOTS: usize = 16;

/// A slot vector of a delta, held inline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    slots: [i64; SLOTS],
    len: usize,
}

impl std::ops::Deref for Fixed {
    type Target = [i64];

    fn deref(&self) -> &[i64] {
        &self.slots[..self.len]
    }
}

/// A delta frame of the common shape, decoded. A reader keeps one and
/// decodes every delta into it (it is several hundred bytes: moving it
/// cost more than filling it).
#[derive(Debug)]
pub(crate) struct FastDelta {
    id: ProcessIdWire,
    seq: [u8; 2],
    time_delta: i64,
    status: Fixed,
    cpu: Fixed,
    has_cpu: bool,
    rollup: Fixed,
    has_rollup: bool,
    counts: Fixed,
    /// `None`: no descriptors.
    targets: Option<TargetsDeltaWire>,
    mappings: MappingsDeltaWire,
    mappings_fresh: bool,
}

impl Default for FastDelta {
    fn default() -> FastDelta {
        let empty = Fixed {
            slots: [0; SLOTS],
            len: 0,
        };
        FastDelta {
            id: ProcessIdWire::new(0, 0),
            seq: [0; 2],
            time_delta: 0,
            status: empty,
            cpu: empty,
            has_cpu: false,
            rollup: empty,
            has_rollup: false,
            counts: empty,
            targets: None,
            mappings: MappingsDeltaWire::Same,
            mappings_fresh: false,
        }
    }
}

/// A delta frame's content, however it was decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeltaView<'a> {
    pub(crate) id: ProcessIdWire,
    pub(crate) seq: [u8; 2],
    pub(crate) time_delta: i64,
    pub(crate) info: Option<&'a InfoWire>,
    pub(crate) status: &'a [i64],
    pub(crate) cpu: Option<&'a [i64]>,
    pub(crate) rollup: Option<&'a [i64]>,
    pub(crate) fds: Option<(&'a [i64], &'a TargetsDeltaWire)>,
    pub(crate) mappings: &'a MappingsDeltaWire,
    pub(crate) mappings_fresh: bool,
}

impl FastDelta {
    pub(crate) fn view(&self) -> DeltaView<'_> {
        DeltaView {
            id: self.id,
            seq: self.seq,
            time_delta: self.time_delta,
            info: None,
            status: &self.status,
            cpu: self.has_cpu.then_some(&*self.cpu),
            rollup: self.has_rollup.then_some(&*self.rollup),
            fds: self.targets.as_ref().map(|t| (&*self.counts, t)),
            mappings: &self.mappings,
            mappings_fresh: self.mappings_fresh,
        }
    }
}

impl DeltaWire {
    pub(crate) fn view(&self) -> DeltaView<'_> {
        DeltaView {
            id: self.id,
            seq: self.seq,
            time_delta: self.time_delta,
            info: self.info.as_ref(),
            status: &self.status,
            cpu: self.cpu.as_deref(),
            rollup: self.rollup.as_deref(),
            fds: self.fds.as_ref().map(|f| (&*f.counts, &f.targets)),
            mappings: &self.mappings,
            mappings_fresh: self.mappings_fresh,
        }
    }
}

/// Decodes a delta payload of the common shape into `out`; false for any
/// other (to be decoded by bincode, which also names what is wrong, if
/// anything), leaving `out` to be overwritten.
pub(crate) fn decode(payload: &[u8], out: &mut FastDelta) -> bool {
    decode_into(payload, out).is_some()
}

fn decode_into(payload: &[u8], out: &mut FastDelta) -> Option<()> {
    let mut r = Bytes { rest: payload };
    out.id = ProcessIdWire::new(u32::try_from(r.varint()?).ok()?, r.varint()?);
    out.seq = [r.byte()?, r.byte()?];
    out.time_delta = r.signed()?;
    if r.byte()? != 0 {
        // New names.
        return None;
    }
    r.slots(&mut out.status)?;
    out.has_cpu = r.tag()?;
    if out.has_cpu {
        r.slots(&mut out.cpu)?;
    }
    out.has_rollup = r.tag()?;
    if out.has_rollup {
        r.slots(&mut out.rollup)?;
    }
    out.targets = if r.tag()? {
        r.slots(&mut out.counts)?;
        match r.varint()? {
            0 => Some(TargetsDeltaWire::Same),
            1 => Some(TargetsDeltaWire::Absent),
            _ => return None,
        }
    } else {
        None
    };
    out.mappings = match r.varint()? {
        0 => MappingsDeltaWire::Same,
        1 => MappingsDeltaWire::Absent,
        _ => return None,
    };
    out.mappings_fresh = r.tag()?;
    r.rest.is_empty().then_some(())
}

/// The process of a keyframe's or a delta's payload: both start with it.
pub(crate) fn process_of(payload: &[u8]) -> Option<ProcessIdWire> {
    let mut r = Bytes { rest: payload };
    Some(ProcessIdWire::new(
        u32::try_from(r.varint()?).ok()?,
        r.varint()?,
    ))
}

/// The unread rest of a payload.
struct Bytes<'a> {
    rest: &'a [u8],
}

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn literal<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.rest.get(..N)?.try_into().ok()?;
        self.rest = &self.rest[N..];
        Some(bytes)
    }

    fn varint(&mut self) -> Option<u64> {
        match self.byte()? {
            b @ 0..=250 => Some(u64::from(b)),
            251 => Some(u64::from(u16::from_le_bytes(self.literal()?))),
            252 => Some(u64::from(u32::from_le_bytes(self.literal()?))),
            253 => Some(u64::from_le_bytes(self.literal()?)),
            _ => None,
        }
    }

    fn signed(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn slots(&mut self, fixed: &mut Fixed) -> Option<()> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > SLOTS {
            return None;
        }
        fixed.len = len;
        for slot in &mut fixed.slots[..len] {
            *slot = self.signed()?;
        }
        Some(())
    }

    /// An `Option`'s tag, or a `bool`: 0 or 1.
    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{self, FdsDeltaWire};

    /// A small deterministic generator (xorshift), for the crate's tests.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Numbers of every varint width, and signs.
        fn number(&mut self) -> i64 {
            let bits = [3, 8, 12, 20, 40, 64][(self.next() % 6) as usize];
            let n = (self.next() >> (64 - bits)) as i64;
            if self.next() % 2 == 0 {
                n
            } else {
                n.wrapping_neg()
            }
        }

        fn slots(&mut self) -> Vec<i64> {
            let len = (self.next() % 19) as usize;
            (0..len).map(|_| self.number()).collect()
        }
    }

    fn delta(rng: &mut Rng) -> DeltaWire {
        let pick = |rng: &mut Rng, n: u64| rng.next() % n;
        DeltaWire {
            id: ProcessIdWire::new(rng.next() as u32, rng.number() as u64),
            seq: [rng.next() as u8, rng.next() as u8],
            time_delta: rng.number(),
            info: None,
            status: rng.slots(),
            cpu: (pick(rng, 3) > 0).then(|| rng.slots()),
            rollup: (pick(rng, 3) > 0).then(|| rng.slots()),
            fds: (pick(rng, 3) > 0).then(|| FdsDeltaWire {
                counts: rng.slots(),
                targets: match pick(rng, 3) {
                    0 => TargetsDeltaWire::Same,
                    1 => TargetsDeltaWire::Absent,
                    _ => TargetsDeltaWire::Changed {
                        closed: vec![3],
                        opened: Vec::new(),
                    },
                },
            }),
            mappings: match pick(rng, 3) {
                0 => MappingsDeltaWire::Same,
                1 => MappingsDeltaWire::Absent,
                _ => MappingsDeltaWire::Changed {
                    removed: vec![1],
                    changed: Vec::new(),
                    added: Vec::new(),
                },
            },
            mappings_fresh: pick(rng, 2) == 0,
        }
    }

    /// The fields a reader uses, as text, to compare two decodings.
    fn seen(v: DeltaView<'_>) -> String {
        format!(
            "{:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {}",
            v.id,
            v.seq,
            v.time_delta,
            v.info.is_some(),
            v.status,
            v.cpu,
            v.rollup,
            v.fds,
            v.mappings,
            v.mappings_fresh
        )
    }

    /// Decodes `payload` both ways: the fast path must agree with bincode
    /// whenever it answers, and answer for every common-shape delta.
    fn agree(payload: &[u8]) -> bool {
        let general = wire::decode::<DeltaWire>(payload);
        let mut fast = FastDelta::default();
        match decode(payload, &mut fast).then_some(fast) {
            Some(fast) => {
                let general = general.expect("the fast path accepted what bincode refuses");
                assert_eq!(seen(fast.view()), seen(general.view()), "{payload:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_fast_path_reads_what_bincode_reads() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fast = 0;
        for _ in 0..20_000 {
            let d = delta(&mut rng);
            let common = d.status.len() <= SLOTS
                && d.cpu.as_ref().map_or(true, |c| c.len() <= SLOTS)
                && d.rollup.as_ref().map_or(true, |c| c.len() <= SLOTS)
                && d.fds.as_ref().map_or(true, |f| {
                    f.counts.len() <= SLOTS
                        && !matches!(f.targets, TargetsDeltaWire::Changed { .. })
                })
                && !matches!(d.mappings, MappingsDeltaWire::Changed { .. });
            let payload = wire::encode(&d, "delta").expect("encodes");
            assert_eq!(agree(&payload), common, "{d:?}");
            fast += usize::from(common);
        }
        assert!(fast > 1_000, "only {fast} deltas of the common shape");
    }

    #[test]
    fn damaged_payloads_are_read_alike_or_left_to_bincode() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let mut payload = wire::encode(&delta(&mut rng), "delta").expect("encodes");
            match rng.next() % 3 {
                0 if !payload.is_empty() => {
                    let at = (rng.next() as usize) % payload.len();
                    payload[at] ^= 1 << (rng.next() % 8);
                }
                1 => payload.truncate((rng.next() as usize) % (payload.len() + 1)),
                _ => payload.push(rng.next() as u8),
            }
            agree(&payload);
        }
    }
}

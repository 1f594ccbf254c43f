//! Writing a recording.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Weak};

use crate::block::BlockWriter;
use crate::frame::{self, kind};
use crate::model::{End, Header, Mapping, ProcessId, ProcessSample, Record};
use crate::wire::{self, KeyframeWire, MappingWire};
use crate::{delta, WriteError, MAGIC};

/// The default of [`Writer::keyframe_interval`].
const DEFAULT_KEYFRAME_INTERVAL: u32 = 60;

/// Writes a recording: the file header and a header frame, then one frame
/// per [`Record`].
///
/// Process samples are written as deltas from the previous sample of the
/// same process whenever that is possible, with a full keyframe at least
/// every [`keyframe_interval`](Writer::keyframe_interval) samples so that a
/// damaged frame costs a bounded stretch of that process's history.
///
/// Frames are handed to the output whole, one `write_all` each, and
/// nothing is flushed until [`flush`](Writer::flush) or
/// [`finish`](Writer::finish): wrap files in a `BufWriter` and flush when a
/// reader must see what was written (memtrail's recorder flushes after
/// every frame, so a killed recorder loses at most the frame in hand).
///
/// [`Writer::compressed`] writes format version 2 instead: records are
/// gathered into blocks compressed with zstd, and a block is written when
/// [`flush`](Writer::flush) is called, when it holds 1 MiB, or when it has
/// been open for a second (checked as records are written). A killed
/// recorder then loses the block in hand.
pub struct Writer<W: Write> {
    out: W,
    keyframe_interval: u32,
    processes: rustc_hash::FxHashMap<ProcessId, Base>,
    bytes_written: u64,
    /// The frame being written, reused to spare allocations.
    scratch: Vec<u8>,
    /// Version 2: the block being filled.
    blocks: Option<BlockWriter>,
    /// Made when the first list of regions is kept as a base.
    packer: Option<Packer>,
}

/// The last sample written for a process: what its next delta is made from.
struct Base {
    /// `None` when every sample is a keyframe: nothing is ever made from it.
    /// Its `mappings` are taken out and kept in `mappings` below.
    sample: Option<ProcessSample>,
    /// The base's regions, packed.
    mappings: Option<PackedMappings>,
    seq: u64,
    /// Deltas written since its last keyframe.
    since_keyframe: u32,
}

/// A delta base's regions, kept small between samples.
///
/// A recorder following many processes holds every process's last list of
/// regions here (tens of thousands of `Mapping`s of about 200 bytes). While
/// the collector carries the same list over (`Arc`), the writer only needs
/// to recognise it; when the collector reads a fresh list, the old one
/// would otherwise stay alive beside it until the tick is written, doubling
/// the recorder's memory at that tick. So the base keeps the list in its
/// wire encoding (about 40 bytes a region), compressed ([`Packer`]: a few
/// bytes a region), and a weak reference to the shared list: a sample that
/// carries the same list uses it as is, a fresh one decodes the packed copy.
struct PackedMappings {
    /// The list the base was made from, while anyone still holds it.
    shared: Weak<Vec<Mapping>>,
    /// `Vec<MappingWire>` in the payload encoding, compressed.
    packed: Box<[u8]>,
    /// The length of the payload encoding.
    len: usize,
}

/// Compresses the delta bases' regions: zstd's fastest level, one frame per
/// list. On 51 processes of 1,000 regions this keeps 0.17 MB of bases
/// instead of 2.1 MB (heaptrack). The cost is at `full` detail, where every
/// sample packs and unpacks its base: about 3% of a recorder's CPU on a
/// process of 10,000 regions (docs/performance.md, "Recorder memory").
struct Packer {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl Packer {
    /// The level: the fastest of zstd's ordinary ones. The bases are
    /// regular (addresses, sizes, repeated permissions and paths) and
    /// compress several times over even at this level.
    const LEVEL: i32 = 1;

    fn new() -> Option<Packer> {
        Some(Packer {
            compressor: zstd::bulk::Compressor::new(Self::LEVEL).ok()?,
            decompressor: zstd::bulk::Decompressor::new().ok()?,
        })
    }
}

impl PackedMappings {
    /// `None` when the list cannot be encoded (then no delta is made).
    fn pack(list: &Arc<Vec<Mapping>>, packer: &mut Packer) -> Option<PackedMappings> {
        let wires = list
            .iter()
            .map(MappingWire::from_model)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let encoded = wire::encode(&wires, "delta base").ok()?;
        drop(wires);
        let packed = packer.compressor.compress(&encoded).ok()?;
        Some(PackedMappings {
            shared: Arc::downgrade(list),
            packed: packed.into_boxed_slice(),
            len: encoded.len(),
        })
    }

    /// The list, shared with `next` when it is the same one.
    fn unpack(
        &self,
        next: Option<&Arc<Vec<Mapping>>>,
        packer: &mut Packer,
    ) -> Option<Arc<Vec<Mapping>>> {
        if let (Some(list), Some(next)) = (self.shared.upgrade(), next) {
            if Arc::ptr_eq(&list, next) {
                return Some(list);
            }
        }
        let encoded = packer
            .decompressor
            .decompress(&self.packed, self.len)
            .ok()?;
        let wires: Vec<MappingWire> = wire::decode(&encoded).ok()?;
        Some(Arc::new(wires.iter().map(MappingWire::to_model).collect()))
    }
}

impl<W: Write> Writer<W> {
    /// Writes the file header and the header frame of format version 1
    /// (uncompressed), and flushes them.
    pub fn new(out: W, header: &Header) -> Result<Self, WriteError> {
        Writer::start(out, header, None)
    }

    /// Writes the file header and the header frame of format version 2
    /// (records in compressed blocks), and flushes them.
    pub fn compressed(out: W, header: &Header) -> Result<Self, WriteError> {
        Writer::start(out, header, Some(BlockWriter::new()))
    }

    fn start(out: W, header: &Header, blocks: Option<BlockWriter>) -> Result<Self, WriteError> {
        let version: u16 = if blocks.is_some() { 2 } else { 1 };
        let mut writer = Writer {
            out,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL,
            processes: rustc_hash::FxHashMap::default(),
            bytes_written: 0,
            scratch: Vec::new(),
            blocks: None,
            packer: None,
        };
        let mut file_header = Vec::with_capacity(12);
        file_header.extend_from_slice(&MAGIC);
        file_header.extend_from_slice(&version.to_le_bytes());
        file_header.extend_from_slice(&0u16.to_le_bytes());
        writer.out.write_all(&file_header)?;
        writer.bytes_written += file_header.len() as u64;
        let payload = wire::encode(&wire::HeaderWire::from_model(header), "header")?;
        writer.write_frame(kind::HEADER, &payload)?;
        writer.blocks = blocks;
        writer.flush()?;
        Ok(writer)
    }

    /// The format version being written: 1, or 2 for [`Writer::compressed`].
    pub fn version(&self) -> u16 {
        if self.blocks.is_some() {
            2
        } else {
            1
        }
    }

    /// Version 2: starts a new compression chain after `n` blocks (default
    /// 240). A damaged block costs the rest of its chain; 1 makes every
    /// block independent, at some cost in size.
    pub fn chain_blocks(mut self, n: u32) -> Self {
        if let Some(blocks) = self.blocks.as_mut() {
            blocks.chain_blocks = n.max(1);
        }
        self
    }

    /// Writes a full keyframe every `n` samples of a process (default 60);
    /// 1 (or 0) makes every sample a keyframe.
    pub fn keyframe_interval(mut self, n: u32) -> Self {
        self.keyframe_interval = n.max(1);
        self
    }

    /// Writes one record as one frame. Does not flush.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        match record {
            Record::Process(sample) => self.write_sample(sample),
            Record::System(s) => {
                let wire = wire::SystemWire::from_model(s).map_err(unrepresentable)?;
                self.write_payload(kind::SYSTEM, &wire, "system sample")
            }
            Record::Exit(e) => {
                self.write_payload(kind::EXIT, &wire::ExitWire::from_model(e), "process exit")?;
                // Readers forget the process here too: its memory is freed
                // and a reused identity would start with a keyframe.
                self.processes.remove(&e.id);
                Ok(())
            }
            Record::Marker(m) => {
                self.write_payload(kind::MARKER, &wire::MarkerWire::from_model(m), "marker")
            }
            Record::Census(c) => {
                self.write_payload(kind::CENSUS, &wire::CensusWire::from_model(c), "census")
            }
            Record::Retention(r) => self.write_payload(
                kind::RETENTION,
                &wire::RetentionWire::from_model(r),
                "retention",
            ),
            Record::NativeStack(s) => self.write_payload(
                kind::NATIVE_STACK,
                &crate::native::NativeStackWire::from_model(s),
                "native stack",
            ),
            Record::NativeModule(m) => self.write_payload(
                kind::NATIVE_MODULE,
                &crate::native::NativeModuleWire::from_model(m),
                "native module",
            ),
            Record::Notice(n) => {
                self.write_payload(kind::NOTICE, &wire::NoticeWire::from_model(n), "notice")
            }
            Record::End(e) => self.write_payload(kind::END, &wire::EndWire::from_model(e), "end"),
        }
    }

    /// Flushes the output: everything written so far becomes readable
    /// downstream. In version 2 this ends the block being filled.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.end_block()?;
        self.out.flush()?;
        Ok(())
    }

    /// Version 2: writes the block being filled, if it holds anything.
    fn end_block(&mut self) -> Result<(), WriteError> {
        let Some(blocks) = self.blocks.as_mut() else {
            return Ok(());
        };
        if blocks.is_empty() {
            return Ok(());
        }
        let payload = blocks.end_block(self.bytes_written)?;
        if payload.len() > crate::MAX_FRAME_LEN as usize {
            return Err(WriteError::TooLarge { what: "block" });
        }
        self.put_frame(kind::BLOCK, &payload)
    }

    /// Writes the end frame, flushes, and gives back the output.
    pub fn finish(mut self, end: &End) -> Result<W, WriteError> {
        self.write_payload(kind::END, &wire::EndWire::from_model(end), "end")?;
        self.flush()?;
        Ok(self.out)
    }

    /// Bytes handed to the output so far, the file header included (in
    /// version 2, not counting the block being filled).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The output.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn write_sample(&mut self, sample: &ProcessSample) -> Result<(), WriteError> {
        // Taken out: the delta check consumes it. If writing fails the
        // process starts again from a keyframe.
        let mut prev = self.processes.remove(&sample.id);
        let prev_mappings = prev.as_mut().and_then(|b| b.mappings.take());
        let seq = prev.as_ref().map_or(0, |b| b.seq.wrapping_add(1));
        let next_since_keyframe = prev.as_ref().map_or(0, |b| b.since_keyframe + 1);
        let delta = prev
            .filter(|b| b.since_keyframe.saturating_add(1) < self.keyframe_interval)
            .and_then(|b| {
                let mut base = b.sample?;
                if let Some(packed) = &prev_mappings {
                    let packer = self.packer.as_mut()?;
                    base.mappings = Some(packed.unpack(sample.mappings.as_ref(), packer)?);
                }
                Some(base)
            })
            .filter(|b| b.detail == sample.detail)
            .and_then(|b| {
                let delta = delta::diff(&b, sample, seq).ok()?;
                // Only a delta that gives back exactly this sample will do.
                // The sample itself is then the next base: its regions are
                // shared with whoever else holds them (the collector's
                // carried copy), where the rebuilt list would be one more.
                let rebuilt = delta::apply(b, &delta).ok()?;
                (rebuilt == *sample).then(|| (delta, sample.clone()))
            });
        let (since_keyframe, base) = match delta {
            Some((delta, rebuilt)) => {
                self.write_payload(kind::DELTA, &delta, "process sample")?;
                (next_since_keyframe, Some(rebuilt))
            }
            None => {
                let wire = KeyframeWire::from_model(sample, seq).map_err(unrepresentable)?;
                self.write_payload(kind::KEYFRAME, &wire, "process sample")?;
                // Nothing is ever made from the base if every sample is a
                // keyframe.
                (0, (self.keyframe_interval > 1).then(|| sample.clone()))
            }
        };
        let (base, mappings) = match base {
            Some(mut base) => match base.mappings.take() {
                Some(list) => match prev_mappings
                    .filter(|p| std::ptr::eq(p.shared.as_ptr(), Arc::as_ptr(&list)))
                    .or_else(|| {
                        if self.packer.is_none() {
                            self.packer = Packer::new();
                        }
                        PackedMappings::pack(&list, self.packer.as_mut()?)
                    }) {
                    Some(packed) => (Some(base), Some(packed)),
                    // Unencodable regions: the next sample is a keyframe.
                    None => (None, None),
                },
                None => (Some(base), None),
            },
            None => (None, None),
        };
        self.processes.insert(
            sample.id,
            Base {
                sample: base,
                mappings,
                seq,
                since_keyframe,
            },
        );
        Ok(())
    }

    fn write_payload<T: serde::Serialize>(
        &mut self,
        kind: u8,
        wire: &T,
        what: &'static str,
    ) -> Result<(), WriteError> {
        let payload = wire::encode(wire, what)?;
        self.write_frame(kind, &payload)
    }

    fn write_frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), WriteError> {
        if let Some(blocks) = self.blocks.as_mut() {
            if blocks.push(kind, payload) {
                self.end_block()?;
            }
            return Ok(());
        }
        self.put_frame(kind, payload)
    }

    /// Writes a frame to the output itself.
    fn put_frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), WriteError> {
        self.scratch.clear();
        frame::encode(&mut self.scratch, kind, payload);
        self.out.write_all(&self.scratch)?;
        self.bytes_written += self.scratch.len() as u64;
        // One huge frame (a keyframe of 50k regions) does not keep its
        // buffer for the small ones that follow.
        if self.scratch.capacity() > 1024 * 1024 {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}

fn unrepresentable(field: &'static str) -> WriteError {
    WriteError::Unrepresentable { field }
}

impl<W: Write> fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("keyframe_interval", &self.keyframe_interval)
            .field("processes", &self.processes.len())
            .field("bytes_written", &self.bytes_written)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn header() -> Header {
        Header {
            writer: "test".to_string(),
            host: Host {
                hostname: "h".to_string(),
                kernel: "6.8.0".to_string(),
                page_size: 4096,
                clock_ticks: 100,
                boot_time_us: 1_700_000_000_000_000,
            },
            started_us: 1_700_000_100_000_000,
            target: String::new(),
            detail: Detail::Summary,
            interval_us: Some(1_000_000),
        }
    }

    /// A summary-level sample with pessimistic (large) identifiers and values.
    fn summary() -> ProcessSample {
        ProcessSample {
            time_us: 1_700_000_100_000_000,
            id: ProcessId {
                pid: 3_456_789,
                start_time: 987_654_321,
            },
            info: std::sync::Arc::new(ProcessInfo {
                ppid: 3_456_700,
                comm: "java".to_string(),
                cmdline: vec![
                    "/usr/bin/java".to_string(),
                    "-jar".to_string(),
                    "app.jar".to_string(),
                ],
                uid: Some(1000),
                cgroup: Some("/system.slice/app.service".to_string()),
            }),
            detail: Detail::Summary,
            status: Status {
                vm_rss: Some(2_345_678),
                vm_hwm: Some(2_400_000),
                vm_size: Some(12_345_678),
                vm_peak: Some(12_400_000),
                rss_anon: Some(2_000_000),
                rss_file: Some(345_678),
                rss_shmem: Some(0),
                vm_swap: Some(0),
                vm_data: Some(3_000_000),
                vm_stk: Some(132),
                vm_pte: Some(5_000),
                threads: Some(120),
            },
            cpu: Some(Cpu {
                utime: 9_876_543,
                stime: 1_234_567,
                minflt: 98_765_432,
                majflt: 1_234,
            }),
            rollup: None,
            fds: Some(Fds {
                file: 120,
                socket: 300,
                pipe: 8,
                anon_inode: 20,
                other: 1,
                targets: None,
            }),
            mappings: None,
            mappings_fresh: false,
        }
    }

    /// Bytes taken by the frame of `next` written after `first`.
    fn second_frame_len(first: &ProcessSample, next: &ProcessSample) -> u64 {
        let mut writer = Writer::new(Vec::new(), &header()).unwrap();
        writer
            .write(&Record::Process(Box::new(first.clone())))
            .unwrap();
        let before = writer.bytes_written();
        writer
            .write(&Record::Process(Box::new(next.clone())))
            .unwrap();
        writer.bytes_written() - before
    }

    #[test]
    fn a_steady_summary_delta_costs_at_most_64_bytes() {
        let base = summary();
        let mut next = base.clone();
        next.time_us += 1_000_137; // a second, with jitter
        next.status.vm_rss = next.status.vm_rss.map(|v| v + 12);
        next.status.rss_anon = next.status.rss_anon.map(|v| v + 12);
        let cpu = next.cpu.as_mut().unwrap();
        cpu.utime += 40;
        cpu.stime += 3;
        cpu.minflt += 60;
        let len = second_frame_len(&base, &next);
        eprintln!("steady summary delta: {len} bytes");
        assert!(len <= 64, "a steady summary delta takes {len} bytes");
        assert!(
            second_frame_len(&base, &base) < len,
            "an unchanged sample costs less still"
        );
    }

    #[test]
    fn a_delta_of_10_mappings_in_1000_costs_at_most_1_kib() {
        let mut base = summary();
        base.detail = Detail::Maps;
        base.mappings = Some(
            (0..1000u64)
                .map(|i| Mapping {
                    start: 0x7f12_3400_0000 + i * 0x20_0000,
                    end: 0x7f12_3400_0000 + i * 0x20_0000 + 0x1_0000 * (1 + i % 9),
                    perms: "rw-p".into(),
                    offset: 0,
                    dev: 0,
                    inode: 0,
                    path: if i % 3 == 0 {
                        format!("/usr/lib/lib{i}.so").into()
                    } else {
                        Text::default()
                    },
                    size: 64 * (1 + i % 9),
                    rss: 40 * (1 + i % 9),
                    pss: 40 * (1 + i % 9),
                    private_dirty: 40 * (1 + i % 9),
                    anonymous: 40 * (1 + i % 9),
                    swap_pss: Some(0),
                    locked: Some(0),
                    ..Mapping::default()
                })
                .collect::<Vec<_>>()
                .into(),
        );
        base.mappings_fresh = true;
        let mut next = base.clone();
        next.time_us += 5_000_000;
        let maps = next
            .mappings
            .as_mut()
            .map(std::sync::Arc::make_mut)
            .unwrap();
        for i in [3, 100, 250, 400, 555, 700, 850, 999] {
            let m = &mut maps[i];
            m.end += 0x4_0000;
            m.size += 256;
            m.rss += 200;
            m.pss += 190;
            m.private_dirty += 200;
            m.anonymous += 200;
        }
        maps.remove(500);
        maps.push(Mapping {
            start: 0x7fff_0000_0000,
            end: 0x7fff_0040_0000,
            perms: "rw-p".into(),
            path: "[anon:arena]".into(),
            size: 4096,
            rss: 1024,
            ..Mapping::default()
        });
        let len = second_frame_len(&base, &next);
        eprintln!("1000-mapping delta with 10 changes: {len} bytes");
        assert!(len <= 1024, "the delta takes {len} bytes");
    }
}

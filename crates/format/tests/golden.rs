//! Golden files pin the bytes of format version 1: a recording written
//! today must open in every later version, so these bytes never change.
//!
//! To create a golden file that does not exist yet, run the tests with
//! `MEMTRAIL_BLESS=1`. An existing golden file is never rewritten.

use std::path::PathBuf;

use memtrail_format::*;

use crate::util::mapping;

/// The keyframe interval the golden recording is written with, small enough
/// to have keyframes after deltas.
const KEYFRAME_INTERVAL: u32 = 3;

/// A deterministic recording that exercises every frame kind and every kind
/// of change a delta can carry. Never change it: add a new one instead.
pub fn golden_recording() -> (Header, Vec<Record>) {
    let header = Header {
        writer: "memtrail 0.1.0".to_string(),
        host: Host {
            hostname: "golden".to_string(),
            kernel: "6.8.0".to_string(),
            page_size: 4096,
            clock_ticks: 100,
            boot_time_us: 1_700_000_000_000_000,
        },
        started_us: 1_700_000_100_000_000,
        target: "--pid 4242".to_string(),
        detail: Detail::Full,
        interval_us: Some(1_000_000),
    };
    let t0 = header.started_us;
    let id = ProcessId {
        pid: 4242,
        start_time: 98_765,
    };
    let mut a = ProcessSample {
        time_us: t0,
        id,
        info: std::sync::Arc::new(ProcessInfo {
            ppid: 1,
            comm: "leaky".to_string(),
            cmdline: vec!["leaky".to_string(), "--port=80".to_string()],
            uid: Some(1000),
            cgroup: Some("/leaky.service".to_string()),
        }),
        detail: Detail::Summary,
        status: Status {
            vm_rss: Some(2048),
            vm_hwm: Some(2048),
            vm_size: Some(8192),
            vm_peak: Some(8192),
            rss_anon: Some(1024),
            rss_file: Some(1024),
            rss_shmem: Some(0),
            vm_swap: Some(0),
            vm_data: Some(4096),
            vm_stk: Some(132),
            vm_pte: Some(48),
            threads: Some(2),
        },
        cpu: Some(Cpu {
            utime: 10,
            stime: 5,
            minflt: 300,
            majflt: 1,
        }),
        rollup: None,
        fds: Some(Fds {
            file: 3,
            socket: 1,
            pipe: 0,
            anon_inode: 1,
            other: 0,
            targets: None,
        }),
        mappings: None,
        mappings_fresh: false,
    };
    let mut records = vec![Record::Process(Box::new(a.clone()))];
    let push = |records: &mut Vec<Record>, s: &ProcessSample| {
        records.push(Record::Process(Box::new(s.clone())));
    };

    // A steady summary delta.
    a.time_us += 1_000_000;
    a.status.vm_rss = Some(2052);
    a.status.rss_anon = Some(1028);
    a.cpu.as_mut().unwrap().utime += 2;
    push(&mut records, &a);

    records.push(Record::System(Box::new(SystemSample {
        time_us: t0 + 1_000_500,
        meminfo: MemInfo {
            mem_total: Some(16_384_000),
            mem_free: Some(8_000_000),
            mem_available: Some(12_000_000),
            buffers: Some(100_000),
            cached: Some(3_000_000),
            swap_total: Some(0),
            swap_free: Some(0),
            shmem: Some(50_000),
            commit_limit: None,
            committed_as: None,
        },
        cgroups: vec![CgroupMemory {
            path: "/leaky.service".to_string(),
            current_bytes: Some(2_101_248),
            max_bytes: None,
        }],
    })));
    records.push(Record::Marker(Marker {
        time_us: t0 + 1_500_000,
        label: "load test".to_string(),
        pid: Some(4242),
        source: "cli".to_string(),
    }));

    // Full detail from now on: a keyframe with mappings and descriptors.
    a.time_us += 1_000_000;
    a.detail = Detail::Full;
    a.rollup = Some(Rollup {
        rss: Some(2056),
        pss: Some(1900),
        pss_anon: Some(1032),
        pss_file: Some(868),
        pss_shmem: Some(0),
        shared_clean: Some(300),
        shared_dirty: Some(0),
        private_clean: Some(724),
        private_dirty: Some(1032),
        anonymous: Some(1032),
        swap: Some(0),
        swap_pss: Some(0),
    });
    a.fds.as_mut().unwrap().targets = Some(vec![
        Fd {
            fd: 0,
            target: "/dev/null".to_string(),
        },
        Fd {
            fd: 1,
            target: "pipe:[101]".to_string(),
        },
        Fd {
            fd: 3,
            target: "socket:[202]".to_string(),
        },
    ]);
    a.mappings = Some(
        vec![
            mapping(0x5555_5555_4000, 2, "/usr/bin/leaky", 8),
            mapping(0x5555_5600_0000, 64, "[heap]", 256),
            mapping(0x7f00_0000_0000, 16, "", 64),
            mapping(0x7fff_ffde_0000, 33, "[stack]", 12),
        ]
        .into(),
    );
    a.mappings_fresh = true;
    push(&mut records, &a);

    // The heap grows, a descriptor opens, an anonymous region moves.
    a.time_us += 1_000_000;
    {
        let maps = a.mappings.as_mut().map(std::sync::Arc::make_mut).unwrap();
        maps[1].end += 16 * 4096;
        maps[1].size += 64;
        maps[1].rss += 64;
        maps[1].private_dirty += 64;
        maps[2].start += 0x10_0000;
        maps[2].end += 0x10_0000;
    }
    a.fds.as_mut().unwrap().file += 1;
    a.fds.as_mut().unwrap().targets.as_mut().unwrap().push(Fd {
        fd: 4,
        target: "/var/log/leaky.log".to_string(),
    });
    a.status.vm_rss = Some(2116);
    push(&mut records, &a);

    // A descriptor closes, a library is unmapped, the command line changes.
    a.time_us += 1_000_000;
    a.mappings
        .as_mut()
        .map(std::sync::Arc::make_mut)
        .unwrap()
        .remove(0);
    a.fds.as_mut().unwrap().targets.as_mut().unwrap().remove(1);
    a.fds.as_mut().unwrap().pipe = 0;
    std::sync::Arc::make_mut(&mut a.info)
        .cmdline
        .push("--verbose".to_string());
    a.mappings_fresh = false;
    push(&mut records, &a);

    // The third sample since the keyframe: a keyframe again.
    a.time_us += 1_000_000;
    a.status.threads = Some(3);
    push(&mut records, &a);

    records.push(Record::Notice(Box::new(Notice {
        time_us: a.time_us + 10,
        process: Some(id),
        kind: NoticeKind::Vanished,
        path: "/proc/4242/smaps".to_string(),
        message: "process 4242 exited while its smaps was being read".to_string(),
    })));
    records.push(Record::Exit(ProcessExit {
        time_us: a.time_us + 20,
        id,
        exit_code: Some(137),
    }));
    records.push(Record::End(End {
        time_us: a.time_us + 30,
        reason: EndReason::TargetExited,
        samples: 6,
    }));
    (header, records)
}

fn encode(header: &Header, records: &[Record]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), header)
        .unwrap()
        .keyframe_interval(KEYFRAME_INTERVAL);
    for r in records {
        writer.write(r).unwrap();
    }
    writer.flush().unwrap();
    writer.get_ref().clone()
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(name)
}

/// The first difference between two byte strings, for the failure message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at byte {i}: {:#04x} now, {:#04x} in the golden file",
            a[i], b[i]
        ),
        None => format!(
            "same prefix, but {} bytes now and {} in the golden file",
            a.len(),
            b.len()
        ),
    }
}

/// Requires `bytes` to be the golden file `name`, byte for byte, and
/// returns it. A missing golden file is written under `MEMTRAIL_BLESS=1`
/// (then `None`: nothing to compare); an existing one is never rewritten.
fn same_as_golden(name: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let path = golden_path(name);
    let golden = match std::fs::read(&path) {
        Ok(golden) => golden,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("MEMTRAIL_BLESS").is_some_and(|v| v == "1") {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
                eprintln!("wrote {}", path.display());
                return None;
            }
            panic!(
                "{} is missing: run the tests with MEMTRAIL_BLESS=1 to create it, review it and commit it",
                path.display()
            );
        }
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    assert!(
        bytes == golden,
        "format v1 bytes changed: this breaks every existing recording; add a new format version instead \
         ({}; {} is never rewritten, not even with MEMTRAIL_BLESS=1)",
        first_difference(bytes, &golden),
        path.display()
    );
    Some(golden)
}

#[test]
fn v1_recording_bytes_never_change() {
    let (header, records) = golden_recording();
    same_as_golden("v1-recording.mtr", &encode(&header, &records));
}

#[test]
fn v1_recording_reads_back() {
    let (header, records) = golden_recording();
    let path = golden_path("v1-recording.mtr");
    let Ok(golden) = std::fs::read(&path) else {
        // Reported by v1_recording_bytes_never_change.
        return;
    };
    let mut reader = Reader::new(golden.as_slice()).unwrap();
    assert_eq!(reader.header(), &header);
    let frames = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(reader.take_warnings(), vec![]);
    assert_eq!(
        frames.iter().map(|f| f.record.clone()).collect::<Vec<_>>(),
        records
    );
    use Encoding::*;
    let encodings: Vec<_> = frames.iter().map(|f| f.encoding).collect();
    assert_eq!(
        encodings,
        [Keyframe, Delta, Plain, Plain, Keyframe, Delta, Delta, Keyframe, Plain, Plain, Plain]
    );
    // Frames are contiguous: each starts where the one before ended.
    let opened = open(&path).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(opened, frames);
}

/// The frame kinds added to version 1 after `v1-recording.mtr` was
/// pinned: a census (0x41) with and without a process, next to a marker.
/// Never change it: add a new one instead.
pub fn golden_census() -> (Header, Vec<Record>) {
    let (mut header, _) = golden_recording();
    header.target = "run -- python3 app.py".to_string();
    let t0 = header.started_us;
    let records = vec![
        Record::Marker(Marker {
            time_us: t0 + 500_000,
            label: "before step".to_string(),
            pid: Some(4242),
            source: "events".to_string(),
        }),
        Record::Census(Box::new(Census {
            time_us: t0 + 1_000_000,
            process: Some(ProcessId {
                pid: 4242,
                start_time: 98_765,
            }),
            source: "gc".to_string(),
            counts: vec![
                CensusCount {
                    key: "dict".to_string(),
                    count: 1234,
                },
                CensusCount {
                    key: "__main__.Widget".to_string(),
                    count: 300,
                },
            ],
        })),
        Record::Census(Box::new(Census {
            time_us: t0 + 2_000_000,
            process: None,
            source: "tracemalloc".to_string(),
            counts: vec![CensusCount {
                key: "app.py:12".to_string(),
                count: 1_048_576,
            }],
        })),
        Record::End(End {
            time_us: t0 + 3_000_000,
            reason: EndReason::Completed,
            samples: 0,
        }),
    ];
    (header, records)
}

/// Compares `records` written after `header` with the golden file `name`
/// ([`same_as_golden`]) and reads the golden file back.
fn check_golden(name: &str, header: &Header, records: &[Record]) {
    let Some(golden) = same_as_golden(name, &encode(header, records)) else {
        return;
    };
    let mut reader = Reader::new(golden.as_slice()).unwrap();
    assert_eq!(reader.header(), header);
    let read: Vec<Record> = reader.by_ref().map(|f| f.unwrap().record).collect();
    assert_eq!(reader.take_warnings(), vec![]);
    assert_eq!(read, records);
}

#[test]
fn v1_census_bytes_never_change() {
    let (header, records) = golden_census();
    check_golden("v1-census.mtr", &header, &records);
}

/// The golden recording in format version 2: blocks after records 2, 4
/// and 7 and at the end, in chains of two blocks.
fn encode_v2(header: &Header, records: &[Record]) -> Vec<u8> {
    let mut writer = Writer::compressed(Vec::new(), header)
        .unwrap()
        .keyframe_interval(KEYFRAME_INTERVAL)
        .chain_blocks(2);
    for (i, r) in records.iter().enumerate() {
        writer.write(r).unwrap();
        if [1, 3, 6].contains(&i) {
            writer.flush().unwrap();
        }
    }
    writer.flush().unwrap();
    writer.get_ref().clone()
}

/// A varint at the start of `b` (docs/format.md): value and length.
fn varint(b: &[u8]) -> (u64, usize) {
    match b[0] {
        0xFB => (u64::from(u16::from_le_bytes([b[1], b[2]])), 3),
        0xFC => (u64::from(u32::from_le_bytes([b[1], b[2], b[3], b[4]])), 5),
        0xFD => (u64::from_le_bytes(b[1..9].try_into().unwrap()), 9),
        v => (u64::from(v), 1),
    }
}

/// The layers of a version 2 file that its writer pins: the 12-byte file
/// header, the header frame, and each block's kind, flags and head (chain,
/// index, content length and content CRC-32: the content byte for byte).
/// The compressed bytes themselves are zstd's choice and may differ
/// between zstd versions and settings for the same content; so may the
/// offsets of frames after the first block, so a block's chain (the
/// offset of the block that starts it) is given as that block's ordinal
/// among the file's frames (`u64::MAX` if no frame starts there).
fn v2_layers(bytes: &[u8]) -> Vec<Vec<u64>> {
    let mut out = vec![bytes[..12]
        .iter()
        .map(|&b| u64::from(b))
        .collect::<Vec<_>>()];
    let mut frames = std::collections::HashMap::new();
    let mut at = 12;
    while at < bytes.len() {
        frames.insert(at as u64, frames.len() as u64);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 12 + len;
    }
    let mut at = 12;
    while at < bytes.len() {
        let (kind, flags) = (bytes[at + 2], bytes[at + 3]);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let payload = &bytes[at + 12..at + 12 + len];
        if kind == 0x01 {
            out.push(
                bytes[at..at + 12 + len]
                    .iter()
                    .map(|&b| u64::from(b))
                    .collect(),
            );
        } else {
            let (chain, a) = varint(payload);
            let (index, b) = varint(&payload[a..]);
            let (content_len, c) = varint(&payload[a + b..]);
            let crc = &payload[a + b + c..a + b + c + 4];
            let crc = u64::from(u32::from_le_bytes(crc.try_into().unwrap()));
            out.push(vec![
                u64::from(kind),
                u64::from(flags),
                frames.get(&chain).copied().unwrap_or(u64::MAX),
                index,
                content_len,
                crc,
            ]);
        }
        at += 12 + len;
    }
    out
}

#[test]
fn v2_recording_content_never_changes() {
    let (header, records) = golden_recording();
    let now = encode_v2(&header, &records);
    let path = golden_path("v2-recording.mtr");
    let golden = match std::fs::read(&path) {
        Ok(golden) => golden,
        Err(_) => {
            // Created (under MEMTRAIL_BLESS=1) or reported missing.
            same_as_golden("v2-recording.mtr", &now);
            return;
        }
    };
    assert_eq!(
        v2_layers(&now),
        v2_layers(&golden),
        "format v2 content changed: this breaks every existing recording; add a new format version instead"
    );
}

#[test]
fn v2_recording_reads_back() {
    let (header, records) = golden_recording();
    let Ok(golden) = std::fs::read(golden_path("v2-recording.mtr")) else {
        return;
    };
    let mut reader = Reader::new(golden.as_slice()).unwrap();
    assert_eq!(reader.version(), 2);
    assert_eq!(reader.header(), &header);
    let frames = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(reader.take_warnings(), vec![]);
    assert_eq!(
        frames.iter().map(|f| f.record.clone()).collect::<Vec<_>>(),
        records
    );
    use Encoding::*;
    let encodings: Vec<_> = frames.iter().map(|f| f.encoding).collect();
    assert_eq!(
        encodings,
        [Keyframe, Delta, Plain, Plain, Keyframe, Delta, Delta, Keyframe, Plain, Plain, Plain]
    );
    // Four blocks: each record carries the offset of its block.
    let mut blocks: Vec<u64> = frames.iter().map(|f| f.offset).collect();
    blocks.dedup();
    assert_eq!(blocks.len(), 4);
    // The chains: blocks 0-1 and 2-3, the file's frames 1-2 and 3-4 (frame
    // 0 is the header frame), each naming its first block.
    let layers = v2_layers(&golden);
    let heads: Vec<(u64, u64)> = layers[2..].iter().map(|l| (l[2], l[3])).collect();
    assert_eq!(heads, [(1, 0), (1, 1), (3, 0), (3, 1)]);
    // ... by its offset, which is where the reader found it.
    let chain_at = |block: u64| {
        let at = block as usize;
        let payload = &golden[at + 12..];
        varint(payload).0
    };
    let chains: Vec<u64> = blocks.iter().map(|&b| chain_at(b)).collect();
    assert_eq!(chains, [blocks[0], blocks[0], blocks[2], blocks[2]]);
}

/// The native allocation-site kinds (`run --native`): a module (0x44) and
/// a stack (0x43), next to the census of source `native` that counts
/// bytes by `stack:ID`. Never change it: add a new one instead.
pub fn golden_native() -> (Header, Vec<Record>) {
    let (mut header, _) = golden_recording();
    header.target = "run -- ./app".to_string();
    let t0 = header.started_us;
    let app = Some(ProcessId {
        pid: 4242,
        start_time: 98_765,
    });
    let records = vec![
        Record::NativeModule(Box::new(NativeModule {
            time_us: t0 + 100_000,
            process: app,
            start: 0x5555_0000_0000,
            end: 0x5555_0000_4000,
            bias: 0x5555_0000_0000,
            path: "/srv/app".to_string(),
            build_id: vec![0xde, 0xad, 0xbe, 0xef],
        })),
        Record::NativeStack(Box::new(NativeStack {
            time_us: t0 + 1_000_000,
            process: app,
            id: 0x0123_4567_89ab_cdef,
            frames: vec![0x5555_0000_1169, 0x5555_0000_11a0],
        })),
        Record::Census(Box::new(Census {
            time_us: t0 + 1_000_000,
            process: app,
            source: "native".to_string(),
            counts: vec![CensusCount {
                key: "stack:0123456789abcdef".to_string(),
                count: 524_288,
            }],
        })),
    ];
    (header, records)
}

#[test]
fn v1_native_bytes_never_change() {
    let (header, records) = golden_native();
    check_golden("v1-native.mtr", &header, &records);
}

/// The retention frame (0x42) added to version 1 after `v1-census.mtr`:
/// what keeps the instances of a growing type alive, with a process and
/// without one. Never change it: add a new one instead.
pub fn golden_retention() -> (Header, Vec<Record>) {
    let (mut header, _) = golden_recording();
    header.target = "run -- python3 app.py".to_string();
    let t0 = header.started_us;
    let count = |key: &str, count: u64| CensusCount {
        key: key.to_string(),
        count,
    };
    let records = vec![
        Record::Retention(Box::new(Retention {
            time_us: t0 + 1_000_000,
            process: Some(ProcessId {
                pid: 4242,
                start_time: 98_765,
            }),
            source: "gc".to_string(),
            key: "app.Session".to_string(),
            native: false,
            sampled: 4,
            owners: vec![],
            holds: vec![count("dict", 20), count("list", 3)],
            chains: vec![RetentionChain {
                steps: vec!["app.cache.SESSIONS".to_string(), "[<key>]".to_string()],
                instances: 4,
            }],
        })),
        Record::Retention(Box::new(Retention {
            time_us: t0 + 2_000_000,
            process: None,
            source: "gc".to_string(),
            key: "app.Child".to_string(),
            native: false,
            sampled: 1,
            owners: vec![count("app.Session", 1)],
            holds: vec![],
            chains: vec![],
        })),
        Record::End(End {
            time_us: t0 + 3_000_000,
            reason: EndReason::Completed,
            samples: 0,
        }),
    ];
    (header, records)
}

#[test]
fn v1_retention_bytes_never_change() {
    let (header, records) = golden_retention();
    check_golden("v1-retention.mtr", &header, &records);
}

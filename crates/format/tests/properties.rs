//! Property tests: any records the model can hold come back from a
//! recording exactly as written, and no input makes the reader panic.

use memtrail_format::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::util::header;

/// A counter: mostly small, sometimes huge, never 2^64-1 (which format
/// version 1 cannot store and the writer refuses).
fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![0..5000u64, 0..u64::MAX - 1]
}

fn opt_counter() -> impl Strategy<Value = Option<u64>> {
    option::of(counter())
}

/// Any string, including control characters and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z/\\[\\]:]{0,12}"]
}

fn detail() -> impl Strategy<Value = Detail> {
    prop_oneof![
        Just(Detail::Summary),
        Just(Detail::Rollup),
        Just(Detail::Maps),
        Just(Detail::Full)
    ]
}

fn status() -> impl Strategy<Value = Status> {
    vec(opt_counter(), 12).prop_map(|v| Status {
        vm_rss: v[0],
        vm_hwm: v[1],
        vm_size: v[2],
        vm_peak: v[3],
        rss_anon: v[4],
        rss_file: v[5],
        rss_shmem: v[6],
        vm_swap: v[7],
        vm_data: v[8],
        vm_stk: v[9],
        vm_pte: v[10],
        threads: v[11],
    })
}

fn rollup() -> impl Strategy<Value = Rollup> {
    vec(opt_counter(), 12).prop_map(|v| Rollup {
        rss: v[0],
        pss: v[1],
        pss_anon: v[2],
        pss_file: v[3],
        pss_shmem: v[4],
        shared_clean: v[5],
        shared_dirty: v[6],
        private_clean: v[7],
        private_dirty: v[8],
        anonymous: v[9],
        swap: v[10],
        swap_pss: v[11],
    })
}

fn cpu() -> impl Strategy<Value = Cpu> {
    (counter(), counter(), counter(), counter()).prop_map(|(utime, stime, minflt, majflt)| Cpu {
        utime,
        stime,
        minflt,
        majflt,
    })
}

fn fds() -> impl Strategy<Value = Fds> {
    (
        vec(counter(), 5),
        option::of(vec(
            (0..64u32, text()).prop_map(|(fd, target)| Fd { fd, target }),
            0..5,
        )),
    )
        .prop_map(|(c, targets)| Fds {
            file: c[0],
            socket: c[1],
            pipe: c[2],
            anon_inode: c[3],
            other: c[4],
            targets,
        })
}

fn mapping() -> impl Strategy<Value = Mapping> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            text(),
            any::<u64>(),
            any::<u64>(),
        ),
        (any::<u64>(), text(), vec(counter(), 9)),
        (opt_counter(), opt_counter()),
    )
        .prop_map(
            |((start, end, perms, offset, dev), (inode, path, c), (swap_pss, locked))| Mapping {
                start,
                end,
                perms: perms.into(),
                offset,
                dev,
                inode,
                path: path.into(),
                size: c[0],
                rss: c[1],
                pss: c[2],
                shared_clean: c[3],
                shared_dirty: c[4],
                private_clean: c[5],
                private_dirty: c[6],
                anonymous: c[7],
                swap: c[8],
                swap_pss,
                locked,
            },
        )
}

fn info() -> impl Strategy<Value = ProcessInfo> {
    (
        any::<u32>(),
        text(),
        vec(text(), 0..4),
        option::of(any::<u32>()),
        option::of(text()),
    )
        .prop_map(|(ppid, comm, cmdline, uid, cgroup)| ProcessInfo {
            ppid,
            comm,
            cmdline,
            uid,
            cgroup,
        })
}

fn sample() -> impl Strategy<Value = ProcessSample> {
    (
        (any::<u64>(), 1..4u32, info(), detail(), status()),
        (
            option::of(cpu()),
            option::of(rollup()),
            option::of(fds()),
            option::of(vec(mapping(), 0..6)),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((time_us, pid, info, detail, status), (cpu, rollup, fds, mappings, fresh))| {
                ProcessSample {
                    time_us,
                    id: ProcessId {
                        pid,
                        start_time: 1000 + u64::from(pid),
                    },
                    info: std::sync::Arc::new(info),
                    detail,
                    status,
                    cpu,
                    rollup,
                    fds,
                    mappings: mappings.map(Into::into),
                    mappings_fresh: fresh,
                }
            },
        )
}

/// A small change to `s`, as between two samples of one process: what the
/// writer turns into deltas.
fn evolve(s: &ProcessSample, step: u64) -> ProcessSample {
    let mut next = s.clone();
    next.time_us = s.time_us.wrapping_add(1_000_000);
    next.status.vm_rss = next.status.vm_rss.map(|v| (v + step) % 1_000_000);
    if let Some(cpu) = &mut next.cpu {
        cpu.utime = (cpu.utime + step) % 1_000_000;
    }
    if let Some(maps) = next.mappings.as_mut().map(std::sync::Arc::make_mut) {
        if let Some(m) = maps.first_mut() {
            m.rss = (m.rss + step) % 1_000_000;
        }
        if step % 3 == 0 {
            maps.pop();
        }
    }
    if let Some(Some(targets)) = next.fds.as_mut().map(|f| f.targets.as_mut()) {
        if step % 2 == 0 {
            targets.push(Fd {
                fd: 100 + step as u32,
                target: format!("socket:[{step}]"),
            });
        }
    }
    next
}

fn plain_record() -> impl Strategy<Value = Record> {
    let id =
        (any::<u32>(), any::<u64>()).prop_map(|(pid, start_time)| ProcessId { pid, start_time });
    prop_oneof![
        (
            any::<u64>(),
            vec(
                (text(), opt_counter(), opt_counter()).prop_map(
                    |(path, current_bytes, max_bytes)| {
                        CgroupMemory {
                            path,
                            current_bytes,
                            max_bytes,
                        }
                    }
                ),
                0..3
            ),
            vec(opt_counter(), 10)
        )
            .prop_map(
                |(time_us, cgroups, m)| Record::System(Box::new(SystemSample {
                    time_us,
                    meminfo: MemInfo {
                        mem_total: m[0],
                        mem_free: m[1],
                        mem_available: m[2],
                        buffers: m[3],
                        cached: m[4],
                        swap_total: m[5],
                        swap_free: m[6],
                        shmem: m[7],
                        commit_limit: m[8],
                        committed_as: m[9],
                    },
                    cgroups,
                }))
            ),
        (any::<u64>(), id.clone(), option::of(any::<i32>())).prop_map(
            |(time_us, id, exit_code)| Record::Exit(ProcessExit {
                time_us,
                id,
                exit_code
            })
        ),
        (any::<u64>(), text(), option::of(any::<u32>()), text()).prop_map(
            |(time_us, label, pid, source)| Record::Marker(Marker {
                time_us,
                label,
                pid,
                source
            })
        ),
        (
            any::<u64>(),
            option::of(id),
            prop_oneof![
                Just(NoticeKind::PermissionDenied),
                Just(NoticeKind::Vanished),
                Just(NoticeKind::Malformed),
                Just(NoticeKind::Other)
            ],
            text(),
            text()
        )
            .prop_map(
                |(time_us, process, kind, path, message)| Record::Notice(Box::new(Notice {
                    time_us,
                    process,
                    kind,
                    path,
                    message,
                }))
            ),
    ]
}

/// Records as a recorder writes them: processes sampled repeatedly with
/// small changes (and sometimes big ones), other records in between.
fn recording() -> impl Strategy<Value = Vec<Record>> {
    vec(
        prop_oneof![
            3 => (sample(), 1..6u64).prop_map(|(s, n)| {
                let mut out = vec![s];
                for step in 1..n {
                    let next = evolve(out.last().unwrap(), step);
                    out.push(next);
                }
                out.into_iter().map(|s| Record::Process(Box::new(s))).collect::<Vec<_>>()
            }),
            1 => plain_record().prop_map(|r| vec![r]),
        ],
        0..8,
    )
    .prop_map(|groups| groups.into_iter().flatten().collect())
}

fn end_record() -> impl Strategy<Value = End> {
    (
        any::<u64>(),
        prop_oneof![
            Just(EndReason::Completed),
            Just(EndReason::TargetExited),
            text().prop_map(EndReason::Interrupted),
            text().prop_map(EndReason::Error),
        ],
        any::<u64>(),
    )
        .prop_map(|(time_us, reason, samples)| End {
            time_us,
            reason,
            samples,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn what_is_written_is_read_back(
        records in recording(),
        end in end_record(),
        interval in 1..5u32,
        detail in detail(),
    ) {
        let header = header(detail);
        let mut writer = Writer::new(Vec::new(), &header).unwrap().keyframe_interval(interval);
        for r in &records {
            writer.write(r).unwrap();
        }
        let bytes = writer.finish(&end).unwrap();

        let mut reader = Reader::new(bytes.as_slice()).unwrap();
        prop_assert_eq!(reader.header(), &header);
        let frames = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        prop_assert_eq!(reader.take_warnings(), vec![]);
        let mut expected = records.clone();
        expected.push(Record::End(end));
        let got: Vec<Record> = frames.iter().map(|f| f.record.clone()).collect();
        prop_assert_eq!(got, expected);
        // Offsets increase and each frame starts with the sync bytes.
        for pair in frames.windows(2) {
            prop_assert!(pair[0].offset < pair[1].offset);
        }
        for f in &frames {
            prop_assert_eq!(&bytes[f.offset as usize..][..2], b"MF");
        }
    }

    #[test]
    fn a_cut_recording_gives_back_a_prefix(
        records in recording(),
        cut in any::<prop::sample::Index>(),
    ) {
        let header = header(Detail::Full);
        let mut writer = Writer::new(Vec::new(), &header).unwrap();
        for r in &records {
            writer.write(r).unwrap();
        }
        writer.flush().unwrap();
        let bytes = writer.get_ref().clone();
        let cut = cut.index(bytes.len() + 1);
        if let Ok(mut reader) = Reader::new(&bytes[..cut]) {
            let got: Vec<Record> = reader.by_ref().map(|f| f.unwrap().record).collect();
            prop_assert!(got.len() <= records.len());
            prop_assert_eq!(&got[..], &records[..got.len()]);
            let warnings = reader.take_warnings();
            prop_assert!(warnings.len() <= 1, "{:?}", warnings);
            prop_assert!(warnings.iter().all(|w| w.kind == WarningKind::TornTail));
        }
    }

    #[test]
    fn any_bytes_after_a_header_are_read_without_panic(tail in vec(any::<u8>(), 0..2048)) {
        let mut bytes = Writer::new(Vec::new(), &header(Detail::Summary)).unwrap().get_ref().clone();
        bytes.extend_from_slice(&tail);
        crate::fuzz_check::check(&bytes);
    }
}

//! What is written is read back exactly.

use memtrail_format::*;

use crate::util::*;

/// Writes `records` with each keyframe interval given and checks that they
/// read back exactly, without warnings; returns the encodings of the first.
fn check(records: &[Record], intervals: &[u32]) -> Vec<Encoding> {
    let header = header(Detail::Full);
    let mut first = None;
    for &interval in intervals {
        let bytes = write(&header, records, interval);
        let (read_header, frames, warnings) = read(&bytes);
        assert_eq!(read_header, header);
        assert_eq!(warnings, vec![], "interval {interval}");
        assert_eq!(records_of(&frames), records, "interval {interval}");
        let encodings: Vec<Encoding> = frames.iter().map(|f| f.encoding).collect();
        if interval == 1 {
            assert!(
                !encodings.contains(&Encoding::Delta),
                "interval 1 writes no deltas"
            );
        }
        first.get_or_insert(encodings);
    }
    first.unwrap()
}

fn records_of(frames: &[Frame]) -> Vec<Record> {
    records(frames)
}

/// Samples of one process, each made by `step` from the one before.
fn series(
    first: ProcessSample,
    n: usize,
    mut step: impl FnMut(usize, &mut ProcessSample),
) -> Vec<Record> {
    let mut s = first;
    let mut out = vec![process(s.clone())];
    for i in 1..n {
        s.time_us += 1_000_000;
        step(i, &mut s);
        out.push(process(s.clone()));
    }
    out
}

const INTERVALS: &[u32] = &[60, 1, 2, 1000];

#[test]
fn steady_summary_samples_are_deltas() {
    let records = series(summary(4242, 1_700_000_360_000_000), 10, |i, s| {
        s.status.vm_rss = Some(81_920 + 4 * i as u64);
        s.cpu.as_mut().unwrap().utime += 3;
    });
    let encodings = check(&records, INTERVALS);
    assert_eq!(encodings[0], Encoding::Keyframe);
    assert!(encodings[1..].iter().all(|e| *e == Encoding::Delta));
}

#[test]
fn keyframe_interval_is_honoured() {
    let records = series(summary(1, 0), 7, |_, s| s.cpu.as_mut().unwrap().stime += 1);
    let header = header(Detail::Summary);
    let bytes = write(&header, &records, 3);
    let (_, frames, _) = read(&bytes);
    let encodings: Vec<Encoding> = frames.iter().map(|f| f.encoding).collect();
    use Encoding::*;
    assert_eq!(
        encodings,
        [Keyframe, Delta, Delta, Keyframe, Delta, Delta, Keyframe]
    );
}

#[test]
fn options_appear_and_disappear() {
    let records = series(summary(7, 10), 12, |i, s| match i {
        1 => s.cpu = None,
        2 => {
            s.cpu = Some(Cpu {
                utime: 1,
                stime: 2,
                minflt: 3,
                majflt: 4,
            })
        }
        3 => s.fds = None,
        4 => s.fds = Some(Fds::default()),
        5 => s.status = Status::default(),
        6 => s.status.threads = Some(3),
        7 => std::sync::Arc::make_mut(&mut s.info).uid = None,
        8 => std::sync::Arc::make_mut(&mut s.info).cgroup = None,
        9 => std::sync::Arc::make_mut(&mut s.info).cmdline.clear(),
        10 => s.status.vm_swap = Some(u64::MAX - 1),
        _ => s.status.vm_swap = Some(0),
    });
    let encodings = check(&records, INTERVALS);
    assert!(encodings[1..].iter().all(|e| *e == Encoding::Delta));
}

#[test]
fn rollup_and_detail_changes() {
    let mut records = series(summary(9, 0), 3, |_, _| {});
    let mut s = full(9, 5_000_000, 6);
    records.push(process(s.clone())); // detail changed: a keyframe
    s.time_us += 1;
    s.rollup.as_mut().unwrap().swap_pss = Some(4);
    s.rollup.as_mut().unwrap().pss = None;
    records.push(process(s.clone()));
    s.time_us += 1;
    s.rollup = None;
    records.push(process(s.clone()));
    s.time_us += 1;
    s.rollup = Some(Rollup::default());
    records.push(process(s.clone()));
    use Encoding::*;
    assert_eq!(
        check(&records, INTERVALS),
        [Keyframe, Delta, Delta, Keyframe, Delta, Delta, Delta]
    );
}

#[test]
fn mappings_added_removed_changed_and_moved() {
    let records = series(full(11, 0, 20), 12, |i, s| {
        let Some(maps) = s.mappings.as_mut().map(std::sync::Arc::make_mut) else {
            s.mappings = Some(Vec::new().into());
            return;
        };
        match i {
            1 => maps[3].rss += 8,         // changed counter
            2 => maps[5].end += 4096 * 16, // grown
            3 => {
                maps.remove(7); // removed
            }
            4 => maps.push(mapping(0x7fff_0000_0000, 33, "[stack]", 12)), // added at the end
            5 => maps.insert(0, mapping(0x1000, 1, "", 4)),               // added at the start
            6 => {
                let m = &mut maps[2]; // moved: removed + added
                m.start += 0x1000;
                m.end += 0x1000;
                maps.sort_by_key(|m| m.start);
            }
            7 => maps[4].path = "/usr/lib/renamed.so (deleted)".into(),
            8 => maps[6].locked = None,
            9 => s.mappings_fresh = false,
            _ => s.mappings = None,
        }
    });
    let encodings = check(&records, INTERVALS);
    assert!(
        encodings[1..].iter().all(|e| *e == Encoding::Delta),
        "{encodings:?}"
    );
}

#[test]
fn fd_targets_opened_closed_and_retargeted() {
    let records = series(full(12, 0, 2), 8, |i, s| {
        let fds = s.fds.as_mut().unwrap();
        match i {
            1 => fds.targets.as_mut().unwrap().push(Fd {
                fd: 9,
                target: "/var/log/leaky.log".to_string(),
            }),
            2 => {
                fds.targets.as_mut().unwrap().remove(3);
            }
            3 => fds.targets.as_mut().unwrap()[0].target = "/dev/pts/3".to_string(),
            4 => fds.targets = None,
            5 => fds.targets = Some(vec![]),
            6 => {
                fds.targets = Some(vec![Fd {
                    fd: 100_000,
                    target: String::new(),
                }])
            }
            _ => s.fds = None,
        }
    });
    let encodings = check(&records, INTERVALS);
    assert!(
        encodings[1..].iter().all(|e| *e == Encoding::Delta),
        "{encodings:?}"
    );
}

#[test]
fn what_a_delta_cannot_express_is_a_keyframe() {
    let mut s = full(13, 0, 4);
    let mut records = vec![process(s.clone())];
    // Unsorted mappings and duplicate descriptors are kept as they are.
    std::sync::Arc::make_mut(s.mappings.as_mut().unwrap()).reverse();
    records.push(process(s.clone()));
    s.fds.as_mut().unwrap().targets.as_mut().unwrap().push(Fd {
        fd: 0,
        target: "dup".to_string(),
    });
    records.push(process(s.clone()));
    // Time going backwards is fine.
    s.time_us = 0;
    std::sync::Arc::make_mut(s.mappings.as_mut().unwrap()).reverse();
    s.fds.as_mut().unwrap().targets = None;
    records.push(process(s.clone()));
    use Encoding::*;
    assert_eq!(
        check(&records, &[60]),
        [Keyframe, Keyframe, Keyframe, Delta]
    );
}

#[test]
fn processes_are_kept_apart_and_forgotten_at_exit() {
    let a = summary(100, 0);
    let mut b = full(100, 0, 3);
    b.id.start_time += 1; // same pid, another process
    let mut records = vec![process(a.clone()), process(b.clone())];
    for t in 1..4 {
        let mut a = a.clone();
        a.time_us = t;
        a.status.vm_rss = Some(t * 1000);
        let mut b = b.clone();
        b.time_us = t;
        records.push(process(a));
        records.push(process(b));
    }
    records.push(Record::Exit(ProcessExit {
        time_us: 5,
        id: a.id,
        exit_code: Some(137),
    }));
    records.push(process(a.clone())); // after its exit: a keyframe again
    records.push(Record::Exit(ProcessExit {
        time_us: 6,
        id: b.id,
        exit_code: None,
    }));
    let encodings = check(&records, INTERVALS);
    use Encoding::*;
    assert_eq!(encodings[8..], [Plain, Keyframe, Plain]);
}

#[test]
fn plain_records() {
    let records = vec![
        Record::System(Box::new(SystemSample {
            time_us: 1,
            meminfo: MemInfo {
                mem_total: Some(16_000_000),
                mem_available: Some(8_000_000),
                ..MemInfo::default()
            },
            cgroups: vec![
                CgroupMemory {
                    path: "/a".to_string(),
                    current_bytes: Some(1 << 30),
                    max_bytes: None,
                },
                CgroupMemory {
                    path: "/b".to_string(),
                    current_bytes: None,
                    max_bytes: Some(2 << 30),
                },
            ],
        })),
        Record::System(Box::default()),
        Record::Marker(Marker {
            time_us: 2,
            label: "step 1 ✓".to_string(),
            pid: Some(4),
            source: "cli".to_string(),
        }),
        Record::Marker(Marker {
            time_us: 3,
            label: String::new(),
            pid: None,
            source: "events".to_string(),
        }),
        Record::Notice(Box::new(Notice {
            time_us: 4,
            process: Some(ProcessId {
                pid: 5,
                start_time: 6,
            }),
            kind: NoticeKind::PermissionDenied,
            path: "/proc/5/smaps".to_string(),
            message: "cannot read /proc/5/smaps: permission denied; run as the same user"
                .to_string(),
        })),
        Record::Notice(Box::new(Notice {
            time_us: 5,
            process: None,
            kind: NoticeKind::Other,
            path: String::new(),
            message: String::new(),
        })),
        Record::Exit(ProcessExit {
            time_us: 6,
            id: ProcessId {
                pid: u32::MAX,
                start_time: u64::MAX,
            },
            exit_code: Some(-1),
        }),
        Record::End(End {
            time_us: 7,
            reason: EndReason::Interrupted("SIGINT".to_string()),
            samples: 0,
        }),
        Record::End(End {
            time_us: 8,
            reason: EndReason::Error("disk full".to_string()),
            samples: 1,
        }),
        Record::End(End {
            time_us: 9,
            reason: EndReason::TargetExited,
            samples: 2,
        }),
        Record::End(End {
            time_us: 10,
            reason: EndReason::Completed,
            samples: 3,
        }),
    ];
    let encodings = check(&records, &[60]);
    assert!(encodings.iter().all(|e| *e == Encoding::Plain));
}

#[test]
fn every_detail_level_and_header_round_trip() {
    for detail in [Detail::Summary, Detail::Rollup, Detail::Maps, Detail::Full] {
        let mut header = header(detail);
        header.interval_us = None;
        let bytes = Writer::new(Vec::new(), &header).unwrap().finish(&End {
            time_us: 0,
            reason: EndReason::Completed,
            samples: 0,
        });
        let (read_header, frames, _) = read(&bytes.unwrap());
        assert_eq!(read_header, header);
        assert_eq!(frames.len(), 1);
    }
}

#[test]
fn a_value_of_2_64_minus_1_is_refused_not_mangled() {
    let mut s = summary(1, 0);
    s.status.vm_rss = Some(u64::MAX);
    let mut writer = Writer::new(Vec::new(), &header(Detail::Summary)).unwrap();
    let error = writer.write(&process(s)).unwrap_err();
    assert!(
        matches!(
            error,
            WriteError::Unrepresentable {
                field: "status.vm_rss"
            }
        ),
        "{error}"
    );
    assert_eq!(error.io_error_kind(), None);
}

#[test]
fn write_errors_expose_the_io_error_kind() {
    struct BrokenPipe;
    impl std::io::Write for BrokenPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let error = Writer::new(BrokenPipe, &header(Detail::Summary)).unwrap_err();
    assert_eq!(error.io_error_kind(), Some(std::io::ErrorKind::BrokenPipe));
}

#[test]
fn bytes_written_counts_everything() {
    let header = header(Detail::Summary);
    let mut writer = Writer::new(Vec::new(), &header).unwrap();
    assert_eq!(writer.bytes_written(), writer.get_ref().len() as u64);
    writer.write(&process(summary(1, 0))).unwrap();
    assert_eq!(writer.bytes_written(), writer.get_ref().len() as u64);
}

#[test]
fn a_stream_read_a_byte_at_a_time_gives_the_same_frames() {
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let records = series(full(3, 0, 5), 5, |i, s| s.status.vm_rss = Some(i as u64));
    let bytes = write(&header(Detail::Full), &records, 60);
    let reader = Reader::new(Trickle(&bytes)).unwrap();
    let frames = reader.collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(records_of(&frames), records);
    assert_eq!(frames, read(&bytes).1);
}

#[test]
fn frames_serialize_to_json() {
    let bytes = write(&header(Detail::Summary), &[process(summary(1, 0))], 60);
    let (_, frames, _) = read(&bytes);
    let json = serde_json::to_value(&frames[0]).unwrap();
    assert_eq!(json["offset"], frames[0].offset);
    assert_eq!(json["encoding"], "keyframe");
    assert_eq!(json["record"]["type"], "process");
}

//! Builders of recordings shared by the tests.

use memtrail_format::*;

pub fn header(detail: Detail) -> Header {
    Header {
        writer: "memtrail-format tests".to_string(),
        host: Host {
            hostname: "testhost".to_string(),
            kernel: "6.8.0-45-generic".to_string(),
            page_size: 4096,
            clock_ticks: 100,
            boot_time_us: 1_700_000_000_000_000,
        },
        started_us: 1_700_000_360_000_000,
        target: "--pid 4242 --children".to_string(),
        detail,
        interval_us: Some(1_000_000),
    }
}

/// A summary-level sample of a steady process.
pub fn summary(pid: u32, time_us: u64) -> ProcessSample {
    ProcessSample {
        time_us,
        id: ProcessId {
            pid,
            start_time: 123_456,
        },
        info: std::sync::Arc::new(ProcessInfo {
            ppid: 1,
            comm: "leaky".to_string(),
            cmdline: vec!["/usr/bin/leaky".to_string(), "--serve".to_string()],
            uid: Some(1000),
            cgroup: Some("/system.slice/leaky.service".to_string()),
        }),
        detail: Detail::Summary,
        status: Status {
            vm_rss: Some(81_920),
            vm_hwm: Some(90_112),
            vm_size: Some(1_048_576),
            vm_peak: Some(1_100_000),
            rss_anon: Some(61_440),
            rss_file: Some(20_480),
            rss_shmem: Some(0),
            vm_swap: Some(0),
            vm_data: Some(204_800),
            vm_stk: Some(132),
            vm_pte: Some(412),
            threads: Some(8),
        },
        cpu: Some(Cpu {
            utime: 12_345,
            stime: 2_345,
            minflt: 1_234_567,
            majflt: 12,
        }),
        rollup: None,
        fds: Some(Fds {
            file: 12,
            socket: 40,
            pipe: 4,
            anon_inode: 3,
            other: 0,
            targets: None,
        }),
        mappings: None,
        mappings_fresh: false,
    }
}

pub fn mapping(start: u64, pages: u64, path: &str, rss: u64) -> Mapping {
    let size = pages * 4;
    Mapping {
        start,
        end: start + pages * 4096,
        perms: if path.is_empty() || path.starts_with('[') {
            "rw-p"
        } else {
            "r-xp"
        }
        .into(),
        offset: 0,
        dev: if path.starts_with('/') {
            (8 << 32) | 1
        } else {
            0
        },
        inode: if path.starts_with('/') {
            1_000 + start % 977
        } else {
            0
        },
        path: path.into(),
        size,
        rss,
        pss: rss / 2,
        shared_clean: 0,
        shared_dirty: 0,
        private_clean: rss / 4,
        private_dirty: rss - rss / 4,
        anonymous: if path.starts_with('/') { 0 } else { rss },
        swap: 0,
        swap_pss: Some(0),
        locked: Some(0),
    }
}

/// A full-detail sample with `n` mappings and a few descriptors.
pub fn full(pid: u32, time_us: u64, n: usize) -> ProcessSample {
    let mut s = summary(pid, time_us);
    s.detail = Detail::Full;
    s.rollup = Some(Rollup {
        rss: Some(81_920),
        pss: Some(70_000),
        pss_anon: Some(61_000),
        pss_file: Some(9_000),
        pss_shmem: Some(0),
        shared_clean: Some(10_000),
        shared_dirty: Some(0),
        private_clean: Some(5_000),
        private_dirty: Some(66_920),
        anonymous: Some(61_440),
        swap: Some(0),
        swap_pss: None,
    });
    s.fds.as_mut().unwrap().targets = Some(vec![
        Fd {
            fd: 0,
            target: "/dev/null".to_string(),
        },
        Fd {
            fd: 1,
            target: "pipe:[1234]".to_string(),
        },
        Fd {
            fd: 2,
            target: "pipe:[1234]".to_string(),
        },
        Fd {
            fd: 3,
            target: "socket:[99887]".to_string(),
        },
        Fd {
            fd: 7,
            target: "anon_inode:[eventpoll]".to_string(),
        },
    ]);
    s.mappings = Some(
        (0..n)
            .map(|i| {
                let path = match i % 4 {
                    0 => format!("/usr/lib/x86_64-linux-gnu/lib{i}.so"),
                    1 => String::new(),
                    2 => "[anon:arena]".to_string(),
                    _ => format!("/usr/lib/x86_64-linux-gnu/lib{}.so", i - 3),
                };
                mapping(
                    0x7f00_0000_0000 + i as u64 * 0x10_0000,
                    1 + (i as u64 % 7),
                    &path,
                    4 + i as u64 % 5,
                )
            })
            .collect::<Vec<_>>()
            .into(),
    );
    s.mappings_fresh = true;
    s
}

pub fn process(s: ProcessSample) -> Record {
    Record::Process(Box::new(s))
}

/// Writes `records` after `header`, with the given keyframe interval.
pub fn write(header: &Header, records: &[Record], keyframe_interval: u32) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), header)
        .unwrap()
        .keyframe_interval(keyframe_interval);
    for r in records {
        writer.write(r).unwrap();
    }
    writer.flush().unwrap();
    writer.get_ref().clone()
}

/// Everything a reader gets out of `bytes`: the header, the frames and the
/// warnings. Panics on an error.
pub fn read(bytes: &[u8]) -> (Header, Vec<Frame>, Vec<Warning>) {
    let mut reader = Reader::new(bytes).unwrap();
    let frames = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (reader.header().clone(), frames, reader.take_warnings())
}

pub fn records(frames: &[Frame]) -> Vec<Record> {
    frames.iter().map(|f| f.record.clone()).collect()
}

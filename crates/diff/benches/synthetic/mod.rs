//! Synthetic recordings for the benchmarks and the `synthetic` example
//! (which `cargo xtask bench analyze` uses to time the whole command).

#![allow(dead_code)]

use memtrail_format::{
    Detail, Fds, Header, Host, Mapping, ProcessId, ProcessInfo, ProcessSample, Record, Status,
    Writer,
};

/// Sample `i` of a process leaking 4 KiB per sample under some noise.
pub fn sample(i: u64) -> ProcessSample {
    let noise = (i.wrapping_mul(2_654_435_761) >> 7) % 512;
    let anon = 50_000 + 4 * i + noise;
    ProcessSample {
        time_us: 1_700_000_000_000_000 + i * 1_000_000,
        id: ProcessId {
            pid: 4242,
            start_time: 99,
        },
        info: std::sync::Arc::new(ProcessInfo {
            ppid: 1,
            comm: "daemon".into(),
            cmdline: vec!["/usr/bin/daemon".into(), "--serve".into()],
            uid: Some(1000),
            cgroup: None,
        }),
        detail: Detail::Rollup,
        status: Status {
            vm_rss: Some(anon + 20_000),
            rss_anon: Some(anon),
            rss_file: Some(20_000),
            rss_shmem: Some(0),
            vm_swap: Some(0),
            threads: Some(8),
            ..Default::default()
        },
        cpu: None,
        rollup: None,
        fds: Some(Fds {
            file: 12,
            socket: 3,
            ..Default::default()
        }),
        mappings: None,
        mappings_fresh: false,
    }
}

pub fn recording(n: u64) -> Vec<u8> {
    let header = Header {
        writer: "bench".into(),
        host: Host {
            hostname: "bench".into(),
            kernel: "6.1".into(),
            page_size: 4096,
            clock_ticks: 100,
            boot_time_us: 0,
        },
        started_us: 1_700_000_000_000_000,
        target: "--pid 4242".into(),
        detail: Detail::Rollup,
        interval_us: Some(1_000_000),
    };
    let mut writer = Writer::new(Vec::new(), &header).expect("header");
    for i in 0..n {
        writer
            .write(&Record::Process(Box::new(sample(i))))
            .expect("write");
    }
    writer
        .finish(&memtrail_format::End {
            time_us: 0,
            reason: memtrail_format::EndReason::Completed,
            samples: n,
        })
        .expect("finish")
}

/// `n` regions, one in a hundred `grown` KiB larger than the rest.
pub fn regions(n: u64, grown: u64) -> Vec<Mapping> {
    (0..n)
        .map(|i| {
            let rss = if i % 100 == 0 { 4 + grown } else { 4 };
            Mapping {
                start: 0x7f00_0000_0000 + i * 0x2000,
                end: 0x7f00_0000_0000 + i * 0x2000 + 0x1000,
                perms: "rw-p".into(),
                path: if i % 3 == 0 {
                    Default::default()
                } else {
                    format!("/usr/lib/lib{}.so", i % 97).into()
                },
                inode: if i % 3 == 0 { 0 } else { 1000 + i % 97 },
                size: 4,
                rss,
                pss: rss,
                anonymous: rss,
                private_dirty: rss,
                ..Default::default()
            }
        })
        .collect()
}

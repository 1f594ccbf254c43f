//! Writes a synthetic recording of a busy host as `record --all --rotate
//! 1h --detail summary` would: PROCESSES processes sampled every second
//! for HOURS hours, one segment (a version 2 file) per hour, in DIR:
//! `cargo run --release -p memtrail-format --example week -- DIR PROCESSES HOURS`.
//! `cargo xtask bench week` times `memtrail analyze DIR` and `report` on it.
//!
//! Every tenth process leaks 4 KiB a second; every tenth (offset by five)
//! grows a descriptor a minute; the rest hold steady around a level with
//! noise, a few in a sawtooth (a garbage collector). Deterministic.

use std::io::BufWriter;

use memtrail_format::{
    Cpu, Detail, End, EndReason, Fds, Header, Host, MemInfo, ProcessId, ProcessInfo, ProcessSample,
    Record, Status, SystemSample, Writer,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const START_US: u64 = 1_700_000_000_000_000;

fn sample(p: u32, t: u64) -> ProcessSample {
    let noise = (t.wrapping_mul(2_654_435_761) ^ u64::from(p).wrapping_mul(40_503)) >> 7;
    let base = 20_000 + u64::from(p) * 1_000;
    let mut anon = base + noise % 256;
    let mut files = 10 + u64::from(p % 7);
    match p % 10 {
        0 => anon += 4 * t,
        5 => files += t / 60,
        3 => anon += (t % 600) * 50,
        _ => {}
    }
    ProcessSample {
        time_us: START_US + t * 1_000_000 + u64::from(p) * 37,
        id: ProcessId {
            pid: 1000 + p,
            start_time: 500 + u64::from(p),
        },
        info: std::sync::Arc::new(ProcessInfo {
            ppid: 1,
            comm: format!("daemon{p}"),
            cmdline: vec![format!("/usr/bin/daemon{p}"), "--serve".into()],
            uid: Some(1000),
            cgroup: Some(format!("/system.slice/daemon{p}.service")),
        }),
        detail: Detail::Summary,
        status: Status {
            vm_rss: Some(anon + 8_000),
            vm_hwm: Some(anon + 8_000),
            vm_size: Some(anon * 4),
            vm_peak: Some(anon * 4),
            rss_anon: Some(anon),
            rss_file: Some(8_000),
            rss_shmem: Some(0),
            vm_swap: Some(0),
            vm_data: Some(anon + 1_000),
            vm_stk: Some(132),
            vm_pte: Some(100 + anon / 512),
            threads: Some(4 + u64::from(p % 5)),
        },
        cpu: Some(Cpu {
            utime: t * 3 + u64::from(p),
            stime: t,
            minflt: t * 20,
            majflt: 0,
        }),
        rollup: None,
        fds: Some(Fds {
            file: files,
            socket: 4,
            pipe: 2,
            anon_inode: 1,
            other: 0,
            targets: None,
        }),
        mappings: None,
        mappings_fresh: false,
    }
}

/// Writes the segment of hour `hour`; returns its size.
fn segment(dir: &std::path::Path, header: &Header, processes: u32, hour: u64) -> Result<u64> {
    let path = dir.join(format!("{hour:08}-week.mtr"));
    let file = BufWriter::new(std::fs::File::create(&path)?);
    let mut h = header.clone();
    h.started_us = START_US + hour * 3_600_000_000;
    let mut writer = Writer::compressed(file, &h)?;
    for t in hour * 3600..(hour + 1) * 3600 {
        writer.write(&Record::System(Box::new(SystemSample {
            time_us: START_US + t * 1_000_000,
            meminfo: MemInfo {
                mem_total: Some(16_000_000),
                mem_available: Some(8_000_000),
                ..MemInfo::default()
            },
            cgroups: Vec::new(),
        })))?;
        for p in 0..processes {
            writer.write(&Record::Process(Box::new(sample(p, t))))?;
        }
        writer.flush()?;
    }
    let end = End {
        time_us: START_US + (hour + 1) * 3_600_000_000,
        reason: EndReason::Completed,
        samples: u64::from(processes) * 3600,
    };
    writer.finish(&end)?;
    Ok(std::fs::metadata(&path)?.len())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, processes, hours] = args.as_slice() else {
        return Err("usage: week DIR PROCESSES HOURS".into());
    };
    let (processes, hours): (u32, u64) = (processes.parse()?, hours.parse()?);
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let header = Header {
        writer: "memtrail week example".into(),
        host: Host {
            hostname: "week".into(),
            kernel: "6.8.0".into(),
            page_size: 4096,
            clock_ticks: 100,
            boot_time_us: START_US - 1_000_000_000,
        },
        started_us: START_US,
        target: "--all".into(),
        detail: Detail::Summary,
        interval_us: Some(1_000_000),
    };
    // Hours are independent segments: written on every core.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let bytes: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let header = &header;
                scope.spawn(move || -> std::result::Result<u64, String> {
                    let mut bytes = 0;
                    for hour in (w..hours).step_by(threads as usize) {
                        bytes +=
                            segment(dir, header, processes, hour).map_err(|e| e.to_string())?;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a writer thread panicked"))
            .sum::<std::result::Result<u64, String>>()
    })?;
    println!(
        "{{\"samples\":{},\"bytes\":{bytes},\"segments\":{hours}}}",
        u64::from(processes) * hours * 3600
    );
    Ok(())
}

//! How analysis scales with the number of samples: 10^4, 10^5 and 10^6
//! samples of one leaking process, folded into an `Analyzer` and judged.
//!
//! - `fold_and_judge`: samples built in memory (their construction is part
//!   of the measured loop, and cheap next to the rest);
//! - `decode_and_judge`: the same samples written as a real recording (one
//!   keyframe every 60 samples, deltas between) and read back from memory
//!   with `memtrail_format::Reader`: what `memtrail analyze FILE` does
//!   minus the disk.
//!
//! Run with `cargo bench -p memtrail-diff --bench analyze`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memtrail_diff::Analyzer;
use memtrail_format::{
    Detail, Fds, Header, Host, ProcessId, ProcessInfo, ProcessSample, Reader, Record, Status,
    Writer,
};

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];

/// Sample `i` of a process leaking 4 KiB per sample under some noise.
fn sample(i: u64) -> ProcessSample {
    let noise = (i.wrapping_mul(2_654_435_761) >> 7) % 512;
    let anon = 50_000 + 4 * i + noise;
    ProcessSample {
        time_us: 1_700_000_000_000_000 + i * 1_000_000,
        id: ProcessId {
            pid: 4242,
            start_time: 99,
        },
        info: ProcessInfo {
            ppid: 1,
            comm: "daemon".into(),
            cmdline: vec!["/usr/bin/daemon".into(), "--serve".into()],
            uid: Some(1000),
            cgroup: None,
        },
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

fn recording(n: u64) -> Vec<u8> {
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

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("fold_and_judge");
    group.sample_size(10);
    for n in SIZES {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let mut analyzer = Analyzer::new();
                for i in 0..n {
                    analyzer.add(Record::Process(Box::new(sample(i))));
                }
                black_box(analyzer.analysis())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode_and_judge");
    group.sample_size(10);
    for n in SIZES {
        let bytes = recording(n);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| {
                let reader = Reader::new(bytes.as_slice()).expect("header");
                let mut analyzer = Analyzer::new();
                for frame in reader {
                    analyzer.add(frame.expect("frame").record);
                }
                let analysis = analyzer.analysis();
                assert_eq!(analysis.processes[0].verdict, memtrail_diff::Verdict::Leak);
                black_box(analysis)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

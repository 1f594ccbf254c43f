//! Encoding and decoding process samples with 1k, 10k and 50k mappings:
//! a keyframe, and a delta in which 1% of the mappings changed (the
//! steady state of a recording at `maps`). Run: `cargo bench -p memtrail-format`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use memtrail_format::*;

fn header() -> Header {
    Header {
        writer: "memtrail-format bench".to_string(),
        host: Host {
            hostname: "bench".to_string(),
            kernel: "6.8.0".to_string(),
            page_size: 4096,
            clock_ticks: 100,
            boot_time_us: 1_700_000_000_000_000,
        },
        started_us: 1_700_000_100_000_000,
        target: "--pid 4242".to_string(),
        detail: Detail::Maps,
        interval_us: Some(1_000_000),
    }
}

/// A `maps` sample with `n` mappings, a third of them file-backed.
fn sample(n: u64) -> ProcessSample {
    ProcessSample {
        time_us: 1_700_000_100_000_000,
        id: ProcessId {
            pid: 4242,
            start_time: 987_654,
        },
        info: std::sync::Arc::new(ProcessInfo {
            ppid: 1,
            comm: "server".to_string(),
            cmdline: vec!["/usr/bin/server".to_string()],
            uid: Some(1000),
            cgroup: Some("/system.slice/server.service".to_string()),
        }),
        detail: Detail::Maps,
        status: Status {
            vm_rss: Some(2_000_000),
            ..Status::default()
        },
        cpu: Some(Cpu::default()),
        rollup: Some(Rollup {
            rss: Some(2_000_000),
            pss: Some(1_900_000),
            ..Rollup::default()
        }),
        fds: Some(Fds::default()),
        mappings: Some(
            (0..n)
                .map(|i| Mapping {
                    start: 0x7f00_0000_0000 + i * 0x2_0000,
                    end: 0x7f00_0000_0000 + i * 0x2_0000 + 0x1_0000,
                    perms: if i % 2 == 0 { "rw-p" } else { "r--p" }.into(),
                    inode: if i % 3 == 0 { 1000 + i } else { 0 },
                    path: if i % 3 == 0 {
                        format!("/usr/lib/x86_64-linux-gnu/lib{i}.so").into()
                    } else {
                        Default::default()
                    },
                    size: 64,
                    rss: 4 * (1 + i % 16),
                    pss: 4 * (1 + i % 16),
                    private_dirty: 4 * (1 + i % 16),
                    anonymous: if i % 3 == 0 { 0 } else { 4 * (1 + i % 16) },
                    swap_pss: Some(0),
                    locked: Some(0),
                    ..Mapping::default()
                })
                .collect::<Vec<_>>()
                .into(),
        ),
        mappings_fresh: true,
    }
}

/// `base` a second later with 1% of its mappings grown by a page.
fn next(base: &ProcessSample) -> ProcessSample {
    let mut next = base.clone();
    next.time_us += 1_000_000;
    let maps = next
        .mappings
        .as_mut()
        .map(std::sync::Arc::make_mut)
        .unwrap();
    let n = maps.len();
    for m in maps.iter_mut().step_by(100.min(n)) {
        m.rss += 4;
        m.pss += 4;
        m.private_dirty += 4;
    }
    next
}

fn encode(samples: &[ProcessSample]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), &header()).unwrap();
    for s in samples {
        writer.write(&Record::Process(Box::new(s.clone()))).unwrap();
    }
    writer
        .finish(&End {
            time_us: 0,
            reason: EndReason::Completed,
            samples: samples.len() as u64,
        })
        .unwrap()
}

fn decode(bytes: &[u8]) -> usize {
    let mut frames = 0;
    for frame in Reader::new(bytes).unwrap() {
        criterion::black_box(frame.unwrap());
        frames += 1;
    }
    frames
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("process sample");
    group.sample_size(20);
    for n in [1_000u64, 10_000, 50_000] {
        let base = sample(n);
        let next = next(&base);
        group.throughput(Throughput::Elements(n));
        // Writing `next` after `base`: diff, check by applying, encode.
        group.bench_function(BenchmarkId::new("encode delta (1% changed)", n), |b| {
            b.iter_batched(
                || {
                    let mut w = Writer::new(Vec::with_capacity(1 << 20), &header()).unwrap();
                    w.write(&Record::Process(Box::new(base.clone()))).unwrap();
                    (w, Record::Process(Box::new(next.clone())))
                },
                |(mut w, record)| {
                    w.write(&record).unwrap();
                    (w, record)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("encode keyframe", n), |b| {
            b.iter_batched(
                || {
                    let w = Writer::new(Vec::with_capacity(1 << 20), &header()).unwrap();
                    (w, Record::Process(Box::new(base.clone())))
                },
                |(mut w, record)| {
                    w.write(&record).unwrap();
                    (w, record)
                },
                BatchSize::LargeInput,
            )
        });
        let keyframe_only = encode(std::slice::from_ref(&base));
        let with_delta = encode(&[base.clone(), next.clone()]);
        group.bench_with_input(
            BenchmarkId::new("decode keyframe", n),
            &keyframe_only,
            |b, bytes| b.iter(|| decode(bytes)),
        );
        group.bench_with_input(
            BenchmarkId::new("decode keyframe + delta", n),
            &with_delta,
            |b, bytes| b.iter(|| decode(bytes)),
        );
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);

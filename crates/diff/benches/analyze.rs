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
//! - `compare`: two samples of 50 000 regions, 1% of them grown, compared
//!   region by region (`memtrail diff` minus reading the files).
//!
//! Run with `cargo bench -p memtrail-diff --bench analyze`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memtrail_diff::Analyzer;
use memtrail_format::{Reader, Record};
use synthetic::{recording, sample};

mod synthetic;

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];

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

fn bench_compare(c: &mut Criterion) {
    let mut before = sample(0);
    before.mappings = Some(synthetic::regions(50_000, 0).into());
    let mut after = sample(1);
    after.mappings = Some(synthetic::regions(50_000, 64).into());
    c.bench_function("compare/50000", |b| {
        b.iter(|| {
            let d = memtrail_diff::compare(Some(&before), Some(&after)).expect("both");
            assert_eq!(d.regions.len(), 50_000);
            black_box(d)
        })
    });
}

criterion_group!(benches, bench, bench_compare);
criterion_main!(benches);

//! The smaps parser on the text of a real process with 1k and 10k
//! anonymous mappings, against procfs's `MemoryMaps` parser; and reading
//! plus parsing it live from /proc against reading it alone.
//!
//! The text is captured at bench time from the C helper that `cargo xtask
//! bench` also uses (xtask/bench/mappings.c, compiled with gcc), so no
//! megabytes of fixtures are committed. Run: `cargo bench -p memtrail-collect`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memtrail_collect::{parse_smaps, read_process, Detail};
use procfs::FromRead;

/// The helper holding `n` mappings, killed on drop.
struct Helper(Child);

impl Helper {
    fn start(n: usize) -> Helper {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let exe = dir.join("memtrail-bench-mappings");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/bench/mappings.c");
        let built = Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(&source)
            .status()
            .expect("these benches need gcc to build xtask/bench/mappings.c");
        assert!(built.success(), "gcc failed on {}", source.display());
        let mut child = Command::new(&exe)
            .arg(n.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mapping helper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Helper(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smaps(c: &mut Criterion) {
    let mut parse = c.benchmark_group("smaps parse");
    parse.sample_size(20);
    let mut live = Vec::new();
    for n in [1_000, 10_000] {
        let helper = Helper::start(n);
        let path = format!("/proc/{}/smaps", helper.pid());
        let text = std::fs::read(&path).unwrap();
        parse.throughput(Throughput::Elements(n as u64));
        parse.bench_with_input(BenchmarkId::new("memtrail", n), &text, |b, text| {
            b.iter(|| parse_smaps(text).unwrap())
        });
        parse.bench_with_input(
            BenchmarkId::new("procfs MemoryMaps", n),
            &text,
            |b, text| b.iter(|| procfs::process::MemoryMaps::from_read(&text[..]).unwrap()),
        );
        live.push((n, helper));
    }
    parse.finish();

    // The kernel's share: reading the file (as cat does) against reading
    // and parsing it (the collector at `maps`, with the small files).
    let mut read = c.benchmark_group("smaps read");
    read.sample_size(10);
    for (n, helper) in &live {
        read.throughput(Throughput::Elements(*n as u64));
        let path = format!("/proc/{}/smaps", helper.pid());
        read.bench_with_input(BenchmarkId::new("read only", n), &path, |b, path| {
            let mut buf = vec![0u8; 128 * 1024];
            b.iter(|| {
                let mut f = std::fs::File::open(path).unwrap();
                while f.read(&mut buf).unwrap() > 0 {}
            })
        });
        read.bench_with_input(
            BenchmarkId::new("read_process at maps", n),
            &helper.pid(),
            |b, &pid| b.iter(|| read_process(Path::new("/proc"), pid, Detail::Maps).unwrap()),
        );
    }
    read.finish();
}

criterion_group!(benches, smaps);
criterion_main!(benches);

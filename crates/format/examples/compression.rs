//! The CPU cost of format version 2, measured on a real recording:
//! `cargo run --release -p memtrail-format --example compression -- FILE ROUNDS`.
//!
//! Groups FILE's records into ticks (a tick starts with its system sample),
//! then, ROUNDS times alternately, writes them in memory as version 1 and
//! as version 2 (a flush, so a block, per tick) and reads both back.
//! Prints one JSON object: the process samples, the bytes of each version
//! and the median nanoseconds per process sample of each step.
//! `cargo xtask bench compression` runs it.

use std::time::{Duration, Instant};

use memtrail_format::{Header, Reader, Record, Writer};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write(header: &Header, ticks: &[Vec<Record>], compressed: bool) -> Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut writer = if compressed {
        Writer::compressed(Vec::new(), header)?
    } else {
        Writer::new(Vec::new(), header)?
    };
    for tick in ticks {
        for r in tick {
            writer.write(r)?;
        }
        writer.flush()?;
    }
    let elapsed = started.elapsed();
    Ok((elapsed, writer.get_ref().clone()))
}

fn read(bytes: &[u8]) -> Result<Duration> {
    let started = Instant::now();
    for frame in Reader::new(bytes)? {
        std::hint::black_box(frame?);
    }
    Ok(started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), rounds) = (args.next(), args.next()) else {
        return Err("usage: compression FILE [ROUNDS]".into());
    };
    let rounds: usize = rounds.map_or(Ok(7), |r| r.parse())?;
    let mut reader = memtrail_format::open(std::path::Path::new(&path))?;
    let header = reader.header().clone();
    let mut ticks: Vec<Vec<Record>> = Vec::new();
    let mut samples = 0usize;
    for frame in reader.by_ref() {
        let record = frame?.record;
        if matches!(record, Record::System(_)) || ticks.is_empty() {
            ticks.push(Vec::new());
        }
        samples += usize::from(matches!(record, Record::Process(_)));
        ticks.last_mut().expect("pushed").push(record);
    }
    let (mut w1, mut w2, mut r1, mut r2) = (vec![], vec![], vec![], vec![]);
    let (mut b1, mut b2) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (t, bytes) = write(&header, &ticks, false)?;
        w1.push(t);
        b1 = bytes;
        let (t, bytes) = write(&header, &ticks, true)?;
        w2.push(t);
        b2 = bytes;
        r1.push(read(&b1)?);
        r2.push(read(&b2)?);
    }
    let ns = |v: Vec<Duration>| median(v).as_secs_f64() * 1e9 / samples.max(1) as f64;
    println!(
        "{{\"samples\":{samples},\"ticks\":{},\"v1_bytes\":{},\"v2_bytes\":{},\"write_v1_ns\":{:.1},\"write_v2_ns\":{:.1},\"read_v1_ns\":{:.1},\"read_v2_ns\":{:.1}}}",
        ticks.len(),
        b1.len(),
        b2.len(),
        ns(w1),
        ns(w2),
        ns(r1),
        ns(r2)
    );
    Ok(())
}

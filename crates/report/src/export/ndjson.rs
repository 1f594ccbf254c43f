//! Newline-delimited JSON: one object per sample with the keys of
//! [`COLUMNS`](super::COLUMNS), in that order; unknown values are `null`.

use std::io::{self, Write};

use serde::Serialize;

use super::{Export, Row};

#[derive(Debug, Default)]
pub struct Ndjson;

#[derive(Serialize)]
struct Line<'a> {
    time_us: u64,
    pid: u32,
    start_time: u64,
    ppid: u32,
    comm: &'a str,
    command: &'a str,
    rss_kib: Option<u64>,
    anon_kib: Option<u64>,
    file_kib: Option<u64>,
    shmem_kib: Option<u64>,
    pss_kib: Option<u64>,
    swap_kib: Option<u64>,
    fds: Option<u64>,
    threads: Option<u64>,
}

impl Export for Ndjson {
    fn row(&mut self, r: &Row, out: &mut dyn Write) -> io::Result<()> {
        let [rss_kib, anon_kib, file_kib, shmem_kib, pss_kib, swap_kib, fds, threads] = r.values;
        let line = Line {
            time_us: r.time_us,
            pid: r.pid,
            start_time: r.start_time,
            ppid: r.ppid,
            comm: &r.comm,
            command: &r.command,
            rss_kib,
            anon_kib,
            file_kib,
            shmem_kib,
            pss_kib,
            swap_kib,
            fds,
            threads,
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::COLUMNS;
    use super::*;

    #[test]
    fn keys_are_the_columns_in_order() {
        let row = Row {
            time_us: 1,
            pid: 2,
            start_time: 3,
            ppid: 4,
            comm: "a\"b".into(),
            command: "a\"b --x".into(),
            values: [Some(5), None, None, None, None, None, Some(7), Some(1)],
        };
        let text = super::super::to_string(&mut Ndjson, &[row]);
        let at: Vec<usize> = COLUMNS
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["comm"], "a\"b");
        assert_eq!(v["anon_kib"], serde_json::Value::Null);
    }
}

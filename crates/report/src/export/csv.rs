//! CSV (RFC 4180): a header line of [`COLUMNS`](super::COLUMNS), then a
//! line per sample; unknown values are empty cells. A field holding a
//! comma, a quote or a line break is quoted, its quotes doubled.

use std::io::{self, Write};

use super::{Export, Row, COLUMNS};

#[derive(Debug, Default)]
pub struct Csv;

/// `s` as one CSV field.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

impl Export for Csv {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", COLUMNS.join(","))
    }

    fn row(&mut self, r: &Row, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "{},{},{},{},{},{}",
            r.time_us,
            r.pid,
            r.start_time,
            r.ppid,
            field(&r.comm),
            field(&r.command)
        )?;
        for v in r.values {
            match v {
                Some(v) => write!(out, ",{v}")?,
                None => write!(out, ",")?,
            }
        }
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        for (raw, want) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("", ""),
        ] {
            assert_eq!(field(raw), want);
        }
    }
}

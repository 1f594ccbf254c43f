//! Human sizes and durations on the command line: `1MiB`, `250ms`.

use std::fmt;
use std::str::FromStr;

/// A size in bytes, written with an optional unit.
///
/// K, M, G and T are powers of 1024 with or without `i`/`B` (`4k`, `4KB`,
/// `4KiB` are all 4096 bytes): /proc reports "kB" meaning KiB, and users
/// comparing with pmap or /proc expect the same. Hand-written rather than a
/// crate because those crates read "kB" as 1000, which would disagree with
/// every number the kernel prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    /// In KiB, rounded up: the unit of the data model.
    pub fn kib(self) -> u64 {
        self.0.div_ceil(1024)
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || {
            format!("invalid size `{s}`: expected a number with an optional unit, e.g. 4096, 512KiB, 1MiB, 2G")
        };
        if num.is_empty() {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return Err(bad()),
        };
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("size `{s}` is out of range"));
        }
        Ok(Size(bytes.round() as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A duration such as `250ms`, `1s`, `5m`, `1h30m` (humantime's syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            format!("invalid duration `{s}`: {e}; expected e.g. 250ms, 1s, 5m, 1h30m")
        })?;
        if d.is_zero() {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        Ok(Duration(d))
    }
}

/// A limit of `record --rotate` and `--keep`: a size or a duration.
///
/// A number alone, or with a size unit (`B`, `K`, `KB`, `KiB`, `M`, `MB`,
/// `MiB`, `G`..., case-insensitive except `m`) is a size; anything else is
/// a duration in humantime's syntax (`30s`, `10m`, `1h`, `7d`, `1week`).
/// A lone `m` is minutes, as in `--interval 1m`; `M` is MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Size(u64),
    Duration(std::time::Duration),
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let unit = t
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .trim();
        let size_unit = unit == "M"
            || matches!(
                unit.to_ascii_lowercase().as_str(),
                "" | "b"
                    | "k"
                    | "kb"
                    | "kib"
                    | "mb"
                    | "mib"
                    | "g"
                    | "gb"
                    | "gib"
                    | "t"
                    | "tb"
                    | "tib"
            );
        if size_unit {
            let size: Size = t.parse()?;
            if size.0 == 0 {
                return Err(format!("size `{s}` must be greater than zero"));
            }
            return Ok(Limit::Size(size.0));
        }
        let d = humantime::parse_duration(t).map_err(|e| {
            format!(
                "invalid limit `{s}` ({e}): expected a size (e.g. 100MiB, 1G) or a duration (e.g. 1h, 7d)"
            )
        })?;
        if d.is_zero() {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        Ok(Limit::Duration(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        use std::time::Duration as D;
        for (input, want) in [
            ("100MiB", Limit::Size(100 << 20)),
            ("100M", Limit::Size(100 << 20)),
            ("1G", Limit::Size(1 << 30)),
            ("4096", Limit::Size(4096)),
            ("1m", Limit::Duration(D::from_secs(60))),
            ("1h", Limit::Duration(D::from_secs(3600))),
            ("7d", Limit::Duration(D::from_secs(7 * 86400))),
        ] {
            assert_eq!(input.parse::<Limit>(), Ok(want), "{input}");
        }
        for bad in ["", "0", "0s", "soon", "1XB"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad} should be rejected");
        }
    }

    fn size(s: &str) -> Result<u64, String> {
        s.parse::<Size>().map(|s| s.0)
    }

    #[test]
    fn sizes() {
        for (input, want) in [
            ("0", 0),
            ("4096", 4096),
            ("1k", 1024),
            ("1kB", 1024),
            ("1KiB", 1024),
            ("1MiB", 1 << 20),
            ("1.5M", 3 << 19),
            ("2G", 2 << 30),
            (" 7 mib ", 7 << 20),
        ] {
            assert_eq!(size(input), Ok(want), "{input}");
        }
        for bad in ["", "MiB", "1XB", "-1", "1e3", "1..2k"] {
            assert!(size(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!("1000".parse::<Size>().unwrap().kib(), 1);
        assert_eq!("2048".parse::<Size>().unwrap().kib(), 2);
    }

    #[test]
    fn durations() {
        assert_eq!(
            "250ms".parse::<Duration>().unwrap().0,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            "1h30m".parse::<Duration>().unwrap().0,
            std::time::Duration::from_secs(5400)
        );
        assert!("0s".parse::<Duration>().is_err());
        assert!("soon".parse::<Duration>().unwrap_err().contains("250ms"));
    }
}

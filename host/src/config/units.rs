//! Human-friendly units in manifests and flags: byte sizes (`64MiB`) and durations (`10s`).
//!
//! Both parse from strings in serde (so a bad value in a manifest is reported by the TOML
//! parser with its line) and from CLI flags (through `FromStr`). Sizes also accept a bare
//! integer number of bytes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A size in bytes, written as `65536`, `64KiB`, `64MiB`, `1GiB`, `10MB`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size as a `usize`, saturating on 32-bit hosts.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(format!("invalid size {text:?}: expected a number such as 64MiB"));
        }
        let number: u64 =
            digits.parse().map_err(|_| format!("invalid size {text:?}: number too large"))?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" => 1_000,
            "KiB" => 1 << 10,
            "M" | "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "G" | "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "invalid size {text:?}: unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB or GiB)"
                ));
            }
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size {text:?}: too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (scale, unit) in UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        for (scale, unit) in UNITS {
            if self.0 >= scale {
                return write!(f, "{:.1}{unit}", self.0 as f64 / scale as f64);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => u64::try_from(n)
                .map(ByteSize)
                .map_err(|_| de::Error::custom(format!("invalid size {n}: must not be negative"))),
            Raw::Text(text) => text.parse().map_err(de::Error::custom),
        }
    }
}

/// A wall-clock span, written as `10s`, `500ms`, `1m30s`, `2h`, `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(Span)
            .map_err(|err| format!("invalid duration {text:?}: {err} (e.g. 500ms, 10s, 5m, 1h)"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap().0, 64 << 20);
        assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10_000_000);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
    }

    #[test]
    fn bad_sizes_say_why() {
        let err = "64XB".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("unknown unit \"XB\""), "{err}");
        assert!("MiB".parse::<ByteSize>().unwrap_err().contains("expected a number"));
        assert!("99999999999999999999".parse::<ByteSize>().is_err());
    }

    #[test]
    fn sizes_display_compactly() {
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5KiB");
        assert_eq!(ByteSize(12).to_string(), "12B");
    }

    #[test]
    fn spans_parse_and_reject() {
        assert_eq!("10s".parse::<Span>().unwrap().0, Duration::from_secs(10));
        assert_eq!("1m30s".parse::<Span>().unwrap().0, Duration::from_secs(90));
        assert!("ten seconds".parse::<Span>().unwrap_err().contains("invalid duration"));
    }
}

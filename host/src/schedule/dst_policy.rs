//! The two DST policies a manifest can set (`dst_gap`, `dst_fold`, S1).
//!
//! Plain enums that serde reads with the manifest's spelling (`"shift"`, `"both"`), plus
//! `FromStr` / `Display` with the same spelling for CLI flags and messages. They only
//! change wall-clock schedules; absolute-time ones (see `dst.rs`) ignore them.

use std::fmt;
use std::str::FromStr;

use super::error::ScheduleError;

/// What to do with a local time that a spring-forward change skips (`dst_gap`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DstGap {
    /// Fire once at the first instant after the gap, as Vixie/ISC cron does.
    #[default]
    Shift,
    /// Do not fire that day.
    Skip,
}

/// Which occurrence of a local time that an autumn change repeats fires (`dst_fold`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DstFold {
    /// The earlier one.
    #[default]
    First,
    /// The later one.
    Last,
    /// Both.
    Both,
}

impl FromStr for DstGap {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shift" => Ok(DstGap::Shift),
            "skip" => Ok(DstGap::Skip),
            other => Err(ScheduleError::InvalidDstGap(other.to_string())),
        }
    }
}

impl FromStr for DstFold {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "first" => Ok(DstFold::First),
            "last" => Ok(DstFold::Last),
            "both" => Ok(DstFold::Both),
            other => Err(ScheduleError::InvalidDstFold(other.to_string())),
        }
    }
}

impl fmt::Display for DstGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DstGap::Shift => "shift",
            DstGap::Skip => "skip",
        })
    }
}

impl fmt::Display for DstFold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DstFold::First => "first",
            DstFold::Last => "last",
            DstFold::Both => "both",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        for g in [DstGap::Shift, DstGap::Skip] {
            assert_eq!(g.to_string().parse::<DstGap>().unwrap(), g);
        }
        for f in [DstFold::First, DstFold::Last, DstFold::Both] {
            assert_eq!(f.to_string().parse::<DstFold>().unwrap(), f);
        }
        assert_eq!(DstGap::default(), DstGap::Shift);
        assert_eq!(DstFold::default(), DstFold::First);
        // The manifest spells them the same way serde reads them.
        use serde::Deserialize;
        use serde::de::value::{Error, StrDeserializer};
        let gap = DstGap::deserialize(StrDeserializer::<Error>::new("skip")).unwrap();
        let fold = DstFold::deserialize(StrDeserializer::<Error>::new("both")).unwrap();
        assert_eq!((gap, fold), (DstGap::Skip, DstFold::Both));
    }
}

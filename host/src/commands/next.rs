//! `sandcron next "SPEC"`: the next fire instants of a schedule, UTC first, then local.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cli::NextArgs;
use crate::schedule::{ScheduleSpec, Trigger};

use super::Exit;

/// Prints `-n` fire times after `--after` (default: now); exit 2 if the schedule is invalid
/// or never fires.
pub fn main(args: NextArgs) -> Exit {
    let after = match &args.after {
        None => DateTime::<Utc>::from(std::time::SystemTime::now()),
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(err) => {
                eprintln!(
                    "error: --after {text:?} is not an RFC 3339 time ({err}), e.g. 2026-03-29T00:00:00Z"
                );
                return Exit::InvalidInput;
            }
        },
    };
    let spec = match ScheduleSpec::new(
        Trigger::Cron(args.spec.clone()),
        args.tz.as_deref(),
        args.dst_gap,
        args.dst_fold,
    ) {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("error: {:?}: {err}", args.spec);
            return Exit::InvalidInput;
        }
    };
    if let Some(why) = spec.never_fires() {
        eprintln!("error: {:?} never fires: {why}", args.spec);
        return Exit::InvalidInput;
    }
    let zone = spec.timezone();
    let mut printed = 0;
    for instant in spec.iter_after(after).take(args.count) {
        let local = instant.with_timezone(&zone);
        println!(
            "{}  {}",
            instant.to_rfc3339_opts(SecondsFormat::Secs, true),
            local.format("%Y-%m-%d %H:%M:%S %Z (%:z)")
        );
        printed += 1;
    }
    if printed == 0 {
        eprintln!("error: {:?} has no fire time after {after}", args.spec);
        return Exit::InvalidInput;
    }
    eprintln!("{} — {printed} shown", spec.describe());
    Exit::Success
}

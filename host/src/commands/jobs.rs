//! `sandcron jobs`: every job the host knows, with schedule, next fire, state and last
//! outcome, read straight from the store. Next fire times are recomputed here from the
//! stored schedule (the schedule module is pure), so the host writes nothing per slot.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cli::JobsArgs;
use crate::schedule::ScheduleSpec;
use crate::store::Ledger;
use crate::views::rfc3339;
use crate::words::BreakerState;

use super::Exit;
use super::runs::open_store;

/// Prints the jobs.
pub fn main(args: JobsArgs) -> Exit {
    let store = match open_store(args.store.as_deref()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let (jobs, last_runs) = match (store.jobs(), store.last_runs()) {
        (Ok(jobs), Ok(last)) => (jobs, last),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    };
    let last: HashMap<&str, _> = last_runs.iter().map(|r| (r.job.as_str(), r)).collect();
    let now = DateTime::<Utc>::from(std::time::SystemTime::now());
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            let schedule = (!job.schedule.is_empty())
                .then(|| ScheduleSpec::from_record(&job.schedule).ok())
                .flatten();
            let after =
                now.max(DateTime::from_timestamp_millis(job.schedule_epoch_ms).unwrap_or(now));
            let next = schedule.as_ref().and_then(|s| s.next_after(after));
            let state = match job.breaker {
                BreakerState::Open { until_ms } => {
                    format!("breaker open until {}", rfc3339(until_ms))
                }
                BreakerState::HalfOpen => "breaker half-open".to_string(),
                BreakerState::Closed if job.paused => "paused".to_string(),
                BreakerState::Closed => "active".to_string(),
            };
            let last = last.get(job.name.as_str());
            json!({
                "name": job.name,
                "version": job.version,
                "schedule": schedule.as_ref().map(|s| s.describe()),
                "timezone": schedule.as_ref().map(|s| s.timezone().name().to_string()),
                "next_fire": next.map(|t| rfc3339(t.timestamp_millis())),
                "state": state,
                "breaker": job.breaker.as_str(),
                "consecutive_failures": job.consecutive_failures,
                "last_status": last.map(|r| r.status.as_str()),
                "last_reason": last.map(|r| r.reason.clone()),
                "last_at": last.map(|r| rfc3339(r.finished_at_ms.unwrap_or(r.scheduled_at_ms))),
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
        return Exit::Success;
    }
    if rows.is_empty() {
        println!("no jobs yet");
        return Exit::Success;
    }
    println!("{:<20} {:<34} {:<25} {:<12} LAST", "JOB", "SCHEDULE", "NEXT FIRE (UTC)", "STATE");
    for row in &rows {
        let text = |key: &str| row[key].as_str().unwrap_or("-").to_string();
        println!(
            "{:<20} {:<34} {:<25} {:<12} {} {}",
            text("name"),
            text("schedule"),
            text("next_fire"),
            text("state"),
            text("last_status"),
            row["last_reason"].as_str().unwrap_or("")
        );
    }
    Exit::Success
}

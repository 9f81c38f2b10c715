//! `sandcron trigger | pause | resume | backfill`: the control verbs. They talk to a running
//! host's HTTP API (O1), print a readable line by default and the API's JSON with --json.
//! An API error is printed with its stable code and the exit code says which kind it was.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{ApiClientArgs, BackfillArgs, PauseArgs, ResumeArgs, TriggerArgs};

use super::Exit;
use super::api_client;

/// How long a control call may take (a trigger answers once its run is claimed).
const TIMEOUT: Duration = Duration::from_secs(30);

/// `sandcron trigger`.
pub fn trigger(args: TriggerArgs) -> Exit {
    let mut body = json!({ "force": args.force });
    if let Some(payload) = &args.payload {
        body["payload"] = json!(payload);
    }
    let key = args.idempotency_key.as_deref();
    let path = format!("/v1/jobs/{}/trigger", encode(&args.job));
    call(&args.client, &path, body, key, |answer| match answer["status"].as_str() {
        Some("started") => format!(
            "started {} run {} (idempotency key {})",
            args.job,
            answer["run_id"].as_str().unwrap_or("?"),
            answer["idempotency_key"].as_str().unwrap_or("?")
        ),
        Some("queued") => format!(
            "queued {} behind its running run (idempotency key {})",
            args.job,
            answer["idempotency_key"].as_str().unwrap_or("?")
        ),
        _ => format!(
            "not started: run {} already has idempotency key {} (status {})",
            answer["run_id"].as_str().unwrap_or("?"),
            answer["idempotency_key"].as_str().unwrap_or("?"),
            answer["run"]["status"].as_str().unwrap_or("?")
        ),
    })
}

/// `sandcron pause`.
pub fn pause(args: PauseArgs) -> Exit {
    let path = format!("/v1/jobs/{}/pause", encode(&args.job));
    call(&args.client, &path, json!({ "note": args.note }), None, |job| {
        format!("paused {}{}", args.job, note_suffix(job))
    })
}

/// `sandcron resume`.
pub fn resume(args: ResumeArgs) -> Exit {
    let path = format!("/v1/jobs/{}/resume", encode(&args.job));
    call(&args.client, &path, json!({}), None, |job| {
        format!("resumed {}; next fire {}", args.job, job["next_fire"].as_str().unwrap_or("none"))
    })
}

/// `sandcron backfill`.
pub fn backfill(args: BackfillArgs) -> Exit {
    let path = format!("/v1/jobs/{}/backfill", encode(&args.job));
    let body = json!({ "from": args.from, "to": args.to, "rate": args.rate });
    call(&args.client, &path, body, None, |plan| {
        let before = match plan["before_schedule"].as_u64() {
            Some(0) | None => String::new(),
            Some(n) => format!(
                ", {n} before the job's schedule began ({}) and not queued",
                plan["schedule_since"].as_str().unwrap_or("?")
            ),
        };
        format!(
            "backfill of {}: {} slot(s) in range, {} queued, {} already ran{before}; one start every {} ms",
            args.job, plan["slots"], plan["queued"], plan["already_run"], plan["interval_ms"]
        )
    })
}

fn note_suffix(job: &Value) -> String {
    match job["pause_note"].as_str() {
        Some(note) if !note.is_empty() => format!(" ({note})"),
        _ => String::new(),
    }
}

/// Percent-encodes a path segment (job names are plain, but be safe).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs `body` to the API and prints the answer; maps API errors to exit codes.
fn call(
    client: &ApiClientArgs,
    path: &str,
    body: Value,
    idempotency_key: Option<&str>,
    describe: impl FnOnce(&Value) -> String,
) -> Exit {
    let token = match super::token::resolve(client.token.as_deref(), client.token_file.as_deref()) {
        Ok(token) => token,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::InvalidInput;
        }
    };
    let agent = match api_client::agent(client, TIMEOUT) {
        Ok(agent) => agent,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::InvalidInput;
        }
    };
    let url = format!("{}{path}", api_client::base_url(client));
    let mut request = agent.post(&url);
    if let Some(token) = &token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let mut response = match request.send_json(&body) {
        Ok(response) => response,
        Err(err) => {
            let (error, hint) = api_client::explain(&err, client);
            eprintln!("error: {error}");
            eprintln!("hint: {hint}");
            return Exit::HostError;
        }
    };
    let status = response.status();
    let answer: Value = match response.body_mut().read_json() {
        Ok(answer) => answer,
        Err(err) => {
            eprintln!("error: {url} answered {status} with a body that is not JSON: {err}");
            return Exit::HostError;
        }
    };
    if status.is_success() {
        if client.json {
            println!("{answer}");
        } else {
            println!("{}", describe(&answer));
        }
        return Exit::Success;
    }
    if client.json {
        println!("{answer}");
    }
    eprintln!(
        "error: {} ({}, HTTP {})",
        answer["message"].as_str().unwrap_or("request failed"),
        answer["code"].as_str().unwrap_or("unknown"),
        status.as_u16()
    );
    if status.is_client_error() { Exit::InvalidInput } else { Exit::HostError }
}

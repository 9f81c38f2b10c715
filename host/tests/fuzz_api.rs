//! Fuzz target: the API's input parsing (JSON bodies, query strings, the Idempotency-Key
//! header), driven in process through [`sandcron::api::router`] with no socket.
//!
//! The router gets a real SQLite ledger in a temp folder and a scheduler handle whose
//! receiver is dropped, so every request that parses reaches the scheduler and answers 503
//! `shutting_down` — which is how the target tells "parsed" from "rejected" without
//! opening the handlers' private body types. Inputs: random bytes and edits of valid JSON
//! bodies for pause, trigger and backfill; random and edited query strings for
//! `GET /v1/runs` and `POST .../trigger?force=`. Property: no panic; every answer is a
//! 2xx, a 4xx, or the 503 of a parsed request, always in the API's error shape when not
//! 2xx; a body that is not JSON at all is a 400 `invalid_argument`.
//!
//! Long campaign: `SANDCRON_FUZZ_CASES=100000 cargo test --release -p sandcron --test
//! fuzz_api -- --nocapture`.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use proptest::prelude::*;
use sandcron::api::{ApiContext, router};
use sandcron::metrics::Metrics;
use sandcron::scheduler::control_channel;
use sandcron::store::SqliteStore;
use tower::ServiceExt;

use common::{Tally, cases, edits, mutate, runner};

const BODIES: &[&str] = &[
    r#"{"note": "deploying"}"#,
    r#"{"payload": "hello", "force": true}"#,
    r#"{"payload": null, "force": false}"#,
    r#"{"from": "2026-11-23T04:00:00Z", "to": "2026-11-23T05:00:00+01:00", "rate": 2.5}"#,
    r#"{"from": "2026-11-23T04:00:00Z", "to": "2026-11-22T04:00:00Z"}"#,
    "{}",
    "",
    " \n",
];

const QUERIES: &[&str] = &[
    "job=hello&status=failed&since=2026-11-23T04:00:00Z&until=2026-11-24T04:00:00Z&before=170000&limit=20",
    "limit=1",
    "status=succeeded",
    "before=-1&limit=0",
    "force=true",
    "force=1",
    "",
];

const JSON_DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e309",
    "-1",
    "18446744073709551616",
    "NaN",
    "1.5",
    "\"note\"",
    "\"payload\"",
    "\"force\"",
    "\"from\"",
    "\"to\"",
    "\"rate\"",
    "\"x\"",
    "é",
    "\u{0}",
    " ",
    "\n",
    "9999-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "+99999-01-01T00:00:00Z",
];

const QUERY_DICTIONARY: &[&str] = &[
    "&",
    "=",
    "%",
    "%00",
    "%ff",
    "%zz",
    "+",
    "job",
    "status",
    "since",
    "until",
    "before",
    "limit",
    "force",
    "true",
    "false",
    "1",
    "-1",
    "9223372036854775808",
    "18446744073709551616",
    "2026-11-23T04:00:00Z",
    "failed",
    "running",
    "x",
    "[]",
    "a[b]=c",
    "%C3%A9",
    "%F0%9F%98%80",
    ";",
];

#[derive(Debug, Clone)]
enum Case {
    /// `POST /v1/jobs/demo/{action}?{query}` with a body and maybe an Idempotency-Key.
    Post { action: &'static str, query: String, body: Vec<u8>, key: Option<Vec<u8>> },
    /// `GET /v1/runs?{query}`.
    Runs { query: String },
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => (0..BODIES.len(), edits(6)).prop_map(|(i, e)| mutate(BODIES[i], &e, JSON_DICTIONARY).into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(proptest::sample::select(JSON_DICTIONARY), 0..20).prop_map(|p| p.concat().into_bytes()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..QUERIES.len(), edits(6)).prop_map(|(i, e)| escape(&mutate(QUERIES[i], &e, QUERY_DICTIONARY))),
        1 => proptest::collection::vec(proptest::sample::select(QUERY_DICTIONARY), 0..12).prop_map(|p| p.concat()),
        1 => any::<String>().prop_map(|s| escape(&s)),
    ]
}

/// Percent-encodes what a URI cannot hold, leaving `%` alone so bad escapes still get
/// through: random text reaches the query parser instead of failing in the client.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"%&=+-._~!$'()*,;:@/?".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn case() -> impl Strategy<Value = Case> {
    let key = proptest::option::of(prop_oneof![
        3 => "[ -~]{0,300}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ]);
    prop_oneof![
        3 => (proptest::sample::select(&["pause", "trigger", "backfill", "resume"][..]), query(), body(), key)
            .prop_map(|(action, query, body, key)| Case::Post { action, query, body, key }),
        2 => query().prop_map(|query| Case::Runs { query }),
    ]
}

fn request(case: &Case) -> Option<Request<Body>> {
    let builder = match case {
        Case::Post { action, query, key, .. } => {
            // As a same-site client sends it: the API refuses other hosts and content types
            // before parsing (api/guard.rs), and this target is about the parsing.
            let mut b = Request::builder()
                .method(Method::POST)
                .uri(format!("/v1/jobs/demo/{action}?{query}"))
                .header("host", "localhost")
                .header("content-type", "application/json");
            if let Some(key) = key {
                b = b.header("idempotency-key", key.as_slice());
            }
            b
        }
        Case::Runs { query } => {
            Request::builder().uri(format!("/v1/runs?{query}")).header("host", "localhost")
        }
    };
    let body = match case {
        Case::Post { body, .. } => Body::from(body.clone()),
        Case::Runs { .. } => Body::empty(),
    };
    builder.body(body).ok()
}

#[test]
fn fuzz_api() {
    let dir = std::env::temp_dir().join(format!("sandcron-fuzz-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp folder");
    let ledger = Arc::new(SqliteStore::open(&dir.join("store.db")).expect("a ledger"));
    // The receiver is dropped: every request that parses meets a stopped scheduler (503).
    let (scheduler, _) = control_channel();
    let context = Arc::new(ApiContext {
        ledger,
        scheduler,
        metrics: Arc::new(Metrics::new()),
        token: None,
        api_hosts: Vec::new(),
    });
    let app = router(context);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tally = Tally::default();

    let result = runner(cases(common::DEFAULT_CASES)).run(&case(), |case| {
        let Some(request) = request(&case) else {
            // The URI or header cannot be written at all: the client never sends it.
            tally.rejected("not a valid HTTP request (never reaches the server)");
            return Ok(());
        };
        let (status, body) = tokio.block_on(async {
            let response = app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            (status, axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap())
        });
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        prop_assert!(
            json.is_some(),
            "{status}: the answer is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        );
        let json = json.unwrap();
        if !status.is_success() {
            let shaped = json["code"].is_string()
                && json["message"].is_string()
                && json["details"].is_object();
            prop_assert!(shaped, "{status}: not the error shape: {json}");
        }
        let code = json["code"].as_str().unwrap_or("");
        let parsed = status.is_success()
            || (status == StatusCode::SERVICE_UNAVAILABLE && code == "shutting_down");
        prop_assert!(parsed || status.is_client_error(), "{status} {json} for {case:?}");
        if let Case::Post { body, action, .. } = &case {
            let blank = body.iter().all(u8::is_ascii_whitespace);
            let not_json = serde_json::from_slice::<serde_json::Value>(body).is_err();
            if *action != "resume" && !blank && not_json {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{} for {:?}", json, case);
                prop_assert_eq!(code, "invalid_argument");
            }
        }
        let what = match &case {
            Case::Post { action, .. } => format!("POST {action}"),
            Case::Runs { .. } => "GET runs".to_string(),
        };
        if parsed {
            tally.note(format!("{what}: parsed ({status})"));
            tally.accepted();
        } else {
            let field = json["details"]["field"].as_str().unwrap_or("-");
            tally.rejected(format!("{what}: {} {code} (field {field})", status.as_u16()));
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    tally.finish("api", result);
}

//! End-to-end tests: the built `sandcron` binary (and, where one process must survive many
//! runs, the library's `Runtime`) against real components built from `examples/` and
//! `tests/guests/`. Guests and the binary are built once per test run by `util`.

mod api;
mod api_hardening;
mod auth;
mod bad_input;
mod cache_integrity;
mod claim_ahead;
mod clock;
mod cold_start;
mod control;
mod dashboard;
mod guest_api;
mod host;
mod host_config;
mod hostile_output;
mod http;
mod inspect;
mod install;
mod journald;
mod languages;
mod listen;
mod metrics;
mod net_servers;
mod network;
mod next;
mod notify;
mod notify_events;
mod odd_files;
mod openapi;
mod policies;
mod reload;
mod retention;
mod sandbox;
mod scheduler;
mod shapes;
mod sign_in;
mod store_health;
mod tls;
mod token_file;
mod trigger_bounds;
mod util;
mod webhook;

//! The daemon is handed its API socket (issue 13): a parent that bound it passes it as a
//! descriptor (`--api-fd`; every `Site::start` does, so tests know the port without the
//! host's log), systemd socket activation passes it through `LISTEN_FDS`, and the host
//! binds nothing itself. A descriptor that is not a listening TCP socket is refused by
//! name; the store's lock is taken before any port, so a second host on one store is told
//! about the store, not about a port.

use std::ops::ControlFlow::{Break, Continue};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::host::{Host, Site};
use crate::http::get;
use crate::util::{sandcron, shared_cache, wait_until};

#[test]
fn the_host_serves_the_socket_the_test_bound_and_logs_that_address() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1h\"\n");
    let host = site.start(&[]);
    let base = host.api_address();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    // `api()` waits for /readyz on the address the test chose, not one read from the log.
    assert_eq!(get(&host.api(), "/readyz").status, 200);
    let log = host.log_text();
    assert!(log.contains(&format!("API listening on {base}")), "{log}");
}

#[test]
fn a_descriptor_that_is_not_a_listening_socket_is_refused_by_name() {
    let site = Site::new();
    for (fd, reason) in [("987", "not an open file descriptor"), ("0", "not a socket")] {
        let output = Command::new(sandcron())
            .args(["serve", "--jobs"])
            .arg(site.jobs())
            .arg("--store")
            .arg(site.store())
            .args(["--api-fd", fd])
            .stdin(std::fs::File::open("/dev/null").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "fd {fd}: {stderr}");
        let expected = format!("error: --api-fd {fd}: cannot serve the API on it: {reason}");
        assert!(stderr.contains(&expected), "fd {fd}: {stderr}");
    }
}

#[test]
fn a_second_host_on_one_store_is_told_about_the_store_even_on_the_same_port() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1h\"\n");
    let first = site.start(&[]);
    let base = first.api();
    let port = base.rsplit(':').next().unwrap();
    let output = Command::new(sandcron())
        .args(["serve", "--jobs"])
        .arg(site.jobs())
        .arg("--store")
        .arg(site.store())
        .args(["--api", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another sandcron host is serving"), "{stderr}");
    assert!(!stderr.contains("cannot serve the API"), "the lock comes before the port: {stderr}");
    assert_eq!(get(&base, "/readyz").status, 200, "the first host is untouched");
}

#[test]
fn systemd_socket_activation_hands_the_host_its_listener() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1h\"\n");
    let log = site.dir.path().join("activated.log");
    // The activator takes no port 0: a free port, released just before it binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    // systemd-socket-activate binds, sets LISTEN_FDS/LISTEN_PID and execs the host with the
    // socket as fd 3; the host has no --api-fd and no --api of its own (its default, 7070,
    // is not what it serves).
    let mut activator = Command::new("systemd-socket-activate");
    activator.args(["-l", &format!("127.0.0.1:{port}")]).arg(sandcron());
    let child = site
        .serve_args(&mut activator, &shared_cache())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("systemd-socket-activate starts (package systemd)");
    let mut host = Host::adopt(child, log);
    // The activator binds only once it runs: until then the port refuses connections.
    let bound = || match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => Break(()),
        Err(err) => Continue(err),
    };
    wait_until(Duration::from_secs(30), bound).unwrap_or_else(|e| panic!("never bound: {e}"));
    let ready = || {
        let reply = get(&base, "/readyz");
        if reply.status == 200 { Break(()) } else { Continue(reply) }
    };
    wait_until(Duration::from_secs(30), ready)
        .unwrap_or_else(|r| panic!("never ready: {r:?}\n{}", host.log_text()));
    assert!(host.log_text().contains(&format!("API listening on {base}")), "{}", host.log_text());
    assert_eq!(host.stop(), 0);
}

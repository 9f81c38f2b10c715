//! O6: the API over TLS (`serve --tls-cert/--tls-key`) with a private CA made by the
//! `openssl` CLI in the test, the CLI verbs speaking https to it (`--ca-cert`), and the
//! refusals: plain HTTP to the TLS port, a certificate from another CA, a non-loopback API
//! without TLS, unusable certificate files, a handshake that never finishes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::ControlFlow::{Break, Continue};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::host::{Host, Site};
use crate::util::{sandcron, tempdir, wait_until};

/// A CA, a server certificate it signed for 127.0.0.1 and localhost, and a second CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki { dir: tempdir() };
        for name in ["ca", "other-ca"] {
            let (key, pem, subject) =
                (format!("{name}.key"), format!("{name}.pem"), format!("/CN={name}"));
            pki.openssl(&[
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                &subject,
                "-keyout",
                &key,
                "-out",
                &pem,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=keyCertSign",
            ]);
        }
        pki.openssl(&[
            "req",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            pki.path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(self.dir.path());
        if args[0] == "req" {
            // A P-256 key, unencrypted: fast to make, and what a small host would use.
            command.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]);
        }
        let output = command.output().expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--tls-cert server.pem --tls-key server.key` plus `extra`, as owned strings.
    fn serve_flags(&self, extra: &[&str]) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert".to_string(),
            self.path("server.pem").display().to_string(),
            "--tls-key".to_string(),
            self.path("server.key").display().to_string(),
        ];
        flags.extend(extra.iter().map(|s| s.to_string()));
        flags
    }
}

/// Starts a TLS host and waits (bounded) until `/readyz` answers 200 over https.
fn start_tls(site: &Site, pki: &Pki, extra: &[&str]) -> (Host, String) {
    let flags = pki.serve_flags(extra);
    let host = site.start(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let api = host.api_address().replace("0.0.0.0", "127.0.0.1");
    assert!(api.starts_with("https://127.0.0.1:"), "{api}");
    let pem = std::fs::read(pki.path("ca.pem")).unwrap();
    let roots: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item.unwrap() {
            ureq::tls::PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots.into()).build();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).tls_config(tls).build(),
    );
    wait_until(Duration::from_secs(30), || {
        let status = agent.get(format!("{api}/readyz")).call().map(|r| r.status().as_u16());
        if status.as_ref().is_ok_and(|s| *s == 200) { Break(()) } else { Continue(status) }
    })
    .unwrap_or_else(|status| panic!("never ready: {status:?}"));
    (host, api)
}

fn cli(args: &[&str], ca: Option<&Path>) -> Output {
    let mut command = Command::new(sandcron());
    command.args(args).env_remove("SANDCRON_CA_CERT").env_remove("SANDCRON_API");
    if let Some(ca) = ca {
        command.arg("--ca-cert").arg(ca);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cli_triggers_a_job_over_https_and_refuses_what_it_cannot_trust() {
    let pki = Pki::new();
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\nphase = \"1800s\"\n");
    let (_host, api) = start_tls(&site, &pki, &[]);

    let ca = pki.path("ca.pem");
    let started = cli(&["trigger", "probe", "--api", &api], Some(&ca));
    assert!(started.status.success(), "{}", stderr(&started));
    let line = String::from_utf8_lossy(&started.stdout);
    assert!(line.starts_with("started probe run "), "{line}");
    let runs = site.wait_runs("probe", Duration::from_secs(20), |r| {
        r.iter().any(|r| r["status"] == "succeeded")
    });
    assert_eq!(runs.len(), 1, "{runs:#?}");
    // The same address without its scheme and by name, from the environment.
    let by_name = api.replace("https://127.0.0.1", "https://localhost");
    let env = Command::new(sandcron())
        .args(["pause", "probe"])
        .env("SANDCRON_API", &by_name)
        .env("SANDCRON_CA_CERT", &ca)
        .output()
        .unwrap();
    assert!(env.status.success(), "{}", stderr(&env));

    // A certificate from another CA, or none given for a private one: refused, with a hint.
    let wrong = cli(&["resume", "probe", "--api", &api], Some(&pki.path("other-ca.pem")));
    assert_eq!(wrong.status.code(), Some(1));
    let text = stderr(&wrong);
    assert!(text.contains("not trusted") && text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("not issued by the --ca-cert given"), "{text}");
    let public_roots = cli(&["resume", "probe", "--api", &api], None);
    assert_eq!(public_roots.status.code(), Some(1));
    assert!(stderr(&public_roots).contains("--ca-cert FILE or SANDCRON_CA_CERT"));
    let not_pem = cli(&["resume", "probe", "--api", &api], Some(&pki.path("server.ext")));
    assert_eq!(not_pem.status.code(), Some(2));
    assert!(stderr(&not_pem).contains("server.ext: no `BEGIN CERTIFICATE` block"));

    // Plain HTTP to the TLS port: a readable 400, from the CLI and from a raw client.
    let plain = api.replace("https://", "http://");
    let refused = cli(&["resume", "probe", "--api", &plain], None);
    assert_eq!(refused.status.code(), Some(2));
    let text = stderr(&refused);
    assert!(text.contains("https_required") && text.contains("use https://"), "{text}");
    let mut raw = TcpStream::connect(api.trim_start_matches("https://")).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // After all that, https still works.
    let resumed = cli(&["resume", "probe", "--api", &api], Some(&ca));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
}

#[test]
fn an_https_client_to_a_plain_host_is_told_so() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\n");
    let host = site.start(&["--api", "http://127.0.0.1:0"]);
    let api = host.api();
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    let output = cli(&["resume", "probe", "--api", &api.replace("http://", "https://")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("TLS with the API") && text.contains("plain http"), "{text}");
}

#[test]
fn a_handshake_that_never_finishes_is_closed_after_the_idle_timeout() {
    let pki = Pki::new();
    let site = Site::new();
    let (_host, api) = start_tls(&site, &pki, &["--api-idle-timeout", "1s"]);
    let address = api.trim_start_matches("https://");
    // One client sends nothing; another the first bytes of a handshake, then nothing.
    for opening in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(opening).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = stream.read(&mut buf);
        assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(5), "closed after {waited:?}, {opening:?}");
    }
}

#[test]
fn the_host_refuses_to_start_without_what_tls_needs() {
    let pki = Pki::new();
    let site = Site::new();
    let serve = |args: &[&str]| {
        Command::new(sandcron())
            .args(["serve", "--jobs"])
            .arg(site.jobs())
            .arg("--store")
            .arg(site.store())
            .args(args)
            .env_remove("SANDCRON_TLS_CERT")
            .env_remove("SANDCRON_TLS_KEY")
            .output()
            .unwrap()
    };
    let cert = pki.path("server.pem").display().to_string();
    let key = pki.path("server.key").display().to_string();
    let other_key = pki.path("other-ca.key").display().to_string();
    let missing = pki.path("missing.pem").display().to_string();
    for (args, expected) in [
        (
            vec!["--api", "0.0.0.0:0", "--token", "t"],
            vec!["not a loopback address", "--tls-cert FILE --tls-key FILE", "--insecure-http"],
        ),
        (vec!["--api", "https://127.0.0.1:0"], vec!["needs --tls-cert FILE and --tls-key FILE"]),
        (
            vec!["--api", "http://127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key],
            vec!["plain http"],
        ),
        (vec!["--tls-cert", &missing, "--tls-key", &key], vec!["cannot read", "missing.pem"]),
        (vec!["--tls-cert", &key, "--tls-key", &key], vec!["server.key: no certificate"]),
        (vec!["--tls-cert", &cert, "--tls-key", &cert], vec!["server.pem: no private key"]),
        (
            vec!["--tls-cert", &cert, "--tls-key", &other_key],
            vec!["server.pem with", "other-ca.key"],
        ),
        (vec!["--tls-cert", &cert], vec!["--tls-key"]),
        (
            vec!["--api", "127.0.0.1"],
            vec!["expected HOST:PORT, http://HOST:PORT or https://HOST:PORT"],
        ),
    ] {
        let output = serve(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        let text = stderr(&output);
        for part in expected {
            assert!(text.contains(part), "{args:?}: {part:?} not in {text}");
        }
    }
    assert!(!site.store().exists(), "nothing started");
    // A non-loopback API with a token and TLS starts, and answers over https.
    let (_host, api) = start_tls(&site, &pki, &["--api", "0.0.0.0:0", "--token", "t"]);
    assert!(api.starts_with("https://"), "{api}");
}

//! `wasi:sockets` through the allowlist: TCP connects to what `tcp://` entries name.
//!
//! wasmtime-wasi asks a check before every bind and connect, with only the address in
//! hand. So an exact name in a `tcp://` entry is resolved by the host, once per run at the
//! first connect, and only those addresses are opened for it; the guest's own lookup
//! (allowed only when a `tcp://` entry names a host, so that it can resolve it at all)
//! must land on one of them. UDP, listening and explicit binds stay closed: a job is a
//! client. Bytes over a TCP stream are not counted (wasmtime-wasi has no hook for them);
//! the number of connects counts against `limits.requests`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use super::RunNet;
use super::rules;
use crate::config::{HostPattern, NetScheme, PortPattern, canonical};

/// Grants the run TCP (and name lookup) exactly as far as its `tcp://` entries reach.
pub(crate) fn configure_sockets(builder: &mut WasiCtxBuilder, net: &Arc<RunNet>) {
    let tcp = net.allowed.iter().filter(|e| e.scheme == NetScheme::Tcp);
    let any_tcp = tcp.clone().next().is_some();
    let names = tcp.clone().any(|e| matches!(e.host, HostPattern::Name(_) | HostPattern::Any));
    builder.allow_tcp(any_tcp).allow_udp(false).allow_ip_name_lookup(names);
    if !any_tcp {
        return;
    }
    let net = net.clone();
    builder.socket_addr_check(move |address, usage| {
        let net = net.clone();
        Box::pin(async move { net.check_socket(address, usage).await })
    });
}

impl RunNet {
    async fn check_socket(self: Arc<Self>, address: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            // The OS's implicit bind before a connect: the wildcard address, any port.
            SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
            SocketAddrUse::TcpConnect => self.check_connect(address).await,
            _ => false,
        }
    }

    async fn check_connect(self: Arc<Self>, address: SocketAddr) -> bool {
        let what = format!("tcp {address}");
        let (ip, port) = (address.ip(), address.port());
        let mut verdict = rules::admit_address(&self.allowed, NetScheme::Tcp, ip, port, None);
        if verdict.is_err() && self.names_tcp_port(port) {
            let pinned = self.clone().tcp_name_addresses().await;
            if pinned
                .iter()
                .any(|(pinned, p)| canonical(*pinned) == canonical(ip) && p.matches(port))
            {
                verdict = Ok(ip.to_string());
            }
        }
        match verdict {
            Err(reason) => {
                self.refuse(&what, &reason);
                false
            }
            Ok(label) => match self.take_request() {
                Ok(()) => {
                    self.tally(&label, "ok");
                    true
                }
                Err(reason) => {
                    self.limit(&what, Some(&label), &reason);
                    false
                }
            },
        }
    }

    fn names_tcp_port(&self, port: u16) -> bool {
        self.allowed.iter().any(|e| {
            e.scheme == NetScheme::Tcp
                && matches!(e.host, HostPattern::Name(_))
                && e.port.matches(port)
        })
    }

    /// The addresses of the exact names in `tcp://` entries, each with its entry's ports,
    /// resolved once per run by the host.
    async fn tcp_name_addresses(self: Arc<Self>) -> Vec<(IpAddr, PortPattern)> {
        if let Some(known) = self.tcp_names.lock().expect("tcp names").as_ref() {
            return known.clone();
        }
        let entries: Vec<(String, PortPattern)> = self
            .allowed
            .iter()
            .filter(|e| e.scheme == NetScheme::Tcp)
            .filter_map(|e| match &e.host {
                HostPattern::Name(name) => Some((name.clone(), e.port)),
                _ => None,
            })
            .collect();
        let resolved = tokio::task::spawn_blocking(move || {
            let mut pinned = Vec::new();
            for (name, port) in entries {
                if let Ok(found) = (name.as_str(), 0).to_socket_addrs() {
                    pinned.extend(found.map(|address| (address.ip(), port)));
                }
            }
            pinned
        })
        .await
        .unwrap_or_default();
        self.tcp_names.lock().expect("tcp names").get_or_insert(resolved).clone()
    }
}

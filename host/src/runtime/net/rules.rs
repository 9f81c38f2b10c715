//! The allowlist decisions, as pure functions over `allowed_hosts` (M5).
//!
//! A request is admitted in two steps. First its host, before any lookup: a name must be
//! named by a name entry (exact, `*.domain` or `*`), an IP literal by an IP or CIDR entry
//! or by `*`, always with the scheme and port. Then every address the connection would
//! use, after the host's own single lookup: an exact-name grant reaches whatever that name
//! resolves to (the operator named it); a wildcard grant reaches only global addresses,
//! unless an IP or CIDR entry names the address itself. So `*` can never be turned into a
//! way to the metadata service, the loopback API or the office network, by a guest or by
//! a DNS answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{AllowedHost, HostPattern, NetScheme, canonical};

/// The host part of a request, as the guest wrote it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// A DNS name (lowercase, no trailing dot).
    Name(&'a str),
    /// An IP literal.
    Ip(IpAddr),
}

/// What admitted a name: how far its addresses may reach, and the metrics label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameGrant {
    /// An exact-name entry matched: every address the name resolves to is allowed.
    pub(crate) exact: bool,
    /// The host as the metrics see it: the name for an exact entry, else the entry.
    pub(crate) label: String,
}

/// Step one for a name: which entry (if any) grants `name` on this scheme and port.
pub(crate) fn admit_name(
    allowed: &[AllowedHost],
    scheme: NetScheme,
    name: &str,
    port: u16,
) -> Result<NameGrant, String> {
    let candidates = || allowed.iter().filter(|e| e.scheme == scheme && e.host.matches_name(name));
    let mut grant: Option<NameGrant> = None;
    for entry in candidates().filter(|e| e.port.matches(port)) {
        if matches!(entry.host, HostPattern::Name(_)) {
            return Ok(NameGrant { exact: true, label: name.to_string() });
        }
        grant.get_or_insert(NameGrant { exact: false, label: entry.text.clone() });
    }
    grant.ok_or_else(|| match candidates().next() {
        Some(_) => format!("port {port} is not allowed for {name}"),
        None => format!("{name} is not in allowed_hosts"),
    })
}

/// Step two (and the whole check for an IP literal, with `via` `None`): may the connection
/// go to `ip`? `via` is the grant that admitted the name the address came from.
pub(crate) fn admit_address(
    allowed: &[AllowedHost],
    scheme: NetScheme,
    ip: IpAddr,
    port: u16,
    via: Option<&NameGrant>,
) -> Result<String, String> {
    if let Some(grant) = via.filter(|g| g.exact) {
        return Ok(grant.label.clone());
    }
    let entries = || allowed.iter().filter(|e| e.scheme == scheme);
    if let Some(entry) = entries().find(|e| e.port.matches(port) && e.host.names_ip(ip)) {
        return Ok(match entry.host {
            HostPattern::Ip(_) => canonical(ip).to_string(),
            _ => entry.text.clone(),
        });
    }
    let wildcard = match via {
        Some(grant) => Some(grant.label.clone()),
        None => entries()
            .find(|e| e.port.matches(port) && e.host == HostPattern::Any)
            .map(|e| e.text.clone()),
    };
    let named_on_another_port = entries().any(|e| e.host.names_ip(ip));
    match (wildcard, non_global(ip)) {
        (Some(label), None) => Ok(label),
        _ if named_on_another_port => Err(format!("port {port} is not allowed for {ip}")),
        (_, Some(class)) => Err(format!("{ip} is {class} and no entry names it")),
        (None, None) => Err(format!("{ip} is not in allowed_hosts")),
    }
}

/// `None` for a globally routable address; otherwise what it is, in words.
/// IPv4-mapped, NAT64 and 6to4 addresses are judged by the IPv4 address they carry.
pub(crate) fn non_global(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_global_v4(v4),
        IpAddr::V6(v6) => non_global_v6(v6),
    }
}

fn non_global_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local (the cloud metadata service lives here)",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "reserved (IETF protocol assignments)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "reserved for documentation",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "reserved for benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn non_global_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    Some(match segments {
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return non_global_v4(embedded_v4(hi, lo)),
        // 6to4 (2002::/16) embeds an IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => return non_global_v4(embedded_v4(hi, lo)),
        // IPv4-compatible (deprecated) ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, _, _] => "reserved (IPv4-compatible)",
        [s, ..] if s & 0xfe00 == 0xfc00 => "unique-local (private)",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local",
        [s, ..] if s & 0xffc0 == 0xfec0 => "site-local (private)",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "reserved for documentation",
        [0x100, 0, 0, 0, ..] => "reserved (discard)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<AllowedHost> {
        entries.iter().map(|e| e.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn non_global_addresses_are_named() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.5", "private"),
            ("172.31.255.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (the cloud metadata service lives here)"),
            ("100.64.0.1", "shared address space (CGNAT)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique-local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local (the cloud metadata service lives here)"),
            ("64:ff9b::a00:5", "private"),
            ("2002:a00:5::1", "private"),
        ] {
            assert_eq!(non_global(ip(addr)), Some(class), "{addr}");
        }
        for addr in
            ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]
        {
            assert_eq!(non_global(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn a_name_needs_a_name_entry_with_its_scheme_and_port() {
        let allowed =
            list(&["http://127.0.0.1:8080", "https://api.example.com", "http://*.svc.test:*"]);
        let http = NetScheme::Http;
        assert_eq!(
            admit_name(&allowed, http, "localhost", 8080).unwrap_err(),
            "localhost is not in allowed_hosts"
        );
        let grant = admit_name(&allowed, NetScheme::Https, "api.example.com", 443).unwrap();
        assert_eq!(grant, NameGrant { exact: true, label: "api.example.com".into() });
        assert_eq!(
            admit_name(&allowed, NetScheme::Https, "api.example.com", 8443).unwrap_err(),
            "port 8443 is not allowed for api.example.com"
        );
        assert!(admit_name(&allowed, http, "api.example.com", 443).is_err(), "scheme matters");
        let grant = admit_name(&allowed, http, "a.svc.test", 1234).unwrap();
        assert!(!grant.exact);
        assert_eq!(grant.label, "http://*.svc.test:*");
    }

    #[test]
    fn wildcards_never_reach_non_global_addresses() {
        let allowed = list(&["http://*:*", "https://*.example.com"]);
        let any = NetScheme::Http;
        assert_eq!(
            admit_address(&allowed, any, ip("10.0.0.5"), 80, None).unwrap_err(),
            "10.0.0.5 is private and no entry names it"
        );
        assert!(admit_address(&allowed, any, ip("169.254.169.254"), 80, None).is_err());
        assert!(admit_address(&allowed, any, ip("::ffff:127.0.0.1"), 80, None).is_err());
        assert!(admit_address(&allowed, any, ip("8.8.8.8"), 80, None).is_ok());
        let grant = admit_name(&allowed, NetScheme::Https, "evil.example.com", 443).unwrap();
        let rebound = admit_address(&allowed, NetScheme::Https, ip("127.0.0.1"), 443, Some(&grant));
        assert_eq!(rebound.unwrap_err(), "127.0.0.1 is loopback and no entry names it");
        let grant = admit_name(&allowed, any, "localhost", 80).unwrap();
        assert!(admit_address(&allowed, any, ip("127.0.0.1"), 80, Some(&grant)).is_err());
    }

    #[test]
    fn only_an_entry_naming_it_opens_a_non_global_address() {
        let allowed = list(&[
            "http://127.0.0.1:8080",
            "http://10.0.0.0/8:*",
            "http://db.internal:80",
            "http://*:*",
        ]);
        let http = NetScheme::Http;
        assert_eq!(
            admit_address(&allowed, http, ip("127.0.0.1"), 8080, None).unwrap(),
            "127.0.0.1"
        );
        assert_eq!(
            admit_address(&allowed, http, ip("127.0.0.1"), 8081, None).unwrap_err(),
            "port 8081 is not allowed for 127.0.0.1"
        );
        assert_eq!(
            admit_address(&allowed, http, ip("10.9.9.9"), 1, None).unwrap(),
            "http://10.0.0.0/8:*"
        );
        let exact = admit_name(&allowed, http, "db.internal", 80).unwrap();
        assert!(admit_address(&allowed, http, ip("192.168.7.7"), 80, Some(&exact)).is_ok());
        // A wildcard name whose address an IP or CIDR entry names is allowed through that entry.
        let wild = admit_name(&allowed, http, "cache.internal", 80).unwrap();
        assert!(admit_address(&allowed, http, ip("10.1.1.1"), 80, Some(&wild)).is_ok());
        assert!(admit_address(&allowed, http, ip("192.168.1.1"), 80, Some(&wild)).is_err());
    }

    #[test]
    fn no_entries_admit_nothing() {
        assert_eq!(
            admit_name(&[], NetScheme::Http, "example.com", 80).unwrap_err(),
            "example.com is not in allowed_hosts"
        );
        assert_eq!(
            admit_address(&[], NetScheme::Tcp, ip("8.8.8.8"), 53, None).unwrap_err(),
            "8.8.8.8 is not in allowed_hosts"
        );
    }
}

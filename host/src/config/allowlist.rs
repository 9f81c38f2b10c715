//! `[capabilities] allowed_hosts`: the outbound grant, parsed into typed entries (M5).
//!
//! An entry is `SCHEME://HOST[:PORT]`. SCHEME is `http` or `https` (requests through
//! `wasi:http`) or `tcp` (connections through `wasi:sockets`, port required). HOST is an
//! exact name, an IP literal (`[::1]` for IPv6), a CIDR (`10.0.0.0/8`, `[fd00::/8]`),
//! `*.example.com` (any subdomain, not the domain itself) or `*`. PORT defaults to 80/443
//! for http/https and may be `*`.
//!
//! Parsing only checks the shape; what an entry lets through (and the rule that wildcards
//! never reach a non-global address) is decided at request time by `runtime::net`. A
//! `tcp://*.domain` entry is refused here: a TCP connect names only an address, so the host
//! could not tell which name the guest looked up, and the entry would open every global
//! address on that port.

use std::fmt;
use std::net::IpAddr;

/// Which outbound path an entry opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetScheme {
    /// Plain HTTP through `wasi:http`.
    Http,
    /// HTTP over TLS through `wasi:http`.
    Https,
    /// A TCP connection through `wasi:sockets`.
    Tcp,
}

impl NetScheme {
    /// The scheme as written in an entry.
    pub fn as_str(self) -> &'static str {
        match self {
            NetScheme::Http => "http",
            NetScheme::Https => "https",
            NetScheme::Tcp => "tcp",
        }
    }
}

/// Which hosts an entry names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lowercase, no trailing dot).
    Name(String),
    /// Any name ending in `.SUFFIX` (stored without the leading `*.`).
    Subdomains(String),
    /// Any name or address (`*`).
    Any,
    /// Exactly this address.
    Ip(IpAddr),
    /// A network: addresses whose first `prefix` bits equal `network`'s.
    Cidr {
        /// The network address.
        network: IpAddr,
        /// Prefix length in bits.
        prefix: u8,
    },
}

impl HostPattern {
    /// Whether the entry is a wildcard (which never reaches non-global addresses).
    pub fn is_wildcard(&self) -> bool {
        matches!(self, HostPattern::Any | HostPattern::Subdomains(_))
    }

    /// Whether this pattern names `host` (a lowercase name without trailing dot).
    pub fn matches_name(&self, host: &str) -> bool {
        match self {
            HostPattern::Name(name) => name == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostPattern::Any => true,
            HostPattern::Ip(_) | HostPattern::Cidr { .. } => false,
        }
    }

    /// Whether this pattern names `ip` by address (an IP or CIDR entry).
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        match *self {
            HostPattern::Ip(own) => canonical(own) == canonical(ip),
            HostPattern::Cidr { network, prefix } => cidr_contains(network, prefix, ip),
            _ => false,
        }
    }
}

/// Which ports an entry opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortPattern {
    /// Only this port.
    Exact(u16),
    /// Every port (`:*`).
    Any,
}

impl PortPattern {
    /// Whether `port` is opened.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Exact(own) => own == port,
            PortPattern::Any => true,
        }
    }
}

/// One `allowed_hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    /// http, https or tcp.
    pub scheme: NetScheme,
    /// The hosts it names.
    pub host: HostPattern,
    /// The ports it opens.
    pub port: PortPattern,
    /// The entry as written (for messages and `validate`).
    pub text: String,
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for AllowedHost {
    type Err = String;

    /// Parses `SCHEME://HOST[:PORT]`; the error says what is wrong and shows the shape.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid allowed_hosts entry {text:?}: {why} \
                 (expected SCHEME://HOST[:PORT], e.g. \"https://api.example.com\" or \"tcp://10.0.0.5:5432\")"
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => NetScheme::Http,
            "https" => NetScheme::Https,
            "tcp" => NetScheme::Tcp,
            other => return Err(bad(&format!("unknown scheme {other:?}; use http, https or tcp"))),
        };
        // A lone trailing slash is what people paste from a browser; a path is not a host.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['?', '#', '@']) {
            return Err(bad("an entry names a host and port, not a URL with a query or user"));
        }
        let (host_text, port_text) = split_host_port(rest).map_err(|why| bad(&why))?;
        let host = parse_host(host_text).map_err(|why| bad(&why))?;
        let port = match (port_text, scheme) {
            (Some("*"), _) => PortPattern::Any,
            (Some(port), _) => PortPattern::Exact(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(&format!("port {port:?} is not 1-65535 or *")))?,
            ),
            (None, NetScheme::Http) => PortPattern::Exact(80),
            (None, NetScheme::Https) => PortPattern::Exact(443),
            (None, NetScheme::Tcp) => return Err(bad("a tcp entry needs a port (or :*)")),
        };
        if scheme == NetScheme::Tcp && matches!(host, HostPattern::Subdomains(_)) {
            return Err(bad(
                "tcp entries cannot use *.domain: a TCP connect carries only an address, so the \
                 host cannot tell which name was looked up; list exact names, an IP or CIDR, or *",
            ));
        }
        Ok(AllowedHost { scheme, host, port, text: text.to_string() })
    }
}

/// Splits `HOST[:PORT]`, where HOST may be `[v6]` or `[v6/len]` or contain a `/len`.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("unclosed [ in an IPv6 host")?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| format!("unexpected {after:?} after ]")),
        };
    }
    if rest.matches(':').count() > 1 {
        return Err("an IPv6 host must be written in brackets, e.g. [::1]:8080".into());
    }
    Ok(match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

fn parse_host(text: &str) -> Result<HostPattern, String> {
    if text.is_empty() {
        return Err("the host is empty".into());
    }
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some((ip, prefix)) = text.split_once('/') {
        let network: IpAddr = ip.parse().map_err(|_| {
            format!("{text:?} is not a host: an entry names a host and port, not a path")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("CIDR prefix {prefix:?} is not 0-{max}"))?;
        return Ok(HostPattern::Cidr { network, prefix });
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, text),
    };
    let name = normalize_name(name).ok_or_else(|| {
        format!(
            "{text:?} is not a host name, IP, CIDR, *.domain or * (a * only leads: *.example.com)"
        )
    })?;
    if !wildcard && name.split('.').all(|label| label.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("{text:?} is not a valid IP address"));
    }
    Ok(if wildcard { HostPattern::Subdomains(name) } else { HostPattern::Name(name) })
}

/// Lowercases a DNS name and drops one trailing dot; `None` when it is not a valid name.
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (!name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label)).then_some(name)
}

/// An IPv4-mapped IPv6 address compared as the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn cidr_contains(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let bits = |ip: IpAddr| -> (u128, u32) {
        match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    // An IPv4 network also covers the IPv4-mapped form of its addresses.
    let ip = if network.is_ipv4() { canonical(ip) } else { ip };
    let ((net, width), (addr, addr_width)) = (bits(network), bits(ip));
    if width != addr_width {
        return false;
    }
    let shift = width - u32::from(prefix);
    shift >= width || (net >> shift) == (addr >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AllowedHost, String> {
        text.parse()
    }

    #[test]
    fn entries_parse_into_scheme_host_and_port() {
        let e = parse("https://api.example.com").unwrap();
        assert_eq!(
            (e.scheme, e.host, e.port),
            (
                NetScheme::Https,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Exact(443)
            )
        );
        let e = parse("http://API.Example.com.:8080/").unwrap();
        assert_eq!(
            (e.host, e.port),
            (HostPattern::Name("api.example.com".into()), PortPattern::Exact(8080))
        );
        assert_eq!(parse("http://127.0.0.1").unwrap().port, PortPattern::Exact(80));
        assert_eq!(parse("http://*:*").unwrap().host, HostPattern::Any);
        assert_eq!(
            parse("https://*.example.com").unwrap().host,
            HostPattern::Subdomains("example.com".into())
        );
        assert_eq!(
            parse("tcp://[::1]:5432").unwrap().host,
            HostPattern::Ip("::1".parse().unwrap())
        );
        assert_eq!(
            parse("http://10.0.0.0/8:*").unwrap().host,
            HostPattern::Cidr { network: "10.0.0.0".parse().unwrap(), prefix: 8 }
        );
        assert_eq!(
            parse("tcp://[fd00::/8]:80").unwrap().host,
            HostPattern::Cidr { network: "fd00::".parse().unwrap(), prefix: 8 }
        );
    }

    #[test]
    fn bad_entries_say_why() {
        for (text, why) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "unknown scheme \"ftp\""),
            ("tcp://db.internal", "needs a port"),
            ("tcp://*.example.com:5432", "cannot use *.domain"),
            ("http://example.com:99999", "not 1-65535"),
            ("http://example.com:0", "not 1-65535"),
            ("http://example.com/api", "not a path"),
            ("http://ex ample.com", "not a host name"),
            ("http://a.*.com", "not a host name"),
            ("http://::1", "in brackets"),
            ("http://10.0.0.0/33", "CIDR prefix"),
            ("http://999.1.1.1", "not a valid IP"),
            ("http://user@example.com", "not a URL"),
            ("http://", "host is empty"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("expected SCHEME://HOST[:PORT]"), "{err}");
        }
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let sub = HostPattern::Subdomains("example.com".into());
        assert!(sub.matches_name("api.example.com"));
        assert!(sub.matches_name("a.b.example.com"));
        assert!(!sub.matches_name("example.com"));
        assert!(!sub.matches_name("badexample.com"));
        assert!(!sub.matches_name(".example.com"));
        assert!(HostPattern::Any.matches_name("anything.test"));
    }

    #[test]
    fn cidr_and_ip_entries_cover_their_mapped_forms() {
        let net = HostPattern::Cidr { network: "10.0.0.0".parse().unwrap(), prefix: 8 };
        assert!(net.names_ip("10.1.2.3".parse().unwrap()));
        assert!(net.names_ip("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.names_ip("11.0.0.1".parse().unwrap()));
        assert!(!net.names_ip("::1".parse().unwrap()));
        let all = HostPattern::Cidr { network: "0.0.0.0".parse().unwrap(), prefix: 0 };
        assert!(all.names_ip("192.168.1.1".parse().unwrap()));
        let ip = HostPattern::Ip("127.0.0.1".parse().unwrap());
        assert!(ip.names_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!ip.names_ip("127.0.0.2".parse().unwrap()));
    }
}

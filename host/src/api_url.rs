//! One form for the API's address (issue 15 point 7), shared by `serve --api` (where to
//! listen) and the control verbs' `--api` / `SANDCRON_API` (where to connect):
//! `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT`.
//!
//! The scheme is optional so that the address `serve` prints and the one an operator types
//! are interchangeable; when it is left out, the side that reads it decides (`serve`: TLS
//! when it has a certificate; a client: plain http). A path, query or user name is refused
//! rather than ignored: the API lives at the root, and a value that looks like it means
//! more than it does is a mistake worth hearing about at once.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// The forms accepted, for error messages and help.
pub const FORMS: &str = "HOST:PORT, http://HOST:PORT or https://HOST:PORT";

/// Plain HTTP or HTTP over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`.
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    /// The scheme's name in a URL.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An API address: an optional scheme, a host (name or IP literal) and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiUrl {
    /// `None` when given as `HOST:PORT`.
    scheme: Option<Scheme>,
    /// A name or an IP literal, IPv6 without its brackets.
    host: String,
    port: u16,
}

/// A value that is none of the accepted forms.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?} is not an API address ({why}); expected {FORMS}")]
pub struct ApiUrlError {
    text: String,
    why: &'static str,
}

impl ApiUrl {
    /// The scheme, if one was written.
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The URL a client sends requests to; `default` fills a missing scheme.
    pub fn base_url(&self, default: Scheme) -> String {
        let scheme = self.scheme.unwrap_or(default);
        format!("{}://{}", scheme.name(), self.authority())
    }

    /// `HOST:PORT`, with brackets around an IPv6 literal.
    pub fn authority(&self) -> String {
        match self.host.parse::<Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.host, self.port),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }

    /// The address to listen on: the IP literal itself, or the first address a name
    /// resolves to (`localhost` is 127.0.0.1 without asking the resolver).
    pub fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        if self.host.eq_ignore_ascii_case("localhost") {
            return Ok(SocketAddr::from(([127, 0, 0, 1], self.port)));
        }
        (self.host.as_str(), self.port).to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
        })
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Some(scheme) => write!(f, "{}://{}", scheme.name(), self.authority()),
            None => f.write_str(&self.authority()),
        }
    }
}

impl FromStr for ApiUrl {
    type Err = ApiUrlError;

    fn from_str(text: &str) -> Result<Self, ApiUrlError> {
        let fail = |why| ApiUrlError { text: text.to_string(), why };
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (Some(Scheme::Http), rest),
                "https" => (Some(Scheme::Https), rest),
                _ => return Err(fail("the scheme must be http or https")),
            },
            None => (None, text),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(fail("no path or query: the API is at the root"));
        }
        if authority.contains('@') {
            return Err(fail("no user name: pass the token with --token"));
        }
        let (host, port) = split_host_port(authority).map_err(fail)?;
        let port = match (port, scheme) {
            (Some(port), _) => port,
            (None, Some(scheme)) => scheme.default_port(),
            (None, None) => return Err(fail("no port")),
        };
        Ok(ApiUrl { scheme, host, port })
    }
}

/// `HOST[:PORT]` with `[v6]` brackets; the host is checked to be a name or an IP literal.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or("an unclosed [")?;
        inside.parse::<Ipv6Addr>().map_err(|_| "not an IPv6 address inside [ ]")?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("junk after ]")?),
        };
        (inside, port)
    } else if authority.matches(':').count() > 1 {
        return Err("an IPv6 address goes in brackets, e.g. [::1]:7070");
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !authority.starts_with('[') && !host.chars().all(name_char) {
        return Err("the host is not a name or an IP address");
    }
    let port = port
        .map(|port| port.parse::<u16>().map_err(|_| "the port is not a number from 0 to 65535"))
        .transpose()?;
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ApiUrl {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_three_forms_are_one_address() {
        let bare = parse("127.0.0.1:7077");
        assert_eq!(bare.scheme(), None);
        assert_eq!(bare.base_url(Scheme::Http), "http://127.0.0.1:7077");
        assert_eq!(bare.base_url(Scheme::Https), "https://127.0.0.1:7077");
        let http = parse("http://127.0.0.1:7077/");
        assert_eq!(http.base_url(Scheme::Https), "http://127.0.0.1:7077");
        assert_eq!(http.socket_addr().unwrap(), bare.socket_addr().unwrap());
        let https = parse("HTTPS://sandcron.internal:8443");
        assert_eq!(https.scheme(), Some(Scheme::Https));
        assert_eq!(https.to_string(), "https://sandcron.internal:8443");
        assert_eq!(parse("https://sandcron.internal").authority(), "sandcron.internal:443");
        assert_eq!(parse("[::1]:7070").base_url(Scheme::Http), "http://[::1]:7070");
        assert_eq!(parse("[::1]:7070").socket_addr().unwrap(), "[::1]:7070".parse().unwrap());
        assert_eq!(parse("localhost:0").socket_addr().unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(parse("0.0.0.0:7070").to_string(), "0.0.0.0:7070");
    }

    #[test]
    fn a_bad_value_says_which_forms_are_accepted() {
        for (text, why) in [
            ("127.0.0.1", "no port"),
            ("ftp://127.0.0.1:21", "scheme"),
            ("http://127.0.0.1:7070/api", "no path"),
            ("http://user:pw@127.0.0.1:7070", "no user name"),
            ("127.0.0.1:http", "port"),
            ("127.0.0.1:70700", "port"),
            ("::1:7070", "brackets"),
            ("[::1:7070", "unclosed"),
            ("[nope]:7070", "IPv6"),
            (":7070", "no host"),
            ("http://", "no host"),
            ("bad host:7070", "not a name"),
        ] {
            let err = text.parse::<ApiUrl>().expect_err(text).to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(FORMS), "{text}: {err}");
        }
    }
}

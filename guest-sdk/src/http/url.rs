//! The pure half of sending a request: splitting a URL into the parts `wasi:http` asks for,
//! and checking header names and values before any host call.
//!
//! `wasi:http` takes a request's scheme, authority and path-with-query separately, not a
//! URL, so the SDK must split it. A full URL parser (the `url` crate, with IDNA tables) would
//! outweigh the whole SDK in a component; jobs call APIs at URLs they were configured with,
//! so a strict split that refuses what it does not understand is enough. The host parses the
//! authority again (and refuses what its allowlist does not name), so nothing here is a
//! security boundary.

/// The URL scheme: `wasi:http` knows HTTP and HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// A URL split for `wasi:http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub scheme: Scheme,
    /// `host[:port]`, as written.
    pub authority: &'a str,
    /// Never empty: `/` when the URL has no path; the fragment is dropped (it is never sent).
    pub path_with_query: String,
}

/// Split `url` into scheme, authority and path-with-query; `Err` says what is wrong.
pub(crate) fn split(url: &str) -> Result<Target<'_>, &'static str> {
    if url.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err("the URL contains whitespace or control characters");
    }
    let (scheme, rest) = url.split_once("://").ok_or("the URL has no http:// or https://")?;
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        return Err("only http:// and https:// URLs are supported");
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    if authority.is_empty() {
        return Err("the URL has no host");
    }
    if authority.contains('@') {
        // wasi:http has no place for credentials in the authority, and a URL is shown in
        // errors and logs: a password there would leak.
        return Err("user:password@ in a URL is not supported; send an Authorization header");
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _fragment)| before);
    let path_with_query = match rest.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{rest}"),
        Some(_) => rest.to_owned(),
    };
    Ok(Target { scheme, authority, path_with_query })
}

/// Whether `name` is a valid header name (an RFC 9110 token).
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may be sent as a header value: no CR, LF or NUL, which would end the
/// header (or the request) early.
pub(crate) fn valid_header_value(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (Scheme, &str, String) {
        let target = split(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (target.scheme, target.authority, target.path_with_query)
    }

    #[test]
    fn splits_scheme_authority_and_path() {
        assert_eq!(
            ok("http://127.0.0.1:7070/healthz"),
            (Scheme::Http, "127.0.0.1:7070", "/healthz".into())
        );
        assert_eq!(ok("HTTPS://api.example.com"), (Scheme::Https, "api.example.com", "/".into()));
        assert_eq!(
            ok("https://[::1]:8443/a/b?x=1&y=2"),
            (Scheme::Https, "[::1]:8443", "/a/b?x=1&y=2".into())
        );
    }

    #[test]
    fn query_without_path_gets_a_slash_and_fragment_is_dropped() {
        assert_eq!(ok("http://h?q=1").2, "/?q=1");
        assert_eq!(ok("http://h#top").2, "/");
        assert_eq!(ok("http://h/p?q#frag").2, "/p?q");
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for (url, why) in [
            ("example.com/x", "no http://"),
            ("ftp://example.com/", "only http:// and https://"),
            ("http:///path", "no host"),
            ("http://user:pw@example.com/", "Authorization header"),
            ("http://example.com/a b", "whitespace"),
            (" http://example.com/", "whitespace"),
            ("http://example.com/\n", "control"),
        ] {
            let err = split(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(valid_header_name("x-api-key"));
        assert!(valid_header_name("Content-Type"));
        assert!(!valid_header_name(""));
        assert!(!valid_header_name("bad name"));
        assert!(!valid_header_name("colon:"));
    }

    #[test]
    fn header_values_cannot_end_the_header() {
        assert!(valid_header_value("Bearer abc.def"));
        assert!(valid_header_value(""));
        assert!(!valid_header_value("a\r\nx-injected: 1"));
        assert!(!valid_header_value("nul\0"));
    }
}

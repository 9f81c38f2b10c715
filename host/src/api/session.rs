//! The dashboard's session cookie (O6). Signing in with the token sets a cookie that lasts
//! [`SESSION_TTL`]; after that the browser drops it (`Max-Age`) and the host refuses it
//! even if it is kept or copied (hardening issue 14: the session never expired).
//!
//! The host keeps no session table: the cookie's value is `EXPIRY.TAG`, where EXPIRY is the
//! Unix second it ends and TAG the hex HMAC-SHA256 of it keyed by the token. Only a holder
//! of the token can make a tag, so the expiry cannot be moved; the token itself never sits
//! in the browser; a restart keeps sessions; and changing the token ends every session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};

/// The session cookie's name.
pub const COOKIE: &str = "sandcron_token";

/// How long a session lasts from sign-in: a working day, so a forgotten browser does not
/// stay signed in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the tag covers besides the expiry, so it can serve no other purpose.
const CONTEXT: &[u8] = b"sandcron dashboard session until ";

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn tag(token: &str, expiry: u64) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(CONTEXT);
    mac.update(expiry.to_string().as_bytes());
    mac
}

/// The cookie's value for a session that starts at `now`.
pub fn value(token: &str, now: SystemTime) -> String {
    let expiry = unix_seconds(now) + SESSION_TTL.as_secs();
    let tag = tag(token, expiry).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("{expiry}.{hex}")
}

/// The `Set-Cookie` header value that starts a session with `value`.
pub fn set_cookie(value: &str) -> String {
    let age = SESSION_TTL.as_secs();
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={age}")
}

/// Whether `value` is a session for `token` that has not ended at `now`.
pub fn is_valid(token: &str, value: &str, now: SystemTime) -> bool {
    let Some((expiry, hex)) = value.split_once('.') else { return false };
    // Digits only: `u64::from_str` would also take a `+`, giving one expiry two spellings.
    if expiry.is_empty() || expiry.len() > 19 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(expiry) = expiry.parse::<u64>() else { return false };
    let now = unix_seconds(now);
    if expiry <= now || expiry > now + SESSION_TTL.as_secs() {
        return false;
    }
    let Some(given) = decode_hex(hex) else { return false };
    tag(token, expiry).verify_slice(&given).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_its_ttl_and_no_longer() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let value = value("s3cret", start);
        assert!(value.starts_with("1800043200."), "{value}");
        assert!(is_valid("s3cret", &value, start));
        assert!(is_valid("s3cret", &value, start + SESSION_TTL - Duration::from_secs(1)));
        assert!(!is_valid("s3cret", &value, start + SESSION_TTL));
        assert!(!is_valid("other", &value, start), "another token's session");
    }

    #[test]
    fn a_moved_expiry_or_a_bent_tag_is_refused() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let value = value("s3cret", start);
        let (expiry, hex) = value.split_once('.').unwrap();
        let later = format!("{}.{hex}", expiry.parse::<u64>().unwrap() - 1);
        assert!(!is_valid("s3cret", &later, start));
        let plus = format!("+{expiry}.{hex}");
        assert!(!is_valid("s3cret", &plus, start));
        let mut bent = value.clone().into_bytes();
        let last = bent.len() - 1;
        bent[last] = if bent[last] == b'0' { b'1' } else { b'0' };
        assert!(!is_valid("s3cret", std::str::from_utf8(&bent).unwrap(), start));
        for junk in ["", ".", "1800043200", "1800043200.", "x.y", "1800043200.zz"] {
            assert!(!is_valid("s3cret", junk, start), "{junk:?}");
        }
    }

    #[test]
    fn the_cookie_says_how_long_it_lasts() {
        let header = set_cookie("v");
        assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"), "{header}");
        assert!(header.ends_with("Max-Age=43200"), "{header}");
    }
}

//! The sign-in throttle (O6): `POST /login` compares a guess with the token, and without a
//! limit a client could try 3,400 guesses a second (hardening issue 14, defect 9). Each
//! client address gets [`BURST`] attempts at once, then one more every [`REFILL`]; past
//! that the form answers 429 with `Retry-After`, before the guess is even compared, so a
//! right guess is no more visible than a wrong one.
//!
//! The limiter is governor's GCRA (one timestamp per address, no timer) keyed by address.
//! An IPv6 client is keyed by its /64, the block one host is usually given, so walking
//! through its own addresses buys nothing. Behind a reverse proxy every client shares the
//! proxy's address and its limit: sign-ins are rare, and the bearer token, which scripts
//! use, is not throttled.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// The address of the client at the other end of a request's connection (set by the
/// server).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// Sign-in attempts a client may make at once.
pub const BURST: u32 = 10;
/// After the burst, one more attempt per this long (30 a minute).
pub const REFILL: Duration = Duration::from_secs(2);
/// Above this many tracked addresses, those whose budget is full again are forgotten.
const TRACKED: usize = 10_000;

/// Sign-in attempts per client address.
pub struct LoginThrottle {
    limiter: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let burst = NonZeroU32::new(BURST).expect("BURST is not zero");
        let quota = Quota::with_period(REFILL).expect("REFILL is not zero").allow_burst(burst);
        LoginThrottle { limiter: RateLimiter::hashmap(quota) }
    }
}

impl LoginThrottle {
    /// Counts one attempt from `client`: `Err(wait)` when it has none left, with how long
    /// until the next.
    pub fn attempt(&self, client: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key(client))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

/// The key for an address: IPv4 (and IPv4-mapped IPv6) as is, other IPv6 by its /64.
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let [a, b, c, d, ..] = segments;
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_a_wait_per_address() {
        let throttle = LoginThrottle::default();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..BURST {
            assert_eq!(throttle.attempt(one), Ok(()));
        }
        let wait = throttle.attempt(one).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= REFILL, "{wait:?}");
        // Another address has its own budget.
        assert_eq!(throttle.attempt("10.0.0.2".parse().unwrap()), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_as_v4() {
        assert_eq!(
            key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            key("2001:db8:1:2::9".parse().unwrap())
        );
        assert_ne!(
            key("2001:db8:1:2::1".parse().unwrap()),
            key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}

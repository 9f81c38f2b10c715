//! Where `serve` gets the API's listening socket before the daemon starts: bound here from
//! `--api`, inherited from whoever started the host (`--api-fd N`: a supervisor or a test
//! harness that bound the port itself), or handed over by systemd socket activation
//! (`LISTEN_FDS`/`LISTEN_PID`). The daemon is handed the socket and never binds one, so a
//! parent that binds port 0 knows the port without reading the host's log.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};

use anyhow::{Context, bail};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const SYSTEMD_FIRST_FD: RawFd = 3;

/// Where the API's socket comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenFrom {
    /// Bind this address.
    Bind(SocketAddr),
    /// Take over this descriptor, already bound and listening (`--api-fd`).
    Inherited(RawFd),
    /// Take over the first socket systemd passed (socket activation).
    Systemd,
}

impl ListenFrom {
    /// `--api-fd` if given, else systemd's socket if this process was passed one, else
    /// `--api`'s address.
    pub fn choose(api_fd: Option<RawFd>, api: SocketAddr) -> ListenFrom {
        match api_fd {
            Some(fd) => ListenFrom::Inherited(fd),
            None if systemd_passed_sockets() > 0 => ListenFrom::Systemd,
            None => ListenFrom::Bind(api),
        }
    }

    /// The listening socket, non-blocking (as tokio wants it).
    ///
    /// # Errors
    /// A port that cannot be bound, or a descriptor that is not a listening TCP socket,
    /// named in the message.
    pub fn listener(self) -> anyhow::Result<TcpListener> {
        let listener = match self {
            ListenFrom::Bind(addr) => TcpListener::bind(addr)
                .with_context(|| format!("cannot serve the API on {addr}"))?,
            ListenFrom::Inherited(fd) => {
                adopt(fd).with_context(|| format!("--api-fd {fd}: cannot serve the API on it"))?
            }
            ListenFrom::Systemd => adopt(SYSTEMD_FIRST_FD)
                .context("LISTEN_FDS (systemd socket activation): cannot serve the API on fd 3")?,
        };
        listener.set_nonblocking(true).context("cannot make the API socket non-blocking")?;
        Ok(listener)
    }
}

/// How many sockets systemd passed to this very process (0 when LISTEN_PID names another:
/// the variables were inherited, not meant for us).
fn systemd_passed_sockets() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let count = std::env::var("LISTEN_FDS").ok().and_then(|n| n.trim().parse().ok());
    if for_us { count.unwrap_or(0) } else { 0 }
}

/// Takes ownership of `fd` once it is known to be an open, listening TCP socket; a
/// descriptor that is anything else (a file, a UDP or Unix socket, closed) is refused and
/// left as it was.
#[allow(unsafe_code)]
fn adopt(fd: RawFd) -> anyhow::Result<TcpListener> {
    if fd < 0 {
        bail!("not a file descriptor");
    }
    // SAFETY: fstat writes only the struct it is given, which outlives the call.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        bail!("not an open file descriptor ({})", std::io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        bail!("not a socket");
    }
    let int_option = |option| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, which outlives it.
        let read = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, option, (&raw mut value).cast(), &mut len)
        };
        (read == 0).then_some(value)
    };
    if int_option(libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        bail!("not a stream (TCP) socket");
    }
    let domain = int_option(libc::SO_DOMAIN);
    if domain != Some(libc::AF_INET) && domain != Some(libc::AF_INET6) {
        bail!("not an IPv4 or IPv6 socket");
    }
    if int_option(libc::SO_ACCEPTCONN) != Some(1) {
        bail!("the socket is not listening (bind and listen before starting the host)");
    }
    // SAFETY: `fd` is open and a listening TCP socket (checked above); the host owns it from
    // here on, as the process that passed it intended.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, IntoRawFd};

    use super::*;

    #[test]
    fn a_listening_socket_is_adopted_on_its_own_port() {
        let bound = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = bound.local_addr().unwrap().port();
        let adopted = ListenFrom::Inherited(bound.into_raw_fd()).listener().unwrap();
        assert_eq!(adopted.local_addr().unwrap().port(), port);
        let client = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(client.is_ok(), "the adopted socket accepts connections");
    }

    #[test]
    fn anything_but_a_listening_tcp_socket_is_refused_with_the_reason() {
        let reason = |fd| format!("{:#}", ListenFrom::Inherited(fd).listener().unwrap_err());
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(reason(file.as_raw_fd()).ends_with("not a socket"), "{}", reason(file.as_raw_fd()));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(reason(udp.as_raw_fd()).ends_with("not a stream (TCP) socket"));
        let idle = socket_not_listening();
        assert!(reason(idle).contains("not listening"), "{}", reason(idle));
        #[allow(unsafe_code)]
        // SAFETY: `idle` is this test's own descriptor, refused (so not owned) above.
        unsafe {
            libc::close(idle);
        }
        assert!(reason(1_000_000).contains("not an open file descriptor"));
        assert!(reason(-1).ends_with("not a file descriptor"));
    }

    /// A TCP socket that was never told to listen.
    #[allow(unsafe_code)]
    fn socket_not_listening() -> RawFd {
        // SAFETY: socket() has no memory arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        fd
    }

    #[test]
    fn systemd_variables_meant_for_another_process_are_ignored() {
        // LISTEN_PID is this test process's parent's business unless it names us; the test
        // harness never sets it, so nothing is passed.
        assert_eq!(systemd_passed_sockets(), 0);
        let api = "127.0.0.1:7070".parse().unwrap();
        assert_eq!(ListenFrom::choose(None, api), ListenFrom::Bind(api));
        assert_eq!(ListenFrom::choose(Some(5), api), ListenFrom::Inherited(5));
    }
}

//! Jump hosts (ssh_config `ProxyJump`, Fabric `env.gateway`).
//!
//! The jump host gets its own authenticated session, used by nothing else;
//! `transport` opens it as it opens any session and hands it over here. A
//! `direct-tcpip` channel on it reaches the target. A pump thread copies
//! bytes between that channel and one end of a socket pair; the target's
//! session runs over the other end as if it were a TCP socket. Chains
//! (`ProxyJump a,b`) nest: the session to `b` itself runs through `a`.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::resolve::Resolved;
use super::{codes, io, SshError, SshErrorKind};

const PUMP_BUF: usize = 256 * 1024;

/// What keeps a tunnel alive; owned by the target's connection.
#[derive(Debug)]
pub(crate) struct Tunnel {
    /// Descriptors held by the pump thread (jump socket, its end of the
    /// socket pair, and those of nested tunnels).
    fds: Vec<RawFd>,
    /// The pump thread. It ends by itself once the target's session closes
    /// its end of the socket pair, after saying goodbye to the jump host
    /// (which may take a few seconds when the jump host does not answer).
    /// Dropping the tunnel does not join it, so that closing a connection
    /// never waits for the jump host.
    _pump: JoinHandle<()>,
}

impl Tunnel {
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.fds.clone()
    }
}

/// Opens a channel from the jump host `jump`, over its authenticated
/// session (socket `jump_fd`, itself tunnelled through `inner` when the
/// jump host has jump hosts of its own), to `target.hostname:target.port`,
/// and starts the thread that pumps it. The target's session runs over
/// the returned socket.
pub(crate) fn open_tunnel(
    sess: ssh2::Session,
    jump_fd: RawFd,
    inner: Option<Tunnel>,
    jump: &Resolved,
    target: &Resolved,
    deadline: Instant,
) -> Result<(UnixStream, Tunnel), SshError> {
    sess.set_blocking(true);
    let left = deadline.saturating_duration_since(Instant::now());
    sess.set_timeout(left.as_millis().clamp(1, u128::from(u32::MAX)) as u32);
    let ch = sess
        .channel_direct_tcpip(&target.hostname, target.port, None)
        .map_err(|e| {
            let kind = if codes::is_timeout(&e) {
                SshErrorKind::Timeout
            } else {
                SshErrorKind::Connect
            };
            SshError::new(
                kind,
                format!(
                    "The jump host {} could not open a connection to {} port {}: {}",
                    jump.name(),
                    target.host_for_messages(),
                    target.port,
                    e.message()
                ),
            )
        })?;
    let (mine, theirs) = UnixStream::pair().map_err(|e| {
        SshError::new(
            SshErrorKind::Io,
            format!("Could not create a socket pair: {e}"),
        )
    })?;
    mine.set_nonblocking(true)
        .map_err(|e| SshError::new(SshErrorKind::Io, format!("Socket setup failed: {e}")))?;
    let mut fds = vec![jump_fd, mine.as_raw_fd()];
    if let Some(inner) = &inner {
        fds.extend(inner.fds());
    }
    let keepalive = jump.keepalive;
    if let Some(k) = keepalive {
        sess.set_keepalive(true, k.as_secs().max(1).min(u64::from(u32::MAX)) as u32);
    }
    let pump = std::thread::Builder::new()
        .name(format!("twill-jump-{}", jump.alias))
        .spawn(move || {
            pump(&sess, ch, mine, jump_fd, keepalive);
            sess.set_blocking(true);
            sess.set_timeout(1000);
            let _ = sess.disconnect(None, "tunnel closed", None);
            drop(sess);
            drop(inner);
        })
        .map_err(|e| SshError::new(SshErrorKind::Io, format!("Could not start a thread: {e}")))?;
    Ok((theirs, Tunnel { fds, _pump: pump }))
}

/// One direction of the tunnel: bytes read from one side that wait to be
/// written to the other.
struct Half {
    buf: Vec<u8>,
    off: usize,
    len: usize,
    eof: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0; PUMP_BUF],
            off: 0,
            len: 0,
            eof: false,
        }
    }

    fn empty(&self) -> bool {
        self.off == self.len
    }

    /// The source has ended and everything read from it is written.
    fn done(&self) -> bool {
        self.eof && self.empty()
    }

    /// Reads when the buffer is empty; `at_eof` tells whether a read of
    /// nothing means the source has ended. `Ok(true)` when bytes came in.
    fn fill<R: Read>(
        &mut self,
        from: &mut R,
        at_eof: impl FnOnce(&R) -> bool,
    ) -> std::io::Result<bool> {
        if !self.empty() || self.eof {
            return Ok(false);
        }
        match from.read(&mut self.buf) {
            Ok(0) => {
                self.eof = at_eof(from);
                Ok(false)
            }
            Ok(n) => {
                self.off = 0;
                self.len = n;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes what is buffered. `Ok(true)` when a write went through.
    fn drain<W: Write>(&mut self, to: &mut W) -> std::io::Result<bool> {
        if self.empty() {
            return Ok(false);
        }
        match to.write(&self.buf[self.off..self.len]) {
            Ok(n) => {
                self.off += n;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Copies bytes both ways until either side ends.
fn pump(
    sess: &ssh2::Session,
    mut ch: ssh2::Channel,
    mut local: UnixStream,
    jump_fd: RawFd,
    keepalive: Option<Duration>,
) {
    sess.set_blocking(false);
    // jump host -> local socket, and local socket -> jump host.
    let mut down = Half::new();
    let mut up = Half::new();
    while let Ok(down_progress) = down
        .fill(&mut ch, |c| c.eof())
        .and_then(|read| Ok(read | down.drain(&mut local)?))
    {
        if down.done() {
            break;
        }
        let Ok(up_progress) = up
            .fill(&mut local, |_| true)
            .and_then(|read| Ok(read | up.drain(&mut ch)?))
        else {
            break;
        };
        if up.done() {
            break;
        }
        if down_progress || up_progress || ch.read_window().available > 0 {
            continue;
        }
        let mut timeout_ms: libc::c_int = -1;
        if keepalive.is_some() {
            match sess.keepalive_send() {
                Ok(next) => timeout_ms = (next.max(1) as libc::c_int).saturating_mul(1000),
                Err(e) if codes::is_eagain(&e) => timeout_ms = 1000,
                Err(_) => break,
            }
        }
        let mut local_events: libc::c_short = 0;
        if up.empty() && !up.eof {
            local_events |= libc::POLLIN;
        }
        if !down.empty() {
            local_events |= libc::POLLOUT;
        }
        let mut fds = [
            libc::pollfd {
                fd: jump_fd,
                events: io::wanted_events(sess),
                revents: 0,
            },
            libc::pollfd {
                fd: local.as_raw_fd(),
                events: local_events,
                revents: 0,
            },
        ];
        io::quickack(jump_fd);
        if let Err(e) = crate::sys::poll(&mut fds, timeout_ms) {
            if e.kind() != ErrorKind::Interrupted {
                break;
            }
        }
    }
    // Best effort: tell the jump host the tunnel is done.
    for _ in 0..50 {
        match ch.close() {
            Err(e) if codes::is_eagain(&e) => {
                let _ = io::wait_fd(
                    jump_fd,
                    io::wanted_events(sess),
                    None,
                    Some(Duration::from_millis(20)),
                );
            }
            _ => break,
        }
    }
    let _ = local.shutdown(std::net::Shutdown::Both);
}

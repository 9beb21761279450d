//! Jump hosts (ssh_config `ProxyJump`, Fabric `env.gateway`).
//!
//! The jump host gets its own authenticated session, used by nothing else;
//! a `direct-tcpip` channel on it reaches the target. A pump thread copies
//! bytes between that channel and one end of a socket pair; the target's
//! session runs over the other end as if it were a TCP socket. Chains
//! (`ProxyJump a,b`) nest: the session to `b` itself runs through `a`.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::transport::{self, Resolved};
use super::{io, ConnectOptions, SshError, SshErrorKind};

const PUMP_BUF: usize = 256 * 1024;

/// What keeps a tunnel alive; owned by the target's connection.
#[derive(Debug)]
pub(crate) struct Tunnel {
    /// Descriptors held by the pump thread (jump socket, its end of the
    /// socket pair, and those of nested tunnels).
    fds: Vec<RawFd>,
}

impl Tunnel {
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.fds.clone()
    }
}

/// Connects to the last jump host of `r` (through the earlier ones) and
/// opens a channel from there to `r.hostname:r.port`.
pub(crate) fn open_tunnel(
    r: &Resolved,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<(UnixStream, Tunnel), SshError> {
    let (last, earlier) = r.jumps.split_last().expect("open_tunnel needs a jump host");
    let jr = transport::resolve_jump(last, earlier, opts)?;
    // One try: the connection to the target counts the attempts, and says
    // how many there were.
    let est = transport::establish_once(&jr, opts).map_err(|e| {
        if e.kind == SshErrorKind::Timeout {
            e
        } else {
            SshError::new(
                e.kind,
                format!(
                    "Could not connect to the jump host {}: {}",
                    jr.name(),
                    e.message
                ),
            )
        }
    })?;
    let sess = est.session;
    sess.set_blocking(true);
    let left = deadline.saturating_duration_since(Instant::now());
    sess.set_timeout(left.as_millis().clamp(1, u128::from(u32::MAX)) as u32);
    let ch = sess
        .channel_direct_tcpip(&r.hostname, r.port, None)
        .map_err(|e| {
            let kind = match e.code() {
                ssh2::ErrorCode::Session(-9) => SshErrorKind::Timeout,
                _ => SshErrorKind::Connect,
            };
            SshError::new(
                kind,
                format!(
                    "The jump host {} could not open a connection to {} port {}: {}",
                    jr.name(),
                    r.host_for_messages(),
                    r.port,
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
    let mut fds = vec![est.fd, mine.as_raw_fd()];
    if let Some(inner) = &est.tunnel {
        fds.extend(inner.fds());
    }
    let keepalive = jr.keepalive;
    if let Some(k) = keepalive {
        sess.set_keepalive(true, k.as_secs().max(1).min(u64::from(u32::MAX)) as u32);
    }
    let jump_fd = est.fd;
    let inner = est.tunnel;
    std::thread::Builder::new()
        .name(format!("twill-jump-{}", jr.alias))
        .spawn(move || {
            pump(&sess, ch, mine, jump_fd, keepalive);
            sess.set_blocking(true);
            sess.set_timeout(1000);
            let _ = sess.disconnect(None, "tunnel closed", None);
            drop(sess);
            drop(inner);
        })
        .map_err(|e| SshError::new(SshErrorKind::Io, format!("Could not start a thread: {e}")))?;
    Ok((theirs, Tunnel { fds }))
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
                Err(e) if matches!(e.code(), ssh2::ErrorCode::Session(-37)) => timeout_ms = 1000,
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
        // SAFETY: two valid pollfd structs.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if rc < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            break;
        }
    }
    // Best effort: tell the jump host the tunnel is done.
    for _ in 0..50 {
        match ch.close() {
            Err(e) if matches!(e.code(), ssh2::ErrorCode::Session(-37)) => {
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

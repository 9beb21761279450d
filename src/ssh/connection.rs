//! One authenticated connection: its session, the lock that lets one
//! operation at a time use it, and its life: in use, dead (with the reason
//! later errors give), or forgotten in a forked child.

use std::fmt;
use std::mem::ManuallyDrop;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::chan::RawSftp;
use super::resolve::Resolved;
use super::transport::Established;
use super::{codes, io, proxy, SshError, SshErrorKind};

/// Mutable per-connection state, guarded by the operation lock: one
/// operation at a time runs on a connection.
pub(crate) struct OpState {
    pub(super) sftp: Option<Arc<ssh2::Sftp>>,
    /// A second SFTP channel for the extensions (`posix-rename`, `statvfs`).
    pub(super) raw_sftp: Option<RawSftp>,
    /// The server refused the `sftp` subsystem: SFTP is not asked for
    /// again on this connection.
    pub(super) sftp_refused: bool,
    /// Last time bytes were seen arriving on the socket.
    pub(super) last_rx: Instant,
    pub(super) next_keepalive: Instant,
}

/// One authenticated SSH connection.
pub(crate) struct Connection {
    /// `user@host:port`, host as written (brackets around IPv6).
    pub(super) name: String,
    /// `user@host:port` with the host ssh_config resolves it to (`HostName`),
    /// as Fabric names connections.
    pub(super) resolved_name: String,
    pub(super) session: ManuallyDrop<ssh2::Session>,
    /// The socket libssh2 reads and writes (TCP, or the local end of a
    /// jump-host tunnel).
    pub(super) fd: RawFd,
    /// Other descriptors this connection keeps open (jump host sockets).
    pub(super) extra_fds: Vec<RawFd>,
    op: Mutex<OpState>,
    pub(super) dead: AtomicBool,
    /// Why the connection was given up, for later errors.
    dead_reason: Mutex<Option<String>>,
    /// Set in a forked child: never touch the session again.
    pub(super) forgotten: AtomicBool,
    owner_pid: u32,
    pub(super) keepalive: Option<Duration>,
    pub(super) keepalive_count: u32,
    /// How long a call may go without an answer when keepalives are off
    /// (SFTP, channel setup).
    pub(super) io_timeout: Duration,
    pub(super) tunnel: Option<proxy::Tunnel>,
    /// When an operation last started on it.
    pub(super) last_used: Mutex<Instant>,
    /// Called when the connection is marked dead, so that whoever holds it
    /// (the cache) lets go of it: the connection does not know the cache.
    on_dead: fn(&Connection),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .finish()
    }
}

impl Connection {
    /// A connection over the session `est` to the target `r`. `on_dead`
    /// is called when it is found dead.
    pub(super) fn new(r: &Resolved, est: Established, on_dead: fn(&Connection)) -> Connection {
        let io_timeout = r.connect_timeout.max(Duration::from_secs(60));
        if let Some(k) = r.keepalive {
            est.session
                .set_keepalive(true, k.as_secs().max(1).min(u64::from(u32::MAX)) as u32);
        }
        let extra_fds = est.tunnel.as_ref().map(|t| t.fds()).unwrap_or_default();
        let now = Instant::now();
        Connection {
            name: r.name(),
            resolved_name: r.resolved_name(),
            session: ManuallyDrop::new(est.session),
            fd: est.fd,
            extra_fds,
            op: Mutex::new(OpState {
                sftp: None,
                raw_sftp: None,
                sftp_refused: false,
                last_rx: now,
                next_keepalive: now + r.keepalive.unwrap_or(Duration::ZERO),
            }),
            dead: AtomicBool::new(false),
            dead_reason: Mutex::new(None),
            forgotten: AtomicBool::new(false),
            owner_pid: std::process::id(),
            keepalive: r.keepalive,
            keepalive_count: r.keepalive_count,
            io_timeout,
            tunnel: est.tunnel,
            last_used: Mutex::new(now),
            on_dead,
        }
    }

    /// `user@host:port`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn is_forgotten(&self) -> bool {
        self.forgotten.load(Ordering::SeqCst) || self.owner_pid != std::process::id()
    }

    /// Whether the connection still looks usable (not marked dead, socket
    /// not closed by the peer).
    pub(crate) fn is_alive(&self) -> bool {
        if self.is_forgotten() || self.dead.load(Ordering::SeqCst) {
            return false;
        }
        io::socket_open(self.fd)
    }

    pub(super) fn mark_dead(&self, why: &str) {
        {
            let mut reason = self.dead_reason.lock();
            if reason.is_none() {
                *reason = Some(why.to_string());
            }
        }
        self.dead.store(true, Ordering::SeqCst);
        (self.on_dead)(self);
    }

    /// Takes the operation lock after checking the connection can be used.
    pub(super) fn begin(&self) -> Result<parking_lot::MutexGuard<'_, OpState>, SshError> {
        if self.is_forgotten() {
            return Err(SshError::new(
                SshErrorKind::Disconnected,
                format!(
                    "The connection to {} belongs to another process and cannot be used here",
                    self.name
                ),
            ));
        }
        if self.dead.load(Ordering::SeqCst) {
            let why = self.dead_reason.lock().clone();
            return Err(self.lost(why.as_deref()));
        }
        let guard = self.op.lock();
        *self.last_used.lock() = Instant::now();
        Ok(guard)
    }

    /// A Disconnected error for this connection, marking it dead.
    pub(super) fn lost(&self, detail: Option<&str>) -> SshError {
        self.mark_dead(detail.unwrap_or("connection lost"));
        let msg = match detail {
            Some(d) if !d.is_empty() => format!("Connection to {} was lost ({d})", self.name),
            _ => format!("Connection to {} was lost", self.name),
        };
        SshError::new(SshErrorKind::Disconnected, msg)
    }

    /// Maps a libssh2 error from an operation on this connection; transport
    /// failures mark the connection dead.
    pub(super) fn map_err(&self, e: &ssh2::Error, what: &str) -> SshError {
        if codes::is_transport_error(e) {
            return self.lost(Some(&format!("{what}: {}", e.message())));
        }
        if codes::is_timeout(e) {
            // A blocking call ran out of time; libssh2 may be in the middle
            // of a packet, so the session cannot be trusted any more.
            self.mark_dead(&format!("timed out: {what}"));
            return SshError::new(
                SshErrorKind::Timeout,
                format!("Timed out on {} ({what})", self.name),
            );
        }
        SshError::new(
            SshErrorKind::Disconnected,
            format!("{what} on {} failed: {}", self.name, e.message()),
        )
    }
}

impl Connection {
    /// Says goodbye to the server and marks the connection dead, even while
    /// other handles to it exist. Waits for a running operation to end.
    pub(super) fn shutdown(&self) {
        if self.is_forgotten() || self.dead.load(Ordering::SeqCst) {
            return;
        }
        let mut st = self.op.lock();
        self.session.set_blocking(true);
        self.session.set_timeout(2000);
        st.raw_sftp = None;
        st.sftp = None;
        let _ = self.session.disconnect(None, "closed by twill", None);
        *self.dead_reason.lock() = Some("closed by disconnect_all".to_string());
        self.dead.store(true, Ordering::SeqCst);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.is_forgotten() {
            // Inherited from a parent process: leave the parent's session
            // untouched on the wire.
            let st = self.op.get_mut();
            if let Some(s) = st.sftp.take() {
                std::mem::forget(s);
            }
            if let Some(r) = st.raw_sftp.take() {
                std::mem::forget(r);
            }
            if let Some(t) = self.tunnel.take() {
                std::mem::forget(t);
            }
            return;
        }
        self.session.set_blocking(true);
        self.session.set_timeout(2000);
        let st = self.op.get_mut();
        if let Some(r) = st.raw_sftp.take() {
            drop(r);
        }
        st.sftp = None;
        if !self.dead.load(Ordering::SeqCst) {
            let _ = self.session.disconnect(None, "closed by twill", None);
        }
        // SAFETY: dropped exactly once, here.
        unsafe { ManuallyDrop::drop(&mut self.session) };
    }
}

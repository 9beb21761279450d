//! twill's SSH engine: connections, command execution and SFTP.
//!
//! This is the only module of twill that talks to libssh2 (through the
//! `ssh2` crate). The rest of the crate uses the small interface below:
//! [`connect`] returns a cached [`Connection`] per `user@host:port`, on
//! which [`Connection::exec`] runs a command and the SFTP methods move
//! files. Every socket gets `TCP_NODELAY`; every wait is a `poll(2)` with a
//! deadline, never a busy loop; a connection found dead is dropped from
//! the cache so the next [`connect`] opens a new one.
#![allow(dead_code)]

mod auth;
mod chan;
mod config;
mod exec;
mod hostkey;
mod io;
mod proxy;
mod sftp;
mod transport;
mod wait;

use std::collections::HashMap;
use std::fmt;
use std::mem::ManuallyDrop;
use std::os::unix::io::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

#[allow(unused_imports)]
pub(crate) use exec::{ExecOptions, ExitStatus, OnOutput, Reply, Stream};
#[allow(unused_imports)]
pub(crate) use sftp::RemoteStat;

/// A host to connect to, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name, ssh_config alias, IPv4 address or IPv6 literal (brackets
    /// optional).
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
}

impl Target {
    /// Parses a Fabric host string: `[user@]host[:port]`, IPv6 as
    /// `[::1]:22`, a bare IPv6 literal, or `ssh://[user@]host[:port]`.
    /// A port that is not a number from 1 to 65535 is not reported here
    /// (see [`Target::try_parse`]).
    pub(crate) fn parse(s: &str) -> Target {
        Target::parse_noting_port(s).0
    }

    /// [`Target::parse`], with a port that is empty, not a number or out
    /// of range reported as an error of kind `Config` naming the host
    /// string.
    pub(crate) fn try_parse(s: &str) -> Result<Target, SshError> {
        match Target::parse_noting_port(s) {
            (target, None) => Ok(target),
            (_, Some(why)) => Err(SshError::new(
                SshErrorKind::Config,
                format!("Invalid port in host string '{}': {why}", s.trim()),
            )),
        }
    }

    /// The target, and why the port is not one if it is not.
    fn parse_noting_port(s: &str) -> (Target, Option<String>) {
        let s = s.trim();
        let s = s.strip_prefix("ssh://").unwrap_or(s);
        let (user, rest) = match s.rfind('@') {
            Some(i) => (Some(s[..i].to_string()), &s[i + 1..]),
            None => (None, s),
        };
        let mut bad_port = None;
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            match inner.find(']') {
                Some(end) => {
                    let host = &inner[..end];
                    let text = inner[end + 1..].strip_prefix(':');
                    bad_port = text.and_then(port_problem);
                    (host.to_string(), text.and_then(|p| p.parse().ok()))
                }
                None => (rest.to_string(), None),
            }
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
            bad_port = port_problem(p);
            match p.parse() {
                Ok(port) => (h.to_string(), Some(port)),
                Err(_) => (rest.to_string(), None),
            }
        } else {
            (rest.to_string(), None)
        };
        let target = Target {
            host,
            port,
            user: user.filter(|u| !u.is_empty()),
        };
        (target, bad_port)
    }
}

/// Why `text`, written after a host's colon, is not a port, if it is not.
fn port_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        Some("the port is empty".into())
    } else if !text.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("'{text}' is not a number"))
    } else if matches!(text.parse::<u32>(), Ok(1..=65535)) {
        None
    } else {
        Some(format!("{text} is out of range (ports are 1 to 65535)"))
    }
}

/// What to do with a host key that is not in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum HostKeyPolicy {
    /// Refuse unknown and changed keys.
    #[default]
    Strict,
    /// Record unknown keys in known_hosts; a changed key is still refused.
    AcceptNew,
}

/// How to connect and authenticate.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub(crate) key_filenames: Vec<PathBuf>,
    pub(crate) key_passphrase: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) use_agent: bool,
    /// Try `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub(crate) look_for_keys: bool,
    /// `None`: ssh_config `UserKnownHostsFile`, else `~/.ssh/known_hosts`.
    pub(crate) known_hosts: Option<PathBuf>,
    /// ssh_config `StrictHostKeyChecking accept-new` (or `no`) also selects
    /// [`HostKeyPolicy::AcceptNew`].
    pub(crate) host_key_policy: HostKeyPolicy,
    /// Per attempt, covering TCP connect, SSH handshake and authentication.
    /// ssh_config `ConnectTimeout` is used when this is left at the default.
    pub(crate) connect_timeout: Duration,
    pub(crate) connection_attempts: u32,
    /// Keepalive interval; `None` falls back to ssh_config
    /// `ServerAliveInterval`, then to [`DEFAULT_KEEPALIVE`]; zero turns
    /// keepalives off.
    pub(crate) keepalive: Option<Duration>,
    /// How many keepalive intervals a server may stay silent before the
    /// connection is given up; `None` falls back to ssh_config
    /// `ServerAliveCountMax`, then to [`DEFAULT_KEEPALIVE_COUNT`].
    pub(crate) keepalive_count: Option<u32>,
    pub(crate) use_ssh_config: bool,
    pub(crate) ssh_config_path: Option<PathBuf>,
    /// One jump host, `[user@]host[:port]` (Fabric `env.gateway`); beats
    /// ssh_config `ProxyJump`.
    pub(crate) gateway: Option<String>,
    pub(crate) default_user: String,
}

pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keepalive interval when neither the settings nor ssh_config give one:
/// the `ServerAliveInterval 15` that OpenSSH users commonly set.
pub(crate) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// OpenSSH's default `ServerAliveCountMax`: with [`DEFAULT_KEEPALIVE`], a
/// server silent for 45 seconds is gone.
pub(crate) const DEFAULT_KEEPALIVE_COUNT: u32 = 3;

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            key_filenames: Vec::new(),
            key_passphrase: None,
            password: None,
            use_agent: true,
            look_for_keys: true,
            known_hosts: None,
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connection_attempts: 1,
            keepalive: None,
            keepalive_count: None,
            use_ssh_config: true,
            ssh_config_path: None,
            gateway: None,
            default_user: crate::sys::local_user(),
        }
    }
}

/// Kinds of [`SshError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SshErrorKind {
    /// Name lookup failed.
    Resolve,
    /// Connection refused or host unreachable.
    Connect,
    /// Connect or command timeout.
    Timeout,
    Auth,
    /// Authentication failed and a key file meant for it could not be used.
    KeyFile,
    HostKeyUnknown,
    HostKeyChanged,
    /// The connection was lost during an operation.
    Disconnected,
    /// An SFTP operation failed; the message names the remote path.
    Sftp,
    /// A local I/O error (reading the upload source, writing the download
    /// destination, known_hosts).
    Io,
    /// Invalid ssh_config or options.
    Config,
    /// The command was stopped by [`interrupt_all`].
    Interrupted,
}

/// An error of the SSH engine; `message` is a full sentence naming the
/// host (and the remote path for SFTP).
#[derive(Debug, Clone)]
pub(crate) struct SshError {
    pub(crate) kind: SshErrorKind,
    pub(crate) message: String,
}

impl SshError {
    pub(crate) fn new(kind: SshErrorKind, message: impl Into<String>) -> SshError {
        SshError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SshError {}

/// Mutable per-connection state, guarded by the operation lock: one
/// operation at a time runs on a connection.
struct OpState {
    sftp: Option<Arc<ssh2::Sftp>>,
    /// A second SFTP channel for the extensions (`posix-rename`, `statvfs`).
    raw_sftp: Option<sftp::RawSftp>,
    /// Last time bytes were seen arriving on the socket.
    last_rx: Instant,
    next_keepalive: Instant,
}

/// One authenticated SSH connection.
pub(crate) struct Connection {
    /// `user@host:port`, host as written (brackets around IPv6).
    name: String,
    /// Fabric's form: default user and port 22 left out.
    display: String,
    session: ManuallyDrop<ssh2::Session>,
    /// The socket libssh2 reads and writes (TCP, or the local end of a
    /// jump-host tunnel).
    fd: RawFd,
    /// Other descriptors this connection keeps open (jump host sockets).
    extra_fds: Vec<RawFd>,
    op: Mutex<OpState>,
    dead: AtomicBool,
    /// Why the connection was given up, for later errors.
    dead_reason: Mutex<Option<String>>,
    /// Set in a forked child: never touch the session again.
    forgotten: AtomicBool,
    owner_pid: u32,
    keepalive: Option<Duration>,
    keepalive_count: u32,
    /// How long a call may go without an answer when keepalives are off
    /// (SFTP, channel setup).
    io_timeout: Duration,
    tunnel: Option<proxy::Tunnel>,
    /// When an operation last started on it.
    last_used: Mutex<Instant>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .finish()
    }
}

impl Connection {
    /// `user@host:port`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The host string Fabric would print: default user and port 22 left
    /// out.
    pub(crate) fn display_name(&self) -> &str {
        &self.display
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

    fn mark_dead(&self, why: &str) {
        {
            let mut reason = self.dead_reason.lock();
            if reason.is_none() {
                *reason = Some(why.to_string());
            }
        }
        self.dead.store(true, Ordering::SeqCst);
        remove_from_cache(self);
    }

    /// Takes the operation lock after checking the connection can be used.
    fn begin(&self) -> Result<parking_lot::MutexGuard<'_, OpState>, SshError> {
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
    fn lost(&self, detail: Option<&str>) -> SshError {
        self.mark_dead(detail.unwrap_or("connection lost"));
        let msg = match detail {
            Some(d) if !d.is_empty() => format!("Connection to {} was lost ({d})", self.name),
            _ => format!("Connection to {} was lost", self.name),
        };
        SshError::new(SshErrorKind::Disconnected, msg)
    }

    /// Maps a libssh2 error from an operation on this connection; transport
    /// failures mark the connection dead.
    fn map_err(&self, e: &ssh2::Error, what: &str) -> SshError {
        if transport::is_transport_error(e) {
            return self.lost(Some(&format!("{what}: {}", e.message())));
        }
        if let ssh2::ErrorCode::Session(-9) = e.code() {
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
    fn shutdown(&self) {
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

// ---------------------------------------------------------------------------
// Connection cache

struct Cache {
    map: HashMap<String, Arc<Connection>>,
}

static CACHE: Lazy<Mutex<Cache>> = Lazy::new(|| {
    Mutex::new(Cache {
        map: HashMap::new(),
    })
});

fn remove_from_cache(conn: &Connection) {
    if let Some(mut cache) = CACHE.try_lock_for(Duration::from_millis(200)) {
        let same = cache
            .map
            .get(&conn.name)
            .map(|c| std::ptr::eq(Arc::as_ptr(c), conn))
            .unwrap_or(false);
        if same {
            cache.map.remove(&conn.name);
        }
    }
}

/// Returns the cached connection for `target`, opening (and caching) one
/// when there is none or the cached one is dead.
pub(crate) fn connect(target: &Target, opts: &ConnectOptions) -> Result<Arc<Connection>, SshError> {
    let resolved = transport::resolve(target, opts)?;
    let key = resolved.name();
    {
        let mut cache = CACHE.lock();
        if let Some(conn) = cache.map.get(&key) {
            if conn.is_alive() {
                return Ok(Arc::clone(conn));
            }
            cache.map.remove(&key);
        }
    }
    crate::sys::raise_descriptor_limit();
    make_room();
    let conn = Arc::new(transport::open(&resolved, opts)?);
    let mut cache = CACHE.lock();
    if let Some(existing) = cache.map.get(&key) {
        if existing.is_alive() {
            // Another thread won the race; use its connection.
            return Ok(Arc::clone(existing));
        }
    }
    cache.map.insert(key, Arc::clone(&conn));
    Ok(conn)
}

/// Before a new connection: closes the idle connections used least
/// recently while the cached ones hold more descriptors than the process
/// can spare, so that a run over many hosts never runs out of them. A
/// connection in use by an operation is never closed.
fn make_room() {
    let budget = crate::sys::descriptor_budget();
    let fds = |c: &Connection| 1 + c.extra_fds.len();
    loop {
        let victim = {
            let mut cache = CACHE.lock();
            let held = |m: &HashMap<String, Arc<Connection>>| -> usize {
                m.values().map(|c| fds(c)).sum()
            };
            if held(&cache.map) + 3 <= budget {
                return;
            }
            // Dead connections go first, then idle ones.
            cache
                .map
                .retain(|_, c| c.is_alive() || Arc::strong_count(c) > 1);
            if held(&cache.map) + 3 <= budget {
                return;
            }
            let idle = cache
                .map
                .iter()
                .filter(|(_, c)| Arc::strong_count(c) == 1)
                .min_by_key(|(_, c)| *c.last_used.lock())
                .map(|(k, _)| k.clone());
            match idle.and_then(|k| cache.map.remove(&k)) {
                Some(c) => c,
                None => return,
            }
        };
        victim.shutdown();
    }
}

/// Closes every cached connection and returns their `user@host:port`
/// names, sorted.
pub(crate) fn disconnect_all() -> Vec<String> {
    let conns: Vec<Arc<Connection>> = {
        let mut cache = CACHE.lock();
        cache.map.drain().map(|(_, c)| c).collect()
    };
    let mut names: Vec<String> = conns.iter().map(|c| c.name.clone()).collect();
    names.sort();
    for c in &conns {
        c.shutdown();
    }
    drop(conns);
    names
}

/// For a process created by `fork()`: drops every cached connection
/// without sending anything on the inherited sockets, and closes this
/// process's copies of their descriptors. The parent's sessions are not
/// affected. Connections still referenced elsewhere refuse further use.
/// The child gets an interrupt of its own, lowered.
pub(crate) fn forget_all_after_fork() {
    // In the child only the calling thread exists; a lock held by another
    // thread of the parent at fork time would never be released.
    let mut cache = match CACHE.try_lock() {
        Some(c) => c,
        None => {
            // SAFETY: no other thread exists in this process to own it.
            unsafe { CACHE.force_unlock() };
            CACHE.lock()
        }
    };
    for (_, conn) in cache.map.drain() {
        conn.forgotten.store(true, Ordering::SeqCst);
        // SAFETY: these descriptors belong to the forgotten sessions, which
        // are never used again in this process.
        unsafe {
            libc::close(conn.fd);
            for fd in &conn.extra_fds {
                libc::close(*fd);
            }
        }
        std::mem::forget(conn);
    }
    drop(cache);
    io::reset_interrupt_after_fork();
}

/// Raises the process-wide interrupt: commands running on any connection
/// are stopped (SIGINT, then SIGKILL) and their `exec` returns
/// [`SshErrorKind::Interrupted`]; transfers end after the call in progress,
/// removing their unfinished file. Every later operation fails the same
/// way until [`clear_interrupt`]. Safe to call from any thread, e.g. a
/// Ctrl-C handler.
pub(crate) fn interrupt_all() {
    io::raise_interrupt();
}

/// Lowers the process-wide interrupt, so that operations run again.
pub(crate) fn clear_interrupt() {
    io::clear_interrupt();
}

/// Names (`user@host:port`) of the cached connections.
pub(crate) fn cached_names() -> Vec<String> {
    let cache = CACHE.lock();
    let mut v: Vec<String> = cache.map.keys().cloned().collect();
    v.sort();
    v
}

//! twill's SSH engine: connections, command execution and SFTP.
//!
//! This is the only module of twill that talks to libssh2 (through the
//! `ssh2` crate). The rest of the crate uses the small interface below:
//! [`connect`] returns a cached [`Connection`] per `user@host:port`, on
//! which [`Connection::exec`] runs a command and the SFTP methods move
//! files (the SCP ones single files, where the server has no SFTP
//! subsystem); [`reconnect`] replaces a cached connection with a new one, and
//! [`client_args`] says what an OpenSSH client needs to connect the same
//! way. Every socket gets `TCP_NODELAY`; every wait is a `poll(2)` with a
//! deadline, never a busy loop; a connection found dead is dropped from
//! the cache so the next [`connect`] opens a new one.
//!
//! The engine is a layer beneath the rest of twill: it imports nothing of
//! twill but `crate::sys`, and reports facts (an [`SshError`] with its
//! kind, message and, for a changed host key, the entry to remove) that
//! the caller turns into twill's errors and shell text. Inside, every
//! import points down, from the cache to the files that know libssh2:
//!
//! - `cache`: the connections by name, and the switches over all of them;
//! - `exec`, `sftp`, `scp`: operations on a [`Connection`], waiting in
//!   `wait`;
//! - `connection`: one connection and its life;
//! - `transport`: opening a session, through `proxy` for jump hosts, with
//!   `auth` and `hostkey`; `resolve` applies `config` (ssh_config) to a
//!   [`Target`];
//! - `chan`, `io`, `codes`: libssh2 handles the `ssh2` crate does not
//!   wrap, `poll(2)` and the interrupt, and libssh2's error codes by name.
//!
//! This file holds the types every layer shares: [`Target`], the options
//! and [`SshError`].

mod auth;
mod cache;
mod chan;
mod codes;
mod config;
mod connection;
mod exec;
mod hostkey;
mod io;
mod proxy;
mod resolve;
mod scp;
mod sftp;
mod transport;
mod wait;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use cache::{
    clear_interrupt, connect, disconnect_all, forget_all_after_fork, interrupt_all, reconnect,
};
pub(crate) use connection::Connection;
pub(crate) use exec::{Exchange, ExecOptions, Input, Reply, Stream};
pub(crate) use resolve::{client_args, ClientArgs};

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

/// Facts about a remote file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteStat {
    pub(crate) is_dir: bool,
    pub(crate) is_file: bool,
    pub(crate) is_symlink: bool,
    /// Permission bits (`0o7777` part of st_mode).
    pub(crate) mode: u32,
    pub(crate) size: u64,
}

/// Where a download's bytes go: a writer, told the size the remote file
/// states before its bytes come (so that the caller can say how far along
/// it is).
pub(crate) trait Destination: std::io::Write {
    /// The remote file is a regular file of `size` bytes.
    fn expect(&mut self, size: u64) {
        let _ = size;
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
    /// Host keys the user has accepted (the name known_hosts knows the
    /// host by, and the key): each recorded when it is not known yet, as
    /// accept-new would, for that host and that key only.
    pub(crate) accept_keys: Vec<(String, Vec<u8>)>,
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
            accept_keys: Vec::new(),
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
    /// The server refuses the SFTP subsystem, so that an operation only
    /// SFTP offers cannot be done (see [`Connection::has_sftp`]).
    NoSftp,
    /// An SCP transfer failed; the message names the remote path.
    Scp,
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
    /// `(name, file)`: the fix is to remove the entry of host `name` from
    /// the known_hosts file `file`. `message` then ends by announcing a
    /// command, which the caller appends: the engine makes no shell text.
    pub(crate) forget: Option<(String, PathBuf)>,
    /// For [`SshErrorKind::HostKeyUnknown`] when a question may accept
    /// it: the key and where it would be recorded.
    pub(crate) unknown_key: Option<Box<UnknownHostKey>>,
}

/// A host key that known_hosts does not know, as OpenSSH shows it when it
/// asks whether to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownHostKey {
    /// The name known_hosts knows the host by: `host`, or `[host]:port`.
    pub(crate) name: String,
    /// The key's algorithm, as in known_hosts (`ssh-ed25519`).
    pub(crate) key_type: String,
    /// OpenSSH's fingerprint (`SHA256:...`).
    pub(crate) fingerprint: String,
    /// The key itself (its SSH blob).
    pub(crate) key: Vec<u8>,
    /// The known_hosts file it would be recorded in.
    pub(crate) known_hosts: PathBuf,
}

impl SshError {
    pub(crate) fn new(kind: SshErrorKind, message: impl Into<String>) -> SshError {
        SshError {
            kind,
            message: message.into(),
            forget: None,
            unknown_key: None,
        }
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SshError {}

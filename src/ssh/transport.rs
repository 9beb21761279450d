//! Opening a connection: target resolution (ssh_config), TCP connect with a
//! real timeout, handshake, host key check, authentication, retries.

use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::config::{self, HostConfig};
use super::{
    auth, hostkey, io, proxy, ConnectOptions, Connection, HostKeyPolicy, OpState, SshError,
    SshErrorKind, Target, DEFAULT_CONNECT_TIMEOUT,
};

/// A target with ssh_config and options applied.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The host as written (alias), without brackets.
    pub(crate) alias: String,
    /// The name or address actually connected to.
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_files: Vec<PathBuf>,
    pub(crate) identities_only: bool,
    pub(crate) known_hosts: PathBuf,
    pub(crate) policy: HostKeyPolicy,
    pub(crate) connect_timeout: Duration,
    /// `None` when keepalives are off.
    pub(crate) keepalive: Option<Duration>,
    pub(crate) keepalive_count: u32,
    /// Jump hosts, outermost first.
    pub(crate) jumps: Vec<Target>,
    /// ssh_config `Ciphers` and `MACs`; `None` for twill's preference.
    pub(crate) ciphers: Option<Vec<String>>,
    pub(crate) macs: Option<Vec<String>>,
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl Resolved {
    /// Cache key and [`Connection::name`]: `user@host:port`.
    pub(crate) fn name(&self) -> String {
        format!("{}@{}:{}", self.user, bracket(&self.alias), self.port)
    }

    /// Fabric's display form: default user and port 22 left out.
    pub(crate) fn display(&self, default_user: &str) -> String {
        let mut s = String::new();
        if self.user != default_user {
            s.push_str(&self.user);
            s.push('@');
        }
        if self.port != 22 {
            s.push_str(&bracket(&self.alias));
            s.push(':');
            s.push_str(&self.port.to_string());
        } else {
            s.push_str(&self.alias);
        }
        s
    }

    /// How error messages name the host: as written, plus the real
    /// address when ssh_config maps it elsewhere.
    pub(crate) fn host_for_messages(&self) -> String {
        if self.hostname != self.alias {
            format!("{} ({})", self.alias, self.hostname)
        } else {
            self.alias.clone()
        }
    }
}

/// Applies ssh_config and options to a target.
pub(crate) fn resolve(target: &Target, opts: &ConnectOptions) -> Result<Resolved, SshError> {
    resolve_with(target, opts, true)
}

fn resolve_with(
    target: &Target,
    opts: &ConnectOptions,
    allow_jumps: bool,
) -> Result<Resolved, SshError> {
    let alias = target
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&target.host)
        .to_string();
    if alias.is_empty() {
        return Err(SshError::new(SshErrorKind::Config, "Empty host name"));
    }
    let hc = if opts.use_ssh_config {
        config::lookup(opts.ssh_config_path.as_deref(), &alias)?
    } else {
        HostConfig::default()
    };
    let mut identity_files: Vec<PathBuf> = Vec::new();
    for f in opts.key_filenames.iter().chain(hc.identity_files.iter()) {
        let f = config::expand_tilde(f);
        if !identity_files.contains(&f) {
            identity_files.push(f);
        }
    }
    let known_hosts = opts
        .known_hosts
        .as_deref()
        .map(config::expand_tilde)
        .or(hc.user_known_hosts_file.clone())
        .or_else(|| config::home_dir().map(|h| h.join(".ssh").join("known_hosts")))
        .unwrap_or_else(|| PathBuf::from(".ssh/known_hosts"));
    let policy = match hc.strict_host_key_checking.as_deref() {
        Some("accept-new") | Some("no") | Some("off") => HostKeyPolicy::AcceptNew,
        _ => opts.host_key_policy,
    };
    let connect_timeout = if opts.connect_timeout == DEFAULT_CONNECT_TIMEOUT {
        hc.connect_timeout
            .filter(|d| !d.is_zero())
            .unwrap_or(opts.connect_timeout)
    } else {
        opts.connect_timeout
    };
    let jumps = if !allow_jumps {
        Vec::new()
    } else if let Some(gw) = opts.gateway.as_deref().filter(|g| !g.trim().is_empty()) {
        vec![Target::try_parse(gw)?]
    } else {
        hc.proxy_jump
            .iter()
            .map(|j| Target::try_parse(j))
            .collect::<Result<_, _>>()?
    };
    Ok(Resolved {
        hostname: hc.hostname.clone().unwrap_or_else(|| alias.clone()),
        port: target.port.or(hc.port).unwrap_or(22),
        user: target
            .user
            .clone()
            .or(hc.user.clone())
            .unwrap_or_else(|| opts.default_user.clone()),
        alias,
        identity_files,
        identities_only: hc.identities_only.unwrap_or(false),
        known_hosts,
        policy,
        connect_timeout,
        keepalive: Some(
            opts.keepalive
                .or(hc.server_alive_interval)
                .unwrap_or(super::DEFAULT_KEEPALIVE),
        )
        .filter(|k| !k.is_zero()),
        keepalive_count: opts
            .keepalive_count
            .or(hc.server_alive_count_max)
            .unwrap_or(super::DEFAULT_KEEPALIVE_COUNT)
            .max(1),
        jumps,
        ciphers: hc.ciphers.clone(),
        macs: hc.macs.clone(),
    })
}

/// Resolution of a jump host: its own ssh_config entry applies, but not
/// its ProxyJump (the chain is given by the target).
pub(crate) fn resolve_jump(
    jump: &Target,
    earlier: &[Target],
    opts: &ConnectOptions,
) -> Result<Resolved, SshError> {
    let mut r = resolve_with(jump, opts, false)?;
    r.jumps = earlier.to_vec();
    Ok(r)
}

/// libssh2 errors that mean the transport is gone.
pub(crate) fn is_transport_error(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(
            -1 | -2 | -3 | -4 | -5 | -7 | -8 | -12 | -13 | -14 | -30 | -43 | -44 | -45
        )
    )
}

/// An established, authenticated session and what keeps it running.
pub(crate) struct Established {
    pub(crate) session: ssh2::Session,
    pub(crate) fd: RawFd,
    pub(crate) tunnel: Option<proxy::Tunnel>,
}

/// Opens a connection, honouring `connection_attempts`.
pub(crate) fn open(r: &Resolved, opts: &ConnectOptions) -> Result<Connection, SshError> {
    let est = establish(r, opts)?;
    let io_timeout = r.connect_timeout.max(Duration::from_secs(60));
    if let Some(k) = r.keepalive {
        est.session
            .set_keepalive(true, k.as_secs().max(1).min(u64::from(u32::MAX)) as u32);
    }
    let extra_fds = est.tunnel.as_ref().map(|t| t.fds()).unwrap_or_default();
    let now = Instant::now();
    Ok(Connection {
        name: r.name(),
        display: r.display(&opts.default_user),
        session: ManuallyDrop::new(est.session),
        fd: est.fd,
        extra_fds,
        op: Mutex::new(OpState {
            sftp: None,
            raw_sftp: None,
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
    })
}

/// Connects and authenticates with retries; used for targets and jump
/// hosts alike.
pub(crate) fn establish(r: &Resolved, opts: &ConnectOptions) -> Result<Established, SshError> {
    let attempts = opts.connection_attempts.max(1);
    let mut attempt = 1;
    loop {
        match establish_once(r, opts) {
            Ok(e) => return Ok(e),
            Err(e) => {
                let retryable = matches!(
                    e.kind,
                    SshErrorKind::Timeout | SshErrorKind::Connect | SshErrorKind::Disconnected
                );
                if !retryable || attempt >= attempts {
                    return Err(finish_error(e, r, attempt));
                }
                if e.kind != SshErrorKind::Timeout {
                    std::thread::sleep(r.connect_timeout.min(Duration::from_secs(1)));
                }
                attempt += 1;
            }
        }
    }
}

fn tries(n: u32) -> String {
    if n == 1 {
        "tried 1 time".to_string()
    } else {
        format!("tried {n} times")
    }
}

fn finish_error(e: SshError, r: &Resolved, attempts: u32) -> SshError {
    match e.kind {
        SshErrorKind::Timeout => SshError::new(
            SshErrorKind::Timeout,
            format!(
                "Timed out trying to connect to {} ({})",
                r.host_for_messages(),
                tries(attempts)
            ),
        ),
        SshErrorKind::Connect | SshErrorKind::Disconnected => {
            SshError::new(e.kind, format!("{} ({})", e.message, tries(attempts)))
        }
        _ => e,
    }
}

fn tcp_connect(r: &Resolved, deadline: Instant) -> Result<TcpStream, SshError> {
    let addrs: Vec<SocketAddr> = match (r.hostname.as_str(), r.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(SshError::new(
            SshErrorKind::Resolve,
            format!("Name lookup failed for {}", r.host_for_messages()),
        ));
    }
    let mut last: Option<std::io::Error> = None;
    for addr in &addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) if e.kind() != std::io::ErrorKind::TimedOut => Err(SshError::new(
            SshErrorKind::Connect,
            format!(
                "Low level socket error connecting to host {} on port {}: {}",
                r.host_for_messages(),
                r.port,
                strip_os_error(&e)
            ),
        )),
        _ => Err(SshError::new(SshErrorKind::Timeout, "timeout")),
    }
}

fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Ciphers in twill's order of preference where the CPU encrypts AES in
/// hardware. The engine's libssh2 hands AES whole packets to OpenSSL
/// (`vendor/README.md`), which makes bulk transfers markedly faster than
/// libssh2's portable ChaCha20-Poly1305; AES-CTR and AES-GCM measure the
/// same, and AES-CTR leads as OpenSSH's own order has it. All of them are
/// in OpenSSH's defaults.
const CIPHERS_AES_HW: &[&str] = &[
    "aes128-ctr",
    "aes256-ctr",
    "aes192-ctr",
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];

/// Ciphers in order of preference without AES hardware: ChaCha20-Poly1305
/// first, as in OpenSSH.
const CIPHERS_SOFTWARE: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];

/// MACs (used with AES-CTR): encrypt-then-MAC first.
const MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
];

fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Sets the cipher and MAC preferences before the handshake: ssh_config
/// `Ciphers`/`MACs` when given, twill's order otherwise. Names libssh2
/// does not implement are left out; a list with none left is an error.
fn prefer_algorithms(session: &ssh2::Session, r: &Resolved) -> Result<(), SshError> {
    use ssh2::MethodType;
    let default_ciphers = if aes_in_hardware() {
        CIPHERS_AES_HW
    } else {
        CIPHERS_SOFTWARE
    };
    let lists = [
        (
            "Ciphers",
            &r.ciphers,
            default_ciphers,
            [MethodType::CryptCs, MethodType::CryptSc],
        ),
        (
            "MACs",
            &r.macs,
            MACS,
            [MethodType::MacCs, MethodType::MacSc],
        ),
    ];
    for (key, configured, default, methods) in lists {
        let wanted: Vec<&str> = match configured {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => default.to_vec(),
        };
        let supported = session.supported_algs(methods[0]).unwrap_or_default();
        let usable: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|a| supported.contains(a))
            .collect();
        if usable.is_empty() {
            if configured.is_some() {
                return Err(SshError::new(
                    SshErrorKind::Config,
                    format!(
                        "ssh_config {key} for {} names nothing twill supports ({}); supported: {}",
                        r.host_for_messages(),
                        wanted.join(","),
                        supported.join(",")
                    ),
                ));
            }
            continue;
        }
        for m in methods {
            let _ = session.method_pref(m, &usable.join(","));
        }
    }
    Ok(())
}

fn remaining_ms(deadline: Instant) -> u32 {
    let left = deadline.saturating_duration_since(Instant::now());
    (left.as_millis().clamp(1, u128::from(u32::MAX))) as u32
}

/// One attempt at connecting and authenticating, without retries.
pub(crate) fn establish_once(r: &Resolved, opts: &ConnectOptions) -> Result<Established, SshError> {
    let deadline = Instant::now() + r.connect_timeout;
    let mut session = ssh2::Session::new().map_err(|e| {
        SshError::new(
            SshErrorKind::Io,
            format!("Could not create an SSH session: {}", e.message()),
        )
    })?;
    let (fd, tunnel) = if r.jumps.is_empty() {
        let tcp = tcp_connect(r, deadline)?;
        let fd = tcp.as_raw_fd();
        io::quickack(fd);
        session.set_tcp_stream(tcp);
        (fd, None)
    } else {
        let (stream, tunnel) = proxy::open_tunnel(r, opts, deadline)?;
        let fd = stream.as_raw_fd();
        session.set_tcp_stream(stream);
        (fd, Some(tunnel))
    };
    let known = hostkey::KnownHosts::load(&r.known_hosts)?;
    known.prefer_known_types(&session, &r.hostname, r.port);
    prefer_algorithms(&session, r)?;
    session.set_blocking(true);
    session.set_timeout(remaining_ms(deadline));
    if let Err(e) = session.handshake() {
        return Err(match e.code() {
            ssh2::ErrorCode::Session(-9) => SshError::new(SshErrorKind::Timeout, "timeout"),
            _ => SshError::new(
                SshErrorKind::Connect,
                format!(
                    "SSH handshake with {} port {} failed: {}",
                    r.host_for_messages(),
                    r.port,
                    handshake_message(&e)
                ),
            ),
        });
    }
    known.verify(&session, r)?;
    drop(known);
    if r.jumps.is_empty() {
        io::quickack(fd);
    }
    // Authentication gets its own full timeout: key and agent operations
    // are local work on top of the network round trips.
    session.set_timeout(r.connect_timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u32);
    auth::authenticate(&session, r, opts)?;
    if r.jumps.is_empty() {
        io::quickack(fd);
    }
    session.set_timeout(0);
    Ok(Established {
        session,
        fd,
        tunnel,
    })
}

fn handshake_message(e: &ssh2::Error) -> String {
    match e.code() {
        ssh2::ErrorCode::Session(-2) => "Error reading SSH protocol banner".to_string(),
        ssh2::ErrorCode::Session(-13) => "the server closed the connection".to_string(),
        _ => e.message().to_string(),
    }
}

//! Opening a session: TCP connect with a real timeout (or a tunnel through
//! jump hosts), handshake, host key check, authentication, retries.
//!
//! A jump host is itself a session opened here: [`establish_once`] opens
//! the one before the target (through the ones before it, recursively) and
//! hands it to [`proxy`], which turns it into a tunnel to the target.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::resolve::{self, Resolved};
use super::{auth, codes, hostkey, io, proxy, ConnectOptions, SshError, SshErrorKind};

/// An established, authenticated session and what keeps it running.
pub(crate) struct Established {
    pub(crate) session: ssh2::Session,
    /// The socket libssh2 reads and writes (TCP, or the local end of a
    /// jump-host tunnel).
    pub(crate) fd: RawFd,
    pub(crate) tunnel: Option<proxy::Tunnel>,
}

/// Connects and authenticates, honouring `connection_attempts` (a jump
/// host gets one try: the target's attempts count for the whole chain).
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
        let (stream, tunnel) = through_jump_host(r, opts, deadline)?;
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
        if codes::is_timeout(&e) {
            return Err(SshError::new(SshErrorKind::Timeout, "timeout"));
        }
        return Err(SshError::new(
            SshErrorKind::Connect,
            format!(
                "SSH handshake with {} port {} failed: {}",
                r.host_for_messages(),
                r.port,
                handshake_message(&e)
            ),
        ));
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
    if codes::is_banner_error(e) {
        "Error reading SSH protocol banner".to_string()
    } else if codes::is_disconnect(e) {
        "the server closed the connection".to_string()
    } else {
        e.message().to_string()
    }
}

/// Connects to the last jump host of `r` (through the earlier ones) and
/// opens a tunnel from there to `r.hostname:r.port`.
fn through_jump_host(
    r: &Resolved,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<(UnixStream, proxy::Tunnel), SshError> {
    let (last, earlier) = r.jumps.split_last().expect("a jump host to go through");
    let jr = resolve::resolve_jump(last, earlier, opts)?;
    // One try: the connection to the target counts the attempts, and says
    // how many there were.
    let jump = establish_once(&jr, opts).map_err(|e| {
        if e.kind == SshErrorKind::Timeout {
            e
        } else {
            SshError {
                message: format!(
                    "Could not connect to the jump host {}: {}",
                    jr.name(),
                    e.message
                ),
                ..e
            }
        }
    })?;
    proxy::open_tunnel(jump.session, jump.fd, jump.tunnel, &jr, r, deadline)
}

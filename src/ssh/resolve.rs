//! Resolving a target: ssh_config and the options applied to a host as
//! written, giving the address, user, keys, known_hosts file, timeouts and
//! jump hosts a connection uses.

use std::path::PathBuf;
use std::time::Duration;

use super::config::{self, HostConfig};
use super::{
    ConnectOptions, HostKeyPolicy, SshError, SshErrorKind, Target, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE, DEFAULT_KEEPALIVE_COUNT,
};
use crate::sys;

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
    /// [`ConnectOptions::accept_keys`].
    pub(crate) accept_keys: Vec<(String, Vec<u8>)>,
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
    /// The cache key and the connection's name: `user@host:port`.
    pub(crate) fn name(&self) -> String {
        format!("{}@{}:{}", self.user, bracket(&self.alias), self.port)
    }

    /// `user@host:port` with the host ssh_config maps the alias to.
    pub(crate) fn resolved_name(&self) -> String {
        format!("{}@{}:{}", self.user, bracket(&self.hostname), self.port)
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
        .or_else(|| sys::home_dir().map(|h| h.join(".ssh").join("known_hosts")))
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
        accept_keys: opts.accept_keys.clone(),
        connect_timeout,
        keepalive: Some(
            opts.keepalive
                .or(hc.server_alive_interval)
                .unwrap_or(DEFAULT_KEEPALIVE),
        )
        .filter(|k| !k.is_zero()),
        keepalive_count: opts
            .keepalive_count
            .or(hc.server_alive_count_max)
            .unwrap_or(DEFAULT_KEEPALIVE_COUNT)
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

/// What an OpenSSH client needs to reach a target exactly as the engine
/// does: the resolved address, user and port, the keys, the known_hosts
/// file and how strictly it is held, the limits on silence, and the jump
/// hosts, each with its own resolution. The caller makes the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientArgs {
    /// The name or address connected to (ssh_config `HostName` applied).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_files: Vec<PathBuf>,
    /// Offer only the key files, not the agent's other keys (ssh_config
    /// `IdentitiesOnly`, or the agent is not to be used).
    pub(crate) identities_only: bool,
    /// The one known_hosts file host keys are checked against.
    pub(crate) known_hosts: PathBuf,
    /// An unknown host key is recorded instead of refused.
    pub(crate) accept_new: bool,
    pub(crate) connect_timeout: Duration,
    /// Keepalive interval and count; `None` when keepalives are off.
    pub(crate) keepalive: Option<(Duration, u32)>,
    /// The ssh_config file to read instead of the client's default one:
    /// the configured one, or `/dev/null` when the engine reads none.
    pub(crate) ssh_config: Option<PathBuf>,
    /// The jump hosts, outermost first (none of them has jumps of its own).
    pub(crate) jumps: Vec<ClientArgs>,
}

/// The arguments an OpenSSH client needs to connect to `target` as the
/// engine would with `opts`.
pub(crate) fn client_args(target: &Target, opts: &ConnectOptions) -> Result<ClientArgs, SshError> {
    let r = resolve(target, opts)?;
    let jumps = r
        .jumps
        .iter()
        .map(|j| resolve_with(j, opts, false).map(|jr| client_args_of(&jr, opts, Vec::new())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(client_args_of(&r, opts, jumps))
}

fn client_args_of(r: &Resolved, opts: &ConnectOptions, jumps: Vec<ClientArgs>) -> ClientArgs {
    let ssh_config = if !opts.use_ssh_config {
        Some(PathBuf::from("/dev/null"))
    } else {
        opts.ssh_config_path.as_deref().map(config::expand_tilde)
    };
    ClientArgs {
        host: r.hostname.clone(),
        port: r.port,
        user: r.user.clone(),
        identity_files: r.identity_files.clone(),
        identities_only: r.identities_only || !opts.use_agent,
        known_hosts: r.known_hosts.clone(),
        accept_new: r.policy == HostKeyPolicy::AcceptNew,
        connect_timeout: r.connect_timeout,
        keepalive: r.keepalive.map(|k| (k, r.keepalive_count)),
        ssh_config,
        jumps,
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn client_args_are_the_resolution_with_each_jump_resolved_alike() {
        let opts = ConnectOptions {
            key_filenames: vec![PathBuf::from("/keys/id")],
            use_agent: false,
            known_hosts: Some(PathBuf::from("/kh")),
            host_key_policy: HostKeyPolicy::AcceptNew,
            connect_timeout: Duration::from_secs(5),
            keepalive: Some(Duration::ZERO),
            use_ssh_config: false,
            gateway: Some("ops@bastion:2200".into()),
            default_user: "me".into(),
            ..ConnectOptions::default()
        };
        let args = client_args(&Target::parse("deploy@[::1]:2222"), &opts).unwrap();
        assert_eq!(
            (args.host.as_str(), args.port, args.user.as_str()),
            ("::1", 2222, "deploy")
        );
        assert_eq!(args.identity_files, [PathBuf::from("/keys/id")]);
        assert!(args.identities_only && args.accept_new);
        assert_eq!(args.known_hosts, PathBuf::from("/kh"));
        assert_eq!(args.connect_timeout, Duration::from_secs(5));
        assert_eq!(args.keepalive, None);
        assert_eq!(args.ssh_config, Some(PathBuf::from("/dev/null")));
        let jump = &args.jumps[0];
        assert_eq!(
            (jump.host.as_str(), jump.port, jump.user.as_str()),
            ("bastion", 2200, "ops")
        );
        assert_eq!(jump.known_hosts, PathBuf::from("/kh"));
        assert!(jump.jumps.is_empty() && args.jumps.len() == 1);

        let plain = ConnectOptions {
            use_ssh_config: true,
            ssh_config_path: Some(PathBuf::from("/dev/null")),
            default_user: "me".into(),
            ..ConnectOptions::default()
        };
        let args = client_args(&Target::parse("web1"), &plain).unwrap();
        assert_eq!((args.port, args.user.as_str()), (22, "me"));
        assert!(!args.identities_only && !args.accept_new);
        assert_eq!(
            args.keepalive,
            Some((DEFAULT_KEEPALIVE, DEFAULT_KEEPALIVE_COUNT))
        );
    }
}

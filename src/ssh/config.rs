//! ssh_config lookup.
//!
//! Parsing is done by the `ssh2-config` crate (Host patterns with negation,
//! first-value-wins merging, accumulating `IdentityFile`, `~` expansion,
//! `Include`, `Ciphers` and `MACs` with their `+`/`-`/`^` forms). Keys that
//! crate keeps only as raw strings (`IdentitiesOnly`,
//! `UserKnownHostsFile`, `StrictHostKeyChecking`) and the `%h`/`%%`/`%d`/`%u`
//! tokens are interpreted here.

use std::collections::HashMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use ssh2_config::{ParseRule, SshConfig};

use super::{SshError, SshErrorKind};
use crate::sys;

/// What ssh_config says about one host. Every field is `None`/empty when the
/// file does not mention it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostConfig {
    pub(crate) hostname: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) identity_files: Vec<PathBuf>,
    pub(crate) identities_only: Option<bool>,
    pub(crate) user_known_hosts_file: Option<PathBuf>,
    pub(crate) strict_host_key_checking: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) server_alive_interval: Option<Duration>,
    pub(crate) server_alive_count_max: Option<u32>,
    /// Jump hosts in the order they are passed through; empty for none.
    pub(crate) proxy_jump: Vec<String>,
    /// `Ciphers`, when the file changes OpenSSH's default list.
    pub(crate) ciphers: Option<Vec<String>>,
    /// `MACs`, when the file changes OpenSSH's default list.
    pub(crate) macs: Option<Vec<String>>,
}

struct CachedFile {
    modified: Option<SystemTime>,
    config: SshConfig,
}

static PARSED: LazyLock<Mutex<HashMap<PathBuf, CachedFile>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// In a forked child: a thread of the parent may have been reading a file
/// into the cache at the fork, its lock held for good here; the child has
/// one thread, so the holder is gone, and the lock is released.
pub(crate) fn reset_after_fork() {
    if PARSED.is_locked() {
        // SAFETY: no guard of this lock is alive in this single-threaded
        // process; a thread of the parent held it.
        unsafe { PARSED.force_unlock() };
    }
}

/// Expands a leading `~` or `~/` to the home directory.
pub(crate) fn expand_tilde(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if s == "~" {
        return sys::home_dir().unwrap_or_else(|| p.to_path_buf());
    }
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(h) = sys::home_dir() {
            return h.join(rest);
        }
    }
    p.to_path_buf()
}

/// Expands the ssh_config tokens twill supports: `%h` (the host as
/// written), `%d` (local home), `%u` (local user), `%%`.
fn expand_tokens(s: &str, host: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(host),
            Some('d') => out.push_str(&sys::home_dir().unwrap_or_default().to_string_lossy()),
            Some('u') => out.push_str(&sys::local_user()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Looks `host` up in the ssh_config file `path` (default `~/.ssh/config`).
/// A missing default file is not an error; a missing explicit file is.
pub(crate) fn lookup(path: Option<&Path>, host: &str) -> Result<HostConfig, SshError> {
    let (path, explicit) = match path {
        Some(p) => (expand_tilde(p), true),
        None => match sys::home_dir() {
            Some(h) => (h.join(".ssh").join("config"), false),
            None => return Ok(HostConfig::default()),
        },
    };
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(HostConfig::default())
        }
        Err(e) => {
            return Err(SshError::new(
                SshErrorKind::Config,
                format!("Could not read ssh config file {}: {e}", path.display()),
            ))
        }
    };
    let modified = meta.modified().ok();
    let mut cache = PARSED.lock();
    let fresh = cache
        .get(&path)
        .map(|c| c.modified == modified && modified.is_some())
        .unwrap_or(false);
    if !fresh {
        let config = parse_file(&path)?;
        cache.insert(path.clone(), CachedFile { modified, config });
    }
    let params = cache[&path].config.query(host);
    drop(cache);

    let unsupported = |key: &str| params.unsupported_fields.get(key).cloned();
    let mut hc = HostConfig {
        hostname: params.host_name.as_deref().map(|h| expand_tokens(h, host)),
        user: params.user.clone(),
        port: params.port,
        connect_timeout: params.connect_timeout,
        server_alive_interval: params.server_alive_interval,
        ciphers: Some(params.ciphers.algorithms().to_vec())
            .filter(|_| !params.ciphers.is_default()),
        macs: Some(params.mac.algorithms().to_vec()).filter(|_| !params.mac.is_default()),
        ..HostConfig::default()
    };
    for f in params.identity_file.iter().flatten() {
        let expanded = PathBuf::from(expand_tokens(&f.to_string_lossy(), host));
        let expanded = expand_tilde(&expanded);
        if !hc.identity_files.contains(&expanded) {
            hc.identity_files.push(expanded);
        }
    }
    if let Some(v) = unsupported("identitiesonly") {
        hc.identities_only = v.first().and_then(|s| crate::sys::parse_bool(s));
    }
    if let Some(v) = unsupported("userknownhostsfile") {
        // Only the first file is used (OpenSSH reads them all; twill records
        // and checks keys in the first).
        if let Some(first) = v.first() {
            if first != "none" {
                let p = PathBuf::from(expand_tokens(first, host));
                hc.user_known_hosts_file = Some(expand_tilde(&p));
            }
        }
    }
    if let Some(v) = unsupported("serveralivecountmax") {
        hc.server_alive_count_max = v.first().and_then(|s| s.parse().ok());
    }
    if let Some(v) = unsupported("stricthostkeychecking") {
        hc.strict_host_key_checking = v.first().map(|s| s.to_ascii_lowercase());
    }
    if let Some(jumps) = &params.proxy_jump {
        if !(jumps.len() == 1 && jumps[0].eq_ignore_ascii_case("none")) {
            hc.proxy_jump = jumps
                .iter()
                .map(|j| j.trim().to_string())
                .filter(|j| !j.is_empty())
                .collect();
        }
    }
    Ok(hc)
}

fn parse_file(path: &Path) -> Result<SshConfig, SshError> {
    let file = fs::File::open(path).map_err(|e| {
        SshError::new(
            SshErrorKind::Config,
            format!("Could not read ssh config file {}: {e}", path.display()),
        )
    })?;
    let mut reader = BufReader::new(file);
    SshConfig::default()
        .parse(
            &mut reader,
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| {
            SshError::new(
                SshErrorKind::Config,
                format!("Could not parse ssh config file {}: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn reads_the_keys_twill_uses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(
            &path,
            "ConnectTimeout 7\n\
             Host web* !web3\n  HostName 10.0.0.%h\n  User alice\n  Port 2200\n\
             \x20 IdentityFile ~/.ssh/id_web\n  IdentityFile /k/two\n  IdentitiesOnly yes\n\
             \x20 UserKnownHostsFile /tmp/kh /tmp/kh2\n  StrictHostKeyChecking accept-new\n\
             \x20 ServerAliveInterval 15\n  ServerAliveCountMax 5\n  ProxyJump bob@jump:2022\n\
             Host web1\n  User bob\n\
             Host *\n  User fallback\n  IdentitiesOnly no\n  ProxyJump none\n",
        )
        .unwrap();
        let c = lookup(Some(&path), "web1").unwrap();
        assert_eq!(c.hostname.as_deref(), Some("10.0.0.web1"));
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.port, Some(2200));
        assert_eq!(c.identity_files.len(), 2);
        assert!(c.identity_files[0].ends_with(".ssh/id_web"));
        assert!(!c.identity_files[0].starts_with("~"));
        assert_eq!(c.identities_only, Some(true));
        assert_eq!(c.user_known_hosts_file, Some(PathBuf::from("/tmp/kh")));
        assert_eq!(c.strict_host_key_checking.as_deref(), Some("accept-new"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(c.server_alive_interval, Some(Duration::from_secs(15)));
        assert_eq!(c.server_alive_count_max, Some(5));
        assert_eq!(c.proxy_jump, vec!["bob@jump:2022".to_string()]);
        let other = lookup(Some(&path), "web3").unwrap();
        assert_eq!(other.user.as_deref(), Some("fallback"));
        assert_eq!(other.hostname, None);
        assert_eq!(other.identities_only, Some(false));
        assert!(other.proxy_jump.is_empty());
        assert!(lookup(Some(&dir.path().join("missing")), "x").is_err());
    }
}

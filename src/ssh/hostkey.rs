//! Host key verification against an OpenSSH known_hosts file.
//!
//! libssh2's known-hosts code does the matching (plain and hashed entries,
//! `[host]:port` for other ports than 22). It is driven directly so the
//! key type takes part in the match: a host known only by its RSA key that
//! offers an Ed25519 key is "unknown" for that key type, not "changed".
//! Before the handshake, the key types already known for the host are put
//! first in the host key algorithm preference, as OpenSSH does.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libssh2_sys as raw;

use super::transport::Resolved;
use super::{HostKeyPolicy, SshError, SshErrorKind};

/// Key algorithm name (as in known_hosts) ↔ libssh2 known-host key type ↔
/// host key methods to prefer.
const KEY_TYPES: &[(&str, libc::c_int, &str)] = &[
    (
        "ssh-ed25519",
        raw::LIBSSH2_KNOWNHOST_KEY_ED25519,
        "ssh-ed25519",
    ),
    (
        "ecdsa-sha2-nistp256",
        raw::LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
        "ecdsa-sha2-nistp256",
    ),
    (
        "ecdsa-sha2-nistp384",
        raw::LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
        "ecdsa-sha2-nistp384",
    ),
    (
        "ecdsa-sha2-nistp521",
        raw::LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
        "ecdsa-sha2-nistp521",
    ),
    (
        "ssh-rsa",
        raw::LIBSSH2_KNOWNHOST_KEY_SSHRSA,
        "rsa-sha2-512,rsa-sha2-256,ssh-rsa",
    ),
    ("ssh-dss", raw::LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss"),
];

/// A loaded known_hosts file.
pub(crate) struct KnownHosts {
    raw: *mut raw::LIBSSH2_KNOWNHOSTS,
    path: PathBuf,
    exists: bool,
}

impl Drop for KnownHosts {
    fn drop(&mut self) {
        // SAFETY: raw came from libssh2_knownhost_init and is freed once.
        unsafe { raw::libssh2_knownhost_free(self.raw) };
    }
}

fn raw_session(session: &ssh2::Session) -> *mut raw::LIBSSH2_SESSION {
    let mut guard = session.raw();
    &mut *guard as *mut raw::LIBSSH2_SESSION
}

/// `host` or `[host]:port`, as OpenSSH writes it.
pub(crate) fn host_entry(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's fingerprint format: `SHA256:` and unpadded base64.
pub(crate) fn fingerprint(session: &ssh2::Session) -> String {
    match session.host_key_hash(ssh2::HashType::Sha256) {
        Some(h) => format!("SHA256:{}", base64(h, false)),
        None => "SHA256:?".to_string(),
    }
}

pub(crate) fn base64(data: &[u8], pad: bool) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = [
            T[(n >> 18) as usize & 63],
            T[(n >> 12) as usize & 63],
            T[(n >> 6) as usize & 63],
            T[n as usize & 63],
        ];
        let keep = chunk.len() + 1;
        for (i, c) in chars.iter().enumerate() {
            if i < keep {
                out.push(*c as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The algorithm name at the start of an SSH public key blob.
pub(crate) fn key_type_name(blob: &[u8]) -> Option<&str> {
    if blob.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    blob.get(4..4 + n).and_then(|s| std::str::from_utf8(s).ok())
}

impl KnownHosts {
    /// Loads `path`; a missing file gives an empty set (every host then is
    /// unknown). Lines libssh2 cannot parse (markers, other key types) are
    /// skipped one by one instead of ending the read.
    pub(crate) fn load(session: &ssh2::Session, path: &Path) -> Result<KnownHosts, SshError> {
        // SAFETY: the session pointer is valid for the session's life.
        let kh = unsafe { raw::libssh2_knownhost_init(raw_session(session)) };
        if kh.is_null() {
            return Err(SshError::new(
                SshErrorKind::Io,
                "Could not initialise the known hosts list",
            ));
        }
        let mut known = KnownHosts {
            raw: kh,
            path: path.to_path_buf(),
            exists: false,
        };
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(known),
            Err(e) => {
                return Err(SshError::new(
                    SshErrorKind::Io,
                    format!("Could not read known hosts file {}: {e}", path.display()),
                ))
            }
        };
        known.exists = true;
        for line in text.split(|b| *b == b'\n') {
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() || trimmed[0] == b'#' || trimmed[0] == b'@' {
                continue;
            }
            // SAFETY: the buffer is valid for its length.
            unsafe {
                raw::libssh2_knownhost_readline(
                    kh,
                    trimmed.as_ptr() as *const libc::c_char,
                    trimmed.len(),
                    raw::LIBSSH2_KNOWNHOST_FILE_OPENSSH,
                );
            }
        }
        Ok(known)
    }

    /// `key` is raw, or NUL-terminated base64 when `b64`.
    fn check(&self, host: &str, port: u16, key: &[u8], key_type: libc::c_int, b64: bool) -> i32 {
        let Ok(chost) = CString::new(host) else {
            return raw::LIBSSH2_KNOWNHOST_CHECK_FAILURE;
        };
        let enc = if b64 {
            raw::LIBSSH2_KNOWNHOST_KEYENC_BASE64
        } else {
            raw::LIBSSH2_KNOWNHOST_KEYENC_RAW
        };
        // For port 22 libssh2 would also try `[host]:22`; -1 checks the plain
        // name only, as OpenSSH writes it.
        let p = if port == 22 {
            -1
        } else {
            libc::c_int::from(port)
        };
        // SAFETY: all pointers are valid for the given lengths.
        unsafe {
            raw::libssh2_knownhost_checkp(
                self.raw,
                chost.as_ptr(),
                p,
                key.as_ptr() as *const libc::c_char,
                if b64 { key.len() - 1 } else { key.len() },
                raw::LIBSSH2_KNOWNHOST_TYPE_PLAIN | enc | key_type,
                std::ptr::null_mut(),
            )
        }
    }

    /// Puts the host key algorithms already recorded for this host first.
    pub(crate) fn prefer_known_types(&self, session: &ssh2::Session, host: &str, port: u16) {
        if !self.exists {
            return;
        }
        let mut known: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        for (_, kt, methods) in KEY_TYPES {
            // A dummy key: a recorded key of this type answers "mismatch".
            let r = self.check(host, port, b"AAAA\0", *kt, true);
            if r == raw::LIBSSH2_KNOWNHOST_CHECK_MISMATCH || r == raw::LIBSSH2_KNOWNHOST_CHECK_MATCH
            {
                known.push(methods);
            } else {
                others.push(methods);
            }
        }
        if known.is_empty() {
            return;
        }
        let supported = session
            .supported_algs(ssh2::MethodType::HostKey)
            .unwrap_or_default();
        let pref: Vec<&str> = known
            .iter()
            .chain(others.iter())
            .flat_map(|m| m.split(','))
            .filter(|m| supported.is_empty() || supported.contains(m))
            .collect();
        let _ = session.method_pref(ssh2::MethodType::HostKey, &pref.join(","));
    }

    /// Checks the server's key; records it under [`HostKeyPolicy::AcceptNew`].
    pub(crate) fn verify(&self, session: &ssh2::Session, r: &Resolved) -> Result<(), SshError> {
        let Some((key, _)) = session.host_key() else {
            return Err(SshError::new(
                SshErrorKind::Connect,
                format!("{} sent no host key", r.host_for_messages()),
            ));
        };
        let type_name = key_type_name(key).unwrap_or("unknown").to_string();
        let kt = KEY_TYPES
            .iter()
            .find(|(n, _, _)| *n == type_name)
            .map(|(_, t, _)| *t)
            .unwrap_or(raw::LIBSSH2_KNOWNHOST_KEY_UNKNOWN);
        let entry = host_entry(&r.hostname, r.port);
        let fp = fingerprint(session);
        match self.check(&r.hostname, r.port, key, kt, false) {
            raw::LIBSSH2_KNOWNHOST_CHECK_MATCH => Ok(()),
            raw::LIBSSH2_KNOWNHOST_CHECK_MISMATCH => Err(SshError::new(
                SshErrorKind::HostKeyChanged,
                format!(
                    "The host key of {entry} has CHANGED: the server sent the {type_name} key \
                     {fp}, which does not match the key recorded in {path}. Someone may be \
                     intercepting the connection, or the host key was replaced. If the change \
                     is expected, remove the old entry (ssh-keygen -R '{entry}' -f {path}) and \
                     connect again.",
                    path = self.path.display()
                ),
            )),
            _ => match r.policy {
                HostKeyPolicy::AcceptNew => self.append(&entry, &type_name, key),
                HostKeyPolicy::Strict => {
                    let why = if self.exists {
                        format!("{} has no entry for it", self.path.display())
                    } else {
                        format!(
                            "the known hosts file {} does not exist",
                            self.path.display()
                        )
                    };
                    Err(SshError::new(
                        SshErrorKind::HostKeyUnknown,
                        format!(
                            "The host key of {entry} is not known: the server sent the \
                             {type_name} key {fp} and {why}. Turn on the \
                             accept_new_host_keys setting to accept and record unknown host \
                             keys, or add the host's key to {path} (for example with \
                             ssh-keyscan).",
                            path = self.path.display()
                        ),
                    ))
                }
            },
        }
    }

    fn append(&self, entry: &str, type_name: &str, key: &[u8]) -> Result<(), SshError> {
        let io_err = |e: std::io::Error| {
            SshError::new(
                SshErrorKind::Io,
                format!(
                    "Could not record the host key of {entry} in {}: {e}",
                    self.path.display()
                ),
            )
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_err)?;
            }
        }
        let needs_newline = match fs::read(&self.path) {
            Ok(t) => !t.is_empty() && !t.ends_with(b"\n"),
            Err(_) => false,
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io_err)?;
        let line = format!(
            "{}{entry} {type_name} {}\n",
            if needs_newline { "\n" } else { "" },
            base64(key, true)
        );
        f.write_all(line.as_bytes()).map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn base64_matches_openssh() {
        assert_eq!(base64(b"", true), "");
        assert_eq!(base64(b"f", true), "Zg==");
        assert_eq!(base64(b"fo", false), "Zm8");
        assert_eq!(base64(b"foobar", true), "Zm9vYmFy");
        assert_eq!(host_entry("h", 22), "h");
        assert_eq!(host_entry("::1", 2222), "[::1]:2222");
    }
}

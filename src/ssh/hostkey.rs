//! Host key verification against an OpenSSH known_hosts file.
//!
//! twill reads known_hosts itself, with the rules of OpenSSH's `ssh`
//! (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): an optional marker
//! (`@revoked`, `@cert-authority`), comma-separated host patterns with `*`,
//! `?` and `!` (a matching negated pattern excludes the whole line), hashed
//! names (`|1|salt|HMAC-SHA1`, as `ssh-keygen -H` writes them), the key
//! type, the base64 key and an optional comment. A line twill cannot parse
//! is skipped, as OpenSSH skips it. The name looked up is `host` for port
//! 22 and `[host]:port` otherwise, lowercased.
//!
//! The key type takes part in the match: a host known only by its RSA key
//! that offers an Ed25519 key is "unknown" for that key type, not
//! "changed". A key that a matching `@revoked` line names is refused
//! whatever the policy. `@cert-authority` lines never match a plain host
//! key: twill does not verify host certificates. Before the handshake,
//! the key types already known for the host are put first in the host key
//! algorithm preference, as OpenSSH does.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::resolve::Resolved;
use super::{HostKeyPolicy, SshError, SshErrorKind, UnknownHostKey};

/// Key algorithm name (as in known_hosts) and the host key methods to
/// prefer when a key of that type is known.
const KEY_TYPES: &[(&str, &str)] = &[
    ("ssh-ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
    ("ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
    ("ssh-dss", "ssh-dss"),
];

/// Base64 as OpenSSH reads it: the standard alphabet, with or without
/// padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding, as in known_hosts and `.pub` files.
pub(crate) fn base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// The marker that starts a known_hosts line, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    /// `@revoked`: the key must never be accepted for the hosts.
    Revoked,
    /// `@cert-authority`: the key signs host certificates for the hosts.
    CertAuthority,
}

/// The host field of a known_hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// Comma-separated patterns, as written.
    Patterns(String),
    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`: one name, hashed.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// How a name fares against a pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternMatch {
    /// No pattern matches.
    None,
    /// A pattern matches and no negated one does.
    Positive,
    /// A negated pattern matches: the line does not apply to the name.
    Negated,
}

impl Hosts {
    fn parse(field: &str) -> Option<Hosts> {
        if !field.starts_with('|') {
            return Some(Hosts::Patterns(field.to_string()));
        }
        let mut parts = field.split('|');
        let (Some(""), Some("1"), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let salt = LENIENT_BASE64.decode(salt).ok()?;
        let hash = LENIENT_BASE64.decode(hash).ok()?;
        // OpenSSH takes only SHA-1 sized salts (and so hashes).
        (salt.len() == 20 && hash.len() == 20).then_some(Hosts::Hashed { salt, hash })
    }

    /// Whether the line applies to `name` (already lowercased).
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Patterns(list) => match_pattern_list(name, list) == PatternMatch::Positive,
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
        }
    }

    /// Whether `ssh-keygen -R name` removes this line and nothing more than
    /// the entry of `name`: true for a hashed name and for one plain name,
    /// false for wildcards, negations and lists (the whole line would go,
    /// with every other host it stands for).
    fn names_one_host(&self) -> bool {
        match self {
            Hosts::Hashed { .. } => true,
            Hosts::Patterns(list) => !list.contains(['*', '?', '!', ',']),
        }
    }
}

/// OpenSSH's `match_pattern`: `*` matches any run of characters, `?` any
/// one character, everything else itself.
fn glob(name: &[u8], pattern: &[u8]) -> bool {
    let (mut n, mut p) = (0, 0);
    // Where to resume after the last `*`: its pattern index + 1, and the
    // name index it currently stands up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            n += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, n));
            p += 1;
        } else if let Some((after, upto)) = star {
            // Let the last `*` take one more character and try again.
            p = after;
            n = upto + 1;
            star = Some((after, upto + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// OpenSSH's `match_hostname`: `name` against a comma-separated list of
/// patterns, case-insensitively. Any matching `!pattern` makes the answer
/// [`PatternMatch::Negated`], whatever else matches.
fn match_pattern_list(name: &str, list: &str) -> PatternMatch {
    let name = name.to_ascii_lowercase();
    let mut positive = false;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(name.as_bytes(), pattern.to_ascii_lowercase().as_bytes()) {
            if negated {
                return PatternMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        PatternMatch::Positive
    } else {
        PatternMatch::None
    }
}

/// One line of a known_hosts file that twill could parse.
#[derive(Debug, Clone)]
struct Entry {
    /// 1-based, as editors and OpenSSH count.
    line: usize,
    marker: Marker,
    hosts: Hosts,
    /// The algorithm name inside the key blob.
    key_type: String,
    blob: Vec<u8>,
}

/// Splits the first field (up to a space or tab) from `s`; the rest starts
/// at the next field.
fn next_field(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        return None;
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    Some((&s[..end], s[end..].trim_start_matches([' ', '\t'])))
}

/// Parses one known_hosts line; `None` for comments, blank lines and lines
/// twill cannot parse (an unknown marker, a malformed hash, a key that
/// does not decode or whose type is not the one the line states).
fn parse_line(line_no: usize, line: &str) -> Option<Entry> {
    let line = line.trim_end();
    let rest = line.trim_start_matches([' ', '\t']);
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let (mut field, mut rest) = next_field(rest)?;
    let mut marker = Marker::None;
    if field.starts_with('@') {
        marker = match field {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => return None,
        };
        (field, rest) = next_field(rest)?;
        if field.starts_with('@') {
            // OpenSSH allows one marker only.
            return None;
        }
    }
    let hosts = Hosts::parse(field)?;
    let (stated_type, rest) = next_field(rest)?;
    let (key, _comment) = next_field(rest)?;
    let blob = LENIENT_BASE64.decode(key).ok()?;
    let key_type = key_type_name(&blob)?.to_string();
    // RSA keys may be written with the name of a signature algorithm.
    let stated = match stated_type {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        t => t,
    };
    if stated != key_type {
        return None;
    }
    Some(Entry {
        line: line_no,
        marker,
        hosts,
        key_type,
        blob,
    })
}

/// `host` or `[host]:port`, as OpenSSH writes it.
fn host_entry(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's fingerprint format: `SHA256:` and unpadded base64.
fn fingerprint(session: &ssh2::Session) -> String {
    match session.host_key_hash(ssh2::HashType::Sha256) {
        Some(h) => format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
        ),
        None => "SHA256:?".to_string(),
    }
}

/// The algorithm name at the start of an SSH public key blob.
fn key_type_name(blob: &[u8]) -> Option<&str> {
    if blob.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    blob.get(4..4 + n).and_then(|s| std::str::from_utf8(s).ok())
}

/// "line 3", "lines 3 and 7", "lines 3, 7 and 9".
fn lines_phrase(lines: &[usize]) -> String {
    let nums: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match nums.as_slice() {
        [one] => format!("line {one}"),
        [init @ .., last] => format!("lines {} and {last}", init.join(", ")),
        [] => "no line".to_string(),
    }
}

/// A loaded known_hosts file.
pub(crate) struct KnownHosts {
    path: PathBuf,
    exists: bool,
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Loads `path`; a missing file gives an empty set (every host then is
    /// unknown). Lines twill cannot parse are skipped one by one instead of
    /// ending the read.
    pub(crate) fn load(path: &Path) -> Result<KnownHosts, SshError> {
        let mut known = KnownHosts {
            path: path.to_path_buf(),
            exists: false,
            entries: Vec::new(),
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
        known.entries = text
            .split(|b| *b == b'\n')
            .enumerate()
            .filter_map(|(i, line)| parse_line(i + 1, std::str::from_utf8(line).ok()?))
            .collect();
        Ok(known)
    }

    /// The entries whose host field matches `name` (already lowercased).
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.hosts.matches(name))
    }

    /// Puts the host key algorithms already recorded for this host first.
    pub(crate) fn prefer_known_types(&self, session: &ssh2::Session, host: &str, port: u16) {
        let name = lookup_name(host, port);
        let known_types: Vec<&str> = self
            .matching(&name)
            .filter(|e| e.marker == Marker::None)
            .map(|e| e.key_type.as_str())
            .collect();
        let (known, others): (Vec<_>, Vec<_>) =
            KEY_TYPES.iter().partition(|(t, _)| known_types.contains(t));
        if known.is_empty() {
            return;
        }
        let supported = session
            .supported_algs(ssh2::MethodType::HostKey)
            .unwrap_or_default();
        let pref: Vec<&str> = known
            .iter()
            .chain(others.iter())
            .flat_map(|(_, methods)| methods.split(','))
            .filter(|m| supported.is_empty() || supported.contains(m))
            .collect();
        let _ = session.method_pref(ssh2::MethodType::HostKey, &pref.join(","));
    }

    /// Checks the server's key; records it under [`HostKeyPolicy::AcceptNew`]
    /// when the host is not known with a key of its type, or when it is
    /// a key the user accepted for this host (`accept_keys`). An unknown
    /// key otherwise is an error carrying its facts, for a caller that may
    /// ask whether to trust it.
    pub(crate) fn verify(&self, session: &ssh2::Session, r: &Resolved) -> Result<(), SshError> {
        let Some((key, _)) = session.host_key() else {
            return Err(SshError::new(
                SshErrorKind::Connect,
                format!("{} sent no host key", r.host_for_messages()),
            ));
        };
        let type_name = key_type_name(key).unwrap_or("unknown");
        let name = lookup_name(&r.hostname, r.port);
        let matching: Vec<&Entry> = self.matching(&name).collect();
        if let Some(revoked) = matching
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.blob == key)
        {
            return Err(self.revoked(&name, type_name, session, revoked));
        }
        let plain: Vec<&Entry> = matching
            .iter()
            .copied()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if plain.iter().any(|e| e.blob == key) {
            return Ok(());
        }
        let offending: Vec<&Entry> = plain
            .iter()
            .copied()
            .filter(|e| e.key_type == type_name)
            .collect();
        if !offending.is_empty() {
            return Err(self.changed(&name, type_name, session, &plain, &offending));
        }
        let accepted = r
            .accept_keys
            .iter()
            .any(|(n, k)| *n == name && k.as_slice() == key);
        match r.policy {
            HostKeyPolicy::AcceptNew => self.append(&name, type_name, key),
            HostKeyPolicy::Strict if accepted => self.append(&name, type_name, key),
            HostKeyPolicy::Strict => {
                let mut error = self.unknown(&name, type_name, session, &matching);
                error.unknown_key = Some(Box::new(UnknownHostKey {
                    name: name.clone(),
                    key_type: type_name.to_string(),
                    fingerprint: fingerprint(session),
                    key: key.to_vec(),
                    known_hosts: self.path.clone(),
                }));
                Err(error)
            }
        }
    }

    fn revoked(
        &self,
        name: &str,
        type_name: &str,
        session: &ssh2::Session,
        entry: &Entry,
    ) -> SshError {
        // Refused like a changed key: never accepted, never recorded.
        SshError::new(
            SshErrorKind::HostKeyChanged,
            format!(
                "The host key of {name} is REVOKED: the server sent the {type_name} key {fp}, \
                 which {path} line {line} marks as revoked (@revoked). twill never connects \
                 with a revoked host key, whatever accept_new_host_keys or \
                 StrictHostKeyChecking say; the host needs a new key.",
                fp = fingerprint(session),
                path = self.path.display(),
                line = entry.line,
            ),
        )
    }

    fn changed(
        &self,
        name: &str,
        type_name: &str,
        session: &ssh2::Session,
        plain: &[&Entry],
        offending: &[&Entry],
    ) -> SshError {
        let path = self.path.display();
        let lines: Vec<usize> = offending.iter().map(|e| e.line).collect();
        // `ssh-keygen -R` removes every plain line that matches the name;
        // suggest it only when each of those lines is this host's alone.
        // The caller adds the command after the colon (see
        // `SshError::forget`).
        let forget = plain.iter().all(|e| e.hosts.names_one_host());
        let advice = if forget {
            "remove the old entry with this command and connect again:".to_string()
        } else if offending.iter().any(|e| !e.hosts.names_one_host()) {
            format!(
                "edit {} of {path} and connect again: a host pattern or list there stands for \
                 other hosts too, and ssh-keygen -R would remove the whole line with their \
                 entries.",
                lines_phrase(&lines)
            )
        } else {
            let shared: Vec<usize> = plain
                .iter()
                .filter(|e| !e.hosts.names_one_host())
                .map(|e| e.line)
                .collect();
            format!(
                "edit {} of {path} and connect again: ssh-keygen -R would also remove {}, a \
                 host pattern or list that stands for other hosts too.",
                lines_phrase(&lines),
                lines_phrase(&shared)
            )
        };
        let mut error = SshError::new(
            SshErrorKind::HostKeyChanged,
            format!(
                "The host key of {name} has CHANGED: the server sent the {type_name} key {fp}, \
                 which does not match the {type_name} key recorded in {path} ({}). Someone may \
                 be intercepting the connection, or the host key was replaced. If the change \
                 is expected, {advice}",
                lines_phrase(&lines),
                fp = fingerprint(session),
            ),
        );
        if forget {
            error.forget = Some((name.to_string(), self.path.clone()));
        }
        error
    }

    fn unknown(
        &self,
        name: &str,
        type_name: &str,
        session: &ssh2::Session,
        matching: &[&Entry],
    ) -> SshError {
        let path = self.path.display();
        let mut other_types: Vec<&str> = matching
            .iter()
            .filter(|e| e.marker == Marker::None)
            .map(|e| e.key_type.as_str())
            .collect();
        other_types.sort_unstable();
        other_types.dedup();
        let authorities: Vec<usize> = matching
            .iter()
            .filter(|e| e.marker == Marker::CertAuthority)
            .map(|e| e.line)
            .collect();
        let why = if !self.exists {
            format!("the known hosts file {path} does not exist")
        } else if !other_types.is_empty() {
            format!(
                "{path} knows the host only by other key types ({})",
                other_types.join(", ")
            )
        } else if !authorities.is_empty() {
            format!(
                "{path} knows the host only through a certificate authority (@cert-authority, \
                 {}), and twill does not verify host certificates",
                lines_phrase(&authorities)
            )
        } else {
            format!("{path} has no entry for it")
        };
        SshError::new(
            SshErrorKind::HostKeyUnknown,
            format!(
                "The host key of {name} is not known: the server sent the {type_name} key {fp} \
                 and {why}. Turn on the accept_new_host_keys setting to accept and record \
                 unknown host keys, or add the host's key to {path} (for example with \
                 ssh-keyscan).",
                fp = fingerprint(session),
            ),
        )
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
            base64(key)
        );
        f.write_all(line.as_bytes()).map_err(io_err)?;
        Ok(())
    }
}

/// The name known_hosts is searched for, lowercased as OpenSSH does.
fn lookup_name(host: &str, port: u16) -> String {
    host_entry(&host.to_ascii_lowercase(), port)
}

#[cfg(test)]
mod unit {
    use super::*;

    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOpt4rWL4prbwdagnGY2++Fr/usnKIUDCDKV0bnzAJRm";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOoU5Ymg7bbfApgKGyzCWGqZwJJBaZz0wqsV4vI2Gk4qNA2LhMzD8YxeVBS2miCSgFCsOYt7IpUBGCB4C63MpKw=";

    fn line(text: &str) -> Option<Entry> {
        parse_line(1, text)
    }

    #[test]
    fn base64_and_host_entry_match_openssh() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(host_entry("h", 22), "h");
        assert_eq!(host_entry("::1", 2222), "[::1]:2222");
        assert_eq!(lookup_name("Web1.Example", 2222), "[web1.example]:2222");
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(glob(b"127.0.0.1", b"127.0.0.*"));
        assert!(glob(b"127.0.0.", b"127.0.0.*"));
        assert!(!glob(b"127.0.1.1", b"127.0.0.*"));
        assert!(glob(b"web1", b"web?"));
        assert!(!glob(b"web10", b"web?"));
        assert!(glob(b"anything", b"*"));
        assert!(glob(b"", b"*"));
        assert!(!glob(b"", b"?"));
        assert!(glob(b"a.b.example.com", b"*.example.com"));
        assert!(!glob(b"example.com", b"*.example.com"));
        assert!(glob(b"abcabcabd", b"*abd"));
        assert!(glob(b"axxbxxc", b"a*b*c"));
        assert!(!glob(b"axxbxx", b"a*b*c"));
        assert!(glob(b"[127.0.0.5]:2222", b"[127.0.0.*]:2222"));
        assert!(!glob(b"[127.0.0.5]:2223", b"[127.0.0.*]:2222"));
        assert!(!glob(b"127.0.0.5", b"[127.0.0.*]:2222"));
        assert!(glob(b"host", b"host"));
        assert!(!glob(b"host", b"hos"));
        assert!(!glob(b"hos", b"host"));
        // Many stars against a long name stay fast (no exponential search).
        let long = "a".repeat(5000);
        assert!(!glob(long.as_bytes(), b"*a*a*a*a*a*a*a*a*b"));
    }

    #[test]
    fn pattern_lists_honour_negation_and_case() {
        use PatternMatch::*;
        let p = "[127.0.0.*]:2222,![127.0.0.1]:2222";
        assert_eq!(match_pattern_list("[127.0.0.1]:2222", p), Negated);
        assert_eq!(match_pattern_list("[127.0.0.2]:2222", p), Positive);
        assert_eq!(match_pattern_list("[10.0.0.2]:2222", p), None);
        // A negated pattern alone never makes a match.
        assert_eq!(match_pattern_list("web1", "!web2"), None);
        assert_eq!(match_pattern_list("web1", "!web1,web1"), Negated);
        assert_eq!(match_pattern_list("web1", "web1,!web1"), Negated);
        assert_eq!(match_pattern_list("web1", "db,WEB1"), Positive);
        assert_eq!(match_pattern_list("WEB1", "web1"), Positive);
        assert_eq!(match_pattern_list("web1", ""), None);
    }

    #[test]
    fn hashed_names_match_what_ssh_keygen_wrote() {
        // Written by `ssh-keygen -H` for `[127.0.0.1]:2222`.
        let h =
            Hosts::parse("|1|NOhjgJJr3bhQHSHLvtYJUx+qcvg=|xh1VbE90k8pMUfZqKaSH8boZm8w=").unwrap();
        assert!(h.matches("[127.0.0.1]:2222"));
        assert!(!h.matches("[127.0.0.1]:2223"));
        assert!(!h.matches("127.0.0.1"));
        assert!(h.names_one_host());
        // ... and for `web1.example.com`.
        let h =
            Hosts::parse("|1|zfeVXabil9+7vpXQ5sWzmusHP3g=|cDhUCQ8vjFXrJtC+cmecFnDvcgI=").unwrap();
        assert!(h.matches("web1.example.com"));
        assert!(!h.matches("web2.example.com"));
        // Other hash kinds and malformed hashes are not understood.
        assert_eq!(Hosts::parse("|2|NOhjgJJr3bhQHSHLvtYJUx+qcvg=|xh1V"), None);
        assert_eq!(Hosts::parse("|1|c2hvcnQ=|c2hvcnQ="), None);
        assert_eq!(Hosts::parse("|1|not base64!|x"), None);
        assert_eq!(Hosts::parse("|1|NOhjgJJr3bhQHSHLvtYJUx+qcvg="), None);
    }

    #[test]
    fn which_lines_ssh_keygen_removes_alone() {
        let one = |s: &str| Hosts::parse(s).unwrap().names_one_host();
        assert!(one("web1"));
        assert!(one("[127.0.0.1]:2222"));
        assert!(!one("web1,10.0.0.1"));
        assert!(!one("[127.0.0.*]:2222"));
        assert!(!one("web?"));
        assert!(!one("*,!web1"));
    }

    #[test]
    fn lines_parse_like_openssh() {
        let e = line(&format!("web1,web2 ssh-ed25519 {ED25519} a comment")).unwrap();
        assert_eq!(e.marker, Marker::None);
        assert_eq!(e.hosts, Hosts::Patterns("web1,web2".into()));
        assert_eq!(e.key_type, "ssh-ed25519");
        assert_eq!(e.blob.len(), 51);
        let e = line(&format!("  \t@revoked\t* ssh-ed25519 {ED25519}\r")).unwrap();
        assert_eq!(e.marker, Marker::Revoked);
        assert_eq!(e.hosts, Hosts::Patterns("*".into()));
        let e = line(&format!(
            "@cert-authority *.example.com ssh-ed25519 {ED25519}"
        ))
        .unwrap();
        assert_eq!(e.marker, Marker::CertAuthority);
        // Padded and unpadded base64 alike.
        let e = line(&format!("h ecdsa-sha2-nistp256 {ECDSA}")).unwrap();
        assert_eq!(e.key_type, "ecdsa-sha2-nistp256");
        let unpadded = line(&format!(
            "h ecdsa-sha2-nistp256 {}",
            ECDSA.trim_end_matches('=')
        ));
        assert_eq!(unpadded.unwrap().blob, e.blob);

        for skipped in [
            String::new(),
            "   ".into(),
            format!("# h ssh-ed25519 {ED25519}"),
            format!("@unknown h ssh-ed25519 {ED25519}"),
            format!("@revoked @revoked h ssh-ed25519 {ED25519}"),
            "@revoked".into(),
            "h ssh-ed25519".into(),
            "h ssh-ed25519 !!!notbase64".into(),
            // The stated type must be the key's own.
            format!("h ssh-rsa {ED25519}"),
            "h 2048 65537 1234567".into(),
            format!("|1|bad|hash ssh-ed25519 {ED25519}"),
        ] {
            assert!(line(&skipped).is_none(), "{skipped:?}");
        }
    }

    #[test]
    fn lines_are_counted_from_one_and_bad_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let mut text =
            format!("# comment\n\nbroken line\n[127.0.0.*]:2222 ssh-ed25519 {ED25519}\n")
                .into_bytes();
        text.extend_from_slice(b"h\xff ssh-ed25519 x\n");
        text.extend_from_slice(format!("@cert-authority * ssh-ed25519 {ED25519}").as_bytes());
        fs::write(&path, text).unwrap();
        let known = KnownHosts::load(&path).unwrap();
        let lines: Vec<usize> = known.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 6]);
        let found: Vec<usize> = known.matching("[127.0.0.9]:2222").map(|e| e.line).collect();
        assert_eq!(found, [4, 6]);
        assert_eq!(known.matching("127.0.0.9").count(), 1);
        let missing = KnownHosts::load(&dir.path().join("none")).unwrap();
        assert!(!missing.exists && missing.entries.is_empty());
    }

    #[test]
    fn line_lists_read_as_english() {
        assert_eq!(lines_phrase(&[3]), "line 3");
        assert_eq!(lines_phrase(&[3, 7]), "lines 3 and 7");
        assert_eq!(lines_phrase(&[3, 7, 9]), "lines 3, 7 and 9");
    }
}

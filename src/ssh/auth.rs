//! User authentication: explicit key files, ssh-agent, default keys,
//! password; first success wins. Secrets are never logged or put in
//! messages.

use std::path::{Path, PathBuf};

use super::resolve::Resolved;
use super::{codes, hostkey, ConnectOptions, SshError, SshErrorKind};
use crate::sys;

const DEFAULT_KEYS: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

struct Attempts {
    tried: Vec<String>,
    /// Key files given to connect with that could not be used (missing,
    /// unreadable, or not decrypted).
    key_problems: Vec<String>,
}

fn fatal(e: &ssh2::Error, r: &Resolved) -> Option<SshError> {
    if codes::is_timeout(e) {
        return Some(SshError::new(SshErrorKind::Timeout, "timeout"));
    }
    if codes::is_transport_error(e) {
        return Some(SshError::new(
            SshErrorKind::Disconnected,
            format!(
                "Connection to {} was closed during authentication: {}",
                r.name(),
                e.message()
            ),
        ));
    }
    None
}

/// What one authentication attempt came to: `Ok(true)` when the session is
/// now authenticated, `Ok(false)` when the next method may be tried, and
/// an error when the connection itself failed.
fn settled(
    session: &ssh2::Session,
    r: &Resolved,
    attempt: Result<(), ssh2::Error>,
) -> Result<bool, SshError> {
    match attempt {
        Ok(()) => Ok(session.authenticated()),
        Err(e) => fatal(&e, r).map_or(Ok(false), Err),
    }
}

/// The base64 key of `<key>.pub`, if that file exists.
fn public_key_b64(private: &Path) -> Option<String> {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    let text = std::fs::read_to_string(PathBuf::from(p)).ok()?;
    text.split_whitespace().nth(1).map(str::to_string)
}

fn try_key(
    session: &ssh2::Session,
    r: &Resolved,
    key: &Path,
    passphrase: Option<&str>,
    a: &mut Attempts,
) -> Result<bool, SshError> {
    if !key.is_file() {
        a.tried
            .push(format!("publickey {} (file not found)", key.display()));
        a.key_problems
            .push(format!("the key file {} does not exist", key.display()));
        return Ok(false);
    }
    match session.userauth_pubkey_file(&r.user, None, key, passphrase) {
        Ok(()) if session.authenticated() => Ok(true),
        Ok(()) => {
            a.tried.push(format!("publickey {}", key.display()));
            Ok(false)
        }
        Err(e) => {
            if let Some(f) = fatal(&e, r) {
                return Err(f);
            }
            let note = if !codes::is_file_error(&e) {
                ""
            } else if passphrase.is_none() {
                " (could not read the key; it may need a passphrase)"
            } else {
                " (could not read the key; wrong passphrase or unsupported format)"
            };
            if !note.is_empty() {
                a.key_problems.push(format!(
                    "the key file {} could not be used{note}",
                    key.display()
                ));
            }
            a.tried.push(format!("publickey {}{}", key.display(), note));
            Ok(false)
        }
    }
}

fn try_agent(session: &ssh2::Session, r: &Resolved, a: &mut Attempts) -> Result<bool, SshError> {
    let Ok(mut agent) = session.agent() else {
        return Ok(false);
    };
    if agent.connect().is_err() || agent.list_identities().is_err() {
        return Ok(false);
    }
    let identities = agent.identities().unwrap_or_default();
    let allowed: Option<Vec<String>> = if r.identities_only {
        Some(
            r.identity_files
                .iter()
                .filter_map(|k| public_key_b64(k))
                .collect(),
        )
    } else {
        None
    };
    let mut result = Ok(false);
    for id in identities {
        if let Some(allowed) = &allowed {
            if !allowed.contains(&hostkey::base64(id.blob())) {
                continue;
            }
        }
        result = settled(session, r, agent.userauth(&r.user, &id));
        if !matches!(result, Ok(false)) {
            break;
        }
        a.tried.push(format!("publickey agent:{}", id.comment()));
    }
    let _ = agent.disconnect();
    result
}

struct PasswordPrompt<'a>(&'a str);

impl ssh2::KeyboardInteractivePrompt for PasswordPrompt<'_> {
    fn prompt<'b>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[ssh2::Prompt<'b>],
    ) -> Vec<String> {
        prompts.iter().map(|_| self.0.to_string()).collect()
    }
}

/// Authenticates `session` as `r.user`. Order: explicit key files (options,
/// then ssh_config IdentityFile), agent identities, default keys, password.
pub(crate) fn authenticate(
    session: &ssh2::Session,
    r: &Resolved,
    opts: &ConnectOptions,
) -> Result<(), SshError> {
    let methods = match session.auth_methods(&r.user) {
        Ok(m) => m.to_string(),
        Err(e) => {
            if session.authenticated() {
                return Ok(());
            }
            if let Some(f) = fatal(&e, r) {
                return Err(f);
            }
            String::from("publickey,password")
        }
    };
    let allows = |m: &str| methods.split(',').any(|x| x.trim() == m);
    let mut a = Attempts {
        tried: Vec::new(),
        key_problems: Vec::new(),
    };
    let passphrase = opts.key_passphrase.as_deref();

    if allows("publickey") {
        for key in &r.identity_files {
            if try_key(session, r, key, passphrase, &mut a)? {
                return Ok(());
            }
        }
        let agent_wanted = opts.use_agent
            && std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
            && !(r.identities_only && r.identity_files.is_empty());
        if agent_wanted && try_agent(session, r, &mut a)? {
            return Ok(());
        }
        if opts.look_for_keys {
            if let Some(home) = sys::home_dir() {
                for name in DEFAULT_KEYS {
                    let key = home.join(".ssh").join(name);
                    if r.identity_files.contains(&key) || !key.is_file() {
                        continue;
                    }
                    if try_key(session, r, &key, passphrase, &mut a)? {
                        return Ok(());
                    }
                }
            }
        }
    }
    if let Some(pw) = opts.password.as_deref() {
        if allows("password") || !allows("keyboard-interactive") {
            if settled(session, r, session.userauth_password(&r.user, pw))? {
                return Ok(());
            }
            a.tried.push("password".to_string());
        } else {
            let mut p = PasswordPrompt(pw);
            let attempt = session.userauth_keyboard_interactive(&r.user, &mut p);
            if settled(session, r, attempt)? {
                return Ok(());
            }
            a.tried.push("keyboard-interactive (password)".to_string());
        }
    }
    let detail = if a.tried.is_empty() {
        format!("no key, agent identity or password was available to try; the server accepts: {methods}")
    } else {
        format!("tried: {}", a.tried.join(", "))
    };
    if !a.key_problems.is_empty() {
        // Nothing else worked, and a key meant to be used was not: that is
        // the configuration to fix, not the credentials.
        return Err(SshError::new(
            SshErrorKind::KeyFile,
            format!(
                "Authentication failed for {}: {} ({detail})",
                r.name(),
                a.key_problems.join("; ")
            ),
        ));
    }
    Err(SshError::new(
        SshErrorKind::Auth,
        format!("Authentication failed for {} ({detail})", r.name()),
    ))
}

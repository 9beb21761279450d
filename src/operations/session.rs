//! The bridge from the settings to the SSH engine: the current host of an
//! operation (its host string parsed once), the connection options the
//! settings make, the connection itself (asking for a login password at
//! the terminal where one is needed, and whether to trust a host key that
//! known_hosts does not know, as OpenSSH asks), a new one in its place,
//! what an OpenSSH client needs to connect the same way, and engine errors
//! turned
//! into twill's [`Error`].

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::operations::prompt::{self, ask_password, can_ask_at_terminal};
use crate::output::{self, Pipe};
use crate::ssh::{
    self, ConnectOptions, Connection, HostKeyPolicy, SshError, SshErrorKind, Target, UnknownHostKey,
};
use crate::state::{env, set_env, Env, Settings};
use crate::sys::local_user;

/// The host an operation runs on: the host string as written (what
/// messages show) and what it says.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) name: String,
    target: Target,
}

/// How to say that an operation has no host, where a front end (the
/// command line) has words of its own for it; `None`: the library's.
type NoHostWords = fn(&Env, &str) -> String;

static NO_HOST_WORDS: RwLock<Option<NoHostWords>> = RwLock::new(None);

/// Makes an operation without a host say so with `words` (the command
/// line's, naming its flags) until `None` is set again.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn set_no_host_words(words: Option<NoHostWords>) {
    *NO_HOST_WORDS.write() = words;
}

/// The host string in force, parsed, or an error naming the operation
/// (`which`: `run`, `put`, ...).
pub(crate) fn current_host(env: &Env, which: &str) -> Result<Host> {
    let Some(name) = env.host_string() else {
        let message = match *NO_HOST_WORDS.read() {
            Some(words) => words(env, which),
            None => format!(
                "{which}() needs a host: no host_string is set (use Settings::host_string, or run the task with execute on a host list)"
            ),
        };
        return Err(Error::new(ErrorKind::Settings, message));
    };
    let target = Target::try_parse(&name).map_err(|e| ssh_error(e, &name))?;
    Ok(Host {
        name: name.to_string(),
        target,
    })
}

/// The connection for the current host, opened or from the cache. Where
/// the server refuses every credential and a terminal is there, asks for
/// the login password as Fabric does, and keeps it for the run.
pub(crate) fn connection(env: &Env, host: &Host) -> Result<Arc<Connection>> {
    open(env, host, ssh::connect)
}

/// A new connection for the current host in place of the cached one
/// (which is closed), as [`connection`] opens it.
pub(crate) fn reconnection(env: &Env, host: &Host) -> Result<Arc<Connection>> {
    open(env, host, ssh::reconnect)
}

/// What an OpenSSH client needs to reach the current host exactly as twill
/// does (from the same options the settings make for [`connection`]), for
/// `command/` to write as a command line.
pub(crate) fn ssh_client(env: &Env, host: &Host) -> Result<command::SshClient> {
    let (target, opts) = connect_options(env, host);
    let args = ssh::client_args(&target, &opts).map_err(|e| ssh_error(e, &host.name))?;
    Ok(client_words(args))
}

fn client_words(a: ssh::ClientArgs) -> command::SshClient {
    command::SshClient {
        host: a.host,
        port: a.port,
        user: a.user,
        identity_files: a.identity_files,
        identities_only: a.identities_only,
        known_hosts: a.known_hosts,
        accept_new: a.accept_new,
        connect_timeout: a.connect_timeout,
        keepalive: a.keepalive,
        ssh_config: a.ssh_config,
        jumps: a.jumps.into_iter().map(client_words).collect(),
    }
}

type Open = fn(&Target, &ConnectOptions) -> std::result::Result<Arc<Connection>, SshError>;

fn open(env: &Env, host: &Host, how: Open) -> Result<Arc<Connection>> {
    let name = host.name.as_str();
    let (target, mut opts) = connect_options(env, host);
    let mut asked = 0;
    // Keys accepted at the terminal, not yet known to be recorded.
    let mut accepted: Vec<UnknownHostKey> = Vec::new();
    loop {
        let result = how(&target, &opts);
        accepted.retain(|key| {
            let recorded = match &result {
                Ok(_) => true,
                // Authentication comes after the host key check.
                Err(e) => match e.kind {
                    SshErrorKind::Auth | SshErrorKind::KeyFile => true,
                    // A jump host's key passed; the next host's is unknown.
                    SshErrorKind::HostKeyUnknown => {
                        e.unknown_key.as_ref().is_some_and(|k| k.name != key.name)
                    }
                    _ => false,
                },
            };
            if recorded {
                output::emit(
                    Pipe::Err,
                    &format!(
                        "Warning: Permanently added '{}' ({}) to the list of known hosts.\n",
                        key.name,
                        key_type_word(&key.key_type)
                    ),
                );
            }
            !recorded
        });
        match result {
            Err(mut e)
                if e.kind == SshErrorKind::HostKeyUnknown
                    && e.unknown_key
                        .as_ref()
                        .is_some_and(|k| !opts.accept_keys.iter().any(|(n, _)| *n == k.name))
                    && can_ask_at_terminal() =>
            {
                let Some(key) = e.unknown_key.take() else {
                    return Err(ssh_error(e, name));
                };
                if !ask_host_key(&key)? {
                    return Err(Error::new(
                        ErrorKind::HostKey,
                        format!(
                            "Host key verification failed: the {} key {} of {} was not accepted; \
                             nothing was recorded in {}.",
                            key.key_type,
                            key.fingerprint,
                            key.name,
                            key.known_hosts.display()
                        ),
                    )
                    .with_host(name));
                }
                // Once more, accepting this key of this host and no other.
                opts.accept_keys.push((key.name.clone(), key.key.clone()));
                accepted.push(*key);
            }
            Err(e) if e.kind == SshErrorKind::Auth && asked < 3 && can_ask_at_terminal() => {
                // Fabric asks at the terminal, and remembers the answer.
                let user = target.user.as_deref().unwrap_or(&opts.default_user);
                let Some(password) =
                    ask_password(&format!("[{name}] Login password for '{user}': "))?
                else {
                    return Err(ssh_error(e, name));
                };
                remember_password(name, &password);
                opts.password = Some(password);
                asked += 1;
            }
            other => return other.map_err(|e| ssh_error(e, name)),
        }
    }
}

/// The target and the connection options the settings make for `host`.
fn connect_options(env: &Env, host: &Host) -> (Target, ConnectOptions) {
    let name = host.name.as_str();
    let mut target = host.target.clone();
    let default_user = env.user();
    if target.user.is_none() && env.contains("user") && default_user != local_user() {
        // Fabric: an explicitly set user beats ssh_config's User.
        target.user = Some(default_user.clone());
    }
    if target.port.is_none() && env.contains("port") {
        target.port = Some(env.port());
    }
    let full_name = format!(
        "{}@{}:{}",
        target.user.as_deref().unwrap_or(&default_user),
        target.host,
        target.port.unwrap_or(22)
    );
    let passwords = env.passwords();
    let password = passwords
        .get(name)
        .or_else(|| passwords.get(&full_name))
        .cloned()
        .or(env.password());
    let opts = ConnectOptions {
        key_filenames: env.key_filename().iter().map(PathBuf::from).collect(),
        key_passphrase: env.key_passphrase(),
        password,
        use_agent: !env.no_agent(),
        look_for_keys: !env.no_keys(),
        known_hosts: env.known_hosts().map(PathBuf::from),
        host_key_policy: if env.accept_new_host_keys() {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        accept_keys: Vec::new(),
        connect_timeout: env.timeout(),
        connection_attempts: env.connection_attempts().max(1),
        // Unset, ssh_config's ServerAliveInterval/CountMax apply first.
        keepalive: env.contains("keepalive").then(|| env.keepalive()),
        keepalive_count: env
            .contains("keepalive_count")
            .then(|| env.keepalive_count()),
        use_ssh_config: env.use_ssh_config(),
        ssh_config_path: env.ssh_config_path().map(PathBuf::from),
        gateway: env.gateway(),
        default_user,
    };
    (target, opts)
}

/// Asks at the terminal whether to trust a host key known_hosts does not
/// know, with OpenSSH's words.
fn ask_host_key(key: &UnknownHostKey) -> Result<bool> {
    let question = format!(
        "The authenticity of host '{name}' can't be established.\n\
         {kind} key fingerprint is {fp}.\n\
         Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
        name = key.name,
        kind = key_type_word(&key.key_type),
        fp = key.fingerprint,
    );
    prompt::ask_host_key(&question, &key.fingerprint)
}

/// How OpenSSH names a key type in its messages (`ED25519`, `RSA`).
fn key_type_word(key_type: &str) -> &'static str {
    match key_type {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        "ssh-dss" => "DSA",
        t if t.starts_with("ecdsa-") => "ECDSA",
        _ => "UNKNOWN",
    }
}

/// Keeps a password typed at the terminal for the rest of the run, as
/// Fabric does: the `password` setting and this host's entry in
/// `passwords`.
pub(crate) fn remember_password(host: &str, password: &str) {
    let mut passwords = env().passwords();
    passwords.insert(host.to_string(), password.to_string());
    set_env(
        Settings::new()
            .password(password.to_string())
            .passwords(passwords),
    );
}

/// A remote command's engine failure as twill's error: a command that ran
/// past `timeout` in Fabric's words, with the output it gave so far
/// (`output`, asked for only then); anything else as [`ssh_error`], with
/// the command. `which` names the operation (`run`, `sudo`, `pipe`).
pub(crate) fn exec_error(
    e: SshError,
    which: &str,
    host: &str,
    command: &str,
    timeout: Option<std::time::Duration>,
    output: impl FnOnce() -> crate::result::Output,
) -> Error {
    if e.kind != SshErrorKind::Timeout {
        return ssh_error(e, host).with_command(command);
    }
    let secs = timeout.map(crate::sys::seconds).unwrap_or_default();
    Error::new(
        ErrorKind::Timeout,
        format!("{which}() timed out: command failed to finish in {secs} seconds while executing '{command}'"),
    )
    .with_host(host)
    .with_output(output())
}

/// Turns an engine error into twill's error for `host`.
pub(crate) fn ssh_error(e: SshError, host: &str) -> Error {
    let kind = match e.kind {
        SshErrorKind::Resolve | SshErrorKind::Connect => ErrorKind::Connect,
        SshErrorKind::Timeout => ErrorKind::Timeout,
        SshErrorKind::Auth => ErrorKind::Auth,
        SshErrorKind::KeyFile => ErrorKind::KeyFile,
        SshErrorKind::HostKeyUnknown | SshErrorKind::HostKeyChanged => ErrorKind::HostKey,
        SshErrorKind::Disconnected => ErrorKind::Disconnected,
        SshErrorKind::Sftp | SshErrorKind::NoSftp | SshErrorKind::Scp => ErrorKind::Transfer,
        SshErrorKind::Io => ErrorKind::Io,
        SshErrorKind::Config => ErrorKind::Settings,
        SshErrorKind::Interrupted => ErrorKind::Interrupted,
    };
    let mut message = e.message.clone();
    if let Some((name, file)) = &e.forget {
        // The engine names the fix; the command for it is shell text.
        message.push(' ');
        message.push_str(&command::forget_host_key(name, file));
    }
    Error::new(kind, message).with_host(host).with_source(e)
}

//! The built-in keys, each declared once: its name, its kind of value and
//! its default. From that one line come the builder on [`Settings`], the
//! getter on [`Env`], the typed [`Key`] and the entry that checks and
//! parses a value given with [`Settings::set`] or [`Settings::set_str`]
//! (`--set key=value`). How text becomes a value is the business of one
//! [`SettingValue`] implementation per value type.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use std::borrow::Cow;

use super::levels::{Group, Levels};
use super::value::{any, Edit, Env, PathBehavior, Secret, SecretMap, Settings, Value};
use crate::error::{Error, ErrorKind, Result};

/// A built-in setting: its name, and the type of value it holds, which
/// its builder puts ([`Settings::put_key`]) and its getter reads
/// ([`Env::read`]), so that the two cannot disagree.
pub(crate) struct Key<T> {
    pub(crate) name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    const fn new(name: &'static str) -> Key<T> {
        Key {
            name,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl Settings {
    /// Sets the built-in `key` to a value of its type.
    fn put_key<T: Value>(self, key: Key<T>, value: T) -> Settings {
        self.put(key.name, value)
    }
}

impl Env {
    /// The value of the built-in `key`, if set.
    fn read<T: Value>(&self, key: Key<T>) -> Option<&T> {
        self.get_ref::<T>(key.name)
    }
}

/// A type a built-in setting holds: how it reads from text.
pub(crate) trait SettingValue: Value + Clone {
    /// What the value is, for messages ("a boolean (true/false)").
    const WHAT: &'static str;
    /// Whether the setting is made only with its own method on
    /// [`Settings`], never from text.
    const OWN_METHOD: bool = false;
    /// The value `text` stands for, if any.
    fn parse(text: &str) -> Option<Self>;
}

impl SettingValue for bool {
    const WHAT: &'static str = "a boolean (true/false)";
    fn parse(text: &str) -> Option<bool> {
        crate::sys::parse_bool(text)
    }
}

impl SettingValue for String {
    const WHAT: &'static str = "a string";
    fn parse(text: &str) -> Option<String> {
        Some(text.to_string())
    }
}

impl SettingValue for Secret {
    const WHAT: &'static str = "a string";
    fn parse(text: &str) -> Option<Secret> {
        Some(Secret(text.to_string()))
    }
}

impl SettingValue for Vec<String> {
    const WHAT: &'static str = "a list of strings";
    fn parse(text: &str) -> Option<Vec<String>> {
        Some(split_list(text))
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            const WHAT: &'static str = concat!("a number (", stringify!($t), ")");
            fn parse(text: &str) -> Option<$t> {
                text.trim().parse().ok()
            }
        }
    )*};
}
numbers!(u16, u32, usize);

impl SettingValue for Duration {
    const WHAT: &'static str = "a number of seconds";
    fn parse(text: &str) -> Option<Duration> {
        let secs: f64 = text.trim().parse().ok()?;
        Duration::try_from_secs_f64(secs).ok()
    }
}

impl SettingValue for Vec<i32> {
    const WHAT: &'static str = "a list of exit codes";
    fn parse(text: &str) -> Option<Vec<i32>> {
        split_list(text).iter().map(|c| c.parse().ok()).collect()
    }
}

impl SettingValue for PathBehavior {
    const WHAT: &'static str = "append, prepend or replace";
    fn parse(text: &str) -> Option<PathBehavior> {
        match text {
            "append" => Some(PathBehavior::Append),
            "prepend" => Some(PathBehavior::Prepend),
            "replace" => Some(PathBehavior::Replace),
            _ => None,
        }
    }
}

macro_rules! own_method {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            const WHAT: &'static str = "a value made by its own method";
            const OWN_METHOD: bool = true;
            fn parse(_: &str) -> Option<$t> {
                None
            }
        }
    )*};
}
own_method!(
    Levels,
    Vec<(String, String)>,
    BTreeMap<String, Vec<String>>,
    SecretMap
);

/// `a, b ,c` as `["a", "b", "c"]`, empty parts left out.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// A value given for a built-in key of type `T`: one of `T` is kept, text
/// is parsed, anything else is an error naming the key and the type.
fn check<T: SettingValue>(key: &str, value: Arc<dyn Value>) -> Result<Arc<dyn Value>, String> {
    if any(&value).is::<T>() {
        return Ok(value);
    }
    if T::OWN_METHOD {
        return Err(format!(
            "setting `{key}` has its own method on Settings; it cannot be set from a plain value"
        ));
    }
    any(&value)
        .downcast_ref::<String>()
        .and_then(|text| T::parse(text))
        .map(|v| Arc::new(v) as Arc<dyn Value>)
        .ok_or_else(|| format!("setting `{key}` takes {}, not {value:?}", T::WHAT))
}

/// The stored type of each kind of key.
macro_rules! stored {
    (bool) => { bool };
    (text) => { String };
    (secret) => { Secret };
    (list) => { Vec<String> };
    (u16) => { u16 };
    (u32) => { u32 };
    (usize) => { usize };
    (seconds) => { Duration };
    (codes) => { Vec<i32> };
    (behavior) => { PathBehavior };
    (levels) => { Levels };
    (pairs) => { Vec<(String, String)> };
    (roles) => { BTreeMap<String, Vec<String>> };
    (secrets) => { SecretMap };
}

/// The builder a kind of key gets on [`Settings`].
macro_rules! builder {
    ($(#[$doc:meta])* bool $name:ident) => {
        $(#[$doc])* pub fn $name(self, value: bool) -> Settings {
            self.put_key(key::$name, value)
        }
    };
    ($(#[$doc:meta])* text $name:ident) => {
        $(#[$doc])* pub fn $name(self, value: impl Into<String>) -> Settings {
            self.put_key(key::$name, value.into())
        }
    };
    ($(#[$doc:meta])* secret $name:ident) => {
        $(#[$doc])* pub fn $name(self, value: impl Into<String>) -> Settings {
            self.put_key(key::$name, Secret(value.into()))
        }
    };
    ($(#[$doc:meta])* list $name:ident) => {
        $(#[$doc])* pub fn $name<S: Into<String>>(self, values: impl IntoIterator<Item = S>) -> Settings {
            self.put_key(key::$name, values.into_iter().map(Into::into).collect::<Vec<String>>())
        }
    };
    ($(#[$doc:meta])* seconds $name:ident) => {
        $(#[$doc])* pub fn $name(self, value: Duration) -> Settings {
            self.put_key(key::$name, value)
        }
    };
    ($(#[$doc:meta])* $number:ident $name:ident) => {
        $(#[$doc])* pub fn $name(self, value: stored!($number)) -> Settings {
            self.put_key(key::$name, value)
        }
    };
}

/// The getter a kind of key gets on [`Env`]: the value, else the default;
/// without a default, `None` when unset.
macro_rules! getter {
    ($(#[$doc:meta])* text $name:ident = $default:expr) => {
        $(#[$doc])* pub fn $name(&self) -> String {
            self.read(key::$name).map_or($default, String::as_str).to_string()
        }
    };
    ($(#[$doc:meta])* text $name:ident) => {
        $(#[$doc])* pub fn $name(&self) -> Option<String> {
            self.read(key::$name).cloned()
        }
    };
    ($(#[$doc:meta])* secret $name:ident) => {
        $(#[$doc])* pub fn $name(&self) -> Option<String> {
            self.read(key::$name).map(|s| s.0.clone())
        }
    };
    ($(#[$doc:meta])* list $name:ident) => {
        $(#[$doc])* pub fn $name(&self) -> Vec<String> {
            self.read(key::$name).cloned().unwrap_or_default()
        }
    };
    ($(#[$doc:meta])* $kind:ident $name:ident = $default:expr) => {
        $(#[$doc])* pub fn $name(&self) -> stored!($kind) {
            self.read(key::$name).copied().unwrap_or($default)
        }
    };
    ($(#[$doc:meta])* $kind:ident $name:ident) => {
        $(#[$doc])* pub fn $name(&self) -> Option<stored!($kind)> {
            self.read(key::$name).copied()
        }
    };
}

/// The table of built-in keys. `keys` have their builder and getter made
/// here; `custom` keys have methods of their own (in `value.rs`) and are
/// listed so that `set`/`set_str` check them like the others.
macro_rules! table {
    (
        keys { $( $(#[$doc:meta])* $name:ident : $kind:ident $(= $default:expr)? ; )* }
        custom { $( $(#[$cdoc:meta])* $cname:ident : $ckind:ident ; )* }
    ) => {
        /// The built-in keys, typed.
        #[allow(non_upper_case_globals)]
        pub(crate) mod key {
            use super::*;
            $( pub(crate) const $name: Key<stored!($kind)> = Key::new(stringify!($name)); )*
            $( pub(crate) const $cname: Key<stored!($ckind)> = Key::new(stringify!($cname)); )*
        }

        impl Settings {
            $( builder!($(#[$doc])* $kind $name); )*
        }

        impl Env {
            $( getter!($(#[$doc])* $kind $name $(= $default)?); )*
        }

        /// Checks a value given for `key` against the type of a built-in
        /// key, parsing text; other keys take any value.
        pub(super) fn check_builtin(key: &str, value: Arc<dyn Value>) -> Result<Arc<dyn Value>, String> {
            match key {
                $( stringify!($name) => check::<stored!($kind)>(key, value), )*
                $( stringify!($cname) => check::<stored!($ckind)>(key, value), )*
                _ => Ok(value),
            }
        }
    };
}

table! {
    keys {
        /// Failures of commands only warn and return `Ok` (default false).
        warn_only: bool = false;
        /// Every prompt is an error instead of reading standard input (default false).
        abort_on_prompts: bool = false;
        /// Questions take their default without asking, printed with the
        /// answer taken; one without a default is an error (default false).
        non_interactive: bool = false;
        /// Wrap remote commands in `shell` (default true).
        use_shell: bool = true;
        /// Escape `"`, `$` and `` ` `` when wrapping in `shell` (default true).
        shell_escape: bool = true;
        /// Merge stderr into stdout (default true).
        combine_stderr: bool = true;
        /// Request a pty for remote commands (default true).
        always_use_pty: bool = true;
        /// Echo what is typed for a remote command without a pty (default true).
        echo_stdin: bool = true;
        /// Ctrl-C goes to the remote program as a key (with a pty) instead of stopping the command; unset: only in [`open_shell`](crate::open_shell).
        remote_interrupt: bool;
        /// Run tasks on all hosts in parallel (default false).
        parallel: bool = false;
        /// Connection failures become per-host results instead of aborting (default false).
        skip_bad_hosts: bool = false;
        /// Prefix output lines with `[host] out: ` (default true).
        output_prefix: bool = true;
        /// A parallel run shows the live per-host view (a full-screen
        /// table of hosts and the chosen host's output) instead of
        /// Fabric's lines; unset: when standard input and output are a
        /// terminal (`--live`, `--linewise`).
        live: bool;
        /// Inside tmux, a parallel run opens one pane per running host,
        /// streaming its output, whose keys reach the host's remote
        /// program; the first pane shows the summary (default false;
        /// `--panes`).
        panes: bool = false;
        /// A finished host's pane stays open with its outcome, instead of
        /// closing on a key (default false; `--keep-panes`).
        keep_panes: bool = false;
        /// Accept and record host keys that are not in known_hosts yet (default
        /// false). A changed key is refused whatever this says.
        accept_new_host_keys: bool = false;
        /// Read `~/.ssh/config` (default true): Host aliases, HostName, User,
        /// Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
        /// StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval,
        /// ServerAliveCountMax, ProxyJump, Ciphers and MACs.
        use_ssh_config: bool = true;
        /// Do not use the ssh-agent (default false).
        no_agent: bool = false;
        /// Do not try the default keys in `~/.ssh` (default false).
        no_keys: bool = false;
        /// Close connections after each host (default false).
        eagerly_disconnect: bool = false;
        /// Remove duplicate hosts from host lists (default true).
        dedupe_hosts: bool = true;
        /// Write a journal of each run of the command line's tasks, and of
        /// each [`record_run`](crate::events::record_run) (default true;
        /// `--no-journal`).
        journal: bool = true;
        /// Keep at most this many runs in the journal directory; older ones
        /// are removed as a new run starts (default 500).
        journal_keep: usize = 500;
        /// Remove runs older than this from the journal directory as a new
        /// run starts; zero keeps them (default 90 days).
        journal_max_age: seconds = Duration::from_secs(90 * 24 * 3600);
        /// How long a file of a transfer moves before its progress bar
        /// shows (default 0.5 s): a file that takes less never shows one.
        /// Bars are drawn only at a terminal, under the `running` group.
        progress_delay: seconds = Duration::from_millis(500);
        /// Colour `Fatal error` and `Warning` lines; when unset, colour only on a terminal.
        colorize_errors: bool = false;
        /// A dry run (default false; the command line's `--dry-run`):
        /// nothing connects and nothing runs. [`run`](crate::run),
        /// [`sudo`](crate::sudo), [`local`](crate::local), the transfers,
        /// [`open_shell`](crate::open_shell), [`reboot`](crate::reboot) and
        /// what is built on them print their usual line, then, whatever
        /// the output groups say, what would really be done:
        /// `[web1] would run: /bin/bash -l -c "cd /srv && make"` (sudo's
        /// too, with the `sudo_prompt` setting as its prompt),
        /// `[localhost] would run locally: ...`, `[web1] would put: <local>
        /// -> <remote> (<N> bytes)`, `[web1] would get: <remote> ->
        /// <local>`. Every command then counts as a success with exit code
        /// 0 and no output; `put` returns the remote paths it would write
        /// and `get` the local ones, where they can be known without the
        /// host. A remote command for bash (the `shell` setting) is checked
        /// with the local `bash -n` where there is one: a syntax error is
        /// reported, and the command fails with bash's exit code (2), as
        /// it would on the host, so the dry run stops where the real run
        /// would.
        ///
        /// So a dry run shows the commands a task reaches when every
        /// command succeeds and prints nothing. It cannot show a branch
        /// taken on real output or on the state of a host (a check such as
        /// `exists()` or `contains()` counts as true), what a command would
        /// print, or a failure other than bad syntax. A remote path is
        /// shown as given (`~` unexpanded, a target directory only when
        /// the path ends with `/`), and a download of a glob cannot name
        /// its local files.
        dry_run: bool = false;
        /// The shell wrapper for remote commands (default `/bin/bash -l -c`).
        shell: text = "/bin/bash -l -c";
        /// The prompt sudo is told to print (default `sudo password:`).
        sudo_prompt: text = "sudo password:";
        /// The sudo prefix, `%(sudo_prompt)s` interpolated (default `sudo -S -p '%(sudo_prompt)s' `).
        sudo_prefix: text = "sudo -S -p '%(sudo_prompt)s' ";
        /// The remote working directory, as built by [`cd`](crate::cd) (default empty).
        cwd: text = "";
        /// The local working directory, as built by [`lcd`](crate::lcd) (default empty).
        lcwd: text = "";
        /// The current host, exactly as written in the host list.
        host_string: text;
        /// The host name of the current host (informational).
        host: text;
        /// The user for [`sudo`](crate::sudo) when none is given.
        sudo_user: text;
        /// A jump host (`[user@]host[:port]`) for every connection.
        gateway: text;
        /// The known_hosts file (default: ssh_config's, else `~/.ssh/known_hosts`).
        known_hosts: text;
        /// The ssh_config file (default `~/.ssh/config`).
        ssh_config_path: text;
        /// Where journals are written and read (default
        /// `$XDG_STATE_HOME/twill/runs`, else `~/.local/state/twill/runs`;
        /// `--journal-dir`).
        journal_dir: text;
        /// The name of the running task (informational).
        command: text;
        /// The login password, also used for sudo prompts. Never printed.
        password: secret;
        /// The sudo password, preferred over `password` for sudo. Never printed.
        sudo_password: secret;
        /// The passphrase of encrypted key files. Never printed.
        key_passphrase: secret;
        /// Private key files to authenticate with.
        key_filename: list;
        /// Commands run before each command, from [`prefix`](crate::prefix).
        command_prefixes: list;
        /// The host list of the run (`-H`).
        hosts: list;
        /// The roles of the run (`-R`).
        roles: list;
        /// Hosts to leave out (`-x`).
        exclude_hosts: list;
        /// When set, a task with hosts runs only on those of them in this
        /// list, and is skipped where none is (`--retry-failed` sets it to
        /// the hosts to retry).
        only_hosts: list;
        /// The SSH port when the host string has none (default 22).
        port: u16 = 22;
        /// Parallel pool size; 0 means one worker per host (default 0).
        pool_size: usize = 0;
        /// How many times to try connecting (default 1).
        connection_attempts: u32 = 1;
        /// How many keepalive intervals a server may stay silent before
        /// the connection is given up (default: ssh_config
        /// `ServerAliveCountMax`, else 3).
        keepalive_count: u32 = 3;
        /// Connect timeout, per attempt (default 10 s).
        timeout: seconds = Duration::from_secs(10);
        /// Keepalive interval: while waiting for a server, twill sends a
        /// keepalive request after this much silence, and gives the
        /// connection up when `keepalive_count` intervals pass without an
        /// answer, so a dead or cut-off server ends a command or transfer
        /// instead of hanging it. Zero turns keepalives off (default:
        /// ssh_config `ServerAliveInterval`, else 15 s).
        keepalive: seconds = Duration::from_secs(15);
        /// The longest a command may run (default: no limit).
        command_timeout: seconds;
    }
    custom {
        /// The user to log in as ([`Settings::user`], [`Env::user`]).
        user: text;
        /// The `PATH` addition of [`path`](crate::path).
        path: text;
        /// How the `PATH` addition applies.
        path_behavior: behavior;
        /// Exit codes that count as success ([`Settings::ok_ret_codes`]).
        ok_ret_codes: codes;
        /// The output groups shown ([`Settings::hide`], [`Settings::show`]).
        output: levels;
        /// Exported variables ([`Settings::shell_env`]).
        shell_env: pairs;
        /// Role definitions ([`Settings::roledefs`]).
        roledefs: roles;
        /// Passwords per host ([`Settings::passwords`]).
        passwords: secrets;
        /// Replies to prompts ([`Settings::prompts`]).
        prompts: pairs;
    }
}

/// The built-in keys with methods of their own, and `set`/`set_str`.
impl Settings {
    /// The user to log in as (default: the local user name).
    pub fn user(self, user: impl Into<String>) -> Settings {
        self.put_key(key::user, user.into())
    }

    /// Sets a key of your own (or a built-in key, with its own type), to
    /// text, a number, a flag, a duration, a path, a list of strings or a
    /// map of strings: what Fabric scripts keep in `env`. Text of any
    /// lifetime is taken (and kept as a `String`). Values of a type of your
    /// own go in with [`Settings::set_value`]. Read them back with
    /// [`Env::get`] or [`Env::get_str`].
    ///
    /// # Panics
    /// If `key` is a built-in setting and `value` is not of its type (or a
    /// string that parses as it); use [`Settings::set_str`] to handle such
    /// input as an error.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// fn stage(name: &str) -> Settings {
    ///     Settings::new().set("stage", name).set("replicas", 3).set("hosts_file", "/etc/hosts")
    /// }
    /// with_settings(stage("production"), || {
    ///     assert_eq!(env().get_str("stage").as_deref(), Some("production"));
    ///     assert_eq!(env().get::<i32>("replicas"), Some(3));
    ///     assert_eq!(env().get::<u32>("stage"), None); // wrong type reads as absent
    /// });
    /// ```
    pub fn set(self, key: impl Into<String>, value: impl Into<SetValue>) -> Settings {
        self.put_checked(key.into(), value.into().0)
    }

    /// Sets a key of your own to a value of any `Debug + Send + Sync` type.
    ///
    /// # Panics
    /// As [`Settings::set`], for a built-in key and a value not of its type.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct Release { version: u32 }
    ///
    /// with_settings(Settings::new().set_value("release", Release { version: 3 }), || {
    ///     assert_eq!(env().get::<Release>("release"), Some(Release { version: 3 }));
    /// });
    /// ```
    pub fn set_value<V: Value + Clone>(self, key: impl Into<String>, value: V) -> Settings {
        let value: Arc<dyn Value> = match value.as_any().downcast_ref::<&str>() {
            Some(s) => Arc::new(s.to_string()),
            None => Arc::new(value),
        };
        self.put_checked(key.into(), value)
    }

    fn put_checked(self, key: String, value: Arc<dyn Value>) -> Settings {
        let value = match check_builtin(&key, value) {
            Ok(v) => v,
            Err(msg) => panic!("{msg}"),
        };
        self.edit(Edit::Put(Cow::Owned(key), value))
    }

    /// `roledefs` one role at a time: the hosts of `role`, any iterable of
    /// host strings, replacing what the role had.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// let s = Settings::new().role("web", ["web1", "web2"]).role("db", ["db1"]);
    /// with_settings(s, || assert_eq!(env().roledefs()["web"], ["web1", "web2"]));
    /// ```
    pub fn role<S: Into<String>>(
        self,
        role: impl Into<String>,
        hosts: impl IntoIterator<Item = S>,
    ) -> Settings {
        self.edit(Edit::Role {
            key: key::roledefs.name,
            role: role.into(),
            hosts: hosts.into_iter().map(Into::into).collect(),
        })
    }

    /// Sets `key` from text, as `--set key=value` on the command line does:
    /// built-in settings are parsed to their type (an error names the key
    /// and the expected type), other keys are stored as `String`.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// let s = Settings::new().set_str("warn_only", "true")?.set_str("port", "2222")?;
    /// with_settings(s, || assert!(env().warn_only() && env().port() == 2222));
    /// assert!(Settings::new().set_str("port", "http").is_err());
    /// # Ok::<(), twill::Error>(())
    /// ```
    pub fn set_str(self, key: &str, value: &str) -> Result<Settings> {
        let parsed = check_builtin(key, Arc::new(value.to_string()))
            .map_err(|msg| Error::new(ErrorKind::Settings, msg))?;
        Ok(self.edit(Edit::Put(Cow::Owned(key.to_string()), parsed)))
    }

    /// `cd(path)`: the remote working directory. A relative path is joined
    /// onto the current one; a path starting with `/` or `~` replaces it.
    /// The path is kept as given; it is written into commands by the rule
    /// [`cd`](crate::cd) describes.
    #[doc(alias = "rcd")]
    pub fn cd(self, path: impl Into<String>) -> Settings {
        self.edit(Edit::ChangeDir {
            key: key::cwd.name,
            path: path.into(),
        })
    }

    /// `lcd(path)`: the local working directory for [`local`](crate::local)
    /// and relative local paths of transfers. The process's own directory is
    /// never changed.
    pub fn lcd(self, path: impl Into<String>) -> Settings {
        self.edit(Edit::ChangeDir {
            key: key::lcwd.name,
            path: path.into(),
        })
    }

    /// `prefix(command)`: run `command && ` before every remote and local
    /// command in the scope. Nested prefixes chain in order.
    pub fn prefix(self, command: impl Into<String>) -> Settings {
        self.edit(Edit::Prefix {
            key: key::command_prefixes.name,
            command: command.into(),
        })
    }

    /// `path(path, behavior)`: change `PATH` for the commands in the scope.
    pub fn path(self, path: impl Into<String>, behavior: PathBehavior) -> Settings {
        self.put_key(key::path, path.into())
            .put_key(key::path_behavior, behavior)
    }

    /// `shell_env(K=V, ...)`: export these variables before every command.
    /// Like Fabric, it replaces an outer `shell_env` rather than merging.
    pub fn shell_env<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Settings
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.put_key(key::shell_env, vars)
    }

    /// `hide(groups)`: hide output groups (comma or space separated):
    /// `status`, `aborts`, `warnings`, `running`, `stdout`, `stderr`,
    /// `user`, `debug`, `exceptions`, and the aliases `output`,
    /// `everything` and `commands`.
    ///
    /// # Panics
    /// On an unknown group name.
    pub fn hide(self, groups: &str) -> Settings {
        self.set_levels(groups, false)
    }

    /// `show(groups)`: show output groups; names as for [`hide`](Settings::hide).
    ///
    /// # Panics
    /// On an unknown group name.
    pub fn show(self, groups: &str) -> Settings {
        self.set_levels(groups, true)
    }

    fn set_levels(self, groups: &str, on: bool) -> Settings {
        let groups = match Group::parse_list(groups) {
            Ok(g) => g,
            Err(msg) => panic!("{msg}"),
        };
        self.edit(Edit::Levels {
            key: key::output.name,
            groups,
            on,
        })
    }

    /// `quiet()`: hide everything and only warn on failure.
    pub fn quiet(self) -> Settings {
        self.hide("everything").warn_only(true)
    }

    /// The exit codes that count as success (default `[0]`).
    pub fn ok_ret_codes(self, codes: impl IntoIterator<Item = i32>) -> Settings {
        self.put_key(key::ok_ret_codes, codes.into_iter().collect())
    }

    /// Role definitions: role name to host strings.
    pub fn roledefs<R, H, S>(self, roles: impl IntoIterator<Item = (R, H)>) -> Settings
    where
        R: Into<String>,
        H: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let map: BTreeMap<String, Vec<String>> = roles
            .into_iter()
            .map(|(r, h)| (r.into(), h.into_iter().map(Into::into).collect()))
            .collect();
        self.put_key(key::roledefs, map)
    }

    /// Login and sudo passwords per host, keyed by `user@host:port` (or the
    /// host string as written).
    pub fn passwords<K: Into<String>, V: Into<String>>(
        self,
        passwords: impl IntoIterator<Item = (K, V)>,
    ) -> Settings {
        let map: BTreeMap<String, String> = passwords
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.put_key(key::passwords, SecretMap(map))
    }

    /// Replies to send when output ends with a given text (Fabric's
    /// `env.prompts`): `expected suffix -> response`.
    pub fn prompts<K: Into<String>, V: Into<String>>(
        self,
        prompts: impl IntoIterator<Item = (K, V)>,
    ) -> Settings {
        let list: Vec<(String, String)> = prompts
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.put_key(key::prompts, list)
    }
}

/// The getters of the built-in keys with methods of their own.
impl Env {
    /// Whether an output group is shown (see [`Settings::hide`]). An unknown
    /// name reads as hidden.
    pub fn shown(&self, group: &str) -> bool {
        match Group::parse_list(group) {
            Ok(groups) => groups.iter().all(|g| self.levels().get(*g)),
            Err(_) => false,
        }
    }

    pub(crate) fn levels(&self) -> Levels {
        self.read(key::output).copied().unwrap_or_default()
    }

    /// The user to log in as: from `user`, else the local user name.
    pub fn user(&self) -> String {
        match self.read(key::user).cloned() {
            Some(u) => u,
            None => crate::sys::local_user(),
        }
    }

    /// The `PATH` addition of [`path`](crate::path) (default empty).
    pub fn path(&self) -> String {
        self.read(key::path).cloned().unwrap_or_default()
    }

    /// How the [`path`](crate::path) addition applies.
    pub fn path_behavior(&self) -> PathBehavior {
        self.read(key::path_behavior).copied().unwrap_or_default()
    }

    /// Exported variables from [`shell_env`](crate::shell_env), in order.
    pub fn shell_env(&self) -> Vec<(String, String)> {
        self.read(key::shell_env).cloned().unwrap_or_default()
    }

    /// Exit codes that count as success.
    pub fn ok_ret_codes(&self) -> Vec<i32> {
        self.read(key::ok_ret_codes)
            .cloned()
            .unwrap_or_else(|| vec![0])
    }

    /// Role definitions.
    pub fn roledefs(&self) -> BTreeMap<String, Vec<String>> {
        self.read(key::roledefs).cloned().unwrap_or_default()
    }

    /// Per-host passwords.
    pub(crate) fn passwords(&self) -> BTreeMap<String, String> {
        self.read(key::passwords)
            .cloned()
            .map(|s| s.0)
            .unwrap_or_default()
    }

    /// Replies to prompts seen in output: `(expected suffix, response)`.
    pub fn prompts(&self) -> Vec<(String, String)> {
        self.read(key::prompts).cloned().unwrap_or_default()
    }
}

/// What [`Settings::set`] takes: text (of any lifetime), numbers, flags,
/// durations, paths, lists and maps of strings. Values of a type of your
/// own go in with [`Settings::set_value`].
#[derive(Debug, Clone)]
pub struct SetValue(Arc<dyn Value>);

macro_rules! set_value_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl From<$t> for SetValue {
            fn from($v: $t) -> SetValue {
                SetValue(Arc::new($e))
            }
        }
    )*};
}

set_value_from! {
    String => |v| v;
    &str => |v| v.to_string();
    &String => |v| v.clone();
    Box<str> => |v| v.into_string();
    std::borrow::Cow<'_, str> => |v| v.into_owned();
    char => |v| v.to_string();
    bool => |v| v;
    i8 => |v| v;
    i16 => |v| v;
    i32 => |v| v;
    i64 => |v| v;
    i128 => |v| v;
    isize => |v| v;
    u8 => |v| v;
    u16 => |v| v;
    u32 => |v| v;
    u64 => |v| v;
    u128 => |v| v;
    usize => |v| v;
    f32 => |v| v;
    f64 => |v| v;
    Duration => |v| v;
    std::path::PathBuf => |v| v;
    &std::path::Path => |v| v.to_path_buf();
    Vec<String> => |v| v;
    Vec<&str> => |v| v.into_iter().map(String::from).collect::<Vec<String>>();
    &[&str] => |v| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    Vec<i32> => |v| v;
    BTreeMap<String, String> => |v| v;
    std::collections::HashMap<String, String> => |v| v;
}

impl<const N: usize> From<[&str; N]> for SetValue {
    fn from(v: [&str; N]) -> SetValue {
        SetValue(Arc::new(
            v.iter().map(|s| s.to_string()).collect::<Vec<String>>(),
        ))
    }
}

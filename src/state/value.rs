//! The value store: [`Settings`] (a list of edits, as data) and [`Env`]
//! (the effective settings, an immutable map), the values they hold, and
//! the secrets they never show.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::keys::{check_builtin, key};
use super::levels::{Group, Levels};
use super::{settings, SettingsGuard};
use crate::error::{Error, ErrorKind, Result};

/// A value that can live in the settings: any `'static` type that is
/// `Debug + Send + Sync`. Implemented for all such types.
pub trait Value: Any + fmt::Debug + Send + Sync {
    #[doc(hidden)]
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + fmt::Debug + Send + Sync> Value for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) type Map = BTreeMap<String, Arc<dyn Value>>;

/// The stored value as `Any`. (Calling `as_any` on the `Arc` itself would
/// find the blanket impl for `Arc<dyn Value>` and hide the real type.)
pub(super) fn any(v: &Arc<dyn Value>) -> &dyn Any {
    (**v).as_any()
}

/// How [`path`](crate::path) changes `PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PathBehavior {
    /// `PATH=$PATH:"<path>"` (the default).
    #[default]
    Append,
    /// `PATH="<path>":$PATH`.
    Prepend,
    /// `PATH="<path>"`.
    Replace,
}

/// A password, kept out of `Debug` output and logs.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// Passwords by host, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretMap(pub(crate) BTreeMap<String, String>);

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "********")))
            .finish()
    }
}

/// One change a scope makes to the settings, applied when it is entered.
/// A reader (and `Debug`) sees what a scope does.
#[derive(Clone, Debug)]
pub(super) enum Edit {
    /// Sets a key (every builder, [`Settings::set`]).
    Put(Cow<'static, str>, Arc<dyn Value>),
    /// Removes a key, so that it reads as its default.
    Unset(String),
    /// `cd`/`lcd`: a relative path joined onto the current directory, an
    /// absolute or `~` path in its place.
    ChangeDir { key: &'static str, path: String },
    /// `prefix`: one more command run before every command.
    Prefix(String),
    /// `hide`/`show`: output groups off or on.
    Levels { groups: Vec<Group>, on: bool },
}

impl Edit {
    fn apply(&self, m: &mut Map) {
        match self {
            Edit::Put(key, value) => {
                m.insert(key.to_string(), value.clone());
            }
            Edit::Unset(key) => {
                m.remove(key);
            }
            Edit::ChangeDir { key, path } => {
                let current = get_ref::<String>(m, key).cloned().unwrap_or_default();
                let new = if !current.is_empty() && !path.starts_with('/') && !path.starts_with('~')
                {
                    format!("{}/{path}", current.trim_end_matches('/'))
                } else {
                    path.clone()
                };
                m.insert(key.to_string(), Arc::new(new));
            }
            Edit::Prefix(command) => {
                let mut list = get_ref::<Vec<String>>(m, key::command_prefixes.name)
                    .cloned()
                    .unwrap_or_default();
                list.push(command.clone());
                m.insert(key::command_prefixes.name.into(), Arc::new(list));
            }
            Edit::Levels { groups, on } => {
                let mut levels = get_ref::<Levels>(m, key::output.name)
                    .copied()
                    .unwrap_or_default();
                for g in groups {
                    levels.set(*g, *on);
                }
                m.insert(key::output.name.into(), Arc::new(levels));
            }
        }
    }
}

fn get_ref<'m, T: Any>(m: &'m Map, key: &str) -> Option<&'m T> {
    m.get(key).and_then(|v| any(v).downcast_ref::<T>())
}

/// A set of settings to apply in a scope, built like Fabric's
/// `settings(warn_only=True, user='deploy')`.
///
/// Each method records an edit; the edits are applied in order, to the
/// settings current at the moment the scope is entered. That is why
/// [`cd`](Settings::cd) and [`prefix`](Settings::prefix) nest the way
/// Fabric's context managers do.
///
/// ```
/// use twill::{env, with_settings, Settings};
///
/// let s = Settings::new().warn_only(true).user("deploy").set("branch", "main");
/// with_settings(s, || {
///     assert!(env().warn_only());
///     assert_eq!(env().user(), "deploy");
///     assert_eq!(env().get_str("branch"), Some("main"));
/// });
/// assert!(!env().warn_only());
/// assert_eq!(env().get_str("branch"), None);
/// ```
#[derive(Clone, Default)]
#[must_use = "a Settings value does nothing until it is entered with with_settings() or settings()"]
pub struct Settings {
    edits: Vec<Edit>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.edits).finish()
    }
}

/// The effective settings at one moment: Fabric's `env`, read-only.
///
/// Get the current one with [`env()`](crate::env). It is a cheap,
/// immutable snapshot (`Clone` shares it), `Send` and `Sync`, so it can be
/// handed to another thread and [installed](Env::install) there.
#[derive(Clone)]
pub struct Env {
    map: Arc<Map>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

impl Settings {
    /// An empty set of settings: entering it changes nothing.
    pub fn new() -> Settings {
        Settings::default()
    }

    fn edit(mut self, edit: Edit) -> Self {
        self.edits.push(edit);
        self
    }

    /// Sets a built-in key to a value of its own type.
    pub(super) fn put(self, key: &'static str, value: impl Value) -> Self {
        self.edit(Edit::Put(Cow::Borrowed(key), Arc::new(value)))
    }

    /// Applies these edits to `base` and returns the result.
    pub(crate) fn apply_to(&self, base: &Env) -> Env {
        if self.edits.is_empty() {
            return base.clone();
        }
        let mut map = (*base.map).clone();
        for e in &self.edits {
            e.apply(&mut map);
        }
        Env { map: Arc::new(map) }
    }

    /// The user to log in as (default: the local user name).
    pub fn user(self, user: impl Into<String>) -> Settings {
        self.put(key::user.name, user.into())
    }

    /// Appends all edits of `other` after these.
    pub fn merge(mut self, other: Settings) -> Settings {
        self.edits.extend(other.edits);
        self
    }

    /// Enters these settings; the same as [`settings(self)`](crate::settings).
    pub fn enter(self) -> SettingsGuard {
        settings(self)
    }

    /// Sets a key of your own (or a built-in key, with its own type).
    ///
    /// Fabric scripts keep their configuration in `env`; so can twill
    /// scripts, with values of any `Debug + Send + Sync` type. String
    /// slices are stored as `String`. Read them back with [`Env::get`] or
    /// [`Env::get_str`].
    ///
    /// # Panics
    /// If `key` is a built-in setting and `value` is not of its type (or a
    /// string that parses as it); use [`Settings::set_str`] to handle such
    /// input as an error.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct Release { version: u32 }
    ///
    /// with_settings(Settings::new().set("release", Release { version: 3 }).set("root", "/srv/app"), || {
    ///     assert_eq!(env().get::<Release>("release"), Some(Release { version: 3 }));
    ///     assert_eq!(env().get_str("root"), Some("/srv/app"));
    ///     assert_eq!(env().get::<u32>("root"), None); // wrong type reads as absent
    /// });
    /// ```
    pub fn set<V: Value + Clone>(self, key: impl Into<String>, value: V) -> Settings {
        let key = key.into();
        let value: Arc<dyn Value> = match value.as_any().downcast_ref::<&str>() {
            Some(s) => Arc::new(s.to_string()),
            None => Arc::new(value),
        };
        let value = match check_builtin(&key, value) {
            Ok(v) => v,
            Err(msg) => panic!("{msg}"),
        };
        self.edit(Edit::Put(Cow::Owned(key), value))
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

    /// Removes `key` in the scope, so that it reads as its default.
    pub fn unset(self, key: impl Into<String>) -> Settings {
        self.edit(Edit::Unset(key.into()))
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
        self.edit(Edit::Prefix(command.into()))
    }

    /// `path(path, behavior)`: change `PATH` for the commands in the scope.
    pub fn path(self, path: impl Into<String>, behavior: PathBehavior) -> Settings {
        self.put(key::path.name, path.into())
            .put(key::path_behavior.name, behavior)
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
        self.put(key::shell_env.name, vars)
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
        self.edit(Edit::Levels { groups, on })
    }

    /// `quiet()`: hide everything and only warn on failure.
    pub fn quiet(self) -> Settings {
        self.hide("everything").warn_only(true)
    }

    /// The exit codes that count as success (default `[0]`).
    pub fn ok_ret_codes(self, codes: impl IntoIterator<Item = i32>) -> Settings {
        self.put(
            key::ok_ret_codes.name,
            codes.into_iter().collect::<Vec<i32>>(),
        )
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
        self.put(key::roledefs.name, map)
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
        self.put(key::passwords.name, SecretMap(map))
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
        self.put(key::prompts.name, list)
    }
}

impl Env {
    pub(super) fn empty() -> Env {
        Env {
            map: Arc::new(Map::new()),
        }
    }

    /// Makes this snapshot the settings of the current thread until the
    /// returned guard is dropped. This is how settings reach another thread:
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// with_settings(Settings::new().user("deploy"), || {
    ///     let snapshot = env();
    ///     std::thread::spawn(move || {
    ///         assert_ne!(env().user(), "deploy"); // a new thread starts from the defaults
    ///         let _g = snapshot.install();
    ///         assert_eq!(env().user(), "deploy");
    ///     }).join().unwrap();
    /// });
    /// ```
    pub fn install(self) -> SettingsGuard {
        super::push(self)
    }

    /// A value of your own type stored with [`Settings::set`], if present
    /// and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.get_ref::<T>(key).cloned()
    }

    /// A reference to a stored value, if present and of type `T`.
    pub fn get_ref<T: Any>(&self, key: &str) -> Option<&T> {
        get_ref(&self.map, key)
    }

    /// A stored string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get_ref::<String>(key).map(String::as_str)
    }

    /// Whether `key` is set in these settings (defaults do not count).
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The keys that are set, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Whether an output group is shown (see [`Settings::hide`]). An unknown
    /// name reads as hidden.
    pub fn shown(&self, group: &str) -> bool {
        match Group::parse_list(group) {
            Ok(groups) => groups.iter().all(|g| self.levels().get(*g)),
            Err(_) => false,
        }
    }

    pub(crate) fn levels(&self) -> Levels {
        self.get_ref::<Levels>(key::output.name)
            .copied()
            .unwrap_or_default()
    }

    /// The user to log in as: from `user`, else the local user name.
    pub fn user(&self) -> String {
        match self.get_str(key::user.name) {
            Some(u) => u.to_string(),
            None => local_user(),
        }
    }

    /// The `PATH` addition of [`path`](crate::path) (default empty).
    pub fn path(&self) -> &str {
        self.get_str(key::path.name).unwrap_or("")
    }

    /// How the [`path`](crate::path) addition applies.
    pub fn path_behavior(&self) -> PathBehavior {
        self.get_ref::<PathBehavior>(key::path_behavior.name)
            .copied()
            .unwrap_or_default()
    }

    /// Exported variables from [`shell_env`](crate::shell_env), in order.
    pub fn shell_env(&self) -> &[(String, String)] {
        self.get_ref::<Vec<(String, String)>>(key::shell_env.name)
            .map_or(&[], Vec::as_slice)
    }

    /// Exit codes that count as success.
    pub fn ok_ret_codes(&self) -> &[i32] {
        self.get_ref::<Vec<i32>>(key::ok_ret_codes.name)
            .map_or(&[0], Vec::as_slice)
    }

    /// Role definitions.
    pub fn roledefs(&self) -> BTreeMap<String, Vec<String>> {
        self.get::<BTreeMap<String, Vec<String>>>(key::roledefs.name)
            .unwrap_or_default()
    }

    /// Per-host passwords.
    pub(crate) fn passwords(&self) -> BTreeMap<String, String> {
        self.get::<SecretMap>(key::passwords.name)
            .map(|s| s.0)
            .unwrap_or_default()
    }

    /// Replies to prompts seen in output: `(expected suffix, response)`.
    pub fn prompts(&self) -> &[(String, String)] {
        self.get_ref::<Vec<(String, String)>>(key::prompts.name)
            .map_or(&[], Vec::as_slice)
    }
}

/// The local user's login name.
pub(crate) fn local_user() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the name
    // is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".to_string()
}

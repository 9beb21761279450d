//! The settings stack: Fabric's `env` and `settings(...)`, per thread.
//!
//! Three layers give a setting its value, the first that has it wins:
//! 1. an explicit argument of an operation (e.g. [`LocalOptions::warn_only`](crate::LocalOptions::warn_only));
//! 2. the innermost scope opened with [`with_settings`] or [`settings`] on this thread;
//! 3. the process-wide defaults of [`set_defaults`], then twill's built-in defaults.
//!
//! A scope is a [`Settings`] value: an ordered list of edits applied to the
//! current [`Env`] when the scope is entered. Leaving the scope, by return,
//! `?` or panic, puts back exactly the `Env` that was there before.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;
use parking_lot::RwLock;

use crate::error::{Error, ErrorKind, Result};
use crate::output::{Group, Levels};
pub(crate) use crate::sys::local_user;

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

type Map = BTreeMap<String, Arc<dyn Value>>;

/// The stored value as `Any`. (Calling `as_any` on the `Arc` itself would
/// find the blanket impl for `Arc<dyn Value>` and hide the real type.)
fn any(v: &Arc<dyn Value>) -> &dyn Any {
    (**v).as_any()
}
type EditFn = Arc<dyn Fn(&mut Map) + Send + Sync>;

#[derive(Clone)]
struct Edit {
    what: String,
    apply: EditFn,
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

/// The effective settings at one moment: Fabric's `env`, read-only.
///
/// Get the current one with [`env()`]. It is a cheap, immutable snapshot
/// (`Clone` shares it), `Send` and `Sync`, so it can be handed to another
/// thread and [installed](Env::install) there.
#[derive(Clone)]
pub struct Env {
    map: Arc<Map>,
}

static DEFAULTS: Lazy<RwLock<Env>> = Lazy::new(|| RwLock::new(Env::empty()));

struct Frame {
    env: Env,
    cleanups: Vec<Box<dyn FnOnce()>>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// The settings in force on this thread now.
///
/// ```
/// assert_eq!(twill::env().shell(), "/bin/bash -l -c");
/// ```
pub fn env() -> Env {
    STACK
        .with(|s| s.borrow().last().map(|f| f.env.clone()))
        .unwrap_or_else(|| DEFAULTS.read().clone())
}

/// Enters a scope with `settings` applied on top of the current ones and
/// returns a guard; dropping the guard leaves the scope.
///
/// Bind the guard to a named variable (`let _g = ...`): `let _ = ...` drops
/// it at once. Dropping a guard while scopes opened after it are still open
/// closes those too, so the settings are always exactly what they were
/// before this scope.
///
/// ```
/// use twill::{env, settings, Settings};
///
/// {
///     let _g = settings(Settings::new().warn_only(true));
///     assert!(env().warn_only());
/// }
/// assert!(!env().warn_only());
/// ```
pub fn settings(settings: Settings) -> SettingsGuard {
    let next = settings.apply_to(&env());
    push(next)
}

/// Runs `f` with `settings` applied on top of the current ones, then puts
/// the previous settings back, also when `f` returns early or panics.
///
/// ```
/// use twill::{env, with_settings, Settings};
///
/// let r: twill::Result<()> = with_settings(Settings::new().user("web"), || {
///     assert_eq!(env().user(), "web");
///     with_settings(Settings::new().user("db"), || assert_eq!(env().user(), "db"));
///     assert_eq!(env().user(), "web");
///     Err(twill::abort("stop here"))
/// });
/// assert!(r.is_err());
/// assert_ne!(env().user(), "web");
/// ```
pub fn with_settings<R>(settings: Settings, f: impl FnOnce() -> R) -> R {
    let _guard = crate::state::settings(settings);
    f()
}

/// Registers `f` to run when the innermost scope of this thread exits.
///
/// Cleanups of one scope run in registration order, before its settings
/// are restored; a scope never runs its parent's cleanups. Outside any
/// scope this is an error of kind [`ErrorKind::Settings`].
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use twill::{add_cleanup, with_settings, Settings};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// with_settings(Settings::new(), move || {
///     let (a, b) = (l.clone(), l.clone());
///     add_cleanup(move || a.borrow_mut().push(1)).unwrap();
///     add_cleanup(move || b.borrow_mut().push(2)).unwrap();
/// });
/// assert_eq!(*log.borrow(), [1, 2]);
/// assert!(add_cleanup(|| ()).is_err());
/// ```
pub fn add_cleanup(f: impl FnOnce() + 'static) -> Result<()> {
    STACK.with(|s| match s.borrow_mut().last_mut() {
        Some(frame) => {
            frame.cleanups.push(Box::new(f));
            Ok(())
        }
        None => Err(Error::new(
            ErrorKind::Settings,
            "add_cleanup() needs a settings scope: call it inside with_settings() or while a settings() guard is alive",
        )),
    })
}

/// Sets the process-wide defaults that every thread's settings start from,
/// replacing earlier defaults.
///
/// It must be called outside any scope: inside one it returns an error of
/// kind [`ErrorKind::Settings`] and changes nothing. Scopes already open on
/// other threads keep what they had.
///
/// ```
/// use twill::{env, set_defaults, with_settings, Settings};
///
/// set_defaults(Settings::new().user("deploy")).unwrap();
/// assert_eq!(env().user(), "deploy");
/// with_settings(Settings::new(), || {
///     assert!(set_defaults(Settings::new()).is_err());
/// });
/// # set_defaults(Settings::new()).unwrap();
/// ```
pub fn set_defaults(settings: Settings) -> Result<()> {
    if depth() > 0 {
        return Err(Error::new(
            ErrorKind::Settings,
            "refusing to set process-wide defaults inside a settings scope; call set_defaults() before entering any scope",
        ));
    }
    *DEFAULTS.write() = settings.apply_to(&Env::empty());
    Ok(())
}

/// Changes the settings for the rest of the run, the way assigning to
/// Fabric's `env` does: the process-wide defaults and every scope open on
/// this thread get `settings` applied, so the change outlives the scope it
/// was made in.
///
/// This is how a task such as `production` chooses the hosts of the tasks
/// that follow it on the command line (`fab production deploy`). In a
/// parallel worker, the change stays in that worker.
///
/// ```
/// use twill::{env, set_env, with_settings, Settings};
///
/// with_settings(Settings::new().warn_only(true), || {
///     set_env(Settings::new().set("stage", "production"));
/// });
/// assert_eq!(env().get_str("stage"), Some("production"));
/// # twill::set_defaults(Settings::new()).unwrap();
/// ```
pub fn set_env(settings: Settings) {
    {
        let mut defaults = DEFAULTS.write();
        *defaults = settings.apply_to(&defaults);
    }
    STACK.with(|s| {
        for frame in s.borrow_mut().iter_mut() {
            frame.env = settings.apply_to(&frame.env);
        }
    });
}

/// How many scopes are open on this thread.
pub(crate) fn depth() -> usize {
    STACK.with(|s| s.borrow().len())
}

fn push(env: Env) -> SettingsGuard {
    let depth = STACK.with(|s| {
        let mut s = s.borrow_mut();
        s.push(Frame {
            env,
            cleanups: Vec::new(),
        });
        s.len()
    });
    SettingsGuard {
        depth,
        _not_send: PhantomData,
    }
}

/// Closes scopes until `depth` remain, running each one's cleanups first.
fn pop_to(depth: usize) {
    let mut panic = None;
    loop {
        let cleanups = STACK.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() <= depth {
                None
            } else {
                Some(std::mem::take(&mut s.last_mut().unwrap().cleanups))
            }
        });
        let Some(cleanups) = cleanups else { break };
        for f in cleanups {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                panic.get_or_insert(p);
            }
        }
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            // A cleanup may have opened and closed scopes of its own; only
            // the frame this iteration ran for is removed.
            if s.len() > depth {
                s.pop();
            }
        });
    }
    if let Some(p) = panic {
        if !std::thread::panicking() {
            std::panic::resume_unwind(p);
        }
    }
}

/// Keeps a settings scope open; dropping it restores the settings that
/// were in force before the scope, and runs the scope's cleanups.
///
/// It is neither `Send` nor `Sync`: a scope belongs to its thread.
#[must_use = "the scope ends when the guard is dropped; bind it with `let _g = ...`"]
pub struct SettingsGuard {
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for SettingsGuard {
    fn drop(&mut self) {
        pop_to(self.depth - 1);
    }
}

impl fmt::Debug for SettingsGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsGuard")
            .field("depth", &self.depth)
            .finish()
    }
}

impl Settings {
    /// An empty set of settings: entering it changes nothing.
    pub fn new() -> Settings {
        Settings::default()
    }

    fn edit(mut self, what: String, apply: impl Fn(&mut Map) + Send + Sync + 'static) -> Self {
        self.edits.push(Edit {
            what,
            apply: Arc::new(apply),
        });
        self
    }

    fn put(self, key: &'static str, value: impl Value + Clone) -> Self {
        let what = format!("{key}={value:?}");
        self.edit(what, move |m| {
            m.insert(key.to_string(), Arc::new(value.clone()));
        })
    }

    /// Applies these edits to `base` and returns the result.
    pub(crate) fn apply_to(&self, base: &Env) -> Env {
        if self.edits.is_empty() {
            return base.clone();
        }
        let mut map = (*base.map).clone();
        for e in &self.edits {
            (e.apply)(&mut map);
        }
        Env { map: Arc::new(map) }
    }

    /// The user to log in as (default: the local user name).
    pub fn user(self, user: impl Into<String>) -> Settings {
        self.put("user", user.into())
    }

    /// Appends all edits of `other` after these.
    pub fn merge(mut self, other: Settings) -> Settings {
        self.edits.extend(other.edits);
        self
    }

    /// Enters these settings; the same as [`settings(self)`](settings).
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
        let what = format!("{key}={value:?}");
        self.edit(what, move |m| {
            m.insert(key.clone(), value.clone());
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
        let key = key.to_string();
        let what = format!("{key}={parsed:?}");
        Ok(self.edit(what, move |m| {
            m.insert(key.clone(), parsed.clone());
        }))
    }

    /// Removes `key` in the scope, so that it reads as its default.
    pub fn unset(self, key: impl Into<String>) -> Settings {
        let key = key.into();
        self.edit(format!("unset {key}"), move |m| {
            m.remove(&key);
        })
    }

    /// `cd(path)`: the remote working directory. A relative path is joined
    /// onto the current one; a path starting with `/` or `~` replaces it.
    /// The path is kept as given; it is written into commands by the rule
    /// [`cd`](crate::cd) describes.
    #[doc(alias = "rcd")]
    pub fn cd(self, path: impl Into<String>) -> Settings {
        self.change_dir("cwd", path.into())
    }

    /// `lcd(path)`: the local working directory for [`local`](crate::local)
    /// and relative local paths of transfers. The process's own directory is
    /// never changed.
    pub fn lcd(self, path: impl Into<String>) -> Settings {
        self.change_dir("lcwd", path.into())
    }

    fn change_dir(self, key: &'static str, path: String) -> Settings {
        let what = format!("{key} += {path:?}");
        self.edit(what, move |m| {
            let current = get_string(m, key).unwrap_or_default();
            let new = if !current.is_empty() && !path.starts_with('/') && !path.starts_with('~') {
                format!("{}/{path}", current.trim_end_matches('/'))
            } else {
                path.clone()
            };
            m.insert(key.to_string(), Arc::new(new));
        })
    }

    /// `prefix(command)`: run `command && ` before every remote and local
    /// command in the scope. Nested prefixes chain in order.
    pub fn prefix(self, command: impl Into<String>) -> Settings {
        let command = command.into();
        self.edit(format!("prefix {command:?}"), move |m| {
            let mut list = get_list(m, "command_prefixes");
            list.push(command.clone());
            m.insert("command_prefixes".into(), Arc::new(list));
        })
    }

    /// `path(path, behavior)`: change `PATH` for the commands in the scope.
    pub fn path(self, path: impl Into<String>, behavior: PathBehavior) -> Settings {
        self.put("path", path.into()).put("path_behavior", behavior)
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
        self.put("shell_env", vars)
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
        let what = format!("{} {groups:?}", if on { "show" } else { "hide" });
        self.edit(what, move |m| {
            let mut levels = get_levels(m);
            for g in &groups {
                levels.set(*g, on);
            }
            m.insert("output".into(), Arc::new(levels));
        })
    }

    /// `quiet()`: hide everything and only warn on failure.
    pub fn quiet(self) -> Settings {
        self.hide("everything").warn_only(true)
    }

    /// The exit codes that count as success (default `[0]`).
    pub fn ok_ret_codes(self, codes: impl IntoIterator<Item = i32>) -> Settings {
        self.put("ok_ret_codes", codes.into_iter().collect::<Vec<i32>>())
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
        self.put("roledefs", map)
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
        self.put("passwords", SecretMap(map))
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
        self.put("prompts", list)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.edits.iter().map(|e| &e.what))
            .finish()
    }
}

/// A password, kept out of `Debug` output and logs.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretMap(pub(crate) BTreeMap<String, String>);

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "********")))
            .finish()
    }
}

fn get_string(m: &Map, key: &str) -> Option<String> {
    m.get(key)
        .and_then(|v| any(v).downcast_ref::<String>())
        .cloned()
}

fn get_list(m: &Map, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(|v| any(v).downcast_ref::<Vec<String>>())
        .cloned()
        .unwrap_or_default()
}

fn get_levels(m: &Map) -> Levels {
    m.get("output")
        .and_then(|v| any(v).downcast_ref::<Levels>())
        .copied()
        .unwrap_or_default()
}

impl Env {
    fn empty() -> Env {
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
        push(self)
    }

    /// A value of your own type stored with [`Settings::set`], if present
    /// and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.get_ref::<T>(key).cloned()
    }

    /// A reference to a stored value, if present and of type `T`.
    pub fn get_ref<T: Any>(&self, key: &str) -> Option<&T> {
        self.map.get(key).and_then(|v| any(v).downcast_ref::<T>())
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

    fn flag(&self, key: &str, default: bool) -> bool {
        self.get_ref::<bool>(key).copied().unwrap_or(default)
    }

    fn text(&self, key: &str, default: &'static str) -> &str {
        self.get_str(key).unwrap_or(default)
    }

    fn list(&self, key: &str) -> &[String] {
        self.get_ref::<Vec<String>>(key).map_or(&[], Vec::as_slice)
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
        get_levels(&self.map)
    }

    /// The user to log in as: from `user`, else the local user name.
    pub fn user(&self) -> String {
        match self.get_str("user") {
            Some(u) => u.to_string(),
            None => local_user(),
        }
    }

    /// The `PATH` addition of [`path`](crate::path) (default empty).
    pub fn path(&self) -> &str {
        self.text("path", "")
    }

    /// How the [`path`](crate::path) addition applies.
    pub fn path_behavior(&self) -> PathBehavior {
        self.get_ref::<PathBehavior>("path_behavior")
            .copied()
            .unwrap_or_default()
    }

    /// Exported variables from [`shell_env`](crate::shell_env), in order.
    pub fn shell_env(&self) -> &[(String, String)] {
        self.get_ref::<Vec<(String, String)>>("shell_env")
            .map_or(&[], Vec::as_slice)
    }

    /// Exit codes that count as success.
    pub fn ok_ret_codes(&self) -> &[i32] {
        self.get_ref::<Vec<i32>>("ok_ret_codes")
            .map_or(&[0], Vec::as_slice)
    }

    /// Role definitions.
    pub fn roledefs(&self) -> BTreeMap<String, Vec<String>> {
        self.get::<BTreeMap<String, Vec<String>>>("roledefs")
            .unwrap_or_default()
    }

    /// Per-host passwords.
    pub(crate) fn passwords(&self) -> BTreeMap<String, String> {
        self.get::<SecretMap>("passwords")
            .map(|s| s.0)
            .unwrap_or_default()
    }

    /// Replies to prompts seen in output: `(expected suffix, response)`.
    pub fn prompts(&self) -> &[(String, String)] {
        self.get_ref::<Vec<(String, String)>>("prompts")
            .map_or(&[], Vec::as_slice)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

// ---------------------------------------------------------------------------
// Built-in keys: one line each gives the builder method on `Settings`, the
// getter on `Env`, and the parsing used by `Settings::set_str`.

macro_rules! builtin_keys {
    (
        flags { $( $(#[$fd:meta])* $fname:ident = $fdef:expr; )* }
        texts { $( $(#[$td:meta])* $tname:ident = $tdef:expr; )* }
        opt_texts { $( $(#[$od:meta])* $oname:ident; )* }
        secrets { $( $(#[$sd:meta])* $sname:ident; )* }
        lists { $( $(#[$ld:meta])* $lname:ident; )* }
        numbers { $( $(#[$nd:meta])* $nname:ident : $nty:ty = $ndef:expr; )* }
        durations { $( $(#[$dd:meta])* $dname:ident = $ddef:expr; )* }
        opt_durations { $( $(#[$odd:meta])* $odname:ident; )* }
    ) => {
        impl Settings {
            $( $(#[$fd])* pub fn $fname(self, value: bool) -> Settings { self.put(stringify!($fname), value) } )*
            $( $(#[$td])* pub fn $tname(self, value: impl Into<String>) -> Settings { self.put(stringify!($tname), value.into()) } )*
            $( $(#[$od])* pub fn $oname(self, value: impl Into<String>) -> Settings { self.put(stringify!($oname), value.into()) } )*
            $( $(#[$sd])* pub fn $sname(self, value: impl Into<String>) -> Settings {
                let secret = Secret(value.into());
                self.edit(format!("{}={:?}", stringify!($sname), secret), move |m| {
                    m.insert(stringify!($sname).into(), Arc::new(secret.clone()));
                })
            } )*
            $( $(#[$ld])* pub fn $lname<S: Into<String>>(self, values: impl IntoIterator<Item = S>) -> Settings {
                self.put(stringify!($lname), values.into_iter().map(Into::into).collect::<Vec<String>>())
            } )*
            $( $(#[$nd])* pub fn $nname(self, value: $nty) -> Settings { self.put(stringify!($nname), value) } )*
            $( $(#[$dd])* pub fn $dname(self, value: Duration) -> Settings { self.put(stringify!($dname), value) } )*
            $( $(#[$odd])* pub fn $odname(self, value: Duration) -> Settings { self.put(stringify!($odname), value) } )*
        }

        impl Env {
            $( $(#[$fd])* pub fn $fname(&self) -> bool { self.flag(stringify!($fname), $fdef) } )*
            $( $(#[$td])* pub fn $tname(&self) -> &str { self.text(stringify!($tname), $tdef) } )*
            $( $(#[$od])* pub fn $oname(&self) -> Option<&str> { self.get_str(stringify!($oname)) } )*
            $( $(#[$sd])* pub fn $sname(&self) -> Option<&str> { self.get_ref::<Secret>(stringify!($sname)).map(|s| s.0.as_str()) } )*
            $( $(#[$ld])* pub fn $lname(&self) -> &[String] { self.list(stringify!($lname)) } )*
            $( $(#[$nd])* pub fn $nname(&self) -> $nty { self.get_ref::<$nty>(stringify!($nname)).copied().unwrap_or($ndef) } )*
            $( $(#[$dd])* pub fn $dname(&self) -> Duration { self.get_ref::<Duration>(stringify!($dname)).copied().unwrap_or($ddef) } )*
            $( $(#[$odd])* pub fn $odname(&self) -> Option<Duration> { self.get_ref::<Duration>(stringify!($odname)).copied() } )*
        }

        /// Checks a value given for `key` against the type of a built-in key,
        /// parsing strings where the key is not a string key.
        fn check_builtin(key: &str, value: Arc<dyn Value>) -> std::result::Result<Arc<dyn Value>, String> {
            let text = any(&value).downcast_ref::<String>().cloned();
            fn wrong(key: &str, ty: &str, value: &dyn Value) -> String {
                format!("setting `{key}` takes {ty}, not {value:?}")
            }
            match key {
                $( stringify!($fname) => {
                    if any(&value).is::<bool>() { return Ok(value) }
                    match text.as_deref().map(parse_bool) {
                        Some(Some(b)) => Ok(Arc::new(b)),
                        _ => Err(wrong(key, "a boolean (true/false)", &*value)),
                    }
                } )*
                $( stringify!($tname) )|* $( | stringify!($oname) )* => {
                    if text.is_some() { Ok(value) } else { Err(wrong(key, "a string", &*value)) }
                }
                $( stringify!($sname) )|* => {
                    if any(&value).is::<Secret>() { return Ok(value) }
                    match text {
                        Some(t) => Ok(Arc::new(Secret(t))),
                        None => Err(format!("setting `{key}` takes a string")),
                    }
                }
                $( stringify!($lname) )|* => {
                    if any(&value).is::<Vec<String>>() { return Ok(value) }
                    match text {
                        Some(t) => Ok(Arc::new(split_list(&t))),
                        None => Err(wrong(key, "a list of strings", &*value)),
                    }
                }
                $( stringify!($nname) => {
                    if any(&value).is::<$nty>() { return Ok(value) }
                    match text.as_deref().map(|t| t.trim().parse::<$nty>()) {
                        Some(Ok(n)) => Ok(Arc::new(n)),
                        _ => Err(wrong(key, concat!("a number (", stringify!($nty), ")"), &*value)),
                    }
                } )*
                $( stringify!($dname) )|* $( | stringify!($odname) )* => {
                    if any(&value).is::<Duration>() { return Ok(value) }
                    match text.as_deref().map(parse_seconds) {
                        Some(Some(d)) => Ok(Arc::new(d)),
                        _ => Err(wrong(key, "a number of seconds", &*value)),
                    }
                }
                "ok_ret_codes" => {
                    if any(&value).is::<Vec<i32>>() { return Ok(value) }
                    let parsed: Option<Vec<i32>> = text.as_deref().map(|t| {
                        split_list(t).iter().map(|c| c.parse::<i32>().ok()).collect()
                    }).flatten();
                    parsed.map(|v| Arc::new(v) as Arc<dyn Value>).ok_or_else(|| wrong(key, "a list of exit codes", &*value))
                }
                "path_behavior" => {
                    if any(&value).is::<PathBehavior>() { return Ok(value) }
                    match text.as_deref() {
                        Some("append") => Ok(Arc::new(PathBehavior::Append)),
                        Some("prepend") => Ok(Arc::new(PathBehavior::Prepend)),
                        Some("replace") => Ok(Arc::new(PathBehavior::Replace)),
                        _ => Err(wrong(key, "append, prepend or replace", &*value)),
                    }
                }
                "path" | "user" => if text.is_some() { Ok(value) } else { Err(wrong(key, "a string", &*value)) },
                "output" | "shell_env" | "roledefs" | "passwords" | "prompts" => {
                    Err(format!("setting `{key}` has its own method on Settings; it cannot be set from a plain value"))
                }
                _ => Ok(value),
            }
        }
    };
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

fn parse_seconds(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

builtin_keys! {
    flags {
        /// Failures of commands only warn and return `Ok` (default false).
        warn_only = false;
        /// Every prompt is an error instead of reading standard input (default false).
        abort_on_prompts = false;
        /// Wrap remote commands in `shell` (default true).
        use_shell = true;
        /// Escape `"`, `$` and `` ` `` when wrapping in `shell` (default true).
        shell_escape = true;
        /// Merge stderr into stdout (default true).
        combine_stderr = true;
        /// Request a pty for remote commands (default true).
        always_use_pty = true;
        /// Run tasks on all hosts in parallel (default false).
        parallel = false;
        /// Print output line by line rather than as it arrives (default false).
        linewise = false;
        /// Connection failures become per-host results instead of aborting (default false).
        skip_bad_hosts = false;
        /// Prefix output lines with `[host] out: ` (default true).
        output_prefix = true;
        /// Accept and record host keys that are not in known_hosts yet (default
        /// false). A changed key is refused whatever this says.
        accept_new_host_keys = false;
        /// Read `~/.ssh/config` (default true): Host aliases, HostName, User,
        /// Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
        /// StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval,
        /// ProxyJump, Ciphers and MACs.
        use_ssh_config = true;
        /// Do not use the ssh-agent (default false).
        no_agent = false;
        /// Do not try the default keys in `~/.ssh` (default false).
        no_keys = false;
        /// Close connections after each host (default false).
        eagerly_disconnect = false;
        /// Remove duplicate hosts from host lists (default true).
        dedupe_hosts = true;
        /// Colour `Fatal error` and `Warning` lines; when unset, colour only on a terminal.
        colorize_errors = false;
    }
    texts {
        /// The shell wrapper for remote commands (default `/bin/bash -l -c`).
        shell = "/bin/bash -l -c";
        /// The prompt sudo is told to print (default `sudo password:`).
        sudo_prompt = "sudo password:";
        /// The sudo prefix, `%(sudo_prompt)s` interpolated (default `sudo -S -p '%(sudo_prompt)s' `).
        sudo_prefix = "sudo -S -p '%(sudo_prompt)s' ";
        /// The remote working directory, as built by [`cd`](crate::cd) (default empty).
        cwd = "";
        /// The local working directory, as built by [`lcd`](crate::lcd) (default empty).
        lcwd = "";
    }
    opt_texts {
        /// The current host, exactly as written in the host list.
        host_string;
        /// The host name of the current host (informational).
        host;
        /// The user for [`sudo`](crate::sudo) when none is given.
        sudo_user;
        /// A jump host (`[user@]host[:port]`) for every connection.
        gateway;
        /// The known_hosts file (default: ssh_config's, else `~/.ssh/known_hosts`).
        known_hosts;
        /// The ssh_config file (default `~/.ssh/config`).
        ssh_config_path;
        /// The name of the running task (informational).
        command;
    }
    secrets {
        /// The login password, also used for sudo prompts. Never printed.
        password;
        /// The sudo password, preferred over `password` for sudo. Never printed.
        sudo_password;
        /// The passphrase of encrypted key files. Never printed.
        key_passphrase;
    }
    lists {
        /// Private key files to authenticate with.
        key_filename;
        /// Commands run before each command, from [`prefix`](crate::prefix).
        command_prefixes;
        /// The host list of the run (`-H`).
        hosts;
        /// The roles of the run (`-R`).
        roles;
        /// Hosts to leave out (`-x`).
        exclude_hosts;
    }
    numbers {
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
    }
    durations {
        /// Connect timeout, per attempt (default 10 s).
        timeout = Duration::from_secs(10);
        /// Keepalive interval: while waiting for a server, twill sends a
        /// keepalive request after this much silence, and gives the
        /// connection up when `keepalive_count` intervals pass without an
        /// answer, so a dead or cut-off server ends a command or transfer
        /// instead of hanging it. Zero turns keepalives off (default:
        /// ssh_config `ServerAliveInterval`, else 15 s).
        keepalive = Duration::from_secs(15);
    }
    opt_durations {
        /// The longest a command may run (default: no limit).
        command_timeout;
    }
}

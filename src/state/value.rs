//! The value store: [`Settings`] (a list of edits, as data) and [`Env`]
//! (the effective settings, an immutable map), the values they hold, and
//! the secrets they never show. What the built-in keys mean is `keys.rs`'s
//! business.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::levels::{Group, Levels};

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
    /// `prefix`: one more command run before every command (a list at
    /// `key`).
    Prefix { key: &'static str, command: String },
    /// `role`: one role's hosts in the role definitions at `key`.
    Role {
        key: &'static str,
        role: String,
        hosts: Vec<String>,
    },
    /// `hide`/`show`: output groups off or on (the levels at `key`).
    Levels {
        key: &'static str,
        groups: Vec<Group>,
        on: bool,
    },
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
            Edit::Prefix { key, command } => {
                let mut list = get_ref::<Vec<String>>(m, key).cloned().unwrap_or_default();
                list.push(command.clone());
                m.insert(key.to_string(), Arc::new(list));
            }
            Edit::Role { key, role, hosts } => {
                let mut roles = get_ref::<BTreeMap<String, Vec<String>>>(m, key)
                    .cloned()
                    .unwrap_or_default();
                roles.insert(role.clone(), hosts.clone());
                m.insert(key.to_string(), Arc::new(roles));
            }
            Edit::Levels { key, groups, on } => {
                let mut levels = get_ref::<Levels>(m, key).copied().unwrap_or_default();
                for g in groups {
                    levels.set(*g, *on);
                }
                m.insert(key.to_string(), Arc::new(levels));
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
///     assert_eq!(env().get_str("branch").as_deref(), Some("main"));
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

    pub(super) fn edit(mut self, edit: Edit) -> Self {
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

    /// Appends all edits of `other` after these.
    pub fn merge(mut self, other: Settings) -> Settings {
        self.edits.extend(other.edits);
        self
    }

    /// Sets a key of your own to a secret: read back with [`Env::secret`],
    /// never shown by `Debug`, and replaced by `********` in every event a
    /// run records (its journal included), as the passwords are.
    ///
    /// ```
    /// use twill::{env, with_settings, Settings};
    ///
    /// with_settings(Settings::new().secret("db_password", "s3cret"), || {
    ///     assert_eq!(env().secret("db_password").as_deref(), Some("s3cret"));
    ///     assert!(!format!("{:?}", env()).contains("s3cret"));
    /// });
    /// ```
    pub fn secret(self, key: impl Into<String>, value: impl Into<String>) -> Settings {
        self.edit(Edit::Put(
            Cow::Owned(key.into()),
            Arc::new(Secret(value.into())),
        ))
    }

    /// Removes `key` in the scope, so that it reads as its default.
    pub fn unset(self, key: impl Into<String>) -> Settings {
        self.edit(Edit::Unset(key.into()))
    }
}

impl Env {
    pub(super) fn empty() -> Env {
        Env {
            map: Arc::new(Map::new()),
        }
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

    /// A stored text value, as an owned `String`, so that
    /// `let tag = env().get_str("tag");` keeps it past the statement.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get_ref::<String>(key).cloned()
    }

    /// A value set with [`Settings::secret`] (or a password setting).
    pub fn secret(&self, key: &str) -> Option<String> {
        self.get_ref::<Secret>(key).map(|s| s.0.clone())
    }

    /// Every secret these settings hold: the passwords, the passphrase,
    /// the passwords per host and the values set with
    /// [`Settings::secret`].
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut all = Vec::new();
        for v in self.map.values() {
            if let Some(s) = any(v).downcast_ref::<Secret>() {
                all.push(s.0.clone());
            } else if let Some(m) = any(v).downcast_ref::<SecretMap>() {
                all.extend(m.0.values().cloned());
            }
        }
        all.retain(|s| !s.is_empty());
        // The longest first, so that a secret inside another is not left
        // half shown.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all
    }

    /// Whether `key` is set in these settings (defaults do not count).
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The keys that are set, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

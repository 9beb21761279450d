//! Fabric's context managers, as [`Settings`] values.
//!
//! Each returns a `Settings` to enter with [`with_settings`](crate::with_settings)
//! or [`settings`](crate::settings), and can be chained with more settings:
//!
//! ```
//! use twill::{cd, env, with_settings};
//!
//! with_settings(cd("/srv/app").prefix("source venv/bin/activate").warn_only(true), || {
//!     assert_eq!(env().cwd(), "/srv/app");
//!     assert_eq!(env().command_prefixes(), ["source venv/bin/activate"]);
//! });
//! ```

use crate::state::{PathBehavior, Settings};

/// Fabric's `cd(path)`: the remote working directory of `run` and `sudo`
/// and of relative remote paths in transfers. Relative paths nest; a path
/// starting with `/` or `~` replaces the current one.
///
/// Commands get `cd <dir> >/dev/null && ` in front, and the directory is
/// always a path, never code:
/// - a path made of ordinary characters (letters, digits, `/._-~+,@:%`
///   and spaces) is written as Fabric writes it, spaces as `\ `
///   (`cd /srv/my\ app`);
/// - any other path is quoted, so that `;`, `$(...)`, quotes and the like
///   are part of the name (`cd '/srv/a;b'`);
/// - a leading `~` or `~user` stays unquoted in both cases and expands to
///   that home directory.
///
/// [`env().cwd()`](crate::Env::cwd) holds the path itself, unquoted.
///
/// ```
/// use twill::{cd, env, with_settings, RunOptions, Settings};
///
/// with_settings(cd("/srv"), || {
///     with_settings(cd("my app"), || assert_eq!(env().cwd(), "/srv/my app"));
///     with_settings(cd("/opt"), || assert_eq!(env().cwd(), "/opt"));
/// });
/// let real = |dir: &str| with_settings(cd(dir), || RunOptions::new().shell(false).real_command("ls"));
/// assert_eq!(real("/srv/my app"), "cd /srv/my\\ app >/dev/null && ls");
/// assert_eq!(real("/tmp;reboot"), "cd '/tmp;reboot' >/dev/null && ls");
/// assert_eq!(real("~deploy/$x"), "cd ~deploy/'$x' >/dev/null && ls");
/// ```
#[doc(alias = "rcd")]
pub fn cd(path: impl Into<String>) -> Settings {
    Settings::new().cd(path)
}

/// threadbare's name for [`cd`].
pub fn rcd(path: impl Into<String>) -> Settings {
    cd(path)
}

/// Fabric's `lcd(path)`: the local working directory of `local` and of
/// relative local paths in transfers. The process's own directory is never
/// changed; the command gets `cd <path> >/dev/null && ` in front, with the
/// path written by the rule of [`cd`].
pub fn lcd(path: impl Into<String>) -> Settings {
    Settings::new().lcd(path)
}

/// Fabric's `prefix(command)`: `command && ` before every command.
pub fn prefix(command: impl Into<String>) -> Settings {
    Settings::new().prefix(command)
}

/// Fabric's `path(path, behavior)`: change `PATH` for every command.
///
/// ```
/// use twill::{path, with_settings, LocalOptions, PathBehavior};
///
/// let real = with_settings(path("/opt/bin", PathBehavior::Prepend), || LocalOptions::new().real_command("tool"));
/// assert_eq!(real, "export PATH=\"\"/opt/bin\":$PATH\" && tool");
/// ```
pub fn path(path: impl Into<String>, behavior: PathBehavior) -> Settings {
    Settings::new().path(path, behavior)
}

/// Fabric's `shell_env(K=V, ...)`: export variables before every command.
pub fn shell_env<K: Into<String>, V: Into<String>>(
    vars: impl IntoIterator<Item = (K, V)>,
) -> Settings {
    Settings::new().shell_env(vars)
}

/// Fabric's `hide(*groups)`, groups comma or space separated.
///
/// # Panics
/// On an unknown group name.
pub fn hide(groups: &str) -> Settings {
    Settings::new().hide(groups)
}

/// Fabric's `show(*groups)`.
///
/// # Panics
/// On an unknown group name.
pub fn show(groups: &str) -> Settings {
    Settings::new().show(groups)
}

/// Fabric's `quiet()`: hide everything, and failures only warn.
pub fn quiet() -> Settings {
    Settings::new().quiet()
}

/// Fabric's `warn_only()`: failures only warn.
pub fn warn_only() -> Settings {
    Settings::new().warn_only(true)
}

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
//!
//! This file holds the scope stack and the process-wide defaults;
//! `value.rs` the value store (`Settings`, `Env`, secrets), `keys.rs` the
//! built-in keys, declared once each, and `levels.rs` the output groups.

mod keys;
mod levels;
mod value;

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use parking_lot::RwLock;

use crate::error::{Error, ErrorKind, Result};

pub use keys::SetValue;
pub(crate) use levels::Group;
pub use value::{Env, PathBehavior, Settings, Value};

static DEFAULTS: LazyLock<RwLock<Env>> = LazyLock::new(|| RwLock::new(Env::empty()));

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
/// The closure returns what a scope's work returns (see [`ScopeResult`]):
/// a `twill::Result`, so that `?` inside it and `Ok(())` at its end need
/// no type written out, or a plain value.
///
/// ```
/// use twill::{cd, run, with_settings, Settings};
///
/// fn deploy() -> twill::Result<()> {
///     with_settings(Settings::new().host_string("deploy@web1"), || {
///         with_settings(cd("/srv/app"), || {
///             run("git pull")?;
///             run("make")?;
///             Ok(())
///         })?;
///         Ok(())
///     })
/// }
/// ```
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
pub fn with_settings<R: ScopeResult>(settings: Settings, f: impl FnOnce() -> R) -> R {
    let _guard = self::settings(settings);
    f()
}

/// What the closure of [`with_settings`] may return: a `twill::Result` of
/// anything, or a plain value (text, numbers, flags, paths, lists,
/// options, the settings, an [`Output`](crate::Output) and the like).
///
/// A `Result` with another error type is not one: with only twill's
/// among them, the error type of `Ok(())` at the end of a closure, and of
/// the `?` inside it, is known without being written out. Implement this
/// trait for a type of your own to return it from a scope, or open the
/// scope with [`settings`] instead.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a value a settings scope returns",
    note = "return a `twill::Result` (`Ok(value)`), a plain value, or implement `twill::ScopeResult` for it"
)]
pub trait ScopeResult {}

impl<T> ScopeResult for crate::error::Result<T> {}
impl<T> ScopeResult for Option<T> {}
impl<T> ScopeResult for Vec<T> {}
impl<T: ?Sized> ScopeResult for Box<T> {}
impl<T: ?Sized> ScopeResult for &T {}
impl<K, V> ScopeResult for std::collections::BTreeMap<K, V> {}
impl<K, V, S> ScopeResult for std::collections::HashMap<K, V, S> {}

macro_rules! scope_results {
    ($($t:ty),* $(,)?) => {$( impl ScopeResult for $t {} )*};
}

scope_results!(
    (),
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    String,
    std::path::PathBuf,
    std::time::Duration,
    Env,
    Settings,
    crate::result::Output,
);

macro_rules! scope_result_tuples {
    ($(($($t:ident),+)),*) => {$( impl<$($t),+> ScopeResult for ($($t,)+) {} )*};
}

scope_result_tuples!((A, B), (A, B, C), (A, B, C, D));

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
/// assert_eq!(env().get_str("stage").as_deref(), Some("production"));
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

/// In a forked worker: a thread of the caller may have held the defaults'
/// lock at the fork, and no thread here would ever release it. The worker
/// has one thread, so whoever holds it is gone: it is released.
pub(crate) fn reset_after_fork() {
    if DEFAULTS.is_locked_exclusive() {
        // SAFETY: the only thread of this process holds no guard; the
        // holder was a thread of the parent, absent here.
        unsafe { DEFAULTS.force_unlock_write() };
    }
    while DEFAULTS.is_locked() {
        // SAFETY: as above, for each reader of the parent.
        unsafe { DEFAULTS.force_unlock_read() };
    }
}

/// How many scopes are open on this thread.
pub(crate) fn depth() -> usize {
    STACK.with(|s| s.borrow().len())
}

pub(super) fn push(env: Env) -> SettingsGuard {
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
    /// Enters these settings; the same as [`settings(self)`](crate::settings).
    pub fn enter(self) -> SettingsGuard {
        settings(self)
    }
}

impl Env {
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
}

//! twill runs commands and moves files on many machines over SSH, the way
//! Fabric 1.x does, with Rust's speed and safety.
//!
//! # From Fabric to twill
//!
//! A Fabric 1.x task:
//!
//! ```python
//! from fabric.api import env, local, settings, lcd, prefix, hide
//!
//! def build():
//!     with lcd("/src/app"), prefix("source venv/bin/activate"):
//!         local("make test")
//!         with settings(warn_only=True):
//!             result = local("make lint", capture=True)
//!         if result.failed:
//!             print("lint failed: " + result.stderr)
//!         version = local("git describe", capture=True)
//!     return version.strip()
//! ```
//!
//! and the same in twill. Context managers become [`Settings`] values that a
//! closure runs under ([`with_settings`]) or that a guard keeps open
//! ([`settings`]); operations return [`Result`], so `?` aborts the task:
//!
//! ```no_run
//! use twill::{lcd, local, local_capture, warn_only, with_settings};
//!
//! fn build() -> twill::Result<String> {
//!     with_settings(lcd("/src/app").prefix("source venv/bin/activate"), || {
//!         local("make test")?;
//!         let result = with_settings(warn_only(), || local_capture("make lint"))?;
//!         if result.failed() {
//!             println!("lint failed: {}", result.stderr());
//!         }
//!         let version = local_capture("git describe")?;
//!         Ok(version.to_string())
//!     })
//! }
//! ```
//!
//! # Settings
//!
//! Fabric's global `env` is a stack of scopes per thread here: [`env()`]
//! reads the settings in force, [`with_settings`] and [`settings`] open a
//! scope, and leaving it (by return, `?` or panic) restores exactly what was
//! there. Explicit options of an operation ([`LocalOptions`]) beat the
//! stack; the stack beats [`set_defaults`]; those beat twill's defaults.
//! Keys of your own, of any type, live beside Fabric's
//! ([`Settings::set`], [`Env::get`]).
//!
//! # Remote hosts
//!
//! [`run`], [`sudo`], [`upload`] ([`put`]) and [`download`] ([`get`]) work
//! on the host in the `host_string` setting, over one cached SSH connection
//! per `user@host:port`. Host keys are checked against known_hosts (an
//! unknown key is asked about at a terminal as OpenSSH asks, and refused
//! elsewhere unless `accept_new_host_keys` is set; a changed key always
//! is), `~/.ssh/config` is honoured, and a sudo password from the settings
//! answers sudo's prompt without ever being printed. Local standard input
//! reaches remote commands as in Fabric (keys typed at the terminal, or a
//! pipe), and [`open_shell`] opens an interactive shell.
//!
//! ```no_run
//! use twill::{cd, run, sudo, upload, with_settings, Settings};
//!
//! with_settings(Settings::new().host_string("deploy@web1"), || {
//!     upload("dist/app.tar.gz", "/srv/releases/")?;
//!     with_settings(cd("/srv/releases"), || run("tar xzf app.tar.gz"))?;
//!     sudo("systemctl restart app")?;
//!     twill::Result::Ok(())
//! })?;
//! # Ok::<(), twill::Error>(())
//! ```
//!
//! # Many hosts
//!
//! [`execute`] and [`Execute`] run a task once per host, serially or in
//! parallel worker processes, and return each host's result in the order
//! of the host list. Workers have no standard input (a prompt there is an
//! error), their changes to the settings never reach the caller, they open
//! their own connections, and a worker that fails or dies is that host's
//! failure while the others finish.
//!
//! ```no_run
//! use twill::{run, Execute};
//!
//! let kernels = Execute::new("kernel").hosts(["web1", "web2", "db1"]).parallel(true)
//!     .run(|| Ok(run("uname -r")?.to_string()))?;
//! # Ok::<(), twill::Error>(())
//! ```
//!
//! # Commands
//!
//! The command actually run is built exactly as Fabric 1.x builds it, so
//! logs and habits carry over: `cd`, [`prefix`], [`path`] and [`shell_env`]
//! compose into `export ... && cd ... >/dev/null && ... && cmd`. A result
//! ([`Output`]) reads as its stdout wherever a string is expected, and
//! carries the return code, stderr and both forms of the command. A
//! failure is an [`Error`] with the host, the command, the exit code and
//! the output.
//!
//! # Command line
//!
//! With the `cli` feature (on by default), `Tasks`, `Task` and the `task!`
//! macro give a program Fabric's `fab` command line for its tasks, and the
//! `twill` binary does ad-hoc work the same way. A library that needs
//! neither leaves the feature out (`default-features = false`), and clap
//! with it.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

#[cfg(feature = "cli")]
mod cli;
mod command;
mod error;
mod execute;
mod interrupt;
mod operations;
mod output;
mod result;
mod state;
mod sys;
mod terminal;

pub mod colors;

#[cfg(feature = "cli")]
pub use cli::{FromArg, Task, TaskArgs, Tasks};
pub use error::{Error, ErrorKind, Result};
pub use execute::{execute, execute_with_hosts, Execute, HostResults};
pub use operations::abort;
pub use operations::context::{
    cd, hide, lcd, path, prefix, quiet, rcd, shell_env, show, warn_only,
};
pub use operations::local::{local, local_capture, local_with, LocalOptions};
pub use operations::options::RunOptions;
pub use operations::prompt::{confirm, confirm_from, prompt, Prompt};
pub use operations::remote::{
    disconnect_all, open_shell, remote, remote_file_exists, remote_file_exists_with, remote_sudo,
    run, run_with, sudo, sudo_with,
};
pub use operations::transfer::{
    download, download_data, download_with, get, put, upload, upload_data, upload_with,
    DownloadOptions, UploadOptions,
};
pub use output::{fastprint, puts, warn};
pub use result::Output;
pub use state::{
    add_cleanup, env, set_defaults, set_env, settings, with_settings, Env, PathBehavior, Settings,
    SettingsGuard, Value,
};
mod ssh;

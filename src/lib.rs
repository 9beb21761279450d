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
//! pipe), [`open_shell`] opens an interactive shell, and
//! [`RunOptions::interactive`] gives one command a real terminal, as
//! `ssh -t` does (an editor, a pager). [`open_process`]
//! gives a running remote command's input and output as a `Write` and a
//! `Read`, and [`pipe`] streams one host's command into another's through
//! this process.
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
//! [`Execute`] runs a task once per host, serially or in parallel worker
//! processes, and returns each host's result in the order of the host
//! list. Workers have no standard input (a prompt there is an error;
//! only a tmux pane of `--panes` types into a host's remote program),
//! their changes to the settings never reach the caller, they open their
//! own connections, and a worker that fails or dies is that host's
//! failure while the others finish. At a terminal a parallel run shows a
//! live view, a row per host and the chosen host's output, built from the
//! run's events (the `live` setting, `--linewise`, `--live`).
//!
//! ```no_run
//! use twill::{run, Execute};
//!
//! let kernels = Execute::new("kernel").hosts(["web1", "web2", "db1"]).parallel(true)
//!     .run(|| Ok(run("uname -r")?.to_string()))?;
//! # Ok::<(), twill::Error>(())
//! ```
//!
//! A task declared with `task!` (the `cli` feature) carries Fabric's marks,
//! and `name::execute(args)` honours them as Fabric's `execute(name,
//! args)` does: the hosts given to the call beat the task's `#[hosts]` and
//! `#[roles]`, which beat the `hosts` and `roles` settings (`-H`, `-R`);
//! `#[parallel]`, `#[serial]` and `#[runs_once]` choose how it runs.
//!
//! There is no `execute(function, hosts)`: a plain function carries no
//! marks, and a call that names no hosts would quietly run it where the
//! caller stands, which a port from Fabric never means when the task had
//! `@roles`. The marks live with the task, so its `execute` cannot leave
//! them behind. A run that still finds no host anywhere does what Fabric
//! does, once, in the current settings, and says so on a line of its own
//! (`[localhost] Executing task 'build' once, locally: ...`).
//!
//! # Commands
//!
//! The command actually run is built exactly as Fabric 1.x builds it, so
//! logs and habits carry over: `cd`, [`prefix`], [`path`] and [`shell_env`]
//! compose into `export ... && cd ... >/dev/null && ... && cmd`. A result
//! ([`Output`]) reads as its stdout wherever a string is expected, and
//! carries the return code, stderr and both forms of the command. A
//! failure is an [`Error`] with the host, the command, the exit code and
//! the output. A dry run ([`Settings::dry_run`], `--dry-run` on the
//! command line) prints each real command instead of running it, and
//! says what it cannot show.
//!
//! # Fabric's contrib helpers
//!
//! [`contrib::files`] is `fabric.contrib.files`: [`exists`](contrib::files::exists),
//! [`contains`](contrib::files::contains), an idempotent
//! [`append`](contrib::files::append), [`sed`](contrib::files::sed),
//! [`comment`](contrib::files::comment) and
//! [`upload_template`](contrib::files::upload_template) (Python `%(name)s`
//! or Jinja templates), with Fabric's command strings.
//! [`contrib::project`] is `fabric.contrib.project`:
//! [`rsync_project`](contrib::project::rsync_project), whose ssh connects
//! exactly as twill does, and [`upload_project`](contrib::project::upload_project).
//! Fabric's [`reboot`], [`require`], [`error`] and `'%(key)s' % env`
//! ([`env_format`]) are at the top.
//!
//! # A record of every run
//!
//! Everything a run does is an event ([`events`]): its tasks per host,
//! each command as written and as sent with its exit code and output's
//! last lines, each transfer with the SHA-256 of every file, each printed
//! line, each worker, each host's outcome; secrets taken out first. Any
//! number of loggers receive them ([`events::add_logger`],
//! [`events::JsonLines`]); the command line writes a journal per run,
//! which `--log` lists, replays and compares and `--retry-failed` runs
//! again on the hosts that failed, and a library records its runs with
//! [`events::record_run`].
//!
//! # Command line
//!
//! With the `cli` feature (on by default), `Tasks`, `Task` and the `task!`
//! macro give a program Fabric's `fab` command line for its tasks, and the
//! `twill` binary does ad-hoc work the same way; `twill new NAME` starts a
//! cargo project for tasks of your own. A library that needs neither
//! leaves the feature out (`default-features = false`), and clap with it.
//!
//! # Deployment trees
//!
//! With the `cli` feature, `tree` writes a deployment as python-deployer
//! does: nodes with actions, children, roles of hosts and settings; a node
//! isolated on a role runs each action once per host, in parallel
//! workers; `tree::Shell` (the `shell` feature, on by default) browses the
//! tree with completion and runs its actions, with a real terminal for
//! `vim` on a host.
//!
//! # Fabric to twill, line by line
//!
//! Python's keyword arguments become option structs with a builder
//! ([`RunOptions`], [`UploadOptions`], [`DownloadOptions`],
//! [`LocalOptions`]) given to the `_with` form of the operation; context
//! managers become [`Settings`] values; reading `env.x` is a getter of
//! [`env()`], and assigning it is [`set_env`].
//!
//! | Fabric 1.x | twill |
//! |---|---|
//! | `run("cmd")`, `sudo("cmd")`, `local("cmd")` | `run("cmd")?`, `sudo("cmd")?`, `local("cmd")?` |
//! | `local("cmd", capture=True)` | `local_capture("cmd")?` |
//! | `run("cmd", warn_only=True, pty=False)` | `run_with("cmd", &RunOptions::new().warn_only(true).pty(false))?` |
//! | `sudo("cmd", user="www")` | `sudo_with("cmd", &RunOptions::new().user("www"))?` |
//! | `put(a, b, use_sudo=True, mode=0o640)` | `upload_with(a, b, &UploadOptions::new().use_sudo(true).mode(0o640))?` |
//! | `get(remote, local)` | `download(remote, local)?` |
//! | `result.failed`, `.return_code`, `.stdout` | `result.failed()`, `.return_code()`, `.stdout()` |
//! | `with settings(warn_only=True):` | `with_settings(warn_only(), \|\| ...)` |
//! | `with cd("/srv"), prefix("source env"):` | `with_settings(cd("/srv").prefix("source env"), \|\| ...)` |
//! | `with hide("running", "stdout"):` | `with_settings(hide("running,stdout"), \|\| ...)` |
//! | `env.user`, `env.host_string` | `env().user()`, `env().host_string()` (owned: `let h = env().host_string().unwrap();` keeps it) |
//! | `env.project` (a key of your own) | `env().get_str("project")`, `.unwrap_or("/srv/app".into())` for a fallback |
//! | `env.user = "deploy"` | `set_env(Settings::new().user("deploy"))` |
//! | `env.hosts = ["web1"]`, `env.roledefs = {...}` | `set_env(Settings::new().hosts(["web1"]))`, `.roledefs([("web", ["web1"])])` |
//! | `env.project = "/srv/app"` | `set_env(Settings::new().set("project", "/srv/app"))` |
//! | `"%(root)s/current" % env`, `"{root}".format(**env)` | `env_format("%(root)s/current")?` |
//! | `append(f, lines, use_sudo=True)`, `exists(p)`, `sed(f, a, b)` | `append_with(f, lines, &AppendOptions::new().use_sudo(true))?`, `exists(p)?`, `sed(f, a, b)?` (in `contrib::files`) |
//! | `upload_template(t, dest, context=env, use_jinja=True)` | `upload_template_with(t, dest, &env(), &TemplateOptions::new().use_jinja(true))?` |
//! | `rsync_project(remote_dir=d, exclude=["*.pyc"])` | `rsync_project_with(d, &RsyncOptions::new().exclude("*.pyc"))?` |
//! | `reboot(wait=120)` | `reboot(Duration::from_secs(120))?` |
//! | `require("site", provided_by=[staging])` | `require_with(["site"], &RequireOptions::new().provided_by(["staging"]))?` |
//! | `abort("msg")` | `return Err(abort("msg"))` |
//! | `prompt("Branch?", default="main")` | `Prompt::new("Branch?").default("main").ask()?` |
//! | `confirm("Go on?", default=False)` | `confirm("Go on?", false)?` |
//! | `@task` and its docstring | `task! { /// doc ... fn name() -> twill::Result<()> { ... } }` (several tasks may share one block; a task that only sets `env` returns nothing) |
//! | `@roles("web")`, `@hosts("web1")` | `#[roles("web")]`, `#[hosts("web1")]` inside `task!` |
//! | `@parallel(pool_size=5)`, `@serial`, `@runs_once` | `#[parallel(pool_size = 5)]`, `#[serial]`, `#[runs_once]` |
//! | `@task(alias="up", name="type", default=True)` | `#[task(alias = "up", name = "type", default)]` |
//! | `def pull(branch="main"):` | `fn pull(branch: String = "main") -> twill::Result<()>` |
//! | `execute(pull, branch)` | `pull::execute(branch)?` |
//! | `execute(pull, hosts=["web3"])` | `Execute::task(&pull::task()).hosts(["web3"]).run(\|\| pull(b.clone()))?` |
//! | `execute("db.migrate", "x", fake="yes")` | `tasks().execute("db.migrate", TaskArgs::new().arg("x").kwarg("fake", "yes"))?` |
//! | the fabfile's tasks | `Tasks::new().tasks([pull::task(), deploy::task()])` |
//! | `fab -H web1 deploy:branch=x` | `my-fab -H web1 deploy:branch=x` (a program whose `main` is `tasks().main()`) |
//!
//! `examples/fabfile.rs` is a whole fabfile ported this way, the Python
//! beside the Rust, and `examples/blog.rs` a Django provisioning fabfile
//! (`examples/blog_site/fabfile.py`) ported line for line.
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
mod ssh;
mod state;
mod sys;
mod terminal;

pub mod colors;
pub mod contrib;
pub mod events;
#[cfg(feature = "cli")]
pub mod tree;

#[cfg(feature = "cli")]
#[doc(hidden)]
pub use cli::{arg_default, ArgDefault, TaskReturn};
#[cfg(feature = "cli")]
pub use cli::{FromArg, Task, TaskArgs, Tasks};
pub use error::{Error, ErrorKind, Result};
pub use execute::{execute_with_hosts, Execute, HostResults};
pub use operations::context::{
    cd, hide, lcd, path, prefix, quiet, rcd, shell_env, show, warn_only,
};
pub use operations::local::{local, local_capture, local_with, LocalOptions};
pub use operations::options::RunOptions;
pub use operations::pipe::{
    open_process, pipe, PipeOutcome, RemoteProcess, RemoteStdin, RemoteStdout,
};
pub use operations::prompt::{choice, choice_from, confirm, confirm_from, prompt, Prompt};
pub use operations::reboot::{reboot, reboot_with, RebootOptions};
pub use operations::remote::{
    disconnect_all, open_shell, remote, remote_file_exists, remote_file_exists_with, remote_sudo,
    run, run_with, sudo, sudo_with,
};
pub use operations::transfer::{
    download, download_data, download_with, get, put, upload, upload_data, upload_with,
    DownloadOptions, UploadOptions,
};
pub use operations::utils::{env_format, error, error_with, require, require_with, RequireOptions};
pub use operations::{abort, abort_with};
pub use output::{fastprint, puts, warn};
pub use result::Output;
pub use state::{
    add_cleanup, env, set_defaults, set_env, settings, with_settings, Env, PathBehavior,
    ScopeResult, SetValue, Settings, SettingsGuard, Value,
};

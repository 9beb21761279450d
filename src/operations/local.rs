//! `local`: run a command on this machine.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{OpKind, OpRecord};
use crate::interrupt;
use crate::operations::dry_run;
use crate::output;
use crate::result::Output;
use crate::state::{env, settings, Env, Group, Settings};
use crate::sys::seconds;

/// Options of one [`local_with`] call. Each one that is set beats the
/// settings stack; each one left unset reads it.
///
/// ```
/// use std::time::Duration;
/// use twill::{local_with, LocalOptions};
///
/// let out = local_with("echo out; echo err >&2", &LocalOptions::new().capture(true).combine_stderr(false))?;
/// assert_eq!((out.stdout(), out.stderr()), ("out", "err"));
///
/// let err = local_with("sleep 5", &LocalOptions::new().timeout(Duration::from_millis(200))).unwrap_err();
/// assert_eq!(err.kind(), twill::ErrorKind::Timeout);
/// # Ok::<(), twill::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    capture: bool,
    combine_stderr: Option<bool>,
    quiet: bool,
    warn_only: Option<bool>,
    timeout: Option<Duration>,
    use_shell: bool,
    use_sudo: bool,
    shell: Option<String>,
}

impl LocalOptions {
    /// The defaults: output goes to the terminal, nothing is captured.
    pub fn new() -> LocalOptions {
        LocalOptions::default()
    }

    /// Capture the output into the result instead of letting it through to
    /// the terminal (Fabric's `capture=True`). Nothing is printed then.
    pub fn capture(mut self, yes: bool) -> Self {
        self.capture = yes;
        self
    }

    /// When capturing, merge stderr into stdout (default: the
    /// `combine_stderr` setting, true). With `false` they are captured apart.
    pub fn combine_stderr(mut self, yes: bool) -> Self {
        self.combine_stderr = Some(yes);
        self
    }

    /// Hide everything and only warn on failure, for this call.
    pub fn quiet(mut self, yes: bool) -> Self {
        self.quiet = yes;
        self
    }

    /// Return `Ok` with a failed result instead of an error.
    pub fn warn_only(mut self, yes: bool) -> Self {
        self.warn_only = Some(yes);
        self
    }

    /// Kill the command, and every process it started in its process group,
    /// after this long; the call then fails with [`ErrorKind::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Wrap the command in the `shell` setting (`/bin/bash -l -c "..."`)
    /// with Fabric's escaping, instead of handing it to `/bin/sh -c` as is.
    pub fn use_shell(mut self, yes: bool) -> Self {
        self.use_shell = yes;
        self
    }

    /// Run through `sudo -n` (never prompts: passwordless sudo is needed).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }

    /// The program that runs the real command with `-c` (default `/bin/sh`;
    /// Fabric's `shell=`).
    pub fn shell(mut self, program: impl Into<String>) -> Self {
        self.shell = Some(program.into());
        self
    }

    /// The command exactly as [`local_with`] would run it under the current
    /// settings, without running it.
    ///
    /// ```
    /// use twill::{lcd, with_settings, LocalOptions};
    ///
    /// let real = with_settings(lcd("/build").prefix("workon venv"), || {
    ///     LocalOptions::new().real_command("make")
    /// });
    /// assert_eq!(real, "cd /build >/dev/null && workon venv && make");
    /// ```
    pub fn real_command(&self, command: &str) -> String {
        command::local(&env(), command, self.use_shell, self.use_sudo)
    }
}

/// Runs `command` on this machine, its output straight to the terminal
/// (Fabric's `local(command)`); the result's stdout is empty.
///
/// The command honours [`lcd`](crate::lcd), [`prefix`](crate::prefix),
/// [`path`](crate::path) and [`shell_env`](crate::shell_env), and runs with
/// `/bin/sh -c`. An exit code outside `ok_ret_codes` is an error of kind
/// [`ErrorKind::CommandFailed`] (with `warn_only`, a warning and `Ok`).
///
/// Ctrl-C (SIGINT) or SIGTERM to the process reaches the command as SIGINT.
/// Inside an [`Execute`](crate::Execute) run the call then fails with
/// [`ErrorKind::Interrupted`], and starts nothing more until the run
/// returns; outside it, the process exits with 130.
///
/// ```
/// twill::local("true")?;
/// assert!(twill::local("exit 1").is_err());
/// # Ok::<(), twill::Error>(())
/// ```
pub fn local(command: impl AsRef<str>) -> Result<Output> {
    local_with(command, &LocalOptions::new())
}

/// Runs `command` on this machine and captures its output (Fabric's
/// `local(command, capture=True)`).
///
/// ```
/// let date = twill::local_capture("echo 2024-01-01")?;
/// assert_eq!(date, "2024-01-01");
/// # Ok::<(), twill::Error>(())
/// ```
pub fn local_capture(command: impl AsRef<str>) -> Result<Output> {
    local_with(command, &LocalOptions::new().capture(true))
}

/// Runs `command` on this machine with explicit options.
pub fn local_with(command: impl AsRef<str>, opts: &LocalOptions) -> Result<Output> {
    let command = command.as_ref();
    // `quiet` is a scope of its own for this call.
    let _quiet = opts.quiet.then(|| settings(Settings::new().quiet()));
    let env = env();
    let real = command::local(&env, command, opts.use_shell, opts.use_sudo);
    if env.dry_run() {
        return OpRecord::wrap(&env, OpKind::Local, None, command, &real, || {
            dry_run::local(&env, command, &real)
        });
    }
    output::running(&env, "localhost", "local", command, &real);
    OpRecord::wrap(&env, OpKind::Local, None, command, &real, || {
        let outcome = execute(&env, &real, opts).map_err(|e| {
            Error::io(format_args!("local() could not start '{command}'"), e).with_command(command)
        })?;
        let interrupted_error = || {
            Error::new(
                ErrorKind::Interrupted,
                format!("local() interrupted (Ctrl-C) while executing '{command}'"),
            )
            .with_command(command)
        };
        let Some((stdout, stderr, status, timed_out)) = outcome else {
            return Err(interrupted_error());
        };
        let code = return_code(status);
        let failed = !env.ok_ret_codes().contains(&code);
        let out = Output::new(stdout, stderr, code, failed, command, &real);
        if interrupt::interrupted() {
            // The command got the interrupt, whatever it made of it.
            return Err(interrupted_error().with_output(out));
        }
        if let Some(t) = timed_out {
            return Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "local() timed out: command failed to finish in {} seconds while executing '{command}'",
                seconds(t)
            ),
        )
        .with_output(out));
        }
        finish(&env, "local", out, opts.warn_only)
    })
}

/// Applies Fabric's failure rule to a finished local command.
fn finish(env: &Env, which: &str, out: Output, warn_only: Option<bool>) -> Result<Output> {
    if !out.failed() {
        return Ok(out);
    }
    let msg = format!(
        "{which}() encountered an error (return code {}) while executing '{}'",
        out.return_code(),
        out.command()
    );
    let warn_only = warn_only.unwrap_or_else(|| env.warn_only());
    super::finish_message(env, msg, out, warn_only, None)
}

fn return_code(status: ExitStatus) -> i32 {
    match status.code() {
        Some(c) => c,
        None => -status.signal().unwrap_or(0),
    }
}

type Outcome = (Vec<u8>, Vec<u8>, ExitStatus, Option<Duration>);

/// Runs the command to its end; `None` when it was not started because
/// the running `execute` was interrupted.
///
/// An interrupt (Ctrl-C, SIGTERM) reaches the command through
/// [`interrupt`]; see there which process group it runs in.
fn execute(env: &Env, real: &str, opts: &LocalOptions) -> std::io::Result<Option<Outcome>> {
    let program = opts.shell.as_deref().unwrap_or("/bin/sh");
    let mut cmd = Command::new(program);
    cmd.arg("-c").arg(real);
    let levels = env.levels();
    let combine = opts.combine_stderr.unwrap_or_else(|| env.combine_stderr());
    let mut out_reader = None;
    let mut err_reader = None;
    if opts.capture {
        let (r, w) = std::io::pipe()?;
        if combine {
            cmd.stderr(w.try_clone()?);
        } else {
            let (er, ew) = std::io::pipe()?;
            cmd.stderr(ew);
            err_reader = Some(er);
        }
        cmd.stdout(w);
        out_reader = Some(r);
    } else {
        if !levels.get(Group::Stdout) {
            cmd.stdout(Stdio::null());
        }
        if !levels.get(Group::Stderr) {
            cmd.stderr(Stdio::null());
        }
    }
    // With a timeout, its own process group, so that the timeout kills
    // everything it started.
    let Some((mut child, registered)) = interrupt::spawn_local(&mut cmd, opts.timeout.is_some())?
    else {
        return Ok(None);
    };
    // The pipe ends given to the child are closed here when `cmd` drops, so
    // the readers see EOF once every process holding them has exited.
    drop(cmd);
    let pid = child.id() as i32;

    thread::scope(|s| {
        let read_all = |r: Option<std::io::PipeReader>| {
            s.spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out_t = read_all(out_reader);
        let err_t = read_all(err_reader);

        let mut timed_out = None;
        let status = match opts.timeout {
            None => registered.wait(&mut child)?,
            Some(limit) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let waiter = s.spawn(move || {
                    let status = registered.wait(&mut child);
                    let _ = tx.send(());
                    status
                });
                if rx.recv_timeout(limit).is_err() {
                    timed_out = Some(limit);
                    // SAFETY: plain syscall; the group id is the child's pid
                    // because it was started with process_group(0).
                    unsafe {
                        libc::killpg(pid, libc::SIGKILL);
                    }
                }
                waiter
                    .join()
                    .expect("waiting for a child process panicked")?
            }
        };
        let stdout = out_t.join().expect("output reader panicked");
        let stderr = err_t.join().expect("output reader panicked");
        Ok(Some((stdout, stderr, status, timed_out)))
    })
}

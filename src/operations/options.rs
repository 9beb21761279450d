//! Options of one remote command.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::command::{self, RemoteSpec};
use crate::state::{env, Env};

/// A shared writer that receives a command's output as it arrives.
pub(crate) type Sink = Arc<Mutex<dyn Write + Send>>;

/// Options of one [`run_with`](crate::run_with) or
/// [`sudo_with`](crate::sudo_with) call. Each option that is set beats the
/// settings stack; each one left unset reads it.
///
/// ```
/// use twill::RunOptions;
///
/// let opts = RunOptions::new().user("www-data");
/// assert_eq!(opts.real_sudo_command("whoami"),
///            "sudo -S -p 'sudo password:'  -u \"www-data\"  /bin/bash -l -c \"whoami\"");
/// assert_eq!(RunOptions::new().shell(false).real_command("ls"), "ls");
/// ```
#[derive(Clone, Default)]
pub struct RunOptions {
    pub(crate) shell: Option<bool>,
    pub(crate) pty: Option<bool>,
    pub(crate) combine_stderr: Option<bool>,
    pub(crate) quiet: bool,
    pub(crate) warn_only: Option<bool>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) shell_escape: Option<bool>,
    pub(crate) user: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) stdout: Option<Sink>,
    pub(crate) stderr: Option<Sink>,
    pub(crate) interactive: bool,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("shell", &self.shell)
            .field("pty", &self.pty)
            .field("combine_stderr", &self.combine_stderr)
            .field("quiet", &self.quiet)
            .field("warn_only", &self.warn_only)
            .field("timeout", &self.timeout)
            .field("shell_escape", &self.shell_escape)
            .field("user", &self.user)
            .field("group", &self.group)
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("interactive", &self.interactive)
            .finish()
    }
}

impl RunOptions {
    /// The defaults: everything from the settings.
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// Wrap the command in the `shell` setting (default true; the
    /// `use_shell` setting can still turn wrapping off).
    pub fn shell(mut self, yes: bool) -> Self {
        self.shell = Some(yes);
        self
    }

    /// Request a pty (default: the `always_use_pty` setting, true). With a
    /// pty, stderr arrives merged into stdout.
    pub fn pty(mut self, yes: bool) -> Self {
        self.pty = Some(yes);
        self
    }

    /// Merge stderr into stdout (default: the `combine_stderr` setting).
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

    /// End the command (and the remote process) after this long (default:
    /// the `command_timeout` setting).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Escape `"`, `$` and `` ` `` when wrapping (default: the
    /// `shell_escape` setting, true).
    pub fn shell_escape(mut self, yes: bool) -> Self {
        self.shell_escape = Some(yes);
        self
    }

    /// For sudo: the user to run as (default: the `sudo_user` setting). A
    /// numeric id becomes `#<id>`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// For sudo: the group to run as. A numeric id becomes `#<id>`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Send stdout to `writer` as it arrives instead of keeping it in the
    /// result, so that memory stays flat however much the command prints.
    /// The result's stdout is then empty.
    pub fn stdout_to(mut self, writer: impl Write + Send + 'static) -> Self {
        self.stdout = Some(Arc::new(Mutex::new(writer)));
        self
    }

    /// Send stderr to `writer` as it arrives instead of keeping it.
    pub fn stderr_to(mut self, writer: impl Write + Send + 'static) -> Self {
        self.stderr = Some(Arc::new(Mutex::new(writer)));
        self
    }

    /// Give the command a real terminal, as `ssh -t` does (default
    /// false): a pty of the local terminal's type (`$TERM`) and size,
    /// window size changes passed on, the local terminal in raw mode
    /// until the command ends, every key going to the remote program
    /// (Ctrl-C too, unless the `remote_interrupt` setting is false), and
    /// its output written as it comes, without the `[host] out:` prefix
    /// and without being kept (the result's stdout and stderr are empty),
    /// as [`open_shell`](crate::open_shell) does. For editors, pagers,
    /// `top`: anything that draws a screen. The command is built, printed
    /// and recorded as usual, and its exit code is judged as usual
    /// (`ok_ret_codes`, `warn_only`, the timeout); the `pty`,
    /// `combine_stderr`, output writer and `prompts` settings and options
    /// play no part. Where nobody may be asked (`abort_on_prompts`, a
    /// parallel run) the terminal is not read, as for [`run`](crate::run).
    ///
    /// Through sudo, the call's own prompt is answered with the password
    /// as [`sudo`](crate::sudo) answers it (kept back from the screen;
    /// asked for hidden at the terminal when none is set), and local
    /// input waits for it as there.
    ///
    /// ```no_run
    /// use twill::{run_with, RunOptions, Settings};
    ///
    /// let _host = twill::settings(Settings::new().host_string("deploy@web1"));
    /// let editor = RunOptions::new().interactive(true);
    /// let out = run_with("vim /srv/app/config.toml", &editor)?;
    /// assert_eq!(out.stdout(), "");
    /// # Ok::<(), twill::Error>(())
    /// ```
    pub fn interactive(mut self, yes: bool) -> Self {
        self.interactive = yes;
        self
    }

    /// The command exactly as [`run_with`](crate::run_with) would send it
    /// under the current settings, without connecting anywhere.
    pub fn real_command(&self, command: &str) -> String {
        self.real(&env(), command, false, None)
    }

    /// The command as [`sudo_with`](crate::sudo_with) builds it, with the
    /// `sudo_prompt` setting as the prompt. Each real call gives sudo a
    /// prompt of its own instead (the setting followed by a random
    /// marker), so that only that sudo's prompt is answered; the result's
    /// [`Output::real_command`](crate::Output::real_command) shows it.
    pub fn real_sudo_command(&self, command: &str) -> String {
        self.real(&env(), command, true, None)
    }

    /// The real command under `env`: the shell wrapper by default, and for
    /// sudo the user given here, else the `sudo_user` setting, and the
    /// prompt given (else the `sudo_prompt` setting).
    pub(crate) fn real(
        &self,
        env: &Env,
        command: &str,
        sudo: bool,
        prompt: Option<&str>,
    ) -> String {
        let user = self.user.clone().or_else(|| env.sudo_user());
        let spec = RemoteSpec {
            shell: self.shell.unwrap_or(true),
            shell_escape: self.shell_escape,
            sudo: sudo.then_some((user.as_deref(), self.group.as_deref())),
            prompt,
        };
        command::remote(env, command, &spec)
    }
}

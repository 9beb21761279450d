//! `run`, `sudo` and `remote_file_exists`: commands on the current host.

use crate::error::{Error, ErrorKind, Result};
use crate::operations::finish_message;
use crate::operations::options::{RunOptions, Sink};
use crate::operations::prompt::{ask_password, can_ask_password};
use crate::operations::session::{connection, current_host, remember_password, ssh_error};
use crate::output::{self, LinePrinter, Pipe};
use crate::result::Output;
use crate::ssh::{self, Reply, SshErrorKind, Stream};
use crate::state::{env, settings, Env, Settings};
use crate::sys::seconds;

/// Runs `command` on the current host (`host_string`) over SSH and returns
/// its output (Fabric's `run`).
///
/// The real command is wrapped as Fabric does (`/bin/bash -l -c "..."`,
/// with [`cd`](crate::cd), [`prefix`](crate::prefix), [`path`](crate::path)
/// and [`shell_env`](crate::shell_env)). Output is printed line by line as
/// `[host] out: ...` while it arrives. An exit code outside `ok_ret_codes`
/// is an error of kind [`ErrorKind::CommandFailed`] (with `warn_only`, a
/// warning and `Ok`). The connection is opened on first use and reused.
///
/// ```no_run
/// use twill::{cd, run, with_settings, Settings};
///
/// let _host = twill::settings(Settings::new().host_string("deploy@web1"));
/// let files = with_settings(cd("/srv/app"), || run("ls"))?;
/// for name in files.stdout_lines() {
///     println!("{name}");
/// }
/// # Ok::<(), twill::Error>(())
/// ```
pub fn run(command: impl AsRef<str>) -> Result<Output> {
    run_with(command, &RunOptions::new())
}

/// threadbare's name for [`run`].
pub fn remote(command: impl AsRef<str>) -> Result<Output> {
    run(command)
}

/// Runs `command` on the current host through sudo (Fabric's `sudo`):
/// `sudo -S -p 'sudo password: [<marker>]'  /bin/bash -l -c "..."`.
///
/// Each call tells sudo a prompt of its own (the `sudo_prompt` setting and
/// a random marker), and only that prompt, only once, is answered: the
/// `sudo_password` setting, else the `passwords` entry for the host, else
/// `password`; on a terminal with none of them set, twill asks for it
/// hidden, as Fabric does, and keeps it for the run. The password is
/// never printed, and output of [`run`] is never answered with it. A
/// rejected password is an error of kind [`ErrorKind::Auth`], and a
/// password that is needed where none can be had one of kind
/// [`ErrorKind::Prompt`]; the command is stopped in both cases.
///
/// Commands are any text: a literal, a `String`, a `format!`.
///
/// ```no_run
/// use twill::{sudo, with_settings, Settings};
///
/// fn restart(service: &str) -> twill::Result<()> {
///     with_settings(Settings::new().host_string("deploy@web1"), || {
///         sudo(format!("systemctl restart {service}"))?;
///         Ok(())
///     })
/// }
/// ```
pub fn sudo(command: impl AsRef<str>) -> Result<Output> {
    sudo_with(command, &RunOptions::new())
}

/// threadbare's name for [`sudo`].
pub fn remote_sudo(command: impl AsRef<str>) -> Result<Output> {
    sudo(command)
}

/// [`run`] with explicit options.
pub fn run_with(command: impl AsRef<str>, opts: &RunOptions) -> Result<Output> {
    execute(command.as_ref(), opts, false)
}

/// [`sudo`] with explicit options (user, group, ...).
pub fn sudo_with(command: impl AsRef<str>, opts: &RunOptions) -> Result<Output> {
    execute(command.as_ref(), opts, true)
}

/// Whether `path` exists on the current host (Fabric's `exists`), checked
/// with `stat` quietly; `~` and globs are expanded by the remote shell and
/// relative paths honour [`cd`](crate::cd).
pub fn remote_file_exists(path: impl AsRef<str>) -> Result<bool> {
    remote_file_exists_with(path, false)
}

/// [`remote_file_exists`], through sudo when `use_sudo`, for paths only
/// another user can see.
pub fn remote_file_exists_with(path: impl AsRef<str>, use_sudo: bool) -> Result<bool> {
    let command = crate::command::exists(path.as_ref());
    let opts = RunOptions::new().quiet(true);
    let out = if use_sudo {
        sudo_with(&command, &opts)?
    } else {
        run_with(&command, &opts)?
    };
    Ok(out.succeeded())
}

/// Closes every cached connection, printing Fabric's
/// `Disconnecting from <host>... done.` for each (status group).
pub fn disconnect_all() {
    let user = env().user();
    for name in ssh::disconnect_all() {
        output::status(&format!(
            "Disconnecting from {}... done.",
            denormalize(&name, &user)
        ));
    }
}

/// Fabric's short form of `user@host:port`: the user left out when it is
/// the current one, and port 22 left out.
fn denormalize(name: &str, current_user: &str) -> String {
    let name = match name.split_once('@') {
        Some((u, rest)) if u == current_user => rest,
        _ => name,
    };
    name.strip_suffix(":22").unwrap_or(name).to_string()
}

fn execute(command: &str, opts: &RunOptions, sudo: bool) -> Result<Output> {
    // `quiet` is a scope of its own for this call.
    let _quiet = opts.quiet.then(|| settings(Settings::new().quiet()));
    let env = env();
    let which = if sudo { "sudo" } else { "run" };
    let current = current_host(&env, which)?;
    let host = current.name.clone();
    // sudo gets a prompt of its own, so that nothing else that prints the
    // usual prompt is ever answered with the password.
    let prompt = sudo.then(|| unique_prompt(&env.sudo_prompt()));
    let real = opts.real(&env, command, sudo, prompt.as_deref());
    output::running(&env, &host, which, command, &real);

    let conn = connection(&env, &current).map_err(|e| e.with_command(command))?;
    let pty = opts.pty.unwrap_or_else(|| env.always_use_pty());
    let combine = opts.combine_stderr.unwrap_or_else(|| env.combine_stderr());
    let timeout = opts.timeout.or_else(|| env.command_timeout());

    let mut run = Capture::new(&env, &host, combine && !pty, opts, prompt);
    let exec_opts = ssh::ExecOptions { pty, timeout };
    let status = conn.exec(&real, &exec_opts, &mut |stream, data| {
        run.feed(stream, data)
    });
    run.finish();

    let (stdout, stderr) = (
        std::mem::take(&mut run.stdout),
        std::mem::take(&mut run.stderr),
    );
    let result =
        |code: i32, failed: bool| Output::new(stdout, stderr, code, failed, command, &real);
    let status = match status {
        Ok(s) => s,
        Err(e) if e.kind == SshErrorKind::Timeout => {
            let secs = timeout.map(seconds).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("{which}() timed out: command failed to finish in {secs} seconds while executing '{command}'"),
            )
            .with_host(&host)
            .with_output(result(-1, true)));
        }
        Err(e) => return Err(ssh_error(e, &host).with_command(command)),
    };
    let code = status.code.unwrap_or(-1);
    let failed = !env.ok_ret_codes().contains(&code);
    let out = result(code, failed);
    match run.sudo_state {
        SudoPrompt::NoPassword(why) => {
            return Err(Error::new(
                ErrorKind::Prompt,
                format!(
                    "sudo() on {host} asked for a password while executing '{command}', but {why}"
                ),
            )
            .with_host(&host)
            .with_output(out));
        }
        SudoPrompt::Rejected => {
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "sudo() on {host}: the sudo password was rejected while executing '{command}'"
                ),
            )
            .with_host(&host)
            .with_output(out));
        }
        SudoPrompt::NotSeen | SudoPrompt::Answered => {}
    }
    if !out.failed() {
        return Ok(out);
    }
    let warn_only = opts.warn_only.unwrap_or_else(|| env.warn_only());
    let msg = if warn_only {
        format!("{which}() received nonzero return code {code} while executing '{command}'!")
    } else {
        format!("{which}() received nonzero return code {code} while executing!\n\nRequested: {command}\nExecuted: {real}")
    };
    finish_message(&env, msg, out, warn_only, Some(&host))
}

/// `prompt` followed by a random marker: the prompt one sudo call is told
/// to print.
fn unique_prompt(prompt: &str) -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: fills a local buffer of the given length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // No kernel randomness: time and address make a marker that
        // output written in advance cannot know.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = ((t as u64) ^ (&bytes as *const _ as u64)).to_le_bytes();
    }
    let marker: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prompt} [{marker}]")
}

/// The password that answers a sudo prompt on `host`, in Fabric's order.
fn sudo_password(env: &Env, host: &str) -> Option<String> {
    env.sudo_password()
        .or_else(|| env.passwords().get(host).cloned())
        .or_else(|| env.password())
}

/// What became of sudo's password prompt during one call.
enum SudoPrompt {
    NotSeen,
    Answered,
    /// It came again after the answer: the password is wrong.
    Rejected,
    /// Nothing could answer it, for this reason.
    NoPassword(String),
}

/// Collects a command's output, prints it line by line, and answers
/// sudo's prompt and the `prompts` setting.
struct Capture {
    env: Env,
    host: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    out_printer: LinePrinter,
    err_printer: LinePrinter,
    merge_err: bool,
    stdout_sink: Option<Sink>,
    stderr_sink: Option<Sink>,
    /// The prompt of the sudo this call started; `None` for `run`.
    sudo_prompt: Option<String>,
    sudo_state: SudoPrompt,
    prompts: Vec<(String, String)>,
    /// The last bytes seen on each stream, to spot prompts split across chunks.
    tail: [Vec<u8>; 2],
}

impl Capture {
    fn new(
        env: &Env,
        host: &str,
        merge_err: bool,
        opts: &RunOptions,
        sudo_prompt: Option<String>,
    ) -> Capture {
        Capture {
            env: env.clone(),
            host: host.to_string(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            out_printer: LinePrinter::new(env, host, Pipe::Out),
            err_printer: LinePrinter::new(env, host, if merge_err { Pipe::Out } else { Pipe::Err }),
            merge_err,
            stdout_sink: opts.stdout.clone(),
            stderr_sink: opts.stderr.clone(),
            sudo_prompt,
            sudo_state: SudoPrompt::NotSeen,
            prompts: env.prompts().to_vec(),
            tail: [Vec::new(), Vec::new()],
        }
    }

    fn feed(&mut self, stream: Stream, data: &[u8]) -> Reply {
        let i = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let to_err = i == 1 && !self.merge_err;
        let (printer, buf, sink) = if i == 0 {
            (&mut self.out_printer, &mut self.stdout, &self.stdout_sink)
        } else if to_err {
            (&mut self.err_printer, &mut self.stderr, &self.stderr_sink)
        } else {
            (&mut self.err_printer, &mut self.stdout, &self.stdout_sink)
        };
        printer.feed(data);
        match sink {
            Some(sink) => {
                // A writer that fails (a closed pipe) only loses its copy.
                let _ = sink.lock().write_all(data);
            }
            None => buf.extend_from_slice(data),
        }

        let tail = &mut self.tail[i];
        tail.extend_from_slice(data);
        let keep = 512;
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
        if let Some(prompt) = self.sudo_prompt.as_deref() {
            if tail.ends_with(prompt.as_bytes()) {
                tail.clear();
                // The prompt is not kept; it is shown as the setting says
                // it (without the marker), as Fabric shows it.
                if sink.is_none() && buf.ends_with(prompt.as_bytes()) {
                    buf.truncate(buf.len() - prompt.len());
                }
                printer.forget_tail(prompt.len());
                let (reply, asked) = self.answer_sudo();
                if !asked {
                    let printer = if i == 0 {
                        &mut self.out_printer
                    } else {
                        &mut self.err_printer
                    };
                    printer.feed(self.env.sudo_prompt().as_bytes());
                }
                return reply;
            }
        }
        for (expected, reply) in &self.prompts {
            if !expected.is_empty() && tail.ends_with(expected.as_bytes()) {
                tail.clear();
                printer.finish();
                return Reply::Input(format!("{reply}\n").into_bytes());
            }
        }
        Reply::Continue
    }

    /// sudo asks for the password: answered once; asked again, the
    /// password was wrong, and the command is stopped rather than left
    /// waiting. Also says whether the terminal was asked (which showed
    /// the prompt).
    fn answer_sudo(&mut self) -> (Reply, bool) {
        if !matches!(self.sudo_state, SudoPrompt::NotSeen) {
            self.sudo_state = SudoPrompt::Rejected;
            return (Reply::Stop, false);
        }
        let mut asked = false;
        let password = match sudo_password(&self.env, &self.host) {
            Some(p) => p,
            None if can_ask_password() => {
                // Fabric shows sudo's prompt and reads the password hidden.
                asked = true;
                let shown = format!("[{}] out: {} ", self.host, self.env.sudo_prompt());
                match ask_password(&shown) {
                    Ok(Some(p)) => {
                        remember_password(&self.host, &p);
                        p
                    }
                    Ok(None) => {
                        self.sudo_state = SudoPrompt::NoPassword(
                            "no password was given at the terminal".to_string(),
                        );
                        return (Reply::Stop, true);
                    }
                    Err(e) => {
                        self.sudo_state = SudoPrompt::NoPassword(e.message().to_string());
                        return (Reply::Stop, true);
                    }
                }
            }
            None => {
                self.sudo_state = SudoPrompt::NoPassword(
                    "none is set (set sudo_password or password, or run on a terminal to be asked)"
                        .to_string(),
                );
                return (Reply::Stop, false);
            }
        };
        self.sudo_state = SudoPrompt::Answered;
        (Reply::Input(format!("{password}\n").into_bytes()), asked)
    }

    fn finish(&mut self) {
        self.out_printer.finish();
        self.err_printer.finish();
        for sink in [&self.stdout_sink, &self.stderr_sink].into_iter().flatten() {
            let _ = sink.lock().flush();
        }
    }
}

//! `run`, `sudo`, `open_shell` and `remote_file_exists`: commands on the
//! current host, with local input passed on to them.

use std::io::IsTerminal;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::events::{OpKind, OpRecord};
use crate::interrupt;
use crate::operations::dry_run;
use crate::operations::finish_message;
use crate::operations::options::{RunOptions, Sink};
use crate::operations::prompt::{ask_password, can_ask_at_terminal, refusal, refused};
use crate::operations::session::{
    connection, current_host, exec_error, remember_password, ssh_error,
};
use crate::output::{self, LinePrinter, Pipe};
use crate::result::Output;
use crate::ssh::{self, Exchange, Input, Reply, Stream};
use crate::state::{env, settings, Env, Settings};
use crate::terminal::{self, Mode, ModeGuard, Winch};

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
/// Local standard input goes to the command, as in Fabric:
///
/// - On a terminal, with a pty (the default), each key goes as it is
///   typed, the terminal in cbreak mode (Fabric's `char_buffered`) for the
///   command's time and put back however it ends; the remote pty echoes,
///   a window size change reaches it, and the unfinished last line (a
///   question) is shown as it comes. Ctrl-C stops the command, unless the
///   `remote_interrupt` setting is true: then Ctrl-C (and Ctrl-Z, Ctrl-\)
///   go to the remote program as keys. Without a pty, whole lines go,
///   edited and echoed by the terminal (echo off when `echo_stdin` is
///   false), and Ctrl-D at the start of a line ends the command's input.
/// - Otherwise (a pipe, a file, /dev/null) what comes is passed on as it
///   comes, not echoed, and its end ends the command's input (with a pty, as Ctrl-D
///   typed at it would), so that `echo y | my-fab ...` answers a question
///   and a command that reads more gets end-of-file instead of waiting.
///   What a command does not read before it ends may be lost.
/// - Where nobody may be asked (`abort_on_prompts`, the `parallel`
///   setting, a parallel worker, whose standard input is /dev/null), the
///   terminal is not read: the command's input ends at once. A command
///   that then fails with a question unanswered on its last line is the
///   error Fabric gives for a prompt it may not show (kind
///   [`ErrorKind::Prompt`], `Needed to prompt for '...' (host: ...), but
///   abort-on-prompts was set to True`), whatever `warn_only` says.
///
/// With the `prompts` setting, output that ends with one of its texts is
/// answered with its reply and a newline (the first that matches, in
/// order, checked at each line break and at the end of each chunk, as
/// Fabric does), and the text is left out of the captured output; the
/// command's input then never ends on its own, so that later questions
/// can still be answered.
///
/// With [`RunOptions::interactive`] (`twill --tty`), the command gets a
/// real terminal instead, as `ssh -t` gives one: the local terminal in raw
/// mode, every key passed on, output written as it comes and not kept.
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
/// Local input goes to the command as for [`run`], but not before sudo
/// has asked for its password and been answered, or the command has
/// printed something else, so that sudo never reads it as the password;
/// input that is there goes anyway after two seconds without the prompt
/// (a command that reads before it prints), but its end waits for one of
/// the two. With a pty, input after the password waits another second,
/// while sudo may set up a pty of its own and would lose what came
/// earlier, and the end of local input is not passed on at all: sudo's
/// own pty (its `use_pty` option) can hang when an end-of-file key
/// reaches it as the command ends. Without a pty, the end goes as for
/// [`run`].
///
/// With [`RunOptions::interactive`], the prompt is found and answered in
/// the same way (and kept off the screen), local input waits for it in
/// the same way, and then every key goes to the command.
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
    run_or_sudo(command.as_ref(), opts, false)
}

/// [`sudo`] with explicit options (user, group, ...).
pub fn sudo_with(command: impl AsRef<str>, opts: &RunOptions) -> Result<Output> {
    run_or_sudo(command.as_ref(), opts, true)
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
    let out = run_or_sudo(&command, &RunOptions::new().quiet(true), use_sudo)?;
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

/// [`run_with`], or [`sudo_with`] when `sudo`: the one path of both.
pub(crate) fn run_or_sudo(command: &str, opts: &RunOptions, sudo: bool) -> Result<Output> {
    // `quiet` is a scope of its own for this call.
    let _quiet = opts.quiet.then(|| settings(Settings::new().quiet()));
    let env = env();
    let which = if sudo { "sudo" } else { "run" };
    let current = current_host(&env, which)?;
    let host = current.name.clone();
    let kind = if sudo { OpKind::Sudo } else { OpKind::Run };
    if env.dry_run() {
        let real = opts.real(&env, command, sudo, None);
        return OpRecord::wrap(&env, kind, Some(&host), command, &real, || {
            dry_run::command(&env, &host, which, command, opts, sudo)
        });
    }
    // sudo gets a prompt of its own, so that nothing else that prints the
    // usual prompt is ever answered with the password.
    let prompt = sudo.then(|| unique_prompt(&env.sudo_prompt()));
    let real = opts.real(&env, command, sudo, prompt.as_deref());
    output::running(&env, &host, which, command, &real);
    OpRecord::wrap(&env, kind, Some(&host), command, &real, || {
        let conn = connection(&env, &current).map_err(|e| e.with_command(command))?;
        let interactive = opts.interactive;
        let pty = interactive || opts.pty.unwrap_or_else(|| env.always_use_pty());
        let combine = opts.combine_stderr.unwrap_or_else(|| env.combine_stderr());
        let timeout = opts.timeout.or_else(|| env.command_timeout());

        // sudo's own pty (its `use_pty`, on by default in Debian and Ubuntu)
        // can hang when the end-of-file key reaches it as the command ends.
        // With a real terminal, nothing but sudo's prompt is answered.
        let may_end = !(sudo && pty) && (interactive || env.prompts().is_empty());
        let mut input = LocalInput::new(&env, pty, interactive, may_end);
        if sudo {
            input.hold_for_sudo();
        }
        let exec_opts = ssh::ExecOptions {
            pty,
            term: if interactive { local_term() } else { None },
            timeout,
            despite_interrupt: false,
        };
        // Only the exchange differs: raw output and every key for a real
        // terminal, lines printed and kept otherwise. The terminal is put
        // back (`end`) before anything is reported.
        let (status, ended) = if interactive {
            let mut raw = Raw::new(&env, &host, input, prompt);
            let status = conn.exec(&real, &exec_opts, &mut raw);
            (status, raw.end())
        } else {
            let mut run = Capture::new(&env, &host, combine && !pty, opts, prompt, pty, input);
            let status = conn.exec(&real, &exec_opts, &mut run);
            (status, run.end())
        };
        let Ended {
            stdout,
            stderr,
            question,
            refusal,
            sudo_state,
        } = ended;
        let result =
            |code: i32, failed: bool| Output::new(stdout, stderr, code, failed, command, &real);
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                return Err(exec_error(e, which, &host, command, timeout, || {
                    result(-1, true)
                }))
            }
        };
        let code = status.code.unwrap_or(-1);
        let failed = !env.ok_ret_codes().contains(&code);
        let out = result(code, failed);
        match sudo_state {
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
        if let (Some(reason), Some(question)) = (refusal, question) {
            return Err(refused(&format!("'{question}'"), reason)
                .with_host(&host)
                .with_command(command)
                .with_output(out));
        }
        let warn_only = opts.warn_only.unwrap_or_else(|| env.warn_only());
        let msg = if warn_only {
            format!("{which}() received nonzero return code {code} while executing '{command}'!")
        } else {
            format!("{which}() received nonzero return code {code} while executing!\n\nRequested: {command}\nExecuted: {real}")
        };
        finish_message(&env, msg, out, warn_only, Some(&host))
    })
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

/// What an exchange leaves once its command has ended.
struct Ended {
    /// The output kept (none with a real terminal).
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The question the command left unanswered on its last line.
    question: Option<String>,
    /// Why the terminal was not read, when nobody may be asked.
    refusal: Option<&'static str>,
    sudo_state: SudoPrompt,
}

/// sudo on `host` asks for the password (`state` says whether it did
/// before): answered once; asked again, the password was wrong, and the
/// command is stopped rather than left waiting. With no password set, it
/// is asked for hidden at the terminal, as Fabric does, showing `shown`,
/// with the terminal as it was before the command meanwhile (`terminal`
/// paused), and kept for the run. Also says whether the terminal was
/// asked (which showed the prompt).
fn answer_sudo(
    env: &Env,
    host: &str,
    state: &mut SudoPrompt,
    terminal: Option<&ModeGuard>,
    shown: &str,
) -> (Reply, bool) {
    if !matches!(state, SudoPrompt::NotSeen) {
        *state = SudoPrompt::Rejected;
        return (Reply::Stop, false);
    }
    let mut asked = false;
    let password = match sudo_password(env, host) {
        Some(p) => p,
        None if can_ask_at_terminal() => {
            asked = true;
            if let Some(t) = terminal {
                t.pause();
            }
            let answer = ask_password(shown);
            if let Some(t) = terminal {
                t.resume();
            }
            match answer {
                Ok(Some(p)) => {
                    remember_password(host, &p);
                    p
                }
                Ok(None) => {
                    *state =
                        SudoPrompt::NoPassword("no password was given at the terminal".to_string());
                    return (Reply::Stop, true);
                }
                Err(e) => {
                    *state = SudoPrompt::NoPassword(e.message().to_string());
                    return (Reply::Stop, true);
                }
            }
        }
        None => {
            *state = SudoPrompt::NoPassword(
                "none is set (set sudo_password or password, or run on a terminal to be asked)"
                    .to_string(),
            );
            return (Reply::Stop, false);
        }
    };
    *state = SudoPrompt::Answered;
    (Reply::Input(format!("{password}\n").into_bytes()), asked)
}

/// How long [`sudo`] holds local input back while sudo's password prompt
/// may still come.
const SUDO_HOLD: Duration = Duration::from_secs(2);

/// How long after sudo has its password (on a pty) local input waits.
const SUDO_SETTLE: Duration = Duration::from_secs(1);

/// How much of each stream's output is kept to find prompts in, at least.
const TAIL: usize = 512;

/// Local input of one remote command: where it comes from, and when it may
/// go (see [`run`]).
struct LocalInput {
    /// Standard input is read (a pipe, a file, /dev/null, or the
    /// terminal in `terminal`'s mode).
    reads: bool,
    /// The terminal, in the command's mode until this is dropped.
    terminal: Option<ModeGuard>,
    /// The terminal's size changes, with a pty.
    winch: Option<Winch>,
    /// Sent before anything else: [`open_shell`]'s command.
    first: Option<Vec<u8>>,
    /// [`sudo`]: input waits until sudo's prompt is answered or the
    /// command prints something else (the end of local input with no time
    /// limit: sudo would read it as an empty password).
    waiting: bool,
    /// Data goes no earlier than this.
    data_at: Option<Instant>,
    /// The end of local input goes no earlier than this.
    end_at: Option<Instant>,
    /// The end of local input may end the command's input: nothing twill
    /// answers (the `prompts` setting) needs it open.
    may_end: bool,
    /// Local input has ended, or there is none.
    ended: bool,
    /// The end has been passed on.
    end_sent: bool,
    /// Why the terminal was not read, when nobody may be asked.
    refused: Option<&'static str>,
    buf: Vec<u8>,
}

impl LocalInput {
    /// The input of a command that has a pty or not; `shell` for
    /// [`open_shell`]; `may_end` when the end of local input may end the
    /// command's.
    fn new(env: &Env, pty: bool, shell: bool, may_end: bool) -> LocalInput {
        let mut input = LocalInput {
            reads: false,
            terminal: None,
            winch: None,
            first: None,
            waiting: false,
            data_at: None,
            end_at: None,
            may_end,
            ended: true,
            end_sent: false,
            refused: None,
            buf: Vec::new(),
        };
        if interrupt::in_worker() {
            // Standard input is /dev/null: its end comes at once.
            input.refused = refusal();
            input.reads = true;
        } else if !std::io::stdin().is_terminal() {
            input.reads = true;
        } else if let Some(reason) = refusal() {
            input.refused = Some(reason);
        } else {
            // Fabric: remote_interrupt unset forwards Ctrl-C in a shell only.
            let forward_interrupt = pty && env.remote_interrupt().unwrap_or(shell);
            let mode = if !pty {
                Mode::Lines {
                    echo: env.echo_stdin(),
                }
            } else if shell {
                Mode::Raw {
                    signals: !forward_interrupt,
                }
            } else {
                Mode::Keys {
                    signals: !forward_interrupt,
                }
            };
            // Not in the foreground (a background job), or another
            // thread's command has the terminal: no input.
            if let Some(guard) = ModeGuard::enter(mode) {
                // Ctrl-C outside any `execute` then ends the process
                // through the handler, which lets the terminal be put back.
                interrupt::install();
                input.terminal = Some(guard);
                input.reads = true;
                if pty {
                    input.winch = Winch::watch();
                }
            }
        }
        if input.reads {
            input.ended = false;
            input.buf = vec![0; 16 * 1024];
        }
        input
    }

    /// Holds input back until sudo's prompt is answered or the command
    /// prints something else ([`release`](Self::release)); data that is
    /// there goes anyway after [`SUDO_HOLD`].
    fn hold_for_sudo(&mut self) {
        self.waiting = true;
        self.data_at = Some(Instant::now() + SUDO_HOLD);
    }

    fn waiting(&self) -> bool {
        self.waiting
    }

    /// Lets input go, after `settle` if given.
    fn release(&mut self, settle: Option<Duration>) {
        self.waiting = false;
        self.data_at = settle.map(|d| Instant::now() + d);
        self.end_at = self.data_at;
    }

    /// The end of local input is due and may go.
    fn end_due(&self) -> bool {
        self.ended && !self.end_sent && self.may_end && !self.waiting
    }

    /// Whether someone types at the terminal for the command.
    fn interactive(&self) -> bool {
        self.terminal.is_some()
    }

    fn fds(&mut self, fds: &mut Vec<RawFd>) -> Option<Instant> {
        if let Some(w) = &self.winch {
            fds.push(w.fd());
        }
        if let Some(at) = self.data_at {
            return Some(at);
        }
        if self.reads && !self.ended {
            fds.push(libc::STDIN_FILENO);
        }
        self.end_at.filter(|_| self.end_due())
    }

    fn next(&mut self) -> Option<Input> {
        if self.winch.as_ref().is_some_and(Winch::changed) {
            return Some(Input::Resized);
        }
        if let Some(first) = self.first.take() {
            return Some(Input::Bytes(first));
        }
        if let Some(at) = self.data_at {
            if Instant::now() < at {
                return None;
            }
            self.data_at = None;
        }
        if self.reads && !self.ended {
            match terminal::read_stdin(&mut self.buf) {
                terminal::Read::Data(n) => return Some(Input::Bytes(self.buf[..n].to_vec())),
                terminal::Read::End => self.ended = true,
                terminal::Read::Nothing => return None,
            }
        }
        if self.end_due() && self.end_at.is_none_or(|at| Instant::now() >= at) {
            self.end_sent = true;
            return Some(Input::End);
        }
        None
    }
}

/// Collects a command's output, prints it line by line, answers sudo's
/// prompt and the `prompts` setting, and passes local input on.
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
    /// How much of `tail` is kept.
    keep: usize,
    /// The stream that spoke last.
    last: usize,
    /// The command has a pty.
    pty: bool,
    input: LocalInput,
}

impl Capture {
    fn new(
        env: &Env,
        host: &str,
        merge_err: bool,
        opts: &RunOptions,
        sudo_prompt: Option<String>,
        pty: bool,
        input: LocalInput,
    ) -> Capture {
        let prompts = env.prompts();
        let keep = prompts
            .iter()
            .map(|(k, _)| k.len())
            .chain(sudo_prompt.as_ref().map(String::len))
            .fold(TAIL, usize::max);
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
            prompts,
            tail: [Vec::new(), Vec::new()],
            keep,
            last: 0,
            pty,
            input,
        }
    }

    fn feed(&mut self, stream: Stream, data: &[u8]) -> Reply {
        let i = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        self.last = i;
        let to_err = i == 1 && !self.merge_err;
        // Shown first, answered after, as Fabric does.
        self.printer(i).feed(data);
        let sink = if to_err {
            &self.stderr_sink
        } else {
            &self.stdout_sink
        };
        let captured = match sink {
            Some(sink) => {
                // A writer that fails (a closed pipe) only loses its copy.
                let _ = sink.lock().write_all(data);
                false
            }
            None => true,
        };

        let mut answers = Vec::new();
        let mut answered = false;
        let mut rest = data;
        while !rest.is_empty() {
            // Fabric looks for prompts after each piece of a chunk split
            // at line breaks (each break a piece of its own).
            let len = match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(0) => 1,
                Some(p) => p,
                None => rest.len(),
            };
            let (piece, after) = rest.split_at(len);
            rest = after;
            if captured {
                self.buffer(to_err).extend_from_slice(piece);
            }
            let tail = &mut self.tail[i];
            tail.extend_from_slice(piece);
            if tail.len() > self.keep {
                tail.drain(..tail.len() - self.keep);
            }

            let matched = self
                .prompts
                .iter()
                .find(|(expected, _)| !expected.is_empty() && tail.ends_with(expected.as_bytes()));
            if let Some((expected, reply)) = matched {
                // Fabric leaves the prompt out of what it captures.
                tail.truncate(tail.len() - expected.len());
                let n = expected.len();
                answers.extend_from_slice(format!("{reply}\n").as_bytes());
                if captured {
                    let buf = self.buffer(to_err);
                    buf.truncate(buf.len().saturating_sub(n));
                }
                if rest.is_empty() {
                    self.printer(i).finish();
                }
                continue;
            }

            let sudo_asks = self
                .sudo_prompt
                .as_deref()
                .is_some_and(|p| tail.ends_with(p.as_bytes()));
            if !sudo_asks {
                continue;
            }
            tail.clear();
            let prompt = self.sudo_prompt.clone().expect("matched above");
            // The prompt is not kept; it is shown as the setting says
            // it (without the marker), as Fabric shows it.
            if captured {
                let buf = self.buffer(to_err);
                if buf.ends_with(prompt.as_bytes()) {
                    buf.truncate(buf.len() - prompt.len());
                }
            }
            self.printer(i).forget_tail(prompt.len());
            // Fabric shows sudo's prompt when it asks for the password.
            let shown = format!("[{}] out: {} ", self.host, self.env.sudo_prompt());
            let (reply, asked) = answer_sudo(
                &self.env,
                &self.host,
                &mut self.sudo_state,
                self.input.terminal.as_ref(),
                &shown,
            );
            if !asked {
                let shown = self.env.sudo_prompt().to_string();
                self.printer(i).feed(shown.as_bytes());
            }
            match reply {
                Reply::Input(bytes) => answers.extend_from_slice(&bytes),
                Reply::Continue => {}
                Reply::Stop => return Reply::Stop,
            }
            // On a pty, sudo throws away what was typed ahead when it
            // puts the terminal back after reading the password; the
            // newline it prints then is the sign that input may go.
            answered = self.pty;
            if !self.pty {
                self.input.release(None);
            }
        }

        // What may be the start of sudo's prompt is neither shown nor taken
        // for the command's own output yet.
        let hold = self
            .sudo_prompt
            .as_deref()
            .map_or(0, |p| started_prompt(&self.tail[i], p.as_bytes()));
        if hold == 0 && !answered && self.input.waiting() {
            // After a password on a pty, sudo may go on to relay the input
            // through a pty of its own, which it sets up after checking the
            // password: what comes before may be lost. Input waits a
            // little.
            let sudo_answered = matches!(self.sudo_state, SudoPrompt::Answered);
            let settle = (self.pty && sudo_answered).then_some(SUDO_SETTLE);
            self.input.release(settle);
        }
        if self.input.interactive() {
            self.printer(i).show_partial(hold);
        }
        if answers.is_empty() {
            Reply::Continue
        } else {
            Reply::Input(answers)
        }
    }

    fn printer(&mut self, i: usize) -> &mut LinePrinter {
        if i == 0 {
            &mut self.out_printer
        } else {
            &mut self.err_printer
        }
    }

    fn buffer(&mut self, to_err: bool) -> &mut Vec<u8> {
        if to_err {
            &mut self.stderr
        } else {
            &mut self.stdout
        }
    }

    fn finish(&mut self) {
        self.out_printer.finish();
        self.err_printer.finish();
        for sink in [&self.stdout_sink, &self.stderr_sink].into_iter().flatten() {
            let _ = sink.lock().flush();
        }
    }

    /// Finishes the output and puts the terminal back; what is left.
    fn end(mut self) -> Ended {
        self.finish();
        Ended {
            question: self.question(),
            refusal: self.input.refused,
            stdout: self.stdout,
            stderr: self.stderr,
            sudo_state: self.sudo_state,
        }
    }

    /// The question the command left unanswered, if its output ends with
    /// one: an unfinished last line that reads as a question (ends with
    /// `?`, `:` or `]`, as `Name? `, `Password: ` and `[Y/n] ` do).
    fn question(&self) -> Option<String> {
        let tail = &self.tail[self.last];
        let start = tail
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(0, |p| p + 1);
        let line = String::from_utf8_lossy(&tail[start..]);
        let line = line.trim();
        line.ends_with(['?', ':', ']']).then(|| line.to_string())
    }
}

impl Exchange for Capture {
    fn output(&mut self, stream: Stream, data: &[u8]) -> Reply {
        self.feed(stream, data)
    }

    fn input_fds(&mut self, fds: &mut Vec<RawFd>) -> Option<Instant> {
        self.input.fds(fds)
    }

    fn input(&mut self) -> Option<Input> {
        self.input.next()
    }
}

/// The length of the longest start of `prompt` that `tail` ends with (0
/// when none does; the whole prompt counts too).
fn started_prompt(tail: &[u8], prompt: &[u8]) -> usize {
    (1..=prompt.len().min(tail.len()))
        .rev()
        .find(|&k| tail.ends_with(&prompt[..k]))
        .unwrap_or(0)
}

/// Opens an interactive shell on the current host (Fabric's
/// `open_shell`): the user's login shell with a pty (the local terminal's
/// type and size), its output written to standard output as it comes,
/// with no prefix and nothing captured, and local input passed on as for
/// [`run`], the terminal in raw mode (as OpenSSH's `ssh` puts it) until
/// the shell ends. `command`, if any, is sent first, followed by a
/// newline, as if typed. Ctrl-C goes to the remote shell unless the
/// `remote_interrupt` setting is false. How the shell ends is not looked
/// at: there is no failure handling, as in Fabric; a lost connection or
/// an interrupt is an error. There is no time limit (`command_timeout`
/// does not apply).
///
/// ```no_run
/// use twill::{open_shell, Settings};
///
/// let _host = twill::settings(Settings::new().host_string("deploy@web1"));
/// open_shell("cd /srv/app && git log -1")?;
/// open_shell(None)?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn open_shell<'a>(command: impl Into<Option<&'a str>>) -> Result<()> {
    let command = command.into();
    let env = env();
    let current = current_host(&env, "open_shell")?;
    let host = current.name.clone();
    if env.dry_run() {
        dry_run::shell(&host, command);
        return Ok(());
    }
    let conn = connection(&env, &current)?;
    let mut input = LocalInput::new(&env, true, true, true);
    if let Some(command) = command.filter(|c| !c.is_empty()) {
        input.first = Some(format!("{command}\n").into_bytes());
    }
    let mut shell = Raw::new(&env, &host, input, None);
    let opts = ssh::ExecOptions {
        pty: true,
        term: local_term(),
        timeout: None,
        despite_interrupt: false,
    };
    let status = conn.shell(&opts, &mut shell);
    // The terminal is put back before anything is reported.
    shell.end();
    status.map(|_| ()).map_err(|e| ssh_error(e, &host))
}

/// The local terminal's type (`$TERM`), for a remote pty that draws on it.
fn local_term() -> Option<String> {
    std::env::var("TERM").ok().filter(|t| !t.is_empty())
}

/// The exchange of a command with a real terminal ([`open_shell`], and
/// [`run`] or [`sudo`] with [`RunOptions::interactive`]): output written
/// as it comes, with no prefix and nothing kept, local input passed on,
/// and the prompt of the sudo the call started answered.
struct Raw {
    env: Env,
    host: String,
    input: LocalInput,
    /// The prompt of the sudo this call started; `None` for `run` and
    /// `open_shell`.
    sudo_prompt: Option<String>,
    sudo_state: SudoPrompt,
    /// The last bytes of output, as long as the prompt, to find it in
    /// however the output was cut.
    tail: Vec<u8>,
    /// Output that may be the start of sudo's prompt, not written yet.
    held: Vec<u8>,
}

impl Raw {
    fn new(env: &Env, host: &str, input: LocalInput, sudo_prompt: Option<String>) -> Raw {
        Raw {
            env: env.clone(),
            host: host.to_string(),
            input,
            sudo_prompt,
            sudo_state: SudoPrompt::NotSeen,
            tail: Vec::new(),
            held: Vec::new(),
        }
    }

    fn feed(&mut self, data: &[u8]) -> Reply {
        let Some(prompt) = self.sudo_prompt.clone() else {
            output::emit_raw(Pipe::Out, data);
            return Reply::Continue;
        };
        let prompt = prompt.as_bytes();
        let mut shown = std::mem::take(&mut self.held);
        shown.extend_from_slice(data);
        self.tail.extend_from_slice(data);
        if self.tail.len() > prompt.len() {
            self.tail.drain(..self.tail.len() - prompt.len());
        }
        if self.tail.ends_with(prompt) {
            self.tail.clear();
            // The prompt, with its marker, is not shown; the setting's
            // text is, as for sudo without a real terminal.
            shown.truncate(shown.len().saturating_sub(prompt.len()));
            output::emit_raw(Pipe::Out, &shown);
            let ask = format!("{} ", self.env.sudo_prompt());
            let (reply, asked) = answer_sudo(
                &self.env,
                &self.host,
                &mut self.sudo_state,
                self.input.terminal.as_ref(),
                &ask,
            );
            if !asked && matches!(reply, Reply::Input(_)) {
                output::emit_raw(Pipe::Out, ask.as_bytes());
            }
            return reply;
        }
        // While local input waits for sudo's prompt, so does what may be
        // its start; anything else lets input go (after a password, once
        // sudo has had time to set up a pty of its own, as for `sudo`).
        let hold = if self.input.waiting() {
            started_prompt(&self.tail, prompt).min(shown.len())
        } else {
            0
        };
        if hold == 0 && self.input.waiting() {
            let answered = matches!(self.sudo_state, SudoPrompt::Answered);
            self.input.release(answered.then_some(SUDO_SETTLE));
        }
        self.held = shown.split_off(shown.len() - hold);
        output::emit_raw(Pipe::Out, &shown);
        Reply::Continue
    }

    /// Writes what was held back and puts the terminal back; what is left.
    fn end(self) -> Ended {
        if !self.held.is_empty() {
            output::emit_raw(Pipe::Out, &self.held);
        }
        Ended {
            stdout: Vec::new(),
            stderr: Vec::new(),
            question: None,
            refusal: self.input.refused,
            sudo_state: self.sudo_state,
        }
    }
}

impl Exchange for Raw {
    fn output(&mut self, _stream: Stream, data: &[u8]) -> Reply {
        self.feed(data)
    }

    fn input_fds(&mut self, fds: &mut Vec<RawFd>) -> Option<Instant> {
        self.input.fds(fds)
    }

    fn input(&mut self) -> Option<Input> {
        self.input.next()
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_start_of_a_prompt_is_found_at_the_end_of_output() {
        let prompt = b"sudo password: [0a1b]";
        assert_eq!(started_prompt(b"hello\nsudo pass", prompt), 9);
        assert_eq!(
            started_prompt(b"hello\nsudo password: [0a1b]", prompt),
            prompt.len()
        );
        assert_eq!(started_prompt(b"hello\n", prompt), 0);
        assert_eq!(started_prompt(b"s", prompt), 1);
        assert_eq!(started_prompt(b"", prompt), 0);
    }
}

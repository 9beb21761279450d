//! Everything twill prints goes through here: Fabric's line formats, the
//! output groups of `hide`/`show`, and one lock so that lines from several
//! threads never mix inside a line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::colors;
use crate::error::Error;
use crate::events;
use crate::state::{env, Env, Group};

static LOCK: Mutex<()> = Mutex::new(());

/// Set in a forked worker: print with plain `write(2)` calls.
static IN_WORKER: AtomicBool = AtomicBool::new(false);

/// In a forked worker: another thread of the parent may have held the
/// print lock, or the standard library's stdout/stderr locks, at the
/// moment of the fork; no one would ever release them here. From now on
/// this process prints with plain `write(2)` calls under a fresh lock.
pub(crate) fn reset_after_fork() {
    if LOCK.is_locked() {
        // SAFETY: the process has a single thread, so no guard is alive.
        unsafe { LOCK.force_unlock() };
    }
    IN_WORKER.store(true, Ordering::SeqCst);
}

/// Writes all of `bytes` to file descriptor `fd`, bypassing std's locks.
fn write_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a live buffer to a descriptor we own.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Which standard stream a piece of output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    Out,
    Err,
}

/// Writes `text` to stdout or stderr in one piece, under the print lock.
/// The line becomes an event for the run's loggers too.
pub(crate) fn emit(pipe: Pipe, text: &str) {
    emit_raw(pipe, text.as_bytes());
    if events::enabled() {
        let stream = match pipe {
            Pipe::Out => events::Stream::Out,
            Pipe::Err => events::Stream::Err,
        };
        events::printed(&env(), stream, text);
    }
}

/// Writes what a parallel worker printed (and recorded itself) to stdout
/// or stderr.
pub(crate) fn forward(pipe: Pipe, text: &str) {
    emit_raw(pipe, text.as_bytes());
}

/// Writes raw bytes to stdout or stderr as they are, under the print lock:
/// a line of twill's through [`emit`], or a remote shell's output
/// ([`open_shell`](crate::open_shell)), which is a terminal's stream.
pub(crate) fn emit_raw(pipe: Pipe, bytes: &[u8]) {
    let _g = LOCK.lock();
    if IN_WORKER.load(Ordering::Relaxed) {
        write_fd(if pipe == Pipe::Out { 1 } else { 2 }, bytes);
        return;
    }
    // Output that cannot be written (a closed pipe) is dropped, as a
    // terminal program would; it must never turn into a failed command.
    match pipe {
        Pipe::Out => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(bytes);
            let _ = o.flush();
        }
        Pipe::Err => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(bytes);
            let _ = e.flush();
        }
    }
}

/// Standard output as a writer, for what asks questions at the terminal
/// (`prompt`, `confirm`): each write goes out whole through [`emit`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Terminal;

impl Write for Terminal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        emit(Pipe::Out, &String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Standard output or error as a writer of raw bytes, written as they
/// come through [`emit_raw`] (a run's lines replayed from its journal).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) struct Raw(pub(crate) Pipe);

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        emit_raw(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Empties std's stdout buffer before a fork, so that nothing buffered is
/// written twice, by the caller and by the new process.
pub(crate) fn flush_before_fork() {
    let _ = std::io::stdout().flush();
}

/// `[host] run: command` (the real command instead when `debug` is shown).
pub(crate) fn running(env: &Env, host: &str, verb: &str, command: &str, real: &str) {
    let levels = env.levels();
    if levels.get(Group::Debug) {
        emit(Pipe::Out, &format!("[{host}] {verb}: {real}\n"));
    } else if levels.get(Group::Running) {
        emit(Pipe::Out, &format!("[{host}] {verb}: {command}\n"));
    }
}

/// A path for a printed line: its bytes as UTF-8 (invalid sequences
/// replaced), and control characters written as escapes (`\n`, `\x1b`),
/// so that a name from a server cannot start a line of its own or talk
/// to the terminal.
pub(crate) fn path_text(p: &std::path::Path) -> String {
    let text = p.to_string_lossy();
    if !text.chars().any(char::is_control) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A `[host] <verb>: ...` status line under the `running` group (put, get).
pub(crate) fn running_line(env: &Env, host: &str, text: &str) {
    if env.levels().get(Group::Running) {
        emit(Pipe::Out, &format!("[{host}] {text}\n"));
    }
}

/// Prints a `status` line such as `Done.`.
pub(crate) fn status(text: &str) {
    if env().levels().get(Group::Status) {
        emit(Pipe::Out, &format!("{text}\n"));
    }
}

fn colorize(env: &Env) -> bool {
    if env.contains("colorize_errors") {
        env.colorize_errors()
    } else {
        std::io::stderr().is_terminal()
    }
}

impl Error {
    /// Prints the error the way Fabric aborts: `Fatal error: <message>` and
    /// `Aborting.` on standard error, honouring the `aborts` output group.
    /// When the command's output was hidden, it is shown here so that the
    /// reason is never lost.
    pub fn report(&self) {
        report_abort(self);
    }
}

/// Prints Fabric's warning block: `\nWarning: <msg>\n\n` on stderr.
pub(crate) fn warning(env: &Env, msg: &str) {
    if !env.levels().get(Group::Warnings) {
        return;
    }
    let text = format!("Warning: {msg}");
    let text = if colorize(env) {
        colors::magenta(&text, false)
    } else {
        text
    };
    emit(Pipe::Err, &format!("\n{text}\n\n"));
}

/// Prints Fabric's abort block for `err`.
pub(crate) fn report_abort(err: &Error) {
    let env = env();
    if !env.levels().get(Group::Aborts) {
        return;
    }
    // Fabric prints the message alone: where the host matters, the message
    // names it.
    let mut msg = err.message().to_string();
    if let Some(out) = err.output() {
        // When the output was hidden, show it now so the reason is not lost.
        // Fabric frames it to the terminal's width (80 columns without one).
        let width = crate::sys::terminal_size().0 as usize;
        if !env.levels().get(Group::Stdout) && !out.stdout().is_empty() {
            msg.push_str(&framed("Standard output", out.stdout(), width));
        }
        if !env.levels().get(Group::Stderr) && !out.stderr().is_empty() {
            msg.push_str(&framed("Standard error", out.stderr(), width));
        }
    }
    let text = format!("Fatal error: {msg}");
    let (text, end) = if colorize(&env) {
        (colors::red(&text, false), colors::red("Aborting.", false))
    } else {
        (text, "Aborting.".to_string())
    };
    emit(Pipe::Err, &format!("\n{text}\n\n{end}\n"));
}

/// Fabric's frame for hidden output shown with an abort: a header line of
/// `=` around the title, the body, and a line of `=` the terminal's width.
fn framed(title: &str, body: &str, width: usize) -> String {
    let side = "=".repeat(width.saturating_sub(title.len() + 2) / 2);
    format!(
        "\n\n{side} {title} {side}\n\n{body}\n\n{}",
        "=".repeat(width)
    )
}

/// Assembles raw output into whole lines and prints each as
/// `[host] out: line` (or `err:`), so that a line is never split.
///
/// `\n`, `\r\n` and a lone `\r` all end a displayed line, as in Fabric.
/// While someone types at the terminal for the command, the unfinished
/// line (a question, the echo of keys) is shown as it comes too
/// ([`show_partial`](LinePrinter::show_partial)), prefix first, as
/// Fabric shows everything.
pub(crate) struct LinePrinter {
    prefix: String,
    pipe: Pipe,
    shown: bool,
    partial: Vec<u8>,
    last_cr: bool,
    /// The current line's prefix (and maybe some of its text) is printed.
    started: bool,
}

impl LinePrinter {
    pub(crate) fn new(env: &Env, host: &str, pipe: Pipe) -> LinePrinter {
        let (name, group) = match pipe {
            Pipe::Out => ("out", Group::Stdout),
            Pipe::Err => ("err", Group::Stderr),
        };
        let prefix = if env.output_prefix() {
            format!("[{host}] {name}: ")
        } else {
            String::new()
        };
        LinePrinter {
            prefix,
            pipe,
            shown: env.levels().get(group),
            partial: Vec::new(),
            last_cr: false,
            started: false,
        }
    }

    /// Feeds a chunk of raw output; prints every line it completes.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        if !self.shown {
            return;
        }
        let mut text = String::new();
        while !data.is_empty() {
            if self.last_cr && data[0] == b'\n' {
                data = &data[1..];
                self.last_cr = false;
                continue;
            }
            match data.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.partial.extend_from_slice(&data[..i]);
                    self.last_cr = data[i] == b'\r';
                    self.line_into(&mut text);
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    self.last_cr = false;
                    break;
                }
            }
        }
        if !text.is_empty() {
            emit(self.pipe, &text);
        }
    }

    fn line_into(&mut self, text: &mut String) {
        if !self.started {
            text.push_str(&self.prefix);
        }
        text.push_str(&String::from_utf8_lossy(&self.partial));
        text.push('\n');
        self.partial.clear();
        self.started = false;
    }

    /// Prints the unfinished line now, but for its last `hold` bytes (the
    /// start of a prompt twill may answer and not show) and the first
    /// bytes of a character whose rest has not come yet; the line goes on
    /// from there when more comes.
    pub(crate) fn show_partial(&mut self, hold: usize) {
        if !self.shown {
            return;
        }
        let end = self.partial.len().saturating_sub(hold);
        let end = match std::str::from_utf8(&self.partial[..end]) {
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => end,
        };
        if end == 0 {
            return;
        }
        let mut text = String::new();
        if !self.started {
            text.push_str(&self.prefix);
            self.started = true;
        }
        text.push_str(&String::from_utf8_lossy(&self.partial[..end]));
        self.partial.drain(..end);
        emit(self.pipe, &text);
    }

    /// Forgets the last `n` bytes of the unterminated line (a prompt that
    /// twill answers is not shown).
    pub(crate) fn forget_tail(&mut self, n: usize) {
        let keep = self.partial.len().saturating_sub(n);
        self.partial.truncate(keep);
    }

    /// Prints the last, unterminated line, if any.
    pub(crate) fn finish(&mut self) {
        if self.shown && (self.started || !self.partial.is_empty()) {
            let mut text = String::new();
            self.line_into(&mut text);
            emit(self.pipe, &text);
        }
    }
}

/// Prints `text` under the `user` group, prefixed with `[host] ` when a
/// host is set.
///
/// ```
/// twill::puts("deploying release 42");
/// ```
pub fn puts(text: &str) {
    let env = env();
    if !env.levels().get(Group::User) {
        return;
    }
    let line = match env.host_string() {
        Some(h) if env.output_prefix() => format!("[{h}] {text}\n"),
        _ => format!("{text}\n"),
    };
    emit(Pipe::Out, &line);
}

/// Prints `text` under the `user` group with no prefix and no newline,
/// flushing at once (Fabric's `fastprint`).
pub fn fastprint(text: &str) {
    if env().levels().get(Group::User) {
        emit(Pipe::Out, text);
    }
}

/// Prints Fabric's warning block, `Warning: <msg>`, on standard error,
/// under the `warnings` group.
///
/// ```
/// twill::warn("the cache was cold");
/// ```
pub fn warn(msg: &str) {
    warning(&env(), msg);
}

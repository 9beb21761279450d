//! Everything twill prints goes through here: Fabric's line formats, the
//! output groups of `hide`/`show`, one lock so that lines from several
//! threads never mix inside a line, and the progress bars of long
//! transfers, drawn under the same lock and cleared while a line is
//! written.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle, TermLike,
};
use parking_lot::Mutex;

use crate::colors;
use crate::error::Error;
use crate::events::{self, Event, EventKind, OpKind};
use crate::state::{env, Env, Group};

#[cfg(feature = "live")]
pub(crate) mod live;

static LOCK: Mutex<()> = Mutex::new(());

/// Set while the live view has the terminal: nothing else is written to
/// it (what would have been is in the run's events).
static LIVE: AtomicBool = AtomicBool::new(false);

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
///
/// While progress bars are drawn, they are cleared first and drawn again
/// below what was written, once it ends its line (a bar drawn after an
/// unfinished line would write over it).
pub(crate) fn emit_raw(pipe: Pipe, bytes: &[u8]) {
    let _g = LOCK.lock();
    if IN_WORKER.load(Ordering::Relaxed) {
        write_fd(if pipe == Pipe::Out { 1 } else { 2 }, bytes);
        return;
    }
    if LIVE.load(Ordering::Relaxed) {
        return;
    }
    let ended = bytes.last().map(|b| *b == b'\n');
    if let Some(ended) = ended {
        LINE_ENDED.store(ended, Ordering::Relaxed);
    }
    // Output that cannot be written (a closed pipe) is dropped, as a
    // terminal program would; it must never turn into a failed command.
    let write = || match pipe {
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
    };
    match drawn_bars() {
        Some(bars) if ended != Some(false) => bars.suspend(write),
        Some(bars) => {
            let _ = bars.clear();
            write();
        }
        None => write(),
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
#[cfg(feature = "cli")]
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) struct Raw(pub(crate) Pipe);

#[cfg(feature = "cli")]
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

/// `[host] diff: <path>` and a unified diff, removed lines red and added
/// ones green on a terminal; under the `stdout` group. Nothing for an
/// empty diff but the first line.
pub(crate) fn diff(env: &Env, host: &str, path: &str, text: &str) {
    let levels = env.levels();
    if levels.get(Group::Running) {
        emit(Pipe::Out, &format!("[{host}] diff: {path}\n"));
    }
    if !levels.get(Group::Stdout) || text.is_empty() {
        return;
    }
    let colour = std::io::stdout().is_terminal();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let shown = match line.as_bytes().first() {
            _ if !colour || line.starts_with("---") || line.starts_with("+++") => line.to_string(),
            Some(b'-') => colors::red(line, false),
            Some(b'+') => colors::green(line, false),
            Some(b'@') => colors::cyan(line, false),
            _ => line.to_string(),
        };
        out.push_str(&shown);
        out.push('\n');
    }
    emit(Pipe::Out, &out);
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

/// Writes `text` to standard output as it is (the shell's own lines).
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn text(text: &str) {
    emit(Pipe::Out, text);
}

/// Whether standard output is a terminal (where the shell colours its
/// own lines).
#[cfg_attr(not(feature = "shell"), allow(dead_code))]
pub(crate) fn to_terminal() -> bool {
    std::io::stdout().is_terminal()
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
    if env.levels().get(Group::Warnings) {
        warning_block(env, msg);
    }
}

/// A line of a dry run, `[host] <text>` on stdout (`would run: ...`),
/// printed whatever the output groups say: showing what would be done is
/// what a dry run is for.
pub(crate) fn dry_run(host: &str, text: &str) {
    emit(Pipe::Out, &format!("[{host}] {text}\n"));
}

/// What a dry run assumes, on stdout before its first line, whatever the
/// output groups say.
pub(crate) fn dry_run_notice(text: &str) {
    emit(Pipe::Out, &format!("{text}\n"));
}

/// A syntax error a dry run found: Fabric's warning block, whatever the
/// output groups say.
pub(crate) fn dry_run_warning(env: &Env, msg: &str) {
    warning_block(env, msg);
}

fn warning_block(env: &Env, msg: &str) {
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

// ---------------------------------------------------------------------------
// Progress bars
//
// A file of a transfer that moves for longer than the `progress_delay`
// setting gets a bar, `[host] put: <remote path> [===>  ] 12.00 MiB/40.00
// MiB 3.10 MiB/s ETA 9s` (without a size, the bytes and the rate), while
// the `running` group is shown and standard output is a terminal. The
// bars are drawn on standard output under the print lock, one line each,
// and cleared when their file is done; a line written meanwhile clears
// them, goes out, and they are drawn again below it. A parallel worker,
// whose output is a pipe, sends its progress to the caller as events
// instead ([`events::transient`]), and the caller draws one line per
// worker ([`WorkerBar`]).

/// How often a bar drawn here is brought up to date, at most.
const DRAW_EVERY: Duration = Duration::from_millis(100);
/// How often a file's progress becomes an event, at most.
const SEND_EVERY: Duration = Duration::from_millis(200);

/// The bars on the terminal: one per file moving in this process, or per
/// parallel worker moving one. Made with the first bar.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);
/// How many bars are drawn; while none, lines are written as they are.
static DRAWN: AtomicUsize = AtomicUsize::new(0);
/// Whether the last text written ended its line: a bar drawn after an
/// unfinished line would write over it, so none starts there.
static LINE_ENDED: AtomicBool = AtomicBool::new(true);

/// The bars, while any is drawn.
fn drawn_bars() -> Option<MultiProgress> {
    if DRAWN.load(Ordering::Relaxed) == 0 {
        return None;
    }
    BARS.lock().clone()
}

/// Whether progress bars may be drawn here for a transfer under `env`:
/// the `running` group shown, standard output a terminal that can draw
/// (`TERM` set, and not `dumb`), and not in a parallel worker.
pub(crate) fn draws_progress(env: &Env) -> bool {
    !IN_WORKER.load(Ordering::Relaxed)
        && !LIVE.load(Ordering::Relaxed)
        && env.levels().get(Group::Running)
        && terminal().is_some()
}

/// Whether standard output is a terminal that can draw (one whose `TERM`
/// is set and not `dumb`): for progress bars and the live view.
fn can_draw() -> bool {
    let dumb = std::env::var_os("TERM").is_none_or(|t| t.is_empty() || t == "dumb");
    !dumb && std::io::stdout().is_terminal()
}

/// The terminal's bars, if standard output is a terminal that can draw.
fn terminal() -> Option<MultiProgress> {
    if !can_draw() {
        return None;
    }
    let mut bars = BARS.lock();
    let bars = bars.get_or_insert_with(|| {
        MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(Screen::default()),
            20,
        ))
    });
    Some(bars.clone())
}

/// Standard output as the bars draw on it: the escape sequences of a
/// terminal, written at each flush.
///
/// It says the terminal is [`MARGIN`] columns narrower than it is, so
/// that the cursor never waits at the right edge after a bar: there, the
/// `^C` the terminal echoes for Ctrl-C would wrap to a line of its own,
/// which the next drawing takes for the bar's and clears, leaving the bar
/// behind. indicatif pads each line to the width and lets the terminal
/// wrap to the next one; with the narrower width that wrap does not
/// happen, so the padding between two lines becomes a line break here.
#[derive(Debug, Default)]
struct Screen {
    /// What goes out at the next flush, and whether a line of the
    /// drawing just ended (its padding was written).
    pending: Mutex<(Vec<u8>, bool)>,
}

/// The columns a bar leaves free at the right edge of the terminal.
const MARGIN: u32 = 3;

impl Screen {
    fn put(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut pending = self.pending.lock();
        if std::mem::take(&mut pending.1) {
            pending.0.extend_from_slice(b"\r\n");
        }
        pending.0.extend_from_slice(bytes);
        Ok(())
    }

    fn cursor(&self, n: usize, code: char) -> std::io::Result<()> {
        if n > 0 {
            self.put(format!("\x1b[{n}{code}").as_bytes())?;
        }
        Ok(())
    }
}

impl TermLike for Screen {
    fn width(&self) -> u16 {
        let columns = crate::sys::terminal_size().0;
        u16::try_from(columns.saturating_sub(MARGIN).max(1)).unwrap_or(u16::MAX)
    }

    /// Half the terminal's rows: bars beyond it (a parallel run on many
    /// hosts) are not drawn, so that the lines printed stay in view.
    fn height(&self) -> u16 {
        let rows = crate::sys::terminal_size().1;
        u16::try_from((rows / 2).max(1)).unwrap_or(u16::MAX)
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(s.as_bytes())?;
        self.put(b"\n")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if s.bytes().all(|b| b == b' ') {
            // The padding that ends a line: the rest of the line cleared,
            // and a line break if another line follows.
            self.put(b"\x1b[K")?;
            self.pending.lock().1 = true;
            return Ok(());
        }
        self.put(s.as_bytes())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.put(b"\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        let bytes = {
            let mut pending = self.pending.lock();
            pending.1 = false;
            std::mem::take(&mut pending.0)
        };
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(&bytes);
        o.flush()
    }
}

/// A new bar at the bottom of the terminal, already `elapsed` into its
/// file and `bytes` along; `None` where none can be drawn now.
fn new_bar(
    host: &str,
    op: OpKind,
    path: &str,
    total: Option<u64>,
    bytes: u64,
    elapsed: Duration,
) -> Option<ProgressBar> {
    let _g = LOCK.lock();
    if !LINE_ENDED.load(Ordering::Relaxed) {
        return None;
    }
    let bars = terminal()?;
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
        .with_style(bar_style(total.is_some()))
        .with_prefix(host.to_string())
        .with_message(format!("{}: {}", verb(op), path_text(Path::new(path))))
        .with_position(bytes)
        .with_elapsed(elapsed);
    DRAWN.fetch_add(1, Ordering::Relaxed);
    let bar = bars.add(bar);
    bar.tick();
    Some(bar)
}

/// A transfer's word in its bar, as in its printed line.
fn verb(op: OpKind) -> &'static str {
    match op {
        OpKind::Get => "download",
        _ => op.name(),
    }
}

/// Brings `bar` to `bytes` of `total`, under the print lock; not while
/// a line is unfinished.
fn move_bar(bar: &ProgressBar, bytes: u64, total: Option<u64>) {
    let _g = LOCK.lock();
    if !LINE_ENDED.load(Ordering::Relaxed) {
        return;
    }
    if total.is_some() != bar.length().is_some() {
        bar.set_style(bar_style(total.is_some()));
    }
    match total {
        Some(t) => bar.set_length(t),
        None => bar.unset_length(),
    }
    bar.set_position(bytes);
}

/// Clears `bar` from the terminal.
fn end_bar(bar: ProgressBar) {
    let _g = LOCK.lock();
    bar.finish_and_clear();
    if let Some(bars) = BARS.lock().clone() {
        bars.remove(&bar);
    }
    DRAWN.fetch_sub(1, Ordering::Relaxed);
}

/// A bar's line: with a known size, the bar, the bytes of the size, the
/// rate and the time left; without one, the bytes and the rate. The path
/// takes the room left, cut to fit, so that the line stays one line.
fn bar_style(sized: bool) -> ProgressStyle {
    let template = if sized {
        "[{prefix}] {wide_msg} [{bar:24}] {bytes}/{total_bytes} {rate} ETA {left}"
    } else {
        "[{prefix}] {wide_msg} {bytes} {rate}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", HumanBytes(per_second(s) as u64));
        })
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let rate = per_second(s);
            let _ = match s.len() {
                Some(len) if rate > 0.0 => {
                    let left = len.saturating_sub(s.pos()) as f64 / rate;
                    write!(w, "{:#}", HumanDuration(Duration::from_secs_f64(left)))
                }
                _ => write!(w, "?"),
            };
        })
}

/// The mean rate since the file started moving: steady, and right from
/// the first drawing (the bar starts late, with bytes already moved).
fn per_second(s: &ProgressState) -> f64 {
    let secs = s.elapsed().as_secs_f64();
    if secs > 0.0 {
        s.pos() as f64 / secs
    } else {
        0.0
    }
}

/// The progress of one file of a transfer, from its first byte until it
/// is dropped (its end, or the transfer's failure). Once the file has
/// moved for the `progress_delay` setting, its bar is drawn here, or, in
/// a parallel worker whose caller draws, sent to the caller as
/// [`EventKind::Progress`] events; while a bar is drawn here, loggers get
/// the same events.
pub(crate) struct Progress {
    env: Env,
    host: String,
    op: OpKind,
    path: String,
    total: Option<u64>,
    bytes: u64,
    started: Instant,
    started_ms: u64,
    delay: Duration,
    /// Drawn here (else sent to the caller).
    here: bool,
    bar: Option<ProgressBar>,
    drawn_at: Option<Instant>,
    sent_at: Option<Instant>,
}

impl Progress {
    /// A file starts moving between here and `path` on `host`; `total`
    /// is its size, when known. `None` where no bar would show.
    pub(crate) fn start(
        env: &Env,
        host: &str,
        op: OpKind,
        path: &Path,
        total: Option<u64>,
    ) -> Option<Progress> {
        let here = !IN_WORKER.load(Ordering::Relaxed);
        let shown = if here {
            draws_progress(env)
        } else {
            events::caller_draws() && env.levels().get(Group::Running)
        };
        if !shown {
            return None;
        }
        Some(Progress {
            env: env.clone(),
            host: host.to_string(),
            op,
            path: path.to_string_lossy().into_owned(),
            total,
            bytes: 0,
            started: Instant::now(),
            started_ms: events::now(),
            delay: env.progress_delay(),
            here,
            bar: None,
            drawn_at: None,
            sent_at: None,
        })
    }

    /// The file's size is `total` (a download learns it as it starts).
    pub(crate) fn expect(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// `n` more bytes have moved.
    pub(crate) fn add(&mut self, n: u64) {
        self.bytes += n;
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < self.delay {
            return;
        }
        let due = |at: Option<Instant>, every| at.is_none_or(|t| now.duration_since(t) >= every);
        if self.here && due(self.drawn_at, DRAW_EVERY) {
            self.drawn_at = Some(now);
            match &self.bar {
                Some(bar) => move_bar(bar, self.bytes, self.total),
                None => {
                    self.bar = new_bar(
                        &self.host, self.op, &self.path, self.total, self.bytes, elapsed,
                    )
                }
            }
        }
        if due(self.sent_at, SEND_EVERY) && (!self.here || self.bar.is_some()) {
            self.sent_at = Some(now);
            self.send(false);
        }
    }

    fn send(&self, done: bool) {
        if self.here && !events::enabled() {
            return;
        }
        events::transient(
            &self.env,
            EventKind::Progress {
                op: self.op,
                path: self.path.clone(),
                bytes: self.bytes,
                total: self.total,
                started: self.started_ms,
                done,
            },
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            end_bar(bar);
        }
        if self.sent_at.is_some() {
            self.send(true);
        }
    }
}

/// A parallel worker's progress, drawn here from the events it sends
/// ([`Progress`] in the worker): one line while one of its files moves,
/// cleared when the file is done or the worker is (dropped).
pub(crate) struct WorkerBar {
    draws: bool,
    /// The bar, and the file it shows (its path and start).
    bar: Option<(ProgressBar, String, u64)>,
}

impl WorkerBar {
    /// Draws only with `draws` ([`draws_progress`] where the run started).
    pub(crate) fn new(draws: bool) -> WorkerBar {
        WorkerBar { draws, bar: None }
    }

    /// Takes one of the worker's events: a progress event moves the bar.
    pub(crate) fn take(&mut self, event: &Event) {
        let EventKind::Progress {
            op,
            path,
            bytes,
            total,
            started,
            done,
        } = &event.kind
        else {
            return;
        };
        if !self.draws {
            return;
        }
        if let Some((bar, _, _)) = self
            .bar
            .take_if(|(_, p, s)| *done || p != path || s != started)
        {
            end_bar(bar);
        }
        if *done {
            return;
        }
        match &self.bar {
            Some((bar, _, _)) => move_bar(bar, *bytes, *total),
            None => {
                let elapsed = Duration::from_millis(events::now().saturating_sub(*started));
                let host = event.host.as_deref().unwrap_or("local");
                self.bar = new_bar(host, *op, path, *total, *bytes, elapsed)
                    .map(|bar| (bar, path.clone(), *started));
            }
        }
    }
}

impl Drop for WorkerBar {
    fn drop(&mut self) {
        if let Some((bar, _, _)) = self.bar.take() {
            end_bar(bar);
        }
    }
}

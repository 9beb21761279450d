//! Running a command on a channel.
//!
//! The session is in non-blocking mode while a command runs. Both output
//! streams are read as data arrives and handed over chunk by chunk; local
//! input (keys, a pipe, a window change) is taken as it comes and written
//! to the command's stdin; when there is nothing to do, the thread sleeps
//! in `poll(2)` on the socket (in the directions libssh2 asks for) and the
//! descriptors of local input, until data, input, the command deadline,
//! the next keepalive, or an interrupt.

use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use super::chan::RawChannel;
use super::codes::{self, is_eagain};
use super::connection::{Connection, OpState};
use super::wait::{WaitEnd, GRACE};
use super::{io, SshError, SshErrorKind};
use crate::sys::seconds;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// What the receiver of output wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Nothing; go on.
    Continue,
    /// Write these bytes to the command's stdin.
    Input(Vec<u8>),
    /// Stop the command (SIGTERM, then SIGKILL) and return; the status
    /// then has no exit code.
    Stop,
}

/// Local input for a running command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Bytes for the command's stdin.
    Bytes(Vec<u8>),
    /// Local input ended: the command's stdin ends too. With a pty, whose
    /// end sshd does not pass on, that is the terminal's end-of-file key
    /// (Ctrl-D, typed twice after an unfinished line), which a reader in
    /// canonical mode takes for the end.
    End,
    /// The local terminal changed size: the pty is told the new one.
    Resized,
}

/// The caller's side of a running command: output comes to it as it
/// arrives, and local input is taken from it.
pub(crate) trait Exchange {
    /// Receives an output chunk and says what to do.
    fn output(&mut self, stream: Stream, data: &[u8]) -> Reply;

    /// Adds to `fds` the descriptors (at most four) that become readable
    /// when there is local input, and returns when to look for input even
    /// if none does (input held back until then).
    fn input_fds(&mut self, _fds: &mut Vec<RawFd>) -> Option<Instant> {
        None
    }

    /// The next local input, without waiting; `None` when there is none
    /// now. Asked whenever the engine looks, so it must not block.
    fn input(&mut self) -> Option<Input> {
        None
    }

    /// Whether output may come now. A caller whose reader has no room
    /// says no, and adds to `fds` the descriptors that become writable
    /// when it has (with those of [`input_fds`](Exchange::input_fds), at
    /// most four). Meanwhile no output is read, so the command's window
    /// closes and it waits (back-pressure), and the server's silence is
    /// not counted. Asked whenever the engine looks, so it must not
    /// block; the command's end waits until it says yes.
    fn takes_output(&mut self, _fds: &mut Vec<RawFd>) -> bool {
        true
    }

    /// Whether the command is to be stopped now, as [`Reply::Stop`]
    /// does, though no output came (what it feeds, or what feeds it, has
    /// failed); if not, adds to `fds` the descriptors that become readable
    /// when it is to be (counted in the four). Asked whenever the engine
    /// looks, so it must not block.
    fn stop_asked(&mut self, _fds: &mut Vec<RawFd>) -> bool {
        false
    }
}

/// How the remote side is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start<'a> {
    /// An `exec` request with the command.
    Exec(&'a str),
    /// A `shell` request: the user's login shell.
    Shell,
}

/// Options of one command.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecOptions {
    /// Request a pseudo-terminal (local terminal size or 80x24).
    /// stderr is then merged into stdout by the remote side.
    pub(crate) pty: bool,
    /// The terminal type the pty is requested with; `None`: `vt100`, as
    /// Fabric asks for.
    pub(crate) term: Option<String>,
    /// Stop the remote command and fail with [`SshErrorKind::Timeout`]
    /// after this long.
    pub(crate) timeout: Option<Duration>,
    /// Run even after Ctrl-C, and let Ctrl-C not stop it: a command that
    /// cleans up after an interrupted operation (removing an unfinished
    /// upload). Give it a `timeout`.
    pub(crate) despite_interrupt: bool,
}

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitStatus {
    /// The exit code; `None` when the command was killed by a signal.
    pub(crate) code: Option<i32>,
    /// Signal name without `SIG` (e.g. `TERM`), when killed by one.
    pub(crate) signal: Option<String>,
}

const READ_BUF: usize = 64 * 1024;

/// Local input not yet written is kept up to this much; beyond it, no
/// more is taken until the remote side reads (its window opens).
const MAX_PENDING: usize = 64 * 1024;

/// The end-of-file key of a terminal (Ctrl-D, `VEOF`).
const EOF_KEY: u8 = 0x04;

/// What goes to the command's stdin.
struct Stdin {
    pending: Vec<u8>,
    /// False once the remote side no longer reads it.
    open: bool,
    /// The last byte queued, to know whether a line is unfinished.
    last: Option<u8>,
    /// Local input has ended.
    ended: bool,
    /// The channel's EOF is to be sent (without a pty), once `pending`
    /// is written.
    send_eof: bool,
    /// The pty is to be told the terminal's new size.
    resize: bool,
}

impl Stdin {
    fn queue(&mut self, bytes: &[u8]) {
        if self.open && !bytes.is_empty() {
            self.pending.extend_from_slice(bytes);
            self.last = bytes.last().copied();
        }
    }

    /// Local input ended: with a pty, the end-of-file key (twice after an
    /// unfinished line, whose first one only ends the line); without, the
    /// channel's EOF.
    fn end(&mut self, pty: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        if pty {
            let unfinished = !matches!(self.last, None | Some(b'\n') | Some(b'\r'));
            if unfinished {
                self.queue(&[EOF_KEY]);
            }
            self.queue(&[EOF_KEY]);
        } else {
            self.send_eof = true;
        }
    }
}

impl Connection {
    /// Runs `command`. Output chunks go to `exchange` as they arrive;
    /// bytes its replies and its local input give are written to the
    /// command's stdin, which stays open until the command ends or local
    /// input ends.
    pub(crate) fn exec(
        &self,
        command: &str,
        opts: &ExecOptions,
        exchange: &mut dyn Exchange,
    ) -> Result<ExitStatus, SshError> {
        self.run(Start::Exec(command), opts, exchange)
    }

    /// Starts the user's login shell (with a pty when `opts.pty`), and
    /// exchanges output and input with it as [`exec`](Connection::exec)
    /// does, until it ends.
    pub(crate) fn shell(
        &self,
        opts: &ExecOptions,
        exchange: &mut dyn Exchange,
    ) -> Result<ExitStatus, SshError> {
        self.run(Start::Shell, opts, exchange)
    }

    fn run(
        &self,
        start: Start<'_>,
        opts: &ExecOptions,
        exchange: &mut dyn Exchange,
    ) -> Result<ExitStatus, SshError> {
        let mut st = self.begin()?;
        if io::interrupted() && !opts.despite_interrupt {
            return Err(self.interrupted_err("The command"));
        }
        // Silence is measured from the start of this command, not from
        // the last time the connection was used.
        let now = Instant::now();
        st.last_rx = now;
        if let Some(k) = self.keepalive {
            st.next_keepalive = now + k;
        }
        self.session.set_blocking(false);
        let result = self.exec_inner(&mut st, start, opts, exchange);
        self.session.set_blocking(true);
        result
    }

    fn exec_inner(
        &self,
        st: &mut OpState,
        start: Start<'_>,
        opts: &ExecOptions,
        exchange: &mut dyn Exchange,
    ) -> Result<ExitStatus, SshError> {
        let begun = Instant::now();
        let deadline = opts.timeout.map(|t| begun + t);
        let setup_deadline = match deadline {
            Some(d) => d.min(begun + self.io_timeout),
            None => begun + self.io_timeout,
        };
        let sess = &*self.session;
        let ch = self.retry_nonblocking(st, setup_deadline, "Opening a channel", || {
            RawChannel::open_session(sess)
        })?;
        if opts.pty {
            let (w, h) = crate::sys::terminal_size();
            let term = opts.term.as_deref().unwrap_or("vt100");
            self.retry_nonblocking(st, setup_deadline, "Requesting a pty", || {
                ch.request_pty(term, w, h)
            })?;
        }
        match start {
            Start::Exec(command) => {
                self.retry_nonblocking(st, setup_deadline, "Starting the command", || {
                    ch.exec(command)
                })?
            }
            Start::Shell => {
                self.retry_nonblocking(st, setup_deadline, "Starting a shell", || ch.shell())?
            }
        }

        let mut buf = vec![0u8; READ_BUF];
        let mut stdin = Stdin {
            pending: Vec::new(),
            open: true,
            last: None,
            ended: false,
            send_eof: false,
            resize: false,
        };
        let mut input_fds: Vec<RawFd> = Vec::new();
        let mut output_fds: Vec<RawFd> = Vec::new();
        let mut stop_fds: Vec<RawFd> = Vec::new();
        let mut takes = true;
        loop {
            stop_fds.clear();
            if exchange.stop_asked(&mut stop_fds) {
                self.stop_remote(st, &ch, "TERM");
                return Ok(ExitStatus {
                    code: None,
                    signal: Some("TERM".to_string()),
                });
            }
            let mut progressed = false;
            for which in [Stream::Stdout, Stream::Stderr] {
                let id = match which {
                    Stream::Stdout => 0,
                    Stream::Stderr => 1,
                };
                output_fds.clear();
                takes = exchange.takes_output(&mut output_fds);
                if !takes {
                    break;
                }
                match ch.read(id, &mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        progressed = true;
                        st.last_rx = Instant::now();
                        match exchange.output(which, &buf[..n]) {
                            Reply::Continue => {}
                            Reply::Input(bytes) => stdin.queue(&bytes),
                            Reply::Stop => {
                                self.stop_remote(st, &ch, "TERM");
                                return Ok(ExitStatus {
                                    code: None,
                                    signal: Some("TERM".to_string()),
                                });
                            }
                        }
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => return Err(self.map_err(&e, "Reading output")),
                }
            }
            // A bounded number of pieces per round, so that output keeps
            // being read while a pipe pours in.
            for _ in 0..16 {
                if stdin.pending.len() >= MAX_PENDING {
                    break;
                }
                match exchange.input() {
                    None => break,
                    Some(Input::Bytes(bytes)) => {
                        if !stdin.ended {
                            stdin.queue(&bytes);
                        }
                        progressed = true;
                    }
                    Some(Input::End) => {
                        stdin.end(opts.pty);
                        progressed = true;
                    }
                    Some(Input::Resized) => stdin.resize = opts.pty,
                }
            }
            if stdin.resize {
                let (w, h) = crate::sys::terminal_size();
                match ch.request_pty_size(w, h) {
                    Ok(()) => {
                        stdin.resize = false;
                        progressed = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) if codes::is_transport_error(&e) => {
                        return Err(self.map_err(&e, "Resizing the pty"));
                    }
                    // Refused: the size stays as it was.
                    Err(_) => stdin.resize = false,
                }
            }
            if !stdin.pending.is_empty() {
                match ch.write(&stdin.pending) {
                    Ok(n) => {
                        stdin.pending.drain(..n);
                        progressed = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) if codes::is_transport_error(&e) => {
                        return Err(self.map_err(&e, "Writing input"));
                    }
                    Err(_) => {
                        // The remote side no longer reads stdin.
                        stdin.pending.clear();
                        stdin.open = false;
                    }
                }
            }
            if stdin.send_eof && stdin.pending.is_empty() {
                match ch.send_eof() {
                    Ok(()) => {
                        stdin.send_eof = false;
                        stdin.open = false;
                        progressed = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) if codes::is_transport_error(&e) => {
                        return Err(self.map_err(&e, "Ending input"));
                    }
                    Err(_) => {
                        stdin.send_eof = false;
                        stdin.open = false;
                    }
                }
            }
            if takes && ch.eof() {
                break;
            }
            if progressed || (takes && ch.available() > 0) {
                continue;
            }
            input_fds.clear();
            let input_at = if stdin.pending.len() < MAX_PENDING {
                exchange.input_fds(&mut input_fds)
            } else {
                None
            };
            let mut local: Vec<(RawFd, libc::c_short)> = Vec::with_capacity(4);
            local.extend(stop_fds.iter().map(|&fd| (fd, libc::POLLIN)));
            local.extend(input_fds.iter().map(|&fd| (fd, libc::POLLIN)));
            if !takes {
                local.extend(output_fds.iter().map(|&fd| (fd, libc::POLLOUT)));
            }
            local.truncate(4);
            let watch = !opts.despite_interrupt;
            match self.wait_socket_or_input(st, deadline, watch, &local, input_at, !takes)? {
                None => {}
                Some(end) => return Err(self.stop_for(st, &ch, end, opts.timeout)),
            }
        }

        // All output is in; wait for the remote side to close the channel,
        // which comes after the exit status.
        loop {
            match ch.wait_closed() {
                Ok(()) => break,
                Err(e) if is_eagain(&e) => {
                    match self.wait_socket(st, deadline, !opts.despite_interrupt)? {
                        None => {}
                        Some(end) => return Err(self.stop_for(st, &ch, end, opts.timeout)),
                    }
                }
                Err(e) => return Err(self.map_err(&e, "Waiting for the command to end")),
            }
        }
        let close_deadline = Instant::now() + self.io_timeout;
        self.retry_nonblocking(st, close_deadline, "Closing the channel", || ch.close())?;
        let signal = ch.exit_signal();
        let code = if signal.is_some() {
            None
        } else {
            Some(ch.exit_status())
        };
        Ok(ExitStatus { code, signal })
    }

    /// Stops the command because the wait ended (`end`: its deadline, or
    /// an interrupt) and returns the error to report.
    fn stop_for(
        &self,
        st: &mut OpState,
        ch: &RawChannel,
        end: WaitEnd,
        timeout: Option<Duration>,
    ) -> SshError {
        match end {
            WaitEnd::Deadline => {
                self.stop_remote(st, ch, "TERM");
                SshError::new(
                    SshErrorKind::Timeout,
                    format!(
                        "Command failed to finish in {} seconds",
                        seconds(timeout.unwrap_or_default())
                    ),
                )
            }
            WaitEnd::Interrupted => {
                self.stop_remote(st, ch, "INT");
                self.interrupted_err("The command")
            }
        }
    }

    /// Stops the remote command: `first` signal to its process group,
    /// SIGKILL if it is still there after [`GRACE`], then closes the
    /// channel. Output arriving meanwhile is discarded. Errors are ignored
    /// (the command may already be gone); a lost connection is recorded.
    fn stop_remote(&self, st: &mut OpState, ch: &RawChannel, first: &str) {
        let _ = self.signal(st, ch, first);
        let grace_end = Instant::now() + GRACE;
        if !self.drain_until_closed(st, ch, grace_end) {
            let _ = self.signal(st, ch, "KILL");
            let _ = self.drain_until_closed(st, ch, Instant::now() + GRACE);
        }
        let _ = self.retry_nonblocking(st, Instant::now() + GRACE, "Closing the channel", || {
            ch.close()
        });
    }

    /// Sends an SSH "signal" channel request (OpenSSH delivers it to the
    /// command's process group; not for sessions of root).
    fn signal(&self, st: &mut OpState, ch: &RawChannel, name: &str) -> Result<(), SshError> {
        let deadline = Instant::now() + GRACE;
        self.retry_nonblocking(st, deadline, "Sending a signal", || ch.signal(name))
    }

    /// Reads and discards output until the remote side closes the channel or
    /// `until`; true if it closed.
    fn drain_until_closed(&self, st: &mut OpState, ch: &RawChannel, until: Instant) -> bool {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let mut progressed = false;
            for id in [0, 1] {
                while let Ok(n) = ch.read(id, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    progressed = true;
                }
            }
            if ch.eof() {
                match ch.wait_closed() {
                    Ok(()) => return true,
                    Err(e) if is_eagain(&e) => {}
                    Err(_) => return false,
                }
            }
            if progressed || ch.available() > 0 {
                continue;
            }
            match self.wait_socket(st, Some(until), false) {
                Ok(None) => {}
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn stdin() -> Stdin {
        Stdin {
            pending: Vec::new(),
            open: true,
            last: None,
            ended: false,
            send_eof: false,
            resize: false,
        }
    }

    #[test]
    fn the_end_of_input_on_a_pty_is_ctrl_d_at_the_start_of_a_line() {
        let mut s = stdin();
        s.end(true);
        assert_eq!(s.pending, [EOF_KEY]);
        let mut s = stdin();
        s.queue(b"a\n");
        s.end(true);
        assert_eq!(s.pending, b"a\n\x04");
        // After an unfinished line, the first Ctrl-D only ends the line.
        let mut s = stdin();
        s.queue(b"a\nb");
        s.end(true);
        s.end(true);
        assert_eq!(s.pending, b"a\nb\x04\x04");
        assert!(!s.send_eof);
    }

    #[test]
    fn the_end_of_input_without_a_pty_is_the_channels_eof() {
        let mut s = stdin();
        s.queue(b"a");
        s.end(false);
        assert_eq!(s.pending, b"a");
        assert!(s.send_eof);
    }
}

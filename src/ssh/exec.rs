//! Running a command on a channel.
//!
//! The session is in non-blocking mode while a command runs. Both output
//! streams are read as data arrives and handed over chunk by chunk; when
//! neither has data, the thread sleeps in `poll(2)` on the socket (in the
//! directions libssh2 asks for) until data, the command deadline, the next
//! keepalive, or an interrupt.

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

/// Receives each output chunk as it arrives and says what to do.
pub(crate) type OnOutput<'a> = dyn FnMut(Stream, &[u8]) -> Reply + 'a;

/// Options of one command.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecOptions {
    /// Request a pseudo-terminal (local terminal size or 80x24, `vt100`).
    /// stderr is then merged into stdout by the remote side.
    pub(crate) pty: bool,
    /// Stop the remote command and fail with [`SshErrorKind::Timeout`]
    /// after this long.
    pub(crate) timeout: Option<Duration>,
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

impl Connection {
    /// Runs `command`. Output chunks go to `on_output` as they arrive; bytes
    /// it returns are written to the command's stdin, which stays open
    /// until the command ends.
    pub(crate) fn exec(
        &self,
        command: &str,
        opts: &ExecOptions,
        on_output: &mut OnOutput<'_>,
    ) -> Result<ExitStatus, SshError> {
        let mut st = self.begin()?;
        if io::interrupted() {
            return Err(SshError::new(
                SshErrorKind::Interrupted,
                format!("The command on {} was interrupted", self.name),
            ));
        }
        // Silence is measured from the start of this command, not from
        // the last time the connection was used.
        let now = Instant::now();
        st.last_rx = now;
        if let Some(k) = self.keepalive {
            st.next_keepalive = now + k;
        }
        self.session.set_blocking(false);
        let result = self.exec_inner(&mut st, command, opts, on_output);
        self.session.set_blocking(true);
        result
    }

    fn exec_inner(
        &self,
        st: &mut OpState,
        command: &str,
        opts: &ExecOptions,
        on_output: &mut OnOutput<'_>,
    ) -> Result<ExitStatus, SshError> {
        let start = Instant::now();
        let deadline = opts.timeout.map(|t| start + t);
        let setup_deadline = match deadline {
            Some(d) => d.min(start + self.io_timeout),
            None => start + self.io_timeout,
        };
        let sess = &*self.session;
        let ch = self.retry_nonblocking(st, setup_deadline, "Opening a channel", || {
            RawChannel::open_session(sess)
        })?;
        if opts.pty {
            let (w, h) = crate::sys::terminal_size();
            self.retry_nonblocking(st, setup_deadline, "Requesting a pty", || {
                ch.request_pty("vt100", w, h)
            })?;
        }
        self.retry_nonblocking(st, setup_deadline, "Starting the command", || {
            ch.exec(command)
        })?;

        let mut buf = vec![0u8; READ_BUF];
        let mut stdin_pending: Vec<u8> = Vec::new();
        let mut stdin_open = true;
        loop {
            let mut progressed = false;
            for which in [Stream::Stdout, Stream::Stderr] {
                let id = match which {
                    Stream::Stdout => 0,
                    Stream::Stderr => 1,
                };
                match ch.read(id, &mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        progressed = true;
                        st.last_rx = Instant::now();
                        match on_output(which, &buf[..n]) {
                            Reply::Continue => {}
                            Reply::Input(bytes) => {
                                if stdin_open {
                                    stdin_pending.extend_from_slice(&bytes);
                                }
                            }
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
            if !stdin_pending.is_empty() {
                match ch.write(&stdin_pending) {
                    Ok(n) => {
                        stdin_pending.drain(..n);
                        progressed = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) if codes::is_transport_error(&e) => {
                        return Err(self.map_err(&e, "Writing input"));
                    }
                    Err(_) => {
                        // The remote side no longer reads stdin.
                        stdin_pending.clear();
                        stdin_open = false;
                    }
                }
            }
            if ch.eof() {
                break;
            }
            if progressed || ch.available() > 0 {
                continue;
            }
            match self.wait_socket(st, deadline, true)? {
                None => {}
                Some(end) => return Err(self.stop_for(st, &ch, end, opts.timeout)),
            }
        }

        // All output is in; wait for the remote side to close the channel,
        // which comes after the exit status.
        loop {
            match ch.wait_closed() {
                Ok(()) => break,
                Err(e) if is_eagain(&e) => match self.wait_socket(st, deadline, true)? {
                    None => {}
                    Some(end) => return Err(self.stop_for(st, &ch, end, opts.timeout)),
                },
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
                SshError::new(
                    SshErrorKind::Interrupted,
                    format!("The command on {} was interrupted", self.name),
                )
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

//! Running a command on a channel.
//!
//! The session is in non-blocking mode while a command runs. Both output
//! streams are read as data arrives and handed over chunk by chunk; when
//! neither has data, the thread sleeps in `poll(2)` on the socket (in the
//! directions libssh2 asks for) until data, the command deadline, the next
//! keepalive, or an interrupt.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::chan::RawChannel;
use super::{io, Connection, OpState, SshError, SshErrorKind};
use crate::error::seconds;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Receives each output chunk as it arrives; bytes it returns are written
/// to the command's stdin.
pub(crate) type OnOutput<'a> = dyn FnMut(Stream, &[u8]) -> Option<Vec<u8>> + 'a;

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
/// How long a stopped command gets to go away after SIGTERM/SIGINT before
/// SIGKILL.
const GRACE: Duration = Duration::from_millis(1000);

fn is_eagain(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::Session(-37))
}

/// Why a wait ended without the socket becoming ready.
enum WaitEnd {
    Deadline,
    Interrupted,
}

impl Connection {
    /// Waits for the session socket (directions from libssh2) or `deadline`;
    /// sends keepalives and detects a silent peer while waiting.
    fn wait_socket(
        &self,
        st: &mut OpState,
        deadline: Option<Instant>,
        watch_interrupt: bool,
    ) -> Result<Option<WaitEnd>, SshError> {
        let now = Instant::now();
        if let Some(d) = deadline {
            if now >= d {
                return Ok(Some(WaitEnd::Deadline));
            }
        }
        if watch_interrupt && self.interrupt.load(Ordering::SeqCst) {
            return Ok(Some(WaitEnd::Interrupted));
        }
        let mut until = deadline;
        if let Some(k) = self.keepalive {
            if now.saturating_duration_since(st.last_rx) >= k * 2 + Duration::from_secs(1) {
                return Err(self.lost(Some(&format!(
                    "no answer to keepalive messages for {} seconds",
                    seconds(now - st.last_rx)
                ))));
            }
            if now >= st.next_keepalive {
                if let Err(e) = self.session.keepalive_send() {
                    if !is_eagain(&e) {
                        return Err(self.map_err(&e, "Sending a keepalive"));
                    }
                }
                st.next_keepalive = now + k;
            }
            let check = st
                .next_keepalive
                .min(st.last_rx + k * 2 + Duration::from_secs(1));
            until = Some(until.map_or(check, |u| u.min(check)));
        }
        let events = io::wanted_events(&self.session);
        if self.tunnel.is_none() {
            io::quickack(self.fd);
        }
        let wake = watch_interrupt.then(|| self.wake.read_fd());
        let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
        match io::wait_fd(self.fd, events, wake, timeout) {
            Ok(ready) => {
                if ready.readable {
                    st.last_rx = Instant::now();
                }
                if ready.woken {
                    self.wake.drain();
                }
                Ok(None)
            }
            Err(e) => Err(SshError::new(
                SshErrorKind::Io,
                format!("Waiting for {} failed: {e}", self.name),
            )),
        }
    }

    /// Retries a non-blocking libssh2 call until it completes, waiting on
    /// the socket in between.
    fn nb<T>(
        &self,
        st: &mut OpState,
        deadline: Instant,
        what: &str,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, SshError> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if is_eagain(&e) => {
                    if let Some(WaitEnd::Deadline) = self.wait_socket(st, Some(deadline), false)? {
                        // A half-done request leaves libssh2 mid-packet.
                        self.mark_dead(&format!("timed out: {what}"));
                        return Err(SshError::new(
                            SshErrorKind::Timeout,
                            format!("Timed out on {} ({what})", self.name),
                        ));
                    }
                }
                Err(e) => return Err(self.map_err(&e, what)),
            }
        }
    }

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
        // Silence is measured from the start of this command, not from
        // the last time the connection was used.
        let now = Instant::now();
        st.last_rx = now;
        if let Some(k) = self.keepalive {
            st.next_keepalive = now + k;
        }
        self.interrupt.store(false, Ordering::SeqCst);
        self.wake.drain();
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
        let ch = self.nb(st, setup_deadline, "Opening a channel", || {
            RawChannel::open_session(sess)
        })?;
        if opts.pty {
            let (w, h) = io::terminal_size();
            self.nb(st, setup_deadline, "Requesting a pty", || {
                ch.request_pty("vt100", w, h)
            })?;
        }
        self.nb(st, setup_deadline, "Starting the command", || {
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
                        if let Some(reply) = on_output(which, &buf[..n]) {
                            if stdin_open {
                                stdin_pending.extend_from_slice(&reply);
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
                    Err(e) if super::transport::is_transport_error(&e) => {
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
        self.nb(st, close_deadline, "Closing the channel", || ch.close())?;
        let signal = ch.exit_signal();
        let code = if signal.is_some() {
            None
        } else {
            Some(ch.exit_status())
        };
        Ok(ExitStatus { code, signal })
    }

    /// Stops the remote command: `first` signal to its process group,
    /// SIGKILL if it is still there after a grace period, then closes the
    /// channel. Output arriving meanwhile is discarded. Errors are ignored
    /// (the command may already be gone); a lost connection is recorded.
    /// Stops the command because of `end` and returns the error to report.
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

    fn stop_remote(&self, st: &mut OpState, ch: &RawChannel, first: &str) {
        let _ = self.signal(st, ch, first);
        let grace_end = Instant::now() + GRACE;
        if !self.drain_until_closed(st, ch, grace_end) {
            let _ = self.signal(st, ch, "KILL");
            let _ = self.drain_until_closed(st, ch, Instant::now() + GRACE);
        }
        let _ = self.nb(st, Instant::now() + GRACE, "Closing the channel", || {
            ch.close()
        });
    }

    /// Sends an SSH "signal" channel request (OpenSSH delivers it to the
    /// command's process group; not for sessions of root).
    fn signal(&self, st: &mut OpState, ch: &RawChannel, name: &str) -> Result<(), SshError> {
        let deadline = Instant::now() + GRACE;
        self.nb(st, deadline, "Sending a signal", || ch.signal(name))
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

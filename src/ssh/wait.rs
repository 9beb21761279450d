//! Waiting for the session socket between non-blocking libssh2 calls:
//! the directions libssh2 asks for, keepalives, a silent server, the
//! process-wide interrupt and deadlines. Command channels, SFTP and SCP
//! calls all wait here; transfers drive each call to its end through
//! [`Connection::drive`].

use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::codes;
use super::connection::{Connection, OpState};
use super::{io, SshError, SshErrorKind};
use crate::sys::seconds;

/// How long a call cut short by an interrupt or a timeout gets to finish
/// (a stopped command to go away after SIGTERM/SIGINT before SIGKILL, a
/// transfer call to complete) before it is given up.
pub(super) const GRACE: Duration = Duration::from_millis(1000);

/// Why a wait ended without the socket becoming ready.
pub(super) enum WaitEnd {
    Deadline,
    Interrupted,
}

/// Whether a waiting transfer call gives way to Ctrl-C.
#[derive(Clone, Copy)]
pub(super) enum Wake {
    /// Calls of a transfer: an interrupt lets the call in progress finish
    /// (within [`GRACE`]) so that the session stays usable, then ends the
    /// operation with [`SshErrorKind::Interrupted`].
    OnInterrupt,
    /// Short calls that must not be cut (closing, renaming, cleaning up),
    /// which give up at the deadline.
    Never(Instant),
}

/// One attempt of a non-blocking call.
pub(super) enum Step<T> {
    Done(T),
    Again,
}

impl<T> Step<T> {
    /// The value of a finished attempt turned by `f`.
    pub(super) fn map_done<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(v) => Step::Done(f(v)),
            Step::Again => Step::Again,
        }
    }
}

/// An ssh2 call as a [`Step`].
pub(super) fn step<T>(r: Result<T, ssh2::Error>) -> Result<Step<T>, ssh2::Error> {
    match r {
        Ok(v) => Ok(Step::Done(v)),
        Err(e) if codes::is_eagain(&e) => Ok(Step::Again),
        Err(e) => Err(e),
    }
}

/// An I/O call on an ssh2 file or channel as a [`Step`].
pub(super) fn io_step<T>(r: std::io::Result<T>) -> std::io::Result<Step<T>> {
    match r {
        Ok(v) => Ok(Step::Done(v)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Step::Again),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(Step::Again),
        Err(e) => Err(e),
    }
}

/// The operation lock of a transfer, with the session in non-blocking
/// mode; back in blocking mode when dropped.
pub(super) struct TransferOp<'a> {
    conn: &'a Connection,
    pub(super) st: MutexGuard<'a, OpState>,
}

impl Drop for TransferOp<'_> {
    fn drop(&mut self) {
        self.conn.session.set_blocking(true);
    }
}

impl Connection {
    /// Takes the operation lock for a transfer and puts the session in
    /// non-blocking mode (see [`Connection::go_nonblocking`]).
    pub(super) fn transfer_op(&self) -> Result<TransferOp<'_>, SshError> {
        let mut st = self.begin()?;
        if io::interrupted() {
            return Err(self.interrupted_err("Starting a transfer"));
        }
        if self.tunnel.is_none() {
            io::quickack(self.fd);
        }
        self.go_nonblocking(&mut st);
        Ok(TransferOp { conn: self, st })
    }

    /// Puts the session in non-blocking mode for the calls of a transfer,
    /// and measures the server's silence from now.
    pub(super) fn go_nonblocking(&self, st: &mut OpState) {
        // A handle dropped without a close closes itself in blocking mode;
        // this bounds that wait.
        self.session
            .set_timeout(GRACE.as_millis().min(u128::from(u32::MAX)) as u32);
        self.session.set_blocking(false);
        st.last_rx = Instant::now();
        if let Some(k) = self.keepalive {
            st.next_keepalive = Instant::now() + k;
        }
    }

    /// How long the server may stay silent with keepalives on: the
    /// interval times the count (at least one, as resolved).
    pub(super) fn keepalive_limit(&self) -> Option<Duration> {
        self.keepalive.map(|k| k * self.keepalive_count)
    }

    /// The error of an operation that Ctrl-C ended.
    pub(super) fn interrupted_err(&self, what: &str) -> SshError {
        SshError::new(
            SshErrorKind::Interrupted,
            format!("{what} on {} was interrupted", self.name),
        )
    }

    /// Drives one non-blocking call to its end, waiting on the socket
    /// between attempts (keepalives go out, a silent server ends it).
    pub(super) fn drive<T>(
        &self,
        st: &mut OpState,
        what: &str,
        wake: Wake,
        mut attempt: impl FnMut() -> Result<Step<T>, SshError>,
    ) -> Result<T, SshError> {
        if matches!(wake, Wake::OnInterrupt) && io::interrupted() {
            return Err(self.interrupted_err(what));
        }
        let mut interrupted = false;
        let mut limit = match wake {
            Wake::Never(deadline) => Some(deadline),
            Wake::OnInterrupt => None,
        };
        loop {
            if let Step::Done(v) = attempt()? {
                return if interrupted {
                    Err(self.interrupted_err(what))
                } else {
                    Ok(v)
                };
            }
            let silence = st.last_rx + self.io_timeout;
            let deadline = limit.map_or(silence, |l| l.min(silence));
            let watch = matches!(wake, Wake::OnInterrupt) && !interrupted;
            match self.wait_socket(st, Some(deadline), watch)? {
                None => {}
                Some(WaitEnd::Interrupted) => {
                    // Let the call finish so that libssh2 is not left in
                    // the middle of a packet; give up on it after GRACE.
                    interrupted = true;
                    limit = Some(Instant::now() + GRACE);
                }
                Some(WaitEnd::Deadline) => {
                    let silent = Instant::now().saturating_duration_since(st.last_rx);
                    self.mark_dead(&format!("no answer while {what}"));
                    return Err(if interrupted {
                        self.interrupted_err(what)
                    } else {
                        SshError::new(
                            SshErrorKind::Timeout,
                            format!(
                                "Timed out on {} ({what}): no answer for {} seconds",
                                self.name,
                                seconds(silent)
                            ),
                        )
                    });
                }
            }
        }
    }

    /// Waits for the session socket (directions from libssh2), `deadline`
    /// or, when `watch_interrupt`, the process-wide interrupt. Sends
    /// keepalives while it waits; a server silent for `keepalive_count`
    /// keepalive intervals is gone (OpenSSH's `ServerAliveInterval` and
    /// `ServerAliveCountMax`).
    pub(super) fn wait_socket(
        &self,
        st: &mut OpState,
        deadline: Option<Instant>,
        watch_interrupt: bool,
    ) -> Result<Option<WaitEnd>, SshError> {
        self.wait_socket_or_input(st, deadline, watch_interrupt, &[], None, false)
    }

    /// [`wait_socket`](Connection::wait_socket), also returning (with
    /// `Ok(None)`) when one of `input` is ready for its events or
    /// `input_at` comes: local input for a running command, the time it
    /// may go, or room where its output goes.
    ///
    /// With `hold`, the command's output is not being read (its reader
    /// has no room): the socket is watched only for what libssh2 has to
    /// send, and the server's silence is not counted, since nobody
    /// listens to it; the wait ends with the reader's room, local input,
    /// the deadline or the interrupt.
    pub(super) fn wait_socket_or_input(
        &self,
        st: &mut OpState,
        deadline: Option<Instant>,
        watch_interrupt: bool,
        input: &[(RawFd, libc::c_short)],
        input_at: Option<Instant>,
        hold: bool,
    ) -> Result<Option<WaitEnd>, SshError> {
        let now = Instant::now();
        if hold {
            st.last_rx = now;
        }
        if let Some(d) = deadline {
            if now >= d {
                return Ok(Some(WaitEnd::Deadline));
            }
        }
        if watch_interrupt && io::interrupted() {
            return Ok(Some(WaitEnd::Interrupted));
        }
        let mut until = deadline;
        if let (Some(k), Some(limit)) = (self.keepalive, self.keepalive_limit()) {
            let silent = now.saturating_duration_since(st.last_rx);
            if silent >= limit {
                return Err(self.lost(Some(&format!(
                    "no answer to keepalive messages for {} seconds",
                    seconds(silent)
                ))));
            }
            if now >= st.next_keepalive {
                if let Err(e) = self.session.keepalive_send() {
                    // EAGAIN, or a packet of another call still half-sent
                    // (libssh2 then refuses to start a new one): the next
                    // wait tries again.
                    if !codes::is_eagain(&e) && !codes::is_bad_use(&e) {
                        return Err(self.map_err(&e, "Sending a keepalive"));
                    }
                }
                st.next_keepalive = now + k;
            }
            let check = st.next_keepalive.min(st.last_rx + limit);
            until = Some(until.map_or(check, |u| u.min(check)));
        }
        if let Some(at) = input_at {
            if now >= at {
                return Ok(None);
            }
            until = Some(until.map_or(at, |u| u.min(at)));
        }
        let mut events = io::wanted_events(&self.session);
        if hold {
            events &= !libc::POLLIN;
        }
        if self.tunnel.is_none() {
            io::quickack(self.fd);
        }
        let wake = if watch_interrupt {
            io::interrupt_fd()
        } else {
            None
        };
        let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
        let fd = if events == 0 { -1 } else { self.fd };
        match io::wait_fd_or_input(fd, events, wake, input, timeout) {
            Ok(ready) => {
                if ready.readable {
                    st.last_rx = Instant::now();
                }
                if ready.woken && watch_interrupt && io::interrupted() {
                    return Ok(Some(WaitEnd::Interrupted));
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
    /// the socket in between, until `deadline`.
    pub(super) fn retry_nonblocking<T>(
        &self,
        st: &mut OpState,
        deadline: Instant,
        what: &str,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, SshError> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if codes::is_eagain(&e) => {
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
}

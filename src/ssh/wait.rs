//! Waiting for the session socket between non-blocking libssh2 calls:
//! the directions libssh2 asks for, keepalives, a silent server, the
//! process-wide interrupt and deadlines. Command channels and SFTP calls
//! both wait here.

use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

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

impl Connection {
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
        self.wait_socket_or_input(st, deadline, watch_interrupt, &[], None)
    }

    /// [`wait_socket`](Connection::wait_socket), also returning (with
    /// `Ok(None)`) when one of `input` is readable or `input_at` comes:
    /// local input for a running command, or the time it may go.
    pub(super) fn wait_socket_or_input(
        &self,
        st: &mut OpState,
        deadline: Option<Instant>,
        watch_interrupt: bool,
        input: &[RawFd],
        input_at: Option<Instant>,
    ) -> Result<Option<WaitEnd>, SshError> {
        let now = Instant::now();
        if let Some(d) = deadline {
            if now >= d {
                return Ok(Some(WaitEnd::Deadline));
            }
        }
        if watch_interrupt && io::interrupted() {
            return Ok(Some(WaitEnd::Interrupted));
        }
        let mut until = deadline;
        if let Some(k) = self.keepalive {
            let limit = k * self.keepalive_count.max(1);
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
        let events = io::wanted_events(&self.session);
        if self.tunnel.is_none() {
            io::quickack(self.fd);
        }
        let wake = if watch_interrupt {
            io::interrupt_fd()
        } else {
            None
        };
        let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
        match io::wait_fd_or_input(self.fd, events, wake, input, timeout) {
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

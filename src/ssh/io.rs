//! Low-level waiting: `poll(2)` on the session socket, the process-wide
//! interrupt and its wake-up socket pair, socket liveness; and reading a
//! local source a buffer at a time.

use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::sys;

/// Reads from `src` until `buf` is full or the source ends; returns the
/// number of bytes read.
pub(crate) fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What `poll` reported.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) woken: bool,
}

/// poll events wanted on the session socket, from libssh2's
/// block_directions (inbound when libssh2 has no opinion).
pub(crate) fn wanted_events(session: &ssh2::Session) -> libc::c_short {
    match session.block_directions() {
        ssh2::BlockDirections::Outbound => libc::POLLIN | libc::POLLOUT,
        ssh2::BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
        _ => libc::POLLIN,
    }
}

/// Waits until `fd` is ready for `events`, `wake` (if any) is readable, or
/// `timeout` passes (`None`: no limit). EINTR is retried.
pub(crate) fn wait_fd(
    fd: RawFd,
    events: libc::c_short,
    wake: Option<RawFd>,
    timeout: Option<Duration>,
) -> std::io::Result<Ready> {
    wait_fd_or_input(fd, events, wake, &[], timeout)
}

/// [`wait_fd`], also ending when one of `input` (at most four descriptors
/// of the caller's: standard input, a signal's wake-up pipe, where a
/// command's output goes) is ready for its events (`POLLIN`: readable,
/// `POLLOUT`: writable). EINTR (a signal such as SIGWINCH) then ends the
/// wait too, so that the caller looks again. A negative `fd` leaves the
/// session socket out.
pub(crate) fn wait_fd_or_input(
    fd: RawFd,
    events: libc::c_short,
    wake: Option<RawFd>,
    input: &[(RawFd, libc::c_short)],
    timeout: Option<Duration>,
) -> std::io::Result<Ready> {
    const MAX_INPUT: usize = 4;
    debug_assert!(input.len() <= MAX_INPUT);
    let start = Instant::now();
    let unused = libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    };
    let mut fds = [unused; 2 + MAX_INPUT];
    fds[0] = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // A negative descriptor is left out by poll(2).
    fds[1] = libc::pollfd {
        fd: wake.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    };
    for (slot, &(fd, events)) in fds[2..].iter_mut().zip(input) {
        *slot = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
    }
    let n_fds = 2 + input.len().min(MAX_INPUT);
    let fds = &mut fds[..n_fds];
    loop {
        for p in fds.iter_mut() {
            p.revents = 0;
        }
        let ms = match timeout {
            None => -1,
            Some(t) => {
                let left = t.saturating_sub(start.elapsed());
                // Round up so a sub-millisecond remainder does not spin.
                let ms = left.as_micros().div_ceil(1000);
                ms.min(i32::MAX as u128) as libc::c_int
            }
        };
        match sys::poll(fds, ms) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                if input.is_empty() {
                    continue;
                }
                return Ok(Ready::default());
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        return Ok(Ready {
            readable: fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
            woken: wake.is_some() && fds[1].revents != 0,
        });
    }
}

/// Asks the kernel to acknowledge received data at once instead of
/// delaying the ack (Linux `TCP_QUICKACK`; the kernel may fall back to
/// delayed acks later, so it is set again before every wait). sshd does
/// not set TCP_NODELAY on non-interactive sessions: when it writes two
/// small packets in a row (e.g. the `hostkeys-00@openssh.com` notice and
/// the channel-open confirmation), Nagle holds the second until the first
/// is acknowledged, which a delayed ack stretches to ~40 ms.
pub(crate) fn quickack(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: valid pointer and length for an int option; errors (not a TCP
    // socket) are harmless.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// False when the peer has closed the socket (EOF or error pending).
/// Data waiting to be read counts as open.
pub(crate) fn socket_open(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    match sys::poll(std::slice::from_mut(&mut pfd), 0) {
        Ok(0) => return true,
        Ok(_) => {}
        Err(_) => return false,
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return false;
    }
    let mut b = [0u8; 1];
    // SAFETY: reading at most one byte into a valid buffer, without
    // consuming it.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr() as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// A socket pair used to wake threads blocked in [`wait_fd`]: a byte
/// written to one end makes the other readable. Both ends are
/// non-blocking and closed when it is dropped.
#[derive(Debug)]
struct WakeSocket {
    read: UnixStream,
    write: UnixStream,
}

impl WakeSocket {
    fn new() -> std::io::Result<WakeSocket> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(WakeSocket { read, write })
    }

    fn wake(&self) {
        // A full buffer is fine: the reader is woken already.
        let _ = (&self.write).write(&[1]);
    }

    /// Reads every byte written so far.
    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// The process-wide interrupt: raised by Ctrl-C (through
/// [`interrupt_all`](super::interrupt_all)), it stays raised until
/// cleared, and while it is raised every wait that watches it ends at once.
/// One socket pair serves every connection, so a connection costs only its
/// socket.
struct Interrupt {
    raised: AtomicBool,
    wake: Mutex<Option<WakeSocket>>,
}

static INTERRUPT: Interrupt = Interrupt {
    raised: AtomicBool::new(false),
    wake: Mutex::new(None),
};

/// The end of the interrupt's socket pair that becomes readable when the
/// interrupt is raised (created on first use), or `None` when no socket
/// pair can be made; the raised flag is still checked then.
pub(crate) fn interrupt_fd() -> Option<RawFd> {
    let mut wake = INTERRUPT.wake.lock();
    if wake.is_none() {
        *wake = WakeSocket::new().ok();
        if INTERRUPT.raised.load(Ordering::SeqCst) {
            if let Some(w) = wake.as_ref() {
                w.wake();
            }
        }
    }
    wake.as_ref().map(|w| w.read.as_raw_fd())
}

/// Raises the interrupt and wakes every waiter that watches it.
pub(crate) fn raise_interrupt() {
    INTERRUPT.raised.store(true, Ordering::SeqCst);
    // A Ctrl-C handler may run while another thread holds the lock for a
    // moment; a waiter checks the flag before it sleeps anyway.
    if let Some(wake) = INTERRUPT.wake.try_lock_for(Duration::from_millis(200)) {
        if let Some(w) = wake.as_ref() {
            w.wake();
        }
    }
}

/// Whether the interrupt is raised.
pub(crate) fn interrupted() -> bool {
    INTERRUPT.raised.load(Ordering::SeqCst)
}

/// Lowers the interrupt.
pub(crate) fn clear_interrupt() {
    INTERRUPT.raised.store(false, Ordering::SeqCst);
    if let Some(w) = INTERRUPT.wake.lock().as_ref() {
        w.drain();
    }
}

/// In a forked child: the socket pair is shared with the parent, so a wake
/// here would wake the parent too. The child gets its own, lowered.
pub(crate) fn reset_interrupt_after_fork() {
    if INTERRUPT.wake.is_locked() {
        // SAFETY: the child has one thread, so no guard of the lock is
        // alive; a thread of the parent held it at the fork.
        unsafe { INTERRUPT.wake.force_unlock() };
    }
    // Closes this process's copies of the parent's descriptors.
    drop(INTERRUPT.wake.lock().take());
    INTERRUPT.raised.store(false, Ordering::SeqCst);
}

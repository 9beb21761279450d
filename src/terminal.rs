//! The local terminal while a remote command has it: the mode keys are
//! read in, put back on every way out; the window-change signal; and
//! reading standard input without waiting. This module imports nothing of
//! twill.
//!
//! A mode is entered with [`ModeGuard::enter`] and left when the guard is
//! dropped: at the command's end, on an error, a timeout or an interrupt
//! (the operation returns), and while a panic unwinds. For a process that
//! ends without unwinding (`std::process::exit`, as the Ctrl-C handler
//! does outside any `execute`), the terminal's mode as it was is also kept
//! in a process-wide slot that an `atexit` function puts back. A forked
//! parallel worker never enters a mode (its standard input is /dev/null),
//! so the slot's lock is never taken there.

use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Duration;

use parking_lot::Mutex;

const STDIN: RawFd = libc::STDIN_FILENO;

/// How keys reach a remote command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each key as it is typed, not echoed here (the remote pty echoes):
    /// Fabric's `char_buffered`, the terminal's cbreak mode. With
    /// `signals` false, Ctrl-C, Ctrl-Z and Ctrl-\ are keys like the others
    /// instead of signals to twill.
    Keys { signals: bool },
    /// OpenSSH's raw mode, for a shell: every byte passes unchanged both
    /// ways (no line editing, no CR/NL translation, no flow control), and
    /// with `signals` false Ctrl-C and the like are keys too.
    Raw { signals: bool },
    /// Whole lines, edited by the terminal (Ctrl-D at the start of a line
    /// ends the input), echoed when `echo`.
    Lines { echo: bool },
}

/// The terminal's mode before the running command's, for the `atexit`
/// function; `None` while no command has the terminal.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Whether standard input is a terminal whose foreground process group is
/// this process's, so that it can be read and its mode set without the
/// terminal stopping the process (SIGTTIN, SIGTTOU).
pub(crate) fn is_foreground_terminal() -> bool {
    // SAFETY: plain queries on descriptor 0 and this process.
    unsafe { libc::isatty(STDIN) == 1 && libc::tcgetpgrp(STDIN) == libc::getpgrp() }
}

/// The terminal in a mode of a running command; the mode it had comes
/// back when this is dropped.
pub(crate) struct ModeGuard {
    saved: libc::termios,
    set: libc::termios,
}

impl std::fmt::Debug for ModeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModeGuard")
    }
}

impl ModeGuard {
    /// Puts the terminal on standard input in `mode`; `None` when standard
    /// input is not a terminal in the foreground, when another command has
    /// it already (another thread), or when its mode cannot be read or
    /// set.
    pub(crate) fn enter(mode: Mode) -> Option<ModeGuard> {
        if !is_foreground_terminal() {
            return None;
        }
        let mut slot = SAVED.lock();
        if slot.is_some() {
            return None;
        }
        // SAFETY: a zeroed termios is a valid buffer for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: descriptor 0 and a valid termios to fill.
        if unsafe { libc::tcgetattr(STDIN, &mut saved) } != 0 {
            return None;
        }
        let mut set = saved;
        match mode {
            Mode::Keys { signals } => {
                set.c_lflag &= !(libc::ICANON | libc::ECHO);
                if !signals {
                    set.c_lflag &= !libc::ISIG;
                }
                set.c_cc[libc::VMIN] = 1;
                set.c_cc[libc::VTIME] = 0;
            }
            Mode::Raw { signals } => {
                // OpenSSH's enter_raw_mode (sshtty.c).
                set.c_iflag |= libc::IGNPAR;
                set.c_iflag &= !(libc::ISTRIP
                    | libc::INLCR
                    | libc::IGNCR
                    | libc::ICRNL
                    | libc::IXON
                    | libc::IXANY
                    | libc::IXOFF
                    | libc::IUCLC);
                set.c_lflag &= !(libc::ICANON
                    | libc::ECHO
                    | libc::ECHOE
                    | libc::ECHOK
                    | libc::ECHONL
                    | libc::IEXTEN);
                if !signals {
                    set.c_lflag &= !libc::ISIG;
                }
                set.c_oflag &= !libc::OPOST;
                set.c_cc[libc::VMIN] = 1;
                set.c_cc[libc::VTIME] = 0;
            }
            Mode::Lines { echo } => {
                set.c_lflag |= libc::ICANON;
                if echo {
                    set.c_lflag |= libc::ECHO;
                } else {
                    set.c_lflag &= !libc::ECHO;
                }
            }
        }
        if !apply(&set) {
            return None;
        }
        *slot = Some(saved);
        drop(slot);
        register_atexit();
        Some(ModeGuard { saved, set })
    }

    /// Puts the terminal back as it was for a while (to ask a password
    /// with the terminal's own line editing), until [`resume`](Self::resume).
    pub(crate) fn pause(&self) {
        apply(&self.saved);
    }

    /// Puts the terminal in the command's mode again after a
    /// [`pause`](Self::pause).
    pub(crate) fn resume(&self) {
        apply(&self.set);
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        apply(&self.saved);
        *SAVED.lock() = None;
    }
}

/// Sets the terminal's mode once what was written to it is out
/// (`TCSADRAIN`, as OpenSSH and Fabric do); false if that fails.
fn apply(t: &libc::termios) -> bool {
    loop {
        // SAFETY: descriptor 0 and a valid termios.
        if unsafe { libc::tcsetattr(STDIN, libc::TCSADRAIN, t) } == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Registers, once, the function that puts the terminal back when the
/// process exits with a command's mode still set.
fn register_atexit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function with no
        // arguments; a failure to register only loses the safety net.
        unsafe { libc::atexit(restore_at_exit) };
    });
}

extern "C" fn restore_at_exit() {
    // Another thread may hold the lock for a moment; the exit waits a
    // little, never forever.
    if let Some(slot) = SAVED.try_lock_for(Duration::from_millis(200)) {
        if let Some(saved) = slot.as_ref() {
            apply(saved);
        }
    }
}

/// The write end of the window-change pipe, for the signal handler; -1
/// until it is made.
static WINCH_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The read end of the window-change pipe.
static WINCH_READ: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_WRITE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: only async-signal-safe calls: errno is saved and put back
    // around a write(2) of one byte from a live buffer to a non-blocking
    // pipe (a full pipe already says that the window changed).
    unsafe {
        let errno = *libc::__errno_location();
        let byte = 1u8;
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The window-change signal (SIGWINCH) watched while a command runs with
/// a pty: each signal makes a pipe readable. The signal's previous
/// disposition comes back when this is dropped.
pub(crate) struct Winch {
    previous: libc::sigaction,
    read: RawFd,
}

impl std::fmt::Debug for Winch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Winch").field("read", &self.read).finish()
    }
}

impl Winch {
    /// Starts watching; `None` when the pipe or the handler cannot be set
    /// up (the pty then keeps its first size).
    pub(crate) fn watch() -> Option<Winch> {
        let read = winch_pipe()?;
        // SAFETY: a zeroed sigaction is valid to fill; the handler is an
        // `extern "C" fn(c_int)` that only calls async-signal-safe
        // functions; `previous` receives the old disposition.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_winch as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGWINCH, &action, &mut previous) != 0 {
                return None;
            }
            let winch = Winch { previous, read };
            // Signals from before this command are no news.
            winch.changed();
            Some(winch)
        }
    }

    /// The descriptor that becomes readable when the window changes.
    pub(crate) fn fd(&self) -> RawFd {
        self.read
    }

    /// Whether the window changed since the last call (reads the pipe
    /// empty).
    pub(crate) fn changed(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut changed = false;
        loop {
            // SAFETY: reading into a live buffer of its length from our
            // own non-blocking pipe.
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return changed;
            }
            changed = true;
        }
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition sigaction returned.
        unsafe { libc::sigaction(libc::SIGWINCH, &self.previous, std::ptr::null_mut()) };
    }
}

/// The read end of the window-change pipe, made on first use (close on
/// exec, non-blocking) and kept for the life of the process.
fn winch_pipe() -> Option<RawFd> {
    static MADE: Mutex<()> = Mutex::new(());
    let _made = MADE.lock();
    let read = WINCH_READ.load(Ordering::SeqCst);
    if read >= 0 {
        return Some(read);
    }
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: pipe2 fills a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    WINCH_WRITE.store(fds[1], Ordering::SeqCst);
    WINCH_READ.store(fds[0], Ordering::SeqCst);
    Some(fds[0])
}

/// What a look at standard input found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// This many bytes, now in the buffer.
    Data(usize),
    /// The end: a pipe or file read to its end, /dev/null, Ctrl-D on a
    /// terminal in line mode, or a standard input that is closed or fails.
    End,
    /// Nothing yet.
    Nothing,
}

/// Reads what standard input has now into `buf`, without waiting: a
/// `poll(2)` that does not wait, then one `read(2)` if it is ready.
/// Descriptor 0 is read directly, never through std's buffer, and its
/// flags are left alone (a terminal's are shared with the shell).
pub(crate) fn read_stdin(buf: &mut [u8]) -> Read {
    let mut pfd = libc::pollfd {
        fd: STDIN,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n < 0 {
        return if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            Read::Nothing
        } else {
            Read::End
        };
    }
    if n == 0 || pfd.revents == 0 {
        return Read::Nothing;
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Read::End;
    }
    loop {
        // SAFETY: reading into a live buffer of its length.
        let n = unsafe { libc::read(STDIN, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Read::Data(n as usize);
        }
        if n == 0 {
            return Read::End;
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => return Read::Nothing,
            _ => return Read::End,
        }
    }
}

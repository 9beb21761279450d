//! Ctrl-C and SIGTERM: one process-wide handler that passes the interrupt
//! on to whatever twill is running.
//!
//! The handler (a thread of the `ctrlc` crate) is installed by the first
//! `execute` or `local`. On SIGINT or SIGTERM it first sends SIGINT to
//! every running local command (see [`spawn_local`]). Then, while an
//! `execute` is active, it marks the run interrupted and stops every remote
//! command, so that the running operations return
//! [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted) and `execute`
//! stops its workers; with no `execute` active it exits the process with
//! 130, as a shell does.
//!
//! A local command runs in a process group of its own when twill is not
//! the foreground process group of a terminal: the interrupt then reaches
//! the command and everything it started. When twill is in the foreground
//! of a terminal, the command stays in twill's group, so that the
//! terminal's own Ctrl-C reaches it directly and an interactive program
//! keeps the terminal; the handler then signals the command's process
//! alone. A parallel worker's local commands stay in the worker's group,
//! which the caller stops as a whole.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::ssh;
use crate::terminal;

/// How many `execute` calls are running.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Set by the handler while an `execute` runs; cleared when the next
/// `execute` starts after none ran.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set in a parallel worker, right after the fork.
static IN_WORKER: AtomicBool = AtomicBool::new(false);
/// The running local commands.
static CHILDREN: Mutex<Vec<LocalProcess>> = Mutex::new(Vec::new());

static HANDLER: LazyLock<bool> = LazyLock::new(|| ctrlc::set_handler(on_signal).is_ok());

/// A running local command, as the handler signals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalProcess {
    pid: libc::pid_t,
    /// Whether it leads a process group of its own.
    own_group: bool,
}

impl LocalProcess {
    fn signal(self, sig: libc::c_int) {
        // SAFETY: plain syscalls. A process is forgotten before it is
        // reaped (`Registered::wait`), so its pid, and its group's, still
        // name it.
        unsafe {
            if self.own_group {
                libc::killpg(self.pid, sig);
            } else {
                libc::kill(self.pid, sig);
            }
        }
    }
}

/// Installs the handler (once; later calls do nothing).
pub(crate) fn install() {
    LazyLock::force(&HANDLER);
}

fn on_signal() {
    // Held until the end: no local command starts in between unseen.
    let children = CHILDREN.lock();
    let active = ACTIVE.load(Ordering::SeqCst) > 0;
    if active {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    for child in children.iter() {
        child.signal(libc::SIGINT);
    }
    if !active {
        std::process::exit(130);
    }
    drop(children);
    ssh::interrupt_all();
}

/// Counts a running `execute`, so that an interrupt stops it instead of
/// ending the process at once.
pub(crate) struct Active;

impl Active {
    pub(crate) fn new() -> Active {
        install();
        if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            ssh::clear_interrupt();
        }
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        // The interrupt lasts as long as the run it stopped: once the
        // outermost `execute` has returned, operations work again (for a
        // program's own clean-up, say).
        if ACTIVE.fetch_sub(1, Ordering::SeqCst) == 1 {
            ssh::clear_interrupt();
        }
    }
}

/// Whether a running `execute` was interrupted.
pub(crate) fn interrupted() -> bool {
    ACTIVE.load(Ordering::SeqCst) > 0 && INTERRUPTED.load(Ordering::SeqCst)
}

/// Whether this process is a parallel worker of `execute` (a `fork()` of
/// the caller, whose standard input is /dev/null and whose Ctrl-C is the
/// caller's business).
pub(crate) fn in_worker() -> bool {
    IN_WORKER.load(Ordering::SeqCst)
}

/// A local command known to the handler until it is waited for.
pub(crate) struct Registered {
    process: LocalProcess,
}

impl Registered {
    /// Waits for the command to end, forgets it, then reaps it: the
    /// handler never signals a pid that may already name another process.
    pub(crate) fn wait(self, child: &mut Child) -> io::Result<ExitStatus> {
        loop {
            // SAFETY: waits for our own child without reaping it (WNOWAIT);
            // a zeroed siginfo_t is a valid output buffer.
            let r = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(
                    libc::P_PID,
                    self.process.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            // Any other failure is `Child::wait`'s to report.
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        drop(self);
        child.wait()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut children = CHILDREN.lock();
        if let Some(i) = children.iter().position(|c| *c == self.process) {
            children.swap_remove(i);
        }
    }
}

/// Starts a local command and registers it with the handler (installing
/// the handler first), or returns `None` without starting it when the
/// running `execute` was interrupted. `own_group` asks for a process
/// group of its own whatever the terminal (for a timeout that kills
/// everything the command started).
pub(crate) fn spawn_local(
    cmd: &mut Command,
    own_group: bool,
) -> io::Result<Option<(Child, Registered)>> {
    install();
    let own_group = own_group || (!in_worker() && !terminal::is_foreground_terminal());
    if own_group {
        cmd.process_group(0);
    }
    // The lock makes the start and the registration one step for the
    // handler: it signals the command, or the command is never started.
    let mut children = CHILDREN.lock();
    if interrupted() {
        return Ok(None);
    }
    let child = cmd.spawn()?;
    let process = LocalProcess {
        pid: child.id() as libc::pid_t,
        own_group,
    };
    children.push(process);
    Ok(Some((child, Registered { process })))
}

/// In a new parallel worker (one thread): forgets the caller's local
/// commands, which are not this process's children, and releases the lock
/// if another thread of the caller held it at the fork.
pub(crate) fn reset_after_fork() {
    if CHILDREN.is_locked() {
        // SAFETY: the process has a single thread, so no guard is alive.
        unsafe { CHILDREN.force_unlock() };
    }
    CHILDREN.lock().clear();
    IN_WORKER.store(true, Ordering::SeqCst);
}

/// In a parallel worker that is told to stop (SIGTERM): no new local
/// command starts, the running ones get SIGTERM (a worker's local commands
/// ignore SIGINT, as the worker does), and the remote commands are stopped.
pub(crate) fn stop_worker() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    {
        let children = CHILDREN.lock();
        for child in children.iter().filter(|c| c.own_group) {
            child.signal(libc::SIGTERM);
        }
        // SAFETY: plain syscalls. The worker leads its own process group,
        // where its other local commands run; the worker itself blocks
        // SIGTERM.
        unsafe {
            if libc::getpgrp() == libc::getpid() {
                libc::kill(0, libc::SIGTERM);
            }
        }
    }
    ssh::interrupt_all();
}

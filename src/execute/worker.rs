//! The parallel path: a pool of `fork()`ed worker processes, the caller's
//! loop that starts them, relays their output and reaps them, and the
//! worker's own side.
//!
//! # The fork contract
//!
//! A worker is a `fork()` of the caller, made by the thread that runs
//! `execute`. It inherits the caller's memory (the task, the settings) and
//! descriptors, but of the caller's threads only that one: every other
//! thread (the Ctrl-C handler's, the program's own) is absent from the
//! worker, together with whatever it was doing at that instant.
//!
//! Descriptors and signals. Right after the fork the worker closes the
//! other workers' pipes and the caller's ends of its own, reads /dev/null
//! as standard input (or, with `--panes`, the FIFO its tmux pane writes
//! keys into, opened after the fork), writes its standard output and error to its pipes,
//! and leads a process group of its own. It ignores SIGINT; SIGTERM stops
//! its local and remote commands, then the worker. It asks the kernel for
//! that SIGTERM when its parent dies (`PR_SET_PDEATHSIG`), and exits at
//! once if the parent is already gone. `PR_SET_PDEATHSIG` fires when the
//! forking *thread* ends, not the process, so the thread that forks stays
//! in [`run`] until every worker it started has been reaped, on every way
//! out of it: an early error and a panic included ([`Pool`] stops and
//! reaps its workers when dropped). A worker leaves with `_exit`, never
//! returning into the caller's frames: the caller's destructors, `atexit`
//! handlers and buffered standard output are never run or written twice.
//!
//! Locks. A lock that another thread of the caller held at the fork stays
//! held in the worker, where no thread will ever release it. For each
//! process-global lock a worker can inherit, this is what the worker does:
//!
//! - twill's print lock (`output`): released if held
//!   (`output::reset_after_fork`); from then on the worker prints with
//!   plain `write(2)` calls, never through std's.
//! - the progress bars' locks (`output`): never taken in a worker,
//!   which draws no bar; it sends its transfers' progress to the caller as
//!   events when the caller draws (`Job::progress`).
//! - the events registry and the pipe to the caller (`events/mod.rs`):
//!   released if held (`events::forward_after_fork`); the caller's loggers
//!   are forgotten, never run or dropped here.
//! - std's stdout and stderr locks: twill never takes them in a worker.
//!   The caller flushes its stdout just before forking, and the worker
//!   never flushes the copy of the buffer it inherited. The panic hook,
//!   which would print through std's stderr lock, is silent in a worker:
//!   the caller installs a hook that stays silent there once, before its
//!   first fork, since setting a hook in the worker would take the hook's
//!   own lock, which a panicking thread of the caller may have held (a
//!   panic is the host's failure, with its message). A task's own
//!   `print!` goes through std's lock and would wait forever if another
//!   thread of the caller was printing at the fork: tasks print with
//!   `puts`.
//! - the SSH connection cache lock (`ssh/mod.rs`): released if held, and
//!   every cached connection forgotten, its socket closed and nothing sent
//!   (`ssh::forget_all_after_fork`).
//! - the interrupt pipe lock (`ssh/io.rs`): released if held; the wake-up
//!   pipe shared with the caller is closed, and the worker makes its own on
//!   first use, its interrupt lowered.
//! - the local commands' lock (`CHILDREN` in `interrupt.rs`): released if
//!   held, and the caller's local commands, which are not the worker's
//!   children, forgotten (`interrupt::reset_after_fork`, which also marks
//!   the process as a worker).
//! - the Ctrl-C handler's one-time installation (`interrupt.rs`): done
//!   before the first fork (`interrupt::Active::new`), so a worker never
//!   waits on it.
//! - the settings defaults lock (`DEFAULTS` in `state/mod.rs`): released
//!   if held (`state::reset_after_fork`). The worker's thread reads its
//!   settings from the snapshot it installs; `set_env`, `set_defaults` and
//!   `env()` on a thread the task starts use the defaults.
//! - the ssh_config cache lock (`PARSED` in `ssh/config.rs`): released if
//!   held (by `ssh::forget_all_after_fork`).
//! - the allocator: glibc's `fork()` takes every malloc arena lock around
//!   the fork and resets them in the child, so the worker allocates freely.
//!   A program that installs its own global allocator must give it the same
//!   guarantee (jemalloc does).
//! - `parking_lot`'s global table of waiting threads: a lock released by
//!   force wakes the caller's threads that were queued on it (absent here,
//!   so nothing happens) through that table, whose locks are held only for
//!   the few instructions of a queue operation.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use super::{announce, interrupted_error, run_caught, wire};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, EventKind, Outcome};
use crate::interrupt;
use crate::output::{self, Pipe};
use crate::ssh;
use crate::state::{self, env, Env, Settings};

/// How long stopped workers have after SIGTERM, before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// One of a worker's output streams, on its way to the caller's own.
struct Stream {
    /// The read end of the worker's pipe; `None` once closed.
    pipe: Option<PipeReader>,
    /// Where it is printed.
    to: Pipe,
    /// Line by line: the start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// In blocks: everything so far.
    block: Vec<u8>,
}

impl Stream {
    fn new(pipe: PipeReader, to: Pipe) -> Stream {
        Stream {
            pipe: Some(pipe),
            to,
            partial: Vec::new(),
            block: Vec::new(),
        }
    }

    /// Takes `data` just read: kept for the block, or printed up to its
    /// last whole line.
    fn take(&mut self, data: &[u8], blocks: bool) {
        if blocks {
            self.block.extend_from_slice(data);
            return;
        }
        // Only the new bytes can end a line: searching the whole pending
        // line on each read would take time quadratic in the line's length.
        let start = self.partial.len();
        self.partial.extend_from_slice(data);
        if let Some(end) = data.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(start + end + 1);
            let lines = std::mem::replace(&mut self.partial, rest);
            output::forward(self.to, &String::from_utf8_lossy(&lines));
        }
    }

    /// Prints what is left: an unfinished last line, or the whole block,
    /// each ended with a newline.
    fn finish(&mut self) {
        for mut rest in [
            std::mem::take(&mut self.partial),
            std::mem::take(&mut self.block),
        ] {
            if rest.is_empty() {
                continue;
            }
            if !rest.ends_with(b"\n") {
                rest.push(b'\n');
            }
            output::forward(self.to, &String::from_utf8_lossy(&rest));
        }
    }
}

/// Which of a worker's pipes.
#[derive(Debug, Clone, Copy)]
enum Source {
    Out,
    Err,
    Report,
}

/// One started worker, until the caller has its result.
struct Worker {
    index: usize,
    pid: libc::pid_t,
    out: Stream,
    err: Stream,
    /// The read end of the report pipe; `None` once closed.
    report_pipe: Option<PipeReader>,
    /// The report so far: event lines not yet whole, then the result.
    report: Vec<u8>,
    /// The host (or value) it runs for.
    host: String,
    /// Whether the worker's own record of its task's end came through.
    task_ended: bool,
    /// Its transfer's progress, drawn here.
    bar: output::WorkerBar,
    status: Option<i32>,
    exited_at: Option<Instant>,
}

impl Worker {
    fn pipe(&mut self, source: Source) -> &mut Option<PipeReader> {
        match source {
            Source::Out => &mut self.out.pipe,
            Source::Err => &mut self.err.pipe,
            Source::Report => &mut self.report_pipe,
        }
    }

    /// The pipes still open.
    fn open_pipes(&self) -> impl Iterator<Item = (Source, BorrowedFd<'_>)> {
        [
            (Source::Out, &self.out.pipe),
            (Source::Err, &self.err.pipe),
            (Source::Report, &self.report_pipe),
        ]
        .into_iter()
        .filter_map(|(source, pipe)| pipe.as_ref().map(|p| (source, p.as_fd())))
    }

    /// Takes `data` just read from `source`.
    fn take(&mut self, source: Source, data: &[u8], blocks: bool) {
        match source {
            Source::Out => self.out.take(data, blocks),
            Source::Err => self.err.take(data, blocks),
            Source::Report => {
                // Whole event lines are handed on at once; what is left at
                // the end is the result.
                let start = self.report.len();
                self.report.extend_from_slice(data);
                if data.contains(&b'\n') {
                    self.take_events(start);
                }
            }
        }
    }

    /// Hands the whole event lines at the front of the report to the
    /// loggers, and progress to the worker's bar (`new_from`: where the
    /// bytes just read begin).
    fn take_events(&mut self, new_from: usize) {
        let Some(last) = self.report[new_from..].iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.report.split_off(new_from + last + 1);
        let lines = std::mem::replace(&mut self.report, rest);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(event) = events::from_worker(line) {
                self.task_ended |= matches!(event.kind, EventKind::TaskEnded { .. });
                self.bar.take(&event);
            }
        }
    }

    /// Sends `sig` to the worker's process group, which holds what the
    /// worker started, or to the worker alone if there is no group yet.
    fn signal(&self, sig: libc::c_int) {
        if self.status.is_none() {
            events::emit_for(
                &state::env(),
                Some(self.host.clone()),
                EventKind::WorkerKilled {
                    pid: self.pid,
                    signal: sig,
                },
            );
        }
        // SAFETY: plain syscalls. The worker leads its own group; its pid
        // is not reused before it is reaped, and the group's id not while
        // any process is in the group.
        unsafe {
            if libc::killpg(self.pid, sig) != 0 && self.status.is_none() {
                libc::kill(self.pid, sig);
            }
        }
    }

    /// Reaps the worker if it has exited; whether it has.
    fn try_reap(&mut self) -> bool {
        if self.status.is_none() {
            let mut status = 0;
            // SAFETY: our own child, not yet reaped.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.status = Some(status);
                self.exited_at = Some(Instant::now());
            } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
            {
                // Reaped elsewhere (SIGCHLD ignored): its status is lost.
                self.status = Some(0);
                self.exited_at = Some(Instant::now());
            }
        }
        self.status.is_some()
    }

    /// Whether the caller is done with the worker: it has exited and its
    /// pipes are closed, or it exited a while ago. (A process the worker
    /// left behind may hold its pipes open; once the worker itself is
    /// gone, the caller does not wait long for them.)
    fn done(&self) -> bool {
        let all_closed = self.open_pipes().next().is_none();
        let lingering = self
            .exited_at
            .is_some_and(|t| t.elapsed() > Duration::from_secs(1));
        self.status.is_some() && (all_closed || lingering)
    }

    /// Records the worker's end, and its task's end where the worker could
    /// not (it died, or was killed).
    fn ended(&self, env: &Env, task: &str, interrupted: bool) {
        if !events::enabled() {
            return;
        }
        let status = self.status.unwrap_or(0);
        let (code, signal) = if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (Some(libc::WEXITSTATUS(status)), None)
        };
        let host = Some(self.host.clone());
        events::emit_for(
            env,
            host.clone(),
            EventKind::WorkerExited {
                pid: self.pid,
                code,
                signal,
            },
        );
        if !self.task_ended {
            let outcome = if interrupted {
                Outcome::Interrupted
            } else {
                Outcome::Failed
            };
            let error = match signal {
                Some(sig) => format!("worker killed by signal {sig}"),
                None => "worker ended without reporting a result".to_string(),
            };
            events::emit_for(
                env,
                host,
                EventKind::TaskEnded {
                    task: task.to_string(),
                    outcome,
                    error: Some(error),
                },
            );
        }
    }

    /// The task's outcome: the report, or what the worker's end says.
    fn outcome<T: DeserializeOwned>(&self, host: &str) -> Result<T> {
        if !self.report.is_empty() {
            return wire::decode(&self.report, host);
        }
        let status = self.status.unwrap_or(0);
        let msg = if libc::WIFSIGNALED(status) {
            format!("worker killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!(
                "worker exited with code {} without reporting a result",
                libc::WEXITSTATUS(status)
            )
        };
        Err(Error::new(ErrorKind::TaskFailed, msg).with_host(host))
    }
}

/// The started workers. Dropped with workers still in it (an early error
/// return, a panic), it stops and reaps them.
struct Pool {
    workers: HashMap<libc::pid_t, Worker>,
    /// The process that started them.
    owner: u32,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A copy made by fork() never stops its parent's workers (a worker
        // leaves with _exit, so this is only a safeguard).
        if !self.workers.is_empty() && std::process::id() == self.owner {
            stop(&mut self.workers);
        }
    }
}

/// Stops `workers` (SIGTERM, then SIGKILL for those still running after
/// the grace period) and reaps every one.
fn stop(workers: &mut HashMap<libc::pid_t, Worker>) {
    for w in workers.values() {
        w.signal(libc::SIGTERM);
    }
    let since = Instant::now();
    loop {
        workers.retain(|_, w| !w.try_reap());
        if workers.is_empty() {
            return;
        }
        if since.elapsed() > GRACE {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for w in workers.values() {
        w.signal(libc::SIGKILL);
    }
    for w in workers.values() {
        let mut status = 0;
        // SAFETY: our own child, not yet reaped; waiting for it to die.
        while unsafe { libc::waitpid(w.pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
    workers.clear();
}

/// What could not be done to start a worker.
#[derive(Debug, Clone, Copy)]
enum Step {
    Pipe,
    Fork,
}

struct SpawnError {
    step: Step,
    err: std::io::Error,
}

impl SpawnError {
    /// Whether the process or the system ran out of descriptors or
    /// processes: finishing workers give them back.
    fn is_shortage(&self) -> bool {
        matches!(
            (self.step, self.err.raw_os_error()),
            (Step::Pipe, Some(libc::EMFILE | libc::ENFILE))
                | (Step::Fork, Some(libc::EAGAIN | libc::ENOMEM))
        )
    }

    fn into_error(self, host: &str, name: &str) -> Error {
        let what = match self.step {
            Step::Pipe => "cannot create a pipe",
            Step::Fork => "cannot fork",
        };
        Error::io(
            format_args!(
                "execute() cannot start a worker for {host} while executing task '{name}': {what}"
            ),
            self.err,
        )
        .with_host(host)
    }
}

/// Runs every job in a worker of its own, at most `pool_size` at a time,
/// and returns each job's outcome in job order; see the fork contract in
/// the module's documentation.
pub(super) fn run<T, F>(
    name: &str,
    jobs: Vec<(String, Settings)>,
    pool_size: usize,
    blocks: bool,
    task: &F,
) -> Result<Vec<(String, Result<T>)>>
where
    F: Fn() -> Result<T>,
    T: Serialize + DeserializeOwned,
{
    crate::sys::raise_descriptor_limit();
    let snapshot = env();
    let hosts: Vec<String> = jobs.iter().map(|(h, _)| h.clone()).collect();
    // The live view, when it shows, listens before the first fork, so that
    // the workers send their events.
    #[cfg(feature = "live")]
    let live = output::live::start(&snapshot, name, &hosts);
    // Whether workers' transfers show progress bars, drawn here: the
    // workers send their progress whether loggers listen or not.
    let progress = output::draws_progress(&snapshot);
    let mut results: Vec<Option<Result<T>>> = hosts.iter().map(|_| None).collect();
    let mut pending: VecDeque<(usize, Settings)> =
        jobs.into_iter().map(|(_, s)| s).enumerate().collect();
    let mut pool = Pool {
        workers: HashMap::new(),
        owner: std::process::id(),
    };
    // How many workers may run at once. When the process or the system runs
    // out of descriptors or processes, it shrinks to what fits.
    let mut room = pool_size;
    let mut killing_since: Option<Instant> = None;

    while !pending.is_empty() || !pool.workers.is_empty() {
        let interrupted = interrupt::interrupted();
        if interrupted {
            pending.clear();
            let since = *killing_since.get_or_insert_with(|| {
                for w in pool.workers.values() {
                    w.signal(libc::SIGTERM);
                }
                Instant::now()
            });
            if since.elapsed() > GRACE {
                for w in pool.workers.values() {
                    w.signal(libc::SIGKILL);
                }
            }
        }
        while pool.workers.len() < room {
            let Some((index, settings)) = pending.pop_front() else {
                break;
            };
            let host = &hosts[index];
            let job = Job {
                index,
                host,
                name,
                snapshot: &snapshot,
                settings: &settings,
                progress,
                #[cfg(feature = "live")]
                input: live.as_ref().and_then(|l| l.input_of(index)),
                #[cfg(not(feature = "live"))]
                input: None,
            };
            match spawn(&job, task, &mut pool.workers) {
                Ok(worker) => {
                    pool.workers.insert(worker.pid, worker);
                }
                Err(e) if e.is_shortage() && !pool.workers.is_empty() => {
                    // Try again once a worker has finished.
                    pending.push_front((index, settings));
                    room = pool.workers.len();
                    break;
                }
                Err(e) => return Err(e.into_error(host, name)),
            }
        }
        pump(&mut pool.workers, blocks);
        // Collect finished workers.
        let mut done = Vec::new();
        for (pid, w) in pool.workers.iter_mut() {
            w.try_reap();
            if w.done() {
                done.push(*pid);
            }
        }
        for pid in done {
            let mut w = pool.workers.remove(&pid).expect("a worker just found");
            w.out.pipe = None;
            w.err.pipe = None;
            w.report_pipe = None;
            w.out.finish();
            w.err.finish();
            let host = &hosts[w.index];
            w.ended(&snapshot, name, interrupted);
            let result = if interrupted && w.report.is_empty() {
                Err(interrupted_error(host))
            } else {
                w.outcome::<T>(host)
            };
            results[w.index] = Some(result);
        }
    }
    #[cfg(feature = "live")]
    if let Some(live) = live {
        live.finish();
    }
    if interrupt::interrupted() {
        return Err(Error::new(
            ErrorKind::Interrupted,
            format!("interrupted (Ctrl-C) while executing task '{name}'; every worker was stopped"),
        ));
    }
    Ok(hosts
        .into_iter()
        .zip(results)
        .map(|(h, r)| (h, r.expect("every job finished")))
        .collect())
}

/// Waits up to 50 ms for output from any worker and handles it.
fn pump(running: &mut HashMap<libc::pid_t, Worker>, blocks: bool) {
    let ready: Vec<(libc::pid_t, Source)> = {
        let mut owners = Vec::new();
        let mut fds = Vec::new();
        for (pid, w) in running.iter() {
            for (source, fd) in w.open_pipes() {
                owners.push((*pid, source));
                fds.push(fd);
            }
        }
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        let readable = poll(&fds, 50);
        owners
            .into_iter()
            .zip(readable)
            .filter_map(|(owner, ready)| ready.then_some(owner))
            .collect()
    };
    let mut buf = vec![0u8; 64 * 1024];
    for (pid, source) in ready {
        let w = running.get_mut(&pid).expect("a running worker");
        let Some(pipe) = w.pipe(source).as_mut() else {
            continue;
        };
        match pipe.read(&mut buf) {
            Ok(0) => *w.pipe(source) = None,
            Ok(n) => w.take(source, &buf[..n], blocks),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => *w.pipe(source) = None,
        }
    }
}

/// `poll(2)` for reading on `fds`, up to `timeout_ms`: for each, whether
/// it is ready (readable, at its end, or failed: a read says which).
fn poll(fds: &[BorrowedFd<'_>], timeout_ms: libc::c_int) -> Vec<bool> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    match crate::sys::poll(&mut polls, timeout_ms) {
        Ok(n) if n > 0 => polls.iter().map(|p| p.revents != 0).collect(),
        _ => vec![false; fds.len()],
    }
}

/// What a worker is started for.
struct Job<'a> {
    /// Its place in the job list.
    index: usize,
    host: &'a str,
    /// The task's name.
    name: &'a str,
    /// The caller's settings.
    snapshot: &'a Env,
    /// The job's own settings, on top of the caller's.
    settings: &'a Settings,
    /// The caller draws the progress of the worker's transfers.
    progress: bool,
    /// Standard input: a FIFO its pane writes keys into (`--panes`), else
    /// /dev/null.
    input: Option<std::path::PathBuf>,
}

/// A worker's ends of its three pipes.
struct WorkerEnds {
    out: PipeWriter,
    err: PipeWriter,
    report: PipeWriter,
}

/// Starts the worker for `job` (see the fork contract in the module's
/// documentation). `running` are the workers started before it; in the new
/// worker, their pipes are closed.
fn spawn<T, F>(
    job: &Job<'_>,
    task: &F,
    running: &mut HashMap<libc::pid_t, Worker>,
) -> std::result::Result<Worker, SpawnError>
where
    F: Fn() -> Result<T>,
    T: Serialize,
{
    let pipe = || {
        std::io::pipe().map_err(|err| SpawnError {
            step: Step::Pipe,
            err,
        })
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    // Nothing buffered may be written twice, by parent and child.
    // (Standard error has no buffer.)
    output::flush_before_fork();
    quiet_panics_in_workers();
    let parent = std::process::id();
    // SIGTERM stays blocked from before the fork until the worker's thread
    // waits for it, so that one sent early (the parent's death) is not
    // lost; the caller's mask comes back right after the fork.
    let mask = block_sigterm();
    // SAFETY: the caller may have other threads (the Ctrl-C handler's, the
    // program's own), which the child does not have. The child runs only
    // the worker, which keeps the fork contract of this module: each
    // process-global lock a thread of the caller may have held at this
    // instant is released or avoided there, and the child leaves with
    // `_exit`, never returning into the caller's frames. The worker dies
    // with this thread, which reaps it before leaving `run`.
    let pid = unsafe { libc::fork() };
    let fork_error = std::io::Error::last_os_error();
    if pid == 0 {
        die_with(parent);
        // The caller's ends of this worker's pipes, and of every other
        // worker's, closed in this process.
        drop((out_r, err_r, rep_r));
        running.clear();
        let ends = WorkerEnds {
            out: out_w,
            err: err_w,
            report: rep_w,
        };
        worker(ends, job, task);
    }
    // SAFETY: restoring the mask saved above, in this thread.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(SpawnError {
            step: Step::Fork,
            err: fork_error,
        });
    }
    // The worker puts itself in a group of its own too: whichever call
    // comes first, the group exists once fork() has returned here, and a
    // signal to it cannot miss the worker.
    // SAFETY: plain syscall on our own child.
    unsafe { libc::setpgid(pid, pid) };
    // The worker's ends are closed here: the readers see EOF once the
    // worker, and whatever it started, are done with them.
    drop((out_w, err_w, rep_w));
    events::emit_for(
        job.snapshot,
        Some(job.host.to_string()),
        EventKind::WorkerStarted {
            pid,
            task: job.name.to_string(),
        },
    );
    Ok(Worker {
        index: job.index,
        host: job.host.to_string(),
        task_ended: false,
        bar: output::WorkerBar::new(job.progress),
        pid,
        out: Stream::new(out_r, Pipe::Out),
        err: Stream::new(err_r, Pipe::Err),
        report_pipe: Some(rep_r),
        report: Vec::new(),
        status: None,
        exited_at: None,
    })
}

/// The set holding SIGTERM alone.
fn sigterm_set() -> libc::sigset_t {
    // SAFETY: filling a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGTERM in the calling thread; returns the mask before.
fn block_sigterm() -> libc::sigset_t {
    let set = sigterm_set();
    // SAFETY: signal-mask plumbing on local sets, in this thread.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// In a new worker: asks for SIGTERM when the thread that forked it ends
/// (`PR_SET_PDEATHSIG`), and leaves at once if `parent` is already gone,
/// since then no signal would come.
fn die_with(parent: u32) {
    // SAFETY: plain syscalls in the new process; leaving with `_exit`
    // runs nothing of the caller's.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if std::os::unix::process::parent_id() != parent {
            libc::_exit(1);
        }
    }
}

/// Makes the panic hook silent in a worker, once, in the caller before
/// its first fork. The default hook prints through std's stderr lock, and
/// setting a hook takes the hook's own lock, either of which another
/// thread of the caller may hold at the instant of a fork; a worker's
/// panic is reported as its host's failure instead. The caller's own
/// panics still reach the hook it had.
fn quiet_panics_in_workers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !interrupt::in_worker() {
                previous(info);
            }
        }));
    });
}

/// The worker process, once it dies with its parent: never returns.
fn worker<T, F>(ends: WorkerEnds, job: &Job<'_>, task: &F) -> !
where
    F: Fn() -> Result<T>,
    T: Serialize,
{
    // SAFETY: process plumbing in the new process, which has one thread:
    // ignore Ctrl-C, lead a process group.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::setpgid(0, 0);
    }
    // Nothing may unwind into the caller's frames, which this process has a
    // copy of: a panic here ends the worker.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let WorkerEnds { out, err, report } = ends;
        // A pane's FIFO, opened for reading and writing so that opening
        // never waits and its end never comes.
        let input = job.input.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .ok()
                .map(OwnedFd::from)
        });
        standard_descriptors(out.into(), err.into(), input);
        events::forward_after_fork(
            report
                .try_clone()
                .ok()
                .map(|w| Box::new(w) as Box<dyn Write + Send>),
            job.progress,
        );
        ssh::forget_all_after_fork();
        output::reset_after_fork();
        interrupt::reset_after_fork();
        state::reset_after_fork();
        worker_signals();
        let result = {
            let _base = job.snapshot.clone().install();
            let _scope = crate::state::settings(job.settings.clone());
            announce(&env(), job.host, job.name);
            super::task_started(&env(), Some(job.host), job.name);
            let result = run_caught(task);
            super::task_ended(&env(), Some(job.host), job.name, &result);
            result
        };
        let mut report = report;
        let _ = report.write_all(&wire::encode(&result));
    }));
    // SAFETY: leaving without running the caller's destructors or atexit
    // handlers.
    unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 101 }) }
}

/// In a worker: `out` and `err` become standard output and error, and
/// `input` (a pane's keys), else /dev/null (or nothing, if it cannot be
/// opened), standard input.
fn standard_descriptors(out: OwnedFd, err: OwnedFd, input: Option<OwnedFd>) {
    let null = input.or_else(|| File::open("/dev/null").ok().map(OwnedFd::from));
    // Each source moves above the standard descriptors first (where the
    // caller had one closed, a pipe may have got its number), so that
    // placing one cannot overwrite another.
    let above = |fd: OwnedFd| -> OwnedFd {
        if fd.as_raw_fd() > 2 {
            fd
        } else {
            fd.try_clone().unwrap_or(fd)
        }
    };
    let (out, err, null) = (above(out), above(err), null.map(above));
    // SAFETY: descriptor plumbing in this process, which has one thread:
    // the targets are the standard descriptors, which no owned value here
    // holds, and every source is open. Standard input is left closed only
    // when /dev/null cannot be opened.
    unsafe {
        for (fd, target) in [(Some(&out), 1), (Some(&err), 2), (null.as_ref(), 0)] {
            match fd {
                Some(fd) if fd.as_raw_fd() == target => {}
                Some(fd) => {
                    libc::dup2(fd.as_raw_fd(), target);
                }
                None => {
                    libc::close(target);
                }
            }
        }
    }
    // A source still standard after all (its copy failed) stays open.
    for fd in [Some(out), Some(err), null].into_iter().flatten() {
        if fd.as_raw_fd() <= 2 {
            let _ = fd.into_raw_fd();
        }
    }
}

/// In a worker: Ctrl-C is the caller's business (it stops workers with
/// SIGTERM). SIGTERM, from the caller or at its death, stops the running
/// local and remote commands, then the worker. SIGTERM is blocked since
/// before the fork; a thread waits for it.
fn worker_signals() {
    let waiter = std::thread::Builder::new().spawn(|| {
        let set = sigterm_set();
        let mut sig = 0;
        // SAFETY: waiting for the blocked signal in this thread only.
        unsafe { libc::sigwait(&set, &mut sig) };
        interrupt::stop_worker();
        std::thread::sleep(Duration::from_secs(2));
        // SAFETY: leaving at once; the caller is stopping this worker.
        unsafe { libc::_exit(130) };
    });
    if waiter.is_err() {
        // No thread to stop the commands: SIGTERM ends the worker at once
        // instead.
        let set = sigterm_set();
        // SAFETY: signal plumbing in a process with one thread.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

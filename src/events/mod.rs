//! The record of a run: one typed stream of [`Event`]s, and the
//! [`Logger`]s that receive it.
//!
//! Everything twill does for a run becomes an event as it happens: the run
//! starting (with its tasks, their arguments and the hosts), each task
//! planned on its hosts, started and ended on each host, every operation
//! (`local`, `run`, `sudo`, `put`, `get`) with the command as written and
//! the real command, its times, exit code, outcome, output sizes and last
//! lines, and for transfers the size and SHA-256 of every file moved; the
//! lines twill printed; parallel workers starting, exiting and being
//! killed; and the run ending with an outcome per host.
//!
//! Loggers are pluggable: any number at once, each a [`Logger`]. Built in
//! are the [`Journal`](journal::Journal) (one JSON Lines file per run in
//! the user's state directory, which `twill log` reads), [`JsonLines`] (the
//! same lines to any writer) and [`FabricLines`] (the printed lines again,
//! as Fabric printed them: a run replayed). The terminal itself keeps
//! printing exactly as before; what it printed reaches loggers as
//! [`EventKind::Output`] events.
//!
//! In a parallel run, each worker's events travel to the caller over the
//! pipe that carries its result, so the caller's loggers get every host's
//! events in that host's order.
//!
//! One kind of event is transient ([`EventKind::is_transient`]): the
//! [`EventKind::Progress`] of a long transfer, made only while a progress
//! bar shows it. Loggers that keep a record leave it out; a parallel
//! worker sends it to its caller, which draws one bar line per host, even
//! when no logger listens there.
//!
//! Secrets never reach a logger: every text in an event has the passwords
//! and passphrases of the settings, and every value set with
//! [`Settings::secret`](crate::Settings::secret), replaced by `********`
//! before the event is made.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use twill::events::{self, Event, EventKind};
//!
//! let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
//! let sink = seen.clone();
//! let id = events::add_logger(move |e: &Event| sink.lock().unwrap().push(e.clone()));
//! twill::with_settings(twill::Settings::new().hide("everything"), || twill::local("true"))?;
//! events::remove_logger(id);
//! let seen = seen.lock().unwrap();
//! assert!(seen.iter().any(|e| matches!(&e.kind,
//!     EventKind::OperationEnded(op) if op.command == "true" && op.exit_code == Some(0))));
//! # Ok::<(), twill::Error>(())
//! ```

pub mod journal;
mod loggers;
mod record;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use loggers::{FabricLines, JsonLines};
#[cfg(feature = "cli")]
pub(crate) use record::{current_run, run_started};
pub(crate) use record::{helper, OpRecord, Tally};
pub use record::{record_run, Recording};

use crate::state::Env;

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
    /// The host it happened on (a host string), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. In JSON, the `event` field names the variant in
/// snake case (`run_started`, `operation_ended`...) beside its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A run began.
    RunStarted(RunInfo),
    /// A task is about to run on these hosts (in this order).
    TaskPlanned {
        /// The task's name.
        task: String,
        /// Its hosts, or the values of `Execute::param`.
        hosts: Vec<String>,
    },
    /// A task started on the event's host (or locally, without one).
    TaskStarted {
        /// The task's name.
        task: String,
    },
    /// A task ended on the event's host.
    TaskEnded {
        /// The task's name.
        task: String,
        /// How it ended.
        outcome: Outcome,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An operation began.
    OperationStarted {
        /// Pairs it with its [`EventKind::OperationEnded`] (unique per
        /// process; a worker's ids are its own).
        id: u64,
        /// Which operation.
        op: OpKind,
        /// The command as written (for a transfer, `from -> to`).
        command: String,
    },
    /// An operation ended.
    OperationEnded(Operation),
    /// A line twill printed (a host's output among them), with its newline.
    Output {
        /// Where it went.
        stream: Stream,
        /// The text.
        text: String,
    },
    /// A parallel worker process started for the event's host.
    WorkerStarted {
        /// Its process id.
        pid: i32,
        /// The task it runs.
        task: String,
    },
    /// A parallel worker process ended.
    WorkerExited {
        /// Its process id.
        pid: i32,
        /// Its exit code, if it exited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// The signal that ended it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// twill sent a worker's process group a signal to stop it.
    WorkerKilled {
        /// Its process id.
        pid: i32,
        /// The signal (15 for SIGTERM, 9 for SIGKILL).
        signal: i32,
    },
    /// How far one file of a transfer has come. Made only while a
    /// progress bar shows it (see [`is_transient`](EventKind::is_transient)
    /// and the `progress_delay` setting): at most five times a second, and
    /// once more, with `done`, when the file has moved or the transfer
    /// ended otherwise. A parallel worker sends these to the caller, which
    /// draws the bar.
    Progress {
        /// `put` or `get`.
        op: OpKind,
        /// The remote path.
        path: String,
        /// The bytes moved so far.
        bytes: u64,
        /// The file's size, when known (a regular file's, before it moves).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// When the file started moving, in milliseconds since the Unix
        /// epoch (with the event's `time`, the rate).
        started: u64,
        /// The last event of this file.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        done: bool,
    },
    /// The run ended.
    RunEnded {
        /// The run's outcome: the worst of its hosts'.
        outcome: Outcome,
        /// Each host's outcome, in the order the hosts were first planned.
        hosts: Vec<HostSummary>,
    },
}

impl EventKind {
    /// Whether the event is a passing state, not history:
    /// [`EventKind::Progress`]. A logger that keeps a record (the
    /// [`Journal`](journal::Journal), [`JsonLines`]) leaves these out;
    /// one that draws can use them.
    pub fn is_transient(&self) -> bool {
        matches!(self, EventKind::Progress { .. })
    }
}

/// How a run started.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id, which names its journal file.
    pub id: String,
    /// The program that ran it (a fabfile binary's name, `twill`), or the
    /// name a library gave it.
    pub program: String,
    /// The command line, secrets left out; empty for a library run.
    #[serde(default)]
    pub argv: Vec<String>,
    /// The tasks asked for, with their arguments.
    #[serde(default)]
    pub tasks: Vec<TaskCall>,
    /// The hosts given for the whole run (`-H`, `-R`'s hosts), if any.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// twill's version.
    pub version: String,
    /// The local user.
    pub user: String,
    /// The run this one retries, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// Whether it was a dry run.
    #[serde(default)]
    pub dry_run: bool,
}

/// A task as the command line asked for it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskCall {
    /// The task's name.
    pub name: String,
    /// Its arguments as written (`name:a,b=c` gives `a` and `b=c`).
    #[serde(default)]
    pub args: Vec<String>,
}

/// One finished operation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Operation {
    /// Its id, as in its [`EventKind::OperationStarted`].
    pub id: u64,
    /// Which operation.
    pub op: OpKind,
    /// The command as written (for a transfer, `from -> to`).
    pub command: String,
    /// The command as sent: `cd`, prefixes, the shell wrapper, sudo.
    #[serde(default)]
    pub real: String,
    /// What it was done for, if not for the task itself: a contrib helper
    /// (`exists`, `append`, `upload_template`, `rsync_project`...), or a
    /// transfer (`put`, `get`: a sudo transfer's own moves and copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// Start and end, in milliseconds since the Unix epoch.
    pub started: u64,
    /// See `started`.
    pub ended: u64,
    /// The exit code, when the command ran to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes of standard output and error.
    #[serde(default)]
    pub stdout_bytes: u64,
    /// See `stdout_bytes`.
    #[serde(default)]
    pub stderr_bytes: u64,
    /// The last lines of standard output and error (at most 10 each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdout_tail: Vec<String>,
    /// See `stdout_tail`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
    /// The files a transfer moved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMoved>,
    /// Why it failed, in the error's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether it only pretended to run (a dry run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// A file a transfer moved.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileMoved {
    /// The local path.
    pub local: String,
    /// The remote path.
    pub remote: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of what was moved, in hex.
    pub sha256: String,
}

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// `local`.
    #[default]
    Local,
    /// `run`.
    Run,
    /// `sudo`.
    Sudo,
    /// `put`/`upload`.
    Put,
    /// `get`/`download`.
    Get,
}

impl OpKind {
    /// Fabric's word for it.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Local => "local",
            OpKind::Run => "run",
            OpKind::Sudo => "sudo",
            OpKind::Put => "put",
            OpKind::Get => "get",
        }
    }
}

/// How something ended. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked.
    #[default]
    Ok,
    /// It failed, and `warn_only` let the run go on.
    Warned,
    /// It was planned and never started (a serial run stopped first).
    NotDone,
    /// Ctrl-C (or SIGTERM) stopped it.
    Interrupted,
    /// It failed.
    Failed,
}

impl Outcome {
    /// The word `twill log` shows.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warned => "warned",
            Outcome::NotDone => "not done",
            Outcome::Interrupted => "interrupted",
            Outcome::Failed => "failed",
        }
    }

    /// Whether a retry runs it again: failed, interrupted or never done.
    pub fn needs_retry(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Interrupted | Outcome::NotDone
        )
    }
}

/// Standard output or standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

/// One host's outcome in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// The host string (or `Execute::param`'s value).
    pub host: String,
    /// The worst of its tasks' outcomes.
    pub outcome: Outcome,
    /// The first error it met, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Receives every event of the runs it is added for.
///
/// A logger is called with the events one at a time, from whichever thread
/// makes them, under a lock; it must not call twill's operations. A
/// closure `FnMut(&Event) + Send` is a logger.
pub trait Logger: Send {
    /// Takes one event.
    fn log(&mut self, event: &Event);
}

impl<F: FnMut(&Event) + Send> Logger for F {
    fn log(&mut self, event: &Event) {
        self(event)
    }
}

/// Names an added logger, for [`remove_logger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggerId(u64);

struct Registry {
    next: u64,
    loggers: Vec<(u64, Box<dyn Logger>)>,
    /// The outcomes of the run being recorded, kept as events pass.
    summary: Option<Summary>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    loggers: Vec::new(),
    summary: None,
});
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Adds a logger: from now on it gets every event, until
/// [`remove_logger`].
pub fn add_logger(logger: impl Logger + 'static) -> LoggerId {
    let mut r = REGISTRY.lock();
    r.next += 1;
    let id = r.next;
    r.loggers.push((id, Box::new(logger)));
    ENABLED.store(true, Ordering::SeqCst);
    LoggerId(id)
}

/// Removes a logger and returns it (`None` if it was already removed).
pub fn remove_logger(id: LoggerId) -> Option<Box<dyn Logger>> {
    let mut r = REGISTRY.lock();
    let at = r.loggers.iter().position(|(i, _)| *i == id.0)?;
    let (_, logger) = r.loggers.remove(at);
    ENABLED.store(!r.loggers.is_empty(), Ordering::SeqCst);
    Some(logger)
}

/// Whether anything listens; nothing is made into an event otherwise.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Hands a finished event to every logger.
pub(crate) fn dispatch(event: &Event) {
    let mut r = REGISTRY.lock();
    if let Some(s) = r.summary.as_mut() {
        s.feed(event);
    }
    for (_, logger) in r.loggers.iter_mut() {
        logger.log(event);
    }
}

/// Makes an event of `kind` about the current host (from `env`), with the
/// settings' secrets taken out of its texts, and hands it on. Nothing
/// happens when no logger listens.
pub(crate) fn emit(env: &Env, kind: EventKind) {
    if enabled() {
        emit_for(env, env.host_string(), kind);
    }
}

/// [`emit`] about `host`.
pub(crate) fn emit_for(env: &Env, host: Option<String>, kind: EventKind) {
    if enabled() {
        dispatch(&made(env, host, kind));
    }
}

/// An event of `kind` about `host`, now, with the settings' secrets taken
/// out of its texts.
fn made(env: &Env, mut host: Option<String>, mut kind: EventKind) -> Event {
    let secrets = env.secrets();
    if !secrets.is_empty() {
        for text in texts(&mut kind).into_iter().chain(host.as_mut()) {
            redact(text, &secrets);
        }
    }
    Event {
        time: now(),
        host,
        kind,
    }
}

/// A line twill printed, as an event.
pub(crate) fn printed(env: &Env, stream: Stream, text: &str) {
    emit(
        env,
        EventKind::Output {
            stream,
            text: text.to_string(),
        },
    );
}

/// Every text of an event that could hold a secret.
fn texts(kind: &mut EventKind) -> Vec<&mut String> {
    match kind {
        EventKind::RunStarted(info) => {
            let mut v: Vec<&mut String> = info.argv.iter_mut().collect();
            for call in info.tasks.iter_mut() {
                v.extend(call.args.iter_mut());
            }
            v
        }
        EventKind::TaskEnded { error, .. } => error.iter_mut().collect(),
        EventKind::OperationStarted { command, .. } => vec![command],
        EventKind::OperationEnded(op) => {
            let mut v = vec![&mut op.command, &mut op.real];
            v.extend(op.stdout_tail.iter_mut());
            v.extend(op.stderr_tail.iter_mut());
            v.extend(op.error.iter_mut());
            v
        }
        EventKind::Output { text, .. } => vec![text],
        EventKind::Progress { path, .. } => vec![path],
        EventKind::RunEnded { hosts, .. } => {
            hosts.iter_mut().filter_map(|h| h.error.as_mut()).collect()
        }
        _ => Vec::new(),
    }
}

/// The mark a secret leaves.
pub(crate) const REDACTED: &str = "********";

/// Replaces every occurrence of each secret in `text`.
fn redact(text: &mut String, secrets: &[String]) {
    for s in secrets {
        if !s.is_empty() && text.contains(s.as_str()) {
            *text = text.replace(s.as_str(), REDACTED);
        }
    }
}

/// A task on a host: (task, host), the outcome so far (`None`: started,
/// not ended), the first error.
type TaskSlot = ((String, String), Option<Outcome>, Option<String>);

/// The outcome of each host, from a run's events: each task planned on a
/// host counts, so a host where one task succeeded and the next was never
/// reached is not done. A task started and never ended (a run that
/// crashed) counts as interrupted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Hosts in the order first planned or met, and where each is in it.
    order: Vec<String>,
    position: HashMap<String, usize>,
    /// Per task and host: the outcome so far (`None`: started, not ended)
    /// and the first error; and where each (task, host) is in it.
    tasks: Vec<TaskSlot>,
    index: HashMap<(String, String), usize>,
    /// The worst outcome of the tasks that ran without a host.
    local: Outcome,
}

impl Summary {
    fn slot(&mut self, task: &str, host: &str) -> usize {
        if !self.position.contains_key(host) {
            self.position.insert(host.to_string(), self.order.len());
            self.order.push(host.to_string());
        }
        let key = (task.to_string(), host.to_string());
        if let Some(at) = self.index.get(&key) {
            return *at;
        }
        self.tasks.push((key.clone(), Some(Outcome::NotDone), None));
        self.index.insert(key, self.tasks.len() - 1);
        self.tasks.len() - 1
    }

    /// Takes one event into account.
    pub(crate) fn feed(&mut self, event: &Event) {
        match (&event.kind, &event.host) {
            (EventKind::TaskPlanned { task, hosts }, _) => {
                for h in hosts {
                    self.slot(task, h);
                }
            }
            (EventKind::TaskStarted { task }, Some(h)) => {
                let at = self.slot(task, h);
                self.tasks[at].1 = None;
            }
            (
                EventKind::TaskEnded {
                    task,
                    outcome,
                    error,
                },
                Some(h),
            ) => {
                let at = self.slot(task, h);
                let slot = &mut self.tasks[at];
                slot.1 = Some(*outcome);
                if slot.2.is_none() {
                    slot.2.clone_from(error);
                }
            }
            (EventKind::TaskEnded { outcome, .. }, None) => {
                self.local = self.local.max(*outcome);
            }
            _ => {}
        }
    }

    /// Each host's outcome (the worst of its tasks'), in the order first
    /// met.
    pub(crate) fn hosts(&self) -> Vec<HostSummary> {
        let mut hosts: Vec<HostSummary> = self
            .order
            .iter()
            .map(|host| HostSummary {
                host: host.clone(),
                outcome: Outcome::Ok,
                error: None,
            })
            .collect();
        for ((_, host), outcome, error) in &self.tasks {
            let h = &mut hosts[self.position[host]];
            h.outcome = h.outcome.max(outcome.unwrap_or(Outcome::Interrupted));
            if h.error.is_none() {
                h.error.clone_from(error);
            }
        }
        hosts
    }

    /// The worst outcome of any host, or of a task without one.
    pub(crate) fn outcome(&self) -> Outcome {
        self.hosts()
            .iter()
            .map(|h| h.outcome)
            .max()
            .unwrap_or(Outcome::Ok)
            .max(self.local)
    }
}

/// Starts keeping the outcome of each host for a run's end.
fn start_summary() {
    REGISTRY.lock().summary = Some(Summary::default());
}

/// The outcomes kept since [`start_summary`], which stops keeping them.
fn take_summary() -> Summary {
    REGISTRY.lock().summary.take().unwrap_or_default()
}

static NEXT_OP: AtomicU64 = AtomicU64::new(1);

/// A new operation id.
fn next_op() -> u64 {
    NEXT_OP.fetch_add(1, Ordering::Relaxed)
}

/// In a worker: the pipe to the caller, which its events take as lines
/// `E<json>`.
static TO_CALLER: Mutex<Option<Box<dyn Write + Send>>> = Mutex::new(None);
/// In a worker: the caller draws the progress of transfers, so transient
/// events go to it even when no logger listens there.
static CALLER_DRAWS: AtomicBool = AtomicBool::new(false);

/// In a forked worker: the caller's loggers stay with the caller; if any
/// listened, this process's events go to `report` instead, each as a line
/// `E<json>`, before the line with the task's result. With `progress`
/// (the caller draws progress bars), transient events go there too,
/// whether loggers listen or not ([`transient`]).
pub(crate) fn forward_after_fork(report: Option<Box<dyn Write + Send>>, progress: bool) {
    // Another thread of the caller may have held a lock at the fork, and
    // would never release it here.
    if REGISTRY.is_locked() {
        // SAFETY: the process has a single thread, so no guard is alive.
        unsafe { REGISTRY.force_unlock() };
    }
    if TO_CALLER.is_locked() {
        // SAFETY: as above.
        unsafe { TO_CALLER.force_unlock() };
    }
    let mut r = REGISTRY.lock();
    r.summary = None;
    // The loggers are the caller's: never run or drop them here (a file
    // would be flushed twice, a thread it waits on does not exist).
    for (_, logger) in r.loggers.drain(..) {
        std::mem::forget(logger);
    }
    // The caller's own pipe, if this worker's caller was a worker too.
    std::mem::forget(TO_CALLER.lock().take());
    let listened = ENABLED.load(Ordering::SeqCst);
    let report = report.filter(|_| listened || progress);
    CALLER_DRAWS.store(progress && report.is_some(), Ordering::SeqCst);
    let forwarding = listened && report.is_some();
    *TO_CALLER.lock() = report;
    if forwarding {
        r.loggers.push((0, Box::new(|e: &Event| to_caller(e))));
    } else {
        ENABLED.store(false, Ordering::SeqCst);
    }
}

/// In a worker: sends `event` to the caller.
fn to_caller(event: &Event) {
    let mut line = b"E".to_vec();
    if serde_json::to_writer(&mut line, event).is_ok() {
        line.push(b'\n');
        if let Some(pipe) = TO_CALLER.lock().as_mut() {
            let _ = pipe.write_all(&line);
        }
    }
}

/// Whether this is a worker whose caller draws the progress of its
/// transfers.
pub(crate) fn caller_draws() -> bool {
    CALLER_DRAWS.load(Ordering::Relaxed)
}

/// A transient event ([`EventKind::is_transient`]): in a worker whose
/// caller draws progress, sent to the caller; otherwise handed to the
/// loggers, like any other.
pub(crate) fn transient(env: &Env, kind: EventKind) {
    if CALLER_DRAWS.load(Ordering::Relaxed) {
        to_caller(&made(env, env.host_string(), kind));
    } else {
        emit(env, kind);
    }
}

/// The caller's side of [`forward_after_fork`]: an event line from a
/// worker, handed to the loggers here. A line that is not one is ignored.
pub(crate) fn from_worker(line: &[u8]) -> Option<Event> {
    let event: Event = serde_json::from_slice(line.strip_prefix(b"E")?).ok()?;
    dispatch(&event);
    Some(event)
}

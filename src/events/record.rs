//! Making events: an operation's record from its start to its result, and
//! a run's record from its start (with its journal) to its end.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::journal::Journal;
use super::{
    add_logger, emit, emit_for, next_op, now, remove_logger, start_summary, take_summary,
    EventKind, FileMoved, LoggerId, OpKind, Operation, Outcome, RunInfo,
};
use crate::error::{Error, ErrorKind, Result};
use crate::result::Output;
use crate::state::{env, Env};

/// The last lines kept of an operation's output.
const TAIL_LINES: usize = 10;
/// The longest line kept, in bytes.
const TAIL_WIDTH: usize = 400;

/// An operation between its start and its end. Made only when a logger
/// listens.
pub(crate) struct OpRecord {
    env: Env,
    host: Option<String>,
    op: Operation,
}

impl OpRecord {
    /// An operation starts on `host` (`None`: locally).
    pub(crate) fn start(
        env: &Env,
        op: OpKind,
        host: Option<&str>,
        command: &str,
        real: &str,
    ) -> Option<OpRecord> {
        if !super::enabled() {
            return None;
        }
        let id = next_op();
        if matches!(op, OpKind::Put | OpKind::Get) {
            MOVED.with(|m| m.borrow_mut().clear());
        }
        emit_for(
            env,
            host.map(str::to_string),
            EventKind::OperationStarted {
                id,
                op,
                command: command.to_string(),
            },
        );
        Some(OpRecord {
            env: env.clone(),
            host: host.map(str::to_string),
            op: Operation {
                id,
                op,
                command: command.to_string(),
                real: real.to_string(),
                started: now(),
                helper: HELPER.with(|h| h.get()).map(str::to_string),
                dry_run: env.dry_run(),
                ..Operation::default()
            },
        })
    }

    /// Runs the command `f` as one recorded operation.
    pub(crate) fn wrap(
        env: &Env,
        op: OpKind,
        host: Option<&str>,
        command: &str,
        real: &str,
        f: impl FnOnce() -> Result<Output>,
    ) -> Result<Output> {
        let record = OpRecord::start(env, op, host, command, real);
        let result = f();
        if let Some(record) = record {
            record.end(&result);
        }
        result
    }

    /// The command ended with `result`.
    pub(crate) fn end(mut self, result: &Result<Output>) {
        let out = match result {
            Ok(out) => {
                self.op.outcome = if out.failed() {
                    Outcome::Warned
                } else {
                    Outcome::Ok
                };
                Some(out)
            }
            Err(e) => {
                self.failed(e);
                e.output()
            }
        };
        if let Some(out) = out {
            self.op.exit_code = Some(out.return_code());
            self.op.stdout_bytes = out.stdout().len() as u64;
            self.op.stderr_bytes = out.stderr().len() as u64;
            self.op.stdout_tail = tail(out.stdout());
            self.op.stderr_tail = tail(out.stderr());
        }
        self.finish();
    }

    /// The transfer ended with `result`.
    pub(crate) fn end_transfer<T>(mut self, result: &Result<T>) {
        self.op.files = MOVED.with(|m| std::mem::take(&mut *m.borrow_mut()));
        if let Err(e) = result {
            self.failed(e);
        }
        self.finish();
    }

    fn failed(&mut self, e: &Error) {
        self.op.outcome = if e.kind() == ErrorKind::Interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Failed
        };
        self.op.error = Some(e.message().to_string());
    }

    fn finish(mut self) {
        self.op.ended = now();
        emit_for(&self.env, self.host, EventKind::OperationEnded(self.op));
    }
}

/// The last lines of some output, each cut to a readable width.
fn tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| {
            let mut end = l.len().min(TAIL_WIDTH);
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            l[..end].to_string()
        })
        .collect()
}

/// A run being recorded: made by [`record_run`] (or by the command line
/// for each run of its tasks). Ending it, with [`end`](Recording::end) or
/// by dropping it, records the run's end with each host's outcome and
/// closes its journal.
#[derive(Debug)]
pub struct Recording {
    id: String,
    journal: Option<(LoggerId, PathBuf)>,
    ended: bool,
}

impl Recording {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its journal file, if it writes one.
    pub fn journal(&self) -> Option<&Path> {
        self.journal.as_ref().map(|(_, p)| p.as_path())
    }

    /// Records the run's end; returns its outcome, the worst of its
    /// hosts'.
    pub fn end(mut self) -> Outcome {
        self.finish(None)
    }

    /// Records the run's end, its outcome no better than `at_least` (the
    /// command line's: interrupted, or failed before any task).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn end_as(mut self, at_least: Outcome) -> Outcome {
        self.finish(Some(at_least))
    }

    fn finish(&mut self, at_least: Option<Outcome>) -> Outcome {
        self.ended = true;
        CURRENT_RUN.lock().take();
        let summary = take_summary();
        let outcome = summary.outcome().max(at_least.unwrap_or(Outcome::Ok));
        let hosts = summary.hosts();
        emit(&env(), EventKind::RunEnded { outcome, hosts });
        if let Some((id, _)) = self.journal.take() {
            remove_logger(id);
        }
        outcome
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.ended {
            self.finish(std::thread::panicking().then_some(Outcome::Failed));
        }
    }
}

/// Records a run from here on: writes its journal (unless the `journal`
/// setting is off) into the `journal_dir` setting's directory (by default
/// `$XDG_STATE_HOME/twill/runs`), where `twill log` finds it, and hands its
/// events to every logger added. `name` says what ran, as a program's name
/// does for a run from the command line.
///
/// ```no_run
/// let run = twill::events::record_run("nightly-backup")?;
/// twill::Execute::new("backup").hosts(["db1"]).run(|| twill::run("backup-now").map(|_| ()))?;
/// println!("journal: {:?}", run.journal());
/// run.end();
/// # Ok::<(), twill::Error>(())
/// ```
pub fn record_run(name: &str) -> Result<Recording> {
    let env = env();
    run_started(
        &env,
        RunInfo {
            program: name.to_string(),
            ..RunInfo::default()
        },
    )
}

/// The id of the run being recorded, if any.
static CURRENT_RUN: parking_lot::Mutex<Option<String>> = parking_lot::Mutex::new(None);

/// The id of the run being recorded in this process, if one is.
#[cfg_attr(not(feature = "live"), allow(dead_code))]
pub(crate) fn current_run() -> Option<String> {
    CURRENT_RUN.lock().clone()
}

/// A run starts: its id is made, its journal opened (if the settings say
/// so) and its first event recorded.
pub(crate) fn run_started(env: &Env, mut info: RunInfo) -> Result<Recording> {
    info.id = new_id();
    info.version = env!("CARGO_PKG_VERSION").to_string();
    info.user = crate::sys::local_user();
    info.dry_run = env.dry_run();
    let journal = if env.journal() {
        let dir = super::journal::directory(env)?;
        let journal = Journal::create(&dir, &info.id)?;
        let path = journal.path().to_path_buf();
        super::journal::prune(&dir, env.journal_keep(), env.journal_max_age(), &path);
        Some((add_logger(journal), path))
    } else {
        None
    };
    start_summary();
    let id = info.id.clone();
    *CURRENT_RUN.lock() = Some(id.clone());
    emit(env, EventKind::RunStarted(info));
    Ok(Recording {
        id,
        journal,
        ended: false,
    })
}

/// A new run id: the UTC time to the millisecond and the process id, so
/// that ids sort as the runs started. Two runs of one process never share
/// a millisecond.
fn new_id() -> String {
    static LAST: parking_lot::Mutex<u64> = parking_lot::Mutex::new(0);
    let ms = {
        let mut last = LAST.lock();
        *last = now().max(*last + 1);
        *last
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let stamp = humantime::format_rfc3339_millis(t).to_string();
    // 2026-12-02T13:53:34.123Z -> 20261202T135334.123Z
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
}

thread_local! {
    /// The helper of Fabric's contrib running on this thread, if any.
    static HELPER: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
    /// The files the transfer being recorded on this thread has moved.
    static MOVED: std::cell::RefCell<Vec<FileMoved>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// While alive, the operations of this thread are recorded as done by the
/// contrib helper `name` (the outermost, where one helper uses another).
pub(crate) struct Helper(bool);

pub(crate) fn helper(name: &'static str) -> Helper {
    HELPER.with(|h| {
        let outermost = h.get().is_none();
        if outermost {
            h.set(Some(name));
        }
        Helper(outermost)
    })
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.0 {
            HELPER.with(|h| h.set(None));
        }
    }
}

/// What passes through a reader or writer, counted and hashed for the
/// record of a transfer (only while a logger listens).
pub(crate) struct Tally<T> {
    inner: T,
    sha: Option<Sha256>,
    bytes: u64,
}

impl<T> Tally<T> {
    pub(crate) fn new(inner: T) -> Tally<T> {
        Tally {
            inner,
            sha: super::enabled().then(Sha256::new),
            bytes: 0,
        }
    }

    fn take(&mut self, data: &[u8]) {
        if let Some(sha) = self.sha.as_mut() {
            sha.update(data);
            self.bytes += data.len() as u64;
        }
    }

    /// Records what passed as the file moved between `local` and `remote`;
    /// gives the reader or writer back.
    pub(crate) fn moved(self, local: &Path, remote: &Path) -> T {
        if let Some(sha) = self.sha {
            let digest = sha.finalize();
            let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
            MOVED.with(|m| {
                m.borrow_mut().push(FileMoved {
                    local: local.to_string_lossy().into_owned(),
                    remote: remote.to_string_lossy().into_owned(),
                    bytes: self.bytes,
                    sha256: hex,
                })
            });
        }
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.take(&buf[..n]);
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.take(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

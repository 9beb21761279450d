//! The journal: one JSON Lines file per run, an [`Event`] per line,
//! written as the run goes (a run that crashes keeps what happened up to
//! there), in the user's state directory; and reading runs back.
//!
//! The directory is the `journal_dir` setting, else
//! `$XDG_STATE_HOME/twill/runs`, else `~/.local/state/twill/runs`; it is
//! made readable by its owner only, as are the files. A file is named
//! after its run's id, which starts with the UTC time the run started, so
//! names sort as runs started. Old runs are removed as a new one starts:
//! beyond the `journal_keep` newest, and those older than
//! `journal_max_age`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Event, EventKind, HostSummary, JsonLines, Logger, Outcome, RunInfo, Summary};
use crate::error::{Error, ErrorKind, Result};
use crate::state::Env;

/// The journal of one run, as a [`Logger`]: each event becomes one line
/// of its file, written at once; transient events
/// ([`EventKind::is_transient`]) are left out.
#[derive(Debug)]
pub struct Journal {
    lines: JsonLines<File>,
    path: PathBuf,
}

impl Journal {
    /// A new journal `<id>.jsonl` in `dir` (made if missing).
    pub fn create(dir: &Path, id: &str) -> Result<Journal> {
        // The directory itself is its owner's alone; directories made
        // above it get the usual mode.
        let made = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => fs::create_dir_all(parent),
            _ => Ok(()),
        }
        .and_then(|()| match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            other => other,
        });
        made.map_err(|e| {
            Error::io(
                format_args!("cannot make the journal directory {}", dir.display()),
                e,
            )
        })?;
        let path = dir.join(format!("{id}.jsonl"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                Error::io(
                    format_args!("cannot create the journal {}", path.display()),
                    e,
                )
            })?;
        Ok(Journal {
            lines: JsonLines::new(file),
            path,
        })
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Logger for Journal {
    /// The line is written at once (a journal that cannot be written, on
    /// a full disk, does not stop the run it records).
    fn log(&mut self, event: &Event) {
        self.lines.log(event);
    }
}

/// The journal directory the settings name.
pub fn directory(env: &Env) -> Result<PathBuf> {
    if let Some(dir) = env.journal_dir().filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let state = crate::sys::state_dir().ok_or_else(|| {
        Error::new(
            ErrorKind::Settings,
            "no journal directory: set journal_dir, XDG_STATE_HOME or HOME",
        )
    })?;
    Ok(state.join("twill").join("runs"))
}

/// Removes old runs from `dir`: all but the `keep` newest, and those whose
/// files were last written before `max_age` ago (zero: none), never
/// `current`.
pub(crate) fn prune(dir: &Path, keep: usize, max_age: std::time::Duration, current: &Path) {
    let Ok(files) = runs(dir) else { return };
    let now = std::time::SystemTime::now();
    let excess = files.len().saturating_sub(keep.max(1));
    for (i, path) in files.iter().enumerate() {
        if path == current {
            continue;
        }
        let old = !max_age.is_zero()
            && fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age);
        if i < excess || old {
            let _ = fs::remove_file(path);
        }
    }
}

/// The journal files in `dir`, oldest run first.
pub fn runs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::io(
                format_args!("cannot read the journal directory {}", dir.display()),
                e,
            ))
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// Finds a run in `dir`: `last` (the newest), `last~N` (the N-th before
/// it), a run id, the start of exactly one run id, or a journal file's
/// path.
pub fn find(dir: &Path, reference: &str) -> Result<PathBuf> {
    let not_found = |why: String| Error::new(ErrorKind::Usage, why);
    let as_path = Path::new(reference);
    if reference.ends_with(".jsonl") && as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let files = runs(dir)?;
    if let Some(back) = reference.strip_prefix("last") {
        let back = match back.strip_prefix('~') {
            None if back.is_empty() => 0,
            Some(n) => n.parse::<usize>().map_err(|_| {
                not_found(format!(
                    "'{reference}' is not a run: write last, last~N or a run id"
                ))
            })?,
            None => {
                return Err(not_found(format!(
                    "'{reference}' is not a run: write last, last~N or a run id"
                )))
            }
        };
        return files
            .len()
            .checked_sub(back + 1)
            .map(|i| files[i].clone())
            .ok_or_else(|| {
                not_found(format!(
                    "no run '{reference}': the journal in {} holds {} run(s)",
                    dir.display(),
                    files.len()
                ))
            });
    }
    let matching: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with(reference))
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(not_found(format!(
            "no run '{reference}' in the journal in {}",
            dir.display()
        ))),
        _ => Err(not_found(format!(
            "'{reference}' names {} runs; give more of the id",
            matching.len()
        ))),
    }
}

/// A run read back from its journal.
#[derive(Debug, Clone)]
pub struct Run {
    /// The journal file.
    pub path: PathBuf,
    /// Its events, in order. A last line cut short (a run that crashed
    /// while writing it) is left out.
    pub events: Vec<Event>,
}

impl Run {
    /// Reads a journal file.
    pub fn load(path: &Path) -> Result<Run> {
        let text = fs::read(path).map_err(|e| {
            Error::io(
                format_args!("cannot read the journal {}", path.display()),
                e,
            )
        })?;
        let mut events = Vec::new();
        let mut lines = text.split(|b| *b == b'\n').enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => events.push(e),
                // The last line, with no newline after it, may be cut
                // short by a crash.
                Err(_) if lines.peek().is_none() => {}
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "the journal {} is damaged at line {}: {e}",
                            path.display(),
                            n + 1
                        ),
                    ))
                }
            }
        }
        Ok(Run {
            path: path.to_path_buf(),
            events,
        })
    }

    /// How the run started, if its first event says.
    pub fn info(&self) -> Option<&RunInfo> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::RunStarted(info) => Some(info),
            _ => None,
        })
    }

    /// The run's id (from its file name when the journal lacks it).
    pub fn id(&self) -> String {
        self.info().map(|i| i.id.clone()).unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// Each host's outcome: as the run's end recorded it, or, for a run
    /// that never ended (it crashed or was killed), from its events.
    pub fn hosts(&self) -> Vec<HostSummary> {
        if let Some(hosts) = self.events.iter().rev().find_map(|e| match &e.kind {
            EventKind::RunEnded { hosts, .. } => Some(hosts),
            _ => None,
        }) {
            return hosts.clone();
        }
        let mut s = Summary::default();
        for e in &self.events {
            s.feed(e);
        }
        s.hosts()
    }

    /// The run's outcome; a run whose end is missing counts as interrupted.
    pub fn outcome(&self) -> Outcome {
        self.events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::RunEnded { outcome, .. } => Some(*outcome),
                _ => None,
            })
            .unwrap_or(Outcome::Interrupted)
    }

    /// When it started and ended (ms since the epoch).
    pub fn times(&self) -> (u64, u64) {
        let first = self.events.first().map_or(0, |e| e.time);
        let last = self.events.last().map_or(first, |e| e.time);
        (first, last)
    }
}

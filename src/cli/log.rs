//! `--log` (and `twill log`): the runs in the journal, one run replayed,
//! two runs compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use super::args::usage;
use crate::error::Result;
use crate::events::journal::{self, Run};
use crate::events::{Event, EventKind, FabricLines, Logger, Operation, Outcome};
use crate::output::{self, Pipe};

/// The journal's commands.
#[derive(Debug, Parser)]
#[command(
    about = "The runs in the journal: list them, replay one, compare two",
    disable_version_flag = true,
    after_help = "A run is named by its id, the start of its id, `last` (the newest run) or `last~N` (the N-th run before it)."
)]
struct LogOptions {
    /// The journal directory (default: the journal_dir setting's).
    #[arg(long = "journal-dir", value_name = "DIR", global = true)]
    journal_dir: Option<PathBuf>,
    /// With no command: list at most N runs, newest first.
    #[arg(short = 'n', value_name = "N", default_value_t = 20)]
    count: usize,
    #[command(subcommand)]
    command: Option<LogCommand>,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Replay a run's output as it was printed.
    Show {
        /// The run (default: last).
        #[arg(default_value = "last")]
        run: String,
        /// Its events as JSON lines instead.
        #[arg(long = "json")]
        json: bool,
        /// Only what happened on this host.
        #[arg(long = "host", value_name = "HOST")]
        host: Option<String>,
        /// Only what failed: the failed operations and tasks, and the
        /// hosts that did not end well.
        #[arg(long = "failed")]
        failed: bool,
    },
    /// Compare two runs host by host: outcomes that changed, and commands
    /// whose real command or exit code differ.
    Diff {
        /// The earlier run.
        a: String,
        /// The later run (default: last).
        #[arg(default_value = "last")]
        b: String,
    },
}

/// Runs `--log WORDS` for `program`; `dir` is the settings' journal
/// directory. Returns the exit code.
pub(super) fn main(program: &str, words: &[String], dir: Result<PathBuf>) -> Result<u8> {
    let argv = std::iter::once(format!("{program} --log")).chain(words.iter().cloned());
    let options = match LogOptions::try_parse_from(argv) {
        Ok(o) => o,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                output::emit(output::Pipe::Out, &e.to_string());
                return Ok(0);
            }
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return Err(usage(first.to_string()));
        }
    };
    let dir = match options.journal_dir {
        Some(d) => d,
        None => dir?,
    };
    let mut out = String::new();
    match options.command {
        None => list(&dir, options.count, &mut out)?,
        Some(LogCommand::Show {
            run,
            json,
            host,
            failed,
        }) => {
            let run = Run::load(&journal::find(&dir, &run)?)?;
            show(&run, json, host.as_deref(), failed, &mut out);
        }
        Some(LogCommand::Diff { a, b }) => {
            let a = Run::load(&journal::find(&dir, &a)?)?;
            let b = Run::load(&journal::find(&dir, &b)?)?;
            diff(&a, &b, &mut out);
        }
    }
    output::emit_raw(output::Pipe::Out, out.as_bytes());
    Ok(0)
}

/// A time as UTC, to the second.
fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What a run ran: its program and tasks.
fn what(run: &Run) -> String {
    match run.info() {
        Some(info) => {
            let tasks: Vec<String> = info
                .tasks
                .iter()
                .map(|t| {
                    if t.args.is_empty() {
                        t.name.clone()
                    } else {
                        format!("{}:{}", t.name, t.args.join(","))
                    }
                })
                .collect();
            let mut text = format!("{} {}", info.program, tasks.join(" "));
            if info.dry_run {
                text.push_str(" (dry run)");
            }
            if let Some(of) = &info.retry_of {
                text.push_str(&format!(" (retry of {of})"));
            }
            text.trim_end().to_string()
        }
        None => "?".to_string(),
    }
}

/// The list: newest first.
fn list(dir: &Path, count: usize, out: &mut String) -> Result<()> {
    let files = journal::runs(dir)?;
    if files.is_empty() {
        out.push_str(&format!("No runs in the journal in {}.\n", dir.display()));
        return Ok(());
    }
    out.push_str(&format!(
        "{:<32} {:<20} {:>9} {:<11} {:>5} {:>6}  {}\n",
        "RUN", "STARTED (UTC)", "DURATION", "OUTCOME", "OK", "FAILED", "TASKS"
    ));
    for path in files.iter().rev().take(count) {
        let run = match Run::load(path) {
            Ok(r) => r,
            Err(e) => {
                out.push_str(&format!("{}: {}\n", path.display(), e.message()));
                continue;
            }
        };
        let (start, end) = run.times();
        let hosts = run.hosts();
        let ok = hosts.iter().filter(|h| !h.outcome.needs_retry()).count();
        out.push_str(&format!(
            "{:<32} {:<20} {:>8.1}s {:<11} {:>5} {:>6}  {}\n",
            run.id(),
            when(start),
            end.saturating_sub(start) as f64 / 1000.0,
            run.outcome().name(),
            ok,
            hosts.len() - ok,
            what(&run)
        ));
    }
    Ok(())
}

/// Whether an event is about `host`.
fn on_host(e: &Event, host: Option<&str>) -> bool {
    host.is_none_or(|h| e.host.as_deref() == Some(h))
}

/// Whether an event tells of a failure.
fn is_failure(e: &Event) -> bool {
    match &e.kind {
        EventKind::OperationEnded(op) => op.outcome.needs_retry(),
        EventKind::TaskEnded { outcome, .. } => outcome.needs_retry(),
        EventKind::RunEnded { outcome, .. } => outcome.needs_retry(),
        _ => false,
    }
}

/// One run: its output replayed (or its events as JSON), or what failed.
fn show(run: &Run, json: bool, host: Option<&str>, failed: bool, out: &mut String) {
    let events = run.events.iter().filter(|e| {
        on_host(e, host) || (host.is_some() && matches!(e.kind, EventKind::RunEnded { .. }))
    });
    if json {
        for e in events.filter(|e| !failed || is_failure(e)) {
            if let Ok(line) = serde_json::to_string(e) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        return;
    }
    if !failed {
        // The lines go where they went: standard output's to standard
        // output, standard error's to standard error, in order.
        let mut replay = FabricLines::new(output::Raw(Pipe::Out), output::Raw(Pipe::Err));
        for e in events {
            replay.log(e);
        }
        return;
    }
    for e in events.filter(|e| is_failure(e)) {
        let at = e.host.as_deref().unwrap_or("localhost");
        match &e.kind {
            EventKind::OperationEnded(op) => failed_operation(at, op, out),
            EventKind::TaskEnded {
                task,
                outcome,
                error,
            } => {
                out.push_str(&format!("[{at}] task '{task}': {}\n", outcome.name()));
                if let Some(error) = error {
                    for line in error.lines() {
                        out.push_str(&format!("    {line}\n"));
                    }
                }
            }
            _ => {}
        }
    }
    let hosts: Vec<_> = run
        .hosts()
        .into_iter()
        .filter(|h| h.outcome.needs_retry() && host.is_none_or(|x| x == h.host))
        .collect();
    if hosts.is_empty() {
        out.push_str("No host failed.\n");
    } else {
        let names: Vec<String> = hosts
            .iter()
            .map(|h| format!("{} ({})", h.host, h.outcome.name()))
            .collect();
        out.push_str(&format!("Hosts to retry: {}\n", names.join(", ")));
    }
}

fn failed_operation(at: &str, op: &Operation, out: &mut String) {
    let of = op
        .helper
        .as_ref()
        .map_or(String::new(), |h| format!(" (for {h})"));
    out.push_str(&format!(
        "[{at}] {}{of}: {} ({}",
        op.op.name(),
        op.command,
        op.outcome.name()
    ));
    if let Some(code) = op.exit_code {
        out.push_str(&format!(", exit code {code}"));
    }
    out.push_str(")\n");
    if !op.real.is_empty() && op.real != op.command {
        out.push_str(&format!("    real command: {}\n", op.real));
    }
    if let Some(error) = &op.error {
        for line in error.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    for line in op.stdout_tail.iter().chain(&op.stderr_tail) {
        out.push_str(&format!("      {line}\n"));
    }
}

/// The operations of a run, by host (`localhost` for local ones).
fn operations(run: &Run) -> BTreeMap<String, Vec<&Operation>> {
    let mut by_host: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for e in &run.events {
        if let EventKind::OperationEnded(op) = &e.kind {
            by_host
                .entry(e.host.clone().unwrap_or_else(|| "localhost".into()))
                .or_default()
                .push(op);
        }
    }
    by_host
}

/// Two runs compared, host by host.
fn diff(a: &Run, b: &Run, out: &mut String) {
    out.push_str(&format!(
        "--- {} {}\n+++ {} {}\n",
        a.id(),
        what(a),
        b.id(),
        what(b)
    ));
    let outcomes = |r: &Run| -> BTreeMap<String, Outcome> {
        r.hosts().into_iter().map(|h| (h.host, h.outcome)).collect()
    };
    let (oa, ob) = (outcomes(a), outcomes(b));
    let (ops_a, ops_b) = (operations(a), operations(b));
    let mut hosts: Vec<&String> = oa
        .keys()
        .chain(ob.keys())
        .chain(ops_a.keys())
        .chain(ops_b.keys())
        .collect();
    hosts.sort();
    hosts.dedup();
    let mut same = 0;
    for host in hosts {
        let mut lines = Vec::new();
        match (oa.get(host), ob.get(host)) {
            (Some(x), Some(y)) if x != y => {
                lines.push(format!("  outcome: {} -> {}", x.name(), y.name()))
            }
            (Some(x), None) => lines.push(format!("  only in {}: {}", a.id(), x.name())),
            (None, Some(y)) => lines.push(format!("  only in {}: {}", b.id(), y.name())),
            _ => {}
        }
        let empty = Vec::new();
        let xs = ops_a.get(host).unwrap_or(&empty);
        let ys = ops_b.get(host).unwrap_or(&empty);
        lines.extend(operation_changes(xs, ys));
        if lines.is_empty() {
            same += 1;
        } else {
            out.push_str(&format!("{host}\n"));
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    out.push_str(&format!("{same} host(s) without a difference.\n"));
}

/// What changed between two runs' operations on one host. The operations
/// are matched by what they ran (the operation and the command as
/// written), in order, as a text diff matches lines: one command added or
/// dropped shows as that one line, not as every line after it. A matched
/// pair shows when its real command or its exit code differs.
fn operation_changes(xs: &[&Operation], ys: &[&Operation]) -> Vec<String> {
    let key = |o: &&Operation| (o.op.name(), o.command.clone());
    let (ka, kb): (Vec<_>, Vec<_>) = (xs.iter().map(key).collect(), ys.iter().map(key).collect());
    let mut lines = Vec::new();
    let gone = |x: &Operation| format!("  - {}: {}", x.op.name(), shown(x));
    let added = |y: &Operation| format!("  + {}: {}", y.op.name(), shown(y));
    for change in similar::capture_diff_slices(similar::Algorithm::Myers, &ka, &kb) {
        let (old, new) = (change.old_range(), change.new_range());
        match change.tag() {
            similar::DiffTag::Equal => {
                for (x, y) in xs[old].iter().zip(&ys[new]) {
                    if x.real != y.real {
                        lines.push(gone(x));
                        lines.push(added(y));
                    } else if x.exit_code != y.exit_code || x.outcome != y.outcome {
                        lines.push(format!(
                            "  {}: {}: exit code {} -> {}",
                            x.op.name(),
                            x.command,
                            code(x),
                            code(y)
                        ));
                    }
                }
            }
            _ => {
                lines.extend(xs[old].iter().map(|x| gone(x)));
                lines.extend(ys[new].iter().map(|y| added(y)));
            }
        }
    }
    lines
}

/// An operation as a diff shows it: the real command, and how it ended.
fn shown(op: &Operation) -> String {
    let real = if op.real.is_empty() {
        &op.command
    } else {
        &op.real
    };
    format!("{real} (exit code {})", code(op))
}

fn code(op: &Operation) -> String {
    op.exit_code
        .map_or_else(|| op.outcome.name().to_string(), |c| c.to_string())
}

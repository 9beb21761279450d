//! The record of a run, in this process: loggers, the events of an
//! operation and of `execute`, secrets kept out, the journal's files and
//! the `only_hosts` rule that `--retry-failed` uses, and the transient
//! progress events the record keepers leave out.
//!
//! Loggers are process-wide and the tests of this binary run in threads
//! at once, so each test picks its own events out by a name only it uses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use twill::events::journal::{self, Journal, Run};
use twill::events::{self, Event, EventKind, JsonLines, Logger, OpKind, Outcome, Stream};
use twill::{env, local, with_settings, Execute, Settings};

// `local` without capturing leaves its output to the terminal: only a
// captured command's output is in its record.

/// The events seen while `f` runs.
fn recorded<R>(f: impl FnOnce() -> R) -> (R, Vec<Event>) {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = seen.clone();
    let id = events::add_logger(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    let r = f();
    events::remove_logger(id);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (r, seen)
}

fn json(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_operation_is_recorded_with_its_real_command_exit_code_and_output() {
    let (out, seen) = recorded(|| {
        with_settings(Settings::new().hide("everything"), || {
            twill::local_capture("echo ev-op-marker one; echo two; exit 4")
        })
    });
    let out = out.unwrap_err();
    assert_eq!(out.output().unwrap().return_code(), 4);
    let mine: Vec<&Event> = seen
        .iter()
        .filter(|e| json(std::slice::from_ref(e)).contains("ev-op-marker"))
        .collect();
    let [started, ended] = mine.as_slice() else {
        panic!("{mine:?}");
    };
    let EventKind::OperationStarted { id, op, command } = &started.kind else {
        panic!("{started:?}")
    };
    assert_eq!(op.name(), "local");
    assert_eq!(command, "echo ev-op-marker one; echo two; exit 4");
    let EventKind::OperationEnded(done) = &ended.kind else {
        panic!("{ended:?}")
    };
    assert_eq!(done.id, *id);
    assert_eq!(done.exit_code, Some(4));
    assert_eq!(done.outcome, Outcome::Failed);
    // Locally, the real command is the command itself (no cd, prefix or
    // sudo here); `sh -c` runs it.
    assert_eq!(done.real, "echo ev-op-marker one; echo two; exit 4");
    assert_eq!(done.stdout_tail, ["ev-op-marker one", "two"]);
    // As the result holds it: without the last newline, as in Fabric.
    assert_eq!(done.stdout_bytes, 20);
    assert!(done.started <= done.ended);
    assert!(done.error.as_deref().unwrap().contains("return code 4"));
    assert_eq!(started.host, None);
}

#[test]
fn a_warning_is_recorded_as_warned_and_printed_lines_as_output() {
    let (_, seen) = recorded(|| {
        with_settings(Settings::new().warn_only(true), || {
            local("echo ev-warn-marker; false").unwrap()
        })
    });
    let warned = seen.iter().find_map(|e| match &e.kind {
        EventKind::OperationEnded(op) if op.command.contains("ev-warn-marker") => Some(op),
        _ => None,
    });
    assert_eq!(warned.unwrap().outcome, Outcome::Warned);
    let printed: Vec<&str> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .filter(|t| t.contains("ev-warn-marker"))
        .collect();
    assert_eq!(
        printed,
        [
            "[localhost] local: echo ev-warn-marker; false\n",
            "\nWarning: local() encountered an error (return code 1) while executing 'echo ev-warn-marker; false'\n\n"
        ]
    );
}

#[test]
fn secrets_are_taken_out_before_any_logger_sees_an_event() {
    let settings = Settings::new()
        .password("ev-login-pw-917")
        .sudo_password("ev-sudo-pw-917")
        .passwords([("web1".to_string(), "ev-host-pw-917".to_string())])
        .secret("api_token", "ev-token-917");
    let (_, seen) = recorded(|| {
        with_settings(settings, || {
            assert_eq!(env().secret("api_token").as_deref(), Some("ev-token-917"));
            local(
                "echo ev-secret-marker ev-login-pw-917 ev-sudo-pw-917 ev-host-pw-917 ev-token-917",
            )
            .unwrap()
        })
    });
    let mine: Vec<Event> = seen
        .into_iter()
        .filter(|e| json(std::slice::from_ref(e)).contains("ev-secret-marker"))
        .collect();
    assert!(mine.len() >= 3, "{mine:?}");
    let text = json(&mine);
    for secret in [
        "ev-login-pw-917",
        "ev-sudo-pw-917",
        "ev-host-pw-917",
        "ev-token-917",
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(
        text.contains("ev-secret-marker ******** ******** ******** ********"),
        "{text}"
    );
}

#[test]
fn execute_records_each_hosts_task_and_only_hosts_narrows_the_plan() {
    let task = || Ok(env().host_string().unwrap_or_default());
    let (results, seen) = recorded(|| {
        with_settings(Settings::new().only_hosts(["ev-b", "ev-c"]), || {
            let narrowed = Execute::new("ev-narrowed")
                .hosts(["ev-a", "ev-b", "ev-c"])
                .run_serial(task)
                .unwrap();
            let skipped = Execute::new("ev-skipped")
                .hosts(["ev-a"])
                .run_serial(task)
                .unwrap();
            // A task without hosts still runs, once (it may run others).
            let local = Execute::new("ev-local").run_serial(task).unwrap();
            let names = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<String>>();
            (
                names(&narrowed.hosts()),
                skipped.hosts().len(),
                names(&local.hosts()),
            )
        })
    });
    let (narrowed, skipped, local) = results;
    assert_eq!(narrowed, ["ev-b", "ev-c"]);
    assert_eq!(skipped, 0);
    assert_eq!(local, ["<local-only>"]);
    let planned: Vec<&Vec<String>> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskPlanned { task, hosts } if task.starts_with("ev-") => Some(hosts),
            _ => None,
        })
        .collect();
    assert_eq!(planned, [&vec!["ev-b".to_string(), "ev-c".to_string()]]);
    let ended: Vec<(Option<&str>, &str, Outcome)> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskEnded { task, outcome, .. } if task.starts_with("ev-") => {
                Some((e.host.as_deref(), task.as_str(), *outcome))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        [
            (Some("ev-b"), "ev-narrowed", Outcome::Ok),
            (Some("ev-c"), "ev-narrowed", Outcome::Ok),
            (None, "ev-local", Outcome::Ok),
        ]
    );
}

#[test]
fn a_recorded_run_writes_a_journal_that_reads_back_and_old_runs_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new()
        .journal_dir(dir.path().to_str().unwrap())
        .journal_keep(2);
    let ids: Vec<String> = with_settings(settings, || {
        (0..3)
            .map(|i| {
                let run = events::record_run("ev-nightly").unwrap();
                let results = Execute::new("ev-journal-task")
                    .param("stage", ["ev-one", "ev-two"])
                    .run_serial(|| {
                        if env().get_str("stage").as_deref() == Some("ev-two") && i == 2 {
                            Err(twill::Error::new(twill::ErrorKind::TaskFailed, "ev failed"))
                        } else {
                            Ok(())
                        }
                    });
                let _ = results;
                let id = run.id().to_string();
                assert!(run.journal().unwrap().starts_with(dir.path()));
                assert_eq!(
                    run.end(),
                    if i == 2 { Outcome::Failed } else { Outcome::Ok }
                );
                id
            })
            .collect()
    });
    let files = journal::runs(dir.path()).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let last = Run::load(&journal::find(dir.path(), "last").unwrap()).unwrap();
    assert_eq!(last.id(), ids[2]);
    let info = last.info().unwrap();
    assert_eq!(info.program, "ev-nightly");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    let hosts: Vec<(String, Outcome)> = last
        .hosts()
        .into_iter()
        .filter(|h| h.host.starts_with("ev-"))
        .map(|h| (h.host, h.outcome))
        .collect();
    assert_eq!(
        hosts,
        [
            ("ev-one".to_string(), Outcome::Ok),
            ("ev-two".to_string(), Outcome::Failed)
        ]
    );
    assert_eq!(last.outcome(), Outcome::Failed);
    assert_eq!(journal::find(dir.path(), "last~1").unwrap(), files[0]);
    let err = journal::find(dir.path(), "last~2").unwrap_err();
    assert!(
        err.message().contains("holds 2 run(s)"),
        "{}",
        err.message()
    );
    // The oldest run was pruned.
    assert!(journal::find(dir.path(), &ids[0]).is_err());
    let mode = std::fs::metadata(&files[1]).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn a_journal_cut_short_reads_up_to_its_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20260101T000000.000Z-1.jsonl");
    let mut lines = JsonLines::new(Vec::new());
    let (_, seen) = recorded(|| {
        with_settings(Settings::new().hide("everything"), || {
            local("echo ev-cut-marker").unwrap()
        })
    });
    for e in seen
        .iter()
        .filter(|e| json(std::slice::from_ref(e)).contains("ev-cut-marker"))
    {
        lines.log(e);
    }
    let mut bytes = lines.into_inner();
    let whole = bytes.len();
    bytes.extend_from_slice(b"{\"time\":1,\"event\":\"outp");
    std::fs::write(&path, &bytes).unwrap();
    let run = Run::load(&path).unwrap();
    assert_eq!(run.events.len(), 2);
    // Without its end, the run counts as interrupted.
    assert_eq!(run.outcome(), Outcome::Interrupted);
    // A damaged line before the last is an error that names the file.
    let mut damaged = b"not json\n".to_vec();
    damaged.extend_from_slice(&bytes[..whole]);
    std::fs::write(&path, &damaged).unwrap();
    let err = Run::load(&path).unwrap_err();
    assert!(
        err.message().contains("damaged at line 1"),
        "{}",
        err.message()
    );
    assert_eq!(journal::find(dir.path(), "20260101").unwrap(), path);
}

fn progress(done: bool) -> Event {
    Event {
        time: 1_700_000_000_500,
        host: Some("web1".into()),
        kind: EventKind::Progress {
            op: OpKind::Put,
            path: "/srv/app.tar.gz".into(),
            bytes: 1 << 20,
            total: Some(4 << 20),
            started: 1_700_000_000_000,
            done,
        },
    }
}

fn printed() -> Event {
    Event {
        time: 1_700_000_000_600,
        host: Some("web1".into()),
        kind: EventKind::Output {
            stream: Stream::Out,
            text: "[web1] put: app.tar.gz -> /srv/app.tar.gz\n".into(),
        },
    }
}

#[test]
fn progress_is_transient_and_the_record_keepers_leave_it_out() {
    assert!(progress(false).kind.is_transient());
    assert!(!printed().kind.is_transient());

    let mut lines = JsonLines::new(Vec::new());
    for e in [progress(false), printed(), progress(true)] {
        lines.log(&e);
    }
    let kept = String::from_utf8(lines.into_inner()).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(kept.contains(r#""event":"output""#), "{kept}");

    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "run-1").unwrap();
    for e in [progress(false), printed(), progress(true)] {
        journal.log(&e);
    }
    let path = journal.path().to_path_buf();
    drop(journal);
    let kept = std::fs::read_to_string(path).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(!kept.contains("progress"), "{kept}");
}

#[test]
fn a_progress_event_in_json() {
    let json = serde_json::to_string(&progress(false)).unwrap();
    assert_eq!(
        json,
        r#"{"time":1700000000500,"host":"web1","event":"progress","op":"put","path":"/srv/app.tar.gz","bytes":1048576,"total":4194304,"started":1700000000000}"#
    );
    let back: Event = serde_json::from_str(&json).unwrap();
    assert_eq!(back, progress(false));
    let done = serde_json::to_string(&progress(true)).unwrap();
    assert!(done.ends_with(r#","done":true}"#), "{done}");
}

#[test]
fn progress_delay_is_a_setting_in_seconds() {
    assert_eq!(env().progress_delay(), Duration::from_millis(500));
    let s = Settings::new().set_str("progress_delay", "0.2").unwrap();
    with_settings(s, || {
        assert_eq!(env().progress_delay(), Duration::from_millis(200))
    });
    assert!(Settings::new().set_str("progress_delay", "soon").is_err());
}

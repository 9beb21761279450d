//! The journal of runs through the `twill` binary against the throwaway
//! server: what it records of a failing and an interrupted host, `log
//! show` replaying a run line for line, `log diff` naming the host that
//! changed, `--retry-failed` running only the hosts that need it, and no
//! secret in any journal.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twill::events::journal::{self, Run};
use twill::events::{EventKind, Outcome};

use crate::cli::twill_cmd;
use crate::support::{port, text, var};

fn addr(n: usize) -> String {
    format!("twill@127.0.0.{n}:{}", port())
}

/// A journal directory, and a directory the remote user can read whose
/// files `fail-<ip>` and `hang-<ip>` make the test command fail or hang on
/// the host at that address.
struct Setup {
    state: tempfile::TempDir,
    control: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let control = tempfile::tempdir().unwrap();
        std::fs::set_permissions(control.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Setup {
            state: tempfile::tempdir().unwrap(),
            control,
        }
    }

    fn runs_dir(&self) -> PathBuf {
        self.state.path().join("twill/runs")
    }

    /// `twill` writing its journal here.
    fn twill(&self) -> Command {
        let mut c = twill_cmd();
        c.env("XDG_STATE_HOME", self.state.path());
        c
    }

    /// The test command: fails on hosts marked `fail`, hangs on those
    /// marked `hang`, else says it is fine.
    fn command(&self) -> String {
        let dir = self.control.path().display();
        format!(
            "ip=$(echo $SSH_CONNECTION | cut -d' ' -f3); if [ -e {dir}/fail-$ip ]; then echo failing on $ip; exit 3; fi; if [ -e {dir}/hang-$ip ]; then echo hanging on $ip; sleep 60; fi; echo fine on $ip"
        )
    }

    fn mark(&self, what: &str, n: usize) -> PathBuf {
        let p = self.control.path().join(format!("{what}-127.0.0.{n}"));
        std::fs::write(&p, "").unwrap();
        p
    }

    fn runs(&self) -> Vec<Run> {
        journal::runs(&self.runs_dir())
            .unwrap()
            .iter()
            .map(|p| Run::load(p).unwrap())
            .collect()
    }

    /// `twill log WORDS`.
    fn log(&self, words: &[&str]) -> (String, String) {
        let out = self.twill().arg("--log").args(words).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    }
}

fn outcome_of(run: &Run, host: &str) -> Outcome {
    run.hosts()
        .into_iter()
        .find(|h| h.host == host)
        .unwrap_or_else(|| panic!("{host} not in {:?}", run.hosts()))
        .outcome
}

fn lines_of<'a>(text: &'a str, host: &str) -> Vec<&'a str> {
    let tag = format!("[{host}] ");
    text.lines().filter(|l| l.starts_with(&tag)).collect()
}

#[test]
fn a_parallel_run_with_a_failing_and_an_interrupted_host_is_on_record() {
    let s = Setup::new();
    s.mark("fail", 2);
    s.mark("hang", 3);
    let hosts = format!("{},{},{}", addr(1), addr(2), addr(3));
    let mut child = s
        .twill()
        .args(["-P", "-H", &hosts, "--", &s.command()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        all
    });
    // Wait until the hanging host hangs and the others are done, as the
    // journal tells it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = s.runs();
        let ready = runs.first().is_some_and(|run| {
            let ended = run
                .events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::TaskEnded { .. }))
                .count();
            let hanging = run.events.iter().any(|e| {
                matches!(&e.kind, EventKind::Output { text, .. } if text.contains("hanging on"))
            });
            ended == 2 && hanging
        });
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the run never got there");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let live = text(&reader.join().unwrap());
    assert_eq!(status.code(), Some(130), "{live}");

    let runs = s.runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let info = run.info().expect("the run's start");
    assert_eq!(info.program, "twill");
    assert_eq!(outcome_of(run, &addr(1)), Outcome::Ok);
    assert_eq!(outcome_of(run, &addr(2)), Outcome::Failed);
    assert_eq!(outcome_of(run, &addr(3)), Outcome::Interrupted);
    assert_eq!(run.outcome(), Outcome::Failed);
    // The failing command as sent, with its exit code and last line.
    let failed = run
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::OperationEnded(op) if e.host.as_deref() == Some(addr(2).as_str()) => {
                Some(op.clone())
            }
            _ => None,
        })
        .expect("the failing host's command");
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(failed.outcome, Outcome::Failed);
    assert_eq!(failed.command, s.command());
    assert!(
        failed.real.starts_with("/bin/bash -l -c \""),
        "{}",
        failed.real
    );
    assert_eq!(failed.stdout_tail, ["failing on 127.0.0.2"]);
    // The workers: three started, the hanging one stopped by a signal.
    let count = |f: &dyn Fn(&EventKind) -> bool| run.events.iter().filter(|e| f(&e.kind)).count();
    assert_eq!(count(&|k| matches!(k, EventKind::WorkerStarted { .. })), 3);
    assert!(run.events.iter().any(|e| {
        matches!(e.kind, EventKind::WorkerKilled { .. })
            && e.host.as_deref() == Some(addr(3).as_str())
    }));
    // Each host's lines replayed as they were printed, in its order.
    let (shown, _) = s.log(&["show", "last"]);
    for n in 1..=3 {
        assert_eq!(
            lines_of(&shown, &addr(n)),
            lines_of(&live, &addr(n)),
            "{shown}"
        );
    }
    assert!(lines_of(&shown, &addr(3))
        .iter()
        .any(|l| l.ends_with("out: hanging on 127.0.0.3")));
    // What failed, and the hosts to retry.
    let (failed, _) = s.log(&["show", "last", "--failed"]);
    assert!(failed.contains(&format!("[{}] run: ", addr(2))), "{failed}");
    assert!(failed.contains("exit code 3"), "{failed}");
    assert!(
        failed.contains(&format!(
            "Hosts to retry: {} (failed), {} (interrupted)",
            addr(2),
            addr(3)
        )),
        "{failed}"
    );
    // The list names the run and its counts.
    let (list, _) = s.log(&[]);
    assert!(list.contains(&run.id()), "{list}");
    assert!(
        list.contains(" interrupted ") || list.contains(" failed "),
        "{list}"
    );
}

#[test]
fn log_show_replays_a_serial_run_line_for_line_on_both_streams() {
    let s = Setup::new();
    let live = s
        .twill()
        .args([
            "-H",
            &format!("{},{}", addr(1), addr(2)),
            "--no-pty",
            "--set",
            "combine_stderr=false",
            "--",
            "echo to out; echo to err >&2",
        ])
        .output()
        .unwrap();
    assert!(live.status.success(), "{}", text(&live.stderr));
    let shown = s.twill().args(["--log", "show", "last"]).output().unwrap();
    assert!(shown.status.success());
    assert_eq!(text(&shown.stdout), text(&live.stdout));
    assert_eq!(text(&shown.stderr), text(&live.stderr));
    assert!(
        text(&live.stderr).contains("err: to err"),
        "{}",
        text(&live.stderr)
    );
    // One host's share only.
    let (one, _) = s.log(&["show", "last", "--host", &addr(2)]);
    assert!(!one.contains(&addr(1)), "{one}");
    assert_eq!(
        lines_of(&one, &addr(2)),
        lines_of(&text(&live.stdout), &addr(2))
    );
}

#[test]
fn log_diff_names_the_host_whose_outcome_changed() {
    let s = Setup::new();
    let hosts = format!("{},{}", addr(1), addr(2));
    let fail = s.mark("fail", 2);
    let first = s
        .twill()
        .args(["-w", "-H", &hosts, "--", &s.command()])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first.stderr));
    std::fs::remove_file(fail).unwrap();
    let second = s
        .twill()
        .args(["-w", "-H", &hosts, "--", &s.command()])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    let runs = s.runs();
    assert_eq!(runs.len(), 2);
    // With warn_only the failing command only warned: the host's task
    // still ended well, and its command's exit code changed.
    let (diff, _) = s.log(&["diff", "last~1", "last"]);
    assert!(diff.contains(&format!("--- {}", runs[0].id())), "{diff}");
    assert!(diff.contains(&format!("+++ {}", runs[1].id())), "{diff}");
    assert!(
        diff.contains(&format!(
            "{}\n  run: {}: exit code 3 -> 0\n",
            addr(2),
            s.command()
        )),
        "{diff}"
    );
    assert!(!diff.contains(&format!("{}\n", addr(1))), "{diff}");
    assert!(diff.contains("1 host(s) without a difference."), "{diff}");
}

#[test]
fn retry_failed_runs_the_failed_and_unreached_hosts_only() {
    let s = Setup::new();
    let fail = s.mark("fail", 2);
    let hosts = format!("{},{},{}", addr(1), addr(2), addr(3));
    let first = s
        .twill()
        .args(["-H", &hosts, "--", &s.command()])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let run = &s.runs()[0];
    assert_eq!(outcome_of(run, &addr(1)), Outcome::Ok);
    assert_eq!(outcome_of(run, &addr(2)), Outcome::Failed);
    // A serial run stops at the first failure: the third host was never
    // reached.
    assert_eq!(outcome_of(run, &addr(3)), Outcome::NotDone);

    std::fs::remove_file(fail).unwrap();
    let retry = s.twill().arg("--retry-failed").output().unwrap();
    let out = text(&retry.stdout);
    assert!(retry.status.success(), "{out}{}", text(&retry.stderr));
    assert!(
        out.starts_with(&format!(
            "Retrying run {} on its failed hosts: {}, {}\n",
            run.id(),
            addr(2),
            addr(3)
        )),
        "{out}"
    );
    assert!(lines_of(&out, &addr(1)).is_empty(), "{out}");
    assert!(
        out.contains(&format!("[{}] out: fine on 127.0.0.2", addr(2))),
        "{out}"
    );
    assert!(
        out.contains(&format!("[{}] out: fine on 127.0.0.3", addr(3))),
        "{out}"
    );
    let runs = s.runs();
    let again = &runs[1];
    assert_eq!(
        again.info().unwrap().retry_of.as_deref(),
        Some(run.id().as_str())
    );
    assert_eq!(again.outcome(), Outcome::Ok);
    let hosts: Vec<String> = again.hosts().into_iter().map(|h| h.host).collect();
    assert_eq!(hosts, [addr(2), addr(3)]);

    // Nothing is left to retry.
    let none = s.twill().arg("--retry-failed").output().unwrap();
    assert!(none.status.success());
    assert_eq!(
        text(&none.stdout),
        format!(
            "Nothing to retry: every host of run {} ended well.\n",
            again.id()
        )
    );
    assert_eq!(s.runs().len(), 2);
}

/// Every journal under `dir`, as text.
fn journals_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|x| x == "jsonl") {
            found.push((entry.clone(), std::fs::read_to_string(&entry).unwrap()));
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn no_password_reaches_a_journal_even_where_the_command_prints_it() {
    let s = Setup::new();
    let password = var("TWILL_TEST_SUDO_PASSWORD");
    let host = format!("{}@127.0.0.1:{}", var("TWILL_TEST_SUDOPW_USER"), port());
    let out = s
        .twill()
        .env("TWILL_PASSWORD", &password)
        .args([
            "-H",
            &host,
            "--sudo",
            "--",
            &format!("echo the password is {password}; id -un"),
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The terminal shows what the command printed...
    assert!(
        stdout.contains(&format!("out: the password is {password}")),
        "{stdout}"
    );
    assert!(stdout.contains("out: root"), "{stdout}");
    // ...the journal never holds it.
    let journals = journals_under(s.state.path());
    assert_eq!(journals.len(), 1);
    let (path, text) = &journals[0];
    assert!(
        !text.contains(&password),
        "{} holds the password",
        path.display()
    );
    assert!(text.contains("the password is ********"), "{text}");
    // And the replay shows the redacted line.
    let (shown, _) = s.log(&["show", "last"]);
    assert!(shown.contains("out: the password is ********"), "{shown}");
}

#[test]
fn the_journal_can_be_turned_off_or_moved() {
    let s = Setup::new();
    let out = s
        .twill()
        .args(["--no-journal", "-H", &addr(1), "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(s.runs().is_empty());
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("shared/runs");
    let out = s
        .twill()
        .args([
            "--journal-dir",
            dir.to_str().unwrap(),
            "-H",
            &addr(1),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(s.runs().is_empty());
    assert_eq!(journal::runs(&dir).unwrap().len(), 1);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The journal's directory is its owner's alone; one made above it is
    // not (others may need to pass through it).
    assert_eq!(mode(&dir), 0o700);
    assert_ne!(mode(&elsewhere.path().join("shared")), 0o700);
}

#[test]
fn a_helpers_commands_and_a_transfers_files_are_recorded_as_theirs() {
    use std::sync::{Arc, Mutex};
    use twill::events::{self, Event};

    let dir = crate::support::RemoteDir::new();
    let file = dir.path("notes.txt");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("up.txt");
    std::fs::write(&src, "journal me\n").unwrap();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = seen.clone();
    let id = events::add_logger(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    twill::with_settings(crate::support::twill().hide("everything"), || {
        twill::contrib::files::append(file.as_str(), "a line").unwrap();
        twill::upload(&src, &file).unwrap();
    });
    events::remove_logger(id);
    let seen = seen.lock().unwrap();
    let ops: Vec<&twill::events::Operation> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OperationEnded(op) if op.command.contains(file.as_str()) => Some(op),
            _ => None,
        })
        .collect();
    // append's check and its write, both its own; then the upload.
    let helpers: Vec<Option<&str>> = ops.iter().map(|o| o.helper.as_deref()).collect();
    assert_eq!(helpers, [Some("append"), Some("append"), None], "{ops:?}");
    let put = ops[2];
    assert_eq!(put.op.name(), "put");
    let [moved] = put.files.as_slice() else {
        panic!("{put:?}")
    };
    assert_eq!(moved.bytes, 11);
    // sha256("journal me\n")
    let expected = text(&Command::new("sha256sum").arg(&src).output().unwrap().stdout);
    assert_eq!(moved.sha256, expected.split_whitespace().next().unwrap());
    assert_eq!(moved.remote, file);
    assert_eq!(dir.read("notes.txt"), "journal me\n");
}

//! `pipe` and `open_process`: one host's command streamed into another's
//! through this process, and the `twill pipe` task.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use twill::{open_process, pipe, run, with_settings, ErrorKind};

use crate::support::{port, text, twill, var, RemoteDir};

/// The test user on 127.0.0.`n`: the same server at another address.
fn host(n: usize) -> String {
    format!("{}@127.0.0.{n}:{}", var("TWILL_TEST_USER"), port())
}

#[test]
fn pipe_streams_fifty_megabytes_between_two_hosts_unchanged() {
    let dir = RemoteDir::new();
    let source = dir.path("source");
    with_settings(twill(), || {
        run(format!("head -c 50M /dev/urandom > {source}")).unwrap();
        let want = run(format!("sha256sum < {source}")).unwrap();
        let done = pipe(
            (&host(1), &format!("cat {source}")),
            (&host(2), "sha256sum"),
        )
        .unwrap();
        assert_eq!(done.to().stdout(), want.stdout());
        assert!(
            done.to().stdout().ends_with("  -"),
            "{}",
            done.to().stdout()
        );
        assert_eq!(done.bytes(), 50 * 1024 * 1024);
        assert_eq!(done.from().return_code(), 0);
        assert_eq!(done.to().return_code(), 0);
    });
}

#[test]
fn pipe_stops_the_sender_when_the_receiver_fails_early() {
    with_settings(twill(), || {
        for receiver in ["head -c 10 >/dev/null; exit 3", "false"] {
            let started = Instant::now();
            // The sender never ends by itself.
            let err = pipe((&host(1), "cat /dev/zero"), (&host(2), receiver)).unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{:?}",
                started.elapsed()
            );
            assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
            assert_eq!(err.host(), Some(host(2).as_str()));
            assert_eq!(err.command(), Some(receiver));
            let code = if receiver == "false" { 1 } else { 3 };
            assert_eq!(err.exit_code(), Some(code));
            assert!(
                err.message()
                    .starts_with(&format!("pipe() received nonzero return code {code}")),
                "{err}"
            );
        }
        // No `cat /dev/zero` is left running: a stopped command ends as its
        // signal reaches it, a moment after the channel closes.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = run("pgrep -u \"$(id -u)\" -x -f 'cat /dev/zero' || true").unwrap();
            if left.stdout().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still running: {}",
                left.stdout()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

#[test]
fn pipe_stops_the_receiver_before_its_input_ends_when_the_sender_fails() {
    let dir = RemoteDir::new();
    let got = dir.path("got");
    let complete = dir.path("complete");
    with_settings(twill(), || {
        let started = Instant::now();
        let err = pipe(
            (&host(1), "echo partial; exit 4"),
            (&host(2), &format!("cat > {got} && touch {complete}")),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
        assert_eq!(err.host(), Some(host(1).as_str()));
        assert_eq!(err.exit_code(), Some(4));
        assert_eq!(err.command(), Some("echo partial; exit 4"));
    });
    // The receiver never saw the end of its input, so it never finished.
    assert!(!dir.has("complete"));
}

#[test]
fn pipe_with_a_receiver_that_stops_reading_and_succeeds_is_a_success() {
    with_settings(twill(), || {
        let done = pipe(
            (&host(1), "cat /dev/zero"),
            (&host(2), "head -c 100000 | wc -c"),
        )
        .unwrap();
        assert_eq!(done.to().stdout().trim(), "100000");
        assert_eq!(done.from().return_code(), -1);
    });
}

#[test]
fn pipe_keeps_standard_error_apart_from_the_stream() {
    with_settings(twill(), || {
        let done = pipe(
            (&host(1), "echo noise >&2; printf 'a\\nb\\n'"),
            (&host(2), "echo more >&2; wc -l"),
        )
        .unwrap();
        assert_eq!(done.to().stdout().trim(), "2");
        assert_eq!(done.from().stderr(), "noise");
        assert_eq!(done.to().stderr(), "more");
    });
}

#[test]
fn pipe_open_process_gives_a_commands_input_and_output() {
    with_settings(twill(), || {
        let mut sort = open_process("sort").unwrap();
        let mut stdin = sort.stdin.take().unwrap();
        stdin.write_all(b"pear\napple\n").unwrap();
        drop(stdin);
        let mut sorted = String::new();
        sort.stdout
            .take()
            .unwrap()
            .read_to_string(&mut sorted)
            .unwrap();
        assert_eq!(sorted, "apple\npear\n");
        assert_eq!(sort.wait().unwrap().return_code(), 0);

        let sleeper = open_process("sleep 60").unwrap();
        let started = Instant::now();
        sleeper.stop();
        let err = sleeper.wait().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Stopped, "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));

        let err = open_process("exit 5").unwrap().wait().unwrap_err();
        assert_eq!(err.exit_code(), Some(5));
    });
}

#[test]
fn pipe_task_of_the_twill_binary() {
    let ok = crate::cli::twill_cmd()
        .args([
            "pipe",
            &format!("{}:echo hello; echo there", host(1)),
            &format!("{}:tr a-z A-Z", host(2)),
        ])
        .output()
        .unwrap();
    let stdout = text(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", text(&ok.stderr));
    assert!(
        stdout.contains(&format!("[{0}] out: HELLO\n[{0}] out: THERE\n", host(2))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[{}] pipe: echo hello; echo there\n", host(1))),
        "{stdout}"
    );

    let failed = crate::cli::twill_cmd()
        .args([
            "pipe",
            &format!("{}:cat /dev/zero", host(1)),
            &format!("{}:exit 3", host(2)),
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("Fatal error: "), "{stderr}");
    assert!(stderr.contains("return code 3"), "{stderr}");
    assert!(stderr.contains(&host(2)), "{stderr}");

    let usage = crate::cli::twill_cmd()
        .args(["pipe", "nohost", "x:y"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage.stderr));
}

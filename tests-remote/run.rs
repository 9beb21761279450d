//! `run`: output, exit codes, the settings that shape the command.

use std::time::{Duration, Instant};

use twill::{cd, prefix, run, run_with, shell_env, with_settings, ErrorKind, RunOptions, Settings};

use crate::support::{in_child, text, twill, unique};

#[test]
fn stdout_exit_code_and_real_command() {
    with_settings(twill(), || {
        let out = run("echo hello; echo '  spaced  '").unwrap();
        assert_eq!(out.stdout_lines(), ["hello", "  spaced"]);
        assert_eq!(out.return_code(), 0);
        assert_eq!(out.command(), "echo hello; echo '  spaced  '");
        assert_eq!(
            out.real_command(),
            "/bin/bash -l -c \"echo hello; echo '  spaced  '\""
        );
        let who = run("whoami").unwrap();
        assert_eq!(who, "twill");
    });
}

#[test]
fn exact_exit_codes_and_fabrics_failure_message() {
    with_settings(twill(), || {
        let err = run("echo before; exit 3").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert_eq!(err.exit_code(), Some(3));
        let host = err.host().unwrap().to_string();
        assert!(host.starts_with("twill@127.0.0.1:"), "{host}");
        assert_eq!(
            err.message(),
            "run() received nonzero return code 3 while executing!\n\nRequested: echo before; exit 3\nExecuted: /bin/bash -l -c \"echo before; exit 3\""
        );
        assert!(err
            .to_string()
            .starts_with(&format!("[{host}] run() received")));
        assert_eq!(err.output().unwrap().stdout(), "before");
        for code in [1, 2, 42, 255] {
            let out = run_with(format!("exit {code}"), &RunOptions::new().warn_only(true)).unwrap();
            assert_eq!(out.return_code(), code);
        }
    });
}

#[test]
fn command_not_found_is_a_result_with_127() {
    with_settings(twill().warn_only(true), || {
        let out = run("no-such-command-on-the-server").unwrap();
        assert_eq!(out.return_code(), 127);
        assert!(out.failed());
        assert!(out.stdout().contains("command not found"), "{out:?}");
    });
}

#[test]
fn streams_separate_without_pty_and_merged_with_one() {
    with_settings(twill(), || {
        let apart = run_with(
            "echo out; echo err >&2",
            &RunOptions::new().pty(false).combine_stderr(false),
        )
        .unwrap();
        assert_eq!((apart.stdout(), apart.stderr()), ("out", "err"));
        let merged = run("echo out; echo err >&2").unwrap();
        assert_eq!(merged.stdout_lines(), ["out", "err"]);
        assert_eq!(merged.stderr(), "");
        assert!(
            merged.stdout().contains("\r\n"),
            "a pty turns \\n into \\r\\n: {merged:?}"
        );
        let tty = run("tty").unwrap();
        assert!(tty.starts_with("/dev/pts/"), "{tty:?}");
        let no_tty = run_with("tty", &RunOptions::new().pty(false).warn_only(true)).unwrap();
        assert_eq!(no_tty, "not a tty");
    });
}

#[test]
fn cd_prefix_and_shell_env_reach_the_server() {
    with_settings(twill(), || {
        let dir = run("mktemp -d").unwrap().to_string();
        run(format!("mkdir -p '{dir}/my app/sub'")).unwrap();
        let out = with_settings(
            cd(&dir)
                .cd("my app")
                .cd("sub")
                .merge(shell_env([("GREETING", "hello  world")])),
            || {
                with_settings(prefix("export X=from-prefix"), || {
                    run("pwd; echo \"$GREETING\"; echo $X")
                })
            },
        )
        .unwrap();
        assert_eq!(
            out.stdout_lines(),
            [
                format!("{dir}/my app/sub").as_str(),
                "hello  world",
                "from-prefix"
            ]
        );
        let missing = with_settings(cd("/no/such/dir").warn_only(true), || {
            run("echo unreachable")
        })
        .unwrap();
        assert!(missing.failed());
        assert!(!missing.contains("unreachable"));
        run(format!("rm -rf '{dir}'")).unwrap();
    });
}

#[test]
fn large_output_is_captured_whole_and_utf8_survives() {
    with_settings(twill(), || {
        let out = run_with(
            "head -c 5000000 /dev/zero | tr '\\0' 'y'",
            &RunOptions::new().pty(false),
        )
        .unwrap();
        assert_eq!(out.len(), 5_000_000);
        let out = run("echo 'héllo ▎字'").unwrap();
        assert_eq!(out, "héllo ▎字");
    });
}

#[test]
fn streaming_to_a_writer_keeps_nothing_in_the_result() {
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    struct Counter(std::sync::mpsc::Sender<usize>);
    impl std::io::Write for Counter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.send(b.len()).unwrap();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    with_settings(twill().hide("stdout"), || {
        let out = run_with(
            "head -c 3000000 /dev/zero",
            &RunOptions::new().pty(false).stdout_to(Counter(tx)),
        )
        .unwrap();
        assert_eq!(out.stdout(), "");
    });
    assert_eq!(rx.try_iter().sum::<usize>(), 3_000_000);
}

#[test]
fn command_timeout_ends_the_remote_process() {
    let marker = unique("7");
    for pty in [true, false] {
        with_settings(twill(), || {
            let started = Instant::now();
            let cmd = format!("sleep 60.{marker}{}", pty as u8);
            let err = run_with(
                &cmd,
                &RunOptions::new()
                    .pty(pty)
                    .timeout(Duration::from_millis(700)),
            )
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout);
            assert!(
                err.to_string()
                    .contains("command failed to finish in 0.7 seconds"),
                "{err}"
            );
            assert!(err.to_string().contains(&cmd), "{err}");
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(300));
            let left = run_with(
                format!("pgrep -f 'sleep 60[.]{marker}{}' || true", pty as u8),
                &RunOptions::new().pty(false),
            )
            .unwrap();
            assert_eq!(left, "", "the remote sleep (pty={pty}) was stopped");
        });
    }
    // The setting is the default for the option.
    with_settings(twill().command_timeout(Duration::from_millis(300)), || {
        assert_eq!(run("sleep 5").unwrap_err().kind(), ErrorKind::Timeout);
    });
}

#[test]
fn remote_file_exists_checks_paths() {
    with_settings(twill(), || {
        assert!(twill::remote_file_exists("/etc/passwd").unwrap());
        assert!(
            twill::remote_file_exists("~/.bashrc").unwrap(),
            "~ expands remotely"
        );
        assert!(!twill::remote_file_exists("/no/such/file").unwrap());
        assert!(with_settings(cd("/etc"), || twill::remote_file_exists("passwd")).unwrap());
    });
}

#[test]
fn output_lines_are_prefixed_with_the_host() {
    let out = in_child("run::output_lines_are_prefixed_with_the_host", || {
        with_settings(
            twill().host_string(crate::support::host_for("twill")),
            || {
                run("echo one; printf 'two\\nthree'").unwrap();
                run_with(
                    "echo to-err >&2",
                    &RunOptions::new().pty(false).combine_stderr(false),
                )
                .unwrap();
                with_settings(Settings::new().warn_only(true), || run("exit 4")).unwrap();
            },
        );
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let h = crate::support::host_for("twill");
    assert!(stdout.contains(&format!("[{h}] run: echo one; printf 'two\\nthree'\n[{h}] out: one\n[{h}] out: two\n[{h}] out: three\n")), "{stdout}");
    assert!(stderr.contains(&format!("[{h}] err: to-err\n")), "{stderr}");
    assert!(
        stderr.contains(
            &"\nWarning: run() received nonzero return code 4 while executing 'exit 4'!\n\n"
                .to_string()
        ),
        "{stderr}"
    );
}

#[test]
fn no_host_is_a_clear_error() {
    let err = run("true").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings);
    assert!(err.to_string().contains("needs a host"), "{err}");
}

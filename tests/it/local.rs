//! `local`: capture modes, failures, timeouts.

use std::time::{Duration, Instant};

use twill::{
    lcd, local, local_capture, local_with, shell_env, with_settings, ErrorKind, LocalOptions,
    Settings,
};

use crate::support::{process_running_with, unique};

#[test]
fn capture_strips_and_reads_as_a_string() {
    let out = local_capture("printf '  one\\ntwo  \\n\\n'").unwrap();
    assert_eq!(out, "one\ntwo");
    assert_eq!(out.stdout_lines(), ["one", "two"]);
    assert_eq!(out.command(), "printf '  one\\ntwo  \\n\\n'");
    assert_eq!(out.real_command(), out.command());
    assert_eq!(out.len(), 7, "derefs to str");
    let as_string: String = out.into();
    assert_eq!(as_string, "one\ntwo");
}

#[test]
fn capture_combined_and_separate_streams() {
    let merged = local_with("echo out; echo err >&2", &LocalOptions::new().capture(true)).unwrap();
    assert_eq!(merged.stdout_lines(), ["out", "err"]);
    assert_eq!(merged.stderr(), "");
    let apart = local_with(
        "echo out; echo err >&2",
        &LocalOptions::new().capture(true).combine_stderr(false),
    )
    .unwrap();
    assert_eq!((apart.stdout(), apart.stderr()), ("out", "err"));
    // The setting is the default when the option is not given.
    let apart = with_settings(Settings::new().combine_stderr(false), || {
        local_capture("echo err >&2")
    })
    .unwrap();
    assert_eq!(apart.stderr(), "err");
}

#[test]
fn pass_through_returns_empty_stdout() {
    let out = local("echo shown-on-terminal").unwrap();
    assert_eq!(out.stdout(), "");
    assert_eq!(out.return_code(), 0);
}

#[test]
fn large_output_is_captured_whole() {
    let out = local_capture("head -c 3000000 /dev/zero | tr '\\0' 'x'").unwrap();
    assert_eq!(out.len(), 3_000_000);
}

#[test]
fn failure_is_an_error_with_fabrics_message_and_the_output() {
    let err = local_with(
        "echo partial; echo why >&2; exit 3",
        &LocalOptions::new().capture(true).combine_stderr(false),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert_eq!(
        err.to_string(),
        "local() encountered an error (return code 3) while executing 'echo partial; echo why >&2; exit 3'"
    );
    assert_eq!(err.exit_code(), Some(3));
    assert_eq!(err.command(), Some("echo partial; echo why >&2; exit 3"));
    let out = err.output().unwrap();
    assert_eq!((out.stdout(), out.stderr()), ("partial", "why"));
    assert!(out.failed());
}

#[test]
fn warn_only_returns_the_failed_result() {
    let out = with_settings(twill::warn_only(), || local_capture("echo x; exit 2")).unwrap();
    assert!(out.failed() && !out.succeeded());
    assert_eq!(out.return_code(), 2);
    assert_eq!(out, "x");
    let out = local_with("exit 5", &LocalOptions::new().quiet(true)).unwrap();
    assert_eq!(out.return_code(), 5);
}

#[test]
fn ok_ret_codes_decide_success() {
    with_settings(Settings::new().ok_ret_codes([0, 1]), || {
        let out = local_capture("exit 1").unwrap();
        assert!(out.succeeded());
        let err = local("exit 2").unwrap_err();
        assert_eq!(err.exit_code(), Some(2));
    });
    // 0 need not be in the list.
    let err = with_settings(Settings::new().ok_ret_codes([2]), || local("true")).unwrap_err();
    assert_eq!(err.exit_code(), Some(0));
}

#[test]
fn command_not_found_is_127_and_signals_are_negative() {
    let out = local_with(
        "no-such-command-twill",
        &LocalOptions::new().capture(true).warn_only(true),
    )
    .unwrap();
    assert_eq!(out.return_code(), 127);
    let out = local_with("kill -9 $$", &LocalOptions::new().warn_only(true)).unwrap();
    assert_eq!(out.return_code(), -9);
}

#[test]
fn lcd_prefix_and_env_apply_without_touching_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let before = std::env::current_dir().unwrap();
    let out = with_settings(
        lcd(dir.path().to_str().unwrap()).merge(shell_env([("GREETING", "hi $there")])),
        || local_capture("pwd; echo \"$GREETING\""),
    )
    .unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(out.stdout_lines(), [real.to_str().unwrap(), "hi $there"]);
    assert_eq!(
        std::env::current_dir().unwrap(),
        before,
        "lcd never changes the process's directory"
    );
    let out = with_settings(twill::prefix("X=from-prefix; export X"), || {
        local_capture("echo $X")
    })
    .unwrap();
    assert_eq!(out, "from-prefix");
}

#[test]
fn use_shell_wraps_in_a_login_bash() {
    let out = local_with(
        "echo \"$0 $1\" | cut -c1-9",
        &LocalOptions::new().capture(true).use_shell(true),
    )
    .unwrap();
    assert_eq!(out, "/bin/bash");
    assert!(out.real_command().starts_with("/bin/bash -l -c \""));
}

#[test]
fn a_custom_shell_runs_the_command() {
    let out = local_with(
        "echo $BASH_VERSION",
        &LocalOptions::new().capture(true).shell("/bin/bash"),
    )
    .unwrap();
    assert!(!out.is_empty(), "bash ran it");
    let out = local_with(
        "echo ${BASH_VERSION:-none}",
        &LocalOptions::new().capture(true).shell("/bin/sh"),
    )
    .unwrap();
    assert_eq!(out, "none", "dash ran it");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let marker = unique("3");
    // A child and a grandchild that both outlive the timeout, holding the pipes.
    let cmd = format!("sleep 30.{marker} & sleep 30.{marker}; wait");
    let started = Instant::now();
    let err = local_with(
        &cmd,
        &LocalOptions::new()
            .capture(true)
            .timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        format!(
            "local() timed out: command failed to finish in 0.3 seconds while executing '{cmd}'"
        )
    );
    assert!(
        took < Duration::from_secs(10),
        "returned after the timeout, not after the sleeps ({took:?})"
    );
    assert_eq!(err.output().unwrap().return_code(), -9);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !process_running_with(&format!("30.{marker}")),
        "no process left behind"
    );
}

#[test]
fn timeout_not_reached_returns_normally() {
    let out = local_with(
        "echo quick",
        &LocalOptions::new()
            .capture(true)
            .timeout(Duration::from_secs(20)),
    )
    .unwrap();
    assert_eq!(out, "quick");
}

#[test]
fn local_sudo_runs_as_root() {
    // Needs passwordless sudo or root; the project's scripts run as root.
    let out = local_with("id -u", &LocalOptions::new().capture(true).use_sudo(true)).unwrap();
    assert_eq!(out, "0");
}

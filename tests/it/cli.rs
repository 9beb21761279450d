//! The command line without a server: how words are parsed, usage errors,
//! passwords and the options that carry them, typed task arguments, and
//! the ported fabfile's `-l` and `-d`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use assert_cmd::prelude::*;
use twill::{env, task, with_settings, Settings, Tasks};

use crate::support::{command_line_child, command_lines_with_workers, text};

fn twill() -> Command {
    let mut c = Command::cargo_bin("twill").unwrap();
    c.env_remove("TWILL_PASSWORD")
        .env_remove("TWILL_SUDO_PASSWORD");
    c
}

/// `host:port` where nothing listens: connecting is refused at once.
fn closed_port() -> String {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().to_string()
}

fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let out = c.output().unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn option_values_named_put_or_get_belong_to_the_option() {
    // `put` is the value of -u: the user reaches the (unreachable) jump host.
    let (code, stdout, stderr) = run(twill().args([
        "-u",
        "put",
        "-g",
        &closed_port(),
        "-H",
        "h",
        "--set",
        "use_ssh_config=false",
        "--",
        "uname",
    ]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("[h] run: uname\n"), "{stdout}");
    assert!(
        stderr.contains("Could not connect to the jump host put@127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("(tried 1 time)").count(),
        1,
        "the attempts are counted once: {stderr}"
    );
    // `get` is the value of -H: the host is called get.
    let (code, stdout, stderr) = run(twill().args([
        "-g",
        &closed_port(),
        "-H",
        "get",
        "--set",
        "use_ssh_config=false",
        "--",
        "echo",
        "hi",
    ]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("[get] run: echo hi\n"), "{stdout}");
}

#[test]
fn put_and_get_take_the_next_two_words_verbatim() {
    let host = closed_port();
    // The local path is looked at before connecting: its name shows how it
    // was read.
    for name in ["name\\", "a,b=c", "x\\,y"] {
        let (code, _, stderr) = run(twill().args(["-H", &host, "put", name, "dest"]));
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("put(): local path '{name}' does not exist")),
            "{name}: {stderr}"
        );
    }
    // Options may come between the words, and after them.
    let (code, _, stderr) = run(twill().args(["put", "name\\", "-H", &host, "dest", "-a"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("local path 'name\\' does not exist"),
        "{stderr}"
    );
    let (code, _, stderr) = run(twill().args(["-H", &host, "get", "only-one"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(
            "twill: task 'get' takes the 2 words after it as its arguments, but 1 followed it\n"
        ),
        "{stderr}"
    );
}

#[test]
fn ports_out_of_range_are_usage_errors_before_anything_runs() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["-H", "127.0.0.1:99999", "--", "true"],
            "twill: -H: invalid port in host string '127.0.0.1:99999': 99999 is out of range (ports are 1 to 65535)\n",
        ),
        (
            &["-H", "web1,deploy@[::1]:0", "--", "true"],
            "twill: -H: invalid port in host string 'deploy@[::1]:0': 0 is out of range (ports are 1 to 65535)\n",
        ),
        (
            &["-H", "web1", "-x", "web2:http", "--", "true"],
            "twill: -x: invalid port in host string 'web2:http': 'http' is not a number\n",
        ),
        (
            &["--set", "hosts=web1:70000", "--", "true"],
            "twill: --set hosts: invalid port in host string 'web1:70000': 70000 is out of range (ports are 1 to 65535)\n",
        ),
        (
            &["-H", "web1", "-g", "jump:", "--", "true"],
            "twill: -g: invalid port in host string 'jump:': the port is empty\n",
        ),
        (
            &["put:a,b,hosts=web1;web2:65536"],
            "twill: task 'put', argument hosts: invalid port in host string 'web2:65536': 65536 is out of range (ports are 1 to 65535)\n",
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = run(twill().args(args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "nothing runs: {args:?}");
    }
}

#[test]
fn no_hosts_is_said_in_command_line_words() {
    let (code, stdout, stderr) = run(twill().args(["--", "uname"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "twill: no hosts given: use -H HOST[,HOST...] or -R ROLE\nTry 'twill --help' or 'twill -l' for more information.\n"
    );
    assert_eq!(stdout, "");
    // A task that needs a host names the task and the options.
    let (code, _, stderr) = run(twill().args(["put", "a", "b"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Fatal error: task 'put' needs a host for put(), but no hosts were given: use -H HOST[,HOST...] or -R ROLE\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Settings::host_string"), "{stderr}");
}

#[test]
fn the_library_keeps_its_own_words_for_a_missing_host() {
    let err = twill::run("true").unwrap_err();
    assert_eq!(err.kind(), twill::ErrorKind::Settings);
    assert!(
        err.to_string()
            .starts_with("run() needs a host: no host_string is set (use Settings::host_string"),
        "{err}"
    );
}

#[test]
fn help_lists_the_new_options() {
    let (code, stdout, _) = run(twill().arg("--help"));
    assert_eq!(code, Some(0));
    for needle in [
        "--keepalive <SECONDS>",
        "--dry-run",
        "--no-journal",
        "--journal-dir <DIR>",
        "--retry-failed [<RUN>]",
        "--log [<COMMAND>...]",
        "--password-file <PATH>",
        "--sudo-password-file <PATH>",
        "TWILL_PASSWORD",
        "TWILL_SUDO_PASSWORD",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}

#[test]
fn a_dry_run_is_on_record_and_log_lists_shows_and_refuses_what_is_not_there() {
    let state = tempfile::tempdir().unwrap();
    let with_state = || {
        let mut c = twill();
        c.env("XDG_STATE_HOME", state.path());
        c
    };
    let (code, _, _) = run(with_state().args(["log"]));
    assert_eq!(code, Some(0));
    let (code, live, stderr) =
        run(with_state().args(["--dry-run", "-H", "web1.invalid", "--", "cd /srv && make"]));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, list, _) = run(with_state().args(["log"]));
    assert_eq!(code, Some(0));
    assert!(list.contains("ok") && list.contains("(dry run)"), "{list}");
    let (_, shown, _) = run(with_state().args(["log", "show", "last"]));
    assert_eq!(shown, live);
    let (_, json, _) = run(with_state().args(["--log", "show", "last", "--json"]));
    let op = json
        .lines()
        .find(|l| l.contains("\"event\":\"operation_ended\""))
        .unwrap_or_else(|| panic!("{json}"));
    assert!(op.contains("\"dry_run\":true"), "{op}");
    assert!(
        op.contains("\"real\":\"/bin/bash -l -c \\\"cd /srv && make\\\"\""),
        "{op}"
    );
    let (code, _, stderr) = run(with_state().args(["log", "show", "nosuch"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no run 'nosuch' in the journal in "),
        "{stderr}"
    );
    let (code, _, stderr) = run(with_state().args(["--retry-failed", "web"]));
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = run(with_state().args(["--retry-failed", "-H", "x", "--", "true"]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("give it no tasks or command"), "{stderr}");
}

#[test]
fn log_diff_shows_one_added_command_as_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let host = "diff-host.invalid";
    let settings = Settings::new()
        .journal_dir(dir.path().to_str().unwrap())
        .dry_run(true)
        .hide("everything")
        .host_string(host);
    with_settings(settings, || {
        for commands in [
            &["make", "make install", "restart app"][..],
            &[
                "make",
                "make test",
                "make install",
                "restart app --graceful",
            ][..],
        ] {
            let journal = twill::events::record_run("diff-test").unwrap();
            for c in commands {
                twill::run(c).unwrap();
            }
            journal.end();
        }
    });
    let (code, diff, stderr) = run(twill().args([
        "--log",
        "--journal-dir",
        dir.path().to_str().unwrap(),
        "diff",
        "last~1",
        "last",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let block: Vec<&str> = diff
        .split(&format!("{host}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("{diff}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        block,
        [
            "  + run: /bin/bash -l -c \"make test\" (exit code 0)",
            "  - run: /bin/bash -l -c \"restart app\" (exit code 0)",
            "  + run: /bin/bash -l -c \"restart app --graceful\" (exit code 0)",
        ],
        "{diff}"
    );
}

#[test]
fn a_journal_keeps_the_command_line_without_its_secrets() {
    let state = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(twill().env("XDG_STATE_HOME", state.path()).args([
        "--dry-run",
        "-p",
        "cli-pw-4411",
        "--set",
        "password=cli-pw-4412,branch=main,sudo_password=cli-pw-4413",
        "--sudo-password=cli-pw-4414",
        "-H",
        "web1.invalid",
        "--",
        "true",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let journal = std::fs::read_dir(state.path().join("twill/runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!journal.contains("cli-pw-"), "{journal}");
    let started = journal.lines().next().unwrap();
    let argv: serde_json::Value = serde_json::from_str(started).unwrap();
    let words: Vec<&str> = argv["argv"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        words,
        [
            "--dry-run",
            "--set",
            "branch=main",
            "-H",
            "web1.invalid",
            "--",
            "true"
        ]
    );
}

#[test]
fn dry_run_prints_the_real_commands_and_stops_at_a_syntax_error() {
    let hosts = "web1.invalid,deploy@web2.invalid:2222";
    let (code, stdout, stderr) = run(twill().args([
        "--dry-run",
        "-H",
        hosts,
        "--hide",
        "everything",
        "--",
        "cd /srv && make",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("Dry run: nothing connects and nothing runs."),
        "{stdout}"
    );
    assert_eq!(stdout.matches("Dry run:").count(), 1, "{stdout}");
    for h in ["web1.invalid", "deploy@web2.invalid:2222"] {
        assert!(
            stdout.contains(&format!(
                "[{h}] would run: /bin/bash -l -c \"cd /srv && make\"\n"
            )),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("run: cd"), "hidden: {stdout}");
    // bash's verdict stops the run where the real one would stop.
    let (code, stdout, stderr) = run(twill().args(["--dry-run", "-H", hosts, "--", "echo", "("]));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains("\nWarning: [web1.invalid] bash -n finds a syntax error in: echo (\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\nFatal error: run() received nonzero return code 2 while executing!"),
        "{stderr}"
    );
    assert!(!stdout.contains("[deploy@web2.invalid:2222]"), "{stdout}");
    // `new` says what it would make, and makes nothing.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tasks");
    let (code, stdout, stderr) = run(twill().args(["--dry-run", "new"]).arg(&target));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("would create the cargo project tasks"),
        "{stdout}"
    );
    assert!(!target.exists());
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    for args in [
        vec!["nope"],
        vec!["--bogus-option"],
        vec![],
        vec!["-z", "many", "--", "true"],
        vec!["--hide", "stdotu", "--", "true"],
    ] {
        let (code, _, stderr) = run(twill().args(&args));
        assert_eq!(code, Some(2), "{args:?}");
        assert!(
            stderr.starts_with("twill: ") && stderr.contains("Try 'twill --help'"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 2, "one line and a hint: {stderr}");
    }
    let (code, stdout, _) = run(twill().arg("--help"));
    assert_eq!(code, Some(0));
    assert!(stdout.contains("--skip-bad-hosts"), "{stdout}");
}

#[test]
fn version_is_the_program_and_twill() {
    let (code, stdout, stderr) = run(twill().arg("-V"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("twill (twill {})\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The `fabfile` example binary.
fn fabfile() -> Command {
    let dir: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    // Built (or found up to date) once per run: a test run builds no
    // examples, and an old build would test old code.
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "fabfile"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the fabfile example failed");
    });
    Command::new(dir.join("fabfile"))
}

#[test]
fn the_ported_fabfile_lists_and_documents_its_tasks() {
    let list = fabfile().arg("-l").output().unwrap();
    assert!(list.status.success());
    let stdout = text(&list.stdout);
    assert!(stdout.starts_with("Available commands:\n\n"), "{stdout}");
    assert!(
        stdout.contains("    deploy      Pull, install, migrate and restart.\n"),
        "{stdout}"
    );
    let doc = fabfile().args(["-d", "deploy"]).output().unwrap();
    assert_eq!(
        text(&doc.stdout),
        "Displaying detailed information for task 'deploy':\n\n    Pull, install, migrate and restart.\n\n    The branch defaults to main.\n\n    Arguments: branch='main'\n\n"
    );
    let missing = fabfile().args(["-d", "nosuchtask"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).starts_with("fabfile: task 'nosuchtask' not found\n"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn unreadable_password_files_are_usage_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    for (flag, path, why) in [
        ("--password-file", &missing, "No such file or directory"),
        ("--sudo-password-file", &empty, "it is empty"),
        (
            "--password-file",
            &dir.path().to_path_buf(),
            "Is a directory",
        ),
    ] {
        let (code, stdout, stderr) =
            run(twill().args(["-H", "web1", flag, path.to_str().unwrap(), "--", "true"]));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "twill: cannot read the password file '{}' given with {flag}: {why}\n",
                path.display()
            )),
            "{stderr}"
        );
        assert_eq!(stdout, "");
    }
    let (code, _, stderr) = run(twill().args([
        "-p",
        "x",
        "--password-file",
        missing.to_str().unwrap(),
        "--",
        "true",
    ]));
    assert_eq!(code, Some(2), "one or the other: {stderr}");
}

task! {
    /// Print the settings the command line gave.
    fn settings() -> twill::Result<()> {
        let e = env();
        twill::puts(&format!(
            "user={} password={:?} sudo_password={:?} keepalive={:?}",
            e.user(),
            e.password(),
            e.sudo_password(),
            e.keepalive()
        ));
        Ok(())
    }
}

task! {
    /// Count to n.
    fn count(n: u32, label: String, loud: Option<bool>) -> twill::Result<()> {
        let label = if loud.unwrap_or(false) { label.to_uppercase() } else { label };
        twill::puts(&format!("{label}: {}", (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")));
        Ok(())
    }
}

task! {
    /// Ask whether to go on.
    fn go_on() -> twill::Result<()> {
        let yes = twill::confirm("Go on?", false)?;
        twill::puts(&format!("going on: {yes}"));
        Ok(())
    }
}

/// Runs a task list with `args` in a child copy of this test binary, with
/// `environment` added.
fn fixture(test: &str, args: &[&str], environment: &[(&str, &str)]) -> Output {
    let mut c = command_line_child(test, "fixture", args, |argv| {
        let tasks = Tasks::new()
            .task(settings::task())
            .task(count::task())
            .task(go_on::task());
        with_settings(Settings::new(), || tasks.run_args(argv))
    });
    c.env_remove("TWILL_PASSWORD")
        .env_remove("TWILL_SUDO_PASSWORD");
    for (k, v) in environment {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn passwords_come_from_the_environment_files_or_options_in_that_order() {
    let t = "cli::passwords_come_from_the_environment_files_or_options_in_that_order";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from file\r\nsecond line\n").unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("TWILL_PASSWORD", "from env"),
        ("TWILL_SUDO_PASSWORD", "sudo env"),
    ];
    type Environment<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&[&str], Environment, &str); 6] = [
        (&["settings"], &[], "password=None sudo_password=None"),
        (
            &["settings"],
            &env,
            "password=Some(\"from env\") sudo_password=Some(\"sudo env\")",
        ),
        (
            &["--password-file", file, "settings"],
            &env,
            "password=Some(\"from file\") sudo_password=Some(\"sudo env\")",
        ),
        (
            &["--sudo-password-file", file, "-p", "opt", "settings"],
            &env,
            "password=Some(\"opt\") sudo_password=Some(\"from file\")",
        ),
        (
            &["--set", "password=set,sudo_password=s\\,et", "settings"],
            &env,
            "password=Some(\"set\") sudo_password=Some(\"s,et\")",
        ),
        (
            &["--sudo-password", "sopt", "settings"],
            &[("TWILL_PASSWORD", "")],
            "password=None sudo_password=Some(\"sopt\")",
        ),
    ];
    for (args, environment, expected) in cases {
        let out = fixture(t, args, environment);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains(expected), "{args:?}: {stdout}");
        let warned = |what: &str| {
            stderr.contains(&format!(
                "Warning: a password given with {what} is visible to other local users; use the "
            ))
        };
        assert_eq!(
            warned("-p/--password"),
            args.contains(&"-p"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            warned("--sudo-password"),
            args.contains(&"--sudo-password"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            warned("--set password="),
            args.contains(&"--set"),
            "{args:?}: {stderr}"
        );
    }
    let out = fixture(t, &["-p", "x", "settings"], &[]);
    assert!(
        text(&out.stderr).contains("\nWarning: a password given with -p/--password is visible to other local users; use the TWILL_PASSWORD environment variable or --password-file instead\n\n"),
        "{}",
        text(&out.stderr)
    );
    let out = fixture(t, &["--hide", "warnings", "-p", "x", "settings"], &[]);
    assert!(
        !text(&out.stderr).contains("Warning"),
        "--hide warnings hides it"
    );
}

#[test]
fn non_interactive_takes_the_default_answers() {
    let t = "cli::non_interactive_takes_the_default_answers";
    let out = fixture(t, &["--non-interactive", "go_on"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("Go on? [y/N] n (non-interactive)\ngoing on: false\n"),
        "{stdout}"
    );
    // Without it, the question is asked, and an empty input ends it.
    let out = fixture(t, &["go_on"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("standard input is closed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keepalive_sets_the_keepalive_interval() {
    let t = "cli::keepalive_sets_the_keepalive_interval";
    for (args, expected) in [
        (&["settings"][..], "keepalive=15s"),
        (&["--keepalive", "20", "settings"], "keepalive=20s"),
        (&["--keepalive", "0.5", "settings"], "keepalive=500ms"),
        (
            &["--set", "keepalive=9", "--keepalive", "0", "settings"],
            "keepalive=0ns",
        ),
    ] {
        let out = fixture(t, args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(expected),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let out = fixture(t, &["--keepalive=-1", "settings"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--keepalive must be a number of seconds, not -1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn passwords_on_the_command_line_are_hidden_from_the_process_list() {
    // A server that accepts and never answers keeps twill's two workers
    // waiting for its greeting until the connect timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let hosts = format!("{addr},other@{addr}");
    let mut child = twill()
        .args([
            "-P",
            "-H",
            &hosts,
            "-t",
            "4",
            "-pHIDDEN-LOGIN-1",
            "--sudo-password=HIDDEN-SUDO-2",
            "--set",
            "use_ssh_config=false,key_passphrase=HIDDEN-KEY-3,user=u",
            "--",
            "true",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = command_lines_with_workers(&mut child, 2);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(lines.len(), 3);
    let x = |secret: &str| "x".repeat(secret.len());
    let hidden = format!(
        " -p{} --sudo-password={} --set use_ssh_config=false,key_passphrase={},user=u -- true",
        x("HIDDEN-LOGIN-1"),
        x("HIDDEN-SUDO-2"),
        x("HIDDEN-KEY-3")
    );
    for line in &lines {
        assert!(!line.contains("HIDDEN"), "{line}");
        assert!(
            line.contains(&hidden),
            "the rest of the command line is left as it was: {line}"
        );
    }
}

#[test]
fn typed_arguments_are_converted_or_refused() {
    let t = "cli::typed_arguments_are_converted_or_refused";
    let ok = fixture(t, &["count:3,label=a\\,b", "count:2,label=x,loud=yes"], &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("a,b: 1 2 3\nX: 1 2\n"),
        "{}",
        text(&ok.stdout)
    );
    let cases = [
        (
            vec!["count:abc,label=x"],
            "task 'count': argument 'n' expects a whole number of 0 or more, but got 'abc'",
        ),
        (vec!["count:3"], "task 'count' needs the argument 'label'"),
        (
            vec!["count:1,x,true,extra"],
            "task 'count' takes 3 argument(s) but 4 were given",
        ),
        (
            vec!["count:1,label=x,colour=red"],
            "task 'count' has no argument 'colour' (its arguments: n, label, loud)",
        ),
        (
            vec!["count:1,label=x,loud=perhaps"],
            "argument 'loud' expects true or false, but got 'perhaps'",
        ),
        (vec!["nosuchtask"], "task 'nosuchtask' not found"),
    ];
    for (args, expected) in cases {
        let out = fixture(t, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stdout).contains("Executing task"),
            "nothing runs on a usage error"
        );
    }
}

#[test]
fn new_makes_a_fabfile_project_that_builds_offline() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("twill-new-check");
    let (code, stdout, stderr) = run(twill().arg("new").arg(&project));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "Created the cargo project twill-new-check in {}:",
            project.display()
        )),
        "{stdout}"
    );
    let checkout = env!("CARGO_MANIFEST_DIR");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    for needle in [
        "name = \"twill-new-check\"".to_string(),
        format!("twill = {{ path = \"{checkout}\" }}"),
        "[patch.crates-io]\n# twill's libssh2-sys, with two patches".to_string(),
        format!("libssh2-sys = {{ path = \"{checkout}/vendor/libssh2-sys\" }}"),
        "release instead:  twill = \"".to_string(),
    ] {
        assert!(manifest.contains(&needle), "{needle}: {manifest}");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.starts_with("# twill-new-check\n"), "{readme}");
    assert!(
        readme.contains("cargo run -- -H web1,web2 uptime"),
        "{readme}"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("Cargo.lock")).unwrap(),
        std::fs::read_to_string(format!("{checkout}/Cargo.lock")).unwrap(),
        "the project starts from the versions twill is tested with"
    );

    // It builds offline, in this run's target directory, where twill's
    // dependencies are built already.
    let target: PathBuf = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .to_path_buf();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build.stderr));
    let program = target.join("debug").join("twill-new-check");
    let list = Command::new(&program).arg("-l").output().unwrap();
    assert_eq!(
        text(&list.stdout),
        "Available commands:\n\n    deploy  Check out a branch of the application in /srv/app.\n    uptime  Show how long each host has been up.\n"
    );
    let doc = Command::new(&program)
        .args(["-d", "deploy"])
        .output()
        .unwrap();
    assert!(
        text(&doc.stdout).ends_with("    Arguments: branch='main'\n\n"),
        "{}",
        text(&doc.stdout)
    );

    // Never over an existing directory, and only a name cargo takes.
    let (code, _, stderr) = run(twill().arg("new").arg(&project));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = run(twill().arg("new").arg(dir.path().join("twill")));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot name a cargo package"), "{stderr}");
}

//! The command line against the throwaway sshd: the `twill` binary, the
//! ported fabfile example, a task list whose settings carry from task to
//! task, and tasks whose marks (`#[roles]`, `#[parallel]`, `#[serial]`,
//! `#[runs_once]`) choose where and how their `execute` runs them. What needs no server is in the local suite (`tests/it/cli.rs`).

use std::process::{Command, Stdio};

use assert_cmd::prelude::*;
use twill::{env, run, set_env, task, with_settings, Settings, Tasks};

use crate::support::{
    command_line_child, command_lines_with_workers, host_for, in_child, port, text, twill, var,
};

/// Options that reach the throwaway server.
fn conn() -> Vec<String> {
    crate::support::cli_options(true)
}

/// The `twill` binary with the options that reach the throwaway server.
pub(crate) fn twill_cmd() -> Command {
    let mut c = Command::cargo_bin("twill").unwrap();
    c.args(conn());
    c
}

/// The `fabfile` example binary.
fn fabfile() -> Command {
    let mut c = Command::new(crate::support::example("fabfile"));
    c.args(conn());
    c
}

fn addr(n: usize) -> String {
    format!("twill@127.0.0.{n}:{}", port())
}

#[test]
fn ad_hoc_command_on_several_hosts_with_fabrics_closing_lines() {
    let out = twill_cmd()
        .args([
            "-H",
            &format!("{},{}", addr(1), addr(2)),
            "--",
            "echo",
            "hi",
            "from",
            "$(hostname)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for h in [addr(1), addr(2)] {
        assert!(stdout.contains(&format!("[{h}] Executing task '<remainder>'\n[{h}] run: echo hi from $(hostname)\n[{h}] out: hi from ")), "{stdout}");
    }
    assert!(
        stdout.contains(&format!(
            "\nDone.\nDisconnecting from {}... done.\nDisconnecting from {}... done.\n",
            addr(1),
            addr(2)
        )),
        "{stdout}"
    );
    // Parallel, excluding one host, with the running lines hidden.
    let out = twill_cmd()
        .args([
            "-P",
            "-H",
            &format!("{},{},{}", addr(1), addr(2), addr(3)),
            "-x",
            &addr(2),
            "--hide",
            "running",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(&addr(2)) && !stdout.contains("run: true"),
        "{stdout}"
    );
}

#[test]
fn sudo_put_and_get_from_the_command_line() {
    let sudo_host = format!("{}@127.0.0.1:{}", var("TWILL_TEST_SUDO_USER"), port());
    let out = twill_cmd()
        .args(["-H", &sudo_host, "--sudo", "--", "whoami"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("out: root"));
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("payload,with=odd chars.txt");
    std::fs::write(&local, "payload\n").unwrap();
    let remote = format!("/tmp/twill-cli-put-{}.txt", std::process::id());
    let out = twill_cmd()
        .args(["-H", &addr(1), "put", local.to_str().unwrap(), &remote])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), "payload\n");
    let back = dir.path().join("back.txt");
    let out = twill_cmd()
        .args(["-H", &addr(1), "get", &remote, back.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload\n");
    std::fs::remove_file(&remote).unwrap();
}

#[test]
fn exit_codes_warn_only_and_bad_hosts() {
    let failing = twill_cmd()
        .args(["-H", &addr(1), "--", "exit", "3"])
        .output()
        .unwrap();
    assert_eq!(failing.status.code(), Some(1));
    let stderr = text(&failing.stderr);
    assert!(
        // Fabric's abort is the message alone.
        stderr.contains("\nFatal error: run() received nonzero return code 3 while executing!")
            && stderr.contains("\nAborting.\n"),
        "{stderr}"
    );
    let warned = twill_cmd()
        .args(["-w", "-H", &addr(1), "--", "exit", "3"])
        .output()
        .unwrap();
    assert_eq!(warned.status.code(), Some(0));
    assert!(
        text(&warned.stderr).contains(
            "\nWarning: run() received nonzero return code 3 while executing 'exit 3'!\n\n"
        ),
        "{}",
        text(&warned.stderr)
    );

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = free.local_addr().unwrap().port();
    let dead = format!("twill@127.0.0.1:{dead_port}");
    drop(free);
    let hosts = format!("{dead},{}", addr(1));
    let aborted = twill_cmd()
        .args(["-H", &hosts, "--", "echo", "reached"])
        .output()
        .unwrap();
    assert_eq!(aborted.status.code(), Some(1));
    // Fabric's message names the host and port it could not reach.
    assert!(
        text(&aborted.stderr).contains(&format!(
            "Fatal error: Low level socket error connecting to host 127.0.0.1 on port {dead_port}: "
        )),
        "{}",
        text(&aborted.stderr)
    );
    assert!(
        !text(&aborted.stdout).contains("out: reached"),
        "a serial run stops at the bad host"
    );
    let skipped = twill_cmd()
        .args(["--skip-bad-hosts", "-H", &hosts, "--", "echo", "reached"])
        .output()
        .unwrap();
    assert_eq!(skipped.status.code(), Some(0), "{}", text(&skipped.stderr));
    assert!(text(&skipped.stdout).contains("out: reached"));
    assert!(
        text(&skipped.stderr).contains("Warning:"),
        "{}",
        text(&skipped.stderr)
    );
}

/// The `twill` binary that can log in by password only: no key files, no
/// agent, no password in the environment.
fn by_password() -> Command {
    let mut c = Command::cargo_bin("twill").unwrap();
    c.args([
        "-a".to_string(),
        "--no-keys".into(),
        "--set".into(),
        format!(
            "known_hosts={},use_ssh_config=false",
            var("TWILL_TEST_KNOWN_HOSTS")
        ),
    ])
    .env_remove("TWILL_PASSWORD")
    .env_remove("TWILL_SUDO_PASSWORD");
    c
}

#[test]
fn passwords_log_in_without_showing_in_the_process_list() {
    let password = var("TWILL_TEST_PASSWORD");
    // Without a password there is no way in: the runs below log in by it.
    let out = by_password()
        .args(["-H", &addr(1), "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Authentication failed"),
        "{}",
        text(&out.stderr)
    );

    // -p: while the parallel run goes on, neither twill nor its workers
    // show the password.
    let mut child = by_password()
        .args([
            "-P",
            "-H",
            &format!("{},{}", addr(1), addr(2)),
            "-p",
            &password,
            "--",
            "sleep 3; echo slept",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = command_lines_with_workers(&mut child, 2);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(!line.contains(&password), "{line}");
        assert!(
            line.contains(&format!(" -p {} --", "x".repeat(password.len()))),
            "{line}"
        );
    }
    for n in [1, 2] {
        assert!(
            stdout.contains(&format!("[{}] out: slept\n", addr(n))),
            "{stdout}"
        );
    }
    assert!(
        stderr.contains("Warning: a password given with -p/--password is visible to other local users; use the TWILL_PASSWORD environment variable or --password-file instead"),
        "{stderr}"
    );

    // TWILL_PASSWORD and --password-file log in the same way, quietly.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let via_env = by_password()
        .args(["-H", &addr(1), "--", "echo", "via-env"])
        .env("TWILL_PASSWORD", &password)
        .output()
        .unwrap();
    let via_file = by_password()
        .args(["-H", &addr(1), "--password-file"])
        .arg(&file)
        .args(["--", "echo", "via-file"])
        .output()
        .unwrap();
    for (out, word) in [(via_env, "via-env"), (via_file, "via-file")] {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{word}: {stderr}");
        assert!(
            text(&out.stdout).contains(&format!("out: {word}\n")),
            "{}",
            text(&out.stdout)
        );
        assert!(!stderr.contains("Warning"), "{word}: {stderr}");
    }

    // A password file that cannot be read is a usage error naming it.
    let missing = dir.path().join("missing");
    let out = by_password()
        .args(["-H", &addr(1), "--password-file"])
        .arg(&missing)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "twill: cannot read the password file '{}' given with --password-file: No such file or directory\n",
            missing.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sudo_passwords_come_from_the_environment_or_a_file() {
    let host = host_for(&var("TWILL_TEST_SUDOPW_USER"));
    let password = var("TWILL_TEST_SUDO_PASSWORD");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sudo-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let sudo = || {
        let mut c = twill_cmd();
        c.args(["-H", &host, "--sudo"])
            .env_remove("TWILL_PASSWORD")
            .env_remove("TWILL_SUDO_PASSWORD");
        c
    };
    let without = sudo().args(["--", "whoami"]).output().unwrap();
    assert_eq!(without.status.code(), Some(1), "sudo asks for a password");
    let via_env = sudo()
        .args(["--", "whoami"])
        .env("TWILL_SUDO_PASSWORD", &password)
        .output()
        .unwrap();
    let via_file = sudo()
        .arg("--sudo-password-file")
        .arg(&file)
        .args(["--", "whoami"])
        .output()
        .unwrap();
    for out in [via_env, via_file] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("out: root\n"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn the_ported_fabfile_deploys() {
    let project = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        project.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let web = format!(
        "{}@127.0.0.2:{p},{}@127.0.0.3:{p}",
        var("TWILL_TEST_SUDO_USER"),
        var("TWILL_TEST_SUDO_USER"),
        p = port()
    );
    let db = format!("{}@127.0.0.4:{}", var("TWILL_TEST_SUDO_USER"), port());
    let out = fabfile()
        .args([
            "--set",
            &format!("project={}", project.path().display()),
            "production",
            "deploy:branch=release-2",
        ])
        .env("SHOP_WEB_HOSTS", &web)
        .env("SHOP_DB_HOSTS", &db)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let p = project.path();
    assert_eq!(
        std::fs::read_to_string(p.join("BRANCH")).unwrap(),
        "release-2\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("MIGRATED")).unwrap(),
        "migrated release-2\n"
    );
    assert!(p.join("INSTALLED").exists() && p.join("RESTARTED").exists());
    assert!(stdout.contains("out: restarted as root"), "{stdout}");
    assert_eq!(
        stdout.matches("Executing task 'migrate'").count(),
        1,
        "migrate runs once: {stdout}"
    );
    assert_eq!(
        stdout.matches("Executing task 'restart'").count(),
        2,
        "{stdout}"
    );
    assert!(
        !stdout.contains("Executing task 'production'"),
        "a task without hosts runs once, locally: {stdout}"
    );

    // Host precedence: the call's own hosts= beat the task's roles.
    let own = format!("{}@127.0.0.5:{}", var("TWILL_TEST_SUDO_USER"), port());
    let out = fabfile()
        .args([
            "--set",
            &format!("project={}", project.path().display()),
            "production",
            &format!("pull:branch=hotfix,hosts={own}"),
        ])
        .env("SHOP_WEB_HOSTS", &web)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("[{own}] Executing task 'pull'")) && !stdout.contains("127.0.0.2"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("BRANCH")).unwrap(),
        "hotfix\n"
    );
    // Without `production` there is no role `web`: Fabric aborts on it.
    let out = fabfile().arg("pull").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("The following specified roles do not exist:\n    web"),
        "{}",
        text(&out.stderr)
    );
}

task! {
    /// Choose a stage for the tasks after this one.
    fn stage(name: String) -> twill::Result<()> {
        set_env(Settings::new().set("stage", name));
        Ok(())
    }
}

task! {
    /// Print the stage and the host.
    fn show() -> twill::Result<()> {
        let host = env().host_string().unwrap_or("local".into());
        twill::puts(&format!("stage={} host={host}", env().get_str("stage").unwrap_or("none".into())));
        Ok(())
    }
}

fn tasks() -> Tasks {
    Tasks::new()
        .program_name("fixture")
        .task(stage::task())
        .namespace(
            "db",
            Tasks::new().task(show::task().hosts([host_for("twill")])),
        )
        .task(show::task())
}

/// Runs the fixture task list with `args` in a child copy of this test
/// binary.
fn fixture(test: &str, args: &[&str]) -> std::process::Output {
    command_line_child(test, "fixture", args, |argv| {
        with_settings(twill().unset("host_string"), || tasks().run_args(argv))
    })
    .output()
    .unwrap()
}

#[test]
fn tasks_run_in_order_and_settings_carry_to_the_next() {
    let t = "cli::tasks_run_in_order_and_settings_carry_to_the_next";
    let out = fixture(t, &["show", "stage:production", "show", "db.show"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let first = stdout.find("stage=none host=local").expect(&stdout);
    let second = stdout.find("stage=production host=local").expect(&stdout);
    let third = stdout
        .find(&format!(
            "[{0}] stage=production host={0}",
            host_for("twill")
        ))
        .expect(&stdout);
    assert!(first < second && second < third, "{stdout}");
}

/// The command line speaks of its own options, not the library's settings.
#[test]
fn messages_name_the_command_lines_options() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = Command::cargo_bin("twill")
        .unwrap()
        .args([
            "-i",
            &var("TWILL_TEST_KEY"),
            "-a",
            "-k",
            "--set",
            &format!(
                "known_hosts={},use_ssh_config=false",
                empty.path().display()
            ),
            "-H",
            &addr(11),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--accept-new-host-keys"), "{stderr}");
    assert!(!stderr.contains("accept_new_host_keys setting"), "{stderr}");

    let out = twill_cmd()
        .args([
            "-H",
            &format!("{}@127.0.0.11:{}", var("TWILL_TEST_SUDOPW_USER"), port()),
            "--sudo",
            "--",
            "whoami",
        ])
        .env_remove("TWILL_SUDO_PASSWORD")
        .env_remove("TWILL_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TWILL_SUDO_PASSWORD or --sudo-password-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("set sudo_password"), "{stderr}");
}

/// Prints which server address the task reached and from which local
/// process.
fn where_it_runs(name: &str) -> twill::Result<()> {
    let address = run("echo $SSH_CONNECTION | cut -d' ' -f3")?;
    twill::puts(&format!(
        "{name} reached {} from pid={}",
        address.stdout().trim(),
        std::process::id()
    ));
    Ok(())
}

task! {
    /// On each host of the trio role, in turn.
    #[roles("trio")]
    fn on_trio() -> twill::Result<()> {
        where_it_runs("on_trio")
    }
}

task! {
    /// On every host of the trio role at once.
    #[roles("trio")]
    #[parallel]
    fn trio_at_once() -> twill::Result<()> {
        run("sleep 1")?;
        where_it_runs("trio_at_once")
    }
}

task! {
    /// On each host of the trio role in turn, even with -P.
    #[roles("trio")]
    #[serial]
    fn trio_in_turn() -> twill::Result<()> {
        where_it_runs("trio_in_turn")
    }
}

task! {
    /// Once, on the first host of the trio role.
    #[roles("trio")]
    #[runs_once]
    fn trio_once() -> twill::Result<()> {
        where_it_runs("trio_once")
    }
}

/// The `(address, pid)` of each line `where_it_runs` printed for `name`.
fn reached(stdout: &str, name: &str) -> Vec<(String, u32)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(&format!("{name} reached ")))
        .map(|(_, rest)| {
            let (address, pid) = rest.split_once(" from pid=").unwrap();
            (address.to_string(), pid.trim().parse().unwrap())
        })
        .collect()
}

#[test]
fn execute_runs_each_task_on_its_roles_hosts_as_its_marks_say() {
    let t = "cli::execute_runs_each_task_on_its_roles_hosts_as_its_marks_say";
    let out = in_child(t, || {
        let trio = twill()
            .unset("host_string")
            .roledefs([("trio", [addr(1), addr(2), addr(3)])])
            .hide("running,stdout");
        with_settings(trio, || {
            twill::puts(&format!("caller pid={}", std::process::id()));
            assert_eq!(on_trio::execute().unwrap().len(), 3);
            let started = std::time::Instant::now();
            assert_eq!(trio_at_once::execute().unwrap().len(), 3);
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_millis(2500),
                "three one-second sleeps at once took {took:?}"
            );
            with_settings(Settings::new().parallel(true), || {
                assert_eq!(trio_in_turn::execute().unwrap().len(), 3)
            });
            assert_eq!(trio_once::execute().unwrap().hosts(), [addr(1)]);
            assert!(trio_once::execute().unwrap().is_empty());
        });
    });
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let caller: u32 = stdout
        .split("caller pid=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap()
        .parse()
        .unwrap();
    let addresses = |runs: &[(String, u32)]| {
        let mut a: Vec<String> = runs.iter().map(|r| r.0.clone()).collect();
        a.sort();
        a
    };
    let trio = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

    // #[roles]: three times, once on each host of the role.
    let serial = reached(&stdout, "on_trio");
    assert_eq!(addresses(&serial), trio, "{stdout}");
    assert!(serial.iter().all(|r| r.1 == caller), "{stdout}");

    // #[parallel]: three worker processes (and the sleeps overlapped).
    let parallel = reached(&stdout, "trio_at_once");
    assert_eq!(addresses(&parallel), trio, "{stdout}");
    let mut pids: Vec<u32> = parallel.iter().map(|r| r.1).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "{stdout}");
    assert!(!pids.contains(&caller), "{stdout}");

    // #[serial] beats the parallel setting (-P): all in the caller.
    let in_turn = reached(&stdout, "trio_in_turn");
    assert_eq!(addresses(&in_turn), trio, "{stdout}");
    assert!(in_turn.iter().all(|r| r.1 == caller), "{stdout}");

    // #[runs_once]: once, on the first host, however often it is executed.
    assert_eq!(
        reached(&stdout, "trio_once"),
        [("127.0.0.1".to_string(), caller)],
        "{stdout}"
    );
}

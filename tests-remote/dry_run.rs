//! The dry run against the throwaway sshd: the ported fabfile prints the
//! real commands of its tasks while the server sees no connection, and
//! put and get leave no file on either side.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use twill::{download_with, run, upload_with, with_settings, DownloadOptions, UploadOptions};

use crate::support::{as_user, cli_options, example, host_for, port, text, unique, var, RemoteDir};

/// The lines of the server's logs that name the user `user`: sshd logs
/// every login attempt with the user's name (`Invalid user <user> from
/// ...` for one it does not know), not a bare connection.
fn log_lines_naming(user: &str) -> Vec<String> {
    let needle = format!("user {user} ");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(var("TWILL_TEST_SSHD_DIR"))
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("sshd-") && name.ends_with(".log")) {
            continue;
        }
        let log = text(&std::fs::read(entry.path()).unwrap());
        lines.extend(
            log.lines()
                .filter(|l| l.contains(&needle))
                .map(String::from),
        );
    }
    lines
}

#[test]
fn the_ported_fabfile_dry_runs_without_a_connection() {
    // A user the server does not know: any connection made as that user
    // shows in its logs, whatever other tests do meanwhile.
    let user = unique("twilldry");
    let project = format!("/tmp/twill-dry-run-{}", unique("shop"));
    let (web1, web2, db1) = (
        format!("127.0.0.1:{}", port()),
        format!("127.0.0.2:{}", port()),
        format!("127.0.0.3:{}", port()),
    );
    assert!(log_lines_naming(&user).is_empty());
    let out = Command::new(example("fabfile"))
        .args(cli_options(true))
        .args(["--dry-run", "-u", &user, "--set"])
        .arg(format!("project={project}"))
        .args(["production", "deploy:branch=dry-run"])
        .env("SHOP_WEB_HOSTS", format!("{web1},{web2}"))
        .env("SHOP_DB_HOSTS", &db1)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Dry run: nothing connects and nothing runs."),
        "{stdout}"
    );
    assert_eq!(stdout.matches("Dry run:").count(), 1, "{stdout}");
    let p = &project;
    let mut expected = Vec::new();
    for h in [&web1, &web2] {
        expected.extend([
            format!("[{h}] Executing task 'pull'"),
            format!("[{h}] run: mkdir -p {p}/venv/bin && touch {p}/venv/bin/activate && echo dry-run > {p}/BRANCH"),
            format!("[{h}] would run: /bin/bash -l -c \"mkdir -p {p}/venv/bin && touch {p}/venv/bin/activate && echo dry-run > {p}/BRANCH\""),
            format!("[{h}] run: echo checked out $(cat BRANCH) on $(hostname)"),
            format!("[{h}] would run: /bin/bash -l -c \"cd {p} >/dev/null && echo checked out \\$(cat BRANCH) on \\$(hostname)\""),
            format!("[{h}] Executing task 'install'"),
            format!("[{h}] would run: /bin/bash -l -c \"cd {p} >/dev/null && source venv/bin/activate && echo 'requirements installed' > INSTALLED\""),
            format!("[{h}] Executing task 'restart'"),
            format!("[{h}] sudo: touch {p}/RESTARTED && echo restarted as $(whoami)"),
            format!("[{h}] would run: sudo -S -p 'sudo password:'  /bin/bash -l -c \"touch {p}/RESTARTED && echo restarted as \\$(whoami)\""),
        ]);
    }
    expected.extend([
        format!("[{db1}] Executing task 'migrate'"),
        format!("[{db1}] would run: /bin/bash -l -c \"cd {p} >/dev/null && source venv/bin/activate && echo migrated \\$(cat BRANCH) > MIGRATED && cat MIGRATED\""),
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &expected {
        assert!(lines.contains(&line.as_str()), "{line}\nin\n{stdout}");
    }
    assert!(!stdout.contains(" out: "), "nothing ran: {stdout}");
    assert!(
        stdout.ends_with("\nDone.\n"),
        "nothing to disconnect: {stdout}"
    );
    assert!(!Path::new(&project).exists(), "{project} was made");
    assert_eq!(
        log_lines_naming(&user),
        Vec::<String>::new(),
        "the server saw the dry run"
    );

    // The logs do show such a user once it connects.
    let refused = with_settings(as_user(&user).abort_on_prompts(true), || run("true"));
    assert!(refused.is_err(), "{refused:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_lines_naming(&user).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !log_lines_naming(&user).is_empty(),
        "a refused login as {user} is not in the server's logs"
    );
}

#[test]
fn put_and_get_dry_runs_leave_no_file_on_either_side() {
    let remote = RemoteDir::new();
    with_settings(crate::support::twill(), || {
        run(format!("echo there > {}", remote.path("there.txt")))
    })
    .unwrap();
    let here = tempfile::tempdir().unwrap();
    let local = here.path().join("here.txt");
    std::fs::write(&local, "here\n").unwrap();
    let host = host_for(&var("TWILL_TEST_USER"));
    let twill = |args: &[&str]| {
        let out = Command::cargo_bin("twill")
            .unwrap()
            .args(cli_options(true))
            .arg("--dry-run")
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    let sent = remote.path("sent.txt");
    let stdout = twill(&["-H", &host, "put", &local.to_string_lossy(), &sent]);
    assert!(
        stdout.contains(&format!(
            "[{host}] would put: {} -> {sent} (5 bytes)\n",
            local.display()
        )),
        "{stdout}"
    );
    let got = here.path().join("got.txt");
    let there = remote.path("there.txt");
    let stdout = twill(&["-H", &host, "get", &there, &got.to_string_lossy()]);
    assert!(
        stdout.contains(&format!(
            "[{host}] would get: {there} -> {}\n",
            got.display()
        )),
        "{stdout}"
    );
    // Through sudo too.
    let root_dir = RemoteDir::owned_by_root();
    with_settings(as_user(&var("TWILL_TEST_SUDO_USER")).dry_run(true), || {
        let opts = UploadOptions::new().use_sudo(true);
        let target = root_dir.path("by-root.txt");
        assert_eq!(upload_with(&local, &target, &opts)?, [target]);
        let opts = DownloadOptions::new().use_sudo(true);
        assert_eq!(
            download_with(&there, &got, &opts)?,
            std::slice::from_ref(&got)
        );
        twill::Result::Ok(())
    })
    .unwrap();
    assert!(!remote.has("sent.txt") && !root_dir.has("by-root.txt"));
    assert!(remote.has("there.txt"));
    let left: Vec<_> = std::fs::read_dir(here.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "only the file to upload is here: {left:?}");
}

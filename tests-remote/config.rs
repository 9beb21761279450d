//! `contrib::config::Config` against the throwaway server: a generated
//! file against the one on the host, as the login user and through sudo.

use twill::contrib::config::Config;
use twill::{with_settings, Settings};

use crate::support::{as_user, child_command, is_child, text, var, RemoteDir};

fn sudo_user() -> Settings {
    as_user(&var("TWILL_TEST_SUDO_USER")).hide("everything")
}

/// The dated copies `setup` kept in `dir`, as (name, text).
fn backups(dir: &RemoteDir, name: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.")))
        .map(|n| (n.clone(), dir.read(&n)))
        .collect();
    found.sort();
    found
}

#[test]
fn a_config_is_compared_written_and_backed_up_through_sudo() {
    // A directory only root may enter: only sudo reaches the file.
    let dir = RemoteDir::owned_by_root();
    let path = dir.path("app.conf");
    with_settings(sudo_user(), || {
        let first = Config::new(&path, "workers = 2\nport = 8000\n").mode(0o640);
        assert_eq!(first.current().unwrap(), None);
        assert!(first.changed().unwrap());
        let diff = first.diff().unwrap();
        assert!(diff.contains("+workers = 2\n+port = 8000\n"), "{diff}");
        assert!(first.setup().unwrap(), "a missing file is written");
        assert!(!first.changed().unwrap());
        assert_eq!(first.diff().unwrap(), "");
        assert!(!first.setup().unwrap(), "an unchanged file is left alone");
        assert!(
            backups(&dir, "app.conf").is_empty(),
            "nothing to back up yet"
        );

        let second = Config::new(&path, "workers = 4\nport = 8000\n");
        assert!(second.changed().unwrap());
        let diff = second.diff().unwrap();
        assert!(
            diff.contains(&format!("--- {path} (on the host)\n+++ {path} (new)\n")),
            "{diff}"
        );
        assert!(
            diff.contains("\n-workers = 2\n+workers = 4\n port = 8000\n"),
            "{diff}"
        );
        assert!(second.setup().unwrap());
        let kept = backups(&dir, "app.conf");
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].1, "workers = 2\nport = 8000\n");
        let stamp = kept[0].0.trim_start_matches("app.conf.");
        assert!(
            stamp.len() == 20 && stamp.chars().all(|c| c.is_ascii_digit() || c == '-'),
            "{stamp}"
        );
        // The copy keeps the old file's mode; the new file keeps it too.
        let mode = |name: &str| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.path(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&kept[0].0), 0o640);
        assert_eq!(mode("app.conf"), 0o640);
        assert_eq!(dir.read("app.conf"), "workers = 4\nport = 8000\n");
    });
}

#[test]
fn a_plain_users_config_without_backups() {
    let dir = RemoteDir::new();
    let path = dir.path("plain.conf");
    std::fs::write(&path, "a\n").unwrap();
    let settings = crate::support::twill().hide("everything");
    with_settings(settings, || {
        let config = Config::new(&path, "b\n").use_sudo(false).backup(false);
        assert_eq!(config.current().unwrap().as_deref(), Some("a\n"));
        assert!(config.setup().unwrap());
        assert!(backups(&dir, "plain.conf").is_empty());
        assert_eq!(dir.read("plain.conf"), "b\n");
    });
}

#[test]
fn the_diff_is_printed_after_its_host_line_without_colour_into_a_pipe() {
    let t = "config::the_diff_is_printed_after_its_host_line_without_colour_into_a_pipe";
    if is_child(t) {
        let path = std::env::var("TWILL_CONFIG_PATH").unwrap();
        with_settings(crate::support::twill(), || {
            Config::new(&path, "one\nthree\n")
                .use_sudo(false)
                .diff()
                .unwrap();
        });
        std::process::exit(0);
    }
    let dir = RemoteDir::new();
    let path = dir.path("shown.conf");
    std::fs::write(&path, "one\ntwo\n").unwrap();
    let out = child_command(t)
        .env("TWILL_CONFIG_PATH", &path)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let host = crate::support::host_for(&var("TWILL_TEST_USER"));
    assert!(
        stdout.contains(&format!(
            "[{host}] diff: {path}\n--- {path} (on the host)\n+++ {path} (new)\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour into a pipe: {stdout:?}"
    );
}

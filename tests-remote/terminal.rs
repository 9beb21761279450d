//! At a terminal, a password that is needed and not set is asked for,
//! hidden, as Fabric does. The `twill` binary runs in a tmux pane; the test
//! reads the pane and types the answer.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{port, unique, var};

/// A tmux server of its own running one command in a pane, killed
/// afterwards.
struct Pane {
    socket: String,
}

impl Pane {
    fn start(command: &[String]) -> Pane {
        let socket = unique("twill-tmux-");
        let shell_line = command
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "200", "-y", "50"])
            .arg(format!("{shell_line}; echo EXIT:$?; sleep 60"))
            .status()
            .unwrap();
        assert!(status.success(), "tmux did not start");
        Pane { socket }
    }

    fn text(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {needle:?}; the pane shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_line(&self, line: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-l", line])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn twill_binary() -> String {
    assert_cmd::cargo::cargo_bin("twill")
        .to_string_lossy()
        .into_owned()
}

/// The `twill` binary and the options that reach the server as `user`
/// without a key.
fn without_key(user: &str) -> Vec<String> {
    let mut cmd = vec![twill_binary()];
    cmd.extend(crate::support::cli_options(false));
    cmd.extend([
        "-H".into(),
        format!("{user}@{}:{}", var("TWILL_TEST_HOST"), port()),
    ]);
    cmd
}

#[test]
fn a_missing_login_password_is_asked_for_hidden() {
    let mut cmd = without_key(&var("TWILL_TEST_USER"));
    cmd.extend(["--".into(), "whoami".into()]);
    let pane = Pane::start(&cmd);
    pane.wait_for("Login password for 'twill': ");
    let password = var("TWILL_TEST_PASSWORD");
    pane.type_line(&password);
    let shown = pane.wait_for("EXIT:");
    assert!(shown.contains("EXIT:0"), "{shown}");
    assert!(shown.contains("out: twill"), "{shown}");
    assert!(
        !shown.contains(&password),
        "the password was shown:\n{shown}"
    );
}

#[test]
fn a_missing_sudo_password_is_asked_for_hidden_and_kept_for_the_run() {
    let user = var("TWILL_TEST_SUDOPW_USER");
    let hosts: Vec<String> = var("TWILL_TEST_HOSTS")
        .split(',')
        .take(2)
        .map(|a| format!("{user}@{a}:{}", port()))
        .collect();
    let mut cmd = vec![twill_binary(), "-i".into(), var("TWILL_TEST_KEY")];
    cmd.extend(without_key(&user).into_iter().skip(1));
    // Two hosts, one after the other: the second gets the password typed
    // for the first.
    let last = cmd.len() - 1;
    cmd[last] = hosts.join(",");
    cmd.extend(["--sudo".into(), "--".into(), "whoami".into()]);
    let pane = Pane::start(&cmd);
    pane.wait_for("sudo password: ");
    let password = var("TWILL_TEST_SUDO_PASSWORD");
    pane.type_line(&password);
    let shown = pane.wait_for("EXIT:");
    assert!(shown.contains("EXIT:0"), "{shown}");
    // One answer typed, two hosts served.
    assert_eq!(shown.matches("out: root").count(), 2, "{shown}");
    assert!(
        !shown.contains(&password),
        "the password was shown:\n{shown}"
    );
}

//! The local terminal and standard input of remote commands. At a
//! terminal, a password that is needed and not set is asked for, hidden, as
//! Fabric does; keys go to the remote command as they are typed, the
//! terminal comes back as it was, a window size change reaches the remote
//! pty, `open_shell` is a shell, and an unknown host key is asked about as
//! OpenSSH asks. The `twill` binary (or a child copy of this test binary)
//! runs in a tmux pane; the tests read the pane and type. Standard input
//! that is not a terminal is passed on and its end ends the command's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twill::{open_shell, puts, run, run_with, with_settings, ErrorKind, Prompt, RunOptions};

use crate::support::{
    child_command, cli_options, cli_options_with, host_for, is_child, port, text, twill, unique,
    var, RemoteDir,
};

/// A tmux server of its own running one command in a pane, killed
/// afterwards, its socket in a temporary directory removed with it. When
/// the command ends the pane shows `EXIT:<code>` and the terminal's modes
/// (`stty -a`), then waits.
pub(crate) struct Pane {
    socket: String,
    _dir: tempfile::TempDir,
}

impl Pane {
    pub(crate) fn start(command: &[String]) -> Pane {
        let dir = tempfile::Builder::new()
            .prefix(&unique("twill-tmux-"))
            .tempdir()
            .unwrap();
        let socket = dir.path().join("socket").to_string_lossy().into_owned();
        let shell_line = command
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let status = Command::new("tmux")
            .args(["-S", &socket, "new-session", "-d", "-x", "200", "-y", "50"])
            .arg(format!(
                "{shell_line}; echo EXIT:$?; echo MODES: $(stty -a); sleep 60"
            ))
            .status()
            .unwrap();
        assert!(status.success(), "tmux did not start");
        Pane { socket, _dir: dir }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    pub(crate) fn text(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-200"])
    }

    /// Waits until the pane shows `needle` `n` times; returns what it shows.
    pub(crate) fn wait_for_n(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if text.matches(needle).count() >= n {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {needle:?} ({n} times); the pane shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ids of the window's panes (`%0` is the first).
    pub(crate) fn panes(&self) -> Vec<String> {
        self.tmux(&["list-panes", "-F", "#{pane_id}"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// What the pane `id` shows.
    pub(crate) fn text_of(&self, id: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", id])
    }

    /// Types `text`, then Enter, in the pane `id`.
    pub(crate) fn type_line_in(&self, id: &str, text: &str) {
        self.tmux(&["send-keys", "-t", id, "-l", text]);
        self.tmux(&["send-keys", "-t", id, "Enter"]);
    }

    pub(crate) fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Waits until the pane no longer shows `needle`.
    pub(crate) fn wait_for_gone(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if !text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never went away; the pane shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` as it is.
    pub(crate) fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    /// Presses keys by tmux's names (`Enter`, `C-c`, `C-d`).
    pub(crate) fn press(&self, key: &str) {
        self.tmux(&["send-keys", key]);
    }

    pub(crate) fn type_line(&self, line: &str) {
        self.type_text(line);
        self.press("Enter");
    }

    /// The terminal's modes right now, as `stty -a` shows them.
    pub(crate) fn modes_now(&self) -> String {
        let tty = self.tmux(&["display-message", "-p", "#{pane_tty}"]);
        let out = Command::new("stty")
            .args(["-a", "-F", tty.trim()])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// Waits until the terminal's modes show `flag` (`-echo`: echo off).
    fn wait_for_mode(&self, flag: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.modes_now().split_whitespace().any(|w| w == flag) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {flag}: {}",
                self.modes_now()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command's end; its exit code and the modes the
    /// terminal was left in.
    pub(crate) fn wait_for_exit(&self) -> (i32, String, String) {
        let shown = self.wait_for("MODES:");
        let code = shown
            .split("EXIT:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no exit code in:\n{shown}"));
        let modes = shown.split("MODES:").nth(1).unwrap().to_string();
        (code, modes, shown)
    }

    /// Waits for the command's end, checks that it exited with `code` and
    /// left the terminal as a shell gives it; returns what the pane shows.
    pub(crate) fn exits_with(&self, code: i32) -> String {
        let (got, modes, shown) = self.wait_for_exit();
        assert_eq!(got, code, "{shown}");
        assert_cooked(&modes);
        shown
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .status();
    }
}

/// Whether `stty -a` output shows `flag` set (not `-flag`).
fn mode_set(modes: &str, flag: &str) -> bool {
    modes.split_whitespace().any(|w| w == flag)
}

/// The modes a shell gives a terminal: whole lines, echoed, Ctrl-C a
/// signal.
fn assert_cooked(modes: &str) {
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(mode_set(modes, flag), "{flag} is off: {modes}");
    }
}

fn twill_binary() -> String {
    assert_cmd::cargo::cargo_bin("twill")
        .to_string_lossy()
        .into_owned()
}

/// The `twill` binary with `options`, reaching `hosts`, with `extra`
/// options, running `command`.
pub(crate) fn twill_line(
    options: Vec<String>,
    hosts: &str,
    extra: &[&str],
    command: &str,
) -> Vec<String> {
    let mut line = vec![twill_binary()];
    line.extend(options);
    line.extend(["-H".into(), hosts.into()]);
    line.extend(extra.iter().map(|s| s.to_string()));
    line.extend(["--".into(), command.into()]);
    line
}

/// The `twill` binary reaching the server as the plain test user with the
/// key, with `extra` options, running `command`.
fn twill_running(extra: &[&str], command: &str) -> Vec<String> {
    let host = host_for(&var("TWILL_TEST_USER"));
    twill_line(cli_options(true), &host, extra, command)
}

/// The command line of a child copy of this test binary running only
/// `test_name`, for a pane.
fn child_line(test_name: &str) -> Vec<String> {
    let child = child_command(test_name);
    let mut line = vec!["env".to_string()];
    for (key, value) in child.get_envs() {
        let key = key.to_string_lossy().into_owned();
        match value {
            Some(v) => line.push(format!("{key}={}", v.to_string_lossy())),
            None => line.extend(["-u".to_string(), key]),
        }
    }
    line.push(child.get_program().to_string_lossy().into_owned());
    line.extend(child.get_args().map(|a| a.to_string_lossy().into_owned()));
    line
}

#[test]
fn a_missing_login_password_is_asked_for_hidden() {
    let host = host_for(&var("TWILL_TEST_USER"));
    let pane = Pane::start(&twill_line(cli_options(false), &host, &[], "whoami"));
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
    // Two hosts, one after the other: the second gets the password typed
    // for the first.
    let cmd = twill_line(cli_options(true), &hosts.join(","), &["--sudo"], "whoami");
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

#[test]
fn a_question_is_shown_and_answered_at_the_terminal() {
    let pane = Pane::start(&twill_running(&[], "read -p 'Name? ' n; echo hello $n"));
    // The unfinished line shows before anything is typed.
    pane.wait_for("out: Name? ");
    pane.type_line("bob");
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: Name? bob"), "{shown}");
    assert!(shown.contains("out: hello bob"), "{shown}");
}

#[test]
fn a_hidden_question_never_shows_what_is_typed() {
    const NAME: &str = "terminal::a_hidden_question_never_shows_what_is_typed";
    if is_child(NAME) {
        let secret = Prompt::new("Vault token?").hidden(true).ask().unwrap();
        puts(&format!("a token of {} characters", secret.len()));
        std::process::exit(0);
    }
    let pane = Pane::start(&child_line(NAME));
    pane.wait_for("Vault token? ");
    pane.wait_for_mode("-echo");
    pane.type_line("s3cret-t0ken");
    let shown = pane.exits_with(0);
    assert!(shown.contains("a token of 12 characters"), "{shown}");
    assert!(!shown.contains("s3cret"), "the answer was shown:\n{shown}");
}

#[test]
fn keys_go_as_typed_and_the_terminal_is_put_back() {
    let pane = Pane::start(&twill_running(&[], "cat; echo cat ended"));
    pane.wait_for("run: cat");
    // While the command runs, the terminal is in cbreak mode: no line
    // editing, no local echo, Ctrl-C still a signal.
    let deadline = Instant::now() + Duration::from_secs(30);
    let during = loop {
        let modes = pane.modes_now();
        if mode_set(&modes, "-icanon") || Instant::now() > deadline {
            break modes;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for flag in ["-icanon", "-echo", "isig"] {
        assert!(
            mode_set(&during, flag),
            "not {flag} while cat runs: {during}"
        );
    }
    pane.type_line("hello there");
    // The remote pty's echo, and cat's copy.
    pane.wait_for_n("out: hello there", 2);
    // Ctrl-D goes to the remote pty, which ends cat's input.
    pane.press("C-d");
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: cat ended"), "{shown}");
}

#[test]
fn a_full_screen_program_gets_its_keys_and_gives_the_terminal_back() {
    let pane = Pane::start(&twill_running(
        &[],
        "seq 1 200 > /tmp/twill-less-$$; less /tmp/twill-less-$$; rm /tmp/twill-less-$$; echo less ended",
    ));
    pane.wait_for("out: 10");
    // A page down, then quit.
    pane.type_text(" ");
    pane.wait_for("out: 60");
    pane.type_text("q");
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: less ended"), "{shown}");
}

#[test]
fn ctrl_c_stops_the_command_and_the_terminal_is_put_back() {
    let pane = Pane::start(&twill_running(&[], "cat"));
    pane.wait_for("run: cat");
    pane.type_line("first");
    pane.wait_for_n("out: first", 2);
    pane.press("C-c");
    pane.exits_with(130);
}

#[test]
fn ctrl_c_outside_any_execute_ends_the_process_with_the_terminal_put_back() {
    const NAME: &str =
        "terminal::ctrl_c_outside_any_execute_ends_the_process_with_the_terminal_put_back";
    if is_child(NAME) {
        // No `execute`: Ctrl-C ends the process, which does not unwind.
        let _ = with_settings(twill(), || run("cat"));
        puts("run returned");
        std::process::exit(0);
    }
    let pane = Pane::start(&child_line(NAME));
    pane.wait_for("run: cat");
    pane.type_line("first");
    pane.wait_for_n("out: first", 2);
    pane.press("C-c");
    let shown = pane.exits_with(130);
    assert!(!shown.contains("run returned"), "{shown}");
}

#[test]
fn without_a_pty_lines_go_echoed_by_the_terminal_and_ctrl_d_ends_them() {
    let pane = Pane::start(&twill_running(&["--no-pty"], "cat; echo cat ended"));
    pane.wait_for("run: cat");
    pane.type_line("a line");
    // The terminal's own echo, then cat's copy.
    pane.wait_for("out: a line");
    let shown = pane.text();
    assert!(shown.contains("\na line\n"), "{shown}");
    pane.press("C-d");
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: cat ended"), "{shown}");
}

#[test]
fn echo_stdin_false_types_without_an_echo() {
    let pane = Pane::start(&twill_running(
        &["--no-pty", "--set", "echo_stdin=false"],
        "read x; echo got $x",
    ));
    pane.wait_for("run: read x");
    // twill turns the echo off just after that line; keys typed before
    // would be echoed by the terminal itself.
    pane.wait_for_mode("-echo");
    pane.type_line("unseen");
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: got unseen"), "{shown}");
    assert_eq!(shown.matches("unseen").count(), 1, "{shown}");
}

#[test]
fn remote_interrupt_sends_ctrl_c_to_the_remote_program() {
    let pane = Pane::start(&twill_running(
        &["--set", "remote_interrupt=true"],
        "trap 'echo caught' INT; echo ready; sleep 30; echo after",
    ));
    pane.wait_for("out: ready");
    std::thread::sleep(Duration::from_millis(300));
    pane.press("C-c");
    let shown = pane.exits_with(0);
    // The remote pty echoes the key as `^C`.
    assert!(shown.contains("caught"), "{shown}");
    assert!(shown.contains("out: after"), "{shown}");
}

#[test]
fn a_window_size_change_reaches_the_remote_pty() {
    let pane = Pane::start(&twill_running(
        &[],
        "trap 'stty size; exit 0' WINCH; stty size; echo ready; for i in $(seq 300); do sleep 0.1; done; exit 9",
    ));
    let shown = pane.wait_for("out: ready");
    assert!(shown.contains("out: 50 200"), "{shown}");
    pane.tmux(&["resize-window", "-x", "120", "-y", "40"]);
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: 40 120"), "{shown}");
}

#[test]
fn open_shell_runs_a_command_then_takes_keys_and_ctrl_c() {
    const NAME: &str = "terminal::open_shell_runs_a_command_then_takes_keys_and_ctrl_c";
    if is_child(NAME) {
        let result = with_settings(twill(), || open_shell("echo shell-$((6*7))"));
        puts(&format!("open_shell returned {}", result.is_ok()));
        std::process::exit(0);
    }
    let pane = Pane::start(&child_line(NAME));
    pane.wait_for("shell-42");
    pane.type_line("echo typed-$((2+3))");
    pane.wait_for("typed-5");
    // Ctrl-C reaches the remote shell's sleep, not this process.
    pane.type_line("sleep 30; echo slept");
    std::thread::sleep(Duration::from_millis(500));
    pane.press("C-c");
    pane.type_line("echo back-$((1+1))");
    pane.wait_for("back-2");
    pane.type_line("exit");
    let shown = pane.exits_with(0);
    assert!(shown.contains("open_shell returned true"), "{shown}");
    assert!(!shown.contains("\nslept"), "{shown}");
    assert!(
        !shown.contains("out: "),
        "open_shell prints raw output:\n{shown}"
    );
}

/// `vim.tiny` (Debian's vim-tiny, which scripts/ensure-deps.sh installs):
/// a full-screen editor that reads keys one by one, Escape included.
const VIM: &str = "vim.tiny -u NONE -N";

#[test]
fn tty_gives_vim_a_real_terminal_and_what_is_typed_is_saved() {
    let dir = RemoteDir::new();
    let file = dir.path("typed.txt");
    let pane = Pane::start(&twill_running(&["--tty"], &format!("{VIM} {file}")));
    // vim's screen for a file not there yet.
    pane.wait_for("[New");
    // Raw mode, as OpenSSH's `ssh -t` sets it: keys one by one, no
    // local echo, Ctrl-C a key for the remote program.
    let modes = pane.modes_now();
    for flag in ["-icanon", "-echo", "-isig"] {
        assert!(mode_set(&modes, flag), "not {flag} while vim runs: {modes}");
    }
    pane.type_text("i");
    pane.wait_for("-- INSERT --");
    pane.type_text("typed in vim");
    pane.wait_for("typed in vim");
    pane.press("Escape");
    pane.wait_for_gone("-- INSERT --");
    pane.type_text(":wq");
    pane.press("Enter");
    let shown = pane.exits_with(0);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "typed in vim\n",
        "{shown}"
    );
    // The usual line came first (vim drew on a screen of its own).
    assert!(shown.contains(&format!("run: {VIM} {file}")), "{shown}");
    assert!(!shown.contains("out: "), "raw output only:\n{shown}");
}

#[test]
fn tty_gives_the_local_terminal_type_and_a_nonzero_exit_is_fabrics_failure() {
    let mut line: Vec<String> = ["env", "TERM=xterm-256color"].map(String::from).to_vec();
    line.extend(twill_running(
        &["--tty"],
        "echo term=$TERM; stty size; exit 3",
    ));
    let pane = Pane::start(&line);
    let shown = pane.exits_with(1);
    // The local terminal's type and size (`vt100` without --tty), written
    // raw.
    assert!(shown.contains("\nterm=xterm-256color"), "{shown}");
    assert!(shown.contains("\n50 200"), "{shown}");
    assert!(!shown.contains("out: "), "{shown}");
    assert!(
        shown.contains("run() received nonzero return code 3 while executing!"),
        "{shown}"
    );
    assert!(
        shown.contains("Requested: echo term=$TERM; stty size; exit 3"),
        "{shown}"
    );
}

#[test]
fn an_interactive_run_writes_raw_keeps_nothing_and_judges_the_exit_code() {
    const NAME: &str =
        "terminal::an_interactive_run_writes_raw_keeps_nothing_and_judges_the_exit_code";
    if is_child(NAME) {
        // Only on a pty does it print.
        let command = "test -t 0 && test -t 1 && echo raw-$((6*7)); exit 4";
        let interactive = RunOptions::new().interactive(true);
        with_settings(twill(), || {
            let out = run_with(command, &interactive.clone().warn_only(true)).unwrap();
            puts(&format!(
                "code={} failed={} stdout={:?} stderr={:?}",
                out.return_code(),
                out.failed(),
                out.stdout(),
                out.stderr()
            ));
            puts(&format!(
                "real as usual: {}",
                out.real_command() == RunOptions::new().real_command(command)
            ));
            let err = run_with(command, &interactive).unwrap_err();
            puts(&format!(
                "error: {:?} {:?}",
                err.kind() == ErrorKind::CommandFailed,
                err.exit_code()
            ));
        });
        std::process::exit(0);
    }
    let out = child_command(NAME).stdin(Stdio::null()).output().unwrap();
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert_eq!(shown.matches("] run: test -t 0").count(), 2, "{shown}");
    assert_eq!(shown.matches("\nraw-42").count(), 2, "{shown}");
    assert!(!shown.contains("out: "), "{shown}");
    assert!(
        shown.contains("code=4 failed=true stdout=\"\" stderr=\"\""),
        "{shown}"
    );
    assert!(shown.contains("real as usual: true"), "{shown}");
    assert!(shown.contains("error: true Some(4)"), "{shown}");
}

#[test]
fn interactive_sudo_answers_its_own_prompt_off_screen() {
    let host = host_for(&var("TWILL_TEST_SUDOPW_USER"));
    let line = twill_line(cli_options(true), &host, &["--sudo", "--tty"], "whoami");
    let password = var("TWILL_TEST_SUDO_PASSWORD");
    let (code, shown) = fed(&line, &[("TWILL_SUDO_PASSWORD", password.clone())], None);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("\nroot"), "{shown}");
    // The setting's prompt is shown, not the call's marker; never the
    // password.
    assert_eq!(shown.matches("sudo password:").count(), 1, "{shown}");
    assert!(!shown.contains("sudo password: ["), "{shown}");
    assert!(!shown.contains(&password), "{shown}");
    // A wrong one is Fabric's rejected password, not a hang.
    let (code, shown) = fed(&line, &[("TWILL_SUDO_PASSWORD", "wrong".into())], None);
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("the sudo password was rejected while executing 'whoami'"),
        "{shown}"
    );
}

#[test]
fn abort_on_prompts_fails_fast_instead_of_waiting() {
    let started = Instant::now();
    let pane = Pane::start(&twill_running(
        &["--abort-on-prompts"],
        "read -p 'Name? ' n || exit 3; echo hello $n",
    ));
    let shown = pane.exits_with(1);
    assert!(started.elapsed() < Duration::from_secs(20), "{shown}");
    assert!(
        shown.contains("Needed to prompt for 'Name?' (host: "),
        "{shown}"
    );
    assert!(
        shown.contains("but abort-on-prompts was set to True"),
        "{shown}"
    );
}

/// The `twill` binary reaching the server with `known_hosts` as its
/// known_hosts file, running `whoami`; with the test key when `key`, else
/// with a password asked for.
fn twill_with_known_hosts(known_hosts: &std::path::Path, key: bool) -> Vec<String> {
    let options = cli_options_with(key, &known_hosts.display().to_string());
    twill_line(options, &host_for(&var("TWILL_TEST_USER")), &[], "whoami")
}

/// The server's host keys, as `type base64` pairs.
fn server_keys() -> Vec<String> {
    std::fs::read_to_string(var("TWILL_TEST_KNOWN_HOSTS"))
        .unwrap()
        .lines()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn an_unknown_host_key_is_asked_about_and_recorded_on_yes() {
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    // No key: once the host key is accepted, the login password is asked
    // for too.
    let pane = Pane::start(&twill_with_known_hosts(&known_hosts, false));
    let entry = format!("[{}]:{}", var("TWILL_TEST_HOST"), port());
    let shown =
        pane.wait_for("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
    assert!(
        shown.contains(&format!(
            "The authenticity of host '{entry}' can't be established."
        )),
        "{shown}"
    );
    assert!(shown.contains(" key fingerprint is SHA256:"), "{shown}");
    // Anything else is asked again.
    pane.type_line("maybe");
    pane.wait_for("Please type 'yes', 'no' or the fingerprint: ");
    pane.type_line("yes");
    pane.wait_for("Login password for 'twill': ");
    pane.type_line(&var("TWILL_TEST_PASSWORD"));
    let (code, _, shown) = pane.wait_for_exit();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("out: twill"), "{shown}");
    assert!(
        shown.contains(&format!("Warning: Permanently added '{entry}' (")),
        "{shown}"
    );
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 1, "{recorded}");
    let (name, key) = lines[0].split_once(' ').unwrap();
    assert_eq!(name, entry);
    assert!(server_keys().iter().any(|k| k == key), "{recorded}");
}

#[test]
fn an_unknown_host_key_refused_at_the_terminal_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let pane = Pane::start(&twill_with_known_hosts(&known_hosts, true));
    pane.wait_for("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
    pane.type_line("no");
    let shown = pane.exits_with(1);
    assert!(shown.contains("Host key verification failed"), "{shown}");
    assert!(!shown.contains("out: twill"), "{shown}");
    assert!(!known_hosts.exists(), "something was recorded");
}

/// Runs the `twill` binary with `input` on its standard input (`None`:
/// /dev/null) and returns its exit code and output, failing if it takes
/// longer than 30 seconds (a command left waiting for input).
fn twill_fed(extra: &[&str], command: &str, input: Option<&str>) -> (i32, String) {
    fed(&twill_running(extra, command), &[], input)
}

/// Runs `line` with `env` added and `input` on its standard input (`None`:
/// /dev/null); see [`twill_fed`].
fn fed(line: &[String], env: &[(&str, String)], input: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(&line[0]);
    cmd.args(&line[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = input {
        // Written and closed: the end of the input comes after it.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "twill still ran after 30 seconds, waiting for input:\n{}",
                text(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (code, text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn piped_input_reaches_the_command_and_its_end_ends_the_input() {
    // With a pty (the default): a question answered from the pipe.
    let (code, shown) = twill_fed(&[], "read x; echo got $x", Some("y\n"));
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("out: got y"), "{shown}");
    // The end of the pipe ends the input of a command that reads it all,
    // with a pty (an unfinished last line included) and without.
    let (code, shown) = twill_fed(&[], "cat; echo cat ended", Some("a\nb"));
    assert_eq!(code, 0, "{shown}");
    // (The pty's echo and cat's copy may share a line.)
    assert!(shown.contains("cat ended"), "{shown}");
    let (code, shown) = twill_fed(&["--no-pty"], "cat; echo cat ended", Some("a\nb\n"));
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("out: a\n")
            && shown.contains("out: b\n")
            && shown.contains("out: cat ended"),
        "{shown}"
    );
    // Nothing to read: end-of-file at once.
    let (code, shown) = twill_fed(&[], "cat; echo cat ended", None);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("out: cat ended"), "{shown}");
}

#[test]
fn prompts_are_answered_as_fabric_answers_them() {
    let long_key = "x".repeat(600);
    with_settings(
        twill().command_timeout(Duration::from_secs(20)).prompts([
            ("Continue? ", "yes"),
            ("Proceed?", "sure"),
            (long_key.as_str(), "long"),
        ]),
        || {
            // The end of the output matched: answered, and the prompt left
            // out of what is captured.
            let out = run("read -p 'Continue? ' x; echo got $x").unwrap();
            assert!(out.stdout().contains("got yes"), "{out:?}");
            assert!(!out.stdout().contains("Continue?"), "{out:?}");
            // At a line break inside a chunk, as Fabric looks.
            let out = run("printf 'Proceed?\\nmore\\n'; read x; echo got $x").unwrap();
            assert!(out.stdout().contains("got sure"), "{out:?}");
            // A prompt longer than the usual tail.
            let out = run(format!("printf '{long_key}'; read x; echo got $x")).unwrap();
            assert!(out.stdout().contains("got long"), "{out:?}");
        },
    );
}

#[test]
fn sudo_input_waits_for_the_password_prompt() {
    let host = host_for(&var("TWILL_TEST_SUDOPW_USER"));
    let line = twill_line(cli_options(true), &host, &["--sudo"], "read x; echo got $x");
    let password = ("TWILL_SUDO_PASSWORD", var("TWILL_TEST_SUDO_PASSWORD"));
    // sudo reads the password from the same input: the piped answer must
    // not go before it.
    let (code, shown) = fed(&line, std::slice::from_ref(&password), Some("answer\n"));
    assert_eq!(code, 0, "{shown}");
    // (sudo may relay the input through a pty of its own, which echoes it
    // once more.)
    assert!(shown.contains("got answer"), "{shown}");
    // The end of the input too, without a pty: cat ends after sudo has
    // its password.
    let line = twill_line(
        cli_options(true),
        &host,
        &["--sudo", "--no-pty"],
        "cat; echo cat ended",
    );
    let (code, shown) = fed(&line, &[password], None);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("cat ended"), "{shown}");
}

/// `-I` asks for the password, hidden, before anything runs, and that
/// answer serves sudo: no second question.
#[test]
fn initial_password_prompt_asks_once_before_anything_runs() {
    let mut command: Vec<String> = ["env", "-u", "TWILL_PASSWORD", "-u", "TWILL_SUDO_PASSWORD"]
        .map(String::from)
        .to_vec();
    command.extend(twill_line(
        cli_options(true),
        &host_for(&var("TWILL_TEST_SUDOPW_USER")),
        &["-I", "--sudo"],
        "whoami",
    ));
    let pane = Pane::start(&command);
    let asked = pane.wait_for("Initial value for env.password: ");
    assert!(!asked.contains("sudo: whoami"), "asked first: {asked}");
    pane.type_line(&var("TWILL_TEST_SUDO_PASSWORD"));
    let shown = pane.exits_with(0);
    assert!(shown.contains("out: root"), "{shown}");
    // The remote prompt shows as output (as in Fabric) and is answered;
    // nothing else asks.
    assert_eq!(shown.matches("Initial value").count(), 1, "{shown}");
    assert!(!shown.contains("Login password"), "{shown}");
    for line in shown.lines().filter(|l| l.contains("sudo password")) {
        assert!(line.contains("] out: sudo password"), "asked again: {line}");
    }
    assert!(!shown.contains(&var("TWILL_TEST_SUDO_PASSWORD")), "{shown}");
}

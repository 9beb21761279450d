//! Helpers shared by the tests: the local suite's, and through a `#[path]`
//! module the remote suite's too (`tests-remote/support.rs`).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in a child copy of a test binary to the one test it runs.
const CHILD_VAR: &str = "TWILL_TEST_CHILD";

/// Whether this process is the child copy started for `test_name`.
pub fn is_child(test_name: &str) -> bool {
    std::env::var(CHILD_VAR).as_deref() == Ok(test_name)
}

/// A command that runs only `test_name`, in a child copy of this test
/// binary, with `is_child(test_name)` true there. `NO_COLOR` is removed so
/// that output is the same whatever the caller's environment.
pub fn child_command(test_name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, test_name)
        .env_remove("NO_COLOR");
    c
}

/// Runs `body` in a child copy of this test binary and returns what the
/// child printed; in the child itself, runs `body` and exits.
///
/// Printed lines go to the process's real stdout/stderr, which the test
/// harness does not capture, so they are checked from outside.
pub fn in_child(test_name: &str, body: impl FnOnce()) -> std::process::Output {
    if is_child(test_name) {
        body();
        std::process::exit(0);
    }
    child_command(test_name).output().unwrap()
}

/// Carries a command line to a child copy of a test binary, its
/// arguments joined with `\u{1f}`.
const ARGS_VAR: &str = "TWILL_FIXTURE_ARGS";

/// A child copy of this test binary that runs a task list's command line
/// `args`: in that child (`is_child(test_name)`), calls `run` with the
/// command line, `program` first, and exits with the code it returns;
/// elsewhere returns the command that starts the child. The arguments
/// travel in an environment variable, since the child runs the calling
/// test from its start; empty ones are left out.
pub fn command_line_child(
    test_name: &str,
    program: &str,
    args: &[&str],
    run: impl FnOnce(Vec<String>) -> u8,
) -> Command {
    if is_child(test_name) {
        let argv = std::iter::once(program.to_string())
            .chain(
                std::env::var(ARGS_VAR)
                    .unwrap()
                    .split('\u{1f}')
                    .filter(|a| !a.is_empty())
                    .map(String::from),
            )
            .collect();
        std::process::exit(run(argv).into());
    }
    let mut c = child_command(test_name);
    c.env(ARGS_VAR, args.join("\u{1f}"));
    c
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether any process on this machine has `needle` in its command line.
pub fn process_running_with(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

/// A string of digits unique to this test run, for markers in process
/// lists, commands and file names: the tag, the process ID, a 0, and a
/// counter.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}0{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        // Field 4, the parent, is the second after the command name.
        if after.split_whitespace().nth(1) == Some(&pid.to_string()) {
            out.push(child);
        }
    }
    out
}

/// The command line of process `pid`, NULs as spaces.
fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| text(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Waits until `child` has `n` children (its parallel workers), and
/// returns the command lines (`/proc/<pid>/cmdline`, NULs as spaces) of
/// `child` and of each of them.
pub fn command_lines_with_workers(child: &mut Child, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let workers = children_of(child.id());
        if workers.len() >= n || Instant::now() > deadline {
            assert!(workers.len() >= n, "{n} workers did not start");
            return std::iter::once(child.id())
                .chain(workers)
                .map(command_line)
                .collect();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the process ended before its workers were seen: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose standard input is `input`, running `body`;
/// returns its exit code and what it printed.
pub fn fed(name: &str, input: &str, body: impl FnOnce()) -> (i32, String) {
    if is_child(name) {
        body();
        std::process::exit(0);
    }
    let (code, shown) = run_fed(child_command(name), input);
    (code.unwrap_or(-1), shown)
}

/// Runs `command` with `input` as its standard input; its exit code (none
/// after a signal) and what it printed on standard output, then error.
pub fn run_fed(mut command: Command, input: &str) -> (Option<i32>, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

//! Helpers shared by the tests.

use std::process::Command;

/// Runs `body` in a child copy of this test binary and returns what the
/// child printed; in the child itself, runs `body` and exits.
///
/// Printed lines go to the process's real stdout/stderr, which the test
/// harness does not capture, so they are checked from outside.
pub fn in_child(test_name: &str, body: impl FnOnce()) -> std::process::Output {
    if std::env::var("TWILL_IT_CHILD").as_deref() == Ok(test_name) {
        body();
        std::process::exit(0);
    }
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("TWILL_IT_CHILD", test_name)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
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

/// A string unique to this test run, for markers in process lists and files.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

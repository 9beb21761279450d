//! Reaching the throwaway server.

use std::process::Command;

use twill::Settings;

/// A `TWILL_TEST_*` variable of the throwaway server.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test server with ./project_tests.sh (or source /tmp/twill-sshd/env.sh)")
    })
}

pub fn port() -> String {
    var("TWILL_TEST_PORT")
}

/// `user@127.0.0.1:PORT`.
pub fn host_for(user: &str) -> String {
    format!("{user}@{}:{}", var("TWILL_TEST_HOST"), port())
}

/// Settings that reach the server as `user` with the ed25519 key and
/// strict host key checking against the server's known_hosts.
pub fn as_user(user: &str) -> Settings {
    Settings::new()
        .host_string(host_for(user))
        .key_filename([var("TWILL_TEST_KEY")])
        .known_hosts(var("TWILL_TEST_KNOWN_HOSTS"))
        .no_agent(true)
        .no_keys(true)
        .use_ssh_config(false)
}

/// The plain test user.
pub fn twill() -> Settings {
    as_user(&var("TWILL_TEST_USER"))
}

/// Runs `body` in a child copy of this test binary and returns what it
/// printed (printed lines bypass the test harness's capture).
pub fn in_child(test_name: &str, body: impl FnOnce()) -> std::process::Output {
    if std::env::var("TWILL_REMOTE_CHILD").as_deref() == Ok(test_name) {
        body();
        std::process::exit(0);
    }
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("TWILL_REMOTE_CHILD", test_name)
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A string unique to this test run.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}0{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Bytes that do not repeat in any short period (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

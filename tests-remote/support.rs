//! Reaching the throwaway server.

use twill::{with_settings, Settings};

// The local suite's helpers: children of this test binary, text, unique
// names, processes.
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod common;
pub use common::{
    child_command, command_line_child, command_lines_with_workers, in_child, is_child,
    process_running_with, run_fed, text, unique,
};

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

/// Command line options that reach the throwaway server: its known_hosts,
/// no ssh_config, no agent, no default keys, and the test key when `key`.
pub fn cli_options(key: bool) -> Vec<String> {
    cli_options_with(key, &var("TWILL_TEST_KNOWN_HOSTS"))
}

/// [`cli_options`] with `known_hosts` as the known_hosts file.
pub fn cli_options_with(key: bool, known_hosts: &str) -> Vec<String> {
    let mut args = Vec::new();
    if key {
        args.extend(["-i".to_string(), var("TWILL_TEST_KEY")]);
    }
    args.extend([
        "-a".to_string(),
        "-k".to_string(),
        "--set".to_string(),
        format!("known_hosts={known_hosts},use_ssh_config=false"),
    ]);
    args
}

/// The example program `name`, built once if this test run did not build
/// the examples.
pub fn example(name: &str) -> std::path::PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join(name).exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "building the {name} example failed");
    }
    dir.join(name)
}

/// A fresh remote directory for one test (made by the plain user, or by
/// root through sudo), removed afterwards. The server runs on this
/// machine, so it is read through the file system too.
pub struct RemoteDir(pub String);

impl RemoteDir {
    pub fn new() -> RemoteDir {
        RemoteDir(
            with_settings(twill(), || twill::run("mktemp -d"))
                .unwrap()
                .to_string(),
        )
    }

    pub fn owned_by_root() -> RemoteDir {
        RemoteDir(
            with_settings(as_user(&var("TWILL_TEST_SUDO_USER")), || {
                twill::sudo("mktemp -d")
            })
            .unwrap()
            .to_string(),
        )
    }

    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.0)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn has(&self, rel: &str) -> bool {
        std::path::Path::new(&self.path(rel)).exists()
    }

    /// The file's text as the plain user reads it on the server.
    pub fn cat(&self, rel: &str) -> String {
        with_settings(twill(), || twill::run(format!("cat '{}/{rel}'", self.0)))
            .unwrap()
            .to_string()
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rm")
            .args(["-rf", &self.0])
            .status();
    }
}

/// A small tmpfs (64 KiB, every user may write) mounted on a path of the
/// server (made if missing), unmounted afterwards.
pub struct Tmpfs(pub String);

impl Tmpfs {
    pub fn mount(at: String) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", &at])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {at}");
        Tmpfs(at)
    }

    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.0)
    }

    /// Makes the file system read-only from now on.
    pub fn remount_read_only(&self) {
        let ok = std::process::Command::new("mount")
            .args(["-o", "remount,ro", &self.0])
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {} read-only", self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A local tree to upload: `a.txt`, `b.log` and `sub/deeper/c.txt`.
pub fn local_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "beta\n").unwrap();
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    std::fs::write(dir.path().join("sub/deeper/c.txt"), "gamma\n").unwrap();
    dir
}

/// Waits until `check` holds, looking every 100 ms, for at most `seconds`;
/// fails with `what` otherwise.
pub fn wait_until(what: &str, seconds: u64, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

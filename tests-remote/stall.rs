//! A server that goes silent in the middle of a command or a transfer, as
//! a cut network cable or a firewall that drops packets makes it: the
//! keepalive ends the wait, Ctrl-C ends it at once, and an interrupted
//! upload leaves nothing behind, over SFTP and over SCP (the server
//! without an SFTP subsystem).
//!
//! The test runs twill in a child process, finds the sshd processes that
//! serve that child's connection (through the sockets in /proc: the server
//! runs on this machine) and stops them with SIGSTOP: the connection stays
//! open but nothing comes back.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use twill::{run, upload, with_settings, Execute};

use crate::support::{child_command, is_child, port, text, twill, unique, var, RemoteDir};

/// The socket inodes a process holds.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// `(local, remote, inode)` of every IPv4 TCP socket, addresses as in
/// /proc/net/tcp (`0100007F:08AE`).
fn tcp_sockets() -> Vec<(String, String, u64)> {
    fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f[1].to_string(), f[2].to_string(), f[9].parse().ok()?))
        })
        .collect()
}

/// The sshd processes serving `client`'s connections to the test server
/// at `port`.
fn server_processes(client: u32, port: &str) -> Vec<u32> {
    let port_hex = format!("{:04X}", port.parse::<u16>().unwrap());
    let mine = socket_inodes(client);
    let sockets = tcp_sockets();
    // The client's ends: local addresses of its sockets to the server port.
    let client_ends: Vec<String> = sockets
        .iter()
        .filter(|(_, remote, inode)| mine.contains(inode) && remote.ends_with(&port_hex))
        .map(|(local, _, _)| local.clone())
        .collect();
    let server_inodes: HashSet<u64> = sockets
        .iter()
        .filter(|(local, remote, _)| local.ends_with(&port_hex) && client_ends.contains(remote))
        .map(|(_, _, inode)| *inode)
        .collect();
    if server_inodes.is_empty() {
        return Vec::new();
    }
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != client)
        .filter(|pid| !socket_inodes(*pid).is_disjoint(&server_inodes))
        .collect()
}

fn signal(pids: &[u32], sig: libc::c_int) {
    for pid in pids {
        // SAFETY: plain syscall.
        unsafe { libc::kill(*pid as libc::pid_t, sig) };
    }
}

/// Server processes stopped for a test; resumed and ended afterwards.
struct Stopped(Vec<u32>);

impl Stopped {
    /// Waits until `child` has a connection to the server at `port`, then
    /// stops the processes serving it.
    fn server_of(child: u32, port: &str) -> Stopped {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pids = server_processes(child, port);
            if !pids.is_empty() {
                signal(&pids, libc::SIGSTOP);
                return Stopped(pids);
            }
            assert!(Instant::now() < deadline, "no connection from the child");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(&self.0, libc::SIGKILL);
        signal(&self.0, libc::SIGCONT);
    }
}

/// Waits for `child` to end, at most `limit`; kills it otherwise.
fn finish(mut child: Child, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (start.elapsed(), text(&out.stdout) + &text(&out.stderr));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the child still waited after {limit:?}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(name: &str, env: &[(&str, &str)]) -> Child {
    let mut c = child_command(name);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// What a child prints as its last word: the error kind of its run.
fn report(result: twill::Result<impl std::fmt::Debug>) {
    match result {
        Ok(v) => println!("RESULT ok {v:?}"),
        Err(e) => println!("RESULT {:?}: {e}", e.kind()),
    }
}

#[test]
fn a_silent_server_ends_a_command_by_the_keepalive() {
    let name = "stall::a_silent_server_ends_a_command_by_the_keepalive";
    if is_child(name) {
        let marker = std::env::var("MARKER").unwrap();
        let settings = match std::env::var("HOW").unwrap().as_str() {
            // Set in the settings.
            "settings" => twill().keepalive(Duration::from_secs(1)).keepalive_count(2),
            // From ssh_config: ServerAliveInterval and ServerAliveCountMax.
            _ => twill()
                .use_ssh_config(true)
                .ssh_config_path(std::env::var("CONFIG").unwrap()),
        };
        report(with_settings(settings, || {
            run(format!("echo ready; sleep 60.{marker}"))
        }));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    fs::write(
        &config,
        "Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
    )
    .unwrap();
    for how in ["settings", "ssh_config"] {
        let marker = unique("7");
        let child = spawn(
            name,
            &[
                ("MARKER", &marker),
                ("HOW", how),
                ("CONFIG", config.to_str().unwrap()),
            ],
        );
        wait_for_process(&format!("sleep 60.{marker}"));
        let stopped = Stopped::server_of(child.id(), &port());
        let (took, out) = finish(child, Duration::from_secs(30));
        drop(stopped);
        kill_matching(&format!("sleep 60.{marker}"));
        assert!(out.contains("RESULT Disconnected"), "{how}: {out}");
        assert!(out.contains("no answer to keepalive"), "{how}: {out}");
        assert!(took < Duration::from_secs(20), "{how}: took {took:?}");
    }
}

/// With nothing configured, keepalives are on: 15 seconds, 3 times.
#[test]
fn keepalives_are_on_by_default() {
    let name = "stall::keepalives_are_on_by_default";
    if is_child(name) {
        let marker = std::env::var("MARKER").unwrap();
        report(with_settings(twill(), || {
            run(format!("echo ready; sleep 120.{marker}"))
        }));
        return;
    }
    let marker = unique("8");
    let child = spawn(name, &[("MARKER", &marker)]);
    wait_for_process(&format!("sleep 120.{marker}"));
    let stopped = Stopped::server_of(child.id(), &port());
    let (took, out) = finish(child, Duration::from_secs(100));
    drop(stopped);
    kill_matching(&format!("sleep 120.{marker}"));
    assert!(out.contains("RESULT Disconnected"), "{out}");
    assert!(
        took >= Duration::from_secs(40),
        "15 s x 3 of silence, not less: {took:?}"
    );
}

/// A FIFO the child uploads from, so that the test decides when data
/// arrives; the directory holding it goes with it.
struct Fifo(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Fifo {
    fn new() -> Fifo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: plain syscall with a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        Fifo(path, dir)
    }

    /// Writes `n` bytes into the FIFO from a thread (the reader decides
    /// the pace), keeping it open until `close` is sent.
    fn feed(&self, n: usize) -> std::sync::mpsc::Sender<usize> {
        let path = self.0.clone();
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
            let _ = f.write_all(&vec![b'x'; n]);
            // More on request; 0 closes.
            while let Ok(more) = rx.recv() {
                if more == 0 {
                    break;
                }
                let _ = f.write_all(&vec![b'y'; more]);
            }
        });
        tx
    }
}

fn upload_child(name: &str) -> bool {
    if !is_child(name) {
        return false;
    }
    let source = std::env::var("SOURCE").unwrap();
    let target = std::env::var("TARGET").unwrap();
    let settings = match std::env::var("KEEPALIVE") {
        Ok(k) => twill()
            .keepalive(Duration::from_secs(k.parse().unwrap()))
            .keepalive_count(2),
        Err(_) => twill().keepalive(Duration::from_secs(300)),
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| port());
    let host = format!(
        "{}@{}:{port}",
        var("TWILL_TEST_USER"),
        var("TWILL_TEST_HOST"),
    );
    report(with_settings(settings, || {
        Execute::new("upload")
            .hosts([host])
            .run(|| upload(&source, &target).map(|_| ()))
    }));
    true
}

/// The unfinished uploads (`*.twill-upload-*.part`) in `dir`.
fn partial_files(dir: &RemoteDir) -> Vec<String> {
    fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".twill-upload-"))
        .collect()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a child's upload reads: a FIFO the test feeds, or a file.
trait Source {
    fn path(&self) -> &Path;

    /// The child has ended: stop feeding it.
    fn close(&self) {}
}

/// A FIFO and the sender that asks its feeding thread for more bytes (see
/// [`Fifo::feed`]).
struct Fed(Fifo, std::sync::mpsc::Sender<usize>);

impl Source for Fed {
    fn path(&self) -> &Path {
        &self.0 .0
    }

    fn close(&self) {
        let _ = self.1.send(0);
    }
}

/// A large sparse file in a directory of its own (SCP states the size
/// first, so its source is a file, not a FIFO).
struct Sparse(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Source for Sparse {
    fn path(&self) -> &Path {
        &self.0
    }
}

/// An upload of `source` running in a child copy of this test binary, to
/// `big.bin` in a fresh remote directory.
struct Upload<S: Source> {
    dir: RemoteDir,
    child: Option<Child>,
    source: S,
    _one: Option<std::sync::MutexGuard<'static, ()>>,
}

impl<S: Source> Upload<S> {
    /// Starts the child (`keepalive` in seconds, else keepalives too slow
    /// to matter; `port` the server's, else the usual one) and waits until
    /// `under_way` says so of the remote directory.
    fn spawn(
        name: &str,
        source: S,
        port: Option<&str>,
        keepalive: Option<&str>,
        under_way: impl Fn(&RemoteDir) -> bool,
    ) -> Upload<S> {
        let dir = RemoteDir::new();
        let target = dir.path("big.bin");
        let mut env = vec![
            ("SOURCE", source.path().to_str().unwrap()),
            ("TARGET", target.as_str()),
        ];
        if let Some(p) = port {
            env.push(("PORT", p));
        }
        if let Some(k) = keepalive {
            env.push(("KEEPALIVE", k));
        }
        let child = spawn(name, &env);
        wait_for("the upload to be under way", || under_way(&dir));
        Upload {
            dir,
            child: Some(child),
            source,
            _one: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn interrupt(&self) {
        // SAFETY: plain syscall.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGINT) };
    }

    /// Waits for the child (see [`finish`]), then closes the source.
    fn finish(&mut self, limit: Duration) -> (Duration, String) {
        let result = finish(self.child.take().expect("running"), limit);
        self.source.close();
        result
    }

    /// Whether the upload left nothing behind: no unfinished file, no
    /// target.
    fn assert_nothing_left(&self, out: &str) {
        assert_eq!(partial_files(&self.dir), Vec::<String>::new(), "{out}");
        assert!(!self.dir.has("big.bin"), "the target was not made: {out}");
    }
}

impl Upload<Fed> {
    /// An upload over SFTP from a FIFO: fed `first` bytes, under way once
    /// its unfinished file appears.
    fn start(name: &str, keepalive: Option<&str>, first: usize) -> Upload<Fed> {
        let fifo = Fifo::new();
        // The feeding thread waits for the child to open the FIFO.
        let more = fifo.feed(first);
        Upload::spawn(name, Fed(fifo, more), None, keepalive, |dir| {
            !partial_files(dir).is_empty()
        })
    }

    /// Asks for `n` more bytes of the source.
    fn feed(&self, n: usize) -> Result<(), std::sync::mpsc::SendError<usize>> {
        self.source.1.send(n)
    }
}

impl Upload<Sparse> {
    /// An upload over SCP, to the server without an SFTP subsystem, of a
    /// 16 GiB sparse file: under way once its unfinished file on the
    /// server holds a MiB. Holds the lock of the tests on that server.
    fn scp(name: &str, keepalive: Option<&str>) -> Upload<Sparse> {
        let one = crate::scp::serial();
        let source = tempfile::tempdir().unwrap();
        let big = source.path().join("big.bin");
        fs::File::create(&big).unwrap().set_len(16 << 30).unwrap();
        let port = var("TWILL_TEST_NO_SFTP_PORT");
        let mut upload = Upload::spawn(name, Sparse(big, source), Some(&port), keepalive, |dir| {
            fs::read_dir(&dir.0).unwrap().flatten().any(|e| {
                e.file_name().to_string_lossy().contains(".twill-upload-")
                    && e.metadata().is_ok_and(|m| m.len() >= 1 << 20)
            })
        });
        upload._one = Some(one);
        upload
    }
}

#[test]
fn ctrl_c_ends_a_stalled_transfer_at_once() {
    let name = "stall::ctrl_c_ends_a_stalled_transfer_at_once";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::start(name, None, 4 << 20);
    let stopped = Stopped::server_of(upload.pid(), &port());
    // Enough to fill every buffer on the way, so that the child waits on
    // the server.
    upload.feed(16 << 20).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    upload.interrupt();
    let (took, out) = upload.finish(Duration::from_secs(30));
    drop(stopped);
    assert!(out.contains("RESULT Interrupted"), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {out}");
}

#[test]
fn a_silent_server_ends_a_transfer_by_the_keepalive() {
    let name = "stall::a_silent_server_ends_a_transfer_by_the_keepalive";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::start(name, Some("1"), 4 << 20);
    let stopped = Stopped::server_of(upload.pid(), &port());
    upload.feed(16 << 20).unwrap();
    let (took, out) = upload.finish(Duration::from_secs(40));
    drop(stopped);
    assert!(out.contains("RESULT Disconnected"), "{out}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {out}");
}

#[test]
fn an_interrupted_upload_leaves_nothing_behind() {
    let name = "stall::an_interrupted_upload_leaves_nothing_behind";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::start(name, None, 2 << 20);
    upload.interrupt();
    // The child may be waiting for more of its source: give it some.
    std::thread::sleep(Duration::from_millis(300));
    let _ = upload.feed(1 << 20);
    let (_, out) = upload.finish(Duration::from_secs(30));
    assert!(out.contains("RESULT Interrupted"), "{out}");
    upload.assert_nothing_left(&out);
}

#[test]
fn ctrl_c_ends_a_stalled_scp_transfer_at_once() {
    let name = "stall::ctrl_c_ends_a_stalled_scp_transfer_at_once";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::scp(name, None);
    let stopped = Stopped::server_of(upload.pid(), &var("TWILL_TEST_NO_SFTP_PORT"));
    std::thread::sleep(Duration::from_millis(500));
    upload.interrupt();
    let (took, out) = upload.finish(Duration::from_secs(30));
    drop(stopped);
    assert!(out.contains("RESULT Interrupted"), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {out}");
}

#[test]
fn a_silent_server_ends_an_scp_transfer_by_the_keepalive() {
    let name = "stall::a_silent_server_ends_an_scp_transfer_by_the_keepalive";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::scp(name, Some("1"));
    let stopped = Stopped::server_of(upload.pid(), &var("TWILL_TEST_NO_SFTP_PORT"));
    let (took, out) = upload.finish(Duration::from_secs(40));
    drop(stopped);
    assert!(out.contains("RESULT Disconnected"), "{out}");
    assert!(out.contains("no answer to keepalive"), "{out}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {out}");
}

#[test]
fn an_interrupted_scp_upload_leaves_nothing_behind() {
    let name = "stall::an_interrupted_scp_upload_leaves_nothing_behind";
    if upload_child(name) {
        return;
    }
    let mut upload = Upload::scp(name, None);
    upload.interrupt();
    let (took, out) = upload.finish(Duration::from_secs(30));
    assert!(out.contains("RESULT Interrupted"), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {out}");
    upload.assert_nothing_left(&out);
}

fn wait_for_process(needle: &str) {
    wait_for(needle, || crate::support::process_running_with(needle));
}

fn kill_matching(needle: &str) {
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .contains(needle)
        {
            // SAFETY: plain syscall.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

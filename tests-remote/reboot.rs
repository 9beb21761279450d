//! `reboot`: the test server cannot restart, so a reboot here is a
//! command that kills the sshd process serving its own connection (the
//! connection drops, as in a real reboot), and a host that stays away for
//! a while is a local TCP forwarder to the server that stops listening
//! when that connection drops and listens again later.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use twill::{reboot_with, run, with_settings, ErrorKind, RebootOptions, Settings};

use crate::support::{as_user, port, twill, var};

/// Kills the sshd process that serves this command's connection (the
/// first `sshd*` among its ancestors), then waits for the end.
pub(crate) const DROP_CONNECTION: &str = "pid=$$; while [ \"$pid\" -gt 1 ]; do \
    case \"$(ps -o comm= -p \"$pid\")\" in sshd*) kill -9 \"$pid\"; sleep 20; exit 0;; esac; \
    pid=$(ps -o ppid= -p \"$pid\" | tr -d ' '); done; exit 3";

/// The client's end of the connection, as the server sees it.
fn client_port() -> String {
    run("echo $SSH_CONNECTION")
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn reboot_through_sudo_reconnects_after_the_connection_drops() {
    let s = as_user(&var("TWILL_TEST_SUDO_USER")).host_string(format!(
        "{}@127.0.0.16:{}",
        var("TWILL_TEST_SUDO_USER"),
        port()
    ));
    with_settings(s, || {
        let before = client_port();
        let started = Instant::now();
        reboot_with(
            Duration::from_secs(30),
            &RebootOptions::new().command(DROP_CONNECTION),
        )
        .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(20),
            "Fabric's pause of 5 seconds, then a connection at once: {took:?}"
        );
        let after = client_port();
        assert_ne!(before, after, "a new connection");
        assert_eq!(run("whoami").unwrap(), var("TWILL_TEST_SUDO_USER"));
    });
}

/// A TCP forwarder on 127.0.0.1 to the test server that, once the first
/// connection through it is closed by the server, stops listening for
/// `outage` (connections are refused), then listens again.
struct Forwarder {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(outage: Duration) -> Forwarder {
        let upstream: SocketAddr = format!("127.0.0.1:{}", port()).parse().unwrap();
        // A port below the ephemeral range, so that no outgoing connection
        // takes it while nothing listens on it.
        // A port is never handed to two forwarders of this process: one
        // whose host is away has let its port go, and another test's
        // forwarder must not take it meanwhile.
        static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let base = 20000 + (std::process::id() % 5000) as u16;
        let (listener, port) = (0..2000)
            .map(|i| base + i * 3 % 10000)
            .filter(|p| !taken.contains(p))
            .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().map(|l| (l, p)))
            .expect("a free port for the forwarder");
        taken.push(port);
        drop(taken);
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            thread::spawn(move || {
                let mut listener = Some(listener);
                let mut outage_done = false;
                while !stop.load(Ordering::SeqCst) {
                    if !outage_done && dropped.load(Ordering::SeqCst) {
                        outage_done = true;
                        drop(listener.take());
                        let back = Instant::now() + outage;
                        while Instant::now() < back && !stop.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(20));
                        }
                        let deadline = Instant::now() + Duration::from_secs(5);
                        listener = loop {
                            match TcpListener::bind(("127.0.0.1", port)) {
                                Ok(l) => break Some(l),
                                Err(e) if Instant::now() > deadline => {
                                    panic!("the forwarder cannot listen again: {e}")
                                }
                                Err(_) => thread::sleep(Duration::from_millis(50)),
                            }
                        };
                    }
                    let l = listener.as_ref().unwrap();
                    l.set_nonblocking(true).unwrap();
                    match l.accept() {
                        Ok((client, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            client.set_nonblocking(false).unwrap();
                            let server = TcpStream::connect(upstream).unwrap();
                            pipe(client, server, dropped.clone());
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Forwarder {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// Settings that reach the test server through the forwarder, with a
    /// known_hosts file that knows the server's keys under its address.
    fn settings(&self, known: &tempfile::NamedTempFile) -> Settings {
        let own = format!("[127.0.0.1]:{} ", port());
        let lines: String = std::fs::read_to_string(var("TWILL_TEST_KNOWN_HOSTS"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix(&own))
            .map(|key| format!("[127.0.0.1]:{} {key}\n", self.port))
            .collect();
        std::fs::write(known.path(), lines).unwrap();
        twill()
            .host_string(format!("twill@127.0.0.1:{}", self.port))
            .known_hosts(known.path().to_str().unwrap())
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies bytes both ways between `client` and `server`; when the server
/// closes, closes the client's end too and raises `dropped`.
fn pipe(client: TcpStream, server: TcpStream, dropped: Arc<AtomicBool>) {
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    thread::spawn(move || copy(client, server));
    thread::spawn(move || {
        copy(s2, c2);
        dropped.store(true, Ordering::SeqCst);
    });
}

#[test]
fn reboot_waits_between_refused_attempts_until_the_host_is_back() {
    // Away for 12 s: 20 s give 4 attempts, 5 s apart after the first
    // pause (at 5, 10 and 15 s), so the third one finds the host back. Had
    // the attempts followed each other at once, all 4 would be refused.
    let fwd = Forwarder::start(Duration::from_secs(12));
    let known = tempfile::NamedTempFile::new().unwrap();
    with_settings(fwd.settings(&known), || {
        assert_eq!(run("echo up").unwrap(), "up");
        let started = Instant::now();
        reboot_with(
            Duration::from_secs(20),
            &RebootOptions::new()
                .command(DROP_CONNECTION)
                .use_sudo(false),
        )
        .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(12) && took < Duration::from_secs(19),
            "{took:?}"
        );
        assert_eq!(run("echo back").unwrap(), "back");
    });
    assert_eq!(fwd.accepted.load(Ordering::SeqCst), 2, "before and after");
}

#[test]
fn reboot_gives_up_when_the_host_stays_away() {
    let fwd = Forwarder::start(Duration::from_secs(120));
    let known = tempfile::NamedTempFile::new().unwrap();
    let host = format!("twill@127.0.0.1:{}", fwd.port);
    with_settings(fwd.settings(&known), || {
        assert_eq!(run("echo up").unwrap(), "up");
        let started = Instant::now();
        let err = reboot_with(
            Duration::from_secs(10),
            &RebootOptions::new()
                .command(DROP_CONNECTION)
                .use_sudo(false),
        )
        .unwrap_err();
        let took = started.elapsed();
        // 5 s pause, refused, 5 s pause, refused.
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(15),
            "{took:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert_eq!(err.host(), Some(host.as_str()));
        assert_eq!(err.command(), Some(DROP_CONNECTION));
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "reboot() of {host} after '{DROP_CONNECTION}': the host did not come back (2 attempts in 10 seconds); the last one failed: "
            )),
            "{msg}"
        );
        assert!(msg.ends_with("Connection refused"), "{msg}");
    });
    assert_eq!(fwd.accepted.load(Ordering::SeqCst), 1);
}

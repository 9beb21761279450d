//! Connections: authentication, host keys, ssh_config, jump hosts, faults.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use twill::{run, with_settings, ErrorKind, Settings};

use crate::support::{as_user, child_command, is_child, noise, port, twill, var};

fn temp_file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

/// An ssh_config file: `blocks`, then a `Host *` block that reaches the
/// test server as the plain user with `key` and strict host key checking.
fn ssh_config(blocks: &str, key: &str) -> tempfile::NamedTempFile {
    temp_file(&format!(
        "{blocks}\nHost *\n    User {}\n    Port {}\n    IdentityFile {}\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n",
        var("TWILL_TEST_USER"),
        port(),
        var(key),
        var("TWILL_TEST_KNOWN_HOSTS"),
    ))
}

/// `s` aimed at `alias`, an ssh_config alias of `address` with nothing
/// else said about it, so that the connection is one of its own (the cache
/// holds one per `user@host:port`). Keep the file alive while it is used.
fn aliased(s: Settings, alias: &str, address: &str) -> (Settings, tempfile::NamedTempFile) {
    let config = temp_file(&format!("Host {alias}\n    HostName {address}\n"));
    let s = s
        .use_ssh_config(true)
        .ssh_config_path(config.path().to_str().unwrap())
        .host_string(format!("twill@{alias}:{}", port()));
    (s, config)
}

/// Settings that reach `alias` with what `config` says and nothing else.
fn through_config(alias: &str, config: &tempfile::NamedTempFile) -> Settings {
    Settings::new()
        .host_string(alias)
        .use_ssh_config(true)
        .ssh_config_path(config.path().to_str().unwrap())
        .no_agent(true)
        .no_keys(true)
}

#[test]
fn every_key_type_and_an_encrypted_key() {
    for key in [
        "TWILL_TEST_KEY",
        "TWILL_TEST_KEY_RSA",
        "TWILL_TEST_KEY_ECDSA",
    ] {
        // A host alias of its own per key, so that no cached connection is
        // reused (and no other test's connection is closed).
        let (s, _config) = aliased(twill().key_filename([var(key)]), key, "127.0.0.3");
        with_settings(s, || {
            assert_eq!(run("whoami").unwrap(), "twill", "{key}");
        });
    }
    let s = twill()
        .key_filename([var("TWILL_TEST_KEY_ENCRYPTED")])
        .key_passphrase(var("TWILL_TEST_KEY_PASSPHRASE"))
        .host_string(format!("twill@127.0.0.4:{}", port()));
    with_settings(s, || assert_eq!(run("whoami").unwrap(), "twill"));
}

#[test]
fn password_authentication() {
    let s = twill()
        .key_filename(Vec::<String>::new())
        .password(var("TWILL_TEST_PASSWORD"))
        .host_string(format!("twill@127.0.0.5:{}", port()));
    with_settings(s, || assert_eq!(run("whoami").unwrap(), "twill"));
}

/// `user@127.0.0.6:PORT` for a user no other test of this process keeps a
/// connection for (the cache would answer in its place).
fn uncached(user_var: &str) -> String {
    format!("{}@127.0.0.6:{}", var(user_var), port())
}

#[test]
fn failed_authentication_is_an_auth_error() {
    let s = twill()
        .key_filename(Vec::<String>::new())
        .password("wrong-password")
        .host_string(uncached("TWILL_TEST_SUDOPW_USER"));
    with_settings(s, || {
        let err = run("true").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(err.to_string().contains("127.0.0.6"), "{err}");
        assert!(!err.to_string().contains("wrong-password"));
    });
}

#[test]
fn a_missing_key_file_is_a_key_file_error_naming_it() {
    let missing = "/nonexistent/twill-test-key";
    let s = twill()
        .key_filename([missing])
        .host_string(uncached("TWILL_TEST_SUDO_USER"));
    with_settings(s, || {
        let err = run("true").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyFile, "{err}");
        assert!(err.to_string().contains(missing), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
    });
    // A missing key among keys that work is no error.
    let s = twill()
        .key_filename([missing.to_string(), var("TWILL_TEST_KEY")])
        .host_string(uncached("TWILL_TEST_SUDO_USER"));
    with_settings(s, || {
        assert_eq!(run("whoami").unwrap(), var("TWILL_TEST_SUDO_USER").as_str())
    });
}

#[test]
fn unknown_host_key_is_refused_with_its_fingerprint() {
    let empty = temp_file("");
    let s = twill()
        .known_hosts(empty.path().to_str().unwrap())
        .host_string(format!("twill@127.0.0.7:{}", port()));
    with_settings(s.clone(), || {
        let err = run("true").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("SHA256:")
                && msg.contains("accept_new_host_keys")
                && msg.contains("127.0.0.7"),
            "{msg}"
        );
    });
    // A missing known_hosts file is no reason to skip the check.
    let s2 = s.clone().known_hosts("/nonexistent/known_hosts");
    with_settings(s2, || {
        assert_eq!(run("true").unwrap_err().kind(), ErrorKind::HostKey)
    });
    // Accepting new keys records the key; the next connection verifies against it.
    with_settings(s.clone().accept_new_host_keys(true), || {
        assert_eq!(run("whoami").unwrap(), "twill")
    });
    let recorded = std::fs::read_to_string(empty.path()).unwrap();
    assert!(recorded.contains("127.0.0.7"), "{recorded}");
    // A new connection (an alias of the same address) checks the recorded key.
    let (s, _config) = aliased(s, "recorded-key", "127.0.0.7");
    with_settings(s, || assert_eq!(run("whoami").unwrap(), "twill"));
}

#[test]
fn changed_host_key_is_always_refused() {
    // The server's host line with another key: the key of a different key pair.
    let other = std::fs::read_to_string(format!("{}.pub", var("TWILL_TEST_KEY"))).unwrap();
    let mut parts = other.split_whitespace();
    let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
    let wrong = temp_file(&format!("[127.0.0.8]:{} {kind} {key}\n", port()));
    let s = twill()
        .known_hosts(wrong.path().to_str().unwrap())
        .host_string(format!("twill@127.0.0.8:{}", port()));
    for accept in [false, true] {
        with_settings(s.clone().accept_new_host_keys(accept), || {
            let err = run("true").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
            assert!(err.to_string().to_lowercase().contains("changed"), "{err}");
        });
    }
}

#[test]
fn refused_port_fails_fast() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    with_settings(twill().host_string(format!("twill@{addr}")), || {
        let started = Instant::now();
        let err = run("true").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.to_string().contains(&addr.port().to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn silent_server_times_out_within_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and then says nothing.
    let _keep = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let s = twill()
        .host_string(format!("twill@{addr}"))
        .timeout(Duration::from_secs(1))
        .connection_attempts(2);
    with_settings(s, || {
        let started = Instant::now();
        let err = run("true").unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string().contains("2 times") || err.to_string().contains("tried 2"),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
            "{took:?}"
        );
    });
}

#[test]
fn ssh_config_aliases_are_honoured() {
    let config = ssh_config(
        "Host web-alias\n    HostName 127.0.0.9\n",
        "TWILL_TEST_KEY_RSA",
    );
    let s = through_config("web-alias", &config);
    with_settings(s, || {
        assert_eq!(run("whoami").unwrap(), "twill");
        assert_eq!(
            run("echo $SSH_CONNECTION | cut -d' ' -f3").unwrap(),
            "127.0.0.9"
        );
    });
}

/// Fabric names a connection by the host ssh_config resolves the alias to.
#[test]
fn disconnecting_names_the_resolved_host() {
    let name = "connect::disconnecting_names_the_resolved_host";
    let out = crate::support::in_child(name, || {
        let config = ssh_config(
            "Host resolved-alias\n    HostName 127.0.0.10\n",
            "TWILL_TEST_KEY",
        );
        with_settings(through_config("resolved-alias", &config), || {
            run("true").unwrap();
        });
        twill::disconnect_all();
    });
    let stdout = crate::support::text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Disconnecting from {}@127.0.0.10:{}... done.\n",
            var("TWILL_TEST_USER"),
            port()
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Disconnecting from resolved-alias"),
        "{stdout}"
    );
}

#[test]
fn through_a_jump_host() {
    let jump = format!("twill@127.0.0.1:{}", port());
    let s = twill()
        .gateway(jump)
        .host_string(format!("twill@127.0.0.10:{}", port()));
    with_settings(s, || {
        let out = run("echo $SSH_CONNECTION").unwrap();
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(
            fields[0], "127.0.0.1",
            "the connection comes from the jump host: {out}"
        );
        assert_eq!(fields[2], "127.0.0.10");
    });
}

#[test]
fn dropped_connection_is_an_error_and_the_next_call_reconnects() {
    let s = as_user(&var("TWILL_TEST_USER")).host_string(format!("twill@127.0.0.11:{}", port()));
    with_settings(s, || {
        assert_eq!(run("echo up").unwrap(), "up");
        let started = Instant::now();
        // Kill the sshd process (owned by the user) serving this very connection.
        let kill = "pid=$$; while [ \"$(ps -o comm= -p $pid)\" != sshd ]; do pid=$(ps -o ppid= -p $pid | tr -d ' '); done; kill -9 $pid; sleep 20";
        let err = run(kill).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(run("echo again").unwrap(), "again");
    });
}

#[test]
fn ssh_agent_authentication() {
    let name = "connect::ssh_agent_authentication";
    if is_child(name) {
        // In the child: SSH_AUTH_SOCK points at an agent holding the key.
        let s = twill()
            .key_filename(Vec::<String>::new())
            .no_agent(false)
            .host_string(format!("twill@127.0.0.12:{}", port()));
        with_settings(s.clone(), || assert_eq!(run("whoami").unwrap(), "twill"));
        twill::disconnect_all();
        let err = with_settings(s.no_agent(true), || run("true")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        println!("AGENT-OK");
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut agent);
    let started = Instant::now();
    while !sock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "ssh-agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(var("TWILL_TEST_KEY"))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let out = child_command(name)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("AGENT-OK"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn proxy_jump_from_ssh_config() {
    let config = ssh_config(
        "Host jump\n    HostName 127.0.0.1\n\nHost inner\n    HostName 127.0.0.13\n    ProxyJump jump\n",
        "TWILL_TEST_KEY",
    );
    let s = through_config("inner", &config);
    with_settings(s, || {
        let out = run("echo $SSH_CONNECTION").unwrap();
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!((fields[0], fields[2]), ("127.0.0.1", "127.0.0.13"), "{out}");
    });
}

#[test]
fn every_cipher_and_mac_carries_transfers_and_output_intact() {
    // One cipher and one MAC at a time, chosen through ssh_config, so that
    // each of the engine's encryption paths (whole-packet AES-CTR with and
    // without encrypt-then-MAC, AES-GCM, ChaCha20-Poly1305) carries
    // multi-packet traffic both ways.
    let combos = [
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
        ("aes256-ctr", "hmac-sha2-512"),
        ("aes192-ctr", "hmac-sha2-512-etm@openssh.com"),
        ("aes128-ctr", "hmac-sha2-256"),
        ("aes128-gcm@openssh.com", "hmac-sha2-256"),
        ("aes256-gcm@openssh.com", "hmac-sha2-256"),
        ("chacha20-poly1305@openssh.com", "hmac-sha2-256"),
    ];
    let data = noise(3 * 1024 * 1024 + 123);
    let remote = format!("/tmp/{}", crate::support::unique("ciphers"));
    for (i, (cipher, mac)) in combos.iter().enumerate() {
        let config = ssh_config(
            &format!(
                "Host cipher-{i}\n    HostName {}\n    Ciphers {cipher}\n    MACs {mac}\n",
                var("TWILL_TEST_HOST")
            ),
            "TWILL_TEST_KEY",
        );
        let s = through_config(&format!("cipher-{i}"), &config).hide("everything");
        with_settings(s, || {
            twill::upload_data(&data, &remote, &twill::UploadOptions::new())
                .unwrap_or_else(|e| panic!("{cipher} + {mac}: upload: {e}"));
            let back = twill::download_data(&remote)
                .unwrap_or_else(|e| panic!("{cipher} + {mac}: download: {e}"));
            assert!(back == data, "{cipher} + {mac}: the copy differs");
            let lines = run("seq 1 200000").unwrap();
            assert_eq!(lines.lines().count(), 200_000, "{cipher} + {mac}");
            assert_eq!(lines.lines().last(), Some("200000"), "{cipher} + {mac}");
            run(format!("rm -f {remote}")).unwrap();
        });
    }
}

#[test]
fn ssh_config_ciphers_twill_lacks_are_a_clear_error() {
    let config = ssh_config(
        &format!(
            "Host no-cipher\n    HostName {}\n    Ciphers made-up-cipher@example.com\n",
            var("TWILL_TEST_HOST")
        ),
        "TWILL_TEST_KEY",
    );
    let s = through_config("no-cipher", &config);
    with_settings(s, || {
        let err = run("true").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no-cipher"), "{msg}");
        assert!(msg.contains("made-up-cipher@example.com"), "{msg}");
        assert!(msg.contains("aes128-ctr"), "lists what is supported: {msg}");
    });
}

//! known_hosts as OpenSSH reads it: `@revoked` and `@cert-authority`
//! lines, wildcard and negated patterns, hashed names, and the removal
//! command of the changed-key message.

use std::path::{Path, PathBuf};

use twill::{run, with_settings, ErrorKind, Settings};

use crate::support::{port, twill, unique, var};

/// The server's public key of `kind` (`ssh-ed25519`, `ssh-rsa`) as
/// `kind base64`, from the server's correct known_hosts.
fn server_key(kind: &str) -> String {
    let known = std::fs::read_to_string(var("TWILL_TEST_KNOWN_HOSTS")).unwrap();
    known
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[1] == kind)
        .map(|f| format!("{} {}", f[1], f[2]))
        .unwrap_or_else(|| panic!("no {kind} key in the server's known_hosts"))
}

/// An Ed25519 key that is not the server's (the test user's own).
fn wrong_key() -> String {
    let public = std::fs::read_to_string(format!("{}.pub", var("TWILL_TEST_KEY"))).unwrap();
    let f: Vec<&str> = public.split_whitespace().collect();
    format!("{} {}", f[0], f[1])
}

/// `[address]:PORT` as known_hosts names the test server.
fn name(address: &str) -> String {
    format!("[{address}]:{}", port())
}

/// A temporary directory with a known_hosts file, and the ssh_config
/// files that aim fresh connections at the server through it.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(known_hosts: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("known_hosts"), known_hosts).unwrap();
        Case { dir }
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    fn contents(&self) -> String {
        std::fs::read_to_string(self.known_hosts()).unwrap()
    }

    /// Settings for a new connection (an alias of its own, so that no
    /// cached connection is reused) to `address`, checked against this
    /// known_hosts; `config` adds ssh_config lines for the alias.
    fn to(&self, address: &str, accept_new: bool, config: &str) -> Settings {
        let alias = unique("hostkey");
        let path = self.dir.path().join(format!("{alias}.config"));
        std::fs::write(
            &path,
            format!("Host {alias}\n    HostName {address}\n{config}"),
        )
        .unwrap();
        twill()
            .known_hosts(self.known_hosts().to_str().unwrap())
            .accept_new_host_keys(accept_new)
            .use_ssh_config(true)
            .ssh_config_path(path.to_str().unwrap())
            .host_string(format!("twill@{alias}:{}", port()))
    }

    /// The error of connecting with `s`.
    fn refused(&self, s: Settings) -> twill::Error {
        let err = with_settings(s, || run("true")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
        err
    }

    fn connects(&self, s: Settings) {
        with_settings(s, || assert_eq!(run("whoami").unwrap(), "twill"));
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn revoked_key_is_refused_whatever_the_policy() {
    // Both of the server's keys revoked, for every address on the port.
    let all = format!("[127.0.0.*]:{}", port());
    let revoked = Case::new(&format!(
        "# revoked keys\n@revoked {all} {}\n@revoked {all} {}\n",
        server_key("ssh-ed25519"),
        server_key("ssh-rsa"),
    ));
    let before = revoked.contents();
    for (accept, config) in [
        (false, ""),
        (true, ""),
        (false, "    StrictHostKeyChecking no\n"),
    ] {
        let err = revoked.refused(revoked.to("127.0.0.14", accept, config));
        let msg = err.to_string();
        assert!(msg.contains("REVOKED"), "{msg}");
        assert!(msg.contains(&name("127.0.0.14")), "{msg}");
        assert!(msg.contains("SHA256:"), "{msg}");
        assert!(
            msg.contains(&path_str(&revoked.known_hosts())),
            "names the file: {msg}"
        );
        assert!(
            msg.contains("line 2") || msg.contains("line 3"),
            "names the line: {msg}"
        );
        assert_eq!(revoked.contents(), before, "nothing is recorded");
    }

    // A revoked key is refused even where a plain line accepts it.
    let both = Case::new(&format!(
        "{n} {ed}\n@revoked {n} {ed}\n",
        n = name("127.0.0.14"),
        ed = server_key("ssh-ed25519"),
    ));
    for accept in [false, true] {
        let err = both.refused(both.to("127.0.0.14", accept, ""));
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}

#[test]
fn wildcard_entries_match_and_a_wrong_key_there_is_changed() {
    let all = format!("[127.0.0.*]:{}", port());
    let right = Case::new(&format!(
        "{all} {}\n{all} {}\n",
        server_key("ssh-ed25519"),
        server_key("ssh-rsa"),
    ));
    right.connects(right.to("127.0.0.14", false, ""));

    // A man in the middle's key for a known host is a changed key, never
    // an unknown one that accept-new would record.
    let wrong = Case::new(&format!("{all} {}\n", wrong_key()));
    let before = wrong.contents();
    for accept in [false, true] {
        let err = wrong.refused(wrong.to("127.0.0.14", accept, ""));
        assert!(err.to_string().contains("CHANGED"), "{err}");
        assert_eq!(wrong.contents(), before);
    }
}

#[test]
fn a_negated_pattern_leaves_the_host_unknown() {
    let line = format!("[127.0.0.*]:{p},![127.0.0.14]:{p}", p = port());
    let case = Case::new(&format!(
        "{line} {}\n{line} {}\n",
        server_key("ssh-ed25519"),
        server_key("ssh-rsa"),
    ));
    case.connects(case.to("127.0.0.15", false, ""));
    let err = case.refused(case.to("127.0.0.14", false, ""));
    assert!(err.to_string().contains("is not known"), "{err}");
    // Unknown, so accept-new records it.
    case.connects(case.to("127.0.0.14", true, ""));
    assert!(case
        .contents()
        .contains(&format!("\n{} ", name("127.0.0.14"))));
}

#[test]
fn entries_for_port_22_do_not_stand_for_other_ports() {
    let case = Case::new(&format!("127.0.0.14 {}\n", wrong_key()));
    let err = case.refused(case.to("127.0.0.14", false, ""));
    assert!(err.to_string().contains("is not known"), "{err}");
    case.connects(case.to("127.0.0.14", true, ""));
}

/// `ssh-keygen -H -f file`: every name in `file` hashed.
fn hash(file: &Path) {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let hashed = std::fs::read_to_string(file).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
}

#[test]
fn hashed_entries_are_matched() {
    let known = std::fs::read_to_string(var("TWILL_TEST_KNOWN_HOSTS")).unwrap();
    let case = Case::new(&known);
    hash(&case.known_hosts());
    assert!(!case.contents().contains("127.0.0"));
    case.connects(case.to("127.0.0.14", false, ""));

    // A wrong key under a hashed name is a changed key, with its line.
    let wrong = Case::new(&format!(
        "{} {}\n{} {}\n",
        name("127.0.0.13"),
        server_key("ssh-ed25519"),
        name("127.0.0.14"),
        wrong_key()
    ));
    hash(&wrong.known_hosts());
    let err = wrong.refused(wrong.to("127.0.0.14", true, ""));
    let msg = err.to_string();
    assert!(msg.contains("CHANGED") && msg.contains("line 2"), "{msg}");
}

/// The command the changed-key message suggests, run as printed.
fn run_suggested_command(msg: &str) {
    let at = msg
        .find("ssh-keygen -R ")
        .unwrap_or_else(|| panic!("no removal command: {msg}"));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&msg[at..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {out:?}", &msg[at..]);
}

#[test]
fn the_changed_key_message_gives_a_removal_command_that_works() {
    for hashed in [false, true] {
        // A directory name that needs quoting in a shell.
        let case = Case::new("");
        let dir = case.dir.path().join("it's a dir");
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("known_hosts");
        std::fs::write(
            &file,
            format!(
                "{} {}\n{} {}\n",
                name("127.0.0.13"),
                server_key("ssh-ed25519"),
                name("127.0.0.14"),
                wrong_key()
            ),
        )
        .unwrap();
        if hashed {
            hash(&file);
        }
        let at = |accept| {
            case.to("127.0.0.14", accept, "")
                .known_hosts(file.to_str().unwrap())
        };
        let err = case.refused(at(false));
        let msg = err.to_string();
        assert!(msg.contains("CHANGED"), "{msg}");
        assert!(
            msg.contains(&format!("{} (line 2)", file.display())),
            "names the file and line: {msg}"
        );
        run_suggested_command(&msg);
        let left = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            left.lines().count(),
            1,
            "only the other host is left: {left}"
        );
        case.connects(at(true));
        case.connects(at(false));
    }

    // A wrong key under a wildcard: editing the line is the way.
    let all = format!("[127.0.0.*]:{}", port());
    let case = Case::new(&format!("# hosts\n{all} {}\n", wrong_key()));
    let msg = case.refused(case.to("127.0.0.14", false, "")).to_string();
    assert!(
        msg.contains(&format!("edit line 2 of {}", path_str(&case.known_hosts()))),
        "{msg}"
    );
    assert!(!msg.contains("ssh-keygen -R '"), "{msg}");
}

#[test]
fn a_host_known_only_through_a_certificate_authority_is_unknown() {
    let case = Case::new(&format!(
        "@cert-authority [127.0.0.*]:{} {}\n",
        port(),
        server_key("ssh-ed25519")
    ));
    let msg = case.refused(case.to("127.0.0.14", false, "")).to_string();
    assert!(msg.contains("is not known"), "{msg}");
    assert!(msg.contains("certificate authority"), "{msg}");
    assert!(msg.contains("does not verify host certificates"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

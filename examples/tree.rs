//! A deployment written as a tree of nodes, with its shell.
//!
//! ```text
//! production  (group production: red in the shell)
//! ├── web     isolated on role web: each action once per web host, in parallel
//! │           deploy, release (asks first, then fans out), status, logs (one host), wait
//! ├── db      master and slave roles, mapped from db_master and db_slaves
//! │   │       status (every db host, in turn), replicas
//! │   └── master  the master alone: connect, run vim there
//! └── staging the same web node, other hosts and another domain (group staging)
//! ```
//!
//! Run it against the throwaway OpenSSH server of `tests-remote/`:
//!
//! ```text
//! ./tests-remote/sshd-server.sh start /tmp/twill-sshd && . /tmp/twill-sshd/env.sh
//! cargo run --example tree                      # the shell
//! cargo run --example tree -- -- web.deploy v2  # one action, then exit 0 or 1
//! ./tests-remote/sshd-server.sh stop /tmp/twill-sshd
//! ```
//!
//! Without that server's variables it names hosts web1..web3, db1..db3
//! and stage1, which your `~/.ssh/config` may know. Releases go below
//! `TWILL_TREE_ROOT` on each host (a temporary directory by default).

use std::process::ExitCode;

use twill::tree::{hosts, Action, Host, Node, Shell};
use twill::{cd, env, run, task, with_settings, Prompt, Settings, TaskArgs};

/// Where releases go on each host: one directory per host, since the
/// throwaway server is one machine under several addresses.
fn releases() -> String {
    let root = env()
        .get_str("tree_root")
        .unwrap_or_else(|| "/tmp/twill-tree".into());
    let host = env().host_string().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or("").replace(':', "_");
    format!("{root}/{host}")
}

task! {
    /// Install a release on this web host.
    fn deploy(release: String = "main") -> twill::Result<()> {
        let dir = releases();
        let domain = env().get_str("domain").unwrap_or_default();
        run(format!("mkdir -p {dir}"))?;
        with_settings(cd(&dir), || {
            run(format!("echo '{release} for {domain}' > release"))?;
            run("cat release")
        })?;
        Ok(())
    }
}

task! {
    /// Ask which release, then install it on every web host.
    fn release() -> twill::Result<()> {
        let tag = Prompt::new("Which release?").default("main").ask()?;
        twill::tree::call("deploy", TaskArgs::new().arg(tag))?;
        Ok(())
    }
}

task! {
    /// The release this web host runs.
    fn status() -> twill::Result<()> {
        run(format!("cat {}/release 2>/dev/null || echo 'no release'", releases()))?;
        Ok(())
    }
}

task! {
    /// Check that this web host has a release installed.
    fn health() -> twill::Result<()> {
        run(format!("test -s {}/release", releases()))?;
        Ok(())
    }
}

task! {
    /// The last lines of the system log of one web host (you choose which).
    fn logs(lines: u32 = 5) -> twill::Result<()> {
        run(format!("tail -n {lines} /var/log/syslog 2>/dev/null || uptime"))?;
        Ok(())
    }
}

task! {
    /// Wait on every web host (Ctrl-C stops it).
    fn wait(seconds: u32 = 300) -> twill::Result<()> {
        run(format!("sleep {seconds}"))?;
        Ok(())
    }
}

task! {
    /// Uptime of the master, then of each slave.
    fn db_status() -> twill::Result<()> {
        for role in ["master", "slave"] {
            for (host, up) in hosts().filter(role).run("uptime")?.iter() {
                let shown = up.as_ref().map(|o| o.trim().to_string()).unwrap_or_else(|e| e.to_string());
                twill::puts(&format!("{role} {host}: {shown}"));
            }
        }
        Ok(())
    }
}

task! {
    /// The hosts of each database role.
    fn replicas() -> twill::Result<()> {
        twill::puts(&format!("master: {}", hosts().filter("master").names().join(", ")));
        twill::puts(&format!("slaves: {}", hosts().filter("slave").names().join(", ")));
        Ok(())
    }
}

/// The web tier, written once and used for production and staging.
fn web() -> Node {
    Node::new("web")
        .doc("The web servers: each action runs once per host, in parallel.")
        .isolate("web")
        .action(deploy::task())
        .action(Action::new(release::task()).dont_isolate_yet())
        .action(status::task())
        .action(health::task())
        .action(Action::new(logs::task()).isolate_one_only())
        .action(wait::task())
}

fn tree(hosts: &[Host], root: String) -> Node {
    let host = |i: usize| hosts[i % hosts.len()].clone();
    let db = Node::new("db")
        .doc("The databases: a master and its slaves.")
        .map_roles([("master", ["db_master"]), ("slave", ["db_slaves"])])
        .action(Action::new(db_status::task().rename("status")))
        .action(replicas::task())
        .child(Node::new("master").map_roles([("host", ["master"])]));
    Node::new("production")
        .doc("The site, as it runs for its users.")
        .group("production")
        .settings(
            Settings::new()
                .set("domain", "example.com")
                .set("tree_root", root),
        )
        .role("web", [host(0), host(1), host(2)])
        .role("db_master", [host(3)])
        .role("db_slaves", [host(4), host(5)])
        .child(web())
        .child(db)
        .child(
            web()
                .rename("staging")
                .group("staging")
                .role("web", [host(6)])
                .settings(Settings::new().set("domain", "staging.example.com")),
        )
}

fn main() -> ExitCode {
    let (hosts, connect) = match std::env::var("TWILL_TEST_HOSTS") {
        Ok(list) => {
            let var = |n: &str| std::env::var(n).unwrap_or_default();
            let hosts = list
                .split(',')
                .take(7)
                .map(|a| {
                    Host::new(a)
                        .user(var("TWILL_TEST_USER"))
                        .port(var("TWILL_TEST_PORT").parse().unwrap_or(22))
                })
                .collect();
            let connect = Settings::new()
                .key_filename([var("TWILL_TEST_KEY")])
                .known_hosts(var("TWILL_TEST_KNOWN_HOSTS"))
                .no_agent(true)
                .use_ssh_config(false);
            (hosts, connect)
        }
        Err(_) => (
            ["web1", "web2", "web3", "db1", "db2", "db3", "stage1"]
                .map(Host::new)
                .to_vec(),
            Settings::new(),
        ),
    };
    let root = std::env::var("TWILL_TREE_ROOT").unwrap_or_else(|_| "/tmp/twill-tree".into());
    let _connect = twill::settings(connect);
    Shell::new(tree(&hosts, root)).main()
}

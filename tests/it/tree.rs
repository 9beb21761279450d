//! Deployment trees without a server: roles from the root down, role
//! maps, isolation into parallel workers, cells, the hosts container's
//! lists, the marks of actions, and the shell's commands read from a
//! pipe. The actions here connect nowhere: they write down where they ran.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use twill::tree::{call, here, host, hosts, Action, Host, Node};
use twill::{env, task, with_settings, ErrorKind, Settings, TaskArgs, Tasks};

use crate::support::{child_command, fed, is_child, text};

/// Where the actions of one test write down what they saw.
fn notes() -> PathBuf {
    PathBuf::from(env().get_str("notes").expect("the notes directory"))
}

fn note(name: &str, text: &str) {
    std::fs::write(notes().join(name), text).unwrap();
}

fn read_notes(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

task! {
    /// Write down the host, the node and the hosts of each role.
    fn where_am_i(tag: String = "x") -> twill::Result<()> {
        let host = env().host_string().unwrap_or_else(|| "none".into());
        let web = hosts().filter("web").names().join(",");
        let all = hosts().names().join(",");
        let domain = env().get_str("domain").unwrap_or_default();
        note(
            &format!("{tag}-{host}"),
            &format!("node={} web={web} all={all} domain={domain}", here().unwrap()),
        );
        Ok(())
    }
}

task! {
    /// Fail on the host called `bad`.
    fn fails_on_bad() -> twill::Result<()> {
        if env().host_string().as_deref() == Some("bad") {
            return Err(twill::Error::new(ErrorKind::Aborted, "bad host"));
        }
        Ok(())
    }
}

task! {
    /// Ask nothing, then fan out to where_am_i.
    fn fan_out() -> twill::Result<()> {
        note("fan_out", &format!("host={:?} web={}", env().host_string(), hosts().filter("web").len()));
        call("where_am_i", TaskArgs::new().arg("fanned"))?;
        Ok(())
    }
}

task! {
    /// The cell's host.
    fn whoami() -> twill::Result<()> {
        note(&format!("cell-{}", host()?.name()), "");
        Ok(())
    }
}

fn tree() -> Node {
    let web = Node::new("web")
        .isolate("web")
        .action(where_am_i::task())
        .action(fails_on_bad::task())
        .action(whoami::task())
        .action(Action::new(fan_out::task()).dont_isolate_yet())
        .action(Action::new(where_am_i::task().rename("one")).isolate_one_only());
    Node::new("site")
        .role("web", ["web1", "web2", "web3"])
        .role("db_master", [Host::new("db1").user("postgres").port(2222)])
        .role("db_slaves", ["db2", "db3"])
        .settings(Settings::new().set("domain", "example.com"))
        .action(where_am_i::task())
        .child(web.clone())
        .child(
            Node::new("db")
                .map_roles([("master", ["db_master"]), ("slave", ["db_slaves"])])
                .action(where_am_i::task())
                .child(
                    Node::new("everything")
                        .map_all_hosts("host")
                        .action(where_am_i::task()),
                ),
        )
        .child(
            web.rename("staging")
                .role("web", ["stage1"])
                .settings(Settings::new().set("domain", "staging.example.com")),
        )
}

/// Runs `f` with a fresh notes directory and the output hidden; returns
/// what the actions wrote down.
fn noted(f: impl FnOnce() -> twill::Result<()>) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let scope = Settings::new()
        .set("notes", dir.path().to_string_lossy().into_owned())
        .hide("everything");
    with_settings(scope, f).unwrap();
    read_notes(dir.path())
}

#[test]
fn an_isolated_node_runs_once_per_host_in_host_order_with_its_cell_narrowed() {
    let mut order = Vec::new();
    let notes = noted(|| {
        let done = tree().call("web.where_am_i", TaskArgs::new().arg("w"))?;
        order = done.hosts().iter().map(|h| h.to_string()).collect();
        assert!(done.succeeded());
        Ok(())
    });
    assert_eq!(order, ["web1", "web2", "web3"]);
    assert_eq!(notes.len(), 3, "{notes:?}");
    for (name, seen) in &notes {
        let h = name.strip_prefix("w-").unwrap();
        // In its cell, the isolating role holds the cell's host alone;
        // the other roles stay whole; the root's settings hold.
        assert_eq!(
            seen,
            &format!("node=web web={h} all={h},postgres@db1:2222,db2,db3 domain=example.com")
        );
    }
}

#[test]
fn a_child_takes_mapped_roles_or_all_hosts_and_a_reused_node_its_overrides() {
    let notes = noted(|| {
        let root = tree();
        root.call("db.where_am_i", TaskArgs::new().arg("db"))?;
        root.call("db.everything.where_am_i", TaskArgs::new().arg("all"))?;
        root.call("staging.where_am_i", TaskArgs::new().arg("st"))?;
        Ok(())
    });
    let get = |k: &str| notes.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // Not isolated: once, here, with the mapped roles only.
    assert_eq!(
        get("db-none").unwrap(),
        "node=db web= all=postgres@db1:2222,db2,db3 domain=example.com"
    );
    assert_eq!(
        get("all-none").unwrap(),
        "node=db.everything web= all=postgres@db1:2222,db2,db3 domain=example.com"
    );
    // The same web node, its role and domain replaced.
    assert_eq!(
        get("st-stage1").unwrap(),
        "node=staging web=stage1 all=stage1,postgres@db1:2222,db2,db3 domain=staging.example.com"
    );
}

#[test]
fn one_cell_runs_alone_and_knows_its_host() {
    let notes = noted(|| {
        let done = tree().call_on("web.whoami", "web2", TaskArgs::new())?;
        assert_eq!(done.hosts(), ["web2"]);
        Ok(())
    });
    assert_eq!(notes, [("cell-web2".to_string(), String::new())]);
}

#[test]
fn dont_isolate_yet_runs_once_then_its_call_fans_out() {
    let notes = noted(|| {
        tree().call("web.fan_out", TaskArgs::new())?;
        Ok(())
    });
    let names: Vec<&str> = notes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["fan_out", "fanned-web1", "fanned-web2", "fanned-web3"]
    );
    assert_eq!(notes[0].1, "host=None web=3");
}

#[test]
fn isolate_one_only_takes_the_first_host_when_nobody_may_be_asked() {
    const NAME: &str = "tree::isolate_one_only_takes_the_first_host_when_nobody_may_be_asked";
    if is_child(NAME) {
        let notes = noted(|| {
            tree()
                .call("web.one", TaskArgs::new().arg("one"))
                .map(|_| ())
        });
        let names: Vec<&str> = notes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["one-web1"]);
        return;
    }
    // A child whose standard input is not a terminal.
    let out = child_command(NAME).stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_failure_on_one_host_is_the_error_and_names_it() {
    let root = Node::new("r")
        .role("web", ["good", "bad"])
        .child(Node::new("web").isolate("web").action(fails_on_bad::task()));
    let err = with_settings(Settings::new().hide("everything"), || {
        root.call("web.fails_on_bad", TaskArgs::new())
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert_eq!(err.host(), Some("bad"));
    assert!(err.to_string().contains("bad host"), "{err}");
}

#[test]
fn paths_arguments_and_roles_that_lead_nowhere_fail_before_anything_runs() {
    let root = tree();
    let cases = [
        (
            root.call("nope.where_am_i", TaskArgs::new()),
            "has no child node called 'nope'",
        ),
        (
            root.call("web.nope", TaskArgs::new()),
            "node 'web' has no action called 'nope'",
        ),
        (
            root.call("web.where_am_i", TaskArgs::new().arg("a").arg("b")),
            "web.where_am_i",
        ),
        (
            root.call_on("web.whoami", "db9", TaskArgs::new()),
            "node 'web' has no host 'db9'",
        ),
    ];
    for (result, says) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings, "{err}");
        assert!(err.to_string().contains(says), "{err} / {says}");
    }
    let broken = Node::new("r").role("a", ["h"]).child(
        Node::new("c")
            .map_roles([("x", ["missing"])])
            .action(whoami::task()),
    );
    let err = broken.call("c.whoami", TaskArgs::new()).unwrap_err();
    assert!(err.to_string().contains("role 'missing'"), "{err}");
    let unisolated = Node::new("r").child(Node::new("c").isolate("web").action(whoami::task()));
    let err = unisolated.call("c.whoami", TaskArgs::new()).unwrap_err();
    assert!(
        err.to_string().contains("isolated on the role 'web'"),
        "{err}"
    );
}

#[test]
fn outside_any_action_the_tree_functions_say_where_they_belong() {
    assert!(hosts().is_empty());
    assert!(here().is_none());
    assert!(host().unwrap_err().to_string().contains("inside an action"));
    assert!(call("x", TaskArgs::new())
        .unwrap_err()
        .to_string()
        .contains("inside an action"));
}

task! {
    /// Marked for two hosts.
    #[hosts("m1", "m2")]
    fn marked() -> twill::Result<()> {
        note(&format!("marked-{}", env().host_string().unwrap()), "");
        Ok(())
    }
}

#[test]
fn fab_tasks_become_a_tree_that_keeps_their_marks() {
    let tasks = Tasks::new()
        .task(marked::task())
        .namespace("db", Tasks::new().task(where_am_i::task()));
    let root = Node::from_tasks("fab", &tasks);
    assert_eq!(root.action_names(), ["marked"]);
    assert_eq!(root.find("db").unwrap().action_names(), ["where_am_i"]);
    let notes = noted(|| {
        root.call("marked", TaskArgs::new())?;
        Ok(())
    });
    let names: Vec<&str> = notes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["marked-m1", "marked-m2"]);
}

#[test]
fn a_host_keeps_its_password_out_of_debug_output() {
    let h = Host::new("db1").user("u").password("hunter2-secret");
    assert_eq!(h.name(), "u@db1");
    assert!(!format!("{h:?}").contains("hunter2"));
}

/// The shell reading its commands from a pipe: cd, ls, pwd, find, inspect,
/// an action, and the first failing line ending it with status 1.
#[test]
#[cfg(feature = "shell")]
fn the_shell_reads_commands_from_a_pipe() {
    let script = "pwd\nls\ncd web\npwd\nls\ncd ..\ncd db everything\npwd\ncd -\npwd\ncd /\nfind where\ninspect db\ncd staging\nwhere_am_i tag=sh\ncd nowhere\npwd\n";
    let (code, shown) = fed("tree::the_shell_reads_commands_from_a_pipe", script, || {
        let dir = tempfile::tempdir().unwrap();
        let _s = twill::settings(
            Settings::new().set("notes", dir.path().to_string_lossy().into_owned()),
        );
        let result = twill::tree::Shell::new(tree()).run();
        println!("NOTES: {:?}", read_notes(dir.path()));
        if let Err(e) = result {
            println!("ERROR: {e}");
            std::process::exit(1);
        }
    });
    assert_eq!(code, 1, "{shown}");
    let expected_start = "/\nweb/\ndb/\nstaging/\nwhere_am_i\n/web\nwhere_am_i\nfails_on_bad\nwhoami\nfan_out\none\n/db/everything\n/\n";
    assert!(shown.contains(expected_start), "{shown}");
    for line in [
        "/where_am_i\n/web/where_am_i\n/db/where_am_i\n/db/everything/where_am_i\n/staging/where_am_i\n",
        "Node /db\n",
        "  master: postgres@db1:2222\n  slave: db2, db3\n",
        "  where_am_i(tag='x')  Write down the host, the node and the hosts of each role.\n",
        "[stage1] staging.where_am_i: ok\n",
        "ERROR: node 'staging' has no child node called 'nowhere'",
    ] {
        assert!(shown.contains(line), "{line:?} missing in:\n{shown}");
    }
    // The line after the failing one never ran.
    assert!(!shown.contains("\n/staging\n"), "{shown}");
    let notes = [(
        "sh-stage1".to_string(),
        "node=staging web=stage1 all=stage1,postgres@db1:2222,db2,db3 domain=staging.example.com"
            .to_string(),
    )];
    assert!(shown.contains(&format!("NOTES: {notes:?}")), "{shown}");
}

//! The deployment tree of `examples/tree.rs` and its shell, in a real
//! terminal (a tmux pane) against the throwaway server: completion,
//! moving around, an action once per host of an isolated node, Ctrl-C
//! back to the prompt, Retry / Skip after a failure, the history and its
//! reverse search, and vim on a host over the pty.

use crate::support::{example, process_running_with, unique, wait_until, RemoteDir};
use crate::terminal::Pane;

/// The web hosts of the example: the first three test addresses, each
/// with its own release directory below `root`.
fn web_dirs(root: &RemoteDir) -> Vec<String> {
    let port = crate::support::port();
    std::env::var("TWILL_TEST_HOSTS")
        .unwrap()
        .split(',')
        .take(3)
        .map(|a| root.path(&format!("{a}_{port}")))
        .collect()
}

/// The example's shell in a pane, its releases below `root`, its history
/// in a file of its own.
fn shell(root: &RemoteDir, history: &std::path::Path) -> Pane {
    let pane = Pane::start(&[
        "env".to_string(),
        format!("TWILL_TREE_ROOT={}", root.0),
        example("tree").to_string_lossy().into_owned(),
        "--history".to_string(),
        history.to_string_lossy().into_owned(),
    ]);
    pane.wait_for("production:/ >");
    pane
}

#[test]
fn the_shell_completes_moves_and_runs_an_action_once_per_host() {
    let root = RemoteDir::new();
    let history = tempfile::NamedTempFile::new().unwrap();
    let pane = shell(&root, history.path());
    // A node's name completes.
    pane.type_text("cd we");
    pane.press("Tab");
    pane.wait_for("production:/ > cd web");
    pane.press("Enter");
    pane.wait_for("production:/web >");
    pane.type_line("ls");
    pane.wait_for("health");
    // An action's arguments complete too.
    pane.type_text("deploy rel");
    pane.press("Tab");
    pane.wait_for("deploy release=");
    pane.type_line("v7");
    let shown = pane.wait_for_n("web.deploy: ok", 3);
    for dir in web_dirs(&root) {
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/release")).unwrap(),
            "v7 for example.com\n",
            "{shown}"
        );
    }
    // Several levels, `..`, `-` and `/`.
    pane.type_line("cd /db master");
    pane.wait_for("production:/db/master >");
    pane.type_line("cd ..");
    pane.wait_for("production:/db >");
    pane.type_line("cd -");
    pane.wait_for_n("production:/db/master >", 2);
    // The reused node, under its own group and domain.
    pane.type_line("cd /staging");
    pane.type_line("deploy v8");
    pane.wait_for("staging.deploy: ok");
    // Ctrl-R finds an earlier line in the history.
    pane.press("C-r");
    pane.type_text("cd /db m");
    pane.wait_for("cd /db master");
    pane.press("Enter");
    pane.press("Enter");
    pane.wait_for_n("production:/db/master >", 3);
    pane.type_line("exit");
    pane.exits_with(0);
    let kept = std::fs::read_to_string(history.path()).unwrap();
    assert!(
        kept.contains("deploy release=v7") && kept.contains("cd /staging"),
        "{kept}"
    );
}

#[test]
fn ctrl_c_stops_a_long_action_on_every_host_and_the_shell_goes_on() {
    let root = RemoteDir::new();
    let history = tempfile::NamedTempFile::new().unwrap();
    let pane = shell(&root, history.path());
    let seconds = 400 + unique("").len() % 100;
    let sleep = format!("sleep {seconds}");
    pane.type_line("cd web");
    pane.type_line(&format!("wait {seconds}"));
    // The live view: each web host's row shows the command.
    pane.wait_for_n(&sleep, 3);
    pane.press("C-c");
    // The view gives the terminal back, with each host's outcome.
    let shown = pane.wait_for("Error: interrupted");
    assert!(shown.contains("3 interrupted"), "{shown}");
    pane.type_line("pwd");
    pane.wait_for("\n/web");
    // The remote commands went with the workers.
    wait_until(&format!("{sleep} gone"), 10, || {
        !process_running_with(&sleep)
    });
    // Ctrl-D leaves.
    pane.press("C-d");
    pane.exits_with(0);
}

#[test]
fn a_failed_action_asks_retry_skip_or_abort() {
    let root = RemoteDir::new();
    let history = tempfile::NamedTempFile::new().unwrap();
    let pane = shell(&root, history.path());
    pane.type_line("cd web");
    pane.type_line("health");
    pane.wait_for("Choice (1-3) [3]");
    let dirs = web_dirs(&root);
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/release"), "by hand\n").unwrap();
    }
    // Retry: the failed hosts again, which now pass.
    pane.type_line("retry");
    pane.wait_for_n("web.health: ok", 3);
    // Skip: the results as they are, failures shown.
    std::fs::remove_file(format!("{}/release", dirs[1])).unwrap();
    pane.type_line("health");
    pane.wait_for_n("Choice (1-3) [3]", 2);
    pane.type_line("skip");
    let shown = pane.wait_for("web.health: failed");
    assert_eq!(shown.matches("web.health: ok").count(), 5, "{shown}");
    pane.type_line("exit");
    pane.exits_with(0);
}

#[test]
fn vim_over_the_pty_edits_a_file_on_the_host() {
    let root = RemoteDir::new();
    let history = tempfile::NamedTempFile::new().unwrap();
    let pane = shell(&root, history.path());
    let file = root.path("edited.txt");
    // One host: `run` gives the command the terminal.
    pane.type_line("cd db master");
    pane.type_line(&format!("run vim.tiny -u NONE -N {file}"));
    pane.wait_for("[New");
    pane.type_text("i");
    pane.wait_for("-- INSERT --");
    pane.type_text("edited in the shell");
    pane.press("Escape");
    pane.wait_for_gone("-- INSERT --");
    pane.type_text(":wq");
    pane.press("Enter");
    pane.wait_for_n("production:/db/master >", 2);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "edited in the shell\n"
    );
    // `connect`: a login shell on the host, then back to the tree.
    pane.type_line("connect");
    // The login shell's prompt first: keys typed before it may be lost.
    wait_until("the login shell's prompt", 30, || {
        pane.text()
            .rsplit("> connect")
            .next()
            .is_some_and(|after| after.contains('$'))
    });
    pane.type_line("echo $((6 * 7)) on $(hostname)");
    pane.wait_for("42 on");
    pane.type_line("exit");
    pane.wait_for_n("production:/db/master >", 3);
    pane.type_line("exit");
    pane.exits_with(0);
}

twill::task! {
    /// What the hosts container gives inside an action.
    fn survey() -> twill::Result<()> {
        use twill::tree::hosts;
        let dir = twill::env().get_str("survey_dir").unwrap();
        let web = hosts().filter("web");
        // A `cd` scope around the container holds on every host.
        let pwd = twill::with_settings(twill::cd(&dir), || web.run("pwd"))?;
        let local = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(local.path(), "sent\n").unwrap();
        let put = web.put(local.path(), &format!("{dir}/sent.txt"))?;
        let there = hosts().exists(&format!("{dir}/sent.txt"))?;
        let mut lines = Vec::new();
        for (host, out) in pwd.iter() {
            lines.push(format!("pwd {host} {}", out.as_ref().unwrap().stdout()));
        }
        for (host, paths) in put.iter() {
            lines.push(format!("put {host} {}", paths.as_ref().unwrap().len()));
        }
        for (host, yes) in there.iter() {
            lines.push(format!("exists {host} {}", yes.as_ref().unwrap()));
        }
        std::fs::write(format!("{dir}/survey"), lines.join("\n")).unwrap();
        Ok(())
    }
}

/// Hosts with settings of their own (the key and known_hosts to reach the
/// server live on each host, not in the scope), and the container's
/// operations on every host with the caller's `cd`.
#[test]
fn the_hosts_container_runs_on_each_host_with_its_own_settings() {
    use crate::support::var;
    use twill::tree::{Host, Node};
    let dir = RemoteDir::new();
    let addrs: Vec<String> = var("TWILL_TEST_HOSTS")
        .split(',')
        .take(3)
        .map(String::from)
        .collect();
    let host = |a: &str| {
        Host::new(a)
            .user(var("TWILL_TEST_USER"))
            .port(crate::support::port().parse().unwrap())
            .settings(
                twill::Settings::new()
                    .key_filename([var("TWILL_TEST_KEY")])
                    .known_hosts(var("TWILL_TEST_KNOWN_HOSTS"))
                    .no_agent(true)
                    .no_keys(true)
                    .use_ssh_config(false),
            )
    };
    let root = Node::new("r")
        .role("web", [host(&addrs[0]), host(&addrs[1])])
        .role("db", [host(&addrs[2])])
        .settings(twill::Settings::new().set("survey_dir", dir.0.clone()))
        .action(survey::task());
    let done = twill::with_settings(twill::Settings::new().hide("everything"), || {
        root.call("survey", twill::TaskArgs::new())
    })
    .unwrap();
    assert_eq!(done.len(), 1);
    let port = crate::support::port();
    let user = var("TWILL_TEST_USER");
    let name = |a: &str| format!("{user}@{a}:{port}");
    let expected = [
        format!("pwd {} {}", name(&addrs[0]), dir.0),
        format!("pwd {} {}", name(&addrs[1]), dir.0),
        format!("put {} 1", name(&addrs[0])),
        format!("put {} 1", name(&addrs[1])),
        format!("exists {} true", name(&addrs[0])),
        format!("exists {} true", name(&addrs[1])),
        format!("exists {} true", name(&addrs[2])),
    ]
    .join("\n");
    assert_eq!(dir.read("survey"), expected);
}

/// The example's command line: one action and its exit status, `--path`,
/// and `dry-run`, with the shell reading a pipe.
#[test]
fn one_action_from_the_command_line_exits_0_or_1_and_path_starts_at_a_node() {
    let root = RemoteDir::new();
    let tree = |args: &[&str], input: &str| {
        let mut command = std::process::Command::new(example("tree"));
        command.env("TWILL_TREE_ROOT", &root.0).args(args);
        crate::support::run_fed(command, input)
    };
    let (code, shown) = tree(&["--", "web.health"], "");
    assert_eq!(code, Some(1), "{shown}");
    let (code, shown) = tree(&["--", "web.deploy", "v3"], "");
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("web.deploy: ok").count(), 3, "{shown}");
    let dirs = web_dirs(&root);
    for dir in &dirs {
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/release")).unwrap(),
            "v3 for example.com\n"
        );
    }
    let (code, shown) = tree(&["--", "web", "health"], "");
    assert_eq!(code, Some(0), "{shown}");
    // A dry run shows the commands and changes nothing.
    let (code, shown) = tree(&["--path", "web"], "pwd\ndry-run deploy v4\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.starts_with("/web\n"), "{shown}");
    assert_eq!(shown.matches("would run: ").count(), 9, "{shown}");
    for dir in &dirs {
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/release")).unwrap(),
            "v3 for example.com\n"
        );
    }
}

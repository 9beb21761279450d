//! The live view of a parallel run, in a real terminal (a tmux pane)
//! against the throwaway server: every host to its final state, a failed
//! host's output on a key, `q` stopping the run and the remote commands,
//! the terminal given back; `--linewise` keeps Fabric's lines.

use crate::support::{cli_options, port, unique, var, wait_until};
use crate::terminal::{twill_line, Pane};

/// `n` hosts of the server as the plain user, and the list for `-H`.
fn hosts(n: usize) -> (Vec<String>, String) {
    let user = var("TWILL_TEST_USER");
    let port = port();
    let hosts: Vec<String> = var("TWILL_TEST_HOSTS")
        .split(',')
        .take(n)
        .map(|a| format!("{user}@{a}:{port}"))
        .collect();
    let list = hosts.join(",");
    (hosts, list)
}

/// A command for each host: its address decides what it does (the server
/// is one machine under several addresses): the third fails after two
/// lines of its own, the fourth takes a while.
const BY_HOST: &str = "a=${SSH_CONNECTION#* * }; a=${a%% *}; echo working on $a; \
    case $a in \
    *.3) printf '%s-of-failing\\n' first last; exit 3;; \
    *.4) sleep 4; echo slow-done;; \
    esac";

#[test]
fn the_live_view_shows_every_host_to_its_final_state_and_a_failure_on_a_key() {
    let (hosts, list) = hosts(4);
    let pane = Pane::start(&twill_line(cli_options(true), &list, &["-P"], BY_HOST));
    // While the slow host works: two done, one failed, one running.
    let shown = pane.wait_for("1 running · 0 queued · 2 ok · 0 warned · 1 failed");
    assert!(shown.contains("twill · task <remainder> · run "), "{shown}");
    // The failed host's own output, in the pane, on `n`.
    assert!(!shown.contains("out: first-of-failing"), "{shown}");
    pane.type_text("n");
    let shown = pane.wait_for("out: first-of-failing");
    assert!(shown.contains(&format!("{} failed", hosts[2])), "{shown}");
    // The arrow keys move between hosts.
    pane.press("Up");
    pane.wait_for(&format!("{} ok · following", hosts[1]));
    // The end: the terminal back as it was, and the summary.
    let shown = pane.exits_with(1);
    assert!(
        shown.contains("3 ok, 0 warned, 1 failed, 0 interrupted, 0 not run"),
        "{shown}"
    );
    for (i, host) in hosts.iter().enumerate() {
        let state = if i == 2 { "failed" } else { "ok" };
        assert!(
            shown.contains(&format!("[{host}] {state} ")),
            "{host} {state}:\n{shown}"
        );
    }
    assert!(shown.contains("    out: last-of-failing"), "{shown}");
    assert!(shown.contains("One or more hosts failed"), "{shown}");
}

#[test]
fn q_stops_the_run_after_asking_and_leaves_no_remote_command() {
    let (_, list) = hosts(3);
    let sleep = format!("sleep {}", 500 + unique("").len() % 100);
    // A process that is that command alone (the pane's own shell has it
    // in its command line too).
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == sleep)
                    .unwrap_or(false)
            })
            .count()
    };
    let pane = Pane::start(&twill_line(cli_options(true), &list, &["-P"], &sleep));
    pane.wait_for("3 running");
    wait_until(&format!("{sleep} on three hosts"), 30, || running() == 3);
    pane.type_text("q");
    pane.wait_for("Stop the run on every host?");
    pane.type_text("y");
    let shown = pane.exits_with(130);
    assert!(shown.contains("3 interrupted"), "{shown}");
    wait_until(&format!("{sleep} gone"), 10, || running() == 0);
}

#[test]
fn linewise_keeps_fabrics_lines_at_a_terminal() {
    let (hosts, list) = hosts(2);
    let pane = Pane::start(&twill_line(
        cli_options(true),
        &list,
        &["-P", "--linewise"],
        "echo hello from $SSH_CONNECTION",
    ));
    let shown = pane.exits_with(0);
    for host in &hosts {
        assert!(
            shown.contains(&format!("[{host}] out: hello from")),
            "{shown}"
        );
    }
    assert!(!shown.contains("twill · task"), "{shown}");
}

#[test]
fn panes_stream_each_hosts_output_and_take_its_keys() {
    let (hosts, list) = hosts(3);
    let pane = Pane::start(&twill_line(
        cli_options(true),
        &list,
        &["-P", "--panes"],
        "echo hello-from-$((40 + 2)); read -r line; echo got-$line",
    ));
    // One pane per running host beside the first.
    wait_until("four panes", 30, || pane.panes().len() == 4);
    let of = |host: &str| {
        pane.panes()
            .into_iter()
            .find(|id| pane.text_of(id).contains(&format!("== {host} ==")))
            .unwrap_or_else(|| panic!("no pane for {host}"))
    };
    for host in &hosts {
        let id = of(host);
        wait_until("the host's first line in its pane", 30, || {
            pane.text_of(&id).contains("out: hello-from-42")
        });
    }
    // Keys typed in a pane reach that host's command, and only it.
    let second = of(&hosts[1]);
    pane.type_line_in(&second, "typed-here");
    wait_until("the second host's answer", 30, || {
        pane.text_of(&second).contains("out: got-typed-here")
    });
    let done = format!("{} ok", hosts[1]);
    wait_until("the second host's outcome", 30, || {
        pane.text_of(&second).contains(&done)
    });
    assert!(!pane.text_of(&of(&hosts[0])).contains("out: got-"));
    for host in [&hosts[0], &hosts[2]] {
        pane.type_line_in(&of(host), "x");
    }
    // The first pane: the summary, once every host is done.
    let shown = pane.exits_with(0);
    assert!(shown.contains("3 ok, 0 warned, 0 failed"), "{shown}");
    // A finished host's pane closes on a key.
    pane.type_line_in(&second, "");
    wait_until("the second host's pane closed", 30, || {
        !pane.panes().contains(&second)
    });
}

#[test]
fn closing_the_terminal_stops_the_run_and_twill_exits() {
    let (_, list) = hosts(2);
    let sleep = format!("sleep {}", 600 + unique("").len() % 100);
    let pane = Pane::start(&twill_line(cli_options(true), &list, &["-P"], &sleep));
    pane.wait_for("2 running");
    // The window goes: the hang-up reaches twill, which stops the run.
    drop(pane);
    wait_until("twill and the remote commands gone", 30, || {
        !crate::support::process_running_with(&sleep)
    });
}

//! `execute` over many hosts: the loopback addresses 127.0.0.1..16 of the
//! throwaway server are the "hosts".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use twill::{env, local, run, settings, with_settings, ErrorKind, Execute, Prompt, Settings};

use crate::support::{child_command, in_child, is_child, port, text, twill, unique, var};

/// `twill@127.0.0.N:PORT` for the first `n` addresses.
fn hosts(n: usize) -> Vec<String> {
    var("TWILL_TEST_HOSTS")
        .split(',')
        .take(n)
        .map(|a| format!("twill@{a}:{}", port()))
        .collect()
}

/// The address the server saw the connection arrive on.
fn server_address() -> twill::Result<String> {
    Ok(run("echo $SSH_CONNECTION | cut -d' ' -f3")?.to_string())
}

#[test]
fn results_come_back_in_host_order_parallel_and_serial_alike() {
    let list = hosts(16);
    with_settings(twill().hide("running,output"), || {
        let parallel = Execute::new("where")
            .hosts(&list)
            .parallel(true)
            .run(server_address)
            .unwrap();
        let serial = Execute::new("where")
            .hosts(&list)
            .parallel(false)
            .run(server_address)
            .unwrap();
        let expected: Vec<String> = var("TWILL_TEST_HOSTS")
            .split(',')
            .take(16)
            .map(String::from)
            .collect();
        for results in [&parallel, &serial] {
            assert_eq!(
                results.hosts(),
                list.iter().map(String::as_str).collect::<Vec<_>>()
            );
            let values: Vec<String> = results
                .iter()
                .map(|(_, r)| r.as_ref().unwrap().clone())
                .collect();
            assert_eq!(values, expected);
        }
    });
}

#[test]
fn per_host_failures_and_fabrics_abort_message() {
    let list = hosts(4);
    let task = || {
        let host = env().host_string().unwrap().to_string();
        if host.contains("127.0.0.3:") {
            // An explicit option beats the warn_only of the scope.
            twill::run_with(
                "echo failing here; exit 5",
                &twill::RunOptions::new().warn_only(false),
            )?;
        }
        Ok(host)
    };
    with_settings(twill().hide("everything"), || {
        let err = Execute::new("check")
            .hosts(&list)
            .parallel(true)
            .run(task)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskFailed);
        let msg = err.to_string();
        assert!(
            msg.starts_with("One or more hosts failed while executing task 'check'"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "{}: run() received nonzero return code 5",
                list[2]
            )),
            "{msg}"
        );
        let results = with_settings(Settings::new().warn_only(true), || {
            Execute::new("check").hosts(&list).parallel(true).run(task)
        })
        .unwrap();
        assert_eq!(results.failures().len(), 1);
        let (host, e) = results.failures()[0];
        assert_eq!(host, list[2]);
        assert_eq!(e.exit_code(), Some(5));
        assert_eq!(e.output().unwrap().stdout(), "failing here");
        assert_eq!(results.get(&list[3]).unwrap().as_ref().unwrap(), &list[3]);
        // Serially the first failure stops the run, as in Fabric.
        let err = Execute::new("check")
            .hosts(&list)
            .parallel(false)
            .run(task)
            .unwrap_err();
        assert_eq!(err.exit_code(), Some(5));
    });
}

#[test]
fn a_panicking_task_and_a_killed_worker_fail_only_their_host() {
    let list = hosts(4);
    let task = || -> twill::Result<u32> {
        let host = env().host_string().unwrap().to_string();
        if host.contains("127.0.0.2:") {
            panic!("bad state on this host");
        }
        if host.contains("127.0.0.4:") {
            local("kill -9 $PPID")?; // the worker itself
        }
        Ok(7)
    };
    with_settings(twill().hide("everything").warn_only(true), || {
        let results = Execute::new("fragile")
            .hosts(&list)
            .parallel(true)
            .run(task)
            .unwrap();
        assert_eq!(*results.get(&list[0]).unwrap().as_ref().unwrap(), 7);
        assert_eq!(*results.get(&list[2]).unwrap().as_ref().unwrap(), 7);
        let panicked = results.get(&list[1]).unwrap().as_ref().unwrap_err();
        assert!(
            panicked
                .to_string()
                .contains("the task panicked: bad state on this host"),
            "{panicked}"
        );
        let killed = results.get(&list[3]).unwrap().as_ref().unwrap_err();
        assert!(
            killed.to_string().contains("worker killed by signal 9"),
            "{killed}"
        );
        assert_eq!(killed.host(), Some(list[3].as_str()));
    });
}

#[test]
fn worker_changes_to_settings_never_reach_the_caller() {
    let list = hosts(3);
    with_settings(twill().hide("everything").set("stage", "caller"), || {
        let results = Execute::new("leak")
            .hosts(&list)
            .parallel(true)
            .run(|| {
                let guard = settings(Settings::new().set("stage", "worker").set("leaked", true));
                std::mem::forget(guard); // would leak into a serial caller's thread
                Ok(env().get_str("stage").unwrap().to_string())
            })
            .unwrap();
        assert!(results.iter().all(|(_, r)| r.as_ref().unwrap() == "worker"));
        assert_eq!(env().get_str("stage").as_deref(), Some("caller"));
        assert!(!env().contains("leaked"));
    });
}

#[test]
fn workers_cannot_prompt() {
    let list = hosts(2);
    with_settings(twill().hide("everything").warn_only(true), || {
        let results = Execute::new("ask")
            .hosts(&list)
            .parallel(true)
            .run(|| Prompt::new("Continue?").ask())
            .unwrap();
        for (_, r) in results.iter() {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Prompt);
            assert!(
                e.to_string()
                    .contains("input would be ambiguous in parallel mode"),
                "{e}"
            );
        }
    });
}

#[test]
fn a_pool_smaller_than_the_host_list_bounds_concurrency() {
    let list = hosts(12);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    with_settings(twill().hide("everything").set("dir", d.clone()), || {
        Execute::new("window")
            .hosts(&list)
            .parallel(true)
            .pool_size(3)
            .run(|| {
                let name = env().host_string().unwrap().replace(['@', ':'], "_");
                let dir = env().get_str("dir").unwrap().to_string();
                local(format!(
                    "date +%s%N > {dir}/{name}.start; sleep 0.3; date +%s%N > {dir}/{name}.end"
                ))?;
                Ok(())
            })
            .unwrap();
    });
    let mut events: Vec<(u128, i32)> = Vec::new();
    for e in std::fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        let t: u128 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
        events.push((
            t,
            if p.extension().unwrap() == "start" {
                1
            } else {
                -1
            },
        ));
    }
    assert_eq!(events.len(), 24);
    events.sort();
    let (mut now, mut most) = (0, 0);
    for (_, delta) in events {
        now += delta;
        most = most.max(now);
    }
    assert!(most <= 3, "at most 3 workers at once, saw {most}");
    assert!(most >= 2, "workers do run at the same time, saw {most}");
}

#[test]
fn roles_param_values_and_host_list_rules() {
    let list = hosts(5);
    let roles = twill().hide("everything").roledefs([
        ("web", vec![list[0].clone(), list[1].clone()]),
        ("db", vec![list[1].clone(), list[2].clone()]),
    ]);
    with_settings(roles, || {
        let e = Execute::new("t")
            .roles(["web", "db"])
            .exclude_hosts([list[0].clone()]);
        assert_eq!(
            e.host_list().unwrap(),
            [list[1].clone(), list[2].clone()],
            "deduplicated, excluded"
        );
        let results = e.parallel(true).run(server_address).unwrap();
        assert_eq!(results.len(), 2);
        let err = Execute::new("t").roles(["nope"]).host_list().unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        // The hosts setting is the default list.
        let from_env = with_settings(Settings::new().hosts([list[3].clone()]), || {
            Execute::new("t").host_list()
        })
        .unwrap();
        assert_eq!(from_env, [list[3].clone()]);
        // No host at all: the task runs once, locally.
        let local_only = with_settings(Settings::new().unset("roledefs"), || {
            Execute::new("t").run(|| Ok(1))
        })
        .unwrap();
        assert_eq!(local_only.hosts(), ["<local-only>"]);
    });
    // threadbare's form: once per value of a setting.
    let by_value = Execute::new("t")
        .param("colour", ["red", "green", "blue"])
        .parallel(true)
        .run(|| Ok(env().get_str("colour").unwrap().to_uppercase()))
        .unwrap();
    let values: BTreeMap<&str, String> = by_value
        .iter()
        .map(|(k, v)| (k, v.as_ref().unwrap().clone()))
        .collect();
    assert_eq!(values["green"], "GREEN");
}

#[test]
fn skip_bad_hosts_makes_connection_failures_per_host_results() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("twill@{}", free.local_addr().unwrap());
    drop(free);
    let list = vec![hosts(1)[0].clone(), dead.clone()];
    with_settings(twill().hide("everything"), || {
        for parallel in [true, false] {
            let err = Execute::new("t")
                .hosts(&list)
                .parallel(parallel)
                .run(server_address)
                .unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::TaskFailed | ErrorKind::Connect),
                "{err}"
            );
            let ok = with_settings(Settings::new().skip_bad_hosts(true), || {
                Execute::new("t")
                    .hosts(&list)
                    .parallel(parallel)
                    .run(server_address)
            })
            .unwrap();
            assert!(ok.get(&list[0]).unwrap().is_ok());
            assert_eq!(
                ok.get(&dead).unwrap().as_ref().unwrap_err().kind(),
                ErrorKind::Connect
            );
        }
    });
}

#[test]
fn parallel_output_is_whole_prefixed_lines_or_blocks() {
    let out = in_child(
        "execute::parallel_output_is_whole_prefixed_lines_or_blocks",
        || {
            with_settings(twill(), || {
                let list = hosts(6);
                Execute::new("talk").hosts(&list).parallel(true).run(|| {
                run("for i in $(seq 1 200); do echo line-$i-of-a-fairly-long-output-line-that-is-not-short; done")?;
                Ok(())
            })
            .unwrap();
                println!("=== blocks");
                Execute::new("talk")
                    .hosts(&list[..2])
                    .parallel(true)
                    .output_blocks(true)
                    .run(|| {
                        run("echo first; sleep 0.2; echo second")?;
                        Ok(())
                    })
                    .unwrap();
            });
        },
    );
    let stdout = text(&out.stdout);
    let (lines_part, blocks_part) = stdout.split_once("=== blocks").unwrap();
    let host_lines: Vec<&str> = lines_part
        .lines()
        .filter(|l| l.contains("] out: "))
        .collect();
    assert_eq!(host_lines.len(), 6 * 200);
    for l in &host_lines {
        assert!(l.starts_with("[twill@127.0.0."), "{l}");
        assert!(
            l.ends_with("-of-a-fairly-long-output-line-that-is-not-short"),
            "a line was split or mixed: {l}"
        );
    }
    for h in hosts(6) {
        assert!(
            lines_part.contains(&format!("[{h}] Executing task 'talk'")),
            "{lines_part}"
        );
    }
    // In block mode each host's lines stand together.
    let block_lines: Vec<&str> = blocks_part
        .lines()
        .filter(|l| l.contains("] out: "))
        .collect();
    assert_eq!(block_lines.len(), 4);
    assert_eq!(
        block_lines[0].split(']').next(),
        block_lines[1].split(']').next()
    );
}

#[test]
fn ctrl_c_stops_every_worker_and_remote_command() {
    let name = "execute::ctrl_c_stops_every_worker_and_remote_command";
    let marker = std::env::var("TWILL_CTRL_C_MARKER").unwrap_or_else(|_| unique("9"));
    if is_child(name) {
        let r = with_settings(twill().hide("everything"), || {
            Execute::new("hang").hosts(hosts(4)).parallel(true).run(|| {
                run(format!("sleep 60.{marker}"))?;
                Ok(())
            })
        });
        let code = match r {
            Err(e) if e.kind() == ErrorKind::Interrupted => 130,
            _ => 1,
        };
        std::process::exit(code);
    }
    let mut child = child_command(name)
        .env("TWILL_CTRL_C_MARKER", &marker)
        .spawn()
        .unwrap();
    let count_remote = || {
        with_settings(twill().hide("everything"), || {
            run(format!("pgrep -fc 'sleep 60[.]{marker}' || true"))
        })
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap_or(0)
    };
    let started = Instant::now();
    while count_remote() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the remote commands never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "execute did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_remote(), 0, "a remote command survived");
    let survivors = std::fs::read_dir("/proc").unwrap().flatten().filter(|e| {
        std::fs::read(e.path().join("environ"))
            .map(|env| {
                String::from_utf8_lossy(&env).contains(&format!("TWILL_CTRL_C_MARKER={marker}"))
            })
            .unwrap_or(false)
    });
    assert_eq!(survivors.count(), 0, "a worker process survived");
}

#[test]
fn execute_relays_worker_output_while_another_thread_holds_the_stderr_lock() {
    // Another thread holds the standard library's stderr lock while the
    // workers are forked: a worker that printed through it would wait
    // forever for a lock no thread of its own will release.
    let out = in_child(
        "execute::execute_relays_worker_output_while_another_thread_holds_the_stderr_lock",
        || {
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let holder = std::thread::spawn(move || {
                let _out = std::io::stdout().lock();
                let _err = std::io::stderr().lock();
                held_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_secs(3));
            });
            held_rx.recv().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let r: twill::Result<()> = with_settings(twill().hide("running"), || {
                    Execute::new("noisy")
                        .hosts(hosts(8))
                        .parallel(true)
                        .run(|| {
                            twill::puts("from a worker");
                            twill::warn("a warning from a worker");
                            Ok(())
                        })?;
                    Ok(())
                });
                let _ = tx.send(r.is_ok());
            });
            let finished = rx.recv_timeout(Duration::from_secs(30));
            holder.join().unwrap();
            println!("\nRESULT {finished:?}");
        },
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("RESULT Ok(true)"),
        "execute hung or failed: {}",
        stdout.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    );
    assert_eq!(stdout.matches("] from a worker").count(), 8);
    assert_eq!(
        text(&out.stderr)
            .matches("Warning: a warning from a worker")
            .count(),
        8
    );
}

/// The command lines (arguments joined by spaces) of every process on this
/// machine whose command line contains `needle`. The server is local, so
/// remote commands are among them.
fn command_lines_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn workers_and_their_remote_commands_die_with_a_killed_parent() {
    let marker = unique("8");
    let needle = format!("sleep 60.{marker}");
    let mut parent = crate::cli::twill_cmd()
        .args(["-P", "-H", &hosts(2).join(","), "--"])
        .arg(format!("{needle}; echo after"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The parent and its workers have the marker in their command line too;
    // the remote commands are the processes that run `sleep` itself.
    let remote = || {
        command_lines_with(&needle)
            .iter()
            .filter(|c| c.starts_with("sleep "))
            .count()
    };
    let started = Instant::now();
    while remote() < 2 {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = parent.kill();
            let _ = parent.wait();
            panic!("the remote commands never started");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    parent.kill().unwrap(); // SIGKILL: the parent cannot clean up
    parent.wait().unwrap();
    let killed = Instant::now();
    loop {
        let left = command_lines_with(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still running 10 s after the parent was killed: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A serial run keeps a connection per host for reuse; where the process
/// may open fewer descriptors than that takes, the connections used least
/// recently are closed to make room, so the run still reaches every host.
#[test]
fn a_serial_run_reaches_more_hosts_than_it_has_descriptors_for() {
    let name = "execute::a_serial_run_reaches_more_hosts_than_it_has_descriptors_for";
    let out = in_child(name, || {
        let lim = libc::rlimit {
            rlim_cur: 40,
            rlim_max: 40,
        };
        // SAFETY: plain syscall on a local struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut list = Vec::new();
        for user in [
            "TWILL_TEST_USER",
            "TWILL_TEST_SUDO_USER",
            "TWILL_TEST_SUDOPW_USER",
        ] {
            for addr in var("TWILL_TEST_HOSTS").split(',').take(16) {
                list.push(format!("{}@{addr}:{}", var(user), port()));
            }
        }
        let results = with_settings(twill().hide("everything"), || {
            Execute::new("reach")
                .hosts(&list)
                .parallel(false)
                .run(|| Ok(run("whoami")?.to_string()))
        })
        .unwrap();
        let reached = results.iter().filter(|(_, r)| r.is_ok()).count();
        println!("CHILD-OK {reached} of {}", list.len());
    });
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("CHILD-OK 48 of 48"),
        "{stdout}{}",
        text(&out.stderr)
    );
}

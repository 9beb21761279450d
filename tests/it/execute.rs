//! `execute` without a network: tasks that never connect, so that the
//! hosts are only names (or, with `Execute::param`, values of a setting).
//! Worker processes, descriptors, output relaying, results and interrupts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use twill::{env, local, with_settings, ErrorKind, Execute, Settings};

use crate::support::{child_command, in_child, is_child, process_running_with, text, unique};

/// `h0`, `h1`, ... : host names that no task here connects to.
fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("h{i}")).collect()
}

fn nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall on a local struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

fn set_nofile(soft: u64, hard: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: plain syscall on a local struct.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(
        r,
        0,
        "cannot set the descriptor limit to {soft}/{hard}: {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `body` in a child copy of this test binary (see `in_child`) and
/// checks that the child got to its end: what a failed assertion there
/// printed shows in the failure here.
fn passes_in_child(test_name: &str, body: impl FnOnce()) {
    let out = in_child(test_name, || {
        body();
        println!("CHILD PASSED");
    });
    assert!(
        text(&out.stdout).contains("CHILD PASSED"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs a task over 1000 host names in parallel, one worker per host, and
/// checks that every host's own result comes back, in order.
fn thousand_hosts_in_parallel() {
    let list = names(1000);
    let results = with_settings(Settings::new().hide("everything"), || {
        Execute::new("name")
            .hosts(&list)
            .parallel(true)
            .run(|| Ok(env().host_string().unwrap().to_string()))
    })
    .unwrap_or_else(|e| panic!("execute failed: {e}"));
    assert_eq!(results.len(), 1000);
    for (i, (host, result)) in results.iter().enumerate() {
        assert_eq!(host, list[i]);
        assert_eq!(result.as_ref().unwrap(), &list[i]);
    }
}

#[test]
fn a_thousand_workers_fit_under_a_limit_of_1024_descriptors() {
    passes_in_child(
        "execute::a_thousand_workers_fit_under_a_limit_of_1024_descriptors",
        || {
            // Three pipes per worker: not every worker fits at once, and the
            // hard limit leaves no room to raise.
            set_nofile(1024, 1024);
            thousand_hosts_in_parallel();
        },
    );
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    passes_in_child(
        "execute::the_soft_descriptor_limit_is_raised_to_the_hard_one",
        || {
            // Raising a hard limit needs root, which the project's scripts
            // are; otherwise the present one must be above 1024.
            let (_, hard) = nofile();
            let hard = if hard > 1024 { hard } else { 4096 };
            set_nofile(1024, hard);
            thousand_hosts_in_parallel();
            assert_eq!(nofile(), (hard, hard));
        },
    );
}

#[test]
fn a_very_long_line_from_a_worker_arrives_whole_and_once() {
    let out = in_child(
        "execute::a_very_long_line_from_a_worker_arrives_whole_and_once",
        || {
            with_settings(Settings::new().hide("running"), || {
                Execute::new("talk").hosts(["h1"]).parallel(true).run(|| {
                    // Short lines, then 20 MB without a newline that
                    // arrive over many reads, then its newline later, and
                    // a last line without one.
                    local(
                        "printf 'first\\nsecond\\n'; head -c 20971520 /dev/zero | tr '\\0' x; \
                             sleep 0.2; printf '\\nthird\\nlast'",
                    )?;
                    Ok(())
                })
            })
            .unwrap();
        },
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // The test harness's own `test ... ` may start the first line.
    let at = lines
        .iter()
        .position(|l| l.ends_with("first"))
        .unwrap_or_else(|| panic!("no output: {}", text(&out.stderr)));
    assert_eq!(lines[at + 1], "second");
    assert_eq!(
        lines[at + 2].len(),
        20 * 1024 * 1024,
        "the long line is whole"
    );
    assert!(lines[at + 2].bytes().all(|b| b == b'x'));
    assert_eq!(&lines[at + 3..at + 5], ["third", "last"]);
    assert_eq!(
        lines[at + 1..]
            .iter()
            .map(|l| l.bytes().filter(|&b| b == b'x').count())
            .sum::<usize>(),
        20 * 1024 * 1024,
        "the long line arrives once"
    );
}

/// A task's result whose reading back in the caller panics for 0.
#[derive(serde::Serialize)]
struct Fragile(u32);

impl<'de> serde::Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fragile, D::Error> {
        let n = u32::deserialize(d)?;
        assert_ne!(n, 0, "the result cannot be read back");
        Ok(Fragile(n))
    }
}

/// The pids of the processes whose parent is `pid`, zombies included.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == pid).then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

#[test]
fn a_panic_in_the_caller_stops_and_reaps_every_worker() {
    passes_in_child(
        "execute::a_panic_in_the_caller_stops_and_reaps_every_worker",
        || {
            let marker = unique("6");
            let needle = format!("sleep 30.{marker}");
            let started = Instant::now();
            let caught = std::panic::catch_unwind(|| {
                with_settings(Settings::new().hide("everything"), || {
                    Execute::new("fragile")
                        .hosts(names(4))
                        .parallel(true)
                        .run(|| {
                            if env().host_string().as_deref() == Some("h0") {
                                // The others are busy by now.
                                local("sleep 1")?;
                                return Ok(Fragile(0));
                            }
                            local(&needle)?;
                            Ok(Fragile(1))
                        })
                })
            });
            assert!(caught.is_err(), "reading back h0's result panics");
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the workers were stopped, not waited for ({:?})",
                started.elapsed()
            );
            assert_eq!(
                children_of(std::process::id()),
                Vec::<u32>::new(),
                "every worker was reaped"
            );
            let stopped = Instant::now();
            while process_running_with(&needle) {
                assert!(
                    stopped.elapsed() < Duration::from_secs(5),
                    "a worker's local command survived"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        },
    );
}

/// The child side of the SIGINT tests: runs `sleep 30.<marker>` with
/// `local`, inside a serial `execute` or not, and exits with 130 when it
/// was interrupted.
fn sleep_in_local(inside_execute: bool) {
    let marker = std::env::var("TWILL_SIGINT_MARKER").unwrap();
    let cmd = format!("sleep 30.{marker}");
    let result = with_settings(Settings::new().hide("everything"), || {
        if inside_execute {
            Execute::new("wait")
                .hosts(["h1", "h2"])
                .parallel(false)
                .run(|| {
                    local(&cmd)?;
                    Ok(())
                })
                .map(drop)
        } else {
            local(&cmd).map(drop)
        }
    });
    std::process::exit(match result {
        Err(e) if e.kind() == ErrorKind::Interrupted => 130,
        Ok(()) => 0,
        Err(_) => 1,
    });
}

/// Starts `test_name` in a child, waits until its `local` command runs,
/// sends the child SIGINT, and checks that it ends at once with 130 and
/// leaves no local process behind.
fn sigint_reaches_the_local_command(test_name: &str) {
    let marker = unique("7");
    let needle = format!("sleep 30.{marker}");
    let mut child = child_command(test_name)
        .env("TWILL_SIGINT_MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !process_running_with(&needle) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the local command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let interrupted = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if interrupted.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SIGINT did not stop the local command: still waiting after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    let gone = Instant::now();
    while process_running_with(&needle) {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "the local command survived the interrupt"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_stops_a_local_command_inside_a_serial_execute() {
    let name = "execute::sigint_stops_a_local_command_inside_a_serial_execute";
    if is_child(name) {
        sleep_in_local(true);
    }
    sigint_reaches_the_local_command(name);
}

#[test]
fn sigint_stops_a_local_command_outside_execute() {
    let name = "execute::sigint_stops_a_local_command_outside_execute";
    if is_child(name) {
        sleep_in_local(false);
    }
    sigint_reaches_the_local_command(name);
}

/// The value of the `n` setting that `Execute::param("n", ...)` gives each
/// run.
fn n() -> u64 {
    env().get_str("n").unwrap().parse().unwrap()
}

#[test]
fn worker_results_come_back_in_list_order_not_finishing_order() {
    passes_in_child(
        "execute::worker_results_come_back_in_list_order_not_finishing_order",
        || {
            let values: Vec<String> = (0..6).map(|i| i.to_string()).collect();
            let results = with_settings(Settings::new().hide("everything"), || {
                Execute::new("square")
                    .param("n", &values)
                    .parallel(true)
                    .pool_size(3)
                    .run(|| {
                        // The first values finish last.
                        std::thread::sleep(Duration::from_millis(60 * (6 - n())));
                        Ok((n() * n(), std::process::id()))
                    })
            })
            .unwrap();
            assert_eq!(results.hosts(), values);
            let mut pids = Vec::new();
            for (value, result) in results.iter() {
                let (square, pid) = result.as_ref().unwrap();
                let v: u64 = value.parse().unwrap();
                assert_eq!(*square, v * v, "{value}");
                pids.push(*pid);
            }
            pids.sort();
            pids.dedup();
            assert_eq!(pids.len(), 6, "one worker per value");
            assert!(
                !pids.contains(&std::process::id()),
                "none ran in the caller"
            );
        },
    );
}

#[test]
fn a_panicking_worker_is_its_hosts_failure_and_the_others_finish() {
    passes_in_child(
        "execute::a_panicking_worker_is_its_hosts_failure_and_the_others_finish",
        || {
            let task = || {
                if n() == 1 {
                    panic!("boom at {}", n());
                }
                Ok(n())
            };
            let run = |warn_only: bool| {
                with_settings(
                    Settings::new().hide("everything").warn_only(warn_only),
                    || {
                        Execute::new("fragile")
                            .param("n", ["0", "1", "2"])
                            .parallel(true)
                            .run(task)
                    },
                )
            };
            let results = run(true).unwrap();
            assert_eq!(results.get("0").unwrap().as_ref().unwrap(), &0);
            assert_eq!(results.get("2").unwrap().as_ref().unwrap(), &2);
            let e = results.get("1").unwrap().as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TaskFailed);
            assert_eq!(e.message(), "the task panicked: boom at 1");
            assert_eq!(e.host(), Some("1"));

            let e = run(false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TaskFailed);
            assert_eq!(
                e.message(),
                "One or more hosts failed while executing task 'fragile'\n    1: the task panicked: boom at 1"
            );
        },
    );
}

#[test]
fn a_worker_killed_by_a_signal_is_its_hosts_failure() {
    passes_in_child(
        "execute::a_worker_killed_by_a_signal_is_its_hosts_failure",
        || {
            let results = with_settings(Settings::new().hide("everything").warn_only(true), || {
                Execute::new("doomed")
                    .param("n", ["0", "1", "2"])
                    .parallel(true)
                    .run(|| {
                        if n() == 2 {
                            // The worker kills its own process.
                            let me = std::process::id().to_string();
                            let _ = std::process::Command::new("kill")
                                .args(["-KILL", &me])
                                .status();
                            std::thread::sleep(Duration::from_secs(30));
                        }
                        Ok(n())
                    })
            })
            .unwrap();
            assert_eq!(results.get("0").unwrap().as_ref().unwrap(), &0);
            assert_eq!(results.get("1").unwrap().as_ref().unwrap(), &1);
            let e = results.get("2").unwrap().as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TaskFailed);
            assert_eq!(e.message(), "worker killed by signal 9");
            assert_eq!(e.host(), Some("2"));
            assert_eq!(
                children_of(std::process::id()),
                Vec::<u32>::new(),
                "every worker was reaped"
            );
        },
    );
}

#[test]
fn output_blocks_print_each_hosts_output_whole() {
    let out = in_child(
        "execute::output_blocks_print_each_hosts_output_whole",
        || {
            with_settings(Settings::new().hide("running"), || {
                Execute::new("talk")
                    .param("n", ["a", "b", "c"])
                    .parallel(true)
                    .output_blocks(true)
                    .run(|| {
                        // Every worker writes a line, waits, writes the
                        // next: line by line, the hosts would interleave.
                        let me = env().get_str("n").unwrap().to_string();
                        local(format!(
                            "for i in 1 2 3; do echo \"block {me} line $i\"; sleep 0.2; done"
                        ))?;
                        Ok(())
                    })
            })
            .unwrap();
        },
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("block ").map(|at| &l[at..]))
        .collect();
    assert_eq!(lines.len(), 9, "{stdout}\n{}", text(&out.stderr));
    for block in lines.chunks(3) {
        let host = &block[0]["block ".len().."block ".len() + 1];
        let expected: Vec<String> = (1..=3).map(|i| format!("block {host} line {i}")).collect();
        assert_eq!(block, expected, "one host's lines together:\n{stdout}");
    }
}

/// The child side of the parallel SIGINT test: a parallel run whose tasks
/// sleep; exits with 130 when the run ends as interrupted.
fn sleep_in_workers() {
    let result = with_settings(Settings::new().hide("everything"), || {
        Execute::new("nap")
            .param("n", ["0", "1", "2", "3"])
            .parallel(true)
            .run(|| {
                std::thread::sleep(Duration::from_secs(30));
                Ok(())
            })
    });
    std::process::exit(match result {
        Err(e) if e.kind() == ErrorKind::Interrupted => 130,
        Ok(_) => 0,
        Err(_) => 1,
    });
}

#[test]
fn sigint_ends_a_parallel_execute_at_once_and_no_worker_remains() {
    let name = "execute::sigint_ends_a_parallel_execute_at_once_and_no_worker_remains";
    if is_child(name) {
        sleep_in_workers();
    }
    let mut child = child_command(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let workers = loop {
        let workers = children_of(child.id());
        if workers.len() == 4 {
            break workers;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the workers never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let command_line = |pid: u32| std::fs::read(format!("/proc/{pid}/cmdline")).ok();
    let seen: Vec<(u32, Option<Vec<u8>>)> = workers.iter().map(|&p| (p, command_line(p))).collect();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let interrupted = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if interrupted.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SIGINT did not end the parallel run: still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(130),
        "the run ended as interrupted: {status:?}"
    );
    assert!(
        interrupted.elapsed() < Duration::from_secs(6),
        "the workers were stopped, not waited for ({:?})",
        interrupted.elapsed()
    );
    // A worker still alive would have the same command line as before.
    for (pid, before) in seen {
        let now = command_line(pid);
        assert!(
            now.is_none() || now != before,
            "worker {pid} outlived the run"
        );
    }
}

#[test]
fn a_worker_refuses_to_prompt_and_keeps_the_callers_parallel_setting() {
    passes_in_child(
        "execute::a_worker_refuses_to_prompt_and_keeps_the_callers_parallel_setting",
        || {
            for setting in [false, true] {
                let results = with_settings(
                    Settings::new()
                        .hide("everything")
                        .warn_only(true)
                        .parallel(setting),
                    || {
                        Execute::new("ask")
                            .param("n", ["0", "1"])
                            .parallel(true)
                            .run(|| {
                                let seen = env().parallel();
                                let e = twill::Prompt::new("Go?").ask().unwrap_err();
                                Ok((seen, e.kind() == ErrorKind::Prompt, e.message().to_string()))
                            })
                    },
                )
                .unwrap();
                for (_, result) in results.iter() {
                    let (seen, refused, message) = result.as_ref().unwrap();
                    assert_eq!(*seen, setting, "the task sees the caller's setting");
                    assert!(refused, "{message}");
                    assert!(
                        message.ends_with("but input would be ambiguous in parallel mode"),
                        "{message}"
                    );
                }
            }
        },
    );
}

/// A task value that serde cannot carry to another process.
struct Here {
    thread: std::thread::ThreadId,
    process: u32,
    squared: std::rc::Rc<u64>,
}

#[test]
fn run_serial_takes_any_value_and_stays_in_the_callers_thread() {
    let results = with_settings(Settings::new().hide("everything"), || {
        Execute::new("here")
            .param("n", ["3", "1", "2"])
            // Asked for, and not taken: `run_serial` is serial.
            .parallel(true)
            .run_serial(|| {
                Ok(Here {
                    thread: std::thread::current().id(),
                    process: std::process::id(),
                    squared: std::rc::Rc::new(n() * n()),
                })
            })
    })
    .unwrap();
    assert_eq!(results.hosts(), ["3", "1", "2"]);
    for (value, result) in results.iter() {
        let here = result.as_ref().unwrap();
        let v: u64 = value.parse().unwrap();
        assert_eq!(*here.squared, v * v);
        assert_eq!(here.thread, std::thread::current().id());
        assert_eq!(here.process, std::process::id());
    }

    let e = with_settings(Settings::new().hide("everything"), || {
        Execute::new("stops").param("n", ["1", "2"]).run_serial(
            || -> twill::Result<std::rc::Rc<u64>> {
                Err(twill::Error::new(
                    ErrorKind::Aborted,
                    format!("stop at {}", n()),
                ))
            },
        )
    })
    .unwrap_err();
    assert_eq!(
        e.message(),
        "stop at 1",
        "the first failure ends a serial run"
    );
}

//! `execute` without a network: tasks that never connect, so that the
//! hosts are only names. Worker processes, descriptors, output relaying
//! and interrupts.

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
    let out = in_child(
        "execute::a_thousand_workers_fit_under_a_limit_of_1024_descriptors",
        || {
            // Three pipes per worker: not every worker fits at once, and the
            // hard limit leaves no room to raise.
            set_nofile(1024, 1024);
            thousand_hosts_in_parallel();
            println!("ALL BACK");
        },
    );
    assert!(
        text(&out.stdout).contains("ALL BACK"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let out = in_child(
        "execute::the_soft_descriptor_limit_is_raised_to_the_hard_one",
        || {
            // Raising a hard limit needs root, which the project's scripts
            // are; otherwise the present one must be above 1024.
            let (_, hard) = nofile();
            let hard = if hard > 1024 { hard } else { 4096 };
            set_nofile(1024, hard);
            thousand_hosts_in_parallel();
            assert_eq!(nofile(), (hard, hard));
            println!("RAISED");
        },
    );
    assert!(
        text(&out.stdout).contains("RAISED"),
        "{}",
        text(&out.stderr)
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
    let out = in_child(
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
                            if env().host_string() == Some("h0") {
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
            println!("ALL STOPPED");
        },
    );
    assert!(
        text(&out.stdout).contains("ALL STOPPED"),
        "{}",
        text(&out.stderr)
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

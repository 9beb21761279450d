//! Speed of twill against the OpenSSH client, on the same server in the
//! same run. Prints each figure beside OpenSSH's and their ratio.
//!
//! Needs the throwaway server's variables (`. /tmp/twill-sshd/env.sh` after
//! `tests-remote/sshd-server.sh start`), then:
//! `cargo run --release --example bench` (or `./bench.sh`, which does both).
//!
//! Figures:
//! 1. one command as a whole cold process (connect, authenticate, `true`)
//!    vs `ssh host true`;
//! 2. 100 sequential commands on one cached connection vs `ssh` over a
//!    ControlMaster socket;
//!    Then the same with the run recorded in a journal, against none
//!    (medians of 5 alternating rounds; the journal may cost 5% at most);
//! 3. 100 MB upload and download vs `scp` (medians of 5 alternating rounds);
//! 4. a command printing 50 MB, captured, vs `ssh host cmd > /dev/null`,
//!    with the peak memory of the capturing process, and the same streamed
//!    to a writer;
//! 5. one 80 MB line from a parallel worker, printed, as a whole process
//!    with its output to `/dev/null`, vs `ssh host cmd > /dev/null`;
//! 6. `uname -a` on 50 hosts in parallel as a whole process, beside one
//!    cold single-host command; then on 200 hosts with a pool of 50, with
//!    the peak memory of the parent process (the server must listen on 200
//!    addresses: `TWILL_SSHD_HOSTS=200`; `bench.sh` starts it so);
//! 7. 200 MB from one host to another through `twill::pipe`, as a whole
//!    process, vs `ssh a cat | ssh b 'cat > /dev/null'` (medians of 3
//!    alternating rounds), with the peak memory of the piping process;
//! 8. 200 hosts (pool 50) each printing 10,000 lines as fast as they can,
//!    the run recorded as the command line records it: shown in the live
//!    view at a terminal (a pty this process drains) against Fabric's lines
//!    to `/dev/null` (medians of 3 alternating rounds; the view may cost
//!    10% at most), with the peak memory of the process showing the view.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twill::{download, run, run_with, upload, with_settings, RunOptions, Settings};

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: source the test server's env.sh first"))
}

fn settings() -> Settings {
    Settings::new()
        .host_string(format!(
            "{}@{}:{}",
            var("TWILL_TEST_USER"),
            var("TWILL_TEST_HOST"),
            var("TWILL_TEST_PORT")
        ))
        .key_filename([var("TWILL_TEST_KEY")])
        .known_hosts(var("TWILL_TEST_KNOWN_HOSTS"))
        .no_agent(true)
        .no_keys(true)
        .use_ssh_config(false)
        .hide("everything")
}

/// The OpenSSH client options for the test server; `port_flag` is `-p`
/// for ssh and `-P` for scp.
fn openssh_options(port_flag: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "-o".into(),
        format!("UserKnownHostsFile={}", var("TWILL_TEST_KNOWN_HOSTS")),
        "-i".into(),
        var("TWILL_TEST_KEY"),
        port_flag.into(),
        var("TWILL_TEST_PORT"),
    ]);
    args
}

fn ssh_args() -> Vec<String> {
    openssh_options("-p")
}

fn target() -> String {
    format!("{}@{}", var("TWILL_TEST_USER"), var("TWILL_TEST_HOST"))
}

fn time_cmd(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success(), "{cmd:?} failed");
    t.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, twill: f64, openssh: f64, unit: &str, lower_is_better: bool) {
    let ratio = twill / openssh;
    let verdict = if lower_is_better {
        "twill/openssh (lower is better)"
    } else {
        "twill/openssh (higher is better)"
    };
    println!("{what:<62} twill {twill:>9.2} {unit:<5} openssh {openssh:>9.2} {unit:<5} ratio {ratio:.2}  {verdict}");
}

/// Peak resident memory of this process, in MiB (Linux VmHWM).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The size of the pipe figure's stream.
const PIPE_MB: u64 = 200;

/// The two addresses of the pipe figure, as host strings.
fn pipe_hosts() -> (String, String) {
    let addrs: Vec<String> = var("TWILL_TEST_HOSTS")
        .split(',')
        .take(2)
        .map(|a| format!("{}@{a}:{}", var("TWILL_TEST_USER"), var("TWILL_TEST_PORT")))
        .collect();
    assert_eq!(addrs.len(), 2, "the server listens on one address only");
    (addrs[0].clone(), addrs[1].clone())
}

/// A command that prints one line of 80 MB (then its newline).
/// The hosts of the live view's figure, and what each prints.
const FLOOD_HOSTS: usize = 200;
const FLOOD: &str = "seq 1 10000";

/// A fresh directory under the system's temporary directory.
fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` with a new pseudo-terminal (200x50) as its standard input,
/// output and error and controlling terminal, reading everything it draws;
/// how long it took, and what it wrote on standard error is not kept.
fn time_in_pty(mut cmd: Command) -> (Duration, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 50,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors and reads the size.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(r, 0, "openpty failed");
    // SAFETY: the descriptors were just made and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .env("TERM", "xterm-256color");
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    // The child's copies are its own now; the drain ends at EIO once it
    // has exited.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut tail = Vec::new();
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(4096);
            tail.drain(..keep);
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    let status = child.wait().unwrap();
    let took = start.elapsed();
    let tail = drain.join().unwrap();
    assert!(status.success(), "the run failed: {tail}");
    (took, tail)
}

const LONG_LINE: &str = "head -c 83886080 /dev/zero | tr '\\0' x; echo";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child modes, run as separate processes so each is measured alone.
    match args.get(1).map(String::as_str) {
        Some("--once") => {
            with_settings(settings(), || run("true")).expect("run true");
            return;
        }
        Some("--capture") => {
            let out = with_settings(settings(), || {
                run_with(
                    "head -c 52428800 /dev/zero | tr '\\0' x",
                    &RunOptions::new().pty(false),
                )
            })
            .unwrap();
            assert_eq!(out.len(), 52_428_800);
            println!("{:.1}", peak_rss_mib());
            return;
        }
        Some("--execute") => {
            let n: usize = args[2].parse().unwrap();
            let pool: usize = args[3].parse().unwrap();
            let hosts: Vec<String> = var("TWILL_TEST_HOSTS")
                .split(',')
                .take(n)
                .map(|a| format!("{}@{a}:{}", var("TWILL_TEST_USER"), var("TWILL_TEST_PORT")))
                .collect();
            assert_eq!(
                hosts.len(),
                n,
                "the server listens on fewer than {n} addresses"
            );
            let results = with_settings(settings(), || {
                twill::Execute::new("uname")
                    .hosts(&hosts)
                    .parallel(true)
                    .pool_size(pool)
                    .run(|| Ok(run("uname -a")?.to_string()))
            })
            .unwrap();
            assert!(results.succeeded() && results.len() == n);
            println!("{:.1}", peak_rss_mib());
            return;
        }
        Some("--long-line") => {
            // The line goes through a worker's pipe to the caller, which
            // prints it; the output group is shown so that it really is.
            let host = with_settings(settings(), || {
                twill::env().host_string().unwrap().to_string()
            });
            let results = with_settings(settings().show("stdout"), || {
                twill::Execute::new("long-line")
                    .hosts([host])
                    .parallel(true)
                    .run(|| {
                        run_with(LONG_LINE, &RunOptions::new().pty(false))?;
                        Ok(())
                    })
            })
            .unwrap();
            assert!(results.succeeded());
            return;
        }
        Some("--pipe") => {
            let (from, to) = pipe_hosts();
            let done = with_settings(settings(), || {
                twill::pipe(
                    (&from, &format!("cat {}", args[2])),
                    (&to, "cat > /dev/null"),
                )
            })
            .unwrap();
            assert_eq!(done.bytes(), PIPE_MB << 20);
            println!("{:.1}", peak_rss_mib());
            return;
        }
        Some("--flood") => {
            // `live` or `linewise`: the same run, shown one way or the other.
            let live = args[2] == "live";
            let hosts: Vec<String> = var("TWILL_TEST_HOSTS")
                .split(',')
                .take(FLOOD_HOSTS)
                .map(|a| format!("{}@{a}:{}", var("TWILL_TEST_USER"), var("TWILL_TEST_PORT")))
                .collect();
            assert_eq!(
                hosts.len(),
                FLOOD_HOSTS,
                "the server listens on too few addresses"
            );
            let journal = tempfile_dir("twill-bench-flood");
            let scope = settings()
                .show("stdout")
                .live(live)
                .journal_dir(journal.to_string_lossy().into_owned());
            let results = with_settings(scope, || {
                let record = twill::events::record_run("bench-flood")?;
                let r = twill::Execute::new("flood")
                    .hosts(&hosts)
                    .parallel(true)
                    .pool_size(50)
                    .run(|| {
                        run_with(FLOOD, &RunOptions::new().pty(false))?;
                        Ok(())
                    });
                record.end();
                r
            })
            .unwrap();
            let _ = std::fs::remove_dir_all(&journal);
            assert!(results.succeeded());
            eprintln!("PEAK {:.1}", peak_rss_mib());
            return;
        }
        Some("--stream") => {
            let out = with_settings(settings(), || {
                run_with(
                    "head -c 52428800 /dev/zero | tr '\\0' x",
                    &RunOptions::new().pty(false).stdout_to(std::io::sink()),
                )
            })
            .unwrap();
            assert_eq!(out.len(), 0);
            println!("{:.1}", peak_rss_mib());
            return;
        }
        _ => {}
    }
    let me = std::env::current_exe().unwrap();
    let rounds = 10;

    // 1. Cold process: connect, authenticate, `true`.
    let mut tw = Duration::ZERO;
    let mut os = Duration::ZERO;
    for _ in 0..rounds {
        let mut c = Command::new(&me);
        c.arg("--once");
        tw += time_cmd(c);
        let mut c = Command::new("ssh");
        c.args(ssh_args()).arg(target()).arg("true");
        os += time_cmd(c);
    }
    report(
        "cold process: connect + auth + `true` (ms, mean of 10)",
        ms(tw) / rounds as f64,
        ms(os) / rounds as f64,
        "ms",
        true,
    );

    // 2. 100 sequential commands on one connection vs ControlMaster.
    let n = 100;
    let control = std::env::temp_dir().join(format!("twill-bench-cm-{}", std::process::id()));
    let cm = |extra: &[&str]| {
        let mut c = Command::new("ssh");
        c.args(ssh_args())
            .args(["-o", "ControlMaster=auto", "-o"])
            .arg(format!("ControlPath={}", control.display()));
        c.args(["-o", "ControlPersist=60"]).args(extra);
        c
    };
    let mut warm = cm(&[]);
    warm.arg(target()).arg("true");
    time_cmd(warm);
    let t = Instant::now();
    for _ in 0..n {
        let mut c = cm(&[]);
        c.arg(target()).arg("true");
        time_cmd(c);
    }
    let os = t.elapsed();
    let mut stop = cm(&["-O", "exit"]);
    stop.arg(target());
    let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    let tw = with_settings(settings(), || {
        run("true").unwrap();
        let t = Instant::now();
        for _ in 0..n {
            run("true").unwrap();
        }
        t.elapsed()
    });
    report(
        "100 sequential `true` on one connection (ms per command)",
        ms(tw) / n as f64,
        ms(os) / n as f64,
        "ms",
        true,
    );

    // 2b. The journal's cost: the same commands while a run is recorded
    // (an event as each starts and ends, written to its file at once),
    // against none; alternating rounds, medians of five.
    let journals = tempfile::tempdir().unwrap();
    let recorded = settings().journal_dir(journals.path().to_str().unwrap());
    let (mut off, mut on) = (Vec::new(), Vec::new());
    with_settings(recorded, || {
        let hundred = || {
            let t = Instant::now();
            for _ in 0..n {
                run("true").unwrap();
            }
            t.elapsed()
        };
        for _ in 0..5 {
            off.push(hundred());
            let journal = twill::events::record_run("bench").unwrap();
            on.push(hundred());
            journal.end();
        }
    });
    let mid = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (off, on) = (ms(mid(off)) / n as f64, ms(mid(on)) / n as f64);
    let overhead = (on / off - 1.0) * 100.0;
    println!(
        "{:<62} off {off:>9.2} ms    on {on:>9.2} ms    overhead {overhead:+.1}%  {}",
        "100 sequential `true`, journal off vs on (ms per command)",
        if overhead <= 5.0 {
            "ok (<= 5%)"
        } else {
            "OVER 5%"
        }
    );

    // 3. 100 MB upload and download vs scp.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let mb = 100u64;
    let status = Command::new("head")
        .args(["-c", &(mb << 20).to_string(), "/dev/urandom"])
        .stdout(std::fs::File::create(&big).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let remote = format!("/tmp/twill-bench-{}.bin", std::process::id());
    // scp over a ControlMaster, so that neither side's figure includes
    // connection setup.
    let mut master = cm(&["-fN"]);
    master.arg(target());
    time_cmd(master);
    let scp = |from: &str, to: &str| {
        let mut c = Command::new("scp");
        c.arg("-q").args(openssh_options("-P"));
        c.arg("-o")
            .arg(format!("ControlPath={}", control.display()));
        c.args([from, to]);
        c
    };
    let remote_spec = format!("{}:{remote}", target());
    let back = dir.path().join("back.bin");
    // Alternating rounds; each figure is the median of its five runs: one
    // transfer's time on a shared 2-core machine varies by a third.
    let rounds = 5;
    let (mut up_os, mut down_os, mut up_tw, mut down_tw) = (vec![], vec![], vec![], vec![]);
    with_settings(settings(), || {
        run("true").unwrap(); // connected before timing, like scp over the master
        for _ in 0..rounds {
            up_os.push(time_cmd(scp(big.to_str().unwrap(), &remote_spec)));
            down_os.push(time_cmd(scp(&remote_spec, back.to_str().unwrap())));
            let t = Instant::now();
            upload(&big, &remote).unwrap();
            up_tw.push(t.elapsed());
            let t = Instant::now();
            download(&remote, &back).unwrap();
            down_tw.push(t.elapsed());
        }
        run(format!("rm -f {remote}")).unwrap();
    });
    let mut stop = cm(&["-O", "exit"]);
    stop.arg(target());
    let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (up_os, down_os, up_tw, down_tw) = (
        median(up_os),
        median(down_os),
        median(up_tw),
        median(down_tw),
    );
    assert_eq!(std::fs::metadata(&back).unwrap().len(), mb << 20);
    let mbps = |d: Duration| mb as f64 / d.as_secs_f64();
    report(
        "100 MB upload vs scp over a ControlMaster (MB/s, median of 5)",
        mbps(up_tw),
        mbps(up_os),
        "MB/s",
        false,
    );
    report(
        "100 MB download vs scp over a ControlMaster (MB/s, median of 5)",
        mbps(down_tw),
        mbps(down_os),
        "MB/s",
        false,
    );

    // 4. 50 MB of output.
    let cmd = "head -c 52428800 /dev/zero | tr '\\0' x";
    let mut c = Command::new("ssh");
    c.args(ssh_args()).arg(target()).arg(cmd);
    let os = time_cmd(c);
    let t = Instant::now();
    let out = Command::new(&me).arg("--capture").output().unwrap();
    let tw = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    report(
        "50 MB of output, captured, whole process (ms)",
        ms(tw),
        ms(os),
        "ms",
        true,
    );
    let out = Command::new(&me).arg("--stream").output().unwrap();
    let peak_stream: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    println!("{:<58} captured: peak RSS {peak:.1} MiB (output 50.0 MiB); streamed to a writer: peak RSS {peak_stream:.1} MiB", "50 MB of output, memory");

    // 5. One 80 MB line through a parallel worker.
    let mut c = Command::new("ssh");
    c.args(ssh_args()).arg(target()).arg(LONG_LINE);
    let os = time_cmd(c);
    let mut c = Command::new(&me);
    c.arg("--long-line");
    let tw = time_cmd(c);
    report(
        "one 80 MB line, parallel, printed, whole process (ms)",
        ms(tw),
        ms(os),
        "ms",
        true,
    );

    // 6. execute over many hosts.
    let single = {
        let mut total = Duration::ZERO;
        for _ in 0..3 {
            let mut c = Command::new(&me);
            c.arg("--once");
            total += time_cmd(c);
        }
        total / 3
    };
    for (n, pool) in [(50usize, 50usize), (200, 50)] {
        let t = Instant::now();
        let out = Command::new(&me)
            .args(["--execute", &n.to_string(), &pool.to_string()])
            .output()
            .unwrap();
        let took = t.elapsed();
        if !out.status.success() {
            println!(
                "execute on {n} hosts: failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            continue;
        }
        let peak: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0.0);
        println!(
            "{:<58} {:>9.0} ms; one cold single-host command {:.0} ms; ratio {:.2}; parent peak RSS {peak:.1} MiB",
            format!("`uname -a` on {n} hosts in parallel, pool {pool}"),
            ms(took),
            ms(single),
            took.as_secs_f64() / single.as_secs_f64()
        );
        if n == 50 {
            // OpenSSH doing the same: one `ssh` process per host, all at once.
            let t = Instant::now();
            let children: Vec<_> = var("TWILL_TEST_HOSTS")
                .split(',')
                .take(n)
                .map(|a| {
                    Command::new("ssh")
                        .args(ssh_args())
                        .arg(format!("{}@{a}", var("TWILL_TEST_USER")))
                        .arg("uname -a")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success());
            }
            let os = t.elapsed();
            report(
                &format!("`uname -a` on {n} hosts in parallel vs {n} `ssh` at once (ms)"),
                ms(took),
                ms(os),
                "ms",
                true,
            );
        }
    }

    // 7. 200 MB from one host to another through this process.
    let source = format!("/tmp/twill-bench-pipe-{}.bin", std::process::id());
    with_settings(settings(), || {
        run(format!("head -c {PIPE_MB}M /dev/urandom > {source}")).unwrap();
    });
    let (from, to) = pipe_hosts();
    let address = |host: &str| {
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        host.to_string()
    };
    let (mut tw, mut os, mut peaks) = (vec![], vec![], vec![]);
    for _ in 0..3 {
        let t = Instant::now();
        let mut sender = Command::new("ssh")
            .args(ssh_args())
            .arg(address(&from))
            .arg(format!("cat {source}"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let receiver = Command::new("ssh")
            .args(ssh_args())
            .arg(address(&to))
            .arg("cat > /dev/null")
            .stdin(sender.stdout.take().unwrap())
            .status()
            .unwrap();
        assert!(sender.wait().unwrap().success() && receiver.success());
        os.push(t.elapsed());
        let t = Instant::now();
        let out = Command::new(&me)
            .args(["--pipe", &source])
            .output()
            .unwrap();
        tw.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        peaks.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(0.0),
        );
    }
    with_settings(settings(), || run(format!("rm -f {source}")).unwrap());
    let mbps = |d: Duration| PIPE_MB as f64 / d.as_secs_f64();
    report(
        "200 MB host to host, pipe vs ssh | ssh, whole process (MB/s)",
        mbps(median(tw)),
        mbps(median(os)),
        "MB/s",
        false,
    );
    let peak = peaks.iter().cloned().fold(0.0, f64::max);
    println!(
        "{:<62} peak RSS {peak:.1} MiB  {}",
        "200 MB host to host, memory of the piping process",
        if peak < 32.0 {
            "ok (< 32 MiB)"
        } else {
            "OVER 32 MiB"
        }
    );

    // 8. The live view against Fabric's lines, 200 hosts flooding output.
    let (mut live, mut lines) = (Vec::new(), Vec::new());
    let mut peak = 0.0f64;
    for _ in 0..3 {
        let mut c = Command::new(&me);
        c.args(["--flood", "linewise"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        lines.push(time_cmd(c));
        let mut c = Command::new(&me);
        c.args(["--flood", "live"]);
        let (took, tail) = time_in_pty(c);
        live.push(took);
        if let Some(p) = tail
            .rsplit("PEAK ")
            .next()
            .and_then(|p| p.split_whitespace().next())
        {
            peak = peak.max(p.parse().unwrap_or(0.0));
        }
    }
    let (live, lines) = (ms(median(live)), ms(median(lines)));
    let cost = (live / lines - 1.0) * 100.0;
    println!(
        "{:<62} live {live:9.0} ms    linewise {lines:9.0} ms    cost {cost:+.1}%  {}",
        "200 hosts x 10,000 lines, live view vs lines to /dev/null",
        if cost <= 10.0 {
            "ok (<= 10%)"
        } else {
            "OVER 10%"
        }
    );
    println!(
        "{:<62} peak RSS {peak:.1} MiB",
        "200 hosts x 10,000 lines, memory of the process showing the view"
    );
}

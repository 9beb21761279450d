//! The progress bars of long transfers. At a terminal (a tmux pane, read
//! back) a file that takes long enough shows a line with its host, path,
//! bytes and rate (and with a known size, the bar, the size and the time
//! left), one line per host in a parallel run; the line is gone once the
//! file is done or Ctrl-C stopped it, and the usual lines stay. Output that
//! is not a terminal never gets any of it, nor does the journal.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

use assert_cmd::prelude::*;
use regex::Regex;

use crate::support::{port, text, var, RemoteDir};
use crate::terminal::Pane;

/// A host of the server as the plain test user: the `n`th loopback
/// address.
fn host(n: usize) -> String {
    let addr = var("TWILL_TEST_HOSTS")
        .split(',')
        .nth(n)
        .expect("enough test hosts")
        .to_string();
    format!("{}@{addr}:{}", var("TWILL_TEST_USER"), port())
}

/// The `twill` binary's command line reaching the server, with `extra`
/// options, its journal in `journal` (none when `None`).
fn twill_line(journal: Option<&Path>, extra: &[&str]) -> Vec<String> {
    let mut line = vec![assert_cmd::cargo::cargo_bin("twill")
        .to_string_lossy()
        .into_owned()];
    line.extend(crate::support::cli_options(true));
    match journal {
        Some(dir) => line.extend(["--journal-dir".into(), dir.display().to_string()]),
        None => line.push("--no-journal".into()),
    }
    line.extend(extra.iter().map(|s| s.to_string()));
    line
}

/// A sparse local file of `size` bytes, far longer to send than a test
/// waits: the tests stop it with Ctrl-C once they have seen its bar.
fn huge_file(dir: &Path, size: u64) -> String {
    let path = dir.join("huge.bin");
    File::create(&path).unwrap().set_len(size).unwrap();
    path.display().to_string()
}

/// The lines of `shown` that are progress bars: a rate, `<bytes>/s`.
fn bar_lines(shown: &str) -> Vec<&str> {
    let rate = Regex::new(r"\d(\.\d+)? (B|KiB|MiB|GiB)/s").unwrap();
    shown.lines().filter(|l| rate.is_match(l)).collect()
}

/// Waits for `needle`; what the pane shows then, and the one bar in it,
/// which names the host and the remote path of a put.
fn one_put_bar(pane: &Pane, needle: &str, host: &str, target: &str) -> (String, String) {
    let shown = pane.wait_for(needle);
    let bars = bar_lines(&shown);
    assert_eq!(bars.len(), 1, "one bar:\n{shown}");
    let bar = bars[0].to_string();
    assert!(
        bar.starts_with(&format!("[{host}] put: {target} ")),
        "the bar names the host and the remote path: {bar:?}"
    );
    (shown, bar)
}

/// Asserts that nothing of a bar is left in the pane.
fn assert_no_bar(shown: &str) {
    assert!(bar_lines(shown).is_empty(), "a bar was left:\n{shown}");
    assert!(!shown.contains(" ETA "), "a bar was left:\n{shown}");
    assert!(!shown.contains("[="), "a bar was left:\n{shown}");
}

/// Every event in the journals of `dir`, as JSON lines.
fn journal_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

#[test]
fn a_long_upload_shows_its_bar_until_ctrl_c_clears_it() {
    let local = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let big = huge_file(local.path(), 64 << 30);
    let remote = RemoteDir::new();
    let target = remote.path("huge.bin");
    let h = host(0);
    let mut line = twill_line(Some(journal.path()), &["-H", &h, "put", &big, &target]);
    line.extend(["--set".into(), "progress_delay=0.2".into()]);
    let pane = Pane::start(&line);
    let (shown, bar) = one_put_bar(&pane, " ETA ", &h, &target);
    let bar = bar.as_str();
    let sized = Regex::new(r"\[[=> ]{24}\] \d+(\.\d+)? (B|KiB|MiB|GiB)/64\.00 GiB \d").unwrap();
    assert!(
        sized.is_match(bar),
        "the bar, the bytes of the size, then the rate: {bar:?}"
    );
    assert!(
        shown.contains(&format!("[{h}] put: {big} -> {target}\n")),
        "the usual line comes first:\n{shown}"
    );
    pane.press("C-c");
    let (code, _, shown) = pane.wait_for_exit();
    assert_eq!(code, 130, "{shown}");
    assert_no_bar(&shown);
    assert!(
        shown.contains(&format!("[{h}] put: {big} -> {target}\n")),
        "{shown}"
    );
    assert!(shown.contains("\nStopped.\n"), "{shown}");
    assert!(!remote.has("huge.bin"), "the unfinished upload was removed");
    // The journal has the transfer, and none of its progress.
    let events = journal_lines(journal.path());
    assert!(
        events
            .iter()
            .any(|l| l.contains(r#""event":"operation_ended""#)),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|l| l.contains(r#""event":"progress""#)),
        "progress is not history: {events:#?}"
    );
}

#[test]
fn a_long_download_shows_the_size_the_server_states_over_sftp_and_scp() {
    let remote = RemoteDir::new();
    let source = remote.path("huge.bin");
    File::create(&source).unwrap().set_len(64 << 30).unwrap();
    let local = tempfile::tempdir().unwrap();
    let addr = var("TWILL_TEST_HOSTS")
        .split(',')
        .next()
        .unwrap()
        .to_string();
    for port in [port(), var("TWILL_TEST_NO_SFTP_PORT")] {
        let h = format!("{}@{addr}:{port}", var("TWILL_TEST_USER"));
        let dest = local.path().join(format!("huge-{port}.bin"));
        let dest_text = dest.display().to_string();
        let mut line = twill_line(None, &["-H", &h, "get", &source, &dest_text]);
        line.extend(["--set".into(), "progress_delay=0.2".into()]);
        let pane = Pane::start(&line);
        let shown = pane.wait_for(" ETA ");
        let bars = bar_lines(&shown);
        assert_eq!(bars.len(), 1, "one bar:\n{shown}");
        assert!(
            bars[0].starts_with(&format!("[{h}] download: {source} ")),
            "{shown}"
        );
        assert!(bars[0].contains("/64.00 GiB "), "{shown}");
        pane.press("C-c");
        let (code, _, shown) = pane.wait_for_exit();
        assert_eq!(code, 130, "{shown}");
        assert_no_bar(&shown);
        assert!(
            shown.contains(&format!("[{h}] download: {dest_text} <- {source}\n")),
            "{shown}"
        );
        assert!(!dest.exists(), "nothing was kept of the stopped download");
    }
}

#[test]
fn a_piped_upload_shows_bytes_and_rate_and_its_bar_goes_when_done() {
    let local = tempfile::tempdir().unwrap();
    let fifo = local.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let remote = RemoteDir::new();
    let target = remote.path("piped.bin");
    let h = host(0);
    let fifo_text = fifo.display().to_string();
    let mut line = twill_line(None, &["-H", &h, "put", &fifo_text, &target]);
    line.extend(["--set".into(), "progress_delay=0".into()]);
    // Opened for reading and writing, the pipe never waits for twill to
    // open it; what is written waits in it until twill reads.
    let mut pipe = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let (go_on, resume) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..8 {
            pipe.write_all(&chunk).unwrap();
        }
        // The pipe stays open (twill waits for more) until the test has
        // seen the bar.
        let _ = resume.recv();
        pipe.write_all(&chunk).unwrap();
    });
    let pane = Pane::start(&line);
    let (_, bar) = one_put_bar(&pane, "/s", &h, &target);
    let bar = bar.as_str();
    // A pipe states no size: the bytes and the rate, no bar, no ETA.
    let no_size = Regex::new(r" \d+(\.\d+)? (B|KiB|MiB) \d+(\.\d+)? (B|KiB|MiB|GiB)/s$").unwrap();
    assert!(no_size.is_match(bar.trim_end()), "{bar:?}");
    assert!(!bar.contains("ETA"), "{bar:?}");
    go_on.send(()).unwrap();
    writer.join().unwrap();
    let (code, _, shown) = pane.wait_for_exit();
    assert_eq!(code, 0, "{shown}");
    assert_no_bar(&shown);
    assert!(
        shown.contains(&format!(
            "[{h}] put: {fifo_text} -> {target}\n\nDone.\nDisconnecting from {h}... done.\n"
        )),
        "the usual lines, and nothing between them:\n{shown}"
    );
    assert_eq!(fs::metadata(&target).unwrap().len(), 9 << 20);
}

#[test]
fn parallel_uploads_show_one_bar_line_per_host() {
    let local = tempfile::tempdir().unwrap();
    let big = huge_file(local.path(), 64 << 30);
    let remote = RemoteDir::new();
    let target = remote.path("huge.bin");
    let hosts = [host(0), host(1)];
    let list = hosts.join(",");
    // No journal: the workers' progress reaches the caller even when no
    // logger listens there.
    // Fabric's lines (a terminal would get the live view).
    let mut line = twill_line(
        None,
        &["-P", "--linewise", "-H", &list, "put", &big, &target],
    );
    line.extend(["--set".into(), "progress_delay=0.2".into()]);
    let pane = Pane::start(&line);
    let shown = pane.wait_for_n(" ETA ", 2);
    let bars = bar_lines(&shown);
    assert_eq!(bars.len(), 2, "one line per host:\n{shown}");
    for h in &hosts {
        let mine: Vec<_> = bars
            .iter()
            .filter(|b| b.starts_with(&format!("[{h}] put: {target} ")))
            .collect();
        assert_eq!(mine.len(), 1, "one bar line for {h}:\n{shown}");
        assert!(
            mine[0].contains("] ") && mine[0].contains("/64.00 GiB "),
            "{shown}"
        );
    }
    pane.press("C-c");
    let (code, _, shown) = pane.wait_for_exit();
    assert_eq!(code, 130, "{shown}");
    assert_no_bar(&shown);
    for h in &hosts {
        assert!(
            shown.contains(&format!("[{h}] put: {big} -> {target}\n")),
            "{shown}"
        );
    }
}

#[test]
fn no_progress_is_written_where_the_output_is_not_a_terminal() {
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("data.bin");
    fs::write(&file, vec![3u8; 32 << 20]).unwrap();
    let file = file.display().to_string();
    let remote = RemoteDir::new();
    let journal = tempfile::tempdir().unwrap();
    let list = format!("{},{}", host(0), host(1));
    let runs: [&[&str]; 3] = [
        &["-H", &host(0), "put", &file, &remote.path("serial.bin")],
        &[
            "-P",
            "-H",
            &list,
            "put",
            &file,
            &remote.path("parallel.bin"),
        ],
        &[
            "-H",
            &host(0),
            "get",
            &remote.path("serial.bin"),
            &format!("{file}.back"),
        ],
    ];
    for args in runs {
        let out = Command::cargo_bin("twill")
            .unwrap()
            .args(twill_line(Some(journal.path()), &[]).into_iter().skip(1))
            .args(["--set", "progress_delay=0"])
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                !stream.contains('\r') && !stream.contains('\x1b'),
                "{args:?}: progress on {name}: {stream:?}"
            );
            assert!(bar_lines(stream).is_empty(), "{args:?}: {stream}");
        }
        assert!(stdout.contains("\nDone.\n"), "{stdout}");
    }
    assert_eq!(
        fs::read(format!("{file}.back")).unwrap(),
        fs::read(&file).unwrap()
    );
    assert!(
        !journal_lines(journal.path())
            .iter()
            .any(|l| l.contains(r#""event":"progress""#)),
        "no progress in the journal"
    );
}

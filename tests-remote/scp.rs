//! Transfers to a server without an SFTP subsystem (the test server's
//! third port, `TWILL_TEST_NO_SFTP_PORT`, whose sshd_config has no
//! `Subsystem sftp` line): single files go over SCP, with what SFTP
//! would tell asked of remote commands; directories and globs are refused.
//! The server runs on this machine, so remote files are checked through
//! the file system.
//!
//! The tests here hold one lock, so that the server's log, where the test
//! of the SFTP refusal counts lines, is theirs while they run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use twill::{
    download, download_data, download_with, get, lcd, put, run, upload, upload_data, upload_with,
    with_settings, DownloadOptions, ErrorKind, Settings, UploadOptions,
};

use crate::support::{
    child_command, is_child, local_tree, noise, text, twill, unique, var, RemoteDir, Tmpfs,
};

/// One test at a time on the server without SFTP (`stall.rs` uses it
/// too).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `user@127.0.0.1:PORT` of the server without SFTP.
pub fn no_sftp_host(user: &str) -> String {
    format!(
        "{user}@{}:{}",
        var("TWILL_TEST_HOST"),
        var("TWILL_TEST_NO_SFTP_PORT")
    )
}

/// The plain test user's settings, on the server without SFTP.
fn no_sftp() -> Settings {
    twill().host_string(no_sftp_host(&var("TWILL_TEST_USER")))
}

/// The sudo user's settings, on the server without SFTP.
fn no_sftp_sudo() -> Settings {
    crate::support::as_user(&var("TWILL_TEST_SUDO_USER"))
        .host_string(no_sftp_host(&var("TWILL_TEST_SUDO_USER")))
}

/// The permission bits of a file on this machine.
fn mode_of(path: impl AsRef<Path>) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The names in a directory, sorted.
fn names_in(dir: impl AsRef<Path>) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The local umask.
fn umask() -> u32 {
    let out = twill::local_capture("umask").unwrap();
    u32::from_str_radix(out.stdout(), 8).unwrap()
}

/// How often the server without SFTP has refused the sftp subsystem
/// so far (lines of its log).
fn sftp_refusals() -> usize {
    let dir = var("TWILL_TEST_SSHD_DIR");
    let port_line = format!("Port {}", var("TWILL_TEST_NO_SFTP_PORT"));
    let conf = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "conf")
                && fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .any(|l| l == port_line)
        })
        .expect("the config of the server without SFTP");
    let log = conf.with_extension("log");
    fs::read_to_string(log)
        .unwrap()
        .matches("subsystem request for sftp")
        .count()
}

#[test]
fn a_file_goes_over_scp_byte_for_byte() {
    let _one = serial();
    let data = noise(3 * 1024 * 1024 + 321);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src.bin");
    fs::write(&src, &data).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
    let remote = RemoteDir::new();
    let target = remote.path("new/parents/copy.bin");
    with_settings(no_sftp(), || {
        let written = put(&src, &target).unwrap();
        assert_eq!(written, std::slice::from_ref(&target));
    });
    assert!(fs::read(&target).unwrap() == data, "the file differs");
    assert_eq!(
        mode_of(&target),
        0o644 & !0o022,
        "a new file gets 0644 less the server's umask, as over SFTP"
    );
    assert_eq!(names_in(remote.path("new/parents")), ["copy.bin"]);
    // Over again, onto the file: it is replaced, and keeps its mode.
    fs::set_permissions(&target, fs::Permissions::from_mode(0o604)).unwrap();
    fs::write(&src, "shorter\n").unwrap();
    with_settings(no_sftp(), || put(&src, &target)).unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "shorter\n");
    assert_eq!(mode_of(&target), 0o604, "an existing file keeps its mode");
    assert_eq!(names_in(remote.path("new/parents")), ["copy.bin"]);
    // A symlink at the target is written through, as over SFTP.
    let link = remote.path("link");
    std::os::unix::fs::symlink("new/parents/copy.bin", &link).unwrap();
    fs::write(&src, "through the link\n").unwrap();
    with_settings(no_sftp(), || put(&src, &link)).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(fs::read_to_string(&target).unwrap(), "through the link\n");
    assert_eq!(names_in(remote.path("new/parents")), ["copy.bin"]);
}

#[test]
fn put_into_a_directory_with_modes_home_and_cd() {
    let _one = serial();
    let local = local_tree();
    let script = local.path().join("run.sh");
    fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).unwrap();
    let remote = RemoteDir::new();
    let name = unique("twill-scp-home-");
    with_settings(no_sftp(), || {
        // An existing directory: the file keeps its name inside it.
        let paths = put(local.path().join("a.txt"), &remote.0).unwrap();
        assert_eq!(paths, [remote.path("a.txt")]);
        upload_with(
            local.path().join("b.log"),
            &remote.0,
            &UploadOptions::new().mode(0o600),
        )
        .unwrap();
        upload_with(
            &script,
            &remote.0,
            &UploadOptions::new().mirror_local_mode(true),
        )
        .unwrap();
        // Relative to cd, and to the home directory.
        with_settings(
            twill::cd(&remote.0).merge(lcd(local.path().to_str().unwrap())),
            || put("a.txt", "rel/in-cd.txt"),
        )
        .unwrap();
        let home = run("pwd -P").unwrap().to_string();
        let written = put(local.path().join("a.txt"), format!("~/{name}")).unwrap();
        assert_eq!(written, [format!("{home}/{name}")]);
        assert_eq!(
            fs::read_to_string(format!("{home}/{name}")).unwrap(),
            "alpha\n"
        );
        fs::remove_file(format!("{home}/{name}")).unwrap();
        assert_eq!(run(format!("{}/run.sh", remote.0)).unwrap(), "ran");
    });
    assert_eq!(remote.read("a.txt"), "alpha\n");
    assert_eq!(remote.read("b.log"), "beta\n");
    assert_eq!(mode_of(remote.path("b.log")), 0o600);
    assert_eq!(mode_of(remote.path("run.sh")), 0o750);
    assert_eq!(remote.read("rel/in-cd.txt"), "alpha\n");
}

#[test]
fn put_with_sudo_into_a_root_only_directory() {
    let _one = serial();
    let local = local_tree();
    let root_only = RemoteDir::owned_by_root();
    assert_eq!(mode_of(&root_only.0), 0o700);
    let target = root_only.path("conf.txt");
    let temp = tempfile::tempdir().unwrap();
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o777)).unwrap();
    with_settings(no_sftp_sudo(), || {
        let plain = upload(local.path().join("a.txt"), &target).unwrap_err();
        assert_eq!(plain.kind(), ErrorKind::Transfer, "{plain}");
        upload_with(
            local.path().join("a.txt"),
            &target,
            &UploadOptions::new()
                .use_sudo(true)
                .mode(0o640)
                .temp_dir(temp.path().to_str().unwrap()),
        )
        .unwrap();
        // And back, through a sudo copy.
        let back = download_with(
            &target,
            temp.path().join("back.txt"),
            &DownloadOptions::new().use_sudo(true),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&back[0]).unwrap(), "alpha\n");
    });
    assert_eq!(fs::read_to_string(&target).unwrap(), "alpha\n");
    assert_eq!(mode_of(&target), 0o640);
    assert_eq!(
        names_in(temp.path()),
        ["back.txt"],
        "no temporary file left behind"
    );
}

#[test]
fn data_goes_both_ways() {
    let _one = serial();
    let remote = RemoteDir::new();
    let data = noise(200_000);
    with_settings(no_sftp(), || {
        let written = upload_data(&data, remote.path("d/data.bin"), &UploadOptions::new()).unwrap();
        assert_eq!(written, remote.path("d/data.bin"));
        upload_data("", remote.path("empty"), &UploadOptions::new().mode(0o600)).unwrap();
        assert!(download_data(remote.path("d/data.bin")).unwrap() == data);
        assert_eq!(download_data(remote.path("empty")).unwrap(), b"");
        let err = upload_data("x", &remote.0, &UploadOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = download_data(remote.path("missing")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(
            err.to_string().contains(&remote.path("missing"))
                && err.to_string().contains("No such file"),
            "{err}"
        );
    });
    assert!(fs::read(remote.path("d/data.bin")).unwrap() == data);
    assert_eq!(fs::read(remote.path("empty")).unwrap(), b"");
    assert_eq!(mode_of(remote.path("empty")), 0o600);
}

#[test]
fn get_brings_content_and_mode_back() {
    let _one = serial();
    let remote = RemoteDir::new();
    let data = noise(1024 * 1024 + 7);
    fs::write(remote.path("f.bin"), &data).unwrap();
    fs::set_permissions(remote.path("f.bin"), fs::Permissions::from_mode(0o751)).unwrap();
    Command::new("chown")
        .args(["--reference", &remote.0, &remote.path("f.bin")])
        .status()
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let host = no_sftp_host(&var("TWILL_TEST_USER")).replace(':', "-");
    with_settings(no_sftp().merge(lcd(local.path().to_str().unwrap())), || {
        let got = get(remote.path("f.bin"), "copy.bin").unwrap();
        assert_eq!(got, [local.path().join("copy.bin")]);
        // Fabric's default name, and a template.
        let got = download(remote.path("f.bin"), "").unwrap();
        assert_eq!(
            got,
            [local
                .path()
                .join(&host)
                .join(remote.0.trim_start_matches('/'))
                .join("f.bin")]
        );
        let got = download(remote.path("f.bin"), "%(host)s-%(basename)s").unwrap();
        assert_eq!(got, [local.path().join(format!("{host}-f.bin"))]);
        let missing = download(remote.path("nothing-here"), "x").unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Transfer, "{missing}");
        assert!(missing.to_string().contains("nothing-here"), "{missing}");
    });
    let copy = local.path().join("copy.bin");
    assert!(fs::read(&copy).unwrap() == data, "the copy differs");
    assert_eq!(
        mode_of(&copy),
        0o751 & !umask(),
        "the remote mode, less the local umask"
    );
    assert_eq!(
        names_in(local.path()),
        {
            let mut v = vec![
                "copy.bin".to_string(),
                format!("{host}-f.bin"),
                host.clone(),
            ];
            v.sort();
            v
        },
        "no temporary file left behind"
    );
}

#[test]
fn directories_and_globs_are_refused_with_a_clear_error() {
    let _one = serial();
    let local = local_tree();
    let remote = RemoteDir::new();
    fs::write(remote.path("one.txt"), "1").unwrap();
    fs::create_dir(remote.path("sub")).unwrap();
    let host = no_sftp_host(&var("TWILL_TEST_USER"));
    let says_why = |err: &twill::Error, path: &str| {
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        let message = err.to_string();
        for part in [
            host.as_str(),
            path,
            "the server has no SFTP subsystem",
            "only single files go over SCP",
        ] {
            assert!(message.contains(part), "'{part}' missing: {message}");
        }
    };
    let fetched = tempfile::tempdir().unwrap();
    with_settings(no_sftp(), || {
        let dir = local.path().join("sub");
        says_why(&put(&dir, &remote.0).unwrap_err(), dir.to_str().unwrap());
        let glob = format!("{}/*.txt", local.path().display());
        says_why(&put(&glob, &remote.0).unwrap_err(), &glob);
        let glob = remote.path("*.txt");
        says_why(&get(&glob, fetched.path()).unwrap_err(), &glob);
        says_why(
            &get(remote.path("sub"), fetched.path()).unwrap_err(),
            &remote.path("sub"),
        );
    });
    assert_eq!(names_in(&remote.0), ["one.txt", "sub"], "nothing was put");
    assert_eq!(
        names_in(fetched.path()),
        Vec::<String>::new(),
        "nothing was got"
    );
}

#[test]
fn a_failed_upload_leaves_the_old_target_intact() {
    let _one = serial();
    // A 64 KiB file system, so that a 1 MiB upload runs out of space.
    let remote = RemoteDir::new();
    let small = Tmpfs::mount(remote.path("small"));
    let config = small.path("config");
    fs::write(&config, "old contents\n").unwrap();
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("config");
    fs::write(&big, vec![b'x'; 1 << 20]).unwrap();
    with_settings(no_sftp(), || {
        let err = upload(&big, &config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(err.to_string().contains(&config), "names the target: {err}");
        assert!(
            err.to_string().contains("No space left on device"),
            "says why: {err}"
        );
        let err = upload_data(vec![b'y'; 1 << 20], &config, &UploadOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        // A directory the user may not write in.
        let err = upload(&big, "/etc/hostname").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(err.to_string().contains("/etc/hostname"), "{err}");
    });
    assert_eq!(fs::read_to_string(&config).unwrap(), "old contents\n");
    assert_eq!(
        names_in(&small.0),
        ["config"],
        "no temporary file left behind"
    );
    assert_ne!(fs::metadata("/etc/hostname").unwrap().len(), 1 << 20);
}

#[test]
fn hostile_names_land_verbatim_and_run_nothing() {
    let _one = serial();
    let marker = unique("pwned");
    let names = [
        "a b".to_string(),
        "it's".to_string(),
        "\"quoted\"".to_string(),
        format!("$(touch {marker}-1)"),
        format!("`touch {marker}-2`"),
        format!(";touch {marker}-3;"),
        "-rf".to_string(),
        "-n".to_string(),
        "back\\slash".to_string(),
        "!bang".to_string(),
        "*".to_string(),
    ];
    // A remote path with a wildcard is a glob to `get`, as in Fabric.
    let globs = |name: &str| name.contains(['*', '?', '[']);
    let dirname = format!("it's $(touch {marker}-4) dir");
    let remote = RemoteDir::new();
    let local = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    let home = with_settings(no_sftp(), || {
        for (i, name) in names.iter().enumerate() {
            let src = local.path().join(name);
            fs::write(&src, format!("content {i}\n")).unwrap();
            // Into an existing directory, to a new directory with a
            // hostile name, and back.
            let literal = UploadOptions::new().use_glob(false);
            upload_with(&src, &remote.0, &literal).unwrap();
            let target = format!("{}/{dirname}/{name}", remote.0);
            upload_with(&src, &target, &literal.clone().mode(0o640)).unwrap();
            if globs(name) {
                let data = download_data(&target).unwrap();
                fs::write(back.path().join(name), data).unwrap();
            } else {
                let got = get(&target, back.path().join(name)).unwrap();
                assert_eq!(got, [back.path().join(name)]);
            }
            assert_eq!(
                download_data(remote.path(name)).unwrap(),
                format!("content {i}\n").as_bytes()
            );
        }
        run("pwd -P").unwrap().to_string()
    });
    let mut expected: Vec<String> = names.to_vec();
    expected.push(dirname.clone());
    expected.sort();
    assert_eq!(names_in(&remote.0), expected);
    let mut expected: Vec<String> = names.to_vec();
    expected.sort();
    assert_eq!(names_in(remote.path(&dirname)), expected);
    assert_eq!(names_in(back.path()), expected);
    for (i, name) in names.iter().enumerate() {
        let content = format!("content {i}\n");
        assert_eq!(remote.read(name), content, "{name}");
        assert_eq!(remote.read(&format!("{dirname}/{name}")), content, "{name}");
        assert_eq!(mode_of(remote.path(&format!("{dirname}/{name}"))), 0o640);
        assert_eq!(fs::read_to_string(back.path().join(name)).unwrap(), content);
    }
    for dir in [remote.0.as_str(), home.as_str(), "/tmp"] {
        let ran: Vec<String> = names_in(dir)
            .into_iter()
            .filter(|n| n.starts_with(&marker))
            .collect();
        assert_eq!(
            ran,
            Vec::<String>::new(),
            "a name ran as a command in {dir}"
        );
    }
}

/// With SFTP on the server, transfers use it: a directory, which only
/// SFTP carries, goes to the usual port and is refused on the other.
#[test]
fn sftp_is_used_where_the_server_has_it() {
    let _one = serial();
    let local = local_tree();
    let remote = RemoteDir::new();
    with_settings(twill(), || upload(local.path().join("sub"), &remote.0)).unwrap();
    assert_eq!(remote.read("sub/deeper/c.txt"), "gamma\n");
    let err = with_settings(no_sftp(), || {
        upload(local.path().join("sub"), remote.path("x"))
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
    assert!(!remote.has("x"));
}

/// On one connection the server is asked for SFTP once (and once more on
/// a channel of its own, to tell its refusal from a failure), however
/// many transfers follow; their lines are Fabric's.
#[test]
fn the_refusal_is_found_once_per_connection_and_lines_stay_fabrics() {
    const TEST: &str = "scp::the_refusal_is_found_once_per_connection_and_lines_stay_fabrics";
    if is_child(TEST) {
        let remote = std::env::var("REMOTE").unwrap();
        let local = std::env::var("LOCAL").unwrap();
        with_settings(no_sftp(), || {
            put(format!("{local}/a.txt"), format!("{remote}/a.txt")).unwrap();
            put(format!("{local}/b.log"), &remote).unwrap();
            upload_data("data", format!("{remote}/c.txt"), &UploadOptions::new()).unwrap();
            get(format!("{remote}/a.txt"), format!("{local}/back.txt")).unwrap();
            download_data(format!("{remote}/c.txt")).unwrap();
        });
        return;
    }
    let _one = serial();
    let remote = RemoteDir::new();
    let local = local_tree();
    let before = sftp_refusals();
    let out = child_command(TEST)
        .env("REMOTE", &remote.0)
        .env("LOCAL", local.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let after = sftp_refusals();
    assert_eq!(
        after - before,
        2,
        "SFTP asked for more than once on one connection:\n{stdout}"
    );
    let host = no_sftp_host(&var("TWILL_TEST_USER"));
    let l = local.path().display();
    let r = &remote.0;
    for line in [
        format!("[{host}] put: {l}/a.txt -> {r}/a.txt"),
        format!("[{host}] put: {l}/b.log -> {r}/b.log"),
        format!("[{host}] put: <data> -> {r}/c.txt"),
        format!("[{host}] download: {l}/back.txt <- {r}/a.txt"),
        format!("[{host}] download: <data> <- {r}/c.txt"),
    ] {
        // (The first comes after libtest's "test ... " on the same line.)
        assert!(
            stdout.lines().any(|s| s.ends_with(&line)),
            "no '{line}' in:\n{stdout}"
        );
    }
    assert_eq!(remote.read("b.log"), "beta\n");
    assert_eq!(
        fs::read_to_string(local.path().join("back.txt")).unwrap(),
        "alpha\n"
    );
}

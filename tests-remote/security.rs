//! Values are data, never code; passwords go only where they belong.
//!
//! Hostile names are made as the plain user and handled by the sudo user;
//! anything they tried to run would leave a file behind, so each test
//! looks for such files as well as for the right bytes.

use std::fs;
use std::path::Path;

use twill::{
    cd, download_with, lcd, local_capture, remote_file_exists, run, run_with, shell_env, sudo,
    sudo_with, upload_data, upload_with, with_settings, DownloadOptions, RunOptions, Settings,
    UploadOptions,
};

use crate::support::{as_user, twill, unique, var, RemoteDir};

/// Names that a shell would run something for, if pasted unquoted or in
/// double quotes; each would create a file named `pwned-<n>` in the
/// directory the command runs in.
const HOSTILE: [&str; 6] = [
    "a$(touch pwned-1).log",
    "b`touch pwned-2`.log",
    "c\";touch pwned-3;\".log",
    "d';touch pwned-4;'.log",
    "e;touch pwned-5;.log",
    "f\ntouch pwned-6\n.log",
];

fn sudo_user() -> Settings {
    as_user(&var("TWILL_TEST_SUDO_USER"))
}

/// Every file named `pwned-<n>` below `dir` (the server runs on this
/// machine, so its files are read directly).
fn pwned_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let made_by_touch = name
                .strip_prefix("pwned-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if made_by_touch {
                found.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn sudo_downloads_copy_hostile_names_as_bytes() {
    let remote = RemoteDir::new();
    let tree = remote.path("evil");
    with_settings(twill(), || {
        for (i, name) in HOSTILE.iter().enumerate() {
            upload_data(
                format!("content {i}\n"),
                format!("{tree}/{name}"),
                &UploadOptions::new(),
            )
            .unwrap();
        }
        run(format!("chmod 700 {tree}")).unwrap();
    });
    let local = tempfile::tempdir().unwrap();
    // Run from inside the directory, so that anything run there leaves
    // its file where this test looks.
    with_settings(sudo_user().merge(cd(&remote.0)), || {
        download_with(
            &tree,
            local.path().join("tree/"),
            &DownloadOptions::new().use_sudo(true),
        )
        .unwrap();
        let one = format!("{tree}/{}", HOSTILE[0]);
        download_with(
            &one,
            local.path().join("one.log"),
            &DownloadOptions::new().use_sudo(true),
        )
        .unwrap();
        download_with(
            format!("{tree}/*.log"),
            local.path().join("globbed/"),
            &DownloadOptions::new().use_sudo(true),
        )
        .unwrap();
    });
    for (i, name) in HOSTILE.iter().enumerate() {
        let got = fs::read_to_string(local.path().join("tree/evil").join(name));
        assert_eq!(got.unwrap(), format!("content {i}\n"), "{name:?}");
        let got = fs::read_to_string(local.path().join("globbed").join(name));
        assert_eq!(got.unwrap(), format!("content {i}\n"), "glob {name:?}");
    }
    assert_eq!(
        fs::read_to_string(local.path().join("one.log")).unwrap(),
        "content 0\n"
    );
    let home = with_settings(sudo_user(), || run("pwd"))
        .unwrap()
        .to_string();
    let ran: Vec<String> = [Path::new(&remote.0), Path::new(&home), local.path()]
        .iter()
        .flat_map(|d| pwned_files(d))
        .collect();
    assert!(ran.is_empty(), "a name ran as a command: {ran:?}");
}

#[test]
fn sudo_uploads_to_hostile_paths_write_there_and_run_nothing() {
    let remote = RemoteDir::new();
    let dir = &remote.0;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src.txt");
    fs::write(&src, "payload\n").unwrap();
    let targets: Vec<String> = HOSTILE
        .iter()
        .map(|n| format!("{dir}/sub dir/{n}"))
        .chain([format!("{dir}/x$(touch${{IFS}}{dir}/pwned-7)")])
        .collect();
    with_settings(sudo_user(), || {
        for t in &targets {
            upload_with(&src, t, &UploadOptions::new().use_sudo(true).mode(0o640))
                .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        }
    });
    for t in &targets {
        assert_eq!(fs::read_to_string(t).unwrap(), "payload\n", "{t:?}");
    }
    let ran = pwned_files(Path::new(dir));
    assert!(ran.is_empty(), "a path ran as a command: {ran:?}");
}

#[test]
fn cd_and_lcd_enter_directories_with_any_name_and_run_nothing() {
    let remote = RemoteDir::new();
    let odd = remote.path("a\"b'c$d e`f");
    fs::create_dir_all(&odd).unwrap();
    with_settings(twill(), || {
        // A directory whose name holds quotes, `$` and a space is entered.
        let pwd = with_settings(cd(&odd), || run("pwd")).unwrap();
        assert_eq!(pwd, odd.as_str());
        // A "directory" that is really a command is only a missing path.
        for evil in [
            format!("{};touch${{IFS}}{}/pwned-1", remote.0, remote.0),
            format!("{}/$(touch {}/pwned-2)", remote.0, remote.0),
        ] {
            let out = with_settings(cd(&evil).warn_only(true), || run("true")).unwrap();
            assert!(out.failed(), "cd into {evil:?} succeeded");
        }
        // The ~ of a relative cd below ~ still expands.
        let home = run("pwd").unwrap().to_string();
        let got = with_settings(cd("~"), || run("pwd")).unwrap();
        assert_eq!(got, home.as_str());
    });
    let local_odd = tempfile::tempdir().unwrap();
    let lodd = local_odd.path().join("x\"y'z$w v");
    fs::create_dir_all(&lodd).unwrap();
    let got = with_settings(lcd(lodd.to_str().unwrap()), || local_capture("pwd")).unwrap();
    assert_eq!(got, lodd.to_str().unwrap());
    let evil = format!("{};touch {}/pwned-3", remote.0, remote.0);
    let out = with_settings(lcd(&evil).warn_only(true), || local_capture("true")).unwrap();
    assert!(out.failed());
    let ran = pwned_files(Path::new(&remote.0));
    assert!(ran.is_empty(), "a directory ran as a command: {ran:?}");
}

#[test]
fn exists_and_exported_values_run_nothing() {
    let remote = RemoteDir::new();
    let d = &remote.0;
    with_settings(twill(), || {
        assert!(!remote_file_exists(format!("{d}/$(touch {d}/pwned-1)")).unwrap());
        assert!(remote_file_exists(d).unwrap());
        run(format!("touch {d}/present.txt")).unwrap();
        assert!(remote_file_exists(format!("{d}/pres*.txt")).unwrap());
        let value = format!("$(touch {d}/pwned-2) `touch {d}/pwned-3` \"q\" \\ end\\");
        let got = with_settings(shell_env([("V", value.as_str())]), || {
            run_with("printf '%s' \"$V\"", &RunOptions::new().pty(false))
        })
        .unwrap();
        assert_eq!(got.stdout(), value.trim_end(), "exported exactly");
        let got = with_settings(shell_env([("V", value.as_str())]), || {
            local_capture("printf '%s' \"$V\"")
        })
        .unwrap();
        assert_eq!(got.stdout(), value.trim_end(), "exported exactly (local)");
    });
    let ran = pwned_files(Path::new(d));
    assert!(ran.is_empty(), "a value ran as a command: {ran:?}");
}

#[test]
fn output_that_looks_like_the_sudo_prompt_is_never_answered() {
    let remote = RemoteDir::new();
    let bait = remote.path("bait");
    // A file another user wrote that ends with sudo's usual prompt.
    fs::write(&bait, "hello\nsudo password:").unwrap();
    let secret = format!("secret-{}", unique("pw"));
    let read_back = format!("cat {bait}; read -t 3 line; echo; echo \"got:$line\"");
    for pty in [true, false] {
        let settings = twill()
            .password(secret.clone())
            .sudo_password(secret.clone());
        let out = with_settings(settings, || {
            run_with(&read_back, &RunOptions::new().pty(pty).warn_only(true))
        })
        .unwrap();
        assert!(
            !out.stdout().contains(&secret),
            "pty {pty}: the password went into run(): {out:?}"
        );
        assert!(out.stdout().ends_with("got:"), "pty {pty}: {out:?}");
    }
    // Inside a sudo that needed no password, the command's own output
    // is not sudo asking either.
    let settings = sudo_user().sudo_password(secret.clone());
    let out = with_settings(settings, || {
        sudo_with(&read_back, &RunOptions::new().warn_only(true))
    })
    .unwrap();
    assert!(!out.stdout().contains(&secret), "{out:?}");
    assert!(out.stdout().ends_with("got:"), "{out:?}");
    // And the sudo that does ask still gets its answer.
    let settings =
        as_user(&var("TWILL_TEST_SUDOPW_USER")).sudo_password(var("TWILL_TEST_SUDO_PASSWORD"));
    assert_eq!(with_settings(settings, || sudo("whoami")).unwrap(), "root");
}

//! Transfers land where a user means them to: through symlinks, into
//! files in read-only directories, under `~user`, with the right modes,
//! with links kept as links and any byte in a name; and a failure says
//! why.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use twill::{
    download, download_with, run, upload, upload_data, upload_with, with_settings, DownloadOptions,
    ErrorKind, UploadOptions,
};

use crate::support::{twill, RemoteDir, Tmpfs};

/// The plain user's uid and gid on the server.
fn plain_ids() -> (u32, u32) {
    let out = with_settings(twill(), || run("id -u; id -g")).unwrap();
    let ids: Vec<u32> = out
        .stdout_lines()
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    (ids[0], ids[1])
}

#[test]
fn put_onto_a_symlink_writes_the_file_it_points_to() {
    let d = RemoteDir::new();
    fs::write(d.path("real.conf"), "old\n").unwrap();
    std::os::unix::fs::symlink("real.conf", d.path("link.conf")).unwrap();
    std::os::unix::fs::symlink(d.path("real.conf"), d.path("abs.conf")).unwrap();
    std::os::unix::fs::symlink("link.conf", d.path("chain.conf")).unwrap();
    with_settings(twill(), || {
        upload_data("one\n", d.path("link.conf"), &UploadOptions::new()).unwrap();
        assert_eq!(fs::read_to_string(d.path("real.conf")).unwrap(), "one\n");
        upload_data("two\n", d.path("abs.conf"), &UploadOptions::new()).unwrap();
        assert_eq!(fs::read_to_string(d.path("real.conf")).unwrap(), "two\n");
        upload_data("three\n", d.path("chain.conf"), &UploadOptions::new()).unwrap();
        assert_eq!(fs::read_to_string(d.path("real.conf")).unwrap(), "three\n");
        // A link to a file that does not exist yet creates that file.
        std::os::unix::fs::symlink("later.conf", d.path("dangling.conf")).unwrap();
        upload_data("new\n", d.path("dangling.conf"), &UploadOptions::new()).unwrap();
        assert_eq!(fs::read_to_string(d.path("later.conf")).unwrap(), "new\n");
    });
    for link in ["link.conf", "abs.conf", "chain.conf", "dangling.conf"] {
        let meta = fs::symlink_metadata(d.path(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link} is still a link");
    }
    // With sudo too.
    std::os::unix::fs::symlink("real.conf", d.path("sudo-link.conf")).unwrap();
    with_settings(
        crate::support::as_user(&crate::support::var("TWILL_TEST_SUDO_USER")),
        || {
            upload_data(
                "four\n",
                d.path("sudo-link.conf"),
                &UploadOptions::new().use_sudo(true),
            )
            .unwrap();
        },
    );
    assert_eq!(fs::read_to_string(d.path("real.conf")).unwrap(), "four\n");
    assert!(fs::symlink_metadata(d.path("sudo-link.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn put_writes_in_place_where_only_the_file_is_writable() {
    let d = RemoteDir::new();
    let locked = PathBuf::from(d.path("locked"));
    fs::create_dir(&locked).unwrap();
    let (uid, gid) = plain_ids();
    fs::write(locked.join("app.conf"), "old\n").unwrap();
    std::os::unix::fs::chown(locked.join("app.conf"), Some(uid), Some(gid)).unwrap();
    // The directory belongs to root and is not writable by the user.
    std::os::unix::fs::chown(&locked, Some(0), Some(0)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    let target = locked.join("app.conf");
    with_settings(twill(), || {
        upload_data("new\n", target.to_str().unwrap(), &UploadOptions::new()).unwrap();
        let err = upload_data(
            "x\n",
            locked.join("other.conf").to_str().unwrap(),
            &UploadOptions::new(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(err.to_string().contains("other.conf"), "{err}");
    });
    assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
    let names: Vec<_> = fs::read_dir(&locked)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["app.conf"]);
}

#[test]
fn a_path_under_a_users_home_is_expanded() {
    let user = crate::support::var("TWILL_TEST_USER");
    let name = crate::support::unique("tilde");
    with_settings(twill(), || {
        let home = run("pwd").unwrap().to_string();
        let written =
            upload_data("hi\n", format!("~{user}/{name}.txt"), &UploadOptions::new()).unwrap();
        assert_eq!(written, format!("{home}/{name}.txt"));
        assert_eq!(run(format!("cat ~/{name}.txt")).unwrap(), "hi");
        let local = tempfile::tempdir().unwrap();
        let got = download(format!("~{user}/{name}.txt"), local.path()).unwrap();
        assert_eq!(fs::read_to_string(&got[0]).unwrap(), "hi\n");
        run(format!("rm ~/{name}.txt")).unwrap();
        let literal = twill::run_with(
            format!("test -e '~{user}/{name}.txt'"),
            &twill::RunOptions::new().warn_only(true),
        )
        .unwrap();
        assert!(
            literal.failed(),
            "no directory named ~{user} was made in the home directory"
        );
        let err = upload_data("x", "~no-such-user-here/x", &UploadOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
        assert!(err.to_string().contains("~no-such-user-here"), "{err}");
    });
}

#[test]
fn downloads_keep_the_remote_mode() {
    let d = RemoteDir::new();
    fs::write(d.path("tool.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(d.path("tool.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(d.path("notes.txt"), "n\n").unwrap();
    fs::set_permissions(d.path("notes.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    let local = tempfile::tempdir().unwrap();
    with_settings(twill(), || {
        download(d.path("tool.sh"), local.path()).unwrap();
        download(d.path("notes.txt"), local.path()).unwrap();
    });
    let mode = |n: &str| fs::metadata(local.path().join(n)).unwrap().mode() & 0o777;
    let umask = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(mode("tool.sh"), 0o755 & !umask);
    assert_eq!(mode("notes.txt"), 0o644 & !umask);
}

/// `get("d/./f")` and `get("d//f")` name the file `d/f`: the local paths
/// returned and written carry no `.` or empty parts.
#[test]
fn download_paths_are_normalised() {
    let d = RemoteDir::new();
    fs::create_dir(d.path("sub")).unwrap();
    fs::write(d.path("sub/f.txt"), "f\n").unwrap();
    let local = tempfile::tempdir().unwrap();
    let to = local.path().to_str().unwrap();
    let written = with_settings(twill(), || {
        let mut all =
            download(format!("{}/./sub//f.txt", d.path("")), format!("{to}/./a/")).unwrap();
        all.extend(
            download_with(
                format!("{}//sub/./", d.path("")),
                format!("{to}//b/%(path)s"),
                &DownloadOptions::new(),
            )
            .unwrap(),
        );
        all
    });
    let dir = d.0.trim_start_matches('/');
    assert_eq!(
        written,
        [
            local.path().join("a/f.txt"),
            local.path().join(format!("b/{dir}/sub/f.txt")),
        ]
    );
    for p in &written {
        let text = p.to_str().unwrap();
        assert!(!text.contains("/./") && !text.contains("//"), "{text}");
        assert_eq!(fs::read_to_string(p).unwrap(), "f\n");
    }
}

#[test]
fn directory_uploads_keep_links_as_links_and_names_as_bytes() {
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("file.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink("file.txt", tree.join("to-file")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", tree.join("outside")).unwrap();
    std::os::unix::fs::symlink("..", tree.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("nowhere", tree.join("dangling")).unwrap();
    let latin1 = OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(tree.join(latin1), "bytes\n").unwrap();
    let d = RemoteDir::new();
    with_settings(twill(), || {
        upload(&tree, &d.0).unwrap();
    });
    let up = PathBuf::from(d.path("tree"));
    assert_eq!(
        fs::read_link(up.join("to-file")).unwrap(),
        Path::new("file.txt")
    );
    assert_eq!(
        fs::read_link(up.join("outside")).unwrap(),
        Path::new("/etc/hostname")
    );
    assert_eq!(fs::read_link(up.join("sub/loop")).unwrap(), Path::new(".."));
    assert_eq!(
        fs::read_link(up.join("dangling")).unwrap(),
        Path::new("nowhere")
    );
    assert_eq!(fs::read_to_string(up.join(latin1)).unwrap(), "bytes\n");

    // Following links: each file once, no loop, the dangling link reported.
    let followed = RemoteDir::new();
    let err = with_settings(twill(), || {
        upload_with(&tree, &followed.0, &UploadOptions::new().follow_links(true))
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
    assert!(err.to_string().contains("dangling"), "{err}");
    assert!(err.to_string().contains("loop"), "{err}");
    let up = PathBuf::from(followed.path("tree"));
    assert_eq!(fs::read_to_string(up.join("to-file")).unwrap(), "inside\n");
    assert!(!fs::symlink_metadata(up.join("to-file"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read(up.join("outside")).unwrap(),
        fs::read("/etc/hostname").unwrap()
    );
    assert!(!up.join("sub/loop").exists(), "the loop was not followed");
    assert_eq!(fs::read_to_string(up.join("file.txt")).unwrap(), "inside\n");

    // And back: links as links, bytes as bytes.
    let back = tempfile::tempdir().unwrap();
    with_settings(twill(), || download(d.path("tree"), back.path())).unwrap();
    let down = back.path().join("tree");
    assert_eq!(
        fs::read_link(down.join("sub/loop")).unwrap(),
        Path::new("..")
    );
    assert_eq!(fs::read_to_string(down.join(latin1)).unwrap(), "bytes\n");
    assert_eq!(
        fs::read_to_string(down.join("to-file")).unwrap(),
        "inside\n"
    );
}

#[test]
fn a_full_or_read_only_file_system_is_named_with_the_target() {
    let d = RemoteDir::new();
    let full = Tmpfs::mount(d.path("full"));
    let ro = Tmpfs::mount(d.path("ro"));
    fs::write(ro.path("app.conf"), "old\n").unwrap();
    ro.remount_read_only();
    let big = vec![b'x'; 1 << 20];
    with_settings(twill(), || {
        let target = full.path("big.bin");
        let err = upload_data(&big, &target, &UploadOptions::new()).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Transfer, "{msg}");
        assert!(msg.contains("no space left"), "{msg}");
        assert!(msg.contains(&target), "{msg}");
        assert!(
            !msg.contains("twill-upload"),
            "the temporary name is not shown: {msg}"
        );

        let target = ro.path("app.conf");
        let err = upload_data("new\n", &target, &UploadOptions::new()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("read-only file system"), "{msg}");
        assert!(msg.contains(&target), "{msg}");
    });
    let left: Vec<_> = fs::read_dir(&full.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
    assert_eq!(fs::read_to_string(ro.path("app.conf")).unwrap(), "old\n");
}

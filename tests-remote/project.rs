//! `contrib::project`: `rsync_project` (rsync run here, over an OpenSSH
//! client that connects as twill does) and `upload_project` (a tarball
//! over SFTP). The server runs on this machine, so what arrived is read
//! from the file system.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use twill::contrib::project::{
    rsync_project_with, upload_project, upload_project_with, RsyncOptions,
};
use twill::{cd, run, with_settings, ErrorKind, Output, Settings};

use crate::support::{as_user, local_tree, port, twill, unique, var, RemoteDir};

/// The plain user on `address` of the test server.
fn on(address: &str) -> Settings {
    twill().host_string(format!("{}@{address}:{}", var("TWILL_TEST_USER"), port()))
}

/// Asserts that rsync's `--rsh` connected with the test key, the server's
/// port, only the test known_hosts file and strict host key checking.
fn assert_connects_as_twill(out: &Output) {
    let cmd = out.command();
    for part in [
        format!(" -i {} ", var("TWILL_TEST_KEY")),
        format!(" -p {} ", port()),
        format!(
            " -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null ",
            var("TWILL_TEST_KNOWN_HOSTS")
        ),
        " -o StrictHostKeyChecking=yes ".to_string(),
        "--rsh='ssh -F /dev/null ".to_string(),
    ] {
        assert!(cmd.contains(&part), "`{part}` in {cmd}");
    }
}

#[test]
fn rsync_project_uploads_with_exclude_and_delete() {
    let local = local_tree();
    let remote = RemoteDir::new();
    fs::write(remote.path("stale.txt"), "old\n").unwrap();
    let opts = RsyncOptions::new()
        .local_dir(format!("{}/", local.path().display()))
        .exclude("*.log")
        .delete(true)
        .capture(true);
    let out = with_settings(on("127.0.0.4"), || rsync_project_with(&remote.0, &opts)).unwrap();
    assert_connects_as_twill(&out);
    assert!(
        out.command()
            .starts_with("rsync --delete --exclude '*.log' -pthrvz --rsh='ssh "),
        "{}",
        out.command()
    );
    assert!(
        out.command()
            .ends_with(&format!("/ twill@127.0.0.4:{}", remote.0)),
        "{}",
        out.command()
    );
    assert!(
        out.stdout().contains("sub/deeper/c.txt"),
        "{}",
        out.stdout()
    );
    assert_eq!(remote.read("a.txt"), "alpha\n");
    assert_eq!(remote.read("sub/deeper/c.txt"), "gamma\n");
    assert!(!remote.has("b.log"), "excluded");
    assert!(!remote.has("stale.txt"), "deleted");
}

#[test]
fn rsync_project_downloads_and_puts_a_directory_under_its_name() {
    let remote = RemoteDir::new();
    with_settings(on("127.0.0.5"), || {
        run(format!(
            "cd {} && mkdir -p app/conf && echo one > app/one.txt && echo two > app/conf/two.txt && echo x > app/skip.tmp",
            remote.0
        ))
    })
    .unwrap();
    let local = tempfile::tempdir().unwrap();
    let opts = RsyncOptions::new()
        .upload(false)
        .local_dir(format!("{}/", local.path().display()))
        .exclude("*.tmp")
        .capture(true);
    let out = with_settings(on("127.0.0.5"), || {
        rsync_project_with(remote.path("app"), &opts)
    })
    .unwrap();
    assert_connects_as_twill(&out);
    assert!(
        out.command().ends_with(&format!(
            " twill@127.0.0.5:{}/app {}/",
            remote.0,
            local.path().display()
        )),
        "{}",
        out.command()
    );
    let got = |rel: &str| fs::read_to_string(local.path().join(rel)).unwrap();
    assert_eq!(got("app/one.txt"), "one\n");
    assert_eq!(got("app/conf/two.txt"), "two\n");
    assert!(!local.path().join("app/skip.tmp").exists(), "excluded");

    // Up again, with Fabric's default local directory: `../<name>` of
    // the lcd directory, so that it lands under its own name.
    let back = RemoteDir::new();
    let lcd_dir = local.path().join("app");
    let out = with_settings(on("127.0.0.5").lcd(lcd_dir.to_str().unwrap()), || {
        rsync_project_with(&back.0, &RsyncOptions::new().capture(true))
    })
    .unwrap();
    assert!(
        out.command()
            .contains(&format!("' ../app twill@127.0.0.5:{}", back.0)),
        "{}",
        out.command()
    );
    assert_eq!(back.read("app/conf/two.txt"), "two\n");
}

#[test]
fn rsync_project_goes_through_the_jump_host_twill_uses() {
    let local = local_tree();
    let remote = RemoteDir::new();
    let jump = format!("twill@127.0.0.1:{}", port());
    let opts = RsyncOptions::new()
        .local_dir(format!("{}/", local.path().display()))
        .capture(true);
    let out = with_settings(on("127.0.0.12").gateway(jump), || {
        rsync_project_with(&remote.0, &opts)
    })
    .unwrap();
    assert_connects_as_twill(&out);
    let cmd = out.command();
    // The jump's own client, as a ProxyCommand in the --rsh (quoted once
    // for rsync and once for the shell), with the same key and checks.
    assert!(
        cmd.contains(" -o '\\''ProxyCommand=ssh -F /dev/null "),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!(
            " -l twill -W '\\'''\\''[127.0.0.12]:{}'\\'''\\'' 127.0.0.1'\\''",
            port()
        )),
        "{cmd}"
    );
    assert_eq!(cmd.matches("StrictHostKeyChecking=yes").count(), 2, "{cmd}");
    assert_eq!(remote.read("sub/deeper/c.txt"), "gamma\n");

    // The jump is really used: through a jump host that refuses, rsync
    // cannot reach the target.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = nowhere.local_addr().unwrap().port();
    drop(nowhere);
    let err = with_settings(
        on("127.0.0.12").gateway(format!("twill@127.0.0.1:{closed}")),
        || rsync_project_with(&remote.0, &opts),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(err.to_string().contains(&format!("-p {closed} ")), "{err}");

    // A jump host from ssh_config, and the target's HostName from there.
    let config = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        config.path(),
        format!(
            "Host jump\n    HostName 127.0.0.1\n\nHost inner\n    HostName 127.0.0.13\n    ProxyJump jump\n\n\
             Host *\n    User twill\n    Port {}\n    IdentityFile {}\n    UserKnownHostsFile {}\n",
            port(),
            var("TWILL_TEST_KEY"),
            var("TWILL_TEST_KNOWN_HOSTS")
        ),
    )
    .unwrap();
    let s = Settings::new()
        .host_string("inner")
        .use_ssh_config(true)
        .ssh_config_path(config.path().to_str().unwrap())
        .no_agent(true)
        .no_keys(true);
    let again = RemoteDir::new();
    let out = with_settings(s, || rsync_project_with(&again.0, &opts)).unwrap();
    let cmd = out.command();
    assert!(
        cmd.contains(&format!("--rsh='ssh -F {} ", config.path().display())),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!("[127.0.0.13]:{}'\\'''\\'' 127.0.0.1'\\''", port())),
        "{cmd}"
    );
    assert!(
        cmd.ends_with(&format!(" twill@127.0.0.13:{}", again.0)),
        "{cmd}"
    );
    assert_eq!(again.read("a.txt"), "alpha\n");
}

#[test]
fn rsync_project_holds_host_keys_as_twill_does() {
    let local = local_tree();
    let remote = RemoteDir::new();
    let opts = RsyncOptions::new()
        .local_dir(format!("{}/", local.path().display()))
        .capture(true);
    let empty = tempfile::NamedTempFile::new().unwrap();
    let known = empty.path().to_str().unwrap().to_string();

    // Strict: a host missing from the known_hosts file is refused, even
    // when ssh_opts asks otherwise (twill's option comes first and wins).
    let strict = on("127.0.0.6").known_hosts(known.as_str());
    let err = with_settings(strict.clone(), || {
        rsync_project_with(
            &remote.0,
            &opts.clone().ssh_opts("-o StrictHostKeyChecking=no"),
        )
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(!remote.has("a.txt"));
    assert_eq!(fs::read_to_string(&known).unwrap(), "");

    // accept_new_host_keys: the key is recorded in that same file.
    let out = with_settings(strict.accept_new_host_keys(true), || {
        rsync_project_with(&remote.0, &opts)
    })
    .unwrap();
    assert!(
        out.command()
            .contains(" -o StrictHostKeyChecking=accept-new "),
        "{}",
        out.command()
    );
    assert_eq!(remote.read("a.txt"), "alpha\n");
    let recorded = fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.6]:{} ", port())),
        "{recorded}"
    );
}

#[test]
fn upload_project_unpacks_a_copy_and_cleans_up() {
    let local = local_tree();
    let name = local
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let remote = RemoteDir::new();
    with_settings(on("127.0.0.7"), || {
        upload_project(format!("{}/", local.path().display()), &remote.0)
    })
    .unwrap();
    assert_eq!(remote.read(&format!("{name}/a.txt")), "alpha\n");
    assert_eq!(remote.read(&format!("{name}/sub/deeper/c.txt")), "gamma\n");
    assert!(
        !remote.has(&format!("{name}.tar.gz")),
        "the tarball is removed"
    );

    // A relative local directory is taken from the lcd directory, a
    // relative remote one from cd; an empty remote one is home.
    let parent = local.path().parent().unwrap().to_str().unwrap().to_string();
    let again = RemoteDir::new();
    let base = Path::new(&again.0)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let leaf = Path::new(&again.0)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    with_settings(
        on("127.0.0.7")
            .lcd(parent.as_str())
            .merge(cd(base.as_str())),
        || upload_project(&name, &leaf),
    )
    .unwrap();
    assert_eq!(again.read(&format!("{name}/b.log")), "beta\n");

    let home = format!("{}/home/twill", var("TWILL_TEST_SSHD_DIR"));
    let tree = tempfile::Builder::new()
        .prefix(&unique("project"))
        .tempdir()
        .unwrap();
    fs::write(tree.path().join("f.txt"), "home\n").unwrap();
    let tree_name = tree
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    with_settings(on("127.0.0.7"), || {
        upload_project(tree.path().to_str().unwrap(), "")
    })
    .unwrap();
    let landed = Path::new(&home).join(&tree_name);
    let content = fs::read_to_string(landed.join("f.txt"));
    let _ = fs::remove_dir_all(&landed);
    assert_eq!(content.unwrap(), "home\n");
    assert!(!Path::new(&home)
        .join(format!("{tree_name}.tar.gz"))
        .exists());
}

#[test]
fn upload_project_with_sudo_into_a_directory_only_root_may_write() {
    let local = local_tree();
    let name = local
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let remote = RemoteDir::owned_by_root();
    let s = as_user(&var("TWILL_TEST_SUDO_USER"));
    // Without sudo the upload cannot write there.
    let err = with_settings(s.clone(), || {
        upload_project(local.path().to_str().unwrap(), &remote.0)
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transfer, "{err}");
    with_settings(s, || {
        upload_project_with(local.path().to_str().unwrap(), &remote.0, true)
    })
    .unwrap();
    assert_eq!(remote.read(&format!("{name}/sub/deeper/c.txt")), "gamma\n");
    let meta = fs::metadata(remote.path(&format!("{name}/a.txt"))).unwrap();
    assert_eq!(meta.uid(), 0, "unpacked by root");
    assert!(!remote.has(&format!("{name}.tar.gz")));
}

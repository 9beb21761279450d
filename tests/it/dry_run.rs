//! The dry run: the real commands printed, nothing run, nothing
//! connected, results that stand for success, and bash's check of each
//! remote command. The hosts named here do not exist: a dry run never
//! looks them up.

use std::path::PathBuf;

use twill::{
    download, download_data, local, local_with, open_shell, reboot, run, run_with, sudo, sudo_with,
    upload, upload_data, with_settings, ErrorKind, Execute, LocalOptions, RunOptions, Settings,
    UploadOptions,
};

use twill::contrib::files::{exists, upload_template};
use twill::contrib::project::{rsync_project_with, upload_project, RsyncOptions};

use crate::support::{child_command, in_child, is_child, text};

/// The first line a dry run prints.
const NOTICE: &str = "Dry run: nothing connects and nothing runs. Every command is taken to succeed with exit code 0 and no output, so a check such as exists() or contains() is taken as true, and a task that reads a command's output reads it empty.\n";

/// What a child printed from the dry run's first line on (the test
/// harness's own lines come before).
fn from_notice(stdout: &str) -> &str {
    let start = stdout
        .find(NOTICE)
        .unwrap_or_else(|| panic!("no notice: {stdout}"));
    &stdout[start..]
}

/// A host that does not exist, `cd`, `prefix`, `lcd` and an export.
fn scene() -> Settings {
    Settings::new()
        .host_string("deploy@web1.invalid")
        .dry_run(true)
        .cd("/srv/my app")
        .prefix("source venv/bin/activate")
        .lcd("/tmp")
        .shell_env([("STAGE", "blue green")])
}

fn as_user() -> RunOptions {
    RunOptions::new().user("www-data")
}

#[test]
fn run_sudo_and_local_print_the_real_commands_and_run_nothing() {
    const NAME: &str = "dry_run::run_sudo_and_local_print_the_real_commands_and_run_nothing";
    // The test's process names the file, in the child too.
    let owner = if is_child(NAME) {
        std::os::unix::process::parent_id()
    } else {
        std::process::id()
    };
    let marker = std::env::temp_dir().join(format!("twill-dry-run-{owner}"));
    let marker_text = marker.to_string_lossy().into_owned();
    let touch = format!("touch {marker_text}");
    let out = in_child(NAME, || {
        with_settings(scene(), || {
            let outputs = [
                run("make")?,
                sudo("systemctl restart app")?,
                sudo_with("whoami", &as_user())?,
                run_with(&touch, &RunOptions::new().pty(false))?,
                local(&touch)?,
                local_with(&touch, &LocalOptions::new().capture(true))?,
            ];
            for out in &outputs {
                assert!(out.succeeded() && !out.failed(), "{out:?}");
                assert_eq!((out.stdout(), out.stderr()), ("", ""));
                assert_eq!(out.return_code(), 0);
            }
            assert_eq!(outputs[0].command(), "make");
            assert_eq!(
                outputs[0].real_command(),
                RunOptions::new().real_command("make")
            );
            // The running lines follow the output groups; the dry
            // run's do not.
            with_settings(Settings::new().hide("everything"), || {
                run("hidden-make")?;
                local("hidden-local")
            })?;
            twill::Result::Ok(())
        })
        .unwrap();
        assert!(!std::path::Path::new(&marker_text).exists());
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!marker.exists(), "the local command ran");
    // What the same settings say the real commands are.
    let scope = twill::settings(scene());
    let local_opts = LocalOptions::new();
    let make = RunOptions::new().real_command("make");
    let restart = RunOptions::new().real_sudo_command("systemctl restart app");
    let whoami = as_user().real_sudo_command("whoami");
    let remote_touch = RunOptions::new().real_command(&touch);
    let local_touch = local_opts.real_command(&touch);
    let hidden_run = RunOptions::new().real_command("hidden-make");
    let hidden_local = local_opts.real_command("hidden-local");
    drop(scope);
    assert_eq!(
        make,
        "/bin/bash -l -c \"export STAGE=\\\"blue green\\\" && cd /srv/my\\ app >/dev/null && source venv/bin/activate && make\""
    );
    assert!(
        restart.starts_with("sudo -S -p 'sudo password:' "),
        "{restart}"
    );
    let h = "[deploy@web1.invalid]";
    let expected = format!(
        "{NOTICE}\
         {h} run: make\n{h} would run: {make}\n\
         {h} sudo: systemctl restart app\n{h} would run: {restart}\n\
         {h} sudo: whoami\n{h} would run: {whoami}\n\
         {h} run: {touch}\n{h} would run: {remote_touch}\n\
         [localhost] local: {touch}\n[localhost] would run locally: {local_touch}\n\
         [localhost] local: {touch}\n[localhost] would run locally: {local_touch}\n\
         {h} would run: {hidden_run}\n\
         [localhost] would run locally: {hidden_local}\n"
    );
    assert_eq!(from_notice(&stdout), expected);
    assert_eq!(stderr, "", "no syntax error was found");
}

#[test]
fn a_syntax_error_is_reported_and_fails_as_on_the_host() {
    let out = in_child(
        "dry_run::a_syntax_error_is_reported_and_fails_as_on_the_host",
        || {
            with_settings(scene(), || {
                let err = run("echo (").unwrap_err();
                assert_eq!(err.kind(), ErrorKind::CommandFailed);
                assert_eq!(err.exit_code(), Some(2));
                assert!(
                    err.message()
                        .starts_with("run() received nonzero return code 2 while executing!"),
                    "{err}"
                );
                // With warn_only: a failed result, as on the host.
                let out = with_settings(Settings::new().warn_only(true), || {
                    sudo("if true; then echo; fi fi")
                })
                .unwrap();
                assert!(out.failed());
                assert_eq!(out.return_code(), 2);
                assert!(out.stderr().contains("syntax error"), "{}", out.stderr());
                // Valid text passes, and a command bash does not get is not
                // checked.
                run("for f in a b; do echo \"$f\"; done").unwrap();
                with_settings(Settings::new().use_shell(false), || run("echo (")).unwrap();
                run_with("echo (", &RunOptions::new().shell(false)).unwrap();
            });
        },
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let h = "[deploy@web1.invalid]";
    assert!(
        stderr.contains(&format!(
            "\nWarning: {h} bash -n finds a syntax error in: export STAGE=\"blue green\" && cd /srv/my\\ app >/dev/null && source venv/bin/activate && echo (\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{h} bash -n finds a syntax error in: export STAGE=\"blue green\" && cd /srv/my\\ app >/dev/null && source venv/bin/activate && if true; then echo; fi fi\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Warning: sudo() received nonzero return code 2 while executing 'if true; then echo; fi fi'!"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("bash -n finds a syntax error").count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("syntax error near unexpected token").count(),
        2,
        "bash's own words: {stderr}"
    );
}

#[test]
fn transfers_name_what_they_would_write_and_write_nothing() {
    const NAME: &str = "dry_run::transfers_name_what_they_would_write_and_write_nothing";
    const DIR_VAR: &str = "TWILL_TEST_DRY_RUN_DIR";
    if is_child(NAME) {
        let dir = PathBuf::from(std::env::var(DIR_VAR).unwrap());
        let file = dir.join("app.conf");
        with_settings(scene(), || {
            assert_eq!(upload(&file, "/etc/app/").unwrap(), ["/etc/app/app.conf"]);
            // Below `cd`; `~` as given.
            assert_eq!(
                upload(&file, "conf/app.conf").unwrap(),
                ["/srv/my app/conf/app.conf"]
            );
            assert_eq!(upload(&file, "~/app.conf").unwrap(), ["~/app.conf"]);
            // A file an earlier command would have made.
            assert_eq!(
                upload(dir.join("dist.tgz"), "/srv/").unwrap(),
                ["/srv/dist.tgz"]
            );
            assert_eq!(
                upload_data("abc", "/etc/motd", &UploadOptions::new()).unwrap(),
                "/etc/motd"
            );
            let logs = dir.join("logs/");
            assert_eq!(
                download("/var/log/app.log", &logs).unwrap(),
                [dir.join("logs/app.log")]
            );
            assert!(download("/var/log/*.log", &logs).unwrap().is_empty());
            assert!(download_data("/etc/hostname").unwrap().is_empty());
        });
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.conf"), "12345").unwrap();
    let out = child_command(NAME)
        .env(DIR_VAR, dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "only the file to upload is there: {left:?}");
    let (h, d) = ("[deploy@web1.invalid]", dir.path().display());
    let expected = format!(
        "{NOTICE}\
         {h} put: {d}/app.conf -> /etc/app/app.conf\n\
         {h} would put: {d}/app.conf -> /etc/app/app.conf (5 bytes)\n\
         {h} put: {d}/app.conf -> /srv/my app/conf/app.conf\n\
         {h} would put: {d}/app.conf -> /srv/my app/conf/app.conf (5 bytes)\n\
         {h} put: {d}/app.conf -> ~/app.conf\n\
         {h} would put: {d}/app.conf -> ~/app.conf (5 bytes)\n\
         {h} put: {d}/dist.tgz -> /srv/dist.tgz\n\
         {h} would put: {d}/dist.tgz -> /srv/dist.tgz (not there now)\n\
         {h} put: <data> -> /etc/motd\n\
         {h} would put: <data> -> /etc/motd (3 bytes)\n\
         {h} download: {d}/logs/app.log <- /var/log/app.log\n\
         {h} would get: /var/log/app.log -> {d}/logs/app.log\n\
         {h} would get: /var/log/*.log -> {d}/logs/ (the local names depend on what is there)\n\
         {h} download: <data> <- /etc/hostname\n\
         {h} would get: /etc/hostname -> <data>\n"
    );
    assert_eq!(from_notice(&stdout), expected);
}

#[test]
fn parallel_workers_dry_run_too() {
    let out = in_child("dry_run::parallel_workers_dry_run_too", || {
        let results = with_settings(scene().hide("running"), || {
            Execute::new("check")
                .hosts(["web1.invalid", "web2.invalid", "web3.invalid"])
                .parallel(true)
                .run(|| Ok(run("uname -r")?.to_string()))
        })
        .unwrap();
        assert_eq!(results.hosts().len(), 3);
        for host in results.hosts() {
            assert_eq!(results.get(host).unwrap().as_ref().unwrap(), "");
        }
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches(NOTICE).count(), 1, "{stdout}");
    for n in 1..=3 {
        assert!(
            stdout.contains(&format!(
                "[web{n}.invalid] would run: /bin/bash -l -c \"export STAGE=\\\"blue green\\\" && cd /srv/my\\ app >/dev/null && source venv/bin/activate && uname -r\"\n"
            )),
            "{stdout}"
        );
    }
}

#[test]
fn contrib_helpers_print_and_run_nothing() {
    let out = in_child("dry_run::contrib_helpers_print_and_run_nothing", || {
        let here = tempfile::tempdir().unwrap();
        let site = here.path().join("site");
        std::fs::create_dir(&site).unwrap();
        std::fs::write(site.join("index.html"), "hello\n").unwrap();
        let template = here.path().join("app.conf.tpl");
        std::fs::write(&template, "stage = %(stage)s\n").unwrap();
        let scene = Settings::new()
            .host_string("deploy@web1.invalid")
            .dry_run(true)
            .use_ssh_config(false)
            .lcd(here.path().to_string_lossy())
            .set("stage", "blue");
        with_settings(scene, || {
            let synced = rsync_project_with("/srv/www", &RsyncOptions::new().local_dir("site/"))?;
            assert!(synced.succeeded() && synced.stdout().is_empty());
            upload_project("site", "/srv/app")?;
            let written = upload_template(&template, "/etc/app.conf", &twill::env())?;
            assert!(written.starts_with("/etc/app.conf"), "{written}");
            assert!(exists("/etc/app.conf")?, "a check counts as true");
            twill::Result::Ok(())
        })
        .unwrap();
        let left: Vec<_> = std::fs::read_dir(here.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "nothing was made here: {left:?}");
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let h = "[deploy@web1.invalid]";
    for line in [
        "[localhost] would run locally: cd ".to_string(),
        " && rsync -pthrvz --rsh=".to_string(),
        " site/ deploy@web1.invalid:/srv/www\n".to_string(),
        "[localhost] would run locally: cd ".to_string(),
        " && tar -czf ".to_string(),
        format!("{h} would put: "),
        "/site.tar.gz -> /srv/app/site.tar.gz (not there now)\n".to_string(),
        format!(
            "{h} would run: /bin/bash -l -c \"cd /srv/app >/dev/null && tar -xzf site.tar.gz\"\n"
        ),
        format!("{h} would run: /bin/bash -l -c \"cd /srv/app >/dev/null && rm -f site.tar.gz\"\n"),
        format!("{h} would put: <data> -> /etc/app.conf"),
        "(13 bytes)\n".to_string(),
        format!("{h} would run: /bin/bash -l -c \"stat \\\"\\$(echo /etc/app.conf)\\\"\"\n"),
    ] {
        assert!(stdout.contains(&line), "{line:?} in {stdout}");
    }
}

#[test]
fn reboot_and_open_shell_only_say_what_they_would_do() {
    let out = in_child(
        "dry_run::reboot_and_open_shell_only_say_what_they_would_do",
        || {
            with_settings(scene(), || {
                let started = std::time::Instant::now();
                reboot(std::time::Duration::from_secs(120))?;
                assert!(started.elapsed() < std::time::Duration::from_secs(2));
                open_shell("tail -f /var/log/syslog")?;
                open_shell(None)
            })
            .unwrap();
        },
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let reboot_command = with_settings(scene(), || RunOptions::new().real_sudo_command("reboot"));
    let h = "[deploy@web1.invalid]";
    let expected = format!(
        "{NOTICE}\
         {h} would run: {reboot_command}\n\
         {h} would wait up to 120 seconds for the host to come back\n\
         {h} would open a shell and type: tail -f /var/log/syslog\n\
         {h} would open a shell\n"
    );
    assert_eq!(from_notice(&stdout), expected);
}

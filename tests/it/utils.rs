//! `require`, `error`/`error_with`, `env_format`, and what
//! `rsync_project` builds and prints before any server is involved.

use std::time::Duration;

use twill::contrib::project::{rsync_project, rsync_project_with, RsyncOptions};
use twill::{
    env_format, error, error_with, require, require_with, warn_only, with_settings, ErrorKind,
    RequireOptions, Settings,
};

use crate::support::{in_child, text};

#[test]
fn require_passes_for_set_keys_and_built_in_defaults() {
    let s = Settings::new()
        .set("root", "/srv/app")
        .set("release", 7u32)
        .set("flags", Vec::<String>::new())
        .hosts(["web1"]);
    with_settings(s, || {
        require(["root", "release", "hosts", "user", "port", "shell"]).unwrap();
        // An empty list counts as missing, as in Fabric.
        let err = require(["flags"]).unwrap_err();
        assert!(err.to_string().contains("\n    flags"), "{err}");
    });
}

#[test]
fn require_says_what_is_missing_in_fabrics_words() {
    let err = require(["host_string"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert_eq!(
        err.to_string(),
        "The following required environment variable was not defined:\n    host_string"
    );

    let opts = RequireOptions::new()
        .used_for("deploying the shop")
        .provided_by(["staging", "production"]);
    let s = Settings::new().set("command", "deploy").set("root", "/srv");
    let err = with_settings(s, || require_with(["root", "venv", "branch"], &opts)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert_eq!(
        err.to_string(),
        "The command 'deploy' failed because the following required environment variables were not defined:\n    venv\n    branch\n\n\
         These variables are used for deploying the shop\n\n\
         Try running one of the following commands prior to this one, to fix the problem:\n    staging\n    production"
    );

    let err = require_with(
        ["venv"],
        &RequireOptions::new()
            .used_for("pip")
            .provided_by(["virtualenv"]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The following required environment variable was not defined:\n    venv\n\n\
         This variable is used for pip\n\n\
         Try running the following command prior to this one, to fix the problem:\n    virtualenv"
    );
}

#[test]
fn error_aborts_or_warns_as_warn_only_says() {
    let err = error("no release tag").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert_eq!(err.message(), "no release tag");
    let cause = std::io::Error::other("disk full\nreally");
    let err = error_with("could not write the release", &cause).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not write the release\n\nUnderlying exception:\n    disk full\n    really"
    );

    let out = in_child("utils::error_aborts_or_warns_as_warn_only_says", || {
        with_settings(warn_only(), || {
            error("no release tag").unwrap();
            error_with("could not write", &"disk full").unwrap();
        });
    });
    let stderr = text(&out.stderr);
    assert!(stderr.contains("\nWarning: no release tag\n\n"), "{stderr}");
    assert!(
        stderr.contains("\nWarning: could not write\n\nUnderlying exception:\n    disk full\n\n"),
        "{stderr}"
    );
}

#[test]
fn env_format_fills_both_forms_from_the_settings() {
    let s = Settings::new()
        .host_string("deploy@web1:2222")
        .set("project", "shop")
        .set("release", 42i64)
        .set("ratio", 0.5f64)
        .set("debug", true)
        .cd("/srv/shop");
    with_settings(s, || {
        assert_eq!(
            env_format("%(user)s@%(host)s:/srv/{project}").unwrap(),
            "deploy@web1:/srv/shop"
        );
        assert_eq!(
            env_format("{host_string} {port} %(port)d %(release)i {ratio} {debug} {cwd}").unwrap(),
            "deploy@web1:2222 2222 2222 42 0.5 true /srv/shop"
        );
        // Escapes, and text that is not a placeholder.
        assert_eq!(
            env_format("100%% {{literal}} date +%Y {} {0} a}b {x-y}").unwrap(),
            "100% {literal} date +%Y {} {0} a}b {x-y}"
        );
        // Built-in defaults.
        assert_eq!(
            env_format("{shell}|{timeout}|{connection_attempts}|{warn_only}").unwrap(),
            "/bin/bash -l -c|10|1|false"
        );
    });
    // Without a host string: the user setting, else the local user.
    with_settings(Settings::new().user("ops").port(2200), || {
        assert_eq!(env_format("{user}:{port}").unwrap(), "ops:2200");
    });
    with_settings(Settings::new().timeout(Duration::from_millis(1500)), || {
        assert_eq!(env_format("%(timeout)s").unwrap(), "1.5");
    });
}

#[test]
fn env_format_refuses_unknown_keys_secrets_and_other_values() {
    let s = Settings::new()
        .password("hunter2")
        .hosts(["a", "b"])
        .set("name", "x");
    with_settings(s, || {
        for (template, says) in [
            ("/srv/{project}", "no setting named 'project' is set"),
            ("/srv/%(project)s", "no setting named 'project' is set"),
            ("{host_string}", "no setting named 'host_string' is set"),
            ("{password}", "'password' is a password"),
            (
                "{hosts}",
                "the setting 'hosts' is neither text nor a number",
            ),
            ("%(name)d", "'name' is not a whole number"),
            ("%(name)x", "'%(name)' must be followed by s, d or i"),
            ("%(name", "a '%(' is not closed by ')'"),
        ] {
            let err = env_format(template).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Settings, "{template}");
            let msg = err.to_string();
            assert!(
                msg.contains(says) && msg.contains(template),
                "{template}: {msg}"
            );
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    });
}

#[test]
fn rsync_project_needs_a_host() {
    let err = rsync_project("/srv/app").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings);
    assert!(
        err.to_string().contains("rsync_project() needs a host"),
        "{err}"
    );
    let err = twill::contrib::project::upload_project("", "/srv").unwrap_err();
    assert!(
        err.to_string().contains("upload_project() needs a host"),
        "{err}"
    );
}

#[test]
fn rsync_project_prints_fabrics_line_and_fails_as_local_does() {
    let key = tempfile::NamedTempFile::new().unwrap();
    let known = tempfile::NamedTempFile::new().unwrap();
    let (key, known) = (
        key.path().to_str().unwrap().to_string(),
        known.path().to_str().unwrap().to_string(),
    );
    let name = "utils::rsync_project_prints_fabrics_line_and_fails_as_local_does";
    // Port 1 on loopback refuses: rsync (or its absence) fails at once.
    let host = "deploy@127.0.0.1:1";
    let out = in_child(name, || {
        let s = Settings::new()
            .host_string(host)
            .key_filename([key.clone()])
            .known_hosts(known.clone())
            .use_ssh_config(false)
            .no_agent(true)
            .timeout(Duration::from_secs(3));
        let opts = RsyncOptions::new()
            .local_dir("/nonexistent/src/")
            .exclude("*.tmp")
            .delete(true)
            .capture(true);
        let err = with_settings(s, || rsync_project_with("/srv/app", &opts)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert_eq!(err.host(), Some(host));
        let cmd = err.command().unwrap().to_string();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "[{host}] local() encountered an error (return code "
            )),
            "{msg}"
        );
        assert!(msg.contains(&cmd), "{msg}");
        for part in [
            "rsync --delete --exclude '*.tmp' -pthrvz --rsh='ssh -F /dev/null ",
            &format!(" -i {key} -p 1 -o IdentitiesOnly=yes "),
            &format!(" -o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null "),
            " -o StrictHostKeyChecking=yes -o ConnectTimeout=3 ",
            "' /nonexistent/src/ deploy@127.0.0.1:/srv/app",
        ] {
            assert!(cmd.contains(part), "{part} in {cmd}");
        }
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "[{host}] rsync_project: rsync --delete --exclude '*.tmp' -pthrvz --rsh='ssh "
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("[localhost] local: rsync --delete "),
        "{stdout}"
    );
}

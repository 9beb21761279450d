//! `sudo`: users, groups, and passwords that never show.

use std::time::{Duration, Instant};

use twill::{cd, sudo, sudo_with, with_settings, ErrorKind, RunOptions, Settings};

use crate::support::{as_user, in_child, text, var};

fn passwordless() -> Settings {
    as_user(&var("TWILL_TEST_SUDO_USER"))
}

fn needs_password() -> Settings {
    as_user(&var("TWILL_TEST_SUDOPW_USER"))
}

#[test]
fn passwordless_sudo_runs_as_root_and_as_other_users() {
    with_settings(passwordless(), || {
        assert_eq!(sudo("whoami").unwrap(), "root");
        assert_eq!(
            sudo_with("whoami", &RunOptions::new().user("twill")).unwrap(),
            "twill"
        );
        assert_eq!(
            sudo_with("id -gn", &RunOptions::new().user("nobody").group("nogroup")).unwrap(),
            "nogroup"
        );
        // The test users exist only on the server, with UIDs it picks.
        let twill_uid = sudo_with("id -u", &RunOptions::new().user("twill"))
            .unwrap()
            .to_string();
        let uid = sudo_with("id -u", &RunOptions::new().user(twill_uid.clone())).unwrap();
        assert_eq!(uid, twill_uid.as_str(), "numeric ids become #UID");
        // cd and exports run inside the shell that sudo starts.
        assert_eq!(with_settings(cd("/root"), || sudo("pwd")).unwrap(), "/root");
        with_settings(Settings::new().sudo_user("twill"), || {
            assert_eq!(sudo("whoami").unwrap(), "twill")
        });
    });
}

#[test]
fn sudo_password_answers_the_prompt_and_never_shows() {
    let password = var("TWILL_TEST_SUDO_PASSWORD");
    let out = in_child(
        "sudo::sudo_password_answers_the_prompt_and_never_shows",
        || {
            with_settings(
                needs_password().sudo_password(var("TWILL_TEST_SUDO_PASSWORD")),
                || {
                    let out = sudo("whoami").unwrap();
                    assert_eq!(out, "root");
                    assert!(
                        !out.contains("sudo password:"),
                        "the prompt is removed from the result: {out:?}"
                    );
                    let out = sudo_with("whoami", &RunOptions::new().pty(false)).unwrap();
                    assert_eq!(out, "root");
                    println!("CHILD-OK");
                },
            );
        },
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("CHILD-OK"), "{stdout}{stderr}");
    assert!(
        !stdout.contains(&password) && !stderr.contains(&password),
        "password leaked: {stdout}{stderr}"
    );
    // The login password answers too when no sudo password is set.
    with_settings(
        needs_password().password(var("TWILL_TEST_SUDO_PASSWORD")),
        || {
            assert_eq!(sudo("whoami").unwrap(), "root");
        },
    );
}

#[test]
fn a_wrong_sudo_password_is_an_error_not_a_hang() {
    with_settings(needs_password().sudo_password("not-the-password"), || {
        let started = Instant::now();
        let err = sudo("whoami").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(
            err.to_string().contains("sudo password was rejected"),
            "{err}"
        );
        assert!(!err.to_string().contains("not-the-password"));
        assert!(started.elapsed() < Duration::from_secs(30));
    });
}

#[test]
fn sudo_asking_without_a_password_set_is_a_clear_error() {
    with_settings(needs_password(), || {
        let err = sudo("whoami").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Prompt, "{err}");
        assert!(err.to_string().contains("none is set"), "{err}");
    });
}

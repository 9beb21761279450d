//! The settings stack.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::support::{in_child, text};

use twill::{
    add_cleanup, env, set_defaults, settings, with_settings, ErrorKind, LocalOptions, Settings,
};

#[test]
fn inner_scopes_override_outer_and_restore_exactly() {
    assert_eq!(env().get_str("branch"), None);
    with_settings(
        Settings::new()
            .set("branch", "main")
            .user("web")
            .warn_only(true),
        || {
            assert_eq!(env().get_str("branch").as_deref(), Some("main"));
            with_settings(
                Settings::new().set("branch", "dev").set("extra", 1u8),
                || {
                    assert_eq!(env().get_str("branch").as_deref(), Some("dev"));
                    assert_eq!(env().user(), "web", "outer keys stay visible");
                    assert!(env().warn_only());
                    assert_eq!(env().get::<u8>("extra"), Some(1));
                },
            );
            assert_eq!(env().get_str("branch").as_deref(), Some("main"));
            assert!(
                !env().contains("extra"),
                "a key added by the inner scope is gone"
            );
        },
    );
    assert!(!env().contains("branch"));
    assert!(!env().contains("user"));
    assert!(!env().warn_only());
}

#[test]
fn unset_in_a_scope_and_back() {
    with_settings(Settings::new().sudo_user("a"), || {
        with_settings(Settings::new().unset("sudo_user"), || {
            assert_eq!(env().sudo_user(), None)
        });
        assert_eq!(env().sudo_user().as_deref(), Some("a"));
    });
}

fn fails_inside_scope() -> twill::Result<()> {
    let _g = settings(Settings::new().set("stage", "inner"));
    assert_eq!(env().get_str("stage").as_deref(), Some("inner"));
    twill::local("exit 4")?;
    unreachable!("local must fail");
}

#[test]
fn restored_after_question_mark() {
    let err = fails_inside_scope().unwrap_err();
    assert_eq!(err.exit_code(), Some(4));
    assert_eq!(env().get_str("stage"), None);
}

#[test]
fn restored_after_panic() {
    let caught = std::panic::catch_unwind(|| {
        with_settings(
            Settings::new().set("stage", "panicking").warn_only(true),
            || -> () {
                let _g = settings(Settings::new().user("deeper"));
                panic!("boom");
            },
        )
    });
    assert!(caught.is_err());
    assert_eq!(env().get_str("stage"), None);
    assert!(!env().warn_only());
    assert_ne!(env().user(), "deeper");
    // The stack is usable afterwards.
    with_settings(Settings::new().set("stage", "after"), || {
        assert_eq!(env().get_str("stage").as_deref(), Some("after"))
    });
}

#[test]
fn guard_dropped_out_of_order_closes_inner_scopes_too() {
    let outer = settings(Settings::new().set("level", 1));
    let inner = settings(Settings::new().set("level", 2));
    assert_eq!(env().get::<i32>("level"), Some(2));
    drop(outer);
    assert_eq!(
        env().get::<i32>("level"),
        None,
        "dropping the outer guard restores what was before it"
    );
    drop(inner); // already closed: a no-op
    assert_eq!(env().get::<i32>("level"), None);
}

#[test]
fn cleanups_run_in_order_on_exit_and_never_in_parent() {
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    with_settings(Settings::new(), move || {
        let a = l.clone();
        add_cleanup(move || a.borrow_mut().push("outer".into())).unwrap();
        let l2 = l.clone();
        with_settings(Settings::new().set("where", "inner"), move || {
            let (b, c) = (l2.clone(), l2.clone());
            add_cleanup(move || {
                b.borrow_mut()
                    .push(format!("inner1 sees {:?}", env().get_str("where")))
            })
            .unwrap();
            add_cleanup(move || c.borrow_mut().push("inner2".into())).unwrap();
        });
        assert_eq!(
            *l.borrow(),
            ["inner1 sees Some(\"inner\")", "inner2"],
            "only the inner scope's cleanups ran"
        );
    });
    assert_eq!(
        *log.borrow(),
        ["inner1 sees Some(\"inner\")", "inner2", "outer"]
    );
}

#[test]
fn cleanups_run_on_panic_and_a_panicking_cleanup_does_not_skip_others() {
    let log = Rc::new(RefCell::new(Vec::<&str>::new()));
    let l = log.clone();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_settings(Settings::new().set("k", "v"), || {
            add_cleanup(|| panic!("cleanup fails")).unwrap();
            let l = l.clone();
            add_cleanup(move || l.borrow_mut().push("second")).unwrap();
        })
    }));
    assert!(caught.is_err(), "the cleanup's panic reaches the caller");
    assert_eq!(*log.borrow(), ["second"]);
    assert!(
        !env().contains("k"),
        "settings restored even though a cleanup panicked"
    );
}

#[test]
fn add_cleanup_outside_a_scope_is_an_error() {
    let err = add_cleanup(|| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings);
    assert!(err.to_string().contains("needs a settings scope"), "{err}");
}

#[test]
fn defaults_are_process_wide_and_refused_inside_a_scope() {
    // Runs in a child process: the process-wide defaults it sets would
    // otherwise be seen by tests running beside it.
    let out = in_child(
        "state::defaults_are_process_wide_and_refused_inside_a_scope",
        || {
            set_defaults(
                Settings::new()
                    .set("dflt", "yes")
                    .command_timeout(Duration::from_secs(7)),
            )
            .unwrap();
            assert_eq!(env().get_str("dflt").as_deref(), Some("yes"));
            let seen_elsewhere = std::thread::spawn(|| env().get_str("dflt")).join().unwrap();
            assert_eq!(
                seen_elsewhere.as_deref(),
                Some("yes"),
                "defaults reach new threads"
            );
            with_settings(Settings::new().set("dflt", "scoped"), || {
                let err = set_defaults(Settings::new()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Settings);
                assert!(err.to_string().contains("inside a settings scope"));
                assert_eq!(
                    env().get_str("dflt").as_deref(),
                    Some("scoped"),
                    "the stack beats the defaults"
                );
            });
            assert_eq!(env().command_timeout(), Some(Duration::from_secs(7)));
            set_defaults(Settings::new()).unwrap();
            assert_eq!(env().get_str("dflt"), None);
            println!("CHILD-OK");
        },
    );
    assert!(
        text(&out.stdout).contains("CHILD-OK"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn explicit_arguments_beat_the_stack_which_beats_defaults() {
    // Default: failure is an error.
    assert!(twill::local("exit 1").is_err());
    with_settings(Settings::new().warn_only(true), || {
        // Stack: warn_only from the scope.
        let out = twill::local("exit 1").unwrap();
        assert!(out.failed());
        // Explicit argument: warn_only(false) beats the scope.
        let err = twill::local_with("exit 1", &LocalOptions::new().warn_only(false)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
    });
    // An explicit warn_only(true) beats the default.
    assert!(twill::local_with("exit 1", &LocalOptions::new().warn_only(true)).is_ok());
}

#[test]
fn settings_are_per_thread_and_snapshots_carry_them() {
    with_settings(
        Settings::new().set("owner", "main-thread").user("deploy"),
        || {
            let snapshot = env();
            let handle = std::thread::spawn(move || {
                let before = env().get_str("owner");
                let during = {
                    let _g = snapshot.install();
                    // Scopes layer on top of an installed snapshot as usual.
                    with_settings(Settings::new().set("owner", "worker"), || {
                        assert_eq!(env().get_str("owner").as_deref(), Some("worker"))
                    });
                    (env().get_str("owner"), env().user())
                };
                let after = env().get_str("owner");
                (before, during, after)
            });
            let (before, during, after) = handle.join().unwrap();
            assert_eq!(
                before, None,
                "a new thread does not see another thread's scopes"
            );
            assert_eq!(
                during,
                (Some("main-thread".to_string()), "deploy".to_string())
            );
            assert_eq!(after, None);
            assert_eq!(
                env().get_str("owner").as_deref(),
                Some("main-thread"),
                "the worker changed nothing here"
            );
        },
    );
}

#[test]
fn user_keys_hold_values_of_the_users_type() {
    #[derive(Debug, Clone, PartialEq)]
    struct Stage {
        name: String,
        hosts: Vec<String>,
    }
    let stage = Stage {
        name: "prod".into(),
        hosts: vec!["web1".into(), "web2".into()],
    };
    with_settings(
        Settings::new()
            .set_value("stage", stage.clone())
            .set("replicas", 3usize),
        || {
            assert_eq!(env().get::<Stage>("stage"), Some(stage.clone()));
            assert_eq!(env().get_ref::<Stage>("stage").unwrap().hosts.len(), 2);
            assert_eq!(env().get::<usize>("replicas"), Some(3));
            assert_eq!(env().get::<String>("replicas"), None);
            assert!(env().keys().any(|k| k == "stage"));
        },
    );
}

#[test]
fn one_reading_of_booleans() {
    for (text, value) in [
        ("true", true),
        ("YES", true),
        (" on ", true),
        ("1", true),
        ("y", true),
    ]
    .into_iter()
    .chain([
        ("false", false),
        ("No", false),
        ("off", false),
        ("0", false),
        ("n", false),
    ]) {
        let s = Settings::new().set_str("warn_only", text).unwrap();
        assert_eq!(with_settings(s, || env().warn_only()), value, "{text:?}");
    }
    for text in ["", "maybe", "2"] {
        let err = Settings::new().set_str("warn_only", text).unwrap_err();
        assert!(err.to_string().contains("a boolean"), "{text:?}: {err}");
    }
}

#[test]
fn builtin_keys_are_typed_and_parsed_from_text() {
    let s = Settings::new()
        .set_str("port", "2200")
        .unwrap()
        .set_str("timeout", "2.5")
        .unwrap()
        .set_str("hosts", "web1, web2")
        .unwrap()
        .set_str("ok_ret_codes", "0,1")
        .unwrap()
        .set_str("abort_on_prompts", "Yes")
        .unwrap()
        .set_str("branch", "main")
        .unwrap();
    with_settings(s, || {
        assert_eq!(env().port(), 2200);
        assert_eq!(env().timeout(), Duration::from_millis(2500));
        assert_eq!(env().hosts(), ["web1", "web2"]);
        assert_eq!(env().ok_ret_codes(), [0, 1]);
        assert!(
            env().abort_on_prompts(),
            "`--set key` with no value means true"
        );
        assert_eq!(env().get_str("branch").as_deref(), Some("main"));
    });
    let err = Settings::new()
        .set_str("connection_attempts", "many")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings);
    assert!(err.to_string().contains("connection_attempts"), "{err}");
    let caught = std::panic::catch_unwind(|| Settings::new().set("warn_only", 5u32));
    assert!(
        caught.is_err(),
        "a built-in key refuses a value of the wrong type"
    );
    // A string for a flag is parsed rather than refused.
    with_settings(Settings::new().set("warn_only", "yes"), || {
        assert!(env().warn_only())
    });
}

#[test]
fn defaults_of_builtin_keys() {
    let e = env();
    assert_eq!(e.shell(), "/bin/bash -l -c");
    assert_eq!(e.sudo_prompt(), "sudo password:");
    assert_eq!(e.port(), 22);
    assert_eq!(e.timeout(), Duration::from_secs(10));
    assert_eq!(e.command_timeout(), None);
    assert_eq!(e.ok_ret_codes(), [0]);
    assert!(e.use_shell() && e.combine_stderr() && e.always_use_pty() && e.output_prefix());
    assert!(!e.warn_only() && !e.accept_new_host_keys());
    assert!(e.shown("running") && e.shown("stdout") && !e.shown("debug"));
}

#[test]
fn passwords_never_show_in_debug_output() {
    let s = Settings::new()
        .password("hunter2")
        .sudo_password("s3cret")
        .passwords([("web1", "pw-web1")]);
    let printed = format!("{s:?}");
    with_settings(s, || {
        let env_printed = format!("{:?}", env());
        for secret in ["hunter2", "s3cret", "pw-web1"] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!env_printed.contains(secret), "{env_printed}");
        }
        assert_eq!(env().password().as_deref(), Some("hunter2"));
    });
}

#[test]
fn hide_show_and_aliases() {
    with_settings(twill::hide("everything"), || {
        for g in [
            "warnings",
            "running",
            "user",
            "stdout",
            "stderr",
            "exceptions",
        ] {
            assert!(!env().shown(g), "{g} hidden by everything");
        }
        assert!(
            env().shown("aborts") && env().shown("status"),
            "everything leaves aborts and status"
        );
        with_settings(twill::show("running"), || {
            assert!(env().shown("running") && !env().shown("stdout"))
        });
    });
    with_settings(twill::hide("commands"), || {
        assert!(!env().shown("stdout") && !env().shown("running") && env().shown("stderr"))
    });
    with_settings(twill::quiet(), || {
        assert!(env().warn_only() && !env().shown("output"))
    });
    assert!(std::panic::catch_unwind(|| twill::hide("stdotu")).is_err());
}

#[test]
fn a_host_string_with_a_bad_port_is_a_settings_error_naming_it() {
    let quiet = || Settings::new().hide("running").use_ssh_config(false);
    for (host, why) in [
        ("h:99999", "99999 is out of range (ports are 1 to 65535)"),
        ("deploy@[::1]:0", "0 is out of range (ports are 1 to 65535)"),
        ("h:ssh", "'ssh' is not a number"),
        ("h:", "the port is empty"),
    ] {
        let err = with_settings(quiet().host_string(host), || twill::run("true")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings, "{host}: {err}");
        assert_eq!(err.host(), Some(host));
        assert_eq!(
            err.to_string(),
            format!("Invalid port in host string '{host}': {why}")
        );
    }
    let err = with_settings(quiet().host_string("h:99999"), || {
        twill::upload("Cargo.toml", "/tmp/")
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings, "{err}");
    // A jump host's port is checked the same way.
    let err = with_settings(quiet().host_string("h").gateway("jump:99999"), || {
        twill::run("true")
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings, "{err}");
    assert!(
        err.to_string()
            .contains("Invalid port in host string 'jump:99999': 99999 is out of range"),
        "{err}"
    );
}

//! The lines a Fabric user writes first when porting a fabfile, exactly as
//! written. Each stopped the compiler once (E0716, E0521, E0277, E0282);
//! this file compiling is half of each test, the assertions the other half.

use std::path::Path;

use twill::{env, lcd, local, with_settings, ErrorKind, Settings};

/// `env.host_string` and `env.tag` read into a variable and used later.
#[test]
fn settings_read_into_a_variable_outlive_the_statement() {
    with_settings(
        Settings::new()
            .host_string("deploy@web1")
            .set("tag", "v1.2"),
        || {
            let h = env().host_string().unwrap();
            let tag = env().get_str("tag").unwrap();
            let hosts = env().hosts();
            let user = env().user();
            assert_eq!(format!("{tag} to {h}"), "v1.2 to deploy@web1");
            assert!(hosts.is_empty());
            assert!(!user.is_empty());
        },
    );
}

/// An environment-selector task: `env.tag = tag` from a borrowed argument.
#[test]
fn a_borrowed_argument_goes_into_the_settings() {
    fn stage(tag: &str) -> Settings {
        Settings::new().set("tag", tag)
    }
    let name = String::from("staging");
    let s = stage(&name);
    drop(name);
    with_settings(s, || {
        assert_eq!(env().get_str("tag").as_deref(), Some("staging"))
    });
}

/// `open(path, "w").write(..)` inside a task: `?` on the standard error.
#[test]
fn a_file_error_in_a_task_is_a_twill_error() {
    fn task(dir: &Path) -> twill::Result<String> {
        std::fs::write(dir.join("missing/VERSION"), "1")?;
        let n: u32 = "12x".parse()?;
        Ok(n.to_string())
    }
    let dir = tempfile::tempdir().unwrap();
    let err = task(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.message().contains("No such file"), "{err}");
    std::fs::create_dir(dir.path().join("missing")).unwrap();
    let err = task(dir.path()).unwrap_err();
    assert!(err.message().contains("invalid digit"), "{err}");
}

/// `local("... %s" % x)` is `local(format!(..))`; `run` and `sudo` take the
/// same (checked against the server in the remote suite).
#[test]
fn operations_take_a_formatted_command() {
    let dir = tempfile::tempdir().unwrap();
    let name = "built";
    let out = with_settings(lcd(dir.path().to_str().unwrap()), || {
        local(format!("touch {name}"))
    })
    .unwrap();
    assert_eq!(out.command(), "touch built");
    assert!(dir.path().join("built").exists());
}

/// `env.roledefs = {'web': ['a', 'b'], 'db': ['c']}`: roles of different
/// sizes, one line each.
#[test]
fn roles_of_different_sizes_need_no_vec() {
    let s = Settings::new().role("web", ["a", "b"]).role("db", ["c"]);
    with_settings(s, || {
        let roles = env().roledefs();
        assert_eq!(roles["web"], ["a", "b"]);
        assert_eq!(roles["db"], ["c"]);
    });
}

/// `with cd(..): run(..)` as a closure whose result is kept or unwrapped,
/// not passed on with `?`: the common form infers its error type.
#[test]
fn a_scope_closure_with_question_marks_infers_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    with_settings(lcd(at), || {
        local("touch one")?;
        Ok(())
    })
    .unwrap();
    let kept = with_settings(lcd(at), || {
        local("touch two")?;
        local("false")?;
        Ok(())
    });
    assert_eq!(kept.unwrap_err().kind(), ErrorKind::CommandFailed);
    assert!(dir.path().join("one").exists() && dir.path().join("two").exists());
}

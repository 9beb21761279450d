//! A tour of twill's local side: settings scopes, `local`, results and
//! failures, the way a Fabric 1.x fabfile uses them.
//!
//! Run with `cargo run --example local_tour`.

use twill::{
    env, lcd, local, local_capture, prefix, shell_env, warn_only, with_settings, Settings,
};

fn main() {
    if let Err(e) = tour() {
        e.report();
        std::process::exit(1);
    }
}

fn tour() -> twill::Result<()> {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().expect("temp dir is UTF-8");

    // with lcd(dir), prefix(...), shell_env(...): local(...)
    with_settings(
        lcd(dir)
            .merge(prefix("export STAGE=demo"))
            .merge(shell_env([("GREETING", "hello $USER")])),
        || {
            local("echo \"$GREETING from $(pwd) in $STAGE\"")?;
            Ok::<_, twill::Error>(())
        },
    )?;

    // local(..., capture=True) reads as a string.
    let kernel = local_capture("uname -s")?;
    twill::puts(&format!("kernel: {kernel} ({} chars)", kernel.len()));

    // with settings(warn_only=True): a failure is a warning and a result.
    let result = with_settings(warn_only(), || {
        local_capture("echo 'not there' >&2; exit 3")
    })?;
    twill::puts(&format!(
        "failed={} return_code={} stdout={:?}",
        result.failed(),
        result.return_code(),
        result.stdout()
    ));

    // Your own keys in env, scoped like everything else.
    with_settings(Settings::new().set("release", 42u32), || {
        twill::puts(&format!(
            "release {}",
            env().get::<u32>("release").unwrap_or(0)
        ));
    });

    // Without warn_only a failure is an error carrying the output.
    match local("exit 2") {
        Err(e) => twill::puts(&format!("caught: {e} (exit code {:?})", e.exit_code())),
        Ok(_) => unreachable!(),
    }
    Ok(())
}

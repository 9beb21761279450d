//! The real command, byte for byte as Fabric 1.x builds it (fabric1.md §1.3).

use twill::{
    cd, lcd, path, prefix, shell_env, with_settings, LocalOptions, PathBehavior, RunOptions,
    Settings,
};

fn fabric_scope(behavior: PathBehavior) -> Settings {
    cd("/srv/my app")
        .prefix("workon venv")
        .prefix("source x")
        .merge(path("/opt/bin", behavior))
        .merge(shell_env([("A", "1 $x")]))
}

#[track_caller]
fn check(scope: Settings, build: impl FnOnce() -> String, expected: &str) {
    let got = with_settings(scope, build);
    assert_eq!(got, expected);
}

#[test]
fn plain_run_and_sudo() {
    let cases: &[(&str, RunOptions, bool, &str)] = &[
        (
            "ls /var/www",
            RunOptions::new(),
            false,
            r#"/bin/bash -l -c "ls /var/www""#,
        ),
        (
            "echo \"$HOME\" `id`",
            RunOptions::new(),
            false,
            r#"/bin/bash -l -c "echo \"\$HOME\" \`id\`""#,
        ),
        (
            "whoami",
            RunOptions::new(),
            true,
            r#"sudo -S -p 'sudo password:'  /bin/bash -l -c "whoami""#,
        ),
        (
            "whoami",
            RunOptions::new().user("www-data"),
            true,
            r#"sudo -S -p 'sudo password:'  -u "www-data"  /bin/bash -l -c "whoami""#,
        ),
        (
            "whoami",
            RunOptions::new().user("1001").group("adm"),
            true,
            r##"sudo -S -p 'sudo password:'  -u "#1001" -g "adm"  /bin/bash -l -c "whoami""##,
        ),
        ("ls", RunOptions::new().shell(false), false, "ls"),
        (
            "ls",
            RunOptions::new().shell(false),
            true,
            "sudo -S -p 'sudo password:'  ls",
        ),
        (
            "echo \"$x\"",
            RunOptions::new().shell_escape(false),
            false,
            r#"/bin/bash -l -c "echo "$x"""#,
        ),
        (
            "whoami",
            RunOptions::new().group("1002"),
            true,
            r##"sudo -S -p 'sudo password:'  -g "#1002"  /bin/bash -l -c "whoami""##,
        ),
    ];
    for (cmd, opts, sudo, expected) in cases {
        let got = if *sudo {
            opts.real_sudo_command(cmd)
        } else {
            opts.real_command(cmd)
        };
        assert_eq!(&got, expected, "command {cmd:?} sudo={sudo} {opts:?}");
    }
}

#[test]
fn full_scope_run_sudo_and_path_behaviours() {
    // Fabric writes `A=\"1 \\$x\"` here, which makes the login shell expand
    // `$x` before the inner shell sees it; twill escapes that backslash
    // too, so the exported value is exactly `1 $x`.
    let exports = r#"export PATH=\"\$PATH:\"/opt/bin\"\" A=\"1 \\\$x\""#;
    let tail = r#"cd /srv/my\ app >/dev/null && workon venv && source x && ./manage.py migrate""#;
    check(
        fabric_scope(PathBehavior::Append),
        || RunOptions::new().real_command("./manage.py migrate"),
        &format!(r#"/bin/bash -l -c "{exports} && {tail}"#),
    );
    check(
        fabric_scope(PathBehavior::Append),
        || {
            RunOptions::new()
                .user("app")
                .real_sudo_command("./manage.py migrate")
        },
        &format!(r#"sudo -S -p 'sudo password:'  -u "app"  /bin/bash -l -c "{exports} && {tail}"#),
    );
    check(
        fabric_scope(PathBehavior::Prepend),
        || RunOptions::new().real_command("./manage.py migrate"),
        &format!(r#"/bin/bash -l -c "export PATH=\"\"/opt/bin\":\$PATH\" A=\"1 \\\$x\" && {tail}"#),
    );
    check(
        fabric_scope(PathBehavior::Replace),
        || RunOptions::new().real_command("./manage.py migrate"),
        &format!(r#"/bin/bash -l -c "export PATH=\"\"/opt/bin\"\" A=\"1 \\\$x\" && {tail}"#),
    );
}

#[test]
fn local_composition_order() {
    let scope = lcd("/build")
        .prefix("workon venv")
        .prefix("source x")
        .merge(path("/opt/bin", PathBehavior::Append))
        .merge(shell_env([("A", "1 $x")]));
    check(
        scope,
        || LocalOptions::new().real_command("make"),
        r#"cd /build >/dev/null && workon venv && source x && export PATH="$PATH:"/opt/bin"" A="1 \$x" && make"#,
    );
}

#[test]
fn cd_nesting_rules() {
    check(
        cd("/x").cd("a"),
        || RunOptions::new().shell(false).real_command("pwd"),
        "cd /x/a >/dev/null && pwd",
    );
    check(
        cd("/x").cd("/y"),
        || RunOptions::new().shell(false).real_command("pwd"),
        "cd /y >/dev/null && pwd",
    );
    check(
        cd("/x").cd("~/y"),
        || RunOptions::new().shell(false).real_command("pwd"),
        "cd ~/y >/dev/null && pwd",
    );
    check(
        cd("rel"),
        || RunOptions::new().shell(false).real_command("pwd"),
        "cd rel >/dev/null && pwd",
    );
    // cd does not touch local commands, lcd does not touch remote ones.
    check(cd("/x"), || LocalOptions::new().real_command("pwd"), "pwd");
    check(
        lcd("/x"),
        || RunOptions::new().shell(false).real_command("pwd"),
        "pwd",
    );
}

#[test]
fn settings_that_change_the_wrapper() {
    let s = Settings::new().shell("/bin/sh -c");
    check(
        s,
        || RunOptions::new().real_command("ls"),
        r#"/bin/sh -c "ls""#,
    );
    check(
        Settings::new().use_shell(false),
        || RunOptions::new().real_sudo_command("ls"),
        "sudo -S -p 'sudo password:'  ls",
    );
    check(
        Settings::new().shell_escape(false),
        || RunOptions::new().real_command("echo $x"),
        r#"/bin/bash -l -c "echo $x""#,
    );
    check(
        Settings::new().sudo_prompt("pw?"),
        || RunOptions::new().real_sudo_command("id"),
        r#"sudo -S -p 'pw?'  /bin/bash -l -c "id""#,
    );
    check(
        Settings::new().sudo_user("deploy"),
        || RunOptions::new().real_sudo_command("id"),
        r#"sudo -S -p 'sudo password:'  -u "deploy"  /bin/bash -l -c "id""#,
    );
    // An explicit user beats the sudo_user setting.
    check(
        Settings::new().sudo_user("deploy"),
        || RunOptions::new().user("root").real_sudo_command("id"),
        r#"sudo -S -p 'sudo password:'  -u "root"  /bin/bash -l -c "id""#,
    );
    check(
        Settings::new().sudo_prefix("sudo -H -S -p '%(sudo_prompt)s' 100%% "),
        || RunOptions::new().real_sudo_command("id"),
        r#"sudo -H -S -p 'sudo password:' 100%  /bin/bash -l -c "id""#,
    );
}

#[test]
fn prefix_and_shell_env_scoping() {
    // prefix chains across nested scopes; shell_env replaces an outer one.
    let got = with_settings(prefix("a").merge(shell_env([("X", "1")])), || {
        with_settings(prefix("b").merge(shell_env([("Y", "2")])), || {
            LocalOptions::new().real_command("cmd")
        })
    });
    assert_eq!(got, r#"a && b && export Y="2" && cmd"#);
    // PATH given through shell_env is not escaped and takes path()'s place.
    let got = with_settings(
        path("/p", PathBehavior::Append).merge(shell_env([("Z", "$z"), ("PATH", "$PATH:/q")])),
        || LocalOptions::new().real_command("cmd"),
    );
    assert_eq!(got, r#"export PATH="$PATH:/q" Z="\$z" && cmd"#);
}

#[test]
fn local_shell_and_sudo_wrapping() {
    check(
        Settings::new(),
        || {
            LocalOptions::new()
                .use_shell(true)
                .real_command(r#"echo "hi $USER""#)
        },
        r#"/bin/bash -l -c "echo \"hi \$USER\"""#,
    );
    check(
        lcd("/tmp"),
        || LocalOptions::new().use_sudo(true).real_command("id"),
        r#"sudo -n /bin/bash -l -c "cd /tmp >/dev/null && id""#,
    );
}

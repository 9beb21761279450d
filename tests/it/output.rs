//! What twill prints, checked from a child process.

use twill::{local, local_capture, local_with, with_settings, LocalOptions, Settings};

use crate::support::{in_child, text};

#[test]
fn running_lines_and_pass_through_output() {
    let out = in_child("output::running_lines_and_pass_through_output", || {
        local("echo through-the-terminal").unwrap();
        local_capture("echo captured-not-shown").unwrap();
    });
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("[localhost] local: echo through-the-terminal\nthrough-the-terminal\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[localhost] local: echo captured-not-shown\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("captured-not-shown\ncaptured"), "{stdout}");
}

#[test]
fn hidden_groups_print_nothing() {
    let out = in_child("output::hidden_groups_print_nothing", || {
        with_settings(twill::hide("running"), || {
            local("echo only-output").unwrap()
        });
        with_settings(twill::hide("output"), || {
            local("echo hidden-output; echo hidden-err >&2").unwrap()
        });
        with_settings(twill::quiet(), || local("echo quiet; exit 1").unwrap());
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("only-output\n") && !stdout.contains("local: echo only-output"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[localhost] local: echo hidden-output"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hidden-output\n") && !stderr.contains("hidden-err"),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains("quiet") && !stderr.contains("Warning"),
        "quiet hides the warning too: {stdout}{stderr}"
    );
}

#[test]
fn debug_shows_the_real_command() {
    let out = in_child("output::debug_shows_the_real_command", || {
        with_settings(twill::show("debug").merge(twill::lcd("/tmp")), || {
            local("true").unwrap()
        });
    });
    assert!(
        text(&out.stdout).contains("[localhost] local: cd /tmp >/dev/null && true\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn warnings_and_fatal_errors_in_fabrics_format() {
    let out = in_child(
        "output::warnings_and_fatal_errors_in_fabrics_format",
        || {
            local_with("exit 2", &LocalOptions::new().warn_only(true)).unwrap();
            twill::warn("custom warning");
            let err = local_with(
                "echo hidden-reason; exit 7",
                &LocalOptions::new().capture(true),
            )
            .unwrap_err();
            err.report();
            twill::abort("giving up").report();
        },
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "\nWarning: local() encountered an error (return code 2) while executing 'exit 2'\n\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("\nWarning: custom warning\n\n"), "{stderr}");
    assert!(
        stderr.contains("\nFatal error: local() encountered an error (return code 7) while executing 'echo hidden-reason; exit 7'\n\nAborting.\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\nFatal error: giving up\n\nAborting.\n"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "no colours when stderr is not a terminal"
    );
}

#[test]
fn abort_shows_hidden_output() {
    let out = in_child("output::abort_shows_hidden_output", || {
        let err = with_settings(twill::hide("stdout"), || {
            local_with(
                "echo the-reason; exit 1",
                &LocalOptions::new().capture(true),
            )
        })
        .unwrap_err();
        with_settings(twill::hide("stdout"), || err.report());
    });
    let stderr = text(&out.stderr);
    // Fabric's frame: `=` around the title to the terminal's width (80
    // without a terminal), a blank line, the output, a blank line, and a
    // full line of `=`.
    let side = "=".repeat((80 - "Standard output".len() - 2) / 2);
    let framed = format!(
        "\n\n{side} Standard output {side}\n\nthe-reason\n\n{}\n",
        "=".repeat(80)
    );
    assert!(stderr.contains(&framed), "{stderr}");
    assert!(
        stderr.starts_with("\nFatal error: local() encountered an error (return code 1) while executing 'echo the-reason; exit 1'"),
        "{stderr}"
    );
}

#[test]
fn colours_when_forced() {
    let out = in_child("output::colours_when_forced", || {
        with_settings(Settings::new().colorize_errors(true), || {
            twill::warn("tinted")
        });
    });
    assert!(
        text(&out.stderr).contains("\x1b[35mWarning: tinted\x1b[0m"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn puts_prefixes_the_host() {
    let out = in_child("output::puts_prefixes_the_host", || {
        twill::puts("no host");
        with_settings(Settings::new().host_string("web1"), || {
            twill::puts("with host")
        });
        with_settings(
            Settings::new().host_string("web1").output_prefix(false),
            || twill::puts("bare"),
        );
        with_settings(twill::hide("user"), || twill::puts("hidden"));
        twill::fastprint("fast");
    });
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("no host\n[web1] with host\nbare\nfast"),
        "{stdout}"
    );
    assert!(!stdout.contains("hidden"));
}

#[test]
fn colour_helpers() {
    assert_eq!(twill::colors::yellow("y", false), "\x1b[33my\x1b[0m");
    assert_eq!(twill::colors::blue("b", true), "\x1b[1;34mb\x1b[0m");
}

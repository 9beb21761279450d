//! prompt and confirm.

use twill::{confirm_from, with_settings, ErrorKind, Prompt, Settings};

fn ask(p: &Prompt, input: &str) -> (twill::Result<String>, String) {
    let mut input = input.as_bytes();
    let mut shown = Vec::new();
    let r = p.ask_from(&mut input, &mut shown);
    (r, String::from_utf8(shown).unwrap())
}

#[test]
fn default_on_empty_input_and_question_format() {
    let (r, shown) = ask(&Prompt::new("  Branch?  ").default("main"), "\n");
    assert_eq!(r.unwrap(), "main");
    assert_eq!(shown, "Branch? [main] ");
    let (r, shown) = ask(&Prompt::new("Name?"), "web\n");
    assert_eq!(r.unwrap(), "web");
    assert_eq!(shown, "Name? ");
}

#[test]
fn regex_validation_asks_again() {
    let p = Prompt::new("Port?").validate_regex("[0-9]+").unwrap();
    let (r, shown) = ask(&p, "http\n8080\n");
    assert_eq!(r.unwrap(), "8080");
    assert_eq!(
        shown,
        "Port? Regular expression validation failed: 'http' does not match '^[0-9]+$'\n\nPort? "
    );
    assert_eq!(
        Prompt::new("x").validate_regex("(").unwrap_err().kind(),
        ErrorKind::Settings
    );
}

#[test]
fn function_validation_can_transform() {
    let p = Prompt::new("Workers?").validate(|v| match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok((n * 2).to_string()),
        _ => Err(format!("{v} is not a positive number")),
    });
    let (r, shown) = ask(&p, "0\n3\n");
    assert_eq!(r.unwrap(), "6");
    assert!(
        shown.contains(
            "Validation failed for the following reason:\n    0 is not a positive number\n"
        ),
        "{shown}"
    );
}

#[test]
fn closed_input_is_an_error_not_a_loop() {
    let (r, _) = ask(
        &Prompt::new("Anything?").validate_regex("x").unwrap(),
        "y\n",
    );
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Prompt);
    assert!(
        err.to_string().contains("standard input is closed"),
        "{err}"
    );
}

#[test]
fn abort_on_prompts_and_parallel_refuse_to_ask() {
    with_settings(
        Settings::new().abort_on_prompts(true).host_string("web1"),
        || {
            let (r, shown) = ask(&Prompt::new("Go?"), "y\n");
            let err = r.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Prompt);
            assert_eq!(
                err.message(),
                "Needed to prompt for 'Go?' (host: web1), but abort-on-prompts was set to True"
            );
            assert_eq!(shown, "", "nothing is asked");
        },
    );
    with_settings(Settings::new().parallel(true), || {
        let (r, _) = ask(&Prompt::new("Go?"), "y\n");
        assert!(r
            .unwrap_err()
            .message()
            .ends_with("but input would be ambiguous in parallel mode"));
    });
}

#[test]
fn confirm_answers() {
    let cases = [
        ("\n", true, true),
        ("\n", false, false),
        ("Y\n", false, true),
        ("no\n", true, false),
        ("what\nn\n", true, false),
    ];
    for (input, default, expected) in cases {
        let mut i = input.as_bytes();
        let mut out = Vec::new();
        assert_eq!(
            confirm_from("Sure?", default, &mut i, &mut out).unwrap(),
            expected,
            "{input:?} default {default}"
        );
        let shown = String::from_utf8(out).unwrap();
        assert!(shown.starts_with(if default {
            "Sure? [Y/n] "
        } else {
            "Sure? [y/N] "
        }));
    }
}

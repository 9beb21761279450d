//! prompt, confirm and choice.

use twill::{choice, choice_from, confirm_from, puts, with_settings, ErrorKind, Prompt, Settings};

use crate::support::fed;

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

fn pick(options: &[&str], default: Option<usize>, input: &str) -> (twill::Result<usize>, String) {
    let mut input = input.as_bytes();
    let mut shown = Vec::new();
    let r = choice_from("Deploy to?", options, default, &mut input, &mut shown);
    (r, String::from_utf8(shown).unwrap())
}

const ENVS: [&str; 3] = ["staging", "production", "2"];

#[test]
fn a_hidden_answer_is_not_shown_by_a_failed_validation() {
    let p = Prompt::new("PIN?")
        .hidden(true)
        .default("0000")
        .validate_regex("[0-9]{4}")
        .unwrap();
    let (r, shown) = ask(&p, "12ab\n\n");
    assert_eq!(r.unwrap(), "0000");
    assert_eq!(
        shown,
        "PIN? [hidden default] Regular expression validation failed: \
         '<hidden>' does not match '^[0-9]{4}$'\n\nPIN? [hidden default] "
    );
    assert!(!format!("{p:?}").contains("0000"), "{p:?}");
}

#[test]
fn choice_lists_the_options_and_takes_a_number_or_a_text() {
    let (r, shown) = pick(&ENVS, None, "2\n");
    assert_eq!(r.unwrap(), 1);
    assert_eq!(
        shown,
        "Deploy to?\n  1. staging\n  2. production\n  3. 2\nChoice (1-3) "
    );
    assert_eq!(pick(&ENVS, None, "staging\n").0.unwrap(), 0);
    // A number is a number first; an option's text is matched exactly.
    assert_eq!(pick(&ENVS, None, "3\n").0.unwrap(), 2);
    assert_eq!(pick(&ENVS, None, " 1 \n").0.unwrap(), 0);
}

#[test]
fn choice_takes_the_default_on_enter() {
    let (r, shown) = pick(&ENVS, Some(1), "\n");
    assert_eq!(r.unwrap(), 1);
    assert_eq!(
        shown,
        "Deploy to?\n  1. staging\n  2. production (default)\n  3. 2\nChoice (1-3) [2] "
    );
}

#[test]
fn choice_asks_again_after_an_invalid_answer() {
    let (r, shown) = pick(&ENVS, None, "4\nProduction\n\nproduction\n");
    assert_eq!(r.unwrap(), 1);
    let how = "type a number from 1 to 3, or an option's text.";
    assert!(
        shown.ends_with(&format!(
            "Choice (1-3) '4' is not one of the choices: {how}\n\n\
             Choice (1-3) 'Production' is not one of the choices: {how}\n\n\
             Choice (1-3) Nothing was chosen: {how}\n\nChoice (1-3) "
        )),
        "{shown}"
    );
    let (r, _) = pick(&ENVS, None, "9\n");
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Prompt);
    assert!(err.message().contains("'Deploy to?'"), "{err}");
    assert!(err.message().ends_with("standard input is closed"), "{err}");
}

#[test]
fn choice_refuses_where_nobody_may_be_asked_and_bad_arguments() {
    with_settings(
        Settings::new().abort_on_prompts(true).host_string("web1"),
        || {
            let (r, shown) = pick(&ENVS, Some(0), "1\n");
            let err = r.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Prompt);
            assert_eq!(
                err.message(),
                "Needed to prompt for 'Deploy to?' (host: web1), but abort-on-prompts was set to True"
            );
            assert_eq!(shown, "", "nothing is asked");
        },
    );
    with_settings(Settings::new().parallel(true), || {
        let (r, _) = pick(&ENVS, None, "1\n");
        assert!(r
            .unwrap_err()
            .message()
            .ends_with("but input would be ambiguous in parallel mode"));
    });
    let none: [&str; 0] = [];
    assert_eq!(
        pick(&none, None, "1\n").0.unwrap_err().kind(),
        ErrorKind::Settings
    );
    assert_eq!(
        pick(&ENVS, Some(3), "1\n").0.unwrap_err().kind(),
        ErrorKind::Settings
    );
}

#[test]
fn non_interactive_takes_the_defaults_and_says_so() {
    with_settings(Settings::new().non_interactive(true), || {
        let (r, shown) = ask(&Prompt::new("Branch?").default("main"), "other\n");
        assert_eq!(r.unwrap(), "main");
        assert_eq!(shown, "Branch? [main] main (non-interactive)\n");

        let (r, shown) = ask(
            &Prompt::new("Token?").default("s3cret").hidden(true),
            "other\n",
        );
        assert_eq!(r.unwrap(), "s3cret");
        assert_eq!(shown, "Token? [hidden default] (non-interactive)\n");

        for (default, line) in [
            (true, "Continue? [Y/n] y (non-interactive)\n"),
            (false, "Continue? [y/N] n (non-interactive)\n"),
        ] {
            let mut input = "other\n".as_bytes();
            let mut out = Vec::new();
            assert_eq!(
                confirm_from("Continue?", default, &mut input, &mut out).unwrap(),
                default
            );
            assert_eq!(String::from_utf8(out).unwrap(), line);
        }

        let (r, shown) = pick(&ENVS, Some(1), "1\n");
        assert_eq!(r.unwrap(), 1);
        assert!(
            shown.ends_with(
                "  2. production (default)\n  3. 2\nChoice (1-3) [2] 2 (non-interactive)\n"
            ),
            "{shown}"
        );
    });
    // Even where nobody may be asked: nobody is.
    with_settings(
        Settings::new().non_interactive(true).abort_on_prompts(true),
        || {
            assert_eq!(
                ask(&Prompt::new("Branch?").default("main"), "").0.unwrap(),
                "main"
            );
        },
    );
}

#[test]
fn non_interactive_without_a_default_is_an_error_naming_the_question() {
    with_settings(
        Settings::new().non_interactive(true).host_string("web1"),
        || {
            let (r, shown) = ask(&Prompt::new("Name?"), "web\n");
            let err = r.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Prompt);
            assert_eq!(
                err.message(),
                "Needed to prompt for 'Name?' (host: web1), but non-interactive was set and the question has no default"
            );
            assert_eq!(shown, "");

            let (r, shown) = pick(&ENVS, None, "1\n");
            assert!(r.unwrap_err().message().starts_with(
                "Needed to prompt for 'Deploy to?' (host: web1), but non-interactive"
            ));
            assert_eq!(shown, "");

            // A default that fails validation is no answer either.
            let p = Prompt::new("Port?")
                .default("http")
                .validate_regex("[0-9]+")
                .unwrap();
            let err = ask(&p, "").0.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Prompt);
            assert!(
                err.message()
                    .starts_with("The default of 'Port?' is not valid"),
                "{err}"
            );
        },
    );
}

#[test]
fn choice_and_hidden_input_read_standard_input() {
    const NAME: &str = "prompt::choice_and_hidden_input_read_standard_input";
    let (code, shown) = fed(NAME, "nine\n2\n\nsecret words\n", || {
        let i = choice("Deploy to?", &["staging", "production"], Some(0)).unwrap();
        puts(&format!("chose {i}"));
        let i = choice("Again?", &["staging", "production"], Some(0)).unwrap();
        puts(&format!("chose {i}"));
        // Standard input is a pipe: the answer is read as a line.
        let secret = Prompt::new("Secret?").hidden(true).ask().unwrap();
        puts(&format!("secret of {} characters", secret.len()));
    });
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("'nine' is not one of the choices"),
        "{shown}"
    );
    assert!(shown.contains("chose 1\n"), "{shown}");
    assert!(shown.contains("chose 0\n"), "{shown}");
    assert!(
        shown.contains("Secret? secret of 12 characters\n"),
        "{shown}"
    );
}

#[test]
fn non_interactive_children_take_defaults_from_a_closed_input() {
    const NAME: &str = "prompt::non_interactive_children_take_defaults_from_a_closed_input";
    let (code, shown) = fed(NAME, "", || {
        with_settings(Settings::new().non_interactive(true), || {
            assert!(twill::confirm("Continue?", true).unwrap());
            let i = choice("Deploy to?", &["staging", "production"], Some(1)).unwrap();
            let token = Prompt::new("Token?")
                .hidden(true)
                .default("t0k")
                .ask()
                .unwrap();
            puts(&format!("chose {i}, token {}", token.len()));
            let err = twill::prompt("Name?").unwrap_err();
            puts(&format!("error: {}", err.message()));
        });
    });
    assert_eq!(code, 0, "{shown}");
    for line in [
        "Continue? [Y/n] y (non-interactive)\n",
        "Choice (1-2) [2] 2 (non-interactive)\n",
        "Token? [hidden default] (non-interactive)\n",
        "chose 1, token 3\n",
        "error: Needed to prompt for 'Name?' (host: None), but non-interactive was set and the question has no default\n",
    ] {
        assert!(shown.contains(line), "{line:?} not in:\n{shown}");
    }
}

//! `prompt`, `confirm` and `choice`: ask the person at the terminal.

use std::fmt;
use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::state::env;

type Validator = Arc<dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync>;

/// Shows a question (on the writer, or at the terminal) and reads one
/// answer; `None` when the input ended.
type ReadAnswer<'a> = dyn FnMut(&mut dyn Write, &str) -> std::io::Result<Option<String>> + 'a;

/// What a non-interactive question shows after its answer.
const NON_INTERACTIVE: &str = "(non-interactive)";

/// A question for the user, with an optional default and validation
/// (Fabric's `prompt(text, default=..., validate=...)`).
///
/// The text is printed stripped, followed by ` [default] ` or a space.
/// Empty input takes the default. A failed validation prints why and asks
/// again. Where nobody can answer (`abort_on_prompts`, the `parallel`
/// setting, or a parallel worker), asking is an error of kind
/// [`ErrorKind::Prompt`], as it is when standard input ends.
///
/// With the `non_interactive` setting (`--non-interactive`), nobody is
/// asked: the default is taken and the question printed with it, as
/// `Branch? [main] main (non-interactive)`; a question without a default
/// (or whose default fails validation) is an error of kind
/// [`ErrorKind::Prompt`] naming it.
///
/// [`hidden`](Prompt::hidden) asks for a secret without echoing it.
///
/// ```
/// use twill::Prompt;
///
/// let mut input = "abc\n42\n".as_bytes();
/// let mut shown = Vec::new();
/// let port = Prompt::new("Port?").default("8000").validate_regex(r"\d+")?
///     .ask_from(&mut input, &mut shown)?;
/// assert_eq!(port, "42");
/// let shown = String::from_utf8(shown).unwrap();
/// assert!(shown.starts_with("Port? [8000] Regular expression validation failed: 'abc' does not match '^\\d+$'"));
/// # Ok::<(), twill::Error>(())
/// ```
#[derive(Clone)]
pub struct Prompt {
    text: String,
    default: String,
    validate: Option<Validator>,
    hidden: bool,
    /// How errors name the question, when not by its text.
    named: Option<String>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = if self.hidden && !self.default.is_empty() {
            "<hidden>"
        } else {
            &self.default
        };
        f.debug_struct("Prompt")
            .field("text", &self.text)
            .field("default", &default)
            .field("validate", &self.validate.is_some())
            .field("hidden", &self.hidden)
            .finish()
    }
}

/// How a question is answered: by asking, or by its default.
enum Way {
    Ask,
    TakeDefault,
}

/// Whether the question `what` (quoted by the caller) is asked or takes its
/// default: with `non_interactive` the default is taken and a question
/// without one is an error; otherwise Fabric's rule of
/// [`refuse_if_unanswerable`].
fn way(what: &str, has_default: bool) -> Result<Way> {
    if env().non_interactive() {
        return if has_default {
            Ok(Way::TakeDefault)
        } else {
            Err(refused(
                what,
                "non-interactive was set and the question has no default",
            ))
        };
    }
    refuse_if_unanswerable(what)?;
    Ok(Way::Ask)
}

fn io_err(e: std::io::Error) -> Error {
    Error::io("could not ask a question on the terminal", e)
}

impl Prompt {
    /// A prompt showing `text`.
    pub fn new(text: impl Into<String>) -> Prompt {
        Prompt {
            text: text.into(),
            default: String::new(),
            validate: None,
            hidden: false,
            named: None,
        }
    }

    /// The answer taken when the input is empty.
    pub fn default(mut self, default: impl Into<String>) -> Prompt {
        self.default = default.into();
        self
    }

    /// Ask without echoing what is typed, for a secret: at a terminal,
    /// [`ask`](Prompt::ask) reads the answer as a login or sudo password is
    /// read (echo off, only the line's end shown). A default is shown as
    /// `[hidden default]`, never its value, and a failed validation's
    /// message shows `<hidden>` in place of the answer. Input that is not a terminal
    /// (a pipe, or [`ask_from`](Prompt::ask_from)'s reader) is read as a
    /// line, there being no echo to hide.
    ///
    /// ```no_run
    /// let token = twill::Prompt::new("API token?").hidden(true).ask()?;
    /// twill::puts(&format!("{} characters", token.len()));
    /// # Ok::<(), twill::Error>(())
    /// ```
    pub fn hidden(mut self, hidden: bool) -> Prompt {
        self.hidden = hidden;
        self
    }

    /// Accept only answers that the regular expression matches whole
    /// (`^` and `$` are added as Fabric does). A bad expression is an error
    /// of kind [`ErrorKind::Settings`].
    pub fn validate_regex(mut self, pattern: &str) -> Result<Prompt> {
        let mut anchored = pattern.to_string();
        if !anchored.starts_with('^') {
            anchored.insert(0, '^');
        }
        if !anchored.ends_with('$') {
            anchored.push('$');
        }
        let re = regex::Regex::new(&anchored).map_err(|e| {
            Error::new(
                ErrorKind::Settings,
                format!("invalid validation pattern '{pattern}': {e}"),
            )
        })?;
        self.validate = Some(Arc::new(move |value: &str| {
            if re.is_match(value) {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "Regular expression validation failed: '{value}' does not match '{}'",
                    re.as_str()
                ))
            }
        }));
        Ok(self)
    }

    /// Check (and possibly transform) the answer with `f`; an `Err` message
    /// is shown and the question asked again.
    pub fn validate(
        mut self,
        f: impl Fn(&str) -> std::result::Result<String, String> + Send + Sync + 'static,
    ) -> Prompt {
        let f: Validator = Arc::new(move |value: &str| {
            f(value)
                .map_err(|why| format!("Validation failed for the following reason:\n    {why}"))
        });
        self.validate = Some(f);
        self
    }

    /// Asks on the terminal (standard input and output).
    pub fn ask(&self) -> Result<String> {
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        let mut out = crate::output::Terminal;
        if self.hidden && stdin.is_terminal() {
            return self.ask_with(&mut out, &mut |_, question| Ok(read_hidden(question)));
        }
        let mut input = stdin.lock();
        self.ask_from(&mut input, &mut out)
    }

    /// Asks reading answers from `input` and writing the question to `out`.
    pub fn ask_from(&self, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<String> {
        self.ask_with(out, &mut |out, question| {
            out.write_all(question.as_bytes())?;
            out.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
        })
    }

    /// How errors name the question: `'text'`, or what the caller chose.
    fn name(&self) -> String {
        self.named
            .clone()
            .unwrap_or_else(|| format!("'{}'", self.text.trim()))
    }

    /// The question shown: the text stripped, then ` [default] ` or a space.
    fn question(&self) -> String {
        if self.default.is_empty() {
            format!("{} ", self.text.trim())
        } else if self.hidden {
            format!("{} [hidden default] ", self.text.trim())
        } else {
            format!("{} [{}] ", self.text.trim(), self.default.trim())
        }
    }

    /// A validation's message with a hidden answer's text replaced by
    /// `<hidden>`: what is typed for a secret is never shown.
    fn masked(&self, why: String, answer: &str) -> String {
        if self.hidden && !answer.is_empty() {
            why.replace(answer, "<hidden>")
        } else {
            why
        }
    }

    /// The loop of a question: `read` shows the question and reads one
    /// answer (`None`: the input ended); the default and the validation
    /// apply, a failed validation being shown on `out`.
    fn ask_with(&self, out: &mut dyn Write, read: &mut ReadAnswer<'_>) -> Result<String> {
        let question = self.question();
        if let Way::TakeDefault = way(&self.name(), !self.default.is_empty())? {
            let taken = if self.hidden { "" } else { self.default.trim() };
            let shown = format!("{question}{taken}");
            writeln!(out, "{} {NON_INTERACTIVE}", shown.trim_end()).map_err(io_err)?;
            return match &self.validate {
                None => Ok(self.default.clone()),
                Some(v) => v(&self.default).map_err(|why| {
                    let why = self.masked(why, &self.default);
                    Error::new(
                        ErrorKind::Prompt,
                        format!(
                            "The default of {} is not valid, and non-interactive was set: {why}",
                            self.name()
                        ),
                    )
                }),
            };
        }
        loop {
            let Some(answer) = read(out, &question).map_err(io_err)? else {
                return Err(Error::new(
                    ErrorKind::Prompt,
                    format!(
                        "Needed to prompt for {} (host: {}), but standard input is closed",
                        self.name(),
                        env().host_string().unwrap_or_else(|| "None".into())
                    ),
                ));
            };
            let answer = if answer.is_empty() {
                self.default.clone()
            } else {
                answer
            };
            match &self.validate {
                None => return Ok(answer),
                Some(v) => match v(&answer) {
                    Ok(value) => return Ok(value),
                    Err(why) => {
                        let why = self.masked(why, &answer);
                        writeln!(out, "{why}\n").map_err(io_err)?;
                    }
                },
            }
        }
    }
}

/// Fabric's prompt rule: no prompt when `abort_on_prompts` is set, or in
/// parallel mode (the `parallel` setting, as Fabric's `env.parallel`), and
/// none in a parallel worker, whose standard input is /dev/null, whatever
/// the settings say.
pub(crate) fn refuse_if_unanswerable(what: &str) -> Result<()> {
    match refusal() {
        None => Ok(()),
        Some(reason) => Err(refused(what, reason)),
    }
}

/// Why nobody can be asked anything here, in Fabric's words, if nobody
/// can: `abort_on_prompts`, the `parallel` setting, or a parallel worker.
pub(crate) fn refusal() -> Option<&'static str> {
    let env = env();
    if env.abort_on_prompts() {
        Some("abort-on-prompts was set to True")
    } else if env.parallel() || interrupt::in_worker() {
        Some("input would be ambiguous in parallel mode")
    } else {
        None
    }
}

/// Fabric's error for a question nobody may answer: `what` (quoted by the
/// caller) and the `reason` from [`refusal`].
pub(crate) fn refused(what: &str, reason: &str) -> Error {
    let env = env();
    let host = env.host_string().unwrap_or_else(|| "None".into());
    Error::new(
        ErrorKind::Prompt,
        format!("Needed to prompt for {what} (host: {host}), but {reason}"),
    )
}

/// Asks `text` on the terminal and returns the answer (Fabric's
/// `prompt(text)`); see [`Prompt`] for defaults and validation.
pub fn prompt(text: &str) -> Result<String> {
    Prompt::new(text).ask()
}

/// Asks a yes/no question (Fabric's `confirm(question, default=True)`).
///
/// Shows `question [Y/n] ` (or `[y/N] `), accepts y, yes, n, no in any case,
/// takes the default on empty input, and asks again otherwise. With the
/// `non_interactive` setting the default is taken without asking, shown
/// as `question [Y/n] y (non-interactive)`.
///
/// ```no_run
/// if twill::confirm("Restart the service?", true)? {
///     twill::run("systemctl restart app")?;
/// }
/// # Ok::<(), twill::Error>(())
/// ```
pub fn confirm(question: &str, default: bool) -> Result<bool> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    confirm_from(question, default, &mut input, &mut crate::output::Terminal)
}

/// [`confirm`] reading from `input` and writing to `out`.
///
/// ```
/// let mut input = "maybe\nYES\n".as_bytes();
/// let mut shown = Vec::new();
/// assert!(twill::confirm_from("Deploy?", false, &mut input, &mut shown)?);
/// assert_eq!(String::from_utf8(shown).unwrap(),
///     "Deploy? [y/N] I didn't understand you. Please specify '(y)es' or '(n)o'.\nDeploy? [y/N] ");
/// # Ok::<(), twill::Error>(())
/// ```
pub fn confirm_from(
    question: &str,
    default: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<bool> {
    let suffix = if default { "[Y/n]" } else { "[y/N]" };
    let p = Prompt::new(format!("{question} {suffix}"));
    if let Way::TakeDefault = way(&p.name(), true)? {
        let taken = if default { "y" } else { "n" };
        writeln!(out, "{} {taken} {NON_INTERACTIVE}", p.text.trim()).map_err(io_err)?;
        return Ok(default);
    }
    loop {
        let answer = p.ask_from(input, out)?.to_ascii_lowercase();
        match answer.as_str() {
            "" => return Ok(default),
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => {
                writeln!(
                    out,
                    "I didn't understand you. Please specify '(y)es' or '(n)o'."
                )
                .map_err(io_err)?;
            }
        }
    }
}

/// Asks the user to pick one of `options` and returns its index (from 0);
/// `default`, an index too, is taken on empty input.
///
/// The question is printed on a line of its own, then the options
/// numbered from 1 (the default marked `(default)`), then
/// `Choice (1-N) [d] `. The answer is an option's number, or its text typed
/// exactly (a number is taken as a number first); anything else is
/// refused with a line saying so, and asked again. The rules of
/// [`Prompt`] apply: where nobody may be asked (`abort_on_prompts`,
/// parallel mode) or standard input ends, it is an error of kind
/// [`ErrorKind::Prompt`] naming the question, and with `non_interactive`
/// the default is taken (an error without one). No options, or a default
/// out of range, is an error of kind [`ErrorKind::Settings`].
///
/// ```no_run
/// let envs = ["staging", "production"];
/// let i = twill::choice("Deploy to?", &envs, Some(0))?;
/// twill::puts(&format!("deploying to {}", envs[i]));
/// # Ok::<(), twill::Error>(())
/// ```
pub fn choice<S: AsRef<str>>(
    question: &str,
    options: &[S],
    default: Option<usize>,
) -> Result<usize> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    choice_from(
        question,
        options,
        default,
        &mut input,
        &mut crate::output::Terminal,
    )
}

/// [`choice`] reading from `input` and writing to `out`.
///
/// ```
/// let mut input = "7\nproduction\n".as_bytes();
/// let mut shown = Vec::new();
/// let i = twill::choice_from("Deploy to?", &["staging", "production"], Some(0),
///     &mut input, &mut shown)?;
/// assert_eq!(i, 1);
/// assert_eq!(String::from_utf8(shown).unwrap(), "\
/// Deploy to?
///   1. staging (default)
///   2. production
/// Choice (1-2) [1] '7' is not one of the choices: type a number from 1 to 2, or an option's text.
///
/// Choice (1-2) [1] ");
/// # Ok::<(), twill::Error>(())
/// ```
pub fn choice_from<S: AsRef<str>>(
    question: &str,
    options: &[S],
    default: Option<usize>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<usize> {
    let named = format!("'{}'", question.trim());
    if options.is_empty() {
        return Err(Error::new(
            ErrorKind::Settings,
            format!("the choice {named} has no options"),
        ));
    }
    let n = options.len();
    if let Some(d) = default.filter(|d| *d >= n) {
        return Err(Error::new(
            ErrorKind::Settings,
            format!("the default {d} of the choice {named} is not an index of its {n} options"),
        ));
    }
    way(&named, default.is_some())?;
    let mut listed = format!("{}\n", question.trim());
    for (i, option) in options.iter().enumerate() {
        let mark = if Some(i) == default { " (default)" } else { "" };
        listed.push_str(&format!("  {}. {}{mark}\n", i + 1, option.as_ref()));
    }
    out.write_all(listed.as_bytes()).map_err(io_err)?;
    let texts: Vec<String> = options.iter().map(|o| o.as_ref().to_string()).collect();
    let validate: Validator = Arc::new(move |answer: &str| {
        if let Ok(k) = answer.trim().parse::<usize>() {
            if (1..=texts.len()).contains(&k) {
                return Ok(k.to_string());
            }
        }
        if let Some(i) = texts.iter().position(|t| t == answer) {
            return Ok((i + 1).to_string());
        }
        let how = format!(
            "type a number from 1 to {}, or an option's text.",
            texts.len()
        );
        Err(if answer.is_empty() {
            format!("Nothing was chosen: {how}")
        } else {
            format!("'{answer}' is not one of the choices: {how}")
        })
    });
    let mut p = Prompt::new(format!("Choice (1-{n})"));
    p.default = default.map(|d| (d + 1).to_string()).unwrap_or_default();
    p.validate = Some(validate);
    p.named = Some(named);
    let number = p.ask_from(input, out)?;
    Ok(number
        .parse::<usize>()
        .expect("the validation gives a number")
        - 1)
}

/// Whether the person at the terminal can be asked (a password, a host
/// key): standard input is a terminal, and none of `abort_on_prompts`,
/// the `parallel` setting or a parallel worker forbids prompting (the
/// rule of [`refuse_if_unanswerable`]).
pub(crate) fn can_ask_at_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && refusal().is_none()
}

/// OpenSSH's question for a host key it does not know, asked at the
/// terminal: `question` is shown as is; `yes` (in any case) or the key's
/// `fingerprint` typed in full accepts it, `no` or an empty answer
/// refuses it, anything else asks again, as `ssh` does. A closed input
/// refuses.
pub(crate) fn ask_host_key(question: &str, fingerprint: &str) -> Result<bool> {
    refuse_if_unanswerable("a host key")?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    confirm_host_key_from(
        question,
        fingerprint,
        &mut input,
        &mut crate::output::Terminal,
    )
}

/// [`ask_host_key`] reading from `input` and writing to `out`.
pub(crate) fn confirm_host_key_from(
    question: &str,
    fingerprint: &str,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<bool> {
    let io_err = |e| Error::io("could not ask a question on the terminal", e);
    let mut shown = question;
    loop {
        out.write_all(shown.as_bytes()).map_err(io_err)?;
        out.flush().map_err(io_err)?;
        let mut line = String::new();
        if input.read_line(&mut line).map_err(io_err)? == 0 {
            return Ok(false);
        }
        let answer = line.trim_end_matches(['\n', '\r']);
        if answer.is_empty() || answer.eq_ignore_ascii_case("no") {
            return Ok(false);
        }
        if answer.eq_ignore_ascii_case("yes") || answer == fingerprint {
            return Ok(true);
        }
        shown = "Please type 'yes', 'no' or the fingerprint: ";
    }
}

/// Asks for a password at the terminal without echoing it (Fabric's
/// `prompt_for_password`): `shown` is printed as is, and an empty answer
/// asks again. `Ok(None)` when the terminal gives no answer (closed).
pub(crate) fn ask_password(shown: &str) -> Result<Option<String>> {
    refuse_if_unanswerable("a connection or sudo password")?;
    loop {
        match read_hidden(shown) {
            Some(p) if p.is_empty() => {
                crate::output::emit(
                    crate::output::Pipe::Err,
                    "Sorry, you can't enter an empty password. Please try again.\n",
                );
            }
            other => return Ok(other),
        }
    }
}

/// Shows `shown` at the terminal and reads one line there with echo off
/// (a password, [`Prompt::hidden`]); `None` when the terminal gives no
/// answer (closed).
fn read_hidden(shown: &str) -> Option<String> {
    rpassword::prompt_password(shown).ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn answers(typed: &str) -> (bool, String) {
        let mut input = typed.as_bytes();
        let mut shown = Vec::new();
        let ok = confirm_host_key_from("Trust? ", "SHA256:abc", &mut input, &mut shown).unwrap();
        (ok, String::from_utf8(shown).unwrap())
    }

    #[test]
    fn a_host_key_is_accepted_as_openssh_accepts_it() {
        assert_eq!(answers("yes\n"), (true, "Trust? ".to_string()));
        assert!(answers("YES\n").0);
        assert!(answers("SHA256:abc\n").0);
        assert!(!answers("no\n").0);
        assert!(!answers("\n").0);
        assert!(!answers("").0);
        // A fingerprint is compared exactly; anything else asks again.
        assert_eq!(
            answers("sha256:ABC\nok\nyes\n"),
            (
                true,
                "Trust? Please type 'yes', 'no' or the fingerprint: \
                 Please type 'yes', 'no' or the fingerprint: "
                    .to_string()
            )
        );
    }
}

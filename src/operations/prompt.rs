//! `prompt` and `confirm`: ask the person at the terminal.

use std::fmt;
use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::state::env;

type Validator = Arc<dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync>;

/// A question for the user, with an optional default and validation
/// (Fabric's `prompt(text, default=..., validate=...)`).
///
/// The text is printed stripped, followed by ` [default] ` or a space.
/// Empty input takes the default. A failed validation prints why and asks
/// again. Where nobody can answer (`abort_on_prompts`, the `parallel`
/// setting, or a parallel worker), asking is an error of kind
/// [`ErrorKind::Prompt`], as it is when standard input ends.
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
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("text", &self.text)
            .field("default", &self.default)
            .field("validate", &self.validate.is_some())
            .finish()
    }
}

impl Prompt {
    /// A prompt showing `text`.
    pub fn new(text: impl Into<String>) -> Prompt {
        Prompt {
            text: text.into(),
            default: String::new(),
            validate: None,
        }
    }

    /// The answer taken when the input is empty.
    pub fn default(mut self, default: impl Into<String>) -> Prompt {
        self.default = default.into();
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
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut out = crate::output::Terminal;
        self.ask_from(&mut input, &mut out)
    }

    /// Asks reading answers from `input` and writing the question to `out`.
    pub fn ask_from(&self, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<String> {
        refuse_if_unanswerable(&format!("'{}'", self.text.trim()))?;
        let question = if self.default.is_empty() {
            format!("{} ", self.text.trim())
        } else {
            format!("{} [{}] ", self.text.trim(), self.default.trim())
        };
        loop {
            let io_err = |e| Error::io("could not ask a question on the terminal", e);
            out.write_all(question.as_bytes()).map_err(io_err)?;
            out.flush().map_err(io_err)?;
            let mut line = String::new();
            if input.read_line(&mut line).map_err(io_err)? == 0 {
                return Err(Error::new(
                    ErrorKind::Prompt,
                    format!(
                        "Needed to prompt for '{}' (host: {}), but standard input is closed",
                        self.text.trim(),
                        env().host_string().unwrap_or_else(|| "None".into())
                    ),
                ));
            }
            let answer = line.trim_end_matches(['\n', '\r']);
            let answer = if answer.is_empty() {
                self.default.clone()
            } else {
                answer.to_string()
            };
            match &self.validate {
                None => return Ok(answer),
                Some(v) => match v(&answer) {
                    Ok(value) => return Ok(value),
                    Err(why) => {
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
/// takes the default on empty input, and asks again otherwise.
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
                .map_err(|e| Error::io("could not ask a question on the terminal", e))?;
            }
        }
    }
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
        match rpassword::prompt_password(shown) {
            Ok(p) if p.is_empty() => {
                crate::output::emit(
                    crate::output::Pipe::Err,
                    "Sorry, you can't enter an empty password. Please try again.\n",
                );
            }
            Ok(p) => return Ok(Some(p)),
            Err(_) => return Ok(None),
        }
    }
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

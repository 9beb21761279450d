//! What a command returns.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// The result of [`local`](crate::local), [`run`](crate::run) and
/// [`sudo`](crate::sudo).
///
/// Like Fabric's string results it reads as its standard output wherever a
/// string is expected: it derefs to `str`, displays as stdout and compares
/// equal to strings. Output is stripped of leading and trailing whitespace,
/// as Fabric does.
///
/// ```
/// use twill::{local_capture};
///
/// let out = local_capture("echo '  hello world  '")?;
/// assert_eq!(out, "hello world");            // compares as a string
/// assert!(out.starts_with("hello"));         // str methods through Deref
/// assert_eq!(out.split(' ').count(), 2);
/// assert_eq!(out.return_code(), 0);
/// assert!(out.succeeded() && !out.failed());
/// assert_eq!(format!("got {out}"), "got hello world");
/// # Ok::<(), twill::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Output {
    stdout: String,
    stderr: String,
    return_code: i32,
    failed: bool,
    command: String,
    real_command: String,
}

impl Output {
    pub(crate) fn new(
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        return_code: i32,
        failed: bool,
        command: &str,
        real_command: &str,
    ) -> Output {
        Output {
            stdout: stripped(stdout),
            stderr: stripped(stderr),
            return_code,
            failed,
            command: command.to_string(),
            real_command: real_command.to_string(),
        }
    }

    /// Standard output, stripped of surrounding whitespace. With a pty, this
    /// also holds what the command wrote to standard error, and line ends
    /// are `\r\n` as the terminal produced them.
    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    /// Standard error, stripped. Empty when it was merged into stdout
    /// (`combine_stderr`, a pty, or `local` without a separate capture).
    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// The lines of stdout, split as Python's `str.splitlines()` splits
    /// them (what ported scripts rely on): at `\n`, `\r\n` and a lone
    /// `\r` (where twill's printer also ends a line), and at `\x0b`,
    /// `\x0c`, `\x1c`–`\x1e`, `\u{85}`, `\u{2028}` and `\u{2029}`.
    ///
    /// ```
    /// let out = twill::local_capture("printf 'a\\nb\\rc\\r\\nd'")?;
    /// assert_eq!(out.stdout_lines(), ["a", "b", "c", "d"]);
    /// # Ok::<(), twill::Error>(())
    /// ```
    pub fn stdout_lines(&self) -> Vec<&str> {
        lines(&self.stdout)
    }

    /// The lines of stderr, split as [`stdout_lines`](Output::stdout_lines).
    pub fn stderr_lines(&self) -> Vec<&str> {
        lines(&self.stderr)
    }

    /// The exit code. A process killed by a signal reports minus the
    /// signal number (`-9`), as Python's `subprocess` does; a remote command
    /// whose server sent no exit status reports `-1`, as Fabric does.
    pub fn return_code(&self) -> i32 {
        self.return_code
    }

    /// Whether the exit code is in `ok_ret_codes` (default `[0]`).
    pub fn succeeded(&self) -> bool {
        !self.failed
    }

    /// The negation of [`succeeded`](Output::succeeded).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The command exactly as given.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The command as it was really executed: with `cd`, prefixes,
    /// exports, the shell wrapper and the sudo prefix, byte for byte as
    /// Fabric 1.x builds it.
    pub fn real_command(&self) -> &str {
        &self.real_command
    }
}

/// Decodes captured bytes and strips them, reusing the buffer: a large
/// capture is never held twice.
fn stripped(bytes: Vec<u8>) -> String {
    let mut s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    s.drain(..start);
    s
}

fn lines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        match rest.find(|c: char| {
            matches!(
                c,
                '\n' | '\r'
                    | '\x0b'
                    | '\x0c'
                    | '\x1c'
                    | '\x1d'
                    | '\x1e'
                    | '\u{85}'
                    | '\u{2028}'
                    | '\u{2029}'
            )
        }) {
            Some(i) => {
                out.push(&rest[..i]);
                let end = if rest[i..].starts_with("\r\n") {
                    i + 2
                } else {
                    i + rest[i..].chars().next().map_or(1, char::len_utf8)
                };
                rest = &rest[end..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

impl Deref for Output {
    type Target = str;
    fn deref(&self) -> &str {
        &self.stdout
    }
}

impl AsRef<str> for Output {
    fn as_ref(&self) -> &str {
        &self.stdout
    }
}

impl Borrow<str> for Output {
    fn borrow(&self) -> &str {
        &self.stdout
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stdout)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("return_code", &self.return_code)
            .field("failed", &self.failed)
            .field("command", &self.command)
            .field("real_command", &self.real_command)
            .finish()
    }
}

impl From<Output> for String {
    fn from(o: Output) -> String {
        o.stdout
    }
}

impl PartialEq<str> for Output {
    fn eq(&self, other: &str) -> bool {
        self.stdout == other
    }
}

impl PartialEq<&str> for Output {
    fn eq(&self, other: &&str) -> bool {
        self.stdout == *other
    }
}

impl PartialEq<String> for Output {
    fn eq(&self, other: &String) -> bool {
        &self.stdout == other
    }
}

impl PartialEq<Output> for &str {
    fn eq(&self, other: &Output) -> bool {
        *self == other.stdout
    }
}

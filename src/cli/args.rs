//! Fabric's task-argument syntax and the conversion of arguments to the
//! task function's parameter types.

use std::ops::Range;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};

/// One task on the command line: `name:arg1,arg2,key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskCall {
    pub(crate) name: String,
    pub(crate) args: TaskArgs,
}

/// The arguments given to a task, still as text: from the command line
/// (`deploy:main,restart=yes`), or built for [`Tasks::execute`] as
/// Fabric's `execute('deploy', 'main', restart='yes')`:
///
/// ```
/// use twill::TaskArgs;
///
/// let args = TaskArgs::new().arg("main").kwarg("restart", "yes");
/// assert_eq!(args.positional(), ["main"]);
/// assert_eq!(args.named(), [("restart".to_string(), "yes".to_string())]);
/// ```
///
/// [`Tasks::execute`]: crate::Tasks::execute
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskArgs {
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

/// Splits `text` on unescaped `sep`; `\<sep>` stands for `sep` itself.
fn split_escaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&sep) {
            parts.last_mut().unwrap().push(sep);
            chars.next();
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
}

/// Splits `key=value` at the first unescaped `=`; `\=` is a literal `=`.
fn split_key_value(part: &str) -> (Option<String>, String) {
    let mut key = None;
    let mut out = String::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'=') {
            out.push('=');
            chars.next();
        } else if c == '=' && key.is_none() {
            key = Some(std::mem::take(&mut out));
        } else {
            out.push(c);
        }
    }
    (key, out)
}

/// Parses `name:a,b,k=v` (`\,` and `\=` escape).
pub(crate) fn parse_task_call(spec: &str) -> TaskCall {
    let (name, rest) = match spec.split_once(':') {
        Some((n, r)) => (n.to_string(), Some(r)),
        None => (spec.to_string(), None),
    };
    let mut args = TaskArgs::default();
    if let Some(rest) = rest.filter(|r| !r.is_empty()) {
        for part in split_escaped(rest, ',') {
            match split_key_value(&part) {
                (Some(key), value) => args.named.push((key, value)),
                (None, value) => args.positional.push(value),
            }
        }
    }
    TaskCall { name, args }
}

/// Parses `--set k=v,k2=v2` (`k` alone means `true`, `k=` the empty string).
pub(crate) fn parse_set(spec: &str) -> Vec<(String, String)> {
    split_escaped(spec, ',')
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p, "true".to_string()),
        })
        .collect()
}

/// The keys of a `--set` spec with the byte range of each value in `spec`
/// as written (escapes included), to hide secret values.
pub(crate) fn set_value_ranges(spec: &str) -> Vec<(String, Range<usize>)> {
    let bytes = spec.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i <= bytes.len() {
        if bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b',') {
            i += 2;
            continue;
        }
        if i == bytes.len() || bytes[i] == b',' {
            let part = &spec[start..i];
            if let Some(eq) = part.find('=') {
                out.push((part[..eq].to_string(), start + eq + 1..i));
            }
            start = i + 1;
        }
        i += 1;
    }
    out
}

impl TaskArgs {
    /// No arguments.
    pub fn new() -> TaskArgs {
        TaskArgs::default()
    }

    /// Adds a positional argument.
    pub fn arg(mut self, value: impl Into<String>) -> TaskArgs {
        self.positional.push(value.into());
        self
    }

    /// Adds a named argument, Fabric's keyword argument `name=value`
    /// (`hosts` takes `a;b`, as on the command line).
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<String>) -> TaskArgs {
        self.named.push((name.into(), value.into()));
        self
    }

    /// Positional arguments taken verbatim, as a task that takes the words
    /// after it gets them.
    pub(crate) fn from_words(words: Vec<String>) -> TaskArgs {
        TaskArgs {
            positional: words,
            named: Vec::new(),
        }
    }

    /// Removes a named argument and returns its value.
    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        let i = self.named.iter().position(|(k, _)| k == key)?;
        Some(self.named.remove(i).1)
    }

    /// The arguments as words: the positional ones, then `key=value`.
    pub(crate) fn words(&self) -> Vec<String> {
        let named = self.named.iter().map(|(k, v)| format!("{k}={v}"));
        self.positional.iter().cloned().chain(named).collect()
    }

    /// Positional arguments in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Named arguments (`key=value`) in order.
    pub fn named(&self) -> &[(String, String)] {
        &self.named
    }

    /// Checks the arguments against the task's parameters: no more
    /// positional arguments than parameters, no unknown names, nothing
    /// given twice.
    pub(crate) fn check(&self, task: &str, params: &[super::Param]) -> Result<()> {
        if self.positional.len() > params.len() {
            return Err(usage(format!(
                "task '{task}' takes {} argument(s) but {} were given",
                params.len(),
                self.positional.len()
            )));
        }
        for (k, _) in &self.named {
            match params.iter().position(|p| p.0 == k) {
                None => {
                    let names: Vec<&str> = params.iter().map(|p| p.0).collect();
                    return Err(usage(format!(
                        "task '{task}' has no argument '{k}' (its arguments: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
                Some(i) if i < self.positional.len() => {
                    return Err(usage(format!("task '{task}' got the argument '{k}' twice")));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The argument for parameter `name` at position `index`, converted;
    /// when it is not given, `default`'s value, else the type's own.
    #[doc(hidden)]
    pub fn get<T: FromArg, D: FnOnce() -> T>(
        &self,
        task: &str,
        name: &str,
        index: usize,
        default: Option<D>,
    ) -> Result<T> {
        let given = self
            .named
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.positional.get(index).map(String::as_str));
        match given {
            Some(text) => T::from_arg(text).map_err(|why| {
                usage(format!(
                    "task '{task}': argument '{name}' expects {}, but got '{text}'{}",
                    T::describe(),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    }
                ))
            }),
            None => default
                .map(|d| d())
                .or_else(T::missing)
                .ok_or_else(|| usage(format!("task '{task}' needs the argument '{name}'"))),
        }
    }
}

pub(crate) fn usage(msg: String) -> Error {
    Error::new(ErrorKind::Usage, msg)
}

/// A task parameter type: converted from the text of a command-line
/// argument. Implemented for `String`, `PathBuf`, `bool`, the integer and
/// float types, and `Option<T>` (an optional argument). A value is cloned
/// for each host a task's `execute` runs it on.
pub trait FromArg: Sized + Clone {
    /// Converts the argument's text, or says why it does not fit.
    fn from_arg(text: &str) -> std::result::Result<Self, String>;
    /// The value when the argument is not given; `None` makes it required.
    fn missing() -> Option<Self> {
        None
    }
    /// How the expected value is described in error messages.
    fn describe() -> &'static str;
}

impl FromArg for String {
    fn from_arg(text: &str) -> std::result::Result<Self, String> {
        Ok(text.to_string())
    }
    fn describe() -> &'static str {
        "text"
    }
}

impl FromArg for PathBuf {
    fn from_arg(text: &str) -> std::result::Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn describe() -> &'static str {
        "a path"
    }
}

impl FromArg for bool {
    fn from_arg(text: &str) -> std::result::Result<Self, String> {
        crate::sys::parse_bool(text).ok_or_else(String::new)
    }
    fn describe() -> &'static str {
        "true or false"
    }
}

macro_rules! from_arg_numbers {
    ($($t:ty => $what:expr),*) => {$(
        impl FromArg for $t {
            fn from_arg(text: &str) -> std::result::Result<Self, String> {
                text.trim().parse::<$t>().map_err(|e| e.to_string())
            }
            fn describe() -> &'static str {
                $what
            }
        }
    )*};
}

from_arg_numbers! {
    i8 => "a whole number", i16 => "a whole number", i32 => "a whole number", i64 => "a whole number",
    u8 => "a whole number of 0 or more", u16 => "a whole number of 0 or more", u32 => "a whole number of 0 or more",
    u64 => "a whole number of 0 or more", usize => "a whole number of 0 or more",
    f32 => "a number", f64 => "a number"
}

impl<T: FromArg> FromArg for Option<T> {
    fn from_arg(text: &str) -> std::result::Result<Self, String> {
        T::from_arg(text).map(Some)
    }
    fn missing() -> Option<Self> {
        Some(None)
    }
    fn describe() -> &'static str {
        T::describe()
    }
}

/// A value a parameter's default may be written as, in `task!`: the
/// parameter's own type, or text for `String`, `PathBuf` and
/// `Option<String>` (`branch: String = "main"`).
#[doc(hidden)]
pub trait ArgDefault<V> {
    fn from_default(value: V) -> Self;
}

impl<T> ArgDefault<T> for T {
    fn from_default(value: T) -> T {
        value
    }
}

impl ArgDefault<&str> for String {
    fn from_default(value: &str) -> String {
        value.to_string()
    }
}

impl ArgDefault<&str> for PathBuf {
    fn from_default(value: &str) -> PathBuf {
        PathBuf::from(value)
    }
}

impl ArgDefault<&str> for Option<String> {
    fn from_default(value: &str) -> Option<String> {
        Some(value.to_string())
    }
}

/// A parameter's default as a value of its type.
#[doc(hidden)]
pub fn arg_default<T: ArgDefault<V>, V>(value: V) -> T {
    T::from_default(value)
}

/// What a function in `task!` may return: nothing (a task that only sets
/// settings, like Fabric's `def production(): env.user = ...`), or a
/// twill `Result` of any value, which the command line drops.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a task returns nothing or a `twill::Result<T>`, not `{Self}`",
    label = "the task's return type"
)]
pub trait TaskReturn {
    fn into_task_result(self) -> crate::Result<()>;
}

impl TaskReturn for () {
    fn into_task_result(self) -> crate::Result<()> {
        Ok(())
    }
}

impl<T> TaskReturn for crate::Result<T> {
    fn into_task_result(self) -> crate::Result<()> {
        self.map(|_| ())
    }
}

/// A default as `-d` shows it, written the way Fabric shows Python's
/// (`repr`): text quoted (`'main'`), `True`, `False`, `None`, and numbers
/// and anything else as written in the source.
pub(crate) fn shown_default(source: &str) -> String {
    let source = source.trim();
    if let Some(inner) = source
        .strip_prefix("Some(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return shown_default(inner);
    }
    match source {
        "true" => return "True".into(),
        "false" => return "False".into(),
        _ => {}
    }
    match string_literal(source) {
        Some(text) => python_repr(&text),
        None => source.to_string(),
    }
}

/// The text of a plain Rust string literal (`"a\"b"`), when `source` is
/// one with only simple escapes.
fn string_literal(source: &str) -> Option<String> {
    let inner = source.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                c @ ('\\' | '"' | '\'') => c,
                _ => return None,
            }),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Python's `repr` of a string: single quotes unless the text holds one
/// and no double quote.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_shown_as_fabric_shows_them() {
        for (source, shown) in [
            ("\"master\"", "'master'"),
            ("\"it's\"", "\"it's\""),
            ("\"a\\\\b\\n\"", "'a\\\\b\\n'"),
            ("3", "3"),
            ("-1.5", "-1.5"),
            ("true", "True"),
            ("None", "None"),
            ("Some(\"x\")", "'x'"),
            ("Some(5)", "5"),
            ("String::from(\"x\")", "String::from(\"x\")"),
        ] {
            assert_eq!(shown_default(source), shown, "{source}");
        }
    }

    #[test]
    fn set_value_ranges_cover_each_value_as_written() {
        let spec = "user=a\\,b,password=p\\,w,flag,sudo_password=";
        let ranges = set_value_ranges(spec);
        let got: Vec<(&str, &str)> = ranges
            .iter()
            .map(|(k, r)| (k.as_str(), &spec[r.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                ("user", "a\\,b"),
                ("password", "p\\,w"),
                ("sudo_password", "")
            ]
        );
        // The same keys and values parse_set reads.
        assert_eq!(
            parse_set(spec)
                .into_iter()
                .filter(|(k, _)| k != "flag")
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["user", "password", "sudo_password"]
        );
    }
}

//! What fabfiles use beside the operations: `require` (settings a task
//! cannot do without), `error` (Fabric's warn-or-abort) and `env_format`
//! (a string formatted against the settings, as `'%(user)s' % env` and
//! `'{user}'.format(**env)` do).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::operations::abort;
use crate::output;
use crate::ssh::Target;
use crate::state::{env, Env};
use crate::sys::seconds;

/// Options of [`require_with`] (Fabric's `require` keywords).
///
/// ```
/// use twill::RequireOptions;
///
/// let opts = RequireOptions::new().used_for("deploying").provided_by(["staging", "production"]);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequireOptions {
    used_for: Option<String>,
    provided_by: Vec<String>,
}

impl RequireOptions {
    /// No explanation, no tasks to suggest.
    pub fn new() -> RequireOptions {
        RequireOptions::default()
    }

    /// What the keys are for, said as `This variable is used for <text>`.
    pub fn used_for(mut self, text: impl Into<String>) -> Self {
        self.used_for = Some(text.into());
        self
    }

    /// The tasks that set the keys, suggested as `Try running ... prior to
    /// this one`.
    pub fn provided_by<S: Into<String>>(mut self, tasks: impl IntoIterator<Item = S>) -> Self {
        self.provided_by = tasks.into_iter().map(Into::into).collect();
        self
    }
}

/// Fails unless every key is set (Fabric's `require(*keys)`); see
/// [`require_with`].
pub fn require<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Result<()> {
    require_with(keys, &RequireOptions::new())
}

/// Fails, with an error of kind [`ErrorKind::Aborted`] in Fabric's words,
/// unless every key is set in the settings (Fabric's `require(*keys,
/// used_for=..., provided_by=...)`).
///
/// A key counts as set when the settings hold it (an empty list or map,
/// as Fabric has it, does not count) or when it is a built-in setting with
/// a default, such as `user` or `port`.
///
/// ```
/// use twill::{require, require_with, with_settings, RequireOptions, Settings};
///
/// with_settings(Settings::new().set("root", "/srv/app"), || require(["root", "user"]))?;
///
/// let err = require_with(["hosts"], &RequireOptions::new().provided_by(["production"])).unwrap_err();
/// assert_eq!(err.kind(), twill::ErrorKind::Aborted);
/// assert_eq!(
///     err.to_string(),
///     "The following required environment variable was not defined:\n    hosts\n\n\
///      Try running the following command prior to this one, to fix the problem:\n    production"
/// );
/// # Ok::<(), twill::Error>(())
/// ```
pub fn require_with<S: AsRef<str>>(
    keys: impl IntoIterator<Item = S>,
    opts: &RequireOptions,
) -> Result<()> {
    let env = env();
    let missing: Vec<String> = keys
        .into_iter()
        .map(|k| k.as_ref().to_string())
        .filter(|k| !is_set(&env, k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let (variable, used) = if missing.len() > 1 {
        ("variables were", "These variables are")
    } else {
        ("variable was", "This variable is")
    };
    let prefix = match env.command() {
        Some(task) => format!("The command '{task}' failed because the "),
        None => "The ".to_string(),
    };
    let mut msg = format!(
        "{prefix}following required environment {variable} not defined:\n{}",
        indent(&missing)
    );
    if let Some(used_for) = &opts.used_for {
        msg.push_str(&format!("\n\n{used} used for {used_for}"));
    }
    if !opts.provided_by.is_empty() {
        let command = if opts.provided_by.len() > 1 {
            "one of the following commands"
        } else {
            "the following command"
        };
        msg.push_str(&format!(
            "\n\nTry running {command} prior to this one, to fix the problem:\n{}",
            indent(&opts.provided_by)
        ));
    }
    Err(abort(msg))
}

/// Fabric's `indent`: each line four spaces in.
fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .flat_map(|l| l.lines())
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `key` is set for `require`: held and not an empty collection,
/// or a built-in key with a default.
fn is_set(env: &Env, key: &str) -> bool {
    if !env.contains(key) {
        return builtin_default(env, key).is_some();
    }
    let empty = env
        .get_ref::<Vec<String>>(key)
        .map(Vec::is_empty)
        .or_else(|| env.get_ref::<Vec<i32>>(key).map(Vec::is_empty))
        .or_else(|| env.get_ref::<Vec<(String, String)>>(key).map(Vec::is_empty))
        .or_else(|| {
            env.get_ref::<std::collections::BTreeMap<String, Vec<String>>>(key)
                .map(|m| m.is_empty())
        })
        .or_else(|| {
            env.get_ref::<std::collections::BTreeMap<String, String>>(key)
                .map(|m| m.is_empty())
        })
        .or_else(|| {
            env.get_ref::<std::collections::HashMap<String, String>>(key)
                .map(|m| m.is_empty())
        });
    !empty.unwrap_or(false)
}

/// Fabric's `utils.error(message)`: with `warn_only`, prints `Warning:
/// <msg>` and returns `Ok`; otherwise returns an error of kind
/// [`ErrorKind::Aborted`] (as [`abort`](crate::abort) makes) to pass up
/// with `?`.
///
/// ```
/// use twill::{error, warn_only, with_settings};
///
/// let err = error("the cache is stale").unwrap_err();
/// assert_eq!(err.kind(), twill::ErrorKind::Aborted);
/// assert_eq!(err.to_string(), "the cache is stale");
/// with_settings(warn_only(), || error("the cache is stale"))?; // a warning
/// # Ok::<(), twill::Error>(())
/// ```
pub fn error(msg: impl Into<String>) -> Result<()> {
    let msg = msg.into();
    let env = env();
    if env.warn_only() {
        output::warning(&env, &msg);
        Ok(())
    } else {
        Err(abort(msg))
    }
}

/// [`error`] with the error that caused it, appended as Fabric's
/// `error(message, exception=e)` does: `<msg>\n\nUnderlying
/// exception:\n    <cause>`.
///
/// ```
/// let cause = std::fs::read("/nonexistent/release.txt").unwrap_err();
/// let err = twill::error_with("no release file", &cause).unwrap_err();
/// assert!(err.to_string().starts_with("no release file\n\nUnderlying exception:\n    "));
/// ```
pub fn error_with(msg: impl Into<String>, cause: &dyn std::fmt::Display) -> Result<()> {
    let cause = cause.to_string();
    let lines: Vec<String> = cause.lines().map(String::from).collect();
    error(format!(
        "{}\n\nUnderlying exception:\n{}",
        msg.into(),
        indent(&lines)
    ))
}

/// Formats `template` against the current settings, in both of the ways
/// fabfiles do it: Python's `%(key)s` (`'%(user)s@%(host)s' % env`) and
/// `{key}` (`'{user}@{host}'.format(**env)`), which may be mixed.
///
/// A key reads as the setting of that name: a string or a number (or a
/// boolean, or a duration in seconds) set with
/// [`Settings::set`](crate::Settings::set) or `--set`, a built-in setting
/// that holds text or a number, or a built-in default (`user` is the
/// local user when unset, `port` 22, `shell`, ...). `host`, and `user`
/// and `port` where the host string gives them, come from `host_string`,
/// as `execute` sets them for each host. `%%`, `{{` and `}}` stand for
/// `%`, `{` and `}`; a `%` not followed by `(` and a `{` that does not
/// start `{name}` are kept as they are. `%(key)d` and `%(key)i` take
/// whole numbers only.
///
/// A key that is not set is an error of kind [`ErrorKind::Settings`]
/// naming it (never an empty string), and so is a password, which is
/// never formatted into text, and a value that is neither text nor a
/// number (a list, say).
///
/// ```
/// use twill::{env_format, with_settings, Settings};
///
/// let s = Settings::new().host_string("deploy@web1:2222").set("project", "shop").set("release", 42);
/// with_settings(s, || {
///     assert_eq!(env_format("%(user)s@%(host)s:/srv/{project}")?, "deploy@web1:/srv/shop");
///     assert_eq!(env_format("{project}-%(release)d on port {port}")?, "shop-42 on port 2222");
///     let err = env_format("/srv/{missing}").unwrap_err();
///     assert_eq!(err.kind(), twill::ErrorKind::Settings);
///     assert!(err.to_string().contains("'missing'"));
///     twill::Result::Ok(())
/// })?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn env_format(template: impl AsRef<str>) -> Result<String> {
    let template = template.as_ref();
    let env = env();
    // As `execute` sets them per host: the host string's parts win.
    let target = env.host_string().as_deref().map(Target::parse);
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['%', '{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = ["%%", "{{", "}}"]
            .iter()
            .find_map(|e| tail.strip_prefix(e).map(|a| (e, a)))
            .map(|(e, a)| {
                out.push_str(&e[..1]);
                a
            })
        {
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("%(") {
            let Some(close) = inner.find(')') else {
                return Err(format_error(template, "a '%(' is not closed by ')'"));
            };
            let key = &inner[..close];
            let after = &inner[close + 1..];
            let conversion = after.chars().next();
            let value = value_of(&env, target.as_ref(), key, template)?;
            match conversion {
                Some('s') => out.push_str(&value.text),
                Some('d' | 'i') if value.integer => out.push_str(&value.text),
                Some('d' | 'i') => {
                    return Err(format_error(
                        template,
                        &format!("'{key}' is not a whole number, which %({key})d needs"),
                    ))
                }
                _ => {
                    return Err(format_error(
                        template,
                        &format!("'%({key})' must be followed by s, d or i"),
                    ))
                }
            }
            rest = &after[1..];
        } else if let Some(key) = tail
            .strip_prefix('{')
            .and_then(|t| t.split_once('}'))
            .map(|(k, _)| k)
            .filter(|k| is_name(k))
        {
            out.push_str(&value_of(&env, target.as_ref(), key, template)?.text);
            rest = &tail[key.len() + 2..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A name `{...}` stands for: letters, digits and `_`, not starting with
/// a digit (so `{}` and `{0}` stay as they are).
fn is_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn format_error(template: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Settings,
        format!("env_format() cannot format '{template}': {why}"),
    )
}

/// A setting as text, and whether it is a whole number.
struct Text {
    text: String,
    integer: bool,
}

/// The text `key` stands for in `template` (`target`: the host string,
/// parsed), or an error naming the key.
fn value_of(env: &Env, target: Option<&Target>, key: &str, template: &str) -> Result<Text> {
    if matches!(
        key,
        "password" | "sudo_password" | "key_passphrase" | "passwords"
    ) {
        return Err(format_error(
            template,
            &format!("'{key}' is a password, which twill never writes into text"),
        ));
    }
    if let Some(target) = target {
        match (key, &target.user, target.port) {
            ("host", _, _) => return Ok(text(target.host.clone())),
            ("user", Some(user), _) => return Ok(text(user.clone())),
            ("port", _, Some(port)) => return Ok(number(port)),
            _ => {}
        }
    }
    if env.contains(key) {
        return stored(env, key).ok_or_else(|| {
            format_error(
                template,
                &format!("the setting '{key}' is neither text nor a number"),
            )
        });
    }
    builtin_default(env, key)
        .ok_or_else(|| format_error(template, &format!("no setting named '{key}' is set")))
}

fn text(s: impl Into<String>) -> Text {
    Text {
        text: s.into(),
        integer: false,
    }
}

fn number(n: impl ToString) -> Text {
    Text {
        text: n.to_string(),
        integer: true,
    }
}

/// A stored value of one of the types that read as text.
fn stored(env: &Env, key: &str) -> Option<Text> {
    macro_rules! integers {
        ($($t:ty),*) => {$(
            if let Some(n) = env.get_ref::<$t>(key) {
                return Some(number(n));
            }
        )*};
    }
    if let Some(s) = env.get_str(key) {
        return Some(text(s));
    }
    integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
    if let Some(f) = env.get_ref::<f64>(key) {
        return Some(text(f.to_string()));
    }
    if let Some(f) = env.get_ref::<f32>(key) {
        return Some(text(f.to_string()));
    }
    if let Some(b) = env.get_ref::<bool>(key) {
        return Some(text(b.to_string()));
    }
    if let Some(d) = env.get_ref::<Duration>(key) {
        return Some(text(seconds(*d)));
    }
    if let Some(p) = env.get_ref::<PathBuf>(key) {
        return Some(text(p.to_string_lossy()));
    }
    if let Some(c) = env.get_ref::<char>(key) {
        return Some(text(c.to_string()));
    }
    None
}

/// The value of a built-in key that is not set but has a default.
fn builtin_default(env: &Env, key: &str) -> Option<Text> {
    Some(match key {
        "user" => text(env.user()),
        "port" => number(env.port()),
        "shell" => text(env.shell()),
        "sudo_prompt" => text(env.sudo_prompt()),
        "sudo_prefix" => text(env.sudo_prefix()),
        "cwd" => text(env.cwd()),
        "lcwd" => text(env.lcwd()),
        "path" => text(env.path()),
        "pool_size" => number(env.pool_size()),
        "connection_attempts" => number(env.connection_attempts()),
        "keepalive_count" => number(env.keepalive_count()),
        "timeout" => text(seconds(env.timeout())),
        "keepalive" => text(seconds(env.keepalive())),
        "warn_only" => text(env.warn_only().to_string()),
        "abort_on_prompts" => text(env.abort_on_prompts().to_string()),
        "non_interactive" => text(env.non_interactive().to_string()),
        "use_shell" => text(env.use_shell().to_string()),
        "shell_escape" => text(env.shell_escape().to_string()),
        "combine_stderr" => text(env.combine_stderr().to_string()),
        "always_use_pty" => text(env.always_use_pty().to_string()),
        "parallel" => text(env.parallel().to_string()),
        "skip_bad_hosts" => text(env.skip_bad_hosts().to_string()),
        "output_prefix" => text(env.output_prefix().to_string()),
        "accept_new_host_keys" => text(env.accept_new_host_keys().to_string()),
        "use_ssh_config" => text(env.use_ssh_config().to_string()),
        "no_agent" => text(env.no_agent().to_string()),
        "no_keys" => text(env.no_keys().to_string()),
        "eagerly_disconnect" => text(env.eagerly_disconnect().to_string()),
        "dedupe_hosts" => text(env.dedupe_hosts().to_string()),
        _ => return None,
    })
}

//! Builds the real command, byte for byte as Fabric 1.x does.
//!
//! Pure: it reads an [`Env`] and returns strings. Every command twill runs,
//! locally or remotely, is composed here and nowhere else.
//!
//! Remote (`run`/`sudo`): `shell_wrap(prefix_env_vars(prefix_commands(cmd, cwd)))`:
//! exports first, then `cd <cwd> >/dev/null`, then the prefixes, then the
//! command, all inside `<shell> "<escaped>"`, behind the sudo prefix.
//! Local: `prefix_commands(prefix_env_vars(cmd), lcwd)` and no wrapping.

use crate::state::{Env, PathBehavior};

/// Escapes `"`, `$` and `` ` `` with a backslash, and nothing else.
pub(crate) fn shell_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Python's `%(key)s` interpolation of a setting string with `env`.
fn interpolate(template: &str, env: &Env) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("%%") {
            out.push('%');
            rest = after;
        } else if let Some((key, after)) = tail.strip_prefix("%(").and_then(|t| t.split_once(")s"))
        {
            out.push_str(&setting_text(env, key));
            rest = after;
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn setting_text(env: &Env, key: &str) -> String {
    match key {
        "sudo_prompt" => env.sudo_prompt().to_string(),
        "user" => env.user(),
        "shell" => env.shell().to_string(),
        "port" => env.port().to_string(),
        _ => env.get_str(key).unwrap_or("").to_string(),
    }
}

fn sudo_argument(flag: &str, value: Option<&str>) -> String {
    match value {
        None => String::new(),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            format!(" {flag} \"#{v}\"")
        }
        Some(v) => format!(" {flag} \"{v}\""),
    }
}

/// `env.sudo_prefix % env`, plus ` -u "<user>"` / ` -g "<group>"` and a
/// space when either is given (numeric ids become `"#1001"`).
pub(crate) fn sudo_prefix(env: &Env, user: Option<&str>, group: Option<&str>) -> String {
    let prefix = interpolate(env.sudo_prefix(), env);
    if user.is_some() || group.is_some() {
        format!(
            "{prefix}{}{} ",
            sudo_argument("-u", user),
            sudo_argument("-g", group)
        )
    } else {
        prefix
    }
}

/// Which working directory a command honours.
#[derive(Clone, Copy)]
enum Side {
    Remote,
    Local,
}

fn prefix_commands(env: &Env, command: &str, side: Side) -> String {
    let cwd = match side {
        Side::Remote => env.cwd(),
        Side::Local => env.lcwd(),
    };
    let mut parts: Vec<String> = Vec::new();
    if !cwd.is_empty() {
        parts.push(format!("cd {cwd} >/dev/null"));
    }
    parts.extend(env.command_prefixes().iter().cloned());
    if parts.is_empty() {
        command.to_string()
    } else {
        format!("{} && {command}", parts.join(" && "))
    }
}

fn prefix_env_vars(env: &Env, command: &str) -> String {
    let mut vars: Vec<(String, String)> = Vec::new();
    let path = env.path();
    if !path.is_empty() {
        let value = match env.path_behavior() {
            PathBehavior::Append => format!("$PATH:\"{path}\""),
            PathBehavior::Prepend => format!("\"{path}\":$PATH"),
            PathBehavior::Replace => format!("\"{path}\""),
        };
        vars.push(("PATH".to_string(), value));
    }
    // Fabric keeps these in a dict: a key given again keeps its first place,
    // and PATH is never escaped so that `$PATH` expands.
    for (k, v) in env.shell_env() {
        let value = if k == "PATH" {
            v.clone()
        } else {
            shell_escape(v)
        };
        match vars.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = value,
            None => vars.push((k.clone(), value)),
        }
    }
    if vars.is_empty() {
        return command.to_string();
    }
    let exports: Vec<String> = vars.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("export {} && {command}", exports.join(" "))
}

fn shell_wrap(env: &Env, command: &str, shell: bool, escape: bool, sudo: Option<String>) -> String {
    let mut out = match sudo {
        Some(prefix) => prefix + " ",
        None => String::new(),
    };
    if shell && env.use_shell() {
        out.push_str(env.shell());
        out.push_str(" \"");
        if escape {
            out.push_str(&shell_escape(command));
        } else {
            out.push_str(command);
        }
        out.push('"');
    } else {
        out.push_str(command);
    }
    out
}

/// How a remote command is to be wrapped.
#[derive(Debug, Clone, Default)]
pub(crate) struct RemoteSpec<'a> {
    /// Wrap in the shell (subject to `use_shell`).
    pub(crate) shell: bool,
    /// Escape for the shell; `None` reads `shell_escape`.
    pub(crate) shell_escape: Option<bool>,
    /// Run through sudo, with this user and group.
    pub(crate) sudo: Option<(Option<&'a str>, Option<&'a str>)>,
}

/// The real command `run`/`sudo` send.
pub(crate) fn remote(env: &Env, command: &str, spec: &RemoteSpec<'_>) -> String {
    let composed = prefix_env_vars(env, &prefix_commands(env, command, Side::Remote));
    let escape = spec.shell_escape.unwrap_or_else(|| env.shell_escape());
    let sudo = spec.sudo.map(|(u, g)| sudo_prefix(env, u, g));
    shell_wrap(env, &composed, spec.shell, escape, sudo)
}

/// The real command `local` runs: `lcd`, prefixes and exports, unwrapped
/// unless `use_shell`; behind `sudo -n` when `use_sudo`.
pub(crate) fn local(env: &Env, command: &str, use_shell: bool, use_sudo: bool) -> String {
    let composed = prefix_commands(env, &prefix_env_vars(env, command), Side::Local);
    if use_sudo {
        // sudo must run the whole composition, so it is always shell-wrapped.
        let wrapped = shell_wrap(env, &composed, true, env.shell_escape(), None);
        format!("sudo -n {wrapped}")
    } else if use_shell {
        shell_wrap(env, &composed, true, env.shell_escape(), None)
    } else {
        composed
    }
}

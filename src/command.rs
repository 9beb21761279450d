//! Builds the real command, byte for byte as Fabric 1.x does, and is the
//! one place where shell text is made.
//!
//! Pure: it reads an [`Env`] and returns strings. Every command twill runs,
//! locally or remotely, is composed here and nowhere else, and every value
//! twill puts into shell text (a directory, a file name, a user name, an
//! exported value) goes through [`quote`] or one of the rules built on it,
//! so that a value is always data, never code.
//!
//! Remote (`run`/`sudo`): `shell_wrap(prefix_env_vars(prefix_commands(cmd, cwd)))`:
//! exports first, then `cd <cwd> >/dev/null`, then the prefixes, then the
//! command, all inside `<shell> "<escaped>"`, behind the sudo prefix.
//! Local: `prefix_commands(prefix_env_vars(cmd), lcwd)` and no wrapping.
//!
//! Where Fabric's own string would let a value run as code, the string
//! differs from Fabric's and the value stays a value:
//! - a directory for `cd`/`lcd` keeps Fabric's form (`cd /srv/my\ app`) when
//!   it is made of ordinary characters, and is quoted otherwise
//!   ([`dir_word`]);
//! - the shell wrapper escapes backslashes too, so the text inside it
//!   reaches the inner shell exactly as it was composed (Fabric leaves
//!   them, which lets the login shell expand an exported `$x`);
//! - user and group names for sudo, `PATH` additions and exported values
//!   that hold shell characters are quoted.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::state::{Env, PathBehavior};

/// Characters that never need quoting in a word of a POSIX shell.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-' | '_')
}

/// Makes `s` one word of a POSIX shell that stands for exactly `s`: as it
/// is when every character is [plain](is_plain), else in single quotes
/// with each `'` written as `'\''`. The empty string becomes `''`.
///
/// This is the function every value twill interpolates into shell text
/// passes through.
pub(crate) fn quote(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && s.chars().all(is_plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// Splits a leading `~` or `~user` (followed by `/` or the end) from a
/// path, with the `/` after it: the shell expands a tilde only when the
/// slash that ends it is unquoted too.
fn split_tilde(path: &str) -> (&str, &str) {
    let Some(after) = path.strip_prefix('~') else {
        return ("", path);
    };
    let end = after.find('/').unwrap_or(after.len());
    let user = &after[..end];
    if user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        path.split_at((end + 2).min(path.len()))
    } else {
        ("", path)
    }
}

/// The rule for a directory of `cd`/`lcd` in shell text.
///
/// A path made of ordinary characters (letters, digits, `/._-~+,@:%` and
/// spaces) is written as Fabric writes it, spaces escaped as `\ `; any
/// other path is [quoted](quote), so that `;`, `$(...)`, quotes and the
/// like are part of the name. A leading `~` or `~user` stays unquoted in
/// both cases and expands to that home directory.
pub(crate) fn dir_word(path: &str) -> String {
    let (tilde, rest) = split_tilde(path);
    let ordinary = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-~+,@:% ".contains(c));
    if ordinary {
        format!("{tilde}{}", rest.replace(' ', "\\ "))
    } else {
        format!("{tilde}{}", quote(rest))
    }
}

/// A glob pattern as shell text: `*`, `?` and simple bracket expressions
/// (`[a-z]`, `[!0-9]`) stay active so that the shell expands them, and
/// every other character is [quoted](quote).
pub(crate) fn glob_word(pattern: &str) -> String {
    let mut out = String::new();
    let mut literal = String::new();
    let flush = |literal: &mut String, out: &mut String| {
        if !literal.is_empty() {
            out.push_str(&quote(literal));
            literal.clear();
        }
    };
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        match c {
            '*' | '?' => {
                flush(&mut literal, &mut out);
                out.push(c);
                rest = &rest[1..];
            }
            '[' => {
                let set = rest[1..].find(']').map(|end| &rest[1..=end]);
                let simple = set.is_some_and(|s| {
                    let body = s.strip_prefix(['!', '^']).unwrap_or(s);
                    !body.is_empty()
                        && body
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                });
                match set {
                    Some(s) if simple => {
                        flush(&mut literal, &mut out);
                        out.push('[');
                        out.push_str(s);
                        out.push(']');
                        rest = &rest[s.len() + 2..];
                    }
                    _ => {
                        literal.push('[');
                        rest = &rest[1..];
                    }
                }
            }
            _ => {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    flush(&mut literal, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Fabric's escaping for the text inside `<shell> "..."`: a backslash
/// before `"`, `$` and `` ` ``, and before a backslash wherever the
/// enclosing double quotes would read it as an escape (before one of those
/// characters, another backslash, a newline, or at the end), so that the
/// inner shell receives the text exactly. Fabric leaves every backslash
/// alone; the two agree on any text without such a backslash.
pub(crate) fn shell_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let escape = match c {
            '"' | '$' | '`' => true,
            '\\' => chars
                .peek()
                .is_none_or(|n| matches!(n, '"' | '$' | '`' | '\\' | '\n')),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Python's `%(key)s` interpolation of a setting string with `env`.
/// `prompt` stands for `%(sudo_prompt)s`, written for the single quotes
/// it sits in by default (`'` as `'\''`, and `%` doubled for sudo).
fn interpolate(template: &str, env: &Env, prompt: &str) -> String {
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
            if key == "sudo_prompt" {
                out.push_str(&prompt.replace('\'', "'\\''").replace('%', "%%"));
            } else {
                out.push_str(&setting_text(env, key));
            }
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
        "user" => env.user(),
        "shell" => env.shell(),
        "port" => env.port().to_string(),
        _ => env.get_str(key).unwrap_or_default(),
    }
}

/// ` -u "<user>"`: Fabric's form for a plain name (numeric ids as
/// `"#1001"`), the name [quoted](quote) otherwise.
fn sudo_argument(flag: &str, value: Option<&str>) -> String {
    match value {
        None => String::new(),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            format!(" {flag} \"#{v}\"")
        }
        Some(v)
            if !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            format!(" {flag} \"{v}\"")
        }
        Some(v) => format!(" {flag} {}", quote(v)),
    }
}

/// `env.sudo_prefix % env`, plus ` -u "<user>"` / ` -g "<group>"` and a
/// space when either is given (numeric ids become `"#1001"`). `prompt`
/// replaces the `sudo_prompt` setting when given.
pub(crate) fn sudo_prefix(
    env: &Env,
    user: Option<&str>,
    group: Option<&str>,
    prompt: Option<&str>,
) -> String {
    let prefix = interpolate(
        &env.sudo_prefix(),
        env,
        prompt.unwrap_or(&env.sudo_prompt()),
    );
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

/// A piece of a composed command: twill's own text (always escaped inside
/// the shell wrapper) or the caller's (escaped as `shell_escape` says).
enum Part {
    Ours(String),
    Theirs(String),
}

/// Which working directory a command honours.
#[derive(Clone, Copy)]
enum Side {
    Remote,
    Local,
}

fn cd_parts(env: &Env, side: Side) -> Vec<Part> {
    let cwd = match side {
        Side::Remote => env.cwd(),
        Side::Local => env.lcwd(),
    };
    let mut parts = Vec::new();
    if !cwd.is_empty() {
        parts.push(Part::Ours(format!("cd {} >/dev/null", dir_word(&cwd))));
    }
    parts.extend(
        env.command_prefixes()
            .iter()
            .map(|p| Part::Theirs(p.clone())),
    );
    parts
}

/// An exported value inside `"..."`: Fabric's escaping, which with the
/// backslash escaped too leaves nothing active.
fn in_double_quotes(v: &str) -> String {
    shell_escape(v)
}

/// A `PATH` given through `shell_env`: `$NAME` and `${NAME}` still expand
/// (that is what it is for), every other shell character is literal.
fn path_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        let expands = c == '$'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_' || *n == '{');
        if expands && chars.peek() == Some(&'{') {
            // `${NAME}` only: a plain name up to the closing brace.
            let name: String = chars.clone().skip(1).take_while(|c| *c != '}').collect();
            let closed = chars.clone().nth(1 + name.chars().count()) == Some('}');
            let plain =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if closed && plain {
                out.push_str("${");
                out.push_str(&name);
                out.push('}');
                for _ in 0..name.chars().count() + 2 {
                    chars.next();
                }
                continue;
            }
            out.push_str("\\$");
            continue;
        }
        if matches!(c, '"' | '`' | '\\') || (c == '$' && !expands) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn export_part(env: &Env) -> Option<Part> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let path = env.path();
    if !path.is_empty() {
        // Fabric writes the addition between quotes that close and reopen
        // the value's own, so it sits unquoted; a path with shell
        // characters is quoted there instead.
        let word = if path.chars().all(is_plain) {
            format!("\"{path}\"")
        } else {
            format!("\"{}\"", quote(&path))
        };
        let value = match env.path_behavior() {
            PathBehavior::Append => format!("$PATH:{word}"),
            PathBehavior::Prepend => format!("{word}:$PATH"),
            PathBehavior::Replace => word,
        };
        vars.push(("PATH".to_string(), value));
    }
    // Fabric keeps these in a dict: a key given again keeps its first place.
    for (k, v) in env.shell_env() {
        let value = if k == "PATH" {
            path_value(&v)
        } else {
            in_double_quotes(&v)
        };
        match vars.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = value,
            None => vars.push((k, value)),
        }
    }
    if vars.is_empty() {
        return None;
    }
    let exports: Vec<String> = vars
        .iter()
        .map(|(k, v)| {
            if is_name(k) {
                format!("{k}=\"{v}\"")
            } else {
                format!("{}=\"{v}\"", quote(k))
            }
        })
        .collect();
    Some(Part::Ours(format!("export {}", exports.join(" "))))
}

/// Joins parts with ` && `; inside the wrapper, twill's parts are always
/// escaped and the caller's only when `escape`.
fn join(parts: Vec<Part>, wrapped: bool, escape: bool) -> String {
    parts
        .into_iter()
        .map(|p| match p {
            Part::Ours(s) if wrapped => shell_escape(&s),
            Part::Theirs(s) if wrapped && escape => shell_escape(&s),
            Part::Ours(s) | Part::Theirs(s) => s,
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

fn wrap(env: &Env, body: &str, sudo: Option<String>) -> String {
    let mut out = match sudo {
        Some(prefix) => prefix + " ",
        None => String::new(),
    };
    out.push_str(&env.shell());
    out.push_str(" \"");
    out.push_str(body);
    out.push('"');
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
    /// The prompt sudo is told to print, instead of the `sudo_prompt`
    /// setting.
    pub(crate) prompt: Option<&'a str>,
}

/// The real command `run`/`sudo` send.
pub(crate) fn remote(env: &Env, command: &str, spec: &RemoteSpec<'_>) -> String {
    let mut parts: Vec<Part> = export_part(env).into_iter().collect();
    parts.extend(cd_parts(env, Side::Remote));
    parts.push(Part::Theirs(command.to_string()));
    let escape = spec.shell_escape.unwrap_or_else(|| env.shell_escape());
    let sudo = spec.sudo.map(|(u, g)| sudo_prefix(env, u, g, spec.prompt));
    if spec.shell && env.use_shell() {
        wrap(env, &join(parts, true, escape), sudo)
    } else {
        let body = join(parts, false, escape);
        match sudo {
            Some(prefix) => format!("{prefix} {body}"),
            None => body,
        }
    }
}

/// The real command `local` runs: `lcd`, prefixes and exports, unwrapped
/// unless `use_shell`; behind `sudo -n` when `use_sudo`.
pub(crate) fn local(env: &Env, command: &str, use_shell: bool, use_sudo: bool) -> String {
    let mut parts = cd_parts(env, Side::Local);
    parts.extend(export_part(env));
    parts.push(Part::Theirs(command.to_string()));
    if use_sudo {
        // sudo must run the whole composition, so it is always shell-wrapped.
        format!(
            "sudo -n {}",
            wrap(env, &join(parts, true, env.shell_escape()), None)
        )
    } else if use_shell {
        wrap(env, &join(parts, true, env.shell_escape()), None)
    } else {
        join(parts, false, true)
    }
}

// --- twill's own commands ---------------------------------------------------
//
// The snippets below are the commands twill runs for itself (sudo
// transfers, existence checks, home directories). Each value in them is
// quoted; names the server prints back are read as data by the caller.

/// Prints the home directory of `user` (`~user` expanded by the shell).
/// A name that is not a plain user name is quoted, and so not expanded.
pub(crate) fn home_of(user: &str) -> String {
    format!("printf '%s\\n' {}", dir_word(&format!("~{user}")))
}

/// Whether `path` exists on the host, Fabric's `exists`: a leading `~`
/// and wildcards expand, nothing else does.
pub(crate) fn exists(path: &str) -> String {
    format!("stat {} >/dev/null", expand_path(path))
}

/// `test -<flag> <path>` (`d`: a directory, `e`: exists).
pub(crate) fn test(flag: char, path: &str) -> String {
    format!("test -{flag} {}", quote(path))
}

/// The paths matching a glob pattern, each ended by a NUL byte.
pub(crate) fn glob_list(pattern: &str) -> String {
    format!(
        "for f in {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then printf '%s\\0' \"$f\"; fi; done; true",
        glob_word(pattern)
    )
}

/// Copies `src` (a file or a directory, following it if it is a link)
/// into a new private directory under `temp_dir`, gives the directory and
/// the copy to `user`, and prints the directory's path.
pub(crate) fn copy_out(src: &str, temp_dir: &str, user: &str) -> String {
    let template = format!(
        "{}/.twill-download-XXXXXXXX",
        temp_dir.trim_end_matches('/')
    );
    format!(
        "d=$(mktemp -d {}) && cp -pRH -- {} \"$d\"/ && chown -R {} -- \"$d\" && printf '%s\\n' \"$d\"",
        quote(&template),
        quote(src),
        quote(user)
    )
}

/// Moves the uploaded file `tmp` onto `target`, writing through a
/// symlink at `target`, creating missing directories, and giving it
/// `mode`, else the mode of the file it replaces, else the one a new file
/// gets (0666 less the umask).
pub(crate) fn install(tmp: &str, target: &str, mode: Option<u32>) -> String {
    let mode = match mode {
        Some(m) => format!("m={m:o}"),
        None => "if [ -e \"$t\" ]; then m=$(stat -c %a -- \"$t\"); else m=$(printf %o $((0666 & ~0$(umask)))); fi".to_string(),
    };
    format!(
        "t={}; if [ -L \"$t\" ]; then t=$(readlink -f -- \"$t\") || exit 1; fi; \
         if [ -d \"$t\" ]; then echo \"$t is a directory\" >&2; exit 1; fi; {mode}; \
         mkdir -p -- \"$(dirname -- \"$t\")\" && mv -f -- {} \"$t\" && chmod \"$m\" -- \"$t\"",
        quote(target),
        quote(tmp)
    )
}

/// Makes `link` a symlink to `target`, replacing what is there.
pub(crate) fn link(target: &str, link: &str) -> String {
    format!(
        "mkdir -p -- \"$(dirname -- {l})\" && ln -sfn -- {} {l}",
        quote(target),
        l = quote(link)
    )
}

/// Removes `path` (a file, or a directory and everything in it).
pub(crate) fn remove(path: &str) -> String {
    format!("rm -rf -- {}", quote(path))
}

/// Removes the entry of the host `name` (`host` or `[host]:port`) from
/// the known_hosts file `file`: the command a changed host key message
/// offers, to run locally.
pub(crate) fn forget_host_key(name: &str, file: &Path) -> String {
    format!(
        "ssh-keygen -R {} -f {}",
        quote(name),
        quote(&file.to_string_lossy())
    )
}

// --- over SCP ---------------------------------------------------------------
//
// Where the server has no SFTP subsystem, files go over SCP and what SFTP
// gives besides the bytes comes from these commands, run in `sh` (see
// [`posix_sh`]) whatever the login shell. Every path is quoted; the paths
// they print back are data the caller reads, ended by NUL bytes.

/// `script` run by `sh`, whatever the user's login shell is.
pub(crate) fn posix_sh(script: &str) -> String {
    format!("sh -c {}", quote(script))
}

/// Prints the login directory, symlinks resolved, as SFTP's
/// `realpath(".")` gives it.
pub(crate) fn login_dir() -> String {
    "pwd -P".to_string()
}

/// Prepares an upload to `target` over SCP: follows symlinks at `target`
/// as `open(2)` would write through them (a relative link from the link's
/// directory, at most 40 of them), refuses a directory, creates missing
/// directories, then creates an empty temporary file beside the file
/// (`.<name>.twill-upload-XXXXXXXX`, mode 0600, made by `mktemp`) and
/// prints its path and the file's, each ended by a NUL byte.
pub(crate) fn scp_temp(target: &str) -> String {
    // `$(...)` drops trailing newlines, which a name may end with: the
    // `.` printed after each path keeps them, and is cut off again.
    format!(
        "t={q}; n=0; while [ -L \"$t\" ]; do n=$((n + 1)); if [ \"$n\" -gt 40 ]; then \
         printf '%s: too many levels of symbolic links\\n' {q} >&2; exit 1; fi; \
         l=$(readlink -- \"$t\" && echo .) || exit 1; l=${{l%??}}; case $l in \
         /*) t=$l ;; *) t=$(dirname -- \"$t\" && echo .) || exit 1; t=${{t%??}}/$l ;; esac; done; \
         if [ -d \"$t\" ]; then printf '%s is a directory\\n' \"$t\" >&2; exit 1; fi; \
         d=$(dirname -- \"$t\" && echo .) && d=${{d%??}} && mkdir -p -- \"$d\" && \
         f=$(mktemp -- \"$d/.${{t##*/}}.twill-upload-XXXXXXXX\") && printf '%s\\0%s\\0' \"$f\" \"$t\"",
        q = quote(target)
    )
}

/// Moves the finished upload `tmp` onto `target` (a file, not a link),
/// after giving it `mode`, else the mode of the file it replaces, else
/// 0644 less the umask (what a new file gets over SFTP): the target
/// changes at once, mode and content together.
pub(crate) fn scp_place(tmp: &str, target: &str, mode: Option<u32>) -> String {
    let mode = match mode {
        Some(m) => format!("m={:o}", m & 0o7777),
        None => "if [ -e \"$t\" ]; then m=$(stat -c %a -- \"$t\") || exit 1; \
                 else m=$(printf %o $((0644 & ~0$(umask)))); fi"
            .to_string(),
    };
    format!(
        "f={}; t={}; if [ -d \"$t\" ]; then printf '%s is a directory\\n' \"$t\" >&2; exit 1; fi; \
         {mode}; chmod \"$m\" -- \"$f\" && mv -f -- \"$f\" \"$t\"",
        quote(tmp),
        quote(target)
    )
}

/// Prints why the file `path` cannot be read, if it cannot: it is a
/// directory, it does not exist, or the user may not read it.
pub(crate) fn why_unreadable(path: &str) -> String {
    format!(
        "p={}; if [ -d \"$p\" ]; then echo 'it is a directory'; \
         elif [ ! -e \"$p\" ]; then echo 'No such file or directory'; \
         elif [ ! -r \"$p\" ]; then echo 'Permission denied'; fi",
        quote(path)
    )
}

// --- fabric.contrib.files ---------------------------------------------------
//
// The commands of `contrib::files`, byte for byte those of Fabric 1.x's
// `fabric/contrib/files.py` where the values are ordinary. A remote path
// is written as Fabric's `_expand_path` writes it, `"$(echo <path>)"`, so
// that `~` and wildcards expand ([`expand_path`]); every other value goes
// through the rule its builder states, each built on `quote`.

/// Fabric's `_expand_path`: `"$(echo <path>)"`, so that the shell expands
/// a leading `~` or `~user` and wildcards. After the tilde the path is a
/// [`glob_word`], so nothing else in it is active (Fabric writes it as it
/// is, where a `$(...)` or a `;` in a path runs).
pub(crate) fn expand_path(path: &str) -> String {
    let (tilde, rest) = split_tilde(path);
    let rest = if rest.is_empty() {
        String::new()
    } else {
        glob_word(rest)
    };
    format!("\"$(echo {tilde}{rest})\"")
}

/// `s` between single quotes whatever it holds, as Fabric writes an
/// `echo`ed line or a sed script, with [`quote`]'s rule for a `'` in it
/// (`'\''`).
fn single_quoted(s: &str) -> String {
    let quoted = quote(s);
    if quoted.starts_with('\'') {
        quoted.into_owned()
    } else {
        format!("'{s}'")
    }
}

/// Fabric's `exists`: `stat "$(echo <path>)"`.
pub(crate) fn stat_expanded(path: &str) -> String {
    format!("stat {}", expand_path(path))
}

/// `test -<flag> "$(echo <path>)"`: Fabric's `is_link` (`L`) and the
/// directory check of `upload_template` (`d`).
pub(crate) fn test_expanded(flag: char, path: &str) -> String {
    format!("test -{flag} {}", expand_path(path))
}

/// Fabric's `_escape_for_regex`, for the inside of double quotes: a
/// backslash before each character egrep reads as an operator
/// (`\^$|(){}[]*+?.`), then a backslash before each character double
/// quotes read (`\`, `$`, `` ` ``, `"`), so that the shell hands egrep a
/// regular expression that matches `text` literally and nothing in it is
/// active.
fn regex_escape(text: &str) -> String {
    let mut re = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$|(){}[]*+?.".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    let mut out = String::with_capacity(re.len() * 2);
    for c in re.chars() {
        if "\\$`\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pattern for egrep as one shell word, with `-e` before it when it
/// starts with `-` (egrep would take it for an option).
fn egrep_pattern(word: String) -> String {
    if word.starts_with("\"-") || word.starts_with("'-") {
        format!("-e {word}")
    } else {
        word
    }
}

/// A regular expression given as it is: between double quotes as Fabric
/// writes it when they keep every character of it (no `"` or `` ` ``, no
/// `$` that could start an expansion, no `\` they would read), else
/// [quoted](quote); either way egrep receives exactly `re`.
fn regex_word(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let literal = chars.iter().enumerate().all(|(i, &c)| {
        let next = chars.get(i + 1).copied();
        match c {
            '"' | '`' => false,
            '\\' => !matches!(next, None | Some('$' | '`' | '"' | '\\' | '\n')),
            '$' => matches!(next, None | Some('|' | ')' | '/' | ' ')),
            _ => true,
        }
    });
    if literal {
        format!("\"{re}\"")
    } else {
        quote(re).into_owned()
    }
}

/// Fabric's `contains`: `egrep "<text>" "$(echo <file>)"`, `egrep -i`
/// when not `case_sensitive`. With `escape`, `text` matches literally
/// (Fabric's escaping, `^...$` around it when `exact`); without, it is a
/// regular expression, written by [`regex_word`].
pub(crate) fn egrep(
    file: &str,
    text: &str,
    exact: bool,
    escape: bool,
    case_sensitive: bool,
) -> String {
    let pattern = if escape && exact {
        format!("\"^{}$\"", regex_escape(text))
    } else if escape {
        format!("\"{}\"", regex_escape(text))
    } else {
        regex_word(text)
    };
    let egrep = if case_sensitive { "egrep" } else { "egrep -i" };
    format!("{egrep} {} {}", egrep_pattern(pattern), expand_path(file))
}

/// The check of Fabric's `append`: whether `file` has `line` as a whole
/// line, or a line starting with it when `partial`:
/// `egrep "^<line>$" "$(echo <file>)"`.
pub(crate) fn egrep_line(file: &str, line: &str, partial: bool) -> String {
    let end = if partial { "" } else { "$" };
    format!(
        "egrep \"^{}{end}\" {}",
        regex_escape(line),
        expand_path(file)
    )
}

/// Fabric's `append` of one line: `echo '<line>' >> "$(echo <file>)"`.
///
/// With `escape`, the line lands verbatim: a `'` in it is written `'\''`
/// (Fabric's `'\\''` is meant for a wrapper that leaves backslashes
/// alone, and lets a line end the quoting), and a line `echo` could read
/// as an option or an escape (a leading `-`, a backslash) is written with
/// `printf '%s\n'`. Without `escape`, the line is the caller's shell text
/// between the single quotes, as in Fabric.
pub(crate) fn append_line(file: &str, line: &str, escape: bool) -> String {
    let target = expand_path(file);
    if !escape {
        format!("echo '{line}' >> {target}")
    } else if line.starts_with('-') || line.contains('\\') {
        format!("printf '%s\\n' {} >> {target}", single_quoted(line))
    } else {
        format!("echo {} >> {target}", single_quoted(line))
    }
}

/// Whether `s` ends in an odd number of backslashes, one that would
/// escape whatever follows it.
fn lone_backslash_at_end(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// A `/` written `\/`, as Fabric does, except where it is escaped already
/// (Fabric doubles that backslash, and the `/` after it ends the
/// expression).
fn sed_slashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut backslashes = 0;
    for c in s.chars() {
        if c == '/' && backslashes % 2 == 0 {
            out.push('\\');
        }
        out.push(c);
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
    }
    out
}

/// The script of Fabric's `sed` as one shell word:
/// `'/<limit>/ s/<before>/<after>/<flags>g'` (no address when `limit` is
/// empty).
///
/// As in Fabric, `/` is escaped in the patterns and `(`, `)` in `after`,
/// and the script is single-quoted; a `'` in it is written `'\''` (Fabric
/// writes `\'`, which ends the quoting). Only the script a caller means
/// can come out: a `/` already escaped stays so, a pattern ending in a
/// lone backslash is refused, and so are flags other than digits and `g`,
/// `i`, `I`, `m`, `M`, `p` (`e` runs lines as commands, `w` writes a
/// file). The error says which.
pub(crate) fn sed_script(
    before: &str,
    after: &str,
    limit: &str,
    flags: &str,
) -> Result<String, String> {
    for (what, pattern) in [("before", before), ("after", after), ("limit", limit)] {
        if lone_backslash_at_end(pattern) {
            return Err(format!(
                "the {what} pattern {pattern:?} ends in a lone backslash, which would escape the `/` after it"
            ));
        }
    }
    if let Some(c) = flags
        .chars()
        .find(|c| !(c.is_ascii_digit() || "gIiMmp".contains(*c)))
    {
        return Err(format!(
            "the flag `{c}` in {flags:?} is not one twill passes to sed (digits and g, i, I, m, M, p; `e` would run lines as commands and `w` write files)"
        ));
    }
    let before = sed_slashes(before);
    let after = sed_slashes(after).replace('(', "\\(").replace(')', "\\)");
    let limit = if limit.is_empty() {
        String::new()
    } else {
        format!("/{}/ ", sed_slashes(limit))
    };
    Ok(single_quoted(&format!(
        "{limit}s/{before}/{after}/{flags}g"
    )))
}

/// Fabric's `sed` command for a [script](sed_script):
/// `sed -i<backup> -r -e <script> "$(echo <file>)"` (`-E` where `uname`
/// said `Darwin`; on NetBSD, OpenBSD and QNX, whose sed has no `-i`, a
/// copy to `tmp`, sed into it, the backup and a move back). The backup
/// suffix is [quoted](quote) when it is not plain.
pub(crate) fn sed(file: &str, script: &str, backup: &str, platform: &str, tmp: &str) -> String {
    let file = expand_path(file);
    match platform {
        "NetBSD" | "OpenBSD" | "QNX" => {
            let tmp = quote(tmp);
            // Fabric copies the file onto itself when there is no suffix,
            // which fails; no suffix, no backup.
            let backup = if backup.is_empty() {
                String::new()
            } else {
                format!(" \\\n&& cp -p {file} {file}{}", quote(backup))
            };
            format!(
                "cp -p {file} {tmp} \\\n&& sed -r -e {script} {file} > {tmp}{backup} \\\n&& mv {tmp} {file}"
            )
        }
        platform => {
            let extended = if platform == "Darwin" { "-E" } else { "-r" };
            format!(
                "sed {} {extended} -e {script} {file}",
                quote(&format!("-i{backup}"))
            )
        }
    }
}

/// `uname`: what `sed` runs first, as Fabric does, to know the host's sed.
pub(crate) fn uname() -> String {
    "uname".to_string()
}

/// `cp "$(echo <path>)"{,.bak}`: `upload_template`'s copy of the file it
/// replaces (bash's brace expansion, as Fabric writes it).
pub(crate) fn backup_copy(path: &str) -> String {
    format!("cp {}{{,.bak}}", expand_path(path))
}

// --- Commands for whole projects --------------------------------------------
//
// `rsync_project` runs rsync here, over an OpenSSH client that connects
// exactly as twill's engine does; `upload_project` packs a directory with
// tar here and unpacks it on the host; `reboot` runs `reboot`.

/// The command `reboot` runs when given none (Fabric's default).
pub(crate) const REBOOT: &str = "reboot";

/// How an OpenSSH client reaches one host the way twill's engine does:
/// the engine's resolution of the host string, ssh_config and settings
/// (`operations/session.rs` fills it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshClient {
    /// The resolved name or address (ssh_config `HostName` applied).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_files: Vec<PathBuf>,
    /// Offer only the key files, not the agent's other keys.
    pub(crate) identities_only: bool,
    pub(crate) known_hosts: PathBuf,
    /// `StrictHostKeyChecking accept-new` rather than `yes`.
    pub(crate) accept_new: bool,
    pub(crate) connect_timeout: Duration,
    /// `ServerAliveInterval` and `ServerAliveCountMax`; `None`: off.
    pub(crate) keepalive: Option<(Duration, u32)>,
    /// The ssh_config file (`-F`), where it is not the client's default.
    pub(crate) ssh_config: Option<PathBuf>,
    /// Jump hosts, outermost first.
    pub(crate) jumps: Vec<SshClient>,
}

/// `%` doubled: ssh expands `%` tokens in `IdentityFile`,
/// `UserKnownHostsFile` and `ProxyCommand`.
fn ssh_percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// A file name as the value of an ssh `-o` option, which ssh splits on
/// whitespace and reads quotes and backslashes in: in double quotes, with
/// `"` and `\` escaped, when it holds any of those (or starts a comment).
fn ssh_option_path(path: &Path) -> String {
    let s = ssh_percent(&path.to_string_lossy());
    if s.is_empty()
        || s.starts_with('#')
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// Whole seconds for an ssh option, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The words (unquoted) of an OpenSSH client command that connects as `c`
/// says, up to the destination, which the caller adds. The first value of
/// an option is the one ssh keeps, so options given after these (rsync's
/// `ssh_opts`) cannot loosen the host key checking.
fn ssh_words(c: &SshClient) -> Vec<String> {
    let mut w: Vec<String> = vec!["ssh".into()];
    let opt = |w: &mut Vec<String>, o: String| {
        w.push("-o".into());
        w.push(o);
    };
    if let Some(config) = &c.ssh_config {
        w.push("-F".into());
        w.push(config.to_string_lossy().into_owned());
    }
    for key in &c.identity_files {
        w.push("-i".into());
        w.push(ssh_percent(&key.to_string_lossy()));
    }
    w.push("-p".into());
    w.push(c.port.to_string());
    if c.identities_only {
        opt(&mut w, "IdentitiesOnly=yes".into());
    }
    opt(
        &mut w,
        format!("UserKnownHostsFile={}", ssh_option_path(&c.known_hosts)),
    );
    opt(&mut w, "GlobalKnownHostsFile=/dev/null".into());
    let strict = if c.accept_new { "accept-new" } else { "yes" };
    opt(&mut w, format!("StrictHostKeyChecking={strict}"));
    opt(
        &mut w,
        format!("ConnectTimeout={}", whole_seconds(c.connect_timeout)),
    );
    if let Some((interval, count)) = c.keepalive {
        opt(
            &mut w,
            format!("ServerAliveInterval={}", whole_seconds(interval)),
        );
        opt(&mut w, format!("ServerAliveCountMax={count}"));
    }
    if let Some((jump, earlier)) = c.jumps.split_last() {
        let proxy = proxy_command(jump, earlier, &c.host, c.port);
        opt(&mut w, format!("ProxyCommand={}", ssh_percent(&proxy)));
    }
    w
}

/// The shell command of a `ProxyCommand`: an OpenSSH client to `jump`
/// (itself through `earlier`) that connects its standard input and output
/// to `host:port` (`-W`), with every value quoted. (`ssh -J` would not
/// do: OpenSSH gives the jump host's client none of the options above,
/// only `-F`.)
fn proxy_command(jump: &SshClient, earlier: &[SshClient], host: &str, port: u16) -> String {
    let hop = SshClient {
        jumps: earlier.to_vec(),
        ..jump.clone()
    };
    let mut words = ssh_words(&hop);
    words.extend([
        "-l".into(),
        hop.user.clone(),
        "-W".into(),
        format!("[{host}]:{port}"),
        hop.host.clone(),
    ]);
    words
        .iter()
        .map(|w| quote(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word of rsync's `--rsh` command, which rsync splits by itself (no
/// shell): on spaces, with words in single or double quotes where a
/// doubled quote stands for itself, and backslashes as plain characters.
fn rsh_word(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && !s.contains([' ', '\'', '"']) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', "''")))
    }
}

/// A local path for rsync: a leading `~` or `~user` expands; in a source
/// (`glob`), so do `*`, `?` and `[...]`; the rest is quoted.
fn local_path_word(path: &str, glob: bool) -> String {
    let (tilde, rest) = split_tilde(path);
    let rest = match (rest.is_empty(), glob) {
        (true, _) if !tilde.is_empty() => String::new(),
        (_, true) => glob_word(rest),
        (_, false) => quote(rest).into_owned(),
    };
    format!("{tilde}{rest}")
}

/// What one `rsync_project` call says, for [`rsync`].
#[derive(Debug, Clone)]
pub(crate) struct Rsync<'a> {
    pub(crate) delete: bool,
    pub(crate) exclude: &'a [String],
    /// rsync's options, shell text as the caller wrote them (Fabric's
    /// `default_opts`, `-pthrvz`).
    pub(crate) default_opts: &'a str,
    /// More options, shell text as the caller wrote them.
    pub(crate) extra_opts: &'a str,
    /// More words for the OpenSSH client, in rsync's `--rsh` syntax, as
    /// the caller wrote them.
    pub(crate) ssh_opts: &'a str,
    pub(crate) local_dir: &'a str,
    pub(crate) remote_dir: &'a str,
    pub(crate) upload: bool,
}

/// Fabric's `rsync_project` command, its words in Fabric's order:
/// `rsync [--delete] [--exclude X]... <default_opts> <extra_opts>
/// --rsh=<ssh ...> <from> <to>`, where the remote end is
/// `user@host:dir` (`user@[v6]:dir` for an IPv6 address) and `--rsh` is
/// an OpenSSH client that connects as `client` says.
pub(crate) fn rsync(spec: &Rsync<'_>, client: &SshClient) -> String {
    let mut words: Vec<String> = vec!["rsync".into()];
    if spec.delete {
        words.push("--delete".into());
    }
    for pattern in spec.exclude {
        words.push(format!("--exclude {}", quote(pattern)));
    }
    for opts in [spec.default_opts, spec.extra_opts] {
        if !opts.trim().is_empty() {
            words.push(opts.trim().to_string());
        }
    }
    let mut rsh: Vec<String> = ssh_words(client)
        .iter()
        .map(|w| rsh_word(w).into_owned())
        .collect();
    if !spec.ssh_opts.trim().is_empty() {
        rsh.push(spec.ssh_opts.trim().to_string());
    }
    words.push(format!("--rsh={}", quote(&rsh.join(" "))));
    let host = if client.host.contains(':') {
        format!("[{}]", client.host)
    } else {
        client.host.clone()
    };
    let remote = quote(&format!("{}@{host}:{}", client.user, spec.remote_dir)).into_owned();
    let local = local_path_word(spec.local_dir, spec.upload);
    if spec.upload {
        words.extend([local, remote]);
    } else {
        words.extend([remote, local]);
    }
    words.join(" ")
}

/// A name for tar's list of members: one starting with `-` gets `./`.
fn member(name: &str) -> String {
    if name.starts_with('-') {
        quote(&format!("./{name}")).into_owned()
    } else {
        quote(name).into_owned()
    }
}

/// Packs the directory `name` in `parent` into the gzipped tarball
/// `tarball` (Fabric's `tar -czf <tarball> -C <parent> <name>`).
pub(crate) fn tar_create(tarball: &Path, parent: &Path, name: &str) -> String {
    format!(
        "tar -czf {} -C {} {}",
        quote(&tarball.to_string_lossy()),
        quote(&parent.to_string_lossy()),
        member(name)
    )
}

/// Unpacks the gzipped tarball `tarball` here (Fabric's `tar -xzf`).
pub(crate) fn tar_extract(tarball: &str) -> String {
    format!("tar -xzf {}", member(tarball))
}

/// Removes the file `path` (Fabric's `rm -f`).
pub(crate) fn remove_file(path: &str) -> String {
    format!("rm -f {}", member(path))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote("/srv/app-1.2_x"), "/srv/app-1.2_x");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(touch x)"), "'$(touch x)'");
        assert_eq!(quote("~/x"), "'~/x'");
    }

    #[test]
    fn dir_word_keeps_fabric_form_for_ordinary_paths() {
        assert_eq!(dir_word("/srv/my app"), "/srv/my\\ app");
        assert_eq!(dir_word("~/releases"), "~/releases");
        assert_eq!(dir_word("~deploy/a b"), "~deploy/a\\ b");
        assert_eq!(dir_word("~"), "~");
        assert_eq!(
            dir_word("/tmp;touch${IFS}/tmp/p"),
            "'/tmp;touch${IFS}/tmp/p'"
        );
        assert_eq!(dir_word("~/x$(id)"), "~/'x$(id)'");
        assert_eq!(dir_word("/a\"b'c"), "'/a\"b'\\''c'");
        // A `~` that is not a user name prefix is just a character.
        assert_eq!(dir_word("~$(id)/x"), "'~$(id)/x'");
    }

    #[test]
    fn glob_word_keeps_wildcards_active_only() {
        assert_eq!(glob_word("/var/log/*.log"), "/var/log/*.log");
        assert_eq!(glob_word("/a b/file?.[0-9]"), "'/a b/file'?.[0-9]");
        assert_eq!(glob_word("/x/$(id)*"), "'/x/$(id)'*");
        assert_eq!(glob_word("/x/[$(id)]"), "'/x/[$(id)]'");
        assert_eq!(glob_word(""), "''");
    }

    #[test]
    fn shell_escape_escapes_only_what_double_quotes_read() {
        assert_eq!(
            shell_escape(r#"echo "$HOME" `id`"#),
            r#"echo \"\$HOME\" \`id\`"#
        );
        assert_eq!(shell_escape(r"cd /my\ app"), r"cd /my\ app");
        assert_eq!(shell_escape(r"A=\$x"), r"A=\\\$x");
        assert_eq!(shell_escape(r#"x\""#), r#"x\\\""#);
        assert_eq!(shell_escape("end\\"), "end\\\\");
        assert_eq!(shell_escape(r"a\\b"), r"a\\\b");
    }

    #[test]
    fn own_commands_quote_every_value() {
        assert_eq!(home_of("deploy"), "printf '%s\\n' ~deploy");
        assert_eq!(home_of("x;id"), "printf '%s\\n' '~x;id'");
        assert_eq!(exists("~/a b*"), "stat \"$(echo ~/'a b'*)\" >/dev/null");
        assert_eq!(exists("/x$(id)"), "stat \"$(echo '/x$(id)')\" >/dev/null");
        assert_eq!(test('d', "/a\"b"), "test -d '/a\"b'");
        assert_eq!(remove("/tmp/a'b"), "rm -rf -- '/tmp/a'\\''b'");
        assert!(copy_out("/x/$(id)", "/tmp", "u").contains("cp -pRH -- '/x/$(id)' \"$d\"/"));
        assert!(install("/tmp/t", "/etc/a`id`", Some(0o640)).starts_with("t='/etc/a`id`'; "));
        assert_eq!(posix_sh("test -d 'a b'"), r#"sh -c 'test -d '\''a b'\'''"#);
        assert!(scp_temp("/x/it's $(id)").starts_with(r#"t='/x/it'\''s $(id)'; "#));
        let place = scp_place("/x/.t", "/x/a;b", Some(0o640));
        assert!(place.starts_with("f=/x/.t; t='/x/a;b'; "), "{place}");
        assert!(place.contains("; m=640; chmod"), "{place}");
        assert!(why_unreadable("/x`id`").starts_with("p='/x`id`'; "));
        assert_eq!(
            forget_host_key("[127.0.0.1]:2222", Path::new("/home/u/it's/known_hosts")),
            "ssh-keygen -R '[127.0.0.1]:2222' -f '/home/u/it'\\''s/known_hosts'"
        );
    }

    /// Runs `script` in `sh`; returns whether it succeeded, its stdout and
    /// its stderr.
    fn sh(script: &str) -> (bool, Vec<u8>, String) {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), out.stdout, err)
    }

    /// The commands of an upload over SCP, run by a local `sh` on a local
    /// directory.
    #[test]
    fn the_scp_commands_place_an_upload_as_they_say() {
        use std::os::unix::fs::PermissionsExt;
        let mode_of = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        // A name a shell would run, and one that ends in a newline, behind
        // a symlink, in a directory that does not exist yet.
        let real = format!("{d}/new dir/$(touch ran) it's\n");
        let link = format!("{d}/link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (ok, out, err) = sh(&scp_temp(&link));
        assert!(ok, "{err}");
        let printed: Vec<&[u8]> = out.split(|b| *b == 0).collect();
        let tmp = std::str::from_utf8(printed[0]).unwrap().to_string();
        assert_eq!(std::str::from_utf8(printed[1]).unwrap(), real);
        assert_eq!(printed[2], b"");
        let prefix = format!("{d}/new dir/.$(touch ran) it's\n.twill-upload-");
        assert!(tmp.starts_with(&prefix), "{tmp:?}");
        assert_eq!(std::fs::metadata(&tmp).unwrap().len(), 0);
        assert_eq!(mode_of(&tmp), 0o600);
        std::fs::write(&tmp, "new").unwrap();
        let (ok, _, err) = sh(&scp_place(&tmp, &real, Some(0o640)));
        assert!(ok, "{err}");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(mode_of(&real), 0o640);
        assert!(!std::path::Path::new(&tmp).exists());
        // Without a mode, the file replaced keeps its own.
        let (_, out, _) = sh(&scp_temp(&real));
        let tmp = out.split(|b| *b == 0).next().unwrap().to_vec();
        let tmp = String::from_utf8(tmp).unwrap();
        let (ok, _, err) = sh(&scp_place(&tmp, &real, None));
        assert!(ok, "{err}");
        assert_eq!(mode_of(&real), 0o640);
        assert!(!dir.path().join("ran").exists());
        assert!(!std::path::Path::new("ran").exists());
        // A directory is refused, and says so.
        let (ok, out, err) = sh(&scp_temp(d));
        assert!(
            !ok && out.is_empty() && err.contains("is a directory"),
            "{err}"
        );
        let (ok, out, _) = sh(&why_unreadable(&format!("{d}/nothing")));
        assert!(ok);
        assert_eq!(out, b"No such file or directory\n");
    }

    fn client(host: &str) -> SshClient {
        SshClient {
            host: host.into(),
            port: 2222,
            user: "deploy".into(),
            identity_files: vec![PathBuf::from("/keys/id_ed25519")],
            identities_only: true,
            known_hosts: PathBuf::from("/home/u/.ssh/known_hosts"),
            accept_new: false,
            connect_timeout: Duration::from_secs(10),
            keepalive: Some((Duration::from_secs(15), 3)),
            ssh_config: Some(PathBuf::from("/dev/null")),
            jumps: Vec::new(),
        }
    }

    fn spec(exclude: &[String], upload: bool) -> Rsync<'_> {
        Rsync {
            delete: false,
            exclude,
            default_opts: "-pthrvz",
            extra_opts: "",
            ssh_opts: "",
            local_dir: "build/",
            remote_dir: "/srv/app",
            upload,
        }
    }

    const SSH: &str = "ssh -F /dev/null -i /keys/id_ed25519 -p 2222 -o IdentitiesOnly=yes \
        -o UserKnownHostsFile=/home/u/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 \
        -o ServerAliveCountMax=3";

    #[test]
    fn rsync_keeps_fabric_order_and_connects_as_the_engine_does() {
        assert_eq!(
            rsync(&spec(&[], true), &client("web1")),
            format!("rsync -pthrvz --rsh='{SSH}' build/ deploy@web1:/srv/app")
        );
        assert_eq!(
            rsync(&spec(&[], false), &client("web1")),
            format!("rsync -pthrvz --rsh='{SSH}' deploy@web1:/srv/app build/")
        );
        let exclude = ["*.pyc".to_string(), "it's here".to_string()];
        let full = Rsync {
            delete: true,
            extra_opts: " --chmod=Dg+s ",
            ssh_opts: "-o Compression=yes",
            ..spec(&exclude, true)
        };
        let mut c = client("::1");
        c.accept_new = true;
        c.keepalive = None;
        let cmd = rsync(&full, &c);
        assert!(
            cmd.starts_with(
                "rsync --delete --exclude '*.pyc' --exclude 'it'\\''s here' -pthrvz --chmod=Dg+s --rsh='ssh "
            ),
            "{cmd}"
        );
        assert!(
            cmd.ends_with(
                "StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o Compression=yes' build/ 'deploy@[::1]:/srv/app'"
            ),
            "{cmd}"
        );
        assert!(!cmd.contains("ServerAlive"), "{cmd}");
    }

    #[test]
    fn rsync_quotes_every_value_for_each_reader() {
        let mut c = client("web1");
        c.identity_files = vec![PathBuf::from("/keys/it's 100%")];
        c.known_hosts = PathBuf::from("/home/a b/known \"hosts\"");
        c.ssh_config = None;
        let s = Rsync {
            local_dir: "~/my dir/*.txt",
            remote_dir: "/srv/$(id)",
            ..spec(&[], true)
        };
        // The shell reads the whole; rsync splits --rsh itself (a quote
        // doubled inside quotes); ssh reads `-o` values with double quotes
        // and expands `%`.
        let rsh = "ssh '/keys/it''s 100%%' -p 2222 -o IdentitiesOnly=yes \
            -o 'UserKnownHostsFile=\"/home/a b/known \\\"hosts\\\"\"' -o GlobalKnownHostsFile=/dev/null \
            -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=3"
            .replace("ssh '", "ssh -i '");
        assert_eq!(
            rsync(&s, &c),
            format!(
                "rsync -pthrvz --rsh={} ~/'my dir/'*.txt 'deploy@web1:/srv/$(id)'",
                quote(&rsh)
            )
        );
        // A download's local directory is a destination: no wildcards.
        let down = Rsync {
            local_dir: "out/*",
            ..spec(&[], false)
        };
        assert!(rsync(&down, &client("web1")).ends_with(" deploy@web1:/srv/app 'out/*'"));
    }

    #[test]
    fn jump_hosts_become_proxy_commands_that_connect_the_same_way() {
        let mut c = client("10.0.0.5");
        let mut jump = client("bastion");
        jump.user = "ops".into();
        jump.port = 22;
        c.jumps = vec![jump];
        let inner = "ssh -F /dev/null -i /keys/id_ed25519 -p 22 -o IdentitiesOnly=yes \
            -o UserKnownHostsFile=/home/u/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null \
            -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 \
            -o ServerAliveCountMax=3 -l ops -W '[10.0.0.5]:2222' bastion";
        assert_eq!(
            ssh_words(&c).last().unwrap(),
            &format!("ProxyCommand={inner}")
        );
        // In rsync's words the ProxyCommand is one quoted word (its quotes
        // doubled), and in the shell's the whole --rsh value is one word.
        let rsh = format!("{SSH} -o 'ProxyCommand={}'", inner.replace('\'', "''"));
        assert!(
            rsync(&spec(&[], true), &c).contains(&format!("--rsh={} build/", quote(&rsh))),
            "{}",
            rsync(&spec(&[], true), &c)
        );
        // Two jumps: the inner ProxyCommand is nested, and `%` is doubled
        // once for each ssh that expands the text (three here).
        let mut first = client("outer");
        first.identity_files = vec![PathBuf::from("/k/100%")];
        c.jumps.insert(0, first);
        let words = ssh_words(&c);
        let proxy = words.last().unwrap();
        assert!(proxy.starts_with("ProxyCommand=ssh "), "{proxy}");
        assert!(proxy.contains("-i /k/100%%%%%%%% -p 2222"), "{proxy}");
        assert!(
            proxy.contains(" -l deploy -W '\\''[bastion]:22'\\'' outer' "),
            "{proxy}"
        );
        assert!(
            proxy.ends_with(" -l ops -W '[10.0.0.5]:2222' bastion"),
            "{proxy}"
        );
    }

    #[test]
    fn project_tarball_commands_quote_names() {
        assert_eq!(
            tar_create(
                Path::new("/tmp/x/my app.tar.gz"),
                Path::new("/src"),
                "my app"
            ),
            "tar -czf '/tmp/x/my app.tar.gz' -C /src 'my app'"
        );
        assert_eq!(
            tar_create(Path::new("/t/-x.tar.gz"), Path::new("/s"), "-x"),
            "tar -czf /t/-x.tar.gz -C /s ./-x"
        );
        assert_eq!(tar_extract("app.tar.gz"), "tar -xzf app.tar.gz");
        assert_eq!(remove_file("a;b.tar.gz"), "rm -f 'a;b.tar.gz'");
        assert_eq!(remove_file("-r.tar.gz"), "rm -f ./-r.tar.gz");
    }

    #[test]
    fn path_value_expands_names_only() {
        assert_eq!(path_value("$PATH:/q"), "$PATH:/q");
        assert_eq!(path_value("${HOME}/bin:$PATH"), "${HOME}/bin:$PATH");
        assert_eq!(path_value("$(id):\"x`"), "\\$(id):\\\"x\\`");
        assert_eq!(path_value("${x:-$(id)}"), "\\${x:-\\$(id)}");
    }
}

#[cfg(test)]
mod files_unit {
    use super::*;

    /// The `sed` command for /etc/app.conf on Linux.
    fn sed_cmd(before: &str, after: &str, limit: &str, flags: &str) -> Result<String, String> {
        let script = sed_script(before, after, limit, flags)?;
        Ok(sed(
            "/etc/app.conf",
            &script,
            ".bak",
            "Linux",
            "/tmp/0123abcd",
        ))
    }

    #[test]
    fn paths_expand_as_fabric_writes_them_and_nothing_else_runs() {
        assert_eq!(expand_path("/etc/hosts"), r#""$(echo /etc/hosts)""#);
        assert_eq!(expand_path("~/conf/*.ini"), r#""$(echo ~/conf/*.ini)""#);
        assert_eq!(expand_path("~deploy"), r#""$(echo ~deploy)""#);
        assert_eq!(expand_path("/srv/my app"), r#""$(echo '/srv/my app')""#);
        assert_eq!(
            expand_path("/tmp/x$(touch /tmp/p);id"),
            r#""$(echo '/tmp/x$(touch /tmp/p);id')""#
        );
        assert_eq!(expand_path("/a\"b`id`"), r#""$(echo '/a"b`id`')""#);
        assert_eq!(stat_expanded("/etc/hosts"), r#"stat "$(echo /etc/hosts)""#);
        assert_eq!(
            test_expanded('L', "/etc/alternatives/editor"),
            r#"test -L "$(echo /etc/alternatives/editor)""#
        );
        assert_eq!(test_expanded('d', "~/conf"), r#"test -d "$(echo ~/conf)""#);
        assert_eq!(
            backup_copy("/etc/nginx/nginx.conf"),
            r#"cp "$(echo /etc/nginx/nginx.conf)"{,.bak}"#
        );
        assert_eq!(uname(), "uname");
    }

    #[test]
    fn contains_is_fabrics_egrep() {
        assert_eq!(
            egrep("/etc/hosts", "127.0.0.1", false, true, true),
            r#"egrep "127\\.0\\.0\\.1" "$(echo /etc/hosts)""#
        );
        assert_eq!(
            egrep("/etc/hosts", "127.0.0.1", true, true, true),
            r#"egrep "^127\\.0\\.0\\.1$" "$(echo /etc/hosts)""#
        );
        assert_eq!(
            egrep("/etc/hosts", "Localhost", false, true, false),
            r#"egrep -i "Localhost" "$(echo /etc/hosts)""#
        );
        // Every character double quotes read is escaped: text stays text.
        assert_eq!(
            egrep("/f", r#"$(touch /tmp/p) `id` "q" \"#, false, true, true),
            r#"egrep "\\\$\\(touch /tmp/p\\) \`id\` \"q\" \\\\" "$(echo /f)""#
        );
        // Without escaping: the regular expression as written, in double
        // quotes where they keep it, single quotes where they would not.
        assert_eq!(
            egrep("/f", "^(a|b)+ [0-9]$", false, false, true),
            r#"egrep "^(a|b)+ [0-9]$" "$(echo /f)""#
        );
        assert_eq!(
            egrep("/f", r"^a\.b$", true, false, true),
            r#"egrep "^a\.b$" "$(echo /f)""#
        );
        assert_eq!(
            egrep("/f", "a$(id)", false, false, true),
            "egrep 'a$(id)' \"$(echo /f)\""
        );
        assert_eq!(
            egrep("/f", r#"a\$b"c'"#, false, false, true),
            r#"egrep 'a\$b"c'\''' "$(echo /f)""#
        );
        // A pattern egrep would take for an option.
        assert_eq!(
            egrep("/f", "-A INPUT", false, true, true),
            r#"egrep -e "-A INPUT" "$(echo /f)""#
        );
    }

    #[test]
    fn append_is_fabrics_echo_and_lines_land_verbatim() {
        assert_eq!(
            append_line("/etc/hosts", "127.0.0.1 web", true),
            r#"echo '127.0.0.1 web' >> "$(echo /etc/hosts)""#
        );
        assert_eq!(
            append_line("~/.profile", "export A=\"$HOME\" `id` $(id)", true),
            r#"echo 'export A="$HOME" `id` $(id)' >> "$(echo ~/.profile)""#
        );
        assert_eq!(
            append_line("/f", "it's", true),
            r#"echo 'it'\''s' >> "$(echo /f)""#
        );
        assert_eq!(
            append_line("/f", r"a\nb\", true),
            r#"printf '%s\n' 'a\nb\' >> "$(echo /f)""#
        );
        assert_eq!(
            append_line("/f", "-e x", true),
            r#"printf '%s\n' '-e x' >> "$(echo /f)""#
        );
        assert_eq!(
            append_line("/f", r"it'\''s", false),
            r#"echo 'it'\''s' >> "$(echo /f)""#
        );
        assert_eq!(
            egrep_line("/etc/hosts", "127.0.0.1 web", false),
            r#"egrep "^127\\.0\\.0\\.1 web$" "$(echo /etc/hosts)""#
        );
        assert_eq!(
            egrep_line("/f", "export A=$x", true),
            r#"egrep "^export A=\\\$x" "$(echo /f)""#
        );
    }

    #[test]
    fn sed_is_fabrics_command() {
        assert_eq!(
            sed_cmd("Listen 80", "Listen 8080", "", "").unwrap(),
            r#"sed -i.bak -r -e 's/Listen 80/Listen 8080/g' "$(echo /etc/app.conf)""#
        );
        let script = sed_script("http://a(1)", "https://b(2)", "^Server", "i").unwrap();
        assert_eq!(script, r"'/^Server/ s/http:\/\/a(1)/https:\/\/b\(2\)/ig'");
        assert_eq!(
            sed("/etc/app.conf", &script, "", "Linux", "/tmp/x"),
            r#"sed -i -r -e '/^Server/ s/http:\/\/a(1)/https:\/\/b\(2\)/ig' "$(echo /etc/app.conf)""#
        );
        // uncomment's and comment's patterns.
        assert_eq!(
            sed_cmd("^([[:space:]]*)#[[:space:]]?", r"\1", "foo", "").unwrap(),
            r#"sed -i.bak -r -e '/foo/ s/^([[:space:]]*)#[[:space:]]?/\1/g' "$(echo /etc/app.conf)""#
        );
        assert_eq!(
            sed_cmd("^(foo)$", r"#\1", "", "").unwrap(),
            r#"sed -i.bak -r -e 's/^(foo)$/#\1/g' "$(echo /etc/app.conf)""#
        );
        assert_eq!(
            sed("/etc/app.conf", "'s/a/b/g'", ".bak", "Darwin", "/tmp/x"),
            r#"sed -i.bak -E -e 's/a/b/g' "$(echo /etc/app.conf)""#
        );
        assert_eq!(
            sed("/etc/app.conf", "'s/a/b/g'", ".bak", "OpenBSD", "/tmp/0123abcd"),
            "cp -p \"$(echo /etc/app.conf)\" /tmp/0123abcd \\\n&& sed -r -e 's/a/b/g' \"$(echo /etc/app.conf)\" > /tmp/0123abcd \\\n&& cp -p \"$(echo /etc/app.conf)\" \"$(echo /etc/app.conf)\".bak \\\n&& mv /tmp/0123abcd \"$(echo /etc/app.conf)\""
        );
        assert!(!sed("/f", "'s/a/b/g'", "", "NetBSD", "/tmp/x")
            .contains("cp -p \"$(echo /f)\" \"$(echo /f)\""));
    }

    #[test]
    fn sed_keeps_values_in_the_script_and_the_script_in_its_quotes() {
        // A `'` is written for the shell, not for sed.
        assert_eq!(
            sed_cmd("it's", "it is", "", "").unwrap(),
            r#"sed -i.bak -r -e 's/it'\''s/it is/g' "$(echo /etc/app.conf)""#
        );
        // An escaped `/` stays escaped, so it cannot end the replacement
        // and add the `e` flag.
        assert_eq!(sed_script("x", r"y\/e", "", "").unwrap(), r"'s/x/y\/e/g'");
        assert!(sed_script("e touch /tmp/p", "", r"x\", "")
            .unwrap_err()
            .contains("limit"));
        assert!(sed_script(r"a\\\", "b", "", "")
            .unwrap_err()
            .contains("lone backslash"));
        for flags in ["e", "w /tmp/x", "gI;"] {
            assert!(
                sed_script("a", "b", "", flags)
                    .unwrap_err()
                    .contains("flag"),
                "{flags}"
            );
        }
        assert_eq!(
            sed("/x;id", "'s/a/b/g'", ".$(id)", "Linux", "/tmp/x"),
            r#"sed '-i.$(id)' -r -e 's/a/b/g' "$(echo '/x;id')""#
        );
    }
}

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

fn export_part(env: &Env) -> Option<Part> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let path = env.path();
    if !path.is_empty() {
        // Fabric writes the addition between quotes that close and reopen
        // the value's own, so it sits unquoted; a path with shell
        // characters is quoted there instead (`quote` leaves a plain one
        // as it is).
        let word = format!("\"{}\"", quote(&path));
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
        // A name is plain, and stays as it is, unless it holds shell
        // characters.
        .map(|(k, v)| format!("{}=\"{v}\"", quote(k)))
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

/// The script the bash of the `shell` setting gets after `-c` for a
/// remote command: the exports, `cd`, prefixes and the command, as
/// [`remote`] composes them inside the wrapper, unescaped. `None` where
/// the command does not go to bash that way: not wrapped (`shell` false,
/// or the `use_shell` setting), a `shell` setting whose program is not
/// `bash`, or no escaping (the shell outside would then change the text on
/// its way).
pub(crate) fn bash_script(
    env: &Env,
    command: &str,
    shell: bool,
    shell_escape: Option<bool>,
) -> Option<String> {
    let escape = shell_escape.unwrap_or_else(|| env.shell_escape());
    let program = env.shell();
    let bash = program
        .split_whitespace()
        .next()
        .and_then(|p| Path::new(p).file_name())
        .is_some_and(|name| name == "bash");
    if !(shell && env.use_shell() && escape && bash) {
        return None;
    }
    let spec = RemoteSpec {
        shell: false,
        shell_escape: Some(escape),
        ..RemoteSpec::default()
    };
    Some(remote(env, command, &spec))
}

/// The local program, and its argument, that reads a script on standard
/// input and checks its syntax without running it.
pub(crate) const SYNTAX_CHECK: [&str; 2] = ["bash", "-n"];

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

mod files;
mod project;

pub(crate) use files::{
    append_line, backup_copy, backup_dated, egrep, egrep_line, expand_path, sed, sed_script,
    stat_expanded, test_expanded, uname,
};
pub(crate) use project::{remove_file, rsync, tar_create, tar_extract, Rsync, SshClient, REBOOT};

/// What a tmux pane of `--panes` runs: keys typed in it go, unbuffered and
/// unechoed, into the FIFO `input` (the worker's standard input; `cat`
/// reads the pane through descriptor 3, since a command run in the
/// background of a script reads /dev/null otherwise), the
/// host's output file `out` is shown as it grows, until the file `end`
/// (the outcome) appears; then the outcome, and the pane closes on a key,
/// or stays when `keep`.
#[cfg_attr(not(feature = "live"), allow(dead_code))]
pub(crate) fn pane(out: &Path, input: &Path, end: &Path, keep: bool) -> String {
    let (out, input, end) = (
        quote(&out.to_string_lossy()).into_owned(),
        quote(&input.to_string_lossy()).into_owned(),
        quote(&end.to_string_lossy()).into_owned(),
    );
    let last = if keep {
        "exec tail -f /dev/null".to_string()
    } else {
        "printf 'Press a key to close this pane.'; stty -icanon -echo min 1; dd bs=1 count=1 >/dev/null 2>&1".to_string()
    };
    format!(
        "stty -icanon -echo -isig -ixon min 1 time 0 2>/dev/null; \
         exec 3<&0; cat <&3 > {input} & keys=$!; \
         tail -n +1 -f {out} & shown=$!; \
         while [ ! -e {end} ]; do sleep 0.2; done; sleep 0.3; \
         kill $keys $shown 2>/dev/null; stty sane 2>/dev/null; \
         cat {end}; {last}"
    )
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

    #[test]
    fn path_value_expands_names_only() {
        assert_eq!(path_value("$PATH:/q"), "$PATH:/q");
        assert_eq!(path_value("${HOME}/bin:$PATH"), "${HOME}/bin:$PATH");
        assert_eq!(path_value("$(id):\"x`"), "\\$(id):\\\"x\\`");
        assert_eq!(path_value("${x:-$(id)}"), "\\${x:-\\$(id)}");
    }
}

//! The commands of Fabric's `fabric.contrib.files`.
//!
//! They are byte for byte those of Fabric 1.x's
//! `fabric/contrib/files.py` where the values are ordinary. A remote path
//! is written as Fabric's `_expand_path` writes it, `"$(echo <path>)"`, so
//! that `~` and wildcards expand ([`expand_path`]); every other value goes
//! through the rule its builder states, each built on `quote`.

use super::*;

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

/// `cp -p -- "$(echo <path>)" "$(echo <path>)".<stamp>`: a dated copy of
/// a configuration file about to be replaced, with its owner, mode and
/// times. `stamp` holds digits and dashes only.
pub(crate) fn backup_dated(path: &str, stamp: &str) -> String {
    debug_assert!(stamp.chars().all(|c| c.is_ascii_digit() || c == '-'));
    let path = expand_path(path);
    format!("cp -p -- {path} {path}.{stamp}")
}

#[cfg(test)]
mod unit {
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

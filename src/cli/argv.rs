//! Hiding secrets given on the command line from other local users.
//!
//! Any user of the machine can read a process's command line
//! (`/proc/<pid>/cmdline`, `ps`), and a parallel worker, being a `fork()`ed
//! copy, shows its parent's. Once the command line is parsed, the bytes of
//! a password given as an option are overwritten with `x` in the process's
//! own argument area, which is where the kernel reads the command line
//! from; workers forked afterwards copy the overwritten bytes.

use std::ffi::OsString;
use std::ops::Range;

use clap::Command;

use super::args::set_value_ranges;

/// Bytes of the word `argv[index]` to hide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) index: usize,
    pub(super) bytes: Range<usize>,
}

/// An option's value as it stands in the command line: the option's id,
/// the word that holds the value, and where in that word the value starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OptionValue {
    pub(super) id: String,
    pub(super) index: usize,
    pub(super) start: usize,
    pub(super) value: String,
}

impl OptionValue {
    /// The span of `bytes` of the value (relative to the value).
    pub(super) fn span(&self, bytes: Range<usize>) -> Span {
        Span {
            index: self.index,
            bytes: self.start + bytes.start..self.start + bytes.end,
        }
    }
}

/// Every option value in `argv` (the first word is the program name),
/// found the way clap finds them: `--name value`, `--name=value`, `-x
/// value`, `-xvalue`, `-x=value` and clusters of short flags ending in an
/// option that takes a value (`-aPp value`); nothing after `--`.
pub(super) fn option_values(cmd: &Command, argv: &[OsString]) -> Vec<OptionValue> {
    let takes_value = |a: &&clap::Arg| a.get_action().takes_values();
    let mut found = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let Some(word) = argv[i].to_str() else {
            i += 1;
            continue;
        };
        if word == "--" {
            break;
        }
        // Where the value is: (word index, byte offset), and the option.
        let mut at: Option<(usize, usize, &clap::Arg)> = None;
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, Some(2 + n.len() + 1)),
                None => (long, None),
            };
            if let Some(arg) = cmd
                .get_arguments()
                .filter(takes_value)
                .find(|a| a.get_long() == Some(name))
            {
                at = Some(match inline {
                    Some(offset) => (i, offset, arg),
                    None => (i + 1, 0, arg),
                });
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (pos, c) in shorts.char_indices() {
                let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    break;
                };
                if !arg.get_action().takes_values() {
                    continue;
                }
                let mut offset = 1 + pos + c.len_utf8();
                if offset < word.len() {
                    if word[offset..].starts_with('=') {
                        offset += 1;
                    }
                    at = Some((i, offset, arg));
                } else {
                    at = Some((i + 1, 0, arg));
                }
                break;
            }
        }
        if let Some((index, start, arg)) = at {
            if let Some(value) = argv.get(index).and_then(|w| w.to_str()) {
                found.push(OptionValue {
                    id: arg.get_id().to_string(),
                    index,
                    start,
                    value: value[start..].to_string(),
                });
            }
            i = index;
        }
        i += 1;
    }
    found
}

/// The `--set` keys whose values are secrets.
const SECRET_KEYS: [&str; 3] = ["password", "sudo_password", "key_passphrase"];

/// A secret given on the command line: an option value that is one
/// (`-p`, `--sudo-password`: `keys` is `None`), or a `--set` that holds
/// some (`keys`: each secret key with the range of its value).
pub(super) struct GivenSecret {
    pub(super) value: OptionValue,
    pub(super) keys: Option<Vec<(String, Range<usize>)>>,
}

/// The secrets given in `argv`, as clap finds the option values.
pub(super) fn secrets(cmd: &Command, argv: &[OsString]) -> Vec<GivenSecret> {
    option_values(cmd, argv)
        .into_iter()
        .filter_map(|value| match value.id.as_str() {
            "password" | "sudo_password" => Some(GivenSecret { value, keys: None }),
            "set" => {
                let keys: Vec<(String, Range<usize>)> = set_value_ranges(&value.value)
                    .into_iter()
                    .filter(|(k, _)| SECRET_KEYS.contains(&k.as_str()))
                    .collect();
                (!keys.is_empty()).then_some(GivenSecret {
                    value,
                    keys: Some(keys),
                })
            }
            _ => None,
        })
        .collect()
}

/// `argv` as a journal keeps it to run again (`--retry-failed`): as
/// words, with every secret left out (the values of `-p` and
/// `--sudo-password` with their options, the secret keys of `--set`),
/// since a journal keeps no secret.
pub(super) fn replayable(cmd: &Command, argv: &[OsString]) -> Vec<String> {
    let mut words: Vec<Option<String>> = argv
        .iter()
        .map(|w| Some(w.to_string_lossy().into_owned()))
        .collect();
    for GivenSecret { value, keys } in secrets(cmd, argv) {
        let Some(keys) = keys else {
            drop_option(&mut words, &value);
            continue;
        };
        // Each `key=value` of a secret key out; the other keys stay.
        let mut kept = String::new();
        let mut at = 0;
        for (k, r) in &keys {
            kept.push_str(&value.value[at..r.start - k.len() - 1]);
            at = r.end;
        }
        kept.push_str(&value.value[at..]);
        let parts: Vec<&str> = kept.split(',').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            drop_option(&mut words, &value);
        } else if let Some(Some(word)) = words.get_mut(value.index) {
            *word = format!("{}{}", &word[..value.start], parts.join(","));
        }
    }
    words.into_iter().flatten().collect()
}

/// Leaves an option and its value out of `words`; a cluster of short
/// flags keeps its other flags.
fn drop_option(words: &mut [Option<String>], value: &OptionValue) {
    let (at, head_end) = if value.start == 0 {
        if let Some(w) = words.get_mut(value.index) {
            *w = None;
        }
        let at = value.index - 1;
        (at, words[at].as_ref().map_or(0, String::len))
    } else {
        (value.index, value.start)
    };
    let Some(word) = words[at].take() else { return };
    let head = word[..head_end].trim_end_matches('=');
    if !head.starts_with("--") && head.chars().count() > 2 {
        // `-aPp`: `-aP` stays.
        let mut rest = head.to_string();
        rest.pop();
        words[at] = Some(rest);
    }
}

/// `argv` without `--retry-failed` and its value (`value`, as parsed).
pub(super) fn without_retry(argv: &[OsString], value: &str) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut words = argv.iter().peekable();
    while let Some(w) = words.next() {
        if w == "--" {
            out.push(w.clone());
            out.extend(words.by_ref().cloned());
            break;
        }
        if w == "--retry-failed" {
            if !value.is_empty() && words.peek().is_some_and(|n| *n == value) {
                words.next();
            }
            continue;
        }
        if w.to_str().is_some_and(|s| s.starts_with("--retry-failed=")) {
            continue;
        }
        out.push(w.clone());
    }
    out
}

/// Overwrites `spans` of the process's own command line with `x`, so that
/// `/proc/<pid>/cmdline` (and `ps`) no longer shows them, in this process
/// and in every process it forks later.
///
/// `argv` is the command line the spans refer to. Nothing is written
/// unless the process's argument area holds exactly its arguments, and a
/// span is skipped unless its word is the process's own word at that
/// position, so a command line that is not the process's changes nothing.
/// Call it after the last read of `std::env::args`, which reads the same
/// bytes.
pub(super) fn hide(argv: &[OsString], spans: &[Span]) {
    if spans.is_empty() {
        return;
    }
    #[cfg(target_os = "linux")]
    linux::hide(argv, spans);
    #[cfg(not(target_os = "linux"))]
    let _ = argv;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;

    use super::Span;

    /// Fields 48 and 49 of `/proc/self/stat`, `arg_start` and `arg_end`:
    /// the addresses of the first and one past the last byte of the
    /// process's argument strings.
    fn arg_area() -> Option<(usize, usize)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Field 2, the command name in parentheses, may itself hold spaces
        // and parentheses; field 3 follows the last ')'.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        let start: usize = fields.get(48 - 3)?.parse().ok()?;
        let end: usize = fields.get(49 - 3)?.parse().ok()?;
        (start != 0 && start < end).then_some((start, end))
    }

    pub(super) fn hide(argv: &[OsString], spans: &[Span]) {
        // The kernel lays the arguments out back to back, each ended by a
        // NUL: that is what the area must hold, byte for byte.
        let own: Vec<OsString> = std::env::args_os().collect();
        let mut expected = Vec::new();
        let mut offsets = Vec::with_capacity(own.len());
        for word in &own {
            offsets.push(expected.len());
            expected.extend_from_slice(word.as_bytes());
            expected.push(0);
        }
        let Some((start, end)) = arg_area() else {
            return;
        };
        if end - start != expected.len() {
            return;
        }
        let base = start as *mut u8;
        // SAFETY: `start..end` is this process's argument area as the kernel
        // states it: the strings it copied onto the initial stack at exec,
        // mapped readable and writable for the life of the process. No Rust
        // value owns these bytes; the standard library keeps pointers to
        // them only to build `env::args`, which copies them. They are read
        // and written through raw pointers, one byte at a time, never
        // through a reference.
        let read = |i: usize| unsafe { base.add(i).read() };
        if (0..expected.len()).any(|i| read(i) != expected[i]) {
            return;
        }
        for span in spans {
            let (Some(mine), Some(given)) = (own.get(span.index), argv.get(span.index)) else {
                continue;
            };
            if mine != given || span.bytes.end > mine.len() {
                continue;
            }
            for i in span.bytes.clone() {
                // SAFETY: inside the area checked above: the word at
                // `offsets[span.index]` is `mine`, and `i` is within it.
                unsafe { base.add(offsets[span.index] + i).write(b'x') };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Opts {
        #[arg(short = 'a')]
        flag: bool,
        #[arg(short = 'p', long = "password")]
        password: Option<String>,
        #[arg(short = 'u', long = "user")]
        user: Option<String>,
        words: Vec<String>,
        #[arg(last = true)]
        rest: Vec<String>,
    }

    /// The option values found in `words`, after checking that clap
    /// accepts the words and takes the same last password from them.
    fn values(words: &[&str]) -> Vec<(String, usize, usize, String)> {
        let argv: Vec<OsString> = std::iter::once("prog")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect();
        let parsed = <Opts as clap::Parser>::try_parse_from(&argv).unwrap();
        let cmd = <Opts as clap::CommandFactory>::command();
        let found = option_values(&cmd, &argv);
        let last = found.iter().rev().find(|v| v.id == "password");
        assert_eq!(parsed.password, last.map(|v| v.value.clone()), "{words:?}");
        found
            .into_iter()
            .map(|v| (v.id, v.index, v.start, v.value))
            .collect()
    }

    fn v(id: &str, index: usize, start: usize, value: &str) -> (String, usize, usize, String) {
        (id.into(), index, start, value.into())
    }

    #[test]
    fn option_values_are_found_in_every_form_clap_accepts() {
        for (words, index, start) in [
            (&["-p", "s"][..], 2, 0),
            (&["--password", "s"], 2, 0),
            (&["--password=s"], 1, 11),
            (&["-ps"], 1, 2),
            (&["-p=s"], 1, 3),
            (&["-aps"], 1, 3),
            (&["-ap", "s"], 2, 0),
            (&["word", "-a", "-p", "s", "word"], 4, 0),
        ] {
            assert_eq!(
                values(words),
                [v("password", index, start, "s")],
                "{words:?}"
            );
        }
        // A word after an option that takes a value is its value; words
        // after `--` are not options.
        assert_eq!(
            values(&["-u", "put", "word", "--password", "x", "--", "-p", "y"]),
            [v("user", 2, 0, "put"), v("password", 5, 0, "x")]
        );
        assert_eq!(values(&["-up", "word"]), [v("user", 1, 2, "p")]);
    }
}

//! The rules ARCHITECTURE.md states about the source tree, checked on the
//! tree itself (`CARGO_MANIFEST_DIR`). Each test is one rule; its failure
//! names the rule and, for each place that breaks it, the file and the
//! line.
//!
//! Formatting is not checked here: `project_tests.sh` runs `cargo fmt
//! --check` as its first step.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use regex::Regex;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with `rule` and the places that break it, one per line.
fn check(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "rule broken: {rule}\n{}\n",
        violations.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Reading Rust source: comments, strings and modules.

/// A string literal: where it starts in [`Source::code`] and its text
/// between the quotes as written (escapes are not decoded).
struct Literal {
    at: usize,
    text: String,
}

/// A Rust file as the rules read it.
struct Source {
    /// The path from the crate root, with `/`.
    path: String,
    /// The file's lines as written, for messages.
    lines: Vec<String>,
    /// The text with every comment (doc comments too) and the inside of
    /// every string and character literal blanked out. Lines are kept, so
    /// a line number here is the file's.
    code: String,
    /// Every string literal, raw and byte strings too.
    literals: Vec<Literal>,
    /// The spans of `code` that are inline modules (`mod name { ... }`),
    /// and whether each is `#[cfg(test)]`.
    modules: Vec<(Range<usize>, bool)>,
    /// The file modules this file declares under `#[cfg(test)]`
    /// (`#[cfg(test)] mod tests;`), as paths from the crate root.
    test_files: Vec<String>,
}

impl Source {
    fn read(path: &Path) -> Source {
        let text = fs::read_to_string(path).unwrap();
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let (code, literals) = lex(&text);
        let modules = inline_modules(&code);
        let test_files = test_file_modules(&rel, &code);
        Source {
            path: rel,
            lines: text.lines().map(String::from).collect(),
            code,
            literals,
            modules,
            test_files,
        }
    }

    /// The line (from 1) of an offset in `code`.
    fn line_of(&self, at: usize) -> usize {
        self.code[..at].matches('\n').count() + 1
    }

    /// `path:line: the line as written`.
    fn place(&self, at: usize) -> String {
        let line = self.line_of(at);
        let text = self.lines.get(line - 1).map_or("", |l| l.trim());
        format!("{}:{line}: {text}", self.path)
    }

    /// Whether the offset `at` is inside a `#[cfg(test)]` module.
    fn in_test_module(&self, at: usize) -> bool {
        self.modules
            .iter()
            .any(|(r, test)| *test && r.contains(&at))
    }
}

/// Blanks out comments and the inside of literals (keeping newlines), and
/// collects the string literals.
fn lex(text: &str) -> (String, Vec<Literal>) {
    let c: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut literals = Vec::new();
    let blank = |code: &mut String, ch: char| code.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let prev = if i > 0 { Some(c[i - 1]) } else { None };
        // A raw string: r"..", r#".."#, br"..", cr#".."#.
        let raw_prefix = match (ch, next) {
            ('r', _) => 1,
            ('b' | 'c', Some('r')) => 2,
            _ => 0,
        };
        if raw_prefix > 0 && !prev.is_some_and(ident) {
            let mut j = i + raw_prefix;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                code.extend(&c[i..=j]);
                let at = code.len() - 1;
                let closing: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let mut k = j + 1;
                let mut literal = String::new();
                while k < c.len() && !c[k..].starts_with(&closing) {
                    literal.push(c[k]);
                    blank(&mut code, c[k]);
                    k += 1;
                }
                code.extend(&closing);
                literals.push(Literal { at, text: literal });
                i = k + closing.len();
                continue;
            }
        }
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                code.push(' ');
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    code.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    code.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut code, c[i]);
                    i += 1;
                }
            }
        } else if ch == '"' {
            code.push('"');
            let at = code.len() - 1;
            let mut literal = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                let n = if c[i] == '\\' { 2 } else { 1 };
                for &x in c.iter().skip(i).take(n) {
                    literal.push(x);
                    blank(&mut code, x);
                }
                i += n;
            }
            code.push('"');
            literals.push(Literal { at, text: literal });
            i += 1;
        } else if ch == '\'' && next == Some('\\') {
            // A character literal with an escape: '\n', '\'', '\u{1f}'.
            let mut k = i + 3;
            while k < c.len() && c[k] != '\'' {
                k += 1;
            }
            code.push('\'');
            for _ in i + 1..k {
                code.push(' ');
            }
            code.push('\'');
            i = k + 1;
        } else if ch == '\'' && c.get(i + 2) == Some(&'\'') {
            // A plain character literal ('"', '{'); otherwise a lifetime.
            code.push_str("' '");
            i += 3;
        } else {
            code.push(ch);
            i += 1;
        }
    }
    (code, literals)
}

/// The offset just past the brace that closes the one at `open`.
fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// `#[cfg(test)]`, possibly with other attributes and a visibility after
/// it, right before `mod name`.
const TEST_MODULE: &str =
    r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*[{;]";

fn inline_modules(code: &str) -> Vec<(Range<usize>, bool)> {
    let test_starts: BTreeSet<usize> = Regex::new(TEST_MODULE)
        .unwrap()
        .find_iter(code)
        .map(|m| m.end() - 1)
        .collect();
    Regex::new(r"\bmod\s+\w+\s*\{")
        .unwrap()
        .find_iter(code)
        .map(|m| {
            let open = m.end() - 1;
            (
                open..matching_brace(code, open),
                test_starts.contains(&open),
            )
        })
        .collect()
}

/// The directory a file's child modules live in.
fn module_dir(rel: &str) -> String {
    let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    if ["mod.rs", "lib.rs", "main.rs"].contains(&file) {
        dir.to_string()
    } else {
        format!("{dir}/{}", file.trim_end_matches(".rs"))
    }
}

fn test_file_modules(rel: &str, code: &str) -> Vec<String> {
    let dir = module_dir(rel);
    Regex::new(TEST_MODULE)
        .unwrap()
        .captures_iter(code)
        .filter(|c| c[0].ends_with(';'))
        .flat_map(|c| [format!("{dir}/{}.rs", &c[1]), format!("{dir}/{}/", &c[1])])
        .collect()
}

/// Every `.rs` file under `dir` (from the crate root), sorted.
fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

/// Every Rust file under `dir`, read.
fn sources(dir: &str) -> Vec<Source> {
    rust_files(dir).iter().map(|p| Source::read(p)).collect()
}

/// A place the rule allows: a line that contains `text` in a file whose
/// path starts with `file` (so `src/state` is src/state.rs or a file under
/// src/state/), and why. An entry that matches nothing is itself a
/// failure, so the list stays exact.
struct Allowed {
    file: &'static str,
    text: &'static str,
    why: &'static str,
}

/// Drops the findings (`file`, `line text`, message) an entry of `allowed`
/// covers, and adds a failure for each entry that covered none.
fn apply_allowed(findings: Vec<(String, String, String)>, allowed: &[Allowed]) -> Vec<String> {
    let mut used = vec![false; allowed.len()];
    let mut out = Vec::new();
    for (file, line, message) in findings {
        match allowed
            .iter()
            .position(|a| file.starts_with(a.file) && line.contains(a.text))
        {
            Some(i) => used[i] = true,
            None => out.push(message),
        }
    }
    for (a, used) in allowed.iter().zip(used) {
        if !used {
            out.push(format!(
                "{}: the allowed `{}` ({}) is no longer there: remove it from the list in tests/it/tidy.rs",
                a.file, a.text, a.why
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Nothing prints except `src/output/`: no printing macro, no
// `std::io::stdout()`/`stderr()`, no `libc::write` to descriptor 1 or 2,
// no progress bar drawn with `indicatif` anywhere else in src/
// (src/main.rs and src/cli/ included).

/// Writes to the standard streams that do not go through `src/output/`.
const PRINT_ALLOWED: &[Allowed] = &[];

#[test]
fn nothing_prints_except_src_output() {
    let rule = "nothing in src/ prints except src/output/ (ARCHITECTURE.md: every printed line goes through output, whole, under one lock)";
    let patterns = [
        (
            Regex::new(r"\b(?:print|println|eprint|eprintln|dbg)\s*!").unwrap(),
            "a printing macro",
        ),
        (
            Regex::new(r"(?:^|[^.\w])(?:(?:std::)?io::)?(?:stdout|stderr)\s*\(\s*\)").unwrap(),
            "a standard stream used directly",
        ),
        (
            Regex::new(r"\blibc::write\s*\(\s*(?:1|2|libc::STD(?:OUT|ERR)_FILENO)\b").unwrap(),
            "a write(2) to a standard stream",
        ),
        (
            Regex::new(r"\bindicatif\b").unwrap(),
            "a progress bar drawn outside src/output/",
        ),
        (
            Regex::new(r"\bratatui\b").unwrap(),
            "a full-screen view drawn outside src/output/",
        ),
    ];
    let mut findings = Vec::new();
    for src in sources("src") {
        if src.path.starts_with("src/output/") {
            continue;
        }
        for (pattern, what) in &patterns {
            for m in pattern.find_iter(&src.code) {
                let line = src.lines[src.line_of(m.start()) - 1].clone();
                findings.push((
                    src.path.clone(),
                    line,
                    format!("{} -- {what}", src.place(m.start())),
                ));
            }
        }
    }
    check(rule, apply_allowed(findings, PRINT_ALLOWED));
}

// ---------------------------------------------------------------------------
// Shell text is built only in `src/command/` (or a `src/command.rs`).
//
// Every string literal in src/ outside it (comments, doc comments
// and `#[cfg(test)]` code left out) is taken for shell text twill runs when
//   - it holds an operator prose never uses: `&& `, `|| `, `$(`, `2>`,
//     `>&`, `>/dev/null`;
//   - or a command from `SHELL_COMMANDS` followed by a space stands where
//     a shell reads a command: at the start, or after `; `, `| `, `&& `;
//   - or it holds `; ` or `| ` and does not read as prose, which is four
//     lowercase words in a row ("every worker was stopped"): error messages
//     use semicolons, and shell text made of such words is unlikely.
// Format strings are literals too, so `format!("{} && {}", ..)` counts.

/// Commands twill runs for itself, and common ones a snippet would use.
const SHELL_COMMANDS: &[&str] = &[
    "bash", "cat", "cd", "chmod", "chown", "cp", "echo", "env", "exec", "export", "find", "id",
    "kill", "ln", "ls", "mkdir", "mktemp", "mv", "printf", "readlink", "rm", "sh", "stat", "sudo",
    "tar", "test", "touch", "umask",
];

/// Literals outside src/command/ that look like shell text and are not.
const SHELL_ALLOWED: &[Allowed] = &[
    Allowed {
        file: "src/state",
        text: r#""sudo password:""#,
        why: "Fabric's default sudo_prompt: the text sudo shows when it asks, which src/command/ quotes into the sudo prefix",
    },
    Allowed {
        file: "src/state",
        text: r#""sudo -S -p '%(sudo_prompt)s' ""#,
        why: "Fabric's default sudo_prefix, a setting users may replace; src/command/ fills in the prompt and puts it before the command",
    },
    Allowed {
        file: "src/ssh/auth.rs",
        text: r#".join("; ")"#,
        why: "joins the reasons key files could not be read, in an error message",
    },
];

/// Why `text` reads as shell text, if it does.
fn shell_like(text: &str) -> Option<String> {
    for op in ["&& ", "|| ", "$(", "2>", ">&", ">/dev/null"] {
        if text.contains(op) {
            return Some(format!("holds `{op}`"));
        }
    }
    let starts = std::iter::once(text).chain(
        ["; ", "| ", "&& "]
            .iter()
            .flat_map(|sep| text.match_indices(sep).map(|(i, s)| &text[i + s.len()..])),
    );
    for start in starts {
        if let Some(c) = SHELL_COMMANDS
            .iter()
            .find(|c| start.strip_prefix(**c).is_some_and(|r| r.starts_with(' ')))
        {
            return Some(format!("runs `{c}`"));
        }
    }
    static PROSE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b[a-z]+ [a-z]+ [a-z]+ [a-z]+\b").unwrap());
    for sep in ["; ", "| "] {
        if text.contains(sep) && !PROSE.is_match(text) {
            return Some(format!("holds `{sep}` and does not read as prose"));
        }
    }
    None
}

#[test]
fn shell_text_is_built_only_in_src_command_rs() {
    let rule = "shell text is built only in src/command/ (ARCHITECTURE.md: every value in it is quoted there)";
    let sources = sources("src");
    let test_files: Vec<String> = sources
        .iter()
        .flat_map(|s| s.test_files.iter().cloned())
        .collect();
    let mut findings = Vec::new();
    for src in &sources {
        let test_file = test_files
            .iter()
            .any(|t| src.path == *t || (t.ends_with('/') && src.path.starts_with(t.as_str())));
        let command = src.path == "src/command.rs" || src.path.starts_with("src/command/");
        if command || test_file {
            continue;
        }
        for lit in &src.literals {
            if src.in_test_module(lit.at) {
                continue;
            }
            if let Some(why) = shell_like(&lit.text) {
                let line = src.lines[src.line_of(lit.at) - 1].clone();
                findings.push((
                    src.path.clone(),
                    line,
                    format!("{} -- the literal {:?} {why}", src.place(lit.at), lit.text),
                ));
            }
        }
    }
    check(rule, apply_allowed(findings, SHELL_ALLOWED));
}

// ---------------------------------------------------------------------------
// vendor/libssh2-sys is the crates.io release plus the two patches.

/// The release `vendor/libssh2-sys` is a copy of.
const LIBSSH2_SYS: &str = "0.3.4";

/// The patches, in the order they apply.
const PATCHES: &[&str] = &[
    "vendor/libssh2-sys-whole-packet-crypt.patch",
    "vendor/libssh2-sys-sftp-server-limits.patch",
];

/// What of the release the copy leaves out (vendor/README.md): the crate's
/// packaging files, and the parts of libssh2 the build does not read (its
/// own build systems, CI, docs, examples, tests, ports, release notes and
/// the license texts REUSE.toml lists for files left out). A directory
/// ends in `/`.
const LEFT_OUT: &[&str] = &[
    ".cargo_vcs_info.json",
    ".gitattributes",
    "Cargo.lock",
    "libssh2/.clang-tidy.yml",
    "libssh2/.editorconfig",
    "libssh2/.github/",
    "libssh2/CMakeLists.txt",
    "libssh2/LICENSES/BSD-2-Clause.txt",
    "libssh2/LICENSES/BSD-3-Clause.txt",
    "libssh2/LICENSES/SAX-PD-2.0.txt",
    "libssh2/Makefile.am",
    "libssh2/NEWS",
    "libssh2/RELEASE-NOTES",
    "libssh2/acinclude.m4",
    "libssh2/appveyor.sh",
    "libssh2/appveyor.yml",
    "libssh2/cmake/",
    "libssh2/configure.ac",
    "libssh2/docs/",
    "libssh2/example/",
    "libssh2/libssh2-style.el",
    "libssh2/m4/",
    "libssh2/os400/",
    "libssh2/scripts/",
    "libssh2/tests/",
    "libssh2/vms/",
];

/// Every file (and symbolic link) under `dir`, by its path from `dir`.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, format!("symlink to {}", target.display()).into_bytes());
            } else if meta.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Unpacks the crates.io release of libssh2-sys into `into` and returns its
/// directory. Cargo fetches it (checking its checksum) into its registry,
/// through a throwaway project that depends on it without the patch: from
/// the local cache if it is there, else from crates.io.
fn pristine_libssh2_sys(into: &Path) -> PathBuf {
    let project = into.join("probe");
    fs::create_dir_all(project.join("src")).unwrap();
    fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nlibssh2-sys = \"={LIBSSH2_SYS}\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    fs::write(project.join("src/lib.rs"), "").unwrap();
    let metadata = |offline: bool| {
        let mut c = cargo();
        c.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(project.join("Cargo.toml"))
            .current_dir(&project)
            .env_remove("CARGO_TARGET_DIR");
        if offline {
            c.arg("--offline");
        }
        c.output().unwrap()
    };
    let mut out = metadata(true);
    if !out.status.success() {
        out = metadata(false);
    }
    assert!(
        out.status.success(),
        "could not get libssh2-sys {LIBSSH2_SYS} from crates.io to compare vendor/libssh2-sys with (this check needs the network, or the crate in cargo's cache):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libssh2-sys" && p["version"] == LIBSSH2_SYS)
        .and_then(|p| p["manifest_path"].as_str())
        .expect("cargo metadata lists libssh2-sys");
    // The registry keeps the downloaded archive beside the unpacked copy:
    // registry/src/<index>/libssh2-sys-V and registry/cache/<index>/libssh2-sys-V.crate.
    let unpacked = Path::new(manifest).parent().unwrap();
    let name = unpacked.file_name().unwrap().to_string_lossy().into_owned();
    let index = unpacked.parent().unwrap();
    let archive = index
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("cache")
        .join(index.file_name().unwrap())
        .join(format!("{name}.crate"));
    let status = if archive.exists() {
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(into)
            .status()
    } else {
        // The archive was cleaned away: the copy cargo unpacked from it.
        Command::new("cp")
            .arg("-R")
            .arg(unpacked)
            .arg(into)
            .status()
    };
    assert!(
        status.unwrap().success(),
        "could not unpack {}",
        archive.display()
    );
    let dir = into.join(name);
    let _ = fs::remove_file(dir.join(".cargo-ok"));
    dir
}

#[test]
fn vendored_libssh2_sys_is_the_release_plus_the_patches() {
    let rule = format!(
        "vendor/libssh2-sys is crates.io libssh2-sys {LIBSSH2_SYS} with {} applied, less what vendor/README.md says is left out",
        PATCHES.join(" and ")
    );
    let scratch = tempfile::tempdir().unwrap();
    let pristine = pristine_libssh2_sys(scratch.path());
    for patch in PATCHES {
        let out = Command::new("patch")
            .args([
                "-p1",
                "--batch",
                "--forward",
                "--fuzz=0",
                "--no-backup-if-mismatch",
            ])
            .arg("-d")
            .arg(&pristine)
            .arg("-i")
            .arg(root().join(patch))
            .output()
            .unwrap_or_else(|e| panic!("could not run patch(1): {e}"));
        check(
            &rule,
            if out.status.success() {
                vec![]
            } else {
                vec![format!(
                    "{patch}: does not apply to the release exactly:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )]
            },
        );
    }
    let mut expected = tree(&pristine);
    let mut violations = Vec::new();
    for left in LEFT_OUT {
        let before = expected.len();
        expected
            .retain(|path, _| !(path == left || (left.ends_with('/') && path.starts_with(left))));
        if expected.len() == before {
            violations.push(format!(
                "tests/it/tidy.rs: LEFT_OUT names {left}, which the release does not have"
            ));
        }
    }
    let vendored = tree(&root().join("vendor/libssh2-sys"));
    for (path, bytes) in &expected {
        match vendored.get(path) {
            None => violations.push(format!(
                "vendor/libssh2-sys/{path}: missing (the release has it, and LEFT_OUT does not name it)"
            )),
            Some(ours) if ours != bytes => {
                let line = ours
                    .split(|b| *b == b'\n')
                    .zip(bytes.split(|b| *b == b'\n'))
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| ours.iter().filter(|b| **b == b'\n').count().min(bytes.iter().filter(|b| **b == b'\n').count()))
                    + 1;
                violations.push(format!(
                    "vendor/libssh2-sys/{path}:{line}: differs from the release with the patches applied"
                ));
            }
            Some(_) => {}
        }
    }
    for path in vendored.keys().filter(|p| !expected.contains_key(*p)) {
        violations.push(format!(
            "vendor/libssh2-sys/{path}: not expected (the release less LEFT_OUT has no such file, nor do the patches make one)"
        ));
    }
    check(&rule, violations);
}

// ---------------------------------------------------------------------------
// The SSH engine imports nothing of twill but `crate::sys`: paths from
// `crate` (or `$crate`), and `super` paths that climb out of src/ssh/,
// may name only `sys` (or `ssh` itself). Comments and strings do not count.

/// Whether a path that leaves `src/ssh/` for the crate root may go on with
/// `name` (or, for a group `{...}`, with each name in it).
fn engine_may_use(name: &str) -> bool {
    name == "sys" || name == "ssh"
}

/// How many inline modules of `src` enclose the offset `at`.
fn inline_depth(src: &Source, at: usize) -> usize {
    src.modules.iter().filter(|(r, _)| r.contains(&at)).count()
}

/// How far below the crate root the module of a file under `src/` is.
fn module_depth(rel: &str) -> usize {
    let path = rel.trim_start_matches("src/").trim_end_matches(".rs");
    path.split('/').filter(|s| *s != "mod").count()
}

/// The first names of the paths in a `{...}` group that starts at `open`.
fn group_names(code: &str, open: usize) -> Vec<(usize, String)> {
    let end = matching_brace(code, open) - 1;
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = open + 1;
    for (i, b) in code.bytes().enumerate().take(end + 1).skip(open + 1) {
        match b {
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => {
                let item = code[item_start..i].trim_start();
                let name: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*')
                    .collect();
                if !name.is_empty() {
                    names.push((i - item.len(), name));
                }
                item_start = i + 1;
            }
            _ => {}
        }
    }
    names
}

#[test]
fn src_ssh_imports_only_crate_sys() {
    let rule = "src/ssh/ imports nothing of twill but crate::sys (ARCHITECTURE.md: the engine imports nothing of twill but sys)";
    let path = Regex::new(r"(\$crate|\bcrate|\bsuper(?:::super)*)::(\{|\*|\w+)").unwrap();
    let mut violations = Vec::new();
    for src in sources("src/ssh") {
        // src/ssh/mod.rs is `crate::ssh`, one below the crate root;
        // src/ssh/exec.rs is `crate::ssh::exec`, two below.
        let file_depth = module_depth(&src.path);
        for m in path.captures_iter(&src.code) {
            let start = m.get(0).unwrap().start();
            let head = &m[1];
            let depth = if head.ends_with("crate") {
                0
            } else {
                let supers = head.matches("super").count();
                (file_depth + inline_depth(&src, start)) as isize - supers as isize
            };
            if depth >= 1 {
                continue; // still inside src/ssh/
            }
            let names = match &m[2] {
                "{" => group_names(&src.code, m.get(2).unwrap().start()),
                name => vec![(start, name.to_string())],
            };
            for (at, name) in names {
                if depth < 0 || !engine_may_use(&name) {
                    violations.push(format!(
                        "{} -- reaches crate::{name}",
                        src.place(at.max(start))
                    ));
                }
            }
        }
    }
    check(rule, violations);
}

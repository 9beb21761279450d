//! Fabric's `fabric.contrib.files`: checking, editing and templating files
//! on the current host.
//!
//! The same names, defaults and commands as Fabric 1.x, so that a fabfile
//! ports line for line:
//!
//! ```python
//! from fabric.contrib.files import exists, append, sed, upload_template
//!
//! if not exists("/etc/app"):
//!     sudo("mkdir /etc/app")
//! append("/etc/hosts", "10.0.0.5 db", use_sudo=True)
//! sed("/etc/app/app.ini", "^workers = .*", "workers = 8", use_sudo=True)
//! upload_template("app.ini", "/etc/app/app.ini", context=env, use_sudo=True)
//! ```
//!
//! ```no_run
//! use twill::contrib::files::{
//!     append_with, exists, sed_with, upload_template_with, AppendOptions, SedOptions,
//!     TemplateOptions,
//! };
//! use twill::{env, sudo};
//!
//! # fn main() -> twill::Result<()> {
//! if !exists("/etc/app")? {
//!     sudo("mkdir /etc/app")?;
//! }
//! append_with("/etc/hosts", "10.0.0.5 db", &AppendOptions::new().use_sudo(true))?;
//! sed_with("/etc/app/app.ini", "^workers = .*", "workers = 8", &SedOptions::new().use_sudo(true))?;
//! upload_template_with("app.ini", "/etc/app/app.ini", &env(), &TemplateOptions::new().use_sudo(true))?;
//! # Ok(())
//! # }
//! ```
//!
//! Each helper runs Fabric's command through [`run`](crate::run) (or
//! [`sudo`](crate::sudo) with `use_sudo`), so it prints and fails as those
//! do, honours [`cd`](crate::cd) and the other settings, and shows the
//! command exactly as Fabric would: `stat "$(echo /etc/app)"`,
//! `echo '10.0.0.5 db' >> "$(echo /etc/hosts)"`,
//! `sed -i.bak -r -e 's/^workers = .*/workers = 8/g' "$(echo /etc/app/app.ini)"`.
//! Remote paths are written as Fabric writes them, `"$(echo <path>)"`, so
//! that `~` and wildcards expand on the host.
//!
//! Where Fabric's command would let a value run as code, the command
//! differs and the value stays a value: a path with shell characters in it
//! is quoted inside `$(echo ...)`, a line to append holding a `'` is
//! quoted for the shell (and one starting with `-` or holding a backslash
//! is written with `printf`), a sed pattern with a `'` is quoted for the
//! shell rather than for sed, a `/` a sed pattern escapes already stays
//! escaped (Fabric doubles its backslash, which ends the expression), a
//! sed pattern ending in a lone backslash is refused, and so are the sed
//! flags that run commands or write files (`e`, `w`).
//!
//! Where Fabric's command fails, twill's works: `contains` puts `-e`
//! before a text starting with `-`, and `sed` on a host without `sed -i`
//! (NetBSD, OpenBSD, QNX) and with no backup suffix skips the backup
//! instead of copying the file onto itself. `upload_template` renders the
//! template before it touches the host, looks for the file to back up
//! through sudo when `use_sudo` (Fabric looks as the login user), and
//! finds a Jinja template below [`lcd`](crate::lcd) as it does a `%` one.

mod template;

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

pub use template::{TemplateContext, TemplateValues};

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::events;
use crate::operations::context::hide;
use crate::operations::options::RunOptions;
use crate::operations::remote::{run_or_sudo, run_with};
use crate::operations::session::current_host;
use crate::operations::transfer::{local_path, upload_data, UploadOptions};
use crate::result::Output;
use crate::state::{env, with_settings};

/// An argument twill will not turn into a command, as an error naming the
/// operation, the host and the cause.
fn invalid(which: &str, host: &str, msg: &str) -> Error {
    Error::new(ErrorKind::Settings, format!("{which}() on {host}: {msg}")).with_host(host)
}

// ---------------------------------------------------------------------------
// exists, is_link, first

/// Options of [`exists_with`], [`is_link_with`] and [`first_with`]
/// (Fabric's `use_sudo` and `verbose`).
#[derive(Debug, Clone, Default)]
pub struct ExistsOptions {
    use_sudo: bool,
    verbose: bool,
}

impl ExistsOptions {
    /// The defaults: as the login user, quietly.
    pub fn new() -> ExistsOptions {
        ExistsOptions::default()
    }
    /// Look through [`sudo`](crate::sudo), for paths only another user can
    /// see.
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Show the command, its output and the warning when the path is not
    /// there (by default all of it is hidden).
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }
}

/// Runs a check: its success, quietly unless `verbose`.
fn check(command: &str, opts: &ExistsOptions) -> Result<bool> {
    let run_opts = if opts.verbose {
        RunOptions::new().warn_only(true)
    } else {
        RunOptions::new().quiet(true)
    };
    Ok(run_or_sudo(command, &run_opts, opts.use_sudo)?.succeeded())
}

/// Whether `path` exists on the current host (Fabric's `exists`):
/// `stat "$(echo <path>)"`, run quietly; a leading `~` and wildcards
/// expand there, and a relative path is below [`cd`](crate::cd) (else the
/// home directory).
///
/// ```no_run
/// use twill::contrib::files::exists;
///
/// if !exists("~/.ssh/authorized_keys")? {
///     twill::run("mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys")?;
/// }
/// # Ok::<(), twill::Error>(())
/// ```
pub fn exists(path: impl AsRef<str>) -> Result<bool> {
    exists_with(path, &ExistsOptions::new())
}

/// [`exists`] with Fabric's `use_sudo` and `verbose`.
pub fn exists_with(path: impl AsRef<str>, opts: &ExistsOptions) -> Result<bool> {
    let _helper = events::helper("exists");
    let path = path.as_ref();
    check(&command::stat_expanded(path), opts)
}

/// Whether `path` is a symbolic link on the current host (Fabric's
/// `is_link`): `test -L "$(echo <path>)"`, run quietly.
pub fn is_link(path: impl AsRef<str>) -> Result<bool> {
    is_link_with(path, &ExistsOptions::new())
}

/// [`is_link`] with Fabric's `use_sudo` and `verbose`.
pub fn is_link_with(path: impl AsRef<str>, opts: &ExistsOptions) -> Result<bool> {
    let _helper = events::helper("is_link");
    let path = path.as_ref();
    check(&command::test_expanded('L', path), opts)
}

/// The first of `paths` that [exists] on the current host, if any
/// (Fabric's `first`).
///
/// ```no_run
/// use twill::contrib::files::first;
///
/// let python = first(["/usr/bin/python3", "/usr/local/bin/python3"])?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn first<I, S>(paths: I) -> Result<Option<String>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    first_with(paths, &ExistsOptions::new())
}

/// [`first`] with Fabric's `use_sudo` and `verbose`.
pub fn first_with<I, S>(paths: I, opts: &ExistsOptions) -> Result<Option<String>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let _helper = events::helper("first");
    for path in paths {
        if exists_with(path.as_ref(), opts)? {
            return Ok(Some(path.as_ref().to_string()));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// contains, append

/// Options of [`contains_with`] (Fabric's keywords, with its defaults).
#[derive(Debug, Clone)]
pub struct ContainsOptions {
    exact: bool,
    escape: bool,
    case_sensitive: bool,
    use_sudo: bool,
    shell: bool,
}

impl Default for ContainsOptions {
    fn default() -> ContainsOptions {
        ContainsOptions {
            exact: false,
            escape: true,
            case_sensitive: true,
            use_sudo: false,
            shell: false,
        }
    }
}

impl ContainsOptions {
    /// The defaults: `text` matched literally anywhere in a line, case
    /// sensitive, as the login user, without the shell wrapper.
    pub fn new() -> ContainsOptions {
        ContainsOptions::default()
    }
    /// Only a line that is exactly `text` counts (`^text$`).
    pub fn exact(mut self, yes: bool) -> Self {
        self.exact = yes;
        self
    }
    /// Match `text` literally (default true). With `false`, `text` is an
    /// extended regular expression handed to egrep as written, and
    /// [`exact`](Self::exact) adds nothing, as in Fabric.
    pub fn escape(mut self, yes: bool) -> Self {
        self.escape = yes;
        self
    }
    /// Tell upper and lower case apart (default true; `false` is
    /// `egrep -i`).
    pub fn case_sensitive(mut self, yes: bool) -> Self {
        self.case_sensitive = yes;
        self
    }
    /// Read the file through [`sudo`](crate::sudo).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Wrap the command in the `shell` setting (default false, as in
    /// Fabric; see [`RunOptions::shell`]).
    pub fn shell(mut self, yes: bool) -> Self {
        self.shell = yes;
        self
    }
}

/// Whether the file `filename` on the current host holds `text` (Fabric's
/// `contains`): `egrep "<text>" "$(echo <filename>)"`, run quietly, with
/// `text` escaped to match literally.
///
/// ```no_run
/// use twill::contrib::files::{contains, contains_with, ContainsOptions};
///
/// let listening = contains("/etc/nginx/nginx.conf", "listen 443")?;
/// let exact = contains_with("/etc/hosts", "127.0.0.1 localhost", &ContainsOptions::new().exact(true))?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn contains(filename: impl AsRef<str>, text: impl AsRef<str>) -> Result<bool> {
    contains_with(filename, text, &ContainsOptions::new())
}

/// [`contains`] with Fabric's `exact`, `escape`, `case_sensitive`,
/// `use_sudo` and `shell`.
pub fn contains_with(
    filename: impl AsRef<str>,
    text: impl AsRef<str>,
    opts: &ContainsOptions,
) -> Result<bool> {
    let _helper = events::helper("contains");
    let filename = filename.as_ref();
    let text = text.as_ref();
    let command = command::egrep(filename, text, opts.exact, opts.escape, opts.case_sensitive);
    let run_opts = RunOptions::new().quiet(true).shell(opts.shell);
    Ok(run_or_sudo(&command, &run_opts, opts.use_sudo)?.succeeded())
}

/// Text to [`append`]: one line (`&str`, `String`) or several (a slice, an
/// array or a `Vec` of strings). A string holding newlines stands for the
/// lines between them (a final newline ends the last line), each one
/// checked and appended on its own.
pub trait Lines {
    /// The lines, in order.
    fn into_lines(self) -> Vec<String>;
}

/// The lines of one string; the empty string is one empty line.
fn split_lines(s: &str) -> Vec<String> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.split('\n').map(String::from).collect()
}

impl Lines for &str {
    fn into_lines(self) -> Vec<String> {
        split_lines(self)
    }
}

impl Lines for String {
    fn into_lines(self) -> Vec<String> {
        split_lines(&self)
    }
}

impl Lines for &String {
    fn into_lines(self) -> Vec<String> {
        split_lines(self)
    }
}

impl<S: AsRef<str>> Lines for &[S] {
    fn into_lines(self) -> Vec<String> {
        self.iter().flat_map(|s| split_lines(s.as_ref())).collect()
    }
}

impl<S: AsRef<str>, const N: usize> Lines for [S; N] {
    fn into_lines(self) -> Vec<String> {
        self.as_slice().into_lines()
    }
}

impl<S: AsRef<str>, const N: usize> Lines for &[S; N] {
    fn into_lines(self) -> Vec<String> {
        self.as_slice().into_lines()
    }
}

impl<S: AsRef<str>> Lines for Vec<S> {
    fn into_lines(self) -> Vec<String> {
        self.as_slice().into_lines()
    }
}

impl<S: AsRef<str>> Lines for &Vec<S> {
    fn into_lines(self) -> Vec<String> {
        self.as_slice().into_lines()
    }
}

/// Options of [`append_with`] (Fabric's keywords, with its defaults).
#[derive(Debug, Clone)]
pub struct AppendOptions {
    use_sudo: bool,
    partial: bool,
    escape: bool,
    shell: bool,
}

impl Default for AppendOptions {
    fn default() -> AppendOptions {
        AppendOptions {
            use_sudo: false,
            partial: false,
            escape: true,
            shell: false,
        }
    }
}

impl AppendOptions {
    /// The defaults: a line counts as there when a whole line is equal to
    /// it; written verbatim, as the login user.
    pub fn new() -> AppendOptions {
        AppendOptions::default()
    }
    /// Check and write the file through [`sudo`](crate::sudo) (the
    /// redirection runs in sudo's shell, so a root-owned file can be
    /// appended to).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// A line counts as there when a line of the file starts with it
    /// (`^line` instead of `^line$`).
    pub fn partial(mut self, yes: bool) -> Self {
        self.partial = yes;
        self
    }
    /// Quote each line so that it lands verbatim (default true). With
    /// `false`, as in Fabric, a line is shell text of the caller's, written
    /// between the single quotes of `echo '<line>'` as it is: a `'` in it
    /// ends the quoting (write it `'\''` to keep one).
    pub fn escape(mut self, yes: bool) -> Self {
        self.escape = yes;
        self
    }
    /// Wrap the check (the `egrep`) in the `shell` setting (default false,
    /// as in Fabric).
    pub fn shell(mut self, yes: bool) -> Self {
        self.shell = yes;
        self
    }
}

/// Appends each line of `text` to the file `filename` on the current
/// host, unless a line of the file already is that line (Fabric's
/// `append`): running it twice leaves each line there once.
///
/// For each line, when the file exists, `egrep "^<line>$" "$(echo <filename>)"`
/// checks quietly whether it is there; if not, `echo '<line>' >> "$(echo <filename>)"`
/// appends it (a new file is created). An empty line is always appended,
/// as in Fabric. The line lands verbatim, whatever it holds: quotes,
/// backslashes, `$(...)` are text.
///
/// ```no_run
/// use twill::contrib::files::{append, append_with, AppendOptions};
///
/// append("~/.bashrc", "export EDITOR=vim")?;
/// append_with(
///     "/etc/sysctl.conf",
///     ["vm.swappiness = 10", "net.core.somaxconn = 1024"],
///     &AppendOptions::new().use_sudo(true),
/// )?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn append(filename: impl AsRef<str>, text: impl Lines) -> Result<()> {
    append_with(filename, text, &AppendOptions::new())
}

/// [`append`] with Fabric's `use_sudo`, `partial`, `escape` and `shell`.
pub fn append_with(
    filename: impl AsRef<str>,
    text: impl Lines,
    opts: &AppendOptions,
) -> Result<()> {
    let _helper = events::helper("append");
    let filename = filename.as_ref();
    let run = |command: &str, run_opts: &RunOptions| run_or_sudo(command, run_opts, opts.use_sudo);
    // Once the file is known to exist (it was found, or a line was
    // appended), it is not looked for again.
    let mut there = false;
    for line in text.into_lines() {
        if !line.is_empty() {
            there = there || exists_with(filename, &ExistsOptions::new().use_sudo(opts.use_sudo))?;
            if there {
                let check = command::egrep_line(filename, &line, opts.partial);
                let check_opts = RunOptions::new().quiet(true).shell(opts.shell);
                if run(&check, &check_opts)?.succeeded() {
                    continue;
                }
            }
        }
        run(
            &command::append_line(filename, &line, opts.escape),
            &RunOptions::new(),
        )?;
        there = true;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// sed, comment, uncomment

/// Options of [`sed_with`] (Fabric's keywords, with its defaults).
#[derive(Debug, Clone)]
pub struct SedOptions {
    limit: String,
    use_sudo: bool,
    backup: String,
    flags: String,
    shell: bool,
}

impl Default for SedOptions {
    fn default() -> SedOptions {
        SedOptions {
            limit: String::new(),
            use_sudo: false,
            backup: ".bak".to_string(),
            flags: String::new(),
            shell: false,
        }
    }
}

impl SedOptions {
    /// The defaults: every line, a backup with the suffix `.bak`, as the
    /// login user, without the shell wrapper.
    pub fn new() -> SedOptions {
        SedOptions::default()
    }
    /// Only lines matching this regular expression are changed (sed's
    /// address `/<limit>/`).
    pub fn limit(mut self, regex: impl Into<String>) -> Self {
        self.limit = regex.into();
        self
    }
    /// Edit the file through [`sudo`](crate::sudo).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// The suffix of the backup sed keeps of the file (default `.bak`;
    /// empty: no backup).
    pub fn backup(mut self, suffix: impl Into<String>) -> Self {
        self.backup = suffix.into();
        self
    }
    /// More flags for the `s` command (`g` is always there): `i` or `I`
    /// for case-insensitive, `m`/`M`, `p`, or a number. The flags that run
    /// commands or write files (`e`, `w`) are refused.
    pub fn flags(mut self, flags: impl Into<String>) -> Self {
        self.flags = flags.into();
        self
    }
    /// Wrap the command in the `shell` setting (default false, as in
    /// Fabric; `true` helps where [`cd`](crate::cd) must apply to a sudo).
    pub fn shell(mut self, yes: bool) -> Self {
        self.shell = yes;
        self
    }
}

/// Replaces what matches the extended regular expression `before` with
/// `after` in the file `filename` on the current host (Fabric's `sed`):
/// `sed -i.bak -r -e 's/<before>/<after>/g' "$(echo <filename>)"`.
///
/// As in Fabric, `/` needs no escaping in either pattern, nor `(` and `)`
/// in `after`; `\1` refers to a group of `before`. `uname` is run first,
/// hidden, as Fabric does, to use `-E` on macOS and a temporary copy where
/// sed has no `-i` (NetBSD, OpenBSD, QNX). Returns the command's result.
///
/// ```no_run
/// use twill::contrib::files::{sed, sed_with, SedOptions};
///
/// sed("/etc/app/app.ini", "^debug = .*", "debug = false")?;
/// sed_with(
///     "/etc/ssh/sshd_config",
///     "^#?PasswordAuthentication .*",
///     "PasswordAuthentication no",
///     &SedOptions::new().use_sudo(true).backup(""),
/// )?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn sed(
    filename: impl AsRef<str>,
    before: impl AsRef<str>,
    after: impl AsRef<str>,
) -> Result<Output> {
    sed_with(filename, before, after, &SedOptions::new())
}

/// [`sed`] with Fabric's `limit`, `use_sudo`, `backup`, `flags` and
/// `shell`.
pub fn sed_with(
    filename: impl AsRef<str>,
    before: impl AsRef<str>,
    after: impl AsRef<str>,
    opts: &SedOptions,
) -> Result<Output> {
    let _helper = events::helper("sed");
    let filename = filename.as_ref();
    let before = before.as_ref();
    let after = after.as_ref();
    let env = env();
    let host = current_host(&env, "sed")?.name;
    let script = command::sed_script(before, after, &opts.limit, &opts.flags)
        .map_err(|msg| invalid("sed", &host, &format!("cannot edit '{filename}': {msg}")))?;
    let platform = with_settings(hide("running,stdout"), || {
        run_with(command::uname(), &RunOptions::new().shell(false).pty(false))
    })?;
    // Fabric's temporary file where sed has no -i: named by the host and
    // the file, so that two edits of different files do not collide.
    let mut hasher = Sha1::new();
    hasher.update(host.as_bytes());
    hasher.update(filename.as_bytes());
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let command = command::sed(
        filename,
        &script,
        &opts.backup,
        platform.stdout(),
        &format!("/tmp/{digest}"),
    );
    run_or_sudo(
        &command,
        &RunOptions::new().shell(opts.shell),
        opts.use_sudo,
    )
}

/// Options of [`comment_with`] and [`uncomment_with`] (Fabric's keywords,
/// with its defaults).
#[derive(Debug, Clone)]
pub struct CommentOptions {
    use_sudo: bool,
    char: String,
    backup: String,
    shell: bool,
}

impl Default for CommentOptions {
    fn default() -> CommentOptions {
        CommentOptions {
            use_sudo: false,
            char: "#".to_string(),
            backup: ".bak".to_string(),
            shell: false,
        }
    }
}

impl CommentOptions {
    /// The defaults: `#`, a backup with the suffix `.bak`, as the login
    /// user, without the shell wrapper.
    pub fn new() -> CommentOptions {
        CommentOptions::default()
    }
    /// Edit the file through [`sudo`](crate::sudo).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// The comment character (default `#`; `"# "` comments with a space
    /// after it).
    pub fn char(mut self, comment: impl Into<String>) -> Self {
        self.char = comment.into();
        self
    }
    /// The suffix of the backup (default `.bak`; empty: no backup).
    pub fn backup(mut self, suffix: impl Into<String>) -> Self {
        self.backup = suffix.into();
        self
    }
    /// Wrap the command in the `shell` setting (default false, as in
    /// Fabric).
    pub fn shell(mut self, yes: bool) -> Self {
        self.shell = yes;
        self
    }
}

impl CommentOptions {
    fn sed(&self, limit: &str) -> SedOptions {
        SedOptions::new()
            .limit(limit)
            .use_sudo(self.use_sudo)
            .backup(self.backup.clone())
            .shell(self.shell)
    }
}

/// Comments out the lines of `filename` on the current host that match the
/// regular expression `regex` (Fabric's `comment`): the comment character
/// goes at the very start of each line, through [`sed`] with `before`
/// `^(<regex>)$` (a `^` or `$` of `regex` kept outside the group) and
/// `after` `#\1`.
///
/// ```no_run
/// use twill::contrib::files::{comment, uncomment};
///
/// comment("/etc/fstab", "^/dev/sdb1")?;
/// uncomment("/etc/locale.gen", "en_US.UTF-8")?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn comment(filename: impl AsRef<str>, regex: impl AsRef<str>) -> Result<Output> {
    comment_with(filename, regex, &CommentOptions::new())
}

/// [`comment`] with Fabric's `use_sudo`, `char`, `backup` and `shell`.
pub fn comment_with(
    filename: impl AsRef<str>,
    regex: impl AsRef<str>,
    opts: &CommentOptions,
) -> Result<Output> {
    let _helper = events::helper("comment");
    let filename = filename.as_ref();
    let regex = regex.as_ref();
    let (caret, rest) = match regex.strip_prefix('^') {
        Some(rest) => ("^", rest),
        None => ("", regex),
    };
    let (rest, dollar) = match rest.strip_suffix('$') {
        Some(rest) => (rest, "$"),
        None => (rest, ""),
    };
    sed_with(
        filename,
        format!("{caret}({rest}){dollar}"),
        format!("{}\\1", opts.char),
        &opts.sed(""),
    )
}

/// Uncomments the lines of `filename` on the current host that match the
/// regular expression `regex` (Fabric's `uncomment`): the comment
/// character and one blank after it go, the indentation before it stays
/// (through [`sed`] with `limit` `regex`, `before`
/// `^([[:space:]]*)#[[:space:]]?` and `after` `\1`).
pub fn uncomment(filename: impl AsRef<str>, regex: impl AsRef<str>) -> Result<Output> {
    uncomment_with(filename, regex, &CommentOptions::new())
}

/// [`uncomment`] with Fabric's `use_sudo`, `char`, `backup` and `shell`.
pub fn uncomment_with(
    filename: impl AsRef<str>,
    regex: impl AsRef<str>,
    opts: &CommentOptions,
) -> Result<Output> {
    let _helper = events::helper("uncomment");
    let filename = filename.as_ref();
    let regex = regex.as_ref();
    sed_with(
        filename,
        format!("^([[:space:]]*){}[[:space:]]?", opts.char),
        "\\1",
        &opts.sed(regex),
    )
}

// ---------------------------------------------------------------------------
// upload_template

/// Options of [`upload_template_with`] (Fabric's keywords, with its
/// defaults).
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    use_jinja: bool,
    template_dir: Option<PathBuf>,
    use_sudo: bool,
    backup: bool,
    mirror_local_mode: bool,
    mode: Option<u32>,
    keep_trailing_newline: bool,
    temp_dir: Option<String>,
}

impl Default for TemplateOptions {
    fn default() -> TemplateOptions {
        TemplateOptions {
            use_jinja: false,
            template_dir: None,
            use_sudo: false,
            backup: true,
            mirror_local_mode: false,
            mode: None,
            keep_trailing_newline: false,
            temp_dir: None,
        }
    }
}

impl TemplateOptions {
    /// The defaults: a Python `%(name)s` template, the file it replaces
    /// kept as `<destination>.bak`, uploaded as the login user.
    pub fn new() -> TemplateOptions {
        TemplateOptions::default()
    }
    /// Render the template with Jinja (the `minijinja` crate) instead of
    /// Python's `%` formatting. The template is loaded by its name from
    /// [`template_dir`](Self::template_dir), so it may `include` and
    /// `extend` its neighbours.
    pub fn use_jinja(mut self, yes: bool) -> Self {
        self.use_jinja = yes;
        self
    }
    /// The local directory `filename` is in (default: the current
    /// directory, or [`lcd`](crate::lcd)'s). A relative one follows
    /// `lcd`, a leading `~` is the home directory.
    pub fn template_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.template_dir = Some(dir.into());
        self
    }
    /// Back up and upload through [`sudo`](crate::sudo), for destinations
    /// the login user cannot write.
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Copy the file being replaced to `<destination>.bak` first (default
    /// true).
    pub fn backup(mut self, yes: bool) -> Self {
        self.backup = yes;
        self
    }
    /// Give the uploaded file the template's permission bits.
    pub fn mirror_local_mode(mut self, yes: bool) -> Self {
        self.mirror_local_mode = yes;
        self
    }
    /// Give the uploaded file these permission bits (e.g. `0o640`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Keep the newline that ends a Jinja template (Jinja drops it by
    /// default).
    pub fn keep_trailing_newline(mut self, yes: bool) -> Self {
        self.keep_trailing_newline = yes;
        self
    }
    /// Where `use_sudo` puts its temporary file (default `/tmp`).
    pub fn temp_dir(mut self, dir: impl Into<String>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
}

/// Renders the local template `filename` with `context` and uploads it to
/// `destination` on the current host (Fabric's `upload_template`); returns
/// the remote path written.
///
/// The template is Python `%` formatting by default: `%(name)s` is the
/// value of `name` in the context (`%%` is a `%`), and a name the context
/// does not have is an error naming it. As in Fabric, a template is used
/// as it is when the context is empty (`&()`, an empty map). With
/// [`TemplateOptions::use_jinja`] it is a Jinja template instead.
///
/// The context is any map of names to values:
/// - the current settings, [`&env()`](crate::env), as Fabric's
///   `context=env`: your own keys (text, numbers, booleans, lists of text)
///   and the built-in `user`, `host_string`, `host`, `port`, `shell`,
///   `cwd`, `lcwd`, `sudo_user`, `sudo_prompt`, `command`, `hosts` and
///   `roles`, never the passwords;
/// - any value serde can serialize as a map: a `BTreeMap` or `HashMap`, a
///   struct that derives `Serialize`, `serde_json::json!({...})`, or a list
///   of `(name, value)` pairs (`&[("port", "8000")]`);
/// - `&()` for none.
///
/// As in Fabric: if `destination` is a directory the file keeps the
/// template's name in it; an existing file is first copied to
/// `<destination>.bak` with `cp "$(echo <destination>)"{,.bak}`; the
/// upload itself is [`upload_data`], atomic.
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use twill::contrib::files::{upload_template, upload_template_with, TemplateOptions};
/// use twill::{env, with_settings, Settings};
///
/// // nginx.conf holds `server_name %(domain)s;`
/// with_settings(Settings::new().set("domain", "example.org"), || {
///     upload_template("nginx.conf", "/etc/nginx/sites-enabled/app", &env())
/// })?;
///
/// let context = BTreeMap::from([("workers", 8)]);
/// upload_template_with(
///     "app.ini.j2",
///     "/etc/app/app.ini",
///     &context,
///     &TemplateOptions::new().use_jinja(true).template_dir("templates").use_sudo(true).mode(0o640),
/// )?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn upload_template<C: TemplateContext + ?Sized>(
    filename: impl AsRef<Path>,
    destination: impl AsRef<str>,
    context: &C,
) -> Result<String> {
    upload_template_with(filename, destination, context, &TemplateOptions::new())
}

/// [`upload_template`] with Fabric's `use_jinja`, `template_dir`,
/// `use_sudo`, `backup`, `mirror_local_mode`, `mode`,
/// `keep_trailing_newline` and `temp_dir`.
pub fn upload_template_with<C: TemplateContext + ?Sized>(
    filename: impl AsRef<Path>,
    destination: impl AsRef<str>,
    context: &C,
    opts: &TemplateOptions,
) -> Result<String> {
    let _helper = events::helper("upload_template");
    let destination = destination.as_ref();
    let filename = filename.as_ref();
    let env = env();
    let host = current_host(&env, "upload_template")?.name;
    // Rendered before the host is touched, so that a template that cannot
    // be rendered changes nothing there.
    // Fabric's `apply_lcwd` and `expanduser`.
    let (lcwd, home) = (env.lcwd(), std::env::var_os("HOME"));
    let dir = local_path(
        opts.template_dir.as_deref().unwrap_or(Path::new("")),
        &lcwd,
        home.as_deref(),
    );
    let local = if opts.use_jinja {
        dir.join(filename)
    } else {
        let joined = match &opts.template_dir {
            Some(d) => d.join(filename),
            None => filename.to_path_buf(),
        };
        local_path(&joined, &lcwd, home.as_deref())
    };
    let fail = |msg: String| {
        Error::new(
            ErrorKind::Settings,
            format!(
                "upload_template() on {host}: cannot render '{}': {msg}",
                local.display()
            ),
        )
        .with_host(&host)
    };
    let values = context.template_values().map_err(&fail)?;
    let text = if opts.use_jinja {
        template::render_jinja(&dir, filename, &values, opts.keep_trailing_newline)
    } else {
        let source = std::fs::read_to_string(&local).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "upload_template() on {host}: cannot read template '{}': {e}",
                    local.display()
                ),
            )
            .with_host(&host)
        })?;
        template::render_percent(&source, &values)
    }
    .map_err(&fail)?;
    let mode = match opts.mode {
        Some(mode) => Some(mode),
        None if opts.mirror_local_mode => {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(&local).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "upload_template() on {host}: cannot read the mode of '{}': {e}",
                        local.display()
                    ),
                )
                .with_host(&host)
            })?;
            Some(meta.permissions().mode() & 0o7777)
        }
        None => None,
    };

    let run = |command: &str, run_opts: &RunOptions| run_or_sudo(command, run_opts, opts.use_sudo);
    let quiet = RunOptions::new().quiet(true);
    let mut destination = destination.to_string();
    if run(&command::test_expanded('d', &destination), &quiet)?.succeeded() {
        if !destination.ends_with('/') {
            destination.push('/');
        }
        let name = filename.file_name().unwrap_or_default().to_string_lossy();
        destination.push_str(&name);
    }
    let exists_opts = ExistsOptions::new().use_sudo(opts.use_sudo);
    if opts.backup && exists_with(&destination, &exists_opts)? {
        run(&command::backup_copy(&destination), &RunOptions::new())?;
    }
    let mut upload = UploadOptions::new().use_sudo(opts.use_sudo);
    if let Some(mode) = mode {
        upload = upload.mode(mode);
    }
    if let Some(dir) = &opts.temp_dir {
        upload = upload.temp_dir(dir.clone());
    }
    upload_data(text.as_bytes(), &destination, &upload)
}

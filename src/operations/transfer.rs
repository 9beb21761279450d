//! `upload`/`put` and `download`/`get` over SFTP.

use std::fs;
use std::io::{Cursor, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::operations::options::RunOptions;
use crate::operations::remote::{connection, current_host, ssh_error, sudo_with};
use crate::output;
use crate::ssh::Connection;
use crate::state::{env, Env};

/// Options of [`upload_with`] (Fabric's `put` keywords).
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    use_sudo: bool,
    mirror_local_mode: bool,
    mode: Option<u32>,
    no_glob: bool,
    temp_dir: Option<String>,
}

impl UploadOptions {
    /// The defaults: globs expand, mode as the server creates it.
    pub fn new() -> UploadOptions {
        UploadOptions::default()
    }
    /// Upload to a temporary file, then `sudo mv` it into place (for
    /// targets the login user cannot write).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Give the remote file the local file's permission bits.
    pub fn mirror_local_mode(mut self, yes: bool) -> Self {
        self.mirror_local_mode = yes;
        self
    }
    /// Give the remote file these permission bits (e.g. `0o640`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Treat the local path literally, even if it contains `*` or `?`.
    pub fn use_glob(mut self, yes: bool) -> Self {
        self.no_glob = !yes;
        self
    }
    /// Where `use_sudo` puts its temporary file (default: the target's own
    /// directory is not writable, so `/tmp`).
    pub fn temp_dir(mut self, dir: impl Into<String>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
}

/// Options of [`download_with`].
#[derive(Debug, Clone, Default)]
pub struct DownloadOptions {
    use_sudo: bool,
    temp_dir: Option<String>,
}

impl DownloadOptions {
    /// The defaults.
    pub fn new() -> DownloadOptions {
        DownloadOptions::default()
    }
    /// Copy the file with `sudo cp` to a temporary file readable by the
    /// login user first (for files only root can read).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Where `use_sudo` puts its temporary copy (default `/tmp`).
    pub fn temp_dir(mut self, dir: impl Into<String>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
}

/// Uploads `local` to `remote` on the current host (Fabric's `put`) and
/// returns the remote paths written.
///
/// `local` may be a file, a directory (uploaded recursively) or a glob.
/// Relative local paths honour [`lcd`](crate::lcd), relative remote paths
/// [`cd`](crate::cd) (else the home directory); a leading `~` is the home
/// directory, and an empty remote path is the home directory itself. If
/// the remote path is an existing directory the file keeps its name
/// inside it. Missing remote directories are created. Each file is
/// written to a temporary name beside the target and renamed over it, so
/// a failed upload never leaves a truncated target.
///
/// ```no_run
/// use twill::{put, with_settings, Settings};
///
/// with_settings(Settings::new().host_string("deploy@web1"), || {
///     put("dist/app.tar.gz", "/srv/releases/")?;
///     twill::Result::Ok(())
/// })?;
/// # Ok::<(), twill::Error>(())
/// ```
#[doc(alias = "put")]
pub fn upload(local: impl AsRef<Path>, remote: &str) -> Result<Vec<String>> {
    upload_with(local, remote, &UploadOptions::new())
}

/// Fabric's name for [`upload`].
pub fn put(local: impl AsRef<Path>, remote: &str) -> Result<Vec<String>> {
    upload(local, remote)
}

/// [`upload`] with explicit options.
pub fn upload_with(
    local: impl AsRef<Path>,
    remote: &str,
    opts: &UploadOptions,
) -> Result<Vec<String>> {
    upload_inner(local.as_ref(), remote, opts)
}

/// Uploads `data` from memory to the file `remote` (Fabric's `put` of a
/// file-like object).
pub fn upload_data(data: impl AsRef<[u8]>, remote: &str, opts: &UploadOptions) -> Result<String> {
    let env = env();
    let host = current_host(&env, "put")?;
    let conn = connection(&env, &host)?;
    let mut target = remote_path(&env, &conn, &host, remote)?;
    if is_remote_dir(&conn, &host, &target)? {
        return Err(Error::new(
            ErrorKind::Transfer,
            format!("put() of in-memory data needs a file name, but '{target}' on {host} is a directory"),
        )
        .with_host(&host));
    }
    output::running_line(&env, &host, &format!("put: <data> -> {target}"));
    put_file(
        &conn,
        &host,
        &mut Cursor::new(data.as_ref()),
        &mut target,
        None,
        opts,
    )?;
    Ok(target)
}

fn upload_inner(local: &Path, remote: &str, opts: &UploadOptions) -> Result<Vec<String>> {
    let env = env();
    let host = current_host(&env, "put")?;
    let local = local_path(&env, local);
    let sources = expand_local(&local, !opts.no_glob)?;
    let conn = connection(&env, &host)?;
    let base = remote_path(&env, &conn, &host, remote)?;
    // With sudo, the login user may not even be allowed to look at the target.
    let view = RemoteView {
        conn: &conn,
        host: &host,
        sudo: opts.use_sudo,
    };
    let base_is_dir = view.is_dir(&base)?;
    let several = sources.len() > 1;
    let mut written = Vec::new();
    for src in sources {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = if base_is_dir || several || remote.ends_with('/') {
            join_remote(&base, &name)
        } else {
            base.clone()
        };
        if src.is_dir() {
            for (file, rel) in walk_local(&src)? {
                let target = join_remote(&dest, &rel);
                written.push(put_one(&env, &conn, &host, &file, target, opts)?);
            }
        } else {
            written.push(put_one(&env, &conn, &host, &src, dest, opts)?);
        }
    }
    Ok(written)
}

fn put_one(
    env: &Env,
    conn: &Connection,
    host: &str,
    src: &Path,
    mut target: String,
    opts: &UploadOptions,
) -> Result<String> {
    output::running_line(env, host, &format!("put: {} -> {target}", src.display()));
    let mut file = fs::File::open(src).map_err(|e| {
        Error::new(
            ErrorKind::Transfer,
            format!(
                "put() on {host}: cannot read local file '{}': {e}",
                src.display()
            ),
        )
        .with_host(host)
    })?;
    let mode = match (opts.mode, opts.mirror_local_mode) {
        (Some(m), _) => Some(m),
        (None, true) => file
            .metadata()
            .ok()
            .map(|m| m.permissions().mode() & 0o7777),
        _ => None,
    };
    put_file(conn, host, &mut file, &mut target, mode, opts)?;
    Ok(target)
}

fn put_file(
    conn: &Connection,
    host: &str,
    src: &mut dyn Read,
    target: &mut String,
    mode: Option<u32>,
    opts: &UploadOptions,
) -> Result<()> {
    if !opts.use_sudo {
        conn.upload(src, target, mode.map(|m| m as i32))
            .map_err(|e| ssh_error(e, host))?;
        return Ok(());
    }
    let dir = opts.temp_dir.clone().unwrap_or_else(|| "/tmp".to_string());
    let tmp = join_remote(&dir, &format!(".twill-put-{}", unique_suffix()));
    conn.upload(src, &tmp, Some(0o600))
        .map_err(|e| ssh_error(e, host))?;
    let parent = parent_remote(target);
    let mut script = format!("mkdir -p \"{parent}\" && mv \"{tmp}\" \"{target}\"");
    if let Some(m) = mode {
        script.push_str(&format!(" && chmod {m:o} \"{target}\""));
    }
    let quiet = RunOptions::new().quiet(true);
    let moved = sudo_with(&script, &quiet)?;
    if moved.failed() {
        let _ = sudo_with(&format!("rm -f \"{tmp}\""), &quiet);
        return Err(Error::new(
            ErrorKind::Transfer,
            format!(
                "put() on {host}: could not move the upload into place at '{target}': {}",
                moved.stdout()
            ),
        )
        .with_host(host)
        .with_output(moved));
    }
    Ok(())
}

/// Downloads `remote` from the current host to `local` (Fabric's `get`)
/// and returns the local paths written.
///
/// `remote` may be a file, a directory (downloaded recursively) or a glob
/// (`*`, `?`). `local` may use Fabric's `%(host)s`, `%(path)s`,
/// `%(dirname)s` and `%(basename)s`; an empty `local` is
/// `%(host)s/%(path)s`. Relative local paths honour [`lcd`](crate::lcd);
/// missing local directories are created; each file is written to a
/// temporary name and renamed into place.
#[doc(alias = "get")]
pub fn download(remote: &str, local: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    download_with(remote, local, &DownloadOptions::new())
}

/// Fabric's name for [`download`].
pub fn get(remote: &str, local: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    download(remote, local)
}

/// [`download`] with explicit options.
pub fn download_with(
    remote: &str,
    local: impl AsRef<Path>,
    opts: &DownloadOptions,
) -> Result<Vec<PathBuf>> {
    let env = env();
    let host = current_host(&env, "get")?;
    let conn = connection(&env, &host)?;
    let path = remote_path(&env, &conn, &host, remote)?;
    let view = RemoteView {
        conn: &conn,
        host: &host,
        sudo: opts.use_sudo,
    };
    let sources = view.expand(&path)?;
    let template = local.as_ref().to_string_lossy().into_owned();
    let template = if template.is_empty() {
        "%(host)s/%(path)s".to_string()
    } else {
        template
    };
    let mut written = Vec::new();
    for src in sources {
        if view.is_dir(&src)? {
            let root_name = src
                .rsplit('/')
                .find(|p| !p.is_empty())
                .unwrap_or("")
                .to_string();
            for (file, rel) in view.walk(&src)? {
                let dest = local_target(
                    &env,
                    &host,
                    &template,
                    &file,
                    Some(&format!("{root_name}/{rel}")),
                );
                written.push(get_one(&env, &conn, &host, &file, dest, opts)?);
            }
        } else {
            let dest = local_target(&env, &host, &template, &src, None);
            written.push(get_one(&env, &conn, &host, &src, dest, opts)?);
        }
    }
    Ok(written)
}

/// Downloads the remote file `remote` into memory.
pub fn download_data(remote: &str) -> Result<Vec<u8>> {
    let env = env();
    let host = current_host(&env, "get")?;
    let conn = connection(&env, &host)?;
    let path = remote_path(&env, &conn, &host, remote)?;
    output::running_line(&env, &host, &format!("download: <data> <- {path}"));
    let mut data = Vec::new();
    conn.download(&path, &mut data)
        .map_err(|e| ssh_error(e, &host))?;
    Ok(data)
}

fn get_one(
    env: &Env,
    conn: &Connection,
    host: &str,
    src: &str,
    dest: PathBuf,
    opts: &DownloadOptions,
) -> Result<PathBuf> {
    output::running_line(env, host, &format!("download: {} <- {src}", dest.display()));
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| {
        Error::io(
            format_args!("get() cannot create '{}'", parent.display()),
            e,
        )
        .with_host(host)
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".twill-get-")
        .tempfile_in(parent)
        .map_err(|e| {
            Error::io(
                format_args!("get() cannot write in '{}'", parent.display()),
                e,
            )
            .with_host(host)
        })?;
    if opts.use_sudo {
        let dir = opts.temp_dir.clone().unwrap_or_else(|| "/tmp".to_string());
        let copy = join_remote(&dir, &format!(".twill-get-{}", unique_suffix()));
        let user = conn
            .name()
            .rsplit_once('@')
            .map_or("", |(u, _)| u)
            .to_string();
        let quiet = RunOptions::new().quiet(true);
        let prepared = sudo_with(
            &format!(
                "cp -p \"{src}\" \"{copy}\" && chown {user} \"{copy}\" && chmod 400 \"{copy}\""
            ),
            &quiet,
        )?;
        let result = if prepared.failed() {
            Err(Error::new(
                ErrorKind::Transfer,
                format!(
                    "get() on {host}: could not copy '{src}' with sudo: {}",
                    prepared.stdout()
                ),
            )
            .with_host(host))
        } else {
            conn.download(&copy, tmp.as_file_mut())
                .map_err(|e| ssh_error(e, host))
        };
        let _ = sudo_with(&format!("rm -f \"{copy}\""), &quiet);
        result?;
    } else {
        conn.download(src, tmp.as_file_mut())
            .map_err(|e| ssh_error(e, host))?;
    }
    tmp.persist(&dest).map_err(|e| {
        Error::io(
            format_args!("get() cannot write '{}'", dest.display()),
            e.error,
        )
        .with_host(host)
    })?;
    Ok(dest)
}

// --- paths ------------------------------------------------------------------

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{t:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn local_path(env: &Env, p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    let expanded = match s.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(format!("{}{rest}", Path::new(&home).display())),
            None => p.to_path_buf(),
        },
        _ => p.to_path_buf(),
    };
    let lcwd = env.lcwd();
    if expanded.is_relative() && !lcwd.is_empty() {
        Path::new(lcwd).join(expanded)
    } else {
        expanded
    }
}

fn expand_local(p: &Path, use_glob: bool) -> Result<Vec<PathBuf>> {
    let s = p.to_string_lossy();
    if use_glob && s.contains(['*', '?', '[']) {
        let mut found: Vec<PathBuf> = glob::glob(&s)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transfer,
                    format!("put(): '{s}' is not a valid glob: {e}"),
                )
            })?
            .filter_map(|r| r.ok())
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::Transfer,
                format!("put(): '{s}' is not a valid local path or glob"),
            ));
        }
        return Ok(found);
    }
    if !p.exists() {
        return Err(Error::new(
            ErrorKind::Transfer,
            format!("put(): local path '{s}' does not exist"),
        ));
    }
    Ok(vec![p.to_path_buf()])
}

fn walk_local(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| Error::io(format_args!("put() cannot list '{}'", dir.display()), e))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.path().is_dir() {
                stack.push((e.path(), rel_name));
            } else {
                out.push((e.path(), rel_name));
            }
        }
    }
    Ok(out)
}

fn remote_path(env: &Env, conn: &Connection, host: &str, p: &str) -> Result<String> {
    let home = || conn.home_dir().map_err(|e| ssh_error(e, host));
    if p.is_empty() {
        return home();
    }
    if p == "~" {
        return home();
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return Ok(join_remote(&home()?, rest));
    }
    if p.starts_with('/') {
        return Ok(p.to_string());
    }
    let cwd = env.cwd().to_string();
    let base = if cwd.is_empty() {
        home()?
    } else if cwd.starts_with('/') {
        cwd
    } else if let Some(rest) = cwd.strip_prefix("~/") {
        join_remote(&home()?, rest)
    } else if cwd == "~" {
        home()?
    } else {
        join_remote(&home()?, &cwd)
    };
    Ok(join_remote(&base, p))
}

fn join_remote(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

fn parent_remote(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    }
}

fn is_remote_dir(conn: &Connection, host: &str, p: &str) -> Result<bool> {
    Ok(conn
        .stat(p)
        .map_err(|e| ssh_error(e, host))?
        .is_some_and(|s| s.is_dir))
}

/// Looks at remote paths for a download: over SFTP, or through sudo when
/// the login user may not see them.
struct RemoteView<'a> {
    conn: &'a Connection,
    host: &'a str,
    sudo: bool,
}

impl RemoteView<'_> {
    fn sudo_lines(&self, script: &str) -> Result<Vec<String>> {
        let out = sudo_with(script, &RunOptions::new().quiet(true).pty(false))?;
        Ok(out
            .stdout_lines()
            .into_iter()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    fn is_dir(&self, p: &str) -> Result<bool> {
        if self.sudo {
            let out = sudo_with(&format!("test -d \"{p}\""), &RunOptions::new().quiet(true))?;
            return Ok(out.succeeded());
        }
        is_remote_dir(self.conn, self.host, p)
    }

    fn exists(&self, p: &str) -> Result<bool> {
        if self.sudo {
            let out = sudo_with(&format!("test -e \"{p}\""), &RunOptions::new().quiet(true))?;
            return Ok(out.succeeded());
        }
        Ok(self
            .conn
            .stat(p)
            .map_err(|e| ssh_error(e, self.host))?
            .is_some())
    }

    /// The paths a glob (`*`, `?`) matches, or the path itself.
    fn expand(&self, p: &str) -> Result<Vec<String>> {
        let host = self.host;
        if !p.contains(['*', '?']) {
            if !self.exists(p)? {
                return Err(Error::new(
                    ErrorKind::Transfer,
                    format!("get() on {host}: remote path '{p}' does not exist"),
                )
                .with_host(host));
            }
            return Ok(vec![p.to_string()]);
        }
        let mut found = if self.sudo {
            self.sudo_lines(&format!(
                "for f in {p}; do [ -e \"$f\" ] && echo \"$f\"; done; true"
            ))?
        } else {
            let dir = parent_remote(p);
            let pattern = glob::Pattern::new(p).map_err(|e| {
                Error::new(
                    ErrorKind::Transfer,
                    format!("get(): '{p}' is not a valid glob: {e}"),
                )
            })?;
            self.conn
                .read_dir(&dir)
                .map_err(|e| ssh_error(e, host))?
                .into_iter()
                .map(|(name, _)| join_remote(&dir, &name))
                .filter(|full| pattern.matches(full))
                .collect()
        };
        found.sort();
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::Transfer,
                format!("get() on {host}: '{p}' matched no remote files"),
            )
            .with_host(host));
        }
        Ok(found)
    }

    /// Every file below `root`, with its path relative to `root`.
    fn walk(&self, root: &str) -> Result<Vec<(String, String)>> {
        if self.sudo {
            let prefix = format!("{}/", root.trim_end_matches('/'));
            let files = self.sudo_lines(&format!("find \"{root}\" -type f | sort"))?;
            return Ok(files
                .into_iter()
                .map(|f| {
                    let rel = f.strip_prefix(&prefix).unwrap_or(&f).to_string();
                    (f, rel)
                })
                .collect());
        }
        let mut out = Vec::new();
        let mut stack = vec![(root.to_string(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries = self
                .conn
                .read_dir(&dir)
                .map_err(|e| ssh_error(e, self.host))?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, stat) in entries {
                if name == "." || name == ".." {
                    continue;
                }
                let full = join_remote(&dir, &name);
                let rel_name = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if stat.is_dir {
                    stack.push((full, rel_name));
                } else {
                    out.push((full, rel_name));
                }
            }
        }
        Ok(out)
    }
}

/// Fabric's local path for a download: `%(host)s` etc. interpolated, an
/// existing directory gets the file's name (or its path below a
/// downloaded directory), relative paths honour `lcd`.
fn local_target(
    env: &Env,
    host: &str,
    template: &str,
    remote: &str,
    below: Option<&str>,
) -> PathBuf {
    let basename = remote.rsplit('/').next().unwrap_or(remote);
    let dirname = parent_remote(remote);
    let rel_path = remote.trim_start_matches('/');
    let interpolated = template
        .replace("%(host)s", &host.replace(':', "-"))
        .replace("%(path)s", rel_path)
        .replace("%(dirname)s", dirname.trim_start_matches('/'))
        .replace("%(basename)s", basename);
    let mut dest = local_path(env, Path::new(&interpolated));
    let templated = interpolated != template;
    if !templated && (dest.is_dir() || template.ends_with('/')) {
        dest = dest.join(below.unwrap_or(basename));
    } else if let (false, Some(below)) = (templated, below) {
        dest = dest.join(below);
    }
    dest
}

//! `download`/`get`: remote files to this machine.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{paths, text, DownloadOptions, Metered, Remote};
use crate::command;
use crate::error::{Error, Result};
use crate::events::{OpKind, Tally};
use crate::operations::dry_run;
use crate::output;

/// Downloads `remote` from the current host to `local` (Fabric's `get`)
/// and returns the local paths written.
///
/// `remote` may be a file, a directory (downloaded recursively) or a glob
/// (`*`, `?`). `local` may use Fabric's `%(host)s`, `%(path)s`,
/// `%(dirname)s` and `%(basename)s`; an empty `local` is
/// `%(host)s/%(path)s`. Relative local paths honour [`lcd`](crate::lcd);
/// missing local directories are created; each file is written to a
/// temporary name and renamed into place, and gets the remote file's
/// permission bits less the local umask (as `scp` does). Symlinks in a
/// downloaded directory are made as symlinks. At a terminal, a file that
/// takes longer than the `progress_delay` setting (0.5 s) to move shows a
/// progress bar while it moves, as [`upload`](crate::upload) does.
///
/// On a server without an SFTP subsystem (no `Subsystem sftp` in its
/// sshd_config), a single file comes over SCP with the same rules; a
/// directory or a glob is an error of kind
/// [`ErrorKind::Transfer`](crate::ErrorKind::Transfer), since only SFTP
/// carries those.
#[doc(alias = "get")]
pub fn download(remote: impl AsRef<str>, local: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    download_with(remote, local, &DownloadOptions::new())
}

/// Fabric's name for [`download`].
pub fn get(remote: impl AsRef<str>, local: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    download(remote, local)
}

/// [`download`] with explicit options.
pub fn download_with(
    remote: impl AsRef<str>,
    local: impl AsRef<Path>,
    opts: &DownloadOptions,
) -> Result<Vec<PathBuf>> {
    let (remote, local) = (remote.as_ref(), local.as_ref());
    let what = format!("{remote} -> {}", local.display());
    Remote::recorded("get", what, |env, host| {
        if env.dry_run() {
            return dry_run::get(&env, remote, local, opts);
        }
        let r = Remote::connect(env, host)?;
        let path = r.path(remote)?;
        let sources = expand(&r, &path, opts.use_sudo)?;
        let template = local.to_string_lossy().into_owned();
        let template = if template.is_empty() {
            "%(host)s/%(path)s".to_string()
        } else {
            template
        };
        let mut written = Vec::new();
        for src in sources {
            if r.scp && r.is_dir(&src, opts.use_sudo)? {
                return Err(r.needs_sftp("get", "the directory", &src));
            }
            if opts.use_sudo {
                let copy = SudoCopy::make(&r, &src, opts)?;
                let got = get_path(&r, &copy.path, &src, &template, &mut written);
                copy.remove();
                got?;
            } else {
                get_path(&r, &src, &src, &template, &mut written)?;
            }
        }
        Ok(written)
    })
}

/// Downloads the remote file `remote` into memory.
pub fn download_data(remote: impl AsRef<str>) -> Result<Vec<u8>> {
    let remote = remote.as_ref();
    Remote::recorded("get", format!("{remote} -> <data>"), |env, host| {
        if env.dry_run() {
            return dry_run::get_data(&env, remote);
        }
        let r = Remote::connect(env, host)?;
        let path = r.path(remote)?;
        output::running_line(
            &r.env,
            &r.host,
            &format!("download: <data> <- {}", output::path_text(&path)),
        );
        let mut dst = Metered::new(&r, OpKind::Get, &path, None, Tally::new(Vec::new()));
        r.read_file(&path, &mut dst)?;
        Ok(dst.into_inner().moved(Path::new("<data>"), &path))
    })
}

/// Downloads the file or directory at `from`, named locally after `shown`
/// (the path the script asked for; `from` differs for a sudo copy).
fn get_path(
    r: &Remote,
    from: &Path,
    shown: &Path,
    template: &str,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let (home, lcwd) = (std::env::var_os("HOME"), r.env.lcwd());
    let place = |p: &Path| paths::local_path(p, &lcwd, home.as_deref());
    let is_dir = |p: &Path| p.is_dir();
    // Over SCP the caller has refused directories.
    let remote_dir = !r.scp
        && r.conn
            .stat(from)
            .map_err(|e| r.err(e))?
            .is_some_and(|s| s.is_dir);
    if !remote_dir {
        let dest = paths::local_target(&r.host, template, shown, None, place, is_dir);
        written.push(get_file(r, from, shown, dest)?);
        return Ok(());
    }
    let root_name = PathBuf::from(shown.file_name().unwrap_or_default());
    for entry in walk_remote(r, from)? {
        let (rel, link) = match &entry {
            Found::File(rel) => (rel, None),
            Found::Link(rel, target) => (rel, Some(target)),
        };
        let below = root_name.join(rel);
        let dest = paths::local_target(
            &r.host,
            template,
            &shown.join(rel),
            Some(&below),
            place,
            is_dir,
        );
        match link {
            None => written.push(get_file(r, &from.join(rel), &shown.join(rel), dest)?),
            Some(target) => written.push(make_link(r, target, &shown.join(rel), dest)?),
        }
    }
    Ok(())
}

fn get_file(r: &Remote, from: &Path, shown: &Path, dest: PathBuf) -> Result<PathBuf> {
    output::running_line(
        &r.env,
        &r.host,
        &format!(
            "download: {} <- {}",
            output::path_text(&dest),
            output::path_text(shown)
        ),
    );
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| {
        Error::io(
            format_args!("get() cannot create '{}'", parent.display()),
            e,
        )
        .with_host(&r.host)
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".twill-get-")
        .tempfile_in(parent)
        .map_err(|e| {
            Error::io(
                format_args!("get() cannot write in '{}'", parent.display()),
                e,
            )
            .with_host(&r.host)
        })?;
    let tally = Tally::new(tmp.as_file_mut());
    let mut dst = Metered::new(r, OpKind::Get, shown, None, tally);
    let stat = r.read_file(from, &mut dst)?;
    dst.into_inner().moved(&dest, shown);
    let mode = stat.mode & 0o777 & !umask();
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| {
            Error::io(
                format_args!("get() cannot set the mode of '{}'", dest.display()),
                e,
            )
            .with_host(&r.host)
        })?;
    tmp.persist(&dest).map_err(|e| {
        Error::io(
            format_args!("get() cannot write '{}'", dest.display()),
            e.error,
        )
        .with_host(&r.host)
    })?;
    Ok(dest)
}

/// Makes `dest` a local symlink to `target`, replacing a file or link.
fn make_link(r: &Remote, target: &Path, shown: &Path, dest: PathBuf) -> Result<PathBuf> {
    output::running_line(
        &r.env,
        &r.host,
        &format!(
            "download: {} <- {} (symlink)",
            output::path_text(&dest),
            output::path_text(shown)
        ),
    );
    let fail = |e: std::io::Error| {
        Error::io(
            format_args!("get() cannot make the link '{}'", dest.display()),
            e,
        )
        .with_host(&r.host)
    };
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    if fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(&dest).map_err(fail)?;
    }
    std::os::unix::fs::symlink(target, &dest).map_err(fail)?;
    Ok(dest)
}

/// The process's umask, read without changing it.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// What a remote directory holds.
enum Found {
    /// A file, by its path below the directory.
    File(PathBuf),
    /// A symlink, by its path below the directory, and what it points to.
    Link(PathBuf, PathBuf),
}

/// Every file and symlink below `root`, sorted by name within each
/// directory; symlinks are not followed.
fn walk_remote(r: &Remote, root: &Path) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut subdirs = Vec::new();
        for (name, stat) in r.conn.read_dir(&dir).map_err(|e| r.err(e))? {
            let rel_name = rel.join(&name);
            if stat.is_symlink {
                let target = r.conn.read_link(&dir.join(&name)).map_err(|e| r.err(e))?;
                out.push(Found::Link(rel_name, target));
            } else if stat.is_dir {
                subdirs.push(rel_name);
            } else if stat.is_file {
                out.push(Found::File(rel_name));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// The paths a glob (`*`, `?`, `[...]`) matches, or the path itself.
fn expand(r: &Remote, p: &Path, sudo: bool) -> Result<Vec<PathBuf>> {
    let pattern_text = text(p);
    let is_glob = pattern_text.contains(['*', '?', '[']);
    if is_glob && r.scp {
        return Err(r.needs_sftp("get", "the glob", p));
    }
    if !is_glob {
        if !r.exists(p, sudo)? {
            return Err(r.error(format!(
                "get() on {}: remote path '{}' does not exist",
                r.host,
                p.display()
            )));
        }
        return Ok(vec![p.to_path_buf()]);
    }
    let mut found: Vec<PathBuf> = if sudo {
        let (out, bytes) = r.sudo_raw(&command::glob_list(&pattern_text))?;
        if out.failed() {
            return Err(r
                .error(format!(
                    "get() on {}: could not list '{}' with sudo: {}",
                    r.host,
                    p.display(),
                    out.stderr()
                ))
                .with_output(out));
        }
        bytes
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| PathBuf::from(OsString::from_vec(n.to_vec())))
            .collect()
    } else {
        let dir = paths::parent(p);
        let pattern = glob::Pattern::new(&pattern_text)
            .map_err(|e| r.error(format!("get(): '{pattern_text}' is not a valid glob: {e}")))?;
        r.conn
            .read_dir(&dir)
            .map_err(|e| r.err(e))?
            .into_iter()
            .map(|(name, _)| dir.join(name))
            .filter(|full| pattern.matches_path(full))
            .collect()
    };
    found.sort();
    if found.is_empty() {
        return Err(r.error(format!(
            "get() on {}: '{}' matched no remote files",
            r.host,
            p.display()
        )));
    }
    Ok(found)
}

/// A copy made with sudo into a private temporary directory that the
/// login user owns, removed again with [`SudoCopy::remove`].
struct SudoCopy<'a> {
    r: &'a Remote,
    dir: String,
    /// The copy of the source, inside `dir`.
    path: PathBuf,
}

impl<'a> SudoCopy<'a> {
    fn make(r: &'a Remote, src: &Path, opts: &DownloadOptions) -> Result<SudoCopy<'a>> {
        let src_text = src.to_str().ok_or_else(|| {
            r.error(format!(
                "get() on {}: '{}' is not UTF-8, which a sudo download cannot carry",
                r.host,
                src.display()
            ))
        })?;
        let name = src.file_name().ok_or_else(|| {
            r.error(format!(
                "get() on {}: '{}' has no name to copy",
                r.host,
                src.display()
            ))
        })?;
        let user = r
            .conn
            .name()
            .rsplit_once('@')
            .map_or("", |(u, _)| u)
            .to_string();
        let temp_dir = opts.temp_dir.as_deref().unwrap_or("/tmp");
        let (out, bytes) = r.sudo_raw(&command::copy_out(src_text, temp_dir, &user))?;
        let dir = String::from_utf8_lossy(&bytes)
            .trim_end_matches('\n')
            .to_string();
        let made_here = dir.starts_with(temp_dir.trim_end_matches('/')) && !dir.contains('\n');
        if out.failed() || !made_here {
            if made_here {
                let _ = r.sudo_raw(&command::remove(&dir));
            }
            return Err(r
                .error(format!(
                    "get() on {}: could not copy '{}' with sudo: {}",
                    r.host,
                    src.display(),
                    out.stderr()
                ))
                .with_output(out));
        }
        let path = Path::new(&dir).join(name);
        Ok(SudoCopy { r, dir, path })
    }

    fn remove(self) {
        let _ = self.r.sudo_raw(&command::remove(&self.dir));
    }
}

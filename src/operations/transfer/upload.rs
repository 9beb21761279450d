//! `upload`/`put`: local files to the current host.

use std::fs;
use std::io::{Cursor, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{paths, text, unique_suffix, Metered, Remote, UploadOptions};
use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{OpKind, Tally};
use crate::operations::dry_run;
use crate::output;

/// Uploads `local` to `remote` on the current host (Fabric's `put`) and
/// returns the remote paths written.
///
/// `local` may be a file, a directory (uploaded recursively) or a glob.
/// Relative local paths honour [`lcd`](crate::lcd), relative remote paths
/// [`cd`](crate::cd) (else the home directory); a leading `~` is the home
/// directory, `~user` that user's home directory, and an empty remote path
/// is the home directory itself. If the remote path is an existing
/// directory the file keeps its name inside it. Missing remote directories
/// are created.
///
/// Each file is written to a temporary name beside the target
/// (`.<name>.twill-upload-<pid>-<n>.part`) and renamed over it, so a
/// failed upload never leaves a truncated target, and the temporary file
/// is removed on every failure that leaves the connection usable. A target
/// that is a symlink is written through: the file it points to gets the
/// new content, as with `sftp`. Where the target's directory does not let
/// the login user create the temporary file but the target itself is
/// writable, the file is written in place; that path is not atomic.
///
/// In an uploaded directory, symlinks are uploaded as symlinks (as
/// `rsync -a` does), so a link pointing outside the tree, in a loop or
/// nowhere uploads as the link it is; see
/// [`UploadOptions::follow_links`]. File names that are not UTF-8
/// transfer unchanged.
///
/// At a terminal, a file that takes longer than the `progress_delay`
/// setting (0.5 s) to move shows a progress bar under its `put:` line
/// while it moves (the `running` output group; nothing when the output
/// is not a terminal).
///
/// On a server without an SFTP subsystem (no `Subsystem sftp` in its
/// sshd_config), a single file goes over SCP with the same rules (a
/// temporary file beside the target, moved over it; `mode`,
/// `mirror_local_mode`, `use_sudo`), except that a target whose directory
/// the login user may not write in is refused rather than written in
/// place (`use_sudo` places it); a directory or a glob is an error of
/// kind [`ErrorKind::Transfer`], since only SFTP carries those.
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
pub fn upload(local: impl AsRef<Path>, remote: impl AsRef<str>) -> Result<Vec<String>> {
    upload_with(local, remote, &UploadOptions::new())
}

/// Fabric's name for [`upload`].
pub fn put(local: impl AsRef<Path>, remote: impl AsRef<str>) -> Result<Vec<String>> {
    upload(local, remote)
}

/// [`upload`] with explicit options.
pub fn upload_with(
    local: impl AsRef<Path>,
    remote: impl AsRef<str>,
    opts: &UploadOptions,
) -> Result<Vec<String>> {
    let (local, remote) = (local.as_ref(), remote.as_ref());
    let what = format!("{} -> {remote}", local.display());
    // A missing host, then a missing local file, are found before
    // connecting.
    Remote::recorded("put", what, |env, host| {
        let home = std::env::var_os("HOME");
        let local = paths::local_path(local, &env.lcwd(), home.as_deref());
        if env.dry_run() {
            return dry_run::put(&env, &host.name, &local, remote, opts);
        }
        let (sources, globbed) = expand_local(&local, !opts.no_glob)?;
        let r = Remote::connect(env, host)?;
        if r.scp {
            // Nothing goes when part of it cannot.
            if globbed {
                return Err(r.needs_sftp("put", "the glob", &local));
            }
            if let Some(dir) = sources.iter().find(|s| s.is_dir()) {
                return Err(r.needs_sftp("put", "the directory", dir));
            }
        }
        let base = r.path(remote)?;
        // With sudo, the login user may not even be allowed to look at the target.
        let base_is_dir = r.is_dir(&base, opts.use_sudo)?;
        let several = sources.len() > 1;
        let mut written = Vec::new();
        let mut skipped = Vec::new();
        for src in sources {
            let dest = if base_is_dir || several || remote.ends_with('/') {
                base.join(src.file_name().unwrap_or_default())
            } else {
                base.clone()
            };
            if src.is_dir() {
                for entry in walk_local(&src, opts.follow_links)? {
                    match entry {
                        Entry::File(file, rel) => {
                            written.push(put_one(&r, &file, dest.join(rel), opts)?);
                        }
                        Entry::Link(target, rel) => {
                            written.push(put_link(&r, &target, &dest.join(rel), opts)?);
                        }
                        Entry::Skipped(path, why) => {
                            output::warning(
                                &r.env,
                                &format!("[{}] put: skipped {}: {why}", r.host, path.display()),
                            );
                            skipped.push(format!("{} ({why})", path.display()));
                        }
                    }
                }
            } else {
                written.push(put_one(&r, &src, dest, opts)?);
            }
        }
        if !skipped.is_empty() && !r.env.warn_only() {
            return Err(r.error(format!(
                "put() on {} skipped {} of the local files (the rest was uploaded): {}",
                r.host,
                skipped.len(),
                skipped.join(", ")
            )));
        }
        Ok(written)
    })
}

/// Uploads `data` from memory to the file `remote` (Fabric's `put` of a
/// file-like object).
pub fn upload_data(
    data: impl AsRef<[u8]>,
    remote: impl AsRef<str>,
    opts: &UploadOptions,
) -> Result<String> {
    let remote = remote.as_ref();
    Remote::recorded("put", format!("<data> -> {remote}"), |env, host| {
        if env.dry_run() {
            return dry_run::put_data(&env, data.as_ref().len(), remote, opts);
        }
        let r = Remote::connect(env, host)?;
        let target = r.path(remote)?;
        if r.is_dir(&target, opts.use_sudo)? {
            return Err(r.error(format!(
                "put() of in-memory data needs a file name, but '{}' on {} is a directory",
                target.display(),
                r.host
            )));
        }
        output::running_line(
            &r.env,
            &r.host,
            &format!("put: <data> -> {}", output::path_text(&target)),
        );
        let data = data.as_ref();
        let size = Some(data.len() as u64);
        let tally = Tally::new(Cursor::new(data));
        let mut src = Metered::new(&r, OpKind::Put, &target, size, tally);
        put_file(&r, &mut src, size, &target, opts.mode, opts)?;
        src.into_inner().moved(Path::new("<data>"), &target);
        Ok(text(&target))
    })
}

fn put_one(r: &Remote, src: &Path, target: PathBuf, opts: &UploadOptions) -> Result<String> {
    output::running_line(
        &r.env,
        &r.host,
        &format!(
            "put: {} -> {}",
            output::path_text(src),
            output::path_text(&target)
        ),
    );
    let file = fs::File::open(src).map_err(|e| {
        r.error(format!(
            "put() on {}: cannot read local file '{}': {e}",
            r.host,
            src.display()
        ))
    })?;
    let meta = file.metadata().ok();
    let mode = match (opts.mode, opts.mirror_local_mode) {
        (Some(m), _) => Some(m),
        (None, true) => meta.as_ref().map(|m| m.permissions().mode() & 0o7777),
        _ => None,
    };
    // A pipe or a device holds what it gives, not what it states.
    let size = meta.filter(|m| m.is_file()).map(|m| m.len());
    let mut from = Metered::new(r, OpKind::Put, &target, size, Tally::new(file));
    put_file(r, &mut from, size, &target, mode, opts)?;
    from.into_inner().moved(src, &target);
    Ok(text(&target))
}

/// Writes `src` (`size` bytes, when known) to the file `target`, through
/// a temporary file and `sudo` when asked.
fn put_file(
    r: &Remote,
    src: &mut dyn Read,
    size: Option<u64>,
    target: &Path,
    mode: Option<u32>,
    opts: &UploadOptions,
) -> Result<()> {
    if !opts.use_sudo {
        return r.write_file(src, size, target, mode);
    }
    let target_text = sudo_text(r, target)?;
    let dir = opts.temp_dir.as_deref().unwrap_or("/tmp");
    let tmp = Path::new(dir).join(format!(".twill-upload-{}", unique_suffix()));
    r.write_file(src, size, &tmp, Some(0o600))?;
    let (moved, _) = r.sudo_raw(&command::install(&text(&tmp), &target_text, mode))?;
    if moved.failed() {
        let _ = r.remove_file(&tmp);
        return Err(r
            .error(format!(
                "put() on {}: could not move the upload into place at '{}': {}",
                r.host,
                target.display(),
                moved.stderr()
            ))
            .with_output(moved));
    }
    Ok(())
}

/// Uploads a symlink as a symlink.
fn put_link(r: &Remote, target: &Path, link: &Path, opts: &UploadOptions) -> Result<String> {
    output::running_line(
        &r.env,
        &r.host,
        &format!(
            "put: {} -> {} (symlink)",
            output::path_text(target),
            output::path_text(link)
        ),
    );
    if !opts.use_sudo {
        r.conn.symlink(target, link).map_err(|e| r.err(e))?;
        return Ok(text(link));
    }
    let script = command::link(&sudo_text(r, target)?, &sudo_text(r, link)?);
    let (made, _) = r.sudo_raw(&script)?;
    if made.failed() {
        return Err(r
            .error(format!(
                "put() on {}: could not make the link '{}': {}",
                r.host,
                link.display(),
                made.stderr()
            ))
            .with_output(made));
    }
    Ok(text(link))
}

/// A path for a sudo command, which takes text: names that are not UTF-8
/// cannot go through it.
fn sudo_text(r: &Remote, p: &Path) -> Result<String> {
    p.to_str().map(String::from).ok_or_else(|| {
        r.error(format!(
            "put() on {}: '{}' is not UTF-8, which a sudo upload cannot carry; upload it without use_sudo",
            r.host,
            p.display()
        ))
    })
}

/// The local paths `p` names: the matches of a glob (and `true`), or `p`
/// itself (and `false`).
pub(in crate::operations) fn expand_local(
    p: &Path,
    use_glob: bool,
) -> Result<(Vec<PathBuf>, bool)> {
    let s = p.to_string_lossy();
    if use_glob && p.to_str().is_some() && s.contains(['*', '?', '[']) {
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
        return Ok((found, true));
    }
    if fs::symlink_metadata(p).is_err() {
        return Err(Error::new(
            ErrorKind::Transfer,
            format!("put(): local path '{s}' does not exist"),
        ));
    }
    Ok((vec![p.to_path_buf()], false))
}

/// What a local directory holds, in upload order.
pub(in crate::operations) enum Entry {
    /// A file, and its path below the uploaded directory.
    File(PathBuf, PathBuf),
    /// A symlink kept as one: what it points to, and its path below the
    /// uploaded directory.
    Link(PathBuf, PathBuf),
    /// Something not uploaded, and why.
    Skipped(PathBuf, &'static str),
}

/// Every entry below `root`, sorted by name within each directory.
/// Without `follow`, symlinks are entries of their own; with it, each is
/// replaced by what it points to, a directory is entered once per path
/// (a link back into a directory being walked is skipped), and a link that
/// points nowhere is skipped.
pub(in crate::operations) fn walk_local(root: &Path, follow: bool) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let id = |m: &fs::Metadata| (m.dev(), m.ino());
    let root_meta = fs::metadata(root)
        .map_err(|e| Error::io(format_args!("put() cannot read '{}'", root.display()), e))?;
    // (directory, its path below root, the directories above it and itself)
    let mut stack = vec![(root.to_path_buf(), PathBuf::new(), vec![id(&root_meta)])];
    while let Some((dir, rel, ancestors)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| Error::io(format_args!("put() cannot list '{}'", dir.display()), e))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let path = e.path();
            let rel_name = rel.join(e.file_name());
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let meta = if meta.file_type().is_symlink() {
                if !follow {
                    match fs::read_link(&path) {
                        Ok(target) => out.push(Entry::Link(target, rel_name)),
                        Err(_) => out.push(Entry::Skipped(path, "unreadable symlink")),
                    }
                    continue;
                }
                match fs::metadata(&path) {
                    Ok(m) => m,
                    Err(_) => {
                        out.push(Entry::Skipped(path, "symlink to nothing"));
                        continue;
                    }
                }
            } else {
                meta
            };
            if meta.is_dir() {
                if ancestors.contains(&id(&meta)) {
                    out.push(Entry::Skipped(path, "symlink loop"));
                    continue;
                }
                let mut above = ancestors.clone();
                above.push(id(&meta));
                subdirs.push((path, rel_name, above));
            } else if meta.is_file() {
                out.push(Entry::File(path, rel_name));
            } else {
                out.push(Entry::Skipped(path, "not a regular file"));
            }
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

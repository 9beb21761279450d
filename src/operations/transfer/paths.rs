//! The path rules of transfers, without I/O: where a remote path given by
//! a script points (home directory, `~user`, `cd`), where a local one
//! points (`~`, `lcd`), and Fabric's local name for a download.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// How a remote path given by a script starts.
#[derive(Debug, PartialEq, Eq)]
enum RemoteStart<'a> {
    /// At the login directory (`""`, `~`, `~/...`, or relative with no
    /// `cd`): the rest follows.
    Home(&'a str),
    /// At another user's home directory (`~user`, `~user/...`).
    UserHome(&'a str, &'a str),
    /// An absolute path.
    Root(&'a str),
}

/// Splits `~`/`~user` from a path; the rest has no leading `/`.
fn split_home(p: &str) -> Option<(&str, &str)> {
    let after = p.strip_prefix('~')?;
    let (user, rest) = after.split_once('/').unwrap_or((after, ""));
    Some((user, rest))
}

/// Where `p` starts, with `cwd` (the `cd` directory, possibly empty)
/// applied to a relative path. Returns the start and the relative part
/// below it.
fn remote_start<'a>(p: &'a str, cwd: &'a str) -> (RemoteStart<'a>, Vec<&'a str>) {
    fn start(p: &str) -> Option<RemoteStart<'_>> {
        if let Some((user, rest)) = split_home(p) {
            return Some(if user.is_empty() {
                RemoteStart::Home(rest)
            } else {
                RemoteStart::UserHome(user, rest)
            });
        }
        p.starts_with('/').then_some(RemoteStart::Root(p))
    }
    if let Some(s) = start(p) {
        return (s, Vec::new());
    }
    // Relative (or empty): below the cd directory, else the home directory.
    let below = if p.is_empty() { Vec::new() } else { vec![p] };
    match start(cwd) {
        Some(s) => (s, below),
        None if cwd.is_empty() => (RemoteStart::Home(""), below),
        None => {
            let mut parts = vec![cwd];
            parts.extend(below);
            (RemoteStart::Home(""), parts)
        }
    }
}

/// Where the remote path `p` points, `cwd` (the `cd` directory) applied:
/// the login directory and another user's home directory come from
/// `home` and `user_home` (asked only when `p` starts there), `.`
/// components removed.
pub(in crate::operations) fn place<E>(
    p: &str,
    cwd: &str,
    home: impl FnOnce() -> Result<PathBuf, E>,
    user_home: impl FnOnce(&str) -> Result<PathBuf, E>,
) -> Result<PathBuf, E> {
    let (start, below) = remote_start(p, cwd);
    let base = match start {
        RemoteStart::Home(rest) => join_normal(&home()?, &[rest]),
        RemoteStart::UserHome(user, rest) => join_normal(&user_home(user)?, &[rest]),
        RemoteStart::Root(root) => PathBuf::from(root),
    };
    Ok(join_normal(&base, &below))
}

/// `base` with `parts` joined below it, `.` components and doubled
/// slashes removed (`d/./f` is `d/f`); `..` is kept, since a symlink may
/// stand before it.
fn join_normal(base: &Path, parts: &[&str]) -> PathBuf {
    let mut joined = base.to_path_buf();
    for p in parts {
        joined.push(p.trim_start_matches('/'));
    }
    normal(&joined)
}

/// `p` with `.` components and doubled slashes removed.
pub(super) fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The directory part of a remote path (`/` for `/x`, `.` for `x`).
pub(super) fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if d.as_os_str().is_empty() => PathBuf::from("."),
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("/"),
    }
}

/// A local path with a leading `~` expanded (from `home`) and a relative
/// one placed under `lcwd` (the `lcd` directory, possibly empty).
pub(crate) fn local_path(p: &Path, lcwd: &str, home: Option<&OsStr>) -> PathBuf {
    let expanded = match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => Path::new(home).join(rest),
        _ => p.to_path_buf(),
    };
    if expanded.is_relative() && !lcwd.is_empty() {
        Path::new(lcwd).join(expanded)
    } else {
        expanded
    }
}

/// Fabric's local name for a download of `remote`: `%(host)s` (with `:`
/// as `-`), `%(path)s`, `%(dirname)s` and `%(basename)s` interpolated;
/// a template naming an existing directory (or ending in `/`) gets the
/// file's name, or its path below a downloaded directory (`below`).
/// `place` turns the interpolated text into a local path (`~`, `lcd`);
/// `is_dir` tells whether a local path is a directory.
pub(in crate::operations) fn local_target(
    host: &str,
    template: &str,
    remote: &Path,
    below: Option<&Path>,
    place: impl Fn(&Path) -> PathBuf,
    is_dir: impl Fn(&Path) -> bool,
) -> PathBuf {
    let remote_text = remote.to_string_lossy();
    let basename = remote
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dirname = parent(remote).to_string_lossy().into_owned();
    let interpolated = template
        .replace("%(host)s", &host.replace(':', "-"))
        .replace("%(path)s", remote_text.trim_start_matches('/'))
        .replace("%(dirname)s", dirname.trim_start_matches('/'))
        .replace("%(basename)s", &basename);
    let templated = interpolated != template;
    let mut dest = place(Path::new(&interpolated));
    if !templated && (is_dir(&dest) || template.ends_with('/')) {
        match below {
            Some(b) => dest.push(b),
            None => dest.push(remote.file_name().unwrap_or_default()),
        }
    } else if let (false, Some(b)) = (templated, below) {
        dest.push(b);
    }
    // `d/./f` and `d//f` are written, returned and shown as `d/f`.
    dest.components().collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn remote_paths_start_where_a_shell_would() {
        assert_eq!(remote_start("", ""), (RemoteStart::Home(""), vec![]));
        assert_eq!(remote_start("~", "/x"), (RemoteStart::Home(""), vec![]));
        assert_eq!(
            remote_start("~/a/b", "/x"),
            (RemoteStart::Home("a/b"), vec![])
        );
        assert_eq!(
            remote_start("~bob/a", ""),
            (RemoteStart::UserHome("bob", "a"), vec![])
        );
        assert_eq!(
            remote_start("~bob", ""),
            (RemoteStart::UserHome("bob", ""), vec![])
        );
        assert_eq!(
            remote_start("/etc/x", "/srv"),
            (RemoteStart::Root("/etc/x"), vec![])
        );
        assert_eq!(
            remote_start("f", "/srv"),
            (RemoteStart::Root("/srv"), vec!["f"])
        );
        assert_eq!(remote_start("f", ""), (RemoteStart::Home(""), vec!["f"]));
        assert_eq!(
            remote_start("f", "rel"),
            (RemoteStart::Home(""), vec!["rel", "f"])
        );
        assert_eq!(
            remote_start("f", "~deploy/app"),
            (RemoteStart::UserHome("deploy", "app"), vec!["f"])
        );
        assert_eq!(
            remote_start("", "/srv"),
            (RemoteStart::Root("/srv"), vec![])
        );
    }

    #[test]
    fn joined_paths_are_normal() {
        assert_eq!(
            join_normal(Path::new("/h"), &["d/./f"]),
            Path::new("/h/d/f")
        );
        assert_eq!(
            join_normal(Path::new("/h/"), &["a//b", "c"]),
            Path::new("/h/a/b/c")
        );
        assert_eq!(
            join_normal(Path::new("/h"), &["../x"]),
            Path::new("/h/../x")
        );
        assert_eq!(parent(Path::new("/x")), Path::new("/"));
        assert_eq!(parent(Path::new("x")), Path::new("."));
    }

    #[test]
    fn local_paths_expand_home_and_follow_lcd() {
        let home = Some(OsStr::new("/home/me"));
        assert_eq!(
            local_path(Path::new("~/a"), "", home),
            Path::new("/home/me/a")
        );
        assert_eq!(
            local_path(Path::new("a"), "/build", home),
            Path::new("/build/a")
        );
        assert_eq!(local_path(Path::new("/a"), "/build", home), Path::new("/a"));
        assert_eq!(local_path(Path::new("~x/a"), "", home), Path::new("~x/a"));
    }

    #[test]
    fn download_names_follow_fabric() {
        let no_dirs = |_: &Path| false;
        let t = |tpl: &str, below: Option<&Path>| {
            let place = |p: &Path| p.to_path_buf();
            local_target(
                "h:2222",
                tpl,
                Path::new("/var/log/app.log"),
                below,
                place,
                no_dirs,
            )
        };
        assert_eq!(
            t("%(host)s/%(path)s", None),
            Path::new("h-2222/var/log/app.log")
        );
        assert_eq!(t("logs/%(basename)s", None), Path::new("logs/app.log"));
        assert_eq!(t("%(dirname)s/x", None), Path::new("var/log/x"));
        assert_eq!(t("out/", None), Path::new("out/app.log"));
        assert_eq!(
            t("out/", Some(Path::new("log/app.log"))),
            Path::new("out/log/app.log")
        );
        assert_eq!(t("copy.log", None), Path::new("copy.log"));
    }
}

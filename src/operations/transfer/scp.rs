//! Single files over SCP, where the server has no SFTP subsystem.
//!
//! The engine moves the bytes (`scp -t`, `scp -f`); what SFTP gives
//! besides them comes from small commands `command/` builds, run here in
//! `sh` over the same connection, quietly and not through `run` (no `cd`,
//! prefixes, exported variables or printed lines): the login directory,
//! whether a path is a directory or exists, a temporary file beside the
//! target and the move over it, removing what a failed upload left.
//!
//! An upload keeps SFTP's promise that a failure never leaves a truncated
//! target: `mktemp` makes an empty file beside the target (beside the file
//! a symlink at the target points to), `scp -t` fills it, and a command
//! gives it its mode and renames it over the target; the temporary file is
//! removed on every failure, Ctrl-C included, while the connection lasts.
//! A target whose directory the user may not write is refused (over SFTP it
//! is written in place, which is not atomic): `use_sudo` places it.
//!
//! Directories, globs and symlinks kept as links need SFTP: they are
//! refused with an error that says so.

use std::ffi::OsString;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Remote;
use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::ssh::{Destination, Exchange, ExecOptions, Input, RemoteStat, Reply, Stream};

/// How long removing an unfinished upload may take, Ctrl-C or not.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How one of twill's own commands ended, and what it printed.
pub(super) struct Answer {
    /// The exit code; `None` when a signal ended it.
    pub(super) code: Option<i32>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
}

impl Answer {
    fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// What the command said on stderr, as one line.
    fn complaint(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let text = text.trim().lines().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            match self.code {
                Some(code) => format!("exit status {code}"),
                None => "ended by a signal".to_string(),
            }
        } else {
            text
        }
    }
}

/// The exchange of twill's own commands: output kept, no input.
#[derive(Default)]
struct Quiet {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    input_ended: bool,
}

impl Exchange for Quiet {
    fn output(&mut self, stream: Stream, data: &[u8]) -> Reply {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(data),
            Stream::Stderr => self.stderr.extend_from_slice(data),
        }
        Reply::Continue
    }

    fn input(&mut self) -> Option<Input> {
        if self.input_ended {
            return None;
        }
        self.input_ended = true;
        Some(Input::End)
    }
}

impl Remote {
    /// Runs `script` in `sh` on the host, quietly, and returns how it
    /// ended and what it printed.
    pub(super) fn shell(&self, script: &str) -> Result<Answer> {
        self.shell_with(script, false)
    }

    /// [`Remote::shell`]; with `cleanup`, also after Ctrl-C, for at most
    /// [`CLEANUP_TIMEOUT`].
    fn shell_with(&self, script: &str, cleanup: bool) -> Result<Answer> {
        let opts = ExecOptions {
            pty: false,
            term: None,
            timeout: cleanup.then_some(CLEANUP_TIMEOUT),
            despite_interrupt: cleanup,
        };
        let mut quiet = Quiet::default();
        let status = self
            .conn
            .exec(&command::posix_sh(script), &opts, &mut quiet)
            .map_err(|e| self.err(e).with_command(script))?;
        Ok(Answer {
            code: status.code,
            stdout: quiet.stdout,
            stderr: quiet.stderr,
        })
    }

    /// A remote path as the text a command takes.
    fn scp_text(&self, p: &Path) -> Result<String> {
        p.to_str().map(String::from).ok_or_else(|| {
            self.error(format!(
                "'{}' on {} is not UTF-8, which the commands of a transfer over SCP cannot carry (the server has no SFTP subsystem)",
                p.display(),
                self.host
            ))
        })
    }

    /// The login directory.
    pub(super) fn scp_home(&self) -> Result<PathBuf> {
        let out = self.shell(&command::login_dir())?;
        let mut dir = out.stdout.clone();
        if dir.last() == Some(&b'\n') {
            dir.pop();
        }
        if !out.succeeded() || !dir.starts_with(b"/") {
            return Err(self.error(format!(
                "cannot find the login directory on {}: {}",
                self.host,
                out.complaint()
            )));
        }
        Ok(PathBuf::from(OsString::from_vec(dir)))
    }

    /// Whether `test -<flag>` holds for `p` (`d`: a directory, `e`: it
    /// exists).
    pub(super) fn scp_test(&self, flag: char, p: &Path) -> Result<bool> {
        let path = self.scp_text(p)?;
        Ok(self.shell(&command::test(flag, &path))?.succeeded())
    }

    /// Writes `size` bytes of `src` (all of it when the size is not known
    /// beforehand) to the file `target`: a temporary file beside it, then
    /// renamed over it. `mode` as [`crate::ssh::Connection::upload`] takes it.
    pub(super) fn scp_put(
        &self,
        src: &mut dyn Read,
        size: Option<u64>,
        target: &Path,
        mode: Option<u32>,
    ) -> Result<()> {
        let target_text = self.scp_text(target)?;
        // SCP states the size first: a source of unknown size (a pipe) is
        // read whole into a local temporary file.
        let mut spooled;
        let (src, size): (&mut dyn Read, u64) = match size {
            Some(n) => (src, n),
            None => {
                spooled = tempfile::tempfile()
                    .and_then(|mut f| {
                        std::io::copy(src, &mut f)?;
                        f.rewind()?;
                        Ok(f)
                    })
                    .map_err(|e| Error::io("put() cannot read the local source", e))?;
                let n = spooled
                    .metadata()
                    .map_err(|e| Error::io("put() cannot read the local source", e))?
                    .len();
                (&mut spooled, n)
            }
        };
        let failed = |why: String| {
            self.error(format!(
                "put() on {}: could not upload to '{}': {why}",
                self.host,
                target.display()
            ))
        };
        let prepared = self.shell(&command::scp_temp(&target_text))?;
        if !prepared.succeeded() {
            return Err(failed(prepared.complaint()));
        }
        let mut printed = prepared.stdout.split(|b| *b == 0);
        let (Some(tmp), Some(file)) = (printed.next(), printed.next()) else {
            return Err(failed("the server printed no temporary file".into()));
        };
        // A link at the target may point to a name that is not UTF-8.
        let (Ok(tmp), Ok(file)) = (
            String::from_utf8(tmp.to_vec()),
            String::from_utf8(file.to_vec()),
        ) else {
            return Err(failed(
                "the file it names is not UTF-8, which the commands of a transfer over SCP cannot carry".into(),
            ));
        };
        let sent = self
            .conn
            .scp_upload(src, size, Path::new(&tmp), 0o600, target)
            .map_err(|e| self.err(e));
        let placed = sent.and_then(|_| {
            let moved = self.shell(&command::scp_place(&tmp, &file, mode))?;
            if moved.succeeded() {
                Ok(())
            } else {
                Err(failed(format!(
                    "could not move the upload into place: {}",
                    moved.complaint()
                )))
            }
        });
        if placed.is_err() {
            let _ = self.scp_remove(Path::new(&tmp));
        }
        placed
    }

    /// Copies the file `from` into `dst`; returns its facts.
    pub(super) fn scp_get(&self, from: &Path, dst: &mut dyn Destination) -> Result<RemoteStat> {
        match self.conn.scp_download(from, dst) {
            Ok(stat) => Ok(stat),
            Err(e) => {
                let err = self.err(e);
                if err.kind() != ErrorKind::Transfer {
                    return Err(err);
                }
                // libssh2 does not pass on what the remote scp said: ask.
                let why = self
                    .scp_text(from)
                    .and_then(|p| self.shell(&command::why_unreadable(&p)));
                match why {
                    Ok(out) if out.succeeded() && !out.stdout.is_empty() => {
                        Err(self.error(format!(
                            "get() on {}: could not download '{}': {}",
                            self.host,
                            from.display(),
                            String::from_utf8_lossy(&out.stdout).trim()
                        )))
                    }
                    _ => Err(err),
                }
            }
        }
    }

    /// Removes the file `p`.
    pub(super) fn scp_remove(&self, p: &Path) -> Result<()> {
        let path = self.scp_text(p)?;
        let out = self.shell_with(&command::remove_file(&path), true)?;
        if out.succeeded() {
            Ok(())
        } else {
            Err(self.error(format!(
                "cannot remove '{}' on {}: {}",
                p.display(),
                self.host,
                out.complaint()
            )))
        }
    }

    /// The error for what only SFTP can transfer: `what` names it (a
    /// directory, a glob) at `path`.
    pub(super) fn needs_sftp(&self, which: &str, what: &str, path: &Path) -> Error {
        self.error(format!(
            "{which}() on {}: cannot transfer {what} '{}': the server has no SFTP subsystem, and only single files go over SCP",
            self.host,
            path.display()
        ))
    }
}

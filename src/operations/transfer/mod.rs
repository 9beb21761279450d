//! `upload`/`put` and `download`/`get` over SFTP, or over SCP where the
//! server has no SFTP subsystem.
//!
//! `paths.rs` holds the path rules (no I/O), `upload.rs` and
//! `download.rs` the two directions, `scp.rs` single files over SCP; this
//! file the options and what both directions share: the host and its
//! connection, remote paths resolved against the home directory and `cd`,
//! the view of remote paths through sudo, and the choice between SFTP
//! and SCP for each call on the host.
//!
//! Remote paths are byte strings (`PathBuf`), so that names which are not
//! UTF-8 transfer intact; they are shown lossily.

mod download;
pub(super) mod paths;
mod scp;
pub(super) mod upload;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use download::{download, download_data, download_with, get};
pub(crate) use paths::local_path;
pub use upload::{put, upload, upload_data, upload_with};

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{OpKind, OpRecord};
use crate::operations::options::{RunOptions, Sink};
use crate::operations::remote::{run_with, sudo_with};
use crate::operations::session::{connection, current_host, ssh_error, Host};
use crate::output::Progress;
use crate::result::Output;
use crate::ssh::{Connection, Destination, RemoteStat, SshError};
use crate::state::{env, Env};

/// Options of [`upload_with`] (Fabric's `put` keywords).
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub(crate) use_sudo: bool,
    mirror_local_mode: bool,
    mode: Option<u32>,
    pub(crate) no_glob: bool,
    temp_dir: Option<String>,
    pub(crate) follow_links: bool,
}

impl UploadOptions {
    /// The defaults: globs expand, mode as the server creates it, symlinks
    /// in an uploaded directory stay symlinks.
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
    /// Where `use_sudo` puts its temporary file (default `/tmp`).
    pub fn temp_dir(mut self, dir: impl Into<String>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
    /// In an uploaded directory, upload what symlinks point to instead of
    /// the links themselves (as `rsync -L` does). Each directory is
    /// entered once: a link back into a directory being uploaded is
    /// skipped, as is a link that points nowhere; both are reported.
    pub fn follow_links(mut self, yes: bool) -> Self {
        self.follow_links = yes;
        self
    }
}

/// Options of [`download_with`].
#[derive(Debug, Clone, Default)]
pub struct DownloadOptions {
    pub(crate) use_sudo: bool,
    temp_dir: Option<String>,
}

impl DownloadOptions {
    /// The defaults.
    pub fn new() -> DownloadOptions {
        DownloadOptions::default()
    }
    /// Copy the file (or directory) with `sudo cp` into a private
    /// temporary directory readable by the login user first (for files
    /// only root can read).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
    /// Where `use_sudo` makes its temporary directory (default `/tmp`).
    pub fn temp_dir(mut self, dir: impl Into<String>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
}

/// The current host of a transfer and its connection.
struct Remote {
    env: Env,
    host: String,
    conn: Arc<Connection>,
    /// The server refuses the SFTP subsystem: single files go over SCP,
    /// and what SFTP would tell comes from remote commands.
    scp: bool,
}

impl Remote {
    /// A transfer on the current host as one recorded operation: `f` gets
    /// the settings and the host; `command` says what moves where.
    fn recorded<T>(
        which: &str,
        command: String,
        f: impl FnOnce(Env, Host) -> Result<T>,
    ) -> Result<T> {
        let env = env();
        let host = current_host(&env, which)?;
        let kind = if which == "put" {
            OpKind::Put
        } else {
            OpKind::Get
        };
        let record = OpRecord::start(&env, kind, Some(&host.name), &command, "");
        // The commands twill runs for the transfer (sudo's moves and
        // copies, `test -d`) are recorded as the transfer's.
        let _own = crate::events::helper(if kind == OpKind::Put { "put" } else { "get" });
        let result = f(env, host);
        if let Some(record) = record {
            record.end_transfer(&result);
        }
        result
    }

    /// The current host's connection (`host`, read from `env`). Whether
    /// the server has SFTP is found here, once per connection.
    fn connect(env: Env, host: Host) -> Result<Remote> {
        let conn = connection(&env, &host)?;
        let scp = !conn.has_sftp().map_err(|e| ssh_error(e, &host.name))?;
        Ok(Remote {
            env,
            host: host.name,
            conn,
            scp,
        })
    }

    fn err(&self, e: SshError) -> Error {
        ssh_error(e, &self.host)
    }

    fn error(&self, msg: String) -> Error {
        Error::new(ErrorKind::Transfer, msg).with_host(&self.host)
    }

    fn home(&self) -> Result<PathBuf> {
        if self.scp {
            return self.scp_home();
        }
        self.conn.home_dir().map_err(|e| self.err(e))
    }

    /// The home directory of `user` on the host, as the shell expands
    /// `~user`.
    fn user_home(&self, user: &str) -> Result<PathBuf> {
        let out = run_with(
            command::home_of(user),
            &RunOptions::new().quiet(true).pty(false),
        )?;
        let home = out.stdout();
        if out.failed() || !home.starts_with('/') {
            return Err(self.error(format!(
                "cannot expand '~{user}' on {}: there is no such user",
                self.host
            )));
        }
        Ok(PathBuf::from(home))
    }

    /// Where the remote path `p` points: `~` and `~user` expanded, a
    /// relative path below [`cd`](crate::cd) (else the home directory),
    /// `.` components removed.
    fn path(&self, p: &str) -> Result<PathBuf> {
        paths::place(
            p,
            &self.env.cwd(),
            || self.home(),
            |user| self.user_home(user),
        )
    }

    /// Runs one of twill's own commands through sudo, quietly and without
    /// a pty, and returns its result with stdout as raw bytes.
    fn sudo_raw(&self, script: &str) -> Result<(Output, Vec<u8>)> {
        let buf = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let sink: Sink = buf.clone();
        let opts = RunOptions::new()
            .quiet(true)
            .pty(false)
            .combine_stderr(false);
        let opts = RunOptions {
            stdout: Some(sink),
            ..opts
        };
        let out = sudo_with(script, &opts)?;
        let bytes = std::mem::take(&mut *buf.lock());
        Ok((out, bytes))
    }

    /// Whether `p` is a directory (over SFTP, with a command over SCP, or
    /// through sudo for paths the login user may not look at).
    fn is_dir(&self, p: &Path, sudo: bool) -> Result<bool> {
        if sudo {
            return Ok(self.sudo_raw(&command::test('d', &text(p)))?.0.succeeded());
        }
        if self.scp {
            return self.scp_test('d', p);
        }
        Ok(self
            .conn
            .stat(p)
            .map_err(|e| self.err(e))?
            .is_some_and(|s| s.is_dir))
    }

    fn exists(&self, p: &Path, sudo: bool) -> Result<bool> {
        if sudo {
            return Ok(self.sudo_raw(&command::test('e', &text(p)))?.0.succeeded());
        }
        if self.scp {
            return self.scp_test('e', p);
        }
        Ok(self.conn.lstat(p).map_err(|e| self.err(e))?.is_some())
    }

    /// Writes `src` to the file `target` atomically (a temporary file
    /// beside it, renamed over it), over SFTP or SCP. `size` is how much
    /// `src` holds, when known (SCP states it first); `mode` as
    /// [`Connection::upload`] takes it.
    fn write_file(
        &self,
        src: &mut dyn Read,
        size: Option<u64>,
        target: &Path,
        mode: Option<u32>,
    ) -> Result<()> {
        if self.scp {
            return self.scp_put(src, size, target, mode);
        }
        self.conn
            .upload(src, target, mode)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Copies the file `from` into `dst`, over SFTP or SCP; returns its
    /// facts.
    fn read_file(&self, from: &Path, dst: &mut dyn Destination) -> Result<RemoteStat> {
        if self.scp {
            return self.scp_get(from, dst);
        }
        self.conn.download(from, dst).map_err(|e| self.err(e))
    }

    /// Removes the file `p`, over SFTP or with a command.
    fn remove_file(&self, p: &Path) -> Result<()> {
        if self.scp {
            return self.scp_remove(p);
        }
        self.conn.remove_file(p).map_err(|e| self.err(e))
    }
}

/// A file's bytes on their way, reader or writer, each moving its
/// progress bar; the bar ends when the reader ends or this is dropped.
struct Metered<T> {
    inner: T,
    progress: Option<Progress>,
}

impl<T> Metered<T> {
    /// `inner`, moving a bar for the file `path` on `r`'s host (`total`
    /// bytes, when known) if the settings and the terminal show one.
    fn new(r: &Remote, op: OpKind, path: &Path, total: Option<u64>, inner: T) -> Metered<T> {
        Metered {
            inner,
            progress: Progress::start(&r.env, &r.host, op, path, total),
        }
    }

    /// The reader or writer, the bar ended.
    fn into_inner(self) -> T {
        self.inner
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.progress = None;
        } else if let Some(p) = self.progress.as_mut() {
            p.add(n as u64);
        }
        Ok(n)
    }
}

impl<W: Write> Write for Metered<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(p) = self.progress.as_mut() {
            p.add(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Destination for Metered<W> {
    fn expect(&mut self, size: u64) {
        if let Some(p) = self.progress.as_mut() {
            p.expect(size);
        }
    }
}

/// A remote path as text for messages and commands.
fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A process-unique suffix for temporary names.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{t:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

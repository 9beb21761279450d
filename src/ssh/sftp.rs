//! File transfer and remote file operations over SFTP.
//!
//! libssh2 pipelines SFTP reads and writes only within one call, so the
//! buffer passed to each call sets how much is in flight.
//! Uploads go to a temporary name beside the target and are renamed over
//! it with `posix-rename@openssh.com` (atomic, overwrites), so a failed
//! upload never leaves a truncated target.

use std::ffi::CString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use libssh2_sys as raw;
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, RenameFlags};

use super::{Connection, OpState, SshError, SshErrorKind};

/// Download buffer. libssh2 keeps up to four times the buffer (at most
/// 8 MiB) of read requests in flight; 2 MiB reaches that cap. Each read
/// request asks for up to the size the server states through
/// `limits@openssh.com` (255 KiB on OpenSSH, 30,000 bytes without it).
const DOWNLOAD_BUF: usize = 2 * 1024 * 1024;

/// Upload window: the write loop hands libssh2 between one and two windows
/// of data not yet acknowledged, so 1–2 MiB is in flight: OpenSSH's sshd
/// opens a 2 MiB channel window, and more would only wait for it. Each
/// write request carries up to the size the server states through
/// `limits@openssh.com` (255 KiB on OpenSSH, 30,000 bytes without it), so
/// the server handles a few large requests. On loopback 512 KiB, 1 MiB
/// and 2 MiB measure the same; on a link with latency the larger window
/// keeps the pipe full.
const UPLOAD_WINDOW: usize = 1024 * 1024;

extern "C" {
    // In libssh2 since 1.2.x, not declared by libssh2-sys 0.3.
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut raw::LIBSSH2_SFTP,
        source_filename: *const libc::c_char,
        source_filename_len: libc::size_t,
        dest_filename: *const libc::c_char,
        dest_filename_len: libc::size_t,
    ) -> libc::c_int;
}

/// Facts about a remote file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteStat {
    pub(crate) is_dir: bool,
    pub(crate) is_file: bool,
    pub(crate) is_symlink: bool,
    /// Permission bits (`0o7777` part of st_mode).
    pub(crate) mode: u32,
    pub(crate) size: u64,
}

impl RemoteStat {
    fn from_stat(s: &FileStat) -> RemoteStat {
        let perm = s.perm.unwrap_or(0);
        RemoteStat {
            is_dir: s.is_dir(),
            is_file: s.is_file(),
            is_symlink: perm & 0o170000 == 0o120000,
            mode: perm & 0o7777,
            size: s.size.unwrap_or(0),
        }
    }
}

/// A second SFTP channel driven through libssh2 directly, for the
/// posix-rename extension that the `ssh2` crate does not wrap.
pub(crate) struct RawSftp {
    session: ssh2::Session,
    ptr: *mut raw::LIBSSH2_SFTP,
}

// SAFETY: the pointer is only used while holding the session's lock
// (`Session::raw`), like the `ssh2` crate does for its own handles.
unsafe impl Send for RawSftp {}

impl Drop for RawSftp {
    fn drop(&mut self) {
        let _guard = self.session.raw();
        // SAFETY: ptr came from libssh2_sftp_init and is shut down once.
        unsafe { raw::libssh2_sftp_shutdown(self.ptr) };
    }
}

fn fx_reason(code: i32) -> &'static str {
    match code {
        1 => "end of file",
        2 => "No such file or directory",
        3 => "Permission denied",
        4 => "Failure",
        5 => "Bad message",
        8 => "Operation unsupported",
        11 => "File already exists",
        12 => "Write protected",
        14 => "No space left on the file system",
        15 => "Quota exceeded",
        _ => "SFTP error",
    }
}

fn is_no_such_file(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::SFTP(2) | ErrorCode::SFTP(10))
}

fn io_error(path: &str, what: &str, e: std::io::Error) -> SshError {
    SshError::new(
        SshErrorKind::Io,
        format!("{what} failed while transferring {path}: {e}"),
    )
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Connection {
    /// Error for a failed SFTP operation on `path`.
    fn sftp_err(&self, e: &ssh2::Error, verb: &str, path: &str) -> SshError {
        match e.code() {
            ErrorCode::SFTP(code) => SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not {verb} {path} on {}: {}",
                    self.name,
                    fx_reason(code)
                ),
            ),
            _ => self.map_err(e, &format!("{verb} {path}")),
        }
    }

    /// Takes the operation lock and returns the SFTP handle (opened on first
    /// use), with the session in blocking mode bounded by the I/O timeout.
    fn sftp_begin(
        &self,
    ) -> Result<(parking_lot::MutexGuard<'_, OpState>, Arc<ssh2::Sftp>), SshError> {
        let mut st = self.begin()?;
        if self.tunnel.is_none() {
            super::io::quickack(self.fd);
        }
        self.session.set_blocking(true);
        self.session
            .set_timeout(self.io_timeout.as_millis().min(u128::from(u32::MAX)) as u32);
        if st.sftp.is_none() {
            let s = self.session.sftp().map_err(|e| match e.code() {
                ErrorCode::Session(-9) | ErrorCode::Session(-13) | ErrorCode::Session(-7) => {
                    self.map_err(&e, "Starting SFTP")
                }
                _ => SshError::new(
                    SshErrorKind::Sftp,
                    format!("SFTP is not available on {}: {}", self.name, e.message()),
                ),
            })?;
            st.sftp = Some(Arc::new(s));
        }
        let sftp = st.sftp.clone().expect("sftp set above");
        Ok((st, sftp))
    }

    /// Writes `src` to `remote_path` (overwriting it atomically), creating
    /// missing parent directories (0755). `mode` sets the permission bits;
    /// without it an existing file keeps its mode and a new one gets 0644
    /// less the server's umask. Returns the number of bytes written.
    pub(crate) fn upload(
        &self,
        src: &mut dyn Read,
        remote_path: &str,
        mode: Option<i32>,
    ) -> Result<u64, SshError> {
        let (mut st, sftp) = self.sftp_begin()?;
        let path = Path::new(remote_path);
        let base = path
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .ok_or_else(|| {
                SshError::new(
                    SshErrorKind::Sftp,
                    format!(
                        "Could not upload to {remote_path} on {}: not a file name",
                        self.name
                    ),
                )
            })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let existing = match sftp.stat(path) {
            Ok(s) => Some(s),
            Err(e) if is_no_such_file(&e) => None,
            Err(e) => return Err(self.sftp_err(&e, "stat", remote_path)),
        };
        if existing.as_ref().is_some_and(|s| s.is_dir()) {
            return Err(SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not upload to {remote_path} on {}: it is a directory",
                    self.name
                ),
            ));
        }
        if existing.is_none() {
            self.mkdir_p_locked(&sftp, &parent, 0o755)?;
        }
        let final_mode = mode
            .map(|m| (m as u32) & 0o7777)
            .or_else(|| existing.as_ref().and_then(|s| s.perm).map(|p| p & 0o7777));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = parent.join(format!(
            ".{base}.twill-{}-{nanos:x}.tmp",
            std::process::id()
        ));
        let tmp_s = tmp.to_string_lossy().into_owned();

        let mut file = sftp
            .open_mode(
                &tmp,
                OpenFlags::WRITE | OpenFlags::TRUNCATE | OpenFlags::EXCLUSIVE,
                final_mode.map(|m| m as i32).unwrap_or(0o644),
                OpenType::File,
            )
            .map_err(|e| self.sftp_err(&e, "create", &tmp_s))?;

        let copied = (|| -> Result<u64, SshError> {
            // A sliding window over the source: libssh2 packetizes and sends
            // everything it is given, and returns as soon as the first
            // writes are acknowledged; the slice passed next starts at the
            // first unacknowledged byte and reaches further, so requests
            // stay in flight without draining at buffer boundaries.
            let mut buf = vec![0u8; 2 * UPLOAD_WINDOW];
            let (mut start, mut end) = (0usize, 0usize);
            let mut eof = false;
            let mut total = 0u64;
            loop {
                if !eof && end - start <= UPLOAD_WINDOW {
                    if start > 0 {
                        buf.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    let want = buf.len() - end;
                    let n = read_full(src, &mut buf[end..])
                        .map_err(|e| io_error(remote_path, "Reading the local source", e))?;
                    end += n;
                    eof = n < want;
                }
                if start == end {
                    break;
                }
                let n = file
                    .write(&buf[start..end])
                    .map_err(|e| self.write_failed(remote_path, &e.to_string()))?;
                if n == 0 {
                    return Err(self.write_failed(remote_path, "no progress"));
                }
                start += n;
                total += n as u64;
            }
            if let Some(m) = final_mode {
                // Exact bits, whatever the server's umask.
                file.setstat(FileStat {
                    size: None,
                    uid: None,
                    gid: None,
                    perm: Some(m),
                    atime: None,
                    mtime: None,
                })
                .map_err(|e| self.sftp_err(&e, "chmod", &tmp_s))?;
            }
            file.close()
                .map_err(|e| self.sftp_err(&e, "close", &tmp_s))?;
            Ok(total)
        })();
        drop(file);
        let total = match copied {
            Ok(t) => t,
            Err(e) => {
                if !self.dead.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = sftp.unlink(&tmp);
                }
                return Err(e);
            }
        };
        if let Err(e) = self.rename_locked(&mut st, &sftp, &tmp, path) {
            if !self.dead.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = sftp.unlink(&tmp);
            }
            return Err(e);
        }
        Ok(total)
    }

    fn write_failed(&self, path: &str, detail: &str) -> SshError {
        if !super::io::socket_open(self.fd) {
            return self.lost(Some(&format!("writing {path}")));
        }
        SshError::new(
            SshErrorKind::Sftp,
            format!("Could not write {path} on {}: {detail}", self.name),
        )
    }

    /// Copies `remote_path` into `dst`; returns the number of bytes.
    pub(crate) fn download(&self, remote_path: &str, dst: &mut dyn Write) -> Result<u64, SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        let mut file = sftp
            .open_mode(Path::new(remote_path), OpenFlags::READ, 0, OpenType::File)
            .map_err(|e| self.sftp_err(&e, "open", remote_path))?;
        let mut buf = vec![0u8; DOWNLOAD_BUF];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !super::io::socket_open(self.fd) {
                        return Err(self.lost(Some(&format!("reading {remote_path}"))));
                    }
                    return Err(SshError::new(
                        SshErrorKind::Sftp,
                        format!("Could not read {remote_path} on {}: {e}", self.name),
                    ));
                }
            };
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n])
                .map_err(|e| io_error(remote_path, "Writing the local copy", e))?;
            total += n as u64;
        }
        let _ = file.close();
        Ok(total)
    }

    /// Facts about `remote_path` (symlinks followed), `None` if it does not
    /// exist.
    pub(crate) fn stat(&self, remote_path: &str) -> Result<Option<RemoteStat>, SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        match sftp.stat(Path::new(remote_path)) {
            Ok(s) => Ok(Some(RemoteStat::from_stat(&s))),
            Err(e) if is_no_such_file(&e) => Ok(None),
            Err(e) => Err(self.sftp_err(&e, "stat", remote_path)),
        }
    }

    /// Entries of a remote directory (names only, without `.` and `..`);
    /// symlinks are reported as such, not followed.
    pub(crate) fn read_dir(
        &self,
        remote_path: &str,
    ) -> Result<Vec<(String, RemoteStat)>, SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        let entries = sftp
            .readdir(Path::new(remote_path))
            .map_err(|e| self.sftp_err(&e, "list", remote_path))?;
        let mut out: Vec<(String, RemoteStat)> = entries
            .into_iter()
            .filter_map(|(p, s)| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                (name != "." && name != "..").then(|| (name, RemoteStat::from_stat(&s)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The login directory (SFTP `realpath(".")`).
    pub(crate) fn home_dir(&self) -> Result<String, SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        sftp.realpath(Path::new("."))
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| self.sftp_err(&e, "resolve", "."))
    }

    /// Creates `remote_path` and missing parents with `mode`.
    pub(crate) fn mkdir_p(&self, remote_path: &str, mode: i32) -> Result<(), SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        self.mkdir_p_locked(&sftp, Path::new(remote_path), mode)
    }

    fn mkdir_p_locked(&self, sftp: &ssh2::Sftp, path: &Path, mode: i32) -> Result<(), SshError> {
        match sftp.stat(path) {
            Ok(s) if s.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(SshError::new(
                    SshErrorKind::Sftp,
                    format!(
                        "Could not create directory {} on {}: a file is in the way",
                        path.display(),
                        self.name
                    ),
                ))
            }
            Err(e) if is_no_such_file(&e) => {}
            Err(e) => return Err(self.sftp_err(&e, "stat", &path.to_string_lossy())),
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.mkdir_p_locked(sftp, parent, mode)?;
        }
        match sftp.mkdir(path, mode) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Lost a race with another creator?
                if sftp.stat(path).map(|s| s.is_dir()).unwrap_or(false) {
                    Ok(())
                } else {
                    Err(self.sftp_err(&e, "create directory", &path.to_string_lossy()))
                }
            }
        }
    }

    /// Sets the permission bits of `remote_path`.
    pub(crate) fn chmod(&self, remote_path: &str, mode: i32) -> Result<(), SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        sftp.setstat(
            Path::new(remote_path),
            FileStat {
                size: None,
                uid: None,
                gid: None,
                perm: Some((mode as u32) & 0o7777),
                atime: None,
                mtime: None,
            },
        )
        .map_err(|e| self.sftp_err(&e, "chmod", remote_path))
    }

    pub(crate) fn remove_file(&self, remote_path: &str) -> Result<(), SshError> {
        let (_st, sftp) = self.sftp_begin()?;
        sftp.unlink(Path::new(remote_path))
            .map_err(|e| self.sftp_err(&e, "remove", remote_path))
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), SshError> {
        let (mut st, sftp) = self.sftp_begin()?;
        self.rename_locked(&mut st, &sftp, Path::new(from), Path::new(to))
    }

    fn rename_locked(
        &self,
        st: &mut OpState,
        sftp: &ssh2::Sftp,
        from: &Path,
        to: &Path,
    ) -> Result<(), SshError> {
        let to_s = to.to_string_lossy().into_owned();
        match self.posix_rename(st, from, to) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
        // No posix-rename on this server: plain SFTP rename, which
        // refuses to replace an existing file on SFTP v3 servers.
        let flags = Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC | RenameFlags::NATIVE);
        match sftp.rename(from, to, flags) {
            Ok(()) => Ok(()),
            Err(first) => {
                if sftp.stat(to).is_ok() {
                    sftp.unlink(to)
                        .map_err(|e| self.sftp_err(&e, "replace", &to_s))?;
                    sftp.rename(from, to, flags)
                        .map_err(|e| self.sftp_err(&e, "rename to", &to_s))
                } else {
                    Err(self.sftp_err(&first, "rename to", &to_s))
                }
            }
        }
    }

    /// `posix-rename@openssh.com`; Ok(false) if the server lacks it.
    fn posix_rename(&self, st: &mut OpState, from: &Path, to: &Path) -> Result<bool, SshError> {
        let to_s = to.to_string_lossy().into_owned();
        let cfrom = CString::new(from.to_string_lossy().as_bytes()).map_err(|_| {
            SshError::new(
                SshErrorKind::Sftp,
                format!("Invalid path {}", from.display()),
            )
        })?;
        let cto = CString::new(to_s.as_bytes())
            .map_err(|_| SshError::new(SshErrorKind::Sftp, format!("Invalid path {to_s}")))?;
        if st.posix_rename.is_none() {
            let ptr = {
                let mut guard = self.session.raw();
                // SAFETY: valid session pointer, session lock held.
                unsafe { raw::libssh2_sftp_init(&mut *guard) }
            };
            if ptr.is_null() {
                return Ok(false);
            }
            st.posix_rename = Some(RawSftp {
                session: (*self.session).clone(),
                ptr,
            });
        }
        let handle = st.posix_rename.as_ref().expect("set above");
        let (rc, last) = {
            let _guard = self.session.raw();
            // SAFETY: valid sftp handle and C strings; session lock held.
            unsafe {
                let rc = libssh2_sftp_posix_rename_ex(
                    handle.ptr,
                    cfrom.as_ptr(),
                    cfrom.as_bytes().len(),
                    cto.as_ptr(),
                    cto.as_bytes().len(),
                );
                (rc, raw::libssh2_sftp_last_error(handle.ptr))
            }
        };
        match rc {
            0 => Ok(true),
            raw::LIBSSH2_ERROR_SFTP_PROTOCOL if last == 8 => Ok(false),
            raw::LIBSSH2_ERROR_SFTP_PROTOCOL => Err(SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not rename to {to_s} on {}: {}",
                    self.name,
                    fx_reason(last as i32)
                ),
            )),
            other => {
                let e = ssh2::Error::from_errno(ErrorCode::Session(other));
                Err(self.map_err(&e, &format!("renaming to {to_s}")))
            }
        }
    }
}

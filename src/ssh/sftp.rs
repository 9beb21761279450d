//! File transfer and remote file operations over SFTP.
//!
//! Every call runs in non-blocking mode and waits on the socket between
//! attempts, like command channels do: keepalives go out while it waits,
//! a silent server ends it, and Ctrl-C wakes it (see [`Wake`]). Only the
//! start of the SFTP subsystem runs in blocking mode (the engine's libssh2
//! asks the server for its request limits there), in slices short enough
//! to notice an interrupt.
//!
//! libssh2 pipelines SFTP reads and writes only within one call, so the
//! buffer passed to each call sets how much is in flight. Uploads go to a
//! temporary name beside the target (`.<name>.twill-upload-<pid>-<n>.part`)
//! and are renamed over it with `posix-rename@openssh.com` (atomic,
//! overwrites), so a failed upload never leaves a truncated target; the
//! temporary file is removed on every error that leaves the connection
//! usable. A target that is a symlink is written through, as `open(2)`
//! would: the temporary file goes beside the file the link points to.
//!
//! A server may refuse the `sftp` subsystem (an sshd_config without a
//! `Subsystem sftp` line). libssh2 then fails to start SFTP with
//! `LIBSSH2_ERROR_CHANNEL_FAILURE` and "Unable to request SFTP
//! subsystem", the same answer it gives when the connection fails during
//! the request; a request on a channel of its own tells the two apart
//! (see [`Connection::has_sftp`]). The refusal is remembered for the
//! connection, and its transfers go over SCP (`scp.rs`).

use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libssh2_sys as raw;
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, RenameFlags};

use super::chan::{RawChannel, RawSftp};
use super::codes;
use super::connection::{Connection, OpState};
use super::io::{self, read_full};
use super::wait::{io_step, step, Step, TransferOp, Wake, GRACE};
use super::{Destination, RemoteStat, SshError, SshErrorKind};
use crate::sys::seconds;

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

/// How long one blocking slice of the SFTP start may take before twill
/// looks at the interrupt and the server's silence again.
const INIT_SLICE: Duration = Duration::from_secs(2);

/// As many links as Linux follows before `ELOOP`.
const MAX_LINKS: usize = 40;

extern "C" {
    // In libssh2 since 1.2.x, not declared by libssh2-sys 0.3.
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut raw::LIBSSH2_SFTP,
        source_filename: *const libc::c_char,
        source_filename_len: libc::size_t,
        dest_filename: *const libc::c_char,
        dest_filename_len: libc::size_t,
    ) -> libc::c_int;
    // In libssh2 since 1.2.6, not declared by libssh2-sys 0.3.
    fn libssh2_sftp_statvfs(
        sftp: *mut raw::LIBSSH2_SFTP,
        path: *const libc::c_char,
        path_len: libc::size_t,
        st: *mut raw::LIBSSH2_SFTP_STATVFS,
    ) -> libc::c_int;
}

/// `ST_RDONLY` in `statvfs@openssh.com`'s flags.
const SSH_FXE_STATVFS_ST_RDONLY: u64 = 0x1;

impl RemoteStat {
    /// The facts of an SFTP stat.
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

fn io_error(path: &Path, what: &str, e: std::io::Error) -> SshError {
    SshError::new(
        SshErrorKind::Io,
        format!("{what} failed while transferring {}: {e}", path.display()),
    )
}

fn c_path(p: &Path) -> Result<CString, SshError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        SshError::new(
            SshErrorKind::Sftp,
            format!("Invalid path {} (it holds a NUL byte)", p.display()),
        )
    })
}

/// The temporary name an upload to `target` is written under: hidden,
/// beside the target, and recognisable as twill's unfinished upload.
fn temp_name(target: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!(
        ".twill-upload-{}-{}.part",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    target.with_file_name(name)
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Connection {
    /// Error for a failed SFTP operation on `path`.
    fn sftp_err(&self, e: &ssh2::Error, verb: &str, path: &Path) -> SshError {
        match e.code() {
            ErrorCode::SFTP(code) => SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not {verb} {} on {}: {}",
                    path.display(),
                    self.name,
                    codes::sftp_status_reason(code)
                ),
            ),
            _ => self.map_err(e, &format!("{verb} {}", path.display())),
        }
    }

    /// How long the server may stay silent before a call gives up: the
    /// keepalive's limit, else the I/O timeout.
    fn silence_limit(&self) -> Duration {
        self.keepalive_limit().unwrap_or(self.io_timeout)
    }

    /// [`Connection::drive`] for an ssh2 call on `path`.
    fn call<T>(
        &self,
        st: &mut OpState,
        verb: &str,
        path: &Path,
        wake: Wake,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, SshError> {
        let what = format!("{verb} {}", path.display());
        self.drive(st, &what, wake, || {
            step(f()).map_err(|e| self.sftp_err(&e, verb, path))
        })
    }

    /// Starts an SFTP channel in blocking mode, in slices of
    /// [`INIT_SLICE`], so that an interrupt or a silent server still ends
    /// the wait.
    fn start_blocking<T>(
        &self,
        what: &str,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, SshError> {
        let start = Instant::now();
        self.session.set_blocking(true);
        let slice = INIT_SLICE.as_millis() as u32;
        loop {
            self.session.set_timeout(slice);
            let result = f();
            self.session.set_timeout(0);
            match result {
                Ok(v) => return Ok(v),
                Err(e) if codes::is_timeout(&e) => {
                    // libssh2 is in the middle of the exchange; a session
                    // given up here cannot be trusted again.
                    if io::interrupted() {
                        self.mark_dead(&format!("interrupted while {what}"));
                        return Err(self.interrupted_err(what));
                    }
                    if start.elapsed() >= self.silence_limit() {
                        self.mark_dead(&format!("no answer while {what}"));
                        return Err(SshError::new(
                            SshErrorKind::Timeout,
                            format!(
                                "Timed out on {} ({what}): no answer for {} seconds",
                                self.name,
                                seconds(start.elapsed())
                            ),
                        ));
                    }
                }
                Err(e) if codes::is_transport_error(&e) => return Err(self.map_err(&e, what)),
                Err(e) => {
                    if codes::is_sftp_request_failure(&e) {
                        // libssh2 keeps the channel of the failed request
                        // for its next call, which frees it and returns no
                        // handle.
                        self.session.set_timeout(slice);
                        let again = f();
                        self.session.set_timeout(0);
                        if let Ok(v) = again {
                            return Ok(v);
                        }
                    }
                    return Err(SshError::new(
                        SshErrorKind::Sftp,
                        format!("SFTP is not available on {}: {}", self.name, e.message()),
                    ));
                }
            }
        }
    }

    /// Takes the operation lock, starts SFTP on first use, and puts the
    /// session in non-blocking mode for the operation. On a server that
    /// refuses the `sftp` subsystem this is an error of kind
    /// [`SshErrorKind::NoSftp`], found once and remembered for the
    /// connection, so that SFTP is not asked for again.
    fn sftp_op(&self) -> Result<(TransferOp<'_>, Arc<ssh2::Sftp>), SshError> {
        let mut op = self.transfer_op()?;
        let sftp = self.started_sftp(&mut op.st)?;
        Ok((op, sftp))
    }

    /// Whether the server runs SFTP, starting it on first use: `false` for
    /// a server that refuses the `sftp` subsystem (an sshd_config without
    /// a `Subsystem sftp` line), where files go over SCP instead. The
    /// answer is remembered for the connection.
    pub(crate) fn has_sftp(&self) -> Result<bool, SshError> {
        match self.sftp_op() {
            Ok(_) => Ok(true),
            Err(e) if e.kind == SshErrorKind::NoSftp => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The SFTP channel, started in blocking mode on first use; the
    /// session is in non-blocking mode again afterwards.
    fn started_sftp(&self, st: &mut OpState) -> Result<Arc<ssh2::Sftp>, SshError> {
        if let Some(s) = &st.sftp {
            return Ok(s.clone());
        }
        if st.sftp_refused {
            return Err(self.no_sftp());
        }
        let started = self.start_blocking("starting SFTP", || self.session.sftp());
        self.go_nonblocking(st);
        match started {
            Ok(s) => {
                let s = Arc::new(s);
                st.sftp = Some(s.clone());
                Ok(s)
            }
            // libssh2 says only that the subsystem request did not succeed
            // (LIBSSH2_ERROR_CHANNEL_FAILURE, "Unable to request SFTP
            // subsystem"), whether the server refused it or the connection
            // failed meanwhile: a channel of its own asks again.
            Err(e) if e.kind == SshErrorKind::Sftp => {
                if self.refuses_sftp(st)? {
                    st.sftp_refused = true;
                    return Err(self.no_sftp());
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the server refuses the `sftp` subsystem, asked on a new
    /// channel whose answer libssh2 passes on as it is: a refusal is
    /// `LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED` (the server's
    /// `SSH_MSG_CHANNEL_FAILURE`). A channel that cannot be opened or any
    /// other answer is no proof (`false`); a lost connection is an error.
    fn refuses_sftp(&self, st: &mut OpState) -> Result<bool, SshError> {
        let what = "asking whether the server has SFTP";
        let sess = &*self.session;
        let opened = self.drive(
            st,
            what,
            Wake::OnInterrupt,
            || match RawChannel::open_session(sess) {
                Ok(ch) => Ok(Step::Done(Some(ch))),
                Err(e) if codes::is_eagain(&e) => Ok(Step::Again),
                Err(e) if codes::is_transport_error(&e) => Err(self.map_err(&e, what)),
                Err(_) => Ok(Step::Done(None)),
            },
        )?;
        let Some(ch) = opened else { return Ok(false) };
        let refused = self.drive(st, what, Wake::OnInterrupt, || match ch.subsystem("sftp") {
            Ok(()) => Ok(Step::Done(false)),
            Err(e) if codes::is_eagain(&e) => Ok(Step::Again),
            Err(e) if codes::is_request_denied(&e) => Ok(Step::Done(true)),
            Err(e) if codes::is_transport_error(&e) => Err(self.map_err(&e, what)),
            Err(_) => Ok(Step::Done(false)),
        });
        let closing = Wake::Never(Instant::now() + self.io_timeout);
        let _ = self.drive(st, "closing a channel", closing, || {
            step(ch.close()).map_err(|e| self.map_err(&e, "closing a channel"))
        });
        refused
    }

    /// The error of an SFTP call on a server that refuses the subsystem.
    fn no_sftp(&self) -> SshError {
        SshError::new(
            SshErrorKind::NoSftp,
            format!(
                "{} has no SFTP subsystem (the server refuses it)",
                self.name
            ),
        )
    }

    /// The raw SFTP channel for the extensions, started on first use.
    fn raw_sftp(&self, st: &mut OpState) -> Result<*mut raw::LIBSSH2_SFTP, SshError> {
        if st.raw_sftp.is_none() {
            let ptr = self.start_blocking("starting SFTP", || {
                let ptr = {
                    let mut guard = self.session.raw();
                    // SAFETY: valid session pointer, session lock held.
                    unsafe { raw::libssh2_sftp_init(&mut *guard) }
                };
                if ptr.is_null() {
                    let mut guard = self.session.raw();
                    // SAFETY: valid session pointer, session lock held.
                    let code = unsafe { raw::libssh2_session_last_errno(&mut *guard) };
                    Err(ssh2::Error::from_errno(ErrorCode::Session(code)))
                } else {
                    Ok(ptr)
                }
            });
            self.session.set_blocking(false);
            st.raw_sftp = Some(RawSftp {
                session: (*self.session).clone(),
                ptr: ptr?,
            });
        }
        Ok(st.raw_sftp.as_ref().expect("set above").ptr)
    }

    /// Writes `src` to `remote` (overwriting it atomically), creating
    /// missing parent directories (0755). A symlink at `remote` is written
    /// through. `mode` sets the permission bits; without it an existing
    /// file keeps its mode and a new one gets 0644 less the server's umask.
    /// Where the target's directory does not let the user create the
    /// temporary file but the target itself is writable, the file is
    /// written in place (not atomic). Returns the number of bytes written.
    pub(crate) fn upload(
        &self,
        src: &mut dyn Read,
        remote: &Path,
        mode: Option<u32>,
    ) -> Result<u64, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        let st = &mut *op.st;
        if remote.file_name().is_none() {
            return Err(SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not upload to {} on {}: not a file name",
                    remote.display(),
                    self.name
                ),
            ));
        }
        let (target, existing) = self.resolve_links(st, &sftp, remote)?;
        if existing.is_some_and(|s| s.is_dir) {
            return Err(SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not upload to {} on {}: it is a directory",
                    target.display(),
                    self.name
                ),
            ));
        }
        if existing.is_none() {
            self.mkdir_p_locked(st, &sftp, &parent_of(&target), 0o755)?;
        }
        let final_mode = mode
            .map(|m| m & 0o7777)
            .or_else(|| existing.map(|s| s.mode));
        let tmp = temp_name(&target);
        let create_mode = final_mode.unwrap_or(0o644) as i32;
        let opened = self.drive(st, "creating the upload", Wake::OnInterrupt, || {
            let r = sftp.open_mode(
                &tmp,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUSIVE,
                create_mode,
                OpenType::File,
            );
            sftp_outcome(r).map_err(|e| self.sftp_err(&e, "upload to", &target))
        })?;
        let (mut file, in_place) = match opened {
            Ok(f) => (f, false),
            Err(e) if existing.is_some() && codes::is_permission_denied(&e) => {
                // The directory is not writable, the file may be: write it
                // in place, as sftp does.
                let again = self.drive(st, "opening the target", Wake::OnInterrupt, || {
                    let r = sftp.open_mode(
                        &target,
                        OpenFlags::WRITE | OpenFlags::TRUNCATE,
                        0,
                        OpenType::File,
                    );
                    sftp_outcome(r).map_err(|e| self.sftp_err(&e, "upload to", &target))
                })?;
                match again {
                    Ok(f) => (f, true),
                    Err(_) => return Err(self.sftp_err(&e, "upload to", &target)),
                }
            }
            Err(e) => {
                let err = self.sftp_err(&e, "upload to", &target);
                return Err(self.with_fs_cause(st, &target, err));
            }
        };
        let written = self
            .write_all(st, &mut file, src, &target)
            .and_then(|total| {
                let io_deadline = || Wake::Never(Instant::now() + self.io_timeout);
                if let Some(m) = final_mode {
                    // Exact bits, whatever the server's umask.
                    self.drive(st, "setting the mode", io_deadline(), || {
                        let stat = FileStat {
                            size: None,
                            uid: None,
                            gid: None,
                            perm: Some(m),
                            atime: None,
                            mtime: None,
                        };
                        step(file.setstat(stat))
                            .map_err(|e| self.sftp_err(&e, "upload to", &target))
                    })?;
                }
                self.drive(st, "closing the upload", io_deadline(), || {
                    step(file.close()).map_err(|e| self.sftp_err(&e, "upload to", &target))
                })?;
                Ok(total)
            });
        let written = written.map_err(|e| self.with_fs_cause(st, &target, e));
        drop(file);
        let total = match written {
            Ok(t) => t,
            Err(e) => {
                if !in_place {
                    self.remove_quietly(st, &sftp, &tmp);
                }
                return Err(e);
            }
        };
        if !in_place {
            if let Err(e) = self.rename_locked(st, &sftp, &tmp, &target) {
                self.remove_quietly(st, &sftp, &tmp);
                return Err(e);
            }
        }
        Ok(total)
    }

    /// Copies `src` into `file` through a sliding window: libssh2
    /// packetizes and sends everything it is given, and returns as soon as
    /// the first writes are acknowledged; the slice passed next starts at
    /// the first unacknowledged byte and reaches further, so requests stay
    /// in flight without draining at buffer boundaries.
    fn write_all(
        &self,
        st: &mut OpState,
        file: &mut ssh2::File,
        src: &mut dyn Read,
        target: &Path,
    ) -> Result<u64, SshError> {
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
                    .map_err(|e| io_error(target, "Reading the local source", e))?;
                end += n;
                eof = n < want;
            }
            if start == end {
                return Ok(total);
            }
            let window = &buf[start..end];
            let n = self.drive(st, "uploading", Wake::OnInterrupt, || {
                io_step(file.write(window)).map_err(|e| self.write_failed(target, &e.to_string()))
            })?;
            if n == 0 {
                return Err(self.write_failed(target, "no progress"));
            }
            start += n;
            total += n as u64;
        }
    }

    /// Removes an unfinished upload, if the connection still allows it.
    fn remove_quietly(&self, st: &mut OpState, sftp: &ssh2::Sftp, tmp: &Path) {
        if self.dead.load(Ordering::SeqCst) {
            return;
        }
        let _ = self.drive(
            st,
            "removing the unfinished upload",
            Wake::Never(Instant::now() + GRACE),
            || step(sftp.unlink(tmp)).map_err(|e| self.sftp_err(&e, "remove", tmp)),
        );
    }

    /// Follows symlinks at `path` as `open(2)` would, returning the file
    /// the bytes go to and its facts (`None` when it does not exist yet).
    fn resolve_links(
        &self,
        st: &mut OpState,
        sftp: &ssh2::Sftp,
        path: &Path,
    ) -> Result<(PathBuf, Option<RemoteStat>), SshError> {
        let mut current = path.to_path_buf();
        for _ in 0..MAX_LINKS {
            let stat = self.stat_locked(st, sftp, &current, false, "looking at the target")?;
            match stat {
                Some(s) if s.is_symlink => {
                    let link =
                        self.call(st, "read the link", &current, Wake::OnInterrupt, || {
                            sftp.readlink(&current)
                        })?;
                    current = if link.is_absolute() {
                        link
                    } else {
                        parent_of(&current).join(link)
                    };
                }
                other => return Ok((current, other)),
            }
        }
        Err(SshError::new(
            SshErrorKind::Sftp,
            format!(
                "Could not upload to {} on {}: too many levels of symbolic links",
                path.display(),
                self.name
            ),
        ))
    }

    fn write_failed(&self, target: &Path, detail: &str) -> SshError {
        if !io::socket_open(self.fd) {
            return self.lost(Some(&format!("writing {}", target.display())));
        }
        SshError::new(
            SshErrorKind::Sftp,
            format!(
                "Could not upload to {} on {}: {detail}",
                target.display(),
                self.name
            ),
        )
    }

    /// Adds the likely cause to a failed upload: SFTP servers answer a
    /// full or read-only file system with a bare "failure", so twill asks
    /// `statvfs@openssh.com` about the target's file system.
    fn with_fs_cause(&self, st: &mut OpState, target: &Path, e: SshError) -> SshError {
        if e.kind != SshErrorKind::Sftp {
            return e;
        }
        match self.file_system_trouble(st, &parent_of(target)) {
            Some(cause) => SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not upload to {} on {}: {cause} (the server said: {})",
                    target.display(),
                    self.name,
                    e.message.rsplit(": ").next().unwrap_or(&e.message)
                ),
            ),
            None => e,
        }
    }

    /// "no space left on the device" or "read-only file system" when the
    /// file system holding `dir` is so, as far as the server tells.
    fn file_system_trouble(&self, st: &mut OpState, dir: &Path) -> Option<&'static str> {
        if self.dead.load(Ordering::SeqCst) {
            return None;
        }
        let ptr = self.raw_sftp(st).ok()?;
        let cpath = c_path(dir).ok()?;
        let mut vfs = raw::LIBSSH2_SFTP_STATVFS {
            f_bsize: 0,
            f_frsize: 0,
            f_blocks: 0,
            f_bfree: 0,
            f_bavail: 0,
            f_files: 0,
            f_ffree: 0,
            f_favail: 0,
            f_fsid: 0,
            f_flag: 0,
            f_namemax: 0,
        };
        let done = self.drive(
            st,
            "asking about the file system",
            Wake::Never(Instant::now() + GRACE),
            || {
                let _guard = self.session.raw();
                // SAFETY: valid sftp handle, C string and out struct;
                // session lock held.
                let rc = unsafe {
                    libssh2_sftp_statvfs(ptr, cpath.as_ptr(), cpath.as_bytes().len(), &mut vfs)
                };
                Ok(match rc {
                    raw::LIBSSH2_ERROR_EAGAIN => Step::Again,
                    rc => Step::Done(rc == 0),
                })
            },
        );
        if !done.unwrap_or(false) {
            return None;
        }
        if vfs.f_flag & SSH_FXE_STATVFS_ST_RDONLY != 0 {
            Some("read-only file system")
        } else if vfs.f_bavail == 0 {
            Some("no space left on the device")
        } else if vfs.f_favail == 0 && vfs.f_files > 0 {
            Some("no free inodes left on the device")
        } else {
            None
        }
    }

    /// Copies `remote` into `dst`; returns the remote file's facts (its
    /// size is the number of bytes copied).
    pub(crate) fn download(
        &self,
        remote: &Path,
        dst: &mut dyn Destination,
    ) -> Result<RemoteStat, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        let st = &mut *op.st;
        let mut file = self.call(st, "open", remote, Wake::OnInterrupt, || {
            sftp.open_mode(remote, OpenFlags::READ, 0, OpenType::File)
        })?;
        let mut stat = self
            .drive(st, "reading the mode", Wake::OnInterrupt, || {
                step(file.stat()).map_err(|e| self.sftp_err(&e, "stat", remote))
            })
            .map(|s| RemoteStat::from_stat(&s))?;
        if stat.is_file {
            dst.expect(stat.size);
        }
        let mut buf = vec![0u8; DOWNLOAD_BUF];
        let mut total = 0u64;
        loop {
            let n = self.drive(st, "downloading", Wake::OnInterrupt, || {
                io_step(file.read(&mut buf)).map_err(|e| {
                    if !io::socket_open(self.fd) {
                        self.lost(Some(&format!("reading {}", remote.display())))
                    } else {
                        SshError::new(
                            SshErrorKind::Sftp,
                            format!("Could not read {} on {}: {e}", remote.display(), self.name),
                        )
                    }
                })
            })?;
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n])
                .map_err(|e| io_error(remote, "Writing the local copy", e))?;
            total += n as u64;
        }
        let _ = self.drive(st, "closing", Wake::Never(Instant::now() + GRACE), || {
            step(file.close()).map_err(|e| self.sftp_err(&e, "close", remote))
        });
        stat.size = total;
        Ok(stat)
    }

    /// Facts about `remote` (symlinks followed), `None` if it does not
    /// exist.
    pub(crate) fn stat(&self, remote: &Path) -> Result<Option<RemoteStat>, SshError> {
        self.stat_with(remote, true)
    }

    /// Facts about `remote` itself (a symlink is reported as one), `None`
    /// if it does not exist.
    pub(crate) fn lstat(&self, remote: &Path) -> Result<Option<RemoteStat>, SshError> {
        self.stat_with(remote, false)
    }

    fn stat_with(&self, remote: &Path, follow: bool) -> Result<Option<RemoteStat>, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        self.stat_locked(&mut op.st, &sftp, remote, follow, "stat")
    }

    /// Facts about `path` (through a symlink when `follow`), `None` if it
    /// does not exist; `what` names the step in a timeout's message.
    fn stat_locked(
        &self,
        st: &mut OpState,
        sftp: &ssh2::Sftp,
        path: &Path,
        follow: bool,
        what: &str,
    ) -> Result<Option<RemoteStat>, SshError> {
        self.drive(st, what, Wake::OnInterrupt, || {
            let r = if follow {
                sftp.stat(path)
            } else {
                sftp.lstat(path)
            };
            match step(r) {
                Ok(Step::Done(s)) => Ok(Step::Done(Some(RemoteStat::from_stat(&s)))),
                Ok(Step::Again) => Ok(Step::Again),
                Err(e) if codes::is_no_such_file(&e) => Ok(Step::Done(None)),
                Err(e) => Err(self.sftp_err(&e, "stat", path)),
            }
        })
    }

    /// Entries of a remote directory (names only, without `.` and `..`,
    /// sorted by their bytes); symlinks are reported as such, not followed.
    pub(crate) fn read_dir(&self, remote: &Path) -> Result<Vec<(OsString, RemoteStat)>, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        let st = &mut *op.st;
        let mut dir = self.call(st, "list", remote, Wake::OnInterrupt, || {
            sftp.opendir(remote)
        })?;
        let mut out = Vec::new();
        loop {
            let entry = self.drive(st, "listing", Wake::OnInterrupt, || {
                match step(dir.readdir()) {
                    Ok(Step::Done(e)) => Ok(Step::Done(Some(e))),
                    Ok(Step::Again) => Ok(Step::Again),
                    Err(e) if codes::is_file_error(&e) => Ok(Step::Done(None)),
                    Err(e) => Err(self.sftp_err(&e, "list", remote)),
                }
            })?;
            let Some((name, stat)) = entry else { break };
            let name = name.into_os_string();
            if name != "." && name != ".." {
                out.push((name, RemoteStat::from_stat(&stat)));
            }
        }
        let _ = self.drive(st, "closing", Wake::Never(Instant::now() + GRACE), || {
            step(dir.close()).map_err(|e| self.sftp_err(&e, "close", remote))
        });
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(out)
    }

    /// What the symlink `remote` points to, as stored.
    pub(crate) fn read_link(&self, remote: &Path) -> Result<PathBuf, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        self.call(
            &mut op.st,
            "read the link",
            remote,
            Wake::OnInterrupt,
            || sftp.readlink(remote),
        )
    }

    /// Makes `link` a symlink to `target`, replacing a symlink or file
    /// already at `link`, and creating missing parent directories.
    pub(crate) fn symlink(&self, target: &Path, link: &Path) -> Result<(), SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        let st = &mut *op.st;
        self.mkdir_p_locked(st, &sftp, &parent_of(link), 0o755)?;
        let existing = self.stat_locked(st, &sftp, link, false, "stat")?;
        if let Some(s) = existing {
            if s.is_dir {
                return Err(SshError::new(
                    SshErrorKind::Sftp,
                    format!(
                        "Could not make the link {} on {}: a directory is in the way",
                        link.display(),
                        self.name
                    ),
                ));
            }
            self.call(st, "replace", link, Wake::OnInterrupt, || sftp.unlink(link))?;
        }
        // OpenSSH's sftp-server reads the two paths of SSH_FXP_SYMLINK in
        // the opposite order to the protocol draft: what the link points
        // to first, then where the link goes. libssh2 sends them as given.
        self.call(st, "make the link", link, Wake::OnInterrupt, || {
            sftp.symlink(target, link)
        })
    }

    /// The login directory (SFTP `realpath(".")`).
    pub(crate) fn home_dir(&self) -> Result<PathBuf, SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        self.call(
            &mut op.st,
            "resolve",
            Path::new("."),
            Wake::OnInterrupt,
            || sftp.realpath(Path::new(".")),
        )
    }

    fn mkdir_p_locked(
        &self,
        st: &mut OpState,
        sftp: &ssh2::Sftp,
        path: &Path,
        mode: i32,
    ) -> Result<(), SshError> {
        let existing = self
            .stat_locked(st, sftp, path, true, "stat")?
            .map(|s| s.is_dir);
        match existing {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(SshError::new(
                    SshErrorKind::Sftp,
                    format!(
                        "Could not create directory {} on {}: a file is in the way",
                        path.display(),
                        self.name
                    ),
                ))
            }
            None => {}
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.mkdir_p_locked(st, sftp, parent, mode)?;
        }
        let made = self.drive(st, "mkdir", Wake::OnInterrupt, || {
            match step(sftp.mkdir(path, mode)) {
                Ok(s) => Ok(s.map_done(|()| None)),
                Err(e) => Ok(Step::Done(Some(e))),
            }
        })?;
        match made {
            None => Ok(()),
            Some(e) => {
                // Lost a race with another creator?
                let now_dir = self.drive(st, "stat", Wake::OnInterrupt, || {
                    match step(sftp.stat(path)) {
                        Ok(s) => Ok(s.map_done(|s| s.is_dir())),
                        Err(_) => Ok(Step::Done(false)),
                    }
                })?;
                if now_dir {
                    Ok(())
                } else {
                    Err(self.sftp_err(&e, "create directory", path))
                }
            }
        }
    }

    /// Removes the file `remote`.
    pub(crate) fn remove_file(&self, remote: &Path) -> Result<(), SshError> {
        let (mut op, sftp) = self.sftp_op()?;
        self.call(&mut op.st, "remove", remote, Wake::OnInterrupt, || {
            sftp.unlink(remote)
        })
    }

    fn rename_locked(
        &self,
        st: &mut OpState,
        sftp: &ssh2::Sftp,
        from: &Path,
        to: &Path,
    ) -> Result<(), SshError> {
        if self.posix_rename(st, from, to)? {
            return Ok(());
        }
        // No posix-rename on this server: plain SFTP rename, which
        // refuses to replace an existing file on SFTP v3 servers.
        let deadline = || Wake::Never(Instant::now() + self.io_timeout);
        let flags = Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC | RenameFlags::NATIVE);
        let first = self.drive(st, "renaming", deadline(), || {
            match step(sftp.rename(from, to, flags)) {
                Ok(s) => Ok(s.map_done(|()| None)),
                Err(e) => Ok(Step::Done(Some(e))),
            }
        })?;
        let Some(first) = first else { return Ok(()) };
        let exists = self.drive(st, "stat", deadline(), || match step(sftp.stat(to)) {
            Ok(s) => Ok(s.map_done(|_| true)),
            Err(_) => Ok(Step::Done(false)),
        })?;
        if !exists {
            return Err(self.sftp_err(&first, "rename to", to));
        }
        self.call(st, "replace", to, deadline(), || sftp.unlink(to))?;
        self.call(st, "rename to", to, deadline(), || {
            sftp.rename(from, to, flags)
        })
    }

    /// `posix-rename@openssh.com`; Ok(false) if the server lacks it.
    fn posix_rename(&self, st: &mut OpState, from: &Path, to: &Path) -> Result<bool, SshError> {
        let cfrom = c_path(from)?;
        let cto = c_path(to)?;
        let ptr = match self.raw_sftp(st) {
            Ok(p) => p,
            Err(e) if e.kind == SshErrorKind::Sftp => return Ok(false),
            Err(e) => return Err(e),
        };
        let (rc, last) = self.drive(
            st,
            "renaming",
            Wake::Never(Instant::now() + self.io_timeout),
            || {
                let _guard = self.session.raw();
                // SAFETY: valid sftp handle and C strings; session lock held.
                let (rc, last) = unsafe {
                    let rc = libssh2_sftp_posix_rename_ex(
                        ptr,
                        cfrom.as_ptr(),
                        cfrom.as_bytes().len(),
                        cto.as_ptr(),
                        cto.as_bytes().len(),
                    );
                    (rc, raw::libssh2_sftp_last_error(ptr))
                };
                Ok(if rc == raw::LIBSSH2_ERROR_EAGAIN {
                    Step::Again
                } else {
                    Step::Done((rc, last))
                })
            },
        )?;
        match rc {
            0 => Ok(true),
            raw::LIBSSH2_ERROR_SFTP_PROTOCOL if codes::is_unsupported_status(last) => Ok(false),
            raw::LIBSSH2_ERROR_SFTP_PROTOCOL => Err(SshError::new(
                SshErrorKind::Sftp,
                format!(
                    "Could not rename to {} on {}: {}",
                    to.display(),
                    self.name,
                    codes::sftp_status_reason(last as i32)
                ),
            )),
            other => {
                let e = ssh2::Error::from_errno(ErrorCode::Session(other));
                Err(self.map_err(&e, &format!("renaming to {}", to.display())))
            }
        }
    }
}

/// An ssh2 call whose SFTP status the caller wants to look at: EAGAIN is
/// [`Step::Again`], an SFTP status is `Done(Err)`, anything else (the
/// transport) is an error.
fn sftp_outcome<T>(r: Result<T, ssh2::Error>) -> Result<Step<Result<T, ssh2::Error>>, ssh2::Error> {
    match r {
        Ok(v) => Ok(Step::Done(Ok(v))),
        Err(e) if codes::is_eagain(&e) => Ok(Step::Again),
        Err(e) if matches!(e.code(), ErrorCode::SFTP(_)) => Ok(Step::Done(Err(e))),
        Err(e) => Err(e),
    }
}

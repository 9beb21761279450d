//! Single files over SCP, for servers that refuse the SFTP subsystem.
//!
//! libssh2 starts the remote `scp` (`scp -t <path>` to write a file,
//! `scp -pf <path>` to read one; it quotes the path for the remote shell
//! itself) and exchanges the protocol's header line; the bytes then go
//! over the channel. As with SFTP, every call is non-blocking and driven
//! in `wait.rs`: keepalives go out while it waits, a server silent for
//! the keepalive's limit ends the transfer, and Ctrl-C ends it.
//!
//! libssh2 stops at the header: the end of the exchange is read here, so
//! that a file the server could not write or read whole is an error, not
//! a short or padded file. After the bytes of an upload comes a zero byte,
//! then the remote `scp -t` answers with its verdict on the file it wrote:
//! a zero byte, or 1 or 2 and a line saying what went wrong (a full disk).
//! The remote `scp -f` of a download sends its own verdict after the bytes;
//! the `ssh2` crate reads no further than the file's size, so the verdict
//! is taken from the exit status of `scp -f` once it is acknowledged.
//!
//! `scp -t` writes to the path it is given, in place: callers send to a
//! temporary name and move it over the target with a remote command, and
//! everything else SFTP offers (whether a path is a directory, the login
//! directory, removing a file) is a remote command too. The engine makes
//! no shell text, so all of that is the caller's.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use super::codes;
use super::connection::{Connection, OpState};
use super::io::{self, read_full};
use super::wait::{io_step, step, Wake};
use super::{Destination, RemoteStat, SshError, SshErrorKind};

/// Bytes handed to libssh2 per write and asked for per read: libssh2
/// splits them into packets and sends as far as the server's window lets.
const CHUNK: usize = 256 * 1024;

/// The longest error line of the remote `scp` that is read.
const MAX_MESSAGE: usize = 1024;

/// The remote `scp`'s verdict on a file.
enum Verdict {
    /// The file is written whole.
    Done,
    /// What went wrong, in the remote `scp`'s words.
    Failed(String),
}

impl Connection {
    /// Writes the next `size` bytes of `src` to the file `remote` with
    /// SCP and returns the number of bytes written. A new file gets `mode`
    /// less the server's umask; an existing one is overwritten in place
    /// and keeps its mode (callers send to a temporary name). `shown` is
    /// the path messages name.
    pub(crate) fn scp_upload(
        &self,
        src: &mut dyn Read,
        size: u64,
        remote: &Path,
        mode: u32,
        shown: &Path,
    ) -> Result<u64, SshError> {
        let mut op = self.transfer_op()?;
        let st = &mut *op.st;
        let sess = &*self.session;
        let mut ch = self.drive(st, "starting SCP", Wake::OnInterrupt, || {
            let r = sess.scp_send(remote, (mode & 0o7777) as i32, size, None);
            step(r).map_err(|e| self.scp_err(&e, "upload to", shown))
        })?;
        let sent = self.scp_send_bytes(st, &mut ch, src, size, shown);
        self.close_scp(st, &mut ch);
        sent
    }

    /// The bytes of an upload, the zero byte that ends them, and the
    /// remote `scp`'s verdict.
    fn scp_send_bytes(
        &self,
        st: &mut OpState,
        ch: &mut ssh2::Channel,
        src: &mut dyn Read,
        size: u64,
        shown: &Path,
    ) -> Result<u64, SshError> {
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < size {
            let want = (size - sent).min(CHUNK as u64) as usize;
            let n = read_full(src, &mut buf[..want]).map_err(|e| {
                SshError::new(
                    SshErrorKind::Io,
                    format!(
                        "Reading the local source failed while uploading to {} on {}: {e}",
                        shown.display(),
                        self.name
                    ),
                )
            })?;
            if n < want {
                return Err(SshError::new(
                    SshErrorKind::Io,
                    format!(
                        "The local source of {} on {} ended after {} of {size} bytes: it changed while it was uploaded",
                        shown.display(),
                        self.name,
                        sent + n as u64
                    ),
                ));
            }
            self.scp_write(st, ch, &buf[..n], shown)?;
            sent += n as u64;
        }
        self.scp_write(st, ch, &[0], shown)?;
        match self.scp_verdict(st, ch, shown)? {
            Verdict::Done => Ok(size),
            // `scp: <the temporary file>: <what went wrong>`: the file is
            // the caller's business, named by `shown`.
            Verdict::Failed(why) => {
                let why = why.rsplit(": ").next().unwrap_or(&why);
                Err(self.scp_failed("upload to", shown, why))
            }
        }
    }

    /// Writes all of `data` to the channel.
    fn scp_write(
        &self,
        st: &mut OpState,
        ch: &mut ssh2::Channel,
        mut data: &[u8],
        shown: &Path,
    ) -> Result<(), SshError> {
        while !data.is_empty() {
            let n = self.drive(st, "uploading", Wake::OnInterrupt, || {
                io_step(ch.write(data)).map_err(|e| self.scp_io_failed("upload to", shown, &e))
            })?;
            if n == 0 {
                return Err(self.scp_failed("upload to", shown, "no progress"));
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Reads the remote `scp -t`'s answer to the end of a file: a zero
    /// byte, or 1 or 2 and a line saying what went wrong.
    fn scp_verdict(
        &self,
        st: &mut OpState,
        ch: &mut ssh2::Channel,
        shown: &Path,
    ) -> Result<Verdict, SshError> {
        let mut byte = [0u8; 1];
        let mut first = None;
        let mut message = Vec::new();
        loop {
            let n = self.drive(st, "waiting for scp", Wake::OnInterrupt, || {
                io_step(ch.read(&mut byte)).map_err(|e| self.scp_io_failed("upload to", shown, &e))
            })?;
            if n == 0 {
                // The remote scp ended (with the line unfinished, if any).
                return Ok(match first {
                    None => Verdict::Failed("the server's scp ended without a word".into()),
                    Some(_) => Verdict::Failed(String::from_utf8_lossy(&message).into_owned()),
                });
            }
            match first {
                None if byte[0] == 0 => return Ok(Verdict::Done),
                None => first = Some(byte[0]),
                Some(_) if byte[0] == b'\n' || message.len() >= MAX_MESSAGE => {
                    return Ok(Verdict::Failed(
                        String::from_utf8_lossy(&message).into_owned(),
                    ))
                }
                Some(_) => message.push(byte[0]),
            }
        }
    }

    /// Copies the file `remote` into `dst` with SCP; returns its facts
    /// (its size is the number of bytes copied, its mode the one the
    /// server sent).
    pub(crate) fn scp_download(
        &self,
        remote: &Path,
        dst: &mut dyn Destination,
    ) -> Result<RemoteStat, SshError> {
        let mut op = self.transfer_op()?;
        let st = &mut *op.st;
        let sess = &*self.session;
        let (mut ch, stat) = self.drive(st, "starting SCP", Wake::OnInterrupt, || {
            step(sess.scp_recv(remote)).map_err(|e| self.scp_err(&e, "download", remote))
        })?;
        let size = stat.size();
        dst.expect(size);
        let received = self.scp_receive_bytes(st, &mut ch, dst, size, remote);
        let status = received.and_then(|total| {
            // The remote scp's verdict follows the bytes; it waits for
            // this acknowledgement, then ends with its status.
            self.drive(st, "downloading", Wake::OnInterrupt, || {
                io_step(ch.write(&[0])).map_err(|e| self.scp_io_failed("download", remote, &e))
            })?;
            Ok(total)
        });
        self.close_scp(st, &mut ch);
        let total = status?;
        match ch.exit_status() {
            Ok(0) => Ok(RemoteStat {
                is_dir: false,
                is_file: true,
                is_symlink: false,
                mode: (stat.mode() as u32) & 0o7777,
                size: total,
            }),
            Ok(code) => Err(self.scp_failed(
                "download",
                remote,
                &format!("the server's scp reported an error after sending the file (exit status {code})"),
            )),
            Err(_) => Err(self.scp_failed(
                "download",
                remote,
                "the server's scp ended without an exit status",
            )),
        }
    }

    /// The `size` bytes of a download, into `dst`.
    fn scp_receive_bytes(
        &self,
        st: &mut OpState,
        ch: &mut ssh2::Channel,
        dst: &mut dyn Write,
        size: u64,
        remote: &Path,
    ) -> Result<u64, SshError> {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        while total < size {
            let want = (size - total).min(CHUNK as u64) as usize;
            let n = self.drive(st, "downloading", Wake::OnInterrupt, || {
                io_step(ch.read(&mut buf[..want]))
                    .map_err(|e| self.scp_io_failed("download", remote, &e))
            })?;
            if n == 0 {
                return Err(self.scp_failed(
                    "download",
                    remote,
                    &format!("the server's scp ended after {total} of {size} bytes"),
                ));
            }
            dst.write_all(&buf[..n]).map_err(|e| {
                SshError::new(
                    SshErrorKind::Io,
                    format!(
                        "Writing the local copy failed while downloading {} from {}: {e}",
                        remote.display(),
                        self.name
                    ),
                )
            })?;
            total += n as u64;
        }
        Ok(total)
    }

    /// Ends an SCP channel (our end of input, then the close both ways),
    /// so that dropping it frees it without waiting. Errors are left to
    /// the transfer's own outcome; on a connection already given up
    /// nothing is sent.
    fn close_scp(&self, st: &mut OpState, ch: &mut ssh2::Channel) {
        if self.dead.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let deadline = Wake::Never(Instant::now() + self.io_timeout);
        let _ = self.drive(st, "closing the SCP channel", deadline, || {
            step(ch.close()).map_err(|e| self.map_err(&e, "closing the SCP channel"))
        });
    }

    /// Error for a failed start of `scp` on `path`: libssh2's words (the
    /// remote `scp` refused the file, ended, or the channel could not be
    /// opened), or the lost connection.
    fn scp_err(&self, e: &ssh2::Error, verb: &str, path: &Path) -> SshError {
        let refused = codes::is_scp_protocol(e)
            || (!codes::is_transport_error(e) && !codes::is_timeout(e) && io::socket_open(self.fd));
        if refused {
            return self.scp_failed(verb, path, e.message());
        }
        self.map_err(e, &format!("{verb} {} over SCP", path.display()))
    }

    /// Error for a channel read or write that failed: a lost connection,
    /// or the channel's trouble.
    fn scp_io_failed(&self, verb: &str, path: &Path, e: &std::io::Error) -> SshError {
        if !io::socket_open(self.fd) {
            return self.lost(Some(&format!("{verb} {}", path.display())));
        }
        self.scp_failed(verb, path, &e.to_string())
    }

    /// Error of kind [`SshErrorKind::Scp`]: what went wrong with `path`.
    fn scp_failed(&self, verb: &str, path: &Path, why: &str) -> SshError {
        SshError::new(
            SshErrorKind::Scp,
            format!(
                "Could not {verb} {} on {} over SCP: {why}",
                path.display(),
                self.name
            ),
        )
    }
}

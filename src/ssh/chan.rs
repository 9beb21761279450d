//! Channels driven through libssh2 directly, where the `ssh2` crate falls
//! short.
//!
//! The `ssh2` crate's `Channel` cannot send a `signal` request (libssh2's
//! `libssh2_channel_signal_ex`, not wrapped) and refuses a second request
//! after `exec`. twill needs the signal to stop a remote command on timeout
//! or interrupt, so command channels use [`RawChannel`], a thin wrapper.
//! [`RawSftp`] is the handle of a second SFTP channel, for the extensions
//! the `ssh2` crate does not wrap either. Every call holds the
//! `ssh2::Session` lock, as the `ssh2` crate itself does.

use std::ptr::null_mut;

use libssh2_sys as raw;

extern "C" {
    // In libssh2 since 1.11.0, not declared by libssh2-sys 0.3.
    fn libssh2_channel_signal_ex(
        channel: *mut raw::LIBSSH2_CHANNEL,
        signame: *const libc::c_char,
        signame_len: libc::size_t,
    ) -> libc::c_int;
}

/// Receive window of a command channel; large enough for fast streaming of
/// big outputs.
const WINDOW: libc::c_uint = 4 * 1024 * 1024;

pub(crate) struct RawChannel {
    session: ssh2::Session,
    ptr: *mut raw::LIBSSH2_CHANNEL,
}

// SAFETY: the pointer is only used while holding the session lock.
unsafe impl Send for RawChannel {}

type R<T> = Result<T, ssh2::Error>;

impl RawChannel {
    fn with<T>(
        &self,
        f: impl FnOnce(*mut raw::LIBSSH2_SESSION, *mut raw::LIBSSH2_CHANNEL) -> T,
    ) -> T {
        let mut guard = self.session.raw();
        f(&mut *guard as *mut raw::LIBSSH2_SESSION, self.ptr)
    }

    fn rc(&self, rc: libc::c_int) -> R<()> {
        if rc >= 0 {
            Ok(())
        } else {
            Err(self.with(|s, _| ssh2::Error::from_session_error_raw(s, rc)))
        }
    }

    /// Opens a "session" channel (EAGAIN in non-blocking mode until done).
    pub(crate) fn open_session(session: &ssh2::Session) -> R<RawChannel> {
        let mut guard = session.raw();
        let s = &mut *guard as *mut raw::LIBSSH2_SESSION;
        let kind = "session";
        // SAFETY: valid session pointer and buffer; lock held.
        let ptr = unsafe {
            raw::libssh2_channel_open_ex(
                s,
                kind.as_ptr() as *const libc::c_char,
                kind.len() as libc::c_uint,
                WINDOW,
                raw::LIBSSH2_CHANNEL_PACKET_DEFAULT,
                std::ptr::null(),
                0,
            )
        };
        if ptr.is_null() {
            // SAFETY: as above.
            let rc = unsafe { raw::libssh2_session_last_errno(s) };
            return Err(ssh2::Error::from_session_error_raw(s, rc));
        }
        drop(guard);
        Ok(RawChannel {
            session: session.clone(),
            ptr,
        })
    }

    pub(crate) fn request_pty(&self, term: &str, cols: u32, rows: u32) -> R<()> {
        // SAFETY: valid channel; term outlives the call.
        let rc = self.with(|_, c| unsafe {
            raw::libssh2_channel_request_pty_ex(
                c,
                term.as_ptr() as *const libc::c_char,
                term.len() as libc::c_uint,
                std::ptr::null(),
                0,
                cols as libc::c_int,
                rows as libc::c_int,
                0,
                0,
            )
        });
        self.rc(rc)
    }

    /// Tells the pty the new size of the terminal (columns, rows).
    pub(crate) fn request_pty_size(&self, cols: u32, rows: u32) -> R<()> {
        // SAFETY: valid channel.
        let rc = self.with(|_, c| unsafe {
            raw::libssh2_channel_request_pty_size_ex(
                c,
                cols as libc::c_int,
                rows as libc::c_int,
                0,
                0,
            )
        });
        self.rc(rc)
    }

    pub(crate) fn exec(&self, command: &str) -> R<()> {
        self.start("exec", command)
    }

    /// Starts the subsystem `name` (the "subsystem" request).
    pub(crate) fn subsystem(&self, name: &str) -> R<()> {
        self.start("subsystem", name)
    }

    /// Starts the user's login shell (the "shell" request).
    pub(crate) fn shell(&self) -> R<()> {
        self.start("shell", "")
    }

    fn start(&self, req: &str, message: &str) -> R<()> {
        // SAFETY: valid channel and buffers; an empty message is passed
        // as a null pointer, as libssh2's own `shell` macro does.
        let rc = self.with(|_, c| unsafe {
            raw::libssh2_channel_process_startup(
                c,
                req.as_ptr() as *const libc::c_char,
                req.len() as libc::c_uint,
                if message.is_empty() {
                    std::ptr::null()
                } else {
                    message.as_ptr() as *const libc::c_char
                },
                message.len() as libc::c_uint,
            )
        });
        self.rc(rc)
    }

    /// Reads from stream 0 (stdout) or 1 (stderr). Ok(0) at EOF.
    pub(crate) fn read(&self, stream: i32, buf: &mut [u8]) -> R<usize> {
        // SAFETY: valid channel; buf is writable for its length.
        let n = self.with(|_, c| unsafe {
            raw::libssh2_channel_read_ex(
                c,
                stream,
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
            )
        });
        if n >= 0 {
            Ok(n as usize)
        } else {
            Err(self.with(|s, _| ssh2::Error::from_session_error_raw(s, n as libc::c_int)))
        }
    }

    /// Writes to the command's stdin.
    pub(crate) fn write(&self, buf: &[u8]) -> R<usize> {
        // SAFETY: valid channel; buf readable for its length.
        let n = self.with(|_, c| unsafe {
            raw::libssh2_channel_write_ex(c, 0, buf.as_ptr() as *const libc::c_char, buf.len())
        });
        if n >= 0 {
            Ok(n as usize)
        } else {
            Err(self.with(|s, _| ssh2::Error::from_session_error_raw(s, n as libc::c_int)))
        }
    }

    /// Tells the remote side that nothing more comes on stdin.
    pub(crate) fn send_eof(&self) -> R<()> {
        // SAFETY: valid channel.
        let rc = self.with(|_, c| unsafe { raw::libssh2_channel_send_eof(c) });
        self.rc(rc)
    }

    /// Remote EOF received and nothing left to read.
    pub(crate) fn eof(&self) -> bool {
        // SAFETY: valid channel.
        self.with(|_, c| unsafe { raw::libssh2_channel_eof(c) }) == 1
    }

    /// Bytes received and queued for this channel, not read yet.
    pub(crate) fn available(&self) -> u64 {
        let mut avail: libc::c_ulong = 0;
        let mut init: libc::c_ulong = 0;
        // SAFETY: valid channel and out-pointers.
        self.with(|_, c| unsafe { raw::libssh2_channel_window_read_ex(c, &mut avail, &mut init) });
        avail as u64
    }

    pub(crate) fn wait_closed(&self) -> R<()> {
        // SAFETY: valid channel.
        let rc = self.with(|_, c| unsafe { raw::libssh2_channel_wait_closed(c) });
        self.rc(rc)
    }

    pub(crate) fn close(&self) -> R<()> {
        // SAFETY: valid channel.
        let rc = self.with(|_, c| unsafe { raw::libssh2_channel_close(c) });
        self.rc(rc)
    }

    /// Sends a "signal" request (name without `SIG`).
    pub(crate) fn signal(&self, name: &str) -> R<()> {
        // SAFETY: valid channel and buffer.
        let rc = self.with(|_, c| unsafe {
            libssh2_channel_signal_ex(c, name.as_ptr() as *const libc::c_char, name.len())
        });
        self.rc(rc)
    }

    pub(crate) fn exit_status(&self) -> i32 {
        // SAFETY: valid channel.
        self.with(|_, c| unsafe { raw::libssh2_channel_get_exit_status(c) })
    }

    /// The signal that killed the command, if it reported one.
    pub(crate) fn exit_signal(&self) -> Option<String> {
        self.with(|s, c| {
            let mut sig: *mut libc::c_char = null_mut();
            let mut siglen: libc::size_t = 0;
            // SAFETY: valid channel; libssh2 allocates the returned string,
            // freed below with the session's allocator.
            unsafe {
                let rc = raw::libssh2_channel_get_exit_signal(
                    c,
                    &mut sig,
                    &mut siglen,
                    null_mut(),
                    null_mut(),
                    null_mut(),
                    null_mut(),
                );
                if rc != 0 || sig.is_null() {
                    return None;
                }
                let bytes = std::slice::from_raw_parts(sig as *const u8, siglen).to_vec();
                raw::libssh2_free(s, sig as *mut libc::c_void);
                String::from_utf8(bytes).ok()
            }
        })
    }
}

impl Drop for RawChannel {
    fn drop(&mut self) {
        // SAFETY: valid channel, freed once; lock held.
        self.with(|_, c| unsafe { raw::libssh2_channel_free(c) });
    }
}

/// A second SFTP channel driven through libssh2 directly, for the
/// `posix-rename@openssh.com` and `statvfs@openssh.com` extensions that
/// the `ssh2` crate does not wrap.
pub(crate) struct RawSftp {
    pub(super) session: ssh2::Session,
    pub(super) ptr: *mut raw::LIBSSH2_SFTP,
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

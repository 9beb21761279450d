//! What libssh2's error codes mean to the engine, by their names in
//! `libssh2-sys`: session errors (`LIBSSH2_ERROR_*`) and the SFTP status
//! codes servers answer with (`LIBSSH2_FX_*`). No other file of the engine
//! compares an error code with a number.

use libssh2_sys as raw;
use ssh2::ErrorCode;

/// `LIBSSH2_ERROR_SOCKET_NONE` of libssh2.h (no socket, or a socket
/// error), which `libssh2-sys` does not declare.
const LIBSSH2_ERROR_SOCKET_NONE: libc::c_int = -1;

/// Whether `e` is the session error `code`.
fn is(e: &ssh2::Error, code: libc::c_int) -> bool {
    e.code() == ErrorCode::Session(code)
}

/// A non-blocking call would block: wait on the socket and call again.
pub(crate) fn is_eagain(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_EAGAIN)
}

/// A blocking call ran out of the session's timeout.
pub(crate) fn is_timeout(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_TIMEOUT)
}

/// A packet of another call is still half sent, so libssh2 refuses to
/// start a new one.
pub(crate) fn is_bad_use(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_BAD_USE)
}

/// A file could not be used: a key file that could not be read or
/// decrypted, or (from the `ssh2` crate's `readdir`) the end of a
/// directory listing.
pub(crate) fn is_file_error(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_FILE)
}

/// The server's identification line could not be read.
pub(crate) fn is_banner_error(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_BANNER_RECV)
}

/// The peer closed the connection.
pub(crate) fn is_disconnect(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_SOCKET_DISCONNECT)
}

/// The server refused a channel request (`SSH_MSG_CHANNEL_FAILURE`): for
/// a `subsystem` request, it has no such subsystem.
pub(crate) fn is_request_denied(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED)
}

/// libssh2's words when its SFTP start fails at the `subsystem` request,
/// whether the server refused it or the connection failed: it passes on
/// neither, and keeps the request's channel for its next call to free.
const SFTP_REQUEST_FAILED: &str = "Unable to request SFTP subsystem";

/// Starting SFTP failed at the `subsystem` request (see
/// [`SFTP_REQUEST_FAILED`]).
pub(crate) fn is_sftp_request_failure(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_CHANNEL_FAILURE) && e.message() == SFTP_REQUEST_FAILED
}

/// libssh2's SCP exchange went wrong: the remote `scp` refused the file,
/// answered what libssh2 did not expect, or ended.
pub(crate) fn is_scp_protocol(e: &ssh2::Error) -> bool {
    is(e, raw::LIBSSH2_ERROR_SCP_PROTOCOL)
}

/// libssh2 errors that mean the transport is gone.
pub(crate) fn is_transport_error(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(
            LIBSSH2_ERROR_SOCKET_NONE
                | raw::LIBSSH2_ERROR_BANNER_RECV
                | raw::LIBSSH2_ERROR_BANNER_SEND
                | raw::LIBSSH2_ERROR_INVALID_MAC
                | raw::LIBSSH2_ERROR_KEX_FAILURE
                | raw::LIBSSH2_ERROR_SOCKET_SEND
                | raw::LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE
                | raw::LIBSSH2_ERROR_DECRYPT
                | raw::LIBSSH2_ERROR_SOCKET_DISCONNECT
                | raw::LIBSSH2_ERROR_PROTO
                | raw::LIBSSH2_ERROR_SOCKET_TIMEOUT
                | raw::LIBSSH2_ERROR_SOCKET_RECV
                | raw::LIBSSH2_ERROR_ENCRYPT
                | raw::LIBSSH2_ERROR_BAD_SOCKET
        )
    )
}

/// The path does not exist (SFTP status).
pub(crate) fn is_no_such_file(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::SFTP(raw::LIBSSH2_FX_NO_SUCH_FILE | raw::LIBSSH2_FX_NO_SUCH_PATH)
    )
}

/// The server refused the access (SFTP status).
pub(crate) fn is_permission_denied(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::SFTP(raw::LIBSSH2_FX_PERMISSION_DENIED | raw::LIBSSH2_FX_WRITE_PROTECT)
    )
}

/// The server does not implement the request (SFTP status).
pub(crate) fn is_unsupported_status(status: libc::c_ulong) -> bool {
    status == raw::LIBSSH2_FX_OP_UNSUPPORTED as libc::c_ulong
}

/// An SFTP status in words, for messages.
pub(crate) fn sftp_status_reason(status: i32) -> &'static str {
    match status {
        raw::LIBSSH2_FX_EOF => "end of file",
        raw::LIBSSH2_FX_NO_SUCH_FILE => "No such file or directory",
        raw::LIBSSH2_FX_PERMISSION_DENIED => "Permission denied",
        raw::LIBSSH2_FX_FAILURE => "Failure",
        raw::LIBSSH2_FX_BAD_MESSAGE => "Bad message",
        raw::LIBSSH2_FX_OP_UNSUPPORTED => "Operation unsupported",
        raw::LIBSSH2_FX_FILE_ALREADY_EXISTS => "File already exists",
        raw::LIBSSH2_FX_WRITE_PROTECT => "Write protected",
        raw::LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM => "No space left on the file system",
        raw::LIBSSH2_FX_QUOTA_EXCEEDED => "Quota exceeded",
        _ => "SFTP error",
    }
}

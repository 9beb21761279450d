//! The operations: what a twill script calls.

pub(crate) mod context;
pub(crate) mod local;
pub(crate) mod options;
pub(crate) mod prompt;
pub(crate) mod reboot;
pub(crate) mod remote;
pub(crate) mod session;
pub(crate) mod transfer;
pub(crate) mod utils;

use crate::error::{Error, ErrorKind, Result};
use crate::output;
use crate::result::Output;
use crate::state::Env;

/// Gives up with `msg`, the way Fabric's `abort(msg)` does: returns an
/// error of kind [`ErrorKind::Aborted`] to pass up with `?`/`return Err`.
/// Printing `Fatal error: <msg>` and `Aborting.` is left to whoever ends
/// the program ([`Error::report`]), so a caller can still catch it.
///
/// ```
/// fn check(branch: &str) -> twill::Result<()> {
///     if branch != "main" {
///         return Err(twill::abort(format!("refusing to deploy {branch}")));
///     }
///     Ok(())
/// }
/// let err = check("wip").unwrap_err();
/// assert_eq!(err.kind(), twill::ErrorKind::Aborted);
/// assert_eq!(err.to_string(), "refusing to deploy wip");
/// ```
pub fn abort(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Aborted, msg)
}

/// A failed command: with `warn_only` a warning and `Ok`, else an error of
/// kind [`ErrorKind::CommandFailed`] carrying the output.
pub(crate) fn finish_message(
    env: &Env,
    msg: String,
    out: Output,
    warn_only: bool,
    host: Option<&str>,
) -> Result<Output> {
    if warn_only {
        let shown = match host {
            Some(h) => format!("[{h}] {msg}"),
            None => msg,
        };
        output::warning(env, &shown);
        return Ok(out);
    }
    let err = Error::new(ErrorKind::CommandFailed, msg).with_output(out);
    Err(match host {
        Some(h) => err.with_host(h),
        None => err,
    })
}

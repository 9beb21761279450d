//! The operations: what a twill script calls.

pub(crate) mod context;
pub(crate) mod dry_run;
pub(crate) mod local;
pub(crate) mod options;
pub(crate) mod pipe;
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

/// [`abort`] carrying the result of the command the script gives up over
/// (threadbare's `abort(result, msg)`): [`Error::output`] and
/// [`Error::exit_code`] return it, and the abort block shows its output
/// where it was hidden.
///
/// ```
/// use twill::{abort_with, local_with, LocalOptions};
///
/// let out = local_with("echo half-done; exit 3", &LocalOptions::new().capture(true).warn_only(true))?;
/// let err = abort_with(out, "the migration did not finish");
/// assert_eq!(err.kind(), twill::ErrorKind::Aborted);
/// assert_eq!(err.exit_code(), Some(3));
/// assert_eq!(err.output().unwrap().stdout(), "half-done");
/// # Ok::<(), twill::Error>(())
/// ```
pub fn abort_with(output: Output, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Aborted, msg).with_output(output)
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
        // Fabric's warning is the message alone.
        output::warning(env, &msg);
        return Ok(out);
    }
    let err = Error::new(ErrorKind::CommandFailed, msg).with_output(out);
    Err(match host {
        Some(h) => err.with_host(h),
        None => err,
    })
}

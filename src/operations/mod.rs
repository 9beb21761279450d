//! The operations: what a twill script calls.

pub(crate) mod context;
pub(crate) mod local;
pub(crate) mod options;
pub(crate) mod prompt;
pub(crate) mod remote;
pub(crate) mod transfer;

use crate::error::{Error, ErrorKind};

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

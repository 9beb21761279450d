//! The one error type of twill.

use std::fmt;

use crate::result::Output;

/// What went wrong, in the categories a caller branches on.
///
/// The list can grow; match it with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A command ran and exited with a code outside `ok_ret_codes`.
    /// [`Error::output`] holds what it printed.
    CommandFailed,
    /// A command (or a connection attempt) did not finish in time.
    Timeout,
    /// The host could not be reached: name lookup, refused or unreachable address.
    Connect,
    /// The server refused every authentication method that was tried.
    Auth,
    /// A private key file given to connect with (a setting, `-i`, or
    /// ssh_config's `IdentityFile`) does not exist or cannot be read or
    /// decrypted, and nothing else authenticated: a configuration to fix.
    KeyFile,
    /// The host key is unknown or differs from the one in known_hosts.
    HostKey,
    /// An established connection was lost in the middle of an operation.
    Disconnected,
    /// An upload or download failed.
    Transfer,
    /// A prompt was needed where prompting is not possible, or input ended.
    Prompt,
    /// The script itself gave up with [`abort`](crate::abort).
    Aborted,
    /// A setting or argument was invalid, or a scope rule was broken.
    Settings,
    /// One or more hosts failed while a task ran on several hosts.
    TaskFailed,
    /// A local I/O error (spawning a process, reading a file, ...).
    Io,
    /// The run was interrupted (Ctrl-C) and the command stopped.
    Interrupted,
    /// The command line, or a task's arguments on it, could not be used.
    Usage,
    /// A command was stopped on request before it ended: by
    /// [`RemoteProcess::stop`](crate::RemoteProcess::stop), or by
    /// [`pipe`](crate::pipe) when the other side failed.
    Stopped,
}

/// The error of every fallible operation in twill.
///
/// It carries what a caller needs to react: the [`kind`](Error::kind), the
/// host and the command involved, the exit code and, for a failed command,
/// the whole [`Output`]. Its `Display` is a full sentence in Fabric's words,
/// e.g. `local() encountered an error (return code 1) while executing 'false'`,
/// and `Debug` prints the same sentence so that `fn main() -> twill::Result<()>`
/// reads well.
///
/// ```
/// use twill::{local, ErrorKind};
///
/// let err = local("exit 3").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::CommandFailed);
/// assert_eq!(err.exit_code(), Some(3));
/// assert_eq!(err.command(), Some("exit 3"));
/// assert_eq!(err.to_string(), "local() encountered an error (return code 3) while executing 'exit 3'");
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    host: Option<String>,
    command: Option<String>,
    exit_code: Option<i32>,
    output: Option<Output>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with twill's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message (a full sentence).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                host: None,
                command: None,
                exit_code: None,
                output: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_host(mut self, host: impl Into<String>) -> Error {
        self.inner.host = Some(host.into());
        self
    }

    /// The same error with its message rewritten by `f` (a front end's
    /// own words for what it offers).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Error {
        self.inner.message = f(&self.inner.message);
        self
    }

    pub(crate) fn with_command(mut self, command: impl Into<String>) -> Error {
        self.inner.command = Some(command.into());
        self
    }

    pub(crate) fn with_output(mut self, output: Output) -> Error {
        self.inner.exit_code = Some(output.return_code());
        if self.inner.command.is_none() {
            self.inner.command = Some(output.command().to_string());
        }
        self.inner.output = Some(output);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{context}: {err}")).with_source(err)
    }

    /// The category of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, without host decoration: what Fabric would print after
    /// `Fatal error: `.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The host the failure happened on (`host_string` as written), if any.
    pub fn host(&self) -> Option<&str> {
        self.inner.host.as_deref()
    }

    /// The command as the caller gave it, if a command was involved.
    pub fn command(&self) -> Option<&str> {
        self.inner.command.as_deref()
    }

    /// The exit code of the failed command, if it ran to an exit.
    pub fn exit_code(&self) -> Option<i32> {
        self.inner.exit_code
    }

    /// Everything the failed command printed, and how it was run.
    pub fn output(&self) -> Option<&Output> {
        self.inner.output.as_ref()
    }

    /// Takes the command output out of the error.
    pub fn into_output(self) -> Option<Output> {
        self.inner.output
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.host {
            Some(host) if !self.inner.message.contains(host.as_str()) => {
                write!(f, "[{host}] {}", self.inner.message)
            }
            _ => f.write_str(&self.inner.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `?` on a file operation in a task: an error of kind [`ErrorKind::Io`]
/// saying what the system said. Inside [`Execute`](crate::Execute) it gets
/// the host it happened on.
///
/// ```
/// fn task() -> twill::Result<()> {
///     std::fs::write("/nonexistent-dir/x", "data")?;
///     Ok(())
/// }
/// assert_eq!(task().unwrap_err().kind(), twill::ErrorKind::Io);
/// ```
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string()).with_source(e)
    }
}

/// `?` on parsing or decoding in a task (a number read from a command's
/// output, say): an error of kind [`ErrorKind::Aborted`], as the task's
/// own failure, saying what could not be read.
macro_rules! task_failure_from {
    ($($t:ty => $what:expr),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::new(ErrorKind::Aborted, format!("{}: {e}", $what)).with_source(e)
            }
        }
    )*};
}

task_failure_from! {
    std::num::ParseIntError => "not a whole number",
    std::num::ParseFloatError => "not a number",
    std::str::ParseBoolError => "not true or false",
    std::string::FromUtf8Error => "not UTF-8 text",
    std::str::Utf8Error => "not UTF-8 text",
    std::fmt::Error => "formatting failed",
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

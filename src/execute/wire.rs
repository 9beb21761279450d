//! What crosses from a parallel worker to the caller: the worker's report,
//! one JSON document on its report pipe.
//!
//! The public types ([`Error`], [`ErrorKind`], [`Output`]) carry no serde
//! traits: the format of this pipe is a private matter between a worker
//! and the process that forked it, so it is spelled out here, in mirrors
//! converted both ways, and can change without touching the public API.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::with_host;
use crate::error::{Error, ErrorKind, Result};
use crate::result::Output;

/// The report of a task's outcome, as the worker writes it to its report
/// pipe.
pub(super) fn encode<T: Serialize>(outcome: &Result<T>) -> Vec<u8> {
    let report = match outcome {
        Ok(v) => match serde_json::to_value(v) {
            Ok(v) => Report::Ok(v),
            Err(e) => Report::Err(ErrorParts::from(&Error::new(
                ErrorKind::TaskFailed,
                format!("the task's result cannot be sent back: {e}"),
            ))),
        },
        Err(e) => Report::Err(ErrorParts::from(e)),
    };
    serde_json::to_vec(&report).unwrap_or_default()
}

/// The task's outcome on `host` from a worker's report; a report that
/// cannot be read is that host's failure.
pub(super) fn decode<T: DeserializeOwned>(report: &[u8], host: &str) -> Result<T> {
    match serde_json::from_slice::<Report>(report) {
        Ok(Report::Ok(v)) => serde_json::from_value(v).map_err(|e| {
            Error::new(
                ErrorKind::TaskFailed,
                format!("the task's result could not be read back: {e}"),
            )
            .with_host(host)
        }),
        Ok(Report::Err(parts)) => Err(with_host(parts.into_error(), host)),
        Err(e) => Err(Error::new(
            ErrorKind::TaskFailed,
            format!("the worker's report could not be read: {e}"),
        )
        .with_host(host)),
    }
}

/// A worker's report: the task's value (serialized by the task's own
/// type), or its error.
#[derive(Serialize, Deserialize)]
enum Report {
    Ok(serde_json::Value),
    Err(ErrorParts),
}

/// An error as it crosses from a worker to the caller. The source error,
/// a local value of the worker, stays behind: its message is part of
/// `message` already.
#[derive(Serialize, Deserialize)]
struct ErrorParts {
    kind: Kind,
    message: String,
    host: Option<String>,
    command: Option<String>,
    output: Option<OutputParts>,
}

impl ErrorParts {
    fn from(e: &Error) -> ErrorParts {
        ErrorParts {
            kind: Kind::from(e.kind()),
            message: e.message().to_string(),
            host: e.host().map(String::from),
            command: e.command().map(String::from),
            output: e.output().map(OutputParts::from),
        }
    }

    fn into_error(self) -> Error {
        let mut e = Error::new(self.kind.into(), self.message);
        if let Some(o) = self.output {
            e = e.with_output(o.into_output());
        }
        if let Some(c) = self.command {
            e = e.with_command(c);
        }
        if let Some(h) = self.host {
            e = e.with_host(h);
        }
        e
    }
}

/// [`Output`] as it crosses: every field, as the getters give it.
#[derive(Serialize, Deserialize)]
struct OutputParts {
    stdout: String,
    stderr: String,
    return_code: i32,
    failed: bool,
    command: String,
    real_command: String,
}

impl OutputParts {
    fn from(o: &Output) -> OutputParts {
        OutputParts {
            stdout: o.stdout().to_string(),
            stderr: o.stderr().to_string(),
            return_code: o.return_code(),
            failed: o.failed(),
            command: o.command().to_string(),
            real_command: o.real_command().to_string(),
        }
    }

    fn into_output(self) -> Output {
        // The texts are stripped already, and stripping them again leaves
        // them as they are: the caller's `Output` equals the worker's.
        Output::new(
            self.stdout.into_bytes(),
            self.stderr.into_bytes(),
            self.return_code,
            self.failed,
            &self.command,
            &self.real_command,
        )
    }
}

/// [`ErrorKind`] as it crosses. Both conversions match every variant, so
/// a new kind cannot be added without its mirror here.
#[derive(Serialize, Deserialize)]
enum Kind {
    CommandFailed,
    Timeout,
    Connect,
    Auth,
    KeyFile,
    HostKey,
    Disconnected,
    Transfer,
    Prompt,
    Aborted,
    Settings,
    TaskFailed,
    Io,
    Interrupted,
    Usage,
    Stopped,
}

impl From<ErrorKind> for Kind {
    fn from(kind: ErrorKind) -> Kind {
        match kind {
            ErrorKind::CommandFailed => Kind::CommandFailed,
            ErrorKind::Timeout => Kind::Timeout,
            ErrorKind::Connect => Kind::Connect,
            ErrorKind::Auth => Kind::Auth,
            ErrorKind::KeyFile => Kind::KeyFile,
            ErrorKind::HostKey => Kind::HostKey,
            ErrorKind::Disconnected => Kind::Disconnected,
            ErrorKind::Transfer => Kind::Transfer,
            ErrorKind::Prompt => Kind::Prompt,
            ErrorKind::Aborted => Kind::Aborted,
            ErrorKind::Settings => Kind::Settings,
            ErrorKind::TaskFailed => Kind::TaskFailed,
            ErrorKind::Io => Kind::Io,
            ErrorKind::Interrupted => Kind::Interrupted,
            ErrorKind::Usage => Kind::Usage,
            ErrorKind::Stopped => Kind::Stopped,
        }
    }
}

impl From<Kind> for ErrorKind {
    fn from(kind: Kind) -> ErrorKind {
        match kind {
            Kind::CommandFailed => ErrorKind::CommandFailed,
            Kind::Timeout => ErrorKind::Timeout,
            Kind::Connect => ErrorKind::Connect,
            Kind::Auth => ErrorKind::Auth,
            Kind::KeyFile => ErrorKind::KeyFile,
            Kind::HostKey => ErrorKind::HostKey,
            Kind::Disconnected => ErrorKind::Disconnected,
            Kind::Transfer => ErrorKind::Transfer,
            Kind::Prompt => ErrorKind::Prompt,
            Kind::Aborted => ErrorKind::Aborted,
            Kind::Settings => ErrorKind::Settings,
            Kind::TaskFailed => ErrorKind::TaskFailed,
            Kind::Io => ErrorKind::Io,
            Kind::Interrupted => ErrorKind::Interrupted,
            Kind::Usage => ErrorKind::Usage,
            Kind::Stopped => ErrorKind::Stopped,
        }
    }
}

//! The loggers twill brings besides the journal.

use std::io::Write;

use super::{Event, EventKind, Logger, Stream};

/// Each event as one line of JSON, to any writer: the journal's format,
/// for logs that go elsewhere. Like the journal, it keeps no transient
/// event ([`EventKind::is_transient`]).
///
/// ```
/// use twill::events::{self, JsonLines};
///
/// let id = events::add_logger(JsonLines::new(std::io::stderr()));
/// // ... a run ...
/// events::remove_logger(id);
/// ```
#[derive(Debug)]
pub struct JsonLines<W: Write + Send> {
    to: W,
    line: Vec<u8>,
}

impl<W: Write + Send> JsonLines<W> {
    /// Writes to `to`.
    pub fn new(to: W) -> JsonLines<W> {
        JsonLines {
            to,
            line: Vec::new(),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.to
    }
}

impl<W: Write + Send> Logger for JsonLines<W> {
    fn log(&mut self, event: &Event) {
        if event.kind.is_transient() {
            return;
        }
        self.line.clear();
        if serde_json::to_writer(&mut self.line, event).is_ok() {
            self.line.push(b'\n');
            let _ = self.to.write_all(&self.line);
            let _ = self.to.flush();
        }
    }
}

/// Fabric's lines, as twill printed them: the text of each
/// [`EventKind::Output`] event, standard output's to one writer and
/// standard error's to another. Fed a journal's events, it replays the
/// run's output (`twill log show`).
///
/// ```
/// use twill::events::{self, FabricLines};
///
/// // The lines again, on standard error only.
/// let id = events::add_logger(FabricLines::new(std::io::stderr(), std::io::stderr()));
/// events::remove_logger(id);
/// ```
#[derive(Debug)]
pub struct FabricLines<O: Write + Send, E: Write + Send> {
    out: O,
    err: E,
}

impl<O: Write + Send, E: Write + Send> FabricLines<O, E> {
    /// Standard output's lines to `out`, standard error's to `err`.
    pub fn new(out: O, err: E) -> Self {
        FabricLines { out, err }
    }

    /// The writers back.
    pub fn into_inner(self) -> (O, E) {
        (self.out, self.err)
    }
}

impl<O: Write + Send, E: Write + Send> Logger for FabricLines<O, E> {
    fn log(&mut self, event: &Event) {
        if let EventKind::Output { stream, text } = &event.kind {
            let _ = match stream {
                Stream::Out => self.out.write_all(text.as_bytes()),
                Stream::Err => self.err.write_all(text.as_bytes()),
            };
        }
    }
}

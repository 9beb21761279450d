//! A generated configuration file against the one on the host: what would
//! change, as a unified diff, whether anything would, and putting it in
//! place with a dated copy of the old one kept beside it.
//!
//! ```no_run
//! use twill::contrib::config::Config;
//!
//! # fn main() -> twill::Result<()> {
//! let workers = 4;
//! let nginx = Config::new(
//!     "/etc/nginx/conf.d/app.conf",
//!     format!("upstream app {{\n    server 127.0.0.1:8000 max_fails={workers};\n}}\n"),
//! );
//! nginx.diff()?; // prints `[web1] diff: ...` and the coloured diff
//! if nginx.setup()? {
//!     twill::sudo("systemctl reload nginx")?;
//! }
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use similar::TextDiff;

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::events;
use crate::operations::options::RunOptions;
use crate::operations::remote::{remote_file_exists_with, run_or_sudo};
use crate::operations::session::current_host;
use crate::operations::transfer::{
    download_data, download_with, upload_data, DownloadOptions, UploadOptions,
};
use crate::output;
use crate::state::env;

/// A configuration file twill generates: where it goes on the current
/// host, and what it should hold.
#[derive(Debug, Clone)]
pub struct Config {
    path: String,
    content: String,
    use_sudo: bool,
    mode: Option<u32>,
    backup: bool,
}

impl Config {
    /// The file at `path` on the current host should hold `content`. It is
    /// read and written through sudo (a configuration file is usually
    /// root's), and the old one is kept as `<path>.<date>--<time>` when it
    /// changes.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Config {
        Config {
            path: path.into(),
            content: content.into(),
            use_sudo: true,
            mode: None,
            backup: true,
        }
    }

    /// Read and write as the login user instead of through sudo (`false`).
    pub fn use_sudo(mut self, yes: bool) -> Config {
        self.use_sudo = yes;
        self
    }

    /// The mode the file gets when written (default: a new file gets the
    /// umask's, an existing one keeps its own).
    pub fn mode(mut self, mode: u32) -> Config {
        self.mode = Some(mode);
        self
    }

    /// Keep a dated copy of the old file when [`setup`](Config::setup)
    /// replaces it (default true).
    pub fn backup(mut self, yes: bool) -> Config {
        self.backup = yes;
        self
    }

    /// What the file should hold.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// What the file on the host holds now; `None` when there is none.
    pub fn current(&self) -> Result<Option<String>> {
        let _helper = events::helper("config");
        if !remote_file_exists_with(&self.path, self.use_sudo)? {
            return Ok(None);
        }
        let bytes = if self.use_sudo {
            let dir = tempfile::tempdir()
                .map_err(|e| Error::io(format_args!("config: no local temporary directory"), e))?;
            let local = dir.path().join("current");
            download_with(&self.path, &local, &DownloadOptions::new().use_sudo(true))?;
            read_local(&local)?
        } else {
            download_data(&self.path)?
        };
        String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::new(
                ErrorKind::Transfer,
                format!("config: '{}' on the host is not UTF-8 text", self.path),
            )
        })
    }

    /// The unified diff from the file on the host (empty when there is
    /// none) to what it should hold; empty when nothing would change. It
    /// is printed, after a `[host] diff: <path>` line, with removed lines
    /// red and added ones green on a terminal, unless the `stdout` output
    /// group is hidden.
    pub fn diff(&self) -> Result<String> {
        let env = env();
        let host = current_host(&env, "diff")?.name;
        let current = self.current()?.unwrap_or_default();
        let text = unified(&current, &self.content, &self.path);
        output::diff(&env, &host, &self.path, &text);
        Ok(text)
    }

    /// Whether [`setup`](Config::setup) would write: the file is missing or
    /// holds something else.
    pub fn changed(&self) -> Result<bool> {
        Ok(self.current()?.as_deref() != Some(self.content.as_str()))
    }

    /// Puts the file in place if it [changed](Config::changed), keeping the
    /// old one as `<path>.<date>--<time>` (with its owner, mode and times)
    /// unless [`backup`](Config::backup) is off; returns whether it wrote.
    /// The new file is written atomically, as every upload is.
    pub fn setup(&self) -> Result<bool> {
        let _helper = events::helper("config");
        let current = self.current()?;
        if current.as_deref() == Some(self.content.as_str()) {
            return Ok(false);
        }
        if current.is_some() && self.backup {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            // 2026-12-02T14:03:05Z -> 2026-12-02--14-03-05
            let stamp = stamp
                .trim_end_matches('Z')
                .replace('T', "--")
                .replace(':', "-");
            run_or_sudo(
                &command::backup_dated(&self.path, &stamp),
                &RunOptions::new(),
                self.use_sudo,
            )?;
        }
        let mut opts = UploadOptions::new().use_sudo(self.use_sudo);
        if let Some(mode) = self.mode {
            opts = opts.mode(mode);
        }
        upload_data(self.content.as_bytes(), &self.path, &opts)?;
        Ok(true)
    }
}

/// A unified diff of two texts, with `path` in its header.
fn unified(old: &str, new: &str, path: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (on the host)"), &format!("{path} (new)"))
        .to_string()
}

fn read_local(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::io(
            format_args!("config: cannot read the downloaded copy {}", path.display()),
            e,
        )
    })
}

//! The `twill` command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "twill {}: the command line is not available yet; use the library.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

//! twill's local test suite: everything that needs no SSH server.

#[cfg(feature = "cli")]
mod cli;
mod commands;
mod dry_run;
mod events;
mod execute;
mod local;
#[cfg(feature = "cli")]
mod marks;
mod output;
mod porting;
mod prompt;
mod state;
mod tidy;
#[cfg(feature = "cli")]
mod tree;
mod utils;
// Without the command line, some helpers serve no test.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
mod support;

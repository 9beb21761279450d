//! twill's local test suite: everything that needs no network.

mod commands;
mod execute;
mod local;
mod output;
mod prompt;
mod state;
mod support;

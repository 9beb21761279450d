//! twill's local test suite: everything that needs no network.

mod cli;
mod commands;
mod execute;
mod local;
mod output;
mod prompt;
mod state;
mod support;

//! twill's remote tests, against the throwaway OpenSSH server that
//! `tests-remote/sshd-server.sh start` runs on loopback. `project_tests.sh`
//! starts it, exports its `TWILL_TEST_*` variables and runs these.

mod blog;
mod cli;
mod config;
mod connect;
mod contrib_files;
mod dry_run;
mod execute;
mod hostkey;
mod journal;
mod live;
mod pipe;
mod progress;
mod project;
mod reboot;
mod run;
mod scp;
mod security;
mod shell;
mod stall;
mod sudo;
mod support;
mod targets;
mod terminal;
mod transfer;

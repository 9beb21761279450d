//! `reboot`: restart the current host and wait until it is back.

use std::time::{Duration, Instant};

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::operations::dry_run;
use crate::operations::options::RunOptions;
use crate::operations::remote::run_or_sudo;
use crate::operations::session::{current_host, reconnection};
use crate::state::{env, settings, Settings};

/// Fabric's pause after the reboot command, so that the reconnection does
/// not slip in before the host has started going down; also its connect
/// timeout per attempt, and its wait after a refused attempt.
const STEP: Duration = Duration::from_secs(5);

/// Options of [`reboot_with`] (Fabric's `reboot` keywords).
///
/// ```
/// use twill::RebootOptions;
///
/// let opts = RebootOptions::new().command("shutdown -r now").use_sudo(false);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct RebootOptions {
    command: String,
    use_sudo: bool,
}

impl Default for RebootOptions {
    fn default() -> RebootOptions {
        RebootOptions {
            command: command::REBOOT.to_string(),
            use_sudo: true,
        }
    }
}

impl RebootOptions {
    /// Fabric's defaults: `reboot`, through sudo.
    pub fn new() -> RebootOptions {
        RebootOptions::default()
    }

    /// The command that restarts the host (default `reboot`).
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }

    /// Run the command with [`sudo`](crate::sudo) (the default) or, with `false`, with
    /// [`run`](crate::run).
    pub fn use_sudo(mut self, yes: bool) -> Self {
        self.use_sudo = yes;
        self
    }
}

/// Reboots the current host and waits up to `wait` for it to come back
/// (Fabric's `reboot(wait)`); see [`reboot_with`].
pub fn reboot(wait: Duration) -> Result<()> {
    reboot_with(wait, &RebootOptions::new())
}

/// Restarts the current host with the command of `opts` and reconnects,
/// giving the host up to `wait` to come back, as Fabric's `reboot` does.
///
/// With the `running` group hidden, the command runs through [`sudo`](crate::sudo) (or
/// [`run`](crate::run)); a connection lost while it runs is what a reboot does, not
/// an error. After a pause of 5 seconds the cached connection is closed
/// and a new one opened, trying `wait / 5` times (rounded, at least once),
/// 5 seconds per attempt: an attempt that times out is followed by the
/// next at once, a refused or cut-off one by a 5-second pause, so that the
/// attempts cover the whole wait. The next operation then uses the new
/// connection.
///
/// A command that fails otherwise fails as [`sudo`](crate::sudo) or [`run`](crate::run) does. A
/// host that is not back in time is an error naming the host, the command,
/// the attempts and the last attempt's cause (kind [`ErrorKind::Connect`]
/// or [`ErrorKind::Timeout`]); one that refuses the credentials or shows
/// another host key fails at once, as any connection does. Ctrl-C ends
/// the wait at once.
///
/// ```no_run
/// use std::time::Duration;
/// use twill::{reboot_with, run, with_settings, RebootOptions, Settings};
///
/// with_settings(Settings::new().host_string("root@db1"), || {
///     reboot_with(Duration::from_secs(180), &RebootOptions::new().use_sudo(false))?;
///     run("uptime")
/// })?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn reboot_with(wait: Duration, opts: &RebootOptions) -> Result<()> {
    interrupt::install();
    let command = opts.command.as_str();
    let attempts = ((wait.as_secs_f64() / STEP.as_secs_f64()).round() as u32).max(1);
    let _scope = settings(
        Settings::new()
            .hide("running")
            .timeout(STEP)
            .connection_attempts(1),
    );
    let env = env();
    let host = current_host(&env, "reboot")?;
    let ran = run_or_sudo(command, &RunOptions::new(), opts.use_sudo);
    if env.dry_run() {
        dry_run::reboot(&host.name, wait);
        return ran.map(|_| ());
    }
    match ran {
        Err(e) if !went_down(&e) => return Err(e),
        _ => {}
    }
    let waiting = |d: Duration| pause(d, &host.name, command);
    waiting(STEP)?;
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let e = match reconnection(&env, &host) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let retry = matches!(
            e.kind(),
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Disconnected
        );
        if !retry {
            return Err(e.with_command(command));
        }
        if attempt >= attempts {
            let tries = if attempts == 1 {
                "1 attempt".to_string()
            } else {
                format!("{attempts} attempts")
            };
            let cause = e.message().trim_end_matches(" (tried 1 time)").to_string();
            return Err(Error::new(
                e.kind(),
                format!(
                    "reboot() of {} after '{command}': the host did not come back ({tries} in {} seconds); the last one failed: {cause}",
                    host.name,
                    (STEP + started.elapsed()).as_secs(),
                ),
            )
            .with_host(&host.name)
            .with_command(command)
            .with_source(e));
        }
        if e.kind() != ErrorKind::Timeout {
            waiting(STEP)?;
        }
        attempt += 1;
    }
}

/// Whether a failure of the reboot command is the host going down: the
/// connection lost, or the command ended without an exit status.
fn went_down(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Disconnected => true,
        ErrorKind::CommandFailed => e.exit_code() == Some(-1),
        _ => false,
    }
}

/// Waits `d`, or until Ctrl-C interrupts the running `execute`.
fn pause(d: Duration, host: &str, command: &str) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        if interrupt::interrupted() {
            return Err(Error::new(
                ErrorKind::Interrupted,
                format!("reboot() of {host} interrupted (Ctrl-C) while waiting for the host after '{command}'"),
            )
            .with_host(host)
            .with_command(command));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

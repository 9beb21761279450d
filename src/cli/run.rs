//! Parsing the command line and running what it asks.

use std::time::Duration;

use clap::Parser;

use super::args::{parse_set, parse_task_call, usage, TaskCall};
use super::{Task, TaskArgs, Tasks};
use crate::error::{ErrorKind, Result};
use crate::execute::Execute;
use crate::output;
use crate::state::{with_settings, Settings};

/// Fabric's options (`fab --help`), under the same names.
#[derive(Debug, Parser)]
#[command(
    about = "Run tasks on many hosts over SSH, the Fabric way",
    disable_version_flag = true,
    after_help = "Tasks are given as NAME or NAME:arg1,arg2,key=value (escape commas and equals signs with \\).\nEverything after -- is run as a shell command on every host."
)]
struct Options {
    /// Print the list of tasks and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Print the full documentation of a task and exit.
    #[arg(short = 'd', long = "display", value_name = "TASK")]
    display: Option<String>,
    /// Comma-separated hosts to run on.
    #[arg(short = 'H', long = "hosts", value_name = "HOSTS")]
    hosts: Option<String>,
    /// Comma-separated roles to run on.
    #[arg(short = 'R', long = "roles", value_name = "ROLES")]
    roles: Option<String>,
    /// Comma-separated hosts to leave out.
    #[arg(short = 'x', long = "exclude-hosts", value_name = "HOSTS")]
    exclude_hosts: Option<String>,
    /// Run every task in parallel (unless marked serial).
    #[arg(short = 'P', long = "parallel")]
    parallel: bool,
    /// Number of parallel workers at a time.
    #[arg(short = 'z', long = "pool-size", value_name = "N")]
    pool_size: Option<usize>,
    /// Username to log in as.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Password for login and sudo.
    #[arg(short = 'p', long = "password")]
    password: Option<String>,
    /// Password for sudo only.
    #[arg(long = "sudo-password")]
    sudo_password: Option<String>,
    /// Private key file (repeatable).
    #[arg(short = 'i', value_name = "PATH")]
    key_filename: Vec<String>,
    /// Default SSH port.
    #[arg(long = "port")]
    port: Option<u16>,
    /// Failing commands only warn.
    #[arg(short = 'w', long = "warn-only")]
    warn_only: bool,
    /// Settings as key=value,key2=value2 (key alone means true).
    #[arg(long = "set", value_name = "KEY=VALUE,...")]
    set: Vec<String>,
    /// Hosts that cannot be reached are skipped instead of aborting.
    #[arg(long = "skip-bad-hosts")]
    skip_bad_hosts: bool,
    /// Connect timeout in seconds.
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Command timeout in seconds.
    #[arg(short = 'T', long = "command-timeout", value_name = "SECONDS")]
    command_timeout: Option<f64>,
    /// Connection attempts.
    #[arg(short = 'n', long = "connection-attempts", value_name = "N")]
    connection_attempts: Option<u32>,
    /// Every prompt is an error.
    #[arg(long = "abort-on-prompts")]
    abort_on_prompts: bool,
    /// Print output line by line.
    #[arg(long = "linewise")]
    linewise: bool,
    /// Do not request a pty for remote commands.
    #[arg(long = "no-pty")]
    no_pty: bool,
    /// Output groups to show (comma-separated).
    #[arg(long = "show", value_name = "GROUPS")]
    show: Option<String>,
    /// Output groups to hide (comma-separated).
    #[arg(long = "hide", value_name = "GROUPS")]
    hide: Option<String>,
    /// Jump host for every connection.
    #[arg(short = 'g', long = "gateway", value_name = "HOST")]
    gateway: Option<String>,
    /// Do not use the ssh-agent.
    #[arg(short = 'a', long = "no-agent")]
    no_agent: bool,
    /// Do not look for keys in ~/.ssh.
    #[arg(short = 'k', long = "no-keys")]
    no_keys: bool,
    /// Accept (and record) host keys not yet in known_hosts.
    #[arg(long = "accept-new-host-keys")]
    accept_new_host_keys: bool,
    /// The ssh_config file to read.
    #[arg(long = "ssh-config-path", value_name = "PATH")]
    ssh_config_path: Option<String>,
    /// Close connections after each host.
    #[arg(short = 'e', long = "eagerly-disconnect")]
    eagerly_disconnect: bool,
    /// With `-- command`: run it with sudo.
    #[arg(long = "sudo")]
    sudo: bool,
    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Tasks to run, in order: NAME or NAME:args.
    #[arg(value_name = "TASK")]
    tasks: Vec<String>,
    /// A shell command to run on every host.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| usage(format!("{what} must be a number of seconds, not {s}")))
}

impl Options {
    /// The settings the options give, for the whole run.
    fn settings(&self) -> Result<Settings> {
        let mut s = Settings::new();
        for spec in &self.set {
            for (k, v) in parse_set(spec) {
                s = s
                    .set_str(&k, &v)
                    .map_err(|e| usage(e.message().to_string()))?;
            }
        }
        for (key, list) in [
            ("hosts", &self.hosts),
            ("roles", &self.roles),
            ("exclude_hosts", &self.exclude_hosts),
        ] {
            if let Some(list) = list {
                s = s
                    .set_str(key, list)
                    .map_err(|e| usage(e.message().to_string()))?;
            }
        }
        if self.parallel {
            s = s.parallel(true);
        }
        if let Some(n) = self.pool_size {
            s = s.pool_size(n);
        }
        if let Some(u) = &self.user {
            s = s.user(u.clone());
        }
        if let Some(p) = &self.password {
            s = s.password(p.clone());
        }
        if let Some(p) = &self.sudo_password {
            s = s.sudo_password(p.clone());
        }
        if !self.key_filename.is_empty() {
            s = s.key_filename(self.key_filename.clone());
        }
        if let Some(p) = self.port {
            s = s.port(p);
        }
        if let Some(t) = self.timeout {
            s = s.timeout(seconds(t, "--timeout")?);
        }
        if let Some(t) = self.command_timeout {
            s = s.command_timeout(seconds(t, "--command-timeout")?);
        }
        if let Some(n) = self.connection_attempts {
            s = s.connection_attempts(n);
        }
        if let Some(g) = &self.gateway {
            s = s.gateway(g.clone());
        }
        if let Some(p) = &self.ssh_config_path {
            s = s.ssh_config_path(p.clone());
        }
        for (on, apply) in [
            (
                self.warn_only,
                Settings::warn_only as fn(Settings, bool) -> Settings,
            ),
            (self.skip_bad_hosts, Settings::skip_bad_hosts),
            (self.abort_on_prompts, Settings::abort_on_prompts),
            (self.linewise, Settings::linewise),
            (self.no_agent, Settings::no_agent),
            (self.no_keys, Settings::no_keys),
            (self.accept_new_host_keys, Settings::accept_new_host_keys),
            (self.eagerly_disconnect, Settings::eagerly_disconnect),
        ] {
            if on {
                s = apply(s, true);
            }
        }
        if self.no_pty {
            s = s.always_use_pty(false);
        }
        for (groups, show) in [(&self.hide, false), (&self.show, true)] {
            if let Some(g) = groups {
                crate::output::Group::parse_list(g).map_err(usage)?;
                s = if show { s.show(g) } else { s.hide(g) };
            }
        }
        Ok(s)
    }
}

pub(super) fn main<I, T>(tasks: &Tasks, argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
    let program = tasks.name.clone().unwrap_or_else(|| {
        argv.first()
            .and_then(|a| {
                std::path::Path::new(a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "twill".into())
    });
    let options = match Options::try_parse_from(&argv) {
        Ok(o) => o,
        Err(e) => {
            use clap::error::ErrorKind as K;
            return match e.kind() {
                K::DisplayHelp | K::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                _ => {
                    let first = e
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or("")
                        .trim_start_matches("error: ")
                        .to_string();
                    usage_exit(&program, &first)
                }
            };
        }
    };
    if options.version {
        println!("{program} (twill {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if options.list {
        print!("{}", list(tasks));
        return 0;
    }
    if let Some(name) = &options.display {
        return match tasks.find(name) {
            Some(t) => {
                print!("{}", display(name, t));
                0
            }
            None => usage_exit(&program, &format!("task '{name}' not found")),
        };
    }
    let run_settings = match options.settings() {
        Ok(s) => s,
        Err(e) => return usage_exit(&program, e.message()),
    };
    let mut calls: Vec<(TaskCall, Task)> = Vec::new();
    for spec in &options.tasks {
        let call = parse_task_call(spec);
        match tasks.find(&call.name) {
            Some(t) => calls.push((call, t.clone())),
            None => return usage_exit(&program, &format!("task '{}' not found", call.name)),
        }
    }
    if !options.command.is_empty() {
        let command = options.command.join(" ");
        let sudo = options.sudo;
        calls.push((
            TaskCall {
                name: "<remainder>".into(),
                args: TaskArgs::default(),
            },
            Task::new("<remainder>", "", move |_| {
                if sudo {
                    crate::sudo(&command)?;
                } else {
                    crate::run(&command)?;
                }
                Ok(())
            }),
        ));
    }
    if calls.is_empty() {
        return usage_exit(
            &program,
            "no task given (use -l to list tasks, or -- COMMAND to run one)",
        );
    }
    // Argument errors are found before anything runs.
    for (call, task) in &calls {
        if let Err(e) = task.check_args(&call.name, &call.args.clone().without_host_keys()) {
            return usage_exit(&program, e.message());
        }
    }
    // The run's settings are a scope of their own, so that `set_env` in one
    // task reaches the tasks after it, and nothing outlives the run.
    let outcome = with_settings(run_settings, || {
        calls
            .iter()
            .try_for_each(|(call, task)| run_task(call, task))
    });
    let code = match outcome {
        Ok(()) => {
            output::status("\nDone.");
            0
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => {
            output::emit(output::Pipe::Err, "\nStopped.\n");
            130
        }
        Err(e) if e.kind() == ErrorKind::Usage => usage_exit(&program, e.message()),
        Err(e) => {
            e.report();
            1
        }
    };
    crate::disconnect_all();
    code
}

fn usage_exit(program: &str, msg: &str) -> u8 {
    output::emit(
        output::Pipe::Err,
        &format!(
            "{program}: {msg}\nTry '{program} --help' or '{program} -l' for more information.\n"
        ),
    );
    2
}

/// The arguments of a task call that choose its hosts, not its parameters.
const HOST_KEYS: [&str; 5] = ["host", "hosts", "role", "roles", "exclude_hosts"];

impl TaskArgs {
    fn without_host_keys(mut self) -> TaskArgs {
        for key in HOST_KEYS {
            self.take(key);
        }
        self
    }
}

/// Takes Fabric's `plural='a;b'` (or `singular=a`) from a task call; the
/// plural wins when both are given.
fn take_list(args: &mut TaskArgs, plural: &str, singular: &str) -> Vec<String> {
    let split = |v: Option<String>| -> Vec<String> {
        v.map(|s| {
            s.split(';')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
    };
    let many = split(args.take(plural));
    let one = split(args.take(singular));
    if many.is_empty() {
        one
    } else {
        many
    }
}

/// Runs one task call with Fabric's host-list precedence: the call's own
/// `host=`/`hosts=`/`role=`/`roles=`, else the task's marks, else the run's
/// `hosts`/`roles` settings.
fn run_task(call: &TaskCall, task: &Task) -> Result<()> {
    let mut args = call.args.clone();
    let mut hosts = take_list(&mut args, "hosts", "host");
    let mut roles = take_list(&mut args, "roles", "role");
    let exclude = take_list(&mut args, "exclude_hosts", "exclude_hosts");
    if hosts.is_empty() && roles.is_empty() {
        hosts = task.hosts.clone();
        roles = task.roles.clone();
    }
    let env = crate::state::env();
    let mut exec = Execute::new(call.name.clone())
        .hosts(hosts)
        .roles(roles)
        .exclude_hosts(exclude);
    let parallel = task.parallel || (env.parallel() && !task.serial && !task.runs_once);
    exec = exec.parallel(parallel);
    if let Some(n) = task.pool_size {
        exec = exec.pool_size(n);
    }
    if task.runs_once {
        let first: Vec<String> = exec.host_list()?.into_iter().take(1).collect();
        exec = Execute::new(call.name.clone()).hosts(first).parallel(false);
    }
    exec.run(|| task.call(&args)).map(|_| ())
}

/// Fabric's `fab -l`.
fn list(tasks: &Tasks) -> String {
    let all = tasks.all();
    let mut out = String::from("Available commands:\n\n");
    let width = all.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, task) in all {
        let first = task.doc.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            out.push_str(&format!("    {name}\n"));
        } else {
            out.push_str(&format!("    {name:<width$}  {first}\n"));
        }
    }
    out
}

/// Fabric's `fab -d task`.
fn display(name: &str, task: &Task) -> String {
    let mut out = format!("Displaying detailed information for task '{name}':\n\n");
    if task.doc.is_empty() {
        out.push_str("    No docstring provided\n");
    } else {
        for line in task.doc.lines() {
            out.push_str(&format!("    {line}\n").replace("    \n", "\n"));
        }
    }
    out.push_str(&format!("\n    Arguments: {}\n\n", task.signature()));
    out
}

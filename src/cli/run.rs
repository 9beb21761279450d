//! Parsing the command line and running what it asks.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::args::{parse_set, parse_task_call, usage, TaskCall};
use super::argv::{self, Span};
use super::{log, Task, TaskArgs, Tasks};
use crate::error::{ErrorKind, Result};
use crate::events::{self, journal, journal::Run, Outcome, RunInfo};
use crate::execute::{Execute, HostResults};
use crate::operations::options::RunOptions;
use crate::operations::prompt::ask_password;
use crate::operations::{dry_run, remote, session};
use crate::output;
use crate::ssh::Target;
use crate::state::{env, with_settings, Env, Settings};

/// The environment variable with the login (and sudo) password.
const PASSWORD_VAR: &str = "TWILL_PASSWORD";
/// The environment variable with the sudo password.
const SUDO_PASSWORD_VAR: &str = "TWILL_SUDO_PASSWORD";

/// Fabric's options (`fab --help`), under the same names.
#[derive(Debug, Parser)]
#[command(
    about = "Run tasks on many hosts over SSH, the Fabric way",
    disable_version_flag = true,
    after_help = "Tasks are given as NAME or NAME:arg1,arg2,key=value (escape commas and equals signs with \\).\nEverything after -- is run as a shell command on every host.\n\nPasswords are best given in the environment, TWILL_PASSWORD (login and sudo) and\nTWILL_SUDO_PASSWORD (sudo only), or in a file: a password on the command line\nis visible to other local users. An option given on the command line beats\nthe environment."
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
    /// Password for login and sudo (visible to other local users: prefer
    /// TWILL_PASSWORD or --password-file).
    #[arg(short = 'p', long = "password")]
    password: Option<String>,
    /// Read the password for login and sudo from the first line of PATH.
    #[arg(
        long = "password-file",
        value_name = "PATH",
        conflicts_with = "password"
    )]
    password_file: Option<PathBuf>,
    /// Password for sudo only (visible to other local users: prefer
    /// TWILL_SUDO_PASSWORD or --sudo-password-file).
    #[arg(long = "sudo-password", value_name = "PASSWORD")]
    sudo_password: Option<String>,
    /// Read the password for sudo only from the first line of PATH.
    #[arg(
        long = "sudo-password-file",
        value_name = "PATH",
        conflicts_with = "sudo_password"
    )]
    sudo_password_file: Option<PathBuf>,
    /// Ask for the password for login and sudo (hidden) before anything
    /// runs.
    #[arg(short = 'I', long = "initial-password-prompt")]
    initial_password_prompt: bool,
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
    /// Send a keepalive every SECONDS on each connection (0 turns them off).
    #[arg(long = "keepalive", value_name = "SECONDS")]
    keepalive: Option<f64>,
    /// Every prompt is an error.
    #[arg(long = "abort-on-prompts")]
    abort_on_prompts: bool,
    /// Questions take their default without asking; one without a
    /// default is an error.
    #[arg(long = "non-interactive")]
    non_interactive: bool,
    /// Fabric's lines, even for a parallel run at a terminal (whose
    /// output otherwise shows as the live per-host view).
    #[arg(long = "linewise", conflicts_with = "live")]
    linewise: bool,
    /// The live per-host view for a parallel run (by default when
    /// standard input and output are a terminal).
    #[arg(long = "live")]
    live: bool,
    /// Inside tmux: a pane per running host of a parallel run, streaming
    /// its output; its keys reach the host's remote program.
    #[arg(long = "panes")]
    panes: bool,
    /// With --panes: a finished host's pane stays open with its outcome.
    #[arg(long = "keep-panes", requires = "panes")]
    keep_panes: bool,
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
    /// Print what would be done, the real commands and transfers, without
    /// connecting or running anything: every command is taken to succeed
    /// with no output, so branches on output or remote state are not shown.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// With `-- command`: run it with sudo.
    #[arg(long = "sudo")]
    sudo: bool,
    /// With `-- command`: give it a real terminal, as `ssh -t` does (raw
    /// keys, Ctrl-C included, raw output), for an editor or a pager.
    #[arg(long = "tty")]
    tty: bool,
    /// Write no journal of this run.
    #[arg(long = "no-journal")]
    no_journal: bool,
    /// Where journals are written (default: $XDG_STATE_HOME/twill/runs,
    /// else ~/.local/state/twill/runs).
    #[arg(long = "journal-dir", value_name = "DIR")]
    journal_dir: Option<String>,
    /// Run the tasks of an earlier run again, with its options, on its
    /// hosts that failed, were interrupted or were never reached (RUN:
    /// an id, last or last~N; default: this program's last run).
    #[arg(long = "retry-failed", value_name = "RUN", num_args = 0..=1, default_missing_value = "")]
    retry_failed: Option<String>,
    /// The journal's runs: list them, or `show RUN`, or `diff RUN RUN`
    /// (`--log --help` says more). It takes every word after it.
    #[arg(
        long = "log",
        value_name = "COMMAND",
        num_args = 0..,
        allow_hyphen_values = true
    )]
    _log: Vec<String>,
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

/// The first line of the password file `path` given with `flag`, without
/// its line ending.
fn first_line(path: &Path, flag: &str) -> Result<String> {
    let fail = |why: String| {
        usage(format!(
            "cannot read the password file '{}' given with {flag}: {why}",
            path.display()
        ))
    };
    let io = |e: std::io::Error| {
        let text = e.to_string();
        fail(match text.find(" (os error") {
            Some(i) => text[..i].to_string(),
            None => text,
        })
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut line = Vec::new();
    // A first line longer than any password is not read to its end.
    BufReader::new(file.take(64 * 1024))
        .read_until(b'\n', &mut line)
        .map_err(io)?;
    if line.is_empty() {
        return Err(fail("it is empty".into()));
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    String::from_utf8(line).map_err(|_| fail("its first line is not UTF-8 text".into()))
}

/// The value of the environment variable `name`, if set and not empty.
fn from_environment(name: &str) -> Result<Option<String>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| usage(format!("{name} is not valid UTF-8"))),
    }
}

/// Checks the port of every host string in `list` (split at `sep`); the
/// usage error names `source`, where the list was given.
fn check_ports(source: &str, list: &str, sep: Option<char>) -> Result<()> {
    let hosts: Vec<&str> = match sep {
        Some(sep) => list.split(sep).collect(),
        None => vec![list],
    };
    for host in hosts.into_iter().map(str::trim).filter(|h| !h.is_empty()) {
        if let Err(e) = Target::try_parse(host) {
            let mut message = e.message;
            if let Some(first) = message.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            return Err(usage(format!("{source}: {message}")));
        }
    }
    Ok(())
}

impl Options {
    /// Checks the host strings given by options before anything runs: a
    /// port out of range is a usage error, not a failed name lookup.
    fn check_hosts(&self) -> Result<()> {
        for spec in &self.set {
            for (k, v) in parse_set(spec) {
                match k.as_str() {
                    "hosts" | "exclude_hosts" => check_ports(&format!("--set {k}"), &v, Some(','))?,
                    "host_string" | "gateway" => check_ports(&format!("--set {k}"), &v, None)?,
                    _ => {}
                }
            }
        }
        for (flag, list, sep) in [
            ("-H", &self.hosts, Some(',')),
            ("-x", &self.exclude_hosts, Some(',')),
            ("-g", &self.gateway, None),
        ] {
            if let Some(list) = list {
                check_ports(flag, list, sep)?;
            }
        }
        Ok(())
    }

    /// Where the secrets given on the command line are in `argv`, which
    /// this parsed: the values of `-p` and `--sudo-password`, and of the
    /// secret keys of `--set`.
    fn secret_spans(argv: &[OsString]) -> Vec<Span> {
        argv::secrets(&Options::command(), argv)
            .into_iter()
            .flat_map(|secret| match secret.keys {
                None => vec![secret.value.span(0..secret.value.value.len())],
                Some(keys) => keys
                    .into_iter()
                    .map(|(_, r)| secret.value.span(r))
                    .collect(),
            })
            .collect()
    }

    /// Warnings for passwords given where other local users can read them.
    fn password_warnings(&self) -> Vec<String> {
        let set_keys: Vec<String> = self
            .set
            .iter()
            .flat_map(|spec| parse_set(spec))
            .map(|(k, _)| k)
            .collect();
        let mut out = Vec::new();
        for (given, what, var, file) in [
            (
                self.password.is_some(),
                "-p/--password",
                PASSWORD_VAR,
                "--password-file",
            ),
            (
                set_keys.iter().any(|k| k == "password"),
                "--set password=",
                PASSWORD_VAR,
                "--password-file",
            ),
            (
                self.sudo_password.is_some(),
                "--sudo-password",
                SUDO_PASSWORD_VAR,
                "--sudo-password-file",
            ),
            (
                set_keys.iter().any(|k| k == "sudo_password"),
                "--set sudo_password=",
                SUDO_PASSWORD_VAR,
                "--sudo-password-file",
            ),
        ] {
            if given {
                out.push(format!(
                    "a password given with {what} is visible to other local users; use the {var} environment variable or {file} instead"
                ));
            }
        }
        out
    }

    /// The settings the options give, for the whole run.
    fn settings(&self) -> Result<Settings> {
        let mut s = Settings::new();
        // The environment first: every option given below beats it.
        if let Some(p) = from_environment(PASSWORD_VAR)? {
            s = s.password(p);
        }
        if let Some(p) = from_environment(SUDO_PASSWORD_VAR)? {
            s = s.sudo_password(p);
        }
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
        if let Some(path) = &self.password_file {
            s = s.password(first_line(path, "--password-file")?);
        }
        if let Some(p) = &self.sudo_password {
            s = s.sudo_password(p.clone());
        }
        if let Some(path) = &self.sudo_password_file {
            s = s.sudo_password(first_line(path, "--sudo-password-file")?);
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
        if let Some(k) = self.keepalive {
            s = s.keepalive(seconds(k, "--keepalive")?);
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
            (self.non_interactive, Settings::non_interactive),
            (self.no_agent, Settings::no_agent),
            (self.no_keys, Settings::no_keys),
            (self.accept_new_host_keys, Settings::accept_new_host_keys),
            (self.eagerly_disconnect, Settings::eagerly_disconnect),
            (self.dry_run, Settings::dry_run),
        ] {
            if on {
                s = apply(s, true);
            }
        }
        if self.no_pty {
            s = s.always_use_pty(false);
        }
        if self.panes {
            s = s.panes(true).keep_panes(self.keep_panes);
        }
        if self.linewise {
            s = s.live(false);
        } else if self.live {
            s = s.live(true);
        }
        if self.no_journal {
            s = s.journal(false);
        }
        if let Some(dir) = &self.journal_dir {
            s = s.journal_dir(dir.clone());
        }
        for (groups, show) in [(&self.hide, false), (&self.show, true)] {
            if let Some(g) = groups {
                crate::state::Group::parse_list(g).map_err(usage)?;
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
    run_argv(tasks, argv, None)
}

/// A run asked for by `--retry-failed`: the run retried and its hosts to
/// run on.
struct Retry {
    of: String,
    hosts: Vec<String>,
}

fn run_argv(tasks: &Tasks, argv: Vec<OsString>, retry: Option<Retry>) -> u8 {
    let program = tasks.name.clone().unwrap_or_else(|| {
        argv.first()
            .and_then(|a| {
                std::path::Path::new(a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "twill".into())
    });
    if let Some(at) = argv.iter().position(|a| a == "--log") {
        let words: Vec<String> = argv[at + 1..]
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        return match log::main(&program, &words, journal::directory(&env())) {
            Ok(code) => code,
            Err(e) if e.kind() == ErrorKind::Usage => usage_exit(&program, e.message()),
            Err(e) => {
                e.report();
                1
            }
        };
    }
    let options = match Options::command()
        .args_override_self(true)
        .try_get_matches_from(&argv)
        .and_then(|m| Options::from_arg_matches(&m))
    {
        Ok(o) => o,
        Err(e) => {
            use clap::error::ErrorKind as K;
            return match e.kind() {
                K::DisplayHelp | K::DisplayVersion => {
                    output::emit(output::Pipe::Out, &e.to_string());
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
    // The words are parsed: secrets can leave the visible command line.
    argv::hide(&argv, &Options::secret_spans(&argv));
    if options.version {
        output::emit(
            output::Pipe::Out,
            &format!("{program} (twill {})\n", env!("CARGO_PKG_VERSION")),
        );
        return 0;
    }
    if options.list {
        output::emit(output::Pipe::Out, &list(tasks));
        return 0;
    }
    if let Some(name) = &options.display {
        return match tasks.find(name) {
            Some(t) => {
                output::emit(output::Pipe::Out, &display(name, t));
                0
            }
            None => usage_exit(&program, &format!("task '{name}' not found")),
        };
    }
    let run_settings = match options.check_hosts().and_then(|()| options.settings()) {
        Ok(s) => s,
        Err(e) => return usage_exit(&program, e.message()),
    };
    if let Some(reference) = &options.retry_failed {
        return match retry_argv(&program, &argv, &options, reference, &run_settings) {
            Ok(Some((argv, retry))) => run_argv(tasks, argv, Some(retry)),
            Ok(None) => 0,
            Err(e) if e.kind() == ErrorKind::Usage => usage_exit(&program, e.message()),
            Err(e) => {
                e.report();
                1
            }
        };
    }
    let run_settings = match &retry {
        Some(r) => run_settings.only_hosts(r.hosts.clone()),
        None => run_settings,
    };
    let mut calls: Vec<(TaskCall, Task)> = Vec::new();
    let mut words = options.tasks.iter();
    while let Some(spec) = words.next() {
        let mut call = parse_task_call(spec);
        let Some(task) = tasks.find(&call.name) else {
            return usage_exit(&program, &format!("task '{}' not found", call.name));
        };
        if task.words > 0 && !spec.contains(':') {
            let taken: Vec<String> = words.by_ref().take(task.words).cloned().collect();
            if taken.len() < task.words {
                return usage_exit(
                    &program,
                    &format!(
                        "task '{}' takes the {} words after it as its arguments, but {} followed it",
                        call.name,
                        task.words,
                        taken.len()
                    ),
                );
            }
            call.args = TaskArgs::from_words(taken);
        }
        calls.push((call, task.clone()));
    }
    if !options.command.is_empty() {
        let command = options.command.join(" ");
        let sudo = options.sudo;
        let opts = RunOptions::new().interactive(options.tty);
        calls.push((
            TaskCall {
                name: "<remainder>".into(),
                args: TaskArgs::default(),
            },
            Task::new("<remainder>", "", move |_| {
                // Without hosts a task runs once, locally; a command cannot.
                if env().host_string().is_none() {
                    return Err(usage(
                        "no hosts given: use -H HOST[,HOST...] or -R ROLE".into(),
                    ));
                }
                if sudo {
                    remote::sudo_with(&command, &opts)?;
                } else {
                    remote::run_with(&command, &opts)?;
                }
                Ok(())
            }),
        ));
    }
    if calls.is_empty() {
        // Fabric runs the fabfile's default task when none is named.
        match tasks.default_task() {
            Some(task) => calls.push((
                TaskCall {
                    name: task.name.clone(),
                    args: TaskArgs::default(),
                },
                task.clone(),
            )),
            None => {
                return usage_exit(
                    &program,
                    "no task given (use -l to list tasks, or -- COMMAND to run one)",
                )
            }
        }
    }
    // Argument errors are found before anything runs.
    for (call, task) in &calls {
        if let Err(e) = check_call(&call.name, task, &call.args) {
            return usage_exit(&program, e.message());
        }
    }
    // Fabric's -I: asked once everything else on the command line is
    // known to be right.
    let run_settings = if options.initial_password_prompt {
        match ask_password("Initial value for env.password: ") {
            Ok(Some(p)) => run_settings.password(p),
            Ok(None) => {
                return usage_exit(&program, "-I needs a terminal to ask for the password on")
            }
            Err(e) => return usage_exit(&program, e.message()),
        }
    } else {
        run_settings
    };
    let warnings = options.password_warnings();
    let info = RunInfo {
        program: program.clone(),
        argv: argv::replayable(&Options::command(), &argv),
        tasks: calls
            .iter()
            .map(|(call, _)| events::TaskCall {
                name: call.name.clone(),
                args: call.args.words(),
            })
            .collect(),
        hosts: options
            .hosts
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::to_string)
            .collect(),
        retry_of: retry.as_ref().map(|r| r.of.clone()),
        ..RunInfo::default()
    };
    // The run's settings are a scope of their own, so that `set_env` in one
    // task reaches the tasks after it, and nothing outlives the run. The
    // run is recorded up to its last line, inside it, where its secrets
    // are known.
    let code = with_settings(run_settings, || {
        for warning in &warnings {
            output::warning(&env(), warning);
        }
        let recording = match events::run_started(&env(), info) {
            Ok(r) => Some(r),
            Err(e) => {
                output::warning(&env(), &format!("this run has no journal: {}", e.message()));
                None
            }
        };
        if env().dry_run() {
            dry_run::announce();
        }
        let _running = RunningTasks::start();
        let outcome = calls.iter().try_for_each(|(call, task)| {
            execute_call(&call.name, task, &call.args, true).map(|_| ())
        });
        let interrupted = matches!(&outcome, Err(e) if e.kind() == ErrorKind::Interrupted);
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
                e.map_message(in_cli_words).report();
                1
            }
        };
        remote::disconnect_all();
        if let Some(recording) = recording {
            recording.end_as(match code {
                0 => Outcome::Ok,
                _ if interrupted => Outcome::Interrupted,
                _ => Outcome::Failed,
            });
        }
        code
    });
    code
}

/// `--retry-failed`: the command line of the run to retry, with this
/// one's options after its own (so that they win), and the hosts to retry;
/// `None` when no host needs it.
fn retry_argv(
    program: &str,
    argv: &[OsString],
    options: &Options,
    reference: &str,
    run_settings: &Settings,
) -> Result<Option<(Vec<OsString>, Retry)>> {
    if !options.tasks.is_empty() || !options.command.is_empty() {
        return Err(usage(
            "--retry-failed runs the tasks of an earlier run again: give it no tasks or command"
                .into(),
        ));
    }
    let dir = with_settings(run_settings.clone(), || journal::directory(&env()))?;
    let run = if reference.is_empty() {
        let mut found = None;
        for path in journal::runs(&dir)?.iter().rev() {
            let run = Run::load(path)?;
            if run.info().is_some_and(|i| i.program == program) {
                found = Some(run);
                break;
            }
        }
        found.ok_or_else(|| {
            usage(format!(
                "--retry-failed: no earlier run of {program} in the journal in {}",
                dir.display()
            ))
        })?
    } else {
        Run::load(&journal::find(&dir, reference)?)?
    };
    let Some(info) = run.info().filter(|i| !i.argv.is_empty()) else {
        return Err(usage(format!(
            "--retry-failed: run {} was not started from a command line",
            run.id()
        )));
    };
    if info.program != program {
        return Err(usage(format!(
            "--retry-failed: run {} is a run of {}, not of {program}",
            run.id(),
            info.program
        )));
    }
    let hosts: Vec<String> = run
        .hosts()
        .into_iter()
        .filter(|h| h.outcome.needs_retry())
        .map(|h| h.host)
        .collect();
    if hosts.is_empty() {
        output::status(&format!(
            "Nothing to retry: every host of run {} ended well.",
            run.id()
        ));
        return Ok(None);
    }
    output::status(&format!(
        "Retrying run {} on {}: {}",
        run.id(),
        if hosts.len() == 1 {
            "its failed host"
        } else {
            "its failed hosts"
        },
        hosts.join(", ")
    ));
    // The earlier words, this command line's options, then the earlier
    // command after `--`.
    let old: Vec<OsString> = info.argv.iter().map(OsString::from).collect();
    let split = old.iter().position(|w| w == "--").unwrap_or(old.len());
    let mut words: Vec<OsString> = old[..split].to_vec();
    words.extend(argv::without_retry(argv, reference).into_iter().skip(1));
    words.extend(old[split..].iter().cloned());
    Ok(Some((
        words,
        Retry {
            of: run.id(),
            hosts,
        },
    )))
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

/// The library's words for what the command line offers as options,
/// replaced with those options.
const CLI_WORDS: [(&str, &str); 2] = [
    (
        "Turn on the accept_new_host_keys setting to accept and record unknown host keys",
        "Run again with --accept-new-host-keys to accept and record unknown host keys",
    ),
    (
        "(set sudo_password or password, or run on a terminal to be asked)",
        "(give it with TWILL_SUDO_PASSWORD or --sudo-password-file, or run on a terminal to be asked)",
    ),
];

/// An error message in the command line's words: its options, not the
/// library's settings.
fn in_cli_words(message: &str) -> String {
    CLI_WORDS
        .iter()
        .fold(message.to_string(), |m, (library, cli)| {
            m.replace(library, cli)
        })
}

/// Makes operations without a host say so in the command line's words
/// while its tasks run, until dropped.
struct RunningTasks;

impl RunningTasks {
    fn start() -> RunningTasks {
        session::set_no_host_words(Some(no_host_message));
        RunningTasks
    }
}

impl Drop for RunningTasks {
    fn drop(&mut self) {
        session::set_no_host_words(None);
    }
}

/// The error message for an operation (`which`: `run`, `put`, ...) that
/// found no host while the command line runs its tasks.
fn no_host_message(env: &Env, which: &str) -> String {
    let task = env.command().unwrap_or_else(|| "?".into());
    format!(
        "task '{task}' needs a host for {which}(), but no hosts were given: use -H HOST[,HOST...] or -R ROLE"
    )
}

/// Checks a task call before anything runs: the ports of the host
/// strings in its `host=`, `hosts=` and `exclude_hosts=` arguments, and
/// its other arguments against the task's parameters.
pub(super) fn check_call(name: &str, task: &Task, args: &TaskArgs) -> Result<()> {
    for (key, value) in args.named() {
        if ["host", "hosts", "exclude_hosts"].contains(&key.as_str()) {
            let source = format!("task '{name}', argument {key}");
            check_ports(&source, value, Some(';'))?;
        }
    }
    task.check_args(name, &args.clone().without_host_keys())
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

/// Runs a task called as `name` once per host, with Fabric's host-list
/// precedence: the call's own `host=`/`hosts=`/`role=`/`roles=`, else the
/// task's marks, else the `hosts`/`roles` settings. A top-level task of
/// the command line without hosts runs once without saying so, as in
/// Fabric.
pub(super) fn execute_call(
    name: &str,
    task: &Task,
    args: &TaskArgs,
    top_level: bool,
) -> Result<HostResults<()>> {
    let mut args = args.clone();
    let hosts = take_list(&mut args, "hosts", "host");
    let roles = take_list(&mut args, "roles", "role");
    let exclude = take_list(&mut args, "exclude_hosts", "exclude_hosts");
    let mut exec = Execute::new(name)
        .marks(task.marks.clone())
        .hosts(hosts)
        .roles(roles)
        .exclude_hosts(exclude);
    if top_level {
        exec = exec.quiet_local();
    }
    exec.run(|| task.call_as(name, &args))
}

/// Fabric's `fab -l`: the names in Fabric's order (see `Tasks::listed`),
/// each with the first line of its task's documentation.
fn list(tasks: &Tasks) -> String {
    let all = tasks.listed();
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

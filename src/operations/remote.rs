//! `run`, `sudo` and `remote_file_exists`: commands on the current host.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::seconds;
use crate::error::{Error, ErrorKind, Result};
use crate::operations::local::finish_message;
use crate::operations::options::{RunOptions, Sink};
use crate::output::{self, LinePrinter, Pipe};
use crate::result::Output;
use crate::ssh::{
    self, ConnectOptions, Connection, HostKeyPolicy, SshError, SshErrorKind, Stream, Target,
};
use crate::state::{env, local_user, with_settings, Env, Settings};

/// Runs `command` on the current host (`host_string`) over SSH and returns
/// its output (Fabric's `run`).
///
/// The real command is wrapped as Fabric does (`/bin/bash -l -c "..."`,
/// with [`cd`](crate::cd), [`prefix`](crate::prefix), [`path`](crate::path)
/// and [`shell_env`](crate::shell_env)). Output is printed line by line as
/// `[host] out: ...` while it arrives. An exit code outside `ok_ret_codes`
/// is an error of kind [`ErrorKind::CommandFailed`] (with `warn_only`, a
/// warning and `Ok`). The connection is opened on first use and reused.
///
/// ```no_run
/// use twill::{cd, run, with_settings, Settings};
///
/// let _host = twill::settings(Settings::new().host_string("deploy@web1"));
/// let files = with_settings(cd("/srv/app"), || run("ls"))?;
/// for name in files.stdout_lines() {
///     println!("{name}");
/// }
/// # Ok::<(), twill::Error>(())
/// ```
pub fn run(command: &str) -> Result<Output> {
    run_with(command, &RunOptions::new())
}

/// threadbare's name for [`run`].
pub fn remote(command: &str) -> Result<Output> {
    run(command)
}

/// Runs `command` on the current host through sudo (Fabric's `sudo`):
/// `sudo -S -p 'sudo password:'  /bin/bash -l -c "..."`. When sudo asks for
/// a password, the `sudo_password` setting (else `password`, else the
/// `passwords` entry for the host) answers it; it is never printed. A
/// rejected password is an error of kind [`ErrorKind::Auth`].
pub fn sudo(command: &str) -> Result<Output> {
    sudo_with(command, &RunOptions::new())
}

/// threadbare's name for [`sudo`].
pub fn remote_sudo(command: &str) -> Result<Output> {
    sudo(command)
}

/// [`run`] with explicit options.
pub fn run_with(command: &str, opts: &RunOptions) -> Result<Output> {
    execute(command, opts, false)
}

/// [`sudo`] with explicit options (user, group, ...).
pub fn sudo_with(command: &str, opts: &RunOptions) -> Result<Output> {
    execute(command, opts, true)
}

/// Whether `path` exists on the current host (Fabric's `exists`), checked
/// with `stat` quietly; `~` and globs are expanded by the remote shell and
/// relative paths honour [`cd`](crate::cd).
pub fn remote_file_exists(path: &str) -> Result<bool> {
    remote_file_exists_with(path, false)
}

/// [`remote_file_exists`], through sudo when `use_sudo`, for paths only
/// another user can see.
pub fn remote_file_exists_with(path: &str, use_sudo: bool) -> Result<bool> {
    let command = format!("stat \"$(echo {path})\" >/dev/null");
    let opts = RunOptions::new().quiet(true);
    let out = if use_sudo {
        sudo_with(&command, &opts)?
    } else {
        run_with(&command, &opts)?
    };
    Ok(out.succeeded())
}

/// Closes every cached connection, printing Fabric's
/// `Disconnecting from <host>... done.` for each (status group).
pub fn disconnect_all() {
    let user = env().user();
    for name in ssh::disconnect_all() {
        output::status(&format!(
            "Disconnecting from {}... done.",
            denormalize(&name, &user)
        ));
    }
}

/// Fabric's short form of `user@host:port`: the user left out when it is
/// the current one, and port 22 left out.
fn denormalize(name: &str, current_user: &str) -> String {
    let name = match name.split_once('@') {
        Some((u, rest)) if u == current_user => rest,
        _ => name,
    };
    name.strip_suffix(":22").unwrap_or(name).to_string()
}

/// The host string in force, or an error naming the operation.
pub(crate) fn current_host(env: &Env, which: &str) -> Result<String> {
    env.host_string().map(String::from).ok_or_else(|| {
        // The command line says it in its own words (its flags).
        let message = crate::cli::no_host_message(env, which).unwrap_or_else(|| format!(
            "{which}() needs a host: no host_string is set (use Settings::host_string, or run the task with execute on a host list)"
        ));
        Error::new(ErrorKind::Settings, message)
    })
}

/// The connection for the current host, opened or from the cache.
pub(crate) fn connection(env: &Env, host: &str) -> Result<Arc<Connection>> {
    let mut target = Target::try_parse(host).map_err(|e| ssh_error(e, host))?;
    let default_user = env.user();
    if target.user.is_none() && env.contains("user") && default_user != local_user() {
        // Fabric: an explicitly set user beats ssh_config's User.
        target.user = Some(default_user.clone());
    }
    if target.port.is_none() && env.contains("port") {
        target.port = Some(env.port());
    }
    let full_name = format!(
        "{}@{}:{}",
        target.user.as_deref().unwrap_or(&default_user),
        target.host,
        target.port.unwrap_or(22)
    );
    let passwords = env.passwords();
    let password = passwords
        .get(host)
        .or_else(|| passwords.get(&full_name))
        .map(String::as_str)
        .or(env.password())
        .map(String::from);
    let opts = ConnectOptions {
        key_filenames: env.key_filename().iter().map(PathBuf::from).collect(),
        key_passphrase: env.key_passphrase().map(String::from),
        password,
        use_agent: !env.no_agent(),
        look_for_keys: !env.no_keys(),
        known_hosts: env.known_hosts().map(PathBuf::from),
        host_key_policy: if env.accept_new_host_keys() {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: env.timeout(),
        connection_attempts: env.connection_attempts().max(1),
        keepalive: Some(env.keepalive()).filter(|d| !d.is_zero()),
        use_ssh_config: env.use_ssh_config(),
        ssh_config_path: env.ssh_config_path().map(PathBuf::from),
        gateway: env.gateway().map(String::from),
        default_user,
    };
    ssh::connect(&target, &opts).map_err(|e| ssh_error(e, host))
}

/// Turns an engine error into twill's error for `host`.
pub(crate) fn ssh_error(e: SshError, host: &str) -> Error {
    let kind = match e.kind {
        SshErrorKind::Resolve | SshErrorKind::Connect => ErrorKind::Connect,
        SshErrorKind::Timeout => ErrorKind::Timeout,
        SshErrorKind::Auth => ErrorKind::Auth,
        SshErrorKind::HostKeyUnknown | SshErrorKind::HostKeyChanged => ErrorKind::HostKey,
        SshErrorKind::Disconnected => ErrorKind::Disconnected,
        SshErrorKind::Sftp => ErrorKind::Transfer,
        SshErrorKind::Io => ErrorKind::Io,
        SshErrorKind::Config => ErrorKind::Settings,
        SshErrorKind::Interrupted => ErrorKind::Interrupted,
    };
    Error::new(kind, e.message.clone())
        .with_host(host)
        .with_source(e)
}

fn execute(command: &str, opts: &RunOptions, sudo: bool) -> Result<Output> {
    if opts.quiet {
        let inner = RunOptions {
            quiet: false,
            ..opts.clone()
        };
        return with_settings(Settings::new().quiet(), || execute(command, &inner, sudo));
    }
    let env = env();
    let which = if sudo { "sudo" } else { "run" };
    let host = current_host(&env, which)?;
    let real = opts.real(&env, command, sudo);
    output::running(&env, &host, which, command, &real);

    let conn = connection(&env, &host).map_err(|e| e.with_command(command))?;
    let pty = opts.pty.unwrap_or_else(|| env.always_use_pty());
    let combine = opts.combine_stderr.unwrap_or_else(|| env.combine_stderr());
    let timeout = opts.timeout.or_else(|| env.command_timeout());

    let mut run = Capture::new(&env, &host, combine && !pty, opts);
    let password = sudo_password(&env, &host);
    let exec_opts = ssh::ExecOptions { pty, timeout };
    let status = conn.exec(&real, &exec_opts, &mut |stream, data| {
        run.feed(stream, data, password.as_deref())
    });
    run.finish();

    let (stdout, stderr) = (
        std::mem::take(&mut run.stdout),
        std::mem::take(&mut run.stderr),
    );
    let result =
        |code: i32, failed: bool| Output::new(stdout, stderr, code, failed, command, &real);
    let status = match status {
        Ok(s) => s,
        Err(e) if e.kind == SshErrorKind::Timeout => {
            let secs = timeout.map(seconds).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("{which}() timed out: command failed to finish in {secs} seconds while executing '{command}'"),
            )
            .with_host(&host)
            .with_output(result(-1, true)));
        }
        Err(e) => return Err(ssh_error(e, &host).with_command(command)),
    };
    let code = status.code.unwrap_or(-1);
    let failed = !env.ok_ret_codes().contains(&code);
    let out = result(code, failed);
    if run.prompts_answered > 0 && password.is_none() {
        return Err(Error::new(
            ErrorKind::Prompt,
            format!(
                "sudo() on {host} asked for a password while executing '{command}', but none is set (set sudo_password or password)"
            ),
        )
        .with_host(&host)
        .with_output(out));
    }
    if run.prompts_answered > 1 {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("sudo() on {host}: the sudo password was rejected while executing '{command}'"),
        )
        .with_host(&host)
        .with_output(out));
    }
    if !out.failed() {
        return Ok(out);
    }
    let warn_only = opts.warn_only.unwrap_or_else(|| env.warn_only());
    let msg = if warn_only {
        format!("{which}() received nonzero return code {code} while executing '{command}'!")
    } else {
        format!("{which}() received nonzero return code {code} while executing!\n\nRequested: {command}\nExecuted: {real}")
    };
    finish_message(&env, msg, out, warn_only, Some(&host))
}

/// The password that answers a sudo prompt on `host`.
fn sudo_password(env: &Env, host: &str) -> Option<String> {
    env.sudo_password()
        .or(env.password())
        .map(String::from)
        .or_else(|| env.passwords().get(host).cloned())
}

/// Collects a command's output, prints it line by line, and answers
/// sudo's prompt and the `prompts` setting.
struct Capture {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    out_printer: LinePrinter,
    err_printer: LinePrinter,
    merge_err: bool,
    stdout_sink: Option<Sink>,
    stderr_sink: Option<Sink>,
    sudo_prompt: String,
    prompts: Vec<(String, String)>,
    /// The last bytes seen on each stream, to spot prompts split across chunks.
    tail: [Vec<u8>; 2],
    prompts_answered: u32,
}

impl Capture {
    fn new(env: &Env, host: &str, merge_err: bool, opts: &RunOptions) -> Capture {
        Capture {
            stdout: Vec::new(),
            stderr: Vec::new(),
            out_printer: LinePrinter::new(env, host, Pipe::Out),
            err_printer: LinePrinter::new(env, host, if merge_err { Pipe::Out } else { Pipe::Err }),
            merge_err,
            stdout_sink: opts.stdout.clone(),
            stderr_sink: opts.stderr.clone(),
            sudo_prompt: env.sudo_prompt().to_string(),
            prompts: env.prompts().to_vec(),
            tail: [Vec::new(), Vec::new()],
            prompts_answered: 0,
        }
    }

    fn feed(&mut self, stream: Stream, data: &[u8], password: Option<&str>) -> Option<Vec<u8>> {
        let i = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let to_err = i == 1 && !self.merge_err;
        let (printer, buf, sink) = if i == 0 {
            (&mut self.out_printer, &mut self.stdout, &self.stdout_sink)
        } else if to_err {
            (&mut self.err_printer, &mut self.stderr, &self.stderr_sink)
        } else {
            (&mut self.err_printer, &mut self.stdout, &self.stdout_sink)
        };
        printer.feed(data);
        match sink {
            Some(sink) => {
                // A writer that fails (a closed pipe) only loses its copy.
                let _ = sink.lock().write_all(data);
            }
            None => buf.extend_from_slice(data),
        }

        let tail = &mut self.tail[i];
        tail.extend_from_slice(data);
        let keep = 256;
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
        if !self.sudo_prompt.is_empty() && tail.ends_with(self.sudo_prompt.as_bytes()) {
            tail.clear();
            self.prompts_answered += 1;
            // Fabric removes the prompt from the captured output.
            if sink.is_none() && buf.ends_with(self.sudo_prompt.as_bytes()) {
                let n = buf.len() - self.sudo_prompt.len();
                buf.truncate(n);
            }
            printer.finish();
            return Some(match password {
                Some(p) => format!("{p}\n").into_bytes(),
                // Nothing to answer with: an empty line makes sudo give up
                // after its attempts instead of waiting forever.
                None => b"\n".to_vec(),
            });
        }
        for (expected, reply) in &self.prompts {
            if !expected.is_empty() && tail.ends_with(expected.as_bytes()) {
                tail.clear();
                printer.finish();
                return Some(format!("{reply}\n").into_bytes());
            }
        }
        None
    }

    fn finish(&mut self) {
        self.out_printer.finish();
        self.err_printer.finish();
        for sink in [&self.stdout_sink, &self.stderr_sink].into_iter().flatten() {
            let _ = sink.lock().flush();
        }
    }
}

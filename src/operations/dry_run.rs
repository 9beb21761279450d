//! The dry run (the `dry_run` setting, `--dry-run`): what the operations
//! print and return instead of connecting or running anything.
//!
//! Each operation branches here early, once it knows its host: its usual
//! line (`[web1] run: make`, under the output groups as always), then,
//! whatever the groups say, what would really be done (`[web1] would run:
//! <the real command>`), and a result that stands for a success with no
//! output. Remote commands for bash are checked with the local `bash -n`.
//! Remote paths are shown as the script gives them, since resolving `~`
//! or asking whether a path is a directory would take the host.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::command;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::operations::finish_message;
use crate::operations::options::RunOptions;
use crate::operations::session::current_host;
use crate::operations::transfer::paths;
use crate::operations::transfer::upload::{expand_local, walk_local, Entry};
use crate::operations::transfer::{local_path, DownloadOptions, UploadOptions};
use crate::output::{self, path_text};
use crate::result::Output;
use crate::state::Env;
use crate::sys::seconds;

/// What a dry run assumes, said once per process before its first line.
pub(crate) const NOTICE: &str = "Dry run: nothing connects and nothing runs. Every command is taken to succeed with exit code 0 and no output, so a check such as exists() or contains() is taken as true, and a task that reads a command's output reads it empty.";

static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// Prints [`NOTICE`], the first time only (a parallel worker inherits
/// whether it was printed).
pub(crate) fn announce() {
    if !ANNOUNCED.swap(true, Ordering::SeqCst) {
        output::dry_run_notice(NOTICE);
    }
}

/// `run`/`sudo` on `host`: the usual line, the real command (sudo's with
/// the `sudo_prompt` setting as its prompt: the real call adds a random
/// marker), and bash's verdict on its syntax.
pub(crate) fn command(
    env: &Env,
    host: &str,
    which: &str,
    command: &str,
    opts: &RunOptions,
    sudo: bool,
) -> Result<Output> {
    announce();
    let real = opts.real(env, command, sudo, None);
    output::running(env, host, which, command, &real);
    output::dry_run(host, &format!("would run: {real}"));
    let script = command::bash_script(env, command, opts.shell.unwrap_or(true), opts.shell_escape);
    let Some((code, message)) = script.as_deref().and_then(syntax_error) else {
        return Ok(Output::new(
            Vec::new(),
            Vec::new(),
            0,
            false,
            command,
            &real,
        ));
    };
    output::dry_run_warning(
        env,
        &format!(
            "[{host}] bash -n finds a syntax error in: {}\n{message}",
            script.unwrap_or_default()
        ),
    );
    // Fabric's rule, as for the failure bash would give on the host.
    let failed = !env.ok_ret_codes().contains(&code);
    let out = Output::new(
        Vec::new(),
        message.into_bytes(),
        code,
        failed,
        command,
        &real,
    );
    if !failed {
        return Ok(out);
    }
    let warn_only = opts.warn_only.unwrap_or_else(|| env.warn_only());
    let msg = if warn_only {
        format!("{which}() received nonzero return code {code} while executing '{command}'!")
    } else {
        format!("{which}() received nonzero return code {code} while executing!\n\nRequested: {command}\nExecuted: {real}")
    };
    finish_message(env, msg, out, warn_only, Some(host))
}

/// The exit code and the message of the local `bash -n` for `script`
/// (given on its standard input); `None` when bash finds nothing wrong,
/// or there is no local bash to ask.
fn syntax_error(script: &str) -> Option<(i32, String)> {
    let [program, flag] = command::SYNTAX_CHECK;
    let mut cmd = Command::new(program);
    cmd.arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (mut child, registered) = interrupt::spawn_local(&mut cmd, false).ok()??;
    drop(cmd);
    if let Some(mut stdin) = child.stdin.take() {
        // bash stops reading at the first error: the rest may not go.
        let _ = stdin.write_all(script.as_bytes());
    }
    let mut message = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut message);
    }
    let status = registered.wait(&mut child).ok()?;
    (!status.success()).then(|| (status.code().unwrap_or(2), message.trim_end().to_string()))
}

/// `local`: the usual line and the real command.
pub(crate) fn local(env: &Env, command: &str, real: &str) -> Result<Output> {
    announce();
    output::running(env, "localhost", "local", command, real);
    output::dry_run("localhost", &format!("would run locally: {real}"));
    Ok(Output::new(Vec::new(), Vec::new(), 0, false, command, real))
}

/// `open_shell` on `host`, with the command it would type.
pub(crate) fn shell(host: &str, command: Option<&str>) {
    announce();
    match command.filter(|c| !c.is_empty()) {
        Some(c) => output::dry_run(host, &format!("would open a shell and type: {c}")),
        None => output::dry_run(host, "would open a shell"),
    }
}

/// `reboot` after its command: the wait it would do.
pub(crate) fn reboot(host: &str, wait: Duration) {
    output::dry_run(
        host,
        &format!(
            "would wait up to {} seconds for the host to come back",
            seconds(wait)
        ),
    );
}

/// A remote path as the script gives it, placed without the host: below
/// [`cd`](crate::cd), `~` and `~user` left for the host to expand.
fn remote_path(env: &Env, p: &str) -> PathBuf {
    let Ok(placed) = paths::place::<std::convert::Infallible>(
        p,
        &env.cwd(),
        || Ok(PathBuf::from("~")),
        |user| Ok(PathBuf::from(format!("~{user}"))),
    );
    placed
}

/// `, with sudo` where the transfer goes through sudo.
fn with_sudo(yes: bool) -> &'static str {
    if yes {
        ", with sudo"
    } else {
        ""
    }
}

/// `put` of the local path `local` (already placed under `lcd`) to
/// `remote`: a line for each file it would write, which it returns. A
/// local path that is not there now (an earlier command of the task,
/// which did not run, may have been going to make it) is shown as such.
pub(crate) fn put(
    env: &Env,
    host: &str,
    local: &Path,
    remote: &str,
    opts: &UploadOptions,
) -> Result<Vec<String>> {
    announce();
    let (sources, missing) = match expand_local(local, !opts.no_glob) {
        Ok((sources, _)) => (sources, false),
        Err(_) => (vec![local.to_path_buf()], true),
    };
    let base = remote_path(env, remote);
    let several = sources.len() > 1;
    let sudo = with_sudo(opts.use_sudo);
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for src in sources {
        let dest = if several || remote.ends_with('/') {
            base.join(src.file_name().unwrap_or_default())
        } else {
            base.clone()
        };
        if missing {
            put_line(env, host, &src, &dest, &format!("not there now{sudo}"));
            written.push(dest.to_string_lossy().into_owned());
            continue;
        }
        let entries = if src.is_dir() {
            walk_local(&src, opts.follow_links)?
        } else {
            vec![Entry::File(src.clone(), PathBuf::new())]
        };
        for entry in entries {
            let (from, to, what) = match entry {
                Entry::File(file, rel) => {
                    let size = std::fs::metadata(&file)
                        .ok()
                        .filter(|m| m.is_file())
                        .map_or("size unknown".to_string(), |m| format!("{} bytes", m.len()));
                    let to = if rel.as_os_str().is_empty() {
                        dest.clone()
                    } else {
                        dest.join(rel)
                    };
                    (file, to, size)
                }
                Entry::Link(target, rel) => (target, dest.join(rel), "symlink".to_string()),
                Entry::Skipped(path, why) => {
                    output::warning(
                        env,
                        &format!("[{host}] put: skipped {}: {why}", path.display()),
                    );
                    skipped.push(format!("{} ({why})", path.display()));
                    continue;
                }
            };
            put_line(env, host, &from, &to, &format!("{what}{sudo}"));
            written.push(to.to_string_lossy().into_owned());
        }
    }
    if !skipped.is_empty() && !env.warn_only() {
        return Err(Error::new(
            ErrorKind::Transfer,
            format!(
                "put() on {host} would skip {} of the local files: {}",
                skipped.len(),
                skipped.join(", ")
            ),
        )
        .with_host(host));
    }
    Ok(written)
}

/// The usual `put:` line and the dry run's.
fn put_line(env: &Env, host: &str, from: &Path, to: &Path, note: &str) {
    let (from, to) = (path_text(from), path_text(to));
    output::running_line(env, host, &format!("put: {from} -> {to}"));
    output::dry_run(host, &format!("would put: {from} -> {to} ({note})"));
}

/// `put` of `len` bytes from memory to `remote`.
pub(crate) fn put_data(
    env: &Env,
    len: usize,
    remote: &str,
    opts: &UploadOptions,
) -> Result<String> {
    let host = current_host(env, "put")?.name;
    announce();
    let target = path_text(&remote_path(env, remote));
    output::running_line(env, &host, &format!("put: <data> -> {target}"));
    output::dry_run(
        &host,
        &format!(
            "would put: <data> -> {target} ({len} bytes{})",
            with_sudo(opts.use_sudo)
        ),
    );
    Ok(target)
}

/// `get` of `remote` to `local`: the local path it would write, where it
/// can be known without the host (not for a glob, nor for a path below the
/// home directory named by a `%(path)s` or `%(dirname)s` template).
pub(crate) fn get(
    env: &Env,
    remote: &str,
    local: &Path,
    opts: &DownloadOptions,
) -> Result<Vec<PathBuf>> {
    let host = current_host(env, "get")?.name;
    announce();
    let path = remote_path(env, remote);
    let shown = path_text(&path);
    let sudo = with_sudo(opts.use_sudo);
    let template = match local.to_string_lossy() {
        t if t.is_empty() => "%(host)s/%(path)s".to_string(),
        t => t.into_owned(),
    };
    let glob = shown.contains(['*', '?', '[']);
    let by_path = template.contains("%(path)s") || template.contains("%(dirname)s");
    if glob || (by_path && !path.is_absolute()) {
        output::dry_run(
            &host,
            &format!(
                "would get: {shown} -> {template} (the local names depend on what is there{sudo})"
            ),
        );
        return Ok(Vec::new());
    }
    let (home, lcwd) = (std::env::var_os("HOME"), env.lcwd());
    let place = |p: &Path| local_path(p, &lcwd, home.as_deref());
    let dest = paths::local_target(&host, &template, &path, None, place, |p| p.is_dir());
    let dest_text = path_text(&dest);
    output::running_line(env, &host, &format!("download: {dest_text} <- {shown}"));
    let note = if opts.use_sudo { " (with sudo)" } else { "" };
    output::dry_run(&host, &format!("would get: {shown} -> {dest_text}{note}"));
    Ok(vec![dest])
}

/// `get` of `remote` into memory: nothing comes.
pub(crate) fn get_data(env: &Env, remote: &str) -> Result<Vec<u8>> {
    let host = current_host(env, "get")?.name;
    announce();
    let shown = path_text(&remote_path(env, remote));
    output::running_line(env, &host, &format!("download: <data> <- {shown}"));
    output::dry_run(&host, &format!("would get: {shown} -> <data>"));
    Ok(Vec::new())
}

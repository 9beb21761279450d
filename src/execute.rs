//! `execute`: run a task once per host, serially or in parallel worker
//! processes.
//!
//! Parallel workers are `fork()`ed copies of the calling process, started
//! at most `pool_size` at a time. That is what makes Fabric's documented
//! caveats hold by construction: a worker has no standard input, its
//! changes to the settings stay in its own address space, it opens its own
//! SSH connections (the inherited ones are dropped without a word on the
//! wire), and its return value crosses back serialized. Its standard output
//! and error come back through pipes, so the caller prints whole lines (or
//! one block per host) and lines of different hosts never mix. A worker
//! that fails, panics, dies or is killed is that host's failure; the
//! others finish.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::output::{self, Pipe};
use crate::result::Output;
use crate::ssh;
use crate::state::{env, with_settings, Env, Settings};

/// The results of a task, one per host, in the order of the host list.
#[derive(Debug)]
pub struct HostResults<T> {
    entries: Vec<(String, Result<T>)>,
}

impl<T> HostResults<T> {
    /// The result for `host` (as written in the host list).
    pub fn get(&self, host: &str) -> Option<&Result<T>> {
        self.entries.iter().find(|(h, _)| h == host).map(|(_, r)| r)
    }

    /// Every host with its result, in host-list order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<T>)> {
        self.entries.iter().map(|(h, r)| (h.as_str(), r))
    }

    /// The hosts, in order.
    pub fn hosts(&self) -> Vec<&str> {
        self.entries.iter().map(|(h, _)| h.as_str()).collect()
    }

    /// The hosts that failed, with their errors.
    pub fn failures(&self) -> Vec<(&str, &Error)> {
        self.entries
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| (h.as_str(), e)))
            .collect()
    }

    /// Whether every host succeeded.
    pub fn succeeded(&self) -> bool {
        self.entries.iter().all(|(_, r)| r.is_ok())
    }

    /// How many hosts ran.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no host ran.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(host, result)` pairs.
    pub fn into_vec(self) -> Vec<(String, Result<T>)> {
        self.entries
    }
}

/// A task run over hosts, with Fabric's `execute` options.
///
/// ```no_run
/// use twill::{run, Execute};
///
/// let results = Execute::new("uptime")
///     .hosts(["web1", "web2", "deploy@db1:2222"])
///     .parallel(true)
///     .pool_size(10)
///     .run(|| Ok(run("uptime")?.to_string()))?;
/// for (host, result) in results.iter() {
///     println!("{host}: {:?}", result.as_ref().map(String::as_str));
/// }
/// # Ok::<(), twill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Execute {
    name: String,
    hosts: Vec<String>,
    roles: Vec<String>,
    exclude: Vec<String>,
    parallel: Option<bool>,
    pool_size: Option<usize>,
    blocks: bool,
    param: Option<(String, Vec<String>)>,
}

/// Runs `task` once per host of `hosts` (Fabric's `execute(task,
/// hosts=...)`), serially unless the `parallel` setting is on; see
/// [`Execute`] for the other options. The task's name in messages is the
/// function's name.
pub fn execute<T, F>(task: F, hosts: &[&str]) -> Result<HostResults<T>>
where
    F: Fn() -> Result<T>,
    T: Serialize + DeserializeOwned,
{
    let name = std::any::type_name::<F>();
    let name = name
        .rsplit("::")
        .find(|s| !s.starts_with('{'))
        .unwrap_or(name);
    Execute::new(name).hosts(hosts.iter().copied()).run(task)
}

/// threadbare's form: runs `task` with each host of `hosts` (else the
/// `hosts` setting) as `host_string`.
pub fn execute_with_hosts<T, F>(task: F, hosts: &[&str]) -> Result<HostResults<T>>
where
    F: Fn() -> Result<T>,
    T: Serialize + DeserializeOwned,
{
    execute(task, hosts)
}

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Lazy<bool> = Lazy::new(|| {
    ctrlc::set_handler(|| {
        if ACTIVE.load(Ordering::SeqCst) > 0 {
            INTERRUPTED.store(true, Ordering::SeqCst);
            ssh::interrupt_all();
        } else {
            std::process::exit(130);
        }
    })
    .is_ok()
});

/// Counts a running `execute` so that Ctrl-C interrupts it instead of
/// ending the process at once.
struct Active;

impl Active {
    fn new() -> Active {
        Lazy::force(&HANDLER);
        if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
        }
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn interrupted_error(host: &str) -> Error {
    Error::new(ErrorKind::Interrupted, "interrupted (Ctrl-C)").with_host(host)
}

impl Execute {
    /// A run of the task called `name` (used in Fabric's messages).
    pub fn new(name: impl Into<String>) -> Execute {
        Execute {
            name: name.into(),
            hosts: Vec::new(),
            roles: Vec::new(),
            exclude: Vec::new(),
            parallel: None,
            pool_size: None,
            blocks: false,
            param: None,
        }
    }

    /// The hosts to run on, as host strings (`host`, `user@host:port`, ...).
    pub fn hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Roles whose hosts (from the `roledefs` setting) to run on as well.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Hosts to leave out.
    pub fn exclude_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.exclude.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Run in parallel worker processes (default: the `parallel` setting).
    pub fn parallel(mut self, yes: bool) -> Self {
        self.parallel = Some(yes);
        self
    }

    /// At most this many workers at a time (default: the `pool_size`
    /// setting, where 0 means one per host).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = Some(n);
        self
    }

    /// In parallel mode, print each host's output as one block when it
    /// finishes, instead of line by line as it arrives.
    pub fn output_blocks(mut self, yes: bool) -> Self {
        self.blocks = yes;
        self
    }

    /// threadbare's form: instead of hosts, run once per value with the
    /// setting `key` set to it; results are keyed by value.
    pub fn param<S: Into<String>>(
        mut self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.param = Some((key.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// The host list, by Fabric's rules: the hosts and roles given here,
    /// else the `hosts` and `roles` settings; duplicates removed (keeping
    /// the first) and excluded hosts left out when `dedupe_hosts` is on.
    pub fn host_list(&self) -> Result<Vec<String>> {
        let env = env();
        let (hosts, roles) = if self.hosts.is_empty() && self.roles.is_empty() {
            (env.hosts().to_vec(), env.roles().to_vec())
        } else {
            (self.hosts.clone(), self.roles.clone())
        };
        let roledefs = env.roledefs();
        let mut all: Vec<String> = hosts.iter().map(|h| h.trim().to_string()).collect();
        for role in &roles {
            match roledefs.get(role) {
                Some(list) => all.extend(list.iter().map(|h| h.trim().to_string())),
                None => {
                    return Err(Error::new(
                        ErrorKind::Settings,
                        format!("The following specified roles do not exist:\n    {role}"),
                    ))
                }
            }
        }
        all.retain(|h| !h.is_empty());
        if env.dedupe_hosts() {
            let mut seen = std::collections::HashSet::new();
            all.retain(|h| seen.insert(h.clone()));
            let exclude: Vec<&String> = env.exclude_hosts().iter().chain(&self.exclude).collect();
            all.retain(|h| !exclude.contains(&h));
        }
        Ok(all)
    }

    /// Runs `task` once per host (or per value, with [`param`](Execute::param)).
    ///
    /// Serially, hosts run one after the other in this thread, and the
    /// first failure stops the run and is returned, as in Fabric (with
    /// `warn_only`, or `skip_bad_hosts` for connection failures, it is
    /// recorded and the run goes on). In parallel, every host runs to the
    /// end; then, if any failed, the result is an error of kind
    /// [`ErrorKind::TaskFailed`] with Fabric's message
    /// `One or more hosts failed while executing task '<name>'` and each
    /// host's reason, unless `warn_only` is set (or only connection failures
    /// happened under `skip_bad_hosts`). Ctrl-C stops every worker and every
    /// remote command they started, and gives an error of kind
    /// [`ErrorKind::Interrupted`]; a program should then exit with 130.
    pub fn run<T, F>(&self, task: F) -> Result<HostResults<T>>
    where
        F: Fn() -> Result<T>,
        T: Serialize + DeserializeOwned,
    {
        let env = env();
        let jobs: Vec<(String, Settings)> = match &self.param {
            Some((key, values)) => values
                .iter()
                .map(|v| (v.clone(), Settings::new().set(key.clone(), v.clone())))
                .collect(),
            None => self
                .host_list()?
                .into_iter()
                .map(|h| {
                    let s = host_settings(&h, &self.name);
                    (h, s)
                })
                .collect(),
        };
        if jobs.is_empty() {
            // Fabric: no hosts means the task runs once, locally.
            let value = with_settings(Settings::new().set("command", self.name.clone()), &task);
            if let Err(e) = value {
                return Err(e);
            }
            return Ok(HostResults {
                entries: vec![("<local-only>".to_string(), value)],
            });
        }
        let _active = Active::new();
        let parallel = self.parallel.unwrap_or_else(|| env.parallel());
        let entries = if parallel {
            let pool = match self.pool_size.unwrap_or_else(|| env.pool_size()) {
                0 => jobs.len(),
                n => n.min(jobs.len()),
            };
            let entries = parallel::run(&self.name, jobs, pool, self.blocks, &task)?;
            self.judge_parallel(&env, entries)?
        } else {
            self.run_serial(&env, jobs, &task)?
        };
        Ok(HostResults { entries })
    }

    fn run_serial<T, F>(
        &self,
        env: &Env,
        jobs: Vec<(String, Settings)>,
        task: &F,
    ) -> Result<Vec<(String, Result<T>)>>
    where
        F: Fn() -> Result<T>,
    {
        let mut entries = Vec::new();
        for (host, settings) in jobs {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(interrupted_error(&host));
            }
            announce(env, &host, &self.name);
            let result =
                with_settings(settings, || run_caught(task)).map_err(|e| with_host(e, &host));
            let tolerated =
                |e: &Error| env.warn_only() || (env.skip_bad_hosts() && is_connection_failure(e));
            let result = match result {
                Err(e)
                    if e.kind() == ErrorKind::Interrupted || INTERRUPTED.load(Ordering::SeqCst) =>
                {
                    return Err(interrupted_error(&host))
                }
                Err(e) if !tolerated(&e) => return Err(e),
                other => other,
            };
            if let Err(e) = &result {
                output::warning(env, &e.to_string());
            }
            entries.push((host, result));
            if env.eagerly_disconnect() {
                crate::disconnect_all();
            }
        }
        Ok(entries)
    }

    fn judge_parallel<T>(
        &self,
        env: &Env,
        entries: Vec<(String, Result<T>)>,
    ) -> Result<Vec<(String, Result<T>)>> {
        let counted: Vec<(&String, &Error)> = entries
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| (h, e)))
            .filter(|(_, e)| !(env.skip_bad_hosts() && is_connection_failure(e)))
            .collect();
        if counted.is_empty() {
            return Ok(entries);
        }
        let mut msg = format!(
            "One or more hosts failed while executing task '{}'",
            self.name
        );
        for (host, e) in &counted {
            let reason = e.message().lines().next().unwrap_or("");
            msg.push_str(&format!("\n    {host}: {reason}"));
        }
        if env.warn_only() {
            output::warning(env, &msg);
            return Ok(entries);
        }
        Err(Error::new(ErrorKind::TaskFailed, msg))
    }
}

fn is_connection_failure(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect | ErrorKind::Auth | ErrorKind::HostKey | ErrorKind::Timeout
    ) && e.output().is_none()
}

fn with_host(e: Error, host: &str) -> Error {
    if e.host().is_some() {
        e
    } else {
        e.with_host(host)
    }
}

fn announce(env: &Env, host: &str, name: &str) {
    output::running_line(env, host, &format!("Executing task '{name}'"));
}

/// The settings a task runs with on `host`: Fabric's `host_string`,
/// `host`, `user` and `port` from the host string.
fn host_settings(host: &str, name: &str) -> Settings {
    let target = ssh::Target::parse(host);
    let mut s = Settings::new()
        .host_string(host)
        .host(target.host.clone())
        .set("command", name.to_string());
    if let Some(user) = target.user {
        s = s.user(user);
    }
    if let Some(port) = target.port {
        s = s.port(port);
    }
    s
}

/// Runs the task, turning a panic into an error.
fn run_caught<T>(task: &dyn Fn() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(task)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::new(
                ErrorKind::TaskFailed,
                format!("the task panicked: {what}"),
            ))
        }
    }
}

/// An error as it crosses from a worker to the caller.
#[derive(Serialize, Deserialize)]
struct ErrorParts {
    kind: ErrorKind,
    message: String,
    host: Option<String>,
    command: Option<String>,
    output: Option<Output>,
}

impl ErrorParts {
    fn from(e: &Error) -> ErrorParts {
        ErrorParts {
            kind: e.kind(),
            message: e.message().to_string(),
            host: e.host().map(String::from),
            command: e.command().map(String::from),
            output: e.output().cloned(),
        }
    }

    fn into_error(self) -> Error {
        let mut e = Error::new(self.kind, self.message);
        if let Some(o) = self.output {
            e = e.with_output(o);
        }
        if let Some(c) = self.command {
            e = e.with_command(c);
        }
        if let Some(h) = self.host {
            e = e.with_host(h);
        }
        e
    }
}

#[derive(Serialize, Deserialize)]
enum Report {
    Ok(serde_json::Value),
    Err(ErrorParts),
}

mod parallel {
    use super::*;

    /// One running worker.
    struct Worker {
        index: usize,
        pid: libc::pid_t,
        fds: [RawFd; 3],
        open: [bool; 3],
        partial: [Vec<u8>; 2],
        block: [Vec<u8>; 2],
        report: Vec<u8>,
        status: Option<i32>,
        exited_at: Option<Instant>,
    }

    fn pipe() -> Result<(RawFd, RawFd)> {
        let mut fds = [0; 2];
        // SAFETY: plain syscall on a two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::io(
                "execute() cannot create a pipe",
                std::io::Error::last_os_error(),
            ));
        }
        Ok((fds[0], fds[1]))
    }

    pub(super) fn run<T, F>(
        name: &str,
        jobs: Vec<(String, Settings)>,
        pool: usize,
        blocks: bool,
        task: &F,
    ) -> Result<Vec<(String, Result<T>)>>
    where
        F: Fn() -> Result<T>,
        T: Serialize + DeserializeOwned,
    {
        let snapshot = env();
        let hosts: Vec<String> = jobs.iter().map(|(h, _)| h.clone()).collect();
        let mut results: Vec<Option<Result<T>>> = hosts.iter().map(|_| None).collect();
        let mut pending: std::collections::VecDeque<(usize, Settings)> =
            jobs.into_iter().map(|(_, s)| s).enumerate().collect();
        let mut running: HashMap<libc::pid_t, Worker> = HashMap::new();
        let mut killing_since: Option<Instant> = None;

        while !pending.is_empty() || !running.is_empty() {
            let interrupted = INTERRUPTED.load(Ordering::SeqCst);
            if interrupted {
                pending.clear();
                let since = *killing_since.get_or_insert_with(|| {
                    for w in running.values() {
                        // SAFETY: each worker leads its own process group.
                        unsafe { libc::killpg(w.pid, libc::SIGTERM) };
                    }
                    Instant::now()
                });
                if since.elapsed() > Duration::from_secs(3) {
                    for w in running.values() {
                        // SAFETY: as above.
                        unsafe { libc::killpg(w.pid, libc::SIGKILL) };
                    }
                }
            }
            while running.len() < pool {
                let Some((index, settings)) = pending.pop_front() else {
                    break;
                };
                let worker = spawn(
                    index,
                    &hosts[index],
                    name,
                    &snapshot,
                    settings,
                    task,
                    &running,
                )?;
                running.insert(worker.pid, worker);
            }
            pump(&mut running, blocks);
            // Reap finished workers.
            let mut done = Vec::new();
            for (pid, w) in running.iter_mut() {
                if w.status.is_none() {
                    let mut status = 0;
                    // SAFETY: our own child.
                    let r = unsafe { libc::waitpid(*pid, &mut status, libc::WNOHANG) };
                    if r == *pid {
                        w.status = Some(status);
                        w.exited_at = Some(Instant::now());
                    }
                }
                let all_closed = w.open.iter().all(|o| !o);
                // A process the worker left behind may hold its pipes open;
                // once the worker itself is gone, do not wait long for them.
                let lingering = w
                    .exited_at
                    .is_some_and(|t| t.elapsed() > Duration::from_secs(1));
                if w.status.is_some() && (all_closed || lingering) {
                    done.push(*pid);
                }
            }
            for pid in done {
                let mut w = running.remove(&pid).unwrap();
                close_all(&mut w);
                finish_output(&mut w);
                let host = &hosts[w.index];
                let result = if interrupted && w.report.is_empty() {
                    Err(interrupted_error(host))
                } else {
                    decode::<T>(&w, host)
                };
                results[w.index] = Some(result);
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Interrupted,
                format!(
                    "interrupted (Ctrl-C) while executing task '{name}'; every worker was stopped"
                ),
            ));
        }
        Ok(hosts
            .into_iter()
            .zip(results)
            .map(|(h, r)| (h, r.expect("every job finished")))
            .collect())
    }

    fn decode<T: DeserializeOwned>(w: &Worker, host: &str) -> Result<T> {
        if !w.report.is_empty() {
            return match serde_json::from_slice::<Report>(&w.report) {
                Ok(Report::Ok(v)) => serde_json::from_value(v).map_err(|e| {
                    Error::new(
                        ErrorKind::TaskFailed,
                        format!("the task's result could not be read back: {e}"),
                    )
                    .with_host(host)
                }),
                Ok(Report::Err(parts)) => Err(with_host(parts.into_error(), host)),
                Err(e) => Err(Error::new(
                    ErrorKind::TaskFailed,
                    format!("the worker's report could not be read: {e}"),
                )
                .with_host(host)),
            };
        }
        let status = w.status.unwrap_or(0);
        let msg = if libc::WIFSIGNALED(status) {
            format!("worker killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!(
                "worker exited with code {} without reporting a result",
                libc::WEXITSTATUS(status)
            )
        };
        Err(Error::new(ErrorKind::TaskFailed, msg).with_host(host))
    }

    fn close_all(w: &mut Worker) {
        for i in 0..3 {
            if w.open[i] {
                // SAFETY: our own descriptor, closed once.
                unsafe { libc::close(w.fds[i]) };
                w.open[i] = false;
            }
        }
    }

    /// Waits up to 50 ms for output from any worker and handles it.
    fn pump(running: &mut HashMap<libc::pid_t, Worker>, blocks: bool) {
        let mut polls = Vec::new();
        let mut owners = Vec::new();
        for (pid, w) in running.iter() {
            for i in 0..3 {
                if w.open[i] {
                    polls.push(libc::pollfd {
                        fd: w.fds[i],
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    owners.push((*pid, i));
                }
            }
        }
        if polls.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        // SAFETY: a valid array of pollfd.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 50) };
        if n <= 0 {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        for (p, (pid, i)) in polls.iter().zip(owners) {
            if p.revents == 0 {
                continue;
            }
            let w = running.get_mut(&pid).unwrap();
            // SAFETY: reading into our own buffer from our own descriptor.
            let r = unsafe { libc::read(w.fds[i], buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                if r == 0
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    // SAFETY: our own descriptor, closed once.
                    unsafe { libc::close(w.fds[i]) };
                    w.open[i] = false;
                }
                continue;
            }
            let data = &buf[..r as usize];
            if i == 2 {
                w.report.extend_from_slice(data);
            } else if blocks {
                w.block[i].extend_from_slice(data);
            } else {
                w.partial[i].extend_from_slice(data);
                if let Some(end) = w.partial[i].iter().rposition(|&b| b == b'\n') {
                    let lines: Vec<u8> = w.partial[i].drain(..=end).collect();
                    output::emit(
                        if i == 0 { Pipe::Out } else { Pipe::Err },
                        &String::from_utf8_lossy(&lines),
                    );
                }
            }
        }
    }

    fn finish_output(w: &mut Worker) {
        for i in 0..2 {
            let pipe = if i == 0 { Pipe::Out } else { Pipe::Err };
            let mut rest = std::mem::take(&mut w.partial[i]);
            if !rest.is_empty() && !rest.ends_with(b"\n") {
                rest.push(b'\n');
            }
            if !rest.is_empty() {
                output::emit(pipe, &String::from_utf8_lossy(&rest));
            }
            let block = std::mem::take(&mut w.block[i]);
            if !block.is_empty() {
                let mut text = String::from_utf8_lossy(&block).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                output::emit(pipe, &text);
            }
        }
    }

    fn spawn<T, F>(
        index: usize,
        host: &str,
        name: &str,
        snapshot: &Env,
        settings: Settings,
        task: &F,
        running: &HashMap<libc::pid_t, Worker>,
    ) -> Result<Worker>
    where
        F: Fn() -> Result<T>,
        T: Serialize,
    {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        // Nothing buffered may be written twice, by parent and child.
        // (Standard error has no buffer.)
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        // SAFETY: fork; the child only runs the task and exits with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::io(
                "execute() cannot start a worker",
                std::io::Error::last_os_error(),
            ));
        }
        if pid == 0 {
            // The worker.
            // SAFETY: descriptor plumbing in the new process.
            unsafe {
                libc::setpgid(0, 0);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                libc::dup2(null, 0);
                libc::dup2(out_w, 1);
                libc::dup2(err_w, 2);
                for fd in [out_r, err_r, rep_r, out_w, err_w, null] {
                    libc::close(fd);
                }
                // Only descriptors still open in the parent: a closed one's
                // number may already belong to this worker's own pipes.
                for w in running.values() {
                    for (fd, open) in w.fds.iter().zip(w.open) {
                        if open {
                            libc::close(*fd);
                        }
                    }
                }
            }
            worker_signals();
            ssh::forget_all_after_fork();
            output::reset_after_fork();
            // The default panic hook prints through std's stderr lock, which
            // another thread of the parent may have held at the fork. A
            // panic is reported as this host's failure instead.
            std::panic::set_hook(Box::new(|_| {}));
            let report = {
                let _base = snapshot.clone().install();
                let _scope = crate::state::settings(settings.parallel(true).linewise(true));
                announce(&env(), host, name);
                match run_caught(task) {
                    Ok(v) => match serde_json::to_value(&v) {
                        Ok(v) => Report::Ok(v),
                        Err(e) => Report::Err(ErrorParts::from(&Error::new(
                            ErrorKind::TaskFailed,
                            format!("the task's result cannot be sent back: {e}"),
                        ))),
                    },
                    Err(e) => Report::Err(ErrorParts::from(&e)),
                }
            };
            let bytes = serde_json::to_vec(&report).unwrap_or_default();
            // SAFETY: writing our own buffer to our own pipe, then leaving
            // without running the parent's destructors or atexit handlers.
            unsafe {
                let mut off = 0;
                while off < bytes.len() {
                    let n = libc::write(rep_w, bytes[off..].as_ptr().cast(), bytes.len() - off);
                    if n <= 0 {
                        break;
                    }
                    off += n as usize;
                }
                libc::_exit(0);
            }
        }
        for fd in [out_w, err_w, rep_w] {
            // SAFETY: the parent's copies of the child's ends.
            unsafe { libc::close(fd) };
        }
        Ok(Worker {
            index,
            pid,
            fds: [out_r, err_r, rep_r],
            open: [true; 3],
            partial: [Vec::new(), Vec::new()],
            block: [Vec::new(), Vec::new()],
            report: Vec::new(),
            status: None,
            exited_at: None,
        })
    }

    /// In a worker: Ctrl-C is the caller's business (it stops workers with
    /// SIGTERM); SIGTERM stops the running remote commands, then the worker.
    fn worker_signals() {
        // SAFETY: signal-mask plumbing in a process with one thread.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        std::thread::spawn(|| {
            // SAFETY: waiting for the blocked signal in this thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                let mut sig = 0;
                libc::sigwait(&set, &mut sig);
            }
            ssh::interrupt_all();
            std::thread::sleep(Duration::from_secs(2));
            // SAFETY: leaving at once; the caller is stopping this worker.
            unsafe { libc::_exit(130) };
        });
    }
}

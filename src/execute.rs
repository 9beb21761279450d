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
//! others finish. Workers never outlive the call: they die with the caller
//! even when it is killed outright, and a call that returns early stops
//! and reaps the ones it started. When descriptors or processes run short,
//! fewer workers run at once instead of the run failing.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
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
    /// happened under `skip_bad_hosts`). Ctrl-C (or SIGTERM) stops every
    /// worker and every local or remote command running for the task, and
    /// gives an error of kind [`ErrorKind::Interrupted`]; a program should
    /// then exit with 130.
    ///
    /// The first parallel run raises the process's soft limit on open
    /// descriptors to its hard limit.
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
        let _active = interrupt::Active::new();
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
            if interrupt::interrupted() {
                return Err(interrupted_error(&host));
            }
            announce(env, &host, &self.name);
            let result =
                with_settings(settings, || run_caught(task)).map_err(|e| with_host(e, &host));
            let tolerated =
                |e: &Error| env.warn_only() || (env.skip_bad_hosts() && is_connection_failure(e));
            let result = match result {
                Err(e) if e.kind() == ErrorKind::Interrupted || interrupt::interrupted() => {
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

/// The parallel path.
///
/// The fork contract: a worker is a `fork()` of the caller, made by the
/// thread that runs `execute`. It inherits the caller's memory (the task,
/// the settings) and descriptors. Right after the fork it closes the other
/// workers' pipes and forgets the caller's SSH connections (their sockets
/// closed, nothing sent), reads /dev/null as standard input, writes its
/// standard output and error to its pipes, and leads a process group of
/// its own. It ignores SIGINT; SIGTERM stops its local and remote commands,
/// then the worker. It asks the kernel for that SIGTERM when its parent
/// dies (`PR_SET_PDEATHSIG`), and exits at once if the parent is already
/// gone. `PR_SET_PDEATHSIG` fires when the forking *thread* ends, not the
/// process, so the thread that forks stays in [`run`] until every worker
/// it started has been reaped, on every way out of it: an early error and
/// a panic included ([`Pool`] stops and reaps its workers when dropped). A
/// worker leaves with `_exit`, never returning into the caller's frames.
mod parallel {
    use std::collections::VecDeque;
    use std::io::{PipeReader, PipeWriter, Read, Write};
    use std::os::fd::AsRawFd;

    use super::*;

    /// How long stopped workers have after SIGTERM, before SIGKILL.
    const GRACE: Duration = Duration::from_secs(3);

    /// One started worker, until the caller has its result.
    struct Worker {
        index: usize,
        pid: libc::pid_t,
        /// Its stdout, stderr and report pipes; `None` once closed.
        pipes: [Option<PipeReader>; 3],
        partial: [Vec<u8>; 2],
        block: [Vec<u8>; 2],
        report: Vec<u8>,
        status: Option<i32>,
        exited_at: Option<Instant>,
    }

    impl Worker {
        /// Sends `sig` to the worker's process group, which holds what the
        /// worker started, or to the worker alone if there is no group yet.
        fn signal(&self, sig: libc::c_int) {
            // SAFETY: plain syscalls. The worker leads its own group; its
            // pid is not reused before it is reaped, and the group's id not
            // while any process is in the group.
            unsafe {
                if libc::killpg(self.pid, sig) != 0 && self.status.is_none() {
                    libc::kill(self.pid, sig);
                }
            }
        }

        /// Reaps the worker if it has exited; whether it has.
        fn try_reap(&mut self) -> bool {
            if self.status.is_none() {
                let mut status = 0;
                // SAFETY: our own child, not yet reaped.
                let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
                if r == self.pid {
                    self.status = Some(status);
                    self.exited_at = Some(Instant::now());
                } else if r < 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
                {
                    // Reaped elsewhere (SIGCHLD ignored): its status is lost.
                    self.status = Some(0);
                    self.exited_at = Some(Instant::now());
                }
            }
            self.status.is_some()
        }
    }

    /// The started workers. Dropped with workers still in it (an early
    /// error return, a panic), it stops and reaps them.
    struct Pool {
        workers: HashMap<libc::pid_t, Worker>,
        /// The process that started them.
        owner: libc::pid_t,
    }

    impl Drop for Pool {
        fn drop(&mut self) {
            // A copy made by fork() never stops its parent's workers (a
            // worker leaves with _exit, so this is only a safeguard).
            // SAFETY: plain syscall.
            if !self.workers.is_empty() && unsafe { libc::getpid() } == self.owner {
                stop(&mut self.workers);
            }
        }
    }

    /// Stops `workers` (SIGTERM, then SIGKILL for those still running after
    /// the grace period) and reaps every one.
    fn stop(workers: &mut HashMap<libc::pid_t, Worker>) {
        for w in workers.values() {
            w.signal(libc::SIGTERM);
        }
        let since = Instant::now();
        loop {
            workers.retain(|_, w| !w.try_reap());
            if workers.is_empty() {
                return;
            }
            if since.elapsed() > GRACE {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for w in workers.values() {
            w.signal(libc::SIGKILL);
        }
        for w in workers.values() {
            let mut status = 0;
            // SAFETY: our own child, not yet reaped; waiting for it to die.
            while unsafe { libc::waitpid(w.pid, &mut status, 0) } < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
        }
        workers.clear();
    }

    /// What could not be done to start a worker.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Pipe,
        Fork,
    }

    struct SpawnError {
        step: Step,
        err: std::io::Error,
    }

    impl SpawnError {
        /// Whether the process or the system ran out of descriptors or
        /// processes: finishing workers give them back.
        fn is_shortage(&self) -> bool {
            matches!(
                (self.step, self.err.raw_os_error()),
                (Step::Pipe, Some(libc::EMFILE | libc::ENFILE))
                    | (Step::Fork, Some(libc::EAGAIN | libc::ENOMEM))
            )
        }

        fn into_error(self, host: &str, name: &str) -> Error {
            let what = match self.step {
                Step::Pipe => "cannot create a pipe",
                Step::Fork => "cannot fork",
            };
            Error::io(
                format_args!(
                    "execute() cannot start a worker for {host} while executing task '{name}': {what}"
                ),
                self.err,
            )
            .with_host(host)
        }
    }

    pub(super) fn run<T, F>(
        name: &str,
        jobs: Vec<(String, Settings)>,
        pool_size: usize,
        blocks: bool,
        task: &F,
    ) -> Result<Vec<(String, Result<T>)>>
    where
        F: Fn() -> Result<T>,
        T: Serialize + DeserializeOwned,
    {
        crate::sys::raise_descriptor_limit();
        let snapshot = env();
        let hosts: Vec<String> = jobs.iter().map(|(h, _)| h.clone()).collect();
        let mut results: Vec<Option<Result<T>>> = hosts.iter().map(|_| None).collect();
        let mut pending: VecDeque<(usize, Settings)> =
            jobs.into_iter().map(|(_, s)| s).enumerate().collect();
        let mut pool = Pool {
            workers: HashMap::new(),
            // SAFETY: plain syscall.
            owner: unsafe { libc::getpid() },
        };
        // How many workers may run at once. When the process or the system
        // runs out of descriptors or processes, it shrinks to what fits.
        let mut room = pool_size;
        let mut killing_since: Option<Instant> = None;

        while !pending.is_empty() || !pool.workers.is_empty() {
            let interrupted = interrupt::interrupted();
            if interrupted {
                pending.clear();
                let since = *killing_since.get_or_insert_with(|| {
                    for w in pool.workers.values() {
                        w.signal(libc::SIGTERM);
                    }
                    Instant::now()
                });
                if since.elapsed() > GRACE {
                    for w in pool.workers.values() {
                        w.signal(libc::SIGKILL);
                    }
                }
            }
            while pool.workers.len() < room {
                let Some((index, settings)) = pending.pop_front() else {
                    break;
                };
                let host = &hosts[index];
                match spawn(index, host, name, &snapshot, &settings, task, &pool.workers) {
                    Ok(worker) => {
                        pool.workers.insert(worker.pid, worker);
                    }
                    Err(e) if e.is_shortage() && !pool.workers.is_empty() => {
                        // Try again once a worker has finished.
                        pending.push_front((index, settings));
                        room = pool.workers.len();
                        break;
                    }
                    Err(e) => return Err(e.into_error(host, name)),
                }
            }
            pump(&mut pool.workers, blocks);
            // Collect finished workers.
            let mut done = Vec::new();
            for (pid, w) in pool.workers.iter_mut() {
                w.try_reap();
                let all_closed = w.pipes.iter().all(Option::is_none);
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
                let mut w = pool.workers.remove(&pid).unwrap();
                w.pipes = [None, None, None];
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
        if interrupt::interrupted() {
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

    /// Waits up to 50 ms for output from any worker and handles it.
    fn pump(running: &mut HashMap<libc::pid_t, Worker>, blocks: bool) {
        let mut polls = Vec::new();
        let mut owners = Vec::new();
        for (pid, w) in running.iter() {
            for (i, pipe) in w.pipes.iter().enumerate() {
                if let Some(pipe) = pipe {
                    polls.push(libc::pollfd {
                        fd: pipe.as_raw_fd(),
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
            let Some(pipe) = w.pipes[i].as_mut() else {
                continue;
            };
            let n = match pipe.read(&mut buf) {
                Ok(0) => {
                    w.pipes[i] = None;
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    w.pipes[i] = None;
                    continue;
                }
            };
            let data = &buf[..n];
            if i == 2 {
                w.report.extend_from_slice(data);
            } else if blocks {
                w.block[i].extend_from_slice(data);
            } else {
                // Only the new bytes can end a line: searching the whole
                // pending line on each read would take time quadratic in
                // the line's length.
                let start = w.partial[i].len();
                w.partial[i].extend_from_slice(data);
                if let Some(end) = data.iter().rposition(|&b| b == b'\n') {
                    let rest = w.partial[i].split_off(start + end + 1);
                    let lines = std::mem::replace(&mut w.partial[i], rest);
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

    /// A worker's ends of its three pipes.
    struct WorkerEnds {
        out: PipeWriter,
        err: PipeWriter,
        report: PipeWriter,
    }

    /// Starts the worker for job `index` (see the fork contract above).
    fn spawn<T, F>(
        index: usize,
        host: &str,
        name: &str,
        snapshot: &Env,
        settings: &Settings,
        task: &F,
        running: &HashMap<libc::pid_t, Worker>,
    ) -> std::result::Result<Worker, SpawnError>
    where
        F: Fn() -> Result<T>,
        T: Serialize,
    {
        let pipe = || {
            std::io::pipe().map_err(|err| SpawnError {
                step: Step::Pipe,
                err,
            })
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        // Nothing buffered may be written twice, by parent and child.
        // (Standard error has no buffer.)
        let _ = std::io::stdout().flush();
        // SAFETY: plain syscall.
        let parent = unsafe { libc::getpid() };
        // SIGTERM stays blocked from before the fork until the worker's
        // thread waits for it, so that one sent early (the parent's death)
        // is not lost; the caller's mask comes back right after the fork.
        let mask = block_sigterm();
        // SAFETY: fork; the child only runs the worker and leaves with _exit.
        // The worker dies with this thread (see the fork contract above).
        let pid = unsafe { libc::fork() };
        let fork_error = std::io::Error::last_os_error();
        if pid == 0 {
            die_with(parent);
            drop((out_r, err_r, rep_r));
            let ends = WorkerEnds {
                out: out_w,
                err: err_w,
                report: rep_w,
            };
            worker(ends, host, name, snapshot, settings, task, running);
        }
        // SAFETY: restoring the mask saved above, in this thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
        if pid < 0 {
            return Err(SpawnError {
                step: Step::Fork,
                err: fork_error,
            });
        }
        // The worker puts itself in a group of its own too: whichever call
        // comes first, the group exists once fork() has returned here, and
        // a signal to it cannot miss the worker.
        // SAFETY: plain syscall on our own child.
        unsafe { libc::setpgid(pid, pid) };
        // The worker's ends are closed here: the readers see EOF once the
        // worker, and whatever it started, are done with them.
        drop((out_w, err_w, rep_w));
        Ok(Worker {
            index,
            pid,
            pipes: [Some(out_r), Some(err_r), Some(rep_r)],
            partial: [Vec::new(), Vec::new()],
            block: [Vec::new(), Vec::new()],
            report: Vec::new(),
            status: None,
            exited_at: None,
        })
    }

    /// Blocks SIGTERM in the calling thread; returns the mask before.
    fn block_sigterm() -> libc::sigset_t {
        // SAFETY: signal-mask plumbing on local sets, in this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            old
        }
    }

    /// In a new worker: asks for SIGTERM when the thread that forked it
    /// ends (`PR_SET_PDEATHSIG`), and leaves at once if `parent` is already
    /// gone, since then no signal would come.
    fn die_with(parent: libc::pid_t) {
        // SAFETY: plain syscalls in the new process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
    }

    /// The worker process, once it dies with its parent: never returns.
    fn worker<T, F>(
        ends: WorkerEnds,
        host: &str,
        name: &str,
        snapshot: &Env,
        settings: &Settings,
        task: &F,
        running: &HashMap<libc::pid_t, Worker>,
    ) -> !
    where
        F: Fn() -> Result<T>,
        T: Serialize,
    {
        // SAFETY: process plumbing in the new process, which has one
        // thread: ignore Ctrl-C, lead a process group.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::setpgid(0, 0);
        }
        // Nothing may unwind into the caller's frames, which this process
        // has a copy of: a panic here ends the worker.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let WorkerEnds { out, err, report } = ends;
            // SAFETY: descriptor plumbing in this process: its pipes become
            // standard output and error, the caller's descriptors of the
            // other workers' pipes are closed (only those still open: a
            // closed one's number may already be one of this worker's own
            // pipes), and /dev/null becomes standard input.
            unsafe {
                libc::dup2(out.as_raw_fd(), 1);
                libc::dup2(err.as_raw_fd(), 2);
                for w in running.values() {
                    for pipe in w.pipes.iter().flatten() {
                        libc::close(pipe.as_raw_fd());
                    }
                }
            }
            drop((out, err));
            // SAFETY: as above.
            unsafe {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if null < 0 {
                    libc::close(0);
                } else if null != 0 {
                    libc::dup2(null, 0);
                    libc::close(null);
                }
            }
            ssh::forget_all_after_fork();
            output::reset_after_fork();
            interrupt::reset_after_fork();
            // The default panic hook prints through std's stderr lock, which
            // another thread of the parent may have held at the fork. A
            // panic is reported as this host's failure instead.
            std::panic::set_hook(Box::new(|_| {}));
            worker_signals();
            let result = {
                let _base = snapshot.clone().install();
                let _scope = crate::state::settings(settings.clone().parallel(true));
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
            let bytes = serde_json::to_vec(&result).unwrap_or_default();
            let mut report = report;
            let _ = report.write_all(&bytes);
        }));
        // SAFETY: leaving without running the caller's destructors or
        // atexit handlers.
        unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 101 }) }
    }

    /// In a worker: Ctrl-C is the caller's business (it stops workers with
    /// SIGTERM). SIGTERM, from the caller or at its death, stops the running
    /// local and remote commands, then the worker. SIGTERM is blocked since
    /// before the fork; a thread waits for it.
    fn worker_signals() {
        let waiter = std::thread::Builder::new().spawn(|| {
            // SAFETY: waiting for the blocked signal in this thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                let mut sig = 0;
                libc::sigwait(&set, &mut sig);
            }
            interrupt::stop_worker();
            std::thread::sleep(Duration::from_secs(2));
            // SAFETY: leaving at once; the caller is stopping this worker.
            unsafe { libc::_exit(130) };
        });
        if waiter.is_err() {
            // No thread to stop the commands: SIGTERM ends the worker at
            // once instead.
            // SAFETY: signal plumbing in a process with one thread.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
        }
    }
}

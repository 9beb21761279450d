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
//!
//! Why processes and not threads: Fabric 1.x runs parallel tasks in
//! processes (`multiprocessing`), and fabfiles rely on what that gives
//! without asking for it. A task that calls `set_env`, or changes the
//! process-wide defaults, changes them for its own host only; a task's
//! local commands write to the worker's standard output and error, which
//! are the worker's pipes, so even the output of a program twill does not
//! read reaches the caller through them and is printed in whole lines (or
//! one block per host); and standard input is /dev/null, so nothing a task
//! runs can take the caller's terminal. With
//! threads, each of these would be a rule every task and every operation
//! had to keep; with processes, they hold whatever the task does. The
//! price is the fork contract (see `worker.rs`): what a worker may inherit
//! from the caller's other threads, and that a result crosses back as
//! data, so a parallel run needs a task value that serde can carry
//! ([`Execute::run_serial`] has no such bound).
//!
//! `mod.rs` holds the API, Fabric's host-list rules and the serial loop;
//! `worker.rs` the fork pool and the worker's side; `wire.rs` what crosses
//! from a worker to the caller.

mod wire;
mod worker;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, EventKind, Outcome};
use crate::interrupt;
use crate::output;
use crate::ssh;
use crate::state::{env, with_settings, Env, Settings};

/// The results of a task, one per host, in the order of the host list.
#[derive(Debug)]
pub struct HostResults<T> {
    entries: Vec<(String, Result<T>)>,
}

/// The name of the one result of a run on no host at all.
pub(crate) const LOCAL_ONLY: &str = "<local-only>";

impl<T> HostResults<T> {
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn from_vec(entries: Vec<(String, Result<T>)>) -> HostResults<T> {
        HostResults { entries }
    }

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
///
/// With the `cli` feature, `Execute::task` starts from a task's own marks
/// (`#[roles]`, `#[hosts]`, `#[parallel]`, `#[serial]`, `#[runs_once]`),
/// which the hosts and roles given here override, as the `hosts=` and
/// `roles=` of Fabric's `execute(task, hosts=[...])` do.
///
/// When no host is found anywhere (none given here, none marked on the
/// task, and the `hosts` and `roles` settings empty), the task runs once,
/// in the current settings, as Fabric's `execute` does: locally, or on the
/// host of the enclosing `host_string` when a task running on a host calls
/// it. Since that is seldom what a call meant when it names no hosts, it
/// says so in a line of the `running` output group:
/// `[localhost] Executing task 'build' once, locally: ...`.
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
    marks: Marks,
    quiet_local: bool,
    /// Every host runs, and each failure stays in its host's result.
    per_host: bool,
    /// No `Executing task` line per host (a serial run's).
    unannounced: bool,
}

/// Fabric's per-task marks as `execute` reads them: `@hosts`, `@roles`,
/// `@serial`, `@parallel(pool_size=n)` and `@runs_once`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Marks {
    pub(crate) hosts: Vec<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) serial: bool,
    pub(crate) parallel: bool,
    pub(crate) pool_size: Option<usize>,
    pub(crate) runs_once: bool,
    /// Whether the task has run successfully in this process, for
    /// `runs_once`: one flag per task, shared by its copies.
    pub(crate) ran: Ran,
}

/// The flag behind `runs_once`: a static of the declaration for a task
/// made by `task!`, so that every `name::task()` shares it; shared by the
/// clones of any other task. A process-wide fact, as Fabric's (a parallel
/// worker's run stays in the worker, as it does in Fabric).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) enum Ran {
    Static(&'static AtomicBool),
    Shared(Arc<AtomicBool>),
}

impl Default for Ran {
    fn default() -> Ran {
        Ran::Shared(Arc::new(AtomicBool::new(false)))
    }
}

impl Ran {
    fn flag(&self) -> &AtomicBool {
        match self {
            Ran::Static(flag) => flag,
            Ran::Shared(flag) => flag,
        }
    }

    fn get(&self) -> bool {
        self.flag().load(Ordering::SeqCst)
    }

    fn set(&self) {
        self.flag().store(true, Ordering::SeqCst);
    }
}

/// threadbare's `execute_with_hosts`: runs `task` once per host of `hosts`,
/// else of the `hosts` and `roles` settings, with each as `host_string`;
/// serially unless the `parallel` setting is on. With no host anywhere it
/// is an error (threadbare's `'hosts' must be a non-empty list`), never a
/// run in the current settings. The task's name in messages is the
/// function's name.
///
/// ```
/// use twill::{execute_with_hosts, with_settings, Settings};
///
/// let err = with_settings(Settings::new().unset("hosts"), || {
///     execute_with_hosts(|| Ok(1), &[])
/// })
/// .unwrap_err();
/// assert_eq!(err.kind(), twill::ErrorKind::Settings);
/// ```
pub fn execute_with_hosts<T, F>(task: F, hosts: &[&str]) -> Result<HostResults<T>>
where
    F: Fn() -> Result<T>,
    T: Serialize + DeserializeOwned,
{
    let name = std::any::type_name::<F>();
    let name = name
        .rsplit("::")
        .find(|s| !s.starts_with('{'))
        .unwrap_or(name);
    let exec = Execute::new(name).hosts(hosts.iter().copied());
    // Before `only_hosts`: a task a retry leaves without hosts is skipped,
    // not an error.
    if exec.full_host_list(&env())?.is_empty() {
        return Err(Error::new(
            ErrorKind::Settings,
            format!(
                "execute_with_hosts() found no host to run task '{name}' on: none given, and none in the hosts and roles settings"
            ),
        ));
    }
    exec.run(task)
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
            marks: Marks::default(),
            quiet_local: false,
            per_host: false,
            unannounced: false,
        }
    }

    /// The task's own marks, below the hosts and roles given here.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn marks(mut self, marks: Marks) -> Self {
        self.marks = marks;
        self
    }

    /// Runs a task without hosts once without the line that says so (the
    /// command line's top-level tasks, where Fabric prints nothing).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn quiet_local(mut self) -> Self {
        self.quiet_local = true;
        self
    }

    /// Runs every host to the end, serially too, and keeps each host's
    /// failure in its result instead of ending the run with an error (a
    /// tree's actions, whose caller decides what a failure means). An
    /// interrupt still ends the run.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn per_host(mut self) -> Self {
        self.per_host = true;
        self
    }

    /// Runs serially without Fabric's `Executing task` line per host (a
    /// tree's hosts container: its operations print their own lines).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn unannounced(mut self) -> Self {
        self.unannounced = true;
        self
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
    /// else those marked on the task (`Execute::task`), else the `hosts`
    /// and `roles` settings; duplicates removed (keeping the first) and
    /// excluded hosts left out when `dedupe_hosts` is on. A `runs_once`
    /// task keeps only the first host.
    ///
    /// When the `only_hosts` setting is set (`--retry-failed` sets it), a
    /// task that is not `runs_once` keeps only the hosts in it.
    pub fn host_list(&self) -> Result<Vec<String>> {
        let env = env();
        let mut all = self.full_host_list(&env)?;
        let only = env.only_hosts();
        if !only.is_empty() && !self.marks.runs_once {
            all.retain(|h| only.contains(h));
        }
        Ok(all)
    }

    /// [`host_list`](Execute::host_list) before `only_hosts`.
    fn full_host_list(&self, env: &Env) -> Result<Vec<String>> {
        let (hosts, roles) = if !self.hosts.is_empty() || !self.roles.is_empty() {
            (self.hosts.clone(), self.roles.clone())
        } else if !self.marks.hosts.is_empty() || !self.marks.roles.is_empty() {
            (self.marks.hosts.clone(), self.marks.roles.clone())
        } else {
            (env.hosts(), env.roles())
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
            let excluded = env.exclude_hosts();
            let exclude: Vec<&String> = excluded.iter().chain(&self.exclude).collect();
            all.retain(|h| !exclude.contains(&h));
        }
        if self.marks.runs_once {
            all.truncate(1);
        }
        Ok(all)
    }

    /// Whether the run goes parallel: as asked here, else by the marks
    /// (`runs_once` runs serially; `parallel` beats `serial`, as in
    /// Fabric), else the `parallel` setting.
    fn is_parallel(&self, env: &Env) -> bool {
        self.parallel.unwrap_or_else(|| {
            if self.marks.runs_once {
                false
            } else if self.marks.parallel {
                true
            } else if self.marks.serial {
                false
            } else {
                env.parallel()
            }
        })
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
    /// A parallel run whose caller has a terminal on standard input and
    /// output shows the live view (with the `live` feature, on by
    /// default): one row per host with its state, time, command and last
    /// line, and the chosen host's output, drawn from the run's events
    /// instead of Fabric's interleaved lines, then a summary once the
    /// terminal is given back. The `live` setting turns it off (`false`,
    /// `--linewise`) or asks for it (`true`, `--live`). Inside tmux the
    /// `panes` setting (`--panes`) opens a pane per running host instead,
    /// streaming its output; what is typed in a host's pane is that
    /// worker's standard input, and so reaches a remote command that has a
    /// pty. That is the one case where a parallel worker gets input: its
    /// standard input is /dev/null otherwise.
    ///
    /// A parallel worker's value crosses back to the caller serialized, so
    /// `T` must be serde's to carry whichever way the run goes; a run that
    /// is serial by design can use [`run_serial`](Execute::run_serial),
    /// which takes any `T`.
    ///
    /// A task marked `runs_once` runs on the first host of its list only,
    /// and once per process: after a successful run, later runs of the
    /// same task run nothing and return no results, as Fabric's
    /// `@runs_once` returns its first value without running again.
    ///
    /// With no host anywhere, the task runs once in the current settings
    /// and says so (see [`Execute`]); its one result is under
    /// `<local-only>`.
    ///
    /// The first parallel run raises the process's soft limit on open
    /// descriptors to its hard limit.
    pub fn run<T, F>(&self, task: F) -> Result<HostResults<T>>
    where
        F: Fn() -> Result<T>,
        T: Serialize + DeserializeOwned,
    {
        self.frame(&task, |env, jobs| {
            if !self.is_parallel(env) {
                return self.serial(env, jobs, &task);
            }
            if env.dry_run() {
                // Said once here, not once in each worker.
                crate::operations::dry_run::announce();
            }
            let pool = match self
                .pool_size
                .or(self.marks.pool_size)
                .unwrap_or_else(|| env.pool_size())
            {
                0 => jobs.len(),
                n => n.min(jobs.len()),
            };
            let entries = worker::run(&self.name, jobs, pool, self.blocks, &task)?;
            self.judge_parallel(env, entries)
        })
    }

    /// What every run does around its hosts: nothing for a `runs_once`
    /// task that already ran, the plan, a skip or a run without hosts,
    /// the interrupt's scope, and the `runs_once` record; `hosts` runs
    /// the jobs.
    fn frame<T, F>(
        &self,
        task: &F,
        hosts: impl FnOnce(&Env, Vec<(String, Settings)>) -> Result<Vec<(String, Result<T>)>>,
    ) -> Result<HostResults<T>>
    where
        F: Fn() -> Result<T>,
    {
        if self.already_ran() {
            return Ok(HostResults {
                entries: Vec::new(),
            });
        }
        let env = env();
        let Some(jobs) = self.jobs(&env)? else {
            return Ok(self.skipped());
        };
        if jobs.is_empty() {
            return self.run_locally(&env, task);
        }
        let _active = interrupt::Active::new();
        let entries = hosts(&env, jobs)?;
        self.record_run(&entries);
        Ok(HostResults { entries })
    }

    /// Whether this is a `runs_once` task that already ran.
    fn already_ran(&self) -> bool {
        self.marks.runs_once && self.marks.ran.get()
    }

    /// Records a successful run of a `runs_once` task.
    fn record_run<T>(&self, entries: &[(String, Result<T>)]) {
        if self.marks.runs_once && entries.iter().all(|(_, r)| r.is_ok()) {
            self.marks.ran.set();
        }
    }

    /// Runs `task` once per host (or per value), serially, whatever
    /// [`parallel`](Execute::parallel) and the `parallel` setting say; the
    /// task's value never leaves this thread, so it can be of any type.
    ///
    /// Everything else is as in a serial [`run`](Execute::run): the hosts
    /// run one after the other in this thread, the first failure stops the
    /// run and is returned (unless `warn_only`, or `skip_bad_hosts` for a
    /// connection failure, lets the run go on), and Ctrl-C gives an error
    /// of kind [`ErrorKind::Interrupted`]. `pool_size` and
    /// [`output_blocks`](Execute::output_blocks) play no part.
    ///
    /// ```
    /// use twill::{env, Execute, Settings, with_settings};
    ///
    /// /// A value serde could not carry to another process.
    /// struct Release {
    ///     stage: String,
    ///     notes: Box<dyn Fn() -> String>,
    /// }
    ///
    /// let results = with_settings(Settings::new().hide("running"), || {
    ///     Execute::new("release")
    ///         .param("stage", ["staging", "production"])
    ///         .run_serial(|| {
    ///             let stage = env().get_str("stage").unwrap_or_default().to_string();
    ///             let shown = stage.clone();
    ///             Ok(Release { stage, notes: Box::new(move || format!("released to {shown}")) })
    ///         })
    /// })?;
    /// assert_eq!(results.hosts(), ["staging", "production"]);
    /// let release = results.get("production").unwrap().as_ref().unwrap();
    /// assert_eq!(release.stage, "production");
    /// assert_eq!((release.notes)(), "released to production");
    /// # Ok::<(), twill::Error>(())
    /// ```
    pub fn run_serial<T, F>(&self, task: F) -> Result<HostResults<T>>
    where
        F: Fn() -> Result<T>,
    {
        self.frame(&task, |env, jobs| self.serial(env, jobs, &task))
    }

    /// One job per host (or per value): its name and the settings it runs
    /// with; recorded as the task's plan. `None` when `only_hosts` leaves
    /// none of the task's hosts.
    fn jobs(&self, env: &Env) -> Result<Option<Vec<(String, Settings)>>> {
        let jobs: Vec<(String, Settings)> = match &self.param {
            Some((key, values)) => values
                .iter()
                .map(|v| (v.clone(), Settings::new().set(key.clone(), v.clone())))
                .collect(),
            None => {
                let hosts = self.host_list()?;
                if hosts.is_empty()
                    && !env.only_hosts().is_empty()
                    && !self.full_host_list(env)?.is_empty()
                {
                    return Ok(None);
                }
                hosts
                    .into_iter()
                    .map(|h| {
                        let s = host_settings(&h, &self.name);
                        (h, s)
                    })
                    .collect()
            }
        };
        if !jobs.is_empty() {
            events::emit(
                env,
                EventKind::TaskPlanned {
                    task: self.name.clone(),
                    hosts: jobs.iter().map(|(h, _)| h.clone()).collect(),
                },
            );
        }
        Ok(Some(jobs))
    }

    /// A task none of whose hosts is in `only_hosts`: it runs nowhere.
    fn skipped<T>(&self) -> HostResults<T> {
        output::status(&format!(
            "Skipping task '{}': none of its hosts is among the hosts to run on (only_hosts)",
            self.name
        ));
        HostResults {
            entries: Vec::new(),
        }
    }

    /// Fabric: no hosts means the task runs once, in the current settings
    /// (locally, or on the current host inside a task that runs on one).
    /// twill says so, unless the command line runs it as a top-level task.
    fn run_locally<T, F>(&self, env: &Env, task: &F) -> Result<HostResults<T>>
    where
        F: Fn() -> Result<T>,
    {
        if !self.quiet_local && self.param.is_none() {
            let why = "it has no hosts (none given to execute, none marked on the task, and the hosts and roles settings are empty)";
            match env.host_string() {
                Some(host) => output::running_line(
                    env,
                    &host,
                    &format!(
                        "Executing task '{}' once, on the current host only: {why}",
                        self.name
                    ),
                ),
                None => output::running_line(
                    env,
                    "localhost",
                    &format!("Executing task '{}' once, locally: {why}", self.name),
                ),
            }
        }
        let host = env.host_string();
        task_started(env, host.as_deref(), &self.name);
        let value = with_settings(Settings::new().set("command", self.name.clone()), task);
        task_ended(env, host.as_deref(), &self.name, &value);
        let entries = vec![(LOCAL_ONLY.to_string(), Ok(value?))];
        self.record_run(&entries);
        Ok(HostResults { entries })
    }

    /// The serial loop.
    fn serial<T, F>(
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
            let result = with_settings(settings, || {
                // Inside the host's settings, so that the line is the
                // host's in the run's record.
                let env = crate::state::env();
                if !self.unannounced {
                    announce(&env, &host, &self.name);
                }
                task_started(&env, Some(&host), &self.name);
                let result = run_caught(task);
                task_ended(&env, Some(&host), &self.name, &result);
                result
            })
            .map_err(|e| with_host(e, &host));
            let tolerated = |e: &Error| {
                self.per_host
                    || env.warn_only()
                    || (env.skip_bad_hosts() && is_connection_failure(e))
            };
            let result = match result {
                Err(e) if e.kind() == ErrorKind::Interrupted || interrupt::interrupted() => {
                    return Err(interrupted_error(&host))
                }
                Err(e) if !tolerated(&e) => return Err(e),
                other => other,
            };
            match &result {
                Err(e) if !self.per_host => output::warning(env, e.message()),
                _ => {}
            }
            entries.push((host, result));
            if env.eagerly_disconnect() {
                crate::operations::remote::disconnect_all();
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
        if counted.is_empty() || self.per_host {
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

pub(crate) fn is_connection_failure(e: &Error) -> bool {
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

/// A task starts on `host` (a host string, or `Execute::param`'s value;
/// `None`: locally).
fn task_started(env: &Env, host: Option<&str>, name: &str) {
    events::emit_for(
        env,
        host.map(str::to_string),
        EventKind::TaskStarted {
            task: name.to_string(),
        },
    );
}

/// A task ended on `host` with `result`.
fn task_ended<T>(env: &Env, host: Option<&str>, name: &str, result: &Result<T>) {
    if !events::enabled() {
        return;
    }
    let (outcome, error) = match result {
        Ok(_) => (Outcome::Ok, None),
        Err(e) if e.kind() == ErrorKind::Interrupted => {
            (Outcome::Interrupted, Some(e.message().to_string()))
        }
        Err(e) => (Outcome::Failed, Some(e.message().to_string())),
    };
    events::emit_for(
        env,
        host.map(str::to_string),
        EventKind::TaskEnded {
            task: name.to_string(),
            outcome,
            error,
        },
    );
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

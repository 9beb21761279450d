//! Fabric's `fab` command line for Rust tasks.
//!
//! A program declares its tasks with [`task!`](crate::task!), Fabric's
//! decorators written as attributes above each, lists them in a [`Tasks`]
//! value and hands it the command line with [`Tasks::main`]; it gets
//! Fabric's options, `-l`/`-d`, task arguments (`deploy:main,restart=yes`),
//! several tasks in one call, host lists, roles, parallel runs, and
//! Fabric's closing lines and exit codes. A task runs another on that
//! one's hosts with its `execute` (`restart::execute(...)`), or by name
//! with [`Tasks::execute`].
//!
//! ```no_run
//! use twill::{run, set_defaults, sudo, task, Settings, Tasks};
//!
//! task! {
//!     /// Show the kernel version.
//!     fn kernel() -> twill::Result<()> {
//!         run("uname -r")?;
//!         Ok(())
//!     }
//! }
//!
//! task! {
//!     /// Restart a service.
//!     #[roles("web")]
//!     #[parallel]
//!     fn restart(service: String = "nginx", wait: Option<u32>) -> twill::Result<()> {
//!         sudo(&format!("systemctl restart {service}"))?;
//!         if let Some(seconds) = wait {
//!             run(&format!("sleep {seconds}"))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     set_defaults(Settings::new().roledefs([("web", ["web1", "web2"])])).unwrap();
//!     Tasks::new().tasks([kernel::task(), restart::task()]).main()
//! }
//! // $ my-fab restart:wait=2              (web1 and web2, at once)
//! // $ my-fab restart:apache,hosts=web3   (web3 alone)
//! // $ my-fab -H db1,db2 kernel           (no marks: the hosts of -H)
//! ```

mod args;
mod argv;
mod log;
mod run;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[cfg(feature = "shell")]
pub(crate) use args::parse_task_call;
#[doc(hidden)]
pub use args::{arg_default, ArgDefault, TaskReturn};
pub use args::{FromArg, TaskArgs};

use crate::error::{Error, ErrorKind, Result};
use crate::execute::{Execute, HostResults, Marks, Ran};

/// The body of a task: called with the name it runs under and its
/// arguments.
type Body = Arc<dyn Fn(&str, &TaskArgs) -> Result<()> + Send + Sync>;

/// A parameter of a task made by `task!`: its name, whether it may be left
/// out, how its values are described, and its default as written.
type Param = (&'static str, bool, &'static str, Option<&'static str>);

/// A task: a function the command line can run, with its name, its
/// documentation, its parameters and Fabric's per-task marks (`@hosts`,
/// `@roles`, `@parallel`, `@serial`, `@runs_once`, and `@task`'s `alias`,
/// `name` and `default`).
///
/// Declare tasks with [`task!`](crate::task!), which keeps the function as
/// you wrote it, reads the marks written above it, and gives it a
/// `task()` descriptor and an `execute(...)`; or build one from a closure
/// with [`Task::new`] and add the marks with the methods below.
#[derive(Clone)]
pub struct Task {
    name: String,
    doc: String,
    /// `None`: a closure task that takes whatever it is given.
    params: Option<Vec<Param>>,
    body: Body,
    /// Converts the arguments without running anything (macro tasks).
    validate: Option<Body>,
    marks: Marks,
    aliases: Vec<String>,
    is_default: bool,
    /// How many of the words after the task's name it takes as arguments.
    words: usize,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field(
                "params",
                &self
                    .params
                    .iter()
                    .flatten()
                    .map(|p| p.0)
                    .collect::<Vec<_>>(),
            )
            .field("hosts", &self.marks.hosts)
            .field("roles", &self.marks.roles)
            .field("parallel", &self.marks.parallel)
            .field("pool_size", &self.marks.pool_size)
            .field("serial", &self.marks.serial)
            .field("runs_once", &self.marks.runs_once)
            .field("aliases", &self.aliases)
            .field("default", &self.is_default)
            .field("words", &self.words)
            .finish()
    }
}

impl Task {
    /// A task from a closure that receives the raw arguments (and checks
    /// them itself).
    pub fn new(
        name: impl Into<String>,
        doc: impl Into<String>,
        body: impl Fn(&TaskArgs) -> Result<()> + Send + Sync + 'static,
    ) -> Task {
        Task::from_body(name.into(), doc.into(), Arc::new(move |_, args| body(args)))
    }

    fn from_body(name: String, doc: String, body: Body) -> Task {
        Task {
            name,
            doc,
            params: None,
            body,
            validate: None,
            marks: Marks::default(),
            aliases: Vec::new(),
            is_default: false,
            words: 0,
        }
    }

    #[doc(hidden)]
    pub fn __from_macro(
        name: &str,
        doc: &str,
        params: &[Param],
        ran: &'static AtomicBool,
        validate: impl Fn(&str, &TaskArgs) -> Result<()> + Send + Sync + 'static,
        body: impl Fn(&str, &TaskArgs) -> Result<()> + Send + Sync + 'static,
    ) -> Task {
        let doc = doc
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let mut t = Task::from_body(name.to_string(), doc.trim().to_string(), Arc::new(body));
        t.params = Some(params.to_vec());
        t.validate = Some(Arc::new(validate));
        t.marks.ran = Ran::Static(ran);
        t
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The task's documentation.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// Fabric's `@hosts(...)`: the hosts the task runs on when neither the
    /// command line's `task:hosts=...` nor the caller's `execute` names any
    /// for it (and, with them, the hosts of [`roles`](Task::roles)).
    pub fn hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Task {
        self.marks.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Fabric's `@roles(...)`: the hosts of these roles (the `roledefs`
    /// setting), as for [`hosts`](Task::hosts).
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Task {
        self.marks.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Fabric's `@parallel`: always run on the hosts in parallel (it beats
    /// [`serial`](Task::serial)).
    pub fn parallel(mut self) -> Task {
        self.marks.parallel = true;
        self
    }

    /// Fabric's `@parallel(pool_size=n)`: in parallel, at most `n` hosts at
    /// a time (it beats `-z`).
    pub fn pool_size(mut self, n: usize) -> Task {
        self.marks.parallel = true;
        self.marks.pool_size = Some(n);
        self
    }

    /// Fabric's `@serial`: never in parallel, even with `-P`.
    pub fn serial(mut self) -> Task {
        self.marks.serial = true;
        self
    }

    /// Fabric's `@runs_once`: run on the first host of the list only, and
    /// once per process: once it has succeeded, running it again (another
    /// `execute`, the same task twice on the command line) runs nothing.
    /// Serial.
    pub fn runs_once(mut self) -> Task {
        self.marks.runs_once = true;
        self
    }

    /// Fabric's `@task(alias="...")`: another name the command line and
    /// [`Tasks::execute`] know the task by; `-l` lists it too.
    pub fn alias(mut self, name: impl Into<String>) -> Task {
        self.aliases.push(name.into());
        self
    }

    /// Fabric's `@task(name="...")`: the task's name, instead of its
    /// function's (for a name Rust does not allow, such as `type`).
    pub fn rename(mut self, name: impl Into<String>) -> Task {
        self.name = name.into();
        self
    }

    /// Fabric's `@task(default=True)`: the task a namespace runs when the
    /// command line names the namespace alone (`my-fab db` for `db.status`);
    /// at the top level, the task run when the command line names none.
    pub fn default_task(mut self) -> Task {
        self.is_default = true;
        self
    }

    /// On the command line, the task takes the `count` words after its name
    /// as its positional arguments, verbatim (no splitting at commas, no
    /// escapes): `put LOCAL REMOTE` rather than `put:LOCAL,REMOTE`. Options
    /// may still come between the words, as anywhere on the command line.
    /// Written with a colon (`put:a,b`), the task takes its arguments from
    /// there instead.
    ///
    /// ```
    /// use twill::Task;
    ///
    /// let send = Task::new("send", "Upload FROM to TO on every host: send FROM TO", |args| {
    ///     let [from, to] = args.positional() else {
    ///         return Err(twill::Error::new(twill::ErrorKind::Usage, "send needs two paths"));
    ///     };
    ///     twill::put(from, to)?;
    ///     Ok(())
    /// })
    /// .takes_words(2);
    /// # let _ = send;
    /// // $ my-fab -H web1 send 'notes, 2024.txt' /srv/
    /// ```
    pub fn takes_words(mut self, count: usize) -> Task {
        self.words = count;
        self
    }

    /// Runs the task's body with these arguments, in the current settings,
    /// once (no host list, no marks: see [`Tasks::execute`] for that).
    pub fn call(&self, args: &TaskArgs) -> Result<()> {
        (self.body)(&self.name, args)
    }

    /// Runs the body under the name it was called by (an alias, a dotted
    /// name), which its argument errors name.
    pub(crate) fn call_as(&self, name: &str, args: &TaskArgs) -> Result<()> {
        (self.body)(name, args)
    }

    /// The marks written on the task.
    pub(crate) fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Checks that `args` fit the task's parameters, without running it.
    pub(crate) fn check_args(&self, call_name: &str, args: &TaskArgs) -> Result<()> {
        if let Some(params) = &self.params {
            args.check(call_name, params)?;
        }
        match &self.validate {
            Some(v) => v(call_name, args),
            None => Ok(()),
        }
    }

    /// The names of its parameters (none known for a closure task).
    #[cfg_attr(not(feature = "shell"), allow(dead_code))]
    pub(crate) fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().flatten().map(|p| p.0).collect()
    }

    /// Fabric's `Arguments:` line of `-d`: `a, b='main', c=None`.
    pub(crate) fn signature(&self) -> String {
        let Some(params) = &self.params else {
            return "*args, **kwargs".to_string();
        };
        params
            .iter()
            .map(|(name, optional, _, default)| match default {
                Some(text) => format!("{name}={}", args::shown_default(text)),
                None if *optional => format!("{name}=None"),
                None => name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Execute {
    /// Fabric's `execute(task)`: a run of `task` (the `cli` feature) named
    /// after it, whose host list, serial or parallel run, pool size and
    /// `runs_once` come from the marks written on the task. Hosts and roles
    /// given to the builder beat the task's, which beat the `hosts` and
    /// `roles` settings (`-H`, `-R`); [`parallel`](Execute::parallel) and
    /// [`pool_size`](Execute::pool_size) beat the marks too.
    ///
    /// `task!` gives every task an `execute(...)` that calls this with the
    /// function itself; the builder is for what that does not do: other
    /// hosts (Fabric's `execute(task, hosts=[...])`) or the task's values.
    ///
    /// ```
    /// use twill::{env, task, with_settings, Execute, Settings};
    ///
    /// task! {
    ///     /// Where the release lives.
    ///     #[roles("web")]
    ///     fn release_dir() -> twill::Result<String> {
    ///         Ok(format!("/srv/app on {}", env().host_string().unwrap_or("-".into())))
    ///     }
    /// }
    ///
    /// # fn main() -> twill::Result<()> {
    /// let web = Settings::new().roledefs([("web", ["web1", "web2"])]).hide("running");
    /// with_settings(web, || {
    ///     // The task's roles...
    ///     assert_eq!(Execute::task(&release_dir::task()).host_list()?, ["web1", "web2"]);
    ///     // ...unless the caller names other hosts: execute(release_dir, hosts=["web3"]).
    ///     let on_web3 = Execute::task(&release_dir::task()).hosts(["web3"]);
    ///     assert_eq!(on_web3.host_list()?, ["web3"]);
    ///     // Nothing here connects, so run it where it connects nowhere:
    ///     let dirs = on_web3.run_serial(release_dir)?;
    ///     assert_eq!(dirs.get("web3").unwrap().as_ref().unwrap(), "/srv/app on web3");
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn task(task: &Task) -> Execute {
        Execute::new(task.name.clone()).marks(task.marks.clone())
    }
}

/// A program's tasks, possibly in namespaces (`db.migrate`), and the
/// command line that runs them.
///
/// Passwords are best given to the command line in the environment,
/// `TWILL_PASSWORD` (login and sudo) and `TWILL_SUDO_PASSWORD` (sudo only),
/// or in a file (`--password-file PATH`, `--sudo-password-file PATH`):
/// any local user can read a process's command line. An option beats the
/// environment. `-p`, `--sudo-password` and `--set password=...` still
/// work, with a warning; once the command line is parsed, their values are
/// overwritten with `x` where the system shows it (`/proc/<pid>/cmdline`
/// on Linux), for the program and for the parallel workers it forks.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tasks: Vec<Task>,
    namespaces: Vec<(String, Tasks)>,
    name: Option<String>,
}

impl Tasks {
    /// An empty task list.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Adds a task.
    pub fn task(mut self, task: Task) -> Tasks {
        self.tasks.push(task);
        self
    }

    /// Adds every task of `tasks`, in one line:
    /// `Tasks::new().tasks([deploy::task(), migrate::task()])`.
    pub fn tasks(mut self, tasks: impl IntoIterator<Item = Task>) -> Tasks {
        self.tasks.extend(tasks);
        self
    }

    /// Adds the tasks of `tasks` under `name.` (a fabfile package's module).
    pub fn namespace(mut self, name: impl Into<String>, tasks: Tasks) -> Tasks {
        self.namespaces.push((name.into(), tasks));
        self
    }

    /// The program name shown in usage lines (default: the binary's name).
    pub fn program_name(mut self, name: impl Into<String>) -> Tasks {
        self.name = Some(name.into());
        self
    }

    /// Every task with its full dotted name, in declaration order.
    pub fn all(&self) -> Vec<(String, &Task)> {
        let mut out: Vec<(String, &Task)> =
            self.tasks.iter().map(|t| (t.name.clone(), t)).collect();
        for (ns, tasks) in &self.namespaces {
            out.extend(
                tasks
                    .all()
                    .into_iter()
                    .map(|(n, t)| (format!("{ns}.{n}"), t)),
            );
        }
        out
    }

    /// The names `-l` lists, in Fabric's order: this level's tasks and
    /// aliases sorted, then each namespace in sorted order, as its own
    /// name when it has a default task, then its names with a dot.
    fn listed(&self) -> Vec<(String, &Task)> {
        let mut out: Vec<(String, &Task)> = self
            .tasks
            .iter()
            .flat_map(|t| {
                std::iter::once(&t.name)
                    .chain(&t.aliases)
                    .map(move |n| (n.clone(), t))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let mut namespaces: Vec<&(String, Tasks)> = self.namespaces.iter().collect();
        namespaces.sort_by(|a, b| a.0.cmp(&b.0));
        for (ns, tasks) in namespaces {
            if let Some(default) = tasks.default_task() {
                out.push((ns.clone(), default));
            }
            out.extend(
                tasks
                    .listed()
                    .into_iter()
                    .map(|(n, t)| (format!("{ns}.{n}"), t)),
            );
        }
        out
    }

    /// This level's own tasks, without the namespaces'.
    pub(crate) fn own_tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// This level's namespaces.
    pub(crate) fn own_namespaces(&self) -> &[(String, Tasks)] {
        &self.namespaces
    }

    /// This level's default task.
    fn default_task(&self) -> Option<&Task> {
        self.tasks.iter().find(|t| t.is_default)
    }

    /// The task called `name`: a task's name or alias, dotted for
    /// namespaces (`db.migrate`), or a namespace's name alone for its
    /// default task.
    pub fn find(&self, name: &str) -> Option<&Task> {
        if let Some(t) = self
            .tasks
            .iter()
            .find(|t| t.name == name || t.aliases.iter().any(|a| a == name))
        {
            return Some(t);
        }
        if let Some((_, tasks)) = self.namespaces.iter().find(|(n, _)| n == name) {
            return tasks.default_task();
        }
        let (ns, rest) = name.split_once('.')?;
        self.namespaces
            .iter()
            .find(|(n, _)| n == ns)
            .and_then(|(_, tasks)| tasks.find(rest))
    }

    /// Fabric's `execute('name', *args, **kwargs)`: runs the task called
    /// `name` (as [`find`](Tasks::find) finds it) with `args`, converted to
    /// its parameters as on the command line, once per host of its host
    /// list. As in Fabric, the arguments `host`, `hosts` (`a;b`), `role`,
    /// `roles` and `exclude_hosts` choose the hosts instead (they beat the
    /// task's own marks, which beat the `hosts` and `roles` settings), and
    /// the task's marks choose serial or parallel, the pool size and
    /// `runs_once`. An unknown name, or arguments that do not fit, are an
    /// error of kind [`ErrorKind::Settings`] before anything runs.
    ///
    /// A task reaches its program's tasks through the function that lists
    /// them, the same one `main` hands the command line:
    ///
    /// ```
    /// use twill::{env, task, with_settings, Settings, TaskArgs, Tasks};
    ///
    /// task! {
    ///     /// Record where it runs.
    ///     #[hosts("web1", "web2")]
    ///     fn mark(tag: String = "main") -> twill::Result<()> {
    ///         twill::puts(&format!("{tag} on {}", env().host_string().unwrap_or("-".into())));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// task! {
    ///     /// Mark the release on every host.
    ///     fn release() -> twill::Result<()> {
    ///         tasks().execute("mark", TaskArgs::new().kwarg("tag", "v2"))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// fn tasks() -> Tasks {
    ///     Tasks::new().tasks([mark::task(), release::task()])
    /// }
    ///
    /// # fn main() -> twill::Result<()> {
    /// let ran = with_settings(Settings::new().hide("everything"), || {
    ///     tasks().execute("mark", TaskArgs::new().kwarg("hosts", "web3"))
    /// })?;
    /// assert_eq!(ran.hosts(), ["web3"]);
    /// # Ok(())
    /// # }
    /// // fn main() -> std::process::ExitCode { tasks().main() }
    /// ```
    pub fn execute(&self, name: &str, args: TaskArgs) -> Result<HostResults<()>> {
        let task = self.find(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Settings,
                format!("execute(): '{name}' is not the name of a task of this task list"),
            )
        })?;
        let settings_error = |e: Error| Error::new(ErrorKind::Settings, e.message().to_string());
        run::check_call(name, task, &args).map_err(settings_error)?;
        run::execute_call(name, task, &args, false)
    }

    /// Parses the process's command line, runs what it asks, and returns
    /// the exit code: 0 when done, 1 on an abort, 2 on a usage error, 130
    /// when interrupted. Passwords given as options are hidden from the
    /// process's visible command line once it is parsed (see [`Tasks`]).
    pub fn main(&self) -> std::process::ExitCode {
        self.main_with(std::env::args_os())
    }

    /// [`Tasks::main`] with an explicit command line (the first item is
    /// the program name).
    pub fn main_with<I, T>(&self, argv: I) -> std::process::ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        std::process::ExitCode::from(self.run_args(argv))
    }

    /// Runs the command line `argv` (the first item is the program name)
    /// and returns the exit code as a number, for programs that run it as
    /// one step of their own. Like the command line, it reads
    /// `TWILL_PASSWORD` and `TWILL_SUDO_PASSWORD` from the environment.
    pub fn run_args<I, T>(&self, argv: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        run::main(self, argv)
    }
}

/// Declares a task: a function whose doc comment, name, parameters and
/// marks the command line uses (`-l`, `-d`, `task:arg,key=value`, host
/// lists), with Fabric's decorators written as attributes above it.
///
/// Declare tasks at module level (not inside a function body). The
/// function stays callable as written; beside it, a module of the same
/// name holds `name::task()`, its [`Task`] descriptor for [`Tasks`], and
/// `name::execute(args...)`, Fabric's `execute(name, args...)`: the
/// function run once per host of its host list, honouring its marks (see
/// [`Execute::task`]), with the results per host. The arguments are cloned
/// for each host.
///
/// A task returns nothing (`fn production() { set_env(...) }`) or a
/// `twill::Result` of any value; the command line keeps only whether it
/// failed. Parameters may be of any type implementing [`FromArg`]; `Option<T>`
/// parameters are optional, and `name: Type = value` gives a default
/// (Fabric's `def pull(branch="main")`), shown by `-d` as Fabric shows it:
/// `Arguments: branch='main'`.
///
/// | Fabric | inside `task!` |
/// |---|---|
/// | the docstring | a doc comment above the function |
/// | `@roles("web", "db")` | `#[roles("web", "db")]` |
/// | `@hosts("web1", "web2")` | `#[hosts("web1", "web2")]` |
/// | `@parallel`, `@parallel(pool_size=5)` | `#[parallel]`, `#[parallel(pool_size = 5)]` |
/// | `@serial` | `#[serial]` |
/// | `@runs_once` | `#[runs_once]` |
/// | `@task(alias="up")` | `#[task(alias = "up")]` (or `aliases = ["up", "u"]`) |
/// | `@task(name="type")` | `#[task(name = "type")]` |
/// | `@task(default=True)` | `#[task(default)]` |
/// | `def pull(branch="main")` | `fn pull(branch: String = "main")` |
/// | `execute(pull, "x")` | `pull::execute("x".into())` |
///
/// Other attributes (`#[allow(...)]`, ...) go to the function. One
/// `task!` block may hold several tasks, as a fabfile holds them.
///
/// ```
/// use twill::{task, Tasks};
///
/// task! {
///     /// Say hello.
///     ///
///     /// Prints a greeting for `name`, `times` times.
///     #[hosts("web1")]
///     #[task(alias = "hi")]
///     pub fn hello(name: String, times: u32 = 1) -> twill::Result<()> {
///         for _ in 0..times {
///             twill::puts(&format!("hello {name}"));
///         }
///         Ok(())
///     }
/// }
///
/// fn main() {
///     let t = hello::task();
///     assert_eq!(t.name(), "hello");
///     assert_eq!(t.doc(), "Say hello.\n\nPrints a greeting for `name`, `times` times.");
///     hello("direct call".into(), 2).unwrap();
///     let tasks = Tasks::new().tasks([hello::task()]);
///     assert_eq!(tasks.find("hi").map(|t| t.name()), Some("hello"));
/// }
/// ```
#[macro_export]
macro_rules! task {
    // The marks, read one attribute at a time: the doc comments, Fabric's
    // decorators, and the attributes left to the function.
    (@attrs [$($doc:expr,)*] $attrs:tt $marks:tt #[doc = $d:expr] $($rest:tt)*) => {
        $crate::task! { @attrs [$($doc,)* $d,] $attrs $marks $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[roles($($v:expr),* $(,)?)] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .roles(::std::vec::Vec::<::std::string::String>::from([$(::std::string::ToString::to_string(&$v)),*]))] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[hosts($($v:expr),* $(,)?)] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .hosts(::std::vec::Vec::<::std::string::String>::from([$(::std::string::ToString::to_string(&$v)),*]))] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[serial] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .serial()] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[parallel] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .parallel()] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[parallel(pool_size = $n:expr $(,)?)] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .pool_size($n)] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt [$($mark:tt)*] #[runs_once] $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs [$($mark)* .runs_once()] $($rest)* }
    };
    (@attrs $docs:tt $attrs:tt $marks:tt #[task($($opt:tt)*)] $($rest:tt)*) => {
        $crate::task! { @opts $docs $attrs $marks ($($opt)*) $($rest)* }
    };
    (@attrs $docs:tt [$($attr:tt)*] $marks:tt #[$meta:meta] $($rest:tt)*) => {
        $crate::task! { @attrs $docs [$($attr)* #[$meta]] $marks $($rest)* }
    };
    // `#[task(...)]`: Fabric's `@task(alias=..., aliases=[...], name=..., default=True)`.
    (@opts $docs:tt $attrs:tt [$($mark:tt)*] (alias = $v:expr $(, $($more:tt)*)?) $($rest:tt)*) => {
        $crate::task! { @opts $docs $attrs [$($mark)* .alias($v)] ($($($more)*)?) $($rest)* }
    };
    (@opts $docs:tt $attrs:tt [$($mark:tt)*] (aliases = [$($v:expr),* $(,)?] $(, $($more:tt)*)?) $($rest:tt)*) => {
        $crate::task! { @opts $docs $attrs [$($mark)* $(.alias($v))*] ($($($more)*)?) $($rest)* }
    };
    (@opts $docs:tt $attrs:tt [$($mark:tt)*] (name = $v:expr $(, $($more:tt)*)?) $($rest:tt)*) => {
        $crate::task! { @opts $docs $attrs [$($mark)* .rename($v)] ($($($more)*)?) $($rest)* }
    };
    (@opts $docs:tt $attrs:tt [$($mark:tt)*] (default $(, $($more:tt)*)?) $($rest:tt)*) => {
        $crate::task! { @opts $docs $attrs [$($mark)* .default_task()] ($($($more)*)?) $($rest)* }
    };
    (@opts $docs:tt $attrs:tt $marks:tt () $($rest:tt)*) => {
        $crate::task! { @attrs $docs $attrs $marks $($rest)* }
    };
    (@opts $docs:tt $attrs:tt $marks:tt ($($bad:tt)*) $($rest:tt)*) => {
        ::std::compile_error!(::std::concat!(
            "task!: #[task(...)] takes alias = \"..\", aliases = [..], name = \"..\" and default, not: ",
            ::std::stringify!($($bad)*)
        ));
    };
    // A parameter's default: whether there is one, as written, as a value.
    (@has_default) => { false };
    (@has_default $d:expr) => { true };
    (@default_text) => { ::std::option::Option::None };
    (@default_text $d:expr) => { ::std::option::Option::Some(::std::stringify!($d)) };
    (@default_value $ty:ty) => { ::std::option::Option::None::<fn() -> $ty> };
    (@default_value $ty:ty, $d:expr) => {
        ::std::option::Option::Some(|| $crate::arg_default::<$ty, _>($d))
    };
    // The function, once the attributes are read.
    (@attrs [$($doc:expr,)*] [$($attr:tt)*] [$($mark:tt)*]
        $vis:vis fn $name:ident ( $( $arg:ident : $ty:ty $(= $default:expr)? ),* $(,)? ) $(-> $ret:ty)? $body:block
    ) => {
        $($attr)*
        $(#[doc = $doc])*
        $vis fn $name( $( $arg : $ty ),* ) $(-> $ret)? $body

        #[doc = concat!("The task descriptor of [`", stringify!($name), "()`], and Fabric's `execute` for it.")]
        #[allow(non_snake_case, dead_code)]
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The [`Task`](twill::Task) for the function of the same name,
            /// with the marks written on it.
            pub fn task() -> $crate::Task {
                // Whether the task ran, for `runs_once`: one per declaration.
                static RAN: ::std::sync::atomic::AtomicBool = ::std::sync::atomic::AtomicBool::new(false);
                $crate::Task::__from_macro(
                    stringify!($name),
                    concat!($( $doc, "\n" ),*),
                    &[ $( (
                        stringify!($arg),
                        <$ty as $crate::FromArg>::missing().is_some() || $crate::task!(@has_default $($default)?),
                        <$ty as $crate::FromArg>::describe(),
                        $crate::task!(@default_text $($default)?),
                    ) ),* ],
                    &RAN,
                    |task: &str, args: &$crate::TaskArgs| -> $crate::Result<()> {
                        #[allow(unused_mut, unused_variables)]
                        let mut index = 0usize;
                        $(
                            let _: $ty = args.get::<$ty, _>(task, stringify!($arg), index, $crate::task!(@default_value $ty $(, $default)?))?;
                            index += 1;
                        )*
                        Ok(())
                    },
                    |task: &str, args: &$crate::TaskArgs| -> $crate::Result<()> {
                        #[allow(unused_mut, unused_variables)]
                        let mut index = 0usize;
                        $(
                            let $arg: $ty = args.get::<$ty, _>(task, stringify!($arg), index, $crate::task!(@default_value $ty $(, $default)?))?;
                            index += 1;
                        )*
                        $crate::TaskReturn::into_task_result(super::$name( $( $arg ),* ))
                    },
                ) $($mark)*
            }

            /// Fabric's `execute(task, args...)`: runs the function once per
            /// host of the task's host list (its marks, else the `hosts`
            /// and `roles` settings), serially or in parallel as marked.
            #[allow(clippy::too_many_arguments)]
            pub fn execute( $( $arg : $ty ),* ) -> $crate::Result<$crate::HostResults<()>> {
                $crate::Execute::task(&task()).run(move || {
                    $crate::TaskReturn::into_task_result(super::$name( $( ::std::clone::Clone::clone(&$arg) ),* ))
                })
            }
        }
    };
    // Several functions in one block: each read on its own.
    ($( $(#[$($attr:tt)*])* $vis:vis fn $name:ident ( $($arg:tt)* ) $(-> $ret:ty)? $body:block )+) => {
        $( $crate::task! { @attrs [] [] [] $(#[$($attr)*])* $vis fn $name ( $($arg)* ) $(-> $ret)? $body } )+
    };
    ($($input:tt)*) => {
        $crate::task! { @attrs [] [] [] $($input)* }
    };
}

//! Fabric's `fab` command line for Rust tasks.
//!
//! A program lists its tasks in a [`Tasks`] value and hands it the command
//! line with [`Tasks::main`]; it gets Fabric's options, `-l`/`-d`, task
//! arguments (`deploy:main,restart=yes`), several tasks in one call, host
//! lists, roles, parallel runs, and Fabric's closing lines and exit codes.
//!
//! ```no_run
//! use twill::{run, sudo, task, Tasks};
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
//!     fn restart(service: String, wait: Option<u32>) -> twill::Result<()> {
//!         sudo(&format!("systemctl restart {service}"))?;
//!         if let Some(seconds) = wait {
//!             run(&format!("sleep {seconds}"))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Tasks::new().task(kernel::task()).task(restart::task().parallel()).main()
//! }
//! // $ my-fab -H web1,web2 restart:nginx,wait=2
//! ```

mod args;
mod argv;
mod run;

use std::fmt;
use std::sync::Arc;

pub use args::{FromArg, TaskArgs};

use crate::error::Result;

type Body = Arc<dyn Fn(&TaskArgs) -> Result<()> + Send + Sync>;

/// A task: a function the command line can run, with its name, its
/// documentation, its parameters and Fabric's per-task marks (`@hosts`,
/// `@roles`, `@parallel`, `@serial`, `@runs_once`).
///
/// Declare tasks with [`task!`](crate::task!), which keeps the function as
/// you wrote it and gives it a `task()` descriptor; or build one from a
/// closure with [`Task::new`].
#[derive(Clone)]
pub struct Task {
    name: String,
    doc: String,
    /// `None`: a closure task that takes whatever it is given.
    params: Option<Vec<(&'static str, bool, &'static str)>>,
    body: Body,
    /// Converts the arguments without running anything (macro tasks).
    validate: Option<Body>,
    hosts: Vec<String>,
    roles: Vec<String>,
    parallel: bool,
    serial: bool,
    runs_once: bool,
    pool_size: Option<usize>,
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
            .field("hosts", &self.hosts)
            .field("roles", &self.roles)
            .field("parallel", &self.parallel)
            .field("serial", &self.serial)
            .field("runs_once", &self.runs_once)
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
        Task {
            name: name.into(),
            doc: doc.into(),
            params: None,
            body: Arc::new(body),
            validate: None,
            hosts: Vec::new(),
            roles: Vec::new(),
            parallel: false,
            serial: false,
            runs_once: false,
            pool_size: None,
            words: 0,
        }
    }

    #[doc(hidden)]
    pub fn __from_macro(
        name: &str,
        doc: &str,
        params: &[(&'static str, bool, &'static str)],
        validate: impl Fn(&TaskArgs) -> Result<()> + Send + Sync + 'static,
        body: impl Fn(&TaskArgs) -> Result<()> + Send + Sync + 'static,
    ) -> Task {
        let doc = doc
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let mut t = Task::new(name, doc.trim(), body);
        t.params = Some(params.to_vec());
        t.validate = Some(Arc::new(validate));
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

    /// Fabric's `@hosts(...)`: the hosts the task runs on when the command
    /// line names none for it.
    pub fn hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Task {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Fabric's `@roles(...)`.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Task {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Fabric's `@parallel`: always run on the hosts in parallel.
    pub fn parallel(mut self) -> Task {
        self.parallel = true;
        self
    }

    /// Fabric's `@parallel(pool_size=n)`.
    pub fn pool_size(mut self, n: usize) -> Task {
        self.parallel = true;
        self.pool_size = Some(n);
        self
    }

    /// Fabric's `@serial`: never in parallel, even with `-P`.
    pub fn serial(mut self) -> Task {
        self.serial = true;
        self
    }

    /// Fabric's `@runs_once`: run on the first host only (serially).
    pub fn runs_once(mut self) -> Task {
        self.runs_once = true;
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

    /// Runs the task's body with these arguments, in the current settings.
    pub fn call(&self, args: &TaskArgs) -> Result<()> {
        (self.body)(args)
    }

    /// Checks that `args` fit the task's parameters, without running it.
    pub(crate) fn check_args(&self, call_name: &str, args: &TaskArgs) -> Result<()> {
        if let Some(params) = &self.params {
            args.check(call_name, params)?;
        }
        match &self.validate {
            Some(v) => v(args),
            None => Ok(()),
        }
    }

    fn signature(&self) -> String {
        let Some(params) = &self.params else {
            return "*args, **kwargs".to_string();
        };
        params
            .iter()
            .map(|(name, optional, _)| {
                if *optional {
                    format!("{name}=None")
                } else {
                    name.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
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

    /// The task called `name` (dotted for namespaces).
    pub fn find(&self, name: &str) -> Option<&Task> {
        if let Some(t) = self.tasks.iter().find(|t| t.name == name) {
            return Some(t);
        }
        let (ns, rest) = name.split_once('.')?;
        self.namespaces
            .iter()
            .find(|(n, _)| n == ns)
            .and_then(|(_, tasks)| tasks.find(rest))
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

/// Declares a task: a function whose doc comment, name and parameters the
/// command line uses (`-l`, `-d`, `task:arg,key=value`).
///
/// Declare tasks at module level (not inside a function body). The
/// function stays callable as written; beside it, `name::task()`
/// returns its [`Task`] descriptor for [`Tasks::task`]. Parameters may be of
/// any type implementing [`FromArg`]; `Option<T>` parameters are optional.
///
/// ```
/// use twill::task;
///
/// task! {
///     /// Say hello.
///     ///
///     /// Prints a greeting for `name`, `times` times.
///     pub fn hello(name: String, times: Option<u32>) -> twill::Result<()> {
///         for _ in 0..times.unwrap_or(1) {
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
///     hello("direct call".into(), None).unwrap();
/// }
/// ```
#[macro_export]
macro_rules! task {
    (
        $(#[doc = $doc:expr])*
        $vis:vis fn $name:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty $body:block
    ) => {
        $(#[doc = $doc])*
        $vis fn $name( $( $arg : $ty ),* ) -> $ret $body

        #[doc = concat!("The task descriptor of [`", stringify!($name), "()`].")]
        #[allow(non_snake_case, dead_code)]
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The [`Task`](twill::Task) for the function of the same name.
            pub fn task() -> $crate::Task {
                $crate::Task::__from_macro(
                    stringify!($name),
                    concat!($( $doc, "\n" ),*),
                    &[ $( (stringify!($arg), <$ty as $crate::FromArg>::missing().is_some(), <$ty as $crate::FromArg>::describe()) ),* ],
                    |args: &$crate::TaskArgs| -> $crate::Result<()> {
                        #[allow(unused_mut, unused_variables)]
                        let mut index = 0usize;
                        $(
                            let _: $ty = args.get::<$ty>(stringify!($name), stringify!($arg), index)?;
                            index += 1;
                        )*
                        Ok(())
                    },
                    |args: &$crate::TaskArgs| -> $crate::Result<()> {
                        #[allow(unused_mut, unused_variables)]
                        let mut index = 0usize;
                        $(
                            let $arg: $ty = args.get::<$ty>(stringify!($name), stringify!($arg), index)?;
                            index += 1;
                        )*
                        super::$name( $( $arg ),* ).map(|_| ())
                    },
                )
            }
        }
    };
}

//! Deployments as a tree of nodes: python-deployer's model on twill's
//! operations, settings and `execute`.
//!
//! A [`Node`] has actions (tasks, with their typed arguments), child
//! nodes, roles (names for sets of [`Host`]s) and settings of its own. A
//! child gets its parent's roles, renamed or narrowed with
//! [`map_roles`](Node::map_roles). A node [isolated](Node::isolate) on a
//! role runs each action once per host of that role, in parallel worker
//! processes through [`Execute`](crate::Execute), and gives one result per
//! host in host order; [`Node::call_on`] runs one host's cell alone. Inside
//! an action, [`hosts()`] is every host of the node and [`host()`] the
//! cell's own, and [`call`] runs another action of the same node.
//!
//! A node is a value: write a function that returns it, and use it in
//! several trees with other hosts or settings (a domain, say) laid over
//! it. [`Shell`] browses a tree, with completion, and runs its actions.
//!
//! ```no_run
//! use twill::tree::{hosts, Host, Node};
//! use twill::{env, run, sudo, task, Settings, TaskArgs};
//!
//! task! {
//!     /// Install a release of the site.
//!     fn deploy(release: String = "main") -> twill::Result<()> {
//!         let domain = env().get_str("domain").unwrap_or_default();
//!         run(&format!("echo deploying {release} for {domain}"))?;
//!         sudo("systemctl reload nginx")?;
//!         Ok(())
//!     }
//! }
//!
//! task! {
//!     /// Uptime of every database host.
//!     fn uptime() -> twill::Result<()> {
//!         for (host, up) in hosts().filter("slave").run("uptime")?.iter() {
//!             twill::puts(&format!("{host}: {}", up.as_ref().map(|o| o.stdout()).unwrap_or("-")));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// The web tier, written once.
//! fn web() -> Node {
//!     Node::new("web").isolate("web").action(deploy::task())
//! }
//!
//! fn main() -> twill::Result<()> {
//!     let root = Node::new("production")
//!         .group("production")
//!         .role("web", ["web1", "web2"])
//!         .role("db_master", [Host::new("db1").user("postgres")])
//!         .role("db_slaves", ["db2", "db3"])
//!         .child(web().settings(Settings::new().set("domain", "example.com")))
//!         .child(
//!             Node::new("db")
//!                 .map_roles([("master", ["db_master"]), ("slave", ["db_slaves"])])
//!                 .action(uptime::task()),
//!         );
//!     // Once per web host, in parallel; one result per host.
//!     let done = root.call("web.deploy", TaskArgs::new().arg("v1.2"))?;
//!     assert_eq!(done.hosts(), ["web1", "web2"]);
//!     // One cell alone.
//!     root.call_on("web.deploy", "web2", TaskArgs::new())?;
//!     Ok(())
//! }
//! ```

mod hosts;
mod run;
#[cfg(feature = "shell")]
mod shell;
#[cfg(feature = "shell")]
pub use shell::Shell;

use std::fmt;
use std::sync::Arc;

use crate::cli::{Task, Tasks};
use crate::state::Settings;

pub use hosts::{host, hosts, Hosts};
pub use run::{call, call_on, here};

/// A host of a role: a host string (`web1`, `deploy@web1:2222`, a name of
/// `~/.ssh/config`) and, if any, settings that hold only on it (a key, a
/// password, a gateway, anything [`Settings`] sets).
///
/// ```
/// use twill::tree::Host;
/// use twill::Settings;
///
/// let db = Host::new("db1")
///     .user("postgres")
///     .port(2222)
///     .settings(Settings::new().key_filename(["/home/me/.ssh/db_key"]));
/// assert_eq!(db.name(), "postgres@db1:2222");
/// let web: Host = "web1".into();
/// assert_eq!(web.name(), "web1");
/// ```
#[derive(Clone)]
pub struct Host {
    address: String,
    user: Option<String>,
    port: Option<u16>,
    settings: Settings,
}

impl Host {
    /// A host by its address or `~/.ssh/config` name; a host string
    /// (`user@host:port`) works too.
    pub fn new(address: impl Into<String>) -> Host {
        Host {
            address: address.into(),
            user: None,
            port: None,
            settings: Settings::new(),
        }
    }

    /// The user to log in as on this host.
    pub fn user(mut self, user: impl Into<String>) -> Host {
        self.user = Some(user.into());
        self
    }

    /// The SSH port of this host.
    pub fn port(mut self, port: u16) -> Host {
        self.port = Some(port);
        self
    }

    /// The login password of this host: a secret, never shown nor
    /// recorded.
    pub fn password(self, password: impl Into<String>) -> Host {
        let password = password.into();
        self.settings(Settings::new().password(password))
    }

    /// Settings that hold while anything runs on this host, laid over the
    /// ones it has.
    pub fn settings(mut self, settings: Settings) -> Host {
        self.settings = std::mem::take(&mut self.settings).merge(settings);
        self
    }

    /// The host string the host goes by: in host lists, results and
    /// output prefixes.
    pub fn name(&self) -> String {
        let mut name = String::new();
        if let Some(user) = &self.user {
            name.push_str(user);
            name.push('@');
        }
        name.push_str(&self.address);
        if let Some(port) = self.port {
            name.push_str(&format!(":{port}"));
        }
        name
    }

    pub(crate) fn own_settings(&self) -> &Settings {
        &self.settings
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The settings may hold a password: only the name is shown.
        f.debug_tuple("Host").field(&self.name()).finish()
    }
}

impl<S: Into<String>> From<S> for Host {
    fn from(address: S) -> Host {
        Host::new(address)
    }
}

/// How an action runs on a node isolated on a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fanning {
    /// Once per host (the rule).
    EachHost,
    /// Once, before any fanning out: it calls the actions that fan out
    /// (python-deployer's `dont_isolate_yet`).
    NotYet,
    /// On one host the user chooses (`isolate_one_only`).
    OneHost,
}

/// An action of a node: a [`Task`] (its name, documentation and typed
/// arguments, as `task!` declares them), with how it runs on an isolated
/// node.
///
/// ```
/// use twill::tree::{Action, Node};
/// use twill::{task, Prompt};
///
/// task! {
///     /// Ask which release, then install it everywhere.
///     fn release() -> twill::Result<()> {
///         let tag = Prompt::new("Release?").default("main").ask()?;
///         twill::tree::call("install", twill::TaskArgs::new().arg(tag))?;
///         Ok(())
///     }
/// }
///
/// task! {
///     /// Install one release.
///     fn install(tag: String) -> twill::Result<()> {
///         twill::run(&format!("echo installing {tag}"))?;
///         Ok(())
///     }
/// }
///
/// fn main() {
///     let web = Node::new("web")
///         .role("web", ["web1", "web2"])
///         .isolate("web")
///         .action(Action::new(release::task()).dont_isolate_yet())
///         .action(install::task());
///     assert_eq!(web.action_names(), ["release", "install"]);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Action {
    task: Task,
    fanning: Fanning,
}

impl Action {
    /// An action that runs `task`.
    pub fn new(task: Task) -> Action {
        Action {
            task,
            fanning: Fanning::EachHost,
        }
    }

    /// On an isolated node, runs once in the caller before fanning out
    /// (to ask a question, say), with every host of the node in
    /// [`hosts()`]; the actions it [`call`]s fan out.
    pub fn dont_isolate_yet(mut self) -> Action {
        self.fanning = Fanning::NotYet;
        self
    }

    /// On an isolated node, runs on one host only, which the user chooses
    /// (the first when nobody may be asked, or with `--non-interactive`).
    pub fn isolate_one_only(mut self) -> Action {
        self.fanning = Fanning::OneHost;
        self
    }

    /// The action's name.
    pub fn name(&self) -> &str {
        self.task.name()
    }

    /// The task it runs.
    pub fn task(&self) -> &Task {
        &self.task
    }
}

impl From<Task> for Action {
    fn from(task: Task) -> Action {
        Action::new(task)
    }
}

/// How a child's roles come from its parent's.
#[derive(Debug, Clone)]
enum RoleMap {
    /// Each child role: the hosts of these parent roles.
    Roles(Vec<(String, Vec<String>)>),
    /// One child role holding every host of the parent.
    AllHosts(String),
}

/// A node of a deployment tree. See the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    doc: String,
    group: Option<String>,
    roles: Vec<(String, Vec<Host>)>,
    map: Option<RoleMap>,
    isolate: Option<String>,
    settings: Settings,
    actions: Vec<Action>,
    children: Vec<Arc<Node>>,
}

impl Node {
    /// A node called `name` (the name a path and the shell use).
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            doc: String::new(),
            group: None,
            roles: Vec::new(),
            map: None,
            isolate: None,
            settings: Settings::new(),
            actions: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The same node under another name: a node written once, used twice
    /// in a tree.
    pub fn rename(mut self, name: impl Into<String>) -> Node {
        self.name = name.into();
        self
    }

    /// What the node is for (the shell's `inspect` shows it).
    pub fn doc(mut self, text: impl Into<String>) -> Node {
        self.doc = text.into();
        self
    }

    /// The node's group (`production`, `staging`, `beta`, `development`,
    /// or a name of your own), which its children share unless they name
    /// their own; the shell colours a node by its group, production red.
    pub fn group(mut self, group: impl Into<String>) -> Node {
        self.group = Some(group.into());
        self
    }

    /// A role of this node: a name for these hosts (in this order, once
    /// each). It replaces a role of the same name, the parent's included.
    pub fn role<H: Into<Host>>(
        mut self,
        name: impl Into<String>,
        hosts: impl IntoIterator<Item = H>,
    ) -> Node {
        let name = name.into();
        let hosts: Vec<Host> = hosts.into_iter().map(Into::into).collect();
        self.roles.retain(|(n, _)| *n != name);
        self.roles.push((name, hosts));
        self
    }

    /// The roles this node takes from its parent, renamed: each of its
    /// roles is the hosts of the parent roles named (python-deployer's
    /// `@map_roles(master='db_master', slave=('db2', 'db3'))`). Without a
    /// map a child has all its parent's roles as they are.
    pub fn map_roles<R, P, S>(mut self, roles: impl IntoIterator<Item = (R, P)>) -> Node
    where
        R: Into<String>,
        P: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.map = Some(RoleMap::Roles(
            roles
                .into_iter()
                .map(|(r, p)| (r.into(), p.into_iter().map(Into::into).collect()))
                .collect(),
        ));
        self
    }

    /// Takes every host of the parent, in one role called `role`
    /// (python-deployer's `ALL_HOSTS`).
    pub fn map_all_hosts(mut self, role: impl Into<String>) -> Node {
        self.map = Some(RoleMap::AllHosts(role.into()));
        self
    }

    /// Runs each action once per host of `role`, in parallel worker
    /// processes (see [`Execute`](crate::Execute) for what that means:
    /// no standard input, settings that never flow back, Ctrl-C stopping
    /// every worker), unless an action is marked otherwise
    /// ([`Action::dont_isolate_yet`], [`Action::isolate_one_only`]).
    pub fn isolate(mut self, role: impl Into<String>) -> Node {
        self.isolate = Some(role.into());
        self
    }

    /// Settings that hold while this node's actions (and its children's)
    /// run, laid over the parent's: a domain, a `cd`, the user...
    pub fn settings(mut self, settings: Settings) -> Node {
        self.settings = std::mem::take(&mut self.settings).merge(settings);
        self
    }

    /// Adds an action: a [`Task`], or an [`Action`] made from one.
    pub fn action(mut self, action: impl Into<Action>) -> Node {
        let action = action.into();
        self.actions.retain(|a| a.name() != action.name());
        self.actions.push(action);
        self
    }

    /// Adds a child node (replacing one of the same name).
    pub fn child(mut self, child: Node) -> Node {
        self.children.retain(|c| c.name != child.name);
        self.children.push(Arc::new(child));
        self
    }

    /// A node whose actions are the tasks of `tasks` and whose children
    /// are its namespaces, so that fab-style tasks get a shell too. The
    /// tasks keep their marks: `#[roles]`, `#[hosts]`, `#[parallel]`.
    pub fn from_tasks(name: impl Into<String>, tasks: &Tasks) -> Node {
        let mut node = Node::new(name);
        for task in tasks.own_tasks() {
            node = node.action(task.clone());
        }
        for (ns, inner) in tasks.own_namespaces() {
            node = node.child(Node::from_tasks(ns.clone(), inner));
        }
        node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is for.
    pub fn description(&self) -> &str {
        &self.doc
    }

    /// Its children, in the order added.
    pub fn children(&self) -> impl Iterator<Item = &Node> {
        self.children.iter().map(|c| &**c)
    }

    /// Its actions, in the order added.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The names of its actions.
    pub fn action_names(&self) -> Vec<&str> {
        self.actions.iter().map(Action::name).collect()
    }

    /// The child at `path` (`db.slave`, or `db/slave`; empty: this node).
    pub fn find(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in split_path(path) {
            node = node.children().find(|c| c.name == part)?;
        }
        Some(node)
    }

    fn child_named(&self, name: &str) -> Option<&Arc<Node>> {
        self.children.iter().find(|c| c.name == name)
    }

    fn action_named(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name() == name)
    }
}

/// The parts of a node path: dots or slashes between names.
pub(crate) fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split(['.', '/']).filter(|p| !p.is_empty())
}

//! Running an action of a tree: where it is (the node's roles and
//! settings, from the root down), on which hosts, and what happens when
//! it fails.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{split_path, Action, Fanning, Host, Node, RoleMap};
use crate::cli::TaskArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::execute::{is_connection_failure, Execute, HostResults, LOCAL_ONLY};
use crate::interrupt;
use crate::operations::prompt::choice;
use crate::output;
use crate::state::{env, with_settings, Settings};

/// A node as an action sees it: its place in the tree, its roles and
/// settings made from the root down, and, in a cell, its one host.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) root: Arc<Node>,
    pub(crate) path: Vec<String>,
    pub(crate) node: Arc<Node>,
    pub(crate) roles: Vec<(String, Vec<Host>)>,
    pub(crate) settings: Settings,
    pub(crate) group: Option<String>,
    /// The host of the cell an action runs in.
    pub(crate) cell: Option<String>,
}

thread_local! {
    /// The places of the actions running in this thread, innermost last.
    static PLACES: RefCell<Vec<Place>> = const { RefCell::new(Vec::new()) };
}

/// Whether failed actions may ask Retry / Skip / Abort: an interactive
/// shell runs them.
static ASKS_ON_FAILURE: AtomicBool = AtomicBool::new(false);

#[cfg_attr(not(feature = "shell"), allow(dead_code))]
pub(crate) fn ask_on_failure(yes: bool) {
    ASKS_ON_FAILURE.store(yes, Ordering::SeqCst);
}

/// The place an action runs in, until dropped.
struct Entered;

fn enter(place: Place) -> Entered {
    PLACES.with(|p| p.borrow_mut().push(place));
    Entered
}

impl Drop for Entered {
    fn drop(&mut self) {
        PLACES.with(|p| p.borrow_mut().pop());
    }
}

/// The place of the innermost running action.
pub(crate) fn current() -> Option<Place> {
    PLACES.with(|p| p.borrow().last().cloned())
}

impl Place {
    /// The root's place.
    pub(crate) fn root(root: Arc<Node>) -> Place {
        Place {
            roles: root.roles.clone(),
            settings: root.settings.clone(),
            group: root.group.clone(),
            path: Vec::new(),
            node: root.clone(),
            root,
            cell: None,
        }
    }

    /// The place of the node at `path` under the root (dots or slashes).
    #[cfg_attr(not(feature = "shell"), allow(dead_code))]
    pub(crate) fn at(root: Arc<Node>, path: &str) -> Result<Place> {
        let mut place = Place::root(root);
        for part in split_path(path) {
            place = place.child(part)?;
        }
        Ok(place)
    }

    /// The place of the child called `name`.
    pub(crate) fn child(&self, name: &str) -> Result<Place> {
        let node = self.node.child_named(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Settings,
                format!("{} has no child node called '{name}'", self.shown()),
            )
        })?;
        let mut roles = match &node.map {
            None => self.roles.clone(),
            Some(RoleMap::AllHosts(role)) => vec![(role.clone(), self.all_hosts())],
            Some(RoleMap::Roles(map)) => {
                let mut roles = Vec::new();
                for (role, from) in map {
                    let mut hosts: Vec<Host> = Vec::new();
                    for parent_role in from {
                        let found = self.role(parent_role).ok_or_else(|| {
                            Error::new(
                                ErrorKind::Settings,
                                format!(
                                    "node '{name}' takes its role '{role}' from the role \
                                     '{parent_role}' of {}, which has no such role",
                                    self.shown()
                                ),
                            )
                        })?;
                        push_new(&mut hosts, found);
                    }
                    roles.push((role.clone(), hosts));
                }
                roles
            }
        };
        for (role, hosts) in &node.roles {
            match roles.iter_mut().find(|(r, _)| r == role) {
                Some(entry) => entry.1 = hosts.clone(),
                None => roles.push((role.clone(), hosts.clone())),
            }
        }
        let mut path = self.path.clone();
        path.push(name.to_string());
        Ok(Place {
            root: self.root.clone(),
            path,
            roles,
            settings: self.settings.clone().merge(node.settings.clone()),
            group: node.group.clone().or_else(|| self.group.clone()),
            node,
            cell: None,
        })
    }

    /// The parent's place (the root's is itself).
    #[cfg_attr(not(feature = "shell"), allow(dead_code))]
    pub(crate) fn parent(&self) -> Place {
        let mut path = self.path.clone();
        path.pop();
        Place::at(self.root.clone(), &path.join("."))
            .unwrap_or_else(|_| Place::root(self.root.clone()))
    }

    /// The node's path, dotted (`web.cache`); empty at the root.
    pub(crate) fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// The node as messages name it.
    pub(crate) fn shown(&self) -> String {
        if self.path.is_empty() {
            format!("the root node '{}'", self.root.name)
        } else {
            format!("node '{}'", self.dotted())
        }
    }

    pub(crate) fn role(&self, name: &str) -> Option<&[Host]> {
        self.roles
            .iter()
            .find(|(r, _)| r == name)
            .map(|(_, h)| h.as_slice())
    }

    /// Every host of every role, once each, in role order.
    pub(crate) fn all_hosts(&self) -> Vec<Host> {
        let mut hosts = Vec::new();
        for (_, role) in &self.roles {
            push_new(&mut hosts, role);
        }
        hosts
    }

    /// The settings an action of this node runs in: the nodes' settings
    /// from the root down, and the node's roles as `roledefs`, so that a
    /// task's `#[roles]` mean the node's.
    pub(crate) fn scope(&self) -> Settings {
        let roledefs: Vec<(String, Vec<String>)> = self
            .roles
            .iter()
            .map(|(r, hosts)| (r.clone(), hosts.iter().map(Host::name).collect()))
            .collect();
        self.settings
            .clone()
            .merge(Settings::new().roledefs(roledefs))
    }

    /// This place as the cell of `host`: the isolating role narrowed to
    /// that host.
    fn cell_of(&self, host: &str) -> Place {
        let mut place = self.clone();
        if let Some(role) = &self.node.isolate {
            for (r, hosts) in place.roles.iter_mut() {
                if r == role {
                    hosts.retain(|h| h.name() == host);
                }
            }
        }
        place.cell = Some(host.to_string());
        place
    }

    /// The host called `name` among this node's.
    pub(crate) fn host(&self, name: &str) -> Option<Host> {
        self.roles
            .iter()
            .flat_map(|(_, hosts)| hosts)
            .find(|h| h.name() == name)
            .cloned()
    }

    /// The hosts an isolated node fans out over.
    fn isolation_hosts(&self, role: &str) -> Result<Vec<Host>> {
        self.role(role).map(<[Host]>::to_vec).ok_or_else(|| {
            Error::new(
                ErrorKind::Settings,
                format!(
                    "{} is isolated on the role '{role}', which it does not have",
                    self.shown()
                ),
            )
        })
    }

    /// The action called `name` of this node.
    pub(crate) fn action(&self, name: &str) -> Result<Action> {
        self.node.action_named(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Settings,
                format!("{} has no action called '{name}'", self.shown()),
            )
        })
    }

    /// The full name of this node's action `name` (`web.deploy`).
    pub(crate) fn action_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.dotted())
        }
    }

    /// Runs the action `name` with `args`: once per host of an isolated
    /// node (in parallel workers), once here otherwise (on the hosts of the
    /// task's own marks, if it has any), or in the cell of `cell` alone.
    pub(crate) fn run(
        &self,
        name: &str,
        args: &TaskArgs,
        cell: Option<&str>,
    ) -> Result<HostResults<()>> {
        let action = self.action(name)?;
        let full = self.action_path(name);
        action
            .task
            .check_args(&full, args)
            .map_err(|e| Error::new(ErrorKind::Settings, e.message().to_string()))?;
        let mut only: Option<Vec<String>> = None;
        let mut done: Vec<(String, Result<()>)> = Vec::new();
        loop {
            let results = with_settings(self.scope(), || {
                self.attempt(&full, &action, args, cell, only.as_deref())
            })?;
            merge(&mut done, results.into_vec());
            // A host that cannot be reached does not count under
            // skip_bad_hosts, as in `execute`.
            let skip_bad = env().skip_bad_hosts();
            let failed: Vec<(String, String)> = done
                .iter()
                .filter_map(|(h, r)| r.as_ref().err().map(|e| (h, e)))
                .filter(|(_, e)| !(skip_bad && is_connection_failure(e)))
                .map(|(h, e)| (h.clone(), e.message().to_string()))
                .collect();
            if failed.is_empty() {
                return Ok(HostResults::from_vec(done));
            }
            match after_failure(&full, &failed)? {
                Next::Retry => only = Some(failed.into_iter().map(|(h, _)| h).collect()),
                Next::Skip => return Ok(HostResults::from_vec(done)),
                Next::Abort => {
                    let first = &failed[0].0;
                    let (_, result) = done
                        .into_iter()
                        .find(|(h, _)| h == first)
                        .expect("a failed host");
                    return Err(result.expect_err("a failure"));
                }
            }
        }
    }

    /// One run of an action; `only` limits it to these hosts (a retry).
    fn attempt(
        &self,
        full: &str,
        action: &Action,
        args: &TaskArgs,
        cell: Option<&str>,
        only: Option<&[String]>,
    ) -> Result<HostResults<()>> {
        let body = || {
            let here = env().host_string();
            let host = here.as_deref().and_then(|h| self.host(h));
            let place = match &here {
                Some(h) if host.is_some() => self.cell_of(h),
                _ => self.clone(),
            };
            let own = host.map(|h| h.own_settings().clone()).unwrap_or_default();
            with_settings(own, || {
                let _in = enter(place);
                action.task.call_as(full, args)
            })
        };
        let keep = |hosts: Vec<String>| -> Vec<String> {
            match only {
                Some(only) => hosts.into_iter().filter(|h| only.contains(h)).collect(),
                None => hosts,
            }
        };
        if let Some(host) = cell {
            if self.host(host).is_none() {
                return Err(Error::new(
                    ErrorKind::Settings,
                    format!("{} has no host '{host}'", self.shown()),
                ));
            }
            return Execute::new(full).per_host().hosts([host]).run_serial(body);
        }
        let marks = action.task.marks();
        match (&self.node.isolate, action.fanning) {
            (Some(role), Fanning::EachHost) => {
                let hosts = keep(self.isolation_hosts(role)?.iter().map(Host::name).collect());
                if hosts.is_empty() {
                    return Ok(HostResults::from_vec(Vec::new()));
                }
                Execute::new(full)
                    .per_host()
                    .hosts(hosts.clone())
                    .parallel(hosts.len() > 1)
                    .run(body)
            }
            (Some(role), Fanning::OneHost) => {
                let hosts = keep(self.isolation_hosts(role)?.iter().map(Host::name).collect());
                let Some(host) = choose_host(full, &hosts)? else {
                    return Ok(HostResults::from_vec(Vec::new()));
                };
                Execute::new(full).per_host().hosts([host]).run_serial(body)
            }
            _ if !marks.hosts.is_empty() || !marks.roles.is_empty() => {
                // A fab-style task keeps Fabric's rules whole (a serial run
                // stops at its first failure), and a retry runs it again.
                match Execute::new(full).marks(marks.clone()).run(body) {
                    Err(e) if e.kind() != ErrorKind::Interrupted => {
                        let host = e.host().unwrap_or(LOCAL_ONLY).to_string();
                        Ok(HostResults::from_vec(vec![(host, Err(e))]))
                    }
                    other => other,
                }
            }
            _ => Ok(HostResults::from_vec(vec![(
                LOCAL_ONLY.to_string(),
                body(),
            )])),
        }
    }
}

/// Adds the hosts of `more` that `hosts` does not have yet.
fn push_new(hosts: &mut Vec<Host>, more: &[Host]) {
    for h in more {
        if !hosts.iter().any(|x| x.name() == h.name()) {
            hosts.push(h.clone());
        }
    }
}

/// Lays a retry's results over the earlier ones.
fn merge(done: &mut Vec<(String, Result<()>)>, again: Vec<(String, Result<()>)>) {
    for (host, result) in again {
        match done.iter_mut().find(|(h, _)| *h == host) {
            Some(entry) => entry.1 = result,
            None => done.push((host, result)),
        }
    }
}

/// The host an `isolate_one_only` action runs on: the user's choice, or
/// the first when nobody may be asked.
fn choose_host(full: &str, hosts: &[String]) -> Result<Option<String>> {
    if hosts.len() <= 1 || !std::io::stdin().is_terminal() || interrupt::in_worker() {
        return Ok(hosts.first().cloned());
    }
    let i = choice(&format!("On which host should {full} run?"), hosts, Some(0))?;
    Ok(hosts.get(i).cloned())
}

enum Next {
    Retry,
    Skip,
    Abort,
}

/// What to do once an action has failed: asked in an interactive shell
/// (Retry / Skip / Abort), Abort otherwise.
fn after_failure(full: &str, failed: &[(String, String)]) -> Result<Next> {
    let asks = ASKS_ON_FAILURE.load(Ordering::SeqCst)
        && std::io::stdin().is_terminal()
        && !interrupt::in_worker()
        && !interrupt::interrupted()
        && !env().non_interactive();
    if !asks {
        return Ok(Next::Abort);
    }
    let mut text = format!("\n{full} failed:\n");
    for (host, why) in failed {
        let why = why.lines().next().unwrap_or("");
        if host == LOCAL_ONLY {
            text.push_str(&format!("    {why}\n"));
        } else {
            text.push_str(&format!("    {host}: {why}\n"));
        }
    }
    output::text(&text);
    let options = ["retry", "skip", "abort"];
    let answer = choice("Continue?", &options, Some(2))?;
    if interrupt::interrupted() {
        // Ctrl-C at the question.
        return Ok(Next::Abort);
    }
    Ok(match answer {
        0 => Next::Retry,
        1 => Next::Skip,
        _ => Next::Abort,
    })
}

/// Splits `web.deploy` into the node's place and the action's name,
/// from `place`.
pub(crate) fn locate(place: &Place, path: &str) -> Result<(Place, String)> {
    let parts: Vec<&str> = split_path(path).collect();
    let Some((name, nodes)) = parts.split_last() else {
        return Err(Error::new(
            ErrorKind::Settings,
            "no action named".to_string(),
        ));
    };
    let mut at = place.clone();
    at.cell = None;
    for n in nodes {
        at = at.child(n)?;
    }
    Ok((at, name.to_string()))
}

impl Node {
    /// Runs the action at `path` (`web.deploy`: a node path, then the
    /// action's name) with `args`, taking this node as the root: once per
    /// host of an isolated node, in parallel workers, or once here; the
    /// results are one per host, in host order (a single one, under
    /// `<local-only>`, for an action that ran once here).
    ///
    /// Any host's failure is the error, unless an interactive [`Shell`]
    /// asks Retry (the failed hosts again) / Skip (the results, failures
    /// and all) / Abort. Arguments that do not fit the action fail before
    /// anything runs, as do a path or a role mapping that leads nowhere.
    ///
    /// [`Shell`]: super::Shell
    pub fn call(&self, path: &str, args: TaskArgs) -> Result<HostResults<()>> {
        let (place, name) = locate(&Place::root(Arc::new(self.clone())), path)?;
        place.run(&name, &args, None)
    }

    /// Runs the action at `path` in one host's cell only
    /// (python-deployer's `web[host].deploy()`), in this thread.
    pub fn call_on(&self, path: &str, host: &str, args: TaskArgs) -> Result<HostResults<()>> {
        let (place, name) = locate(&Place::root(Arc::new(self.clone())), path)?;
        place.run(&name, &args, Some(host))
    }
}

/// From inside an action: runs another action of the same node, or of a
/// node below it (`cache.clear`), as [`Node::call`] does: an action marked
/// [`dont_isolate_yet`](super::Action::dont_isolate_yet) calls the actions
/// that fan out with it.
pub fn call(path: &str, args: TaskArgs) -> Result<HostResults<()>> {
    let here = here_or_error("call")?;
    let (place, name) = locate(&here, path)?;
    place.run(&name, &args, None)
}

/// From inside an action: runs another action in the cell of `host` only.
pub fn call_on(path: &str, host: &str, args: TaskArgs) -> Result<HostResults<()>> {
    let here = here_or_error("call_on")?;
    let (place, name) = locate(&here, path)?;
    place.run(&name, &args, Some(host))
}

/// The dotted path of the node whose action is running (`web.cache`;
/// empty for the root), or `None` outside any action.
pub fn here() -> Option<String> {
    current().map(|p| p.dotted())
}

fn here_or_error(what: &str) -> Result<Place> {
    current().ok_or_else(|| {
        Error::new(
            ErrorKind::Settings,
            format!("tree::{what}() is called from inside an action of a node"),
        )
    })
}

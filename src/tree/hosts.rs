//! The hosts of a node as one value: run a command on all of them, or on
//! the hosts of one role.

use std::path::Path;

use super::run::{current, Place};
use super::Host;
use crate::contrib::files;
use crate::error::{Error, ErrorKind, Result};
use crate::execute::{Execute, HostResults};
use crate::operations::remote::{run, sudo};
use crate::operations::transfer::put;
use crate::result::Output;
use crate::state::with_settings;

/// Some hosts of a node, each with the roles it has there: what
/// [`hosts()`] gives inside an action.
///
/// Its operations run on each host in turn, in host order, in the
/// current settings (a `cd`, `prefix` or `shell_env` scope around the call
/// holds on every host, as around [`run`](crate::run)), each host with its
/// own settings, and give one result per host. A host's failure is its
/// result, not the call's: the call fails only when it cannot start.
///
/// ```no_run
/// use twill::tree::hosts;
/// use twill::{cd, with_settings};
///
/// # fn action() -> twill::Result<()> {
/// let web = hosts().filter("web");
/// with_settings(cd("/srv/app"), || {
///     for (host, out) in web.run("git rev-parse HEAD")?.iter() {
///         twill::puts(&format!("{host}: {}", out.as_ref().map(|o| o.stdout()).unwrap_or("failed")));
///     }
///     Ok(())
/// })?;
/// let there = hosts().exists("/etc/app.conf")?;
/// let missing: Vec<&str> = there
///     .iter()
///     .filter(|(_, there)| matches!(there, Ok(false)))
///     .map(|(host, _)| host)
///     .collect();
/// # let _ = missing; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    hosts: Vec<(Host, Vec<String>)>,
}

/// Every host of the node whose action is running, with its roles (empty
/// outside any action). In a cell of an isolated node, the isolating role
/// holds the cell's host only.
pub fn hosts() -> Hosts {
    current().map(|p| Hosts::of(&p)).unwrap_or_default()
}

impl Hosts {
    /// Every host of a place, with its roles there.
    pub(crate) fn of(place: &Place) -> Hosts {
        let mut hosts: Vec<(Host, Vec<String>)> = Vec::new();
        for (role, members) in &place.roles {
            for h in members {
                match hosts.iter_mut().find(|(x, _)| x.name() == h.name()) {
                    Some((_, roles)) => roles.push(role.clone()),
                    None => hosts.push((h.clone(), vec![role.clone()])),
                }
            }
        }
        Hosts { hosts }
    }
}

/// The host of the cell the running action is in: on an isolated node,
/// or wherever the action runs on one host.
pub fn host() -> Result<Host> {
    let place = current().ok_or_else(|| {
        Error::new(
            ErrorKind::Settings,
            "tree::host() is called from inside an action of a node".to_string(),
        )
    })?;
    let name = place.cell.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::Settings,
            format!(
                "the action of {} runs on no one host (the node is not isolated)",
                place.shown()
            ),
        )
    })?;
    place.host(&name).ok_or_else(|| {
        Error::new(
            ErrorKind::Settings,
            format!("{} has no host '{name}'", place.shown()),
        )
    })
}

impl Hosts {
    /// The hosts that have the role `role`.
    pub fn filter(&self, role: &str) -> Hosts {
        Hosts {
            hosts: self
                .hosts
                .iter()
                .filter(|(_, roles)| roles.iter().any(|r| r == role))
                .cloned()
                .collect(),
        }
    }

    /// Their host strings, in order.
    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|(h, _)| h.name()).collect()
    }

    /// The hosts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().map(|(h, _)| h)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Calls `f` on each host in turn (its `host_string` set, its own
    /// settings laid over the current ones), one result per host.
    pub fn each<T>(&self, f: impl Fn() -> Result<T>) -> Result<HostResults<T>> {
        if self.hosts.is_empty() {
            return Ok(HostResults::from_vec(Vec::new()));
        }
        let hosts = self.hosts.clone();
        Execute::new("hosts")
            .hosts(self.names())
            .per_host()
            .unannounced()
            .quiet_local()
            .run_serial(|| {
                let here = crate::state::env().host_string();
                let own = hosts
                    .iter()
                    .find(|(h, _)| Some(h.name()) == here)
                    .map(|(h, _)| h.own_settings().clone())
                    .unwrap_or_default();
                with_settings(own, &f)
            })
    }

    /// [`run`](crate::run) on each host.
    pub fn run(&self, command: &str) -> Result<HostResults<Output>> {
        self.each(|| run(command))
    }

    /// [`sudo`](crate::sudo) on each host.
    pub fn sudo(&self, command: &str) -> Result<HostResults<Output>> {
        self.each(|| sudo(command))
    }

    /// [`put`](crate::put) on each host: the remote paths it wrote.
    pub fn put(&self, local: impl AsRef<Path>, remote: &str) -> Result<HostResults<Vec<String>>> {
        let local = local.as_ref();
        self.each(|| put(local, remote))
    }

    /// [`exists`](crate::contrib::files::exists) on each host.
    pub fn exists(&self, path: &str) -> Result<HostResults<bool>> {
        self.each(|| files::exists(path))
    }
}

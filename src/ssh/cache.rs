//! The connection cache: one authenticated connection per
//! `user@host:port`, reused by every operation and replaced when found
//! dead; the idle ones used least recently are closed when the cached
//! connections hold nearly all the descriptors the process may open. Also
//! the process-wide switches over every connection: closing them all,
//! forgetting them after `fork()`, and the interrupt.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;

use super::connection::Connection;
use super::{io, resolve, transport, ConnectOptions, SshError, Target};
use crate::sys;

struct Cache {
    map: HashMap<String, Arc<Connection>>,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| {
    Mutex::new(Cache {
        map: HashMap::new(),
    })
});

/// Lets go of `conn` if it is the one cached under its name (the hook a
/// connection calls when it is marked dead).
fn remove_from_cache(conn: &Connection) {
    if let Some(mut cache) = CACHE.try_lock_for(Duration::from_millis(200)) {
        let same = cache
            .map
            .get(&conn.name)
            .map(|c| std::ptr::eq(Arc::as_ptr(c), conn))
            .unwrap_or(false);
        if same {
            cache.map.remove(&conn.name);
        }
    }
}

/// Returns the cached connection for `target`, opening (and caching) one
/// when there is none or the cached one is dead.
pub(crate) fn connect(target: &Target, opts: &ConnectOptions) -> Result<Arc<Connection>, SshError> {
    let resolved = resolve::resolve(target, opts)?;
    let key = resolved.name();
    {
        let mut cache = CACHE.lock();
        if let Some(conn) = cache.map.get(&key) {
            if conn.is_alive() {
                return Ok(Arc::clone(conn));
            }
            cache.map.remove(&key);
        }
    }
    sys::raise_descriptor_limit();
    make_room();
    let established = transport::establish(&resolved, opts)?;
    let conn = Arc::new(Connection::new(&resolved, established, remove_from_cache));
    let mut cache = CACHE.lock();
    if let Some(existing) = cache.map.get(&key) {
        if existing.is_alive() {
            // Another thread won the race; use its connection.
            return Ok(Arc::clone(existing));
        }
    }
    cache.map.insert(key, Arc::clone(&conn));
    Ok(conn)
}

/// Closes the cached connection for `target`, if there is one, and opens
/// a new one in its place (Fabric's `connections.connect(host)`): for a
/// host that went away and may be back, where a connection that still
/// looks alive must not be trusted.
pub(crate) fn reconnect(
    target: &Target,
    opts: &ConnectOptions,
) -> Result<Arc<Connection>, SshError> {
    let key = resolve::resolve(target, opts)?.name();
    let old = CACHE.lock().map.remove(&key);
    if let Some(old) = old {
        old.shutdown();
    }
    connect(target, opts)
}

/// Before a new connection: closes the idle connections used least
/// recently while the cached ones hold more descriptors than the process
/// can spare, so that a run over many hosts never runs out of them. A
/// connection in use by an operation is never closed.
fn make_room() {
    let budget = sys::descriptor_budget();
    let fds = |c: &Connection| 1 + c.extra_fds.len();
    loop {
        let victim = {
            let mut cache = CACHE.lock();
            let held = |m: &HashMap<String, Arc<Connection>>| -> usize {
                m.values().map(|c| fds(c)).sum()
            };
            if held(&cache.map) + 3 <= budget {
                return;
            }
            // Dead connections go first, then idle ones.
            cache
                .map
                .retain(|_, c| c.is_alive() || Arc::strong_count(c) > 1);
            if held(&cache.map) + 3 <= budget {
                return;
            }
            let idle = cache
                .map
                .iter()
                .filter(|(_, c)| Arc::strong_count(c) == 1)
                .min_by_key(|(_, c)| *c.last_used.lock())
                .map(|(k, _)| k.clone());
            match idle.and_then(|k| cache.map.remove(&k)) {
                Some(c) => c,
                None => return,
            }
        };
        victim.shutdown();
    }
}

/// Closes every cached connection and returns their `user@host:port`
/// names, the host as ssh_config resolves it (Fabric's names), sorted.
pub(crate) fn disconnect_all() -> Vec<String> {
    let conns: Vec<Arc<Connection>> = {
        let mut cache = CACHE.lock();
        cache.map.drain().map(|(_, c)| c).collect()
    };
    let mut names: Vec<String> = conns.iter().map(|c| c.resolved_name.clone()).collect();
    names.sort();
    for c in &conns {
        c.shutdown();
    }
    drop(conns);
    names
}

/// For a process created by `fork()`: drops every cached connection
/// without sending anything on the inherited sockets, and closes this
/// process's copies of their descriptors. The parent's sessions are not
/// affected. Connections still referenced elsewhere refuse further use.
/// The child gets an interrupt of its own, lowered.
pub(crate) fn forget_all_after_fork() {
    // In the child only the calling thread exists; a lock held by another
    // thread of the parent at fork time would never be released.
    let mut cache = match CACHE.try_lock() {
        Some(c) => c,
        None => {
            // SAFETY: no other thread exists in this process to own it.
            unsafe { CACHE.force_unlock() };
            CACHE.lock()
        }
    };
    for (_, conn) in cache.map.drain() {
        conn.forgotten.store(true, Ordering::SeqCst);
        // SAFETY: these descriptors belong to the forgotten sessions, which
        // are never used again in this process.
        unsafe {
            libc::close(conn.fd);
            for fd in &conn.extra_fds {
                libc::close(*fd);
            }
        }
        std::mem::forget(conn);
    }
    drop(cache);
    io::reset_interrupt_after_fork();
    super::config::reset_after_fork();
}

/// Raises the process-wide interrupt: commands running on any connection
/// are stopped (SIGINT, then SIGKILL) and their `exec` returns
/// [`SshErrorKind::Interrupted`](super::SshErrorKind::Interrupted); transfers end after the call in progress,
/// removing their unfinished file. Every later operation fails the same
/// way until [`clear_interrupt`]. Safe to call from any thread, e.g. a
/// Ctrl-C handler.
pub(crate) fn interrupt_all() {
    io::raise_interrupt();
}

/// Lowers the process-wide interrupt, so that operations run again.
pub(crate) fn clear_interrupt() {
    io::clear_interrupt();
}

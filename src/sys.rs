//! Facts and limits of the local process that every layer may need, and
//! the words messages use for them; this module imports nothing of twill.

/// Raises the soft limit on open descriptors to the hard limit, once per
/// process, as OpenSSH-scale tools do: a serial run keeps a connection per
/// host, and each running parallel worker holds three pipes in the
/// caller. twill waits with poll(2), never select(2), so descriptors above
/// 1024 are no trouble.
pub(crate) fn raise_descriptor_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls on a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
                return;
            }
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
                || lim.rlim_max != libc::RLIM_INFINITY
            {
                return;
            }
        }
        // An unlimited hard limit: Linux allows up to fs.nr_open.
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<libc::rlim_t>().ok());
        if let Some(n) = nr_open {
            lim.rlim_cur = n;
            // SAFETY: plain syscall on a local struct.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        }
    });
}

/// How many descriptors long-lived things (cached connections) may hold:
/// the soft limit less a reserve for everything else a run opens (files,
/// pipes, worker pipes, a local command's descriptors).
pub(crate) fn descriptor_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall on a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024 - 64;
    }
    let soft = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
    let reserve = (soft / 4).min(64);
    soft.saturating_sub(reserve).max(4)
}

/// The one reading of a boolean written as text (settings, task arguments,
/// ssh_config): `true`, `yes`, `y`, `on`, `1` and `false`, `no`, `n`,
/// `off`, `0`, in any case, around white space. Anything else, the empty
/// text included, is no boolean.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A duration for a message: whole seconds as an integer (`2`), otherwise
/// with at most three decimals (`0.7`, `3.001`). Callers add "seconds",
/// as Fabric's messages always do.
pub(crate) fn seconds(d: std::time::Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The local user's login name: `$USER`, else the name of the process's
/// user in the password database, else `root`.
pub(crate) fn local_user() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    login_name().unwrap_or_else(|| "root".to_string())
}

/// The name of the process's user in the password database.
fn login_name() -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        let mut pw = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: pw, buf (with its length) and found are valid for writes.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                pw.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success found points to pw, now filled in, whose
        // strings are NUL-terminated and live in buf, alive here.
        let name = unsafe {
            let name = (*found).pw_name;
            (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name))
        };
        return name.map(|n| n.to_string_lossy().into_owned());
    }
}

/// The local user's home directory: `$HOME` when set and not empty, else
/// the one in the password database.
pub(crate) fn home_dir() -> Option<std::path::PathBuf> {
    std::env::home_dir()
}

/// The user's state directory: `$XDG_STATE_HOME` when it is an absolute
/// path, else `~/.local/state` (the XDG base directory rule).
pub(crate) fn state_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home_dir().map(|h| h.join(".local/state")))
}

/// Size of the local terminal (columns, rows), or 80x24.
pub(crate) fn terminal_size() -> (u32, u32) {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO, libc::STDERR_FILENO] {
        // SAFETY: TIOCGWINSZ fills a winsize struct.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::isatty(fd) == 1
                && libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0
                && ws.ws_col > 0
                && ws.ws_row > 0
            {
                return (u32::from(ws.ws_col), u32::from(ws.ws_row));
            }
        }
    }
    (80, 24)
}

/// `poll(2)` on `fds` for up to `timeout_ms` milliseconds (negative: no
/// limit); the number of descriptors with events. EINTR is returned as an
/// error of kind `Interrupted`.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> std::io::Result<usize> {
    // SAFETY: fds is a valid, writable array of fds.len() pollfd structs.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc as usize)
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_reads_as_messages_write_them() {
        assert_eq!(seconds(Duration::from_secs(2)), "2");
        assert_eq!(seconds(Duration::from_millis(700)), "0.7");
        assert_eq!(seconds(Duration::from_millis(3001)), "3.001");
        assert_eq!(seconds(Duration::ZERO), "0");
    }

    #[test]
    fn the_login_name_is_the_one_id_prints() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let expected = String::from_utf8(id.stdout).unwrap();
        assert_eq!(login_name().as_deref(), Some(expected.trim()));
    }
}

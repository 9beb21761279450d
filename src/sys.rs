//! Facts and limits of the local process that every layer may need; this
//! module imports nothing of twill.

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

/// The local user's login name.
pub(crate) fn local_user() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the name
    // is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".to_string()
}

//! The commands for whole projects: `rsync_project`, `upload_project`, `reboot`.
//!
//! `rsync_project` runs rsync here, over an OpenSSH client that connects
//! exactly as twill's engine does; `upload_project` packs a directory with
//! tar here and unpacks it on the host; `reboot` runs `reboot`.

use super::*;

/// The command `reboot` runs when given none (Fabric's default).
pub(crate) const REBOOT: &str = "reboot";

/// How an OpenSSH client reaches one host the way twill's engine does:
/// the engine's resolution of the host string, ssh_config and settings
/// (`operations/session.rs` fills it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshClient {
    /// The resolved name or address (ssh_config `HostName` applied).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_files: Vec<PathBuf>,
    /// Offer only the key files, not the agent's other keys.
    pub(crate) identities_only: bool,
    pub(crate) known_hosts: PathBuf,
    /// `StrictHostKeyChecking accept-new` rather than `yes`.
    pub(crate) accept_new: bool,
    pub(crate) connect_timeout: Duration,
    /// `ServerAliveInterval` and `ServerAliveCountMax`; `None`: off.
    pub(crate) keepalive: Option<(Duration, u32)>,
    /// The ssh_config file (`-F`), where it is not the client's default.
    pub(crate) ssh_config: Option<PathBuf>,
    /// Jump hosts, outermost first.
    pub(crate) jumps: Vec<SshClient>,
}

/// `%` doubled: ssh expands `%` tokens in `IdentityFile`,
/// `UserKnownHostsFile` and `ProxyCommand`.
fn ssh_percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// A file name as the value of an ssh `-o` option, which ssh splits on
/// whitespace and reads quotes and backslashes in: in double quotes, with
/// `"` and `\` escaped, when it holds any of those (or starts a comment).
fn ssh_option_path(path: &Path) -> String {
    let s = ssh_percent(&path.to_string_lossy());
    if s.is_empty()
        || s.starts_with('#')
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// Whole seconds for an ssh option, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The words (unquoted) of an OpenSSH client command that connects as `c`
/// says, up to the destination, which the caller adds. The first value of
/// an option is the one ssh keeps, so options given after these (rsync's
/// `ssh_opts`) cannot loosen the host key checking.
fn ssh_words(c: &SshClient) -> Vec<String> {
    let mut w: Vec<String> = vec!["ssh".into()];
    let opt = |w: &mut Vec<String>, o: String| {
        w.push("-o".into());
        w.push(o);
    };
    if let Some(config) = &c.ssh_config {
        w.push("-F".into());
        w.push(config.to_string_lossy().into_owned());
    }
    for key in &c.identity_files {
        w.push("-i".into());
        w.push(ssh_percent(&key.to_string_lossy()));
    }
    w.push("-p".into());
    w.push(c.port.to_string());
    if c.identities_only {
        opt(&mut w, "IdentitiesOnly=yes".into());
    }
    opt(
        &mut w,
        format!("UserKnownHostsFile={}", ssh_option_path(&c.known_hosts)),
    );
    opt(&mut w, "GlobalKnownHostsFile=/dev/null".into());
    let strict = if c.accept_new { "accept-new" } else { "yes" };
    opt(&mut w, format!("StrictHostKeyChecking={strict}"));
    opt(
        &mut w,
        format!("ConnectTimeout={}", whole_seconds(c.connect_timeout)),
    );
    if let Some((interval, count)) = c.keepalive {
        opt(
            &mut w,
            format!("ServerAliveInterval={}", whole_seconds(interval)),
        );
        opt(&mut w, format!("ServerAliveCountMax={count}"));
    }
    if let Some((jump, earlier)) = c.jumps.split_last() {
        let proxy = proxy_command(jump, earlier, &c.host, c.port);
        opt(&mut w, format!("ProxyCommand={}", ssh_percent(&proxy)));
    }
    w
}

/// The shell command of a `ProxyCommand`: an OpenSSH client to `jump`
/// (itself through `earlier`) that connects its standard input and output
/// to `host:port` (`-W`), with every value quoted. (`ssh -J` would not
/// do: OpenSSH gives the jump host's client none of the options above,
/// only `-F`.)
fn proxy_command(jump: &SshClient, earlier: &[SshClient], host: &str, port: u16) -> String {
    let hop = SshClient {
        jumps: earlier.to_vec(),
        ..jump.clone()
    };
    let mut words = ssh_words(&hop);
    words.extend([
        "-l".into(),
        hop.user.clone(),
        "-W".into(),
        format!("[{host}]:{port}"),
        hop.host.clone(),
    ]);
    words
        .iter()
        .map(|w| quote(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word of rsync's `--rsh` command, which rsync splits by itself (no
/// shell): on spaces, with words in single or double quotes where a
/// doubled quote stands for itself, and backslashes as plain characters.
fn rsh_word(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && !s.contains([' ', '\'', '"']) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', "''")))
    }
}

/// A local path for rsync: a leading `~` or `~user` expands; in a source
/// (`glob`), so do `*`, `?` and `[...]`; the rest is quoted.
fn local_path_word(path: &str, glob: bool) -> String {
    let (tilde, rest) = split_tilde(path);
    let rest = match (rest.is_empty(), glob) {
        (true, _) if !tilde.is_empty() => String::new(),
        (_, true) => glob_word(rest),
        (_, false) => quote(rest).into_owned(),
    };
    format!("{tilde}{rest}")
}

/// What one `rsync_project` call says, for [`rsync`].
#[derive(Debug, Clone)]
pub(crate) struct Rsync<'a> {
    pub(crate) delete: bool,
    pub(crate) exclude: &'a [String],
    /// rsync's options, shell text as the caller wrote them (Fabric's
    /// `default_opts`, `-pthrvz`).
    pub(crate) default_opts: &'a str,
    /// More options, shell text as the caller wrote them.
    pub(crate) extra_opts: &'a str,
    /// More words for the OpenSSH client, in rsync's `--rsh` syntax, as
    /// the caller wrote them.
    pub(crate) ssh_opts: &'a str,
    pub(crate) local_dir: &'a str,
    pub(crate) remote_dir: &'a str,
    pub(crate) upload: bool,
}

/// Fabric's `rsync_project` command, its words in Fabric's order:
/// `rsync [--delete] [--exclude X]... <default_opts> <extra_opts>
/// --rsh=<ssh ...> <from> <to>`, where the remote end is
/// `user@host:dir` (`user@[v6]:dir` for an IPv6 address) and `--rsh` is
/// an OpenSSH client that connects as `client` says.
pub(crate) fn rsync(spec: &Rsync<'_>, client: &SshClient) -> String {
    let mut words: Vec<String> = vec!["rsync".into()];
    if spec.delete {
        words.push("--delete".into());
    }
    for pattern in spec.exclude {
        words.push(format!("--exclude {}", quote(pattern)));
    }
    for opts in [spec.default_opts, spec.extra_opts] {
        if !opts.trim().is_empty() {
            words.push(opts.trim().to_string());
        }
    }
    let mut rsh: Vec<String> = ssh_words(client)
        .iter()
        .map(|w| rsh_word(w).into_owned())
        .collect();
    if !spec.ssh_opts.trim().is_empty() {
        rsh.push(spec.ssh_opts.trim().to_string());
    }
    words.push(format!("--rsh={}", quote(&rsh.join(" "))));
    let host = if client.host.contains(':') {
        format!("[{}]", client.host)
    } else {
        client.host.clone()
    };
    let remote = quote(&format!("{}@{host}:{}", client.user, spec.remote_dir)).into_owned();
    let local = local_path_word(spec.local_dir, spec.upload);
    if spec.upload {
        words.extend([local, remote]);
    } else {
        words.extend([remote, local]);
    }
    words.join(" ")
}

/// A name for tar's list of members: one starting with `-` gets `./`.
fn member(name: &str) -> String {
    if name.starts_with('-') {
        quote(&format!("./{name}")).into_owned()
    } else {
        quote(name).into_owned()
    }
}

/// Packs the directory `name` in `parent` into the gzipped tarball
/// `tarball` (Fabric's `tar -czf <tarball> -C <parent> <name>`).
pub(crate) fn tar_create(tarball: &Path, parent: &Path, name: &str) -> String {
    format!(
        "tar -czf {} -C {} {}",
        quote(&tarball.to_string_lossy()),
        quote(&parent.to_string_lossy()),
        member(name)
    )
}

/// Unpacks the gzipped tarball `tarball` here (Fabric's `tar -xzf`).
pub(crate) fn tar_extract(tarball: &str) -> String {
    format!("tar -xzf {}", member(tarball))
}

/// Removes the file `path` (Fabric's `rm -f`).
pub(crate) fn remove_file(path: &str) -> String {
    format!("rm -f {}", member(path))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn client(host: &str) -> SshClient {
        SshClient {
            host: host.into(),
            port: 2222,
            user: "deploy".into(),
            identity_files: vec![PathBuf::from("/keys/id_ed25519")],
            identities_only: true,
            known_hosts: PathBuf::from("/home/u/.ssh/known_hosts"),
            accept_new: false,
            connect_timeout: Duration::from_secs(10),
            keepalive: Some((Duration::from_secs(15), 3)),
            ssh_config: Some(PathBuf::from("/dev/null")),
            jumps: Vec::new(),
        }
    }

    fn spec(exclude: &[String], upload: bool) -> Rsync<'_> {
        Rsync {
            delete: false,
            exclude,
            default_opts: "-pthrvz",
            extra_opts: "",
            ssh_opts: "",
            local_dir: "build/",
            remote_dir: "/srv/app",
            upload,
        }
    }

    const SSH: &str = "ssh -F /dev/null -i /keys/id_ed25519 -p 2222 -o IdentitiesOnly=yes \
        -o UserKnownHostsFile=/home/u/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 \
        -o ServerAliveCountMax=3";

    #[test]
    fn rsync_keeps_fabric_order_and_connects_as_the_engine_does() {
        assert_eq!(
            rsync(&spec(&[], true), &client("web1")),
            format!("rsync -pthrvz --rsh='{SSH}' build/ deploy@web1:/srv/app")
        );
        assert_eq!(
            rsync(&spec(&[], false), &client("web1")),
            format!("rsync -pthrvz --rsh='{SSH}' deploy@web1:/srv/app build/")
        );
        let exclude = ["*.pyc".to_string(), "it's here".to_string()];
        let full = Rsync {
            delete: true,
            extra_opts: " --chmod=Dg+s ",
            ssh_opts: "-o Compression=yes",
            ..spec(&exclude, true)
        };
        let mut c = client("::1");
        c.accept_new = true;
        c.keepalive = None;
        let cmd = rsync(&full, &c);
        assert!(
            cmd.starts_with(
                "rsync --delete --exclude '*.pyc' --exclude 'it'\\''s here' -pthrvz --chmod=Dg+s --rsh='ssh "
            ),
            "{cmd}"
        );
        assert!(
            cmd.ends_with(
                "StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o Compression=yes' build/ 'deploy@[::1]:/srv/app'"
            ),
            "{cmd}"
        );
        assert!(!cmd.contains("ServerAlive"), "{cmd}");
    }

    #[test]
    fn rsync_quotes_every_value_for_each_reader() {
        let mut c = client("web1");
        c.identity_files = vec![PathBuf::from("/keys/it's 100%")];
        c.known_hosts = PathBuf::from("/home/a b/known \"hosts\"");
        c.ssh_config = None;
        let s = Rsync {
            local_dir: "~/my dir/*.txt",
            remote_dir: "/srv/$(id)",
            ..spec(&[], true)
        };
        // The shell reads the whole; rsync splits --rsh itself (a quote
        // doubled inside quotes); ssh reads `-o` values with double quotes
        // and expands `%`.
        let rsh = "ssh '/keys/it''s 100%%' -p 2222 -o IdentitiesOnly=yes \
            -o 'UserKnownHostsFile=\"/home/a b/known \\\"hosts\\\"\"' -o GlobalKnownHostsFile=/dev/null \
            -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=3"
            .replace("ssh '", "ssh -i '");
        assert_eq!(
            rsync(&s, &c),
            format!(
                "rsync -pthrvz --rsh={} ~/'my dir/'*.txt 'deploy@web1:/srv/$(id)'",
                quote(&rsh)
            )
        );
        // A download's local directory is a destination: no wildcards.
        let down = Rsync {
            local_dir: "out/*",
            ..spec(&[], false)
        };
        assert!(rsync(&down, &client("web1")).ends_with(" deploy@web1:/srv/app 'out/*'"));
    }

    #[test]
    fn jump_hosts_become_proxy_commands_that_connect_the_same_way() {
        let mut c = client("10.0.0.5");
        let mut jump = client("bastion");
        jump.user = "ops".into();
        jump.port = 22;
        c.jumps = vec![jump];
        let inner = "ssh -F /dev/null -i /keys/id_ed25519 -p 22 -o IdentitiesOnly=yes \
            -o UserKnownHostsFile=/home/u/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null \
            -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 \
            -o ServerAliveCountMax=3 -l ops -W '[10.0.0.5]:2222' bastion";
        assert_eq!(
            ssh_words(&c).last().unwrap(),
            &format!("ProxyCommand={inner}")
        );
        // In rsync's words the ProxyCommand is one quoted word (its quotes
        // doubled), and in the shell's the whole --rsh value is one word.
        let rsh = format!("{SSH} -o 'ProxyCommand={}'", inner.replace('\'', "''"));
        assert!(
            rsync(&spec(&[], true), &c).contains(&format!("--rsh={} build/", quote(&rsh))),
            "{}",
            rsync(&spec(&[], true), &c)
        );
        // Two jumps: the inner ProxyCommand is nested, and `%` is doubled
        // once for each ssh that expands the text (three here).
        let mut first = client("outer");
        first.identity_files = vec![PathBuf::from("/k/100%")];
        c.jumps.insert(0, first);
        let words = ssh_words(&c);
        let proxy = words.last().unwrap();
        assert!(proxy.starts_with("ProxyCommand=ssh "), "{proxy}");
        assert!(proxy.contains("-i /k/100%%%%%%%% -p 2222"), "{proxy}");
        assert!(
            proxy.contains(" -l deploy -W '\\''[bastion]:22'\\'' outer' "),
            "{proxy}"
        );
        assert!(
            proxy.ends_with(" -l ops -W '[10.0.0.5]:2222' bastion"),
            "{proxy}"
        );
    }

    #[test]
    fn project_tarball_commands_quote_names() {
        assert_eq!(
            tar_create(
                Path::new("/tmp/x/my app.tar.gz"),
                Path::new("/src"),
                "my app"
            ),
            "tar -czf '/tmp/x/my app.tar.gz' -C /src 'my app'"
        );
        assert_eq!(
            tar_create(Path::new("/t/-x.tar.gz"), Path::new("/s"), "-x"),
            "tar -czf /t/-x.tar.gz -C /s ./-x"
        );
        assert_eq!(tar_extract("app.tar.gz"), "tar -xzf app.tar.gz");
        assert_eq!(remove_file("a;b.tar.gz"), "rm -f 'a;b.tar.gz'");
        assert_eq!(remove_file("-r.tar.gz"), "rm -f ./-r.tar.gz");
    }
}

//! Fabric's `fabric.contrib.project`: a whole project directory and a
//! host, kept in step with rsync ([`rsync_project`]) or sent as a tarball
//! over SFTP ([`upload_project`]).

use std::path::{Path, PathBuf};

use crate::command::{self, Rsync, SshClient};
use crate::error::{Error, ErrorKind, Result};
use crate::events;
use crate::operations::context::cd;
use crate::operations::local::{local, local_with, LocalOptions};
use crate::operations::options::RunOptions;
use crate::operations::remote::run_or_sudo;
use crate::operations::session::{current_host, ssh_client};
use crate::operations::transfer::{upload_with, UploadOptions};
use crate::output;
use crate::result::Output;
use crate::state::{env, with_settings, Env, Settings};
use crate::sys;

/// Options of [`rsync_project_with`] (Fabric's `rsync_project` keywords).
///
/// ```
/// use twill::contrib::project::RsyncOptions;
///
/// let opts = RsyncOptions::new()
///     .local_dir("build/")
///     .exclude("*.pyc")
///     .exclude(".git")
///     .delete(true)
///     .extra_opts("--chmod=Dg+s");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct RsyncOptions {
    local_dir: Option<String>,
    exclude: Vec<String>,
    delete: bool,
    extra_opts: String,
    ssh_opts: String,
    capture: bool,
    upload: bool,
    default_opts: String,
}

impl Default for RsyncOptions {
    fn default() -> RsyncOptions {
        RsyncOptions {
            local_dir: None,
            exclude: Vec::new(),
            delete: false,
            extra_opts: String::new(),
            ssh_opts: String::new(),
            capture: false,
            upload: true,
            default_opts: "-pthrvz".to_string(),
        }
    }
}

impl RsyncOptions {
    /// Fabric's defaults: upload the directory `local` runs in, with
    /// `-pthrvz`.
    pub fn new() -> RsyncOptions {
        RsyncOptions::default()
    }

    /// The local directory (default: `../<name>` of the directory
    /// [`local`] runs in, so that it lands inside the remote directory
    /// under its own name). With a trailing `/` its contents land in the
    /// remote directory itself, as rsync has it. A leading `~` and, when
    /// uploading, the wildcards `*`, `?` and `[...]` expand; the rest is
    /// one path, quoted.
    pub fn local_dir(mut self, dir: impl Into<String>) -> Self {
        self.local_dir = Some(dir.into());
        self
    }

    /// One more `--exclude` pattern (call again for more).
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.exclude.push(pattern.into());
        self
    }

    /// Remove files at the receiving end that the sending end does not
    /// have (`--delete`).
    pub fn delete(mut self, yes: bool) -> Self {
        self.delete = yes;
        self
    }

    /// More rsync options, shell text written into the command as given.
    pub fn extra_opts(mut self, opts: impl Into<String>) -> Self {
        self.extra_opts = opts.into();
        self
    }

    /// More options for the OpenSSH client, added as given at the end of
    /// `--rsh` (rsync's own quoting applies there). They come after
    /// twill's: an option twill sets, such as `StrictHostKeyChecking`,
    /// keeps twill's value.
    pub fn ssh_opts(mut self, opts: impl Into<String>) -> Self {
        self.ssh_opts = opts.into();
        self
    }

    /// Capture rsync's output into the result instead of letting it
    /// through to the terminal.
    pub fn capture(mut self, yes: bool) -> Self {
        self.capture = yes;
        self
    }

    /// `true` (the default): from here to the host; `false`: from the host
    /// into the local directory.
    pub fn upload(mut self, yes: bool) -> Self {
        self.upload = yes;
        self
    }

    /// The options that replace `-pthrvz`, shell text as given.
    pub fn default_opts(mut self, opts: impl Into<String>) -> Self {
        self.default_opts = opts.into();
        self
    }
}

/// Brings `remote_dir` on the current host up to date with the local
/// directory, with rsync run here (Fabric's `rsync_project(remote_dir)`);
/// see [`rsync_project_with`].
pub fn rsync_project(remote_dir: impl AsRef<str>) -> Result<Output> {
    rsync_project_with(remote_dir, &RsyncOptions::new())
}

/// Runs rsync here between a local directory and `remote_dir` on the
/// current host, as Fabric's `rsync_project` does, and returns what
/// [`local`] returns for it.
///
/// The command is Fabric's, `rsync [--delete] [--exclude X]...
/// -pthrvz <extra_opts> --rsh=... <from> <to>`, printed first as
/// `[host] rsync_project: <command>` (`running` group). rsync reaches the
/// host through an OpenSSH client that connects exactly as twill does:
/// the address, port and user twill resolves (ssh_config's `HostName`
/// included), its key files, its known_hosts file and no other, strict
/// host key checking (`accept-new` with the `accept_new_host_keys`
/// setting), its connect timeout and keepalives, its ssh_config file, and
/// each jump host, as a `ProxyCommand` that connects the same way. A
/// password setting cannot be handed to it (a password never goes on a
/// command line): the client uses the keys, and otherwise asks at the
/// terminal. rsync must be installed here and on the host.
///
/// A failure of rsync is twill's [`local`] failure (an error of kind
/// [`ErrorKind::CommandFailed`] naming the host and the command, or with
/// `warn_only` a warning), and a missing host an error of kind
/// [`ErrorKind::Settings`].
///
/// ```no_run
/// use twill::contrib::project::{rsync_project_with, RsyncOptions};
/// use twill::{with_settings, Settings};
///
/// with_settings(Settings::new().host_string("deploy@web1"), || {
///     let opts = RsyncOptions::new().local_dir("dist/").exclude("*.map").delete(true);
///     rsync_project_with("/srv/www", &opts)
/// })?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn rsync_project_with(remote_dir: impl AsRef<str>, opts: &RsyncOptions) -> Result<Output> {
    let _helper = events::helper("rsync_project");
    let remote_dir = remote_dir.as_ref();
    let env = env();
    let host = current_host(&env, "rsync_project")?;
    let client = ssh_client(&env, &host)?;
    refuse_option_like(&client, &host.name)?;
    let local_dir = match &opts.local_dir {
        Some(dir) => dir.clone(),
        None => format!("../{}", name_of(&local_directory(&env))),
    };
    let spec = Rsync {
        delete: opts.delete,
        exclude: &opts.exclude,
        default_opts: &opts.default_opts,
        extra_opts: &opts.extra_opts,
        ssh_opts: &opts.ssh_opts,
        local_dir: &local_dir,
        remote_dir,
        upload: opts.upload,
    };
    let cmd = command::rsync(&spec, &client);
    output::running_line(&env, &host.name, &format!("rsync_project: {cmd}"));
    local_with(&cmd, &LocalOptions::new().capture(opts.capture))
        .map_err(|e| e.with_host(&host.name))
}

/// A host or user name that starts with `-` would reach the OpenSSH
/// client as an option: refused.
fn refuse_option_like(client: &SshClient, host: &str) -> Result<()> {
    for hop in std::iter::once(client).chain(&client.jumps) {
        for (what, value) in [("host name", &hop.host), ("user name", &hop.user)] {
            if value.starts_with('-') {
                return Err(Error::new(
                    ErrorKind::Settings,
                    format!("rsync_project() on {host}: the {what} '{value}' starts with '-', which ssh would read as an option"),
                )
                .with_host(host));
            }
        }
    }
    Ok(())
}

/// The directory [`local`] runs commands in: the `lcd` directory, else
/// the process's own.
fn local_directory(env: &Env) -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let lcwd = env.lcwd();
    let dir = if lcwd.is_empty() {
        here
    } else if let Some(rest) = lcwd.strip_prefix("~/").or((lcwd == "~").then_some("")) {
        sys::home_dir().unwrap_or_default().join(rest)
    } else {
        here.join(lcwd)
    };
    dir.canonicalize().unwrap_or(dir)
}

/// The last component of `dir`, as text.
fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Uploads `local_dir` into `remote_dir` on the current host as a
/// tarball, Fabric's `upload_project(local_dir, remote_dir)`; see
/// [`upload_project_with`].
pub fn upload_project(local_dir: impl AsRef<str>, remote_dir: impl AsRef<str>) -> Result<()> {
    upload_project_with(local_dir, remote_dir, false)
}

/// Packs `local_dir` with `tar -czf` into a private temporary directory
/// here, uploads `<name>.tar.gz` into `remote_dir` over SFTP, and unpacks
/// it there with `tar -xzf` followed by `rm -f` (even when unpacking
/// fails), through sudo when `use_sudo`; the local temporary directory is
/// always removed. A copy of `local_dir` then stands in `remote_dir`
/// under its own name, as Fabric's `upload_project` leaves it.
///
/// An empty `local_dir` is the directory [`local`] runs in (the `lcd`
/// directory, else the process's own), and a relative one is taken from
/// there; an empty `remote_dir` is the home directory, and a relative one
/// honours [`cd`]. Each step fails as it would alone: the
/// local `tar` as [`local`], the upload as [`upload`](crate::upload), the
/// remote commands as [`run`](crate::run) or [`sudo`](crate::sudo).
///
/// ```no_run
/// use twill::contrib::project::upload_project_with;
/// use twill::{with_settings, Settings};
///
/// // /srv/app/build on web1 becomes a copy of ./build.
/// with_settings(Settings::new().host_string("deploy@web1"), || {
///     upload_project_with("build", "/srv/app", true)
/// })?;
/// # Ok::<(), twill::Error>(())
/// ```
pub fn upload_project_with(
    local_dir: impl AsRef<str>,
    remote_dir: impl AsRef<str>,
    use_sudo: bool,
) -> Result<()> {
    let _helper = events::helper("upload_project");
    let local_dir = local_dir.as_ref();
    let remote_dir = remote_dir.as_ref();
    let env = env();
    current_host(&env, "upload_project")?;
    let base = local_directory(&env);
    let trimmed = local_dir.trim_end_matches('/');
    let dir = if local_dir.is_empty() {
        base
    } else if trimmed.is_empty() {
        PathBuf::from("/")
    } else if let Some(rest) = trimmed.strip_prefix("~/") {
        sys::home_dir().unwrap_or_default().join(rest)
    } else {
        base.join(trimmed)
    };
    let name = name_of(&dir);
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    if name.is_empty() || name == ".." {
        return Err(Error::new(
            ErrorKind::Settings,
            format!(
                "upload_project() needs a directory with a name, not '{}'",
                dir.display()
            ),
        ));
    }
    let tar_file = format!("{name}.tar.gz");
    let target = if remote_dir.is_empty() {
        tar_file.clone()
    } else {
        format!("{}/{tar_file}", remote_dir.trim_end_matches('/'))
    };
    let temp = tempfile::Builder::new()
        .prefix("twill-upload-project-")
        .tempdir()
        .map_err(|e| Error::io("upload_project() could not make a temporary directory", e))?;
    let tarball = temp.path().join(&tar_file);
    local(command::tar_create(&tarball, &parent, &name))?;
    upload_with(
        &tarball,
        &target,
        &UploadOptions::new().use_sudo(use_sudo).use_glob(false),
    )?;
    let runner = |c: &str| run_or_sudo(c, &RunOptions::new(), use_sudo);
    let scope = if remote_dir.is_empty() {
        Settings::new()
    } else {
        cd(remote_dir)
    };
    with_settings(scope, || {
        let unpacked = runner(&command::tar_extract(&tar_file));
        let removed = runner(&command::remove_file(&tar_file));
        unpacked?;
        removed?;
        Ok(())
    })
}

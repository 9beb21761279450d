//! The `twill` command: Fabric's `fab` options for ad-hoc work on many
//! hosts, and a starting point for a fabfile of your own.
//!
//! ```text
//! twill -H web1,web2 -- uname -a
//! twill -H web1,web2 --sudo -- systemctl restart nginx
//! twill -H web1 --tty -- vim /etc/motd    # a real terminal, as ssh -t
//! twill -H web1,web2 put dist/app.tar.gz /srv/releases/
//! twill -H web1,web2 get /var/log/app.log 'logs/%(host)s.log'
//! twill new deploy-tasks
//! twill log                      # the runs in the journal
//! twill log show last --failed   # what failed in the last one
//! twill --retry-failed           # its failed hosts, again
//! ```
//!
//! `new` is a task like `put` and `get`, not a separate subcommand: the
//! command line stays Fabric's one grammar (options and tasks in any
//! order, `twill -l` lists it, `twill -d new` documents it), and a name
//! after `--` or given to `-H` is never mistaken for it. `log` as the
//! first word is the one exception: it is `--log`, which every program
//! built on `Tasks` has.

use std::path::Path;
use std::process::ExitCode;

use twill::{Error, ErrorKind, Task, TaskArgs, Tasks};

/// `put` or `get`: the two words after the name are the paths, verbatim.
fn transfer_task(name: &'static str, doc: &'static str) -> Task {
    Task::new(name, doc, move |args| {
        let [from, to] = args.positional() else {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{name} needs two paths: {name} FROM TO"),
            ));
        };
        if name == "put" {
            twill::upload(from, to)?;
        } else {
            twill::download(from, to)?;
        }
        Ok(())
    })
    .takes_words(2)
}

/// What `twill -d pipe` shows.
const PIPE_DOC: &str =
    "Stream one host's command into another's: pipe 'HOST:COMMAND' 'HOST:COMMAND'

The standard output of the first command goes to the standard input of
the second, through twill (never through a file), as fast as the
second takes it; each command's standard error is printed as its
[host] err: lines. If the receiver fails, the sender is stopped; if
the sender fails, the receiver is stopped before the end of its input.
The exit code is 0 when both succeed, 1 otherwise, with the failing
host, command and exit code in the error.

Each word is HOST:COMMAND, split at the first ':' after the host
string. A host string is user@host, user@host:port or [IPv6]:port, so
the ':' after the host is the first one, unless digits follow it up to
another ':' (a port), or it is inside [brackets]:

  twill pipe 'db1:mysqldump app' 'db2:mysql app'
  twill pipe 'me@db1:2222:mysqldump app' '[fe80::1]:2200:mysql app'

The -H and -R hosts play no part: the words name both hosts.";

/// `pipe`'s word split into its host string and command, or `None` when
/// it has no ':' after a host (see [`PIPE_DOC`]).
fn host_and_command(word: &str) -> Option<(&str, &str)> {
    // The ':' that ends the host part: after a bracketed address, or the
    // first one.
    let search_from = if word.starts_with('[') || word.contains("@[") {
        word.find(']')? + 1
    } else {
        0
    };
    let first = search_from + word[search_from..].find(':')?;
    let after = &word[first + 1..];
    let end = match after.find(':') {
        Some(k) if k > 0 && after[..k].bytes().all(|b| b.is_ascii_digit()) => first + 1 + k,
        _ => first,
    };
    let (host, command) = (&word[..end], &word[end + 1..]);
    (!host.is_empty() && !command.trim().is_empty()).then_some((host, command))
}

/// `pipe FROM TO`.
fn pipe_task(args: &TaskArgs) -> twill::Result<()> {
    let usage_text = "pipe needs two words HOST:COMMAND: pipe 'db1:mysqldump app' 'db2:mysql app'";
    let [from, to] = args.positional() else {
        return Err(usage(usage_text.into()));
    };
    let (Some(from), Some(to)) = (host_and_command(from), host_and_command(to)) else {
        return Err(usage(usage_text.into()));
    };
    twill::pipe(from, to)?;
    Ok(())
}

/// What `twill -d new` shows.
const NEW_DOC: &str = "Create a cargo project for your own tasks: new DIRECTORY

The project is named after the directory's last part. Its Cargo.toml
depends on twill and carries the [patch.crates-io] entry that gives it
twill's patched libssh2-sys (Cargo reads [patch] only in the project it
builds); its src/main.rs has two sample tasks, and its README.md says how
to run them. Built from a twill checkout, the project points at that
checkout and starts from its Cargo.lock, the versions twill is tested
with; otherwise it depends on twill from crates.io.";

/// The twill checkout this binary was built from, if it is still there
/// with its patched libssh2-sys.
fn checkout() -> Option<&'static Path> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.join("vendor/libssh2-sys/Cargo.toml")
        .is_file()
        .then_some(dir)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The new project's Cargo.toml: twill from `checkout` (with its
/// libssh2-sys as the patch), or from crates.io.
fn cargo_toml(name: &str, checkout: Option<&Path>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        "[package]\nname = {}\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
        toml_string(name)
    );
    match checkout {
        Some(dir) => {
            let vendored = dir.join("vendor/libssh2-sys");
            out.push_str(&format!(
                "# twill from the checkout this project was made with. For the crates.io\n\
                 # release instead:  twill = \"{version}\"\n\
                 twill = {{ path = {} }}\n\n\
                 [patch.crates-io]\n\
                 # twill's libssh2-sys, with two patches: AES in whole packets, and SFTP\n\
                 # requests sized by the server's limits (twill's vendor/README.md says\n\
                 # why and by how much). Cargo reads [patch] only in the project it builds,\n\
                 # never in a dependency: without this line the project gets the stock\n\
                 # libssh2-sys and its slower transfers. With twill from crates.io, keep\n\
                 # it pointing at a twill checkout, or at twill's repository:\n\
                 #   libssh2-sys = {{ git = \"<twill's repository>\", rev = \"<commit>\" }}\n\
                 libssh2-sys = {{ path = {} }}\n",
                toml_string(&dir.to_string_lossy()),
                toml_string(&vendored.to_string_lossy()),
            ));
        }
        None => {
            out.push_str(&format!(
                "twill = \"{version}\"\n\n\
                 # twill's libssh2-sys has two patches (AES in whole packets, SFTP requests\n\
                 # sized by the server's limits) that the crates.io libssh2-sys lacks.\n\
                 # Cargo reads [patch] only in the project it builds, so this project\n\
                 # needs its own entry: point it at a twill checkout (vendor/libssh2-sys)\n\
                 # or at twill's repository, and uncomment it.\n\
                 # [patch.crates-io]\n\
                 # libssh2-sys = {{ path = \"<twill checkout>/vendor/libssh2-sys\" }}\n\
                 # libssh2-sys = {{ git = \"<twill's repository>\", rev = \"<commit>\" }}\n"
            ));
        }
    }
    out
}

/// The new project's src/main.rs.
const MAIN_RS: &str = r#"//! __NAME__: tasks for many machines over SSH, with twill's command line
//! (Fabric's `fab`). See README.md for how to run them.

use std::process::ExitCode;

use twill::{cd, run, settings, task, Tasks};

task! {
    /// Show how long each host has been up.
    ///
    /// Runs on every host at once, as Fabric's @parallel does.
    #[parallel]
    fn uptime() -> twill::Result<()> {
        run("uptime")?;
        Ok(())
    }
}

task! {
    /// Check out a branch of the application in /srv/app.
    ///
    /// The branch defaults to main: deploy:branch=next picks another.
    fn deploy(branch: String = "main") -> twill::Result<()> {
        // Fabric's `with cd("/srv/app"):`, until the end of the function.
        let _in_app = settings(cd("/srv/app"));
        run(&format!("git checkout {branch}"))?;
        Ok(())
    }
}

fn main() -> ExitCode {
    Tasks::new().tasks([uptime::task(), deploy::task()]).main()
}
"#;

/// The new project's README.md.
const README_MD: &str = r#"# __NAME__

Tasks for many machines over SSH, written in Rust with
[twill](https://crates.io/crates/twill), which keeps Fabric 1.x's API and
its `fab` command line.

```sh
cargo run -- -l                            # list the tasks
cargo run -- -d deploy                     # one task's documentation
cargo run -- -H web1,web2 uptime           # run a task on two hosts
cargo run -- -H web1 deploy:branch=next    # with an argument
cargo run -- --help                        # every option
```

The tasks are the functions declared with `twill::task!` in
`src/main.rs`. Fabric's decorators are attributes above them:
`#[roles("web")]`, `#[hosts("web1")]`, `#[parallel]`, `#[serial]`,
`#[runs_once]`, `#[task(alias = "d")]`; a task runs another with
`other::execute(args)`, as Fabric's `execute(other, args)`. Passwords come
from `TWILL_PASSWORD` (and `TWILL_SUDO_PASSWORD`), a file
(`--password-file`), or a prompt.

`cargo build --release` makes `target/release/__NAME__`, which runs like
`fab` from anywhere. `Cargo.toml` says where twill comes from, and why it
carries a `[patch.crates-io]` entry.
"#;

const GITIGNORE: &str = "/target\n";

fn usage(msg: String) -> Error {
    Error::new(ErrorKind::Usage, msg)
}

/// `new DIRECTORY`.
fn new_project(args: &TaskArgs) -> twill::Result<()> {
    let [path] = args.positional() else {
        return Err(usage(
            "new needs the directory to create: new DIRECTORY".into(),
        ));
    };
    let dir = Path::new(path);
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if !valid || name == "twill" {
        return Err(usage(format!(
            "new: '{name}' cannot name a cargo package that depends on twill (use letters, digits, '-' and '_', starting with a letter, and not 'twill')"
        )));
    }
    if dir.exists() {
        return Err(usage(format!("new: '{}' already exists", dir.display())));
    }
    if twill::env().dry_run() {
        twill::puts(&format!(
            "Dry run: would create the cargo project {name} in {}.",
            dir.display()
        ));
        return Ok(());
    }
    let io = |what: &Path, e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("new: cannot write {}: {e}", what.display()),
        )
    };
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| io(&src, e))?;
    let checkout = checkout();
    let mut files = vec![
        (dir.join("Cargo.toml"), cargo_toml(name, checkout)),
        (src.join("main.rs"), MAIN_RS.replace("__NAME__", name)),
        (dir.join("README.md"), README_MD.replace("__NAME__", name)),
        (dir.join(".gitignore"), GITIGNORE.to_string()),
    ];
    if let Some(lock) = checkout.and_then(|c| std::fs::read_to_string(c.join("Cargo.lock")).ok()) {
        files.push((dir.join("Cargo.lock"), lock));
    }
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    twill::puts(&format!(
        "Created the cargo project {name} in {}: its tasks are in src/main.rs, and `cargo run -- -l` in it lists them.",
        dir.display()
    ));
    Ok(())
}

fn main() -> ExitCode {
    let tasks = Tasks::new()
        .program_name("twill")
        .task(transfer_task(
            "put",
            "Upload LOCAL to REMOTE on every host: put LOCAL REMOTE",
        ))
        .task(transfer_task(
            "get",
            "Download REMOTE from every host to LOCAL: get REMOTE LOCAL",
        ))
        .task(
            Task::new("pipe", PIPE_DOC, pipe_task)
                .takes_words(2)
                .runs_once(),
        )
        .task(
            Task::new("new", NEW_DOC, new_project)
                .takes_words(1)
                .runs_once(),
        );
    // `twill log ...` is the journal's `--log ...`.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|w| w == "log") {
        argv[1] = "--log".into();
    }
    tasks.main_with(argv)
}

#[cfg(test)]
mod unit {
    use super::host_and_command;

    #[test]
    fn a_pipe_word_splits_after_its_host_string() {
        assert_eq!(
            host_and_command("db1:mysqldump app"),
            Some(("db1", "mysqldump app"))
        );
        assert_eq!(
            host_and_command("me@db1:2222:mysqldump app"),
            Some(("me@db1:2222", "mysqldump app"))
        );
        assert_eq!(
            host_and_command("db1:date +%H:%M"),
            Some(("db1", "date +%H:%M"))
        );
        assert_eq!(host_and_command("db1:22"), Some(("db1", "22")));
        assert_eq!(
            host_and_command("[fe80::1]:2200:cat"),
            Some(("[fe80::1]:2200", "cat"))
        );
        assert_eq!(host_and_command("me@[::1]:ls"), Some(("me@[::1]", "ls")));
        assert_eq!(host_and_command("db1"), None);
        assert_eq!(host_and_command(":ls"), None);
        assert_eq!(host_and_command("db1: "), None);
    }
}

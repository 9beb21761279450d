//! The interactive shell over a tree: browse it like a file system, run
//! its actions, open a terminal on its hosts.

mod complete;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use reedline::{
    default_emacs_keybindings, default_vi_insert_keybindings, default_vi_normal_keybindings,
    ColumnarMenu, Emacs, FileBackedHistory, KeyCode, KeyModifiers, MenuBuilder, Reedline,
    ReedlineEvent, ReedlineMenu, Signal, Vi,
};

use super::run::{ask_on_failure, Place};
use super::{Host, Node};
use crate::cli::{parse_task_call, TaskArgs, Tasks};
use crate::colors;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, Outcome};
use crate::execute::LOCAL_ONLY;
use crate::interrupt;
use crate::operations::options::RunOptions;
use crate::operations::prompt::choice;
use crate::operations::remote::{open_shell, run_with, sudo_with};
use crate::output;
use crate::state::{with_settings, Settings};
use complete::{Completion, PathPrompt};

/// The shell's own commands, as completion offers them.
const BUILTINS: &[(&str, &str)] = &[
    (
        "cd",
        "go to a node: cd web cache, cd web.cache, cd .., cd -, cd /",
    ),
    ("ls", "the children and actions of a node"),
    ("pwd", "where you are"),
    (
        "find",
        "every node and action below here, or those whose path holds a text",
    ),
    (
        "inspect",
        "a node's hosts per role, its actions and what they do",
    ),
    (
        "connect",
        "an interactive login shell on one host of this node",
    ),
    ("run", "a command on every host of this node"),
    ("sudo", "a command through sudo on every host of this node"),
    ("dry-run", "what an action would run, without running it"),
    ("help", "these commands"),
    ("exit", "leave the shell (Ctrl-D too)"),
];

/// An interactive shell over a tree of [`Node`]s (python-deployer's):
/// `cd`/`ls`/`pwd`/`find` move around the tree; typing an action's name
/// and its arguments (`deploy v1.2 restart=yes`, or `deploy:v1.2`) runs
/// it; `inspect`, `connect`, `run`, `sudo`, `dry-run` and `help` are
/// built in. Tab completes commands, nodes, actions and arguments
/// (builtins in cyan, nodes in their group's colour); the line editor has
/// emacs keys (vi with [`vi_mode`](Shell::vi_mode)), a history kept in a
/// file and Ctrl-R to search it.
///
/// Ctrl-C during an action stops it (its workers and remote commands) and
/// comes back to the prompt; when an action fails, the shell asks Retry
/// (the failed hosts again), Skip or Abort. Ctrl-D or `exit` leaves.
/// Read from a pipe instead of a terminal, the shell runs each line and
/// stops at the first that fails.
///
/// ```no_run
/// use twill::tree::{Node, Shell};
///
/// fn main() -> std::process::ExitCode {
///     let root = Node::new("site").role("web", ["web1", "web2"]);
///     // site                      the shell
///     // site --path web           the shell, at a node
///     // site -- web.deploy v1.2   one action, exit status 0 or 1
///     Shell::new(root).main()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Shell {
    root: Arc<Node>,
    start: String,
    history: Option<PathBuf>,
    vi: bool,
}

/// The command line of a program that ends in [`Shell::main`].
#[derive(Parser, Debug)]
#[command(about = "A deployment tree: its shell, or one of its actions")]
struct ShellArgs {
    /// Start the shell at this node (`web.cache`).
    #[arg(long, value_name = "NODE")]
    path: Option<String>,
    /// Take every question's default without asking; a question without
    /// one is an error.
    #[arg(long)]
    non_interactive: bool,
    /// Show what the actions would run, without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Fabric's lines for actions that run on several hosts at once, even
    /// at a terminal.
    #[arg(long, conflicts_with = "live")]
    linewise: bool,
    /// The live per-host view for actions that run on several hosts at
    /// once (by default at a terminal).
    #[arg(long)]
    live: bool,
    /// Vi keys in the line editor.
    #[arg(long)]
    vi: bool,
    /// The file that keeps the shell's history.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Run this action (a node path, the action and its arguments) and
    /// exit: 0 when it succeeded everywhere, 1 otherwise.
    #[arg(last = true, value_name = "ACTION")]
    action: Vec<String>,
}

impl Shell {
    /// A shell over the tree whose root is `root`.
    pub fn new(root: Node) -> Shell {
        Shell {
            root: Arc::new(root),
            start: String::new(),
            history: None,
            vi: false,
        }
    }

    /// A shell over fab-style tasks: namespaces become nodes (see
    /// [`Node::from_tasks`]).
    pub fn from_tasks(name: impl Into<String>, tasks: &Tasks) -> Shell {
        Shell::new(Node::from_tasks(name, tasks))
    }

    /// Starts at the node at `path` (`web.cache`) instead of the root.
    pub fn start_at(mut self, path: impl Into<String>) -> Shell {
        self.start = path.into();
        self
    }

    /// Keeps the history in `path` (by default, `twill/history/<root>`
    /// under `$XDG_STATE_HOME`, else `~/.local/state`).
    pub fn history_file(mut self, path: impl Into<PathBuf>) -> Shell {
        self.history = Some(path.into());
        self
    }

    /// Vi keys (insert and normal modes) instead of emacs keys.
    pub fn vi_mode(mut self, yes: bool) -> Shell {
        self.vi = yes;
        self
    }

    /// Parses the process's command line (`--path NODE`,
    /// `--non-interactive`, `--dry-run`, `--vi`, `--history FILE`, and
    /// `-- ACTION ARGS...` to run one action and exit), then runs the
    /// shell or the action. The exit code is 0 when all went well, 1 when
    /// something failed, 2 for a command line it cannot use.
    pub fn main(&self) -> ExitCode {
        let args = match ShellArgs::try_parse() {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
        let mut shell = self.clone().vi_mode(args.vi || self.vi);
        if let Some(path) = args.path {
            shell = shell.start_at(path);
        }
        if let Some(file) = args.history {
            shell = shell.history_file(file);
        }
        let mut scope = Settings::new()
            .non_interactive(args.non_interactive)
            .dry_run(args.dry_run);
        if args.linewise || args.live {
            scope = scope.live(args.live);
        }
        let outcome = with_settings(scope, || {
            if args.action.is_empty() {
                shell.run()
            } else {
                let mut session = shell.session()?;
                session.run_words(&args.action)
            }
        });
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                report(&e);
                ExitCode::from(1)
            }
        }
    }

    /// Runs the shell until `exit` or Ctrl-D: at a terminal, with the line
    /// editor; otherwise each line of standard input in turn, stopping at
    /// the first that fails (its error is the result).
    pub fn run(&self) -> Result<()> {
        let mut session = self.session()?;
        if !std::io::stdin().is_terminal() {
            for line in std::io::stdin().lock().lines() {
                let line =
                    line.map_err(|e| Error::new(ErrorKind::Io, format!("reading a command: {e}")))?;
                if session.line(&line)? == Flow::Exit {
                    break;
                }
            }
            return Ok(());
        }
        ask_on_failure(true);
        let _asks = AskGuard;
        let mut editor = self.editor(session.here.clone())?;
        loop {
            let prompt = PathPrompt::new(&session.cwd);
            match editor.read_line(&prompt) {
                Ok(Signal::Success(line)) => match session.line(&line) {
                    Ok(Flow::Exit) => break,
                    Ok(Flow::Go) => {}
                    Err(e) => report(&e),
                },
                Ok(Signal::CtrlC) => {}
                Ok(Signal::CtrlD) => break,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("the line editor failed: {e}"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn session(&self) -> Result<Session> {
        let cwd = Place::at(self.root.clone(), &self.start)?;
        Ok(Session {
            previous: cwd.clone(),
            here: Arc::new(Mutex::new(cwd.clone())),
            cwd,
        })
    }

    fn history_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.history {
            return Some(p.clone());
        }
        let state = crate::sys::state_dir()?;
        let name: String = self
            .root
            .name()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(state.join("twill/history").join(name))
    }

    fn editor(&self, here: Arc<Mutex<Place>>) -> Result<Reedline> {
        let menu = ColumnarMenu::default()
            .with_name("completion_menu")
            .with_marker(" > ");
        let tab = ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion_menu".to_string()),
            ReedlineEvent::MenuNext,
        ]);
        let mode: Box<dyn reedline::EditMode> = if self.vi {
            let mut insert = default_vi_insert_keybindings();
            insert.add_binding(KeyModifiers::NONE, KeyCode::Tab, tab);
            Box::new(Vi::new(insert, default_vi_normal_keybindings()))
        } else {
            let mut keys = default_emacs_keybindings();
            keys.add_binding(KeyModifiers::NONE, KeyCode::Tab, tab);
            Box::new(Emacs::new(keys))
        };
        let mut editor = Reedline::create()
            .with_completer(Box::new(Completion::new(here)))
            .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
            .with_quick_completions(true)
            .with_partial_completions(true)
            .with_edit_mode(mode);
        if let Some(path) = self.history_path() {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match FileBackedHistory::with_file(1000, path.clone()) {
                Ok(history) => editor = editor.with_history(Box::new(history)),
                Err(e) => output::text(&format!(
                    "(no history: {} cannot be used: {e})\n",
                    output::path_text(&path)
                )),
            }
        }
        Ok(editor)
    }
}

/// Stops failed actions from asking once the shell has returned.
struct AskGuard;

impl Drop for AskGuard {
    fn drop(&mut self) {
        ask_on_failure(false);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Exit,
}

/// Where the shell is, and where it was.
struct Session {
    cwd: Place,
    previous: Place,
    /// The current node, as the completion sees it.
    here: Arc<Mutex<Place>>,
}

impl Session {
    fn go(&mut self, to: Place) {
        self.previous = std::mem::replace(&mut self.cwd, to);
        *self.here.lock().unwrap_or_else(|e| e.into_inner()) = self.cwd.clone();
    }

    /// Runs one line.
    fn line(&mut self, line: &str) -> Result<Flow> {
        let words = shlex::split(line)
            .ok_or_else(|| Error::new(ErrorKind::Usage, format!("unbalanced quotes in: {line}")))?;
        let Some((first, rest)) = words.split_first() else {
            return Ok(Flow::Go);
        };
        match first.as_str() {
            "exit" | "quit" => return Ok(Flow::Exit),
            "cd" => self.cd(rest)?,
            "ls" => self.ls(rest)?,
            "pwd" => output::text(&format!("{}\n", shown_path(&self.cwd))),
            "find" => self.find(rest.first().map(String::as_str).unwrap_or("")),
            "inspect" => self.inspect(rest)?,
            "connect" => self.connect(rest.first().map(String::as_str))?,
            "run" | "sudo" => self.ad_hoc(first == "sudo", &rest.join(" "))?,
            "dry-run" => with_settings(Settings::new().dry_run(true), || self.run_words(rest))?,
            "help" => self.help(),
            _ => self.run_words(&words)?,
        }
        Ok(Flow::Go)
    }

    /// The node that `words` lead to from here (`..`, `/`, `-`, names,
    /// dotted or slashed paths).
    fn walk(&self, words: &[String]) -> Result<Place> {
        let mut at = self.cwd.clone();
        for word in words {
            if word == "-" {
                at = self.previous.clone();
                continue;
            }
            if word.starts_with('/') {
                at = Place::root(at.root.clone());
            }
            for segment in word.split('/') {
                if segment == ".." {
                    at = at.parent();
                    continue;
                }
                for name in super::split_path(segment) {
                    at = at.child(name)?;
                }
            }
        }
        Ok(at)
    }

    fn cd(&mut self, words: &[String]) -> Result<()> {
        let to = if words.is_empty() {
            Place::root(self.cwd.root.clone())
        } else {
            self.walk(words)?
        };
        self.go(to);
        Ok(())
    }

    fn ls(&self, words: &[String]) -> Result<()> {
        let at = self.walk(words)?;
        let mut out = String::new();
        for child in at.node.children() {
            let group = child.group.as_deref().or(at.group.as_deref());
            out.push_str(&format!("{}/\n", complete::paint_node(child.name(), group)));
        }
        for action in at.node.actions() {
            out.push_str(&format!("{}\n", action.name()));
        }
        output::text(&out);
        Ok(())
    }

    fn find(&self, text: &str) {
        fn walk(place: &Place, text: &str, out: &mut String) {
            let base = shown_path(place);
            let sep = if base.ends_with('/') { "" } else { "/" };
            for action in place.node.actions() {
                let path = format!("{base}{sep}{}", action.name());
                if path.contains(text) {
                    out.push_str(&format!("{path}\n"));
                }
            }
            for child in place.node.children() {
                let Ok(child) = place.child(child.name()) else {
                    continue;
                };
                let path = shown_path(&child);
                if path.contains(text) {
                    out.push_str(&format!("{path}/\n"));
                }
                walk(&child, text, out);
            }
        }
        let mut out = String::new();
        walk(&self.cwd, text, &mut out);
        output::text(&out);
    }

    fn inspect(&self, words: &[String]) -> Result<()> {
        let at = self.walk(words)?;
        let mut out = format!(
            "Node {}",
            complete::paint_node(&shown_path(&at), at.group.as_deref())
        );
        if let Some(group) = &at.group {
            out.push_str(&format!(" (group {group})"));
        }
        out.push('\n');
        if !at.node.description().is_empty() {
            out.push_str(&format!("  {}\n", at.node.description()));
        }
        if let Some(role) = &at.node.isolate {
            out.push_str(&format!(
                "Isolated on role {role}: actions run once per host.\n"
            ));
        }
        out.push_str("Roles:\n");
        if at.roles.is_empty() {
            out.push_str("  (none)\n");
        }
        for (role, hosts) in &at.roles {
            let names: Vec<String> = hosts.iter().map(Host::name).collect();
            out.push_str(&format!("  {role}: {}\n", names.join(", ")));
        }
        out.push_str("Actions:\n");
        if at.node.actions().is_empty() {
            out.push_str("  (none)\n");
        }
        for action in at.node.actions() {
            let doc = action.task().doc().lines().next().unwrap_or("").trim();
            out.push_str(&format!(
                "  {}({})",
                action.name(),
                action.task().signature()
            ));
            if !doc.is_empty() {
                out.push_str(&format!("  {doc}"));
            }
            out.push('\n');
        }
        output::text(&out);
        Ok(())
    }

    /// The host of this node that `name` names, or the one the user
    /// chooses.
    fn pick_host(&self, name: Option<&str>) -> Result<Host> {
        let hosts = self.cwd.all_hosts();
        if let Some(name) = name {
            return hosts.into_iter().find(|h| h.name() == name).ok_or_else(|| {
                Error::new(
                    ErrorKind::Settings,
                    format!("{} has no host '{name}'", self.cwd.shown()),
                )
            });
        }
        match hosts.len() {
            0 => Err(Error::new(
                ErrorKind::Settings,
                format!("{} has no hosts", self.cwd.shown()),
            )),
            1 => Ok(hosts[0].clone()),
            _ => {
                let names: Vec<String> = hosts.iter().map(Host::name).collect();
                let i = choice("Connect to which host?", &names, Some(0))?;
                Ok(hosts[i].clone())
            }
        }
    }

    fn connect(&self, name: Option<&str>) -> Result<()> {
        let host = self.pick_host(name)?;
        let scope = self
            .cwd
            .scope()
            .merge(host.own_settings().clone())
            .merge(Settings::new().host_string(host.name()));
        let _active = interrupt::Active::new();
        with_settings(scope, || open_shell(None))
    }

    /// `run`/`sudo`: the command on every host of this node, in turn.
    fn ad_hoc(&self, use_sudo: bool, command: &str) -> Result<()> {
        if command.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                "run and sudo take a command".to_string(),
            ));
        }
        let hosts = super::hosts::Hosts::of(&self.cwd);
        if hosts.is_empty() {
            return Err(Error::new(
                ErrorKind::Settings,
                format!("{} has no hosts", self.cwd.shown()),
            ));
        }
        output::text(&format!("On {}:\n", hosts.names().join(", ")));
        // One host at a terminal: the command gets the terminal (vim,
        // less, top); several: each one's lines under its name.
        let opts =
            RunOptions::new().interactive(hosts.len() == 1 && std::io::stdin().is_terminal());
        let _active = interrupt::Active::new();
        let results = with_settings(self.cwd.scope(), || {
            hosts.each(|| {
                if use_sudo {
                    sudo_with(command, &opts)
                } else {
                    run_with(command, &opts)
                }
            })
        })?;
        match results.into_vec().into_iter().find_map(|(_, r)| r.err()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs an action: its node path and name (`web deploy`, `web.deploy`,
    /// `deploy:v1,x=y`), then its arguments (`k=v` named).
    fn run_words(&mut self, words: &[String]) -> Result<()> {
        let mut at = self.cwd.clone();
        let mut rest = words;
        let call = loop {
            let Some((word, more)) = rest.split_first() else {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!(
                        "{} is a node, not an action: cd into it, or name one of its actions",
                        at.shown()
                    ),
                ));
            };
            let call = parse_task_call(word);
            let parts: Vec<&str> = super::split_path(&call.name).collect();
            let (name, nodes) = parts
                .split_last()
                .ok_or_else(|| Error::new(ErrorKind::Usage, format!("not a command: {word}")))?;
            let mut place = at.clone();
            for n in nodes {
                place = place.child(n)?;
            }
            if place.node.action_named(name).is_some() {
                at = place;
                rest = more;
                break (name.to_string(), call.args);
            }
            if place.node.child_named(name).is_some() && !word.contains(':') {
                at = place.child(name)?;
                rest = more;
                continue;
            }
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{} has no action or child node called '{name}' (help lists the commands)",
                    place.shown()
                ),
            ));
        };
        let (name, mut args) = call;
        for word in rest {
            args = match word.split_once('=') {
                Some((k, v))
                    if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                {
                    args.kwarg(k, v)
                }
                _ => args.arg(word.clone()),
            };
        }
        self.action(&at, &name, args)
    }

    fn action(&self, at: &Place, name: &str, args: TaskArgs) -> Result<()> {
        let full = at.action_path(name);
        // Each action is a run of its own in the journal.
        // A journal that cannot be written is said, and the action runs.
        let record = match events::record_run(&format!("{} {full}", at.root.name())) {
            Ok(r) => Some(r),
            Err(e) => {
                output::warning(
                    &crate::state::env(),
                    &format!("this run is not recorded: {e}"),
                );
                None
            }
        };
        let results = {
            let _active = interrupt::Active::new();
            at.run(name, &args, None)
        };
        let outcome = match &results {
            Ok(r) if r.succeeded() => Outcome::Ok,
            Err(e) if e.kind() == ErrorKind::Interrupted => Outcome::Interrupted,
            _ => Outcome::Failed,
        };
        if let Some(record) = record {
            record.end_as(outcome);
        }
        let results = results?;
        let mut out = String::new();
        for (host, result) in results.iter() {
            let shown = match result {
                Ok(()) => paint(colors::green, "ok"),
                Err(e) => paint(colors::red, &format!("failed: {}", first_line(e.message()))),
            };
            if host == LOCAL_ONLY {
                out.push_str(&format!("{full}: {shown}\n"));
            } else {
                out.push_str(&format!("[{host}] {full}: {shown}\n"));
            }
        }
        output::text(&out);
        Ok(())
    }

    fn help(&self) {
        let mut out = String::from("Commands:\n");
        for (name, what) in BUILTINS {
            out.push_str(&format!(
                "  {}  {what}\n",
                paint(colors::cyan, &format!("{name:<8}"))
            ));
        }
        out.push_str("  ACTION [ARGS]  run an action of this node (k=v for a named argument)\n");
        output::text(&out);
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// A place as the shell shows it: `/web/cache`, `/` for the root.
fn shown_path(place: &Place) -> String {
    format!("/{}", place.path.join("/"))
}

/// An error at the prompt: one red line, the host and command it names.
fn report(e: &Error) {
    output::text(&format!("{}\n", paint(colors::red, &format!("Error: {e}"))));
}

/// `text` in a colour when standard output is a terminal.
fn paint(color: fn(&str, bool) -> String, text: &str) -> String {
    if output::to_terminal() {
        color(text, false)
    } else {
        text.to_string()
    }
}

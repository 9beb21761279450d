//! The live view of a parallel run at a terminal: one row per host with
//! its state, time, command and last line, and the chosen host's output,
//! drawn from the run's events (never from printed lines) with `ratatui`.
//!
//! While it shows, nothing else writes to the terminal ([`super::LIVE`]):
//! the lines a linewise run would print are events, which the journal
//! keeps whole; the view keeps a bounded tail per host. When the run
//! ends, the terminal is put back and a summary printed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Terminal;

use super::{emit, Pipe, LIVE};
use crate::events::{self, Event, EventKind, LoggerId, Outcome};
use crate::state::Env;

/// The lines of output kept per host for its pane.
const TAIL: usize = 500;
/// The longest line kept (characters).
const LINE: usize = 400;
/// The last lines of a failed host printed after the view.
const SUMMARY_LINES: usize = 10;

/// A host's state in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Connecting,
    Running,
    Ok,
    Warned,
    Failed,
    Interrupted,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Connecting => "connecting",
            State::Running => "running",
            State::Ok => "ok",
            State::Warned => "warned",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
        }
    }

    fn color(self) -> Color {
        match self {
            State::Queued => Color::DarkGray,
            State::Connecting => Color::Cyan,
            State::Running => Color::Blue,
            State::Ok => Color::Green,
            State::Warned => Color::Yellow,
            State::Failed | State::Interrupted => Color::Red,
        }
    }

    fn active(self) -> bool {
        matches!(self, State::Queued | State::Connecting | State::Running)
    }

    fn bad(self) -> bool {
        matches!(self, State::Failed | State::Interrupted)
    }
}

/// One host as the view shows it.
struct HostView {
    name: String,
    /// `[name] `, which starts each of its printed lines.
    prefix: String,
    state: State,
    started: Option<u64>,
    ended: Option<u64>,
    command: String,
    lines: VecDeque<String>,
    error: Option<String>,
}

impl HostView {
    fn elapsed(&self, now: u64) -> String {
        match self.started {
            None => String::new(),
            Some(s) => {
                let ms = self.ended.unwrap_or(now).saturating_sub(s);
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        }
    }

    fn push(&mut self, line: &str) {
        // The oldest line's buffer is used again for the newest.
        let mut kept = if self.lines.len() == TAIL {
            self.lines.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        kept.clear();
        match line.char_indices().nth(LINE) {
            Some((cut, _)) => kept.push_str(&line[..cut]),
            None => kept.push_str(line),
        }
        self.lines.push_back(kept);
    }
}

/// What the events have said so far.
struct View {
    task: String,
    run: Option<String>,
    hosts: Vec<HostView>,
    index: HashMap<String, usize>,
    /// The tmux panes of `--panes`, instead of the full-screen view.
    panes: Option<Panes>,
}

/// One tmux pane per running host: a directory holding, per host, its
/// output as a growing file, the FIFO its pane writes keys into (the
/// worker's standard input) and, once it has ended, its outcome.
struct Panes {
    dir: tempfile::TempDir,
    keep: bool,
    /// The pane the run was started from, which the others split.
    origin: String,
    files: HashMap<usize, std::fs::File>,
}

impl Panes {
    fn new(hosts: &[String], keep: bool, origin: String) -> Option<Panes> {
        let dir = tempfile::Builder::new()
            .prefix("twill-panes-")
            .tempdir()
            .ok()?;
        let panes = Panes {
            dir,
            keep,
            origin,
            files: HashMap::new(),
        };
        for (i, host) in hosts.iter().enumerate() {
            let fifo =
                std::ffi::CString::new(panes.path(i, "in").into_os_string().into_encoded_bytes())
                    .ok()?;
            // SAFETY: makes a FIFO at a path of our own directory.
            if unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } != 0 {
                return None;
            }
            std::fs::write(panes.path(i, "out"), format!("== {host} ==\n")).ok()?;
        }
        Some(panes)
    }

    fn path(&self, i: usize, what: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{i}.{what}"))
    }

    /// Opens the pane of host `i` (once), tiled with the others; a pane
    /// tmux has no room for is left out (the summary and the journal have
    /// the host's output).
    fn open(&mut self, i: usize) {
        use std::io::Write as _;
        if self.files.contains_key(&i) {
            return;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(i, "out"))
        else {
            return;
        };
        self.files.insert(i, file);
        let shell = crate::command::pane(
            &self.path(i, "out"),
            &self.path(i, "in"),
            &self.path(i, "end"),
            self.keep,
        );
        let tmux = |args: &[&str]| {
            std::process::Command::new("tmux")
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        };
        let _ = tmux(&["split-window", "-d", "-t", &self.origin, &shell]);
        let _ = tmux(&["select-layout", "-t", &self.origin, "tiled"]);
        if let Some(f) = self.files.get_mut(&i) {
            let _ = f.flush();
        }
    }

    fn write(&mut self, i: usize, line: &str) {
        use std::io::Write as _;
        if let Some(f) = self.files.get_mut(&i) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Host `i` has ended: its pane shows `outcome`, then closes or stays.
    fn end(&mut self, i: usize, outcome: &str) {
        let _ = std::fs::write(self.path(i, "end"), format!("\n{outcome}\n"));
    }
}

impl View {
    fn new(task: &str, hosts: &[String]) -> View {
        View {
            task: task.to_string(),
            run: events::current_run(),
            index: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.clone(), i))
                .collect(),
            panes: None,
            hosts: hosts
                .iter()
                .map(|h| HostView {
                    name: h.clone(),
                    prefix: format!("[{h}] "),
                    state: State::Queued,
                    started: None,
                    ended: None,
                    command: String::new(),
                    lines: VecDeque::new(),
                    error: None,
                })
                .collect(),
        }
    }

    fn take(&mut self, event: &Event) {
        let Some(&i) = event.host.as_ref().and_then(|h| self.index.get(h)) else {
            return;
        };
        self.take_for(i, event);
        if let Some(panes) = &mut self.panes {
            let host = &self.hosts[i];
            match &event.kind {
                EventKind::TaskStarted { .. } | EventKind::WorkerStarted { .. } => panes.open(i),
                EventKind::Output { text, .. } => {
                    for line in text.lines() {
                        panes.write(i, line.strip_prefix(host.prefix.as_str()).unwrap_or(line));
                    }
                }
                EventKind::TaskEnded { .. } | EventKind::WorkerKilled { .. }
                    if !host.state.active() =>
                {
                    let mut outcome = format!("{} {}", host.name, host.state.word());
                    if let Some(e) = &host.error {
                        outcome.push_str(&format!(": {}", e.lines().next().unwrap_or("")));
                    }
                    panes.end(i, &outcome);
                }
                _ => {}
            }
        }
    }

    /// Takes an event of host `i` into its row.
    fn take_for(&mut self, i: usize, event: &Event) {
        let host = &mut self.hosts[i];
        match &event.kind {
            EventKind::TaskStarted { .. } | EventKind::WorkerStarted { .. }
                if host.state == State::Queued =>
            {
                host.state = State::Connecting;
                host.started = Some(event.time);
            }
            EventKind::OperationStarted { command, .. } => {
                host.command = command.clone();
            }
            EventKind::OperationEnded(_) if host.state == State::Connecting => {
                host.state = State::Running;
            }
            EventKind::Output { text, .. } => {
                if host.state == State::Connecting {
                    host.state = State::Running;
                }
                for line in text.lines() {
                    let line = line.strip_prefix(host.prefix.as_str()).unwrap_or(line);
                    host.push(line);
                }
            }
            EventKind::TaskEnded { outcome, error, .. } => {
                host.state = match outcome {
                    Outcome::Ok => State::Ok,
                    Outcome::Warned => State::Warned,
                    Outcome::Interrupted => State::Interrupted,
                    _ => State::Failed,
                };
                host.ended = Some(event.time);
                host.error = error.clone();
            }
            EventKind::WorkerKilled { .. } if host.state.active() => {
                host.state = State::Interrupted;
                host.ended = Some(event.time);
            }
            _ => {}
        }
    }

    fn count(&self, state: State) -> usize {
        self.hosts.iter().filter(|h| h.state == state).count()
    }
}

/// A key the view knows, read from the terminal's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Char(char),
    CtrlC,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Other,
}

/// The keys in `bytes` (one read of a terminal in raw mode): printable
/// characters, Ctrl-C, and the escape sequences of the arrows, Page Up
/// and Down, Home and End (xterm's and the VT220's forms).
fn keys(bytes: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let seq: &[(&[u8], Key)] = &[
            (b"\x1b[A", Key::Up),
            (b"\x1bOA", Key::Up),
            (b"\x1b[B", Key::Down),
            (b"\x1bOB", Key::Down),
            (b"\x1b[5~", Key::PageUp),
            (b"\x1b[6~", Key::PageDown),
            (b"\x1b[H", Key::Home),
            (b"\x1bOH", Key::Home),
            (b"\x1b[1~", Key::Home),
            (b"\x1b[F", Key::End),
            (b"\x1bOF", Key::End),
            (b"\x1b[4~", Key::End),
        ];
        if let Some((s, k)) = seq.iter().find(|(s, _)| rest.starts_with(s)) {
            out.push(*k);
            i += s.len();
            continue;
        }
        out.push(match rest[0] {
            3 => Key::CtrlC,
            b if b.is_ascii_graphic() => Key::Char(b as char),
            _ => Key::Other,
        });
        i += 1;
    }
    out
}

/// Which hosts the table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    Running,
    Failed,
}

impl Filter {
    fn next(self) -> Filter {
        match self {
            Filter::All => Filter::Running,
            Filter::Running => Filter::Failed,
            Filter::Failed => Filter::All,
        }
    }

    fn keeps(self, h: &HostView) -> bool {
        match self {
            Filter::All => true,
            Filter::Running => h.state.active(),
            Filter::Failed => h.state.bad(),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Running => "running",
            Filter::Failed => "failed",
        }
    }
}

/// The keys' side of the view: the chosen host, the filter, the scroll.
struct Ui {
    /// The chosen host, by its place in the whole list.
    chosen: usize,
    filter: Filter,
    /// Lines scrolled up from the end of the chosen host's output.
    back: usize,
    confirm_quit: bool,
    /// The first row shown.
    top: usize,
}

impl Ui {
    fn shown(&self, view: &View) -> Vec<usize> {
        (0..view.hosts.len())
            .filter(|&i| self.filter.keeps(&view.hosts[i]))
            .collect()
    }

    /// Moves the choice by `step` among the hosts shown.
    fn step(&mut self, view: &View, step: isize) {
        let shown = self.shown(view);
        if shown.is_empty() {
            return;
        }
        let at = shown.iter().position(|&i| i == self.chosen).unwrap_or(0) as isize;
        let to = (at + step).clamp(0, shown.len() as isize - 1) as usize;
        self.chosen = shown[to];
        self.back = 0;
    }

    /// The next failed host after the chosen one, shown whatever the filter.
    fn next_failure(&mut self, view: &View) {
        let n = view.hosts.len();
        if let Some(i) = (1..=n)
            .map(|k| (self.chosen + k) % n)
            .find(|&i| view.hosts[i].state.bad())
        {
            self.chosen = i;
            self.back = 0;
            if !self.filter.keeps(&view.hosts[i]) {
                self.filter = Filter::All;
            }
        }
    }

    /// Handles a key; whether the run is to stop.
    fn key(&mut self, key: Key, view: &View) -> bool {
        if key == Key::CtrlC {
            return true;
        }
        if self.confirm_quit {
            self.confirm_quit = false;
            return matches!(key, Key::Char('y') | Key::Char('Y'));
        }
        match key {
            Key::Char('q') => self.confirm_quit = true,
            Key::Up | Key::Char('k') => self.step(view, -1),
            Key::Down | Key::Char('j') => self.step(view, 1),
            Key::Char('n') => self.next_failure(view),
            Key::Char('f') => {
                self.filter = self.filter.next();
                if !self.filter.keeps(&view.hosts[self.chosen]) {
                    if let Some(&first) = self.shown(view).first() {
                        self.chosen = first;
                    }
                }
            }
            Key::PageUp | Key::Char('u') => self.back += 10,
            Key::PageDown | Key::Char('d') => self.back = self.back.saturating_sub(10),
            Key::Home | Key::Char('g') => self.back = usize::MAX / 2,
            Key::End | Key::Char('G') | Key::Char('F') => self.back = 0,
            _ => {}
        }
        false
    }

    /// What one frame shows, taken from the view under its lock: only the
    /// rows and lines that fit, so that the lock, which the run's events
    /// wait for, is held briefly.
    fn snapshot(&mut self, view: &View, rows_fit: usize, lines_fit: usize) -> Shot {
        let now = now_ms();
        let active = view
            .hosts
            .iter()
            .filter(|h| h.state.active() && h.state != State::Queued)
            .count();
        let header = format!(
            " twill · task {} · run {} · {} running · {} queued · {} ok · {} warned · {} failed · {} interrupted · showing {}",
            view.task,
            view.run.as_deref().unwrap_or("-"),
            active,
            view.count(State::Queued),
            view.count(State::Ok),
            view.count(State::Warned),
            view.count(State::Failed),
            view.count(State::Interrupted),
            self.filter.word(),
        );
        let shown = self.shown(view);
        let at = shown.iter().position(|&i| i == self.chosen);
        // The window of rows: the chosen one always inside it.
        if let Some(at) = at {
            if at < self.top {
                self.top = at;
            } else if rows_fit > 0 && at >= self.top + rows_fit {
                self.top = at + 1 - rows_fit;
            }
        }
        self.top = self.top.min(shown.len().saturating_sub(rows_fit.max(1)));
        let rows = shown
            .iter()
            .skip(self.top)
            .take(rows_fit)
            .map(|&i| {
                let h = &view.hosts[i];
                RowShot {
                    name: h.name.clone(),
                    state: h.state,
                    time: h.elapsed(now),
                    command: h.command.clone(),
                    last: h.lines.back().cloned().unwrap_or_default(),
                }
            })
            .collect();
        let selected = at.map(|a| a - self.top);
        let mut pane = None;
        if let Some(h) = view.hosts.get(self.chosen) {
            let len = h.lines.len();
            self.back = self.back.min(len.saturating_sub(lines_fit));
            let end = len - self.back;
            let start = end.saturating_sub(lines_fit);
            pane = Some(PaneShot {
                name: h.name.clone(),
                state: h.state,
                error: h
                    .error
                    .as_ref()
                    .map(|e| e.lines().next().unwrap_or("").to_string()),
                lines: h.lines.range(start..end).cloned().collect(),
            });
        }
        Shot {
            header,
            rows,
            selected,
            pane,
        }
    }

    fn render(&mut self, frame: &mut ratatui::Frame<'_>, shot: &Shot) {
        let [head, table, pane, foot] = areas(frame.area());
        frame.render_widget(
            Paragraph::new(shot.header.as_str())
                .style(Style::new().add_modifier(Modifier::REVERSED)),
            head,
        );
        let rows: Vec<Row<'_>> = shot
            .rows
            .iter()
            .map(|r| {
                Row::new(vec![
                    Span::raw(r.name.as_str()),
                    Span::styled(r.state.word(), Style::new().fg(r.state.color())),
                    Span::raw(r.time.as_str()),
                    Span::raw(r.command.as_str()),
                    Span::raw(r.last.as_str()),
                ])
            })
            .collect();
        let mut state = TableState::default().with_selected(shot.selected);
        let widths = [
            Constraint::Length(24),
            Constraint::Length(11),
            Constraint::Length(8),
            Constraint::Percentage(35),
            Constraint::Fill(1),
        ];
        let t = Table::new(rows, widths)
            .header(
                Row::new(["host", "state", "time", "command", "last line"])
                    .style(Style::new().add_modifier(Modifier::BOLD)),
            )
            .block(Block::new().borders(Borders::BOTTOM))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        frame.render_stateful_widget(t, table, &mut state);

        if let Some(p) = &shot.pane {
            let lines: Vec<Line<'_>> = p.lines.iter().map(|l| Line::raw(l.as_str())).collect();
            let follow = if self.back == 0 {
                "following"
            } else {
                "scrolled"
            };
            let mut title = vec![
                Span::raw(format!(" {} ", p.name)),
                Span::styled(p.state.word(), Style::new().fg(p.state.color())),
                Span::raw(format!(" · {follow} ")),
            ];
            if let Some(e) = &p.error {
                title.push(Span::styled(format!("· {e} "), Style::new().fg(Color::Red)));
            }
            frame.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(Line::from(title))),
                pane,
            );
        }

        let help = if self.confirm_quit {
            " Stop the run on every host? y: stop, any other key: go on"
        } else {
            " ↑/↓ j/k host · n next failure · f filter · PgUp/PgDn u/d scroll · End follow · q stop the run"
        };
        frame.render_widget(Paragraph::new(help), foot);
    }
}

/// The view's parts: header, table, the chosen host's output, keys.
fn areas(all: ratatui::layout::Rect) -> [ratatui::layout::Rect; 4] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(45),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(all)
}

/// One frame's content.
struct Shot {
    header: String,
    rows: Vec<RowShot>,
    selected: Option<usize>,
    pane: Option<PaneShot>,
}

struct RowShot {
    name: String,
    state: State,
    time: String,
    command: String,
    last: String,
}

struct PaneShot {
    name: String,
    state: State,
    error: Option<String>,
    lines: Vec<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The live view while it shows; [`Live::finish`] (or drop) ends it.
pub(crate) struct Live {
    view: Arc<Mutex<View>>,
    logger: Option<LoggerId>,
    stop: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
    /// The full-screen view has the terminal (not `--panes`).
    screen: bool,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// Whether a parallel run in these settings shows the live view: the
/// `live` setting, else when standard input and output are a terminal
/// that can draw; never in a worker.
pub(crate) fn wanted(env: &Env) -> bool {
    use std::io::IsTerminal;
    let terminal = super::can_draw() && std::io::stdin().is_terminal();
    !crate::interrupt::in_worker() && terminal && env.live().unwrap_or(true)
}

/// Starts the view of the parallel run of `task` over `hosts`, if the
/// settings want one (see [`wanted`]) and the terminal can take it.
pub(crate) fn start(env: &Env, task: &str, hosts: &[String]) -> Option<Live> {
    if crate::interrupt::in_worker() {
        return None;
    }
    if env.panes() {
        match std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty()) {
            Some(origin) => return start_panes(env, task, hosts, origin),
            None => super::warning(
                env,
                "--panes needs a terminal inside tmux; the run is shown as usual",
            ),
        }
    }
    if !wanted(env) {
        return None;
    }
    let view = Arc::new(Mutex::new(View::new(task, hosts)));
    let logger = {
        let view = view.clone();
        events::add_logger(move |e: &Event| view.lock().take(e))
    };
    let mut stdout = std::io::stdout();
    if terminal::enable_raw_mode().is_err() {
        events::remove_logger(logger);
        return None;
    }
    let _ = execute!(stdout, terminal::EnterAlternateScreen, cursor::Hide);
    LIVE.store(true, Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let drawer = {
        let (view, stop) = (view.clone(), stop.clone());
        std::thread::Builder::new()
            .name("twill-live".into())
            .spawn(move || draw_loop(&view, &stop))
            .ok()
    };
    Some(Live {
        view,
        logger: Some(logger),
        stop,
        drawer,
        screen: true,
    })
}

/// The panes of `--panes`: no full-screen view, the first pane silent
/// until the summary.
fn start_panes(env: &Env, task: &str, hosts: &[String], origin: String) -> Option<Live> {
    let Some(panes) = Panes::new(hosts, env.keep_panes(), origin) else {
        super::warning(
            env,
            "the panes could not be prepared; the run is shown as usual",
        );
        return None;
    };
    let mut view = View::new(task, hosts);
    view.panes = Some(panes);
    let view = Arc::new(Mutex::new(view));
    let logger = {
        let view = view.clone();
        events::add_logger(move |e: &Event| view.lock().take(e))
    };
    LIVE.store(true, Ordering::SeqCst);
    Some(Live {
        view,
        logger: Some(logger),
        stop: Arc::new(AtomicBool::new(false)),
        drawer: None,
        screen: false,
    })
}

/// Draws about ten times a second and reads keys until told to stop.
fn draw_loop(view: &Mutex<View>, stop: &AtomicBool) {
    let Ok(mut term) = Terminal::new(CrosstermBackend::new(std::io::stdout())) else {
        return;
    };
    let mut ui = Ui {
        chosen: 0,
        filter: Filter::All,
        back: 0,
        confirm_quit: false,
        top: 0,
    };
    // A terminal that has gone (its window closed: the hang-up also
    // stops the run through the signal handler) ends the drawing, never
    // the wait for the run's end.
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::SeqCst) {
        // Keys are read here, from descriptor 0, not through crossterm's
        // reader, which spins on a terminal that has hung up.
        let mut pfd = [libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        }];
        match crate::sys::poll(&mut pfd, 100) {
            Ok(0) => {}
            Ok(_) => match crate::terminal::read_stdin(&mut buf) {
                crate::terminal::Read::Data(n) => {
                    for key in keys(&buf[..n]) {
                        if ui.key(key, &view.lock()) {
                            // As Ctrl-C: the handler stops every worker.
                            // SAFETY: raises a signal in this process.
                            unsafe { libc::raise(libc::SIGINT) };
                        }
                    }
                }
                crate::terminal::Read::End => return,
                crate::terminal::Read::Nothing => {}
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        let Ok(size) = term.size() else {
            return;
        };
        let [_, table, pane, _] = areas(ratatui::layout::Rect::new(0, 0, size.width, size.height));
        // The table's header and border, the pane's border.
        let (rows_fit, lines_fit) = (
            table.height.saturating_sub(2) as usize,
            pane.height.saturating_sub(2) as usize,
        );
        let shot = ui.snapshot(&view.lock(), rows_fit, lines_fit);
        if term.draw(|f| ui.render(f, &shot)).is_err() {
            return;
        }
    }
}

impl Live {
    /// The standard input of the worker of host `index`: its pane's FIFO
    /// (`--panes`), else none (/dev/null).
    pub(crate) fn input_of(&self, index: usize) -> Option<std::path::PathBuf> {
        self.view.lock().panes.as_ref().map(|p| p.path(index, "in"))
    }

    /// Ends the view: the terminal put back as it was, then the run's
    /// summary printed: one line per host, and a failed host's last lines.
    pub(crate) fn finish(mut self) {
        self.close();
        let view = self.view.lock();
        let now = now_ms();
        let mut out = format!(
            "Task '{}'{}: {} ok, {} warned, {} failed, {} interrupted, {} not run\n",
            view.task,
            view.run
                .as_deref()
                .map(|r| format!(" (run {r})"))
                .unwrap_or_default(),
            view.count(State::Ok),
            view.count(State::Warned),
            view.count(State::Failed),
            view.count(State::Interrupted),
            view.count(State::Queued),
        );
        for h in &view.hosts {
            out.push_str(&format!(
                "[{}] {} {}",
                h.name,
                h.state.word(),
                h.elapsed(now)
            ));
            if let Some(e) = &h.error {
                out.push_str(&format!(": {}", e.lines().next().unwrap_or("")));
            }
            out.push('\n');
            if h.state.bad() {
                let skip = h.lines.len().saturating_sub(SUMMARY_LINES);
                for line in h.lines.iter().skip(skip) {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        drop(view);
        emit(Pipe::Out, &out);
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
        if let Some(id) = self.logger.take() {
            events::remove_logger(id);
            LIVE.store(false, Ordering::SeqCst);
            if self.screen {
                let _ = execute!(
                    std::io::stdout(),
                    cursor::Show,
                    terminal::LeaveAlternateScreen
                );
                let _ = terminal::disable_raw_mode();
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.close();
    }
}

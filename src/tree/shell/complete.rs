//! What Tab offers in the shell, in colour, and the prompt.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use nu_ansi_term::{Color as Paint, Style};
use reedline::{
    Color, Completer, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus, Span,
    Suggestion,
};

use super::BUILTINS;
use crate::colors;
use crate::tree::run::Place;
use crate::tree::Host;

/// The builtins whose words are node paths.
const TAKE_NODES: &[&str] = &["cd", "ls", "inspect", "find"];

/// The colour of a group: production red, staging yellow, beta magenta,
/// development green; others and none blue.
fn group_paint(group: Option<&str>) -> Paint {
    match group {
        Some("production") => Paint::Red,
        Some("staging") => Paint::Yellow,
        Some("beta") | Some("testing") => Paint::Magenta,
        Some("development") | Some("local") => Paint::Green,
        _ => Paint::Blue,
    }
}

/// A node's name in its group's colour, for `ls` and `inspect`.
pub(super) fn paint_node(name: &str, group: Option<&str>) -> String {
    if !crate::output::to_terminal() {
        return name.to_string();
    }
    match group_paint(group) {
        Paint::Red => colors::red(name, true),
        Paint::Yellow => colors::yellow(name, true),
        Paint::Magenta => colors::magenta(name, true),
        Paint::Green => colors::green(name, true),
        _ => colors::blue(name, true),
    }
}

/// The shell's completion: builtins, child nodes, actions, and the
/// arguments of an action, from the node the shell is at.
pub(super) struct Completion {
    here: Arc<Mutex<Place>>,
}

impl Completion {
    pub(super) fn new(here: Arc<Mutex<Place>>) -> Completion {
        Completion { here }
    }
}

/// One candidate: the text, what it is, its colour.
struct Candidate {
    value: String,
    description: Option<String>,
    style: Style,
    /// A space goes after it (not after `name=` or a node's `/`).
    space: bool,
}

fn node_candidates(place: &Place, prefix: &str, out: &mut Vec<Candidate>) {
    for child in place.node.children() {
        let group = child.group.as_deref().or(place.group.as_deref());
        out.push(Candidate {
            value: format!("{prefix}{}", child.name()),
            description: Some("node".into()),
            style: Style::new().fg(group_paint(group)).bold(),
            space: true,
        });
    }
}

fn action_candidates(place: &Place, prefix: &str, out: &mut Vec<Candidate>) {
    for action in place.node.actions() {
        let doc = action
            .task()
            .doc()
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        out.push(Candidate {
            value: format!("{prefix}{}", action.name()),
            description: Some(if doc.is_empty() { "action".into() } else { doc }),
            style: Style::new(),
            space: true,
        });
    }
}

impl Completion {
    /// The candidates for the word at the end of `before`.
    fn candidates(&self, before: &str) -> Vec<Candidate> {
        let cwd = self.here.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let words: Vec<&str> = before.split_whitespace().collect();
        let typing_new = before.is_empty() || before.ends_with(char::is_whitespace);
        let done: &[&str] = if typing_new {
            &words
        } else {
            &words[..words.len() - 1]
        };
        let current = if typing_new {
            ""
        } else {
            words[words.len() - 1]
        };
        let mut out = Vec::new();

        // A dotted word: the nodes and actions below the nodes it names.
        let (base, prefix) = match current.rfind(['.', '/']) {
            Some(i) => (&current[..i], &current[..=i]),
            None => ("", ""),
        };
        let mut at = cwd.clone();
        if current.starts_with('/') {
            at = Place::root(at.root.clone());
        }
        for part in crate::tree::split_path(base) {
            match at.child(part) {
                Ok(p) => at = p,
                Err(_) => return out,
            }
        }

        match done.first() {
            None => {
                if prefix.is_empty() {
                    for (name, what) in BUILTINS {
                        out.push(Candidate {
                            value: name.to_string(),
                            description: Some(what.to_string()),
                            style: Style::new().fg(Paint::Cyan),
                            space: true,
                        });
                    }
                }
                node_candidates(&at, prefix, &mut out);
                action_candidates(&at, prefix, &mut out);
            }
            Some(first) if TAKE_NODES.contains(first) => {
                // `cd web cache`: each word a level below the last.
                let mut place = cwd.clone();
                for w in &done[1..] {
                    match place.child(w) {
                        Ok(p) => place = p,
                        Err(_) => return out,
                    }
                }
                if !prefix.is_empty() {
                    place = at;
                }
                node_candidates(&place, prefix, &mut out);
            }
            Some(&"connect") => {
                for host in cwd.all_hosts().iter().map(Host::name) {
                    out.push(Candidate {
                        value: host,
                        description: Some("host".into()),
                        style: Style::new().fg(Paint::Green),
                        space: false,
                    });
                }
            }
            Some(&"dry-run") if done.len() == 1 => {
                node_candidates(&at, prefix, &mut out);
                action_candidates(&at, prefix, &mut out);
            }
            Some(_) => self.argument_candidates(&cwd, done, &mut out),
        }
        out.retain(|c| c.value.starts_with(current));
        out
    }

    /// After an action's name: its named arguments, as `name=`.
    fn argument_candidates(&self, cwd: &Place, done: &[&str], out: &mut Vec<Candidate>) {
        let mut place = cwd.clone();
        for word in done {
            let word = word.split(':').next().unwrap_or("");
            let parts: Vec<&str> = crate::tree::split_path(word).collect();
            let Some((name, nodes)) = parts.split_last() else {
                return;
            };
            let mut p = place.clone();
            for n in nodes {
                match p.child(n) {
                    Ok(next) => p = next,
                    Err(_) => return,
                }
            }
            if let Some(action) = p.node.action_named(name) {
                let given: Vec<&str> = done
                    .iter()
                    .filter_map(|w| w.split_once('=').map(|(k, _)| k))
                    .collect();
                for param in action.task().param_names() {
                    if !given.contains(&param) {
                        out.push(Candidate {
                            value: format!("{param}="),
                            description: Some("argument".into()),
                            style: Style::new().fg(Paint::Yellow),
                            space: false,
                        });
                    }
                }
                return;
            }
            match p.child(name) {
                Ok(next) => place = next,
                Err(_) => return,
            }
        }
    }
}

impl Completer for Completion {
    fn complete(&mut self, line: &str, pos: usize) -> Vec<Suggestion> {
        let before = &line[..pos.min(line.len())];
        let start = before
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0);
        self.candidates(before)
            .into_iter()
            .map(|c| Suggestion {
                value: c.value,
                description: c.description,
                style: Some(c.style),
                extra: None,
                span: Span::new(start, pos),
                append_whitespace: c.space,
                match_indices: None,
            })
            .collect()
    }
}

/// The prompt: the tree's name and the path, in the node's group colour.
pub(super) struct PathPrompt {
    text: String,
    color: Color,
}

impl PathPrompt {
    pub(super) fn new(place: &Place) -> PathPrompt {
        let color = match group_paint(place.group.as_deref()) {
            Paint::Red => Color::Red,
            Paint::Yellow => Color::Yellow,
            Paint::Magenta => Color::Magenta,
            Paint::Green => Color::Green,
            _ => Color::Blue,
        };
        PathPrompt {
            text: format!("{}:{}", place.root.name(), super::shown_path(place)),
            color,
        }
    }
}

impl Prompt for PathPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.text)
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, mode: PromptEditMode) -> Cow<'_, str> {
        match mode {
            PromptEditMode::Vi(reedline::PromptViMode::Normal) => Cow::Borrowed(" : "),
            _ => Cow::Borrowed(" > "),
        }
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("::: ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({failing}reverse-search: {}) ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        self.color
    }
}

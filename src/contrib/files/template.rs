//! The templates of `upload_template`: the context a template is rendered
//! with, Python's `%` formatting, and Jinja through minijinja.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::{Serde, Value, ValueKind};
use serde::Serialize;

use crate::state::Env;

/// A context [`upload_template`](super::upload_template) can render a
/// template with: the settings ([`Env`], as Fabric's `context=env`), or
/// any value serde can serialize as a map of names to values (a map, a
/// struct, a list of `(name, value)` pairs), or `()` for none.
///
/// Implemented for [`Env`] and for every `Serialize` type; there is no
/// need to implement it.
pub trait TemplateContext {
    /// The names and values, or why this is not a context.
    #[doc(hidden)]
    fn template_values(&self) -> Result<TemplateValues, String>;
}

/// The names and values of a [`TemplateContext`], as the renderers read
/// them.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct TemplateValues {
    /// The names and their values; `None` when there is no context (or an
    /// empty one), where Fabric leaves a `%` template as it is.
    map: Option<BTreeMap<String, Value>>,
    /// Names that are set to values a template cannot show.
    opaque: Vec<String>,
}

impl<T: Serialize + ?Sized> TemplateContext for T {
    fn template_values(&self) -> Result<TemplateValues, String> {
        from_value(&Value::from(Serde(self)))
    }
}

/// A name as text: a map key that is not a string is written as the
/// template would write it.
fn name_of(key: &Value) -> String {
    match key.as_str() {
        Some(s) => s.to_string(),
        None => key.to_string(),
    }
}

fn from_value(v: &Value) -> Result<TemplateValues, String> {
    let mut map = BTreeMap::new();
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => {}
        ValueKind::Map => {
            for key in v.try_iter().map_err(|e| e.to_string())? {
                let value = v.get_item(&key).map_err(|e| e.to_string())?;
                map.insert(name_of(&key), value);
            }
        }
        ValueKind::Seq => {
            for pair in v.try_iter().map_err(|e| e.to_string())? {
                let name = pair
                    .get_item_by_index(0)
                    .ok()
                    .filter(|_| pair.len() == Some(2));
                let Some(name) = name.filter(|n| n.kind() == ValueKind::String) else {
                    return Err(format!(
                        "a list given as a context holds (name, value) pairs, and {pair} is not one"
                    ));
                };
                let value = pair.get_item_by_index(1).map_err(|e| e.to_string())?;
                map.insert(name_of(&name), value);
            }
        }
        ValueKind::Invalid => return Err(format!("the context cannot be read: {v}")),
        kind => {
            return Err(format!(
                "the context is a {kind}, where a map of names to values is needed"
            ))
        }
    }
    Ok(TemplateValues {
        map: (!map.is_empty()).then_some(map),
        opaque: Vec::new(),
    })
}

/// The value a setting holds, when it is of a type a template can show.
fn setting_value(env: &Env, key: &str) -> Option<Value> {
    macro_rules! first_of {
        ($($t:ty),*) => {
            $(
                if let Some(v) = env.get_ref::<$t>(key) {
                    return Some(Value::from(v.clone()));
                }
            )*
        };
    }
    first_of!(String, bool, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);
    env.get_ref::<Vec<String>>(key)
        .map(|list| Value::from(list.clone()))
}

/// Fabric's `context=env`: the keys that are set, of types a template can
/// show, and the built-in keys a template may name with their defaults.
/// The passwords are of a type of their own, and never show.
impl TemplateContext for Env {
    fn template_values(&self) -> Result<TemplateValues, String> {
        let mut map = BTreeMap::new();
        let mut opaque = Vec::new();
        let text = |v: Option<String>| v.map(Value::from).unwrap_or(Value::from(()));
        let defaults = [
            ("user", Value::from(self.user())),
            ("port", Value::from(self.port())),
            ("shell", Value::from(self.shell())),
            ("cwd", Value::from(self.cwd())),
            ("lcwd", Value::from(self.lcwd())),
            ("sudo_prompt", Value::from(self.sudo_prompt())),
            ("host_string", text(self.host_string())),
            ("host", text(self.host())),
            ("sudo_user", text(self.sudo_user())),
            ("command", text(self.command())),
            ("hosts", Value::from(self.hosts())),
            ("roles", Value::from(self.roles())),
        ];
        for (name, value) in defaults {
            map.insert(name.to_string(), value);
        }
        for key in self.keys() {
            match setting_value(self, key) {
                Some(value) => {
                    map.insert(key.to_string(), value);
                }
                None if !map.contains_key(key) => opaque.push(key.to_string()),
                None => {}
            }
        }
        Ok(TemplateValues {
            map: Some(map),
            opaque,
        })
    }
}

// ---------------------------------------------------------------------------
// Python's `%` formatting

/// The line (from 1) of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Python's `str()` of a value, where it has one a template can show.
fn python_str(v: &Value) -> Option<String> {
    Some(match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Bool if v.is_true() => "True".to_string(),
        ValueKind::Bool => "False".to_string(),
        ValueKind::None | ValueKind::Undefined => "None".to_string(),
        ValueKind::Number if v.is_integer() => v.to_string(),
        ValueKind::Number => python_float(f64::try_from(v.clone()).ok()?),
        _ => return None,
    })
}

/// Python's `str()` of a float (`3.0`, `0.25`, `inf`, `nan`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        "nan".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A number for `%d` and `%f`: integers, floats and booleans, as Python
/// takes them.
enum Number {
    Int(i128),
    Float(f64),
}

fn number(v: &Value) -> Option<Number> {
    match v.kind() {
        ValueKind::Bool => Some(Number::Int(i128::from(v.is_true()))),
        ValueKind::Number if v.is_integer() => i128::try_from(v.clone()).ok().map(Number::Int),
        ValueKind::Number => f64::try_from(v.clone()).ok().map(Number::Float),
        _ => None,
    }
}

/// What a value is, for messages.
fn kind_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::String => "text",
        ValueKind::Seq | ValueKind::Iterable => "a list",
        ValueKind::Map => "a map",
        ValueKind::Bytes => "bytes",
        _ => "a value of another kind",
    }
}

/// One conversion: `%(name)<flags><width>.<precision><kind>`.
struct Conversion<'a> {
    name: &'a str,
    flags: &'a str,
    width: usize,
    precision: Option<usize>,
    kind: char,
}

impl Conversion<'_> {
    /// The value formatted, or why it cannot be.
    fn format(&self, v: &Value) -> Result<String, String> {
        let name = self.name;
        let (sign, digits) = match self.kind {
            's' => {
                let Some(text) = python_str(v) else {
                    return Err(format!(
                        "`{name}` is {}, which `%(...)s` cannot show",
                        kind_name(v)
                    ));
                };
                let text = match self.precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                };
                return Ok(self.pad(String::new(), text, false));
            }
            'd' | 'i' | 'u' | 'f' | 'F' => {
                let Some(n) = number(v) else {
                    return Err(format!(
                        "`%({name}){}` needs a number, and `{name}` is {}",
                        self.kind,
                        kind_name(v)
                    ));
                };
                let float = matches!(self.kind, 'f' | 'F');
                let (negative, digits) = match n {
                    Number::Int(i) if float => (
                        i < 0,
                        format!("{:.*}", self.precision.unwrap_or(6), (i as f64).abs()),
                    ),
                    Number::Float(f) if float => (
                        f.is_sign_negative() && f != 0.0,
                        format!("{:.*}", self.precision.unwrap_or(6), f.abs()),
                    ),
                    Number::Int(i) => (i < 0, i.unsigned_abs().to_string()),
                    Number::Float(f) => (
                        f < 0.0 && f.trunc() != 0.0,
                        (f.trunc().abs() as u128).to_string(),
                    ),
                };
                let sign = if negative {
                    "-"
                } else if self.flags.contains('+') {
                    "+"
                } else if self.flags.contains(' ') {
                    " "
                } else {
                    ""
                };
                (sign.to_string(), digits)
            }
            other => {
                return Err(format!(
                "`%({name}){other}`: twill's `%` templates take the conversions s, d, i, u and f"
            ))
            }
        };
        Ok(self.pad(sign, digits, true))
    }

    /// `sign` and `body` padded to the width: on the right with `-`, with
    /// zeros after the sign for a number with `0`, else on the left.
    fn pad(&self, sign: String, body: String, numeric: bool) -> String {
        let len = sign.chars().count() + body.chars().count();
        let fill = self.width.saturating_sub(len);
        if self.flags.contains('-') {
            format!("{sign}{body}{}", " ".repeat(fill))
        } else if numeric && self.flags.contains('0') {
            format!("{sign}{}{body}", "0".repeat(fill))
        } else {
            format!("{}{sign}{body}", " ".repeat(fill))
        }
    }
}

/// Python's `template % context` for a mapping: `%(name)s` is the value of
/// `name` (with Python's flags, width and precision, and the conversions
/// `s`, `d`, `i`, `u`, `f`), `%%` is `%`. Without a context the template
/// is left as it is, as Fabric does. An error names the line and the
/// cause: a name the context does not have, a `%` that starts nothing.
pub(super) fn render_percent(source: &str, values: &TemplateValues) -> Result<String, String> {
    let Some(map) = &values.map else {
        return Ok(source.to_string());
    };
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let at = source.len() - rest.len() + i;
        let line = line_of(source, at);
        let spec = &rest[i + 1..];
        if let Some(after) = spec.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let Some(spec) = spec.strip_prefix('(') else {
            let next = match spec.chars().next() {
                Some(c) => format!("`{c}`"),
                None => "the end of the template".to_string(),
            };
            return Err(format!(
                "line {line}: `%` is followed by {next}, where a template with a context takes `%(name)s` (or `%%` for a `%`)"
            ));
        };
        // The name ends at the `)` that closes the `(`, as in Python.
        let mut depth = 1;
        let Some(end) = spec.char_indices().find_map(|(j, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(j)
        }) else {
            return Err(format!("line {line}: `%(` has no `)` to close it"));
        };
        let name = &spec[..end];
        let conv = &spec[end + 1..];
        let flags_end = conv
            .find(|c: char| !"#0- +".contains(c))
            .unwrap_or(conv.len());
        let (flags, conv) = conv.split_at(flags_end);
        let width_end = conv
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(conv.len());
        let (width, mut conv) = conv.split_at(width_end);
        let mut precision = None;
        if let Some(p) = conv.strip_prefix('.') {
            let n = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            precision = Some(p[..n].parse().unwrap_or(0));
            conv = &p[n..];
        }
        // Python reads and ignores a length modifier.
        let conv = conv.trim_start_matches(['h', 'l', 'L']);
        let Some(kind) = conv.chars().next() else {
            return Err(format!(
                "line {line}: `%({name})` ends the template without a conversion (`s`)"
            ));
        };
        rest = &conv[kind.len_utf8()..];
        let Some(value) = map.get(name) else {
            return Err(if values.opaque.iter().any(|o| o == name) {
                format!("line {line}: `%({name})`: `{name}` is set, but to a value a template cannot show (text, numbers, booleans and lists of text can be shown)")
            } else {
                format!("line {line}: the template names `{name}`, which the context does not have")
            });
        };
        let conversion = Conversion {
            name,
            flags,
            width: width.parse().unwrap_or(0),
            precision,
            kind,
        };
        out.push_str(
            &conversion
                .format(value)
                .map_err(|msg| format!("line {line}: {msg}"))?,
        );
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Jinja

/// A minijinja error with its causes, in one line.
fn describe(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        source = cause.source();
    }
    msg
}

/// Renders the Jinja template `name` from `dir` with `values`, as
/// Fabric's `Environment(loader=FileSystemLoader(dir),
/// keep_trailing_newline=...)` does: no autoescaping, and an undefined
/// name renders as nothing.
pub(super) fn render_jinja(
    dir: &Path,
    name: &Path,
    values: &TemplateValues,
    keep_trailing_newline: bool,
) -> Result<String, String> {
    let Some(name) = name.to_str() else {
        return Err("a Jinja template's name must be UTF-8".to_string());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut jinja = minijinja::Environment::new();
    jinja.set_loader(minijinja::path_loader(dir));
    jinja.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax.keep_trailing_newline(keep_trailing_newline);
    jinja.set_syntax(syntax.build().map_err(|e| describe(&e))?);
    let template = jinja.get_template(name).map_err(|e| describe(&e))?;
    let context = Value::from(values.map.clone().unwrap_or_default());
    template.render(context).map_err(|e| describe(&e))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn context(pairs: &[(&str, Value)]) -> TemplateValues {
        TemplateValues {
            map: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            opaque: vec!["password".to_string()],
        }
    }

    #[test]
    fn percent_names_are_filled_in_as_python_does() {
        let ctx = context(&[
            ("domain", Value::from("example.org")),
            ("port", Value::from(8080)),
            ("ratio", Value::from(0.25)),
            ("whole", Value::from(3.0)),
            ("debug", Value::from(false)),
            ("none", Value::from(())),
        ]);
        let r = |t: &str| render_percent(t, &ctx);
        assert_eq!(
            r("server_name %(domain)s;\nlisten %(port)s;\n").unwrap(),
            "server_name example.org;\nlisten 8080;\n"
        );
        assert_eq!(
            r("100%% of %(ratio)s, %(whole)s").unwrap(),
            "100% of 0.25, 3.0"
        );
        assert_eq!(r("%(debug)s %(none)s").unwrap(), "False None");
        assert_eq!(
            r("[%(port)6d][%(port)-6d][%(port)06d]").unwrap(),
            "[  8080][8080  ][008080]"
        );
        assert_eq!(
            r("[%(domain).7s][%(domain)12s]").unwrap(),
            "[example][ example.org]"
        );
        assert_eq!(
            r("%(ratio).1f %(port)+d %(ratio)d %(port)ld").unwrap(),
            "0.2 +8080 0 8080"
        );
        // The name is everything up to the parenthesis that closes.
        let nested = context(&[("a(b)", Value::from("x"))]);
        assert_eq!(render_percent("%(a(b))s", &nested).unwrap(), "x");
    }

    #[test]
    fn percent_errors_name_the_line_and_the_cause() {
        let ctx = context(&[
            ("domain", Value::from("example.org")),
            ("list", Value::from(vec!["a".to_string()])),
        ]);
        let r = |t: &str| render_percent(t, &ctx).unwrap_err();
        assert_eq!(
            r("a\nb %(nope)s"),
            "line 2: the template names `nope`, which the context does not have"
        );
        assert!(
            r("%(password)s").contains("`password` is set, but"),
            "{}",
            r("%(password)s")
        );
        assert!(r("50% off").contains("line 1: `%` is followed by ` `"));
        assert!(r("100%").contains("the end of the template"));
        assert!(r("%(domain").contains("no `)`"));
        assert!(r("%(domain)").contains("without a conversion"));
        assert!(r("%(domain)x").contains("take the conversions s, d, i, u and f"));
        assert!(r("%(domain)d").contains("needs a number, and `domain` is text"));
        assert!(r("%(list)s").contains("`list` is a list"));
    }

    #[test]
    fn without_a_context_a_percent_template_stays_as_it_is() {
        for none in [
            ().template_values().unwrap(),
            BTreeMap::<String, String>::new().template_values().unwrap(),
        ] {
            assert_eq!(render_percent("100% %(x)s", &none).unwrap(), "100% %(x)s");
        }
    }

    #[test]
    fn contexts_from_maps_structs_pairs_and_the_settings() {
        #[derive(Serialize)]
        struct App {
            name: &'static str,
            workers: u32,
        }
        let r = |ctx: &dyn Fn() -> Result<TemplateValues, String>| {
            render_percent("%(name)s:%(workers)s", &ctx().unwrap()).unwrap()
        };
        assert_eq!(
            r(&|| App {
                name: "web",
                workers: 4
            }
            .template_values()),
            "web:4"
        );
        assert_eq!(
            r(&|| BTreeMap::from([("name", "web"), ("workers", "4")]).template_values()),
            "web:4"
        );
        assert_eq!(
            r(&|| [("name", "web"), ("workers", "4")].template_values()),
            "web:4"
        );
        assert!("just text"
            .template_values()
            .unwrap_err()
            .contains("is a string"));
        assert!([1, 2].template_values().unwrap_err().contains("pairs"));

        let settings = crate::state::Settings::new()
            .set("domain", "example.org")
            .set("workers", 4u32)
            .user("deploy")
            .password("secret");
        let env = settings.apply_to(&crate::state::env());
        let values = env.template_values().unwrap();
        assert_eq!(
            render_percent("%(user)s@%(domain)s:%(port)s x%(workers)s", &values).unwrap(),
            "deploy@example.org:22 x4"
        );
        let err = render_percent("%(password)s", &values).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("`password` is set, but"), "{err}");
    }

    #[test]
    fn jinja_renders_from_the_template_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.j2"),
            "[{% block body %}{% endblock %}]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("app.j2"),
            "{% extends 'base.j2' %}{% block body %}{{ name }}{% for w in workers %} {{ w }}{% endfor %}{{ missing }}<&>{% endblock %}\n",
        )
        .unwrap();
        #[derive(Serialize)]
        struct App {
            name: &'static str,
            workers: Vec<u32>,
        }
        let values = App {
            name: "web",
            workers: vec![1, 2],
        }
        .template_values()
        .unwrap();
        let name = Path::new("app.j2");
        assert_eq!(
            render_jinja(dir.path(), name, &values, false).unwrap(),
            "[web 1 2<&>]"
        );
        assert_eq!(
            render_jinja(dir.path(), name, &values, true).unwrap(),
            "[web 1 2<&>]\n"
        );
        let err = render_jinja(dir.path(), Path::new("nope.j2"), &values, false).unwrap_err();
        assert!(err.contains("nope.j2"), "{err}");
        std::fs::write(dir.path().join("bad.j2"), "{% if %}").unwrap();
        let err = render_jinja(dir.path(), Path::new("bad.j2"), &values, false).unwrap_err();
        assert!(err.contains("syntax error"), "{err}");
    }
}

//! Rules: run a command when keepalived reports an event.
//!
//! ```yaml
//! context:
//!   service: haproxy
//! rules:
//!   - name: start-haproxy
//!     state: MASTER
//!     exec: systemctl start {context.service}
//!   - name: stop-haproxy
//!     state: [BACKUP, FAULT]
//!     exec: systemctl stop {context.service}
//!     timeout: 20s
//! ```
//!
//! Conditions (`type`, `instance`, `state`) left out match anything. `exec`
//! is split into words once, at load time, like a shell would split it
//! (quotes and backslashes), but no shell ever runs unless the user writes
//! one (`sh -c '...'`). Placeholders are filled in per word afterwards, so an
//! instance name with spaces or quotes stays one argument. Every template
//! problem (an unknown placeholder, an unknown context key, an unclosed
//! quote) is a config error at load time naming the rule.
//!
//! Placeholders: `{type}` (INSTANCE or GROUP), `{instance}` (the name, quotes
//! keepalived adds stripped), `{state}`, `{priority}` (empty when keepalived
//! gave none), `{context.KEY}`; `{{` and `}}` are literal braces. The same
//! values are in the command's environment as `FLOATY_TYPE`,
//! `FLOATY_INSTANCE`, `FLOATY_STATE` and `FLOATY_PRIORITY`: inside `sh -c`,
//! use those instead of pasting names into shell code.
//!
//! Running: matching rules run one after the other, in config order, each
//! with its timeout (default [`DEFAULT_TIMEOUT`]); the command gets its own
//! process group, killed whole on timeout. Its stdout and stderr are logged
//! line by line with the rule's name. A failing command is logged and
//! changes nothing else.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::event::{Event, Kind, State};
use crate::text::text;
use crate::text::{LineSplitter, Piece as LinePiece};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// After the command exited, how long its output may still trickle in (a
/// background child it started may hold the pipe open for ever).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// One rule, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: Option<Kind>,
    /// Names as written; empty = any.
    pub instances: Vec<String>,
    /// Empty = any.
    pub states: Vec<State>,
    /// One template per argv element; at least one.
    pub exec: Vec<Template>,
    pub timeout: Duration,
}

/// One argv element with its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Type,
    Instance,
    State,
    Priority,
    /// Resolved to text when the rule is built; only seen in between.
    Context(String),
}

impl Rule {
    pub fn matches(&self, event: &Event) -> bool {
        self.kind.is_none_or(|k| k == event.kind)
            && (self.states.is_empty() || self.states.contains(&event.state))
            && (self.instances.is_empty()
                || self
                    .instances
                    .iter()
                    .any(|i| crate::event::name_matches(&event.name, i)))
    }

    /// The argv for `event`.
    pub fn argv(&self, event: &Event) -> Vec<String> {
        self.exec.iter().map(|t| t.render(event)).collect()
    }
}

impl Template {
    fn render(&self, event: &Event) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Type => out.push_str(&event.kind.to_string()),
                Part::Instance => out.push_str(&event.name),
                Part::State => out.push_str(event.state.as_str()),
                Part::Priority => {
                    if let Some(p) = event.priority {
                        out.push_str(&p.to_string());
                    }
                }
                // Resolved at load time; an unresolved one cannot exist.
                Part::Context(_) => {}
            }
        }
        out
    }

    /// Parse one word's placeholders.
    fn parse(word: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => {
                    return Err(format!(
                        "`{word}` has a lone `}}`; write `}}}}` for a literal brace"
                    ))
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(format!(
                                "`{word}` has an unclosed `{{`; write `{{{{` for a literal brace"
                            ))
                            }
                        }
                    }
                    let part = match name.as_str() {
                        "type" => Part::Type,
                        "instance" => Part::Instance,
                        "state" => Part::State,
                        "priority" => Part::Priority,
                        n => match n.strip_prefix("context.") {
                            Some(key) if !key.is_empty() => Part::Context(key.to_string()),
                            _ => {
                                return Err(format!(
                                "unknown placeholder `{{{name}}}`; use {{type}}, {{instance}}, {{state}}, {{priority}} or {{context.KEY}}"
                            ))
                            }
                        },
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template(parts))
    }

    /// Replace `{context.KEY}` by its value; the first unknown key is the error.
    fn resolve(self, context: &BTreeMap<String, String>) -> Result<Template, String> {
        let mut parts = Vec::with_capacity(self.0.len());
        for part in self.0 {
            parts.push(match part {
                Part::Context(key) => match context.get(&key) {
                    Some(v) => Part::Text(v.clone()),
                    None => return Err(key),
                },
                p => p,
            });
        }
        Ok(Template(parts))
    }
}

/// Split a command line into words the way `sh` would, without any
/// expansion: whitespace separates, `'...'` is literal, `"..."` keeps
/// backslash escapes of `"`, `\`, `$` and `` ` ``, a backslash outside
/// quotes takes the next character literally.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed `'`".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed `\"`".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed `\"`".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("ends in a lone `\\`".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

// ---------------------------------------------------------------------------
// Config: what the YAML holds, checked as it is read so that serde_yaml puts
// line and key (`rules[0].exec`) on every message; `config/build.rs` adds the rule's
// name.

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule: a mapping with name, exec and optionally type, instance, state, timeout"
)]
pub struct RawRule {
    name: RuleName,
    #[serde(rename = "type")]
    kind: Option<KindValue>,
    instance: Option<OneOrMore<NameValue>>,
    state: Option<OneOrMore<StateValue>>,
    exec: Exec,
    timeout: Option<Timeout>,
}

/// A rule that cannot be built: which one (position and name) and why, as
/// data, so the config can point at the line without reading our text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub index: usize,
    pub name: String,
    pub kind: RuleErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleErrorKind {
    #[error("another rule has this name; give each rule its own")]
    DuplicateName,
    #[error("`{{context.{key}}}` names no key of `context` (defined: {}); add `{key}:` under `context:`",
        if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownContextKey { key: String, known: Vec<String> },
}

/// The checked rules, context values filled in; the first rule that cannot
/// be built stops the load (a half-working rule set would surprise).
pub fn build(
    raw: Vec<RawRule>,
    context: &BTreeMap<String, String>,
) -> Result<Vec<Rule>, RuleError> {
    let mut out: Vec<Rule> = Vec::with_capacity(raw.len());
    for (index, r) in raw.into_iter().enumerate() {
        let name = r.name.0;
        let error = |kind| RuleError {
            index,
            name: name.clone(),
            kind,
        };
        if out.iter().any(|o| o.name == name) {
            return Err(error(RuleErrorKind::DuplicateName));
        }
        let mut exec = Vec::with_capacity(r.exec.0.len());
        for t in r.exec.0 {
            match t.resolve(context) {
                Ok(t) => exec.push(t),
                Err(key) => {
                    let known = context.keys().cloned().collect();
                    return Err(error(RuleErrorKind::UnknownContextKey { key, known }));
                }
            }
        }
        out.push(Rule {
            name,
            kind: r.kind.map(|k| k.0),
            instances: r
                .instance
                .map(|v| v.0.into_iter().map(|n| n.0).collect())
                .unwrap_or_default(),
            states: r
                .state
                .map(|v| v.0.into_iter().map(|s| s.0).collect())
                .unwrap_or_default(),
            exec,
            timeout: r.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
        });
    }
    Ok(out)
}

struct RuleName(String);

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a rule name", |s| {
            if s.trim().is_empty() {
                Err("empty; give the rule a name, it marks its log lines".into())
            } else {
                Ok(RuleName(s.to_string()))
            }
        })
    }
}

/// A user string from `context:`.
pub struct ContextValue(pub String);

impl<'de> Deserialize<'de> for ContextValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a string", |s| Ok(ContextValue(s.to_string())))
    }
}

struct KindValue(Kind);

impl<'de> Deserialize<'de> for KindValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "INSTANCE or GROUP", |s| match s {
            "INSTANCE" => Ok(KindValue(Kind::Instance)),
            "GROUP" => Ok(KindValue(Kind::Group)),
            o => Err(format!(
                "`{o}` is not an event type; write INSTANCE or GROUP"
            )),
        })
    }
}

struct NameValue(String);

impl<'de> Deserialize<'de> for NameValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an instance or group name", |s| {
            if s.is_empty() {
                Err("empty; remove the key to match any instance".into())
            } else {
                Ok(NameValue(s.to_string()))
            }
        })
    }
}

struct StateValue(State);

impl<'de> Deserialize<'de> for StateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a state", |s| {
            match Event::from_args("INSTANCE", "x", s, None) {
            Ok(e) => Ok(StateValue(e.state)),
            Err(_) => Err(format!(
                "`{s}` is not a state; write MASTER, BACKUP, FAULT, STOP or DELETED (or a list of them)"
            )),
        }
        })
    }
}

struct Timeout(Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a duration like 10s",
            |s| match crate::duration::parse(s).map_err(|e| e.to_string())? {
                d if d.is_zero() => Err(format!("`{s}` is zero; give the command time, e.g. 10s")),
                d => Ok(Timeout(d)),
            },
        )
    }
}

/// `x` or `[x, y]`.
struct OneOrMore<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMore<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMore<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::new(v)).map(|t| OneOrMore(vec![t]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list; remove the key to match anything",
                    ));
                }
                Ok(OneOrMore(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `exec: "cmd {arg}"` (split like a shell would) or `exec: [cmd, "{arg}"]`.
struct Exec(Vec<Template>);

impl<'de> Deserialize<'de> for Exec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Exec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command line or a list of arguments")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Exec, E> {
                let words = split_words(v).map_err(|e| E::custom(format!("{e} in `{v}`")))?;
                Exec::from_words(words).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Exec, A::Error> {
                let mut words = Vec::new();
                while let Some(ContextValue(w)) = seq.next_element()? {
                    words.push(w);
                }
                Exec::from_words(words).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Exec {
    fn from_words(words: Vec<String>) -> Result<Exec, String> {
        if words.first().is_none_or(|w| w.is_empty()) {
            return Err("no command; write e.g. `exec: systemctl start haproxy`".into());
        }
        words
            .iter()
            .map(|w| Template::parse(w))
            .collect::<Result<Vec<_>, _>>()
            .map(Exec)
    }
}

// ---------------------------------------------------------------------------
// Running.

/// Run every rule matching `event`, in order. `deadline` bounds the whole
/// run (notify mode's STOP call, which keepalived kills after 1 s); a rule
/// cut short by it is killed and logged.
pub async fn run_matching(rules: &[Rule], event: &Event, deadline: Option<Instant>) {
    for rule in rules.iter().filter(|r| r.matches(event)) {
        let mut until = Instant::now() + rule.timeout;
        let mut cut_by_deadline = false;
        if let Some(d) = deadline {
            if d <= Instant::now() {
                tracing::warn!(rule = %rule.name, "rule skipped: no time left before keepalived's deadline");
                continue;
            }
            if d < until {
                until = d;
                cut_by_deadline = true;
            }
        }
        run_one(rule, event, until, cut_by_deadline).await;
    }
}

async fn run_one(rule: &Rule, event: &Event, until: Instant, cut_by_deadline: bool) {
    let argv = rule.argv(event);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("FLOATY_TYPE", event.kind.to_string())
        .env("FLOATY_INSTANCE", &event.name)
        .env("FLOATY_STATE", event.state.as_str())
        .env(
            "FLOATY_PRIORITY",
            event.priority.map(|p| p.to_string()).unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    tracing::info!(rule = %rule.name, command = ?argv, "rule runs");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(rule = %rule.name, "rule failed: cannot run `{}`: {e}", argv[0]);
            return;
        }
    };
    let pid = child.id();
    let out = child
        .stdout
        .take()
        .map(|r| tokio::spawn(pump(r, rule.name.clone(), "stdout")));
    let err = child
        .stderr
        .take()
        .map(|r| tokio::spawn(pump(r, rule.name.clone(), "stderr")));
    let status = tokio::time::timeout_at(until, child.wait()).await;
    match status {
        Ok(Ok(s)) if s.success() => tracing::info!(rule = %rule.name, "rule done"),
        Ok(Ok(s)) => tracing::error!(rule = %rule.name, "rule failed: {s}"),
        Ok(Err(e)) => tracing::error!(rule = %rule.name, "rule failed: cannot wait for it: {e}"),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: plain kill(2) on the group we created; the child
                // is not reaped yet, so its PID (= PGID) is still ours.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            let why = if cut_by_deadline {
                "keepalived's deadline for this call".to_string()
            } else {
                format!("its timeout ({})", crate::duration::format(rule.timeout))
            };
            tracing::error!(rule = %rule.name, "rule killed: still running at {why}");
        }
    }
    for task in [out, err].into_iter().flatten() {
        let abort = task.abort_handle();
        if tokio::time::timeout(OUTPUT_GRACE, task).await.is_err() {
            abort.abort();
        }
    }
}

/// Log a command's output line by line (lines bounded like FIFO lines).
async fn pump(mut reader: impl AsyncRead + Unpin, rule: String, stream: &'static str) {
    let mut lines = LineSplitter::new();
    let mut buf = [0u8; 4096];
    let log = |piece: LinePiece| match piece {
        LinePiece::Line(l) => {
            tracing::info!(rule = %rule, stream, "{}", String::from_utf8_lossy(&l))
        }
        LinePiece::TooLong => {
            tracing::info!(rule = %rule, stream, "(a line over 4 KiB, not shown)")
        }
    };
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.push(&buf[..n]).into_iter().for_each(log),
        }
    }
    if let Some(rest) = lines.finish() {
        log(LinePiece::Line(rest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, name: &str, state: State, prio: Option<u32>) -> Event {
        Event {
            kind,
            name: name.into(),
            state,
            priority: prio,
        }
    }

    #[test]
    fn splits_like_a_shell_without_expanding() {
        let w = |s: &str| split_words(s).unwrap();
        assert_eq!(w("a b  c"), ["a", "b", "c"]);
        assert_eq!(
            w("sh -c 'echo $X; exit 1'"),
            ["sh", "-c", "echo $X; exit 1"]
        );
        assert_eq!(w(r#"a "b c" d\ e"#), ["a", "b c", "d e"]);
        assert_eq!(w(r#""q\"x\\y\n""#), [r#"q"x\y\n"#]);
        assert_eq!(w("''"), [""]);
        assert_eq!(w("a'b'\"c\""), ["abc"]);
        assert!(w("").is_empty());
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("end\\").is_err());
    }

    #[test]
    fn templates_fill_each_word_separately() {
        let ctx = BTreeMap::from([("svc".to_string(), "haproxy".to_string())]);
        let words =
            split_words("run {type} {instance} '{state} {priority}' {context.svc} {{x}}").unwrap();
        let exec: Vec<Template> = words
            .iter()
            .map(|w| Template::parse(w).unwrap().resolve(&ctx).unwrap())
            .collect();
        let rule = Rule {
            name: "r".into(),
            kind: None,
            instances: vec![],
            states: vec![],
            exec,
            timeout: DEFAULT_TIMEOUT,
        };
        let argv = rule.argv(&ev(
            Kind::Instance,
            "my inst; rm -rf /",
            State::Master,
            Some(150),
        ));
        assert_eq!(
            argv,
            [
                "run",
                "INSTANCE",
                "my inst; rm -rf /",
                "MASTER 150",
                "haproxy",
                "{x}"
            ]
        );
        let argv = rule.argv(&ev(Kind::Group, "G1", State::Stop, None));
        assert_eq!(argv[3], "STOP ");
    }

    #[test]
    fn bad_templates_are_refused() {
        for (t, needle) in [
            ("{nope}", "unknown placeholder `{nope}`"),
            ("{context.}", "unknown placeholder"),
            ("{instance", "unclosed"),
            ("a}b", "lone"),
            ("{Instance}", "unknown placeholder"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(needle), "{t}: {e}");
        }
        let t = Template::parse("{context.missing}").unwrap();
        assert_eq!(t.resolve(&BTreeMap::new()).unwrap_err(), "missing");
        assert!(Exec::from_words(vec![]).is_err());
        assert!(Exec::from_words(vec![String::new()]).is_err());
    }

    #[test]
    fn conditions_left_out_match_anything() {
        let mut rule = Rule {
            name: "r".into(),
            kind: None,
            instances: vec![],
            states: vec![],
            exec: vec![Template::parse("true").unwrap()],
            timeout: DEFAULT_TIMEOUT,
        };
        let master = ev(Kind::Instance, "'VI.a'", State::Master, Some(1));
        assert!(rule.matches(&master));
        rule.states = vec![State::Backup, State::Fault];
        assert!(!rule.matches(&master));
        assert!(rule.matches(&ev(Kind::Instance, "x", State::Fault, None)));
        rule.states.clear();
        rule.instances = vec!["'VI.a'".into()];
        assert!(rule.matches(&master));
        assert!(!rule.matches(&ev(Kind::Instance, "VI_1", State::Master, None)));
        rule.kind = Some(Kind::Group);
        assert!(!rule.matches(&master));
    }

    #[test]
    fn commands_run_in_order_with_timeout_and_failures_logged() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mk = |name: &str, exec: &str, timeout: Duration| Rule {
            name: name.into(),
            kind: None,
            instances: vec![],
            states: vec![],
            exec: split_words(exec)
                .unwrap()
                .iter()
                .map(|w| Template::parse(w).unwrap())
                .collect(),
            timeout,
        };
        let o = out.display();
        let rules = vec![
            mk(
                "one",
                &format!("sh -c 'echo one $FLOATY_STATE >>{o}'"),
                DEFAULT_TIMEOUT,
            ),
            mk("fails", "false", DEFAULT_TIMEOUT),
            mk("missing", "/nonexistent/floaty-test", DEFAULT_TIMEOUT),
            mk("slow", "sleep 30", Duration::from_millis(100)),
            mk(
                "two",
                &format!("sh -c 'echo two {{instance}} >>{o}'"),
                DEFAULT_TIMEOUT,
            ),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t0 = std::time::Instant::now();
        rt.block_on(run_matching(
            &rules,
            &ev(Kind::Instance, "VI_1", State::Master, Some(1)),
            None,
        ));
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slow rule was not cut"
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "one MASTER\ntwo VI_1\n"
        );
    }

    fn load(yaml: &str) -> Result<crate::config::Config, String> {
        crate::config::parse(yaml, std::path::Path::new("/etc/floaty.yml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rules_load_from_the_config() {
        let c = load(
            "provider: cloudscale\ncontext:\n  svc: haproxy\n  port: 80\nrules:\n  - name: up\n    state: MASTER\n    exec: systemctl start {context.svc}\n  - name: down\n    type: INSTANCE\n    instance: [VI_1, \"'VI.b'\"]\n    state: [BACKUP, FAULT]\n    exec: [echo, \"{instance} {context.port}\"]\n    timeout: 2s\n",
        )
        .unwrap();
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].states, [State::Master]);
        assert_eq!(c.rules[0].timeout, DEFAULT_TIMEOUT);
        let e = ev(Kind::Instance, "'VI.b'", State::Fault, Some(1));
        assert!(c.rules[1].matches(&e));
        assert_eq!(c.rules[1].argv(&e), ["echo", "'VI.b' 80"]);
        assert_eq!(c.rules[1].timeout, Duration::from_secs(2));
        assert!(load("provider: cloudscale\n").unwrap().rules.is_empty());
    }

    #[test]
    fn rule_errors_name_the_rule_and_the_line() {
        let base = "provider: cloudscale\ncontext:\n  svc: haproxy\nrules:\n  - name: first\n    exec: \"true\"\n  - name: web\n";
        for (rest, needles) in [
            (
                "    exec: echo {nope}\n",
                vec!["line 8", "rules[1].exec", "rule `web`", "{nope}"],
            ),
            (
                "    exec: echo {context.port}\n",
                vec!["line 8", "rule `web`", "context.port", "defined: svc"],
            ),
            (
                "    exec: \"echo 'x\"\n",
                vec!["line 8", "rule `web`", "unclosed"],
            ),
            (
                "    exec: \"\"\n",
                vec!["line 8", "rule `web`", "no command"],
            ),
            (
                "    exec: x\n    state: PRIMARY\n",
                vec!["line 9", "rule `web`", "PRIMARY"],
            ),
            (
                "    exec: x\n    type: VRRP\n",
                vec!["line 9", "rule `web`", "INSTANCE or GROUP"],
            ),
            (
                "    exec: x\n    timeout: 0s\n",
                vec!["line 9", "rule `web`", "zero"],
            ),
            (
                "    exec: x\n    when: MASTER\n",
                vec!["line 9", "rule `web`", "when"],
            ),
            ("    state: MASTER\n", vec!["line 7", "exec"]),
            (
                "    exec: x\n  - name: web\n    exec: y\n",
                vec!["line 9", "rule `web`", "another rule"],
            ),
        ] {
            let e = load(&format!("{base}{rest}")).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
            for n in needles {
                assert!(e.contains(n), "{rest:?}: `{n}` not in: {e}");
            }
        }
    }
}

//! Sensu's `labelSelector` / `fieldSelector` query parameters: the expression language, the
//! fields each kind of resource exposes to it, and the labels it is matched against.
//!
//! ```
//! use ward_types::selector::Selection;
//! let sel = Selection::parse(&["region == eu"], &["linux in check.subscriptions"]).unwrap();
//! let check = serde_json::json!({
//!     "subscriptions": ["linux", "web"],
//!     "metadata": {"name": "disk", "namespace": "default", "labels": {"region": "eu"}}
//! });
//! assert!(sel.admits("CheckConfig", &check));
//! ```
//!
//! The grammar is `key OP value (&& key OP value)*` with OP one of `==`, `!=`, `in`, `notin`,
//! `matches`. What Sensu Go's parser accepts parses here to the same requirements, with two
//! exceptions: a string must close with the quote it opened with, and a space may not follow
//! a `.` inside a name (Sensu reads `check. name` as `check.name`). Accepted here besides:
//! `a==b` without spaces, `x in[a]`, quoted or boolean values after `in`, and bare values
//! that start with a digit (`event.check.status == 2`, where Sensu needs `'2'`).
//!
//! Matching looks fields up one at a time ([`Selector::matches_with`], [`field`]), so a
//! filter over many resources computes only the fields its selectors name.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `==`
    Equals,
    /// `!=`
    NotEquals,
    /// `in`
    In,
    /// `notin`
    NotIn,
    /// `matches` (a substring test)
    Matches,
}

impl Operator {
    /// The operator as written in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Matches => "matches",
        }
    }
}

/// One `key OP value` term of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A parsed selector: every requirement must hold. An empty selector admits everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Why a selector did not parse: which parameter, where (1-based, in characters), what the
/// parser wanted and what it saw instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: at character {at}: expected {expected}, found {found}")]
pub struct SelectorError {
    /// `labelSelector`, `fieldSelector`, or `selector` when parsed on its own.
    pub param: &'static str,
    pub at: usize,
    pub expected: &'static str,
    /// Already quoted, or `end of input`.
    pub found: String,
}

const EXPECT_KEY: &str = "a key (a name or a quoted string)";
const EXPECT_OP: &str = "an operator (==, !=, in, notin, matches)";
const EXPECT_VALUE: &str = "a value (a name, a quoted string, true or false)";
const EXPECT_LIST: &str = "[ or a value";
const EXPECT_ITEM: &str = "a value, a comma or ]";
const EXPECT_NEXT: &str = "&& or the end of the selector";
const EXPECT_DOT: &str = "a letter or _ after \".\"";
const EXPECT_CLOSE: &str = "a closing quote for the string that starts here";

impl Selector {
    /// Parses a selector; errors name the parameter `selector`.
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        Selector::parse_param("selector", input)
    }

    /// Parses a selector; errors name `param` (e.g. `labelSelector`).
    pub fn parse_param(param: &'static str, input: &str) -> Result<Selector, SelectorError> {
        Parser {
            lexer: Lexer {
                chars: input.chars().collect(),
                i: 0,
                param,
            },
            peeked: None,
        }
        .selector()
    }

    /// Both selectors must hold (how repeated query parameters combine).
    pub fn and(mut self, other: Selector) -> Selector {
        self.requirements.extend(other.requirements);
        self
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when there is nothing to test.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Every key the selector may look up: the left-hand keys, and the single right-hand
    /// value of `in`/`notin`, which names a list field when such a field exists.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().flat_map(|r| {
            let list_ref = match (r.operator, r.values.as_slice()) {
                (Operator::In | Operator::NotIn, [one]) => Some(one.as_str()),
                _ => None,
            };
            std::iter::once(r.key.as_str()).chain(list_ref)
        })
    }

    /// Tests a precomputed set of fields or labels.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| fields.get(k).map(|v| Cow::Borrowed(v.as_str())))
    }

    /// Tests fields produced on demand by `lookup` (None: no such key), so that only the
    /// keys the selector mentions are ever computed.
    pub fn matches_with<'v>(&self, lookup: impl Fn(&str) -> Option<Cow<'v, str>>) -> bool {
        self.requirements
            .iter()
            .all(|r| requirement_holds(r, &lookup))
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

fn requirement_holds<'v>(r: &Requirement, lookup: &impl Fn(&str) -> Option<Cow<'v, str>>) -> bool {
    let positive = match r.operator {
        Operator::Equals | Operator::In | Operator::Matches => true,
        Operator::NotEquals | Operator::NotIn => false,
    };
    if let (Operator::In | Operator::NotIn, [one]) = (r.operator, r.values.as_slice()) {
        // `linux in check.subscriptions`: the right side names a list field.
        if let Some(list) = lookup(one) {
            let found = list
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .any(|item| item.trim() == r.key);
            return found == positive;
        }
    }
    let Some(value) = lookup(&r.key) else {
        // An absent key satisfies only the negative operators.
        return !positive;
    };
    let hit = if r.operator == Operator::Matches {
        r.values.iter().any(|v| value.contains(v.as_str()))
    } else {
        r.values.iter().any(|v| *v == *value)
    };
    hit == positive
}

// ---------------------------------------------------------------------------------------
// Lexer and parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    And,
    Word,
    In,
    NotIn,
    Matches,
    Bool,
    Num,
    Str,
    Bad,
    End,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    /// 1-based character position.
    at: usize,
    /// The value: a word, a string's contents, a keyword in lower case.
    text: String,
    /// As written, for error messages.
    raw: String,
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    param: &'static str,
}

fn ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_tail(c: char) -> bool {
    c == '_' || c == '.' || c == '/' || c.is_alphanumeric()
}

impl Lexer {
    fn error(&self, at: usize, expected: &'static str, found: Option<&str>) -> SelectorError {
        SelectorError {
            param: self.param,
            at,
            expected,
            found: describe(found),
        }
    }

    fn next(&mut self) -> Result<Token, SelectorError> {
        while self.chars.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
        let start = self.i;
        let at = start + 1;
        let Some(&c) = self.chars.get(start) else {
            return Ok(Token {
                tok: Tok::End,
                at,
                text: String::new(),
                raw: String::new(),
            });
        };
        let next = self.chars.get(start + 1).copied();
        let (tok, len) = match (c, next) {
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('&', Some('&')) => (Tok::And, 2),
            ('"' | '\'', _) => return self.string(c),
            (c, _) if ident_start(c) => return self.word(),
            (c, _) if c.is_ascii_digit() => return Ok(self.number()),
            _ => (Tok::Bad, 1),
        };
        self.i += len;
        let raw: String = self.chars[start..self.i].iter().collect();
        Ok(Token {
            tok,
            at,
            text: raw.clone(),
            raw,
        })
    }

    fn string(&mut self, quote: char) -> Result<Token, SelectorError> {
        let start = self.i;
        let Some(len) = self.chars[start + 1..].iter().position(|&c| c == quote) else {
            return Err(self.error(start + 1, EXPECT_CLOSE, None));
        };
        let end = start + 1 + len;
        self.i = end + 1;
        Ok(Token {
            tok: Tok::Str,
            at: start + 1,
            text: self.chars[start + 1..end].iter().collect(),
            raw: self.chars[start..self.i].iter().collect(),
        })
    }

    /// A bare value starting with a digit (`2`, `10.0.0.1`), which Sensu makes you quote.
    fn number(&mut self) -> Token {
        let start = self.i;
        while self.chars.get(self.i).is_some_and(|&c| ident_tail(c)) {
            self.i += 1;
        }
        let text: String = self.chars[start..self.i].iter().collect();
        Token {
            tok: Tok::Num,
            at: start + 1,
            raw: text.clone(),
            text,
        }
    }

    fn word(&mut self) -> Result<Token, SelectorError> {
        let start = self.i;
        while let Some(&c) = self.chars.get(self.i) {
            if !ident_tail(c) {
                break;
            }
            self.i += 1;
            if c == '.' {
                // Each dotted segment must start like a name (as in Sensu's lexer).
                match self.chars.get(self.i) {
                    Some(&n) if ident_start(n) => {}
                    Some(n) => {
                        return Err(self.error(self.i + 1, EXPECT_DOT, Some(&n.to_string())));
                    }
                    None => return Err(self.error(self.i + 1, EXPECT_DOT, None)),
                }
            }
        }
        let raw: String = self.chars[start..self.i].iter().collect();
        let lower = raw.to_lowercase();
        let tok = match lower.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            "matches" => Tok::Matches,
            "true" | "false" => Tok::Bool,
            _ => Tok::Word,
        };
        let text = if tok == Tok::Word { raw.clone() } else { lower };
        Ok(Token {
            tok,
            at: start + 1,
            text,
            raw,
        })
    }
}

/// Quotes what was found for an error message, briefly and on one line.
fn describe(found: Option<&str>) -> String {
    match found {
        None => "end of input".to_string(),
        Some(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("{:?}…", cut)
            } else {
                format!("{s:?}")
            }
        }
    }
}

struct Parser {
    lexer: Lexer,
    peeked: Option<Token>,
}

impl Parser {
    fn next(&mut self) -> Result<Token, SelectorError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn peek(&mut self) -> Result<&Token, SelectorError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next()?,
        };
        Ok(self.peeked.insert(t))
    }

    fn unexpected(&self, t: &Token, expected: &'static str) -> SelectorError {
        let found = (t.tok != Tok::End).then_some(t.raw.as_str());
        self.lexer.error(t.at, expected, found)
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        let mut after_and = false;
        loop {
            let t = self.next()?;
            let key = match t.tok {
                Tok::End if !after_and && requirements.is_empty() => break,
                Tok::Word | Tok::Str => t.text,
                _ => return Err(self.unexpected(&t, EXPECT_KEY)),
            };
            let t = self.next()?;
            let operator = match t.tok {
                Tok::Eq => Operator::Equals,
                Tok::Ne => Operator::NotEquals,
                Tok::In => Operator::In,
                Tok::NotIn => Operator::NotIn,
                Tok::Matches => Operator::Matches,
                _ => return Err(self.unexpected(&t, EXPECT_OP)),
            };
            let values = match operator {
                Operator::In | Operator::NotIn => self.list()?,
                _ => {
                    let t = self.next()?;
                    match t.tok {
                        Tok::Word | Tok::Str | Tok::Bool | Tok::Num | Tok::Matches => vec![t.text],
                        _ => return Err(self.unexpected(&t, EXPECT_VALUE)),
                    }
                }
            };
            requirements.push(Requirement {
                key,
                operator,
                values,
            });
            after_and = match self.peek()?.tok {
                Tok::End => break,
                Tok::And => {
                    self.next()?;
                    true
                }
                // Sensu also takes requirements written one after another without `&&`.
                Tok::Word | Tok::Str => false,
                _ => {
                    let t = self.next()?;
                    return Err(self.unexpected(&t, EXPECT_NEXT));
                }
            };
        }
        Ok(Selector { requirements })
    }

    /// `[a, b, …]` or a single value. As in Sensu, commas are optional separators.
    fn list(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next()?;
        match t.tok {
            Tok::Word | Tok::Str | Tok::Bool | Tok::Num => return Ok(vec![t.text]),
            Tok::LBracket => {}
            _ => return Err(self.unexpected(&t, EXPECT_LIST)),
        }
        let mut values = Vec::new();
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::RBracket => return Ok(values),
                Tok::Comma => {}
                Tok::Word | Tok::Str | Tok::Bool | Tok::Num | Tok::Matches => values.push(t.text),
                _ => return Err(self.unexpected(&t, EXPECT_ITEM)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fields and labels of resources

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ApiKey,
    Asset,
    Check,
    ClusterRole,
    ClusterRoleBinding,
    Entity,
    Event,
    Extension,
    Filter,
    Handler,
    Hook,
    Mutator,
    Namespace,
    Pipeline,
    Role,
    RoleBinding,
    Silenced,
    User,
}

/// Sensu's type names, compared ignoring case and `_` so `check_config` works too.
const KINDS: &[(&str, Kind)] = &[
    ("apikey", Kind::ApiKey),
    ("asset", Kind::Asset),
    ("checkconfig", Kind::Check),
    ("clusterrole", Kind::ClusterRole),
    ("clusterrolebinding", Kind::ClusterRoleBinding),
    ("entity", Kind::Entity),
    ("event", Kind::Event),
    ("extension", Kind::Extension),
    ("eventfilter", Kind::Filter),
    ("handler", Kind::Handler),
    ("hookconfig", Kind::Hook),
    ("mutator", Kind::Mutator),
    ("namespace", Kind::Namespace),
    ("pipeline", Kind::Pipeline),
    ("role", Kind::Role),
    ("rolebinding", Kind::RoleBinding),
    ("silenced", Kind::Silenced),
    ("user", Kind::User),
];

fn kind_of(name: &str) -> Option<Kind> {
    let norm = || {
        name.chars()
            .filter(|&c| c != '_')
            .map(|c| c.to_ascii_lowercase())
    };
    KINDS
        .iter()
        .find(|(k, _)| k.chars().eq(norm()))
        .map(|&(_, kind)| kind)
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::ApiKey => "api_key",
            Kind::Asset => "asset",
            Kind::Check => "check",
            Kind::ClusterRole => "clusterrole",
            Kind::ClusterRoleBinding => "clusterrolebinding",
            Kind::Entity => "entity",
            Kind::Event => "event",
            Kind::Extension => "extension",
            Kind::Filter => "filter",
            Kind::Handler => "handler",
            Kind::Hook => "hook",
            Kind::Mutator => "mutator",
            Kind::Namespace => "namespace",
            Kind::Pipeline => "pipeline",
            Kind::Role => "role",
            Kind::RoleBinding => "rolebinding",
            Kind::Silenced => "silenced",
            Kind::User => "user",
        }
    }

    /// The field names after the prefix, `labels.*` aside.
    fn names(self) -> &'static [&'static str] {
        match self {
            Kind::ApiKey => &["name", "username"],
            Kind::Asset => &["name", "namespace", "filters"],
            Kind::Check => &[
                "name",
                "namespace",
                "handlers",
                "publish",
                "round_robin",
                "runtime_assets",
                "subscriptions",
                "pipelines",
            ],
            Kind::ClusterRole => &["name"],
            Kind::ClusterRoleBinding => &["name", "role_ref.name", "role_ref.type"],
            Kind::RoleBinding => &["name", "namespace", "role_ref.name", "role_ref.type"],
            Kind::Entity => &[
                "name",
                "namespace",
                "deregister",
                "entity_class",
                "subscriptions",
                "user",
            ],
            Kind::Event => &[
                "name",
                "namespace",
                "is_silenced",
                "timestamp",
                "check.handlers",
                "check.is_silenced",
                "check.last_ok",
                "check.name",
                "check.publish",
                "check.round_robin",
                "check.runtime_assets",
                "check.state",
                "check.status",
                "check.subscriptions",
                "entity.deregister",
                "entity.name",
                "entity.entity_class",
                "entity.subscriptions",
            ],
            Kind::Filter => &["name", "namespace", "action", "runtime_assets"],
            Kind::Handler => &[
                "name",
                "namespace",
                "filters",
                "handlers",
                "mutator",
                "type",
            ],
            Kind::Extension | Kind::Hook | Kind::Pipeline | Kind::Role => &["name", "namespace"],
            Kind::Mutator => &["name", "namespace", "runtime_assets"],
            Kind::Namespace => &["name"],
            Kind::Silenced => &[
                "name",
                "namespace",
                "check",
                "creator",
                "expire_on_resolve",
                "subscription",
                "reason",
            ],
            Kind::User => &["username", "disabled", "groups"],
        }
    }

    /// Whether `<prefix>.labels.<key>` fields exist (not for users and namespaces).
    fn has_label_fields(self) -> bool {
        !matches!(self, Kind::User | Kind::Namespace)
    }
}

fn meta<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get("metadata")?.get(key)
}

fn own_labels(v: &Value) -> Option<&Map<String, Value>> {
    meta(v, "labels")?.as_object()
}

/// A label's value; only scalars count.
fn label_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A string field; absent or null is "" (Go's zero value).
fn text(v: Option<&Value>) -> Cow<'_, str> {
    v.and_then(label_text).unwrap_or(Cow::Borrowed(""))
}

fn flag(v: Option<&Value>) -> Cow<'static, str> {
    Cow::Borrowed(if v == Some(&Value::Bool(true)) {
        "true"
    } else {
        "false"
    })
}

fn int(v: Option<&Value>) -> Cow<'static, str> {
    let mut buf = itoa::Buffer::new();
    let s = match v {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => buf.format(i),
            (None, Some(u), _) => buf.format(u),
            (None, None, Some(f)) => buf.format(f as i64),
            _ => "0",
        },
        _ => "0",
    };
    Cow::Owned(s.to_string())
}

/// A list field, comma-joined.
fn join(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        Some(Value::Array(items)) => match items.as_slice() {
            [one] => text(Some(one)),
            _ => {
                let parts: Vec<Cow<str>> = items.iter().map(|i| text(Some(i))).collect();
                Cow::Owned(parts.join(","))
            }
        },
        _ => Cow::Borrowed(""),
    }
}

fn name_of(v: &Value) -> Cow<'_, str> {
    text(meta(v, "name"))
}

/// One field of a resource, computed alone. `key` is the full name, e.g. `check.name`.
pub fn field<'v>(kind_name: &str, flat: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    kind_of(kind_name).and_then(|k| field_of(k, flat, key))
}

fn field_of<'v>(kind: Kind, r: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    let rest = key.strip_prefix(kind.prefix())?.strip_prefix('.')?;
    if kind.has_label_fields() {
        if let Some(label) = rest.strip_prefix("labels.") {
            return event_label(kind, r, label);
        }
    }
    if kind == Kind::Event {
        if let Some(l) = rest.strip_prefix("check.labels.") {
            return own_labels(r.get("check")?)?.get(l).and_then(label_text);
        }
        if let Some(l) = rest.strip_prefix("entity.labels.") {
            return own_labels(r.get("entity")?)?.get(l).and_then(label_text);
        }
    }
    let get = |k: &str| r.get(k);
    Some(match (kind, rest) {
        (Kind::Namespace, "name") => match r.get("name") {
            Some(n) => text(Some(n)),
            None => name_of(r),
        },
        (Kind::Silenced, "name") => silenced_name(r),
        (Kind::User, "username") => text(get("username")),
        (Kind::User, "disabled") => flag(get("disabled")),
        (Kind::User, "groups") => join(get("groups")),
        (Kind::User | Kind::Namespace, _) => return None,
        (Kind::Event, _) => return event_field(r, rest),
        (_, "name") => name_of(r),
        (Kind::ClusterRole | Kind::ClusterRoleBinding | Kind::ApiKey, "namespace") => return None,
        (_, "namespace") => text(meta(r, "namespace")),
        (Kind::ApiKey, "username") => text(get("username")),
        (Kind::Asset | Kind::Handler, "filters") => join(get("filters")),
        (Kind::Check, "handlers") | (Kind::Handler, "handlers") => join(get("handlers")),
        (Kind::Check, "publish") => flag(get("publish")),
        (Kind::Check, "round_robin") => flag(get("round_robin")),
        (Kind::Check | Kind::Filter | Kind::Mutator, "runtime_assets") => {
            join(get("runtime_assets"))
        }
        (Kind::Check | Kind::Entity, "subscriptions") => join(get("subscriptions")),
        (Kind::Check, "pipelines") => pipelines(get("pipelines")),
        (Kind::Entity, "deregister") => flag(get("deregister")),
        (Kind::Entity, "entity_class") => text(get("entity_class")),
        (Kind::Entity, "user") => text(get("user")),
        (Kind::Filter, "action") => text(get("action")),
        (Kind::Handler, "mutator") => text(get("mutator")),
        (Kind::Handler, "type") => text(get("type")),
        (Kind::RoleBinding | Kind::ClusterRoleBinding, "role_ref.name") => {
            text(get("role_ref").and_then(|v| v.get("name")))
        }
        (Kind::RoleBinding | Kind::ClusterRoleBinding, "role_ref.type") => {
            text(get("role_ref").and_then(|v| v.get("type")))
        }
        (Kind::Silenced, "check") => text(get("check")),
        (Kind::Silenced, "creator") => text(get("creator")),
        (Kind::Silenced, "expire_on_resolve") => flag(get("expire_on_resolve")),
        (Kind::Silenced, "subscription") => text(get("subscription")),
        (Kind::Silenced, "reason") => text(get("reason")),
        _ => return None,
    })
}

/// A `labels.<key>` field: the resource's own label; for an event the check's label wins
/// over the entity's, which wins over the event's (the order Sensu merges them in).
fn event_label<'v>(kind: Kind, r: &'v Value, label: &str) -> Option<Cow<'v, str>> {
    let mut sources = [None, None, own_labels(r)];
    if kind == Kind::Event {
        sources[0] = r.get("check").and_then(own_labels);
        sources[1] = r.get("entity").and_then(own_labels);
    }
    sources
        .into_iter()
        .flatten()
        .find_map(|m| m.get(label).and_then(label_text))
}

fn event_field<'v>(r: &'v Value, rest: &str) -> Option<Cow<'v, str>> {
    let check = r.get("check");
    let entity = r.get("entity");
    let c = |k: &str| check.and_then(|c| c.get(k));
    let e = |k: &str| entity.and_then(|e| e.get(k));
    Some(match rest {
        "name" => name_of(r),
        "namespace" => text(meta(r, "namespace")),
        "is_silenced" | "check.is_silenced" => {
            let silenced = c("silenced")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            Cow::Borrowed(if silenced { "true" } else { "false" })
        }
        "timestamp" => int(r.get("timestamp")),
        "check.handlers" => join(c("handlers")),
        "check.last_ok" => int(c("last_ok")),
        "check.name" => check.map_or(Cow::Borrowed(""), name_of),
        "check.publish" => flag(c("publish")),
        "check.round_robin" => flag(c("round_robin")),
        "check.runtime_assets" => join(c("runtime_assets")),
        "check.state" => text(c("state")),
        "check.status" => int(c("status")),
        "check.subscriptions" => join(c("subscriptions")),
        "entity.deregister" => flag(e("deregister")),
        "entity.name" => entity.map_or(Cow::Borrowed(""), name_of),
        "entity.entity_class" => text(e("entity_class")),
        "entity.subscriptions" => join(e("subscriptions")),
        _ => return None,
    })
}

/// Sensu names a silence `subscription:check`, `*` standing for either when unset.
fn silenced_name(r: &Value) -> Cow<'_, str> {
    let name = name_of(r);
    if !name.is_empty() {
        return name;
    }
    let part = |k: &str| match text(r.get(k)) {
        s if s.is_empty() => Cow::Borrowed("*"),
        s => s,
    };
    Cow::Owned(format!("{}:{}", part("subscription"), part("check")))
}

/// A check's pipelines as Sensu writes their ids: `core/v2.Pipeline(Name=x)`.
fn pipelines(v: Option<&Value>) -> Cow<'_, str> {
    let Some(Value::Array(items)) = v else {
        return Cow::Borrowed("");
    };
    let ids: Vec<String> = items
        .iter()
        .map(|p| {
            let f = |k: &str| text(p.get(k));
            format!("{}.{}(Name={})", f("api_version"), f("type"), f("name"))
        })
        .collect();
    Cow::Owned(ids.join(","))
}

/// Every selectable field of a resource given as Sensu's flat JSON, under Sensu's names.
/// Unknown kinds have none.
pub fn fields(kind_name: &str, flat: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(kind) = kind_of(kind_name) else {
        return out;
    };
    let prefix = kind.prefix();
    for name in kind.names() {
        let key = format!("{prefix}.{name}");
        if let Some(v) = field_of(kind, flat, &key) {
            out.insert(key, v.into_owned());
        }
    }
    if kind.has_label_fields() {
        let mut add = |m: Option<&Map<String, Value>>, infix: &str| {
            for (k, v) in m.into_iter().flatten() {
                if let Some(v) = label_text(v) {
                    out.insert(format!("{prefix}.{infix}{k}"), v.into_owned());
                }
            }
        };
        // Later inserts win: event, then entity, then check labels.
        add(own_labels(flat), "labels.");
        if kind == Kind::Event {
            let entity = flat.get("entity").and_then(own_labels);
            let check = flat.get("check").and_then(own_labels);
            add(entity, "labels.");
            add(check, "labels.");
            add(entity, "entity.labels.");
            add(check, "check.labels.");
        }
    }
    out
}

fn label_map(m: Option<&Map<String, Value>>) -> BTreeMap<String, String> {
    m.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), label_text(v)?.into_owned())))
        .collect()
}

/// The labels a label selector sees first: `metadata.labels` (users have none in Sensu).
pub fn labels(kind_name: &str, flat: &Value) -> BTreeMap<String, String> {
    if kind_of(kind_name) == Some(Kind::User) {
        return BTreeMap::new();
    }
    label_map(own_labels(flat))
}

/// An event's second chance: its entity's and its check's labels merged, the check's
/// winning. A label selector admits an event if it matches either this or [`labels`].
pub fn event_labels(flat: &Value) -> BTreeMap<String, String> {
    let mut out = label_map(flat.get("entity").and_then(own_labels));
    out.extend(label_map(flat.get("check").and_then(own_labels)));
    out
}

/// The `labelSelector` and `fieldSelector` of one list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub label: Option<Selector>,
    pub field: Option<Selector>,
}

impl Selection {
    /// Parses the query parameters; repeated ones must all hold. Blank ones are ignored.
    pub fn parse(
        label_selectors: &[&str],
        field_selectors: &[&str],
    ) -> Result<Selection, SelectorError> {
        fn combine(
            param: &'static str,
            inputs: &[&str],
        ) -> Result<Option<Selector>, SelectorError> {
            let mut all = Selector::default();
            for input in inputs {
                all = all.and(Selector::parse_param(param, input)?);
            }
            Ok((!all.is_empty()).then_some(all))
        }
        Ok(Selection {
            label: combine("labelSelector", label_selectors)?,
            field: combine("fieldSelector", field_selectors)?,
        })
    }

    /// True when neither parameter selects anything.
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    /// Whether a resource (flat JSON, of Sensu type `kind_name`) passes both selectors.
    /// Only the fields and labels the selectors mention are looked at.
    pub fn admits(&self, kind_name: &str, flat: &Value) -> bool {
        let kind = kind_of(kind_name);
        if let Some(sel) = &self.label {
            let own = own_labels(flat).filter(|_| kind != Some(Kind::User));
            let hit = sel.matches_with(|k| own?.get(k).and_then(label_text));
            let hit = hit
                || (kind == Some(Kind::Event) && {
                    let entity = flat.get("entity").and_then(own_labels);
                    let check = flat.get("check").and_then(own_labels);
                    sel.matches_with(|k| {
                        [check, entity]
                            .into_iter()
                            .flatten()
                            .find_map(|m| m.get(k).and_then(label_text))
                    })
                });
            if !hit {
                return false;
            }
        }
        match (&self.field, kind) {
            (None, _) => true,
            (Some(sel), Some(kind)) => sel.matches_with(|k| field_of(kind, flat, k)),
            (Some(sel), None) => sel.matches_with(|_| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn one(s: &str) -> Requirement {
        let sel = parse(s);
        assert_eq!(sel.requirements().len(), 1, "{s:?}");
        sel.requirements()[0].clone()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn err(s: &str) -> SelectorError {
        match Selector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
            Err(e) => e,
        }
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator() {
        use Operator::*;
        assert_eq!(one("a == b"), req("a", Equals, &["b"]));
        assert_eq!(one("a != b"), req("a", NotEquals, &["b"]));
        assert_eq!(one("a in [b, c]"), req("a", In, &["b", "c"]));
        assert_eq!(one("a notin [b,c]"), req("a", NotIn, &["b", "c"]));
        assert_eq!(one("a matches b"), req("a", Matches, &["b"]));
        assert_eq!(
            one("linux in check.subscriptions"),
            req("linux", In, &["check.subscriptions"])
        );
        assert_eq!(one("a notin b"), req("a", NotIn, &["b"]));
    }

    #[test]
    fn keywords_any_case_and_values() {
        use Operator::*;
        assert_eq!(one("a IN [b]"), req("a", In, &["b"]));
        assert_eq!(one("a NotIn [b]"), req("a", NotIn, &["b"]));
        assert_eq!(one("a MATCHES b"), req("a", Matches, &["b"]));
        assert_eq!(one("a == TRUE"), req("a", Equals, &["true"]));
        assert_eq!(one("a != False"), req("a", NotEquals, &["false"]));
        assert_eq!(one("a == matches"), req("a", Equals, &["matches"]));
        // names keep their case
        assert_eq!(one("Region == EU"), req("Region", Equals, &["EU"]));
        assert_eq!(one("a == _x.y/z9"), req("a", Equals, &["_x.y/z9"]));
        assert_eq!(one("a == ünïcode"), req("a", Equals, &["ünïcode"]));
    }

    #[test]
    fn quoting() {
        use Operator::*;
        assert_eq!(one("a == 'us-west-1'"), req("a", Equals, &["us-west-1"]));
        assert_eq!(one("a == \"1 2\""), req("a", Equals, &["1 2"]));
        assert_eq!(one("a == \"it's\""), req("a", Equals, &["it's"]));
        assert_eq!(one("a == ''"), req("a", Equals, &[""]));
        assert_eq!(one("'my key' == b"), req("my key", Equals, &["b"]));
        assert_eq!(
            one("a in ['x-1', \"y 2\", z]"),
            req("a", In, &["x-1", "y 2", "z"])
        );
        assert_eq!(one("a == \"&& == [\""), req("a", Equals, &["&& == ["]));
    }

    #[test]
    fn lists_and_spacing() {
        use Operator::*;
        assert_eq!(one("a in []"), req("a", In, &[]));
        assert_eq!(one("a in [b]"), req("a", In, &["b"]));
        assert_eq!(one("a in[b,c]"), req("a", In, &["b", "c"]));
        assert_eq!(one("a==b"), req("a", Equals, &["b"]));
        assert_eq!(one("a!='b'"), req("a", NotEquals, &["b"]));
        // Sensu's loose list: commas optional
        assert_eq!(one("a in [b c,,d,]"), req("a", In, &["b", "c", "d"]));
        assert_eq!(one("a in [true]"), req("a", In, &["true"]));
        // bare numbers as values (Sensu wants them quoted)
        assert_eq!(one("a == 2"), req("a", Equals, &["2"]));
        assert_eq!(one("a in [0, 1]"), req("a", In, &["0", "1"]));
        assert_eq!(one("ip == 10.0.0.1"), req("ip", Equals, &["10.0.0.1"]));
        assert_eq!(one("a notin 7"), req("a", NotIn, &["7"]));
    }

    #[test]
    fn conjunctions() {
        let sel = parse("a == b && c != d&&e in [f]");
        let keys: Vec<&str> = sel.requirements().iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "c", "e"]);
        // Sensu accepts requirements without && between them
        assert_eq!(parse("a == b c == d").requirements().len(), 2);
        let joined = parse("a == b").and(parse("c == d && e == f"));
        assert_eq!(joined.requirements().len(), 3);
        assert_eq!(joined.requirements()[2].key, "e");
        assert!(parse("").is_empty());
        assert!(parse("   ").is_empty());
    }

    #[test]
    fn keys_include_list_references() {
        let sel = parse("linux in check.subscriptions && a in [b] && c == d && x notin y");
        let keys: Vec<&str> = sel.keys().collect();
        assert_eq!(
            keys,
            ["linux", "check.subscriptions", "a", "b", "c", "x", "y"]
        );
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let e = Selector::parse_param("labelSelector", "check.name = foo").unwrap_err();
        assert_eq!(
            e.to_string(),
            "labelSelector: at character 12: expected an operator (==, !=, in, notin, matches), found \"=\""
        );
        let cases: &[(&str, usize, &str, &str)] = &[
            ("a ==", 5, EXPECT_VALUE, "end of input"),
            ("a", 2, EXPECT_OP, "end of input"),
            ("a b", 3, EXPECT_OP, "\"b\""),
            ("&& a == b", 1, EXPECT_KEY, "\"&&\""),
            ("a == b &&", 10, EXPECT_KEY, "end of input"),
            ("a == b && && c == d", 11, EXPECT_KEY, "\"&&\""),
            ("a == b & c == d", 8, EXPECT_NEXT, "\"&\""),
            ("a == b ]", 8, EXPECT_NEXT, "\"]\""),
            ("a == -1", 6, EXPECT_VALUE, "\"-\""),
            ("1 == a", 1, EXPECT_KEY, "\"1\""),
            ("a == in", 6, EXPECT_VALUE, "\"in\""),
            ("a in b c", 9, EXPECT_OP, "end of input"),
            ("a in == b", 6, EXPECT_LIST, "\"==\""),
            ("a in [b", 8, EXPECT_ITEM, "end of input"),
            ("a in [b == c]", 9, EXPECT_ITEM, "\"==\""),
            ("a == 'open", 6, EXPECT_CLOSE, "end of input"),
            ("a == \"mixed'", 6, EXPECT_CLOSE, "end of input"),
            ("check. == x", 7, EXPECT_DOT, "\" \""),
            ("check.", 7, EXPECT_DOT, "end of input"),
            ("a.1 == x", 3, EXPECT_DOT, "\"1\""),
            ("true == x", 1, EXPECT_KEY, "\"true\""),
            ("é ! x", 3, EXPECT_OP, "\"!\""),
            ("ключ == значение && 🙂", 21, EXPECT_KEY, "\"🙂\""),
        ];
        for &(input, at, expected, found) in cases {
            let e = err(input);
            assert_eq!(
                (e.at, e.expected, e.found.as_str()),
                (at, expected, found),
                "{input:?}"
            );
            assert_eq!(e.param, "selector");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn long_or_control_found_stays_on_one_short_line() {
        let long = format!("a {}", "b".repeat(500));
        let e = err(&long);
        assert!(e.to_string().len() < 160, "{e}");
        let e = err("a \n\u{7}");
        assert_eq!(e.at, 4);
        assert!(!e.to_string().contains('\n'));
        assert!(!e.to_string().contains('\u{7}'));
    }

    #[test]
    fn odd_input_never_panics() {
        let samples = [
            "",
            " ",
            "'",
            "\"",
            "[",
            "]",
            ",",
            "=",
            "!",
            "&",
            "==",
            "!=",
            "&&",
            "a in [",
            "a in [,",
            "a == '",
            "\u{0}",
            "\u{feff}a == b",
            "a == b\u{0}",
            "🙂🙂",
            "a.b.c.",
            "a//b == c",
            "in in in",
            "a notin notin",
            "a matches",
            "'a' '",
            "a == b &&&& c == d",
            "\t\r\n",
            "a == b\n&& c == d",
            "a in ['x' 'y']",
            "__ == __",
            "a == b ,",
            "a [",
            "\u{10ffff}",
        ];
        for s in samples {
            let _ = Selector::parse(s);
        }
        // every prefix of a tricky selector, cut at each char boundary
        let tricky = "kéy in ['a b', \"c\"] && x != y && 'q' matches z";
        for (i, _) in tricky.char_indices() {
            let _ = Selector::parse(&tricky[..i]);
        }
        // arbitrary bytes, lossily decoded
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..16)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            if let Err(e) = Selector::parse(&s) {
                assert!(e.at >= 1 && e.at <= s.chars().count() + 1, "{s:?}: {e}");
            }
        }
    }

    #[test]
    fn semantics_table() {
        let f = set(&[
            ("check.name", "disk"),
            ("check.subscriptions", "linux,web"),
            ("check.handlers", ""),
            ("check.publish", "true"),
        ]);
        let cases: &[(&str, bool)] = &[
            ("check.name == disk", true),
            ("check.name == cpu", false),
            ("absent == disk", false),
            ("check.name != disk", false),
            ("check.name != cpu", true),
            ("absent != anything", true),
            ("check.name in [cpu, disk]", true),
            ("check.name in [cpu, mem]", false),
            ("check.name in []", false),
            ("check.name notin [cpu, disk]", false),
            ("check.name notin [cpu]", true),
            ("check.name notin []", true),
            ("absent in [x]", false),
            ("absent notin [x]", true),
            ("linux in check.subscriptions", true),
            ("windows in check.subscriptions", false),
            ("linux notin check.subscriptions", false),
            ("windows notin check.subscriptions", true),
            ("web in [check.subscriptions]", true),
            // not a field: compared like ==
            ("check.name in nosuchfield", false),
            ("check.name in disk", true),
            ("check.name notin disk", false),
            ("'' in check.handlers", true),
            ("check.name matches is", true),
            ("check.name matches isk", true),
            ("check.name matches cpu", false),
            ("check.name matches ''", true),
            ("absent matches x", false),
            ("check.publish == true", true),
            ("check.publish == TRUE", true),
            ("check.publish == false", false),
            ("check.name == disk && check.publish == true", true),
            ("check.name == disk && check.publish == false", false),
            ("", true),
        ];
        for &(s, want) in cases {
            assert_eq!(parse(s).matches(&f), want, "{s:?}");
        }
    }

    #[test]
    fn list_field_membership_trims_like_sensu() {
        let f = set(&[("tags", "[ a , b ]")]);
        assert!(parse("a in tags").matches(&f));
        assert!(parse("b in tags").matches(&f));
        assert!(!parse("c in tags").matches(&f));
    }

    fn check() -> Value {
        json!({
            "command": "check-disk",
            "subscriptions": ["linux", "web"],
            "handlers": ["slack"],
            "publish": true,
            "round_robin": false,
            "runtime_assets": [],
            "pipelines": [{"api_version": "core/v2", "type": "Pipeline", "name": "alerts"}],
            "metadata": {"name": "disk", "namespace": "prod", "labels": {"team": "ops"}}
        })
    }

    fn event() -> Value {
        json!({
            "timestamp": 1700000000,
            "metadata": {"namespace": "prod", "labels": {"src": "event", "shared": "event"}},
            "entity": {
                "entity_class": "agent",
                "subscriptions": ["linux", "entity:web-1"],
                "deregister": false,
                "metadata": {"name": "web-1", "namespace": "prod",
                             "labels": {"region": "eu", "shared": "entity"}}
            },
            "check": {
                "status": 2,
                "state": "failing",
                "last_ok": 1699999000,
                "handlers": ["slack", "pager"],
                "subscriptions": ["linux"],
                "publish": true,
                "silenced": ["linux:*"],
                "metadata": {"name": "disk", "namespace": "prod",
                             "labels": {"team": "ops", "shared": "check"}}
            }
        })
    }

    #[test]
    fn check_fields() {
        let f = fields("CheckConfig", &check());
        let want = set(&[
            ("check.name", "disk"),
            ("check.namespace", "prod"),
            ("check.handlers", "slack"),
            ("check.publish", "true"),
            ("check.round_robin", "false"),
            ("check.runtime_assets", ""),
            ("check.subscriptions", "linux,web"),
            ("check.pipelines", "core/v2.Pipeline(Name=alerts)"),
            ("check.labels.team", "ops"),
        ]);
        assert_eq!(f, want);
        assert_eq!(fields("check_config", &check()), want);
    }

    #[test]
    fn entity_fields() {
        let e = event()["entity"].clone();
        let f = fields("Entity", &e);
        assert_eq!(f["entity.name"], "web-1");
        assert_eq!(f["entity.namespace"], "prod");
        assert_eq!(f["entity.entity_class"], "agent");
        assert_eq!(f["entity.subscriptions"], "linux,entity:web-1");
        assert_eq!(f["entity.deregister"], "false");
        assert_eq!(f["entity.user"], "");
        assert_eq!(f["entity.labels.region"], "eu");
        assert_eq!(f.len(), 8);
    }

    #[test]
    fn event_fields() {
        let f = fields("Event", &event());
        let pick = |k: &str| f.get(k).map(String::as_str);
        assert_eq!(pick("event.name"), Some(""));
        assert_eq!(pick("event.namespace"), Some("prod"));
        assert_eq!(pick("event.timestamp"), Some("1700000000"));
        assert_eq!(pick("event.is_silenced"), Some("true"));
        assert_eq!(pick("event.check.is_silenced"), Some("true"));
        assert_eq!(pick("event.check.name"), Some("disk"));
        assert_eq!(pick("event.check.status"), Some("2"));
        assert_eq!(pick("event.check.state"), Some("failing"));
        assert_eq!(pick("event.check.last_ok"), Some("1699999000"));
        assert_eq!(pick("event.check.handlers"), Some("slack,pager"));
        assert_eq!(pick("event.check.publish"), Some("true"));
        assert_eq!(pick("event.check.round_robin"), Some("false"));
        assert_eq!(pick("event.check.subscriptions"), Some("linux"));
        assert_eq!(pick("event.entity.name"), Some("web-1"));
        assert_eq!(pick("event.entity.entity_class"), Some("agent"));
        assert_eq!(pick("event.entity.deregister"), Some("false"));
        // merged labels: check over entity over event
        assert_eq!(pick("event.labels.shared"), Some("check"));
        assert_eq!(pick("event.labels.src"), Some("event"));
        assert_eq!(pick("event.labels.region"), Some("eu"));
        assert_eq!(pick("event.labels.team"), Some("ops"));
        assert_eq!(pick("event.entity.labels.shared"), Some("entity"));
        assert_eq!(pick("event.check.labels.shared"), Some("check"));
        // the on-demand lookup agrees with the full map
        for (k, v) in &f {
            assert_eq!(
                field("Event", &event(), k).as_deref(),
                Some(v.as_str()),
                "{k}"
            );
        }
        let quiet = json!({"check": {"status": 0, "silenced": []}, "entity": {}});
        assert_eq!(fields("Event", &quiet)["event.is_silenced"], "false");
        assert_eq!(fields("Event", &quiet)["event.check.status"], "0");
    }

    #[test]
    fn silenced_users_rolebindings_and_the_rest() {
        let s = json!({"subscription": "linux", "creator": "admin", "expire_on_resolve": true,
                       "reason": "maint", "metadata": {"namespace": "prod", "labels": {"x": "1"}}});
        let f = fields("Silenced", &s);
        assert_eq!(f["silenced.name"], "linux:*");
        assert_eq!(f["silenced.check"], "");
        assert_eq!(f["silenced.subscription"], "linux");
        assert_eq!(f["silenced.creator"], "admin");
        assert_eq!(f["silenced.expire_on_resolve"], "true");
        assert_eq!(f["silenced.reason"], "maint");
        assert_eq!(f["silenced.labels.x"], "1");

        let u = json!({"username": "ann", "groups": ["ops", "dev"], "disabled": false,
                       "metadata": {"labels": {"x": "1"}}});
        assert_eq!(
            fields("User", &u),
            set(&[
                ("user.username", "ann"),
                ("user.groups", "ops,dev"),
                ("user.disabled", "false")
            ])
        );
        assert!(labels("User", &u).is_empty());

        let rb = json!({"role_ref": {"type": "Role", "name": "reader"},
                        "subjects": [{"type": "User", "name": "ann"}],
                        "metadata": {"name": "ann-reads", "namespace": "prod"}});
        assert_eq!(
            fields("RoleBinding", &rb),
            set(&[
                ("rolebinding.name", "ann-reads"),
                ("rolebinding.namespace", "prod"),
                ("rolebinding.role_ref.name", "reader"),
                ("rolebinding.role_ref.type", "Role"),
            ])
        );
        let crb = fields("ClusterRoleBinding", &rb);
        assert_eq!(crb["clusterrolebinding.role_ref.type"], "Role");
        assert!(!crb.contains_key("clusterrolebinding.namespace"));

        assert_eq!(
            fields("Namespace", &json!({"name": "prod"})),
            set(&[("namespace.name", "prod")])
        );
        let h = json!({"type": "pipe", "filters": ["a", "b"], "mutator": "m",
                       "metadata": {"name": "h", "namespace": "n"}});
        assert_eq!(fields("Handler", &h)["handler.filters"], "a,b");
        assert_eq!(fields("Handler", &h)["handler.type"], "pipe");
        assert_eq!(fields("Handler", &h)["handler.handlers"], "");
        let k = json!({"username": "ann", "metadata": {"name": "k1"}});
        assert_eq!(
            fields("APIKey", &k),
            set(&[("api_key.name", "k1"), ("api_key.username", "ann")])
        );
        assert_eq!(
            fields("EventFilter", &json!({"action": "allow"}))["filter.action"],
            "allow"
        );
        assert!(fields("NoSuchKind", &check()).is_empty());
    }

    #[test]
    fn every_listed_name_resolves() {
        for &(name, kind) in KINDS {
            let f = fields(name, &json!({}));
            assert_eq!(f.len(), kind.names().len(), "{name}");
            for n in kind.names() {
                assert!(
                    f.contains_key(&format!("{}.{n}", kind.prefix())),
                    "{name} {n}"
                );
            }
        }
    }

    #[test]
    fn event_labels_merge_entity_and_check() {
        let e = event();
        assert_eq!(
            labels("Event", &e),
            set(&[("src", "event"), ("shared", "event")])
        );
        assert_eq!(
            event_labels(&e),
            set(&[("region", "eu"), ("team", "ops"), ("shared", "check")])
        );
        let sel = |l: &str| Selection::parse(&[l], &[]).unwrap();
        // own labels match
        assert!(sel("src == event").admits("Event", &e));
        // only the merged entity+check labels match
        assert!(sel("region == eu && team == ops").admits("Event", &e));
        assert!(sel("shared == check").admits("Event", &e));
        // entity's value is hidden by the check's in the merge, and not an own label
        assert!(!sel("shared == entity").admits("Event", &e));
        // never mixes own and merged sets within one test
        assert!(!sel("src == event && region == eu").admits("Event", &e));
        assert!(!sel("region == us").admits("Event", &e));
        // other kinds do not merge
        assert!(!sel("region == eu").admits("Entity", &json!({"metadata": {}})));
        assert!(sel("region == eu").admits("Entity", &e["entity"]));
    }

    #[test]
    fn selection_parse_and_admits() {
        let c = check();
        let s =
            Selection::parse(&[], &["check.name == disk", "linux in check.subscriptions"]).unwrap();
        assert!(s.label.is_none());
        assert_eq!(s.field.as_ref().map(|f| f.requirements().len()), Some(2));
        assert!(s.admits("CheckConfig", &c));
        let s = Selection::parse(
            &[],
            &["check.name == disk", "windows in check.subscriptions"],
        )
        .unwrap();
        assert!(!s.admits("CheckConfig", &c));
        let s = Selection::parse(&["team == ops"], &["check.labels.team == ops"]).unwrap();
        assert!(s.admits("CheckConfig", &c));
        let s = Selection::parse(&["team != ops"], &[]).unwrap();
        assert!(!s.admits("CheckConfig", &c));
        let s = Selection::parse(&["nolabel != x"], &["check.nofield != y"]).unwrap();
        assert!(s.admits("CheckConfig", &c));
        let s = Selection::parse(&["", "  "], &[]).unwrap();
        assert!(s.is_empty());
        assert!(s.admits("CheckConfig", &c));
        assert!(!Selection::parse(&["a == b"], &[]).unwrap().is_empty());

        let e = Selection::parse(&["a == b"], &["x == y", "x = y"]).unwrap_err();
        assert_eq!(e.param, "fieldSelector");
        assert!(
            e.to_string().starts_with("fieldSelector: at character 3: "),
            "{e}"
        );
        let e = Selection::parse(&["a ="], &[]).unwrap_err();
        assert!(e.to_string().starts_with("labelSelector: "), "{e}");

        let ev = event();
        let s = Selection::parse(
            &[],
            &["event.check.status == 2 && event.entity.name == 'web-1'"],
        )
        .unwrap();
        assert!(s.admits("Event", &ev));
        let s = Selection::parse(&[], &["event.check.status != 2"]).unwrap();
        assert!(!s.admits("Event", &ev));
        let s = Selection::parse(&[], &["event.check.name == disk"]).unwrap();
        assert!(
            !s.admits("CheckConfig", &c),
            "an event field on a check is absent"
        );
        assert!(!s.admits("Nope", &c));
    }

    #[test]
    fn odd_resources_do_not_panic() {
        let s = Selection::parse(
            &["a == b"],
            &["event.check.status == 1 && event.labels.x != y && linux in event.check.subscriptions"],
        )
        .unwrap();
        let docs = [
            json!(null),
            json!([]),
            json!("x"),
            json!({"check": null, "entity": 7, "metadata": {"labels": null}}),
            json!({"check": {"status": -1.5, "subscriptions": [1, null, {"a": 1}], "metadata": []}}),
            json!({"check": {"status": 18446744073709551615u64}}),
            json!({"check": {"status": 1e300}}),
        ];
        for kind in KINDS.iter().map(|(k, _)| *k).chain(["", "Event"]) {
            for d in &docs {
                let _ = s.admits(kind, d);
                let _ = fields(kind, d);
                let _ = labels(kind, d);
                let _ = event_labels(d);
            }
        }
        assert_eq!(
            fields("Event", &docs[5])["event.check.status"],
            "18446744073709551615"
        );
        assert_eq!(fields("Event", &docs[4])["event.check.status"], "-1");
    }
}

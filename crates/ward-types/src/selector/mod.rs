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

mod fields;
mod parse;
#[cfg(test)]
mod tests;

pub use fields::{event_labels, field, fields, labels};
use fields::{field_of, kind_of, label_text, own_labels, Kind};
use parse::{Lexer, Parser};

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

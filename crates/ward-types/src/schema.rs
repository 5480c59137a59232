//! Every kind's fields and their types, sub-shapes included, as Sensu Go's core/v2
//! protobuf messages (`*.proto` json tags) give them; and the check that a spec's values
//! have those types, naming the nested field that does not (`spec.rules[0].verbs`).

use crate::{field_error, FieldError, Kind};
use serde_json::{Map, Value};

/// A field's type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    Str,
    Bool,
    /// Go's `uint32`.
    U32,
    /// A whole number ≥ 0 (Ward's own settings).
    Uint,
    /// Go's `int64`.
    Int,
    /// Go's `int32`.
    I32,
    /// Go's `float64`.
    Num,
    StrList,
    /// Any mapping (shapes Ward keeps as given).
    Map,
    List(&'static Ty),
    /// A mapping of any keys whose values are of one type.
    MapOf(&'static Ty),
    /// A mapping with these fields only.
    Obj(&'static [Field]),
}

pub(crate) type Field = (&'static str, Ty);

use Ty::*;

const STR_MAP: Ty = MapOf(&Str);
const SECRET: Ty = Obj(&[("name", Str), ("secret", Str)]);
const SECRETS: Ty = List(&SECRET);
/// core/v2 `ResourceReference`.
pub(crate) const REF: Ty = Obj(&[("name", Str), ("type", Str), ("api_version", Str)]);
const REFS: Ty = List(&REF);
const TAG: Ty = Obj(&[("name", Str), ("value", Str)]);
const TAGS: Ty = List(&TAG);
const TIME_RANGE: Ty = Obj(&[("begin", Str), ("end", Str)]);
const TIME_RANGES: Ty = List(&TIME_RANGE);
pub(crate) const DAYS: [&str; 8] = [
    "all",
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
/// core/v2 `TimeWindowWhen`: `{days: {all|sunday…saturday: [{begin, end}]}}`.
const WHEN: Ty = Obj(&[(
    "days",
    Obj(&[
        ("all", TIME_RANGES),
        ("sunday", TIME_RANGES),
        ("monday", TIME_RANGES),
        ("tuesday", TIME_RANGES),
        ("wednesday", TIME_RANGES),
        ("thursday", TIME_RANGES),
        ("friday", TIME_RANGES),
        ("saturday", TIME_RANGES),
    ]),
)]);
const SUBDUES: Ty = List(&Obj(&[("begin", Str), ("end", Str), ("repeat", StrList)]));
/// core/v2 `HookList`, as JSON: `[{"<type>": ["hook", …]}, …]`.
const CHECK_HOOKS: Ty = List(&MapOf(&StrList));
const PROXY_REQUESTS: Ty = Obj(&[
    ("entity_attributes", StrList),
    ("splay", Bool),
    ("splay_coverage", U32),
]);
const THRESHOLDS: Ty = List(&Obj(&[
    ("name", Str),
    ("tags", TAGS),
    (
        "thresholds",
        List(&Obj(&[("min", Str), ("max", Str), ("status", U32)])),
    ),
    ("null_status", U32),
]));
const RULES: Ty = List(&Obj(&[
    ("verbs", StrList),
    ("resources", StrList),
    ("resource_names", StrList),
]));
const SUBJECTS: Ty = List(&Obj(&[("type", Str), ("name", Str)]));
const ROLE_REF: Ty = Obj(&[("type", Str), ("name", Str)]);
const WORKFLOWS: Ty = List(&Obj(&[
    ("name", Str),
    ("filters", REFS),
    ("mutator", REF),
    ("handler", REF),
]));
const BUILDS: Ty = List(&Obj(&[
    ("url", Str),
    ("sha512", Str),
    ("filters", StrList),
    ("headers", STR_MAP),
]));
const METRICS: Ty = Obj(&[
    ("handlers", StrList),
    (
        "points",
        List(&Obj(&[
            ("name", Str),
            ("value", Num),
            ("timestamp", Int),
            ("tags", TAGS),
        ])),
    ),
]);

/// The spec fields of a kind (the flat form's fields, `metadata` aside).
pub(crate) fn schema(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Namespace => &[("name", Str)],
        Kind::User => &[
            ("username", Str),
            ("groups", StrList),
            ("disabled", Bool),
            ("password", Str),
            ("password_hash", Str),
        ],
        Kind::CheckConfig => &[
            ("command", Str),
            ("subscriptions", StrList),
            ("publish", Bool),
            ("interval", U32),
            ("cron", Str),
            ("timeout", U32),
            ("ttl", Int),
            ("handlers", StrList),
            ("round_robin", Bool),
            ("stdin", Bool),
            ("high_flap_threshold", U32),
            ("low_flap_threshold", U32),
            ("runtime_assets", StrList),
            ("proxy_entity_name", Str),
            ("proxy_requests", PROXY_REQUESTS),
            ("output_metric_format", Str),
            ("output_metric_handlers", StrList),
            ("output_metric_tags", TAGS),
            ("output_metric_thresholds", THRESHOLDS),
            ("env_vars", StrList),
            ("check_hooks", CHECK_HOOKS),
            ("subdue", WHEN),
            ("subdues", SUBDUES),
            ("secrets", SECRETS),
            ("pipelines", REFS),
            ("fallback_pipeline", REF),
            ("scheduler", Str),
            ("max_output_size", Int),
            ("discard_output", Bool),
            ("ttl_status", I32),
            ("asset_status", StrList),
        ],
        Kind::Handler => &[
            ("type", Str),
            ("command", Str),
            ("handlers", StrList),
            ("timeout", U32),
            ("filters", StrList),
            ("mutator", Str),
            ("socket", Obj(&[("host", Str), ("port", U32)])),
            ("env_vars", StrList),
            ("runtime_assets", StrList),
            ("secrets", SECRETS),
        ],
        Kind::Entity => &[
            ("entity_class", Str),
            ("subscriptions", StrList),
            ("system", Map),
            ("last_seen", Int),
            ("deregister", Bool),
            ("deregistration", Obj(&[("handler", Str)])),
            ("user", Str),
            ("redact", StrList),
            ("sensu_agent_version", Str),
            ("keepalive_handlers", StrList),
        ],
        Kind::Event => &[
            ("entity", Map),
            ("check", Map),
            ("timestamp", Int),
            ("id", Str),
            ("metrics", METRICS),
            ("sequence", Int),
            ("pipelines", REFS),
        ],
        Kind::PostgresConfig => &[
            ("dsn", Str),
            ("pool_size", Uint),
            ("max_conn_lifetime", Str),
            ("max_idle_conns", Uint),
            ("batch_buffer", Uint),
            ("batch_size", Uint),
            ("batch_workers", Uint),
            ("enable_round_robin", Bool),
            ("strict", Bool),
        ],
        Kind::EventFilter => &[
            ("action", Str),
            ("expressions", StrList),
            ("when", WHEN),
            ("runtime_assets", StrList),
        ],
        Kind::Mutator => &[
            ("command", Str),
            ("timeout", U32),
            ("env_vars", StrList),
            ("runtime_assets", StrList),
            ("secrets", SECRETS),
            ("type", Str),
            ("eval", Str),
        ],
        Kind::Pipeline => &[("workflows", WORKFLOWS), ("continue_on_error", Bool)],
        Kind::Secret => &[("id", Str), ("provider", Str)],
        Kind::TCPStreamHandler => &[
            ("address", Str),
            ("tls_ca_cert_file", Str),
            ("tls_cert_file", Str),
            ("tls_key_file", Str),
            ("max_connections", U32),
            ("min_reconnect_delay", Str),
            ("max_reconnect_delay", Str),
        ],
        Kind::Silenced => &[
            ("expire", Int),
            ("expire_on_resolve", Bool),
            ("creator", Str),
            ("check", Str),
            ("reason", Str),
            ("subscription", Str),
            ("begin", Int),
            ("expire_at", Int),
        ],
        Kind::HookConfig => &[
            ("command", Str),
            ("timeout", U32),
            ("stdin", Bool),
            ("runtime_assets", StrList),
        ],
        Kind::Asset => &[
            ("url", Str),
            ("sha512", Str),
            ("filters", StrList),
            ("builds", BUILDS),
            ("headers", STR_MAP),
        ],
        Kind::Role | Kind::ClusterRole => &[("rules", RULES)],
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            &[("subjects", SUBJECTS), ("role_ref", ROLE_REF)]
        }
        Kind::APIKey => &[("username", Str), ("created_at", Int), ("hash", Str)],
    }
}

/// A JSON value's kind in the words Ward's refusals use (`a string`, `a mapping`, …).
pub fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn want(t: Ty) -> &'static str {
    match t {
        Str => "a string",
        Bool => "true or false",
        U32 => "a whole number from 0 to 4294967295",
        Uint => "a whole number ≥ 0",
        Int => "a whole number",
        I32 => "a whole number from -2147483648 to 2147483647",
        Num => "a number",
        StrList => "a list of strings",
        Map | MapOf(_) | Obj(_) => "a mapping",
        List(_) => "a list",
    }
}

fn known(fields: &[Field]) -> String {
    if fields.is_empty() {
        return "(none)".into();
    }
    fields
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `prefix` + `key`: `spec.` + `rules` → `spec.rules`; `""` + `rules` → `rules`.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('.') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks a spec's fields against the kind's schema: unknown fields are refused with the
/// list of known ones, and every value (nested ones too) must have its field's type.
/// `null` is as good as absent anywhere, as Go reads it. `prefix` is `spec.` in documents
/// and empty in the flat form.
pub(crate) fn check_types(
    kind: Kind,
    prefix: &str,
    spec: &Map<String, Value>,
) -> Result<(), FieldError> {
    check_obj(kind, &At::Root(prefix), spec, schema(kind))
}

/// Where a value is, built on the stack as the check descends and written out only for
/// an error (a list of 1,000 resources is checked without one string per field).
#[derive(Clone, Copy)]
enum At<'a> {
    Root(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self) -> String {
        match self {
            At::Root(p) => p.to_string(),
            At::Key(parent, k) => join(&parent.render(), k),
            At::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn check_obj(
    kind: Kind,
    path: &At,
    m: &Map<String, Value>,
    fields: &[Field],
) -> Result<(), FieldError> {
    for (k, v) in m {
        let at = At::Key(path, k);
        match fields.iter().find(|(name, _)| name == k) {
            Some((_, t)) => check_value(kind, &at, v, *t)?,
            None => {
                return Err(field_error(
                    at.render(),
                    format!(
                        "unknown field in a {}; known fields: {}",
                        kind.type_name(),
                        known(fields)
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn check_value(kind: Kind, at: &At, v: &Value, t: Ty) -> Result<(), FieldError> {
    if v.is_null() {
        return Ok(());
    }
    let ok = match t {
        Str => v.is_string(),
        Bool => v.is_boolean(),
        U32 => v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
        Uint => v.as_u64().is_some(),
        Int => v.as_i64().is_some(),
        I32 => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Num => v.is_number(),
        Map => v.is_object(),
        StrList | List(_) => match v.as_array() {
            Some(items) => {
                let item = match t {
                    List(i) => *i,
                    _ => Str,
                };
                for (i, x) in items.iter().enumerate() {
                    let at = At::Index(at, i);
                    if x.is_null() {
                        return Err(field_error(
                            at.render(),
                            format!("must be {}, not null", want(item)),
                        ));
                    }
                    check_value(kind, &at, x, item)?;
                }
                true
            }
            None => false,
        },
        MapOf(item) => match v.as_object() {
            Some(m) => {
                for (k, x) in m {
                    check_value(kind, &At::Key(at, k), x, *item)?;
                }
                true
            }
            None => false,
        },
        Obj(fields) => match v.as_object() {
            Some(m) => {
                check_obj(kind, at, m, fields)?;
                true
            }
            None => false,
        },
    };
    if ok {
        return Ok(());
    }
    Err(field_error(
        at.render(),
        format!(
            "must be {} in a {}, not {}",
            want(t),
            kind.type_name(),
            type_of(v)
        ),
    ))
}

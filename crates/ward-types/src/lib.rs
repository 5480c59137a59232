//! Ward's resources: documents of the shape `{type, api_version, metadata, spec}`, as the
//! Sensu guides write them, parsed once at the edge into a typed `Resource` whose `spec`
//! has been checked against its kind.
//!
//! ```
//! let docs = ward_types::parse_stream("postgresconfig.yml", "type: PostgresConfig\napi_version: store/v1\nmetadata:\n  name: sensu_postgres\nspec:\n  dsn: \"postgresql://postgres.example.com:5432/sensu_events\"\n  pool_size: 20\n  strict: true\n").unwrap();
//! assert_eq!(docs[0].kind, ward_types::Kind::PostgresConfig);
//! ```

#![forbid(unsafe_code)]

pub mod agent;
pub mod event;
pub mod raw;
pub mod selector;
pub mod settings;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use ward_io::unix_now;

/// A field that is wrong, and why: becomes a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The kinds of resource Ward knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    User,
    Entity,
    CheckConfig,
    Handler,
    Event,
    PostgresConfig,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Namespace,
        Kind::User,
        Kind::Entity,
        Kind::CheckConfig,
        Kind::Handler,
        Kind::Event,
        Kind::PostgresConfig,
    ];

    /// `type` in documents.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::User => "User",
            Kind::Entity => "Entity",
            Kind::CheckConfig => "CheckConfig",
            Kind::Handler => "Handler",
            Kind::Event => "Event",
            Kind::PostgresConfig => "PostgresConfig",
        }
    }

    /// `api_version` in documents.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::PostgresConfig => "store/v1",
            _ => "core/v2",
        }
    }

    /// The collection's path segment in the API.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::User => "users",
            Kind::Entity => "entities",
            Kind::CheckConfig => "checks",
            Kind::Handler => "handlers",
            Kind::Event => "events",
            Kind::PostgresConfig => "provider",
        }
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::Entity | Kind::CheckConfig | Kind::Handler | Kind::Event
        )
    }

    /// Finds a kind from `type` (and `api_version` when given); also accepts
    /// `api_version.Type` (`store/v1.PostgresConfig`, as `sensuctl dump` names types).
    pub fn parse(type_name: &str, api_version: Option<&str>) -> Result<Kind, FieldError> {
        let (api, name) = match type_name.rsplit_once('.') {
            Some((a, n)) if a.contains('/') => (Some(a), n),
            _ => (api_version, type_name),
        };
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.type_name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                field_error(
                    "type",
                    format!(
                        "unknown type {name:?}; known types: {}",
                        Kind::ALL.map(|k| k.type_name()).join(", ")
                    ),
                )
            })?;
        if let Some(a) = api.filter(|a| !a.is_empty()) {
            if a != kind.api_version() {
                return Err(field_error(
                    "api_version",
                    format!(
                        "{a:?} is not the api_version of {}; use {:?}",
                        kind.type_name(),
                        kind.api_version()
                    ),
                ));
            }
        }
        Ok(kind)
    }

    /// The kind a plural path segment names.
    pub fn from_plural(p: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == p)
    }
}

/// `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// A document as it travels: `{type, api_version, metadata, spec}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub api_version: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Value,
}

/// A validated resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: Kind,
    pub metadata: Metadata,
    /// The spec as given (key order kept, so a dump reads like the file that created it),
    /// after validation against the kind.
    pub spec: Map<String, Value>,
}

impl Resource {
    /// The document form, for the API and for dumps.
    pub fn to_document(&self) -> Document {
        Document {
            type_name: self.kind.type_name().into(),
            api_version: self.kind.api_version().into(),
            metadata: self.metadata.clone(),
            spec: Value::Object(self.spec.clone()),
        }
    }

    /// Validates a document: kind, names, and the spec's fields and types.
    pub fn from_document(doc: Document) -> Result<Resource, FieldError> {
        let kind = Kind::parse(&doc.type_name, Some(&doc.api_version))?;
        check_name("metadata.name", &doc.metadata.name)?;
        let mut metadata = doc.metadata;
        if kind.namespaced() {
            let ns = metadata.namespace.get_or_insert_with(|| "default".into());
            check_name("metadata.namespace", ns)?;
        } else if metadata.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
            return Err(field_error(
                "metadata.namespace",
                format!("{} is not namespaced; remove it", kind.type_name()),
            ));
        } else {
            metadata.namespace = None;
        }
        for (k, _) in metadata.labels.iter().chain(metadata.annotations.iter()) {
            if k.is_empty() || k.len() > 253 {
                return Err(field_error("metadata.labels", format!("bad key {k:?}")));
            }
        }
        let spec = match doc.spec {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(field_error(
                    "spec",
                    format!("must be a mapping, not {}", type_of(&other)),
                ))
            }
        };
        validate_spec(kind, &spec)?;
        Ok(Resource {
            kind,
            metadata,
            spec,
        })
    }
}

/// Names: 1–63 characters of letters, digits, `_`, `-`, `.`, `:` (Sensu's rule), not `.`/`..`.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(field_error(field, "is required"));
    }
    if name.len() > 63
        || name == "."
        || name == ".."
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
    {
        return Err(field_error(field, format!("{name:?} is not a valid name: use up to 63 letters, digits, '_', '-', '.', ':' or '@'")));
    }
    Ok(())
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[derive(Clone, Copy)]
enum FieldType {
    Str,
    Bool,
    Uint,
    StrList,
    Map,
    Any,
}

fn check_field(kind: Kind, key: &str, v: &Value, t: FieldType) -> Result<(), FieldError> {
    let ok = match t {
        FieldType::Str => v.is_string(),
        FieldType::Bool => v.is_boolean(),
        FieldType::Uint => v.as_u64().is_some(),
        FieldType::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        FieldType::Map => v.is_object(),
        FieldType::Any => true,
    };
    if ok || v.is_null() {
        return Ok(());
    }
    let want = match t {
        FieldType::Str => "a string",
        FieldType::Bool => "true or false",
        FieldType::Uint => "a whole number ≥ 0",
        FieldType::StrList => "a list of strings",
        FieldType::Map => "a mapping",
        FieldType::Any => "any value",
    };
    Err(field_error(
        format!("spec.{key}"),
        format!(
            "must be {want} in a {}, not {}",
            kind.type_name(),
            type_of(v)
        ),
    ))
}

fn schema(kind: Kind) -> &'static [(&'static str, FieldType)] {
    use FieldType::*;
    match kind {
        Kind::Namespace => &[],
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
            ("interval", Uint),
            ("cron", Str),
            ("timeout", Uint),
            ("ttl", Uint),
            ("handlers", StrList),
            ("round_robin", Bool),
            ("stdin", Bool),
            ("high_flap_threshold", Uint),
            ("low_flap_threshold", Uint),
            ("runtime_assets", StrList),
            ("proxy_entity_name", Str),
            ("output_metric_format", Str),
            ("output_metric_handlers", StrList),
            ("env_vars", StrList),
            ("check_hooks", Any),
            ("subdue", Any),
            ("secrets", Any),
            ("pipelines", Any),
            ("scheduler", Str),
            ("max_output_size", Uint),
            ("discard_output", Bool),
        ],
        Kind::Handler => &[
            ("type", Str),
            ("command", Str),
            ("handlers", StrList),
            ("timeout", Uint),
            ("filters", StrList),
            ("mutator", Str),
            ("socket", Map),
            ("env_vars", StrList),
            ("runtime_assets", StrList),
            ("secrets", Any),
        ],
        Kind::Entity => &[
            ("entity_class", Str),
            ("subscriptions", StrList),
            ("system", Map),
            ("last_seen", Uint),
            ("deregister", Bool),
            ("deregistration", Map),
            ("user", Str),
            ("redact", StrList),
            ("sensu_agent_version", Str),
        ],
        Kind::Event => &[
            ("entity", Map),
            ("check", Map),
            ("timestamp", Uint),
            ("id", Str),
            ("metrics", Any),
            ("sequence", Uint),
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
    }
}

fn validate_spec(kind: Kind, spec: &Map<String, Value>) -> Result<(), FieldError> {
    let fields = schema(kind);
    for (k, v) in spec {
        match fields.iter().find(|(name, _)| name == k) {
            Some((_, t)) => check_field(kind, k, v, *t)?,
            None => {
                return Err(field_error(
                    format!("spec.{k}"),
                    format!(
                        "unknown field in a {}; known fields: {}",
                        kind.type_name(),
                        if fields.is_empty() {
                            "(none)".to_string()
                        } else {
                            fields
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ))
            }
        }
    }
    let required: &[&str] = match kind {
        Kind::CheckConfig => &["command"],
        Kind::Handler => &["type"],
        Kind::PostgresConfig => &["dsn"],
        _ => &[],
    };
    for r in required {
        if spec.get(*r).is_none_or(Value::is_null) {
            return Err(field_error(
                format!("spec.{r}"),
                format!("is required in a {}", kind.type_name()),
            ));
        }
    }
    if kind == Kind::Handler {
        if let Some(t) = spec.get("type").and_then(Value::as_str) {
            if !["pipe", "tcp", "udp", "set"].contains(&t) {
                return Err(field_error(
                    "spec.type",
                    format!("{t:?} is not a handler type; use pipe, tcp, udp or set"),
                ));
            }
        }
    }
    if kind == Kind::PostgresConfig {
        if let Some(d) = spec.get("dsn").and_then(Value::as_str) {
            if d.trim().is_empty() {
                return Err(field_error("spec.dsn", "is empty"));
            }
        }
    }
    Ok(())
}

/// An error in a stream of documents: which document, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: document {index}: {reason}")]
pub struct StreamError {
    pub source_name: String,
    pub index: usize,
    pub reason: String,
}

/// Parses a YAML stream (documents separated by `---`) or a JSON stream (concatenated
/// objects), as `sensuctl create -f` reads them, and validates every document. Nothing is
/// returned unless every document is valid.
pub fn parse_stream(source_name: &str, text: &str) -> Result<Vec<Resource>, StreamError> {
    let err = |index: usize, reason: String| StreamError {
        source_name: source_name.to_string(),
        index,
        reason,
    };
    let trimmed = text.trim_start();
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for (i, v) in serde_json::Deserializer::from_str(trimmed)
            .into_iter::<Value>()
            .enumerate()
        {
            match v.map_err(|e| err(i + 1, format!("malformed JSON: {e}")))? {
                Value::Array(items) => out.extend(items),
                other => out.push(other),
            }
        }
        out
    } else {
        serde_saphyr::from_multiple::<Value>(text)
            .map_err(|e| {
                err(
                    1,
                    format!(
                        "malformed YAML: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                )
            })?
            .into_iter()
            .filter(|v| !v.is_null())
            .collect()
    };
    if values.is_empty() {
        return Err(err(0, "no documents found".into()));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let doc: Document = serde_json::from_value(v).map_err(|e| err(i + 1, e.to_string()))?;
            Resource::from_document(doc).map_err(|e| err(i + 1, e.to_string()))
        })
        .collect()
}

/// One document as YAML.
pub fn to_yaml(doc: &Document) -> String {
    serde_saphyr::to_string(doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE_PG: &str = "type: PostgresConfig\napi_version: store/v1\nmetadata:\n  name: sensu_postgres\nspec:\n  dsn: \"postgresql://sensu:mypass@postgres.example.com:5432/sensu_events\"\n  pool_size: 20\n  strict: false\n";
    const GUIDE_CHECK: &str = "---\ntype: CheckConfig\napi_version: core/v2\nmetadata:\n  name: expired_certs\nspec:\n  command: openssl x509 -noout -enddate -in <cert-name>.pem\n  subscriptions:\n  - system\n  publish: true\n";

    #[test]
    fn the_guides_documents_parse_verbatim() {
        let pg = parse_stream("pg.yml", GUIDE_PG).unwrap();
        assert_eq!(pg[0].kind, Kind::PostgresConfig);
        assert_eq!(pg[0].spec["pool_size"], 20);
        let check = parse_stream("check.yml", GUIDE_CHECK).unwrap();
        assert_eq!(check[0].kind, Kind::CheckConfig);
        assert_eq!(check[0].metadata.namespace.as_deref(), Some("default"));
        let json = r#"{"type":"CheckConfig","api_version":"core/v2","metadata":{"name":"expired_certs"},"spec":{"command":"openssl x509 -noout -enddate -in <cert-name>.pem","subscriptions":["system"],"publish":true}}"#;
        assert_eq!(parse_stream("c.json", json).unwrap()[0].spec, check[0].spec);
        let both = format!("{GUIDE_PG}---\n{}", GUIDE_CHECK.trim_start_matches("---\n"));
        assert_eq!(parse_stream("both.yml", &both).unwrap().len(), 2);
    }

    #[test]
    fn bad_documents_name_the_field() {
        let cases = [
            ("type: Nope\nmetadata: {name: x}\n", "type: unknown type \"Nope\""),
            ("type: CheckConfig\napi_version: core/v2\nmetadata: {name: x}\nspec: {command: c, interval: \"ten\"}\n", "spec.interval: must be a whole number"),
            ("type: CheckConfig\nmetadata: {name: x}\nspec: {command: c, intervall: 10}\n", "spec.intervall: unknown field"),
            ("type: CheckConfig\nmetadata: {name: x}\nspec: {publish: true}\n", "spec.command: is required"),
            ("type: CheckConfig\nmetadata: {name: \"bad name\"}\nspec: {command: c}\n", "metadata.name"),
            ("type: PostgresConfig\napi_version: core/v2\nmetadata: {name: p}\nspec: {dsn: x}\n", "api_version"),
            ("type: PostgresConfig\nmetadata: {name: p, namespace: default}\nspec: {dsn: x}\n", "not namespaced"),
            ("type: Handler\nmetadata: {name: h}\nspec: {type: email}\n", "not a handler type"),
            ("type: CheckConfig\nmetadata: {name: x}\nspec: {command: c}\nextra: 1\n", "unknown field `extra`"),
            ("type: CheckConfig\nmetadata: [\n", "malformed YAML"),
        ];
        for (doc, needle) in cases {
            let e = parse_stream("f.yml", doc).unwrap_err().to_string();
            assert!(e.contains(needle), "{doc:?}: {e}");
        }
    }

    #[test]
    fn types_parse_in_dump_form() {
        assert_eq!(
            Kind::parse("store/v1.PostgresConfig", None).unwrap(),
            Kind::PostgresConfig
        );
        assert_eq!(
            Kind::parse("core/v2.CheckConfig", None).unwrap(),
            Kind::CheckConfig
        );
        assert!(Kind::parse("core/v2.PostgresConfig", None).is_err());
    }
}

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
mod kind;
pub mod metrics;
pub mod raw;
mod resource;
mod rules;
mod rules_check;
mod schema;
pub use schema::type_of;
pub mod selector;
pub mod settings;
pub mod silence;
pub mod subdue;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_kinds;
pub mod tokens;
pub mod when;

pub use kind::Kind;
pub use resource::{Document, Metadata, Resource};
pub use rules::backend_own_variable;
pub use rules_check::split_cron_zone;
use serde_json::Value;

pub use ward_io::unix_now;

/// A field that is wrong, and why: becomes a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

pub(crate) fn field_error(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
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

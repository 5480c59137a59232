//! `Resource`: a validated resource, read from and written to Sensu's two shapes.
//!
//! - The wrapped form (`sensuctl create -f`, dumps): `{type, api_version, metadata, spec}`.
//! - The flat form (the REST API's bodies): the spec's fields at the top level with
//!   `metadata` beside them; a Namespace is `{"name": …}` and a User
//!   `{"username": …, "groups": …, "disabled": …}`, neither with metadata.

use crate::schema::{check_types, join, type_of};
use crate::{check_name, field_error, rules, FieldError, Kind};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `null` read as the type's default (Go reads `labels: null` as no labels).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// A document as it travels: `{type, api_version, metadata, spec}`. (`metadata` may be
/// left out: Sensu writes a Namespace as `spec: {name: …}` alone.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(rename = "type", default)]
    pub type_name: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
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

/// Whether an API body is a wrapped document (`spec`, or both `type` and `api_version`)
/// rather than a flat one.
fn looks_wrapped(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.contains_key("spec") || (m.contains_key("type") && m.contains_key("api_version"))
    })
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

    /// Validates a document: kind, names, and the spec's fields and types. Errors name
    /// the field as `spec.…` or `metadata.…`.
    pub fn from_document(doc: Document) -> Result<Resource, FieldError> {
        let kind = Kind::parse(&doc.type_name, Some(&doc.api_version))?;
        build(kind, doc.metadata, doc.spec, "spec.", true)
    }

    /// A document read back from storage: as `from_document`, but without the rules
    /// between fields (cron xor interval, ttl > interval, handler sockets…), so that what
    /// an earlier version stored stays readable when a rule is added. Kind, names, field
    /// names and types are still checked.
    pub fn from_stored(doc: Document) -> Result<Resource, FieldError> {
        let kind = Kind::parse(&doc.type_name, Some(&doc.api_version))?;
        build(kind, doc.metadata, doc.spec, "spec.", false)
    }

    /// Validates a flat body (Sensu's REST form) of `kind`: the spec's fields at the top
    /// level and `metadata` beside them. Errors name the flat field (`interval`,
    /// `rules[0].verbs`, `metadata.name`).
    pub fn from_flat(kind: Kind, v: Value) -> Result<Resource, FieldError> {
        let mut m = match v {
            Value::Object(m) => m,
            other => {
                return Err(field_error(
                    "body",
                    format!("must be a mapping, not {}", type_of(&other)),
                ))
            }
        };
        let metadata = match m.remove("metadata") {
            None => Metadata::default(),
            Some(md) => {
                serde_json::from_value(md).map_err(|e| field_error("metadata", e.to_string()))?
            }
        };
        build(kind, metadata, Value::Object(m), "", true)
    }

    /// The flat form (Sensu's REST bodies). A User's `password` and `password_hash`, and
    /// an APIKey's `hash`, are never written.
    pub fn to_flat(&self) -> Value {
        self.clone().into_flat()
    }

    /// `to_flat`, moving the spec instead of copying it (lists build one per item).
    pub fn into_flat(self) -> Value {
        let Resource {
            kind,
            metadata,
            spec,
        } = self;
        let mut m = Map::with_capacity(spec.len() + 1);
        match kind {
            Kind::Namespace => {
                m.insert("name".into(), Value::String(metadata.name));
            }
            Kind::User => {
                m.insert("username".into(), Value::String(metadata.name));
                m.extend(spec.into_iter().filter(|(k, _)| {
                    !matches!(k.as_str(), "username" | "password" | "password_hash")
                }));
            }
            _ => {
                m.extend(
                    spec.into_iter()
                        .filter(|(k, _)| !(kind == Kind::APIKey && k == "hash")),
                );
                let md = serde_json::to_value(&metadata).unwrap_or_default();
                m.insert("metadata".into(), md);
            }
        }
        Value::Object(m)
    }

    /// An API body of `kind` in either shape: a wrapped document (what sensuctl writes,
    /// and Ward's own clients post) or a flat one. A wrapped document's `type`, when
    /// given, must name `kind`.
    pub fn from_api_body(kind: Kind, v: Value) -> Result<Resource, FieldError> {
        if !looks_wrapped(&v) {
            return Resource::from_flat(kind, v);
        }
        let mut doc: Document =
            serde_json::from_value(v).map_err(|e| field_error("body", e.to_string()))?;
        if doc.type_name.is_empty() {
            doc.type_name = kind.type_name().into();
        }
        let given = Kind::parse(&doc.type_name, Some(&doc.api_version))?;
        if given != kind {
            return Err(field_error(
                "type",
                format!(
                    "a {} cannot be stored as a {} (under /{})",
                    given.type_name(),
                    kind.type_name(),
                    kind.plural()
                ),
            ));
        }
        build(kind, doc.metadata, doc.spec, "spec.", true)
    }
}

/// `name` as the resource's name: `metadata.name` when that is empty, otherwise equal.
fn name_from(metadata: &mut Metadata, field: String, name: Option<&str>) -> Result<(), FieldError> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) if metadata.name.is_empty() => metadata.name = n.to_string(),
        Some(n) if metadata.name != n => {
            return Err(field_error(
                field,
                format!("{n:?} does not match metadata.name ({:?})", metadata.name),
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Validates a resource of `kind`; `p` is the spec fields' path prefix (`spec.`, or
/// empty for the flat form); `with_rules` adds the kind's rules to the type checks.
fn build(
    kind: Kind,
    mut metadata: Metadata,
    spec: Value,
    p: &str,
    with_rules: bool,
) -> Result<Resource, FieldError> {
    let mut spec = match spec {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(field_error(
                if p.is_empty() { "body" } else { "spec" },
                format!("must be a mapping, not {}", type_of(&other)),
            ))
        }
    };
    check_types(kind, p, &spec)?;
    match kind {
        Kind::Namespace => {
            // Sensu's Namespace is `{name}` alone; Ward keeps the name in metadata.
            let n = spec.remove("name");
            name_from(
                &mut metadata,
                join(p, "name"),
                n.as_ref().and_then(Value::as_str),
            )?;
        }
        Kind::User => {
            let u = spec.get("username").and_then(Value::as_str);
            name_from(&mut metadata, join(p, "username"), u)?;
        }
        _ => {}
    }
    if with_rules {
        rules::check_rules(kind, p, &mut spec)?;
    }
    match kind {
        // Sensu names a silence `subscription:check`, `*` for an empty side, whatever
        // name was sent (core/v2 `silenced.go` `SilencedName`).
        Kind::Silenced => {
            let side = |k: &str| match spec.get(k).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => "*".to_string(),
            };
            metadata.name = format!("{}:{}", side("subscription"), side("check"));
        }
        // Sensu's events have no name; Ward's documents (dumps) name them ENTITY/CHECK.
        Kind::Event if metadata.name.is_empty() => {}
        Kind::Event => match metadata.name.split_once('/') {
            Some((entity, check)) => {
                check_name("metadata.name", entity)?;
                check_name("metadata.name", check)?;
            }
            None => check_name("metadata.name", &metadata.name)?,
        },
        // Asset names may have `/` (`sensu/check-cpu-usage`), as Sensu's `AssetNameRegex`.
        Kind::Asset => {
            let n = &metadata.name;
            let ok = rules::is_asset_name(n)
                && n.len() <= 255
                && n.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
            if !ok {
                check_name("metadata.name", n)?;
            }
        }
        _ => check_name("metadata.name", &metadata.name)?,
    }
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
    Ok(Resource {
        kind,
        metadata,
        spec,
    })
}

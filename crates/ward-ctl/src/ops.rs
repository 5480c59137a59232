//! The verbs on one resource (`info`, `create`, `update`, `delete`), `check execute`,
//! API keys, users' groups, and the saved `config`.

use crate::{resource_path, wrap, Listed, Session};
use serde_json::{json, Map, Value};
use ward_types::Kind;

/// Which resources a command reads: a namespace (the session's when none), or all of
/// them, and the selectors a list passes to the API.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl Scope {
    /// The namespace commands act in.
    pub fn ns(&self, s: &Session) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| s.cfg.namespace.clone())
    }

    /// The collection a list reads.
    pub fn collection(&self, s: &Session, kind: Kind) -> String {
        if self.all_namespaces && kind.namespaced() {
            return format!("{}/{}", kind.api_prefix(), kind.plural());
        }
        crate::collection_path(kind, &self.ns(s))
    }
}

use ward_io::url::path_segment as escape;

/// `KIND info NAME`.
pub async fn info(s: &mut Session, kind: Kind, ns: &str, name: &str) -> Result<Listed, String> {
    let r = s.call("GET", &resource_path(kind, ns, name), None).await?;
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{name}: {e}"))?;
    Ok(wrap(kind, v))
}

/// The flat object `KIND create NAME` posts: `fields` with the name (and namespace) set.
pub fn new_object(kind: Kind, ns: &str, name: &str, fields: Map<String, Value>) -> Value {
    let mut o = fields;
    match kind {
        Kind::Namespace => {
            o.insert("name".into(), name.into());
        }
        Kind::User => {
            o.insert("username".into(), name.into());
        }
        k => {
            let mut md = json!({ "name": name });
            if k.namespaced() {
                md["namespace"] = ns.into();
            }
            o.insert("metadata".into(), md);
        }
    }
    Value::Object(o)
}

/// `KIND create NAME --flags…`: POST, so an existing resource is not replaced (409).
pub async fn create(s: &mut Session, kind: Kind, ns: &str, body: &Value) -> Result<Value, String> {
    let path = crate::collection_path(kind, ns);
    let r = s
        .call("POST", &path, Some(body.to_string().into_bytes()))
        .await?;
    Ok(r.json())
}

/// `KIND update NAME --flags…`: a merge patch of the given fields.
pub async fn update(
    s: &mut Session,
    kind: Kind,
    ns: &str,
    name: &str,
    fields: Map<String, Value>,
) -> Result<Value, String> {
    if fields.is_empty() {
        return Err(format!(
            "nothing to update: give at least one field to change (or use `ward ctl edit {} {name}`)",
            kind_word(kind)
        ));
    }
    let r = s
        .call(
            "PATCH",
            &resource_path(kind, ns, name),
            Some(Value::Object(fields).to_string().into_bytes()),
        )
        .await?;
    Ok(r.json())
}

/// `KIND delete NAME`.
pub async fn delete(s: &mut Session, kind: Kind, ns: &str, name: &str) -> Result<(), String> {
    s.call("DELETE", &resource_path(kind, ns, name), None)
        .await?;
    Ok(())
}

/// `check execute NAME`: an ad hoc request to the check's (or the given) subscriptions.
pub async fn execute(
    s: &mut Session,
    ns: &str,
    name: &str,
    subscriptions: &[String],
    reason: Option<&str>,
) -> Result<(), String> {
    let mut body = json!({ "check": name, "subscriptions": subscriptions });
    if let Some(r) = reason {
        body["reason"] = r.into();
    }
    s.call(
        "POST",
        &format!(
            "/api/core/v2/namespaces/{}/checks/{}/execute",
            escape(ns),
            escape(name)
        ),
        Some(body.to_string().into_bytes()),
    )
    .await?;
    Ok(())
}

/// `cert revoke SERIAL|NAME`: the backend's answer (serial, reason, sessions closed, CRL).
pub async fn revoke_certificate(
    s: &mut Session,
    which: &str,
    reason: &str,
) -> Result<serde_json::Value, String> {
    let r = s
        .call(
            "POST",
            &format!("/api/ward/v1/certificates/{}/revoke", escape(which)),
            Some(json!({ "reason": reason }).to_string().into_bytes()),
        )
        .await?;
    Ok(r.json())
}

/// `api-key grant USER`: the new key's name and its secret (shown only now).
pub async fn grant_api_key(s: &mut Session, user: &str) -> Result<(String, String), String> {
    let r = s
        .call(
            "POST",
            "/api/core/v2/apikeys",
            Some(json!({ "username": user }).to_string().into_bytes()),
        )
        .await?;
    let v = r.json();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .ok_or("the backend's answer holds no key")?
        .to_string();
    Ok((name, key))
}

/// `user add-group`, `remove-group`, `remove-groups`, `reinstate`, `reset-password`.
pub async fn user_call(
    s: &mut Session,
    method: &str,
    user: &str,
    tail: &str,
    body: Option<Value>,
) -> Result<(), String> {
    let path = format!("/api/core/v2/users/{}{tail}", escape(user));
    s.call(method, &path, body.map(|b| b.to_string().into_bytes()))
        .await?;
    Ok(())
}

/// The word of a kind on the command line (`check`, `role-binding`, …).
pub fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::CheckConfig => "check",
        Kind::Handler => "handler",
        Kind::EventFilter => "filter",
        Kind::Mutator => "mutator",
        Kind::Pipeline => "pipeline",
        Kind::Silenced => "silenced",
        Kind::HookConfig => "hook",
        Kind::Asset => "asset",
        Kind::Entity => "entity",
        Kind::Event => "event",
        Kind::Namespace => "namespace",
        Kind::User => "user",
        Kind::Role => "role",
        Kind::RoleBinding => "role-binding",
        Kind::ClusterRole => "cluster-role",
        Kind::ClusterRoleBinding => "cluster-role-binding",
        Kind::APIKey => "api-key",
        Kind::PostgresConfig => "postgres-config",
        Kind::TCPStreamHandler => "tcp-stream-handler",
        Kind::Secret => "secret",
    }
}

/// A kind from the command line: its word (`check`), plural (`checks`, `rolebindings`),
/// type name in any case or snake_case (`CheckConfig`, `check_config`), or
/// `api_version.Type` (`core/v2.CheckConfig`).
pub fn parse_kind(word: &str) -> Result<Kind, String> {
    let w = word.trim();
    for k in Kind::ALL {
        let plural_word = format!("{}s", kind_word(k));
        if w == kind_word(k) || w == k.plural() || w == plural_word {
            return Ok(k);
        }
    }
    Kind::parse(w, None).map_err(|_| {
        format!(
            "unknown resource type {w:?}; use one of: {}",
            Kind::ALL.map(kind_word).join(", ")
        )
    })
}

/// `config view`: the saved connection without its tokens.
pub fn config_view(s: &Session) -> Value {
    json!({
        "api-url": s.cfg.url,
        "username": s.cfg.username,
        "namespace": s.cfg.namespace,
        "format": s.cfg.format.clone().unwrap_or_else(|| "tabular".into()),
        "trusted-ca-file": s.cfg.trusted_ca_file,
        "insecure-skip-tls-verify": s.cfg.insecure_skip_tls_verify,
        "jwt-expires-at": s.cfg.expires_at,
    })
}

/// `config set-namespace` / `set-format`: saved (atomically, 0600) for the next commands.
pub fn config_set(
    s: &mut Session,
    namespace: Option<&str>,
    format: Option<&str>,
) -> Result<(), String> {
    if let Some(f) = format {
        crate::Format::parse(f)?;
        s.cfg.format = Some(if f == "table" { "tabular" } else { f }.into());
    }
    if let Some(n) = namespace {
        ward_types::check_name("namespace", n).map_err(|e| e.to_string())?;
        s.cfg.namespace = n.into();
    }
    crate::save(&s.cfg).map(|_| ())
}

/// `version`: the backend's `/version`, when it answers.
pub async fn backend_version(s: &Session) -> Option<String> {
    let r = s.get_public("/version").await.ok()?;
    r.json()
        .get("backend")
        .and_then(Value::as_str)
        .map(str::to_string)
}

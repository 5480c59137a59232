//! `ward ctl`: configure a connection, create/delete resources from YAML or JSON streams,
//! dump them back, list them, and read /health — sensuctl's commands, over TLS.

#![forbid(unsafe_code)]

pub mod client;
pub mod columns;
pub mod edit;
pub mod ops;

use client::{Endpoint, Reply};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use ward_tls::Trust;
use ward_types::{Document, Kind, Resource};

/// The saved connection (mode 0600: it holds tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CtlConfig {
    pub url: String,
    pub trusted_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    pub username: String,
    pub namespace: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: i64,
    /// The default output format (`config set-format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Where the connection is saved: `$WARD_CTL_CONFIG`, else `$XDG_CONFIG_HOME/ward/ctl.json`,
/// else `~/.config/ward/ctl.json`.
pub fn config_path() -> PathBuf {
    if let Ok(p) = std::env::var("WARD_CTL_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("ward").join("ctl.json")
}

use ward_types::unix_now as now;

/// How `ward ctl` trusts the backend: the CA file given, else the system's store (as
/// sensuctl), or nothing with `--insecure-skip-tls-verify`.
fn trust(ca: Option<&Path>, insecure: bool) -> Option<Trust> {
    Some(if insecure {
        Trust::SkipVerification
    } else {
        match ca {
            Some(c) => Trust::CaFile(c.to_path_buf()),
            None => Trust::SystemRoots {
                fix_key: "--trusted-ca-file (or install the CA with `ward pki trust install`)",
            },
        }
    })
}

pub(crate) fn save(cfg: &CtlConfig) -> Result<PathBuf, String> {
    let path = config_path();
    let json = serde_json::to_string_pretty(cfg).map_err(|e| e.to_string())? + "\n";
    ward_io::files::write_one(
        &ward_io::files::PlannedFile::key(&path, json),
        ward_io::files::Overwrite::Allow,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

/// `ward ctl configure -n`: logs in and saves the connection.
pub async fn configure(
    url: &str,
    username: &str,
    password: &str,
    ca: Option<&Path>,
    insecure: bool,
    namespace: &str,
) -> Result<PathBuf, String> {
    let ep = Endpoint {
        url: url.trim_end_matches('/').to_string(),
        trust: trust(ca, insecure),
    };
    let v = ep
        .login(username, password)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let cfg = CtlConfig {
        url: ep.url.clone(),
        trusted_ca_file: ca.map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.to_path_buf())),
        insecure_skip_tls_verify: insecure,
        username: username.into(),
        namespace: namespace.into(),
        access_token: v["access_token"].as_str().unwrap_or_default().into(),
        refresh_token: v["refresh_token"].as_str().unwrap_or_default().into(),
        expires_at: v["expires_at"].as_i64().unwrap_or_default(),
        format: None,
    };
    save(&cfg)
}

/// A configured session.
pub struct Session {
    pub cfg: CtlConfig,
    ep: Endpoint,
}

impl Session {
    pub fn load() -> Result<Session, String> {
        let path = config_path();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            format!(
                "not configured ({} missing); run `ward ctl configure` first",
                path.display()
            )
        })?;
        let cfg: CtlConfig = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: malformed: {e}; run `ward ctl configure` again",
                path.display()
            )
        })?;
        let ep = Endpoint {
            url: cfg.url.clone(),
            trust: trust(cfg.trusted_ca_file.as_deref(), cfg.insecure_skip_tls_verify),
        };
        Ok(Session { cfg, ep })
    }

    async fn refresh_if_needed(&mut self) -> Result<(), String> {
        if self.cfg.expires_at > now() + 10 {
            return Ok(());
        }
        self.refresh().await
    }

    async fn refresh(&mut self) -> Result<(), String> {
        let body = serde_json::json!({"refresh_token": self.cfg.refresh_token})
            .to_string()
            .into_bytes();
        let r = self
            .ep
            .request("POST", "/auth/token", &[], Some(body))
            .await?;
        if r.status != 200 {
            return Err("the saved login has expired; run `ward ctl configure` again".into());
        }
        let v = r.json();
        self.cfg.access_token = v["access_token"].as_str().unwrap_or_default().into();
        self.cfg.refresh_token = v["refresh_token"].as_str().unwrap_or_default().into();
        self.cfg.expires_at = v["expires_at"].as_i64().unwrap_or_default();
        save(&self.cfg)?;
        Ok(())
    }

    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Reply, String> {
        self.ep
            .request(
                method,
                path,
                &[("authorization", format!("Bearer {}", self.cfg.access_token))],
                body,
            )
            .await
    }

    /// An authenticated request; non-2xx replies become errors carrying the server's message.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, String> {
        self.refresh_if_needed().await?;
        let mut r = self.send(method, path, body.clone()).await?;
        if r.status == 401 {
            // The access token expired in flight (or was revoked): refresh once and retry.
            self.refresh().await?;
            r = self.send(method, path, body).await?;
        }
        if !(200..300).contains(&r.status) {
            return Err(format!("{method} {path}: {} ({})", r.message(), r.status));
        }
        Ok(r)
    }

    /// An unauthenticated GET (for /health).
    pub async fn get_public(&self, path: &str) -> Result<Reply, String> {
        self.ep.request("GET", path, &[], None).await
    }
}

/// The URL path of one resource.
pub fn resource_path(kind: Kind, namespace: &str, name: &str) -> String {
    // An event's name is ENTITY/CHECK: two segments; any other name is one.
    let name = if kind == Kind::Event {
        name.split('/')
            .map(ward_io::url::path_segment)
            .collect::<Vec<_>>()
            .join("/")
    } else {
        ward_io::url::path_segment(name)
    };
    let namespace = ward_io::url::path_segment(namespace);
    match kind {
        Kind::PostgresConfig => format!("/api/enterprise/store/v1/provider/{name}"),
        // Namespace, User, ClusterRole, ClusterRoleBinding, APIKey.
        k if !k.namespaced() => format!("{}/{}/{name}", k.api_prefix(), k.plural()),
        k => format!(
            "{}/namespaces/{namespace}/{}/{name}",
            k.api_prefix(),
            k.plural()
        ),
    }
}

/// The collection path of a kind.
pub fn collection_path(kind: Kind, namespace: &str) -> String {
    let namespace = ward_io::url::path_segment(namespace);
    match kind {
        Kind::PostgresConfig => "/api/enterprise/store/v1/provider".into(),
        k if !k.namespaced() => format!("{}/{}", k.api_prefix(), k.plural()),
        k => format!("{}/namespaces/{namespace}/{}", k.api_prefix(), k.plural()),
    }
}

/// Reads every resource from files, directories (their *.yml, *.yaml, *.json) or stdin
/// (`-`). Nothing is returned unless every document is valid.
pub fn read_resources(inputs: &[String]) -> Result<Vec<Resource>, String> {
    let mut out = Vec::new();
    for input in inputs {
        let mut files = Vec::new();
        if input == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| format!("stdin: {e}"))?;
            out.extend(ward_types::parse_stream("stdin", &s).map_err(|e| e.to_string())?);
            continue;
        }
        let p = Path::new(input);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{input}: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            files.extend(entries.into_iter().filter(|f| {
                matches!(
                    f.extension().and_then(|e| e.to_str()),
                    Some("yml" | "yaml" | "json")
                )
            }));
        } else {
            files.push(p.to_path_buf());
        }
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
            out.extend(
                ward_types::parse_stream(&f.display().to_string(), &text)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(out)
}

/// What `create -f` sends: the flat object for core/v2 (as sensuctl does), the
/// document for other API groups; a User without its password hash.
pub(crate) fn body_for(r: &Resource) -> Vec<u8> {
    match r.kind {
        Kind::User => {
            let mut m = r.spec.clone();
            m.insert("username".into(), Value::String(r.metadata.name.clone()));
            m.remove("password_hash");
            Value::Object(m).to_string().into_bytes()
        }
        Kind::Event => Value::Object(r.spec.clone()).to_string().into_bytes(),
        k if k.api_version() == "core/v2" => r.to_flat().to_string().into_bytes(),
        _ => serde_json::to_vec(&r.to_document()).unwrap_or_default(),
    }
}

/// `create -f`: creates or replaces every resource (PUT), after validating all of them.
pub async fn create(s: &mut Session, inputs: &[String]) -> Result<Vec<String>, String> {
    let resources = read_resources(inputs)?;
    let mut done = Vec::new();
    for r in &resources {
        let ns = r
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| s.cfg.namespace.clone());
        s.call(
            "PUT",
            &resource_path(r.kind, &ns, &r.metadata.name),
            Some(body_for(r)),
        )
        .await?;
        done.push(format!("{} {}", r.kind.type_name(), r.metadata.name));
    }
    Ok(done)
}

/// `delete -f`.
pub async fn delete(s: &mut Session, inputs: &[String]) -> Result<Vec<String>, String> {
    let resources = read_resources(inputs)?;
    let mut done = Vec::new();
    for r in &resources {
        let ns = r
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| s.cfg.namespace.clone());
        s.call(
            "DELETE",
            &resource_path(r.kind, &ns, &r.metadata.name),
            None,
        )
        .await?;
        done.push(format!("{} {}", r.kind.type_name(), r.metadata.name));
    }
    Ok(done)
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    /// The API's flat objects, as `sensuctl … --format json`.
    Json,
    /// One wrapped document a line, as `sensuctl … --format wrapped-json`.
    WrappedJson,
    /// A JSON array of wrapped documents (`dump --format json`; `create -f` reads it).
    DocumentArray,
    Table,
}

impl Format {
    /// `tabular` (or `table`), `json`, `wrapped-json`, `yaml`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "tabular" | "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "wrapped-json" => Ok(Format::WrappedJson),
            "yaml" => Ok(Format::Yaml),
            other => Err(format!(
                "unknown format {other:?}; use tabular, json, wrapped-json or yaml"
            )),
        }
    }
}

/// A resource as listed: the API's flat object and sensuctl's wrapped document of it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub flat: Value,
    pub doc: Document,
}

/// Wraps a flat API object of `kind` as sensuctl's document: `spec` is the object without
/// `metadata`. An event is named ENTITY/CHECK; a namespace and a user take their names
/// from `name` and `username`; other API groups' answers are documents already.
pub fn wrap(kind: Kind, flat: Value) -> Listed {
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if kind.api_version() != "core/v2" {
        if let Ok(doc) = serde_json::from_value::<Document>(flat.clone()) {
            return Listed { flat, doc };
        }
    }
    let mut spec = flat.as_object().cloned().unwrap_or_default();
    let mut metadata: ward_types::Metadata = spec
        .remove("metadata")
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    match kind {
        Kind::Event => {
            metadata.name = format!(
                "{}/{}",
                text(&flat, "/entity/metadata/name"),
                text(&flat, "/check/metadata/name")
            );
            if metadata.namespace.is_none() {
                metadata.namespace = Some(text(&flat, "/entity/metadata/namespace"));
            }
        }
        Kind::Namespace => {
            metadata.name = text(&flat, "/name");
            spec.clear();
        }
        Kind::User => metadata.name = text(&flat, "/username"),
        _ => {}
    }
    Listed {
        doc: Document {
            type_name: kind.type_name().into(),
            api_version: kind.api_version().into(),
            metadata,
            spec: Value::Object(spec),
        },
        flat,
    }
}

/// Every resource of a kind in the session's namespace (all pages).
pub async fn fetch_all(s: &mut Session, kind: Kind) -> Result<Vec<Listed>, String> {
    fetch_list(s, kind, &ops::Scope::default()).await
}

/// Every resource of a kind in a scope (all pages), selectors passed to the API.
pub async fn fetch_list(
    s: &mut Session,
    kind: Kind,
    scope: &ops::Scope,
) -> Result<Vec<Listed>, String> {
    let base = scope.collection(s, kind);
    let mut query = String::from("limit=500");
    for (k, v) in [
        ("labelSelector", &scope.label_selector),
        ("fieldSelector", &scope.field_selector),
    ] {
        if let Some(v) = v {
            query.push_str(&format!("&{k}={}", ward_io::url::query_value(v)));
        }
    }
    let mut out = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let path = match &cont {
            Some(c) => format!("{base}?{query}&continue={}", ward_io::url::query_value(c)),
            None => format!("{base}?{query}"),
        };
        let r = s.call("GET", &path, None).await?;
        let page: Vec<Value> =
            serde_json::from_slice(&r.body).map_err(|e| format!("{path}: {e}"))?;
        out.extend(page.into_iter().map(|v| wrap(kind, v)));
        match r.continue_token {
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// Renders listed resources of `kind` (a dump mixes kinds: any kind will do for formats
/// other than the table).
pub fn render(kind: Kind, items: &[Listed], format: Format) -> String {
    match format {
        Format::Yaml => items
            .iter()
            .map(|d| format!("---\n{}", ward_types::to_yaml(&d.doc)))
            .collect::<Vec<_>>()
            .join(""),
        Format::Json => {
            let flat: Vec<&Value> = items.iter().map(|d| &d.flat).collect();
            serde_json::to_string_pretty(&flat).unwrap_or_default() + "\n"
        }
        Format::WrappedJson => items
            .iter()
            .map(|d| serde_json::to_string(&d.doc).unwrap_or_default() + "\n")
            .collect(),
        Format::DocumentArray => {
            let docs: Vec<&Document> = items.iter().map(|d| &d.doc).collect();
            serde_json::to_string_pretty(&docs).unwrap_or_default() + "\n"
        }
        Format::Table => columns::table(kind, items),
    }
}

/// Renders one resource (`info`): JSON is the flat object itself, as `sensuctl … info
/// --format json`; the table is a list of fields.
pub fn render_one(kind: Kind, item: &Listed, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(&item.flat).unwrap_or_default() + "\n",
        Format::Yaml => ward_types::to_yaml(&item.doc),
        Format::Table => columns::info(kind, item),
        f => render(kind, std::slice::from_ref(item), f),
    }
}

/// A DSN with its password hidden (for tables; dumps keep the document as stored).
pub fn redact_dsn(dsn: &str) -> String {
    if let Some((scheme, rest)) = dsn.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:****@{host}");
            }
        }
    }
    dsn.to_string()
}

/// `cluster health` as a table.
pub fn health_table(v: &Value) -> String {
    let mut s = String::from(
        "=== Cluster\nID                 Name                           Error   Healthy\n",
    );
    for m in v["ClusterHealth"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<18} {:<30} {:<7} {}\n",
            ward_io::text::one_line(m["MemberIDHex"].as_str().unwrap_or("")),
            ward_io::text::one_line(m["Name"].as_str().unwrap_or("")),
            ward_io::text::one_line(m["Err"].as_str().unwrap_or("")),
            m["Healthy"]
        ));
    }
    s.push_str("=== PostgreSQL\nName                           Active  Healthy\n");
    for p in v["PostgresHealth"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<30} {:<7} {}\n",
            ward_io::text::one_line(p["Name"].as_str().unwrap_or("")),
            p["Active"],
            p["Healthy"]
        ));
    }
    s
}

/// `event resolve ENTITY CHECK`: posts an OK result for that check.
pub async fn resolve_event(
    s: &mut Session,
    ns: &str,
    entity: &str,
    check: &str,
) -> Result<Value, String> {
    let path = resource_path(Kind::Event, ns, &format!("{entity}/{check}"));
    let current = s.call("GET", &path, None).await?.json();
    let mut ev = current.clone();
    // The fold's fields (history, occurrences, state…) and the timestamp are the backend's:
    // it replaces whatever is posted. Without `executed`, the result is stamped now.
    // A posted timestamp is kept: leave it out, so the resolution is stamped now.
    if let Some(e) = ev.as_object_mut() {
        e.remove("timestamp");
    }
    if let Some(c) = ev.get_mut("check").and_then(Value::as_object_mut) {
        c.remove("executed");
        c.insert("status".into(), Value::from(0));
        c.insert(
            "output".into(),
            Value::from(format!("Resolved manually by {}", s.cfg.username)),
        );
    }
    let r = s
        .call("PUT", &path, Some(ev.to_string().into_bytes()))
        .await?;
    Ok(r.json())
}

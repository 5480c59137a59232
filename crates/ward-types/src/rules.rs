//! Sensu Go's validation rules beyond field types (core/v2 `validators.go`,
//! `check_config.go`, `check_proxy_requests.go`, `env_vars.go`, `time_window.go`,
//! `handler.go`, `filter.go`, `mutator.go`, `hook.go`, `asset.go`, `rbac.go`,
//! `silenced.go`, `apikey.go`, `pipeline_workflow.go`), each error naming the field.

use crate::schema::join;
use crate::{field_error, FieldError, Kind};
use serde_json::{Map, Value};

pub(crate) type Spec = Map<String, Value>;

/// A non-empty string member.
pub(crate) fn text<'a>(m: &'a Spec, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A list member (empty when absent or null); the types were checked before.
pub(crate) fn items<'a>(m: &'a Spec, k: &str) -> &'a [Value] {
    m.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(crate) fn obj<'a>(m: &'a Spec, k: &str) -> Option<&'a Spec> {
    m.get(k).and_then(Value::as_object)
}

pub(crate) fn uint(m: &Spec, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

pub(crate) fn int(m: &Spec, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Sensu's `NameRegex`, `\A[\w\.\-\:]+\z`.
pub(crate) fn is_sensu_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| word(c) || ".-:".contains(c))
}

/// Sensu's `SubscriptionNameRegex`, `\A[\w\.\-]+(\:?[\w\.\-]+)?\z`: at most one `:`, not
/// at either end.
pub(crate) fn is_subscription(s: &str) -> bool {
    let part = |p: &str| !p.is_empty() && p.chars().all(|c| word(c) || ".-".contains(c));
    match s.split_once(':') {
        Some((a, b)) => part(a) && part(b),
        None => part(s),
    }
}

/// Sensu's `AssetNameRegex`, `[\w\/\_\.\-\:]+`.
pub(crate) fn is_asset_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| word(c) || "/.-:".contains(c))
}

pub(crate) fn required(kind: Kind, p: &str, spec: &Spec, k: &str) -> Result<(), FieldError> {
    let missing = match spec.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    };
    if missing {
        return Err(field_error(
            join(p, k),
            format!("is required in a {}", kind.type_name()),
        ));
    }
    Ok(())
}

pub(crate) fn check_list(
    p: &str,
    spec: &Spec,
    k: &str,
    ok: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), FieldError> {
    for (i, v) in items(spec, k).iter().enumerate() {
        let s = v.as_str().unwrap_or_default();
        if !ok(s) {
            return Err(field_error(
                format!("{}[{i}]", join(p, k)),
                format!("{s:?} is not {what}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn env_vars(p: &str, spec: &Spec) -> Result<(), FieldError> {
    check_list(
        p,
        spec,
        "env_vars",
        |s| {
            s.split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
        },
        "of the form KEY=VALUE",
    )
}

pub(crate) fn assets(p: &str, spec: &Spec) -> Result<(), FieldError> {
    check_list(p, spec, "runtime_assets", is_asset_name, "an asset name")
}

pub(crate) fn secrets(p: &str, spec: &Spec) -> Result<(), FieldError> {
    for (i, s) in items(spec, "secrets").iter().enumerate() {
        let s = s.as_object().cloned().unwrap_or_default();
        for k in ["name", "secret"] {
            if text(&s, k).is_none() {
                return Err(field_error(
                    format!("{}[{i}].{k}", join(p, "secrets")),
                    "is required",
                ));
            }
        }
    }
    Ok(())
}

/// A check's `secrets` (`[{name, secret}]`), sent to the agent with its requests.
pub(crate) fn check_secrets(p: &str, spec: &Spec) -> Result<(), FieldError> {
    secrets(p, spec)
}

/// Environment variables a Secret of the `env` provider may not name: the backend's own
/// settings and its PostgreSQL credentials (a handler could otherwise be given them).
pub fn backend_own_variable(id: &str) -> bool {
    ["PG", "WARD_", "SENSU_BACKEND_"]
        .iter()
        .any(|p| id.starts_with(p))
}

/// secrets/v1 Secret: an `id` and a `provider`; Ward has the `env` provider.
fn secret(p: &str, spec: &Spec) -> Result<(), FieldError> {
    required(Kind::Secret, p, spec, "id")?;
    required(Kind::Secret, p, spec, "provider")?;
    let provider = text(spec, "provider").unwrap_or_default();
    if provider != "env" {
        return Err(field_error(
            join(p, "provider"),
            format!("{provider:?} is not a provider Ward has; use env (the backend's environment variables)"),
        ));
    }
    let id = text(spec, "id").unwrap_or_default();
    let valid = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(field_error(
            join(p, "id"),
            format!("{id:?} is not an environment variable name (letters, digits, _)"),
        ));
    }
    if backend_own_variable(id) {
        return Err(field_error(
            join(p, "id"),
            format!("{id:?} is one of the backend's own variables (PG*, WARD_*, SENSU_BACKEND_*: its settings and PostgreSQL credentials), which Ward does not hand to handlers; give the secret a variable of its own"),
        ));
    }
    Ok(())
}

/// A `ResourceReference`: name, type and api_version, from the allowed `types`
/// (`API_VERSION.Type`).
pub(crate) fn reference(at: &str, r: Option<&Spec>, types: &[&str]) -> Result<(), FieldError> {
    let r = r.cloned().unwrap_or_default();
    for k in ["name", "type", "api_version"] {
        if text(&r, k).is_none() {
            return Err(field_error(format!("{at}.{k}"), "is required"));
        }
    }
    let given = format!(
        "{}.{}",
        text(&r, "api_version").unwrap_or_default(),
        text(&r, "type").unwrap_or_default()
    );
    if !types.contains(&given.as_str()) {
        let why = if given == "pipeline/v1.SumoLogicMetricsHandler" {
            " (Ward has no Sumo Logic handler: a pipe handler can post to Sumo Logic's HTTP source)"
        } else {
            ""
        };
        return Err(field_error(
            format!("{at}.type"),
            format!(
                "{given} cannot be referenced here{why}; use {}",
                types.join(" or ")
            ),
        ));
    }
    Ok(())
}

/// A pipeline/v1 TCPStreamHandler: `address` HOST:PORT, a pool size, reconnect delays
/// from min to max, and TLS files that make sense together.
fn tcp_stream_handler(p: &str, spec: &Spec) -> Result<(), FieldError> {
    required(Kind::TCPStreamHandler, p, spec, "address")?;
    let address = text(spec, "address").unwrap_or_default();
    let port_ok = address
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .is_some_and(|port| port > 0);
    if !port_ok {
        return Err(field_error(
            join(p, "address"),
            format!("{address:?} is not HOST:PORT (a port from 1 to 65535; [::1]:4242 for IPv6)"),
        ));
    }
    if spec.get("max_connections").is_none_or(Value::is_null) {
        return Err(field_error(
            join(p, "max_connections"),
            "is required (0 opens a connection per event)",
        ));
    }
    let mut delays = [std::time::Duration::ZERO; 2];
    for (i, k) in ["min_reconnect_delay", "max_reconnect_delay"]
        .iter()
        .enumerate()
    {
        required(Kind::TCPStreamHandler, p, spec, k)?;
        let v = text(spec, k).unwrap_or_default();
        delays[i] = ward_io::duration::parse_duration(k, v)
            .map_err(|e| field_error(join(p, k), format!("{e}; write it as 10ms or 10s")))?;
    }
    if delays[0] > delays[1] {
        return Err(field_error(
            join(p, "min_reconnect_delay"),
            "is longer than max_reconnect_delay",
        ));
    }
    match (text(spec, "tls_cert_file"), text(spec, "tls_key_file")) {
        (Some(_), None) => Err(field_error(
            join(p, "tls_key_file"),
            "is required with tls_cert_file (the client certificate's key)",
        )),
        (None, Some(_)) => Err(field_error(
            join(p, "tls_cert_file"),
            "is required with tls_key_file (the client certificate)",
        )),
        _ => Ok(()),
    }
}

fn handler(p: &str, spec: &Spec) -> Result<(), FieldError> {
    required(Kind::Handler, p, spec, "type")?;
    match text(spec, "type").unwrap_or_default() {
        "pipe" => required(Kind::Handler, p, spec, "command")
            .map_err(|e| field_error(e.field, "is required in a pipe handler"))?,
        "set" => {}
        "tcp" | "udp" => {
            let s = obj(spec, "socket").ok_or_else(|| {
                field_error(
                    join(p, "socket"),
                    "is required in a tcp or udp handler ({host, port})",
                )
            })?;
            if text(s, "host").is_none() {
                return Err(field_error(join(p, "socket.host"), "is required"));
            }
            if uint(s, "port") == 0 || uint(s, "port") > 65535 {
                return Err(field_error(
                    join(p, "socket.port"),
                    "must be a port from 1 to 65535",
                ));
            }
        }
        t => {
            return Err(field_error(
                join(p, "type"),
                format!("{t:?} is not a handler type; use pipe, tcp, udp or set"),
            ))
        }
    }
    env_vars(p, spec)?;
    assets(p, spec)?;
    secrets(p, spec)
}

fn rbac_rules(kind: Kind, p: &str, spec: &Spec) -> Result<(), FieldError> {
    const VERBS: [&str; 6] = ["get", "list", "create", "update", "delete", "*"];
    let rules = items(spec, "rules");
    if rules.is_empty() {
        return Err(field_error(
            join(p, "rules"),
            format!("a {} needs at least one rule", kind.type_name()),
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let at = format!("{}[{i}]", join(p, "rules"));
        let r = r.as_object().cloned().unwrap_or_default();
        for (j, v) in items(&r, "verbs").iter().enumerate() {
            // Sensu splits `get,list` into two verbs.
            for verb in v.as_str().unwrap_or_default().split(',') {
                if !VERBS.contains(&verb) {
                    return Err(field_error(
                        format!("{at}.verbs[{j}]"),
                        format!("{verb:?} is not a verb; use {}", VERBS.join(", ")),
                    ));
                }
            }
        }
        if items(&r, "resources").is_empty() {
            return Err(field_error(
                format!("{at}.resources"),
                "must list at least one resource type (or *)",
            ));
        }
        check_list(&at, &r, "resources", |s| !s.is_empty(), "a resource type")?;
    }
    Ok(())
}

/// Sensu's `strings.Title` of a subject's or role_ref's type: `user` → `User`.
fn title(v: &mut Value) -> String {
    let s = v.as_str().unwrap_or_default();
    let mut c = s.chars();
    let t: String = c
        .next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default();
    if !t.is_empty() {
        *v = Value::String(t.clone());
    }
    t
}

fn binding(kind: Kind, p: &str, spec: &mut Spec) -> Result<(), FieldError> {
    let allowed: &[&str] = if kind == Kind::ClusterRoleBinding {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    let Some(Value::Object(r)) = spec.get_mut("role_ref") else {
        return Err(field_error(
            join(p, "role_ref"),
            format!("is required in a {} ({{type, name}})", kind.type_name()),
        ));
    };
    let t = r.get_mut("type").map(title).unwrap_or_default();
    if !allowed.contains(&t.as_str()) {
        return Err(field_error(
            join(p, "role_ref.type"),
            format!(
                "{t:?} cannot be bound by a {}; use {}",
                kind.type_name(),
                allowed.join(" or ")
            ),
        ));
    }
    if text(r, "name").is_none() {
        return Err(field_error(join(p, "role_ref.name"), "is required"));
    }
    let Some(Value::Array(subjects)) = spec
        .get_mut("subjects")
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return Err(field_error(
            join(p, "subjects"),
            format!("a {} needs at least one subject", kind.type_name()),
        ));
    };
    for (i, s) in subjects.iter_mut().enumerate() {
        let at = format!("{}[{i}]", join(p, "subjects"));
        let Value::Object(s) = s else { continue };
        let t = s.get_mut("type").map(title).unwrap_or_default();
        if t != "User" && t != "Group" {
            return Err(field_error(
                format!("{at}.type"),
                format!("{t:?} is not a subject type; use User or Group"),
            ));
        }
        if text(s, "name").is_none() {
            return Err(field_error(format!("{at}.name"), "is required"));
        }
    }
    Ok(())
}

fn is_sha512(s: &str) -> bool {
    s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn asset_source(at: &str, m: &Spec) -> Result<(), FieldError> {
    if text(m, "url").is_none() {
        return Err(field_error(join(at, "url"), "is required (or builds)"));
    }
    let sha = text(m, "sha512").unwrap_or_default();
    if !is_sha512(sha) {
        return Err(field_error(
            join(at, "sha512"),
            "must be the SHA-512 of the archive: 128 hex digits",
        ));
    }
    check_list(at, m, "filters", |s| !s.trim().is_empty(), "an expression")
}

fn pipeline(p: &str, spec: &Spec) -> Result<(), FieldError> {
    for (i, w) in items(spec, "workflows").iter().enumerate() {
        let at = format!("{}[{i}]", join(p, "workflows"));
        let w = w.as_object().cloned().unwrap_or_default();
        let name = text(&w, "name").unwrap_or_default();
        if !is_sensu_name(name) {
            return Err(field_error(
                format!("{at}.name"),
                format!("{name:?} is not a valid name"),
            ));
        }
        for (j, f) in items(&w, "filters").iter().enumerate() {
            reference(
                &format!("{at}.filters[{j}]"),
                f.as_object(),
                &["core/v2.EventFilter"],
            )?;
        }
        if let Some(m) = obj(&w, "mutator") {
            reference(&format!("{at}.mutator"), Some(m), &["core/v2.Mutator"])?;
        }
        match obj(&w, "handler") {
            Some(h) => reference(
                &format!("{at}.handler"),
                Some(h),
                &["core/v2.Handler", "pipeline/v1.TCPStreamHandler"],
            )?,
            None => return Err(field_error(format!("{at}.handler"), "is required")),
        }
    }
    Ok(())
}

/// Ward's own argon2 hashes, in the PHC string format (`$argon2id$v=19$m=…`).
fn is_argon2(s: &str) -> bool {
    ["$argon2id$", "$argon2i$", "$argon2d$"]
        .iter()
        .any(|p| s.starts_with(p))
        && s.len() <= 512
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"$=,+/.-".contains(&c))
}

/// bcrypt's modular crypt format: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, `$`, and 53
/// characters of its base64.
fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 60
        && (s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// The rules of `kind` on a spec whose types have been checked. Normalises what Sensu
/// normalises (a binding's subject and role_ref types are title-cased).
pub(crate) fn check_rules(kind: Kind, p: &str, spec: &mut Spec) -> Result<(), FieldError> {
    match kind {
        Kind::CheckConfig => crate::rules_check::check_config(p, spec),
        Kind::Handler => handler(p, spec),
        Kind::PostgresConfig => required(kind, p, spec, "dsn"),
        Kind::TCPStreamHandler => tcp_stream_handler(p, spec),
        Kind::Secret => secret(p, spec),
        Kind::EventFilter => {
            let a = text(spec, "action").unwrap_or_default();
            if a != "allow" && a != "deny" {
                required(kind, p, spec, "action")?;
                return Err(field_error(
                    join(p, "action"),
                    format!("{a:?} is not an action; use allow or deny"),
                ));
            }
            if items(spec, "expressions").is_empty() {
                return Err(field_error(
                    join(p, "expressions"),
                    "an EventFilter needs at least one expression",
                ));
            }
            check_list(
                p,
                spec,
                "expressions",
                |s| !s.trim().is_empty(),
                "an expression",
            )?;
            crate::rules_check::when(&join(p, "when"), obj(spec, "when"))?;
            assets(p, spec)
        }
        Kind::Mutator => {
            let t = text(spec, "type").unwrap_or("pipe");
            if t != "pipe" && t != "javascript" {
                return Err(field_error(
                    join(p, "type"),
                    format!("{t:?} is not a mutator type; use pipe or javascript"),
                ));
            }
            if t == "javascript" && text(spec, "command").is_some() {
                return Err(field_error(
                    join(p, "command"),
                    "a javascript mutator has eval, not command",
                ));
            }
            if text(spec, "command").is_none() && text(spec, "eval").is_none() {
                let k = if t == "javascript" { "eval" } else { "command" };
                return Err(field_error(
                    join(p, k),
                    "a Mutator needs command (pipe) or eval (javascript)",
                ));
            }
            env_vars(p, spec)?;
            assets(p, spec)?;
            secrets(p, spec)
        }
        Kind::HookConfig => {
            required(kind, p, spec, "command")?;
            // Sensu refuses a timeout of 0; an absent one is taken as sensuctl's default.
            if spec.get("timeout").and_then(Value::as_u64) == Some(0) {
                return Err(field_error(join(p, "timeout"), "must be greater than 0"));
            }
            assets(p, spec)
        }
        Kind::Asset => {
            let builds = items(spec, "builds");
            if builds.is_empty() {
                return asset_source(p, spec);
            }
            for (i, b) in builds.iter().enumerate() {
                asset_source(
                    &format!("{}[{i}]", join(p, "builds")),
                    &b.as_object().cloned().unwrap_or_default(),
                )?;
            }
            Ok(())
        }
        Kind::Role | Kind::ClusterRole => rbac_rules(kind, p, spec),
        Kind::RoleBinding | Kind::ClusterRoleBinding => binding(kind, p, spec),
        Kind::Pipeline => pipeline(p, spec),
        Kind::Silenced => {
            let sub = text(spec, "subscription");
            let check = text(spec, "check");
            if sub.is_none() && check.is_none() || (sub == Some("*") && check == Some("*")) {
                return Err(field_error(
                    join(p, "subscription"),
                    "a Silenced needs a subscription or a check (not both *)",
                ));
            }
            if let Some(s) = sub.filter(|s| *s != "*" && !is_subscription(s)) {
                return Err(field_error(
                    join(p, "subscription"),
                    format!("{s:?} is not a subscription"),
                ));
            }
            if let Some(c) = check.filter(|c| *c != "*" && !is_sensu_name(c)) {
                return Err(field_error(
                    join(p, "check"),
                    format!("{c:?} is not a check name"),
                ));
            }
            Ok(())
        }
        Kind::User => {
            if let Some(h) = text(spec, "password_hash") {
                if !is_bcrypt(h) && !is_argon2(h) {
                    return Err(field_error(
                        join(p, "password_hash"),
                        "must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters) or an argon2 PHC string",
                    ));
                }
            }
            Ok(())
        }
        Kind::APIKey => required(kind, p, spec, "username"),
        Kind::Namespace | Kind::Entity | Kind::Event => Ok(()),
    }
}

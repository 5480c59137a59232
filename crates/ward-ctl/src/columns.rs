//! Tabular output: the columns of each kind (after sensuctl's `*/list.go` tables) for
//! `list`, and the same fields as a key/value list for `info`.

use crate::Listed;
use serde_json::Value;
use ward_types::Kind;

type Cell = fn(&Value) -> String;

fn s(v: &Value, p: &str) -> String {
    match v.pointer(p) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn list(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn yes_no(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// A Unix time as RFC 3339 UTC; 0 or absent is blank.
fn when(v: &Value, p: &str) -> String {
    match v.pointer(p).and_then(Value::as_i64) {
        Some(t) if t > 0 => time::OffsetDateTime::from_unix_timestamp(t)
            .map(ward_io::text::format_time)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn c(title: &'static str, cell: Cell) -> (&'static str, Cell) {
    (title, cell)
}

fn name(v: &Value) -> String {
    s(v, "/metadata/name")
}

fn columns(kind: Kind) -> Vec<(&'static str, Cell)> {
    match kind {
        Kind::CheckConfig => vec![
            c("Name", name),
            c("Command", |v| s(v, "/command")),
            c("Interval", |v| s(v, "/interval")),
            c("Cron", |v| s(v, "/cron")),
            c("Timeout", |v| s(v, "/timeout")),
            c("TTL", |v| s(v, "/ttl")),
            c("Subscriptions", |v| list(v, "/subscriptions")),
            c("Handlers", |v| list(v, "/handlers")),
            c("Assets", |v| list(v, "/runtime_assets")),
            c("Hooks", |v| {
                v["check_hooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .flat_map(|m| m.values())
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            c("Publish?", |v| yes_no(v, "/publish")),
            c("Stdin?", |v| yes_no(v, "/stdin")),
            c("Metric Format", |v| s(v, "/output_metric_format")),
            c("Metric Handlers", |v| list(v, "/output_metric_handlers")),
        ],
        Kind::Handler => vec![
            c("Name", name),
            c("Type", |v| s(v, "/type")),
            c("Timeout", |v| s(v, "/timeout")),
            c("Filters", |v| list(v, "/filters")),
            c("Mutator", |v| s(v, "/mutator")),
            c("Execute", |v| match v["type"].as_str().unwrap_or("pipe") {
                "tcp" | "udp" => format!("SEND: {}:{}", s(v, "/socket/host"), s(v, "/socket/port")),
                "set" => format!("CALL: {}", list(v, "/handlers")),
                _ => format!("RUN: {}", s(v, "/command")),
            }),
            c("Environment Variables", |v| list(v, "/env_vars")),
            c("Assets", |v| list(v, "/runtime_assets")),
        ],
        Kind::EventFilter => vec![
            c("Name", name),
            c("Action", |v| s(v, "/action")),
            c("Expressions", |v| {
                v["expressions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|e| format!("({e})"))
                    .collect::<Vec<_>>()
                    .join(" && ")
            }),
        ],
        Kind::Mutator => vec![
            c("Name", name),
            c("Command", |v| s(v, "/command")),
            c("Environment Variables", |v| list(v, "/env_vars")),
            c("Timeout", |v| s(v, "/timeout")),
            c("Assets", |v| list(v, "/runtime_assets")),
        ],
        Kind::HookConfig => vec![
            c("Name", name),
            c("Command", |v| s(v, "/command")),
            c("Timeout", |v| s(v, "/timeout")),
            c("Stdin?", |v| yes_no(v, "/stdin")),
        ],
        Kind::Asset => vec![
            c("Name", name),
            c("URL", |v| s(v, "/url")),
            c("Hash", |v| s(v, "/sha512").chars().take(7).collect()),
        ],
        Kind::Pipeline => vec![
            c("Name", name),
            c("Workflows", |v| {
                v["workflows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| s(w, "/name"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ],
        Kind::Secret => vec![
            c("Name", name),
            c("Provider", |v| s(v, "/provider")),
            c("ID", |v| s(v, "/id")),
        ],
        Kind::TCPStreamHandler => vec![
            c("Name", name),
            c("Address", |v| s(v, "/address")),
            c("TLS", |v| {
                let tls = ["/tls_ca_cert_file", "/tls_cert_file"]
                    .iter()
                    .any(|p| !s(v, p).is_empty());
                if tls { "true" } else { "false" }.to_string()
            }),
            c("Max connections", |v| s(v, "/max_connections")),
        ],
        Kind::Silenced => vec![
            c("Name", name),
            c("Subscription", |v| s(v, "/subscription")),
            c("Check", |v| s(v, "/check")),
            c("Begin", |v| when(v, "/begin")),
            c("Expiration", |v| when(v, "/expire_at")),
            c("ExpireOnResolve", |v| yes_no(v, "/expire_on_resolve")),
            c("Creator", |v| s(v, "/creator")),
            c("Reason", |v| s(v, "/reason")),
        ],
        Kind::Namespace => vec![c("Name", |v| s(v, "/name"))],
        Kind::Role | Kind::ClusterRole => vec![c("Name", name), c("Rules", rules)],
        Kind::RoleBinding => vec![
            c("Name", name),
            c("Cluster Role", |v| role_ref(v, "ClusterRole")),
            c("Role", |v| role_ref(v, "Role")),
            c("Subjects", subjects),
        ],
        Kind::ClusterRoleBinding => vec![
            c("Name", name),
            c("Cluster Role", |v| role_ref(v, "ClusterRole")),
            c("Subjects", subjects),
        ],
        Kind::User => vec![
            c("Username", |v| s(v, "/username")),
            c("Groups", |v| list(v, "/groups")),
            c("Enabled", |v| {
                (!v["disabled"].as_bool().unwrap_or(false)).to_string()
            }),
        ],
        Kind::Entity => vec![
            c("ID", name),
            c("Class", |v| s(v, "/entity_class")),
            c("OS", |v| s(v, "/system/os")),
            c("Subscriptions", |v| list(v, "/subscriptions")),
            c("Last Seen", |v| when(v, "/last_seen")),
        ],
        // One column for ENTITY/CHECK, which `event info` also takes.
        Kind::Event => vec![
            c("Entity/Check", |v| {
                format!(
                    "{}/{}",
                    s(v, "/entity/metadata/name"),
                    s(v, "/check/metadata/name")
                )
            }),
            c("Output", |v| {
                s(v, "/check/output").lines().next().unwrap_or("").into()
            }),
            c("Status", |v| s(v, "/check/status")),
            c("State", |v| s(v, "/check/state")),
            c("Silenced", |v| {
                let by = list(v, "/check/silenced");
                if by.is_empty() {
                    "false".into()
                } else {
                    format!("true ({by})")
                }
            }),
            c("Timestamp", |v| when(v, "/timestamp")),
            c("UUID", |v| s(v, "/id")),
        ],
        Kind::APIKey => vec![
            c("Name", name),
            c("Username", |v| s(v, "/username")),
            c("Created At", |v| when(v, "/created_at")),
        ],
        Kind::PostgresConfig => vec![
            c("Name", name),
            c("DSN", |v| crate::redact_dsn(&s(v, "/spec/dsn"))),
            c("Pool Size", |v| s(v, "/spec/pool_size")),
        ],
    }
}

fn rules(v: &Value) -> String {
    v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let names = list(r, "/resource_names");
            format!(
                "{} on {}{}",
                list(r, "/verbs"),
                list(r, "/resources"),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({names})")
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn role_ref(v: &Value, t: &str) -> String {
    if v.pointer("/role_ref/type").and_then(Value::as_str) == Some(t) {
        s(v, "/role_ref/name")
    } else {
        String::new()
    }
}

fn subjects(v: &Value) -> String {
    v["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| format!("{}:{}", s(x, "/type"), s(x, "/name")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Columns with a Namespace column after the first for namespaced kinds.
fn all_columns(kind: Kind) -> Vec<(&'static str, Cell)> {
    let mut c = columns(kind);
    if kind.namespaced() && kind != Kind::Event {
        c.insert(1, ("Namespace", |v| s(v, "/metadata/namespace")));
    } else if kind == Kind::Event {
        c.insert(1, ("Namespace", |v| s(v, "/entity/metadata/namespace")));
    }
    c
}

/// Text from agents and API clients, escaped so that no control sequence reaches the
/// terminal.
fn clean(t: &str) -> String {
    ward_io::text::one_line(t).into_owned()
}

/// `list` as a table: a header and a row per resource.
pub fn table(kind: Kind, items: &[Listed]) -> String {
    let cols = all_columns(kind);
    let mut rows = vec![cols.iter().map(|c| c.0.to_string()).collect::<Vec<_>>()];
    for it in items {
        rows.push(cols.iter().map(|c| clean(&(c.1)(&it.flat))).collect());
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// `info` as a list: a title, then `Field:  value` a line.
pub fn info(kind: Kind, item: &Listed) -> String {
    let cols = all_columns(kind);
    let title = match kind {
        Kind::Event => item.doc.metadata.name.clone(),
        _ => (cols[0].1)(&item.flat),
    };
    let width = cols.iter().map(|c| c.0.len()).max().unwrap_or(0) + 1;
    let mut out = format!("=== {}\n", clean(&title));
    for (label, cell) in &cols {
        let label = format!("{label}:");
        out.push_str(&format!("{label:<width$} {}\n", clean(&cell(&item.flat))));
    }
    out
}

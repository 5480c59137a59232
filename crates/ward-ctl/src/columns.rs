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

fn name(v: &Value) -> String {
    s(v, "/metadata/name")
}

fn columns(kind: Kind) -> Vec<(&'static str, Cell)> {
    match kind {
        Kind::CheckConfig => vec![
            ("Name", name),
            ("Command", |v| s(v, "/command")),
            ("Interval", |v| s(v, "/interval")),
            ("Cron", |v| s(v, "/cron")),
            ("Timeout", |v| s(v, "/timeout")),
            ("TTL", |v| s(v, "/ttl")),
            ("Subscriptions", |v| list(v, "/subscriptions")),
            ("Handlers", |v| list(v, "/handlers")),
            ("Assets", |v| list(v, "/runtime_assets")),
            ("Hooks", |v| {
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
            ("Publish?", |v| yes_no(v, "/publish")),
            ("Stdin?", |v| yes_no(v, "/stdin")),
            ("Metric Format", |v| s(v, "/output_metric_format")),
            ("Metric Handlers", |v| list(v, "/output_metric_handlers")),
        ],
        Kind::Handler => vec![
            ("Name", name),
            ("Type", |v| s(v, "/type")),
            ("Timeout", |v| s(v, "/timeout")),
            ("Filters", |v| list(v, "/filters")),
            ("Mutator", |v| s(v, "/mutator")),
            ("Execute", |v| match v["type"].as_str().unwrap_or("pipe") {
                "tcp" | "udp" => format!("SEND: {}:{}", s(v, "/socket/host"), s(v, "/socket/port")),
                "set" => format!("CALL: {}", list(v, "/handlers")),
                _ => format!("RUN: {}", s(v, "/command")),
            }),
            ("Environment Variables", |v| list(v, "/env_vars")),
            ("Assets", |v| list(v, "/runtime_assets")),
        ],
        Kind::EventFilter => vec![
            ("Name", name),
            ("Action", |v| s(v, "/action")),
            ("Expressions", |v| {
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
            ("Name", name),
            ("Command", |v| s(v, "/command")),
            ("Environment Variables", |v| list(v, "/env_vars")),
            ("Timeout", |v| s(v, "/timeout")),
            ("Assets", |v| list(v, "/runtime_assets")),
        ],
        Kind::HookConfig => vec![
            ("Name", name),
            ("Command", |v| s(v, "/command")),
            ("Timeout", |v| s(v, "/timeout")),
            ("Stdin?", |v| yes_no(v, "/stdin")),
        ],
        Kind::Asset => vec![
            ("Name", name),
            ("URL", |v| s(v, "/url")),
            ("Hash", |v| s(v, "/sha512").chars().take(7).collect()),
        ],
        Kind::Pipeline => vec![
            ("Name", name),
            ("Workflows", |v| {
                v["workflows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| s(w, "/name"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ],
        Kind::Silenced => vec![
            ("Name", name),
            ("Subscription", |v| s(v, "/subscription")),
            ("Check", |v| s(v, "/check")),
            ("Begin", |v| when(v, "/begin")),
            ("Expiration", |v| when(v, "/expire_at")),
            ("ExpireOnResolve", |v| yes_no(v, "/expire_on_resolve")),
            ("Creator", |v| s(v, "/creator")),
            ("Reason", |v| s(v, "/reason")),
        ],
        Kind::Namespace => vec![("Name", |v| s(v, "/name"))],
        Kind::Role | Kind::ClusterRole => vec![("Name", name), ("Rules", |v| rules(v))],
        Kind::RoleBinding => vec![
            ("Name", name),
            ("Cluster Role", |v| role_ref(v, "ClusterRole")),
            ("Role", |v| role_ref(v, "Role")),
            ("Subjects", subjects),
        ],
        Kind::ClusterRoleBinding => vec![
            ("Name", name),
            ("Cluster Role", |v| role_ref(v, "ClusterRole")),
            ("Subjects", subjects),
        ],
        Kind::User => vec![
            ("Username", |v| s(v, "/username")),
            ("Groups", |v| list(v, "/groups")),
            ("Enabled", |v| {
                (!v["disabled"].as_bool().unwrap_or(false)).to_string()
            }),
        ],
        Kind::Entity => vec![
            ("ID", name),
            ("Class", |v| s(v, "/entity_class")),
            ("OS", |v| s(v, "/system/os")),
            ("Subscriptions", |v| list(v, "/subscriptions")),
            ("Last Seen", |v| when(v, "/last_seen")),
        ],
        // One column for ENTITY/CHECK, which `event info` also takes.
        Kind::Event => vec![
            ("Entity/Check", |v| {
                format!(
                    "{}/{}",
                    s(v, "/entity/metadata/name"),
                    s(v, "/check/metadata/name")
                )
            }),
            ("Output", |v| {
                s(v, "/check/output").lines().next().unwrap_or("").into()
            }),
            ("Status", |v| s(v, "/check/status")),
            ("State", |v| s(v, "/check/state")),
            ("Silenced", |v| {
                let by = list(v, "/check/silenced");
                if by.is_empty() {
                    "false".into()
                } else {
                    format!("true ({by})")
                }
            }),
            ("Timestamp", |v| when(v, "/timestamp")),
            ("UUID", |v| s(v, "/id")),
        ],
        Kind::APIKey => vec![
            ("Name", name),
            ("Username", |v| s(v, "/username")),
            ("Created At", |v| when(v, "/created_at")),
        ],
        Kind::PostgresConfig => vec![
            ("Name", name),
            ("DSN", |v| crate::redact_dsn(&s(v, "/spec/dsn"))),
            ("Pool Size", |v| s(v, "/spec/pool_size")),
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

//! The fields and labels each kind of resource offers selectors, as Sensu names them.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    ApiKey,
    Asset,
    Check,
    ClusterRole,
    ClusterRoleBinding,
    Entity,
    Event,
    Extension,
    Filter,
    Handler,
    Hook,
    Mutator,
    Namespace,
    Pipeline,
    Role,
    RoleBinding,
    Silenced,
    User,
}

/// Sensu's type names, compared ignoring case and `_` so `check_config` works too.
pub(super) const KINDS: &[(&str, Kind)] = &[
    ("apikey", Kind::ApiKey),
    ("asset", Kind::Asset),
    ("checkconfig", Kind::Check),
    ("clusterrole", Kind::ClusterRole),
    ("clusterrolebinding", Kind::ClusterRoleBinding),
    ("entity", Kind::Entity),
    ("event", Kind::Event),
    ("extension", Kind::Extension),
    ("eventfilter", Kind::Filter),
    ("handler", Kind::Handler),
    ("hookconfig", Kind::Hook),
    ("mutator", Kind::Mutator),
    ("namespace", Kind::Namespace),
    ("pipeline", Kind::Pipeline),
    ("role", Kind::Role),
    ("rolebinding", Kind::RoleBinding),
    ("silenced", Kind::Silenced),
    ("user", Kind::User),
];

pub(super) fn kind_of(name: &str) -> Option<Kind> {
    let norm = || {
        name.chars()
            .filter(|&c| c != '_')
            .map(|c| c.to_ascii_lowercase())
    };
    KINDS
        .iter()
        .find(|(k, _)| k.chars().eq(norm()))
        .map(|&(_, kind)| kind)
}

impl Kind {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Kind::ApiKey => "api_key",
            Kind::Asset => "asset",
            Kind::Check => "check",
            Kind::ClusterRole => "clusterrole",
            Kind::ClusterRoleBinding => "clusterrolebinding",
            Kind::Entity => "entity",
            Kind::Event => "event",
            Kind::Extension => "extension",
            Kind::Filter => "filter",
            Kind::Handler => "handler",
            Kind::Hook => "hook",
            Kind::Mutator => "mutator",
            Kind::Namespace => "namespace",
            Kind::Pipeline => "pipeline",
            Kind::Role => "role",
            Kind::RoleBinding => "rolebinding",
            Kind::Silenced => "silenced",
            Kind::User => "user",
        }
    }

    /// The field names after the prefix, `labels.*` aside.
    pub(super) fn names(self) -> &'static [&'static str] {
        match self {
            Kind::ApiKey => &["name", "username"],
            Kind::Asset => &["name", "namespace", "filters"],
            Kind::Check => &[
                "name",
                "namespace",
                "handlers",
                "publish",
                "round_robin",
                "runtime_assets",
                "subscriptions",
                "pipelines",
            ],
            Kind::ClusterRole => &["name"],
            Kind::ClusterRoleBinding => &["name", "role_ref.name", "role_ref.type"],
            Kind::RoleBinding => &["name", "namespace", "role_ref.name", "role_ref.type"],
            Kind::Entity => &[
                "name",
                "namespace",
                "deregister",
                "entity_class",
                "subscriptions",
                "user",
            ],
            Kind::Event => &[
                "name",
                "namespace",
                "is_silenced",
                "timestamp",
                "check.handlers",
                "check.is_silenced",
                "check.last_ok",
                "check.name",
                "check.publish",
                "check.round_robin",
                "check.runtime_assets",
                "check.state",
                "check.status",
                "check.subscriptions",
                "entity.deregister",
                "entity.name",
                "entity.entity_class",
                "entity.subscriptions",
            ],
            Kind::Filter => &["name", "namespace", "action", "runtime_assets"],
            Kind::Handler => &[
                "name",
                "namespace",
                "filters",
                "handlers",
                "mutator",
                "type",
            ],
            Kind::Extension | Kind::Hook | Kind::Pipeline | Kind::Role => &["name", "namespace"],
            Kind::Mutator => &["name", "namespace", "runtime_assets"],
            Kind::Namespace => &["name"],
            Kind::Silenced => &[
                "name",
                "namespace",
                "check",
                "creator",
                "expire_on_resolve",
                "subscription",
                "reason",
            ],
            Kind::User => &["username", "disabled", "groups"],
        }
    }

    /// Whether `<prefix>.labels.<key>` fields exist (not for users and namespaces).
    pub(super) fn has_label_fields(self) -> bool {
        !matches!(self, Kind::User | Kind::Namespace)
    }
}

pub(super) fn meta<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get("metadata")?.get(key)
}

pub(super) fn own_labels(v: &Value) -> Option<&Map<String, Value>> {
    meta(v, "labels")?.as_object()
}

/// A label's value; only scalars count.
pub(super) fn label_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A string field; absent or null is "" (Go's zero value).
pub(super) fn text(v: Option<&Value>) -> Cow<'_, str> {
    v.and_then(label_text).unwrap_or(Cow::Borrowed(""))
}

pub(super) fn flag(v: Option<&Value>) -> Cow<'static, str> {
    Cow::Borrowed(if v == Some(&Value::Bool(true)) {
        "true"
    } else {
        "false"
    })
}

pub(super) fn int(v: Option<&Value>) -> Cow<'static, str> {
    let mut buf = itoa::Buffer::new();
    let s = match v {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => buf.format(i),
            (None, Some(u), _) => buf.format(u),
            (None, None, Some(f)) => buf.format(f as i64),
            _ => "0",
        },
        _ => "0",
    };
    Cow::Owned(s.to_string())
}

/// A list field, comma-joined.
pub(super) fn join(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        Some(Value::Array(items)) => match items.as_slice() {
            [one] => text(Some(one)),
            _ => {
                let parts: Vec<Cow<str>> = items.iter().map(|i| text(Some(i))).collect();
                Cow::Owned(parts.join(","))
            }
        },
        _ => Cow::Borrowed(""),
    }
}

pub(super) fn name_of(v: &Value) -> Cow<'_, str> {
    text(meta(v, "name"))
}

/// One field of a resource, computed alone. `key` is the full name, e.g. `check.name`.
pub fn field<'v>(kind_name: &str, flat: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    kind_of(kind_name).and_then(|k| field_of(k, flat, key))
}

pub(super) fn field_of<'v>(kind: Kind, r: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    let rest = key.strip_prefix(kind.prefix())?.strip_prefix('.')?;
    if kind.has_label_fields() {
        if let Some(label) = rest.strip_prefix("labels.") {
            return event_label(kind, r, label);
        }
    }
    if kind == Kind::Event {
        if let Some(l) = rest.strip_prefix("check.labels.") {
            return own_labels(r.get("check")?)?.get(l).and_then(label_text);
        }
        if let Some(l) = rest.strip_prefix("entity.labels.") {
            return own_labels(r.get("entity")?)?.get(l).and_then(label_text);
        }
    }
    let get = |k: &str| r.get(k);
    Some(match (kind, rest) {
        (Kind::Namespace, "name") => match r.get("name") {
            Some(n) => text(Some(n)),
            None => name_of(r),
        },
        (Kind::Silenced, "name") => silenced_name(r),
        (Kind::User, "username") => text(get("username")),
        (Kind::User, "disabled") => flag(get("disabled")),
        (Kind::User, "groups") => join(get("groups")),
        (Kind::User | Kind::Namespace, _) => return None,
        (Kind::Event, _) => return event_field(r, rest),
        (_, "name") => name_of(r),
        (Kind::ClusterRole | Kind::ClusterRoleBinding | Kind::ApiKey, "namespace") => return None,
        (_, "namespace") => text(meta(r, "namespace")),
        (Kind::ApiKey, "username") => text(get("username")),
        (Kind::Asset | Kind::Handler, "filters") => join(get("filters")),
        (Kind::Check, "handlers") | (Kind::Handler, "handlers") => join(get("handlers")),
        (Kind::Check, "publish") => flag(get("publish")),
        (Kind::Check, "round_robin") => flag(get("round_robin")),
        (Kind::Check | Kind::Filter | Kind::Mutator, "runtime_assets") => {
            join(get("runtime_assets"))
        }
        (Kind::Check | Kind::Entity, "subscriptions") => join(get("subscriptions")),
        (Kind::Check, "pipelines") => pipelines(get("pipelines")),
        (Kind::Entity, "deregister") => flag(get("deregister")),
        (Kind::Entity, "entity_class") => text(get("entity_class")),
        (Kind::Entity, "user") => text(get("user")),
        (Kind::Filter, "action") => text(get("action")),
        (Kind::Handler, "mutator") => text(get("mutator")),
        (Kind::Handler, "type") => text(get("type")),
        (Kind::RoleBinding | Kind::ClusterRoleBinding, "role_ref.name") => {
            text(get("role_ref").and_then(|v| v.get("name")))
        }
        (Kind::RoleBinding | Kind::ClusterRoleBinding, "role_ref.type") => {
            text(get("role_ref").and_then(|v| v.get("type")))
        }
        (Kind::Silenced, "check") => text(get("check")),
        (Kind::Silenced, "creator") => text(get("creator")),
        (Kind::Silenced, "expire_on_resolve") => flag(get("expire_on_resolve")),
        (Kind::Silenced, "subscription") => text(get("subscription")),
        (Kind::Silenced, "reason") => text(get("reason")),
        _ => return None,
    })
}

/// A `labels.<key>` field: the resource's own label; for an event the check's label wins
/// over the entity's, which wins over the event's (the order Sensu merges them in).
pub(super) fn event_label<'v>(kind: Kind, r: &'v Value, label: &str) -> Option<Cow<'v, str>> {
    let mut sources = [None, None, own_labels(r)];
    if kind == Kind::Event {
        sources[0] = r.get("check").and_then(own_labels);
        sources[1] = r.get("entity").and_then(own_labels);
    }
    sources
        .into_iter()
        .flatten()
        .find_map(|m| m.get(label).and_then(label_text))
}

pub(super) fn event_field<'v>(r: &'v Value, rest: &str) -> Option<Cow<'v, str>> {
    let check = r.get("check");
    let entity = r.get("entity");
    let c = |k: &str| check.and_then(|c| c.get(k));
    let e = |k: &str| entity.and_then(|e| e.get(k));
    Some(match rest {
        "name" => name_of(r),
        "namespace" => text(meta(r, "namespace")),
        "is_silenced" | "check.is_silenced" => {
            let silenced = c("silenced")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            Cow::Borrowed(if silenced { "true" } else { "false" })
        }
        "timestamp" => int(r.get("timestamp")),
        "check.handlers" => join(c("handlers")),
        "check.last_ok" => int(c("last_ok")),
        "check.name" => check.map_or(Cow::Borrowed(""), name_of),
        "check.publish" => flag(c("publish")),
        "check.round_robin" => flag(c("round_robin")),
        "check.runtime_assets" => join(c("runtime_assets")),
        "check.state" => text(c("state")),
        "check.status" => int(c("status")),
        "check.subscriptions" => join(c("subscriptions")),
        "entity.deregister" => flag(e("deregister")),
        "entity.name" => entity.map_or(Cow::Borrowed(""), name_of),
        "entity.entity_class" => text(e("entity_class")),
        "entity.subscriptions" => join(e("subscriptions")),
        _ => return None,
    })
}

/// Sensu names a silence `subscription:check`, `*` standing for either when unset.
pub(super) fn silenced_name(r: &Value) -> Cow<'_, str> {
    let name = name_of(r);
    if !name.is_empty() {
        return name;
    }
    let part = |k: &str| match text(r.get(k)) {
        s if s.is_empty() => Cow::Borrowed("*"),
        s => s,
    };
    Cow::Owned(format!("{}:{}", part("subscription"), part("check")))
}

/// A check's pipelines as Sensu writes their ids: `core/v2.Pipeline(Name=x)`.
pub(super) fn pipelines(v: Option<&Value>) -> Cow<'_, str> {
    let Some(Value::Array(items)) = v else {
        return Cow::Borrowed("");
    };
    let ids: Vec<String> = items
        .iter()
        .map(|p| {
            let f = |k: &str| text(p.get(k));
            format!("{}.{}(Name={})", f("api_version"), f("type"), f("name"))
        })
        .collect();
    Cow::Owned(ids.join(","))
}

/// Every selectable field of a resource given as Sensu's flat JSON, under Sensu's names.
/// Unknown kinds have none.
pub fn fields(kind_name: &str, flat: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(kind) = kind_of(kind_name) else {
        return out;
    };
    let prefix = kind.prefix();
    for name in kind.names() {
        let key = format!("{prefix}.{name}");
        if let Some(v) = field_of(kind, flat, &key) {
            out.insert(key, v.into_owned());
        }
    }
    if kind.has_label_fields() {
        let mut add = |m: Option<&Map<String, Value>>, infix: &str| {
            for (k, v) in m.into_iter().flatten() {
                if let Some(v) = label_text(v) {
                    out.insert(format!("{prefix}.{infix}{k}"), v.into_owned());
                }
            }
        };
        // Later inserts win: event, then entity, then check labels.
        add(own_labels(flat), "labels.");
        if kind == Kind::Event {
            let entity = flat.get("entity").and_then(own_labels);
            let check = flat.get("check").and_then(own_labels);
            add(entity, "labels.");
            add(check, "labels.");
            add(entity, "entity.labels.");
            add(check, "check.labels.");
        }
    }
    out
}

pub(super) fn label_map(m: Option<&Map<String, Value>>) -> BTreeMap<String, String> {
    m.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), label_text(v)?.into_owned())))
        .collect()
}

/// The labels a label selector sees first: `metadata.labels` (users have none in Sensu).
pub fn labels(kind_name: &str, flat: &Value) -> BTreeMap<String, String> {
    if kind_of(kind_name) == Some(Kind::User) {
        return BTreeMap::new();
    }
    label_map(own_labels(flat))
}

/// An event's second chance: its entity's and its check's labels merged, the check's
/// winning. A label selector admits an event if it matches either this or [`labels`].
pub fn event_labels(flat: &Value) -> BTreeMap<String, String> {
    let mut out = label_map(flat.get("entity").and_then(own_labels));
    out.extend(label_map(flat.get("check").and_then(own_labels)));
    out
}

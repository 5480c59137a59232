//! The per-kind flags of `KIND create NAME` and `KIND update NAME` (sensuctl's
//! `*/create.go` flags), as the API's flat fields.

use clap::Args;
use serde_json::{json, Map, Value};

/// The fields a command line sets.
pub trait Fields {
    /// Only the fields given (an update changes just these).
    fn fields(&self) -> Result<Map<String, Value>, String>;
    /// Defaults a new resource gets when the flag is not given.
    fn defaults(&self, _m: &mut Map<String, Value>) {}
}

/// `a, b,c` → `["a","b","c"]`; empty → `[]` (sensuctl's SafeSplitCSV).
pub fn csv(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Default)]
struct B(Map<String, Value>);

impl B {
    fn put(mut self, k: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn text(self, k: &str, v: &Option<String>) -> Self {
        self.put(k, v.clone().map(Value::from))
    }
    fn list(self, k: &str, v: &Option<String>) -> Self {
        self.put(k, v.as_deref().map(|s| json!(csv(s))))
    }
    fn num<T: Into<Value> + Copy>(self, k: &str, v: Option<T>) -> Self {
        self.put(k, v.map(Into::into))
    }
    fn done(self) -> Result<Map<String, Value>, String> {
        Ok(self.0)
    }
}

/// A kind set only from files (`create -f`) or `edit`.
#[derive(Debug, Args)]
pub struct NoFields {}

impl Fields for NoFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        Ok(Map::new())
    }
}

#[derive(Debug, Args)]
pub struct CheckFields {
    /// The command the check runs.
    #[arg(long)]
    command: Option<String>,
    /// Seconds between runs.
    #[arg(long)]
    interval: Option<u32>,
    /// A cron schedule instead of an interval.
    #[arg(long)]
    cron: Option<String>,
    /// Comma-separated subscriptions its requests go to.
    #[arg(long)]
    subscriptions: Option<String>,
    /// Comma-separated handlers of its events.
    #[arg(long)]
    handlers: Option<String>,
    /// Seconds before the command is killed.
    #[arg(long)]
    timeout: Option<u32>,
    /// Seconds a result stays valid.
    #[arg(long)]
    ttl: Option<i64>,
    #[arg(long = "runtime-assets")]
    runtime_assets: Option<String>,
    #[arg(long = "proxy-entity-name")]
    proxy_entity_name: Option<String>,
    /// Publish check requests (a new check does unless --publish=false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    publish: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    stdin: Option<bool>,
    #[arg(long = "round-robin", num_args = 0..=1, default_missing_value = "true")]
    round_robin: Option<bool>,
    #[arg(long = "output-metric-format")]
    output_metric_format: Option<String>,
    #[arg(long = "output-metric-handlers")]
    output_metric_handlers: Option<String>,
}

impl Fields for CheckFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("command", &self.command)
            .num("interval", self.interval)
            .text("cron", &self.cron)
            .list("subscriptions", &self.subscriptions)
            .list("handlers", &self.handlers)
            .num("timeout", self.timeout)
            .num("ttl", self.ttl)
            .list("runtime_assets", &self.runtime_assets)
            .text("proxy_entity_name", &self.proxy_entity_name)
            .num("publish", self.publish)
            .num("stdin", self.stdin)
            .num("round_robin", self.round_robin)
            .text("output_metric_format", &self.output_metric_format)
            .list("output_metric_handlers", &self.output_metric_handlers)
            .done()
    }
    fn defaults(&self, m: &mut Map<String, Value>) {
        m.entry("publish").or_insert(Value::Bool(true));
    }
}

#[derive(Debug, Args)]
pub struct HandlerFields {
    /// pipe, tcp, udp or set.
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(long)]
    command: Option<String>,
    #[arg(long)]
    timeout: Option<u32>,
    /// Comma-separated filters.
    #[arg(long)]
    filters: Option<String>,
    #[arg(long)]
    mutator: Option<String>,
    /// A set handler's handlers, comma-separated.
    #[arg(long)]
    handlers: Option<String>,
    /// Comma-separated KEY=VALUE.
    #[arg(long = "env-vars")]
    env_vars: Option<String>,
    #[arg(long = "runtime-assets")]
    runtime_assets: Option<String>,
    #[arg(long = "socket-host")]
    socket_host: Option<String>,
    #[arg(long = "socket-port")]
    socket_port: Option<u16>,
}

impl Fields for HandlerFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        let socket = (self.socket_host.is_some() || self.socket_port.is_some()).then(|| {
            let mut s = Map::new();
            if let Some(h) = &self.socket_host {
                s.insert("host".into(), h.clone().into());
            }
            if let Some(p) = self.socket_port {
                s.insert("port".into(), p.into());
            }
            Value::Object(s)
        });
        B::default()
            .text("type", &self.kind)
            .text("command", &self.command)
            .num("timeout", self.timeout)
            .list("filters", &self.filters)
            .text("mutator", &self.mutator)
            .list("handlers", &self.handlers)
            .list("env_vars", &self.env_vars)
            .list("runtime_assets", &self.runtime_assets)
            .put("socket", socket)
            .done()
    }
    fn defaults(&self, m: &mut Map<String, Value>) {
        m.entry("type").or_insert_with(|| "pipe".into());
    }
}

#[derive(Debug, Args)]
pub struct FilterFields {
    /// allow or deny.
    #[arg(long)]
    action: Option<String>,
    /// Comma-separated JavaScript expressions.
    #[arg(long)]
    expressions: Option<String>,
    #[arg(long = "runtime-assets")]
    runtime_assets: Option<String>,
}

impl Fields for FilterFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("action", &self.action)
            .list("expressions", &self.expressions)
            .list("runtime_assets", &self.runtime_assets)
            .done()
    }
}

#[derive(Debug, Args)]
pub struct MutatorFields {
    #[arg(long)]
    command: Option<String>,
    #[arg(long)]
    timeout: Option<u32>,
    #[arg(long = "env-vars")]
    env_vars: Option<String>,
    #[arg(long = "runtime-assets")]
    runtime_assets: Option<String>,
    /// pipe or javascript.
    #[arg(long = "type")]
    kind: Option<String>,
    /// A javascript mutator's expression.
    #[arg(long)]
    eval: Option<String>,
}

impl Fields for MutatorFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("command", &self.command)
            .num("timeout", self.timeout)
            .list("env_vars", &self.env_vars)
            .list("runtime_assets", &self.runtime_assets)
            .text("type", &self.kind)
            .text("eval", &self.eval)
            .done()
    }
}

#[derive(Debug, Args)]
pub struct HookFields {
    #[arg(long)]
    command: Option<String>,
    #[arg(long)]
    timeout: Option<u32>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    stdin: Option<bool>,
    #[arg(long = "runtime-assets")]
    runtime_assets: Option<String>,
}

impl Fields for HookFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("command", &self.command)
            .num("timeout", self.timeout)
            .num("stdin", self.stdin)
            .list("runtime_assets", &self.runtime_assets)
            .done()
    }
}

#[derive(Debug, Args)]
pub struct AssetFields {
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    sha512: Option<String>,
    /// Comma-separated entity filters.
    #[arg(long)]
    filters: Option<String>,
}

impl Fields for AssetFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("url", &self.url)
            .text("sha512", &self.sha512)
            .list("filters", &self.filters)
            .done()
    }
}

#[derive(Debug, Args)]
pub struct EntityFields {
    /// agent or proxy.
    #[arg(long = "entity-class")]
    entity_class: Option<String>,
    #[arg(long)]
    subscriptions: Option<String>,
}

impl Fields for EntityFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("entity_class", &self.entity_class)
            .list("subscriptions", &self.subscriptions)
            .done()
    }
    fn defaults(&self, m: &mut Map<String, Value>) {
        m.entry("entity_class").or_insert_with(|| "proxy".into());
    }
}

/// A role's one rule.
#[derive(Debug, Args)]
pub struct RuleFields {
    /// Comma-separated verbs: get, list, create, update, delete, or *.
    #[arg(long, value_delimiter = ',')]
    verb: Vec<String>,
    /// Comma-separated resource types (checks, events, …) or *.
    #[arg(long, value_delimiter = ',')]
    resource: Vec<String>,
    /// Comma-separated names the rule is limited to.
    #[arg(long = "resource-name", value_delimiter = ',')]
    resource_name: Vec<String>,
}

impl Fields for RuleFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        if self.verb.is_empty() && self.resource.is_empty() && self.resource_name.is_empty() {
            return Ok(Map::new());
        }
        if self.verb.is_empty() || self.resource.is_empty() {
            return Err("a rule needs --verb and --resource".into());
        }
        let mut rule = json!({"verbs": self.verb, "resources": self.resource});
        if !self.resource_name.is_empty() {
            rule["resource_names"] = json!(self.resource_name);
        }
        B::default().put("rules", Some(json!([rule]))).done()
    }
}

fn subjects(users: &[String], groups: &[String]) -> Option<Value> {
    let s: Vec<Value> = users
        .iter()
        .map(|u| json!({"type": "User", "name": u}))
        .chain(groups.iter().map(|g| json!({"type": "Group", "name": g})))
        .collect();
    (!s.is_empty()).then(|| json!(s))
}

#[derive(Debug, Args)]
pub struct BindingFields {
    /// The role it binds (in its namespace).
    #[arg(long, conflicts_with = "cluster_role")]
    role: Option<String>,
    /// The cluster role it binds.
    #[arg(long = "cluster-role")]
    cluster_role: Option<String>,
    /// Users, comma-separated.
    #[arg(long, value_delimiter = ',')]
    user: Vec<String>,
    /// Groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    group: Vec<String>,
}

impl Fields for BindingFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        let role_ref = match (&self.role, &self.cluster_role) {
            (Some(r), _) => Some(json!({"type": "Role", "name": r})),
            (_, Some(c)) => Some(json!({"type": "ClusterRole", "name": c})),
            _ => None,
        };
        B::default()
            .put("role_ref", role_ref)
            .put("subjects", subjects(&self.user, &self.group))
            .done()
    }
}

#[derive(Debug, Args)]
pub struct ClusterBindingFields {
    /// The cluster role it binds.
    #[arg(long = "cluster-role")]
    cluster_role: Option<String>,
    #[arg(long, value_delimiter = ',')]
    user: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    group: Vec<String>,
}

impl Fields for ClusterBindingFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .put(
                "role_ref",
                self.cluster_role
                    .as_ref()
                    .map(|c| json!({"type": "ClusterRole", "name": c})),
            )
            .put("subjects", subjects(&self.user, &self.group))
            .done()
    }
}

#[derive(Debug, Args)]
pub struct SilencedFields {
    /// The subscription silenced (with --check: that check there only).
    #[arg(long)]
    subscription: Option<String>,
    /// The check silenced.
    #[arg(long)]
    check: Option<String>,
    /// When it starts: RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds.
    #[arg(long)]
    begin: Option<String>,
    /// Seconds until it expires (-1: never).
    #[arg(long, allow_hyphen_values = true)]
    expire: Option<i64>,
    /// Cleared when the silenced check resolves.
    #[arg(long = "expire-on-resolve", num_args = 0..=1, default_missing_value = "true")]
    expire_on_resolve: Option<bool>,
    #[arg(long)]
    reason: Option<String>,
}

fn unix_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("--begin {s:?}: not RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds"))
}

impl Fields for SilencedFields {
    fn fields(&self) -> Result<Map<String, Value>, String> {
        B::default()
            .text("subscription", &self.subscription)
            .text("check", &self.check)
            .put(
                "begin",
                self.begin
                    .as_deref()
                    .map(unix_time)
                    .transpose()?
                    .map(Value::from),
            )
            .num("expire", self.expire)
            .num("expire_on_resolve", self.expire_on_resolve)
            .text("reason", &self.reason)
            .done()
    }
}

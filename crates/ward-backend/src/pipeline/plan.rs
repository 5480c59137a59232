//! From an event to the handler runs it needs: `set` handlers expanded (once each, no
//! cycles, at most [`MAX_SET_DEPTH`] deep), filters applied, payloads and timeouts chosen.
//! Reads the store: called off the runtime's threads.

use super::{Counters, EventCtx, Reason, DEFAULT_TIMEOUT, MAX_SET_DEPTH};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use ward_store::Store;
use ward_types::{Kind, Resource};

/// A handler ready to run.
pub(super) struct Run {
    pub(super) name: String,
    pub(super) action: Action,
    pub(super) payload: Arc<[u8]>,
    pub(super) timeout: Duration,
}

pub(super) enum Action {
    Pipe {
        command: String,
        env: Vec<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Udp {
        host: String,
        port: u16,
    },
}

/// Resolves an event's handlers: sets expanded, filters applied, each handler once.
pub(super) fn plan(store: &Store, counters: &Counters, ctx: &EventCtx, event: &Value) -> Vec<Run> {
    let names: Vec<String> = event
        .pointer("/check/handlers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut x = Expander {
        store,
        counters,
        ctx,
        event,
        seen: HashSet::new(),
        path: Vec::new(),
        logged: HashSet::new(),
        leaves: Vec::new(),
    };
    x.expand(&names, 0);
    let leaves = std::mem::take(&mut x.leaves);
    let mut json: Option<Arc<[u8]>> = None;
    let mut runs = Vec::new();
    for r in leaves {
        let name = r.metadata.name.clone();
        let payload = match r.spec.get("mutator").and_then(Value::as_str).unwrap_or("") {
            "" | "json" => json
                .get_or_insert_with(|| Arc::from(serde_json::to_vec(event).unwrap_or_default()))
                .clone(),
            "only_check_output" => Arc::from(
                event
                    .pointer("/check/output")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .as_bytes(),
            ),
            other => {
                x.problem(
                    &name,
                    Reason::Unsupported,
                    format!("mutator {other:?} is not supported yet (only json and only_check_output); the handler is skipped"),
                );
                continue;
            }
        };
        let timeout = Duration::from_secs(
            r.spec
                .get("timeout")
                .and_then(Value::as_u64)
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_TIMEOUT),
        );
        let ty = r.spec.get("type").and_then(Value::as_str).unwrap_or("");
        let action = match ty {
            "pipe" => {
                let command = r
                    .spec
                    .get("command")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if command.is_empty() {
                    x.problem(
                        &name,
                        Reason::Config,
                        "a pipe handler without a command".into(),
                    );
                    continue;
                }
                let mut env = Vec::new();
                for kv in string_list(&r.spec, "env_vars") {
                    match kv.split_once('=') {
                        Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
                        // A warning, not a failure: the handler runs without it.
                        _ => tracing::warn!(
                            namespace = %ctx.namespace,
                            handler = %name,
                            "handler: an env_vars entry ({} bytes, not shown: it may hold a secret) is not KEY=VALUE; it is left out",
                            kv.len()
                        ),
                    }
                }
                Action::Pipe { command, env }
            }
            "tcp" | "udp" => {
                let host = r
                    .spec
                    .get("socket")
                    .and_then(|s| s.get("host"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let port = r
                    .spec
                    .get("socket")
                    .and_then(|s| s.get("port"))
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0);
                let Some(port) = port.filter(|_| !host.is_empty()) else {
                    x.problem(
                        &name,
                        Reason::Config,
                        format!("a {ty} handler needs socket.host and socket.port (1-65535); unsupported without them"),
                    );
                    continue;
                };
                let host = host.to_string();
                if ty == "tcp" {
                    Action::Tcp { host, port }
                } else {
                    Action::Udp { host, port }
                }
            }
            other => {
                x.problem(
                    &name,
                    Reason::Config,
                    format!("{other:?} is not a handler type Ward runs"),
                );
                continue;
            }
        };
        runs.push(Run {
            name,
            action,
            payload,
            timeout,
        });
    }
    runs
}

fn string_list<'a>(spec: &'a serde_json::Map<String, Value>, key: &str) -> Vec<&'a str> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

struct Expander<'a> {
    store: &'a Store,
    counters: &'a Counters,
    ctx: &'a EventCtx,
    event: &'a Value,
    /// Handlers and sets already taken for this event.
    seen: HashSet<String>,
    /// The sets being expanded, outermost first.
    path: Vec<String>,
    /// Problems already logged for this event.
    logged: HashSet<(String, &'static str)>,
    leaves: Vec<Resource>,
}

impl Expander<'_> {
    /// Logs and counts a problem with one handler, once per event.
    fn problem(&mut self, handler: &str, reason: Reason, what: String) {
        if self.logged.insert((handler.to_string(), reason.label())) {
            self.ctx.fail(self.counters, handler, reason, &what, "");
        }
    }

    fn expand(&mut self, names: &[String], depth: usize) {
        for name in names {
            if self.path.contains(name) {
                let cycle = format!("{} -> {name}", self.path.join(" -> "));
                self.problem(
                    name,
                    Reason::Set,
                    format!("handler sets form a cycle ({cycle}); not followed"),
                );
                continue;
            }
            if !self.seen.insert(name.clone()) {
                continue;
            }
            let r = match self.store.get(Kind::Handler, &self.ctx.namespace, name) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.problem(
                        name,
                        Reason::NotFound,
                        format!("no handler {name:?} in namespace {:?}", self.ctx.namespace),
                    );
                    continue;
                }
                Err(e) => {
                    self.problem(name, Reason::Store, format!("cannot read the handler: {e}"));
                    continue;
                }
            };
            if !self.passes(&r) {
                continue;
            }
            if r.spec.get("type").and_then(Value::as_str) == Some("set") {
                if depth >= MAX_SET_DEPTH {
                    self.problem(
                        name,
                        Reason::Set,
                        format!(
                            "handler sets nest deeper than {MAX_SET_DEPTH} levels; not followed"
                        ),
                    );
                    continue;
                }
                let members: Vec<String> = string_list(&r.spec, "handlers")
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                self.path.push(name.clone());
                self.expand(&members, depth + 1);
                self.path.pop();
            } else {
                self.leaves.push(r);
            }
        }
    }

    /// The handler's filters and what it needs: false when it must not run for this event.
    fn passes(&mut self, r: &Resource) -> bool {
        let name = &r.metadata.name;
        for field in ["runtime_assets", "secrets"] {
            let present = match r.spec.get(field) {
                None | Some(Value::Null) => false,
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if present {
                self.problem(
                    name,
                    Reason::Unsupported,
                    format!("{field} are not supported yet; the handler is skipped"),
                );
                return false;
            }
        }
        for f in string_list(&r.spec, "filters") {
            let pass = match f {
                // Applied to every event before this point.
                "is_incident" => true,
                "not_silenced" => {
                    self.event
                        .pointer("/check/is_silenced")
                        .and_then(Value::as_bool)
                        != Some(true)
                }
                "has_metrics" => self.event.get("metrics").is_some_and(|m| !m.is_null()),
                other => {
                    self.problem(
                        name,
                        Reason::Unsupported,
                        format!("filter {other:?}: named filters are not supported yet (built in: is_incident, not_silenced, has_metrics); the handler is skipped"),
                    );
                    return false;
                }
            };
            if !pass {
                self.counters.filtered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(handler = %name, filter = f, entity = %self.ctx.entity, check = %self.ctx.check, "filtered");
                return false;
            }
        }
        true
    }
}

//! From an event to its workflows, as Sensu's pipelined builds them:
//!
//! - every Pipeline the event names (`pipelines`, or its check's `pipelines`): each of its
//!   `workflows`, in order;
//! - the *legacy pipeline* when the check (or `metrics`) names `handlers`: one workflow per
//!   handler, `set`s expanded, sorted by name; its filters are the handler's `filters`,
//!   its mutator the handler's `mutator`.
//!
//! Both run independently (a handler named both ways runs twice, as in Sensu). Reads only
//! the in-memory [`Snapshot`].

use super::config::Snapshot;
use super::{Counters, EventCtx, Reason, MAX_SET_DEPTH};
use crate::agentd::keepalived::KEEPALIVE_HANDLER;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use ward_types::{Kind, Resource};

/// Filters, an optional mutator and a handler.
pub(super) struct Workflow {
    /// `PIPELINE/WORKFLOW`, or the handler's name in the legacy pipeline: for logs.
    pub(super) label: String,
    /// Filter names, in order (a legacy workflow's own and those of the sets around it).
    pub(super) filters: Vec<String>,
    /// None: the built-in `json`.
    pub(super) mutator: Option<String>,
    pub(super) handler: Arc<Resource>,
}

/// Strings of a list field.
pub(super) fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The event's workflows. Problems (a missing pipeline or handler, a cycle of sets) are
/// logged and counted once per event and leave out only what they concern.
pub(super) fn workflows(
    snap: &Snapshot,
    counters: &Counters,
    ctx: &EventCtx,
    event: &Value,
) -> Vec<Workflow> {
    let mut out = Vec::new();
    let mut logged = HashSet::new();
    let mut problem = |name: &str, reason: Reason, what: String| {
        if logged.insert((name.to_string(), reason.label())) {
            ctx.fail(counters, name, reason, &what, "");
        }
    };
    // Pipelines.
    let refs = match event.get("pipelines").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.clone(),
        _ => event
            .pointer("/check/pipelines")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    for r in &refs {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let ty = r.get("type").and_then(Value::as_str).unwrap_or("Pipeline");
        if ty != "Pipeline" {
            problem(
                name,
                Reason::Config,
                format!("pipeline reference of type {ty:?}: only core/v2 Pipeline is run"),
            );
            continue;
        }
        let Some(p) = snap.get(Kind::Pipeline, &ctx.namespace, name) else {
            problem(
                name,
                Reason::NotFound,
                format!("no pipeline {name:?} in namespace {:?}", ctx.namespace),
            );
            continue;
        };
        for wf in p
            .spec
            .get("workflows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let wf_name = wf.get("name").and_then(Value::as_str).unwrap_or("");
            let label = format!("{name}/{wf_name}");
            let handler_name = wf
                .pointer("/handler/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let handler_type = wf
                .pointer("/handler/type")
                .and_then(Value::as_str)
                .unwrap_or("Handler");
            let kind = match handler_type {
                "Handler" => Kind::Handler,
                "TCPStreamHandler" => Kind::TCPStreamHandler,
                other => {
                    problem(
                        &label,
                        Reason::Unsupported,
                        format!("handler type {other:?} is not supported (core/v2 Handler or pipeline/v1 TCPStreamHandler); the workflow is skipped"),
                    );
                    continue;
                }
            };
            let Some(h) = snap.get(kind, &ctx.namespace, handler_name) else {
                problem(
                    &label,
                    Reason::NotFound,
                    format!(
                        "no {handler_type} {handler_name:?} in namespace {:?}",
                        ctx.namespace
                    ),
                );
                continue;
            };
            if h.spec.get("type").and_then(Value::as_str) == Some("set") {
                problem(
                    &label,
                    Reason::Set,
                    format!("handler {handler_name:?} is a set; a workflow names one handler (as in Sensu)"),
                );
                continue;
            }
            let filters = wf
                .get("filters")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let mutator = wf
                .pointer("/mutator/name")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            out.push(Workflow {
                label,
                filters,
                mutator,
                handler: h.clone(),
            });
        }
    }
    // The legacy pipeline.
    let mut names: Vec<String> = strings(event.pointer("/check/handlers"))
        .into_iter()
        .map(str::to_string)
        .collect();
    for h in strings(event.pointer("/metrics/handlers")) {
        if !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    // Keepalive events name Sensu's `keepalive` handler when the agent names none; most
    // installations have no such handler, and that is no problem to report every time.
    if ctx.check == ward_types::agent::KEEPALIVE_CHECK
        && snap
            .get(Kind::Handler, &ctx.namespace, KEEPALIVE_HANDLER)
            .is_none()
    {
        names.retain(|n| n != KEEPALIVE_HANDLER);
    }
    if names.is_empty() {
        return out;
    }
    let mut x = Expander {
        snap,
        ctx,
        seen: HashSet::new(),
        path: Vec::new(),
        leaves: BTreeMap::new(),
        problems: Vec::new(),
    };
    x.expand(&names, 0, &[]);
    for (name, reason, what) in std::mem::take(&mut x.problems) {
        problem(&name, reason, what);
    }
    for (name, (h, outer)) in x.leaves {
        let mut filters = outer;
        filters.extend(
            strings(h.spec.get("filters"))
                .into_iter()
                .map(str::to_string),
        );
        let mutator = h
            .spec
            .get("mutator")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        out.push(Workflow {
            label: name,
            filters,
            mutator,
            handler: h,
        });
    }
    out
}

struct Expander<'a> {
    snap: &'a Snapshot,
    ctx: &'a EventCtx,
    /// Handlers and sets already taken for this event.
    seen: HashSet<String>,
    /// The sets being expanded, outermost first.
    path: Vec<String>,
    /// Leaf handlers by name (sorted, as Sensu), with the filters of the sets around them.
    leaves: BTreeMap<String, (Arc<Resource>, Vec<String>)>,
    problems: Vec<(String, Reason, String)>,
}

impl Expander<'_> {
    fn expand(&mut self, names: &[String], depth: usize, outer: &[String]) {
        for name in names {
            if self.path.contains(name) {
                let cycle = format!("{} -> {name}", self.path.join(" -> "));
                self.problems.push((
                    name.clone(),
                    Reason::Set,
                    format!("handler sets form a cycle ({cycle}); not followed"),
                ));
                continue;
            }
            if !self.seen.insert(name.clone()) {
                continue;
            }
            let Some(r) = self.snap.get(Kind::Handler, &self.ctx.namespace, name) else {
                let stream = self
                    .snap
                    .get(Kind::TCPStreamHandler, &self.ctx.namespace, name)
                    .is_some();
                self.problems.push((
                    name.clone(),
                    Reason::NotFound,
                    if stream {
                        format!("{name:?} is a TCPStreamHandler: name it as the handler of a Pipeline's workflow (as in Sensu, check handlers are core/v2 Handlers)")
                    } else {
                        format!("no handler {name:?} in namespace {:?}", self.ctx.namespace)
                    },
                ));
                continue;
            };
            if r.spec.get("type").and_then(Value::as_str) == Some("set") {
                if depth >= MAX_SET_DEPTH {
                    self.problems.push((
                        name.clone(),
                        Reason::Set,
                        format!(
                            "handler sets nest deeper than {MAX_SET_DEPTH} levels; not followed"
                        ),
                    ));
                    continue;
                }
                let members: Vec<String> = strings(r.spec.get("handlers"))
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                // A set's own filters apply to its members (Sensu ignores them; Ward acts
                // on what it stores).
                let mut filters = outer.to_vec();
                filters.extend(
                    strings(r.spec.get("filters"))
                        .into_iter()
                        .map(str::to_string),
                );
                self.path.push(name.clone());
                self.expand(&members, depth + 1, &filters);
                self.path.pop();
            } else {
                self.leaves
                    .entry(name.clone())
                    .or_insert_with(|| (r.clone(), outer.to_vec()));
            }
        }
    }
}

//! Filters, as Sensu's pipelined applies them (SG `backend/pipeline/filter`):
//!
//! - Built in (these names always mean these): `is_incident` passes events whose status is
//!   not 0 and resolutions; `not_silenced` stops events whose `check.silenced` names an
//!   entry; `has_metrics` stops events without `metrics`.
//! - An EventFilter: its `when` windows first (UTC: an `allow` filter outside them stops
//!   the event, a `deny` filter inside them stops it), then its `expressions`, ECMAScript
//!   in `ward_js`'s sandbox over Sensu's view of the event (metadata hoisted:
//!   `event.check.name`, `event.entity.labels.x`; `event.is_incident` and the other
//!   extras). `allow` passes when every expression is true, `deny` stops the event when any
//!   is. An expression that throws or runs past its limit is logged and counted and, as in
//!   Sensu, skipped: it neither stops an `allow` nor triggers a `deny`.
//! - A filter with `runtime_assets` has the `.js` files of its assets' `lib/` directories
//!   evaluated first (as Sensu does), in a sandbox kept per set of assets; an asset that
//!   cannot be installed skips the workflow (logged, counted as `asset`).

use super::config::Snapshot;
use super::{Counters, EventCtx, Reason};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use ward_types::Kind;

/// Limits of one filter expression: 100 ms, 32 MiB (`ward_js::Limits::default`).
pub(super) const LIMITS: ward_js::Limits = ward_js::Limits {
    time: std::time::Duration::from_millis(100),
    memory: 32 << 20,
};

/// One event's filter decisions, and Sensu's view of it (made once, when a filter with
/// expressions needs it).
#[derive(Default)]
pub(super) struct Decisions {
    view: Option<String>,
    by_filter: HashMap<String, bool>,
    /// Where filters' runtime assets are installed.
    pub(super) cache: Option<std::sync::Arc<ward_assets::Assets>>,
}

/// The JavaScript files filters' assets may bring, bytes in all.
const MAX_LIBRARIES: u64 = 8 << 20;

/// `assets` installed in `cache` (waited for here: call on the blocking pool, where
/// waiting holds no runtime thread).
pub(super) fn install(
    cache: Option<&std::sync::Arc<ward_assets::Assets>>,
    assets: &[ward_assets::Asset],
) -> Result<Vec<ward_assets::Installed>, String> {
    if assets.is_empty() {
        return Ok(Vec::new());
    }
    let cache = cache.ok_or("runtime_assets: this backend has no asset cache")?;
    tokio::runtime::Handle::current()
        .block_on(cache.prepare(assets, &super::backend_entity()))
        .map_err(|e| e.to_string())
}

/// What names a JavaScript runtime loaded with `installed`'s libraries.
pub(super) fn key(installed: &[ward_assets::Installed]) -> String {
    let dirs: Vec<String> = installed
        .iter()
        .map(|a| a.dir.display().to_string())
        .collect();
    dirs.join("\n")
}

/// The `.js` files under each asset's `lib/`, in path order, as `(path, text)`.
pub(super) fn scripts(
    installed: &[ward_assets::Installed],
) -> Result<Vec<(String, String)>, String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(()); // no lib/: no scripts
        };
        for e in rd {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                walk(&e.path(), out)?;
            } else if e.path().extension().is_some_and(|x| x == "js") {
                out.push(e.path());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for a in installed {
        let mut files = Vec::new();
        walk(&a.dir.join("lib"), &mut files).map_err(|e| format!("asset {:?}: {e}", a.name))?;
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            total += text.len() as u64;
            if total > MAX_LIBRARIES {
                return Err(format!(
                    "the assets' JavaScript files are larger than {} MiB together",
                    MAX_LIBRARIES >> 20
                ));
            }
            out.push((f.display().to_string(), text));
        }
    }
    Ok(out)
}

/// Why a workflow cannot be filtered.
pub(super) struct Problem {
    pub(super) reason: Reason,
    pub(super) what: String,
}

impl Decisions {
    /// Whether the event passes every filter of `names`, in order (the first that stops
    /// it ends the walk).
    pub(super) fn pass_all(
        &mut self,
        snap: &Snapshot,
        counters: &Counters,
        ctx: &EventCtx,
        event: &Value,
        names: &[String],
    ) -> Result<bool, Problem> {
        for name in names {
            let pass = match self.by_filter.get(name) {
                Some(p) => *p,
                None => {
                    let p = self.decide(snap, counters, ctx, event, name)?;
                    self.by_filter.insert(name.clone(), p);
                    p
                }
            };
            if !pass {
                counters.filtered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(filter = %name, entity = %ctx.entity, check = %ctx.check, "filtered");
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn decide(
        &mut self,
        snap: &Snapshot,
        counters: &Counters,
        ctx: &EventCtx,
        event: &Value,
        name: &str,
    ) -> Result<bool, Problem> {
        match name {
            "is_incident" => {
                return Ok(ward_types::event::is_incident(event)
                    || ward_types::event::is_resolution(event))
            }
            "not_silenced" => {
                return Ok(event
                    .pointer("/check/silenced")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty))
            }
            "has_metrics" => return Ok(event.get("metrics").is_some_and(|m| !m.is_null())),
            _ => {}
        }
        let Some(f) = snap.get(Kind::EventFilter, &ctx.namespace, name) else {
            return Err(Problem {
                reason: Reason::NotFound,
                what: format!(
                    "no filter {name:?} in namespace {:?}; the workflow is skipped",
                    ctx.namespace
                ),
            });
        };
        let assets = snap
            .assets_of(&ctx.namespace, &f.spec)
            .map_err(|e| Problem {
                reason: Reason::NotFound,
                what: format!("filter {name:?}: {e}; the workflow is skipped"),
            })?;
        let installed = install(self.cache.as_ref(), &assets).map_err(|what| Problem {
            reason: Reason::Asset,
            what: format!("filter {name:?}: {what}; the workflow is skipped"),
        })?;
        let allow = f.spec.get("action").and_then(Value::as_str) != Some("deny");
        if let Some(when) = f.spec.get("when").filter(|w| !w.is_null()) {
            match ward_types::when::in_windows(when, ward_types::unix_now()) {
                Ok(inside) if allow && !inside => return Ok(false),
                Ok(inside) if !allow && inside => return Ok(false),
                Ok(_) => {}
                Err(e) => {
                    return Err(Problem {
                        reason: Reason::Filter,
                        what: format!("filter {name:?}: {e}; the workflow is skipped"),
                    })
                }
            }
        }
        let exprs: Vec<String> = super::plan::strings(f.spec.get("expressions"))
            .into_iter()
            .map(str::to_string)
            .collect();
        if exprs.is_empty() {
            return Ok(true);
        }
        let view = self.view.get_or_insert_with(|| filter_view(event));
        counters
            .evaluations
            .fetch_add(exprs.len() as u64, Ordering::Relaxed);
        let eval = |s: &mut ward_js::Sandbox| s.predicates("event", &exprs, view);
        let results = if installed.is_empty() {
            ward_js::with_sandbox(LIMITS, eval)
        } else {
            ward_js::with_library_sandbox(LIMITS, &key(&installed), || scripts(&installed), eval)
        }
        .map_err(|e| Problem {
            reason: Reason::Filter,
            what: format!("filter {name:?}: {e}"),
        })?;
        let mut matched = Vec::with_capacity(results.len());
        for (expr, r) in exprs.iter().zip(results) {
            match r {
                Ok(b) => matched.push(b),
                Err(e) => {
                    counters.failed(Reason::Filter);
                    counters.log_limited(|| {
                        tracing::warn!(
                            namespace = %ctx.namespace,
                            filter = %name,
                            entity = %ctx.entity,
                            check = %ctx.check,
                            expression = %expr,
                            "filter expression failed and is skipped: {e} (logged at most once a second; see ward_handler_failures_total{{reason=\"filter\"}})"
                        )
                    });
                }
            }
        }
        Ok(if allow {
            matched.iter().all(|b| *b)
        } else {
            !matched.iter().any(|b| *b)
        })
    }
}

/// Sensu's view of an event for filter expressions (SG `types/dynamic`, CORE
/// `Event.SynthesizeExtras`): `metadata` hoisted into the event, entity and check
/// (missing `labels`/`annotations` made empty), and the extras beside them.
pub(super) fn filter_view(event: &Value) -> String {
    let history = event
        .pointer("/check/history")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let has_check = event.get("check").is_some_and(|c| !c.is_null());
    let flapping = event.pointer("/check/state").and_then(Value::as_str) == Some("flapping");
    let extras = [
        ("has_check", has_check),
        (
            "has_metrics",
            event.get("metrics").is_some_and(|m| !m.is_null()),
        ),
        ("is_incident", ward_types::event::is_incident(event)),
        ("is_resolution", ward_types::event::is_resolution(event)),
        (
            "is_silenced",
            event
                .pointer("/check/silenced")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        ),
        // Sensu's history entries never record flapping, so its is_flapping_start is
        // "flapping now, with a previous entry", and is_flapping_end never holds.
        ("is_flapping_start", has_check && history >= 2 && flapping),
        ("is_flapping_end", false),
    ];
    let mut v = event.clone();
    if let Some(root) = v.as_object_mut() {
        hoist(root);
        for part in ["entity", "check"] {
            if let Some(o) = root.get_mut(part).and_then(Value::as_object_mut) {
                hoist(o);
            }
        }
        for (k, b) in extras {
            root.insert(k.into(), Value::Bool(b));
        }
    }
    serde_json::to_string(&v).unwrap_or_else(|_| "{}".into())
}

/// Moves `metadata`'s members up beside the object's own (which win).
fn hoist(o: &mut Map<String, Value>) {
    if let Some(Value::Object(md)) = o.remove("metadata") {
        for (k, x) in md {
            o.entry(k).or_insert(x);
        }
    }
    for k in ["labels", "annotations"] {
        if o.get(k).is_none_or(Value::is_null) {
            o.insert(k.into(), Value::Object(Map::new()));
        }
    }
}

//! Mutators, as Sensu's (SG `backend/pipeline/mutator`): what a handler is given.
//!
//! - none, or `json`: the event's JSON; `only_check_output`: the check's `output` (an error
//!   when the event has no check).
//! - A `javascript` Mutator: its `eval` as a function body in `ward_js` (a mutator runtime
//!   per thread and set of `runtime_assets`, whose `lib/*.js` files are loaded into it as
//!   filters' are; nothing a run adds outlives it), `event` the event (as stored:
//!   `event.check.metadata.name`) and each
//!   `env_vars` `KEY=VALUE` a global string. It returns a string (the payload), or
//!   undefined/null (the event, as it changed, in JSON); anything else is an error. A bare
//!   `NAME` in `env_vars` would copy the backend's own variable (Sensu 6.5.2): Ward refuses
//!   it, since the backend's environment holds the PostgreSQL credentials.
//! - A `pipe` Mutator (the default type): `sh -c COMMAND` with the event JSON on stdin;
//!   its stdout is the payload. A non-zero exit, a timeout (the whole process group is
//!   killed) or more than [`MAX_PAYLOAD`] bytes is an error. Run in the async phase.
//!
//! An error stops the workflow: its handler does not run.

use super::config::Snapshot;
use super::filter;
use super::{EventCtx, Reason, DEFAULT_TIMEOUT};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use ward_types::Kind;

/// The largest payload a pipe mutator may write, bytes.
pub(super) const MAX_PAYLOAD: usize = 16 << 20;
/// Heap of a JavaScript mutator's runtime.
const JS_MEMORY: usize = 64 << 20;
/// The most a JavaScript mutator may run, whatever its `timeout`: it computes, it waits on
/// nothing, and it runs on a thread that filters every namespace's events.
pub(super) const JS_TIME: Duration = Duration::from_secs(1);

/// A handler's input, or how to make it.
pub(super) enum Payload {
    Ready(Arc<[u8]>),
    Pipe {
        mutator: String,
        command: String,
        env: Vec<(String, String)>,
        timeout: Duration,
        assets: Vec<ward_assets::Asset>,
    },
}

/// Why a mutator gave nothing.
pub(super) struct Failure {
    pub(super) reason: Reason,
    pub(super) what: String,
}

fn fail(reason: Reason, what: String) -> Failure {
    Failure { reason, what }
}

/// `env_vars` as pairs; a bare name is refused (see the module's notes).
fn env_pairs(
    name: &str,
    spec: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, String)>, Failure> {
    let mut env = Vec::new();
    for kv in super::plan::strings(spec.get("env_vars")) {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            _ => {
                return Err(fail(
                    Reason::Config,
                    format!("mutator {name:?}: an env_vars entry is not KEY=VALUE ({} bytes, not shown); a bare name would copy the backend's environment, which holds its PostgreSQL credentials, so Ward refuses it", kv.len()),
                ))
            }
        }
    }
    Ok(env)
}

fn timeout_of(spec: &serde_json::Map<String, Value>) -> Duration {
    Duration::from_secs(
        spec.get("timeout")
            .and_then(Value::as_u64)
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT),
    )
}

/// The payload for a workflow with `mutator`, made here when it needs no process.
/// `json`: the event's JSON, made once per event. Blocking (JavaScript runs here).
pub(super) fn mutate(
    snap: &Snapshot,
    ctx: &EventCtx,
    event: &Value,
    json: &mut Option<Arc<[u8]>>,
    mutator: Option<&str>,
    cache: Option<&Arc<ward_assets::Assets>>,
) -> Result<Payload, Failure> {
    let mut event_json = || {
        json.get_or_insert_with(|| Arc::from(serde_json::to_vec(event).unwrap_or_default()))
            .clone()
    };
    let name = match mutator {
        None | Some("json") => return Ok(Payload::Ready(event_json())),
        Some("only_check_output") => {
            return match event.pointer("/check/output") {
                Some(Value::String(s)) => Ok(Payload::Ready(Arc::from(s.as_bytes()))),
                _ if event.get("check").is_none_or(Value::is_null) => Err(fail(
                    Reason::Mutator,
                    "only_check_output: the event has no check".into(),
                )),
                _ => Ok(Payload::Ready(Arc::from(&b""[..]))),
            }
        }
        Some(n) => n,
    };
    let Some(m) = snap.get(Kind::Mutator, &ctx.namespace, name) else {
        return Err(fail(
            Reason::NotFound,
            format!("no mutator {name:?} in namespace {:?}", ctx.namespace),
        ));
    };
    let assets = snap
        .assets_of(&ctx.namespace, &m.spec)
        .map_err(|e| fail(Reason::NotFound, format!("mutator {name:?}: {e}")))?;
    let mut env = env_pairs(name, &m.spec)?;
    env.extend(
        snap.secrets_of(&ctx.namespace, &m.spec)
            .map_err(|e| fail(Reason::Secret, format!("mutator {name:?}: {e}")))?,
    );
    let timeout = timeout_of(&m.spec);
    match m.spec.get("type").and_then(Value::as_str).unwrap_or("pipe") {
        "javascript" => {
            let installed = filter::install(cache, &assets)
                .map_err(|e| fail(Reason::Asset, format!("mutator {name:?}: {e}")))?;
            let body = m.spec.get("eval").and_then(Value::as_str).unwrap_or("");
            let text = String::from_utf8_lossy(&event_json()).into_owned();
            ward_js::run_mutator_with_libraries(
                &filter::key(&installed),
                || filter::scripts(&installed),
                body,
                &text,
                &env,
                timeout.min(JS_TIME),
                JS_MEMORY,
            )
            .map(|out| Payload::Ready(Arc::from(out.into_bytes())))
            .map_err(|e| {
                let reason = match e {
                    ward_js::JsError::Timeout(_) => Reason::Timeout,
                    _ => Reason::Mutator,
                };
                fail(reason, format!("mutator {name:?}: {e}"))
            })
        }
        "pipe" => {
            let Some(command) = super::run::pipe_command(&m.spec) else {
                return Err(fail(
                    Reason::Config,
                    format!("mutator {name:?}: a pipe mutator without a command"),
                ));
            };
            Ok(Payload::Pipe {
                mutator: name.to_string(),
                command,
                env,
                timeout,
                assets,
            })
        }
        other => Err(fail(
            Reason::Config,
            format!("mutator {name:?}: {other:?} is not a mutator type (pipe, javascript)"),
        )),
    }
}

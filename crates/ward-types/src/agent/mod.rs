//! The agent transport: what an agent and the backend say to each other over the agent
//! port's WebSocket session.
//!
//! ## The handshake
//! An HTTP/1.1 WebSocket upgrade of `GET /` on the agent port (8081), with
//! - `Ward-AgentName` (required): the entity's name;
//! - `Ward-Namespace` (default `default`);
//! - `Ward-Subscriptions`: a comma-separated list (the backend adds `entity:<name>`);
//! - `Authorization: Basic …` when the agent has no client certificate. With agent mTLS on
//!   the backend, the certificate's CN is the user and password login is refused.
//!
//! Refusals are plain HTTP answers before the upgrade, one line of text each: 401 (wrong
//! credentials), 403 (the user may not create events), 404 (no such namespace), 400 (bad
//! header), 503 (the backend is starting).
//!
//! ## Frames
//! Every WebSocket message is one frame, sent as a binary message:
//!
//! ```text
//! <type>[ <id>]\n<JSON payload>
//! ```
//!
//! | type | direction | id | payload |
//! |---|---|---|---|
//! | `keepalive` | agent → backend | – | [`Keepalive`] |
//! | `event` | agent → backend | required | a Sensu event (`{entity, check, …}`) |
//! | `ack` | backend → agent | the event's | [`Ack`] |
//! | `check_request` | backend → agent | – | [`CheckRequest`] |
//! | `entity_config` | backend → agent | – | the entity as stored (`{metadata, spec}`) |
//!
//! An `event` is acknowledged only once it is stored; until then the agent keeps it in its
//! on-disk queue. Ids are the agent's queue sequence numbers: increasing within a session,
//! not necessarily consecutive.
//!
//! Limits: a frame is at most [`MAX_FRAME`] bytes; the type line at most [`MAX_TYPE_LINE`].
//! The backend reads at most [`MAX_RATE`] frames a second from one session (beyond that it
//! stops reading, so TCP pushes back on the agent; nothing is dropped) and keeps at most
//! [`MAX_IN_FLIGHT`] of a session's events unacknowledged at once.

mod checks;
mod redact;

pub use checks::{all_hooks, hook_runs, hooks_for, sensu1_result};
pub use redact::{redacted, DEFAULT_REDACT};

/// The label of an entity its agent manages (`agent-managed-entity`), with the value
/// [`MANAGED_BY_AGENT`], as Sensu's.
pub const MANAGED_BY_LABEL: &str = "sensu.io/managed_by";
pub const MANAGED_BY_AGENT: &str = "sensu-agent";

use crate::raw::{NotAnObject, RawObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The agent's name.
pub const HEADER_AGENT_NAME: &str = "Ward-AgentName";
/// The agent's namespace.
pub const HEADER_NAMESPACE: &str = "Ward-Namespace";
/// The agent's subscriptions, comma-separated.
pub const HEADER_SUBSCRIPTIONS: &str = "Ward-Subscriptions";
/// The largest frame either side accepts, in bytes (type line included).
pub const MAX_FRAME: usize = 1024 * 1024;
/// The longest type line (`type id`).
pub const MAX_TYPE_LINE: usize = 32;
/// Frames a second the backend reads from one session.
pub const MAX_RATE: u32 = 2_000;
/// Unacknowledged events one session may have at the backend.
pub const MAX_IN_FLIGHT: usize = 512;
/// Most subscriptions an agent may have (handshake and keepalive), each at most
/// `MAX_SUBSCRIPTION_LEN` bytes.
pub const MAX_SUBSCRIPTIONS: usize = 1000;
pub const MAX_SUBSCRIPTION_LEN: usize = 256;
/// The check name of keepalive events.
pub const KEEPALIVE_CHECK: &str = "keepalive";

/// One frame of the agent transport.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Keepalive(Box<Keepalive>),
    /// The event's members kept as their text: the backend checks a few and stores the rest
    /// as sent (`RawObject`).
    Event {
        id: u64,
        event: RawObject,
    },
    Ack {
        id: u64,
        ack: Ack,
    },
    CheckRequest(Box<CheckRequest>),
    EntityConfig(Value),
}

/// Why a frame could not be read: one line for the log and for the close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent frame: {0}")]
pub struct FrameError(pub String);

fn err(s: impl Into<String>) -> FrameError {
    FrameError(s.into())
}

/// The agent's description of itself, sent with every keepalive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    pub entity: AgentEntity,
    /// Seconds between keepalives.
    pub interval: u32,
    /// Seconds of silence before a warning event.
    pub warning_timeout: u32,
    /// Seconds of silence before a critical event (0: never).
    #[serde(default)]
    pub critical_timeout: u32,
    /// When the agent sent it (Unix seconds).
    pub timestamp: i64,
    /// `keepalive-pipelines`: the pipelines the backend's keepalive events for this agent
    /// go to (names of core/v2 Pipelines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<String>,
}

/// An agent entity: what the first keepalive registers and every keepalive refreshes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntity {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub system: System,
    /// The agent's version (`ward --version`).
    #[serde(default)]
    pub agent_version: String,
    /// `deregister`: remove the entity (and its events) when the agent leaves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deregister: bool,
    /// `deregistration-handler`: the handler told when it is removed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deregistration_handler: String,
    /// `keepalive-handlers`: the handlers of its keepalive events (Sensu's default:
    /// `keepalive`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keepalive_handlers: Vec<String>,
}

/// A `keepalive-pipelines` entry: Sensu's string reference `core/v2.Pipeline.NAME`, or a
/// bare pipeline name. Returns the pipeline's name.
pub fn pipeline_ref_name(s: &str) -> Result<&str, String> {
    let name = match s.strip_prefix("core/v2.") {
        Some(rest) => rest.strip_prefix("Pipeline.").ok_or_else(|| {
            format!("{s:?}: a keepalive pipeline is core/v2.Pipeline.NAME (or NAME)")
        })?,
        None => s,
    };
    crate::check_name("keepalive-pipelines", name).map_err(|e| format!("{s:?}: {}", e.reason))?;
    Ok(name)
}

/// System facts, as Sensu's `entity.system`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct System {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub platform_family: String,
    #[serde(default)]
    pub platform_version: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub arm_version: u32,
    #[serde(default)]
    pub libc_type: String,
    #[serde(default)]
    pub vm_system: String,
    #[serde(default)]
    pub vm_role: String,
    /// Empty: Ward's agent does not detect cloud providers (`detect-cloud-provider` is
    /// accepted and ignored).
    #[serde(default)]
    pub cloud_provider: String,
    #[serde(default)]
    pub float_type: String,
    #[serde(default)]
    pub network: Network,
    /// Always null, as in Sensu (whose process discovery is disabled).
    #[serde(default)]
    pub processes: Option<Vec<serde_json::Value>>,
}

/// The host's network interfaces.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Network {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// The backend's answer to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Ack {
    /// Stored; the agent removes it from its queue.
    Stored,
    /// The event is wrong and never will be stored (the reason says why); the agent logs it
    /// and removes it from its queue.
    Rejected { error: String },
    /// Not stored this time (the store is busy or switching); the agent sends it again.
    Retry { error: String },
}

/// A check the backend asks the agent to run now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub check: CheckSpec,
    /// When the backend scheduled it (Unix seconds).
    pub issued: i64,
    /// The Asset resources (flat) the check's `runtime_assets` name, as Sensu's check
    /// requests carry them; a name without one here is not defined in the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<serde_json::Value>,
    /// The HookConfig resources (flat) the check's `check_hooks` name; the assets of
    /// their `runtime_assets` are in `assets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<serde_json::Value>,
    /// The check's `secrets`, resolved by the backend (sent over TLS only).
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
}

/// A check's `secrets` as the backend resolved them: `(variable, value)` pairs for the
/// command's environment, or why they could not be given (the check is then not run, and
/// its event says so). Never shown by `Debug`: values do not reach a log.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty() && self.error.is_none()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.vars.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Secrets")
            .field("vars", &names)
            .field("error", &self.error)
            .finish()
    }
}

/// What the agent needs of a CheckConfig to run it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    pub namespace: String,
    pub command: String,
    /// Seconds; 0: no timeout.
    #[serde(default)]
    pub timeout: u32,
    #[serde(default)]
    pub interval: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    #[serde(default)]
    pub handlers: Vec<String>,
    /// Bytes of output kept (0: Ward's default, see the agent).
    #[serde(default)]
    pub max_output_size: u64,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// `output_metric_format` (empty: none): the agent parses the output into
    /// `event.metrics.points` (`crate::metrics`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_metric_format: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_metric_handlers: Vec<String>,
    /// Sensu's `[{name, value}]`, as the CheckConfig holds it.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub output_metric_tags: serde_json::Value,
    /// Sensu's `[{name, tags, thresholds: [{min, max, status}], null_status}]`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub output_metric_thresholds: serde_json::Value,
    /// The check's `pipelines` (resource references), copied into the event's.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub pipelines: serde_json::Value,
    /// The whole CheckConfig, flat (`metadata` and its spec's fields), as Sensu's agent
    /// copies it into the event's `check` (under the run's results).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, serde_json::Value>,
}

impl Frame {
    /// The frame's type, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Frame::Keepalive(_) => "keepalive",
            Frame::Event { .. } => "event",
            Frame::Ack { .. } => "ack",
            Frame::CheckRequest(_) => "check_request",
            Frame::EntityConfig(_) => "entity_config",
        }
    }

    /// The frame as one WebSocket message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(self.type_name().as_bytes());
        let id = match self {
            Frame::Event { id, .. } | Frame::Ack { id, .. } => Some(*id),
            _ => None,
        };
        if let Some(id) = id {
            out.push(b' ');
            out.extend_from_slice(id.to_string().as_bytes());
        }
        out.push(b'\n');
        // Serialising these types into a Vec cannot fail (string keys, no foreign Serialize).
        let _ = match self {
            Frame::Keepalive(k) => serde_json::to_writer(&mut out, k),
            Frame::Event { event, .. } => {
                out.extend_from_slice(event.to_json().as_bytes());
                Ok(())
            }
            Frame::Ack { ack, .. } => serde_json::to_writer(&mut out, ack),
            Frame::CheckRequest(c) => serde_json::to_writer(&mut out, c),
            Frame::EntityConfig(e) => serde_json::to_writer(&mut out, e),
        };
        out
    }

    /// The frame as one WebSocket message, refused when it would be over [`MAX_FRAME`]
    /// (the peer would close the session): senders of events use this and shorten or drop
    /// what does not fit. (Numbers can grow when re-encoded, `1e15` becoming
    /// `1000000000000000.0`, so a frame that was decoded may not fit once encoded again.)
    pub fn encode_checked(&self) -> Result<Vec<u8>, FrameError> {
        let out = self.encode();
        if out.len() > MAX_FRAME {
            return Err(err(format!(
                "{}: {} bytes encoded is over the {MAX_FRAME}-byte limit",
                self.type_name(),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Reads one frame; anything malformed is an error naming what is wrong.
    pub fn decode(msg: &[u8]) -> Result<Frame, FrameError> {
        if msg.len() > MAX_FRAME {
            return Err(err(format!(
                "{} bytes is over the {MAX_FRAME}-byte limit",
                msg.len()
            )));
        }
        let nl = msg
            .iter()
            .take(MAX_TYPE_LINE + 1)
            .position(|b| *b == b'\n')
            .ok_or_else(|| {
                err(format!(
                    "no type line: a frame is `<type>[ <id>]\\n<JSON>` with a type line of at most {MAX_TYPE_LINE} bytes"
                ))
            })?;
        let line =
            std::str::from_utf8(&msg[..nl]).map_err(|_| err("the type line is not UTF-8"))?;
        let payload = &msg[nl + 1..];
        let (ty, id) = match line.split_once(' ') {
            Some((t, i)) => {
                let id = i
                    .parse::<u64>()
                    .map_err(|_| err(format!("{t}: id {i:?} is not a whole number")))?;
                (t, Some(id))
            }
            None => (line, None),
        };
        let needs_id = matches!(ty, "event" | "ack");
        if needs_id && id.is_none() {
            return Err(err(format!(
                "{ty}: the type line needs an id (`{ty} <id>`)"
            )));
        }
        if !needs_id && id.is_some() {
            return Err(err(format!("{ty}: takes no id")));
        }
        // Read straight from the bytes (no `Value` in between): an event's members, or
        // the frame's own type.
        fn typed<T: serde::de::DeserializeOwned>(
            what: &str,
            payload: &[u8],
        ) -> Result<T, FrameError> {
            // serde would also read a struct from an array of its fields: refused here, as
            // anything but an object is.
            let first = payload.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err(match serde_json::from_slice::<Value>(payload) {
                    Ok(_) => err(format!("{what}: the payload must be a JSON object")),
                    Err(e) => err(format!("{what}: the payload is not JSON: {e}")),
                });
            }
            serde_json::from_slice(payload).map_err(|e| {
                if e.is_data() {
                    err(format!("{what}: {e}"))
                } else {
                    err(format!("{what}: the payload is not JSON: {e}"))
                }
            })
        }
        let id = id.unwrap_or(0);
        match ty {
            "keepalive" => typed("keepalive", payload).map(|k| Frame::Keepalive(Box::new(k))),
            "event" => RawObject::from_slice(payload)
                .map(|event| Frame::Event { id, event })
                .map_err(|e| match e {
                    NotAnObject::Kind => err("event: the payload must be a JSON object"),
                    NotAnObject::Json(e) => err(format!("event: the payload is not JSON: {e}")),
                }),
            "ack" => typed("ack", payload).map(|ack| Frame::Ack { id, ack }),
            "check_request" => {
                typed("check_request", payload).map(|c| Frame::CheckRequest(Box::new(c)))
            }
            "entity_config" => match typed::<Value>("entity_config", payload)? {
                v @ Value::Object(_) => Ok(Frame::EntityConfig(v)),
                _ => Err(err("entity_config: the payload must be a JSON object")),
            },
            other => Err(err(format!(
                "unknown type {:?}; known: keepalive, event, ack, check_request, entity_config",
                other.chars().take(MAX_TYPE_LINE).collect::<String>()
            ))),
        }
    }
}

/// The subscriptions of an agent as the backend keeps them: its own, without blanks or
/// duplicates, plus `entity:<name>`.
pub fn subscriptions_with_entity(name: &str, subs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(subs.len() + 1);
    let mut seen = std::collections::HashSet::with_capacity(subs.len());
    for s in subs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if seen.insert(s) {
            out.push(s.to_string());
        }
    }
    let own = format!("entity:{name}");
    if !out.contains(&own) {
        out.push(own);
    }
    out
}

/// The first `entity:<other>` subscription in `subs` that is not `name`'s own, if any: an
/// agent may subscribe only to its own entity's subscription (check requests for
/// `entity:<other>` carry the other agent's commands and secrets).
pub fn foreign_entity_subscription<'a>(name: &str, subs: &'a [String]) -> Option<&'a str> {
    subs.iter()
        .map(|s| s.trim())
        .find(|s| s.strip_prefix("entity:").is_some_and(|n| n != name))
}

#[cfg(test)]
mod tests {

    #[test]
    fn secrets_never_show_their_values_in_debug_output() {
        let s = Secrets {
            vars: vec![("TOKEN".into(), "s3cret-value".into())],
            error: None,
        };
        let shown = format!("{s:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    use super::*;
    use serde_json::json;

    fn roundtrip(f: Frame) {
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn every_frame_type_round_trips() {
        roundtrip(Frame::Keepalive(Box::new(Keepalive {
            entity: AgentEntity {
                name: "web-1".into(),
                namespace: "default".into(),
                subscriptions: vec!["linux".into()],
                ..Default::default()
            },
            interval: 20,
            warning_timeout: 120,
            critical_timeout: 0,
            timestamp: 1_700_000_000,
            pipelines: vec!["ka".into()],
        })));
        roundtrip(Frame::Event {
            id: 7,
            event: RawObject::from_value(&json!({"entity": {"metadata": {"name": "a"}}, "check": {"metadata": {"name": "c"}}})).unwrap(),
        });
        roundtrip(Frame::Ack {
            id: u64::MAX,
            ack: Ack::Stored,
        });
        roundtrip(Frame::Ack {
            id: 3,
            ack: Ack::Retry {
                error: "busy".into(),
            },
        });
        roundtrip(Frame::CheckRequest(Box::new(CheckRequest {
            check: CheckSpec {
                name: "expired_certs".into(),
                namespace: "default".into(),
                command: "true".into(),
                interval: 60,
                output_metric_format: "graphite_plaintext".into(),
                output_metric_tags: json!([{"name": "dc", "value": "eu"}]),
                ..Default::default()
            },
            issued: 5,
            assets: vec![
                json!({"metadata": {"name": "a"}, "url": "https://x/a.tgz", "sha512": "00"}),
            ],
            hooks: vec![json!({"metadata": {"name": "h"}, "command": "ps aux", "timeout": 10})],
            secrets: Secrets {
                vars: vec![("TOKEN".into(), "s3cret".into())],
                error: None,
            },
        })));
        roundtrip(Frame::EntityConfig(json!({"metadata": {"name": "a"}})));
    }

    #[test]
    fn the_wire_form_is_a_type_line_and_json() {
        let f = Frame::Ack {
            id: 42,
            ack: Ack::Rejected {
                error: "check.status: bad".into(),
            },
        };
        assert_eq!(
            String::from_utf8(f.encode()).unwrap(),
            "ack 42\n{\"status\":\"rejected\",\"error\":\"check.status: bad\"}"
        );
    }

    #[test]
    fn malformed_frames_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no type line"),
            (b"event\n{}", "needs an id"),
            (b"event x\n{}", "not a whole number"),
            (b"keepalive 3\n{}", "takes no id"),
            (b"event 1\n[1]", "must be a JSON object"),
            (b"event 1\n{", "not JSON"),
            (b"nope\n{}", "unknown type"),
            (b"keepalive\n{\"entity\":{}}", "keepalive:"),
            (b"ack 1\n{\"status\":\"maybe\"}", "ack:"),
            (
                b"ack 1\n[\"stored\"]",
                "ack: the payload must be a JSON object",
            ),
            (
                b"keepalive\n[{\"name\":\"a\",\"namespace\":\"default\"},20,60,0,1]",
                "keepalive: the payload must be a JSON object",
            ),
            (
                b"check_request\n[1",
                "check_request: the payload is not JSON",
            ),
            (
                b"event 1\n{\"a\":\"\\ud800\"}",
                "event: the payload is not JSON",
            ),
            (b"\xff\xfe\n{}", "not UTF-8"),
        ];
        for (input, want) in cases {
            let e = Frame::decode(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let long = vec![b'a'; MAX_TYPE_LINE + 10];
        assert!(Frame::decode(&long).is_err());
        let mut big = b"event 1\n".to_vec();
        big.resize(MAX_FRAME + 1, b' ');
        assert!(Frame::decode(&big)
            .unwrap_err()
            .to_string()
            .contains("limit"));
    }

    #[test]
    fn subscriptions_get_the_entity_subscription_once() {
        let s = subscriptions_with_entity("a", &["x".into(), " x ".into(), "".into()]);
        assert_eq!(s, vec!["x".to_string(), "entity:a".to_string()]);
    }
}

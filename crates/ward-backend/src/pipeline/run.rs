//! Running one workflow's end: a pipe mutator when it has one (its stdout becomes the
//! payload), then the handler: `pipe` through `ward_exec` (the subprocess runner shared
//! with the agent's checks: its own process group, killed whole on timeout), `tcp` and
//! `udp` over a socket. Failures are logged and counted by reason.

use super::mutate::{Payload, MAX_PAYLOAD};
use super::{Counters, EventCtx, Reason, DEFAULT_PATH, DEFAULT_TIMEOUT, STDERR_LINE};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_types::Resource;

/// A workflow ready to run.
pub(super) struct Run {
    /// The handler's name.
    pub(super) name: String,
    pub(super) action: Action,
    pub(super) payload: Payload,
    pub(super) timeout: Duration,
    /// The event's JSON: a pipe mutator's stdin.
    pub(super) event_json: Arc<[u8]>,
}

pub(super) enum Action {
    Pipe {
        command: String,
        env: Vec<(String, String)>,
        assets: Vec<ward_assets::Asset>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Udp {
        host: String,
        port: u16,
    },
    /// A TCPStreamHandler's pool.
    Stream(Arc<super::stream::StreamPool>),
}

impl Run {
    /// A udp handler with its payload ready: nothing to wait for.
    pub(super) fn sends_datagram(&self) -> bool {
        matches!(
            (&self.action, &self.payload),
            (Action::Udp { .. }, Payload::Ready(_))
        )
    }
}

/// The `command` of a pipe handler or mutator, trimmed; None when there is none.
pub(super) fn pipe_command(spec: &serde_json::Map<String, Value>) -> Option<String> {
    let c = spec
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    (!c.is_empty()).then(|| c.to_string())
}

/// What a handler resource asks to be done, and its timeout.
pub(super) fn action(
    snap: &super::config::Snapshot,
    h: &Resource,
) -> Result<(Action, Duration), (Reason, String)> {
    let name = &h.metadata.name;
    let ns = h.metadata.namespace.as_deref().unwrap_or("");
    if h.kind == ward_types::Kind::TCPStreamHandler {
        let pool = snap.stream(ns, name).map_err(|e| (Reason::Config, e))?;
        return Ok((Action::Stream(pool), super::stream::SEND_TIMEOUT));
    }
    let timeout = Duration::from_secs(
        h.spec
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT),
    );
    let ty = h.spec.get("type").and_then(Value::as_str).unwrap_or("");
    let action = match ty {
        "pipe" => {
            let Some(command) = pipe_command(&h.spec) else {
                return Err((Reason::Config, "a pipe handler without a command".into()));
            };
            let mut env = Vec::new();
            for kv in super::plan::strings(h.spec.get("env_vars")) {
                match kv.split_once('=') {
                    Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
                    // A warning, not a failure: the handler runs without it.
                    _ => tracing::warn!(
                        handler = %name,
                        "handler: an env_vars entry ({} bytes, not shown: it may hold a secret) is not KEY=VALUE; it is left out",
                        kv.len()
                    ),
                }
            }
            let assets = snap
                .assets_of(ns, &h.spec)
                .map_err(|e| (Reason::NotFound, e))?;
            // After env_vars: a secret wins over a variable of the same name.
            env.extend(
                snap.secrets_of(ns, &h.spec)
                    .map_err(|e| (Reason::Secret, e))?,
            );
            Action::Pipe {
                command,
                env,
                assets,
            }
        }
        "tcp" | "udp" => {
            let host = h
                .spec
                .get("socket")
                .and_then(|s| s.get("host"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let port = h
                .spec
                .get("socket")
                .and_then(|s| s.get("port"))
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0);
            let Some(port) = port.filter(|_| !host.is_empty()) else {
                return Err((
                    Reason::Config,
                    format!("a {ty} handler needs socket.host and socket.port (1-65535); unsupported without them"),
                ));
            };
            let host = host.to_string();
            if ty == "tcp" {
                Action::Tcp { host, port }
            } else {
                Action::Udp { host, port }
            }
        }
        other => {
            return Err((
                Reason::Config,
                format!("{other:?} is not a handler type Ward runs"),
            ))
        }
    };
    Ok((action, timeout))
}

/// The environment of a pipe command with its runtime assets, installed first.
async fn with_assets(
    cache: Option<&ward_assets::Assets>,
    assets: &[ward_assets::Asset],
    env: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, Failed> {
    if assets.is_empty() {
        return Ok(env);
    }
    let fail = |what: String| Failed {
        reason: Reason::Asset,
        what,
        stderr: String::new(),
    };
    let cache =
        cache.ok_or_else(|| fail("runtime_assets: this backend has no asset cache".into()))?;
    let installed = cache
        .prepare(assets, &super::backend_entity())
        .await
        .map_err(|e| fail(e.to_string()))?;
    // PATH as the command will get it, so that the assets' bin/ comes first.
    let mut base = vec![("PATH".to_string(), default_path())];
    base.extend(env);
    Ok(ward_assets::environment(&installed, &base))
}

fn default_path() -> String {
    // A PATH that is not UTF-8 is not passed on: the default one is used instead.
    std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into())
}

pub(super) async fn execute(
    run: Run,
    counters: &Counters,
    ctx: &EventCtx,
    cache: Option<&ward_assets::Assets>,
) {
    let payload = match run.payload {
        Payload::Ready(p) => p,
        Payload::Pipe {
            mutator,
            command,
            env,
            timeout,
            assets,
        } => match async {
            let env = with_assets(cache, &assets, env).await?;
            run_pipe(&command, &env, timeout, run.event_json.clone(), true).await
        }
        .await
        {
            Ok(out) => Arc::from(out),
            Err(f) => {
                let what = format!("mutator {mutator:?}: {}; the handler does not run", f.what);
                let reason = match f.reason {
                    Reason::Timeout | Reason::Asset => f.reason,
                    _ => Reason::Mutator,
                };
                ctx.fail(counters, &run.name, reason, &what, &f.stderr);
                return;
            }
        },
    };
    counters.runs.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let result = match run.action {
        Action::Pipe {
            command,
            env,
            assets,
        } => match with_assets(cache, &assets, env).await {
            Ok(env) => run_pipe(&command, &env, run.timeout, payload, false)
                .await
                .map(|_| ()),
            Err(f) => Err(f),
        },
        Action::Tcp { host, port } => send_socket(false, &host, port, run.timeout, &payload).await,
        Action::Udp { host, port } => send_socket(true, &host, port, run.timeout, &payload).await,
        Action::Stream(pool) => pool.send(&payload).await.map_err(|(reason, what)| Failed {
            reason,
            what,
            stderr: String::new(),
        }),
    };
    match result {
        Ok(()) => {
            tracing::debug!(handler = %run.name, entity = %ctx.entity, check = %ctx.check, elapsed_ms = started.elapsed().as_millis() as u64, "handler ran")
        }
        Err(f) => ctx.fail(counters, &run.name, f.reason, &f.what, &f.stderr),
    }
}

struct Failed {
    reason: Reason,
    what: String,
    /// The first non-blank line of stderr (pipe handlers).
    stderr: String,
}

/// Stderr kept from a pipe handler: only its first non-blank line is logged.
const STDERR_KEPT: usize = 16 * 1024;

/// Runs a pipe handler or mutator to completion or its timeout: `sh -c COMMAND`, the
/// payload on stdin, `PATH` and its `env_vars` as its whole environment. A handler's stdout
/// is discarded (its stderr's first line is logged on failure); a mutator's (`mutator`)
/// is returned, and its stderr discarded.
async fn run_pipe(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    payload: Arc<[u8]>,
    mutator: bool,
) -> Result<Vec<u8>, Failed> {
    let mut vars = Vec::with_capacity(env.len() + 1);
    vars.push(("PATH".to_string(), default_path()));
    // After PATH, so that a handler's own PATH wins.
    vars.extend_from_slice(env);
    let done = ward_exec::run(ward_exec::Spec {
        command,
        env: Some(&vars),
        stdin: Some(payload),
        timeout,
        max_output: if mutator { MAX_PAYLOAD } else { STDERR_KEPT },
        capture: if mutator {
            ward_exec::Capture::Stdout
        } else {
            ward_exec::Capture::Stderr
        },
    })
    .await
    .map_err(|e| Failed {
        reason: Reason::Spawn,
        what: format!("cannot start sh: {e}"),
        stderr: String::new(),
    })?;
    let stderr = if mutator {
        String::new()
    } else {
        first_line(&done.output)
    };
    match done.exit {
        ward_exec::Exit::Code(0) if mutator && done.total > done.output.len() => Err(Failed {
            reason: Reason::Exit,
            what: format!("wrote more than {MAX_PAYLOAD} bytes"),
            stderr,
        }),
        ward_exec::Exit::Code(0) => Ok(done.output),
        ward_exec::Exit::Code(c) => Err(Failed {
            reason: Reason::Exit,
            what: format!("the command exited with status {c}"),
            stderr,
        }),
        ward_exec::Exit::Signal(s) => Err(Failed {
            reason: Reason::Exit,
            what: format!("the command was killed by signal {s}"),
            stderr,
        }),
        ward_exec::Exit::TimedOut => Err(Failed {
            reason: Reason::Timeout,
            what: format!(
                "killed after its {}s timeout (the whole process group)",
                timeout.as_secs()
            ),
            stderr,
        }),
    }
}

/// The first non-blank line of `out`, at most [`STDERR_LINE`] bytes of it, trimmed.
fn first_line(out: &[u8]) -> String {
    out.split(|b| *b == b'\n')
        .map(|line| String::from_utf8_lossy(&line[..line.len().min(STDERR_LINE)]))
        .map(|text| text.trim().to_string())
        .find(|text| !text.is_empty())
        .unwrap_or_default()
}

/// Writes the payload to a tcp (connect, write, close) or udp (one datagram) handler.
async fn send_socket(
    udp: bool,
    host: &str,
    port: u16,
    timeout: Duration,
    payload: &[u8],
) -> Result<(), Failed> {
    use tokio::io::AsyncWriteExt;
    let target = format!("{host}:{port}");
    let send = async {
        if udp {
            let addr = tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other("the name has no address"))?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = tokio::net::UdpSocket::bind(local).await?;
            let n = s.send_to(payload, addr).await?;
            if n < payload.len() {
                return Err(std::io::Error::other(format!(
                    "sent {n} of {} bytes",
                    payload.len()
                )));
            }
        } else {
            let mut s = tokio::net::TcpStream::connect((host, port)).await?;
            s.write_all(payload).await?;
            s.shutdown().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failed {
            reason: Reason::Socket,
            what: format!("{target}: {e}"),
            stderr: String::new(),
        }),
        Err(_) => Err(Failed {
            reason: Reason::Timeout,
            what: format!("{target}: no answer within {}s", timeout.as_secs()),
            stderr: String::new(),
        }),
    }
}

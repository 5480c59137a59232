//! Running one planned handler: `pipe` through `ward_exec` (the subprocess runner shared
//! with the agent's checks: its own process group, killed whole on timeout), `tcp` and
//! `udp` over a socket. Failures are logged and counted by reason.

use super::plan::{Action, Run};
use super::{Counters, EventCtx, Reason, DEFAULT_PATH, STDERR_LINE};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) async fn execute(run: Run, counters: &Counters, ctx: &EventCtx) {
    counters.runs.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let result = match run.action {
        Action::Pipe { command, env } => {
            run_pipe(&command, &env, run.timeout, run.payload.clone()).await
        }
        Action::Tcp { host, port } => {
            send_socket(false, &host, port, run.timeout, &run.payload).await
        }
        Action::Udp { host, port } => {
            send_socket(true, &host, port, run.timeout, &run.payload).await
        }
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

/// Runs a pipe handler to completion or its timeout: `sh -c COMMAND`, the payload on
/// stdin, stdout discarded, `PATH` and the handler's `env_vars` as its whole environment.
async fn run_pipe(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    payload: Arc<[u8]>,
) -> Result<(), Failed> {
    // A PATH that is not UTF-8 is not passed on: the default one is used instead.
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let mut vars = Vec::with_capacity(env.len() + 1);
    vars.push(("PATH".to_string(), path));
    // After PATH, so that a handler's own PATH wins.
    vars.extend_from_slice(env);
    let done = ward_exec::run(ward_exec::Spec {
        command,
        env: Some(&vars),
        stdin: Some(payload),
        timeout,
        max_output: STDERR_KEPT,
        capture_stdout: false,
    })
    .await
    .map_err(|e| Failed {
        reason: Reason::Spawn,
        what: format!("cannot start sh: {e}"),
        stderr: String::new(),
    })?;
    let stderr = first_line(&done.output);
    match done.exit {
        ward_exec::Exit::Code(0) => Ok(()),
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

//! Running a check: `sh -c COMMAND` in its own process group, stdout and stderr combined
//! into one capped buffer, under the check's timeout; then the Sensu event that reports it.
//!
//! A timed-out check's whole process group is killed (a check that starts children does not
//! leave them behind), and so is a check still running when the agent stops.

use serde_json::{json, Value};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_types::agent::CheckRequest;

/// Output kept when the check does not say (`max_output_size: 0`).
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// What one execution produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The exit status (0 OK, 1 warning, 2 critical, 3+ unknown); 2 on timeout, 3 when the
    /// check could not be started or was killed by a signal.
    pub status: u32,
    /// stdout and stderr as they interleaved, cut at the limit, with a note from the agent
    /// when it cut, timed out, or could not run the command.
    pub output: String,
    /// When it started (Unix seconds).
    pub executed: i64,
    /// Seconds it ran.
    pub duration: f64,
}

/// Output kept from each hook.
pub const HOOK_OUTPUT: usize = 64 * 1024;

/// Puts the hooks that ran into `check.hooks`; when that would make the event larger than
/// one frame, each hook's output is cut to its first KiB (with a note).
pub fn add_hooks(event: &mut Value, mut hooks: Vec<Value>) {
    let size = |e: &Value, h: &[Value]| {
        serde_json::to_vec(e).map(|b| b.len()).unwrap_or(0)
            + serde_json::to_vec(h).map(|b| b.len()).unwrap_or(0)
    };
    if size(event, &hooks) > MAX_EVENT_BYTES {
        for h in &mut hooks {
            if let Some(o) = h.get("output").and_then(Value::as_str) {
                let cut: String = o.chars().take(1024).collect();
                h["output"] = json!(format!(
                    "{cut}\nward agent: hook output cut to fit the event in one frame"
                ));
            }
        }
    }
    if let Some(check) = event.get_mut("check") {
        check["hooks"] = json!(hooks);
    }
}

/// The result of a check that could not be run: status 3 (unknown) and why.
pub fn not_run(why: &str) -> CheckResult {
    CheckResult {
        status: 3,
        output: format!("ward agent: the check did not run: {why}"),
        executed: unix_now(),
        duration: 0.0,
    }
}

/// Sensu's view of an entity, as asset build filters read it: `metadata` hoisted
/// (`entity.name`, `entity.labels.x`), `entity.system.os`.
pub fn entity_view(entity: &Value) -> String {
    let mut v = entity.clone();
    if let Some(o) = v.as_object_mut() {
        if let Some(Value::Object(md)) = o.remove("metadata") {
            for (k, x) in md {
                o.entry(k).or_insert(x);
            }
        }
    }
    v.to_string()
}

/// PATH-like variables: what `env_vars` and assets give is put before what is there.
const PATH_LIKE: [&str; 3] = ["PATH", "LD_LIBRARY_PATH", "CPATH"];

/// The environment a check runs with, as Sensu's agent makes it: the agent's own, then its
/// assets' (`bin`, `lib`, `include` prepended; `NAME_PATH`), then its `secrets`, then its
/// `env_vars`
/// (`KEY=VALUE`; `PATH`, `LD_LIBRARY_PATH` and `CPATH` prepended, others set). None when
/// it has neither: the agent's environment is inherited as it is.
pub fn environment(
    installed: &[ward_assets::Installed],
    secrets: &[(String, String)],
    config: &serde_json::Map<String, Value>,
) -> Option<Vec<(String, String)>> {
    let vars: Vec<(&str, &str)> = config
        .get("env_vars")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| !k.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if installed.is_empty() && vars.is_empty() && secrets.is_empty() {
        return None;
    }
    // Variables that are not UTF-8 are passed on by inheritance only: left out here.
    let own: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut env = ward_assets::environment(installed, &own);
    // The check's secrets, as Sensu's agent sets them: after the assets, before env_vars.
    for (k, v) in secrets {
        match env.iter_mut().find(|(x, _)| x == k) {
            Some((_, old)) => old.clone_from(v),
            None => env.push((k.clone(), v.clone())),
        }
    }
    for (k, v) in vars {
        match env.iter_mut().find(|(x, _)| x == k) {
            Some((_, old)) if PATH_LIKE.contains(&k) && !old.is_empty() => {
                *old = format!("{v}:{old}");
            }
            Some((_, old)) => *old = v.to_string(),
            None => env.push((k.to_string(), v.to_string())),
        }
    }
    Some(env)
}

/// Runs `command` with `sh -c`. `timeout` zero means none; `max_output` zero means
/// [`DEFAULT_MAX_OUTPUT`]. `stdin`, when given, is written to the command's input; `env`,
/// when given, is its whole environment.
pub async fn execute(
    command: &str,
    timeout: Duration,
    max_output: usize,
    stdin: Option<Vec<u8>>,
    env: Option<Vec<(String, String)>>,
) -> CheckResult {
    let executed = unix_now();
    let started = Instant::now();
    let max_output = if max_output == 0 {
        DEFAULT_MAX_OUTPUT
    } else {
        max_output
    };
    let (status, output) = match run(command, timeout, max_output, stdin, env).await {
        Ok(r) => r,
        Err(e) => (3, format!("ward agent: cannot run the check: {e}")),
    };
    CheckResult {
        status,
        output,
        executed,
        duration: started.elapsed().as_secs_f64(),
    }
}

/// The check's output as text, with the agent's note when it was cut.
fn output_text(done: &ward_exec::Finished) -> String {
    let mut s = String::from_utf8_lossy(&done.output).into_owned();
    if done.total > done.output.len() {
        s.push_str(&format!(
            "\nward agent: output truncated to the first {} of {} bytes (max_output_size)",
            done.output.len(),
            done.total
        ));
    }
    s
}

/// One run through ward-exec, the one subprocess runner (process group, capped output,
/// group killed on timeout or when this future is dropped at shutdown).
async fn run(
    command: &str,
    timeout: Duration,
    max_output: usize,
    stdin: Option<Vec<u8>>,
    env: Option<Vec<(String, String)>>,
) -> io::Result<(u32, String)> {
    let done = ward_exec::run(ward_exec::Spec {
        command,
        env: env.as_deref(),
        stdin: stdin.map(Arc::from),
        timeout,
        max_output,
        capture: ward_exec::Capture::Both,
    })
    .await?;
    let mut s = output_text(&done);
    Ok(match done.exit {
        ward_exec::Exit::Code(c) => (c.clamp(0, 255) as u32, s),
        ward_exec::Exit::Signal(sig) => {
            s.push_str(&format!(
                "\nward agent: the check was killed by signal {sig}"
            ));
            (3, s)
        }
        ward_exec::Exit::TimedOut => {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!(
                "ward agent: the check timed out after {}s; its process group was killed",
                timeout.as_secs_f64()
            ));
            (2, s)
        }
    })
}

/// The largest event body that fits in one frame (the type line takes the rest).
pub const MAX_EVENT_BYTES: usize =
    ward_types::agent::MAX_FRAME - ward_types::agent::MAX_TYPE_LINE - 1;

/// The Sensu event reporting a check run for `entity` (`{metadata, entity_class,
/// subscriptions}`), cut to fit one frame (the output shrinks first).
pub fn check_event(entity: &Value, req: &CheckRequest, result: &CheckResult) -> Value {
    let c = &req.check;
    let mut check = json!({
        "metadata": {"name": c.name, "namespace": c.namespace},
        "processed_by": entity.pointer("/metadata/name").cloned().unwrap_or_default(),
        "command": c.command,
        "interval": c.interval,
        "timeout": c.timeout,
        "handlers": c.handlers,
        "subscriptions": c.subscriptions,
        "status": result.status,
        "output": result.output,
        "executed": result.executed,
        "issued": req.issued.max(0),
        "duration": result.duration,
    });
    if let Some(ttl) = c.ttl {
        check["ttl"] = json!(ttl);
    }
    for (k, v) in [
        ("output_metric_format", json!(c.output_metric_format)),
        ("output_metric_handlers", json!(c.output_metric_handlers)),
        ("output_metric_tags", c.output_metric_tags.clone()),
        (
            "output_metric_thresholds",
            c.output_metric_thresholds.clone(),
        ),
        ("pipelines", c.pipelines.clone()),
    ] {
        if !(v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty)) {
            check[k] = v;
        }
    }
    // The check's configuration (Sensu's agent sends it whole), under the run's results.
    if let Value::Object(run) = check {
        let mut whole = c.config.clone();
        let metadata = whole.remove("metadata");
        // env_vars may hold credentials: events (stored, read through the API, given to
        // handlers) name the variables only.
        if let Some(Value::Array(vars)) = whole.get_mut("env_vars") {
            for v in vars.iter_mut() {
                if let Some(kv) = v.as_str() {
                    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
                    *v = json!(format!("{key}=REDACTED"));
                }
            }
        }
        for (k, v) in run {
            whole.insert(k, v);
        }
        // The configuration's metadata (its labels and annotations), minus created_by.
        if let Some(Value::Object(mut md)) = metadata {
            md.remove("created_by");
            md.insert("name".into(), json!(c.name));
            md.insert("namespace".into(), json!(c.namespace));
            whole.insert("metadata".into(), Value::Object(md));
        }
        check = Value::Object(whole);
    }
    let mut event = json!({
        "entity": entity,
        "check": check,
        "timestamp": unix_now(),
    });
    // As Sensu's agent: the check's pipelines are the event's.
    event["pipelines"] = if c.pipelines.is_null() {
        json!([])
    } else {
        c.pipelines.clone()
    };
    add_metrics(&mut event, c, result);
    // Points can outweigh the output (several times): when the event does not fit one
    // frame, they go first (an annotation says so), then the output is cut.
    if serde_json::to_vec(&event).map_or(0, |v| v.len()) > MAX_EVENT_BYTES {
        if let Some(points) = event.pointer_mut("/metrics/points") {
            let n = points.as_array().map_or(0, Vec::len);
            *points = json!([]);
            if let Some(Value::Object(md)) = event.pointer_mut("/check/metadata") {
                let notes = md.entry("annotations").or_insert_with(|| json!({}));
                notes["ward.io/output_metric_errors"] = json!(format!(
                    "{n} points left out: the event did not fit one frame"
                ));
            }
        }
    }
    fit_output(&mut event, MAX_EVENT_BYTES);
    event
}

/// `output_metric_format`: the output parsed into `metrics.points` (the check's
/// `output_metric_tags` added), `metrics.handlers` from `output_metric_handlers`, and
/// `output_metric_thresholds` applied to a check that exited 0 (its status and
/// annotations), as Sensu's agent does. Lines that do not parse are left out; how many is
/// said in the annotation `ward.io/output_metric_errors`.
fn add_metrics(event: &mut Value, c: &ward_types::agent::CheckSpec, result: &CheckResult) {
    use ward_types::metrics;
    let Some(format) = metrics::Format::from_name(&c.output_metric_format) else {
        return;
    };
    let mut parsed = metrics::parse(format, &result.output, result.executed, unix_now());
    metrics::add_tags(format, &mut parsed.points, &c.output_metric_tags);
    let verdict = metrics::thresholds(&c.output_metric_thresholds, &parsed.points, result.status);
    let points: Vec<Value> = parsed.points.iter().map(metrics::Point::to_json).collect();
    event["metrics"] = json!({"handlers": c.output_metric_handlers, "points": points});
    let check = &mut event["check"];
    if let Some(status) = verdict.status {
        check["status"] = json!(status);
    }
    let mut notes = serde_json::Map::new();
    for (k, v) in verdict.annotations {
        notes.insert(k, json!(v));
    }
    if !parsed.errors.is_empty() {
        let first = &parsed.errors[0];
        notes.insert(
            "ward.io/output_metric_errors".into(),
            json!(format!(
                "{} line(s) not parsed as {}; first: {first}",
                parsed.errors.len(),
                format.name()
            )),
        );
    }
    if !notes.is_empty() {
        let md = &mut check["metadata"];
        let annotations = md
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(a)) = annotations {
            a.extend(notes);
        }
    }
}

/// Shortens `check.output` until the serialised event is at most `max` bytes. Escaping can
/// make output longer on the wire than in memory, so this measures the serialised form.
pub fn fit_output(event: &mut Value, max: usize) {
    for _ in 0..8 {
        let len = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(0);
        if len <= max {
            return;
        }
        let Some(out) = event
            .get_mut("check")
            .and_then(|c| c.get_mut("output"))
            .and_then(|o| o.as_str().map(String::from))
        else {
            return;
        };
        let note = "\nward agent: output truncated to fit one frame";
        let excess = len - max + note.len() + 16;
        let mut keep = out.len().saturating_sub(excess);
        while keep > 0 && !out.is_char_boundary(keep) {
            keep -= 1;
        }
        let cut = format!("{}{note}", &out[..keep]);
        event["check"]["output"] = Value::String(cut);
    }
}

pub use ward_types::unix_now;

#[cfg(test)]
mod tests {
    use super::*;
    use ward_types::agent::CheckSpec;

    #[tokio::test]
    async fn output_and_exit_status_are_reported() {
        let r = execute(
            "echo out; echo err >&2; exit 1",
            Duration::from_secs(10),
            0,
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 1);
        assert_eq!(r.output, "out\nerr\n");
        assert!(r.executed > 1_600_000_000);
        let r = execute("exit 7", Duration::ZERO, 0, None, None).await;
        assert_eq!((r.status, r.output.as_str()), (7, ""));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("survived");
        let cmd = format!(
            "echo started; (sleep 2; touch {}) & sleep 30",
            marker.display()
        );
        let t = Instant::now();
        let r = execute(&cmd, Duration::from_millis(300), 0, None, None).await;
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.status, 2);
        assert!(r.output.starts_with("started\n"), "{}", r.output);
        assert!(r.output.contains("timed out after 0.3s"), "{}", r.output);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the background child was killed with its group"
        );
    }

    #[tokio::test]
    async fn long_output_is_truncated_and_says_so() {
        let r = execute(
            "head -c 5000 /dev/zero | tr '\\0' x",
            Duration::from_secs(10),
            100,
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 0);
        assert!(r.output.starts_with(&"x".repeat(100)));
        assert!(
            r.output
                .contains("truncated to the first 100 of 5000 bytes"),
            "{}",
            r.output
        );
    }

    #[tokio::test]
    async fn a_background_child_holding_the_pipe_does_not_hold_the_result() {
        let t = Instant::now();
        let r = execute("sleep 20 & echo done", Duration::ZERO, 0, None, None).await;
        assert_eq!((r.status, r.output.as_str()), (0, "done\n"));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn stdin_reaches_the_check_and_signals_are_unknown() {
        let r = execute(
            "cat",
            Duration::from_secs(5),
            0,
            Some(b"{\"a\":1}".to_vec()),
            None,
        )
        .await;
        assert_eq!(r.output, "{\"a\":1}");
        let r = execute("kill -9 $$", Duration::from_secs(5), 0, None, None).await;
        assert_eq!(r.status, 3);
        assert!(r.output.contains("killed by signal 9"), "{}", r.output);
    }

    #[test]
    fn the_event_has_sensus_shape_and_fits_one_frame() {
        let req = CheckRequest {
            check: CheckSpec {
                name: "disk".into(),
                namespace: "default".into(),
                command: "check-disk".into(),
                timeout: 10,
                interval: 60,
                handlers: vec!["mail".into()],
                ..Default::default()
            },
            issued: 1_700_000_000,
            assets: vec![],
            hooks: vec![],
            secrets: Default::default(),
        };
        let entity = json!({"metadata": {"name": "web-1", "namespace": "default"}, "entity_class": "agent", "subscriptions": ["linux"]});
        let result = CheckResult {
            status: 2,
            output: "\u{1}".repeat(ward_types::agent::MAX_FRAME),
            executed: 1_700_000_001,
            duration: 0.5,
        };
        let ev = check_event(&entity, &req, &result);
        assert!(serde_json::to_vec(&ev).unwrap().len() <= MAX_EVENT_BYTES);
        assert!(ev["check"]["output"]
            .as_str()
            .unwrap()
            .ends_with("truncated to fit one frame"));
        assert_eq!(ev["check"]["metadata"]["name"], "disk");
        assert_eq!(ev["check"]["issued"], 1_700_000_000);
        let parsed = ward_types::event::parse_event(&ev, "default", 0).unwrap();
        assert_eq!(
            (parsed.entity.as_str(), parsed.check.as_str(), parsed.status),
            ("web-1", "disk", 2)
        );
    }

    #[test]
    fn metrics_are_parsed_env_vars_redacted_and_points_go_before_the_output() {
        let mut config = serde_json::Map::new();
        config.insert("metadata".into(), json!({"name": "m", "namespace": "default", "labels": {"team": "ops"}, "created_by": "admin"}));
        config.insert("env_vars".into(), json!(["TOKEN=s3cret", "BARE"]));
        let req = CheckRequest {
            check: CheckSpec {
                name: "m".into(),
                namespace: "default".into(),
                command: "x".into(),
                output_metric_format: "graphite_plaintext".into(),
                output_metric_handlers: vec!["influx".into()],
                output_metric_tags: json!([{"name": "env", "value": "test"}]),
                config,
                ..Default::default()
            },
            issued: 1,
            assets: vec![],
            hooks: vec![],
            secrets: Default::default(),
        };
        let entity = json!({"metadata": {"name": "web-1", "namespace": "default"}});
        let small = CheckResult {
            status: 0,
            output: "cpu.user 12.5 1700000000\nbad line\n".into(),
            executed: 1_700_000_001,
            duration: 0.1,
        };
        let ev = check_event(&entity, &req, &small);
        assert_eq!(ev["metrics"]["handlers"], json!(["influx"]));
        assert_eq!(ev["metrics"]["points"][0]["name"], "cpu.user");
        assert_eq!(ev["metrics"]["points"][0]["value"], 12.5);
        assert_eq!(
            ev["metrics"]["points"][0]["tags"],
            json!([{"name": "env", "value": "test"}])
        );
        assert_eq!(
            ev["check"]["env_vars"],
            json!(["TOKEN=REDACTED", "BARE=REDACTED"])
        );
        assert_eq!(ev["check"]["metadata"]["labels"]["team"], "ops");
        assert!(ev["check"]["metadata"].get("created_by").is_none());
        assert!(
            ev["check"]["metadata"]["annotations"]["ward.io/output_metric_errors"]
                .as_str()
                .unwrap()
                .starts_with("1 line(s) not parsed")
        );
        // 30,000 points: more than a frame; the output itself fits.
        let big = CheckResult {
            output: (0..30_000)
                .map(|i| format!("a.b.{i} {i} 1700000000\n"))
                .collect(),
            ..small
        };
        assert!(big.output.len() < MAX_EVENT_BYTES);
        let ev = check_event(&entity, &req, &big);
        assert!(serde_json::to_vec(&ev).unwrap().len() <= MAX_EVENT_BYTES);
        assert_eq!(ev["metrics"]["points"], json!([]));
        assert_eq!(
            ev["check"]["output"].as_str().unwrap().len(),
            big.output.len()
        );
    }
}

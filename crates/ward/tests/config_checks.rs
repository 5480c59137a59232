//! Configuration is checked at start, through the real binary: every file key (exists,
//! bounded, PEM of the right kind), size caps on config, env and certificate files
//! (`/dev/zero` refused at once), unknown `WARD_BACKEND_*` / `WARD_AGENT_*` variables, and
//! the state directory locked by the backend that runs on it; an /etc/default/sensu-backend
//! (`SENSU_BACKEND_*`) starts, and sensu-backend's keys Ward does not implement are refused
//! with the reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ward_testkit::backend::Backend;
use ward_testkit::{free_port, ward, ward_bin, TempDir};

/// Runs `ward ARGS` (with `env`) for at most `secs`: (exit code, stderr, how long), or
/// None when it was still running (then it is killed). Memory is capped at 2 GB so that a
/// read that never ends fails rather than takes the machine.
fn run_for(args: &[&str], env: &[(&str, &str)], secs: u64) -> Option<(i32, String, Duration)> {
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 2000000; exec \"$0\" \"$@\"")
        .arg(ward_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let took = start.elapsed();
            let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
            return Some((status.code().unwrap_or(-1), stderr, took));
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ward backend start` on fresh ports with `extra`.
fn backend_args(state: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "backend",
        "start",
        "--state-dir",
        state,
        "--api-listen-address",
        &format!("127.0.0.1:{}", free_port()),
        "--agent-host",
        "127.0.0.1",
        "--agent-port",
        &free_port().to_string(),
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        &free_port().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Fails within `secs` with exit 1 and one line on stderr containing every `want`.
fn refused(args: &[String], env: &[(&str, &str)], secs: u64, want: &[&str]) -> Duration {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some((code, stderr, took)) = run_for(&args, env, secs) else {
        panic!("{args:?} was still running after {secs}s");
    };
    assert_eq!(code, 1, "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    for w in want {
        assert!(stderr.contains(w), "{args:?}: want {w:?} in {stderr}");
    }
    took
}

#[test]
fn a_second_backend_or_init_on_a_held_state_dir_fails_naming_the_pid() {
    let b = Backend::start(false);
    let state = b.dir.join("state");
    let state = state.to_str().unwrap();
    let pid = format!("PID {}", b.pid());
    refused(
        &backend_args(state, &[]),
        &[],
        10,
        &[state, &pid, "in use by another ward backend"],
    );
    let init: Vec<String> = [
        "backend",
        "init",
        "--state-dir",
        state,
        "--cluster-admin-username",
        "x",
        "--cluster-admin-password",
        "y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    refused(&init, &[], 10, &[state, &pid]);
    // The first backend serves on.
    let (code, _) = b.curl(&[&format!("{}/health", b.url())]);
    assert_eq!(code, 200);
}

#[test]
fn dev_zero_as_config_env_or_cert_file_is_refused_at_once() {
    let d = TempDir::new();
    let state = d.join("state");
    let state = state.to_str().unwrap();
    let backend = [
        (vec!["--env-file", "/dev/zero"], "env file /dev/zero"),
        (
            vec!["--config-file", "/dev/zero"],
            "config-file (from /dev/zero)",
        ),
        (
            vec!["--cert-file", "/dev/zero", "--key-file", "/dev/zero"],
            "cert-file (from --cert-file): /dev/zero: larger than",
        ),
    ];
    for (extra, want) in backend {
        let took = refused(
            &backend_args(state, &extra),
            &[],
            20,
            &[want, "larger than"],
        );
        assert!(took < Duration::from_secs(5), "{extra:?} took {took:?}");
    }
    let agent = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "agent",
            "start",
            "--disable-sockets",
            "--name",
            "a",
            "--cache-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(d.join("cache").display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let url = format!("wss://127.0.0.1:{}", free_port());
    let cases = [
        (vec!["--env-file", "/dev/zero"], "env file /dev/zero"),
        (
            vec!["--config-file", "/dev/zero"],
            "config-file (from /dev/zero)",
        ),
        (
            vec![
                "--backend-url",
                &url,
                "--cert-file",
                "/dev/zero",
                "--key-file",
                "/dev/zero",
            ],
            "(from --cert-file): /dev/zero: larger than",
        ),
    ];
    for (extra, want) in cases {
        let took = refused(&agent(&extra), &[], 20, &[want, "larger than"]);
        assert!(took < Duration::from_secs(5), "{extra:?} took {took:?}");
    }
}

#[test]
fn file_keys_are_checked_at_start_naming_the_key() {
    let d = TempDir::new();
    let state = d.join("state");
    let state = state.to_str().unwrap();
    let missing = d.join("missing-ca.pem");
    let missing = missing.to_str().unwrap();
    refused(
        &backend_args(state, &["--trusted-ca-file", missing]),
        &[],
        20,
        &[
            "trusted-ca-file (from --trusted-ca-file)",
            missing,
            "cannot read",
        ],
    );
    let not_pem = d.join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    refused(
        &backend_args(state, &[]),
        &[("WARD_BACKEND_AGENT_AUTH_TRUSTED_CA_FILE", not_pem)],
        20,
        &[
            "agent-auth-trusted-ca-file (from $WARD_BACKEND_AGENT_AUTH_TRUSTED_CA_FILE)",
            "holds no certificate",
        ],
    );
}

#[test]
fn unknown_ward_backend_and_ward_agent_variables_are_refused() {
    let d = TempDir::new();
    let state = d.join("state");
    let state = state.to_str().unwrap();
    refused(
        &backend_args(state, &[]),
        &[("WARD_BACKEND_LOG_LEVL", "debug")],
        20,
        &[
            "WARD_BACKEND_LOG_LEVL (from the environment): unknown variable",
            "did you mean WARD_BACKEND_LOG_LEVEL?",
        ],
    );
    let cache = d.join("cache");
    let args: Vec<String> = [
        "agent",
        "start",
        "--disable-sockets",
        "--password",
        "pw",
        "--cache-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([cache.display().to_string()])
    .collect();
    refused(
        &args,
        &[("WARD_AGENT_NAMESPCE", "ops")],
        20,
        &[
            "WARD_AGENT_NAMESPCE (from the environment)",
            "did you mean WARD_AGENT_NAMESPACE?",
        ],
    );
}

/// Found by the `env_file` fuzz target: a NUL byte in a value panicked when it was set.
#[test]
fn a_nul_byte_in_an_env_file_value_is_refused_naming_the_line() {
    let d = TempDir::new();
    let env = d.join("ward-backend.env");
    std::fs::write(&env, b"WARD_BACKEND_LOG_LEVEL=info\nPGHOST=\"db\0x\"\n").unwrap();
    let state = d.join("state");
    let args = backend_args(
        state.to_str().unwrap(),
        &["--env-file", env.to_str().unwrap()],
    );
    refused(
        &args,
        &[],
        20,
        &[&format!("{}:2", env.display()), "PGHOST", "NUL byte"],
    );
}

/// A GET of `path` on 127.0.0.1:`port`: the status line.
/// Starts `cmd` with its stderr in `log` and waits until it listens on `port`.
fn start_logged(mut cmd: Command, log: &Path, port: u16, what: &str) -> std::process::Child {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    ward_testkit::wait_listening(&mut child, port, what, log);
    child
}

fn http_status(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn a_sensu_backend_env_file_starts_and_unsupported_keys_are_refused() {
    let d = TempDir::new();
    let state = d.join("state");
    ward()
        .args(["backend", "init", "--state-dir"])
        .arg(&state)
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "long enough pw",
        ])
        .run()
        .ok();
    let (api, agent, dash) = (free_port(), free_port(), free_port());
    // /etc/default/sensu-backend as Sensu's guide writes it, with init's variables too and
    // one WARD_ variable that must win over its SENSU_ twin (which would stop the start).
    let env_text = format!(
        "SENSU_BACKEND_CLUSTER_ADMIN_USERNAME=admin\n\
         SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD=long enough pw\n\
         SENSU_BACKEND_STATE_DIR={}\n\
         SENSU_BACKEND_API_LISTEN_ADDRESS=127.0.0.1:{api}\n\
         SENSU_BACKEND_AGENT_HOST=127.0.0.1\n\
         SENSU_BACKEND_AGENT_PORT={agent}\n\
         SENSU_BACKEND_DASHBOARD_HOST=127.0.0.1\n\
         SENSU_BACKEND_DASHBOARD_PORT=not-a-port\n\
         WARD_BACKEND_DASHBOARD_PORT={dash}\n\
         SENSU_BACKEND_LOG_LEVEL=info\n\
         SENSU_BACKEND_EVENTD_WORKERS=100\n\
         SENSU_BACKEND_AGENT_WRITE_TIMEOUT=30\n\
         SENSU_BACKEND_BACKEND_HEARTBEAT_INTERVAL=30\n",
        state.display()
    );
    let env = d.join("sensu-backend");
    std::fs::write(&env, &env_text).unwrap();
    let log = d.join("backend.log");
    let mut cmd = Command::new(ward_bin());
    cmd.args(["backend", "start", "--env-file"]).arg(&env);
    let mut child = start_logged(cmd, &log, api, "ward backend");
    ward_testkit::wait_listening(&mut child, dash, "ward backend's dashboard", &log);
    let health = http_status(api, "/health");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.contains(" 200 "), "{health}");
    for w in [
        "eventd-workers (from $SENSU_BACKEND_EVENTD_WORKERS) is ignored",
        "agent-write-timeout (from $SENSU_BACKEND_AGENT_WRITE_TIMEOUT) is ignored",
        "backend-heartbeat-interval (from $SENSU_BACKEND_BACKEND_HEARTBEAT_INTERVAL) is ignored: a sensu-agent key",
    ] {
        assert_eq!(text.matches(w).count(), 1, "want {w:?} once in {text}");
    }
    // An unsupported key, from the env file or as a flag: one line and exit 1, before
    // anything listens (refused() sees the process gone).
    let refuse = |extra_env: &str, flags: &[&str], want: &[&str]| {
        std::fs::write(&env, format!("{env_text}{extra_env}")).unwrap();
        let mut args = vec!["backend".to_string(), "start".into(), "--env-file".into()];
        args.push(env.display().to_string());
        args.extend(flags.iter().map(|s| s.to_string()));
        refused(&args, &[], 20, want);
    };
    refuse(
        "SENSU_BACKEND_ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:2379\n",
        &[],
        &["etcd-listen-client-urls (from $SENSU_BACKEND_ETCD_LISTEN_CLIENT_URLS): not supported by Ward: Ward's store is SQLite"],
    );
    refuse(
        "",
        &["--insecure-skip-tls-verify"],
        &["insecure-skip-tls-verify (from --insecure-skip-tls-verify): not supported by Ward: Ward's backend never skips certificate verification; "],
    );
    let yml = d.join("backend.yml");
    std::fs::write(&yml, "jwt-private-key-file: /etc/sensu/jwt.pem\n").unwrap();
    refuse(
        &format!("SENSU_BACKEND_CONFIG_FILE={}\n", yml.display()),
        &[],
        &[&format!(
            "jwt-private-key-file (from {}): not supported by Ward",
            yml.display()
        )],
    );
    refuse(
        "SENSU_BACKEND_LOG_LEVL=debug\n",
        &[],
        &["SENSU_BACKEND_LOG_LEVL (from the environment): unknown variable: did you mean SENSU_BACKEND_LOG_LEVEL?"],
    );
}

#[test]
fn a_sensu_agent_env_file_starts_and_unsupported_keys_are_refused() {
    let b = ward_testkit::agent::password_backend(&[]);
    b.ctl_login();
    let d = TempDir::new();
    let api = free_port();
    // /etc/default/sensu-agent as Sensu's docs write it: quoted values, a JSON map, a
    // space-separated list, and a SENSU_ variable of a plugin's (left alone).
    let env_text = format!(
        "SENSU_BACKEND_URL=\"wss://localhost:{} wss://localhost:{}\"\n\
         SENSU_TRUSTED_CA_FILE={}\n\
         SENSU_USER=agent\n\
         SENSU_PASSWORD={}\n\
         SENSU_NAME=legacy-1\n\
         SENSU_SUBSCRIPTIONS=\"linux web\"\n\
         SENSU_LABELS='{{\"region\": \"us-east-1\", \"type\": \"website\"}}'\n\
         SENSU_CACHE_DIR={}\n\
         SENSU_API_HOST=\"127.0.0.1\"\n\
         SENSU_API_PORT={api}\n\
         SENSU_SOCKET_PORT={}\n\
         SENSU_STATSD_METRICS_PORT={}\n\
         SENSU_DISCOVER_PROCESSES=false\n\
         SENSU_API_KEY=a-plugins-own\n",
        b.agent_port,
        b.agent_port,
        b.ca().unwrap().display(),
        ward_testkit::agent::AGENT_PASSWORD,
        d.join("cache").display(),
        free_port(),
        free_port(),
    );
    let env = d.join("sensu-agent");
    std::fs::write(&env, &env_text).unwrap();
    let log = d.join("agent.log");
    let mut cmd = Command::new(ward_bin());
    cmd.args(["agent", "start", "--env-file"]).arg(&env);
    let mut child = start_logged(cmd, &log, api, "ward agent");
    let entity = ward_testkit::agent::wait_for(30, "the agent's entity", || {
        let out = b
            .ctl()
            .args(["entity", "info", "legacy-1", "--format", "json"])
            .run();
        out.success()
            .then(|| serde_json::from_str::<serde_json::Value>(&out.stdout).ok())
            .flatten()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        entity["metadata"]["labels"]["region"], "us-east-1",
        "{entity}"
    );
    let subs = entity["subscriptions"].to_string();
    assert!(
        subs.contains("\"linux\"") && subs.contains("\"web\""),
        "{entity}"
    );
    assert_eq!(
        text.matches("discover-processes (from $SENSU_DISCOVER_PROCESSES) is ignored")
            .count(),
        1,
        "{text}"
    );
    // Keys whose effect an operator relies on: one line and exit 1, before anything runs.
    let refuse = |extra_env: &str, flags: &[&str], want: &[&str]| {
        std::fs::write(&env, format!("{env_text}{extra_env}")).unwrap();
        let mut args = vec!["agent".to_string(), "start".into(), "--env-file".into()];
        args.push(env.display().to_string());
        args.extend(flags.iter().map(|s| s.to_string()));
        refused(&args, &[], 20, want);
    };
    refuse(
        "SENSU_ALLOW_LIST=/etc/sensu/check-allow-list.yaml\n",
        &[],
        &["allow-list (from $SENSU_ALLOW_LIST): /etc/sensu/check-allow-list.yaml: cannot read"],
    );
    refuse(
        "SENSU_LOG_FILE=/nonexistent/ward/agent.log\n",
        &[],
        &["log-file (from $SENSU_LOG_FILE): /nonexistent/ward/agent.log: cannot open it for appending"],
    );
    refuse(
        "",
        &["--keepalive-timeout", "30"],
        &["keepalive-timeout (from --keepalive-timeout): not supported by Ward: Sensu 5.0's name"],
    );
    refuse(
        "WARD_AGENT_SUBSCRIPTION=linux\n",
        &[],
        &["WARD_AGENT_SUBSCRIPTION (from the environment): unknown variable: did you mean WARD_AGENT_SUBSCRIPTIONS?"],
    );
}

#[test]
fn log_file_takes_the_agents_log_lines_and_stderr_stays_quiet() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new();
    let (api, file) = (free_port(), d.join("agent.log"));
    let err = d.join("stderr");
    let mut cmd = Command::new(ward_bin());
    cmd.args([
        "agent",
        "start",
        "--backend-url",
        "ws://127.0.0.1:9",
        "--name",
        "logged",
    ])
    .args(["--api-host", "127.0.0.1", "--api-port", &api.to_string()])
    .args(["--disable-sockets", "--statsd-disable", "--cache-dir"])
    .arg(d.join("cache"))
    .arg("--log-file")
    .arg(&file)
    .env("WARD_AGENT_PASSWORD", "pw");
    let mut child = start_logged(cmd, &err, api, "ward agent");
    let text = ward_testkit::agent::wait_for(10, "the log file's lines", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.contains("local agent API listening"))
    });
    let _ = child.kill();
    let _ = child.wait();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("JSON log lines");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o037,
        0,
        "{mode:o}: no group write, nothing for others"
    );
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(!stderr.contains("local agent API listening"), "{stderr}");
}

//! `ward quickstart`: a CA and certificates in a local folder, an initialised state
//! directory, and a TLS backend on the embedded store — one command. Running it again
//! reuses what exists; Ctrl-C stops it.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where the CA, certificates and state live.
    #[arg(long, default_value = "ward-quickstart")]
    dir: PathBuf,
    #[arg(long = "api-port", default_value_t = 8080)]
    api_port: u16,
    #[arg(long = "agent-port", default_value_t = 8081)]
    agent_port: u16,
    #[arg(long = "dashboard-port", default_value_t = 3000)]
    dashboard_port: u16,
}

fn random_password() -> String {
    let mut b = [0u8; 18];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn run(a: QuickstartArgs) -> Result<ExitCode, String> {
    let tls = a.dir.join("tls");
    if !tls.join("ca.pem").exists() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mut hosts = vec!["127.0.0.1".to_string(), "::1".to_string()];
        if !host.is_empty() && ward_pki::SubjectName::parse(&host).is_ok() {
            hosts.push(host);
        }
        let plan = format!("ca: {{cn: Ward Quickstart CA}}\nbackends:\n  - name: localhost\n    hosts: [{}]\nagents:\n  - name: agent\n", hosts.join(", "));
        let plan = ward_pki::bootstrap::Plan::from_yaml("quickstart plan", &plan)
            .map_err(|e| e.to_string())?;
        ward_pki::bootstrap::bootstrap(&plan, &tls, ward_pki::files::Overwrite::Refuse, &|_, _| {})
            .map_err(|e| e.to_string())?;
        outln!("created a CA and certificates in {}", tls.display());
    } else {
        outln!("reusing the CA and certificates in {}", tls.display());
    }
    let state = a.dir.join("state");
    let password_file = a.dir.join("admin-password");
    if !state.join("ward.db").exists() {
        let password = random_password();
        ward_backend::init(&state, "admin", &password, None)?;
        ward_pki::files::write_one(
            &ward_pki::files::PlannedFile::key(&password_file, password + "\n"),
            ward_pki::files::Overwrite::Allow,
        )
        .map_err(|e| e.to_string())?;
        outln!(
            "initialised {} with the user admin (password in {}, mode 0600)",
            state.display(),
            password_file.display()
        );
    } else {
        outln!("reusing {}", state.display());
    }
    let mut flags = std::collections::BTreeMap::new();
    flags.insert("state-dir".to_string(), state.display().to_string());
    flags.insert(
        "api-listen-address".to_string(),
        format!("127.0.0.1:{}", a.api_port),
    );
    flags.insert("agent-host".to_string(), "127.0.0.1".to_string());
    flags.insert("agent-port".to_string(), a.agent_port.to_string());
    flags.insert("dashboard-host".to_string(), "127.0.0.1".to_string());
    flags.insert("dashboard-port".to_string(), a.dashboard_port.to_string());
    flags.insert(
        "cert-file".to_string(),
        tls.join("localhost.pem").display().to_string(),
    );
    flags.insert(
        "key-file".to_string(),
        tls.join("localhost-key.pem").display().to_string(),
    );
    flags.insert(
        "trusted-ca-file".to_string(),
        tls.join("ca.pem").display().to_string(),
    );
    let cfg = ward_backend::config::resolve(None, &|_| None, &flags).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().ok().map(|p| {
        let cwd = std::env::current_dir().unwrap_or_default();
        p.strip_prefix(&cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    });
    let ward = exe.unwrap_or_else(|| "ward".into());
    outln!("\nreach it with:\n  {ward} ctl configure -n --url https://localhost:{} --username admin --password \"$(cat {})\" --trusted-ca-file {}\n  {ward} ctl cluster health\n  curl --cacert {} https://localhost:{}/health\n  dashboard: https://localhost:{}/\n\nCtrl-C stops it.\n", a.api_port, password_file.display(), tls.join("ca.pem").display(), tls.join("ca.pem").display(), a.api_port, a.dashboard_port);
    let filter = tracing_subscriber::EnvFilter::new("warn,ward_backend=info,ward_tls=info");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(ward_backend::start(cfg))?;
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}

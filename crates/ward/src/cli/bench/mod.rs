//! `ward bench agents`: simulated agents at fleet scale. N sessions over ws/wss (each with
//! its own client certificate from `ward pki bootstrap`, or a password), keepalives and
//! check results at a set total rate; reports sessions held, events/s stored (acknowledged
//! by the backend, which acknowledges only committed events), end-to-end latency p50/p99,
//! handshakes/s, and the backend's RSS from its /metrics. Connections come from several
//! loopback source addresses (127.0.0.x) so ephemeral ports are not the limit, and the
//! agents are split over several processes when one process's open-file limit would be.

mod orchestrate;
mod session;
mod stats;

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Simulated agents against a running backend.
    Agents(AgentsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct AgentsArgs {
    /// The backend's agent URL (ws:// or wss://).
    #[arg(long = "backend-url", default_value = "wss://127.0.0.1:8081")]
    backend_url: String,
    /// Simulated agents (sessions).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Check results per second, all agents together (0: keepalives only).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to send check results once every session is up (e.g. 30s, 2m).
    #[arg(long, default_value = "30s")]
    duration: String,
    /// The CA that signed the backend's certificate (wss://).
    #[arg(long = "trusted-ca-file")]
    trusted_ca_file: Option<PathBuf>,
    /// A folder of agent certificates from `ward pki bootstrap` (NAME.pem, NAME-key.pem):
    /// each simulated agent presents its own. Without it, --user/--password are sent.
    #[arg(long)]
    certs: Option<PathBuf>,
    /// Agent names are PREFIX00001 … (as `ward pki bootstrap` names `prefix:` agents).
    #[arg(long, default_value = "agent-")]
    prefix: String,
    #[arg(long, default_value = "agent")]
    user: String,
    #[arg(long, env = "WARD_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The backend's API URL, for its /metrics (sessions, RSS).
    #[arg(long = "api-url")]
    api_url: Option<String>,
    /// Loopback source addresses to connect from (127.0.0.1 … 127.0.0.N).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// New sessions per second while connecting.
    #[arg(long = "connect-rate", default_value_t = 1000)]
    connect_rate: u32,
    #[arg(long = "keepalive-interval", default_value_t = 20)]
    keepalive_interval: u32,
    /// The status of every check result (non-zero: incidents, which `is_incident` passes).
    #[arg(long, default_value_t = 0)]
    status: u32,
    /// Handlers the check results name (comma-separated): the backend's pipeline runs
    /// them for every stored result.
    #[arg(long, value_delimiter = ',')]
    handlers: Vec<String>,
    /// Processes to spread the agents over (0: as many as the open-file limit needs).
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
    /// Internal: run as worker K of N, printing counters as JSON lines.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode, String> {
    match cmd {
        BenchCommand::Agents(a) => orchestrate::agents(a),
    }
}

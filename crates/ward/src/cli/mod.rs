//! Command-line parsing and dispatch.
//!
//! Exit codes: 0 success; 1 the command failed (one line on stderr says why); 2 the command
//! line itself is wrong. Check plugins (`ward pki check-expiry`) use 0 OK, 1 warning,
//! 2 critical, 3 unknown.

/// `println!` for command output: a closed stdout (`ward ctl event list | head`) ends the
/// command quietly instead of panicking; any other write error exits 1 with the reason.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// Writes one line of command output (see `outln!`).
pub fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Loads `explicit`, or `default` when that file exists, into the environment (KEY=VALUE
/// lines; variables already set win): the `--env-file` of `ward backend start` and
/// `ward agent start`.
fn load_env_file(explicit: Option<&std::path::Path>, default: &str) -> Result<(), String> {
    let default = std::path::Path::new(default);
    let file = explicit.or_else(|| default.exists().then_some(default));
    if let Some(f) = file {
        ward_types::settings::load_env_file(f)?;
    }
    Ok(())
}

/// JSON log lines on stderr (or appended to `file`): `crates` (e.g. `ward_agent`) and
/// ward_tls at `level` (Sensu's `panic` and `fatal` mean error), everything else at warn.
fn start_logging(crates: &[&str], level: &str, file: Option<std::sync::Arc<std::fs::File>>) {
    let level = if level == "panic" || level == "fatal" {
        "error"
    } else {
        level
    };
    let mut filter = String::from("warn");
    for c in crates.iter().chain(&["ward_tls"]) {
        filter.push_str(&format!(",{c}={level}"));
    }
    let writer = match file {
        Some(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(f),
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(writer)
        .try_init();
}

mod agent;
mod backend;
mod bench;
pub mod cfssl_compat;
mod ctl;
mod pg;
mod pki;
mod pki_csr;
mod pki_trust;
mod quickstart;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ward",
    version,
    about = "Ward: a secure monitoring pipeline",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The built-in certificate authority (cfssl-compatible, and native commands).
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// PostgreSQL TLS: configure, probe, audit, install-cert.
    #[command(subcommand)]
    Pg(pg::PgCommand),
    /// The backend: init, start.
    #[command(subcommand)]
    Backend(backend::BackendCommand),
    /// The agent: start.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// The command-line client (sensuctl's commands).
    #[command(subcommand)]
    Ctl(ctl::CtlCommand),
    /// Load tools: `ward bench agents` (simulated agents at fleet scale).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A CA, certificates, a TLS backend on the embedded store and an agent over wss, in one folder, now.
    Quickstart(quickstart::QuickstartArgs),
}

/// Parses and runs a command line.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result: Result<ExitCode, String> = match cli.command {
        Command::Pki(cmd) => pki::run(cmd).map_err(|e| e.to_string()),
        Command::Pg(cmd) => pg::run(cmd).map_err(|e| e.to_string()),
        Command::Backend(cmd) => backend::run(cmd),
        Command::Agent(cmd) => agent::run(cmd),
        Command::Ctl(cmd) => ctl::run(cmd),
        Command::Quickstart(a) => quickstart::run(a),
        Command::Bench(cmd) => bench::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

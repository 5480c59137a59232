//! `ward pg …`.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use ward_pg::configure::{configure, ConfigureOptions, HbaSpec, ServerState};
use ward_pg::install::{certbot_lineage, install_cert, InstallOutcome};
use ward_pg::probe::{probe, ProbeOptions};
use ward_pg::tls::SslMode;
use ward_pg::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum PgCommand {
    /// Turn on TLS for a PostgreSQL data directory: install the pair, write managed blocks
    /// in postgresql.conf and pg_hba.conf, reload (never restart), verify what is served.
    Configure(ConfigureArgs),
    /// Check plugin: what a server does with TLS, seen from the wire (exit 0/1/2/3).
    Probe(ProbeArgs),
    /// Check plugin: every session's TLS state and the pg_hba.conf rules (exit 0/1/2/3).
    Audit(AuditArgs),
    /// Install a renewed certificate (a certbot --deploy-hook), reload, prove it is served.
    InstallCert(InstallCertArgs),
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    #[arg(long)]
    pgdata: PathBuf,
    /// postgresql.conf, when not in the data directory (Debian: /etc/postgresql/15/main/postgresql.conf).
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// pg_hba.conf, when not in the data directory.
    #[arg(long = "hba-file")]
    hba_file: Option<PathBuf>,
    /// The server certificate (leaf first, then any intermediates).
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// CA that client certificates must chain to (ssl_ca_file); also checked against --cert.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// CRL of revoked client certificates (ssl_crl_file).
    #[arg(long)]
    crl: Option<PathBuf>,
    #[arg(long = "min-tls", default_value = "1.2")]
    min_tls: String,
    /// DB:USER[@CIDR]: this user logs in to this database with a client certificate only.
    #[arg(long = "require-cert")]
    require_cert: Vec<String>,
    /// DB:USER@CIDR: this user logs in over TLS with a password (scram-sha-256).
    #[arg(long)]
    password: Vec<String>,
    /// Refuse the superuser over TCP, certificate or not.
    #[arg(long = "reject-superuser")]
    reject_superuser: bool,
    /// Show the changes as a diff and change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuditFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// HOST[:PORT] (port 5432 by default; [v6]:port for IPv6).
    target: String,
    /// Connect to this address while checking HOST's name (libpq's hostaddr).
    #[arg(long)]
    hostaddr: Option<String>,
    /// Default: verify-full with --root-cert, require without.
    #[arg(long)]
    sslmode: Option<String>,
    #[arg(long = "root-cert")]
    root_cert: Option<PathBuf>,
    /// Client certificate to present when the server asks.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[arg(long, default_value = "30d")]
    warning: String,
    #[arg(long, default_value = "7d")]
    critical: String,
    /// Also ask whether this user could log in without TLS.
    #[arg(long)]
    user: Option<String>,
    /// The database for --user (default: the user's name).
    #[arg(long)]
    database: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// A libpq connection string (key=value or postgresql:// URL); PG* variables fill the rest.
    dsn: String,
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
}

#[derive(Debug, Args)]
pub struct InstallCertArgs {
    /// The new certificate chain (default: $RENEWED_LINEAGE/fullchain.pem).
    #[arg(long = "cert-chain")]
    cert_chain: Option<PathBuf>,
    /// The new key (default: $RENEWED_LINEAGE/privkey.pem).
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    pgdata: PathBuf,
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// How long to wait for the server to serve the new certificate.
    #[arg(long, default_value = "10s")]
    timeout: String,
}

pub fn run(cmd: PgCommand) -> Result<ExitCode> {
    match cmd {
        PgCommand::Configure(a) => run_configure(a),
        PgCommand::Probe(a) => Ok(run_probe(a)),
        PgCommand::Audit(a) => Ok(run_audit(a)),
        PgCommand::InstallCert(a) => run_install(a),
    }
}

fn duration(flag: &str, v: &str) -> Result<Duration> {
    Ok(ward_io::parse_duration(flag, v)?)
}

fn run_configure(a: ConfigureArgs) -> Result<ExitCode> {
    let o = ConfigureOptions {
        require_cert: a
            .require_cert
            .iter()
            .map(|s| HbaSpec::parse("--require-cert", s, false))
            .collect::<Result<_>>()?,
        password: a
            .password
            .iter()
            .map(|s| HbaSpec::parse("--password", s, true))
            .collect::<Result<_>>()?,
        pgdata: a.pgdata,
        config_file: a.config_file,
        hba_file: a.hba_file,
        cert: a.cert,
        key: a.key,
        ca: a.ca,
        crl: a.crl,
        min_tls: a.min_tls,
        reject_superuser: a.reject_superuser,
        dry_run: a.dry_run,
    };
    let out = configure(&o)?;
    let leaf = &out.pair.leaf;
    outln!(
        "certificate {} (SANs: {}) valid until {} ({} days); SHA-256 {}",
        leaf.subject,
        if leaf.sans.is_empty() {
            "none".into()
        } else {
            leaf.sans.join(", ")
        },
        leaf.not_after,
        leaf.days_left,
        leaf.sha256_fingerprint
    );
    if out.changed.is_empty() {
        outln!("nothing to change: the configuration is already as asked");
    } else if !matches!(out.server, ServerState::DryRun) {
        for p in &out.changed {
            outln!("updated {}", p.display());
        }
    }
    match out.server {
        ServerState::DryRun => {
            print!("{}", out.diff);
            outln!("dry run: nothing was changed");
        }
        ServerState::Stopped => outln!("PostgreSQL is not running: it was left stopped and uses the new settings when it starts"),
        ServerState::Unchanged => outln!("PostgreSQL is running; nothing changed, so it was not reloaded"),
        ServerState::ReloadedUnverified { pid, reason } => {
            outln!("reloaded PostgreSQL (pid {pid}); not verified on the wire: {reason}")
        }
        ServerState::Reloaded { pid, verified: true, .. } => outln!(
            "reloaded PostgreSQL (pid {pid}, not restarted); it now serves the new certificate (SHA-256 {})",
            leaf.sha256_fingerprint
        ),
        ServerState::Reloaded { pid, verified: false, served } => {
            return Err(Error::invalid(
                format!("PostgreSQL (pid {pid})"),
                match served {
                    Some(fp) => format!("accepted the reload but still serves the old certificate (SHA-256 {fp}); its log says why (look for \"SSL configuration was not reloaded\")"),
                    None => "accepted the reload but serves no TLS (it answers N): the settings did not take effect; is --config-file the file this server reads (SHOW config_file)?".to_string(),
                },
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn split_target(t: &str) -> std::result::Result<(String, u16), String> {
    let bad = || format!("{t:?} is not HOST[:PORT]");
    if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(bad)?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if p.is_empty() => 5432,
            None => return Err(bad()),
        };
        return Ok((h.to_string(), port));
    }
    if t.matches(':').count() > 1 {
        return Ok((t.to_string(), 5432)); // a bare IPv6 address
    }
    match t.split_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().map_err(|_| bad())?)),
        None if !t.is_empty() => Ok((t.to_string(), 5432)),
        None => Err(bad()),
    }
}

fn unknown(msg: impl std::fmt::Display) -> ExitCode {
    outln!("UNKNOWN: {msg}");
    ExitCode::from(3)
}

fn run_probe(a: ProbeArgs) -> ExitCode {
    let (host, port) = match split_target(&a.target) {
        Ok(v) => v,
        Err(e) => return unknown(e),
    };
    let sslmode = match a.sslmode.as_deref() {
        Some(m) => match m.parse::<SslMode>() {
            Ok(m) => m,
            Err(e) => return unknown(format!("--sslmode: {e}")),
        },
        None if a.root_cert.is_some() => SslMode::VerifyFull,
        None => SslMode::Require,
    };
    let (warning, critical) = match (
        duration("--warning", &a.warning),
        duration("--critical", &a.critical),
    ) {
        (Ok(w), Ok(c)) => (w, c),
        (Err(e), _) | (_, Err(e)) => return unknown(e),
    };
    let opts = ProbeOptions {
        host,
        port,
        hostaddr: a.hostaddr,
        sslmode,
        root_cert: a.root_cert,
        client_cert: a.cert.zip(a.key),
        warning,
        critical,
        plaintext_login: a.user.map(|u| {
            let db = a.database.unwrap_or_else(|| u.clone());
            (u, db)
        }),
        timeout: Duration::from_secs(10),
    };
    match probe(&opts) {
        Ok(r) => {
            match a.format {
                ReportFormat::Text => print!("{}", r.to_text()),
                ReportFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                }
            }
            ExitCode::from(r.status as u8)
        }
        Err(e) => unknown(e),
    }
}

fn run_audit(a: AuditArgs) -> ExitCode {
    let params = match ward_pg::conninfo::resolve(&a.dsn, &|k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(e) => return unknown(e),
    };
    // What libpq would print as warnings (an ignored password file).
    for w in &params.warnings {
        eprintln!("warning: {w}");
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return unknown(format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(ward_pg::audit::audit(&params)) {
        Ok(r) => {
            match a.format {
                AuditFormat::Table => print!("{}", r.to_table()),
                AuditFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                }
            }
            ExitCode::from(r.status as u8)
        }
        Err(e) => unknown(e),
    }
}

fn run_install(a: InstallCertArgs) -> Result<ExitCode> {
    let (cert, key) = match (a.cert_chain, a.key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => match std::env::var("RENEWED_LINEAGE") {
            Ok(l) if !l.is_empty() => certbot_lineage(&l),
            _ => {
                return Err(Error::invalid(
                    "ward pg install-cert",
                    "pass --cert-chain and --key, or run it as certbot's --deploy-hook (which sets RENEWED_LINEAGE)",
                ))
            }
        },
        _ => return Err(Error::invalid("ward pg install-cert", "pass both --cert-chain and --key")),
    };
    let timeout = duration("--timeout", &a.timeout)?;
    match install_cert(&cert, &key, &a.pgdata, a.config_file.as_deref(), timeout)? {
        InstallOutcome::InstalledStopped { cert, key } => outln!(
            "installed {} and {}; PostgreSQL is not running and will serve them when it starts",
            cert.display(),
            key.display()
        ),
        InstallOutcome::Served { cert, key, pid, fingerprint } => outln!(
            "installed {} and {}; reloaded PostgreSQL (pid {pid}, not restarted), which now serves SHA-256 {fingerprint}",
            cert.display(),
            key.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

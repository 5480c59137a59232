//! `ward pg audit`: every client session's TLS state and the pg_hba.conf rules, from the
//! server's own views, as a check plugin.

use crate::connect::{connect, describe_pg_error};
use crate::conninfo::ConnParams;
use crate::error::{Error, Result};
use serde::Serialize;
use std::net::IpAddr;
use ward_pki::expiry::CheckStatus;

/// One client session.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub pid: i32,
    pub user: Option<String>,
    pub database: Option<String>,
    pub address: Option<String>,
    pub application: Option<String>,
    pub ssl: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub client_dn: Option<String>,
    pub client_serial: Option<String>,
    /// This audit's own session.
    pub own: bool,
}

/// One pg_hba.conf rule.
#[derive(Debug, Clone, Serialize)]
pub struct HbaRule {
    pub line: Option<i32>,
    pub kind: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub address: Option<String>,
    pub netmask: Option<String>,
    pub method: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub status: CheckStatus,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub server: String,
    pub sessions: Vec<Session>,
    pub hba_rules: Vec<HbaRule>,
    pub findings: Vec<Finding>,
    pub status: CheckStatus,
    pub summary: String,
}

fn is_local(addr: &str) -> bool {
    addr.parse::<IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(false)
}

/// Runs the audit.
pub async fn audit(p: &ConnParams) -> Result<AuditReport> {
    let client = connect(p, "ward pg audit").await?;
    let rows = client
        .query(
            "SELECT a.pid, a.usename::text, a.datname::text, host(a.client_addr), a.application_name, \
                    s.ssl, s.version, s.cipher, s.client_dn, s.client_serial::text, a.pid = pg_backend_pid() \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.backend_type IN ('client backend', 'walsender') ORDER BY a.pid",
            &[],
        )
        .await
        .map_err(|e| Error::connect("pg_stat_ssl", describe_pg_error(&e)))?;
    let sessions: Vec<Session> = rows
        .iter()
        .map(|r| Session {
            pid: r.get(0),
            user: r.get(1),
            database: r.get(2),
            address: r.get(3),
            application: r.get(4),
            ssl: r.get::<_, Option<bool>>(5).unwrap_or(false),
            version: r.get(6),
            cipher: r.get(7),
            client_dn: r.get(8),
            client_serial: r.get(9),
            own: r.get::<_, Option<bool>>(10).unwrap_or(false),
        })
        .collect();
    let mut findings = Vec::new();
    let hba = client
        .query(
            "SELECT line_number, type, array_to_string(database, ','), array_to_string(user_name, ','), \
                    address, netmask, auth_method, error FROM pg_hba_file_rules ORDER BY line_number NULLS FIRST",
            &[],
        )
        .await;
    let hba_rules: Vec<HbaRule> = match hba {
        Ok(rows) => rows
            .iter()
            .map(|r| HbaRule {
                line: r.get(0),
                kind: r.get(1),
                database: r.get(2),
                user: r.get(3),
                address: r.get(4),
                netmask: r.get(5),
                method: r.get(6),
                error: r.get(7),
            })
            .collect(),
        Err(e) => {
            findings.push(Finding {
                status: CheckStatus::Unknown,
                message: format!(
                    "cannot read pg_hba_file_rules ({}); audit as a superuser",
                    describe_pg_error(&e)
                ),
            });
            Vec::new()
        }
    };
    for s in &sessions {
        let who = format!(
            "session {} ({}@{} from {})",
            s.pid,
            s.user.as_deref().unwrap_or("?"),
            s.database.as_deref().unwrap_or("?"),
            s.address.as_deref().unwrap_or("local socket")
        );
        match (&s.address, s.ssl) {
            (Some(a), false) if !is_local(a) => findings.push(Finding {
                status: CheckStatus::Critical,
                message: format!("{who} is not encrypted"),
            }),
            // Plaintext over loopback TCP is a rule that would also admit the network.
            (Some(_), false) => findings.push(Finding {
                status: CheckStatus::Warning,
                message: format!("{who} is not encrypted (loopback TCP; a `host` rule allows it)"),
            }),
            _ => {}
        }
        if let Some(v) = &s.version {
            if v == "TLSv1" || v == "TLSv1.1" {
                findings.push(Finding {
                    status: CheckStatus::Warning,
                    message: format!("{who} uses {v}; require TLSv1.2 or later"),
                });
            }
        }
    }
    for r in &hba_rules {
        if r.kind.is_none() || r.error.is_some() {
            findings.push(Finding {
                status: CheckStatus::Critical,
                message: format!(
                    "pg_hba.conf line {} failed to parse: {}",
                    r.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                    r.error.as_deref().unwrap_or("(no details)")
                ),
            });
            continue;
        }
        let open = match r.address.as_deref() {
            None => false, // local
            Some("samehost") => false,
            Some(a) => !is_local(a),
        };
        if r.kind.as_deref() == Some("host") && open && r.method.as_deref() != Some("reject") {
            findings.push(Finding {
                status: CheckStatus::Critical,
                message: format!(
                    "pg_hba.conf line {}: `host {} {} {}{} {}` accepts connections from the network without TLS; use hostssl",
                    r.line.unwrap_or_default(),
                    r.database.as_deref().unwrap_or(""),
                    r.user.as_deref().unwrap_or(""),
                    r.address.as_deref().unwrap_or(""),
                    r.netmask.as_deref().map(|m| format!("/{m}")).unwrap_or_default(),
                    r.method.as_deref().unwrap_or("")
                ),
            });
        }
    }
    let status = findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(CheckStatus::Ok);
    let server = p.describe_target();
    let tls_sessions = sessions.iter().filter(|s| s.ssl).count();
    let head = format!(
        "{}: {server}: {} session{}, {tls_sessions} over TLS; {} pg_hba.conf rule{}",
        status.label(),
        sessions.len(),
        if sessions.len() == 1 { "" } else { "s" },
        hba_rules.len(),
        if hba_rules.len() == 1 { "" } else { "s" },
    );
    let summary = if findings.is_empty() {
        head
    } else {
        format!(
            "{head}; {}",
            findings
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    Ok(AuditReport {
        server,
        sessions,
        hba_rules,
        findings,
        status,
        summary,
    })
}

impl AuditReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut rows = vec![[
            "PID",
            "USER",
            "DATABASE",
            "ADDRESS",
            "APPLICATION",
            "TLS",
            "VERSION",
            "CIPHER",
            "CLIENT DN",
            "SERIAL",
        ]
        .map(String::from)];
        for s in &self.sessions {
            let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            rows.push([
                format!("{}{}", s.pid, if s.own { "*" } else { "" }),
                o(&s.user),
                o(&s.database),
                s.address.clone().unwrap_or_else(|| "local".into()),
                o(&s.application),
                if s.ssl { "yes".into() } else { "NO".into() },
                o(&s.version),
                o(&s.cipher),
                o(&s.client_dn),
                o(&s.client_serial),
            ]);
        }
        let widths: Vec<usize> = (0..10)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = format!("{}\n\n", self.summary);
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str("(* this audit's own session)\n");
        if !self.findings.is_empty() {
            out.push('\n');
            for f in &self.findings {
                out.push_str(&format!("{}: {}\n", f.status.label(), f.message));
            }
        }
        out
    }
}

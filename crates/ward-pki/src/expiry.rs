//! `ward pki check-expiry`: a check plugin over certificate files and directories, with the
//! standard exit codes and one summary line naming the soonest-expiring certificate.

use crate::inspect::{format_time, pem_or_der_blocks};
use ::time::OffsetDateTime;
use std::path::{Path, PathBuf};
use std::time::Duration;
use x509_parser::prelude::*;

/// A check plugin's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckStatus {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl CheckStatus {
    pub fn label(&self) -> &'static str {
        match self {
            CheckStatus::Ok => "OK",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Critical => "CRITICAL",
            CheckStatus::Unknown => "UNKNOWN",
        }
    }
}

/// One certificate found.
#[derive(Debug, Clone)]
pub struct FoundCertificate {
    pub path: PathBuf,
    pub subject: String,
    pub not_after: OffsetDateTime,
}

/// The result: status, the summary line, and what was examined.
#[derive(Debug, Clone)]
pub struct ExpiryReport {
    pub status: CheckStatus,
    pub summary: String,
    pub certificates: Vec<FoundCertificate>,
}

/// Examines every certificate in the given files and directories (recursively; files that
/// hold no certificate, such as keys, are skipped inside directories but are an error when
/// named directly).
pub fn check_expiry(paths: &[PathBuf], warning: Duration, critical: Duration) -> ExpiryReport {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut found, &mut problems);
        } else {
            match certificates_in(p) {
                Ok(v) if v.is_empty() => {
                    problems.push(format!("{}: no certificate found", p.display()))
                }
                Ok(v) => found.extend(v),
                Err(e) => problems.push(e),
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    if let Some(first) = problems.first() {
        return ExpiryReport {
            status: CheckStatus::Unknown,
            summary: format!("UNKNOWN: {first}"),
            certificates: found,
        };
    }
    let Some(soonest) = found.iter().min_by_key(|c| c.not_after).cloned() else {
        return ExpiryReport {
            status: CheckStatus::Unknown,
            summary: "UNKNOWN: no certificates found".into(),
            certificates: found,
        };
    };
    let left = soonest.not_after - now;
    let days = left.whole_days();
    let (status, when) = if left <= ::time::Duration::ZERO {
        (
            CheckStatus::Critical,
            format!(
                "expired on {} ({} days ago)",
                format_time(soonest.not_after),
                -days
            ),
        )
    } else {
        let s = if left <= to_time(critical) {
            CheckStatus::Critical
        } else if left <= to_time(warning) {
            CheckStatus::Warning
        } else {
            CheckStatus::Ok
        };
        (
            s,
            format!(
                "expires on {} ({days} days left)",
                format_time(soonest.not_after)
            ),
        )
    };
    let summary = format!(
        "{}: {} certificate{} checked; soonest: {} ({}) {when}",
        status.label(),
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        soonest.path.display(),
        soonest.subject,
    );
    ExpiryReport {
        status,
        summary,
        certificates: found,
    }
}

fn to_time(d: Duration) -> ::time::Duration {
    ::time::Duration::try_from(d).unwrap_or(::time::Duration::MAX)
}

fn walk(dir: &Path, found: &mut Vec<FoundCertificate>, problems: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{}: cannot read directory: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, found, problems);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pem" | "crt" | "cer")
        ) {
            // Inside a directory only files with certificate blocks count; keys and CSRs are skipped.
            if let Ok(bytes) = std::fs::read(&p) {
                if String::from_utf8_lossy(&bytes).contains("BEGIN CERTIFICATE-----") {
                    match certificates_in(&p) {
                        Ok(v) => found.extend(v),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
}

fn certificates_in(path: &Path) -> Result<Vec<FoundCertificate>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let blocks = pem_or_der_blocks(path, &bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (tag, der) in blocks {
        if tag != "CERTIFICATE" && !tag.is_empty() {
            continue;
        }
        let (_, x) = parse_x509_certificate(&der)
            .map_err(|e| format!("{}: malformed certificate: {e}", path.display()))?;
        out.push(FoundCertificate {
            path: path.to_path_buf(),
            subject: x.subject().to_string(),
            not_after: x.validity().not_after.to_datetime(),
        });
    }
    Ok(out)
}

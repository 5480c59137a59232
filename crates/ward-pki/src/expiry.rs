//! `ward pki check-expiry`: a check plugin over certificate files and directories, with the
//! standard exit codes and one summary line naming the soonest-expiring certificate.

use crate::inspect::{format_time, pem_or_der_blocks};
use ::time::OffsetDateTime;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
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
///
/// Only regular files are read, each under the PEM cap, opened so that a FIFO cannot block;
/// symbolic links are followed, but every directory and file is visited once (by device and
/// inode), so a link loop ends and a certificate reached by two paths counts once. Whatever
/// cannot be read (a FIFO, a device, a broken link, a file over the cap) makes the answer
/// UNKNOWN, naming it.
pub fn check_expiry(paths: &[PathBuf], warning: Duration, critical: Duration) -> ExpiryReport {
    let mut walk = Walk::default();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk.dir(p, &m),
            Ok(_) => match walk.file(p, true) {
                Some(v) if v.is_empty() => walk
                    .problems
                    .push(format!("{}: no certificate found", p.display())),
                Some(v) => walk.found.extend(v),
                None => {}
            },
            Err(e) => walk
                .problems
                .push(format!("{}: cannot read: {e}", p.display())),
        }
    }
    let Walk {
        found, problems, ..
    } = walk;
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

/// What a walk has seen, found and could not read.
#[derive(Default)]
struct Walk {
    seen: HashSet<(u64, u64)>,
    found: Vec<FoundCertificate>,
    problems: Vec<String>,
}

impl Walk {
    fn first_visit(&mut self, m: &std::fs::Metadata) -> bool {
        self.seen.insert((m.dev(), m.ino()))
    }

    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata) {
        if !self.first_visit(meta) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.problems
                    .push(format!("{}: cannot read directory: {e}", dir.display()));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let certificate_name = matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pem" | "crt" | "cer")
            );
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => self.dir(&p, &m),
                Ok(_) if certificate_name => {
                    // Inside a directory only files with certificate blocks count; keys
                    // and CSRs are skipped.
                    if let Some(v) = self.file(&p, false) {
                        self.found.extend(v);
                    }
                }
                Ok(_) => {}
                Err(e) if certificate_name => self
                    .problems
                    .push(format!("{}: cannot read: {e}", p.display())),
                // A broken link or a loop under another name: not a certificate file.
                Err(_) => {}
            }
        }
    }

    /// The certificates of one file; `None` when it was read before (through another path)
    /// or could not be read (recorded as a problem).
    fn file(&mut self, path: &Path, named: bool) -> Option<Vec<FoundCertificate>> {
        let (meta, bytes) = match ward_io::files::read_regular(path, ward_io::files::PEM) {
            Ok(r) => r,
            Err(e) => {
                self.problems.push(e.to_string());
                return None;
            }
        };
        if !self.first_visit(&meta) {
            return None;
        }
        if !named && !String::from_utf8_lossy(&bytes).contains("BEGIN CERTIFICATE-----") {
            return None;
        }
        match certificates_in(path, &bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(e);
                None
            }
        }
    }
}

fn certificates_in(path: &Path, bytes: &[u8]) -> Result<Vec<FoundCertificate>, String> {
    let blocks = pem_or_der_blocks(path, bytes).map_err(|e| e.to_string())?;
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

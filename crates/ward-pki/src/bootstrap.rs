//! `ward pki bootstrap`: a whole deployment's certificates from one small YAML plan.
//!
//! ```yaml
//! ca:
//!   cn: Ward CA            # required
//!   key: ecdsa-p256        # optional (default ecdsa-p256)
//!   expiry: 87600h         # optional (default 87600h, ten years)
//! key: ecdsa-p256          # key type for everything issued (default ecdsa-p256)
//! expiry: 4320h            # leaf lifetime (default 4320h, 180 days)
//! backends:                # server + client auth; the name (FQDN) is always a SAN
//!   - name: backend-1.example.com
//!     hosts: [backend-1, 10.0.0.1, localhost, 127.0.0.1]
//! agents:                  # client auth; CN = the agent's user
//!   - name: agent
//!   - prefix: agent-       # agent-00001 … agent-10000
//!     count: 10000
//! postgres:                # server auth for PostgreSQL servers
//!   - name: postgres.example.com
//!     hosts: [postgres, 10.0.0.43, localhost, 127.0.0.1]
//! postgres_clients:        # client auth; CN = the PostgreSQL user (for `cert` auth)
//!   - user: sensu
//! ```

use crate::authority::{CertificateAuthority, KeySource, LeafRequest};
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, KeyEncoding};
use crate::names::parse_hosts;
use crate::profile::{SigningConfig, SigningProfile};
use crate::request::{CaOptions, CertificateRequest, Subject};
use rayon::prelude::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use ward_io::files::{self, Overwrite, PlannedFile};
use ward_io::parse_duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    ca: RawCa,
    key: Option<String>,
    expiry: Option<String>,
    #[serde(default)]
    backends: Vec<RawHost>,
    #[serde(default)]
    agents: Vec<RawAgent>,
    #[serde(default)]
    postgres: Vec<RawHost>,
    #[serde(default)]
    postgres_clients: Vec<RawClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    cn: String,
    key: Option<String>,
    expiry: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: Option<String>,
    prefix: Option<String>,
    count: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    user: String,
}

/// One certificate the plan asks for.
#[derive(Debug, Clone)]
pub struct PlannedCertificate {
    pub role: &'static str,
    pub name: String,
    pub hosts: Vec<crate::names::SubjectName>,
    pub profile: SigningProfile,
}

/// A parsed plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ca: CertificateRequest,
    pub key: KeyAlgorithm,
    pub certificates: Vec<PlannedCertificate>,
}

impl Plan {
    /// Parses a plan; `source` names it in errors.
    pub fn from_yaml(source: &str, text: &str) -> Result<Self> {
        let raw: RawPlan = serde_saphyr::from_str(text).map_err(|e| Error::Malformed {
            what: source.to_string(),
            format: "bootstrap plan YAML",
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
        let key = match &raw.key {
            Some(k) => k.parse()?,
            None => KeyAlgorithm::default(),
        };
        let expiry = match &raw.expiry {
            Some(e) => parse_duration(&format!("{source}: expiry"), e)?,
            None => std::time::Duration::from_secs(4320 * 3600),
        };
        let ca = CertificateRequest {
            subject: Subject::with_cn(raw.ca.cn.clone()),
            hosts: Vec::new(),
            key: match &raw.ca.key {
                Some(k) => k.parse()?,
                None => KeyAlgorithm::default(),
            },
            ca: Some(CaOptions {
                expiry: Some(match &raw.ca.expiry {
                    Some(e) => parse_duration(&format!("{source}: ca.expiry"), e)?,
                    None => std::time::Duration::from_secs(87600 * 3600),
                }),
                path_len: None,
            }),
        };
        let profile = |name: &str| {
            let mut p = SigningProfile::builtin(name).expect("built-in profile");
            p.expiry = expiry;
            p
        };
        let mut certs = Vec::new();
        let host_list = |role: &str, name: &str, hosts: &[String]| -> Result<Vec<_>> {
            // The FQDN is a SAN, always: the guides leave it out and verify-full then fails.
            let mut all = vec![name.to_string()];
            all.extend(hosts.iter().cloned());
            parse_hosts(all.iter().map(String::as_str))
                .map_err(|e| Error::invalid(format!("{source}: {role} {name:?}"), e.to_string()))
        };
        for b in &raw.backends {
            certs.push(PlannedCertificate {
                role: "backend",
                name: b.name.clone(),
                hosts: host_list("backend", &b.name, &b.hosts)?,
                profile: profile("peer"),
            });
        }
        for p in &raw.postgres {
            certs.push(PlannedCertificate {
                role: "postgres",
                name: p.name.clone(),
                hosts: host_list("postgres", &p.name, &p.hosts)?,
                profile: profile("server"),
            });
        }
        for c in &raw.postgres_clients {
            certs.push(PlannedCertificate {
                role: "postgres client",
                name: c.user.clone(),
                hosts: cn_san(&c.user),
                profile: profile("client"),
            });
        }
        for a in &raw.agents {
            match (&a.name, &a.prefix, a.count) {
                (Some(n), None, None) => certs.push(PlannedCertificate {
                    role: "agent",
                    name: n.clone(),
                    hosts: cn_san(n),
                    profile: profile("client"),
                }),
                (None, Some(prefix), Some(count)) if count > 0 && count <= 1_000_000 => {
                    let width = count.to_string().len().max(5);
                    for i in 1..=count {
                        let name = format!("{prefix}{i:0width$}");
                        certs.push(PlannedCertificate {
                            role: "agent",
                            hosts: cn_san(&name),
                            name,
                            profile: profile("client"),
                        });
                    }
                }
                _ => {
                    return Err(Error::invalid(
                        format!("{source}: agents"),
                        "each entry needs either `name`, or `prefix` with `count` (1 to 1000000)",
                    ))
                }
            }
        }
        crate::request::check_common_name(&format!("{source}: ca.cn"), &raw.ca.cn)?;
        let mut seen = BTreeSet::new();
        for c in &certs {
            crate::request::check_common_name(
                &format!(
                    "{source}: {} \"{}\"",
                    c.role,
                    ward_io::text::one_line(&c.name)
                ),
                &c.name,
            )?;
            if c.name.is_empty() || c.name.contains('/') || c.name.starts_with('.') {
                return Err(Error::invalid(
                    format!("{source}: {} {:?}", c.role, c.name),
                    "not usable as a file name",
                ));
            }
            if !seen.insert(c.name.as_str()) || c.name == "ca" {
                return Err(Error::invalid(format!("{source}: {} {:?}", c.role, c.name), "name is used twice; every certificate needs its own name (its files are NAME.pem, NAME-key.pem)"));
            }
        }
        Ok(Plan {
            ca,
            key,
            certificates: certs,
        })
    }
}

/// The SAN every certificate gets from its CN when the CN is a host name or IP (as
/// `CertificateAuthority::issue` would add it), listed in the plan so the plan shows it.
fn cn_san(cn: &str) -> Vec<crate::names::SubjectName> {
    crate::names::SubjectName::from_common_name(cn)
        .into_iter()
        .collect()
}

/// Issues everything in the plan into `dir` (CA first, then every certificate in parallel)
/// and writes all files in one atomic batch: either every file lands or none does.
/// `progress(done, total)` is called as certificates are issued.
pub fn bootstrap(
    plan: &Plan,
    dir: &Path,
    overwrite: Overwrite,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<PathBuf>> {
    let (ca, ca_issued) = CertificateAuthority::create(&plan.ca, KeyEncoding::Traditional)?;
    let mut planned = vec![
        PlannedFile::public(dir.join("ca.pem"), ca_issued.cert_pem.clone()),
        PlannedFile::key(
            dir.join("ca-key.pem"),
            ca_issued.key_pem.clone().unwrap_or_default(),
        ),
        PlannedFile::public(dir.join("ca.csr"), ca_issued.csr_pem.clone()),
        PlannedFile::public(
            dir.join("ca-config.json"),
            SigningConfig::ward_default_json(),
        ),
    ];
    if overwrite == Overwrite::Refuse {
        // Fail before spending time on issuance.
        for p in planned.iter().map(|p| p.path.clone()).chain(
            plan.certificates
                .iter()
                .map(|c| dir.join(format!("{}.pem", c.name))),
        ) {
            if p.exists() {
                return Err(ward_io::Error::Exists { path: p }.into());
            }
        }
    }
    let total = plan.certificates.len();
    let done = AtomicUsize::new(0);
    let issued: Vec<Vec<PlannedFile>> = plan
        .certificates
        .par_iter()
        .map(|c| {
            let out = ca.issue(LeafRequest {
                subject: Subject::with_cn(c.name.clone()),
                hosts: c.hosts.clone(),
                key: KeySource::Generate(plan.key),
                key_encoding: KeyEncoding::Traditional,
                profile: c.profile.clone(),
                clamp: false,
            })?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(n, total);
            Ok(crate::bare::bare_files(
                &dir.join(&c.name),
                Some(&out.cert_pem),
                out.key_pem.as_deref(),
                Some(&out.csr_pem),
            ))
        })
        .collect::<Result<_>>()?;
    planned.extend(issued.into_iter().flatten());
    files::write_all(&planned, overwrite)?;
    Ok(planned.into_iter().map(|p| p.path).collect())
}

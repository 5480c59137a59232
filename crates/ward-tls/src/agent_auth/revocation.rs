//! The certificate under revocation check, and the verdict from all its sources.

use super::*;

/// What revocation checking needs from the agent's certificate and its issuer.
#[derive(Debug)]
pub(super) struct Leaf {
    pub(super) cn: String,
    pub(super) subject: String,
    pub(super) serial: String,
    pub(super) serial_norm: Vec<u8>,
    pub(super) issuer_name_raw: Vec<u8>,
    pub(super) crl_dps: Vec<String>,
    pub(super) ocsp_urls: Vec<String>,
    pub(super) issuer: Option<Issuer>,
}

/// The certificate's issuer, found among the presented intermediates and the trusted CAs.
#[derive(Debug)]
pub(super) struct Issuer {
    pub(super) subject: String,
    pub(super) spki_raw: Vec<u8>,
    pub(super) key_bits: Vec<u8>,
    pub(super) may_sign_crls: bool,
}

impl Leaf {
    pub(super) fn parse(
        chain: &[CertificateDer<'_>],
        trusted: &[CertificateDer<'_>],
    ) -> Result<Leaf, String> {
        let (_, x) = x509_parser::parse_x509_certificate(&chain[0])
            .map_err(|e| format!("the client certificate is malformed: {e}"))?;
        let cn = ward_pki::inspect::common_name(x.subject());
        let mut crl_dps = Vec::new();
        let mut ocsp_urls = Vec::new();
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    for p in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            names,
                        )) = &p.distribution_point
                        {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    if u.starts_with("http://") && !crl_dps.contains(&u.to_string())
                                    {
                                        crl_dps.push(u.to_string());
                                    }
                                }
                            }
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for d in &aia.accessdescs {
                        if d.access_method
                            == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                        {
                            if let GeneralName::URI(u) = &d.access_location {
                                if u.starts_with("http://") && !ocsp_urls.contains(&u.to_string()) {
                                    ocsp_urls.push(u.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let issuer = chain[1..].iter().chain(trusted.iter()).find_map(|c| {
            let (_, cand) = x509_parser::parse_x509_certificate(c).ok()?;
            if cand.subject().as_raw() != x.issuer().as_raw() {
                return None;
            }
            x.verify_signature(Some(cand.public_key())).ok()?;
            Some(Issuer {
                subject: cand.subject().to_string(),
                spki_raw: cand.public_key().raw.to_vec(),
                key_bits: cand.public_key().subject_public_key.data.to_vec(),
                may_sign_crls: match cand.key_usage() {
                    Ok(Some(ku)) => ku.value.crl_sign(),
                    Ok(None) => true,
                    Err(_) => false,
                },
            })
        });
        Ok(Leaf {
            cn,
            subject: x.subject().to_string(),
            serial: ward_pki::inspect::hex_colon(x.raw_serial()),
            serial_norm: normalize_serial(x.raw_serial()),
            issuer_name_raw: x.issuer().as_raw().to_vec(),
            crl_dps,
            ocsp_urls,
            issuer,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Revocation.

pub(super) enum Verdict {
    Good(String),
    Revoked(String),
    Unknown(Vec<String>),
}

/// One source's answer.
pub(super) enum Answer {
    Good,
    Revoked(String),
    /// A CRL of another CA: says nothing about this certificate.
    NotCovered,
    Failed(String),
}

#[derive(Debug)]
pub(super) struct Revocation {
    pub(super) configured: Vec<(String, Location)>,
    pub(super) fetcher: Fetcher,
    pub(super) crls: Cache<String, Crl>,
    pub(super) ocsp: Cache<(String, Vec<u8>, Vec<u8>), OcspStatus>,
}

impl Revocation {
    pub(super) fn new(configured: Vec<(String, Location)>) -> Self {
        Revocation {
            configured,
            fetcher: Fetcher::new(),
            crls: Cache::new(),
            ocsp: Cache::new(),
        }
    }

    pub(super) async fn check(self: &Arc<Self>, leaf: Arc<Leaf>) -> Verdict {
        let mut crl_sources: Vec<(String, Location)> = self.configured.clone();
        for u in &leaf.crl_dps {
            if crl_sources.iter().any(|(s, _)| s == u) {
                continue;
            }
            match parse_location(u) {
                Ok(l) => crl_sources.push((u.clone(), l)),
                Err(e) => {
                    tracing::debug!(url = %u, error = %e, "ignored a CRL distribution point")
                }
            }
        }
        let mut ocsp_sources = Vec::new();
        for u in &leaf.ocsp_urls {
            match parse_location(u) {
                Ok(Location::Http(h)) => ocsp_sources.push((u.clone(), h)),
                _ => tracing::debug!(url = %u, "ignored an OCSP URL that is not http://"),
            }
        }
        if crl_sources.is_empty() && ocsp_sources.is_empty() {
            return Verdict::Unknown(vec![
                "the certificate names no CRL distribution point or OCSP responder, and agent-auth-crl-urls is empty".into(),
            ]);
        }
        let Some(issuer_subject) = leaf.issuer.as_ref().map(|i| i.subject.clone()) else {
            return Verdict::Unknown(vec![
                "its issuer's certificate was not found among the presented and trusted certificates, so no CRL or OCSP answer can be verified".into(),
            ]);
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (url, loc) in crl_sources {
            let (me, leaf) = (self.clone(), leaf.clone());
            tasks.spawn(async move {
                let a = me.crl_answer(&url, &loc, &leaf).await;
                (format!("CRL {url}"), a)
            });
        }
        for (url, http) in ocsp_sources {
            let (me, leaf) = (self.clone(), leaf.clone());
            tasks.spawn(async move {
                let a = me.ocsp_answer(&url, &http, &leaf).await;
                (format!("OCSP {url}"), a)
            });
        }
        let mut good = None;
        let mut failures = Vec::new();
        let mut covered = false;
        while let Some(joined) = tasks.join_next().await {
            let Ok((source, answer)) = joined else {
                failures.push("a revocation check failed internally".to_string());
                continue;
            };
            match answer {
                Answer::Revoked(why) => {
                    return Verdict::Revoked(format!("{why} according to {source}"))
                }
                Answer::Good => {
                    covered = true;
                    good.get_or_insert(source);
                }
                Answer::NotCovered => {}
                Answer::Failed(why) => {
                    covered = true;
                    failures.push(format!("{source}: {why}"));
                }
            }
        }
        match good {
            Some(source) => Verdict::Good(source),
            None => {
                if !covered {
                    failures.push(format!(
                        "no configured CRL is issued by its CA ({issuer_subject}) and the certificate names no CRL distribution point or OCSP responder"
                    ));
                }
                Verdict::Unknown(failures)
            }
        }
    }

    pub(super) async fn crl_answer(&self, url: &str, loc: &Location, leaf: &Leaf) -> Answer {
        let file_stamp = match loc {
            Location::File(p) => Some(FileStamp::of(p)),
            Location::Http(_) => None,
        };
        let fetched = self
            .crls
            .get(&url.to_string(), file_stamp, || async {
                // Reading and parsing a CRL (up to MAX_CRL_BYTES, many thousand entries)
                // is blocking work: off the async workers.
                let parsed = match loc {
                    Location::File(p) => {
                        let p = p.clone();
                        tokio::task::spawn_blocking(move || {
                            crate::read_crl_file(&p)
                                .map_err(|e| e.to_string())
                                .and_then(|b| Crl::parse(&b))
                        })
                        .await
                        .unwrap_or_else(|_| Err("reading the CRL failed".into()))
                    }
                    Location::Http(h) => match self.fetcher.fetch(h, None, MAX_CRL_BYTES).await {
                        Ok(b) => tokio::task::spawn_blocking(move || Crl::parse(&b))
                            .await
                            .unwrap_or_else(|_| Err("parsing the CRL failed".into())),
                        Err(e) => Err(e),
                    },
                };
                match parsed {
                    Ok(crl) => {
                        let now = SystemTime::now();
                        let until = match crl.next_update {
                            Some(n) => {
                                let t = UNIX_EPOCH + Duration::from_secs(n.max(0) as u64);
                                if t > now {
                                    t
                                } else {
                                    now + FAILURE_RETRY
                                }
                            }
                            None => now + CRL_DEFAULT_TTL,
                        };
                        Fetched {
                            value: Ok(Arc::new(crl)),
                            until,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%url, error = %e, "cannot use the CRL");
                        Fetched::failed(e)
                    }
                }
            })
            .await;
        match fetched.value {
            Ok(crl) => crl.answer(leaf),
            Err(e) => Answer::Failed(e),
        }
    }

    pub(super) async fn ocsp_answer(&self, url: &str, http: &HttpUrl, leaf: &Leaf) -> Answer {
        let Some(issuer) = &leaf.issuer else {
            return Answer::Failed("the issuer is unknown".into());
        };
        let key = (
            url.to_string(),
            leaf.serial_norm.clone(),
            sha1(&issuer.key_bits),
        );
        let fetched = self
            .ocsp
            .get(&key, None, || async {
                let result = match ocsp_request(leaf, issuer) {
                    Ok((request, cert_id)) => self
                        .fetcher
                        .fetch(
                            http,
                            Some(("application/ocsp-request", request)),
                            MAX_OCSP_BYTES,
                        )
                        .await
                        .and_then(|body| parse_ocsp_response(&body, &cert_id, issuer)),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(status) => {
                        let now = SystemTime::now();
                        // A response already past its nextUpdate is no answer; ask again
                        // after FAILURE_RETRY, not on every connection.
                        let until = match status.next_update {
                            Some(n) => (UNIX_EPOCH + Duration::from_secs(n.max(0) as u64))
                                .max(now + FAILURE_RETRY),
                            None => now + OCSP_DEFAULT_TTL,
                        };
                        Fetched {
                            value: Ok(Arc::new(status)),
                            until,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%url, serial = %leaf.serial, error = %e, "no usable OCSP answer");
                        Fetched::failed(e)
                    }
                }
            })
            .await;
        match fetched.value {
            Err(e) => Answer::Failed(e),
            Ok(s) => {
                let now = unix_now();
                if s.this_update > now + SKEW {
                    return Answer::Failed(format!(
                        "the response is not valid before {}",
                        date(s.this_update)
                    ));
                }
                match s.next_update {
                    Some(n) if n < now => {
                        return Answer::Failed(format!("the response expired on {}", date(n)));
                    }
                    // No nextUpdate: only a fresh answer counts, so an old "good" replayed
                    // over plain http cannot stand for ever.
                    None if s.this_update + (OCSP_DEFAULT_TTL.as_secs() as i64) < now => {
                        return Answer::Failed(format!(
                            "the response has no nextUpdate and was produced on {}, over {} s ago",
                            date(s.this_update),
                            OCSP_DEFAULT_TTL.as_secs()
                        ));
                    }
                    _ => {}
                }
                match &s.status {
                    OcspCertStatus::Good => Answer::Good,
                    OcspCertStatus::Revoked(why) => Answer::Revoked(why.clone()),
                    OcspCertStatus::Unknown => {
                        Answer::Failed("the responder does not know this certificate".into())
                    }
                }
            }
        }
    }
}

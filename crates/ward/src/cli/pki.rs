//! `ward pki …`.

use clap::{Args, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use ward_io::files::{self, Overwrite, PlannedFile};
use ward_io::parse_duration;
use ward_pki::bootstrap::{bootstrap, Plan};
use ward_pki::expiry::check_expiry;
use ward_pki::inspect::{inspect_file, Inspected};
use ward_pki::request::check_common_name;
use ward_pki::revocation::{self, parse_reason, parse_serial};
use ward_pki::{
    ca_paths, parse_host_list, resolve_profile, CertificateAuthority, CertificateRequest, Error,
    KeyAlgorithm, KeyEncoding, KeySource, LeafRequest, Result, SigningConfig, SigningProfile,
    Subject,
};

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// cfssl-compatible: `gencert -initca CSRJSON` or `gencert -ca … -ca-key … CSRJSON`;
    /// prints cfssl's JSON ({"cert","csr","key"}) for `ward pki json -bare`.
    Gencert(GencertArgs),
    /// cfssljson-compatible: `json -bare NAME` writes NAME.pem, NAME-key.pem (0600), NAME.csr from stdin.
    Json(JsonArgs),
    /// Create a CA (ca.pem, ca-key.pem, ca.csr, ca-config.json) in a directory.
    InitCa(InitCaArgs),
    /// Issue a certificate under a profile (server, client, peer, or one from --config).
    Issue(IssueArgs),
    /// Issue a whole deployment's certificates from a YAML plan.
    Bootstrap(BootstrapArgs),
    /// Show what a certificate, CSR or CRL says.
    Info(InfoArgs),
    /// Check plugin: exit 0/1/2/3 by the soonest certificate expiry.
    CheckExpiry(CheckExpiryArgs),
    /// A new key and a CSR, made here so that the key never leaves this host (sign it with
    /// `ward pki sign` where the CA is).
    Csr(super::pki_csr::CsrArgs),
    /// Sign a CSR made elsewhere (cfssl `sign`-compatible: `-ca`, `-ca-key`, `-config`,
    /// `-profile`, `-hostname`; prints {"cert"} for `ward pki json -bare`). The profile, not
    /// the request, decides usages and lifetime.
    Sign(super::pki_csr::SignArgs),
    /// Put a CA in the system's trust store (and NSS's), take it out, or check it is there.
    #[command(subcommand)]
    Trust(super::pki_trust::TrustCommand),
    /// Record a certificate as revoked (then publish with `ward pki crl`).
    Revoke(RevokeArgs),
    /// Sign a CRL of every revoked certificate.
    Crl(CrlArgs),
    /// Re-issue a certificate with the same subject, names and profile, and a fresh validity.
    Renew(RenewArgs),
}

#[derive(Debug, Args)]
pub struct GencertArgs {
    /// Create a self-signed CA from the request.
    #[arg(long)]
    initca: bool,
    /// Signing configuration (cfssl's ca-config.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Signing profile in the configuration (an unknown name is an error).
    #[arg(long)]
    profile: Option<String>,
    /// CA certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// CA private key.
    #[arg(long = "ca-key")]
    ca_key: Option<PathBuf>,
    /// Comma-separated SANs; replaces the request's `hosts` when not empty.
    #[arg(long)]
    hostname: Option<String>,
    /// Shorten a lifetime that would outlive the CA instead of refusing.
    #[arg(long)]
    clamp: bool,
    /// The request JSON file, or - for stdin.
    csrjson: String,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Write NAME.pem, NAME-key.pem and NAME.csr.
    #[arg(long)]
    bare: bool,
    /// Print the PEM blocks to stdout instead of writing files.
    #[arg(long)]
    stdout: bool,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Give the files to USER[:GROUP] (root:GROUP makes the key 0640 for that group).
    #[arg(long)]
    owner: Option<String>,
    /// Base name of the files (cfssljson's default is "cert").
    #[arg(default_value = "cert")]
    name: String,
    /// Accepted and ignored, as cfssljson does (the guides pass `-`).
    #[arg(hide = true)]
    rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InitCaArgs {
    /// The CA's common name.
    #[arg(long)]
    cn: String,
    /// Lifetime (Go duration, or days such as 3650d).
    #[arg(long, default_value = "87600h")]
    expiry: String,
    /// Key type: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key: String,
    /// Directory for ca.pem, ca-key.pem, ca.csr, ca-config.json.
    #[arg(long)]
    dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// server, client, peer, or a profile from --config.
    #[arg(long)]
    profile: String,
    /// Common name; also the file name (NAME.pem) and, when a host name or IP, a SAN.
    #[arg(long)]
    cn: String,
    /// Comma-separated SANs: DNS names, IPs, e-mail addresses, URIs.
    #[arg(long, default_value = "")]
    hosts: String,
    /// Lifetime; defaults to the profile's.
    #[arg(long)]
    expiry: Option<String>,
    /// cfssl signing configuration with more profiles.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Key type: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key: String,
    /// Directory holding ca.pem and ca-key.pem (default: --dir).
    #[arg(long = "ca-dir")]
    ca_dir: Option<PathBuf>,
    /// Output directory.
    #[arg(long)]
    dir: PathBuf,
    /// Shorten a lifetime that would outlive the CA instead of refusing.
    #[arg(long)]
    clamp: bool,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Give the files to USER[:GROUP] (root:GROUP makes the key 0640 for that group).
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The plan (YAML); see docs/pki.md.
    plan: PathBuf,
    /// Output directory.
    #[arg(long)]
    dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Certificate, CSR or CRL (PEM or DER).
    file: PathBuf,
    /// Check that it chains to (or, for a CRL, is signed by) this CA certificate; exit 1 if not.
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Args)]
pub struct CheckExpiryArgs {
    /// Certificate files or directories (searched for *.pem, *.crt, *.cer).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, default_value = "30d")]
    warning: String,
    #[arg(long, default_value = "7d")]
    critical: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["serial", "cert"])))]
pub struct RevokeArgs {
    /// Serial as `ward pki info` prints it (hex with colons), 0x-hex, or decimal.
    #[arg(long)]
    serial: Option<String>,
    /// The certificate file to revoke.
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// The CA directory (ca.pem, ca-key.pem, revoked.json).
    #[arg(long = "ca-dir")]
    ca_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CrlArgs {
    #[arg(long = "ca-dir")]
    ca_dir: PathBuf,
    /// Where to write the CRL (PEM).
    #[arg(long)]
    out: PathBuf,
    /// How long the CRL is valid: its nextUpdate.
    #[arg(long = "next-update", default_value = "168h")]
    next_update: String,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The certificate (NAME.pem; its key is NAME-key.pem).
    file: PathBuf,
    #[arg(long = "ca-dir")]
    ca_dir: PathBuf,
    /// Generate a new key instead of keeping the current one.
    #[arg(long = "rotate-key")]
    rotate_key: bool,
    /// Shorten a lifetime that would outlive the CA instead of refusing.
    #[arg(long)]
    clamp: bool,
}

pub fn run(cmd: PkiCommand) -> Result<ExitCode> {
    match cmd {
        PkiCommand::Gencert(a) => gencert(a),
        PkiCommand::Json(a) => json(a),
        PkiCommand::InitCa(a) => init_ca(a),
        PkiCommand::Issue(a) => issue(a),
        PkiCommand::Bootstrap(a) => run_bootstrap(a),
        PkiCommand::Info(a) => info(a),
        PkiCommand::CheckExpiry(a) => run_check_expiry(a),
        PkiCommand::Revoke(a) => revoke(a),
        PkiCommand::Crl(a) => crl(a),
        PkiCommand::Renew(a) => renew(a),
        PkiCommand::Csr(a) => super::pki_csr::csr(a),
        PkiCommand::Sign(a) => super::pki_csr::sign(a),
        PkiCommand::Trust(c) => super::pki_trust::run(c),
    }
}

pub(super) fn overwrite(force: bool) -> Overwrite {
    if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    }
}

/// `--owner USER[:GROUP]`, looked up.
pub(super) fn owner(spec: Option<&str>) -> Result<Option<ward_io::owner::Owner>> {
    Ok(spec.map(ward_io::owner::Owner::parse).transpose()?)
}

pub(super) fn notes(v: &[String]) {
    for n in v {
        eprintln!("{n}");
    }
}

/// A request or cfssl JSON from a file or stdin (`-`), under the configuration cap.
pub(super) fn read_input(arg: &str) -> Result<(String, Vec<u8>)> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(files::CONFIG.bytes + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("stdin", "read", e))?;
        if buf.len() as u64 > files::CONFIG.bytes {
            return Err(ward_io::Error::TooLarge {
                path: "stdin".into(),
                limit: files::CONFIG.bytes,
                what: "cfssl request or JSON",
            }
            .into());
        }
        Ok(("stdin".into(), buf))
    } else {
        let p = Path::new(arg);
        Ok((arg.to_string(), files::read_bounded(p, files::CONFIG)?))
    }
}

fn gencert(a: GencertArgs) -> Result<ExitCode> {
    let (source, bytes) = read_input(&a.csrjson)?;
    let mut request = CertificateRequest::from_json(&source, &bytes)?;
    if a.initca {
        for (flag, given) in [
            ("-ca", a.ca.is_some()),
            ("-ca-key", a.ca_key.is_some()),
            ("-profile", a.profile.is_some()),
            ("-config", a.config.is_some()),
        ] {
            if given {
                return Err(Error::invalid(
                    format!("gencert -initca {flag}"),
                    "does not apply to creating a CA (cfssl ignores it silently); set the CA's lifetime with \"ca\":{\"expiry\":\"…\"} in the request",
                ));
            }
        }
        let (_, issued) = CertificateAuthority::create(&request, KeyEncoding::Traditional)?;
        notes(&issued.notes);
        outln!("{}", ward_pki::bare::gencert_json(&issued));
        return Ok(ExitCode::SUCCESS);
    }
    if request.ca.is_some() {
        return Err(Error::invalid(
            format!("{source}: ca"),
            "the \"ca\" section is only for -initca",
        ));
    }
    let (ca_cert, ca_key) = match (&a.ca, &a.ca_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            return Err(Error::invalid(
                "gencert",
                "needs -initca, or both -ca=CA.pem and -ca-key=CA-KEY.pem to sign",
            ))
        }
    };
    let ca = CertificateAuthority::load(&ca_cert, &ca_key)?;
    let profile = cfssl_profile(a.config.as_deref(), a.profile.as_deref())?;
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        request.hosts = parse_host_list(h)?;
    }
    let issued = ca.issue(LeafRequest {
        subject: request.subject,
        hosts: request.hosts,
        key: KeySource::Generate(request.key),
        key_encoding: KeyEncoding::Traditional,
        profile,
        clamp: a.clamp,
    })?;
    notes(&issued.notes);
    outln!("{}", ward_pki::bare::gencert_json(&issued));
    Ok(ExitCode::SUCCESS)
}

/// cfssl's choice of profile: `-profile` in `-config` (which must define it), the config's
/// default, or with no config cfssl's own default (a `-profile` without `-config` is refused:
/// cfssl would silently use its default).
pub(super) fn cfssl_profile(
    config: Option<&Path>,
    profile: Option<&str>,
) -> Result<SigningProfile> {
    match config {
        Some(path) => SigningConfig::from_json(
            &path.display().to_string(),
            &files::read_bounded(path, files::CONFIG)?,
        )?
        .profile(profile),
        None => match profile.filter(|p| !p.is_empty()) {
            Some(p) => Err(Error::invalid(
                format!("-profile={p}"),
                "a profile needs -config=ca-config.json that defines it (cfssl would silently use its default)",
            )),
            None => Ok(SigningProfile::cfssl_default()),
        },
    }
}

fn json(a: JsonArgs) -> Result<ExitCode> {
    let (_, bytes) = read_input("-")?;
    if a.stdout {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
                what: "stdin".into(),
                format: "cfssl JSON",
                reason: e.to_string(),
            })?;
        let mut out = std::io::stdout().lock();
        for k in [
            "cert",
            "certificate",
            "key",
            "private_key",
            "csr",
            "certificate_request",
        ] {
            if let Some(s) = v.get(k).and_then(|s| s.as_str()) {
                let _ = out.write_all(s.as_bytes());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.bare {
        return Err(Error::invalid(
            "ward pki json",
            "pass -bare NAME to write NAME.pem, NAME-key.pem and NAME.csr (or -stdout)",
        ));
    }
    let written = ward_pki::bare::write_bare(
        Path::new(&a.name),
        &bytes,
        overwrite(a.force),
        owner(a.owner.as_deref())?,
    )?;
    let _ = written;
    Ok(ExitCode::SUCCESS)
}

fn init_ca(a: InitCaArgs) -> Result<ExitCode> {
    check_common_name("--cn", &a.cn)?;
    let key: KeyAlgorithm = a.key.parse()?;
    let expiry = parse_duration("--expiry", &a.expiry)?;
    let request = CertificateRequest {
        subject: Subject::with_cn(a.cn),
        hosts: Vec::new(),
        key,
        ca: Some(ward_pki::request::CaOptions {
            expiry: Some(expiry),
            path_len: None,
        }),
    };
    let (ca, issued) = CertificateAuthority::create(&request, KeyEncoding::Traditional)?;
    let (cert_path, key_path) = ca_paths(&a.dir);
    let planned = vec![
        PlannedFile::public(&cert_path, issued.cert_pem.clone()),
        PlannedFile::key(&key_path, issued.key_pem.clone().unwrap_or_default()),
        PlannedFile::public(a.dir.join("ca.csr"), issued.csr_pem.clone()),
        PlannedFile::public(
            a.dir.join("ca-config.json"),
            SigningConfig::ward_default_json(),
        ),
    ];
    files::write_all(&planned, overwrite(a.force))?;
    outln!(
        "created CA {:?} ({key}, until {}) in {}",
        ca.common_name,
        ward_io::text::format_time(ca.not_after),
        a.dir.display()
    );
    print_tree(
        &a.dir,
        &planned.iter().map(|p| p.path.clone()).collect::<Vec<_>>(),
    );
    Ok(ExitCode::SUCCESS)
}

fn issue(a: IssueArgs) -> Result<ExitCode> {
    let key: KeyAlgorithm = a.key.parse()?;
    let config = match &a.config {
        Some(p) => Some(SigningConfig::from_json(
            &p.display().to_string(),
            &files::read_bounded(p, files::CONFIG)?,
        )?),
        None => None,
    };
    let mut profile = resolve_profile(config.as_ref(), &a.profile)?;
    if let Some(e) = &a.expiry {
        profile.expiry = parse_duration("--expiry", e)?;
    }
    check_common_name("--cn", &a.cn)?;
    if a.cn.trim().is_empty() || a.cn.contains('/') {
        return Err(Error::invalid(
            "--cn",
            "must be a non-empty name without '/' (it is also the file name)",
        ));
    }
    let hosts = parse_host_list(&a.hosts)?;
    let ca_dir = a.ca_dir.clone().unwrap_or_else(|| a.dir.clone());
    let ca = CertificateAuthority::load_dir(&ca_dir)?;
    let issued = ca.issue(LeafRequest {
        subject: Subject::with_cn(a.cn.clone()),
        hosts,
        key: KeySource::Generate(key),
        key_encoding: KeyEncoding::Traditional,
        profile,
        clamp: a.clamp,
    })?;
    let planned = ward_io::owner::owned(
        ward_pki::bare::bare_files(
            &a.dir.join(&a.cn),
            Some(&issued.cert_pem),
            issued.key_pem.as_deref(),
            Some(&issued.csr_pem),
        ),
        owner(a.owner.as_deref())?,
    );
    files::write_all(&planned, overwrite(a.force))?;
    notes(&issued.notes);
    for p in &planned {
        outln!("wrote {}", p.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_bootstrap(a: BootstrapArgs) -> Result<ExitCode> {
    let text = String::from_utf8(files::read_bounded(&a.plan, files::CONFIG)?).map_err(|_| {
        Error::Malformed {
            what: a.plan.display().to_string(),
            format: "bootstrap plan YAML",
            reason: "not UTF-8".into(),
        }
    })?;
    let plan = Plan::from_yaml(&a.plan.display().to_string(), &text)?;
    for stale in files::remove_stale_staging(&a.dir)? {
        eprintln!(
            "note: removed {}, left by an interrupted bootstrap (its process no longer exists)",
            stale.display()
        );
    }
    remove_staging_on_signal(a.dir.clone())?;
    let start = Instant::now();
    let total = plan.certificates.len();
    let step = (total / 10).max(1);
    let tty = std::io::stderr().is_terminal();
    let progress = move |done: usize, total: usize| {
        if total >= 100 && (done.is_multiple_of(step) || done == total) {
            if tty {
                eprint!("\rissued {done}/{total} certificates");
                if done == total {
                    eprintln!();
                }
            } else {
                eprintln!("issued {done}/{total} certificates");
            }
        }
    };
    let written = bootstrap(&plan, &a.dir, overwrite(a.force), &progress)?;
    outln!(
        "issued a CA and {total} certificates in {:.2}s into {}",
        start.elapsed().as_secs_f64(),
        a.dir.display()
    );
    print_tree(&a.dir, &written);
    const LIST: usize = 12;
    outln!("certificates:");
    for c in plan.certificates.iter().take(LIST) {
        let names: Vec<String> = c.hosts.iter().map(|h| h.to_string()).collect();
        outln!(
            "  {:<24} {:<16} {}{}",
            c.name,
            c.role,
            c.profile
                .usage_names()
                .iter()
                .filter(|u| u.ends_with("auth"))
                .cloned()
                .collect::<Vec<_>>()
                .join(" + "),
            if names.is_empty() {
                String::new()
            } else {
                format!("; {}", names.join(", "))
            }
        );
    }
    if plan.certificates.len() > LIST {
        outln!("  … and {} more", plan.certificates.len() - LIST);
    }
    outln!(
        "next: keep ca-key.pem offline once everything is issued; copy ca.pem to every host, and each NAME.pem + NAME-key.pem (mode 0600) to its host."
    );
    Ok(ExitCode::SUCCESS)
}

/// From now until the process exits, SIGINT and SIGTERM remove this process's staging
/// directory for `dir` (a new directory is written there first, CA key and every new key
/// included) and then exit with 128 + the signal's number, so that an interrupted bootstrap
/// leaves no keys behind. Returns once the handlers are installed.
fn remove_staging_on_signal(dir: PathBuf) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (installed, wait) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let failed = |e| Error::io("signal handler", "install", e);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = installed.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let (mut term, mut int) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(t), Ok(i)) => (t, i),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = installed.send(Err(e));
                        return;
                    }
                };
                let _ = installed.send(Ok(()));
                let code = tokio::select! {
                    _ = term.recv() => 128 + 15,
                    _ = int.recv() => 128 + 2,
                };
                if files::remove_staging(&dir) {
                    eprintln!(
                        "interrupted: removed {} and the keys in it",
                        files::staging_path(&dir).display()
                    );
                } else {
                    eprintln!("interrupted");
                }
                std::process::exit(code);
            });
        })
        .map_err(failed)?;
    match wait.recv() {
        Ok(r) => r.map_err(failed),
        Err(_) => Err(failed(std::io::Error::other("the signal thread ended"))),
    }
}

/// Prints files under `dir` as a tree, collapsing long runs.
fn print_tree(dir: &Path, files: &[PathBuf]) {
    let mut names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect();
    names.sort();
    outln!("{}/", dir.display());
    const SHOW: usize = 40;
    let shown = names.len().min(SHOW);
    for (i, n) in names.iter().take(shown).enumerate() {
        let last = i + 1 == names.len();
        outln!("{} {n}", if last { "└──" } else { "├──" });
    }
    if names.len() > SHOW {
        outln!("└── … and {} more files", names.len() - SHOW);
    }
}

fn info(a: InfoArgs) -> Result<ExitCode> {
    let items = inspect_file(&a.file, a.ca.as_deref())?;
    match a.format {
        Format::Text => {
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                print!("{}", it.to_text());
            }
        }
        Format::Json => {
            let v = if items.len() == 1 {
                serde_json::to_string_pretty(&items[0])
            } else {
                serde_json::to_string_pretty(&items)
            };
            outln!("{}", v.map_err(|e| Error::Signing(e.to_string()))?);
        }
    }
    let chain_failed = items.iter().any(|i| match i {
        Inspected::Certificate(c) => c.chain.as_ref().is_some_and(|c| !c.ok),
        Inspected::RevocationList(c) => c.chain.as_ref().is_some_and(|c| !c.ok),
        Inspected::CertificateRequest(r) => !r.signature_valid,
    });
    Ok(if chain_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_check_expiry(a: CheckExpiryArgs) -> Result<ExitCode> {
    let bad = |e: Error| {
        outln!("UNKNOWN: {}", ward_io::text::one_line(&e.to_string()));
        Ok(ExitCode::from(3))
    };
    let warning = match parse_duration("--warning", &a.warning) {
        Ok(d) => d,
        Err(e) => return bad(e.into()),
    };
    let critical = match parse_duration("--critical", &a.critical) {
        Ok(d) => d,
        Err(e) => return bad(e.into()),
    };
    if critical > warning {
        return bad(Error::invalid(
            "--critical",
            "must not be longer than --warning",
        ));
    }
    let report = check_expiry(&a.paths, warning, critical);
    // File names and subjects are not ours: shown escaped, never sent raw to a terminal.
    outln!("{}", ward_io::text::one_line(&report.summary));
    Ok(ExitCode::from(report.status as u8))
}

fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    let reason = parse_reason(&a.reason)?;
    let (serial, subject) = match (&a.serial, &a.cert) {
        (Some(s), None) => (parse_serial(s)?, None),
        (None, Some(c)) => {
            let ca_pem = a.ca_dir.join("ca.pem");
            let items = inspect_file(c, Some(&ca_pem))?;
            let cert = items
                .into_iter()
                .find_map(|i| match i {
                    Inspected::Certificate(c) => Some(c),
                    _ => None,
                })
                .ok_or_else(|| Error::BadCertificate {
                    path: c.clone(),
                    reason: "no certificate found".into(),
                })?;
            if let Some(reason) = cert
                .chain
                .as_ref()
                .and_then(|ch| ch.reason.clone())
                .filter(|r| !r.starts_with("the certificate expired"))
            {
                return Err(Error::BadCertificate {
                    path: c.clone(),
                    reason: format!(
                        "was not issued by the CA in {}: {reason}",
                        a.ca_dir.display()
                    ),
                });
            }
            (parse_serial(&cert.serial)?, Some(cert.subject))
        }
        _ => unreachable!("clap requires exactly one of --serial and --cert"),
    };
    let r = revocation::revoke(&a.ca_dir, &serial, reason, subject)?;
    outln!(
        "revoked {} ({}) at {}; publish it with: ward pki crl --ca-dir {} --out crl.pem",
        r.serial,
        r.reason,
        r.revoked_at,
        a.ca_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn crl(a: CrlArgs) -> Result<ExitCode> {
    let next = parse_duration("--next-update", &a.next_update)?;
    let revocation::PublishedCrl { number, revoked: n } =
        revocation::publish_crl(&a.ca_dir, next, &a.out)?;
    outln!(
        "wrote CRL #{number} with {n} revoked certificate{} to {}",
        if n == 1 { "" } else { "s" },
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn renew(a: RenewArgs) -> Result<ExitCode> {
    let r = ward_pki::renew::renew(&a.file, &a.ca_dir, a.rotate_key, a.clamp)?;
    notes(&r.issued.notes);
    outln!(
        "renewed {} until {}{}",
        a.file.display(),
        ward_io::text::format_time(r.issued.not_after),
        if a.rotate_key { " with a new key" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

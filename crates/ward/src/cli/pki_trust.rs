//! `ward pki trust install|uninstall|check CA.pem`: the CA in the system's trust store (and
//! a user's NSS database, for Chromium and Firefox, when `certutil` is there), done and
//! then checked, instead of the guide's copy-and-update by hand (ward_pki::trust).

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use ward_io::files::{self, Overwrite, PlannedFile};
use ward_pki::trust::{manual_commands, read_ca, SystemStore};
use ward_pki::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Add the CA to the system store (and the NSS database, if certutil is installed).
    Install(TrustArgs),
    /// Remove it again.
    Uninstall(TrustArgs),
    /// Say whether the system store (and the NSS database) trust it; exit 1 if the system
    /// store does not.
    Check(TrustArgs),
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The CA certificate (PEM), e.g. ca.pem.
    ca: PathBuf,
    /// The root of the system whose store is changed (default /; another directory is the
    /// file tree of an image being built).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The NSS database (default: ~/.pki/nssdb, if it exists).
    #[arg(long = "nss-db")]
    nss_db: Option<PathBuf>,
}

pub fn run(cmd: TrustCommand) -> Result<ExitCode> {
    let (verb, a) = match &cmd {
        TrustCommand::Install(a) => ("install", a),
        TrustCommand::Uninstall(a) => ("uninstall", a),
        TrustCommand::Check(a) => ("check", a),
    };
    let ca = read_ca(&a.ca)?;
    // Absolute: the store's command changes directory as it works.
    let root = std::fs::canonicalize(&a.root).unwrap_or_else(|_| a.root.clone());
    let store = SystemStore::detect(&root).ok_or_else(|| {
        Error::invalid(
            format!("trust {verb}"),
            format!(
                "no system trust store found under {} (neither /usr/local/share/ca-certificates nor /etc/pki/ca-trust/source/anchors); by hand:\n{}",
                a.root.display(),
                manual_commands(&a.ca)
            ),
        )
    })?;
    let nss = nss_db(a);
    match verb {
        "install" => {
            files::write_one(
                &PlannedFile::public(store.anchor(&ca), ca.pem.clone()),
                Overwrite::Allow,
            )?;
            rebuild(&store, false)?;
            if !store.trusts(&ca)? {
                return Err(Error::invalid(
                    "trust install",
                    format!(
                        "{} was written but {} does not hold the CA after the rebuild",
                        store.anchor(&ca).display(),
                        store.bundle.display()
                    ),
                ));
            }
            outln!(
                "installed {:?} as {}; {} now holds it",
                ca.common_name,
                store.anchor(&ca).display(),
                store.bundle.display()
            );
            if let Some(db) = &nss {
                certutil(
                    &["-d", &sql(db), "-A", "-t", "C,,", "-n", &ca.name, "-i"],
                    Some(&a.ca),
                )?;
                outln!(
                    "added to the NSS database {} as {:?}",
                    db.display(),
                    ca.name
                );
            }
        }
        "uninstall" => {
            match std::fs::remove_file(store.anchor(&ca)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(store.anchor(&ca), "remove", e)),
            }
            rebuild(&store, true)?;
            if store.trusts(&ca)? {
                return Err(Error::invalid(
                    "trust uninstall",
                    format!(
                        "{} still holds {:?}: it comes from elsewhere in the store (not {}); remove it there",
                        store.bundle.display(),
                        ca.common_name,
                        store.anchor(&ca).display()
                    ),
                ));
            }
            outln!(
                "removed {:?}; {} no longer holds it",
                ca.common_name,
                store.bundle.display()
            );
            if let Some(db) = &nss {
                if certutil(&["-d", &sql(db), "-L", "-n", &ca.name], None).is_ok() {
                    certutil(&["-d", &sql(db), "-D", "-n", &ca.name], None)?;
                    outln!("removed from the NSS database {}", db.display());
                }
            }
        }
        _ => {
            let system = store.trusts(&ca)?;
            outln!(
                "system store ({}): {}",
                store.bundle.display(),
                if system {
                    "trusts it"
                } else {
                    "does not trust it"
                }
            );
            if let Some(db) = &nss {
                let ok = certutil(&["-d", &sql(db), "-L", "-n", &ca.name], None).is_ok();
                outln!(
                    "NSS database ({}): {}",
                    db.display(),
                    if ok { "trusts it" } else { "does not trust it" }
                );
            }
            if !system {
                return Ok(ExitCode::from(1));
            }
        }
    }
    if nss.is_none() {
        eprintln!("note: no NSS database changed or checked (certutil from libnss3-tools, and ~/.pki/nssdb or --nss-db, are needed for Chromium and Firefox)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The NSS database to use: --nss-db, else ~/.pki/nssdb if it exists; None without
/// certutil.
fn nss_db(a: &TrustArgs) -> Option<PathBuf> {
    let certutil = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("certutil").is_file()))
        .unwrap_or(false);
    if !certutil {
        return None;
    }
    a.nss_db.clone().or_else(|| {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".pki/nssdb"))
            .filter(|d| d.is_dir())
    })
}

fn sql(db: &Path) -> String {
    format!("sql:{}", db.display())
}

/// Runs `certutil ARGS [FILE]`.
fn certutil(args: &[&str], file: Option<&Path>) -> Result<()> {
    let mut words: Vec<String> = std::iter::once("certutil")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    if let Some(f) = file {
        words.push(f.display().to_string());
    }
    run_words(&words)
}

fn rebuild(store: &SystemStore, fresh: bool) -> Result<()> {
    // An empty directory for the hooks of another root (they are not run).
    let no_hooks = std::env::temp_dir().join(format!("ward-trust-no-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&no_hooks).map_err(|e| Error::io(&no_hooks, "create directory", e))?;
    let done = run_words(&store.rebuild(fresh, &no_hooks)?);
    let _ = std::fs::remove_dir(&no_hooks);
    done
}

/// Runs a command (through the one subprocess runner) and fails with its output.
fn run_words(words: &[String]) -> Result<()> {
    let line = ward_exec::command_line(words);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("runtime", e.to_string()))?;
    let done = rt
        .block_on(ward_exec::run(ward_exec::Spec {
            command: &line,
            env: None,
            stdin: None,
            timeout: Duration::from_secs(120),
            max_output: 16 * 1024,
            capture: ward_exec::Capture::Both,
        }))
        .map_err(|e| Error::invalid(&words[0], e.to_string()))?;
    match done.exit {
        ward_exec::Exit::Code(0) => Ok(()),
        other => Err(Error::invalid(
            &words[0],
            format!(
                "{line} failed ({other:?}): {}",
                String::from_utf8_lossy(&done.output).trim()
            ),
        )),
    }
}

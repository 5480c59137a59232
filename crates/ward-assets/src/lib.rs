//! Sensu's runtime assets, for the agent (checks, hooks) and the backend (handlers,
//! mutators, filters):
//!
//! 1. the build: an asset's own `url`/`sha512`/`filters`/`headers`, or the first of its
//!    `builds` whose `filters` (JavaScript over `entity`, all true) match this host's
//!    entity, as Sensu chooses ([`Asset::choose`]);
//! 2. fetched over HTTP(S) with its `headers`, trusting the configured CA file and the
//!    system's roots, into a temporary file while its SHA-512 is computed; a different
//!    hash is refused before anything is unpacked ([`fetch`]);
//! 3. unpacked (tar, or gzip-compressed tar: sniffed, as Sensu) into a temporary directory
//!    that is renamed to `<cache>/<sha512>` only when complete; an archive with a path
//!    outside the asset, a link out of it, a device or FIFO, or more than the limits is
//!    refused whole ([`unpack`]);
//! 4. used: `bin/` prepended to `PATH`, `lib/` to `LD_LIBRARY_PATH`, `include/` to
//!    `CPATH`, and `<NAME>_PATH` set to its directory ([`environment`]).
//!
//! A cached asset is not fetched again: its directory is named by its hash and appears
//! whole or not at all. Installs of one hash take turns.

#![forbid(unsafe_code)]

mod fetch;
mod unpack;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use unpack::unpack;

/// What one download and its unpacked tree may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes downloaded.
    pub download: u64,
    /// Bytes of the unpacked files together.
    pub unpacked: u64,
    /// Entries in the archive.
    pub entries: usize,
    /// Seconds a download may take.
    pub timeout: std::time::Duration,
}

impl Default for Limits {
    /// 1 GiB downloaded, 4 GiB unpacked, 100,000 entries, 10 minutes.
    fn default() -> Self {
        Limits {
            download: 1 << 30,
            unpacked: 4 << 30,
            entries: 100_000,
            timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// Why an asset cannot be used: one line, naming the asset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("asset {asset:?}: {what}")]
pub struct AssetError {
    pub asset: String,
    pub what: String,
}

/// One build of an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub url: String,
    /// Lowercase hex.
    pub sha512: String,
    pub filters: Vec<String>,
    pub headers: Vec<(String, String)>,
}

/// An Asset resource, as far as using it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub name: String,
    pub builds: Vec<Build>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn build_of(m: &serde_json::Map<String, Value>) -> Build {
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let mut headers: Vec<(String, String)> = m
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    headers.sort();
    Build {
        url: text("url").to_string(),
        sha512: text("sha512").to_ascii_lowercase(),
        filters: strings(m.get("filters")),
        headers,
    }
}

impl Asset {
    /// An asset from its resource's name and spec: its `builds`, or the one build its own
    /// `url`, `sha512`, `filters` and `headers` make.
    pub fn from_spec(name: &str, spec: &serde_json::Map<String, Value>) -> Asset {
        let builds: Vec<Build> = spec
            .get("builds")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter_map(Value::as_object)
                    .map(build_of)
                    .collect()
            })
            .unwrap_or_default();
        Asset {
            name: name.to_string(),
            builds: if builds.is_empty() {
                vec![build_of(spec)]
            } else {
                builds
            },
        }
    }

    /// The first build whose filters are all true for `entity` (Sensu's view of the
    /// entity, JSON), None when none is. A filter that throws is false. Blocking (runs the
    /// filters in this thread's JavaScript sandbox).
    pub fn choose(&self, entity_json: &str) -> Option<&Build> {
        self.builds.iter().find(|b| {
            b.filters.is_empty()
                || ward_js::with_sandbox(ward_js::Limits::default(), |s| {
                    s.predicates("entity", &b.filters, entity_json)
                })
                .map(|r| r.iter().all(|x| x == &Ok(true)))
                .unwrap_or(false)
        })
    }
}

/// An asset ready for use: its name and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub dir: PathBuf,
}

/// `<NAME>_PATH` (Sensu's `asset.Env`): one rule, shared with the `assetPath` token.
pub use ward_types::tokens::asset_path_variable as path_variable;

/// `env` with the assets put to use: their `bin`, `lib` and `include` directories
/// prepended to `PATH`, `LD_LIBRARY_PATH` and `CPATH` (in the order given, before what
/// `env` has), and `<NAME>_PATH` for each.
pub fn environment(installed: &[Installed], env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env.to_vec();
    for (var, sub) in [
        ("PATH", "bin"),
        ("LD_LIBRARY_PATH", "lib"),
        ("CPATH", "include"),
    ] {
        if installed.is_empty() {
            break;
        }
        let mut parts: Vec<String> = installed
            .iter()
            .map(|a| a.dir.join(sub).display().to_string())
            .collect();
        match out.iter_mut().find(|(k, _)| k == var) {
            Some((_, v)) => {
                if !v.is_empty() {
                    parts.push(v.clone());
                }
                *v = parts.join(":");
            }
            None => out.push((var.to_string(), parts.join(":"))),
        }
    }
    for a in installed {
        out.push((path_variable(&a.name), a.dir.display().to_string()));
    }
    out
}

/// An asset cache: a directory of unpacked assets named by their SHA-512.
pub struct Assets {
    dir: PathBuf,
    tls: Arc<rustls::ClientConfig>,
    limits: Limits,
    /// One install per hash at a time.
    installing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Downloads a second and in a burst (the agent's `assets-rate-limit` and
    /// `assets-burst-limit`); a build in the cache takes none.
    fetches: Mutex<ward_io::rate::Bucket>,
}

fn is_sha512(s: &str) -> bool {
    s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Assets {
    /// A cache in `dir` (made 0700 when missing), downloading with `trust`.
    pub fn new(dir: &Path, trust: &ward_tls::Trust, limits: Limits) -> Result<Assets, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("asset cache {}: cannot create it: {e}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("asset cache {}: {e}", dir.display()))?;
        }
        Ok(Assets {
            dir: dir.to_path_buf(),
            tls: Arc::new(ward_tls::client_config(trust)?),
            limits,
            installing: Mutex::new(HashMap::new()),
            fetches: Mutex::new(ward_io::rate::Bucket::new(0.0, 1)),
        })
    }

    /// Limits downloads to `rate` a second with bursts of `burst` (0: no limit); a
    /// download beyond it waits its turn.
    pub fn with_fetch_limit(self, rate: f64, burst: u32) -> Assets {
        Assets {
            fetches: Mutex::new(ward_io::rate::Bucket::new(rate, burst)),
            ..self
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The asset's `build`, from the cache or fetched, checked and unpacked into it.
    pub async fn install(&self, name: &str, build: &Build) -> Result<Installed, AssetError> {
        let err = |what: String| AssetError {
            asset: name.to_string(),
            what,
        };
        if !is_sha512(&build.sha512) {
            return Err(err("sha512 is not 128 hex digits".into()));
        }
        let done = self.dir.join(&build.sha512);
        let installed = Installed {
            name: name.to_string(),
            dir: done.clone(),
        };
        if done.is_dir() {
            return Ok(installed);
        }
        let turn = {
            let mut m = self.installing.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(build.sha512.clone()).or_default().clone()
        };
        let _turn = turn.lock().await;
        if done.is_dir() {
            return Ok(installed);
        }
        let wait = self
            .fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(std::time::Instant::now());
        if !wait.is_zero() {
            tracing::info!(asset = %name, wait = ?wait, "asset download waits for assets-rate-limit");
            tokio::time::sleep(wait).await;
        }
        let tag = format!(".{}-{:016x}", &build.sha512[..16], fastrand::u64(..));
        let archive = self.dir.join(format!("{tag}.download"));
        let fetched = fetch::fetch(build, &archive, self.tls.clone(), self.limits).await;
        let result = match fetched {
            Ok(()) => {
                let (archive, staging, done, limits) = (
                    archive.clone(),
                    self.dir.join(format!("{tag}.unpack")),
                    done.clone(),
                    self.limits,
                );
                tokio::task::spawn_blocking(move || {
                    let r = unpack::unpack(&archive, &staging, limits).and_then(|()| {
                        std::fs::rename(&staging, &done).or_else(|e| {
                            // Another process finished first: theirs is as good.
                            if done.is_dir() {
                                Ok(())
                            } else {
                                Err(format!("cannot move it into the cache: {e}"))
                            }
                        })
                    });
                    let _ = std::fs::remove_dir_all(&staging);
                    r
                })
                .await
                .unwrap_or_else(|e| Err(format!("the unpacking task failed: {e}")))
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&archive);
        {
            let mut m = self.installing.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&turn) <= 2 {
                m.remove(&build.sha512);
            }
        }
        result.map(|()| installed).map_err(err)
    }

    /// Each asset's build for `entity` (JSON), installed, in order. An asset none of whose
    /// builds match is left out with a log line (Sensu skips it silently).
    pub async fn prepare(
        &self,
        assets: &[Asset],
        entity_json: &str,
    ) -> Result<Vec<Installed>, AssetError> {
        let chosen = {
            let (assets, entity) = (assets.to_vec(), entity_json.to_string());
            tokio::task::spawn_blocking(move || {
                assets
                    .iter()
                    .map(|a| (a.name.clone(), a.choose(&entity).cloned()))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| AssetError {
                asset: String::new(),
                what: format!("choosing builds failed: {e}"),
            })?
        };
        let mut out = Vec::with_capacity(chosen.len());
        for (name, build) in chosen {
            match build {
                Some(b) => out.push(self.install(&name, &b).await?),
                None => {
                    tracing::warn!(asset = %name, "no build of the asset matches this host (its filters); it is not used")
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

//! Layered settings, as every Ward service reads them: flags > environment
//! (`WARD_<SERVICE>_<KEY>`) > a YAML file of `key: value` > defaults, with the guides' key
//! names (`cert-file`, `backend-url`, …).
//!
//! [`Settings::resolve`] gathers the raw values and remembers where each came from; the
//! typed getters turn them into values, and every failure is a [`ConfigError`] naming the
//! key and its source (`agent-port (from $WARD_BACKEND_AGENT_PORT): "x" is not a port
//! number`). A service keeps its own typed config struct and its own cross-key checks on
//! top of this.
//!
//! `SENSU_<SERVICE>_*` variables may be read as aliases of a service's own
//! ([`Schema::alias_prefix`]; its own win), and keys of the system Ward replaces that Ward
//! does not implement are each refused with why and what to use instead, or accepted and
//! ignored with a warning ([`Schema::foreign`], [`Settings::ignored`]).
//!
//! ```
//! use ward_types::settings::{Schema, Settings};
//! const SCHEMA: Schema = Schema {
//!     keys: &["agent-port", "labels"],
//!     map_keys: &["labels"],
//!     env_prefix: "WARD_EXAMPLE_",
//!     alias_prefix: None,
//!     alias_strict: true,
//!     foreign: &[],
//! };
//! let env = |k: &str| (k == "WARD_EXAMPLE_AGENT_PORT").then(|| "9001".to_string());
//! let s = Settings::resolve(&SCHEMA, None, &env, &[("labels".into(), "a=1,b=2".into())]).unwrap();
//! assert_eq!(s.port("agent-port", 8081).unwrap(), 9001);
//! assert_eq!(s.map("labels").unwrap()["b"], "2");
//! assert_eq!(s.source("agent-port"), "$WARD_EXAMPLE_AGENT_PORT");
//! ```

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod env;
pub mod foreign;
pub use env::{check_env_names, load_env_file};
pub use foreign::{Foreign, Kind, Rule};

/// A configuration error: the key, where its value came from, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} (from {source_name}): {reason}")]
pub struct ConfigError {
    pub key: String,
    pub source_name: String,
    pub reason: String,
}

/// Builds a [`ConfigError`].
pub fn config_error(key: &str, source_name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        source_name: source_name.into(),
        reason: reason.into(),
    }
}

/// What a service accepts.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// Every key, in the order the docs list them (unknown keys are refused with this list).
    pub keys: &'static [&'static str],
    /// Keys whose YAML value may be a mapping (`labels: {a: b}`); from flags and the
    /// environment they are written `k=v,k2=v2`.
    pub map_keys: &'static [&'static str],
    /// The environment prefix, `WARD_BACKEND_`: key `agent-port` is read from
    /// `WARD_BACKEND_AGENT_PORT`.
    pub env_prefix: &'static str,
    /// Another prefix read as an alias of `env_prefix` (`SENSU_BACKEND_`, so that an
    /// existing /etc/default/sensu-backend works): `env_prefix`'s variable wins when both
    /// are set, and a value's source names the variable actually read.
    pub alias_prefix: Option<&'static str>,
    /// Whether a variable under `alias_prefix` that names no key is refused, as one under
    /// `env_prefix` is. False where the prefix is shared with other tools (the agent's
    /// `SENSU_`, which plugins and sensuctl also read): such variables are left alone.
    pub alias_strict: bool,
    /// Keys of the system Ward replaces that this service does not implement: each is
    /// refused with a reason, or accepted and ignored with a warning ([`Rule`]).
    pub foreign: &'static [Foreign],
}

impl Schema {
    /// The environment variable of a key.
    pub fn env_var(&self, key: &str) -> String {
        format!(
            "{}{}",
            self.env_prefix,
            key.to_uppercase().replace('-', "_")
        )
    }

    /// The key's [`Foreign`] entry, if it has one.
    pub fn foreign(&self, key: &str) -> Option<&'static Foreign> {
        self.foreign.iter().find(|f| f.key == key)
    }

    /// The key's value from the environment and the variable it came from: the service's
    /// own variable, else the alias.
    fn env_value(
        &self,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<(String, String)> {
        let own = self.env_var(key);
        if let Some(v) = env(&own) {
            return Some((v, own));
        }
        let alias = format!("{}{}", self.alias_prefix?, &own[self.env_prefix.len()..]);
        env(&alias).map(|v| (v, alias))
    }
}

/// A value as given, before it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// A scalar from YAML, the environment or one flag.
    Text(String),
    /// A YAML list, or a flag given more than once.
    List(Vec<String>),
    /// A YAML mapping (only for [`Schema::map_keys`]).
    Map(BTreeMap<String, String>),
}

#[derive(Debug, Clone)]
struct Setting {
    raw: RawValue,
    source: String,
}

/// The resolved raw values and their sources.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, Setting>,
    ignored: Vec<String>,
}

fn yaml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Settings {
    /// Reads the file (if any), then the environment, then the flags, each overriding the
    /// one before. A flag given more than once is a list. Unknown keys, a file that is not
    /// a mapping, and nested values are refused. Then each [`Schema::foreign`] key that is
    /// set (by its final source) is refused, or checked and noted in
    /// [`Settings::ignored`].
    pub fn resolve(
        schema: &Schema,
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let known = |k: &str| schema.keys.contains(&k) || schema.foreign(k).is_some();
        let mut values: BTreeMap<String, Setting> = BTreeMap::new();
        if let Some(path) = file {
            let src = path.display().to_string();
            let text = read_text(path, ward_io::files::CONFIG)
                .map_err(|e| config_error("config-file", &src, e))?;
            let doc: Value = if text.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_saphyr::from_str(&text).map_err(|e| {
                    config_error(
                        "config-file",
                        &src,
                        format!(
                            "malformed YAML: {}",
                            e.to_string().lines().next().unwrap_or_default()
                        ),
                    )
                })?
            };
            let map = match doc {
                Value::Object(m) => m,
                Value::Null => Default::default(),
                _ => {
                    return Err(config_error(
                        "config-file",
                        &src,
                        "must be a mapping of key: value",
                    ))
                }
            };
            for (k, v) in map {
                if !known(&k) {
                    return Err(config_error(
                        &k,
                        &src,
                        format!("unknown key; known keys: {}", schema.keys.join(", ")),
                    ));
                }
                let raw = match &v {
                    Value::Array(items) => items
                        .iter()
                        .map(yaml_scalar)
                        .collect::<Option<Vec<_>>>()
                        .map(RawValue::List),
                    Value::Object(m)
                        if schema.map_keys.contains(&k.as_str())
                            || schema.foreign(&k).is_some() =>
                    {
                        m.iter()
                            .map(|(mk, mv)| yaml_scalar(mv).map(|s| (mk.clone(), s)))
                            .collect::<Option<BTreeMap<_, _>>>()
                            .map(RawValue::Map)
                    }
                    other => yaml_scalar(other).map(RawValue::Text),
                };
                let raw = raw.ok_or_else(|| {
                    config_error(
                        &k,
                        &src,
                        if schema.map_keys.contains(&k.as_str()) {
                            "must be a mapping of key: value"
                        } else {
                            "must be a single value or a list"
                        },
                    )
                })?;
                values.insert(
                    k,
                    Setting {
                        raw,
                        source: src.clone(),
                    },
                );
            }
        }
        let foreign_keys = schema.foreign.iter().map(|f| &f.key);
        for k in schema.keys.iter().chain(foreign_keys) {
            if let Some((v, var)) = schema.env_value(k, env) {
                values.insert(
                    k.to_string(),
                    Setting {
                        raw: RawValue::Text(v),
                        source: format!("${var}"),
                    },
                );
            }
        }
        let mut from_flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in flags {
            if !known(k) {
                return Err(config_error(k, "flags", "unknown flag"));
            }
            from_flags.entry(k.clone()).or_default().push(v.clone());
        }
        for (k, mut vs) in from_flags {
            let raw = if vs.len() == 1 {
                RawValue::Text(vs.remove(0))
            } else {
                RawValue::List(vs)
            };
            let source = format!("--{k}");
            values.insert(k, Setting { raw, source });
        }
        let mut s = Settings {
            values,
            ignored: Vec::new(),
        };
        for f in schema.foreign {
            if let Some(v) = s.text(f.key) {
                let warning = f.apply(&v, s.source(f.key))?;
                if !warning.is_empty() {
                    s.ignored.push(warning);
                }
            }
        }
        Ok(s)
    }

    /// One line for each [`Rule::Ignored`] key that was set, to be logged as a warning at
    /// start: `KEY (from SOURCE) is ignored: REASON`.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Where a key's value came from: a file path, `$VAR`, `--flag`, or `defaults`.
    pub fn source(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(|s| s.source.as_str())
            .unwrap_or("defaults")
    }

    /// Whether the key was given anywhere.
    pub fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// An error about a key, naming its source.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        config_error(key, self.source(key), reason)
    }

    /// The raw value.
    pub fn raw(&self, key: &str) -> Option<&RawValue> {
        self.values.get(key).map(|s| &s.raw)
    }

    /// The value as one string: a list is joined with commas, a mapping written `k=v,…`.
    pub fn text(&self, key: &str) -> Option<String> {
        self.raw(key).map(|r| match r {
            RawValue::Text(s) => s.clone(),
            RawValue::List(l) => l.join(","),
            RawValue::Map(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        })
    }

    /// A path; an empty value is no path.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.text(key).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// `true` or `false` (an empty value is `false`).
    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(key) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" => Ok(true),
                "false" | "" => Ok(false),
                _ => Err(self.error(key, format!("{v:?} is not true or false"))),
            },
        }
    }

    /// A TCP port.
    pub fn port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        match self.text(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.error(key, format!("{v:?} is not a port number"))),
        }
    }

    /// A value through the caller's parser, whose error message becomes the reason.
    pub fn parse<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.text(key) {
            None => Ok(None),
            Some(v) => parse(v.trim()).map(Some).map_err(|e| self.error(key, e)),
        }
    }

    /// A list: a YAML list, a repeated flag, or a comma-separated string. Blank items are
    /// dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        let items: Vec<String> = match self.raw(key) {
            None => return Vec::new(),
            Some(RawValue::List(l)) => l.iter().flat_map(|s| split_list(s)).collect(),
            Some(RawValue::Text(s)) => split_list(s),
            Some(RawValue::Map(m)) => m.keys().cloned().collect(),
        };
        items
    }

    /// The file `key` names, read whole under `limit`: None when the key is unset; a
    /// missing, unreadable or oversized file (`/dev/zero` fails at once) is an error naming
    /// the key and its source.
    pub fn read_file(
        &self,
        key: &str,
        limit: ward_io::files::Limit,
    ) -> Result<Option<(PathBuf, Vec<u8>)>, ConfigError> {
        let Some(path) = self.path(key) else {
            return Ok(None);
        };
        match ward_io::files::read_bounded(&path, limit) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) => Err(self.error(key, e.to_string())),
        }
    }

    /// Checks the PEM file `key` names, if set: readable, under the PEM cap, and holding
    /// what `kind` says (one or more certificates, or one private key). Every file key of a
    /// service is checked this way at start, so that a wrong path is one line naming the
    /// key rather than a setting silently left out.
    pub fn check_pem_file(&self, key: &str, kind: PemKind) -> Result<(), ConfigError> {
        use rustls_pki_types::pem::PemObject;
        let Some((path, bytes)) = self.read_file(key, ward_io::files::PEM)? else {
            return Ok(());
        };
        let p = path.display();
        match kind {
            PemKind::Certificates => {
                let mut n = 0;
                for c in rustls_pki_types::CertificateDer::pem_slice_iter(&bytes) {
                    c.map_err(|e| self.error(key, format!("{p}: not PEM certificates: {e}")))?;
                    n += 1;
                }
                if n == 0 {
                    return Err(self.error(
                        key,
                        format!("{p}: holds no certificate (-----BEGIN CERTIFICATE-----)"),
                    ));
                }
            }
            PemKind::PrivateKey => {
                rustls_pki_types::PrivateKeyDer::from_pem_slice(&bytes)
                    .map_err(|e| self.error(key, format!("{p}: holds no PEM private key: {e}")))?;
            }
        }
        Ok(())
    }

    /// A mapping: a YAML mapping, or `k=v,k2=v2` (from flags or the environment; a
    /// repeated flag adds pairs).
    pub fn map(&self, key: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        let pairs = |s: &str, out: &mut BTreeMap<String, String>| -> Result<(), ConfigError> {
            for item in split_commas(s) {
                let (k, v) = item.split_once('=').ok_or_else(|| {
                    self.error(
                        key,
                        format!("{item:?} is not key=value (write k=v,k2=v2, or a YAML mapping in the file)"),
                    )
                })?;
                let k = k.trim();
                if k.is_empty() {
                    return Err(self.error(key, format!("{item:?} has an empty key")));
                }
                out.insert(k.to_string(), v.trim().to_string());
            }
            Ok(())
        };
        let mut out = BTreeMap::new();
        match self.raw(key) {
            None => {}
            Some(RawValue::Map(m)) => out = m.clone(),
            // Sensu's environment form: SENSU_LABELS='{"region": "us-east-1"}'.
            Some(RawValue::Text(s)) if s.trim_start().starts_with('{') => {
                let m: BTreeMap<String, serde_json::Value> = serde_json::from_str(s).map_err(|e| {
                    self.error(key, format!("is not a JSON object of strings ({e}); write {{\"k\": \"v\"}} or k=v,k2=v2"))
                })?;
                for (k, v) in m {
                    let v = match v {
                        serde_json::Value::String(v) => v,
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(self.error(key, format!("{k:?}: {other} is not a string")))
                        }
                    };
                    if k.is_empty() {
                        return Err(self.error(key, "a key is empty"));
                    }
                    out.insert(k, v);
                }
            }
            Some(RawValue::Text(s)) => pairs(s, &mut out)?,
            Some(RawValue::List(l)) => {
                for s in l {
                    pairs(s, &mut out)?;
                }
            }
        }
        Ok(out)
    }
}

/// What a PEM file key must hold (see [`Settings::check_pem_file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// One or more certificates: a certificate chain or a CA bundle.
    Certificates,
    /// One private key.
    PrivateKey,
}

/// A text file read under `limit`, or the reason it cannot be (a line naming the file).
fn read_text(path: &Path, limit: ward_io::files::Limit) -> Result<String, String> {
    let bytes = ward_io::files::read_bounded(path, limit).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// A list's items: separated by commas or white space (Sensu's environment writes
/// `SENSU_BACKEND_URL="ws://a:8081 ws://b:8081"`; no list item may hold a space).
fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn split_commas(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests;

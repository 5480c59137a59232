//! The environment around [`Settings`](super::Settings): refusing stray variables of a
//! service's prefixes, and loading an env file.

use super::{config_error, read_text, ConfigError, Schema};
use std::path::Path;

/// Refuses environment variables that begin with `schema.env_prefix` (`WARD_BACKEND_`,
/// `WARD_AGENT_`) or its [`Schema::alias_prefix`] (`SENSU_BACKEND_`) but name no key, as
/// unknown YAML keys are refused: a misspelt variable would otherwise be a setting silently
/// not applied. Only those prefixes are checked (other variables belong to other commands,
/// tools and handlers). The variables of [`Schema::foreign`] keys pass here:
/// [`Settings::resolve`](super::Settings::resolve) reads them and says what becomes of
/// each. `also` lists other variables of the prefixes read elsewhere
/// (`WARD_BACKEND_CLUSTER_ADMIN_PASSWORD` by `ward backend init`); each also passes under
/// the alias prefix.
pub fn check_env_names(
    schema: &Schema,
    also: &[&str],
    names: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(), ConfigError> {
    let mut known: Vec<String> = schema.keys.iter().map(|k| schema.env_var(k)).collect();
    known.extend(schema.foreign.iter().map(|f| schema.env_var(f.key)));
    known.extend(also.iter().map(|s| s.to_string()));
    let prefixes: Vec<&str> = std::iter::once(schema.env_prefix)
        .chain(schema.alias_prefix.filter(|_| schema.alias_strict))
        .collect();
    for name in names {
        let name = name.to_string_lossy();
        let Some(prefix) = prefixes.iter().find(|p| name.starts_with(**p)) else {
            continue;
        };
        // The same name under the service's own prefix.
        let own = format!("{}{}", schema.env_prefix, &name[prefix.len()..]);
        if known.contains(&own) || also.contains(&name.as_ref()) {
            continue;
        }
        let closest = known
            .iter()
            .filter(|k| k.starts_with(schema.env_prefix))
            .min_by_key(|k| edit_distance(k, &own))
            .map(|k| format!("{prefix}{}", &k[schema.env_prefix.len()..]))
            .unwrap_or_default();
        return Err(config_error(
            &ward_io::text::one_line(&name),
            "the environment",
            format!("unknown variable: did you mean {closest}? (each {prefix}* variable must name a key)"),
        ));
    }
    Ok(())
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Reads `KEY=VALUE` lines (an env file such as /etc/default/ward-backend) into the process
/// environment; variables already set win, as with systemd's EnvironmentFile. Call it at
/// start-up, before any other thread exists.
pub fn load_env_file(path: &Path) -> Result<usize, String> {
    let text = read_text(path, ward_io::files::CONFIG).map_err(|e| format!("env file {e}"))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected KEY=VALUE", path.display(), i + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{}:{}: {k:?} is not a variable name",
                path.display(),
                i + 1
            ));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        if v.contains('\0') {
            // The environment cannot hold one: setting it would panic.
            return Err(format!(
                "{}:{}: the value of {k} contains a NUL byte, which no environment variable can hold; remove it",
                path.display(),
                i + 1
            ));
        }
        if std::env::var_os(k).is_none() {
            // Single-threaded at this point: start-up, before any runtime exists.
            std::env::set_var(k, v);
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::foreign::{Foreign, Rule};

    const SCHEMA: Schema = Schema {
        keys: &["log-level", "agent-port"],
        map_keys: &[],
        env_prefix: "WARD_T_",
        alias_prefix: Some("SENSU_T_"),
        alias_strict: true,
        foreign: &[Foreign {
            key: "etcd-name",
            rule: Rule::Refused {
                reason: "no etcd",
                instead: "remove it",
            },
        }],
    };

    fn check(names: &[&str]) -> Result<(), String> {
        check_env_names(
            &SCHEMA,
            &["WARD_T_INIT_ONLY"],
            names.iter().map(std::ffi::OsString::from),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn both_prefixes_must_name_a_key_and_foreign_keys_pass_to_resolve() {
        check(&[
            "WARD_T_LOG_LEVEL",
            "SENSU_T_AGENT_PORT",
            "SENSU_T_ETCD_NAME",
            "WARD_T_ETCD_NAME",
            "SENSU_T_INIT_ONLY",
            "PATH",
            "SENSU_OTHER",
        ])
        .unwrap();
        assert_eq!(
            check(&["SENSU_T_LOG_LEVL"]).unwrap_err(),
            "SENSU_T_LOG_LEVL (from the environment): unknown variable: did you mean SENSU_T_LOG_LEVEL? (each SENSU_T_* variable must name a key)"
        );
        assert!(check(&["WARD_T_AGENT_POTR"])
            .unwrap_err()
            .contains("did you mean WARD_T_AGENT_PORT? (each WARD_T_*"));
    }
}

//! Redaction: label and annotation values an agent sends as `REDACTED`.

/// Sensu's default `redact` list: labels and annotations whose values an agent hides.
pub const DEFAULT_REDACT: [&str; 9] = [
    "password",
    "passwd",
    "pass",
    "api_key",
    "api_token",
    "access_key",
    "secret_key",
    "private_key",
    "secret",
];

/// A key as Sensu compares redacted fields: lowercase, and when that is not all letters
/// and digits, its letters only (`API-Key`, `api_key` and `apikey` are one key).
fn redact_form(k: &str) -> String {
    let lower = k.to_lowercase();
    if lower
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        lower
    } else {
        lower.chars().filter(char::is_ascii_lowercase).collect()
    }
}

/// `map` with the values of the keys `redact` names replaced by `REDACTED`, as Sensu's
/// agent sends labels and annotations.
pub fn redacted(
    map: &std::collections::BTreeMap<String, String>,
    redact: &[String],
) -> std::collections::BTreeMap<String, String> {
    let hidden: Vec<String> = redact.iter().map(|k| redact_form(k)).collect();
    map.iter()
        .map(|(k, v)| {
            let v = if hidden.contains(&redact_form(k)) {
                "REDACTED".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn keys_are_compared_as_sensu_normalises_them() {
        let m: std::collections::BTreeMap<String, String> = [
            ("API-Key", "k"),
            ("apikey", "k"),
            ("Password", "p"),
            ("region", "eu"),
            ("pass_word", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = redacted(&m, &["api_key".into(), "password".into()]);
        assert_eq!(r["API-Key"], "REDACTED");
        assert_eq!(r["apikey"], "REDACTED");
        assert_eq!(r["Password"], "REDACTED");
        assert_eq!(r["pass_word"], "REDACTED");
        assert_eq!(r["region"], "eu");
        let defaults: Vec<String> = DEFAULT_REDACT.iter().map(|s| s.to_string()).collect();
        assert_eq!(redacted(&m, &defaults)["region"], "eu");
        assert_eq!(redacted(&m, &[])["Password"], "p");
    }
}

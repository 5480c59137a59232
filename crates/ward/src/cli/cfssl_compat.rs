//! cfssl and cfssljson take Go-style flags (`-initca`, `-config=ca-config.json`, `-bare`).
//! So that the guides' pipelines run verbatim, `ward pki gencert`, `sign` and `json`
//! accept that spelling: a single-dash word flag is rewritten to its double-dash form
//! before clap sees it. A lone `-` (stdin) is left alone.

use std::ffi::OsString;

/// Rewrites `-flag` / `-flag=value` to `--flag…` in the arguments of the cfssl-compatible
/// subcommands; every other command line is returned unchanged.
pub fn translate(args: Vec<OsString>) -> Vec<OsString> {
    let is_compat = args.len() >= 3
        && args[1] == "pki"
        && ["gencert", "json", "sign"].iter().any(|c| args[2] == *c);
    if !is_compat {
        return args;
    }
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i < 3 {
                return a;
            }
            match a.to_str() {
                Some(s)
                    if s.len() > 2
                        && s.starts_with('-')
                        && !s.starts_with("--")
                        && s[1..].starts_with(|c: char| c.is_ascii_alphabetic()) =>
                {
                    OsString::from(format!("-{s}"))
                }
                _ => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Vec<String> {
        translate(v.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn sign_takes_cfssls_flags() {
        assert_eq!(
            t(&["ward", "pki", "sign", "-ca=ca.pem", "-profile=www", "w.csr"]),
            [
                "ward",
                "pki",
                "sign",
                "--ca=ca.pem",
                "--profile=www",
                "w.csr"
            ]
        );
    }

    #[test]
    fn go_flags_become_long_flags_only_for_cfssl_commands() {
        assert_eq!(
            t(&["ward", "pki", "gencert", "-initca", "-"]),
            ["ward", "pki", "gencert", "--initca", "-"]
        );
        assert_eq!(
            t(&[
                "ward",
                "pki",
                "gencert",
                "-hostname=",
                "-ca=ca.pem",
                "x.json"
            ]),
            [
                "ward",
                "pki",
                "gencert",
                "--hostname=",
                "--ca=ca.pem",
                "x.json"
            ]
        );
        assert_eq!(
            t(&["ward", "pki", "json", "-bare", "ca", "-"]),
            ["ward", "pki", "json", "--bare", "ca", "-"]
        );
        assert_eq!(
            t(&["ward", "pki", "info", "-x"]),
            ["ward", "pki", "info", "-x"]
        );
    }
}

//! Keys of the system a Ward service replaces (sensu-backend's, for `ward backend`) that the
//! service does not implement under that name. Each is refused with why and what to use
//! instead, accepted only with the value Ward always has, or accepted, checked and ignored
//! with one warning: never a bare "unknown key", never silently dropped.

use super::{config_error, ConfigError};

/// A key Ward knows of but does not implement.
#[derive(Debug, Clone, Copy)]
pub struct Foreign {
    pub key: &'static str,
    pub rule: Rule,
}

impl Foreign {
    /// A key refused whatever its value ([`Rule::Refused`]).
    pub const fn refused(
        key: &'static str,
        reason: &'static str,
        instead: &'static str,
    ) -> Foreign {
        Foreign {
            key,
            rule: Rule::Refused { reason, instead },
        }
    }

    /// A key accepted when its value is a `kind`, then ignored ([`Rule::Ignored`]).
    pub const fn ignored(key: &'static str, kind: Kind, reason: &'static str) -> Foreign {
        Foreign {
            key,
            rule: Rule::Ignored { kind, reason },
        }
    }

    /// A true-or-false key accepted only as `ward` ([`Rule::Fixed`]).
    pub const fn fixed(
        key: &'static str,
        ward: bool,
        reason: &'static str,
        instead: &'static str,
    ) -> Foreign {
        Foreign {
            key,
            rule: Rule::Fixed {
                ward,
                reason,
                instead,
            },
        }
    }
}

/// What becomes of a [`Foreign`] key that is set.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Refused whatever its value: `KEY (from SOURCE): not supported by Ward: REASON; INSTEAD`.
    Refused {
        reason: &'static str,
        instead: &'static str,
    },
    /// A true-or-false key accepted when it asks for what Ward always does (`ward`), and
    /// refused as [`Rule::Refused`] when it asks for the other.
    Fixed {
        ward: bool,
        reason: &'static str,
        instead: &'static str,
    },
    /// Accepted when its value is a `kind`, then ignored: start logs
    /// `KEY (from SOURCE) is ignored: REASON` once.
    Ignored { kind: Kind, reason: &'static str },
}

/// The values an ignored key accepts: those its original documents and parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (`100`).
    Int,
    /// A number (`1.39`, `100`).
    Float,
    /// Go's booleans: `true`, `false`, `1`, `0`, `t`, `f`, `TRUE`, `False`, …; empty is false.
    Bool,
    /// A Go duration: `15s`, `10ms`, `1h5m30s`.
    Duration,
    /// Seconds, as a whole number (`15`) or a duration (`15s`).
    Seconds,
    /// Anything (a URL, a path, a mapping).
    Any,
}

/// Go's `strconv.ParseBool`, which Sensu's configuration uses; an empty value is false.
pub fn go_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Kind {
    /// Checks `v`, or says what it should be.
    fn check(self, v: &str) -> Result<(), String> {
        let v = v.trim();
        let ok = match self {
            Kind::Int => v.parse::<i64>().is_ok(),
            Kind::Float => v.parse::<f64>().is_ok_and(f64::is_finite),
            Kind::Bool => go_bool(v).is_some(),
            Kind::Duration => ward_io::parse_duration("", v).is_ok(),
            Kind::Seconds => v.parse::<u64>().is_ok() || ward_io::parse_duration("", v).is_ok(),
            Kind::Any => true,
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "{v:?} is not {}",
            match self {
                Kind::Int => "a whole number",
                Kind::Float => "a number",
                Kind::Bool => "true or false",
                Kind::Duration => "a duration (15s, 10ms, 1h5m)",
                Kind::Seconds => "seconds (15) or a duration (15s)",
                Kind::Any => unreachable!(),
            }
        ))
    }
}

impl Foreign {
    /// Applies the rule to a value from `source`: an error, or the warning to log.
    pub fn apply(&self, value: &str, source: &str) -> Result<String, ConfigError> {
        let refuse = |reason: &str, instead: &str| {
            config_error(
                self.key,
                source,
                format!("not supported by Ward: {reason}; {instead}"),
            )
        };
        match self.rule {
            Rule::Refused { reason, instead } => Err(refuse(reason, instead)),
            Rule::Fixed {
                ward,
                reason,
                instead,
            } => match go_bool(value) {
                Some(b) if b == ward => Ok(String::new()),
                Some(_) => Err(refuse(reason, instead)),
                None => Err(config_error(
                    self.key,
                    source,
                    format!("{:?} is not true or false", value.trim()),
                )),
            },
            Rule::Ignored { kind, reason } => {
                kind.check(value)
                    .map_err(|e| config_error(self.key, source, e))?;
                Ok(format!("{} (from {source}) is ignored: {reason}", self.key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_refuses_accepts_or_warns_naming_key_and_source() {
        let f = |rule| Foreign { key: "k", rule };
        let refused = f(Rule::Refused {
            reason: "no etcd",
            instead: "remove it",
        });
        assert_eq!(
            refused.apply("x", "$SENSU_K").unwrap_err().to_string(),
            "k (from $SENSU_K): not supported by Ward: no etcd; remove it"
        );
        let fixed = f(Rule::Fixed {
            ward: false,
            reason: "never skipped",
            instead: "use a CA",
        });
        for ok in ["false", "0", "F", ""] {
            assert_eq!(fixed.apply(ok, "--k").unwrap(), "", "{ok:?}");
        }
        assert_eq!(
            fixed.apply("true", "--k").unwrap_err().to_string(),
            "k (from --k): not supported by Ward: never skipped; use a CA"
        );
        assert!(fixed
            .apply("yes", "--k")
            .unwrap_err()
            .to_string()
            .contains("\"yes\" is not true or false"));
        // Sensu's documented example values parse; others are refused naming the key.
        for (kind, good, bad) in [
            (Kind::Int, "100", "1.5"),
            (Kind::Float, "1.39", "fast"),
            (Kind::Bool, "True", "yes"),
            (Kind::Duration, "10ms", "10"),
            (Kind::Duration, "1h5m30s", "1 h"),
            (Kind::Seconds, "15", "-1"),
            (Kind::Seconds, "2s", "2x"),
        ] {
            let k = f(Rule::Ignored {
                kind,
                reason: "no use",
            });
            assert_eq!(
                k.apply(good, "f.yml").unwrap(),
                "k (from f.yml) is ignored: no use"
            );
            let e = k.apply(bad, "f.yml").unwrap_err().to_string();
            assert!(e.starts_with("k (from f.yml): "), "{kind:?} {bad}: {e}");
        }
    }
}

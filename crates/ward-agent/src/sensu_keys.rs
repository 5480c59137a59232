//! sensu-agent's `start` keys (Sensu Go 6.12's reference, and older names still found in
//! agent.yml files) that Ward's agent does not implement, and what becomes of each (see
//! docs/agent.md, "Coming from sensu-agent"). A key whose effect an operator relies on is
//! refused with why and what to do; one asking for what Ward always does is accepted
//! (`Rule::Fixed`); an informational knob is accepted, checked and ignored with one
//! warning.

use ward_types::settings::{Foreign, Kind};

/// Every sensu-agent key Ward's agent does not implement under that name.
pub const SENSU_KEYS: &[Foreign] = &[
    Foreign::fixed("require-fips", false, "Ward has no FIPS mode", "remove it"),
    Foreign::fixed("require-openssl", false, "Ward's agent uses rustls, never OpenSSL", "remove it"),
    Foreign::refused(
        "keepalive-timeout",
        "Sensu 5.0's name; Sensu and Ward call it keepalive-warning-timeout",
        "rename it keepalive-warning-timeout",
    ),
    Foreign::refused(
        "extended-attributes",
        "Sensu 5.0's custom entity attributes, gone from Sensu too",
        "use labels and annotations",
    ),
    Foreign::ignored(
        "discover-processes",
        Kind::Bool,
        "process discovery is disabled in Sensu itself: entity.system.processes stays null",
    ),
    Foreign::ignored(
        "config-file",
        Kind::Any,
        "the configuration file is named by --config-file (or $WARD_AGENT_CONFIG_FILE, $SENSU_CONFIG_FILE); inside a file or from other sources it has no effect",
    ),
];

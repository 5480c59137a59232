//! sensu-backend's `start` keys that Ward does not implement under that name, and what
//! becomes of each (see docs/backend.md, "Coming from sensu-backend"). The list is Sensu
//! Go 6.x's (backend/cmd/start.go, backend/config.go, and the backend reference's keys of
//! the commercial build), plus 7.0's few new ones, plus the sensu-agent keys whose
//! variables also begin `SENSU_BACKEND_`. The rule of choice: a key whose effect an
//! operator relies on (security, limits, clustering, data written somewhere) is refused; a
//! tuning knob of Sensu's own machinery is accepted, checked as Sensu would parse it, and
//! ignored with one warning at start.

use ward_types::settings::{Foreign, Kind};

const ETCD: &str = "Ward's store is SQLite in state-dir, not etcd: there is no etcd to listen on, join, or connect to";
const ETCD_CLUSTER: &str =
    "remove it; several backends share events through the PostgreSQL event store (docs/backend.md)";
const ETCD_TLS: &str = "remove it; TLS to PostgreSQL is set by PGSSL* variables (docs/backend.md)";
const ETCD_TUNING: &str = "remove it";
const WORKERS: &str = "Ward's event path has no worker pools or queues of Sensu's kind to size";
const EVENT_LOG: &str = "tunes Sensu's event log file, which Ward does not write";
const PLATFORM: &str = "Ward writes no platform-metrics log; its metrics are at GET /metrics";
const AGENT_KEY: &str =
    "a sensu-agent key (its variable also begins SENSU_BACKEND_); set it in the agent's configuration";

/// Every sensu-backend start key Ward does not implement under that name.
pub const SENSU_KEYS: &[Foreign] = &[
    // Security: Ward's behaviour is fixed; asking for the other is refused.
    Foreign::fixed("insecure-skip-tls-verify", false, "Ward's backend never skips certificate verification", "remove it; for a private CA give trusted-ca-file"),
    Foreign::fixed("enable-cert-revocation-check", true, "Ward always checks the revocation of agents' client certificates (CRL, OCSP)", "to accept a certificate whose status no source can answer, set agent-auth-fail-open: true"),
    Foreign::fixed("require-fips", false, "Ward has no FIPS mode", "remove it"),
    Foreign::refused("jwt-private-key-file", "Ward's access tokens are random strings kept in its store, not JWTs signed with a key", "remove it"),
    Foreign::refused("jwt-public-key-file", "Ward's access tokens are random strings kept in its store, not JWTs signed with a key", "remove it"),
    Foreign::refused("access-token-expiry", "Ward names this key access-token-ttl", "use access-token-ttl (a duration, e.g. 15m)"),
    Foreign::refused("refresh-token-expiry", "Ward's refresh tokens live 12h, a fixed term", "remove it"),
    Foreign::refused("agent-rate-limit", "Ward does not rate-limit agent connections", "max-connections bounds the connections open at once"),
    Foreign::refused("agent-burst-limit", "Ward does not rate-limit agent connections", "max-connections bounds the connections open at once"),
    Foreign::refused("api-request-limit", "Ward's API request-body limit is fixed at 1 MiB (413 above it)", "remove it"),
    // Features an operator relies on that Ward does not have.
    Foreign::refused("default-silenced-expiry-time", "Ward sets no default expiry on silences: one without expire lasts until deleted", "give each silence its expire"),
    Foreign::refused("max-silenced-expiry-time-allowed", "Ward has no cap on a silence's expiry", "remove it"),
    Foreign::refused("event-log-file", "Ward writes no event log file", "read events from GET /api/core/v2/events, or send them on with a handler"),
    Foreign::refused("pg-dsn", "Ward's PostgreSQL event store is set by a PostgresConfig resource, as in Sensu 6, not by a start key", "create one with ward ctl create (docs/backend.md)"),
    // etcd: Ward has none.
    Foreign::refused("etcd-advertise-client-urls", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-listen-client-urls", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-listen-peer-urls", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-initial-advertise-peer-urls", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-initial-cluster", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-initial-cluster-state", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-initial-cluster-token", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-discovery", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-discovery-srv", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-name", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-client-urls", ETCD, ETCD_CLUSTER),
    Foreign::refused("no-embed-etcd", ETCD, ETCD_CLUSTER),
    Foreign::refused("etcd-cert-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-key-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-trusted-ca-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-client-cert-auth", ETCD, ETCD_TLS),
    Foreign::refused("etcd-peer-cert-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-peer-key-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-peer-trusted-ca-file", ETCD, ETCD_TLS),
    Foreign::refused("etcd-peer-client-cert-auth", ETCD, ETCD_TLS),
    Foreign::refused("etcd-cipher-suites", ETCD, ETCD_TLS),
    Foreign::refused("etcd-client-username", ETCD, ETCD_TLS),
    Foreign::refused("etcd-client-password", ETCD, ETCD_TLS),
    Foreign::refused("etcd-election-timeout", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-heartbeat-interval", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-max-request-bytes", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-quota-backend-bytes", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-log-level", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-client-log-level", ETCD, ETCD_TUNING),
    Foreign::refused("etcd-unsafe-no-fsync", ETCD, ETCD_TUNING),
    // Tuning knobs of Sensu's machinery: accepted as Sensu parses them, then ignored.
    Foreign::ignored("eventd-workers", Kind::Int, WORKERS),
    Foreign::ignored("eventd-buffer-size", Kind::Int, WORKERS),
    Foreign::ignored("keepalived-workers", Kind::Int, WORKERS),
    Foreign::ignored("keepalived-buffer-size", Kind::Int, WORKERS),
    Foreign::ignored("pipelined-workers", Kind::Int, WORKERS),
    Foreign::ignored("pipelined-buffer-size", Kind::Int, WORKERS),
    Foreign::ignored("agent-write-timeout", Kind::Seconds, "Ward's write timeout to agents is fixed at 10s"),
    Foreign::ignored("api-write-timeout", Kind::Duration, "Ward has no response-write timeout; http-header-timeout and max-connections bound slow clients"),
    Foreign::ignored("dashboard-write-timeout", Kind::Duration, "Ward has no response-write timeout; http-header-timeout and max-connections bound slow clients"),
    Foreign::ignored("agent-serve-wait-time", Kind::Duration, "Ward accepts agents as soon as it listens"),
    Foreign::ignored("api-serve-wait-time", Kind::Duration, "Ward serves the API as soon as it listens"),
    Foreign::ignored("assets-rate-limit", Kind::Float, "Ward's backend fetches each asset build once (cached by its SHA-512) and is not rate-limited"),
    Foreign::ignored("assets-burst-limit", Kind::Int, "Ward's backend fetches each asset build once (cached by its SHA-512) and is not rate-limited"),
    Foreign::ignored("labels", Kind::Any, "Ward registers no backend entity to carry them"),
    Foreign::ignored("annotations", Kind::Any, "Ward registers no backend entity to carry them"),
    Foreign::ignored("name", Kind::Any, "Ward registers no backend entity to name"),
    Foreign::ignored("debug", Kind::Bool, "Ward has no profiling endpoint; log-level: debug gives detail"),
    Foreign::ignored("log-millisecond-timestamps", Kind::Bool, "Ward's JSON log lines always carry sub-second timestamps"),
    Foreign::ignored("metrics-refresh-interval", Kind::Duration, "Ward computes GET /metrics when it is read"),
    Foreign::ignored("disable-platform-metrics", Kind::Bool, PLATFORM),
    Foreign::ignored("platform-metrics-log-file", Kind::Any, PLATFORM),
    Foreign::ignored("platform-metrics-logging-interval", Kind::Duration, PLATFORM),
    Foreign::ignored("event-log-buffer-size", Kind::Int, EVENT_LOG),
    Foreign::ignored("event-log-buffer-wait", Kind::Duration, EVENT_LOG),
    Foreign::ignored("event-log-parallel-encoders", Kind::Bool, EVENT_LOG),
    Foreign::ignored("event-cache-write-limit", Kind::Int, "tunes Sensu 7's event cache in front of PostgreSQL, which Ward does not have"),
    Foreign::ignored("disable-event-cache", Kind::Bool, "Ward has no event cache in front of PostgreSQL to disable"),
    Foreign::ignored("backend-url", Kind::Any, AGENT_KEY),
    Foreign::ignored("backend-heartbeat-interval", Kind::Seconds, AGENT_KEY),
    Foreign::ignored("backend-heartbeat-timeout", Kind::Seconds, AGENT_KEY),
    Foreign::ignored("backend-handshake-timeout", Kind::Seconds, AGENT_KEY),
];

/// `SENSU_BACKEND_*` variables of `sensu-backend init`, which its start does not read
/// either; an env file shared by both may hold them.
pub const SENSU_INIT_ENV: &[&str] = &[
    "SENSU_BACKEND_CLUSTER_ADMIN_API_KEY",
    "SENSU_BACKEND_IGNORE_ALREADY_INITIALIZED",
    "SENSU_BACKEND_INTERACTIVE",
    "SENSU_BACKEND_TIMEOUT",
    "SENSU_BACKEND_WAIT",
];

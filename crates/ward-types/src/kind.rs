//! `Kind`: the resource types Ward knows, with Sensu Go's type names, API versions and the
//! collection segments of its REST API (core/v2 `typemap.go`, `*.go` `*Resource` constants).

use crate::{field_error, FieldError};

/// The kinds of resource Ward knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    User,
    Entity,
    CheckConfig,
    Handler,
    Event,
    PostgresConfig,
    EventFilter,
    Mutator,
    Pipeline,
    Silenced,
    HookConfig,
    Asset,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    APIKey,
    /// pipeline/v1 `TCPStreamHandler`: a pool of persistent (optionally TLS) connections
    /// that events are written to, for use in Pipelines only.
    TCPStreamHandler,
    /// secrets/v1 `Secret`: a name for a value a provider holds (Ward: the backend's
    /// environment, provider `env`).
    Secret,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Namespace,
        Kind::User,
        Kind::Entity,
        Kind::CheckConfig,
        Kind::Handler,
        Kind::Event,
        Kind::PostgresConfig,
        Kind::EventFilter,
        Kind::Mutator,
        Kind::Pipeline,
        Kind::Silenced,
        Kind::HookConfig,
        Kind::Asset,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::APIKey,
        Kind::TCPStreamHandler,
        Kind::Secret,
    ];

    /// `type` in documents.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::User => "User",
            Kind::Entity => "Entity",
            Kind::CheckConfig => "CheckConfig",
            Kind::Handler => "Handler",
            Kind::Event => "Event",
            Kind::PostgresConfig => "PostgresConfig",
            Kind::EventFilter => "EventFilter",
            Kind::Mutator => "Mutator",
            Kind::Pipeline => "Pipeline",
            Kind::Silenced => "Silenced",
            Kind::HookConfig => "HookConfig",
            Kind::Asset => "Asset",
            Kind::Role => "Role",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRole => "ClusterRole",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
            Kind::APIKey => "APIKey",
            Kind::TCPStreamHandler => "TCPStreamHandler",
            Kind::Secret => "Secret",
        }
    }

    /// `api_version` in documents.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::PostgresConfig => "store/v1",
            Kind::TCPStreamHandler => "pipeline/v1",
            Kind::Secret => "secrets/v1",
            _ => "core/v2",
        }
    }

    /// Where the kind's collections are in the API: `/api/core/v2`, or the `enterprise`
    /// group Sensu serves it under.
    pub fn api_prefix(self) -> &'static str {
        match self {
            Kind::PostgresConfig => "/api/enterprise/store/v1",
            Kind::TCPStreamHandler => "/api/enterprise/pipeline/v1",
            Kind::Secret => "/api/enterprise/secrets/v1",
            _ => "/api/core/v2",
        }
    }

    /// The collection's path segment in the API.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::User => "users",
            Kind::Entity => "entities",
            Kind::CheckConfig => "checks",
            Kind::Handler => "handlers",
            Kind::Event => "events",
            Kind::PostgresConfig => "provider",
            Kind::EventFilter => "filters",
            Kind::Mutator => "mutators",
            Kind::Pipeline => "pipelines",
            Kind::Silenced => "silenced",
            Kind::HookConfig => "hooks",
            Kind::Asset => "assets",
            Kind::Role => "roles",
            Kind::RoleBinding => "rolebindings",
            Kind::ClusterRole => "clusterroles",
            Kind::ClusterRoleBinding => "clusterrolebindings",
            Kind::APIKey => "apikeys",
            Kind::TCPStreamHandler => "tcp-stream-handlers",
            Kind::Secret => "secrets",
        }
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::Entity
                | Kind::CheckConfig
                | Kind::Handler
                | Kind::Event
                | Kind::EventFilter
                | Kind::Mutator
                | Kind::Pipeline
                | Kind::Silenced
                | Kind::HookConfig
                | Kind::Asset
                | Kind::Role
                | Kind::RoleBinding
                | Kind::TCPStreamHandler
                | Kind::Secret
        )
    }

    /// Finds a kind from `type` (and `api_version` when given). Accepts the type name in
    /// any case, Sensu's snake_case aliases (`check_config`, `event_filter`,
    /// `cluster_role_binding`, `api_key`…, as core/v2 `typemap.go` registers them), and
    /// `api_version.Type` (`store/v1.PostgresConfig`, as `sensuctl dump` names types).
    pub fn parse(type_name: &str, api_version: Option<&str>) -> Result<Kind, FieldError> {
        let (api, name) = match type_name.rsplit_once('.') {
            Some((a, n)) if a.contains('/') => (Some(a), n),
            _ => (api_version, type_name),
        };
        let kind = Kind::ALL
            .into_iter()
            .find(|k| same_type_name(k.type_name(), name))
            .ok_or_else(|| {
                let what = if name.is_empty() {
                    "is required".to_string()
                } else {
                    format!("unknown type {name:?}")
                };
                field_error(
                    "type",
                    format!(
                        "{what}; known types: {}",
                        Kind::ALL.map(|k| k.type_name()).join(", ")
                    ),
                )
            })?;
        if let Some(a) = api.filter(|a| !a.is_empty()) {
            if a != kind.api_version() {
                return Err(field_error(
                    "api_version",
                    format!(
                        "{a:?} is not the api_version of {}; use {:?}",
                        kind.type_name(),
                        kind.api_version()
                    ),
                ));
            }
        }
        Ok(kind)
    }

    /// The kind a plural path segment names.
    pub fn from_plural(p: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == p)
    }
}

/// `CheckConfig` against `checkconfig`, `check_config`, `CHECK_CONFIG`: case and
/// underscores aside, the same letters. (Underscores only between words: `_check` is not
/// a name.)
fn same_type_name(canonical: &str, given: &str) -> bool {
    if given.is_empty() || given.starts_with('_') || given.ends_with('_') || given.contains("__") {
        return false;
    }
    let mut g = given.chars().filter(|c| *c != '_');
    let mut c = canonical.chars();
    loop {
        match (c.next(), g.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_by_name_alias_and_plural() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.type_name(), None).unwrap(), k);
            assert_eq!(
                Kind::parse(k.type_name(), Some(k.api_version())).unwrap(),
                k
            );
            let dump = format!("{}.{}", k.api_version(), k.type_name());
            assert_eq!(Kind::parse(&dump, None).unwrap(), k);
            assert_eq!(Kind::from_plural(k.plural()), Some(k));
        }
        for (alias, k) in [
            ("check_config", Kind::CheckConfig),
            ("event_filter", Kind::EventFilter),
            ("hook_config", Kind::HookConfig),
            ("role_binding", Kind::RoleBinding),
            ("cluster_role", Kind::ClusterRole),
            ("cluster_role_binding", Kind::ClusterRoleBinding),
            ("api_key", Kind::APIKey),
            ("silenced", Kind::Silenced),
            ("asset", Kind::Asset),
            ("mutator", Kind::Mutator),
            ("pipeline", Kind::Pipeline),
            ("role", Kind::Role),
            ("apikey", Kind::APIKey),
        ] {
            assert_eq!(Kind::parse(alias, Some("core/v2")).unwrap(), k, "{alias}");
        }
        for bad in [
            "check",
            "hook",
            "_role",
            "role_",
            "cluster__role",
            "",
            "Rolex",
        ] {
            let e = Kind::parse(bad, None).unwrap_err();
            assert_eq!(e.field, "type", "{bad}");
            assert!(e.reason.contains("ClusterRoleBinding"), "{e}");
        }
        let namespaced = Kind::ALL.iter().filter(|k| k.namespaced()).count();
        assert_eq!(namespaced, 14);
        assert!(!Kind::APIKey.namespaced() && !Kind::ClusterRole.namespaced());
    }
}

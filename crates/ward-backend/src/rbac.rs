//! Role-based access control, as Sensu's: Roles and ClusterRoles hold rules (`verbs`,
//! `resources`, `resource_names`); RoleBindings and ClusterRoleBindings grant a role to
//! users and groups. A request is allowed when any rule of any binding that applies to the
//! caller allows it; nothing else is (there are no deny rules).
//!
//! ClusterRoleBindings apply to every request. RoleBindings apply only inside their own
//! namespace, so a request without a namespace (a cluster-wide resource, or a list across
//! namespaces) is judged by ClusterRoleBindings alone. A RoleBinding may name a
//! ClusterRole, whose rules then apply in the binding's namespace only.
//!
//! The policy is a snapshot (`Policy`) built from the stored roles and bindings; the API
//! swaps in a new snapshot before it answers a change to any of them, so a rule change
//! takes effect on the next request.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use ward_store::{Store, StoreError};
use ward_types::{Kind, Resource};

/// What a request does, in Sensu's verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Create,
    Update,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }
}

/// One request, as RBAC sees it: `verb` on `resource` (the API's plural, e.g. `checks`),
/// named `name` (None for lists and creates by body), in `namespace` (None for
/// cluster-wide resources and lists across namespaces).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub verb: Verb,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// `verb` on `resource` in `namespace`, named `name`.
    pub fn new(
        verb: Verb,
        resource: &'a str,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            verb,
            resource,
            namespace,
            name,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("{} {}", self.verb.as_str(), self.resource);
        if let Some(n) = self.name {
            s.push_str(&format!(" {n:?}"));
        }
        match self.namespace {
            Some(ns) => s.push_str(&format!(" in namespace {ns:?}")),
            None => s.push_str(" (cluster-wide)"),
        }
        s
    }
}

/// A rule of a role.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Rule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

impl Rule {
    fn allows(&self, r: &Request) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
        any(&self.verbs, r.verb.as_str())
            && any(&self.resources, r.resource)
            && (self.resource_names.is_empty()
                || r.name
                    .is_some_and(|n| self.resource_names.iter().any(|x| x == n)))
    }
}

/// Who a binding grants its role to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// The role a binding grants: `type` is `Role` or `ClusterRole`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RoleRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// A RoleBinding's or ClusterRoleBinding's spec.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Binding {
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub subjects: Vec<Subject>,
    pub role_ref: RoleRef,
}

/// The group every authenticated user is in, as in Sensu (which adds it to every
/// access token's claims); the seeded ClusterRole system:user is bound to it.
pub const EVERY_USER_GROUP: &str = "system:users";

impl Binding {
    fn applies_to(&self, user: &str, groups: &[String]) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "User" => s.name == user,
            "Group" => s.name == EVERY_USER_GROUP || groups.contains(&s.name),
            _ => false,
        })
    }
}

#[derive(Deserialize)]
struct RulesSpec {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// The roles and bindings in force.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    cluster_roles: HashMap<String, Vec<Rule>>,
    /// (namespace, name) → rules.
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_bindings: Vec<Binding>,
    /// namespace → its bindings.
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// Why a stored role or binding cannot be used (it is skipped, and logged).
fn parse<T: for<'de> Deserialize<'de>>(what: &str, spec: &Value) -> Option<T> {
    match T::deserialize(spec) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(resource = what, error = %e, "a stored RBAC resource is malformed; it grants nothing");
            None
        }
    }
}

impl Policy {
    /// The seeded roles and bindings alone.
    pub fn seeded() -> Policy {
        let mut p = Policy::default();
        for (n, s) in seeded_cluster_roles() {
            p.add_cluster_role(n, &s);
        }
        for (n, s) in seeded_cluster_bindings() {
            p.add_cluster_binding(n, &s);
        }
        p
    }

    pub fn add_cluster_role(&mut self, name: &str, spec: &Value) {
        if let Some(s) = parse::<RulesSpec>(name, spec) {
            self.cluster_roles.insert(name.to_string(), s.rules);
        }
    }

    pub fn add_role(&mut self, namespace: &str, name: &str, spec: &Value) {
        if let Some(s) = parse::<RulesSpec>(name, spec) {
            self.roles
                .insert((namespace.to_string(), name.to_string()), s.rules);
        }
    }

    pub fn add_cluster_binding(&mut self, name: &str, spec: &Value) {
        if let Some(mut b) = parse::<Binding>(name, spec) {
            b.name = name.to_string();
            self.cluster_bindings.push(b);
        }
    }

    pub fn add_role_binding(&mut self, namespace: &str, name: &str, spec: &Value) {
        if let Some(mut b) = parse::<Binding>(name, spec) {
            b.name = name.to_string();
            self.role_bindings
                .entry(namespace.to_string())
                .or_default()
                .push(b);
        }
    }

    /// Allowed, or why not (one line, naming the user, the request and what to do).
    pub fn authorize(&self, user: &str, groups: &[String], r: &Request) -> Result<(), String> {
        for b in &self.cluster_bindings {
            if !b.applies_to(user, groups) {
                continue;
            }
            let Some(rules) = self.cluster_roles.get(&b.role_ref.name) else {
                return Err(format!(
                    "cluster role binding {:?} names the cluster role {:?}, which does not exist; create it or fix the binding",
                    b.name, b.role_ref.name
                ));
            };
            if rules.iter().any(|rule| rule.allows(r)) {
                return Ok(());
            }
        }
        if let Some(ns) = r.namespace {
            for b in self.role_bindings.get(ns).into_iter().flatten() {
                if !b.applies_to(user, groups) {
                    continue;
                }
                let rules = if b.role_ref.kind == "ClusterRole" {
                    self.cluster_roles.get(&b.role_ref.name)
                } else {
                    self.roles.get(&(ns.to_string(), b.role_ref.name.clone()))
                };
                let Some(rules) = rules else {
                    return Err(format!(
                        "role binding {:?} in namespace {ns:?} names the {} {:?}, which does not exist; create it or fix the binding",
                        b.name,
                        if b.role_ref.kind == "ClusterRole" { "cluster role" } else { "role" },
                        b.role_ref.name
                    ));
                };
                if rules.iter().any(|rule| rule.allows(r)) {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "user {user:?} (groups: {}) may not {}: no role binding allows it",
            if groups.is_empty() {
                "none".to_string()
            } else {
                groups.join(", ")
            },
            r.describe()
        ))
    }

    /// Whether the user can reach anything in `namespace`: a cluster binding whose role
    /// covers namespaced resources, or a role binding in that namespace. Namespace lists
    /// are filtered with it, as Sensu's are.
    pub fn reaches(&self, user: &str, groups: &[String], namespace: &str) -> bool {
        let cluster = self
            .cluster_bindings
            .iter()
            .filter(|b| b.applies_to(user, groups))
            .filter_map(|b| self.cluster_roles.get(&b.role_ref.name))
            .flatten()
            .any(|rule| rule.resources.iter().any(|x| x != "localselfuser"));
        cluster
            || self
                .role_bindings
                .get(namespace)
                .into_iter()
                .flatten()
                .any(|b| b.applies_to(user, groups))
    }
}

/// The policy in force, swapped whole when roles or bindings change.
pub type PolicyCell = crate::current::Current<Policy>;

/// Sensu's common namespaced resources (CORE `CommonCoreResources`), which the seeded
/// admin, edit and view roles cover. Ward adds `pipelines`, which Sensu forgot (so its
/// editors cannot manage pipelines), and `tcp-stream-handlers`, the handlers a Pipeline
/// may name. Secrets are left to cluster admins (and roles that name them): a Secret
/// names one of the backend's environment variables.
pub const COMMON_RESOURCES: &[&str] = &[
    "assets",
    "checks",
    "entities",
    "events",
    "filters",
    "handlers",
    "hooks",
    "mutators",
    "pipelines",
    "silenced",
    "tcp-stream-handlers",
];

/// The seeded ClusterRoles, as (name, spec).
pub fn seeded_cluster_roles() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    let common: Vec<&str> = COMMON_RESOURCES.to_vec();
    let mut admin = common.clone();
    admin.extend(["roles", "rolebindings"]);
    let read = ["get", "list"];
    let mut view = common.clone();
    view.push("namespaces");
    vec![
        (
            "cluster-admin",
            json!({"rules": [{"verbs": ["*"], "resources": ["*"], "resource_names": []}]}),
        ),
        (
            "admin",
            json!({"rules": [
                {"verbs": ["*"], "resources": admin, "resource_names": []},
                {"verbs": read, "resources": ["namespaces"], "resource_names": []}
            ]}),
        ),
        (
            "edit",
            json!({"rules": [
                {"verbs": ["*"], "resources": common, "resource_names": []},
                {"verbs": read, "resources": ["namespaces"], "resource_names": []}
            ]}),
        ),
        (
            "view",
            json!({"rules": [{"verbs": read, "resources": view, "resource_names": []}]}),
        ),
        (
            "system:agent",
            json!({"rules": [{"verbs": ["*"], "resources": ["events"], "resource_names": []}]}),
        ),
        (
            "system:user",
            json!({"rules": [{"verbs": ["get", "update"], "resources": ["localselfuser"], "resource_names": []}]}),
        ),
    ]
}

/// The seeded ClusterRoleBindings, as (name, spec): Sensu's three, and Ward's `view`
/// (group `view` → ClusterRole view), which Ward has always had.
pub fn seeded_cluster_bindings() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    let bind = |role: &str, group: &str| json!({"subjects": [{"type": "Group", "name": group}], "role_ref": {"type": "ClusterRole", "name": role}});
    vec![
        (
            "cluster-admin",
            bind("cluster-admin", crate::auth::ADMIN_GROUP),
        ),
        (
            "system:agent",
            bind("system:agent", crate::auth::AGENT_GROUP),
        ),
        ("system:user", bind("system:user", EVERY_USER_GROUP)),
        ("view", bind("view", crate::auth::VIEW_GROUP)),
    ]
}

/// The seeded ClusterRoles and ClusterRoleBindings as resources.
pub fn seed_resources() -> Vec<Resource> {
    let named = |kind: Kind, name: &str, spec: Value| {
        let mut flat = spec;
        flat["metadata"] = serde_json::json!({"name": name});
        Resource::from_flat(kind, flat)
    };
    seeded_cluster_roles()
        .into_iter()
        .map(|(n, s)| named(Kind::ClusterRole, n, s))
        .chain(
            seeded_cluster_bindings()
                .into_iter()
                .map(|(n, s)| named(Kind::ClusterRoleBinding, n, s)),
        )
        .filter_map(|r| match r {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "a seeded RBAC resource does not validate");
                None
            }
        })
        .collect()
}

/// The kinds RBAC reads: a change to any of them replaces the policy.
pub const KINDS: [Kind; 4] = [
    Kind::ClusterRole,
    Kind::Role,
    Kind::ClusterRoleBinding,
    Kind::RoleBinding,
];

/// Seeds a new store's roles and bindings (once), and reads the policy the store holds.
/// Blocking (the store).
pub fn load(store: &Store) -> Result<Policy, StoreError> {
    store.seed_once("rbac", &seed_resources())?;
    let mut p = Policy::default();
    for kind in KINDS {
        let mut after: Option<String> = None;
        loop {
            let (items, next) = store.list(kind, None, 10_000, after.as_deref())?;
            for r in items {
                let ns = r.metadata.namespace.as_deref().unwrap_or("");
                let (name, spec) = (r.metadata.name.as_str(), Value::Object(r.spec));
                match kind {
                    Kind::ClusterRole => p.add_cluster_role(name, &spec),
                    Kind::Role => p.add_role(ns, name, &spec),
                    Kind::ClusterRoleBinding => p.add_cluster_binding(name, &spec),
                    _ => p.add_role_binding(ns, name, &spec),
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use Policy as P;
    use Request as R;

    #[test]
    fn seeded_roles_allow_what_sensus_do() {
        let p = P::seeded();
        let g = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let admin = g(&["cluster-admins"]);
        let agent = g(&["system:agents"]);
        let viewer = g(&["view"]);
        let nobody: Vec<String> = Vec::new();
        let cases = [
            (
                &admin,
                R::new(Verb::Delete, "clusterroles", None, Some("x")),
                true,
            ),
            (
                &admin,
                R::new(Verb::Create, "checks", Some("default"), None),
                true,
            ),
            (
                &agent,
                R::new(Verb::Create, "events", Some("default"), None),
                true,
            ),
            (
                &agent,
                R::new(Verb::Update, "events", Some("prod"), Some("e/c")),
                true,
            ),
            (
                &agent,
                R::new(Verb::Get, "checks", Some("default"), Some("c")),
                false,
            ),
            (
                &viewer,
                R::new(Verb::List, "checks", Some("default"), None),
                true,
            ),
            (
                &viewer,
                R::new(Verb::List, "tcp-stream-handlers", Some("default"), None),
                true,
            ),
            (
                &viewer,
                R::new(Verb::Get, "secrets", Some("default"), Some("s")),
                false,
            ),
            (
                &viewer,
                R::new(Verb::Get, "namespaces", None, Some("default")),
                true,
            ),
            (
                &viewer,
                R::new(Verb::Create, "checks", Some("default"), None),
                false,
            ),
            (&viewer, R::new(Verb::List, "users", None, None), false),
            (
                &nobody,
                R::new(Verb::Get, "checks", Some("default"), Some("c")),
                false,
            ),
        ];
        for (groups, r, want) in cases {
            assert_eq!(
                p.authorize("u", groups, &r).is_ok(),
                want,
                "{groups:?} {}",
                r.describe()
            );
        }
        let e = p
            .authorize(
                "u",
                &viewer,
                &R::new(Verb::Create, "checks", Some("default"), None),
            )
            .unwrap_err();
        assert!(
            e.contains("user \"u\" (groups: view) may not create checks in namespace \"default\""),
            "{e}"
        );
    }

    #[test]
    fn role_bindings_apply_in_their_namespace_only() {
        let mut p = P::seeded();
        p.add_role(
            "dev",
            "checker",
            &json!({"rules": [{"verbs": ["get", "list"], "resources": ["checks"], "resource_names": ["web"]}]}),
        );
        p.add_role_binding(
            "dev",
            "alice-checker",
            &json!({"subjects": [{"type": "User", "name": "alice"}], "role_ref": {"type": "Role", "name": "checker"}}),
        );
        p.add_role_binding(
            "ops",
            "ops-edit",
            &json!({"subjects": [{"type": "Group", "name": "ops"}], "role_ref": {"type": "ClusterRole", "name": "edit"}}),
        );
        let none: Vec<String> = Vec::new();
        let ops = vec!["ops".to_string()];
        assert!(p
            .authorize(
                "alice",
                &none,
                &R::new(Verb::Get, "checks", Some("dev"), Some("web"))
            )
            .is_ok());
        assert!(p
            .authorize(
                "alice",
                &none,
                &R::new(Verb::Get, "checks", Some("dev"), Some("db"))
            )
            .is_err());
        assert!(
            p.authorize(
                "alice",
                &none,
                &R::new(Verb::List, "checks", Some("dev"), None)
            )
            .is_err(),
            "resource_names restrict lists too"
        );
        assert!(p
            .authorize(
                "alice",
                &none,
                &R::new(Verb::Get, "checks", Some("ops"), Some("web"))
            )
            .is_err());
        assert!(p
            .authorize(
                "alice",
                &none,
                &R::new(Verb::Get, "checks", None, Some("web"))
            )
            .is_err());
        assert!(p
            .authorize(
                "bob",
                &ops,
                &R::new(Verb::Create, "handlers", Some("ops"), None)
            )
            .is_ok());
        assert!(p
            .authorize(
                "bob",
                &ops,
                &R::new(Verb::Create, "handlers", Some("dev"), None)
            )
            .is_err());
        assert!(p
            .authorize(
                "bob",
                &ops,
                &R::new(Verb::Create, "roles", Some("ops"), None)
            )
            .is_err());
        assert!(
            p.authorize("bob", &ops, &R::new(Verb::List, "checks", None, None))
                .is_err(),
            "a list across namespaces needs a cluster binding"
        );
    }

    #[test]
    fn a_binding_to_a_missing_role_says_so() {
        let mut p = Policy::default();
        p.add_role_binding(
            "dev",
            "b",
            &json!({"subjects": [{"type": "User", "name": "alice"}], "role_ref": {"type": "Role", "name": "gone"}}),
        );
        let e = p
            .authorize(
                "alice",
                &[],
                &R::new(Verb::Get, "checks", Some("dev"), Some("x")),
            )
            .unwrap_err();
        assert!(
            e.contains("role binding \"b\" in namespace \"dev\" names the role \"gone\""),
            "{e}"
        );
    }
}

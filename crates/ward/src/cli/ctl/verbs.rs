//! The kinds with verbs of their own (check, silenced, event, namespace, user, api-key)
//! and `config`, `dump`, `edit`, `version`.

use super::fields::{csv, NoFields, SilencedFields};
use super::resource::{
    self, confirm, format_of, DeleteArgs, InfoArgs, ListArgs, NsArg, OutFormat, Verb,
};
use super::{session, CheckVerbs};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use ward_ctl::ops::{self, Scope};
use ward_ctl::{Format, Session};
use ward_types::Kind;

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    #[command(flatten)]
    Verbs(CheckVerbs),
    /// Run a check now on its subscriptions' agents (or the given subscriptions').
    Execute {
        name: String,
        #[arg(long)]
        namespace: Option<String>,
        /// Comma-separated subscriptions instead of the check's.
        #[arg(long)]
        subscriptions: Option<String>,
        /// Why (kept in the request).
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn check(c: CheckCommand) -> Result<(), String> {
    match c {
        CheckCommand::Verbs(v) => resource::run(Kind::CheckConfig, v.verb()).await,
        CheckCommand::Execute {
            name,
            namespace,
            subscriptions,
            reason,
        } => {
            let mut s = session()?;
            let ns = namespace.unwrap_or_else(|| s.cfg.namespace.clone());
            let subs = subscriptions.as_deref().map(csv).unwrap_or_default();
            ops::execute(&mut s, &ns, &name, &subs, reason.as_deref()).await?;
            outln!("issued a request to run check {name}");
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SilencedCommand {
    /// List silences.
    List(ListArgs),
    /// Show one (named SUBSCRIPTION:CHECK, `*` for either).
    Info(InfoArgs),
    /// Silence a subscription, a check, or a check on a subscription.
    Create {
        #[command(flatten)]
        ns: NsArg,
        #[command(flatten)]
        fields: SilencedFields,
    },
    /// Change the given fields of a silence.
    Update {
        name: String,
        #[command(flatten)]
        ns: NsArg,
        #[command(flatten)]
        fields: SilencedFields,
    },
    /// Delete a silence (asks first, unless --skip-confirm).
    Delete(DeleteArgs),
}

pub async fn silenced(c: SilencedCommand) -> Result<(), String> {
    use super::fields::Fields;
    let verb = match c {
        SilencedCommand::List(a) => Verb::List(a),
        SilencedCommand::Info(a) => Verb::Info(a),
        SilencedCommand::Update { name, ns, fields } => Verb::Update { name, ns, fields },
        SilencedCommand::Delete(a) => Verb::Delete(a),
        SilencedCommand::Create { ns, fields } => {
            let mut s = session()?;
            let ns = ns.namespace.unwrap_or_else(|| s.cfg.namespace.clone());
            let mut m = fields.fields()?;
            if !m.contains_key("subscription") && !m.contains_key("check") {
                return Err("give --subscription, --check, or both".into());
            }
            m.insert("metadata".into(), serde_json::json!({ "namespace": ns }));
            let back = ops::create(&mut s, Kind::Silenced, &ns, &m.into()).await?;
            outln!(
                "created Silenced {}",
                back.pointer("/metadata/name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
            );
            return Ok(());
        }
    };
    resource::run(Kind::Silenced, verb).await
}

#[derive(Debug, Args)]
pub struct EventKey {
    /// The entity, or ENTITY/CHECK.
    entity: String,
    /// The check (when the entity is given alone).
    check: Option<String>,
    #[arg(long)]
    namespace: Option<String>,
}

impl EventKey {
    fn split(&self) -> Result<(String, String), String> {
        match (&self.check, self.entity.split_once('/')) {
            (Some(c), None) => Ok((self.entity.clone(), c.clone())),
            (None, Some((e, c))) if !e.is_empty() && !c.is_empty() => Ok((e.into(), c.into())),
            _ => Err(format!(
                "name the event as ENTITY CHECK or ENTITY/CHECK (got {:?})",
                self.entity
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// List events.
    List(ListArgs),
    /// Show one event: ENTITY CHECK (or ENTITY/CHECK).
    Info {
        #[command(flatten)]
        key: EventKey,
        #[arg(long, value_enum)]
        format: Option<OutFormat>,
    },
    /// Delete an event (asks first, unless --skip-confirm).
    Delete {
        #[command(flatten)]
        key: EventKey,
        #[arg(long = "skip-confirm")]
        skip_confirm: bool,
    },
    /// Post an OK result for ENTITY's CHECK.
    Resolve {
        #[command(flatten)]
        key: EventKey,
    },
}

pub async fn event(c: EventCommand) -> Result<(), String> {
    let mut s = session()?;
    match c {
        EventCommand::List(a) => resource::list(&mut s, Kind::Event, &a).await,
        EventCommand::Info { key, format } => {
            let (e, c) = key.split()?;
            resource::info(
                &mut s,
                Kind::Event,
                &format!("{e}/{c}"),
                key.namespace,
                format,
            )
            .await
        }
        EventCommand::Delete { key, skip_confirm } => {
            let (e, c) = key.split()?;
            let ns = key.namespace.unwrap_or_else(|| s.cfg.namespace.clone());
            confirm(skip_confirm, &format!("event {e}/{c}"))?;
            ops::delete(&mut s, Kind::Event, &ns, &format!("{e}/{c}")).await?;
            outln!("deleted event {e}/{c}");
            Ok(())
        }
        EventCommand::Resolve { key } => {
            let (e, c) = key.split()?;
            let ns = key.namespace.unwrap_or_else(|| s.cfg.namespace.clone());
            let ev = ward_ctl::resolve_event(&mut s, &ns, &e, &c).await?;
            outln!(
                "resolved {e}/{c}: state {}",
                ev.pointer("/check/state")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
            );
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// List namespaces.
    List(ListArgs),
    /// Show one.
    Info(InfoArgs),
    /// Create one.
    Create { name: String },
    /// Delete an empty one (asks first, unless --skip-confirm).
    Delete(DeleteArgs),
}

pub async fn namespace(c: NamespaceCommand) -> Result<(), String> {
    let verb: Verb<NoFields> = match c {
        NamespaceCommand::List(a) => Verb::List(a),
        NamespaceCommand::Info(a) => Verb::Info(a),
        NamespaceCommand::Create { name } => Verb::Create {
            name,
            ns: NsArg { namespace: None },
            fields: NoFields {},
        },
        NamespaceCommand::Delete(a) => Verb::Delete(a),
    };
    resource::run(Kind::Namespace, verb).await
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users.
    List(ListArgs),
    /// Show one.
    Info(InfoArgs),
    /// Create a user.
    Create {
        name: String,
        #[arg(long, env = "WARD_CTL_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        /// Comma-separated groups: cluster-admins, view, system:agents, …
        #[arg(long, default_value = "")]
        groups: String,
    },
    /// Set a user's password (revokes their tokens). Changing your own needs your current
    /// password; an admin resetting another user's does not.
    ChangePassword {
        name: String,
        #[arg(
            long = "new-password",
            env = "WARD_CTL_NEW_PASSWORD",
            hide_env_values = true
        )]
        new_password: String,
        #[arg(
            long = "current-password",
            env = "WARD_CTL_CURRENT_PASSWORD",
            hide_env_values = true
        )]
        current_password: Option<String>,
    },
    /// Reset another user's password (an admin's verb; revokes their tokens).
    ResetPassword {
        name: String,
        #[arg(
            long = "new-password",
            env = "WARD_CTL_NEW_PASSWORD",
            hide_env_values = true
        )]
        new_password: String,
    },
    /// Disable a user (revokes their tokens); `reinstate` undoes it.
    #[command(alias = "delete")]
    Disable { name: String },
    /// Enable a disabled user again.
    Reinstate { name: String },
    /// Add a user to a group.
    AddGroup { name: String, group: String },
    /// Remove a user from a group.
    RemoveGroup { name: String, group: String },
    /// Remove a user from every group.
    RemoveGroups { name: String },
}

pub async fn user(c: UserCommand) -> Result<(), String> {
    use serde_json::json;
    let mut s = session()?;
    let (method, who, tail, body, done) = match c {
        UserCommand::List(a) => return resource::list(&mut s, Kind::User, &a).await,
        UserCommand::Info(a) => {
            return resource::info(&mut s, Kind::User, &a.name, None, a.format).await
        }
        UserCommand::Create {
            name,
            password,
            groups,
        } => {
            let body = json!({"username": name, "password": password, "groups": csv(&groups)});
            ops::create(&mut s, Kind::User, "", &body).await?;
            outln!("created user {name}");
            return Ok(());
        }
        UserCommand::ChangePassword {
            name,
            new_password,
            current_password,
        } => {
            let mut body = json!({ "password": new_password });
            if let Some(c) = current_password {
                body["current_password"] = c.into();
            }
            (
                "PUT",
                name,
                "/password".to_string(),
                Some(body),
                "changed the password of",
            )
        }
        UserCommand::ResetPassword { name, new_password } => (
            "PUT",
            name,
            "/reset_password".into(),
            Some(json!({ "password": new_password })),
            "reset the password of",
        ),
        UserCommand::Disable { name } => ("DELETE", name, String::new(), None, "disabled user"),
        UserCommand::Reinstate { name } => {
            ("PUT", name, "/reinstate".into(), None, "reinstated user")
        }
        UserCommand::AddGroup { name, group } => {
            let tail = format!("/groups/{}", ward_io::url::path_segment(&group));
            ("PUT", name, tail, None, "added a group to")
        }
        UserCommand::RemoveGroup { name, group } => {
            let tail = format!("/groups/{}", ward_io::url::path_segment(&group));
            ("DELETE", name, tail, None, "removed a group from")
        }
        UserCommand::RemoveGroups { name } => (
            "DELETE",
            name,
            "/groups".into(),
            None,
            "removed every group from",
        ),
    };
    ops::user_call(&mut s, method, &who, &tail, body).await?;
    outln!("{done} {who}");
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// A new API key for USER; its secret is shown once.
    Grant { user: String },
    /// List API keys (never their secrets).
    List(ListArgs),
    /// Show one.
    Info(InfoArgs),
    /// Revoke one (asks first, unless --skip-confirm).
    Revoke(DeleteArgs),
}

pub async fn api_key(c: ApiKeyCommand) -> Result<(), String> {
    let verb: Verb<NoFields> = match c {
        ApiKeyCommand::Grant { user } => {
            let mut s = session()?;
            let (name, key) = ops::grant_api_key(&mut s, &user).await?;
            outln!("granted an API key to {user}; save it now: it is not shown again");
            outln!("Name: {name}");
            outln!("Key:  {key}");
            return Ok(());
        }
        ApiKeyCommand::List(a) => Verb::List(a),
        ApiKeyCommand::Info(a) => Verb::Info(a),
        ApiKeyCommand::Revoke(a) => Verb::Delete(a),
    };
    resource::run(Kind::APIKey, verb).await
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Revoke a certificate now: the backend records it, re-signs its CRL files, and
    /// closes every agent session presenting it (needs a backend with ca-dir).
    Revoke {
        /// The serial (`ward pki info` prints it), or a connected agent's name.
        which: String,
        /// unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
        /// cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

pub async fn cert(c: CertCommand) -> Result<(), String> {
    match c {
        CertCommand::Revoke { which, reason } => {
            let mut s = session()?;
            let v = ops::revoke_certificate(&mut s, &which, &reason).await?;
            outln!(
                "{} {} ({}) at {}; {} session(s) closed; CRL {} written to {}",
                if v["already_revoked"] == true {
                    "already revoked"
                } else {
                    "revoked"
                },
                v["serial"].as_str().unwrap_or_default(),
                v["reason"].as_str().unwrap_or_default(),
                v["revoked_at"].as_str().unwrap_or_default(),
                v["sessions_closed"],
                v["crl_number"],
                v["crl_files"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "no file (agent-auth-crl-urls names none)".into())
            );
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The saved connection: URL, user, namespace, format (never the tokens).
    View {
        #[arg(long, value_enum)]
        format: Option<OutFormat>,
    },
    /// The namespace later commands use.
    SetNamespace { namespace: String },
    /// The format later commands print: tabular, json, wrapped-json, yaml.
    SetFormat { format: String },
}

pub fn config(c: ConfigCommand) -> Result<(), String> {
    let mut s = session()?;
    match c {
        ConfigCommand::View { format } => {
            let v = ops::config_view(&s);
            match format_of(format, &s) {
                Format::Table => {
                    outln!("=== Active Configuration");
                    for (label, key) in [
                        ("API URL", "api-url"),
                        ("Namespace", "namespace"),
                        ("Format", "format"),
                        ("Username", "username"),
                    ] {
                        outln!(
                            "{:<10} {}",
                            format!("{label}:"),
                            v[key].as_str().unwrap_or("")
                        );
                    }
                }
                Format::Yaml => {
                    // JSON scalars are YAML scalars.
                    for (k, x) in v.as_object().into_iter().flatten() {
                        outln!("{k}: {x}");
                    }
                }
                _ => outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            }
        }
        ConfigCommand::SetNamespace { namespace } => {
            ops::config_set(&mut s, Some(&namespace), None)?;
            outln!("namespace set to {namespace}");
        }
        ConfigCommand::SetFormat { format } => {
            ops::config_set(&mut s, None, Some(&format))?;
            outln!("format set to {format}");
        }
    }
    Ok(())
}

pub async fn version() {
    outln!("ward ctl version {}", env!("CARGO_PKG_VERSION"));
    if let Ok(s) = Session::load() {
        match ops::backend_version(&s).await {
            Some(v) => outln!("backend {} version {v}", s.cfg.url),
            None => outln!("backend {} is not reachable", s.cfg.url),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DumpFormat {
    Yaml,
    Json,
    WrappedJson,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// checks, handlers, check, core/v2.CheckConfig, all, … (comma-separated).
    types: String,
    /// Kinds to leave out (comma-separated), e.g. `dump all --omit events,entities`.
    #[arg(long)]
    omit: Option<String>,
    #[arg(long)]
    namespace: Option<String>,
    #[arg(long = "all-namespaces")]
    all_namespaces: bool,
    #[arg(long, value_enum, default_value = "yaml")]
    format: DumpFormat,
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
}

/// The kinds `dump all` writes, in the order `create -f` can read them back: namespaces
/// and access control first. API keys are left out: their secrets are never shown, so a
/// dump could not bring them back.
fn dump_order() -> Vec<Kind> {
    let first = [
        Kind::Namespace,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::Role,
        Kind::RoleBinding,
    ];
    first
        .into_iter()
        .chain(
            Kind::ALL
                .into_iter()
                .filter(|k| !first.contains(k) && *k != Kind::APIKey),
        )
        .collect()
}

fn kinds_of(list: &str) -> Result<Vec<Kind>, String> {
    let mut out = Vec::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t == "all" {
            out.extend(dump_order());
        } else {
            out.push(ops::parse_kind(t)?);
        }
    }
    Ok(out)
}

pub async fn dump(a: DumpArgs) -> Result<(), String> {
    let omit = a
        .omit
        .as_deref()
        .map(kinds_of)
        .transpose()?
        .unwrap_or_default();
    let mut kinds = Vec::new();
    for k in kinds_of(&a.types)? {
        if !omit.contains(&k) && !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let mut s = session()?;
    let scope = Scope {
        namespace: a.namespace,
        all_namespaces: a.all_namespaces,
        ..Scope::default()
    };
    let mut docs = Vec::new();
    for k in &kinds {
        docs.extend(ward_ctl::fetch_list(&mut s, *k, &scope).await?);
    }
    let format = match a.format {
        DumpFormat::Yaml => Format::Yaml,
        DumpFormat::Json => Format::DocumentArray,
        DumpFormat::WrappedJson => Format::WrappedJson,
    };
    let out = ward_ctl::render(Kind::CheckConfig, &docs, format);
    match a.file {
        Some(f) => ward_io::files::write_one(
            &ward_io::files::PlannedFile::public(&f, out),
            ward_io::files::Overwrite::Allow,
        )
        .map_err(|e| e.to_string())?,
        None => print!("{out}"),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// check, handler, CheckConfig, … (as `dump` names kinds).
    kind: String,
    /// Its name (an event: ENTITY CHECK or ENTITY/CHECK).
    name: String,
    check: Option<String>,
    #[arg(long)]
    namespace: Option<String>,
    /// yaml (the default) or json: the form the editor shows.
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    format: String,
}

pub async fn edit(a: EditArgs) -> Result<(), String> {
    let kind = ops::parse_kind(&a.kind)?;
    let name = match (&a.check, kind) {
        (Some(c), Kind::Event) => format!("{}/{c}", a.name),
        (Some(c), _) => return Err(format!("unexpected argument {c:?}")),
        (None, _) => a.name.clone(),
    };
    let mut s = session()?;
    let ns = a.namespace.unwrap_or_else(|| s.cfg.namespace.clone());
    match ward_ctl::edit::edit(&mut s, kind, &ns, &name, a.format == "json").await? {
        ward_ctl::edit::Edited::Unchanged => outln!("{} {name} unchanged", kind.type_name()),
        ward_ctl::edit::Edited::Saved => outln!("updated {} {name}", kind.type_name()),
    }
    Ok(())
}

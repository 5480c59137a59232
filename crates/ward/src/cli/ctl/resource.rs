//! The verbs every kind has: `list`, `info`, `create`, `update`, `delete`.

use super::fields::Fields;
use clap::{Args, ValueEnum};
use serde_json::Value;
use ward_ctl::ops::{self, Scope};
use ward_ctl::{Format, Session};
use ward_types::Kind;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutFormat {
    #[value(alias = "table")]
    Tabular,
    Json,
    WrappedJson,
    Yaml,
}

/// `--format` as given, else the saved default (`config set-format`), else tabular.
pub fn format_of(f: Option<OutFormat>, s: &Session) -> Format {
    match f {
        Some(OutFormat::Tabular) => Format::Table,
        Some(OutFormat::Json) => Format::Json,
        Some(OutFormat::WrappedJson) => Format::WrappedJson,
        Some(OutFormat::Yaml) => Format::Yaml,
        None => s
            .cfg
            .format
            .as_deref()
            .and_then(|f| Format::parse(f).ok())
            .unwrap_or(Format::Table),
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The namespace (default: the configured one).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Every namespace.
    #[arg(long = "all-namespaces")]
    pub all_namespaces: bool,
    /// tabular (or table), json, wrapped-json, yaml.
    #[arg(long, value_enum)]
    pub format: Option<OutFormat>,
    /// Only resources whose labels match (`region == eu`, `tier in (a,b)`, …).
    #[arg(long = "label-selector")]
    pub label_selector: Option<String>,
    /// Only resources whose fields match (`check.status != 0`, …).
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
}

impl ListArgs {
    pub fn scope(&self) -> Scope {
        Scope {
            namespace: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    pub name: String,
    #[arg(long)]
    pub namespace: Option<String>,
    /// tabular (or table), json (the flat object), wrapped-json, yaml.
    #[arg(long, value_enum)]
    pub format: Option<OutFormat>,
}

#[derive(Debug, Args)]
pub struct NsArg {
    #[arg(long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub name: String,
    #[arg(long)]
    pub namespace: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long = "skip-confirm")]
    pub skip_confirm: bool,
}

/// The generic verbs with a kind's fields.
pub enum Verb<F> {
    List(ListArgs),
    Info(InfoArgs),
    Create { name: String, ns: NsArg, fields: F },
    Update { name: String, ns: NsArg, fields: F },
    Delete(DeleteArgs),
}

/// The verbs of a kind whose `create`/`update` take the flags in `$fields`.
macro_rules! resource_verbs {
    ($enum:ident, $fields:ty) => {
        #[derive(Debug, clap::Subcommand)]
        pub enum $enum {
            /// List them (in the namespace, or --all-namespaces).
            List(crate::cli::ctl::resource::ListArgs),
            /// Show one.
            Info(crate::cli::ctl::resource::InfoArgs),
            /// Create one from flags (refused if it exists; `create -f FILE` creates or replaces).
            Create {
                name: String,
                #[command(flatten)]
                ns: crate::cli::ctl::resource::NsArg,
                #[command(flatten)]
                fields: $fields,
            },
            /// Change the given fields of one (a merge patch).
            Update {
                name: String,
                #[command(flatten)]
                ns: crate::cli::ctl::resource::NsArg,
                #[command(flatten)]
                fields: $fields,
            },
            /// Delete one (asks first, unless --skip-confirm).
            Delete(crate::cli::ctl::resource::DeleteArgs),
        }

        impl $enum {
            pub fn verb(self) -> crate::cli::ctl::resource::Verb<$fields> {
                use crate::cli::ctl::resource::Verb;
                match self {
                    $enum::List(a) => Verb::List(a),
                    $enum::Info(a) => Verb::Info(a),
                    $enum::Create { name, ns, fields } => Verb::Create { name, ns, fields },
                    $enum::Update { name, ns, fields } => Verb::Update { name, ns, fields },
                    $enum::Delete(a) => Verb::Delete(a),
                }
            }
        }
    };
}
pub(crate) use resource_verbs;

/// Asks before a delete; anything but y/yes (or no terminal answer) refuses.
pub fn confirm(skip: bool, what: &str) -> Result<(), String> {
    if skip {
        return Ok(());
    }
    use std::io::{BufRead, Write};
    eprint!("Are you sure you would like to delete {what}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(format!(
            "not confirmed: {what} was not deleted (--skip-confirm skips the question)"
        )),
    }
}

fn name_of(v: &Value, fallback: &str) -> String {
    v.pointer("/metadata/name")
        .or_else(|| v.get("username"))
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_string()
}

/// `list`.
pub async fn list(s: &mut Session, kind: Kind, a: &ListArgs) -> Result<(), String> {
    let items = ward_ctl::fetch_list(s, kind, &a.scope()).await?;
    print!("{}", ward_ctl::render(kind, &items, format_of(a.format, s)));
    Ok(())
}

/// `info` (`ns` overrides the session's namespace).
pub async fn info(
    s: &mut Session,
    kind: Kind,
    name: &str,
    ns: Option<String>,
    format: Option<OutFormat>,
) -> Result<(), String> {
    let ns = ns.unwrap_or_else(|| s.cfg.namespace.clone());
    let item = ops::info(s, kind, &ns, name).await?;
    print!(
        "{}",
        ward_ctl::render_one(kind, &item, format_of(format, s))
    );
    Ok(())
}

/// Runs one generic verb.
pub async fn run<F: Fields>(kind: Kind, verb: Verb<F>) -> Result<(), String> {
    let mut s = Session::load()?;
    let here = |s: &Session, n: Option<String>| n.unwrap_or_else(|| s.cfg.namespace.clone());
    match verb {
        Verb::List(a) => list(&mut s, kind, &a).await?,
        Verb::Info(a) => info(&mut s, kind, &a.name, a.namespace, a.format).await?,
        Verb::Create { name, ns, fields } => {
            let ns = here(&s, ns.namespace);
            let mut m = fields.fields()?;
            fields.defaults(&mut m);
            let body = ops::new_object(kind, &ns, &name, m);
            let back = ops::create(&mut s, kind, &ns, &body).await?;
            outln!("created {} {}", kind.type_name(), name_of(&back, &name));
        }
        Verb::Update { name, ns, fields } => {
            let ns = here(&s, ns.namespace);
            ops::update(&mut s, kind, &ns, &name, fields.fields()?).await?;
            outln!("updated {} {name}", kind.type_name());
        }
        Verb::Delete(a) => {
            let ns = here(&s, a.namespace);
            confirm(
                a.skip_confirm,
                &format!("{} {:?}", kind.type_name(), a.name),
            )?;
            ops::delete(&mut s, kind, &ns, &a.name).await?;
            outln!("deleted {} {}", kind.type_name(), a.name);
        }
    }
    Ok(())
}

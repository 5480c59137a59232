//! `ward ctl …`.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use ward_ctl::{Format, Session};
use ward_types::Kind;

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Log in and save the connection (mode 0600).
    Configure(ConfigureArgs),
    /// Create or replace resources from YAML or JSON files, directories, or - (stdin).
    Create(FileArgs),
    /// Delete the resources named in YAML or JSON files.
    Delete(FileArgs),
    /// Print resources: TYPE[,TYPE…] such as core/v2.CheckConfig, store/v1.PostgresConfig, or all.
    Dump(DumpArgs),
    /// Checks.
    #[command(subcommand)]
    Check(ListCommand),
    /// Entities.
    #[command(subcommand)]
    Entity(ListCommand),
    /// Events.
    #[command(subcommand)]
    Event(EventCommand),
    /// Handlers.
    #[command(subcommand)]
    Handler(ListCommand),
    /// Users.
    #[command(subcommand)]
    User(ListCommand),
    /// Cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Non-interactive (the only mode so far).
    #[arg(short = 'n', long = "non-interactive")]
    non_interactive: bool,
    #[arg(long)]
    url: String,
    #[arg(long)]
    username: String,
    #[arg(long, env = "WARD_CTL_PASSWORD", hide_env_values = true)]
    password: String,
    #[arg(long = "trusted-ca-file")]
    trusted_ca_file: Option<PathBuf>,
    #[arg(long = "insecure-skip-tls-verify")]
    insecure_skip_tls_verify: bool,
    #[arg(long, default_value = "default")]
    namespace: String,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    #[arg(short = 'f', long = "file", required = true)]
    file: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DumpFormat {
    Yaml,
    Json,
    WrappedJson,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    types: String,
    #[arg(long, value_enum, default_value = "yaml")]
    format: DumpFormat,
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    Info {
        name: String,
        #[arg(long, value_enum, default_value = "yaml")]
        format: ListFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    #[command(flatten)]
    Read(ListCommand),
    /// Post an OK result for ENTITY's CHECK.
    Resolve { entity: String, check: String },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    Health,
}

fn session() -> Result<Session, String> {
    Session::load()
}

fn list_format(f: ListFormat) -> Format {
    match f {
        ListFormat::Table => Format::Table,
        ListFormat::Json => Format::Json,
        ListFormat::Yaml => Format::Yaml,
    }
}

async fn list(kind: Kind, cmd: ListCommand) -> Result<(), String> {
    let mut s = session()?;
    match cmd {
        ListCommand::List { format } => {
            let docs = ward_ctl::fetch_all(&mut s, kind).await?;
            print!("{}", ward_ctl::render(&docs, list_format(format)));
        }
        ListCommand::Info { name, format } => {
            let docs = ward_ctl::fetch_all(&mut s, kind).await?;
            let d: Vec<_> = docs
                .into_iter()
                .filter(|d| d.metadata.name == name)
                .collect();
            if d.is_empty() {
                return Err(format!("{} {name:?} not found", kind.type_name()));
            }
            print!("{}", ward_ctl::render(&d, list_format(format)));
        }
    }
    Ok(())
}

async fn run_async(cmd: CtlCommand) -> Result<(), String> {
    match cmd {
        CtlCommand::Configure(a) => {
            let _ = a.non_interactive;
            let path = ward_ctl::configure(
                &a.url,
                &a.username,
                &a.password,
                a.trusted_ca_file.as_deref(),
                a.insecure_skip_tls_verify,
                &a.namespace,
            )
            .await?;
            if a.insecure_skip_tls_verify {
                eprintln!(
                    "warning: --insecure-skip-tls-verify: the server's identity is not checked"
                );
            }
            println!(
                "logged in to {} as {}; saved {}",
                a.url,
                a.username,
                path.display()
            );
        }
        CtlCommand::Create(a) => {
            let mut s = session()?;
            for d in ward_ctl::create(&mut s, &a.file).await? {
                println!("created {d}");
            }
        }
        CtlCommand::Delete(a) => {
            let mut s = session()?;
            for d in ward_ctl::delete(&mut s, &a.file).await? {
                println!("deleted {d}");
            }
        }
        CtlCommand::Dump(a) => {
            let kinds: Vec<Kind> = if a.types == "all" {
                Kind::ALL.to_vec()
            } else {
                a.types
                    .split(',')
                    .map(|t| Kind::parse(t.trim(), None).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?
            };
            let mut s = session()?;
            let mut docs = Vec::new();
            for k in kinds {
                docs.extend(ward_ctl::fetch_all(&mut s, k).await?);
            }
            let out = ward_ctl::render(
                &docs,
                match a.format {
                    DumpFormat::Yaml => Format::Yaml,
                    DumpFormat::Json => Format::Json,
                    DumpFormat::WrappedJson => Format::WrappedJson,
                },
            );
            match a.file {
                Some(f) => ward_pki::files::write_one(
                    &ward_pki::files::PlannedFile::public(&f, out),
                    ward_pki::files::Overwrite::Allow,
                )
                .map_err(|e| e.to_string())?,
                None => print!("{out}"),
            }
        }
        CtlCommand::Check(c) => list(Kind::CheckConfig, c).await?,
        CtlCommand::Entity(c) => list(Kind::Entity, c).await?,
        CtlCommand::Event(EventCommand::Read(c)) => list(Kind::Event, c).await?,
        CtlCommand::Event(EventCommand::Resolve { entity, check }) => {
            let mut s = session()?;
            let ev = ward_ctl::resolve_event(&mut s, &entity, &check).await?;
            println!(
                "resolved {entity}/{check}: state {}",
                ev.pointer("/check/state")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
            );
        }
        CtlCommand::Handler(c) => list(Kind::Handler, c).await?,
        CtlCommand::User(c) => list(Kind::User, c).await?,
        CtlCommand::Cluster(ClusterCommand::Health) => {
            let s = session()?;
            let r = s.get_public("/health").await?;
            print!("{}", ward_ctl::health_table(&r.json()));
        }
    }
    Ok(())
}

pub fn run(cmd: CtlCommand) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(run_async(cmd))?;
    Ok(ExitCode::SUCCESS)
}

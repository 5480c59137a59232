//! `ward ctl …`: sensuctl's verbs.

mod fields;
mod resource;
mod verbs;

use clap::{Args, Subcommand};
use fields::*;
use resource::resource_verbs;
use std::path::PathBuf;
use std::process::ExitCode;
use ward_ctl::Session;
use ward_types::Kind;

resource_verbs!(HandlerCommand, HandlerFields);
resource_verbs!(FilterCommand, FilterFields);
resource_verbs!(MutatorCommand, MutatorFields);
resource_verbs!(PipelineCommand, NoFields);
resource_verbs!(HookCommand, HookFields);
resource_verbs!(AssetCommand, AssetFields);
resource_verbs!(EntityCommand, EntityFields);
resource_verbs!(RoleCommand, RuleFields);
resource_verbs!(ClusterRoleCommand, RuleFields);
resource_verbs!(RoleBindingCommand, BindingFields);
resource_verbs!(ClusterRoleBindingCommand, ClusterBindingFields);
resource_verbs!(CheckVerbs, CheckFields);

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Log in and save the connection (mode 0600).
    Configure(ConfigureArgs),
    /// Create or replace resources from YAML or JSON files, directories, or - (stdin).
    Create(FileArgs),
    /// Delete the resources named in YAML or JSON files.
    Delete(FileArgs),
    /// Print resources: checks, handlers, core/v2.CheckConfig, all, … (comma-separated).
    Dump(verbs::DumpArgs),
    /// Edit a resource in $VISUAL or $EDITOR; it is validated before it is sent.
    Edit(verbs::EditArgs),
    /// The saved configuration.
    #[command(subcommand)]
    Config(verbs::ConfigCommand),
    /// Ward's version and the backend's.
    Version,
    /// Checks.
    #[command(subcommand)]
    Check(verbs::CheckCommand),
    /// Handlers.
    #[command(subcommand)]
    Handler(HandlerCommand),
    /// Event filters.
    #[command(subcommand)]
    Filter(FilterCommand),
    /// Mutators.
    #[command(subcommand)]
    Mutator(MutatorCommand),
    /// Pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Silences.
    #[command(subcommand)]
    Silenced(verbs::SilencedCommand),
    /// Hooks.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Assets.
    #[command(subcommand)]
    Asset(AssetCommand),
    /// Entities.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Events.
    #[command(subcommand)]
    Event(verbs::EventCommand),
    /// Namespaces.
    #[command(subcommand)]
    Namespace(verbs::NamespaceCommand),
    /// Users.
    #[command(subcommand)]
    User(verbs::UserCommand),
    /// Roles (in a namespace).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Role bindings (in a namespace).
    #[command(subcommand)]
    RoleBinding(RoleBindingCommand),
    /// Cluster roles.
    #[command(subcommand)]
    ClusterRole(ClusterRoleCommand),
    /// Cluster role bindings.
    #[command(subcommand)]
    ClusterRoleBinding(ClusterRoleBindingCommand),
    /// API keys.
    #[command(subcommand)]
    ApiKey(verbs::ApiKeyCommand),
    /// Certificates of the CA the backend holds (Ward's own).
    #[command(subcommand)]
    Cert(verbs::CertCommand),
    /// Cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Take everything from flags; without it, missing values are asked for.
    #[arg(short = 'n', long = "non-interactive")]
    non_interactive: bool,
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long, env = "WARD_CTL_PASSWORD", hide_env_values = true)]
    password: Option<String>,
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

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    Health,
}

/// Asks on the terminal; a secret is read with echo off.
fn prompt(what: &str, secret: bool) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    eprint!("{what}: ");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let restore = if secret && stdin.is_terminal() {
        rustix::termios::tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = restore {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        eprintln!();
    }
    read.map_err(|e| format!("reading {what}: {e}"))?;
    let v = line.trim_end_matches(['\r', '\n']).to_string();
    if v.is_empty() {
        return Err(format!("{what} is required"));
    }
    Ok(v)
}

fn session() -> Result<Session, String> {
    Session::load()
}

async fn run_async(cmd: CtlCommand) -> Result<(), String> {
    match cmd {
        CtlCommand::Configure(a) => {
            let value = |v: Option<String>, flag: &str, secret: bool| -> Result<String, String> {
                match v {
                    Some(v) => Ok(v),
                    None if a.non_interactive => Err(format!("{flag} is required with -n")),
                    None => prompt(flag.trim_start_matches("--"), secret),
                }
            };
            let url = value(a.url.clone(), "--url", false)?;
            let username = value(a.username.clone(), "--username", false)?;
            let password = value(a.password.clone(), "--password", true)?;
            let path = ward_ctl::configure(
                &url,
                &username,
                &password,
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
            outln!("logged in to {url} as {username}; saved {}", path.display());
        }
        CtlCommand::Create(a) => {
            let mut s = session()?;
            for d in ward_ctl::create(&mut s, &a.file).await? {
                outln!("created {d}");
            }
        }
        CtlCommand::Delete(a) => {
            let mut s = session()?;
            for d in ward_ctl::delete(&mut s, &a.file).await? {
                outln!("deleted {d}");
            }
        }
        CtlCommand::Dump(a) => verbs::dump(a).await?,
        CtlCommand::Edit(a) => verbs::edit(a).await?,
        CtlCommand::Config(c) => verbs::config(c)?,
        CtlCommand::Version => verbs::version().await,
        CtlCommand::Check(c) => verbs::check(c).await?,
        CtlCommand::Handler(c) => resource::run(Kind::Handler, c.verb()).await?,
        CtlCommand::Filter(c) => resource::run(Kind::EventFilter, c.verb()).await?,
        CtlCommand::Mutator(c) => resource::run(Kind::Mutator, c.verb()).await?,
        CtlCommand::Pipeline(c) => resource::run(Kind::Pipeline, c.verb()).await?,
        CtlCommand::Silenced(c) => verbs::silenced(c).await?,
        CtlCommand::Hook(c) => resource::run(Kind::HookConfig, c.verb()).await?,
        CtlCommand::Asset(c) => resource::run(Kind::Asset, c.verb()).await?,
        CtlCommand::Entity(c) => resource::run(Kind::Entity, c.verb()).await?,
        CtlCommand::Event(c) => verbs::event(c).await?,
        CtlCommand::Namespace(c) => verbs::namespace(c).await?,
        CtlCommand::User(c) => verbs::user(c).await?,
        CtlCommand::Role(c) => resource::run(Kind::Role, c.verb()).await?,
        CtlCommand::RoleBinding(c) => resource::run(Kind::RoleBinding, c.verb()).await?,
        CtlCommand::ClusterRole(c) => resource::run(Kind::ClusterRole, c.verb()).await?,
        CtlCommand::ClusterRoleBinding(c) => {
            resource::run(Kind::ClusterRoleBinding, c.verb()).await?
        }
        CtlCommand::ApiKey(c) => verbs::api_key(c).await?,
        CtlCommand::Cert(c) => verbs::cert(c).await?,
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

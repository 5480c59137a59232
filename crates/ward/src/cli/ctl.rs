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
    User(UserCommand),
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
pub enum UserCommand {
    #[command(flatten)]
    Read(ListCommand),
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
    /// Disable a user (revokes their tokens).
    Disable { name: String },
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
                .filter(|d| d.doc.metadata.name == name)
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
        CtlCommand::Dump(a) => {
            let kinds: Vec<Kind> = if a.types == "all" {
                // API keys are left out: their secrets are never shown, so a dump could
                // not bring them back.
                Kind::ALL
                    .into_iter()
                    .filter(|k| *k != Kind::APIKey)
                    .collect()
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
                    DumpFormat::Json => Format::DocumentArray,
                    DumpFormat::WrappedJson => Format::WrappedJson,
                },
            );
            match a.file {
                Some(f) => ward_io::files::write_one(
                    &ward_io::files::PlannedFile::public(&f, out),
                    ward_io::files::Overwrite::Allow,
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
            outln!(
                "resolved {entity}/{check}: state {}",
                ev.pointer("/check/state")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
            );
        }
        CtlCommand::Handler(c) => list(Kind::Handler, c).await?,
        CtlCommand::User(UserCommand::Read(c)) => list(Kind::User, c).await?,
        CtlCommand::User(UserCommand::Create {
            name,
            password,
            groups,
        }) => {
            let mut s = session()?;
            let groups: Vec<&str> = groups
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .collect();
            let body =
                serde_json::json!({"username": name, "password": password, "groups": groups});
            s.call(
                "POST",
                "/api/core/v2/users",
                Some(body.to_string().into_bytes()),
            )
            .await?;
            outln!("created user {name}");
        }
        CtlCommand::User(UserCommand::ChangePassword {
            name,
            new_password,
            current_password,
        }) => {
            let mut s = session()?;
            let mut body = serde_json::json!({"password": new_password});
            if let Some(c) = current_password {
                body["current_password"] = c.into();
            }
            s.call(
                "PUT",
                &format!("/api/core/v2/users/{name}/password"),
                Some(body.to_string().into_bytes()),
            )
            .await?;
            outln!("changed the password of {name}");
        }
        CtlCommand::User(UserCommand::Disable { name }) => {
            let mut s = session()?;
            s.call("DELETE", &format!("/api/core/v2/users/{name}"), None)
                .await?;
            outln!("disabled user {name}");
        }
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

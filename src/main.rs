//! `jangteo`: serve | migrate | create-admin.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jangteo::config::Config;
use jangteo::error::ErrorCode as _;
use jangteo::{AppState, Application};

#[derive(Parser)]
#[command(name = "jangteo", version, about = "Chat-centric marketplace backend")]
struct Cli {
    /// Config file (default: ./jangteo.toml if present, or $JANGTEO_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (setting `listen`).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Data directory (setting `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<String>,
    /// Database URL (setting `database_url`).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log filter (setting `log`).
    #[arg(long, global = true)]
    log: Option<String>,
    /// Any setting, as KEY=VALUE (repeatable); see docs/OPERATIONS.md.
    #[arg(short = 's', long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print every setting (name, default, what it accepts, meaning) as
    /// the Markdown table of docs/OPERATIONS.md, and exit.
    Settings,
    /// Create an administrator account (the only way to get one).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        nickname: String,
        /// Read from standard input when omitted.
        #[arg(long)]
        password: Option<String>,
        /// If the email already has an account, make it an admin instead.
        #[arg(long)]
        promote_existing: bool,
    },
}

impl Cli {
    fn cli_pairs(&self) -> Result<Vec<(String, String)>, String> {
        let mut pairs = Vec::new();
        for (key, value) in [
            ("listen", &self.listen),
            ("data_dir", &self.data_dir),
            ("database_url", &self.database_url),
            ("log", &self.log),
        ] {
            if let Some(v) = value {
                pairs.push((key.to_string(), v.clone()));
            }
        }
        for item in &self.set {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("--set expects KEY=VALUE, got {item:?}"))?;
            pairs.push((k.trim().to_string(), v.to_string()));
        }
        Ok(pairs)
    }
}

fn read_password_from_stdin() -> Result<String, String> {
    eprintln!("password (read from standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    if matches!(cli.command, Some(Command::Settings)) {
        print!("{}", jangteo::config::settings_table());
        return Ok(());
    }
    let pairs = cli.cli_pairs()?;
    let config =
        Config::load(cli.config.as_deref(), std::env::vars(), pairs).map_err(|e| e.to_string())?;
    jangteo::telemetry::init(&config.log, config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        // Answered above, before the configuration is read.
        Command::Settings => Ok(()),
        Command::Serve => {
            let app = Application::build(config)
                .await
                .map_err(|e| format!("{e:#}"))?;
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }
        Command::Migrate => {
            let state = AppState::build(config)
                .await
                .map_err(|e| format!("{e:#}"))?;
            state.engines().close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin {
            email,
            nickname,
            password,
            promote_existing,
        } => {
            let password = match password {
                Some(p) => p,
                None => read_password_from_stdin()?,
            };
            let state = AppState::build(config)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let user = state
                .accounts
                .create_admin(&email, &password, &nickname, promote_existing)
                .await
                .map_err(|e| {
                    let details = e.details().map(|d| format!(" {d}")).unwrap_or_default();
                    format!("{}: {}{details}", e.code(), e.message())
                })?;
            state.engines().close().await;
            println!(
                "admin ready: id={} email={}",
                user.id,
                user.email.unwrap_or_default()
            );
            Ok(())
        }
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    jangteo::alloc::tune();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jangteo: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `drupe` command: `serve`, `user add|remove|passwd|list`, `config check|example`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use drupe_server::config::Config;
use drupe_server::{accounts, open_store, Server};

#[derive(Parser)]
#[command(name = "drupe", version, about = "A private-cloud XMPP server")]
struct Cli {
    /// Configuration file (TOML). Default: ./drupe.toml when it exists, else built-in defaults.
    #[arg(long, short, global = true, env = "DRUPE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Manage accounts (works on the database directly).
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from a prompt, or from the first line of stdin.
    Add { username: String },
    /// Delete an account with its roster and offline messages.
    Remove { username: String },
    /// Set a new password (prompt or stdin).
    Passwd { username: String },
    /// List accounts.
    List,
    /// Revoke the account's XEP-0484 FAST login tokens on every device.
    RevokeTokens { username: String },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file and DRUPE_* environment) and exit.
    Check,
    /// Print a documented configuration file with every default.
    Example,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drupe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.or_else(|| Some(PathBuf::from("drupe.toml")).filter(|p| p.exists()));
    Ok(Config::load(path.as_deref())?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", Config::example());
        return Ok(());
    }
    let config = load_config(cli.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid (domain {})", config.domain);
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => Ok(()),
        Command::Serve => runtime.block_on(serve(config)),
        Command::User(cmd) => runtime.block_on(user(config, cmd)),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DRUPE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let create_admin = config.server.create_admin;
    let domain = config.domain.clone();
    let server = Server::start(config).await?;
    if create_admin && server.store().account_count().await? == 0 {
        let password = random_password();
        accounts::add(server.store(), server.config(), "admin", password.clone()).await?;
        println!("drupe: created the first account admin@{domain} with password {password}");
    }
    // Handlers first: a SIGTERM right after the ready line must be a clean shutdown, not the default kill.
    let signals = Signals::install()?;
    let tls = server.c2s_tls.map(|a| a.to_string()).unwrap_or_default();
    let https = server.http_tls.map(|a| a.to_string()).unwrap_or_default();
    let http = server.http.map(|a| a.to_string()).unwrap_or_default();
    println!("drupe ready c2s={} c2s_tls={tls} https={https} http={http}", server.c2s);
    std::io::stdout().flush()?;
    signals.wait().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, installed before the server reports ready.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// Reads a password from the terminal (twice, without echo) or the first line of stdin. Never from argv.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat: ")?;
        if first != again {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let result = match cmd {
        UserCommand::Add { username } => {
            let password = read_password()?;
            let user = accounts::add(&store, &config, &username, password).await?;
            println!("created {user}@{}", config.domain);
            Ok(())
        }
        UserCommand::Remove { username } => {
            accounts::remove(&store, &config, &username).await?;
            println!("removed {username}@{}", config.domain);
            Ok(())
        }
        UserCommand::Passwd { username } => {
            let password = read_password()?;
            accounts::set_password(&store, &config, &username, password).await?;
            println!("password changed for {username}@{}", config.domain);
            Ok(())
        }
        UserCommand::RevokeTokens { username } => {
            let n = accounts::revoke_tokens(&store, &config, &username).await?;
            println!("revoked {n} FAST token(s) of {username}@{}", config.domain);
            Ok(())
        }
        UserCommand::List => {
            for name in store.account_list().await? {
                println!("{name}@{}", config.domain);
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

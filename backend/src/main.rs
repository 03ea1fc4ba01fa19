//! `iotchat-server`: serve, print the default configuration, or print a data directory's
//! client profile.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use iotchat_server::config::{Config, DEFAULT_CONFIG, FileConfig, default_data_dir};
use iotchat_server::profile;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "iotchat-server", version, about = "IoT Chat's local, AWS-compatible backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Cognito subset, the API and the broker until SIGINT or SIGTERM.
    Serve {
        /// A TOML config file (see `print-config`).
        #[arg(long, env = "IOTCHAT_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<FileConfig>,
        /// Log lines as human-readable text or as one JSON object per line.
        #[arg(long, env = "IOTCHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Also stop (gracefully) when standard input closes: the desktop app starts the server
        /// this way, so that it never outlives the app, even one that crashed.
        #[arg(long)]
        stop_with_stdin: bool,
    },
    /// Print the commented default configuration.
    PrintConfig,
    /// Print the client profile of a data directory (written when the server starts).
    Profile {
        #[arg(long, env = "IOTCHAT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("iotchat-server: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Profile { data_dir } => {
            let profile = profile::read(&data_dir.unwrap_or_else(default_data_dir))?;
            println!("{}", profile.to_json_pretty());
            Ok(())
        }
        Command::Serve { config, overrides, log_format, stop_with_stdin } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into());
            let logs = tracing_subscriber::fmt().with_env_filter(filter);
            match log_format {
                LogFormat::Text => logs.init(),
                LogFormat::Json => logs.json().init(),
            }
            let file = match config {
                Some(path) => FileConfig::read(&path)?,
                None => FileConfig::default(),
            };
            let config = Config::resolve(file, *overrides)?;
            tokio::runtime::Runtime::new()?.block_on(serve(config, stop_with_stdin))
        }
    }
}

async fn serve(config: Config, stop_with_stdin: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let server = iotchat_server::start(&config, listener).await?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        profile = %config.data_dir.join("profile.json").display(),
        listen = %server.addr(),
        "iotchat-server is ready; clients use {}",
        server.profile().api_url.trim_end_matches("/api")
    );
    let stdin_closed = async {
        if stop_with_stdin {
            stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        () = stdin_closed => tracing::info!("standard input closed (the app that started it is gone); shutting down"),
    }
    server.stop().await
}

/// Resolves when standard input reaches its end (or fails), reading and dropping what comes.
async fn stdin_closed() {
    let (done, closed) = tokio::sync::oneshot::channel::<()>();
    // A thread of its own: reading stdin blocks, and tokio's stdin would hold a runtime thread.
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = done.send(());
    });
    let _ = closed.await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

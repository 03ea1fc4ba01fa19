//! `iotchat`: the IoT Chat client on the command line, for people and scripts.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iotchat_client::protocol::{Code, RoomName};
use iotchat_client::{
    Backend, Client, ClientConfig, ClientError, ConnectionState, Delivery, Event, LOCAL_SERVER,
    MemoryStore, SecretStore, TimelineMessage, open_keychain_async,
};

/// Service name of the keychain entries (shared with the desktop app).
const KEYCHAIN_SERVICE: &str = "dev.iotchat.desktop";

#[derive(Parser)]
#[command(name = "iotchat", version, about = "IoT Chat on the command line")]
struct Cli {
    /// A backend profile: as `iotchat-server profile` prints it, or the original sample's
    /// config.json. Default: the local server at http://127.0.0.1:8787.
    #[arg(long, global = true, env = "IOTCHAT_PROFILE")]
    profile: Option<PathBuf>,
    /// Fetch the profile from a server's address instead (http://host:port).
    #[arg(long, global = true, env = "IOTCHAT_SERVER", conflicts_with = "profile")]
    server: Option<String>,
    /// Where local state is kept (default: the platform's data directory).
    #[arg(long, global = true, env = "IOTCHAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account.
    Register {
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log in; the session is kept in the OS keychain for the next commands.
    Login {
        /// Your username (with a password), or leave it out and give --provider.
        #[arg(required_unless_present = "provider")]
        username: Option<String>,
        #[arg(long, conflicts_with = "provider")]
        password_stdin: bool,
        /// Sign in in the browser through an identity provider the server offers: test,
        /// google, facebook (or its name as the server lists it).
        #[arg(long, conflicts_with = "username")]
        provider: Option<String>,
        /// With --provider: print the address to open instead of opening the browser.
        #[arg(long, requires = "provider")]
        no_browser: bool,
    },
    /// Log out everywhere and remove the session from the keychain.
    Logout,
    /// Show who is logged in.
    Whoami,
    /// List every room: followed ones are marked, with unread counts.
    Rooms,
    /// Create a room from a display name (and join it).
    Create { display_name: String },
    /// Follow a room (a slug like `general` or a full name like `room/public/general`).
    Join { room: String },
    /// Stop following a room.
    Leave { room: String },
    /// Send a message and wait until the server has it.
    Send {
        room: String,
        text: String,
        /// Seconds to wait for the server before leaving the message queued.
        #[arg(long, default_value_t = 20)]
        wait: u64,
    },
    /// Follow rooms (default: every followed room) and print messages as they arrive.
    Tail {
        rooms: Vec<String>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Print a room's latest messages, oldest first.
    History {
        room: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Exit code when a message stays queued because the server could not be reached in time.
const EXIT_QUEUED: i32 = 3;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IOTCHAT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let code = match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            if json {
                eprintln!("{}", serde_json::to_string(&error.body()).unwrap_or_default());
            } else {
                eprintln!("iotchat: {}", error.message);
            }
            1
        }
    };
    std::process::exit(code);
}

struct Output {
    json: bool,
}

impl Output {
    fn line(&self, text: impl std::fmt::Display, json: serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json { writeln!(stdout, "{json}") } else { writeln!(stdout, "{text}") };
        let _ = stdout.flush();
    }

    fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    fn message(&self, message: &TimelineMessage) {
        let time = clock(message.sent_at_ms);
        let marker = match &message.delivery {
            Delivery::Pending => " (pending)",
            Delivery::Failed { .. } => " (failed)",
            Delivery::Delivered => "",
        };
        self.line(
            format!("[{time}] {} {}: {}{marker}", message.room, message.author, message.text),
            serde_json::to_value(message).unwrap_or_default(),
        );
    }
}

fn describe(connection: ConnectionState) -> String {
    match connection {
        ConnectionState::Offline => "offline".to_owned(),
        ConnectionState::Connecting => "connecting…".to_owned(),
        ConnectionState::Online => "online".to_owned(),
        ConnectionState::Reconnecting { in_secs, .. } => format!("reconnecting in {in_secs} s"),
    }
}

/// `HH:MM:SS` (UTC) of a time in ms since 1970.
fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

fn room(raw: &str) -> Result<RoomName, ClientError> {
    RoomName::from_user_input(raw).map_err(|e| ClientError::invalid(e.to_string()))
}

/// Shows the sign-in address on standard error, and opens it in the browser unless asked not to.
struct TerminalBrowser {
    open: bool,
}

impl iotchat_client::OpenUrl for TerminalBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        if self.open {
            eprintln!("Opening your browser to sign in. If it does not open, visit:\n{url}");
            iotchat_client::SystemBrowser.open(url)
        } else {
            eprintln!("To sign in, open this address in your browser:\n{url}");
            Ok(())
        }
    }
}

fn password(from_stdin: bool) -> Result<String, ClientError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::invalid(format!("Cannot read the password: {e}")))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::invalid(
            "No terminal to ask for the password on: pass it with --password-stdin.",
        ));
    }
    rpassword::prompt_password("Password: ")
        .map_err(|e| ClientError::invalid(format!("Cannot read the password: {e}")))
}

async fn backend(cli: &Cli) -> Result<Backend, ClientError> {
    match (&cli.profile, &cli.server) {
        (Some(path), _) => Backend::from_file(path),
        (None, Some(address)) => Backend::fetch(address, None).await,
        (None, None) => Backend::fetch(LOCAL_SERVER, None).await.map_err(|e| {
            ClientError::new(
                e.code,
                format!(
                    "{} (start it with `cargo xtask run`, or name another backend with \
                     --profile or --server)",
                    e.message
                ),
            )
        }),
    }
}

async fn run(cli: Cli) -> Result<i32, ClientError> {
    let out = Output { json: cli.json };
    let backend = backend(&cli).await?;
    let service =
        std::env::var("IOTCHAT_KEYCHAIN_SERVICE").unwrap_or_else(|_| KEYCHAIN_SERVICE.into());
    let secrets: Arc<dyn SecretStore> = match open_keychain_async(&service).await {
        Ok(keychain) => Arc::new(keychain),
        Err(error) => {
            out.note(&format!("iotchat: {}", error.message));
            Arc::new(MemoryStore::default())
        }
    };
    let connect = matches!(cli.command, Command::Send { .. } | Command::Tail { .. });
    let client = Client::new(ClientConfig {
        backend,
        data_dir: cli.data_dir.clone().unwrap_or_else(iotchat_client::default_data_dir),
        secrets,
        connect,
        instance: Some(format!("cli{}", std::process::id())),
    })?;
    let result = command(&client, cli.command, &out).await;
    client.shutdown().await;
    result
}

async fn signed_in(client: &Client) -> Result<(), ClientError> {
    match client.restore().await? {
        Some(_) => Ok(()),
        None => Err(ClientError::new(
            Code::Unauthenticated,
            "You are not logged in: run `iotchat login <username>` first.",
        )),
    }
}

async fn command(client: &Client, command: Command, out: &Output) -> Result<i32, ClientError> {
    match command {
        Command::Register { username, email, password_stdin } => {
            let password = password(password_stdin)?;
            client.register(&username, &email, &password).await?;
            out.line(
                format!("Registered {username}. Log in with `iotchat login {username}`."),
                serde_json::json!({"registered": username}),
            );
        }
        Command::Login { username, password_stdin, provider, no_browser } => {
            let account = match (username, provider) {
                (_, Some(provider)) => {
                    let opener = TerminalBrowser { open: !no_browser };
                    let login = client.login_with_provider(
                        &provider,
                        &opener,
                        iotchat_client::oauth::SIGN_IN_TIMEOUT,
                    );
                    tokio::select! {
                        account = login => account?,
                        _ = tokio::signal::ctrl_c() => {
                            client.cancel_provider_login();
                            return Err(ClientError::new(Code::Cancelled, "The sign-in was cancelled."));
                        }
                    }
                }
                (Some(username), None) => {
                    let password = password(password_stdin)?;
                    client.login(&username, &password).await?
                }
                (None, None) => {
                    return Err(ClientError::invalid("Give a username, or --provider."));
                }
            };
            let kind = client.secret_store_kind();
            out.line(
                format!("Logged in as {} on {}.", account.username, client.backend().label()),
                serde_json::json!({"username": account.username, "identityId": account.identity_id, "secretStore": kind}),
            );
            if !kind.survives_reboot() {
                out.note(kind.describe());
            }
        }
        Command::Logout => {
            client.restore().await.ok();
            client.logout().await?;
            out.line("Logged out.", serde_json::json!({"loggedOut": true}));
        }
        Command::Whoami => {
            signed_in(client).await?;
            let account = client.account().await.ok_or_else(ClientError::not_signed_in)?;
            out.line(
                format!(
                    "{} ({}) on {}",
                    account.username,
                    account.identity_id,
                    client.backend().label()
                ),
                serde_json::to_value(&account).unwrap_or_default(),
            );
        }
        Command::Rooms => {
            signed_in(client).await?;
            for summary in client.rooms().await? {
                let marker = if summary.followed { "*" } else { " " };
                let unread = if summary.unread > 0 {
                    format!("  ({} unread)", summary.unread)
                } else {
                    String::new()
                };
                out.line(
                    format!(
                        "{marker} {}  {}{unread}",
                        summary.room.name, summary.room.display_name
                    ),
                    serde_json::to_value(&summary).unwrap_or_default(),
                );
            }
        }
        Command::Create { display_name } => {
            signed_in(client).await?;
            let created = client.room_create(&display_name).await?;
            out.line(&created.name, serde_json::to_value(&created).unwrap_or_default());
        }
        Command::Join { room: raw } => {
            signed_in(client).await?;
            let name = room(&raw)?;
            client.room_join(&name).await?;
            out.line(format!("Joined {name}."), serde_json::json!({"joined": name}));
        }
        Command::Leave { room: raw } => {
            signed_in(client).await?;
            let name = room(&raw)?;
            client.room_leave(&name).await?;
            out.line(format!("Left {name}."), serde_json::json!({"left": name}));
        }
        Command::Send { room: raw, text, wait } => {
            let name = room(&raw)?;
            let mut events = client.events();
            signed_in(client).await?;
            let sent = client.message_send(&name, &text).await?;
            let delivered = tokio::time::timeout(Duration::from_secs(wait), async {
                loop {
                    match events.recv().await {
                        Ok(Event::Delivery { id, delivery: Delivery::Delivered, .. })
                            if id == sent.id =>
                        {
                            return true;
                        }
                        Ok(Event::Delivery { id, delivery: Delivery::Failed { .. }, .. })
                            if id == sent.id =>
                        {
                            return false;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if delivered {
                out.line(
                    format!("Sent to {name}."),
                    serde_json::json!({"sent": sent.id, "room": name}),
                );
            } else {
                out.line(
                    "The server could not be reached: the message is queued and will be sent by \
                     the next `iotchat send` or `iotchat tail`.",
                    serde_json::json!({"queued": sent.id, "room": name}),
                );
                return Ok(EXIT_QUEUED);
            }
        }
        Command::Tail { rooms, count, timeout } => {
            let mut events = client.events();
            signed_in(client).await?;
            let mut filter = Vec::new();
            for raw in rooms {
                let name = room(&raw)?;
                let followed = client.followed().await?;
                if !followed.iter().any(|f| f.name == name) {
                    client.room_join(&name).await?;
                }
                filter.push(name);
            }
            let mut printed = 0usize;
            let deadline = timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
            loop {
                if count.is_some_and(|c| printed >= c) {
                    break;
                }
                let next = async {
                    match deadline {
                        Some(at) => tokio::time::timeout_at(at, events.recv()).await.ok(),
                        None => tokio::select! {
                            event = events.recv() => Some(event),
                            _ = tokio::signal::ctrl_c() => None,
                        },
                    }
                };
                match next.await {
                    None => break,
                    Some(Ok(Event::Message { message, .. })) => {
                        if filter.is_empty() || filter.contains(&message.room) {
                            out.message(&message);
                            printed += 1;
                        }
                    }
                    Some(Ok(Event::Connection { connection })) => {
                        // On stderr in every mode: for people, and for scripts to wait on.
                        eprintln!("iotchat: {}", describe(connection));
                    }
                    Some(Ok(Event::SessionEnded { reason })) => {
                        return Err(ClientError::new(Code::SessionExpired, reason));
                    }
                    Some(Ok(_))
                    | Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                }
            }
        }
        Command::History { room: raw, limit } => {
            signed_in(client).await?;
            let name = room(&raw)?;
            let page = client.history(&name, None, limit).await?;
            for message in page.messages.iter().rev() {
                out.message(message);
            }
        }
    }
    Ok(0)
}

//! `iotchat-loadgen`: drives iotchat-server (or Mosquitto, the baseline) with real users on
//! 127.0.0.1 and reports what arrived, how fast, and what it cost the broker. Every run is
//! bounded in users and seconds. `cargo xtask bench server` runs [`suite`] and writes
//! `docs/benchmarks/server.md`.

mod brokers;
mod mqtt;
mod scenarios;
mod suite;
mod users;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use rumqttc::QoS;

use brokers::{Kind, Programs};

#[derive(Debug, Parser)]
#[command(name = "iotchat-loadgen", about = "Load generator for iotchat-server and Mosquitto")]
struct Cli {
    #[command(flatten)]
    programs: ProgramArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct ProgramArgs {
    /// The iotchat-server binary (a release build for figures worth quoting).
    #[arg(long, env = "IOTCHAT_SERVER_BIN", default_value = "iotchat-server", global = true)]
    server_bin: PathBuf,
    /// The Mosquitto binary.
    #[arg(long, env = "MOSQUITTO_BIN", default_value = "/usr/sbin/mosquitto", global = true)]
    mosquitto_bin: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every benchmark on both brokers, side by side; writes a Markdown report.
    Suite {
        /// Runs of each scenario (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Small numbers, for checking that the suite works (not for quoting).
        #[arg(long)]
        quick: bool,
        /// Where to write the report.
        #[arg(long)]
        out: PathBuf,
    },
    /// Traffic through rooms on one broker.
    Traffic {
        #[arg(long, value_enum)]
        broker: Kind,
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Publishers per room (iotchat-server allows 100 publishes/s per connection).
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// The publishers are members of the room (else connections of their own).
        #[arg(long)]
        members_publish: bool,
        /// Messages per second into each room.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
        qos: u8,
        /// Payload bytes.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Users from cold to subscribed, all at once.
    Storm {
        #[arg(long, value_enum)]
        broker: Kind,
        #[arg(long, default_value_t = 500)]
        users: usize,
    },
    /// The chat client core following a room under a stream of messages (iotchat-server).
    Ingest {
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Connected users doing nothing: the broker's memory.
    Idle {
        #[arg(long, value_enum)]
        broker: Kind,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

/// Hard bounds, so no run goes on without end.
const MAX_USERS: usize = 5_000;
const MAX_SECONDS: f64 = 600.0;

fn check_bounds(users: usize, seconds: f64) -> Result<()> {
    if users == 0 || users > MAX_USERS {
        bail!("between 1 and {MAX_USERS} users, please ({users} asked)");
    }
    if !(seconds > 0.0 && seconds <= MAX_SECONDS) {
        bail!("between 0 and {MAX_SECONDS} seconds, please ({seconds} asked)");
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let programs =
        Programs { server: cli.programs.server_bin, mosquitto: cli.programs.mosquitto_bin };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Suite { runs, quick, out } => suite::run(&programs, runs, quick, &out).await,
            Command::Traffic {
                broker,
                rooms,
                members,
                publishers,
                members_publish,
                rate,
                qos,
                payload,
                seconds,
            } => {
                let traffic = scenarios::Traffic {
                    rooms,
                    members_per_room: members,
                    publishers_per_room: publishers.max(1),
                    members_publish,
                    rate_per_room: rate,
                    qos: if qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce },
                    payload,
                    seconds,
                };
                check_bounds(traffic.users(), seconds)?;
                let dir = tempfile::tempdir()?;
                let mut running = brokers::start(broker, &programs, dir.path()).await?;
                let users = suite::accounts(&mut running, traffic.users()).await?;
                let result = scenarios::traffic(&mut running, &users, &traffic).await?;
                println!("{}", serde_json::to_string_pretty(&result)?);
                Ok(())
            }
            Command::Storm { broker, users } => {
                check_bounds(users, 1.0)?;
                let dir = tempfile::tempdir()?;
                let mut running = brokers::start(broker, &programs, dir.path()).await?;
                suite::sign_up(&running, users).await?;
                let result = scenarios::storm(&mut running, users, 50).await?;
                println!("{}", serde_json::to_string_pretty(&result)?);
                Ok(())
            }
            Command::Ingest { rate, seconds } => {
                let users = (rate / scenarios::PER_PUBLISHER).ceil() as usize + 1;
                check_bounds(users, seconds)?;
                let dir = tempfile::tempdir()?;
                let mut running = brokers::start(Kind::Iotchat, &programs, dir.path()).await?;
                let ready = suite::accounts(&mut running, users).await?;
                let result = scenarios::ingest(&mut running, &ready, rate, seconds).await?;
                println!("{}", serde_json::to_string_pretty(&result)?);
                Ok(())
            }
            Command::Idle { broker, users, seconds } => {
                check_bounds(users, seconds)?;
                let dir = tempfile::tempdir()?;
                let mut running = brokers::start(broker, &programs, dir.path()).await?;
                let ready = suite::accounts(&mut running, users).await?;
                // A fresh start, so the figure is the connections' and not the sign-ins'.
                drop(running);
                let mut running = brokers::start(broker, &programs, dir.path()).await?;
                let result = scenarios::idle(&mut running, &ready, 50, seconds).await?;
                println!("{}", serde_json::to_string_pretty(&result)?);
                Ok(())
            }
        }
    })
}

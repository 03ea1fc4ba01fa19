//! The whole benchmark, both brokers side by side in one run, as a Markdown report.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use rumqttc::QoS;

use crate::brokers::{self, Kind, Programs, Running};
use crate::scenarios::{
    self, IdleResult, IngestResult, PER_PUBLISHER, StormResult, Traffic, TrafficResult,
};
use crate::users::{self, User};

const KINDS: [Kind; 2] = [Kind::Iotchat, Kind::Mosquitto];

/// Everything from this line on in an existing report is kept when the suite rewrites it.
const NOTES_MARKER: &str = "<!-- Written by people; the suite keeps everything below. -->";

/// Signs up users `0..count` (iotchat-server only), a few at a time as a team would.
pub(crate) async fn sign_up(broker: &Running, count: usize) -> Result<f64> {
    let started = Instant::now();
    if let Some((_, cognito)) = users::cognito(broker)? {
        let retries = std::sync::Arc::new(users::Retries::default());
        users::for_each(0..count, 16, |index| {
            let cognito = std::sync::Arc::clone(&cognito);
            let retries = std::sync::Arc::clone(&retries);
            async move { users::sign_up(&cognito, index, &retries).await }
        })
        .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Users `0..count`, signed up and signed in (credentials survive the broker's restarts).
pub(crate) async fn accounts(broker: &mut Running, count: usize) -> Result<Vec<User>> {
    sign_up(broker, count).await?;
    users::ready(broker, count, 16).await
}

struct Sizes {
    users: usize,
    fanout: Traffic,
    rooms: Traffic,
    storm: usize,
    idle: usize,
    idle_seconds: f64,
    ladder: Vec<f64>,
    ladder_seconds: f64,
    ingest: Vec<f64>,
}

fn sizes(quick: bool) -> Sizes {
    let traffic = |rooms, members, publishers, members_publish, rate, seconds| Traffic {
        rooms,
        members_per_room: members,
        publishers_per_room: publishers,
        members_publish,
        rate_per_room: rate,
        qos: QoS::AtLeastOnce,
        payload: 64,
        seconds,
    };
    if quick {
        Sizes {
            users: 40,
            fanout: traffic(1, 10, 1, false, 20.0, 2.0),
            rooms: traffic(5, 4, 4, true, 4.0, 2.0),
            storm: 20,
            idle: 30,
            idle_seconds: 1.0,
            ladder: vec![100.0, 200.0],
            ladder_seconds: 2.0,
            ingest: vec![100.0],
        }
    } else {
        Sizes {
            users: 1000,
            // One publisher, one room of 100: 10,000 deliveries/s.
            fanout: traffic(1, 100, 1, false, 100.0, 10.0),
            // 500 users in 50 rooms; each member says something every second.
            rooms: traffic(50, 10, 10, true, 10.0, 10.0),
            storm: 500,
            idle: 1000,
            idle_seconds: 10.0,
            ladder: vec![
                100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1500.0, 2000.0, 2500.0, 3000.0,
                4000.0,
            ],
            ladder_seconds: 5.0,
            ingest: vec![250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0],
        }
    }
}

#[derive(Default)]
struct Results {
    fanout: [Vec<TrafficResult>; 2],
    rooms: [Vec<TrafficResult>; 2],
    storm: [Vec<StormResult>; 2],
    idle: [Vec<IdleResult>; 2],
    /// (messages/s into the room, result) until the first one not sustained.
    ladder: [Vec<(f64, TrafficResult)>; 2],
    ingest: Vec<IngestResult>,
}

fn say(line: &str) {
    eprintln!("[loadgen] {line}");
}

pub(crate) async fn run(programs: &Programs, runs: usize, quick: bool, out: &Path) -> Result<()> {
    let sizes = sizes(quick);
    let runs = runs.clamp(1, 9);
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut users: [Vec<User>; 2] = [Vec::new(), Vec::new()];
    let mut setup = String::new();
    for (k, kind) in KINDS.into_iter().enumerate() {
        let mut broker = brokers::start(kind, programs, dirs[k].path()).await?;
        let signed_up = sign_up(&broker, sizes.users).await?;
        let started = Instant::now();
        users[k] = users::ready(&broker, sizes.users, 16).await?;
        broker.check_alive()?;
        if kind == Kind::Iotchat {
            let _ = write!(
                setup,
                "Setting up {n} accounts on iotchat-server: sign-up {signed_up:.1} s \
                 ({:.0}/s), sign-in to credentials and policy {:.1} s ({:.0}/s), 16 at a time.",
                sizes.users as f64 / signed_up,
                started.elapsed().as_secs_f64(),
                sizes.users as f64 / started.elapsed().as_secs_f64(),
                n = sizes.users,
            );
            say(&setup);
        }
    }
    let mut results = Results::default();
    for run in 1..=runs {
        for (k, kind) in KINDS.into_iter().enumerate() {
            let dir = dirs[k].path();
            say(&format!("run {run}/{runs}, {}: fan-out", kind.label()));
            let mut broker = brokers::start(kind, programs, dir).await?;
            results.fanout[k]
                .push(scenarios::traffic(&mut broker, &users[k], &sizes.fanout).await?);
            drop(broker);
            say(&format!("run {run}/{runs}, {}: many rooms", kind.label()));
            let mut broker = brokers::start(kind, programs, dir).await?;
            results.rooms[k].push(scenarios::traffic(&mut broker, &users[k], &sizes.rooms).await?);
            drop(broker);
            say(&format!("run {run}/{runs}, {}: storm", kind.label()));
            let mut broker = brokers::start(kind, programs, dir).await?;
            results.storm[k].push(scenarios::storm(&mut broker, sizes.storm, 50).await?);
            drop(broker);
            say(&format!("run {run}/{runs}, {}: idle", kind.label()));
            let mut broker = brokers::start(kind, programs, dir).await?;
            let idle = &users[k][..sizes.idle.min(users[k].len())];
            results.idle[k].push(scenarios::idle(&mut broker, idle, 50, sizes.idle_seconds).await?);
        }
    }
    for (k, kind) in KINDS.into_iter().enumerate() {
        for rate in &sizes.ladder {
            say(&format!("{}: fan-out at {rate} msg/s", kind.label()));
            let traffic = Traffic {
                publishers_per_room: (rate / PER_PUBLISHER).ceil() as usize,
                rate_per_room: *rate,
                seconds: sizes.ladder_seconds,
                ..sizes.fanout.clone()
            };
            let mut broker = brokers::start(kind, programs, dirs[k].path()).await?;
            let result = scenarios::traffic(&mut broker, &users[k], &traffic).await?;
            let sustained = result.sustained;
            results.ladder[k].push((*rate, result));
            if !sustained {
                break;
            }
        }
    }
    for rate in &sizes.ingest {
        say(&format!("client ingest at {rate} msg/s"));
        let mut broker = brokers::start(Kind::Iotchat, programs, dirs[0].path()).await?;
        let result = scenarios::ingest(&mut broker, &users[0], *rate, sizes.ladder_seconds).await?;
        let kept_up = result.kept_up;
        results.ingest.push(result);
        if !kept_up {
            break;
        }
    }
    let mut report = report(&sizes, runs, quick, &setup, &results, programs);
    // What people wrote below the marker (the analysis) survives a new run.
    if let Ok(old) = std::fs::read_to_string(out)
        && let Some(at) = old.find(NOTES_MARKER)
    {
        report.push('\n');
        report.push_str(&old[at..]);
    }
    std::fs::write(out, report).with_context(|| format!("writing {}", out.display()))?;
    say(&format!("wrote {}", out.display()));
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn number(value: f64) -> String {
    if value >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// One table row: the medians of both brokers, the ratio, and every run.
fn row<T>(out: &mut String, name: &str, of: [&Vec<T>; 2], f: impl Fn(&T) -> f64) {
    let values: [Vec<f64>; 2] = [of[0].iter().map(&f).collect(), of[1].iter().map(&f).collect()];
    let (a, b) = (median(values[0].clone()), median(values[1].clone()));
    let ratio = if b == 0.0 { "–".to_owned() } else { format!("{:.2}×", a / b) };
    let runs = |v: &Vec<f64>| v.iter().map(|x| number(*x)).collect::<Vec<_>>().join(" / ");
    let _ = writeln!(
        out,
        "| {name} | **{}** | **{}** | {ratio} | {} ‖ {} |",
        number(a),
        number(b),
        runs(&values[0]),
        runs(&values[1])
    );
}

const HEAD: &str = "| | iotchat-server | Mosquitto | ratio | every run (iotchat ‖ Mosquitto) |\n|---|---:|---:|---:|---|\n";

fn traffic_table(out: &mut String, of: [&Vec<TrafficResult>; 2]) {
    out.push_str(HEAD);
    row(out, "deliveries/s", of, |r| r.deliveries_per_s);
    row(out, "lost", of, |r| r.lost as f64);
    row(out, "duplicates", of, |r| r.duplicates as f64);
    row(out, "latency p50, ms", of, |r| r.p50_ms);
    row(out, "latency p99, ms", of, |r| r.p99_ms);
    row(out, "latency max, ms", of, |r| r.max_ms);
    row(out, "broker CPU, % of a core", of, |r| r.cpu_percent);
    row(out, "broker CPU per delivery, µs", of, |r| r.cpu_us_per_delivery);
    row(out, "broker RSS, MiB", of, |r| r.rss_mib);
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(String::new(), |kib| format!(", {:.0} GiB", kib / 1024.0 / 1024.0));
    format!("{cores} cores ({cpu}){memory}, Linux {}", kernel.trim())
}

fn mosquitto_version(programs: &Programs) -> String {
    std::process::Command::new(&programs.mosquitto)
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "mosquitto (version unknown)".into())
}

fn report(
    sizes: &Sizes,
    runs: usize,
    quick: bool,
    setup: &str,
    r: &Results,
    programs: &Programs,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Server benchmarks: iotchat-server beside Mosquitto\n");
    if quick {
        out.push_str(
            "**Quick run (small numbers, for checking the suite): not figures to quote.**\n\n",
        );
    }
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench server` (`iotchat-loadgen suite --runs {runs}`), which builds \
         the release server and the generator, then drives both brokers from one process on \
         127.0.0.1, alternating between them run by run. Medians of {runs} runs, with every run \
         listed; ratios are iotchat-server ÷ Mosquitto.\n"
    );
    let _ = writeln!(out, "- Machine: {}; the generator shares it with the broker.", machine());
    let _ = writeln!(
        out,
        "- Baseline: {} — websockets listener on 127.0.0.1, anonymous, no persistence, `max_queued_messages 100000`, `max_inflight_messages 100`, `set_tcp_nodelay true`.",
        mosquitto_version(programs)
    );
    let _ = writeln!(
        out,
        "- iotchat-server: every user a real account (Cognito sign-in, identity, credentials, policy, SigV4-presigned WebSocket), the topic policy, and every message stored in SQLite before its PUBACK. Mosquitto does none of that."
    );
    let _ = writeln!(
        out,
        "- Messages: QoS 1, 64-byte chat payloads; latency is publish → receipt in the generator's one clock."
    );
    if !setup.is_empty() {
        let _ = writeln!(out, "- {setup}");
    }
    let f = &sizes.fanout;
    let _ = writeln!(
        out,
        "\n## Fan-out: 1 publisher → 1 room of {} subscribers at {} msg/s ({} deliveries/s, {} s)\n",
        f.members_per_room,
        f.rate_per_room,
        f.target_deliveries(),
        f.seconds
    );
    traffic_table(&mut out, [&r.fanout[0], &r.fanout[1]]);
    let m = &sizes.rooms;
    let _ = writeln!(
        out,
        "\n## Many rooms: {} users in {} rooms, {} msg/s per room ({} deliveries/s, {} s)\n",
        m.users(),
        m.rooms,
        m.rate_per_room,
        m.target_deliveries(),
        m.seconds
    );
    traffic_table(&mut out, [&r.rooms[0], &r.rooms[1]]);
    let _ = writeln!(out, "\n## Highest zero-loss fan-out rate\n");
    let _ = writeln!(
        out,
        "One room of {} subscribers; the rate rises ({} s a step, one publisher per {} msg/s: \
         iotchat-server allows {} publishes/s per connection) until a step loses or repeats a \
         message, drops a connection, or its publishers fall below 97 % of the rate.\n",
        f.members_per_room, sizes.ladder_seconds, PER_PUBLISHER, PER_PUBLISHER
    );
    out.push_str("| msg/s into the room | deliveries/s | iotchat-server: lost · p50 / p99 ms · CPU % | Mosquitto: lost · p50 / p99 ms · CPU % |\n|---:|---:|---|---|\n");
    let steps = r.ladder[0].len().max(r.ladder[1].len());
    for i in 0..steps {
        let cell = |k: usize| {
            r.ladder[k].get(i).map_or("–".to_owned(), |(_, t)| {
                format!(
                    "{}{} · {} / {} · {:.0}",
                    if t.sustained { "" } else { "**not sustained** " },
                    t.lost,
                    number(t.p50_ms),
                    number(t.p99_ms),
                    t.cpu_percent
                )
            })
        };
        let rate = r.ladder[0].get(i).or(r.ladder[1].get(i)).map_or(0.0, |(rate, _)| *rate);
        let _ = writeln!(
            out,
            "| {rate} | {} | {} | {} |",
            number(rate * f.members_per_room as f64),
            cell(0),
            cell(1)
        );
    }
    let best = |k: usize| {
        r.ladder[k].iter().filter(|(_, t)| t.sustained).map(|(rate, _)| *rate).fold(0.0, f64::max)
    };
    let (a, b) = (best(0), best(1));
    let _ = writeln!(
        out,
        "\nHighest rate with zero loss: iotchat-server **{}** msg/s ({} deliveries/s), \
         Mosquitto **{}** msg/s ({} deliveries/s): **{}×**. One run per step.",
        number(a),
        number(a * f.members_per_room as f64),
        number(b),
        number(b * f.members_per_room as f64),
        if b > 0.0 { format!("{:.2}", a / b) } else { "–".into() }
    );
    let _ = writeln!(
        out,
        "\n## Login + connect storm: {} users from cold to subscribed, all at once\n",
        sizes.storm
    );
    let _ = writeln!(
        out,
        "On iotchat-server each user signs in (argon2id), gets its identity and credentials, attaches its policy, presigns, connects and subscribes; on Mosquitto a user only connects and subscribes.\n"
    );
    let storm = [&r.storm[0], &r.storm[1]];
    out.push_str(HEAD);
    row(&mut out, "users/s", storm, |s| s.users_per_s);
    row(&mut out, "whole storm, s", storm, |s| s.seconds);
    row(&mut out, "one user, p50, ms", storm, |s| s.p50_ms);
    row(&mut out, "one user, p99, ms", storm, |s| s.p99_ms);
    row(&mut out, "busy answers retried", storm, |s| s.busy_retries as f64);
    row(&mut out, "broker CPU, % of a core", storm, |s| s.cpu_percent);
    row(&mut out, "broker RSS, MiB", storm, |s| s.rss_mib);
    let _ = writeln!(out, "\n## {} idle connected users\n", sizes.idle);
    let idle = [&r.idle[0], &r.idle[1]];
    out.push_str(HEAD);
    row(&mut out, "broker RSS before they connect, MiB", idle, |s| s.rss_before_mib);
    row(&mut out, "broker RSS with them connected, MiB", idle, |s| s.rss_mib);
    row(&mut out, "per user, KiB", idle, |s| s.kib_per_user);
    row(&mut out, "broker CPU while idle, % of a core", idle, |s| s.idle_cpu_percent);
    let _ = writeln!(out, "\n## Client core ingest\n");
    let _ = writeln!(
        out,
        "A real `iotchat_client::Client` (the app's core: parse, deduplicate, resolve the author, \
         count unread, store) follows one room on iotchat-server; a bare rumqttc subscriber reads \
         the same stream as the yardstick. The rate rises ({} s a step) until the client misses \
         a message or its p99 passes one second. Latency is publish → the client's event.\n",
        sizes.ladder_seconds
    );
    out.push_str("| msg/s into the room | published | client: messages · per s · p50 / p99 ms | bare subscriber: messages · p50 / p99 ms | kept up |\n|---:|---:|---|---|---|\n");
    for i in &r.ingest {
        let _ = writeln!(
            out,
            "| {} | {} | {} · {} · {} / {} | {} · {} / {} | {} |",
            number(i.rate),
            i.published,
            i.client_messages,
            number(i.client_per_s),
            number(i.client_p50_ms),
            number(i.client_p99_ms),
            i.bare_messages,
            number(i.bare_p50_ms),
            number(i.bare_p99_ms),
            if i.kept_up {
                "yes".to_owned()
            } else {
                format!("**no** ({} events lagged)", i.lagged_events)
            }
        );
    }
    out
}

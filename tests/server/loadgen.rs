//! The load generator (`iotchat-loadgen`) itself, on small numbers: what it reports must be
//! what happened, on iotchat-server and on Mosquitto alike, or its benchmarks mean nothing.

use serde_json::Value;

/// Runs `iotchat-loadgen <args>` and returns the JSON it prints.
fn loadgen(args: &[&str]) -> Value {
    let output = std::process::Command::new(iotchat_tests::loadgen_binary().expect("built"))
        .args(args)
        .env("IOTCHAT_SERVER_BIN", iotchat_tests::server_binary().expect("built"))
        .output()
        .expect("iotchat-loadgen runs");
    assert!(
        output.status.success(),
        "iotchat-loadgen {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("iotchat-loadgen prints JSON")
}

fn int(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap_or_else(|| panic!("{key} in {report}"))
}

const ROOMS: &[&str] = &[
    "traffic",
    "--rooms",
    "2",
    "--members",
    "3",
    "--publishers",
    "2",
    "--members-publish",
    "--rate",
    "20",
    "--seconds",
    "2",
];

#[test]
fn the_load_generator_counts_every_delivery_on_both_brokers() {
    for broker in ["iotchat", "mosquitto"] {
        let mut args = ROOMS.to_vec();
        args.extend(["--broker", broker]);
        let report = loadgen(&args);
        // 2 rooms at 20 msg/s for 2 s, each message to the 3 members of its room.
        let published = int(&report, "published");
        assert!((70..=82).contains(&published), "{broker}: {report}");
        assert_eq!(int(&report, "expected"), published * 3, "{broker}: {report}");
        assert_eq!(int(&report, "delivered"), published * 3, "{broker}: {report}");
        for key in ["lost", "duplicates", "strays", "dropped_connections"] {
            assert_eq!(int(&report, key), 0, "{broker}: {key} in {report}");
        }
        assert_eq!(report["sustained"], true, "{broker}: {report}");
        let p50 = report["p50_ms"].as_f64().expect("p50");
        let max = report["max_ms"].as_f64().expect("max");
        assert!(p50 > 0.0 && p50 <= max && max < 5_000.0, "{broker}: {report}");
        assert!(report["rss_mib"].as_f64().expect("rss") > 1.0, "{broker}: {report}");
    }
}

#[test]
fn a_storm_signs_in_connects_and_subscribes_every_user() {
    let report = loadgen(&["storm", "--broker", "iotchat", "--users", "12"]);
    assert_eq!(int(&report, "users"), 12, "{report}");
    assert!(report["users_per_s"].as_f64().expect("rate") > 0.0, "{report}");
    // Above the hard bound, the generator refuses rather than runs without end.
    let output = std::process::Command::new(iotchat_tests::loadgen_binary().expect("built"))
        .args(["idle", "--broker", "mosquitto", "--users", "100000"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("between 1 and 5000 users"));
}

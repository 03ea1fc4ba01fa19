//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs each fuzz target of `fuzz/` for N seconds
//! (60 by default) with cargo-fuzz on the nightly toolchain, installing what is missing. Not
//! part of `cargo xtask test`: a bounded but long run, for before a release and after changes
//! to a parser. A crash stops the run and names the input that caused it.

use anyhow::{Context as _, Result, bail};

use crate::sh::{Cmd, step};
use crate::{root, target_dir};

/// Every target in `fuzz/fuzz_targets/`.
pub(crate) const TARGETS: [&str; 7] =
    ["payload", "names", "profile", "sigv4", "jwt", "cursor", "cognito"];
const CARGO_FUZZ: &str = "cargo-fuzz";
const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .with_context(|| format!("--seconds {value}: give 1 to 86400"))?;
            }
            name if TARGETS.contains(&name) => targets.push(name),
            other => {
                bail!("unknown fuzz target or flag {other:?}; targets: {}", TARGETS.join(", "))
            }
        }
    }
    if targets.is_empty() {
        targets.extend(TARGETS);
    }
    ensure_tools()?;
    let fuzz_target_dir = target_dir()?.join("fuzz");
    let mut ran = Vec::new();
    for target in targets {
        step(&format!("Fuzzing {target} for {seconds} s"));
        // New inputs go to a corpus kept beside the build (reused by the next run); the seeds
        // in fuzz/seeds/<target> are read, never written.
        let corpus = fuzz_target_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = root().join("fuzz").join("seeds").join(target);
        let mut cmd = Cmd::new("cargo")
            .args(["+nightly", "fuzz", "run", target, "--sanitizer", "none", "--target-dir"])
            .arg(&fuzz_target_dir)
            .arg(&corpus);
        if seeds.is_dir() {
            cmd = cmd.arg(&seeds);
        }
        let dictionary = root().join("fuzz").join("dictionaries").join(format!("{target}.dict"));
        cmd = cmd.args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048"]);
        if dictionary.is_file() {
            cmd = cmd.arg(format!("-dict={}", dictionary.display()));
        }
        cmd.dir(root()).run().with_context(|| {
            format!(
                "fuzz target {target} found a crash: the input is in fuzz/artifacts/{target}/; \
                 keep it as a regression test"
            )
        })?;
        ran.push(target);
    }
    step(&format!("No crash in {} ({seconds} s each)", ran.join(", ")));
    Ok(())
}

fn ensure_tools() -> Result<()> {
    let toolchains = Cmd::new("rustup").args(["toolchain", "list"]).output()?;
    if toolchains.lines().any(|line| line.starts_with("nightly")) {
        println!("    nightly toolchain: present");
    } else {
        step("Installing the nightly toolchain (cargo fuzz needs it)");
        Cmd::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .run()?;
    }
    let installed = Cmd::new("cargo").args(["install", "--list"]).output()?;
    let line = format!("{CARGO_FUZZ} v{CARGO_FUZZ_VERSION}:");
    if installed.lines().any(|l| l.trim() == line) {
        println!("    {CARGO_FUZZ} {CARGO_FUZZ_VERSION}: present");
    } else {
        step(&format!(
            "Installing {CARGO_FUZZ} {CARGO_FUZZ_VERSION} (cargo install, a few minutes)"
        ));
        Cmd::new("cargo")
            .args(["install", CARGO_FUZZ, "--version", CARGO_FUZZ_VERSION, "--locked"])
            .run()?;
    }
    Ok(())
}
